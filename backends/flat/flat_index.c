/* flat_index.c: the side index, <root>/<user>/.imap/<name>.index: its
   encoding, reading and writing (whole or in place), the conversions
   between its records and the shared mailbox state, UIDVALIDITY, and
   flag changes (flat_flags_changed()).

   The IMAP side data (UIDs, flags, keywords, internal dates, UIDVALIDITY,
   ...) lives in <root>/<user>/.imap/<name>.index, a binary file in host
   byte order: a header, then fixed-size records. Every record remembers
   where its message is in the mail file and a 64-bit hash of its stored
   bytes, so the index can be checked against the mail file and rebuilt
   from it: losing or damaging the index never loses mail, it only resets
   UIDVALIDITY and flags.

   The in-place index writes (a new record and the header, a flag change)
   are not fsynced: the index is side data that can be rebuilt from the
   mail file, and an fsync per APPEND would double its cost. After a power
   loss the index is either consistent (old or new header; records past
   the header's count are ignored), or stale (its header predates the
   last appends: they are parsed again from the file and get the same
   UIDs; their flags are lost), or damaged (the header hash fails, or a
   record the header counts did not reach the disk: a new UIDVALIDITY,
   flags reset). None of those loses or duplicates a message; the mail
   file is the truth. Whole-index rewrites (temp file + rename) are
   fsynced, because a rename without it can leave an empty index behind
   a complete-looking name.

   Version 2 (IDX_VERSION) lays the records out as struct mail_rec, from
   a page boundary, so that the open of a large mailbox whose index
   matches its mail file maps them into the state instead of reading them
   (flat_sync.c, refresh_mapped(); mbox_state_map() in core/hub/storage.c).
   Such an open checks the header (hash, sizes), the last
   IDX_MAP_CHECK_TAIL records and the first one, and the last message's
   hash against the mail file, not every record: so a tail write of
   records spanning more than one page is fdatasync()ed before the header
   that counts them (index_put_tail()), and a record the header counts is
   on disk. A record in the middle damaged by something else than our
   writes is not caught at open (a full read of the index catches it, as
   before).

   While a process maps an index, nobody may change its records in place
   under it: its pages not yet written show the file. The mapper holds an
   OFD read lock on the index; an in-place write over records the header
   already counts (a flag change, the grown unterminated last message)
   first takes the write lock (mbox_map_write_begin(), which converts the
   writer's own read lock), and when another process holds the file
   mapped, the index is rewritten whole instead (a new inode by rename;
   the mapper keeps the old one). Records appended past the count, and
   the header (not mapped), are written in place as before. Nothing
   truncates an index in place. */
#include "fileio.h"
#include "storage_files.h"
#include "safepath.h"
#include "flat_private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void
flat_view_free(struct view *v)
{
	for (unsigned i = 0; i < v->kw_count; i++)
		free(v->kw[i]);
	free(v->recs);
	i_zero(v);
}

static void
put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

void
flat_put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t
get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

uint64_t
flat_get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* A version 2 record: struct mail_rec as the core holds it (padding
   zeroed), so that the records can be mapped as a state's array. */
static void
flat_rec_encode(unsigned char *p, const struct frec *r)
{
	struct mail_rec m;

	i_zero(&m);
	flat_frec_to_mail(r, &m);
	memcpy(p, &m, IDX_REC_SIZE);
}

static void
rec_decode(const unsigned char *p, struct frec *r)
{
	struct mail_rec m;

	memcpy(&m, p, IDX_REC_SIZE);
	flat_mail_to_frec(&m, r);
	r->flags &= MAIL_FLAGS_ALL;
}

