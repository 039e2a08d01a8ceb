/* flat.c: the "flat" storage backend, the lab's mymailbox.mail format.

   A mailbox is one file: every message is its header lines, its body and a
   line holding a single "."; body lines that start with "." carry one more
   "." (SMTP DATA dot-stuffing). <root>/<user>/mymailbox.mail is INBOX,
   mailbox "a/b" is <root>/<user>/a/b.mail.

   The IMAP side data (UIDs, flags, keywords, internal dates, UIDVALIDITY,
   ...) lives in <root>/<user>/.imap/<name>.index, a binary file in host
   byte order: a header, then fixed-size records. Every record remembers
   where its message is in the mail file and a 64-bit hash of its stored
   bytes, so the index can be checked against the mail file and rebuilt
   from it: losing or damaging the index never loses mail, it only resets
   UIDVALIDITY and flags.

   Writers (append, expunge, and any process that must rewrite the index)
   take a dotlock <mail file>.lock plus an fcntl() write lock on the mail
   file; the wait is bounded (FLAT_LOCK_TIMEOUT_MS), then the operation
   fails with STORAGE_ERR_IN_USE. That wait is the only place the backend
   blocks. Readers never lock: they check what they read with the hash.

   Cost on a big mailbox. A box remembers the stamps (inode, size, mtime)
   of the index it last wrote or read, and whether that index holds exactly
   state's records (disk_same). While both hold, nothing needs the whole
   index again:
   - APPEND writes and fsyncs the message, then writes its one record and
     the header in place (index_write_state_tail()): O(message size).
   - Bytes appended by another program ("cat >>", an unlocking deliverer)
     are parsed from where the index stops (flat_tail_sync()), and only
     the new records are written: O(new bytes).
   - sync() with nothing changed is two stat() calls.
   When the stamps differ (another process wrote the index, or replaced it
   by rename), the index is read again in full (flat_refresh()), never
   written over blindly. EXPUNGE rewrites the whole file (inherent to the
   format) in one pass, and removes the messages from state in one pass.

   Durability. The mail bytes are fsynced before the index is touched, so
   a crash in between leaves a mail file that grew past what the index
   knows; the next open parses the new part and the message keeps the UID
   it was given (UIDs come from the index's uidnext, in file order). The
   in-place index writes (a new record and the header, a flag change) are
   not fsynced: the index is side data that can be rebuilt from the mail
   file, and an fsync per APPEND would double its cost. After a power
   loss the index is either consistent (old or new header; records past
   the header's count are ignored), or stale (its header predates the
   last appends: they are parsed again from the file and get the same
   UIDs; their flags are lost), or damaged (the header hash fails, or a
   record the header counts did not reach the disk: a new UIDVALIDITY,
   flags reset). None of those loses or duplicates a message; the mail
   file is the truth. Whole-index rewrites (temp file + rename) are
   fsynced, because a rename without it can leave an empty index behind
   a complete-looking name. */
#include "fileio.h"
#include "storage.h"
#include "log.h"
#include "flat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FLAT_INBOX_FILE "mymailbox.mail"
#define FLAT_SUFFIX ".mail"
#define FLAT_IMAP_DIR ".imap"
#define FLAT_LOCK_TIMEOUT_MS 10000
#define FLAT_LOCK_STALE_SECS 300
/* An unterminated tail is served as a message only once its file has
   not been written for this long (an in-progress "cat >>" is not). */
#define FLAT_TAIL_AGE_SECS 2
#define FLAT_SCAN_CHUNK (1024 * 1024)
#define FLAT_COPY_CHUNK (256 * 1024)
#define FLAT_LIST_MAX_DEPTH 16
#define FLAT_LIST_MAX_NAMES 10000

#define IDX_MAGIC "FLATIDX1"
#define IDX_VERSION 1
#define IDX_FIXED_SIZE 112
#define IDX_REC_SIZE 72
#define IDX_FLAG_LAST_OPEN 0x1

struct storage {
	char *root;
};

/* One message as the index knows it. */
struct frec {
	uint32_t uid;
	uint8_t flags;
	uint64_t keywords;         /* bits index the keyword table of its view */
	int64_t date;
	int32_t tz;
	uint64_t modseq;
	uint64_t off, len;         /* stored bytes, terminator line included */
	uint64_t served;           /* RFC822.SIZE */
	uint64_t hash;             /* of the stored bytes */
};

/* The content of an index: the header fields and the records. */
struct view {
	uint32_t uidvalidity, uidnext, first_recent_uid;
	uint64_t highest_modseq;
	/* The mail file as of the last sync, and how far it was parsed. */
	uint64_t mail_size, ino, dev, parsed_end;
	int64_t mtime_sec, mtime_nsec;
	bool last_open;            /* last record has no terminator line */
	uint32_t header_size;      /* on disk, when read from disk */
	struct frec *recs;
	size_t count, alloc;
	char *kw[MBOX_MAX_KEYWORDS];
	unsigned kw_count;
};

struct storage_box {
	struct storage *st;
	char *user, *name;
	bool inbox;
	char *user_dir, *mail_path, *mail_tmp, *lock_path;
	char *index_path, *index_tmp, *uidv_path;

	int fd;                    /* read fd of the mail file, -1 when absent */
	/* What the index on disk says about the mail file; state matches it. */
	uint64_t mail_size, ino, dev, parsed_end;
	int64_t mtime_sec, mtime_nsec;
	bool last_open;
	bool pending;              /* bytes after parsed_end wait to be parsed */

	int index_fd;              /* the index file state was written to/read from */
	uint32_t index_header_size;
	/* The index at index_fd holds exactly state's records and keyword
	   table, so a flag change can be written in place. */
	bool disk_same;
	uint64_t index_ino, index_size;
	int64_t index_mtime_sec, index_mtime_nsec;

	int lock_fd;
	bool locked;
	/* sync() from the event loop must not wait for another process's
	   lock: it tries once and leaves the change for the next event (the
	   dotlock's removal is watched, see flat_watch_paths()). */
	bool lock_nowait;
};

/* Helpers */

/* FNV-1a, 64 bits: cheap and good enough to tell messages apart. */
static uint64_t
hash_update(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}
#define HASH_INIT 0xcbf29ce484222325ULL

/* The hash of a message's stored bytes: 8 bytes a step, then a final mix.
   Not cryptographic; it tells messages apart (with their length) when the
   index is matched against a changed mail file. */
static uint64_t
hash_bytes(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = HASH_INIT ^ ((uint64_t)len * 0x9e3779b97f4a7c15ULL), w;

	while (len >= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 32;
		p += 8;
		len -= 8;
	}
	w = 0;
	memcpy(&w, p, len);
	h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* Names and paths */

/* The flat format's own rules on top of storage_name_is_valid(): no
   component starts with '.' (our side files), and the top level
   "mymailbox" would collide with INBOX's file. */
static bool
flat_name_ok(const char *name)
{
	const char *p = name;

	if (!storage_name_is_valid(name))
		return false;
	if (strcmp(name, "INBOX") == 0)
		return true;
	if (ascii_strncasecmp(name, "mymailbox", 9) == 0 && (name[9] == '\0' || name[9] == '/'))
		return false;
	for (;;) {
		if (*p == '.')
			return false;
		p = strchr(p, '/');
		if (p == NULL)
			break;
		p++;
	}
	return true;
}

static char *
flat_user_dir(struct storage *st, const char *user)
{
	return xasprintf("%s/%s", st->root, user);
}

static char *
flat_mail_path(struct storage *st, const char *user, const char *name)
{
	if (strcmp(name, "INBOX") == 0)
		return xasprintf("%s/%s/%s", st->root, user, FLAT_INBOX_FILE);
	return xasprintf("%s/%s/%s%s", st->root, user, name, FLAT_SUFFIX);
}

static char *
flat_index_path(struct storage *st, const char *user, const char *name)
{
	return xasprintf("%s/%s/%s/%s.index", st->root, user, FLAT_IMAP_DIR, name);
}

/* Checks user and name before they go near a path. */
static int
flat_check_names(const char *user, const char *name, enum storage_error *err_r, char **error_r)
{
	if (!storage_user_is_valid(user)) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xstrdup("invalid user name");
		return -1;
	}
	if (name != NULL && !flat_name_ok(name)) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xasprintf("invalid mailbox name for flat storage: %s", name);
		return -1;
	}
	return 0;
}

/* Message parsing */

struct emit {
	struct buf *out;
	uint64_t n;
};

static void
emit(struct emit *e, const char *s, size_t n)
{
	if (e->out != NULL)
		buf_append(e->out, s, n);
	e->n += n;
}

static void
emit_line(struct emit *e, const char *s, size_t n)
{
	emit(e, s, n);
	emit(e, "\r\n", 2);
}

/* Length of the field name if line is "name:..." with name of printable
   ASCII without ':' or space, else 0. */
static size_t
field_name_len(const char *c, size_t clen)
{
	size_t i = 0;

	while (i < clen && c[i] > 32 && c[i] < 127 && c[i] != ':')
		i++;
	if (i > 0 && i < clen && c[i] == ':')
		return i;
	return 0;
}

/* Copies a header value, trimmed, into out (NUL-terminated). Returns
   false if it does not fit. */
static bool
copy_value(const char *v, size_t vlen, char *out, size_t outsize)
{
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t' || v[vlen - 1] == '\r'))
		vlen--;
	if (vlen >= outsize || memchr(v, '\0', vlen) != NULL)
		return false;
	memcpy(out, v, vlen);
	out[vlen] = '\0';
	return true;
}

/* The lab's Received value: "2022-03-10 : 14 : 30" (local time). Lenient
   about spaces and '/' as date separator. */
static bool
parse_lab_received(const char *v, size_t vlen, int64_t *date_r, int32_t *tz_r)
{
	char tmp[80];
	int y, mo, d, h, mi, n = -1;
	struct tm tm;
	time_t t;

	if (!copy_value(v, vlen, tmp, sizeof(tmp)))
		return false;
	if (sscanf(tmp, "%4d-%2d-%2d : %2d : %2d %n", &y, &mo, &d, &h, &mi, &n) != 5 || n < 0 ||
	    tmp[n] != '\0') {
		n = -1;
		if (sscanf(tmp, "%4d/%2d/%2d : %2d : %2d %n", &y, &mo, &d, &h, &mi, &n) != 5 ||
		    n < 0 || tmp[n] != '\0')
			return false;
	}
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
	    mi < 0 || mi > 59)
		return false;
	i_zero(&tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if (t == (time_t)-1)
		return false;
	*date_r = (int64_t)t;
	*tz_r = (int32_t)(tm.tm_gmtoff / 60);
	return true;
}

/* An RFC 5322 Date: value in its common forms. */
static bool
parse_date_header(const char *v, size_t vlen, int64_t *date_r, int32_t *tz_r)
{
	static const char *const formats[] = {
		"%a, %d %b %Y %H:%M:%S %z",
		"%d %b %Y %H:%M:%S %z",
		"%a, %d %b %Y %H:%M %z",
		"%d %b %Y %H:%M %z",
	};
	char tmp[120];

	if (!copy_value(v, vlen, tmp, sizeof(tmp)))
		return false;
	for (size_t i = 0; i < N_ELEMENTS(formats); i++) {
		struct tm tm;
		const char *rest;
		long gmtoff;
		time_t t;

		i_zero(&tm);
		rest = strptime(tmp, formats[i], &tm);
		if (rest == NULL || (*rest != '\0' && *rest != ' ' && *rest != '('))
			continue;
		/* timegm() normalizes tm and clears tm_gmtoff: keep it */
		gmtoff = tm.tm_gmtoff;
		if (gmtoff < -86400 || gmtoff > 86400)
			continue;
		t = timegm(&tm);
		if (t == (time_t)-1)
			continue;
		*date_r = (int64_t)t - gmtoff;
		*tz_r = (int32_t)(gmtoff / 60);
		return true;
	}
	return false;
}

