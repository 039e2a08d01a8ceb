/* test_list.c: the mailbox hierarchy over IMAP, in process, on every
   storage backend: CREATE of a name with superiors, LIST and LSUB of
   the \Noselect superiors ('%' and '*', \NonExistent to an extended
   LIST, \HasChildren), RENAME of a tree and its refusals, DELETE of a
   parent, and the sessions that have a moved mailbox selected (RFC 3501
   6.3.3-6.3.9, RFC 5258). The answers are Dovecot 2.3's on Maildir++
   (checked side by side), where the RFCs leave a choice. */
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

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SESSIONS 2

/* The backend the sessions use (set before each group runs). */
static const char *backend;

struct harness {
	char dir[64];
	struct event_loop *loop;
	struct watch *watch;
	struct imap_server *server;
	int fds[MAX_SESSIONS];
	struct buf in[MAX_SESSIONS];
};

static int
setup(void **state)
{
	struct harness *h = xcalloc(1, sizeof(*h));
	struct config *cfg;
	struct server_gen *gen;
	char path[256], *error = NULL;
	FILE *f;

	snprintf(h->dir, sizeof(h->dir), "/tmp/test_list.XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(path, sizeof(path), "%s/users", h->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("alice alice123\n", f);
	assert_int_equal(fclose(f), 0);
	snprintf(path, sizeof(path), "%s/imapserver.conf", h->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "storage: { backend = \"%s\"; root = \"mail\"; };\n"
		   "auth: { backend = \"passwd-file\"; file = \"users\"; };\n"
		   "limits: { auth_fail_delay = 20; };\n"
		   "log: { level = \"error\"; };\n",
		backend);
	assert_int_equal(fclose(f), 0);
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
   until (or 3 s pass). Returns everything received (caller frees). */
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
		for (const char *p = h->in[s].data, *eol; (eol = strstr(p, "\r\n")) != NULL;
		     p = eol + 2) {
			if (strncmp(p, until, strlen(until)) == 0)
				return buf_steal(&h->in[s]);
		}
	}
	return buf_steal(&h->in[s]);
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

/* Sends "tag command"; returns the answer up to the tagged line. */
static char *
cmd(struct harness *h, int s, const char *tag, const char *command)
{
	char *line = xasprintf("%s %s\r\n", tag, command), *until = xasprintf("%s ", tag);
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
			fail_msg("%s: expected \"%s\" in:\n%s", backend, (needle), (hay)); \
	} while (0)

#define assert_absent(hay, needle)                                                     \
	do {                                                                            \
		if (strstr((hay), (needle)) != NULL)                                    \
			fail_msg("%s: did not expect \"%s\" in:\n%s", backend, (needle),  \
				 (hay));                                                \
	} while (0)

#define EXPECT(h, s, tag, command, needle)                                              \
	do {                                                                            \
		char *ans_ = cmd((h), (s), (tag), (command));                            \
		assert_contains(ans_, (needle));                                         \
		free(ans_);                                                              \
	} while (0)

static int
session(struct harness *h, int s)
{
	int sv[2];
	char *ans;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fd_set_nonblock_cloexec(sv[0]), 0);
	assert_int_equal(fd_set_nonblock_cloexec(sv[1]), 0);
	h->fds[s] = sv[1];
	imap_server_accept_fd(h->server, sv[0], "test");
	ans = wait_for(h, s, "* OK");
	free(ans);
	EXPECT(h, s, "L1", "LOGIN alice alice123", "L1 OK");
	return s;
}

/* CREATE parent/child: "parent" is \Noselect \HasChildren to '*' and to
   '%' (\NonExistent to an extended LIST), it cannot be selected, and it
   can be created, which makes it a mailbox that keeps its child. */
