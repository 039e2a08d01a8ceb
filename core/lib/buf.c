/* buf.c: growable byte buffer. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>

void
buf_reserve(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	xgrow(&b->data, &b->cap, need, 1);
	b->data[b->len] = '\0';
}

void
buf_append(struct buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void
buf_append_str(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_append_c(struct buf *b, char c)
{
	buf_reserve(b, 1);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}

void
buf_vprintf(struct buf *b, const char *fmt, va_list args)
{
	va_list copy;
	int n;

	buf_reserve(b, 64);
	va_copy(copy, args);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, copy);
	va_end(copy);
	if (n < 0)
		return;
	if ((size_t)n >= b->cap - b->len) {
		buf_reserve(b, (size_t)n);
		n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, args);
		if (n < 0)
			return;
	}
	b->len += (size_t)n;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	buf_vprintf(b, fmt, args);
	va_end(args);
}

void
buf_append_u64(struct buf *b, uint64_t n)
{
	char tmp[21];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	buf_append(b, tmp + i, sizeof(tmp) - i);
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void
buf_truncate(struct buf *b, size_t len)
{
	if (len < b->len) {
		b->len = len;
		b->data[len] = '\0';
	}
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *
buf_steal(struct buf *b)
{
	char *p;

	if (b->data == NULL)
		return xstrdup("");
	p = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

static void
imap_string(struct buf *b, const char *s, size_t len, bool utf8)
{
	bool quotable = len <= 1024;

	if (s == NULL) {
		buf_append_str(b, "NIL");
		return;
	}
	for (size_t i = 0; i < len && quotable; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0' || c == '\r' || c == '\n' || (c >= 0x80 && !utf8))
			quotable = false;
	}
	if (!quotable) {
		buf_printf(b, "{%zu}\r\n", len);
		buf_append(b, s, len);
		return;
	}
	buf_reserve(b, len + 2);
	buf_append_c(b, '"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_append_c(b, '\\');
		buf_append_c(b, s[i]);
	}
	buf_append_c(b, '"');
}

void
buf_append_imap_string(struct buf *b, const char *s, size_t len)
{
	imap_string(b, s, len, false);
}

void
buf_append_imap_utf8_string(struct buf *b, const char *s)
{
	imap_string(b, s, s == NULL ? 0 : strlen(s), true);
}

void
buf_append_imap_nstring(struct buf *b, const char *s)
{
	buf_append_imap_string(b, s, s == NULL ? 0 : strlen(s));
}
