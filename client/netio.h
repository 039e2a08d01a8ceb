/* netio.h: bounded-time TCP connections for the IMAP and SMTP clients,
   with TLS pushed on top when wanted.

   A struct netio is a small stack of struct conn_layer (conn_layer.h):
   a socket layer at the bottom (recv/send on a non-blocking,
   close-on-exec socket) and, after netio_start_tls(), a TLS layer
   (tls.h) on it. Reads and writes go through the top layer; when it
   says EAGAIN, the socket layer has noted which of recv() or send()
   would block and netio poll()s the fd for that event, within the
   caller's timeout. The client stays blocking and single-threaded.

   A TLS layer may hold decoded input the socket no longer shows
   (netio_in_pending): a caller that poll()s the fd itself (the
   mailclient waiting on stdin and the IMAP socket at once) asks that
   first. */
#ifndef NETIO_H
#define NETIO_H

#include "lib.h"
#include "buf.h"

#include <sys/socket.h>

struct netio;
struct tls_ctx;

/* Connects to host:port (name or address, IPv4 or IPv6), trying each
   address in turn, each within timeout_ms. Returns 0 with *conn_r (free
   with netio_free), or -1 with *error_r. */
int netio_connect(const char *host, const char *port, int timeout_ms, struct netio **conn_r,
		  char **error_r);
/* Closes the socket (the layers are freed top down first: a TLS layer
   sends its close_notify, best effort) and frees; *conn becomes NULL. */
void netio_free(struct netio **conn);

/* Pushes a TLS client layer made from ctx (host is what the peer's
   certificate must name, and the SNI) and runs the handshake, waiting
   at most timeout_ms for each step. What the server sends right after
   the handshake (an implicit-TLS greeting) is appended to in. Returns
   0, or -1 with *error_r ("TLS handshake failed: certificate verify
   failed: self-signed certificate in certificate chain"). */
int netio_start_tls(struct netio *conn, struct tls_ctx *ctx, const char *host, int timeout_ms,
		    struct buf *in, char **error_r);
/* True once TLS is up; the protocol and cipher ("TLSv1.3
   TLS_AES_256_GCM_SHA384"), "" without TLS. */
bool netio_is_tls(const struct netio *conn);
const char *netio_tls_describe(const struct netio *conn);

/* Writes all of data, waiting at most timeout_ms for each chunk to be
   taken. Returns 0 or -1 with *error_r. */
int netio_write_all(struct netio *conn, const void *data, size_t len, int timeout_ms,
		    char **error_r);
/* Reads what the layers give now (decoded input already held comes
   first), else waits at most timeout_ms (0 = do not wait) for the socket
   and reads again, and appends it to in. Returns 1 if bytes were read
   (or a spurious wake-up), 0 if the time ran out, -1 with *error_r at
   end of file or on an error ("connection closed by the server"). */
int netio_read_some(struct netio *conn, struct buf *in, int timeout_ms, char **error_r);
/* True if a layer holds decoded input that a read returns without the
   socket becoming readable. */
bool netio_in_pending(const struct netio *conn);
/* The socket, for a caller's own poll(). */
int netio_fd(const struct netio *conn);

/* True if the connection's peer is a loopback address (127.0.0.0/8,
   ::1, or 127.x mapped into IPv6): what counts as "not on a network"
   when deciding whether a password may go in clear. */
bool netio_peer_is_loopback(const struct netio *conn);
/* The same test on an address. */
bool netio_addr_is_loopback(const struct sockaddr *sa, socklen_t len);

#endif
