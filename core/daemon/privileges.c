/* privileges.c: dropping root after start-up (see privileges.h). */
#include "privileges.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* uid and primary gid of user. */
static int
privileges_lookup_user(const char *user, uid_t *uid_r, gid_t *gid_r, char **error_r)
{
	struct passwd pw, *res = NULL;
	char buf[16384];
	int ret = getpwnam_r(user, &pw, buf, sizeof(buf), &res);

	if (ret != 0) {
		*error_r = xasprintf("server.user: cannot look up '%s': %s", user, strerror(ret));
		return -1;
	}
	if (res == NULL) {
		*error_r = xasprintf("server.user: unknown user '%s'", user);
		return -1;
	}
	*uid_r = pw.pw_uid;
	*gid_r = pw.pw_gid;
	return 0;
}

static int
privileges_lookup_group(const char *group, gid_t *gid_r, char **error_r)
{
	struct group gr, *res = NULL;
	char buf[16384];
	int ret = getgrnam_r(group, &gr, buf, sizeof(buf), &res);

	if (ret != 0) {
		*error_r = xasprintf("server.group: cannot look up '%s': %s", group, strerror(ret));
		return -1;
	}
	if (res == NULL) {
		*error_r = xasprintf("server.group: unknown group '%s'", group);
		return -1;
	}
	*gid_r = gr.gr_gid;
	return 0;
}

/* The ids privileges_drop() switches to: user's uid, and group's gid or
   else the user's primary one. */
static int
privileges_lookup(const char *user, const char *group, uid_t *uid_r, gid_t *gid_r,
		  char **error_r)
{
	if (privileges_lookup_user(user, uid_r, gid_r, error_r) < 0)
		return -1;
	if (group != NULL && privileges_lookup_group(group, gid_r, error_r) < 0)
		return -1;
	return 0;
}

/* After the switch: every id is the new one and none of the ways back
   to root works. */
static int
privileges_check(uid_t uid, gid_t gid, char **error_r)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0) {
		*error_r = xasprintf("getresuid: %s", strerror(errno));
		return -1;
	}
	if (ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid ||
	    sgid != gid) {
		*error_r = xstrdup("the user and group ids did not all change");
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0) {
		*error_r = xstrdup("root could be regained after dropping privileges");
		return -1;
	}
	if (gid != 0 && (setgid(0) == 0 || setegid(0) == 0)) {
		*error_r = xstrdup("group root could be regained after dropping privileges");
		return -1;
	}
	return 0;
}

int
privileges_check_start(const char *user, const char *config_path, char **error_r)
{
	if (geteuid() != 0 || user != NULL)
		return 0;
	if (config_path != NULL) {
		*error_r = xasprintf("started as root without server.user: mail is never read or "
				     "written as root; set server.user (an unprivileged user that "
				     "owns storage.root) in %s, or run as a normal user",
				     config_path);
	} else {
		*error_r = xstrdup("started as root without server.user: mail is never read or "
				   "written as root; set server.user (an unprivileged user that "
				   "owns storage.root) in a config file given with -c FILE, or run "
				   "as a normal user");
	}
	return -1;
}

int
privileges_drop(const char *user, const char *group, char **error_r)
{
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0) {
		if (user != NULL || group != NULL) {
			log_info("-", "not started as root: server.user/server.group ignored; "
				      "running as uid %ld, gid %ld", (long)geteuid(), (long)getegid());
		}
		return 0;
	}
	if (user == NULL) {
		if (group != NULL) {
			*error_r = xstrdup("server.group is set but server.user is not");
			return -1;
		}
		*error_r = xstrdup("started as root without server.user: mail is never read or "
				   "written as root; set server.user or run as a normal user");
		return -1;
	}
	if (privileges_lookup(user, group, &uid, &gid, error_r) < 0)
		return -1;
	if (uid == 0) {
		*error_r = xasprintf("server.user '%s' is root (uid 0): name an unprivileged user",
				     user);
		return -1;
	}
	/* Groups first: once the uid is not 0 they cannot change any more. */
	if (setgroups(1, &gid) < 0) {
		*error_r = xasprintf("setgroups(%ld): %s", (long)gid, strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) < 0) {
		*error_r = xasprintf("setgid(%ld): %s", (long)gid, strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) < 0) {
		*error_r = xasprintf("setuid(%ld): %s", (long)uid, strerror(errno));
		return -1;
	}
	if (privileges_check(uid, gid, error_r) < 0)
		return -1;
	log_info("-", "dropped root: running as user %s (uid %ld), group %s (gid %ld)", user,
		 (long)uid, group != NULL ? group : "(primary)", (long)gid);
	return 0;
}

