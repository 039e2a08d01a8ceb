/* connection.c: buffered non-blocking connections (see connection.h).

   Every connection has at most one deferred call pending (conn->defer),
   "the service": it frees a dead connection through its owner, flushes
   what was queued during the pass, reads input a layer still holds and
   calls the owner's output callback when queued output has drained. */
#include "connection.h"
#include "log.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

enum conn_wait {
	CONN_WAIT_READ,
	CONN_WAIT_WRITE,
};

struct connection {
	struct event_loop *loop;
	int fd;
	struct event_io *io;
	const struct connection_callbacks *cb;
	void *ctx;
	size_t high_water, write_cap;

	struct conn_layer sock; /* the bottom layer */
	struct conn_layer *top;
	/* Pushed once the output queued before it is written. */
	struct conn_layer *pending_layer;
	/* Set by the socket layer when recv()/send() would block. */
	bool sock_blocked_read, sock_blocked_write;
	/* The socket event a blocked read / write of the stack waits for. */
	enum conn_wait in_wait, out_wait;

	struct buf in; /* received, from in_pos on not yet consumed */
	size_t in_pos;
	struct buf out; /* to send, from out_pos on */
	size_t out_pos;

	struct event_defer *defer;
	char *close_reason;
	bool closing;     /* write what is queued, then kill */
	bool dead;        /* destroy after this pass */
	bool notify;      /* the owner queued output: tell it when drained */
	bool no_quickack; /* not TCP: TCP_QUICKACK is not tried again */
	bool watch_breach; /* the watch invariant's breach was logged */
	bool kick;         /* hand the input to the owner again (conn_service) */
};

bool connection_watch_strict;
unsigned long connection_watch_breaches;

static void conn_update(struct connection *conn);

/* The socket layer. */

static ssize_t
sock_read(struct conn_layer *layer, void *data, size_t size)
{
	struct connection *conn = layer->conn;

	return conn_sock_recv(conn->fd, data, size, &conn->sock_blocked_read);
}

static ssize_t
sock_write(struct conn_layer *layer, const void *data, size_t size)
{
	struct connection *conn = layer->conn;

	return conn_sock_send(conn->fd, data, size, &conn->sock_blocked_write);
}

static const struct conn_layer_vfuncs sock_vfuncs = {
	.name = "socket",
	.read = sock_read,
	.write = sock_write,
};

static size_t
layers_out_pending(const struct connection *conn)
{
	size_t n = 0;

	for (const struct conn_layer *l = conn->top; l != NULL; l = l->below) {
		if (l->v->out_pending != NULL)
			n += l->v->out_pending(l);
	}
	return n;
}

static bool
layers_in_pending(const struct connection *conn)
{
	for (const struct conn_layer *l = conn->top; l != NULL; l = l->below) {
		if (l->v->in_pending != NULL && l->v->in_pending(l))
			return true;
	}
	return false;
}

/* Pushes what the layers hold down, top first. Returns 0, or -1 with
   errno (EAGAIN: some is left). */
static int
layers_flush(struct connection *conn)
{
	for (struct conn_layer *l = conn->top; l != NULL; l = l->below) {
		if (l->v->flush != NULL && l->v->flush(l) < 0)
			return -1;
	}
	return 0;
}

/* The service. */

static void
conn_service(void *ctx);

static void
conn_schedule(struct connection *conn)
{
	if (conn->defer == NULL)
		conn->defer = event_defer_add(conn->loop, conn_service, conn);
}

static void conn_on_read(void *ctx);
static void conn_on_write(void *ctx);

