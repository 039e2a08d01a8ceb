/* maildir_expunge.c: expunging messages (the expunge() op).

   Safety: under the lock, each file is unlink()ed and the folders it
   left are fsynced, so that a power loss cannot bring back a message a
   client was told is gone. The uidlist is not rewritten then: its
   records of the gone files are dropped by every reader (a UID whose
   file is gone is an expunged message, as in Dovecot), and the rewrite
   joins the batch of flag changes (maildir_flags.c): it is written at
   the next batch point, or at once if the expunge's modseq passed the
   ceiling C on disk. A crash before that leaves UIDs whose file is
   gone, which the next scan drops, and a reopen starts at or above C,
   so no modseq a client saw comes back. An EXPUNGE costs the unlinks
   and one fsync per folder, not a rewrite of the whole uidlist with two
   more. A file another tool renamed meanwhile is looked for once more
   by its base name.

   In three steps (storage.h, expunge_prepare), so that the loop waits
   for none of it: the prepare takes the lock and the paths; the work
   unlinks and fsyncs, in a worker, the mailbox busy meanwhile (a read
   of a message whose file went already fails: the hub knows it is
   being expunged, mailbox_expunging()); the commit removes them from
   the table and the state, then lets go of the lock. md_expunge() runs
   the three in a row. */
#include "fileio.h"
#include "job.h"
#include "backends/maildir/maildir_private.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

/* A file the work did not find: renamed by another tool meanwhile?
   Looked for once more by its base name and removed (the folder it left
   marked for a sync). Returns true if it is gone now. */
static bool
expunge_located(struct storage_box *box, struct mfile *f, bool *sync_cur, bool *sync_new)
{
	char *path;
	bool gone = true;

	if (md_locate(box, f)) {
		path = md_file_path(box, f);
		if (fs_unlink_beneath(box->user_dir, path) < 0 && errno != ENOENT)
			gone = false;
		else if (f->in_new)
			*sync_new = true;
		else
			*sync_cur = true;
		free(path);
	}
	return gone;
}

/* Writes the uidlist after an expunge (reserve: raise the ceiling C).
   Returns ret, or -1 (with the reason in *error_r) if the write fails
   and ret was 0: the first error is the one told. */
static int
expunge_write_uidlist(struct storage_box *box, const struct mbox_state *state, bool reserve,
		      int ret, char **error_r)
{
	char *werr = NULL;

	if (md_uidlist_write_soft(box, state, reserve, &werr) < 0 && ret == 0) {
		*error_r = werr;
		werr = NULL;
		ret = -1;
	}
	free(werr);
	return ret;
}

/* An expunge between its prepare and its commit (storage.h,
   expunge_prepare): the files to remove, by path, and what the work
   did with each. The box keeps the lock meanwhile. */
struct md_expunge_job {
	char *user_dir, *cur_dir, *new_dir;
	size_t count;
	uint32_t *uids;            /* ascending */
	char **paths;
	bool *in_new;
	/* the work's: unlinked, or not there (renamed by another tool
	   meanwhile: the commit looks for it once more) */
	bool *gone, *missing;
	size_t done;               /* how many the work went through */
	int work_errno;
	char *work_error;
	struct md_own_change own;
};

static void
expunge_job_free(struct md_expunge_job *x)
{
	for (size_t i = 0; i < x->count; i++)
		free(x->paths[i]);
	free(x->paths);
	free(x->uids);
	free(x->in_new);
	free(x->gone);
	free(x->missing);
	free(x->user_dir);
	free(x->cur_dir);
	free(x->new_dir);
	free(x->work_error);
	free(x);
}

/* In the loop: the lock (kept until the commit), the folder read again
   if another process changed it, and the files of the UIDs found.
   *x_r NULL (and the lock let go) if none is there. */
