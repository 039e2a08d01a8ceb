/* netio.h: bounded-time TCP helpers shared by the IMAP and SMTP clients.
   Sockets are non-blocking and close-on-exec; every wait goes through
   poll() with the caller's timeout. */
#ifndef NETIO_H
#define NETIO_H

#include "lib.h"
#include "buf.h"

/* Connects to host:port (name or address, IPv4 or IPv6), trying each
   address in turn, each within timeout_ms. Returns 0 with *fd_r, or -1
   with *error_r. */
int netio_connect(const char *host, const char *port, int timeout_ms, int *fd_r, char **error_r);
/* Writes all of data, waiting at most timeout_ms for each chunk to be
   taken. Returns 0 or -1 with *error_r. */
int netio_write_all(int fd, const void *data, size_t len, int timeout_ms, char **error_r);
/* Waits at most timeout_ms (0 = do not wait) for input and appends what
   one read() returns to in. Returns 1 if bytes were read (or a spurious
   wake-up), 0 if the time ran out, -1 with *error_r at end of file or on
   an error ("connection closed by the server"). */
int netio_read_some(int fd, struct buf *in, int timeout_ms, char **error_r);

#endif