/* Walks one stored message (p, len: its span, terminator line included or
   not) and produces the served form: CRLF line ends, dots unstuffed, a
   blank line between header and body if the file has none. Appends it to
   out when out is not NULL; returns its length either way, so that
   RFC822.SIZE and read() cannot disagree. Sets *have_date_r and the date
   from a lab Received: line, else a Date: header.

   The header ends at the first empty line; or at the first line that is
   neither a field ("name:") nor a continuation; or right after a lab-style
   "Received: <date> : <hour> : <minute>" line when the next line is not
   empty (the lab's SMTP server writes Received last and no blank line). */
static uint64_t
flat_serve(const char *p, size_t len, struct buf *out, bool *have_date_r, int64_t *date_r,
	   int32_t *tz_r)
{
	struct emit e = { out, 0 };
	size_t pos = 0;
	bool in_header = true, prev_header = false, after_lab_received = false;
	bool have_received = false, have_date = false;

	*have_date_r = false;
	while (pos < len) {
		const char *nl = memchr(p + pos, '\n', len - pos);
		size_t line_end = nl != NULL ? (size_t)(nl - p) : len;
		const char *c = p + pos;
		size_t clen = line_end - pos;
		size_t nlen;

		if (nl != NULL && clen > 0 && c[clen - 1] == '\r')
			clen--;
		if (nl != NULL && clen == 1 && c[0] == '.')
			break;                          /* the terminator line */
		if (clen > 0 && c[0] == '.') {
			c++;
			clen--;
		}
		pos = nl != NULL ? line_end + 1 : len;
		if (!in_header) {
			emit_line(&e, c, clen);
			continue;
		}
		if (clen == 0) {
			in_header = false;
			emit(&e, "\r\n", 2);
			continue;
		}
		if (after_lab_received) {
			in_header = false;
			emit(&e, "\r\n", 2);
			emit_line(&e, c, clen);
			continue;
		}
		if ((c[0] == ' ' || c[0] == '\t') && prev_header) {
			emit_line(&e, c, clen);
			continue;
		}
		nlen = field_name_len(c, clen);
		if (nlen == 0) {
			in_header = false;
			emit(&e, "\r\n", 2);
			emit_line(&e, c, clen);
			continue;
		}
		prev_header = true;
		if (nlen == 8 && ascii_strncasecmp(c, "Received", 8) == 0) {
			int64_t d;
			int32_t tz;

			if (parse_lab_received(c + 9, clen - 9, &d, &tz)) {
				after_lab_received = true;
				if (!have_received) {
					have_received = true;
					*date_r = d;
					*tz_r = tz;
				}
			}
		} else if (nlen == 4 && ascii_strncasecmp(c, "Date", 4) == 0 && !have_date &&
			   !have_received) {
			have_date = parse_date_header(c + 5, clen - 5, date_r, tz_r);
		}
		emit_line(&e, c, clen);
	}
	if (in_header)
		emit(&e, "\r\n", 2);
	*have_date_r = have_received || have_date;
	return e.n;
}

/* Converts data (CRLF or LF line ends) into the stored form: LF line
   ends, dot-stuffed, then the "." line. */
static void
flat_stuff(const char *data, size_t len, struct buf *out)
{
	size_t pos = 0;

	buf_reserve(out, len + len / 64 + 8);
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - data) : len;
		size_t clen = end - pos;

		if (nl != NULL && clen > 0 && data[end - 1] == '\r')
			clen--;
		if (clen > 0 && data[pos] == '.')
			buf_append_c(out, '.');
		buf_append(out, data + pos, clen);
		buf_append_c(out, '\n');
		pos = nl != NULL ? end + 1 : len;
	}
	buf_append(out, ".\n", 2);
}

/* Scanning the mail file */

struct scan {
	struct frec *recs;
	size_t count, alloc;
	uint64_t end;              /* file offset up to which bytes are accounted for */
	bool last_open;            /* the last record has no terminator line */
	bool pending;              /* a young unterminated tail starts at end */
};

static void
scan_free(struct scan *sc)
{
	free(sc->recs);
	i_zero(sc);
}

static void
scan_add(struct scan *sc, const char *p, size_t len, uint64_t off, int64_t now)
{
	struct frec *r;
	bool have_date;

	xgrow(&sc->recs, &sc->alloc, sc->count + 1, sizeof(*sc->recs));
	r = &sc->recs[sc->count++];
	i_zero(r);
	r->off = off;
	r->len = len;
	r->hash = hash_bytes(p, len);
	r->served = flat_serve(p, len, NULL, &have_date, &r->date, &r->tz);
	if (!have_date) {
		r->date = now;
		r->tz = 0;
	}
}

/* Looks for the terminator line in p[0..len), resuming the line scan at
   *scan_r (a line start). Returns true with the message length (the
   terminator line included) in *end_r; false with *scan_r at the first
   incomplete line. */
static bool
find_message_end(const char *p, size_t len, size_t *scan_r, size_t *end_r)
{
	size_t pos = *scan_r;

	while (pos < len) {
		const char *nl = memchr(p + pos, '\n', len - pos);
		size_t clen;

		if (nl == NULL)
			break;
		clen = (size_t)(nl - (p + pos));
		if ((clen == 1 && p[pos] == '.') ||
		    (clen == 2 && p[pos] == '.' && p[pos + 1] == '\r')) {
			*end_r = pos + clen + 1;
			return true;
		}
		pos += clen + 1;
	}
	*scan_r = pos;
	return false;
}

static bool
all_blank(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\n' && p[i] != '\r' && p[i] != ' ' && p[i] != '\t')
			return false;
	}
	return true;
}

/* Parses the messages of the mail file in [from, to). An unterminated tail
   becomes a message if take_tail (or if it starts at from and force_first),
   else it is left pending. */
static int
flat_scan(int fd, uint64_t from, uint64_t to, bool take_tail, bool force_first, int64_t now,
	  const char *path, struct scan *sc, char **error_r)
{
	char *data = NULL;
	size_t len = 0, cap = 0, scanpos = 0;
	uint64_t base = from, pos = from;

	i_zero(sc);
	for (;;) {
		size_t cur = 0, end;

		if (pos < to) {
			size_t want = to - pos > FLAT_SCAN_CHUNK ? FLAT_SCAN_CHUNK : (size_t)(to - pos);
			ssize_t n;

			if (len + want > cap) {
				/* doubling: a message bigger than a chunk
				   costs O(its size), not O(size^2 / chunk) */
				cap = len + want > cap * 2 ? len + want : cap * 2;
				data = xrealloc(data, cap);
			}
			n = fd_pread_full(fd, data + len, want, pos);
			if (n < 0) {
				*error_r = xasprintf("read %s: %s", path, strerror(errno));
				free(data);
				scan_free(sc);
				return -1;
			}
			len += (size_t)n;
			pos += (uint64_t)n;
			if ((size_t)n < want)
				to = pos;       /* the file shrank under us */
		}
		/* data is NULL while nothing was read (an empty file). */
		while (data != NULL && find_message_end(data + cur, len - cur, &scanpos, &end)) {
			scan_add(sc, data + cur, end, base + cur, now);
			cur += end;
			scanpos = 0;
		}
		/* scanpos is relative to data + cur */
		if (cur > 0) {
			memmove(data, data + cur, len - cur);
			len -= cur;
			base += cur;
		}
		if (pos >= to)
			break;
	}
	sc->end = base;
	if (len > 0) {
		if (all_blank(data, len) && data[len - 1] == '\n') {
			sc->end = base + len;
		} else if (take_tail || (force_first && base == from)) {
			log_warn("-", "%s: %zu bytes at offset %llu have no final \".\" line; "
				 "serving them as a message", path, len, (unsigned long long)base);
			scan_add(sc, data, len, base, now);
			sc->last_open = true;
			sc->end = base + len;
		} else {
			sc->pending = true;
		}
	}
	free(data);
	return 0;
}

/* Index file */

static void
view_free(struct view *v)
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

static void
put64(unsigned char *p, uint64_t v)
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

static uint64_t
get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void
rec_encode(unsigned char *p, const struct frec *r)
{
	memset(p, 0, IDX_REC_SIZE);
	put32(p, r->uid);
	p[4] = r->flags;
	put64(p + 8, r->keywords);
	put64(p + 16, (uint64_t)r->date);
	put32(p + 24, (uint32_t)r->tz);
	put64(p + 32, r->modseq);
	put64(p + 40, r->off);
	put64(p + 48, r->len);
	put64(p + 56, r->served);
	put64(p + 64, r->hash);
}

static void
rec_decode(const unsigned char *p, struct frec *r)
{
	r->uid = get32(p);
	r->flags = p[4] & MAIL_FLAGS_ALL;
	r->keywords = get64(p + 8);
	r->date = (int64_t)get64(p + 16);
	r->tz = (int32_t)get32(p + 24);
	r->modseq = get64(p + 32);
	r->off = get64(p + 40);
	r->len = get64(p + 48);
	r->served = get64(p + 56);
	r->hash = get64(p + 64);
}

/* Serializes the header of v (with count records) into out; returns its
   size (a multiple of 64). */
static size_t
header_encode(const struct view *v, size_t count, struct buf *out)
{
	size_t kwbytes = 0, size, start = out->len;
	unsigned char *p;
	uint64_t h;

	for (unsigned i = 0; i < v->kw_count; i++)
		kwbytes += strlen(v->kw[i]) + 1;
	size = (IDX_FIXED_SIZE + kwbytes + 63) / 64 * 64;
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
	put64(p + 32, v->highest_modseq);
	put64(p + 40, v->mail_size);
	put64(p + 48, (uint64_t)v->mtime_sec);
	put64(p + 56, (uint64_t)v->mtime_nsec);
	put64(p + 64, v->ino);
	put64(p + 72, v->dev);
	put64(p + 80, v->parsed_end);
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
	h = hash_update(HASH_INIT, p, 104);
	h = hash_update(h, p + IDX_FIXED_SIZE, kwbytes);
	put64(p + 104, h);
	out->len = start + size;
	out->data[out->len] = '\0';
	return size;
}

/* Reads the index at path into v. Returns 1 if valid, 0 if missing or
   invalid (with the reason in *why_r, static), -1 on I/O error. On 1,
   *fd_r is the index opened read-write. */
