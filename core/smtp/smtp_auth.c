/* smtp_auth.c: AUTH (RFC 4954) for the SMTP engine, on the submission
   ports: the mechanisms PLAIN (RFC 4616) and LOGIN (the user name and
   the password in two base64 responses, as every mail client sends it).

   The engine only collects the user name and the password; the caller
   checks them (SMTP_EVENT_AUTH) and answers. Secrets are held no longer
   than needed: the line buffer that carried a response and the decoded
   octets are wiped once read, the password once the check is answered. */
#include "smtp.h"
#include "smtp_private.h"
#include "base64.h"

#include <stdlib.h>

/* RFC 4954 4: the server's challenges, base64 of "Username:" and
   "Password:" for LOGIN, empty for PLAIN. */
#define SMTP_AUTH_PROMPT_USER "334 VXNlcm5hbWU6"
#define SMTP_AUTH_PROMPT_PASS "334 UGFzc3dvcmQ6"

bool
smtp_auth_allowed(const struct smtp_session *s)
{
	return s->set.submission && (s->tls || s->set.plaintext_auth);
}

static void
wipe_free(char **p)
{
	if (*p == NULL)
		return;
	explicit_bzero(*p, strlen(*p));
	free(*p);
	*p = NULL;
}

void
smtp_auth_forget(struct smtp_session *s)
{
	wipe_free(&s->auth_pass);
	free(s->auth_user);
	s->auth_user = NULL;
}

/* The command or response line may have held a password. */
static void
wipe_line(struct smtp_session *s)
{
	explicit_bzero(s->line, sizeof(s->line));
}

/* Decodes a base64 response ("=" is the empty one) into dec, reserved
   beforehand so that no copy of a secret is left in freed memory.
   Returns 0, or -1 for bad base64. */
static int
auth_decode(const char *b64, size_t len, struct buf *dec)
{
	if (len == 1 && b64[0] == '=')
		len = 0;
	buf_reserve(dec, len + 1);
	return base64_decode(b64, len, dec);
}

static void
dec_wipe(struct buf *dec)
{
	if (dec->data != NULL)
		explicit_bzero(dec->data, dec->cap);
	buf_free(dec);
}

/* The exchange ends without a check (cancelled, bad input). */
static void
auth_abort(struct smtp_session *s)
{
	smtp_auth_forget(s);
	s->state = SMTP_ST_COMMAND;
}

/* The user name and password are complete: the caller checks them. */
static enum smtp_event
auth_complete(struct smtp_session *s)
{
	s->state = SMTP_ST_WAIT_AUTH;
	return SMTP_EVENT_AUTH;
}

/* PLAIN's response: [authzid] NUL authcid NUL passwd. */
static enum smtp_event
auth_plain(struct smtp_session *s, const struct buf *dec, struct buf *out)
{
	const char *authzid = dec->data, *end = dec->data + dec->len;
	const char *authcid, *pass;

	authcid = memchr(authzid, '\0', dec->len);
	pass = authcid == NULL ? NULL : memchr(authcid + 1, '\0', (size_t)(end - authcid - 1));
	if (authcid == NULL || pass == NULL ||
	    memchr(pass + 1, '\0', (size_t)(end - pass - 1)) != NULL) {
		auth_abort(s);
		return smtp_reply_bad(s, out, "501 5.5.2 Invalid PLAIN response");
	}
	authcid++;
	pass++;
	if (*authzid != '\0' && strcmp(authzid, authcid) != 0) {
		/* Acting as another user is not offered. */
		auth_abort(s);
		smtp_reply(out, "535 5.7.8 Authorization identity differs from the login");
		return SMTP_EVENT_NONE;
	}
	s->auth_user = xstrdup(authcid);
	s->auth_pass = xstrdup(pass);
	return auth_complete(s);
}

/* One decoded response, by the step of the exchange. */
static enum smtp_event
auth_step(struct smtp_session *s, const struct buf *dec, struct buf *out)
{
	switch (s->auth_step) {
	case SMTP_AUTH_STEP_PLAIN:
		return auth_plain(s, dec, out);
	case SMTP_AUTH_STEP_LOGIN_USER:
	case SMTP_AUTH_STEP_LOGIN_PASS:
		break;
	}
	if (memchr(dec->data, '\0', dec->len) != NULL) {
		auth_abort(s);
		return smtp_reply_bad(s, out, "501 5.5.2 Invalid LOGIN response");
	}
	if (s->auth_step == SMTP_AUTH_STEP_LOGIN_USER) {
		s->auth_user = xstrdup(dec->data);
		s->auth_step = SMTP_AUTH_STEP_LOGIN_PASS;
		s->state = SMTP_ST_AUTH;
		smtp_reply(out, SMTP_AUTH_PROMPT_PASS);
		return SMTP_EVENT_NONE;
	}
	s->auth_pass = xstrdup(dec->data);
	return auth_complete(s);
}

