/* status.h: the running server's status for its operator
   ("imapserver --status", in the manner of "doveadm who"): who is
   connected, as whom, with which mailbox open.

   The server listens on a unix socket (server.status_socket, by default
   <storage.root>/.imapserver-status: a name no user can have), made by
   server.user with mode 0600, so only that user and root can read it.
   Each connection gets the status text at once and is closed; nothing
   is read from it. The text is written through the connection layer, so
   a reader that does not read never holds up the loop. */
#ifndef STATUS_H
#define STATUS_H

#include "lib.h"
#include "buf.h"
#include "event.h"

struct status_socket;

/* Writes the status text into out. */
typedef void status_fn(void *ctx, struct buf *out);

/* Listens on path (a stale socket left by a server that is gone is
   replaced; a live one is an error). Returns NULL with *error_r. */
struct status_socket *status_socket_open(struct event_loop *loop, const char *path,
					 status_fn *fn, void *ctx, char **error_r);
/* Stops listening and removes the socket file. */
void status_socket_close(struct status_socket **sock);

/* imapserver --status: connects to path and copies what the server says
   to stdout. Returns the exit status (0, or 1 after printing why). */
int status_query(const char *path);
/* True if argv asks for --status. */
bool status_requested(int argc, char *const argv[]);
/* imapserver [-c FILE] --status: reads the configuration for the
   socket's path and runs status_query(). */
int status_main(int argc, char *argv[]);

#endif
