/* Tests of the disk waits kept out of the loop on the file backends:
   a Maildir APPEND's commit (the folder's fsync and the UID's record)
   and a flat APPEND's write and fsync made in a worker while the
   mailbox is busy, their failures, and their undoing when the server
   stops; a flat EXPUNGE's renames and a Maildir EXPUNGE's unlinks and
   folder fsyncs made by their work. The worker is held at its point
   (job.h, job_test_hold_named()) so that each step is seen. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backends/flat/flat.h"
#include "backends/maildir/maildir.h"
#include "buf.h"
#include "event.h"
#include "fileio.h"
#include "job.h"
#include "mailbox.h"
#include "seqset.h"
#include "tmp_tree.h"
#include "hub_jobs.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The hold file (IMAPSERVER_TEST_JOB_HOLD), set before the first queue
   is made. */
static char hold_path[64];

static struct fx *
fx_new(const struct storage_backend *backend, const char *const *subs, size_t nsubs)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct storage_settings set = { 0 };
	char *error = NULL;

	strcpy(fx->root, "/tmp/test_disk_waits.XXXXXX");
	assert_non_null(mkdtemp(fx->root));
	set.root = fx->root;
	fx->storage.backend = backend;
	assert_int_equal(fx->storage.backend->init(&set, &fx->storage.st, &error), 0);
	for (size_t i = 0; i < nsubs; i++) {
		char *path = xasprintf("%s/%s", fx->root, subs[i]);

		assert_int_equal(mkdir(path, 0700), 0);
		free(path);
	}
	fx->loop = event_loop_new();
	fx->queue = job_queue_new(fx->loop, 2, &error);
	assert_non_null(fx->queue);
	job_queue_set_default(fx->queue);
	fx->hub = hub_new(&fx->storage, NULL);
	return fx;
}

static int
setup_maildir(void **state)
{
	const char *subs[] = { "alice", "alice/Maildir", "alice/Maildir/cur",
			       "alice/Maildir/new", "alice/Maildir/tmp" };

	*state = fx_new(&storage_backend_maildir, subs, N_ELEMENTS(subs));
	return 0;
}

static int
setup_flat(void **state)
{
	const char *subs[] = { "alice" };

	*state = fx_new(&storage_backend_flat, subs, N_ELEMENTS(subs));
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	char *held = xasprintf("%s.held", hold_path);

	fileio_test_full_disk(0);
	fileio_test_fail_nth(0, 0);
	(void)unlink(hold_path);
	(void)unlink(held);
	free(held);
	hub_free(&fx->hub);
	job_queue_free(&fx->queue);
	event_loop_free(&fx->loop);
	fx->storage.backend->deinit(&fx->storage.st);
	tmp_tree_remove(fx->root);
	free(fx);
	return 0;
}

/* Workers of kind name wait from now until hold_release(). */
static void
hold(const char *name)
{
	FILE *f = fopen(hold_path, "w");

	assert_non_null(f);
	fprintf(f, "%s\n", name);
	assert_int_equal(fclose(f), 0);
}

/* Runs the loop until a worker waits at the hold (bounded: 10 s). */
static void
run_until_held(struct fx *fx)
{
	char *held = xasprintf("%s.held", hold_path);
	struct stat st;
	int i;

	for (i = 0; i < 1000 && stat(held, &st) < 0; i++)
		assert_int_equal(event_loop_run_once(fx->loop, 10), 0);
	assert_true(i < 1000);
	(void)unlink(held);
	free(held);
}

static void
hold_release(void)
{
	assert_int_equal(unlink(hold_path), 0);
}



/* The INBOX as a new process finds it: its count and UIDs. */
static void
assert_reopened(struct fx *fx, size_t count, const uint32_t *uids)
{
	struct mailbox *mbox;
	enum storage_error err;

	hub_free(&fx->hub);
	fx->hub = hub_new(&fx->storage, NULL);
	assert_int_equal(mailbox_open(fx->hub, "t", "alice", "INBOX", &mbox, &err), 0);
	assert_int_equal(mailbox_state(mbox)->count, count);
	for (size_t i = 0; i < count; i++)
		assert_int_equal(mailbox_state(mbox)->mails[i].uid, uids[i]);
	mailbox_unref(&mbox);
}




