/* imap_envelope.h: the IMAP ENVELOPE structure of a message. */
#ifndef IMAP_ENVELOPE_H
#define IMAP_ENVELOPE_H

#include "lib.h"
#include "buf.h"

/* Appends the IMAP ENVELOPE of the message msg[0..len) (CRLF or LF line
   ends), the parenthesized list of RFC 3501 section 7.4.2 (date subject
   from sender reply-to to cc bcc in-reply-to message-id), with the NIL
   rules of RFC 3501: sender and reply-to default to from. */
void imap_envelope(const char *msg, size_t len, struct buf *out);

#endif