static void
test_create_child_lists_its_parent_noselect(void **state)
{
	struct harness *h = *state;
	int s = session(h, 0);
	char *ans;

	EXPECT(h, s, "a1", "CREATE parent/child", "a1 OK");
	ans = cmd(h, s, "a2", "LIST \"\" \"*\"");
	assert_contains(ans, "* LIST (\\Noselect \\HasChildren) \"/\" \"parent\"\r\n");
	assert_contains(ans, "* LIST (\\HasNoChildren) \"/\" \"parent/child\"\r\n");
	free(ans);
	ans = cmd(h, s, "a3", "LIST \"\" \"%\"");
	assert_contains(ans, "* LIST (\\Noselect \\HasChildren) \"/\" \"parent\"\r\n");
	assert_absent(ans, "parent/child");
	free(ans);
	ans = cmd(h, s, "a4", "LIST \"\" \"parent/%\"");
	assert_contains(ans, "* LIST (\\HasNoChildren) \"/\" \"parent/child\"\r\n");
	assert_absent(ans, "\"parent\"");
	free(ans);
	ans = cmd(h, s, "a5", "LIST \"parent/\" \"%\"");
	assert_contains(ans, "\"parent/child\"");
	free(ans);
	ans = cmd(h, s, "a6", "LIST \"\" \"*\" RETURN (CHILDREN)");
	assert_contains(ans, "* LIST (\\NonExistent \\HasChildren) \"/\" \"parent\"\r\n");
	free(ans);
	EXPECT(h, s, "a7", "SELECT parent", "a7 NO [NONEXISTENT]");
	EXPECT(h, s, "a8", "STATUS parent (MESSAGES)", "a8 NO [NONEXISTENT]");
	EXPECT(h, s, "a9", "CREATE parent/child", "a9 NO [ALREADYEXISTS]");
	EXPECT(h, s, "a10", "CREATE parent", "a10 OK");
	EXPECT(h, s, "a11", "LIST \"\" \"parent\"",
	       "* LIST (\\HasChildren) \"/\" \"parent\"\r\n");
	EXPECT(h, s, "a12", "SELECT parent", "a12 OK");
	/* a trailing delimiter is dropped (RFC 3501 6.3.3) */
	EXPECT(h, s, "a13", "CREATE deep/er/", "a13 OK");
	ans = cmd(h, s, "a14", "LIST \"\" \"deep*\"");
	assert_contains(ans, "* LIST (\\Noselect \\HasChildren) \"/\" \"deep\"\r\n");
	assert_contains(ans, "* LIST (\\HasNoChildren) \"/\" \"deep/er\"\r\n");
	free(ans);
}

/* RENAME of a \Noselect parent moves its inferiors with their messages;
   a mailbox parent moves with them; the refusals. */
static void
test_rename_moves_inferiors(void **state)
{
	struct harness *h = *state;
	int s = session(h, 0);
	char *ans;

	EXPECT(h, s, "a1", "CREATE parent/child", "a1 OK");
	EXPECT(h, s, "a2", "APPEND parent/child (\\Seen) {14+}\r\nSubject: x\r\n\r\n",
	       "a2 OK");
	EXPECT(h, s, "a3", "RENAME parent parent2", "a3 OK");
	ans = cmd(h, s, "a4", "LIST \"\" \"*\"");
	assert_contains(ans, "* LIST (\\Noselect \\HasChildren) \"/\" \"parent2\"\r\n");
	assert_contains(ans, "* LIST (\\HasNoChildren) \"/\" \"parent2/child\"\r\n");
	assert_absent(ans, "\"parent\"");
	assert_absent(ans, "\"parent/child\"");
	free(ans);
	EXPECT(h, s, "a5", "STATUS parent2/child (MESSAGES UNSEEN)",
	       "* STATUS \"parent2/child\" (MESSAGES 1 UNSEEN 0)");
	EXPECT(h, s, "a6", "RENAME parent parent3", "a6 NO [NONEXISTENT]");
	/* a mailbox with inferiors */
	EXPECT(h, s, "a7", "CREATE parent2", "a7 OK");
	EXPECT(h, s, "a8", "CREATE other", "a8 OK");
	EXPECT(h, s, "a9", "RENAME parent2 other", "a9 NO [ALREADYEXISTS]");
	EXPECT(h, s, "a10", "RENAME parent2 parent2/child/x", "a10 NO [CANNOT]");
	EXPECT(h, s, "a11", "RENAME parent2 INBOX", "a11 NO [ALREADYEXISTS]");
	EXPECT(h, s, "a12", "RENAME parent2 top/p", "a12 OK");
	ans = cmd(h, s, "a13", "LIST \"\" \"top/*\"");
	assert_contains(ans, "* LIST (\\HasChildren) \"/\" \"top/p\"\r\n");
	assert_contains(ans, "* LIST (\\HasNoChildren) \"/\" \"top/p/child\"\r\n");
	free(ans);
	EXPECT(h, s, "a14", "STATUS top/p/child (MESSAGES)", "(MESSAGES 1)");
	/* onto a \Noselect name: the inferiors join */
	EXPECT(h, s, "a15", "CREATE dst/kept", "a15 OK");
	EXPECT(h, s, "a16", "RENAME top/p dst", "a16 OK");
	ans = cmd(h, s, "a17", "LIST \"\" \"dst*\"");
	assert_contains(ans, "* LIST (\\HasChildren) \"/\" \"dst\"\r\n");
	assert_contains(ans, "\"dst/kept\"");
	assert_contains(ans, "\"dst/child\"");
	free(ans);
	/* INBOX: its messages move, it stays, with its inferiors */
	EXPECT(h, s, "a18", "CREATE INBOX/sub", "a18 OK");
	EXPECT(h, s, "a19", "APPEND INBOX {14+}\r\nSubject: y\r\n\r\n", "a19 OK");
	EXPECT(h, s, "a20", "RENAME INBOX old-inbox", "a20 OK");
	EXPECT(h, s, "a21", "STATUS old-inbox (MESSAGES)", "(MESSAGES 1)");
	EXPECT(h, s, "a22", "STATUS INBOX (MESSAGES)", "(MESSAGES 0)");
	EXPECT(h, s, "a23", "LIST \"\" \"INBOX*\"", "* LIST (\\HasChildren) \"/\" \"INBOX\"");
	EXPECT(h, s, "a24", "LIST \"\" \"INBOX/sub\"", "\"INBOX/sub\"");
}

