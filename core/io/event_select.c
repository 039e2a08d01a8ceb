/* event_select.c: the select() poller (the default event.backend, see
   event_private.h): the interest sets are built from the loop's ios at
   every wait, O(ios), which for the FD_SETSIZE descriptors select() can
   watch at all is cheaper than keeping them. */
#include "event_private.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/select.h>

struct event_poller {
	int unused;
};

static struct event_poller *
select_init(void)
{
	return xcalloc(1, sizeof(struct event_poller));
}

static void
select_deinit(struct event_poller *poller)
{
	free(poller);
}

static int
select_io_add(struct event_poller *poller ATTR_UNUSED, struct event_io *io ATTR_UNUSED)
{
	return 0;
}

static void
select_io_change(struct event_poller *poller ATTR_UNUSED, struct event_io *io ATTR_UNUSED)
{
}

static int
select_wait(struct event_poller *poller ATTR_UNUSED, struct event_loop *loop,
	    int64_t timeout_ms)
{
	fd_set rset, wset;
	struct timeval tv, *tvp = NULL;
	struct event_io *const *ios;
	size_t count;
	int maxfd = -1, ret;

	FD_ZERO(&rset);
	FD_ZERO(&wset);
	ios = event_loop_ios(loop, &count);
	for (size_t i = 0; i < count; i++) {
		const struct event_io *io = ios[i];
		if (io->want_read)
			FD_SET(io->fd, &rset);
		if (io->want_write)
			FD_SET(io->fd, &wset);
		if ((io->want_read || io->want_write) && io->fd > maxfd)
			maxfd = io->fd;
	}
	if (timeout_ms >= 0) {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		tvp = &tv;
	}
	ret = select(maxfd + 1, &rset, &wset, NULL, tvp);
	if (ret < 0)
		return errno == EINTR ? 0 : -1;
	/* ios added during the pass wait for the next select(); the array
	   may move meanwhile, so it is read again for each. */
	for (size_t i = 0; i < count && ret > 0; i++) {
		struct event_io *io = event_loop_ios(loop, &(size_t){ 0 })[i];
		event_io_ready(io, FD_ISSET(io->fd, &rset), FD_ISSET(io->fd, &wset));
	}
	return 0;
}

static int
select_fd_limit(void)
{
	return FD_SETSIZE;
}

const struct event_poller_vfuncs event_poller_select = {
	.name = "select",
	.init = select_init,
	.deinit = select_deinit,
	.io_add = select_io_add,
	.io_update = select_io_change,
	.io_remove = select_io_change,
	.wait = select_wait,
	.fd_limit = select_fd_limit,
};
