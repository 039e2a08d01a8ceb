/* charset.c: conversion of text in a MIME charset to UTF-8 (see
   charset.h). UTF-8, US-ASCII and ISO-8859-1 are done here; any other
   charset goes through iconv(3), with only plain charset names passed to
   iconv_open(). */
#include "charset.h"
#include "text.h"

#include <errno.h>
#include <iconv.h>

static bool
charset_is_utf8(const char *cs, size_t len)
{
	return len == 0 || text_mem_equals_ci(cs, len, "utf-8") || text_mem_equals_ci(cs, len, "utf8") ||
	       text_mem_equals_ci(cs, len, "us-ascii") || text_mem_equals_ci(cs, len, "ascii");
}

static bool
charset_is_latin1(const char *cs, size_t len)
{
	return text_mem_equals_ci(cs, len, "iso-8859-1") || text_mem_equals_ci(cs, len, "iso8859-1") ||
	       text_mem_equals_ci(cs, len, "latin1");
}

int
charset_to_utf8(const char *cs, size_t cs_len, const char *data, size_t len, struct buf *out)
{
	char name[41];
	iconv_t cd;
	size_t start = out->len;

	if (charset_is_utf8(cs, cs_len)) {
		buf_append(out, data, len);
		return 0;
	}
	if (charset_is_latin1(cs, cs_len)) {
		buf_append(out, "", 0);
		buf_reserve(out, len * 2);
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)data[i];
			if (c < 0x80) {
				buf_append_c(out, (char)c);
			} else {
				buf_append_c(out, (char)(0xc0 | (c >> 6)));
				buf_append_c(out, (char)(0x80 | (c & 0x3f)));
			}
		}
		return 0;
	}
	/* Only plain charset names reach iconv_open(). */
	if (cs_len >= sizeof(name))
		return -1;
	for (size_t i = 0; i < cs_len; i++) {
		char c = cs[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == ':';
		if (!ok)
			return -1;
		name[i] = c;
	}
	name[cs_len] = '\0';
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return -1;
	char *in = (char *)data;
	size_t in_left = len;
	/* Each round converts a chunk; a round either consumes input or
	   fails, so the loop ends. */
	while (in_left > 0) {
		char chunk[1024], *o = chunk;
		size_t o_left = sizeof(chunk);
		size_t ret = iconv(cd, &in, &in_left, &o, &o_left);

		buf_append(out, chunk, sizeof(chunk) - o_left);
		if (ret == (size_t)-1 && errno != E2BIG) {
			buf_truncate(out, start);
			iconv_close(cd);
			return -1;
		}
	}
	iconv_close(cd);
	return 0;
}
