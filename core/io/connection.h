/* connection.h: one non-blocking stream connection on the event loop,
   the I/O half of every IMAP and SMTP session.

   A connection owns its fd (closed when the connection is freed), an
   input buffer and an output buffer. Input is read in chunks of at most
   CONN_READ_CHUNK per readable event and handed to the owner, which
   consumes what it can and leaves the rest buffered. Output is queued by
   the owner in connection_outbuf() and written as the peer takes it, at
   most write_cap octets per event so that one big answer cannot starve
   the other connections.

   THE OUTPUT CONTRACT. A connection with pending output or an unfinished
   command is always waiting for the event that lets it go on:
   - while output is queued (in the buffer or held by a layer), the
     connection watches the socket event that lets it be written (usually
     writability; see the layers below), and only then;
   - whoever takes connection_outbuf() gets a flush after the dispatch
     pass at the latest, even if it never calls connection_flush();
   - after output the owner queued has been written down below the
     low-water mark (high_water / 2), the owner's output callback is
     called, from the loop (a socket event or the end of a pass), never
     nested in a call of the owner. An owner with more to produce (a big
     FETCH) produces the next piece there; as long as it queues something
     it is called again once that is written, so it needs nobody else to
     "ask to write again";
   - input is read while the connection is not closing, its unsent output
     is below the high-water mark and its unconsumed input below
     CONN_IN_MAX. Reading resumes by itself when either drops (the owner
     consumes input only from its input or output callbacks, or calls
     connection_flush() after consuming elsewhere).

   Freeing: connections are never freed in the middle of a dispatch pass.
   connection_kill() stops all I/O at once and, after the pass, calls the
   owner's destroy callback, which frees the session and the connection
   (connection_free). Outside a running loop (shutdown, tests) the owner
   may call connection_free() directly.

   LAYERS: see conn_layer.h. */
#ifndef CONNECTION_H
#define CONNECTION_H

#include "lib.h"
#include "buf.h"
#include "event.h"
#include "conn_layer.h"

#include <sys/types.h>

/* Defaults: output above the high-water mark stops reading (and the
   owner's command processing); write cap per event; read chunk. */
#define CONN_OUT_HIGH_WATER (256 * 1024)
#define CONN_WRITE_CAP (256 * 1024)
#define CONN_READ_CHUNK 16384
/* Unconsumed input above this stops reading. */
#define CONN_IN_MAX (CONN_READ_CHUNK * 4)

struct connection;

struct connection_callbacks {
	/* New input is buffered (connection_input()). */
	void (*input)(void *ctx);
	/* Output the owner queued was written down below the low-water
	   mark: produce more, or go on with input held back. */
	void (*output)(void *ctx);
	/* The peer closed (reason "connection closed by client") or the
	   socket failed ("read failed", "connection reset", "write failed"):
	   the owner calls connection_kill() with this reason or its own (the
	   connection is killed with reason if it does not). Called from the
	   loop, or from connection_flush() when a write fails. */
	void (*hangup)(void *ctx, const char *reason);
	/* After the pass that killed the connection: the owner frees its
	   session and the connection. */
	void (*destroy)(void *ctx);
	/* Optional: true while the owner waits for an event outside the
	   connection that will call it back (a job, the login check, a
	   timer), so that not reading its input is no stall (THE WATCH
	   INVARIANT). */
	bool (*waiting)(void *ctx);
};

/* THE WATCH INVARIANT. After the owner had its turn (its input or output
   callback returned, or a deferred pass ended), a connection is reading
   (it watches the socket event that lets it read), writing (the event
   that lets its output out), closing or dead, has a pass scheduled, or
   its owner is waiting (callbacks.waiting). Anything else is a session
   no event will ever wake, whose client's close would go unseen. It is
   checked there every time: a breach is logged once per connection, the
   owner's input callback is called once more (a lost wake-up is then
   only late), and connection_watch_strict (set by the tests, or by
   IMAPSERVER_STRICT=1 in the environment of the daemons) makes it an
   abort(), so that no test can pass over one. */
