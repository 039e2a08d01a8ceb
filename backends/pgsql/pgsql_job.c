/* pgsql_job.c: the round trips of the "pgsql" backend that cost a
   mailbox's or a message's size, and the check for changes made before
   most commands, made in a worker thread (storage.h: open_prepare,
   append_prepare, expunge_prepare, sync_prepare; core/io/job.h) so that
   the loop does not wait for them.

   A worker has a connection of its own (pg_thread_storage()): libpq's
   connections are not shared between threads, and the loop's stays the
   loop's. What the worker does is a complete step by itself:

   - The first open of a mailbox reads its row and every message in one
     snapshot (pg_open(), unchanged, on the worker's connection). The
     commit hands the box to the loop's connection; whatever other
     sessions committed after the snapshot is caught up by the box's next
     sync or change, from the snapshot's HIGHESTMODSEQ on, as for any
     box.
   - An expunge is its whole change there: the mailbox's row locked, the
     changes other sessions committed since the box's last sync read
     (not applied: the state is the loop's), the messages removed at the
     next modseq, the commit. The loop's commit applies what was read,
     then the expunge, as expunge() does in one go. Meanwhile the core
     makes no other change of the box (storage.h); reads go on.
   - A sync (before a command, or on news from another server) reads,
     in one snapshot, every change committed since the box's last sync
     (pg_sync_read()); the commit applies them (pg_sync_apply()), as
     pg_sync() does in one go.
   - An append stores the message's body (the bulk of the bytes) with a
     guard row in imap_body_pending, in one statement. Then, settled
     (storage.h append_settle, the mailbox busy), the worker makes the
     short change that hands out the UID under the mailbox's lock and
     takes the body (removing the guard in the same transaction), reading
     the changes others committed as an expunge does; the loop's commit
     applies them, then the message. A body whose commit never came (the server killed, the
     change refused) is collected with its guard after PG_BODY_GRACE
     (pg_bodies_collect_old()); the guard's foreign key keeps every
     collector off a body a commit is about to take.
   - The messages a FETCH is about to read (storage.h read_prepare) are
     read in one statement; the loop takes them one by one.
   - A COPY (storage.h copy_prepare) is one change of the destination:
     its row locked, the others' changes read, the copies inserted in one
     statement with the originals' bodies, the commit.
   - A command's flag changes (storage.h flags_prepare) are one change:
     the row locked, the others' changes read, every message updated in
     one statement at one new modseq, the commit; the loop's commit
     applies the others' changes, then the flags. */
#ifdef HAVE_PQ

#include "backends/pgsql/pgsql_job.h"

#include "buf.h"
#include "job.h"

#include <stdlib.h>
#include <string.h>

struct storage_job *
pg_job_new(struct storage *st, enum pg_job_kind kind)
{
	struct storage_job *job = xcalloc(1, sizeof(*job));

	job->st = st;
	job->conninfo = xstrdup(st->conninfo);
	job->kind = kind;
	mbox_state_init(&job->state);
	return job;
}

void
pg_job_free(struct storage_job *job)
{
	if (job->box != NULL)
		pg_close(&job->box);
	mbox_state_deinit(&job->state);
	free(job->error);
	free(job->user);
	free(job->name);
	free(job->data);
	free(job->uids);
	free(job->wbox.news);
	free(job->kw);
	free(job->fchanges);
	free(job->new_flags);
	free(job->new_kw);
	free(job->skipped);
	free(job->body_arr);
	free(job->recs);
	for (size_t i = 0; i < N_ELEMENTS(job->copy_cols); i++)
		free(job->copy_cols[i]);
	if (job->bodies != NULL)
		PQclear(job->bodies);
	pg_changes_free(&job->changes);
	free(job->conninfo);
	free(job);
}

/* The job's copy of box, for the worker (its st set there). */
void
pg_job_box(struct storage_job *job, const struct storage_box *box)
{
	job->wbox = *box;
	job->wbox.st = NULL;
	job->wbox.news = xstrdup(box->news);
}

/* value, quoted as an element of an SQL array literal (a keyword may
   hold ',' or '}'; never '"' or a backslash, escaped anyway). */
