/* test_config.c: config_load() and config_defaults(): the shipped file,
   defaults, every kind of start-up error with its exact "file:line: what"
   text, and the resolution of relative paths. Runs from the repo top. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "registry.h"

struct fixture {
	char dir[64];           /* mkdtemp() folder */
	char *realdir;          /* its realpath */
};

static int
setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_config.XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	fx->realdir = realpath(fx->dir, NULL);
	if (fx->realdir == NULL)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char *cmd = xasprintf("rm -rf '%s'", fx->dir);

	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fx->dir);
	free(cmd);
	free(fx->realdir);
	free(fx);
	return 0;
}

/* Writes text to dir/name and returns the path (malloc'ed). */
static char *
write_file(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
	assert_int_equal(fclose(fp), 0);
	return path;
}

/* Loads text as a config file and checks the error is exactly
   "<path>:<expected>". */
static void
assert_load_error(struct fixture *fx, const char *text, const char *expected)
{
	char *path = write_file(fx->dir, "test.conf", text);
	struct config *config = (struct config *)1;
	char *error = NULL, *want;

	assert_int_equal(config_load(path, &config, &error), -1);
	assert_null(config);
	assert_non_null(error);
	want = xasprintf("%s:%s", path, expected);
	assert_string_equal(error, want);
	free(want);
	free(error);
	free(path);
}

static struct config *
load_ok(struct fixture *fx, const char *text)
{
	char *path = write_file(fx->dir, "test.conf", text);
	struct config *config = NULL;
	char *error = NULL;

	if (config_load(path, &config, &error) < 0)
		fail_msg("unexpected error: %s", error);
	assert_non_null(config);
	assert_string_equal(config->path, path);
	free(path);
	return config;
}

/* Every setting but the paths (and the file name) is the same. */
static void
assert_same_non_path_settings(const struct config *a, const struct config *b)
{
	assert_string_equal(a->imap_address, b->imap_address);
	assert_int_equal(a->imap_port, b->imap_port);
	assert_int_equal(a->smtp_enabled, b->smtp_enabled);
	assert_string_equal(a->smtp_address, b->smtp_address);
	assert_int_equal(a->smtp_port, b->smtp_port);
	assert_string_equal(a->smtp_domain, b->smtp_domain);
	assert_int_equal(a->smtp_domains.count, b->smtp_domains.count);
	for (size_t i = 0; i < a->smtp_domains.count; i++)
		assert_string_equal(a->smtp_domains.items[i], b->smtp_domains.items[i]);
	assert_int_equal(a->smtp_max_message_size, b->smtp_max_message_size);
	assert_int_equal(a->smtp_max_recipients, b->smtp_max_recipients);
	assert_int_equal(a->smtp_timeout, b->smtp_timeout);
	assert_int_equal(a->smtp_data_timeout, b->smtp_data_timeout);
	assert_ptr_equal(a->storage_backend, b->storage_backend);
	assert_ptr_equal(a->auth_backend, b->auth_backend);
	assert_string_equal(a->auth.service, b->auth.service);
	assert_int_equal(a->max_connections, b->max_connections);
	assert_int_equal(a->idle_timeout, b->idle_timeout);
	assert_int_equal(a->login_timeout, b->login_timeout);
	assert_int_equal(a->max_line, b->max_line);
	assert_int_equal(a->max_literal, b->max_literal);
	assert_int_equal(a->auth_fail_delay_ms, b->auth_fail_delay_ms);
	assert_int_equal(a->max_bad_commands, b->max_bad_commands);
	assert_int_equal(a->log_level, b->log_level);
}

