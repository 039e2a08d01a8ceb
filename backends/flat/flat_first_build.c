/* flat_first_build.c: the first build of a flat index outside the loop
   (the open_prepare/open_commit split of storage.h), moved out of
   flat_sync.c, whose view helpers it uses. */
#include "fileio.h"
#include "safepath.h"
#include "log.h"
#include "job.h"
#include "flat_private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The first build of an index, in a job (storage.h open_prepare): what
   flat_refresh() does for a mail file without an index (a full scan, a
   new UIDVALIDITY, the index written), with the scan, the encoding and
   the writing of the index to a temp file of its own (fsynced), and the
   state as flat_view_apply() makes it, in a worker thread; the commit, under
   the lock, only renames the index into place if the mailbox still has
   no index and its file is the one scanned, and opens the box with it
   (as flat_refresh() would: the file may have grown, the next sync
   parses the rest). The scan takes no
   unterminated tail (flat_scan() logs when it does, and a worker must
   not): a tail stays after parsed_end, for open(). Crash safety is the
   index's own: until the rename there is no index (open() scans again),
   after it the index describes a prefix of the file. */
struct flat_scan_job {
	struct storage_box *box;   /* its own, for the paths; used in the loop */
	/* The work's own copies. */
	char *path, *user_dir, *tmp_path;
	int fd;                    /* the work's descriptor of the mail file */
	struct stat st;            /* of the mail file when scanned */
	int64_t now;
	uint32_t uidvalidity;      /* the new one, taken in the loop */
	int tmp_fd;                /* the written index, tmp_path, or -1 */
	uint32_t header_size;
	/* Built by the work: the index's header fields (no records) and the
	   state flat_view_apply() makes of it. */
	struct view head;
	struct mbox_state state;
	char *work_error;
};

void
flat_first_build_prepare(struct storage *st, const char *user, const char *name,
			 struct flat_scan_job **job_r)
{
	struct flat_scan_job *job;
	struct storage_box *box;
	enum storage_error err;
	char *error = NULL;
	struct stat ist;
	int fd = -1;

	*job_r = NULL;
	if (flat_check_names(user, name, &err, &error) < 0) {
		free(error);
		return;
	}
	box = flat_box_new(st, user, name);
	job = xcalloc(1, sizeof(*job));
	job->box = box;
	job->fd = job->tmp_fd = -1;
	mbox_state_init(&job->state);
	/* An index of any kind: open() reads it (and rebuilds a damaged
	   one itself, rare); an in-place expunge to finish: open() does. */
	if (fs_stat_beneath(box->user_dir, box->index_path, &ist) == 0 || errno != ENOENT ||
	    flat_compact_pending(box) ||
	    (fd = fs_open_beneath(box->user_dir, box->mail_path, O_RDONLY, 0)) < 0 ||
	    fstat(fd, &job->st) < 0 || (uint64_t)job->st.st_size < FLAT_FIRST_BUILD_JOB_MIN ||
	    mkdir_parents(box->user_dir, box->index_tmp) < 0) {
		if (fd >= 0)
			close(fd);
		flat_first_build_free(&job);
		return;
	}
	job->fd = fd;
	job->path = xstrdup(box->mail_path);
	job->user_dir = xstrdup(box->user_dir);
	job->tmp_path = xasprintf("%s.first", box->index_tmp);
	job->now = (int64_t)time(NULL);
	job->uidvalidity = flat_new_uidvalidity(box, 0);
	*job_r = job;
}

void
flat_first_build_work(struct flat_scan_job *job)
{
	struct view v;
	struct scan sc;
	struct buf b = BUF_INIT;

	job_test_hold();
	if (flat_scan(job->fd, 0, (uint64_t)job->st.st_size, false, false, job->now, job->path,
		      &sc, &job->work_error) < 0)
		return;
	/* As view_reset() does, with the UIDVALIDITY taken in the loop. */
	i_zero(&v);
	v.uidvalidity = job->uidvalidity;
	v.uidnext = 1;
	v.first_recent_uid = 1;
	for (size_t i = 0; i < sc.count; i++)
		flat_view_new_message(&v, &sc.recs[i]);
	v.parsed_end = sc.end;
	v.last_open = sc.last_open;
	flat_view_set_stat(&v, &job->st);
	flat_scan_free(&sc);
	job->header_size = (uint32_t)flat_index_encode(&v, &b);
	job->tmp_fd = file_tmp_create(job->user_dir, job->tmp_path, b.data, b.len, 0600);
	if (job->tmp_fd < 0)
		job->work_error = xasprintf("write %s: %s", job->tmp_path, strerror(errno));
	buf_free(&b);
	/* flat_view_apply() touches only v and the job's own state. */
	(void)flat_view_apply(&v, &job->state);
	free(v.recs);
	v.recs = NULL;
	v.alloc = 0;
	job->head = v;
}

