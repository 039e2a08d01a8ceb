/* Tests of the mailbox hub's jobs (core/hub/mailbox_job.c) on the flat
   backend: an expunge that works in a job keeps the mailbox busy (writes
   refused, waiters called after the commit in order), completes for a
   caller that went away, is undone when the hub goes first; the first
   open of a big mailbox without an index works in a job; on Maildir, an
   append's message is written in a job while the mailbox goes on; a
   backend's sync in a job serves the commands that came before it
   started; a command's flag changes made in one job; messages read
   ahead in a job; a COPY made in one job. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backends/flat/flat.h"
#include "backends/flat/flat_private.h"
#include "backends/maildir/maildir.h"
#include "buf.h"
#include "event.h"
#include "job.h"
#include "mailbox.h"
#include "seqset.h"
#include "tmp_tree.h"
#include "hub_jobs.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* count messages of about 200 octets into alice's mailbox file name. */
static void
write_mailbox(struct fx *fx, const char *file, unsigned count)
{
	char *dir = xasprintf("%s/alice", fx->root);
	char *path = xasprintf("%s/%s", dir, file);
	FILE *f;

	(void)mkdir(dir, 0700);
	f = fopen(path, "w");
	assert_non_null(f);
	for (unsigned i = 1; i <= count; i++) {
		fprintf(f, "From: x@example.org\nSubject: message %u\n", i);
		for (int l = 0; l < 2; l++)
			fprintf(f, "%s\n", "bodybodybodybodybodybodybodybodybodybodybodybodybodybodybody");
		fprintf(f, ".\n");
	}
	fclose(f);
	free(path);
	free(dir);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct storage_settings set;
	char *error = NULL;

	strcpy(fx->root, "/tmp/test_mailbox_job.XXXXXX");
	assert_non_null(mkdtemp(fx->root));
	set.root = fx->root;
	fx->storage.backend = &storage_backend_flat;
	assert_int_equal(fx->storage.backend->init(&set, &fx->storage.st, &error), 0);
	fx->loop = event_loop_new();
	fx->queue = job_queue_new(fx->loop, 2, &error);
	assert_non_null(fx->queue);
	job_queue_set_default(fx->queue);
	fx->hub = hub_new(&fx->storage, NULL);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	hub_free(&fx->hub);
	job_queue_free(&fx->queue);
	event_loop_free(&fx->loop);
	fx->storage.backend->deinit(&fx->storage.st);
	tmp_tree_remove(fx->root);
	free(fx);
	return 0;
}

struct done_rec {
	bool done;
	int ret;
	enum storage_error err;
	int *order;
	int *n;
};

static void
on_done(void *ctx, int ret, enum storage_error err)
{
	struct done_rec *d = ctx;

	d->done = true;
	d->ret = ret;
	d->err = err;
	if (d->order != NULL)
		d->order[(*d->n)++] = 0;
}

struct waiter_rec {
	int id;
	int *order;
	int *n;
	bool called;
};

static void
on_idle(void *ctx)
{
	struct waiter_rec *w = ctx;

	w->called = true;
	w->order[(*w->n)++] = w->id;
}


static struct mailbox *
open_inbox(struct fx *fx)
{
	struct mailbox *mbox;
	enum storage_error err;

	assert_int_equal(mailbox_open(fx->hub, "t", "alice", "INBOX", &mbox, &err), 0);
	return mbox;
}

static void
test_expunge_in_job_busy_then_waiters(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox;
	struct mbox_state *st;
	struct seqset uids = { 0 };
	struct mailbox_op *op;
	enum storage_error err;
	int order[4], n = 0;
	struct done_rec d = { .order = order, .n = &n };
	struct waiter_rec w1 = { 1, order, &n, false }, w2 = { 2, order, &n, false };
	uint32_t uid;

	write_mailbox(fx, "mymailbox.mail", 50);
	mbox = open_inbox(fx);
	st = mailbox_state(mbox);
	assert_int_equal(st->count, 50);
	seqset_add_range(&uids, 10, 12);
	assert_int_equal(mailbox_expunge_start(mbox, &uids, false, on_done, &d, &op, &err, "t"), 1);
	assert_non_null(op);
	assert_true(mailbox_is_busy(mbox));
	/* Writes are refused while busy; the state is as before. */
	assert_int_equal(mailbox_append(mbox, "Subject: x\r\n\r\nx\r\n", 17, 0, 0, 0, 0, &uid, &err,
					"t"), -1);
	assert_int_equal(err, STORAGE_ERR_IN_USE);
	assert_int_equal(mailbox_expunge(mbox, NULL, &err, "t"), -1);
	assert_int_equal(err, STORAGE_ERR_IN_USE);
	assert_int_equal(st->count, 50);
	/* A flag change is taken in memory and written after the job. */
	assert_int_equal(mailbox_set_flags(mbox, NULL, 0, MAIL_SEEN, 0, &err, "t"), 0);
	(void)mailbox_wait_idle(mbox, on_idle, &w1);
	(void)mailbox_wait_idle(mbox, on_idle, &w2);
	run_until(fx, &w2.called);
	assert_true(d.done);
	assert_int_equal(d.ret, 0);
	/* The caller first, then the waiters in order. */
	assert_int_equal(n, 3);
	assert_int_equal(order[0], 0);
	assert_int_equal(order[1], 1);
	assert_int_equal(order[2], 2);
	assert_false(mailbox_is_busy(mbox));
	assert_int_equal(st->count, 47);
	assert_int_equal(mbox_state_find(st, 11), -1);
	assert_int_equal(mailbox_append(mbox, "Subject: x\r\n\r\nx\r\n", 17, 0, 0, 0, 0, &uid, &err,
					"t"), 0);
	assert_int_equal(uid, 51);
	seqset_free(&uids);
	mailbox_unref(&mbox);
	/* On disk: reopened from scratch, the flag and the expunge hold. */
	hub_free(&fx->hub);
	fx->hub = hub_new(&fx->storage, NULL);
	mbox = open_inbox(fx);
	st = mailbox_state(mbox);
	assert_int_equal(st->count, 48);
	assert_int_equal(st->mails[0].flags, MAIL_SEEN);
	assert_int_equal(st->mails[9].uid, 13);
	mailbox_unref(&mbox);
}