static int
index_read(const char *path, struct view *v, int *fd_r, const char **why_r, char **error_r)
{
	unsigned char *data = NULL;
	struct stat st;
	size_t size, hsize, kwbytes, count;
	ssize_t n;
	uint64_t h;
	int fd;

	i_zero(v);
	*fd_r = -1;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			*why_r = "missing";
			return 0;
		}
		*error_r = xasprintf("open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("fstat %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	*why_r = "corrupt";
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
	size = (size_t)n;
	if (size < IDX_FIXED_SIZE || memcmp(data, IDX_MAGIC, 8) != 0 ||
	    get32(data + 8) != IDX_VERSION || get32(data + 16) != IDX_REC_SIZE)
		goto invalid;
	hsize = get32(data + 12);
	count = get32(data + 88);
	v->kw_count = get32(data + 96);
	kwbytes = get32(data + 100);
	if (v->kw_count > MBOX_MAX_KEYWORDS || kwbytes > hsize || hsize > size ||
	    IDX_FIXED_SIZE + kwbytes > hsize || count > (size - hsize) / IDX_REC_SIZE) {
		v->kw_count = 0;
		goto invalid;
	}
	h = hash_update(HASH_INIT, data, 104);
	h = hash_update(h, data + IDX_FIXED_SIZE, kwbytes);
	if (h != get64(data + 104)) {
		v->kw_count = 0;
		goto invalid;
	}
	{
		const char *kp = (const char *)data + IDX_FIXED_SIZE;
		size_t left = kwbytes;
		unsigned want = v->kw_count;

		v->kw_count = 0;
		for (unsigned i = 0; i < want; i++) {
			const char *z = memchr(kp, '\0', left);

			if (z == NULL || z == kp)
				goto invalid;
			v->kw[v->kw_count++] = xstrndup(kp, (size_t)(z - kp));
			left -= (size_t)(z - kp) + 1;
			kp = z + 1;
		}
	}
	v->header_size = (uint32_t)hsize;
	v->uidvalidity = get32(data + 20);
	v->uidnext = get32(data + 24);
	v->first_recent_uid = get32(data + 28);
	v->highest_modseq = get64(data + 32);
	v->mail_size = get64(data + 40);
	v->mtime_sec = (int64_t)get64(data + 48);
	v->mtime_nsec = (int64_t)get64(data + 56);
	v->ino = get64(data + 64);
	v->dev = get64(data + 72);
	v->parsed_end = get64(data + 80);
	v->last_open = (get32(data + 92) & IDX_FLAG_LAST_OPEN) != 0;
	if (v->uidvalidity == 0 || v->uidnext == 0 || v->parsed_end > v->mail_size)
		goto invalid;
	v->recs = xmalloc((count == 0 ? 1 : count) * sizeof(*v->recs));
	v->alloc = count == 0 ? 1 : count;
	for (size_t i = 0; i < count; i++) {
		struct frec *r = &v->recs[i];

		rec_decode(data + hsize + i * IDX_REC_SIZE, r);
		/* UIDs ascending below uidnext, spans in order inside the
		   parsed part of the file. */
		if (r->uid == 0 || r->uid >= v->uidnext ||
		    (i > 0 && (r->uid <= v->recs[i - 1].uid ||
			       r->off < v->recs[i - 1].off + v->recs[i - 1].len)) ||
		    r->len == 0 || r->off > v->parsed_end || r->len > v->parsed_end - r->off)
			goto invalid;
		v->count++;
	}
	if (v->last_open && v->count == 0)
		v->last_open = false;
	free(data);
	*fd_r = fd;
	return 1;
invalid:
	free(data);
	close(fd);
	view_free(v);
	return 0;
}

static void
box_set_index_fd(struct storage_box *box, int fd, uint32_t header_size)
{
	struct stat st;

	if (box->index_fd >= 0 && box->index_fd != fd)
		close(box->index_fd);
	box->index_fd = fd;
	box->index_header_size = header_size;
	box->index_ino = 0;
	if (fd >= 0 && fstat(fd, &st) == 0) {
		box->index_ino = (uint64_t)st.st_ino;
		box->index_size = (uint64_t)st.st_size;
		box->index_mtime_sec = (int64_t)st.st_mtim.tv_sec;
		box->index_mtime_nsec = (int64_t)st.st_mtim.tv_nsec;
	}
}

/* Writes v as a whole new index (temp file, fsync, rename) and makes it
   box's index. */
static int
index_write_full(struct storage_box *box, const struct view *v, char **error_r)
{
	struct buf b = BUF_INIT;
	size_t hsize;
	int fd;

	if (mkdir_parents(box->index_tmp, strlen(box->user_dir)) < 0) {
		*error_r = xasprintf("mkdir for %s: %s", box->index_tmp, strerror(errno));
		return -1;
	}
	hsize = header_encode(v, v->count, &b);
	buf_reserve(&b, v->count * IDX_REC_SIZE);
	for (size_t i = 0; i < v->count; i++) {
		rec_encode((unsigned char *)b.data + b.len, &v->recs[i]);
		b.len += IDX_REC_SIZE;
	}
	fd = open(box->index_tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = xasprintf("open %s: %s", box->index_tmp, strerror(errno));
		buf_free(&b);
		return -1;
	}
	if (fd_write_full(fd, b.data, b.len) < 0 || fsync(fd) < 0) {
		*error_r = xasprintf("write %s: %s", box->index_tmp, strerror(errno));
		buf_free(&b);
		close(fd);
		(void)unlink(box->index_tmp);
		return -1;
	}
	buf_free(&b);
	if (rename(box->index_tmp, box->index_path) < 0) {
		*error_r = xasprintf("rename %s: %s", box->index_tmp, strerror(errno));
		close(fd);
		(void)unlink(box->index_tmp);
		return -1;
	}
	box_set_index_fd(box, fd, (uint32_t)hsize);
	return 0;
}

/* Writes the n encoded records recs at record index first and then the
   header hdr, in place, into box's index (whose header size must be
   hdr's). Records first: a reader who sees the new header finds its
   records. One pwrite() each, no fsync (see the top of the file). */
static int
index_put_tail(struct storage_box *box, const struct buf *hdr, size_t first,
	       const unsigned char *recs, size_t n, char **error_r)
{
	if ((n > 0 && fd_pwrite_full(box->index_fd, recs, n * IDX_REC_SIZE,
				  hdr->len + (uint64_t)first * IDX_REC_SIZE) < 0) ||
	    fd_pwrite_full(box->index_fd, hdr->data, hdr->len, 0) < 0) {
		*error_r = xasprintf("write %s: %s", box->index_path, strerror(errno));
		return -1;
	}
	box_set_index_fd(box, box->index_fd, (uint32_t)hdr->len);
	return 0;
}

/* Writes records [first, count) of v and then the header in place into
   box's index, whose keyword table must be v's. Falls back to a full
   write when the header would not fit. */
static int
index_write_tail(struct storage_box *box, const struct view *v, size_t first, char **error_r)
{
	struct buf b = BUF_INIT;
	unsigned char *recs;
	size_t hsize, n;
	int ret;

	if (box->index_fd < 0 || first > v->count)
		return index_write_full(box, v, error_r);
	hsize = header_encode(v, v->count, &b);
	if (hsize != box->index_header_size) {
		buf_free(&b);
		return index_write_full(box, v, error_r);
	}
	n = v->count - first;
	recs = xmalloc(n == 0 ? 1 : n * IDX_REC_SIZE);
	for (size_t i = 0; i < n; i++)
		rec_encode(recs + i * IDX_REC_SIZE, &v->recs[first + i]);
	ret = index_put_tail(box, &b, first, recs, n, error_r);
	free(recs);
	buf_free(&b);
	return ret;
}

/* UIDVALIDITY: time-based, above the old one and above every value
   issued for this user before (kept in .imap/uidvalidity), so that a lost
   index or a re-created mailbox never repeats one. */
static uint32_t
flat_new_uidvalidity(struct storage_box *box, uint32_t old)
{
	uint32_t v = (uint32_t)time(NULL), last = 0;
	char tmp[32], *tmp_path;
	FILE *f;
	int fd;

	f = fopen(box->uidv_path, "re");
	if (f != NULL) {
		if (fgets(tmp, sizeof(tmp), f) != NULL)
			last = (uint32_t)strtoul(tmp, NULL, 10);
		fclose(f);
	}
	if (v <= last)
		v = last + 1;
	if (v <= old)
		v = old + 1;
	if (v == 0)
		v = 1;
	tmp_path = xasprintf("%s.tmp", box->uidv_path);
	if (mkdir_parents(tmp_path, strlen(box->user_dir)) == 0) {
		fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			int n = snprintf(tmp, sizeof(tmp), "%u\n", v);

			if (fd_write_full(fd, tmp, (size_t)n) == 0 && close(fd) == 0)
				(void)rename(tmp_path, box->uidv_path);
			else
				(void)unlink(tmp_path);
		}
	}
	free(tmp_path);
	return v;
}

/* Reconciling the index with the mail file */

struct match_key {
	uint64_t hash, len;
	size_t idx;
};

static int
match_key_cmp(const void *a, const void *b)
{
	const struct match_key *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	return 0;
}

/* Smallest record index >= min_idx with (hash, len), or -1. */
static ssize_t
match_lookup(const struct match_key *keys, size_t n, uint64_t hash, uint64_t len, size_t min_idx)
{
	struct match_key want = { hash, len, min_idx };
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (match_key_cmp(&keys[mid], &want) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && keys[lo].hash == hash && keys[lo].len == len)
		return (ssize_t)keys[lo].idx;
	return -1;
}

static void
view_push(struct view *v, const struct frec *r)
{
	xgrow(&v->recs, &v->alloc, v->count + 1, sizeof(*v->recs));
	v->recs[v->count++] = *r;
}

static void
view_new_message(struct view *v, struct frec *r)
{
	r->uid = v->uidnext;
	if (v->uidnext < UINT32_MAX)
		v->uidnext++;
	r->flags = 0;
	r->keywords = 0;
	r->modseq = ++v->highest_modseq;
	view_push(v, r);
}

enum recon_kind {
	RECON_NONE,                /* the index is right as it is */
	RECON_TAIL,                /* records from *first_r on (and the header) changed */
	RECON_FULL,                /* the index must be rewritten */
};

static bool
view_stat_equal(const struct view *v, const struct stat *st)
{
	return v->ino == (uint64_t)st->st_ino && v->dev == (uint64_t)st->st_dev &&
		v->mail_size == (uint64_t)st->st_size && v->mtime_sec == (int64_t)st->st_mtim.tv_sec &&
		v->mtime_nsec == (int64_t)st->st_mtim.tv_nsec;
}

static void
view_set_stat(struct view *v, const struct stat *st)
{
	if (st == NULL) {
		v->ino = v->dev = v->mail_size = 0;
		v->mtime_sec = v->mtime_nsec = 0;
		return;
	}
	v->ino = (uint64_t)st->st_ino;
	v->dev = (uint64_t)st->st_dev;
	v->mail_size = (uint64_t)st->st_size;
	v->mtime_sec = (int64_t)st->st_mtim.tv_sec;
	v->mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
}

/* True if the index needs no work for this mail file (st NULL: absent). */
static bool
view_matches_file(const struct view *v, const struct stat *st)
{
	if (st == NULL)
		return v->count == 0 && v->mail_size == 0 && v->ino == 0;
	return view_stat_equal(v, st) && v->parsed_end == v->mail_size;
}

/* Checks that the bytes the index knows are still where it says: the last
   record's hash. */
static bool
view_boundary_ok(const struct view *v, int fd)
{
	const struct frec *last;
	char *data;
	ssize_t n;
	bool ok;

	if (v->count == 0)
		return v->parsed_end == 0;
	last = &v->recs[v->count - 1];
	if (last->off + last->len != v->parsed_end || last->len > (uint64_t)SSIZE_MAX / 2)
		return false;
	data = xmalloc((size_t)last->len);
	n = fd_pread_full(fd, data, (size_t)last->len, last->off);
	ok = n == (ssize_t)last->len && hash_bytes(data, (size_t)last->len) == last->hash;
	free(data);
	return ok;
}

/* Resets v to a new UIDVALIDITY holding the messages of sc, flags lost. */
static void
view_reset(struct storage_box *box, struct view *v, struct scan *sc)
{
	uint32_t old = v->uidvalidity;

	for (unsigned i = 0; i < v->kw_count; i++)
		free(v->kw[i]);
	v->kw_count = 0;
	v->count = 0;
	v->uidvalidity = flat_new_uidvalidity(box, old);
	v->uidnext = 1;
	v->first_recent_uid = 1;
	for (size_t i = 0; i < sc->count; i++)
		view_new_message(v, &sc->recs[i]);
}

