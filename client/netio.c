/* netio.c: bounded-time TCP helpers (see netio.h). */
#include "netio.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define NETIO_READ_CHUNK 65536

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
			*error_r = ret == 0 ? xasprintf("no answer within %d s", timeout_ms / 1000) :
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
netio_connect(const char *host, const char *port, int timeout_ms, int *fd_r, char **error_r)
{
	struct addrinfo hints, *res = NULL;
	char *last_error = NULL;

	i_zero(&hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		*error_r = xasprintf("cannot resolve %s port %s: %s", host, port,
				     gai_strerror(gai));
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		char *err = NULL;
		if (netio_connect_one(ai, timeout_ms, fd_r, &err) == 0) {
			free(last_error);
			freeaddrinfo(res);
			return 0;
		}
		free(last_error);
		last_error = err;
	}
	freeaddrinfo(res);
	*error_r = xasprintf("cannot connect to %s port %s: %s", host, port,
			     last_error != NULL ? last_error : "no address");
	free(last_error);
	return -1;
}

int
netio_write_all(int fd, const void *data, size_t len, int timeout_ms, char **error_r)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			*error_r = xasprintf("cannot send to the server: %s", strerror(errno));
			return -1;
		}
		short rev = 0;
		int ret = netio_poll(fd, POLLOUT, timeout_ms, &rev);
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

int
netio_read_some(int fd, struct buf *in, int timeout_ms, char **error_r)
{
	short rev = 0;
	int ret = netio_poll(fd, POLLIN, timeout_ms, &rev);

	if (ret == 0)
		return 0;
	if (ret < 0) {
		*error_r = xasprintf("poll(): %s", strerror(errno));
		return -1;
	}
	buf_reserve(in, NETIO_READ_CHUNK);
	ssize_t n = recv(fd, in->data + in->len, NETIO_READ_CHUNK, 0);
	if (n > 0) {
		in->len += (size_t)n;
		in->data[in->len] = '\0';
		return 1;
	}
	if (n == 0) {
		*error_r = xstrdup("connection closed by the server");
		return -1;
	}
	if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
		return 1;
	*error_r = xasprintf("connection lost: %s", strerror(errno));
	return -1;
}
