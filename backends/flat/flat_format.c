/* flat_format.c: the lab's mymailbox.mail format: reading a mail file
   into messages (flat_scan()), serving a stored message as IMAP sees it
   (flat_serve(), flat_read()) with its date, and storing a new one
   (flat_stuff()).

   A mailbox is one file: every message is its header lines, its body and a
   line holding a single "."; body lines that start with "." carry one more
   "." (SMTP DATA dot-stuffing). <root>/<user>/mymailbox.mail is INBOX,
   mailbox "a/b" is <root>/<user>/a/b.mail.

   Crash safety here is about reading: nothing in this file writes. A
   message is known by its span and a 64-bit hash of its stored bytes
   (flat_hash_bytes()), so every read checks that the bytes are still the
   ones the index saw; a tail without its final "." (a writer killed
   mid-message, or an in-progress "cat >>") is left pending while young
   and served as a message once its file has not been written for
   FLAT_TAIL_AGE_SECS, so no bytes of the file are ever lost from view. */
#include "fileio.h"
#include "log.h"
#include "message.h"
#include "flat_private.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* FNV-1a, 64 bits: cheap and good enough to tell messages apart. */
uint64_t
flat_hash_update(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* The hash of a message's stored bytes: 8 bytes a step, then a final mix.
   Not cryptographic; it tells messages apart (with their length) when the
   index is matched against a changed mail file. */
uint64_t
flat_hash_bytes(const void *data, size_t len)
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
uint64_t
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
			char tmp[120];

			have_date = copy_value(c + 5, clen - 5, tmp, sizeof(tmp)) &&
				message_parse_date(tmp, date_r, tz_r) == 0;
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
void
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

void
flat_scan_free(struct scan *sc)
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
	r->hash = flat_hash_bytes(p, len);
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
int
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
				flat_scan_free(sc);
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

int
flat_read(struct storage_box *box, const struct mail_rec *rec, struct buf *out,
	  enum storage_error *err_r, char **error_r)
{
	uint64_t off = rec->priv[0], len = rec->priv[1];
	size_t start = out->len;
	bool have_date;
	int64_t date;
	int32_t tz;
	uint64_t served;
	char *data;
	ssize_t n;

	*err_r = STORAGE_ERR_NOT_FOUND;     /* not (or no longer) on the disk */
	if (box->fd < 0 || len == 0 || len > (uint64_t)SSIZE_MAX / 2) {
		*error_r = xasprintf("%s: message %u is not available", box->mail_path, rec->uid);
		return -1;
	}
	data = xmalloc((size_t)len);
	n = fd_pread_full(box->fd, data, (size_t)len, off);
	if (n < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("read %s: %s", box->mail_path, strerror(errno));
		free(data);
		return -1;
	}
	if ((uint64_t)n != len || flat_hash_bytes(data, (size_t)len) != rec->priv[2]) {
		/* rewritten by another process's expunge */
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
	*err_r = STORAGE_ERR_NONE;
	return 0;
}
