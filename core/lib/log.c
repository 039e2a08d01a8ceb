/* log.c: leveled logging to stderr or syslog, one line per call, each
   with the session id. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <time.h>

static enum log_level log_level = LOG_LEVEL_INFO;
static const char *log_ident = "imapserver";
static bool log_syslog;

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
	if (log_syslog) {
		syslog(prio[level], "%s %s: %s", sid, level_names[level], line);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld %s[%s] %s: %s\n", stamp, ts.tv_nsec / 1000000, log_ident,
		sid, level_names[level], line);
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
