/* Tests of the connection layer over socketpairs: partial writes and
   their resumption, the high-water pause of input, the per-event write
   cap, deferred freeing, refusal, the accept loop, and stacked layers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "connection.h"
#include "listener.h"
#include "net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

/* An owner that, like a session, consumes input line by line while its
   output is below the high-water mark, and, like a big FETCH, produces
   `produce` octets in pieces of `piece` each time its output drains. */
struct owner {
	struct connection *conn;
	size_t high_water;
	/* input handling */
	size_t consumed;
	size_t echo_each; /* octets queued per consumed input octet */
	bool kill_on_input;
	struct connection *kill_other;
	/* production */
	size_t produce, produced, piece;
	unsigned output_calls;
	/* the watch invariant: input calls that consume nothing (all until
	   a breach is counted, with stall_till_breach), and the owner's
	   answer to callbacks.waiting */
	unsigned stall_calls, input_calls;
	bool stall_till_breach, waiting;
	unsigned long breaches_before;
	/* lifetime */
	bool destroyed;
	bool in_dispatch;
	char reason[64];
};

static void
owner_work(struct owner *o)
{
	size_t len;
	const char *in;

	while ((in = connection_input(o->conn, &len), len > 0) &&
	       connection_out_pending(o->conn) < o->high_water) {
		struct buf *out = connection_outbuf(o->conn);
		for (size_t i = 0; i < o->echo_each; i++)
			buf_append_c(out, in[0]);
		connection_input_consume(o->conn, 1);
		o->consumed++;
	}
	connection_flush(o->conn);
}

static void
owner_input(void *ctx)
{
	struct owner *o = ctx;

	o->input_calls++;
	if (o->stall_calls > 0) {
		o->stall_calls--;
		return;
	}
	if (o->stall_till_breach && connection_watch_breaches == o->breaches_before)
		return;

	if (o->kill_on_input) {
		connection_kill(o->conn, "killed");
		return;
	}
	if (o->kill_other != NULL) {
		connection_kill(o->kill_other, "killed by another");
		o->kill_other = NULL;
	}
	owner_work(o);
}

static void
owner_output(void *ctx)
{
	struct owner *o = ctx;

	o->output_calls++;
	if (o->produced < o->produce) {
		struct buf *out = connection_outbuf(o->conn);
		size_t n = o->produce - o->produced < o->piece ? o->produce - o->produced : o->piece;
		for (size_t i = 0; i < n; i++)
			buf_append_c(out, (char)('a' + (o->produced + i) % 26));
		o->produced += n;
		connection_flush(o->conn);
		return;
	}
	owner_work(o);
}

static void
owner_hangup(void *ctx, const char *reason)
{
	struct owner *o = ctx;

	connection_kill(o->conn, reason);
}

static void
owner_destroy(void *ctx)
{
	struct owner *o = ctx;

	snprintf(o->reason, sizeof(o->reason), "%s", connection_close_reason(o->conn));
	o->destroyed = true;
	connection_free(&o->conn);
}

static const struct connection_callbacks owner_cb = {
	.input = owner_input,
	.output = owner_output,
	.hangup = owner_hangup,
	.destroy = owner_destroy,
};

static int
pair(int sv[2], int sndbuf)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fd_set_nonblock_cloexec(sv[0]), 0);
	assert_int_equal(fd_set_nonblock_cloexec(sv[1]), 0);
	if (sndbuf > 0) {
		(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		(void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof(sndbuf));
	}
	return 0;
}

static void
owner_start(struct owner *o, struct event_loop *loop, int fd, size_t high_water,
	    size_t write_cap)
{
	struct connection_settings set = { .out_high_water = high_water, .write_cap = write_cap };

	i_zero(o);
	o->high_water = high_water > 0 ? high_water : CONN_OUT_HIGH_WATER;
	o->conn = connection_new(loop, fd, &set, &owner_cb, o);
}

