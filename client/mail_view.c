/* mail_view.c: one mail as a person reads it (see mail_view.h).

   The body and the attachments come from core's MIME parser (mime.h)
   through mail_text.h: the readable text part with its transfer encoding and charset undone,
   and every attachment by name and size. */
#include "mail_view.h"
#include "buf.h"
#include "mail_text.h"
#include "mc_util.h"
#include "message.h"
#include "mime.h"

#include <stdlib.h>

/* Prints "Label: value" for the first field name of the header, RFC
   2047 words decoded. Returns true if the field exists. */
static bool
mail_view_field(FILE *out, const char *label, const char *hdr, size_t hdr_len, const char *name)
{
	struct buf raw = BUF_INIT, dec = BUF_INIT;
	bool found = message_header_get(hdr, hdr_len, name, &raw) == 1;

	if (found) {
		message_decode_header(raw.data != NULL ? raw.data : "", raw.len, &dec);
		fprintf(out, "%-9s ", label);
		mc_write_safe(out, dec.data != NULL ? dec.data : "", dec.len);
		putc('\n', out);
	}
	buf_free(&raw);
	buf_free(&dec);
	return found;
}

/* Every time is shown as the listing shows it: the lab's "date: hour:
   minute" in the client's local zone (mc_format_time). */
static void
mail_view_date_line(FILE *out, const char *label, int64_t t)
{
	char when[80];

	mc_format_time(t, MC_TIME_LIST, when, sizeof(when));
	fprintf(out, "%-9s %s\n", label, when);
}

/* Date: the Date field in local time (the field as written if it does
   not parse). */
static void
mail_view_date(FILE *out, const char *hdr, size_t hdr_len)
{
	struct buf raw = BUF_INIT;
	int64_t t;
	int32_t tz;

	if (message_header_get(hdr, hdr_len, "Date", &raw) == 1) {
		if (message_parse_date(raw.data, &t, &tz) == 0) {
			mail_view_date_line(out, "Date:", t);
		} else {
			fprintf(out, "%-9s ", "Date:");
			mc_write_safe(out, raw.data, raw.len);
			putc('\n', out);
		}
	}
	buf_free(&raw);
}

/* Received: the server's INTERNALDATE, the very time the listing shows
   for this mail, in the same format and zone. Only when it is unknown,
   the Received field: an RFC 5321 trace field ("from .. by ..; <date>")
   by its date, the lab's "Received: 2022-03-10 : 14 : 30" (no zone) as
   it is written. */
static void
mail_view_received(FILE *out, const char *hdr, size_t hdr_len, int64_t internal_date)
{
	struct buf raw = BUF_INIT;

	if (internal_date >= 0) {
		mail_view_date_line(out, "Received:", internal_date);
	} else if (message_header_get(hdr, hdr_len, "Received", &raw) == 1) {
		const char *semi = strrchr(raw.data, ';');
		int64_t t;
		int32_t tz;
		if (semi != NULL && message_parse_date(semi + 1, &t, &tz) == 0) {
			mail_view_date_line(out, "Received:", t);
		} else {
			fprintf(out, "%-9s ", "Received:");
			mc_write_safe(out, raw.data, raw.len);
			putc('\n', out);
		}
	}
	buf_free(&raw);
}

static void
mail_view_size(char *out, size_t out_size, size_t bytes)
{
	if (bytes < 1024)
		snprintf(out, out_size, "%zu bytes", bytes);
	else if (bytes < 1024 * 1024)
		snprintf(out, out_size, "%.1f KB", (double)bytes / 1024.0);
	else
		snprintf(out, out_size, "%.1f MB", (double)bytes / (1024.0 * 1024.0));
}

void
mail_view_print(FILE *out, const char *msg, size_t len, int64_t internal_date)
{
	size_t hdr_len = message_header_size(msg, len);

	mail_view_field(out, "From:", msg, hdr_len, "From");
	mail_view_field(out, "To:", msg, hdr_len, "To");
	mail_view_field(out, "Cc:", msg, hdr_len, "Cc");
	mail_view_field(out, "Subject:", msg, hdr_len, "Subject");
	mail_view_date(out, msg, hdr_len);
	mail_view_received(out, msg, hdr_len, internal_date);

	struct mime_message *m = mime_parse(msg, len);
	struct mail_text_attachment *atts = NULL;
	size_t att_count = mail_text_attachments(m, msg, len, &atts);
	for (size_t i = 0; i < att_count; i++) {
		char size[32];
		mail_view_size(size, sizeof(size), atts[i].size);
		fprintf(out, "%-9s ", i == 0 ? "Attached:" : "");
		mc_write_safe(out, atts[i].name, strlen(atts[i].name));
		fprintf(out, " (%s, %s)\n", atts[i].content_type, size);
	}
	putc('\n', out);

	struct buf text = BUF_INIT;
	if (mail_text_readable(m, msg, len, &text)) {
		mc_write_safe(out, text.data != NULL ? text.data : "", text.len);
		if (text.len > 0 && text.data[text.len - 1] != '\n')
			putc('\n', out);
	} else {
		fputs("(this mail has no text part)\n", out);
	}
	buf_free(&text);
	mail_text_attachments_free(&atts, att_count);
	mime_message_free(&m);
}
