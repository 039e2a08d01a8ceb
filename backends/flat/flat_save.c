/* flat_save.c: APPEND to a flat mailbox.

   Durability. The mail bytes are fsynced before the index is touched, so
   a crash in between leaves a mail file that grew past what the index
   knows; the next open parses the new part and the message keeps the UID
   it was given (UIDs come from the index's uidnext, in file order). A
   failed write truncates the file back to its size before the append, so
   no half message stays behind; an unterminated tail written by another
   program is terminated first, so that it stays its own message.

   With workers (storage.h append_prepare, append_settle) the loop does
   not wait for the disk: the message is stuffed in the loop and hashed
   in a worker; then, under the lock, taken in the loop, its write and
   fsync at the end of the file are made in a worker while the mailbox
   is busy, and its record at the commit, in the loop. When the file
   is not exactly what the state knows (another program wrote), the
   commit does it all in the loop, as flat_append() does. */
#include "fileio.h"
#include "job.h"
#include "log.h"
#include "flat_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Writes len bytes of p to the end of the locked mail file at *size_io. */
static int
flat_write_at_end(struct storage_box *box, const void *p, size_t len, uint64_t *size_io)
{
	if (fd_pwrite_full(box->lock_fd, p, len, *size_io) < 0)
		return -1;
	*size_io += len;
	return 0;
}

/* The fast end of an APPEND: the message (stored, hash) was written at
   offset off and fsynced, and the mail file (now st) is exactly what
   state and the index knew plus that message. Makes its record here (the
   same one a scan of the file would make) and writes it and the header in
   place: no index read, no view of the whole mailbox. */
static uint32_t
flat_append_record(struct storage_box *box, struct mbox_state *state, const struct buf *stored,
		   uint64_t off, uint64_t hash, const struct stat *st, uint8_t flags,
		   uint64_t keywords, int64_t internal_date, int32_t tz_minutes)
{
	struct mail_rec m;
	bool have_date;
	char *error = NULL;

	i_zero(&m);
	m.uid = state->uidnext;
	m.flags = flags & MAIL_FLAGS_ALL;
	m.keywords = keywords;
	m.size = flat_serve(stored->data, stored->len, NULL, &have_date, &m.internal_date,
			    &m.tz_minutes);
	if (internal_date != 0) {
		m.internal_date = internal_date;
		m.tz_minutes = tz_minutes;
	} else if (!have_date) {
		m.internal_date = (int64_t)time(NULL);
		m.tz_minutes = 0;
	}
	m.modseq = state->highest_modseq + 1;
	m.priv[0] = off;
	m.priv[1] = stored->len;
	m.priv[2] = hash;
	flat_box_set_stat(box, st);
	box->parsed_end = (uint64_t)st->st_size;
	box->last_open = false;
	box->pending = false;
	(void)mbox_state_append(state, &m);
	if (flat_index_write_state_tail(box, state, state->count - 1, &error) < 0) {
		/* The message is stored; only its flags and date may be lost:
		   the index still ends before it, so the next sync reads the
		   index again and parses the message from the file, with the
		   same UID (the index's uidnext). */
		log_warn("-", "%s: %s", box->mail_path, error);
		free(error);
		box->index_ino = 0;
	}
	return m.uid;
}

/* Ends the unterminated tail of the locked mail file (*size_io bytes)
   with what it lacks of "\n.\n", so that it stays its own message.
   Returns 0, or -1 with errno set. */
static int
flat_terminate_tail(struct storage_box *box, uint64_t *size_io)
{
	uint64_t size = *size_io;
	char end[2] = { 0, 0 };
	ssize_t n = size >= 2 ? fd_pread_full(box->lock_fd, end, 2, size - 2) :
		fd_pread_full(box->lock_fd, end + 1, 1, size - 1);
	const char *term;

	if (n < 0)
		return -1;
	if (end[1] == '\n')
		term = ".\n";
	else if (end[1] == '.' && (size == 1 || end[0] == '\n'))
		term = "\n";
	else
		term = "\n.\n";
	return flat_write_at_end(box, term, strlen(term), size_io);
}

/* The slow end of an APPEND: the message (stored, hash) was written at
   offset off and fsynced, but the file or the index was not only what
   state knew. Takes the new bytes in like any other writer's, finds the
   message there as state's last one, and gives it its flags and date.
   Returns 0 with *uid_r, or -1 with *err_r and *error_r. */
static int
flat_append_found(struct storage_box *box, struct mbox_state *state, const struct buf *stored,
		  uint64_t off, uint64_t hash, uint8_t flags, uint64_t keywords,
		  int64_t internal_date, int32_t tz_minutes, uint32_t *uid_r,
		  enum storage_error *err_r, char **error_r)
{
	struct mail_rec *m;

