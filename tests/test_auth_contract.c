/* test_auth_contract.c: one table of tests run against every auth backend
   (passwd-file and pam): right password, wrong password, unknown user,
   empty password, very long input, non-ASCII user names, a user name
   carrying a path, many checks in flight, cancelling.

   Each test runs twice: once through the core wrapper
   auth_verify_start() (what the IMAP commands call) and once on the
   backend itself (verify, or verify_start driven by the loop), so that a
   backend is safe even with input the wrapper would have refused.

   The pam backend runs against a real PAM stack: pam_wrapper with its
   pam_matrix module. pam_wrapper must be preloaded at process start, so
   main() writes the PAM service folder, then re-executes this binary
   with LD_PRELOAD=libpam_wrapper.so (the ASan runtime first when built
   with the sanitizers), PAM_WRAPPER=1 and PAM_WRAPPER_SERVICE_DIR. When
   libpam_wrapper or pam_matrix are missing, or PAM was not compiled in,
   the pam tests are skipped and say so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <errno.h>
#include <glob.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "event.h"
#include "log.h"
#include "../auth/passwd_file.h"
#include "../auth/pam.h"

#define ENV_DIR "AUTH_CONTRACT_DIR"
#define PAM_SERVICE "imapserver-test"
#define WAIT_MS 20000

/* The users every backend knows. */
#define NONASCII_USER "j\xc3\xb6rg"             /* jörg */
#define NONASCII_PASS "gr\xc3\xbc\xc3\x9f" "e"  /* grüße */

struct backend_case {
	const char *name;
	const struct auth_backend *backend;
};

static const struct backend_case case_passwd_file = { "passwd-file", &auth_backend_passwd_file };
static const struct backend_case case_pam = { "pam", &auth_backend_pam };

/* The folder of this run: users file, PAM service folder, passdb. */
static char *run_dir;
static bool pam_ready;          /* pam_wrapper is active in this process */
static const char *pam_skip_reason = "pam_wrapper is not set up";

struct fixture {
	const struct backend_case *bc;
	struct event_loop *loop;
	struct auth_ctx ctx;
};

/* ---------------------------------------------------------------- set-up */

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fputs(text, fp) == EOF || fclose(fp) != 0) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static const char *
find_first(const char *pattern)
{
	static char found[4096];
	glob_t g;

	if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
		globfree(&g);
		return NULL;
	}
	snprintf(found, sizeof(found), "%s", g.gl_pathv[0]);
	globfree(&g);
	return found;
}

/* The files both backends read; the PAM service names pam_matrix. */
static void
write_run_files(const char *matrix)
{
	char *users = xasprintf("%s/users", run_dir);
	char *passdb = xasprintf("%s/passdb", run_dir);
	char *pamdir = xasprintf("%s/pam.d", run_dir);
	char *service = xasprintf("%s/%s", pamdir, PAM_SERVICE);
	char *other = xasprintf("%s/other", pamdir);
	char *text;

	write_file(users, "alice alice123\nbob bob123\n" NONASCII_USER " " NONASCII_PASS "\n");
	write_file(passdb, "alice:alice123:" PAM_SERVICE "\nbob:bob123:" PAM_SERVICE "\n"
		   NONASCII_USER ":" NONASCII_PASS ":" PAM_SERVICE "\n");
	if (mkdir(pamdir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "mkdir %s: %s\n", pamdir, strerror(errno));
		exit(1);
	}
	if (matrix != NULL) {
		text = xasprintf("auth required %s passdb=%s\naccount required %s passdb=%s\n",
				 matrix, passdb, matrix, passdb);
		write_file(service, text);
		free(text);
		text = xasprintf("auth required %s passdb=/nonexistent\n"
				 "account required %s passdb=/nonexistent\n", matrix, matrix);
		write_file(other, text);
		free(text);
	}
	free(users);
	free(passdb);
	free(pamdir);
	free(service);
	free(other);
}

static int
find_asan(struct dl_phdr_info *info, size_t size, void *data)
{
	char **path_r = data;

	if (info->dlpi_name != NULL && strstr(info->dlpi_name, "libasan") != NULL) {
		*path_r = xstrdup(info->dlpi_name);
		return 1;
	}
	return 0;
}

/* In the first run: makes the run folder and, when pam_wrapper is there,
   re-executes with it preloaded. Returns only when not re-executing. */