static void
test_shipped_file_parses_with_documented_defaults(void **state)
{
	struct config *config = NULL, *defaults;
	char *error = NULL, *etc, *want;

	(void)state;
	if (config_load("etc/imapserver.conf", &config, &error) < 0)
		fail_msg("etc/imapserver.conf: %s", error);
	assert_string_equal(config->path, "etc/imapserver.conf");
	assert_int_equal(config->imap_port, 1430);
	assert_string_equal(config->imap_address, "127.0.0.1");
	assert_false(config->smtp_enabled);
	assert_int_equal(config->smtp_port, 2525);
	assert_ptr_equal(config->storage_backend, registry_storage_find("flat"));
	assert_ptr_equal(config->auth_backend, registry_auth_find("passwd-file"));
	assert_int_equal(config->log_level, LOG_LEVEL_INFO);

	etc = realpath("etc", NULL);
	assert_non_null(etc);
	want = xasprintf("%s/../var/mail", etc);
	assert_string_equal(config->storage.root, want);
	free(want);
	want = xasprintf("%s/users", etc);
	assert_string_equal(config->auth.file, want);
	free(want);

	/* The file shows the defaults: every value equals the built-in one. */
	defaults = config_defaults(".");
	assert_same_non_path_settings(config, defaults);
	config_free(&defaults);
	free(etc);
	config_free(&config);
	assert_null(config);
}

static void
test_defaults_when_file_is_empty(void **state)
{
	struct fixture *fx = *state;
	struct config *config = load_ok(fx, "# nothing set\n");
	struct config *defaults = config_defaults(fx->dir);
	char *want;

	assert_same_non_path_settings(config, defaults);
	assert_int_equal(config->imap_port, 1430);
	assert_int_equal(config->max_connections, 900);
	assert_int_equal(config->idle_timeout, 1800);
	assert_int_equal(config->login_timeout, 60);
	assert_int_equal(config->max_line, 65536);
	assert_int_equal(config->max_literal, 26214400);
	assert_int_equal(config->auth_fail_delay_ms, 1000);
	assert_int_equal(config->max_bad_commands, 20);
	assert_string_equal(config->smtp_domain, "localhost");
	assert_int_equal(config->smtp_domains.count, 1);
	assert_string_equal(config->smtp_domains.items[0], "localhost");
	assert_int_equal(config->smtp_max_message_size, 26214400);
	assert_int_equal(config->smtp_max_recipients, 100);
	assert_int_equal(config->smtp_timeout, 300);
	assert_int_equal(config->smtp_data_timeout, 180);
	assert_string_equal(config->auth.service, "imapserver");
	assert_false(config->smtp_enabled);

	want = xasprintf("%s/var/mail", fx->realdir);
	assert_string_equal(config->storage.root, want);
	assert_string_equal(defaults->storage.root, want);
	free(want);
	want = xasprintf("%s/etc/users", fx->realdir);
	assert_string_equal(config->auth.file, want);
	assert_string_equal(defaults->auth.file, want);
	free(want);
	assert_null(defaults->path);
	config_free(&defaults);
	config_free(&config);
}

static void
test_missing_keys_keep_defaults(void **state)
{
	struct fixture *fx = *state;
	struct config *config = load_ok(fx, "imap: { port = 143; };\n"
					    "smtp: { enabled = true; };\n"
					    "limits: { max_line = 2048; };\n"
					    "log: { level = \"debug\"; };\n");

	assert_int_equal(config->imap_port, 143);
	assert_string_equal(config->imap_address, "127.0.0.1");
	assert_true(config->smtp_enabled);
	assert_int_equal(config->smtp_port, 2525);
	assert_int_equal(config->max_line, 2048);
	assert_int_equal(config->max_literal, 26214400);
	assert_int_equal(config->log_level, LOG_LEVEL_DEBUG);
	config_free(&config);
}

