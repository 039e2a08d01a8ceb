/* imapserver: the IMAP4rev1 server.

   imapserver [-c FILE] [-f] [-t] [imap_port]

   One process, one select() loop. The process-wide state (the loop, the
   server, the config path) lives here and nowhere else. */
#include "config.h"
#include "event.h"
#include "imap_server.h"
#include "log.h"
#include "migrate.h"
#include "net.h"
#include "smtp_server.h"
#include "privileges.h"
#include "watch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_CONFIG "etc/imapserver.conf"
#define ACCEPT_BURST 64

static struct event_loop *loop;
static struct watch *watch;
static struct imap_server *server;
static const char *config_path;
static int port_override = -1;
static struct event_timer *accept_pause;
/* The SMTP listener hosted in this process when smtp.enabled (else NULL). */
static struct smtp_server *smtp;

static void ATTR_NORETURN
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
		"usage: imapserver [-c FILE] [-f] [-t] [imap_port]\n"
		"  -c FILE   configuration file (default %s)\n"
		"  -f        stay in the foreground, log to stderr\n"
		"  -t        check the configuration and exit\n"
		"  imap_port port to listen on (overrides imap.port)\n",
		DEFAULT_CONFIG);
	exit(status);
}

static int
load_config(struct config **cfg_r, char **error_r)
{
	if (config_path != NULL)
		return config_load(config_path, cfg_r, error_r);
	if (access(DEFAULT_CONFIG, F_OK) == 0)
		return config_load(DEFAULT_CONFIG, cfg_r, error_r);
	/* No file at all: the embedded defaults, relative to the cwd. */
	char cwd[4096];
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		*error_r = xasprintf("getcwd: %s", strerror(errno));
		return -1;
	}
	*cfg_r = config_defaults(cwd);
	return 0;
}

static int
listen_on(const char *address, unsigned port, char **error_r)
{
	struct addrinfo hints, *ai;
	char portstr[16], host[NI_MAXHOST], serv[NI_MAXSERV];
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fd, one = 1, ret;

	i_zero(&hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	ret = getaddrinfo(address, portstr, &hints, &ai);
	if (ret != 0) {
		*error_r = xasprintf("address %s: %s", address, gai_strerror(ret));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		*error_r = xasprintf("listen on %s:%u: %s", address, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	if (!event_fd_ok(fd)) {
		*error_r = xasprintf("listen socket fd %d is beyond FD_SETSIZE", fd);
		close(fd);
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		log_info("-", "listening on %s:%s", host, serv);
	return fd;
}

static void
accept_resume(void *ctx)
{
	accept_pause = NULL;
	event_io_want_read(server->listen_io, true);
}

static void
listener_input(void *ctx)
{
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);
		char host[NI_MAXHOST], serv[NI_MAXSERV], peer[NI_MAXHOST + NI_MAXSERV + 2];
		int fd = accept4(server->listen_fd, (struct sockaddr *)&ss, &sslen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of descriptors: pause accepting for a
				   moment rather than spin on a readable listener. */
				log_warn("-", "accept: %s; pausing for 1 s", strerror(errno));
				event_io_want_read(server->listen_io, false);
				if (accept_pause == NULL)
					accept_pause = event_timer_add(loop, 1000, accept_resume, NULL);
			}
			return;
		}
		/* Untagged updates are small writes that must not wait for
		   the ACK of the previous one (Nagle + delayed ACK = 40 ms). */
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), serv,
				sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
			snprintf(peer, sizeof(peer), "unknown");
		else
			snprintf(peer, sizeof(peer), "%s:%s", host, serv);
		imap_server_accept_fd(server, fd, peer);
	}
}

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

static void
on_reload(void *ctx)
{
	struct config *cfg = NULL;
	struct server_gen *gen;
	char *error = NULL;

	if (load_config(&cfg, &error) < 0) {
		log_error("-", "reload failed, keeping the running configuration: %s", error);
		free(error);
		return;
	}
	if (port_override >= 0)
		cfg->imap_port = (unsigned)port_override;
	if (strcmp(cfg->imap_address, server->gen->cfg->imap_address) != 0 ||
	    cfg->imap_port != server->gen->cfg->imap_port)
		log_warn("-", "imap.address/imap.port changes need a restart; still listening on "
			      "the old address");
	gen = server_gen_new(cfg, watch, &error);
	if (gen == NULL) {
		log_error("-", "reload failed, keeping the running configuration: %s", error);
		free(error);
		return;
	}
	log_set_level(gen->cfg->log_level);
	imap_server_set_gen(server, gen);
	/* SMTP: new sessions deliver through the new generation's hub. */
	if (smtp != NULL) {
		if (!gen->cfg->smtp_enabled)
			log_warn("-", "smtp.enabled changes need a restart; SMTP keeps running");
		smtp_server_set_gen(smtp, gen);
	}
	server_gen_unref(&gen);
	log_info("-", "configuration reloaded; new sessions use it");
}

