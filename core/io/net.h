/* net.h: small socket helpers shared by the programs' listeners. */
#ifndef NET_H
#define NET_H

#include "lib.h"

/* Opens a TCP socket listening on address:port (an IP address, or a host
   name: its first address; port 0 picks a free one): non-blocking, close-on-exec, SO_REUSEADDR, and below
   FD_SETSIZE. Returns the fd with the bound "host:port" in *bound_r
   (malloc'ed), or -1 with *error_r. */
int net_listen(const char *address, unsigned port, char **bound_r, char **error_r);

/* At most this many addresses in one listen key (imap.address ...). */
#define NET_LISTEN_MAX 8

/* The addresses of a listen key: one address, or several separated by
   commas and/or spaces ("127.0.0.1, ::1"). Fills list (cleared first) and
   returns 0, or -1 with *error_r: none, more than NET_LISTEN_MAX, or one
   named twice. */
int net_address_split(const char *addresses, struct strlist *list, char **error_r);

/* The sockets of one port on every address of a listen key. */
struct net_listen_set {
	int fds[NET_LISTEN_MAX];
	size_t count;
	char *bound;    /* "127.0.0.1:143, [::1]:143", malloc'ed */
};

/* net_listen() on each of addresses (net_address_split()). With port 0
   the first address picks a free port and the others take the same one,
   so that one port number serves them all. Returns 0, or -1 with
   *error_r and nothing left open. */
int net_listen_set_open(struct net_listen_set *set, const char *addresses, unsigned port,
			char **error_r);
/* Closes what is open (safe on a zeroed or closed set). */
void net_listen_set_close(struct net_listen_set *set);

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
/* net_check_address() on each address of a listen key. */
int net_check_addresses(const char *addresses, char **error_r);

#endif
