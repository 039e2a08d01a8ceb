/* imap_bodystructure.c: the BODY and BODYSTRUCTURE of a parsed message
   (see imap_bodystructure.h). */
#include "imap_bodystructure.h"
#include "imap_envelope.h"

static void
write_nstring(struct buf *out, const char *s)
{
	if (s == NULL)
		buf_append_str(out, "NIL");
	else
		buf_append_imap_string(out, s, strlen(s));
}

/* body-fld-param: ("name" "value" ...) or NIL. Text parts without a
   charset get "charset" "us-ascii" at the end (RFC 2045's default, as
   Dovecot shows it). */
static void
write_params(struct buf *out, const struct mime_param *params, size_t count,
	     bool add_charset)
{
	if (count == 0 && !add_charset) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_c(out, '(');
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			buf_append_c(out, ' ');
		write_nstring(out, params[i].name);
		buf_append_c(out, ' ');
		write_nstring(out, params[i].value);
	}
	if (add_charset)
		buf_append_str(out, count > 0 ? " \"charset\" \"us-ascii\"" :
						"\"charset\" \"us-ascii\"");
	buf_append_c(out, ')');
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void
write_dsp_lang_loc(struct buf *out, const struct mime_part *part)
{
	if (part->disposition == NULL) {
		buf_append_str(out, "NIL");
	} else {
		buf_append_c(out, '(');
		write_nstring(out, part->disposition);
		buf_append_c(out, ' ');
		write_params(out, part->disp_params, part->disp_param_count, false);
		buf_append_c(out, ')');
	}
	buf_append_c(out, ' ');
	if (part->language_count == 0) {
		buf_append_str(out, "NIL");
	} else {
		buf_append_c(out, '(');
		for (size_t i = 0; i < part->language_count; i++) {
			if (i > 0)
				buf_append_c(out, ' ');
			write_nstring(out, part->languages[i]);
		}
		buf_append_c(out, ')');
	}
	buf_append_c(out, ' ');
	write_nstring(out, part->location);
}

/* BODY (extended false) or BODYSTRUCTURE (true) of part, RFC 3501
   sections 7.4.2 and 9. Recursion follows the tree, whose depth the
   parser bounds (MIME_MAX_DEPTH). */
void
imap_write_body_structure(struct buf *out, const struct mime_part *part, const char *data,
			  size_t len, bool extended)
{
	buf_append_c(out, '(');
	if (part->multipart) {
		/* body-type-mpart: 1*body SP media-subtype [SP body-ext-mpart] */
		for (const struct mime_part *c = part->children; c != NULL; c = c->next)
			imap_write_body_structure(out, c, data, len, extended);
		buf_append_c(out, ' ');
		write_nstring(out, part->subtype);
		if (extended) {
			buf_append_c(out, ' ');
			write_params(out, part->params, part->param_count, false);
			buf_append_c(out, ' ');
			write_dsp_lang_loc(out, part);
		}
		buf_append_c(out, ')');
		return;
	}
	bool text = mime_part_is(part, "text", NULL);

	write_nstring(out, part->type);
	buf_append_c(out, ' ');
	write_nstring(out, part->subtype);
	buf_append_c(out, ' ');
	write_params(out, part->params, part->param_count,
		     text && mime_param_get(part->params, part->param_count, "charset") == NULL);
	buf_append_c(out, ' ');
	write_nstring(out, part->id);
	buf_append_c(out, ' ');
	write_nstring(out, part->description);
	buf_append_c(out, ' ');
	write_nstring(out, part->encoding_str != NULL && part->encoding_str[0] != '\0' ?
				   part->encoding_str : "7bit");
	buf_printf(out, " %zu", part->body_len);
	if (part->message) {
		/* body-type-msg: envelope SP body SP body-fld-lines */
		buf_append_c(out, ' ');
		if (part->body_off <= len && part->body_len <= len - part->body_off)
			imap_envelope(data + part->body_off, part->body_len, out);
		else
			imap_envelope("", 0, out);
		buf_append_c(out, ' ');
		imap_write_body_structure(out, part->children, data, len, extended);
		buf_printf(out, " %zu", part->lines);
	} else if (text) {
		buf_printf(out, " %zu", part->lines);
	}
	if (extended) {
		/* body-ext-1part: md5 SP dsp SP lang SP loc */
		buf_append_c(out, ' ');
		write_nstring(out, part->md5);
		buf_append_c(out, ' ');
		write_dsp_lang_loc(out, part);
	}
	buf_append_c(out, ')');
}
