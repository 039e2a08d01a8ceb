/* imap_date.h: IMAP dates (RFC 3501 date-time and date). The date-time
   reader (APPEND, and the mail client's INTERNALDATE) is
   message_parse_imap_datetime() in core/mail's message.h. */
#ifndef IMAP_DATE_H
#define IMAP_DATE_H

#include "lib.h"
#include "buf.h"

/* Appends the IMAP date-time "dd-Mon-yyyy hh:mm:ss +zzzz" of t in zone
   tz_minutes (the day space-padded, RFC 3501 date-day-fixed). */
void imap_date_write(int64_t t, int32_t tz_minutes, struct buf *out);
/* Parses an IMAP date "d-Mon-yyyy" (SEARCH) to days since the epoch.
   Returns 0 or -1. */
int imap_date_parse(const char *str, int64_t *days_r);

#endif
