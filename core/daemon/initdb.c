/* initdb.c: imapserver --init-db (see initdb.h). */
#include "initdb.h"
#include "config.h"
#include "storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool
initdb_requested(int argc, char *const argv[])
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--init-db") == 0)
			return true;
	}
	return false;
}

int
initdb_main(int argc, char *argv[])
{
	const struct storage_backend *backend;
	const char *path = NULL;
	struct config *cfg = NULL;
	char *error = NULL, *msg = NULL;
	int ret = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--init-db") != 0) {
			fprintf(stderr, "usage: imapserver [-c FILE] --init-db\n");
			return 1;
		}
	}
	if (path == NULL && access("etc/imapserver.conf", F_OK) == 0)
		path = "etc/imapserver.conf";
	if (path == NULL) {
		fprintf(stderr, "imapserver --init-db: no configuration file "
			"(give one with -c FILE)\n");
		return 1;
	}
	if (config_load(path, &cfg, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		free(error);
		return 1;
	}
	backend = cfg->storage_backend;
	if (backend->init_db == NULL) {
		printf("imapserver --init-db: storage.backend \"%s\" keeps no database; "
		       "nothing to do\n", backend->name);
		ret = 0;
	} else if (backend->init_db(&cfg->storage, &msg, &error) < 0) {
		fprintf(stderr, "imapserver --init-db: %s: %s\n", backend->name, error);
		free(error);
	} else {
		printf("imapserver --init-db: %s: %s\n", backend->name, msg);
		free(msg);
		ret = 0;
	}
	config_free(&cfg);
	return ret;
}
