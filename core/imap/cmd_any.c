/* cmd_any.c: the commands valid in any state (RFC 3501 6.1: CAPABILITY,
   NOOP, LOGOUT), ID (RFC 2971) and ENABLE (RFC 5161). */
#include "imap_cmd.h"
#include "imap_client.h"
#include "imap_util.h"

/* LITERAL- is not listed: RFC 7888 forbids advertising it next to
   LITERAL+, which allows more (non-synchronizing literals of any size).
   IMAP4rev2 (RFC 9051) beside IMAP4rev1: a client turns it on with ENABLE
   IMAP4rev2 (appendix A); what it folds in is advertised by name too. */
#define CAPS_COMMON "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS " \
		    "CHILDREN MOVE LIST-EXTENDED SPECIAL-USE ESEARCH CONDSTORE QRESYNC SORT " \
		    "SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES MULTIAPPEND STATUS=SIZE " \
		    "LIST-STATUS SEARCHRES BINARY NOTIFY QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE " \
		    "OBJECTID UIDONLY"

/* Before login: STARTTLS while the channel is clear and a certificate
   is configured; AUTH=PLAIN where a password may be sent, LOGINDISABLED
   where it may not (RFC 3501 6.2.3, 7.2.1; RFC 9051 does the same). */
const char *
imap_capabilities(const struct client *c)
{
	bool starttls = !c->tls && c->gen->tls != NULL;

	/* COMPRESS is offered after login only, as Dovecot does: a client
	   that has not logged in costs no zlib memory. */
	if (c->state != CLIENT_NOT_AUTH)
		return CAPS_COMMON " COMPRESS=DEFLATE";
	if (client_plaintext_allowed(c))
		return starttls ? CAPS_COMMON " STARTTLS AUTH=PLAIN" : CAPS_COMMON " AUTH=PLAIN";
	return starttls ? CAPS_COMMON " STARTTLS LOGINDISABLED" : CAPS_COMMON " LOGINDISABLED";
}

bool
cmd_capability(struct client_command *cmd)
{
	client_send(cmd->c, "* CAPABILITY %s", imap_capabilities(cmd->c));
	cmd_tagged(cmd, "OK Capability completed.");
	return true;
}

bool
cmd_noop(struct client_command *cmd)
{
	cmd_tagged(cmd, "OK %s completed.", cmd->name);
	return true;
}

bool
cmd_logout(struct client_command *cmd)
{
	struct client *c = cmd->c;

	client_send(c, "* BYE Logging out.");
	cmd_tagged(cmd, "OK Logout completed.");
	c->state = CLIENT_LOGOUT;
	c->closing = true;
	if (c->close_reason == NULL)
		c->close_reason = xstrdup("logged out");
	return true;
}

bool
cmd_id(struct client_command *cmd)
{
	if (cmd->count != 1 || (cmd->args[0].type != IMAP_ARG_NIL &&
				cmd->args[0].type != IMAP_ARG_LIST))
		return cmd_bad(cmd, "ID needs a parameter list or NIL.");
	client_send(cmd->c, "* ID (\"name\" \"imapserver\" \"version\" \"0.1\")");
	cmd_tagged(cmd, "OK ID completed.");
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
				    imap_modseq(mailbox_state(c->mbox)->highest_modseq));
	}
}

bool
cmd_enable(struct client_command *cmd)
{
	struct client *c = cmd->c;
	bool condstore = false, qresync = false, rev2 = false, uidonly = false;

	if (cmd->count == 0)
		return cmd_bad(cmd, "ENABLE needs capability names.");
	for (size_t i = 0; i < cmd->count; i++) {
		if (cmd->args[i].type != IMAP_ARG_ATOM)
			return cmd_bad(cmd, "ENABLE needs capability names.");
		if (ascii_strcasecmp(cmd->args[i].str, "CONDSTORE") == 0)
			condstore = true;
		else if (ascii_strcasecmp(cmd->args[i].str, "QRESYNC") == 0)
			qresync = true;
		else if (ascii_strcasecmp(cmd->args[i].str, "IMAP4rev2") == 0)
			rev2 = true;
		else if (ascii_strcasecmp(cmd->args[i].str, "UIDONLY") == 0)
			uidonly = true;
		/* RFC 5161: unknown names are ignored. */
	}
	/* ENABLED lists what this command turned on. */
	bool new_condstore = (condstore || qresync) && !c->condstore;
	bool new_qresync = qresync && !c->qresync;
	bool new_rev2 = rev2 && !c->rev2;
	bool new_uidonly = uidonly && !c->uidonly;
	if (condstore || qresync)
		client_enable_condstore(c, qresync);
	if (rev2) {
		/* From here on (RFC 9051 appendix A); a selected mailbox's
		   view follows at once. */
		c->rev2 = true;
		if (c->view != NULL)
			c->view->rev2 = true;
	}
	if (uidonly) {
		/* RFC 9586 3: from here on, the selected mailbox too. */
		c->uidonly = true;
		if (c->view != NULL)
			c->view->uidonly = true;
	}
	client_send(c, "* ENABLED%s%s%s%s", new_condstore && condstore ? " CONDSTORE" : "",
		    new_qresync ? " QRESYNC" : "", new_rev2 ? " IMAP4rev2" : "",
		    new_uidonly ? " UIDONLY" : "");
	cmd_tagged(cmd, "OK Enabled.");
	return true;
}
