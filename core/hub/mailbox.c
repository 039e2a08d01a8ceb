/* mailbox.c: the mailbox hub (see mailbox.h). */
#include "mailbox.h"
#include "mailbox_private.h"
#include "log.h"
#include "mcache.h"
#include "mime.h"
#include "seqset.h"
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>

/* Unreferenced mailboxes kept open so that a new SELECT of a big mailbox
   costs a stat() instead of reading its index again. */
#define HUB_LINGER_MAX 8
/* Expunged UIDs remembered per open mailbox for QRESYNC; beyond this the
   oldest half is forgotten (RFC 7162 5.3). */
#define MAILBOX_EXPUNGE_LOG_MAX 65536

/* Parsed message structures kept for BODYSTRUCTURE. */
#define HUB_MIME_CACHE_ENTRIES 256

struct hub *
hub_new(const struct storage_ctx *storage, struct watch *watch)
{
	struct hub *hub = xcalloc(1, sizeof(*hub));

	hub->storage = *storage;
	hub->watch = watch;
	hub->mime_cache = mime_cache_new(HUB_MIME_CACHE_ENTRIES);
	hub->notify_fd = -1;
	hub_notify_start(hub);
	return hub;
}

static void
mailbox_watch_event(void *ctx)
{
	struct mailbox *mbox = ctx;
	enum storage_error err;

	(void)mailbox_refresh(mbox, &err, "-");
}

static void
mailbox_watch_start(struct mailbox *mbox)
{
	struct strlist paths = { 0 };

	if (mbox->hub->watch == NULL || mbox->watch_count > 0)
		return;
	mailbox_watch_paths(mbox, &paths);
	if (paths.count > 0)
		mbox->watches = xcalloc(paths.count, sizeof(*mbox->watches));
	for (size_t i = 0; i < paths.count; i++)
		mbox->watches[mbox->watch_count++] =
			watch_add(mbox->hub->watch, paths.items[i], mailbox_watch_event, mbox);
	strlist_clear(&paths);
}

static void
mailbox_watch_stop(struct mailbox *mbox)
{
	for (size_t i = 0; i < mbox->watch_count; i++)
		watch_remove(&mbox->watches[i]);
	free(mbox->watches);
	mbox->watches = NULL;
	mbox->watch_count = 0;
}

void
mailbox_destroy(struct mailbox *mbox)
{
	struct hub *hub = mbox->hub;

	if (mbox->prev != NULL)
		mbox->prev->next = mbox->next;
	else
		hub->mailboxes = mbox->next;
	if (mbox->next != NULL)
		mbox->next->prev = mbox->prev;
	mailbox_jobs_free(mbox);
	/* A later mailbox at the same address must not find our trees. */
	mime_cache_forget(hub->mime_cache, mbox);
	mcache_close(&mbox->mcache);
	mailbox_watch_stop(mbox);
	hub->storage.backend->close(&mbox->box);
	mbox_state_deinit(&mbox->state);
	free(mbox->expunged);
	free(mbox->deferred_flags);
	free(mbox->user);
	free(mbox->name);
	free(mbox);
}

void
hub_free(struct hub **_hub)
{
	struct hub *hub = *_hub;

	if (hub == NULL)
		return;
	*_hub = NULL;
	hub_notify_stop(hub);
	while (hub->mailboxes != NULL)
		mailbox_destroy(hub->mailboxes);
	mime_cache_free(&hub->mime_cache);
	free(hub);
}

struct mime_cache *
hub_mime_cache(struct hub *hub)
{
	return hub->mime_cache;
}

struct mailbox *
hub_find(struct hub *hub, const char *user, const char *name)
{
	for (struct mailbox *m = hub->mailboxes; m != NULL; m = m->next) {
		if (strcmp(m->user, user) == 0 && strcmp(m->name, name) == 0)
			return m;
	}
	return NULL;
}

bool
mailbox_is_used(const struct mailbox *mbox)
{
	return mbox->refcount > 0;
}

void
hub_forget(struct hub *hub, const char *user, const char *name)
{
	struct mailbox *mbox = hub_find(hub, user, name);

	if (mbox != NULL && mbox->refcount == 0)
		mailbox_destroy(mbox);
}

