/* message.c: reading RFC 5322 messages: header fields, dates, RFC 2047
   encoded words.

   Everything is best effort on malformed input: junk lines in the header
   are skipped, unknown syntax is copied through, and no function reads
   past the length it was given. Header fields are read with
   message_header_next(). This file knows nothing of MIME parts (mime.c
   builds on it, not the other way round). */
#include "message.h"
#include "base64.h"
#include "text.h"
#include "charset.h"
#include "date.h"

#include <stdio.h>
#include <stdlib.h>


static char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* --- header fields --------------------------------------------------- */

bool
message_header_next(const char *hdr, size_t len, size_t *pos, struct message_field *f)
{
	while (*pos < len) {
		size_t start = *pos, end, next = text_line_next(hdr, len, start, &end);
		const char *colon;
		size_t name_end;
		bool junk = false;

		if (end == start)
			return false;           /* the blank line ending the header */
		*pos = next;
		if (is_wsp(hdr[start]))
			continue;               /* continuation without a field */
		colon = memchr(hdr + start, ':', end - start);
		if (colon == NULL)
			continue;               /* junk line, e.g. an mbox "From " line */
		name_end = (size_t)(colon - hdr);
		while (name_end > start && is_wsp(hdr[name_end - 1]))
			name_end--;
		for (size_t i = start; i < name_end; i++) {
			unsigned char c = (unsigned char)hdr[i];
			if (c <= ' ' || c == 0x7f)
				junk = true;
		}
		if (junk || name_end == start)
			continue;
		while (next < len && is_wsp(hdr[next])) {
			size_t cend, cnext = text_line_next(hdr, len, next, &cend);
			end = cend;
			next = cnext;
		}
		*pos = next;
		f->name = hdr + start;
		f->name_len = name_end - start;
		f->value = colon + 1;
		f->value_len = end - (size_t)(colon + 1 - hdr);
		f->raw = hdr + start;
		f->raw_len = next - start;
		return true;
	}
	return false;
}


size_t
message_header_size(const char *msg, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		size_t end, next = text_line_next(msg, len, pos, &end);

		if (end == pos)
			return next;
		pos = next;
	}
	return len;
}

/* Appends the value unfolded (CR and LF removed) and trimmed. */
static void
append_unfolded(struct buf *out, const char *v, size_t len)
{
	size_t start = 0, end = len;

	while (start < end && text_is_ws(v[start]))
		start++;
	while (end > start && text_is_ws(v[end - 1]))
		end--;
	/* buf_append (unlike buf_reserve) keeps out NUL-terminated even
	   when nothing else is appended. */
	buf_append(out, "", 0);
	buf_reserve(out, end - start);
	for (size_t i = start; i < end; i++) {
		if (v[i] != '\r' && v[i] != '\n')
			buf_append_c(out, v[i]);
	}
}

int
message_header_get(const char *hdr, size_t hdr_len, const char *name, struct buf *out)
{
	struct message_field f;
	size_t pos = 0;

	while (message_header_next(hdr, hdr_len, &pos, &f)) {
		if (text_mem_equals_ci(f.name, f.name_len, name)) {
			append_unfolded(out, f.value, f.value_len);
			return 1;
		}
	}
	return 0;
}

int
message_header_get_all(const char *hdr, size_t hdr_len, const char *name, struct buf *out)
{
	struct message_field f;
	size_t pos = 0;
	int found = 0;

	while (message_header_next(hdr, hdr_len, &pos, &f)) {
		if (!text_mem_equals_ci(f.name, f.name_len, name))
			continue;
		if (found)
			buf_append_str(out, ", ");
		append_unfolded(out, f.value, f.value_len);
		found = 1;
	}
	return found;
}

/* Appends p[0..len) with every line end written as CR LF, and a final
   CR LF if p does not end with one. */
