/* Every IMAP command's happy and unhappy paths, in process: the real
   server code on the flat backend and passwd-file auth, one end of a
   socketpair per session, the event loop driven step by step. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "event.h"
#include "imap_server.h"
#include "log.h"
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SESSIONS 4

struct harness {
	char dir[64];
	struct event_loop *loop;
	struct watch *watch;
	struct imap_server *server;
	int fds[MAX_SESSIONS];
	struct buf in[MAX_SESSIONS];
};

static void
write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

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

	snprintf(h->dir, sizeof(h->dir), "/tmp/imapcmds.XXXXXX");
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
			 "limits: { auth_fail_delay = 20; max_bad_commands = 5; max_line = 2048;\n"
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

/* Runs the loop until session s has received a line starting with
   until (or 3 s pass). Returns everything received, which the caller
   frees. */
static char *
wait_for(struct harness *h, int s, const char *until)
{
	int64_t end = mono_ms() + 3000;

	while (mono_ms() < end) {
		char chunk[65536];
		ssize_t n;

		assert_int_equal(event_loop_run_once(h->loop, 5), 0);
		while ((n = read(h->fds[s], chunk, sizeof(chunk))) > 0)
			buf_append(&h->in[s], chunk, (size_t)n);
		if (h->in[s].len == 0)
			continue;
		if (n == 0 && until == NULL)
			break;
		if (until == NULL)
			continue;
		/* A complete line that starts with until. */
		const char *p = h->in[s].data;
		for (;;) {
			const char *eol = strstr(p, "\r\n");
			if (eol == NULL)
				break;
			if (strncmp(p, until, strlen(until)) == 0)
				return buf_steal(&h->in[s]);
			p = eol + 2;
		}
	}
	return buf_steal(&h->in[s]);
}

static int
connect_session(struct harness *h, int s)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fd_set_nonblock_cloexec(sv[0]), 0);
	assert_int_equal(fd_set_nonblock_cloexec(sv[1]), 0);
	h->fds[s] = sv[1];
	imap_server_accept_fd(h->server, sv[0], "test");
	char *greeting = wait_for(h, s, "* OK");
	assert_non_null(strstr(greeting, "* OK [CAPABILITY IMAP4rev1"));
	free(greeting);
	return s;
}

static void
send_raw(struct harness *h, int s, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(h->fds[s], data, len);
		if (n < 0 && errno == EAGAIN) {
			assert_int_equal(event_loop_run_once(h->loop, 5), 0);
			continue;
		}
		assert_true(n > 0);
		data += n;
		len -= (size_t)n;
	}
}

/* Sends "tag command" and returns the whole answer up to the tagged line. */
static char *
cmd(struct harness *h, int s, const char *tag, const char *command)
{
	char *line = xasprintf("%s %s\r\n", tag, command);
	char *until = xasprintf("%s ", tag);
	char *answer;

	send_raw(h, s, line, strlen(line));
	answer = wait_for(h, s, until);
	free(line);
	free(until);
	return answer;
}

#define assert_contains(hay, needle)                                                   \
	do {                                                                            \
		if (strstr((hay), (needle)) == NULL)                                    \
			fail_msg("expected \"%s\" in:\n%s", (needle), (hay));           \
	} while (0)

#define EXPECT(h, s, tag, command, needle)                                              \
	do {                                                                            \
		char *ans_ = cmd((h), (s), (tag), (command));                            \
		assert_contains(ans_, (needle));                                         \
		free(ans_);                                                              \
	} while (0)

/* Sends a continuation (literal data, an AUTHENTICATE response, DONE)
   and waits for the tagged answer of tag. */
#define EXPECT_CONT(h, s, data, tag, needle)                                           \
	do {                                                                            \
		char *line_ = xasprintf("%s\r\n", (data));                               \
		send_raw((h), (s), line_, strlen(line_));                               \
		free(line_);                                                             \
		char *ans_ = wait_for((h), (s), tag " ");                                \
		assert_contains(ans_, (needle));                                         \
		free(ans_);                                                              \
	} while (0)

static void
login(struct harness *h, int s, const char *user)
{
	char *c = xasprintf("LOGIN %s %s123", user, user);
	EXPECT(h, s, "L1", c, "L1 OK");
	free(c);
}

