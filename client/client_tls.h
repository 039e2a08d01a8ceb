/* client_tls.h: the mailclient's TLS policy, shared by its IMAP and
   SMTP clients: when to start TLS, and when a password may be sent.

   Pure decisions (no I/O), so the unit tests can go through every case:
   - implicit TLS (--tls): TLS from the first byte, nothing else;
   - STARTTLS required (--starttls): a server that does not offer it is
     an error;
   - the default: STARTTLS when the server offers it, else plain;
   - a password goes only over TLS or to a loopback peer, unless the
     user allowed plaintext (--allow-plaintext). */
#ifndef CLIENT_TLS_H
#define CLIENT_TLS_H

#include "lib.h"

struct tls_ctx;

enum client_tls_mode {
	CLIENT_TLS_AUTO = 0, /* STARTTLS when offered */
	CLIENT_TLS_STARTTLS, /* STARTTLS, or fail */
	CLIENT_TLS_IMPLICIT, /* TLS from the first byte (993, 465) */
};

struct client_tls {
	enum client_tls_mode mode;
	/* The context the TLS layers are made from; NULL when TLS cannot
	   be had (not compiled in), which only CLIENT_TLS_AUTO allows.
	   Owned by whoever filled the struct. */
	struct tls_ctx *ctx;
	/* For STARTTLS taken because it is offered (CLIENT_TLS_AUTO, no
	   --ca-file) with a server on this machine (loopback): a context
	   that checks no certificate, or NULL. On loopback a password may go
	   in clear anyway, so a server's self-signed certificate (make run's)
	   must not make the lab fail; elsewhere certificates are checked. */
	struct tls_ctx *loopback_ctx;
	bool allow_plaintext; /* a password may go in clear on a network */
	bool insecure;        /* certificates are not checked */
	const char *ca_file;  /* what certificates are checked against, NULL: system */
};

enum client_tls_step {
	CLIENT_TLS_STEP_STARTTLS, /* send STARTTLS now */
	CLIENT_TLS_STEP_PLAIN,    /* go on without TLS */
	CLIENT_TLS_STEP_REFUSE,   /* STARTTLS was required and is not offered */
};

/* On a plain connection, once the server said what it offers: what to
   do. offered: the server listed STARTTLS. */
enum client_tls_step client_tls_next_step(const struct client_tls *set, bool offered);

/* The context for a STARTTLS on a connection to a loopback peer (or
   not); *unchecked_r: its certificate is not checked. */
struct tls_ctx *client_tls_starttls_ctx(const struct client_tls *set, bool loopback,
					bool *unchecked_r);

/* Whether a password may be sent on a connection: over TLS always; in
   clear only to a loopback peer or when the user allowed it. Returns 0,
   or -1 with *error_r (malloc'ed) saying why not and what to do; what
   names the server ("the IMAP server 192.0.2.7"). */
int client_tls_password_check(const struct client_tls *set, bool tls, bool loopback,
			      const char *what, char **error_r);

/* A failed TLS handshake's error with what the user can do about it
   (--ca-file, the right port). Returns a malloc'ed string. */
char *client_tls_handshake_error(const struct client_tls *set, const char *error);

#endif
