/* netio.c: bounded-time TCP connections as a stack of layers (see
   netio.h). */
#include "netio.h"
#include "conn_layer.h"
#include "tls.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#define NETIO_READ_CHUNK 65536

struct netio {
	int fd;
	struct conn_layer *top;
	/* The bottom layer; it notes here which socket call would block. */
	struct conn_layer sock;
	bool sock_blocked_read, sock_blocked_write;
};

/* ------------------------------------------------------------ the socket layer */

static struct netio *
netio_of_sock(struct conn_layer *layer)
{
	return (struct netio *)((char *)layer - offsetof(struct netio, sock));
}

static ssize_t
netio_sock_read(struct conn_layer *layer, void *data, size_t size)
{
	struct netio *conn = netio_of_sock(layer);

	return conn_sock_recv(conn->fd, data, size, &conn->sock_blocked_read);
}

static ssize_t
netio_sock_write(struct conn_layer *layer, const void *data, size_t size)
{
	struct netio *conn = netio_of_sock(layer);

	return conn_sock_send(conn->fd, data, size, &conn->sock_blocked_write);
}

static const struct conn_layer_vfuncs netio_sock_vfuncs = {
	.name = "socket",
	.read = netio_sock_read,
	.write = netio_sock_write,
};

/* ------------------------------------------------------------ waiting */

/* Waits for events on fd for at most timeout_ms, restarting after a
   signal with the time that is left. Returns poll()'s answer. */
static int
netio_poll(int fd, short events, int timeout_ms, short *revents_r)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int64_t deadline = mono_ms() + timeout_ms;
	int left = timeout_ms;

	for (;;) {
		int ret = poll(&pfd, 1, left);
		if (ret >= 0) {
			*revents_r = pfd.revents;
			return ret;
		}
		if (errno != EINTR)
			return -1;
		int64_t now = mono_ms();
		left = now >= deadline ? 0 : (int)(deadline - now);
	}
}

/* Which event to wait for after the top layer said EAGAIN: what the
   socket layer blocked on (a TLS read may block on send() and a write
   on recv()), else the operation's own direction. */
static short
netio_blocked_events(const struct netio *conn, short natural)
{
	short events = 0;

	if (conn->sock_blocked_read)
		events |= POLLIN;
	if (conn->sock_blocked_write)
		events |= POLLOUT;
	return events != 0 ? events : natural;
}

/* Why the top layer failed (errno set by it). */
static char *
netio_layer_error(const struct netio *conn, const char *what)
{
	if (errno == EPROTO) {
		for (const struct conn_layer *l = conn->top; l != NULL; l = l->below) {
			const char *e = l->v->error != NULL ? l->v->error(l) : NULL;
			if (e != NULL)
				return xasprintf("%s: %s", l->v->name, e);
		}
	}
	return xasprintf("%s: %s", what, strerror(errno));
}

/* ------------------------------------------------------------ connecting */

static int
netio_connect_one(const struct addrinfo *ai, int timeout_ms, int *fd_r, char **error_r)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	if (fd < 0) {
		*error_r = xasprintf("socket(): %s", strerror(errno));
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS && errno != EINTR) {
			*error_r = xstrdup(strerror(errno));
			close(fd);
			return -1;
		}
		short rev = 0;
		int ret = netio_poll(fd, POLLOUT, timeout_ms, &rev);
		if (ret <= 0) {
			*error_r = ret == 0 ?
					   xasprintf("no answer within %d s", timeout_ms / 1000) :
					   xasprintf("poll(): %s", strerror(errno));
			close(fd);
			return -1;
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr != 0) {
			*error_r = xstrdup(strerror(soerr));
			close(fd);
			return -1;
		}
	}
	*fd_r = fd;
	return 0;
}

