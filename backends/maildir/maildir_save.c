/* maildir_save.c: delivery (the append() op) through tmp/ and rename(),
   and the removal of what interrupted deliveries left in tmp/.

   Two steps: the message is written to tmp/ and fsynced first, touching
   nothing of the mailbox (the server does that in a worker thread, see
   append_prepare in storage.h), then, under the lock, it gets its UID
   and is renamed into the mailbox. With workers, that second step is
   itself split (append_settle): the lock, the UID and the rename in the
   loop; the folder's fsync and the UID's record in a worker, the
   mailbox busy meanwhile; the state at the commit.

   Safety: delivery writes tmp/<base>, fsyncs, then rename()s it into new/
   (or cur/ when it has flags): a message is in the mailbox complete or
   not at all. Its UID is on disk (one uidlist record, fdatasync()ed)
   before append() returns; see maildir_uidlist.c.

   tmp/ files not written for 36 hours (mtime) are removed when the
   mailbox is opened. */
#include "fileio.h"
#include "job.h"
#include "backends/maildir/maildir_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Removes tmp/ files older than 36 hours (interrupted deliveries). */
void
md_clean_tmp(struct storage_box *box)
{
	time_t now = time(NULL);
	struct dirent *de;
	unsigned n = 0;
	DIR *d = fs_opendir_beneath(box->user_dir, box->tmp_dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL && n++ < 100000) {
		struct stat st;
		char *path;

		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", box->tmp_dir, de->d_name);
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && now - st.st_mtim.tv_sec > MD_TMP_STALE_SECS)
			(void)fs_unlink_beneath(box->user_dir, path);
		free(path);
	}
	closedir(d);
}

/* CRLF -> LF, the form Maildir tools expect. */
static void
md_to_lf(const char *data, size_t len, struct buf *out, uint64_t *vsize_r)
{
	uint64_t bare = 0;
	size_t start = 0;

	buf_reserve(out, len);
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			if (i > 0 && data[i - 1] == '\r') {
				buf_append(out, data + start, i - 1 - start);
				start = i;
			}
		}
	}
	buf_append(out, data + start, len - start);
	/* served size: every LF not after a CR gains one */
	for (size_t i = 0; i < out->len; i++) {
		if (out->data[i] == '\n' && (i == 0 || out->data[i - 1] != '\r'))
			bare++;
	}
	*vsize_r = out->len + bare;
}

/* An append's message on its way (storage.h, append_prepare): what
   the work needs to write it, its own copies, and what it found. */
struct md_append_job {
	char *user_dir, *base, *tmp_path;
	struct buf stored;         /* the message, LF line ends, as stored */
	uint64_t vsize;
	struct timeval tv;         /* when it came: its name, its default date */
	bool written;              /* tmp_path holds it, fsynced */
	bool taken;                /* renamed into the mailbox by the commit */
	enum storage_error err;
	char *error;
	/* The settle (md_append_settle()): the lock held, the file renamed
	   in as name (dest) with uid; the work makes the folder (sync_dir)
	   and the record (rec) durable; settled if it did. */
	bool settling, settled;
	char *name, *dest, *sync_dir, *uidlist_path;
	struct buf rec;
	uint32_t uid;
	uint64_t modseq;
	uint8_t flags;
	uint64_t keywords;
	int64_t internal_date;
	int32_t tz_minutes;
};

/* In the worker, the settle's part: the folder holding the renamed file
   and the UID's record made durable (the record only if the folder
   sync did not fail: without it, the rename may not be on disk). */
static void
md_append_settle_work(struct md_append_job *a)
{
	job_test_hold_named("append-settle");
	if (fsync_dir_beneath(a->user_dir, a->sync_dir) < 0 ||
	    md_uidlist_append_line(a->user_dir, a->uidlist_path, &a->rec) < 0) {
		a->err = storage_error_from_errno(errno);
		a->error = xasprintf("sync %s: %s", a->dest, strerror(errno));
		return;
	}
	a->settled = true;
}