static bool
owner_waiting(void *ctx)
{
	const struct owner *o = ctx;

	return o->waiting;
}

static const struct connection_callbacks waiting_owner_cb = {
	.input = owner_input,
	.output = owner_output,
	.hangup = owner_hangup,
	.destroy = owner_destroy,
	.waiting = owner_waiting,
};

/* Reads at most max octets from fd into b; returns how many. */
static size_t
drain(int fd, struct buf *b, size_t max)
{
	char chunk[4096];
	size_t total = 0;

	while (total < max) {
		size_t n = max - total < sizeof(chunk) ? max - total : sizeof(chunk);
		ssize_t ret = read(fd, chunk, n);
		if (ret <= 0)
			break;
		buf_append(b, chunk, (size_t)ret);
		total += (size_t)ret;
	}
	return total;
}

/* A producer writes 2 MB in 64 KB pieces, each when the previous drained;
   the peer reads 8 KB per pass. Everything arrives, in order: the
   producer never waits for an event nobody asked for. */
static void
test_slow_reader_gets_everything(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct owner o;
	struct buf got = { 0 };
	int sv[2];

	pair(sv, 4096);
	owner_start(&o, loop, sv[0], 128 * 1024, 32 * 1024);
	o.produce = 2 * 1024 * 1024;
	o.piece = 64 * 1024;
	/* The first piece, as a command would write it. */
	owner_output(&o);
	for (int i = 0; i < 20000 && got.len < o.produce; i++) {
		assert_int_equal(event_loop_run_once(loop, 5), 0);
		drain(sv[1], &got, 8192);
	}
	assert_int_equal(got.len, o.produce);
	for (size_t i = 0; i < got.len; i++) {
		if (got.data[i] != (char)('a' + i % 26))
			fail_msg("octet %zu out of order", i);
	}
	assert_int_equal(connection_out_pending(o.conn), 0);
	connection_free(&o.conn);
	buf_free(&got);
	close(sv[1]);
	event_loop_free(&loop);
}

/* Input stops being consumed above the high-water mark, and reading
   stops: the peer's writes fill the socket. Once the peer reads, the
   rest is consumed without any new input arriving. */
static void
test_high_water_pauses_and_resumes_input(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct owner o;
	struct buf got = { 0 };
	char data[300];
	int sv[2];

	pair(sv, 4096);
	owner_start(&o, loop, sv[0], 16 * 1024, 0);
	o.echo_each = 1024;
	memset(data, 'x', sizeof(data));
	assert_int_equal(write(sv[1], data, sizeof(data)), (ssize_t)sizeof(data));
	for (int i = 0; i < 50; i++)
		assert_int_equal(event_loop_run_once(loop, 2), 0);
	/* Held back: output above the low-water mark, the rest of the input
	   waits. */
	assert_true(o.consumed < sizeof(data));
	assert_true(connection_out_pending(o.conn) >= 8 * 1024);
	size_t consumed = o.consumed;
	for (int i = 0; i < 20; i++)
		assert_int_equal(event_loop_run_once(loop, 2), 0);
	assert_int_equal(o.consumed, consumed);
	/* The peer reads: the buffered input goes on. */
	for (int i = 0; i < 20000 && got.len < sizeof(data) * 1024; i++) {
		assert_int_equal(event_loop_run_once(loop, 2), 0);
		drain(sv[1], &got, 1 << 20);
	}
	assert_int_equal(o.consumed, sizeof(data));
	assert_int_equal(got.len, sizeof(data) * 1024);
	connection_free(&o.conn);
	buf_free(&got);
	close(sv[1]);
	event_loop_free(&loop);
}

/* Writes len octets of 'w' to fd, running the loop between writes. */
static void
feed(struct event_loop *loop, int fd, size_t len)
{
	char data[4096];

	memset(data, 'w', sizeof(data));
	for (int i = 0; i < 2000 && len > 0; i++) {
		ssize_t n = write(fd, data, len < sizeof(data) ? len : sizeof(data));

		if (n > 0)
			len -= (size_t)n;
		assert_int_equal(event_loop_run_once(loop, 1), 0);
	}
	assert_int_equal(len, 0);
}