extern bool connection_watch_strict;
/* Breaches of the invariant seen so far (for tests and --status). */
extern unsigned long connection_watch_breaches;

struct connection_settings {
	size_t out_high_water; /* 0: CONN_OUT_HIGH_WATER */
	size_t write_cap;      /* 0: CONN_WRITE_CAP */
};

/* Takes fd (connected, non-blocking, close-on-exec, below FD_SETSIZE).
   cb must outlive the connection. set may be NULL (defaults). */
struct connection *connection_new(struct event_loop *loop, int fd,
				  const struct connection_settings *set,
				  const struct connection_callbacks *cb, void *ctx);
/* Frees the layers, closes the fd, wipes the input. Sets *conn NULL. */
void connection_free(struct connection **conn);

/* Pushes layer on top of the stack (the connection frees it). */
void connection_push_layer(struct connection *conn, struct conn_layer *layer);

/* STARTTLS: drops the unconsumed input (what a client pipelined behind
   the command was sent in clear and must not be taken as if it came
   over the new layer: the command injection of CVE-2011-0411), stops
   reading, and pushes layer once the output queued so far (the answer
   to the command) is written below the current top. Then reading goes
   on through the new layer. */
void connection_start_layer(struct connection *conn, struct conn_layer *layer);
/* COMPRESS (RFC 4978): as connection_start_layer(), but the unconsumed
   input is not dropped: what the client pipelined behind the command
   was sent through the new layer, so it is handed to the layer (its
   take_input, which it must have) and decoded before anything read
   below. The owner sees no input until the layer is pushed. */
void connection_start_layer_keep_input(struct connection *conn, struct conn_layer *layer);
/* True if a layer of that vtable name is in the stack or pending. */
bool connection_has_layer(const struct connection *conn, const char *name);
/* The top layer (the socket layer's vtable name is "socket"). */
const struct conn_layer *connection_top_layer(const struct connection *conn);

/* Unconsumed input, and how much of it. */
const char *connection_input(const struct connection *conn, size_t *len_r);
/* Marks n octets of input consumed. Consumed input is wiped (it may
   have held a password) and the buffer given back once all is. */
void connection_input_consume(struct connection *conn, size_t n);

/* The output buffer: what the owner appends is sent after what is
   queued (and flushed after this pass at the latest). */
struct buf *connection_outbuf(struct connection *conn);
/* Queued output not yet written, in octets, layers included. */
size_t connection_out_pending(const struct connection *conn);
/* Writes what it can now (at most write_cap) and updates what the
   connection waits for. Never calls the owner's callbacks. */
void connection_flush(struct connection *conn);

/* The owner has more to produce even though it queued nothing (a
   command that waits for drained output): its output callback is called
   after this pass, or once what is queued drains. */
void connection_await_drain(struct connection *conn);

/* Stops reading and closes once the queued output is written (a
   "* BYE", a "221"); reason is for connection_close_reason(). */
void connection_close_after_flush(struct connection *conn, const char *reason);
/* Ends the connection now: queued output is dropped, the fd is no longer
   watched, and destroy is called after the pass. The first reason given
   (here or to connection_close_after_flush) is kept. */
void connection_kill(struct connection *conn, const char *reason);
/* Drops the queued output (the peer is gone) without killing. */
void connection_discard_output(struct connection *conn);

bool connection_is_closing(const struct connection *conn);
bool connection_is_dead(const struct connection *conn);
/* The first reason given to close or kill, or NULL. */
const char *connection_close_reason(const struct connection *conn);
int connection_fd(const struct connection *conn);

/* Why a server holding count of max connections (or shutting down)
   refuses fd, or NULL if it may take it: fd beyond FD_SETSIZE, the
   limit, shutdown. */
const char *connection_refusal_reason(int fd, size_t count, size_t max, bool shutting_down);
/* Sends line (the protocol's refusal, CRLF included) without blocking,
   best effort, and closes fd. */
void connection_refuse(int fd, const char *line);

#endif
