/* cmdline.c: the daemons' shared command line (see cmdline.h). */
#include "cmdline.h"
#include "log.h"
#include "aliases.h"
#include "auth.h"
#include "detach.h"
#include "privileges.h"
#include "server_gen.h"
#include "event.h"
#include "connection.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

static void ATTR_NORETURN
cmdline_usage(const struct cmdline *cl, int status)
{
	FILE *out = status == 0 ? stdout : stderr;

	fprintf(out,
		"usage: %s [-c FILE] [-f] [-t] [%s]\n"
		"  -c FILE   configuration file (default %s if present, else built-in defaults)\n"
		"  -f        stay in the foreground, log to stderr\n"
		"  -t        check the configuration and exit\n"
		"  %-9s port to listen on (overrides %s)\n",
		cl->prog, cl->port_name, CMDLINE_DEFAULT_CONFIG, cl->port_name, cl->port_key);
	if (cl->extra_usage != NULL)
		fputs(cl->extra_usage, out);
	exit(status);
}

void
cmdline_parse(struct cmdline *cl, int argc, char *argv[])
{
	int opt;

	cl->config_path = NULL;
	cl->foreground = cl->test_only = false;
	cl->port = -1;
	if (getcwd(cl->start_dir, sizeof(cl->start_dir)) == NULL)
		strcpy(cl->start_dir, "/");
	while ((opt = getopt(argc, argv, "c:fth")) != -1) {
		switch (opt) {
		case 'c':
			cl->config_path = optarg;
			break;
		case 'f':
			cl->foreground = true;
			break;
		case 't':
			cl->test_only = true;
			break;
		case 'h':
			cmdline_usage(cl, 0);
		default:
			cmdline_usage(cl, 1);
		}
	}
	if (optind < argc) {
		uint64_t port;

		if (optind + 1 != argc || str_to_u64(argv[optind], 65535, &port) < 0) {
			fprintf(stderr, "%s: invalid port '%s' (0..65535)\n", cl->prog, argv[optind]);
			cmdline_usage(cl, 1);
		}
		cl->port = (int)port;
	}
}

/* path as seen from the folder the program started in. */
static char *
cmdline_path(const struct cmdline *cl, const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	return xasprintf("%s/%s", cl->start_dir, path);
}

int
cmdline_load_config(const struct cmdline *cl, struct config **cfg_r, char **error_r)
{
	char *path;
	int ret;

	path = cmdline_path(cl, cl->config_path != NULL ? cl->config_path :
							 CMDLINE_DEFAULT_CONFIG);
	if (cl->config_path != NULL || access(path, F_OK) == 0) {
		ret = config_load(path, cfg_r, error_r);
		/* Messages name the file as the user wrote it. */
		if (ret < 0 && cl->config_path != NULL && cl->config_path[0] != '/' &&
		    strncmp(*error_r, path, strlen(path)) == 0) {
			char *msg = xasprintf("%s%s", cl->config_path, *error_r + strlen(path));
			free(*error_r);
			*error_r = msg;
		}
		free(path);
		return ret;
	}
	free(path);
	*cfg_r = config_defaults(cl->start_dir);
	return 0;
}

const char *
cmdline_config_name(const struct cmdline *cl)
{
	if (cl->config_path != NULL)
		return cl->config_path;
	char *path = cmdline_path(cl, CMDLINE_DEFAULT_CONFIG);
	bool exists = access(path, F_OK) == 0;

	free(path);
	return exists ? CMDLINE_DEFAULT_CONFIG : "(built-in defaults)";
}

void
cmdline_apply_port(const struct cmdline *cl, struct config *cfg)
{
	if (cl->port < 0)
		return;
	if (strcmp(cl->port_key, "smtp.port") == 0)
		cfg->smtp_port = (unsigned)cl->port;
	else
		cfg->imap_port = (unsigned)cl->port;
}

struct server_gen *
cmdline_reload(const struct cmdline *cl, struct watch *watch)
{
	struct config *cfg = NULL;
	struct server_gen *gen;
	char *error = NULL;

	if (cmdline_load_config(cl, &cfg, &error) < 0) {
		log_error("-", "reload failed, keeping the running configuration: %s", error);
		free(error);
		return NULL;
	}
	cmdline_apply_port(cl, cfg);
	gen = server_gen_new(cfg, watch, &error);
	if (gen == NULL) {
		log_error("-", "reload failed, keeping the running configuration: %s", error);
		free(error);
		return NULL;
	}
	log_set_level(gen->cfg->log_level);
	/* log.file is opened again (after a rotation), or the new one. */
	if (gen->cfg->log_file != NULL && log_open_file(gen->cfg->log_file, &error) < 0) {
		log_warn("-", "%s; still logging where it did", error);
		free(error);
	}
	return gen;
}

