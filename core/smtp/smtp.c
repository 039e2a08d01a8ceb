/* smtp.c: the SMTP protocol engine (see smtp.h for the contract and the
   choices about line ends and limits).

   Input is cut into lines by one assembler for both modes: a line is
   copied into a fixed buffer up to the mode's limit and the rest of an
   overlong line is counted, not stored, until its LF. A complete line is
   then a command (COMMAND mode), a text line (DATA mode) or a response
   of an AUTH exchange (AUTH mode, smtp_auth.c). */
#include "smtp.h"
#include "smtp_private.h"
#include "storage.h"
#include "username.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void
smtp_reply(struct buf *out, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	buf_vprintf(out, fmt, args);
	va_end(args);
	buf_append(out, "\r\n", 2);
}

struct smtp_session *
smtp_session_new(const struct smtp_settings *set, const char *peer_ip, const char *id_prefix)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->set = *set;
	if (s->set.max_bad_commands == 0)
		s->set.max_bad_commands = 1;
	s->peer_ip = xstrdup(peer_ip != NULL ? peer_ip : "unknown");
	s->id_prefix = xstrdup(id_prefix != NULL ? id_prefix : "smtp");
	if (s->set.max_auth_failures == 0)
		s->set.max_auth_failures = 3;
	s->tls = s->set.tls;
	s->state = SMTP_ST_COMMAND;
	return s;
}

static void
smtp_txn_reset(struct smtp_session *s)
{
	s->in_txn = false;
	free(s->mail_from);
	s->mail_from = NULL;
	strlist_clear(&s->rcpt_users);
	s->rcpt_count = 0;
	free(s->first_rcpt);
	s->first_rcpt = NULL;
	free(s->pending_user);
	free(s->pending_path);
	s->pending_user = s->pending_path = NULL;
	buf_free(&s->msg);
	s->data_size = 0;
	s->data_too_big = false;
	s->data_line_too_long = false;
	s->data_has_nul = false;
	s->id[0] = '\0';
}

void
smtp_session_free(struct smtp_session **_s)
{
	struct smtp_session *s = *_s;

	if (s == NULL)
		return;
	*_s = NULL;
	smtp_txn_reset(s);
	smtp_auth_forget(s);
	free(s->user);
	free(s->helo);
	free(s->peer_ip);
	free(s->id_prefix);
	free(s);
}

void
smtp_session_greet(struct smtp_session *s, struct buf *out)
{
	smtp_reply(out, "220 %s ESMTP smtpmail ready", s->set.hostname);
}

enum smtp_event
smtp_reply_bad(struct smtp_session *s, struct buf *out, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	buf_vprintf(out, fmt, args);
	va_end(args);
	buf_append(out, "\r\n", 2);
	if (++s->bad_count < s->set.max_bad_commands)
		return SMTP_EVENT_NONE;
	smtp_reply(out, "421 4.7.0 %s Error: too many errors, closing connection", s->set.hostname);
	s->state = SMTP_ST_CLOSED;
	return SMTP_EVENT_CLOSE;
}

/* Commands */

static enum smtp_event
cmd_helo(struct smtp_session *s, const char *verb, const char *args, bool esmtp, struct buf *out)
{
	size_t len = strlen(args);

	/* A domain or address literal; read leniently as one printable
	   token, since clients send all sorts of names here. */
	if (len == 0 || len > SMTP_DOMAIN_MAX || strchr(args, ' ') != NULL)
		return smtp_reply_bad(s, out, "501 Syntax: %s hostname", verb);
	for (size_t i = 0; i < len; i++) {
		if (args[i] <= ' ' || args[i] >= 0x7f)
			return smtp_reply_bad(s, out, "501 Syntax: %s hostname", verb);
	}
	smtp_txn_reset(s);
	free(s->helo);
	s->helo = xstrdup(args);
	s->esmtp = esmtp;
	if (!esmtp) {
		smtp_reply(out, "250 %s", s->set.hostname);
		return SMTP_EVENT_NONE;
	}
	smtp_reply(out, "250-%s", s->set.hostname);
	smtp_reply(out, "250-SIZE %llu", (unsigned long long)s->set.max_message_size);
	smtp_reply(out, "250-8BITMIME");
	smtp_reply(out, "250-PIPELINING");
	if (s->set.starttls && !s->tls)
		smtp_reply(out, "250-STARTTLS");
	if (smtp_auth_allowed(s))
		smtp_reply(out, "250-AUTH PLAIN LOGIN");
	smtp_reply(out, "250 ENHANCEDSTATUSCODES");
	return SMTP_EVENT_NONE;
}

