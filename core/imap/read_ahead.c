/* read_ahead.c: the messages a command is about to read, read ahead in
   a job (mailbox_read_start()) on a backend whose reads are round trips;
   the command waits for each batch, the loop serves the others. */
#include "imap_cmd.h"
#include "imap_client.h"

#include <stdlib.h>

static void
read_ahead_done(void *ctx)
{
	struct read_ahead *ra = ctx;
	struct client_command *cmd = ra->cmd;

	ra->ready = true;
	cmd->output = ra->output;
	client_resume(cmd->c);
}

bool
read_ahead_start(struct read_ahead *ra, struct client_command *cmd, const struct mail_rec *recs,
		 size_t count, size_t end, bool (*output)(struct client_command *cmd))
{
	struct client *c = cmd->c;

	mailbox_read_free(&ra->op);
	ra->ready = false;
	ra->count = ra->next = 0;
	ra->end = end;
	ra->cmd = cmd;
	ra->output = output;
	ra->op = mailbox_read_start(c->mbox, recs, count, read_ahead_done, ra, c->sid);
	if (ra->op == NULL)
		return false;   /* read one by one, as without */
	ra->uids = xrealloc(ra->uids, count * sizeof(*ra->uids));
	for (size_t i = 0; i < count; i++)
		ra->uids[i] = recs[i].uid;
	ra->count = count;
	cmd->output = NULL;
	return true;
}

bool
read_ahead_waiting(const struct read_ahead *ra)
{
	return ra->op != NULL && !ra->ready;
}

int
read_ahead_read(struct read_ahead *ra, struct client *c, const struct mail_rec *rec,
		struct buf *out, enum storage_error *err_r)
{
	for (size_t i = ra->next; ra->ready && i < ra->count; i++) {
		if (ra->uids[i] == rec->uid) {
			ra->next = i + 1;
			return mailbox_read_take(ra->op, i, out, err_r);
		}
	}
	return mailbox_read(c->mbox, rec, out, err_r, c->sid);
}

void
read_ahead_free(struct read_ahead *ra)
{
	mailbox_read_free(&ra->op);
	free(ra->uids);
	ra->uids = NULL;
	ra->count = ra->next = 0;
}
