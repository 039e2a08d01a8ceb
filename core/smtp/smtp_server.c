/* smtp_server.c: SMTP sessions on the event loop (see smtp_server.h).

   The I/O is a core/io connection (see connection.h), as for the IMAP
   sessions: every complete command fed to the engine in order
   (PIPELINING: what is not consumed yet stays buffered), replies queued
   in the connection's output and written as the socket takes them; above
   SMTP_OUT_HIGH_WATER of unsent replies the session stops reading until
   the client reads. Sessions are freed by the connection's destroy
   callback, after the dispatch pass that closed them.

   TLS is a layer of the connection: pushed at accept on the submissions
   port, or by connection_start_layer() once the "220" that answers
   STARTTLS is written (what the client pipelined behind STARTTLS is
   dropped there, never read as if it came through TLS). AUTH waits for
   the auth backend's answer with the session's input held: nothing
   behind it is read until the answer is queued. */
#include "smtp_server.h"
#include "aliases.h"
#include "auth.h"
#include "connection.h"
#include "listener.h"
#include "addr_table.h"
#include "log.h"
#include "mailbox.h"
#include "net.h"
#include "quota.h"
#include "smtp.h"
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define SMTP_OUT_HIGH_WATER (64 * 1024)
/* How long a closing session may take to read its last reply. */
#define SMTP_CLOSE_GRACE_MS 10000

struct smtp_conn {
	struct smtp_server *server;
	struct server_gen *gen;
	struct smtp_conn *prev, *next;
	struct connection *conn;
	char sid[24];
	char peer_ip[64];
	char peer[96];
	char addr[ADDR_KEY_MAX];        /* addr_key() of peer_ip */
	struct smtp_settings set;
	struct smtp_session *session;
	enum smtp_port_role role;

	int64_t deadline; /* monotonic ms */
	unsigned delivered;

	/* TLS: started (STARTTLS answered, or at connect), the time its
	   handshake must end by, its parameters logged. */
	bool tls_started;
	bool tls_logged;
	int64_t tls_deadline;
	/* AUTH: the password check, then the delay before a failure is
	   answered; while either is set the session reads no input. */
	struct auth_request *auth_req;
	struct event_timer *auth_delay;
	/* DATA being stored, for one user after another; while it is set the
	   session reads no input (conn_deliver_start()). */
	struct conn_delivery *delivery;
};

/* A message being stored for its users: the one at users.items[next]
   has its append in a job (op) when the store writes it in a worker. */
struct conn_delivery {
	struct strlist users;
	size_t next;
	const char *msg;           /* the session's, unchanged until the answer */
	size_t len;
	time_t now;
	int32_t tz;
	struct mailbox *mbox;
	struct mailbox_append_op *op;
	/* The INBOX of users.items[next] opened first in a job when that
	   costs its size (hub_open_start()): its waiter, and next + 1 once
	   started (not started again if it failed). */
	struct mailbox_waiter *waiter;
	size_t opened;
};

static void conn_delivery_free(struct conn_delivery **d);

struct smtp_server {
	struct event_loop *loop;
	struct server_gen *gen;
	/* Per role (enum smtp_port_role), its sockets (one port on each
	   address of smtp.address); no listener when not listening. */
	int listen_fds[SMTP_PORT_ROLES][LISTENER_MAX_SOCKETS];
	size_t listen_count[SMTP_PORT_ROLES];
	struct listener *listeners[SMTP_PORT_ROLES];
	struct event_timer *tick_timer;
	struct smtp_conn *conns;
	size_t conn_count;
	/* Connections per client address (limits.max_connections_per_address). */
	struct addr_table *addrs;
	struct addr_refusal_log refusal_log;
	uint64_t session_counter;
	bool shutting_down;
};

static void conn_process(struct smtp_conn *c);

size_t
smtp_server_session_count(const struct smtp_server *server)
{
	return server != NULL ? server->conn_count : 0;
}

