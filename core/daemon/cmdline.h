/* cmdline.h: the command line the daemons share,

     PROG [-c FILE] [-f] [-t] [port]

   and how they find their configuration. */
#ifndef CMDLINE_H
#define CMDLINE_H

#include "config.h"

/* Used when -c is not given and the file exists (relative to the cwd). */
#define CMDLINE_DEFAULT_CONFIG "etc/imapserver.conf"

struct cmdline {
	const char *prog;          /* "imapserver", "smtpmail" */
	const char *port_name;     /* "imap_port", "smtp_port" */
	const char *port_key;      /* "imap.port", "smtp.port" */
	const char *extra_usage;   /* more usage lines, or NULL */
	const char *config_path;   /* -c FILE, or NULL */
	/* The working folder at start: a daemon chdir()s to "/", and a
	   SIGHUP reload must still find a relative -c FILE (and the default
	   file) where the start found them. */
	char start_dir[4096];
	bool foreground;           /* -f */
	bool test_only;            /* -t */
	int port;                  /* the positional port, or -1 */
};

/* Parses argv into cl (prog, port_name, port_key, extra_usage set by the
   caller). -h prints the usage and exits 0; a mistake prints it and
   exits 1. */
void cmdline_parse(struct cmdline *cl, int argc, char *argv[]);
/* Reads -c FILE; without -c, CMDLINE_DEFAULT_CONFIG if it exists, else
   the built-in defaults with paths relative to the cwd. */
int cmdline_load_config(const struct cmdline *cl, struct config **cfg_r, char **error_r);
/* Puts the positional port (if any) into cfg: smtp.port for a program
   whose port_key is "smtp.port", else imap.port. */
void cmdline_apply_port(const struct cmdline *cl, struct config *cfg);
struct server_gen;
struct watch;
/* For SIGHUP: reads the configuration again (port applied) and starts a
   generation of backends for new sessions, with its log level in force.
   Returns NULL after logging why: the running configuration stays. */
struct server_gen *cmdline_reload(const struct cmdline *cl, struct watch *watch);
/* The name to show in messages about the configuration. */
const char *cmdline_config_name(const struct cmdline *cl);

/* The start the daemons share, after cmdline_parse(): reads the
   configuration (port applied, log level in force), refuses to run as
   root without server.user and makes the missing folders of
   storage.root that user's (privileges.h), and starts the backends with
   watch (may be NULL). Returns 1 with *gen_r to serve; 0 for -t, after
   printing "configuration OK" (exit 0); -1 after printing the error on
   stderr (exit 1). */
int cmdline_start(const struct cmdline *cl, struct watch *watch, struct server_gen **gen_r);
struct event_loop;
/* event.backend: loops made from now on (and loop, if not NULL, with what
   it watches) wait that way. Past select(), the soft limit of open files
   is raised to the hard one (as root, before the privileges go), so
   that limits.max_connections can be reached. Returns 0, or -1 after
   printing why. */
int cmdline_event_setup(const struct cmdline *cl, struct event_loop *loop,
			const struct config *cfg);
/* Still root, before privileges_drop(): opens log.file and the pid file
   (detach_open_files()). Returns 0, or -1 after printing why. */
int cmdline_open_files(const struct cmdline *cl, const struct config *cfg, const char *pid_file);
/* Without -f: goes to the background (detach_start(): the command
   returns once the server serves, saying its pid and where it logs).
   Call detach_ready() once serving. Returns 0, or -1 after printing
   why. */
int cmdline_detach(const struct cmdline *cl);
/* SIGUSR1: opens log.file again (log rotation). */
void cmdline_reopen_log(void);

#endif