/* A base64 response (the initial one, or a line of the exchange). */
static enum smtp_event
auth_response(struct smtp_session *s, const char *b64, size_t len, struct buf *out)
{
	struct buf dec = BUF_INIT;
	enum smtp_event ev;

	if (len == 1 && b64[0] == '*') {
		auth_abort(s);
		smtp_reply(out, "501 5.7.0 Authentication aborted");
		return SMTP_EVENT_NONE;
	}
	if (auth_decode(b64, len, &dec) < 0) {
		dec_wipe(&dec);
		auth_abort(s);
		return smtp_reply_bad(s, out, "501 5.5.2 Cannot decode response");
	}
	ev = auth_step(s, &dec, out);
	dec_wipe(&dec);
	return ev;
}

enum smtp_event
smtp_auth_response(struct smtp_session *s, size_t content_len, bool stored_whole, struct buf *out)
{
	enum smtp_event ev;

	if (!stored_whole || content_len + 2 > SMTP_AUTH_LINE_MAX) {
		wipe_line(s);
		auth_abort(s);
		return smtp_reply_bad(s, out, "500 5.5.6 Authentication exchange line is too long");
	}
	ev = auth_response(s, s->line, content_len, out);
	wipe_line(s);
	return ev;
}

/* Why AUTH is out of sequence now (a 503 reply), or NULL. */
static const char *
cmd_auth_sequence_error(const struct smtp_session *s)
{
	if (s->helo == NULL)
		return "503 5.5.1 Error: send EHLO first";
	if (s->user != NULL)
		return "503 5.5.1 Error: already authenticated";
	if (s->in_txn)
		return "503 5.5.1 Error: MAIL transaction in progress";
	return NULL;
}

enum smtp_event
smtp_cmd_auth(struct smtp_session *s, const char *args, struct buf *out)
{
	const char *sp = strchr(args, ' '), *ir = NULL;
	size_t mech_len = sp != NULL ? (size_t)(sp - args) : strlen(args);
	const char *seq_error = cmd_auth_sequence_error(s);
	enum smtp_event ev = SMTP_EVENT_NONE;

	if (seq_error != NULL) {
		ev = smtp_reply_bad(s, out, "%s", seq_error);
		goto done;
	}
	if (sp != NULL) {
		ir = sp + 1;
		if (*ir == '\0' || strchr(ir, ' ') != NULL) {
			ev = smtp_reply_bad(s, out,
					    "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
			goto done;
		}
	}
	if (mech_len == 5 && ascii_strncasecmp(args, "PLAIN", 5) == 0) {
		s->auth_step = SMTP_AUTH_STEP_PLAIN;
	} else if (mech_len == 5 && ascii_strncasecmp(args, "LOGIN", 5) == 0) {
		s->auth_step = SMTP_AUTH_STEP_LOGIN_USER;
	} else if (mech_len == 0) {
		ev = smtp_reply_bad(s, out, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		goto done;
	} else {
		smtp_reply(out, "504 5.5.4 Unrecognized authentication type");
		goto done;
	}
	if (!smtp_auth_allowed(s)) {
		/* RFC 4954 6: the password must not cross in clear here. */
		smtp_reply(out, "538 5.7.11 Encryption required for requested authentication "
				"mechanism");
		goto done;
	}
	s->state = SMTP_ST_AUTH;
	if (ir != NULL) {
		ev = auth_response(s, ir, strlen(ir), out);
		goto done;
	}
	smtp_reply(out, "%s",
		   s->auth_step == SMTP_AUTH_STEP_PLAIN ? "334 " : SMTP_AUTH_PROMPT_USER);
done:
	wipe_line(s);
	return ev;
}

const char *
smtp_session_auth_user(const struct smtp_session *s)
{
	return s->state == SMTP_ST_WAIT_AUTH ? s->auth_user : NULL;
}

const char *
smtp_session_auth_password(const struct smtp_session *s)
{
	return s->state == SMTP_ST_WAIT_AUTH ? s->auth_pass : NULL;
}

enum smtp_event
smtp_session_auth_answer(struct smtp_session *s, enum smtp_auth_answer answer, struct buf *out)
{
	if (s->state != SMTP_ST_WAIT_AUTH)
		return SMTP_EVENT_NONE;
	s->state = SMTP_ST_COMMAND;
	switch (answer) {
	case SMTP_AUTH_OK:
		s->user = s->auth_user;
		s->auth_user = NULL;
		smtp_reply(out, "235 2.7.0 Authentication successful");
		break;
	case SMTP_AUTH_TEMPFAIL:
		smtp_reply(out, "454 4.7.0 Temporary authentication failure");
		break;
	case SMTP_AUTH_FAIL:
	default:
		smtp_reply(out, "535 5.7.8 Authentication credentials invalid");
		if (++s->auth_failures >= s->set.max_auth_failures) {
			smtp_auth_forget(s);
			smtp_reply(out, "421 4.7.0 %s Error: too many failed authentications",
				   s->set.hostname);
			s->state = SMTP_ST_CLOSED;
			return SMTP_EVENT_CLOSE;
		}
		break;
	}
	smtp_auth_forget(s);
	return SMTP_EVENT_NONE;
}

const char *
smtp_session_user(const struct smtp_session *s)
{
	return s->user;
}