/* A certificate that expires soon is worth a word at start and in -t. */
static void
cmdline_check_tls(const struct cmdline *cl, const struct config *cfg)
{
	char *warning = NULL, *error = NULL;

	if (!config_has_tls(cfg))
		return;
	if (tls_server_check(&cfg->tls, &warning, &error) < 0) {
		/* Loaded a moment ago: only a race with the files. */
		warning = error;
	}
	if (warning == NULL)
		return;
	if (cl->test_only)
		fprintf(stderr, "%s: warning: %s\n", cl->prog, warning);
	else
		log_warn("-", "%s", warning);
	free(warning);
}

void
cmdline_reopen_log(void)
{
	char *error = NULL;

	if (log_reopen_file(&error) < 0) {
		log_warn("-", "%s; still logging to the old file", error);
		free(error);
		return;
	}
	log_info("-", "log file reopened");
}

int
cmdline_open_files(const struct cmdline *cl, const struct config *cfg, const char *pid_file)
{
	char *error = NULL;

	if (detach_open_files(cfg->log_file, pid_file, cfg->server_user, cfg->server_group,
			      &error) < 0) {
		fprintf(stderr, "%s: %s\n", cl->prog, error);
		free(error);
		return -1;
	}
	return 0;
}

int
cmdline_detach(const struct cmdline *cl)
{
	char *error = NULL;

	if (detach_start(cl->prog, cl->foreground, &error) < 0) {
		fprintf(stderr, "%s: %s\n", cl->prog, error);
		free(error);
		return -1;
	}
	return 0;
}

/* RFC 5321 4.5.1: every SMTP receiver accepts mail for "postmaster". A
   server that would refuse it (no such user, no alias) is worth a word
   at start and in -t. */
static void
cmdline_check_postmaster(const struct cmdline *cl, const struct server_gen *gen)
{
	const char *what = "no user 'postmaster' and no smtp.aliases entry for it: "
			   "RCPT TO:<postmaster> is refused (RFC 5321 4.5.1 asks every SMTP "
			   "server to take it); add 'postmaster: USER' to smtp.aliases";

	if (strcmp(cl->prog, "smtpmail") != 0 && !gen->cfg->smtp_enabled)
		return;
	if (aliases_lookup(gen->cfg->smtp_aliases, "postmaster") != NULL ||
	    auth_user_exists(&gen->auth, "-", "postmaster") != 0)
		return;
	if (cl->test_only)
		fprintf(stderr, "%s: warning: %s\n", cl->prog, what);
	else
		log_warn("-", "%s", what);
}

int
cmdline_start(const struct cmdline *cl, struct watch *watch, struct server_gen **gen_r)
{
	struct config *cfg = NULL;
	char *error = NULL;

	*gen_r = NULL;
	if (cmdline_load_config(cl, &cfg, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		free(error);
		return -1;
	}
	cmdline_apply_port(cl, cfg);
	log_set_level(cfg->log_level);
	/* Before any backend starts, -t included: never mail as root, and
	   what is created for the store as root is the server user's. */
	if (privileges_check_start(cfg->server_user, cfg->path, &error) < 0 ||
	    privileges_prepare_folder(cfg->storage.root, cfg->server_user, cfg->server_group,
				      &error) < 0) {
		fprintf(stderr, "%s: %s\n", cl->prog, error);
		free(error);
		config_free(&cfg);
		return -1;
	}
	*gen_r = server_gen_new(cfg, watch, &error);
	if (*gen_r == NULL) {
		fprintf(stderr, "%s: %s\n", cmdline_config_name(cl), error);
		free(error);
		return -1;
	}
	cmdline_check_tls(cl, (*gen_r)->cfg);
	cmdline_check_postmaster(cl, *gen_r);
	if (cl->test_only) {
		printf("%s: configuration OK\n",
		       (*gen_r)->cfg->path != NULL ? (*gen_r)->cfg->path : "(built-in defaults)");
		server_gen_unref(gen_r);
		return 0;
	}
	return 1;
}

int
cmdline_event_setup(const struct cmdline *cl, struct event_loop *loop, const struct config *cfg)
{
	struct rlimit rl;
	int ret = loop != NULL ? event_loop_set_backend(loop, cfg->event_backend) :
				 event_backend_set(cfg->event_backend);

	if (ret < 0) {
		fprintf(stderr, "%s: event.backend %s: %s\n", cl->prog, cfg->event_backend,
			strerror(errno));
		return -1;
	}
	/* The tests' debug switch: a breach of the watch invariant aborts. */
	if (getenv("IMAPSERVER_STRICT") != NULL && strcmp(getenv("IMAPSERVER_STRICT"), "1") == 0)
		connection_watch_strict = true;
	if (strcmp(cfg->event_backend, "select") == 0)
		return 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_debug("-", "open files limit raised from %llu to %llu",
				  (unsigned long long)was, (unsigned long long)rl.rlim_cur);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)cfg->max_connections + 64) {
		log_warn("-", "limits.max_connections is %u but this process may open only %llu "
			      "files (raise LimitNOFILE or ulimit -n)",
			 cfg->max_connections, (unsigned long long)rl.rlim_cur);
	}
	return 0;
}