static void
test_every_key_is_read(void **state)
{
	struct fixture *fx = *state;
	struct config *config = load_ok(fx,
		"imap: { address = \"0.0.0.0\"; port = 0; };\n"
		"smtp: { enabled = true; address = \"::1\"; port = 65535; domain = \"example.org\";\n"
		"  max_message_size = 1073741824; max_recipients = 100000; timeout = 3600;\n"
		"  data_timeout = 1; };\n"
		"storage: { backend = \"flat\"; root = \"/srv/mail\"; };\n"
		"auth = { backend = \"passwd-file\"; file = \"/etc/imap-users\"; service = \"imap\"; };\n"
		"limits: { max_connections = 100000; idle_timeout = 60; login_timeout = 1;\n"
		"  max_line = 1048576; max_literal = 1073741824; auth_fail_delay = 0;\n"
		"  max_bad_commands = 1000; };\n"
		"log: { level = \"error\"; };\n"
		"event: { backend = \"poll\"; };\n");

	assert_string_equal(config->imap_address, "0.0.0.0");
	assert_string_equal(config->event_backend, "poll");
	assert_int_equal(config->imap_port, 0);
	assert_true(config->smtp_enabled);
	assert_string_equal(config->smtp_address, "::1");
	assert_int_equal(config->smtp_port, 65535);
	assert_string_equal(config->smtp_domain, "example.org");
	assert_int_equal(config->smtp_domains.count, 1);
	assert_string_equal(config->smtp_domains.items[0], "example.org");
	assert_int_equal(config->smtp_max_message_size, 1073741824);
	assert_int_equal(config->smtp_max_recipients, 100000);
	assert_int_equal(config->smtp_timeout, 3600);
	assert_int_equal(config->smtp_data_timeout, 1);
	assert_string_equal(config->storage.root, "/srv/mail");
	assert_string_equal(config->auth.file, "/etc/imap-users");
	assert_string_equal(config->auth.service, "imap");
	assert_int_equal(config->max_connections, 100000);
	assert_int_equal(config->idle_timeout, 60);
	assert_int_equal(config->login_timeout, 1);
	assert_int_equal(config->max_line, 1048576);
	assert_int_equal(config->max_literal, 1073741824);
	assert_int_equal(config->auth_fail_delay_ms, 0);
	assert_int_equal(config->max_bad_commands, 1000);
	assert_int_equal(config->log_level, LOG_LEVEL_ERROR);
	config_free(&config);
}

/* imap.address and smtp.address: checked when the file is read (so by
   -t too), with the file and line: no port inside, and an address this
   machine can listen on; host names are taken. */
static void
test_listen_addresses_are_checked(void **state)
{
	struct fixture *fx = *state;
	struct config *config;

	assert_load_error(fx, "imap: {\n  address = \"0.0.0.0:143\";\n};\n",
			  "2: imap.address: '0.0.0.0:143' holds a port: give the address alone, "
			  "and the port in imap.port or smtp.port");
	assert_load_error(fx, "smtp: { address = \"[::1]:25\"; };\n",
			  "1: smtp.address: '[::1]:25' holds a port: give the address alone, and "
			  "the port in imap.port or smtp.port");
	/* TEST-NET-1 (RFC 5737): never an address of this machine. */
	assert_load_error(fx, "imap: { address = \"192.0.2.1\"; };\n",
			  "1: imap.address: cannot listen on '192.0.2.1': Cannot assign "
			  "requested address (not an address of this machine)");
	assert_load_error(fx, "imap: { address = \"\"; };\n", "1: imap.address: must not be empty");
	config = load_ok(fx, "imap: { address = \"localhost\"; };\n"
			     "smtp: { address = \"0.0.0.0\"; };\n");
	assert_string_equal(config->imap_address, "localhost");
	config_free(&config);
	/* Several addresses: in one string (commas and/or spaces) or in a
	   list; kept as "a, b"; each is checked, none may come twice. */
	config = load_ok(fx, "imap: { address = \"127.0.0.1,  localhost\"; };\n"
			     "smtp: { address = [\"127.0.0.1\", \"0.0.0.0\"]; };\n");
	assert_string_equal(config->imap_address, "127.0.0.1, localhost");
	assert_string_equal(config->smtp_address, "127.0.0.1, 0.0.0.0");
	config_free(&config);
	config = load_ok(fx, "imap: { address = (\"127.0.0.1\"); };\n");
	assert_string_equal(config->imap_address, "127.0.0.1");
	config_free(&config);
	assert_load_error(fx, "imap: {\n address = [\"127.0.0.1\", \"192.0.2.1\"];\n};\n",
			  "2: imap.address: cannot listen on '192.0.2.1': Cannot assign "
			  "requested address (not an address of this machine)");
	assert_load_error(fx, "smtp: { address = \"127.0.0.1 127.0.0.1\"; };\n",
			  "1: smtp.address: '127.0.0.1' is named twice");
	assert_load_error(fx, "imap: { address = [\"127.0.0.1\", \"0.0.0.0:143\"]; };\n",
			  "1: imap.address: '0.0.0.0:143' holds a port: give the address alone, "
			  "and the port in imap.port or smtp.port");
	assert_load_error(fx, "imap: { address = (\"127.0.0.1\", 143); };\n",
			  "1: imap.address: expected a list of address strings");
	assert_load_error(fx, "imap: { address = []; };\n",
			  "1: imap.address: an empty address (\"0.0.0.0\" or \"::\" listen everywhere)");
	assert_load_error(fx, "imap: { address = 143; };\n",
			  "1: imap.address: expected an address or a list of addresses");
	assert_load_error(fx, "imap: { address = \"a b c d e f g h i\"; };\n",
			  "1: imap.address: more than 8 addresses");
}

