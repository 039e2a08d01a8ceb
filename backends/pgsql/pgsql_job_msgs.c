/* pgsql_job_msgs.c: the pgsql backend's jobs of one command on many
   messages (pgsql_job.c says how each runs): its flag changes in one
   change of the mailbox, the messages it reads ahead in one statement,
   its copies in one change of the destination. */
#ifdef HAVE_PQ

#include "backends/pgsql/pgsql_job.h"

#include "job.h"

#include <stdlib.h>
#include <string.h>

int
pg_flags_prepare(struct storage_box *box, const struct mbox_state *state,
		 const struct storage_flag_change *changes, size_t count,
		 struct storage_job **job_r, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job;

	(void)error_r;
	*job_r = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (count == 0)
		return 0;
	job = pg_job_new(box->st, PG_JOB_FLAGS);
	pg_job_box(job, box);
	job->fchanges = xmalloc(count * sizeof(*changes));
	memcpy(job->fchanges, changes, count * sizeof(*changes));
	job->uids = xmalloc(count * sizeof(*job->uids));
	job->new_flags = xmalloc(count);
	job->new_kw = xmalloc(count * sizeof(*job->new_kw));
	job->skipped = xcalloc(count, 1);
	job->count = count;
	for (size_t i = 0; i < count; i++) {
		ssize_t at = mbox_state_find(state, changes[i].uid);

		job->uids[i] = changes[i].uid;
		job->new_flags[i] = at >= 0 ? state->mails[at].flags : 0;
		job->new_kw[i] = at >= 0 ? state->mails[at].keywords : 0;
		storage_flag_change_apply(&changes[i], &job->new_flags[i], &job->new_kw[i]);
	}
	/* the keywords' names, for the worker */
	for (unsigned i = 0; i < state->keyword_count && i < MBOX_MAX_KEYWORDS; i++)
		job->state.keywords[i] = xstrdup(state->keywords[i]);
	job->state.keyword_count = state->keyword_count;
	job->highest = state->highest_modseq;
	*job_r = job;
	return 0;
}

/* A change's UID and its place in the job, to find it by UID. */
struct pg_flags_at {
	uint32_t uid;
	size_t i;
};

static int
pg_flags_at_cmp(const void *a, const void *b)
{
	uint32_t ua = ((const struct pg_flags_at *)a)->uid;
	uint32_t ub = ((const struct pg_flags_at *)b)->uid;

	return ua < ub ? -1 : ua > ub;
}

/* In the worker, under the lock: the messages of the job that others
   changed after the state was read (in job->changes) get its rule
   applied again to their flags as they are now (the new keywords'
   names in kw_r[i]), or are left out (skipped) if their modseq is past
   the rule's condition. */
static void
pg_flags_rebase(struct storage_job *job, char **kw_r)
{
	PGresult *res = job->changes.changed;
	int rows = res != NULL ? PQntuples(res) : 0;
	struct pg_flags_at *order, key;

	if (rows == 0)
		return;
	order = xmalloc(job->count * sizeof(*order));
	for (size_t i = 0; i < job->count; i++) {
		order[i].uid = job->fchanges[i].uid;
		order[i].i = i;
	}
	qsort(order, job->count, sizeof(*order), pg_flags_at_cmp);
	for (int r = 0; r < rows; r++) {
		const struct pg_flags_at *at;

		key.uid = (uint32_t)pg_i64(res, r, 0);
		at = bsearch(&key, order, job->count, sizeof(*order), pg_flags_at_cmp);
		if (at == NULL)
			continue;
		size_t i = at->i;
		const struct storage_flag_change *c = &job->fchanges[i];
		if (c->conditional && (uint64_t)pg_i64(res, r, 7) > c->unchangedsince) {
			job->skipped[i] = 1;
			continue;
		}
		uint64_t no_kw = 0;
		job->new_flags[i] = (uint8_t)(pg_i64(res, r, 2) & MAIL_FLAGS_ALL);
		storage_flag_change_apply(c, &job->new_flags[i], &no_kw);
		free(kw_r[i]);
		kw_r[i] = pg_keywords_rule(PQgetvalue(res, r, 3), &job->state, c->keywords_set,
					   c->keywords_clear);
	}
	free(order);
}

