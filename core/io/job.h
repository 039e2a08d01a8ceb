/* job.h: work done outside the event loop.

   Some operations cost the size of a whole mailbox (a flat mail file
   rewritten by EXPUNGE, the first scan of a mail file without an index).
   Done in the loop they stall every session. A job splits such an
   operation: its work function runs in a worker thread, its completion
   callback runs afterwards in the loop (woken through a pipe the loop
   watches), where the result is made visible.

   The work function touches no shared state: it gets its own copies of
   what it needs (a context the submitter gave away until completion),
   uses file descriptors the context owns, allocates only for the context
   (malloc is thread-safe; the xalloc helpers' fatal() on exhaustion is
   the one exception accepted), and logs, if at all, only through log.h
   (each line is one vsnprintf() into a buffer on the stack and one
   stdio or syslog call, safe from a thread). Everything else (the
   mailbox, the sessions) is touched by the completion callback only, in
   the loop.

   At most max_threads jobs work at once; more wait in submission order.

   Chosen over a helper process (as the PAM helper): the work is a copy
   between files the server already has open, with results (offsets,
   hashes, index records) that would otherwise cross a socket; a thread
   with a context of its own shares nothing, costs no fork and no
   protocol, and dies with the process (a crash mid-job is a crash of
   the server, which the storage formats already survive). */
#ifndef JOB_H
#define JOB_H

#include "lib.h"

struct event_loop;
struct job_queue;
struct job;

/* Runs in a worker thread; must not touch anything but ctx. */
typedef void job_work_func(void *ctx);
/* Runs in the loop once the work is done (ran = true), or, when the
   queue is freed before the job could start, with ran = false. Not
   called for a job cancelled with job_cancel(). The job is freed after
   it returns. */
typedef void job_done_func(void *ctx, bool ran);

/* A queue of jobs for loop, with at most max_threads workers (started
   when needed). Returns NULL with *error_r if the wake-up pipe cannot
   be made. */
struct job_queue *job_queue_new(struct event_loop *loop, unsigned max_threads,
				char **error_r);
/* Waits for the jobs at work, calls done() of every job not yet
   completed (ran says whether its work ran), stops the workers and frees
   the queue. */
void job_queue_free(struct job_queue **queue);

/* Queues a job. The handle stays valid until done() is called or
   job_cancel(); the submitter keeps it only to cancel. */
struct job *job_submit(struct job_queue *queue, job_work_func *work, job_done_func *done,
		       void *ctx);
/* Withdraws a job: a waiting one never runs; a working one is waited
   for (the loop blocks until its work returns); done() is not called
   either way, and ctx is the caller's again. Sets *job to NULL. */
void job_cancel(struct job **job);

/* Completes a job at once, in the caller (the loop): a waiting one is
   withdrawn and its work run here, a working one waited for; then
   done(ctx, true) is called and the job freed. For a caller that cannot
   wait for the loop to hear of it: the loop blocks as long as doing the
   work itself would have. Sets *job to NULL. */
void job_finish_now(struct job **job);

/* Jobs queued or working, for tests and logging. */
unsigned job_queue_pending(const struct job_queue *queue);

/* The queue the process's mailboxes use, or NULL (then heavy operations
   run synchronously, as in tools and tests without a loop). Set once by
   the program's main(). */
void job_queue_set_default(struct job_queue *queue);
struct job_queue *job_queue_default(void);

/* Closes fd in a worker of the default queue (at once without one). For
   the last descriptor of a big file just replaced or unlinked: its final
   close frees the file's blocks and pages, tens of milliseconds for a
   gigabyte. */
void job_close_later(int fd);

/* A test hook for work functions: if the environment variable
   IMAPSERVER_TEST_JOB_HOLD names a file when the queue is made, a work
   function that calls this waits while that file exists and is empty
   (checking every 10 ms, at most 60 s). End-to-end tests use it to hold
   a job in the middle of its work; a hold reached makes the file
   <that file>.held, for a test to wait for. Does nothing otherwise. */
void job_test_hold(void);
/* The same for work of a kind that runs before most commands (a sync):
   held while the file exists if its first line was name when the work
   got here, so that a test holds that kind alone. */
void job_test_hold_named(const char *name);

#endif
