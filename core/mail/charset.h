/* charset.h: text in a MIME charset to UTF-8, for MIME parameters,
   RFC 2047 encoded words and text bodies. */
#ifndef CHARSET_H
#define CHARSET_H

#include "lib.h"
#include "buf.h"

/* Appends data converted from the charset cs[0..cs_len) to UTF-8
   (UTF-8, US-ASCII and ISO-8859-1 here, others through iconv(3); an
   empty name is US-ASCII). Returns 0, or -1 with out unchanged when the
   charset is unknown or the data is invalid in it. */
int charset_to_utf8(const char *cs, size_t cs_len, const char *data, size_t len,
		    struct buf *out);

#endif
