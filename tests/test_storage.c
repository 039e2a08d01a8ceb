/* test_storage.c: the mbox_state helpers, the name rules and the core
   wrappers of core/hub/storage.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"
#include "username.h"

/* The kind of the last storage failure (the calls below want one). */
static enum storage_error st_err;

static struct mail_rec
rec_uid(uint32_t uid)
{
	struct mail_rec r;

	i_zero(&r);
	r.uid = uid;
	r.size = 100 + uid;
	return r;
}

static void
test_state_append_raises_uidnext(void **unused)
{
	struct mbox_state s;
	struct mail_rec r = rec_uid(5);

	(void)unused;
	mbox_state_init(&s);
	assert_int_equal(s.uidnext, 1);
	assert_non_null(mbox_state_append(&s, &r));
	assert_int_equal(s.uidnext, 6);
	r = rec_uid(9);
	mbox_state_append(&s, &r);
	assert_int_equal(s.uidnext, 10);
	assert_int_equal(s.count, 2);
	assert_int_equal(s.mails[1].size, 109);
	mbox_state_deinit(&s);
	assert_null(s.mails);
}

static void
test_state_find_and_remove(void **unused)
{
	struct mbox_state s;
	uint64_t gen;

	(void)unused;
	mbox_state_init(&s);
	for (uint32_t uid = 2; uid <= 200; uid += 2) {
		struct mail_rec r = rec_uid(uid);

		mbox_state_append(&s, &r);
	}
	assert_int_equal(mbox_state_find(&s, 2), 0);
	assert_int_equal(mbox_state_find(&s, 200), 99);
	assert_int_equal(mbox_state_find(&s, 100), 49);
	assert_int_equal(mbox_state_find(&s, 101), -1);
	assert_int_equal(mbox_state_find(&s, 1), -1);
	assert_int_equal(mbox_state_find(&s, 201), -1);
	gen = s.expunge_gen;
	mbox_state_remove(&s, 49);
	assert_int_equal(s.count, 99);
	assert_true(s.expunge_gen > gen);
	assert_int_equal(mbox_state_find(&s, 100), -1);
	assert_int_equal(mbox_state_find(&s, 102), 49);
	/* out of range: no change */
	mbox_state_remove(&s, 1000);
	assert_int_equal(s.count, 99);
	/* uidnext never goes back on removal */
	mbox_state_remove(&s, s.count - 1);
	assert_int_equal(s.uidnext, 201);
	mbox_state_deinit(&s);
}

static void
test_state_set_flags_bumps_modseq(void **unused)
{
	struct mbox_state s;
	struct mail_rec r = rec_uid(1);
	uint64_t m1;

	(void)unused;
	mbox_state_init(&s);
	mbox_state_append(&s, &r);
	assert_true(mbox_state_set_flags(&s, 0, MAIL_SEEN, 0));
	m1 = s.mails[0].modseq;
	assert_true(m1 > 0);
	assert_int_equal(s.highest_modseq, m1);
	/* no change, no bump */
	assert_false(mbox_state_set_flags(&s, 0, MAIL_SEEN, 0));
	assert_int_equal(s.mails[0].modseq, m1);
	assert_true(mbox_state_set_flags(&s, 0, MAIL_SEEN, 1));
	assert_true(s.mails[0].modseq > m1);
	assert_int_equal(s.mails[0].keywords, 1);
	/* unknown flag bits are dropped */
	assert_true(mbox_state_set_flags(&s, 0, 0xff, 1));
	assert_int_equal(s.mails[0].flags, MAIL_FLAGS_ALL);
	assert_false(mbox_state_set_flags(&s, 5, MAIL_SEEN, 0));
	mbox_state_deinit(&s);
}