static void
test_any_state_commands(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);

	EXPECT(h, s, "a1", "CAPABILITY", "* CAPABILITY IMAP4rev1");
	EXPECT(h, s, "a1b", "CAPABILITY", "AUTH=PLAIN");
	EXPECT(h, s, "a2", "NOOP", "a2 OK");
	EXPECT(h, s, "a3", "ID NIL", "* ID (");
	EXPECT(h, s, "a4", "ID", "a4 BAD");
	EXPECT(h, s, "a5", "FROBNICATE", "a5 BAD Unknown command");
	EXPECT(h, s, "a6", "LOGOUT", "* BYE");
}

static void
test_login_and_authenticate(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);

	EXPECT(h, s, "a1", "SELECT INBOX", "a1 BAD Log in first");
	EXPECT(h, s, "a2", "LOGIN alice wrong", "a2 NO [AUTHENTICATIONFAILED]");
	EXPECT(h, s, "a3", "LOGIN ../bob bob123", "a3 NO [AUTHENTICATIONFAILED]");
	EXPECT(h, s, "a4", "LOGIN alice", "a4 BAD");
	/* AUTHENTICATE PLAIN with SASL-IR: "\0alice\0alice123". */
	EXPECT(h, s, "a5", "AUTHENTICATE PLAIN AGFsaWNlAGFsaWNlMTIz", "a5 OK [CAPABILITY");
	EXPECT(h, s, "a6", "LOGIN alice alice123", "a6 BAD Command not valid");
	EXPECT(h, s, "a7", "CAPABILITY", "a7 OK");

	/* The continuation form, and a bad base64 answer. */
	s = connect_session(h, 1);
	send_raw(h, s, "b1 AUTHENTICATE PLAIN\r\n", 23);
	char *plus = wait_for(h, s, "+");
	assert_contains(plus, "+ ");
	free(plus);
	EXPECT_CONT(h, s, "!!!notbase64", "b1", "b1 BAD");
	send_raw(h, s, "b2 AUTHENTICATE PLAIN\r\n", 23);
	free(wait_for(h, s, "+"));
	EXPECT_CONT(h, s, "*", "b2", "b2 BAD Authentication aborted");
	EXPECT(h, s, "b3", "AUTHENTICATE CRAM-MD5", "b3 NO");
	/* authzid other than the user is refused. */
	EXPECT(h, s, "b4", "AUTHENTICATE PLAIN Ym9iAGFsaWNlAGFsaWNlMTIz", "b4 NO");
	/* Three failures end the session. */
	s = connect_session(h, 2);
	EXPECT(h, s, "c1", "LOGIN alice x", "c1 NO");
	EXPECT(h, s, "c2", "LOGIN alice y", "c2 NO");
	EXPECT(h, s, "c3", "LOGIN alice z", "* BYE");
}

static void
test_select_lab_mailbox_and_fetch(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans;

	login(h, s, "alice");
	EXPECT(h, s, "a0", "SELECT nosuch", "a0 NO [NONEXISTENT]");
	ans = cmd(h, s, "a1", "SELECT inbox");
	assert_contains(ans, "* 2 EXISTS");
	assert_contains(ans, "* 2 RECENT");
	assert_contains(ans, "* OK [UIDVALIDITY ");
	assert_contains(ans, "* OK [UIDNEXT 3]");
	assert_contains(ans, "* OK [UNSEEN 1]");
	assert_contains(ans, "\\*)]");
	assert_contains(ans, "a1 OK [READ-WRITE]");
	free(ans);
	/* The lab's message as IMAP serves it: a blank line inserted,
	   CRLF, the dot unstuffed. */
	ans = cmd(h, s, "a2", "FETCH 1 (RFC822.SIZE BODY.PEEK[])");
	const char *expect = "From: bob@localhost\r\n"
			     "To: alice@localhost\r\n"
			     "Subject: lunch\r\n"
			     "Received: 2022-03-10 : 14 : 30\r\n"
			     "\r\n"
			     "Shall we meet at noon?\r\n"
			     ".a line starting with a dot\r\n";
	char size[64];
	snprintf(size, sizeof(size), "RFC822.SIZE %zu", strlen(expect));
	assert_contains(ans, size);
	assert_contains(ans, expect);
	assert_contains(ans, "a2 OK");
	free(ans);
	ans = cmd(h, s, "a3", "FETCH 1:2 (FLAGS ENVELOPE)");
	assert_contains(ans, "\"lunch\"");
	assert_contains(ans, "((NIL NIL \"bob\" \"localhost\"))");
	assert_contains(ans, "* 2 FETCH");
	free(ans);
	ans = cmd(h, s, "a4", "FETCH 2 BODY.PEEK[HEADER.FIELDS (SUBJECT)]");
	assert_contains(ans, "Subject: report\r\n\r\n");
	free(ans);
	/* BODY[] without PEEK sets \Seen and says so. */
	ans = cmd(h, s, "a5", "FETCH 2 BODY[TEXT]<0.10>");
	assert_contains(ans, "BODY[TEXT]<0> {10}\r\nThe report");
	assert_contains(ans, "\\Seen");
	free(ans);
	EXPECT(h, s, "a6", "FETCH 3 FLAGS", "a6 BAD");
	EXPECT(h, s, "a7", "FETCH 1 (FLAGS", "a7 BAD");
	EXPECT(h, s, "a8", "FETCH 1 NOSUCHITEM", "a8 BAD");
	EXPECT(h, s, "a9", "UID FETCH 1:* UID", "* 2 FETCH (UID 2)");
	EXPECT(h, s, "a10", "UID FETCH 99 UID", "a10 OK");
	EXPECT(h, s, "a11", "FETCH 1 INTERNALDATE", "INTERNALDATE \"10-Mar-2022 14:30:00");
}

