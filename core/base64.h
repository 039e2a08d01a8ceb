/* base64.h: RFC 4648 base64, for SASL. */
#ifndef BASE64_H
#define BASE64_H

#include "buf.h"

/* Decodes src (padding required unless the length is a multiple of 4;
   whitespace is not allowed). Returns 0 or -1 for invalid input. */
int base64_decode(const char *src, size_t len, struct buf *out);
void base64_encode(const void *src, size_t len, struct buf *out);

#endif
