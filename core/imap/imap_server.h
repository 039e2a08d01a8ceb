/* imap_server.h: the IMAP server: a listener, its sessions and what they
   share. One struct imap_server per process, driven by one event loop. */
#ifndef IMAP_SERVER_H
#define IMAP_SERVER_H

#include "lib.h"
#include "auth.h"
#include "buf.h"
#include "config.h"
#include "event.h"
#include "server_gen.h"
#include "storage.h"
#include "addr_table.h"

struct client;
struct listener;

struct imap_server {
	struct event_loop *loop;
	struct server_gen *gen;
	struct listener *listener; /* NULL without a listening socket */
	struct listener *tls_listener; /* imap.tls_port: implicit TLS, or NULL */
	struct client *clients;
	size_t client_count;
	/* Connections per client address (limits.max_connections_per_address)
	   and the log of refusals for it (addr_table.h). */
	struct addr_table *addrs;
	struct addr_refusal_log refusal_log;
	uint64_t session_counter;
	struct event_timer *tick_timer;
	bool shutting_down;
};

/* Creates the server around an already listening socket (listening,
   non-blocking, below FD_SETSIZE; the caller closes it after
   imap_server_free), or -1 for none: sessions then come only through
   imap_server_accept_fd(). */
struct imap_server *imap_server_new(struct event_loop *loop, struct server_gen *gen,
				    int listen_fd);
/* Closes every session (with "* BYE") and frees the server. */
void imap_server_free(struct imap_server **server);
/* Puts a new generation in place for new sessions (takes a reference). */
void imap_server_set_gen(struct imap_server *server, struct server_gen *gen);

/* Adds the implicit TLS listener (imap.tls_port, the 993 role): TLS
   starts at connect, before the greeting. The generation must have a
   certificate. */
void imap_server_listen_tls(struct imap_server *server, int listen_fd);
/* One more socket (the same port on another address, imap.address naming
   several) for the plain listener, or for the implicit TLS one (tls):
   that listener must exist. listen_fd stays the caller's to close. */
void imap_server_listen_add(struct imap_server *server, int listen_fd, bool tls);

/* Takes an accepted local connection (a socketpair: fd non-blocking,
   close-on-exec), in clear, or in TLS from the first octet
   (implicit_tls). Counts as loopback for auth.plaintext. */
void imap_server_accept_fd(struct imap_server *server, int fd, const char *peer);
void imap_server_accept_tls_fd(struct imap_server *server, int fd, const char *peer);

#endif