static void
test_expunge_caller_gone(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox;
	struct seqset uids = { 0 };
	struct mailbox_op *op;
	enum storage_error err;
	struct done_rec d = { 0 };
	int order[2], n = 0;
	struct waiter_rec w = { 1, order, &n, false };

	write_mailbox(fx, "mymailbox.mail", 20);
	mbox = open_inbox(fx);
	seqset_add_range(&uids, 1, 1);
	assert_int_equal(mailbox_expunge_start(mbox, &uids, false, on_done, &d, &op, &err, "t"), 1);
	/* The session goes: it lets go of its reference and of the op. */
	mailbox_op_detach(&op);
	assert_null(op);
	mailbox_unref(&mbox);
	mbox = hub_find(fx->hub, "alice", "INBOX");
	assert_non_null(mbox);
	(void)mailbox_wait_idle(mbox, on_idle, &w);
	run_until(fx, &w.called);
	assert_false(d.done);
	mbox = open_inbox(fx);
	assert_int_equal(mailbox_state(mbox)->count, 19);
	mailbox_unref(&mbox);
	seqset_free(&uids);
}

static void
test_hub_freed_with_job_running(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox;
	struct seqset uids = { 0 };
	struct mailbox_op *op;
	enum storage_error err;
	struct done_rec d = { 0 };
	struct stat st;
	char *tmp = xasprintf("%s/alice/mymailbox.mail.tmp", fx->root);

	write_mailbox(fx, "mymailbox.mail", 20);
	mbox = open_inbox(fx);
	seqset_add_range(&uids, 2, 3);
	assert_int_equal(mailbox_expunge_start(mbox, &uids, false, on_done, &d, &op, &err, "t"), 1);
	mailbox_op_detach(&op);
	mailbox_unref(&mbox);
	/* Shutdown: the work is waited for, and undone if it had not
	   switched files yet (storage.h, job_abort: else the expunge
	   stands, as after a crash then; tests/test_disk_waits.c). */
	hub_free(&fx->hub);
	assert_false(d.done);
	assert_int_equal(stat(tmp, &st), -1);
	fx->hub = hub_new(&fx->storage, NULL);
	mbox = open_inbox(fx);
	if (mailbox_state(mbox)->count == 18) {
		assert_int_equal(mailbox_state(mbox)->mails[0].uid, 1);
		assert_int_equal(mailbox_state(mbox)->mails[1].uid, 4);
		assert_int_equal(mailbox_state(mbox)->mails[17].uid, 20);
	} else {
		assert_int_equal(mailbox_state(mbox)->count, 20);
	}
	mailbox_unref(&mbox);
	seqset_free(&uids);
	free(tmp);
}

/* Removes the index flat wrote for alice's mailbox name. */
static void
unlink_index(struct fx *fx, const char *name)
{
	char *path = xasprintf("%s/alice/%s/%s.index", fx->root, FLAT_IMAP_DIR, name);

	assert_int_equal(unlink(path), 0);
	free(path);
}

static void
test_first_open_in_job(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox, *opening;
	enum storage_error err;
	int order[2], n = 0;
	struct waiter_rec w = { 1, order, &n, false };

	/* Over FLAT_FIRST_BUILD_JOB_MIN (1 MB), no index. */
	write_mailbox(fx, "big.mail", 8000);
	opening = hub_open_start(fx->hub, "t", "alice", "big");
	assert_non_null(opening);
	assert_true(mailbox_is_busy(opening));
	/* Asked again: the same job. */
	assert_ptr_equal(hub_open_start(fx->hub, "t", "alice", "big"), opening);
	(void)mailbox_wait_idle(opening, on_idle, &w);
	run_until(fx, &w.called);
	assert_null(hub_open_start(fx->hub, "t", "alice", "big"));
	assert_int_equal(mailbox_open(fx->hub, "t", "alice", "big", &mbox, &err), 0);
	assert_ptr_equal(mbox, opening);
	assert_int_equal(mailbox_state(mbox)->count, 8000);
	assert_int_equal(mailbox_state(mbox)->mails[7999].uid, 8000);
	mailbox_unref(&mbox);
	/* Opened by a caller that cannot wait (an SMTP delivery) while the
	   job is at work: finished at once, not refused, not empty; the
	   session waiting goes on. */
	hub_free(&fx->hub);
	unlink_index(fx, "big");
	fx->hub = hub_new(&fx->storage, NULL);
	w.called = false;
	opening = hub_open_start(fx->hub, "t", "alice", "big");
	assert_non_null(opening);
	(void)mailbox_wait_idle(opening, on_idle, &w);
	assert_int_equal(mailbox_open(fx->hub, "t", "alice", "big", &mbox, &err), 0);
	assert_true(w.called);
	assert_false(mailbox_is_busy(mbox));
	assert_int_equal(mailbox_state(mbox)->count, 8000);
	mailbox_unref(&mbox);
	/* A small mailbox, or one with an index, opens at once. */
	write_mailbox(fx, "small.mail", 3);
	assert_null(hub_open_start(fx->hub, "t", "alice", "small"));
	hub_free(&fx->hub);
	fx->hub = hub_new(&fx->storage, NULL);
	assert_null(hub_open_start(fx->hub, "t", "alice", "big"));
	/* Missing: open() says so. */
	assert_null(hub_open_start(fx->hub, "t", "alice", "nothere"));
}

static void
test_first_open_hub_freed(void **state)
{
	struct fx *fx = *state;

	write_mailbox(fx, "big.mail", 8000);
	assert_non_null(hub_open_start(fx->hub, "t", "alice", "big"));
	hub_free(&fx->hub);
	fx->hub = hub_new(&fx->storage, NULL);
}

/* Maildir: a folder of 3,000 files without a uidlist is read in a job
   (the backend's own open() in a worker), then handed to the hub. */
