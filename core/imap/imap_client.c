/* imap_client.c: session I/O, the command loop and the server around it.

   Input is read into a per-session buffer in bounded chunks and fed to the
   resumable parser; output is queued and written as the socket takes it.
   Sessions are closed after the dispatch pass that decided it (the loop
   may still hold their io in its current pass), never in the middle. */
#include "imap_client.h"
#include "imap_cmd.h"
#include "imap_view.h"
#include "log.h"
#include "registry.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void client_input(void *ctx);
static void client_output(void *ctx);
static void client_output_drained(struct client *c);
static void client_wait_output(struct client *c);
static void client_process(struct client *c);
static void client_destroy(struct client *c);

struct buf *
client_outbuf(struct client *c)
{
	return &c->out;
}

size_t
client_out_pending(const struct client *c)
{
	return c->out.len - c->out_pos;
}

void
client_send(struct client *c, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	buf_vprintf(&c->out, fmt, args);
	va_end(args);
	buf_append(&c->out, "\r\n", 2);
}

void
client_send_tagged(struct client *c, const char *tag, const char *fmt, ...)
{
	va_list args;

	buf_append_str(&c->out, tag);
	buf_append_c(&c->out, ' ');
	va_start(args, fmt);
	buf_vprintf(&c->out, fmt, args);
	va_end(args);
	buf_append(&c->out, "\r\n", 2);
}

void
client_disconnect(struct client *c, const char *reason)
{
	if (c->closing)
		return;
	client_send(c, "* BYE %s", reason);
	c->closing = true;
	c->deadline = mono_ms() + 10000;
	if (c->close_reason == NULL)
		c->close_reason = xstrdup(reason);
	if (c->io != NULL)
		event_io_want_read(c->io, false);
}

/* Closing for a reason that leaves nothing to say (the peer is gone). */
static void
client_abort(struct client *c, const char *reason)
{
	if (c->close_reason == NULL)
		c->close_reason = xstrdup(reason);
	c->closing = true;
	c->out_pos = c->out.len;
}

void
client_unselect(struct client *c)
{
	mbox_view_free(&c->view);
	mailbox_unref(&c->mbox);
	if (c->state == CLIENT_SELECTED)
		c->state = CLIENT_AUTH;
}

void
client_sync_view(struct client *c, bool allow_expunge)
{
	if (c->view != NULL)
		imap_view_sync(c->view, &c->out, allow_expunge);
}

void
client_mailbox_notify(void *ctx)
{
	struct client *c = ctx;

	/* Only a session in IDLE hears of changes at once; the others at
	   their next command (RFC 3501 7.4.1: no EXPUNGE between commands). */
	if (c->cmd == NULL || !c->cmd->live_updates || c->closing)
		return;
	client_sync_view(c, true);
	client_flush(c);
}

void
client_flush(struct client *c)
{
	size_t written = 0;

	while (c->out_pos < c->out.len && written < CLIENT_WRITE_CAP) {
		size_t n = c->out.len - c->out_pos;
		if (n > CLIENT_WRITE_CAP - written)
			n = CLIENT_WRITE_CAP - written;
		ssize_t ret = send(c->fd, c->out.data + c->out_pos, n, MSG_NOSIGNAL);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			client_abort(c, errno == EPIPE || errno == ECONNRESET ?
						"connection reset" : "write failed");
			break;
		}
		c->out_pos += (size_t)ret;
		written += (size_t)ret;
	}
	if (c->out_pos == c->out.len) {
		/* Drained: give back what a big answer made it grow to. */
		if (c->out.cap > 16384)
			buf_free(&c->out);
		else
			buf_reset(&c->out);
		c->out_pos = 0;
	} else if (c->out_pos > 65536 && c->out_pos > c->out.len / 2) {
		buf_consume(&c->out, c->out_pos);
		c->out_pos = 0;
	}
	if (c->io != NULL)
		event_io_want_write(c->io, client_out_pending(c) > 0);
	if (c->closing && client_out_pending(c) == 0)
		c->dead = true;
}

static void
client_output(void *ctx)
{
	struct client *c = ctx;

	client_flush(c);
	if (c->dead)
		return;
	client_output_drained(c);
}

/* Called by the output side after it wrote: a command that waits for
   output to drain goes on, or the next commands are read. */
static void
client_output_drained(struct client *c)
{
	if (client_out_pending(c) >= CLIENT_OUT_HIGH_WATER / 2)
		return;
	if (c->cmd == NULL) {
		if (!c->closing)
			client_process(c);
		return;
	}
	if (c->cmd->output == NULL)
		return;
	if (client_command_output(c))
		client_resume(c);
	else {
		client_flush(c);
		client_wait_output(c);
	}
}

