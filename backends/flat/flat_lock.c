/* flat_lock.c: the writers' lock of a flat mailbox, a dotlock plus an
   fcntl() lock.

   Writers (append, expunge, and any process that must rewrite the index)
   take a dotlock <mail file>.lock plus an fcntl() write lock on the mail
   file; the wait is bounded (FLAT_LOCK_TIMEOUT_MS), then the operation
   fails with STORAGE_ERR_IN_USE. That wait is the only place the backend
   blocks. Readers never lock: they check what they read with the hash.

   The dotlock is created complete (written to a private file, then
   link()ed to the lock name), so a holder killed at any instant leaves a
   lock that names it; a lock whose holder is gone, or older than
   FLAT_LOCK_STALE_SECS, is removed by the next writer. So is a private
   file "<mail file>.lock.<pid>" left by a writer killed while it waited
   (or before it removed it): its pid is gone, or it is older than
   FLAT_LOCK_STALE_SECS (a writer waits FLAT_LOCK_TIMEOUT_MS at most). */
#include "fileio.h"
#include "safepath.h"
#include "flat_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* True if no process holds the fcntl lock of the mail file (the other
   half of a writer's lock). */
static bool
flat_no_fcntl_holder(const char *base, const char *mail_path)
{
	struct flock fl;
	int fd = fs_open_beneath(base, mail_path, O_RDONLY, 0);
	bool free_ = false;

	if (fd < 0)
		return errno == ENOENT;
	i_zero(&fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_GETLK, &fl) == 0)
		free_ = fl.l_type == F_UNLCK;
	close(fd);
	return free_;
}

