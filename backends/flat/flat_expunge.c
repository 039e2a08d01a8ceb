/* flat_expunge.c: EXPUNGE, the rewrite of a flat mail file.

   EXPUNGE rewrites the whole file (inherent to the format) in one pass
   under the lock, and removes the messages from state in one pass. The
   kept messages are copied to <mail file>.tmp, each checked against its
   hash; bytes that writers which do not lock appended meanwhile are
   copied too. The new file and the new index are written to temp files
   and fsynced before either is renamed: the mail file first, then the
   index. A crash before the first rename leaves the old mailbox as it
   was; between the two, the old index is matched against the new file by
   hash (flat_reconcile()), so the kept messages keep their UIDs; a lost
   or damaged index means a new UIDVALIDITY, never lost mail.

   The rewrite is split in three (storage.h, expunge_prepare): the
   prepare takes the lock, which stays held until the commit or abort,
   and copies what the copy needs (the kept messages' offsets, lengths
   and hashes, a descriptor of its own of the old file); the work copies
   and fsyncs the new file, touching nothing else, so that it may run in
   a worker thread; the commit, back in the loop, builds the new index
   from the state as it is then, and does the renames above. The rules
   above hold unchanged, and the old file is unchanged until the commit,
   so reads go on meanwhile (through the box's descriptor of it).
   Usually the work also writes the new index ahead (from the state as
   the prepare saw it) and makes both renames itself, so that the loop
   waits for none of the fsyncs; the commit then applies the expunge to
   the state, or writes the index again if the state changed meanwhile.
   flat_expunge() runs the three in a row. */
