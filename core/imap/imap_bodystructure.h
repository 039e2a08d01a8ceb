/* imap_bodystructure.h: the BODY and BODYSTRUCTURE fetch data of a
   message parsed into MIME parts (RFC 3501 sections 7.4.2 and 9). */
#ifndef IMAP_BODYSTRUCTURE_H
#define IMAP_BODYSTRUCTURE_H

#include "lib.h"
#include "buf.h"
#include "mime.h"

/* Appends the BODY (extended false) or BODYSTRUCTURE (true) of part of
   the message data (len octets). */
void imap_write_body_structure(struct buf *out, const struct mime_part *part, const char *data,
			       size_t len, bool extended);

#endif