static void
test_int64_value_is_accepted_in_range(void **state)
{
	struct fixture *fx = *state;
	struct config *config = load_ok(fx, "limits: { max_literal = 1048576L; };\n");

	assert_int_equal(config->max_literal, 1048576);
	config_free(&config);
}

static void
test_unknown_key_with_suggestion(void **state)
{
	assert_load_error(*state,
			  "imap: { port = 1430; };\n"
			  "\n"
			  "limits: {\n"
			  "\tmax_connections = 10;\n"
			  "\tmax_lines = 9000;\n"
			  "};\n",
			  "5: unknown key 'limits.max_lines' (did you mean 'limits.max_line'?)");
}

static void
test_unknown_key_without_suggestion(void **state)
{
	assert_load_error(*state, "imap: {\n\tcolour = \"blue\";\n};\n",
			  "2: unknown key 'imap.colour'");
}

static void
test_key_in_the_wrong_section_suggests_the_right_one(void **state)
{
	assert_load_error(*state, "imap: {\n\tdomain = \"x\";\n};\n",
			  "2: unknown key 'imap.domain' (did you mean 'smtp.domain'?)");
}

static void
test_unknown_section(void **state)
{
	assert_load_error(*state, "# comment\nimapp: { port = 1; };\n",
			  "2: unknown section 'imapp' (did you mean 'imap'?)");
	assert_load_error(*state, "ldap: { };\n", "1: unknown section 'ldap'");
	assert_load_error(*state, "port = 1430;\n", "1: unknown section 'port'");
}

static void
test_section_that_is_not_a_group(void **state)
{
	assert_load_error(*state, "\nimap = 5;\n", "2: imap: expected a group");
	assert_load_error(*state, "log = ( \"info\" );\n", "1: log: expected a group");
}

static void
test_wrong_types(void **state)
{
	assert_load_error(*state, "imap: {\n\taddress = \"::\";\n\tport = \"1430\";\n};\n",
			  "3: imap.port: expected an integer");
	assert_load_error(*state, "imap: { port = 1430.0; };\n",
			  "1: imap.port: expected an integer");
	assert_load_error(*state, "limits: { max_line = true; };\n",
			  "1: limits.max_line: expected an integer");
	assert_load_error(*state, "smtp: {\n\tenabled = 1;\n};\n",
			  "2: smtp.enabled: expected a boolean (true or false)");
	assert_load_error(*state, "smtp: { enabled = \"yes\"; };\n",
			  "1: smtp.enabled: expected a boolean (true or false)");
	assert_load_error(*state, "imap: { address = 127; };\n",
			  "1: imap.address: expected an address or a list of addresses");
	assert_load_error(*state, "storage: { root = [ \"a\" ]; };\n",
			  "1: storage.root: expected a string");
	assert_load_error(*state, "log: { level = 3; };\n", "1: log.level: expected a string");
	assert_load_error(*state, "auth: { backend = { x = 1; }; };\n",
			  "1: auth.backend: expected a string");
}

