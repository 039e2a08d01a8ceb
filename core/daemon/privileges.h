/* privileges.h: dropping root after start-up.

   Started as root, the server binds its listening sockets and starts the
   PAM helper (which keeps root for PAM), then calls privileges_drop()
   before the loop serves anyone. Started as a normal user it keeps
   running as that user. */
#ifndef PRIVILEGES_H
#define PRIVILEGES_H

#include "lib.h"

/* If the effective uid is 0 and user is set: switches to user's uid and
   to group's gid (the user's primary group when group is NULL), with that
   gid as the only supplementary group (setgroups, setgid, setuid), then
   checks that root cannot be regained. Returns 0 with an info log line
   saying what it did, or -1 with *error_r.

   Not root: user and group are ignored (an info line says so), returns 0.
   Root without user: stays root with a warning, returns 0. A user with
   uid 0, a group without a user and unknown names are errors. */
int privileges_drop(const char *user, const char *group, char **error_r);

#endif
