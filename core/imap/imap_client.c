/* imap_client.c: session I/O, the command loop and the server around it.

   The I/O is a core/io connection (connection.h): its input is fed to the
   resumable parser, output is queued in its buffer and written as the
   socket takes it. Sessions are destroyed by the connection's destroy
   callback, after the dispatch pass that ended them, never in the middle. */
#include "imap_client.h"
#include "imap_view.h"
#include "listener.h"
#include "net.h"
#include "tls.h"
#include "log.h"
#include "registry.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void client_wait_output(struct client *c);
static void client_process(struct client *c);
static void client_destroy(void *ctx);

struct buf *
client_outbuf(struct client *c)
{
	return connection_outbuf(c->conn);
}

size_t
client_out_pending(const struct client *c)
{
	return connection_out_pending(c->conn);
}

void
client_send(struct client *c, const char *fmt, ...)
{
	struct buf *out = client_outbuf(c);
	va_list args;

	va_start(args, fmt);
	buf_vprintf(out, fmt, args);
	va_end(args);
	buf_append(out, "\r\n", 2);
}

void
client_send_tagged(struct client *c, const char *tag, const char *fmt, ...)
{
	struct buf *out = client_outbuf(c);
	va_list args;

	buf_append_str(out, tag);
	buf_append_c(out, ' ');
	va_start(args, fmt);
	buf_vprintf(out, fmt, args);
	va_end(args);
	buf_append(out, "\r\n", 2);
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
	connection_close_after_flush(c->conn, c->close_reason);
}

/* Ending for a reason that leaves nothing to say (the peer is gone): the
   session is destroyed after this dispatch pass. */
static void
client_abort(struct client *c, const char *reason)
{
	if (c->close_reason == NULL)
		c->close_reason = xstrdup(reason);
	c->closing = true;
	connection_kill(c->conn, c->close_reason);
}

void
client_unselect(struct client *c)
{
	seqset_free(&c->searchres);
	notify_unselected(c);
	mbox_view_free(&c->view);
	mailbox_unref(&c->mbox);
	if (c->state == CLIENT_SELECTED)
		c->state = CLIENT_AUTH;
}

void
client_sync_view(struct client *c, bool allow_expunge)
{
	if (c->view == NULL)
		return;
	imap_view_announce_keywords(c->view, &c->keywords_announced, client_outbuf(c));
	imap_view_sync(c->view, client_outbuf(c), allow_expunge);
	notify_view_synced(c);
}

void
client_mailbox_notify(void *ctx)
{
	struct client *c = ctx;

	/* Only a session in IDLE hears of changes at once; the others at
	   their next command (RFC 3501 7.4.1: no EXPUNGE between commands). */
	if (!client_command_live_updates(c) || c->closing)
		return;
	client_sync_view(c, true);
	client_flush(c);
}

void
client_flush(struct client *c)
{
	/* LOGOUT only sets c->closing. */
	if (c->closing && !connection_is_closing(c->conn))
		connection_close_after_flush(c->conn, c->close_reason != NULL ? c->close_reason :
										  "closed");
	connection_flush(c->conn);
}

/* The queued output drained below the low-water mark: a command that
   waits for it goes on, or held-back input is processed. Returns true
   if a command still waits for drained output. */
static bool
client_output_drained(struct client *c)
{
	if (c->cmd == NULL) {
		if (!c->closing)
			client_process(c);
		return false;
	}
	if (!client_command_wants_output(c))
		return false;
	if (client_command_output(c)) {
		client_resume(c);
		return false;
	}
	client_flush(c);
	return true;
}

/* The connection's output callback. */
static void
client_output(void *ctx)
{
	struct client *c = ctx;

	if (client_output_drained(c))
		connection_await_drain(c->conn);
}

/* A command that waits for output to drain must hear of it even when
   the socket took everything at once (nothing is queued then, so no
   write event comes by itself): the connection calls client_output
   after this pass. */
static void
client_wait_output(struct client *c)
{
	if (client_command_wants_output(c) && !connection_is_dead(c->conn))
		connection_await_drain(c->conn);
}

void
client_resume(struct client *c)
{
	client_process(c);
}

bool
client_plaintext_allowed(const struct client *c)
{
	return config_plaintext_allowed(c->gen->cfg, c->tls, c->loopback);
}

/* The handshake must end within tls.handshake_timeout of its start. */
static void
client_tls_begin(struct client *c)
{
	c->tls = true;
	c->tls_deadline = mono_ms() + (int64_t)c->gen->cfg->tls_handshake_timeout * 1000;
}