static void
test_empty_strings_are_refused(void **state)
{
	assert_load_error(*state, "smtp: { domain = \"\"; };\n",
			  "1: smtp.domain: must not be empty");
	assert_load_error(*state, "auth: { file = \"\"; };\n", "1: auth.file: must not be empty");
}

static void
test_out_of_range(void **state)
{
	assert_load_error(*state,
			  "imap: { port = 1430; };\n"
			  "limits: {\n"
			  "\tmax_connections = 900;\n"
			  "\tmax_line = 100;\n"
			  "};\n",
			  "4: limits.max_line: 100 is out of range (1024..1048576)");
	assert_load_error(*state, "imap: { port = 65536; };\n",
			  "1: imap.port: 65536 is out of range (0..65535)");
	assert_load_error(*state, "smtp: { port = -1; };\n",
			  "1: smtp.port: -1 is out of range (0..65535)");
	assert_load_error(*state, "limits: { max_connections = 0; };\n",
			  "1: limits.max_connections: 0 is out of range (1..100000)");
	assert_load_error(*state, "limits: { idle_timeout = 59; };\n",
			  "1: limits.idle_timeout: 59 is out of range (60..604800)");
	assert_load_error(*state, "limits: { max_literal = 5000000000L; };\n",
			  "1: limits.max_literal: 5000000000 is out of range (1..1073741824)");
	assert_load_error(*state, "limits: { auth_fail_delay = 10001; };\n",
			  "1: limits.auth_fail_delay: 10001 is out of range (0..10000)");
	assert_load_error(*state, "limits: { max_bad_commands = 0; };\n",
			  "1: limits.max_bad_commands: 0 is out of range (1..1000)");
	assert_load_error(*state, "limits: { login_timeout = 0; };\n",
			  "1: limits.login_timeout: 0 is out of range (1..3600)");
	assert_load_error(*state, "smtp: {\n\tmax_recipients = 99;\n};\n",
			  "2: smtp.max_recipients: 99 is out of range (100..100000)");
	assert_load_error(*state, "smtp: { max_message_size = 1023; };\n",
			  "1: smtp.max_message_size: 1023 is out of range (1024..1073741824)");
	assert_load_error(*state, "smtp: { timeout = 0; };\n",
			  "1: smtp.timeout: 0 is out of range (1..3600)");
	assert_load_error(*state, "smtp: { data_timeout = 3601; };\n",
			  "1: smtp.data_timeout: 3601 is out of range (1..3600)");
}

/* smtp.domain: a comma-separated list, each a host name or an address
   literal; trimmed, lower-cased, duplicates dropped; the first one is the
   announced name. */
