/* config.c: reads the libconfig file into struct config.

   The file is read once at start-up. Every setting of the file is checked
   against one table of known keys (name, type, range), in file order, so
   that the first mistake is the one reported, as "FILE:LINE: what".
   Missing sections and keys keep their defaults. */
#include "config.h"
#include "aliases.h"
#include "registry.h"
#include "buf.h"
#include "config_text.h"
#include "net.h"
#include "event.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <libconfig.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define CONFIG_DEFAULT_STORAGE_ROOT "var/mail"
#define CONFIG_DEFAULT_AUTH_FILE "etc/users"

enum config_key_type {
	KEY_STRING,             /* a char * field, copied */
	KEY_PATH,               /* a const char * field, made absolute */
	KEY_BOOL,               /* a bool field */
	KEY_UINT,               /* an unsigned field, checked against min..max */
	KEY_SIZE,               /* a size_t field, checked against min..max */
	KEY_STORAGE_BACKEND,
	KEY_AUTH_BACKEND,
	KEY_LOG_LEVEL,
	KEY_DOMAINS,            /* smtp.domain: a comma-separated list of domains */
	KEY_USER,               /* a char * field: the name of an existing user */
	KEY_GROUP,              /* a char * field: the name of an existing group */
	KEY_OPT_PATH,           /* a const char * field, made absolute; "" = NULL */
	KEY_OPT_STRING,         /* a char * field; "" = NULL */
	KEY_TLS_MIN,            /* tls.min_protocol */
	KEY_PLAINTEXT,          /* auth.plaintext */
	KEY_ADDRESSES,          /* a char * field: listen addresses, "a, b" */
};

struct config_key {
	const char *section;
	const char *name;
	enum config_key_type type;
	size_t offset;          /* of the field in struct config */
	long long min, max;     /* KEY_UINT and KEY_SIZE only */
};

#define KEY(sec, key, t, field, lo, hi) \
	{ sec, key, t, offsetof(struct config, field), lo, hi }

static const char *const config_sections[] = {
	"imap", "smtp", "tls", "storage", "auth", "limits", "quota", "log", "server",
	"event",
};

