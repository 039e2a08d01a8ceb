/* maildir_expunge.c: expunging messages (the expunge() op).

   Safety: under the lock, each file is unlink()ed, the folders are
   fsynced, then the uidlist is rewritten without the expunged UIDs. A
   crash in between leaves UIDs whose file is gone; the next scan drops
   them. A file another tool renamed meanwhile is looked for once more
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

/* Writes the uidlist after an expunge. Returns ret, or -1 (with the
   reason in *error_r) if the write fails and ret was 0: the first error
   is the one told. */
static int
expunge_write_uidlist(struct storage_box *box, const struct mbox_state *state, int ret,
		      char **error_r)
{
	char *werr = NULL;

	if (md_uidlist_write_soft(box, state, false, &werr) < 0 && ret == 0) {
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
	bool removed = false;
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
				gone[ngone++] = f->uid;
				free(f->base);
				free(f->name);
				removed = true;
				continue;
			}
			ret = -1;
		}
		box->files.f[out++] = *f;
	}
	box->files.count = out;
	mbox_state_remove_uids(state, gone, ngone);
	free(gone);
	if (removed) {
		fsync_dir(box->cur_dir);
		fsync_dir(box->new_dir);
	}
	md_own_change_end(box, &own);
	/* Written even when nothing was removed: the core raised
	   state->highest_modseq for this expunge before calling. */
	ret = expunge_write_uidlist(box, state, ret, error_r);
	if (ret < 0)
		*err_r = storage_error_from_errno(errno);
	md_unlock(box);
	return ret;
}
