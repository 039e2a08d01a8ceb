/* event.c: an event loop small enough to hold in one's head (after
   redis' ae.c). fds and timers live in plain arrays; the waiting itself is
   the poller's (event_private.h): select() by default (event_select.c). */
#include "event.h"
#include "event_private.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

struct event_timer {
	struct event_loop *loop;
	int64_t deadline;
	event_cb *cb;
	void *ctx;
	bool removed;
};

struct event_defer {
	struct event_loop *loop;
	event_cb *cb;
	void *ctx;
	bool removed;
};

struct signal_handler {
	int signo;
	event_cb *cb;
	void *ctx;
};

struct event_loop {
	struct event_io **ios;
	size_t io_count, io_alloc;
	struct event_timer **timers;
	size_t timer_count, timer_alloc;
	struct event_defer **defers;
	size_t defer_count, defer_alloc;
	struct signal_handler signals[8];
	size_t signal_count;
	struct event_io *signal_io;
	const struct event_poller_vfuncs *poller_v;
	struct event_poller *poller;
	bool stop, dirty;
};

/* The self-pipe: the handler only writes the signal number. */
static int signal_pipe[2] = { -1, -1 };

/* The poller of the loops made from now on. */
static const struct event_poller_vfuncs *event_poller = &event_poller_select;

static const struct event_poller_vfuncs *const event_pollers[] = {
	&event_poller_select,
	&event_poller_poll,
#ifdef __linux__
	&event_poller_epoll,
#endif
};

static const struct event_poller_vfuncs *
event_poller_find(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(event_pollers); i++) {
		if (strcmp(event_pollers[i]->name, name) == 0)
			return event_pollers[i];
	}
	return NULL;
}

bool
event_backend_known(const char *name)
{
	return event_poller_find(name) != NULL;
}

int
event_backend_set(const char *name)
{
	const struct event_poller_vfuncs *v = event_poller_find(name);

	if (v == NULL)
		return -1;
	event_poller = v;
	return 0;
}

int
event_loop_set_backend(struct event_loop *loop, const char *name)
{
	const struct event_poller_vfuncs *v = event_poller_find(name);
	struct event_poller *poller;

	if (v == NULL) {
		errno = EINVAL;
		return -1;
	}
	event_poller = v;
	if (v == loop->poller_v)
		return 0;
	if ((poller = v->init()) == NULL)
		return -1;
	for (size_t i = 0; i < loop->io_count; i++) {
		if (!loop->ios[i]->removed && v->io_add(poller, loop->ios[i]) < 0) {
			int saved = errno;
			v->deinit(poller);
			errno = saved;
			return -1;
		}
	}
	loop->poller_v->deinit(loop->poller);
	loop->poller_v = v;
	loop->poller = poller;
	return 0;
}

const char *
event_backend_names(void)
{
#ifdef __linux__
	return "select, poll, epoll";
#else
	return "select, poll";
#endif
}

const char *
event_backend_name(void)
{
	return event_poller->name;
}

bool
event_fd_ok(int fd)
{
	return fd >= 0 && fd < event_poller->fd_limit();
}

struct event_loop *
event_loop_new(void)
{
	struct event_loop *loop = xcalloc(1, sizeof(struct event_loop));

	loop->poller_v = event_poller;
	loop->poller = loop->poller_v->init();
	if (loop->poller == NULL)
		fatal("event loop (%s): %s", loop->poller_v->name, strerror(errno));
	return loop;
}

struct event_io *const *
event_loop_ios(const struct event_loop *loop, size_t *count_r)
{
	*count_r = loop->io_count;
	return loop->ios;
}

void
event_io_ready(struct event_io *io, bool readable, bool writable)
{
	if (!io->removed && readable && io->want_read)
		io->on_read(io->ctx);
	if (!io->removed && writable && io->want_write)
		io->on_write(io->ctx);
}

static void
event_loop_cleanup(struct event_loop *loop)
{
	size_t i, j;

	if (!loop->dirty)
		return;
	for (i = j = 0; i < loop->io_count; i++) {
		if (loop->ios[i]->removed)
			free(loop->ios[i]);
		else
			loop->ios[j++] = loop->ios[i];
	}
	loop->io_count = j;
	for (i = j = 0; i < loop->timer_count; i++) {
		if (loop->timers[i]->removed)
			free(loop->timers[i]);
		else
			loop->timers[j++] = loop->timers[i];
	}
	loop->timer_count = j;
	for (i = j = 0; i < loop->defer_count; i++) {
		if (loop->defers[i]->removed)
			free(loop->defers[i]);
		else
			loop->defers[j++] = loop->defers[i];
	}
	loop->defer_count = j;
	loop->dirty = false;
}

