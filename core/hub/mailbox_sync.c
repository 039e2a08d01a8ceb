/* mailbox_sync.c: bringing an open mailbox in line with the changes
   other processes made (see mailbox.h, mailbox_refresh()). */
#include "mailbox.h"
#include "mailbox_private.h"
#include "log.h"
#include "mime.h"

#include <stdlib.h>

void
mailbox_sync_before(const struct mailbox *mbox, struct mailbox_sync_before *b)
{
	b->modseq = mbox->state.highest_modseq;
	b->gen = mbox->state.expunge_gen;
	b->uidnext = mbox->state.uidnext;
	b->uidvalidity = mbox->state.uidvalidity;
	b->count = mbox->state.count;
}

void
mailbox_synced(struct mailbox *mbox, int ret, const struct mailbox_sync_before *b,
	       const char *sid)
{
	struct mbox_state *st = &mbox->state;

	mailbox_hook_state(mbox);
	if (ret < 0)
		return;
	if (ret > 0 || st->uidvalidity != b->uidvalidity) {
		log_warn(sid, "%s/%s: UIDVALIDITY changed from %u to %u", mbox->user, mbox->name,
			 b->uidvalidity, st->uidvalidity);
		/* Every view's map is void now; they notice in sync(). UIDs
		   may be reused by the new lineage: drop parsed trees. */
		st->expunge_gen++;
		mime_cache_forget(mbox->hub->mime_cache, mbox);
		mbox->expunged_count = 0;
		mbox->expunge_known_from = st->highest_modseq;
	} else if (st->count < b->count + (st->uidnext - b->uidnext)) {
		/* Fewer messages than before plus the new ones: someone
		   removed some. */
		st->expunge_gen = st->expunge_gen == b->gen ? b->gen + 1 : st->expunge_gen;
	}
	if (ret == 0 && st->expunge_gen != b->gen) {
		/* Removed by another process: which UIDs is not known here.
		   HIGHESTMODSEQ must still rise (RFC 7162 3.2), and a client
		   that knew an older state gets every missing UID. */
		if (st->highest_modseq == b->modseq)
			st->highest_modseq++;
		mbox->expunge_known_from = st->highest_modseq;
	}
	if (ret > 0 || st->highest_modseq != b->modseq || st->expunge_gen != b->gen ||
	    st->uidnext != b->uidnext || st->count != b->count)
		mailbox_changed(mbox, NULL);
}

int
mailbox_refresh(struct mailbox *mbox, enum storage_error *err_r, const char *sid)
{
	struct mailbox_sync_before before;
	char *error = NULL;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	if (mailbox_sync_in_job(mbox)) {
		if (mbox->op == NULL)
			mailbox_sync_start(mbox, sid);
		else
			mbox->sync_again = true;
		return 0;
	}
	if (mbox->op != NULL) {
		/* The job's commit makes the next sync; until then the disk
		   is the job's. */
		return 0;
	}
	mailbox_sync_before(mbox, &before);
	ret = mbox->hub->storage.backend->sync(mbox->box, &mbox->state, err_r, &error);
	storage_error_fix(ret, err_r);
	if (ret < 0) {
		log_error(sid, "sync %s/%s: %s", mbox->user, mbox->name,
			  error != NULL ? error : "failed");
		free(error);
	}
	mailbox_synced(mbox, ret, &before, sid);
	return ret < 0 ? -1 : 0;
}

bool
mailbox_catch_up(struct mailbox *mbox, uint64_t *ticket, const char *sid)
{
	enum storage_error err;

	if (!mailbox_sync_in_job(mbox)) {
		(void)mailbox_refresh(mbox, &err, sid);
		return true;
	}
	/* Done once a sync started after the command came is done: one
	   already at work may have read before the change the client
	   saw committed. */
	if (*ticket == 0)
		*ticket = mbox->syncs_started + 1;
	if (mbox->syncs_done >= *ticket)
		return true;
	/* An expunge or first open at work: the command goes on with the
	   state as it is (writes wait for the job, then take the store's
	   lock and catch up there). */
	if (mbox->op != NULL && !mbox->op->sync)
		return true;
	if (mbox->op == NULL)
		mailbox_sync_start(mbox, sid);
	return false;
}

uint64_t
mailbox_sync_ticket(const struct mailbox *mbox)
{
	return mbox->syncs_started;
}