static void
test_maildir_first_open_in_job(void **state)
{
	struct fx *fx = *state;
	struct storage_settings set = { .root = fx->root };
	struct storage_ctx md = { .backend = &storage_backend_maildir };
	struct hub *hub;
	struct mailbox *mbox, *opening;
	enum storage_error err;
	char *error = NULL;
	int order[2], n = 0;
	struct waiter_rec w = { 1, order, &n, false };
	const char *subs[] = { "Maildir", "Maildir/cur", "Maildir/new", "Maildir/tmp",
			       "Maildir/.big", "Maildir/.big/cur", "Maildir/.big/new",
			       "Maildir/.big/tmp" };
	char *path;

	assert_int_equal(md.backend->init(&set, &md.st, &error), 0);
	path = xasprintf("%s/alice", fx->root);
	(void)mkdir(path, 0700);
	free(path);
	for (size_t i = 0; i < N_ELEMENTS(subs); i++) {
		path = xasprintf("%s/alice/%s", fx->root, subs[i]);
		assert_int_equal(mkdir(path, 0700), 0);
		free(path);
	}
	for (unsigned i = 1; i <= 3000; i++) {
		FILE *f;

		path = xasprintf("%s/alice/Maildir/.big/cur/1700000000.M%uP1.test:2,S", fx->root,
				 i);
		f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "Subject: m %u\n\nbody\n", i);
		fclose(f);
		free(path);
	}
	hub = hub_new(&md, NULL);
	opening = hub_open_start(hub, "t", "alice", "big");
	assert_non_null(opening);
	(void)mailbox_wait_idle(opening, on_idle, &w);
	run_until(fx, &w.called);
	assert_int_equal(mailbox_open(hub, "t", "alice", "big", &mbox, &err), 0);
	assert_ptr_equal(mbox, opening);
	assert_int_equal(mailbox_state(mbox)->count, 3000);
	assert_int_equal(mailbox_state(mbox)->mails[0].flags, MAIL_SEEN);
	mailbox_unref(&mbox);
	/* With its uidlist now, the next first open is at once. */
	hub_free(&hub);
	hub = hub_new(&md, NULL);
	assert_null(hub_open_start(hub, "t", "alice", "big"));
	hub_free(&hub);
	md.backend->deinit(&md.st);
}

/* A Maildir store for alice under fx->root, and a hub over it. */
static struct hub *
maildir_hub(struct fx *fx, struct storage_ctx *md)
{
	struct storage_settings set = { .root = fx->root };
	const char *subs[] = { "alice", "alice/Maildir", "alice/Maildir/cur",
			       "alice/Maildir/new", "alice/Maildir/tmp" };
	char *error = NULL;

	md->backend = &storage_backend_maildir;
	assert_int_equal(md->backend->init(&set, &md->st, &error), 0);
	for (size_t i = 0; i < N_ELEMENTS(subs); i++) {
		char *path = xasprintf("%s/%s", fx->root, subs[i]);

		(void)mkdir(path, 0700);
		free(path);
	}
	return hub_new(md, NULL);
}





static void
test_maildir_append_in_job(void **state)
{
	struct fx *fx = *state;
	struct storage_ctx md;
	struct hub *hub = maildir_hub(fx, &md);
	struct mailbox *mbox;
	struct mailbox_append_op *op;
	enum storage_error err;
	struct append_rec a = { 0 };
	uint32_t uid = 0;

	assert_int_equal(mailbox_open(hub, "t", "alice", "INBOX", &mbox, &err), 0);
	assert_int_equal(mailbox_append_start(mbox, MSG, strlen(MSG), MAIL_SEEN, 0, 1700000000, 60,
					      on_append, &a, &op, &uid, &err, "t"), 1);
	assert_non_null(op);
	/* Nothing of it in the mailbox yet, and the mailbox is not busy:
	   another append is stored meanwhile, and takes the first UID. */
	assert_int_equal(mailbox_state(mbox)->count, 0);
	assert_false(mailbox_is_busy(mbox));
	assert_int_equal(mailbox_append(mbox, MSG, strlen(MSG), 0, 0, 1700000000, 0, &uid, &err,
					"t"), 0);
	assert_int_equal(uid, 1);
	run_until(fx, &a.done);
	assert_int_equal(a.ret, 0);
	assert_int_equal(a.uid, 2);
	assert_int_equal(mailbox_state(mbox)->count, 2);
	assert_int_equal(mailbox_state(mbox)->mails[1].flags, MAIL_SEEN);
	assert_int_equal(mailbox_state(mbox)->mails[1].internal_date, 1700000000);
	assert_int_equal(maildir_files(fx, "tmp"), 0);
	mailbox_unref(&mbox);
	/* As stored, after the process is gone. */
	hub_free(&hub);
	hub = hub_new(&md, NULL);
	assert_int_equal(mailbox_open(hub, "t", "alice", "INBOX", &mbox, &err), 0);
	assert_int_equal(mailbox_state(mbox)->count, 2);
	assert_int_equal(mailbox_state(mbox)->mails[0].uid, 1);
	assert_int_equal(mailbox_state(mbox)->mails[1].uid, 2);
	assert_int_equal(mailbox_state(mbox)->mails[1].flags, MAIL_SEEN);
	mailbox_unref(&mbox);
	hub_free(&hub);
	md.backend->deinit(&md.st);
}

static void
test_maildir_append_caller_gone_and_hub_freed(void **state)
{
	struct fx *fx = *state;
	struct storage_ctx md;
	struct hub *hub = maildir_hub(fx, &md);
	struct mailbox *mbox;
	struct mailbox_append_op *op;
	enum storage_error err;
	struct append_rec a = { 0 };
	uint32_t uid = 0;

	/* The caller goes away: the append still ends in the mailbox. */
	assert_int_equal(mailbox_open(hub, "t", "alice", "INBOX", &mbox, &err), 0);
	assert_int_equal(mailbox_append_start(mbox, MSG, strlen(MSG), 0, 0, 1700000000, 0,
					      on_append, &a, &op, &uid, &err, "t"), 1);
	mailbox_append_detach(&op);
	assert_null(op);
	for (int i = 0; i < 1000 && mailbox_state(mbox)->count == 0; i++)
		assert_int_equal(event_loop_run_once(fx->loop, 10), 0);
	assert_int_equal(mailbox_state(mbox)->count, 1);
	assert_false(a.done);
	/* The hub goes first (shutdown): the append is undone, nothing is
	   left in tmp/ or in the mailbox, and the caller is not called. */
	assert_int_equal(mailbox_append_start(mbox, MSG, strlen(MSG), 0, 0, 1700000000, 0,
					      on_append, &a, &op, &uid, &err, "t"), 1);
	mailbox_append_detach(&op);
	mailbox_unref(&mbox);
	hub_free(&hub);
	assert_false(a.done);
	assert_int_equal(maildir_files(fx, "tmp"), 0);
	assert_int_equal(maildir_files(fx, "new") + maildir_files(fx, "cur"), 1);
	hub = hub_new(&md, NULL);
	assert_int_equal(mailbox_open(hub, "t", "alice", "INBOX", &mbox, &err), 0);
	assert_int_equal(mailbox_state(mbox)->count, 1);
	mailbox_unref(&mbox);
	hub_free(&hub);
	md.backend->deinit(&md.st);
}

/* A backend whose sync works in a job (storage.h: sync_prepare): flat,
   with its sync() made in the commit, and jobs of its own told apart
   from flat's by address. */
