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
   or damaged index means a new UIDVALIDITY, never lost mail. */
#include "fileio.h"
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

/* One expunge rewrite in progress. */
struct expunge {
	struct storage_box *box;
	struct mbox_state *state;
	const uint32_t *uids;      /* ascending */
	size_t count;
	int tfd;                   /* the new mail file, box->mail_tmp */
	struct view nv;            /* the index of the new file */
	char *chunk;               /* FLAT_COPY_CHUNK bytes for copy_range() */
	uint64_t from;             /* the old file is copied up to here */
};

/* uids if ascending (the contract), else a sorted copy in *sorted_r
   that the caller frees: u32_sorted_contains() searches uids, and a
   caller that broke the contract gets a sorted copy, not a wrong
   expunge. */
static const uint32_t *
expunge_sorted_uids(const uint32_t *uids, size_t count, uint32_t **sorted_r)
{
	*sorted_r = NULL;
	for (size_t i = 1; i < count; i++) {
		if (uids[i] < uids[i - 1]) {
			*sorted_r = xmalloc(count * sizeof(**sorted_r));
			memcpy(*sorted_r, uids, count * sizeof(**sorted_r));
			qsort(*sorted_r, count, sizeof(**sorted_r), u32_cmp);
			return *sorted_r;
		}
	}
	return uids;
}

static bool
expunge_removes(const struct expunge *x, size_t idx)
{
	return u32_sorted_contains(x->uids, x->count, x->state->mails[idx].uid);
}

/* The end (exclusive index) of the batch of kept messages that starts
   at the kept message i: consecutive in the file, at most a chunk in
   all (or one message). Sets *start_r and *end_r to its span. */
static size_t
expunge_batch(const struct expunge *x, size_t i, uint64_t *start_r, uint64_t *end_r)
{
	const struct mbox_state *state = x->state;
	uint64_t start = state->mails[i].priv[0];
	uint64_t end = start + state->mails[i].priv[1];
	size_t j;

	for (j = i + 1; j < state->count; j++) {
		const struct mail_rec *m = &state->mails[j];

		if (expunge_removes(x, j) || m->priv[0] != end ||
		    end + m->priv[1] - start > FLAT_COPY_CHUNK)
			break;
		end += m->priv[1];
	}
	*start_r = start;
	*end_r = end;
	return j;
}

/* Copies the kept messages to x->tfd in batches of consecutive ones (one
   read and one write per batch), checking each one's hash on the way,
   and records them in x->nv. Returns 0, or -1 with *error_r. */
static int
expunge_copy_kept(struct expunge *x, char **error_r)
{
	struct storage_box *box = x->box;
	struct mbox_state *state = x->state;
	char *data = NULL;
	size_t data_cap = 0;
	uint64_t newoff = 0;
	bool open_kept = false;
	int ret = -1;

	for (size_t i = 0; i < state->count;) {
		uint64_t start, end;
		size_t j;
		ssize_t n;

		if (expunge_removes(x, i)) {
			i++;
			continue;
		}
		j = expunge_batch(x, i, &start, &end);
		if (end - start > (uint64_t)SSIZE_MAX / 2) {
			errno = EFBIG;
			goto io_fail;
		}
		if (end - start > data_cap) {
			data_cap = (size_t)(end - start);
			data = xrealloc(data, data_cap);
		}
		n = fd_pread_full(box->lock_fd, data, (size_t)(end - start), start);
		if (n < 0)
			goto io_fail;
		if ((uint64_t)n != end - start) {
			*error_r = xasprintf("%s: file shrank during expunge", box->mail_path);
			goto out;
		}
		for (size_t k = i; k < j; k++) {
			struct frec r;

			flat_mail_to_frec(&state->mails[k], &r);
			if (flat_hash_bytes(data + (r.off - start), (size_t)r.len) != r.hash) {
				*error_r = xasprintf("%s: message %u changed on disk during expunge",
						     box->mail_path, r.uid);
				goto out;
			}
			r.off = newoff + (r.off - start);
			x->nv.recs[x->nv.count++] = r;
			open_kept = box->last_open && k == state->count - 1;
		}
		if (fd_write_full(x->tfd, data, (size_t)(end - start)) < 0)
			goto io_fail;
		newoff += end - start;
		i = j;
	}
	x->nv.parsed_end = newoff;
	x->nv.last_open = open_kept;
	ret = 0;
	goto out;
io_fail:
	*error_r = xasprintf("expunge %s: %s", box->mail_path, strerror(errno));
out:
	free(data);
	return ret;
}

