/* Tests of the select() loop: timers, fds, removal during a pass, deferred
   calls, signals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "event.h"

#include <signal.h>
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
	assert_true(event_fd_ok(0));
	assert_false(event_fd_ok(-1));
	assert_false(event_fd_ok(FD_SETSIZE));
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