struct sync_rec {
	bool worked;
};
static struct storage_backend flat_jobsync;
static struct sync_rec *sync_live[4];
static unsigned sync_prepared;

static bool
sync_rec_own(struct storage_job *job)
{
	for (size_t i = 0; i < 4; i++) {
		if (sync_live[i] != NULL && (void *)sync_live[i] == (void *)job)
			return true;
	}
	return false;
}

static void
sync_rec_drop(struct storage_job *job)
{
	for (size_t i = 0; i < 4; i++) {
		if ((void *)sync_live[i] == (void *)job) {
			free(sync_live[i]);
			sync_live[i] = NULL;
		}
	}
}

/* whether the last sync prepared was asked to take \\Recent */
static bool sync_take_recent;

static int
js_sync_prepare(struct storage_box *box, const struct mbox_state *state, bool take_recent,
		struct storage_job **job_r, enum storage_error *err_r, char **error_r)
{
	(void)box;
	(void)state;
	(void)err_r;
	(void)error_r;
	sync_take_recent = take_recent;
	for (size_t i = 0; i < 4; i++) {
		if (sync_live[i] == NULL) {
			sync_live[i] = xcalloc(1, sizeof(*sync_live[i]));
			*job_r = (struct storage_job *)(void *)sync_live[i];
			sync_prepared++;
			return 0;
		}
	}
	fail_msg("more than four syncs at once");
	return -1;
}

static void
js_job_work(struct storage_job *job)
{
	if (sync_rec_own(job))
		((struct sync_rec *)(void *)job)->worked = true;
	else
		flat_job_work(job);
}

static int
js_sync_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **job,
	       enum storage_error *err_r, char **error_r)
{
	assert_true(sync_rec_own(*job));
	assert_true(((struct sync_rec *)(void *)*job)->worked);
	sync_rec_drop(*job);
	*job = NULL;
	return storage_backend_flat.sync(box, state, err_r, error_r);
}

static void
js_job_abort(struct storage_box *box, struct storage_job **job)
{
	if (*job != NULL && sync_rec_own(*job)) {
		sync_rec_drop(*job);
		*job = NULL;
	} else {
		storage_backend_flat.job_abort(box, job);
	}
}

static void
jobsync_hub(struct fx *fx)
{
	flat_jobsync = storage_backend_flat;
	flat_jobsync.sync_prepare = js_sync_prepare;
	flat_jobsync.sync_commit = js_sync_commit;
	flat_jobsync.job_work = js_job_work;
	flat_jobsync.job_abort = js_job_abort;
	sync_prepared = 0;
	hub_free(&fx->hub);
	fx->storage.backend = &flat_jobsync;
	fx->hub = hub_new(&fx->storage, NULL);
}

static void
append_to_file(struct fx *fx, unsigned n)
{
	char *path = xasprintf("%s/alice/mymailbox.mail", fx->root);
	FILE *f = fopen(path, "a");

	assert_non_null(f);
	fprintf(f, "From: y@example.org\nSubject: late %u\n\nlate\n.\n", n);
	fclose(f);
	free(path);
}

/* A command waits for a sync started after it came: one already at work
   when it came does not do (it may have read before the change the
   client saw committed); the waiters go on after it, in line with the
   disk; news during a sync has another made after it; a caller that
   cannot wait (an SMTP delivery) has the sync done at once, not refused. */
static void
test_sync_in_job_tickets(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox;
	struct mbox_state *st;
	enum storage_error err;
	uint64_t t1 = 0, t2 = 0, t3 = 0;
	int order[4], n = 0;
	struct waiter_rec w1 = { 1, order, &n, false }, w2 = { 2, order, &n, false };
	uint32_t uid;

	write_mailbox(fx, "mymailbox.mail", 20);
	jobsync_hub(fx);
	mbox = open_inbox(fx);
	st = mailbox_state(mbox);
	assert_int_equal(st->count, 20);
	assert_true(mailbox_sync_in_job(mbox));
	assert_int_equal(sync_prepared, 0);
	/* The first command starts a sync and waits for it. */
	append_to_file(fx, 1);
	assert_false(mailbox_catch_up(mbox, &t1, "t"));
	assert_int_equal(sync_prepared, 1);
	assert_true(mailbox_is_busy(mbox));
	(void)mailbox_wait_idle(mbox, on_idle, &w1);
	/* A second one comes while it works: it needs one more. */
	assert_false(mailbox_catch_up(mbox, &t2, "t"));
	assert_int_equal(sync_prepared, 1);
	run_until(fx, &w1.called);
	assert_int_equal(st->count, 21);
	assert_true(mailbox_catch_up(mbox, &t1, "t"));
	assert_false(mailbox_catch_up(mbox, &t2, "t"));
	assert_int_equal(sync_prepared, 2);
	/* News while it works: one more after it, by itself. */
	append_to_file(fx, 2);
	assert_int_equal(mailbox_refresh(mbox, &err, "t"), 0);
	assert_int_equal(sync_prepared, 2);
	(void)mailbox_wait_idle(mbox, on_idle, &w2);
	run_until(fx, &w2.called);
	assert_true(mailbox_catch_up(mbox, &t2, "t"));
	assert_int_equal(sync_prepared, 3);
	for (int i = 0; i < 1000 && mailbox_is_busy(mbox); i++)
		assert_int_equal(event_loop_run_once(fx->loop, 10), 0);
	assert_false(mailbox_is_busy(mbox));
	assert_int_equal(st->count, 22);
	/* A delivery while a sync works: the sync is finished, then the
	   append made. */
	assert_false(mailbox_catch_up(mbox, &t3, "t"));
	assert_true(mailbox_is_busy(mbox));
	assert_int_equal(mailbox_append(mbox, "Subject: x\r\n\r\nx\r\n", 17, 0, 0, 0, 0, &uid, &err,
					"t"), 0);
	assert_false(mailbox_is_busy(mbox));
	assert_true(mailbox_catch_up(mbox, &t3, "t"));
	assert_int_equal(uid, 23);
	assert_int_equal(st->count, 23);
	mailbox_unref(&mbox);
}

/* A sync (made before a command) into which the mailbox's \Recent
   messages are taken, in its work, if a read-write session has it
   selected or is selecting it (storage.h sync_prepare); not for
   EXAMINE or STATUS. */
static bool
synced_taking_recent(struct fx *fx, struct mailbox *mbox)
{
	uint64_t ticket = 0;

	sync_take_recent = !sync_take_recent;   /* set by every prepare */
	assert_false(mailbox_catch_up(mbox, &ticket, "t"));
	for (int i = 0; i < 1000 && mailbox_is_busy(mbox); i++)
		assert_int_equal(event_loop_run_once(fx->loop, 10), 0);
	assert_true(mailbox_catch_up(mbox, &ticket, "t"));
	return sync_take_recent;
}

