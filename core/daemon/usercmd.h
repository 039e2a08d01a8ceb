/* usercmd.h: managing the users of the passwd-file backend without an
   editor:

     imapserver [-c FILE] --user-add USER
     imapserver [-c FILE] --user-passwd USER
     imapserver [-c FILE] --user-del USER

   The password is read from the terminal without echo (twice), or as one
   line from standard input when that is not a terminal (scripts). It is
   stored as a yescrypt hash ($y$, crypt_gensalt(3) of libxcrypt), never
   in plain text. The file (auth.file of the configuration) is changed
   under a lock (<file>.lock, flock(2)) and replaced by rename(2), so
   that two commands at once both take effect and a crash leaves the old
   file or the new one; its other lines, comments included, are kept as
   they were, and its owner and mode are kept. A running server reads the
   new file at the next login. */
#ifndef USERCMD_H
#define USERCMD_H

#include "lib.h"

/* True if argv asks for one of these commands. */
bool usercmd_requested(int argc, char *const argv[]);
/* Runs it: returns the exit status (0, or 1 after printing why). */
int usercmd_main(int argc, char *argv[]);

/* The file work, also for tests: adds user's line to path, changes its
   password to hash, or deletes it (hash NULL), under the lock. Returns
   0, or -1 with *error_r (the file is then unchanged). */
enum usercmd_op {
	USERCMD_ADD,
	USERCMD_PASSWD,
	USERCMD_DEL,
};
int usercmd_edit(const char *path, enum usercmd_op op, const char *user, const char *hash,
		 char **error_r);

#endif