void
client_start_tls(struct client *c)
{
	client_tls_begin(c);
	/* The input pipelined behind STARTTLS is dropped there. */
	connection_start_layer(c->conn, tls_layer_new_server(c->gen->tls));
}

/* Logs the TLS parameters once the handshake is done. */
static void
client_tls_check(struct client *c)
{
	const struct conn_layer *top;

	if (!c->tls || c->tls_logged)
		return;
	top = connection_top_layer(c->conn);
	if (!tls_layer_handshake_done(top))
		return;
	c->tls_logged = true;
	log_info(c->sid, "TLS: %s", tls_layer_describe(top));
}

/* The longest command line: capped before login. */
static size_t
client_max_line(const struct client *c)
{
	if (c->state == CLIENT_NOT_AUTH && c->gen->cfg->max_line > IMAP_PRELOGIN_MAX_LINE)
		return IMAP_PRELOGIN_MAX_LINE;
	return c->gen->cfg->max_line;
}

/* The longest line a command may wait for (AUTHENTICATE's response):
   capped lower before login, like a literal. */
static size_t
client_max_wait_line(const struct client *c)
{
	if (c->state == CLIENT_NOT_AUTH && c->gen->cfg->max_line > IMAP_PRELOGIN_MAX_INPUT)
		return IMAP_PRELOGIN_MAX_INPUT;
	return c->gen->cfg->max_line;
}

/* The largest literal (and total of a command's literals). */
static size_t
client_max_literal(const struct client *c)
{
	if (c->state == CLIENT_NOT_AUTH && c->gen->cfg->max_literal > IMAP_PRELOGIN_MAX_INPUT)
		return IMAP_PRELOGIN_MAX_INPUT;
	return c->gen->cfg->max_literal;
}

/* Input restarts the idle deadline of a logged-in session. The login
   deadline is set once, at connect: input does not move it, so that a
   client dribbling bytes cannot hold its slot for ever. */
static void
client_reset_deadline(struct client *c)
{
	if (c->state == CLIENT_NOT_AUTH)
		return;
	c->deadline = mono_ms() + (int64_t)c->gen->cfg->idle_timeout * 1000;
}

void
client_logged_in(struct client *c, char *user)
{
	free(c->user);
	c->user = user;
	c->state = CLIENT_AUTH;
	/* Called between commands (the parser is reset), so the limits of
	   the configuration apply from the next command on. */
	imap_parser_set_limits(c->parser, client_max_line(c), client_max_literal(c));
	imap_parser_set_max_args(c->parser, 0);
	client_reset_deadline(c);
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
	size_t avail;
	const char *start = connection_input(c->conn, &avail);
	const char *lf = memchr(start, '\n', avail);
	size_t len = lf != NULL ? (size_t)(lf - start) : avail, taken;

	if (len > client_max_wait_line(c)) {
		client_send_tagged(c, client_command_tag(c), "BAD Line too long.");
		client_disconnect(c, "Line too long.");
		return false;
	}
	if (lf == NULL)
		return false;
	taken = len + 1;
	if (len > 0 && start[len - 1] == '\r')
		len--;
	char *line = xstrndup(start, len);
	connection_input_consume(c->conn, taken);
	client_command_input(c, line, len);
	explicit_bzero(line, len);
	free(line);
	return true;
}

static void
client_process(struct client *c)
{
	size_t avail;
	const char *data;

	/* Bounded: every pass consumes input or stops. */
	while (!c->closing && !connection_is_dead(c->conn) &&
	       (data = connection_input(c->conn, &avail), avail > 0)) {
		if (client_out_pending(c) >= CLIENT_OUT_HIGH_WATER)
			break;
		if (c->cmd == NULL) {
			size_t consumed = 0;
			enum imap_parse_result res =
				imap_parser_feed(c->parser, data, avail, &consumed);
			connection_input_consume(c->conn, consumed);
			client_handle_parse_result(c, res);
			if (res == IMAP_PARSE_NEED_MORE)
				break;
		} else if (client_command_wants_input(c)) {
			if (!client_take_line(c))
				break;
		} else {
			break;
		}
	}
	if (connection_is_dead(c->conn))
		return;
	/* The connection reads more when there is room and wipes consumed
	   input. */
	client_flush(c);
	client_wait_output(c);
}

/* The connection's input callback: new input is buffered. */
static void
client_input(void *ctx)
{
	struct client *c = ctx;

	client_reset_deadline(c);
	client_tls_check(c);
	client_process(c);
}

