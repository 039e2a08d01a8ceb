/* test_maildir_first_open.c: the first open of a big Maildir++ folder in
   a job (maildir_job.c) when the folder was written just before: the job
   waits for the young stamps and files to age and reads the folder again
   itself, so that the loop's next sync() has nothing to read (no stamp
   due for a recheck, no file left to measure). Runs in its own mkdtemp()
   root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"
#include "backends/maildir/maildir.h"
#include "backends/maildir/maildir_private.h"
#include "tmp_tree.h"

static const struct storage_backend *const B = &storage_backend_maildir;

/* Enough names for the first open to be a job (cur/ over 64 KB). */
#define N_FILES 2500

static void
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void
test_young_folder_is_read_again_in_the_job(void **state)
{
	char root[64] = "/tmp/test_md_first.XXXXXX";
	struct storage_settings set;
	struct storage *st = NULL;
	struct storage_job *job = NULL;
	struct storage_box *box = NULL;
	struct mbox_state s;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL, *dir;

	assert_non_null(mkdtemp(root));
	set.root = root;
	assert_int_equal(B->init(&set, &st, &error), 0);
	dir = xasprintf("%s/bob", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	free(dir);
	dir = xasprintf("%s/bob/Maildir", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	for (size_t i = 0; i < 3; i++) {
		static const char *const sub[] = { "cur", "new", "tmp" };
		char *p = xasprintf("%s/%s", dir, sub[i]);

		assert_int_equal(mkdir(p, 0700), 0);
		free(p);
	}
	/* written now: the folder's stamps are too young to be trusted */
	for (size_t i = 0; i < N_FILES; i++) {
		char *p = xasprintf("%s/cur/%zu.M%zuP1.first-open-test:2,", dir, 1600000000 + i, i);

		write_file(p, "Subject: hello\n\nbody\n");
		free(p);
	}
	assert_int_equal(B->open_prepare(st, "bob", "INBOX", &job, &err, &error), 0);
	assert_non_null(job);
	B->job_work(job);
	mbox_state_init(&s);
	assert_int_equal(B->open_commit(st, &job, &s, &box, &err, &error), 1);
	assert_null(job);
	assert_int_equal(s.count, N_FILES);
	/* nothing left for the loop to read again */
	assert_int_equal(box->recheck_at, 0);
	assert_false(box->has_young);
	assert_true(md_unchanged(box));
	B->close(&box);
	mbox_state_deinit(&s);
	B->deinit(&st);
	free(dir);
	tmp_tree_remove(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_young_folder_is_read_again_in_the_job),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
