/* mailbox_sync.c: bringing an open mailbox in line with the changes
   other processes made (see mailbox.h, mailbox_refresh()). */
#include "mailbox.h"
#include "mailbox_private.h"
#include "log.h"
#include "mime.h"

#include <stdlib.h>

int
mailbox_refresh(struct mailbox *mbox, enum storage_error *err_r, const char *sid)
{
	struct mbox_state *st = &mbox->state;
	uint64_t modseq = st->highest_modseq, gen = st->expunge_gen;
	uint32_t uidnext = st->uidnext, uidvalidity = st->uidvalidity;
	size_t count = st->count;
	char *error = NULL;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	if (mbox->op != NULL) {
		/* The job's commit makes the next sync; until then the disk
		   is the job's. */
		return 0;
	}
	ret = mbox->hub->storage.backend->sync(mbox->box, st, err_r, &error);
	mailbox_hook_state(mbox);
	storage_error_fix(ret, err_r);
	if (ret < 0) {
		log_error(sid, "sync %s/%s: %s", mbox->user, mbox->name,
			  error != NULL ? error : "failed");
		free(error);
		return -1;
	}
	if (ret > 0 || st->uidvalidity != uidvalidity) {
		log_warn(sid, "%s/%s: UIDVALIDITY changed from %u to %u", mbox->user, mbox->name,
			 uidvalidity, st->uidvalidity);
		/* Every view's map is void now; they notice in sync(). UIDs
		   may be reused by the new lineage: drop parsed trees. */
		st->expunge_gen++;
		mime_cache_forget(mbox->hub->mime_cache, mbox);
		mbox->expunged_count = 0;
		mbox->expunge_known_from = st->highest_modseq;
	} else if (st->count < count + (st->uidnext - uidnext)) {
		/* Fewer messages than before plus the new ones: someone
		   removed some. */
		st->expunge_gen = st->expunge_gen == gen ? gen + 1 : st->expunge_gen;
	}
	if (ret == 0 && st->expunge_gen != gen) {
		/* Removed by another process: which UIDs is not known here.
		   HIGHESTMODSEQ must still rise (RFC 7162 3.2), and a client
		   that knew an older state gets every missing UID. */
		if (st->highest_modseq == modseq)
			st->highest_modseq++;
		mbox->expunge_known_from = st->highest_modseq;
	}
	if (ret > 0 || st->highest_modseq != modseq || st->expunge_gen != gen ||
	    st->uidnext != uidnext || st->count != count)
		mailbox_changed(mbox, NULL);
	return 0;
}