/* Makes the new file the mailbox: the late bytes copied, the new file
   and the new index written and fsynced, then the mail file renamed,
   then the index. Returns 0 (box's index is the new one, or none if only
   its rename failed), or -1 with *error_r when the old mailbox stays. */
static int
expunge_commit(struct expunge *x, char **error_r)
{
	struct storage_box *box = x->box;
	struct buf b = BUF_INIT;
	struct stat st;
	size_t hsize;
	int ifd = -1;

	/* Bytes after the parsed part: a pending tail, or another writer's. */
	x->from = box->parsed_end;
	if (copy_late_bytes(box->lock_fd, x->tfd, &x->from, x->chunk) < 0 || fsync(x->tfd) < 0 ||
	    fstat(x->tfd, &st) < 0)
		goto io_fail;
	flat_view_set_stat(&x->nv, &st);
	/* The new index goes to its temp file first; both renames follow. */
	hsize = flat_index_encode(&x->nv, &b);
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
	if (copy_late_bytes(box->lock_fd, x->tfd, &x->from, x->chunk) == 0)
		(void)fsync(x->tfd);
	if (file_tmp_commit(box->user_dir, ifd, box->index_tmp, box->index_path) < 0) {
		close(ifd);
		ifd = -1;
	}
	flat_box_set_index_fd(box, ifd, (uint32_t)hsize);
	return 0;
io_fail:
	*error_r = xasprintf("expunge %s: %s", box->mail_path, strerror(errno));
	return -1;
}

/* After expunge_commit(): box reads the new file, state loses the
   expunged messages (one compaction pass, not a memmove per message). */
static void
expunge_apply(struct expunge *x)
{
	struct storage_box *box = x->box;
	struct mbox_state *state = x->state;

	close(box->fd);
	box->fd = x->tfd;
	x->tfd = -1;
	flat_box_take_view_stat(box, &x->nv);
	box->pending = x->nv.parsed_end < x->nv.mail_size;
	if (box->index_fd < 0) {
		/* the old index stays; the next sync matches by hash */
		box->ino = 0;
		box->pending = true;
	}
	mbox_state_remove_uids(state, x->uids, x->count);
	for (size_t i = 0; i < state->count && i < x->nv.count; i++)
		state->mails[i].priv[0] = x->nv.recs[i].off;
	box->disk_same = box->index_fd >= 0 && flat_keywords_same(&x->nv, state);
}

int
flat_expunge(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
	     size_t count, enum storage_error *err_r, char **error_r)
{
	struct expunge x = { .box = box, .state = state, .count = count, .tfd = -1 };
	struct stat st;
	uint32_t *sorted;
	size_t removed = 0;
	int ret = -1, mode = 0600;

	*err_r = STORAGE_ERR_NONE;
	if (count == 0)
		return 0;
	x.uids = expunge_sorted_uids(uids, count, &sorted);
	if (flat_lock(box, false, err_r, error_r) < 0) {
		free(sorted);
		return -1;
	}
	if (flat_catch_up(box, state, err_r, error_r) < 0)
		goto out;
	for (size_t i = 0; i < state->count; i++) {
		if (expunge_removes(&x, i))
			removed++;
	}
	if (removed == 0 || box->lock_fd < 0 || box->fd < 0) {
		ret = 0;
		goto out;
	}
	if (fstat(box->lock_fd, &st) == 0)
		mode = (int)(st.st_mode & 0777);
	x.tfd = fs_open_beneath(box->user_dir, box->mail_tmp, O_RDWR | O_CREAT | O_TRUNC, (mode_t)mode);
	if (x.tfd < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("open %s: %s", box->mail_tmp, strerror(errno));
		goto out;
	}
	flat_view_from_state(box, state, true, &x.nv);
	x.nv.count = 0;
	x.chunk = xmalloc(FLAT_COPY_CHUNK);
	if (expunge_copy_kept(&x, error_r) < 0 || expunge_commit(&x, error_r) < 0) {
		*err_r = storage_error_from_errno(errno);
		close(x.tfd);
		x.tfd = -1;
		(void)fs_unlink_beneath(box->user_dir, box->mail_tmp);
		goto out;
	}
	expunge_apply(&x);
	ret = 0;
out:
	if (ret < 0 && *err_r == STORAGE_ERR_NONE)
		*err_r = STORAGE_ERR_TEMP;
	if (x.tfd >= 0)
		close(x.tfd);
	flat_view_free(&x.nv);
	free(x.chunk);
	free(sorted);
	flat_unlock(box);
	return ret;
}
