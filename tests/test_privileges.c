/* test_privileges.c: the server.user / server.group keys (config) and
   privileges_drop(). Every drop runs in a forked child, which reports by
   its exit status, so the test process keeps its own ids. The drops that
   need root are skipped when the tests do not run as root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "privileges.h"

struct fixture {
	char dir[64];
	char *conf;
};

static int
setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_privileges.XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	fx->conf = xasprintf("%s/imapserver.conf", fx->dir);
	log_set_level(LOG_LEVEL_ERROR);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	unlink(fx->conf);
	rmdir(fx->dir);
	free(fx->conf);
	free(fx);
	return 0;
}

/* Writes text as the config and loads it: 0 with *cfg_r, or -1 with
   *error_r. */
static int
load(struct fixture *fx, const char *text, struct config **cfg_r, char **error_r)
{
	FILE *fp = fopen(fx->conf, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	*cfg_r = NULL;
	*error_r = NULL;
	return config_load(fx->conf, cfg_r, error_r);
}

static void
expect_error(struct fixture *fx, const char *text, const char *what)
{
	struct config *cfg;
	char *error, *want;

	assert_int_equal(load(fx, text, &cfg, &error), -1);
	assert_null(cfg);
	assert_non_null(error);
	want = xasprintf("%s:%s", fx->conf, what);
	if (strcmp(error, want) != 0)
		fprintf(stderr, "got:  %s\nwant: %s\n", error, want);
	assert_string_equal(error, want);
	free(want);
	free(error);
}

static void
test_server_keys_default_to_unset(void **state)
{
	struct fixture *fx = *state;
	struct config *cfg;
	char *error;

	assert_int_equal(load(fx, "log: { level = \"info\"; };\n", &cfg, &error), 0);
	assert_null(cfg->server_user);
	assert_null(cfg->server_group);
	config_free(&cfg);
	cfg = config_defaults("/tmp");
	assert_null(cfg->server_user);
	assert_null(cfg->server_group);
	config_free(&cfg);
}

static void
test_server_user_and_group_are_read(void **state)
{
	struct fixture *fx = *state;
	struct config *cfg;
	char *error;

	assert_int_equal(load(fx, "server: {\n  user = \"root\";\n  group = \"root\";\n};\n",
			      &cfg, &error), 0);
	assert_string_equal(cfg->server_user, "root");
	assert_string_equal(cfg->server_group, "root");
	config_free(&cfg);
	assert_null(cfg);
}

static void
test_server_keys_are_checked_with_file_and_line(void **state)
{
	struct fixture *fx = *state;

	expect_error(fx, "# c\nserver: {\n  user = \"no-such-user-4711\";\n};\n",
		     "3: server.user: unknown user 'no-such-user-4711'");
	expect_error(fx, "server: {\n  user = \"root\";\n  group = \"no-such-group-4711\";\n};\n",
		     "3: server.group: unknown group 'no-such-group-4711'");
	expect_error(fx, "server: { user = 0; };\n", "1: server.user: expected a string");
	expect_error(fx, "server: { user = \"\"; };\n", "1: server.user: must not be empty");
	expect_error(fx, "server: {\n  usr = \"root\";\n};\n",
		     "2: unknown key 'server.usr' (did you mean 'server.user'?)");
	expect_error(fx, "server: {\n  user = \"root\";\n  uid = 0;\n};\n",
		     "3: unknown key 'server.uid'");
	expect_error(fx, "sever: { user = \"root\"; };\n",
		     "1: unknown section 'sever' (did you mean 'server'?)");
	expect_error(fx, "server = \"root\";\n", "1: server: expected a group");
}

/* Runs fn in a child; returns its exit status (or 100 + signal). */
static int
in_child(int (*fn)(void))
{
	pid_t pid;
	int status;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return 100 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static int
child_drop_to_nobody(void)
{
	struct passwd *pw = getpwnam("nobody");
	gid_t groups[8];
	char *error = NULL;
	int n;

	if (pw == NULL)
		return 2;
	if (privileges_drop("nobody", NULL, &error) < 0)
		return 3;
	if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid || getgid() != pw->pw_gid ||
	    getegid() != pw->pw_gid)
		return 4;
	n = getgroups((int)N_ELEMENTS(groups), groups);
	if (n != 1 || groups[0] != pw->pw_gid)
		return 5;
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
		return 6;
	/* A root-only file is out of reach now. */
	if (access("/root", W_OK) == 0)
		return 7;
	return 0;
}

static int
child_drop_to_nobody_with_group(void)
{
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("daemon");
	char *error = NULL;

	if (pw == NULL || gr == NULL)
		return 2;
	if (privileges_drop("nobody", "daemon", &error) < 0)
		return 3;
	if (getuid() != pw->pw_uid || getgid() != gr->gr_gid || getegid() != gr->gr_gid)
		return 4;
	return 0;
}

static int
child_refusals_as_root(void)
{
	char *error = NULL;

	/* A uid-0 user is no drop at all. */
	if (privileges_drop("root", NULL, &error) != -1 || error == NULL ||
	    strstr(error, "uid 0") == NULL)
		return 2;
	free(error);
	error = NULL;
	if (privileges_drop(NULL, "daemon", &error) != -1 || error == NULL)
		return 3;
	free(error);
	error = NULL;
	if (privileges_drop("no-such-user-4711", NULL, &error) != -1 || error == NULL ||
	    strstr(error, "unknown user") == NULL)
		return 4;
	free(error);
	error = NULL;
	if (privileges_drop("nobody", "no-such-group-4711", &error) != -1 || error == NULL)
		return 5;
	free(error);
	/* No user: refused (mail is never read or written as root). */
	error = NULL;
	if (privileges_drop(NULL, NULL, &error) != -1 || error == NULL ||
	    strstr(error, "server.user") == NULL)
		return 7;
	free(error);
	/* None of these changed anything. */
	if (getuid() != 0 || geteuid() != 0)
		return 6;
	return 0;
}

/* As root: the start-up check refuses a missing server.user with one line
   naming the fix and the file, and changes nothing. */
static int
child_start_check_as_root(void)
{
	char *error = NULL;

	if (privileges_check_start(NULL, "/etc/x/imapserver.conf", &error) != -1 || error == NULL)
		return 2;
	if (strstr(error, "set server.user") == NULL ||
	    strstr(error, "in /etc/x/imapserver.conf") == NULL ||
	    strstr(error, "run as a normal user") == NULL || strchr(error, '\n') != NULL)
		return 3;
	free(error);
	error = NULL;
	/* the built-in defaults: no file to name, -c FILE instead */
	if (privileges_check_start(NULL, NULL, &error) != -1 || error == NULL ||
	    strstr(error, "-c FILE") == NULL)
		return 4;
	free(error);
	error = NULL;
	if (privileges_check_start("nobody", "/etc/x/imapserver.conf", &error) != 0 ||
	    error != NULL)
		return 5;
	if (getuid() != 0 || geteuid() != 0)
		return 6;
	return 0;
}

/* Not root: nothing to check, whatever the keys say. */
static int
child_start_check_not_root(void)
{
	struct passwd *pw = getpwnam("nobody");
	char *error = NULL;

	if (geteuid() == 0) {
		if (pw == NULL || setgroups(0, NULL) < 0 ||
		    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
			return 2;
	}
	if (privileges_check_start(NULL, "/etc/x/imapserver.conf", &error) != 0 || error != NULL)
		return 3;
	if (privileges_check_start(NULL, NULL, &error) != 0 || error != NULL)
		return 4;
	return 0;
}

/* Started as a normal user: the keys are ignored. */
static int
child_not_root_ignores_the_keys(void)
{
	struct passwd *pw = getpwnam("nobody");
	char *error = NULL;

	if (geteuid() == 0) {
		if (pw == NULL || setgroups(0, NULL) < 0 ||
		    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
			return 2;
	}
	uid_t before = geteuid();
	if (privileges_drop("root", "root", &error) != 0)
		return 3;
	if (geteuid() != before)
		return 4;
	return 0;
}

static void
test_drop_to_user_clears_groups_and_cannot_regain_root(void **state)
{
	if (geteuid() != 0)
		skip();
	assert_int_equal(in_child(child_drop_to_nobody), 0);
}

static void
test_drop_to_user_and_named_group(void **state)
{
	if (geteuid() != 0 || getgrnam("daemon") == NULL)
		skip();
	assert_int_equal(in_child(child_drop_to_nobody_with_group), 0);
}

static void
test_bad_drop_settings_are_errors_and_change_nothing(void **state)
{
	if (geteuid() != 0)
		skip();
	assert_int_equal(in_child(child_refusals_as_root), 0);
}

static void
test_root_without_server_user_is_refused_at_start(void **state)
{
	if (geteuid() != 0)
		skip();
	assert_int_equal(in_child(child_start_check_as_root), 0);
}

static void
test_start_check_passes_when_not_root(void **state)
{
	if (geteuid() == 0 && getpwnam("nobody") == NULL)
		skip();
	assert_int_equal(in_child(child_start_check_not_root), 0);
}

static void
test_not_root_ignores_user_and_group(void **state)
{
	if (geteuid() == 0 && getpwnam("nobody") == NULL)
		skip();
	assert_int_equal(in_child(child_not_root_ignores_the_keys), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_server_keys_default_to_unset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_user_and_group_are_read, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_server_keys_are_checked_with_file_and_line,
						setup, teardown),
		cmocka_unit_test(test_drop_to_user_clears_groups_and_cannot_regain_root),
		cmocka_unit_test(test_drop_to_user_and_named_group),
		cmocka_unit_test(test_bad_drop_settings_are_errors_and_change_nothing),
		cmocka_unit_test(test_root_without_server_user_is_refused_at_start),
		cmocka_unit_test(test_start_check_passes_when_not_root),
		cmocka_unit_test(test_not_root_ignores_user_and_group),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
