/* basesubject.c: RFC 5256 section 2.1 (see basesubject.h). The steps'
   numbers are the RFC's. */
#include "basesubject.h"
#include "message.h"

#include <strings.h>

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Step 2: removes trailing "(fwd)" and blanks, repeatedly. */
static bool
strip_trailers(struct buf *s)
{
	bool changed = false, again = true;

	while (again) {
		again = false;
		while (s->len > 0 && is_wsp(s->data[s->len - 1])) {
			buf_truncate(s, s->len - 1);
			again = true;
		}
		if (s->len >= 5 && strncasecmp(s->data + s->len - 5, "(fwd)", 5) == 0) {
			buf_truncate(s, s->len - 5);
			again = changed = true;
		}
	}
	return changed;
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP at p; returns its length, or 0. */
static size_t
blob_len(const char *p, size_t len)
{
	size_t i = 1;

	if (len == 0 || p[0] != '[')
		return 0;
	while (i < len && p[i] != '[' && p[i] != ']')
		i++;
	if (i >= len || p[i] != ']')
		return 0;
	i++;
	while (i < len && is_wsp(p[i]))
		i++;
	return i;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" at p; returns
   its length, or 0. */
static size_t
refwd_len(const char *p, size_t len)
{
	size_t i;

	if (len >= 2 && strncasecmp(p, "re", 2) == 0)
		i = 2;
	else if (len >= 3 && strncasecmp(p, "fwd", 3) == 0)
		i = 3;
	else if (len >= 2 && strncasecmp(p, "fw", 2) == 0)
		i = 2;
	else
		return 0;
	while (i < len && is_wsp(p[i]))
		i++;
	i += blob_len(p + i, len - i);
	if (i < len && p[i] == ':')
		return i + 1;
	return 0;
}

/* Step 3: subj-leader = (*subj-blob subj-refwd) / WSP, removed once.
   Returns the length removed and says if it was a "Re:"/"Fwd:". */
static size_t
leader_len(const char *p, size_t len, bool *refwd_r)
{
	size_t i = 0, b, r;

	*refwd_r = false;
	if (len > 0 && is_wsp(p[0]))
		return 1;
	while ((b = blob_len(p + i, len - i)) > 0)
		i += b;
	r = refwd_len(p + i, len - i);
	if (r == 0)
		return 0;
	*refwd_r = true;
	return i + r;
}

void
base_subject(const char *subject, size_t len, struct buf *out, bool *is_reply_r)
{
	struct buf dec = BUF_INIT;
	bool reply = false, refwd;
	size_t start, n;

	/* Step 1: decoded, every run of blanks (and folding) one space. */
	message_decode_header(subject, len, &dec);
	buf_reset(out);
	for (size_t i = 0; i < dec.len; i++) {
		char c = dec.data[i];

		if (c == '\r' || c == '\n' || c == '\t')
			c = ' ';
		if (c == ' ' && out->len > 0 && out->data[out->len - 1] == ' ')
			continue;
		buf_append_c(out, c);
	}
	buf_free(&dec);
	for (;;) {
		/* Step 2. */
		if (strip_trailers(out))
			reply = true;
		/* Steps 3 to 5. */
		start = 0;
		for (;;) {
			const char *p = out->data + start;
			size_t left = out->len - start;

			if ((n = leader_len(p, left, &refwd)) > 0) {
				start += n;
				reply |= refwd;
				continue;
			}
			/* Step 4: a leading blob goes if something remains. */
			n = blob_len(p, left);
			if (n > 0 && n < left) {
				start += n;
				continue;
			}
			break;
		}
		buf_consume(out, start);
		/* Step 6: "[fwd:" ... "]" */
		if (out->len >= 6 && strncasecmp(out->data, "[fwd:", 5) == 0 &&
		    out->data[out->len - 1] == ']') {
			buf_truncate(out, out->len - 1);
			buf_consume(out, 5);
			reply = true;
			continue;
		}
		break;
	}
	if (is_reply_r != NULL)
		*is_reply_r = reply;
}
