/* maildir_index.c: imapserver-index, a binary image of what an open of
   the folder computes from dovecot-uidlist and the scan of cur/ and new/,
   so that the open of a large folder that did not change needs neither.

     imapserver-index     a header (a page, or more for a long keyword
                          table), then one struct mail_rec per message
                          (host byte order, on a page boundary: mapped
                          into the state, see mbox_state_map()), then the
                          messages' file names, each ending in a NUL,
                          then, per message, where its name starts (from
                          the first name) and its UID (two uint32_t, on
                          a 4-byte boundary).

   dovecot-uidlist stays the interoperable truth; this file is a cache
   of it. It is trusted only when the header's stamps of dovecot-uidlist,
   dovecot-keywords and the cur/ and new/ folders are the ones on disk now
   (so neither the uidlist nor a file name changed since it was written),
   and it is written only from a state that a full open would compute the
   same way from those files: every message described, in cur/, with the
   modseq its uidlist record holds, for the very letters its name has; no
   flag change waiting for the uidlist; folder stamps old enough to be
   trusted (see maildir_util.c). Anything else: the full open, as before,
   which writes the index again.

   Safety: the index is written to a temporary file, fsynced and renamed
   over (file_replace()), never changed in place, so a mapping of it never
   sees a change and a crash leaves the old index or the new one, whole.
   The one exception is the header's first_recent and seen_below (with
   the header hash), raised in place when a session takes the \Recent
   messages or the core learns that more messages are \Seen
   (md_hints_changed()): the header is read at open, never through a
   mapping, and a torn header fails its hash (a full open).
   It holds nothing the uidlist and the folders do not: a lost index
   costs one full open. A header hash covers the header; a hash of the
   records and names, checked when the names are loaded, covers the
   rest.

   The file table (box->files: names, recorded modseqs) is loaded from
   the index only when an operation that changes the folder needs it
   (md_files_load()): an open, a sync() that finds nothing changed and
   reading a message (md_index_name(), a binary search in the mapped
   index) do not. */
#include "fileio.h"
#include "log.h"
#include "storage_files.h"
#include "backends/maildir/maildir_private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MDI_MAGIC "MDINDEX1"
#define MDI_VERSION 1
#define MDI_ALIGN 4096

struct mdi_header {
	char magic[8];
	uint32_t version, header_size;
	uint32_t rec_size, count;
	uint32_t uidvalidity, uidnext;
	uint32_t first_recent, kw_count;
	uint32_t kwbytes;
	uint32_t seen_below;       /* mbox_state.seen_below (0 in old files) */
	uint64_t highest, disk_highest, disk_ceiling;
	uint64_t names_off, names_len, body_hash, offs_off;
	uint64_t ul_ino, ul_size;
	int64_t ul_sec, ul_nsec;
	uint64_t kw_exists, kw_ino, kw_size;
	int64_t kw_sec, kw_nsec;
	uint64_t cur_ino;
	int64_t cur_sec, cur_nsec;
	uint64_t new_ino;
	int64_t new_sec, new_nsec;
	uint64_t hash;             /* of the bytes above and the keyword names */
};

_Static_assert(sizeof(struct mdi_header) % 8 == 0, "mdi_header has no tail padding");
_Static_assert(sizeof(struct mdi_header) < MDI_ALIGN, "mdi_header fits a page");