static void
test_smtp_domain_list(void **state)
{
	struct fixture *fx = *state;
	struct config *config = load_ok(fx, "smtp: { domain = \"Mail.Example.org , localhost,"
					    "[127.0.0.1],[IPv6:::1], LOCALHOST\"; };\n");

	assert_string_equal(config->smtp_domain,
			    "Mail.Example.org , localhost,[127.0.0.1],[IPv6:::1], LOCALHOST");
	assert_int_equal(config->smtp_domains.count, 4);
	assert_string_equal(config->smtp_domains.items[0], "mail.example.org");
	assert_string_equal(config->smtp_domains.items[1], "localhost");
	assert_string_equal(config->smtp_domains.items[2], "[127.0.0.1]");
	assert_string_equal(config->smtp_domains.items[3], "[ipv6:::1]");
	config_free(&config);

	assert_load_error(*state, "smtp: {\n\tdomain = \"localhost, bad domain\";\n};\n",
			  "2: smtp.domain: 'bad domain' is not a domain name or address literal "
			  "(expected e.g. \"localhost, example.org, [127.0.0.1]\")");
	assert_load_error(*state, "smtp: { domain = \"a,,b\"; };\n",
			  "1: smtp.domain: '' is not a domain name or address literal "
			  "(expected e.g. \"localhost, example.org, [127.0.0.1]\")");
	assert_load_error(*state, "smtp: { domain = \"-x.org\"; };\n",
			  "1: smtp.domain: '-x.org' is not a domain name or address literal "
			  "(expected e.g. \"localhost, example.org, [127.0.0.1]\")");
	assert_load_error(*state, "smtp: { domain = \"x..org\"; };\n",
			  "1: smtp.domain: 'x..org' is not a domain name or address literal "
			  "(expected e.g. \"localhost, example.org, [127.0.0.1]\")");
	assert_load_error(*state, "smtp: { domain = \"[]\"; };\n",
			  "1: smtp.domain: '[]' is not a domain name or address literal "
			  "(expected e.g. \"localhost, example.org, [127.0.0.1]\")");
	assert_load_error(*state, "smtp: { domain = \"\"; };\n",
			  "1: smtp.domain: must not be empty");
}

/* libconfig 1.5 would read 5000000000 as 705032704, inside the range. */
static void
test_integer_past_32_bits_is_refused_not_truncated(void **state)
{
	assert_load_error(*state, "# 5000000000 in a comment is fine\nlimits: {\n"
				  "\tmax_literal = 5000000000;\n};\n",
			  "3: integer 5000000000 does not fit in 32 bits "
			  "(write 5000000000L for a 64-bit integer)");
	assert_load_error(*state, "imap: { port = -4294965866; };\n",
			  "1: integer -4294965866 does not fit in 32 bits "
			  "(write -4294965866L for a 64-bit integer)");
	assert_load_error(*state, "imap: { port = 0x100000596; };\n",
			  "1: integer 0x100000596 does not fit in 32 bits "
			  "(write 0x100000596L for a 64-bit integer)");
	/* Digits inside strings and names are not integers. */
	struct config *config = load_ok(*state, "smtp: { domain = \"99999999999.example\"; };\n");
	assert_string_equal(config->smtp_domain, "99999999999.example");
	config_free(&config);
}

static void
test_unknown_backend_lists_known_names(void **state)
{
	char *names = registry_storage_names();
	char *want = xasprintf("3: storage.backend: unknown backend 'mbox' (known: %s)", names);

	assert_load_error(*state, "storage: {\n\troot = \"mail\";\n\tbackend = \"mbox\";\n};\n",
			  want);
	free(want);
	free(names);
	assert_load_error(*state, "auth: { backend = \"ldap\"; };\n",
			  "1: auth.backend: unknown backend 'ldap' (known: passwd-file, pam)");
	/* Names are exact. */
	assert_load_error(*state, "auth: { backend = \"PAM\"; };\n",
			  "1: auth.backend: unknown backend 'PAM' (known: passwd-file, pam)");
}

static void
test_backend_not_compiled_in(void **state)
{
	/* pam is compiled in when the build found PAM's headers: then the
	   same file loads and names it. */
	if (registry_auth_find("pam")->compiled_in) {
		struct config *config = load_ok(*state, "auth: {\n\tbackend = \"pam\";\n};\n");
		assert_string_equal(config->auth_backend->name, "pam");
		assert_string_equal(config->auth.service, "imapserver");
		config_free(&config);
		return;
	}
	assert_load_error(*state, "auth: {\n\tbackend = \"pam\";\n};\n",
			  "2: auth.backend: backend 'pam' was not compiled in "
			  "(PAM headers were missing at build time)");
}

static void
test_bad_log_level_lists_valid_ones(void **state)
{
	assert_load_error(*state, "log: { level = \"verbose\"; };\n",
			  "1: log.level: unknown level 'verbose' (known: error, warn, info, debug)");
}

