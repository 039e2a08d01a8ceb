/* job.c: worker threads for work done outside the loop (see job.h).

   One mutex guards the queue's lists and each job's stage; the work
   itself runs unlocked. A worker that finishes a job moves it to the done
   list and writes a byte to the wake-up pipe; the loop's read callback
   takes the whole done list and calls each done() in the loop. */
#include "job.h"
#include "event.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JOB_HOLD_MAX_MS 60000
#define JOB_HOLD_STEP_MS 10

enum job_stage {
	JOB_WAITING,
	JOB_WORKING,
	JOB_DONE,
};

struct job {
	struct job_queue *queue;
	job_work_func *work;
	job_done_func *done;
	void *ctx;
	enum job_stage stage;
	/* In the waiting or the done list; a working job is in neither. */
	struct job *next;
};

struct job_list {
	struct job *head, *tail;
};

struct job_queue {
	struct event_loop *loop;
	struct event_io *io;
	int pipe_fds[2];

	pthread_mutex_t lock;
	pthread_cond_t work_cond;  /* workers: a job waits, or stop */
	pthread_cond_t done_cond;  /* job_cancel(): a working job is done */
	struct job_list waiting, done;
	unsigned waiting_count, working_count, idle;
	bool stop;

	pthread_t *threads;
	unsigned thread_count, max_threads;
};

static struct job_queue *default_queue;
/* IMAPSERVER_TEST_JOB_HOLD, read when a queue is made (before any
   worker starts, so the workers only read it). */
static char *hold_path;

static void
job_list_push(struct job_list *list, struct job *job)
{
	job->next = NULL;
	if (list->tail != NULL)
		list->tail->next = job;
	else
		list->head = job;
	list->tail = job;
}

static struct job *
job_list_pop(struct job_list *list)
{
	struct job *job = list->head;

	if (job != NULL) {
		list->head = job->next;
		if (list->head == NULL)
			list->tail = NULL;
		job->next = NULL;
	}
	return job;
}

/* Unlinks job from list; returns false if it was not there. */
static bool
job_list_unlink(struct job_list *list, struct job *job)
{
	struct job *prev = NULL;

	for (struct job *j = list->head; j != NULL; prev = j, j = j->next) {
		if (j != job)
			continue;
		if (prev != NULL)
			prev->next = j->next;
		else
			list->head = j->next;
		if (list->tail == j)
			list->tail = prev;
		j->next = NULL;
		return true;
	}
	return false;
}

static void *
job_worker(void *arg)
{
	struct job_queue *queue = arg;

	pthread_mutex_lock(&queue->lock);
	for (;;) {
		struct job *job;

		while (!queue->stop && queue->waiting.head == NULL) {
			queue->idle++;
			pthread_cond_wait(&queue->work_cond, &queue->lock);
			queue->idle--;
		}
		if (queue->stop)
			break;
		job = job_list_pop(&queue->waiting);
		queue->waiting_count--;
		queue->working_count++;
		job->stage = JOB_WORKING;
		pthread_mutex_unlock(&queue->lock);

		job->work(job->ctx);

		pthread_mutex_lock(&queue->lock);
		job->stage = JOB_DONE;
		queue->working_count--;
		job_list_push(&queue->done, job);
		pthread_cond_broadcast(&queue->done_cond);
		/* A full pipe already has the loop's attention. */
		ssize_t ret ATTR_UNUSED = write(queue->pipe_fds[1], "j", 1);
	}
	pthread_mutex_unlock(&queue->lock);
	return NULL;
}

/* The loop's side: calls done() of every job finished when it is called.
   One at a time off the queue's list: a done() may finish or cancel
   another finished job (job_finish_now(), job_cancel()), which must
   find it there, not in a batch taken off before. */
