/* Tests of file watching: inotify on files and folders, files replaced by
   rename(2), and the stat() poll fallback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
	char dir[64];
	struct event_loop *loop;
	int hits;
};

static void
hit(void *ctx)
{
	(*(int *)ctx)++;
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/watch.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->loop = event_loop_new();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	event_loop_free(&f->loop);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
append_line(const char *path, const char *line)
{
	FILE *fp = fopen(path, "a");
	assert_non_null(fp);
	fputs(line, fp);
	assert_int_equal(fclose(fp), 0);
}

/* Runs the loop until *hits reaches want or timeout_ms passes. */
static void
run_until(struct fixture *f, int want, int64_t timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;

	while (f->hits < want && mono_ms() < end)
		assert_int_equal(event_loop_run_once(f->loop, 10), 0);
}

static void
test_file_change_and_replacement_are_seen(void **state)
{
	struct fixture *f = *state;
	struct watch *w = watch_new(f->loop);
	char path[128], tmp[128], other[128];

	snprintf(path, sizeof(path), "%s/mymailbox.mail", f->dir);
	snprintf(tmp, sizeof(tmp), "%s/mymailbox.mail.tmp", f->dir);
	snprintf(other, sizeof(other), "%s/unrelated", f->dir);
	append_line(path, "a\n");
	struct watch_entry *e = watch_add(w, path, hit, &f->hits);
	assert_true(watch_entry_is_inotify(e));
	/* Another file in the same folder is not our business. */
	append_line(other, "x\n");
	run_until(f, 1, 100);
	assert_int_equal(f->hits, 0);
	append_line(path, "b\n");
	run_until(f, 1, 2000);
	assert_true(f->hits >= 1);
	/* Replaced by rename, as an expunge does: still followed. */
	f->hits = 0;
	append_line(tmp, "c\n");
	assert_int_equal(rename(tmp, path), 0);
	run_until(f, 1, 2000);
	assert_true(f->hits >= 1);
	f->hits = 0;
	append_line(path, "d\n");
	run_until(f, 1, 2000);
	assert_true(f->hits >= 1);
	watch_remove(&e);
	assert_null(e);
	f->hits = 0;
	append_line(path, "e\n");
	run_until(f, 1, 100);
	assert_int_equal(f->hits, 0);
	watch_free(&w);
}

static void
test_folder_change_is_seen(void **state)
{
	struct fixture *f = *state;
	struct watch *w = watch_new(f->loop);
	char sub[128], file[160];

	snprintf(sub, sizeof(sub), "%s/new", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	struct watch_entry *e = watch_add(w, sub, hit, &f->hits);
	snprintf(file, sizeof(file), "%s/1234.host", sub);
	append_line(file, "mail\n");
	run_until(f, 1, 2000);
	assert_true(f->hits >= 1);
	watch_remove(&e);
	watch_free(&w);
}

static void
test_two_entries_share_a_folder(void **state)
{
	struct fixture *f = *state;
	struct watch *w = watch_new(f->loop);
	char a[128], b[128];
	int hits_b = 0;

	snprintf(a, sizeof(a), "%s/a.mail", f->dir);
	snprintf(b, sizeof(b), "%s/b.mail", f->dir);
	struct watch_entry *ea = watch_add(w, a, hit, &f->hits);
	struct watch_entry *eb = watch_add(w, b, hit, &hits_b);
	/* Removing one keeps the other working (one inotify wd per folder). */
	watch_remove(&ea);
	append_line(b, "x\n");
	int64_t end = mono_ms() + 2000;
	while (hits_b == 0 && mono_ms() < end)
		assert_int_equal(event_loop_run_once(f->loop, 10), 0);
	assert_true(hits_b >= 1);
	assert_int_equal(f->hits, 0);
	watch_remove(&eb);
	watch_free(&w);
}

static void
test_poll_fallback_sees_changes(void **state)
{
	struct fixture *f = *state;
	struct watch *w = watch_new_polling(f->loop);
	char path[128];

	snprintf(path, sizeof(path), "%s/polled.mail", f->dir);
	struct watch_entry *e = watch_add(w, path, hit, &f->hits);
	assert_false(watch_entry_is_inotify(e));
	/* Created after the watch began: a change too. */
	append_line(path, "a\n");
	run_until(f, 1, 3 * WATCH_POLL_MS);
	assert_int_equal(f->hits, 1);
	run_until(f, 2, 2 * WATCH_POLL_MS);
	/* Nothing changed: no further call. */
	assert_int_equal(f->hits, 1);
	watch_remove(&e);
	watch_free(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_change_and_replacement_are_seen, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_folder_change_is_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_entries_share_a_folder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_fallback_sees_changes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
