/* mc_util.c: mailclient's pure helpers (see mc_util.h). */
#include "mc_util.h"
#include "base64.h"

#include <ctype.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MC_QP_LINE 76                       /* RFC 2045 6.7 (5) */

static bool
mc_is_atext(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != '\0';
}

static bool
mc_domain_valid(const char *d)
{
	size_t len = strlen(d);

	if (len == 0 || len > 255)
		return false;
	if (d[0] == '[')
		return len > 2 && d[len - 1] == ']' && strcspn(d + 1, "[]\\ ") == len - 2;
	size_t label = 0;
	for (size_t i = 0; i <= len; i++) {
		char c = d[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || (c == '-' && label > 0);
		if (!ok)
			return false;
		label++;
	}
	return true;
}

bool
mc_address_valid(const char *addr)
{
	const char *at = strrchr(addr, '@');

	if (at == NULL || at == addr || strlen(addr) > 320)
		return false;
	size_t local_len = (size_t)(at - addr);
	if (local_len > 64 || addr[0] == '.' || addr[local_len - 1] == '.')
		return false;
	for (size_t i = 0; i < local_len; i++) {
		if (addr[i] == '.') {
			if (addr[i + 1] == '.')
				return false;
		} else if (!mc_is_atext(addr[i])) {
			return false;
		}
	}
	return mc_domain_valid(at + 1);
}

bool
mc_address_is_users(const char *addr, const char *user)
{
	if (strchr(user, '@') != NULL)
		return ascii_strcasecmp(addr, user) == 0;
	const char *at = strrchr(addr, '@');
	size_t ulen = strlen(user);
	return at != NULL && (size_t)(at - addr) == ulen && ascii_strncasecmp(addr, user, ulen) == 0;
}

bool
mc_address_equal(const char *a, const char *b)
{
	return ascii_strcasecmp(a, b) == 0;
}

char *
mc_trim(char *s)
{
	size_t len = strlen(s);
	size_t start = 0;

	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	while (start < len && isspace((unsigned char)s[start]))
		start++;
	memmove(s, s + start, len - start);
	s[len - start] = '\0';
	return s;
}

int
mc_header_line(const char *line, const char *name, char **value_r)
{
	size_t nlen = strlen(name);
	const char *p = line;

	while (*p == ' ' || *p == '\t')
		p++;
	if (ascii_strncasecmp(p, name, nlen) != 0)
		return 0;
	p += nlen;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != ':')
		return 0;
	*value_r = mc_trim(xstrdup(p + 1));
	return 1;
}

int
mc_split_addresses(const char *value, struct strlist *out, char **bad_r)
{
	char *copy = xstrdup(value);
	char *save = NULL;
	size_t n = 0;

	for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		mc_trim(tok);
		size_t len = strlen(tok);
		if (len >= 2 && tok[0] == '<' && tok[len - 1] == '>') {
			tok[len - 1] = '\0';
			tok++;
			mc_trim(tok);
		}
		if (!mc_address_valid(tok)) {
			*bad_r = xstrdup(tok);
			free(copy);
			return -1;
		}
		strlist_add(out, tok);
		n++;
	}
	free(copy);
	if (n == 0) {
		*bad_r = xstrdup("");
		return -1;
	}
	return 0;
}

static bool
mc_is_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}

/* Appends s as RFC 2047 "B" encoded words of UTF-8, each at most 75
   characters and 73 with "Subject: " in front, without splitting a
   UTF-8 sequence. */
static void
mc_append_encoded_words(struct buf *out, const char *s)
{
	size_t len = strlen(s), pos = 0;
	bool first = true;

	while (pos < len) {
		/* 39 input bytes make 52 base64 characters; with the
		   "=?UTF-8?B?" "?=" wrapping, 64. */
		size_t take = len - pos > 39 ? 39 : len - pos;
		while (take > 0 && pos + take < len &&
		       ((unsigned char)s[pos + take] & 0xc0) == 0x80)
			take--;
		if (take == 0)
			take = len - pos > 39 ? 39 : len - pos;
		if (!first)
			buf_append_str(out, "\n ");
		buf_append_str(out, "=?UTF-8?B?");
		base64_encode(s + pos, take, out);
		buf_append_str(out, "?=");
		pos += take;
		first = false;
	}
}

