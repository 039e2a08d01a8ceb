/* detach.c: the log file, the pid file and the background start (see
   detach.h). */
#include "detach.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static int pid_fd = -1;
static char *pid_path;
/* The write end of the pipe the waiting parent reads, in the child. */
static int ready_fd = -1;
static bool in_background;
/* log.file as given, for the parent's last line. */
static char *log_where;

/* The ids server.user and server.group name, for files made as root. */
static int
detach_owner(const char *user, const char *group, uid_t *uid_r, gid_t *gid_r, char **error_r)
{
	const struct passwd *pw = getpwnam(user);
	const struct group *gr;

	if (pw == NULL) {
		*error_r = xasprintf("server.user %s: no such user", user);
		return -1;
	}
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	if (group != NULL) {
		if ((gr = getgrnam(group)) == NULL) {
			*error_r = xasprintf("server.group %s: no such group", group);
			return -1;
		}
		*gid_r = gr->gr_gid;
	}
	return 0;
}

static int
detach_open_pid_file(const char *path, char **error_r)
{
	char old[32];
	ssize_t n;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);

	if (fd < 0) {
		*error_r = xasprintf("pid file %s: %s", path, strerror(errno));
		return -1;
	}
	/* flock(), not fcntl(): the lock belongs to the open file, so the
	   child of detach_start() keeps it when the parent exits. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			n = pread(fd, old, sizeof(old) - 1, 0);
			old[n > 0 ? n : 0] = '\0';
			old[strcspn(old, "\n")] = '\0';
			*error_r = xasprintf("already running as pid %s (pid file %s)",
					     old[0] != '\0' ? old : "?", path);
		} else {
			*error_r = xasprintf("pid file %s: lock: %s", path, strerror(errno));
		}
		close(fd);
		return -1;
	}
	pid_fd = fd;
	pid_path = xstrdup(path);
	return 0;
}

int
detach_open_files(const char *log_file, const char *pid_file, const char *user,
		  const char *group, char **error_r)
{
	uid_t uid;
	gid_t gid;

	if (pid_file != NULL && detach_open_pid_file(pid_file, error_r) < 0)
		return -1;
	if (log_file == NULL)
		return 0;
	if (log_open_file(log_file, error_r) < 0)
		return -1;
	free(log_where);
	log_where = xstrdup(log_file);
	if (geteuid() != 0 || user == NULL)
		return 0;
	if (detach_owner(user, group, &uid, &gid, error_r) < 0)
		return -1;
	if (fchown(log_file_fd(), uid, gid) < 0) {
		*error_r = xasprintf("log.file %s: chown: %s", log_file, strerror(errno));
		return -1;
	}
	return 0;
}

/* The parent of detach_start(): waits for the child's word. */
static void ATTR_NORETURN
detach_wait(const char *prog, pid_t child, int fd)
{
	char c;
	ssize_t n;
	int status;

	do {
		n = read(fd, &c, 1);
	} while (n < 0 && errno == EINTR);
	if (n == 1) {
		if (log_where != NULL)
			printf("%s: running in the background as pid %ld, logging to %s\n", prog,
			       (long)child, log_where);
		else
			printf("%s: running in the background as pid %ld, logging to syslog "
			       "(facility mail: journalctl -t %s)\n",
			       prog, (long)child, prog);
		fflush(stdout);
		_exit(0);
	}
	/* The child ended before it was ready: it said why on stderr. */
	if (waitpid(child, &status, 0) == child && WIFEXITED(status) &&
	    WEXITSTATUS(status) != 0)
		_exit(WEXITSTATUS(status));
	fprintf(stderr, "%s: the server did not start\n", prog);
	_exit(1);
}

int
detach_start(const char *prog, bool foreground, char **error_r)
{
	int fds[2], null_fd;
	pid_t pid;

	if (foreground)
		return 0;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		*error_r = xasprintf("pipe: %s", strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		*error_r = xasprintf("fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid > 0) {
		close(fds[1]);
		detach_wait(prog, pid, fds[0]);
	}
	close(fds[0]);
	ready_fd = fds[1];
	in_background = true;
	if (setsid() < 0 || chdir("/") < 0) {
		*error_r = xasprintf("setsid: %s", strerror(errno));
		return -1;
	}
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd >= 0) {
		(void)dup2(null_fd, STDIN_FILENO);
		close(null_fd);
	}
	if (log_file_fd() < 0)
		log_use_syslog(true);
	return 0;
}

void
detach_ready(void)
{
	char line[32];
	int n, null_fd;

	if (pid_fd >= 0) {
		n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
		if (ftruncate(pid_fd, 0) < 0 || pwrite(pid_fd, line, (size_t)n, 0) != n)
			log_warn("-", "pid file %s: %s", pid_path, strerror(errno));
	}
	if (!in_background || ready_fd < 0)
		return;
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd >= 0) {
		(void)dup2(null_fd, STDOUT_FILENO);
		(void)dup2(null_fd, STDERR_FILENO);
		close(null_fd);
	}
	/* After stdout and stderr are closed: whoever reads the parent's
	   output sees its end once the parent exits. */
	if (write(ready_fd, "R", 1) != 1)
		log_warn("-", "start-up: cannot tell the parent: %s", strerror(errno));
	close(ready_fd);
	ready_fd = -1;
}

void
detach_cleanup(void)
{
	if (pid_fd < 0)
		return;
	if (ftruncate(pid_fd, 0) < 0)
		log_warn("-", "pid file %s: %s", pid_path, strerror(errno));
	if (unlink(pid_path) < 0 && errno != ENOENT)
		log_debug("-", "pid file %s stays (emptied): %s", pid_path, strerror(errno));
	close(pid_fd);
	pid_fd = -1;
	free(pid_path);
	pid_path = NULL;
}