/* The job's box opened on the index just renamed into place and the
   mail file the work scanned, as refresh_take_view() would; state takes
   the job's. */
static void
first_build_open(struct flat_scan_job *job, struct mbox_state *state,
		 struct storage_box **box_r)
{
	struct storage_box *box = job->box;

	box->fd = job->fd;
	job->fd = -1;
	flat_box_set_index_fd(box, job->tmp_fd, job->header_size);
	job->tmp_fd = -1;
	mbox_state_deinit(state);
	*state = job->state;
	mbox_state_init(&job->state);
	box->disk_same = flat_keywords_same(&job->head, state);
	flat_box_take_view_stat(box, &job->head);
	*box_r = box;
	job->box = NULL;
}

/* Renames the index the work wrote into place, under the lock, if the
   mailbox still has no index and its file is the one scanned, and opens
   the box (1). Otherwise drops it and leaves it all to open() (0). */
int
flat_first_build_commit(struct flat_scan_job **_job, struct mbox_state *state,
			struct storage_box **box_r, enum storage_error *err_r, char **error_r)
{
	struct flat_scan_job *job = *_job;
	struct storage_box *box = job->box;
	struct stat st, ist;
	int ret = 0;

	*err_r = STORAGE_ERR_NONE;
	if (job->work_error != NULL) {
		*err_r = STORAGE_ERR_TEMP;
		*error_r = job->work_error;
		job->work_error = NULL;
		flat_first_build_free(_job);
		return -1;
	}
	if (flat_lock(box, false, err_r, error_r) < 0) {
		flat_first_build_free(_job);
		return -1;
	}
	if (fs_stat_beneath(box->user_dir, box->index_path, &ist) < 0 && errno == ENOENT &&
	    fs_stat_beneath(box->user_dir, box->mail_path, &st) == 0 &&
	    st.st_ino == job->st.st_ino && st.st_dev == job->st.st_dev &&
	    st.st_size >= job->st.st_size) {
		if (job->state.count > 0)
			log_warn("-", "%s: no usable index, new UIDVALIDITY (flags are reset, "
				 "no mail is lost)", box->mail_path);
		if (file_tmp_commit(box->user_dir, job->tmp_fd, job->tmp_path,
				    box->index_path) < 0) {
			*err_r = storage_error_from_errno(errno);
			*error_r = xasprintf("rename %s: %s", job->tmp_path, strerror(errno));
			ret = -1;
		} else
			ret = 1;
	} else {
		(void)fs_unlink_beneath(box->user_dir, job->tmp_path);
	}
	if (ret <= 0) {
		close(job->tmp_fd);
		job->tmp_fd = -1;
	}
	flat_unlock(box);
	if (ret > 0)
		first_build_open(job, state, box_r);
	flat_first_build_free(_job);
	return ret;
}

void
flat_first_build_free(struct flat_scan_job **_job)
{
	struct flat_scan_job *job = *_job;

	if (job == NULL)
		return;
	*_job = NULL;
	if (job->fd >= 0)
		close(job->fd);
	if (job->tmp_fd >= 0) {
		/* written but not committed */
		close(job->tmp_fd);
		(void)fs_unlink_beneath(job->user_dir, job->tmp_path);
	}
	if (job->box != NULL)
		flat_box_free(job->box);
	mbox_state_deinit(&job->state);
	flat_view_free(&job->head);
	free(job->path);
	free(job->user_dir);
	free(job->tmp_path);
	free(job->work_error);
	free(job);
}