bool
mc_body_needs_encoding(const char *body)
{
	size_t line = 0;

	for (const char *p = body; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '\n') {
			line = 0;
			continue;
		}
		if (c >= 0x80 || c == '\r' || ++line > MC_MAX_LINE)
			return true;
	}
	return false;
}

/* Appends one quoted-printable output character (escaped or not) of
   len octets, breaking the line softly first if it would pass 76. */
static void
mc_qp_put(struct buf *out, size_t *col, const char *s, size_t len)
{
	if (*col + len > MC_QP_LINE - 1) {
		buf_append_str(out, "=\n");
		*col = 0;
	}
	buf_append(out, s, len);
	*col += len;
}

void
mc_qp_encode(const char *s, size_t len, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	buf_append(out, "", 0);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool line_end = i + 1 == len || s[i + 1] == '\n';
		if (c == '\n') {
			buf_append_c(out, '\n');
			col = 0;
			continue;
		}
		/* Literal: printable ASCII but '=', and space or tab not
		   at the end of a line; a '.' that would start a line is
		   escaped too, so no line of the result is a lone "." */
		bool literal = (c >= 33 && c <= 126 && c != '=') ||
			       ((c == ' ' || c == '\t') && !line_end);
		if (c == '.' && (col == 0 || col + 1 > MC_QP_LINE - 1))
			literal = false;
		if (literal) {
			char ch = (char)c;
			/* The last character of a line may use the 76th
			   column: no soft break needed after it. */
			if (line_end && col + 1 == MC_QP_LINE) {
				buf_append_c(out, ch);
				col++;
			} else {
				mc_qp_put(out, &col, &ch, 1);
			}
		} else {
			char esc[3] = { '=', hex[c >> 4], hex[c & 15] };
			mc_qp_put(out, &col, esc, sizeof(esc));
		}
	}
}

/* Appends "To: " and the addresses, one ", " between them, folded
   before an address that would take the line past 78 characters. */
static void
mc_append_to(struct buf *out, const char *to)
{
	struct strlist list;
	char *bad = NULL;
	size_t col = 4;

	i_zero(&list);
	buf_append_str(out, "To: ");
	if (mc_split_addresses(to, &list, &bad) < 0) {
		free(bad);
		buf_append_str(out, to);        /* not checked by the caller: as it is */
	}
	for (size_t i = 0; i < list.count; i++) {
		size_t len = strlen(list.items[i]);
		if (i > 0) {
			buf_append_c(out, ',');
			if (col + 2 + len > 78) {
				buf_append_str(out, "\n");
				col = 0;
			}
			buf_append_c(out, ' ');
			col += 2;
		}
		buf_append_str(out, list.items[i]);
		col += len;
	}
	buf_append_c(out, '\n');
	strlist_clear(&list);
}

void
mc_build_message(const char *from, const char *to, const char *subject, const char *body,
		 const char *hostname, int64_t now, struct buf *out)
{
	char date[64];
	time_t t = (time_t)now;
	struct tm tm;
	bool encode = mc_body_needs_encoding(body);

	localtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	buf_printf(out, "From: %s\n", from);
	mc_append_to(out, to);
	buf_append_str(out, "Subject: ");
	/* Encoded words also fold a subject too long for one line. */
	if (mc_is_ascii(subject) && strlen("Subject: ") + strlen(subject) <= MC_MAX_LINE)
		buf_append_str(out, subject);
	else
		mc_append_encoded_words(out, subject);
	buf_append_c(out, '\n');
	buf_printf(out, "Date: %s\n", date);
	buf_printf(out, "Message-ID: <%lld.%ld.%08lx@%s>\n", (long long)now, (long)getpid(),
		   (unsigned long)random() & 0xffffffffUL, hostname);
	buf_append_str(out, "MIME-Version: 1.0\n");
	buf_append_str(out, "Content-Type: text/plain; charset=UTF-8\n");
	buf_printf(out, "Content-Transfer-Encoding: %s\n", encode ? "quoted-printable" : "7bit");
	buf_append_c(out, '\n');
	if (encode)
		mc_qp_encode(body, strlen(body), out);
	else
		buf_append_str(out, body);
}

