/* QUOTA (RFC 9208) in process: the real server on each backend with
   quota: { storage = 2; messages = 3; }, the limits at, over and under
   their edge, across sessions and a restart, and the config checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "event.h"
#include "imap_client.h"
#include "imap_server.h"
#include "log.h"
#include "storage.h"
#include "watch.h"
#include "imap_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The backend of the group being run ("flat" or "maildir"). */
static const char *backend = "flat";

/* alice may keep 3 messages, 2 KiB. */
static int
setup(void **state)
{
	*state = harness_new("quota", backend, "quota: { storage = 2; messages = 3; };\n");
	return 0;
}

static int
teardown(void **state)
{
	harness_free(*state);
	return 0;
}

/* APPEND of a message of len octets (CRLF lines) into mailbox. */
static char *
append(struct harness *h, int s, const char *tag, const char *mailbox, size_t len)
{
	struct buf b = BUF_INIT;
	char *ans;

	buf_printf(&b, "APPEND %s {%zu+}\r\nSubject: q\r\n\r\n", mailbox, len);
	for (size_t n = strlen("Subject: q\r\n\r\n"); n < len - 2; n++)
		buf_append_c(&b, 'x');
	buf_append_str(&b, "\r\n");
	ans = cmd(h, s, tag, b.data);
	buf_free(&b);
	return ans;
}

#define EXPECT_APPEND(h, s, tag, mailbox, len, needle)                  \
	do {                                                            \
		char *ans_ = append((h), (s), (tag), (mailbox), (len)); \
		assert_contains(ans_, (needle));                        \
		free(ans_);                                             \
	} while (0)

static void
test_commands(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);

	EXPECT(h, s, "c1", "CAPABILITY", "QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE");
	login(h, s, "alice");
	EXPECT(h, s, "c2", "CREATE box", "c2 OK");
	EXPECT(h, s, "c3", "GETQUOTAROOT box",
	       "* QUOTAROOT \"box\" \"\"\r\n"
	       "* QUOTA \"\" (STORAGE 0 2 MESSAGE 0 3)\r\n");
	EXPECT(h, s, "c4", "GETQUOTA \"\"", "* QUOTA \"\" (STORAGE 0 2 MESSAGE 0 3)\r\nc4 OK");
	EXPECT(h, s, "c5", "GETQUOTA \"other\"", "c5 NO [NONEXISTENT]");
	EXPECT(h, s, "c6", "GETQUOTAROOT nosuch", "c6 NO");
	EXPECT(h, s, "c7", "SETQUOTA \"\" (STORAGE 100)", "c7 NO");
	EXPECT(h, s, "c8", "SETQUOTA \"\"", "c8 BAD");
	EXPECT(h, s, "c9", "GETQUOTA", "c9 BAD");
	EXPECT(h, s, "c10", "GETQUOTAROOT", "c10 BAD");
}

/* STATUS DELETED-STORAGE (RFC 9208 4.2): the KiB an EXPUNGE would free,
   the sizes of the \Deleted messages rounded up; also in LIST-STATUS. */
static void
test_status_deleted_storage(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);

	login(h, s, "alice");
	EXPECT(h, s, "d0", "CREATE box", "d0 OK");
	EXPECT(h, s, "d1", "STATUS box (DELETED-STORAGE)", "(DELETED-STORAGE 0)");
	EXPECT_APPEND(h, s, "d2", "box", 1500, "d2 OK [APPENDUID");
	EXPECT_APPEND(h, s, "d3", "box", 100, "d3 OK [APPENDUID");
	EXPECT(h, s, "d4", "SELECT box", "d4 OK");
	EXPECT(h, s, "d5", "STORE 1 +FLAGS.SILENT (\\Deleted)", "d5 OK");
	/* 1,500 octets and the header lines: 2 KiB, rounded up */
	EXPECT(h, s, "d6", "STATUS box (DELETED DELETED-STORAGE MESSAGES)",
	       "(DELETED 1 DELETED-STORAGE 2 MESSAGES 2)");
	EXPECT(h, s, "d7", "LIST \"\" box RETURN (STATUS (DELETED-STORAGE))",
	       "(DELETED-STORAGE 2)");
	EXPECT(h, s, "d8", "EXPUNGE", "d8 OK");
	EXPECT(h, s, "d9", "STATUS box (DELETED-STORAGE)", "(DELETED-STORAGE 0)");
	EXPECT(h, s, "d10", "STATUS box (DELETED-STORAGE", "d10 BAD");
}