static size_t
conn_out_pending(const struct smtp_conn *c)
{
	return connection_out_pending(c->conn);
}

/* The connection's destroy callback, and the shutdown path. */
static void
conn_destroy(void *ctx)
{
	struct smtp_conn *c = ctx;
	struct smtp_server *server = c->server;
	const char *reason = connection_close_reason(c->conn);

	log_info(c->sid, "smtp: disconnected%s%s", reason != NULL ? ": " : "",
		 reason != NULL ? reason : "");
	connection_free(&c->conn);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		server->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	server->conn_count--;
	addr_conn_remove(server->addrs, c->addr);
	auth_request_cancel(&c->auth_req);
	event_timer_remove(&c->auth_delay);
	/* a message whose store is at work is stored all the same (no 250
	   was sent: the client may send it again) */
	conn_delivery_free(&c->delivery);
	smtp_session_free(&c->session);
	server_gen_unref(&c->gen);
	free(c);
}

/* The session is over: it stops being watched now and is freed after
   this dispatch pass. */
static void
conn_kill(struct smtp_conn *c, const char *reason)
{
	connection_kill(c->conn, reason);
}

/* Closes once the queued replies are written. */
static void
conn_close_after_flush(struct smtp_conn *c, const char *reason)
{
	if (!connection_is_closing(c->conn))
		c->deadline = mono_ms() + SMTP_CLOSE_GRACE_MS;
	connection_close_after_flush(c->conn, reason);
}

static void
conn_flush(struct smtp_conn *c)
{
	connection_flush(c->conn);
}

static void
conn_reset_deadline(struct smtp_conn *c)
{
	const struct config *cfg = c->gen->cfg;
	unsigned secs =
		smtp_session_in_data(c->session) ? cfg->smtp_data_timeout : cfg->smtp_timeout;

	c->deadline = mono_ms() + (int64_t)secs * 1000;
}

/* True if user's quota (quota.h) has room for one more message of len
   octets (len 1 at RCPT, before the size is known: a quota used up).
   The usage is read through the hub at each call, so it is as fresh as
   the user's mailboxes on disk. A usage that cannot be read does not
   refuse the mail (the append will say what is wrong). */
static bool
conn_quota_room(struct smtp_conn *c, const char *user, size_t len)
{
	const struct config *cfg = c->gen->cfg;
	struct quota_limits limits = { .storage_kib = cfg->quota_storage_kib,
				       .messages = cfg->quota_messages };
	struct quota_usage usage;
	enum storage_error err;

	if (limits.storage_kib == 0 && limits.messages == 0)
		return true;
	if (quota_user_usage(c->gen->hub, &c->gen->storage, c->sid, user, &usage, &err) < 0)
		return true;
	if (quota_allows(&limits, &usage, len, 1))
		return true;
	log_info(c->sid, "smtp: %s is over quota", user);
	return false;
}

/* A recipient named by an alias (smtp.aliases): accepted when at least
   one of its users exists; the mail goes to those that do. */
static enum smtp_rcpt_answer
conn_lookup_alias(struct smtp_conn *c, const char *name, const struct strlist *users)
{
	size_t found = 0;

	for (size_t i = 0; i < users->count; i++) {
		switch (auth_user_exists(&c->gen->auth, c->sid, users->items[i])) {
		case 1:
			found++;
			break;
		case 0:
			log_warn(c->sid, "smtp: alias '%s' names '%s', who is not a user", name,
				 users->items[i]);
			break;
		default:
			return SMTP_RCPT_TEMPFAIL;
		}
	}
	if (found > 0)
		return SMTP_RCPT_OK;
	log_warn(c->sid, "smtp: alias '%s' names no existing user", name);
	return SMTP_RCPT_UNKNOWN;
}