/* alice's INBOX open, with n messages appended (UIDs 1 to n). */
static struct mailbox *
open_with(struct fx *fx, unsigned n)
{
	struct mailbox *mbox;
	enum storage_error err;
	uint32_t uid;

	assert_int_equal(mailbox_open(fx->hub, "t", "alice", "INBOX", &mbox, &err), 0);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(mailbox_append(mbox, MSG, strlen(MSG), 0, 0, 1700000000, 0, &uid,
						&err, "t"),
				 0);
		assert_int_equal(uid, i + 1);
	}
	return mbox;
}

static struct mailbox_append_op *
append_start(struct fx *fx, struct mailbox *mbox, uint8_t flags, struct append_rec *a)
{
	struct mailbox_append_op *op = NULL;
	enum storage_error err;
	uint32_t uid = 0;

	(void)fx;
	assert_int_equal(mailbox_append_start(mbox, MSG, strlen(MSG), flags, 0, 1700000000, 60,
					      on_append, a, &op, &uid, &err, "t"),
			 1);
	assert_non_null(op);
	return op;
}

/* The commit's syncs run in a worker: the message is in its folder,
   the mailbox busy and not yet showing it; a second append waits for
   the mailbox, then takes the next UID; both are durable. */
static void
test_maildir_append_settles_in_worker(void **state)
{
	struct fx *fx = *state;
	struct append_rec a = { 0 }, b = { 0 };
	struct mailbox *mbox;
	unsigned long syncs;
	const uint32_t uids[] = { 1, 2 };

	mbox = open_with(fx, 0);
	hold("append-settle");
	(void)append_start(fx, mbox, 0, &a);
	run_until_held(fx);
	syncs = fsync_dir_count();
	assert_true(mailbox_is_busy(mbox));
	assert_false(a.done);
	assert_int_equal(mailbox_state(mbox)->count, 0);
	assert_int_equal(maildir_files(fx, "tmp"), 0);
	assert_int_equal(maildir_files(fx, "new"), 1);
	/* A second append writes its message meanwhile, and waits. */
	(void)append_start(fx, mbox, MAIL_SEEN, &b);
	for (int i = 0; i < 20; i++)
		assert_int_equal(event_loop_run_once(fx->loop, 10), 0);
	assert_false(b.done);
	hold_release();
	run_until(fx, &a.done);
	run_until(fx, &b.done);
	assert_int_equal(a.ret, 0);
	assert_int_equal(a.uid, 1);
	assert_int_equal(b.ret, 0);
	assert_int_equal(b.uid, 2);
	/* each commit synced its folder, in the worker */
	assert_true(fsync_dir_count() >= syncs + 2);
	assert_false(mailbox_is_busy(mbox));
	assert_int_equal(mailbox_state(mbox)->count, 2);
	assert_int_equal(mailbox_state(mbox)->mails[1].flags, MAIL_SEEN);
	assert_int_equal(maildir_files(fx, "new"), 1);
	assert_int_equal(maildir_files(fx, "cur"), 1);
	mailbox_unref(&mbox);
	assert_reopened(fx, 2, uids);
}

/* The worker cannot append the UID's record: the commit writes the
   whole uidlist instead, and the UID told is the one a restart finds. */
static void
test_maildir_append_record_failed_rewritten(void **state)
{
	struct fx *fx = *state;
	struct append_rec a = { 0 };
	struct mailbox *mbox;
	const uint32_t uids[] = { 1, 2 };

	mbox = open_with(fx, 1);
	hold("append-settle");
	(void)append_start(fx, mbox, 0, &a);
	run_until_held(fx);
	fileio_test_fail_nth(1, EIO);
	hold_release();
	run_until(fx, &a.done);
	assert_false(fileio_test_nth_pending());
	assert_int_equal(a.ret, 0);
	assert_int_equal(a.uid, 2);
	assert_int_equal(mailbox_state(mbox)->count, 2);
	mailbox_unref(&mbox);
	assert_reopened(fx, 2, uids);
}

