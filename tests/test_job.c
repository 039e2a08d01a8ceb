/* Tests of the job queue (core/io/job.c): work in a thread, completion in
   the loop, the bound on workers, cancellation and shutdown. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "event.h"
#include "job.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct work_ctx {
	/* Set by the work function (in the worker). */
	pthread_t thread;
	atomic_bool started;
	int result;
	/* Set by the done callback (in the loop). */
	bool done, ran;
	pthread_t done_thread;
	int *done_order;
	int *done_count;
	int id;
	/* Holds the work until released. */
	atomic_bool *gate;
	atomic_int *running, *max_running;
};

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void
work_square(void *ctx)
{
	struct work_ctx *w = ctx;

	w->thread = pthread_self();
	atomic_store(&w->started, true);
	if (w->running != NULL) {
		int now = atomic_fetch_add(w->running, 1) + 1;
		int max = atomic_load(w->max_running);
		while (now > max && !atomic_compare_exchange_weak(w->max_running, &max, now))
			;
	}
	if (w->gate != NULL) {
		for (int i = 0; i < 5000 && !atomic_load(w->gate); i++)
			sleep_ms(1);
	}
	w->result = w->id * w->id;
	if (w->running != NULL)
		atomic_fetch_sub(w->running, 1);
}

static void
done_record(void *ctx, bool ran)
{
	struct work_ctx *w = ctx;

	w->done = true;
	w->ran = ran;
	w->done_thread = pthread_self();
	if (w->done_order != NULL)
		w->done_order[(*w->done_count)++] = w->id;
}

static struct job_queue *
queue_new(struct event_loop *loop, unsigned threads)
{
	char *error = NULL;
	struct job_queue *queue = job_queue_new(loop, threads, &error);

	assert_non_null(queue);
	assert_null(error);
	return queue;
}

/* Runs the loop until *flag or about 5 s. */
static void
run_until(struct event_loop *loop, const bool *flag)
{
	for (int i = 0; i < 500 && !*flag; i++)
		assert_int_equal(event_loop_run_once(loop, 10), 0);
}

static void
test_job_completes_in_the_loop(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct job_queue *queue = queue_new(loop, 2);
	struct work_ctx w = { .id = 7 };
	struct job *job = job_submit(queue, work_square, done_record, &w);

	assert_non_null(job);
	run_until(loop, &w.done);
	assert_true(w.done);
	assert_true(w.ran);
	assert_int_equal(w.result, 49);
	/* The work ran in another thread, the completion in the loop's. */
	assert_false(pthread_equal(w.thread, pthread_self()));
	assert_true(pthread_equal(w.done_thread, pthread_self()));
	assert_int_equal(job_queue_pending(queue), 0);
	job_queue_free(&queue);
	assert_null(queue);
	event_loop_free(&loop);
}

static void
test_many_jobs_bounded(void **state)
{
	enum { N = 64 };
	struct event_loop *loop = event_loop_new();
	struct job_queue *queue = queue_new(loop, 3);
	struct work_ctx *w = calloc(N, sizeof(*w));
	int order[N], count = 0;
	atomic_int running = 0, max_running = 0;

	for (int i = 0; i < N; i++) {
		w[i].id = i;
		w[i].done_order = order;
		w[i].done_count = &count;
		w[i].running = &running;
		w[i].max_running = &max_running;
		(void)job_submit(queue, work_square, done_record, &w[i]);
	}
	for (int i = 0; i < 1000 && count < N; i++)
		assert_int_equal(event_loop_run_once(loop, 10), 0);
	assert_int_equal(count, N);
	for (int i = 0; i < N; i++) {
		assert_true(w[i].done);
		assert_int_equal(w[i].result, i * i);
	}
	assert_true(atomic_load(&max_running) >= 1);
	assert_true(atomic_load(&max_running) <= 3);
	assert_int_equal(job_queue_pending(queue), 0);
	job_queue_free(&queue);
	event_loop_free(&loop);
	free(w);
}

/* A session that submitted a job and went away: the job's context is its
   own, the job completes and frees it; the session's memory is gone. */
struct orphan_ctx {
	char *copy;
	size_t len;
	bool *finished;
};

