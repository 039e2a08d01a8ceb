/* UIDONLY (RFC 9586) in process: the real server on each backend, the
   commands that take message numbers refused with BAD [UIDREQUIRED],
   "* uid UIDFETCH" answers (solicited, after STORE, and another
   session's flag changes), VANISHED for expunges. */
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

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The backend of the group being run ("flat" or "maildir"). */
static const char *backend = "flat";

static int
setup(void **state)
{
	*state = harness_new("uidonly", backend, "");
	return 0;
}

static int
teardown(void **state)
{
	harness_free(*state);
	return 0;
}

static void
append_msg(struct harness *h, int s, const char *tag, const char *subject)
{
	char *body = xasprintf("Subject: %s\r\n\r\nbody of %s\r\n", subject, subject);
	char *c = xasprintf("APPEND INBOX {%zu+}\r\n%s", strlen(body), body);
	char *ans = cmd(h, s, tag, c);

	assert_non_null(strstr(ans, " OK"));
	free(ans);
	free(c);
	free(body);
}

#define EXPECT_NOT(h, s, tag, command, needle)                                 \
	do {                                                                    \
		char *ans_ = cmd((h), (s), (tag), (command));                    \
		if (strstr(ans_, (needle)) != NULL)                              \
			fail_msg("did not expect \"%s\" in:\n%s", (needle), ans_); \
		free(ans_);                                                      \
	} while (0)

static void
test_refused(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);

	EXPECT(h, s, "a0", "CAPABILITY", " UIDONLY");
	login(h, s, "alice");
	append_msg(h, s, "a1", "one");
	append_msg(h, s, "a2", "two");
	EXPECT(h, s, "a3", "ENABLE UIDONLY", "* ENABLED UIDONLY\r\na3 OK");
	EXPECT(h, s, "a4", "ENABLE UIDONLY", "* ENABLED\r\na4 OK");
	EXPECT(h, s, "a5", "CREATE other", "a5 OK");
	EXPECT_NOT(h, s, "a6", "EXAMINE INBOX", "[UNSEEN ");
	EXPECT_NOT(h, s, "a7", "SELECT INBOX", "[UNSEEN ");
	EXPECT(h, s, "a8", "NOOP", "a8 OK");
	EXPECT(h, s, "b1", "FETCH 1 (FLAGS)", "b1 BAD [UIDREQUIRED]");
	EXPECT(h, s, "b2", "STORE 1 +FLAGS (\\Seen)", "b2 BAD [UIDREQUIRED]");
	EXPECT(h, s, "b3", "COPY 1 other", "b3 BAD [UIDREQUIRED]");
	EXPECT(h, s, "b4", "MOVE 1 other", "b4 BAD [UIDREQUIRED]");
	EXPECT(h, s, "b5", "SEARCH ALL", "b5 BAD [UIDREQUIRED]");
	EXPECT(h, s, "b6", "SORT (DATE) UTF-8 ALL", "b6 BAD [UIDREQUIRED]");
	EXPECT(h, s, "b7", "THREAD REFERENCES UTF-8 ALL", "b7 BAD [UIDREQUIRED]");
	/* message numbers inside a UID command's search program */
	EXPECT(h, s, "b8", "UID SEARCH 1:2", "b8 BAD [UIDREQUIRED]");
	EXPECT(h, s, "b9", "UID SEARCH OR SEEN NOT 2", "b9 BAD [UIDREQUIRED]");
	EXPECT(h, s, "b10", "UID SORT (DATE) UTF-8 1", "b10 BAD [UIDREQUIRED]");
	EXPECT(h, s, "b11", "UID SEARCH UID 1:2", "* SEARCH 1 2\r\nb11 OK");
	EXPECT(h, s, "b12", "UID SEARCH RETURN (ALL) ALL", "ALL 1:2");
	/* and in QRESYNC's sequence match data */
	EXPECT(h, s, "b13", "ENABLE QRESYNC", "b13 OK");
	EXPECT(h, s, "b14", "SELECT INBOX (QRESYNC (1 1 1:2 (1:2 1:2)))",
	       "b14 BAD [UIDREQUIRED]");
	EXPECT(h, s, "b15", "SELECT INBOX", "b15 OK");
	EXPECT(h, s, "b16", "EXPUNGE", "b16 OK");
	EXPECT(h, s, "b17", "UID FETCH 1 (FLAGS)", "b17 OK");

	/* another session has not enabled it */
	int s2 = connect_session(h, 1);
	login(h, s2, "alice");
	EXPECT(h, s2, "o1", "SELECT INBOX", "* OK [UNSEEN 1]");
	EXPECT(h, s2, "o2", "FETCH 1 (FLAGS)", "* 1 FETCH (FLAGS");
}