struct connection *
connection_new(struct event_loop *loop, int fd, const struct connection_settings *set,
	       const struct connection_callbacks *cb, void *ctx)
{
	struct connection *conn = xcalloc(1, sizeof(*conn));

	conn->loop = loop;
	conn->fd = fd;
	conn->cb = cb;
	conn->ctx = ctx;
	conn->high_water = set != NULL && set->out_high_water > 0 ? set->out_high_water :
								    CONN_OUT_HIGH_WATER;
	conn->write_cap = set != NULL && set->write_cap > 0 ? set->write_cap : CONN_WRITE_CAP;
	conn->sock.v = &sock_vfuncs;
	conn->sock.conn = conn;
	conn->top = &conn->sock;
	conn->io = event_io_add(loop, fd, conn_on_read, conn_on_write, conn);
	return conn;
}

void
connection_free(struct connection **_conn)
{
	struct connection *conn = *_conn;

	if (conn == NULL)
		return;
	*_conn = NULL;
	if (conn->pending_layer != NULL)
		conn->pending_layer->v->free(conn->pending_layer);
	while (conn->top != &conn->sock) {
		struct conn_layer *l = conn->top;
		conn->top = l->below;
		l->v->free(l);
	}
	event_defer_remove(&conn->defer);
	event_io_remove(&conn->io);
	close(conn->fd);
	if (conn->in.data != NULL)
		explicit_bzero(conn->in.data, conn->in.cap);
	buf_free(&conn->in);
	buf_free(&conn->out);
	free(conn->close_reason);
	free(conn);
}

void
connection_push_layer(struct connection *conn, struct conn_layer *layer)
{
	layer->below = conn->top;
	layer->conn = conn;
	conn->top = layer;
	conn_update(conn);
}

/* Drops (wipes) the unconsumed input and makes layer the pending one. */
static void
conn_start_pending(struct connection *conn, struct conn_layer *layer)
{
	if (conn->pending_layer != NULL)
		fatal("connection_start_layer: a layer is already pending");
	conn->in_pos = conn->in.len;
	connection_input_consume(conn, 0);
	layer->conn = conn;
	conn->pending_layer = layer;
	conn_update(conn);
	conn_schedule(conn);
}

void
connection_start_layer(struct connection *conn, struct conn_layer *layer)
{
	conn_start_pending(conn, layer);
}

void
connection_start_layer_keep_input(struct connection *conn, struct conn_layer *layer)
{
	size_t len;
	const char *data = connection_input(conn, &len);

	if (layer->v->take_input == NULL)
		fatal("connection_start_layer_keep_input: layer %s cannot take input",
		      layer->v->name);
	if (len > 0)
		layer->v->take_input(layer, data, len);
	conn_start_pending(conn, layer);
}

bool
connection_has_layer(const struct connection *conn, const char *name)
{
	if (conn->pending_layer != NULL && strcmp(conn->pending_layer->v->name, name) == 0)
		return true;
	for (const struct conn_layer *l = conn->top; l != NULL; l = l->below) {
		if (strcmp(l->v->name, name) == 0)
			return true;
	}
	return false;
}

const struct conn_layer *
connection_top_layer(const struct connection *conn)
{
	return conn->top;
}

/* The output before the pending layer is written: push it. */
static void
conn_push_pending(struct connection *conn)
{
	struct conn_layer *layer = conn->pending_layer;

	if (layer == NULL || connection_out_pending(conn) > 0)
		return;
	conn->pending_layer = NULL;
	conn->in_wait = CONN_WAIT_READ;
	conn->out_wait = CONN_WAIT_WRITE;
	connection_push_layer(conn, layer);
}

const char *
connection_input(const struct connection *conn, size_t *len_r)
{
	*len_r = conn->in.len - conn->in_pos;
	return conn->in.data != NULL ? conn->in.data + conn->in_pos : "";
}

void
connection_input_consume(struct connection *conn, size_t n)
{
	if (n > conn->in.len - conn->in_pos)
		n = conn->in.len - conn->in_pos;
	conn->in_pos += n;
	if (conn->in_pos == conn->in.len) {
		/* Wipe: the buffer may have held a password (and held more
		   than len before it was compacted). */
		if (conn->in.data != NULL)
			explicit_bzero(conn->in.data, conn->in.cap);
		buf_free(&conn->in);
		conn->in_pos = 0;
	} else if (conn->in_pos >= CONN_READ_CHUNK) {
		explicit_bzero(conn->in.data, conn->in_pos);
		buf_consume(&conn->in, conn->in_pos);
		conn->in_pos = 0;
	}
}

