/* pgsql.h: the PostgreSQL storage backend ("pgsql"). */
#ifndef BACKENDS_PGSQL_H
#define BACKENDS_PGSQL_H

#include "storage.h"

extern const struct storage_backend storage_backend_pgsql;

#endif
