/* fetch_binary.c: BINARY section data (see fetch_binary.h). */
#include "fetch_binary.h"
#include "imap_section.h"

#include <string.h>

int
fetch_binary_data(const struct mime_message *tree, const char *msg, size_t len,
		  const uint32_t *part, size_t count, struct buf *tmp, const char **data_r,
		  size_t *len_r)
{
	const struct mime_part *p;
	size_t off = 0, slen = 0;

	*data_r = msg;
	*len_r = len;
	if (count == 0)
		return 0;
	*data_r = "";
	*len_r = 0;
	p = imap_section_find_part(tree, part, count);
	if (p == NULL || imap_section_range(tree, part, count, IMAP_SECTION_ALL, &off, &slen) <= 0 ||
	    off > len || slen > len - off)
		return 0;
	if (p->multipart || p->message) {
		*data_r = msg + off;
		*len_r = slen;
		return 0;
	}
	switch (p->encoding) {
	case MIME_ENC_7BIT:
	case MIME_ENC_8BIT:
	case MIME_ENC_BINARY:
		*data_r = msg + off;
		*len_r = slen;
		return 0;
	case MIME_ENC_QP:
	case MIME_ENC_BASE64:
		break;
	case MIME_ENC_OTHER:
	default:
		return -1;
	}
	buf_reset(tmp);
	mime_decode(p->encoding, msg + off, slen, tmp);
	*data_r = tmp->data != NULL ? tmp->data : "";
	*len_r = tmp->len;
	return 0;
}

void
fetch_binary_write_literal(struct buf *out, const char *data, size_t len)
{
	if (len > 0 && memchr(data, '\0', len) != NULL)
		buf_append_c(out, '~');
	buf_append_c(out, '{');
	buf_append_u64(out, len);
	buf_append_str(out, "}\r\n");
	buf_append(out, data, len);
}
