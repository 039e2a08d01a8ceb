/* cmd_quota.c: QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT and SETQUOTA, and
   the check APPEND, COPY and MOVE make before writing. One root "" per
   user covers all the user's mailboxes; the limits come from the config,
   so SETQUOTA is refused (RFC 9208 4.1.3 lets a server do so). */
#include "imap_cmd.h"
#include "imap_client.h"
#include "config.h"
#include "mailbox.h"
#include "quota.h"

#include <stdlib.h>

static void
quota_limits_get(const struct client *c, struct quota_limits *limits_r)
{
	limits_r->storage_kib = c->gen->cfg->quota_storage_kib;
	limits_r->messages = c->gen->cfg->quota_messages;
}

static bool
quota_limited(const struct quota_limits *limits)
{
	return limits->storage_kib != 0 || limits->messages != 0;
}

/* Writes "* QUOTA "" (...)" with each limited resource. */
static void
quota_write(struct client *c, const struct quota_limits *limits, const struct quota_usage *usage)
{
	struct buf *out = client_outbuf(c);
	const char *sep = "";

	buf_append_str(out, "* QUOTA \"\" (");
	if (limits->storage_kib != 0) {
		buf_printf(out, "STORAGE %llu %llu", (unsigned long long)quota_usage_kib(usage),
			   (unsigned long long)limits->storage_kib);
		sep = " ";
	}
	if (limits->messages != 0)
		buf_printf(out, "%sMESSAGE %llu %llu", sep, (unsigned long long)usage->messages,
			   (unsigned long long)limits->messages);
	buf_append_str(out, ")\r\n");
}

/* GETQUOTA root (RFC 9208 4.2.1): only "" exists, and only with a limit. */
bool
cmd_getquota(struct client_command *cmd)
{
	struct client *c = cmd->c;
	struct quota_limits limits;
	struct quota_usage usage;
	enum storage_error err;
	const char *root = cmd->count == 1 ? cmd_arg_str(cmd, 0) : NULL;

	if (root == NULL)
		return cmd_bad(cmd, "GETQUOTA needs a quota root.");
	quota_limits_get(c, &limits);
	if (root[0] != '\0' || !quota_limited(&limits)) {
		cmd_tagged(cmd, "NO [NONEXISTENT] No such quota root.");
		return true;
	}
	if (quota_user_usage(c->gen->hub, &c->gen->storage, c->sid, c->user, &usage, &err) < 0) {
		cmd_no_storage(cmd, err);
		return true;
	}
	quota_write(c, &limits, &usage);
	cmd_tagged(cmd, "OK Getquota completed.");
	return true;
}

/* GETQUOTAROOT mailbox (RFC 9208 4.2.2): the mailbox must exist; its
   root is "" when a limit is set, else it has none. */
bool
cmd_getquotaroot(struct client_command *cmd)
{
	struct client *c = cmd->c;
	struct quota_limits limits;
	struct quota_usage usage;
	struct mailbox *mbox;
	enum storage_error err;
	struct buf *out;
	char *name;

	if (cmd->count != 1)
		return cmd_bad(cmd, "GETQUOTAROOT needs a mailbox.");
	if ((name = cmd_arg_mailbox(cmd, 0)) == NULL)
		return true;
	if (mailbox_open(c->gen->hub, c->sid, c->user, name, &mbox, &err) < 0) {
		cmd_no_storage(cmd, err);
		free(name);
		return true;
	}
	mailbox_unref(&mbox);
	quota_limits_get(c, &limits);
	if (quota_limited(&limits) &&
	    quota_user_usage(c->gen->hub, &c->gen->storage, c->sid, c->user, &usage, &err) < 0) {
		cmd_no_storage(cmd, err);
		free(name);
		return true;
	}
	out = client_outbuf(c);
	buf_append_str(out, "* QUOTAROOT ");
	cmd_write_mailbox_name(c, out, name);
	if (quota_limited(&limits)) {
		buf_append_str(out, " \"\"\r\n");
		quota_write(c, &limits, &usage);
	} else
		buf_append_str(out, "\r\n");
	free(name);
	cmd_tagged(cmd, "OK Getquotaroot completed.");
	return true;
}

/* SETQUOTA root (list): the limits are the administrator's (config). */
bool
cmd_setquota(struct client_command *cmd)
{
	if (cmd->count != 2 || cmd_arg_str(cmd, 0) == NULL || cmd->args[1].type != IMAP_ARG_LIST)
		return cmd_bad(cmd, "SETQUOTA needs a quota root and a list of limits.");
	cmd_tagged(cmd, "NO [NOPERM] Quota limits are set by the server's configuration.");
	return true;
}

int
cmd_quota_check(struct client_command *cmd, uint64_t add_octets, uint64_t add_messages)
{
	struct client *c = cmd->c;
	struct quota_limits limits;
	struct quota_usage usage;
	enum storage_error err;

	quota_limits_get(c, &limits);
	if (!quota_limited(&limits) || (add_octets == 0 && add_messages == 0))
		return 0;
	if (quota_user_usage(c->gen->hub, &c->gen->storage, c->sid, c->user, &usage, &err) < 0) {
		cmd_no_storage(cmd, err);
		return -1;
	}
	if (!quota_allows(&limits, &usage, add_octets, add_messages)) {
		cmd_tagged(cmd, "NO [OVERQUOTA] Quota exceeded.");
		return -1;
	}
	return 0;
}
