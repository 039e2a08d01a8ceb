/* maildir_job.c: the first open of a big Maildir++ folder in a job
   (storage.h, open_prepare), and the job that carries an append's
   message (maildir_save.c).

   A folder without a dovecot-uidlist is read whole at its first open:
   every file of cur/ and new/ listed and measured, new/ moved to cur/,
   the uidlist written. For 100,000 files that is seconds, which the loop
   must not spend. The job runs the backend's own open() (the full
   rescan, unchanged) in a worker thread into a box and a state of its
   own, which the commit hands to the hub. open() touches only its box,
   its state and the files of the folder (under the folder's lock, as
   ever), and logs through log.h, which writes each line with one call
   and is safe from a thread. A crash at any instant is a crash during
   an open(), which the folder's rules already survive. */
#include "maildir.h"
#include "maildir_private.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

/* cur/ and new/ together at least this big (directory octets: about
   1,500 names) without a uidlist make the first open a job. */
#define MD_FIRST_OPEN_JOB_MIN_DIR (64 * 1024)

struct storage_job {
	/* An append's message (maildir_save.c), or an expunge
	   (maildir_expunge.c); the rest is unused then. */
	struct md_append_job *append;
	struct md_expunge_job *expunge;
	struct storage *st;
	char *user, *name;
	/* What open() made, in the worker. */
	int ret;
	struct mbox_state state;
	struct storage_box *box;
	enum storage_error err;
	char *error;
};

static off_t
md_dir_size(const char *base, const char *dir)
{
	struct stat st;

	return fs_stat_beneath(base, dir, &st) == 0 && S_ISDIR(st.st_mode) ? st.st_size : 0;
}

int
md_open_prepare(struct storage *st, const char *user, const char *name,
		struct storage_job **job_r, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job;
	char *user_dir, *dir, *cur, *new, *uidlist;
	struct stat ust;
	bool heavy;

	*job_r = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (md_check_names(user, name, err_r, error_r) < 0) {
		/* open() says why */
		free(*error_r);
		*error_r = NULL;
		*err_r = STORAGE_ERR_NONE;
		return 0;
	}
	user_dir = md_user_dir(st, user);
	dir = md_box_dir(st, user, name);
	cur = xasprintf("%s/cur", dir);
	new = xasprintf("%s/new", dir);
	uidlist = xasprintf("%s/%s", dir, MD_UIDLIST);
	heavy = fs_stat_beneath(user_dir, uidlist, &ust) < 0 && errno == ENOENT &&
		md_dir_size(user_dir, cur) + md_dir_size(user_dir, new) >= MD_FIRST_OPEN_JOB_MIN_DIR;
	free(uidlist);
	free(new);
	free(cur);
	free(dir);
	free(user_dir);
	if (!heavy)
		return 0;
	job = xcalloc(1, sizeof(*job));
	job->st = st;
	job->user = xstrdup(user);
	job->name = xstrdup(name);
	mbox_state_init(&job->state);
	*job_r = job;
	return 0;
}

void
md_job_work(struct storage_job *job)
{
	if (job->append != NULL) {
		md_append_work(job->append);
		return;
	}
	if (job->expunge != NULL) {
		md_expunge_work(job->expunge);
		return;
	}
	job->ret = storage_backend_maildir.open(job->st, job->user, job->name, &job->state,
						&job->box, &job->err, &job->error);
}

static void
md_job_free(struct storage_job *job)
{
	md_append_job_free(job->append);
	if (job->box != NULL)
		storage_backend_maildir.close(&job->box);
	mbox_state_deinit(&job->state);
	free(job->error);
	free(job->user);
	free(job->name);
	free(job);
}

int
md_open_commit(struct storage *st, struct storage_job **_job, struct mbox_state *state,
	       struct storage_box **box_r, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job = *_job;
	int ret = 1;

	*_job = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (job->ret < 0) {
		*err_r = job->err;
		*error_r = job->error;
		job->error = NULL;
		ret = -1;
	} else {
		mbox_state_deinit(state);
		*state = job->state;
		mbox_state_init(&job->state);
		*box_r = job->box;
		job->box = NULL;
	}
	md_job_free(job);
	return ret;
}

void
md_job_abort(struct storage_box *box, struct storage_job **_job)
{
	struct storage_job *job = *_job;

	if (job == NULL)
		return;
	*_job = NULL;
	if (job->append != NULL && box != NULL) {
		md_append_abort(box, job->append);
		job->append = NULL;
	}
	if (job->expunge != NULL && box != NULL) {
		md_expunge_abort(box, job->expunge);
		job->expunge = NULL;
	}
	md_job_free(job);
}

struct storage_job *
md_job_of_append(struct md_append_job *a)
{
	struct storage_job *job = xcalloc(1, sizeof(*job));

	job->append = a;
	mbox_state_init(&job->state);
	return job;
}

struct md_append_job *
md_job_append(struct storage_job *job)
{
	return job->append;
}

struct md_append_job *
md_job_take_append(struct storage_job *job)
{
	struct md_append_job *a = job->append;

	job->append = NULL;
	md_job_free(job);
	return a;
}

int
md_expunge_prepare_job(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
		       size_t count, struct storage_job **job_r, enum storage_error *err_r,
		       char **error_r)
{
	struct md_expunge_job *x;

	*job_r = NULL;
	if (md_expunge_prepare(box, state, uids, count, &x, err_r, error_r) < 0)
		return -1;
	if (x != NULL) {
		*job_r = xcalloc(1, sizeof(**job_r));
		mbox_state_init(&(*job_r)->state);
		(*job_r)->expunge = x;
	}
	return 0;
}

int
md_job_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **_job,
	      enum storage_error *err_r, char **error_r)
{
	struct storage_job *job = *_job;
	struct md_expunge_job *x = job->expunge;

	*_job = NULL;
	job->expunge = NULL;
	md_job_free(job);
	return md_expunge_commit(box, state, x, err_r, error_r);
}
