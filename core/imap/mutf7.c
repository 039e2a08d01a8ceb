/* mutf7.c: modified UTF-7 mailbox names (see mutf7.h). */
#include "mutf7.h"
#include "buf.h"

#include <uninorm.h>
#include <stdlib.h>

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static void
utf8_put(struct buf *out, uint32_t cp)
{
	char s[4];

	if (cp < 0x80) {
		buf_append_c(out, (char)cp);
	} else if (cp < 0x800) {
		s[0] = (char)(0xc0 | (cp >> 6));
		s[1] = (char)(0x80 | (cp & 0x3f));
		buf_append(out, s, 2);
	} else if (cp < 0x10000) {
		s[0] = (char)(0xe0 | (cp >> 12));
		s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		s[2] = (char)(0x80 | (cp & 0x3f));
		buf_append(out, s, 3);
	} else {
		s[0] = (char)(0xf0 | (cp >> 18));
		s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		s[3] = (char)(0x80 | (cp & 0x3f));
		buf_append(out, s, 4);
	}
}

/* Decodes the base64 run p[0..len) (between "&" and "-") as UTF-16BE. */
static int
decode_run(const char *p, size_t len, struct buf *out)
{
	uint32_t bits = 0, high = 0;
	unsigned nbits = 0;
	size_t units = 0;

	for (size_t i = 0; i < len; i++) {
		int v = b64_value(p[i]);

		if (v < 0)
			return -1;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t unit = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		units++;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return -1;
			utf8_put(out, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			return -1;
		} else if (unit >= 0x20 && unit <= 0x7e) {
			/* printable ASCII must stand for itself */
			return -1;
		} else {
			utf8_put(out, unit);
		}
	}
	/* Leftover bits are padding: fewer than 6 of them, all zero. */
	if (high != 0 || units == 0 || nbits >= 6 || bits != 0)
		return -1;
	return 0;
}

/* mutf7_to_utf8(), and with pattern an "&" that cannot begin a shift
   stands for itself (mutf7_pattern_to_utf8()). */
static int
mutf7_decode(const char *name, bool pattern, char **utf8_r)
{
	struct buf out = BUF_INIT;
	const char *p = name;

	*utf8_r = NULL;
	while (*p != '\0') {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c > 0x7e)
			goto fail;
		if (c != '&' || (pattern && p[1] != '-' && b64_value(p[1]) < 0)) {
			buf_append_c(&out, (char)c);
			p++;
			continue;
		}
		const char *end = strchr(p + 1, '-');
		if (end == NULL)
			goto fail;
		if (end == p + 1)
			buf_append_c(&out, '&');
		else if (decode_run(p + 1, (size_t)(end - p - 1), &out) < 0)
			goto fail;
		p = end + 1;
	}
	*utf8_r = buf_steal(&out);
	return 0;
fail:
	buf_free(&out);
	return -1;
}

int
mutf7_to_utf8(const char *name, char **utf8_r)
{
	return mutf7_decode(name, false, utf8_r);
}

int
mutf7_pattern_to_utf8(const char *pattern, char **utf8_r)
{
	return mutf7_decode(pattern, true, utf8_r);
}

/* Reads one character of UTF-8 at s (at most len octets); returns its
   length, taking an invalid octet as Latin-1. */
static size_t
utf8_get(const unsigned char *s, size_t len, uint32_t *cp_r)
{
	size_t n;
	uint32_t cp, min;

	if (s[0] < 0x80) {
		*cp_r = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else {
		goto latin1;
	}
	if (n > len)
		goto latin1;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			goto latin1;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		goto latin1;
	*cp_r = cp;
	return n;
latin1:
	*cp_r = s[0];
	return 1;
}

static void
b64_put_unit(struct buf *out, uint32_t unit, uint32_t *bits, unsigned *nbits)
{
	*bits = (*bits << 16) | unit;
	*nbits += 16;
	while (*nbits >= 6) {
		*nbits -= 6;
		buf_append_c(out, b64chars[(*bits >> *nbits) & 0x3f]);
	}
	*bits &= (1u << *nbits) - 1;
}

char *
mutf7_from_utf8(const char *utf8)
{
	const unsigned char *s = (const unsigned char *)utf8;
	size_t len = strlen(utf8), i = 0;
	struct buf out = BUF_INIT;

	while (i < len) {
		if (s[i] >= 0x20 && s[i] <= 0x7e) {
			if (s[i] == '&')
				buf_append_str(&out, "&-");
			else
				buf_append_c(&out, (char)s[i]);
			i++;
			continue;
		}
		/* A run of characters outside printable ASCII. */
		uint32_t bits = 0;
		unsigned nbits = 0;

		buf_append_c(&out, '&');
		while (i < len && (s[i] < 0x20 || s[i] > 0x7e)) {
			uint32_t cp;

			i += utf8_get(s + i, len - i, &cp);
			if (cp >= 0x10000) {
				cp -= 0x10000;
				b64_put_unit(&out, 0xd800 + (cp >> 10), &bits, &nbits);
				b64_put_unit(&out, 0xdc00 + (cp & 0x3ff), &bits, &nbits);
			} else {
				b64_put_unit(&out, cp, &bits, &nbits);
			}
		}
		if (nbits > 0)
			buf_append_c(&out, b64chars[(bits << (6 - nbits)) & 0x3f]);
		buf_append_c(&out, '-');
	}
	return buf_steal(&out);
}

int
mailbox_name_utf8_check(const char *name, char **utf8_r)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t len = strlen(name), i = 0;

	*utf8_r = NULL;
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_get(s + i, len - i, &cp);

		/* utf8_get() takes an invalid octet as Latin-1: an octet
		   of 0x80 or more read alone is invalid here. */
		if ((n == 1 && s[i] >= 0x80) || cp < 0x20 || cp == 0x7f ||
		    (cp >= 0x80 && cp < 0xa0))
			return -1;
		i += n;
	}
	*utf8_r = xstrdup(name);
	return 0;
}

int
imap_name_decode(const char *name, bool utf8, bool pattern, char **utf8_r)
{
	if (utf8)
		return mailbox_name_utf8_check(name, utf8_r);
	return mutf7_decode(name, pattern, utf8_r);
}

char *
imap_name_encode(const char *name, bool utf8)
{
	char *enc, *out;

	if (!utf8)
		return mutf7_from_utf8(name);
	if (mailbox_name_utf8_check(name, &out) == 0)
		return out;
	/* A name on disk that is not valid UTF-8 (made by hand): the same
	   characters modified UTF-7 would show, Latin-1 for a stray
	   octet, so that both kinds of session see one name. */
	enc = mutf7_from_utf8(name);
	if (mutf7_to_utf8(enc, &out) < 0)
		out = xstrdup(enc);
	free(enc);
	return out;
}

bool
mailbox_name_is_nfc(const char *name)
{
	size_t len = strlen(name), nlen = 0;
	uint8_t *norm;
	bool same;

	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)name[i] >= 0x80)
			goto check;
	}
	return true;
check:
	norm = u8_normalize(UNINORM_NFC, (const uint8_t *)name, len, NULL, &nlen);
	if (norm == NULL)
		return false;
	same = nlen == len && memcmp(norm, name, len) == 0;
	free(norm);
	return same;
}
