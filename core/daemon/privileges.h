/* privileges.h: dropping root after start-up.

   Mail is never read or written as root: a process started as root
   without server.user refuses to start (privileges_check_start(), before
   any backend starts, also with -t). Started as root with server.user,
   the server binds its listening sockets and starts the PAM helper
   (which keeps root for PAM), then calls privileges_drop() before the
   loop serves anyone. Started as a normal user it keeps running as that
   user. imapserver --migrate follows the same rule (migrate.h): it
   refuses, or drops before either backend starts. */
#ifndef PRIVILEGES_H
#define PRIVILEGES_H

#include "lib.h"

/* The start-up rule: with the effective uid 0, user (server.user) must be
   set. Returns 0, or -1 with *error_r: one line that names the fix
   (config_path: the config file read, NULL for the built-in defaults).
   Changes nothing. */
int privileges_check_start(const char *user, const char *config_path, char **error_r);

/* If the effective uid is 0 and user is set: switches to user's uid and
   to group's gid (the user's primary group when group is NULL), with that
   gid as the only supplementary group (setgroups, setgid, setuid), then
   checks that root cannot be regained. Returns 0 with an info log line
   saying what it did, or -1 with *error_r.

   Not root: user and group are ignored (an info line says so), returns 0.
   Root without user is an error (as privileges_check_start() says), as
   are a user with uid 0, a group without a user and unknown names. */
int privileges_drop(const char *user, const char *group, char **error_r);

/* Before the backends start, which create storage.root (path) as the
   user the process runs as: started as root with user set, creates path
   (absolute) and each missing parent, mode 0700, and gives each folder it
   created to user and group (the ids privileges_drop() switches to), so
   that the server can write in them once dropped. A folder that already
   exists is left as it is, whoever owns it: an operator made it. A folder
   it creates is opened without following links before it is handed over.
   Logs each folder it created. Not root, or user NULL: does nothing (the
   backends create what is missing). Returns 0, or -1 with *error_r. */
int privileges_prepare_folder(const char *path, const char *user, const char *group,
			      char **error_r);

#endif
