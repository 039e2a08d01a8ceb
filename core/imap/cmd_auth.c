/* cmd_auth.c: the commands of the not authenticated state (RFC 3501
   6.2: STARTTLS, AUTHENTICATE, LOGIN). A login is checked without
   blocking the loop and a failure answered after a delay. */
#include "imap_cmd.h"
#include "imap_client.h"
#include "base64.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>

/* The context of a LOGIN or AUTHENTICATE whose password is being
   checked, or whose failure is answered after a delay. */
struct login_context {
	char *user;                     /* the user being checked */
	struct auth_request *req;       /* the check, until it answers */
	struct event_timer *delay_timer;
	/* a new user's first mailboxes, made in a worker after the check */
	struct storage_call *setup;
};

static void login_setup_done(void *context);

static void
login_context_free(void *context)
{
	struct login_context *lc = context;

	auth_request_cancel(&lc->req);
	event_timer_remove(&lc->delay_timer);
	storage_call_free(&lc->setup);
	free(lc->user);
	free(lc);
}

static void
login_delay_done(void *context)
{
	struct client_command *cmd = context;
	struct login_context *lc = cmd->context;
	struct client *c = cmd->c;

	lc->delay_timer = NULL;
	cmd_tagged(cmd, "NO [AUTHENTICATIONFAILED] Authentication failed.");
	if (++c->auth_failures >= 3)
		client_disconnect(c, "Too many authentication failures.");
	client_command_finish(cmd);
}

/* A user who has no mailbox but INBOX (a new user) gets the special-use
   mailboxes (RFC 6154), subscribed: made in a worker with a store whose
   calls are round trips (then true: the login is answered once they are
   made, by login_setup_done()), else now. Failures are logged by the
   storage wrappers and do not stop the login. */
static bool
create_special_use(struct client_command *cmd, struct login_context *lc)
{
	struct client *c = cmd->c;
	struct strlist names = { 0 };
	struct storage_call_args a = { .kind = STORAGE_CALL_FIRST_MAILBOXES, .subs = &names };

	for (size_t i = 0; i < special_use_count; i++)
		strlist_add(&names, special_use[i].name);
	lc->setup = storage_call_start(&c->gen->storage, c->sid, c->user, &a, login_setup_done,
				       cmd);
	if (lc->setup == NULL)
		storage_first_mailboxes(&c->gen->storage, c->sid, c->user, &names);
	strlist_clear(&names);
	return lc->setup != NULL;
}

static void
login_ok(struct client_command *cmd)
{
	cmd_tagged(cmd, "OK [CAPABILITY %s] Logged in.", imap_capabilities(cmd->c));
}

static void
login_setup_done(void *context)
{
	struct client_command *cmd = context;
	struct login_context *lc = cmd->context;

	storage_call_free(&lc->setup);
	login_ok(cmd);
	client_command_finish(cmd);
}

static void
login_checked(enum auth_result res, void *context)
{
	struct client_command *cmd = context;
	struct login_context *lc = cmd->context;
	struct client *c = cmd->c;

	lc->req = NULL;
	switch (res) {
	case AUTH_OK:
		client_logged_in(c, lc->user);
		lc->user = NULL;
		c->auth_failures = 0;
		addr_login_succeeded(addr_penalties(), c->addr);
		if (create_special_use(cmd, lc))
			return;
		login_ok(cmd);
		break;
	case AUTH_TEMPFAIL:
		cmd_tagged(cmd, "NO [UNAVAILABLE] Authentication service unavailable.");
		break;
	case AUTH_FAIL:
		/* Answered after the delay, held by a timer: the other
		   sessions go on meanwhile. The delay grows with the
		   failures from the client's address, whatever connection
		   they came on (addr_table.h), so guessing in parallel
		   gains nothing. */
		free(lc->user);
		lc->user = NULL;
		lc->delay_timer = event_timer_add(c->server->loop,
						  addr_login_failed(addr_penalties(), c->addr,
								    c->gen->cfg->auth_fail_delay_ms),
						  login_delay_done, cmd);
		return;
	}
	client_command_finish(cmd);
}

/* The client's address without its port ("::1" of "::1:51234"). */
static const char *
client_peer_ip(const struct client *c, char *buf, size_t size)
{
	char *colon;

	snprintf(buf, size, "%s", c->peer);
	if ((colon = strrchr(buf, ':')) != NULL)
		*colon = '\0';
	return buf;
}

/* Starts checking the password; the answer comes from login_checked(),
   so a slow backend never holds up the loop. The command waits
   meanwhile (returns false), and no other command is read. */
static bool
do_login(struct client_command *cmd, const char *user, const char *password)
{
	struct client *c = cmd->c;
	struct login_context *lc = xcalloc(1, sizeof(*lc));
	char ip[sizeof(c->peer)];

	lc->user = xstrdup(user);
	cmd->context = lc;
	cmd->context_free = login_context_free;
	cmd->input = NULL;
	lc->req = auth_verify_start(&c->gen->auth, c->server->loop, c->sid,
				    client_peer_ip(c, ip, sizeof(ip)), user, password, login_checked,
				    cmd);
	return false;
}