static enum smtp_rcpt_answer
conn_lookup(struct smtp_conn *c)
{
	const char *user = smtp_session_rcpt_user(c->session);
	const struct strlist *users = aliases_lookup(c->gen->cfg->smtp_aliases, user);

	if (users != NULL)
		return conn_lookup_alias(c, user, users);
	switch (auth_user_exists(&c->gen->auth, c->sid, user)) {
	case 1:
		return conn_quota_room(c, user, 1) ? SMTP_RCPT_OK : SMTP_RCPT_FULL;
	case 0:
		log_info(c->sid, "smtp: unknown recipient '%s'", user);
		return SMTP_RCPT_UNKNOWN;
	default:
		return SMTP_RCPT_TEMPFAIL;
	}
}

/* Stores the message for every recipient (see smtp_server.h for what a
   failure half-way means). */
static void
conn_delivery_free(struct conn_delivery **_d)
{
	struct conn_delivery *d = *_d;

	if (d == NULL)
		return;
	*_d = NULL;
	mailbox_append_detach(&d->op);
	mailbox_waiter_cancel(&d->waiter);
	mailbox_unref(&d->mbox);
	strlist_clear(&d->users);
	free(d);
}

/* The users the message goes to: each recipient, or the existing users
   of its alias, once each. */
static void
conn_deliver_users(struct smtp_conn *c, struct strlist *users)
{
	const struct strlist *rcpts = smtp_session_recipients(c->session);

	for (size_t i = 0; i < rcpts->count; i++) {
		const struct strlist *targets =
			aliases_lookup(c->gen->cfg->smtp_aliases, rcpts->items[i]);

		if (targets == NULL) {
			if (!strlist_contains(users, rcpts->items[i]))
				strlist_add(users, rcpts->items[i]);
			continue;
		}
		for (size_t j = 0; j < targets->count; j++) {
			if (!strlist_contains(users, targets->items[j]) &&
			    auth_user_exists(&c->gen->auth, c->sid, targets->items[j]) == 1)
				strlist_add(users, targets->items[j]);
		}
	}
}

/* The store of the message for d's current user ended with ret. */
static enum smtp_deliver_result
conn_stored(struct smtp_conn *c, int ret, uint32_t uid, enum storage_error err)
{
	struct conn_delivery *d = c->delivery;
	const char *id = smtp_session_message_id(c->session);
	const char *user = d->users.items[d->next];

	if (ret == 0) {
		/* IDLE sessions on this mailbox hear of it now. */
		mailbox_changed(d->mbox, NULL);
	}
	mailbox_unref(&d->mbox);
	if (ret < 0) {
		log_error(c->sid, "smtp: delivery of %s to %s failed (%zu of %zu stored)", id,
			  user, d->next, d->users.count);
		return err == STORAGE_ERR_NO_SPACE ? SMTP_DELIVER_NO_SPACE : SMTP_DELIVER_TEMPFAIL;
	}
	log_info(c->sid, "smtp: delivered %s to %s uid %u (%zu octets) from <%s>%s%s", id, user,
		 uid, d->len, smtp_session_mail_from(c->session),
		 smtp_session_user(c->session) != NULL ? " sent by " : "",
		 smtp_session_user(c->session) != NULL ? smtp_session_user(c->session) : "");
	d->next++;
	return SMTP_DELIVER_OK;
}

static void conn_append_done(void *ctx, int ret, uint32_t uid, enum storage_error err);
static void conn_inbox_opened(void *ctx);

/* Stores the message for the users left, one after another. Returns
   true while one is stored in a job (conn_append_done() goes on) or its
   INBOX opened in one (conn_inbox_opened() goes on), else false with
   *result_r. */