/* Brings v (the records as last known, valid or not) in line with the mail
   file (fd and st; fd < 0 when it is absent). Messages the index knows
   keep their UIDs; new ones get new UIDs; if the file changed in a way
   that cannot keep UIDs in order, a new UIDVALIDITY. */
static int
flat_reconcile(struct storage_box *box, struct view *v, bool valid, int fd, const struct stat *st,
	       enum recon_kind *kind_r, size_t *first_r, char **error_r)
{
	int64_t now = (int64_t)time(NULL);
	bool tail_ok = st != NULL && now - (int64_t)st->st_mtim.tv_sec >= FLAT_TAIL_AGE_SECS;
	uint64_t size = st != NULL ? (uint64_t)st->st_size : 0;
	struct scan sc;

	*kind_r = RECON_FULL;
	*first_r = 0;
	box->pending = false;
	if (fd < 0) {
		/* INBOX without a file: empty. */
		if (!valid) {
			view_free(v);
			v->uidvalidity = flat_new_uidvalidity(box, 0);
			v->uidnext = 1;
			v->first_recent_uid = 1;
		}
		v->count = 0;
		v->parsed_end = 0;
		v->last_open = false;
		view_set_stat(v, NULL);
		return 0;
	}
	if (valid && view_matches_file(v, st)) {
		*kind_r = RECON_NONE;
		return 0;
	}
	if (valid && v->ino == (uint64_t)st->st_ino && v->dev == (uint64_t)st->st_dev &&
	    (size > v->mail_size || (size == v->mail_size && view_stat_equal(v, st))) &&
	    v->parsed_end <= size && view_boundary_ok(v, fd)) {
		/* The file only grew: parse the new part (from the start of
		   an unterminated last message, which may have grown). */
		struct frec *last = v->count > 0 ? &v->recs[v->count - 1] : NULL;
		bool reopen = v->last_open && last != NULL;
		uint64_t from = reopen ? last->off : v->parsed_end;
		size_t start = 0;

		if (flat_scan(fd, from, size, tail_ok, reopen, now, box->mail_path, &sc, error_r) < 0)
			return -1;
		*kind_r = RECON_TAIL;
		*first_r = v->count;
		if (reopen) {
			if (sc.count == 0 || sc.recs[0].off != last->off) {
				scan_free(&sc);
				goto rescan;
			}
			last->len = sc.recs[0].len;
			last->hash = sc.recs[0].hash;
			last->served = sc.recs[0].served;
			*first_r = v->count - 1;
			start = 1;
		}
		for (size_t i = start; i < sc.count; i++)
			view_new_message(v, &sc.recs[i]);
		v->parsed_end = sc.end;
		v->last_open = sc.count > 0 ? sc.last_open : v->last_open;
		box->pending = sc.pending;
		scan_free(&sc);
		view_set_stat(v, st);
		return 0;
	}
rescan:
	if (flat_scan(fd, 0, size, tail_ok, false, now, box->mail_path, &sc, error_r) < 0)
		return -1;
	if (!valid) {
		if (sc.count > 0)
			log_warn("-", "%s: no usable index, new UIDVALIDITY (flags are reset, "
				 "no mail is lost)", box->mail_path);
		view_reset(box, v, &sc);
	} else {
		struct match_key *keys = xmalloc((v->count + 1) * sizeof(*keys));
		struct frec *old = v->recs;
		size_t old_count = v->count, next = 0;
		bool unmatched = false, conflict = false;

		for (size_t i = 0; i < old_count; i++) {
			keys[i].hash = old[i].hash;
			keys[i].len = old[i].len;
			keys[i].idx = i;
		}
		qsort(keys, old_count, sizeof(*keys), match_key_cmp);
		v->recs = NULL;
		v->count = v->alloc = 0;
		for (size_t i = 0; i < sc.count && !conflict; i++) {
			ssize_t k = match_lookup(keys, old_count, sc.recs[i].hash, sc.recs[i].len, next);

			if (k < 0) {
				unmatched = true;
				continue;
			}
			if (unmatched) {
				conflict = true;
				break;
			}
			old[k].off = sc.recs[i].off;
			old[k].served = sc.recs[i].served;
			view_push(v, &old[k]);
			next = (size_t)k + 1;
		}
		free(keys);
		if (conflict) {
			log_warn("-", "%s: messages were changed or reordered by another program; "
				 "new UIDVALIDITY (flags are reset, no mail is lost)", box->mail_path);
			view_reset(box, v, &sc);
		} else {
			/* The unmatched messages all follow the matched ones. */
			for (size_t i = v->count; i < sc.count; i++)
				view_new_message(v, &sc.recs[i]);
		}
		free(old);
	}
	v->parsed_end = sc.end;
	v->last_open = sc.last_open;
	box->pending = sc.pending;
	scan_free(&sc);
	view_set_stat(v, st);
	return 0;
}

/* Locking */

static void
flat_dotlock_remove_stale(const char *path)
{
	struct stat st;
	char tmp[32];
	ssize_t n;
	long pid = 0;
	int fd;

	if (stat(path, &st) < 0)
		return;
	if (time(NULL) - st.st_mtim.tv_sec > FLAT_LOCK_STALE_SECS) {
		(void)unlink(path);
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, tmp, sizeof(tmp) - 1);
	close(fd);
	if (n <= 0)
		return;
	tmp[n] = '\0';
	pid = strtol(tmp, NULL, 10);
	/* The holder died (same host: we only lock local files). */
	if (pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		(void)unlink(path);
}

/* Takes the dotlock and the fcntl lock on the mail file (created when
   create is true; without a file only the dotlock is taken). */
static int
flat_lock(struct storage_box *box, bool create, enum storage_error *err_r, char **error_r)
{
	int64_t deadline = mono_ms() + FLAT_LOCK_TIMEOUT_MS;
	unsigned tries = 0;
	struct flock fl;
	int fd;

	if (box->locked)
		return 0;
	if (mkdir_parents(box->mail_path, strlen(box->st->root)) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("mkdir for %s: %s", box->mail_path, strerror(errno));
		return -1;
	}
	/* The dotlock is created complete: the pid goes into a private file
	   that is then link()ed to the lock name (exclusive like O_EXCL), so
	   that a holder killed at any instant leaves a lock naming it. */
	{
		char pid[32];
		int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
		char *tmp = xasprintf("%s.%ld", box->lock_path, (long)getpid());

		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || fd_write_full(fd, pid, (size_t)n) < 0) {
			*err_r = storage_error_from_errno(errno);
			*error_r = xasprintf("create %s: %s", tmp, strerror(errno));
			if (fd >= 0)
				close(fd);
			(void)unlink(tmp);
			free(tmp);
			return -1;
		}
		close(fd);
		for (;;) {
			if (link(tmp, box->lock_path) == 0)
				break;
			if (errno != EEXIST) {
				*err_r = storage_error_from_errno(errno);
				*error_r = xasprintf("create %s: %s", box->lock_path, strerror(errno));
				(void)unlink(tmp);
				free(tmp);
				return -1;
			}
			flat_dotlock_remove_stale(box->lock_path);
			if (box->lock_nowait || mono_ms() >= deadline) {
				*err_r = STORAGE_ERR_IN_USE;
				*error_r = xasprintf("%s: locked by another process", box->lock_path);
				(void)unlink(tmp);
				free(tmp);
				return -1;
			}
			sleep_ms(10 + (unsigned)((mono_ms() + tries++ * 7) % 41));
		}
		(void)unlink(tmp);
		free(tmp);
	}
	box->lock_fd = open(box->mail_path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	if (box->lock_fd < 0 && !(errno == ENOENT && !create)) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("open %s: %s", box->mail_path, strerror(errno));
		(void)unlink(box->lock_path);
		return -1;
	}
	while (box->lock_fd >= 0) {
		i_zero(&fl);
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(box->lock_fd, F_SETLK, &fl) == 0)
			break;
		if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
			*err_r = STORAGE_ERR_TEMP;
			*error_r = xasprintf("fcntl lock %s: %s", box->mail_path, strerror(errno));
		} else if (box->lock_nowait || mono_ms() >= deadline) {
			*err_r = STORAGE_ERR_IN_USE;
			*error_r = xasprintf("%s: locked by another process", box->mail_path);
		} else {
			sleep_ms(10 + (unsigned)((mono_ms() + tries++ * 7) % 41));
			continue;
		}
		close(box->lock_fd);
		box->lock_fd = -1;
		(void)unlink(box->lock_path);
		return -1;
	}
	box->locked = true;
	return 0;
}

static void
flat_unlock(struct storage_box *box)
{
	if (!box->locked)
		return;
	if (box->lock_fd >= 0) {
		struct flock fl;

		i_zero(&fl);
		fl.l_type = F_UNLCK;
		fl.l_whence = SEEK_SET;
		(void)fcntl(box->lock_fd, F_SETLK, &fl);
		close(box->lock_fd);
		box->lock_fd = -1;
	}
	(void)unlink(box->lock_path);
	box->locked = false;
}

/* Applying a view to the shared state */

static void
frec_to_mail(const struct frec *r, struct mail_rec *m)
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

static void
mail_to_frec(const struct mail_rec *m, struct frec *r)
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
static void
view_from_state(const struct storage_box *box, const struct mbox_state *state, bool with_recs,
		struct view *v)
{
	i_zero(v);
	v->uidvalidity = state->uidvalidity;
	v->uidnext = state->uidnext;
	v->first_recent_uid = state->first_recent_uid;
	v->highest_modseq = state->highest_modseq;
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
		mail_to_frec(&state->mails[i], &v->recs[v->count++]);
}

/* Keyword bits of the view renumbered to state's table. */
static uint64_t
remap_keywords(struct mbox_state *state, const int *map, uint64_t bits)
{
	uint64_t out = 0;

	if (bits == 0)
		return 0;
	for (unsigned i = 0; i < MBOX_MAX_KEYWORDS; i++) {
		if ((bits & (1ULL << i)) != 0 && map[i] >= 0)
			out |= 1ULL << map[i];
	}
	return out;
}

static bool
keywords_same(const struct view *v, const struct mbox_state *state)
{
	if (v->kw_count != state->keyword_count)
		return false;
	for (unsigned i = 0; i < v->kw_count; i++) {
		if (strcmp(v->kw[i], state->keywords[i]) != 0)
			return false;
	}
	return true;
}

static void
box_take_view_stat(struct storage_box *box, const struct view *v)
{
	box->mail_size = v->mail_size;
	box->ino = v->ino;
	box->dev = v->dev;
	box->mtime_sec = v->mtime_sec;
	box->mtime_nsec = v->mtime_nsec;
	box->parsed_end = v->parsed_end;
	box->last_open = v->last_open;
	if (v->parsed_end < v->mail_size)
		box->pending = true;
}

/* Makes state hold exactly v's messages. Returns 1 if that meant a new
   UIDVALIDITY for a state that had one, else 0. */