void
event_loop_free(struct event_loop **_loop)
{
	struct event_loop *loop = *_loop;

	if (loop == NULL)
		return;
	*_loop = NULL;
	if (loop->signal_io != NULL)
		event_io_remove(&loop->signal_io);
	for (size_t i = 0; i < loop->io_count; i++)
		loop->ios[i]->removed = true;
	for (size_t i = 0; i < loop->timer_count; i++)
		loop->timers[i]->removed = true;
	for (size_t i = 0; i < loop->defer_count; i++)
		loop->defers[i]->removed = true;
	loop->dirty = true;
	event_loop_cleanup(loop);
	loop->poller_v->deinit(loop->poller);
	free(loop->ios);
	free(loop->timers);
	free(loop->defers);
	free(loop);
}

struct event_io *
event_io_add(struct event_loop *loop, int fd, event_cb *on_read, event_cb *on_write,
	     void *ctx)
{
	struct event_io *io;

	if (!event_fd_ok(fd))
		fatal("event_io_add: fd %d out of range", fd);
	io = xcalloc(1, sizeof(*io));
	io->loop = loop;
	io->fd = fd;
	io->on_read = on_read;
	io->on_write = on_write;
	io->ctx = ctx;
	io->want_read = on_read != NULL;
	if (loop->poller_v->io_add(loop->poller, io) < 0)
		fatal("event_io_add: fd %d: %s", fd, strerror(errno));
	xgrow(&loop->ios, &loop->io_alloc, loop->io_count + 1, sizeof(*loop->ios));
	loop->ios[loop->io_count++] = io;
	return io;
}

void
event_io_want_read(struct event_io *io, bool want)
{
	bool was = io->want_read;

	io->want_read = want && io->on_read != NULL;
	if (io->want_read != was)
		io->loop->poller_v->io_update(io->loop->poller, io);
}

void
event_io_want_write(struct event_io *io, bool want)
{
	bool was = io->want_write;

	io->want_write = want && io->on_write != NULL;
	if (io->want_write != was)
		io->loop->poller_v->io_update(io->loop->poller, io);
}

void
event_io_remove(struct event_io **_io)
{
	struct event_io *io = *_io;

	if (io == NULL)
		return;
	*_io = NULL;
	io->removed = true;
	io->loop->dirty = true;
	io->loop->poller_v->io_remove(io->loop->poller, io);
}

struct event_timer *
event_timer_add(struct event_loop *loop, int64_t ms, event_cb *cb, void *ctx)
{
	struct event_timer *timer = xcalloc(1, sizeof(*timer));

	timer->loop = loop;
	timer->deadline = mono_ms() + (ms < 0 ? 0 : ms);
	timer->cb = cb;
	timer->ctx = ctx;
	xgrow(&loop->timers, &loop->timer_alloc, loop->timer_count + 1, sizeof(*loop->timers));
	loop->timers[loop->timer_count++] = timer;
	return timer;
}

void
event_timer_remove(struct event_timer **_timer)
{
	struct event_timer *timer = *_timer;

	if (timer == NULL)
		return;
	*_timer = NULL;
	timer->removed = true;
	timer->loop->dirty = true;
}

struct event_defer *
event_defer_add(struct event_loop *loop, event_cb *cb, void *ctx)
{
	struct event_defer *defer = xcalloc(1, sizeof(*defer));

	defer->loop = loop;
	defer->cb = cb;
	defer->ctx = ctx;
	xgrow(&loop->defers, &loop->defer_alloc, loop->defer_count + 1, sizeof(*loop->defers));
	loop->defers[loop->defer_count++] = defer;
	return defer;
}

void
event_defer_remove(struct event_defer **_defer)
{
	struct event_defer *defer = *_defer;

	if (defer == NULL)
		return;
	*_defer = NULL;
	defer->removed = true;
	defer->loop->dirty = true;
}