static void
flat_dotlock_remove_stale(const char *base, const char *path, const char *mail_path)
{
	struct stat st;
	char tmp[32];
	ssize_t n;
	long pid = 0;
	int fd;

	if (fs_stat_beneath(base, path, &st) < 0)
		return;
	if (time(NULL) - st.st_mtim.tv_sec > FLAT_LOCK_STALE_SECS || S_ISLNK(st.st_mode)) {
		/* a link is removed itself: it names no holder */
		(void)fs_unlink_beneath(base, path);
		return;
	}
	fd = fs_open_beneath(base, path, O_RDONLY, 0);
	if (fd < 0)
		return;
	n = read(fd, tmp, sizeof(tmp) - 1);
	close(fd);
	if (n == 0 && time(NULL) - st.st_mtim.tv_sec >= FLAT_LOCK_EMPTY_STALE_SECS &&
	    flat_no_fcntl_holder(base, mail_path)) {
		/* Taken on a full disk (no pid), and its holder, who takes
		   the fcntl lock right after, holds none: gone. */
		(void)fs_unlink_beneath(base, path);
		return;
	}
	if (n <= 0)
		return;
	tmp[n] = '\0';
	pid = strtol(tmp, NULL, 10);
	/* The holder died (same host: we only lock local files). */
	if (pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		(void)fs_unlink_beneath(base, path);
}

/* Removes the private files "<lock name>.<pid>" that writers killed
   before removing theirs left behind: a dead pid's, or one older than
   FLAT_LOCK_STALE_SECS. Called with the dotlock held. */
static void
flat_dotlock_clean_tmps(struct storage_box *box)
{
	char *dir = xstrdup(box->lock_path);
	char *slash = strrchr(dir, '/');
	const char *lname = strrchr(box->lock_path, '/') + 1;
	size_t llen = strlen(lname);
	time_t now = time(NULL);
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	*slash = '\0';
	d = fs_opendir_beneath(box->user_dir, dir);
	while (d != NULL && (de = readdir(d)) != NULL && n++ < 100000) {
		const char *p = de->d_name + llen + 1;
		struct stat st;
		char *end, *path;
		long pid;

		if (strncmp(de->d_name, lname, llen) != 0 || de->d_name[llen] != '.' ||
		    *p < '1' || *p > '9')
			continue;
		errno = 0;
		pid = strtol(p, &end, 10);
		if (*end != '\0' || errno != 0 || pid == (long)getpid())
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (now - st.st_mtim.tv_sec <= FLAT_LOCK_STALE_SECS &&
		    !(kill((pid_t)pid, 0) < 0 && errno == ESRCH))
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		(void)fs_unlink_beneath(box->user_dir, path);
		free(path);
	}
	if (d != NULL)
		closedir(d);
	free(dir);
}

/* A short random-ish pause between two lock attempts. */
static void
flat_lock_pause(unsigned *tries)
{
	sleep_ms(10 + (unsigned)((mono_ms() + (*tries)++ * 7) % 41));
}

/* Takes the dotlock, waiting until deadline (mono_ms()) at most, or not
   at all with box->lock_nowait. The dotlock is created complete: the pid
   goes into a private file that is then link()ed to the lock name
   (exclusive like O_EXCL), so that a holder killed at any instant leaves
   a lock naming it. */
static int
flat_dotlock_take(struct storage_box *box, int64_t deadline, unsigned *tries,
		  enum storage_error *err_r, char **error_r)
{
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	char *tmp = xasprintf("%s.%ld", box->lock_path, (long)getpid());
	int fd, ret = -1;

	fd = fs_open_beneath(box->user_dir, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	/* A full disk has no block for the pid: the lock is taken empty
	   (an empty file needs none), and is stale only by its age then,
	   so that EXPUNGE can still free space. */
	if (fd >= 0 && fd_write_full(fd, pid, (size_t)n) < 0 && storage_errno_is_space(errno) &&
	    ftruncate(fd, 0) == 0)
		n = 0;
	if (fd < 0 || (n > 0 && lseek(fd, 0, SEEK_CUR) != (off_t)n)) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("create %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	for (;;) {
		if (fs_link_beneath(box->user_dir, tmp, box->lock_path) == 0)
			break;
		if (errno != EEXIST) {
			*err_r = storage_error_from_errno(errno);
			*error_r = xasprintf("create %s: %s", box->lock_path, strerror(errno));
			goto out;
		}
		flat_dotlock_remove_stale(box->user_dir, box->lock_path, box->mail_path);
		if (box->lock_nowait || mono_ms() >= deadline) {
			*err_r = STORAGE_ERR_IN_USE;
			*error_r = xasprintf("%s: locked by another process", box->lock_path);
			goto out;
		}
		flat_lock_pause(tries);
	}
	ret = 0;
out:
	(void)fs_unlink_beneath(box->user_dir, tmp);
	free(tmp);
	return ret;
}

/* Takes the fcntl write lock on box->lock_fd, waiting like
   flat_dotlock_take(). On failure box->lock_fd is closed. */
static int
flat_fcntl_take(struct storage_box *box, int64_t deadline, unsigned *tries,
		enum storage_error *err_r, char **error_r)
{
	struct flock fl;

	for (;;) {
		i_zero(&fl);
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(box->lock_fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
			*err_r = STORAGE_ERR_TEMP;
			*error_r = xasprintf("fcntl lock %s: %s", box->mail_path, strerror(errno));
		} else if (box->lock_nowait || mono_ms() >= deadline) {
			*err_r = STORAGE_ERR_IN_USE;
			*error_r = xasprintf("%s: locked by another process", box->mail_path);
		} else {
			flat_lock_pause(tries);
			continue;
		}
		close(box->lock_fd);
		box->lock_fd = -1;
		return -1;
	}
}

/* Takes the dotlock and the fcntl lock on the mail file (created when
   create is true; without a file only the dotlock is taken). */
int
flat_lock(struct storage_box *box, bool create, enum storage_error *err_r, char **error_r)
{
	int64_t deadline = mono_ms() + FLAT_LOCK_TIMEOUT_MS;
	unsigned tries = 0;

	if (box->locked)
		return 0;
	if (mkdir_parents(box->user_dir, box->mail_path) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("mkdir for %s: %s", box->mail_path, strerror(errno));
		return -1;
	}
	if (flat_dotlock_take(box, deadline, &tries, err_r, error_r) < 0)
		return -1;
	flat_dotlock_clean_tmps(box);
	box->lock_fd = fs_open_beneath(box->user_dir, box->mail_path, O_RDWR | (create ? O_CREAT : 0),
				       0600);
	if (box->lock_fd < 0 && !(errno == ENOENT && !create)) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("open %s: %s", box->mail_path, strerror(errno));
		(void)fs_unlink_beneath(box->user_dir, box->lock_path);
		return -1;
	}
	if (box->lock_fd >= 0 && flat_fcntl_take(box, deadline, &tries, err_r, error_r) < 0) {
		(void)fs_unlink_beneath(box->user_dir, box->lock_path);
		return -1;
	}
	box->locked = true;
	return 0;
}

void
flat_unlock(struct storage_box *box)
{
	if (!box->locked)
		return;
	if (box->lock_fd >= 0) {
		struct flock fl;

		i_zero(&fl);
		fl.l_type = F_UNLCK;
		fl.l_whence = SEEK_SET;
		(void)fcntl(box->lock_fd, F_SETLK, &fl);
		close(box->lock_fd);
		box->lock_fd = -1;
	}
	(void)fs_unlink_beneath(box->user_dir, box->lock_path);
	box->locked = false;
}
