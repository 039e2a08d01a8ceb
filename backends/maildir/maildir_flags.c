/* maildir_flags.c: flag changes (the flags_changed() op).

   Flag changes rename the file (atomic): the letters are the durable
   record of the flags.

   Batches. flags_changed() renames the file at once and marks the
   uidlist dirty; the uidlist is rewritten once at the next batch point:
   a sync() that finds the folders changed by others (it reads them
   anyway), a sync() at least MD_BATCH_WRITE_MS after the batch began
   (written without reading the folders: only we changed them),
   expunge(), set_uids() or close(). An append() adds its own record and
   leaves the batch pending. What makes that safe is
   the header's C, a ceiling: a modseq may be handed out unwritten only
   if it is at most the C on disk, and when HIGHESTMODSEQ passes it,
   flags_changed() writes the uidlist at once with C = HIGHESTMODSEQ +
   MD_MODSEQ_RESERVE. Every reader takes max(M, C, records' M) as a floor
   for its HIGHESTMODSEQ (it cannot tell a live writer's reserve from a
   crashed one's), so after a crash the renamed files' new modseqs go
   above everything a client saw. C is never cleared: another process may
   have reported it, so a reopen starts at it (up to MD_MODSEQ_RESERVE
   above the last modseq used), never lower. A message whose name goes
   back to the letters of its record within one batch is written at once:
   nothing else would tell a reload that it changed. */
#include "backends/maildir/maildir_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Renames the file to its new flags at once: the flag letters are the
   durable record of the flags (Maildir's own). The uidlist, with the
   message's new modseq, is written at the next batch point (see the top
   of the file): never a scan of the folders for our own renames. So
   STORE on n messages costs n renames and one uidlist write, and a
   STORE of one flag does not make the next command read a big folder.

   Crash safety: a modseq is handed out (the core answers the STORE with
   it) only if it is at most the ceiling C of the uidlist on disk; when
   the state's HIGHESTMODSEQ passes the ceiling, the uidlist is written
   now with C = highest + MD_MODSEQ_RESERVE, or + the number of messages
   if the folder holds more (so at most once or twice for a STORE on all
   of them). Whoever reads the uidlist (a reopen after a crash, another
   opener) starts at or above C, and a file whose flag letters differ from
   its record gets a modseq above that: nothing any client saw is reused,
   and no change is reported below a HIGHESTMODSEQ a client saw.

   If another process rewrote the uidlist since we read it, it is read in
   first and written at once (after the rename, so that the scan sees the
   flags the core just set and does not take them back; idx may be stale
   after that: only the UID is used). */
int
md_flags_changed(struct storage_box *box, struct mbox_state *state, size_t idx,
		 enum storage_error *err_r, char **error_r)
{
	const struct mail_rec *m;
	struct mfile *f;
	char *newname = NULL, *from, *to;
	struct file_stamp fs;
	struct md_own_change own;
	bool kw_changed = false, others;
	ssize_t fi;
	int ret = 0;

	*err_r = STORAGE_ERR_NONE;
	if (idx >= state->count)
		return 0;
	m = &state->mails[idx];
	if (md_files_load(box, error_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		return -1;
	}
	fi = md_ftable_find(&box->files, m->uid);
	if (fi < 0)
		return 0;
	f = &box->files.f[fi];
	if (md_lock(box, err_r, error_r) < 0)
		return -1;
	md_stamp_file(box->user_dir, box->uidlist_path, &fs);
	others = !md_file_stamp_equal(&fs, &box->uidlist_stamp);
	md_own_change_begin(box, &own);
	newname = md_name_with_flags(box, state, f->base, strlen(f->base), f->name, m->flags,
				     m->keywords, &kw_changed);
	if (kw_changed && md_kw_write(box, error_r) < 0) {
		ret = -1;
		goto out;
	}
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		if (!f->in_new && strcmp(newname, f->name) == 0)
			break;          /* same name: only the modseq changes */
		from = md_file_path(box, f);
		to = xasprintf("%s/%s", box->cur_dir, newname);
		if (fs_rename_beneath(box->user_dir, from, to) == 0) {
			free(f->name);
			f->name = newname;
			newname = NULL;
			f->in_new = false;
			free(from);
			free(to);
			break;
		}
		if (errno != ENOENT || attempt == 1 || !md_locate(box, f)) {
			/* gone: the next sync drops it */
			if (errno != ENOENT) {
				*error_r = xasprintf("rename %s: %s", from, strerror(errno));
				ret = -1;
			}
			free(from);
			free(to);
			break;
		}
		free(from);
		free(to);
		/* the info may have changed: rebuild from the found name */
		free(newname);
		newname = md_name_with_flags(box, state, f->base, strlen(f->base), f->name,
					     m->flags, m->keywords, &kw_changed);
		others = true;
	}
	if (ret < 0)
		goto out;
	md_own_change_end(box, &own);
	f->modseq = m->modseq;
	if (!box->dirty)
		box->dirty_since = mono_ms();
	box->dirty = true;
	box->highest = state->highest_modseq;
	box->first_recent = state->first_recent_uid;
	if (others) {
		/* merged and written (dirty) */
		ret = md_sync_locked(box, state, error_r) < 0 ? -1 : 0;
	} else if (state->highest_modseq > box->disk_ceiling) {
		/* the reserve is used up: reserve again (this writes the
		   batch so far too) */
		ret = md_uidlist_write_soft(box, state, true, error_r);
	} else if (md_name_letters(f->name) == f->rec_letters) {
		/* Back to the letters its record has (changed twice in one
		   batch): after a crash nothing would tell that it changed,
		   and its old modseq would come back. Written now. */
		ret = md_uidlist_write_soft(box, state, false, error_r);
	}
out:
	if (ret < 0)
		*err_r = storage_error_from_errno(errno);
	free(newname);
	md_unlock(box);
	return ret;
}