static void
test_state_keyword_table(void **unused)
{
	struct mbox_state s;
	char name[32];

	(void)unused;
	mbox_state_init(&s);
	assert_int_equal(mbox_state_keyword(&s, "$Junk", false), -1);
	assert_int_equal(s.keyword_count, 0);
	assert_int_equal(mbox_state_keyword(&s, "$Junk", true), 0);
	assert_int_equal(mbox_state_keyword(&s, "work", true), 1);
	assert_int_equal(mbox_state_keyword(&s, "$junk", false), 0);
	assert_int_equal(mbox_state_keyword(&s, "WORK", true), 1);
	assert_int_equal(s.keyword_count, 2);
	for (int i = 2; i < MBOX_MAX_KEYWORDS; i++) {
		snprintf(name, sizeof(name), "kw%d", i);
		assert_int_equal(mbox_state_keyword(&s, name, true), i);
	}
	assert_int_equal(mbox_state_keyword(&s, "onemore", true), -1);
	assert_int_equal(s.keyword_count, MBOX_MAX_KEYWORDS);
	mbox_state_clear(&s);
	assert_int_equal(s.keyword_count, 0);
	assert_int_equal(s.count, 0);
	assert_int_equal(s.uidnext, 1);
	mbox_state_deinit(&s);
}

static void
test_name_rules(void **unused)
{
	char longname[300];

	(void)unused;
	assert_true(storage_name_is_valid("INBOX"));
	assert_true(storage_name_is_valid("a/b/c"));
	assert_true(storage_name_is_valid("Sent Items"));
	assert_true(storage_name_is_valid("a.b"));
	assert_true(storage_name_is_valid("..."));
	assert_false(storage_name_is_valid(""));
	assert_false(storage_name_is_valid(NULL));
	assert_false(storage_name_is_valid("/abs"));
	assert_false(storage_name_is_valid("a//b"));
	assert_false(storage_name_is_valid("a/"));
	assert_false(storage_name_is_valid("."));
	assert_false(storage_name_is_valid(".."));
	assert_false(storage_name_is_valid("a/../b"));
	assert_false(storage_name_is_valid("a/./b"));
	assert_false(storage_name_is_valid("a/.."));
	assert_false(storage_name_is_valid("tab\there"));
	assert_false(storage_name_is_valid("del\x7f"));
	/* The limit every backend can store (STORAGE_NAME_MAX); 255 and 256
	   octets are refused by the rule alike. */
	memset(longname, 'x', STORAGE_NAME_MAX);
	longname[STORAGE_NAME_MAX] = '\0';
	assert_true(storage_name_is_valid(longname));
	longname[STORAGE_NAME_MAX] = 'x';
	longname[STORAGE_NAME_MAX + 1] = '\0';
	assert_false(storage_name_is_valid(longname));
	memset(longname, 'x', 255);
	longname[255] = '\0';
	assert_false(storage_name_is_valid(longname));
	longname[255] = 'x';
	longname[256] = '\0';
	assert_false(storage_name_is_valid(longname));
}

static void
test_user_rules(void **unused)
{
	(void)unused;
	assert_true(username_is_valid("bob"));
	assert_true(username_is_valid("alice.smith"));
	assert_true(username_is_valid("a@example.org"));
	assert_false(username_is_valid(""));
	assert_false(username_is_valid(NULL));
	assert_false(username_is_valid(".hidden"));
	assert_false(username_is_valid(".."));
	assert_false(username_is_valid("a/b"));
	assert_false(username_is_valid("a..b"));
	assert_false(username_is_valid("new\nline"));
	assert_false(username_is_valid("0123456789012345678901234567890123456789012345678901234567890123456789"));
}

static void
test_error_codes(void **unused)
{
	(void)unused;
	assert_null(storage_error_code(STORAGE_ERR_NONE));
	assert_string_equal(storage_error_code(STORAGE_ERR_NOT_FOUND), "NONEXISTENT");
	assert_string_equal(storage_error_code(STORAGE_ERR_EXISTS), "ALREADYEXISTS");
	assert_string_equal(storage_error_code(STORAGE_ERR_BAD_NAME), "CANNOT");
	assert_string_equal(storage_error_code(STORAGE_ERR_NO_SPACE), "OVERQUOTA");
	assert_string_equal(storage_error_code(STORAGE_ERR_LIMIT), "LIMIT");
	assert_string_equal(storage_error_code(STORAGE_ERR_IN_USE), "INUSE");
	assert_string_equal(storage_error_code(STORAGE_ERR_TEMP), "UNAVAILABLE");
}

/* A fake backend for the wrappers. */
static int fake_calls;

