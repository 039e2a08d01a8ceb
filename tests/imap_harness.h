/* imap_harness.h: the in-process IMAP test harness shared by the tests
   that drive the real server code over socketpairs (test_imap_cmds.c,
   test_notify.c, test_quota.c, test_objectid.c, test_uidonly.c):
   sessions, commands and their answers, the event loop run step by step,
   and a server in a folder of its own (harness_new()) for the files that
   need no more than a configuration. Include after cmocka, "event.h",
   "imap_server.h" and "watch.h". Functions are static inline so that a
   test file using only some of them builds without warnings. */
#ifndef IMAP_HARNESS_H
#define IMAP_HARNESS_H

#include "config.h"
#include "log.h"
#include "server_gen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static inline void
write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Runs the loop until session s has received a line starting with
   until (or 3 s pass). Returns everything received, which the caller
   frees. */
static inline char *
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

static inline int
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

static inline void
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
static inline char *
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

static inline void
login(struct harness *h, int s, const char *user)
{
	char *c = xasprintf("LOGIN %s %s123", user, user);
	EXPECT(h, s, "L1", c, "L1 OK");
	free(c);
}

/* Starts the server of h on the configuration h->dir/imapserver.conf. */
static inline void
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

/* Stops it and closes the sessions (the folder stays: a restart). */
static inline void
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

/* A server in a new folder /tmp/<name>.XXXXXX: the users alice and bob
   (passwords alice123, bob123), an empty store of backend in mail/, and
   the configuration with the lines of extra ("" for none). */
static inline struct harness *
harness_new(const char *name, const char *backend, const char *extra)
{
	struct harness *h = xcalloc(1, sizeof(*h));
	char path[256], *conf;

	snprintf(h->dir, sizeof(h->dir), "/tmp/%s.XXXXXX", name);
	assert_non_null(mkdtemp(h->dir));
	snprintf(path, sizeof(path), "%s/users", h->dir);
	write_file(path, "alice alice123\nbob bob123\n");
	snprintf(path, sizeof(path), "%s/mail", h->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/imapserver.conf", h->dir);
	conf = xasprintf("storage: { backend = \"%s\"; root = \"mail\"; };\n"
			 "auth: { backend = \"passwd-file\"; file = \"users\"; };\n"
			 "limits: { auth_fail_delay = 20; };\n"
			 "%s"
			 "log: { level = \"error\"; };\n",
			 backend, extra);
	write_file(path, conf);
	free(conf);
	log_set_level(LOG_LEVEL_ERROR);
	for (int i = 0; i < MAX_SESSIONS; i++)
		h->fds[i] = -1;
	server_start(h);
	return h;
}

/* Stops the server and removes its folder. */
static inline void
harness_free(struct harness *h)
{
	char cmd[128];

	server_stop(h);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	assert_int_equal(system(cmd), 0);
	free(h);
}

#endif