/* A command that waits for output to drain must hear of it even when
   the socket took everything at once: nothing is pending then, so the
   flush asked for no write event. Ask for one anyway (the socket is
   writable, so it comes at the next pass, after the other sessions'
   events); client_output then goes on with the command. */
static void
client_wait_output(struct client *c)
{
	if (c->cmd != NULL && c->cmd->output != NULL && !c->dead && c->io != NULL &&
	    client_out_pending(c) == 0)
		event_io_want_write(c->io, true);
}

void
client_resume(struct client *c)
{
	client_process(c);
}

static void
client_reset_deadline(struct client *c)
{
	unsigned secs = c->state == CLIENT_NOT_AUTH ? c->gen->cfg->login_timeout :
						     c->gen->cfg->idle_timeout;
	c->deadline = mono_ms() + (int64_t)secs * 1000;
}

static void
client_handle_parse_result(struct client *c, enum imap_parse_result res)
{
	const char *tag = imap_parser_tag(c->parser);
	const char *error = imap_parser_error(c->parser);

	if (tag == NULL || *tag == '\0')
		tag = "*";
	switch (res) {
	case IMAP_PARSE_LITERAL:
		client_send(c, "+ OK");
		break;
	case IMAP_PARSE_ERROR:
		client_send_tagged(c, tag, "BAD %s", error);
		imap_parser_reset(c->parser);
		if (++c->bad_count >= c->gen->cfg->max_bad_commands)
			client_disconnect(c, "Too many invalid commands.");
		break;
	case IMAP_PARSE_FATAL:
		log_info(c->sid, "closing: %s", error);
		client_send_tagged(c, tag, "BAD %s", error);
		client_disconnect(c, error);
		break;
	case IMAP_PARSE_COMMAND: {
		const struct imap_command *cmd = imap_parser_command(c->parser);
		/* Commands that wait copy what they keep, so the
		   arguments can go in either case. */
		(void)client_command_start(c, cmd);
		imap_parser_reset(c->parser);
		if (c->bad_count >= c->gen->cfg->max_bad_commands)
			client_disconnect(c, "Too many invalid commands.");
		break;
	}
	case IMAP_PARSE_NEED_MORE:
		break;
	}
}

/* Takes one line (up to LF) for a command that waits for one. Returns
   false if no complete line is there yet. */
static bool
client_take_line(struct client *c)
{
	const char *start = c->in.data + c->in_pos;
	size_t avail = c->in.len - c->in_pos;
	const char *lf = memchr(start, '\n', avail);
	size_t len;

	if (lf == NULL) {
		if (avail > c->gen->cfg->max_line)
			client_disconnect(c, "Line too long.");
		return false;
	}
	len = (size_t)(lf - start);
	c->in_pos += len + 1;
	if (len > 0 && start[len - 1] == '\r')
		len--;
	char *line = xstrndup(start, len);
	client_command_input(c, line, len);
	explicit_bzero(line, len);
	free(line);
	return true;
}

static void
client_process(struct client *c)
{
	/* Bounded: every pass consumes input or stops. */
	while (!c->closing && !c->dead && c->in_pos < c->in.len) {
		if (client_out_pending(c) >= CLIENT_OUT_HIGH_WATER)
			break;
		if (c->cmd == NULL) {
			size_t consumed = 0;
			enum imap_parse_result res =
				imap_parser_feed(c->parser, c->in.data + c->in_pos,
						 c->in.len - c->in_pos, &consumed);
			c->in_pos += consumed;
			client_handle_parse_result(c, res);
			if (res == IMAP_PARSE_NEED_MORE)
				break;
		} else if (c->cmd->input != NULL) {
			if (!client_take_line(c))
				break;
		} else {
			break;
		}
	}
	if (c->dead)
		return;
	if (c->in_pos == c->in.len) {
		/* Wipe: the buffer may have held a password. */
		if (c->in.data != NULL)
			explicit_bzero(c->in.data, c->in.len);
		buf_free(&c->in);
		c->in_pos = 0;
	}
	/* Read more only when there is room and we are not held back. */
	if (c->io != NULL)
		event_io_want_read(c->io, !c->closing &&
						  client_out_pending(c) < CLIENT_OUT_HIGH_WATER &&
						  c->in.len - c->in_pos < CLIENT_READ_CHUNK * 4);
	client_flush(c);
	client_wait_output(c);
}

static void
client_input(void *ctx)
{
	struct client *c = ctx;
	ssize_t ret;

	/* Read on the stack and keep only what arrived: an idle session
	   holds no read buffer at all. */
	char chunk[CLIENT_READ_CHUNK];
	ret = recv(c->fd, chunk, sizeof(chunk), 0);
	if (ret < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		client_abort(c, "read failed");
		c->dead = true;
		return;
	}
	if (ret == 0) {
		client_abort(c, "connection closed by client");
		c->dead = true;
		return;
	}
	buf_append(&c->in, chunk, (size_t)ret);
	explicit_bzero(chunk, (size_t)ret);
	client_reset_deadline(c);
	client_process(c);
}