static void
prepare_run(char **argv)
{
	const char *lib, *matrix;
	char *asan = NULL, *preload, *pamdir;
	char tmpl[] = "/tmp/test_auth_contract.XXXXXX";

	if (getenv(ENV_DIR) != NULL) {
		/* The re-executed run. */
		run_dir = xstrdup(getenv(ENV_DIR));
		pam_ready = getenv("PAM_WRAPPER") != NULL;
		/* Loaded now; the shells of system() must not load it
		   (each would leave a /tmp/pam.X folder behind). The
		   PAM_WRAPPER variables stay: the PAM workers read them. */
		unsetenv("LD_PRELOAD");
		if (!pam_ready)
			pam_skip_reason = "the re-executed run lacks PAM_WRAPPER";
		return;
	}
	if (mkdtemp(tmpl) == NULL) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		exit(1);
	}
	run_dir = xstrdup(tmpl);
	lib = find_first("/usr/lib/*/libpam_wrapper.so");
	if (lib == NULL)
		lib = find_first("/usr/lib*/libpam_wrapper.so");
	lib = lib != NULL ? xstrdup(lib) : NULL;
	matrix = find_first("/usr/lib/*/pam_wrapper/pam_matrix.so");
	if (matrix == NULL)
		matrix = find_first("/usr/lib*/pam_wrapper/pam_matrix.so");
	write_run_files(matrix);
	if (!auth_backend_pam.compiled_in) {
		pam_skip_reason = "PAM was not compiled in (no security/pam_appl.h at build time)";
		free((char *)lib);
		return;
	}
	if (lib == NULL || matrix == NULL) {
		pam_skip_reason = "libpam_wrapper.so or pam_matrix.so is missing "
				  "(Debian package libpam-wrapper)";
		free((char *)lib);
		return;
	}
	/* ASan must come first in the preload list; pam_wrapper's
	   RTLD_DEEPBIND does not mix with the sanitizers. */
	dl_iterate_phdr(find_asan, &asan);
	preload = asan != NULL ? xasprintf("%s %s", asan, lib) : xstrdup(lib);
	if (asan != NULL) {
		/* pam_wrapper 1.1.4 (Debian 12) reads the uid_wrapper name. */
		setenv("PAM_WRAPPER_DISABLE_DEEPBIND", "1", 1);
		setenv("UID_WRAPPER_DISABLE_DEEPBIND", "1", 1);
	}
	pamdir = xasprintf("%s/pam.d", run_dir);
	setenv(ENV_DIR, run_dir, 1);
	setenv("PAM_WRAPPER", "1", 1);
	setenv("PAM_WRAPPER_SERVICE_DIR", pamdir, 1);
	setenv("LD_PRELOAD", preload, 1);
	/* argv[0] when it is a path: under valgrind /proc/self/exe is
	   valgrind's own tool, which cannot be run directly. */
	execv(strchr(argv[0], '/') != NULL ? argv[0] : "/proc/self/exe", argv);
	/* Not re-executed: run without PAM, and clean up as usual. */
	fprintf(stderr, "re-exec with pam_wrapper failed: %s\n", strerror(errno));
	unsetenv("LD_PRELOAD");
	unsetenv("PAM_WRAPPER");
	pam_skip_reason = "could not re-execute with pam_wrapper preloaded";
	free(asan);
	free(preload);
	free(pamdir);
	free((char *)lib);
}

static void
remove_run_dir(void)
{
	char *cmd = xasprintf("rm -rf '%s'", run_dir);

	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", run_dir);
	free(cmd);
	free(run_dir);
	run_dir = NULL;
}

/* pam_wrapper keeps a copy of the service folder in /tmp/pam.X (one
   letter: 62 slots) for every process that called pam_start, removed at
   normal exit; the PAM helper ends with _exit(). Removes the ones whose
   process is gone, which is pam_wrapper's own rule for stale folders,
   and this process's own (called once PAM is no longer used). */