static void
test_syntax_error_reports_line(void **state)
{
	assert_load_error(*state, "imap: {\n\tport = 1430;\n\taddress = ;\n};\n",
			  "3: syntax error");
	assert_load_error(*state, "imap: { port = 1; };\nimap: { port = 2; };\n",
			  "2: duplicate setting name");
}

static void
test_missing_file(void **state)
{
	struct fixture *fx = *state;
	char *path = xasprintf("%s/nope.conf", fx->dir);
	char *want = xasprintf("%s: No such file or directory", path);
	struct config *config = NULL;
	char *error = NULL;

	assert_int_equal(config_load(path, &config, &error), -1);
	assert_null(config);
	assert_string_equal(error, want);
	free(error);
	free(want);
	free(path);
}

/* Relative paths are resolved against the folder of the config file as
   named (the realpath of that folder), not against the cwd, nor against
   the target of a symlinked file. */
static void
test_relative_paths_resolved_against_config_dir(void **state)
{
	struct fixture *fx = *state;
	char *sub = xasprintf("%s/sub", fx->dir);
	char *real, *link, *want, *error = NULL;
	struct config *config = NULL;

	assert_int_equal(mkdir(sub, 0700), 0);
	real = write_file(sub, "real.conf",
			  "storage: { root = \"mail\"; };\n"
			  "auth: { file = \"../users.txt\"; };\n");
	link = xasprintf("%s/link.conf", fx->dir);
	assert_int_equal(symlink(real, link), 0);

	if (config_load(real, &config, &error) < 0)
		fail_msg("%s", error);
	want = xasprintf("%s/sub/mail", fx->realdir);
	assert_string_equal(config->storage.root, want);
	free(want);
	want = xasprintf("%s/sub/../users.txt", fx->realdir);
	assert_string_equal(config->auth.file, want);
	free(want);
	config_free(&config);

	if (config_load(link, &config, &error) < 0)
		fail_msg("%s", error);
	want = xasprintf("%s/mail", fx->realdir);
	assert_string_equal(config->storage.root, want);
	free(want);
	config_free(&config);

	/* A relative config path (from the cwd) gives absolute paths too. */
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(fx->dir), 0);
	if (config_load("sub/real.conf", &config, &error) < 0)
		fail_msg("%s", error);
	assert_int_equal(chdir(cwd), 0);
	want = xasprintf("%s/sub/mail", fx->realdir);
	assert_string_equal(config->storage.root, want);
	assert_string_equal(config->path, "sub/real.conf");
	free(want);
	config_free(&config);

	free(link);
	free(real);
	free(sub);
}

static void
test_config_defaults_base_dir(void **state)
{
	struct fixture *fx = *state;
	struct config *config = config_defaults(fx->dir);
	char *want;

	want = xasprintf("%s/var/mail", fx->realdir);
	assert_string_equal(config->storage.root, want);
	free(want);
	want = xasprintf("%s/etc/users", fx->realdir);
	assert_string_equal(config->auth.file, want);
	free(want);
	assert_ptr_equal(config->storage_backend, registry_storage_find("flat"));
	assert_ptr_equal(config->auth_backend, registry_auth_find("passwd-file"));
	config_free(&config);
	assert_null(config);
	config_free(&config);   /* freeing NULL is a no-op */
}

/* The TLS keys: paths made absolute, "" unset, the protocol floor and
   auth.plaintext by name, and the settings that only go together. */
