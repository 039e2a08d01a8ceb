/* test_aliases.c: smtp.aliases (core/hub/aliases.c): the aliases(5)
   form, lookups without regard to case, and every mistake reported as
   "file:line: what" with nothing half-read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <stdio.h>
#include <unistd.h>

#include "aliases.h"
#include "config.h"

static char path[64];

static int
setup(void **state)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/test_aliases.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int
teardown(void **state)
{
	unlink(path);
	return 0;
}

static void
write_file(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Loads text and expects the error "path:LINE: what..." */
static void
expect_error(const char *text, const char *suffix)
{
	struct aliases *a;
	char *error = NULL, *want;

	write_file(text);
	a = aliases_load(path, &error);
	assert_null(a);
	assert_non_null(error);
	want = xasprintf("%s%s", path, suffix);
	assert_string_equal(error, want);
	free(want);
	free(error);
}

static void
test_aliases_form(void **state)
{
	struct aliases *a;
	const struct strlist *users;
	char *error = NULL;

	write_file("# the demo\n"
		   "\n"
		   "postmaster: alice\n"
		   "team:  alice, bob,\n"
		   "   carol\n"
		   "  # a comment inside\n"
		   "dup: bob, bob ,alice\r\n");
	a = aliases_load(path, &error);
	assert_null(error);
	assert_non_null(a);
	assert_int_equal(aliases_count(a), 3);
	users = aliases_lookup(a, "postmaster");
	assert_non_null(users);
	assert_int_equal(users->count, 1);
	assert_string_equal(users->items[0], "alice");
	/* RFC 5321 4.5.1: "Postmaster" in any case. */
	assert_ptr_equal(aliases_lookup(a, "PostMaster"), users);
	users = aliases_lookup(a, "team");
	assert_int_equal(users->count, 3);
	assert_string_equal(users->items[2], "carol");
	users = aliases_lookup(a, "dup");
	assert_int_equal(users->count, 2);
	assert_null(aliases_lookup(a, "alice"));
	assert_null(aliases_lookup(NULL, "postmaster"));
	aliases_free(&a);
	assert_null(a);
}

static void
test_aliases_mistakes(void **state)
{
	expect_error("postmaster alice\n", ":1: expected 'name: user, user'");
	expect_error("a: alice\n\nb: bob\na: carol\n", ":4: 'a' is defined twice");
	expect_error("  alice\n", ":1: a continuation line with nothing before it");
	expect_error("x: bob@example.org\n",
		     ":1: 'bob@example.org' is not a local user name (addresses, files and "
		     "commands are not supported)");
	expect_error("x: |/bin/sh\n",
		     ":1: '|/bin/sh' is not a local user name (addresses, files and commands "
		     "are not supported)");
	expect_error("x: /var/mail/x\n",
		     ":1: '/var/mail/x' is not a local user name (addresses, files and "
		     "commands are not supported)");
	expect_error("ok: alice\nx: ,\n", ":2: 'x' names no user");
	expect_error("../x: alice\n", ":1: '../x' is not a valid alias name");
	/* An alias of an alias: the file, no line (it is the whole file). */
	expect_error("a: b\nb: alice\n", ": 'a' names the alias 'b': aliases of aliases are not "
					 "supported");
}

static void
test_aliases_missing_file(void **state)
{
	char *error = NULL;

	unlink(path);
	assert_null(aliases_load(path, &error));
	assert_non_null(error);
	assert_non_null(strstr(error, "No such file or directory"));
	free(error);
}

/* Read with the configuration: a mistake there is a config error. */
static void
test_aliases_in_config(void **state)
{
	char conf[80], *error = NULL;
	struct config *cfg = NULL;
	FILE *f;

	snprintf(conf, sizeof(conf), "%s.conf", path);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "smtp: { aliases = \"%s\"; };\n", path);
	fclose(f);
	write_file("postmaster: alice\n");
	assert_int_equal(config_load(conf, &cfg, &error), 0);
	assert_non_null(aliases_lookup(cfg->smtp_aliases, "postmaster"));
	config_free(&cfg);
	write_file("postmaster: alice\nbad line\n");
	assert_int_equal(config_load(conf, &cfg, &error), -1);
	assert_non_null(error);
	assert_non_null(strstr(error, ":2: expected 'name: user, user'"));
	free(error);
	unlink(conf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_aliases_form, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aliases_mistakes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aliases_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aliases_in_config, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