/* Closes the oldest unreferenced mailboxes beyond the linger limit. */
static void
hub_trim(struct hub *hub)
{
	for (;;) {
		struct mailbox *oldest = NULL;
		size_t idle = 0;

		for (struct mailbox *m = hub->mailboxes; m != NULL; m = m->next) {
			if (m->refcount > 0)
				continue;
			idle++;
			if (oldest == NULL || m->released_at < oldest->released_at)
				oldest = m;
		}
		if (idle <= HUB_LINGER_MAX)
			return;
		mailbox_destroy(oldest);
	}
}

int
mailbox_open(struct hub *hub, const char *sid, const char *user, const char *name,
	     struct mailbox **mbox_r, enum storage_error *err_r)
{
	struct mailbox *mbox = hub_find(hub, user, name);
	enum storage_error err;
	char *error = NULL;

	*err_r = STORAGE_ERR_NONE;
	if (mbox != NULL && mbox->opening) {
		/* A command waits for it (hub_open_start()); a caller that
		   cannot (an SMTP delivery, LIST's STATUS) has it done now. */
		mailbox_open_now(mbox);
		mbox = hub_find(hub, user, name);
	}
	if (mbox != NULL) {
		mbox->refcount++;
		/* A sync in a job is the caller's to wait for
		   (mailbox_catch_up()); a change takes the store's lock and
		   catches up then. */
		if (mailbox_sync_in_job(mbox) && mbox->sync_err != STORAGE_ERR_NONE) {
			/* The last sync failed: the store is out of reach. The
			   next caller sees how a new one ends. */
			*err_r = mbox->sync_err;
			(void)mailbox_refresh(mbox, &err, sid);
			mailbox_unref(&mbox);
			return -1;
		}
		if (!mailbox_sync_in_job(mbox) && mailbox_refresh(mbox, err_r, sid) < 0) {
			mailbox_unref(&mbox);
			return -1;
		}
		*mbox_r = mbox;
		return 0;
	}
	mbox = xcalloc(1, sizeof(*mbox));
	mbox_state_init(&mbox->state);
	if (hub->storage.backend->open(hub->storage.st, user, name, &mbox->state, &mbox->box,
				       err_r, &error) < 0) {
		if (*err_r == STORAGE_ERR_NONE)
			*err_r = STORAGE_ERR_TEMP;
		if (*err_r != STORAGE_ERR_NOT_FOUND)
			log_error(sid, "open %s/%s: %s", user, name,
				  error != NULL ? error : "failed");
		free(error);
		mbox_state_deinit(&mbox->state);
		free(mbox);
		return -1;
	}
	mbox->hub = hub;
	mbox->expunge_known_from = mbox->state.highest_modseq;
	mbox->user = xstrdup(user);
	mbox->name = xstrdup(name);
	mbox->refcount = 1;
	mbox->next = hub->mailboxes;
	if (hub->mailboxes != NULL)
		hub->mailboxes->prev = mbox;
	hub->mailboxes = mbox;
	*mbox_r = mbox;
	return 0;
}

void
mailbox_unref(struct mailbox **_mbox)
{
	struct mailbox *mbox = *_mbox;

	if (mbox == NULL)
		return;
	*_mbox = NULL;
	if (--mbox->refcount > 0)
		return;
	mbox->released_at = ++mbox->hub->release_clock;
	hub_trim(mbox->hub);
}

struct mbox_state *
mailbox_state(struct mailbox *mbox)
{
	return &mbox->state;
}

void
mailbox_changed(struct mailbox *mbox, struct mbox_view *except)
{
	struct mbox_view *view, *next;

	for (view = mbox->views; view != NULL; view = next) {
		next = view->next;
		if (view != except && view->notify != NULL)
			view->notify(view->notify_ctx);
	}
	if (mbox->hub->listeners != NULL)
		hub_signal(mbox->hub, mbox->user, HUB_EVENT_MAILBOX, mbox->name, NULL);
}

static void mailbox_before_remove(void *ctx, size_t idx);

