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

int
flat_expunge(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
	     size_t count, char **error_r)
{
	enum storage_error err;
	struct view nv;
	struct stat st;
	char *tmp = NULL, *data = NULL;
	uint32_t *sorted = NULL;
	size_t data_cap = 0, removed = 0;
	uint64_t newoff = 0, from;
	int tfd = -1, ret = -1, mode = 0600;
	bool open_kept = false;

	i_zero(&nv);
	if (count == 0)
		return 0;
	/* u32_sorted_contains() searches uids: they must be ascending (the contract);
	   a caller that broke it gets a sorted copy, not a wrong expunge. */
	for (size_t i = 1; i < count; i++) {
		if (uids[i] < uids[i - 1]) {
			sorted = xmalloc(count * sizeof(*sorted));
			memcpy(sorted, uids, count * sizeof(*sorted));
			qsort(sorted, count, sizeof(*sorted), u32_cmp);
			uids = sorted;
			break;
		}
	}
	if (flat_lock(box, false, &err, error_r) < 0) {
		free(sorted);
		return -1;
	}
	if (flat_catch_up(box, state, &err, error_r) < 0)
		goto out;
	for (size_t i = 0; i < state->count; i++) {
		if (u32_sorted_contains(uids, count, state->mails[i].uid))
			removed++;
	}
	if (removed == 0 || box->lock_fd < 0 || box->fd < 0) {
		ret = 0;
		goto out;
	}
	if (fstat(box->lock_fd, &st) == 0)
		mode = (int)(st.st_mode & 0777);
	tfd = open(box->mail_tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	if (tfd < 0) {
		*error_r = xasprintf("open %s: %s", box->mail_tmp, strerror(errno));
		goto out;
	}
	flat_view_from_state(box, state, true, &nv);
	nv.count = 0;
	tmp = xmalloc(FLAT_COPY_CHUNK);
	/* Copy the kept messages in batches of consecutive ones (one read and
	   one write per batch), checking each one's hash on the way. */
	for (size_t i = 0; i < state->count;) {
		size_t j = i, k;
		uint64_t start, end;
		ssize_t n;

		if (u32_sorted_contains(uids, count, state->mails[i].uid)) {
			i++;
			continue;
		}
		start = state->mails[i].priv[0];
		end = start + state->mails[i].priv[1];
		for (j = i + 1; j < state->count; j++) {
			const struct mail_rec *m = &state->mails[j];

			if (u32_sorted_contains(uids, count, m->uid) || m->priv[0] != end ||
			    end + m->priv[1] - start > FLAT_COPY_CHUNK)
				break;
			end += m->priv[1];
		}
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
			goto fail;
		}
		for (k = i; k < j; k++) {
			struct frec r;

			flat_mail_to_frec(&state->mails[k], &r);
			if (flat_hash_bytes(data + (r.off - start), (size_t)r.len) != r.hash) {
				*error_r = xasprintf("%s: message %u changed on disk during expunge",
						     box->mail_path, r.uid);
				goto fail;
			}
			r.off = newoff + (r.off - start);
			nv.recs[nv.count++] = r;
			open_kept = box->last_open && k == state->count - 1;
		}
		if (fd_write_full(tfd, data, (size_t)(end - start)) < 0)
			goto io_fail;
		newoff += end - start;
		i = j;
	}
	nv.parsed_end = newoff;
	nv.last_open = open_kept;
	/* Bytes after the parsed part: a pending tail, or another writer's. */
	from = box->parsed_end;
	if (copy_late_bytes(box->lock_fd, tfd, &from, tmp) < 0 || fsync(tfd) < 0 ||
	    fstat(tfd, &st) < 0)
		goto io_fail;
	flat_view_set_stat(&nv, &st);
	/* The new index goes to its temp file first; both renames follow. */
	{
		struct buf b = BUF_INIT;
		size_t hsize;
		int ifd = -1;

		hsize = flat_index_encode(&nv, &b);
		if (mkdir_parents(box->index_tmp, strlen(box->user_dir)) == 0)
			ifd = file_tmp_create(box->index_tmp, b.data, b.len, 0600);
		buf_free(&b);
		if (ifd < 0)
			goto io_fail;
		if (file_tmp_commit(tfd, box->mail_tmp, box->mail_path) < 0) {
			close(ifd);
			(void)unlink(box->index_tmp);
			goto io_fail;
		}
		/* From here the new file is the mailbox. */
		if (copy_late_bytes(box->lock_fd, tfd, &from, tmp) == 0)
			(void)fsync(tfd);
		if (file_tmp_commit(ifd, box->index_tmp, box->index_path) < 0) {
			close(ifd);
			ifd = -1;
		}
		flat_box_set_index_fd(box, ifd, (uint32_t)hsize);
	}
	close(box->fd);
	box->fd = tfd;
	tfd = -1;
	flat_box_take_view_stat(box, &nv);
	box->pending = nv.parsed_end < nv.mail_size;
	if (box->index_fd < 0) {
		/* the old index stays; the next sync matches by hash */
		box->ino = 0;
		box->pending = true;
	}
	/* One compaction pass, not a memmove per message. */
	mbox_state_remove_uids(state, uids, count);
	for (size_t i = 0; i < state->count && i < nv.count; i++)
		state->mails[i].priv[0] = nv.recs[i].off;
	box->disk_same = box->index_fd >= 0 && flat_keywords_same(&nv, state);
	ret = 0;
	goto out;
io_fail:
	*error_r = xasprintf("expunge %s: %s", box->mail_path, strerror(errno));
fail:
	if (tfd >= 0) {
		close(tfd);
		tfd = -1;
		(void)unlink(box->mail_tmp);
	}
out:
	if (tfd >= 0)
		close(tfd);
	flat_view_free(&nv);
	free(tmp);
	free(data);
	free(sorted);
	flat_unlock(box);
	return ret;
}