static void
test_sync_takes_recent_for_read_write_sessions(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox;
	struct mbox_view *ro, *rw;
	unsigned before;

	write_mailbox(fx, "mymailbox.mail", 5);
	jobsync_hub(fx);
	mbox = open_inbox(fx);
	before = sync_prepared;
	assert_false(synced_taking_recent(fx, mbox));
	ro = mbox_view_new(mbox, true, NULL, NULL);
	assert_false(synced_taking_recent(fx, mbox));
	/* a SELECT about to make its view */
	mailbox_want_recent(mbox);
	assert_true(synced_taking_recent(fx, mbox));
	rw = mbox_view_new(mbox, false, NULL, NULL);
	assert_true(synced_taking_recent(fx, mbox));
	mbox_view_free(&rw);
	assert_false(synced_taking_recent(fx, mbox));
	mbox_view_free(&ro);
	assert_int_equal(sync_prepared - before, 5);
	mailbox_unref(&mbox);
}

/* The hub freed while a sync works: the job is waited for and dropped. */
static void
test_sync_in_job_hub_freed(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox;
	uint64_t t = 0;

	write_mailbox(fx, "mymailbox.mail", 5);
	jobsync_hub(fx);
	mbox = open_inbox(fx);
	assert_false(mailbox_catch_up(mbox, &t, "t"));
	mailbox_unref(&mbox);
	hub_free(&fx->hub);
	for (size_t i = 0; i < 4; i++)
		assert_null(sync_live[i]);
	fx->storage.backend = &storage_backend_flat;
	fx->hub = hub_new(&fx->storage, NULL);
}

/* A backend whose flag changes are made in a job (storage.h:
   flags_prepare): flat, with the changes kept in the job and written by
   flags_changed() at the commit, at one modseq; flags_fail makes the
   work fail. */
struct flags_rec {
	struct storage_flag_change *changes;
	size_t count;
	bool worked;
};
static struct storage_backend flat_jobflags;
static struct flags_rec *flags_live;
static unsigned flags_prepared;
static bool flags_fail;
/* the changes of the last job prepared (its first 4) */
static struct storage_flag_change flags_last[4];
static size_t flags_last_count;

static int
jf_flags_prepare(struct storage_box *box, const struct mbox_state *state,
		 const struct storage_flag_change *changes, size_t count,
		 struct storage_job **job_r, enum storage_error *err_r, char **error_r)
{
	(void)box;
	(void)state;
	(void)err_r;
	(void)error_r;
	assert_null(flags_live);        /* never two at once */
	assert_true(count > 0);
	flags_live = xcalloc(1, sizeof(*flags_live));
	flags_live->changes = xmalloc(count * sizeof(*changes));
	memcpy(flags_live->changes, changes, count * sizeof(*changes));
	flags_live->count = count;
	flags_last_count = count;
	memcpy(flags_last, changes, (count < 4 ? count : 4) * sizeof(*changes));
	flags_prepared++;
	*job_r = (struct storage_job *)(void *)flags_live;
	return 0;
}

static void
flags_rec_drop(void)
{
	free(flags_live->changes);
	free(flags_live);
	flags_live = NULL;
}

static void
jf_job_work(struct storage_job *job)
{
	if ((void *)job == (void *)flags_live)
		flags_live->worked = true;
	else
		flat_job_work(job);
}

static int
jf_flags_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **job,
		uint64_t *modseq_r, enum storage_error *err_r, char **error_r)
{
	uint64_t modseq = state->highest_modseq + 1;

	assert_ptr_equal((void *)*job, (void *)flags_live);
	assert_true(flags_live->worked);
	*job = NULL;
	if (flags_fail) {
		flags_rec_drop();
		*err_r = STORAGE_ERR_TEMP;
		*error_r = xstrdup("the store went away");
		return -1;
	}
	*modseq_r = 0;
	for (size_t i = 0; i < flags_live->count; i++) {
		const struct storage_flag_change *c = &flags_live->changes[i];
		ssize_t at = mbox_state_find(state, c->uid);

		if (at < 0 || (c->conditional && state->mails[at].modseq > c->unchangedsince))
			continue;
		storage_flag_change_apply(c, &state->mails[at].flags, &state->mails[at].keywords);
		state->mails[at].modseq = modseq;
		state->highest_modseq = modseq;
		*modseq_r = modseq;
		assert_int_equal(storage_backend_flat.flags_changed(box, state, (size_t)at, err_r,
								     error_r), 0);
	}
	flags_rec_drop();
	return 0;
}

static void
jf_job_abort(struct storage_box *box, struct storage_job **job)
{
	if (*job != NULL && (void *)*job == (void *)flags_live) {
		flags_rec_drop();
		*job = NULL;
	} else {
		storage_backend_flat.job_abort(box, job);
	}
}

static void
jobflags_hub(struct fx *fx)
{
	flat_jobflags = storage_backend_flat;
	flat_jobflags.flags_prepare = jf_flags_prepare;
	flat_jobflags.flags_commit = jf_flags_commit;
	flat_jobflags.job_work = jf_job_work;
	flat_jobflags.job_abort = jf_job_abort;
	flags_prepared = 0;
	flags_fail = false;
	hub_free(&fx->hub);
	fx->storage.backend = &flat_jobflags;
	fx->hub = hub_new(&fx->storage, NULL);
}

/* A command's flag changes in one job: the mailbox busy meanwhile (a
   waiter goes on after the commit), the state unchanged until the
   commit, then every change at one modseq and on the disk; a \Seen set
   while busy (FETCH) is written by a job of its own after it; a failed
   job leaves the flags as they were. */
