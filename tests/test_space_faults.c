/* test_space_faults.c: a full disk (ENOSPC, and EDQUOT for a user over
   the file system's quota) under every storage backend of the registry,
   through the fault point of the file layer (fileio_test_full_disk():
   every write that needs a new block fails, as on a real full disk).

   What a user relies on: on a full disk the mailbox still opens (also
   from nothing, as after a restart) and every message reads as stored;
   a flag change and EXPUNGE work (EXPUNGE is how a user frees space:
   flat moves the kept messages down in place, Maildir removes files);
   APPEND fails with STORAGE_ERR_NO_SPACE and stores nothing; once space
   returns everything is written and nothing was lost or duplicated.
   Then each write of APPEND, STORE and EXPUNGE in turn fails once
   (fileio_test_fail_nth()): the operation succeeds or fails for space,
   and the mailbox then holds exactly what its answer said. And
   for flat's in-place EXPUNGE, a crash after any number of its chunks
   (a child that _exit()s there) is finished by the next open with every
   kept message whole, once, under its UID. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "fileio.h"
#include "registry.h"
#include "storage.h"
#include "tmp_tree.h"
#include "backends/flat/flat_private.h"

#define N_MSGS 40
/* Big enough that moving the kept messages takes several chunks of the
   in-place expunge (64 KB each). */
#define BODY_LINES 300

static const struct storage_backend *B;
static int full_err;

struct fx {
	char root[64];
	struct storage *st;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct storage_settings set;
	char *error = NULL;

	strcpy(fx->root, "/tmp/test_space.XXXXXX");
	assert_non_null(mkdtemp(fx->root));
	memset(&set, 0, sizeof(set));
	set.root = fx->root;
	if (B->init(&set, &fx->st, &error) < 0)
		fail_msg("%s init: %s", B->name, error);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	fileio_test_full_disk(0);
	B->deinit(&fx->st);
	tmp_tree_remove(fx->root);
	free(fx);
	return 0;
}

/* Message n: its own Subject and a body that names it on every line. */
static void
message(unsigned n, struct buf *out)
{
	buf_free(out);
	buf_printf(out, "From: a@example.org\r\nSubject: message %u\r\n\r\n", n);
	for (unsigned i = 0; i < BODY_LINES; i++)
		buf_printf(out, "line %u of message %u, to make it long enough\r\n", i, n);
}

static void
open_box(struct fx *fx, struct mbox_state *state, struct storage_box **box)
{
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	mbox_state_init(state);
	if (B->open(fx->st, "bob", "INBOX", state, box, &err, &error) < 0)
		fail_msg("%s: open on a %s disk: %s", B->name, full_err != 0 ? "full" : "free",
			 error);
}

static void
close_box(struct mbox_state *state, struct storage_box **box)
{
	B->close(box);
	mbox_state_deinit(state);
}

static void
fill_n(struct fx *fx, unsigned count)
{
	struct mbox_state state;
	struct storage_box *box;
	struct buf m = BUF_INIT;

	open_box(fx, &state, &box);
	for (unsigned n = 1; n <= count; n++) {
		enum storage_error err = STORAGE_ERR_NONE;
		char *error = NULL;
		uint32_t uid;

		message(n, &m);
		if (B->append(box, &state, m.data, m.len, 0, 0, 0, 0, &uid, &err, &error) < 0)
			fail_msg("%s: append %u: %s", B->name, n, error);
		assert_int_equal(uid, n);
	}
	buf_free(&m);
	close_box(&state, &box);
}

static void
fill(struct fx *fx)
{
	fill_n(fx, N_MSGS);
}

/* The mailbox holds exactly the messages whose UIDs are in want (message
   n has UID n), each whole. */
static void
check_messages(struct fx *fx, const uint32_t *want, size_t nwant)
{
	struct mbox_state state;
	struct storage_box *box;
	struct buf got = BUF_INIT, m = BUF_INIT;

	open_box(fx, &state, &box);
	assert_int_equal(state.count, nwant);
	for (size_t i = 0; i < nwant; i++) {
		enum storage_error err = STORAGE_ERR_NONE;
		char *error = NULL;

		assert_int_equal(state.mails[i].uid, want[i]);
		buf_free(&got);
		if (B->read(box, &state.mails[i], &got, &err, &error) < 0)
			fail_msg("%s: read uid %u: %s", B->name, want[i], error);
		message(want[i], &m);
		if (got.len != m.len || memcmp(got.data, m.data, m.len) != 0)
			fail_msg("%s: uid %u reads as %zu octets, not as stored", B->name, want[i],
				 got.len);
	}
	buf_free(&got);
	buf_free(&m);
	close_box(&state, &box);
}

