/* libFuzzer target: message reading (ENVELOPE, header fields, MIME
   structure, body text, dates, RFC 2047) and FETCH answers on arbitrary
   message bytes. */
#include "buf.h"
#include "fetch.h"
#include "imap_envelope.h"
#include "message.h"
#include "mime.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fetch_items[] = {
	"BODYSTRUCTURE", "BODY", "ENVELOPE", "BODY[1.2.MIME]", "BODY[2.HEADER]",
	"BODY[1.TEXT]<3.20>", "BODY[HEADER.FIELDS (FROM TO SUBJECT)]", "RFC822.SIZE",
	"BODY[2.1.1]", "BODY[TEXT]",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so reading past the end is caught. */
	char *msg = malloc(size == 0 ? 1 : size);
	struct buf out = BUF_INIT;
	struct mbox_state st;
	struct mail_rec rec;
	int64_t t;
	int32_t tz;

	memcpy(msg, data, size);
	size_t hdr = message_header_size(msg, size);
	if (hdr > size)
		abort();
	(void)message_header_get(msg, hdr, "subject", &out);
	imap_envelope(msg, size, &out);
	mime_body_text(msg, size, &out);
	message_decode_header(msg, size, &out);
	buf_reset(&out);
	buf_append(&out, msg, size < 200 ? size : 200);
	(void)message_parse_date(out.data, &t, &tz);

	mbox_state_init(&st);
	i_zero(&rec);
	rec.uid = 1;
	rec.size = size;
	for (size_t i = 0; i < N_ELEMENTS(fetch_items); i++) {
		struct imap_arg arg = { .type = IMAP_ARG_ATOM };
		struct fetch_spec *spec;
		const char *error;

		arg.str = (char *)(uintptr_t)fetch_items[i];
		arg.len = strlen(arg.str);
		if (fetch_parse(&arg, 1, &spec, &error) < 0)
			abort();
		struct fetch_msg fm = { .seq = 1, .rec = &rec, .state = &st, .data = msg, .len = size };
		buf_reset(&out);
		fetch_write(spec, &fm, &out);
		fetch_spec_free(&spec);
	}
	mbox_state_deinit(&st);
	buf_free(&out);
	free(msg);
	return 0;
}