int
main(int argc, char *argv[])
{
	bool foreground = false, test_only = false;
	struct server_gen *gen;
	struct config *cfg = NULL;
	char *error = NULL;
	int opt, fd, smtp_fd = -1;

	log_set_ident("imapserver");
	/* imapserver [-c FILE] --migrate USER --from NAME --to NAME: see migrate.h */
	if (migrate_requested(argc, argv))
		return migrate_main(argc, argv);
	while ((opt = getopt(argc, argv, "c:fth")) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 't':
			test_only = true;
			break;
		case 'h':
			usage(0);
		default:
			usage(1);
		}
	}
	if (optind < argc) {
		uint64_t port;
		if (optind + 1 != argc || str_to_u64(argv[optind], 65535, &port) < 0) {
			fprintf(stderr, "imapserver: invalid port '%s' (0..65535)\n", argv[optind]);
			usage(1);
		}
		port_override = (int)port;
	}
	if (load_config(&cfg, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (port_override >= 0)
		cfg->imap_port = (unsigned)port_override;
	log_set_level(cfg->log_level);
	loop = event_loop_new();
	watch = test_only ? NULL : watch_new(loop);
	gen = server_gen_new(cfg, watch, &error);
	if (gen == NULL) {
		fprintf(stderr, "%s: %s\n", config_path != NULL ? config_path : DEFAULT_CONFIG,
			error);
		return 1;
	}
	if (test_only) {
		printf("%s: configuration OK\n", gen->cfg->path != NULL ? gen->cfg->path :
									 "(built-in defaults)");
		server_gen_unref(&gen);
		event_loop_free(&loop);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	fd = listen_on(gen->cfg->imap_address, gen->cfg->imap_port, &error);
	if (fd < 0) {
		fprintf(stderr, "imapserver: %s\n", error);
		return 1;
	}
	/* SMTP in the same loop (smtp.enabled): listen now, so that a busy
	   port is a start-up error; logged after the IMAP line. */
	if (gen->cfg->smtp_enabled) {
		char *bound = NULL;

		smtp_fd = net_listen(gen->cfg->smtp_address, gen->cfg->smtp_port, &bound, &error);
		if (smtp_fd < 0) {
			fprintf(stderr, "imapserver: smtp: %s\n", error);
			return 1;
		}
		log_info("-", "smtp listening on %s", bound);
		free(bound);
	}
	/* Every listening socket must be bound above this line. */
	drop_privileges(gen->cfg);
	if (!foreground) {
		if (daemon(0, 0) < 0) {
			fprintf(stderr, "imapserver: daemon: %s\n", strerror(errno));
			return 1;
		}
		log_use_syslog(true);
	}
	server = imap_server_new(loop, gen, fd);
	if (smtp_fd >= 0)
		smtp = smtp_server_new(loop, gen, smtp_fd);
	server_gen_unref(&gen);
	server->listen_io = event_io_add(loop, fd, listener_input, NULL, NULL);
	if (event_signal_add(loop, SIGTERM, on_terminate, NULL) < 0 ||
	    event_signal_add(loop, SIGINT, on_terminate, NULL) < 0 ||
	    event_signal_add(loop, SIGHUP, on_reload, NULL) < 0)
		fatal("signal setup: %s", strerror(errno));
	log_info("-", "imapserver started (storage %s, auth %s)",
		 server->gen->storage.backend->name, server->gen->auth.backend->name);
	if (event_loop_run(loop) < 0)
		log_error("-", "select: %s", strerror(errno));
	event_io_remove(&server->listen_io);
	event_timer_remove(&accept_pause);
	smtp_server_free(&smtp);        /* closes smtp_fd */
	imap_server_free(&server);
	close(fd);
	watch_free(&watch);
	event_loop_free(&loop);
	log_info("-", "stopped");
	return 0;
}
