/* maildir_lock.c: the lock of one Maildir folder.

     imapserver-uidlist.lock
                          an empty file; writers hold flock() on it, so a
                          killed writer never leaves a stale lock.

   The lock nests (lock_depth): a function that holds it may call one
   that takes it again. Every write of dovecot-uidlist or
   dovecot-keywords and every scan of new/ and cur/ happens under it. */
#include "fileio.h"
#include "backends/maildir/maildir_private.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>

/* Locking */

int
md_lock(struct storage_box *box, enum storage_error *err_r, char **error_r)
{
	int64_t deadline;
	unsigned tries = 0;

	if (box->lock_depth > 0) {
		box->lock_depth++;
		return 0;
	}
	if (box->lock_fd < 0) {
		box->lock_fd = fs_open_beneath(box->user_dir, box->lock_path, O_RDWR | O_CREAT, 0600);
		if (box->lock_fd < 0) {
			*err_r = storage_error_from_errno(errno);
			*error_r = xasprintf("open %s: %s", box->lock_path, strerror(errno));
			return -1;
		}
	}
	deadline = mono_ms() + MD_LOCK_TIMEOUT_MS;
	while (flock(box->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			*err_r = STORAGE_ERR_TEMP;
			*error_r = xasprintf("flock %s: %s", box->lock_path, strerror(errno));
			return -1;
		}
		if (mono_ms() >= deadline) {
			*err_r = STORAGE_ERR_IN_USE;
			*error_r = xasprintf("%s: locked by another process", box->lock_path);
			return -1;
		}
		sleep_ms(2 + (unsigned)((mono_ms() + tries++ * 7) % 19));
	}
	box->lock_depth = 1;
	return 0;
}

void
md_unlock(struct storage_box *box)
{
	if (box->lock_depth == 0)
		return;
	if (--box->lock_depth > 0)
		return;
	(void)flock(box->lock_fd, LOCK_UN);
}
