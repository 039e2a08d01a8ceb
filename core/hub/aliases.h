/* aliases.h: smtp.aliases, the local aliases of the SMTP receivers, in
   the usual aliases(5) form:

     # comment
     postmaster: alice
     team:       alice, bob,
                 carol            (a line starting with blanks goes on)

   A name (matched without regard to case, as Postfix does) stands for
   one or more local user names. Only user names: no addresses, files or
   commands, and no alias of an alias. RFC 5321 4.5.1 asks every SMTP
   receiver to accept "postmaster": an alias is where its mail goes. */
#ifndef ALIASES_H
#define ALIASES_H

#include "lib.h"

struct aliases;

/* Reads path. Returns the aliases, or NULL with *error_r as
   "path:line: what". */
struct aliases *aliases_load(const char *path, char **error_r);
void aliases_free(struct aliases **aliases);

/* The user names name stands for, or NULL when it is not an alias
   (aliases may be NULL: none). */
const struct strlist *aliases_lookup(const struct aliases *aliases, const char *name);

/* How many aliases were read. */
size_t aliases_count(const struct aliases *aliases);

#endif
