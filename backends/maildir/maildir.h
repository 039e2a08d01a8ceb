/* maildir.h: the Maildir storage backend ("maildir"). */
#ifndef BACKENDS_MAILDIR_H
#define BACKENDS_MAILDIR_H

#include "storage.h"

extern const struct storage_backend storage_backend_maildir;

#endif