void
mailbox_hook_state(struct mailbox *mbox)
{
	mbox->state.before_remove = mailbox_before_remove;
	mbox->state.before_remove_ctx = mbox;
}

static ssize_t
first_index_above(const struct mbox_state *st, uint32_t uid)
{
	size_t lo = 0, hi = st->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (st->mails[mid].uid <= uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ssize_t)lo;
}

/* Tells the backend that first_recent_uid or seen_below rose (not while
   a job works on the box: its commit writes the state as it is then). */
static void
mailbox_hints_changed(struct mailbox *mbox)
{
	const struct storage_backend *backend = mbox->hub->storage.backend;

	if (backend->hints_changed != NULL && mbox->box != NULL && mbox->op == NULL)
		backend->hints_changed(mbox->box, &mbox->state);
}

/* True if uid is in one of the view's \Recent ranges. */
static bool
view_recent_has(const struct mbox_view *view, uint32_t uid)
{
	size_t lo = 0, hi = view->recent_ranges;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (uid < view->recent[mid].lo)
			hi = mid;
		else if (uid > view->recent[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* Claims the \Recent messages (uid >= first_recent_uid) among the new
   messages from index idx on (the end of the state): one UID range,
   counted by a binary search, O(log count). A read-only view sees them
   as recent without taking them from others. */
static void
view_claim_recent(struct mbox_view *view, size_t idx)
{
	struct mailbox *mbox = view->mbox;
	struct mbox_state *st = &mbox->state;
	uint32_t (*take)(struct storage_box *, const struct mbox_state *, uint32_t) =
		mbox->hub->storage.backend->recent_take;
	uint32_t lo, hi;
	struct mbox_uid_range *last;

	if (!view->readonly && take != NULL && mbox->box != NULL &&
	    st->first_recent_uid < st->uidnext && st->recent_taken < st->uidnext) {
		/* a store shared with other processes: what they took
		   already is not ours to show (busy with a job: none is,
		   never twice). Not due if a sync took it in its work. */
		uint32_t from = mbox->op == NULL ? take(mbox->box, st, st->uidnext) : st->uidnext;

		if (from > st->first_recent_uid)
			st->first_recent_uid = from;
		st->recent_taken = st->uidnext;
	}
	lo = st->first_recent_uid;
	if (idx < st->count) {
		hi = st->mails[st->count - 1].uid;
		if (lo < st->mails[idx].uid)
			lo = st->mails[idx].uid;
		if (lo <= hi) {
			view->recent_count += st->count - (size_t)first_index_above(st, lo - 1);
			last = view->recent_ranges > 0 ? &view->recent[view->recent_ranges - 1] :
							 NULL;
			if (last != NULL && lo <= last->hi + 1) {
				if (last->hi < hi)
					last->hi = hi;
			} else {
				xgrow(&view->recent, &view->recent_alloc, view->recent_ranges + 1,
				      sizeof(*view->recent));
				view->recent[view->recent_ranges].lo = lo;
				view->recent[view->recent_ranges++].hi = hi;
			}
		}
	}
	if (!view->readonly && st->first_recent_uid < st->uidnext) {
		st->first_recent_uid = st->uidnext;
		mailbox_hints_changed(view->mbox);
	}
}

/* Adds the messages above the view's highest uid; returns how many. */
static size_t
view_add_new(struct mbox_view *view)
{
	struct mbox_state *st = &view->mbox->state;
	size_t idx = view->uids == NULL ? view->count :
		(size_t)first_index_above(st, mbox_view_max_uid(view));
	size_t n = st->count - idx;

	if (n == 0)
		return 0;
	if (view->uids == NULL) {
		/* the identity map: the state's next messages */
		view->count += n;
	} else {
		xgrow(&view->uids, &view->alloc, view->count + n, sizeof(uint32_t));
		for (size_t i = idx; i < st->count; i++)
			view->uids[view->count++] = st->mails[i].uid;
	}
	view_claim_recent(view, idx);
	return n;
}

/* The view stops reading the shared array: its UIDs into view->uids.
   O(count), once per expunge the session has not yet been told of. */
static void
view_own_uids(struct mbox_view *view)
{
	const struct mbox_state *st = &view->mbox->state;

	view->alloc = view->count > 0 ? view->count : 1;
	view->uids = xmalloc(view->alloc * sizeof(uint32_t));
	for (size_t i = 0; i < view->count; i++)
		view->uids[i] = st->mails[i].uid;
}

/* mbox_state's before_remove hook: the views that hold the messages
   from idx on as the identity map take their own copy first. */
static void
mailbox_before_remove(void *ctx, size_t idx)
{
	struct mailbox *mbox = ctx;

	for (struct mbox_view *view = mbox->views; view != NULL; view = view->next) {
		if (view->uids == NULL && view->count > idx)
			view_own_uids(view);
	}
}

struct mbox_view *
mbox_view_new(struct mailbox *mbox, bool readonly, void (*notify)(void *ctx), void *notify_ctx)
{
	struct mbox_view *view = xcalloc(1, sizeof(*view));

	view->mbox = mbox;
	view->state = &mbox->state;
	view->readonly = readonly;
	view->notify = notify;
	view->notify_ctx = notify_ctx;
	view->synced_modseq = mbox->state.highest_modseq;
	view->synced_expunge_gen = mbox->state.expunge_gen;
	view->expunges_told_modseq = mbox->state.highest_modseq;
	if (!readonly)
		mbox->recent_wanted = false;   /* the view says so from now on */
	(void)view_add_new(view);
	view->announced_recent = view->recent_count;
	mailbox_hook_state(mbox);
	view->next = mbox->views;
	mbox->views = view;
	return view;
}

void
mbox_view_watch(struct mbox_view *view)
{
	mailbox_watch_start(view->mbox);
}

void
mbox_view_free(struct mbox_view **_view)
{
	struct mbox_view *view = *_view, **p;

	if (view == NULL)
		return;
	*_view = NULL;
	for (p = &view->mbox->views; *p != NULL; p = &(*p)->next) {
		if (*p == view) {
			*p = view->next;
			break;
		}
	}
	if (view->mbox->views == NULL)
		mailbox_watch_stop(view->mbox);
	free(view->uids);
	free(view->recent);
	free(view);
}

/* Removes the messages gone from the shared state from the view and
   records them in changes, highest sequence number first. A view that
   is still the identity map has lost nothing. */
static void
view_sync_expunges(struct mbox_view *view, struct mbox_view_changes *changes)
{
	struct mbox_state *st = &view->mbox->state;
	bool *gone, identity;
	size_t i, j, kept;

	if (view->uids == NULL)
		return;
	gone = xcalloc(view->count + 1, sizeof(bool));
	/* Both lists ascend: one merge pass finds the vanished uids. */
	for (i = j = 0; i < view->count; i++) {
		while (j < st->count && st->mails[j].uid < view->uids[i])
			j++;
		gone[i] = j >= st->count || st->mails[j].uid != view->uids[i];
	}
	/* From the highest down, so each number is right when it is told. */
	for (i = view->count; i > 0; i--) {
		if (!gone[i - 1])
			continue;
		xgrow(&changes->expunged, &changes->expunged_alloc, changes->expunged_count + 1,
		      sizeof(*changes->expunged));
		changes->expunged[changes->expunged_count].seq = (uint32_t)i;
		changes->expunged[changes->expunged_count++].uid = view->uids[i - 1];
		if (view->recent_count > 0 && view_recent_has(view, view->uids[i - 1]))
			view->recent_count--;
	}
	identity = true;
	for (i = kept = 0; i < view->count; i++) {
		if (gone[i])
			continue;
		view->uids[kept] = view->uids[i];
		identity = identity && kept < st->count && st->mails[kept].uid == view->uids[i];
		kept++;
	}
	view->count = kept;
	free(gone);
	if (identity) {
		/* the state's first messages again */
		free(view->uids);
		view->uids = NULL;
		view->alloc = 0;
	}
	if (view->count == 0) {
		/* (after a UIDVALIDITY change, old ranges would name new UIDs) */
		view->recent_ranges = 0;
		view->recent_count = 0;
	}
	/* A lower count is announced too ("* n RECENT" after the EXPUNGEs,
	   as Dovecot does): a client that sums what each session was told
	   must not count expunged messages. */
}

/* Records in changes the view's messages whose modseq is above the one
   the view last synced to. */
static void
view_sync_flags(struct mbox_view *view, struct mbox_view_changes *changes)
{
	struct mbox_state *st = &view->mbox->state;
	size_t i, j;

	for (i = j = 0; i < view->count; i++) {
		uint32_t uid = mbox_view_uid(view, (uint32_t)(i + 1));

		while (j < st->count && st->mails[j].uid < uid)
			j++;
		if (j >= st->count)
			break;
		if (st->mails[j].uid != uid || st->mails[j].modseq <= view->synced_modseq ||
		    st->mails[j].modseq == view->told_modseq)
			continue;
		xgrow(&changes->flags, &changes->flags_alloc, changes->flags_count + 1,
		      sizeof(*changes->flags));
		changes->flags[changes->flags_count].seq = (uint32_t)(i + 1);
		changes->flags[changes->flags_count++].idx = j;
	}
	view->synced_modseq = st->highest_modseq;
}

void
mbox_view_told_own_change(struct mbox_view *view, uint64_t before, uint64_t written)
{
	const struct mbox_state *st = &view->mbox->state;

	if (written == 0)
		return;
	if (view->synced_modseq == before && written == before + 1 &&
	    st->highest_modseq == written) {
		/* caught up before, nothing else since: still */
		view->synced_modseq = written;
	} else {
		view->told_modseq = written;
	}
}

void
mbox_view_update(struct mbox_view *view, bool allow_expunge, struct mbox_view_changes *changes_r)
{
	struct mbox_state *st = &view->mbox->state;

	i_zero(changes_r);
	if (allow_expunge && view->synced_expunge_gen != st->expunge_gen) {
		view_sync_expunges(view, changes_r);
		view->synced_expunge_gen = st->expunge_gen;
	}
	if (allow_expunge)
		view->expunges_told_modseq = st->highest_modseq;
	if (view_add_new(view) > 0)
		changes_r->exists = view->count;
	if (view->recent_count != view->announced_recent) {
		changes_r->recent_changed = true;
		changes_r->recent = view->recent_count;
		view->announced_recent = view->recent_count;
	}
	if (view->synced_modseq < st->highest_modseq)
		view_sync_flags(view, changes_r);
}

void
mbox_view_changes_free(struct mbox_view_changes *changes)
{
	free(changes->expunged);
	free(changes->flags);
	i_zero(changes);
}

bool
mbox_view_expunges_pending(const struct mbox_view *view)
{
	return view->synced_expunge_gen != view->mbox->state.expunge_gen;
}

uint64_t
mbox_view_safe_modseq(const struct mbox_view *view)
{
	if (mbox_view_expunges_pending(view))
		return view->expunges_told_modseq;
	return view->mbox->state.highest_modseq;
}

ssize_t
mbox_view_index(const struct mbox_view *view, uint32_t seq)
{
	if (seq == 0 || seq > view->count)
		return -1;
	if (view->uids == NULL)
		return (ssize_t)seq - 1;
	return mbox_state_find(&view->mbox->state, view->uids[seq - 1]);
}

uint32_t
mbox_view_first_unseen(struct mbox_view *view)
{
	struct mbox_state *st = &view->mbox->state;
	uint32_t below = st->seen_below;
	size_t seq;

	if (view->uids == NULL) {
		/* the state's first count messages: the hint applies, and
		   what is walked raises it */
		size_t i = below > 1 ? (size_t)first_index_above(st, below - 1) : 0;

		for (; i < view->count; i++) {
			if ((st->mails[i].flags & MAIL_SEEN) == 0)
				break;
		}
		below = i < view->count ? st->mails[i].uid :
			view->count > 0 ? st->mails[view->count - 1].uid + 1 : below;
		if (below > st->seen_below) {
			st->seen_below = below;
			mailbox_hints_changed(view->mbox);
		}
		return i < view->count ? (uint32_t)(i + 1) : 0;
	}
	/* A view that kept messages gone from the state: from the hint on,
	   the gone ones skipped. */
	seq = 1;
	if (below > 1) {
		size_t lo = 0, hi = view->count;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (view->uids[mid] < below)
				lo = mid + 1;
			else
				hi = mid;
		}
		seq = lo + 1;
	}
	for (; seq <= view->count; seq++) {
		ssize_t idx = mbox_view_index(view, (uint32_t)seq);

		if (idx >= 0 && (st->mails[idx].flags & MAIL_SEEN) == 0)
			return (uint32_t)seq;
	}
	return 0;
}

uint32_t
mbox_view_seq(const struct mbox_view *view, uint32_t uid)
{
	size_t lo = 0, hi = view->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t m = mbox_view_uid(view, (uint32_t)(mid + 1));

		if (m == uid)
			return (uint32_t)(mid + 1);
		if (m < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

bool
mbox_view_is_recent(const struct mbox_view *view, uint32_t uid)
{
	/* (the ranges may still name a message the view has lost) */
	return view->recent_count > 0 && view_recent_has(view, uid) &&
		mbox_view_seq(view, uid) != 0;
}

struct mcache *
mailbox_mcache(struct mailbox *mbox)
{
	if (mbox->mcache == NULL) {
		char *(*cache_path)(struct storage_box *) = mbox->hub->storage.backend->cache_path;
		char *path = cache_path != NULL ? cache_path(mbox->box) : NULL;

		mbox->mcache = mcache_open(path);
		free(path);
	}
	return mbox->mcache;
}

int
mailbox_read(struct mailbox *mbox, const struct mail_rec *rec, struct buf *out,
	     enum storage_error *err_r, const char *sid)
{
	char *error = NULL;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	ret = mbox->hub->storage.backend->read(mbox->box, rec, out, err_r, &error);
	storage_error_fix(ret, err_r);
	if (ret < 0) {
		/* (a message whose expunge is at work: gone, no fault) */
		if (*err_r == STORAGE_ERR_NOT_FOUND && mailbox_expunging(mbox, rec->uid))
			log_info(sid, "read %s/%s uid %u: being expunged", mbox->user, mbox->name,
				 rec->uid);
		else
			log_error(sid, "read %s/%s uid %u: %s", mbox->user, mbox->name, rec->uid,
				  error != NULL ? error : "failed");
		free(error);
		return -1;
	}
	return 0;
}

int
mailbox_set_flags(struct mailbox *mbox, struct mbox_view *view, size_t idx, uint8_t flags,
		  uint64_t keywords, enum storage_error *err_r, const char *sid)
{
	struct mbox_state *st = &mbox->state;
	uint64_t before = st->highest_modseq, after;
	struct mail_rec old;
	char *error = NULL;
	ssize_t i;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	if (idx >= st->count)
		return 0;
	old = st->mails[idx];
	if (!mbox_state_set_flags(st, idx, flags, keywords))
		return 0;
	after = st->highest_modseq;
	if (mbox->op != NULL) {
		/* The view reports its own change in the STORE answer; if
		   it was caught up before, it still is. */
		if (view != NULL && view->synced_modseq == before)
			view->synced_modseq = after;
		/* The backend is not called while its job works: the change
		   is written once the job is done (mailbox_flush_flags()). */
		struct storage_flag_change *d;

		xgrow(&mbox->deferred_flags, &mbox->deferred_alloc, mbox->deferred_count + 1,
		      sizeof(*mbox->deferred_flags));
		d = &mbox->deferred_flags[mbox->deferred_count++];
		i_zero(d);
		d->uid = old.uid;
		d->flags_set = flags & ~old.flags;
		d->flags_clear = old.flags & ~flags;
		d->keywords_set = keywords & ~old.keywords;
		d->keywords_clear = old.keywords & ~keywords;
		return 0;
	}
	ret = mbox->hub->storage.backend->flags_changed(mbox->box, st, idx, err_r, &error);
	storage_error_fix(ret, err_r);
	if (ret == 0) {
		/* The view reports its own change in the STORE answer: if it
		   was caught up before, it still is, unless the write brought
		   in other processes' changes too (the modseq the backend
		   gave is not the one proposed): those are told at the next
		   sync. */
		i = mbox_state_find(st, old.uid);
		if (view != NULL && view->synced_modseq == before && i >= 0 &&
		    st->mails[i].modseq == after && st->highest_modseq == after)
			view->synced_modseq = after;
		return 0;
	}
	mailbox_log_write(mbox, sid, ret, *err_r, "store flags", error);
	free(error);
	/* The disk does not have the change: take it back in memory (by
	   UID: the backend may have synced and moved idx). Only what this
	   call set is undone; a modseq raised since by the backend stays. */
	i = mbox_state_find(st, old.uid);
	if (i >= 0 && st->mails[i].modseq == after) {
		st->mails[i].flags = old.flags;
		st->mails[i].keywords = old.keywords;
		st->mails[i].modseq = old.modseq;
		mbox_state_flags_written(st, (size_t)i);
	}
	if (st->highest_modseq == after)
		st->highest_modseq = before;
	return -1;
}

int
mailbox_append(struct mailbox *mbox, const char *data, size_t len, uint8_t flags,
	       uint64_t keywords, int64_t internal_date, int32_t tz_minutes, uint32_t *uid_r,
	       enum storage_error *err_r, const char *sid)
{
	char *error = NULL;

	*err_r = STORAGE_ERR_NONE;
	if (mailbox_busy_error(mbox, err_r, sid, "append"))
		return -1;
	if (mbox->hub->storage.backend->append(mbox->box, &mbox->state, data, len, flags,
					       keywords, internal_date, tz_minutes, uid_r, err_r,
					       &error) < 0) {
		mailbox_hook_state(mbox);
		if (*err_r == STORAGE_ERR_NONE)
			*err_r = STORAGE_ERR_TEMP;
		mailbox_log_write(mbox, sid, -1, *err_r, "append to", error);
		free(error);
		return -1;
	}
	mailbox_hook_state(mbox);
	mailbox_log_write(mbox, sid, 0, STORAGE_ERR_NONE, "append to", NULL);
	return 0;
}

static void
mailbox_log_expunge(struct mailbox *mbox, uint32_t uid, uint64_t modseq)
{
	if (mbox->expunged_count >= MAILBOX_EXPUNGE_LOG_MAX) {
		/* Forget the older half; asking about that time gets the
		   inexact (larger) answer. */
		size_t drop = mbox->expunged_count / 2;

		mbox->expunge_known_from = mbox->expunged[drop - 1].modseq;
		memmove(mbox->expunged, mbox->expunged + drop,
			(mbox->expunged_count - drop) * sizeof(*mbox->expunged));
		mbox->expunged_count -= drop;
	}
	xgrow(&mbox->expunged, &mbox->expunged_alloc, mbox->expunged_count + 1,
	      sizeof(*mbox->expunged));
	mbox->expunged[mbox->expunged_count].uid = uid;
	mbox->expunged[mbox->expunged_count++].modseq = modseq;
}

/* The UIDs mailbox_expunge*() removes, ascending, into *list_r. */
size_t
mailbox_expunge_collect(const struct mbox_state *st, const struct seqset *uids, bool deleted_only,
		uint32_t **list_r)
{
	size_t count = 0, alloc = 0;

	*list_r = NULL;
	for (size_t i = 0; i < st->count; i++) {
		if (deleted_only && (st->mails[i].flags & MAIL_DELETED) == 0)
			continue;
		if (uids != NULL && !seqset_contains(uids, st->mails[i].uid))
			continue;
		xgrow(list_r, &alloc, count + 1, sizeof(**list_r));
		(*list_r)[count++] = st->mails[i].uid;
	}
	return count;
}

/* After the backend's expunge (or commit) returned ret: logs, keeps the
   expunge's modseq, remembers the removed UIDs for QRESYNC and bumps
   expunge_gen (from gen) once. Takes error. Returns ret. */
int
mailbox_expunge_finish(struct mailbox *mbox, const uint32_t *list, size_t count, uint64_t modseq,
	       uint64_t gen, int ret, enum storage_error *err_r, char *error, const char *sid)
{
	struct mbox_state *st = &mbox->state;
	size_t removed = 0;

	storage_error_fix(ret, err_r);
	if (ret < 0)
		mailbox_log_write(mbox, sid, ret, *err_r, "expunge", error);
	free(error);
	/* A backend shared with other processes may have caught up with
	   their changes and given the expunge a higher one: that is it. */
	if (st->highest_modseq < modseq)
		st->highest_modseq = modseq;
	else if (ret == 0)
		modseq = st->highest_modseq;
	for (size_t i = 0; i < count; i++) {
		if (mbox_state_find(st, list[i]) < 0) {
			mailbox_log_expunge(mbox, list[i], modseq);
			removed++;
		}
	}
	if (st->expunge_gen == gen && removed > 0)
		st->expunge_gen++;
	log_info(sid, "expunged %zu message(s) from %s", removed, mbox->name);
	return ret;
}

int
mailbox_expunge_full(struct mailbox *mbox, const struct seqset *uids, bool deleted_only,
		     enum storage_error *err_r, const char *sid)
{
	struct mbox_state *st = &mbox->state;
	uint32_t *list;
	size_t count;
	uint64_t gen = st->expunge_gen, modseq;
	char *error = NULL;
	int ret = 0;

	*err_r = STORAGE_ERR_NONE;
	if (mailbox_busy_error(mbox, err_r, sid, "expunge"))
		return -1;
	count = mailbox_expunge_collect(st, uids, deleted_only, &list);
	if (count > 0) {
		/* RFC 7162 3.2: the expunge gets a new mod-sequence, raised
		   before the backend writes its index so that it is kept. */
		modseq = ++st->highest_modseq;
		ret = mbox->hub->storage.backend->expunge(mbox->box, st, list, count, err_r,
							  &error);
		ret = mailbox_expunge_finish(mbox, list, count, modseq, gen, ret, err_r, error, sid);
	}
	free(list);
	return ret;
}

int
mailbox_expunge(struct mailbox *mbox, const struct seqset *uids, enum storage_error *err_r,
		const char *sid)
{
	return mailbox_expunge_full(mbox, uids, true, err_r, sid);
}

int
mailbox_expunge_uids(struct mailbox *mbox, const struct seqset *uids,
		     enum storage_error *err_r, const char *sid)
{
	return mailbox_expunge_full(mbox, uids, false, err_r, sid);
}

bool
mailbox_vanished_since(struct mailbox *mbox, uint64_t modseq, const struct seqset *uids,
		       struct seqset *vanished_r)
{
	const struct mbox_state *st = &mbox->state;
	uint32_t max = st->uidnext > 1 ? st->uidnext - 1 : 0;

	if (modseq >= mbox->expunge_known_from) {
		for (size_t i = mbox->expunged_count; i > 0; i--) {
			const struct expunge_entry *e = &mbox->expunged[i - 1];

			if (e->modseq <= modseq)
				break;
			if ((uids == NULL || seqset_contains(uids, e->uid)) &&
			    mbox_state_find(st, e->uid) < 0)
				seqset_add_range(vanished_r, e->uid, e->uid);
		}
		return true;
	}
	/* Every UID of the set below UIDNEXT that is not here: ranges
	   between the present messages. */
	if (max == 0)
		return false;
	size_t idx = 0;
	uint32_t next = 1;
	for (;;) {
		uint32_t end = idx < st->count ? st->mails[idx].uid : max + 1;

		if (end > next) {
			uint32_t hi = end - 1 > max ? max : end - 1;
			if (uids == NULL) {
				if (next <= hi)
					seqset_add_range(vanished_r, next, hi);
			} else {
				for (size_t r = 0; r < uids->count; r++) {
					uint32_t lo = uids->ranges[r].lo > next ? uids->ranges[r].lo : next;
					uint32_t h = uids->ranges[r].hi < hi ? uids->ranges[r].hi : hi;
					if (lo <= h)
						seqset_add_range(vanished_r, lo, h);
				}
			}
		}
		if (idx >= st->count || end > max)
			break;
		next = end + 1;
		idx++;
	}
	return false;
}

void
mailbox_watch_paths(struct mailbox *mbox, struct strlist *paths_r)
{
	if (mbox->hub->storage.backend->watch_paths != NULL)
		mbox->hub->storage.backend->watch_paths(mbox->box, paths_r);
}