/* The parameters of MAIL after its path, at *pp. Returns 0, or -1 once
   it replied (*ev_r: what smtp_reply_bad() returned, or NONE). */
static int
mail_params(struct smtp_session *s, const char **pp, struct buf *out, enum smtp_event *ev_r)
{
	const char *p = *pp;
	bool have_size = false, have_body = false, have_auth = false;

	*ev_r = SMTP_EVENT_NONE;
	while (*p == ' ') {
		char key[32], value[SMTP_PATH_MAX + 16];

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (smtp_param_parse(&p, key, sizeof(key), value, sizeof(value)) < 0) {
			*ev_r = smtp_reply_bad(s, out, "501 5.5.4 Bad MAIL parameter syntax");
			return -1;
		}
		if (!s->esmtp) {
			*ev_r = smtp_reply_bad(s, out, "555 5.5.4 MAIL parameters need EHLO");
			return -1;
		}
		if (ascii_strcasecmp(key, "SIZE") == 0 && !have_size) {
			uint64_t size;

			have_size = true;
			if (str_to_u64(value, UINT64_MAX, &size) < 0) {
				*ev_r = smtp_reply_bad(s, out, "501 5.5.4 Bad SIZE parameter");
				return -1;
			}
			if (size > s->set.max_message_size) {
				/* RFC 1870: refused before any data is sent. */
				smtp_reply(
					out,
					"552 5.3.4 Message size exceeds fixed maximum message size "
					"(%llu)",
					(unsigned long long)s->set.max_message_size);
				return -1;
			}
		} else if (ascii_strcasecmp(key, "BODY") == 0 && !have_body) {
			have_body = true;
			if (ascii_strcasecmp(value, "7BIT") != 0 &&
			    ascii_strcasecmp(value, "8BITMIME") != 0) {
				*ev_r = smtp_reply_bad(s, out, "501 5.5.4 Bad BODY parameter");
				return -1;
			}
		} else if (ascii_strcasecmp(key, "AUTH") == 0 && !have_auth && s->set.submission) {
			/* RFC 4954 5: accepted where AUTH is offered, and
			   ignored: the message is submitted by the login. */
			have_auth = true;
		} else {
			*ev_r = smtp_reply_bad(s, out, "555 5.5.4 Unsupported MAIL parameter %s",
					       key);
			return -1;
		}
	}
	*pp = p;
	return 0;
}

/* On a submission port: true if the reverse-path is the logged in user's
   own address (user@ a local domain; parsing lower-cased the domain). */
static bool
sender_is_own(const struct smtp_session *s, const struct smtp_path *path)
{
	return path->domain != NULL && s->set.domains != NULL &&
	       strlist_contains(s->set.domains, path->domain) && strcmp(path->user, s->user) == 0;
}

static enum smtp_event
cmd_mail(struct smtp_session *s, const char *args, struct buf *out)
{
	struct smtp_path path;
	const char *p;
	enum smtp_event ev;

	if (s->helo == NULL)
		return smtp_reply_bad(s, out, "503 5.5.1 Error: send HELO/EHLO first");
	if (s->in_txn)
		return smtp_reply_bad(s, out, "503 5.5.1 Error: nested MAIL command");
	if (s->set.submission && s->user == NULL) {
		/* RFC 6409 4.3: submission needs a login. */
		smtp_reply(out, "530 5.7.0 Authentication required");
		return SMTP_EVENT_NONE;
	}
	p = smtp_skip_prefix(args, "FROM:");
	if (p == NULL || *p != '<')
		return smtp_reply_bad(s, out, "501 5.5.4 Syntax: MAIL FROM:<address>");
	if (smtp_path_parse(&p, true, false, &path) < 0)
		return smtp_reply_bad(s, out, "501 5.1.7 Bad sender address syntax");
	if (mail_params(s, &p, out, &ev) < 0) {
		smtp_path_free(&path);
		return ev;
	}
	if (*p != '\0') {
		smtp_path_free(&path);
		return smtp_reply_bad(s, out, "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]");
	}
	if (s->set.submission && !sender_is_own(s, &path)) {
		/* RFC 6409 8.1: no sending as another user. */
		smtp_reply(out, "553 5.7.1 Sender address rejected: not owned by user %s", s->user);
		smtp_path_free(&path);
		return SMTP_EVENT_NONE;
	}
	s->in_txn = true;
	s->mail_from = path.addr;
	path.addr = NULL;
	smtp_path_free(&path);
	smtp_reply(out, "250 2.1.0 Ok");
	return SMTP_EVENT_NONE;
}

