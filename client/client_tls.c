/* client_tls.c: the mailclient's TLS policy (see client_tls.h). */
#include "client_tls.h"

#include <stdlib.h>

enum client_tls_step
client_tls_next_step(const struct client_tls *set, bool offered)
{
	switch (set->mode) {
	case CLIENT_TLS_IMPLICIT:
		/* TLS is up already: a STARTTLS offered inside it is not
		   taken (RFC 3501 6.2.1 forbids a second one). */
		return CLIENT_TLS_STEP_PLAIN;
	case CLIENT_TLS_STARTTLS:
		return offered && set->ctx != NULL ? CLIENT_TLS_STEP_STARTTLS :
						     CLIENT_TLS_STEP_REFUSE;
	case CLIENT_TLS_AUTO:
		break;
	}
	return offered && set->ctx != NULL ? CLIENT_TLS_STEP_STARTTLS : CLIENT_TLS_STEP_PLAIN;
}

struct tls_ctx *
client_tls_starttls_ctx(const struct client_tls *set, bool loopback, bool *unchecked_r)
{
	*unchecked_r = set->insecure;
	if (set->mode == CLIENT_TLS_AUTO && loopback && set->loopback_ctx != NULL) {
		*unchecked_r = true;
		return set->loopback_ctx;
	}
	return set->ctx;
}

int
client_tls_password_check(const struct client_tls *set, bool tls, bool loopback, const char *what,
			  char **error_r)
{
	if (tls || loopback || set->allow_plaintext)
		return 0;
	*error_r = xasprintf("%s offers no TLS (no STARTTLS): your password would cross the "
			     "network in clear, so it is not sent. Use --tls if the server listens "
			     "for implicit TLS on that port, or --allow-plaintext to send it "
			     "anyway on a network you trust",
			     what);
	return -1;
}

char *
client_tls_handshake_error(const struct client_tls *set, const char *error)
{
	if (strstr(error, "certificate verify failed") != NULL) {
		return xasprintf("%s. The server's certificate could not be checked against %s: "
				 "if the server uses its own CA or a self-signed certificate, give "
				 "that certificate with --ca-file FILE",
				 error, set->ca_file != NULL ? set->ca_file : "the system's CAs");
	}
	if (strstr(error, "wrong version number") != NULL ||
	    strstr(error, "packet length too long") != NULL ||
	    strstr(error, "record layer failure") != NULL) {
		return xasprintf("%s. The server does not speak TLS on that port: use the port of "
				 "its TLS listener, or leave out --tls (STARTTLS is used when the "
				 "server offers it)",
				 error);
	}
	return xstrdup(error);
}