	if (flat_catch_up(box, state, err_r, error_r) < 0)
		return -1;
	m = state->count > 0 ? &state->mails[state->count - 1] : NULL;
	if (m == NULL || m->priv[1] != stored->len || m->priv[2] != hash || m->priv[0] != off) {
		*err_r = STORAGE_ERR_TEMP;
		*error_r = xasprintf("%s: appended message not found after writing it", box->mail_path);
		return -1;
	}
	if (internal_date != 0) {
		m->internal_date = internal_date;
		m->tz_minutes = tz_minutes;
	}
	(void)mbox_state_set_flags(state, state->count - 1, flags, keywords);
	/* Persist flags and date of the new record. */
	if (flat_index_write_state_tail(box, state, state->count - 1, error_r) < 0) {
		/* The message is stored; only its flags may be lost. */
		log_warn("-", "%s: %s", box->mail_path, *error_r);
		free(*error_r);
		*error_r = NULL;
		box->index_ino = 0;
	}
	*uid_r = m->uid;
	return 0;
}

/* An APPEND of the message stored (as the file holds it: flat_stuff())
   whose hash is hash, whole, in the calling thread: the lock, what
   others wrote taken in, the write and its fsync, the record. */
static int
flat_append_stored(struct storage_box *box, struct mbox_state *state, const struct buf *stored,
		   uint64_t hash, uint8_t flags, uint64_t keywords, int64_t internal_date,
		   int32_t tz_minutes, uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	struct stat st;
	uint64_t size, orig_size;
	bool fast;
	int ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (flat_lock(box, true, err_r, error_r) < 0)
		return -1;
	/* Whatever others wrote is taken in first, so that UIDs stay in
	   file order (O(new bytes) while the index is ours). */
	if (flat_catch_up(box, state, err_r, error_r) < 0)
		goto out;
	if (fstat(box->lock_fd, &st) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		*error_r = xasprintf("fstat %s: %s", box->mail_path, strerror(errno));
		goto out;
	}
	orig_size = size = (uint64_t)st.st_size;
	/* The file is exactly what state and our index describe: the new
	   record can be made without reading anything back. */
	fast = box->disk_same && box->index_fd >= 0 && !box->pending && !box->last_open &&
		flat_box_stat_equal(box, &st) && box->parsed_end == size &&
		state->uidnext < UINT32_MAX;
	if ((size > box->parsed_end || box->last_open) && flat_terminate_tail(box, &size) < 0)
		goto io_fail;
	/* Durable before the index is touched, and before the client hears
	   OK. */
	if (flat_write_at_end(box, stored->data, stored->len, &size) < 0 || fsync(box->lock_fd) < 0)
		goto io_fail;
	if (fast) {
		struct stat now;

		/* Only our bytes were added (an unlocked "cat >>" may have
		   written beside us: then the tail path below sorts it out). */
		if (fstat(box->lock_fd, &now) == 0 && (uint64_t)now.st_size == size &&
		    now.st_ino == st.st_ino && now.st_dev == st.st_dev) {
			*uid_r = flat_append_record(box, state, stored, orig_size, hash, &now, flags,
						    keywords, internal_date, tz_minutes);
			ret = 0;
			goto out;
		}
	}
	/* The tail path picks the new message up like any other writer's. */
	ret = flat_append_found(box, state, stored, size - stored->len, hash, flags, keywords,
				internal_date, tz_minutes, uid_r, err_r, error_r);
	goto out;
io_fail:
	*err_r = storage_error_from_errno(errno);
	*error_r = xasprintf("write %s: %s", box->mail_path, strerror(errno));
	/* No half message stays behind. The file is then what it was, so it
	   gets its modification time back too: the index (which records
	   it) stays valid and needs no rewrite, which a full disk would
	   refuse. */
	if (ftruncate(box->lock_fd, (off_t)orig_size) == 0) {
		const struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, st.st_mtim };

		(void)futimens(box->lock_fd, times);
		(void)fsync(box->lock_fd);
	}
out:
	flat_unlock(box);
	return ret;
}

int
flat_append(struct storage_box *box, struct mbox_state *state, const char *data, size_t len,
	    uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
	    uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	struct buf stored = BUF_INIT;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	flat_stuff(data, len, &stored);
	ret = flat_append_stored(box, state, &stored, flat_hash_bytes(stored.data, stored.len),
				 flags, keywords, internal_date, tz_minutes, uid_r, err_r, error_r);
	buf_free(&stored);
	return ret;
}

/* An append on its way (storage.h append_prepare): the message as the
   file will hold it and its hash; once settled, where the work writes
   it, through its own descriptor of the locked file. */
struct flat_append_job {
	struct buf stored;
	uint64_t hash;
	bool lock_failed;
	enum storage_error err;
	char *error;
	bool settling, written;
	int fd;
	uint64_t off;
	struct timespec mtime;     /* the file's before the write */
	dev_t dev;
	ino_t ino;
	int write_errno;
};

