/* Every IMAP command's happy and unhappy paths, in process: the real
   server code on the flat backend and passwd-file auth, one end of a
   socketpair per session, the event loop driven step by step. */
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

/* Fills alice's INBOX with count tiny messages of the lab's format. */
static void
write_big_mailbox(struct harness *h, unsigned count)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/mail/alice/mymailbox.mail", h->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	for (unsigned i = 1; i <= count; i++)
		fprintf(f, "From: bob@localhost\nSubject: m%u\n"
			   "Received: 2022-03-10 : 14 : 30\nx\n.\n", i);
	assert_int_equal(fclose(f), 0);
}

/* The octets of each "* N FETCH" line (CRLF included) of answer, by
   sequence number: lens[seq], lens of size count + 1. */
static void
fetch_line_lengths(const char *answer, size_t *lens, unsigned count)
{
	const char *p = answer, *eol;

	for (; (eol = strstr(p, "\r\n")) != NULL; p = eol + 2) {
		unsigned seq;
		if (sscanf(p, "* %u FETCH", &seq) == 1 && seq >= 1 && seq <= count)
			lens[seq] = (size_t)(eol + 2 - p);
	}
}

/* A FETCH whose first lines fill the output to exactly the high-water
   mark, written in one go to a socket that takes it all: the output is
   then empty while the FETCH waits for it to drain. It must go on
   (it used to wait for a write event nobody asked for, and the client
   saw its answer stop). */
static void
test_fetch_resumes_when_output_drained_at_once(void **state)
{
	struct harness *h = *state;
	const unsigned count = 10100;
	size_t *lens = xcalloc(count + 1, sizeof(*lens));
	int sv[2], sndbuf = 4 << 20, got = 0;
	socklen_t optlen = sizeof(got);
	char *ans, command[128];
	size_t target = CLIENT_OUT_HIGH_WATER, sum4 = 0;
	unsigned a, b = 0;
	bool found = false;

	write_big_mailbox(h, count);
	/* A session whose socket takes more than the high-water mark. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fd_set_nonblock_cloexec(sv[0]), 0);
	assert_int_equal(fd_set_nonblock_cloexec(sv[1]), 0);
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	assert_int_equal(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &got, &optlen), 0);
	if ((size_t)got < 2 * target) {
		close(sv[0]);
		close(sv[1]);
		free(lens);
		skip();
	}
	h->fds[0] = sv[1];
	imap_server_accept_fd(h->server, sv[0], "test");
	free(wait_for(h, 0, "* OK"));
	login(h, 0, "alice");
	EXPECT(h, 0, "a1", "SELECT INBOX", "a1 OK");
	ans = cmd(h, 0, "a2", "FETCH 1:* (UID FLAGS)");
	assert_contains(ans, "a2 OK");
	fetch_line_lengths(ans, lens, count);
	free(ans);
	/* Messages 1000.. and 10000.. (one more digit each): a of the
	   latter and b of the former make exactly the high-water mark,
	   then ten more follow. */
	for (a = 0; a < 90 && !found; a++) {
		size_t rest = target, sum = 0;
		for (unsigned i = 0; i < a; i++)
			sum += lens[10000 + i];
		rest -= sum;
		sum4 = 0;
		for (b = 0; b < 9000 && sum4 < rest; b++)
			sum4 += lens[1000 + b];
		found = sum4 == rest;
	}
	if (!found)
		fail_msg("no set of lines makes %zu octets", target);
	a--;
	snprintf(command, sizeof(command), "FETCH 1000:%u,10000:%u (UID FLAGS)", 1000 + b - 1,
		 10000 + a + 9);
	ans = cmd(h, 0, "a3", command);
	assert_contains(ans, "a3 OK Fetch completed.");
	assert_contains(ans, "* 10009 FETCH");
	free(ans);
	free(lens);
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

/* A child process that holds the writers' lock (the fcntl() lock on the
   mail file) of alice's flat INBOX until it is killed. Returns its pid. */
static pid_t
hold_inbox_lock(struct harness *h)
{
	char path[256], c;
	int fds[2];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/mail/alice/mymailbox.mail", h->dir);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct flock fl;
		int fd = open(path, O_RDWR | O_CLOEXEC);

		close(fds[0]);
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0 || write(fds[1], "l", 1) != 1)
			_exit(2);
		alarm(30);      /* never outlives a test that failed */
		for (;;)
			pause();
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	return pid;
}

/* The answers follow the storage error kinds: an EXPUNGE that waited for
   another process's lock in vain is NO [INUSE]; a STORE whose flag write
   fails (RLIMIT_FSIZE makes every file write fail, also for root) is NO
   [UNAVAILABLE], and the refused flags are neither kept nor told.
   Everything goes through afterwards. */
static void
test_storage_errors_answered_with_their_code(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	struct rlimit old, tiny;
	pid_t pid;

	login(h, s, "alice");
	EXPECT(h, s, "a1", "SELECT INBOX", "a1 OK");
	EXPECT(h, s, "a2", "STORE 1 +FLAGS.SILENT (\\Deleted)", "a2 OK");
	pid = hold_inbox_lock(h);
	storage_lock_wait_ms = 100;
	EXPECT(h, s, "a3", "EXPUNGE", "a3 NO [INUSE]");
	EXPECT(h, s, "a4", "FETCH 1:2 UID", "* 2 FETCH (UID 2)");
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	storage_lock_wait_ms = 10000;

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	tiny = old;
	tiny.rlim_cur = 1;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &tiny), 0);
	char *ans = cmd(h, s, "a5", "STORE 2 +FLAGS (\\Flagged $Brandnew)");
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_contains(ans, "a5 NO [UNAVAILABLE]");
	assert_null(strstr(ans, "* 2 FETCH"));
	free(ans);
	ans = cmd(h, s, "a6", "FETCH 2 FLAGS");
	assert_contains(ans, "a6 OK");
	assert_contains(ans, "* 2 FETCH (FLAGS (\\Recent))");
	free(ans);

	EXPECT(h, s, "a7", "EXPUNGE", "* 1 EXPUNGE\r\n");
	EXPECT(h, s, "a8", "STORE 1 +FLAGS (\\Flagged $Brandnew)", "a8 OK");
	EXPECT(h, s, "a9", "FETCH 1 FLAGS", "* 1 FETCH (FLAGS (\\Flagged \\Recent $Brandnew))");
}