/* In the worker: the command's flag changes, one change of the box. */
void
pg_flags_work(struct storage_job *job)
{
	struct storage *wst = pg_thread_storage(job->conninfo);
	struct storage_box *box = &job->wbox;
	struct buf uids = BUF_INIT, flags = BUF_INIT, kws = BUF_INIT;
	char **kw = xcalloc(job->count, sizeof(*kw));
	struct pg_params p;
	struct pg_head h;
	size_t written = 0;

	job->ret = -1;
	job_test_hold_named("flags-begin");
	if (pg_job_change_begin(job, wst, &h) < 0)
		goto fail;
	pg_flags_rebase(job, kw);
	buf_append_c(&uids, '{');
	buf_append_c(&flags, '{');
	buf_append_c(&kws, '{');
	for (size_t i = 0; i < job->count; i++) {
		if (job->skipped[i])
			continue;
		if (kw[i] == NULL)
			kw[i] = pg_keywords_out(&job->state, job->new_kw[i]);
		if (written++ > 0) {
			buf_append_c(&uids, ',');
			buf_append_c(&flags, ',');
			buf_append_c(&kws, ',');
		}
		buf_append_u64(&uids, job->uids[i]);
		buf_append_u64(&flags, job->new_flags[i]);
		pg_array_quote(&kws, kw[i]);
	}
	buf_append(&uids, "}", 1);
	buf_append(&flags, "}", 1);
	buf_append(&kws, "}", 1);
	if (written == 0) {
		/* every one changed past its condition: nothing to write (the
		   others' changes read are applied at the commit) */
		pg_rollback(wst);
		job->modseq = 0;
		job->ret = 0;
		goto out;
	}
	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	pg_param_i64(&p, (int64_t)job->modseq);
	pg_param_str(&p, uids.data);
	pg_param_str(&p, flags.data);
	pg_param_str(&p, kws.data);
	/* (a message others expunged meanwhile is not there: left out) */
	if (pg_cmd(wst, "UPDATE imap_messages m SET flags = c.flags, keywords = c.kw, "
			"modseq = $2 "
			"FROM unnest($3::bigint[], $4::integer[], $5::text[]) AS c (uid, flags, kw) "
			"WHERE m.mailbox_id = $1 AND m.uid = c.uid",
		   &p, &job->err, &job->error) < 0 ||
	    pg_head_write(box, job->modseq, &job->err, &job->error) < 0)
		goto fail;
	if (pg_change_commit(box, &job->err, &job->error) < 0) {
		pg_changes_free(&job->changes);
		goto out;
	}
	job->ret = 0;
	job_test_hold_named("flags");
	goto out;
fail:
	pg_changes_free(&job->changes);
	pg_rollback(wst);
out:
	for (size_t i = 0; i < job->count; i++)
		free(kw[i]);
	free(kw);
	buf_free(&uids);
	buf_free(&flags);
	buf_free(&kws);
}

int
pg_flags_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **_job,
		uint64_t *modseq_r, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job = *_job;

	*_job = NULL;
	*modseq_r = 0;
	*err_r = STORAGE_ERR_NONE;
	if (pg_job_failed(job, err_r, error_r)) {
		pg_job_free(job);
		return -1;
	}
	/* what others did first, then this: the rules, applied to the
	   messages as the worker found them (the state now) */
	pg_changes_apply(box, state, &job->changes);
	if (job->modseq == 0) {
		pg_job_free(job);
		return 0;
	}
	for (size_t i = 0; i < job->count; i++) {
		const struct storage_flag_change *c = &job->fchanges[i];
		ssize_t at = mbox_state_find(state, c->uid);

		if (at < 0 || job->skipped[i])
			continue;
		storage_flag_change_apply(c, &state->mails[at].flags, &state->mails[at].keywords);
		state->mails[at].modseq = job->modseq;
		mbox_state_flags_written(state, (size_t)at);
	}
	if (job->modseq > state->highest_modseq)
		state->highest_modseq = job->modseq;
	box->synced = job->modseq;
	*modseq_r = job->modseq;
	pg_job_free(job);
	return 0;
}

