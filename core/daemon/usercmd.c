/* usercmd.c: --user-add, --user-passwd, --user-del (see usercmd.h). */
#include "usercmd.h"
#include "config.h"
#include "privileges.h"
#include "buf.h"
#include "fileio.h"
#include "username.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define USERCMD_DEFAULT_CONFIG "etc/imapserver.conf"
#define USERCMD_PASSWORD_MAX 1024

static const struct {
	const char *opt;
	enum usercmd_op op;
} usercmd_opts[] = {
	{ "--user-add", USERCMD_ADD },
	{ "--user-passwd", USERCMD_PASSWD },
	{ "--user-del", USERCMD_DEL },
};

bool
usercmd_requested(int argc, char *const argv[])
{
	for (int i = 1; i < argc; i++) {
		for (size_t j = 0; j < N_ELEMENTS(usercmd_opts); j++) {
			if (strcmp(argv[i], usercmd_opts[j].opt) == 0)
				return true;
		}
	}
	return false;
}

/* The user name of a line of the file ("name password"), in name_r; false
   for a comment, a blank line or a line without one. */
static bool
line_user(const char *line, char *name_r, size_t size)
{
	size_t len;

	line += strspn(line, " \t");
	if (*line == '#' || *line == '\0' || *line == '\n')
		return false;
	len = strcspn(line, " \t\r\n");
	if (len == 0 || len >= size)
		return false;
	memcpy(name_r, line, len);
	name_r[len] = '\0';
	return true;
}

/* Writes the new file beside path and renames it over path. */
static int
usercmd_replace(const char *path, const struct buf *text, char **error_r)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	struct stat st;
	int fd, ret = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = xasprintf("%s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	/* The new file is the old one's: same owner, same mode. */
	if (stat(path, &st) == 0) {
		if (fchown(fd, st.st_uid, st.st_gid) < 0 && geteuid() == 0) {
			*error_r = xasprintf("%s: chown: %s", tmp, strerror(errno));
			goto out;
		}
		(void)fchmod(fd, st.st_mode & 07777);
	}
	if (fd_write_full(fd, text->data, text->len) < 0 || fsync(fd) < 0) {
		*error_r = xasprintf("%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) < 0) {
		*error_r = xasprintf("rename %s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	close(fd);
	if (ret < 0)
		unlink(tmp);
	free(tmp);
	return ret;
}

int
usercmd_edit(const char *path, enum usercmd_op op, const char *user, const char *hash,
	     char **error_r)
{
	char *lock_path = xasprintf("%s.lock", path);
	char line[4096], name[256];
	struct buf text = BUF_INIT;
	bool found = false;
	FILE *f;
	int lock_fd, ret = -1;

	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0) {
		*error_r = xasprintf("%s: %s", lock_path, strerror(errno));
		if (lock_fd >= 0)
			close(lock_fd);
		free(lock_path);
		return -1;
	}
	f = fopen(path, "re");
	if (f == NULL && (errno != ENOENT || op != USERCMD_ADD)) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		goto out;
	}
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (line_user(line, name, sizeof(name)) && strcmp(name, user) == 0) {
			found = true;
			if (op == USERCMD_ADD)
				break;
			if (op == USERCMD_PASSWD)
				buf_printf(&text, "%s %s\n", user, hash);
			continue;
		}
		buf_append_str(&text, line);
		if (line[strlen(line) - 1] != '\n')
			buf_append_c(&text, '\n');
	}
	if (f != NULL && ferror(f)) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		goto out;
	}
	if (op == USERCMD_ADD && found) {
		*error_r = xasprintf("%s: user '%s' exists already (--user-passwd changes the "
				     "password)", path, user);
		goto out;
	}
	if (op != USERCMD_ADD && !found) {
		*error_r = xasprintf("%s: no user '%s'", path, user);
		goto out;
	}
	if (op == USERCMD_ADD)
		buf_printf(&text, "%s %s\n", user, hash);
	ret = usercmd_replace(path, &text, error_r);
out:
	if (f != NULL)
		fclose(f);
	/* It held the hashes: no copy left behind. */
	if (text.data != NULL)
		explicit_bzero(text.data, text.cap);
	buf_free(&text);
	close(lock_fd);
	free(lock_path);
	return ret;
}

/* One line from fd into buf (without the line end); echo off when fd is
   a terminal. Returns 0, or -1 at the end of the input. */
