/* base64.h: RFC 4648 base64, for SASL. */
#ifndef BASE64_H
#define BASE64_H

#include "buf.h"

/* Decodes src (padding required unless the length is a multiple of 4;
   whitespace is not allowed). Returns 0 or -1 for invalid input. */
int base64_decode(const char *src, size_t len, struct buf *out);
void base64_encode(const void *src, size_t len, struct buf *out);
/* For MIME bodies (RFC 2045 6.8): characters outside the alphabet (line
   ends, spaces, junk) are skipped, '=' ends a group (some encoders join
   padded chunks). Never fails. */
void base64_decode_lenient(const char *src, size_t len, struct buf *out);
/* For RFC 2047 "B" encoded words: the alphabet only, decoding stops at
   the first '='. Returns 0, or -1 at any other character. */
int base64_decode_word(const char *src, size_t len, struct buf *out);
/* The value of one base64 character, or -1. */
int base64_value(char c);

#endif