static void
append_crlf(struct buf *out, const char *p, size_t len)
{
	buf_reserve(out, len + 2);
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			buf_append_c(out, '\r');
		buf_append_c(out, p[i]);
	}
	if (len == 0 || p[len - 1] != '\n')
		buf_append(out, "\r\n", 2);
}

void
message_header_fields(const char *hdr, size_t hdr_len, const char *const *names,
		      size_t name_count, bool negate, struct buf *out)
{
	struct message_field f;
	size_t pos = 0;

	while (message_header_next(hdr, hdr_len, &pos, &f)) {
		bool match = false;

		for (size_t i = 0; i < name_count && !match; i++)
			match = text_mem_equals_ci(f.name, f.name_len, names[i]);
		if (match != negate)
			append_crlf(out, f.raw, f.raw_len);
	}
	buf_append(out, "\r\n", 2);
}

/* --- dates ----------------------------------------------------------- */

/* Skips white space and comments in a NUL-terminated date string. */
static void
date_skip_cfws(const char *s, size_t *pos)
{
	text_skip_cfws(s, *pos + strlen(s + *pos), pos);
}

static size_t
read_word(const char *s, size_t *pos)
{
	size_t start = *pos;

	while (is_alpha(s[*pos]))
		(*pos)++;
	return *pos - start;
}

/* The zone of an RFC 5322 obsolete zone name; military letters and
   unknown names count as +0000 (RFC 5322 section 4.3 says they carry no
   information). */