void
mc_format_time(int64_t t, enum mc_time_style style, char *out, size_t out_size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	size_t n;

	if (out_size == 0)
		return;
	out[0] = '\0';
	if (localtime_r(&tt, &tm) == NULL) {
		snprintf(out, out_size, "?");
		return;
	}
	if (style == MC_TIME_LIST)
		n = strftime(out, out_size, "%Y-%m-%d : %H : %M", &tm);
	else
		n = strftime(out, out_size, "%a, %d %b %Y %H:%M %Z", &tm);
	if (n == 0)
		snprintf(out, out_size, "?");
}

/* Code points a terminal shows in two columns: the East Asian Wide and
   Fullwidth blocks of Unicode's EastAsianWidth.txt (Hangul Jamo, CJK,
   Hiragana and Katakana, Hangul syllables, compatibility ideographs,
   fullwidth forms, the emoji blocks, planes 2 and 3), as wcwidth() of a
   UTF-8 locale counts them, without depending on the user's locale. */
static const struct { uint32_t lo, hi; } wide_ranges[] = {
	{ 0x1100, 0x115f }, { 0x231a, 0x231b }, { 0x2329, 0x232a }, { 0x2e80, 0x303e },
	{ 0x3041, 0x33ff }, { 0x3400, 0x4dbf }, { 0x4e00, 0x9fff }, { 0xa000, 0xa4cf },
	{ 0xa960, 0xa97f }, { 0xac00, 0xd7a3 }, { 0xf900, 0xfaff }, { 0xfe10, 0xfe19 },
	{ 0xfe30, 0xfe6f }, { 0xff00, 0xff60 }, { 0xffe0, 0xffe6 }, { 0x1f300, 0x1f64f },
	{ 0x1f900, 0x1f9ff }, { 0x20000, 0x2fffd }, { 0x30000, 0x3fffd },
};

/* Combining marks (no column of their own): the combining diacritics
   blocks and the zero-width joiners and variation selectors. */
static const struct { uint32_t lo, hi; } zero_ranges[] = {
	{ 0x0300, 0x036f }, { 0x1ab0, 0x1aff }, { 0x1dc0, 0x1dff }, { 0x200b, 0x200f },
	{ 0x20d0, 0x20ff }, { 0xfe00, 0xfe0f }, { 0xfe20, 0xfe2f },
};

static unsigned
mc_char_width(uint32_t cp)
{
	for (size_t i = 0; i < sizeof(zero_ranges) / sizeof(zero_ranges[0]); i++) {
		if (cp >= zero_ranges[i].lo && cp <= zero_ranges[i].hi)
			return 0;
	}
	for (size_t i = 0; i < sizeof(wide_ranges) / sizeof(wide_ranges[0]); i++) {
		if (cp >= wide_ranges[i].lo && cp <= wide_ranges[i].hi)
			return 2;
	}
	return 1;
}

size_t
mc_display_width(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	while (*p != '\0') {
		uint32_t cp = *p;
		size_t len = 1;

		if (*p >= 0xc0) {
			len = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
			cp = *p & (0x3f >> (len - 1));
			for (size_t k = 1; k < len; k++) {
				if ((p[k] & 0xc0) != 0x80) {
					/* Broken UTF-8: one column per octet. */
					len = 1;
					cp = '?';
					break;
				}
				cp = (cp << 6) | (p[k] & 0x3f);
			}
		} else if (*p >= 0x80) {
			cp = '?';       /* a stray continuation octet */
		}
		n += mc_char_width(cp);
		p += len;
	}
	return n;
}

void
mc_write_safe(FILE *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' && i + 1 < len && s[i + 1] == '\n')
			continue;
		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			c = '?';
		putc(c, out);
	}
}
