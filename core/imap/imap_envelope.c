/* imap_envelope.c: the IMAP ENVELOPE of a message (RFC 3501 section
   7.4.2), read from its RFC 5322 header with core/mail's message.h and
   address.h, written with IMAP's NIL and string rules. */
#include "imap_envelope.h"
#include "address.h"
#include "message.h"

#include <stdlib.h>

/* ENVELOPE host (and mailbox) of an address that has none, as Dovecot
   writes them: "bob" becomes ("bob" host "MISSING_DOMAIN"), so that a
   client never mistakes it for group syntax (a NIL host). */
#define MISSING_DOMAIN "MISSING_DOMAIN"
#define MISSING_MAILBOX "MISSING_MAILBOX"

static void
write_nstring_buf(struct buf *out, const struct buf *b, bool nil_if_empty)
{
	if (nil_if_empty && b->len == 0)
		buf_append_str(out, "NIL");
	else
		buf_append_imap_string(out, b->len == 0 ? "" : b->data, b->len);
}

static void
write_address(struct buf *out, const struct buf *name, const struct buf *route,
	      const struct buf *mailbox, const struct buf *host)
{
	buf_append_c(out, '(');
	write_nstring_buf(out, name, true);
	buf_append_c(out, ' ');
	write_nstring_buf(out, route, true);
	buf_append_c(out, ' ');
	if (mailbox->len == 0)
		buf_append_str(out, "\"" MISSING_MAILBOX "\"");
	else
		write_nstring_buf(out, mailbox, false);
	buf_append_c(out, ' ');
	if (host->len == 0)
		buf_append_str(out, "\"" MISSING_DOMAIN "\"");
	else
		write_nstring_buf(out, host, false);
	buf_append_c(out, ')');
}

/* Writes one address of an address list as an ENVELOPE address. */
static void
write_list_item(const struct message_address *a, void *context)
{
	struct buf *out = context;

	switch (a->kind) {
	case MESSAGE_ADDRESS_MAILBOX:
		write_address(out, a->name, a->route, a->mailbox, a->host);
		break;
	case MESSAGE_ADDRESS_GROUP_START:
		buf_append_str(out, "(NIL NIL ");
		buf_append_imap_string(out, a->name->len == 0 ? "" : a->name->data, a->name->len);
		buf_append_str(out, " NIL)");
		break;
	case MESSAGE_ADDRESS_GROUP_END:
		buf_append_str(out, "(NIL NIL NIL NIL)");
		break;
	}
}

/* Appends the addresses of the address-list s[0..len) as envelope
   addresses (without the surrounding parentheses). Returns how many
   were written (group markers included). */
static size_t
write_address_list(const char *s, size_t len, struct buf *out)
{
	return message_address_list_parse(s, len, write_list_item, out);
}

/* Writes the address list of field name, or NIL when it is absent or
   holds no address. Returns false when it wrote NIL. */
static bool
envelope_addresses(const char *hdr, size_t hdr_len, const char *name, struct buf *out)
{
	struct buf value = BUF_INIT, list = BUF_INIT;
	bool written = false;

	if (message_header_get_all(hdr, hdr_len, name, &value) > 0 &&
	    write_address_list(value.data, value.len, &list) > 0) {
		buf_append_c(out, '(');
		buf_append(out, list.data, list.len);
		buf_append_c(out, ')');
		written = true;
	}
	buf_free(&value);
	buf_free(&list);
	return written;
}

static void
envelope_nstring(const char *hdr, size_t hdr_len, const char *name, struct buf *out)
{
	struct buf value = BUF_INIT;

	if (message_header_get(hdr, hdr_len, name, &value) > 0)
		buf_append_imap_string(out, value.len == 0 ? "" : value.data, value.len);
	else
		buf_append_str(out, "NIL");
	buf_free(&value);
}

void
imap_envelope(const char *msg, size_t len, struct buf *out)
{
	size_t hdr_len = message_header_size(msg, len);
	struct buf from = BUF_INIT;
	bool have_from;

	buf_append_c(out, '(');
	envelope_nstring(msg, hdr_len, "Date", out);
	buf_append_c(out, ' ');
	envelope_nstring(msg, hdr_len, "Subject", out);
	buf_append_c(out, ' ');
	have_from = envelope_addresses(msg, hdr_len, "From", &from);
	if (!have_from)
		buf_append_str(&from, "NIL");
	buf_append(out, from.data, from.len);
	/* RFC 3501 7.4.2: Sender and Reply-To absent or empty: use From. */
	buf_append_c(out, ' ');
	if (!envelope_addresses(msg, hdr_len, "Sender", out))
		buf_append(out, from.data, from.len);
	buf_append_c(out, ' ');
	if (!envelope_addresses(msg, hdr_len, "Reply-To", out))
		buf_append(out, from.data, from.len);
	buf_free(&from);
	static const char *const lists[] = { "To", "Cc", "Bcc" };
	for (size_t i = 0; i < N_ELEMENTS(lists); i++) {
		buf_append_c(out, ' ');
		if (!envelope_addresses(msg, hdr_len, lists[i], out))
			buf_append_str(out, "NIL");
	}
	buf_append_c(out, ' ');
	envelope_nstring(msg, hdr_len, "In-Reply-To", out);
	buf_append_c(out, ' ');
	envelope_nstring(msg, hdr_len, "Message-ID", out);
	buf_append_c(out, ')');
}