void
md_append_work(struct md_append_job *a)
{
	int fd;

	if (a->settling) {
		md_append_settle_work(a);
		return;
	}
	fd = fs_open_beneath(a->user_dir, a->tmp_path, O_WRONLY | O_CREAT | O_EXCL, 0600);

	if (fd < 0) {
		a->err = storage_error_from_errno(errno);
		a->error = xasprintf("create %s: %s", a->tmp_path, strerror(errno));
		return;
	}
	if (fd_write_full(fd, a->stored.data, a->stored.len) < 0 || fsync(fd) < 0 ||
	    close(fd) < 0) {
		a->err = storage_error_from_errno(errno);
		a->error = xasprintf("write %s: %s", a->tmp_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		(void)fs_unlink_beneath(a->user_dir, a->tmp_path);
		return;
	}
	a->written = true;
}

void
md_append_job_free(struct md_append_job *a)
{
	if (a == NULL)
		return;
	if (a->written && !a->taken)
		(void)fs_unlink_beneath(a->user_dir, a->tmp_path);
	buf_free(&a->stored);
	buf_free(&a->rec);
	free(a->name);
	free(a->dest);
	free(a->sync_dir);
	free(a->uidlist_path);
	free(a->user_dir);
	free(a->base);
	free(a->tmp_path);
	free(a->error);
	free(a);
}

/* Makes sure the next UID is free to give; the lock is held. Every UID
   given by one of our processes is in the uidlist (a record is added
   under the lock before append() returns), so only a uidlist another
   process wrote needs reading. Files other tools dropped into new/ or
   cur/ get their UIDs at the next sync(), after this one: no scan of the
   folders here (O(messages)). */
static int
save_prepare_uid(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
		 char **error_r)
{
	struct file_stamp fs;

	md_stamp_file(box->user_dir, box->uidlist_path, &fs);
	if (!md_file_stamp_equal(&fs, &box->uidlist_stamp) &&
	    md_sync_locked(box, state, error_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		return -1;
	}
	if (box->uidnext == UINT32_MAX || state->uidnext == UINT32_MAX) {
		*err_r = STORAGE_ERR_LIMIT;
		*error_r = xasprintf("%s: out of UIDs", box->dir);
		return -1;
	}
	if (box->uidnext < state->uidnext)
		box->uidnext = state->uidnext;
	return 0;
}

/* Renames tmp_path into new/ (no flags) or cur/ (with its flag letters,
   writing dovecot-keywords first if a keyword got a letter). Sets
   *name_r and *dest_r (the caller frees them). On failure the caller
   removes tmp_path. */
static int
save_move_in(struct storage_box *box, const struct mbox_state *state, const char *base,
	     const char *tmp_path, uint8_t flags, uint64_t keywords, char **name_r,
	     char **dest_r, enum storage_error *err_r, char **error_r)
{
	bool kw_changed = false;

	if (flags == 0 && keywords == 0) {
		*name_r = xstrdup(base);
		*dest_r = xasprintf("%s/%s", box->new_dir, *name_r);
	} else {
		*name_r = md_name_with_flags(box, state, base, strlen(base), NULL, flags, keywords,
					     &kw_changed);
		*dest_r = xasprintf("%s/%s", box->cur_dir, *name_r);
		if (kw_changed && md_kw_write(box, error_r) < 0) {
			*err_r = storage_error_from_errno(errno);
			return -1;
		}
	}
	if (fs_rename_beneath(box->user_dir, tmp_path, *dest_r) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("rename %s: %s", tmp_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Adds the message just renamed into place to the table and the state,
   with the next UID. Takes name. Returns its table entry. */
static struct mfile *
save_add_message(struct storage_box *box, struct mbox_state *state, const char *base, char *name,
		 uint8_t flags, uint64_t keywords, uint64_t vsize, int64_t internal_date,
		 int32_t tz_minutes, uint64_t modseq)
{
	struct mfile *f = md_ftable_add(&box->files);
	struct mail_rec m;

	f->uid = box->uidnext++;
	f->base = xstrdup(base);
	f->name = name;
	f->in_new = flags == 0 && keywords == 0;
	f->vsize = vsize;
	f->date = internal_date;
	f->tz = tz_minutes;
	f->described = true;
	i_zero(&m);
	m.uid = f->uid;
	m.flags = flags;
	m.keywords = keywords;
	m.internal_date = internal_date;
	m.tz_minutes = tz_minutes;
	m.size = vsize;
	m.modseq = modseq;
	f->modseq = m.modseq;
	(void)mbox_state_append(state, &m);
	return f;
}

/* The UID is given to the client (APPENDUID) when we return, so its
   record is durable first: one line added and fdatasync()ed, the
   message file and its folder having been fsynced before. A crash
   before that line is on disk happens before we return: the UID was
   never given, and the file gets the next UID at the next open (the
   next UID is never lowered, so no UID is reused). A batch of flag
   changes pending stays pending (the ceiling C covers its modseqs, see
   maildir_flags.c): one line, not a rewrite of the whole file. */
static int
save_record_uid(struct storage_box *box, struct mbox_state *state, const struct mfile *f,
		char **error_r)
{
	if (box->rewrite)
		return md_uidlist_write(box, state, false, error_r);
	if (md_uidlist_append_rec(box, f, error_r) == 0)
		return 0;
	/* (gone, or a disk error: one whole write more) */
	free(*error_r);
	*error_r = NULL;
	return md_uidlist_write(box, state, false, error_r);
}

/* The message is converted and named here, in the loop (the name's
   counter is the storage's); it is written by md_append_work(). Takes
   nothing of box but names: no lock, no state. */
int
md_append_prepare(struct storage_box *box, const char *data, size_t len,
		  struct storage_job **job_r, enum storage_error *err_r, char **error_r)
{
	struct md_append_job *a;

	*job_r = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (len == 0 || len > MD_MAX_MSG) {
		*err_r = STORAGE_ERR_LIMIT;
		*error_r = xstrdup("message is empty or too large");
		return -1;
	}
	a = xcalloc(1, sizeof(*a));
	md_to_lf(data, len, &a->stored, &a->vsize);
	gettimeofday(&a->tv, NULL);
	a->base = xasprintf("%lld.M%06ldP%ldQ%lu.%s,S=%zu,W=%llu", (long long)a->tv.tv_sec,
			    (long)a->tv.tv_usec, (long)getpid(), ++box->st->seq, box->st->host,
			    a->stored.len, (unsigned long long)a->vsize);
	a->tmp_path = xasprintf("%s/%s", box->tmp_dir, a->base);
	a->user_dir = xstrdup(box->user_dir);
	*job_r = md_job_of_append(a);
	return 0;
}

/* mtime is the internal date (as Dovecot reads it). Set only once the
   file is in the mailbox, so that a tmp/ file always looks as young as
   it is; nobody scans before the lock is let go. */
static void
save_set_mtime(const struct md_append_job *a, const char *dest, int64_t internal_date)
{
	struct timespec times[2];

	times[0].tv_sec = a->tv.tv_sec;
	times[0].tv_nsec = 0;
	times[1].tv_sec = (time_t)internal_date;
	times[1].tv_nsec = 0;
	(void)utimensat(AT_FDCWD, dest, times, AT_SYMLINK_NOFOLLOW);
}

/* The settle failed before anything entered the mailbox: the commit
   tells why (no settle: a->settling stays false). */
static int
settle_failed(struct storage_box *box, struct md_append_job *a, bool locked)
{
	if (locked)
		md_unlock(box);
	(void)fs_unlink_beneath(a->user_dir, a->tmp_path);
	a->written = false;
	return 0;
}

/* storage.h append_settle, in the loop, the mailbox not busy: the lock,
   the UID and the rename into the mailbox, as md_append_commit() does;
   the folder's fsync and the UID's record are left to the work, the
   state to the commit (settled_commit()). 0 (the commit does it all)
   when the uidlist must be read or rewritten first: that needs state. */
int
md_append_settle(struct storage_box *box, const struct mbox_state *state, struct storage_job *job,
		 uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes)
{
	struct md_append_job *a = md_job_append(job);
	struct md_own_change own;
	struct file_stamp fs;
	struct mfile rec;
	char *error = NULL;

	if (!a->written || box->rewrite)
		return 0;
	if (md_files_load(box, &error) < 0) {
		free(error);
		return 0;
	}
	if (md_lock(box, &a->err, &a->error) < 0)
		return settle_failed(box, a, false);
	md_stamp_file(box->user_dir, box->uidlist_path, &fs);
	if (!md_file_stamp_equal(&fs, &box->uidlist_stamp) || box->rewrite ||
	    box->uidnext == UINT32_MAX || state->uidnext == UINT32_MAX) {
		md_unlock(box);
		return 0;
	}
	if (box->uidnext < state->uidnext)
		box->uidnext = state->uidnext;
	if (internal_date == 0) {
		internal_date = (int64_t)a->tv.tv_sec;
		tz_minutes = md_local_tz_minutes(internal_date);
	}
	flags &= MAIL_FLAGS_ALL;
	md_own_change_begin(box, &own);
	if (save_move_in(box, state, a->base, a->tmp_path, flags, keywords, &a->name, &a->dest,
			 &a->err, &a->error) < 0) {
		md_own_change_end(box, &own);
		return settle_failed(box, a, true);
	}
	a->taken = true;
	save_set_mtime(a, a->dest, internal_date);
	md_own_change_end(box, &own);
	a->settling = true;
	a->uid = box->uidnext;
	a->modseq = state->highest_modseq + 1;
	a->flags = flags;
	a->keywords = keywords;
	a->internal_date = internal_date;
	a->tz_minutes = tz_minutes;
	a->sync_dir = xstrdup(flags == 0 && keywords == 0 ? box->new_dir : box->cur_dir);
	a->uidlist_path = xstrdup(box->uidlist_path);
	i_zero(&rec);
	rec.uid = a->uid;
	rec.vsize = a->vsize;
	rec.date = internal_date;
	rec.tz = tz_minutes;
	rec.modseq = a->modseq;
	rec.name = a->name;
	md_uidlist_rec_line(&a->rec, &rec);
	return 1;
}

/* The commit of a settled append, in the loop: the message enters the
   table and the state with the UID and modseq its record has. If the
   work could not write the record, the whole uidlist is written here;
   if that fails too the message is taken back (without its UID on disk
   it would get another one later). The lock is let go. */
static int
settled_commit(struct storage_box *box, struct mbox_state *state, struct md_append_job *a,
	       uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	struct mfile *f;
	int ret = 0;

	/* (the mailbox was busy: nothing gave a UID or a modseq since) */
	if (box->uidnext != a->uid || state->highest_modseq + 1 != a->modseq)
		a->settled = false;
	f = save_add_message(box, state, a->base, a->name, a->flags, a->keywords, a->vsize,
			     a->internal_date, a->tz_minutes,
			     a->modseq > state->highest_modseq ? a->modseq
								: state->highest_modseq + 1);
	a->name = NULL;
	md_uidlist_rec_done(box, f, a->settled);
	if (!a->settled && md_uidlist_write(box, state, false, error_r) < 0) {
		*err_r = storage_error_from_errno(errno);
		(void)fs_unlink_beneath(box->user_dir, a->dest);
		mbox_state_remove(state, state->count - 1);
		md_ftable_remove(&box->files, box->files.count - 1);
		ret = -1;
	} else {
		*uid_r = f->uid;
	}
	md_unlock(box);
	md_append_job_free(a);
	return ret;
}

void
md_append_abort(struct storage_box *box, struct md_append_job *a)
{
	if (a->settling) {
		/* in the mailbox, never told: taken back */
		(void)fs_unlink_beneath(box->user_dir, a->dest);
		md_unlock(box);
	}
	md_append_job_free(a);
}

/* The rest of append(), in the loop, once the message is in tmp/: the
   lock, the UID, the rename into the mailbox, the state. */
int
md_append_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **job,
		 uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
		 uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	struct md_append_job *a = md_job_take_append(*job);
	struct md_own_change own;
	struct mfile *f;
	char *dest = NULL, *name = NULL;
	uint32_t uid;
	int ret = -1;

	*job = NULL;
	*err_r = STORAGE_ERR_NONE;
	if (a->settling)
		return settled_commit(box, state, a, uid_r, err_r, error_r);
	if (!a->written) {
		*err_r = a->err != STORAGE_ERR_NONE ? a->err : STORAGE_ERR_TEMP;
		*error_r = a->error != NULL ? a->error : xstrdup("the message was not written");
		a->error = NULL;
		goto out;
	}
	if (md_files_load(box, error_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		goto out;
	}
	if (internal_date == 0) {
		internal_date = (int64_t)a->tv.tv_sec;
		tz_minutes = md_local_tz_minutes(internal_date);
	}
	if (md_lock(box, err_r, error_r) < 0)
		goto out;
	flags &= MAIL_FLAGS_ALL;
	if (save_prepare_uid(box, state, err_r, error_r) < 0)
		goto unlock;
	/* Our own rename must not make the next sync() read the folder. */
	md_own_change_begin(box, &own);
	if (save_move_in(box, state, a->base, a->tmp_path, flags, keywords, &name, &dest, err_r,
			 error_r) < 0)
		goto unlock;
	a->taken = true;
	save_set_mtime(a, dest, internal_date);
	fsync_dir(flags == 0 && keywords == 0 ? box->new_dir : box->cur_dir);
	md_own_change_end(box, &own);
	f = save_add_message(box, state, a->base, name, flags, keywords, a->vsize, internal_date,
			     tz_minutes, state->highest_modseq + 1);
	name = NULL;
	uid = f->uid;
	if (save_record_uid(box, state, f, error_r) < 0) {
		/* Without its UID on disk the message would get another one
		   later: take it back. */
		*err_r = storage_error_from_errno(errno);
		(void)fs_unlink_beneath(box->user_dir, dest);
		mbox_state_remove(state, state->count - 1);
		md_ftable_remove(&box->files, box->files.count - 1);
		goto unlock;
	}
	*uid_r = uid;
	ret = 0;
unlock:
	md_unlock(box);
out:
	md_append_job_free(a);
	free(dest);
	free(name);
	return ret;
}

int
md_append(struct storage_box *box, struct mbox_state *state, const char *data, size_t len,
	  uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
	  uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job;

	if (md_append_prepare(box, data, len, &job, err_r, error_r) < 0)
		return -1;
	md_job_work(job);
	return md_append_commit(box, state, &job, flags, keywords, internal_date, tz_minutes,
				uid_r, err_r, error_r);
}
