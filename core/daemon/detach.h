/* detach.h: running in the background, as an operator expects of a
   daemon: a log file (log.file) and a pid file (server.pid_file,
   smtp.pid_file), and a start that says whether it worked.

   The order in main(): detach_open_files() while still root (before
   privileges_drop()), detach_start() before any thread starts,
   detach_ready() once the server serves, detach_cleanup() at exit. */
#ifndef DETACH_H
#define DETACH_H

#include "lib.h"

/* Opens log_file (if not NULL): from now on every log line goes there
   (log_open_file()); started as root with user set, the file is given to
   user and group, so that the server can still write it and reopen it
   after dropping privileges. Opens pid_file (if not NULL) and locks it: a
   second start while the first runs fails with "already running as pid
   N". Nothing is written to the pid file yet. Returns 0, or -1 with
   *error_r. */
int detach_open_files(const char *log_file, const char *pid_file, const char *user,
		      const char *group, char **error_r);

/* Without foreground: forks. The parent waits until the child calls
   detach_ready() (then prints "PROG: running in the background as pid N,
   logging to ..." and exits 0) or exits before that (then exits 1: the
   child printed why on the shared stderr). The child starts a new session
   and works from "/"; it logs to syslog from now on unless a log file is
   open. foreground: does nothing. Returns 0 in the child (or with
   foreground), -1 with *error_r if the fork failed. */
int detach_start(const char *prog, bool foreground, char **error_r);

/* The start-up is done: writes the process id into the pid file, and in
   the background closes stdout and stderr (to /dev/null) and lets the
   waiting parent exit. */
void detach_ready(void);

/* At exit: empties and removes the pid file (emptied only, if the folder
   is not writable after dropping privileges: the lock says whether it is
   stale). */
void detach_cleanup(void);

#endif
