/* imap_client.h: one IMAP session (internal to the server: imap_client.c
   does its I/O and dispatch, imap_cmds.c its commands). */
#ifndef IMAP_CLIENT_H
#define IMAP_CLIENT_H

#include "connection.h"
#include "imap_server.h"
#include "imap_parser.h"
#include "mailbox.h"

enum client_state {
	CLIENT_NOT_AUTH,
	CLIENT_AUTH,
	CLIENT_SELECTED,
	CLIENT_LOGOUT,
};

/* What the session does with its input. */
enum client_mode {
	MODE_COMMAND,           /* parsing commands */
	MODE_AUTH_CONT,         /* AUTHENTICATE: waiting for the client's response line */
	MODE_IDLE,              /* IDLE: waiting for DONE */
	MODE_DELAY,             /* a login is being checked, or a failure answered
				   after a delay */
	MODE_FETCH,             /* a big FETCH continues as output drains */
};

struct fetch_job;

struct client {
	struct imap_server *server;
	struct server_gen *gen;
	struct client *prev, *next;
	/* The socket, its input and output buffers (connection.h). */
	struct connection *conn;
	char sid[24];
	char peer[64];

	struct imap_parser *parser;

	enum client_state state;
	enum client_mode mode;
	char *user;
	struct mailbox *mbox;
	struct mbox_view *view;
	/* Tag of the command that waits (IDLE, AUTHENTICATE, a delayed
	   login, a suspended FETCH). */
	char *wait_tag;
	struct event_timer *delay_timer;
	struct auth_request *auth_req;  /* a login being checked */
	char *pending_user;
	struct fetch_job *fetch;

	int64_t deadline;       /* monotonic ms: autologout */
	unsigned bad_count;
	unsigned auth_failures;
	/* RFC 7162: enabled for the rest of the connection (ENABLE, or a
	   CONDSTORE enabling command). QRESYNC implies CONDSTORE. */
	bool condstore, qresync;
	/* The session ends once what is queued is written. Set by
	   client_disconnect() and by LOGOUT; client_flush() passes it on to
	   the connection. */
	bool closing;
	char *close_reason;
};

/* Command handlers answer through these. */
void client_send(struct client *c, const char *fmt, ...) ATTR_FORMAT(2, 3);
void client_send_tagged(struct client *c, const char *tag, const char *fmt, ...)
	ATTR_FORMAT(3, 4);
/* Queues "* BYE reason" and closes the session once it is written. */
void client_disconnect(struct client *c, const char *reason);
/* Writes what is queued; called by handlers that finish asynchronously. */
void client_flush(struct client *c);
/* Brings the selected view in line (untagged updates). */
void client_sync_view(struct client *c, bool allow_expunge);
/* Resumes reading commands after an asynchronous command finished. */
void client_resume(struct client *c);
/* The hub's notify callback for the session's view. */
void client_mailbox_notify(void *ctx);
/* The session's output buffer: what a handler appends here is sent after
   what is already queued. */
struct buf *client_outbuf(struct client *c);
/* Queued output not yet written, in octets. */
size_t client_out_pending(const struct client *c);
/* Leaves the selected mailbox (no expunge). */
void client_unselect(struct client *c);

/* imap_cmds.c */
/* Runs cmd. Returns true if the command completed (its tagged answer is
   queued), false if it continues asynchronously (IDLE, AUTHENTICATE,
   delayed login, big FETCH). */
bool imap_cmd_dispatch(struct client *c, const struct imap_command *cmd);
/* A line received in MODE_AUTH_CONT or MODE_IDLE. */
void imap_cmd_continuation_line(struct client *c, const char *line, size_t len);
/* Continues a suspended FETCH; returns true when it has completed. */
bool imap_cmd_fetch_continue(struct client *c);
void imap_cmd_fetch_abort(struct client *c);
/* The capability list for the session's state. */
const char *imap_capabilities(const struct client *c);

/* Output above this stops command processing until it drains (the
   connection's high-water mark; its write cap and read chunk are the
   connection's defaults too). */
#define CLIENT_OUT_HIGH_WATER CONN_OUT_HIGH_WATER

#endif
