/* address.c: reading RFC 5322 address lists (see address.h).

   Best effort on malformed input: junk is skipped, an unterminated
   quoted string runs to the end, and nothing reads past the given
   length. */
#include "address.h"
#include "text.h"

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

/* Like text_skip_cfws(), and when comment is not NULL each comment
   skipped replaces its content: the text between the outer parentheses,
   backslash escapes removed, nested parentheses kept (as Dovecot's
   rfc822 parser keeps its last comment). */
static void
skip_cfws_comment(const char *s, size_t len, size_t *pos, struct buf *comment)
{
	while (*pos < len) {
		size_t depth = 0;

		if (text_is_ws(s[*pos])) {
			(*pos)++;
			continue;
		}
		if (s[*pos] != '(')
			return;
		if (comment != NULL)
			buf_reset(comment);
		for (; *pos < len; (*pos)++) {
			char c = s[*pos];

			if (c == '\\' && *pos + 1 < len) {
				c = s[++(*pos)];
			} else if (c == '(') {
				if (depth++ == 0)
					continue;
			} else if (c == ')' && --depth == 0) {
				(*pos)++;
				break;
			}
			if (comment != NULL && c != '\r' && c != '\n')
				buf_append_c(comment, c);
		}
	}
}

/* Reads a domain (dot-atoms and domain literals, comments between them
   allowed) up to a special that ends it; comment as skip_cfws_comment(). */
static void
read_domain(const char *s, size_t len, size_t *pos, struct buf *out, struct buf *comment)
{
	for (;;) {
		skip_cfws_comment(s, len, pos, comment);
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
		read_domain(s, len, pos, host, NULL);
	}
	/* Skip whatever junk precedes the closing '>'. */
	while (*pos < len && s[*pos] != '>' && s[*pos] != ',' && s[*pos] != ';')
		(*pos)++;
	if (*pos < len && s[*pos] == '>')
		(*pos)++;
}

static void
emit(message_address_cb *cb, void *context, enum message_address_kind kind,
     const struct buf *name, const struct buf *route, const struct buf *mailbox,
     const struct buf *host)
{
	struct message_address a = {
		.kind = kind, .name = name, .route = route, .mailbox = mailbox, .host = host,
	};

	cb(&a, context);
}

size_t
message_address_list_parse(const char *s, size_t len, message_address_cb *cb, void *context)
{
	struct buf phrase = BUF_INIT, local = BUF_INIT, route = BUF_INIT;
	struct buf mailbox = BUF_INIT, host = BUF_INIT, none = BUF_INIT;
	struct buf comment = BUF_INIT;
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
				emit(cb, context, MESSAGE_ADDRESS_GROUP_END, &none, &none, &none, &none);
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
		buf_reset(&comment);
		for (;;) {
			skip_cfws_comment(s, len, &pos, &comment);
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
				emit(cb, context, MESSAGE_ADDRESS_MAILBOX, &comment, &none, &local,
				     &host);
				count++;
			}
		} else if (c == ':') {
			pos++;
			if (!in_group) {
				emit(cb, context, MESSAGE_ADDRESS_GROUP_START, &phrase, &none, &none,
				     &none);
				count++;
				in_group = true;
			}
		} else if (c == '<') {
			read_angle_addr(s, len, &pos, &route, &mailbox, &host);
			emit(cb, context, MESSAGE_ADDRESS_MAILBOX, &phrase, &route, &mailbox, &host);
			count++;
		} else if (c == '@') {
			/* A bare addr-spec: its last comment, as in the old
			   "user@domain (Real Name)" form, is the display name
			   (RFC 5322 3.4 and 3.2.2; Dovecot does the same). */
			pos++;
			read_domain(s, len, &pos, &host, &comment);
			emit(cb, context, MESSAGE_ADDRESS_MAILBOX, &comment, &none, &local, &host);
			count++;
		} else {
			pos++;                  /* a stray special: skip it */
		}
	}
	if (in_group) {
		emit(cb, context, MESSAGE_ADDRESS_GROUP_END, &none, &none, &none, &none);
		count++;
	}
	buf_free(&phrase);
	buf_free(&local);
	buf_free(&route);
	buf_free(&mailbox);
	buf_free(&host);
	buf_free(&comment);
	return count;
}

struct write_ctx {
	struct buf *out;
	bool first;           /* nothing written yet at this level */
};

static void
write_item(const struct message_address *a, void *context)
{
	struct write_ctx *ctx = context;
	struct buf *out = ctx->out;

	switch (a->kind) {
	case MESSAGE_ADDRESS_GROUP_START:
		if (!ctx->first)
			buf_append_str(out, ", ");
		buf_append(out, a->name->data, a->name->len);
		buf_append_str(out, ": ");
		ctx->first = true;
		return;
	case MESSAGE_ADDRESS_GROUP_END:
		buf_append_c(out, ';');
		ctx->first = false;
		return;
	case MESSAGE_ADDRESS_MAILBOX:
		break;
	}
	if (!ctx->first)
		buf_append_str(out, ", ");
	ctx->first = false;
	if (a->name->len > 0 || a->route->len > 0) {
		if (a->name->len > 0) {
			buf_append(out, a->name->data, a->name->len);
			buf_append_c(out, ' ');
		}
		buf_append_c(out, '<');
		if (a->route->len > 0) {
			buf_append(out, a->route->data, a->route->len);
			buf_append_c(out, ':');
		}
	}
	buf_append(out, a->mailbox->data, a->mailbox->len);
	if (a->host->len > 0) {
		buf_append_c(out, '@');
		buf_append(out, a->host->data, a->host->len);
	}
	if (a->name->len > 0 || a->route->len > 0)
		buf_append_c(out, '>');
}

size_t
message_address_list_write(const char *s, size_t len, struct buf *out)
{
	struct write_ctx ctx = { .out = out, .first = true };

	return message_address_list_parse(s, len, write_item, &ctx);
}