static const struct config_key config_keys[] = {
	KEY("imap", "address", KEY_ADDRESSES, imap_address, 0, 0),
	KEY("imap", "port", KEY_UINT, imap_port, 0, 65535),
	KEY("imap", "tls_port", KEY_UINT, imap_tls_port, 0, 65535),
	KEY("smtp", "enabled", KEY_BOOL, smtp_enabled, 0, 0),
	KEY("smtp", "address", KEY_ADDRESSES, smtp_address, 0, 0),
	KEY("smtp", "port", KEY_UINT, smtp_port, 0, 65535),
	KEY("smtp", "domain", KEY_DOMAINS, smtp_domain, 0, 0),
	KEY("smtp", "max_message_size", KEY_SIZE, smtp_max_message_size, 1024, 1073741824),
	KEY("smtp", "max_recipients", KEY_UINT, smtp_max_recipients, 100, 100000),
	KEY("smtp", "timeout", KEY_UINT, smtp_timeout, 1, 3600),
	KEY("smtp", "data_timeout", KEY_UINT, smtp_data_timeout, 1, 3600),
	KEY("smtp", "submission_port", KEY_UINT, smtp_submission_port, 0, 65535),
	KEY("smtp", "submissions_port", KEY_UINT, smtp_submissions_port, 0, 65535),
	KEY("smtp", "relay_host", KEY_OPT_STRING, smtp_relay_host, 0, 0),
	KEY("smtp", "pid_file", KEY_OPT_PATH, smtp_pid_file, 0, 0),
	KEY("smtp", "aliases", KEY_OPT_PATH, smtp_aliases_file, 0, 0),
	KEY("tls", "cert_file", KEY_OPT_PATH, tls.cert_file, 0, 0),
	KEY("tls", "key_file", KEY_OPT_PATH, tls.key_file, 0, 0),
	KEY("tls", "ca_file", KEY_OPT_PATH, tls.ca_file, 0, 0),
	KEY("tls", "min_protocol", KEY_TLS_MIN, tls.min_protocol, 0, 0),
	KEY("tls", "handshake_timeout", KEY_UINT, tls_handshake_timeout, 1, 300),
	KEY("storage", "backend", KEY_STORAGE_BACKEND, storage_backend, 0, 0),
	KEY("storage", "root", KEY_PATH, storage.root, 0, 0),
	KEY("storage", "conninfo", KEY_OPT_STRING, storage.conninfo, 0, 0),
	KEY("auth", "backend", KEY_AUTH_BACKEND, auth_backend, 0, 0),
	KEY("auth", "file", KEY_PATH, auth.file, 0, 0),
	KEY("auth", "service", KEY_STRING, auth.service, 0, 0),
	KEY("auth", "min_uid", KEY_UINT, auth.min_uid, 0, 2147483647),
	KEY("auth", "plaintext", KEY_PLAINTEXT, auth_plaintext, 0, 0),
	KEY("limits", "max_connections", KEY_UINT, max_connections, 1, 100000),
	KEY("limits", "max_connections_per_address", KEY_UINT, max_connections_per_address, 0,
	    100000),
	KEY("limits", "idle_timeout", KEY_UINT, idle_timeout, 60, 604800),
	KEY("limits", "login_timeout", KEY_UINT, login_timeout, 1, 3600),
	KEY("limits", "max_line", KEY_SIZE, max_line, 1024, 1048576),
	KEY("limits", "max_literal", KEY_SIZE, max_literal, 1, 1073741824),
	KEY("limits", "auth_fail_delay", KEY_UINT, auth_fail_delay_ms, 0, 10000),
	KEY("limits", "max_bad_commands", KEY_UINT, max_bad_commands, 1, 1000),
	KEY("quota", "storage", KEY_SIZE, quota_storage_kib, 0, 1099511627776LL),
	KEY("quota", "messages", KEY_SIZE, quota_messages, 0, 4294967295LL),
	KEY("log", "level", KEY_LOG_LEVEL, log_level, 0, 0),
	KEY("event", "backend", KEY_STRING, event_backend, 0, 0),
	KEY("log", "file", KEY_OPT_PATH, log_file, 0, 0),
	KEY("server", "pid_file", KEY_OPT_PATH, pid_file, 0, 0),
	KEY("server", "status_socket", KEY_OPT_PATH, status_socket, 0, 0),
	KEY("server", "user", KEY_USER, server_user, 0, 0),
	KEY("server", "group", KEY_GROUP, server_group, 0, 0),
};

/* Names longer than this get no "did you mean" (and bound the table). */
#define SUGGEST_MAX_LEN 48

/* Levenshtein distance of a and b, both at most SUGGEST_MAX_LEN long. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t prev[SUGGEST_MAX_LEN + 1], cur[SUGGEST_MAX_LEN + 1];

	if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t best = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			cur[j] = best;
		}
		memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
	}
	return prev[lb];
}

/* The closest known name to the unknown one, or NULL when nothing is
   close: distance at most 2 (1 for very short names), or the same key
   name in another section. name is "section" or "section.key". */
static char *
config_suggest(const char *name)
{
	size_t best = SIZE_MAX, dist, limit;
	char *best_name = NULL, *full;
	const char *dot = strchr(name, '.');

	limit = strlen(name) <= 4 ? 1 : 2;
	if (dot == NULL) {
		for (size_t i = 0; i < N_ELEMENTS(config_sections); i++) {
			dist = edit_distance(name, config_sections[i]);
			if (dist <= limit && dist < best) {
				best = dist;
				free(best_name);
				best_name = xstrdup(config_sections[i]);
			}
		}
		return best_name;
	}
	for (size_t i = 0; i < N_ELEMENTS(config_keys); i++) {
		full = xasprintf("%s.%s", config_keys[i].section, config_keys[i].name);
		dist = edit_distance(name, full);
		if (dist <= limit && dist < best) {
			best = dist;
			free(best_name);
			best_name = full;
		} else {
			free(full);
		}
	}
	if (best_name != NULL)
		return best_name;
	/* A key put in the wrong section, e.g. "imap.domain". */
	for (size_t i = 0; i < N_ELEMENTS(config_keys); i++) {
		if (strcmp(dot + 1, config_keys[i].name) == 0)
			return xasprintf("%s.%s", config_keys[i].section, config_keys[i].name);
	}
	return NULL;
}

static bool
config_is_section(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(config_sections); i++) {
		if (strcmp(name, config_sections[i]) == 0)
			return true;
	}
	return false;
}

