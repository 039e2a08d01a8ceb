/* fileio.c: file helpers shared by the storage backends (see fileio.h). */
#include "fileio.h"
#include "buf.h"
#include "safepath.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The full disk of fileio_test_full_disk(): 0, ENOSPC or EDQUOT; and
   the one write of fileio_test_fail_nth(). */
static int test_full_err, test_nth_err;
static unsigned long test_nth;

void
fileio_test_full_disk(int err)
{
	test_full_err = err;
}

void
fileio_test_fail_nth(unsigned long nth, int err)
{
	test_nth = nth;
	test_nth_err = err;
}

bool
fileio_test_nth_pending(void)
{
	return test_nth > 0;
}

/* True (errno set) if the full disk of a test refuses writing len octets
   at off (-1: the end of the file, or where fd is): what a real full disk
   does to a write that needs a new block. */
static bool
test_disk_refuses(int fd, uint64_t off, bool at_pos, size_t len)
{
	struct stat st;
	off_t pos;

	if (test_nth > 0 && --test_nth == 0) {
		errno = test_nth_err;
		return true;
	}
	if (test_full_err == 0 || len == 0 || fstat(fd, &st) < 0)
		return false;
	if (at_pos) {
		pos = lseek(fd, 0, SEEK_CUR);
		off = pos < 0 || (fcntl(fd, F_GETFL) & O_APPEND) != 0 ? (uint64_t)st.st_size :
									  (uint64_t)pos;
	}
	if (off + len <= (uint64_t)st.st_blocks * 512)
		return false;
	errno = test_full_err;
	return true;
}

int
fd_write_full(int fd, const void *data, size_t len)
{
	const char *p = data;

	if (test_disk_refuses(fd, 0, true, len))
		return -1;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fd_pwrite_full(int fd, const void *data, size_t len, uint64_t off)
{
	const char *p = data;

	if (test_disk_refuses(fd, off, false, len))
		return -1;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

ssize_t
fd_pread_full(int fd, void *data, size_t len, uint64_t off)
{
	char *p = data;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Folder fsyncs done, for tests (fsync_dir_count()); worker threads
   sync folders too. */
static unsigned long dir_syncs;

static void
dir_synced(void)
{
	__atomic_add_fetch(&dir_syncs, 1, __ATOMIC_RELAXED);
}

void
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		if (fsync(fd) == 0)
			dir_synced();
		close(fd);
	}
}

/* fsync of the folder holding path (full, or relative to base), found
   beneath base like path itself. */
static void
fsync_dir_of_beneath(const char *base, const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int fd;

	if (slash != NULL)
		*slash = '\0';
	fd = fs_open_beneath(base, slash != NULL ? dir : base, O_RDONLY | O_DIRECTORY, 0);
	if (fd >= 0) {
		if (fsync(fd) == 0)
			dir_synced();
		close(fd);
	}
	free(dir);
}

int
fsync_dir_beneath(const char *base, const char *dir)
{
	int fd = fs_open_beneath(base, dir, O_RDONLY | O_DIRECTORY, 0);
	int ret = -1, saved;

	if (fd < 0)
		return -1;
	if (fsync(fd) == 0) {
		dir_synced();
		ret = 0;
	}
	saved = errno;
	close(fd);
	errno = saved;
	return ret;
}

unsigned long
fsync_dir_count(void)
{
	return __atomic_load_n(&dir_syncs, __ATOMIC_RELAXED);
}

void
fsync_dir_of(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');

	if (slash != NULL && slash != dir)
		*slash = '\0';
	fsync_dir(dir);
	free(dir);
}

int
mkdir_parents(const char *base, const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int ret;

	if (slash == NULL)
		dir[0] = '\0';
	else
		*slash = '\0';
	ret = fs_mkdirs_beneath(base, dir[0] != '\0' ? dir : base, 0700);
	if (ret < 0) {
		int err = errno;

		free(dir);
		errno = err;
		return -1;
	}
	free(dir);
	return 0;
}

void
sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Reads a whole small file (at most max bytes) into a NUL-terminated
   buffer. Returns 1, 0 if missing, -1 on error (errno set). */
int
file_read_small(const char *base, const char *path, size_t max, char **data_r, size_t *len_r,
		struct stat *st_r)
{
	struct buf b = BUF_INIT;
	char tmp[8192];
	ssize_t n;
	int fd = fs_open_beneath(base, path, O_RDONLY, 0);

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (st_r != NULL && fstat(fd, st_r) < 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	while ((n = read(fd, tmp, sizeof(tmp))) != 0) {
		if (n < 0) {
			int err = errno;

			if (err == EINTR)
				continue;
			buf_free(&b);
			close(fd);
			errno = err;
			return -1;
		}
		if (b.len + (size_t)n > max) {
			buf_free(&b);
			close(fd);
			errno = EFBIG;
			return -1;
		}
		buf_append(&b, tmp, (size_t)n);
	}
	close(fd);
	buf_append(&b, "", 0);
	*len_r = b.len;
	*data_r = buf_steal(&b);
	return 1;
}

/* Writes data to tmp, fsyncs and renames it to path, then fsyncs the
   folder. */
int
file_replace(const char *base, const char *tmp, const char *path, const char *data, size_t len)
{
	int fd = fs_open_beneath(base, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		return -1;
	if (fd_write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		int err = errno;

		close(fd);
		(void)fs_unlink_beneath(base, tmp);
		errno = err;
		return -1;
	}
	if (close(fd) < 0 || fs_rename_beneath(base, tmp, path) < 0) {
		int err = errno;

		(void)fs_unlink_beneath(base, tmp);
		errno = err;
		return -1;
	}
	/* without it a power cut can bring the old file back */
	fsync_dir_of_beneath(base, path);
	return 0;
}

int
file_tmp_create(const char *base, const char *tmp, const void *data, size_t len, mode_t mode)
{
	int fd = fs_open_beneath(base, tmp, O_RDWR | O_CREAT | O_TRUNC, mode);

	if (fd < 0)
		return -1;
	if ((len > 0 && fd_write_full(fd, data, len) < 0) || fsync(fd) < 0) {
		int err = errno;

		close(fd);
		(void)fs_unlink_beneath(base, tmp);
		errno = err;
		return -1;
	}
	return fd;
}

int
file_tmp_commit(const char *base, int fd, const char *tmp, const char *path)
{
	if (fsync(fd) < 0 || fs_rename_beneath(base, tmp, path) < 0) {
		int err = errno;

		(void)fs_unlink_beneath(base, tmp);
		errno = err;
		return -1;
	}
	fsync_dir_of_beneath(base, path);
	return 0;
}
