/* test_passwd_file.c: the passwd-file auth backend, the auth_verify()
   core wrapper and auth_str_equal_ct(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "auth.h"
#include "event.h"
#include "job.h"
#include "log.h"
#include "../auth/passwd_file.h"

struct fixture {
	char dir[64];
	char *users;            /* dir/users */
	char *logfile;          /* dir/log: stderr while capturing */
	int saved_stderr;
	struct auth *auth;
};

static int
setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_passwd_file.XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	fx->users = xasprintf("%s/users", fx->dir);
	fx->logfile = xasprintf("%s/log", fx->dir);
	fx->saved_stderr = -1;
	log_set_level(LOG_LEVEL_DEBUG);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char *cmd = xasprintf("rm -rf '%s'", fx->dir);

	if (fx->auth != NULL)
		auth_backend_passwd_file.deinit(&fx->auth);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fx->dir);
	free(cmd);
	free(fx->users);
	free(fx->logfile);
	free(fx);
	return 0;
}

static void
write_users(struct fixture *fx, const char *text)
{
	char *tmp = xasprintf("%s.tmp", fx->users);
	FILE *fp = fopen(tmp, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(tmp, fx->users), 0);
	free(tmp);
}

/* Rewrites the file in place (same inode) and moves its mtime forward by
   seconds, so that a change is seen even on coarse timestamps. */
