/* username.h: the rule for user names, shared by the storage backends
   (which put a user name into a path) and the auth backends (which
   refuse a name no mailbox could have) without either depending on the
   other. */
#ifndef USERNAME_H
#define USERNAME_H

#include "lib.h"

/* The longest user name accepted, in octets. */
#define USERNAME_MAX_LEN 64

/* Checks a user name before it goes near a path: no '/', no "..", no NUL
   or control characters, not empty, not starting with '.', at most
   USERNAME_MAX_LEN octets. */
bool username_is_valid(const char *user);

#endif