static void
work_orphan(void *ctx)
{
	struct orphan_ctx *o = ctx;

	sleep_ms(20);
	for (size_t i = 0; i < o->len; i++)
		o->copy[i] = (char)(o->copy[i] + 1);
}

static void
done_orphan(void *ctx, bool ran)
{
	struct orphan_ctx *o = ctx;

	*o->finished = ran && strcmp(o->copy, "bcd") == 0;
	free(o->copy);
	free(o);
}

static void
test_job_outlives_its_session(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct job_queue *queue = queue_new(loop, 1);
	char *session = strdup("abc");
	struct orphan_ctx *o = calloc(1, sizeof(*o));
	bool finished = false;

	o->copy = strdup(session);
	o->len = strlen(session);
	o->finished = &finished;
	(void)job_submit(queue, work_orphan, done_orphan, o);
	free(session);      /* the session ends while the job works */
	run_until(loop, &finished);
	assert_true(finished);
	job_queue_free(&queue);
	event_loop_free(&loop);
}

static void
test_cancel_waiting_and_working(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct job_queue *queue = queue_new(loop, 1);
	atomic_bool gate = false;
	struct work_ctx a = { .id = 2, .gate = &gate }, b = { .id = 3 };
	struct job *ja = job_submit(queue, work_square, done_record, &a);
	struct job *jb = job_submit(queue, work_square, done_record, &b);

	/* One worker: a works (held), b waits. */
	for (int i = 0; i < 5000 && !atomic_load(&a.started); i++)
		sleep_ms(1);
	job_cancel(&jb);
	assert_null(jb);
	atomic_store(&gate, true);
	job_cancel(&ja);       /* waits for a's work */
	assert_null(ja);
	assert_int_equal(a.result, 4);
	assert_int_equal(b.result, 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(event_loop_run_once(loop, 5), 0);
	assert_false(a.done);
	assert_false(b.done);
	assert_int_equal(job_queue_pending(queue), 0);
	job_queue_free(&queue);
	event_loop_free(&loop);
}

/* job_finish_now(): a waiting job's work runs in the caller, a working
   one is waited for; done() is called at once, with ran, and the loop
   hears nothing more of either. */
static void
test_finish_now_waiting_and_working(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct job_queue *queue = queue_new(loop, 1);
	atomic_bool gate = false;
	struct work_ctx a = { .id = 2, .gate = &gate }, b = { .id = 3 };
	struct job *ja = job_submit(queue, work_square, done_record, &a);
	struct job *jb = job_submit(queue, work_square, done_record, &b);
	pthread_t self = pthread_self();

	(void)state;
	for (int i = 0; i < 5000 && !atomic_load(&a.started); i++)
		sleep_ms(1);
	job_finish_now(&jb);
	assert_null(jb);
	assert_true(b.done);
	assert_true(b.ran);
	assert_int_equal(b.result, 9);
	assert_true(pthread_equal(b.thread, self));
	assert_false(a.done);
	atomic_store(&gate, true);
	job_finish_now(&ja);
	assert_null(ja);
	assert_true(a.done);
	assert_true(a.ran);
	assert_int_equal(a.result, 4);
	assert_false(pthread_equal(a.thread, self));
	assert_true(pthread_equal(a.done_thread, self));
	a.done = b.done = false;
	for (int i = 0; i < 5; i++)
		assert_int_equal(event_loop_run_once(loop, 5), 0);
	assert_false(a.done);
	assert_false(b.done);
	assert_int_equal(job_queue_pending(queue), 0);
	job_queue_free(&queue);
	event_loop_free(&loop);
}

/* A done() that finishes (or cancels) another job already done: that
   one completes there, once, and the loop does not hear of it again (it
   used to, from a batch taken off the list before: freed twice). */
struct chain {
	struct work_ctx w;
	struct job **other;
	bool cancel;
};

static void
done_finish_other(void *ctx, bool ran)
{
	struct chain *c = ctx;

	done_record(&c->w, ran);
	if (c->cancel)
		job_cancel(c->other);
	else
		job_finish_now(c->other);
}

/* done() of a job whose owner keeps its handle (as the hub's ops do):
   the handle is forgotten there. */
static void
done_forget(void *ctx, bool ran)
{
	struct chain *c = ctx;

	done_record(&c->w, ran);
	*c->other = NULL;
}

static void
test_done_finishes_another_done_job(void **state)
{
	for (int round = 0; round < 2; round++) {
		struct event_loop *loop = event_loop_new();
		/* one worker: a's work, then b's, are finished in that order,
		   so that a's completion comes first */
		struct job_queue *queue = queue_new(loop, 1);
		int order[4], count = 0;
		struct job *jb = NULL;
		struct chain b = { .w = { .id = 3, .done_order = order, .done_count = &count },
				   .other = &jb };
		struct chain a = { .w = { .id = 2, .done_order = order, .done_count = &count },
				   .other = &jb, .cancel = round == 1 };
		struct job *ja;

		(void)state;
		ja = job_submit(queue, work_square, done_finish_other, &a);
		jb = job_submit(queue, work_square, done_forget, &b);
		/* both done, their completions not yet dispatched */
		for (int i = 0; i < 5000 && (b.w.result == 0 || a.w.result == 0); i++)
			sleep_ms(1);
		sleep_ms(20);
		assert_int_equal(job_queue_pending(queue), 2);
		for (int i = 0; i < 20 && !a.w.done; i++)
			assert_int_equal(event_loop_run_once(loop, 10), 0);
		(void)ja;
		assert_true(a.w.done);
		assert_null(jb);
		/* finished: done once, from a's; cancelled: never */
		assert_int_equal(b.w.done, round == 0);
		assert_int_equal(count, round == 0 ? 2 : 1);
		for (int i = 0; i < 5; i++)
			assert_int_equal(event_loop_run_once(loop, 5), 0);
		assert_int_equal(count, round == 0 ? 2 : 1);
		assert_int_equal(job_queue_pending(queue), 0);
		job_queue_free(&queue);
		event_loop_free(&loop);
	}
}

static void
release_later(void *ctx)
{
	atomic_bool *gate = ctx;

	sleep_ms(30);
	atomic_store(gate, true);
}

static void *
release_thread(void *ctx)
{
	release_later(ctx);
	return NULL;
}

/* Shutdown with a job at work and one waiting: the working one finishes
   and completes (ran), the waiting one is told it did not run. */
static void
test_shutdown_with_job_running(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct job_queue *queue = queue_new(loop, 1);
	atomic_bool gate = false;
	struct work_ctx a = { .id = 4, .gate = &gate }, b = { .id = 5 };
	pthread_t releaser;

	(void)job_submit(queue, work_square, done_record, &a);
	(void)job_submit(queue, work_square, done_record, &b);
	for (int i = 0; i < 5000 && !atomic_load(&a.started); i++)
		sleep_ms(1);
	assert_int_equal(pthread_create(&releaser, NULL, release_thread, &gate), 0);
	job_queue_free(&queue);
	pthread_join(releaser, NULL);
	assert_true(a.done);
	assert_true(a.ran);
	assert_int_equal(a.result, 16);
	assert_true(b.done);
	assert_false(b.ran);
	assert_int_equal(b.result, 0);
	event_loop_free(&loop);
}

static void
test_default_queue(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct job_queue *queue = queue_new(loop, 1);

	assert_null(job_queue_default());
	job_queue_set_default(queue);
	assert_ptr_equal(job_queue_default(), queue);
	job_queue_free(&queue);
	/* Freeing the default queue unsets it. */
	assert_null(job_queue_default());
	/* Without IMAPSERVER_TEST_JOB_HOLD the hook returns at once. */
	job_test_hold();
	event_loop_free(&loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_job_completes_in_the_loop),
		cmocka_unit_test(test_many_jobs_bounded),
		cmocka_unit_test(test_job_outlives_its_session),
		cmocka_unit_test(test_cancel_waiting_and_working),
		cmocka_unit_test(test_finish_now_waiting_and_working),
		cmocka_unit_test(test_done_finishes_another_done_job),
		cmocka_unit_test(test_shutdown_with_job_running),
		cmocka_unit_test(test_default_queue),
	};

	unsetenv("IMAPSERVER_TEST_JOB_HOLD");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
