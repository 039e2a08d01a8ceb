/* test_safepath.c: every fs_*_beneath operation refuses to follow a link
   planted anywhere beneath the base, and acts on a link itself where it
   removes or renames. Every test runs twice: with openat2(2) (when the
   kernel has it) and with the component-by-component fallback forced.

   The tree each test starts from (in a fresh temporary folder T):
     T/root/alice/                     the base
     T/root/alice/Maildir/cur/msg      "mine"
     T/root/bob/Maildir/cur/secret     "bob"
     T/outside/file                    "outside"
     T/outside/dir/keep                "keep" */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "lib.h"
#include "fileio.h"
#include "safepath.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[1024];
static char base[2048];

/* T-relative path made absolute, in one of a few rotating buffers. */
static const char *tp(const char *fmt, ...) ATTR_FORMAT(1, 2);
static const char *
tp(const char *fmt, ...)
{
	static char bufs[8][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % N_ELEMENTS(bufs)];
	char rel[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(b, PATH_MAX, "%s/%s", top, rel);
	return b;
}

static void
write_file(const char *path, const char *data)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(data, f);
	assert_int_equal(fclose(f), 0);
}

/* The whole content of path (plain read, for checking), or NULL. */
static char *
read_all(const char *path)
{
	static char data[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(data, 1, sizeof(data) - 1, f);
	data[n] = '\0';
	fclose(f);
	return data;
}

static char *
read_fd(int fd)
{
	static char data[4096];
	ssize_t n = read(fd, data, sizeof(data) - 1);

	assert_true(n >= 0);
	data[n] = '\0';
	close(fd);
	return data;
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void
plant_link(const char *target, const char *at)
{
	assert_int_equal(symlink(target, at), 0);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
setup(void **state)
{
	snprintf(top, sizeof(top), "%s/safepath.XXXXXX",
		 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(top));
	snprintf(base, sizeof(base), "%s/root/alice", top);
	assert_int_equal(mkdir(tp("root"), 0700), 0);
	assert_int_equal(mkdir(tp("root/alice"), 0700), 0);
	assert_int_equal(mkdir(tp("root/alice/Maildir"), 0700), 0);
	assert_int_equal(mkdir(tp("root/alice/Maildir/cur"), 0700), 0);
	write_file(tp("root/alice/Maildir/cur/msg"), "mine");
	assert_int_equal(mkdir(tp("root/bob"), 0700), 0);
	assert_int_equal(mkdir(tp("root/bob/Maildir"), 0700), 0);
	assert_int_equal(mkdir(tp("root/bob/Maildir/cur"), 0700), 0);
	write_file(tp("root/bob/Maildir/cur/secret"), "bob");
	assert_int_equal(mkdir(tp("outside"), 0700), 0);
	write_file(tp("outside/file"), "outside");
	assert_int_equal(mkdir(tp("outside/dir"), 0700), 0);
	write_file(tp("outside/dir/keep"), "keep");
	return 0;
}

static int
teardown(void **state)
{
	(void)nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* Asserts that nothing outside alice's folder changed. */
static void
assert_outside_intact(void)
{
	assert_string_equal(read_all(tp("root/bob/Maildir/cur/secret")), "bob");
	assert_string_equal(read_all(tp("outside/file")), "outside");
	assert_string_equal(read_all(tp("outside/dir/keep")), "keep");
	assert_false(exists(tp("outside/created")));
	assert_false(exists(tp("outside/dir/created")));
	assert_false(exists(tp("root/bob/Maildir/cur/stolen")));
}

#define assert_errno(call, err)                 \
	do {                                    \
		errno = 0;                      \
		assert_int_equal((call), -1);   \
		assert_int_equal(errno, (err)); \
	} while (0)

static void
test_plain_paths_work_full_and_relative(void **state)
{
	struct stat st;
	int fd;

	fd = fs_open_beneath(base, tp("root/alice/Maildir/cur/msg"), O_RDONLY, 0);
	assert_true(fd >= 0);
	assert_string_equal(read_fd(fd), "mine");
	fd = fs_open_beneath(base, "Maildir/cur/msg", O_RDONLY, 0);
	assert_true(fd >= 0);
	assert_string_equal(read_fd(fd), "mine");
	/* "." and empty components are harmless */
	fd = fs_open_beneath(base, "./Maildir//cur/./msg", O_RDONLY, 0);
	assert_true(fd >= 0);
	close(fd);
	/* a base given with a trailing slash */
	fd = fs_open_beneath(tp("root/alice/"), tp("root/alice/Maildir/cur/msg"), O_RDONLY, 0);
	assert_true(fd >= 0);
	close(fd);

	fd = fs_open_beneath(base, tp("root/alice/Maildir/cur/new"), O_WRONLY | O_CREAT | O_EXCL,
			     0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	assert_string_equal(read_all(tp("root/alice/Maildir/cur/new")), "x");
	assert_int_equal(fs_stat_beneath(base, "Maildir/cur/new", &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 1);
	assert_int_equal(fs_stat_beneath(base, base, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_errno(fs_open_beneath(base, "Maildir/cur/none", O_RDONLY, 0), ENOENT);
}

static void
test_relative_base_and_paths_that_only_start_like_it(void **state)
{
	char cwd[PATH_MAX];
	int fd;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(top), 0);
	/* a full path (relative to the working folder) beneath the base */
	fd = fs_open_beneath("root/alice", "root/alice/Maildir/cur/msg", O_RDONLY, 0);
	assert_true(fd >= 0);
	assert_string_equal(read_fd(fd), "mine");
	/* a path relative to the base that merely starts with its name */
	assert_int_equal(fs_mkdirs_beneath("root/alice", "root/alicebox", 0700), 0);
	assert_true(exists(tp("root/alice/root/alicebox")));
	assert_false(exists(tp("root/alicebox")));
	assert_int_equal(chdir(cwd), 0);
}

static void
test_link_as_folder_is_refused(void **state)
{
	struct stat st;

	/* alice's "mailbox folder" is a link to bob's Maildir */
	plant_link(tp("root/bob/Maildir"), tp("root/alice/Maildir/.Bob"));
	plant_link("../../bob/Maildir/cur", tp("root/alice/Maildir/cur2"));
	assert_errno(fs_open_beneath(base, "Maildir/.Bob/cur/secret", O_RDONLY, 0), ELOOP);
	assert_errno(fs_open_beneath(base, "Maildir/cur2/secret", O_RDWR, 0), ELOOP);
	assert_null(fs_opendir_beneath(base, "Maildir/.Bob"));
	assert_int_equal(errno, ELOOP);
	assert_null(fs_opendir_beneath(base, "Maildir/.Bob/cur"));
	assert_int_equal(errno, ELOOP);
	assert_errno(fs_open_beneath(base, "Maildir/.Bob/cur/stolen", O_WRONLY | O_CREAT, 0600),
		     ELOOP);
	assert_errno(fs_stat_beneath(base, "Maildir/.Bob/cur/secret", &st), ELOOP);
	assert_errno(fs_unlink_beneath(base, "Maildir/.Bob/cur/secret"), ELOOP);
	assert_errno(fs_mkdir_beneath(base, "Maildir/.Bob/new", 0700), ELOOP);
	assert_errno(fs_mkdirs_beneath(base, "Maildir/.Bob/new/x", 0700), ELOOP);
	assert_errno(fs_rmdir_beneath(base, "Maildir/.Bob/cur"), ELOOP);
	assert_false(exists(tp("root/bob/Maildir/new")));
	assert_true(exists(tp("root/bob/Maildir/cur")));
	assert_outside_intact();
}

static void
test_link_as_file_is_refused(void **state)
{
	/* a message file linking to a file outside, absolute and relative */
	plant_link(tp("outside/file"), tp("root/alice/Maildir/cur/abs"));
	plant_link("../../../bob/Maildir/cur/secret", tp("root/alice/Maildir/cur/rel"));
	assert_errno(fs_open_beneath(base, "Maildir/cur/abs", O_RDONLY, 0), ELOOP);
	assert_errno(fs_open_beneath(base, "Maildir/cur/rel", O_RDONLY, 0), ELOOP);
	assert_errno(fs_open_beneath(base, "Maildir/cur/abs", O_WRONLY | O_APPEND, 0), ELOOP);
	assert_errno(fs_open_beneath(base, "Maildir/cur/abs", O_WRONLY | O_CREAT | O_TRUNC, 0600),
		     ELOOP);
	assert_null(fs_fopen_beneath(base, "Maildir/cur/rel", "r"));
	assert_int_equal(errno, ELOOP);
	assert_null(fs_fopen_beneath(base, "Maildir/cur/abs", "a"));
	assert_int_equal(errno, ELOOP);
	assert_outside_intact();
}

static void
test_dangling_link_as_last_component_is_not_created(void **state)
{
	plant_link(tp("outside/created"), tp("root/alice/Maildir/cur/new"));
	plant_link("../../../../outside/dir/created", tp("root/alice/Maildir/cur/new2"));
	assert_errno(fs_open_beneath(base, "Maildir/cur/new", O_WRONLY | O_CREAT, 0600), ELOOP);
	assert_errno(fs_open_beneath(base, "Maildir/cur/new2", O_RDWR | O_CREAT, 0600), ELOOP);
	assert_null(fs_fopen_beneath(base, "Maildir/cur/new", "w"));
	assert_int_equal(errno, ELOOP);
	assert_errno(fs_mkdir_beneath(base, "Maildir/cur/new", 0700), EEXIST);
	assert_errno(fs_mkdirs_beneath(base, "Maildir/cur/new2", 0700), ELOOP);
	assert_outside_intact();
}

static void
test_link_to_parent_and_absolute_links_are_refused(void **state)
{
	plant_link("..", tp("root/alice/up"));
	plant_link("/", tp("root/alice/slash"));
	plant_link(top, tp("root/alice/Maildir/top"));
	assert_errno(fs_open_beneath(base, "up/bob/Maildir/cur/secret", O_RDONLY, 0), ELOOP);
	assert_errno(fs_open_beneath(base, "up/alice/Maildir/cur/msg", O_RDONLY, 0), ELOOP);
	assert_errno(fs_open_beneath(base, "slash/etc/passwd", O_RDONLY, 0), ELOOP);
	assert_errno(fs_open_beneath(base, "Maildir/top/outside/file", O_RDONLY, 0), ELOOP);
	assert_null(fs_opendir_beneath(base, "up"));
	assert_int_equal(errno, ELOOP);
	assert_null(fs_opendir_beneath(base, "slash"));
	assert_int_equal(errno, ELOOP);
	assert_errno(fs_rename_beneath(base, "Maildir/cur/msg", "up/bob/Maildir/cur/stolen"),
		     ELOOP);
	assert_true(exists(tp("root/alice/Maildir/cur/msg")));
	assert_outside_intact();
}

static void
test_dotdot_and_paths_outside_base_are_refused(void **state)
{
	char longer[PATH_MAX];
	struct stat st;

	assert_errno(fs_open_beneath(base, "../bob/Maildir/cur/secret", O_RDONLY, 0), EXDEV);
	assert_errno(fs_open_beneath(base, "Maildir/../../bob/Maildir/cur/secret", O_RDONLY, 0),
		     EXDEV);
	assert_errno(fs_open_beneath(base, tp("root/alice/../bob/Maildir/cur/secret"), O_RDONLY, 0),
		     EXDEV);
	/* even ".." that would stay inside: never needed, never allowed */
	assert_errno(fs_open_beneath(base, "Maildir/cur/../cur/msg", O_RDONLY, 0), EXDEV);
	assert_errno(fs_open_beneath(base, "/etc/passwd", O_RDONLY, 0), EXDEV);
	assert_errno(fs_open_beneath(base, tp("root/bob/Maildir/cur/secret"), O_RDONLY, 0), EXDEV);
	/* a name that only starts like the base */
	snprintf(longer, sizeof(longer), "%s2/x", base);
	assert_errno(fs_open_beneath(base, longer, O_RDONLY, 0), EXDEV);
	assert_errno(fs_stat_beneath(base, "..", &st), EXDEV);
	assert_errno(fs_unlink_beneath(base, "../bob/Maildir/cur/secret"), EXDEV);
	assert_errno(fs_rename_beneath(base, "Maildir/cur/msg", "../bob/Maildir/cur/stolen"),
		     EXDEV);
	assert_errno(fs_remove_tree_beneath(base, "../bob"), EXDEV);
	assert_errno(fs_mkdirs_beneath(base, "../bob/x", 0700), EXDEV);
	assert_outside_intact();
	assert_true(exists(tp("root/bob/Maildir")));
}

static void
test_base_that_is_a_link_is_refused(void **state)
{
	const char *mallory = tp("root/mallory");

	plant_link("bob", mallory);
	assert_errno(fs_open_beneath(mallory, tp("root/mallory/Maildir/cur/secret"), O_RDONLY, 0),
		     ELOOP);
	assert_errno(fs_open_beneath(tp("root/mallory/"), "Maildir/cur/secret", O_RDONLY, 0),
		     ELOOP);
	assert_null(fs_opendir_beneath(mallory, mallory));
	assert_int_equal(errno, ELOOP);
	assert_errno(fs_mkdirs_beneath(mallory, "Maildir/new", 0700), ELOOP);
	assert_errno(fs_mkdir_beneath(mallory, mallory, 0700), ELOOP);
	assert_false(exists(tp("root/bob/Maildir/new")));
	assert_errno(fs_open_beneath("", "x", O_RDONLY, 0), EINVAL);
}

static void
test_stat_reports_a_link_as_a_link(void **state)
{
	struct stat st;

	plant_link(tp("outside/file"), tp("root/alice/Maildir/cur/abs"));
	plant_link(tp("outside/dir"), tp("root/alice/Maildir/.Dir"));
	assert_int_equal(fs_stat_beneath(base, "Maildir/cur/abs", &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(fs_stat_beneath(base, tp("root/alice/Maildir/.Dir"), &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_errno(fs_stat_beneath(base, "Maildir/.Dir/keep", &st), ELOOP);
	assert_int_equal(fs_stat_beneath(base, "Maildir/cur", &st), 0);
	assert_true(S_ISDIR(st.st_mode));
}

static void
test_unlink_and_rmdir_act_on_the_link_itself(void **state)
{
	plant_link(tp("outside/file"), tp("root/alice/Maildir/cur/abs"));
	plant_link(tp("outside/dir"), tp("root/alice/Maildir/.Dir"));
	assert_int_equal(fs_unlink_beneath(base, "Maildir/cur/abs"), 0);
	assert_false(exists(tp("root/alice/Maildir/cur/abs")));
	/* rmdir of a link to a folder: not a folder, nothing removed */
	assert_errno(fs_rmdir_beneath(base, "Maildir/.Dir"), ENOTDIR);
	assert_int_equal(fs_unlink_beneath(base, "Maildir/.Dir"), 0);
	assert_false(exists(tp("root/alice/Maildir/.Dir")));
	assert_outside_intact();

	assert_int_equal(mkdir(tp("root/alice/Maildir/tmp"), 0700), 0);
	assert_int_equal(fs_rmdir_beneath(base, "Maildir/tmp"), 0);
	assert_false(exists(tp("root/alice/Maildir/tmp")));
	assert_int_equal(fs_unlink_beneath(base, "Maildir/cur/msg"), 0);
	assert_false(exists(tp("root/alice/Maildir/cur/msg")));
	assert_errno(fs_unlink_beneath(base, base), EINVAL);
	assert_errno(fs_rmdir_beneath(base, ""), EINVAL);
	assert_true(exists(base));
}

static void
test_mkdir_and_mkdirs(void **state)
{
	struct stat st;
	const char *carol = tp("root/carol");

	assert_int_equal(fs_mkdir_beneath(base, "Maildir/.Box", 0700), 0);
	assert_int_equal(stat(tp("root/alice/Maildir/.Box"), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_errno(fs_mkdir_beneath(base, "Maildir/.Box", 0700), EEXIST);
	assert_int_equal(fs_mkdirs_beneath(base, "Maildir/.Box/cur", 0700), 0);
	assert_int_equal(fs_mkdirs_beneath(base, "Maildir/.Two/new/deep", 0700), 0);
	assert_true(exists(tp("root/alice/Maildir/.Two/new/deep")));
	/* an existing path is fine */
	assert_int_equal(fs_mkdirs_beneath(base, "Maildir/.Two/new", 0700), 0);
	/* a missing base is made, by either call */
	assert_int_equal(fs_mkdir_beneath(carol, carol, 0700), 0);
	assert_true(exists(carol));
	assert_int_equal(fs_mkdirs_beneath(tp("root/dave"), "Maildir/cur", 0700), 0);
	assert_true(exists(tp("root/dave/Maildir/cur")));
}

static void
test_rename_stays_beneath_and_moves_links_themselves(void **state)
{
	plant_link(tp("root/bob/Maildir"), tp("root/alice/Maildir/.Bob"));
	plant_link(tp("outside/file"), tp("root/alice/Maildir/cur/abs"));

	assert_int_equal(fs_rename_beneath(base, "Maildir/cur/msg", "Maildir/cur/msg:2,S"), 0);
	assert_string_equal(read_all(tp("root/alice/Maildir/cur/msg:2,S")), "mine");
	/* moving a linked folder moves the link, not bob's folder */
	assert_int_equal(fs_rename_beneath(base, tp("root/alice/Maildir/.Bob"),
					   tp("root/alice/Maildir/.Renamed")),
			 0);
	assert_true(exists(tp("root/bob/Maildir/cur/secret")));
	assert_false(exists(tp("root/alice/Maildir/.Bob")));
	/* renaming onto or out of a linked folder is refused */
	assert_errno(fs_rename_beneath(base, "Maildir/cur/msg:2,S", "Maildir/.Renamed/cur/stolen"),
		     ELOOP);
	assert_errno(fs_rename_beneath(base, "Maildir/.Renamed/cur/secret", "Maildir/cur/got"),
		     ELOOP);
	assert_false(exists(tp("root/alice/Maildir/cur/got")));
	/* a link renamed over a file replaces the file by the link only */
	assert_int_equal(fs_rename_beneath(base, "Maildir/cur/abs", "Maildir/cur/msg:2,S"), 0);
	assert_errno(fs_open_beneath(base, "Maildir/cur/msg:2,S", O_RDONLY, 0), ELOOP);
	assert_errno(fs_rename_beneath(base, base, "x"), EINVAL);
	assert_errno(fs_rename_beneath(base, "Maildir", "."), EINVAL);
	assert_outside_intact();
}

static void
test_remove_tree_never_follows_a_link(void **state)
{
	plant_link(tp("root/bob/Maildir"), tp("root/alice/Maildir/.Bob"));
	assert_int_equal(mkdir(tp("root/alice/Maildir/.Trash"), 0700), 0);
	assert_int_equal(mkdir(tp("root/alice/Maildir/.Trash/cur"), 0700), 0);
	assert_int_equal(mkdir(tp("root/alice/Maildir/.Trash/cur/deep"), 0700), 0);
	write_file(tp("root/alice/Maildir/.Trash/cur/1:2,S"), "one");
	write_file(tp("root/alice/Maildir/.Trash/cur/deep/2"), "two");
	assert_int_equal(mkfifo(tp("root/alice/Maildir/.Trash/cur/fifo"), 0600), 0);
	/* the hard case: links inside the tree to folders and files outside */
	plant_link(tp("outside/dir"), tp("root/alice/Maildir/.Trash/cur/linkdir"));
	plant_link("../../../../../outside/dir", tp("root/alice/Maildir/.Trash/cur/deep/rel"));
	plant_link(tp("outside/file"), tp("root/alice/Maildir/.Trash/linkfile"));
	plant_link(tp("root/bob"), tp("root/alice/Maildir/.Trash/bob"));

	assert_int_equal(fs_remove_tree_beneath(base, tp("root/alice/Maildir/.Trash")), 0);
	assert_false(exists(tp("root/alice/Maildir/.Trash")));
	assert_outside_intact();
	assert_true(exists(tp("outside/dir")));
	assert_true(exists(tp("root/bob/Maildir/cur")));

	/* DELETE of a linked folder removes the link only */
	assert_int_equal(fs_remove_tree_beneath(base, "Maildir/.Bob"), 0);
	assert_false(exists(tp("root/alice/Maildir/.Bob")));
	assert_outside_intact();

	/* through a linked parent: refused */
	plant_link(tp("root/bob"), tp("root/alice/Maildir/.Bob2"));
	assert_errno(fs_remove_tree_beneath(base, "Maildir/.Bob2/Maildir"), ELOOP);
	assert_true(exists(tp("root/bob/Maildir/cur/secret")));

	assert_errno(fs_remove_tree_beneath(base, "Maildir/.None"), ENOENT);
	assert_errno(fs_remove_tree_beneath(base, base), EINVAL);
	/* a plain file is simply removed */
	assert_int_equal(fs_remove_tree_beneath(base, "Maildir/cur/msg"), 0);
	assert_false(exists(tp("root/alice/Maildir/cur/msg")));
	assert_outside_intact();
}

static void
test_opendir_and_fopen(void **state)
{
	struct dirent *de;
	unsigned n = 0;
	FILE *f;
	DIR *d;
	char line[64];

	d = fs_opendir_beneath(base, base);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, "Maildir") == 0)
			n++;
	closedir(d);
	assert_int_equal(n, 1);
	d = fs_opendir_beneath(base, "Maildir/cur");
	assert_non_null(d);
	closedir(d);

	f = fs_fopen_beneath(base, "Maildir/cur/msg", "re");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, "mine");
	fclose(f);
	f = fs_fopen_beneath(base, "Maildir/list", "w");
	assert_non_null(f);
	fputs("3 1\n", f);
	assert_int_equal(fclose(f), 0);
	f = fs_fopen_beneath(base, "Maildir/list", "a");
	assert_non_null(f);
	fputs("more\n", f);
	assert_int_equal(fclose(f), 0);
	assert_string_equal(read_all(tp("root/alice/Maildir/list")), "3 1\nmore\n");
	assert_null(fs_fopen_beneath(base, "Maildir/list", "x"));
	assert_int_equal(errno, EINVAL);
}

static void
test_link_stays_beneath_and_links_links_themselves(void **state)
{
	struct stat st;

	plant_link(tp("root/bob/Maildir"), tp("root/alice/Maildir/.Bob"));
	plant_link(tp("outside/file"), tp("root/alice/Maildir/cur/abs"));

	assert_int_equal(fs_link_beneath(base, "Maildir/cur/msg", "Maildir/cur/msg.lock"), 0);
	assert_string_equal(read_all(tp("root/alice/Maildir/cur/msg.lock")), "mine");
	/* a link is linked itself: the new name is a link too, never a
	   hard link to outside/file */
	assert_int_equal(fs_link_beneath(base, "Maildir/cur/abs", "Maildir/cur/abs2"), 0);
	assert_int_equal(lstat(tp("root/alice/Maildir/cur/abs2"), &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	/* through a linked folder, either way: refused */
	assert_errno(fs_link_beneath(base, "Maildir/cur/msg", "Maildir/.Bob/cur/stolen"), ELOOP);
	assert_errno(fs_link_beneath(base, "Maildir/.Bob/cur/secret", "Maildir/cur/got"), ELOOP);
	assert_errno(fs_link_beneath(base, "Maildir/cur/msg", "../bob/x"), EXDEV);
	assert_errno(fs_link_beneath(base, base, "x"), EINVAL);
	assert_false(exists(tp("root/alice/Maildir/cur/got")));
	assert_outside_intact();
}

/* Runs fn with stderr sent to a file; returns what was written there. */
static char *
capture_stderr(void (*fn)(void))
{
	static char data[8192];
	const char *path = tp("stderr.log");
	int saved = dup(STDERR_FILENO);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	FILE *f;
	size_t n;

	assert_true(saved >= 0 && fd >= 0);
	fflush(stderr);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	fn();
	fflush(stderr);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(data, 1, sizeof(data) - 1, f);
	data[n] = '\0';
	fclose(f);
	return data;
}

static void
refuse_many_times(void)
{
	for (unsigned i = 0; i < 5; i++) {
		assert_errno(fs_open_beneath(base, "Maildir/.Bob/cur/secret", O_RDONLY, 0), ELOOP);
		assert_errno(fs_stat_beneath(base, "Maildir/.Bob/cur/x", &(struct stat){ 0 }),
			     ELOOP);
		assert_errno(fs_open_beneath(base, "Maildir/cur/abs", O_RDONLY, 0), ELOOP);
	}
	fs_link_refused_log(base, "Maildir/cur/abs");
}

static unsigned
count_of(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void
test_refused_link_is_logged_once_per_path(void **state)
{
	char *log;

	plant_link(tp("root/bob/Maildir"), tp("root/alice/Maildir/.Bob"));
	plant_link(tp("outside/file"), tp("root/alice/Maildir/cur/abs"));
	log = capture_stderr(refuse_many_times);
	/* one warning a path (the two beneath .Bob are two paths), each
	   naming the user */
	assert_int_equal(count_of(log, "symbolic link refused"), 3);
	assert_int_equal(count_of(log, "user alice"), 3);
	assert_int_equal(count_of(log, tp("root/alice/Maildir/cur/abs")), 1);
	assert_int_equal(count_of(log, tp("root/alice/Maildir/.Bob/cur/secret")), 1);
	/* again: nothing new */
	log = capture_stderr(refuse_many_times);
	assert_int_equal(count_of(log, "symbolic link refused"), 0);
}

/* A replacement is durable only with its folder synced: once, in
   file_replace() itself, for every caller. */
static void
test_file_replace_fsyncs_the_folder_once(void **state)
{
	unsigned long before = fsync_dir_count();

	assert_int_equal(file_replace(base, "Maildir/uidlist.tmp", "Maildir/uidlist", "3 V1\n", 5),
			 0);
	assert_int_equal(fsync_dir_count(), before + 1);
	assert_string_equal(read_all(tp("root/alice/Maildir/uidlist")), "3 V1\n");
	assert_false(exists(tp("root/alice/Maildir/uidlist.tmp")));
	/* a failed replacement syncs nothing */
	plant_link(tp("outside/file"), tp("root/alice/Maildir/uidlist.tmp"));
	assert_errno(file_replace(base, "Maildir/uidlist.tmp", "Maildir/uidlist", "x", 1), ELOOP);
	assert_int_equal(fsync_dir_count(), before + 1);
	assert_outside_intact();
}

static void
test_file_replace_beneath_never_writes_through_a_link(void **state)
{
	char *data = NULL;
	size_t len;

	/* a link at the temp name: refused, the target untouched */
	plant_link(tp("outside/file"), tp("root/alice/Maildir/list.tmp"));
	assert_errno(file_replace(base, "Maildir/list.tmp", "Maildir/list", "new\n", 4), ELOOP);
	assert_false(exists(tp("root/alice/Maildir/list")));
	/* a link at the final name: replaced by the new file, the link's
	   target untouched */
	plant_link(tp("outside/file"), tp("root/alice/Maildir/list"));
	assert_int_equal(file_replace(base, "Maildir/other.tmp", "Maildir/list", "new\n", 4), 0);
	assert_string_equal(read_all(tp("root/alice/Maildir/list")), "new\n");
	assert_false(exists(tp("root/alice/Maildir/other.tmp")));
	/* reads refuse a link */
	plant_link(tp("outside/file"), tp("root/alice/Maildir/read"));
	assert_errno(file_read_small(base, "Maildir/read", 1024, &data, &len, NULL), ELOOP);
	assert_null(data);
	assert_int_equal(file_read_small(base, "Maildir/list", 1024, &data, &len, NULL), 1);
	assert_string_equal(data, "new\n");
	free(data);
	/* a linked folder on the way: no folder made through it */
	plant_link(tp("outside/dir"), tp("root/alice/Maildir/.Out"));
	assert_errno(mkdir_parents(base, "Maildir/.Out/sub/file"), ELOOP);
	assert_false(exists(tp("outside/dir/sub")));
	assert_outside_intact();
}

static int
use_openat2(void **state)
{
	fs_beneath_force_fallback(false);
	if (!fs_beneath_have_openat2())
		print_message("openat2(2) is not available here: both runs use the fallback\n");
	return 0;
}

static int
use_fallback(void **state)
{
	fs_beneath_force_fallback(true);
	assert_false(fs_beneath_have_openat2());
	return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_plain_paths_work_full_and_relative),
		T(test_relative_base_and_paths_that_only_start_like_it),
		T(test_link_as_folder_is_refused),
		T(test_link_as_file_is_refused),
		T(test_dangling_link_as_last_component_is_not_created),
		T(test_link_to_parent_and_absolute_links_are_refused),
		T(test_dotdot_and_paths_outside_base_are_refused),
		T(test_base_that_is_a_link_is_refused),
		T(test_stat_reports_a_link_as_a_link),
		T(test_unlink_and_rmdir_act_on_the_link_itself),
		T(test_mkdir_and_mkdirs),
		T(test_rename_stays_beneath_and_moves_links_themselves),
		T(test_remove_tree_never_follows_a_link),
		T(test_opendir_and_fopen),
		T(test_link_stays_beneath_and_links_links_themselves),
		T(test_refused_link_is_logged_once_per_path),
		T(test_file_replace_beneath_never_writes_through_a_link),
		T(test_file_replace_fsyncs_the_folder_once),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("safepath (openat2)", tests, use_openat2, NULL);
	failed += cmocka_run_group_tests_name("safepath (fallback)", tests, use_fallback, NULL);
	return failed != 0;
}
