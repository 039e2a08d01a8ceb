/* buf.h: a growable byte buffer. Always NUL-terminated after its data
   (data[len] == '\0'), so it can be used as a C string when the content
   holds no NUL. */
#ifndef BUF_H
#define BUF_H

#include "lib.h"
#include <stdarg.h>

struct buf {
	char *data;
	size_t len, cap;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);
void buf_append_c(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) ATTR_FORMAT(2, 3);
void buf_vprintf(struct buf *b, const char *fmt, va_list args) ATTR_FORMAT(2, 0);
void buf_append_u64(struct buf *b, uint64_t n);
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
void buf_truncate(struct buf *b, size_t len);
void buf_reset(struct buf *b);
/* Frees the memory; the buf is empty and reusable afterwards. */
void buf_free(struct buf *b);
/* Hands the data to the caller (who frees it) and empties b. */
char *buf_steal(struct buf *b);

/* Appends s as an IMAP string: an atom-safe quoted string when it can be,
   else a literal {n}\r\n... ; NULL becomes NIL. */
void buf_append_imap_string(struct buf *b, const char *s, size_t len);
void buf_append_imap_nstring(struct buf *b, const char *s);
/* The same for a string known to be valid UTF-8, to a client that reads
   UTF-8 in quoted strings (IMAP4rev2, RFC 9051 4.3): 8-bit octets
   stay quoted. */
void buf_append_imap_utf8_string(struct buf *b, const char *s);

#endif
