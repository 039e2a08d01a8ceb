/* smtp_server.h: the SMTP listener and its sessions on the event loop.

   Each session is a core/smtp/smtp.c engine plus a socket: input is read in
   bounded chunks and fed to the engine, replies are queued and written as
   the socket takes them. RCPT lookups go through auth_user_exists() and
   deliveries through the mailbox hub of the session's server generation
   (mailbox_open / mailbox_append / mailbox_changed), so a message stored
   by the SMTP listener inside imapserver reaches the IMAP sessions in IDLE
   on that mailbox before the final 250 is even queued.

   Delivery is synchronous in the loop: the backend's append fsyncs before
   it returns (a few milliseconds per recipient; the flat backend may wait
   up to its lock timeout for another writer). The 250 is queued only once
   every recipient's copy is stored; on the first failure the answer is
   451 4.3.0 (452 4.3.1 when the disk is full) and the client retries, so
   recipients stored before the failure may get the message twice, which
   RFC 5321 6.1 prefers to losing it.

   Limits: limits.max_connections SMTP sessions (counted apart from the
   IMAP ones), smtp.timeout awaiting a command, smtp.data_timeout awaiting
   more DATA octets; then "421 4.4.2" and the connection is closed. A TLS
   handshake (STARTTLS, or at connect on the submissions port) that has
   not ended within tls.handshake_timeout closes the connection.

   Listeners: one server serves up to three ports, each in its role:
   smtp.port receives mail for local users (STARTTLS once a certificate
   is configured, no AUTH); smtp.submission_port (RFC 6409, the 587 role)
   and smtp.submissions_port (RFC 8314, the 465 role: TLS from connect)
   take mail from users who logged in with AUTH. Passwords are checked by
   the generation's auth backend without blocking the loop
   (auth_verify_start(), PAM included); a failure is answered after
   limits.auth_fail_delay, and the third one closes the session. */
#ifndef SMTP_SERVER_H
#define SMTP_SERVER_H

#include "lib.h"
#include "event.h"
#include "server_gen.h"

struct smtp_server;

enum smtp_port_role {
	SMTP_PORT_RECEIVER,    /* smtp.port */
	SMTP_PORT_SUBMISSION,  /* smtp.submission_port: STARTTLS + AUTH */
	SMTP_PORT_SUBMISSIONS, /* smtp.submissions_port: implicit TLS + AUTH */
};
#define SMTP_PORT_ROLES 3

/* Creates the server around listen_fd (listening, non-blocking, below
   FD_SETSIZE), which it watches on loop and closes when freed. Takes a
   reference to gen. */
struct smtp_server *smtp_server_new(struct event_loop *loop, struct server_gen *gen, int listen_fd);
/* Adds the listener of a submission role around listen_fd (as for
   smtp_server_new; closed when the server is freed). Called again for a
   role, adds the socket to its listener (the same port on another
   address of smtp.address). SMTP_PORT_SUBMISSIONS needs a certificate (gen->tls); without one
   its connections are closed at once. */
void smtp_server_listen(struct smtp_server *server, int listen_fd, enum smtp_port_role role);
/* Sends "421" to every session, closes them and the listener, frees. */
void smtp_server_free(struct smtp_server **server);
/* How many SMTP sessions are open (for the status report). */
size_t smtp_server_session_count(const struct smtp_server *server);
/* New sessions use gen from now on (takes a reference); running sessions
   keep theirs. */
void smtp_server_set_gen(struct smtp_server *server, struct server_gen *gen);
/* Takes an accepted connection (fd non-blocking, close-on-exec) from the
   numeric address peer_ip, port peer_port, on a port of role. */
void smtp_server_accept_fd(struct smtp_server *server, int fd, const char *peer_ip,
			   const char *peer_port, enum smtp_port_role role);

#endif
