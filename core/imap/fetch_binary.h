/* fetch_binary.h: the data of FETCH BINARY[section] and BINARY.SIZE
   (RFC 3516, RFC 9051 6.4.5): a part's content decoded from its
   Content-Transfer-Encoding, sent as a literal8 when it holds NUL. */
#ifndef FETCH_BINARY_H
#define FETCH_BINARY_H

#include "lib.h"
#include "buf.h"
#include "mime.h"

/* The decoded content of the section named by part[0 .. count - 1] of
   the message msg (len octets, parsed as tree): count 0 is the whole
   message as it is; a multipart or message/rfc822 part its body as it
   is (only leaf parts are decoded, RFC 9051 6.4.5); a leaf part's body
   decoded from base64 or quoted-printable (7bit, 8bit and binary as
   they are; the stored text has CRLF line ends already). Sets
   data_r and len_r into msg or into tmp. A section that does not exist is
   empty. Returns 0, or -1 if the part's transfer encoding is not one we
   know (the caller answers NO [UNKNOWN-CTE]). */
int fetch_binary_data(const struct mime_message *tree, const char *msg, size_t len,
		      const uint32_t *part, size_t count, struct buf *tmp, const char **data_r,
		      size_t *len_r);

/* Appends data as a literal8 ("~{n}") when it holds a NUL octet, else
   as a literal. */
void fetch_binary_write_literal(struct buf *out, const char *data, size_t len);

#endif