static void
test_not_logged_in(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);

	EXPECT(h, s, "n1", "GETQUOTA \"\"", "n1 BAD");
	EXPECT(h, s, "n2", "GETQUOTAROOT INBOX", "n2 BAD");
}

static void
test_message_limit(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0), s2 = connect_session(h, 1);

	login(h, s, "alice");
	login(h, s2, "alice");
	EXPECT(h, s, "m0", "CREATE box", "m0 OK");
	EXPECT(h, s, "m0b", "CREATE other", "m0b OK");
	EXPECT_APPEND(h, s, "m1", "box", 100, "m1 OK [APPENDUID");
	EXPECT_APPEND(h, s, "m2", "other", 100, "m2 OK [APPENDUID");
	/* Another session's APPEND counts at once. */
	EXPECT_APPEND(h, s2, "m3", "box", 100, "m3 OK [APPENDUID");
	EXPECT(h, s, "m4", "GETQUOTA \"\"", "MESSAGE 3 3)");
	/* At the limit: one more is over it, nothing written. */
	EXPECT_APPEND(h, s, "m5", "box", 100, "m5 NO [OVERQUOTA]");
	EXPECT(h, s, "m6", "STATUS box (MESSAGES)", "(MESSAGES 2)");
	EXPECT(h, s, "m7", "SELECT box", "m7 OK");
	EXPECT(h, s, "m8", "COPY 1 other", "m8 NO [OVERQUOTA]");
	EXPECT(h, s, "m9", "STATUS other (MESSAGES)", "(MESSAGES 1)");
	/* A MOVE stays in the root: allowed at the limit. */
	EXPECT(h, s, "m10", "MOVE 1 other", "m10 OK");
	EXPECT(h, s, "m11", "GETQUOTA \"\"", "MESSAGE 3 3)");
	/* EXPUNGE frees room. */
	EXPECT(h, s, "m12", "STORE 1 +FLAGS.SILENT (\\Deleted)", "m12 OK");
	EXPECT(h, s, "m13", "EXPUNGE", "m13 OK");
	EXPECT(h, s, "m14", "GETQUOTA \"\"", "MESSAGE 2 3)");
	EXPECT_APPEND(h, s2, "m15", "box", 100, "m15 OK");
	EXPECT(h, s, "m16", "NOOP", "* 1 EXISTS");
	EXPECT(h, s, "m17", "COPY 1 other", "m17 NO [OVERQUOTA]");
	EXPECT(h, s, "m18", "GETQUOTA \"\"", "MESSAGE 3 3)");
}

static void
test_multiappend_all_or_nothing(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);

	login(h, s, "alice");
	EXPECT(h, s, "a0", "CREATE box", "a0 OK");
	EXPECT_APPEND(h, s, "a1", "box", 100, "a1 OK");
	EXPECT(h, s, "a2",
	       "APPEND box {12+}\r\nSubject: 1\r\n {12+}\r\nSubject: 2\r\n "
	       "{12+}\r\nSubject: 3\r\n",
	       "a2 NO [OVERQUOTA]");
	EXPECT(h, s, "a3", "STATUS box (MESSAGES)", "(MESSAGES 1)");
	EXPECT(h, s, "a4", "APPEND box {12+}\r\nSubject: 1\r\n {12+}\r\nSubject: 2\r\n", "a4 OK");
	EXPECT(h, s, "a5", "GETQUOTA \"\"", "MESSAGE 3 3)");
}

