/* safepath.c: file operations confined beneath a base folder (see
   safepath.h for the contract).

   Each call opens the base (O_DIRECTORY | O_NOFOLLOW), reduces the path to
   a normalised relative one ("a//b/./c" -> "a/b/c"; ".." refused), then
   resolves the parent folder of the last component beneath the base fd
   and acts on the last component with the *at() call, which never
   follows a link as the last component (unlinkat, mkdirat, renameat,
   fstatat with AT_SYMLINK_NOFOLLOW) or is told not to (O_NOFOLLOW). */
#include "safepath.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define REMOVE_TREE_MAX_DEPTH 64

/* openat2(2) support: 0 not probed yet, 1 present, -1 absent. With
   force_fallback (tests only) it is not used even when present. The
   process's only mutable state here: written once by the probe (the
   server is one thread; a forked worker inherits the answer). */
static int openat2_state;
static bool force_fallback;

struct beneath {
	int base_fd;
	char base[PATH_MAX]; /* base without trailing slashes */
	char rel[PATH_MAX];  /* normalised path relative to base; "" = base */
	char dir[PATH_MAX];  /* rel's parent folder; "" = base */
	const char *name;    /* rel's last component (points into rel) */
};

static void
close_keep_errno(int fd)
{
	int err = errno;

	(void)close(fd);
	errno = err;
}

/* The paths a link was refused at, each warned about once per process.
   Bounded: past WARNED_MAX paths no more are remembered (nor logged),
   so that a store full of links cannot grow the process. */
#define WARNED_MAX 4096
static char **warned;
static size_t warned_count;

void
fs_link_refused_log(const char *base, const char *path)
{
	char *b = xstrdup(base), *full, *user;
	size_t blen = strlen(b);

	while (blen > 1 && b[blen - 1] == '/')
		b[--blen] = '\0';
	if (strncmp(path, b, blen) == 0 && (path[blen] == '/' || path[blen] == '\0'))
		full = xstrdup(path);
	else
		full = xasprintf("%s/%s", b, path);
	user = strrchr(b, '/');
	user = user != NULL ? user + 1 : b;
	for (size_t i = 0; i < warned_count; i++) {
		if (strcmp(warned[i], full) == 0) {
			free(full);
			free(b);
			return;
		}
	}
	if (warned_count >= WARNED_MAX) {
		free(full);
		free(b);
		return;
	}
	log_warn("-", "store of user %s: symbolic link refused, not followed: %s", user, full);
	warned = xrealloc(warned, (warned_count + 1) * sizeof(*warned));
	warned[warned_count++] = full;
	free(b);
}

static int do_stat_beneath(const char *base, const char *path, struct stat *st_r);

/* note_link() for a call on two paths: the one that met the link. */
static void
note_link2(const char *base, const char *oldpath, const char *newpath)
{
	int err = errno;
	struct stat st;

	if (err == ELOOP) {
		if (do_stat_beneath(base, oldpath, &st) < 0 && errno == ELOOP)
			fs_link_refused_log(base, oldpath);
		else
			fs_link_refused_log(base, newpath);
	}
	errno = err;
}

/* After a failed call on path beneath base: a link met (ELOOP) is
   logged, once. errno is kept. */
static void
note_link(const char *base, const char *path)
{
	int err = errno;

	if (err == ELOOP)
		fs_link_refused_log(base, path);
	errno = err;
}