int
md_expunge_prepare(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
		   size_t count, struct md_expunge_job **x_r, enum storage_error *err_r,
		   char **error_r)
{
	struct md_expunge_job *x;

	*x_r = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (count == 0)
		return 0;
	if (md_files_load(box, error_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		return -1;
	}
	if (md_lock(box, err_r, error_r) < 0)
		return -1;
	if (!md_unchanged(box) && md_sync_locked(box, state, error_r) < 0) {
		*err_r = storage_error_from_errno(errno);
		md_unlock(box);
		return -1;
	}
	x = xcalloc(1, sizeof(*x));
	x->uids = xmalloc(count * sizeof(*x->uids));
	x->paths = xmalloc(count * sizeof(*x->paths));
	x->in_new = xcalloc(count, sizeof(*x->in_new));
	x->gone = xcalloc(count, sizeof(*x->gone));
	x->missing = xcalloc(count, sizeof(*x->missing));
	for (size_t i = 0; i < box->files.count && x->count < count; i++) {
		const struct mfile *f = &box->files.f[i];

		if (!u32_sorted_contains(uids, count, f->uid))
			continue;
		x->uids[x->count] = f->uid;
		x->paths[x->count] = md_file_path(box, f);
		x->in_new[x->count] = f->in_new;
		x->count++;
	}
	if (x->count == 0) {
		expunge_job_free(x);
		md_unlock(box);
		return 0;
	}
	x->user_dir = xstrdup(box->user_dir);
	x->cur_dir = xstrdup(box->cur_dir);
	x->new_dir = xstrdup(box->new_dir);
	md_own_change_begin(box, &x->own);
	*x_r = x;
	return 0;
}

/* The work (a worker thread, or inline): the unlinks, then one fsync per
   folder they left, so that a power loss cannot bring back a message a
   client is then told is gone. Touches only x. */
void
md_expunge_work(struct md_expunge_job *x)
{
	bool from_cur = false, from_new = false;

	for (; x->done < x->count; x->done++) {
		size_t i = x->done;

		if (fs_unlink_beneath(x->user_dir, x->paths[i]) < 0) {
			if (errno != ENOENT) {
				x->work_errno = errno;
				x->work_error = xasprintf("unlink %s: %s", x->paths[i],
							  strerror(errno));
				break;
			}
			x->missing[i] = true;
			continue;
		}
		x->gone[i] = true;
		if (x->in_new[i])
			from_new = true;
		else
			from_cur = true;
	}
	job_test_hold_named("expunge-unlinked");
	if (from_cur)
		(void)fsync_dir_beneath(x->user_dir, x->cur_dir);
	if (from_new)
		(void)fsync_dir_beneath(x->user_dir, x->new_dir);
}

/* In the loop: the files the work removed leave the table and state
   (one pass each); one another tool renamed meanwhile is looked for once
   more by its base name and removed here. The lock is let go. */
int
md_expunge_commit(struct storage_box *box, struct mbox_state *state, struct md_expunge_job *x,
		  enum storage_error *err_r, char **error_r)
{
	uint32_t *gone = xmalloc(x->count * sizeof(*gone));
	size_t ngone = 0, out = 0, k = 0;
	bool sync_cur = false, sync_new = false;
	int ret = 0;

	*err_r = STORAGE_ERR_NONE;
	for (size_t i = 0; i < box->files.count; i++) {
		struct mfile *f = &box->files.f[i];

		while (k < x->count && x->uids[k] < f->uid)
			k++;
		if (k < x->count && x->uids[k] == f->uid && k < x->done &&
		    (x->gone[k] || (x->missing[k] && expunge_located(box, f, &sync_cur,
								    &sync_new)))) {
			gone[ngone++] = f->uid;
			free(f->base);
			free(f->name);
			continue;
		}
		box->files.f[out++] = *f;
	}
	box->files.count = out;
	mbox_state_remove_uids(state, gone, ngone);
	free(gone);
	if (sync_cur)
		fsync_dir(box->cur_dir);
	if (sync_new)
		fsync_dir(box->new_dir);
	md_own_change_end(box, &x->own);
	if (x->work_error != NULL) {
		*error_r = x->work_error;
		x->work_error = NULL;
		errno = x->work_errno;
		ret = -1;
	}
	/* The core raised state->highest_modseq for this expunge before
	   calling, removed or not: it joins the batch (see the top). */
	if (!box->dirty)
		box->dirty_since = mono_ms();
	box->dirty = true;
	box->highest = state->highest_modseq;
	box->first_recent = state->first_recent_uid;
	if (state->highest_modseq > box->disk_ceiling)
		ret = expunge_write_uidlist(box, state, true, ret, error_r);
	if (ret < 0)
		*err_r = storage_error_from_errno(errno);
	md_unlock(box);
	expunge_job_free(x);
	return ret;
}

void
md_expunge_abort(struct storage_box *box, struct md_expunge_job *x)
{
	/* (only at shutdown; what the work removed is gone, as after a
	   crash then: the next open drops those UIDs) */
	md_own_change_end(box, &x->own);
	md_unlock(box);
	expunge_job_free(x);
}

int
md_expunge(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
	   size_t count, enum storage_error *err_r, char **error_r)
{
	struct md_expunge_job *x;

	if (md_expunge_prepare(box, state, uids, count, &x, err_r, error_r) < 0)
		return -1;
	if (x == NULL)
		return 0;
	md_expunge_work(x);
	return md_expunge_commit(box, state, x, err_r, error_r);
}