#include "fileio.h"
#include "job.h"
#include "safepath.h"
#include "flat_private.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies [off, off + len) of in to the end of out. */
static int
copy_range(int in, int out, uint64_t off, uint64_t len, char *tmp)
{
	while (len > 0) {
		size_t want = len > FLAT_COPY_CHUNK ? FLAT_COPY_CHUNK : (size_t)len;
		ssize_t n = fd_pread_full(in, tmp, want, off);

		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (fd_write_full(out, tmp, (size_t)n) < 0)
			return -1;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Copies bytes appended to in after *from (by writers that do not lock)
   to out; a bounded number of rounds. */
static int
copy_late_bytes(int in, int out, uint64_t *from, char *tmp)
{
	for (unsigned round = 0; round < 100; round++) {
		struct stat st;

		if (fstat(in, &st) < 0)
			return -1;
		if ((uint64_t)st.st_size <= *from)
			return 0;
		if (copy_range(in, out, *from, (uint64_t)st.st_size - *from, tmp) < 0)
			return -1;
		*from = (uint64_t)st.st_size;
	}
	return 0;
}

/* A kept message, as the work copies it. */
struct kept {
	uint32_t uid;
	uint64_t off, len, hash;   /* its bytes in the old file */
	uint64_t newoff;           /* where the work put them in the new file */
};

/* An expunge between its prepare and its commit or abort: what the work
   needs, copied out of the box and the state, and what it found. The
   box keeps the lock meanwhile. */
struct flat_expunge_job {
	uint32_t *uids;            /* the UIDs to remove, sorted (a copy) */
	size_t count;
	int in_fd;                 /* the work's own descriptor of the old file */
	int tfd;                   /* the new mail file, box->mail_tmp */
	char *mail_path;           /* for the work's error messages */
	struct kept *kept;         /* in file order */
	size_t kept_count;
	bool last_open;            /* the last kept message has no terminator */
	uint64_t new_end;          /* set by the work: the new file's size */
	/* The work's failure: errno (0 for a content problem) and reason. */
	int work_errno;
	char *work_error;
	/* The new index as of the prepare (flags, keywords, UIDNEXT, the
	   expunge's modseq), written ahead by the work to the index's temp
	   file (ifd, -1 if not): the commit renames it into place if state
	   and the old file are still as the prepare saw them, and otherwise
	   writes one from state as it is then. */
	struct view nv;
	size_t state_count;        /* state->count at the prepare */
	char *user_dir, *index_tmp;
	int ifd;
	uint32_t hsize;
	uint64_t late_from;        /* the old file is copied up to here */
	/* The renames made by the work after the index ahead (both
	   fsynced with their folders): the new file is the mailbox
	   (switched), and its index the one written ahead unless that
	   rename failed (ifd -1 then). */
	char *mail_tmp, *index_path;
	bool switched;
	struct stat new_st;        /* the new file's, as the index ahead has it */
};

/* The end (exclusive index) of the batch of kept messages that starts
   at i: consecutive in the file, at most a chunk in all (or one
   message). */
static size_t
expunge_batch(const struct flat_expunge_job *x, size_t i)
{
	uint64_t start = x->kept[i].off, end = start + x->kept[i].len;
	size_t j;

	for (j = i + 1; j < x->kept_count; j++) {
		const struct kept *k = &x->kept[j];

		if (k->off != end || end + k->len - start > FLAT_COPY_CHUNK)
			break;
		end += k->len;
	}
	return j;
}

/* The rest of the work, after the copy of the kept messages: the bytes
   appended to the old file meanwhile (by writers that do not lock), the
   fsync, and the new index as of the prepare, written and fsynced to
   its temp file (a failure there only leaves the index to the commit).
   Returns 0, or -1 with errno. */
static int
expunge_index_ahead(struct flat_expunge_job *x, char *chunk)
{
	struct buf b = BUF_INIT;
	struct stat st;
	char *own = chunk == NULL ? xmalloc(FLAT_COPY_CHUNK) : NULL;
	int ret = -1;

	if (copy_late_bytes(x->in_fd, x->tfd, &x->late_from, own != NULL ? own : chunk) < 0 ||
	    fsync(x->tfd) < 0 || fstat(x->tfd, &st) < 0)
		goto out;
	for (size_t k = 0; k < x->kept_count; k++)
		x->nv.recs[k].off = x->kept[k].newoff;
	x->nv.parsed_end = x->new_end;
	x->nv.last_open = x->last_open;
	flat_view_set_stat(&x->nv, &st);
	x->new_st = st;
	x->hsize = (uint32_t)flat_index_encode(&x->nv, &b);
	x->ifd = file_tmp_create(x->user_dir, x->index_tmp, b.data, b.len, 0600);
	buf_free(&b);
	ret = 0;
out:
	free(own);
	return ret;
}

/* The rest of the work when the index was written ahead: the commit's
   renames (see expunge_switch_ahead(), which this is, run by the work:
   its fsyncs are not the loop's). The commit then only checks that the
   index written ahead still holds and applies the expunge to the state.
   Returns 0, or -1 with errno (nothing renamed: the old mailbox stays). */
static int
expunge_switch_in_work(struct flat_expunge_job *x)
{
	char *chunk;

	if (file_tmp_commit(x->user_dir, x->tfd, x->mail_tmp, x->mail_path) < 0) {
		int saved = errno;

		close(x->ifd);
		x->ifd = -1;
		(void)fs_unlink_beneath(x->user_dir, x->index_tmp);
		errno = saved;
		return -1;
	}
	/* From here the new file is the mailbox. */
	x->switched = true;
	chunk = xmalloc(FLAT_COPY_CHUNK);
	if (copy_late_bytes(x->in_fd, x->tfd, &x->late_from, chunk) == 0)
		(void)fsync(x->tfd);
	free(chunk);
	if (file_tmp_commit(x->user_dir, x->ifd, x->index_tmp, x->index_path) < 0) {
		close(x->ifd);
		x->ifd = -1;
	}
	job_test_hold_named("expunge-switched");
	return 0;
}

/* The work (a worker thread, or inline): copies the kept messages to
   x->tfd in batches of consecutive ones (one read and one write per
   batch), checking each one's hash on the way, and fsyncs. Touches only
   x. */
static void
expunge_copy_kept(struct flat_expunge_job *x)
{
	char *data = NULL;
	size_t data_cap = 0;
	uint64_t newoff = 0;
	bool held = false;

	for (size_t i = 0; i < x->kept_count;) {
		uint64_t start = x->kept[i].off;
		size_t j = expunge_batch(x, i);
		uint64_t end = x->kept[j - 1].off + x->kept[j - 1].len;
		ssize_t n;

		if (!held && i >= x->kept_count / 2) {
			/* halfway: where a test may hold the work */
			job_test_hold();
			held = true;
		}
		if (end - start > (uint64_t)SSIZE_MAX / 2) {
			errno = EFBIG;
			goto io_fail;
		}
		if (end - start > data_cap) {
			data_cap = (size_t)(end - start);
			data = xrealloc(data, data_cap);
		}
		n = fd_pread_full(x->in_fd, data, (size_t)(end - start), start);
		if (n < 0)
			goto io_fail;
		if ((uint64_t)n != end - start) {
			x->work_error = xasprintf("%s: file shrank during expunge", x->mail_path);
			goto out;
		}
		for (size_t k = i; k < j; k++) {
			const struct kept *m = &x->kept[k];

			if (flat_hash_bytes(data + (m->off - start), (size_t)m->len) != m->hash) {
				x->work_error = xasprintf("%s: message %u changed on disk during "
							  "expunge", x->mail_path, m->uid);
				goto out;
			}
			x->kept[k].newoff = newoff + (m->off - start);
		}
		if (fd_write_full(x->tfd, data, (size_t)(end - start)) < 0)
			goto io_fail;
		newoff += end - start;
		i = j;
	}
	if (!held)
		job_test_hold();
	x->new_end = newoff;
	if (expunge_index_ahead(x, data_cap >= FLAT_COPY_CHUNK ? data : NULL) < 0)
		goto io_fail;
	if (x->ifd >= 0 && expunge_switch_in_work(x) < 0)
		goto io_fail;
	goto out;
io_fail:
	x->work_errno = errno;
	x->work_error = xasprintf("expunge %s: %s", x->mail_path, strerror(errno));
out:
	free(data);
}

/* The new index for the mailbox after the expunge, from state as it is
   now (flags changed since the prepare are kept) and the kept messages'
   new offsets. Returns 0, or -1 with *error_r if state no longer holds
   exactly the kept messages. */
static int
expunge_new_view(struct storage_box *box, const struct mbox_state *state,
		 const struct flat_expunge_job *x, struct view *nv, char **error_r)
{
	size_t k = 0;
	bool other = false;

	flat_view_from_state(box, state, false, nv);
	nv->alloc = x->kept_count == 0 ? 1 : x->kept_count;
	nv->recs = xmalloc(nv->alloc * sizeof(*nv->recs));
	for (size_t i = 0; i < state->count; i++) {
		const struct mail_rec *m = &state->mails[i];
		struct frec r;

		if (u32_sorted_contains(x->uids, x->count, m->uid))
			continue;
		if (k >= x->kept_count || x->kept[k].uid != m->uid) {
			other = true;
			break;
		}
		flat_mail_to_frec(m, &r);
		r.off = x->kept[k++].newoff;
		nv->recs[nv->count++] = r;
	}
	if (other || k != x->kept_count) {
		*error_r = xasprintf("expunge %s: the mailbox changed during the expunge",
				     box->mail_path);
		return -1;
	}
	nv->parsed_end = x->new_end;
	nv->last_open = x->last_open;
	return 0;
}

/* Makes the new file the mailbox: the late bytes copied, the new file
   and the new index written and fsynced, then the mail file renamed,
   then the index. Returns 0 (box's index is the new one, or none if only
   its rename failed), or -1 with *error_r when the old mailbox stays. */
static int
expunge_switch(struct storage_box *box, struct flat_expunge_job *x, struct view *nv,
	       char **error_r)
{
	struct buf b = BUF_INIT;
	struct stat st;
	size_t hsize;
	char *chunk = xmalloc(FLAT_COPY_CHUNK);
	/* Bytes after the parsed part (a pending tail, or another
	   writer's) that the work has not copied. */
	uint64_t from = x->late_from;
	int ifd = -1;

	if (copy_late_bytes(box->lock_fd, x->tfd, &from, chunk) < 0 || fsync(x->tfd) < 0 ||
	    fstat(x->tfd, &st) < 0)
		goto io_fail;
	flat_view_set_stat(nv, &st);
	/* The new index goes to its temp file first; both renames follow. */
	hsize = flat_index_encode(nv, &b);
	if (mkdir_parents(box->user_dir, box->index_tmp) == 0)
		ifd = file_tmp_create(box->user_dir, box->index_tmp, b.data, b.len, 0600);
	buf_free(&b);
	if (ifd < 0)
		goto io_fail;
	if (file_tmp_commit(box->user_dir, x->tfd, box->mail_tmp, box->mail_path) < 0) {
		close(ifd);
		(void)fs_unlink_beneath(box->user_dir, box->index_tmp);
		goto io_fail;
	}
	/* From here the new file is the mailbox. */
	if (copy_late_bytes(box->lock_fd, x->tfd, &from, chunk) == 0)
		(void)fsync(x->tfd);
	if (file_tmp_commit(box->user_dir, ifd, box->index_tmp, box->index_path) < 0) {
		close(ifd);
		ifd = -1;
	}
	flat_box_set_index_fd(box, ifd, (uint32_t)hsize);
	free(chunk);
	return 0;
io_fail:
	*error_r = xasprintf("expunge %s: %s", box->mail_path, strerror(errno));
	free(chunk);
	return -1;
}

/* True if the index the work wrote ahead holds: state and the old file
   are as the prepare saw them (every flag change raises HIGHESTMODSEQ,
   and the expunge's own raise is the one the work assumed). */
static bool
expunge_ahead_holds(const struct storage_box *box, const struct mbox_state *state,
		    const struct flat_expunge_job *x)
{
	struct stat st;

	return x->ifd >= 0 && state->count == x->state_count &&
	       state->highest_modseq == x->nv.highest_modseq &&
	       state->uidnext == x->nv.uidnext &&
	       state->first_recent_uid == x->nv.first_recent_uid &&
	       state->keyword_count == x->nv.kw_count && fstat(box->lock_fd, &st) == 0 &&
	       (uint64_t)st.st_size == x->late_from;
}

/* The index the work wrote does not hold: expunge_switch() writes
   another over its temp file. */
static void
expunge_drop_ahead(struct flat_expunge_job *x)
{
	if (x->ifd >= 0) {
		close(x->ifd);
		x->ifd = -1;
	}
}

/* expunge_switch() with the index the work wrote: the two renames. */
static int
expunge_switch_ahead(struct storage_box *box, struct flat_expunge_job *x, char **error_r)
{
	char *chunk;
	int ifd = x->ifd;

	x->ifd = -1;
	if (file_tmp_commit(box->user_dir, x->tfd, box->mail_tmp, box->mail_path) < 0) {
		*error_r = xasprintf("expunge %s: %s", box->mail_path, strerror(errno));
		close(ifd);
		(void)fs_unlink_beneath(box->user_dir, box->index_tmp);
		return -1;
	}
	/* From here the new file is the mailbox. */
	chunk = xmalloc(FLAT_COPY_CHUNK);
	if (copy_late_bytes(box->lock_fd, x->tfd, &x->late_from, chunk) == 0)
		(void)fsync(x->tfd);
	free(chunk);
	if (file_tmp_commit(box->user_dir, ifd, box->index_tmp, box->index_path) < 0) {
		close(ifd);
		ifd = -1;
	}
	flat_box_set_index_fd(box, ifd, x->hsize);
	return 0;
}

/* After expunge_switch(): box reads the new file, state loses the
   expunged messages (one compaction pass, not a memmove per message). */
static void
expunge_apply(struct storage_box *box, struct mbox_state *state, struct flat_expunge_job *x,
	      const struct view *nv)
{
	close(box->fd);
	box->fd = x->tfd;
	x->tfd = -1;
	flat_box_take_view_stat(box, nv);
	box->pending = nv->parsed_end < nv->mail_size;
	if (box->index_fd < 0) {
		/* the old index stays; the next sync matches by hash */
		box->ino = 0;
		box->pending = true;
	}
	mbox_state_remove_uids(state, x->uids, x->count);
	for (size_t i = 0; i < state->count && i < nv->count; i++)
		state->mails[i].priv[0] = nv->recs[i].off;
	box->disk_same = box->index_fd >= 0 && flat_keywords_same(nv, state);
}

static void
expunge_job_free(struct flat_expunge_job **_x)
{
	struct flat_expunge_job *x = *_x;

	if (x == NULL)
		return;
	*_x = NULL;
	if (x->in_fd >= 0) {
		/* Likely the last descriptor of a replaced file: its final
		   close frees the file, long for a big one. */
		job_close_later(x->in_fd);
	}
	if (x->tfd >= 0)
		close(x->tfd);
	if (x->ifd >= 0) {
		close(x->ifd);
		if (!x->switched)
			(void)fs_unlink_beneath(x->user_dir, x->index_tmp);
	}
	flat_view_free(&x->nv);
	free(x->user_dir);
	free(x->index_tmp);
	free(x->uids);
	free(x->kept);
	free(x->mail_path);
	free(x->mail_tmp);
	free(x->index_path);
	free(x->work_error);
	free(x);
}

/* Drops an expunge that was not committed: its temp file goes, the old
   mailbox stays, the lock is released. */
static void
expunge_abort(struct storage_box *box, struct flat_expunge_job **_x)
{
	struct flat_expunge_job *x = *_x;

	if (x == NULL)
		return;
	if (x->tfd >= 0) {
		close(x->tfd);
		x->tfd = -1;
		/* (switched: the work made the expunge, never told) */
		if (!x->switched)
			(void)fs_unlink_beneath(box->user_dir, box->mail_tmp);
	}
	expunge_job_free(_x);
	flat_unlock(box);
}

/* The kept messages of state (those not in x->uids) into x->kept;
   returns how many are removed. */
static size_t
expunge_snapshot(const struct storage_box *box, const struct mbox_state *state,
		 struct flat_expunge_job *x)
{
	size_t removed = 0;

	x->kept = xmalloc((state->count == 0 ? 1 : state->count) * sizeof(*x->kept));
	/* The index as the commit will want it if nothing changes: the
	   hub raises HIGHESTMODSEQ once for the expunge (mailbox.c). */
	flat_view_from_state(box, state, false, &x->nv);
	x->nv.highest_modseq = state->highest_modseq + 1;
	x->nv.alloc = state->count == 0 ? 1 : state->count;
	x->nv.recs = xmalloc(x->nv.alloc * sizeof(*x->nv.recs));
	x->state_count = state->count;
	for (size_t i = 0; i < state->count; i++) {
		struct frec r;

		if (u32_sorted_contains(x->uids, x->count, state->mails[i].uid)) {
			removed++;
			continue;
		}
		flat_mail_to_frec(&state->mails[i], &r);
		x->nv.recs[x->nv.count++] = r;
		x->kept[x->kept_count++] = (struct kept){ .uid = r.uid, .off = r.off,
							  .len = r.len, .hash = r.hash };
	}
	x->last_open = box->last_open && state->count > 0 &&
		       !u32_sorted_contains(x->uids, x->count, state->mails[state->count - 1].uid);
	return removed;
}

static int
expunge_prepare(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
		size_t count, struct flat_expunge_job **x_r, enum storage_error *err_r,
		char **error_r)
{
	struct flat_expunge_job *x;
	struct stat st;
	int mode = 0600;

	*x_r = NULL;
	if (count == 0)
		return 0;
	if (flat_lock(box, false, err_r, error_r) < 0)
		return -1;
	if (flat_catch_up(box, state, err_r, error_r) < 0) {
		flat_unlock(box);
		return -1;
	}
	x = xcalloc(1, sizeof(*x));
	x->in_fd = x->tfd = x->ifd = -1;
	x->uids = xmalloc(count * sizeof(*x->uids));
	memcpy(x->uids, uids, count * sizeof(*x->uids));
	qsort(x->uids, count, sizeof(*x->uids), u32_cmp);
	x->count = count;
	if (expunge_snapshot(box, state, x) == 0 || box->lock_fd < 0 || box->fd < 0) {
		expunge_job_free(&x);
		flat_unlock(box);
		return 0;
	}
	if (fstat(box->lock_fd, &st) == 0)
		mode = (int)(st.st_mode & 0777);
	x->mail_path = xstrdup(box->mail_path);
	x->user_dir = xstrdup(box->user_dir);
	x->index_tmp = xstrdup(box->index_tmp);
	x->mail_tmp = xstrdup(box->mail_tmp);
	x->index_path = xstrdup(box->index_path);
	x->late_from = box->parsed_end;
	/* on failure the work's index write fails too, and the commit's
	   says why */
	(void)mkdir_parents(box->user_dir, box->index_tmp);
	x->in_fd = dup(box->lock_fd);
	if (x->in_fd >= 0)
		x->tfd = fs_open_beneath(box->user_dir, box->mail_tmp, O_RDWR | O_CREAT | O_TRUNC,
					 (mode_t)mode);
	if (x->in_fd < 0 || x->tfd < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("open %s: %s", box->mail_tmp, strerror(errno));
		expunge_job_free(&x);
		flat_unlock(box);
		return -1;
	}
	*x_r = x;
	return 0;
}

/* The disk is too full for the rewrite: the kept messages are moved
   down in place instead (flat_compact.c), and the index is written from
   state as the rewrite would (or, when even that fails, the old one is
   matched by hash at the next sync). Returns 0 with the expunge applied,
   or -1 with *error_r and the mailbox whole (or left to the journal's
   recovery at the next open, if the disk failed under it). */
static int
expunge_in_place(struct storage_box *box, struct mbox_state *state, struct flat_expunge_job *x,
		 char **error_r)
{
	uint64_t *off, *len, *newoff, end = 0;
	struct view nv;
	struct stat st;
	int ret = -1;

	/* The temp file first: it holds the space the copy took. */
	if (x->tfd >= 0) {
		close(x->tfd);
		x->tfd = -1;
		(void)fs_unlink_beneath(box->user_dir, box->mail_tmp);
	}
	expunge_drop_ahead(x);
	if (fstat(box->lock_fd, &st) < 0 || (uint64_t)st.st_size != x->late_from) {
		*error_r = xasprintf("expunge %s: no space to rewrite it, and it grew meanwhile",
				     box->mail_path);
		return -1;
	}
	for (size_t k = 0; k < x->kept_count; k++) {
		x->kept[k].newoff = end;
		end += x->kept[k].len;
	}
	x->new_end = end;
	i_zero(&nv);
	if (expunge_new_view(box, state, x, &nv, error_r) < 0)
		return -1;
	off = xmalloc((x->kept_count + 1) * sizeof(*off));
	len = xmalloc((x->kept_count + 1) * sizeof(*len));
	newoff = xmalloc((x->kept_count + 1) * sizeof(*newoff));
	for (size_t k = 0; k < x->kept_count; k++) {
		off[k] = x->kept[k].off;
		len[k] = x->kept[k].len;
	}
	if (flat_compact_in_place(box, off, len, x->kept_count, newoff, error_r) < 0 ||
	    fstat(box->lock_fd, &st) < 0)
		goto out;
	flat_view_set_stat(&nv, &st);
	if (flat_index_write_full(box, &nv, error_r) < 0) {
		/* the old index stays; the next sync matches it by hash */
		storage_space_failed(&box->space, box->index_path, errno);
		free(*error_r);
		*error_r = NULL;
		flat_box_set_index_fd(box, -1, 0);
	}
	flat_box_take_view_stat(box, &nv);
	box->pending = false;
	if (box->index_fd < 0) {
		box->ino = 0;
		box->pending = true;
	}
	mbox_state_remove_uids(state, x->uids, x->count);
	for (size_t i = 0; i < state->count && i < nv.count; i++)
		state->mails[i].priv[0] = nv.recs[i].off;
	box->disk_same = box->index_fd >= 0 && flat_keywords_same(&nv, state);
	ret = 0;
out:
	flat_view_free(&nv);
	free(off);
	free(len);
	free(newoff);
	return ret;
}

/* The commit of an expunge the work switched to (expunge_switch_in_work()):
   state loses the messages. If state changed since the prepare (a
   \Recent taken meanwhile, say), the index the work wrote is replaced
   by one from state as it is now; if that cannot be written, the box
   drops its index, and the next sync matches the old one by hash, as
   after a crash between the two renames. */
static void
expunge_switched_commit(struct storage_box *box, struct mbox_state *state,
			struct flat_expunge_job *x)
{
	struct view nv;
	char *error = NULL;
	bool holds = state->count == x->state_count &&
		     state->highest_modseq == x->nv.highest_modseq &&
		     state->uidnext == x->nv.uidnext &&
		     state->first_recent_uid == x->nv.first_recent_uid &&
		     state->keyword_count == x->nv.kw_count;

	flat_box_set_index_fd(box, x->ifd, x->hsize);
	x->ifd = -1;
	i_zero(&nv);
	if (holds || expunge_new_view(box, state, x, &nv, &error) < 0) {
		free(error);
		flat_view_free(&nv);
		expunge_apply(box, state, x, &x->nv);
		return;
	}
	flat_view_set_stat(&nv, &x->new_st);
	if (flat_index_write_full(box, &nv, &error) < 0) {
		free(error);
		flat_box_set_index_fd(box, -1, 0);
	}
	expunge_apply(box, state, x, &nv);
	flat_view_free(&nv);
}

static int
expunge_commit(struct storage_box *box, struct mbox_state *state,
	       struct flat_expunge_job **_x, enum storage_error *err_r, char **error_r)
{
	struct flat_expunge_job *x = *_x;
	struct view nv;
	int ret = -1;

	i_zero(&nv);
	if (x->switched) {
		expunge_switched_commit(box, state, x);
		expunge_job_free(_x);
		flat_unlock(box);
		return 0;
	}
	if (x->work_error != NULL) {
		*err_r = x->work_errno != 0 ? storage_error_from_errno(x->work_errno) :
					      STORAGE_ERR_TEMP;
		*error_r = x->work_error;
		x->work_error = NULL;
	} else if (expunge_ahead_holds(box, state, x)) {
		/* The usual case: two renames. */
		if (expunge_switch_ahead(box, x, error_r) < 0)
			*err_r = storage_error_from_errno(errno);
		else {
			expunge_apply(box, state, x, &x->nv);
			ret = 0;
		}
	} else if ((expunge_drop_ahead(x), expunge_new_view(box, state, x, &nv, error_r)) < 0) {
		*err_r = STORAGE_ERR_TEMP;
	} else if (expunge_switch(box, x, &nv, error_r) < 0) {
		*err_r = storage_error_from_errno(errno);
	} else {
		expunge_apply(box, state, x, &nv);
		ret = 0;
	}
	flat_view_free(&nv);
	if (ret < 0 && *err_r == STORAGE_ERR_NO_SPACE) {
		char *why = NULL;

		if (expunge_in_place(box, state, x, &why) == 0) {
			free(*error_r);
			*error_r = NULL;
			*err_r = STORAGE_ERR_NONE;
			ret = 0;
		} else {
			char *both = xasprintf("%s; %s", *error_r, why);

			free(*error_r);
			free(why);
			*error_r = both;
		}
	}
	if (ret < 0)
		expunge_abort(box, _x);
	else {
		expunge_job_free(_x);
		flat_unlock(box);
	}
	return ret;
}

/* The backend's jobs: an expunge, or the first build of an index
   (flat_sync.c). */
struct storage_job {
	struct flat_expunge_job *expunge;
	struct flat_scan_job *scan;
	struct flat_append_job *append;
};

struct storage_job *
flat_job_of_append(struct flat_append_job *a)
{
	struct storage_job *job = xcalloc(1, sizeof(*job));

	job->append = a;
	return job;
}

struct flat_append_job *
flat_job_append(struct storage_job *job)
{
	return job->append;
}

struct flat_append_job *
flat_job_take_append(struct storage_job *job)
{
	struct flat_append_job *a = job->append;

	free(job);
	return a;
}

int
flat_expunge_prepare(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
		     size_t count, struct storage_job **job_r, enum storage_error *err_r,
		     char **error_r)
{
	struct flat_expunge_job *x;

	*err_r = STORAGE_ERR_NONE;
	*job_r = NULL;
	if (expunge_prepare(box, state, uids, count, &x, err_r, error_r) < 0) {
		if (*err_r == STORAGE_ERR_NONE)
			*err_r = STORAGE_ERR_TEMP;
		return -1;
	}
	if (x != NULL) {
		*job_r = xcalloc(1, sizeof(**job_r));
		(*job_r)->expunge = x;
	}
	return 0;
}

void
flat_job_work(struct storage_job *job)
{
	if (job->expunge != NULL)
		expunge_copy_kept(job->expunge);
	if (job->scan != NULL)
		flat_first_build_work(job->scan);
	if (job->append != NULL)
		flat_append_work(job->append);
}

int
flat_job_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **_job,
		enum storage_error *err_r, char **error_r)
{
	struct storage_job *job = *_job;
	int ret = 0;

	*err_r = STORAGE_ERR_NONE;
	*_job = NULL;
	if (job->expunge != NULL)
		ret = expunge_commit(box, state, &job->expunge, err_r, error_r);
	if (ret < 0 && *err_r == STORAGE_ERR_NONE)
		*err_r = STORAGE_ERR_TEMP;
	free(job);
	return ret;
}

void
flat_job_abort(struct storage_box *box, struct storage_job **_job)
{
	struct storage_job *job = *_job;

	if (job == NULL)
		return;
	*_job = NULL;
	if (job->expunge != NULL)
		expunge_abort(box, &job->expunge);
	flat_first_build_free(&job->scan);
	flat_append_job_free(box, job->append);
	free(job);
}

int
flat_open_prepare(struct storage *st, const char *user, const char *name,
		  struct storage_job **job_r, enum storage_error *err_r, char **error_r)
{
	struct flat_scan_job *scan;

	*err_r = STORAGE_ERR_NONE;
	*job_r = NULL;
	flat_first_build_prepare(st, user, name, &scan);
	if (scan != NULL) {
		*job_r = xcalloc(1, sizeof(**job_r));
		(*job_r)->scan = scan;
	}
	return 0;
}

int
flat_open_commit(struct storage *st, struct storage_job **_job, struct mbox_state *state,
		 struct storage_box **box_r, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job = *_job;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	*_job = NULL;
	ret = flat_first_build_commit(&job->scan, state, box_r, err_r, error_r);
	free(job);
	return ret;
}

int
flat_expunge(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
	     size_t count, enum storage_error *err_r, char **error_r)
{
	struct storage_job *job;

	if (flat_expunge_prepare(box, state, uids, count, &job, err_r, error_r) < 0)
		return -1;
	if (job == NULL)
		return 0;
	flat_job_work(job);
	return flat_job_commit(box, state, &job, err_r, error_r);
}