static void
remove_stale_pam_wrapper_dirs(void)
{
	glob_t g;

	if (glob("/tmp/pam.?/pid", 0, NULL, &g) != 0) {
		globfree(&g);
		return;
	}
	for (size_t i = 0; i < g.gl_pathc; i++) {
		FILE *fp = fopen(g.gl_pathv[i], "r");
		long pid = 0;
		char *cmd;

		if (fp == NULL)
			continue;
		if (fscanf(fp, "%ld", &pid) != 1)
			pid = 0;
		fclose(fp);
		/* This process's own folder too: PAM is done with. */
		if (pid <= 0 || (pid != (long)getpid() &&
				 (kill((pid_t)pid, 0) == 0 || errno != ESRCH)))
			continue;
		cmd = xasprintf("rm -rf '%.*s'", (int)(strlen(g.gl_pathv[i]) - 4), g.gl_pathv[i]);
		if (system(cmd) != 0)
			fprintf(stderr, "could not run %s\n", cmd);
		free(cmd);
	}
	globfree(&g);
}

static int
setup(void **state)
{
	const struct backend_case *bc = *state;
	struct fixture *fx;
	struct auth_settings set = { 0 };
	char *file, *error = NULL;

	if (bc == &case_pam && !pam_ready) {
		/* Reported by the test itself as skipped. */
		fx = xcalloc(1, sizeof(*fx));
		fx->bc = bc;
		*state = fx;
		return 0;
	}
	fx = xcalloc(1, sizeof(*fx));
	fx->bc = bc;
	fx->loop = event_loop_new();
	file = xasprintf("%s/users", run_dir);
	set.file = file;
	set.service = PAM_SERVICE;
	if (bc->backend->init(&set, &fx->ctx.auth, &error) < 0) {
		fprintf(stderr, "%s init: %s\n", bc->name, error);
		free(error);
		free(file);
		return -1;
	}
	free(file);
	fx->ctx.backend = bc->backend;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	if (fx->ctx.auth != NULL)
		fx->bc->backend->deinit(&fx->ctx.auth);
	event_loop_free(&fx->loop);
	free(fx);
	return 0;
}

#define NEED_BACKEND(fx) \
	do { \
		if ((fx)->loop == NULL) \
			skip(); \
	} while (0)

/* ---------------------------------------------------------------- checks */

struct answer {
	bool done;
	unsigned calls;
	enum auth_result result;
};

static void
wrapper_cb(enum auth_result result, void *context)
{
	struct answer *a = context;

	a->done = true;
	a->calls++;
	a->result = result;
}

static void
backend_cb(enum auth_result result, char *reason, void *context)
{
	struct answer *a = context;

	free(reason);
	a->done = true;
	a->calls++;
	a->result = result;
}

/* Runs the loop until every answer in a[0..n) is in (or WAIT_MS). */
static void
run_until_done(struct fixture *fx, struct answer *a, size_t n)
{
	int64_t deadline = mono_ms() + WAIT_MS;

	for (;;) {
		size_t done = 0;

		for (size_t i = 0; i < n; i++)
			done += a[i].done;
		if (done == n)
			return;
		assert_true(mono_ms() < deadline);
		assert_int_equal(event_loop_run_once(fx->loop, 100), 0);
	}
}

/* Through the core wrapper, as the IMAP commands do. */
static enum auth_result
check_wrapped(struct fixture *fx, const char *user, const char *password)
{
	struct answer a = { 0 };
	struct auth_request *req;

	req = auth_verify_start(&fx->ctx, fx->loop, "t", "192.0.2.1", user, password, wrapper_cb,
				&a);
	assert_non_null(req);
	/* Never answered from inside the call. */
	assert_false(a.done);
	run_until_done(fx, &a, 1);
	assert_int_equal(a.calls, 1);
	return a.result;
}

/* On the backend itself, without the wrapper's checks. A check that
   cannot start counts as AUTH_TEMPFAIL (the wrapper's answer to it). */
static enum auth_result
check_backend(struct fixture *fx, const char *user, const char *password)
{
	const struct auth_backend *b = fx->bc->backend;
	struct answer a = { 0 };
	char *reason = NULL;
	void *handle = NULL;
	enum auth_result res;

	if (b->verify_start == NULL) {
		res = b->verify(fx->ctx.auth, user, password, &reason);
		free(reason);
		return res;
	}
	if (b->verify_start(fx->ctx.auth, fx->loop, user, password, backend_cb, &a, &handle) < 0)
		return AUTH_TEMPFAIL;
	assert_false(a.done);
	run_until_done(fx, &a, 1);
	assert_int_equal(a.calls, 1);
	return a.result;
}