static void
job_queue_input(void *ctx)
{
	struct job_queue *queue = ctx;
	char drain[64];
	struct job *job;
	unsigned n = 0;

	while (read(queue->pipe_fds[0], drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&queue->lock);
	for (job = queue->done.head; job != NULL; job = job->next)
		n++;
	pthread_mutex_unlock(&queue->lock);
	for (; n > 0; n--) {
		pthread_mutex_lock(&queue->lock);
		job = job_list_pop(&queue->done);
		pthread_mutex_unlock(&queue->lock);
		if (job == NULL)
			break;
		job->done(job->ctx, true);
		free(job);
	}
}

struct job_queue *
job_queue_new(struct event_loop *loop, unsigned max_threads, char **error_r)
{
	struct job_queue *queue = xcalloc(1, sizeof(*queue));
	const char *hold = getenv("IMAPSERVER_TEST_JOB_HOLD");

	if (pipe(queue->pipe_fds) < 0 || fd_set_nonblock_cloexec(queue->pipe_fds[0]) < 0 ||
	    fd_set_nonblock_cloexec(queue->pipe_fds[1]) < 0 || !event_fd_ok(queue->pipe_fds[0])) {
		*error_r = xasprintf("job queue pipe: %s", strerror(errno != 0 ? errno : EMFILE));
		if (queue->pipe_fds[0] > 0) {
			close(queue->pipe_fds[0]);
			close(queue->pipe_fds[1]);
		}
		free(queue);
		return NULL;
	}
	if (hold != NULL && *hold != '\0' && hold_path == NULL)
		hold_path = xstrdup(hold);
	queue->loop = loop;
	queue->max_threads = max_threads > 0 ? max_threads : 1;
	queue->threads = xcalloc(queue->max_threads, sizeof(*queue->threads));
	pthread_mutex_init(&queue->lock, NULL);
	pthread_cond_init(&queue->work_cond, NULL);
	pthread_cond_init(&queue->done_cond, NULL);
	queue->io = event_io_add(loop, queue->pipe_fds[0], job_queue_input, NULL, queue);
	return queue;
}

void
job_queue_free(struct job_queue **_queue)
{
	struct job_queue *queue = *_queue;
	struct job *job;

	if (queue == NULL)
		return;
	*_queue = NULL;
	if (default_queue == queue)
		default_queue = NULL;
	pthread_mutex_lock(&queue->lock);
	queue->stop = true;
	pthread_cond_broadcast(&queue->work_cond);
	pthread_mutex_unlock(&queue->lock);
	/* Working jobs finish their work; waiting ones stay waiting. */
	for (unsigned i = 0; i < queue->thread_count; i++)
		pthread_join(queue->threads[i], NULL);
	while ((job = job_list_pop(&queue->done)) != NULL) {
		job->done(job->ctx, true);
		free(job);
	}
	while ((job = job_list_pop(&queue->waiting)) != NULL) {
		job->done(job->ctx, false);
		free(job);
	}
	event_io_remove(&queue->io);
	close(queue->pipe_fds[0]);
	close(queue->pipe_fds[1]);
	pthread_cond_destroy(&queue->done_cond);
	pthread_cond_destroy(&queue->work_cond);
	pthread_mutex_destroy(&queue->lock);
	free(queue->threads);
	free(queue);
}

/* Starts a worker if the waiting jobs outnumber the idle workers and the
   bound allows. Called with the lock held. Signals go to the loop's
   thread: the workers block them all. */
static void
job_queue_spawn(struct job_queue *queue)
{
	sigset_t all, old;

	if (queue->waiting_count <= queue->idle || queue->thread_count >= queue->max_threads)
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&queue->threads[queue->thread_count], NULL, job_worker, queue) == 0)
		queue->thread_count++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (queue->thread_count == 0)
		fatal("job queue: cannot start a worker thread");
}

