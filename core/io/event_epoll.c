/* event_epoll.c: the epoll poller of Linux (event.backend = "epoll"): the
   kernel keeps the interest set, changed only when an io's interest
   changes, and a wait costs O(ready ios), not O(ios): what lets one
   process hold 10,000 idle connections. Level-triggered, so that it
   behaves as select() and poll() do. */
#include "event_private.h"

#ifdef __linux__
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Events taken per epoll_wait(); more wait for the next pass. */
#define EPOLL_BATCH 256

struct event_poller {
	int epfd;
	/* The io of each fd. An event names its fd, not its io: a
	   registration the kernel still holds for an fd whose io is gone (it
	   was closed before it was removed while another process shared the
	   file) then finds no io, or the fd's new one, never freed memory. */
	struct event_io **by_fd;
	size_t by_fd_alloc;
	struct epoll_event events[EPOLL_BATCH];
};

static struct event_poller *
epoll_init(void)
{
	struct event_poller *poller;
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0)
		return NULL;
	poller = xcalloc(1, sizeof(*poller));
	poller->epfd = fd;
	return poller;
}

static void
epoll_deinit(struct event_poller *poller)
{
	close(poller->epfd);
	free(poller->by_fd);
	free(poller);
}

static uint32_t
epoll_interest(const struct event_io *io)
{
	return (io->want_read ? EPOLLIN : 0) | (io->want_write ? EPOLLOUT : 0);
}

static int
epoll_io_add(struct event_poller *poller, struct event_io *io)
{
	struct epoll_event ev = { .events = epoll_interest(io), .data.fd = io->fd };

	if (epoll_ctl(poller->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0) {
		if (errno != EEXIST ||
		    epoll_ctl(poller->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
			return -1;
	}
	if ((size_t)io->fd >= poller->by_fd_alloc) {
		size_t old = poller->by_fd_alloc;

		xgrow(&poller->by_fd, &poller->by_fd_alloc, (size_t)io->fd + 1,
		      sizeof(*poller->by_fd));
		memset(poller->by_fd + old, 0, (poller->by_fd_alloc - old) * sizeof(*poller->by_fd));
	}
	poller->by_fd[io->fd] = io;
	return 0;
}

static void
epoll_io_update(struct event_poller *poller, struct event_io *io)
{
	struct epoll_event ev = { .events = epoll_interest(io), .data.fd = io->fd };

	/* Fails only if the fd was closed before its io was removed: then
	   the kernel has dropped it already. */
	(void)epoll_ctl(poller->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

static void
epoll_io_remove(struct event_poller *poller, struct event_io *io)
{
	/* The same: a closed fd has left the set by itself. */
	(void)epoll_ctl(poller->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	if ((size_t)io->fd < poller->by_fd_alloc && poller->by_fd[io->fd] == io)
		poller->by_fd[io->fd] = NULL;
}

static int
epoll_wait_ios(struct event_poller *poller, struct event_loop *loop ATTR_UNUSED,
	       int64_t timeout_ms)
{
	int n;

	if (timeout_ms > INT_MAX)
		timeout_ms = INT_MAX;
	n = epoll_wait(poller->epfd, poller->events, EPOLL_BATCH, (int)timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	for (int i = 0; i < n; i++) {
		uint32_t ev = poller->events[i].events;
		int fd = poller->events[i].data.fd;
		struct event_io *io = (size_t)fd < poller->by_fd_alloc ? poller->by_fd[fd] : NULL;

		if (io == NULL) {
			/* A registration left behind (see by_fd). */
			(void)epoll_ctl(poller->epfd, EPOLL_CTL_DEL, fd, NULL);
			continue;
		}
		if ((ev & (EPOLLERR | EPOLLHUP)) != 0)
			ev |= EPOLLIN | EPOLLOUT;
		event_io_ready(io, (ev & EPOLLIN) != 0, (ev & EPOLLOUT) != 0);
	}
	return 0;
}

static int
epoll_fd_limit(void)
{
	return INT_MAX;
}

const struct event_poller_vfuncs event_poller_epoll = {
	.name = "epoll",
	.init = epoll_init,
	.deinit = epoll_deinit,
	.io_add = epoll_io_add,
	.io_update = epoll_io_update,
	.io_remove = epoll_io_remove,
	.wait = epoll_wait_ios,
	.fd_limit = epoll_fd_limit,
};
#endif
