/* Tests of the event loop: timers, fds, removal during a pass, deferred
   calls, signals; each on every backend (select, poll, epoll), and what
   only poll and epoll can do: descriptors past FD_SETSIZE. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "event.h"

#include <signal.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

struct order {
	int seen[8];
	int n;
};

struct timer_arg {
	struct order *order;
	int id;
};

static void
record(void *ctx)
{
	struct timer_arg *arg = ctx;
	arg->order->seen[arg->order->n++] = arg->id;
}

static void
test_timers_fire_in_deadline_order(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct order order = { { 0 }, 0 };
	struct timer_arg a = { &order, 1 }, b = { &order, 2 }, c = { &order, 3 };
	struct event_timer *removed;
	int64_t start = mono_ms();

	event_timer_add(loop, 30, record, &c);
	event_timer_add(loop, 10, record, &a);
	event_timer_add(loop, 20, record, &b);
	removed = event_timer_add(loop, 5, record, &c);
	event_timer_remove(&removed);
	assert_null(removed);
	for (int i = 0; i < 100 && order.n < 3; i++)
		assert_int_equal(event_loop_run_once(loop, 50), 0);
	assert_int_equal(order.n, 3);
	assert_int_equal(order.seen[0], 1);
	assert_int_equal(order.seen[1], 2);
	assert_int_equal(order.seen[2], 3);
	/* Not before the last deadline, and not much after. */
	assert_true(mono_ms() - start >= 30);
	assert_true(mono_ms() - start < 1000);
	event_loop_free(&loop);
	assert_null(loop);
}

struct pipe_ctx {
	int fds[2];
	struct event_io *io;
	int reads;
	bool remove_self;
};

static void
pipe_read(void *ctx)
{
	struct pipe_ctx *p = ctx;
	char c;

	if (read(p->fds[0], &c, 1) == 1)
		p->reads++;
	if (p->remove_self)
		event_io_remove(&p->io);
}

static void
test_fd_read_and_self_removal(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct pipe_ctx p = { .reads = 0, .remove_self = true };

	assert_int_equal(pipe(p.fds), 0);
	p.io = event_io_add(loop, p.fds[0], pipe_read, NULL, &p);
	assert_int_equal(write(p.fds[1], "xy", 2), 2);
	assert_int_equal(event_loop_run_once(loop, 100), 0);
	assert_int_equal(p.reads, 1);
	assert_null(p.io);
	/* Removed: the second byte is not read by the loop any more. */
	assert_int_equal(event_loop_run_once(loop, 20), 0);
	assert_int_equal(p.reads, 1);
	close(p.fds[0]);
	close(p.fds[1]);
	event_loop_free(&loop);
}

static void
test_read_interest_off_means_no_callback(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct pipe_ctx p = { .reads = 0, .remove_self = false };

	assert_int_equal(pipe(p.fds), 0);
	p.io = event_io_add(loop, p.fds[0], pipe_read, NULL, &p);
	event_io_want_read(p.io, false);
	assert_int_equal(write(p.fds[1], "x", 1), 1);
	assert_int_equal(event_loop_run_once(loop, 20), 0);
	assert_int_equal(p.reads, 0);
	event_io_want_read(p.io, true);
	assert_int_equal(event_loop_run_once(loop, 100), 0);
	assert_int_equal(p.reads, 1);
	event_io_remove(&p.io);
	close(p.fds[0]);
	close(p.fds[1]);
	event_loop_free(&loop);
}

static void
on_signal(void *ctx)
{
	(*(int *)ctx)++;
}

static void
test_signal_becomes_loop_event(void **state)
{
	struct event_loop *loop = event_loop_new();
	int hups = 0;

	assert_int_equal(event_signal_add(loop, SIGUSR1, on_signal, &hups), 0);
	raise(SIGUSR1);
	/* Not in the handler: only when the loop runs. */
	assert_int_equal(hups, 0);
	for (int i = 0; i < 10 && hups == 0; i++)
		assert_int_equal(event_loop_run_once(loop, 50), 0);
	assert_int_equal(hups, 1);
	signal(SIGUSR1, SIG_DFL);
	event_loop_free(&loop);
}

struct defer_ctx {
	struct event_loop *loop;
	int calls, reads_seen;
	struct pipe_ctx *p;
};