static void
test_append_copy_and_mailboxes(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans;

	login(h, s, "alice");
	EXPECT(h, s, "a1", "CREATE Saved", "a1 OK");
	EXPECT(h, s, "a2", "CREATE Saved", "a2 NO [ALREADYEXISTS]");
	EXPECT(h, s, "a3", "CREATE ../escape", "a3 NO");
	EXPECT(h, s, "a4", "CREATE INBOX", "a4 NO");
	EXPECT(h, s, "a5", "CREATE Work/Project", "a5 OK");
	ans = cmd(h, s, "a6", "LIST \"\" *");
	assert_contains(ans, "\"/\" \"INBOX\"");
	assert_contains(ans, "\"/\" \"Saved\"");
	assert_contains(ans, "\"/\" \"Work/Project\"");
	free(ans);
	ans = cmd(h, s, "a7", "LIST \"\" %");
	assert_contains(ans, "\"Work\"");
	assert_null(strstr(ans, "Work/Project"));
	free(ans);
	EXPECT(h, s, "a8", "LIST \"\" \"\"", "* LIST (\\Noselect) \"/\" \"\"");
	/* APPEND with a synchronizing literal: the server asks for it. */
	send_raw(h, s, "a9 APPEND Saved (\\Seen) {20}\r\n", 30);
	ans = wait_for(h, s, "+");
	assert_contains(ans, "+ ");
	free(ans);
	EXPECT_CONT(h, s, "Subject: hi\r\n\r\nyo!\r\n", "a9", "a9 OK [APPENDUID ");
	/* LITERAL+: no continuation. */
	EXPECT(h, s, "a10", "APPEND Saved {14+}\r\nSubject: x\r\n\r\n", "a10 OK [APPENDUID ");
	EXPECT(h, s, "a11", "APPEND Nowhere {3+}\r\nx\r\n", "a11 NO [TRYCREATE]");
	EXPECT(h, s, "a12", "APPEND Saved {0+}\r\n", "a12 NO");
	EXPECT(h, s, "a13", "STATUS Saved (MESSAGES UNSEEN UIDNEXT)",
	       "* STATUS \"Saved\" (MESSAGES 2 UNSEEN 1 UIDNEXT 3)");
	EXPECT(h, s, "a14", "STATUS Saved (BOGUS)", "a14 BAD");
	EXPECT(h, s, "a15", "STATUS Nope (MESSAGES)", "a15 NO [NONEXISTENT]");
	EXPECT(h, s, "a16", "SELECT INBOX", "a16 OK");
	EXPECT(h, s, "a17", "COPY 1:2 Saved", "a17 OK [COPYUID ");
	EXPECT(h, s, "a18", "COPY 1 Nowhere", "a18 NO [TRYCREATE]");
	EXPECT(h, s, "a19", "STATUS Saved (MESSAGES)", "(MESSAGES 4)");
	ans = cmd(h, s, "a20", "EXAMINE Saved");
	assert_contains(ans, "* 4 EXISTS");
	free(ans);
	EXPECT(h, s, "a21", "FETCH 1 BODY[]", "yo!");
	EXPECT(h, s, "a22", "RENAME Saved Archive", "a22 NO [INUSE]");
	EXPECT(h, s, "a23", "UNSELECT", "a23 OK");
	EXPECT(h, s, "a24", "RENAME Saved Archive", "a24 OK");
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

/* RFC 7162 3.2.10: while another session's expunge is not told yet (STORE
   and FETCH may not carry it, RFC 3501 7.4.1), a QRESYNC session's STORE
   and FETCH answer a HIGHESTMODSEQ below that expunge's, which a client
   caches instead of the MODSEQs it saw; once told (NOOP: VANISHED), the
   plain answers come back. */
static void
test_two_sessions_qresync_highestmodseq_below_pending_expunge(void **state)
{
	struct harness *h = *state;
	int a = connect_session(h, 0), b = connect_session(h, 1);
	unsigned long long told, after;
	const char *p;
	char *ans;

	login(h, a, "alice");
	login(h, b, "alice");
	EXPECT(h, a, "a0", "ENABLE QRESYNC", "a0 OK");
	ans = cmd(h, a, "a1", "SELECT INBOX");
	p = strstr(ans, "[HIGHESTMODSEQ ");
	assert_non_null(p);
	told = strtoull(p + 15, NULL, 10);
	free(ans);
	EXPECT(h, b, "b1", "SELECT INBOX", "b1 OK");
	EXPECT(h, b, "b2", "STORE 1 +FLAGS.SILENT (\\Deleted)", "b2 OK");
	EXPECT(h, b, "b3", "EXPUNGE", "* 1 EXPUNGE");
	ans = cmd(h, a, "a2", "STORE 2 +FLAGS (\\Flagged)");
	assert_null(strstr(ans, "VANISHED"));
	assert_contains(ans, "MODSEQ (");
	p = strstr(ans, "a2 OK [HIGHESTMODSEQ ");
	assert_non_null(p);
	after = strtoull(p + 21, NULL, 10);
	assert_true(after <= told);
	free(ans);
	ans = cmd(h, a, "a3", "FETCH 2 (FLAGS MODSEQ)");
	assert_contains(ans, "a3 OK [HIGHESTMODSEQ ");
	free(ans);
	EXPECT(h, a, "a4", "NOOP", "* VANISHED ");
	EXPECT(h, a, "a5", "STORE 1 -FLAGS (\\Flagged)", "a5 OK Store completed.");
}

/* The same when the tagged line has another code: a FETCH of the
   message another session expunged (OK [EXPUNGEISSUED]) while that
   session's later flag change comes as an update with its MODSEQ: an
   untagged HIGHESTMODSEQ below the expunge comes after every MODSEQ and
   before the tagged line, for a client that caches what it saw last. */
static void
test_two_sessions_qresync_highestmodseq_with_expungeissued(void **state)
{
	struct harness *h = *state;
	int a = connect_session(h, 0), b = connect_session(h, 1);
	unsigned long long told, safe;
	const char *p, *last_modseq, *hms, *tagged;
	char *ans;

	login(h, a, "alice");
	login(h, b, "alice");
	EXPECT(h, a, "a0", "ENABLE QRESYNC", "a0 OK");
	ans = cmd(h, a, "a1", "SELECT INBOX");
	p = strstr(ans, "[HIGHESTMODSEQ ");
	assert_non_null(p);
	told = strtoull(p + 15, NULL, 10);
	free(ans);
	EXPECT(h, b, "b1", "SELECT INBOX", "b1 OK");
	EXPECT(h, b, "b2", "STORE 1 +FLAGS.SILENT (\\Deleted)", "b2 OK");
	EXPECT(h, b, "b3", "EXPUNGE", "* 1 EXPUNGE");
	EXPECT(h, b, "b4", "STORE 1 +FLAGS.SILENT (\\Flagged)", "b4 OK");
	ans = cmd(h, a, "a2", "FETCH 1 (FLAGS)");
	assert_null(strstr(ans, "VANISHED"));
	tagged = strstr(ans, "a2 OK [EXPUNGEISSUED]");
	assert_non_null(tagged);
	last_modseq = NULL;
	for (p = strstr(ans, "MODSEQ ("); p != NULL; p = strstr(p + 1, "MODSEQ ("))
		last_modseq = p;
	assert_non_null(last_modseq);
	hms = strstr(ans, "* OK [HIGHESTMODSEQ ");
	assert_non_null(hms);
	assert_true(hms > last_modseq && hms < tagged);
	safe = strtoull(hms + 20, NULL, 10);
	assert_true(safe <= told);
	free(ans);
	EXPECT(h, a, "a3", "NOOP", "* VANISHED ");
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

#define assert_absent(hay, needle)                                                     \
	do {                                                                            \
		if (strstr((hay), (needle)) != NULL)                                    \
			fail_msg("did not expect \"%s\" in:\n%s", (needle), (hay));     \
	} while (0)

/* A fresh session in slot s, logged in (the harness allows only a few
   BAD answers per session). */
static int
relogin(struct harness *h, int s, const char *user)
{
	if (h->fds[s] >= 0)
		close(h->fds[s]);
	h->fds[s] = -1;
	buf_reset(&h->in[s]);
	connect_session(h, s);
	login(h, s, user);
	return s;
}

/* Advertised exactly once each; LITERAL- not next to LITERAL+ (RFC 7888 5). */
static void
test_capabilities_listed(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans;

	login(h, s, "alice");
	ans = cmd(h, s, "a1", "CAPABILITY");
	assert_contains(ans, " MOVE");
	assert_contains(ans, " LIST-EXTENDED");
	assert_contains(ans, " SPECIAL-USE");
	assert_contains(ans, " ESEARCH");
	assert_contains(ans, " CONDSTORE");
	assert_contains(ans, " QRESYNC");
	assert_contains(ans, " LITERAL+");
	assert_absent(ans, "LITERAL-");
	free(ans);
}

/* A client that follows LITERAL- rules (non-synchronizing up to 4096
   octets, synchronizing above) is served. */
static void
test_literal_minus_client(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans, *big, *line;

	login(h, s, "alice");
	EXPECT(h, s, "a1", "APPEND INBOX {14+}\r\nSubject: x\r\n\r\n", "a1 OK [APPENDUID ");
	big = xmalloc(5001);
	memset(big, 'x', 5000);
	memcpy(big, "Subject: big\r\n\r\n", 16);
	big[4998] = '\r';
	big[4999] = '\n';
	big[5000] = '\0';
	line = xasprintf("a2 APPEND INBOX {5000}\r\n");
	send_raw(h, s, line, strlen(line));
	free(line);
	ans = wait_for(h, s, "+");
	assert_contains(ans, "+ ");
	free(ans);
	EXPECT_CONT(h, s, big, "a2", "a2 OK [APPENDUID ");
	free(big);
	EXPECT(h, s, "a3", "STATUS INBOX (MESSAGES)", "(MESSAGES 4)");
}

static void
test_move(void **state)
{
	struct harness *h = *state;
	int a = connect_session(h, 0), b = connect_session(h, 1);
	char *ans;

	login(h, a, "alice");
	login(h, b, "alice");
	EXPECT(h, a, "a0", "MOVE 1 Trash", "a0 BAD Select a mailbox first");
	EXPECT(h, a, "a1", "SELECT INBOX", "a1 OK");
	EXPECT(h, b, "b1", "SELECT INBOX", "b1 OK");
	EXPECT(h, a, "a2", "MOVE 1 Nowhere", "a2 NO [TRYCREATE]");
	EXPECT(h, a, "a3", "MOVE 3 Trash", "a3 BAD");
	EXPECT(h, a, "a4", "MOVE 1", "a4 BAD");
	ans = cmd(h, a, "a5", "MOVE 1 Trash");
	/* COPYUID in an untagged OK, then the EXPUNGE, then the tagged OK. */
	const char *cu = strstr(ans, "* OK [COPYUID ");
	const char *ex = strstr(ans, "* 1 EXPUNGE");
	const char *ok = strstr(ans, "a5 OK");
	assert_non_null(cu);
	assert_non_null(ex);
	assert_non_null(ok);
	assert_true(cu < ex && ex < ok);
	assert_contains(ans, " 1 1] ");
	free(ans);
	EXPECT(h, a, "a6", "STATUS Trash (MESSAGES)", "(MESSAGES 1)");
	EXPECT(h, b, "b2", "NOOP", "* 1 EXPUNGE");
	EXPECT(h, a, "a7", "UID MOVE 2 Trash", "* OK [COPYUID ");
	EXPECT(h, a, "a8", "UID MOVE 99 Trash", "a8 OK Move completed (no messages)");
	EXPECT(h, a, "a9", "STATUS Trash (MESSAGES)", "(MESSAGES 2)");
	EXPECT(h, a, "a10", "EXAMINE Trash", "a10 OK");
	EXPECT(h, a, "a11", "MOVE 1 INBOX", "a11 NO [READ-ONLY]");
	EXPECT(h, a, "a12", "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]", "Subject: lunch");
}

static void
test_esearch(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);

	login(h, s, "alice");
	EXPECT(h, s, "a1", "SELECT INBOX", "a1 OK");
	EXPECT(h, s, "a2", "SEARCH RETURN (MIN MAX COUNT ALL) ALL",
	       "* ESEARCH (TAG \"a2\") MIN 1 MAX 2 ALL 1:2 COUNT 2");
	EXPECT(h, s, "a3", "UID SEARCH RETURN () ALL", "* ESEARCH (TAG \"a3\") UID ALL 1:2");
	EXPECT(h, s, "a4", "SEARCH RETURN (COUNT) SUBJECT report", "* ESEARCH (TAG \"a4\") COUNT 1");
	EXPECT(h, s, "a5", "SEARCH RETURN (MIN MAX) SUBJECT nothing-like-it",
	       "* ESEARCH (TAG \"a5\")\r\n");
	EXPECT(h, s, "a6", "SEARCH RETURN (COUNT) DELETED", "COUNT 0");
	EXPECT(h, s, "a7", "SEARCH RETURN (BOGUS) ALL", "a7 BAD");
	EXPECT(h, s, "a8", "SEARCH RETURN ALL", "a8 BAD");
	EXPECT(h, s, "a9", "SEARCH RETURN (MIN) CHARSET UTF-8 SUBJECT lunch",
	       "* ESEARCH (TAG \"a9\") MIN 1");
	/* The plain SEARCH answer is unchanged. */
	EXPECT(h, s, "a10", "SEARCH ALL", "* SEARCH 1 2\r\n");
}

static void
test_list_extended_and_special_use(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans;

	login(h, s, "alice");
	/* A new user has the four special-use mailboxes, subscribed. */
	ans = cmd(h, s, "a1", "LIST \"\" *");
	assert_contains(ans, "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"");
	assert_contains(ans, "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"");
	assert_contains(ans, "* LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\"");
	assert_contains(ans, "* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"");
	assert_contains(ans, "* LIST (\\HasNoChildren) \"/\" \"INBOX\"");
	free(ans);
	EXPECT(h, s, "a2", "LSUB \"\" *", "* LSUB () \"/\" \"Trash\"");
	/* Deleting one is allowed and it does not come back at the next
	   login (only a user with nothing but INBOX gets them). */
	EXPECT(h, s, "a3", "DELETE Junk", "a3 OK");
	EXPECT(h, s, "a4", "CREATE Lists/imap", "a4 OK");
	EXPECT(h, s, "a5", "CREATE Lists/smtp", "a5 OK");
	EXPECT(h, s, "a6", "SUBSCRIBE Lists/smtp", "a6 OK");
	EXPECT(h, s, "a7", "SUBSCRIBE Gone", "a7 OK");
	s = connect_session(h, 1);
	login(h, s, "alice");
	ans = cmd(h, s, "b1", "LIST \"\" *");
	assert_absent(ans, "Junk");
	free(ans);
	/* Selection SPECIAL-USE, return SPECIAL-USE. */
	ans = cmd(h, s, "b2", "LIST (SPECIAL-USE) \"\" * RETURN (SPECIAL-USE)");
	assert_contains(ans, "\\Sent) \"/\" \"Sent\"");
	assert_absent(ans, "INBOX");
	assert_absent(ans, "Lists");
	assert_contains(ans, "b2 OK");
	free(ans);
	/* Selection SUBSCRIBED: subscribed names, gone ones \NonExistent. */
	ans = cmd(h, s, "b3", "LIST (SUBSCRIBED) \"\" *");
	assert_contains(ans, "\\Subscribed) \"/\" \"Lists/smtp\"");
	assert_contains(ans, "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" \"Gone\"");
	assert_absent(ans, "\"Lists/imap\"");
	assert_absent(ans, "\"INBOX\"");
	free(ans);
	/* RECURSIVEMATCH: a parent with a subscribed child gets CHILDINFO. */
	ans = cmd(h, s, "b4", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %");
	assert_contains(ans, "\"Lists\" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	free(ans);
	/* Return SUBSCRIBED, several patterns. */
	ans = cmd(h, s, "b5", "LIST \"\" (INBOX \"Lists/*\") RETURN (SUBSCRIBED CHILDREN)");
	assert_contains(ans, "\"/\" \"INBOX\"");
	assert_contains(ans, "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Lists/smtp\"");
	assert_contains(ans, "* LIST (\\HasNoChildren) \"/\" \"Lists/imap\"");
	assert_absent(ans, "\"Sent\"");
	free(ans);
	/* Unhappy paths. */
	EXPECT(h, s, "b6", "LIST (RECURSIVEMATCH) \"\" *", "b6 BAD");
	EXPECT(h, s, "b7", "LIST (BOGUS) \"\" *", "b7 BAD");
	s = relogin(h, s, "alice");
	EXPECT(h, s, "b8", "LIST \"\" * RETURN (BOGUS)", "b8 BAD");
	EXPECT(h, s, "b9", "LIST \"\" * RETURN", "b9 BAD");
	EXPECT(h, s, "b10", "LIST \"\" ()", "b10 BAD");
	EXPECT(h, s, "b11", "LIST (REMOTE) \"\" \"\"", "b11 OK");
	/* CREATE with USE: only what the name already is. */
	EXPECT(h, s, "b12", "CREATE Junk (USE (\\Junk))", "b12 OK");
	EXPECT(h, s, "b13", "CREATE Archive (USE (\\Archive))", "b13 NO [USEATTR]");
	EXPECT(h, s, "b14", "LIST \"\" Archive", "b14 OK");
	ans = cmd(h, s, "b15", "LIST \"\" Archive");
	assert_absent(ans, "* LIST");
	free(ans);
}

static void
test_mailbox_names_mutf7(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans, path[256];
	struct stat sb;

	login(h, s, "alice");
	/* "Entwürfe" and "台北" and "a&b" */
	EXPECT(h, s, "a1", "CREATE Entw&APw-rfe", "a1 OK");
	EXPECT(h, s, "a2", "CREATE &U,BTFw-", "a2 OK");
	EXPECT(h, s, "a3", "CREATE \"a&-b\"", "a3 OK");
	/* UTF-8 on disk. */
	snprintf(path, sizeof(path), "%s/mail/alice/Entw\xc3\xbcrfe.mail", h->dir);
	assert_int_equal(stat(path, &sb), 0);
	snprintf(path, sizeof(path), "%s/mail/alice/a&b.mail", h->dir);
	assert_int_equal(stat(path, &sb), 0);
	ans = cmd(h, s, "a4", "LIST \"\" *");
	assert_contains(ans, "\"Entw&APw-rfe\"");
	assert_contains(ans, "\"&U,BTFw-\"");
	assert_contains(ans, "\"a&-b\"");
	free(ans);
	EXPECT(h, s, "a5", "STATUS Entw&APw-rfe (MESSAGES)", "* STATUS \"Entw&APw-rfe\" (MESSAGES 0)");
	EXPECT(h, s, "a6", "LIST \"\" Entw&APw-*", "\"Entw&APw-rfe\"");
	EXPECT(h, s, "a7", "SELECT \"a&-b\"", "a7 OK");
	/* Invalid modified UTF-7 is refused. */
	EXPECT(h, s, "a8", "CREATE &Jjo", "a8 NO");
	EXPECT(h, s, "a9", "CREATE &AGE-", "a9 NO");        /* encodes "a" */
	EXPECT(h, s, "a10", "CREATE &2D3eAQ-", "a10 OK");  /* U+1F601, a surrogate pair */
	EXPECT(h, s, "a11", "CREATE &2D0-", "a11 NO");     /* lone high surrogate */
	EXPECT(h, s, "a12", "CREATE \"caf\xc3\xa9\"", "a12 NO");
	EXPECT(h, s, "a13", "CREATE &A!-", "a13 NO");
	EXPECT(h, s, "a14", "LIST \"\" &Jjo", "a14 BAD");
	/* Names that would leave the user's folder. */
	EXPECT(h, s, "a15", "CREATE ../bob/x", "a15 NO");
	EXPECT(h, s, "a16", "CREATE /etc/x", "a16 NO");
	EXPECT(h, s, "a17", "CREATE a/../../x", "a17 NO");
	EXPECT(h, s, "a18", "RENAME Trash ../../x", "a18 NO");
	EXPECT(h, s, "a19", "SELECT ../bob", "a19 NO");
	/* INBOX in any case; RENAME INBOX moves its messages. */
	EXPECT(h, s, "a21", "STATUS iNbOx (MESSAGES)", "* STATUS \"INBOX\" (MESSAGES 2)");
	EXPECT(h, s, "a22", "RENAME inbox Old", "a22 OK");
	EXPECT(h, s, "a23", "STATUS Old (MESSAGES)", "(MESSAGES 2)");
	EXPECT(h, s, "a24", "STATUS INBOX (MESSAGES)", "(MESSAGES 0)");
}

/* The hierarchy of a QRESYNC-capable session: MODSEQ, HIGHESTMODSEQ,
   CHANGEDSINCE, UNCHANGEDSINCE, SEARCH MODSEQ. */
static void
test_condstore(void **state)
{
	struct harness *h = *state;
	int a = connect_session(h, 0), b = connect_session(h, 1);
	char *ans;
	unsigned long long hms = 0, hms2 = 0;
	const char *p;

	login(h, a, "alice");
	login(h, b, "alice");
	/* b takes \Recent, so that a's flags are only the stored ones. */
	EXPECT(h, b, "b0", "SELECT INBOX", "b0 OK");
	EXPECT(h, b, "b0b", "UNSELECT", "b0b OK");
	/* Before enabling: no HIGHESTMODSEQ at SELECT. */
	ans = cmd(h, a, "a1", "SELECT INBOX");
	assert_absent(ans, "HIGHESTMODSEQ");
	free(ans);
	/* A FETCH with MODSEQ enables CONDSTORE: HIGHESTMODSEQ follows. */
	ans = cmd(h, a, "a2", "FETCH 1:2 (FLAGS MODSEQ)");
	assert_contains(ans, "* OK [HIGHESTMODSEQ ");
	assert_contains(ans, "MODSEQ (");
	p = strstr(ans, "[HIGHESTMODSEQ ");
	hms = strtoull(p + 15, NULL, 10);
	assert_true(hms > 0);
	free(ans);
	EXPECT(h, a, "a3", "STATUS INBOX (HIGHESTMODSEQ)", "(HIGHESTMODSEQ ");
	/* A change raises the mod-sequence; CHANGEDSINCE shows only it. */
	ans = cmd(h, a, "a4", "STORE 2 +FLAGS (\\Flagged)");
	assert_contains(ans, "* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (");
	free(ans);
	ans = cmd(h, a, "a5", "FETCH 1:* (FLAGS) (CHANGEDSINCE 1)");
	free(ans);
	char *c6 = xasprintf("FETCH 1:* (FLAGS) (CHANGEDSINCE %llu)", hms);
	ans = cmd(h, a, "a6", c6);
	free(c6);
	assert_contains(ans, "* 2 FETCH (FLAGS (\\Flagged) MODSEQ (");
	assert_absent(ans, "* 1 FETCH");
	free(ans);
	/* UNCHANGEDSINCE: message 2 changed after hms, so it is not
	   stored; message 1 is. */
	char *c7 = xasprintf("STORE 1:2 (UNCHANGEDSINCE %llu) +FLAGS.SILENT (\\Answered)", hms);
	ans = cmd(h, a, "a7", c7);
	free(c7);
	assert_contains(ans, "a7 OK [MODIFIED 2]");
	assert_contains(ans, "* 1 FETCH (UID 1 FLAGS (\\Answered) MODSEQ (");
	free(ans);
	EXPECT(h, a, "a8", "UID STORE 2 (UNCHANGEDSINCE 1) FLAGS (\\Seen)", "a8 OK [MODIFIED 2]");
	EXPECT(h, a, "a9", "STORE 1 (UNCHANGEDSINCE x) FLAGS (\\Seen)", "a9 BAD");
	EXPECT(h, a, "a10", "STORE 1 (BOGUS 1) FLAGS (\\Seen)", "a10 BAD");
	a = relogin(h, a, "alice");
	EXPECT(h, a, "a10b", "SELECT INBOX (CONDSTORE)", "a10b OK");
	EXPECT(h, a, "a11", "FETCH 1 (FLAGS) (CHANGEDSINCE)", "a11 BAD");
	EXPECT(h, a, "a12", "FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)", "a12 BAD");
	/* SEARCH MODSEQ ends with the highest mod-sequence found. */
	char *c13 = xasprintf("SEARCH MODSEQ %llu", hms + 1);
	ans = cmd(h, a, "a13", c13);
	free(c13);
	assert_contains(ans, "* SEARCH 1 2 (MODSEQ ");
	free(ans);
	EXPECT(h, a, "a14", "SEARCH MODSEQ \"/flags/\\\\draft\" all 1", "* SEARCH 1 2 (MODSEQ ");
	EXPECT(h, a, "a15", "SEARCH MODSEQ 99999999", "* SEARCH\r\n");
	EXPECT(h, a, "a16", "SEARCH RETURN (COUNT) MODSEQ 1", "COUNT 2 MODSEQ ");
	EXPECT(h, a, "a17", "SEARCH MODSEQ bogus", "a17 BAD");
	/* Another session's change arrives with UID and MODSEQ. */
	EXPECT(h, b, "b1", "SELECT INBOX (CONDSTORE)", "* OK [HIGHESTMODSEQ ");
	EXPECT(h, b, "b2", "STORE 1 -FLAGS.SILENT (\\Answered)", "b2 OK");
	EXPECT(h, a, "a18", "NOOP", "* 1 FETCH (UID 1 FLAGS () MODSEQ (");
	/* ENABLE answers what it turned on; SELECT (BOGUS) is BAD. */
	EXPECT(h, b, "b3", "ENABLE CONDSTORE", "* ENABLED\r\n");
	EXPECT(h, b, "b4", "SELECT INBOX (BOGUS)", "b4 BAD");
	EXPECT(h, b, "b5", "SELECT INBOX (QRESYNC (1 1))", "b5 BAD");
	/* The mailbox's mod-sequence rose with the changes. */
	ans = cmd(h, b, "b6", "STATUS INBOX (HIGHESTMODSEQ)");
	p = strstr(ans, "HIGHESTMODSEQ ");
	assert_non_null(p);
	hms2 = strtoull(p + 14, NULL, 10);
	assert_true(hms2 > hms);
	free(ans);
	/* Re-selecting says where the old mailbox's responses end. */
	EXPECT(h, b, "b7", "EXAMINE INBOX", "* OK [CLOSED]");
	EXPECT(h, b, "b8", "UNSELECT", "b8 OK");
	ans = cmd(h, b, "b9", "SELECT INBOX");
	assert_absent(ans, "[CLOSED]");
	free(ans);
}

static void
test_qresync(void **state)
{
	struct harness *h = *state;
	int a = connect_session(h, 0), b = connect_session(h, 1);
	char *ans, *c;
	unsigned long long hms;
	unsigned uidv;
	const char *p;

	login(h, a, "alice");
	login(h, b, "alice");
	EXPECT(h, a, "a0", "APPEND INBOX {14+}\r\nSubject: 3\r\n\r\n", "a0 OK");
	EXPECT(h, a, "a0b", "APPEND INBOX {14+}\r\nSubject: 4\r\n\r\n", "a0b OK");
	EXPECT(h, b, "b0", "SELECT INBOX", "b0 OK");
	EXPECT(h, b, "b0b", "UNSELECT", "b0b OK");
	EXPECT(h, a, "a1", "ENABLE QRESYNC CONDSTORE", "* ENABLED CONDSTORE QRESYNC");
	ans = cmd(h, a, "a2", "SELECT INBOX");
	p = strstr(ans, "[HIGHESTMODSEQ ");
	assert_non_null(p);
	hms = strtoull(p + 15, NULL, 10);
	p = strstr(ans, "[UIDVALIDITY ");
	assert_non_null(p);
	uidv = (unsigned)strtoul(p + 13, NULL, 10);
	free(ans);
	/* Session b expunges 2 and flags 4; a sees VANISHED, not EXPUNGE. */
	EXPECT(h, b, "b1", "SELECT INBOX", "b1 OK");
	EXPECT(h, b, "b2", "STORE 2 +FLAGS.SILENT (\\Deleted)", "b2 OK");
	ans = cmd(h, b, "b3", "EXPUNGE");
	assert_contains(ans, "* 2 EXPUNGE");
	assert_absent(ans, "VANISHED");
	free(ans);
	EXPECT(h, b, "b4", "UID STORE 4 +FLAGS.SILENT (\\Flagged)", "b4 OK");
	ans = cmd(h, a, "a3", "NOOP");
	assert_contains(ans, "* VANISHED 2\r\n");
	assert_absent(ans, "EXPUNGE");
	assert_contains(ans, "* 3 FETCH (UID 4 FLAGS (\\Flagged) MODSEQ (");
	free(ans);
	/* Own expunge: VANISHED and the new HIGHESTMODSEQ in the tagged OK. */
	EXPECT(h, a, "a4", "UID STORE 3 +FLAGS.SILENT (\\Deleted)", "a4 OK");
	ans = cmd(h, a, "a5", "EXPUNGE");
	assert_contains(ans, "* VANISHED 3\r\n");
	assert_contains(ans, "a5 OK [HIGHESTMODSEQ ");
	free(ans);
	/* A resync from the old state: VANISHED (EARLIER) for 2 and 3, a
	   FETCH for 4, nothing for 1; CLOSED first since a mailbox was
	   selected. */
	c = xasprintf("SELECT INBOX (QRESYNC (%u %llu 1:4))", uidv, hms);
	ans = cmd(h, a, "a6", c);
	free(c);
	assert_contains(ans, "* OK [CLOSED]");
	assert_contains(ans, "* VANISHED (EARLIER) 2:3\r\n");
	assert_contains(ans, "* 2 FETCH (UID 4 FLAGS (\\Flagged) MODSEQ (");
	assert_absent(ans, "* 1 FETCH");
	assert_contains(ans, "a6 OK [READ-WRITE]");
	free(ans);
	/* Known UIDs limit the answer. */
	c = xasprintf("EXAMINE INBOX (QRESYNC (%u %llu 1,3))", uidv, hms);
	ans = cmd(h, a, "a7", c);
	free(c);
	assert_contains(ans, "* VANISHED (EARLIER) 3\r\n");
	assert_absent(ans, "FETCH");
	free(ans);
	/* A wrong UIDVALIDITY: a plain select. */
	c = xasprintf("EXAMINE INBOX (QRESYNC (%u %llu))", uidv + 1, hms);
	ans = cmd(h, a, "a8", c);
	free(c);
	assert_absent(ans, "VANISHED");
	assert_absent(ans, "FETCH");
	assert_contains(ans, "a8 OK");
	free(ans);
	/* UID FETCH ... (CHANGEDSINCE m VANISHED). */
	EXPECT(h, a, "a9", "SELECT INBOX", "a9 OK");
	c = xasprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %llu VANISHED)", hms);
	ans = cmd(h, a, "a10", c);
	free(c);
	assert_contains(ans, "* VANISHED (EARLIER) 2:3\r\n");
	assert_contains(ans, "FETCH (UID 4 FLAGS (\\Flagged) MODSEQ (");
	assert_true(strstr(ans, "VANISHED") < strstr(ans, "FETCH ("));
	free(ans);
	EXPECT(h, a, "a11", "FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)", "a11 BAD");
	EXPECT(h, a, "a12", "UID FETCH 1:* (FLAGS) (VANISHED)", "a12 BAD");
	/* Unhappy QRESYNC parameters. */
	a = relogin(h, a, "alice");
	EXPECT(h, a, "a12b", "ENABLE QRESYNC", "* ENABLED QRESYNC\r\n");
	EXPECT(h, a, "a13", "SELECT INBOX (QRESYNC (0 1))", "a13 BAD");
	EXPECT(h, a, "a14", "SELECT INBOX (QRESYNC (1))", "a14 BAD");
	EXPECT(h, a, "a15", "SELECT INBOX (QRESYNC (1 1 x))", "a15 BAD");
	EXPECT(h, a, "a16", "SELECT INBOX (QRESYNC 1)", "a16 BAD");
	a = relogin(h, a, "alice");
	EXPECT(h, a, "a16b", "ENABLE QRESYNC", "a16b OK");
	/* MOVE answers VANISHED in a QRESYNC session. */
	EXPECT(h, a, "a17", "SELECT INBOX", "a17 OK");
	ans = cmd(h, a, "a18", "UID MOVE 4 Trash");
	assert_contains(ans, "* VANISHED 4\r\n");
	free(ans);
	/* After a restart of the server's state, old mod-sequences give the
	   UIDs that are not there any more (inexact but allowed). */
	EXPECT(h, a, "a19", "UNSELECT", "a19 OK");
	EXPECT(h, b, "b5", "UNSELECT", "b5 OK");
	EXPECT(h, b, "b6", "LOGOUT", "b6 OK");
	c = xasprintf("SELECT INBOX (QRESYNC (%u 1 1:10 (1 1)))", uidv);
	ans = cmd(h, a, "a20", c);
	free(c);
	assert_contains(ans, "* VANISHED (EARLIER) 2:4\r\n");
	free(ans);
}

/* Before login a literal is capped at IMAP_PRELOGIN_MAX_INPUT octets,
   refused at its "{n}" (BAD, then BYE), synchronizing or not; after
   login limits.max_literal applies. */
static void
test_prelogin_input_capped(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans, *big, *line;
	size_t n = IMAP_PRELOGIN_MAX_INPUT;

	/* At the cap: taken (and the login fails as usual). */
	line = xasprintf("a1 LOGIN {%zu}\r\n", n);
	send_raw(h, s, line, strlen(line));
	free(line);
	ans = wait_for(h, s, "+");
	assert_contains(ans, "+ OK");
	free(ans);
	big = xmalloc(n + 1);
	memset(big, 'x', n);
	big[n] = '\0';
	send_raw(h, s, big, n);
	EXPECT_CONT(h, s, " pass", "a1", "a1 NO [AUTHENTICATIONFAILED]");
	/* One octet more: refused before any octet is read. */
	line = xasprintf("a2 LOGIN {%zu}", n + 1);
	ans = cmd(h, s, "a2", line);
	free(line);
	assert_contains(ans, "a2 BAD Literal too large\r\n* BYE");
	free(ans);

	/* A non-synchronizing one too, whatever follows. */
	s = connect_session(h, 1);
	send_raw(h, s, "b1 LOGIN {26214400+}\r\n", 22);
	send_raw(h, s, big, n);
	ans = wait_for(h, s, "* BYE");
	assert_contains(ans, "b1 BAD Literal too large\r\n* BYE");
	free(ans);

	/* A pre-login AUTHENTICATE response line is capped the same way. */
	s = connect_session(h, 2);
	send_raw(h, s, "c1 AUTHENTICATE PLAIN\r\n", 23);
	free(wait_for(h, s, "+"));
	send_raw(h, s, big, n);
	send_raw(h, s, "\r\n", 2);
	ans = wait_for(h, s, "* BYE");
	assert_contains(ans, "c1 BAD Line too long.\r\n* BYE");
	free(ans);

	/* After login, the configuration's limits. */
	s = connect_session(h, 3);
	login(h, s, "alice");
	line = xasprintf("a1 APPEND INBOX {%zu}\r\n", n + 100);
	send_raw(h, s, line, strlen(line));
	free(line);
	ans = wait_for(h, s, "+");
	assert_contains(ans, "+ OK");
	free(ans);
	send_raw(h, s, "Subject: big\r\n\r\n", 16);
	memset(big, 'y', n);
	send_raw(h, s, big, n);
	send_raw(h, s, "0123456789012345678901234567890123456789012345678901234567890123456789"
		       "0123456789012345678901234567890123456789012345678901234567890123456789",
		 84);
	EXPECT_CONT(h, s, "", "a1", "a1 OK [APPENDUID");
	free(big);
}

/* RFC 4959: "=" is an empty initial response; PLAIN then asks with "+ ". */
static void
test_authenticate_empty_initial_response(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *plus;

	send_raw(h, s, "a1 AUTHENTICATE PLAIN =\r\n", 25);
	plus = wait_for(h, s, "+");
	assert_contains(plus, "+ \r\n");
	assert_absent(plus, "a1 ");
	free(plus);
	EXPECT_CONT(h, s, "AGFsaWNlAGFsaWNlMTIz", "a1", "a1 OK [CAPABILITY");
}

/* A keyword that does not fit (MBOX_MAX_KEYWORDS) is NO [LIMIT], not
   BAD, and does not count toward max_bad_commands; PERMANENTFLAGS
   offers \* only while there is room. */
static void
test_keyword_limit(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans, *c;
	int limit_at = -1;

	login(h, s, "alice");
	ans = cmd(h, s, "a1", "SELECT INBOX");
	assert_contains(ans, "\\*)] Flags permitted.");
	free(ans);
	for (int i = 0; i < MBOX_MAX_KEYWORDS + 2 && limit_at < 0; i++) {
		c = xasprintf("STORE 1 +FLAGS (kw%d)", i);
		ans = cmd(h, s, "a2", c);
		free(c);
		if (strstr(ans, "a2 NO [LIMIT]") != NULL)
			limit_at = i;
		else
			assert_contains(ans, "a2 OK");
		free(ans);
	}
	assert_true(limit_at > 0 && limit_at <= MBOX_MAX_KEYWORDS);
	/* More than max_bad_commands of them: the session goes on. */
	for (int i = 0; i < 7; i++)
		EXPECT(h, s, "a3", "STORE 1 +FLAGS (one-too-many)", "a3 NO [LIMIT]");
	EXPECT(h, s, "a4", "APPEND INBOX (another) {10+}\r\nSubject: x", "a4 NO [LIMIT]");
	EXPECT(h, s, "a5", "STORE 1 -FLAGS (one-too-many kw1)", "a5 OK");
	EXPECT(h, s, "a6", "STORE 1 +FLAGS (kw1)", "a6 OK");
	ans = cmd(h, s, "a7", "SELECT INBOX");
	assert_contains(ans, "* OK [PERMANENTFLAGS (");
	assert_contains(ans, ")] Flags permitted.");
	assert_absent(ans, "\\*)]");
	free(ans);
	EXPECT(h, s, "a8", "NOOP", "a8 OK");
}

/* Names up to STORAGE_NAME_MAX octets work; longer ones, 255 and 256
   octets alike, get the same NO [CANNOT] naming the limit. */
static void
test_mailbox_name_length(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char name[300], *c, *ans;
	const size_t lens[] = { STORAGE_NAME_MAX + 1, 255, 256, 290 };

	login(h, s, "alice");
	memset(name, 'n', STORAGE_NAME_MAX);
	name[STORAGE_NAME_MAX] = '\0';
	c = xasprintf("CREATE %s", name);
	EXPECT(h, s, "a1", c, "a1 OK");
	free(c);
	c = xasprintf("SELECT %s", name);
	EXPECT(h, s, "a2", c, "a2 OK");
	free(c);
	c = xasprintf("APPEND %s {10+}\r\nSubject: x", name);
	EXPECT(h, s, "a3", c, "a3 OK [APPENDUID");
	free(c);
	for (size_t i = 0; i < N_ELEMENTS(lens); i++) {
		memset(name, 'm', lens[i]);
		name[lens[i]] = '\0';
		c = xasprintf("CREATE %s", name);
		ans = cmd(h, s, "b1", c);
		free(c);
		assert_contains(ans, "b1 NO [CANNOT] Mailbox name too long (at most 200 octets).");
		free(ans);
		c = xasprintf("SELECT %s", name);
		EXPECT(h, s, "b2", c, "b2 NO [CANNOT] Mailbox name too long");
		free(c);
	}
	EXPECT(h, s, "b3", "NOOP", "b3 OK");
}

/* A new mailbox name must be in Unicode normalization form C (RFC 9051
   5.1, Net-Unicode): "Cafe" + U+0301 is refused by CREATE and RENAME,
   in UTF-8 (IMAP4rev2) and in modified UTF-7 alike, and "Caf" + U+00E9
   (the same name in NFC) is made; existing names are not checked. */
static void
test_mailbox_names_nfc(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0), old = connect_session(h, 1);

	login(h, s, "alice");
	login(h, old, "alice");
	EXPECT(h, s, "n0", "ENABLE IMAP4rev2", "n0 OK");
	EXPECT(h, s, "n1", "CREATE \"Cafe\xcc\x81\"", "n1 NO [CANNOT]");
	EXPECT(h, old, "n2", "CREATE Cafe&AwE-", "n2 NO [CANNOT]");
	EXPECT(h, s, "n3", "CREATE \"Caf\xc3\xa9\"", "n3 OK");
	EXPECT(h, old, "n4", "EXAMINE Caf&AOk-", "n4 OK");
	EXPECT(h, old, "n4b", "UNSELECT", "n4b OK");
	EXPECT(h, s, "n5", "RENAME \"Caf\xc3\xa9\" \"Cafe\xcc\x81s\"", "n5 NO [CANNOT]");
	EXPECT(h, s, "n6", "RENAME \"Caf\xc3\xa9\" \"Caf\xc3\xa9s\"", "n6 OK");
	EXPECT(h, s, "n7", "CREATE plain/ascii", "n7 OK");
}

/* ENABLE IMAP4rev2 (RFC 9051): names in UTF-8 both ways, no \Recent,
   SEARCH answers ESEARCH, SELECT sends a LIST line, unsolicited FETCH
   has the UID. A session that did not enable it keeps IMAP4rev1's
   answers on the same mailboxes. */
static void
test_imap4rev2(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0), old = connect_session(h, 1);
	char *ans;

	/* ENABLE belongs to the authenticated state (RFC 9051 6.3.1). */
	EXPECT(h, s, "a0", "ENABLE IMAP4rev2", "a0 BAD");
	login(h, s, "alice");
	login(h, old, "alice");
	ans = cmd(h, s, "a1", "ENABLE IMAP4rev2");
	assert_contains(ans, "* ENABLED IMAP4rev2\r\n");
	assert_contains(ans, "a1 OK");
	free(ans);
	/* Told once: a second ENABLE lists nothing new. */
	ans = cmd(h, s, "a2", "ENABLE IMAP4rev2");
	assert_contains(ans, "* ENABLED\r\n");
	free(ans);

	/* UTF-8 names: created, listed and selected as UTF-8. */
	EXPECT(h, s, "a3", "CREATE \"Entw\xc3\xbcrfe\"", "a3 OK");
	ans = cmd(h, s, "a4", "LIST \"\" \"Entw*\"");
	assert_contains(ans, "* LIST (\\HasNoChildren) \"/\" \"Entw\xc3\xbcrfe\"\r\n");
	free(ans);
	EXPECT(h, s, "a5", "STATUS \"Entw\xc3\xbcrfe\" (MESSAGES)",
	       "* STATUS \"Entw\xc3\xbcrfe\" (MESSAGES 0)");
	/* ... and the same mailbox in modified UTF-7 to a rev1 session. */
	EXPECT(h, old, "b1", "LIST \"\" Entw*", "\"Entw&APw-rfe\"");
	EXPECT(h, old, "b2", "STATUS Entw&APw-rfe (MESSAGES)", "b2 OK");
	/* A rev2 session's "&" is a plain character, not a shift. */
	EXPECT(h, s, "a6", "CREATE \"a&b\"", "a6 OK");
	EXPECT(h, old, "b3", "LIST \"\" a*", "\"a&-b\"");
	/* Invalid UTF-8: a lone continuation octet, an overlong "/", a
	   surrogate, a C1 control. */
	EXPECT(h, s, "a7", "CREATE \"x\x80y\"", "a7 NO [CANNOT] Mailbox name is not valid UTF-8.");
	EXPECT(h, s, "a8", "CREATE \"x\xc0\xafy\"", "a8 NO [CANNOT]");
	EXPECT(h, s, "a9", "CREATE \"x\xed\xa0\x80y\"", "a9 NO [CANNOT]");
	EXPECT(h, s, "a10", "CREATE \"x\xc2\x85y\"", "a10 NO [CANNOT]");
	EXPECT(h, s, "a11", "LIST \"\" \"x\x80*\"", "a11 BAD");

	/* SELECT: no RECENT, a LIST line with the normalized name. The
	   session claims the \Recent messages (no other session gets them)
	   but never shows them. */
	ans = cmd(h, s, "a12", "SELECT inbox");
	assert_contains(ans, "* 2 EXISTS");
	assert_null(strstr(ans, "RECENT"));
	assert_contains(ans, "* LIST () \"/\" \"INBOX\"\r\n");
	assert_contains(ans, "a12 OK [READ-WRITE]");
	free(ans);
	ans = cmd(h, s, "a13", "FETCH 1:2 FLAGS");
	assert_contains(ans, "* 1 FETCH (FLAGS ())");
	assert_null(strstr(ans, "\\Recent"));
	free(ans);
	EXPECT(h, s, "a14", "SELECT Trash", "* LIST (\\Trash) \"/\" \"Trash\"");
	EXPECT(h, s, "a15", "SELECT INBOX", "* OK [CLOSED]");

	/* SEARCH answers ESEARCH (ALL when no RETURN), also when empty;
	   RETURN options are kept. */
	ans = cmd(h, s, "a16", "SEARCH ALL");
	assert_contains(ans, "* ESEARCH (TAG \"a16\") ALL 1:2\r\n");
	assert_null(strstr(ans, "* SEARCH"));
	free(ans);
	EXPECT(h, s, "a17", "UID SEARCH FLAGGED", "* ESEARCH (TAG \"a17\") UID\r\n");
	EXPECT(h, s, "a18", "SEARCH RETURN (COUNT) ALL", "* ESEARCH (TAG \"a18\") COUNT 2\r\n");
	/* The rev1 session still gets SEARCH. */
	EXPECT(h, old, "b4", "SELECT INBOX", "b4 OK");
	EXPECT(h, old, "b5", "SEARCH ALL", "* SEARCH 1 2\r\n");

	/* Another session's flag change reaches the rev2 session with its
	   UID, and STORE's own answer has it too. */
	EXPECT(h, old, "b6", "STORE 2 +FLAGS (\\Flagged)", "b6 OK");
	EXPECT(h, s, "a19", "NOOP", "* 2 FETCH (UID ");
	ans = cmd(h, s, "a20", "STORE 1 +FLAGS (\\Answered)");
	assert_contains(ans, "* 1 FETCH (UID ");
	assert_contains(ans, "FLAGS (\\Answered)");
	free(ans);
	/* New mail: EXISTS, never RECENT. */
	EXPECT(h, old, "b7", "APPEND INBOX {14+}\r\nSubject: n\r\n\r\n", "b7 OK");
	ans = cmd(h, s, "a21", "NOOP");
	assert_contains(ans, "* 3 EXISTS");
	assert_null(strstr(ans, "RECENT"));
	free(ans);
	EXPECT(h, s, "a22", "LOGOUT", "* BYE");
}

/* STATUS SIZE and DELETED (RFC 8438, RFC 9051 6.3.11) and LIST-STATUS
   (RFC 5819): a STATUS after each selectable mailbox's LIST line, none
   for a \Noselect or \NonExistent name; unknown items are BAD. */
static void
test_status_size_deleted_and_list_status(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans;

	login(h, s, "alice");
	/* The lab mailbox: two messages of 117 and 103 octets as served. */
	ans = cmd(h, s, "a1", "STATUS INBOX (SIZE DELETED MESSAGES)");
	assert_contains(ans, "* STATUS \"INBOX\" (SIZE ");
	assert_contains(ans, " DELETED 0 MESSAGES 2)");
	free(ans);
	EXPECT(h, s, "a2", "SELECT INBOX", "a2 OK");
	EXPECT(h, s, "a3", "STORE 1 +FLAGS (\\Deleted)", "a3 OK");
	EXPECT(h, s, "a4", "STATUS INBOX (DELETED)", "* STATUS \"INBOX\" (DELETED 1)");
	/* SIZE is the sum of the RFC822.SIZEs. */
	ans = cmd(h, s, "a5", "FETCH 1:2 RFC822.SIZE");
	unsigned long s1 = 0, s2 = 0;
	const char *p1 = strstr(ans, "* 1 FETCH (RFC822.SIZE "), *p2 = strstr(ans, "* 2 FETCH (RFC822.SIZE ");
	assert_non_null(p1);
	assert_non_null(p2);
	s1 = strtoul(p1 + strlen("* 1 FETCH (RFC822.SIZE "), NULL, 10);
	s2 = strtoul(p2 + strlen("* 2 FETCH (RFC822.SIZE "), NULL, 10);
	free(ans);
	char want[64];
	snprintf(want, sizeof(want), "* STATUS \"INBOX\" (SIZE %lu)", s1 + s2);
	EXPECT(h, s, "a6", "STATUS INBOX (SIZE)", want);
	EXPECT(h, s, "a7", "STATUS INBOX (SIZE FROB)", "a7 BAD Unknown STATUS item.");
	EXPECT(h, s, "a8", "STATUS INBOX ()", "a8 BAD");
	EXPECT(h, s, "a9", "STATUS INBOX", "a9 BAD");

	/* LIST-STATUS over a tree with a \Noselect parent. */
	EXPECT(h, s, "b1", "CREATE Work/Project", "b1 OK");
	EXPECT(h, s, "b2", "APPEND Work/Project {14+}\r\nSubject: x\r\n\r\n", "b2 OK");
	ans = cmd(h, s, "b3", "LIST \"\" \"*\" RETURN (STATUS (MESSAGES UNSEEN))");
	assert_contains(ans, "* LIST (\\HasNoChildren) \"/\" \"Work/Project\"\r\n"
			     "* STATUS \"Work/Project\" (MESSAGES 1 UNSEEN 1)\r\n");
	assert_contains(ans, "* LIST (\\NonExistent \\HasChildren) \"/\" \"Work\"\r\n");
	assert_null(strstr(ans, "* STATUS \"Work\" "));
	/* The selected mailbox too. */
	assert_contains(ans, "* STATUS \"INBOX\" (MESSAGES 2 UNSEEN 2)");
	assert_contains(ans, "b3 OK");
	free(ans);
	/* (a second session: this one has used up most of its BADs) */
	int t = connect_session(h, 1);
	login(h, t, "alice");
	EXPECT(h, t, "b4", "LIST \"\" \"*\" RETURN (STATUS (NOPE))", "b4 BAD");
	EXPECT(h, t, "b5", "LIST \"\" \"*\" RETURN (STATUS)", "b5 BAD");
	ans = cmd(h, s, "b6", "LIST (SUBSCRIBED) \"\" \"*\" RETURN (STATUS (SIZE))");
	assert_contains(ans, "b6 OK");
	free(ans);
}

/* SEARCHRES (RFC 5182): SEARCH RETURN (SAVE) keeps the UIDs found as "$"
   for FETCH, STORE, COPY, SEARCH and their UID forms; SAVE alone answers
   only the tagged OK; with MIN/MAX alone only those are kept; an expunged
   message falls out; a failed SEARCH with SAVE and a new SELECT empty it;
   "$" before any SAVE is empty, not an error. */
static void
test_searchres(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans;

	login(h, s, "alice");
	EXPECT(h, s, "a1", "SELECT INBOX", "a1 OK");
	for (int i = 0; i < 3; i++)
		EXPECT(h, s, "a2", "APPEND INBOX {14+}\r\nSubject: n\r\n\r\n", "a2 OK");
	/* 5 messages, UIDs 1..5 */
	EXPECT(h, s, "a3", "NOOP", "a3 OK");
	ans = cmd(h, s, "a4", "FETCH $ FLAGS");
	assert_null(strstr(ans, "FETCH ("));
	assert_contains(ans, "a4 OK");
	free(ans);
	EXPECT(h, s, "a5", "STORE 2,4 +FLAGS.SILENT (\\Flagged)", "a5 OK");
	ans = cmd(h, s, "a6", "SEARCH RETURN (SAVE) FLAGGED");
	assert_null(strstr(ans, "* SEARCH"));
	assert_null(strstr(ans, "* ESEARCH"));
	assert_contains(ans, "a6 OK");
	free(ans);
	ans = cmd(h, s, "a7", "FETCH $ (UID)");
	assert_contains(ans, "* 2 FETCH (UID 2)");
	assert_contains(ans, "* 4 FETCH (UID 4)");
	assert_null(strstr(ans, "* 1 FETCH"));
	assert_null(strstr(ans, "* 3 FETCH"));
	free(ans);
	EXPECT(h, s, "a8", "UID SEARCH $", "* SEARCH 2 4\r\n");
	EXPECT(h, s, "a9", "SEARCH UID $ NOT 2", "* SEARCH 4\r\n");
	EXPECT(h, s, "a10", "CREATE Saved", "a10 OK");
	EXPECT(h, s, "a11", "UID COPY $ Saved", "a11 OK [COPYUID");
	EXPECT(h, s, "a12", "STATUS Saved (MESSAGES)", "(MESSAGES 2)");
	EXPECT(h, s, "a13", "STORE $ +FLAGS.SILENT (\\Deleted)", "a13 OK");
	/* Expunged: "$" no longer names them (UIDs, RFC 5182 2.1). */
	EXPECT(h, s, "a14", "EXPUNGE", "a14 OK");
	ans = cmd(h, s, "a15", "FETCH $ UID");
	assert_null(strstr(ans, "FETCH ("));
	free(ans);
	/* SAVE with MIN alone keeps the minimum, and still answers MIN. */
	EXPECT(h, s, "a16", "SEARCH RETURN (SAVE MIN) ALL", "* ESEARCH (TAG \"a16\") MIN 1\r\n");
	EXPECT(h, s, "a17", "UID SEARCH $", "* SEARCH 1\r\n");
	/* SAVE with ALL keeps all, and answers ALL. */
	EXPECT(h, s, "a18", "UID SEARCH RETURN (SAVE ALL) ALL",
	       "* ESEARCH (TAG \"a18\") UID ALL 1,3,5\r\n");
	EXPECT(h, s, "a19", "UID SEARCH $", "* SEARCH 1 3 5\r\n");
	/* A failed SEARCH with SAVE empties "$". */
	EXPECT(h, s, "a20", "SEARCH RETURN (SAVE) FROBNICATE", "a20 BAD");
	EXPECT(h, s, "a21", "UID SEARCH $", "* SEARCH\r\n");
	EXPECT(h, s, "a22", "SEARCH RETURN (SAVE) ALL", "a22 OK");
	EXPECT(h, s, "a23", "UID SEARCH $", "* SEARCH 1 3 5\r\n");
	/* A new SELECT empties it. */
	EXPECT(h, s, "a24", "SELECT INBOX", "a24 OK");
	EXPECT(h, s, "a25", "UID SEARCH $", "* SEARCH\r\n");
	EXPECT(h, s, "a26", "CAPABILITY", " SEARCHRES");
}

/* BINARY (RFC 3516, RFC 9051 6.4.5): a leaf part decoded from base64 and
   quoted-printable, sizes, partials, a literal8 when NUL is in it, \Seen
   set by BINARY and not by BINARY.PEEK, NO [UNKNOWN-CTE] for an encoding
   we do not know, BAD for a section that is not part numbers; APPEND of a
   literal8 whose binary part comes back octet for octet. */
static void
test_binary(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char *ans;
	static const char mixed[] =
		"From: a@example.org\r\nMime-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
		"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
		"aGVsbG8gd29ybGQ=\r\n"
		"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
		"caf=C3=A9  \r\nsoft=\r\nbreak\r\n"
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
		"AQIAAw==\r\n"
		"--b\r\nContent-Type: application/x-odd\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
		"begin 644 x\r\n"
		"--b--\r\n";
	char *c;

	login(h, s, "alice");
	EXPECT(h, s, "a0", "CREATE bin", "a0 OK");
	c = xasprintf("APPEND bin {%zu+}\r\n%s", strlen(mixed), mixed);
	EXPECT(h, s, "a1", c, "a1 OK");
	free(c);
	EXPECT(h, s, "a2", "SELECT bin", "a2 OK");
	EXPECT(h, s, "a3", "FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])",
	       "* 1 FETCH (BINARY.SIZE[1] 11 BINARY[1] {11}\r\nhello world)");
	/* QP: =XX octets, trailing white space deleted, soft line breaks. */
	EXPECT(h, s, "a4", "FETCH 1 BINARY.PEEK[2]",
	       "* 1 FETCH (BINARY[2] {16}\r\ncaf\xc3\xa9\r\nsoftbreak)");
	/* NUL inside: a literal8. */
	ans = cmd(h, s, "a5", "FETCH 1 BINARY.PEEK[3]");
	assert_non_null(memmem(ans, strlen(ans) + 1, "BINARY[3] ~{4}\r\n\x01\x02", 16));
	free(ans);
	EXPECT(h, s, "a5b", "FETCH 1 BINARY.SIZE[3]", "* 1 FETCH (BINARY.SIZE[3] 4)");
	/* A partial of the decoded data. */
	EXPECT(h, s, "a6", "FETCH 1 BINARY.PEEK[1]<6.100>", "* 1 FETCH (BINARY[1]<6> {5}\r\nworld)");
	/* BINARY[] is the message as it is. */
	ans = cmd(h, s, "a7", "FETCH 1 (BINARY.SIZE[] RFC822.SIZE)");
	assert_contains(ans, "* 1 FETCH (BINARY.SIZE[] ");
	free(ans);
	/* An encoding we cannot decode. */
	ans = cmd(h, s, "a8", "FETCH 1 BINARY.PEEK[4]");
	assert_contains(ans, "BINARY[4] NIL");
	assert_contains(ans, "a8 NO [UNKNOWN-CTE]");
	free(ans);
	EXPECT(h, s, "a9", "FETCH 1 BINARY.PEEK[1.TEXT]", "a9 BAD");
	/* \Seen: not by PEEK, by BINARY. */
	EXPECT(h, s, "b1", "FETCH 1 FLAGS", "* 1 FETCH (FLAGS (\\Recent))");
	EXPECT(h, s, "b2", "FETCH 1 BINARY[1]", "\\Seen");

	/* A literal8 APPEND: the binary part comes back as sent. */
	static const char bin[] = "From: a@example.org\r\nMime-Version: 1.0\r\n"
				  "Content-Type: application/octet-stream\r\n"
				  "Content-Transfer-Encoding: binary\r\n\r\n"
				  "\x01-\x00\x02\n\x03\r\n";
	size_t binlen = sizeof(bin) - 1;
	char *line = xasprintf("b3 APPEND bin ~{%zu+}\r\n", binlen);
	send_raw(h, s, line, strlen(line));
	send_raw(h, s, bin, binlen);
	send_raw(h, s, "\r\n", 2);
	free(line);
	ans = wait_for(h, s, "b3 ");
	assert_contains(ans, "b3 OK [APPENDUID");
	free(ans);
	EXPECT(h, s, "b4a", "FETCH 2 BINARY.SIZE[1]", "* 2 FETCH (BINARY.SIZE[1] 8)");
	ans = cmd(h, s, "b4", "FETCH 2 BINARY.PEEK[1]");
	assert_contains(ans, "BINARY[1] ~{8}\r\n");
	assert_non_null(memmem(ans, strlen(ans) + 8, "~{8}\r\n\x01-\x00\x02\n\x03\r\n", 14));
	free(ans);
	EXPECT(h, s, "b5", "CAPABILITY", " BINARY");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_any_state_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_and_authenticate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_select_lab_mailbox_and_fetch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_resumes_when_output_drained_at_once,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_search_store_expunge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_errors_answered_with_their_code, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_copy_and_mailboxes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_sessions_idle_sees_expunge_at_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_two_sessions_qresync_highestmodseq_below_pending_expunge, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_two_sessions_qresync_highestmodseq_with_expungeissued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_by_another_process_reaches_idle, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_input_closes_or_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capabilities_listed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_literal_minus_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_esearch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_extended_and_special_use, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_names_mutf7, setup, teardown),
		cmocka_unit_test_setup_teardown(test_condstore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qresync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prelogin_input_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authenticate_empty_initial_response, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_keyword_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_name_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_imap4rev2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_size_deleted_and_list_status, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_searchres, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_names_nfc, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
