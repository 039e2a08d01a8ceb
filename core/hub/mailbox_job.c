/* mailbox_job.c: the mailbox hub's heavy operations outside the loop
   (see mailbox.h): a mailbox busy with a job, the sessions that wait for
   it, the expunge that works in a job, and the append whose message is
   written in one. */
#include "mailbox.h"
#include "mailbox_private.h"
#include "job.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
mailbox_is_busy(const struct mailbox *mbox)
{
	return mbox->op != NULL;
}

bool
mailbox_expunging(const struct mailbox *mbox, uint32_t uid)
{
	const struct mailbox_op *op = mbox->op;

	return op != NULL && !op->open && !op->sync && !op->flags && !op->copy &&
	       op->append == NULL && u32_sorted_contains(op->list, op->count, uid);
}

/* True (with *err_r and a log line) if mbox is busy: the caller should
   have waited (mailbox_wait_idle()). */
bool
mailbox_busy_error(struct mailbox *mbox, enum storage_error *err_r, const char *sid,
		   const char *what)
{
	/* A caller that cannot wait (an append on a backend without
	   append jobs, a program without worker threads) has a sync, an append's transaction, flag
	   changes or copies at work finished now: they are short. */
	for (int i = 0; i < 4 && mbox->op != NULL &&
			(mbox->op->sync || mbox->op->append != NULL || mbox->op->flags ||
			 mbox->op->copy);
	     i++)
		job_finish_now(&mbox->op->job);
	if (mbox->op == NULL)
		return false;
	*err_r = STORAGE_ERR_IN_USE;
	log_info(sid, "%s %s/%s: busy with a job, try again", what, mbox->user, mbox->name);
	return true;
}

struct mailbox_waiter *
mailbox_wait_idle(struct mailbox *mbox, void (*cb)(void *ctx), void *ctx)
{
	struct mailbox_waiter *w = xcalloc(1, sizeof(*w));

	w->mbox = mbox;
	w->cb = cb;
	w->ctx = ctx;
	w->prev = mbox->waiters_tail;
	if (mbox->waiters_tail != NULL)
		mbox->waiters_tail->next = w;
	else
		mbox->waiters = w;
	mbox->waiters_tail = w;
	return w;
}

static void
mailbox_waiter_unlink(struct mailbox_waiter *w)
{
	struct mailbox *mbox = w->mbox;

	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		mbox->waiters = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		mbox->waiters_tail = w->prev;
}

void
mailbox_waiter_cancel(struct mailbox_waiter **_w)
{
	struct mailbox_waiter *w = *_w;

	if (w == NULL)
		return;
	*_w = NULL;
	mailbox_waiter_unlink(w);
	free(w);
}

/* Calls the waiters in order while the mailbox is not busy. */
static void
mailbox_wake_waiters(struct mailbox *mbox)
{
	while (mbox->op == NULL && mbox->waiters != NULL) {
		struct mailbox_waiter *w = mbox->waiters;
		void (*cb)(void *ctx) = w->cb;
		void *ctx = w->ctx;

		mailbox_waiter_unlink(w);
		free(w);
		cb(ctx);
	}
}

/* A deferred change and where it was made, to sort them by UID. */
struct deferred_at {
	uint32_t uid;
	size_t i;
};

