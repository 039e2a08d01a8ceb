/* message.h: reading RFC 5322 messages (CRLF or LF line ends): header
   fields, dates, RFC 2047 encoded words.

   Everything here is best effort on malformed input and never reads past
   the given length. */
#ifndef MESSAGE_H
#define MESSAGE_H

#include "lib.h"
#include "buf.h"

struct message_field {
	const char *name;          /* not NUL-terminated */
	size_t name_len;
	const char *value;         /* after the colon, with folding, without the final line end */
	size_t value_len;
	const char *raw;           /* the whole field with its final line end, if any */
	size_t raw_len;
};

/* Returns the next well-formed field of the header block hdr[0..len)
   from *pos on, skipping junk lines (no colon, a name with spaces or
   control characters, continuation lines without a field). Returns false
   at the blank line that ends the header or at len. */
bool message_header_next(const char *hdr, size_t len, size_t *pos,
			 struct message_field *f);

/* Length of the header block including the blank line that ends it (or
   the whole message if there is no blank line). *body_off_r = the same. */
size_t message_header_size(const char *msg, size_t len);

/* Appends the unfolded value of the first field named name (case-
   insensitive), without leading/trailing whitespace, to out.
   Returns 1 if found, 0 if not. */
int message_header_get(const char *hdr, size_t hdr_len, const char *name, struct buf *out);
/* Same, for every field of that name, values joined by ", " (for SEARCH
   on To/Cc where several fields may exist). */
int message_header_get_all(const char *hdr, size_t hdr_len, const char *name, struct buf *out);

/* BODY[HEADER.FIELDS (names)] and HEADER.FIELDS.NOT: appends the raw
   matching (or, with negate, non-matching) fields, with their folding,
   then the terminating blank line "\r\n". Output uses CRLF. */
void message_header_fields(const char *hdr, size_t hdr_len, const char *const *names,
			   size_t name_count, bool negate, struct buf *out);

/* Parses an RFC 5322 date-time (lenient: day name optional, 2-digit
   years, obsolete zones such as "GMT", "EST"). Returns 0 with seconds
   since the epoch and the zone in minutes east of UTC, or -1. */
int message_parse_date(const char *str, int64_t *time_r, int32_t *tz_minutes_r);

/* Decodes RFC 2047 encoded words in a header value to UTF-8 (UTF-8,
   US-ASCII and ISO-8859-1 decoded; others copied as they are). */
void message_decode_header(const char *value, size_t len, struct buf *out);

/* Case-insensitive search of needle (lower-case ASCII letters, at least
   one, then any lower-case ASCII) in haystack, ASCII letters folded, with
   no copy of haystack: for a big message's quick checks. */
bool message_ascii_contains(const char *haystack, size_t hay_len, const char *needle);
/* Case-insensitive substring search of UTF-8 needle in haystack (ASCII
   letters folded; other bytes compared exactly). */
bool message_str_contains(const char *haystack, size_t hay_len, const char *needle,
			  size_t needle_len);

/* Parses an IMAP date-time "dd-Mon-yyyy hh:mm:ss +zzzz" (the APPEND
   argument, and INTERNALDATE in the mail client: the one IMAP syntax both
   sides read, so it lives here). Returns 0 or -1. */
int message_parse_imap_datetime(const char *str, int64_t *time_r, int32_t *tz_minutes_r);

#endif