/* THE WATCH INVARIANT (connection.h): an owner that leaves a full input
   buffer unconsumed, queues nothing and waits for nothing has stalled
   its session (nothing would wake it; a client's close would go unseen):
   counted, logged once, and its input is handed over again, once, so a
   lost wake-up is only late. An owner that says it waits is no breach. */
static void
test_watch_invariant(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct connection_settings set = { 0 };
	unsigned long before = connection_watch_breaches;
	size_t total = CONN_IN_MAX + 3 * CONN_READ_CHUNK;
	struct owner o;
	int sv[2];

	(void)state;
	pair(sv, 256 * 1024);
	i_zero(&o);
	o.high_water = CONN_OUT_HIGH_WATER;
	o.conn = connection_new(loop, sv[0], &set, &waiting_owner_cb, &o);
	/* It says it waits: input stays unread, and that is no breach. */
	o.waiting = true;
	o.stall_calls = 1000;
	feed(loop, sv[1], total);
	for (int i = 0; i < 20; i++)
		assert_int_equal(event_loop_run_once(loop, 1), 0);
	assert_int_equal(o.consumed, 0);
	assert_int_equal(connection_watch_breaches, before);
	/* It wakes itself (here: asks to hear of drained output). */
	o.waiting = false;
	o.stall_calls = 0;
	connection_await_drain(o.conn);
	for (int i = 0; i < 2000 && o.consumed < total; i++)
		assert_int_equal(event_loop_run_once(loop, 1), 0);
	assert_int_equal(o.consumed, total);
	assert_int_equal(connection_watch_breaches, before);
	connection_free(&o.conn);
	close(sv[1]);

	/* Another owner leaves its full input unconsumed and waits for
	   nothing: the breach is counted once, and the input handed over
	   again is consumed. */
	pair(sv, 256 * 1024);
	i_zero(&o);
	o.high_water = CONN_OUT_HIGH_WATER;
	o.stall_till_breach = true;
	o.breaches_before = before;
	o.conn = connection_new(loop, sv[0], &set, &waiting_owner_cb, &o);
	feed(loop, sv[1], total);
	for (int i = 0; i < 2000 && o.consumed < total; i++)
		assert_int_equal(event_loop_run_once(loop, 1), 0);
	assert_int_equal(o.consumed, total);
	assert_int_equal(connection_watch_breaches, before + 1);
	connection_free(&o.conn);
	close(sv[1]);
	event_loop_free(&loop);
}

/* One flush writes at most write_cap octets even if the socket takes
   more. */
static void
test_write_cap_per_event(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct owner o;
	struct buf got = { 0 };
	int sv[2];

	pair(sv, 0);
	owner_start(&o, loop, sv[0], 0, 4096);
	struct buf *out = connection_outbuf(o.conn);
	for (int i = 0; i < 20000; i++)
		buf_append_c(out, 'z');
	connection_flush(o.conn);
	assert_int_equal(connection_out_pending(o.conn), 20000 - 4096);
	assert_int_equal(drain(sv[1], &got, 1 << 20), 4096);
	/* Each later flush (the writable event, the end of the pass, the
	   owner's own) writes another capped piece. */
	assert_int_equal(event_loop_run_once(loop, 50), 0);
	assert_true(connection_out_pending(o.conn) >= 20000 - 4 * 4096);
	for (int i = 0; i < 100 && connection_out_pending(o.conn) > 0; i++)
		assert_int_equal(event_loop_run_once(loop, 5), 0);
	assert_int_equal(connection_out_pending(o.conn), 0);
	connection_free(&o.conn);
	buf_free(&got);
	close(sv[1]);
	event_loop_free(&loop);
}

