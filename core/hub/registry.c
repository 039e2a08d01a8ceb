/* registry.c: the tables of storage and auth backends.

   Every backend is listed here, compiled in or not, so that the config
   can tell "unknown backend" from "backend not compiled in". Adding a
   backend means one line in one table. */
#include "registry.h"
#include "buf.h"

#include "backends/flat/flat.h"
#include "backends/maildir/maildir.h"
#include "backends/pgsql/pgsql.h"
#include "auth/passwd_file.h"
#include "auth/pam.h"

static const struct storage_backend *const storage_backends[] = {
	&storage_backend_flat,
	&storage_backend_maildir,
	&storage_backend_pgsql,
};

static const struct auth_backend *const auth_backends[] = {
	&auth_backend_passwd_file,
	&auth_backend_pam,
};

const struct storage_backend *
registry_storage_find(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < N_ELEMENTS(storage_backends); i++) {
		if (strcmp(storage_backends[i]->name, name) == 0)
			return storage_backends[i];
	}
	return NULL;
}

const struct auth_backend *
registry_auth_find(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < N_ELEMENTS(auth_backends); i++) {
		if (strcmp(auth_backends[i]->name, name) == 0)
			return auth_backends[i];
	}
	return NULL;
}

char *
registry_storage_names(void)
{
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < N_ELEMENTS(storage_backends); i++) {
		if (i > 0)
			buf_append_str(&b, ", ");
		buf_append_str(&b, storage_backends[i]->name);
	}
	return buf_steal(&b);
}

char *
registry_auth_names(void)
{
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < N_ELEMENTS(auth_backends); i++) {
		if (i > 0)
			buf_append_str(&b, ", ");
		buf_append_str(&b, auth_backends[i]->name);
	}
	return buf_steal(&b);
}
