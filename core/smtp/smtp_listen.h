/* smtp_listen.h: the listening sockets of the SMTP roles, for the
   programs that host the SMTP server (imapserver with smtp.enabled, and
   smtpmail): bound before the privilege drop, logged once the server is
   ready, then handed to the server.

   smtp.port is always bound; smtp.submission_port and
   smtp.submissions_port when they are not 0 (the config refuses an
   implicit TLS port without a certificate). */
#ifndef SMTP_LISTEN_H
#define SMTP_LISTEN_H

#include "lib.h"
#include "config.h"
#include "net.h"
#include "smtp_server.h"

struct smtp_listen {
	/* Per role, its port on each address of smtp.address (count 0:
	   not listening); bound is "127.0.0.1:2525, [::1]:2525". */
	struct net_listen_set set[SMTP_PORT_ROLES];
};

/* Nothing open (what smtp_listen_open() starts with). */
void smtp_listen_init(struct smtp_listen *l);
/* Binds the ports cfg names on smtp.address. Returns 0, or -1 with
   *error_r ("smtp.submission_port: ...": the key is named except for
   smtp.port), nothing left open. */
int smtp_listen_open(struct smtp_listen *l, const struct config *cfg, char **error_r);
/* Logs one line per port: "<first> <bound>" for smtp.port (first is
   "smtp listening on" in imapserver, "listening on" in smtpmail), then
   "submission listening on <bound>" and "submissions listening on
   <bound>". */
void smtp_listen_log(const struct smtp_listen *l, const char *first);
/* The server on these sockets (which it closes when freed). Frees l's
   strings. */
struct smtp_server *smtp_listen_serve(struct smtp_listen *l, struct event_loop *loop,
				      struct server_gen *gen);
/* Closes what smtp_listen_serve() did not take, frees the strings. */
void smtp_listen_close(struct smtp_listen *l);

#endif