static void
test_tls_keys(void **state)
{
	struct fixture *fx = *state;
	struct config *config;
	char *want;

	if (!tls_compiled_in()) {
		/* The keys are known, and a certificate is refused with the
		   reason rather than served without TLS. */
		assert_load_error(fx, "tls: { cert_file = \"c.pem\"; key_file = \"k.pem\"; };\n",
				  "1: tls.cert_file: TLS support was not compiled in (OpenSSL "
				  "headers were missing at build time)");
		config = load_ok(fx, "tls: { cert_file = \"\"; min_protocol = \"TLSv1.3\"; };\n"
				     "auth: { plaintext = \"never\"; };\n");
		assert_false(config_has_tls(config));
		config_free(&config);
		return;
	}
	config = load_ok(fx, "tls: { cert_file = \"c.pem\"; key_file = \"/k.pem\"; "
			     "ca_file = \"\"; min_protocol = \"TLSv1.3\"; "
			     "handshake_timeout = 5; };\n"
			     "imap: { tls_port = 993; };\n"
			     "smtp: { submission_port = 587; submissions_port = 465; };\n"
			     "auth: { plaintext = \"never\"; };\n");
	want = xasprintf("%s/c.pem", fx->realdir);
	assert_string_equal(config->tls.cert_file, want);
	free(want);
	assert_string_equal(config->tls.key_file, "/k.pem");
	assert_null(config->tls.ca_file);
	assert_int_equal(config->tls.min_protocol, TLS_MIN_1_3);
	assert_int_equal(config->tls_handshake_timeout, 5);
	assert_int_equal(config->imap_tls_port, 993);
	assert_int_equal(config->smtp_submission_port, 587);
	assert_int_equal(config->smtp_submissions_port, 465);
	assert_true(config_has_tls(config));
	assert_false(config_plaintext_allowed(config, false, true));
	assert_true(config_plaintext_allowed(config, true, false));
	config_free(&config);

	/* Defaults: no certificate, TLS 1.2 floor, passwords in clear from
	   loopback only. */
	config = load_ok(fx, "");
	assert_false(config_has_tls(config));
	assert_int_equal(config->tls.min_protocol, TLS_MIN_1_2);
	assert_int_equal(config->tls_handshake_timeout, 30);
	assert_true(config_plaintext_allowed(config, false, true));
	assert_false(config_plaintext_allowed(config, false, false));
	assert_true(config_plaintext_allowed(config, true, false));
	config_free(&config);

	config = load_ok(fx, "auth: { plaintext = \"always\"; };\n");
	assert_true(config_plaintext_allowed(config, false, false));
	config_free(&config);

	assert_load_error(fx, "tls: { min_protocol = \"TLSv1.1\"; };\n",
			  "1: tls.min_protocol: 'TLSv1.1' is not allowed (known: TLSv1.2, "
			  "TLSv1.3; older protocols are broken and refused)");
	assert_load_error(fx, "auth: { plaintext = \"sometimes\"; };\n",
			  "1: auth.plaintext: unknown value 'sometimes' (known: loopback, "
			  "always, never)");
	assert_load_error(fx, "\ntls: { cert_file = \"c.pem\"; };\n",
			  "2: tls.cert_file: needs tls.key_file as well");
	assert_load_error(fx, "imap: { tls_port = 993; };\n",
			  "1: imap.tls_port: an implicit TLS port needs tls.cert_file and "
			  "tls.key_file");
	assert_load_error(fx, "smtp: { submissions_port = 465; };\n",
			  "1: smtp.submissions_port: an implicit TLS port needs tls.cert_file "
			  "and tls.key_file");
	assert_load_error(fx, "smtp: { relay_host = \"mx.example.org\"; };\n",
			  "1: smtp.relay_host: relaying through a smarthost is not supported "
			  "yet; leave it empty (mail to other domains is refused)");
	assert_load_error(fx, "tls: { handshake_timeout = 0; };\n",
			  "1: tls.handshake_timeout: 0 is out of range (1..300)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped_file_parses_with_documented_defaults),
		cmocka_unit_test_setup_teardown(test_defaults_when_file_is_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_keys_keep_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_key_is_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen_addresses_are_checked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_int64_value_is_accepted_in_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key_with_suggestion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key_without_suggestion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_in_the_wrong_section_suggests_the_right_one,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_section, setup, teardown),
		cmocka_unit_test_setup_teardown(test_section_that_is_not_a_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_strings_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smtp_domain_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_integer_past_32_bits_is_refused_not_truncated,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_backend_lists_known_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backend_not_compiled_in, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_log_level_lists_valid_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_error_reports_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_paths_resolved_against_config_dir,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_defaults_base_dir, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