static long
sys_openat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve)
{
	struct open_how how = {
		.flags = (uint64_t)(unsigned)flags,
		/* openat2 refuses a mode without O_CREAT or O_TMPFILE */
		.mode = (flags & (O_CREAT | O_TMPFILE)) != 0 ? mode : 0,
		.resolve = resolve,
	};

	return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

static bool
use_openat2(void)
{
	if (force_fallback)
		return false;
	if (openat2_state == 0) {
		long fd = sys_openat2(AT_FDCWD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0,
				      RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);

		if (fd >= 0) {
			(void)close((int)fd);
			openat2_state = 1;
		} else if (errno == ENOSYS || errno == EPERM || errno == E2BIG || errno == EINVAL) {
			/* no syscall, a seccomp filter, or no RESOLVE_* */
			openat2_state = -1;
		} else {
			openat2_state = 1;
		}
	}
	return openat2_state > 0;
}

void
fs_beneath_force_fallback(bool force)
{
	force_fallback = force;
}

bool
fs_beneath_have_openat2(void)
{
	return use_openat2();
}

/* openat2 beneath dirfd refusing every link; retries EINTR and EAGAIN (a
   rename raced with the lookup). */
static int
open_resolved(int dirfd, const char *path, int flags, mode_t mode)
{
	for (unsigned tries = 0;; tries++) {
		long fd = sys_openat2(dirfd, path, flags | O_CLOEXEC, mode,
				      RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);

		if (fd >= 0)
			return (int)fd;
		if ((errno == EINTR || errno == EAGAIN) && tries < 16)
			continue;
		return -1;
	}
}

/* Writes into rel_r (of size) path relative to base, normalised: no empty
   or "." component, no leading or trailing slash. Returns 0, or -1 with
   EXDEV (outside base, or a ".." component) or ENAMETOOLONG. */
static int
normalise(const char *base, const char *path, char *rel_r, size_t size)
{
	size_t blen = strlen(base), out = 0;
	const char *p = path;

	if (strncmp(path, base, blen) == 0 && (path[blen] == '/' || path[blen] == '\0')) {
		/* a full path beneath base */
		p = path + blen;
	} else if (path[0] == '/') {
		errno = EXDEV;
		return -1;
	}
	while (*p != '\0') {
		const char *end = strchr(p, '/');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if (len == 2 && p[0] == '.' && p[1] == '.') {
			errno = EXDEV;
			return -1;
		}
		if (len > 0 && !(len == 1 && p[0] == '.')) {
			if (out + len + 2 > size) {
				errno = ENAMETOOLONG;
				return -1;
			}
			if (out > 0)
				rel_r[out++] = '/';
			memcpy(rel_r + out, p, len);
			out += len;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	rel_r[out] = '\0';
	return 0;
}

/* After ENOTDIR from an open with O_DIRECTORY | O_NOFOLLOW of rel
   beneath dirfd: the kernel says ENOTDIR for a link there too; make that
   ELOOP, as for every other link. */
static void
enotdir_link_is_eloop(int dirfd, const char *rel)
{
	struct stat st;

	if (errno != ENOTDIR)
		return;
	if (fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
		errno = ELOOP;
	else
		errno = ENOTDIR;
}

/* Opens base and splits path. Returns 0 (b->base_fd to close with
   beneath_end) or -1 with errno set. */
static int
beneath_begin(struct beneath *b, const char *base, const char *path)
{
	size_t blen = strlen(base);
	char *slash;

	if (blen == 0) {
		errno = EINVAL;
		return -1;
	}
	if (blen >= sizeof(b->base)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(b->base, base, blen + 1);
	/* "a/b/" would follow a link b: the slash asks for a folder */
	while (blen > 1 && b->base[blen - 1] == '/')
		b->base[--blen] = '\0';
	if (normalise(b->base, path, b->rel, sizeof(b->rel)) < 0)
		return -1;
	slash = strrchr(b->rel, '/');
	if (slash == NULL) {
		b->dir[0] = '\0';
		b->name = b->rel;
	} else {
		memcpy(b->dir, b->rel, (size_t)(slash - b->rel));
		b->dir[slash - b->rel] = '\0';
		b->name = slash + 1;
	}
	b->base_fd = open(b->base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (b->base_fd < 0) {
		enotdir_link_is_eloop(AT_FDCWD, b->base);
		return -1;
	}
	return 0;
}

static void
beneath_end(struct beneath *b)
{
	close_keep_errno(b->base_fd);
	b->base_fd = -1;
}

/* Opens the folder rel (normalised, "" = the base) beneath base_fd
   without following a link. Returns a new fd or -1. */
static int
open_dir(int base_fd, const char *rel)
{
	const int dflags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	char comp[NAME_MAX + 1];
	const char *p = rel;
	int cur;

	if (rel[0] == '\0')
		return openat(base_fd, ".", dflags);
	if (use_openat2()) {
		if ((cur = open_resolved(base_fd, rel, dflags, 0)) < 0)
			enotdir_link_is_eloop(base_fd, rel);
		return cur;
	}
	cur = base_fd;
	while (*p != '\0') {
		const char *end = strchr(p, '/');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		int fd;

		if (len > NAME_MAX) {
			if (cur != base_fd)
				close(cur);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		if ((fd = openat(cur, comp, dflags)) < 0)
			enotdir_link_is_eloop(cur, comp);
		if (cur != base_fd)
			close_keep_errno(cur);
		if (fd < 0)
			return -1;
		cur = fd;
		p += len;
		if (*p == '/')
			p++;
	}
	return cur;
}

/* The parent folder of b's last component, or -1. */
static int
open_parent(const struct beneath *b)
{
	return open_dir(b->base_fd, b->dir);
}

static int
open_in(struct beneath *b, int flags, mode_t mode)
{
	int dfd, fd;

	flags |= O_NOFOLLOW | O_CLOEXEC;
	if (b->rel[0] == '\0')
		return openat(b->base_fd, ".", flags, mode);
	if (use_openat2()) {
		if ((fd = open_resolved(b->base_fd, b->rel, flags, mode)) < 0)
			enotdir_link_is_eloop(b->base_fd, b->rel);
		return fd;
	}
	if ((dfd = open_parent(b)) < 0)
		return -1;
	if ((fd = openat(dfd, b->name, flags, mode)) < 0)
		enotdir_link_is_eloop(dfd, b->name);
	close_keep_errno(dfd);
	return fd;
}

static int
do_open_beneath(const char *base, const char *path, int flags, mode_t mode)
{
	struct beneath b;
	int fd;

	if (beneath_begin(&b, base, path) < 0)
		return -1;
	fd = open_in(&b, flags, mode);
	beneath_end(&b);
	return fd;
}

int
fs_open_beneath(const char *base, const char *path, int flags, mode_t mode)
{
	int ret = do_open_beneath(base, path, flags, mode);

	if (ret < 0)
		note_link(base, path);
	return ret;
}

FILE *
fs_fopen_beneath(const char *base, const char *path, const char *mode)
{
	bool plus = strchr(mode, '+') != NULL;
	const char *fmode;
	int flags, fd;
	FILE *f;

	switch (mode[0]) {
	case 'r':
		flags = plus ? O_RDWR : O_RDONLY;
		fmode = plus ? "r+" : "r";
		break;
	case 'w':
		flags = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC;
		fmode = plus ? "w+" : "w";
		break;
	case 'a':
		flags = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND;
		fmode = plus ? "a+" : "a";
		break;
	default:
		errno = EINVAL;
		return NULL;
	}
	if ((fd = fs_open_beneath(base, path, flags, 0600)) < 0)
		return NULL;
	if ((f = fdopen(fd, fmode)) == NULL)
		close_keep_errno(fd);
	return f;
}

DIR *
fs_opendir_beneath(const char *base, const char *path)
{
	int fd = fs_open_beneath(base, path, O_RDONLY | O_DIRECTORY, 0);
	DIR *d;

	if (fd < 0)
		return NULL;
	if ((d = fdopendir(fd)) == NULL)
		close_keep_errno(fd);
	return d;
}

static int
do_mkdir_beneath(const char *base, const char *path, mode_t mode)
{
	struct beneath b;
	int dfd, ret;

	if (beneath_begin(&b, base, path) < 0) {
		/* the base itself may be what is to be made (ENOENT comes
		   only from opening the base, after rel is set) */
		if (errno != ENOENT || b.rel[0] != '\0')
			return -1;
		return mkdir(b.base, mode);
	}
	if (b.rel[0] == '\0') {
		beneath_end(&b);
		errno = EEXIST;
		return -1;
	}
	if ((dfd = open_parent(&b)) < 0) {
		beneath_end(&b);
		return -1;
	}
	ret = mkdirat(dfd, b.name, mode);
	close_keep_errno(dfd);
	beneath_end(&b);
	return ret;
}

static int
do_mkdirs_beneath(const char *base, const char *path, mode_t mode)
{
	const int dflags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	char comp[NAME_MAX + 1];
	struct beneath b;
	const char *p;
	int cur;

	if (beneath_begin(&b, base, path) < 0) {
		/* ENOENT comes only from opening the base: make it */
		if (errno != ENOENT)
			return -1;
		if (mkdir(b.base, mode) < 0 && errno != EEXIST)
			return -1;
		if (beneath_begin(&b, base, path) < 0)
			return -1;
	}
	/* component by component on every kernel: each may need creating */
	cur = b.base_fd;
	p = b.rel;
	while (*p != '\0') {
		const char *end = strchr(p, '/');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		int fd;

		if (len > NAME_MAX) {
			errno = ENAMETOOLONG;
			fd = -1;
		} else {
			memcpy(comp, p, len);
			comp[len] = '\0';
			if (mkdirat(cur, comp, mode) < 0 && errno != EEXIST)
				fd = -1;
			else if ((fd = openat(cur, comp, dflags)) < 0)
				enotdir_link_is_eloop(cur, comp);
		}
		if (cur != b.base_fd)
			close_keep_errno(cur);
		if (fd < 0) {
			beneath_end(&b);
			return -1;
		}
		cur = fd;
		p += len;
		if (*p == '/')
			p++;
	}
	if (cur != b.base_fd)
		close(cur);
	beneath_end(&b);
	return 0;
}

/* unlinkat(2) of path's last component with flags (0 or AT_REMOVEDIR). */
static int
unlink_beneath(const char *base, const char *path, int flags)
{
	struct beneath b;
	int dfd, ret;

	if (beneath_begin(&b, base, path) < 0)
		return -1;
	if (b.rel[0] == '\0') {
		beneath_end(&b);
		errno = EINVAL;
		return -1;
	}
	if ((dfd = open_parent(&b)) < 0) {
		beneath_end(&b);
		return -1;
	}
	ret = unlinkat(dfd, b.name, flags);
	close_keep_errno(dfd);
	beneath_end(&b);
	return ret;
}

int
fs_unlink_beneath(const char *base, const char *path)
{
	int ret = unlink_beneath(base, path, 0);

	if (ret < 0)
		note_link(base, path);
	return ret;
}

int
fs_rmdir_beneath(const char *base, const char *path)
{
	int ret = unlink_beneath(base, path, AT_REMOVEDIR);

	if (ret < 0)
		note_link(base, path);
	return ret;
}

static int
do_rename_beneath(const char *base, const char *oldpath, const char *newpath)
{
	struct beneath from;
	char to_rel[PATH_MAX], to_dir[PATH_MAX];
	const char *to_name, *slash;
	int ofd, nfd, ret;

	if (beneath_begin(&from, base, oldpath) < 0)
		return -1;
	if (normalise(from.base, newpath, to_rel, sizeof(to_rel)) < 0) {
		beneath_end(&from);
		return -1;
	}
	if (from.rel[0] == '\0' || to_rel[0] == '\0') {
		beneath_end(&from);
		errno = EINVAL;
		return -1;
	}
	slash = strrchr(to_rel, '/');
	if (slash == NULL) {
		to_dir[0] = '\0';
		to_name = to_rel;
	} else {
		memcpy(to_dir, to_rel, (size_t)(slash - to_rel));
		to_dir[slash - to_rel] = '\0';
		to_name = slash + 1;
	}
	if ((ofd = open_parent(&from)) < 0) {
		beneath_end(&from);
		return -1;
	}
	if ((nfd = open_dir(from.base_fd, to_dir)) < 0) {
		close_keep_errno(ofd);
		beneath_end(&from);
		return -1;
	}
	ret = renameat(ofd, from.name, nfd, to_name);
	close_keep_errno(nfd);
	close_keep_errno(ofd);
	beneath_end(&from);
	return ret;
}

static int
do_link_beneath(const char *base, const char *oldpath, const char *newpath)
{
	struct beneath from, to;
	int ofd, nfd, ret;

	if (beneath_begin(&from, base, oldpath) < 0)
		return -1;
	if (beneath_begin(&to, base, newpath) < 0) {
		beneath_end(&from);
		return -1;
	}
	ret = -1;
	if (from.rel[0] == '\0' || to.rel[0] == '\0') {
		errno = EINVAL;
	} else if ((ofd = open_parent(&from)) >= 0) {
		if ((nfd = open_parent(&to)) >= 0) {
			/* no AT_SYMLINK_FOLLOW: a link oldpath is linked itself */
			ret = linkat(ofd, from.name, nfd, to.name, 0);
			close_keep_errno(nfd);
		}
		close_keep_errno(ofd);
	}
	beneath_end(&to);
	beneath_end(&from);
	return ret;
}

static int
do_stat_beneath(const char *base, const char *path, struct stat *st_r)
{
	struct beneath b;
	int dfd, ret;

	if (beneath_begin(&b, base, path) < 0)
		return -1;
	if (b.rel[0] == '\0') {
		ret = fstat(b.base_fd, st_r);
		beneath_end(&b);
		return ret;
	}
	if ((dfd = open_parent(&b)) < 0) {
		beneath_end(&b);
		return -1;
	}
	ret = fstatat(dfd, b.name, st_r, AT_SYMLINK_NOFOLLOW);
	close_keep_errno(dfd);
	beneath_end(&b);
	return ret;
}

/* Removes name in the folder dfd and, when it is a folder (never through
   a link), everything in it first. Returns 0 or -1 with errno set to the
   first error met. */
static int
remove_tree_at(int dfd, const char *name, unsigned depth)
{
	struct dirent *de;
	int fd, first_err = 0;
	DIR *d;

	/* O_NONBLOCK: a FIFO planted in the tree must not block the open */
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		/* a link (ELOOP) or anything not a folder: remove the entry */
		if (errno == ELOOP || errno == ENOTDIR)
			return unlinkat(dfd, name, 0);
		return -1;
	}
	if (depth >= REMOVE_TREE_MAX_DEPTH) {
		close(fd);
		errno = ELOOP;
		return -1;
	}
	if ((d = fdopendir(fd)) == NULL) {
		close_keep_errno(fd);
		return -1;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		/* ENOENT: removed meanwhile by someone else, which is fine */
		if (remove_tree_at(dirfd(d), de->d_name, depth + 1) < 0 && errno != ENOENT &&
		    first_err == 0)
			first_err = errno;
	}
	if (errno != 0 && first_err == 0)
		first_err = errno;
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && first_err == 0)
		first_err = errno;
	if (first_err != 0) {
		errno = first_err;
		return -1;
	}
	return 0;
}

int
fs_remove_tree_beneath(const char *base, const char *path)
{
	struct beneath b;
	int dfd, ret;

	if (beneath_begin(&b, base, path) < 0)
		return -1;
	if (b.rel[0] == '\0') {
		beneath_end(&b);
		errno = EINVAL;
		return -1;
	}
	if ((dfd = open_parent(&b)) < 0) {
		beneath_end(&b);
		return -1;
	}
	ret = remove_tree_at(dfd, b.name, 0);
	close_keep_errno(dfd);
	beneath_end(&b);
	return ret;
}

int
fs_mkdir_beneath(const char *base, const char *path, mode_t mode)
{
	int ret = do_mkdir_beneath(base, path, mode);

	if (ret < 0)
		note_link(base, path);
	return ret;
}

int
fs_mkdirs_beneath(const char *base, const char *path, mode_t mode)
{
	int ret = do_mkdirs_beneath(base, path, mode);

	if (ret < 0)
		note_link(base, path);
	return ret;
}

int
fs_rename_beneath(const char *base, const char *oldpath, const char *newpath)
{
	int ret = do_rename_beneath(base, oldpath, newpath);

	if (ret < 0)
		note_link2(base, oldpath, newpath);
	return ret;
}

int
fs_stat_beneath(const char *base, const char *path, struct stat *st_r)
{
	int ret = do_stat_beneath(base, path, st_r);

	if (ret < 0)
		note_link(base, path);
	return ret;
}

int
fs_link_beneath(const char *base, const char *oldpath, const char *newpath)
{
	int ret = do_link_beneath(base, oldpath, newpath);

	if (ret < 0)
		note_link2(base, oldpath, newpath);
	return ret;
}

int
fs_stat_hint(const char *path, struct stat *st_r)
{
	return lstat(path, st_r);
}