/* A version 1 record: the fields in their own order. */
static void
rec_decode_v1(const unsigned char *p, struct frec *r)
{
	r->uid = get32(p);
	r->flags = p[4] & MAIL_FLAGS_ALL;
	r->keywords = flat_get64(p + 8);
	r->date = (int64_t)flat_get64(p + 16);
	r->tz = (int32_t)get32(p + 24);
	r->modseq = flat_get64(p + 32);
	r->off = flat_get64(p + 40);
	r->len = flat_get64(p + 48);
	r->served = flat_get64(p + 56);
	r->hash = flat_get64(p + 64);
}

/* Serializes the header of v (with count records) into out; returns its
   size (a multiple of IDX_ALIGN: the records start on a page). */
static size_t
flat_header_encode(const struct view *v, size_t count, struct buf *out)
{
	size_t kwbytes = 0, size, start = out->len;
	unsigned char *p;
	uint64_t h;

	for (unsigned i = 0; i < v->kw_count; i++)
		kwbytes += strlen(v->kw[i]) + 1;
	size = (IDX_FIXED_SIZE + kwbytes + IDX_SEEN_SIZE + IDX_ALIGN - 1) / IDX_ALIGN * IDX_ALIGN;
	buf_reserve(out, size);
	p = (unsigned char *)out->data + start;
	memset(p, 0, size);
	memcpy(p, IDX_MAGIC, 8);
	put32(p + 8, IDX_VERSION);
	put32(p + 12, (uint32_t)size);
	put32(p + 16, IDX_REC_SIZE);
	put32(p + 20, v->uidvalidity);
	put32(p + 24, v->uidnext);
	put32(p + 28, v->first_recent_uid);
	flat_put64(p + 32, v->highest_modseq);
	flat_put64(p + 40, v->mail_size);
	flat_put64(p + 48, (uint64_t)v->mtime_sec);
	flat_put64(p + 56, (uint64_t)v->mtime_nsec);
	flat_put64(p + 64, v->ino);
	flat_put64(p + 72, v->dev);
	flat_put64(p + 80, v->parsed_end);
	put32(p + 88, (uint32_t)count);
	put32(p + 92, v->last_open ? IDX_FLAG_LAST_OPEN : 0);
	put32(p + 96, v->kw_count);
	put32(p + 100, (uint32_t)kwbytes);
	kwbytes = 0;
	for (unsigned i = 0; i < v->kw_count; i++) {
		size_t l = strlen(v->kw[i]) + 1;

		memcpy(p + IDX_FIXED_SIZE + kwbytes, v->kw[i], l);
		kwbytes += l;
	}
	h = flat_hash_update(HASH_INIT, p, 104);
	h = flat_hash_update(h, p + IDX_FIXED_SIZE, kwbytes);
	flat_put64(p + 104, h);
	/* the seen_below hint, tied to this header's HIGHESTMODSEQ */
	put32(p + size - IDX_SEEN_SIZE, IDX_SEEN_MAGIC);
	put32(p + size - IDX_SEEN_SIZE + 4, v->seen_below);
	flat_put64(p + size - IDX_SEEN_SIZE + 8, v->highest_modseq);
	out->len = start + size;
	out->data[out->len] = '\0';
	return size;
}

/* Decodes the keyword table (want names in kwbytes bytes at p) into v.
   Returns false if it is malformed (v keeps what it got, for
   flat_view_free()). */
static bool
index_decode_keywords(const unsigned char *p, size_t kwbytes, unsigned want, struct view *v)
{
	const char *kp = (const char *)p;
	size_t left = kwbytes;

	v->kw_count = 0;
	for (unsigned i = 0; i < want; i++) {
		const char *z = memchr(kp, '\0', left);

		if (z == NULL || z == kp)
			return false;
		v->kw[v->kw_count++] = xstrndup(kp, (size_t)(z - kp));
		left -= (size_t)(z - kp) + 1;
		kp = z + 1;
	}
	return true;
}

/* Decodes count records at p into v, whose header is decoded. Returns
   false if one is out of order or outside the parsed part of the file. */
/* True if r (after prev, NULL for the first) is a record v's header
   allows: UIDs ascending below uidnext, spans in order inside the parsed
   part of the file. */