/* DELETE (RFC 3501 6.3.4): a mailbox with inferiors goes, they stay and
   it is \Noselect; a \Noselect name with inferiors is refused; INBOX is
   refused. */
static void
test_delete_parent(void **state)
{
	struct harness *h = *state;
	int s = session(h, 0);
	char *ans;

	EXPECT(h, s, "a1", "CREATE a", "a1 OK");
	EXPECT(h, s, "a2", "CREATE a/b", "a2 OK");
	EXPECT(h, s, "a3", "APPEND a {14+}\r\nSubject: x\r\n\r\n", "a3 OK");
	EXPECT(h, s, "a4", "DELETE a", "a4 OK");
	ans = cmd(h, s, "a5", "LIST \"\" \"a*\"");
	assert_contains(ans, "* LIST (\\Noselect \\HasChildren) \"/\" \"a\"\r\n");
	assert_contains(ans, "* LIST (\\HasNoChildren) \"/\" \"a/b\"\r\n");
	free(ans);
	EXPECT(h, s, "a6", "DELETE a", "a6 NO");
	EXPECT(h, s, "a7", "DELETE a/b", "a7 OK");
	ans = cmd(h, s, "a8", "LIST \"\" \"*\"");
	assert_absent(ans, "\"a\"");
	free(ans);
	EXPECT(h, s, "a9", "DELETE a", "a9 NO [NONEXISTENT]");
	EXPECT(h, s, "a10", "CREATE a", "a10 OK");
	EXPECT(h, s, "a11", "STATUS a (MESSAGES)", "(MESSAGES 0)");
	EXPECT(h, s, "a12", "DELETE INBOX", "a12 NO");
}

/* A mailbox selected by a session is not deleted or moved under it: NO
   [INUSE] for DELETE of it and for RENAME of it or of any superior,
   and the command goes through once it is no longer selected. */
static void
test_selected_inferior_blocks_rename(void **state)
{
	struct harness *h = *state;
	int s0 = session(h, 0), s1 = session(h, 1);

	EXPECT(h, s0, "a1", "CREATE p/q/r", "a1 OK");
	EXPECT(h, s1, "b1", "SELECT p/q/r", "b1 OK");
	EXPECT(h, s0, "a2", "RENAME p z", "a2 NO [INUSE]");
	EXPECT(h, s0, "a3", "RENAME p/q z", "a3 NO [INUSE]");
	EXPECT(h, s0, "a4", "DELETE p/q/r", "a4 NO [INUSE]");
	EXPECT(h, s0, "a5", "LIST \"\" \"p/q/r\"", "\"p/q/r\"");
	EXPECT(h, s1, "b2", "NOOP", "b2 OK");
	EXPECT(h, s1, "b3", "UNSELECT", "b3 OK");
	EXPECT(h, s0, "a6", "RENAME p z", "a6 OK");
	EXPECT(h, s1, "b4", "SELECT z/q/r", "b4 OK");
	EXPECT(h, s1, "b5", "SELECT p/q/r", "b5 NO [NONEXISTENT]");
}

/* LSUB and the subscription selection: a subscribed child of a parent
   that is not subscribed shows the parent \Noselect to '%' (RFC 3501
   6.3.9); RECURSIVEMATCH gives CHILDINFO (RFC 5258); RENAME leaves the
   subscriptions as they were (RFC 3501 6.3.6, as Dovecot). */