/* Neither the record nor the whole uidlist can be written (a full
   disk): the append fails, and the message is taken back out of the
   folder, so that a restart does not find it under another UID. */
static void
test_maildir_append_full_disk_taken_back(void **state)
{
	struct fx *fx = *state;
	struct append_rec a = { 0 }, b = { 0 };
	struct mailbox *mbox;

	mbox = open_with(fx, 0);
	hold("append-settle");
	(void)append_start(fx, mbox, 0, &a);
	run_until_held(fx);
	/* (the record's line fits in the file's last block: refused
	   apart) */
	fileio_test_fail_nth(1, ENOSPC);
	fileio_test_full_disk(ENOSPC);
	hold_release();
	run_until(fx, &a.done);
	fileio_test_full_disk(0);
	assert_int_equal(a.ret, -1);
	assert_int_equal(a.err, STORAGE_ERR_NO_SPACE);
	assert_int_equal(mailbox_state(mbox)->count, 0);
	assert_int_equal(maildir_files(fx, "new") + maildir_files(fx, "cur"), 0);
	assert_int_equal(maildir_files(fx, "tmp"), 0);
	/* The next append works, with a UID never told before. */
	(void)append_start(fx, mbox, 0, &b);
	run_until(fx, &b.done);
	assert_int_equal(b.ret, 0);
	assert_true(b.uid >= 1);
	mailbox_unref(&mbox);
	assert_reopened(fx, 1, (const uint32_t[]){ b.uid });
}

/* The server stops while the commit's work waits: the message, never
   acknowledged, is taken back and the lock let go. */
static void
test_maildir_append_settling_hub_freed(void **state)
{
	struct fx *fx = *state;
	struct append_rec a = { 0 };
	struct mailbox_append_op *op;
	struct mailbox *mbox;
	enum storage_error err;
	uint32_t uid = 0;

	mbox = open_with(fx, 0);
	hold("append-settle");
	op = append_start(fx, mbox, 0, &a);
	run_until_held(fx);
	mailbox_append_detach(&op);
	mailbox_unref(&mbox);
	/* the hold let go as the stop waits for the worker */
	hold_release();
	hub_free(&fx->hub);
	assert_false(a.done);
	assert_int_equal(maildir_files(fx, "new") + maildir_files(fx, "cur"), 0);
	assert_int_equal(maildir_files(fx, "tmp"), 0);
	/* Not locked: another append goes in at once (the UID the work
	   recorded for the one taken back may be skipped: never told). */
	fx->hub = hub_new(&fx->storage, NULL);
	mbox = open_with(fx, 0);
	assert_int_equal(mailbox_append(mbox, MSG, strlen(MSG), 0, 0, 1700000000, 0, &uid, &err,
					"t"),
			 0);
	mailbox_unref(&mbox);
	assert_reopened(fx, 1, (const uint32_t[]){ uid });
}

/* Size of alice's flat INBOX file. */
static off_t
flat_file_size(struct fx *fx)
{
	char *path = xasprintf("%s/alice/mymailbox.mail", fx->root);
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	free(path);
	return st.st_size;
}

/* The write and fsync at the end of the file run in a worker: the
   mailbox is busy, the state without the message until the commit;
   a second append waits, then follows; both keep their UIDs. */