/* Killed in its own callback, or by another connection in the same
   pass while its own fd is ready: freed only after the pass, and its
   callbacks never run again. */
static void
test_deferred_free(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct owner a, b;
	int sa[2], sb[2];

	pair(sa, 0);
	pair(sb, 0);
	owner_start(&a, loop, sa[0], 0, 0);
	owner_start(&b, loop, sb[0], 0, 0);
	a.kill_other = b.conn;
	a.echo_each = 1;
	b.echo_each = 1;
	assert_int_equal(write(sa[1], "x", 1), 1);
	assert_int_equal(write(sb[1], "y", 1), 1);
	assert_int_equal(event_loop_run_once(loop, 100), 0);
	/* b may have been read before a killed it, never after. */
	assert_true(b.destroyed);
	assert_null(b.conn);
	assert_string_equal(b.reason, "killed by another");
	assert_false(a.destroyed);

	/* a kills itself from its input callback: still there while the
	   callback runs, destroyed after the pass. */
	a.kill_on_input = true;
	assert_int_equal(write(sa[1], "z", 1), 1);
	assert_int_equal(event_loop_run_once(loop, 100), 0);
	assert_true(a.destroyed);
	assert_string_equal(a.reason, "killed");
	/* The fds were closed: the peers see the end. */
	char c;
	assert_int_equal(read(sa[1], &c, 1), 1); /* a's echo of "x" */
	assert_int_equal(read(sa[1], &c, 1), 0);
	close(sa[1]);
	close(sb[1]);
	event_loop_free(&loop);
}

/* The peer closing is a hangup; a closing connection writes its last
   words before it goes. */
static void
test_hangup_and_close_after_flush(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct owner o;
	struct buf got = { 0 };
	int sv[2];

	pair(sv, 0);
	owner_start(&o, loop, sv[0], 0, 0);
	buf_append_str(connection_outbuf(o.conn), "* BYE bye\r\n");
	connection_close_after_flush(o.conn, "logged out");
	for (int i = 0; i < 10 && !o.destroyed; i++)
		assert_int_equal(event_loop_run_once(loop, 10), 0);
	assert_true(o.destroyed);
	assert_string_equal(o.reason, "logged out");
	drain(sv[1], &got, 1 << 20);
	assert_int_equal(got.len, strlen("* BYE bye\r\n"));
	close(sv[1]);

	pair(sv, 0);
	owner_start(&o, loop, sv[0], 0, 0);
	close(sv[1]);
	for (int i = 0; i < 10 && !o.destroyed; i++)
		assert_int_equal(event_loop_run_once(loop, 10), 0);
	assert_true(o.destroyed);
	assert_string_equal(o.reason, "connection closed by client");

	/* A write to a peer that is gone is a hangup too. */
	pair(sv, 0);
	owner_start(&o, loop, sv[0], 0, 0);
	close(sv[1]);
	buf_append_str(connection_outbuf(o.conn), "* 1 EXISTS\r\n");
	connection_flush(o.conn);
	assert_true(connection_is_dead(o.conn));
	assert_false(o.destroyed);
	assert_int_equal(event_loop_run_once(loop, 10), 0);
	assert_true(o.destroyed);
	assert_string_equal(o.reason, "connection reset");
	buf_free(&got);
	event_loop_free(&loop);
}

static void
test_refusal(void **state)
{
	int sv[2];
	char line[64];

	assert_null(connection_refusal_reason(3, 4, 5, false));
	assert_string_equal(connection_refusal_reason(3, 5, 5, false), "max_connections reached");
	assert_string_equal(connection_refusal_reason(3, 0, 5, true), "shutting down");
	assert_string_equal(connection_refusal_reason(FD_SETSIZE, 0, 5, false),
			    "fd above FD_SETSIZE");
	pair(sv, 0);
	connection_refuse(sv[0], "* BYE Too many connections\r\n");
	ssize_t n = read(sv[1], line, sizeof(line) - 1);
	assert_true(n > 0);
	line[n] = '\0';
	assert_string_equal(line, "* BYE Too many connections\r\n");
	assert_int_equal(read(sv[1], line, 1), 0);
	close(sv[1]);
}

