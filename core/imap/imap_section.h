/* imap_section.h: IMAP sections (RFC 3501 section 6.4.5) of a parsed
   message (core/mail's mime.h). */
#ifndef IMAP_SECTION_H
#define IMAP_SECTION_H

#include "lib.h"
#include "mime.h"

enum imap_section_kind {
	IMAP_SECTION_ALL,          /* "" (the whole message) or "1.2" (the part's body) */
	IMAP_SECTION_HEADER,       /* "HEADER", "1.2.HEADER" (also for HEADER.FIELDS) */
	IMAP_SECTION_TEXT,         /* "TEXT", "1.2.TEXT" */
	IMAP_SECTION_MIME,         /* "1.2.MIME" */
};

/* The part a section path (numbers >= 1) names, as RFC 3501 and Dovecot
   read it: in a non-multipart message part 1 is the message body; in a
   message/rfc822 part the next number indexes its enclosed message's
   parts. count == 0 gives the root. Returns NULL if there is none. */
const struct mime_part *imap_section_find_part(const struct mime_message *msg,
					       const uint32_t *path, size_t count);

/* The byte range of a section. HEADER and TEXT with a path need a
   message/rfc822 part (they name its enclosed message's header and
   text); MIME needs a path. Returns 1 and the range, or 0 if the section
   does not exist (IMAP answers an empty string then, as Dovecot does). */
int imap_section_range(const struct mime_message *msg, const uint32_t *path, size_t count,
		       enum imap_section_kind kind, size_t *off_r, size_t *len_r);

/* Same, for a section written as text: "", "1", "1.2.MIME", "2.HEADER",
   "2.TEXT", "TEXT" (case-insensitive; HEADER.FIELDS is not accepted
   here). Returns 1 found, 0 not found, -1 invalid syntax. */
int imap_section_lookup(const struct mime_message *msg, const char *section, size_t *off_r,
			size_t *len_r);

#endif
