/* listener.c: the accept loop (see listener.h). */
#include "listener.h"
#include "log.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

struct listener_socket {
	struct listener *listener;
	int fd;
	struct event_io *io;
};

struct listener {
	struct event_loop *loop;
	/* One port on one or more addresses (listener_add()). */
	struct listener_socket socks[LISTENER_MAX_SOCKETS];
	size_t sock_count;
	struct event_timer *pause;
	char *log_prefix;
	bool tcp_nodelay;
	listener_accept_cb *cb;
	void *ctx;
};

static void
listener_want_read(struct listener *listener, bool want)
{
	for (size_t i = 0; i < listener->sock_count; i++)
		event_io_want_read(listener->socks[i].io, want);
}

static void
listener_resume(void *ctx)
{
	struct listener *listener = ctx;

	listener->pause = NULL;
	listener_want_read(listener, true);
}

static void
listener_input(void *ctx)
{
	struct listener_socket *sock = ctx;
	struct listener *listener = sock->listener;

	for (int i = 0; i < LISTENER_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);
		char host[NI_MAXHOST], serv[NI_MAXSERV];
		int fd;

		memset(&ss, 0, sizeof(ss));
		fd = accept4(sock->fd, (struct sockaddr *)&ss, &sslen,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of descriptors: pause accepting for a
				   moment rather than spin on a readable listener. */
				log_warn("-", "%saccept: %s; pausing for 1 s", listener->log_prefix,
					 strerror(errno));
				listener_want_read(listener, false);
				if (listener->pause == NULL)
					listener->pause = event_timer_add(listener->loop, 1000,
									  listener_resume, listener);
			}
			return;
		}
		if (listener->tcp_nodelay) {
			/* Small writes must not wait for the ACK of the
			   previous one (Nagle + delayed ACK = 40 ms). */
			int one = 1;
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		/* Only IP peers have a numeric name: glibc's getnameinfo()
		   reads past a short AF_UNIX address. */
		if (ss.ss_family == AF_UNIX) {
			snprintf(host, sizeof(host), "local");
			snprintf(serv, sizeof(serv), "0");
		} else if (getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), serv,
				       sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
			snprintf(host, sizeof(host), "unknown");
			snprintf(serv, sizeof(serv), "0");
		}
		listener->cb(listener->ctx, fd, host, serv);
	}
}

struct listener *
listener_new(struct event_loop *loop, int listen_fd, const struct listener_settings *set,
	     listener_accept_cb *cb, void *ctx)
{
	struct listener *listener = xcalloc(1, sizeof(*listener));

	listener->loop = loop;
	listener->log_prefix = xstrdup(set->log_prefix != NULL ? set->log_prefix : "");
	listener->tcp_nodelay = set->tcp_nodelay;
	listener->cb = cb;
	listener->ctx = ctx;
	listener_add(listener, listen_fd);
	return listener;
}

void
listener_add(struct listener *listener, int listen_fd)
{
	struct listener_socket *sock;

	if (listener->sock_count == LISTENER_MAX_SOCKETS)
		fatal("listener_add: more than %d sockets", LISTENER_MAX_SOCKETS);
	sock = &listener->socks[listener->sock_count++];
	sock->listener = listener;
	sock->fd = listen_fd;
	sock->io = event_io_add(listener->loop, listen_fd, listener_input, NULL, sock);
	/* A paused listener stays paused on its new socket too. */
	if (listener->pause != NULL)
		event_io_want_read(sock->io, false);
}

void
listener_free(struct listener **_listener)
{
	struct listener *listener = *_listener;

	if (listener == NULL)
		return;
	*_listener = NULL;
	for (size_t i = 0; i < listener->sock_count; i++)
		event_io_remove(&listener->socks[i].io);
	event_timer_remove(&listener->pause);
	free(listener->log_prefix);
	free(listener);
}