static void
test_flat_append_writes_in_worker(void **state)
{
	struct fx *fx = *state;
	struct append_rec a = { 0 }, b = { 0 };
	struct mailbox *mbox;
	off_t before;
	const uint32_t uids[] = { 1, 2, 3 };

	mbox = open_with(fx, 1);
	before = flat_file_size(fx);
	hold("append-settle");
	(void)append_start(fx, mbox, 0, &a);
	run_until_held(fx);
	assert_true(mailbox_is_busy(mbox));
	assert_int_equal(mailbox_state(mbox)->count, 1);
	assert_int_equal(flat_file_size(fx), before);
	(void)append_start(fx, mbox, MAIL_FLAGGED, &b);
	for (int i = 0; i < 20; i++)
		assert_int_equal(event_loop_run_once(fx->loop, 10), 0);
	assert_false(b.done);
	hold_release();
	run_until(fx, &a.done);
	run_until(fx, &b.done);
	assert_int_equal(a.ret, 0);
	assert_int_equal(a.uid, 2);
	assert_int_equal(b.ret, 0);
	assert_int_equal(b.uid, 3);
	assert_true(flat_file_size(fx) > before);
	assert_int_equal(mailbox_state(mbox)->count, 3);
	assert_int_equal(mailbox_state(mbox)->mails[2].flags, MAIL_FLAGGED);
	mailbox_unref(&mbox);
	assert_reopened(fx, 3, uids);
}

/* The worker's write fails (a full disk): the file is cut back to what
   it was, the append answers NO, and the mailbox goes on. */
static void
test_flat_append_write_failed_cut_back(void **state)
{
	struct fx *fx = *state;
	struct append_rec a = { 0 }, b = { 0 };
	struct mailbox *mbox;
	off_t before;
	const uint32_t uids[] = { 1, 2 };

	mbox = open_with(fx, 1);
	before = flat_file_size(fx);
	hold("append-settle");
	(void)append_start(fx, mbox, 0, &a);
	run_until_held(fx);
	fileio_test_fail_nth(1, ENOSPC);
	hold_release();
	run_until(fx, &a.done);
	assert_false(fileio_test_nth_pending());
	assert_int_equal(a.ret, -1);
	assert_int_equal(a.err, STORAGE_ERR_NO_SPACE);
	assert_int_equal(flat_file_size(fx), before);
	assert_int_equal(mailbox_state(mbox)->count, 1);
	assert_false(mailbox_is_busy(mbox));
	(void)append_start(fx, mbox, 0, &b);
	run_until(fx, &b.done);
	assert_int_equal(b.ret, 0);
	assert_int_equal(b.uid, 2);
	mailbox_unref(&mbox);
	assert_reopened(fx, 2, uids);
}

/* The server stops while the write waits: the append, never
   acknowledged, leaves nothing in the file, and the lock is let go. */
static void
test_flat_append_settling_hub_freed(void **state)
{
	struct fx *fx = *state;
	struct append_rec a = { 0 };
	struct mailbox_append_op *op;
	struct mailbox *mbox;
	enum storage_error err;
	uint32_t uid = 0;
	off_t before;
	const uint32_t uids[] = { 1, 2 };

	mbox = open_with(fx, 1);
	before = flat_file_size(fx);
	hold("append-settle");
	op = append_start(fx, mbox, 0, &a);
	run_until_held(fx);
	mailbox_append_detach(&op);
	mailbox_unref(&mbox);
	hold_release();
	hub_free(&fx->hub);
	assert_false(a.done);
	assert_int_equal(flat_file_size(fx), before);
	fx->hub = hub_new(&fx->storage, NULL);
	assert_int_equal(mailbox_open(fx->hub, "t", "alice", "INBOX", &mbox, &err), 0);
	assert_int_equal(mailbox_state(mbox)->count, 1);
	assert_int_equal(mailbox_append(mbox, MSG, strlen(MSG), 0, 0, 1700000000, 0, &uid, &err,
					"t"),
			 0);
	assert_int_equal(uid, 2);
	mailbox_unref(&mbox);
	assert_reopened(fx, 2, uids);
}

struct done_rec {
	bool done;
	int ret;
	enum storage_error err;
};

static void
on_done(void *ctx, int ret, enum storage_error err)
{
	struct done_rec *d = ctx;

	d->done = true;
	d->ret = ret;
	d->err = err;
}