void
pg_array_quote(struct buf *arr, const char *value)
{
	buf_append_c(arr, '"');
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			buf_append_c(arr, '\\');
		buf_append_c(arr, *p);
	}
	buf_append_c(arr, '"');
}

/* At a commit: whether the work failed; then its failure is the
   commit's (the reason moved to *error_r). */
bool
pg_job_failed(struct storage_job *job, enum storage_error *err_r, char **error_r)
{
	if (job->ret >= 0)
		return false;
	*err_r = job->err;
	*error_r = job->error;
	job->error = NULL;
	return true;
}

/* In the worker: begins a change of the job's box (wbox, on the
   worker's connection wst): the transaction, the row locked (*h), the
   changes others committed since the box's last sync read into the job
   (not applied: the state is the loop's), and the change's modseq,
   above every one given (job->modseq). On failure the caller rolls
   back. */
int
pg_job_change_begin(struct storage_job *job, struct storage *wst, struct pg_head *h)
{
	struct storage_box *box = &job->wbox;

	box->st = wst;
	if (pg_cmd(box->st, "BEGIN", NULL, &job->err, &job->error) < 0 ||
	    pg_head_read(box, true, h, &job->err, &job->error) < 0)
		return -1;
	if (h->uidvalidity != box->uidvalidity) {
		job->err = STORAGE_ERR_TEMP;
		job->error = xstrdup("the mailbox was made again meanwhile");
		return -1;
	}
	job->modseq = (h->highest > job->highest ? h->highest : job->highest) + 1;
	return pg_changes_fetch(box, h, &job->changes, &job->err, &job->error);
}

int
pg_open_prepare(struct storage *st, const char *user, const char *name,
		struct storage_job **job_r, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job = pg_job_new(st, PG_JOB_OPEN);

	(void)error_r;
	*err_r = STORAGE_ERR_NONE;
	job->user = xstrdup(user);
	job->name = xstrdup(name);
	*job_r = job;
	return 0;
}

static void
pg_open_work(struct storage_job *job)
{
	struct storage *wst = pg_thread_storage(job->conninfo);

	job->ret = pg_open(wst, job->user, job->name, &job->state, &job->box, &job->err,
			   &job->error);
	job_test_hold();
}

int
pg_open_commit(struct storage *st, struct storage_job **_job, struct mbox_state *state,
	       struct storage_box **box_r, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job = *_job;
	int ret = 1;

	*_job = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (pg_job_failed(job, err_r, error_r)) {
		ret = -1;
	} else {
		mbox_state_deinit(state);
		*state = job->state;
		mbox_state_init(&job->state);
		job->box->st = st;
		*box_r = job->box;
		job->box = NULL;
	}
	pg_job_free(job);
	return ret;
}

int
pg_append_prepare(struct storage_box *box, const char *data, size_t len,
		  struct storage_job **job_r, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job;

	*job_r = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (len == 0 || len > PG_MAX_MSG) {
		*err_r = STORAGE_ERR_LIMIT;
		*error_r = xstrdup("message is empty or too large");
		return -1;
	}
	job = pg_job_new(box->st, PG_JOB_APPEND);
	job->data = xmalloc(len);
	memcpy(job->data, data, len);
	job->len = len;
	*job_r = job;
	return 0;
}

static void
pg_append_work(struct storage_job *job)
{
	struct storage *wst = pg_thread_storage(job->conninfo);
	char digest[STORAGE_OBJECTID_SIZE];
	struct buf body = BUF_INIT;
	struct pg_params p;
	PGresult *res;

	job->ret = -1;
	if (pg_body_make(job->data, job->len, &body, digest, &job->err, &job->error) < 0)
		goto out;
	free(job->data);
	job->data = NULL;
	pg_params_init(&p);
	pg_param_str(&p, digest);
	pg_param_bin(&p, body.data, body.len);
	/* stored once (as pg_add() does), and guarded at once */
	res = pg_exec(wst,
		      "WITH b AS (INSERT INTO imap_bodies (digest, data) VALUES ($1, $2) "
		      "  ON CONFLICT (digest) DO UPDATE SET digest = EXCLUDED.digest RETURNING id) "
		      "INSERT INTO imap_body_pending (body_id) SELECT id FROM b RETURNING body_id, id",
		      &p, false, &job->err, &job->error);
	if (res == NULL)
		goto out;
	job->body_id = pg_i64(res, 0, 0);
	job->pending_id = pg_i64(res, 0, 1);
	job->size = body.len;
	PQclear(res);
	job->ret = 0;
	job_test_hold();
out:
	buf_free(&body);
}