static int32_t
zone_from_name(const char *s, size_t len)
{
	static const struct {
		const char *name;
		int32_t minutes;
	} zones[] = {
		{ "UT", 0 }, { "UTC", 0 }, { "GMT", 0 }, { "Z", 0 },
		{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 }, { "CDT", -300 },
		{ "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 },
	};

	for (size_t i = 0; i < N_ELEMENTS(zones); i++) {
		if (text_mem_equals_ci(s, len, zones[i].name))
			return zones[i].minutes;
	}
	return 0;
}

int
message_parse_date(const char *str, int64_t *time_r, int32_t *tz_minutes_r)
{
	size_t pos = 0, n;
	unsigned day, month, year, hour, min, sec = 0;
	int32_t tz = 0;
	int64_t y;

	date_skip_cfws(str, &pos);
	/* Optional day name, with or without the comma. */
	if (is_alpha(str[pos])) {
		n = read_word(str, &pos);
		if (n < 3)
			return -1;
		date_skip_cfws(str, &pos);
		if (str[pos] == ',')
			pos++;
		date_skip_cfws(str, &pos);
	}
	if (date_read_number(str, &pos, 2, &day) == 0 || is_digit(str[pos]))
		return -1;
	date_skip_cfws(str, &pos);
	if (str[pos] == '-')
		pos++;
	date_skip_cfws(str, &pos);
	n = pos;
	month = date_month_from_name(str + n, read_word(str, &pos));
	if (month == 0 || pos - n > 9)
		return -1;
	date_skip_cfws(str, &pos);
	if (str[pos] == '-')
		pos++;
	date_skip_cfws(str, &pos);
	n = date_read_number(str, &pos, 4, &year);
	if (n < 2 || is_digit(str[pos]))
		return -1;
	if (n == 2)
		year += year < 50 ? 2000 : 1900;   /* RFC 5322 4.3 */
	else if (n == 3)
		year += 1900;
	date_skip_cfws(str, &pos);
	if (date_read_number(str, &pos, 2, &hour) == 0)
		return -1;
	date_skip_cfws(str, &pos);
	if (str[pos++] != ':')
		return -1;
	date_skip_cfws(str, &pos);
	if (date_read_number(str, &pos, 2, &min) == 0)
		return -1;
	date_skip_cfws(str, &pos);
	if (str[pos] == ':') {
		pos++;
		date_skip_cfws(str, &pos);
		if (date_read_number(str, &pos, 2, &sec) == 0)
			return -1;
	}
	date_skip_cfws(str, &pos);
	if (str[pos] == '+' || str[pos] == '-') {
		unsigned zone;
		bool neg = str[pos] == '-';

		pos++;
		if (date_read_number(str, &pos, 4, &zone) != 4 || zone % 100 > 59)
			return -1;
		tz = (int32_t)(zone / 100 * 60 + zone % 100);
		if (neg)
			tz = -tz;
	} else if (is_alpha(str[pos])) {
		size_t start = pos;
		tz = zone_from_name(str + start, read_word(str, &pos));
	}
	/* Anything after the zone (a comment such as "(PST)") is ignored. */

	if (day < 1 || day > date_days_in_month(year, month) || hour > 23 || min > 59 || sec > 60)
		return -1;
	if (sec == 60)
		sec = 59;                           /* leap second */
	y = year;
	*time_r = date_days_from_civil(y, month, day) * 86400 + hour * 3600 + min * 60 + sec -
		  (int64_t)tz * 60;
	*tz_minutes_r = tz;
	return 0;
}

int
message_parse_imap_datetime(const char *str, int64_t *time_r, int32_t *tz_minutes_r)
{
	size_t pos = 0;
	int64_t days;
	unsigned hour, min, sec, zone;
	int32_t tz;
	bool neg;

	if (date_parse_imap_day(str, &pos, &days) < 0 || str[pos++] != ' ')
		return -1;
	if (date_read_number(str, &pos, 2, &hour) != 2 || str[pos++] != ':' ||
	    date_read_number(str, &pos, 2, &min) != 2 || str[pos++] != ':' ||
	    date_read_number(str, &pos, 2, &sec) != 2 || str[pos++] != ' ')
		return -1;
	if (str[pos] != '+' && str[pos] != '-')
		return -1;
	neg = str[pos++] == '-';
	if (date_read_number(str, &pos, 4, &zone) != 4 || str[pos] != '\0')
		return -1;
	if (hour > 23 || min > 59 || sec > 60 || zone / 100 > 23 || zone % 100 > 59)
		return -1;
	if (sec == 60)
		sec = 59;
	tz = (int32_t)(zone / 100 * 60 + zone % 100);
	if (neg)
		tz = -tz;
	*time_r = days * 86400 + hour * 3600 + min * 60 + sec - (int64_t)tz * 60;
	*tz_minutes_r = tz;
	return 0;
}

/* --- charsets, RFC 2047 ---------------------------------------------- */

/* RFC 2047 "Q": '_' is a space, "=XX" a byte. */
static void
q_decode(const char *s, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '_') {
			buf_append_c(out, ' ');
		} else if (s[i] == '=' && i + 2 < len && text_hex_value(s[i + 1]) >= 0 &&
			   text_hex_value(s[i + 2]) >= 0) {
			buf_append_c(out, (char)(text_hex_value(s[i + 1]) * 16 + text_hex_value(s[i + 2])));
			i += 2;
		} else {
			buf_append_c(out, s[i]);
		}
	}
}

/* Decodes the encoded word at s[pos] ("=?cs?X?text?=") into out. Returns
   the offset just past it, or 0 if there is no valid encoded word there
   (out unchanged). */
