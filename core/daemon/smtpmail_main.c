/* smtpmail: the stand-alone SMTP receiver.

   smtpmail [-c FILE] [-f] [-t] [smtp_port]

   Reads the same configuration file as imapserver (its smtp, storage,
   auth, limits and log sections) and delivers into the same storage. It
   runs whether or not smtp.enabled is set: that key only tells imapserver
   to host the listener itself. It listens on smtp.port and, when they
   are set, on smtp.submission_port and smtp.submissions_port
   (smtp_listen.h). The process-wide state lives here.

   Its mailbox hub has no file watch: smtpmail serves no IMAP session; the
   imapserver processes notice its deliveries through theirs. */
#include "cmdline.h"
#include "config.h"
#include "detach.h"
#include "event.h"
#include "job.h"
#include "log.h"
#include "addr_table.h"
#include "privileges.h"
#include "server_gen.h"
#include "smtp_listen.h"
#include "smtp_server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static struct event_loop *loop;
static struct smtp_server *server;
/* Worker threads for the store's heavy or round-trip work (a message's
   write and fsync, a database's transactions, a first open), as in
   imapserver: the loop serves the other SMTP sessions meanwhile. */
static struct job_queue *jobs;
#define SMTPMAIL_JOB_THREADS 2
static struct cmdline cl = {
	.prog = "smtpmail",
	.port_name = "smtp_port",
	.port_key = "smtp.port",
};
static char *listen_address;
static unsigned listen_ports[SMTP_PORT_ROLES];

static void
on_terminate(void *ctx)
{
	log_info("-", "shutting down");
	event_loop_stop(loop);
}

static void
on_reopen_log(void *ctx)
{
	cmdline_reopen_log();
}

static void
on_reload(void *ctx)
{
	struct server_gen *gen = cmdline_reload(&cl, NULL);

	if (gen == NULL)
		return;
	if (strcmp(gen->cfg->smtp_address, listen_address) != 0 ||
	    gen->cfg->smtp_port != listen_ports[SMTP_PORT_RECEIVER] ||
	    gen->cfg->smtp_submission_port != listen_ports[SMTP_PORT_SUBMISSION] ||
	    gen->cfg->smtp_submissions_port != listen_ports[SMTP_PORT_SUBMISSIONS])
		log_warn("-", "smtp.address/smtp.port/smtp.submission_port/smtp.submissions_port "
			      "changes need a restart; still listening on the old addresses");
	smtp_server_set_gen(server, gen);
	server_gen_unref(&gen);
	log_info("-", "configuration reloaded; new sessions use it");
}

int
main(int argc, char *argv[])
{
	struct server_gen *gen;
	char *error = NULL;
	struct smtp_listen smtp_l;
	int ret;

	log_set_ident("smtpmail");
	cmdline_parse(&cl, argc, argv);
	ret = cmdline_start(&cl, NULL, &gen);
	if (ret <= 0)
		return ret < 0 ? 1 : 0;
	if (cmdline_event_setup(&cl, NULL, gen->cfg) < 0) {
		server_gen_unref(&gen);
		return 1;
	}
	/* Before the ports: a second start on the same pid file says so. */
	if (cmdline_open_files(&cl, gen->cfg, gen->cfg->smtp_pid_file) < 0) {
		server_gen_unref(&gen);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* smtp.port, and the submission ports when set. */
	if (smtp_listen_open(&smtp_l, gen->cfg, &error) < 0) {
		fprintf(stderr, "smtpmail: %s\n", error);
		free(error);
		return 1;
	}
	listen_address = xstrdup(gen->cfg->smtp_address);
	listen_ports[SMTP_PORT_RECEIVER] = gen->cfg->smtp_port;
	listen_ports[SMTP_PORT_SUBMISSION] = gen->cfg->smtp_submission_port;
	listen_ports[SMTP_PORT_SUBMISSIONS] = gen->cfg->smtp_submissions_port;
	/* As imapserver: root only to bind; the socket is bound now. */
	if (privileges_drop(gen->cfg->server_user, gen->cfg->server_group, &error) < 0) {
		fprintf(stderr, "smtpmail: %s\n", error);
		free(error);
		return 1;
	}
	/* Signals are taken from here on, and handled once the loop runs;
	   then the line whoever waits for the server waits for. */
	loop = event_loop_new();
	if (event_signal_add(loop, SIGTERM, on_terminate, NULL) < 0 ||
	    event_signal_add(loop, SIGINT, on_terminate, NULL) < 0 ||
	    event_signal_add(loop, SIGHUP, on_reload, NULL) < 0 ||
	    event_signal_add(loop, SIGUSR1, on_reopen_log, NULL) < 0)
		fatal("signal setup: %s", strerror(errno));
	smtp_listen_log(&smtp_l, "listening on");
	if (cmdline_detach(&cl) < 0)
		return 1;
	if ((jobs = job_queue_new(loop, SMTPMAIL_JOB_THREADS, &error)) == NULL) {
		fprintf(stderr, "smtpmail: %s\n", error);
		free(error);
		return 1;
	}
	job_queue_set_default(jobs);
	server = smtp_listen_serve(&smtp_l, loop, gen);
	log_info("-", "smtpmail started (domain %s, storage %s, auth %s)", gen->cfg->smtp_domain,
		 gen->storage.backend->name, gen->auth.backend->name);
	server_gen_unref(&gen);
	detach_ready();
	if (event_loop_run(loop) < 0)
		log_error("-", "%s: %s", event_backend_name(), strerror(errno));
	smtp_server_free(&server);
	addr_penalties_free();
	/* After the hub (which waits for its mailboxes' jobs). */
	job_queue_free(&jobs);
	event_loop_free(&loop);
	free(listen_address);
	log_info("-", "stopped");
	detach_cleanup();
	return 0;
}
