/* libFuzzer target: whole IMAP sessions. Each input is what a logged-in
   client sends after selecting INBOX (a few lab messages in a flat
   mailbox); the real server code answers over a socketpair, the loop
   driven pass by pass. Finds crashes in every command handler, not only
   in the parser. */
#include "config.h"
#include "event.h"
#include "imap_server.h"
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_loop *loop;
static struct imap_server *server;
static char dir[] = "/tmp/fuzz_session.XXXXXX";

static const char mailbox[] =
	"From: bob@localhost\nTo: alice@localhost\nSubject: lunch\n"
	"Received: 2022-03-10 : 14 : 30\nShall we?\n..dot\n.\n"
	"From: \"Carol\" <carol@localhost>\nTo: alice@localhost\nSubject: =?UTF-8?B?w6l0w6k=?=\n"
	"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
	"Content-Type: text/plain\n\nhello\n--b\nContent-Type: application/pdf\n"
	"Content-Transfer-Encoding: base64\n\nJVBERi0=\n--b--\n.\n";

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

static void
cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static void
setup(void)
{
	struct config *cfg;
	struct server_gen *gen;
	char path[256], *error = NULL;

	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/users", dir);
	write_file(path, "alice alice123\n");
	snprintf(path, sizeof(path), "%s/mail", dir);
	if (mkdir(path, 0700) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/mail/alice", dir);
	if (mkdir(path, 0700) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/mail/alice/mymailbox.mail", dir);
	write_file(path, mailbox);
	snprintf(path, sizeof(path), "%s/imapserver.conf", dir);
	write_file(path, "storage: { root = \"mail\"; };\nauth: { file = \"users\"; };\n"
			 "limits: { auth_fail_delay = 0; max_line = 2048; max_literal = 4096; };\n"
			 "log: { level = \"error\"; };\n");
	if (config_load(path, &cfg, &error) < 0)
		abort();
	log_set_level(LOG_LEVEL_ERROR);
	loop = event_loop_new();
	gen = server_gen_new(cfg, NULL, &error);
	if (gen == NULL)
		abort();
	server = imap_server_new(loop, gen, -1);
	server_gen_unref(&gen);
}

/* Runs the loop until the client side has been quiet for a few passes. */
static void
drain(int fd, unsigned passes)
{
	char buf[65536];
	unsigned quiet = 0;

	for (unsigned i = 0; i < passes && quiet < 3; i++) {
		ssize_t n;
		bool got = false;

		(void)event_loop_run_once(loop, 0);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			got = true;
		quiet = got ? 0 : quiet + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char prologue[] = "a LOGIN alice alice123\r\nb SELECT INBOX\r\n";
	int sv[2];

	if (loop == NULL)
		setup();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	(void)fd_set_nonblock_cloexec(sv[0]);
	(void)fd_set_nonblock_cloexec(sv[1]);
	imap_server_accept_fd(server, sv[0], "fuzz");
	drain(sv[1], 50);
	if (write(sv[1], prologue, sizeof(prologue) - 1) < 0)
		abort();
	drain(sv[1], 50);
	/* The input in pieces, the loop running between them. */
	for (size_t off = 0; off < size;) {
		size_t len = size - off < 512 ? size - off : 512;
		ssize_t n = write(sv[1], data + off, len);

		if (n <= 0) {
			drain(sv[1], 5);
			continue;
		}
		off += (size_t)n;
		drain(sv[1], 20);
	}
	drain(sv[1], 200);
	close(sv[1]);
	drain(sv[1], 5);
	return 0;
}