static int
fake_create(struct storage *st, const char *user, const char *name, enum storage_error *err_r,
	    char **error_r)
{
	(void)st;
	(void)user;
	fake_calls++;
	if (strcmp(name, "fail") == 0) {
		/* forgets to set err_r and error_r */
		return -1;
	}
	if (strcmp(name, "exists") == 0) {
		*err_r = STORAGE_ERR_EXISTS;
		*error_r = strdup("exists");
		return -1;
	}
	return 0;
}

static const struct storage_backend fake_backend = {
	.name = "fake",
	.compiled_in = true,
	.create = fake_create,
};

static void
test_wrappers_check_and_fill_errors(void **unused)
{
	struct storage_ctx ctx = { &fake_backend, (struct storage *)&fake_calls };
	enum storage_error err;
	struct strlist names = { NULL, 0, 0 };

	(void)unused;
	fake_calls = 0;
	assert_int_equal(storage_create(&ctx, "s1", "bob", "ok", &err), 0);
	assert_int_equal(err, STORAGE_ERR_NONE);
	assert_int_equal(fake_calls, 1);
	assert_int_equal(storage_create(&ctx, "s1", "bob", "fail", &err), -1);
	assert_int_equal(err, STORAGE_ERR_TEMP);
	assert_int_equal(storage_create(&ctx, "s1", "bob", "exists", &err), -1);
	assert_int_equal(err, STORAGE_ERR_EXISTS);
	assert_int_equal(fake_calls, 3);
	/* bad names never reach the backend */
	assert_int_equal(storage_create(&ctx, "s1", "../etc", "ok", &err), -1);
	assert_int_equal(err, STORAGE_ERR_BAD_NAME);
	assert_int_equal(storage_create(&ctx, "s1", "bob", "a/../../x", &err), -1);
	assert_int_equal(err, STORAGE_ERR_BAD_NAME);
	assert_int_equal(fake_calls, 3);
	/* missing operations */
	assert_int_equal(storage_list(&ctx, "s1", "bob", &names, &err), -1);
	assert_int_equal(err, STORAGE_ERR_TEMP);
	assert_int_equal(storage_delete(&ctx, "s1", "bob", "x", &err), -1);
	assert_int_equal(storage_rename(&ctx, "s1", "bob", "x", "y", &err), -1);
	assert_int_equal(storage_subscriptions_read(&ctx, "s1", "bob", &names, &st_err), -1);
	assert_int_equal(storage_subscriptions_write(&ctx, "s1", "bob", &names, &st_err), -1);
	assert_int_equal(storage_create(NULL, "s1", "bob", "ok", &err), -1);
	assert_int_equal(err, STORAGE_ERR_TEMP);
}

static void
test_root_prepare_creates_missing_parents(void **state)
{
	char dir[] = "/tmp/rootprep.XXXXXX", path[128], file[128], cmd[160];
	struct storage_settings set = { 0 };
	struct stat st;
	char *root = NULL, *error = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/var/mail/", dir);
	set.root = path;
	assert_int_equal(storage_root_prepare("flat", &set, &root, &error), 0);
	/* Made, trailing slash dropped, private. */
	snprintf(path, sizeof(path), "%s/var/mail", dir);
	assert_string_equal(root, path);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	free(root);
	/* Again: already there is fine. */
	assert_int_equal(storage_root_prepare("flat", &set, &root, &error), 0);
	free(root);
	/* A file in the way is an error that names the backend. */
	snprintf(file, sizeof(file), "%s/plain", dir);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	set.root = file;
	assert_int_equal(storage_root_prepare("maildir", &set, &root, &error), -1);
	assert_non_null(strstr(error, "maildir:"));
	free(error);
	set.root = "";
	assert_int_equal(storage_root_prepare("flat", &set, &root, &error), -1);
	free(error);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* A file of n records (uid i+1, size 1000+i) after a header of one page;
   returns its fd (read-write) and the page size in *off_r. */
static int
map_file(char *path, size_t n, uint64_t *off_r)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)page), 0);
	for (size_t i = 0; i < n; i++) {
		struct mail_rec r = rec_uid((uint32_t)i + 1);

		r.size = 1000 + i;
		r.modseq = i + 1;
		assert_int_equal(pwrite(fd, &r, sizeof(r), (off_t)(page + i * sizeof(r))),
				 (ssize_t)sizeof(r));
	}
	*off_r = page;
	return fd;
}

