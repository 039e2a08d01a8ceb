/* NOTIFY (RFC 5465) in process: the real server code on the flat
   backend, sessions on socketpairs, one mailbox changing under another
   session's NOTIFY; the parsing and its unhappy paths. */
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>


/* The lab's own mailbox file: no blank line after the headers, a
   dot-stuffed body line, "." ends each message. */
static const char lab_mailbox[] =
	"From: bob@localhost\n"
	"To: alice@localhost\n"
	"Subject: lunch\n"
	"Received: 2022-03-10 : 14 : 30\n"
	"Shall we meet at noon?\n"
	"..a line starting with a dot\n"
	".\n"
	"From: carol@localhost\n"
	"To: alice@localhost\n"
	"Subject: report\n"
	"Received: 2022-03-11 : 09 : 05\n"
	"The report is attached.\n"
	".\n";

static int
setup(void **state)
{
	struct harness *h = xcalloc(1, sizeof(*h));
	struct config *cfg;
	struct server_gen *gen;
	char path[256], *error = NULL;

	snprintf(h->dir, sizeof(h->dir), "/tmp/imapnotify.XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(path, sizeof(path), "%s/users", h->dir);
	write_file(path, "alice alice123\nbob bob123\n");
	snprintf(path, sizeof(path), "%s/mail", h->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/mail/alice", h->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/mail/alice/mymailbox.mail", h->dir);
	write_file(path, lab_mailbox);
	snprintf(path, sizeof(path), "%s/imapserver.conf", h->dir);
	write_file(path, "storage: { backend = \"flat\"; root = \"mail\"; };\n"
			 "auth: { backend = \"passwd-file\"; file = \"users\"; };\n"
			 "limits: { auth_fail_delay = 20; max_bad_commands = 100; max_line = 2048;\n"
			 "          max_literal = 100000; };\n"
			 "log: { level = \"error\"; };\n");
	if (config_load(path, &cfg, &error) < 0)
		fail_msg("config: %s", error);
	log_set_level(LOG_LEVEL_ERROR);
	h->loop = event_loop_new();
	h->watch = watch_new(h->loop);
	gen = server_gen_new(cfg, h->watch, &error);
	if (gen == NULL)
		fail_msg("gen: %s", error);
	h->server = imap_server_new(h->loop, gen, -1);
	server_gen_unref(&gen);
	for (int i = 0; i < MAX_SESSIONS; i++)
		h->fds[i] = -1;
	*state = h;
	return 0;
}

static int
teardown(void **state)
{
	struct harness *h = *state;
	char cmd[128];

	imap_server_free(&h->server);
	watch_free(&h->watch);
	event_loop_free(&h->loop);
	for (int i = 0; i < MAX_SESSIONS; i++) {
		if (h->fds[i] >= 0)
			close(h->fds[i]);
		buf_free(&h->in[i]);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	assert_int_equal(system(cmd), 0);
	free(h);
	return 0;
}


/* Runs the loop for about ms milliseconds and returns what session s
   received meanwhile (the caller frees it). */
static char *
drain(struct harness *h, int s, int ms)
{
	int64_t end = mono_ms() + ms;

	while (mono_ms() < end) {
		char chunk[65536];
		ssize_t n;

		assert_int_equal(event_loop_run_once(h->loop, 5), 0);
		while ((n = read(h->fds[s], chunk, sizeof(chunk))) > 0)
			buf_append(&h->in[s], chunk, (size_t)n);
	}
	return h->in[s].len > 0 ? buf_steal(&h->in[s]) : xstrdup("");
}

static void
test_notify_parse_and_refusals(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);

	EXPECT(h, s, "a0", "CAPABILITY", " NOTIFY");
	EXPECT(h, s, "a1", "NOTIFY NONE", "a1 BAD");   /* not logged in */
	login(h, s, "alice");
	EXPECT(h, s, "a2", "NOTIFY", "a2 BAD");
	EXPECT(h, s, "a3", "NOTIFY FROB", "a3 BAD");
	EXPECT(h, s, "a4", "NOTIFY SET", "a4 BAD");
	EXPECT(h, s, "a5", "NOTIFY SET STATUS", "a5 BAD");
	EXPECT(h, s, "a6", "NOTIFY SET (personal)", "a6 BAD");
	EXPECT(h, s, "a7", "NOTIFY SET (elsewhere (MessageNew MessageExpunge))", "a7 BAD");
	EXPECT(h, s, "a8", "NOTIFY SET (personal ())", "a8 BAD");
	/* For the selected mailbox MessageNew and MessageExpunge go
	   together and FlagChange needs both; not for the others. */
	EXPECT(h, s, "a9", "NOTIFY SET (selected (MessageNew))", "a9 BAD");
	EXPECT(h, s, "a10", "NOTIFY SET (selected (FlagChange))", "a10 BAD");
	EXPECT(h, s, "a10b", "NOTIFY SET (personal (MessageNew))", "a10b OK");
	EXPECT(h, s, "a10c", "NOTIFY SET (personal (FlagChange)) (inboxes (MessageExpunge))",
	       "a10c OK");
	EXPECT(h, s, "a11", "NOTIFY SET (selected (MessageExpunge FlagChange))", "a11 BAD");
	/* fetch-att only for the selected mailbox, never one setting \Seen */
	EXPECT(h, s, "a12", "NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
	       "a12 BAD");
	EXPECT(h, s, "a13", "NOTIFY SET (selected (MessageNew (BODY[]) MessageExpunge))",
	       "a13 BAD");
	EXPECT(h, s, "a14", "NOTIFY SET (selected (MessageNew () MessageExpunge))", "a14 BAD");
	EXPECT(h, s, "a15", "NOTIFY SET (selected (MessageNew (FROB) MessageExpunge))",
	       "a15 BAD");
	EXPECT(h, s, "a16", "NOTIFY SET (selected (MessageNew MessageExpunge)) "
	       "(selected-delayed (MessageNew MessageExpunge))", "a16 BAD");
	EXPECT(h, s, "a17", "NOTIFY SET (subtree (MessageNew MessageExpunge))", "a17 BAD");
	EXPECT(h, s, "a18", "NOTIFY SET (mailboxes () (MessageNew MessageExpunge))", "a18 BAD");
	EXPECT(h, s, "a19", "NOTIFY SET (selected INBOX (MessageNew MessageExpunge))",
	       "a19 BAD");
	/* Events we do not serve, known or not: NO [BADEVENT (what we do)]. */
	EXPECT(h, s, "b1", "NOTIFY SET (personal (AnnotationChange))",
	       "b1 NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName "
	       "SubscriptionChange)]");
	EXPECT(h, s, "b2", "NOTIFY SET (personal (MailboxName FrobChange))", "b2 NO [BADEVENT");
	EXPECT(h, s, "b3", "NOTIFY SET (selected (ServerMetadataChange))", "b3 NO [BADEVENT");
	/* The whole grammar that we serve. */
	EXPECT(h, s, "c1", "NOTIFY SET (selected (MessageNew (UID FLAGS BODY.PEEK[HEADER]) "
	       "MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge FlagChange "
	       "MailboxName SubscriptionChange))", "c1 OK");
	EXPECT(h, s, "c2", "NOTIFY SET (selected-delayed NONE) (inboxes (MessageNew "
	       "MessageExpunge)) (subscribed (MailboxName)) (subtree (Lists \"Work\") "
	       "(FlagChange MessageNew MessageExpunge)) (mailboxes Trash (MailboxName))",
	       "c2 OK");
	EXPECT(h, s, "c3", "notify set (Mailboxes inbox (messagenew messageexpunge))", "c3 OK");
	EXPECT(h, s, "c4", "NOTIFY NONE", "c4 OK");
	EXPECT(h, s, "c5", "NOTIFY NONE", "c5 OK");
	EXPECT(h, s, "c6", "NOOP", "c6 OK");
}

/* The STATUS indicator: one STATUS for each watched mailbox but the
   selected one, before the tagged OK; none without it. */
static void
test_notify_status_indicator(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans;

	login(h, s, "alice");
	EXPECT(h, s, "a1", "CREATE other", "a1 OK");
	EXPECT(h, s, "a2", "APPEND other {14+}\r\nSubject: n\r\n\r\n", "a2 OK");
	EXPECT(h, s, "a3", "NOTIFY SET STATUS (mailboxes other (MessageNew MessageExpunge))",
	       "* STATUS \"other\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ");
	ans = cmd(h, s, "a4", "NOTIFY SET STATUS (mailboxes other (MessageNew MessageExpunge "
		  "FlagChange))");
	assert_contains(ans, "UNSEEN 1 HIGHESTMODSEQ ");
	free(ans);
	ans = cmd(h, s, "a5", "NOTIFY SET (personal (MessageNew MessageExpunge))");
	assert_null(strstr(ans, "* STATUS"));
	free(ans);
	EXPECT(h, s, "a6", "SELECT other", "a6 OK");
	ans = cmd(h, s, "a7", "NOTIFY SET STATUS (personal (MessageNew MessageExpunge))");
	assert_contains(ans, "* STATUS \"INBOX\" (MESSAGES 2 ");
	assert_null(strstr(ans, "* STATUS \"other\""));
	free(ans);
}

/* Two sessions: changes to a mailbox b has not selected reach b in IDLE
   as STATUS (new mail, flags, expunge), and names as LIST. */
static void
test_notify_other_mailbox_in_idle(void **state)
{
	struct harness *h = *state;
	int a = connect_session(h, 0), b = connect_session(h, 1);
	char *ans;

	login(h, a, "alice");
	login(h, b, "alice");
	EXPECT(h, a, "a1", "CREATE other", "a1 OK");
	EXPECT(h, b, "b1", "SELECT INBOX", "b1 OK");
	EXPECT(h, b, "b2", "NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) "
	       "(personal (MessageNew MessageExpunge FlagChange MailboxName "
	       "SubscriptionChange))", "b2 OK");
	send_raw(h, b, "b3 IDLE\r\n", 9);
	free(wait_for(h, b, "+"));
	EXPECT(h, a, "a2", "APPEND other {14+}\r\nSubject: n\r\n\r\n", "a2 OK");
	ans = wait_for(h, b, "* STATUS \"other\"");
	assert_contains(ans, "* STATUS \"other\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ");
	assert_contains(ans, "UNSEEN 1 HIGHESTMODSEQ ");
	free(ans);
	EXPECT(h, a, "a3", "SELECT other", "a3 OK");
	EXPECT(h, a, "a4", "STORE 1 +FLAGS (\\Seen)", "a4 OK");
	ans = wait_for(h, b, "* STATUS \"other\"");
	assert_contains(ans, "MESSAGES 1 UIDNEXT 2 UIDVALIDITY ");
	assert_contains(ans, "UNSEEN 0");
	free(ans);
	EXPECT(h, a, "a5", "STORE 1 +FLAGS (\\Deleted)", "a5 OK");
	free(wait_for(h, b, "* STATUS \"other\""));
	EXPECT(h, a, "a6", "EXPUNGE", "a6 OK");
	ans = wait_for(h, b, "* STATUS \"other\"");
	assert_contains(ans, "* STATUS \"other\" (MESSAGES 0 UIDNEXT 2 ");
	free(ans);
	/* The selected mailbox still speaks EXISTS. */
	EXPECT(h, a, "a7", "APPEND INBOX {14+}\r\nSubject: n\r\n\r\n", "a7 OK");
	ans = wait_for(h, b, "* 3 EXISTS");
	assert_null(strstr(ans, "* STATUS \"INBOX\""));
	free(ans);
	/* MessageNew (fetch-att) was not asked for: no FETCH. */
	ans = drain(h, b, 300);
	assert_null(strstr(ans, "FETCH"));
	free(ans);
	EXPECT(h, a, "a8", "UNSELECT", "a8 OK");
	EXPECT(h, a, "a9", "CREATE fresh", "a9 OK");
	ans = wait_for(h, b, "* LIST");
	assert_contains(ans, "* LIST () \"/\" \"fresh\"\r\n");
	free(ans);
	EXPECT(h, a, "a10", "RENAME fresh renamed", "a10 OK");
	ans = wait_for(h, b, "* LIST");
	assert_contains(ans, "* LIST () \"/\" \"renamed\" (\"OLDNAME\" (\"fresh\"))\r\n");
	free(ans);
	/* Inferiors move with their parent, each told with OLDNAME. */
	EXPECT(h, a, "a10b", "CREATE renamed/kid", "a10b OK");
	free(wait_for(h, b, "* LIST"));
	EXPECT(h, a, "a10c", "RENAME renamed moved", "a10c OK");
	ans = wait_for(h, b, "* LIST () \"/\" \"moved/kid\"");
	assert_contains(ans, "* LIST () \"/\" \"moved\" (\"OLDNAME\" (\"renamed\"))\r\n");
	assert_contains(ans, "* LIST () \"/\" \"moved/kid\" (\"OLDNAME\" "
			     "(\"renamed/kid\"))\r\n");
	free(ans);
	EXPECT(h, a, "a10d", "APPEND moved/kid {14+}\r\nSubject: n\r\n\r\n", "a10d OK");
	ans = wait_for(h, b, "* STATUS \"moved/kid\"");
	assert_contains(ans, "* STATUS \"moved/kid\" (MESSAGES 1 ");
	free(ans);
	EXPECT(h, a, "a10e", "DELETE moved/kid", "a10e OK");
	free(wait_for(h, b, "* LIST"));
	EXPECT(h, a, "a10f", "RENAME moved renamed", "a10f OK");
	free(wait_for(h, b, "* LIST"));
	/* The renamed mailbox is watched under its new name. */
	EXPECT(h, a, "a11", "APPEND renamed {14+}\r\nSubject: n\r\n\r\n", "a11 OK");
	ans = wait_for(h, b, "* STATUS \"renamed\"");
	assert_contains(ans, "* STATUS \"renamed\" (MESSAGES 1 ");
	free(ans);
	EXPECT(h, a, "a12", "SUBSCRIBE renamed", "a12 OK");
	ans = wait_for(h, b, "* LIST");
	assert_contains(ans, "* LIST (\\Subscribed) \"/\" \"renamed\"\r\n");
	free(ans);
	EXPECT(h, a, "a13", "UNSUBSCRIBE renamed", "a13 OK");
	ans = wait_for(h, b, "* LIST");
	assert_contains(ans, "* LIST () \"/\" \"renamed\"\r\n");
	free(ans);
	EXPECT(h, a, "a14", "DELETE renamed", "a14 OK");
	ans = wait_for(h, b, "* LIST");
	assert_contains(ans, "* LIST (\\NonExistent) \"/\" \"renamed\"\r\n");
	free(ans);
	EXPECT_CONT(h, b, "DONE", "b3", "b3 OK");
	EXPECT(h, b, "b4", "NOTIFY NONE", "b4 OK");
	EXPECT(h, a, "a15", "APPEND other {14+}\r\nSubject: n\r\n\r\n", "a15 OK");
	ans = drain(h, b, 300);
	assert_null(strstr(ans, "STATUS"));
	free(ans);
}

/* Only the mailboxes the filters name are told of, and only the events
   asked for. */
static void
test_notify_filters(void **state)
{
	struct harness *h = *state;
	int a = connect_session(h, 0), b = connect_session(h, 1);
	char *ans;

	login(h, a, "alice");
	login(h, b, "alice");
	EXPECT(h, a, "a1", "CREATE work", "a1 OK");
	EXPECT(h, a, "a2", "CREATE work/sub", "a2 OK");
	EXPECT(h, a, "a3", "CREATE play", "a3 OK");
	EXPECT(h, b, "b1", "NOTIFY SET (subtree work (MessageNew MessageExpunge)) "
	       "(mailboxes play (MailboxName))", "b1 OK");
	EXPECT(h, a, "a4", "APPEND play {14+}\r\nSubject: n\r\n\r\n", "a4 OK");
	EXPECT(h, a, "a5", "APPEND work/sub {14+}\r\nSubject: n\r\n\r\n", "a5 OK");
	/* Between commands the session hears at once too. */
	ans = wait_for(h, b, "* STATUS \"work/sub\"");
	assert_contains(ans, "* STATUS \"work/sub\" (MESSAGES 1 ");
	assert_null(strstr(ans, "play"));
	free(ans);
	/* FlagChange not asked: a flag change alone is not told. */
	EXPECT(h, a, "a6", "SELECT work/sub", "a6 OK");
	EXPECT(h, a, "a7", "STORE 1 +FLAGS (\\Seen)", "a7 OK");
	ans = drain(h, b, 300);
	assert_null(strstr(ans, "STATUS"));
	free(ans);
	EXPECT(h, a, "a8", "CREATE work/new", "a8 OK");
	ans = drain(h, b, 300);
	assert_null(strstr(ans, "LIST"));
	free(ans);
	EXPECT(h, a, "a9", "DELETE play", "a9 OK");
	ans = wait_for(h, b, "* LIST");
	assert_contains(ans, "* LIST (\\NonExistent) \"/\" \"play\"");
	free(ans);
}

/* MessageNew (fetch-att) of the selected mailbox: the new message's
   FETCH after its EXISTS, with UID. */
static void
test_notify_selected_fetch(void **state)
{
	struct harness *h = *state;
	int a = connect_session(h, 0), b = connect_session(h, 1);
	char *ans;

	login(h, a, "alice");
	login(h, b, "alice");
	EXPECT(h, b, "b1", "SELECT INBOX", "* 2 EXISTS");
	EXPECT(h, b, "b2", "NOTIFY SET (selected (MessageNew (FLAGS "
	       "BODY.PEEK[HEADER]) MessageExpunge))", "b2 OK");
	send_raw(h, b, "b3 IDLE\r\n", 9);
	free(wait_for(h, b, "+"));
	EXPECT(h, a, "a1", "APPEND INBOX {18+}\r\nSubject: fresh\r\n\r\n", "a1 OK");
	ans = wait_for(h, b, "* 3 FETCH");
	assert_contains(ans, "* 3 EXISTS");
	assert_contains(ans, "UID 3");
	assert_contains(ans, "Subject: fresh");
	free(ans);
	EXPECT_CONT(h, b, "DONE", "b3", "b3 OK");
	/* The message stays unseen. */
	EXPECT(h, b, "b4", "FETCH 3 FLAGS", "* 3 FETCH (FLAGS (\\Recent))");
}

/* With (selected ...) the selected mailbox's changes come between
   commands too; EXPUNGE only with "selected", not "selected-delayed". */
static void
test_notify_selected_between_commands(void **state)
{
	struct harness *h = *state;
	int a = connect_session(h, 0), b = connect_session(h, 1);
	char *ans;

	login(h, a, "alice");
	login(h, b, "alice");
	EXPECT(h, a, "a1", "SELECT INBOX", "a1 OK");
	EXPECT(h, b, "b1", "SELECT INBOX", "* 2 EXISTS");
	EXPECT(h, b, "b2", "NOTIFY SET (selected-delayed (MessageNew MessageExpunge))",
	       "b2 OK");
	EXPECT(h, a, "a2", "APPEND INBOX {14+}\r\nSubject: n\r\n\r\n", "a2 OK");
	ans = wait_for(h, b, "* 3 EXISTS");
	assert_contains(ans, "* 3 EXISTS");
	free(ans);
	EXPECT(h, a, "a3", "STORE 1 +FLAGS.SILENT (\\Deleted)", "a3 OK");
	EXPECT(h, a, "a4", "EXPUNGE", "a4 OK");
	ans = drain(h, b, 300);
	assert_null(strstr(ans, "EXPUNGE"));
	free(ans);
	EXPECT(h, b, "b3", "NOOP", "* 1 EXPUNGE");
	EXPECT(h, b, "b4", "NOTIFY SET (selected (MessageNew MessageExpunge))", "b4 OK");
	EXPECT(h, a, "a5", "STORE 1 +FLAGS.SILENT (\\Deleted)", "a5 OK");
	EXPECT(h, a, "a6", "EXPUNGE", "a6 OK");
	ans = wait_for(h, b, "* 1 EXPUNGE");
	assert_contains(ans, "* 1 EXPUNGE");
	free(ans);
	/* Without NOTIFY: at the next command, as before. */
	EXPECT(h, b, "b5", "NOTIFY NONE", "b5 OK");
	EXPECT(h, a, "a7", "APPEND INBOX {14+}\r\nSubject: n\r\n\r\n", "a7 OK");
	ans = drain(h, b, 300);
	assert_null(strstr(ans, "EXISTS"));
	free(ans);
	EXPECT(h, b, "b6", "NOOP", "* 2 EXISTS");
}

/* A delivery by another process (appending to the flat mail file)
   reaches a NOTIFY session through the file watches. */
static void
test_notify_other_process(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char path[256];
	char *ans;

	login(h, s, "alice");
	EXPECT(h, s, "a1", "CREATE other", "a1 OK");
	EXPECT(h, s, "a2", "NOTIFY SET (inboxes (MessageNew MessageExpunge))", "a2 OK");
	EXPECT(h, s, "a3", "SELECT other", "a3 OK");
	send_raw(h, s, "a4 IDLE\r\n", 9);
	free(wait_for(h, s, "+"));
	snprintf(path, sizeof(path), "%s/mail/alice/mymailbox.mail", h->dir);
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs("From: dave@localhost\nTo: alice@localhost\nSubject: late\n"
	      "Received: 2022-03-12 : 10 : 00\nhello\n.\n", f);
	assert_int_equal(fclose(f), 0);
	ans = wait_for(h, s, "* STATUS \"INBOX\"");
	assert_contains(ans, "* STATUS \"INBOX\" (MESSAGES 3 UIDNEXT 4 ");
	free(ans);
	EXPECT_CONT(h, s, "DONE", "a4", "a4 OK");
}

/* A burst of changes is told in a bounded number of STATUS lines. */
static void
test_notify_burst_coalesced(void **state)
{
	struct harness *h = *state;
	int a = connect_session(h, 0), b = connect_session(h, 1);
	char *ans, *p;
	int lines = 0;

	login(h, a, "alice");
	login(h, b, "alice");
	EXPECT(h, a, "a1", "CREATE other", "a1 OK");
	EXPECT(h, b, "b1", "NOTIFY SET (personal (MessageNew MessageExpunge))", "b1 OK");
	send_raw(h, b, "b2 IDLE\r\n", 9);
	free(wait_for(h, b, "+"));
	/* 200 APPENDs pipelined in one write: handled in one pass or a few. */
	struct buf burst = BUF_INIT;
	for (int i = 0; i < 200; i++)
		buf_printf(&burst, "x%d APPEND other {14+}\r\nSubject: n\r\n\r\n\r\n", i);
	send_raw(h, a, burst.data, burst.len);
	buf_free(&burst);
	ans = wait_for(h, a, "x199 ");
	assert_contains(ans, "x199 OK");
	free(ans);
	ans = wait_for(h, b, "* STATUS \"other\" (MESSAGES 200 ");
	for (p = ans; (p = strstr(p, "* STATUS")) != NULL; p++)
		lines++;
	if (lines == 0)
		fail_msg("no STATUS in:\n%s", ans);
	assert_true(lines < 200);
	free(ans);
	EXPECT_CONT(h, b, "DONE", "b2", "b2 OK");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_notify_parse_and_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_status_indicator, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_other_mailbox_in_idle, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_notify_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_selected_fetch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_selected_between_commands, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_notify_other_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_burst_coalesced, setup, teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
