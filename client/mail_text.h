/* mail_text.h: the text and the attachments of a parsed message, as the
   mail client shows them (core/mail's mime.h parses it). */
#ifndef MAIL_TEXT_H
#define MAIL_TEXT_H

#include "lib.h"
#include "buf.h"
#include "mime.h"

/* Appends the section number of part ("1", "2.1.3"; the root of a
   non-multipart message is "1", the root of a multipart one ""). */
void mail_text_part_section(const struct mime_part *part, struct buf *out);

/* Appends the readable text of the message in UTF-8, for the client:
   the first text/plain part that is not an attachment, else the first
   text/html one with the tags stripped. Returns false (nothing
   appended) if there is neither. */
bool mail_text_readable(const struct mime_message *m, const char *msg, size_t len,
			struct buf *out);

/* Minimal HTML to text: tags dropped, script/style skipped, <br>, <p>,
   <div>, <li>, <tr> give line ends, the common entities decoded. */
void mail_text_from_html(const char *html, size_t len, struct buf *out);

/* --- attachments ----------------------------------------------------- */

struct mail_text_attachment {
	const struct mime_part *part;
	char *name;                /* UTF-8: disposition filename, else Content-Type
				      name, else "part-<section>" */
	char *content_type;        /* "type/subtype" in lower case */
	char *section;             /* for BODY[<section>] */
	size_t size;               /* decoded size (an estimate for base64/qp) */
};

/* Lists the leaf parts that are attachments: a disposition of
   "attachment", or a file name, or a non-text part (multiparts and the
   message's text part are not listed; a message/rfc822 part is one
   attachment). msg is the message m was parsed from (for the decoded
   sizes). Returns how many; *list_r is NULL when 0. */
size_t mail_text_attachments(const struct mime_message *m, const char *msg, size_t len,
			     struct mail_text_attachment **list_r);
void mail_text_attachments_free(struct mail_text_attachment **list, size_t count);

#endif
