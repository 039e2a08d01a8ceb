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
   by its base name. */
#include "fileio.h"
#include "backends/maildir/maildir_private.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

/* Removes the file of f; one another tool renamed meanwhile is looked
   for once more. Returns 0 (also when it is gone already) or -1. */
static int
expunge_file(struct storage_box *box, struct mfile *f, char **error_r)
{
	char *path = md_file_path(box, f);
	int ret = 0;

	if (fs_unlink_beneath(box->user_dir, path) < 0) {
		if (errno != ENOENT) {
			*error_r = xasprintf("unlink %s: %s", path, strerror(errno));
			ret = -1;
		} else if (md_locate(box, f)) {
			/* renamed by another tool meanwhile */
			free(path);
			path = md_file_path(box, f);
			(void)fs_unlink_beneath(box->user_dir, path);
		}
	}
	free(path);
	return ret;
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

int
md_expunge(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
	   size_t count, enum storage_error *err_r, char **error_r)
{
	struct md_own_change own;
	uint32_t *gone;
	size_t ngone = 0, out = 0;
	bool from_cur = false, from_new = false;
	int ret = 0;

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
	md_own_change_begin(box, &own);
	gone = xmalloc(count * sizeof(*gone));
	/* One pass over the table, then one over the state. */
	for (size_t i = 0; i < box->files.count; i++) {
		struct mfile *f = &box->files.f[i];

		if (ret == 0 && u32_sorted_contains(uids, count, f->uid)) {
			if (expunge_file(box, f, error_r) == 0) {
				/* (in_new is where it was found, after a
				   rename by another tool too) */
				if (f->in_new)
					from_new = true;
				else
					from_cur = true;
				gone[ngone++] = f->uid;
				free(f->base);
				free(f->name);
				continue;
			}
			ret = -1;
		}
		box->files.f[out++] = *f;
	}
	box->files.count = out;
	mbox_state_remove_uids(state, gone, ngone);
	free(gone);
	if (from_cur)
		fsync_dir(box->cur_dir);
	if (from_new)
		fsync_dir(box->new_dir);
	md_own_change_end(box, &own);
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
	return ret;
}
