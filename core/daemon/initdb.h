/* initdb.h: "imapserver --init-db": creates the schema of a storage
   backend that keeps its mail in a database (storage.backend "pgsql"),
   or upgrades it to the version this build knows. Run once before the
   first start and after an upgrade of the package; running it again
   changes nothing. */
#ifndef INITDB_H
#define INITDB_H

#include "lib.h"

/* True if argv asks for it (has --init-db). */
bool initdb_requested(int argc, char *const argv[]);
/* imapserver [-c FILE] --init-db: reads the config (as the server does:
   -c FILE, else etc/imapserver.conf if it exists) and runs the storage
   backend's init_db(). Prints what it did; returns the exit status. */
int initdb_main(int argc, char *argv[]);

#endif
