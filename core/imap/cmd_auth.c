/* cmd_auth.c: the commands of the not authenticated state (RFC 3501
   6.2: STARTTLS, AUTHENTICATE, LOGIN). A login is checked without
   blocking the loop and a failure answered after a delay. */
#include "imap_cmd.h"
#include "base64.h"
#include "log.h"

#include <stdlib.h>

static void
login_delay_done(void *context)
{
	struct client *c = context;

	c->delay_timer = NULL;
	client_send_tagged(c, c->wait_tag, "NO [AUTHENTICATIONFAILED] Authentication failed.");
	free(c->wait_tag);
	c->wait_tag = NULL;
	if (++c->auth_failures >= 3)
		client_disconnect(c, "Too many authentication failures.");
	client_resume(c);
}

/* A user who has no mailbox but INBOX (a new user) gets the special-use
   mailboxes (RFC 6154), subscribed. Failures are logged by the storage
   wrappers and do not stop the login. */
static void
create_special_use(struct client *c)
{
	struct strlist names = { 0 }, subs = { 0 };
	enum storage_error err;
	bool created = false;

	if (storage_list(&c->gen->storage, c->sid, c->user, &names, &err) < 0 ||
	    names.count > 1 || (names.count == 1 && strcmp(names.items[0], "INBOX") != 0)) {
		strlist_clear(&names);
		return;
	}
	if (storage_subscriptions_read(&c->gen->storage, c->sid, c->user, &subs) < 0) {
		strlist_clear(&names);
		return;
	}
	for (size_t i = 0; i < special_use_count; i++) {
		if (storage_create(&c->gen->storage, c->sid, c->user, special_use[i].name, &err) < 0 &&
		    err != STORAGE_ERR_EXISTS)
			continue;
		if (!strlist_contains(&subs, special_use[i].name)) {
			strlist_add(&subs, special_use[i].name);
			created = true;
		}
	}
	if (created)
		(void)storage_subscriptions_write(&c->gen->storage, c->sid, c->user, &subs);
	strlist_clear(&names);
	strlist_clear(&subs);
}

static void
login_checked(enum auth_result res, void *context)
{
	struct client *c = context;

	c->auth_req = NULL;
	switch (res) {
	case AUTH_OK:
		free(c->user);
		c->user = c->pending_user;
		c->pending_user = NULL;
		c->state = CLIENT_AUTH;
		c->auth_failures = 0;
		create_special_use(c);
		client_send_tagged(c, c->wait_tag, "OK [CAPABILITY %s] Logged in.",
				   imap_capabilities(c));
		break;
	case AUTH_TEMPFAIL:
		client_send_tagged(c, c->wait_tag,
				   "NO [UNAVAILABLE] Authentication service unavailable.");
		break;
	case AUTH_FAIL:
		/* Answered after the delay, held by a timer: the other
		   sessions go on meanwhile. */
		free(c->pending_user);
		c->pending_user = NULL;
		c->delay_timer = event_timer_add(c->server->loop, c->gen->cfg->auth_fail_delay_ms,
						 login_delay_done, c);
		return;
	}
	free(c->pending_user);
	c->pending_user = NULL;
	free(c->wait_tag);
	c->wait_tag = NULL;
	client_resume(c);
}

/* Starts checking the password; the answer comes from login_checked(),
   so a slow backend never holds up the loop. Input waits meanwhile. */
static bool
do_login(struct client *c, const char *tag, const char *user, const char *password)
{
	free(c->wait_tag);
	c->wait_tag = xstrdup(tag);
	free(c->pending_user);
	c->pending_user = xstrdup(user);
	c->mode = MODE_DELAY;
	c->auth_req = auth_verify_start(&c->gen->auth, c->server->loop, c->sid, user, password,
					login_checked, c);
	return false;
}

bool
cmd_login(struct cmd_ctx *ctx)
{
	const char *user = cmd_arg_str(ctx, 0), *pass = cmd_arg_str(ctx, 1);

	if (user == NULL || pass == NULL || ctx->count != 2)
		return cmd_bad(ctx, "LOGIN needs a user name and a password.");
	return do_login(ctx->c, ctx->tag, user, pass);
}

/* SASL PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd. */
bool
cmd_auth_plain_response(struct client *c, const char *tag, const char *b64, size_t len)
{
	struct buf dec = BUF_INIT;
	const char *authzid, *authcid, *pass, *end;
	bool done = true;

	if (len == 1 && b64[0] == '*') {
		client_send_tagged(c, tag, "BAD Authentication aborted by client.");
		return true;
	}
	if ((len == 1 && b64[0] == '=') || base64_decode(b64, len, &dec) < 0 || dec.len == 0) {
		client_send_tagged(c, tag, "BAD Invalid base64 data in the SASL response.");
		buf_free(&dec);
		return true;
	}
	authzid = dec.data;
	end = dec.data + dec.len;
	authcid = memchr(authzid, '\0', dec.len);
	pass = authcid == NULL ? NULL : memchr(authcid + 1, '\0', (size_t)(end - authcid - 1));
	if (authcid == NULL || pass == NULL || memchr(pass + 1, '\0', (size_t)(end - pass - 1))) {
		client_send_tagged(c, tag, "BAD Invalid SASL PLAIN response.");
	} else {
		authcid++;
		pass++;
		if (*authzid != '\0' && strcmp(authzid, authcid) != 0)
			client_send_tagged(c, tag, "NO [AUTHORIZATIONFAILED] Authorization "
						   "identity differs from the login.");
		else
			done = do_login(c, tag, authcid, pass);
	}
	explicit_bzero(dec.data, dec.cap);
	buf_free(&dec);
	return done;
}

bool
cmd_authenticate(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	const char *mech = cmd_arg_str(ctx, 0);

	if (mech == NULL || ctx->count > 2)
		return cmd_bad(ctx, "AUTHENTICATE needs a mechanism name.");
	if (ascii_strcasecmp(mech, "PLAIN") != 0) {
		cmd_tagged(ctx, "NO [CANNOT] Unsupported authentication mechanism.");
		return true;
	}
	if (ctx->count == 2) {
		/* SASL-IR (RFC 4959). */
		const char *ir = cmd_arg_str(ctx, 1);
		if (ir == NULL)
			return cmd_bad(ctx, "Invalid initial response.");
		return cmd_auth_plain_response(c, ctx->tag, ir, strlen(ir));
	}
	free(c->wait_tag);
	c->wait_tag = xstrdup(ctx->tag);
	c->mode = MODE_AUTH_CONT;
	client_send(c, "+ ");
	return false;
}

bool
cmd_starttls(struct cmd_ctx *ctx)
{
	cmd_tagged(ctx, "NO [UNAVAILABLE] TLS is not available on this server.");
	return true;
}
