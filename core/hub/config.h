/* config.h: the server's settings, read once from a libconfig file into a
   typed struct. Relative paths are made absolute against the folder of the
   config file. */
#ifndef CONFIG_H
#define CONFIG_H

#include "lib.h"
#include "log.h"
#include "storage.h"
#include "auth.h"
#include "tls.h"

/* auth.plaintext: where a password may be sent without TLS. */
enum auth_plaintext {
	AUTH_PLAINTEXT_LOOPBACK = 0,    /* from 127.0.0.0/8, ::1 or a local socket only */
	AUTH_PLAINTEXT_ALWAYS,
	AUTH_PLAINTEXT_NEVER,
};

struct aliases;

struct config {
	char *path;                     /* the file it was read from */

	char *imap_address;             /* imap.address, default "127.0.0.1" */
	/* event.backend: how the loop waits, "select" (default), "poll" or
	   "epoll"; a change needs a restart. */
	char *event_backend;
	unsigned imap_port;             /* imap.port, default 1430 (0 = any) */
	unsigned imap_tls_port;         /* imap.tls_port: implicit TLS (the 993 role), 0 = none */

	bool smtp_enabled;              /* smtp.enabled, default false */
	char *smtp_address;             /* smtp.address, default "127.0.0.1" */
	unsigned smtp_port;             /* smtp.port, default 2525 */
	char *smtp_domain;              /* smtp.domain as written, default "localhost" */
	/* smtp.domain split at commas, trimmed, lower-cased: the local mail
	   domains (a name, or an address literal such as "[127.0.0.1]"). The
	   first one is the name announced in the greeting, EHLO and Received. */
	struct strlist smtp_domains;
	size_t smtp_max_message_size;   /* smtp.max_message_size, 1024..1073741824, default 26214400 */
	unsigned smtp_max_recipients;   /* smtp.max_recipients, 100..100000, default 100 */
	unsigned smtp_timeout;          /* smtp.timeout, seconds awaiting a command, 1..3600, 300 */
	unsigned smtp_data_timeout;     /* smtp.data_timeout, seconds awaiting DATA bytes, 1..3600, 180 */
	/* Submission (RFC 6409): a user logs in (AUTH) before sending. */
	unsigned smtp_submission_port;  /* smtp.submission_port: STARTTLS (the 587 role), 0 = none */
	unsigned smtp_submissions_port; /* smtp.submissions_port: implicit TLS (the 465 role), 0 = none */
	char *smtp_relay_host;          /* smtp.relay_host, NULL = none (not supported yet: an error) */

	/* tls.cert_file and tls.key_file (NULL = unset; both or none), tls.ca_file,
	   tls.min_protocol ("TLSv1.2" default, or "TLSv1.3"). With a certificate,
	   STARTTLS is offered on the plain IMAP and SMTP ports. */
	struct tls_server_settings tls;
	unsigned tls_handshake_timeout; /* tls.handshake_timeout, seconds, 1..300, default 30 */

	const struct storage_backend *storage_backend; /* storage.backend, default "flat" */
	struct storage_settings storage;               /* storage.root (default "var/mail") */

	const struct auth_backend *auth_backend;       /* auth.backend, default "passwd-file" */
	struct auth_settings auth;                     /* auth.file ("etc/users"), auth.service ("imapserver") */
	enum auth_plaintext auth_plaintext;            /* auth.plaintext, default loopback */

	unsigned max_connections;       /* limits.max_connections, 1..100000, default 900 */
	/* limits.max_connections_per_address, 0 (no limit)..100000, default
	   100: connections one client address (an IPv6 /64) may hold, per
	   listener kind (IMAP, SMTP). */
	unsigned max_connections_per_address;
	unsigned idle_timeout;          /* limits.idle_timeout seconds, 1800 (>= 60) */
	unsigned login_timeout;         /* limits.login_timeout seconds, 60 (>= 1) */
	size_t max_line;                /* limits.max_line, 1024..1048576, default 65536 */
	/* Per-user limits (RFC 9208), 0 = unlimited: quota.storage in KiB
	   (the STORAGE resource's unit), quota.messages (MESSAGE). */
	size_t quota_storage_kib;
	size_t quota_messages;
	size_t max_literal;             /* limits.max_literal, 1..1073741824, default 26214400 */
	unsigned auth_fail_delay_ms;    /* limits.auth_fail_delay, ms, 0..10000, default 1000 */
	unsigned max_bad_commands;      /* limits.max_bad_commands, 1..1000, default 20 */

	enum log_level log_level;       /* log.level, default info */
	/* log.file: every line appended there (absolute), reopened on SIGHUP
	   and SIGUSR1; NULL: stderr with -f, else syslog (facility mail). */
	const char *log_file;
	/* The process id files, written once detached and removed at exit;
	   a second start on the same file is refused while the first runs.
	   NULL: none. server.pid_file is imapserver's, smtp.pid_file
	   smtpmail's. */
	const char *pid_file;           /* server.pid_file */
	/* server.status_socket: where imapserver answers --status; NULL:
	   <storage.root>/.imapserver-status (config_status_socket()). */
	const char *status_socket;
	const char *smtp_pid_file;      /* smtp.pid_file */
	/* smtp.aliases: the file (absolute) and what it says (aliases.h),
	   read with the configuration (a mistake is a config error with the
	   aliases file's line); NULL: no aliases. */
	const char *smtp_aliases_file;
	struct aliases *smtp_aliases;

	/* Whom to run as when started as root (core/daemon/privileges.h): after
	   the listening sockets are bound the server drops to this user and
	   group. Both checked to exist when the file is read. */
	char *server_user;              /* server.user, default NULL: stay as started */
	char *server_group;             /* server.group, default NULL: the user's primary group */
};

/* True if a session whose channel is (or is not) TLS, from a loopback
   peer (or not), may send a password. */
bool config_plaintext_allowed(const struct config *config, bool tls, bool loopback);
/* True if a certificate is configured (STARTTLS offered, TLS ports usable). */
/* The status socket's path (malloc'ed): server.status_socket, or a name
   no user can have in storage.root. */
char *config_status_socket(const struct config *config);
bool config_has_tls(const struct config *config);

/* Reads path. On error returns -1 with *error_r like
   "etc/imapserver.conf:12: unknown key 'limits.max_lines'". */
int config_load(const char *path, struct config **config_r, char **error_r);
/* The settings used when no file is given: the embedded defaults, with
   paths relative to base_dir. */
struct config *config_defaults(const char *base_dir);
void config_free(struct config **config);

#endif