static void
test_mapped_state_works_like_the_heap(void **unused)
{
	char path[] = "/tmp/test_storage_map.XXXXXX";
	struct mbox_state s;
	struct mail_rec r, disk;
	uint64_t off;
	size_t n = 1000, alloc;
	char *error = NULL;
	int fd;

	(void)unused;
	fd = map_file(path, n, &off);
	mbox_state_init(&s);
	assert_int_equal(mbox_state_map(&s, fd, off, n, &error), 0);
	assert_true(s.mapped);
	assert_int_equal(s.count, n);
	assert_true(s.alloc >= 2 * n);
	/* the header fields are the caller's (the index header's) */
	assert_int_equal(s.uidnext, 1);
	s.uidnext = (uint32_t)n + 1;
	assert_int_equal(s.mails[0].uid, 1);
	assert_int_equal(s.mails[n - 1].size, 1000 + n - 1);
	assert_int_equal(mbox_state_find(&s, 500), 499);
	/* changes stay in memory: the file is not written through */
	assert_true(mbox_state_set_flags(&s, 10, MAIL_SEEN, 2));
	assert_int_equal(s.mails[10].flags, MAIL_SEEN);
	assert_int_equal(pread(fd, &disk, sizeof(disk), (off_t)(off + 10 * sizeof(disk))),
			 (ssize_t)sizeof(disk));
	assert_int_equal(disk.flags, 0);
	mbox_state_remove(&s, 0);
	assert_int_equal(s.count, n - 1);
	assert_int_equal(s.mails[0].uid, 2);
	/* appends inside the reserve stay mapped, past it move to the heap */
	alloc = s.alloc;
	while (s.count < alloc) {
		r = rec_uid(s.uidnext);
		assert_non_null(mbox_state_append(&s, &r));
	}
	assert_true(s.mapped);
	r = rec_uid(s.uidnext);
	assert_non_null(mbox_state_append(&s, &r));
	assert_false(s.mapped);
	assert_int_equal(s.count, alloc + 1);
	assert_int_equal(s.mails[0].uid, 2);
	assert_int_equal(s.mails[9].flags, MAIL_SEEN);
	for (size_t i = 1; i < s.count; i++)
		assert_true(s.mails[i].uid > s.mails[i - 1].uid);
	mbox_state_deinit(&s);
	close(fd);
	unlink(path);
}

static void
test_mapped_file_refuses_overwrites_by_others(void **unused)
{
	char path[] = "/tmp/test_storage_map.XXXXXX";
	struct mbox_state s;
	uint64_t off;
	char *error = NULL;
	int fd, other;

	(void)unused;
	fd = map_file(path, 100, &off);
	other = open(path, O_RDWR);
	assert_true(other >= 0);
	/* nobody maps it: an in-place write may go ahead */
	assert_true(mbox_map_write_begin(other));
	/* a writer at work: no mapping now */
	mbox_state_init(&s);
	assert_int_equal(mbox_state_map(&s, fd, off, 100, &error), -1);
	free(error);
	error = NULL;
	assert_false(s.mapped);
	mbox_map_write_end(other, false);
	assert_int_equal(mbox_state_map(&s, fd, off, 100, &error), 0);
	/* mapped: another open file must rewrite the file whole, while the
	   mapper's own (fd, the same open file) may write in place */
	assert_false(mbox_map_write_begin(other));
	assert_true(mbox_map_write_begin(fd));
	mbox_map_write_end(fd, true);
	assert_false(mbox_map_write_begin(other));
	mbox_state_deinit(&s);
	close(fd);
	/* the mapping and its last open file gone: free again */
	assert_true(mbox_map_write_begin(other));
	mbox_map_write_end(other, false);
	close(other);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_append_raises_uidnext),
		cmocka_unit_test(test_state_find_and_remove),
		cmocka_unit_test(test_state_set_flags_bumps_modseq),
		cmocka_unit_test(test_state_keyword_table),
		cmocka_unit_test(test_name_rules),
		cmocka_unit_test(test_user_rules),
		cmocka_unit_test(test_error_codes),
		cmocka_unit_test(test_wrappers_check_and_fill_errors),
		cmocka_unit_test(test_root_prepare_creates_missing_parents),
		cmocka_unit_test(test_mapped_state_works_like_the_heap),
		cmocka_unit_test(test_mapped_file_refuses_overwrites_by_others),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