static void
deferred(void *ctx)
{
	struct defer_ctx *d = ctx;

	d->calls++;
	d->reads_seen = d->p->reads;
	/* Added by a deferred call: runs after the next pass. */
	if (d->calls == 1)
		event_defer_add(d->loop, deferred, d);
}

static void
pipe_read_defer(void *ctx)
{
	struct defer_ctx *d = ctx;

	pipe_read(d->p);
	event_defer_add(d->loop, deferred, d);
}

static void
test_deferred_calls_run_after_the_pass(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct pipe_ctx p = { .reads = 0, .remove_self = false };
	struct defer_ctx d = { .loop = loop, .p = &p };
	struct event_defer *cancelled;
	int64_t start;

	assert_int_equal(pipe(p.fds), 0);
	p.io = event_io_add(loop, p.fds[0], pipe_read_defer, NULL, &d);
	assert_int_equal(write(p.fds[1], "x", 1), 1);
	cancelled = event_defer_add(loop, deferred, &d);
	event_defer_remove(&cancelled);
	assert_null(cancelled);
	assert_int_equal(event_loop_run_once(loop, 100), 0);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.reads_seen, 1);
	/* A pending deferred call keeps select() from sleeping. */
	start = mono_ms();
	assert_int_equal(event_loop_run_once(loop, 500), 0);
	assert_true(mono_ms() - start < 400);
	assert_int_equal(d.calls, 2);
	event_io_remove(&p.io);
	close(p.fds[0]);
	close(p.fds[1]);
	event_loop_free(&loop);
}

static void
test_fd_limit(void **state)
{
	(void)state;
	assert_true(event_fd_ok(0));
	assert_false(event_fd_ok(-1));
	/* select() cannot watch FD_SETSIZE; the others can. */
	assert_int_equal(event_fd_ok(FD_SETSIZE), strcmp(event_backend_name(), "select") != 0);
}

struct counter {
	int reads, writes;
	int fd;
	struct event_io *io;
};

static void
count_read(void *ctx)
{
	struct counter *c = ctx;
	char buf[16];

	c->reads++;
	assert_true(read(c->fd, buf, sizeof(buf)) > 0);
}

static void
count_write(void *ctx)
{
	struct counter *c = ctx;

	c->writes++;
	event_io_want_write(c->io, false);
}

/* Interest switched on and off between passes is followed (epoll keeps
   it in the kernel: each change must reach it). */
static void
test_write_interest_toggles(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct counter c = { 0 };
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	c.fd = p[0];
	/* The write end: always writable. */
	c.io = event_io_add(loop, p[1], NULL, count_write, &c);
	assert_int_equal(event_loop_run_once(loop, 10), 0);
	assert_int_equal(c.writes, 0);
	event_io_want_write(c.io, true);
	assert_int_equal(event_loop_run_once(loop, 10), 0);
	assert_int_equal(c.writes, 1);
	/* count_write() turned it off again. */
	assert_int_equal(event_loop_run_once(loop, 10), 0);
	assert_int_equal(c.writes, 1);
	event_io_remove(&c.io);
	event_loop_free(&loop);
	close(p[0]);
	close(p[1]);
}

struct pair {
	struct event_io *io;
	struct event_io **other;
	int fd, calls;
};

static void
remove_other(void *ctx)
{
	struct pair *pr = ctx;
	char buf[4];

	pr->calls++;
	assert_true(read(pr->fd, buf, sizeof(buf)) > 0);
	event_io_remove(pr->other);
}

/* Two fds ready in one pass, the first callback removes the other: the
   other is not called (its memory lives until the pass ends). */
static void
test_removal_of_another_ready_io(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct pair a = { 0 }, b = { 0 };
	int pa[2], pb[2];

	(void)state;
	assert_int_equal(pipe(pa), 0);
	assert_int_equal(pipe(pb), 0);
	a.fd = pa[0];
	b.fd = pb[0];
	a.io = event_io_add(loop, pa[0], remove_other, NULL, &a);
	b.io = event_io_add(loop, pb[0], remove_other, NULL, &b);
	a.other = &b.io;
	b.other = &a.io;
	assert_int_equal(write(pa[1], "x", 1), 1);
	assert_int_equal(write(pb[1], "x", 1), 1);
	assert_int_equal(event_loop_run_once(loop, 100), 0);
	assert_int_equal(a.calls + b.calls, 1);
	assert_true(a.io == NULL || b.io == NULL);
	event_io_remove(&a.io);
	event_io_remove(&b.io);
	event_loop_free(&loop);
	for (int i = 0; i < 2; i++) {
		close(pa[i]);
		close(pb[i]);
	}
}

