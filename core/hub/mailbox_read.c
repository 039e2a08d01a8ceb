/* mailbox_read.c: messages read ahead in a job (mailbox.h
   mailbox_read_start()), for a backend whose every read is a round trip:
   a FETCH asks for its next messages at once and waits, the loop serves
   the other sessions meanwhile. The mailbox is referenced, not busy. */
#include "mailbox.h"
#include "mailbox_private.h"
#include "job.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mailbox_read_op {
	struct mailbox *mbox;      /* referenced until the op is freed */
	const struct storage_backend *backend;
	struct storage_job *sjob;  /* the worker's until the job is done */
	struct job *job;
	uint32_t *uids;            /* for the log */
	size_t count;
	bool ran;
	void (*done)(void *ctx);   /* NULL once freed by its caller */
	void *ctx;
	char sid[32];
	struct mailbox_read_op *prev, *next;
};

bool
mailbox_reads_in_job(const struct mailbox *mbox)
{
	const struct storage_backend *b = mbox->hub->storage.backend;

	return b->read_prepare != NULL && b->read_take != NULL && b->job_work != NULL &&
	       b->job_abort != NULL && job_queue_default() != NULL && mbox->box != NULL;
}

static void
read_op_release(struct mailbox_read_op *op)
{
	struct mailbox *mbox = op->mbox;

	if (op->prev != NULL)
		op->prev->next = op->next;
	else
		mbox->reads = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	op->backend->job_abort(mbox->box, &op->sjob);
	free(op->uids);
	free(op);
	mailbox_unref(&mbox);
}

static void
read_op_work(void *ctx)
{
	struct mailbox_read_op *op = ctx;

	op->backend->job_work(op->sjob);
}

static void
read_op_done(void *ctx, bool ran)
{
	struct mailbox_read_op *op = ctx;

	op->job = NULL;
	op->ran = ran;
	if (op->done == NULL) {
		read_op_release(op);
		return;
	}
	op->done(op->ctx);
}

struct mailbox_read_op *
mailbox_read_start(struct mailbox *mbox, const struct mail_rec *recs, size_t count,
		   void (*done)(void *ctx), void *ctx, const char *sid)
{
	const struct storage_backend *backend = mbox->hub->storage.backend;
	struct storage_job *sjob = NULL;
	struct mailbox_read_op *op;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	if (count == 0 || !mailbox_reads_in_job(mbox))
		return NULL;
	if (backend->read_prepare(mbox->box, recs, count, &sjob, &err, &error) < 0 ||
	    sjob == NULL) {
		/* read() says why, message by message */
		free(error);
		return NULL;
	}
	op = xcalloc(1, sizeof(*op));
	op->mbox = mbox;
	op->backend = backend;
	op->sjob = sjob;
	op->uids = xmalloc(count * sizeof(*op->uids));
	for (size_t i = 0; i < count; i++)
		op->uids[i] = recs[i].uid;
	op->count = count;
	op->done = done;
	op->ctx = ctx;
	snprintf(op->sid, sizeof(op->sid), "%s", sid);
	op->next = mbox->reads;
	if (mbox->reads != NULL)
		mbox->reads->prev = op;
	mbox->reads = op;
	mbox->refcount++;
	op->job = job_submit(job_queue_default(), read_op_work, read_op_done, op);
	return op;
}

int
mailbox_read_take(struct mailbox_read_op *op, size_t i, struct buf *out,
		  enum storage_error *err_r)
{
	struct mailbox *mbox = op->mbox;
	char *error = NULL;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	if (i >= op->count || op->job != NULL) {
		*err_r = STORAGE_ERR_TEMP;
		return -1;
	}
	if (!op->ran) {
		*err_r = STORAGE_ERR_TEMP;
		log_info(op->sid, "read %s/%s uid %u: not done, the server is stopping", mbox->user,
			 mbox->name, op->uids[i]);
		return -1;
	}
	ret = op->backend->read_take(op->sjob, i, out, err_r, &error);
	storage_error_fix(ret, err_r);
	if (ret < 0 && *err_r == STORAGE_ERR_NOT_FOUND && mailbox_expunging(mbox, op->uids[i])) {
		log_info(op->sid, "read %s/%s uid %u: being expunged", mbox->user, mbox->name,
			 op->uids[i]);
		free(error);
		return -1;
	}
	if (ret < 0) {
		log_error(op->sid, "read %s/%s uid %u: %s", mbox->user, mbox->name, op->uids[i],
			  error != NULL ? error : "failed");
		free(error);
		return -1;
	}
	return 0;
}

void
mailbox_read_free(struct mailbox_read_op **_op)
{
	struct mailbox_read_op *op = *_op;

	if (op == NULL)
		return;
	*_op = NULL;
	if (op->job != NULL) {
		/* its done() frees it */
		op->done = NULL;
		op->ctx = NULL;
		return;
	}
	read_op_release(op);
}

void
mailbox_reads_free(struct mailbox *mbox)
{
	while (mbox->reads != NULL) {
		struct mailbox_read_op *op = mbox->reads;

		job_cancel(&op->job);
		mbox->reads = op->next;
		if (mbox->reads != NULL)
			mbox->reads->prev = NULL;
		op->backend->job_abort(mbox->box, &op->sjob);
		free(op->uids);
		free(op);
	}
}