/* FNV-1a, 64 bits. */
static uint64_t
mdi_hash(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define MDI_HASH_INIT 0xcbf29ce484222325ULL

static void
mdi_put_file_stamp(const struct file_stamp *fs, uint64_t *ino, uint64_t *size, int64_t *sec,
		   int64_t *nsec)
{
	*ino = fs->ino;
	*size = fs->size;
	*sec = fs->sec;
	*nsec = fs->nsec;
}

static bool
mdi_dir_stamp_equal(const struct dir_stamp *a, const struct dir_stamp *b)
{
	return a->taken && b->taken && a->ino == b->ino && a->sec == b->sec && a->nsec == b->nsec;
}

/* The index on disk stands for box's stamps now. */
static void
mdi_remember(struct storage_box *box)
{
	box->index_known = true;
	box->index_ul = box->uidlist_stamp;
	box->index_cur = box->cur_stamp;
	box->index_new = box->new_stamp;
}

/* True if box's state (box->files, its stamps) is one a full open would
   compute the same way from the files on disk (see the top). */
static bool
mdi_writable(const struct storage_box *box)
{
	struct file_stamp fs;

	if (box->dirty || box->rewrite || box->has_young || box->young_skipped ||
	    box->files_lazy || box->recheck_at != 0 || !box->cur_stamp.valid ||
	    !box->new_stamp.valid || !box->uidlist_stamp.exists || box->uidvalidity == 0 ||
	    box->files.count == 0)
		return false;
	md_stamp_file(box->user_dir, box->uidlist_path, &fs);
	if (!md_file_stamp_equal(&fs, &box->uidlist_stamp))
		return false;
	for (size_t i = 0; i < box->files.count; i++) {
		const struct mfile *f = &box->files.f[i];

		if (f->in_new || !f->described || f->modseq == 0 ||
		    f->rec_letters != md_name_letters(f->name))
			return false;
	}
	return true;
}

/* The records and names of box->files, as a full open makes them (flags
   and keywords from the names, keyword numbers in order of appearance),
   appended to out; the keyword table in *kw; in *seen_below_r the
   lowest UID without \Seen (else uidnext). Returns the highest modseq
   of the records. */
static uint64_t
mdi_encode_body(struct storage_box *box, struct mbox_state *kw, struct buf *out,
		uint64_t *names_off_r, uint64_t *names_len_r, uint32_t *seen_below_r)
{
	uint64_t highest = 0;
	size_t start;

	*seen_below_r = box->uidnext;

	for (size_t i = 0; i < box->files.count; i++) {
		const struct mfile *f = &box->files.f[i];
		struct mail_rec m;
		uint8_t flags;
		uint64_t kwbits;

		md_flags_from_name(box, kw, f->name, &flags, &kwbits);
		i_zero(&m);
		m.uid = f->uid;
		m.flags = flags & MAIL_FLAGS_ALL;
		m.keywords = kwbits;
		m.internal_date = f->date;
		m.tz_minutes = f->tz;
		m.size = f->vsize;
		m.modseq = f->modseq;
		if (m.modseq > highest)
			highest = m.modseq;
		if ((m.flags & MAIL_SEEN) == 0 && m.uid < *seen_below_r)
			*seen_below_r = m.uid;
		buf_append(out, &m, sizeof(m));
	}
	*names_off_r = out->len;
	start = out->len;
	for (size_t i = 0; i < box->files.count; i++)
		buf_append(out, box->files.f[i].name, strlen(box->files.f[i].name) + 1);
	*names_len_r = out->len - start;
	/* where each name starts */
	while (out->len % 4 != 0)
		buf_append_c(out, '\0');
	for (size_t i = 0, off = 0; i < box->files.count; i++) {
		uint32_t o[2] = { (uint32_t)off, box->files.f[i].uid };

		buf_append(out, o, sizeof(o));
		off += strlen(box->files.f[i].name) + 1;
	}
	return highest;
}

/* Writes the index of box if its state allows (see mdi_writable());
   failing to is not an error (the next open is a full one). O(messages):
   called after a full open and at close, never per command. */
void
md_index_write(struct storage_box *box)
{
	struct mdi_header h;
	struct mbox_state kw;
	struct buf b = BUF_INIT;
	struct file_stamp kfs;
	uint64_t highest, names_off, names_len;
	uint32_t seen_below;
	size_t kwbytes = 0, hsize;

	if (box->index_known && md_file_stamp_equal(&box->index_ul, &box->uidlist_stamp) &&
	    mdi_dir_stamp_equal(&box->index_cur, &box->cur_stamp) &&
	    mdi_dir_stamp_equal(&box->index_new, &box->new_stamp))
		return;
	if (!mdi_writable(box))
		return;
	md_stamp_file(box->user_dir, box->kw_path, &kfs);
	mbox_state_init(&kw);
	/* the header's room first, filled in below */
	for (size_t i = 0; i < box->files.count; i++) {
		uint8_t flags;
		uint64_t bits;

		md_flags_from_name(box, &kw, box->files.f[i].name, &flags, &bits);
	}
	for (unsigned i = 0; i < kw.keyword_count; i++)
		kwbytes += strlen(kw.keywords[i]) + 1;
	hsize = (sizeof(h) + kwbytes + MDI_ALIGN - 1) / MDI_ALIGN * MDI_ALIGN;
	buf_reserve(&b, hsize);
	memset(b.data, 0, hsize);
	b.len = hsize;
	highest = mdi_encode_body(box, &kw, &b, &names_off, &names_len, &seen_below);
	i_zero(&h);
	h.seen_below = seen_below;
	memcpy(h.magic, MDI_MAGIC, 8);
	h.version = MDI_VERSION;
	h.header_size = (uint32_t)hsize;
	h.rec_size = MAIL_REC_SIZE;
	h.count = (uint32_t)box->files.count;
	h.uidvalidity = box->uidvalidity;
	h.uidnext = box->uidnext;
	h.first_recent = box->first_recent;
	h.kw_count = kw.keyword_count;
	h.kwbytes = (uint32_t)kwbytes;
	/* what a full open would take: the ceiling of the uidlist */
	h.highest = box->disk_ceiling > highest ? box->disk_ceiling : highest;
	h.disk_highest = box->disk_highest;
	h.disk_ceiling = box->disk_ceiling;
	h.names_off = names_off;
	h.names_len = names_len;
	h.offs_off = (names_off + names_len + 3) / 4 * 4;
	h.body_hash = mdi_hash(MDI_HASH_INIT, b.data + hsize, (size_t)(names_off + names_len - hsize));
	mdi_put_file_stamp(&box->uidlist_stamp, &h.ul_ino, &h.ul_size, &h.ul_sec, &h.ul_nsec);
	h.kw_exists = kfs.exists;
	mdi_put_file_stamp(&kfs, &h.kw_ino, &h.kw_size, &h.kw_sec, &h.kw_nsec);
	h.cur_ino = box->cur_stamp.ino;
	h.cur_sec = box->cur_stamp.sec;
	h.cur_nsec = box->cur_stamp.nsec;
	h.new_ino = box->new_stamp.ino;
	h.new_sec = box->new_stamp.sec;
	h.new_nsec = box->new_stamp.nsec;
	memcpy(b.data, &h, sizeof(h));
	kwbytes = 0;
	for (unsigned i = 0; i < kw.keyword_count; i++) {
		size_t l = strlen(kw.keywords[i]) + 1;

		memcpy(b.data + sizeof(h) + kwbytes, kw.keywords[i], l);
		kwbytes += l;
	}
	h.hash = mdi_hash(MDI_HASH_INIT, b.data, offsetof(struct mdi_header, hash));
	h.hash = mdi_hash(h.hash, b.data + sizeof(h), kwbytes);
	memcpy(b.data + offsetof(struct mdi_header, hash), &h.hash, sizeof(h.hash));
	if (file_replace(box->user_dir, box->index_tmp, box->index_path, b.data, b.len) < 0) {
		log_warn("-", "%s: %s", box->index_path, strerror(errno));
	} else {
		mdi_remember(box);
	}
	mbox_state_deinit(&kw);
	buf_free(&b);
}

/* Reads and checks the header of the index at fd into *h and the keyword
   names into kw_r (count names, NUL-separated, malloc'ed). */
static bool
mdi_read_header(int fd, struct mdi_header *h, char **kw_r)
{
	struct stat st;
	char *kw;
	uint64_t hash;

	*kw_r = NULL;
	if (fstat(fd, &st) < 0 || fd_pread_full(fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h) ||
	    memcmp(h->magic, MDI_MAGIC, 8) != 0 || h->version != MDI_VERSION ||
	    h->rec_size != MAIL_REC_SIZE || h->header_size % MDI_ALIGN != 0 ||
	    h->kw_count > MBOX_MAX_KEYWORDS || h->kwbytes > h->header_size - sizeof(*h) ||
	    h->count == 0 || h->count > MD_MAX_FILES ||
	    h->names_off != h->header_size + (uint64_t)h->count * MAIL_REC_SIZE ||
	    h->names_len > (uint64_t)st.st_size || h->names_len > UINT32_MAX ||
	    h->offs_off != (h->names_off + h->names_len + 3) / 4 * 4 ||
	    h->offs_off + (uint64_t)h->count * 8 != (uint64_t)st.st_size)
		return false;
	kw = xmalloc(h->kwbytes + 1);
	if (fd_pread_full(fd, kw, h->kwbytes, sizeof(*h)) != (ssize_t)h->kwbytes) {
		free(kw);
		return false;
	}
	kw[h->kwbytes] = '\0';
	hash = mdi_hash(MDI_HASH_INIT, h, offsetof(struct mdi_header, hash));
	hash = mdi_hash(hash, kw, h->kwbytes);
	if (hash != h->hash || h->uidvalidity == 0 || h->uidnext == 0) {
		free(kw);
		return false;
	}
	*kw_r = kw;
	return true;
}

/* True if the files the index was made from are as it saw them. */
static bool
mdi_stamps_match(struct storage_box *box, const struct mdi_header *h)
{
	struct file_stamp ul, kw;
	struct dir_stamp cur = { .taken = true, .ino = h->cur_ino, .sec = h->cur_sec,
				 .nsec = h->cur_nsec };
	struct dir_stamp new = { .taken = true, .ino = h->new_ino, .sec = h->new_sec,
				 .nsec = h->new_nsec };

	md_stamp_file(box->user_dir, box->uidlist_path, &ul);
	md_stamp_file(box->user_dir, box->kw_path, &kw);
	return ul.exists && ul.ino == h->ul_ino && ul.size == h->ul_size && ul.sec == h->ul_sec &&
		ul.nsec == h->ul_nsec && kw.exists == (h->kw_exists != 0) &&
		(!kw.exists || (kw.ino == h->kw_ino && kw.size == h->kw_size &&
				kw.sec == h->kw_sec && kw.nsec == h->kw_nsec)) &&
		md_dir_unchanged(box->user_dir, box->cur_dir, &cur) &&
		md_dir_unchanged(box->user_dir, box->new_dir, &new);
}

/* Takes the index's header into a fresh state and box. Returns false if
   the keyword table does not map one to one. */
static bool
mdi_take_header(struct storage_box *box, struct mbox_state *state, const struct mdi_header *h,
		const char *kw)
{
	state->uidvalidity = h->uidvalidity;
	state->uidnext = h->uidnext;
	state->first_recent_uid = h->first_recent;
	state->seen_below = h->seen_below <= h->uidnext ? h->seen_below : 0;
	if (h->highest > state->highest_modseq)
		state->highest_modseq = h->highest;
	for (unsigned k = 0; k < h->kw_count; k++) {
		if (*kw == '\0' || mbox_state_keyword(state, kw, true) != (int)k)
			return false;
		kw += strlen(kw) + 1;
	}
	box->uidvalidity = h->uidvalidity;
	box->uidnext = h->uidnext;
	box->first_recent = h->first_recent;
	box->disk_highest = h->disk_highest;
	box->disk_ceiling = h->disk_ceiling;
	box->highest = h->highest;
	box->uidlist_stamp = (struct file_stamp){ .exists = true, .ino = h->ul_ino,
						  .size = h->ul_size, .sec = h->ul_sec,
						  .nsec = h->ul_nsec };
	box->cur_stamp = (struct dir_stamp){ .taken = true, .valid = true, .ino = h->cur_ino,
					     .sec = h->cur_sec, .nsec = h->cur_nsec };
	box->new_stamp = (struct dir_stamp){ .taken = true, .valid = true, .ino = h->new_ino,
					     .sec = h->new_sec, .nsec = h->new_nsec };
	box->has_young = false;
	box->young_skipped = false;
	box->recheck_at = 0;
	return true;
}

/* The records of the index into a fresh state: mapped for a large
   folder, read for a small one. */
static bool
mdi_load_records(int fd, const struct mdi_header *h, struct mbox_state *state)
{
	char *error = NULL;
	struct mail_rec *recs;
	bool ok = true;

	if (h->count >= storage_map_min_count) {
		if (mbox_state_map(state, fd, h->header_size, h->count, &error) == 0)
			return true;
		free(error);
	}
	recs = xmalloc((size_t)h->count * sizeof(*recs));
	if (fd_pread_full(fd, recs, (size_t)h->count * sizeof(*recs), h->header_size) !=
	    (ssize_t)((size_t)h->count * sizeof(*recs))) {
		free(recs);
		return false;
	}
	mbox_state_reserve(state, h->count);
	for (size_t i = 0; i < h->count && ok; i++) {
		ok = recs[i].uid != 0 && (i == 0 || recs[i].uid > recs[i - 1].uid);
		if (ok)
			(void)mbox_state_append(state, &recs[i]);
	}
	free(recs);
	return ok;
}

/* The open of a folder that did not change since its index was written:
   the header read, the stamps compared, the records mapped; O(1) in the
   number of messages for a large folder. The lock is held. Returns true
   if state and box are loaded (box->files waits for md_files_load()),
   false if the full open must run (state and box untouched). */
bool
md_index_open(struct storage_box *box, struct mbox_state *state)
{
	struct mdi_header h;
	char *kw = NULL;
	size_t n;
	int fd;

	if (state->uidvalidity != 0 || state->count != 0 || state->mapped)
		return false;
	fd = fs_open_beneath(box->user_dir, box->index_path, O_RDONLY, 0);
	if (fd < 0)
		return false;
	if (!mdi_read_header(fd, &h, &kw) || !mdi_stamps_match(box, &h) ||
	    !mdi_load_records(fd, &h, state))
		goto fail;
	n = state->count;
	/* the ends of what the binary search relies on */
	if (n != h.count || state->mails[0].uid == 0 || state->mails[n - 1].uid >= h.uidnext ||
	    (n > 1 && state->mails[n - 2].uid >= state->mails[n - 1].uid))
		goto fail;
	md_kw_read(box);
	if (!mdi_take_header(box, state, &h, kw))
		goto fail;
	free(kw);
	box->index_fd = fd;
	box->index_count = h.count;
	box->index_names_off = h.names_off;
	box->index_names_len = h.names_len;
	box->index_body_hash = h.body_hash;
	box->index_header_size = h.header_size;
	box->index_offs_off = h.offs_off;
	box->index_map_len = (size_t)(h.offs_off + (uint64_t)h.count * 8);
	box->index_map = mmap(NULL, box->index_map_len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (box->index_map == MAP_FAILED)
		box->index_map = NULL;
	box->files_lazy = true;
	mdi_remember(box);
	return true;
fail:
	free(kw);
	close(fd);
	mbox_state_deinit(state);
	mbox_state_init(state);
	return false;
}

/* Builds box->files from the records and names at the index's fd.
   Returns false if they are not what the header promised. */
static bool
mdi_load_files(struct storage_box *box)
{
	size_t rbytes = box->index_count * sizeof(struct mail_rec);
	size_t total = rbytes + (size_t)box->index_names_len;
	char *data = xmalloc(total + 1), *name;
	struct mail_rec m;
	bool ok;

	ok = fd_pread_full(box->index_fd, data, total, box->index_header_size) == (ssize_t)total &&
		mdi_hash(MDI_HASH_INIT, data, total) == box->index_body_hash;
	data[total] = '\0';
	name = data + rbytes;
	for (size_t i = 0; ok && i < box->index_count; i++) {
		struct mfile *f;
		size_t len;

		memcpy(&m, data + i * sizeof(m), sizeof(m));
		len = strlen(name);
		if (name + len >= data + total || len == 0) {
			ok = false;
			break;
		}
		f = md_ftable_add(&box->files);
		f->uid = m.uid;
		f->name = xstrdup(name);
		f->base = xstrndup(name, md_base_len(name));
		f->in_new = false;
		f->described = true;
		f->modseq = m.modseq;
		f->rec_letters = md_name_letters(name);
		f->vsize = m.size;
		f->date = m.internal_date;
		f->tz = m.tz_minutes;
		name += len + 1;
	}
	free(data);
	return ok;
}

const char *
md_index_name(struct storage_box *box, uint32_t uid)
{
	const unsigned char *map = box->index_map;
	const char *names, *name, *end;
	size_t lo = 0, hi = box->index_count;
	uint32_t off[2];

	if (!box->files_lazy || map == NULL)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct mail_rec m;

		memcpy(&m, map + box->index_header_size + mid * sizeof(m), sizeof(m));
		if (m.uid == uid) {
			lo = mid;
			break;
		}
		if (m.uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= hi)
		return NULL;
	/* the entry must be this UID's, and point at the start of a name */
	memcpy(off, map + box->index_offs_off + lo * 8, sizeof(off));
	names = (const char *)map + box->index_names_off;
	if (off[1] != uid || off[0] >= box->index_names_len || (off[0] > 0 && names[off[0] - 1] != '\0'))
		return NULL;
	name = names + off[0];
	end = memchr(name, '\0', box->index_names_len - off[0]);
	/* a damaged name never leaves cur/ */
	if (end == NULL || end == name || memchr(name, '/', (size_t)(end - name)) != NULL ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return NULL;
	return name;
}

void
md_index_unmap(struct storage_box *box)
{
	if (box->index_map != NULL)
		(void)munmap(box->index_map, box->index_map_len);
	box->index_map = NULL;
	if (box->index_fd >= 0)
		close(box->index_fd);
	box->index_fd = -1;
}

int
md_files_load(struct storage_box *box, char **error_r)
{
	struct uidlist ul;

	if (!box->files_lazy)
		return 0;
	box->files_lazy = false;
	if (mdi_load_files(box)) {
		md_index_unmap(box);
		return 0;
	}
	/* Damaged since the open: the uidlist, unchanged then, names the
	   same files; a name changed since is found again by md_locate(). */
	md_ftable_clear(&box->files);
	box->files.count = 0;
	md_index_unmap(box);
	log_warn("-", "%s: damaged, the file names are read from %s", box->index_path,
		 box->uidlist_path);
	if (md_uidlist_read(box, &ul, error_r) < 0)
		return -1;
	md_ftable_free(&box->files);
	box->files = ul.t;
	i_zero(&ul.t);
	md_uidlist_free(&ul);
	for (size_t i = 0; i < box->files.count; i++) {
		box->files.f[i].in_new = false;
		box->files.f[i].rec_letters = md_name_letters(box->files.f[i].name);
	}
	return 0;
}

/* Raises first_recent and seen_below in the header of the index on
   disk to state's, in place, if that index describes the folder as box
   knows it (what md_index_write() would not write again). Returns true
   if the index has state's first_recent. */
static bool
mdi_put_hints(struct storage_box *box, const struct mbox_state *state)
{
	uint32_t first_recent = state->first_recent_uid;
	const struct file_stamp *ul = &box->uidlist_stamp;
	struct mdi_header h;
	char *kw = NULL;
	bool done = false;
	int fd;

	if (!box->index_known || !md_file_stamp_equal(&box->index_ul, &box->uidlist_stamp) ||
	    !mdi_dir_stamp_equal(&box->index_cur, &box->cur_stamp) ||
	    !mdi_dir_stamp_equal(&box->index_new, &box->new_stamp))
		return false;
	fd = fs_open_beneath(box->user_dir, box->index_path, O_RDWR, 0);
	if (fd < 0)
		return false;
	if (mdi_read_header(fd, &h, &kw) && h.uidvalidity == box->uidvalidity &&
	    ul->ino == h.ul_ino && ul->size == h.ul_size && ul->sec == h.ul_sec &&
	    ul->nsec == h.ul_nsec) {
		done = h.first_recent >= first_recent;
		if (!done || h.seen_below < state->seen_below) {
			if (!done)
				h.first_recent = first_recent;
			if (h.seen_below < state->seen_below && state->seen_below <= h.uidnext)
				h.seen_below = state->seen_below;
			h.hash = mdi_hash(MDI_HASH_INIT, &h, offsetof(struct mdi_header, hash));
			h.hash = mdi_hash(h.hash, kw, h.kwbytes);
			done = fd_pwrite_full(fd, &h, sizeof(h), 0) == 0;
			if (!done)
				log_warn("-", "%s: %s", box->index_path, strerror(errno));
		}
	}
	free(kw);
	close(fd);
	return done;
}

void
md_hints_changed(struct storage_box *box, const struct mbox_state *state)
{
	bool raised = state->first_recent_uid > box->first_recent;

	/* kept by the next uidlist write, flush at close or index write */
	if (raised)
		box->first_recent = state->first_recent_uid;
	if (mdi_put_hints(box, state) || box->files_lazy || !raised)
		return;
	/* No index to take it: the uidlist gets it with the next batch of
	   flag changes (a sync MD_BATCH_WRITE_MS later, or close()). */
	if (!box->dirty)
		box->dirty_since = mono_ms();
	box->dirty = true;
}
