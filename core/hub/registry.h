/* registry.h: the tables of storage and auth backends, looked up by name. */
#ifndef REGISTRY_H
#define REGISTRY_H

#include "storage.h"
#include "auth.h"

/* Returns the backend named name (exact match), or NULL. */
const struct storage_backend *registry_storage_find(const char *name);
const struct auth_backend *registry_auth_find(const char *name);
/* Writes the known names as "flat, maildir" (malloc'ed). */
char *registry_storage_names(void);
char *registry_auth_names(void);

#endif