struct buf *
connection_outbuf(struct connection *conn)
{
	if (!conn->dead) {
		conn->notify = true;
		conn_schedule(conn);
	}
	return &conn->out;
}

size_t
connection_out_pending(const struct connection *conn)
{
	return conn->out.len - conn->out_pos + layers_out_pending(conn);
}

static bool
conn_wants_input(const struct connection *conn)
{
	return !conn->closing && !conn->dead && conn->pending_layer == NULL &&
	       connection_out_pending(conn) < conn->high_water &&
	       conn->in.len - conn->in_pos < CONN_IN_MAX;
}

/* Sets the socket events watched from the state (see the contract). */
static void
conn_update(struct connection *conn)
{
	bool in, out;

	if (conn->io == NULL)
		return;
	in = conn_wants_input(conn);
	out = connection_out_pending(conn) > 0;
	event_io_want_read(conn->io, (in && conn->in_wait == CONN_WAIT_READ) ||
					     (out && conn->out_wait == CONN_WAIT_READ));
	event_io_want_write(conn->io, (in && conn->in_wait == CONN_WAIT_WRITE) ||
					      (out && conn->out_wait == CONN_WAIT_WRITE));
	if (in && layers_in_pending(conn))
		conn_schedule(conn);
}

/* THE WATCH INVARIANT (connection.h), checked after the owner's turn. */
static void
conn_check_watch(struct connection *conn)
{
	size_t unread;

	if (conn->dead || conn->closing || conn->defer != NULL || conn->io == NULL ||
	    conn_wants_input(conn) || connection_out_pending(conn) > 0 ||
	    conn->pending_layer != NULL ||
	    (conn->cb->waiting != NULL && conn->cb->waiting(conn->ctx)))
		return;
	connection_watch_breaches++;
	unread = conn->in.len - conn->in_pos;
	if (connection_watch_strict) {
		log_error("-", "connection fd %d watches nothing (%zu octets of input unread, "
			  "nothing to write, owner not waiting)", conn->fd, unread);
		abort();
	}
	if (conn->watch_breach)
		return;
	conn->watch_breach = true;
	log_error("-", "connection fd %d watches nothing (%zu octets of input unread, nothing "
		  "to write, owner not waiting): a bug; its input is handed over again",
		  conn->fd, unread);
	/* Once: a lost wake-up is then only late. */
	conn->kick = true;
	conn_schedule(conn);
}

/* A read or write failed with err: tells the owner and kills. A layer's
   protocol error (EPROTO) is named by the layer ("tls: handshake
   failed: wrong version number"). */
static void
conn_fail(struct connection *conn, int err, const char *reason)
{
	char *msg = NULL;

	for (const struct conn_layer *l = conn->top; err == EPROTO && l != NULL; l = l->below) {
		const char *why = l->v->error != NULL ? l->v->error(l) : NULL;
		if (why != NULL) {
			msg = xasprintf("%s: %s", l->v->name, why);
			break;
		}
	}
	if (msg != NULL)
		reason = msg;
	conn->cb->hangup(conn->ctx, reason);
	connection_kill(conn, reason);
	free(msg);
}