static void
signal_handler(int signo)
{
	int saved = errno;
	unsigned char c = (unsigned char)signo;
	ssize_t ret ATTR_UNUSED = write(signal_pipe[1], &c, 1);
	errno = saved;
}

static void
signal_input(void *ctx)
{
	struct event_loop *loop = ctx;
	unsigned char sigs[64];
	ssize_t n = read(signal_pipe[0], sigs, sizeof(sigs));

	for (ssize_t i = 0; i < n; i++) {
		for (size_t j = 0; j < loop->signal_count; j++) {
			if (loop->signals[j].signo == sigs[i])
				loop->signals[j].cb(loop->signals[j].ctx);
		}
	}
}

int
event_signal_add(struct event_loop *loop, int signo, event_cb *cb, void *ctx)
{
	struct sigaction sa;

	if (loop->signal_count == N_ELEMENTS(loop->signals))
		return -1;
	if (signal_pipe[0] == -1) {
		if (pipe(signal_pipe) < 0 || fd_set_nonblock_cloexec(signal_pipe[0]) < 0 ||
		    fd_set_nonblock_cloexec(signal_pipe[1]) < 0)
			return -1;
	}
	if (loop->signal_io == NULL)
		loop->signal_io = event_io_add(loop, signal_pipe[0], signal_input, NULL, loop);
	loop->signals[loop->signal_count].signo = signo;
	loop->signals[loop->signal_count].cb = cb;
	loop->signals[loop->signal_count].ctx = ctx;
	loop->signal_count++;

	i_zero(&sa);
	sa.sa_handler = signal_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	return sigaction(signo, &sa, NULL);
}

void
event_loop_stop(struct event_loop *loop)
{
	loop->stop = true;
}

static void
run_timers(struct event_loop *loop)
{
	int64_t now = mono_ms();
	/* Timers added by callbacks in this pass wait for the next one. */
	size_t count = loop->timer_count;

	for (size_t i = 0; i < count; i++) {
		struct event_timer *timer = loop->timers[i];
		if (timer->removed || timer->deadline > now)
			continue;
		timer->removed = true;
		loop->dirty = true;
		timer->cb(timer->ctx);
	}
}

/* The deferred calls pending when the pass ended; those they add wait
   for the next pass. */
static void
run_defers(struct event_loop *loop)
{
	size_t count = loop->defer_count;

	for (size_t i = 0; i < count; i++) {
		struct event_defer *defer = loop->defers[i];
		if (defer->removed)
			continue;
		defer->removed = true;
		loop->dirty = true;
		defer->cb(defer->ctx);
	}
}

static bool
defers_pending(const struct event_loop *loop)
{
	for (size_t i = 0; i < loop->defer_count; i++) {
		if (!loop->defers[i]->removed)
			return true;
	}
	return false;
}

/* One wait and one dispatch pass. max_wait_ms < 0: wait for the next
   timer or fd; otherwise at most that long. Returns 0 or -1. */
static int
event_loop_pass(struct event_loop *loop, int64_t max_wait_ms)
{
	int64_t next = INT64_MAX, wait = -1;

	event_loop_cleanup(loop);
	for (size_t i = 0; i < loop->timer_count; i++) {
		if (!loop->timers[i]->removed && loop->timers[i]->deadline < next)
			next = loop->timers[i]->deadline;
	}
	if (defers_pending(loop))
		next = mono_ms();
	if (max_wait_ms >= 0 && (next == INT64_MAX || next > mono_ms() + max_wait_ms))
		next = mono_ms() + max_wait_ms;
	if (next != INT64_MAX) {
		wait = next - mono_ms();
		if (wait < 0)
			wait = 0;
	}
	if (loop->poller_v->wait(loop->poller, loop, wait) < 0)
		return -1;
	run_timers(loop);
	run_defers(loop);
	return 0;
}

int
event_loop_run_once(struct event_loop *loop, int64_t max_wait_ms)
{
	int ret = event_loop_pass(loop, max_wait_ms < 0 ? 0 : max_wait_ms);

	event_loop_cleanup(loop);
	return ret;
}

int
event_loop_run(struct event_loop *loop)
{
	loop->stop = false;
	while (!loop->stop) {
		if (event_loop_pass(loop, -1) < 0)
			return -1;
	}
	event_loop_cleanup(loop);
	return 0;
}