/* Both ways give expected. */
static void
expect_both(struct fixture *fx, const char *user, const char *password,
	    enum auth_result expected)
{
	assert_int_equal(check_wrapped(fx, user, password), expected);
	assert_int_equal(check_backend(fx, user, password), expected);
}

/* The wrapper refuses with AUTH_FAIL; the backend alone never lets in. */
static void
expect_refused(struct fixture *fx, const char *user, const char *password)
{
	assert_int_equal(check_wrapped(fx, user, password), AUTH_FAIL);
	assert_int_not_equal(check_backend(fx, user, password), AUTH_OK);
}

/* ---------------------------------------------------------------- tests */

static void
test_right_password_is_ok(void **state)
{
	struct fixture *fx = *state;

	NEED_BACKEND(fx);
	expect_both(fx, "alice", "alice123", AUTH_OK);
	expect_both(fx, "bob", "bob123", AUTH_OK);
}

static void
test_wrong_password_fails(void **state)
{
	struct fixture *fx = *state;

	NEED_BACKEND(fx);
	expect_both(fx, "alice", "alice124", AUTH_FAIL);
	expect_both(fx, "alice", "bob123", AUTH_FAIL);          /* another user's */
	expect_both(fx, "alice", "alice12", AUTH_FAIL);         /* a prefix */
	expect_both(fx, "alice", "alice1234", AUTH_FAIL);       /* one more octet */
	expect_both(fx, "alice", "ALICE123", AUTH_FAIL);
}

static void
test_unknown_user_fails(void **state)
{
	struct fixture *fx = *state;

	NEED_BACKEND(fx);
	expect_both(fx, "mallory", "alice123", AUTH_FAIL);
	expect_both(fx, "alice2", "alice123", AUTH_FAIL);
	expect_both(fx, "alic", "alice123", AUTH_FAIL);
}

static void
test_empty_password_fails(void **state)
{
	struct fixture *fx = *state;

	NEED_BACKEND(fx);
	expect_both(fx, "alice", "", AUTH_FAIL);
	expect_both(fx, "mallory", "", AUTH_FAIL);
	/* An empty user name is refused before any backend. */
	assert_int_equal(check_wrapped(fx, "", ""), AUTH_FAIL);
	assert_int_equal(check_wrapped(fx, "", "alice123"), AUTH_FAIL);
	assert_int_not_equal(check_backend(fx, "", "alice123"), AUTH_OK);
}

static void
test_very_long_input_is_refused(void **state)
{
	struct fixture *fx = *state;
	char *huge = xmalloc(100001), *long_pass = xmalloc(1026), *suffixed;

	NEED_BACKEND(fx);
	memset(huge, 'a', 100000);
	huge[100000] = '\0';
	memset(long_pass, 'p', 1025);
	long_pass[1025] = '\0';
	/* The right password with 1000 octets more is not the right one. */
	suffixed = xmalloc(1009);
	memcpy(suffixed, "alice123", 8);
	memset(suffixed + 8, 'x', 1000);
	suffixed[1008] = '\0';

	expect_refused(fx, huge, "alice123");
	expect_refused(fx, "alice", huge);
	expect_refused(fx, huge, huge);
	expect_refused(fx, "alice", long_pass);         /* 1025: one past the limit */
	long_pass[1024] = '\0';
	expect_both(fx, "alice", long_pass, AUTH_FAIL); /* 1024: checked, wrong */
	expect_both(fx, "alice", suffixed, AUTH_FAIL);
	huge[256] = '\0';
	expect_refused(fx, huge, "alice123");           /* 256-octet user name */
	huge[64] = '\0';
	expect_both(fx, huge, "alice123", AUTH_FAIL);   /* longest valid name, unknown */
	/* Still serving afterwards. */
	expect_both(fx, "alice", "alice123", AUTH_OK);
	free(huge);
	free(long_pass);
	free(suffixed);
}

