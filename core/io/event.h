/* event.h: the event loop. One loop per process; fds, timers, and
   signals turned into ordinary events through a self-pipe. The waiting
   is select() by default, or poll() or epoll (event.backend), with the
   same behaviour above it.

   Callbacks may add and remove fds and timers freely, including their own:
   removed entries are only marked during a dispatch pass and freed after
   it, so a pass never touches freed memory. */
#ifndef EVENT_H
#define EVENT_H

#include "lib.h"

struct event_loop;
struct event_io;
struct event_timer;
struct event_defer;

typedef void event_cb(void *ctx);

/* Chooses how loops made from now on wait (event.backend): "select"
   (descriptors below FD_SETSIZE only), "poll" or "epoll" (Linux). Returns
   0, or -1 for a name not known here. */
int event_backend_set(const char *name);
bool event_backend_known(const char *name);
/* The names event_backend_set() knows, "select, poll, epoll". */
const char *event_backend_names(void);
/* The name in use. */
const char *event_backend_name(void);

struct event_loop *event_loop_new(void);
/* Moves loop (and the loops made from now on) to backend name, with the
   fds it watches; between passes only. Returns 0, or -1 with errno. */
int event_loop_set_backend(struct event_loop *loop, const char *name);
void event_loop_free(struct event_loop **loop);

/* Watches fd. fd must be one the loop can watch (below FD_SETSIZE with
   select()): the caller checks with event_fd_ok() first. Interest starts
   with reading on, writing off. */
struct event_io *event_io_add(struct event_loop *loop, int fd, event_cb *on_read,
			      event_cb *on_write, void *ctx);
bool event_fd_ok(int fd);
void event_io_want_read(struct event_io *io, bool want);
void event_io_want_write(struct event_io *io, bool want);
/* Stops watching (does not close the fd) and sets *io to NULL. */
void event_io_remove(struct event_io **io);

/* Calls cb once, ms milliseconds from now (monotonic clock). */
struct event_timer *event_timer_add(struct event_loop *loop, int64_t ms, event_cb *cb,
				    void *ctx);
void event_timer_remove(struct event_timer **timer);

/* Routes signo to cb, called from the loop (not from the handler). */
int event_signal_add(struct event_loop *loop, int signo, event_cb *cb, void *ctx);

/* Calls cb once, after the dispatch pass in progress (the fd callbacks
   and the timers of this pass have all run), or after the next pass if
   none is in progress or if added by a deferred call itself. While a
   deferred call is pending the loop does not sleep in select(). This is
   where objects that the pass may still reach are freed, and where work
   that must not run nested in its caller is done. */
struct event_defer *event_defer_add(struct event_loop *loop, event_cb *cb, void *ctx);
/* Cancels a pending deferred call and sets *defer to NULL. */
void event_defer_remove(struct event_defer **defer);

/* Runs until event_loop_stop(). Returns 0, or -1 if the wait failed. */
int event_loop_run(struct event_loop *loop);
void event_loop_stop(struct event_loop *loop);
/* One pass: waits at most max_wait_ms for an event, dispatches, returns.
   For tests that drive the loop step by step. */
int event_loop_run_once(struct event_loop *loop, int64_t max_wait_ms);

#endif