static bool
conn_deliver_next(struct smtp_conn *c, enum smtp_deliver_result *result_r)
{
	struct conn_delivery *d = c->delivery;
	const char *id = smtp_session_message_id(c->session);

	*result_r = SMTP_DELIVER_OK;
	while (d->next < d->users.count) {
		const char *user = d->users.items[d->next];
		enum storage_error err;
		uint32_t uid = 0;
		int ret;

		if (d->opened != d->next + 1) {
			struct mailbox *opening = hub_open_start(c->gen->hub, c->sid, user, "INBOX");

			if (opening != NULL) {
				d->opened = d->next + 1;
				d->waiter = mailbox_wait_idle(opening, conn_inbox_opened, c);
				return true;
			}
		}
		if (mailbox_open(c->gen->hub, c->sid, user, "INBOX", &d->mbox, &err) < 0) {
			log_error(c->sid, "smtp: delivery of %s to %s failed: cannot open INBOX",
				  id, user);
			*result_r = err == STORAGE_ERR_NO_SPACE ? SMTP_DELIVER_NO_SPACE :
								  SMTP_DELIVER_TEMPFAIL;
			return false;
		}
		ret = mailbox_append_start(d->mbox, d->msg, d->len, 0, 0, (int64_t)d->now, d->tz,
					   conn_append_done, c, &d->op, &uid, &err, c->sid);
		if (ret > 0)
			return true;
		*result_r = conn_stored(c, ret, uid, err);
		if (*result_r != SMTP_DELIVER_OK)
			return false;
	}
	c->delivered++;
	return false;
}

/* Answers the delivery and reads on. */
static void
conn_deliver_end(struct smtp_conn *c, enum smtp_deliver_result result)
{
	conn_delivery_free(&c->delivery);
	smtp_session_deliver_answer(c->session, result, connection_outbuf(c->conn));
}

static void conn_process(struct smtp_conn *c);

/* The INBOX of the current user is open (or its open failed: then
   mailbox_open() says so). */
static void
conn_inbox_opened(void *ctx)
{
	struct smtp_conn *c = ctx;
	enum smtp_deliver_result result;

	c->delivery->waiter = NULL;
	if (conn_deliver_next(c, &result))
		return;
	conn_deliver_end(c, result);
	conn_process(c);
}

static void
conn_append_done(void *ctx, int ret, uint32_t uid, enum storage_error err)
{
	struct smtp_conn *c = ctx;
	enum smtp_deliver_result result;

	c->delivery->op = NULL;
	result = conn_stored(c, ret, uid, err);
	if (result == SMTP_DELIVER_OK && conn_deliver_next(c, &result))
		return;
	conn_deliver_end(c, result);
	conn_process(c);
}

/* Starts storing the message for each of its users (quota.h: when no
   recipient's quota can take it, 452 4.2.2 and nothing is stored;
   otherwise every recipient gets it: one whose quota this message
   overflows goes over by this one message, since one SMTP answer covers
   all recipients, and a 250 that dropped the message for some would lose
   it silently; each recipient had room at RCPT, else 452 there).
   Returns true while a store works in a job: the answer comes later,
   and no input is read meanwhile. */
static bool
conn_deliver_start(struct smtp_conn *c)
{
	struct conn_delivery *d = xcalloc(1, sizeof(*d));
	enum smtp_deliver_result result;
	struct tm tm;
	size_t full = 0;

	c->delivery = d;
	d->msg = smtp_session_message(c->session, &d->len);
	d->now = time(NULL);
	if (localtime_r(&d->now, &tm) != NULL)
		d->tz = (int32_t)(tm.tm_gmtoff / 60);
	conn_deliver_users(c, &d->users);
	for (size_t i = 0; i < d->users.count; i++) {
		if (!conn_quota_room(c, d->users.items[i], d->len))
			full++;
	}
	if (full > 0 && full == d->users.count) {
		log_error(c->sid, "smtp: %s not delivered: mailbox full",
			  smtp_session_message_id(c->session));
		conn_deliver_end(c, SMTP_DELIVER_FULL);
		return false;
	}
	if (conn_deliver_next(c, &result))
		return true;
	conn_deliver_end(c, result);
	return false;
}

