/* log.c: leveled logging to stderr or syslog, one line per call, each
   with the session id. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_level = LOG_LEVEL_INFO;
static const char *log_ident = "imapserver";
static bool log_syslog;
/* log.file: its path and descriptor. The descriptor number never
   changes once open (a reopen dup2()s over it), so a line written by a
   job thread during a reopen goes to the old file or the new one, whole. */
static char *log_path;
static int log_fd = -1;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

int
log_level_parse(const char *name, enum log_level *level_r)
{
	for (size_t i = 0; i < N_ELEMENTS(level_names); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

void
log_set_ident(const char *ident)
{
	log_ident = ident;
}

void
log_use_syslog(bool use)
{
	if (use && !log_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	log_syslog = use;
}

static int
log_open_path(const char *path, char **error_r)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

	if (fd < 0)
		*error_r = xasprintf("log.file %s: %s", path, strerror(errno));
	return fd;
}

int
log_open_file(const char *path, char **error_r)
{
	int fd = log_open_path(path, error_r);

	if (fd < 0)
		return -1;
	if (log_fd >= 0) {
		if (dup2(fd, log_fd) < 0) {
			*error_r = xasprintf("log.file %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
	} else {
		log_fd = fd;
	}
	free(log_path);
	log_path = xstrdup(path);
	return 0;
}

int
log_file_fd(void)
{
	return log_fd;
}

int
log_reopen_file(char **error_r)
{
	char *path;
	int ret;

	if (log_path == NULL)
		return 0;
	path = xstrdup(log_path);
	ret = log_open_file(path, error_r);
	free(path);
	return ret;
}

static void
log_vmsg(enum log_level level, const char *sid, const char *fmt, va_list args)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[2048];
	int n;

	n = vsnprintf(line, sizeof(line), fmt, args);
	if (n < 0)
		return;
	/* Control characters from clients must not forge log lines. */
	for (char *p = line; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	if (sid == NULL)
		sid = "-";
	if (log_syslog && log_fd < 0) {
		syslog(prio[level], "%s %s: %s", sid, level_names[level], line);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char stamp[32], whole[2300];
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	if (log_fd < 0) {
		fprintf(stderr, "%s.%03ld %s[%s] %s: %s\n", stamp, ts.tv_nsec / 1000000,
			log_ident, sid, level_names[level], line);
		return;
	}
	/* The file has the process id too: two programs share it. */
	n = snprintf(whole, sizeof(whole), "%s.%03ld %s(%ld)[%s] %s: %s\n", stamp,
		     ts.tv_nsec / 1000000, log_ident, (long)getpid(), sid, level_names[level],
		     line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(whole)) {
		n = (int)sizeof(whole) - 1;
		whole[n - 1] = '\n';
	}
	/* A line lost to a full disk cannot be logged anywhere better. */
	if (write(log_fd, whole, (size_t)n) < 0)
		return;
}

void
log_msg(enum log_level level, const char *sid, const char *fmt, ...)
{
	va_list args;

	if (level > log_level)
		return;
	va_start(args, fmt);
	log_vmsg(level, sid, fmt, args);
	va_end(args);
}

void
fatal(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	log_vmsg(LOG_LEVEL_ERROR, "-", fmt, args);
	va_end(args);
	exit(1);
}