static enum smtp_event
cmd_rcpt(struct smtp_session *s, const char *args, struct buf *out)
{
	struct smtp_path path;
	const char *p;

	if (!s->in_txn)
		return smtp_reply_bad(s, out, "503 5.5.1 Error: need MAIL command");
	p = smtp_skip_prefix(args, "TO:");
	if (p == NULL || *p != '<')
		return smtp_reply_bad(s, out, "501 5.5.4 Syntax: RCPT TO:<address>");
	if (smtp_path_parse(&p, false, true, &path) < 0)
		return smtp_reply_bad(s, out, "501 5.1.3 Bad recipient address syntax");
	while (*p == ' ')
		p++;
	if (*p != '\0') {
		smtp_path_free(&path);
		return smtp_reply_bad(s, out, "555 5.5.4 RCPT parameters are not supported");
	}
	if (s->rcpt_count >= s->set.max_recipients) {
		smtp_path_free(&path);
		smtp_reply(out, "452 4.5.3 Error: too many recipients");
		return SMTP_EVENT_NONE;
	}
	if (path.domain == NULL) {
		/* "<postmaster>": the postmaster of the first local domain. */
		path.domain = xstrdup(s->set.domains != NULL && s->set.domains->count > 0 ?
					      s->set.domains->items[0] :
					      s->set.hostname);
	}
	if (s->set.domains == NULL || !strlist_contains(s->set.domains, path.domain)) {
		if (s->set.submission)
			smtp_reply(out, "550 5.7.1 Relaying denied: this server delivers to local "
					"users only");
		else
			smtp_reply(out, "550 5.7.1 <%s>: Relay access denied", path.addr);
		smtp_path_free(&path);
		return SMTP_EVENT_NONE;
	}
	if (!username_is_valid(path.user)) {
		smtp_reply(out, "550 5.1.1 <%s>: Recipient address rejected: User unknown",
			   path.addr);
		smtp_path_free(&path);
		return SMTP_EVENT_NONE;
	}
	if (strlist_contains(&s->rcpt_users, path.user)) {
		/* Already accepted: one copy is stored. */
		s->rcpt_count++;
		smtp_reply(out, "250 2.1.5 Ok");
		smtp_path_free(&path);
		return SMTP_EVENT_NONE;
	}
	s->pending_user = path.user;
	s->pending_path = path.addr;
	path.user = path.addr = NULL;
	smtp_path_free(&path);
	s->state = SMTP_ST_WAIT_RCPT;
	return SMTP_EVENT_RCPT;
}

/* The HELO name as it may appear in a Received comment. */
static void
append_safe(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		char c = *s;
		buf_append_c(out,
			     c > ' ' && c < 0x7f && c != '(' && c != ')' && c != '\\' && c != ';' ?
				     c :
				     '?');
	}
}

/* The "with" of the Received header (RFC 3848). */
static const char *
trace_protocol(const struct smtp_session *s)
{
	if (!s->esmtp)
		return "SMTP";
	if (s->user != NULL)
		return s->tls ? "ESMTPSA" : "ESMTPA";
	return s->tls ? "ESMTPS" : "ESMTP";
}

/* Return-Path and Received (RFC 5321 4.4), written when DATA starts. */
static void
write_trace_headers(struct smtp_session *s)
{
	char date[64];
	struct tm tm;
	time_t now = time(NULL);

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 +0000");
	snprintf(s->id, sizeof(s->id), "%s.%u", s->id_prefix, ++s->txn_count);
	buf_printf(&s->msg, "Return-Path: <%s>\r\n", s->mail_from);
	buf_append_str(&s->msg, "Received: from ");
	append_safe(&s->msg, s->helo);
	buf_append_str(&s->msg, " (");
	if (strchr(s->peer_ip, ':') != NULL)
		buf_append_str(&s->msg, "[IPv6:");
	else
		buf_append_c(&s->msg, '[');
	append_safe(&s->msg, s->peer_ip);
	buf_printf(&s->msg, "])\r\n\tby %s with %s id %s", s->set.hostname, trace_protocol(s),
		   s->id);
	if (s->rcpt_count == 1 && s->first_rcpt != NULL)
		buf_printf(&s->msg, "\r\n\tfor <%s>", s->first_rcpt);
	buf_printf(&s->msg, "; %s\r\n", date);
}