static void
test_storage_limit_and_restart(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);

	login(h, s, "alice");
	EXPECT(h, s, "s0", "CREATE box", "s0 OK");
	/* 2 KiB = 2048 octets: 2049 is one over. */
	EXPECT_APPEND(h, s, "s1", "box", 2049, "s1 NO [OVERQUOTA]");
	EXPECT_APPEND(h, s, "s2", "box", 2048, "s2 OK");
	EXPECT(h, s, "s3", "GETQUOTA \"\"", "(STORAGE 2 2 MESSAGE 1 3)");
	EXPECT_APPEND(h, s, "s4", "box", 20, "s4 NO [OVERQUOTA]");
	/* bob has his own root. */
	int b = connect_session(h, 1);
	login(h, b, "bob");
	EXPECT(h, b, "b1", "GETQUOTA \"\"", "(STORAGE 0 2 MESSAGE 0 3)");
	EXPECT(h, b, "b2", "CREATE box", "b2 OK");
	EXPECT_APPEND(h, b, "b3", "box", 100, "b3 OK");
	/* After a restart the usage is read again from the disk. */
	server_stop(h);
	server_start(h);
	s = connect_session(h, 0);
	login(h, s, "alice");
	EXPECT(h, s, "r1", "GETQUOTAROOT INBOX", "* QUOTA \"\" (STORAGE 2 2 MESSAGE 1 3)");
	EXPECT_APPEND(h, s, "r2", "box", 20, "r2 NO [OVERQUOTA]");
	EXPECT(h, s, "r3", "SELECT box", "r3 OK");
	EXPECT(h, s, "r4", "STORE 1 +FLAGS.SILENT (\\Deleted)", "r4 OK");
	EXPECT(h, s, "r5", "EXPUNGE", "r5 OK");
	EXPECT(h, s, "r6", "GETQUOTA \"\"", "(STORAGE 0 2 MESSAGE 0 3)");
	EXPECT_APPEND(h, s, "r7", "box", 20, "r7 OK");
}

/* Without limits there is no root (a QUOTA response needs a resource). */
static void
test_unlimited(void **state)
{
	struct harness *h = *state;
	char path[256];

	server_stop(h);
	snprintf(path, sizeof(path), "%s/imapserver.conf", h->dir);
	write_file(path, "storage: { root = \"mail\"; };\n"
			 "auth: { backend = \"passwd-file\"; file = \"users\"; };\n"
			 "quota: { storage = 0; };\n"
			 "log: { level = \"error\"; };\n");
	server_start(h);
	int s = connect_session(h, 0);
	login(h, s, "alice");
	EXPECT(h, s, "u0", "CREATE box", "u0 OK");
	EXPECT(h, s, "u1", "GETQUOTAROOT box", "* QUOTAROOT \"box\"\r\nu1 OK");
	EXPECT(h, s, "u2", "GETQUOTA \"\"", "u2 NO");
	EXPECT_APPEND(h, s, "u3", "box", 5000, "u3 OK");
}

static void
test_config_errors(void **state)
{
	struct harness *h = *state;
	const char *bad[] = {
		"quota: { storage = -1; };\n",
		"quota: { messages = 4294967296; };\n",
		"quota: { storage = \"big\"; };\n",
		"quota: { files = 3; };\n",
	};
	char path[256];

	snprintf(path, sizeof(path), "%s/bad.conf", h->dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config *cfg = NULL;
		char *error = NULL;

		write_file(path, bad[i]);
		assert_int_equal(config_load(path, &cfg, &error), -1);
		assert_non_null(error);
		assert_non_null(strstr(error, "bad.conf:1"));
		free(error);
	}
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_deleted_storage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_logged_in, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multiappend_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_limit_and_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlimited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
	};
	int failed;

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	backend = "flat";
	failed = cmocka_run_group_tests_name("flat", tests, NULL, NULL);
	backend = "maildir";
	failed += cmocka_run_group_tests_name("maildir", tests, NULL, NULL);
	return failed;
}
