/* event_poll.c: the poll() poller (event.backend = "poll"): no
   FD_SETSIZE limit; like select() it reads the loop's ios at every wait,
   O(ios) per pass, with one pollfd array kept between passes. */
#include "event_private.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>

struct event_poller {
	struct pollfd *fds;
	size_t alloc;
};

static struct event_poller *
poll_init(void)
{
	return xcalloc(1, sizeof(struct event_poller));
}

static void
poll_deinit(struct event_poller *poller)
{
	free(poller->fds);
	free(poller);
}

static int
poll_io_add(struct event_poller *poller ATTR_UNUSED, struct event_io *io ATTR_UNUSED)
{
	return 0;
}

static void
poll_io_change(struct event_poller *poller ATTR_UNUSED, struct event_io *io ATTR_UNUSED)
{
}

static int
poll_wait(struct event_poller *poller, struct event_loop *loop, int64_t timeout_ms)
{
	struct event_io *const *ios;
	size_t count;
	int ret;

	ios = event_loop_ios(loop, &count);
	xgrow(&poller->fds, &poller->alloc, count == 0 ? 1 : count, sizeof(*poller->fds));
	/* One pollfd per io, at its index (fd -1 when nothing is wanted:
	   poll() skips it). */
	for (size_t i = 0; i < count; i++) {
		const struct event_io *io = ios[i];
		short events = (short)((io->want_read ? POLLIN : 0) |
				       (io->want_write ? POLLOUT : 0));

		poller->fds[i].fd = events != 0 && !io->removed ? io->fd : -1;
		poller->fds[i].events = events;
		poller->fds[i].revents = 0;
	}
	if (timeout_ms > INT_MAX)
		timeout_ms = INT_MAX;
	ret = poll(poller->fds, count, (int)timeout_ms);
	if (ret < 0)
		return errno == EINTR ? 0 : -1;
	for (size_t i = 0; i < count && ret > 0; i++) {
		short rev = poller->fds[i].revents;

		if (rev == 0)
			continue;
		/* An error or hang-up is reported to whichever callback is
		   wanted, as select() marks the fd readable and writable. */
		if ((rev & (POLLERR | POLLHUP | POLLNVAL)) != 0)
			rev |= POLLIN | POLLOUT;
		/* The array may move while callbacks add ios. */
		struct event_io *io = event_loop_ios(loop, &(size_t){ 0 })[i];
		event_io_ready(io, (rev & POLLIN) != 0, (rev & POLLOUT) != 0);
	}
	return 0;
}

static int
poll_fd_limit(void)
{
	return INT_MAX;
}

const struct event_poller_vfuncs event_poller_poll = {
	.name = "poll",
	.init = poll_init,
	.deinit = poll_deinit,
	.io_add = poll_io_add,
	.io_update = poll_io_change,
	.io_remove = poll_io_change,
	.wait = poll_wait,
	.fd_limit = poll_fd_limit,
};