int
netio_connect(const char *host, const char *port, int timeout_ms, struct netio **conn_r,
	      char **error_r)
{
	struct addrinfo hints, *res = NULL;
	char *last_error = NULL;
	int fd = -1;

	i_zero(&hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		*error_r =
			xasprintf("cannot resolve %s port %s: %s", host, port, gai_strerror(gai));
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		char *err = NULL;
		if (netio_connect_one(ai, timeout_ms, &fd, &err) < 0) {
			free(last_error);
			last_error = err;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		*error_r = xasprintf("cannot connect to %s port %s: %s", host, port,
				     last_error != NULL ? last_error : "no address");
		free(last_error);
		return -1;
	}
	free(last_error);

	struct netio *conn = xcalloc(1, sizeof(*conn));
	conn->fd = fd;
	conn->sock.v = &netio_sock_vfuncs;
	conn->top = &conn->sock;
	*conn_r = conn;
	return 0;
}

void
netio_free(struct netio **connp)
{
	struct netio *conn = *connp;

	if (conn == NULL)
		return;
	*connp = NULL;
	while (conn->top != &conn->sock) {
		struct conn_layer *l = conn->top;
		conn->top = l->below;
		l->v->free(l);
	}
	close(conn->fd);
	free(conn);
}

/* ------------------------------------------------------------ I/O */

int
netio_write_all(struct netio *conn, const void *data, size_t len, int timeout_ms, char **error_r)
{
	const char *p = data;

	while (len > 0) {
		conn->sock_blocked_read = conn->sock_blocked_write = false;
		ssize_t n = conn_layer_write(conn->top, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0 || errno != EAGAIN) {
			if (n == 0)
				errno = EPIPE;
			*error_r = netio_layer_error(conn, "cannot send to the server");
			return -1;
		}
		short rev = 0;
		int ret =
			netio_poll(conn->fd, netio_blocked_events(conn, POLLOUT), timeout_ms, &rev);
		if (ret == 0) {
			*error_r = xasprintf("the server took nothing for %d s", timeout_ms / 1000);
			return -1;
		}
		if (ret < 0) {
			*error_r = xasprintf("poll(): %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* One read through the layers into in. Returns 1 (bytes), 0 (nothing
   now: EAGAIN), -1 with *error_r. */
static int
netio_read_now(struct netio *conn, struct buf *in, char **error_r)
{
	conn->sock_blocked_read = conn->sock_blocked_write = false;
	buf_reserve(in, NETIO_READ_CHUNK);
	ssize_t n = conn_layer_read(conn->top, in->data + in->len, NETIO_READ_CHUNK);
	if (n > 0) {
		in->len += (size_t)n;
		in->data[in->len] = '\0';
		return 1;
	}
	if (n == 0) {
		*error_r = xstrdup("connection closed by the server");
		return -1;
	}
	if (errno == EAGAIN)
		return 0;
	*error_r = netio_layer_error(conn, "connection lost");
	return -1;
}

int
netio_read_some(struct netio *conn, struct buf *in, int timeout_ms, char **error_r)
{
	int ret = netio_read_now(conn, in, error_r);

	if (ret != 0)
		return ret;
	short rev = 0;
	ret = netio_poll(conn->fd, netio_blocked_events(conn, POLLIN), timeout_ms, &rev);
	if (ret == 0)
		return 0;
	if (ret < 0) {
		*error_r = xasprintf("poll(): %s", strerror(errno));
		return -1;
	}
	ret = netio_read_now(conn, in, error_r);
	/* The socket moved but gave no data yet (a partial TLS record, a
	   handshake message): a spurious wake-up. */
	return ret == 0 ? 1 : ret;
}

bool
netio_in_pending(const struct netio *conn)
{
	for (const struct conn_layer *l = conn->top; l != NULL; l = l->below) {
		if (l->v->in_pending != NULL && l->v->in_pending(l))
			return true;
	}
	return false;
}

int
netio_fd(const struct netio *conn)
{
	return conn->fd;
}

/* ------------------------------------------------------------ TLS */

int
netio_start_tls(struct netio *conn, struct tls_ctx *ctx, const char *host, int timeout_ms,
		struct buf *in, char **error_r)
{
	struct conn_layer *tls = tls_layer_new_client(ctx, host);

	tls->below = conn->top;
	conn->top = tls;
	/* The handshake runs inside the layer's first reads; each step
	   waits for the event the socket blocked on. With implicit TLS the
	   server's greeting may come with the last handshake records: it
	   goes to in. */
	while (!tls_layer_handshake_done(tls)) {
		int ret = netio_read_now(conn, in, error_r);
		if (ret > 0)
			continue;
		if (ret < 0) {
			char *e = *error_r;
			*error_r = strncmp(e, "tls: ", 5) == 0 ?
					   xasprintf("TLS %s", e + 5) :
					   xasprintf("TLS handshake failed: %s", e);
			free(e);
			return -1;
		}
		if (tls_layer_handshake_done(tls))
			break;
		short rev = 0;
		ret = netio_poll(conn->fd, netio_blocked_events(conn, POLLIN), timeout_ms, &rev);
		if (ret == 0) {
			*error_r = xasprintf("TLS handshake failed: no answer within %d s",
					     timeout_ms / 1000);
			return -1;
		}
		if (ret < 0) {
			*error_r = xasprintf("poll(): %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

bool
netio_is_tls(const struct netio *conn)
{
	return tls_layer_is_tls(conn->top);
}

const char *
netio_tls_describe(const struct netio *conn)
{
	return netio_is_tls(conn) ? tls_layer_describe(conn->top) : "";
}

/* ------------------------------------------------------------ the peer */

bool
netio_addr_is_loopback(const struct sockaddr *sa, socklen_t len)
{
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

bool
netio_peer_is_loopback(const struct netio *conn)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(conn->fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	return netio_addr_is_loopback((const struct sockaddr *)&ss, len);
}
