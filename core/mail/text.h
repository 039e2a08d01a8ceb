/* text.h: the small lexical helpers that reading RFC 5322 headers and
   MIME bodies share (message.c, mime.c). Bounded by the given lengths;
   never read past them. */
#ifndef TEXT_H
#define TEXT_H

#include "lib.h"

/* Space, tab, CR or LF. */
bool text_is_ws(char c);
/* The value of a hex digit, or -1. */
int text_hex_value(char c);
/* True if s[0..len) equals word, ASCII case-insensitively. */
bool text_mem_equals_ci(const char *s, size_t len, const char *word);
/* The line at pos: *content_end_r is its end without CR LF (or LF); the
   return value is just past the LF (or len). */
size_t text_line_next(const char *p, size_t len, size_t pos, size_t *content_end_r);
/* Skips white space, line ends and (nested) comments at s[*pos],
   iteratively (no recursion however deep the nesting). */
void text_skip_cfws(const char *s, size_t len, size_t *pos);

#endif
