/* imapserver: the IMAP4rev1 server.

   imapserver [-c FILE] [-f] [-t] [imap_port]

   One process, one select() loop. The process-wide state (the loop, the
   server, the config path) lives here and nowhere else. */
#include "cmdline.h"
#include "config.h"
#include "detach.h"
#include "event.h"
#include "imap_server.h"
#include "job.h"
#include "log.h"
#include "addr_table.h"
#include "migrate.h"
#include "initdb.h"
#include "imap_status.h"
#include "status.h"
#include "usercmd.h"
#include "net.h"
#include "smtp_listen.h"
#include "smtp_server.h"
#include "privileges.h"
#include "watch.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static struct event_loop *loop;
static struct watch *watch;
static struct imap_server *server;
static struct cmdline cl = {
	.prog = "imapserver",
	.port_name = "imap_port",
	.port_key = "imap.port",
	.extra_usage = "       imapserver [-c FILE] --migrate USER|--all --from BACKEND --to BACKEND\n"
		       "  copies USER's mailboxes from one storage backend to another\n"
		       "       imapserver [-c FILE] --user-add|--user-passwd|--user-del USER\n"
		       "  manages the users of auth.file (passwd-file), passwords as yescrypt\n"
		       "       imapserver [-c FILE] --init-db\n"
		       "  creates or upgrades the database of storage.backend \"pgsql\"\n"
		       "       imapserver [-c FILE] --status\n"
		       "  shows the running server's sessions, users and open mailboxes\n",
};
/* The SMTP listener hosted in this process when smtp.enabled (else NULL). */
static struct smtp_server *smtp;
/* imapserver --status answers here (status.h). */
static struct status_socket *status_sock;
static time_t started_at;
/* The mailboxes' heavy operations (a flat expunge) run in these. */
static struct job_queue *jobs;
#define IMAPSERVER_JOB_THREADS 2

/* Privilege drop: runs once every listening socket is bound and the
   backends (the PAM helper among them, which keeps root) are started,
   before the loop serves anyone. Exits on failure: a server that was
   asked to drop root must not serve as root. */
static void
drop_privileges(const struct config *cfg)
{
	char *error = NULL;

	if (privileges_drop(cfg->server_user, cfg->server_group, &error) < 0) {
		fprintf(stderr, "imapserver: %s\n", error);
		free(error);
		exit(1);
	}
}

static void
on_terminate(void *ctx)
{
	log_info("-", "shutting down");
	event_loop_stop(loop);
}

/* The status report: the process, then the sessions (imap_status.h). */
static void
write_status(void *ctx, struct buf *out)
{
	long up = (long)(time(NULL) - started_at);

	buf_printf(out, "imapserver pid %ld, up %ldd %02ld:%02ld:%02ld, storage %s, auth %s\n",
		   (long)getpid(), up / 86400, up / 3600 % 24, up / 60 % 60, up % 60,
		   server->gen->storage.backend->name, server->gen->auth.backend->name);
	imap_server_status(server, out);
	if (smtp != NULL)
		buf_printf(out, "smtp sessions: %zu\n", smtp_server_session_count(smtp));
}

static void
on_reopen_log(void *ctx)
{
	cmdline_reopen_log();
}

static void
on_reload(void *ctx)
{
	struct server_gen *gen = cmdline_reload(&cl, watch);

	if (gen == NULL)
		return;
	if (strcmp(gen->cfg->event_backend, server->gen->cfg->event_backend) != 0)
		log_warn("-", "event.backend changes need a restart; still using %s",
			 event_backend_name());
	if (strcmp(gen->cfg->imap_address, server->gen->cfg->imap_address) != 0 ||
	    gen->cfg->imap_port != server->gen->cfg->imap_port ||
	    gen->cfg->imap_tls_port != server->gen->cfg->imap_tls_port)
		log_warn("-", "imap.address/imap.port/imap.tls_port changes need a restart; still "
			      "listening on the old address");
	/* SMTP: new sessions deliver through the new generation's hub. */
	if (smtp != NULL) {
		const struct config *old = server->gen->cfg;

		if (!gen->cfg->smtp_enabled)
			log_warn("-", "smtp.enabled changes need a restart; SMTP keeps running");
		if (strcmp(gen->cfg->smtp_address, old->smtp_address) != 0 ||
		    gen->cfg->smtp_port != old->smtp_port ||
		    gen->cfg->smtp_submission_port != old->smtp_submission_port ||
		    gen->cfg->smtp_submissions_port != old->smtp_submissions_port)
			log_warn("-", "smtp.address/smtp.port/smtp.submission_port/"
				      "smtp.submissions_port changes need a restart; still listening "
				      "on the old ports");
		smtp_server_set_gen(smtp, gen);
	} else if (gen->cfg->smtp_enabled) {
		log_warn("-", "smtp.enabled changes need a restart; SMTP stays off");
	}
	imap_server_set_gen(server, gen);
	server_gen_unref(&gen);
	log_info("-", "configuration reloaded; new sessions use it");
}