int
pg_append_settle(struct storage_box *box, const struct mbox_state *state, struct storage_job *job,
		 uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes)
{
	struct pg_head h = { 0 };

	if (job->ret < 0)
		return 0;
	job->settled = true;
	pg_job_box(job, box);
	job->kw = pg_keywords_out(state, keywords);
	job->highest = state->highest_modseq;
	/* the UID and modseq are the transaction's */
	pg_add_rec(&h, 0, flags, keywords, internal_date, tz_minutes, job->size, &job->rec);
	return 1;
}

/* In the worker, settled: the append's whole change, as pg_add() makes
   it in the loop (the changes others committed read, not applied). */
static void
pg_append_commit_work(struct storage_job *job)
{
	struct storage *wst = pg_thread_storage(job->conninfo);
	struct storage_box *box = &job->wbox;
	struct pg_new_msg m;
	struct pg_head h;
	struct mail_rec *rec = &job->rec;

	job->ret = -1;
	if (pg_job_change_begin(job, wst, &h) < 0)
		goto fail;
	if (!pg_uids_left(&h, &job->err, &job->error))
		goto fail;
	rec->uid = h.uidnext;
	rec->modseq = job->modseq;
	memset(&m, 0, sizeof(m));
	m.body_id = job->body_id;
	m.pending_id = job->pending_id;
	m.size = job->size;
	if (pg_add_write(box, &m, rec, job->kw, &job->err, &job->error) < 0)
		goto fail;
	if (pg_change_commit(box, &job->err, &job->error) < 0) {
		pg_changes_free(&job->changes);
		goto drop;
	}
	/* the guard went with the commit */
	job->pending_id = 0;
	job->ret = 0;
	job_test_hold_named("commit");
	return;
fail:
	pg_changes_free(&job->changes);
	pg_rollback(wst);
drop:
	pg_body_pending_drop(wst, job->pending_id);
	job->pending_id = 0;
}

int
pg_append_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **_job,
		 uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
		 uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job = *_job;
	struct pg_new_msg m;
	int ret;

	*_job = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (pg_job_failed(job, err_r, error_r)) {
		pg_job_free(job);
		return -1;
	}
	if (job->settled) {
		/* as pg_add(): what others did first, then this */
		pg_changes_apply(box, state, &job->changes);
		mbox_state_append(state, &job->rec);
		if (job->rec.modseq > state->highest_modseq)
			state->highest_modseq = job->rec.modseq;
		box->synced = job->rec.modseq;
		*uid_r = job->rec.uid;
		pg_job_free(job);
		return 0;
	}
	memset(&m, 0, sizeof(m));
	m.body_id = job->body_id;
	m.pending_id = job->pending_id;
	m.size = job->size;
	ret = pg_add(box, state, &m, flags, keywords, internal_date, tz_minutes, uid_r, err_r,
		     error_r);
	if (ret < 0)
		pg_body_pending_drop(box->st, job->pending_id);
	pg_job_free(job);
	return ret;
}

int
pg_expunge_prepare(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
		   size_t count, struct storage_job **job_r, enum storage_error *err_r,
		   char **error_r)
{
	struct storage_job *job;

	(void)error_r;
	*job_r = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (count == 0)
		return 0;
	job = pg_job_new(box->st, PG_JOB_EXPUNGE);
	pg_job_box(job, box);
	job->uids = xmalloc(count * sizeof(*uids));
	memcpy(job->uids, uids, count * sizeof(*uids));
	job->count = count;
	job->highest = state->highest_modseq;
	*job_r = job;
	return 0;
}