static bool
index_rec_sane(const struct view *v, const struct frec *prev, const struct frec *r)
{
	return !(r->uid == 0 || r->uid >= v->uidnext ||
		 (prev != NULL && (r->uid <= prev->uid || r->off < prev->off + prev->len)) ||
		 r->len == 0 || r->off > v->parsed_end || r->len > v->parsed_end - r->off);
}

static bool
index_decode_records(const unsigned char *p, size_t count, struct view *v)
{
	v->recs = xmalloc((count == 0 ? 1 : count) * sizeof(*v->recs));
	v->alloc = count == 0 ? 1 : count;
	for (size_t i = 0; i < count; i++) {
		struct frec *r = &v->recs[i];

		if (v->version == IDX_VERSION_1)
			rec_decode_v1(p + i * IDX_REC_SIZE, r);
		else
			rec_decode(p + i * IDX_REC_SIZE, r);
		if (!index_rec_sane(v, i > 0 ? &v->recs[i - 1] : NULL, r))
			return false;
		v->count++;
	}
	if (v->last_open && v->count == 0)
		v->last_open = false;
	return true;
}

/* Decodes the header of an index file of size bytes (whose first avail
   bytes are at data, the whole header at least) into v (zeroed), without
   its records. Returns false if it is not a valid header; v then holds
   what was decoded, for flat_view_free(). */
static bool
index_decode_header(const unsigned char *data, size_t avail, size_t size, struct view *v)
{
	size_t hsize, kwbytes, count;
	unsigned kw_count;
	uint32_t version;
	uint64_t h;

	if (avail < IDX_FIXED_SIZE || memcmp(data, IDX_MAGIC, 8) != 0 ||
	    get32(data + 16) != IDX_REC_SIZE)
		return false;
	version = get32(data + 8);
	if (version != IDX_VERSION && version != IDX_VERSION_1)
		return false;
	hsize = get32(data + 12);
	count = get32(data + 88);
	kw_count = get32(data + 96);
	kwbytes = get32(data + 100);
	if (kw_count > MBOX_MAX_KEYWORDS || kwbytes > hsize || hsize > size || hsize > avail ||
	    IDX_FIXED_SIZE + kwbytes > hsize || count > (size - hsize) / IDX_REC_SIZE ||
	    (version == IDX_VERSION && hsize % IDX_ALIGN != 0))
		return false;
	h = flat_hash_update(HASH_INIT, data, 104);
	h = flat_hash_update(h, data + IDX_FIXED_SIZE, kwbytes);
	if (h != flat_get64(data + 104))
		return false;
	if (!index_decode_keywords(data + IDX_FIXED_SIZE, kwbytes, kw_count, v))
		return false;
	v->header_size = (uint32_t)hsize;
	v->version = version;
	v->count = count;          /* the records are not decoded yet */
	v->uidvalidity = get32(data + 20);
	v->uidnext = get32(data + 24);
	v->first_recent_uid = get32(data + 28);
	v->highest_modseq = flat_get64(data + 32);
	v->mail_size = flat_get64(data + 40);
	v->mtime_sec = (int64_t)flat_get64(data + 48);
	v->mtime_nsec = (int64_t)flat_get64(data + 56);
	v->ino = flat_get64(data + 64);
	v->dev = flat_get64(data + 72);
	v->parsed_end = flat_get64(data + 80);
	v->last_open = (get32(data + 92) & IDX_FLAG_LAST_OPEN) != 0;
	/* The hint counts only if the header was written with it (a
	   writer that does not know it zeroes the header's room, or leaves
	   a HIGHESTMODSEQ that does not match). */
	if (version == IDX_VERSION && IDX_FIXED_SIZE + kwbytes + IDX_SEEN_SIZE <= hsize &&
	    get32(data + hsize - IDX_SEEN_SIZE) == IDX_SEEN_MAGIC &&
	    flat_get64(data + hsize - IDX_SEEN_SIZE + 8) == v->highest_modseq &&
	    get32(data + hsize - IDX_SEEN_SIZE + 4) <= v->uidnext)
		v->seen_below = get32(data + hsize - IDX_SEEN_SIZE + 4);
	return v->uidvalidity != 0 && v->uidnext != 0 && v->parsed_end <= v->mail_size;
}

