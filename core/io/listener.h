/* listener.h: the accept loop shared by the IMAP and SMTP listeners.

   On a readable listening socket it accepts at most LISTENER_BURST
   connections per event, each non-blocking and close-on-exec, and hands
   them with the peer's numeric address to the owner's callback, which
   refuses or takes them (connection_refusal_reason, connection_refuse).
   Out of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM), it stops watching
   the socket for a second rather than spin on it. */
#ifndef LISTENER_H
#define LISTENER_H

#include "lib.h"
#include "event.h"

#define LISTENER_BURST 64
/* Sockets of one listener (one port on several addresses). */
#define LISTENER_MAX_SOCKETS 8

struct listener;

/* fd is accepted (non-blocking, close-on-exec, possibly beyond
   FD_SETSIZE); host and port are numeric, "unknown" and "0" if the
   address cannot be had. */
typedef void listener_accept_cb(void *ctx, int fd, const char *host, const char *port);

struct listener_settings {
	/* Prefixed to the log lines ("smtp: "), may be "". */
	const char *log_prefix;
	/* Sets TCP_NODELAY on accepted sockets. */
	bool tcp_nodelay;
};

/* Watches listen_fd (listening, non-blocking, below FD_SETSIZE), which
   stays the caller's to close. */
struct listener *listener_new(struct event_loop *loop, int listen_fd,
			      const struct listener_settings *set, listener_accept_cb *cb,
			      void *ctx);
/* Another listening socket with the same settings and callback (the same
   port on another address), also the caller's to close. */
void listener_add(struct listener *listener, int listen_fd);
void listener_free(struct listener **listener);

#endif