static struct mailbox_op *
expunge_start(struct mailbox *mbox, uint32_t first, uint32_t last, struct done_rec *d)
{
	struct seqset uids = { 0 };
	struct mailbox_op *op = NULL;
	enum storage_error err;

	seqset_add_range(&uids, first, last);
	assert_int_equal(mailbox_expunge_start(mbox, &uids, false, on_done, d, &op, &err, "t"), 1);
	seqset_free(&uids);
	return op;
}

/* The work makes the renames: held after them, the file on disk is
   already the new one while the mailbox is busy and its state (and the
   reads, through the old file) still has every message. */
static void
test_flat_expunge_switches_in_worker(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox = open_with(fx, 5);
	struct done_rec d = { 0 };
	off_t before = flat_file_size(fx);
	const uint32_t uids[] = { 1, 4, 5 };

	hold("expunge-switched");
	(void)expunge_start(mbox, 2, 3, &d);
	run_until_held(fx);
	assert_true(mailbox_is_busy(mbox));
	assert_false(d.done);
	assert_int_equal(mailbox_state(mbox)->count, 5);
	assert_true(flat_file_size(fx) < before);
	hold_release();
	run_until(fx, &d.done);
	assert_int_equal(d.ret, 0);
	assert_int_equal(mailbox_state(mbox)->count, 3);
	assert_int_equal(mailbox_state(mbox)->mails[1].uid, 4);
	mailbox_unref(&mbox);
	assert_reopened(fx, 3, uids);
}

/* The state changed while the work switched (a \Recent taken, whose
   first UID the index keeps): the commit writes the index again, so a
   restart keeps what was taken. */
static void
test_flat_expunge_state_changed_meanwhile(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox = open_with(fx, 5);
	struct done_rec d = { 0 };
	enum storage_error err;
	const uint32_t uids[] = { 1, 3, 4, 5 };

	assert_true(mailbox_state(mbox)->first_recent_uid < 5);
	hold("expunge-switched");
	(void)expunge_start(mbox, 2, 2, &d);
	run_until_held(fx);
	mailbox_state(mbox)->first_recent_uid = 5;
	hold_release();
	run_until(fx, &d.done);
	assert_int_equal(d.ret, 0);
	mailbox_unref(&mbox);
	assert_reopened(fx, 4, uids);
	assert_int_equal(mailbox_open(fx->hub, "t", "alice", "INBOX", &mbox, &err), 0);
	assert_int_equal(mailbox_state(mbox)->first_recent_uid, 5);
	mailbox_unref(&mbox);
}

/* The server stops after the work switched: the expunge stands (as
   after a crash then), whole, and nothing is left behind. */
static void
test_flat_expunge_switched_hub_freed(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox = open_with(fx, 5);
	struct done_rec d = { 0 };
	struct mailbox_op *op;
	struct stat st;
	char *tmp = xasprintf("%s/alice/mymailbox.mail.tmp", fx->root);
	const uint32_t uids[] = { 1, 5 };

	hold("expunge-switched");
	op = expunge_start(mbox, 2, 4, &d);
	run_until_held(fx);
	mailbox_op_detach(&op);
	mailbox_unref(&mbox);
	hold_release();
	hub_free(&fx->hub);
	assert_false(d.done);
	assert_int_equal(stat(tmp, &st), -1);
	free(tmp);
	fx->hub = hub_new(&fx->storage, NULL);
	assert_reopened(fx, 2, uids);
}

/* The unlinks and the folder's fsync run in the work: held after them,
   the files are gone while the state still has the messages; a read of
   one fails as not found, and the hub says it is being expunged. */