static void
client_destroy(struct client *c)
{
	struct imap_server *server = c->server;

	log_info(c->sid, "disconnected%s%s%s%s", c->user != NULL ? " user=" : "",
		 c->user != NULL ? c->user : "", c->close_reason != NULL ? ": " : "",
		 c->close_reason != NULL ? c->close_reason : "");
	client_command_abort(c);
	client_unselect(c);
	event_io_remove(&c->io);
	close(c->fd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		server->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	server->client_count--;
	imap_parser_free(&c->parser);
	if (c->in.data != NULL)
		explicit_bzero(c->in.data, c->in.cap);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c->user);
	free(c->close_reason);
	server_gen_unref(&c->gen);
	free(c);
}

/* After each dispatch pass: sessions are destroyed only here, so no
   handler, notify callback or loop pass ever touches a freed one. */
static void
server_post_pass(void *ctx)
{
	struct imap_server *server = ctx;
	struct client *c, *next;

	for (c = server->clients; c != NULL; c = next) {
		next = c->next;
		if (c->dead)
			client_destroy(c);
	}
}

void
imap_server_accept_fd(struct imap_server *server, int fd, const char *peer)
{
	struct server_gen *gen = server->gen;
	struct client *c;

	if (!event_fd_ok(fd) || server->client_count >= gen->cfg->max_connections ||
	    server->shutting_down) {
		static const char bye[] = "* BYE Too many connections, try again later.\r\n";
		ssize_t ret ATTR_UNUSED = send(fd, bye, sizeof(bye) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		log_warn("-", "refused connection from %s: %s", peer,
			 event_fd_ok(fd) ? "max_connections reached" : "fd above FD_SETSIZE");
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->server = server;
	c->gen = gen;
	gen->refcount++;
	c->fd = fd;
	snprintf(c->sid, sizeof(c->sid), "s%llu", (unsigned long long)++server->session_counter);
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->parser = imap_parser_new(gen->cfg->max_line, gen->cfg->max_literal);
	c->io = event_io_add(server->loop, fd, client_input, client_output, c);
	c->next = server->clients;
	if (server->clients != NULL)
		server->clients->prev = c;
	server->clients = c;
	server->client_count++;
	client_reset_deadline(c);
	log_info(c->sid, "connect from %s", peer);
	client_send(c, "* OK [CAPABILITY %s] imapserver ready.", imap_capabilities(c));
	client_flush(c);
}

static void
server_tick(void *ctx)
{
	struct imap_server *server = ctx;
	int64_t now = mono_ms();
	struct client *c, *next;

	server->tick_timer = event_timer_add(server->loop, 1000, server_tick, server);
	for (c = server->clients; c != NULL; c = next) {
		next = c->next;
		if (now >= c->deadline && c->closing) {
			/* The peer does not read its BYE. */
			client_abort(c, "peer stopped reading");
			c->dead = true;
		} else if (now >= c->deadline) {
			log_info(c->sid, "autologout after %s",
				 c->state == CLIENT_NOT_AUTH ? "login_timeout" : "idle_timeout");
			client_disconnect(c, "Autologout; idle for too long.");
			client_flush(c);
		}
	}
}

struct imap_server *
imap_server_new(struct event_loop *loop, struct server_gen *gen, int listen_fd)
{
	struct imap_server *server = xcalloc(1, sizeof(*server));

	server->loop = loop;
	server->gen = gen;
	gen->refcount++;
	server->listen_fd = listen_fd;
	server->tick_timer = event_timer_add(loop, 1000, server_tick, server);
	event_loop_set_post_pass(loop, server_post_pass, server);
	return server;
}

void
imap_server_set_gen(struct imap_server *server, struct server_gen *gen)
{
	gen->refcount++;
	server_gen_unref(&server->gen);
	server->gen = gen;
}

void
imap_server_free(struct imap_server **_server)
{
	struct imap_server *server = *_server;

	if (server == NULL)
		return;
	*_server = NULL;
	server->shutting_down = true;
	while (server->clients != NULL) {
		struct client *c = server->clients;
		if (!c->closing)
			client_send(c, "* BYE Server shutting down.");
		/* Best effort: one write, then close. */
		client_flush(c);
		client_abort(c, "server shutting down");
		client_destroy(c);
	}
	event_timer_remove(&server->tick_timer);
	server_gen_unref(&server->gen);
	free(server);
}