int
flat_append_prepare(struct storage_box *box, const char *data, size_t len,
		    struct storage_job **job_r, enum storage_error *err_r, char **error_r)
{
	struct flat_append_job *a = xcalloc(1, sizeof(*a));

	(void)box;
	(void)error_r;
	*err_r = STORAGE_ERR_NONE;
	a->fd = -1;
	flat_stuff(data, len, &a->stored);
	*job_r = flat_job_of_append(a);
	return 0;
}

/* The file back to what it was before the write at off (its size and
   its modification time, which the index records). */
static void
flat_append_undo(int fd, uint64_t off, const struct timespec *mtime)
{
	if (ftruncate(fd, (off_t)off) == 0) {
		const struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, *mtime };

		(void)futimens(fd, times);
		(void)fsync(fd);
	}
}

void
flat_append_work(struct flat_append_job *a)
{
	if (!a->settling) {
		a->hash = flat_hash_bytes(a->stored.data, a->stored.len);
		return;
	}
	job_test_hold_named("append-settle");
	if (fd_pwrite_full(a->fd, a->stored.data, a->stored.len, a->off) < 0 || fsync(a->fd) < 0) {
		a->write_errno = errno;
		flat_append_undo(a->fd, a->off, &a->mtime);
		return;
	}
	a->written = true;
}

/* In the loop, the mailbox not busy: the lock, and the place at the end
   of the file, when the file is exactly what state and the index know
   (else 0: the commit does it all, taking in what others wrote). */
int
flat_append_settle(struct storage_box *box, const struct mbox_state *state,
		   struct storage_job *job, uint8_t flags, uint64_t keywords,
		   int64_t internal_date, int32_t tz_minutes)
{
	struct flat_append_job *a = flat_job_append(job);
	struct stat st;

	(void)flags;
	(void)keywords;
	(void)internal_date;
	(void)tz_minutes;
	if (flat_lock(box, true, &a->err, &a->error) < 0) {
		a->lock_failed = true;
		return 0;
	}
	if (fstat(box->lock_fd, &st) < 0 || !box->disk_same || box->index_fd < 0 || box->pending ||
	    box->last_open || !flat_box_stat_equal(box, &st) ||
	    box->parsed_end != (uint64_t)st.st_size || state->uidnext == UINT32_MAX) {
		flat_unlock(box);
		return 0;
	}
	a->fd = fcntl(box->lock_fd, F_DUPFD_CLOEXEC, 0);
	if (a->fd < 0) {
		flat_unlock(box);
		return 0;
	}
	a->off = (uint64_t)st.st_size;
	a->mtime = st.st_mtim;
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	a->settling = true;
	return 1;
}

static int
flat_settled_commit(struct storage_box *box, struct mbox_state *state, struct flat_append_job *a,
		    uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
		    uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	struct stat now;
	int ret = 0;

	if (!a->written) {
		*err_r = storage_error_from_errno(a->write_errno);
		*error_r = xasprintf("write %s: %s", box->mail_path, strerror(a->write_errno));
		ret = -1;
	} else if (fstat(box->lock_fd, &now) == 0 &&
		   (uint64_t)now.st_size == a->off + a->stored.len && now.st_ino == a->ino &&
		   now.st_dev == a->dev) {
		*uid_r = flat_append_record(box, state, &a->stored, a->off, a->hash, &now, flags,
					    keywords, internal_date, tz_minutes);
	} else {
		/* (an unlocked "cat >>" wrote beside us) */
		ret = flat_append_found(box, state, &a->stored, a->off, a->hash, flags, keywords,
					internal_date, tz_minutes, uid_r, err_r, error_r);
	}
	flat_unlock(box);
	return ret;
}

int
flat_append_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **job,
		   uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
		   uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	struct flat_append_job *a = flat_job_take_append(*job);
	int ret;

	*job = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (a->lock_failed) {
		*err_r = a->err;
		*error_r = a->error;
		a->error = NULL;
		ret = -1;
	} else if (a->settling) {
		ret = flat_settled_commit(box, state, a, flags, keywords, internal_date, tz_minutes,
					  uid_r, err_r, error_r);
		a->settling = false;
	} else {
		ret = flat_append_stored(box, state, &a->stored, a->hash, flags, keywords,
					 internal_date, tz_minutes, uid_r, err_r, error_r);
	}
	flat_append_job_free(box, a);
	return ret;
}

void
flat_append_job_free(struct storage_box *box, struct flat_append_job *a)
{
	if (a == NULL)
		return;
	if (a->settling && box != NULL && box->locked) {
		/* not committed (the server stops): never acknowledged, the
		   file goes back to what it was */
		flat_append_undo(a->fd, a->off, &a->mtime);
		flat_unlock(box);
	}
	if (a->fd >= 0)
		close(a->fd);
	buf_free(&a->stored);
	free(a->error);
	free(a);
}
