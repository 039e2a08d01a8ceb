/* imap_status.h: the IMAP part of the server's status report
   (core/daemon/status.h): every session with its address, user, state
   and selected mailbox, and the mailboxes open. */
#ifndef IMAP_STATUS_H
#define IMAP_STATUS_H

#include "buf.h"
#include "imap_server.h"

void imap_server_status(const struct imap_server *server, struct buf *out);

#endif