static void
test_responses(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0), s2 = connect_session(h, 1);

	login(h, s, "alice");
	login(h, s2, "alice");
	for (int i = 0; i < 4; i++) {
		char tag[8];
		snprintf(tag, sizeof(tag), "p%d", i);
		append_msg(h, s, tag, tag);
	}
	EXPECT(h, s, "u0", "CREATE other", "u0 OK");
	EXPECT(h, s, "u1", "SELECT INBOX", "* 4 EXISTS");
	/* enabled with the mailbox selected: at once */
	EXPECT(h, s, "u2", "ENABLE UIDONLY", "u2 OK");
	EXPECT(h, s, "u3", "UID FETCH 1:2 (FLAGS)",
	       "* 1 UIDFETCH (FLAGS (\\Recent))\r\n* 2 UIDFETCH (FLAGS (\\Recent))\r\nu3 OK");
	EXPECT(h, s, "u4", "UID FETCH 2 (UID RFC822.SIZE)", "* 2 UIDFETCH (UID 2 RFC822.SIZE ");
	EXPECT(h, s, "u5", "UID FETCH 3 (EMAILID)", "* 3 UIDFETCH (EMAILID (M");
	EXPECT_NOT(h, s, "u6", "UID FETCH 1:* (FLAGS)", " FETCH ");
	EXPECT(h, s, "u7", "UID STORE 1 +FLAGS (\\Deleted)", "* 1 UIDFETCH (FLAGS (\\Deleted \\Recent))");
	EXPECT(h, s, "u8", "UID STORE 1 +FLAGS.SILENT (\\Seen)", "u8 OK");
	/* the session's RECENT count drops with it, and is told */
	EXPECT(h, s, "u9", "UID EXPUNGE 1", "* VANISHED 1\r\n* 3 RECENT\r\nu9 OK");
	EXPECT(h, s, "u10", "UID MOVE 2 other", "* VANISHED 2\r\n");
	EXPECT(h, s, "u11", "UID COPY 3 other", "[COPYUID ");

	/* what another session does */
	EXPECT(h, s2, "o1", "SELECT INBOX", "* 2 EXISTS");
	EXPECT(h, s2, "o2", "STORE 1 +FLAGS (\\Flagged)", "* 1 FETCH (FLAGS (\\Flagged))");
	EXPECT(h, s2, "o3", "STORE 2 +FLAGS.SILENT (\\Deleted)", "o3 OK");
	EXPECT(h, s2, "o4", "EXPUNGE", "* 2 EXPUNGE");
	EXPECT(h, s, "u12", "NOOP", "* 3 UIDFETCH (FLAGS (\\Flagged \\Recent))");
	EXPECT(h, s, "u13", "NOOP", "u13 OK");
	EXPECT(h, s2, "o5", "STORE 1 -FLAGS (\\Flagged)", "o5 OK");
	EXPECT(h, s2, "o6", "UID STORE 3 +FLAGS.SILENT (\\Deleted)", "o6 OK");
	EXPECT(h, s2, "o7", "UID EXPUNGE 3", "* 1 EXPUNGE");
	char *ans = cmd(h, s, "u14", "NOOP");
	assert_contains(ans, "* VANISHED 3\r\n");
	assert_null(strstr(ans, "EXPUNGE"));
	free(ans);

	/* NOTIFY's MessageNew (fetch-att) for the selected mailbox */
	EXPECT(h, s, "n1", "NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge))",
	       "n1 OK");
	append_msg(h, s2, "o8", "late");
	EXPECT(h, s, "n2", "NOOP", "* 5 UIDFETCH (UID 5 FLAGS (");
	EXPECT(h, s, "n3", "NOTIFY NONE", "n3 OK");
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_responses, setup, teardown),
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