/* A password is refused where auth.plaintext forbids it without TLS
   (the capability list says LOGINDISABLED there). Returns true after
   answering NO. */
static bool
login_refused_in_clear(struct client_command *cmd)
{
	struct client *c = cmd->c;

	if (client_plaintext_allowed(c))
		return false;
	log_info(c->sid, "refused a password sent without TLS");
	cmd_tagged(cmd, "NO [PRIVACYREQUIRED] Plaintext authentication is not allowed without "
			"TLS: use STARTTLS%s.",
		   c->gen->tls != NULL ? " or the TLS port" : " (not configured here)");
	return true;
}

bool
cmd_login(struct client_command *cmd)
{
	const char *user = cmd_arg_str(cmd, 0), *pass = cmd_arg_str(cmd, 1);

	if (user == NULL || pass == NULL || cmd->count != 2)
		return cmd_bad(cmd, "LOGIN needs a user name and a password.");
	if (login_refused_in_clear(cmd))
		return true;
	return do_login(cmd, user, pass);
}

/* SASL PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd. Returns as
   a handler: false while the login is checked. */
static bool
auth_plain_response(struct client_command *cmd, const char *b64, size_t len)
{
	struct buf dec = BUF_INIT;
	const char *authzid, *authcid, *pass, *end;
	bool done = true;

	if (len == 1 && b64[0] == '*') {
		cmd_tagged(cmd, "BAD Authentication aborted by client.");
		return true;
	}
	if ((len == 1 && b64[0] == '=') || base64_decode(b64, len, &dec) < 0 || dec.len == 0) {
		cmd_tagged(cmd, "BAD Invalid base64 data in the SASL response.");
		buf_free(&dec);
		return true;
	}
	authzid = dec.data;
	end = dec.data + dec.len;
	authcid = memchr(authzid, '\0', dec.len);
	pass = authcid == NULL ? NULL : memchr(authcid + 1, '\0', (size_t)(end - authcid - 1));
	if (authcid == NULL || pass == NULL || memchr(pass + 1, '\0', (size_t)(end - pass - 1))) {
		cmd_tagged(cmd, "BAD Invalid SASL PLAIN response.");
	} else {
		authcid++;
		pass++;
		if (*authzid != '\0' && strcmp(authzid, authcid) != 0)
			cmd_tagged(cmd, "NO [AUTHORIZATIONFAILED] Authorization "
					"identity differs from the login.");
		else
			done = do_login(cmd, authcid, pass);
	}
	explicit_bzero(dec.data, dec.cap);
	buf_free(&dec);
	return done;
}

/* The client's response line to the "+ " challenge. */
static bool
authenticate_input(struct client_command *cmd, const char *line, size_t len)
{
	cmd->input = NULL;
	/* A failed login is answered after the delay. */
	return auth_plain_response(cmd, line, len);
}

bool
cmd_authenticate(struct client_command *cmd)
{
	struct client *c = cmd->c;
	const char *mech = cmd_arg_str(cmd, 0);

	if (mech == NULL || cmd->count > 2)
		return cmd_bad(cmd, "AUTHENTICATE needs a mechanism name.");
	if (ascii_strcasecmp(mech, "PLAIN") != 0) {
		cmd_tagged(cmd, "NO [CANNOT] Unsupported authentication mechanism.");
		return true;
	}
	if (login_refused_in_clear(cmd))
		return true;
	if (cmd->count == 2) {
		/* SASL-IR (RFC 4959): "=" is an empty initial response, which
		   PLAIN answers with an empty challenge as if none was given. */
		const char *ir = cmd_arg_str(cmd, 1);
		if (ir == NULL)
			return cmd_bad(cmd, "Invalid initial response.");
		if (strcmp(ir, "=") != 0)
			return auth_plain_response(cmd, ir, strlen(ir));
	}
	cmd->input = authenticate_input;
	client_send(c, "+ ");
	return false;
}

/* RFC 3501 6.2.1: the tagged OK goes out in clear, then the TLS
   handshake starts; what the client pipelined behind the command is
   dropped (it was sent in clear), and the session starts afresh from
   the client's next command, inside TLS. */
bool
cmd_starttls(struct client_command *cmd)
{
	struct client *c = cmd->c;

	if (cmd->count != 0)
		return cmd_bad(cmd, "STARTTLS takes no arguments.");
	if (c->tls)
		return cmd_bad(cmd, "TLS is already active.");
	if (c->gen->tls == NULL) {
		cmd_tagged(cmd, "NO [UNAVAILABLE] TLS is not configured on this server.");
		return true;
	}
	cmd_tagged(cmd, "OK Begin TLS negotiation now.");
	client_start_tls(c);
	return true;
}
