/* net.h: small socket helpers shared by the programs' listeners. */
#ifndef NET_H
#define NET_H

#include "lib.h"

/* Opens a TCP socket listening on address:port (numeric address; port 0
   picks a free one): non-blocking, close-on-exec, SO_REUSEADDR, and below
   FD_SETSIZE. Returns the fd with the bound "host:port" in *bound_r
   (malloc'ed), or -1 with *error_r. */
int net_listen(const char *address, unsigned port, char **bound_r, char **error_r);

#endif