static enum smtp_event
cmd_data(struct smtp_session *s, const char *args, struct buf *out)
{
	if (!s->in_txn)
		return smtp_reply_bad(s, out, "503 5.5.1 Error: need MAIL command");
	if (*args != '\0')
		return smtp_reply_bad(s, out, "501 5.5.4 Syntax: DATA");
	if (s->rcpt_users.count == 0) {
		/* RFC 2920 3.1 / RFC 5321 3.3: the client pipelined DATA
		   after recipients that were all refused. */
		return smtp_reply_bad(s, out, "554 5.5.1 Error: no valid recipients");
	}
	write_trace_headers(s);
	s->data_size = 0;
	s->data_too_big = false;
	s->data_line_too_long = false;
	s->data_has_nul = false;
	/* The CRLF that ended DATA counts as the one before ".". */
	s->prev_crlf = true;
	s->state = SMTP_ST_DATA;
	smtp_reply(out, "354 End data with <CR><LF>.<CR><LF>");
	return SMTP_EVENT_NONE;
}

/* STARTTLS (RFC 3207): the reply and the reset come with
   smtp_session_starttls_answer(); the input behind the command is left
   unconsumed for the caller to drop. */
static enum smtp_event
cmd_starttls(struct smtp_session *s, const char *args, struct buf *out)
{
	if (*args != '\0')
		return smtp_reply_bad(s, out, "501 5.5.4 Syntax: STARTTLS");
	if (s->tls)
		return smtp_reply_bad(s, out, "503 5.5.1 Error: TLS already active");
	if (s->in_txn)
		return smtp_reply_bad(s, out, "503 5.5.1 Error: MAIL transaction in progress");
	s->state = SMTP_ST_WAIT_STARTTLS;
	return SMTP_EVENT_STARTTLS;
}

/* Known, and not implemented here (STARTTLS on a channel that cannot
   be TLS: no certificate; AUTH on a port that is not for submission). */
static const char *const smtp_unimplemented[] = {
	"EXPN", "STARTTLS", "AUTH", "BDAT", "ETRN", "TURN", "ATRN", "SEND", "SOML", "SAML",
};

/* The longest line (with its CRLF) the command in line may have: only
   MAIL may use the octets of its parameters, and AUTH those of its
   initial response (RFC 4954 4). */
static size_t
command_line_max(const char *line)
{
	if (ascii_strncasecmp(line, "MAIL ", 5) == 0)
		return SMTP_MAIL_LINE_MAX;
	if (ascii_strncasecmp(line, "AUTH ", 5) == 0)
		return SMTP_AUTH_LINE_MAX;
	return SMTP_CMD_LINE_MAX;
}