/* The peer closed or the socket failed. */
static void
client_hangup(void *ctx, const char *reason)
{
	client_abort(ctx, reason);
}

static void
client_destroy(void *ctx)
{
	struct client *c = ctx;
	struct imap_server *server = c->server;
	const char *reason =
		c->close_reason != NULL ? c->close_reason : connection_close_reason(c->conn);

	log_info(c->sid, "disconnected%s%s%s%s", c->user != NULL ? " user=" : "",
		 c->user != NULL ? c->user : "", reason != NULL ? ": " : "",
		 reason != NULL ? reason : "");
	client_command_abort(c);
	client_unselect(c);
	notify_free(c);
	connection_free(&c->conn);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		server->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	server->client_count--;
	addr_conn_remove(server->addrs, c->addr);
	imap_parser_free(&c->parser);
	seqset_free(&c->searchres);
	free(c->user);
	free(c->close_reason);
	server_gen_unref(&c->gen);
	free(c);
}

/* A command waits (for a job, the login check, drained output, its own
   input): it calls the session back; no other command is read. */
static bool
client_waiting(void *ctx)
{
	const struct client *c = ctx;

	return c->cmd != NULL;
}

static const struct connection_callbacks client_callbacks = {
	.input = client_input,
	.output = client_output,
	.hangup = client_hangup,
	.destroy = client_destroy,
	.waiting = client_waiting,
};

/* At max_connections, a newcomer takes the slot of the oldest session
   that has not logged in (it gets "* BYE"), so that slow clients that
   never log in cannot hold every slot; a logged-in session is never
   closed for it. Returns the number of sessions that keep a slot (the
   one closed here is freed after the pass). */
static size_t
server_make_room(struct imap_server *server, int fd)
{
	struct client *c, *oldest = NULL;
	size_t live = 0;

	for (c = server->clients; c != NULL; c = c->next) {
		if (connection_is_dead(c->conn))
			continue;
		live++;
		/* The list is newest first: the last one found is the oldest. */
		if (c->state == CLIENT_NOT_AUTH)
			oldest = c;
	}
	if (live < server->gen->cfg->max_connections || oldest == NULL || server->shutting_down ||
	    connection_refusal_reason(fd, 0, 1, false) != NULL)
		return live;
	log_info(oldest->sid, "closing to make room: max_connections reached before login");
	client_disconnect(oldest, "Too many connections; closing the oldest one not logged in.");
	/* Best effort, one write: the slot is needed now. */
	client_flush(oldest);
	client_abort(oldest, "closed to make room for a new connection");
	return live - 1;
}

/* Refuses fd (the BYE in clear only: a TLS client would read it as a
   broken record and only sees the close). */
static void
server_refuse(int fd, bool implicit_tls, const char *bye)
{
	if (implicit_tls)
		close(fd);
	else
		connection_refuse(fd, bye);
}

/* Takes an accepted connection from host (numeric; "local" and the like
   for a socketpair), peer being "host:port". */