static void
test_lsub_and_subscribed_parents(void **state)
{
	struct harness *h = *state;
	int s = session(h, 0);
	char *ans;

	EXPECT(h, s, "a1", "CREATE e/f", "a1 OK");
	EXPECT(h, s, "a2", "SUBSCRIBE e/f", "a2 OK");
	ans = cmd(h, s, "a3", "LSUB \"\" \"e%\"");
	assert_contains(ans, "* LSUB (\\Noselect) \"/\" \"e\"\r\n");
	assert_absent(ans, "\"e/f\"");
	free(ans);
	EXPECT(h, s, "a4", "LSUB \"\" \"e*\"", "* LSUB () \"/\" \"e/f\"\r\n");
	ans = cmd(h, s, "a5", "LIST (SUBSCRIBED) \"\" \"e%\"");
	assert_absent(ans, "* LIST");
	free(ans);
	EXPECT(h, s, "a6", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"e%\"",
	       "* LIST (\\NonExistent \\HasChildren) \"/\" \"e\" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	EXPECT(h, s, "a7", "LIST \"\" \"e*\" RETURN (SUBSCRIBED)",
	       "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"e/f\"");
	EXPECT(h, s, "a8", "RENAME e g", "a8 OK");
	ans = cmd(h, s, "a9", "LSUB \"\" \"*\"");
	assert_contains(ans, "\"e/f\"");
	assert_absent(ans, "\"g/f\"");
	free(ans);
	EXPECT(h, s, "a10", "LIST (SUBSCRIBED) \"\" \"e*\"",
	       "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" \"e/f\"");
}

/* The inferiors of "a" are found past names that sort between "a" and
   "a/" ("a b", "a-x", "a.y" on flat), and many names list right. */
static void
test_children_found_among_many_names(void **state)
{
	struct harness *h = *state;
	int s = session(h, 0);
	char *ans, c[64];

	EXPECT(h, s, "a1", "CREATE \"a b\"", "a1 OK");
	EXPECT(h, s, "a2", "CREATE a-x", "a2 OK");
	EXPECT(h, s, "a3", "CREATE a/z/y", "a3 OK");
	EXPECT(h, s, "a4", "CREATE a", "a4 OK");
	ans = cmd(h, s, "a5", "LIST \"\" \"a*\"");
	assert_contains(ans, "* LIST (\\HasChildren) \"/\" \"a\"\r\n");
	assert_contains(ans, "* LIST (\\HasNoChildren) \"/\" \"a b\"\r\n");
	assert_contains(ans, "* LIST (\\HasNoChildren) \"/\" \"a-x\"\r\n");
	assert_contains(ans, "* LIST (\\Noselect \\HasChildren) \"/\" \"a/z\"\r\n");
	free(ans);
	for (unsigned i = 0; i < 150; i++) {
		snprintf(c, sizeof(c), "CREATE m/%03u/leaf", i);
		EXPECT(h, s, "b1", c, "b1 OK");
	}
	ans = cmd(h, s, "b2", "LIST \"\" \"m/%\"");
	for (unsigned i = 0; i < 150; i += 37) {
		snprintf(c, sizeof(c), "(\\Noselect \\HasChildren) \"/\" \"m/%03u\"\r\n", i);
		assert_contains(ans, c);
	}
	assert_absent(ans, "leaf");
	free(ans);
	EXPECT(h, s, "b3", "RENAME m n", "b3 OK");
	EXPECT(h, s, "b4", "LIST \"\" \"n/149/%\"",
	       "* LIST (\\HasNoChildren) \"/\" \"n/149/leaf\"");
	ans = cmd(h, s, "b5", "LIST \"\" \"m*\"");
	assert_absent(ans, "* LIST");
	free(ans);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_child_lists_its_parent_noselect, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rename_moves_inferiors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_selected_inferior_blocks_rename, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lsub_and_subscribed_parents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_children_found_among_many_names, setup,
						teardown),
	};
	static const char *const backends[] = { "flat", "maildir" };
	int failed = 0;

	for (size_t i = 0; i < N_ELEMENTS(backends); i++) {
		char group[64];

		backend = backends[i];
		snprintf(group, sizeof(group), "hierarchy over IMAP: %s", backend);
		failed += _cmocka_run_group_tests(group, tests, N_ELEMENTS(tests), NULL, NULL);
	}
	return failed;
}
