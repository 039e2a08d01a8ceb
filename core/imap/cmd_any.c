/* cmd_any.c: the commands valid in any state (RFC 3501 6.1: CAPABILITY,
   NOOP, LOGOUT), ID (RFC 2971) and ENABLE (RFC 5161). */
#include "imap_cmd.h"

/* LITERAL- is not listed: RFC 7888 forbids advertising it next to
   LITERAL+, which allows more (non-synchronizing literals of any size). */
#define CAPS_COMMON "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS " \
		    "CHILDREN MOVE LIST-EXTENDED SPECIAL-USE ESEARCH CONDSTORE QRESYNC"

const char *
imap_capabilities(const struct client *c)
{
	if (c->state == CLIENT_NOT_AUTH)
		return CAPS_COMMON " AUTH=PLAIN";
	return CAPS_COMMON;
}

bool
cmd_capability(struct cmd_ctx *ctx)
{
	client_send(ctx->c, "* CAPABILITY %s", imap_capabilities(ctx->c));
	cmd_tagged(ctx, "OK Capability completed.");
	return true;
}

bool
cmd_noop(struct cmd_ctx *ctx)
{
	cmd_tagged(ctx, "OK %s completed.", ctx->name);
	return true;
}

bool
cmd_logout(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;

	client_send(c, "* BYE Logging out.");
	cmd_tagged(ctx, "OK Logout completed.");
	c->state = CLIENT_LOGOUT;
	c->closing = true;
	if (c->close_reason == NULL)
		c->close_reason = xstrdup("logged out");
	return true;
}

bool
cmd_id(struct cmd_ctx *ctx)
{
	if (ctx->count != 1 || (ctx->args[0].type != IMAP_ARG_NIL &&
				ctx->args[0].type != IMAP_ARG_LIST))
		return cmd_bad(ctx, "ID needs a parameter list or NIL.");
	client_send(ctx->c, "* ID (\"name\" \"imapserver\" \"version\" \"0.1\")");
	cmd_tagged(ctx, "OK ID completed.");
	return true;
}

/* Turns CONDSTORE (and with qresync QRESYNC) on for the rest of the
   connection. The first CONDSTORE enabling command with a mailbox
   selected announces its HIGHESTMODSEQ (RFC 7162 3.1). */
void
client_enable_condstore(struct client *c, bool qresync)
{
	bool was = c->condstore;

	c->condstore = true;
	if (qresync)
		c->qresync = true;
	if (c->view != NULL) {
		c->view->condstore = true;
		c->view->qresync = c->qresync;
		if (!was)
			client_send(c, "* OK [HIGHESTMODSEQ %llu] Highest",
				    (unsigned long long)mailbox_state(c->mbox)->highest_modseq);
	}
}

bool
cmd_enable(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	bool condstore = false, qresync = false;

	if (ctx->count == 0)
		return cmd_bad(ctx, "ENABLE needs capability names.");
	for (size_t i = 0; i < ctx->count; i++) {
		if (ctx->args[i].type != IMAP_ARG_ATOM)
			return cmd_bad(ctx, "ENABLE needs capability names.");
		if (ascii_strcasecmp(ctx->args[i].str, "CONDSTORE") == 0)
			condstore = true;
		else if (ascii_strcasecmp(ctx->args[i].str, "QRESYNC") == 0)
			qresync = true;
		/* RFC 5161: unknown names are ignored. */
	}
	/* ENABLED lists what this command turned on. */
	bool new_condstore = (condstore || qresync) && !c->condstore;
	bool new_qresync = qresync && !c->qresync;
	if (condstore || qresync)
		client_enable_condstore(c, qresync);
	client_send(c, "* ENABLED%s%s", new_condstore && condstore ? " CONDSTORE" : "",
		    new_qresync ? " QRESYNC" : "");
	cmd_tagged(ctx, "OK Enabled.");
	return true;
}