static void
test_search_store_expunge(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);

	login(h, s, "alice");
	EXPECT(h, s, "a1", "SELECT INBOX", "a1 OK");
	EXPECT(h, s, "a2", "SEARCH FROM carol", "* SEARCH 2\r\n");
	EXPECT(h, s, "a3", "SEARCH SUBJECT lunch", "* SEARCH 1\r\n");
	EXPECT(h, s, "a4", "UID SEARCH ALL", "* SEARCH 1 2\r\n");
	EXPECT(h, s, "a5", "SEARCH CHARSET KOI8-R ALL", "a5 NO [BADCHARSET");
	EXPECT(h, s, "a6", "SEARCH NOSUCHKEY", "a6 BAD");
	EXPECT(h, s, "a7", "STORE 1 +FLAGS (\\Deleted $Later)", "* 1 FETCH (FLAGS (");
	EXPECT(h, s, "a8", "SEARCH DELETED", "* SEARCH 1\r\n");
	EXPECT(h, s, "a9", "SEARCH KEYWORD $Later", "* SEARCH 1\r\n");
	EXPECT(h, s, "a10", "STORE 1 FLAGS.SILENT (\\Deleted)", "a10 OK");
	EXPECT(h, s, "a11", "STORE 1 +FLAGS (\\Recent)", "a11 BAD");
	EXPECT(h, s, "a12", "STORE 1 BOGUS (\\Seen)", "a12 BAD");
	EXPECT(h, s, "a13", "STORE 5 +FLAGS (\\Seen)", "a13 BAD");
	EXPECT(h, s, "a14", "EXPUNGE", "* 1 EXPUNGE\r\n");
	EXPECT(h, s, "a15", "SEARCH ALL", "* SEARCH 1\r\n");
	EXPECT(h, s, "a16", "UID SEARCH ALL", "* SEARCH 2\r\n");
	EXPECT(h, s, "a17", "LOGOUT", "a17 OK");

	/* The expunge and the flags persisted: a new session sees one
	   message with UID 2. */
	s = connect_session(h, 1);
	login(h, s, "alice");
	EXPECT(h, s, "b1", "EXAMINE INBOX", "* 1 EXISTS");
	EXPECT(h, s, "b2", "UID FETCH 2 FLAGS", "* 1 FETCH (UID 2 FLAGS (");
	EXPECT(h, s, "b3", "STORE 1 +FLAGS (\\Seen)", "b3 NO [READ-ONLY]");
	EXPECT(h, s, "b4", "EXPUNGE", "b4 NO [READ-ONLY]");
}

