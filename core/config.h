/* config.h: the server's settings, read once from a libconfig file into a
   typed struct. Relative paths are made absolute against the folder of the
   config file. */
#ifndef CONFIG_H
#define CONFIG_H

#include "lib.h"
#include "log.h"
#include "storage.h"
#include "auth.h"

struct config {
	char *path;                     /* the file it was read from */

	char *imap_address;             /* imap.address, default "127.0.0.1" */
	unsigned imap_port;             /* imap.port, default 1430 (0 = any) */

	bool smtp_enabled;              /* smtp.enabled, default false */
	char *smtp_address;             /* smtp.address, default "127.0.0.1" */
	unsigned smtp_port;             /* smtp.port, default 2525 */
	char *smtp_domain;              /* smtp.domain, default "localhost" */

	const struct storage_backend *storage_backend; /* storage.backend, default "flat" */
	struct storage_settings storage;               /* storage.root (default "var/mail") */

	const struct auth_backend *auth_backend;       /* auth.backend, default "passwd-file" */
	struct auth_settings auth;                     /* auth.file ("etc/users"), auth.service ("imapserver") */

	unsigned max_connections;       /* limits.max_connections, 1..100000, default 900 */
	unsigned idle_timeout;          /* limits.idle_timeout seconds, 1800 (>= 60) */
	unsigned login_timeout;         /* limits.login_timeout seconds, 60 (>= 1) */
	size_t max_line;                /* limits.max_line, 1024..1048576, default 8192 */
	size_t max_literal;             /* limits.max_literal, 1..1073741824, default 26214400 */
	unsigned auth_fail_delay_ms;    /* limits.auth_fail_delay, ms, 0..10000, default 1000 */
	unsigned max_bad_commands;      /* limits.max_bad_commands, 1..1000, default 20 */

	enum log_level log_level;       /* log.level, default info */
};

/* Reads path. On error returns -1 with *error_r like
   "etc/imapserver.conf:12: unknown key 'limits.max_lines'". */
int config_load(const char *path, struct config **config_r, char **error_r);
/* The settings used when no file is given: the embedded defaults, with
   paths relative to base_dir. */
struct config *config_defaults(const char *base_dir);
void config_free(struct config **config);

#endif
