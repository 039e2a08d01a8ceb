/* passwd_file.h: the users-file auth backend ("passwd-file").

   The file holds one "username password" per line, whitespace-separated;
   blank lines and lines starting with '#' are ignored. A password that
   starts with '$' is a crypt(3) hash ($y$, $6$, $5$, $2b$, $1$ ...),
   anything else is the plain-text password. The file is re-read when it
   changes (checked with stat() on each verify). */
#ifndef AUTH_PASSWD_FILE_H
#define AUTH_PASSWD_FILE_H

#include "auth.h"

extern const struct auth_backend auth_backend_passwd_file;

/* Tests only: the checks auth (a passwd-file instance) has made since
   init: crypt(3) checks and plain-text comparisons. Each verify() makes
   the same number whoever the user is (see passwd_file.c). */
void passwd_file_work_counts(const struct auth *auth, unsigned *crypts_r, unsigned *plains_r);

#endif
