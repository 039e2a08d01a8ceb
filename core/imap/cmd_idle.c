/* cmd_idle.c: IDLE (RFC 2177). */
#include "imap_cmd.h"

#include <stdlib.h>

bool
cmd_idle(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;

	free(c->wait_tag);
	c->wait_tag = xstrdup(ctx->tag);
	c->mode = MODE_IDLE;
	client_send(c, "+ idling");
	if (c->mbox != NULL)
		(void)mailbox_refresh(c->mbox, c->sid);
	client_sync_view(c, true);
	return false;
}
