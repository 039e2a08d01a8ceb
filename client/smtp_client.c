/* smtp_client.c: one mail over SMTP (see smtp_client.h). */
#include "smtp_client.h"
#include "base64.h"
#include "client_tls.h"
#include "netio.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SMTPC_MAX_REPLY 65536

struct smtpc {
	const struct smtpc_settings *set;
	struct netio *nio;
	int timeout_ms;
	struct buf in;
	struct strlist ext;     /* the EHLO reply's lines after the first */
};

void
smtpc_dot_stuff(const char *data, size_t len, struct buf *out)
{
	bool line_start = true;

	buf_reserve(out, len + len / 32 + 8);
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (line_start && c == '.')
			buf_append_c(out, '.');
		line_start = false;
		if (c == '\r' && i + 1 < len && data[i + 1] == '\n')
			continue;       /* the LF writes the CRLF */
		if (c == '\n' || c == '\r') {
			buf_append_str(out, "\r\n");
			line_start = true;
			continue;
		}
		buf_append_c(out, c);
	}
	if (!line_start)
		buf_append_str(out, "\r\n");
	buf_append_str(out, ".\r\n");
}

int
smtpc_reply_parse(const char *buf, size_t len, unsigned *code_r, size_t *size_r)
{
	size_t pos = 0;
	unsigned first_code = 0;

	/* One line per round; pos only grows. */
	while (pos < len) {
		const char *lf = memchr(buf + pos, '\n', len - pos);
		if (lf == NULL)
			return len > SMTPC_MAX_REPLY ? -1 : 0;
		size_t line_len = (size_t)(lf - (buf + pos));
		const char *l = buf + pos;
		if (line_len < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' ||
		    l[2] < '0' || l[2] > '9')
			return -1;
		unsigned code = (unsigned)((l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0'));
		if (first_code == 0)
			first_code = code;
		else if (code != first_code)
			return -1;
		pos += line_len + 1;
		if (line_len == 3 || l[3] == ' ' || l[3] == '\r') {
			*code_r = code;
			*size_r = pos;
			return 1;
		}
		if (l[3] != '-')
			return -1;
		if (pos > SMTPC_MAX_REPLY)
			return -1;
	}
	return 0;
}

/* Reads one reply. *text_r: its last line without CRLF (the verdict a
   user wants to see). lines_r, if not NULL, gets the text of every line
   (without the code and its separator). Returns 0 or -1. */
static int
smtpc_read_reply(struct smtpc *s, unsigned *code_r, char **text_r, struct strlist *lines_r,
		 char **error_r)
{
	for (;;) {
		size_t size;
		int ret = smtpc_reply_parse(s->in.data != NULL ? s->in.data : "", s->in.len, code_r,
					    &size);
		if (ret < 0) {
			*error_r = xstrdup("the SMTP server sent a malformed reply");
			return -1;
		}
		if (ret > 0) {
			size_t end = size;
			while (end > 0 && (s->in.data[end - 1] == '\n' || s->in.data[end - 1] == '\r'))
				end--;
			size_t start = end;
			while (start > 0 && s->in.data[start - 1] != '\n')
				start--;
			*text_r = xstrndup(s->in.data + start, end - start);
			if (lines_r != NULL)
				smtpc_reply_lines(s->in.data, size, lines_r);
			buf_consume(&s->in, size);
			return 0;
		}
		ret = netio_read_some(s->nio, &s->in, s->timeout_ms, error_r);
		if (ret < 0)
			return -1;
		if (ret == 0) {
			*error_r = xasprintf("the SMTP server did not answer within %d s",
					     s->timeout_ms / 1000);
			return -1;
		}
	}
}

/* Sends line (CRLF added) and reads the reply. Returns 0 or -1. */
static int
smtpc_command(struct smtpc *s, const char *line, unsigned *code_r, char **text_r, char **error_r)
{
	char *out = xasprintf("%s\r\n", line);
	int ret = netio_write_all(s->nio, out, strlen(out), s->timeout_ms, error_r);

	explicit_bzero(out, strlen(out));       /* it may be an AUTH line */
	free(out);
	if (ret < 0)
		return -1;
	return smtpc_read_reply(s, code_r, text_r, NULL, error_r);
}

/* Runs one step that must answer 2xx (3xx for DATA). Returns 1 ok, 0
   refused (*verdict_r says which step), -1. */
static int
smtpc_step(struct smtpc *s, const char *what, const char *line, unsigned want_class,
	   char **verdict_r, char **error_r)
{
	unsigned code;
	char *text = NULL;

	if (smtpc_command(s, line, &code, &text, error_r) < 0)
		return -1;
	if (code / 100 == want_class) {
		free(text);
		return 1;
	}
	*verdict_r = xasprintf("%s refused: %s", what, text);
	free(text);
	return 0;
}

/* EHLO, HELO if refused (not when TLS is required: a server without
   EHLO has no STARTTLS). Learns the extensions. Returns 1, 0 refused
   (*verdict_r), -1. */
static int
smtpc_hello(struct smtpc *s, char **verdict_r, char **error_r)
{
	unsigned code;
	char *text = NULL;
	char *line = xasprintf("EHLO %s\r\n", s->set->helo_name);
	int ret = netio_write_all(s->nio, line, strlen(line), s->timeout_ms, error_r);
	free(line);
	if (ret < 0)
		return -1;
	strlist_clear(&s->ext);
	if (smtpc_read_reply(s, &code, &text, &s->ext, error_r) < 0)
		return -1;
	free(text);
	if (code / 100 == 2) {
		/* The first line is the server's name, not an extension. */
		if (s->ext.count > 0) {
			free(s->ext.items[0]);
			memmove(s->ext.items, s->ext.items + 1, (s->ext.count - 1) * sizeof(char *));
			s->ext.count--;
		}
		return 1;
	}
	strlist_clear(&s->ext);
	if (s->set->tls->mode == CLIENT_TLS_STARTTLS) {
		*error_r = xstrdup("the SMTP server does not speak ESMTP, so it offers no "
				   "STARTTLS, which --starttls requires");
		return -1;
	}
	line = xasprintf("HELO %s", s->set->helo_name);
	ret = smtpc_step(s, "HELO", line, 2, verdict_r, error_r);
	free(line);
	return ret;
}

/* STARTTLS (RFC 3207), then EHLO again: what was learnt in clear is
   forgotten. Returns 1, 0 refused (*verdict_r), -1. */
static int
smtpc_starttls(struct smtpc *s, char **verdict_r, char **error_r)
{
	char *err = NULL;
	int ret = smtpc_step(s, "STARTTLS", "STARTTLS", 2, verdict_r, error_r);

	if (ret <= 0)
		return ret;
	/* Anything after the 220 came in clear: never read as if it came
	   over TLS (CVE-2011-0411's class, from the client's side). */
	buf_reset(&s->in);
	bool unchecked;
	struct tls_ctx *ctx = client_tls_starttls_ctx(s->set->tls, netio_peer_is_loopback(s->nio),
						      &unchecked);
	if (netio_start_tls(s->nio, ctx, s->set->host, s->timeout_ms, &s->in, &err) < 0) {
		*error_r = client_tls_handshake_error(s->set->tls, err);
		free(err);
		return -1;
	}
	return smtpc_hello(s, verdict_r, error_r);
}

/* AUTH PLAIN (RFC 4616) with an initial response, or AUTH LOGIN when
   only that is offered (one of them is). Returns 1 authenticated, 0
   refused (*verdict_r), -1. The credentials are wiped from every buffer
   used. */
static int
smtpc_auth(struct smtpc *s, char **verdict_r, char **error_r)
{
	const char *user = s->set->user, *password = s->set->password;
	struct buf raw = BUF_INIT, b64 = BUF_INIT;
	unsigned code = 0;
	char *text = NULL;
	int ret;

	if (smtpc_ehlo_has(&s->ext, "AUTH", "PLAIN")) {
		buf_append_c(&raw, '\0');
		buf_append_str(&raw, user);
		buf_append_c(&raw, '\0');
		buf_append_str(&raw, password);
		buf_append_str(&b64, "AUTH PLAIN ");
		base64_encode(raw.data, raw.len, &b64);
		ret = smtpc_command(s, b64.data, &code, &text, error_r);
	} else {
		ret = smtpc_command(s, "AUTH LOGIN", &code, &text, error_r);
		for (unsigned i = 0; i < 2 && ret == 0 && code == 334; i++) {
			const char *what = i == 0 ? user : password;
			buf_reset(&b64);
			base64_encode(what, strlen(what), &b64);
			free(text);
			text = NULL;
			ret = smtpc_command(s, b64.data, &code, &text, error_r);
		}
	}
	if (raw.data != NULL)
		explicit_bzero(raw.data, raw.cap);
	if (b64.data != NULL)
		explicit_bzero(b64.data, b64.cap);
	buf_free(&raw);
	buf_free(&b64);
	if (ret < 0)
		return -1;
	if (code == 235) {
		free(text);
		return 1;
	}
	*verdict_r = xasprintf("the login as %s was refused: %s", user, text);
	free(text);
	return 0;
}

/* From the greeting to an ESMTP session ready for MAIL: EHLO, STARTTLS
   when the policy says so, AUTH when offered and allowed. *note_r: why
   AUTH was skipped, for the verdict if the mail is then refused.
   Returns 1, 0 refused (*verdict_r), -1. */
static int
smtpc_open_session(struct smtpc *s, char **note_r, char **verdict_r, char **error_r)
{
	unsigned code;
	char *text = NULL;
	int ret;

	if (smtpc_read_reply(s, &code, &text, NULL, error_r) < 0)
		return -1;
	if (code != 220) {
		*verdict_r = xasprintf("the SMTP server refused the connection: %s", text);
		free(text);
		return 0;
	}
	free(text);
	ret = smtpc_hello(s, verdict_r, error_r);
	if (ret <= 0)
		return ret;
	if (!netio_is_tls(s->nio)) {
		switch (client_tls_next_step(s->set->tls, smtpc_ehlo_has(&s->ext, "STARTTLS", NULL))) {
		case CLIENT_TLS_STEP_STARTTLS:
			ret = smtpc_starttls(s, verdict_r, error_r);
			if (ret <= 0)
				return ret;
			break;
		case CLIENT_TLS_STEP_REFUSE:
			*error_r = xasprintf("the SMTP server at %s port %s does not offer STARTTLS, "
					     "which --starttls requires", s->set->host, s->set->port);
			return -1;
		case CLIENT_TLS_STEP_PLAIN:
			break;
		}
	}
	if (s->set->user == NULL || !smtpc_ehlo_has(&s->ext, "AUTH", NULL))
		return 1;
	if (!smtpc_ehlo_has(&s->ext, "AUTH", "PLAIN") && !smtpc_ehlo_has(&s->ext, "AUTH", "LOGIN")) {
		*note_r = xstrdup("the server offers no login this client knows: AUTH PLAIN or "
				  "LOGIN");
		return 1;
	}
	char *what = xasprintf("the SMTP server %s", s->set->host);
	ret = client_tls_password_check(s->set->tls, netio_is_tls(s->nio),
					netio_peer_is_loopback(s->nio), what, note_r);
	free(what);
	if (ret < 0)
		return 1;       /* no AUTH: the server may take the mail anyway */
	return smtpc_auth(s, verdict_r, error_r);
}

static int
smtpc_dialog(struct smtpc *s, const struct smtpc_mail *mail, char **verdict_r, char **error_r)
{
	unsigned code;
	char *text = NULL, *line, *note = NULL;
	int ret;

	ret = smtpc_open_session(s, &note, verdict_r, error_r);
	if (ret <= 0)
		goto quit;
	line = xasprintf("MAIL FROM:<%s>", mail->from);
	ret = smtpc_step(s, "the sender", line, 2, verdict_r, error_r);
	free(line);
	if (ret <= 0)
		goto quit;
	for (size_t i = 0; i < mail->to_count; i++) {
		line = xasprintf("RCPT TO:<%s>", mail->to[i]);
		char *what = xasprintf("the recipient %s", mail->to[i]);
		ret = smtpc_step(s, what, line, 2, verdict_r, error_r);
		free(what);
		free(line);
		if (ret <= 0)
			goto quit;
	}
	ret = smtpc_step(s, "DATA", "DATA", 3, verdict_r, error_r);
	if (ret <= 0)
		goto quit;

	struct buf data = BUF_INIT;
	smtpc_dot_stuff(mail->data, mail->data_len, &data);
	ret = netio_write_all(s->nio, data.data, data.len, s->timeout_ms, error_r);
	buf_free(&data);
	if (ret < 0)
		goto quit;
	if (smtpc_read_reply(s, &code, &text, NULL, error_r) < 0) {
		ret = -1;
		goto quit;
	}
	if (code / 100 == 2) {
		*verdict_r = text;
		ret = 1;
	} else {
		*verdict_r = xasprintf("the message was refused: %s", text);
		free(text);
		ret = 0;
	}
quit:
	if (ret == 0 && note != NULL) {
		/* Refused, maybe for want of the login that was not sent. */
		char *v = xasprintf("%s (%s)", *verdict_r, note);
		free(*verdict_r);
		*verdict_r = v;
	}
	free(note);
	if (ret >= 0) {
		/* The verdict is known; QUIT is a courtesy. */
		char *err = NULL;
		text = NULL;
		if (smtpc_command(s, "QUIT", &code, &text, &err) < 0)
			free(err);
		free(text);
	}
	return ret;
}

int
smtpc_send(const struct smtpc_settings *set, const struct smtpc_mail *mail, char **verdict_r,
	   char **error_r)
{
	struct smtpc s;
	char *err = NULL;

	if (set->tls->mode != CLIENT_TLS_AUTO && set->tls->ctx == NULL) {
		*error_r = xstrdup("TLS was asked for, but there is no TLS context");
		return -1;
	}
	i_zero(&s);
	s.set = set;
	s.timeout_ms = set->timeout_ms;
	if (netio_connect(set->host, set->port, set->timeout_ms, &s.nio, error_r) < 0)
		return -1;
	int ret = 0;
	if (set->tls->mode == CLIENT_TLS_IMPLICIT &&
	    netio_start_tls(s.nio, set->tls->ctx, set->host, set->timeout_ms, &s.in, &err) < 0) {
		*error_r = client_tls_handshake_error(set->tls, err);
		free(err);
		ret = -1;
	}
	if (ret == 0)
		ret = smtpc_dialog(&s, mail, verdict_r, error_r);
	netio_free(&s.nio);
	buf_free(&s.in);
	strlist_clear(&s.ext);
	return ret;
}

void
smtpc_reply_lines(const char *reply, size_t size, struct strlist *lines)
{
	size_t pos = 0;

	while (pos < size) {
		const char *lf = memchr(reply + pos, '\n', size - pos);
		size_t end = lf != NULL ? (size_t)(lf - reply) : size;
		size_t next = lf != NULL ? end + 1 : size;
		if (end > pos && reply[end - 1] == '\r')
			end--;
		size_t start = pos + 3 < end ? pos + 4 : end;
		strlist_add_take(lines, xstrndup(reply + start, end - start));
		pos = next;
	}
}

bool
smtpc_ehlo_has(const struct strlist *ext, const char *keyword, const char *param)
{
	size_t klen = strlen(keyword);

	for (size_t i = 0; i < ext->count; i++) {
		const char *l = ext->items[i];
		if (ascii_strncasecmp(l, keyword, klen) != 0 || (l[klen] != '\0' && l[klen] != ' '))
			continue;
		if (param == NULL)
			return true;
		/* The parameters: words after the keyword. */
		size_t plen = strlen(param);
		for (const char *p = l + klen; *p != '\0';) {
			while (*p == ' ')
				p++;
			const char *w = p;
			while (*p != '\0' && *p != ' ')
				p++;
			if ((size_t)(p - w) == plen && ascii_strncasecmp(w, param, plen) == 0)
				return true;
		}
	}
	return false;
}