int
pg_read_prepare(struct storage_box *box, const struct mail_rec *recs, size_t count,
		struct storage_job **job_r, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job;
	struct buf arr = BUF_INIT;

	(void)error_r;
	*job_r = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (count == 0)
		return 0;
	job = pg_job_new(box->st, PG_JOB_READ);
	job->uids = xmalloc(count * sizeof(*job->uids));
	job->count = count;
	buf_append_c(&arr, '{');
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			buf_append_c(&arr, ',');
		buf_append_u64(&arr, recs[i].priv[0]);
		job->uids[i] = recs[i].uid;
	}
	buf_append(&arr, "}", 1);
	job->body_arr = buf_steal(&arr);
	*job_r = job;
	return 0;
}

void
pg_read_work(struct storage_job *job)
{
	struct storage *wst = pg_thread_storage(job->conninfo);
	struct pg_params p;

	job_test_hold_named("read");
	pg_params_init(&p);
	pg_param_str(&p, job->body_arr);
	job->bodies = pg_exec(wst, "SELECT b.data FROM unnest($1::bigint[]) WITH ORDINALITY "
			      "AS u (id, n) LEFT JOIN imap_bodies b ON b.id = u.id ORDER BY u.n",
			      &p, true, &job->err, &job->error);
	job->ret = job->bodies != NULL && (size_t)PQntuples(job->bodies) == job->count ? 0 : -1;
	if (job->ret < 0 && job->error == NULL) {
		job->err = STORAGE_ERR_TEMP;
		job->error = xstrdup("the bodies read do not match the ones asked for");
	}
}

int
pg_read_take(struct storage_job *job, size_t i, struct buf *out, enum storage_error *err_r,
	     char **error_r)
{
	*err_r = STORAGE_ERR_NONE;
	if (job->ret < 0) {
		*err_r = job->err;
		*error_r = xstrdup(job->error != NULL ? job->error : "failed");
		return -1;
	}
	if (i >= job->count || PQgetisnull(job->bodies, (int)i, 0)) {
		*err_r = STORAGE_ERR_NOT_FOUND;
		*error_r = xasprintf("message %u no longer exists",
				     i < job->count ? job->uids[i] : 0);
		return -1;
	}
	buf_append(out, PQgetvalue(job->bodies, (int)i, 0),
		   (size_t)PQgetlength(job->bodies, (int)i, 0));
	return 0;
}

int
pg_copy_prepare(struct storage_box *src, struct storage_box *dst,
		const struct mbox_state *dst_state, const struct mail_rec *recs,
		const uint64_t *keywords, size_t count, struct storage_job **job_r,
		enum storage_error *err_r, char **error_r)
{
	struct storage_job *job;
	struct buf cols[5];

	(void)src;
	(void)error_r;
	*job_r = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (count == 0)
		return 0;
	job = pg_job_new(dst->st, PG_JOB_COPY);
	pg_job_box(job, dst);
	job->recs = xmalloc(count * sizeof(*recs));
	job->count = count;
	job->highest = dst_state->highest_modseq;
	/* body ids, flags, keywords (quoted), dates, time zones; the sizes
	   in body_arr */
	memset(cols, 0, sizeof(cols));  /* BUF_INIT each */
	for (size_t c = 0; c < 5; c++)
		buf_append_c(&cols[c], '{');
	struct buf sizes = BUF_INIT;
	buf_append_c(&sizes, '{');
	for (size_t i = 0; i < count; i++) {
		char *kw = pg_keywords_out(dst_state, keywords[i]);

		job->recs[i] = recs[i];
		job->recs[i].keywords = keywords[i];
		if (i > 0) {
			for (size_t c = 0; c < 5; c++)
				buf_append_c(&cols[c], ',');
			buf_append_c(&sizes, ',');
		}
		buf_append_u64(&cols[0], recs[i].priv[0]);
		buf_append_u64(&cols[1], recs[i].flags & MAIL_FLAGS_ALL);
		pg_array_quote(&cols[2], kw);
		buf_printf(&cols[3], "%lld", (long long)recs[i].internal_date);
		buf_printf(&cols[4], "%d", (int)recs[i].tz_minutes);
		buf_append_u64(&sizes, recs[i].size);
		free(kw);
	}
	for (size_t c = 0; c < 5; c++) {
		buf_append(&cols[c], "}", 1);
		job->copy_cols[c] = buf_steal(&cols[c]);
	}
	buf_append(&sizes, "}", 1);
	job->body_arr = buf_steal(&sizes);
	*job_r = job;
	return 0;
}