static void
test_flags_in_job(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox;
	struct mbox_state *st;
	struct mailbox_op *op;
	enum storage_error err;
	int order[4], n = 0;
	struct done_rec d = { .order = order, .n = &n }, d2 = { 0 };
	struct waiter_rec w = { 1, order, &n, false };
	struct storage_flag_change ch[2] = {
		{ .uid = 2, .flags_set = MAIL_SEEN },
		{ .uid = 3, .flags_set = MAIL_SEEN | MAIL_FLAGGED },
	};
	uint64_t before, written = 0;

	write_mailbox(fx, "mymailbox.mail", 10);
	jobflags_hub(fx);
	mbox = open_inbox(fx);
	st = mailbox_state(mbox);
	assert_true(mailbox_flags_in_job(mbox));
	before = st->highest_modseq;
	assert_int_equal(mailbox_flags_start(mbox, ch, 0, &written, on_done, &d, &op, &err, "t"),
			 0);
	assert_int_equal(flags_prepared, 0);
	assert_int_equal(mailbox_flags_start(mbox, ch, 2, &written, on_done, &d, &op, &err, "t"),
			 1);
	assert_non_null(op);
	assert_true(mailbox_is_busy(mbox));
	assert_int_equal(st->mails[1].flags, 0);
	(void)mailbox_wait_idle(mbox, on_idle, &w);
	/* FETCH's \Seen meanwhile: in memory at once, written after;
	   and two changes of message 4, one after the other */
	assert_int_equal(mailbox_set_flags(mbox, NULL, 4, MAIL_SEEN, 0, &err, "t"), 0);
	assert_int_equal(st->mails[4].flags, MAIL_SEEN);
	assert_int_equal(
		mailbox_set_flags(mbox, NULL, 3, MAIL_FLAGGED | MAIL_ANSWERED, 0, &err, "t"), 0);
	assert_int_equal(mailbox_set_flags(mbox, NULL, 3, MAIL_FLAGGED, 0, &err, "t"), 0);
	run_until(fx, &d.done);
	assert_int_equal(d.ret, 0);
	assert_int_equal(order[0], 0);
	assert_int_equal(st->mails[1].flags, MAIL_SEEN);
	assert_int_equal(st->mails[2].flags, MAIL_SEEN | MAIL_FLAGGED);
	assert_int_equal(st->mails[1].modseq, st->mails[2].modseq);
	assert_true(st->mails[1].modseq > before);
	assert_int_equal(written, st->mails[1].modseq);
	/* the deferred changes went to a job of their own, no one waits:
	   one per message, by UID, each as what it set and cleared (so that
	   a store shared with others applies it to the message as it is
	   then), message 4's two made one */
	assert_int_equal(flags_prepared, 2);
	assert_int_equal(flags_last_count, 2);
	assert_int_equal(flags_last[0].uid, 4);
	assert_int_equal(flags_last[0].flags_set, MAIL_FLAGGED);
	assert_int_equal(flags_last[0].flags_clear, MAIL_ANSWERED);
	assert_int_equal(flags_last[1].uid, 5);
	assert_int_equal(flags_last[1].flags_set, MAIL_SEEN);
	assert_int_equal(flags_last[1].flags_clear, 0);
	assert_true(mailbox_is_busy(mbox));
	for (int i = 0; i < 1000 && mailbox_is_busy(mbox); i++)
		assert_int_equal(event_loop_run_once(fx->loop, 10), 0);
	assert_false(mailbox_is_busy(mbox));
	assert_true(w.called);
	assert_int_equal(n, 2);
	assert_int_equal(order[1], 1);
	/* A failed job: the flags as they were. */
	flags_fail = true;
	ch[0].flags_set = MAIL_DELETED;
	assert_int_equal(mailbox_flags_start(mbox, ch, 1, NULL, on_done, &d2, &op, &err, "t"), 1);
	run_until(fx, &d2.done);
	assert_int_equal(d2.ret, -1);
	assert_int_equal(d2.err, STORAGE_ERR_TEMP);
	assert_int_equal(st->mails[1].flags, MAIL_SEEN);
	assert_false(mailbox_is_busy(mbox));
	mailbox_unref(&mbox);
	/* On the disk: opened again from it. */
	hub_free(&fx->hub);
	fx->storage.backend = &storage_backend_flat;
	fx->hub = hub_new(&fx->storage, NULL);
	mbox = open_inbox(fx);
	st = mailbox_state(mbox);
	assert_int_equal(st->mails[1].flags, MAIL_SEEN);
	assert_int_equal(st->mails[2].flags, MAIL_SEEN | MAIL_FLAGGED);
	assert_int_equal(st->mails[4].flags, MAIL_SEEN);
	assert_int_equal(st->mails[3].flags, MAIL_FLAGGED);
	mailbox_unref(&mbox);
}

/* A conditional change (STORE UNCHANGEDSINCE) that the backend leaves
   out: done, with no modseq written to the caller; then one it makes:
   the caller gets its modseq. */
static void
test_flags_in_job_conditional(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox;
	struct mbox_state *st;
	struct mailbox_op *op;
	enum storage_error err;
	struct done_rec d = { 0 }, d2 = { 0 };
	struct storage_flag_change ch = { .uid = 1, .flags_set = MAIL_FLAGGED,
					  .conditional = true };
	uint64_t written = 99;

	write_mailbox(fx, "mymailbox.mail", 3);
	jobflags_hub(fx);
	mbox = open_inbox(fx);
	st = mailbox_state(mbox);
	assert_true(st->mails[0].modseq > 0);
	ch.unchangedsince = st->mails[0].modseq - 1;
	assert_int_equal(mailbox_flags_start(mbox, &ch, 1, &written, on_done, &d, &op, &err, "t"),
			 1);
	run_until(fx, &d.done);
	assert_int_equal(d.ret, 0);
	assert_int_equal(written, 0);
	assert_int_equal(st->mails[0].flags, 0);
	ch.unchangedsince = st->mails[0].modseq;
	assert_int_equal(mailbox_flags_start(mbox, &ch, 1, &written, on_done, &d2, &op, &err, "t"),
			 1);
	run_until(fx, &d2.done);
	assert_int_equal(d2.ret, 0);
	assert_int_equal(st->mails[0].flags, MAIL_FLAGGED);
	assert_int_equal(written, st->mails[0].modseq);
	mailbox_unref(&mbox);
}

/* The caller goes before its flag changes are made: they are made, and
   the hub freed with a job at work drops it. */
static void
test_flags_in_job_caller_gone(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox;
	struct mailbox_op *op;
	enum storage_error err;
	struct done_rec d = { 0 };
	struct storage_flag_change ch = { .uid = 1, .flags_set = MAIL_ANSWERED };
	uint64_t written = 0;

	write_mailbox(fx, "mymailbox.mail", 3);
	jobflags_hub(fx);
	mbox = open_inbox(fx);
	assert_int_equal(
		mailbox_flags_start(mbox, &ch, 1, &written, on_done, &d, &op, &err, "t"), 1);
	mailbox_op_detach(&op);
	for (int i = 0; i < 1000 && mailbox_is_busy(mbox); i++)
		assert_int_equal(event_loop_run_once(fx->loop, 10), 0);
	assert_false(d.done);
	assert_int_equal(mailbox_state(mbox)->mails[0].flags, MAIL_ANSWERED);
	/* (detached: the caller's modseq is not written either) */
	assert_int_equal(written, 0);
	ch.flags_set = 0;
	ch.flags_clear = MAIL_ANSWERED;
	assert_int_equal(mailbox_flags_start(mbox, &ch, 1, NULL, on_done, &d, &op, &err, "t"), 1);
	mailbox_unref(&mbox);
	hub_free(&fx->hub);
	assert_null(flags_live);
	assert_false(d.done);
	fx->storage.backend = &storage_backend_flat;
	fx->hub = hub_new(&fx->storage, NULL);
}