static void
test_non_ascii_user_names(void **state)
{
	struct fixture *fx = *state;

	NEED_BACKEND(fx);
	expect_both(fx, NONASCII_USER, NONASCII_PASS, AUTH_OK);
	expect_both(fx, NONASCII_USER, "grusse", AUTH_FAIL);
	expect_both(fx, "jorg", NONASCII_PASS, AUTH_FAIL);      /* not folded */
	expect_both(fx, "J\xc3\x96RG", NONASCII_PASS, AUTH_FAIL);
	/* Not UTF-8 at all: a clean refusal. */
	expect_both(fx, "\xff\xfe\xfd", "x", AUTH_FAIL);
	expect_both(fx, "j\xc3", NONASCII_PASS, AUTH_FAIL);     /* cut in a character */
	/* Control characters never reach a backend. */
	expect_refused(fx, "ali\x01" "ce", "alice123");
	expect_refused(fx, "alice\n", "alice123");
	expect_refused(fx, "alice\x7f", "alice123");
}

static void
test_user_name_carrying_a_path_is_refused(void **state)
{
	struct fixture *fx = *state;
	static const char *const names[] = {
		"../alice", "alice/../alice", "/etc/passwd", "..", ".", "alice/", "/alice",
		".alice", "a/b", "..%2falice", "alice\\..\\bob",
	};

	NEED_BACKEND(fx);
	for (size_t i = 0; i < N_ELEMENTS(names); i++) {
		assert_int_not_equal(check_wrapped(fx, names[i], "alice123"), AUTH_OK);
		assert_int_not_equal(check_backend(fx, names[i], "alice123"), AUTH_OK);
	}
	/* The ones with a '/' or a leading '.' never reach the backend. */
	expect_refused(fx, "../alice", "alice123");
	expect_refused(fx, "/etc/passwd", "alice123");
	expect_refused(fx, ".alice", "alice123");
}

static void
test_many_checks_in_flight_get_their_own_answers(void **state)
{
	struct fixture *fx = *state;
	struct answer a[40];
	struct auth_request *reqs[40];

	NEED_BACKEND(fx);
	memset(a, 0, sizeof(a));
	for (size_t i = 0; i < N_ELEMENTS(a); i++) {
		const char *pass = i % 3 == 0 ? "alice123" : i % 3 == 1 ? "wrong" : "bob123";
		reqs[i] = auth_verify_start(&fx->ctx, fx->loop, "t", "192.0.2.1",
					    i % 2 == 0 ? "alice" : "bob", pass, wrapper_cb, &a[i]);
		assert_non_null(reqs[i]);
	}
	run_until_done(fx, a, N_ELEMENTS(a));
	for (size_t i = 0; i < N_ELEMENTS(a); i++) {
		bool alice = i % 2 == 0;
		bool ok = (alice && i % 3 == 0) || (!alice && i % 3 == 2);

		assert_int_equal(a[i].calls, 1);
		assert_int_equal(a[i].result, ok ? AUTH_OK : AUTH_FAIL);
	}
}

static void
test_cancelled_check_is_never_answered(void **state)
{
	struct fixture *fx = *state;
	struct answer a = { 0 }, b = { 0 };
	struct auth_request *ra, *rb;

	NEED_BACKEND(fx);
	ra = auth_verify_start(&fx->ctx, fx->loop, "t", "192.0.2.1", "alice", "alice123",
			       wrapper_cb, &a);
	rb = auth_verify_start(&fx->ctx, fx->loop, "t", "192.0.2.1", "bob", "bob123", wrapper_cb,
			       &b);
	auth_request_cancel(&ra);
	assert_null(ra);
	run_until_done(fx, &b, 1);
	/* Give a late answer for the cancelled one time to arrive. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(event_loop_run_once(fx->loop, 50), 0);
	assert_false(a.done);
	assert_int_equal(b.result, AUTH_OK);
	(void)rb;
	/* And the backend goes on answering. */
	expect_both(fx, "alice", "alice123", AUTH_OK);
}

/* ---------------------------------------------------------------- pam only */

/* The pid of this process's only child (the PAM helper), or -1. */
static pid_t
only_child(void)
{
	char path[64], buf[256];
	FILE *fp;
	long pid = -1, extra = -1;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/children", (long)getpid());
	fp = fopen(path, "r");
	if (fp == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), fp) == NULL || sscanf(buf, "%ld %ld", &pid, &extra) != 1)
		pid = -1;
	fclose(fp);
	return (pid_t)pid;
}

