/* storage_files.h: the small files every backend keeps the same way, the
   subscriptions list and the UIDVALIDITY record, written in one place,
   and how a backend waits for space to write its index again.
   Each backend names its files (and keeps its names); the format is the
   one below. Every path is resolved beneath base, the user's own folder,
   without following a link (core/lib/safepath.h). */
#ifndef STORAGE_FILES_H
#define STORAGE_FILES_H

#include "storage.h"

/* Reads the subscriptions file path into names_r: one mailbox name a line
   (LF or CRLF), at most max names, invalid names and duplicates skipped;
   a missing file is an empty list. Dovecot 2's form is read too (a "V\t"
   header line is skipped, a tab between levels is read as '/'). Returns
   0, or -1 with *err_r and *error_r. */
int storage_subscriptions_file_read(const char *base, const char *path, size_t max, struct strlist *names_r,
				    enum storage_error *err_r, char **error_r);
/* Replaces the subscriptions file path with names, one a line (invalid
   names left out), through tmp_path (written, fsynced, renamed). The
   folder must exist. Returns 0, or -1 with *err_r and *error_r. */
int storage_subscriptions_file_write(const char *base, const char *path, const char *tmp_path,
				     const struct strlist *names, enum storage_error *err_r,
				     char **error_r);

/* A new UIDVALIDITY: time-based, above old and above the value recorded
   in path (a decimal number and a newline), so that a lost index or a
   re-created mailbox never repeats one. The new value is recorded in
   path through tmp_path, best effort (tmp_path NULL: not recorded). */
uint32_t storage_uidvalidity_new(const char *base, const char *path, const char *tmp_path, uint32_t old);

/* A write that may wait (an index, a list of UIDs: what can be rebuilt
   from the messages or kept in memory meanwhile) that failed for lack of
   space (ENOSPC, EDQUOT). The backend keeps the change in memory, goes on
   serving, and writes it later: at most every STORAGE_SPACE_RETRY_MS,
   so that a full disk costs one failed write per mailbox per interval,
   not one per command. Logged once when the condition starts and once
   when it clears, never per attempt. One per box, zeroed with it. */
struct storage_space {
	int64_t retry_at;          /* mono_ms() of the next try; 0: nothing pending */
	bool logged;
};
#define STORAGE_SPACE_RETRY_MS 5000

/* True if err (an errno value) means a lack of space. */
bool storage_errno_is_space(int err);
/* Records that the write of path failed with err; logs the first time. */
void storage_space_failed(struct storage_space *sp, const char *path, int err);
/* True if a write is pending and its next try is due. */
bool storage_space_due(const struct storage_space *sp);
/* True if a write is pending. */
bool storage_space_pending(const struct storage_space *sp);
/* The pending write is done: logs that the condition cleared. */
void storage_space_cleared(struct storage_space *sp, const char *path);

#endif
