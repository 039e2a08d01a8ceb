/* imap_section.c: IMAP section numbers (RFC 3501 section 6.4.5) on the
   MIME part tree of core/mail's mime.h: which part "2.1" names, and the
   byte range of "2.1.MIME", "2.HEADER", "TEXT" and the like. */
#include "imap_section.h"

const struct mime_part *
imap_section_find_part(const struct mime_message *msg, const uint32_t *path, size_t count)
{
	const struct mime_part *part = msg->root;

	for (size_t i = 0; i < count && part != NULL; i++) {
		bool more = i + 1 < count;
		uint32_t n = path[i];

		if (part->multipart) {
			part = part->children;
			for (; n > 1 && part != NULL; n--)
				part = part->next;
			if (n == 0)
				part = NULL;
		} else if (n != 1 || (more && !part->message)) {
			/* Only 1 in a non-multipart part, and only a
			   message/rfc822 part has parts below it. */
			part = NULL;
		}
		if (part != NULL && part->message && more)
			part = part->children;  /* continue inside the enclosed message */
	}
	return part;
}

int
imap_section_range(const struct mime_message *msg, const uint32_t *path, size_t count,
		   enum imap_section_kind kind, size_t *off_r, size_t *len_r)
{
	const struct mime_part *part = imap_section_find_part(msg, path, count);

	*off_r = *len_r = 0;
	if (part == NULL)
		return 0;
	if (count == 0) {
		switch (kind) {
		case IMAP_SECTION_ALL:
			*len_r = msg->len;
			return 1;
		case IMAP_SECTION_HEADER:
			*len_r = part->hdr_len;
			return 1;
		case IMAP_SECTION_TEXT:
			*off_r = part->body_off;
			*len_r = part->body_len;
			return 1;
		case IMAP_SECTION_MIME:
			return 0;
		}
		return 0;
	}
	switch (kind) {
	case IMAP_SECTION_ALL:
		*off_r = part->body_off;
		*len_r = part->body_len;
		return 1;
	case IMAP_SECTION_MIME:
		/* For a message/rfc822 part this is its own header, as
		   Dovecot answers. */
		*off_r = part->hdr_off;
		*len_r = part->hdr_len;
		return 1;
	case IMAP_SECTION_HEADER:
	case IMAP_SECTION_TEXT:
		if (!part->message)
			return 0;
		part = part->children;
		if (kind == IMAP_SECTION_HEADER) {
			*off_r = part->hdr_off;
			*len_r = part->hdr_len;
		} else {
			*off_r = part->body_off;
			*len_r = part->body_len;
		}
		return 1;
	}
	return 0;
}

int
imap_section_lookup(const struct mime_message *msg, const char *section, size_t *off_r,
		    size_t *len_r)
{
	uint32_t path[MIME_MAX_DEPTH * 2];
	size_t count = 0;
	const char *s = section;
	enum imap_section_kind kind = IMAP_SECTION_ALL;

	*off_r = *len_r = 0;
	while (*s >= '0' && *s <= '9') {
		uint64_t n = 0;

		while (*s >= '0' && *s <= '9') {
			n = n * 10 + (uint64_t)(*s - '0');
			if (n > UINT32_MAX)
				return -1;
			s++;
		}
		if (n == 0 || count >= N_ELEMENTS(path))
			return -1;
		path[count++] = (uint32_t)n;
		if (*s == '\0')
			break;
		if (*s != '.')
			return -1;
		s++;
		if (*s == '\0')
			return -1;
	}
	if (*s != '\0') {
		if (ascii_strcasecmp(s, "HEADER") == 0)
			kind = IMAP_SECTION_HEADER;
		else if (ascii_strcasecmp(s, "TEXT") == 0)
			kind = IMAP_SECTION_TEXT;
		else if (ascii_strcasecmp(s, "MIME") == 0 && count > 0)
			kind = IMAP_SECTION_MIME;
		else
			return -1;
	}
	return imap_section_range(msg, path, count, kind, off_r, len_r);
}