/* Decodes the size bytes of an index file into v (zeroed). Returns false
   if they are not a valid index; v then holds what was decoded, for
   flat_view_free(). */
static bool
index_decode(const unsigned char *data, size_t size, struct view *v)
{
	size_t count;

	if (!index_decode_header(data, size, size, v))
		return false;
	count = v->count;
	v->count = 0;
	return index_decode_records(data + v->header_size, count, v);
}

/* Reads the index at path into v. Returns 1 if valid, 0 if missing or
   invalid, -1 on I/O error. On 1, *fd_r is the index opened read-write. */
int
flat_index_read(const char *base, const char *path, struct view *v, int *fd_r, char **error_r)
{
	unsigned char *data = NULL;
	struct stat st;
	size_t size;
	ssize_t n;
	int fd;

	i_zero(v);
	*fd_r = -1;
	fd = fs_open_beneath(base, path, O_RDWR, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("fstat %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (st.st_size < IDX_FIXED_SIZE || (uint64_t)st.st_size > (uint64_t)SSIZE_MAX / 2)
		goto invalid;
	size = (size_t)st.st_size;
	data = xmalloc(size);
	n = fd_pread_full(fd, data, size, 0);
	if (n < 0) {
		*error_r = xasprintf("read %s: %s", path, strerror(errno));
		free(data);
		close(fd);
		return -1;
	}
	if (!index_decode(data, (size_t)n, v))
		goto invalid;
	free(data);
	*fd_r = fd;
	return 1;
invalid:
	free(data);
	close(fd);
	flat_view_free(v);
	return 0;
}

/* One pread() of the first page, a second one for a longer keyword
   table: O(1) whatever the number of records. */
int
flat_index_read_head(const char *base, const char *path, struct view *v, int *fd_r,
		     char **error_r)
{
	unsigned char *data;
	struct stat st;
	size_t want = IDX_ALIGN;
	ssize_t n;
	int fd;

	i_zero(v);
	*fd_r = -1;
	fd = fs_open_beneath(base, path, O_RDWR, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("fstat %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (st.st_size < IDX_FIXED_SIZE || (uint64_t)st.st_size > (uint64_t)SSIZE_MAX / 2) {
		close(fd);
		return 0;
	}
	for (unsigned pass = 0; pass < 2; pass++) {
		if (want > (size_t)st.st_size)
			want = (size_t)st.st_size;
		data = xmalloc(want);
		n = fd_pread_full(fd, data, want, 0);
		if (n < 0) {
			*error_r = xasprintf("read %s: %s", path, strerror(errno));
			free(data);
			close(fd);
			return -1;
		}
		if ((size_t)n >= IDX_FIXED_SIZE && get32(data + 12) > (size_t)n && pass == 0 &&
		    get32(data + 12) <= (size_t)st.st_size) {
			want = get32(data + 12);
			free(data);
			continue;
		}
		break;
	}
	if (!index_decode_header(data, (size_t)n, (size_t)st.st_size, v) ||
	    v->version != IDX_VERSION) {
		free(data);
		close(fd);
		flat_view_free(v);
		return 0;
	}
	free(data);
	*fd_r = fd;
	return 1;
}

bool
flat_index_tail_sane(const struct view *v, const struct mbox_state *state)
{
	size_t from = v->count > IDX_MAP_CHECK_TAIL ? v->count - IDX_MAP_CHECK_TAIL : 0;
	struct frec prev, r;

	i_zero(&prev);
	if (state->count != v->count)
		return false;
	for (size_t i = from; i < v->count; i++) {
		flat_mail_to_frec(&state->mails[i], &r);
		if ((r.flags & ~MAIL_FLAGS_ALL) != 0 ||
		    !index_rec_sane(v, i > from ? &prev : NULL, &r))
			return false;
		prev = r;
	}
	/* the first one too: the binary search relies on both ends */
	if (v->count > 0) {
		flat_mail_to_frec(&state->mails[0], &r);
		if (!index_rec_sane(v, NULL, &r) || (r.flags & ~MAIL_FLAGS_ALL) != 0)
			return false;
	}
	return true;
}

/* Keeps IDX_ROOM octets allocated past the end of the index (not counted
   in its size) whenever less than half of that is left, so that the
   records of the next appends, and a flag change, are written on a full
   disk without a new block: the mail file meets the full disk first, and
   the index stays in step with it. Best effort (a file system without
   fallocate() goes without). */
static void
index_keep_room(int fd, struct stat *st)
{
	if ((uint64_t)st->st_blocks * 512 < (uint64_t)st->st_size + IDX_ROOM / 2 &&
	    fallocate(fd, FALLOC_FL_KEEP_SIZE, st->st_size, IDX_ROOM) == 0)
		(void)fstat(fd, st);    /* it may have changed the times */
}

void
flat_box_set_index_fd(struct storage_box *box, int fd, uint32_t header_size)
{
	struct stat st;

	if (box->index_fd != fd)
		box->index_mapped = false;
	if (box->index_fd >= 0 && box->index_fd != fd)
		close(box->index_fd);
	box->index_fd = fd;
	box->index_header_size = header_size;
	box->index_ino = 0;
	if (fd >= 0 && fstat(fd, &st) == 0) {
		index_keep_room(fd, &st);
		box->index_ino = (uint64_t)st.st_ino;
		box->index_size = (uint64_t)st.st_size;
		box->index_mtime_sec = (int64_t)st.st_mtim.tv_sec;
		box->index_mtime_nsec = (int64_t)st.st_mtim.tv_nsec;
	}
}

/* Serializes v (its header and its records) into out, as a whole index
   file; returns the header size. */
size_t
flat_index_encode(const struct view *v, struct buf *out)
{
	size_t hsize = flat_header_encode(v, v->count, out);

	buf_reserve(out, v->count * IDX_REC_SIZE);
	for (size_t i = 0; i < v->count; i++) {
		flat_rec_encode((unsigned char *)out->data + out->len, &v->recs[i]);
		out->len += IDX_REC_SIZE;
	}
	return hsize;
}

/* Writes v as a whole new index (temp file, fsync, rename, fsync of the
   folder) and makes it box's index. */
int
flat_index_write_full(struct storage_box *box, const struct view *v, char **error_r)
{
	struct buf b = BUF_INIT;
	size_t hsize;
	int fd;

	if (mkdir_parents(box->user_dir, box->index_tmp) < 0) {
		*error_r = xasprintf("mkdir for %s: %s", box->index_tmp, strerror(errno));
		return -1;
	}
	hsize = flat_index_encode(v, &b);
	fd = file_tmp_create(box->user_dir, box->index_tmp, b.data, b.len, 0600);
	buf_free(&b);
	if (fd < 0) {
		*error_r = xasprintf("write %s: %s", box->index_tmp, strerror(errno));
		return -1;
	}
	if (file_tmp_commit(box->user_dir, fd, box->index_tmp, box->index_path) < 0) {
		*error_r = xasprintf("rename %s: %s", box->index_tmp, strerror(errno));
		close(fd);
		return -1;
	}
	flat_box_set_index_fd(box, fd, (uint32_t)hsize);
	return 0;
}

/* Writes the n encoded records recs at record index first and then the
   header hdr, in place, into box's index (whose header size must be
   hdr's). Records first: a reader who sees the new header finds its
   records. One pwrite() each, no fsync (see the top of the file), except
   that records spanning more than one page are made durable before the
   header that counts them: an open that maps the index checks only its
   last records.

   Records the index on disk already counts (first below its count) are
   overwritten only when no other process maps the file
   (mbox_map_write_begin()); else returns 1 and writes nothing: the
   caller rewrites the whole index. Returns 0 when written, -1 on error. */
static int
index_put_tail(struct storage_box *box, const struct buf *hdr, size_t first,
	       const unsigned char *recs, size_t n, char **error_r)
{
	unsigned char cnt[4];
	bool overwrite, locked = false;
	int ret = 0;

	overwrite = fd_pread_full(box->index_fd, cnt, sizeof(cnt), 88) != (ssize_t)sizeof(cnt) ||
		first < get32(cnt);
	if (overwrite) {
		if (!mbox_map_write_begin(box->index_fd))
			return 1;
		locked = true;
	}
	if ((n > 0 && fd_pwrite_full(box->index_fd, recs, n * IDX_REC_SIZE,
				  hdr->len + (uint64_t)first * IDX_REC_SIZE) < 0) ||
	    (n * IDX_REC_SIZE > IDX_ALIGN && fdatasync(box->index_fd) < 0) ||
	    fd_pwrite_full(box->index_fd, hdr->data, hdr->len, 0) < 0) {
		*error_r = xasprintf("write %s: %s", box->index_path, strerror(errno));
		ret = -1;
	}
	if (locked)
		mbox_map_write_end(box->index_fd, box->index_mapped);
	if (ret == 0)
		flat_box_set_index_fd(box, box->index_fd, (uint32_t)hdr->len);
	return ret;
}

/* Writes records [first, count) of v and then the header in place into
   box's index, whose keyword table must be v's. Falls back to a full
   write when the header would not fit. */
int
flat_index_write_tail(struct storage_box *box, const struct view *v, size_t first, char **error_r)
{
	struct buf b = BUF_INIT;
	unsigned char *recs;
	size_t hsize, n;
	int ret;

	if (box->index_fd < 0 || first > v->count)
		return flat_index_write_full(box, v, error_r);
	hsize = flat_header_encode(v, v->count, &b);
	if (hsize != box->index_header_size) {
		buf_free(&b);
		return flat_index_write_full(box, v, error_r);
	}
	n = v->count - first;
	recs = xmalloc(n == 0 ? 1 : n * IDX_REC_SIZE);
	for (size_t i = 0; i < n; i++)
		flat_rec_encode(recs + i * IDX_REC_SIZE, &v->recs[first + i]);
	ret = index_put_tail(box, &b, first, recs, n, error_r);
	free(recs);
	buf_free(&b);
	if (ret > 0)
		return flat_index_write_full(box, v, error_r);
	return ret;
}

/* UIDVALIDITY: see storage_uidvalidity_new(); the record is
   .imap/uidvalidity of the user. */
uint32_t
flat_new_uidvalidity(struct storage_box *box, uint32_t old)
{
	char *tmp_path = xasprintf("%s.tmp", box->uidv_path);
	bool can_write = mkdir_parents(box->user_dir, tmp_path) == 0;
	uint32_t v = storage_uidvalidity_new(box->user_dir, box->uidv_path,
					     can_write ? tmp_path : NULL, old);

	free(tmp_path);
	return v;
}

void
flat_frec_to_mail(const struct frec *r, struct mail_rec *m)
{
	m->uid = r->uid;
	m->flags = r->flags;
	m->keywords = r->keywords;
	m->internal_date = r->date;
	m->tz_minutes = r->tz;
	m->size = r->served;
	m->modseq = r->modseq;
	m->priv[0] = r->off;
	m->priv[1] = r->len;
	m->priv[2] = r->hash;
}

void
flat_mail_to_frec(const struct mail_rec *m, struct frec *r)
{
	i_zero(r);
	r->uid = m->uid;
	r->flags = m->flags;
	r->keywords = m->keywords;
	r->date = m->internal_date;
	r->tz = m->tz_minutes;
	r->served = m->size;
	r->modseq = m->modseq;
	r->off = m->priv[0];
	r->len = m->priv[1];
	r->hash = m->priv[2];
}

/* The index content that state and box stand for. */
void
flat_view_from_state(const struct storage_box *box, const struct mbox_state *state,
		     bool with_recs, struct view *v)
{
	i_zero(v);
	v->uidvalidity = state->uidvalidity;
	v->uidnext = state->uidnext;
	v->first_recent_uid = state->first_recent_uid;
	v->highest_modseq = state->highest_modseq;
	v->seen_below = state->seen_below;
	v->mail_size = box->mail_size;
	v->ino = box->ino;
	v->dev = box->dev;
	v->mtime_sec = box->mtime_sec;
	v->mtime_nsec = box->mtime_nsec;
	v->parsed_end = box->parsed_end;
	v->last_open = box->last_open;
	for (unsigned i = 0; i < state->keyword_count && i < MBOX_MAX_KEYWORDS; i++)
		v->kw[v->kw_count++] = xstrdup(state->keywords[i]);
	if (!with_recs)
		return;
	v->alloc = state->count == 0 ? 1 : state->count;
	v->recs = xmalloc(v->alloc * sizeof(*v->recs));
	for (size_t i = 0; i < state->count; i++)
		flat_mail_to_frec(&state->mails[i], &v->recs[v->count++]);
}

bool
flat_keywords_same(const struct view *v, const struct mbox_state *state)
{
	if (v->kw_count != state->keyword_count)
		return false;
	for (unsigned i = 0; i < v->kw_count; i++) {
		if (strcmp(v->kw[i], state->keywords[i]) != 0)
			return false;
	}
	return true;
}

int
flat_write_state(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
		 char **error_r)
{
	bool took = !box->locked;
	struct view v;
	int ret;

	if (took && flat_lock(box, false, err_r, error_r) < 0)
		return -1;
	flat_view_from_state(box, state, true, &v);
	ret = flat_index_write_full(box, &v, error_r);
	if (ret == 0)
		box->disk_same = true;
	else
		*err_r = storage_error_from_errno(errno);
	flat_view_free(&v);
	if (took)
		flat_unlock(box);
	return ret;
}

/* True if the index on disk is the one box last wrote or read (same
   inode, size and mtime: one stat()), so that what box remembers of it
   holds. */
bool
flat_index_ours(const struct storage_box *box)
{
	struct stat ist;

	if (box->index_fd < 0 || box->index_ino == 0 ||
	    fs_stat_hint(box->index_path, &ist) < 0)
		return false;
	return box->index_ino == (uint64_t)ist.st_ino && box->index_size == (uint64_t)ist.st_size &&
		box->index_mtime_sec == (int64_t)ist.st_mtim.tv_sec &&
		box->index_mtime_nsec == (int64_t)ist.st_mtim.tv_nsec;
}

/* Writes records [first, state->count) of state and the header, in place,
   into box's index, which must hold state's records below first
   (disk_same). A keyword table that outgrew the header means a full
   rewrite. O(records written). */
int
flat_index_write_state_tail(struct storage_box *box, struct mbox_state *state, size_t first,
			    char **error_r)
{
	enum storage_error err;
	struct buf b = BUF_INIT;
	unsigned char *recs;
	struct view hv;
	size_t n;
	int ret;

	if (box->index_fd < 0 || !box->disk_same || first > state->count ||
	    state->keyword_count > MBOX_MAX_KEYWORDS)
		return flat_write_state(box, state, &err, error_r);
	flat_view_from_state(box, state, false, &hv);
	(void)flat_header_encode(&hv, state->count, &b);
	flat_view_free(&hv);
	if (b.len != box->index_header_size) {
		buf_free(&b);
		return flat_write_state(box, state, &err, error_r);
	}
	n = state->count - first;
	recs = xmalloc(n == 0 ? 1 : n * IDX_REC_SIZE);
	for (size_t i = 0; i < n; i++) {
		struct frec r;

		flat_mail_to_frec(&state->mails[first + i], &r);
		flat_rec_encode(recs + i * IDX_REC_SIZE, &r);
	}
	ret = index_put_tail(box, &b, first, recs, n, error_r);
	free(recs);
	buf_free(&b);
	if (ret > 0)
		return flat_write_state(box, state, &err, error_r);
	return ret;
}

int
flat_flags_changed(struct storage_box *box, struct mbox_state *state, size_t idx,
		   enum storage_error *err_r, char **error_r)
{
	unsigned char rec[IDX_REC_SIZE], old[IDX_REC_SIZE];
	struct frec r;
	struct view v;
	struct buf b = BUF_INIT;
	size_t hsize;
	bool have_old;

	*err_r = STORAGE_ERR_NONE;
	if (idx >= state->count)
		return 0;
	if (!box->disk_same || box->index_fd < 0 || state->keyword_count > MBOX_MAX_KEYWORDS)
		return flat_write_state(box, state, err_r, error_r);
	flat_view_from_state(box, state, false, &v);
	hsize = flat_header_encode(&v, state->count, &b);
	flat_view_free(&v);
	if (hsize != box->index_header_size) {
		buf_free(&b);
		return flat_write_state(box, state, err_r, error_r);
	}
	/* Another process maps the index: it must not see the record
	   change under it, so the index is replaced instead. */
	if (!mbox_map_write_begin(box->index_fd)) {
		buf_free(&b);
		return flat_write_state(box, state, err_r, error_r);
	}
	flat_mail_to_frec(&state->mails[idx], &r);
	flat_rec_encode(rec, &r);
	have_old = fd_pread_full(box->index_fd, old, sizeof(old), hsize + idx * IDX_REC_SIZE) ==
		(ssize_t)sizeof(old);
	if (fd_pwrite_full(box->index_fd, rec, sizeof(rec), hsize + idx * IDX_REC_SIZE) < 0 ||
	    fd_pwrite_full(box->index_fd, b.data, b.len, 0) < 0) {
		int err = errno;

		/* The record may be written and not the header: put the old
		   one back (in place, no new block), so that a refused STORE
		   leaves the flags on disk as they were. */
		if (have_old)
			(void)fd_pwrite_full(box->index_fd, old, sizeof(old),
					     hsize + idx * IDX_REC_SIZE);
		*err_r = storage_error_from_errno(err);
		*error_r = xasprintf("write %s: %s", box->index_path, strerror(err));
		mbox_map_write_end(box->index_fd, box->index_mapped);
		buf_free(&b);
		return -1;
	}
	mbox_map_write_end(box->index_fd, box->index_mapped);
	buf_free(&b);
	flat_box_set_index_fd(box, box->index_fd, (uint32_t)hsize);
	return 0;
}

void
flat_hints_changed(struct storage_box *box, const struct mbox_state *state)
{
	struct buf b = BUF_INIT;
	struct view v;

	if (box->index_fd < 0 || !box->disk_same || state->keyword_count > MBOX_MAX_KEYWORDS ||
	    !flat_index_ours(box))
		return;
	/* Only the header: the mapped records are not touched. */
	flat_view_from_state(box, state, false, &v);
	if (flat_header_encode(&v, state->count, &b) == box->index_header_size) {
		if (fd_pwrite_full(box->index_fd, b.data, b.len, 0) == 0)
			flat_box_set_index_fd(box, box->index_fd, (uint32_t)b.len);
		else
			box->disk_same = false;
	}
	flat_view_free(&v);
	buf_free(&b);
}
