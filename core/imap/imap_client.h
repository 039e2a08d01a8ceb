/* imap_client.h: one IMAP session (internal to the server: imap_client.c
   does its I/O and dispatch, imap_commands.c and cmd_*.c its commands). */
#ifndef IMAP_CLIENT_H
#define IMAP_CLIENT_H

#include "connection.h"
#include "imap_server.h"
#include "imap_parser.h"
#include "mailbox.h"
#include "seqset.h"

enum client_state {
	CLIENT_NOT_AUTH,
	CLIENT_AUTH,
	CLIENT_SELECTED,
	CLIENT_LOGOUT,
};

struct client_command;
struct notify;

struct client {
	struct imap_server *server;
	struct server_gen *gen;
	struct client *prev, *next;
	/* The socket, its input and output buffers (connection.h). */
	struct connection *conn;
	char sid[24];
	char peer[64];
	char addr[ADDR_KEY_MAX];        /* addr_key() of the peer's host */
	/* The peer is loopback (auth.plaintext = "loopback" lets it log in
	   without TLS). */
	bool loopback;
	/* The channel is TLS (implicit, or since STARTTLS was answered);
	   until the handshake is done it must be within tls_deadline. */
	bool tls, tls_logged;
	int64_t tls_deadline;   /* monotonic ms */

	struct imap_parser *parser;

	enum client_state state;
	char *user;
	struct mailbox *mbox;
	struct mbox_view *view;
	/* The view's keywords the client has heard of in FLAGS (RFC 3501
	   7.2.6; imap_view_announce_keywords()). */
	unsigned keywords_announced;
	/* The command that has not finished: it waits for input (IDLE,
	   AUTHENTICATE), a login check or delay, or drained output (a big
	   FETCH). No other command is read meanwhile. NULL between commands. */
	struct client_command *cmd;

	int64_t deadline;       /* monotonic ms: autologout */
	unsigned bad_count;
	unsigned auth_failures;
	/* RFC 7162: enabled for the rest of the connection (ENABLE, or a
	   CONDSTORE enabling command). QRESYNC implies CONDSTORE. */
	bool condstore, qresync;
	/* SEARCHRES (RFC 5182): the UIDs of the last SEARCH RETURN (SAVE),
	   "$" in a sequence set; emptied when a mailbox is selected or left.
	   UIDs, so that expunged messages fall out by themselves (2.1). */
	struct seqset searchres;
	/* RFC 9051, after ENABLE IMAP4rev2: mailbox names are UTF-8 both
	   ways (no modified UTF-7), SEARCH answers ESEARCH, \Recent and
	   RECENT are not shown, SELECT sends the mailbox's LIST line. */
	bool rev2;
	/* RFC 9586, after ENABLE UIDONLY: no message sequence number either
	   way: the commands that take them answer BAD [UIDREQUIRED], FETCH
	   responses are "* uid UIDFETCH (...)", expunges VANISHED. */
	bool uidonly;
	/* NOTIFY (RFC 5465, notify.h): NULL unless the client asked. */
	struct notify *notify;
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
/* The login succeeded: the session is user's (takes the malloc'ed
   user), the input limits of the configuration apply from the next
   command on and the login deadline gives way to the idle one. */
void client_logged_in(struct client *c, char *user);
/* STARTTLS was answered OK (queued): TLS starts once it is written. */
void client_start_tls(struct client *c);
/* May the session send a password now (auth.plaintext, TLS, peer)? */
bool client_plaintext_allowed(const struct client *c);
/* Leaves the selected mailbox (no expunge). */
void client_unselect(struct client *c);

/* notify.c: NOTIFY (RFC 5465, notify.h). NOTIFY NONE and the end of
   the session forget it all; after the selected view was brought in
   line, the FETCH of MessageNew (fetch-att) for the new messages; the
   session leaves its selected mailbox. */
void notify_free(struct client *c);
void notify_view_synced(struct client *c);
void notify_unselected(struct client *c);

/* imap_commands.c: the command lifecycle (the commands are cmd_*.c). */
/* Runs a parsed command (what it keeps it copies: the parser's memory
   may go). Returns true if it completed (its tagged answer is queued),
   false if it waits as c->cmd (IDLE, AUTHENTICATE, a login being
   checked, a big FETCH). */
bool client_command_start(struct client *c, const struct imap_command *parsed);
/* A line of input for c->cmd, which waits for one (c->cmd->input). */
void client_command_input(struct client *c, const char *line, size_t len);
/* Calls c->cmd again, which waits for output to drain (c->cmd->output).
   Returns true when it has completed (then c->cmd is NULL). */
bool client_command_output(struct client *c);
/* Frees c->cmd, if any, and cancels what it started (the session ends). */
void client_command_abort(struct client *c);
/* What the session's I/O needs to know of c->cmd (false if there is
   none): it waits for a line of input, for drained output, or hears of
   mailbox changes at once (IDLE); and its tag. */
bool client_command_wants_input(const struct client *c);
bool client_command_wants_output(const struct client *c);
bool client_command_live_updates(const struct client *c);
const char *client_command_tag(const struct client *c);
/* The capability list for the session's state. */
const char *imap_capabilities(const struct client *c);

/* Output above this stops command processing until it drains (the
   connection's high-water mark; its write cap and read chunk are the
   connection's defaults too). */
#define CLIENT_OUT_HIGH_WATER CONN_OUT_HIGH_WATER

/* A command that works through a whole mailbox without writing much
   (SEARCH of text) stops after about this many milliseconds of work and
   goes on in a later pass of the loop, as a big FETCH does when its
   output is queued (it returns false from its output callback): the
   other sessions are served in between. */
#define CLIENT_SLICE_MS 10

/* Before login, a command's literals together, and a line that a
   command waits for (AUTHENTICATE's response), are capped at this many
   octets, whatever limits.max_literal and limits.max_line say: enough for
   LOGIN and AUTHENTICATE PLAIN with long names and passwords, and a
   client that has not logged in cannot make the server buffer more (a
   larger literal is refused at its "{n}", before any of its octets is
   read). */
#define IMAP_PRELOGIN_MAX_INPUT 8192
/* Before login, a command line (literals excluded) is capped at this
   many octets, or limits.max_line if that is smaller: the longest ID of
   RFC 2971 3.3 (30 field-value pairs of up to 30 and 1024 octets) is
   about 32 KB, and Dovecot takes 64 KiB lines before login too. */
#define IMAP_PRELOGIN_MAX_LINE 65536
/* Before login, a command holds at most this many arguments (a list and
   each of its elements count): an ID has at most 61. With the line cap
   this bounds what the argument tree of one command takes (not about
   IMAP_PRELOGIN_MAX_LINE times the size of an argument). */
#define IMAP_PRELOGIN_MAX_ARGS 256

#endif