static void
test_append_copy_and_mailboxes(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans;

	login(h, s, "alice");
	EXPECT(h, s, "a1", "CREATE Sent", "a1 OK");
	EXPECT(h, s, "a2", "CREATE Sent", "a2 NO [ALREADYEXISTS]");
	EXPECT(h, s, "a3", "CREATE ../escape", "a3 NO");
	EXPECT(h, s, "a4", "CREATE INBOX", "a4 NO");
	EXPECT(h, s, "a5", "CREATE Work/Project", "a5 OK");
	ans = cmd(h, s, "a6", "LIST \"\" *");
	assert_contains(ans, "\"/\" \"INBOX\"");
	assert_contains(ans, "\"/\" \"Sent\"");
	assert_contains(ans, "\"/\" \"Work/Project\"");
	free(ans);
	ans = cmd(h, s, "a7", "LIST \"\" %");
	assert_contains(ans, "\"Work\"");
	assert_null(strstr(ans, "Work/Project"));
	free(ans);
	EXPECT(h, s, "a8", "LIST \"\" \"\"", "* LIST (\\Noselect) \"/\" \"\"");
	/* APPEND with a synchronizing literal: the server asks for it. */
	send_raw(h, s, "a9 APPEND Sent (\\Seen) {20}\r\n", 29);
	ans = wait_for(h, s, "+");
	assert_contains(ans, "+ ");
	free(ans);
	EXPECT_CONT(h, s, "Subject: hi\r\n\r\nyo!\r\n", "a9", "a9 OK [APPENDUID ");
	/* LITERAL+: no continuation. */
	EXPECT(h, s, "a10", "APPEND Sent {14+}\r\nSubject: x\r\n\r\n", "a10 OK [APPENDUID ");
	EXPECT(h, s, "a11", "APPEND Nowhere {3+}\r\nx\r\n", "a11 NO [TRYCREATE]");
	EXPECT(h, s, "a12", "APPEND Sent {0+}\r\n", "a12 NO");
	EXPECT(h, s, "a13", "STATUS Sent (MESSAGES UNSEEN UIDNEXT)",
	       "* STATUS \"Sent\" (MESSAGES 2 UNSEEN 1 UIDNEXT 3)");
	EXPECT(h, s, "a14", "STATUS Sent (BOGUS)", "a14 BAD");
	EXPECT(h, s, "a15", "STATUS Nope (MESSAGES)", "a15 NO [NONEXISTENT]");
	EXPECT(h, s, "a16", "SELECT INBOX", "a16 OK");
	EXPECT(h, s, "a17", "COPY 1:2 Sent", "a17 OK [COPYUID ");
	EXPECT(h, s, "a18", "COPY 1 Nowhere", "a18 NO [TRYCREATE]");
	EXPECT(h, s, "a19", "STATUS Sent (MESSAGES)", "(MESSAGES 4)");
	ans = cmd(h, s, "a20", "EXAMINE Sent");
	assert_contains(ans, "* 4 EXISTS");
	free(ans);
	EXPECT(h, s, "a21", "FETCH 1 BODY[]", "yo!");
	EXPECT(h, s, "a22", "RENAME Sent Archive", "a22 NO [INUSE]");
	EXPECT(h, s, "a23", "UNSELECT", "a23 OK");
	EXPECT(h, s, "a24", "RENAME Sent Archive", "a24 OK");
	EXPECT(h, s, "a25", "STATUS Archive (MESSAGES)", "(MESSAGES 4)");
	EXPECT(h, s, "a26", "DELETE Archive", "a26 OK");
	EXPECT(h, s, "a27", "DELETE Archive", "a27 NO");
	EXPECT(h, s, "a28", "DELETE INBOX", "a28 NO");
	EXPECT(h, s, "a29", "SUBSCRIBE Work/Project", "a29 OK");
	EXPECT(h, s, "a30", "LSUB \"\" *", "* LSUB () \"/\" \"Work/Project\"");
	EXPECT(h, s, "a31", "UNSUBSCRIBE Work/Project", "a31 OK");
	ans = cmd(h, s, "a32", "LSUB \"\" *");
	assert_null(strstr(ans, "Work/Project"));
	free(ans);
	EXPECT(h, s, "a33", "NAMESPACE", "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	EXPECT(h, s, "a34", "CLOSE", "a34 BAD");
}

static void
test_two_sessions_idle_sees_expunge_at_once(void **state)
{
	struct harness *h = *state;
	int a = connect_session(h, 0), b = connect_session(h, 1);
	char *ans;

	login(h, a, "alice");
	login(h, b, "alice");
	EXPECT(h, a, "a1", "SELECT INBOX", "a1 OK");
	EXPECT(h, b, "b1", "SELECT INBOX", "b1 OK");
	send_raw(h, b, "b2 IDLE\r\n", 9);
	free(wait_for(h, b, "+"));
	EXPECT(h, a, "a2", "STORE 1 +FLAGS.SILENT (\\Deleted)", "a2 OK");
	ans = wait_for(h, b, "* 1 FETCH");
	assert_contains(ans, "\\Deleted");
	free(ans);
	EXPECT(h, a, "a3", "EXPUNGE", "* 1 EXPUNGE");
	ans = wait_for(h, b, "* 1 EXPUNGE");
	assert_contains(ans, "* 1 EXPUNGE");
	free(ans);
	EXPECT(h, a, "a4", "APPEND INBOX {14+}\r\nSubject: n\r\n\r\n", "a4 OK");
	ans = wait_for(h, b, "* 2 EXISTS");
	assert_contains(ans, "* 2 EXISTS");
	free(ans);
	EXPECT_CONT(h, b, "DONE", "b2", "b2 OK");
	/* A session not in IDLE hears of changes at its next command, and
	   never gets EXPUNGE during FETCH. */
	EXPECT(h, a, "a5", "STORE 2 +FLAGS.SILENT (\\Deleted)", "a5 OK");
	EXPECT(h, a, "a6", "EXPUNGE", "a6 OK");
	ans = cmd(h, b, "b3", "FETCH 1 FLAGS");
	assert_null(strstr(ans, "EXPUNGE"));
	free(ans);
	EXPECT(h, b, "b4", "NOOP", "* 2 EXPUNGE");
}

/* Another process appends to the lab file (as the lab's smtpmail or
   `cat >>` would): a session in IDLE hears of it through file watching. */
static void
test_append_by_another_process_reaches_idle(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char path[256];
	char *ans;

	login(h, s, "alice");
	EXPECT(h, s, "a1", "SELECT INBOX", "* 2 EXISTS");
	send_raw(h, s, "a2 IDLE\r\n", 9);
	free(wait_for(h, s, "+"));
	snprintf(path, sizeof(path), "%s/mail/alice/mymailbox.mail", h->dir);
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs("From: dave@localhost\nTo: alice@localhost\nSubject: late\n"
	      "Received: 2022-03-12 : 10 : 00\nhello\n.\n", f);
	assert_int_equal(fclose(f), 0);
	ans = wait_for(h, s, "* 3 EXISTS");
	assert_contains(ans, "* 3 EXISTS");
	free(ans);
	EXPECT_CONT(h, s, "DONE", "a2", "a2 OK");
	EXPECT(h, s, "a3", "FETCH 3 BODY.PEEK[HEADER.FIELDS (SUBJECT)]", "Subject: late");
}

static void
test_bad_input_closes_or_answers(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans;

	/* Garbage gets BAD and the session goes on. */
	send_raw(h, s, "\x01\x02\xff garbage\r\n", 13);
	ans = wait_for(h, s, "* BAD");
	free(ans);
	EXPECT(h, s, "a1", "NOOP", "a1 OK");
	/* A literal over max_literal: answered, then closed. */
	ans = cmd(h, s, "a2", "APPEND INBOX {999999999}");
	assert_contains(ans, "a2 BAD");
	assert_contains(ans, "* BYE");
	free(ans);

	/* A line over max_line. */
	s = connect_session(h, 1);
	char *line = xmalloc(5000);
	memset(line, 'x', 4998);
	memcpy(line + 4998, "\r\n", 2);
	send_raw(h, s, line, 5000);
	free(line);
	ans = wait_for(h, s, "* BYE");
	assert_contains(ans, "* BYE");
	free(ans);

	/* Too many bad commands. */
	s = connect_session(h, 2);
	for (int i = 0; i < 4; i++)
		EXPECT(h, s, "x", "BOGUS", "x BAD");
	EXPECT(h, s, "x", "BOGUS", "* BYE");

	/* A client vanishing mid-literal leaves the server serving others. */
	s = connect_session(h, 3);
	login(h, s, "alice");
	send_raw(h, s, "a1 APPEND INBOX {50+}\r\nFrom: half", 33);
	assert_int_equal(event_loop_run_once(h->loop, 5), 0);
	close(h->fds[3]);
	h->fds[3] = -1;
	for (int i = 0; i < 5; i++)
		assert_int_equal(event_loop_run_once(h->loop, 5), 0);
	s = connect_session(h, 3);
	login(h, s, "alice");
	EXPECT(h, s, "a2", "STATUS INBOX (MESSAGES)", "(MESSAGES 2)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_any_state_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_and_authenticate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_select_lab_mailbox_and_fetch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search_store_expunge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_copy_and_mailboxes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_sessions_idle_sees_expunge_at_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_by_another_process_reaches_idle, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_input_closes_or_answers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