/* Writes at most write_cap octets of the buffer, then the layers' own. */
static void
conn_write(struct connection *conn)
{
	size_t written = 0;
	int err = 0;

	if (conn->dead)
		return;
	conn->sock_blocked_read = conn->sock_blocked_write = false;
	/* What the layers hold goes first: it makes room in them. */
	if (layers_flush(conn) < 0)
		err = errno;
	while (err == 0 && conn->out_pos < conn->out.len && written < conn->write_cap) {
		size_t n = conn->out.len - conn->out_pos;
		ssize_t ret;

		if (n > conn->write_cap - written)
			n = conn->write_cap - written;
		ret = conn_layer_write(conn->top, conn->out.data + conn->out_pos, n);
		if (ret <= 0) {
			/* A layer never takes nothing without saying why
			   (conn_layer.h); were it to, stop rather than spin. */
			err = ret < 0 ? errno : EPIPE;
			break;
		}
		conn->out_pos += (size_t)ret;
		written += (size_t)ret;
	}
	if ((err == 0 || err == EAGAIN) && layers_flush(conn) < 0)
		err = errno;
	if (err != 0 && err != EAGAIN) {
		conn_fail(conn, err, err == EPIPE || err == ECONNRESET ? "connection reset" :
									 "write failed");
		return;
	}
	conn->out_wait = conn->sock_blocked_read && !conn->sock_blocked_write ? CONN_WAIT_READ :
										CONN_WAIT_WRITE;
	if (conn->out_pos == conn->out.len) {
		/* Drained: give back what a big answer made it grow to. */
		if (conn->out.cap > 16384)
			buf_free(&conn->out);
		else
			buf_reset(&conn->out);
		conn->out_pos = 0;
	} else if (conn->out_pos > 65536 && conn->out_pos > conn->out.len / 2) {
		buf_consume(&conn->out, conn->out_pos);
		conn->out_pos = 0;
	}
	if (conn->closing && connection_out_pending(conn) == 0) {
		connection_kill(conn, "closed");
		return;
	}
	conn_push_pending(conn);
	conn_update(conn);
}

/* Acknowledges what was read at once. Called when the owner took input
   and has nothing to answer yet: a command that waits for the rest of
   itself, typically the CRLF after a literal. A client with Nagle's
   algorithm on (Python's imaplib sends a literal and its closing CRLF in
   two writes) holds that small write until the literal is acknowledged,
   and the kernel's delayed ACK would hold the acknowledgement for up to
   40 ms, since no answer is going out to carry it: every such APPEND
   would wait 40 ms. TCP_QUICKACK is not permanent: the kernel drops it
   again by itself, so it is set after each such read. */
static void
conn_quickack(struct connection *conn)
{
#ifdef TCP_QUICKACK
	int one = 1;

	if (conn->no_quickack)
		return;
	if (setsockopt(conn->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one)) < 0)
		conn->no_quickack = true;       /* a socketpair, a pipe */
#else
	(void)conn;
#endif
}

/* Reads one chunk through the stack and hands it to the owner. */
static void
conn_read(struct connection *conn)
{
	char chunk[CONN_READ_CHUNK];
	ssize_t ret;

	conn->sock_blocked_read = conn->sock_blocked_write = false;
	ret = conn_layer_read(conn->top, chunk, sizeof(chunk));
	/* The read may have taken in what a waiting write needed (TLS: the
	   peer's Finished, which lets the greeting out) and left nothing
	   more to read: retry the write once the socket is writable, which
	   it is, rather than wait for input that may never come. */
	if (conn->out_wait == CONN_WAIT_READ && connection_out_pending(conn) > 0)
		conn->out_wait = CONN_WAIT_WRITE;
	if (ret < 0) {
		if (errno == EAGAIN) {
			conn->in_wait = conn->sock_blocked_write && !conn->sock_blocked_read ?
						CONN_WAIT_WRITE :
						CONN_WAIT_READ;
			conn_update(conn);
			return;
		}
		conn_fail(conn, errno, "read failed");
		return;
	}
	if (ret == 0) {
		conn->cb->hangup(conn->ctx, "connection closed by client");
		connection_kill(conn, "connection closed by client");
		return;
	}
	conn->in_wait = CONN_WAIT_READ;
	buf_append(&conn->in, chunk, (size_t)ret);
	explicit_bzero(chunk, (size_t)ret);
	conn->cb->input(conn->ctx);
	if (!conn->dead && connection_out_pending(conn) == 0)
		conn_quickack(conn);
	conn_update(conn);
	conn_check_watch(conn);
}

