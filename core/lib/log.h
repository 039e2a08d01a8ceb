/* log.h: leveled logging. Every line carries a session id ("-" outside a
   session). Passwords must never be passed to these functions. */
#ifndef LOG_H
#define LOG_H

#include "lib.h"

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Parses "error"|"warn"|"info"|"debug". Returns 0 or -1. */
int log_level_parse(const char *name, enum log_level *level_r);
void log_set_level(enum log_level level);
/* Program name shown in each line, e.g. "imapserver". */
void log_set_ident(const char *ident);
/* Logs to stderr (the default) or to syslog; a log file (log_open_file())
   comes before both. */
void log_use_syslog(bool syslog);
/* From now on every line is appended to path (log.file), created mode
   0640 if missing. Lines are written whole with one write(2) in
   O_APPEND mode, so that several processes (imapserver and smtpmail)
   can share one file. Returns 0, or -1 with *error_r (nothing
   changes). */
int log_open_file(const char *path, char **error_r);
/* The descriptor of the log file, or -1 (for fchown() after creating
   it as root). */
int log_file_fd(void);
/* Opens the log file's path again (after rotation: SIGUSR1 and SIGHUP),
   in place of the open one. Returns 0 (also without a log file), or -1
   with *error_r: the old file stays in use. */
int log_reopen_file(char **error_r);

void log_msg(enum log_level level, const char *sid, const char *fmt, ...) ATTR_FORMAT(3, 4);

#define log_error(sid, ...) log_msg(LOG_LEVEL_ERROR, sid, __VA_ARGS__)
#define log_warn(sid, ...) log_msg(LOG_LEVEL_WARN, sid, __VA_ARGS__)
#define log_info(sid, ...) log_msg(LOG_LEVEL_INFO, sid, __VA_ARGS__)
#define log_debug(sid, ...) log_msg(LOG_LEVEL_DEBUG, sid, __VA_ARGS__)

/* Only at start-up or for impossible states: logs and exits(1). */
void fatal(const char *fmt, ...) ATTR_FORMAT(1, 2) ATTR_NORETURN;

#endif
