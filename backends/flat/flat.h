/* flat.h: the flat-file storage backend ("flat"), the lab's mymailbox.mail
   format; its files are in backends/flat/ (see flat_private.h). */
#ifndef BACKENDS_FLAT_H
#define BACKENDS_FLAT_H

#include "storage.h"

extern const struct storage_backend storage_backend_flat;

#endif