static int
view_apply(const struct view *v, struct mbox_state *state)
{
	int map[MBOX_MAX_KEYWORDS];
	struct mail_rec m;
	size_t i = 0, j = 0;
	bool restarted = false;
	int ret = 0;

	if (state->uidvalidity != v->uidvalidity) {
		ret = state->uidvalidity != 0 ? 1 : 0;
		mbox_state_clear(state);
		state->uidvalidity = v->uidvalidity;
		state->first_recent_uid = v->first_recent_uid;
	}
	for (unsigned k = 0; k < MBOX_MAX_KEYWORDS; k++)
		map[k] = k < v->kw_count ? mbox_state_keyword(state, v->kw[k], true) : -1;
	/* The messages v no longer has leave first, in one pass (a mass
	   expunge by another process must not cost a memmove each). */
	if (state->count > 0) {
		uint32_t *gone = NULL;
		size_t ngone = 0, galloc = 0;

		for (i = 0; i < state->count; i++) {
			uint32_t uid = state->mails[i].uid;

			while (j < v->count && v->recs[j].uid < uid)
				j++;
			if (j < v->count && v->recs[j].uid == uid)
				continue;
			xgrow(&gone, &galloc, ngone + 1, sizeof(*gone));
			gone[ngone++] = uid;
		}
		mbox_state_remove_uids(state, gone, ngone);
		free(gone);
		i = j = 0;
	}
	/* one allocation for a fresh load */
	if (state->count == 0)
		xgrow(&state->mails, &state->alloc, v->count, sizeof(*state->mails));
	/* Now every UID of state is in v: update those, append the rest. */
	while (j < v->count) {
		frec_to_mail(&v->recs[j], &m);
		m.keywords = remap_keywords(state, map, m.keywords);
		if (i < state->count && state->mails[i].uid == m.uid) {
			struct mail_rec *cur = &state->mails[i];

			cur->size = m.size;
			cur->internal_date = m.internal_date;
			cur->tz_minutes = m.tz_minutes;
			memcpy(cur->priv, m.priv, sizeof(cur->priv));
			(void)mbox_state_set_flags(state, i, m.flags, m.keywords);
			i++;
			j++;
			continue;
		}
		if (i < state->count || (state->count > 0 &&
					 state->mails[state->count - 1].uid >= m.uid)) {
			/* A known UID below ours appeared: cannot happen in one
			   lineage; start the state over. Once: v's UIDs are
			   ascending (index_read() and flat_reconcile() make
			   sure), so a second time is impossible; the bound
			   keeps the loop finite whatever. */
			if (restarted) {
				j++;
				continue;
			}
			restarted = true;
			mbox_state_clear(state);
			state->uidvalidity = v->uidvalidity;
			ret = 1;
			i = j = 0;
			for (unsigned k = 0; k < MBOX_MAX_KEYWORDS; k++)
				map[k] = k < v->kw_count ? mbox_state_keyword(state, v->kw[k], true) : -1;
			continue;
		}
		(void)mbox_state_append(state, &m);
		i++;
		j++;
	}
	if (v->uidnext > state->uidnext)
		state->uidnext = v->uidnext;
	if (v->highest_modseq > state->highest_modseq)
		state->highest_modseq = v->highest_modseq;
	return ret;
}

/* Loading */

