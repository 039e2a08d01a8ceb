/* net.h: small socket helpers shared by the programs' listeners. */
#ifndef NET_H
#define NET_H

#include "lib.h"

/* Opens a TCP socket listening on address:port (an IP address, or a host
   name: its first address; port 0 picks a free one): non-blocking, close-on-exec, SO_REUSEADDR, and below
   FD_SETSIZE. Returns the fd with the bound "host:port" in *bound_r
   (malloc'ed), or -1 with *error_r. */
int net_listen(const char *address, unsigned port, char **bound_r, char **error_r);

/* True if host (numeric, as the listener names a peer) is a loopback
   address (127.0.0.0/8, ::1, ::ffff:127.x.y.z) or "local" (a unix
   socket): where auth.plaintext = "loopback" lets a password through
   without TLS. */
bool net_is_loopback(const char *host);

/* Can a listening socket be bound on address (an IP address or a host
   name, without a port)? Resolves it and binds a throw-away socket to
   its first address with port 0, as net_listen() will. Returns 0, or -1
   with *error_r saying why ("host:port" given, a name that does not
   resolve, an address of another machine). */
int net_check_address(const char *address, char **error_r);

#endif