/* The handshake must end within tls.handshake_timeout of its start. */
static void
conn_tls_begin(struct smtp_conn *c)
{
	c->tls_started = true;
	c->tls_deadline = mono_ms() + (int64_t)c->gen->cfg->tls_handshake_timeout * 1000;
}

/* Logs the TLS parameters once the handshake is done. */
static void
conn_tls_check(struct smtp_conn *c)
{
	const struct conn_layer *top;

	if (!c->tls_started || c->tls_logged)
		return;
	top = connection_top_layer(c->conn);
	if (!tls_layer_handshake_done(top))
		return;
	c->tls_logged = true;
	log_info(c->sid, "smtp: TLS: %s", tls_layer_describe(top));
}

static bool
conn_tls_handshaking(const struct smtp_conn *c)
{
	return c->tls_started && !tls_layer_handshake_done(connection_top_layer(c->conn));
}

/* STARTTLS: the 220 is queued, then the layer goes on once it is
   written; the input behind the command is dropped. */
static void
conn_starttls(struct smtp_conn *c, struct buf *out)
{
	smtp_session_starttls_answer(c->session, out);
	log_info(c->sid, "smtp: STARTTLS");
	conn_tls_begin(c);
	connection_start_layer(c->conn, tls_layer_new_server(c->gen->tls));
}

/* Queues the answer to AUTH and goes on with the input held meanwhile. */
static void
conn_auth_answer(struct smtp_conn *c, enum smtp_auth_answer answer)
{
	enum smtp_event ev =
		smtp_session_auth_answer(c->session, answer, connection_outbuf(c->conn));

	if (answer == SMTP_AUTH_OK)
		log_info(c->sid, "smtp: logged in as %s", smtp_session_user(c->session));
	if (ev == SMTP_EVENT_CLOSE) {
		log_info(c->sid, "smtp: too many authentication failures");
		conn_close_after_flush(c, "too many authentication failures");
	}
	conn_process(c);
	if (!connection_is_closing(c->conn))
		conn_reset_deadline(c);
}

static void
conn_auth_delay_done(void *ctx)
{
	struct smtp_conn *c = ctx;

	c->auth_delay = NULL;
	conn_auth_answer(c, SMTP_AUTH_FAIL);
}

static void
conn_auth_checked(enum auth_result result, void *ctx)
{
	struct smtp_conn *c = ctx;

	c->auth_req = NULL;
	switch (result) {
	case AUTH_OK:
		addr_login_succeeded(addr_penalties(), c->addr);
		conn_auth_answer(c, SMTP_AUTH_OK);
		break;
	case AUTH_TEMPFAIL:
		conn_auth_answer(c, SMTP_AUTH_TEMPFAIL);
		break;
	case AUTH_FAIL:
	default:
		/* Answered after the delay, held by a timer: the other
		   sessions go on meanwhile. */
		c->auth_delay = event_timer_add(c->server->loop,
						addr_login_failed(addr_penalties(), c->addr,
								  c->gen->cfg->auth_fail_delay_ms),
						conn_auth_delay_done, c);
		break;
	}
}

/* SMTP_EVENT_AUTH: starts the check once (the event is returned again
   while it runs). */
static void
conn_auth_start(struct smtp_conn *c)
{
	if (c->auth_req != NULL || c->auth_delay != NULL)
		return;
	c->auth_req =
		auth_verify_start(&c->gen->auth, c->server->loop, c->sid, c->peer_ip,
				  smtp_session_auth_user(c->session),
				  smtp_session_auth_password(c->session), conn_auth_checked, c);
}