int
main(int argc, char *argv[])
{
	struct server_gen *gen;
	char *error = NULL, *status_path;
	struct net_listen_set plain = { .count = 0 }, tls = { .count = 0 };
	int ret;
	struct smtp_listen smtp_l;

	log_set_ident("imapserver");
	/* imapserver [-c FILE] --migrate USER --from NAME --to NAME: see migrate.h */
	if (migrate_requested(argc, argv))
		return migrate_main(argc, argv);
	/* --init-db: see initdb.h */
	if (initdb_requested(argc, argv))
		return initdb_main(argc, argv);
	/* --status: see status.h */
	if (status_requested(argc, argv))
		return status_main(argc, argv);
	/* --user-add/--user-passwd/--user-del USER: see usercmd.h */
	if (usercmd_requested(argc, argv))
		return usercmd_main(argc, argv);
	cmdline_parse(&cl, argc, argv);
	loop = event_loop_new();
	watch = cl.test_only ? NULL : watch_new(loop);
	ret = cmdline_start(&cl, watch, &gen);
	if (ret <= 0) {
		watch_free(&watch);
		event_loop_free(&loop);
		return ret < 0 ? 1 : 0;
	}
	if (cmdline_event_setup(&cl, loop, gen->cfg) < 0) {
		server_gen_unref(&gen);
		watch_free(&watch);
		event_loop_free(&loop);
		return 1;
	}
	/* Before the ports: a second start on the same pid file says so. */
	if (cmdline_open_files(&cl, gen->cfg, gen->cfg->pid_file) < 0) {
		server_gen_unref(&gen);
		watch_free(&watch);
		event_loop_free(&loop);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* The port on every address of imap.address. */
	if (net_listen_set_open(&plain, gen->cfg->imap_address, gen->cfg->imap_port,
				&error) < 0) {
		fprintf(stderr, "imapserver: %s\n", error);
		free(error);
		goto fail;
	}
	/* Implicit TLS (the 993 role, RFC 8314) beside the plain port. */
	if (gen->cfg->imap_tls_port != 0) {
		if (net_listen_set_open(&tls, gen->cfg->imap_address, gen->cfg->imap_tls_port,
					&error) < 0) {
			fprintf(stderr, "imapserver: imap.tls_port: %s\n", error);
			free(error);
			goto fail;
		}
	}
	/* SMTP in the same loop (smtp.enabled): listen now (smtp.port and
	   the submission ports), so that a busy port is a start-up error;
	   logged after the IMAP lines. */
	smtp_listen_init(&smtp_l);
	if (gen->cfg->smtp_enabled && smtp_listen_open(&smtp_l, gen->cfg, &error) < 0) {
		fprintf(stderr, "imapserver: smtp: %s\n", error);
		free(error);
		goto fail;
	}
	/* Every listening socket must be bound above this line. */
	drop_privileges(gen->cfg);
	/* Signals are taken from here on, and handled once the loop runs. */
	if (event_signal_add(loop, SIGTERM, on_terminate, NULL) < 0 ||
	    event_signal_add(loop, SIGINT, on_terminate, NULL) < 0 ||
	    event_signal_add(loop, SIGHUP, on_reload, NULL) < 0 ||
	    event_signal_add(loop, SIGUSR1, on_reopen_log, NULL) < 0)
		fatal("signal setup: %s", strerror(errno));
	/* Logged once privileges are dropped and signals taken: whoever
	   waits for this line finds the server as it will serve. */
	log_info("-", "listening on %s", plain.bound);
	if (tls.count > 0)
		log_info("-", "imaps listening on %s", tls.bound);
	smtp_listen_log(&smtp_l, "smtp listening on");
	if (cmdline_detach(&cl) < 0)
		return 1;
	if ((jobs = job_queue_new(loop, IMAPSERVER_JOB_THREADS, &error)) == NULL) {
		fprintf(stderr, "imapserver: %s\n", error);
		free(error);
		return 1;
	}
	job_queue_set_default(jobs);
	server = imap_server_new(loop, gen, plain.fds[0]);
	for (size_t i = 1; i < plain.count; i++)
		imap_server_listen_add(server, plain.fds[i], false);
	if (tls.count > 0)
		imap_server_listen_tls(server, tls.fds[0]);
	for (size_t i = 1; i < tls.count; i++)
		imap_server_listen_add(server, tls.fds[i], true);
	if (smtp_l.set[SMTP_PORT_RECEIVER].count > 0)
		smtp = smtp_listen_serve(&smtp_l, loop, gen);
	server_gen_unref(&gen);
	log_info("-", "imapserver started (storage %s, auth %s)",
		 server->gen->storage.backend->name, server->gen->auth.backend->name);
	started_at = time(NULL);
	status_path = config_status_socket(server->gen->cfg);
	status_sock = status_socket_open(loop, status_path, write_status, NULL, &error);
	if (status_sock == NULL) {
		log_warn("-", "%s: imapserver --status will not answer", error);
		free(error);
	}
	free(status_path);
	detach_ready();
	if (event_loop_run(loop) < 0)
		log_error("-", "%s: %s", event_backend_name(), strerror(errno));
	status_socket_close(&status_sock);
	smtp_server_free(&smtp);        /* closes the SMTP listeners */
	imap_server_free(&server);
	addr_penalties_free();
	/* After the hub (which waits for its mailboxes' jobs). */
	job_queue_free(&jobs);
	net_listen_set_close(&plain);
	net_listen_set_close(&tls);
	watch_free(&watch);
	event_loop_free(&loop);
	log_info("-", "stopped");
	detach_cleanup();
	return 0;
fail:
	/* A start that failed before serving: what it set up goes, so that
	   the reason stays the last word (and no leak report follows). */
	net_listen_set_close(&plain);
	net_listen_set_close(&tls);
	server_gen_unref(&gen);
	watch_free(&watch);
	event_loop_free(&loop);
	return 1;
}