static void
pg_expunge_work(struct storage_job *job)
{
	struct storage *wst = pg_thread_storage(job->conninfo);
	struct storage_box *box = &job->wbox;
	struct pg_head h;
	char *arr = pg_uid_array(job->uids, job->count);

	job->ret = -1;
	if (pg_job_change_begin(job, wst, &h) < 0)
		goto fail;
	if (pg_expunge_write(box, arr, job->modseq, &job->err, &job->error) < 0)
		goto fail;
	free(arr);
	if (pg_change_commit(box, &job->err, &job->error) < 0) {
		pg_changes_free(&job->changes);
		return;
	}
	job->ret = 0;
	job_test_hold();
	/* the bodies this left are collected later (PG_BODY_GRACE) */
	pg_bodies_collect_old(wst);
	return;
fail:
	free(arr);
	pg_changes_free(&job->changes);
	pg_rollback(wst);
}

int
pg_job_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **_job,
	      enum storage_error *err_r, char **error_r)
{
	struct storage_job *job = *_job;
	int ret = 0;

	*_job = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (pg_job_failed(job, err_r, error_r)) {
		ret = -1;
	} else {
		/* as pg_expunge(): what others did first, then this */
		pg_changes_apply(box, state, &job->changes);
		mbox_state_remove_uids(state, job->uids, job->count);
		if (job->modseq > state->highest_modseq)
			state->highest_modseq = job->modseq;
		box->synced = job->modseq;
	}
	pg_job_free(job);
	return ret;
}

int
pg_sync_prepare(struct storage_box *box, const struct mbox_state *state, bool take_recent,
		struct storage_job **job_r, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job = pg_job_new(box->st, PG_JOB_SYNC);

	(void)state;
	(void)error_r;
	*err_r = STORAGE_ERR_NONE;
	pg_job_box(job, box);
	job->take_recent = take_recent;
	*job_r = job;
	return 0;
}

static void
pg_sync_work(struct storage_job *job)
{
	uint32_t uidnext;

	job->wbox.st = pg_thread_storage(job->conninfo);
	job->ret = pg_sync_read(&job->wbox, &job->changes, &job->reload, &job->err,
				&job->error);
	/* \Recent of what was read, for this process: the loop's
	   recent_take() finds it taken (the messages from recent_from on
	   are this process's sessions' to claim) */
	uidnext = job->changes.h.uidnext;
	if (job->ret == 0 && job->take_recent && !job->reload &&
	    uidnext > job->wbox.recent_written) {
		job->recent_from = pg_recent_take(&job->wbox, NULL, uidnext);
		job->recent_upto = uidnext;
	}
	job_test_hold_named("sync");
}

int
pg_sync_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **_job,
	       enum storage_error *err_r, char **error_r)
{
	struct storage_job *job = *_job;
	int ret;

	*_job = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (pg_job_failed(job, err_r, error_r)) {
		ret = -1;
	} else {
		ret = pg_sync_apply(box, state, &job->changes, job->reload);
		if (ret == 0 && job->recent_upto != 0) {
			if (job->recent_from > state->first_recent_uid)
				state->first_recent_uid = job->recent_from;
			if (job->recent_upto > state->recent_taken)
				state->recent_taken = job->recent_upto;
			if (job->recent_upto > box->recent_written)
				box->recent_written = job->recent_upto;
		}
	}
	pg_job_free(job);
	return ret;
}

void
pg_job_work(struct storage_job *job)
{
	switch (job->kind) {
	case PG_JOB_OPEN:
		pg_open_work(job);
		break;
	case PG_JOB_APPEND:
		if (job->settled)
			pg_append_commit_work(job);
		else
			pg_append_work(job);
		break;
	case PG_JOB_EXPUNGE:
		pg_expunge_work(job);
		break;
	case PG_JOB_SYNC:
		pg_sync_work(job);
		break;
	case PG_JOB_FLAGS:
		pg_flags_work(job);
		break;
	case PG_JOB_READ:
		pg_read_work(job);
		break;
	case PG_JOB_COPY:
		pg_copy_work(job);
		break;
	}
}

void
pg_job_abort(struct storage_box *box, struct storage_job **_job)
{
	struct storage_job *job = *_job;

	(void)box;
	if (job == NULL)
		return;
	*_job = NULL;
	if (job->kind == PG_JOB_APPEND && job->pending_id != 0)
		pg_body_pending_drop(job->st, job->pending_id);
	pg_job_free(job);
}

#endif /* HAVE_PQ */