static int
deferred_at_cmp(const void *a, const void *b)
{
	const struct deferred_at *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* Sorts the count deferred changes by UID, each message's in the order
   they were made. */
static void
deferred_sort(struct storage_flag_change *changes, size_t count)
{
	struct deferred_at *at = xmalloc((count > 0 ? count : 1) * sizeof(*at));
	struct storage_flag_change *copy = xmalloc((count > 0 ? count : 1) * sizeof(*copy));

	for (size_t i = 0; i < count; i++) {
		at[i].uid = changes[i].uid;
		at[i].i = i;
	}
	qsort(at, count, sizeof(*at), deferred_at_cmp);
	for (size_t i = 0; i < count; i++)
		copy[i] = changes[at[i].i];
	memcpy(changes, copy, count * sizeof(*copy));
	free(copy);
	free(at);
}

/* Writes the flag changes made while the mailbox was busy (in a job
   of their own when the backend makes them so). A failure is logged;
   the change stays in memory (the disk catches up at the message's next
   change). */
static void
mailbox_flush_flags(struct mailbox *mbox)
{
	struct mbox_state *st = &mbox->state;

	/* (busy again already, from a caller told of the job's end: the
	   next job's end writes them) */
	if (mbox->op != NULL)
		return;
	if (mbox->deferred_count > 0 && mailbox_flags_in_job(mbox)) {
		/* in a job of their own, as a command's; no one waits */
		struct storage_flag_change *changes =
			xmalloc(mbox->deferred_count * sizeof(*changes));
		struct mailbox_op *op;
		enum storage_error err;
		size_t n = 0;

		/* in the order they were made, one change per message (what
		   it set and cleared, applied to it as it is then: another
		   process's change meanwhile is kept) */
		deferred_sort(mbox->deferred_flags, mbox->deferred_count);
		for (size_t i = 0; i < mbox->deferred_count; i++) {
			const struct storage_flag_change *d = &mbox->deferred_flags[i];

			if (mbox_state_find(st, d->uid) < 0)
				continue;
			if (n > 0 && changes[n - 1].uid == d->uid) {
				/* the later one over the earlier */
				struct storage_flag_change *c = &changes[n - 1];

				c->flags_set = (uint8_t)((c->flags_set & ~d->flags_clear) |
							 d->flags_set);
				c->flags_clear |= d->flags_clear;
				c->keywords_set = (c->keywords_set & ~d->keywords_clear) |
						  d->keywords_set;
				c->keywords_clear |= d->keywords_clear;
				continue;
			}
			changes[n++] = *d;
		}
		mbox->deferred_count = 0;
		if (n > 0)
			(void)mailbox_flags_start(mbox, changes, n, NULL, NULL, NULL, &op, &err,
						  "-");
		free(changes);
		return;
	}

	for (size_t i = 0; i < mbox->deferred_count; i++) {
		ssize_t idx = mbox_state_find(st, mbox->deferred_flags[i].uid);
		enum storage_error err = STORAGE_ERR_NONE;
		char *error = NULL;

		if (idx < 0)
			continue;
		int ret = mbox->hub->storage.backend->flags_changed(mbox->box, st, (size_t)idx,
								    &err, &error);

		if (ret < 0)
			mailbox_log_write(mbox, "-", ret, err, "store flags", error);
		free(error);
	}
	mbox->deferred_count = 0;
}

/* In the worker thread: the backend's work, on the job's own data. */
static void
mailbox_op_work(void *ctx)
{
	struct mailbox_op *op = ctx;

	op->backend->job_work(op->sjob);
}

/* In the loop: the work is done (or, at shutdown, never ran). Commits,
   tells the caller, then the waiters, then lets go of the mailbox. */
static void mailbox_open_done(struct mailbox_op *op, bool ran);
static void mailbox_sync_done(struct mailbox_op *op, bool ran);
static void append_settled(struct mailbox_op *op, bool ran);
static void mailbox_flags_done(struct mailbox_op *op, bool ran);

static void
mailbox_op_done(void *ctx, bool ran)
{
	struct mailbox_op *op = ctx;
	struct mailbox *mbox = op->mbox;
	struct mbox_state *st = &mbox->state;
	enum storage_error err = STORAGE_ERR_NONE, serr;
	char *error = NULL;
	int ret;

	op->job = NULL;
	if (op->open) {
		mailbox_open_done(op, ran);
		return;
	}
	if (op->sync) {
		mailbox_sync_done(op, ran);
		return;
	}
	if (op->append != NULL) {
		append_settled(op, ran);
		return;
	}
	if (op->flags || op->copy) {
		mailbox_flags_done(op, ran);
		return;
	}
	if (!ran) {
		op->backend->job_abort(mbox->box, &op->sjob);
		ret = mailbox_expunge_finish(mbox, op->list, op->count, st->highest_modseq,
				     st->expunge_gen, -1, &err,
				     xstrdup("not done: the server is stopping"), op->sid);
	} else {
		uint64_t gen = st->expunge_gen;
		/* As in mailbox_expunge_full(): raised before the index is
		   written. */
		uint64_t modseq = ++st->highest_modseq;

		ret = op->backend->job_commit(mbox->box, st, &op->sjob, &err, &error);
		ret = mailbox_expunge_finish(mbox, op->list, op->count, modseq, gen, ret, &err, error,
				     op->sid);
	}
	mbox->op = NULL;
	mailbox_flush_flags(mbox);
	if (op->done != NULL)
		op->done(op->ctx, ret, err);
	else if (ret == 0)
		mailbox_changed(mbox, NULL);
	free(op->list);
	free(op);
	/* What other processes did meanwhile. */
	(void)mailbox_refresh(mbox, &serr, "-");
	mailbox_wake_waiters(mbox);
	mailbox_unref(&mbox);
}

/* A job on mbox, which is busy until it is done (mailbox_op_done()). */
static struct mailbox_op *
mailbox_op_submit(struct mailbox *mbox, struct storage_job *sjob, mailbox_done_func *done,
		  void *ctx, const char *sid)
{
	struct mailbox_op *op = xcalloc(1, sizeof(*op));

	op->mbox = mbox;
	op->backend = mbox->hub->storage.backend;
	op->sjob = sjob;
	op->done = done;
	op->ctx = ctx;
	snprintf(op->sid, sizeof(op->sid), "%s", sid);
	mbox->refcount++;
	mbox->op = op;
	return op;
}

bool
mailbox_sync_in_job(const struct mailbox *mbox)
{
	const struct storage_backend *b = mbox->hub->storage.backend;

	return b->sync_prepare != NULL && b->sync_commit != NULL && b->job_work != NULL &&
	       b->job_abort != NULL && job_queue_default() != NULL;
}

void
mailbox_want_recent(struct mailbox *mbox)
{
	mbox->recent_wanted = true;
}

/* Whether a sync of mbox takes \Recent (a read-write session has it
   selected, or is selecting it). */
static bool
mailbox_takes_recent(const struct mailbox *mbox)
{
	if (mbox->recent_wanted)
		return true;
	for (const struct mbox_view *v = mbox->views; v != NULL; v = v->next) {
		if (!v->readonly)
			return true;
	}
	return false;
}

void
mailbox_sync_start(struct mailbox *mbox, const char *sid)
{
	const struct storage_backend *backend = mbox->hub->storage.backend;
	struct mailbox_sync_before before;
	struct storage_job *sjob = NULL;
	enum storage_error err = STORAGE_ERR_NONE;
	struct mailbox_op *op;
	char *error = NULL;
	int ret;

	mbox->syncs_started++;
	mbox->sync_again = false;
	mailbox_sync_before(mbox, &before);
	ret = backend->sync_prepare(mbox->box, &mbox->state, mailbox_takes_recent(mbox), &sjob,
				    &err, &error);
	if (ret < 0 || sjob == NULL) {
		/* Nothing to read (or it cannot be: said once, here). */
		if (ret < 0)
			log_error(sid, "sync %s/%s: %s", mbox->user, mbox->name,
				  error != NULL ? error : "failed");
		free(error);
		storage_error_fix(ret, &err);
		mbox->sync_err = err;
		mbox->syncs_done = mbox->syncs_started;
		mailbox_synced(mbox, ret < 0 ? -1 : 0, &before, sid);
		return;
	}
	op = mailbox_op_submit(mbox, sjob, NULL, NULL, sid);
	op->sync = true;
	op->gen = mbox->syncs_started;
	op->job = job_submit(job_queue_default(), mailbox_op_work, mailbox_op_done, op);
}

/* In the loop: the sync's reads are done (or never ran). Applies them,
   tells the views, then the waiters; starts the sync news asked for
   meanwhile. */
static void
mailbox_sync_done(struct mailbox_op *op, bool ran)
{
	struct mailbox *mbox = op->mbox;
	struct mailbox_sync_before before;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;
	int ret = -1;

	mailbox_sync_before(mbox, &before);
	if (!ran)
		op->backend->job_abort(mbox->box, &op->sjob);
	else {
		ret = op->backend->sync_commit(mbox->box, &mbox->state, &op->sjob, &err, &error);
		storage_error_fix(ret, &err);
		if (ret < 0)
			log_error(op->sid, "sync %s/%s: %s", mbox->user, mbox->name,
				  error != NULL ? error : "failed");
		free(error);
	}
	mbox->sync_err = ran ? err : STORAGE_ERR_NONE;
	mbox->op = NULL;
	if (op->gen > mbox->syncs_done)
		mbox->syncs_done = op->gen;
	free(op);
	mailbox_synced(mbox, ret, &before, "-");
	mailbox_flush_flags(mbox);
	/* (busy again with the flags: their commit starts it) */
	if (mbox->sync_again && ran && mbox->op == NULL)
		mailbox_sync_start(mbox, "-");
	mailbox_wake_waiters(mbox);
	mailbox_unref(&mbox);
}

int
mailbox_expunge_start(struct mailbox *mbox, const struct seqset *uids, bool deleted_only,
		      mailbox_done_func *done, void *ctx, struct mailbox_op **op_r,
		      enum storage_error *err_r, const char *sid)
{
	const struct storage_backend *backend = mbox->hub->storage.backend;
	struct job_queue *queue = job_queue_default();
	struct storage_job *sjob = NULL;
	struct mailbox_op *op;
	char *error = NULL;
	uint32_t *list;
	size_t count;
	int ret;

	*op_r = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (mailbox_busy_error(mbox, err_r, sid, "expunge"))
		return -1;
	if (queue == NULL || backend->expunge_prepare == NULL || backend->job_work == NULL ||
	    backend->job_commit == NULL || backend->job_abort == NULL)
		return mailbox_expunge_full(mbox, uids, deleted_only, err_r, sid);
	count = mailbox_expunge_collect(&mbox->state, uids, deleted_only, &list);
	if (count == 0)
		return 0;
	ret = backend->expunge_prepare(mbox->box, &mbox->state, list, count, &sjob, err_r, &error);
	storage_error_fix(ret, err_r);
	if (ret < 0 || sjob == NULL) {
		if (ret < 0)
			mailbox_log_write(mbox, sid, ret, *err_r, "expunge", error);
		free(error);
		free(list);
		return ret;
	}
	op = mailbox_op_submit(mbox, sjob, done, ctx, sid);
	op->list = list;
	op->count = count;
	op->job = job_submit(queue, mailbox_op_work, mailbox_op_done, op);
	*op_r = op;
	return 1;
}

bool
mailbox_copies_in_job(const struct mailbox *dest)
{
	const struct storage_backend *b = dest->hub->storage.backend;

	return b->copy_prepare != NULL && b->copy_commit != NULL && b->job_work != NULL &&
	       b->job_abort != NULL && job_queue_default() != NULL;
}

int
mailbox_copy_start(struct mailbox *src, struct mailbox *dest, const struct mail_rec *recs,
		   const uint64_t *keywords, size_t count, uint32_t *uids_r,
		   mailbox_done_func *done, void *ctx, struct mailbox_op **op_r,
		   enum storage_error *err_r, const char *sid)
{
	const struct storage_backend *backend = dest->hub->storage.backend;
	struct storage_job *sjob = NULL;
	struct mailbox_op *op;
	char *error = NULL;
	int ret;

	*op_r = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (mailbox_busy_error(dest, err_r, sid, "copy to"))
		return -1;
	ret = backend->copy_prepare(src->box, dest->box, &dest->state, recs, keywords, count,
				    &sjob, err_r, &error);
	storage_error_fix(ret, err_r);
	if (ret < 0 || sjob == NULL) {
		if (ret == 0) {
			*err_r = STORAGE_ERR_TEMP;
			error = xstrdup("nothing to copy");
		}
		mailbox_log_write(dest, sid, -1, *err_r, "copy to", error);
		free(error);
		return -1;
	}
	op = mailbox_op_submit(dest, sjob, done, ctx, sid);
	op->copy = true;
	op->copy_uids = uids_r;
	op->count = count;
	op->job = job_submit(job_queue_default(), mailbox_op_work, mailbox_op_done, op);
	*op_r = op;
	return 1;
}

bool
mailbox_flags_in_job(const struct mailbox *mbox)
{
	const struct storage_backend *b = mbox->hub->storage.backend;

	return b->flags_prepare != NULL && b->flags_commit != NULL && b->job_work != NULL &&
	       b->job_abort != NULL && job_queue_default() != NULL;
}

int
mailbox_flags_start(struct mailbox *mbox, const struct storage_flag_change *changes,
		    size_t count, uint64_t *modseq_r, mailbox_done_func *done, void *ctx,
		    struct mailbox_op **op_r, enum storage_error *err_r, const char *sid)
{
	const struct storage_backend *backend = mbox->hub->storage.backend;
	struct storage_job *sjob = NULL;
	struct mailbox_op *op;
	char *error = NULL;
	int ret;

	*op_r = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (count == 0)
		return 0;
	if (mailbox_busy_error(mbox, err_r, sid, "store flags"))
		return -1;
	ret = backend->flags_prepare(mbox->box, &mbox->state, changes, count, &sjob, err_r,
				     &error);
	storage_error_fix(ret, err_r);
	if (ret < 0 || sjob == NULL) {
		if (ret < 0)
			mailbox_log_write(mbox, sid, ret, *err_r, "store flags", error);
		free(error);
		return ret < 0 ? -1 : 0;
	}
	op = mailbox_op_submit(mbox, sjob, done, ctx, sid);
	op->flags = true;
	op->modseq_r = modseq_r;
	op->job = job_submit(job_queue_default(), mailbox_op_work, mailbox_op_done, op);
	*op_r = op;
	return 1;
}

/* In the loop: the flag changes or copies are made (or never were).
   Applied, the caller told (or, detached, the views), then the waiters
   go on. */
static void
mailbox_flags_done(struct mailbox_op *op, bool ran)
{
	struct mailbox *mbox = op->mbox;
	enum storage_error err = STORAGE_ERR_TEMP, serr;
	char *error = NULL;
	int ret = -1;

	if (!ran) {
		op->backend->job_abort(mbox->box, &op->sjob);
		error = xstrdup("not done: the server is stopping");
	} else if (op->copy) {
		uint32_t *uids = xcalloc(op->count > 0 ? op->count : 1, sizeof(*uids));

		err = STORAGE_ERR_NONE;
		ret = op->backend->copy_commit(mbox->box, &mbox->state, &op->sjob, uids, &err,
					       &error);
		mailbox_hook_state(mbox);
		storage_error_fix(ret, &err);
		if (ret == 0 && op->done != NULL)
			memcpy(op->copy_uids, uids, op->count * sizeof(*uids));
		free(uids);
	} else {
		uint64_t modseq = 0;

		err = STORAGE_ERR_NONE;
		ret = op->backend->flags_commit(mbox->box, &mbox->state, &op->sjob, &modseq, &err,
						&error);
		storage_error_fix(ret, &err);
		if (ret == 0 && op->done != NULL && op->modseq_r != NULL)
			*op->modseq_r = modseq;
	}
	mailbox_log_write(mbox, op->sid, ret, err, op->copy ? "copy to" : "store flags", error);
	free(error);
	mbox->op = NULL;
	if (op->done != NULL)
		op->done(op->ctx, ret, err);
	else if (ret == 0)
		mailbox_changed(mbox, NULL);
	free(op);
	mailbox_flush_flags(mbox);
	if (mbox->op == NULL && mbox->sync_again)
		(void)mailbox_refresh(mbox, &serr, "-");
	mailbox_wake_waiters(mbox);
	mailbox_unref(&mbox);
}

void
mailbox_op_detach(struct mailbox_op **_op)
{
	struct mailbox_op *op = *_op;

	if (op == NULL)
		return;
	*_op = NULL;
	op->done = NULL;
	op->ctx = NULL;
}

/* An append whose message is written in a job (mailbox_append_start()). */
struct mailbox_append_op {
	struct mailbox *mbox;      /* referenced until the op ends */
	const struct storage_backend *backend;
	struct storage_job *sjob;  /* the worker's until the job is done */
	struct job *job;
	/* The commit waits for a busy mailbox (an expunge at work). */
	struct mailbox_waiter *waiter;
	uint8_t flags;
	uint64_t keywords;
	int64_t internal_date;
	int32_t tz_minutes;
	/* The commit's transaction was made in a job (append_settle). */
	bool settled;
	mailbox_append_done_func *done; /* NULL once detached */
	void *ctx;
	char sid[32];
	struct mailbox_append_op *prev, *next;
};

static void
append_op_free(struct mailbox_append_op *op)
{
	struct mailbox *mbox = op->mbox;

	if (op->prev != NULL)
		op->prev->next = op->next;
	else
		mbox->appends = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	free(op);
}

/* Tells the caller (or, detached, the views) and lets go. */
static void
append_op_finish(struct mailbox_append_op *op, int ret, uint32_t uid, enum storage_error err)
{
	struct mailbox *mbox = op->mbox;
	mailbox_append_done_func *done = op->done;
	void *ctx = op->ctx;

	append_op_free(op);
	if (done != NULL)
		done(ctx, ret, uid, err);
	else if (ret == 0)
		mailbox_changed(mbox, NULL);
	mailbox_unref(&mbox);
}

/* In the loop, the mailbox not busy: the rest of the append (its
   transaction first in a job, if the backend makes it so). */
static void
append_op_commit(void *ctx)
{
	struct mailbox_append_op *op = ctx;
	struct mailbox *mbox = op->mbox;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;
	struct mailbox_op *mop;
	uint32_t uid = 0;
	int ret;

	op->waiter = NULL;
	if (!op->settled && op->backend->append_settle != NULL && job_queue_default() != NULL &&
	    op->backend->append_settle(mbox->box, &mbox->state, op->sjob, op->flags,
				       op->keywords, op->internal_date, op->tz_minutes) > 0) {
		op->settled = true;
		mop = xcalloc(1, sizeof(*mop));
		mop->mbox = mbox;
		mop->backend = op->backend;
		mop->sjob = op->sjob;
		mop->append = op;
		snprintf(mop->sid, sizeof(mop->sid), "%s", op->sid);
		mbox->refcount++;
		mbox->op = mop;
		mop->job = job_submit(job_queue_default(), mailbox_op_work, mailbox_op_done, mop);
		return;
	}
	ret = op->backend->append_commit(mbox->box, &mbox->state, &op->sjob, op->flags,
					 op->keywords, op->internal_date, op->tz_minutes, &uid,
					 &err, &error);
	mailbox_hook_state(mbox);
	storage_error_fix(ret, &err);
	mailbox_log_write(mbox, op->sid, ret, err, "append to", error);
	free(error);
	append_op_finish(op, ret, uid, err);
}

/* In the loop: the append's transaction, made in a job, is done (or
   never ran). Its result applied, the waiters go on. */
static void
append_settled(struct mailbox_op *mop, bool ran)
{
	struct mailbox *mbox = mop->mbox;
	struct mailbox_append_op *op = mop->append;
	enum storage_error serr;

	mbox->op = NULL;
	free(mop);
	if (!ran) {
		op->backend->job_abort(mbox->box, &op->sjob);
		log_info(op->sid, "append to %s/%s: not done, the server is stopping", mbox->user,
			 mbox->name);
		append_op_finish(op, -1, 0, STORAGE_ERR_TEMP);
	} else {
		append_op_commit(op);
	}
	mailbox_flush_flags(mbox);
	if (mbox->sync_again)
		(void)mailbox_refresh(mbox, &serr, "-");
	mailbox_wake_waiters(mbox);
	mailbox_unref(&mbox);
}

static void
append_op_work(void *ctx)
{
	struct mailbox_append_op *op = ctx;

	op->backend->job_work(op->sjob);
}

static void
append_op_done(void *ctx, bool ran)
{
	struct mailbox_append_op *op = ctx;

	op->job = NULL;
	if (!ran) {
		op->backend->job_abort(op->mbox->box, &op->sjob);
		log_info(op->sid, "append to %s/%s: not done, the server is stopping",
			 op->mbox->user, op->mbox->name);
		append_op_finish(op, -1, 0, STORAGE_ERR_TEMP);
	} else if (mailbox_is_busy(op->mbox)) {
		op->waiter = mailbox_wait_idle(op->mbox, append_op_commit, op);
	} else {
		append_op_commit(op);
	}
}

int
mailbox_append_start(struct mailbox *mbox, const char *data, size_t len, uint8_t flags,
		     uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
		     mailbox_append_done_func *done, void *ctx, struct mailbox_append_op **op_r,
		     uint32_t *uid_r, enum storage_error *err_r, const char *sid)
{
	const struct storage_backend *backend = mbox->hub->storage.backend;
	struct job_queue *queue = job_queue_default();
	struct storage_job *sjob = NULL;
	struct mailbox_append_op *op;
	char *error = NULL;
	int ret;

	*op_r = NULL;
	*err_r = STORAGE_ERR_NONE;
	/* (a mailbox busy with a job: the commit waits for it) */
	if (queue == NULL || backend->append_prepare == NULL || backend->append_commit == NULL ||
	    backend->job_work == NULL || backend->job_abort == NULL)
		return mailbox_append(mbox, data, len, flags, keywords, internal_date, tz_minutes,
				      uid_r, err_r, sid);
	ret = backend->append_prepare(mbox->box, data, len, &sjob, err_r, &error);
	storage_error_fix(ret, err_r);
	if (ret < 0 || sjob == NULL) {
		if (ret == 0)
			return mailbox_append(mbox, data, len, flags, keywords, internal_date,
					      tz_minutes, uid_r, err_r, sid);
		mailbox_log_write(mbox, sid, ret, *err_r, "append to", error);
		free(error);
		return -1;
	}
	op = xcalloc(1, sizeof(*op));
	op->mbox = mbox;
	op->backend = backend;
	op->sjob = sjob;
	op->flags = flags;
	op->keywords = keywords;
	op->internal_date = internal_date;
	op->tz_minutes = tz_minutes;
	op->done = done;
	op->ctx = ctx;
	snprintf(op->sid, sizeof(op->sid), "%s", sid);
	op->next = mbox->appends;
	if (mbox->appends != NULL)
		mbox->appends->prev = op;
	mbox->appends = op;
	mbox->refcount++;
	op->job = job_submit(queue, append_op_work, append_op_done, op);
	*op_r = op;
	return 1;
}

void
mailbox_append_detach(struct mailbox_append_op **_op)
{
	struct mailbox_append_op *op = *_op;

	if (op == NULL)
		return;
	*_op = NULL;
	op->done = NULL;
	op->ctx = NULL;
}

void
mailbox_jobs_free(struct mailbox *mbox)
{
	/* An append's transaction at work: waited for; the append (which
	   owns its job) is undone below. */
	if (mbox->op != NULL && mbox->op->append != NULL) {
		job_cancel(&mbox->op->job);
		free(mbox->op);
		mbox->op = NULL;
	}
	mailbox_reads_free(mbox);
	/* Appends first: a job that has not committed is undone (its
	   caller never got an answer). */
	while (mbox->appends != NULL) {
		struct mailbox_append_op *op = mbox->appends;

		job_cancel(&op->job);
		mailbox_waiter_cancel(&op->waiter);
		mbox->hub->storage.backend->job_abort(mbox->box, &op->sjob);
		append_op_free(op);
	}
	/* Only at hub_free(): a job holds a reference. Its work is waited
	   for and undone; the sessions that waited are gone. */
	if (mbox->op != NULL) {
		job_cancel(&mbox->op->job);
		mbox->hub->storage.backend->job_abort(mbox->op->open ? NULL : mbox->box,
						      &mbox->op->sjob);
		free(mbox->op->list);
		free(mbox->op);
		mbox->op = NULL;
	}
	while (mbox->waiters != NULL) {
		struct mailbox_waiter *w = mbox->waiters;
		mbox->waiters = w->next;
		free(w);
	}
}

/* In the loop: the first open's heavy part is done (or never ran). Its
   result stored, the mailbox is opened as usual (cheap now) and the
   waiters go on; if that failed, the mailbox is dropped first, so that
   they meet the failure in their own mailbox_open(). */
static void
mailbox_open_done(struct mailbox_op *op, bool ran)
{
	struct mailbox *mbox = op->mbox;
	struct hub *hub = mbox->hub;
	const struct storage_backend *backend = op->backend;
	enum storage_error err = STORAGE_ERR_NONE;
	struct mailbox_waiter *waiters;
	char *error = NULL;
	int ret = -1, opened = 0;

	if (!ran)
		backend->job_abort(NULL, &op->sjob);
	else {
		opened = backend->open_commit(hub->storage.st, &op->sjob, &mbox->state, &mbox->box,
					      &err, &error);
		if (opened < 0 && err != STORAGE_ERR_NOT_FOUND && err != STORAGE_ERR_BAD_NAME) {
			/* open() does the work itself then */
			log_warn(op->sid, "first open of %s/%s in a job: %s", mbox->user,
				 mbox->name, error != NULL ? error : "failed");
		}
	}
	free(error);
	error = NULL;
	mbox->op = NULL;
	free(op);
	if (opened > 0)
		ret = 0;
	else if (ran)
		ret = backend->open(hub->storage.st, mbox->user, mbox->name, &mbox->state,
				    &mbox->box, &err, &error);
	free(error);
	mbox->opening = false;
	mbox->refcount--;
	if (ret < 0) {
		/* The waiters open it again and meet the error themselves. */
		waiters = mbox->waiters;
		mbox->waiters = mbox->waiters_tail = NULL;
		mailbox_destroy(mbox);
		while (waiters != NULL) {
			struct mailbox_waiter *w = waiters;
			void (*cb)(void *ctx) = w->cb;
			void *ctx = w->ctx;

			waiters = w->next;
			free(w);
			cb(ctx);
		}
		return;
	}
	mbox->expunge_known_from = mbox->state.highest_modseq;
	mbox->syncs_done = mbox->syncs_started;
	/* Referenced by the waiters (or lingering like any mailbox). */
	mbox->refcount++;
	mailbox_wake_waiters(mbox);
	mailbox_unref(&mbox);
}

void
mailbox_open_now(struct mailbox *mbox)
{
	if (mbox->opening && mbox->op != NULL && mbox->op->open)
		job_finish_now(&mbox->op->job);
}

struct mailbox *
hub_open_start(struct hub *hub, const char *sid, const char *user, const char *name)
{
	const struct storage_backend *backend = hub->storage.backend;
	struct job_queue *queue = job_queue_default();
	struct mailbox *mbox = hub_find(hub, user, name);
	struct storage_job *sjob = NULL;
	enum storage_error err;
	struct mailbox_op *op;
	char *error = NULL;

	if (mbox != NULL)
		return mbox->opening ? mbox : NULL;
	if (queue == NULL || backend->open_prepare == NULL || backend->open_commit == NULL ||
	    backend->job_work == NULL || backend->job_abort == NULL)
		return NULL;
	if (backend->open_prepare(hub->storage.st, user, name, &sjob, &err, &error) < 0 ||
	    sjob == NULL) {
		/* open() says why */
		free(error);
		return NULL;
	}
	mbox = xcalloc(1, sizeof(*mbox));
	mbox_state_init(&mbox->state);
	mbox->hub = hub;
	mbox->user = xstrdup(user);
	mbox->name = xstrdup(name);
	mbox->opening = true;
	/* The open reads all of it: it counts as a sync (mailbox_catch_up()). */
	mbox->syncs_started = 1;
	mbox->refcount = 1;        /* the job's */
	mbox->next = hub->mailboxes;
	if (hub->mailboxes != NULL)
		hub->mailboxes->prev = mbox;
	hub->mailboxes = mbox;
	op = xcalloc(1, sizeof(*op));
	op->mbox = mbox;
	op->backend = backend;
	op->sjob = sjob;
	op->open = true;
	snprintf(op->sid, sizeof(op->sid), "%s", sid);
	mbox->op = op;
	log_debug(sid, "%s/%s: first open in a job", user, name);
	op->job = job_submit(queue, mailbox_op_work, mailbox_op_done, op);
	return mbox;
}
