/* cmd_idle.c: IDLE (RFC 2177). */
#include "imap_cmd.h"
#include "imap_client.h"

/* The line that ends IDLE. Mailbox changes were sent as they came
   (client_mailbox_notify). */
static bool
idle_input(struct client_command *cmd, const char *line, size_t len)
{
	if (len == 4 && ascii_strncasecmp(line, "DONE", 4) == 0)
		cmd_tagged(cmd, "OK Idle completed.");
	else
		cmd_tagged(cmd, "BAD Expected DONE.");
	return true;
}

bool
cmd_idle(struct client_command *cmd)
{
	struct client *c = cmd->c;
	enum storage_error err;

	cmd->input = idle_input;
	cmd->live_updates = true;
	client_send(c, "+ idling");
	if (c->mbox != NULL) {
		mbox_view_watch(c->view);
		(void)mailbox_refresh(c->mbox, &err, c->sid);
	}
	client_sync_view(c, true);
	return false;
}