static void
server_take(struct imap_server *server, int fd, const char *host, const char *peer,
	    bool loopback, bool implicit_tls)
{
	struct server_gen *gen = server->gen;
	struct client *c;
	char addr[ADDR_KEY_MAX];
	size_t live;
	const char *refusal;

	/* One address may not take every connection: checked before a
	   slot is made for it by closing another's. */
	addr_key(host, addr);
	if (!server->shutting_down &&
	    !addr_conn_add(server->addrs, addr, gen->cfg->max_connections_per_address)) {
		server_refuse(fd, implicit_tls,
			      "* BYE Too many connections from your address, try again later.\r\n");
		if (addr_refusal_log_due(&server->refusal_log, addr))
			log_warn("-", "refused connection from %s: "
				      "limits.max_connections_per_address (%u) reached for %s",
				 peer, gen->cfg->max_connections_per_address, addr);
		return;
	}
	live = server_make_room(server, fd);
	refusal = connection_refusal_reason(fd, live, gen->cfg->max_connections,
					    server->shutting_down);
	if (refusal != NULL) {
		addr_conn_remove(server->addrs, addr);
		server_refuse(fd, implicit_tls, "* BYE Too many connections, try again later.\r\n");
		log_warn("-", "refused connection from %s: %s", peer, refusal);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->server = server;
	c->gen = gen;
	gen->refcount++;
	snprintf(c->sid, sizeof(c->sid), "s%llu", (unsigned long long)++server->session_counter);
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	memcpy(c->addr, addr, sizeof(c->addr));
	c->loopback = loopback;
	/* Before login, input is capped (imap_client.h); client_logged_in()
	   lifts the cap. */
	c->parser = imap_parser_new(client_max_line(c), client_max_literal(c));
	imap_parser_set_max_args(c->parser, IMAP_PRELOGIN_MAX_ARGS);
	c->conn = connection_new(server->loop, fd, NULL, &client_callbacks, c);
	c->next = server->clients;
	if (server->clients != NULL)
		server->clients->prev = c;
	server->clients = c;
	server->client_count++;
	/* The login deadline counts from connect. */
	c->deadline = mono_ms() + (int64_t)gen->cfg->login_timeout * 1000;
	log_info(c->sid, "connect from %s%s", peer, implicit_tls ? " (TLS)" : "");
	if (implicit_tls) {
		/* The greeting goes out encrypted once the handshake is done. */
		client_tls_begin(c);
		connection_push_layer(c->conn, tls_layer_new_server(gen->tls));
	}
	client_send(c, "* OK [CAPABILITY %s] imapserver ready.", imap_capabilities(c));
	client_flush(c);
}

void
imap_server_accept_fd(struct imap_server *server, int fd, const char *peer)
{
	server_take(server, fd, peer, peer, true, false);
}

void
imap_server_accept_tls_fd(struct imap_server *server, int fd, const char *peer)
{
	if (server->gen->tls == NULL) {
		log_warn("-", "refused TLS connection from %s: no certificate configured", peer);
		close(fd);
		return;
	}
	server_take(server, fd, peer, peer, true, true);
}

/* The listeners' callbacks. */
static void
server_accept_any(struct imap_server *server, int fd, const char *host, const char *port,
		  bool implicit_tls)
{
	char peer[128];

	if (strcmp(host, "unknown") == 0)
		snprintf(peer, sizeof(peer), "unknown");
	else
		snprintf(peer, sizeof(peer), "%s:%s", host, port);
	if (implicit_tls && server->gen->tls == NULL) {
		/* A reload took the certificate away. */
		log_warn("-", "refused TLS connection from %s: no certificate configured", peer);
		close(fd);
		return;
	}
	server_take(server, fd, host, peer, net_is_loopback(host), implicit_tls);
}

static void
server_accept(void *ctx, int fd, const char *host, const char *port)
{
	server_accept_any(ctx, fd, host, port, false);
}

static void
server_accept_tls(void *ctx, int fd, const char *host, const char *port)
{
	server_accept_any(ctx, fd, host, port, true);
}

void
imap_server_listen_tls(struct imap_server *server, int listen_fd)
{
	struct listener_settings set = { .log_prefix = "imaps: ", .tcp_nodelay = true };

	server->tls_listener = listener_new(server->loop, listen_fd, &set, server_accept_tls,
					    server);
}

void
imap_server_listen_add(struct imap_server *server, int listen_fd, bool tls)
{
	struct listener *listener = tls ? server->tls_listener : server->listener;

	if (listener == NULL)
		fatal("imap_server_listen_add: no %s listener", tls ? "TLS" : "plain");
	listener_add(listener, listen_fd);
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
		if (connection_is_dead(c->conn))
			continue;
		/* Once logged, TLS may be below another layer (COMPRESS). */
		if (c->tls && !c->tls_logged && !c->closing && now >= c->tls_deadline &&
		    !tls_layer_handshake_done(connection_top_layer(c->conn))) {
			log_info(c->sid, "closing: TLS handshake not done within "
					 "tls.handshake_timeout");
			client_abort(c, "TLS handshake timed out");
		} else if (now >= c->deadline && c->closing) {
			/* The peer does not read its BYE. */
			client_abort(c, "peer stopped reading");
		} else if (now >= c->deadline && c->state == CLIENT_NOT_AUTH) {
			log_info(c->sid, "autologout after login_timeout");
			client_disconnect(c, "Autologout; not logged in within the login timeout.");
			client_flush(c);
		} else if (now >= c->deadline) {
			log_info(c->sid, "autologout after idle_timeout");
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
	server->addrs = addr_table_new();
	if (listen_fd >= 0) {
		/* Untagged updates are small writes: no Nagle delay. */
		struct listener_settings set = { .log_prefix = "", .tcp_nodelay = true };
		server->listener = listener_new(loop, listen_fd, &set, server_accept, server);
	}
	server->tick_timer = event_timer_add(loop, 1000, server_tick, server);
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
	listener_free(&server->listener);
	listener_free(&server->tls_listener);
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
	addr_table_free(&server->addrs);
	server_gen_unref(&server->gen);
	free(server);
}