static void
conn_process(struct smtp_conn *c)
{
	/* Bounded: every round consumes input, answers an event or stops;
	   an AUTH being checked stops it (its answer calls it again). */
	while (!connection_is_closing(c->conn) && c->delivery == NULL) {
		size_t len, consumed = 0;
		const char *data = connection_input(c->conn, &len);
		struct buf *out;
		enum smtp_event ev;

		if (len == 0 || conn_out_pending(c) >= SMTP_OUT_HIGH_WATER)
			break;
		out = connection_outbuf(c->conn);
		ev = smtp_session_feed(c->session, data, len, &consumed, out);
		connection_input_consume(c->conn, consumed);
		switch (ev) {
		case SMTP_EVENT_NONE:
			break;
		case SMTP_EVENT_RCPT:
			smtp_session_rcpt_answer(c->session, conn_lookup(c), out);
			break;
		case SMTP_EVENT_DELIVER:
			if (conn_deliver_start(c)) {
				conn_flush(c);
				return;
			}
			break;
		case SMTP_EVENT_STARTTLS:
			conn_starttls(c, out);
			break;
		case SMTP_EVENT_AUTH:
			conn_auth_start(c);
			conn_flush(c);
			return;
		case SMTP_EVENT_CLOSE:
			conn_close_after_flush(c, "quit");
			break;
		}
	}
	conn_flush(c);
}

static void
conn_input(void *ctx)
{
	struct smtp_conn *c = ctx;

	conn_tls_check(c);
	conn_process(c);
	if (!connection_is_closing(c->conn))
		conn_reset_deadline(c);
}

static void
conn_output(void *ctx)
{
	struct smtp_conn *c = ctx;

	if (conn_out_pending(c) < SMTP_OUT_HIGH_WATER / 2)
		conn_process(c);
}

static void
conn_hangup(void *ctx, const char *reason)
{
	struct smtp_conn *c = ctx;

	if (strcmp(reason, "connection closed by client") == 0 && smtp_session_in_data(c->session))
		reason = "connection closed by client during DATA";
	conn_kill(c, reason);
}

/* The login check or its delay calls the session back. */
static bool
conn_waiting(void *ctx)
{
	const struct smtp_conn *c = ctx;

	return c->auth_req != NULL || c->auth_delay != NULL;
}

static const struct connection_callbacks conn_callbacks = {
	.input = conn_input,
	.output = conn_output,
	.hangup = conn_hangup,
	.destroy = conn_destroy,
	.waiting = conn_waiting,
};

static const struct connection_settings conn_settings = {
	.out_high_water = SMTP_OUT_HIGH_WATER,
};

static const char *const role_names[SMTP_PORT_ROLES] = {
	[SMTP_PORT_RECEIVER] = "smtp",
	[SMTP_PORT_SUBMISSION] = "submission",
	[SMTP_PORT_SUBMISSIONS] = "submissions",
};

/* The session's settings, by the port's role and the peer. */
static void
conn_settings_init(struct smtp_conn *c, const struct server_gen *gen, bool loopback)
{
	const struct config *cfg = gen->cfg;

	c->set.hostname = cfg->smtp_domains.items[0];
	c->set.domains = &cfg->smtp_domains;
	c->set.max_message_size = cfg->smtp_max_message_size;
	c->set.max_recipients = cfg->smtp_max_recipients;
	c->set.max_bad_commands = cfg->max_bad_commands;
	c->set.tls = c->role == SMTP_PORT_SUBMISSIONS;
	c->set.starttls = gen->tls != NULL && !c->set.tls;
	c->set.submission = c->role != SMTP_PORT_RECEIVER;
	c->set.plaintext_auth = config_plaintext_allowed(cfg, false, loopback);
	c->set.max_auth_failures = 3;
}

/* Refuses fd when the server is full (or the port cannot serve): true if
   it did. On the submissions port nothing is written: the client
   expects a TLS handshake, not a clear-text 421. */