static void
test_pam_helper_death_is_a_temporary_failure_then_restarts(void **state)
{
	struct fixture *fx = *state;
	pid_t helper, again;

	NEED_BACKEND(fx);
	expect_both(fx, "alice", "alice123", AUTH_OK);
	helper = only_child();
	assert_true(helper > 0);
	assert_int_equal(kill(helper, SIGKILL), 0);
	/* Either the death is seen before the request goes out (the
	   request is then failed from the loop), or the request is lost
	   with the helper: both are AUTH_TEMPFAIL, never a hang. */
	assert_int_equal(check_wrapped(fx, "alice", "alice123"), AUTH_TEMPFAIL);
	again = only_child();
	assert_true(again > 0);
	assert_int_not_equal(again, helper);
	expect_both(fx, "alice", "alice123", AUTH_OK);
	expect_both(fx, "alice", "nope", AUTH_FAIL);
}

static void
test_pam_unknown_service_is_not_a_login(void **state)
{
	struct fixture *fx = *state;
	struct auth_settings set = { .file = NULL, .service = "no-such-service" };
	struct auth_ctx ctx = { .backend = &auth_backend_pam };
	char *error = NULL;

	NEED_BACKEND(fx);
	assert_int_equal(auth_backend_pam.init(&set, &ctx.auth, &error), 0);
	/* pam_wrapper's "other" stack points at a missing passdb. */
	struct fixture other = { .bc = fx->bc, .loop = fx->loop, .ctx = ctx };
	assert_int_not_equal(check_wrapped(&other, "alice", "alice123"), AUTH_OK);
	auth_backend_pam.deinit(&ctx.auth);
	assert_null(ctx.auth);
	/* Bad service names are init errors. */
	set.service = "../etc/passwd";
	assert_int_equal(auth_backend_pam.init(&set, &ctx.auth, &error), -1);
	assert_non_null(error);
	free(error);
	error = NULL;
	set.service = "";
	assert_int_equal(auth_backend_pam.init(&set, &ctx.auth, &error), -1);
	free(error);
}

#define CONTRACT(bc) \
	cmocka_unit_test_prestate_setup_teardown(test_right_password_is_ok, setup, teardown, \
						 (void *)&bc), \
	cmocka_unit_test_prestate_setup_teardown(test_wrong_password_fails, setup, teardown, \
						 (void *)&bc), \
	cmocka_unit_test_prestate_setup_teardown(test_unknown_user_fails, setup, teardown, \
						 (void *)&bc), \
	cmocka_unit_test_prestate_setup_teardown(test_empty_password_fails, setup, teardown, \
						 (void *)&bc), \
	cmocka_unit_test_prestate_setup_teardown(test_very_long_input_is_refused, setup, \
						 teardown, (void *)&bc), \
	cmocka_unit_test_prestate_setup_teardown(test_non_ascii_user_names, setup, teardown, \
						 (void *)&bc), \
	cmocka_unit_test_prestate_setup_teardown(test_user_name_carrying_a_path_is_refused, \
						 setup, teardown, (void *)&bc), \
	cmocka_unit_test_prestate_setup_teardown( \
		test_many_checks_in_flight_get_their_own_answers, setup, teardown, (void *)&bc), \
	cmocka_unit_test_prestate_setup_teardown(test_cancelled_check_is_never_answered, \
						 setup, teardown, (void *)&bc)

int
main(int argc, char **argv)
{
	const struct CMUnitTest passwd_file_tests[] = {
		CONTRACT(case_passwd_file),
	};
	const struct CMUnitTest pam_tests[] = {
		CONTRACT(case_pam),
		cmocka_unit_test_prestate_setup_teardown(
			test_pam_helper_death_is_a_temporary_failure_then_restarts, setup,
			teardown, (void *)&case_pam),
		cmocka_unit_test_prestate_setup_teardown(test_pam_unknown_service_is_not_a_login,
							 setup, teardown, (void *)&case_pam),
	};
	int failed = 0;

	(void)argc;
	prepare_run(argv);
	log_set_level(LOG_LEVEL_ERROR);
	failed += cmocka_run_group_tests_name("auth contract: passwd-file", passwd_file_tests,
					      NULL, NULL);
	if (!pam_ready)
		fprintf(stderr, "auth contract: pam tests skipped: %s\n", pam_skip_reason);
	failed += cmocka_run_group_tests_name("auth contract: pam", pam_tests, NULL, NULL);
	if (pam_ready)
		remove_stale_pam_wrapper_dirs();
	remove_run_dir();
	return failed == 0 ? 0 : 1;
}