/* A loop moved to another backend keeps watching its fds. */
static void
test_loop_changes_backend(void **state)
{
	const char *from = event_backend_name();
	const char *to = strcmp(from, "poll") == 0 ? "select" : "poll";
	struct event_loop *loop = event_loop_new();
	struct counter c = { 0 };
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	c.fd = p[0];
	c.io = event_io_add(loop, p[0], count_read, NULL, &c);
	assert_int_equal(event_loop_set_backend(loop, to), 0);
	assert_string_equal(event_backend_name(), to);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(event_loop_run_once(loop, 100), 0);
	assert_int_equal(c.reads, 1);
	assert_int_equal(event_loop_set_backend(loop, "nosuch"), -1);
	assert_int_equal(event_loop_set_backend(loop, from), 0);
	assert_int_equal(write(p[1], "y", 1), 1);
	assert_int_equal(event_loop_run_once(loop, 100), 0);
	assert_int_equal(c.reads, 2);
	event_io_remove(&c.io);
	event_loop_free(&loop);
	close(p[0]);
	close(p[1]);
}

/* poll and epoll: 1,100 pipes, their read ends past FD_SETSIZE, each
   written once: every one is read, none twice. */
static void
test_many_fds_past_fd_setsize(void **state)
{
	enum { N = 1100 };
	struct event_loop *loop;
	struct counter *c;
	int (*p)[2];
	struct rlimit rl;

	(void)state;
	if (strcmp(event_backend_name(), "select") == 0)
		skip();
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2 * N + 64) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
		if (rl.rlim_cur < 2 * N + 64)
			skip();
	}
	loop = event_loop_new();
	c = calloc(N, sizeof(*c));
	p = calloc(N, sizeof(*p));
	assert_non_null(c);
	assert_non_null(p);
	for (int i = 0; i < N; i++) {
		assert_int_equal(pipe(p[i]), 0);
		c[i].fd = p[i][0];
		assert_true(event_fd_ok(p[i][0]));
		c[i].io = event_io_add(loop, p[i][0], count_read, NULL, &c[i]);
	}
	assert_true(p[N - 1][0] >= FD_SETSIZE);
	for (int i = 0; i < N; i++)
		assert_int_equal(write(p[i][1], "x", 1), 1);
	int total = 0;
	for (int pass = 0; pass < 100 && total < N; pass++) {
		assert_int_equal(event_loop_run_once(loop, 100), 0);
		total = 0;
		for (int i = 0; i < N; i++)
			total += c[i].reads;
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(c[i].reads, 1);
		event_io_remove(&c[i].io);
		close(p[i][0]);
		close(p[i][1]);
	}
	event_loop_free(&loop);
	free(c);
	free(p);
}

static int
use_backend(void **state)
{
	(void)state;
	return event_backend_set(getenv("TEST_EVENT_BACKEND"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_fire_in_deadline_order),
		cmocka_unit_test(test_fd_read_and_self_removal),
		cmocka_unit_test(test_read_interest_off_means_no_callback),
		cmocka_unit_test(test_signal_becomes_loop_event),
		cmocka_unit_test(test_deferred_calls_run_after_the_pass),
		cmocka_unit_test(test_fd_limit),
		cmocka_unit_test(test_write_interest_toggles),
		cmocka_unit_test(test_removal_of_another_ready_io),
		cmocka_unit_test(test_loop_changes_backend),
		cmocka_unit_test(test_many_fds_past_fd_setsize),
	};
	static const char *const backends[] = { "select", "poll", "epoll" };
	int failed = 0;

	assert_false(event_backend_known("kqueue"));
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		char name[32];

		if (!event_backend_known(backends[i]))
			continue;       /* epoll off Linux */
		setenv("TEST_EVENT_BACKEND", backends[i], 1);
		snprintf(name, sizeof(name), "event loop on %s", backends[i]);
		failed += _cmocka_run_group_tests(name, tests, sizeof(tests) / sizeof(tests[0]),
						  use_backend, NULL);
	}
	return failed;
}