static int
flat_open_mail(struct storage_box *box, struct stat *st_r, bool *exists_r, enum storage_error *err_r,
	       char **error_r)
{
	struct stat st;
	int fd;

	*exists_r = false;
	if (stat(box->mail_path, &st) < 0) {
		if (errno == ENOENT && box->inbox) {
			if (box->fd >= 0) {
				close(box->fd);
				box->fd = -1;
			}
			return 0;
		}
		*err_r = errno == ENOENT ? STORAGE_ERR_NOT_FOUND : STORAGE_ERR_TEMP;
		*error_r = xasprintf("stat %s: %s", box->mail_path, strerror(errno));
		return -1;
	}
	if (box->fd >= 0) {
		struct stat cur;

		if (fstat(box->fd, &cur) == 0 && cur.st_ino == st.st_ino && cur.st_dev == st.st_dev) {
			*st_r = cur;
			*exists_r = true;
			return 0;
		}
		close(box->fd);
		box->fd = -1;
	}
	fd = open(box->mail_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*err_r = errno == ENOENT && !box->inbox ? STORAGE_ERR_NOT_FOUND : STORAGE_ERR_TEMP;
		if (errno == ENOENT && box->inbox)
			return 0;
		*error_r = xasprintf("open %s: %s", box->mail_path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		*error_r = xasprintf("fstat %s: %s", box->mail_path, strerror(errno));
		close(fd);
		return -1;
	}
	box->fd = fd;
	*exists_r = true;
	return 0;
}

/* Brings state in line with the mail file and the index on disk, writing
   the index if it was behind. Takes the lock only when something must be
   written (unless the caller holds it). Returns 0, 1 (new UIDVALIDITY for
   a state that had one) or -1. */
static int
flat_refresh(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	     char **error_r)
{
	bool took_lock = false;
	int ret = -1;

	for (unsigned attempt = 0; attempt < 2; attempt++) {
		struct view v;
		struct stat st;
		bool exists, valid;
		const char *why = NULL;
		enum recon_kind kind;
		size_t first;
		int ifd, r;

		if (flat_open_mail(box, &st, &exists, err_r, error_r) < 0)
			break;
		r = index_read(box->index_path, &v, &ifd, &why, error_r);
		if (r < 0) {
			*err_r = STORAGE_ERR_TEMP;
			break;
		}
		valid = r > 0;
		if (valid && view_matches_file(&v, exists ? &st : NULL)) {
			box_set_index_fd(box, ifd, v.header_size);
			ret = view_apply(&v, state);
			box->disk_same = keywords_same(&v, state);
			box_take_view_stat(box, &v);
			box->pending = false;
			view_free(&v);
			break;
		}
		if (!box->locked) {
			if (ifd >= 0)
				close(ifd);
			view_free(&v);
			if (flat_lock(box, false, err_r, error_r) < 0)
				break;
			took_lock = true;
			continue;
		}
		if (!valid && state->uidvalidity != 0) {
			/* The index went away while we had the mailbox open:
			   what we have in memory is the best base. */
			view_free(&v);
			view_from_state(box, state, true, &v);
			valid = true;
			ifd = -1;
		} else if (valid && state->uidvalidity != 0 && v.uidvalidity != state->uidvalidity) {
			/* another lineage on disk: it wins */
		}
		if (flat_reconcile(box, &v, valid, exists ? box->fd : -1, exists ? &st : NULL,
				   &kind, &first, error_r) < 0) {
			*err_r = STORAGE_ERR_TEMP;
			if (ifd >= 0)
				close(ifd);
			view_free(&v);
			break;
		}
		if (ifd >= 0)
			box_set_index_fd(box, ifd, v.header_size);
		else
			box_set_index_fd(box, -1, 0);
		if (kind == RECON_TAIL && ifd >= 0)
			r = index_write_tail(box, &v, first, error_r);
		else if (kind != RECON_NONE || ifd < 0)
			r = index_write_full(box, &v, error_r);
		else
			r = 0;
		if (r < 0) {
			*err_r = storage_error_from_errno(errno);
			view_free(&v);
			break;
		}
		{
			bool pending = box->pending;

			ret = view_apply(&v, state);
			box->disk_same = keywords_same(&v, state);
			box_take_view_stat(box, &v);
			box->pending = pending || v.parsed_end < v.mail_size;
		}
		view_free(&v);
		break;
	}
	if (took_lock)
		flat_unlock(box);
	return ret;
}

/* Rewrites the whole index from state (a keyword table change). Takes the
   lock unless held. */
static int
flat_write_state(struct storage_box *box, struct mbox_state *state, char **error_r)
{
	enum storage_error err;
	bool took = !box->locked;
	struct view v;
	int ret;

	if (took && flat_lock(box, false, &err, error_r) < 0)
		return -1;
	view_from_state(box, state, true, &v);
	ret = index_write_full(box, &v, error_r);
	if (ret == 0)
		box->disk_same = true;
	view_free(&v);
	if (took)
		flat_unlock(box);
	return ret;
}

/* Backend operations */

static int
flat_init(const struct storage_settings *set, struct storage **st_r, char **error_r)
{
	struct storage *st;
	char *root;

	if (storage_root_prepare("flat", set, &root, error_r) < 0)
		return -1;
	st = xcalloc(1, sizeof(*st));
	st->root = root;
	*st_r = st;
	return 0;
}

static void
flat_deinit(struct storage **stp)
{
	struct storage *st = *stp;

	if (st == NULL)
		return;
	free(st->root);
	free(st);
	*stp = NULL;
}

static void
flat_box_free(struct storage_box *box)
{
	flat_unlock(box);
	if (box->fd >= 0)
		close(box->fd);
	if (box->index_fd >= 0)
		close(box->index_fd);
	free(box->user);
	free(box->name);
	free(box->user_dir);
	free(box->mail_path);
	free(box->mail_tmp);
	free(box->lock_path);
	free(box->index_path);
	free(box->index_tmp);
	free(box->uidv_path);
	free(box);
}

static struct storage_box *
flat_box_new(struct storage *st, const char *user, const char *name)
{
	struct storage_box *box = xcalloc(1, sizeof(*box));

	box->st = st;
	box->user = xstrdup(user);
	box->name = xstrdup(name);
	box->inbox = strcmp(name, "INBOX") == 0;
	box->user_dir = flat_user_dir(st, user);
	box->mail_path = flat_mail_path(st, user, name);
	box->mail_tmp = xasprintf("%s.tmp", box->mail_path);
	box->lock_path = xasprintf("%s.lock", box->mail_path);
	box->index_path = flat_index_path(st, user, name);
	box->index_tmp = xasprintf("%s.tmp", box->index_path);
	box->uidv_path = xasprintf("%s/%s/uidvalidity", box->user_dir, FLAT_IMAP_DIR);
	box->fd = -1;
	box->index_fd = -1;
	box->lock_fd = -1;
	return box;
}

static int
flat_open(struct storage *st, const char *user, const char *name, struct mbox_state *state,
	  struct storage_box **box_r, enum storage_error *err_r, char **error_r)
{
	struct storage_box *box;

	*err_r = STORAGE_ERR_NONE;
	if (flat_check_names(user, name, err_r, error_r) < 0)
		return -1;
	box = flat_box_new(st, user, name);
	if (box->inbox) {
		if (mkdir(box->user_dir, 0700) < 0 && errno != EEXIST) {
			*err_r = storage_error_from_errno(errno);
			*error_r = xasprintf("mkdir %s: %s", box->user_dir, strerror(errno));
			flat_box_free(box);
			return -1;
		}
	}
	if (flat_refresh(box, state, err_r, error_r) < 0) {
		flat_box_free(box);
		return -1;
	}
	*box_r = box;
	return 0;
}

static void
flat_close(struct storage_box **boxp)
{
	if (*boxp == NULL)
		return;
	flat_box_free(*boxp);
	*boxp = NULL;
}

/* True if the index on disk is the one box last wrote or read (same
   inode, size and mtime: one stat()), so that what box remembers of it
   holds. */
static bool
flat_index_ours(const struct storage_box *box)
{
	struct stat ist;

	if (box->index_fd < 0 || box->index_ino == 0 || stat(box->index_path, &ist) < 0)
		return false;
	return box->index_ino == (uint64_t)ist.st_ino && box->index_size == (uint64_t)ist.st_size &&
		box->index_mtime_sec == (int64_t)ist.st_mtim.tv_sec &&
		box->index_mtime_nsec == (int64_t)ist.st_mtim.tv_nsec;
}

static bool
box_stat_equal(const struct storage_box *box, const struct stat *st)
{
	return box->ino == (uint64_t)st->st_ino && box->dev == (uint64_t)st->st_dev &&
		box->mail_size == (uint64_t)st->st_size &&
		box->mtime_sec == (int64_t)st->st_mtim.tv_sec &&
		box->mtime_nsec == (int64_t)st->st_mtim.tv_nsec;
}

static void
box_set_stat(struct storage_box *box, const struct stat *st)
{
	box->ino = (uint64_t)st->st_ino;
	box->dev = (uint64_t)st->st_dev;
	box->mail_size = (uint64_t)st->st_size;
	box->mtime_sec = (int64_t)st->st_mtim.tv_sec;
	box->mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
}

/* True if neither the mail file nor the index changed since state was
   last brought in line with them (two stat() calls). */
static bool
flat_box_unchanged(struct storage_box *box)
{
	struct stat st;
	bool mail_same;

	if (box->pending)
		return false;
	if (stat(box->mail_path, &st) == 0)
		mail_same = box_stat_equal(box, &st);
	else
		mail_same = errno == ENOENT && box->inbox && box->ino == 0;
	return mail_same && flat_index_ours(box);
}

/* Writes records [first, state->count) of state and the header, in place,
   into box's index, which must hold state's records below first
   (disk_same). A keyword table that outgrew the header means a full
   rewrite. O(records written). */
static int
index_write_state_tail(struct storage_box *box, struct mbox_state *state, size_t first,
		       char **error_r)
{
	struct buf b = BUF_INIT;
	unsigned char *recs;
	struct view hv;
	size_t n;
	int ret;

	if (box->index_fd < 0 || !box->disk_same || first > state->count ||
	    state->keyword_count > MBOX_MAX_KEYWORDS)
		return flat_write_state(box, state, error_r);
	view_from_state(box, state, false, &hv);
	(void)header_encode(&hv, state->count, &b);
	view_free(&hv);
	if (b.len != box->index_header_size) {
		buf_free(&b);
		return flat_write_state(box, state, error_r);
	}
	n = state->count - first;
	recs = xmalloc(n == 0 ? 1 : n * IDX_REC_SIZE);
	for (size_t i = 0; i < n; i++) {
		struct frec r;

		mail_to_frec(&state->mails[first + i], &r);
		rec_encode(recs + i * IDX_REC_SIZE, &r);
	}
	ret = index_put_tail(box, &b, first, recs, n, error_r);
	free(recs);
	buf_free(&b);
	return ret;
}

/* The tail path of a sync, with the lock held: when the index is ours and
   holds exactly state's records, and the mail file only grew, parses the
   bytes after the part the index knows and appends their messages to
   state and to the index. O(new bytes + the last known message, which is
   re-hashed to make sure the file was not rewritten under the same
   inode). Returns 1 if done, 0 if this case does not apply (the caller
   does a full flat_refresh(); nothing was changed), -1 on error (state
   and box as before). */
static int
flat_tail_sync(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	       char **error_r)
{
	int64_t now = (int64_t)time(NULL);
	struct mail_rec *last, saved_last;
	size_t old_count = state->count, first, start = 0;
	uint32_t old_uidnext = state->uidnext;
	uint64_t old_modseq = state->highest_modseq, size, from;
	uint64_t o_size, o_ino, o_dev, o_parsed;
	int64_t o_msec, o_mnsec;
	bool o_last_open, o_pending, exists, reopen;
	struct stat st;
	struct scan sc;

	if (!box->disk_same || !flat_index_ours(box) || box->ino == 0)
		return 0;
	if (flat_open_mail(box, &st, &exists, err_r, error_r) < 0)
		return -1;
	if (!exists || box->fd < 0 || box->ino != (uint64_t)st.st_ino ||
	    box->dev != (uint64_t)st.st_dev)
		return 0;
	size = (uint64_t)st.st_size;
	/* Grown, or the same file with a pending tail; anything else (same
	   size but written, shrunk) needs the matching of flat_reconcile(). */
	if (!(size > box->mail_size || box_stat_equal(box, &st)) || box->parsed_end > size)
		return 0;
	last = state->count > 0 ? &state->mails[state->count - 1] : NULL;
	{
		/* the same check as view_boundary_ok(), on state's last record */
		struct frec lr;
		struct view lv;

		i_zero(&lv);
		lv.parsed_end = box->parsed_end;
		if (last != NULL) {
			mail_to_frec(last, &lr);
			lv.recs = &lr;
			lv.count = 1;
		}
		if (!view_boundary_ok(&lv, box->fd))
			return 0;
	}
	reopen = box->last_open && last != NULL;
	from = reopen ? last->priv[0] : box->parsed_end;
	if (flat_scan(box->fd, from, size,
		      now - (int64_t)st.st_mtim.tv_sec >= FLAT_TAIL_AGE_SECS, reopen, now,
		      box->mail_path, &sc, error_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		return -1;
	}
	if (reopen && (sc.count == 0 || sc.recs[0].off != last->priv[0])) {
		scan_free(&sc);
		return 0;
	}
	start = reopen ? 1 : 0;
	if ((uint64_t)state->uidnext + (sc.count - start) > UINT32_MAX) {
		/* out of UIDs: flat_refresh() does what it does for that */
		scan_free(&sc);
		return 0;
	}
	saved_last = last != NULL ? *last : (struct mail_rec){ 0 };
	o_size = box->mail_size;
	o_ino = box->ino;
	o_dev = box->dev;
	o_msec = box->mtime_sec;
	o_mnsec = box->mtime_nsec;
	o_parsed = box->parsed_end;
	o_last_open = box->last_open;
	o_pending = box->pending;

	first = old_count;
	if (reopen) {
		/* the unterminated last message grew */
		last->priv[1] = sc.recs[0].len;
		last->priv[2] = sc.recs[0].hash;
		last->size = sc.recs[0].served;
		first = old_count - 1;
	}
	for (size_t i = start; i < sc.count; i++) {
		struct frec r = sc.recs[i];
		struct mail_rec m;

		r.uid = state->uidnext;
		r.flags = 0;
		r.keywords = 0;
		r.modseq = state->highest_modseq + 1;
		frec_to_mail(&r, &m);
		(void)mbox_state_append(state, &m);
	}
	box_set_stat(box, &st);
	box->parsed_end = sc.end;
	if (sc.count > 0)
		box->last_open = sc.last_open;
	box->pending = sc.pending || box->parsed_end < box->mail_size;
	scan_free(&sc);
	if (first == state->count && box->parsed_end == o_parsed && o_size == box->mail_size &&
	    o_msec == box->mtime_sec && o_mnsec == box->mtime_nsec)
		return 1;       /* a pending tail that is still pending: nothing to write */
	if (index_write_state_tail(box, state, first, error_r) < 0) {
		*err_r = storage_error_from_errno(errno);
		state->count = old_count;
		state->uidnext = old_uidnext;
		state->highest_modseq = old_modseq;
		if (last != NULL)
			*last = saved_last;
		box->mail_size = o_size;
		box->ino = o_ino;
		box->dev = o_dev;
		box->mtime_sec = o_msec;
		box->mtime_nsec = o_mnsec;
		box->parsed_end = o_parsed;
		box->last_open = o_last_open;
		box->pending = o_pending;
		/* what the index holds is unknown now: read it next time */
		box->index_ino = 0;
		return -1;
	}
	return 1;
}

/* Brings state in line with the disk: nothing if nothing changed, the
   tail path when only the mail file grew behind our own index, else a
   full flat_refresh(). Takes the lock only if something must be written
   (unless the caller holds it). Returns like flat_refresh(). */
static int
flat_catch_up(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	      char **error_r)
{
	bool took = false;
	int ret;

	if (flat_box_unchanged(box))
		return 0;
	if (!box->disk_same || !flat_index_ours(box))
		return flat_refresh(box, state, err_r, error_r);
	if (!box->locked) {
		if (flat_lock(box, false, err_r, error_r) < 0)
			return -1;
		took = true;
	}
	ret = flat_tail_sync(box, state, err_r, error_r);
	if (ret == 0)
		ret = flat_refresh(box, state, err_r, error_r);
	else if (ret > 0)
		ret = 0;
	if (took)
		flat_unlock(box);
	return ret;
}

static int
flat_sync(struct storage_box *box, struct mbox_state *state, char **error_r)
{
	enum storage_error err = STORAGE_ERR_NONE;
	int ret;

	box->lock_nowait = true;
	ret = flat_catch_up(box, state, &err, error_r);
	box->lock_nowait = false;
	if (ret < 0 && err == STORAGE_ERR_IN_USE) {
		/* Another writer is busy: what it writes is picked up when it
		   lets go of the lock (a watched event) or at the next command. */
		free(*error_r);
		*error_r = NULL;
		return 0;
	}
	return ret;
}

static int
flat_read(struct storage_box *box, const struct mail_rec *rec, struct buf *out, char **error_r)
{
	uint64_t off = rec->priv[0], len = rec->priv[1];
	size_t start = out->len;
	bool have_date;
	int64_t date;
	int32_t tz;
	uint64_t served;
	char *data;
	ssize_t n;

	if (box->fd < 0 || len == 0 || len > (uint64_t)SSIZE_MAX / 2) {
		*error_r = xasprintf("%s: message %u is not available", box->mail_path, rec->uid);
		return -1;
	}
	data = xmalloc((size_t)len);
	n = fd_pread_full(box->fd, data, (size_t)len, off);
	if (n < 0) {
		*error_r = xasprintf("read %s: %s", box->mail_path, strerror(errno));
		free(data);
		return -1;
	}
	if ((uint64_t)n != len || hash_bytes(data, (size_t)len) != rec->priv[2]) {
		*error_r = xasprintf("%s: message %u changed on disk", box->mail_path, rec->uid);
		free(data);
		return -1;
	}
	served = flat_serve(data, (size_t)len, out, &have_date, &date, &tz);
	free(data);
	if (served != rec->size) {
		buf_truncate(out, start);
		*error_r = xasprintf("%s: message %u size changed", box->mail_path, rec->uid);
		return -1;
	}
	return 0;
}

/* Writes len bytes of p to the end of the locked mail file at *size_io. */
static int
flat_write_at_end(struct storage_box *box, const void *p, size_t len, uint64_t *size_io)
{
	if (fd_pwrite_full(box->lock_fd, p, len, *size_io) < 0)
		return -1;
	*size_io += len;
	return 0;
}

/* The fast end of an APPEND: the message (stored, hash) was written at
   offset off and fsynced, and the mail file (now st) is exactly what
   state and the index knew plus that message. Makes its record here (the
   same one a scan of the file would make) and writes it and the header in
   place: no index read, no view of the whole mailbox. */
static uint32_t
flat_append_record(struct storage_box *box, struct mbox_state *state, const struct buf *stored,
		   uint64_t off, uint64_t hash, const struct stat *st, uint8_t flags,
		   uint64_t keywords, int64_t internal_date, int32_t tz_minutes)
{
	struct mail_rec m;
	bool have_date;
	char *error = NULL;

	i_zero(&m);
	m.uid = state->uidnext;
	m.flags = flags & MAIL_FLAGS_ALL;
	m.keywords = keywords;
	m.size = flat_serve(stored->data, stored->len, NULL, &have_date, &m.internal_date,
			    &m.tz_minutes);
	if (internal_date != 0) {
		m.internal_date = internal_date;
		m.tz_minutes = tz_minutes;
	} else if (!have_date) {
		m.internal_date = (int64_t)time(NULL);
		m.tz_minutes = 0;
	}
	m.modseq = state->highest_modseq + 1;
	m.priv[0] = off;
	m.priv[1] = stored->len;
	m.priv[2] = hash;
	box_set_stat(box, st);
	box->parsed_end = (uint64_t)st->st_size;
	box->last_open = false;
	box->pending = false;
	(void)mbox_state_append(state, &m);
	if (index_write_state_tail(box, state, state->count - 1, &error) < 0) {
		/* The message is stored; only its flags and date may be lost:
		   the index still ends before it, so the next sync reads the
		   index again and parses the message from the file, with the
		   same UID (the index's uidnext). */
		log_warn("-", "%s: %s", box->mail_path, error);
		free(error);
		box->index_ino = 0;
	}
	return m.uid;
}

static int
flat_append(struct storage_box *box, struct mbox_state *state, const char *data, size_t len,
	    uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
	    uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	struct buf stored = BUF_INIT;
	struct stat st;
	uint64_t size, orig_size, hash;
	struct mail_rec *m;
	bool fast;
	int ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (flat_lock(box, true, err_r, error_r) < 0)
		return -1;
	/* Whatever others wrote is taken in first, so that UIDs stay in
	   file order (O(new bytes) while the index is ours). */
	if (flat_catch_up(box, state, err_r, error_r) < 0)
		goto out;
	if (fstat(box->lock_fd, &st) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		*error_r = xasprintf("fstat %s: %s", box->mail_path, strerror(errno));
		goto out;
	}
	orig_size = size = (uint64_t)st.st_size;
	/* The file is exactly what state and our index describe: the new
	   record can be made without reading anything back. */
	fast = box->disk_same && box->index_fd >= 0 && !box->pending && !box->last_open &&
		box_stat_equal(box, &st) && box->parsed_end == size &&
		state->uidnext < UINT32_MAX;
	/* Terminate an unterminated tail so that it stays its own message. */
	if (size > box->parsed_end || box->last_open) {
		char end[2] = { 0, 0 };
		ssize_t n = size >= 2 ? fd_pread_full(box->lock_fd, end, 2, size - 2) :
			fd_pread_full(box->lock_fd, end + 1, 1, size - 1);
		const char *term;

		if (n < 0)
			goto io_fail;
		if (end[1] == '\n')
			term = ".\n";
		else if (end[1] == '.' && (size == 1 || end[0] == '\n'))
			term = "\n";
		else
			term = "\n.\n";
		if (flat_write_at_end(box, term, strlen(term), &size) < 0)
			goto io_fail;
	}
	flat_stuff(data, len, &stored);
	hash = hash_bytes(stored.data, stored.len);
	/* Durable before the index is touched, and before the client hears
	   OK. */
	if (flat_write_at_end(box, stored.data, stored.len, &size) < 0 || fsync(box->lock_fd) < 0)
		goto io_fail;
	if (fast) {
		struct stat now;

		/* Only our bytes were added (an unlocked "cat >>" may have
		   written beside us: then the tail path below sorts it out). */
		if (fstat(box->lock_fd, &now) == 0 && (uint64_t)now.st_size == size &&
		    now.st_ino == st.st_ino && now.st_dev == st.st_dev) {
			*uid_r = flat_append_record(box, state, &stored, orig_size, hash, &now, flags,
						    keywords, internal_date, tz_minutes);
			ret = 0;
			goto out;
		}
	}
	/* The tail path picks the new message up like any other writer's. */
	if (flat_catch_up(box, state, err_r, error_r) < 0)
		goto out;
	m = state->count > 0 ? &state->mails[state->count - 1] : NULL;
	if (m == NULL || m->priv[1] != stored.len || m->priv[2] != hash ||
	    m->priv[0] != size - stored.len) {
		*err_r = STORAGE_ERR_TEMP;
		*error_r = xasprintf("%s: appended message not found after writing it", box->mail_path);
		goto out;
	}
	if (internal_date != 0) {
		m->internal_date = internal_date;
		m->tz_minutes = tz_minutes;
	}
	(void)mbox_state_set_flags(state, state->count - 1, flags, keywords);
	/* Persist flags and date of the new record. */
	if (index_write_state_tail(box, state, state->count - 1, error_r) < 0) {
		/* The message is stored; only its flags may be lost. */
		log_warn("-", "%s: %s", box->mail_path, *error_r);
		free(*error_r);
		*error_r = NULL;
		box->index_ino = 0;
	}
	*uid_r = m->uid;
	ret = 0;
	goto out;
io_fail:
	*err_r = storage_error_from_errno(errno);
	*error_r = xasprintf("write %s: %s", box->mail_path, strerror(errno));
	/* No half message stays behind. */
	if (ftruncate(box->lock_fd, (off_t)orig_size) == 0)
		(void)fsync(box->lock_fd);
out:
	buf_free(&stored);
	flat_unlock(box);
	return ret;
}

static int
flat_flags_changed(struct storage_box *box, struct mbox_state *state, size_t idx, char **error_r)
{
	unsigned char rec[IDX_REC_SIZE];
	struct frec r;
	struct view v;
	struct buf b = BUF_INIT;
	size_t hsize;

	if (idx >= state->count)
		return 0;
	if (!box->disk_same || box->index_fd < 0 || state->keyword_count > MBOX_MAX_KEYWORDS)
		return flat_write_state(box, state, error_r);
	view_from_state(box, state, false, &v);
	hsize = header_encode(&v, state->count, &b);
	view_free(&v);
	if (hsize != box->index_header_size) {
		buf_free(&b);
		return flat_write_state(box, state, error_r);
	}
	mail_to_frec(&state->mails[idx], &r);
	rec_encode(rec, &r);
	if (fd_pwrite_full(box->index_fd, rec, sizeof(rec), hsize + idx * IDX_REC_SIZE) < 0 ||
	    fd_pwrite_full(box->index_fd, b.data, b.len, 0) < 0) {
		*error_r = xasprintf("write %s: %s", box->index_path, strerror(errno));
		buf_free(&b);
		return -1;
	}
	buf_free(&b);
	box_set_index_fd(box, box->index_fd, (uint32_t)hsize);
	return 0;
}

/* Copies [off, off + len) of in to the end of out. */
static int
copy_range(int in, int out, uint64_t off, uint64_t len, char *tmp)
{
	while (len > 0) {
		size_t want = len > FLAT_COPY_CHUNK ? FLAT_COPY_CHUNK : (size_t)len;
		ssize_t n = fd_pread_full(in, tmp, want, off);

		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (fd_write_full(out, tmp, (size_t)n) < 0)
			return -1;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Copies bytes appended to in after *from (by writers that do not lock)
   to out; a bounded number of rounds. */
static int
copy_late_bytes(int in, int out, uint64_t *from, char *tmp)
{
	for (unsigned round = 0; round < 100; round++) {
		struct stat st;

		if (fstat(in, &st) < 0)
			return -1;
		if ((uint64_t)st.st_size <= *from)
			return 0;
		if (copy_range(in, out, *from, (uint64_t)st.st_size - *from, tmp) < 0)
			return -1;
		*from = (uint64_t)st.st_size;
	}
	return 0;
}

static int
flat_expunge(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
	     size_t count, char **error_r)
{
	enum storage_error err;
	struct view nv;
	struct stat st;
	char *tmp = NULL, *data = NULL;
	uint32_t *sorted = NULL;
	size_t data_cap = 0, removed = 0;
	uint64_t newoff = 0, from;
	int tfd = -1, ret = -1, mode = 0600;
	bool open_kept = false;

	i_zero(&nv);
	if (count == 0)
		return 0;
	/* u32_sorted_contains() searches uids: they must be ascending (the contract);
	   a caller that broke it gets a sorted copy, not a wrong expunge. */
	for (size_t i = 1; i < count; i++) {
		if (uids[i] < uids[i - 1]) {
			sorted = xmalloc(count * sizeof(*sorted));
			memcpy(sorted, uids, count * sizeof(*sorted));
			qsort(sorted, count, sizeof(*sorted), u32_cmp);
			uids = sorted;
			break;
		}
	}
	if (flat_lock(box, false, &err, error_r) < 0) {
		free(sorted);
		return -1;
	}
	if (flat_catch_up(box, state, &err, error_r) < 0)
		goto out;
	for (size_t i = 0; i < state->count; i++) {
		if (u32_sorted_contains(uids, count, state->mails[i].uid))
			removed++;
	}
	if (removed == 0 || box->lock_fd < 0 || box->fd < 0) {
		ret = 0;
		goto out;
	}
	if (fstat(box->lock_fd, &st) == 0)
		mode = (int)(st.st_mode & 0777);
	tfd = open(box->mail_tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	if (tfd < 0) {
		*error_r = xasprintf("open %s: %s", box->mail_tmp, strerror(errno));
		goto out;
	}
	view_from_state(box, state, true, &nv);
	nv.count = 0;
	tmp = xmalloc(FLAT_COPY_CHUNK);
	/* Copy the kept messages in batches of consecutive ones (one read and
	   one write per batch), checking each one's hash on the way. */
	for (size_t i = 0; i < state->count;) {
		size_t j = i, k;
		uint64_t start, end;
		ssize_t n;

		if (u32_sorted_contains(uids, count, state->mails[i].uid)) {
			i++;
			continue;
		}
		start = state->mails[i].priv[0];
		end = start + state->mails[i].priv[1];
		for (j = i + 1; j < state->count; j++) {
			const struct mail_rec *m = &state->mails[j];

			if (u32_sorted_contains(uids, count, m->uid) || m->priv[0] != end ||
			    end + m->priv[1] - start > FLAT_COPY_CHUNK)
				break;
			end += m->priv[1];
		}
		if (end - start > (uint64_t)SSIZE_MAX / 2) {
			errno = EFBIG;
			goto io_fail;
		}
		if (end - start > data_cap) {
			data_cap = (size_t)(end - start);
			data = xrealloc(data, data_cap);
		}
		n = fd_pread_full(box->lock_fd, data, (size_t)(end - start), start);
		if (n < 0)
			goto io_fail;
		if ((uint64_t)n != end - start) {
			*error_r = xasprintf("%s: file shrank during expunge", box->mail_path);
			goto fail;
		}
		for (k = i; k < j; k++) {
			struct frec r;

			mail_to_frec(&state->mails[k], &r);
			if (hash_bytes(data + (r.off - start), (size_t)r.len) != r.hash) {
				*error_r = xasprintf("%s: message %u changed on disk during expunge",
						     box->mail_path, r.uid);
				goto fail;
			}
			r.off = newoff + (r.off - start);
			nv.recs[nv.count++] = r;
			open_kept = box->last_open && k == state->count - 1;
		}
		if (fd_write_full(tfd, data, (size_t)(end - start)) < 0)
			goto io_fail;
		newoff += end - start;
		i = j;
	}
	nv.parsed_end = newoff;
	nv.last_open = open_kept;
	/* Bytes after the parsed part: a pending tail, or another writer's. */
	from = box->parsed_end;
	if (copy_late_bytes(box->lock_fd, tfd, &from, tmp) < 0 || fsync(tfd) < 0 ||
	    fstat(tfd, &st) < 0)
		goto io_fail;
	view_set_stat(&nv, &st);
	/* The new index goes to its temp file first; both renames follow. */
	{
		struct buf b = BUF_INIT;
		size_t hsize;
		int ifd;

		hsize = header_encode(&nv, nv.count, &b);
		buf_reserve(&b, nv.count * IDX_REC_SIZE);
		for (size_t i = 0; i < nv.count; i++) {
			rec_encode((unsigned char *)b.data + b.len, &nv.recs[i]);
			b.len += IDX_REC_SIZE;
		}
		if (mkdir_parents(box->index_tmp, strlen(box->user_dir)) < 0 ||
		    (ifd = open(box->index_tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
			buf_free(&b);
			goto io_fail;
		}
		if (fd_write_full(ifd, b.data, b.len) < 0 || fsync(ifd) < 0) {
			buf_free(&b);
			close(ifd);
			(void)unlink(box->index_tmp);
			goto io_fail;
		}
		buf_free(&b);
		if (rename(box->mail_tmp, box->mail_path) < 0) {
			close(ifd);
			(void)unlink(box->index_tmp);
			goto io_fail;
		}
		/* From here the new file is the mailbox. */
		if (copy_late_bytes(box->lock_fd, tfd, &from, tmp) == 0)
			(void)fsync(tfd);
		if (rename(box->index_tmp, box->index_path) < 0) {
			close(ifd);
			ifd = -1;
			(void)unlink(box->index_tmp);
		}
		fsync_dir_of(box->mail_path);
		fsync_dir_of(box->index_path);
		box_set_index_fd(box, ifd, (uint32_t)hsize);
	}
	close(box->fd);
	box->fd = tfd;
	tfd = -1;
	box_take_view_stat(box, &nv);
	box->pending = nv.parsed_end < nv.mail_size;
	if (box->index_fd < 0) {
		/* the old index stays; the next sync matches by hash */
		box->ino = 0;
		box->pending = true;
	}
	/* One compaction pass, not a memmove per message. */
	mbox_state_remove_uids(state, uids, count);
	for (size_t i = 0; i < state->count && i < nv.count; i++)
		state->mails[i].priv[0] = nv.recs[i].off;
	box->disk_same = box->index_fd >= 0 && keywords_same(&nv, state);
	ret = 0;
	goto out;
io_fail:
	*error_r = xasprintf("expunge %s: %s", box->mail_path, strerror(errno));
fail:
	if (tfd >= 0) {
		close(tfd);
		tfd = -1;
		(void)unlink(box->mail_tmp);
	}
out:
	if (tfd >= 0)
		close(tfd);
	view_free(&nv);
	free(tmp);
	free(data);
	free(sorted);
	flat_unlock(box);
	return ret;
}

static void
flat_watch_paths(struct storage_box *box, struct strlist *paths_r)
{
	strlist_add(paths_r, box->mail_path);
	/* Its removal tells that a writer that made sync() wait is done. */
	strlist_add(paths_r, box->lock_path);
}

/* Mailbox management */

static void
flat_list_dir(const char *dir, const char *prefix, unsigned depth, struct strlist *names)
{
	DIR *d;
	struct dirent *de;

	if (depth > FLAT_LIST_MAX_DEPTH)
		return;
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL && names->count < FLAT_LIST_MAX_NAMES) {
		size_t nlen = strlen(de->d_name);
		char *path, *name;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (lstat(path, &st) < 0) {
			free(path);
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			name = xasprintf("%s%s/", prefix, de->d_name);
			flat_list_dir(path, name, depth + 1, names);
		} else if (S_ISREG(st.st_mode) && nlen > strlen(FLAT_SUFFIX) &&
			   strcmp(de->d_name + nlen - strlen(FLAT_SUFFIX), FLAT_SUFFIX) == 0) {
			name = xasprintf("%s%.*s", prefix, (int)(nlen - strlen(FLAT_SUFFIX)),
					 de->d_name);
			if (depth == 0 && strcmp(name, "mymailbox") == 0) {
				/* INBOX is added by the caller */
			} else if (flat_name_ok(name) && strcmp(name, "INBOX") != 0) {
				strlist_add(names, name);
			}
		} else {
			name = NULL;
		}
		free(name);
		free(path);
	}
	closedir(d);
}

static int
flat_list(struct storage *st, const char *user, struct strlist *names_r,
	  enum storage_error *err_r, char **error_r)
{
	char *dir;

	*err_r = STORAGE_ERR_NONE;
	if (flat_check_names(user, NULL, err_r, error_r) < 0)
		return -1;
	dir = flat_user_dir(st, user);
	strlist_add(names_r, "INBOX");
	flat_list_dir(dir, "", 0, names_r);
	free(dir);
	return 0;
}

static int
flat_create(struct storage *st, const char *user, const char *name, enum storage_error *err_r,
	    char **error_r)
{
	char *path;
	int fd;

	*err_r = STORAGE_ERR_NONE;
	if (flat_check_names(user, name, err_r, error_r) < 0)
		return -1;
	if (strcmp(name, "INBOX") == 0) {
		*err_r = STORAGE_ERR_EXISTS;
		*error_r = xstrdup("INBOX always exists");
		return -1;
	}
	path = flat_mail_path(st, user, name);
	if (mkdir_parents(path, strlen(st->root)) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("mkdir for %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*err_r = errno == EEXIST ? STORAGE_ERR_EXISTS : storage_error_from_errno(errno);
		*error_r = xasprintf("create %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	close(fd);
	fsync_dir_of(path);
	free(path);
	return 0;
}

static int
flat_delete(struct storage *st, const char *user, const char *name, enum storage_error *err_r,
	    char **error_r)
{
	char *path, *index;

	*err_r = STORAGE_ERR_NONE;
	if (flat_check_names(user, name, err_r, error_r) < 0)
		return -1;
	if (strcmp(name, "INBOX") == 0) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xstrdup("INBOX cannot be deleted");
		return -1;
	}
	path = flat_mail_path(st, user, name);
	if (unlink(path) < 0) {
		*err_r = errno == ENOENT ? STORAGE_ERR_NOT_FOUND : STORAGE_ERR_TEMP;
		*error_r = xasprintf("delete %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	index = flat_index_path(st, user, name);
	(void)unlink(index);
	free(index);
	free(path);
	return 0;
}

static int
flat_rename(struct storage *st, const char *user, const char *oldname, const char *newname,
	    enum storage_error *err_r, char **error_r)
{
	char *oldpath = NULL, *newpath = NULL, *oldidx = NULL, *newidx = NULL;
	char *olddir = NULL, *newdir = NULL;
	struct stat sb;
	size_t oldlen = strlen(oldname);
	bool inbox = strcmp(oldname, "INBOX") == 0;
	int ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (flat_check_names(user, oldname, err_r, error_r) < 0 ||
	    flat_check_names(user, newname, err_r, error_r) < 0)
		return -1;
	if (strcmp(newname, "INBOX") == 0) {
		*err_r = STORAGE_ERR_EXISTS;
		*error_r = xstrdup("INBOX exists");
		return -1;
	}
	if (!inbox && strncmp(newname, oldname, oldlen) == 0 && newname[oldlen] == '/') {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xstrdup("cannot rename a mailbox into itself");
		return -1;
	}
	oldpath = flat_mail_path(st, user, oldname);
	newpath = flat_mail_path(st, user, newname);
	oldidx = flat_index_path(st, user, oldname);
	newidx = flat_index_path(st, user, newname);
	if (lstat(newpath, &sb) == 0) {
		*err_r = STORAGE_ERR_EXISTS;
		*error_r = xasprintf("%s exists", newname);
		goto out;
	}
	if (lstat(oldpath, &sb) < 0 && !(inbox && errno == ENOENT)) {
		*err_r = errno == ENOENT ? STORAGE_ERR_NOT_FOUND : STORAGE_ERR_TEMP;
		*error_r = xasprintf("stat %s: %s", oldpath, strerror(errno));
		goto out;
	}
	if (mkdir_parents(newpath, strlen(st->root)) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("mkdir for %s: %s", newpath, strerror(errno));
		goto out;
	}
	if (inbox && lstat(oldpath, &sb) < 0) {
		/* an INBOX that was never written: the new mailbox is empty */
		int fd = open(newpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		if (fd < 0) {
			*err_r = errno == EEXIST ? STORAGE_ERR_EXISTS : storage_error_from_errno(errno);
			*error_r = xasprintf("create %s: %s", newpath, strerror(errno));
			goto out;
		}
		close(fd);
	} else if (rename(oldpath, newpath) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("rename %s: %s", oldpath, strerror(errno));
		goto out;
	}
	/* The index follows; without it the new name starts a new
	   UIDVALIDITY, which is allowed. */
	if (mkdir_parents(newidx, strlen(st->root)) == 0)
		(void)rename(oldidx, newidx);
	else
		(void)unlink(oldidx);
	if (!inbox) {
		/* Inferiors move too (RFC 3501 RENAME); INBOX's stay. */
		olddir = xasprintf("%s/%s/%s", st->root, user, oldname);
		newdir = xasprintf("%s/%s/%s", st->root, user, newname);
		if (lstat(olddir, &sb) == 0 && S_ISDIR(sb.st_mode) && lstat(newdir, &sb) < 0)
			(void)rename(olddir, newdir);
		free(olddir);
		free(newdir);
		olddir = xasprintf("%s/%s/%s/%s", st->root, user, FLAT_IMAP_DIR, oldname);
		newdir = xasprintf("%s/%s/%s/%s", st->root, user, FLAT_IMAP_DIR, newname);
		if (lstat(olddir, &sb) == 0 && S_ISDIR(sb.st_mode) && lstat(newdir, &sb) < 0)
			(void)rename(olddir, newdir);
	}
	ret = 0;
out:
	free(oldpath);
	free(newpath);
	free(oldidx);
	free(newidx);
	free(olddir);
	free(newdir);
	return ret;
}

static char *
flat_subscriptions_path(struct storage *st, const char *user)
{
	return xasprintf("%s/%s/%s/subscriptions", st->root, user, FLAT_IMAP_DIR);
}

static int
flat_subscriptions_read(struct storage *st, const char *user, struct strlist *names_r,
			char **error_r)
{
	enum storage_error err;
	char *path, *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	if (flat_check_names(user, NULL, &err, error_r) < 0)
		return -1;
	path = flat_subscriptions_path(st, user);
	f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT) {
			free(path);
			return 0;
		}
		*error_r = xasprintf("open %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	while ((n = getline(&line, &cap, f)) > 0 && names_r->count < FLAT_LIST_MAX_NAMES) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n > 0 && (size_t)n == strlen(line) && storage_name_is_valid(line) &&
		    !strlist_contains(names_r, line))
			strlist_add(names_r, line);
	}
	free(line);
	fclose(f);
	free(path);
	return 0;
}

static int
flat_subscriptions_write(struct storage *st, const char *user, const struct strlist *names,
			 char **error_r)
{
	enum storage_error err;
	struct buf b = BUF_INIT;
	char *path, *tmp;
	int fd, ret = -1;

	if (flat_check_names(user, NULL, &err, error_r) < 0)
		return -1;
	for (size_t i = 0; i < names->count; i++) {
		if (!storage_name_is_valid(names->items[i]))
			continue;
		buf_append_str(&b, names->items[i]);
		buf_append_c(&b, '\n');
	}
	path = flat_subscriptions_path(st, user);
	tmp = xasprintf("%s.tmp", path);
	if (mkdir_parents(tmp, strlen(st->root)) < 0) {
		*error_r = xasprintf("mkdir for %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = xasprintf("open %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fd_write_full(fd, b.data != NULL ? b.data : "", b.len) < 0 || fsync(fd) < 0) {
		*error_r = xasprintf("write %s: %s", tmp, strerror(errno));
		close(fd);
		(void)unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		*error_r = xasprintf("rename %s: %s", tmp, strerror(errno));
		(void)unlink(tmp);
		goto out;
	}
	ret = 0;
out:
	buf_free(&b);
	free(tmp);
	free(path);
	return ret;
}

const struct storage_backend storage_backend_flat = {
	.name = "flat",
	.compiled_in = true,
	.init = flat_init,
	.deinit = flat_deinit,
	.list = flat_list,
	.create = flat_create,
	.delete = flat_delete,
	.rename = flat_rename,
	.subscriptions_read = flat_subscriptions_read,
	.subscriptions_write = flat_subscriptions_write,
	.open = flat_open,
	.close = flat_close,
	.sync = flat_sync,
	.read = flat_read,
	.append = flat_append,
	.flags_changed = flat_flags_changed,
	.expunge = flat_expunge,
	.watch_paths = flat_watch_paths,
};