static int
read_password(const char *prompt, char *buf, size_t size)
{
	struct termios old, noecho;
	bool tty = isatty(STDIN_FILENO) != 0;
	size_t len = 0;
	char c;
	ssize_t n;

	if (tty) {
		fputs(prompt, stderr);
		fflush(stderr);
		if (tcgetattr(STDIN_FILENO, &old) == 0) {
			noecho = old;
			noecho.c_lflag &= ~(tcflag_t)ECHO;
			(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
		}
	}
	while ((n = read(STDIN_FILENO, &c, 1)) == 1 && c != '\n') {
		if (len + 1 < size)
			buf[len++] = c;
	}
	buf[len] = '\0';
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (tty) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	return n == 1 || len > 0 ? 0 : -1;
}

/* The new password, asked twice on a terminal; a yescrypt hash of it. */
static char *
usercmd_hash(char **error_r)
{
	char pw[USERCMD_PASSWORD_MAX + 2], again[USERCMD_PASSWORD_MAX + 2];
	struct crypt_data *data;
	char *setting, *hash = NULL;

	if (read_password("New password: ", pw, sizeof(pw)) < 0) {
		*error_r = xstrdup("no password given");
		return NULL;
	}
	if (isatty(STDIN_FILENO) &&
	    (read_password("Again: ", again, sizeof(again)) < 0 || strcmp(pw, again) != 0)) {
		explicit_bzero(pw, sizeof(pw));
		explicit_bzero(again, sizeof(again));
		*error_r = xstrdup("the two passwords differ");
		return NULL;
	}
	explicit_bzero(again, sizeof(again));
	if (pw[0] == '\0' || strlen(pw) > USERCMD_PASSWORD_MAX) {
		explicit_bzero(pw, sizeof(pw));
		*error_r = xasprintf("a password must have 1 to %d characters",
				     USERCMD_PASSWORD_MAX);
		return NULL;
	}
	setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
	data = xcalloc(1, sizeof(*data));
	if (setting != NULL) {
		const char *h = crypt_r(pw, setting, data);

		if (h != NULL && h[0] == '$')
			hash = xstrdup(h);
	}
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(data, sizeof(*data));
	free(data);
	free(setting);
	if (hash == NULL)
		*error_r = xasprintf("yescrypt hashing failed: %s", strerror(errno));
	return hash;
}

int
usercmd_main(int argc, char *argv[])
{
	const char *path = NULL, *user = NULL;
	enum usercmd_op op = USERCMD_ADD;
	struct config *cfg = NULL;
	char *error = NULL, *hash = NULL;
	int status = 1;

	for (int i = 1; i < argc; i++) {
		bool known = false;

		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[++i];
			continue;
		}
		for (size_t j = 0; j < N_ELEMENTS(usercmd_opts); j++) {
			if (strcmp(argv[i], usercmd_opts[j].opt) == 0 && i + 1 < argc &&
			    user == NULL) {
				op = usercmd_opts[j].op;
				user = argv[++i];
				known = true;
			}
		}
		if (!known) {
			fprintf(stderr, "usage: imapserver [-c FILE] --user-add|--user-passwd|"
					"--user-del USER\n");
			return 1;
		}
	}
	if (!username_is_valid(user)) {
		fprintf(stderr, "imapserver: '%s' is not a valid user name (no '/', no leading "
				"'.', no blanks or control characters)\n", user);
		return 1;
	}
	if (strpbrk(user, " \t#") != NULL) {
		fprintf(stderr, "imapserver: '%s': a user name cannot hold blanks or '#'\n", user);
		return 1;
	}
	if (path == NULL && access(USERCMD_DEFAULT_CONFIG, F_OK) == 0)
		path = USERCMD_DEFAULT_CONFIG;
	if (path == NULL) {
		fprintf(stderr, "imapserver: no configuration (give -c FILE): the users file is "
				"its auth.file\n");
		return 1;
	}
	if (config_load(path, &cfg, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		free(error);
		return 1;
	}
	if (strcmp(cfg->auth_backend->name, "passwd-file") != 0) {
		fprintf(stderr, "imapserver: %s: auth.backend is \"%s\": users are managed "
				"there, not in a users file\n", path, cfg->auth_backend->name);
		goto out;
	}
	if (op != USERCMD_DEL && (hash = usercmd_hash(&error)) == NULL) {
		fprintf(stderr, "imapserver: %s\n", error);
		free(error);
		goto out;
	}
	if (usercmd_edit(cfg->auth.file, op, user, hash, &error) < 0) {
		fprintf(stderr, "imapserver: %s\n", error);
		free(error);
		goto out;
	}
	printf("%s: %s %s\n", cfg->auth.file, user,
	       op == USERCMD_ADD ? "added" : op == USERCMD_PASSWD ? "has a new password" :
	       "deleted");
	status = 0;
out:
	free(hash);
	config_free(&cfg);
	return status;
}