/* In the worker: the copies, one change of the destination. */
void
pg_copy_work(struct storage_job *job)
{
	struct storage *wst = pg_thread_storage(job->conninfo);
	struct storage_box *box = &job->wbox;
	struct pg_params p;
	struct pg_head h;

	job->ret = -1;
	job_test_hold_named("copy");
	if (pg_job_change_begin(job, wst, &h) < 0)
		goto fail;
	if (!pg_uids_left(&h, &job->err, &job->error))
		goto fail;
	if ((uint64_t)h.uidnext + job->count >= UINT32_MAX) {
		job->err = STORAGE_ERR_LIMIT;
		job->error = xstrdup("not enough UIDs left in this mailbox");
		goto fail;
	}
	job->first_uid = h.uidnext;
	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	pg_param_i64(&p, job->first_uid);
	pg_param_i64(&p, (int64_t)job->modseq);
	for (size_t c = 0; c < 5; c++)
		pg_param_str(&p, job->copy_cols[c]);
	pg_param_str(&p, job->body_arr);
	if (pg_cmd(wst, "INSERT INTO imap_messages (mailbox_id, uid, body_id, flags, keywords, "
			"internal_date, tz_minutes, size, modseq) "
			"SELECT $1, $2 + c.n - 1, c.b, c.f, c.k, c.d, c.t, c.s, $3 "
			"FROM unnest($4::bigint[], $5::integer[], $6::text[], $7::bigint[], "
			"  $8::integer[], $9::bigint[]) WITH ORDINALITY AS c (b, f, k, d, t, s, n)",
		   &p, &job->err, &job->error) < 0)
		goto fail;
	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	pg_param_i64(&p, job->first_uid + job->count);
	pg_param_i64(&p, (int64_t)job->modseq);
	pg_param_str(&p, box->news);
	if (pg_cmd(wst, "UPDATE imap_mailboxes SET uidnext = $2, highest_modseq = $3 "
			"WHERE id = $1 RETURNING pg_notify('" PG_CHANNEL "', $4)",
		   &p, &job->err, &job->error) < 0)
		goto fail;
	if (pg_change_commit(box, &job->err, &job->error) < 0) {
		pg_changes_free(&job->changes);
		return;
	}
	job->ret = 0;
	job_test_hold_named("copied");
	return;
fail:
	pg_changes_free(&job->changes);
	pg_rollback(wst);
}

int
pg_copy_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **_job,
	       uint32_t *uids_r, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job = *_job;

	*_job = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (pg_job_failed(job, err_r, error_r)) {
		pg_job_free(job);
		return -1;
	}
	/* what others did first, then this */
	pg_changes_apply(box, state, &job->changes);
	for (size_t i = 0; i < job->count; i++) {
		struct mail_rec rec = job->recs[i];

		rec.uid = job->first_uid + (uint32_t)i;
		rec.flags &= MAIL_FLAGS_ALL;
		rec.modseq = job->modseq;
		mbox_state_append(state, &rec);
		uids_r[i] = rec.uid;
	}
	if (job->modseq > state->highest_modseq)
		state->highest_modseq = job->modseq;
	box->synced = job->modseq;
	pg_job_free(job);
	return 0;
}

#endif /* HAVE_PQ */