struct job *
job_submit(struct job_queue *queue, job_work_func *work, job_done_func *done, void *ctx)
{
	struct job *job = xcalloc(1, sizeof(*job));

	job->queue = queue;
	job->work = work;
	job->done = done;
	job->ctx = ctx;
	job->stage = JOB_WAITING;
	pthread_mutex_lock(&queue->lock);
	job_list_push(&queue->waiting, job);
	queue->waiting_count++;
	job_queue_spawn(queue);
	pthread_cond_signal(&queue->work_cond);
	pthread_mutex_unlock(&queue->lock);
	return job;
}

/* Takes job out of its queue: a waiting one is withdrawn (returns
   true: its work never ran), a working one waited for. */
static bool
job_withdraw(struct job *job)
{
	struct job_queue *queue = job->queue;
	bool waiting;

	pthread_mutex_lock(&queue->lock);
	waiting = job->stage == JOB_WAITING;
	if (waiting) {
		(void)job_list_unlink(&queue->waiting, job);
		queue->waiting_count--;
	} else {
		while (job->stage == JOB_WORKING)
			pthread_cond_wait(&queue->done_cond, &queue->lock);
		(void)job_list_unlink(&queue->done, job);
	}
	pthread_mutex_unlock(&queue->lock);
	return waiting;
}

void
job_cancel(struct job **_job)
{
	struct job *job = *_job;

	if (job == NULL)
		return;
	*_job = NULL;
	(void)job_withdraw(job);
	free(job);
}

void
job_finish_now(struct job **_job)
{
	struct job *job = *_job;

	if (job == NULL)
		return;
	*_job = NULL;
	if (job_withdraw(job))
		job->work(job->ctx);
	job->done(job->ctx, true);
	free(job);
}

unsigned
job_queue_pending(const struct job_queue *queue)
{
	struct job_queue *q = (struct job_queue *)(uintptr_t)queue;
	unsigned n = 0;

	pthread_mutex_lock(&q->lock);
	n = q->waiting_count + q->working_count;
	for (struct job *j = q->done.head; j != NULL; j = j->next)
		n++;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void
job_queue_set_default(struct job_queue *queue)
{
	default_queue = queue;
}

struct job_queue *
job_queue_default(void)
{
	return default_queue;
}

static void
job_close_work(void *ctx)
{
	int *fd = ctx;

	close(*fd);
	*fd = -1;
}

static void
job_close_done(void *ctx, bool ran)
{
	int *fd = ctx;

	if (*fd >= 0)
		close(*fd);
	free(fd);
}

void
job_close_later(int fd)
{
	int *ctx;

	if (default_queue == NULL) {
		close(fd);
		return;
	}
	ctx = xmalloc(sizeof(*ctx));
	*ctx = fd;
	(void)job_submit(default_queue, job_close_work, job_close_done, ctx);
}

/* Whether the hold file's first line is name (NULL: the file is empty). */
static bool
job_test_hold_matches(const char *name)
{
	char line[64] = "";
	size_t len;
	FILE *f = fopen(hold_path, "r");

	if (f == NULL)
		return false;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	len = strcspn(line, "\n");
	line[len] = '\0';
	return strcmp(line, name != NULL ? name : "") == 0;
}

/* The hold reached: <hold>.held made, for a test that waits for it. */
static void
job_test_held_mark(void)
{
	char *mark = xasprintf("%s.held", hold_path);
	int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd >= 0)
		close(fd);
	free(mark);
}

static void
job_test_hold_while(const char *name)
{
	struct timespec step = { 0, JOB_HOLD_STEP_MS * 1000000L };
	struct stat st;

	if (hold_path == NULL || !job_test_hold_matches(name))
		return;
	job_test_held_mark();
	for (int waited = 0; waited < JOB_HOLD_MAX_MS; waited += JOB_HOLD_STEP_MS) {
		if (stat(hold_path, &st) < 0)
			return;
		nanosleep(&step, NULL);
	}
}

void
job_test_hold(void)
{
	job_test_hold_while(NULL);
}

void
job_test_hold_named(const char *name)
{
	job_test_hold_while(name);
}