/* The command line in s->line (content_len octets, NUL-terminated). */
static enum smtp_event
smtp_command(struct smtp_session *s, size_t content_len, struct buf *out)
{
	char *line = s->line, *args;
	char verb[16];
	size_t vlen = 0;

	if (memchr(line, '\0', content_len) != NULL)
		return smtp_reply_bad(s, out, "500 5.5.2 Error: NUL octet in command");
	if (content_len + 2 > command_line_max(line))
		return smtp_reply_bad(s, out, "500 5.5.2 Error: line too long");
	while (line[vlen] != '\0' && line[vlen] != ' ') {
		if (vlen + 1 >= sizeof(verb))
			return smtp_reply_bad(s, out, "500 5.5.1 Error: command not recognized");
		verb[vlen] = line[vlen];
		vlen++;
	}
	verb[vlen] = '\0';
	if (vlen == 0)
		return smtp_reply_bad(s, out, "500 5.5.2 Error: bad syntax");
	args = line + vlen;
	while (*args == ' ')
		args++;
	/* Lenient about trailing blanks. */
	for (size_t n = strlen(args); n > 0 && (args[n - 1] == ' ' || args[n - 1] == '\t'); n--)
		args[n - 1] = '\0';

	if (ascii_strcasecmp(verb, "EHLO") == 0)
		return cmd_helo(s, "EHLO", args, true, out);
	if (ascii_strcasecmp(verb, "HELO") == 0)
		return cmd_helo(s, "HELO", args, false, out);
	if (ascii_strcasecmp(verb, "MAIL") == 0)
		return cmd_mail(s, args, out);
	if (ascii_strcasecmp(verb, "RCPT") == 0)
		return cmd_rcpt(s, args, out);
	if (ascii_strcasecmp(verb, "DATA") == 0)
		return cmd_data(s, args, out);
	if (ascii_strcasecmp(verb, "STARTTLS") == 0 && (s->set.starttls || s->tls))
		return cmd_starttls(s, args, out);
	if (ascii_strcasecmp(verb, "AUTH") == 0 && s->set.submission)
		return smtp_cmd_auth(s, args, out);
	if (ascii_strcasecmp(verb, "RSET") == 0) {
		if (*args != '\0')
			return smtp_reply_bad(s, out, "501 5.5.4 Syntax: RSET");
		smtp_txn_reset(s);
		smtp_reply(out, "250 2.0.0 Ok");
		return SMTP_EVENT_NONE;
	}
	if (ascii_strcasecmp(verb, "NOOP") == 0) {
		/* RFC 5321 4.1.1.9: a parameter string is allowed and ignored. */
		smtp_reply(out, "250 2.0.0 Ok");
		return SMTP_EVENT_NONE;
	}
	if (ascii_strcasecmp(verb, "QUIT") == 0) {
		if (*args != '\0')
			return smtp_reply_bad(s, out, "501 5.5.4 Syntax: QUIT");
		smtp_reply(out, "221 2.0.0 Bye");
		s->state = SMTP_ST_CLOSED;
		return SMTP_EVENT_CLOSE;
	}
	if (ascii_strcasecmp(verb, "VRFY") == 0) {
		if (*args == '\0')
			return smtp_reply_bad(s, out, "501 5.5.4 Syntax: VRFY address");
		/* RFC 5321 3.5.3: no address harvesting, but no refusal. */
		smtp_reply(out, "252 2.0.0 Cannot VRFY user, but will accept message and attempt "
				"delivery");
		return SMTP_EVENT_NONE;
	}
	if (ascii_strcasecmp(verb, "HELP") == 0) {
		smtp_reply(out,
			   "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
		return SMTP_EVENT_NONE;
	}
	for (size_t i = 0; i < N_ELEMENTS(smtp_unimplemented); i++) {
		if (ascii_strcasecmp(verb, smtp_unimplemented[i]) == 0) {
			smtp_reply(out, "502 5.5.1 Error: command not implemented");
			return SMTP_EVENT_NONE;
		}
	}
	return smtp_reply_bad(s, out, "500 5.5.1 Error: command not recognized");
}

/* A complete text line of DATA in s->line (content_len octets before
   its line end). */
static enum smtp_event
smtp_data_line(struct smtp_session *s, size_t content_len, bool stored_whole, struct buf *out)
{
	const char *text = s->line;
	bool crlf = s->line_crlf;

	if (stored_whole && s->prev_crlf && crlf && content_len == 1 && text[0] == '.') {
		/* CRLF . CRLF: the end of the data. */
		if (s->data_too_big) {
			smtp_reply(out,
				   "552 5.3.4 Error: message exceeds fixed maximum message size "
				   "(%llu); not stored",
				   (unsigned long long)s->set.max_message_size);
			smtp_txn_reset(s);
			s->state = SMTP_ST_COMMAND;
			return SMTP_EVENT_NONE;
		}
		if (s->data_line_too_long) {
			smtp_reply(out,
				   "554 5.6.0 Error: message has a line longer than %d octets; "
				   "not stored",
				   SMTP_TEXT_LINE_MAX);
			smtp_txn_reset(s);
			s->state = SMTP_ST_COMMAND;
			return SMTP_EVENT_NONE;
		}
		if (s->data_has_nul) {
			smtp_reply(out,
				   "554 5.6.0 Error: message contains a NUL octet; not stored");
			smtp_txn_reset(s);
			s->state = SMTP_ST_COMMAND;
			return SMTP_EVENT_NONE;
		}
		s->state = SMTP_ST_WAIT_DELIVER;
		return SMTP_EVENT_DELIVER;
	}
	s->prev_crlf = crlf;
	/* 1000 octets with the CRLF (a bare LF counts as a CRLF). */
	if (!stored_whole || content_len + 2 > SMTP_TEXT_LINE_MAX) {
		s->data_line_too_long = true;
		buf_free(&s->msg);
		return SMTP_EVENT_NONE;
	}
	/* Dot-unstuffing; a lone "." that did not end the data (bare LF
	   around it) is kept as it is. */
	if (content_len > 1 && text[0] == '.') {
		text++;
		content_len--;
	}
	s->data_size += content_len + 2;
	if (s->data_size > s->set.max_message_size)
		s->data_too_big = true;
	/* RFC 3501 allows no NUL in the IMAP literal it would be read
	   through, RFC 5322 none in a message. */
	if (memchr(text, '\0', content_len) != NULL)
		s->data_has_nul = true;
	if (s->data_too_big || s->data_line_too_long || s->data_has_nul) {
		/* Counted, not kept: the message will be refused. */
		buf_free(&s->msg);
		return SMTP_EVENT_NONE;
	}
	buf_append(&s->msg, text, content_len);
	buf_append(&s->msg, "\r\n", 2);
	return SMTP_EVENT_NONE;
}

/* Adds the octets of data up to and including the next LF to the current
   line (storing at most cap of the line). Sets *used_r; returns true
   once the line is complete. */
static bool
take_line(struct smtp_session *s, const char *data, size_t len, size_t cap, size_t *used_r)
{
	const char *lf = memchr(data, '\n', len);
	size_t n = lf != NULL ? (size_t)(lf - data) + 1 : len;
	size_t room = cap > s->line_len ? cap - s->line_len : 0;
	size_t copy = n < room ? n : room;

	memcpy(s->line + s->line_len, data, copy);
	s->line_len += copy;
	s->line_total += n;
	*used_r = n;
	if (lf == NULL) {
		s->last_was_cr = n > 0 ? data[n - 1] == '\r' : s->last_was_cr;
		return false;
	}
	s->line_crlf = n >= 2 ? data[n - 2] == '\r' : s->last_was_cr;
	s->last_was_cr = false;
	return true;
}

enum smtp_event
smtp_session_feed(struct smtp_session *s, const char *data, size_t len, size_t *consumed_r,
		  struct buf *out)
{
	enum smtp_event ev = SMTP_EVENT_NONE;
	size_t pos = 0;

	*consumed_r = 0;
	switch (s->state) {
	case SMTP_ST_WAIT_RCPT:
		return SMTP_EVENT_RCPT;
	case SMTP_ST_WAIT_DELIVER:
		return SMTP_EVENT_DELIVER;
	case SMTP_ST_WAIT_STARTTLS:
		return SMTP_EVENT_STARTTLS;
	case SMTP_ST_WAIT_AUTH:
		return SMTP_EVENT_AUTH;
	case SMTP_ST_CLOSED:
		return SMTP_EVENT_CLOSE;
	case SMTP_ST_COMMAND:
	case SMTP_ST_DATA:
	case SMTP_ST_AUTH:
		break;
	}
	/* Bounded: every round consumes at least one octet or stops. */
	while (pos < len && ev == SMTP_EVENT_NONE) {
		bool data_mode = s->state == SMTP_ST_DATA;
		/* A command's own limit is checked once its verb is known. */
		size_t cap = data_mode ? SMTP_TEXT_LINE_MAX + 2 : SMTP_LINE_BUF;
		size_t used, content_len;
		bool whole;

		if (!take_line(s, data + pos, len - pos, cap, &used)) {
			pos += used;
			break;
		}
		pos += used;
		/* The line as seen (not as stored) decides its length. */
		content_len = (size_t)(s->line_total - 1 - (s->line_crlf ? 1 : 0));
		whole = s->line_total <= cap;
		if (whole)
			s->line[content_len] = '\0';
		if (data_mode) {
			ev = smtp_data_line(s, content_len, whole, out);
		} else if (s->state == SMTP_ST_AUTH) {
			ev = smtp_auth_response(s, content_len, whole, out);
		} else if (!whole) {
			/* It may have been an AUTH with a password. */
			explicit_bzero(s->line, sizeof(s->line));
			ev = smtp_reply_bad(s, out, "500 5.5.2 Error: line too long");
		} else {
			ev = smtp_command(s, content_len, out);
		}
		s->line_len = 0;
		s->line_total = 0;
	}
	*consumed_r = pos;
	return ev;
}

const char *
smtp_session_rcpt_user(const struct smtp_session *s)
{
	return s->state == SMTP_ST_WAIT_RCPT ? s->pending_user : NULL;
}

void
smtp_session_rcpt_answer(struct smtp_session *s, enum smtp_rcpt_answer answer, struct buf *out)
{
	if (s->state != SMTP_ST_WAIT_RCPT)
		return;
	s->state = SMTP_ST_COMMAND;
	switch (answer) {
	case SMTP_RCPT_OK:
		strlist_add_take(&s->rcpt_users, s->pending_user);
		s->pending_user = NULL;
		if (s->first_rcpt == NULL) {
			s->first_rcpt = s->pending_path;
			s->pending_path = NULL;
		}
		s->rcpt_count++;
		smtp_reply(out, "250 2.1.5 Ok");
		break;
	case SMTP_RCPT_UNKNOWN:
		smtp_reply(out, "550 5.1.1 <%s>: Recipient address rejected: User unknown",
			   s->pending_path);
		break;
	case SMTP_RCPT_FULL:
		smtp_reply(out, "452 4.2.2 <%s>: Mailbox full", s->pending_path);
		break;
	case SMTP_RCPT_TEMPFAIL:
	default:
		smtp_reply(out,
			   "451 4.3.0 <%s>: Temporary failure looking up the recipient; "
			   "try again later",
			   s->pending_path);
		break;
	}
	free(s->pending_user);
	free(s->pending_path);
	s->pending_user = s->pending_path = NULL;
}

const char *
smtp_session_message(const struct smtp_session *s, size_t *len_r)
{
	*len_r = s->msg.len;
	return s->msg.data != NULL ? s->msg.data : "";
}

const struct strlist *
smtp_session_recipients(const struct smtp_session *s)
{
	return &s->rcpt_users;
}

const char *
smtp_session_mail_from(const struct smtp_session *s)
{
	return s->mail_from != NULL ? s->mail_from : "";
}

const char *
smtp_session_message_id(const struct smtp_session *s)
{
	return s->id;
}

void
smtp_session_deliver_answer(struct smtp_session *s, enum smtp_deliver_result result,
			    struct buf *out)
{
	if (s->state != SMTP_ST_WAIT_DELIVER)
		return;
	switch (result) {
	case SMTP_DELIVER_OK:
		smtp_reply(out, "250 2.0.0 Ok: delivered as %s", s->id);
		break;
	case SMTP_DELIVER_NO_SPACE:
		smtp_reply(out, "452 4.3.1 Error: insufficient system storage; try again later");
		break;
	case SMTP_DELIVER_FULL:
		smtp_reply(out, "452 4.2.2 Error: mailbox full");
		break;
	case SMTP_DELIVER_TEMPFAIL:
	default:
		smtp_reply(out, "451 4.3.0 Error: local error in processing; try again later");
		break;
	}
	smtp_txn_reset(s);
	s->state = SMTP_ST_COMMAND;
}

void
smtp_session_starttls_answer(struct smtp_session *s, struct buf *out)
{
	if (s->state != SMTP_ST_WAIT_STARTTLS)
		return;
	smtp_reply(out, "220 2.0.0 Ready to start TLS");
	/* RFC 3207 4.2: forget what the client said in clear. */
	smtp_txn_reset(s);
	smtp_auth_forget(s);
	free(s->user);
	s->user = NULL;
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	s->tls = true;
	s->state = SMTP_ST_COMMAND;
}

bool
smtp_session_is_tls(const struct smtp_session *s)
{
	return s->tls;
}

bool
smtp_session_in_data(const struct smtp_session *s)
{
	return s->state == SMTP_ST_DATA;
}

void
smtp_session_timeout(struct smtp_session *s, struct buf *out)
{
	if (s->state == SMTP_ST_CLOSED)
		return;
	smtp_reply(out, "421 4.4.2 %s Error: timeout exceeded", s->set.hostname);
	s->state = SMTP_ST_CLOSED;
}