static bool
server_refuse(struct smtp_server *server, int fd, const char *peer_ip, const char *peer_port,
	      const char *addr, enum smtp_port_role role)
{
	const struct config *cfg = server->gen->cfg;
	const char *refusal =
		connection_refusal_reason(fd, server->conn_count, cfg->max_connections,
					  server->shutting_down);
	bool per_addr = false;

	if (refusal == NULL && role == SMTP_PORT_SUBMISSIONS && server->gen->tls == NULL)
		refusal = "no certificate configured";
	if (refusal == NULL &&
	    !addr_conn_add(server->addrs, addr, cfg->max_connections_per_address)) {
		refusal = "limits.max_connections_per_address reached";
		per_addr = true;
	}
	if (refusal == NULL)
		return false;
	if (role == SMTP_PORT_SUBMISSIONS) {
		close(fd);
	} else {
		char *bye = xasprintf("421 4.7.0 %s Error: too many connections, try again "
				      "later\r\n",
				      cfg->smtp_domains.items[0]);
		connection_refuse(fd, bye);
		free(bye);
	}
	if (!per_addr || addr_refusal_log_due(&server->refusal_log, addr))
		log_warn("-", "%s: refused connection from %s:%s: %s", role_names[role], peer_ip,
			 peer_port, refusal);
	return true;
}

void
smtp_server_accept_fd(struct smtp_server *server, int fd, const char *peer_ip,
		      const char *peer_port, enum smtp_port_role role)
{
	struct server_gen *gen = server->gen;
	struct smtp_conn *c;
	char prefix[64], addr[ADDR_KEY_MAX];

	addr_key(peer_ip, addr);
	if (server_refuse(server, fd, peer_ip, peer_port, addr, role))
		return;
	c = xcalloc(1, sizeof(*c));
	c->server = server;
	c->gen = gen;
	gen->refcount++;
	c->role = role;
	snprintf(c->sid, sizeof(c->sid), "m%llu", (unsigned long long)++server->session_counter);
	snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", peer_ip);
	snprintf(c->peer, sizeof(c->peer), "%s:%s", peer_ip, peer_port);
	memcpy(c->addr, addr, sizeof(c->addr));
	conn_settings_init(c, gen, net_is_loopback(peer_ip));
	/* Unique across sessions, restarts and the two programs. */
	snprintf(prefix, sizeof(prefix), "%llX%lX.%s", (unsigned long long)time(NULL),
		 (unsigned long)getpid(), c->sid);
	c->session = smtp_session_new(&c->set, c->peer_ip, prefix);
	c->conn = connection_new(server->loop, fd, &conn_settings, &conn_callbacks, c);
	c->next = server->conns;
	if (server->conns != NULL)
		server->conns->prev = c;
	server->conns = c;
	server->conn_count++;
	if (role == SMTP_PORT_RECEIVER)
		log_info(c->sid, "smtp: connect from %s", c->peer);
	else
		log_info(c->sid, "smtp: connect from %s (%s)", c->peer, role_names[role]);
	if (role == SMTP_PORT_SUBMISSIONS) {
		/* The greeting goes out encrypted once the handshake is done. */
		conn_tls_begin(c);
		connection_push_layer(c->conn, tls_layer_new_server(gen->tls));
	}
	smtp_session_greet(c->session, connection_outbuf(c->conn));
	conn_reset_deadline(c);
	conn_flush(c);
}

/* The listeners' callbacks, one per role. */
static void
server_accept(void *ctx, int fd, const char *host, const char *port)
{
	smtp_server_accept_fd(ctx, fd, host, port, SMTP_PORT_RECEIVER);
}

static void
server_accept_submission(void *ctx, int fd, const char *host, const char *port)
{
	smtp_server_accept_fd(ctx, fd, host, port, SMTP_PORT_SUBMISSION);
}

static void
server_accept_submissions(void *ctx, int fd, const char *host, const char *port)
{
	smtp_server_accept_fd(ctx, fd, host, port, SMTP_PORT_SUBMISSIONS);
}