static size_t
decode_encoded_word(const char *s, size_t len, size_t pos, struct buf *out)
{
	size_t cs_start = pos + 2, i = cs_start, cs_len, text_start, text_end;
	struct buf raw = BUF_INIT;
	const char *star;
	char enc;
	bool ok;

	while (i < len && s[i] != '?' && !text_is_ws(s[i]))
		i++;
	if (i >= len || s[i] != '?' || i == cs_start || i + 3 >= len)
		return 0;
	cs_len = i - cs_start;
	star = memchr(s + cs_start, '*', cs_len);   /* RFC 2231 language */
	if (star != NULL)
		cs_len = (size_t)(star - (s + cs_start));
	enc = s[i + 1];
	if (s[i + 2] != '?' || (enc != 'B' && enc != 'b' && enc != 'Q' && enc != 'q'))
		return 0;
	text_start = i + 3;
	text_end = text_start;
	while (text_end < len && s[text_end] != '?' && !text_is_ws(s[text_end]))
		text_end++;
	if (text_end + 1 >= len || s[text_end] != '?' || s[text_end + 1] != '=')
		return 0;
	if (enc == 'B' || enc == 'b') {
		ok = base64_decode_word(s + text_start, text_end - text_start, &raw) == 0;
	} else {
		q_decode(s + text_start, text_end - text_start, &raw);
		ok = true;
	}
	if (ok)
		ok = charset_to_utf8(s + cs_start, cs_len, raw.len == 0 ? "" : raw.data, raw.len,
				     out) == 0;
	buf_free(&raw);
	return ok ? text_end + 2 : 0;
}

void
message_decode_header(const char *value, size_t len, struct buf *out)
{
	size_t pos = 0, out_mark = 0, last_end = 0;
	bool after_word = false;

	while (pos < len) {
		size_t end = 0;

		if (value[pos] == '=' && pos + 1 < len && value[pos + 1] == '?') {
			size_t before = out->len;

			end = decode_encoded_word(value, len, pos, out);
			if (end > 0 && after_word) {
				/* Only white space since the previous word: RFC 2047
				   section 6.2 drops it. */
				bool only_ws = true;

				for (size_t i = last_end; i < pos && only_ws; i++)
					only_ws = text_is_ws(value[i]);
				if (only_ws) {
					size_t decoded = out->len - before;
					memmove(out->data + out_mark, out->data + before, decoded);
					buf_truncate(out, out_mark + decoded);
				}
			}
		}
		if (end > 0) {
			after_word = true;
			out_mark = out->len;
			last_end = end;
			pos = end;
		} else {
			if (value[pos] != '\r' && value[pos] != '\n')
				buf_append_c(out, value[pos]);
			pos++;
		}
	}
}

/* --- searching ------------------------------------------------------- */

/* Folds s into dst (same length): ASCII letters to lower case, and the
   UTF-8 encoded upper-case letters of the Latin-1 supplement (U+00C0 to
   U+00DE except U+00D7, "C3 80".."C3 9E") to their lower-case forms
   (+0x20 on the second byte). Other bytes are kept. */
static void
fold_utf8(const char *s, size_t len, char *dst)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		dst[i] = ascii_lower((char)c);
		if (c == 0xc3 && i + 1 < len) {
			unsigned char c2 = (unsigned char)s[i + 1];
			if (c2 >= 0x80 && c2 <= 0x9e && c2 != 0x97)
				c2 += 0x20;
			dst[++i] = (char)c2;
		}
	}
}

bool
message_ascii_contains(const char *haystack, size_t hay_len, const char *needle)
{
	size_t n = strlen(needle);
	char first = needle[0], upper = (char)(first - 'a' + 'A');

	if (n == 0)
		return true;
	for (size_t i = 0; i + n <= hay_len; i++) {
		size_t k = 1;

		if (haystack[i] != first && haystack[i] != upper)
			continue;
		while (k < n && ascii_lower(haystack[i + k]) == needle[k])
			k++;
		if (k == n)
			return true;
	}
	return false;
}

bool
message_str_contains(const char *haystack, size_t hay_len, const char *needle,
		     size_t needle_len)
{
	char *h, *n;
	bool found;

	if (needle_len == 0)
		return true;
	if (needle_len > hay_len)
		return false;
	h = xmalloc(hay_len);
	n = xmalloc(needle_len);
	fold_utf8(haystack, hay_len, h);
	fold_utf8(needle, needle_len, n);
	found = memmem(h, hay_len, n, needle_len) != NULL;
	free(h);
	free(n);
	return found;
}
