/* imap_envelope.c: the IMAP ENVELOPE of a message (RFC 3501 section
   7.4.2), read from its RFC 5322 header with core/mail's message.h.

   Best effort on malformed input, as message.c: junk in an address list
   is skipped, unknown syntax is copied through, and nothing reads past
   the length it was given. */
#include "imap_envelope.h"
#include "message.h"
#include "text.h"

#include <stdlib.h>

/* ENVELOPE host (and mailbox) of an address that has none, as Dovecot
   writes them: "bob" becomes ("bob" host "MISSING_DOMAIN"), so that a
   client never mistakes it for group syntax (a NIL host). */
#define MISSING_DOMAIN "MISSING_DOMAIN"
#define MISSING_MAILBOX "MISSING_MAILBOX"

/* --- addresses and ENVELOPE ------------------------------------------ */

/* Characters that end an atom in an address (RFC 5322 specials, minus
   '.', which we keep inside atoms so that "John Q. Public" and "a.b" read
   as words). 8-bit bytes are atom characters. */
static bool
addr_is_special(char c)
{
	return strchr("()<>[]:;@\\,\"", c) != NULL;
}

/* Reads a quoted string at s[*pos] == '"', appending its unescaped
   content. An unterminated one runs to the end. */
static void
read_qstring(const char *s, size_t len, size_t *pos, struct buf *out)
{
	for ((*pos)++; *pos < len; (*pos)++) {
		char c = s[*pos];

		if (c == '"') {
			(*pos)++;
			return;
		}
		if (c == '\\' && *pos + 1 < len)
			c = s[++(*pos)];
		if (c != '\r' && c != '\n')
			buf_append_c(out, c);
	}
}

static void
read_atom(const char *s, size_t len, size_t *pos, struct buf *out)
{
	while (*pos < len && !addr_is_special(s[*pos]) && !text_is_ws(s[*pos]) &&
	       (unsigned char)s[*pos] >= 0x20 && s[*pos] != 0x7f)
		buf_append_c(out, s[(*pos)++]);
}

static bool
is_atom_char(char c)
{
	return !addr_is_special(c) && !text_is_ws(c) && (unsigned char)c >= 0x20 && c != 0x7f;
}

/* Reads a domain (dot-atoms and domain literals, comments between them
   allowed) up to a special that ends it. */
static void
read_domain(const char *s, size_t len, size_t *pos, struct buf *out)
{
	for (;;) {
		text_skip_cfws(s, len, pos);
		if (*pos >= len)
			return;
		if (s[*pos] == '[') {
			while (*pos < len && s[*pos] != ']') {
				if (s[*pos] == '\\' && *pos + 1 < len)
					(*pos)++;
				if (!text_is_ws(s[*pos]))
					buf_append_c(out, s[*pos]);
				(*pos)++;
			}
			if (*pos < len) {
				buf_append_c(out, ']');
				(*pos)++;
			}
		} else if (is_atom_char(s[*pos])) {
			read_atom(s, len, pos, out);
		} else {
			return;
		}
	}
}

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

/* Reads "<[@route,@route:]local@domain>" at s[*pos] == '<'. */
static void
read_angle_addr(const char *s, size_t len, size_t *pos, struct buf *route,
		struct buf *mailbox, struct buf *host)
{
	(*pos)++;
	text_skip_cfws(s, len, pos);
	/* Obsolete source route: "@a,@b:" */
	if (*pos < len && s[*pos] == '@') {
		while (*pos < len && s[*pos] != ':' && s[*pos] != '>') {
			if (!text_is_ws(s[*pos]))
				buf_append_c(route, s[*pos]);
			(*pos)++;
		}
		if (*pos < len && s[*pos] == ':')
			(*pos)++;
	}
	for (;;) {
		text_skip_cfws(s, len, pos);
		if (*pos >= len)
			return;
		if (s[*pos] == '"')
			read_qstring(s, len, pos, mailbox);
		else if (is_atom_char(s[*pos]))
			read_atom(s, len, pos, mailbox);
		else
			break;
	}
	if (s[*pos] == '@') {
		(*pos)++;
		read_domain(s, len, pos, host);
	}
	/* Skip whatever junk precedes the closing '>'. */
	while (*pos < len && s[*pos] != '>' && s[*pos] != ',' && s[*pos] != ';')
		(*pos)++;
	if (*pos < len && s[*pos] == '>')
		(*pos)++;
}

/* Appends the addresses of the address-list s[0..len) as envelope
   addresses (without the surrounding parentheses). Returns how many
   were written (group markers included). */
static size_t
write_address_list(const char *s, size_t len, struct buf *out)
{
	struct buf phrase = BUF_INIT, local = BUF_INIT, route = BUF_INIT;
	struct buf mailbox = BUF_INIT, host = BUF_INIT, none = BUF_INIT;
	size_t pos = 0, count = 0;
	bool in_group = false;

	while (pos < len) {
		char c;

		text_skip_cfws(s, len, &pos);
		if (pos >= len)
			break;
		c = s[pos];
		if (c == ',') {
			pos++;
			continue;
		}
		if (c == ';') {
			pos++;
			if (in_group) {
				buf_append_str(out, "(NIL NIL NIL NIL)");
				count++;
				in_group = false;
			}
			continue;
		}
		/* A phrase (display name or group name) or a local part. */
		buf_reset(&phrase);
		buf_reset(&local);
		/* Never NULL below: an empty quoted string appends nothing,
		   and local.data + before must point into a buffer. */
		buf_reserve(&local, 64);
		for (;;) {
			text_skip_cfws(s, len, &pos);
			if (pos >= len)
				break;
			c = s[pos];
			if (c != '"' && !is_atom_char(c))
				break;
			if (phrase.len > 0)
				buf_append_c(&phrase, ' ');
			if (c == '"') {
				size_t before = local.len;
				read_qstring(s, len, &pos, &local);
				buf_append(&phrase, local.data + before, local.len - before);
			} else {
				size_t before = local.len;
				read_atom(s, len, &pos, &local);
				buf_append(&phrase, local.data + before, local.len - before);
			}
		}
		buf_reset(&route);
		buf_reset(&mailbox);
		buf_reset(&host);
		c = pos < len ? s[pos] : '\0';
		if (pos >= len || c == ',' || c == ';') {
			/* A bare local part, "bob": no domain. */
			if (local.len > 0) {
				write_address(out, &none, &none, &local, &host);
				count++;
			}
		} else if (c == ':') {
			pos++;
			if (!in_group) {
				buf_append_str(out, "(NIL NIL ");
				buf_append_imap_string(out, phrase.len == 0 ? "" : phrase.data,
						       phrase.len);
				buf_append_str(out, " NIL)");
				count++;
				in_group = true;
			}
		} else if (c == '<') {
			read_angle_addr(s, len, &pos, &route, &mailbox, &host);
			write_address(out, &phrase, &route, &mailbox, &host);
			count++;
		} else if (c == '@') {
			pos++;
			read_domain(s, len, &pos, &host);
			write_address(out, &none, &none, &local, &host);
			count++;
		} else {
			pos++;                  /* a stray special: skip it */
		}
	}
	if (in_group) {
		buf_append_str(out, "(NIL NIL NIL NIL)");
		count++;
	}
	buf_free(&phrase);
	buf_free(&local);
	buf_free(&route);
	buf_free(&mailbox);
	buf_free(&host);
	return count;
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
