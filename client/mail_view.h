/* mail_view.h: shows one mail as a person reads it: the header fields
   From, To, Cc, Subject, Date and Received with RFC 2047 words decoded
   and times as the listing shows them (local zone), then the text of the body with its
   transfer encoding undone, then the attachments by name and size.

   The single place where mailclient turns raw RFC 5322 bytes into text
   for the terminal. */
#ifndef MAIL_VIEW_H
#define MAIL_VIEW_H

#include "lib.h"

#include <stdio.h>

/* msg: the whole message (BODY[]), len bytes. internal_date: the
   server's INTERNALDATE (seconds since the epoch, or -1), shown as the
   receiving time, as the listing shows it (the Received field is used
   only when it is -1). Every time is in the listing's format and the
   client's local zone. */
void mail_view_print(FILE *out, const char *msg, size_t len, int64_t internal_date);

#endif