/* One level of privileges_prepare_folder(): name in the folder dirfd,
   created if missing and then handed to user (uid, gid). Returns the opened
   folder, or -1 with *error_r naming path (the folder's full path). */
static int
privileges_folder_level(int dirfd, const char *name, const char *path, const char *user,
			uid_t uid, gid_t gid, char **error_r)
{
	struct stat st;
	bool made;
	int fd;

	made = mkdirat(dirfd, name, 0700) == 0;
	if (!made && errno != EEXIST) {
		*error_r = xasprintf("storage.root: cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	/* An existing level may be an operator's link (/var/mail ->
	   /srv/mail); the one made here must still be what was made. */
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (made ? O_NOFOLLOW : 0));
	if (fd < 0) {
		*error_r = xasprintf("storage.root: %s: %s", path, strerror(errno));
		return -1;
	}
	if (!made)
		return fd;
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid()) {
		*error_r = xasprintf("storage.root: %s changed while it was being created", path);
		close(fd);
		return -1;
	}
	if (fchown(fd, uid, gid) < 0) {
		*error_r = xasprintf("storage.root: cannot give %s to uid %ld: %s", path, (long)uid,
				     strerror(errno));
		close(fd);
		return -1;
	}
	log_info("-", "storage.root: created %s for %s", path, user);
	return fd;
}

/* Can uid (with gid its only group, as after privileges_drop()) write
   in and search the folder path? Asked of the kernel in a child that
   takes those ids, so that ACLs and every folder above count as they
   will. Returns 0 (yes), or an errno value (no, or the check failed). */
static int
privileges_user_access(const char *path, uid_t uid, gid_t gid)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return errno;
	if (pid == 0) {
		if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			_exit(EPERM);
		_exit(access(path, W_OK | X_OK) == 0 ? 0 : (errno & 0xff));
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return errno;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
}

int
privileges_prepare_folder(const char *path, const char *user, const char *group,
			  char **error_r)
{
	uid_t uid;
	gid_t gid;
	char *copy;
	int fd, err, ret = 0;

	if (geteuid() != 0 || user == NULL || path == NULL || path[0] != '/')
		return 0;
	if (privileges_lookup(user, group, &uid, &gid, error_r) < 0)
		return -1;
	fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = xasprintf("storage.root: open /: %s", strerror(errno));
		return -1;
	}
	/* From the top down, copy cut after each level in turn: names the
	   level in messages. */
	copy = xstrdup(path);
	for (size_t start = 1, end; copy[start - 1] != '\0'; start = end + 1) {
		int next;

		end = start + strcspn(copy + start, "/");
		if (end == start)
			continue;       /* "//" or a trailing '/' */
		char saved = copy[end];
		copy[end] = '\0';
		next = privileges_folder_level(fd, copy + start, copy, user, uid, gid, error_r);
		copy[end] = saved;
		close(fd);
		fd = next;
		if (fd < 0) {
			ret = -1;
			break;
		}
		if (saved == '\0')
			break;
	}
	if (fd >= 0)
		close(fd);
	free(copy);
	if (ret == 0 && (err = privileges_user_access(path, uid, gid)) != 0) {
		*error_r = xasprintf("storage.root: %s cannot write in %s (%s): give the folder "
				     "to that user (chown -R %s %s), or set another storage.root",
				     user, path, strerror(err), user, path);
		ret = -1;
	}
	return ret;
}