/* The accept loop over a Unix socket: a server of 2 connections at most
   takes two and refuses the third with its protocol's line. */
struct server {
	struct event_loop *loop;
	struct owner owners[3];
	size_t count, refused;
};

static void
server_accept(void *ctx, int fd, const char *host, const char *port)
{
	struct server *s = ctx;

	assert_non_null(host);
	assert_non_null(port);
	if (connection_refusal_reason(fd, s->count, 2, false) != NULL) {
		connection_refuse(fd, "421 too many\r\n");
		s->refused++;
		return;
	}
	owner_start(&s->owners[s->count++], s->loop, fd, 0, 0);
}

static void
test_listener_refuses_beyond_limit(void **state)
{
	struct server s = { .loop = event_loop_new() };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct listener_settings set = { .log_prefix = "test: " };
	struct listener *listener;
	int lfd, cfd[3];
	char line[32];

	snprintf(sun.sun_path, sizeof(sun.sun_path), "/tmp/test_connection.%d", (int)getpid());
	unlink(sun.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	listener = listener_new(s.loop, lfd, &set, server_accept, &s);
	for (int i = 0; i < 3; i++) {
		cfd[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_int_equal(connect(cfd[i], (struct sockaddr *)&sun, sizeof(sun)), 0);
	}
	for (int i = 0; i < 20 && s.count + s.refused < 3; i++)
		assert_int_equal(event_loop_run_once(s.loop, 20), 0);
	assert_int_equal(s.count, 2);
	assert_int_equal(s.refused, 1);
	ssize_t n = read(cfd[2], line, sizeof(line) - 1);
	assert_true(n > 0);
	line[n] = '\0';
	assert_string_equal(line, "421 too many\r\n");
	for (size_t i = 0; i < s.count; i++)
		connection_free(&s.owners[i].conn);
	listener_free(&listener);
	assert_null(listener);
	close(lfd);
	unlink(sun.sun_path);
	for (int i = 0; i < 3; i++)
		close(cfd[i]);
	event_loop_free(&s.loop);
}

/* One port on two addresses (imap.address = "127.0.0.1, 127.0.0.2"): with
   port 0 both sockets take the port the first picked; one listener
   accepts on both. A set that cannot bind its second address leaves
   nothing open. */
static void
test_listener_on_two_addresses(void **state)
{
	struct server s = { .loop = event_loop_new() };
	struct listener_settings set = { .log_prefix = "test: " };
	struct net_listen_set ls, busy;
	struct listener *listener;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char *error = NULL, want[64];
	int cfd[2];

	(void)state;
	assert_int_equal(net_listen_set_open(&ls, "127.0.0.1, 127.0.0.2", 0, &error), 0);
	assert_int_equal(ls.count, 2);
	struct sockaddr_in a = { 0 }, b = { 0 };
	socklen_t alen = sizeof(a), blen = sizeof(b);
	assert_int_equal(getsockname(ls.fds[0], (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(getsockname(ls.fds[1], (struct sockaddr *)&b, &blen), 0);
	assert_int_equal(a.sin_port, b.sin_port);
	snprintf(want, sizeof(want), "127.0.0.1:%u, 127.0.0.2:%u", ntohs(a.sin_port),
		 ntohs(a.sin_port));
	assert_string_equal(ls.bound, want);

	/* The same port again on 127.0.0.3 and the busy 127.0.0.2: refused,
	   and 127.0.0.3 is not left bound. */
	assert_int_equal(net_listen_set_open(&busy, "127.0.0.3 127.0.0.2", ntohs(a.sin_port),
					     &error), -1);
	assert_non_null(strstr(error, "127.0.0.2"));
	assert_int_equal(busy.count, 0);
	free(error);
	assert_int_equal(net_listen_set_open(&busy, "127.0.0.3", ntohs(a.sin_port), &error), 0);
	net_listen_set_close(&busy);

	listener = listener_new(s.loop, ls.fds[0], &set, server_accept, &s);
	listener_add(listener, ls.fds[1]);
	for (int i = 0; i < 2; i++) {
		sin.sin_port = a.sin_port;
		sin.sin_addr.s_addr = htonl(i == 0 ? 0x7f000001 : 0x7f000002);
		cfd[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(connect(cfd[i], (struct sockaddr *)&sin, sizeof(sin)), 0);
	}
	for (int i = 0; i < 20 && s.count < 2; i++)
		assert_int_equal(event_loop_run_once(s.loop, 20), 0);
	assert_int_equal(s.count, 2);
	for (size_t i = 0; i < s.count; i++)
		connection_free(&s.owners[i].conn);
	listener_free(&listener);
	net_listen_set_close(&ls);
	assert_int_equal(ls.count, 0);
	for (int i = 0; i < 2; i++)
		close(cfd[i]);
	event_loop_free(&s.loop);
}

/* Test layers: one passes bytes through one at a time each way; one
   XORs them and keeps what it wrote, pushing it below 7 octets at a
   time when flushed. */
struct onebyte_layer {
	struct conn_layer layer;
	unsigned reads, writes;
};

static ssize_t
onebyte_read(struct conn_layer *layer, void *data, size_t size)
{
	((struct onebyte_layer *)layer)->reads++;
	return conn_layer_read(layer->below, data, size > 0 ? 1 : 0);
}

static ssize_t
onebyte_write(struct conn_layer *layer, const void *data, size_t size)
{
	((struct onebyte_layer *)layer)->writes++;
	return conn_layer_write(layer->below, data, size > 0 ? 1 : 0);
}

static void
layer_free(struct conn_layer *layer)
{
	free(layer);
}

static const struct conn_layer_vfuncs onebyte_vfuncs = {
	.name = "onebyte",
	.read = onebyte_read,
	.write = onebyte_write,
	.free = layer_free,
};

#define XOR_KEY 0x5a
#define XOR_HOLD 1024

struct xor_layer {
	struct conn_layer layer;
	struct buf out;
	size_t out_pos;
};

static ssize_t
xor_read(struct conn_layer *layer, void *data, size_t size)
{
	ssize_t ret = conn_layer_read(layer->below, data, size);

	for (ssize_t i = 0; i < ret; i++)
		((unsigned char *)data)[i] ^= XOR_KEY;
	return ret;
}

static ssize_t
xor_write(struct conn_layer *layer, const void *data, size_t size)
{
	struct xor_layer *x = (struct xor_layer *)layer;

	/* Holds at most XOR_HOLD octets. */
	if (x->out.len - x->out_pos >= XOR_HOLD) {
		errno = EAGAIN;
		return -1;
	}
	if (size > XOR_HOLD - (x->out.len - x->out_pos))
		size = XOR_HOLD - (x->out.len - x->out_pos);
	for (size_t i = 0; i < size; i++)
		buf_append_c(&x->out, (char)(((const unsigned char *)data)[i] ^ XOR_KEY));
	return (ssize_t)size;
}

static int
xor_flush(struct conn_layer *layer)
{
	struct xor_layer *x = (struct xor_layer *)layer;

	while (x->out_pos < x->out.len) {
		size_t n = x->out.len - x->out_pos > 7 ? 7 : x->out.len - x->out_pos;
		ssize_t ret = conn_layer_write(layer->below, x->out.data + x->out_pos, n);
		if (ret < 0)
			return -1;
		x->out_pos += (size_t)ret;
	}
	buf_reset(&x->out);
	x->out_pos = 0;
	return 0;
}

static size_t
xor_out_pending(const struct conn_layer *layer)
{
	const struct xor_layer *x = (const struct xor_layer *)layer;

	return x->out.len - x->out_pos;
}

static void
xor_free(struct conn_layer *layer)
{
	struct xor_layer *x = (struct xor_layer *)layer;

	buf_free(&x->out);
	free(x);
}

static const struct conn_layer_vfuncs xor_vfuncs = {
	.name = "xor",
	.read = xor_read,
	.write = xor_write,
	.flush = xor_flush,
	.out_pending = xor_out_pending,
	.free = xor_free,
};

static void
test_stacked_layers(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct onebyte_layer *one = xcalloc(1, sizeof(*one));
	struct xor_layer *x = xcalloc(1, sizeof(*x));
	struct owner o;
	struct buf got = { 0 };
	char msg[20000];
	int sv[2];

	pair(sv, 4096);
	owner_start(&o, loop, sv[0], 0, 0);
	o.echo_each = 1;
	one->layer.v = &onebyte_vfuncs;
	x->layer.v = &xor_vfuncs;
	connection_push_layer(o.conn, &one->layer);
	connection_push_layer(o.conn, &x->layer);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)(('a' + i % 26) ^ XOR_KEY);
	size_t sent = 0;
	for (int i = 0; i < 200000 && got.len < sizeof(msg); i++) {
		if (sent < sizeof(msg)) {
			ssize_t n = write(sv[1], msg + sent, sizeof(msg) - sent);
			if (n > 0)
				sent += (size_t)n;
		}
		assert_int_equal(event_loop_run_once(loop, 1), 0);
		drain(sv[1], &got, 1000);
	}
	/* The echo went up through both layers and down again. */
	assert_int_equal(got.len, sizeof(msg));
	assert_memory_equal(got.data, msg, sizeof(msg));
	assert_true(one->reads >= sizeof(msg));
	assert_true(one->writes >= sizeof(msg));
	assert_int_equal(connection_out_pending(o.conn), 0);
	connection_free(&o.conn); /* frees the layers */
	buf_free(&got);
	close(sv[1]);
	event_loop_free(&loop);
}

/* A layer that holds output and takes no more while full: a big answer
   still gets through to a slow reader, decoded in order. */
static void
test_layer_holding_output(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct xor_layer *x = xcalloc(1, sizeof(*x));
	struct owner o;
	struct buf got = { 0 };
	int sv[2];

	pair(sv, 4096);
	owner_start(&o, loop, sv[0], 32 * 1024, 0);
	x->layer.v = &xor_vfuncs;
	connection_push_layer(o.conn, &x->layer);
	o.produce = 300 * 1024;
	o.piece = 16 * 1024;
	owner_output(&o);
	for (int i = 0; i < 100000 && got.len < o.produce; i++) {
		assert_int_equal(event_loop_run_once(loop, 5), 0);
		drain(sv[1], &got, 4096);
	}
	assert_int_equal(got.len, o.produce);
	for (size_t i = 0; i < got.len; i++) {
		if ((got.data[i] ^ XOR_KEY) != (char)('a' + i % 26))
			fail_msg("octet %zu wrong", i);
	}
	assert_int_equal(connection_out_pending(o.conn), 0);
	connection_free(&o.conn);
	buf_free(&got);
	close(sv[1]);
	event_loop_free(&loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slow_reader_gets_everything),
		cmocka_unit_test(test_high_water_pauses_and_resumes_input),
		cmocka_unit_test(test_write_cap_per_event),
		cmocka_unit_test(test_watch_invariant),
		cmocka_unit_test(test_deferred_free),
		cmocka_unit_test(test_hangup_and_close_after_flush),
		cmocka_unit_test(test_refusal),
		cmocka_unit_test(test_listener_refuses_beyond_limit),
		cmocka_unit_test(test_listener_on_two_addresses),
		cmocka_unit_test(test_stacked_layers),
		cmocka_unit_test(test_layer_holding_output),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