/* Tells the owner its output drained, if it queued some. */
static void
conn_drained(struct connection *conn)
{
	if (conn->dead || conn->closing || !conn->notify ||
	    connection_out_pending(conn) >= conn->high_water / 2)
		return;
	conn->notify = false;
	conn->cb->output(conn->ctx);
	conn_update(conn);
	conn_check_watch(conn);
}

static void
conn_on_read(void *ctx)
{
	struct connection *conn = ctx;
	bool out = connection_out_pending(conn) > 0 && conn->out_wait == CONN_WAIT_READ;

	if (out) {
		conn_write(conn);
		conn_drained(conn);
	}
	if (!conn->dead && conn->in_wait == CONN_WAIT_READ && conn_wants_input(conn))
		conn_read(conn);
}

static void
conn_on_write(void *ctx)
{
	struct connection *conn = ctx;
	bool in = conn->in_wait == CONN_WAIT_WRITE && conn_wants_input(conn);

	if (connection_out_pending(conn) > 0 && conn->out_wait == CONN_WAIT_WRITE) {
		conn_write(conn);
		conn_drained(conn);
	}
	if (in && !conn->dead && conn_wants_input(conn))
		conn_read(conn);
}

static void
conn_service(void *ctx)
{
	struct connection *conn = ctx;

	conn->defer = NULL;
	if (conn->dead) {
		/* The owner frees the connection. */
		conn->cb->destroy(conn->ctx);
		return;
	}
	if (conn->closing || connection_out_pending(conn) > 0)
		conn_write(conn);
	if (!conn->dead && conn->pending_layer != NULL) {
		conn_push_pending(conn);
		conn_update(conn);
	}
	conn_drained(conn);
	if (!conn->dead && conn->kick) {
		conn->kick = false;
		conn->cb->input(conn->ctx);
		conn_update(conn);
	}
	if (!conn->dead && conn_wants_input(conn) && layers_in_pending(conn))
		conn_read(conn);
}

void
connection_flush(struct connection *conn)
{
	if (conn->dead)
		return;
	conn_write(conn);
	/* The owner hears of drained output from the loop, not from here. */
	if (!conn->dead && conn->notify && connection_out_pending(conn) < conn->high_water / 2)
		conn_schedule(conn);
}

void
connection_await_drain(struct connection *conn)
{
	if (conn->dead)
		return;
	conn->notify = true;
	conn_schedule(conn);
}

void
connection_close_after_flush(struct connection *conn, const char *reason)
{
	if (conn->close_reason == NULL)
		conn->close_reason = xstrdup(reason);
	if (conn->closing || conn->dead)
		return;
	conn->closing = true;
	conn_update(conn);
	conn_schedule(conn);
}

void
connection_kill(struct connection *conn, const char *reason)
{
	if (conn->close_reason == NULL)
		conn->close_reason = xstrdup(reason);
	if (conn->dead)
		return;
	conn->dead = true;
	conn->closing = true;
	connection_discard_output(conn);
	event_io_remove(&conn->io);
	conn_schedule(conn);
}

void
connection_discard_output(struct connection *conn)
{
	buf_free(&conn->out);
	conn->out_pos = 0;
}

bool
connection_is_closing(const struct connection *conn)
{
	return conn->closing;
}

bool
connection_is_dead(const struct connection *conn)
{
	return conn->dead;
}

const char *
connection_close_reason(const struct connection *conn)
{
	return conn->close_reason;
}

int
connection_fd(const struct connection *conn)
{
	return conn->fd;
}

const char *
connection_refusal_reason(int fd, size_t count, size_t max, bool shutting_down)
{
	if (!event_fd_ok(fd))
		return "fd above FD_SETSIZE";
	if (shutting_down)
		return "shutting down";
	if (count >= max)
		return "max_connections reached";
	return NULL;
}

void
connection_refuse(int fd, const char *line)
{
	ssize_t ret ATTR_UNUSED = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);

	close(fd);
}
