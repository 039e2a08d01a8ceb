/* event_private.h: what the event loop (event.c) shares with its
   pollers (event_select.c, event_poll.c, event_epoll.c), the part that
   waits for the descriptors. Not for use outside core/io/event*.c. */
#ifndef EVENT_PRIVATE_H
#define EVENT_PRIVATE_H

#include "lib.h"

struct event_loop;

struct event_io {
	struct event_loop *loop;
	int fd;
	bool want_read, want_write, removed;
	void (*on_read)(void *ctx), (*on_write)(void *ctx);
	void *ctx;
};

struct event_poller;

/* A way of waiting for the descriptors (event.backend). The loop calls
   io_add/io_update/io_remove as the set or an interest changes (the
   select and poll pollers ignore them and read the ios at every wait),
   then wait() once per pass, which calls event_io_ready() for each io
   that is ready. */
struct event_poller_vfuncs {
	const char *name;
	/* Returns the poller's state, or NULL with errno set. */
	struct event_poller *(*init)(void);
	void (*deinit)(struct event_poller *poller);
	int (*io_add)(struct event_poller *poller, struct event_io *io);
	void (*io_update)(struct event_poller *poller, struct event_io *io);
	void (*io_remove)(struct event_poller *poller, struct event_io *io);
	/* Waits at most timeout_ms (-1: without end) for the loop's ios.
	   Returns 0 (also when interrupted by a signal) or -1 with errno. */
	int (*wait)(struct event_poller *poller, struct event_loop *loop, int64_t timeout_ms);
	/* The highest descriptor it can watch, plus one. */
	int (*fd_limit)(void);
};

extern const struct event_poller_vfuncs event_poller_select;
extern const struct event_poller_vfuncs event_poller_poll;
#ifdef __linux__
extern const struct event_poller_vfuncs event_poller_epoll;
#endif

/* The ios of the loop: ios[0 .. count - 1], some marked removed; those
   added while a pass runs are at the end, not yet waited for. */
struct event_io *const *event_loop_ios(const struct event_loop *loop, size_t *count_r);
/* Calls io's callbacks for what is ready and still wanted. */
void event_io_ready(struct event_io *io, bool readable, bool writable);

#endif
