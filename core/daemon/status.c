/* status.c: the status socket and --status (see status.h). */
#include "status.h"
#include "config.h"
#include "connection.h"
#include "listener.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* At most this many readers at once; more are refused at once. */
#define STATUS_MAX_READERS 8

struct status_reader {
	struct status_socket *sock;
	struct connection *conn;
};

struct status_socket {
	struct event_loop *loop;
	char *path;
	int fd;
	struct listener *listener;
	status_fn *fn;
	void *ctx;
	unsigned readers;
};

static void
reader_input(void *ctx)
{
	struct status_reader *r = ctx;
	size_t len;

	/* Nothing is asked: whatever is sent is dropped. */
	(void)connection_input(r->conn, &len);
	connection_input_consume(r->conn, len);
}

static void
reader_output(void *ctx)
{
}

static void
reader_hangup(void *ctx, const char *reason)
{
	struct status_reader *r = ctx;

	connection_kill(r->conn, reason);
}

static void
reader_destroy(void *ctx)
{
	struct status_reader *r = ctx;

	connection_free(&r->conn);
	r->sock->readers--;
	free(r);
}

static const struct connection_callbacks reader_callbacks = {
	.input = reader_input,
	.output = reader_output,
	.hangup = reader_hangup,
	.destroy = reader_destroy,
};

static void
status_accept(void *ctx, int fd, const char *host, const char *port)
{
	struct status_socket *sock = ctx;
	struct status_reader *r;

	if (sock->readers >= STATUS_MAX_READERS || !event_fd_ok(fd)) {
		close(fd);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->sock = sock;
	r->conn = connection_new(sock->loop, fd, NULL, &reader_callbacks, r);
	sock->readers++;
	sock->fn(sock->ctx, connection_outbuf(r->conn));
	connection_close_after_flush(r->conn, "status sent");
}

/* Is a server answering on path? */
static bool
status_socket_live(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return live;
}

static int
status_address(const char *path, struct sockaddr_un *sun, char **error_r)
{
	i_zero(sun);
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		*error_r = xasprintf("server.status_socket %s: longer than %zu octets", path,
				     sizeof(sun->sun_path) - 1);
		return -1;
	}
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

struct status_socket *
status_socket_open(struct event_loop *loop, const char *path, status_fn *fn, void *ctx,
		   char **error_r)
{
	struct listener_settings set = { .log_prefix = "status: " };
	struct status_socket *sock;
	struct sockaddr_un sun;
	struct stat st;
	mode_t old_mask;
	int fd;

	if (status_address(path, &sun, error_r) < 0)
		return NULL;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*error_r = xasprintf("server.status_socket %s: exists and is not a socket",
					     path);
			return NULL;
		}
		if (status_socket_live(&sun)) {
			*error_r = xasprintf("server.status_socket %s: another server answers there",
					     path);
			return NULL;
		}
		(void)unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*error_r = xasprintf("server.status_socket: socket: %s", strerror(errno));
		return NULL;
	}
	/* 0600 from the start: no moment where others could connect. */
	old_mask = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 8) < 0) {
		*error_r = xasprintf("server.status_socket %s: %s", path, strerror(errno));
		umask(old_mask);
		close(fd);
		return NULL;
	}
	umask(old_mask);
	if (!event_fd_ok(fd)) {
		*error_r = xstrdup("server.status_socket: descriptor beyond FD_SETSIZE");
		close(fd);
		(void)unlink(path);
		return NULL;
	}
	sock = xcalloc(1, sizeof(*sock));
	sock->loop = loop;
	sock->path = xstrdup(path);
	sock->fd = fd;
	sock->fn = fn;
	sock->ctx = ctx;
	sock->listener = listener_new(loop, fd, &set, status_accept, sock);
	return sock;
}

void
status_socket_close(struct status_socket **_sock)
{
	struct status_socket *sock = *_sock;

	if (sock == NULL)
		return;
	listener_free(&sock->listener);
	close(sock->fd);
	(void)unlink(sock->path);
	free(sock->path);
	free(sock);
	*_sock = NULL;
}

int
status_query(const char *path)
{
	struct sockaddr_un sun;
	char buf[8192], *error = NULL;
	ssize_t n;
	int fd;

	if (status_address(path, &sun, &error) < 0) {
		fprintf(stderr, "imapserver: %s\n", error);
		free(error);
		return 1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int err = errno;

		fprintf(stderr, "imapserver: no running server answers on %s: %s%s\n", path,
			strerror(err),
			err == EACCES ? " (run as root or as server.user)" :
			err == ENOENT || err == ECONNREFUSED ? " (is it running?)" : "");
		if (fd >= 0)
			close(fd);
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
	}
	close(fd);
	return n < 0 ? 1 : 0;
}

bool
status_requested(int argc, char *const argv[])
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--status") == 0)
			return true;
	}
	return false;
}

int
status_main(int argc, char *argv[])
{
	const char *path = NULL;
	struct config *cfg = NULL;
	char *error = NULL, *sock;
	int ret;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--status") != 0) {
			fprintf(stderr, "usage: imapserver [-c FILE] --status\n");
			return 1;
		}
	}
	if (path == NULL && access("etc/imapserver.conf", F_OK) == 0)
		path = "etc/imapserver.conf";
	if (path != NULL) {
		if (config_load(path, &cfg, &error) < 0) {
			fprintf(stderr, "%s\n", error);
			free(error);
			return 1;
		}
	} else {
		char cwd[4096];

		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			fprintf(stderr, "imapserver: getcwd: %s\n", strerror(errno));
			return 1;
		}
		cfg = config_defaults(cwd);
	}
	sock = config_status_socket(cfg);
	ret = status_query(sock);
	free(sock);
	config_free(&cfg);
	return ret;
}