static void
test_full_disk_reads_and_expunges(void **state_)
{
	struct fx *fx = *state_;
	struct mbox_state state;
	struct storage_box *box;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;
	struct buf m = BUF_INIT;
	uint32_t all[N_MSGS], kept[N_MSGS], uid;
	const uint32_t gone[] = { 1, 2, 7, 20, 33 };
	size_t nkept = 0, g = 0;

	for (uint32_t i = 0; i < N_MSGS; i++)
		all[i] = i + 1;
	for (uint32_t u = 1; u <= N_MSGS; u++) {
		if (g < N_ELEMENTS(gone) && gone[g] == u)
			g++;
		else
			kept[nkept++] = u;
	}
	fill(fx);
	fileio_test_full_disk(full_err);

	/* Reading: an open from nothing (a restart) and every message. */
	check_messages(fx, all, N_MSGS);

	open_box(fx, &state, &box);
	/* APPEND: refused for space, nothing stored. */
	message(99, &m);
	assert_int_equal(B->append(box, &state, m.data, m.len, 0, 0, 0, 0, &uid, &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_NO_SPACE);
	free(error);
	error = NULL;
	assert_int_equal(state.count, N_MSGS);
	/* A flag change is stored. */
	assert_true(mbox_state_set_flags(&state, 2, MAIL_FLAGGED, 0));
	if (B->flags_changed(box, &state, 2, &err, &error) < 0)
		fail_msg("%s: flag change on a full disk: %s", B->name, error);
	/* EXPUNGE frees space. */
	state.highest_modseq++;
	if (B->expunge(box, &state, gone, N_ELEMENTS(gone), &err, &error) < 0)
		fail_msg("%s: expunge on a full disk: %s", B->name, error);
	assert_int_equal(state.count, nkept);
	close_box(&state, &box);

	/* Still full: what a restart sees. */
	check_messages(fx, kept, nkept);
	open_box(fx, &state, &box);
	assert_int_equal(state.mails[0].uid, 3);
	assert_int_equal(state.mails[0].flags & MAIL_FLAGGED, MAIL_FLAGGED);
	close_box(&state, &box);

	/* Space returns: an append works, and nothing came back. */
	fileio_test_full_disk(0);
	open_box(fx, &state, &box);
	message(N_MSGS + 1, &m);
	if (B->append(box, &state, m.data, m.len, 0, 0, 0, 0, &uid, &err, &error) < 0)
		fail_msg("%s: append once space is back: %s", B->name, error);
	assert_int_equal(uid, N_MSGS + 1);
	close_box(&state, &box);
	kept[nkept++] = N_MSGS + 1;
	check_messages(fx, kept, nkept);
	buf_free(&m);
}

enum op { OP_APPEND, OP_STORE, OP_EXPUNGE };
#define SMALL 6

/* Runs op on a mailbox of SMALL messages with the nth write failing with
   full_err. Returns false once op made fewer than n writes. The
   operation succeeds, or fails for space and changes nothing; once the
   fault is gone the mailbox holds what its answer said. */
static bool
one_write_fails(struct fx *fx, enum op op, unsigned long n)
{
	static const uint32_t gone[] = { 2, 5 };
	struct mbox_state state;
	struct storage_box *box;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;
	struct buf m = BUF_INIT;
	uint32_t want[SMALL + 1], uid;
	size_t nwant = 0;
	bool fired;
	int ret;

	tmp_tree_remove(fx->root);
	assert_int_equal(mkdir(fx->root, 0700), 0);
	fill_n(fx, SMALL);
	open_box(fx, &state, &box);
	fileio_test_fail_nth(n, full_err);
	switch (op) {
	case OP_APPEND:
		message(SMALL + 1, &m);
		ret = B->append(box, &state, m.data, m.len, 0, 0, 0, 0, &uid, &err, &error);
		break;
	case OP_STORE:
		assert_true(mbox_state_set_flags(&state, 0, MAIL_FLAGGED, 0));
		ret = B->flags_changed(box, &state, 0, &err, &error);
		break;
	default:
		state.highest_modseq++;
		ret = B->expunge(box, &state, gone, N_ELEMENTS(gone), &err, &error);
		break;
	}
	fired = !fileio_test_nth_pending();
	fileio_test_fail_nth(0, 0);
	if (ret < 0 && err != STORAGE_ERR_NO_SPACE)
		fail_msg("%s: op %d, write %lu failing: error of kind %d: %s", B->name, (int)op, n,
			 (int)err, error);
	free(error);
	close_box(&state, &box);
	for (uint32_t u = 1; u <= SMALL; u++) {
		if (op == OP_EXPUNGE && ret == 0 && (u == gone[0] || u == gone[1]))
			continue;
		want[nwant++] = u;
	}
	if (op == OP_APPEND && ret == 0)
		want[nwant++] = SMALL + 1;
	check_messages(fx, want, nwant);
	if (op == OP_STORE) {
		open_box(fx, &state, &box);
		assert_int_equal(state.mails[0].flags & MAIL_FLAGGED, ret == 0 ? MAIL_FLAGGED : 0);
		close_box(&state, &box);
	}
	buf_free(&m);
	return fired;
}

static void
test_each_write_failing_once(void **state_)
{
	struct fx *fx = *state_;

	for (int op = OP_APPEND; op <= OP_EXPUNGE; op++) {
		unsigned long n = 1;

		while (one_write_fails(fx, (enum op)op, n))
			assert_true(++n < 200);
		/* every write of the operation was tried */
		assert_true(n > 1);
	}
}

/* Flat only: the in-place expunge stopped after k chunks, as a crash
   would, is finished by the next open. */
static void
crash_in_place_after(struct fx *fx, unsigned k)
{
	const uint32_t gone[] = { 1, 5, 6, 30 };
	uint32_t kept[N_MSGS];
	size_t nkept = 0, g = 0;
	pid_t pid;
	int status;

	for (uint32_t u = 1; u <= N_MSGS; u++) {
		if (g < N_ELEMENTS(gone) && gone[g] == u)
			g++;
		else
			kept[nkept++] = u;
	}
	fill(fx);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct mbox_state state;
		struct storage_box *box;
		enum storage_error err = STORAGE_ERR_NONE;
		char *error = NULL;

		open_box(fx, &state, &box);
		fileio_test_full_disk(full_err);
		flat_compact_test_crash_after = k;
		state.highest_modseq++;
		(void)B->expunge(box, &state, gone, N_ELEMENTS(gone), &err, &error);
		_exit(0);       /* finished before the k-th chunk */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	/* 99: stopped there; 0: the whole move took fewer chunks (the
	   kept messages after the first gap make about 9). */
	if (k <= 7)
		assert_int_equal(WEXITSTATUS(status), 99);
	else
		assert_true(WEXITSTATUS(status) == 99 || WEXITSTATUS(status) == 0);
	fileio_test_full_disk(full_err);
	check_messages(fx, kept, nkept);
	check_messages(fx, kept, nkept);
	fileio_test_full_disk(0);
}

static void
test_in_place_expunge_survives_a_crash(void **state_)
{
	struct fx *fx = *state_;
	static const unsigned stops[] = { 1, 2, 7, 15 };

	if (strcmp(B->name, "flat") != 0)
		skip();
	for (size_t i = 0; i < N_ELEMENTS(stops); i++) {
		tmp_tree_remove(fx->root);
		assert_int_equal(mkdir(fx->root, 0700), 0);
		crash_in_place_after(fx, stops[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full_disk_reads_and_expunges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each_write_failing_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_place_expunge_survives_a_crash, setup,
						teardown),
	};
	static const int errs[] = { ENOSPC, EDQUOT };
	char *names = registry_storage_names(), *save = NULL, *name;
	int failed = 0;

	for (name = strtok_r(names, ", ", &save); name != NULL; name = strtok_r(NULL, ", ", &save)) {
		B = registry_storage_find(name);
		/* a full file system under a store of files (a database's
		   disk is the database's: NO_SPACE from its own error) */
		if (B == NULL || !B->compiled_in || B->init_db != NULL)
			continue;
		for (size_t e = 0; e < N_ELEMENTS(errs); e++) {
			char group[64];

			full_err = errs[e];
			(void)snprintf(group, sizeof(group), "%s %s", name,
				       errs[e] == ENOSPC ? "ENOSPC" : "EDQUOT");
			failed += _cmocka_run_group_tests(group, tests, N_ELEMENTS(tests), NULL,
							  NULL);
		}
	}
	free(names);
	return failed == 0 ? 0 : 1;
}