static void
test_maildir_expunge_in_worker(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox = open_with(fx, 5);
	struct done_rec d = { 0 };
	struct buf msg = BUF_INIT;
	enum storage_error err;
	struct mail_rec rec;
	const uint32_t uids[] = { 1, 4, 5 };

	assert_int_equal(maildir_files(fx, "new") + maildir_files(fx, "cur"), 5);
	hold("expunge-unlinked");
	(void)expunge_start(mbox, 2, 3, &d);
	run_until_held(fx);
	assert_true(mailbox_is_busy(mbox));
	assert_int_equal(maildir_files(fx, "new") + maildir_files(fx, "cur"), 3);
	assert_int_equal(mailbox_state(mbox)->count, 5);
	rec = mailbox_state(mbox)->mails[1];
	assert_int_equal(mailbox_read(mbox, &rec, &msg, &err, "t"), -1);
	assert_int_equal(err, STORAGE_ERR_NOT_FOUND);
	assert_true(mailbox_expunging(mbox, 2));
	assert_false(mailbox_expunging(mbox, 4));
	rec = mailbox_state(mbox)->mails[3];
	buf_reset(&msg);
	assert_int_equal(mailbox_read(mbox, &rec, &msg, &err, "t"), 0);
	assert_true(msg.len > 0);
	buf_free(&msg);
	hold_release();
	run_until(fx, &d.done);
	assert_int_equal(d.ret, 0);
	assert_false(mailbox_expunging(mbox, 2));
	assert_int_equal(mailbox_state(mbox)->count, 3);
	mailbox_unref(&mbox);
	assert_reopened(fx, 3, uids);
}

/* The server stops after the work unlinked: the expunge stands, and the
   lock is let go (the next expunge goes through at once). */
static void
test_maildir_expunge_hub_freed(void **state)
{
	struct fx *fx = *state;
	struct mailbox *mbox = open_with(fx, 5);
	struct done_rec d = { 0 }, d2 = { 0 };
	struct mailbox_op *op;
	const uint32_t uids[] = { 1, 5 };

	hold("expunge-unlinked");
	op = expunge_start(mbox, 2, 3, &d);
	run_until_held(fx);
	mailbox_op_detach(&op);
	mailbox_unref(&mbox);
	hold_release();
	hub_free(&fx->hub);
	assert_false(d.done);
	fx->hub = hub_new(&fx->storage, NULL);
	assert_reopened(fx, 3, (const uint32_t[]){ 1, 4, 5 });
	assert_int_equal(mailbox_open(fx->hub, "t", "alice", "INBOX", &mbox, &(enum storage_error){ 0 }), 0);
	(void)expunge_start(mbox, 4, 4, &d2);
	run_until(fx, &d2.done);
	assert_int_equal(d2.ret, 0);
	mailbox_unref(&mbox);
	assert_reopened(fx, 2, uids);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_maildir_append_settles_in_worker,
						setup_maildir, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_append_record_failed_rewritten,
						setup_maildir, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_append_full_disk_taken_back,
						setup_maildir, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_append_settling_hub_freed,
						setup_maildir, teardown),
		cmocka_unit_test_setup_teardown(test_flat_append_writes_in_worker, setup_flat,
						teardown),
		cmocka_unit_test_setup_teardown(test_flat_append_write_failed_cut_back, setup_flat,
						teardown),
		cmocka_unit_test_setup_teardown(test_flat_append_settling_hub_freed, setup_flat,
						teardown),
		cmocka_unit_test_setup_teardown(test_flat_expunge_switches_in_worker, setup_flat,
						teardown),
		cmocka_unit_test_setup_teardown(test_flat_expunge_state_changed_meanwhile,
						setup_flat, teardown),
		cmocka_unit_test_setup_teardown(test_flat_expunge_switched_hub_freed, setup_flat,
						teardown),
		cmocka_unit_test_setup_teardown(test_maildir_expunge_in_worker, setup_maildir,
						teardown),
		cmocka_unit_test_setup_teardown(test_maildir_expunge_hub_freed, setup_maildir,
						teardown),
	};

	snprintf(hold_path, sizeof(hold_path), "/tmp/test_disk_waits.hold.%ld", (long)getpid());
	setenv("IMAPSERVER_TEST_JOB_HOLD", hold_path, 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