/* A backend whose reads are made ahead in a job (storage.h:
   read_prepare): flat, the job keeping the records and reading them with
   flat's read() in its work (the box is only read there). */
struct read_rec {
	struct storage_box *box;
	struct mail_rec *recs;
	struct buf *bodies;
	size_t count;
	bool worked;
};
static struct storage_backend flat_jobread;
static unsigned reads_live;

static int
jr_read_prepare(struct storage_box *box, const struct mail_rec *recs, size_t count,
		struct storage_job **job_r, enum storage_error *err_r, char **error_r)
{
	struct read_rec *r = xcalloc(1, sizeof(*r));

	(void)err_r;
	(void)error_r;
	r->box = box;
	r->recs = xmalloc(count * sizeof(*recs));
	memcpy(r->recs, recs, count * sizeof(*recs));
	r->bodies = xcalloc(count, sizeof(*r->bodies));
	r->count = count;
	reads_live++;
	*job_r = (struct storage_job *)(void *)r;
	return 0;
}

static void
jr_job_work(struct storage_job *job)
{
	struct read_rec *r = (struct read_rec *)(void *)job;
	enum storage_error err;
	char *error = NULL;

	for (size_t i = 0; i < r->count; i++) {
		assert_int_equal(storage_backend_flat.read(r->box, &r->recs[i], &r->bodies[i], &err,
							   &error), 0);
	}
	r->worked = true;
}

static int
jr_read_take(struct storage_job *job, size_t i, struct buf *out, enum storage_error *err_r,
	     char **error_r)
{
	struct read_rec *r = (struct read_rec *)(void *)job;

	(void)err_r;
	(void)error_r;
	assert_true(r->worked);
	buf_append(out, r->bodies[i].data, r->bodies[i].len);
	return 0;
}

static void
jr_job_abort(struct storage_box *box, struct storage_job **job)
{
	struct read_rec *r = (struct read_rec *)(void *)*job;

	(void)box;
	for (size_t i = 0; i < r->count; i++)
		buf_free(&r->bodies[i]);
	free(r->bodies);
	free(r->recs);
	free(r);
	*job = NULL;
	reads_live--;
}

static void
on_read(void *ctx)
{
	*(bool *)ctx = true;
}

/* Messages read ahead: the same bytes as mailbox_read() once done; an
   op freed while it works frees itself after; the hub freed with one at
   work drops it. */
static void
test_reads_in_job(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox;
	struct mbox_state *st;
	struct mailbox_read_op *op;
	struct buf a = BUF_INIT, b = BUF_INIT;
	enum storage_error err;
	struct mail_rec recs[3];
	bool done = false, never = false;

	write_mailbox(fx, "mymailbox.mail", 10);
	flat_jobread = storage_backend_flat;
	flat_jobread.read_prepare = jr_read_prepare;
	flat_jobread.read_take = jr_read_take;
	flat_jobread.job_work = jr_job_work;
	flat_jobread.job_abort = jr_job_abort;
	hub_free(&fx->hub);
	fx->storage.backend = &flat_jobread;
	fx->hub = hub_new(&fx->storage, NULL);
	mbox = open_inbox(fx);
	st = mailbox_state(mbox);
	assert_true(mailbox_reads_in_job(mbox));
	assert_null(mailbox_read_start(mbox, recs, 0, on_read, &done, "t"));
	recs[0] = st->mails[7];
	recs[1] = st->mails[2];
	recs[2] = st->mails[9];
	op = mailbox_read_start(mbox, recs, 3, on_read, &done, "t");
	assert_non_null(op);
	assert_false(mailbox_is_busy(mbox));
	run_until(fx, &done);
	for (size_t i = 0; i < 3; i++) {
		buf_reset(&a);
		buf_reset(&b);
		assert_int_equal(mailbox_read_take(op, i, &a, &err), 0);
		assert_int_equal(mailbox_read(mbox, &recs[i], &b, &err, "t"), 0);
		assert_true(a.len > 0);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.data, b.data, a.len);
	}
	assert_int_equal(mailbox_read_take(op, 3, &a, &err), -1);
	mailbox_read_free(&op);
	assert_null(op);
	assert_int_equal(reads_live, 0);
	/* freed at work: it frees itself once its work returns */
	op = mailbox_read_start(mbox, recs, 3, on_read, &never, "t");
	mailbox_read_free(&op);
	for (int i = 0; i < 1000 && reads_live > 0; i++)
		assert_int_equal(event_loop_run_once(fx->loop, 10), 0);
	assert_int_equal(reads_live, 0);
	assert_false(never);
	/* the hub freed with one at work */
	op = mailbox_read_start(mbox, recs, 2, on_read, &never, "t");
	mailbox_read_free(&op);
	mailbox_unref(&mbox);
	hub_free(&fx->hub);
	assert_int_equal(reads_live, 0);
	assert_false(never);
	buf_free(&a);
	buf_free(&b);
	fx->storage.backend = &storage_backend_flat;
	fx->hub = hub_new(&fx->storage, NULL);
}

/* A backend whose COPY is made in a job (storage.h: copy_prepare): flat,
   the originals read from the source in the work, appended to the
   destination at the commit. */
struct copy_rec {
	struct storage_box *src;
	struct mail_rec *recs;
	uint64_t *keywords;
	struct buf *bodies;
	size_t count;
	bool worked;
};
static struct storage_backend flat_jobcopy;
static struct copy_rec *copy_live;