static const struct config_key *
config_find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(config_keys); i++) {
		if (strcmp(section, config_keys[i].section) == 0 &&
		    strcmp(name, config_keys[i].name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

/* dir + "/" + path, or a copy of path if it is absolute already. */
static char *
path_join(const char *dir, const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	if (strcmp(dir, "/") == 0)
		return xasprintf("/%s", path);
	return xasprintf("%s/%s", dir, path);
}

/* The absolute, symlink-free folder holding the file path. */
static int
config_dir_of(const char *path, char **dir_r, char **error_r)
{
	const char *slash = strrchr(path, '/');
	char *dir, *real;

	if (slash == NULL)
		dir = xstrdup(".");
	else if (slash == path)
		dir = xstrdup("/");
	else
		dir = xstrndup(path, (size_t)(slash - path));
	real = realpath(dir, NULL);
	if (real == NULL) {
		*error_r = xasprintf("%s: cannot resolve the folder %s: %s", path, dir,
				     strerror(errno));
		free(dir);
		return -1;
	}
	free(dir);
	*dir_r = xstrdup(real);
	free(real);
	return 0;
}

/* Fills config with the defaults, its paths relative to the absolute
   folder dir. */
static struct config *
config_new_defaults(const char *dir)
{
	struct config *config = xcalloc(1, sizeof(*config));

	config->imap_address = xstrdup("127.0.0.1");
	config->event_backend = xstrdup("select");
	config->imap_port = 1430;
	config->smtp_enabled = false;
	config->smtp_address = xstrdup("127.0.0.1");
	config->smtp_port = 2525;
	config->smtp_domain = xstrdup("localhost");
	strlist_add(&config->smtp_domains, "localhost");
	config->smtp_max_message_size = 26214400;
	config->smtp_max_recipients = 100;
	config->smtp_timeout = 300;
	config->smtp_data_timeout = 180;
	config->tls.min_protocol = TLS_MIN_1_2;
	config->tls_handshake_timeout = 30;
	config->auth_plaintext = AUTH_PLAINTEXT_LOOPBACK;
	config->storage_backend = registry_storage_find("flat");
	config->storage.root = path_join(dir, CONFIG_DEFAULT_STORAGE_ROOT);
	config->auth_backend = registry_auth_find("passwd-file");
	config->auth.file = path_join(dir, CONFIG_DEFAULT_AUTH_FILE);
	config->auth.service = xstrdup("imapserver");
	config->auth.min_uid = 1000;
	config->max_connections = 900;
	config->max_connections_per_address = 100;
	config->idle_timeout = 1800;
	config->login_timeout = 60;
	config->max_line = 65536;
	config->max_literal = 26214400;
	config->auth_fail_delay_ms = 1000;
	config->max_bad_commands = 20;
	config->log_level = LOG_LEVEL_INFO;
	return config;
}

struct config *
config_defaults(const char *base_dir)
{
	struct config *config;
	char *real;

	if (base_dir == NULL || base_dir[0] == '\0')
		base_dir = ".";
	/* Absolute when it can be; the given folder otherwise (it may not
	   exist yet, which is an error for whoever opens the paths). */
	real = realpath(base_dir, NULL);
	config = config_new_defaults(real != NULL ? real : base_dir);
	free(real);
	return config;
}

void
config_free(struct config **configp)
{
	struct config *config = *configp;

	if (config == NULL)
		return;
	*configp = NULL;
	free(config->path);
	free(config->imap_address);
	free(config->event_backend);
	free(config->smtp_address);
	free(config->smtp_domain);
	free(config->smtp_relay_host);
	free((char *)config->tls.cert_file);
	free((char *)config->tls.key_file);
	free((char *)config->tls.ca_file);
	free((char *)config->log_file);
	free((char *)config->pid_file);
	free((char *)config->status_socket);
	free((char *)config->smtp_pid_file);
	free((char *)config->smtp_aliases_file);
	aliases_free(&config->smtp_aliases);
	strlist_clear(&config->smtp_domains);
	/* The settings structs hold const pointers for the backends; the
	   strings are ours. */
	free((char *)config->storage.root);
	free((char *)config->storage.conninfo);
	free((char *)config->auth.file);
	free((char *)config->auth.service);
	free(config->server_user);
	free(config->server_group);
	free(config);
}

/* Parsing state: the file name for messages and the config folder. */
struct config_parser {
	const char *path;
	const char *dir;
	struct config *config;
};

static char *
config_where(const struct config_parser *parser, const config_setting_t *setting)
{
	const char *file = config_setting_source_file(setting);

	return xasprintf("%s:%u", file != NULL ? file : parser->path,
			 (unsigned)config_setting_source_line(setting));
}

static int ATTR_FORMAT(4, 5)
config_fail(const struct config_parser *parser, const config_setting_t *setting, char **error_r,
	    const char *fmt, ...)
{
	va_list args;
	char *where, *what;

	va_start(args, fmt);
	if (vasprintf(&what, fmt, args) < 0)
		what = NULL;
	va_end(args);
	where = config_where(parser, setting);
	*error_r = xasprintf("%s: %s", where, what != NULL ? what : "out of memory");
	free(where);
	free(what);
	return -1;
}

static bool
config_is_int(const config_setting_t *setting)
{
	int type = config_setting_type(setting);

	return type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64;
}

/* The string of setting, which must be a non-empty string. */
static int
config_get_string(const struct config_parser *parser, const config_setting_t *setting,
		  const char *name, const char **value_r, char **error_r)
{
	const char *value;

	if (config_setting_type(setting) != CONFIG_TYPE_STRING)
		return config_fail(parser, setting, error_r, "%s: expected a string", name);
	value = config_setting_get_string(setting);
	if (value == NULL || value[0] == '\0')
		return config_fail(parser, setting, error_r, "%s: must not be empty", name);
	*value_r = value;
	return 0;
}

/* A listen key: one address in a string, several in a string ("0.0.0.0,
   ::") or in a list or array of strings (["0.0.0.0", "::"]); kept as
   "a, b" for net_listen_set_open(). Whether each can be bound is checked
   once the whole file is read (config_check_addresses). */
static int
config_set_addresses(const struct config_parser *parser, const config_setting_t *setting,
		     const char *name, char **field, char **error_r)
{
	struct strlist list = { 0 };
	struct buf joined = BUF_INIT;
	char *error = NULL;
	int type = config_setting_type(setting);

	if (type == CONFIG_TYPE_LIST || type == CONFIG_TYPE_ARRAY) {
		int n = config_setting_length(setting);

		for (int i = 0; i < n; i++) {
			const char *one = config_setting_get_string_elem(setting, i);
			if (one == NULL) {
				buf_free(&joined);
				return config_fail(parser, setting, error_r,
						   "%s: expected a list of address strings", name);
			}
			buf_printf(&joined, "%s%s", i > 0 ? ", " : "", one);
		}
	} else if (type == CONFIG_TYPE_STRING) {
		const char *str;
		if (config_get_string(parser, setting, name, &str, error_r) < 0)
			return -1;
		buf_append_str(&joined, str);
	} else {
		return config_fail(parser, setting, error_r,
				   "%s: expected an address or a list of addresses", name);
	}
	if (net_address_split(joined.data != NULL ? joined.data : "", &list, &error) < 0) {
		int ret = config_fail(parser, setting, error_r, "%s: %s", name, error);
		free(error);
		buf_free(&joined);
		return ret;
	}
	buf_free(&joined);
	for (size_t i = 0; i < list.count; i++)
		buf_printf(&joined, "%s%s", i > 0 ? ", " : "", list.items[i]);
	strlist_clear(&list);
	free(*field);
	*field = buf_steal(&joined);
	return 0;
}

/* true if name is a host name (letters, digits and inner hyphens in
   labels of 1..63 octets, at most 253 octets) or an address literal
   "[...]" of printable characters (RFC 5321 4.1.3). */
static bool
config_domain_is_valid(const char *name, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return false;
	if (name[0] == '[') {
		if (len < 3 || name[len - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < len; i++) {
			if (name[i] <= ' ' || name[i] >= 0x7f || name[i] == '[' || name[i] == ']' ||
			    name[i] == '\\')
				return false;
		}
		return true;
	}
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (c == '.') {
			if (label == 0 || name[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 && name[len - 1] != '-';
}

/* Splits the comma-separated list str into domains_r (lower-cased,
   without surrounding blanks, no duplicates). On error returns -1 with
   the bad item in *bad_r (malloc'ed). */
static int
config_split_domains(const char *str, struct strlist *domains_r, char **bad_r)
{
	const char *p = str;

	for (;;) {
		const char *comma = strchr(p, ',');
		const char *end = comma != NULL ? comma : p + strlen(p);
		const char *start = p;
		char *item;

		while (start < end && (*start == ' ' || *start == '\t'))
			start++;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (!config_domain_is_valid(start, (size_t)(end - start))) {
			*bad_r = xstrndup(start, (size_t)(end - start));
			return -1;
		}
		item = xstrndup(start, (size_t)(end - start));
		for (char *q = item; *q != '\0'; q++) {
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q - 'A' + 'a');
		}
		if (strlist_contains(domains_r, item))
			free(item);
		else
			strlist_add_take(domains_r, item);
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

static int
config_set_storage_backend(struct config_parser *parser, const config_setting_t *setting,
			   const char *name, char **error_r)
{
	const struct storage_backend *backend;
	const char *str;
	char *names;

	if (config_get_string(parser, setting, name, &str, error_r) < 0)
		return -1;
	backend = registry_storage_find(str);
	if (backend == NULL) {
		names = registry_storage_names();
		config_fail(parser, setting, error_r, "%s: unknown backend '%s' (known: %s)", name,
			    str, names);
		free(names);
		return -1;
	}
	if (!backend->compiled_in) {
		return config_fail(parser, setting, error_r,
				   "%s: backend '%s' was not compiled in "
				   "(its dependencies were missing at build time)",
				   name, str);
	}
	parser->config->storage_backend = backend;
	return 0;
}

static int
config_set_auth_backend(struct config_parser *parser, const config_setting_t *setting,
			const char *name, char **error_r)
{
	const struct auth_backend *backend;
	const char *str;
	char *names;

	if (config_get_string(parser, setting, name, &str, error_r) < 0)
		return -1;
	backend = registry_auth_find(str);
	if (backend == NULL) {
		names = registry_auth_names();
		config_fail(parser, setting, error_r, "%s: unknown backend '%s' (known: %s)", name,
			    str, names);
		free(names);
		return -1;
	}
	if (!backend->compiled_in) {
		return config_fail(parser, setting, error_r,
				   "%s: backend '%s' was not compiled in (%s)", name, str,
				   strcmp(str, "pam") == 0 ?
					   "PAM headers were missing at build time" :
					   "its dependencies were missing at build time");
	}
	parser->config->auth_backend = backend;
	return 0;
}

static int
config_set_domains(struct config_parser *parser, const config_setting_t *setting,
		   const char *name, char **strp, char **error_r)
{
	struct strlist domains;
	const char *str;
	char *bad = NULL;

	if (config_get_string(parser, setting, name, &str, error_r) < 0)
		return -1;
	i_zero(&domains);
	if (config_split_domains(str, &domains, &bad) < 0) {
		config_fail(parser, setting, error_r,
			    "%s: '%s' is not a domain name or address literal "
			    "(expected e.g. \"localhost, example.org, [127.0.0.1]\")",
			    name, bad);
		free(bad);
		strlist_clear(&domains);
		return -1;
	}
	free(*strp);
	*strp = xstrdup(str);
	strlist_clear(&parser->config->smtp_domains);
	parser->config->smtp_domains = domains;
	return 0;
}

/* server.user or server.group: looked up now so that "imapserver -t"
   catches a typo; privileges_drop() looks the name up again. */
static int
config_set_account(struct config_parser *parser, const struct config_key *key,
		   const config_setting_t *setting, const char *name, char **strp,
		   char **error_r)
{
	const char *str;
	bool found;

	if (config_get_string(parser, setting, name, &str, error_r) < 0)
		return -1;
	found = key->type == KEY_USER ? getpwnam(str) != NULL : getgrnam(str) != NULL;
	if (!found) {
		return config_fail(parser, setting, error_r, "%s: %s '%s'", name,
				   key->type == KEY_USER ? "unknown user" : "unknown group", str);
	}
	free(*strp);
	*strp = xstrdup(str);
	return 0;
}

static int
config_set_number(struct config_parser *parser, const struct config_key *key,
		  const config_setting_t *setting, const char *name, char *field,
		  char **error_r)
{
	long long num;

	if (!config_is_int(setting))
		return config_fail(parser, setting, error_r, "%s: expected an integer", name);
	num = config_setting_get_int64(setting);
	if (num < key->min || num > key->max) {
		return config_fail(parser, setting, error_r,
				   "%s: %lld is out of range (%lld..%lld)", name, num, key->min,
				   key->max);
	}
	if (key->type == KEY_UINT)
		*(unsigned *)(void *)field = (unsigned)num;
	else
		*(size_t *)(void *)field = (size_t)num;
	return 0;
}

/* A string that may be empty ("" = unset, NULL); a path is made absolute. */
static int
config_set_optional(struct config_parser *parser, const struct config_key *key,
		    const config_setting_t *setting, const char *name, char *field,
		    char **error_r)
{
	char **strp = (char **)(void *)field;
	const char *str;

	if (config_setting_type(setting) != CONFIG_TYPE_STRING)
		return config_fail(parser, setting, error_r, "%s: expected a string", name);
	str = config_setting_get_string(setting);
	free(*strp);
	*strp = NULL;
	if (str == NULL || str[0] == '\0')
		return 0;
	*strp = key->type == KEY_OPT_PATH ? path_join(parser->dir, str) : xstrdup(str);
	return 0;
}

/* tls.min_protocol and auth.plaintext: one of a few names. */
static int
config_set_enum(struct config_parser *parser, const struct config_key *key,
		const config_setting_t *setting, const char *name, char *field, char **error_r)
{
	static const char *const tls_names[] = { "TLSv1.2", "TLSv1.3" };
	static const char *const plaintext_names[] = { "loopback", "always", "never" };
	const char *const *names = key->type == KEY_TLS_MIN ? tls_names : plaintext_names;
	size_t count = key->type == KEY_TLS_MIN ? N_ELEMENTS(tls_names) : N_ELEMENTS(plaintext_names);
	const char *str;

	if (config_get_string(parser, setting, name, &str, error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		if (ascii_strcasecmp(str, names[i]) != 0)
			continue;
		if (key->type == KEY_TLS_MIN)
			*(enum tls_min_protocol *)(void *)field = (enum tls_min_protocol)i;
		else
			*(enum auth_plaintext *)(void *)field = (enum auth_plaintext)i;
		return 0;
	}
	if (key->type == KEY_TLS_MIN) {
		return config_fail(parser, setting, error_r,
				   "%s: '%s' is not allowed (known: TLSv1.2, TLSv1.3; "
				   "older protocols are broken and refused)",
				   name, str);
	}
	return config_fail(parser, setting, error_r,
			   "%s: unknown value '%s' (known: loopback, always, never)", name, str);
}

static int
config_set_key(struct config_parser *parser, const struct config_key *key,
	       const config_setting_t *setting, char **error_r)
{
	char *field = (char *)parser->config + key->offset;
	char name[64];
	const char *str;

	snprintf(name, sizeof(name), "%s.%s", key->section, key->name);
	switch (key->type) {
	case KEY_STRING: {
		char **strp = (char **)(void *)field;
		if (config_get_string(parser, setting, name, &str, error_r) < 0)
			return -1;
		free(*strp);
		*strp = xstrdup(str);
		return 0;
	}
	case KEY_PATH: {
		const char **pathp = (const char **)(void *)field;
		if (config_get_string(parser, setting, name, &str, error_r) < 0)
			return -1;
		free((char *)*pathp);
		*pathp = path_join(parser->dir, str);
		return 0;
	}
	case KEY_BOOL:
		if (config_setting_type(setting) != CONFIG_TYPE_BOOL) {
			return config_fail(parser, setting, error_r,
					   "%s: expected a boolean (true or false)", name);
		}
		*(bool *)(void *)field = config_setting_get_bool(setting) != 0;
		return 0;
	case KEY_UINT:
	case KEY_SIZE:
		return config_set_number(parser, key, setting, name, field, error_r);
	case KEY_STORAGE_BACKEND:
		return config_set_storage_backend(parser, setting, name, error_r);
	case KEY_AUTH_BACKEND:
		return config_set_auth_backend(parser, setting, name, error_r);
	case KEY_ADDRESSES:
		return config_set_addresses(parser, setting, name, (char **)(void *)field, error_r);
	case KEY_DOMAINS:
		return config_set_domains(parser, setting, name, (char **)(void *)field, error_r);
	case KEY_USER:
	case KEY_GROUP:
		return config_set_account(parser, key, setting, name, (char **)(void *)field,
					  error_r);
	case KEY_OPT_PATH:
	case KEY_OPT_STRING:
		return config_set_optional(parser, key, setting, name, field, error_r);
	case KEY_TLS_MIN:
	case KEY_PLAINTEXT:
		return config_set_enum(parser, key, setting, name, field, error_r);
	case KEY_LOG_LEVEL: {
		enum log_level level;
		if (config_get_string(parser, setting, name, &str, error_r) < 0)
			return -1;
		if (log_level_parse(str, &level) < 0) {
			return config_fail(parser, setting, error_r,
					   "%s: unknown level '%s' (known: error, warn, info, debug)",
					   name, str);
		}
		parser->config->log_level = level;
		return 0;
	}
	}
	return config_fail(parser, setting, error_r, "%s: internal error: unknown key type", name);
}

static int
config_parse_section(struct config_parser *parser, const config_setting_t *section,
		     char **error_r)
{
	const char *secname = config_setting_name(section);
	int count;

	if (!config_setting_is_group(section))
		return config_fail(parser, section, error_r, "%s: expected a group", secname);
	count = config_setting_length(section);
	for (int i = 0; i < count; i++) {
		const config_setting_t *setting = config_setting_get_elem(section, (unsigned)i);
		const char *name = config_setting_name(setting);
		const struct config_key *key;

		if (setting == NULL || name == NULL)
			continue;
		key = config_find_key(secname, name);
		if (key == NULL) {
			char *full = xasprintf("%s.%s", secname, name);
			char *hint = config_suggest(full);
			if (hint != NULL) {
				config_fail(parser, setting, error_r,
					    "unknown key '%s' (did you mean '%s'?)", full, hint);
			} else {
				config_fail(parser, setting, error_r, "unknown key '%s'", full);
			}
			free(hint);
			free(full);
			return -1;
		}
		if (config_set_key(parser, key, setting, error_r) < 0)
			return -1;
	}
	return 0;
}

static int
config_parse(struct config_parser *parser, const config_t *cf, char **error_r)
{
	const config_setting_t *root = config_root_setting(cf);
	int count = config_setting_length(root);

	for (int i = 0; i < count; i++) {
		const config_setting_t *section = config_setting_get_elem(root, (unsigned)i);
		const char *name = config_setting_name(section);

		if (section == NULL || name == NULL)
			continue;
		if (!config_is_section(name)) {
			char *hint = config_suggest(name);
			if (hint != NULL) {
				config_fail(parser, section, error_r,
					    "unknown section '%s' (did you mean '%s'?)", name, hint);
			} else {
				config_fail(parser, section, error_r, "unknown section '%s'", name);
			}
			free(hint);
			return -1;
		}
		if (config_parse_section(parser, section, error_r) < 0)
			return -1;
	}
	return 0;
}

/* The place of the key "section.name" for a message (it was set). */
static int ATTR_FORMAT(5, 6)
config_fail_at(const struct config_parser *parser, const config_t *cf, const char *key,
	       char **error_r, const char *fmt, ...)
{
	const config_setting_t *setting = config_lookup(cf, key);
	va_list args;
	char *what;

	va_start(args, fmt);
	if (vasprintf(&what, fmt, args) < 0)
		what = NULL;
	va_end(args);
	if (setting != NULL)
		config_fail(parser, setting, error_r, "%s: %s", key, what != NULL ? what : "");
	else
		*error_r = xasprintf("%s: %s: %s", parser->path, key, what != NULL ? what : "");
	free(what);
	return -1;
}

/* The settings that only make sense together, and the listen addresses
   (each must resolve to an address of this machine). */
static int
config_check_tls(const struct config_parser *parser, const config_t *cf, char **error_r)
{
	const struct config *config = parser->config;
	char *what = NULL, *why = NULL;
	const char *needs_cert = config->imap_tls_port != 0	       ? "imap.tls_port" :
				 config->smtp_submissions_port != 0 ? "smtp.submissions_port" :
								      NULL;

	if ((config->tls.cert_file == NULL) != (config->tls.key_file == NULL)) {
		const char *set = config->tls.cert_file != NULL ? "tls.cert_file" : "tls.key_file";
		return config_fail_at(parser, cf, set, error_r, "needs %s as well",
				      config->tls.cert_file != NULL ? "tls.key_file" :
								      "tls.cert_file");
	}
	if (config->tls.cert_file != NULL && !tls_compiled_in()) {
		return config_fail_at(parser, cf, "tls.cert_file", error_r,
				      "TLS support was not compiled in "
				      "(OpenSSL headers were missing at build time)");
	}
	if (needs_cert != NULL && config->tls.cert_file == NULL) {
		return config_fail_at(parser, cf, needs_cert, error_r,
				      "an implicit TLS port needs tls.cert_file and tls.key_file");
	}
	if (!event_backend_known(config->event_backend)) {
		return config_fail_at(parser, cf, "event.backend", error_r,
				      "unknown event backend '%s' (known here: %s)",
				      config->event_backend, event_backend_names());
	}
	if (net_check_addresses(config->imap_address, &what) < 0 ||
	    net_check_addresses(config->smtp_address, &why) < 0) {
		const char *key = what != NULL ? "imap.address" : "smtp.address";
		int ret = config_fail_at(parser, cf, key, error_r, "%s",
					 what != NULL ? what : why);

		free(what);
		free(why);
		return ret;
	}
	if (config->storage_backend->init_db != NULL && config->storage.conninfo == NULL) {
		return config_fail_at(parser, cf, "storage.backend", error_r,
				      "storage.backend \"%s\" needs storage.conninfo (for example "
				      "\"host=localhost dbname=mail\")",
				      config->storage_backend->name);
	}
	if (config->smtp_relay_host != NULL) {
		return config_fail_at(parser, cf, "smtp.relay_host", error_r,
				      "relaying through a smarthost is not supported yet; "
				      "leave it empty (mail to other domains is refused)");
	}
	return 0;
}

char *
config_status_socket(const struct config *config)
{
	if (config->status_socket != NULL)
		return xstrdup(config->status_socket);
	return xasprintf("%s/.imapserver-status", config->storage.root);
}

bool
config_has_tls(const struct config *config)
{
	return config->tls.cert_file != NULL && config->tls.key_file != NULL;
}

bool
config_plaintext_allowed(const struct config *config, bool tls, bool loopback)
{
	switch (config->auth_plaintext) {
	case AUTH_PLAINTEXT_ALWAYS:
		return true;
	case AUTH_PLAINTEXT_NEVER:
		return tls;
	case AUTH_PLAINTEXT_LOOPBACK:
		break;
	}
	return tls || loopback;
}

int
config_load(const char *path, struct config **config_r, char **error_r)
{
	struct config_parser parser;
	struct config *config;
	config_t cf;
	char *dir, *text;
	int ret;

	*config_r = NULL;
	/* Read here rather than by libconfig: a missing file is reported
	   with its errno rather than as "file I/O error", and the text is
	   checked for integers that libconfig would truncate. */
	if (config_read_text(path, &text, error_r) < 0)
		return -1;
	if (config_check_integers(path, text, strlen(text), error_r) < 0 ||
	    config_dir_of(path, &dir, error_r) < 0) {
		free(text);
		return -1;
	}

	config_init(&cf);
	config_set_include_dir(&cf, dir);
	if (config_read_string(&cf, text) != CONFIG_TRUE) {
		const char *file = config_error_file(&cf);
		const char *msg = config_error_text(&cf);
		*error_r = xasprintf("%s:%d: %s", file != NULL ? file : path,
				     config_error_line(&cf), msg != NULL ? msg : "syntax error");
		config_destroy(&cf);
		free(text);
		free(dir);
		return -1;
	}
	free(text);

	config = config_new_defaults(dir);
	config->path = xstrdup(path);
	parser.path = path;
	parser.dir = dir;
	parser.config = config;
	ret = config_parse(&parser, &cf, error_r);
	if (ret == 0)
		ret = config_check_tls(&parser, &cf, error_r);
	if (ret == 0 && config->smtp_aliases_file != NULL &&
	    (config->smtp_aliases = aliases_load(config->smtp_aliases_file, error_r)) == NULL)
		ret = -1;
	config_destroy(&cf);
	free(dir);
	if (ret < 0) {
		config_free(&config);
		return -1;
	}
	*config_r = config;
	return 0;
}