static listener_accept_cb *const role_accept[SMTP_PORT_ROLES] = {
	[SMTP_PORT_RECEIVER] = server_accept,
	[SMTP_PORT_SUBMISSION] = server_accept_submission,
	[SMTP_PORT_SUBMISSIONS] = server_accept_submissions,
};

static void
server_tick(void *ctx)
{
	struct smtp_server *server = ctx;
	int64_t now = mono_ms();

	server->tick_timer = event_timer_add(server->loop, 1000, server_tick, server);
	for (struct smtp_conn *c = server->conns; c != NULL; c = c->next) {
		if (connection_is_dead(c->conn))
			continue;
		if (now >= c->tls_deadline && !connection_is_closing(c->conn) &&
		    conn_tls_handshaking(c)) {
			/* Nothing can be said: the channel is not ready. */
			log_info(c->sid, "smtp: closing: TLS handshake not done within "
					 "tls.handshake_timeout");
			conn_kill(c, "TLS handshake timed out");
			continue;
		}
		if (now < c->deadline)
			continue;
		if (connection_is_closing(c->conn)) {
			conn_kill(c, "peer stopped reading");
			continue;
		}
		log_info(c->sid, "smtp: timeout %s",
			 smtp_session_in_data(c->session) ? "during DATA (smtp.data_timeout)" :
							    "awaiting a command (smtp.timeout)");
		smtp_session_timeout(c->session, connection_outbuf(c->conn));
		conn_close_after_flush(c, "timeout");
		conn_flush(c);
	}
}

struct smtp_server *
smtp_server_new(struct event_loop *loop, struct server_gen *gen, int listen_fd)
{
	struct smtp_server *server = xcalloc(1, sizeof(*server));

	server->loop = loop;
	server->gen = gen;
	gen->refcount++;
	server->addrs = addr_table_new();
	smtp_server_listen(server, listen_fd, SMTP_PORT_RECEIVER);
	server->tick_timer = event_timer_add(loop, 1000, server_tick, server);
	return server;
}

void
smtp_server_listen(struct smtp_server *server, int listen_fd, enum smtp_port_role role)
{
	char prefix[32];

	if (server->listen_count[role] == LISTENER_MAX_SOCKETS)
		fatal("smtp_server_listen: too many %s sockets", role_names[role]);
	server->listen_fds[role][server->listen_count[role]++] = listen_fd;
	if (server->listeners[role] != NULL) {
		/* The same port on another address. */
		listener_add(server->listeners[role], listen_fd);
		return;
	}
	snprintf(prefix, sizeof(prefix), "%s: ", role_names[role]);
	server->listeners[role] = listener_new(server->loop, listen_fd,
					       &(struct listener_settings){ .log_prefix = prefix },
					       role_accept[role], server);
}

void
smtp_server_set_gen(struct smtp_server *server, struct server_gen *gen)
{
	gen->refcount++;
	server_gen_unref(&server->gen);
	server->gen = gen;
}

void
smtp_server_free(struct smtp_server **_server)
{
	struct smtp_server *server = *_server;

	if (server == NULL)
		return;
	*_server = NULL;
	server->shutting_down = true;
	while (server->conns != NULL) {
		struct smtp_conn *c = server->conns;

		if (!connection_is_closing(c->conn)) {
			buf_printf(connection_outbuf(c->conn),
				   "421 4.3.2 %s Service shutting down\r\n", c->set.hostname);
			/* Best effort: one write, then close. */
			conn_flush(c);
		}
		connection_kill(c->conn, "server shutting down");
		conn_destroy(c);
	}
	for (size_t i = 0; i < SMTP_PORT_ROLES; i++) {
		listener_free(&server->listeners[i]);
		for (size_t k = 0; k < server->listen_count[i]; k++)
			close(server->listen_fds[i][k]);
	}
	event_timer_remove(&server->tick_timer);
	addr_table_free(&server->addrs);
	server_gen_unref(&server->gen);
	free(server);
}
