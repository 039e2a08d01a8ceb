/* mailbox_info.c: what a mailbox is, for reports (see mailbox.h), and
   the log of its failed writes. */
#include "log.h"
#include "mailbox.h"
#include "mailbox_private.h"

const char *
mailbox_name(const struct mailbox *mbox)
{
	return mbox->name;
}

const char *
mailbox_user(const struct mailbox *mbox)
{
	return mbox->user;
}

void
mailbox_log_write(struct mailbox *mbox, const char *sid, int ret, enum storage_error err,
		  const char *what, const char *error)
{
	if (ret == 0) {
		if (mbox->space_logged)
			log_info(sid, "%s/%s: writes succeed again (space is back)", mbox->user,
				 mbox->name);
		mbox->space_logged = false;
		return;
	}
	if (err == STORAGE_ERR_NO_SPACE) {
		if (mbox->space_logged)
			return;
		mbox->space_logged = true;
		log_error(sid, "%s %s/%s: %s (logged once until a write succeeds)", what,
			  mbox->user, mbox->name, error != NULL ? error : "no space");
		return;
	}
	log_error(sid, "%s %s/%s: %s", what, mbox->user, mbox->name,
		  error != NULL ? error : "failed");
}

uint64_t
mailbox_octets(struct mailbox *mbox)
{
	const struct mbox_state *st = &mbox->state;
	uint64_t octets = 0;

	if (mbox->octets_cache.valid && mbox->octets_cache.uidvalidity == st->uidvalidity &&
	    mbox->octets_cache.uidnext == st->uidnext &&
	    mbox->octets_cache.expunge_gen == st->expunge_gen &&
	    mbox->octets_cache.count == st->count)
		return mbox->octets_cache.octets;
	for (size_t i = 0; i < st->count; i++)
		octets += st->mails[i].size;
	mbox->octets_cache.valid = true;
	mbox->octets_cache.uidvalidity = st->uidvalidity;
	mbox->octets_cache.uidnext = st->uidnext;
	mbox->octets_cache.expunge_gen = st->expunge_gen;
	mbox->octets_cache.count = st->count;
	mbox->octets_cache.octets = octets;
	return octets;
}