static void
rewrite_users_in_place(struct fixture *fx, const char *text, int seconds)
{
	struct timeval times[2];
	struct stat st;
	FILE *fp = fopen(fx->users, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(stat(fx->users, &st), 0);
	times[0].tv_sec = st.st_atime;
	times[0].tv_usec = 0;
	times[1].tv_sec = st.st_mtime + seconds;
	times[1].tv_usec = 0;
	assert_int_equal(utimes(fx->users, times), 0);
}

static void
init_ok(struct fixture *fx)
{
	struct auth_settings set = { .file = fx->users, .service = NULL };
	char *error = NULL;

	if (auth_backend_passwd_file.init(&set, &fx->auth, &error) < 0)
		fail_msg("init: %s", error);
	assert_non_null(fx->auth);
}

/* Calls the backend directly; checks that a failure comes with a reason
   and frees it. */
static enum auth_result
verify(struct fixture *fx, const char *user, const char *password)
{
	char *reason = NULL;
	enum auth_result ret;

	ret = auth_backend_passwd_file.verify(fx->auth, user, password, &reason);
	if (ret == AUTH_OK)
		assert_null(reason);
	else
		assert_non_null(reason);
	free(reason);
	return ret;
}

static void
capture_start(struct fixture *fx)
{
	int fd = open(fx->logfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	fflush(stderr);
	fx->saved_stderr = dup(STDERR_FILENO);
	assert_true(fx->saved_stderr >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

/* Stops capturing; returns what was logged (malloc'ed). */
static char *
capture_end(struct fixture *fx)
{
	char buf[65536];
	size_t n;
	FILE *fp;

	fflush(stderr);
	assert_int_equal(dup2(fx->saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(fx->saved_stderr);
	fx->saved_stderr = -1;
	fp = fopen(fx->logfile, "r");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* Echo it, so a failing run shows the log. */
	fputs(buf, stderr);
	return xstrdup(buf);
}

/* A fresh crypt(3) hash of password with the method of prefix ("$6$",
   "$y$"), or NULL if this libcrypt cannot make one. */
static char *
make_hash(const char *prefix, const char *password)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *data = xcalloc(1, sizeof(*data));
	char *out, *hash = NULL;

	if (crypt_gensalt_rn(prefix, 0, NULL, 0, salt, sizeof(salt)) != NULL) {
		out = crypt_r(password, salt, data);
		if (out != NULL && out[0] == '$')
			hash = xstrdup(out);
	}
	free(data);
	return hash;
}

static void
test_plain_password(void **state)
{
	struct fixture *fx = *state;

	write_users(fx, "alice alice123\nbob bob123\n");
	init_ok(fx);
	assert_int_equal(verify(fx, "alice", "alice123"), AUTH_OK);
	assert_int_equal(verify(fx, "bob", "bob123"), AUTH_OK);
	assert_int_equal(verify(fx, "alice", "bob123"), AUTH_FAIL);
	assert_int_equal(verify(fx, "alice", "alice1234"), AUTH_FAIL);
	assert_int_equal(verify(fx, "alice", "alice12"), AUTH_FAIL);
	assert_int_equal(verify(fx, "alice", "ALICE123"), AUTH_FAIL);
	assert_int_equal(verify(fx, "alice", ""), AUTH_FAIL);
	assert_int_equal(verify(fx, "carol", "alice123"), AUTH_FAIL);
	assert_int_equal(verify(fx, "Alice", "alice123"), AUTH_FAIL);
	assert_int_equal(verify(fx, "", ""), AUTH_FAIL);
}

static void
test_shipped_demo_users(void **state)
{
	struct fixture *fx = *state;
	struct auth_settings set = { .file = "etc/users", .service = NULL };
	char *error = NULL;

	if (auth_backend_passwd_file.init(&set, &fx->auth, &error) < 0)
		fail_msg("init: %s", error);
	assert_int_equal(verify(fx, "alice", "alice123"), AUTH_OK);
	assert_int_equal(verify(fx, "bob", "bob123"), AUTH_OK);
	assert_int_equal(verify(fx, "carol", "carol123"), AUTH_OK);
	assert_int_equal(verify(fx, "carol", "carol1234"), AUTH_FAIL);
	assert_int_equal(verify(fx, "bob", "alice123"), AUTH_FAIL);
}

static void
check_hash_method(struct fixture *fx, const char *prefix)
{
	char *hash = make_hash(prefix, "s3cret pass");
	char *text;

	if (hash == NULL) {
		print_message("%s hashes not supported by this libcrypt, skipped\n", prefix);
		return;
	}
	assert_true(strncmp(hash, prefix, strlen(prefix)) == 0);
	/* A space in the password is fine in the hash; the file splits on
	   whitespace only between the two fields. */
	text = xasprintf("# hashed\nuser1 %s\nuser2 plain\n", hash);
	write_users(fx, text);
	init_ok(fx);
	assert_int_equal(verify(fx, "user1", "s3cret pass"), AUTH_OK);
	assert_int_equal(verify(fx, "user1", "s3cret pas"), AUTH_FAIL);
	assert_int_equal(verify(fx, "user1", ""), AUTH_FAIL);
	/* The hash itself is not the password. */
	assert_int_equal(verify(fx, "user1", hash), AUTH_FAIL);
	/* Unknown users also fail when the file has hashes. */
	assert_int_equal(verify(fx, "nobody", "s3cret pass"), AUTH_FAIL);
	assert_int_equal(verify(fx, "user2", "plain"), AUTH_OK);
	auth_backend_passwd_file.deinit(&fx->auth);
	assert_null(fx->auth);
	free(text);
	free(hash);
}

static void
test_sha512_crypt_hash(void **state)
{
	check_hash_method(*state, "$6$");
}

static void
test_yescrypt_hash(void **state)
{
	check_hash_method(*state, "$y$");
}

static void
test_sha256_and_bcrypt_hashes(void **state)
{
	check_hash_method(*state, "$5$");
	check_hash_method(*state, "$2b$");
}

/* Verifies user/password and asserts the result and that exactly crypts
   crypt(3) checks and plains plain-text comparisons were made. */
static void
verify_costs(struct fixture *fx, const char *user, const char *password, enum auth_result expect,
	     unsigned crypts, unsigned plains)
{
	unsigned c0, p0, c1, p1;

	passwd_file_work_counts(fx->auth, &c0, &p0);
	assert_int_equal(verify(fx, user, password), expect);
	passwd_file_work_counts(fx->auth, &c1, &p1);
	assert_int_equal(c1 - c0, crypts);
	assert_int_equal(p1 - p0, plains);
}

static void
test_plain_text_file_same_work_for_known_and_unknown_users(void **state)
{
	struct fixture *fx = *state;

	write_users(fx, "alice alice123\nbob b\n");
	init_ok(fx);
	/* one constant-time comparison each, whoever asks */
	verify_costs(fx, "alice", "alice123", AUTH_OK, 0, 1);
	verify_costs(fx, "alice", "wrong", AUTH_FAIL, 0, 1);
	verify_costs(fx, "alice", "", AUTH_FAIL, 0, 1);
	verify_costs(fx, "bob", "alice123", AUTH_FAIL, 0, 1);
	verify_costs(fx, "nobody", "alice123", AUTH_FAIL, 0, 1);
	verify_costs(fx, "zed", "", AUTH_FAIL, 0, 1);
	/* the dummy is never a password */
	verify_costs(fx, "nobody", "-unused-dummy-password-", AUTH_FAIL, 0, 1);
}

static void
test_hashed_and_mixed_files_same_work_for_every_user(void **state)
{
	struct fixture *fx = *state;
	char *hash = make_hash("$6$", "s3cret");
	char *text;

	if (hash == NULL) {
		print_message("$6$ hashes not supported by this libcrypt, skipped\n");
		skip();
	}
	text = xasprintf("hashed %s\n", hash);
	write_users(fx, text);
	init_ok(fx);
	verify_costs(fx, "hashed", "s3cret", AUTH_OK, 1, 1);
	verify_costs(fx, "hashed", "wrong", AUTH_FAIL, 1, 1);
	verify_costs(fx, "nobody", "s3cret", AUTH_FAIL, 1, 1);
	auth_backend_passwd_file.deinit(&fx->auth);
	free(text);

	/* mixed: the plain-text user pays for a hash too */
	text = xasprintf("hashed %s\nplain p4ss\n", hash);
	write_users(fx, text);
	init_ok(fx);
	verify_costs(fx, "plain", "p4ss", AUTH_OK, 1, 1);
	verify_costs(fx, "plain", "wrong", AUTH_FAIL, 1, 1);
	verify_costs(fx, "hashed", "s3cret", AUTH_OK, 1, 1);
	verify_costs(fx, "hashed", "p4ss", AUTH_FAIL, 1, 1);
	verify_costs(fx, "nobody", "p4ss", AUTH_FAIL, 1, 1);
	/* a plain user's password given for a hashed user, and the hash
	   given as a plain password: both refused */
	verify_costs(fx, "plain", hash, AUTH_FAIL, 1, 1);
	free(text);
	free(hash);
}

static void
test_malformed_lines_are_skipped(void **state)
{
	struct fixture *fx = *state;
	char *log;

	write_users(fx, "# header\n"
			"\n"
			"   \t\n"
			"alice alice123\n"
			"onlyonefield\n"
			"three fields here\n"
			"../evil evilpw\n"
			".hidden hiddenpw\n"
			"bob bob123\n"
			"bob otherpw\n"
			"dave $9$unknownmethod\n"
			"  carol\tcarol123  \r\n"
			"   # indented comment\n"
			"erin erin123");      /* no final newline */
	capture_start(fx);
	init_ok(fx);
	log = capture_end(fx);

	assert_int_equal(verify(fx, "alice", "alice123"), AUTH_OK);
	assert_int_equal(verify(fx, "carol", "carol123"), AUTH_OK);
	assert_int_equal(verify(fx, "erin", "erin123"), AUTH_OK);
	/* The first line of a duplicated user wins. */
	assert_int_equal(verify(fx, "bob", "bob123"), AUTH_OK);
	assert_int_equal(verify(fx, "bob", "otherpw"), AUTH_FAIL);
	assert_int_equal(verify(fx, "onlyonefield", ""), AUTH_FAIL);
	assert_int_equal(verify(fx, "three", "fields"), AUTH_FAIL);
	assert_int_equal(verify(fx, "three", "fields here"), AUTH_FAIL);
	assert_int_equal(verify(fx, "dave", "$9$unknownmethod"), AUTH_FAIL);

	/* Each bad line is named by file:line, and no password shows. */
	char *where;
	static const unsigned bad_lines[] = { 5, 6, 7, 8, 10, 11 };
	for (size_t i = 0; i < N_ELEMENTS(bad_lines); i++) {
		where = xasprintf("%s:%u:", fx->users, bad_lines[i]);
		if (strstr(log, where) == NULL)
			fail_msg("no warning for %s", where);
		free(where);
	}
	where = xasprintf("%s:4:", fx->users);
	assert_null(strstr(log, where));
	free(where);
	assert_null(strstr(log, "evilpw"));
	assert_null(strstr(log, "hiddenpw"));
	assert_null(strstr(log, "otherpw"));
	assert_null(strstr(log, "unknownmethod"));
	assert_null(strstr(log, "here"));
	assert_null(strstr(log, "onlyonefield"));
	free(log);
}

static void
test_file_is_reread_after_a_change(void **state)
{
	struct fixture *fx = *state;

	write_users(fx, "alice oldpass\n");
	init_ok(fx);
	assert_int_equal(verify(fx, "alice", "oldpass"), AUTH_OK);

	/* Same size, same inode: only the mtime tells. */
	rewrite_users_in_place(fx, "alice newpass\n", 10);
	assert_int_equal(verify(fx, "alice", "newpass"), AUTH_OK);
	assert_int_equal(verify(fx, "alice", "oldpass"), AUTH_FAIL);

	/* Replaced by rename (new inode), a user added and one removed. */
	write_users(fx, "bob bob123\n");
	assert_int_equal(verify(fx, "bob", "bob123"), AUTH_OK);
	assert_int_equal(verify(fx, "alice", "newpass"), AUTH_FAIL);
}

static void
test_vanished_file_is_a_temporary_failure(void **state)
{
	struct fixture *fx = *state;
	char *reason = NULL;

	write_users(fx, "alice alice123\n");
	init_ok(fx);
	assert_int_equal(unlink(fx->users), 0);
	assert_int_equal(auth_backend_passwd_file.verify(fx->auth, "alice", "alice123", &reason),
			 AUTH_TEMPFAIL);
	assert_non_null(reason);
	assert_non_null(strstr(reason, fx->users));
	assert_non_null(strstr(reason, "No such file or directory"));
	free(reason);

	/* It comes back: logins work again. */
	write_users(fx, "alice alice123\n");
	assert_int_equal(verify(fx, "alice", "alice123"), AUTH_OK);
}

static void
test_unreadable_file_after_start_is_a_temporary_failure(void **state)
{
	struct fixture *fx = *state;
	char *moved = xasprintf("%s.moved", fx->users);

	write_users(fx, "alice alice123\n");
	init_ok(fx);

	/* Something that cannot be read where the file was (works as root
	   too): no stale answer from the old table. */
	assert_int_equal(rename(fx->users, moved), 0);
	assert_int_equal(mkdir(fx->users, 0700), 0);
	assert_int_equal(verify(fx, "alice", "alice123"), AUTH_TEMPFAIL);
	assert_int_equal(rmdir(fx->users), 0);
	assert_int_equal(rename(moved, fx->users), 0);
	assert_int_equal(verify(fx, "alice", "alice123"), AUTH_OK);
	free(moved);

	if (geteuid() == 0) {
		print_message("running as root: the permission case is skipped\n");
		return;
	}
	rewrite_users_in_place(fx, "alice alice456\n", 10);
	assert_int_equal(chmod(fx->users, 0), 0);
	assert_int_equal(verify(fx, "alice", "alice123"), AUTH_TEMPFAIL);
	assert_int_equal(verify(fx, "alice", "alice456"), AUTH_TEMPFAIL);
	assert_int_equal(chmod(fx->users, 0600), 0);
	assert_int_equal(verify(fx, "alice", "alice456"), AUTH_OK);
}

static void
test_missing_file_at_init_is_an_error(void **state)
{
	struct fixture *fx = *state;
	struct auth_settings set = { .file = fx->users, .service = NULL };
	struct auth *auth = (struct auth *)1;
	char *error = NULL;

	assert_int_equal(auth_backend_passwd_file.init(&set, &auth, &error), -1);
	assert_null(auth);
	assert_non_null(error);
	assert_non_null(strstr(error, fx->users));
	assert_non_null(strstr(error, "No such file or directory"));
	free(error);

	/* A folder is not a users file. */
	set.file = fx->dir;
	assert_int_equal(auth_backend_passwd_file.init(&set, &auth, &error), -1);
	assert_non_null(strstr(error, fx->dir));
	free(error);

	set.file = NULL;
	assert_int_equal(auth_backend_passwd_file.init(&set, &auth, &error), -1);
	free(error);
}

static void
test_empty_file_knows_no_one(void **state)
{
	struct fixture *fx = *state;

	write_users(fx, "");
	init_ok(fx);
	assert_int_equal(verify(fx, "alice", "alice123"), AUTH_FAIL);
	assert_int_equal(verify(fx, "alice", ""), AUTH_FAIL);
}

/* A fake backend counting its calls, to prove what auth_verify() stops. */
static unsigned fake_calls;
static enum auth_result fake_result;

static enum auth_result
fake_verify(struct auth *auth, const char *user, const char *password, char **reason_r)
{
	fake_calls++;
	if (fake_result != AUTH_OK)
		*reason_r = xstrdup("fake reason");
	return fake_result;
}

static const struct auth_backend fake_backend = {
	.name = "fake",
	.compiled_in = true,
	.verify = fake_verify,
};

static void
test_auth_verify_refuses_bad_user_names_before_the_backend(void **state)
{
	struct auth_ctx ctx = { .backend = &fake_backend, .auth = (struct auth *)&fake_calls };
	char longuser[301], longpass[1026];

	(void)state;
	memset(longuser, 'a', sizeof(longuser) - 1);
	longuser[sizeof(longuser) - 1] = '\0';
	memset(longpass, 'p', sizeof(longpass) - 1);
	longpass[sizeof(longpass) - 1] = '\0';

	fake_calls = 0;
	fake_result = AUTH_OK;
	assert_int_equal(auth_verify(&ctx, "s1", "../bob", "pw"), AUTH_FAIL);
	assert_int_equal(auth_verify(&ctx, "s1", "a/b", "pw"), AUTH_FAIL);
	assert_int_equal(auth_verify(&ctx, "s1", "bad\x01user", "pw"), AUTH_FAIL);
	assert_int_equal(auth_verify(&ctx, "s1", "", "pw"), AUTH_FAIL);
	assert_int_equal(auth_verify(&ctx, "s1", longuser, "pw"), AUTH_FAIL);
	assert_int_equal(auth_verify(&ctx, "s1", "bob", longpass), AUTH_FAIL);
	assert_int_equal(auth_verify(&ctx, "s1", NULL, "pw"), AUTH_FAIL);
	assert_int_equal(auth_verify(&ctx, "s1", "bob", NULL), AUTH_FAIL);
	assert_int_equal(fake_calls, 0);

	/* A good name reaches the backend, whose answer is passed on. */
	assert_int_equal(auth_verify(&ctx, "s1", "bob", "pw"), AUTH_OK);
	assert_int_equal(fake_calls, 1);
	longpass[1024] = '\0';  /* 1024 octets: allowed */
	fake_result = AUTH_FAIL;
	assert_int_equal(auth_verify(&ctx, "s1", "bob", longpass), AUTH_FAIL);
	assert_int_equal(fake_calls, 2);
	fake_result = AUTH_TEMPFAIL;
	assert_int_equal(auth_verify(&ctx, "s1", "bob", "pw"), AUTH_TEMPFAIL);
	assert_int_equal(fake_calls, 3);
	/* Nonsense from a backend is not a success. */
	fake_result = (enum auth_result)42;
	assert_int_equal(auth_verify(&ctx, "s1", "bob", "pw"), AUTH_TEMPFAIL);
	assert_int_equal(fake_calls, 4);
}

static void
test_auth_verify_without_backend_is_a_temporary_failure(void **state)
{
	struct auth_ctx ctx = { .backend = NULL, .auth = NULL };

	(void)state;
	assert_int_equal(auth_verify(&ctx, "s1", "bob", "pw"), AUTH_TEMPFAIL);
	assert_int_equal(auth_verify(NULL, "s1", "bob", "pw"), AUTH_TEMPFAIL);
}

static void
test_auth_verify_with_passwd_file_logs_user_never_password(void **state)
{
	struct fixture *fx = *state;
	struct auth_ctx ctx = { .backend = &auth_backend_passwd_file };
	char *log;

	write_users(fx, "alice Pw-alice-123\n");
	init_ok(fx);
	ctx.auth = fx->auth;
	capture_start(fx);
	assert_int_equal(auth_verify(&ctx, "sess7", "alice", "Pw-alice-123"), AUTH_OK);
	assert_int_equal(auth_verify(&ctx, "sess7", "alice", "Wrong-pw-9"), AUTH_FAIL);
	assert_int_equal(auth_verify(&ctx, "sess7", "zed", "Zed-pw-5"), AUTH_FAIL);
	assert_int_equal(auth_verify(&ctx, "sess7", "../x", "Dots-pw-4"), AUTH_FAIL);
	log = capture_end(fx);
	assert_non_null(strstr(log, "sess7"));
	assert_non_null(strstr(log, "alice"));
	assert_non_null(strstr(log, "zed"));
	assert_null(strstr(log, "Pw-alice-123"));
	assert_null(strstr(log, "Wrong-pw-9"));
	assert_null(strstr(log, "Zed-pw-5"));
	assert_null(strstr(log, "Dots-pw-4"));
	free(log);
}

static void
test_str_equal_ct(void **state)
{
	(void)state;
	assert_true(auth_str_equal_ct("", ""));
	assert_true(auth_str_equal_ct("secret", "secret"));
	assert_false(auth_str_equal_ct("secret", "secreT"));
	assert_false(auth_str_equal_ct("secret", "Secret"));
	assert_false(auth_str_equal_ct("secret", "secre"));
	assert_false(auth_str_equal_ct("secre", "secret"));
	assert_false(auth_str_equal_ct("", "x"));
	assert_false(auth_str_equal_ct("x", ""));
	assert_false(auth_str_equal_ct("a", "b"));
	/* Bytes above 0x7f and the last octet count. */
	assert_false(auth_str_equal_ct("pass\xff", "pass\xfe"));
	assert_true(auth_str_equal_ct("pass\xff", "pass\xff"));
	assert_false(auth_str_equal_ct(NULL, "x"));
	assert_false(auth_str_equal_ct("x", NULL));
	assert_false(auth_str_equal_ct(NULL, NULL));
}

/* The asynchronous check (verify_start), as the server makes it: the
   answers of several checks, each once and from the loop. */
struct async_answer {
	bool called;
	enum auth_result result;
	char *reason;
};

static void
async_done(enum auth_result result, char *reason, void *ctx)
{
	struct async_answer *a = ctx;

	assert_false(a->called);
	a->called = true;
	a->result = result;
	a->reason = reason;
}

/* Runs loop until every answer of n came, or fails (bounded). */
static void
async_wait(struct event_loop *loop, struct async_answer *answers, size_t n)
{
	for (unsigned pass = 0; pass < 3000; pass++) {
		size_t done = 0;
		for (size_t i = 0; i < n; i++)
			done += answers[i].called ? 1 : 0;
		if (done == n)
			return;
		assert_int_equal(event_loop_run_once(loop, 10), 0);
	}
	fail_msg("the checks were not answered within 30 s");
}

static void
check_async(struct fixture *fx, bool with_queue)
{
	char *hash = make_hash("$6$", "s3cret");
	char *text = xasprintf("user1 %s\nuser2 plain\n", hash);
	struct event_loop *loop = event_loop_new();
	struct job_queue *queue = NULL;
	static const struct {
		const char *user, *password;
		enum auth_result result;
		const char *reason;
	} cases[] = {
		{ "user1", "s3cret", AUTH_OK, NULL },
		{ "user1", "s3cre", AUTH_FAIL, "wrong password" },
		{ "user2", "plain", AUTH_OK, NULL },
		{ "user2", "s3cret", AUTH_FAIL, "wrong password" },
		{ "nobody", "s3cret", AUTH_FAIL, "unknown user" },
	};
	struct async_answer answers[N_ELEMENTS(cases)];
	unsigned crypts, plains;
	char *error = NULL;

	assert_non_null(hash);
	write_users(fx, text);
	init_ok(fx);
	if (with_queue) {
		queue = job_queue_new(loop, 2, &error);
		assert_non_null(queue);
		job_queue_set_default(queue);
	}
	memset(answers, 0, sizeof(answers));
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		void *handle = NULL;
		assert_int_equal(auth_backend_passwd_file.verify_start(
					 fx->auth, loop, cases[i].user, cases[i].password,
					 async_done, &answers[i], &handle),
				 0);
		assert_non_null(handle);
		/* Never answered from inside the call. */
		assert_false(answers[i].called);
	}
	async_wait(loop, answers, N_ELEMENTS(cases));
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		assert_int_equal(answers[i].result, cases[i].result);
		if (cases[i].reason == NULL)
			assert_null(answers[i].reason);
		else
			assert_string_equal(answers[i].reason, cases[i].reason);
		free(answers[i].reason);
	}
	/* The same work for every user: one crypt and one comparison each. */
	passwd_file_work_counts(fx->auth, &crypts, &plains);
	assert_int_equal(crypts, N_ELEMENTS(cases));
	assert_int_equal(plains, N_ELEMENTS(cases));
	job_queue_set_default(NULL);
	job_queue_free(&queue);
	event_loop_free(&loop);
	free(text);
	free(hash);
}

static void
test_async_checks_in_jobs(void **state)
{
	check_async(*state, true);
}

static void
test_async_checks_without_a_job_queue(void **state)
{
	check_async(*state, false);
}

/* A check cancelled while its crypt_r() may run (the session went away)
   is never answered, and the loop does not wait for it; a check still
   running when the backend instance goes (a reload) is answered. */
static void
test_async_cancel_and_reload(void **state)
{
	struct fixture *fx = *state;
	char *hash = make_hash("$6$", "s3cret");
	char *text = xasprintf("user1 %s\n", hash);
	struct event_loop *loop = event_loop_new();
	struct job_queue *queue;
	struct async_answer gone = { 0 }, kept = { 0 };
	void *h1 = NULL, *h2 = NULL;
	char *error = NULL;

	write_users(fx, text);
	init_ok(fx);
	queue = job_queue_new(loop, 1, &error);
	assert_non_null(queue);
	job_queue_set_default(queue);
	assert_int_equal(auth_backend_passwd_file.verify_start(fx->auth, loop, "user1", "s3cret",
							       async_done, &gone, &h1),
			 0);
	assert_int_equal(auth_backend_passwd_file.verify_start(fx->auth, loop, "user1", "s3cret",
							       async_done, &kept, &h2),
			 0);
	auth_backend_passwd_file.verify_cancel(fx->auth, h1);
	auth_backend_passwd_file.deinit(&fx->auth);
	async_wait(loop, &kept, 1);
	assert_int_equal(kept.result, AUTH_OK);
	for (unsigned pass = 0; pass < 3000 && job_queue_pending(queue) > 0; pass++)
		assert_int_equal(event_loop_run_once(loop, 10), 0);
	assert_int_equal(job_queue_pending(queue), 0);
	assert_false(gone.called);
	job_queue_set_default(NULL);
	job_queue_free(&queue);
	event_loop_free(&loop);
	free(text);
	free(hash);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plain_password, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shipped_demo_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sha512_crypt_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_yescrypt_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sha256_and_bcrypt_hashes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_text_file_same_work_for_known_and_unknown_users,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_hashed_and_mixed_files_same_work_for_every_user,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_lines_are_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_is_reread_after_a_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vanished_file_is_a_temporary_failure, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_file_after_start_is_a_temporary_failure,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file_at_init_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_file_knows_no_one, setup, teardown),
		cmocka_unit_test(test_auth_verify_refuses_bad_user_names_before_the_backend),
		cmocka_unit_test(test_auth_verify_without_backend_is_a_temporary_failure),
		cmocka_unit_test_setup_teardown(test_auth_verify_with_passwd_file_logs_user_never_password,
						setup, teardown),
		cmocka_unit_test(test_str_equal_ct),
		cmocka_unit_test_setup_teardown(test_async_checks_in_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_checks_without_a_job_queue, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_async_cancel_and_reload, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