static int
jc_copy_prepare(struct storage_box *src, struct storage_box *dst,
		const struct mbox_state *dst_state, const struct mail_rec *recs,
		const uint64_t *keywords, size_t count, struct storage_job **job_r,
		enum storage_error *err_r, char **error_r)
{
	(void)dst;
	(void)dst_state;
	(void)err_r;
	(void)error_r;
	assert_null(copy_live);
	copy_live = xcalloc(1, sizeof(*copy_live));
	copy_live->src = src;
	copy_live->recs = xmalloc(count * sizeof(*recs));
	memcpy(copy_live->recs, recs, count * sizeof(*recs));
	copy_live->keywords = xmalloc(count * sizeof(*keywords));
	memcpy(copy_live->keywords, keywords, count * sizeof(*keywords));
	copy_live->bodies = xcalloc(count, sizeof(*copy_live->bodies));
	copy_live->count = count;
	*job_r = (struct storage_job *)(void *)copy_live;
	return 0;
}

static void
copy_rec_drop(void)
{
	for (size_t i = 0; i < copy_live->count; i++)
		buf_free(&copy_live->bodies[i]);
	free(copy_live->bodies);
	free(copy_live->keywords);
	free(copy_live->recs);
	free(copy_live);
	copy_live = NULL;
}

static void
jc_job_work(struct storage_job *job)
{
	enum storage_error err;
	char *error = NULL;

	if ((void *)job != (void *)copy_live) {
		flat_job_work(job);
		return;
	}
	for (size_t i = 0; i < copy_live->count; i++)
		assert_int_equal(storage_backend_flat.read(copy_live->src, &copy_live->recs[i],
							   &copy_live->bodies[i], &err, &error), 0);
	copy_live->worked = true;
}

static int
jc_copy_commit(struct storage_box *dst, struct mbox_state *dst_state, struct storage_job **job,
	       uint32_t *uids_r, enum storage_error *err_r, char **error_r)
{
	assert_ptr_equal((void *)*job, (void *)copy_live);
	assert_true(copy_live->worked);
	*job = NULL;
	for (size_t i = 0; i < copy_live->count; i++) {
		const struct mail_rec *r = &copy_live->recs[i];

		assert_int_equal(storage_backend_flat.append(dst, dst_state,
							     copy_live->bodies[i].data,
							     copy_live->bodies[i].len, r->flags,
							     copy_live->keywords[i], r->internal_date,
							     r->tz_minutes, &uids_r[i], err_r,
							     error_r), 0);
	}
	copy_rec_drop();
	return 0;
}

static void
jc_job_abort(struct storage_box *box, struct storage_job **job)
{
	if (*job != NULL && (void *)*job == (void *)copy_live) {
		copy_rec_drop();
		*job = NULL;
	} else {
		storage_backend_flat.job_abort(box, job);
	}
}

/* COPY in a job: the destination busy meanwhile, then the copies in its
   state with their UIDs given to the caller; a caller gone leaves the
   copies made. */
static void
test_copy_in_job(void **state)
{
	struct fx *fx = *state;
	struct mailbox *src, *dst;
	struct mailbox_op *op;
	enum storage_error err;
	struct done_rec d = { 0 }, d2 = { 0 };
	struct mail_rec recs[2];
	uint64_t kw[2] = { 0, 0 };
	uint32_t uids[2] = { 0, 0 };
	struct buf a = BUF_INIT, b = BUF_INIT;

	write_mailbox(fx, "mymailbox.mail", 6);
	flat_jobcopy = storage_backend_flat;
	flat_jobcopy.copy_prepare = jc_copy_prepare;
	flat_jobcopy.copy_commit = jc_copy_commit;
	flat_jobcopy.job_work = jc_job_work;
	flat_jobcopy.job_abort = jc_job_abort;
	hub_free(&fx->hub);
	fx->storage.backend = &flat_jobcopy;
	fx->hub = hub_new(&fx->storage, NULL);
	src = open_inbox(fx);
	assert_int_equal(storage_create(&fx->storage, "t", "alice", "Trash", &err), 0);
	assert_int_equal(mailbox_open(fx->hub, "t", "alice", "Trash", &dst, &err), 0);
	assert_true(mailbox_copies_in_job(dst));
	recs[0] = mailbox_state(src)->mails[4];
	recs[1] = mailbox_state(src)->mails[1];
	recs[0].flags = MAIL_FLAGGED;
	assert_int_equal(mailbox_copy_start(src, dst, recs, kw, 2, uids, on_done, &d, &op, &err,
					    "t"), 1);
	assert_true(mailbox_is_busy(dst));
	assert_false(mailbox_is_busy(src));
	assert_int_equal(mailbox_state(dst)->count, 0);
	run_until(fx, &d.done);
	assert_int_equal(d.ret, 0);
	assert_false(mailbox_is_busy(dst));
	assert_int_equal(uids[0], 1);
	assert_int_equal(uids[1], 2);
	assert_int_equal(mailbox_state(dst)->count, 2);
	assert_int_equal(mailbox_state(dst)->mails[0].flags, MAIL_FLAGGED);
	assert_int_equal(mailbox_read(src, &mailbox_state(src)->mails[4], &a, &err, "t"), 0);
	assert_int_equal(mailbox_read(dst, &mailbox_state(dst)->mails[0], &b, &err, "t"), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	/* a second copy while one works: that one is finished at once (a
	   caller that cannot wait; copies are short), then this one starts */
	assert_int_equal(mailbox_copy_start(src, dst, recs, kw, 1, uids, on_done, &d2, &op, &err,
					    "t"), 1);
	assert_int_equal(mailbox_copy_start(src, dst, recs, kw, 1, uids, on_done, &d2, &op, &err,
					    "t"), 1);
	assert_true(d2.done);
	assert_int_equal(mailbox_state(dst)->count, 3);
	/* the caller goes: the copy is made all the same */
	mailbox_op_detach(&op);
	for (int i = 0; i < 1000 && mailbox_is_busy(dst); i++)
		assert_int_equal(event_loop_run_once(fx->loop, 10), 0);
	assert_int_equal(mailbox_state(dst)->count, 4);
	buf_free(&a);
	buf_free(&b);
	mailbox_unref(&dst);
	mailbox_unref(&src);
	hub_free(&fx->hub);
	assert_null(copy_live);
	fx->storage.backend = &storage_backend_flat;
	fx->hub = hub_new(&fx->storage, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_expunge_in_job_busy_then_waiters, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expunge_caller_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hub_freed_with_job_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_open_in_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_open_hub_freed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_first_open_in_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_append_in_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_append_caller_gone_and_hub_freed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sync_in_job_tickets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_in_job_hub_freed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_takes_recent_for_read_write_sessions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_flags_in_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags_in_job_conditional, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags_in_job_caller_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads_in_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_in_job, setup, teardown),
	};

	unsetenv("IMAPSERVER_TEST_JOB_HOLD");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
