/* Tests of the COMPRESS=DEFLATE layer (core/io/compress.c) on real
   connections over socketpairs, and of the COMPRESS command in process:
   round trips both ways through small socket buffers (partial writes
   below the layer), answers that inflate far beyond one read, a zip bomb
   that costs no more than its line limit, a corrupt stream that ends
   the connection with a reason, input pipelined behind COMPRESS taken as
   compressed, and the command's happy and unhappy paths. The peer that
   is not a connection speaks raw DEFLATE through zlib directly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "compress.h"
#include "config.h"
#include "connection.h"
#include "event.h"
#include "imap_server.h"
#include "log.h"
#include "watch.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* One end of a connection: collects its input (unless hold), produces
   `produce` octets of text when its output drains, and on a first line
   "COMPRESS\r\n" answers "OK\r\n" and starts the layer keeping input. */
struct end {
	struct connection *conn;
	struct buf got;
	bool hold;
	bool starts_compress;
	size_t produce, produced;
	size_t max_layer_mem;
	bool destroyed;
	char reason[128];
};

static void
end_note_memory(struct end *e)
{
	const struct conn_layer *top = connection_top_layer(e->conn);

	if (compress_layer_is_deflate(top) && compress_layer_memory(top) > e->max_layer_mem)
		e->max_layer_mem = compress_layer_memory(top);
}

/* Text that compresses about as well as mail: words from a small
   vocabulary picked by a simple generator. */
static void
fill_text(struct buf *out, size_t from, size_t n)
{
	static const char *const words[] = { "the ",      "mailbox ",   "FETCH ",     "message ",
					     "Subject: ", "quarterly ", "report\r\n", "is ",
					     "attached ", "and ",       "42 ",        "UID " };
	for (size_t i = from; i < from + n; i++) {
		size_t w = (i / 7) * 2654435761u % N_ELEMENTS(words);
		const char *word = words[w];
		buf_append_c(out, word[i % 7 < strlen(word) ? i % 7 : 0]);
	}
}

static void
end_input(void *ctx)
{
	struct end *e = ctx;
	size_t len;
	const char *in = connection_input(e->conn, &len);

	end_note_memory(e);
	if (e->hold)
		return;
	if (e->starts_compress && len >= 10 && memcmp(in, "COMPRESS\r\n", 10) == 0) {
		e->starts_compress = false;
		connection_input_consume(e->conn, 10);
		buf_append_str(connection_outbuf(e->conn), "OK\r\n");
		connection_start_layer_keep_input(e->conn, compress_layer_new());
		return;
	}
	buf_append(&e->got, in, len);
	connection_input_consume(e->conn, len);
}

static void
end_output(void *ctx)
{
	struct end *e = ctx;

	end_note_memory(e);
	if (e->produced < e->produce) {
		size_t n = e->produce - e->produced < 65536 ? e->produce - e->produced : 65536;
		fill_text(connection_outbuf(e->conn), e->produced, n);
		e->produced += n;
		connection_flush(e->conn);
	}
}

static void
end_hangup(void *ctx, const char *reason)
{
	struct end *e = ctx;

	connection_kill(e->conn, reason);
}

static void
end_destroy(void *ctx)
{
	struct end *e = ctx;

	snprintf(e->reason, sizeof(e->reason), "%s", connection_close_reason(e->conn));
	e->destroyed = true;
	connection_free(&e->conn);
}

static const struct connection_callbacks end_cb = {
	.input = end_input,
	.output = end_output,
	.hangup = end_hangup,
	.destroy = end_destroy,
};

static void
socket_pair(int sv[2], int bufsize)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fd_set_nonblock_cloexec(sv[0]), 0);
	assert_int_equal(fd_set_nonblock_cloexec(sv[1]), 0);
	for (int i = 0; bufsize > 0 && i < 2; i++) {
		(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
		(void)setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
	}
}

static void
end_free(struct end *e)
{
	connection_free(&e->conn);
	buf_free(&e->got);
}

/* A raw DEFLATE peer through zlib, as a client would be. */
struct zpeer {
	z_stream def, inf;
};

static void
zpeer_init(struct zpeer *p)
{
	i_zero(p);
	assert_int_equal(deflateInit2(&p->def, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	assert_int_equal(inflateInit2(&p->inf, -15), Z_OK);
}

static void
zpeer_free(struct zpeer *p)
{
	(void)deflateEnd(&p->def);
	(void)inflateEnd(&p->inf);
}

/* Deflates data (flush: Z_SYNC_FLUSH, or Z_NO_FLUSH to go on) into out. */
static void
zpeer_deflate(struct zpeer *p, const void *data, size_t len, int flush, struct buf *out)
{
	unsigned char chunk[16384];

	p->def.next_in = (Bytef *)(uintptr_t)data;
	p->def.avail_in = (uInt)len;
	do {
		p->def.next_out = chunk;
		p->def.avail_out = sizeof(chunk);
		assert_true(deflate(&p->def, flush) != Z_STREAM_ERROR);
		buf_append(out, chunk, sizeof(chunk) - p->def.avail_out);
	} while (p->def.avail_out == 0 || p->def.avail_in > 0);
}

static void
zpeer_inflate(struct zpeer *p, const void *data, size_t len, struct buf *out)
{
	unsigned char chunk[65536];

	p->inf.next_in = (Bytef *)(uintptr_t)data;
	p->inf.avail_in = (uInt)len;
	do {
		int ret;

		p->inf.next_out = chunk;
		p->inf.avail_out = sizeof(chunk);
		ret = inflate(&p->inf, Z_SYNC_FLUSH);
		assert_true(ret == Z_OK || ret == Z_BUF_ERROR);
		buf_append(out, chunk, sizeof(chunk) - p->inf.avail_out);
	} while (p->inf.avail_out == 0);
}

/* Reads what fd has now into out; returns how much. */
static size_t
read_some(int fd, struct buf *out)
{
	char chunk[16384];
	size_t total = 0;
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		buf_append(out, chunk, (size_t)n);
		total += (size_t)n;
	}
	return total;
}

/* Writes all of data to a non-blocking fd, running the loop while it is
   full. */
static void
write_all(struct event_loop *loop, int fd, const void *data, size_t len)
{
	const char *p = data;

	for (int i = 0; i < 100000 && len > 0; i++) {
		ssize_t n = write(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else {
			assert_true(errno == EAGAIN);
			assert_true(event_loop_run_once(loop, 1) >= 0);
		}
	}
	assert_int_equal(len, 0);
}

/* Both ends compressed: 4 MB of text from one end through 4 KB socket
   buffers (the layer's output waits below again and again) and a line
   the other way arrive whole and in order, and the layers end holding
   no output and no deflate state. */
static void
test_round_trip_through_small_buffers(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct end srv = { 0 }, cli = { 0 };
	struct buf want = { 0 };
	uint64_t in_plain, out_plain, out_raw;
	int sv[2];

	socket_pair(sv, 4096);
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	cli.conn = connection_new(loop, sv[1], NULL, &end_cb, &cli);
	connection_push_layer(srv.conn, compress_layer_new());
	connection_push_layer(cli.conn, compress_layer_new());
	buf_append_str(connection_outbuf(cli.conn), "a FETCH 1:* BODY[]\r\n");
	srv.produce = 4 * 1024 * 1024;
	end_output(&srv);
	for (int i = 0; i < 50000 && (cli.got.len < srv.produce || srv.got.len < 20); i++)
		assert_true(event_loop_run_once(loop, 1) >= 0);
	assert_int_equal(srv.got.len, 20);
	assert_memory_equal(srv.got.data, "a FETCH 1:* BODY[]\r\n", 20);
	fill_text(&want, 0, srv.produce);
	assert_int_equal(cli.got.len, want.len);
	assert_memory_equal(cli.got.data, want.data, want.len);
	assert_int_equal(connection_out_pending(srv.conn), 0);
	compress_layer_stats(connection_top_layer(srv.conn), NULL, NULL, &out_plain, &out_raw);
	compress_layer_stats(connection_top_layer(cli.conn), &in_plain, NULL, NULL, NULL);
	assert_int_equal(out_plain, srv.produce);
	assert_int_equal(in_plain, srv.produce);
	/* Text compresses. */
	assert_true(out_raw < out_plain / 2);
	/* Between bursts the deflate state and buffers are given back: the
	   inflate state and its 32 KB window stay. */
	assert_true(compress_layer_memory(connection_top_layer(srv.conn)) < 48 * 1024);
	end_free(&srv);
	end_free(&cli);
	buf_free(&want);
	event_loop_free(&loop);
}

/* With zlib's default deflate (32 KB window, memLevel 8) deflate holds
   more compressed output than the layer's output buffer takes at once:
   a write that first gets only that out, taking no input, goes on. 4 MB
   of text and 1 MB of random octets arrive whole at a zlib peer. */
static void
test_zlib_defaults_hold_more_than_one_buffer(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct end srv = { 0 };
	struct zpeer peer;
	struct buf raw = { 0 }, plain = { 0 }, want = { 0 };
	uint32_t x = 2463534242u;
	int sv[2];

	/* Large socket buffers: obuf often goes below whole, and the
	   next write starts with what deflate still holds. */
	socket_pair(sv, 0);
	zpeer_init(&peer);
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	connection_push_layer(srv.conn, compress_layer_new_with(15, 8));
	fill_text(&want, 0, 4 * 1024 * 1024);
	for (size_t i = 0; i < 1024 * 1024; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf_append_c(&want, (char)(x & 0xff));
	}
	buf_append(connection_outbuf(srv.conn), want.data, want.len);
	connection_flush(srv.conn);
	for (int i = 0; i < 100000 && plain.len < want.len && !srv.destroyed; i++) {
		size_t from = raw.len;
		assert_true(event_loop_run_once(loop, 1) >= 0);
		if (read_some(sv[1], &raw) > 0)
			zpeer_inflate(&peer, raw.data + from, raw.len - from, &plain);
	}
	assert_false(srv.destroyed);
	assert_int_equal(plain.len, want.len);
	assert_memory_equal(plain.data, want.data, want.len);
	end_free(&srv);
	close(sv[1]);
	zpeer_free(&peer);
	buf_free(&raw);
	buf_free(&plain);
	buf_free(&want);
	event_loop_free(&loop);
}

/* A peer that reads nothing: the layer keeps what it compressed (out
   pending, the output event watched) and everything arrives once the
   peer reads; every answer is complete after its flush (the peer
   decodes it without waiting for more). */
static void
test_partial_write_resumes(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct end srv = { 0 };
	struct zpeer peer;
	struct buf raw = { 0 }, plain = { 0 }, want = { 0 };
	int sv[2];

	socket_pair(sv, 4096);
	zpeer_init(&peer);
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	connection_push_layer(srv.conn, compress_layer_new());
	/* A small answer first: decodable at once. */
	buf_append_str(connection_outbuf(srv.conn), "* OK small\r\n");
	connection_flush(srv.conn);
	for (int i = 0; i < 100 && raw.len == 0; i++) {
		assert_true(event_loop_run_once(loop, 1) >= 0);
		read_some(sv[1], &raw);
	}
	zpeer_inflate(&peer, raw.data, raw.len, &plain);
	assert_int_equal(plain.len, 12);
	assert_memory_equal(plain.data, "* OK small\r\n", 12);
	/* Then 1 MB while the peer does not read. */
	srv.produce = 1024 * 1024;
	end_output(&srv);
	for (int i = 0; i < 50; i++)
		assert_true(event_loop_run_once(loop, 1) >= 0);
	assert_true(connection_out_pending(srv.conn) > 0);
	buf_reset(&raw);
	for (int i = 0; i < 50000 && plain.len < 12 + srv.produce; i++) {
		size_t from = raw.len;
		assert_true(event_loop_run_once(loop, 1) >= 0);
		if (read_some(sv[1], &raw) > 0)
			zpeer_inflate(&peer, raw.data + from, raw.len - from, &plain);
	}
	buf_append_str(&want, "* OK small\r\n");
	fill_text(&want, 0, srv.produce);
	assert_int_equal(plain.len, want.len);
	assert_memory_equal(plain.data, want.data, want.len);
	end_free(&srv);
	close(sv[1]);
	zpeer_free(&peer);
	buf_free(&raw);
	buf_free(&plain);
	buf_free(&want);
	event_loop_free(&loop);
}

/* 8 MB of one repeated line arrive as a few KB: each read returns at
   most one read chunk, the rest waits in the layer, and the layer's
   memory stays within its fixed buffers and zlib's states. */
static void
test_inflate_beyond_one_read(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct end srv = { 0 };
	struct zpeer peer;
	struct buf line = { 0 }, raw = { 0 };
	size_t total = 8 * 1024 * 1024;
	int sv[2];

	socket_pair(sv, 0);
	zpeer_init(&peer);
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	connection_push_layer(srv.conn, compress_layer_new());
	buf_append_str(&line, "a NOOP and then some more words to make a line\r\n");
	for (size_t sent = 0; sent < total; sent += line.len)
		zpeer_deflate(&peer, line.data, line.len, Z_NO_FLUSH, &raw);
	zpeer_deflate(&peer, NULL, 0, Z_SYNC_FLUSH, &raw);
	assert_true(raw.len < 64 * 1024);
	write_all(loop, sv[1], raw.data, raw.len);
	for (int i = 0; i < 20000 && srv.got.len < total; i++)
		assert_true(event_loop_run_once(loop, 1) >= 0);
	assert_true(srv.got.len >= total);
	for (size_t off = 0; off + line.len <= srv.got.len; off += line.len)
		assert_memory_equal(srv.got.data + off, line.data, line.len);
	assert_true(srv.max_layer_mem < 96 * 1024);
	end_free(&srv);
	close(sv[1]);
	zpeer_free(&peer);
	buf_free(&line);
	buf_free(&raw);
	event_loop_free(&loop);
}

/* A zip bomb (64 MB of zeros, about 64 KB compressed) to an owner that
   consumes nothing: the connection stops reading at its input cap, so
   the server holds at most that much decoded input and the layer its
   fixed buffers, whatever the bomb's size. (A session consumes its
   input up to the line and literal limits, then answers BAD and
   closes: tests/e2e/test_compress.py.) */
static void
test_zip_bomb_is_bounded(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct end srv = { .hold = true };
	struct zpeer peer;
	struct buf raw = { 0 };
	char *zeros = xcalloc(1, 1024 * 1024);
	size_t unconsumed;
	int sv[2];

	socket_pair(sv, 0);
	zpeer_init(&peer);
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	connection_push_layer(srv.conn, compress_layer_new());
	for (int i = 0; i < 64; i++)
		zpeer_deflate(&peer, zeros, 1024 * 1024, Z_NO_FLUSH, &raw);
	zpeer_deflate(&peer, NULL, 0, Z_SYNC_FLUSH, &raw);
	/* Send what the socket takes; the rest would wait in the client. */
	(void)write(sv[1], raw.data, raw.len > 65536 ? 65536 : raw.len);
	for (int i = 0; i < 200; i++)
		assert_true(event_loop_run_once(loop, 1) >= 0);
	(void)connection_input(srv.conn, &unconsumed);
	assert_true(unconsumed >= CONN_IN_MAX);
	assert_true(unconsumed <= CONN_IN_MAX + CONN_READ_CHUNK);
	assert_true(srv.max_layer_mem < 96 * 1024);
	assert_true(compress_layer_memory(connection_top_layer(srv.conn)) < 96 * 1024);
	assert_false(srv.destroyed);
	end_free(&srv);
	close(sv[1]);
	zpeer_free(&peer);
	buf_free(&raw);
	free(zeros);
	event_loop_free(&loop);
}

/* Garbage where DEFLATE is expected: the read fails, the owner hears
   why ("deflate: corrupt input: ..."), the connection is closed and
   freed after the pass; nothing crashes. */
static void
test_corrupt_stream_closes_with_reason(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct end srv = { 0 };
	const unsigned char garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x13, 0x37, 0x00, 0x42 };
	int sv[2];

	socket_pair(sv, 0);
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	connection_push_layer(srv.conn, compress_layer_new());
	assert_int_equal(write(sv[1], garbage, sizeof(garbage)), (ssize_t)sizeof(garbage));
	for (int i = 0; i < 100 && !srv.destroyed; i++)
		assert_true(event_loop_run_once(loop, 1) >= 0);
	assert_true(srv.destroyed);
	assert_non_null(strstr(srv.reason, "deflate: corrupt input: "));
	assert_int_equal(srv.got.len, 0);
	close(sv[1]);
	buf_free(&srv.got);
	event_loop_free(&loop);
}

/* RFC 4978 section 3: the command, then (in the same write) compressed
   data. The answer goes out in clear, everything after it compressed,
   and the pipelined data is decoded, not taken as clear text. */
static void
test_pipelined_input_after_start_is_compressed(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct end srv = { .starts_compress = true };
	struct zpeer peer;
	struct buf out = { 0 }, raw = { 0 }, plain = { 0 };
	int sv[2];

	socket_pair(sv, 0);
	zpeer_init(&peer);
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	buf_append_str(&out, "COMPRESS\r\n");
	zpeer_deflate(&peer, "b NOOP\r\n", 8, Z_SYNC_FLUSH, &out);
	assert_int_equal(write(sv[1], out.data, out.len), (ssize_t)out.len);
	for (int i = 0; i < 100 && srv.got.len < 8; i++)
		assert_true(event_loop_run_once(loop, 1) >= 0);
	assert_int_equal(srv.got.len, 8);
	assert_memory_equal(srv.got.data, "b NOOP\r\n", 8);
	assert_true(compress_layer_is_deflate(connection_top_layer(srv.conn)));
	assert_true(connection_has_layer(srv.conn, COMPRESS_LAYER_NAME));
	/* The OK in clear, then an answer in DEFLATE. */
	buf_append_str(connection_outbuf(srv.conn), "b OK done\r\n");
	connection_flush(srv.conn);
	for (int i = 0; i < 100 && raw.len < 5; i++) {
		assert_true(event_loop_run_once(loop, 1) >= 0);
		read_some(sv[1], &raw);
	}
	assert_true(raw.len > 4);
	assert_memory_equal(raw.data, "OK\r\n", 4);
	zpeer_inflate(&peer, raw.data + 4, raw.len - 4, &plain);
	assert_int_equal(plain.len, 11);
	assert_memory_equal(plain.data, "b OK done\r\n", 11);
	end_free(&srv);
	close(sv[1]);
	zpeer_free(&peer);
	buf_free(&out);
	buf_free(&raw);
	buf_free(&plain);
	event_loop_free(&loop);
}

/* The peer ends its stream (a final block), then closes: the end of
   the stream is the end of the input. */
static void
test_final_block_ends_input(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct end srv = { 0 };
	struct zpeer peer;
	struct buf out = { 0 };
	int sv[2];

	socket_pair(sv, 0);
	zpeer_init(&peer);
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	connection_push_layer(srv.conn, compress_layer_new());
	zpeer_deflate(&peer, "c LOGOUT\r\n", 10, Z_FINISH, &out);
	buf_append_str(&out, "trailing junk");
	assert_int_equal(write(sv[1], out.data, out.len), (ssize_t)out.len);
	for (int i = 0; i < 100 && !srv.destroyed; i++)
		assert_true(event_loop_run_once(loop, 1) >= 0);
	assert_true(srv.destroyed);
	assert_int_equal(srv.got.len, 10);
	assert_memory_equal(srv.got.data, "c LOGOUT\r\n", 10);
	close(sv[1]);
	buf_free(&srv.got);
	zpeer_free(&peer);
	buf_free(&out);
	event_loop_free(&loop);
}

/* The COMPRESS command in process: the real server on the flat backend,
   one session over a socketpair, the client's side in zlib. */
struct imap_harness {
	char dir[64];
	struct event_loop *loop;
	struct watch *watch;
	struct imap_server *server;
	int fd;
	struct zpeer peer;
	bool compressed;
	struct buf raw, in; /* received as is, and decoded */
};

static void
write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(content, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static int
imap_setup(void **state)
{
	struct imap_harness *h = xcalloc(1, sizeof(*h));
	struct config *cfg;
	struct server_gen *gen;
	char path[256], *error = NULL;

	snprintf(h->dir, sizeof(h->dir), "/tmp/test_compress.XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(path, sizeof(path), "%s/users", h->dir);
	write_file(path, "alice alice123\n");
	snprintf(path, sizeof(path), "%s/mail", h->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/mail/alice", h->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/mail/alice/mymailbox.mail", h->dir);
	write_file(path, "From: bob@localhost\nTo: alice@localhost\nSubject: lunch\n"
			 "Received: 2022-03-10 : 14 : 30\nShall we meet at noon?\n.\n");
	snprintf(path, sizeof(path), "%s/imapserver.conf", h->dir);
	write_file(path,
		   "storage: { backend = \"flat\"; root = \"mail\"; };\n"
		   "auth: { backend = \"passwd-file\"; file = \"users\"; };\n"
		   "limits: { auth_fail_delay = 0; max_line = 2048; max_literal = 100000; };\n"
		   "log: { level = \"error\"; };\n");
	if (config_load(path, &cfg, &error) < 0)
		fail_msg("config: %s", error);
	log_set_level(LOG_LEVEL_ERROR);
	h->loop = event_loop_new();
	h->watch = watch_new(h->loop);
	gen = server_gen_new(cfg, h->watch, &error);
	if (gen == NULL)
		fail_msg("gen: %s", error);
	h->server = imap_server_new(h->loop, gen, -1);
	server_gen_unref(&gen);
	zpeer_init(&h->peer);
	h->fd = -1;
	*state = h;
	return 0;
}

static int
imap_teardown(void **state)
{
	struct imap_harness *h = *state;
	char cmdline[128];

	imap_server_free(&h->server);
	watch_free(&h->watch);
	event_loop_free(&h->loop);
	if (h->fd >= 0)
		close(h->fd);
	zpeer_free(&h->peer);
	buf_free(&h->raw);
	buf_free(&h->in);
	snprintf(cmdline, sizeof(cmdline), "rm -rf '%s'", h->dir);
	assert_int_equal(system(cmdline), 0);
	free(h);
	return 0;
}

/* Runs the loop until a line starting with until was received (decoded
   once compressed), the peer closed, or 3 s passed. Returns all that
   was received, which the caller frees. */
static char *
imap_wait(struct imap_harness *h, const char *until, bool *closed_r)
{
	int64_t end = mono_ms() + 3000;

	*closed_r = false;
	while (mono_ms() < end && !*closed_r) {
		char chunk[65536];
		ssize_t n;

		assert_int_equal(event_loop_run_once(h->loop, 5), 0);
		while ((n = read(h->fd, chunk, sizeof(chunk))) > 0) {
			if (h->compressed)
				zpeer_inflate(&h->peer, chunk, (size_t)n, &h->in);
			else
				buf_append(&h->in, chunk, (size_t)n);
		}
		if (n == 0)
			*closed_r = true;
		for (const char *p = h->in.data; p != NULL && until != NULL;) {
			const char *eol = strstr(p, "\r\n");
			if (eol == NULL)
				break;
			if (strncmp(p, until, strlen(until)) == 0)
				return buf_steal(&h->in);
			p = eol + 2;
		}
	}
	return buf_steal(&h->in);
}

static void
imap_send(struct imap_harness *h, const char *line)
{
	struct buf out = { 0 };

	if (h->compressed)
		zpeer_deflate(&h->peer, line, strlen(line), Z_SYNC_FLUSH, &out);
	else
		buf_append_str(&out, line);
	write_all(h->loop, h->fd, out.data, out.len);
	buf_free(&out);
}

#define assert_contains(hay, needle)                                          \
	do {                                                                  \
		if (strstr((hay), (needle)) == NULL)                          \
			fail_msg("expected \"%s\" in:\n%s", (needle), (hay)); \
	} while (0)

/* Sends line, waits for tag's answer, checks that it contains needle. */
static void
imap_expect(struct imap_harness *h, const char *line, const char *tag, const char *needle)
{
	bool closed;
	char *ans;

	imap_send(h, line);
	ans = imap_wait(h, tag, &closed);
	assert_contains(ans, needle);
	free(ans);
}

static void
imap_connect(struct imap_harness *h)
{
	int sv[2];
	bool closed;
	char *greeting;

	socket_pair(sv, 0);
	h->fd = sv[1];
	imap_server_accept_fd(h->server, sv[0], "test");
	greeting = imap_wait(h, "* OK", &closed);
	assert_contains(greeting, "* OK [CAPABILITY IMAP4rev1");
	/* Not before login. */
	assert_null(strstr(greeting, "COMPRESS"));
	free(greeting);
}

/* Happy and unhappy paths: not before login; BAD for no or another
   mechanism; OK in clear, then commands and answers compressed; NO
   [COMPRESSIONACTIVE] the second time; LOGOUT's BYE compressed. */
static void
test_imap_compress_command(void **state)
{
	struct imap_harness *h = *state;
	bool closed;
	char *ans;

	imap_connect(h);
	imap_expect(h, "a1 CAPABILITY\r\n", "a1 ", "a1 OK");
	imap_expect(h, "a2 COMPRESS DEFLATE\r\n", "a2 ", "a2 BAD");
	imap_expect(h, "a3 LOGIN alice alice123\r\n", "a3 ", "COMPRESS=DEFLATE] Logged in");
	imap_expect(h, "a4 CAPABILITY\r\n", "a4 ", " COMPRESS=DEFLATE");
	imap_expect(h, "a5 COMPRESS\r\n", "a5 ", "a5 BAD");
	imap_expect(h, "a6 COMPRESS LZW\r\n", "a6 ", "a6 BAD");
	imap_expect(h, "a7 COMPRESS DEFLATE EXTRA\r\n", "a7 ", "a7 BAD");
	imap_expect(h, "a8 COMPRESS deflate\r\n", "a8 ", "a8 OK");
	/* Nothing but the OK came in clear. */
	assert_int_equal(h->in.len, 0);
	h->compressed = true;
	imap_expect(h, "b1 SELECT INBOX\r\n", "b1 ", "b1 OK [READ-WRITE]");
	imap_expect(h, "b2 FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])\r\n", "b2 ", "Subject: lunch");
	imap_expect(h, "b3 COMPRESS DEFLATE\r\n", "b3 ", "b3 NO [COMPRESSIONACTIVE]");
	imap_expect(h, "b4 NOOP\r\n", "b4 ", "b4 OK");
	imap_send(h, "b5 LOGOUT\r\n");
	ans = imap_wait(h, NULL, &closed);
	assert_true(closed);
	assert_contains(ans, "* BYE");
	assert_contains(ans, "b5 OK");
	free(ans);
}

/* A command pipelined behind COMPRESS in the same write is compressed
   data and answered; then a zip bomb (a 64 MB line, 64 KB on the wire)
   gets BAD and BYE at the line limit, the session's memory bounded,
   and the server goes on. */
static void
test_imap_compress_pipelined_and_bomb(void **state)
{
	struct imap_harness *h = *state;
	struct buf out = { 0 };
	char *zeros = xmalloc(1024 * 1024), *ans;
	bool closed;

	memset(zeros, 'A', 1024 * 1024);
	imap_connect(h);
	imap_expect(h, "a1 LOGIN alice alice123\r\n", "a1 ", "a1 OK");
	buf_append_str(&out, "a2 COMPRESS DEFLATE\r\n");
	zpeer_deflate(&h->peer, "a3 NOOP\r\n", 9, Z_SYNC_FLUSH, &out);
	write_all(h->loop, h->fd, out.data, out.len);
	/* Everything after the OK's CRLF is DEFLATE (the NOOP's answer may
	   come in the same read). */
	{
		const char *ok_line = "a2 OK DEFLATE active.\r\n";
		const char *ok = NULL;
		size_t used;

		for (int i = 0; i < 600 && ok == NULL; i++) {
			assert_int_equal(event_loop_run_once(h->loop, 5), 0);
			read_some(h->fd, &h->raw);
			ok = memmem(h->raw.data != NULL ? h->raw.data : "", h->raw.len, ok_line,
				    strlen(ok_line));
		}
		assert_non_null(ok);
		/* Nothing but the OK line in clear. */
		assert_ptr_equal(ok, h->raw.data);
		used = strlen(ok_line);
		h->compressed = true;
		if (h->raw.len > used)
			zpeer_inflate(&h->peer, h->raw.data + used, h->raw.len - used, &h->in);
	}
	/* The NOOP's answer may have come with the OK: read what is left. */
	ans = imap_wait(h, "a3 ", &closed);
	assert_contains(ans, "a3 OK");
	free(ans);
	buf_reset(&out);
	zpeer_deflate(&h->peer, "a4 NOOP ", 8, Z_NO_FLUSH, &out);
	for (int i = 0; i < 64; i++)
		zpeer_deflate(&h->peer, zeros, 1024 * 1024, Z_NO_FLUSH, &out);
	zpeer_deflate(&h->peer, "\r\n", 2, Z_SYNC_FLUSH, &out);
	assert_true(out.len < 128 * 1024);
	/* The server closes after its BAD: write what it takes. */
	for (size_t off = 0; off < out.len && !closed;) {
		ssize_t n = write(h->fd, out.data + off, out.len - off);
		if (n > 0)
			off += (size_t)n;
		else
			break;
		assert_int_equal(event_loop_run_once(h->loop, 5), 0);
	}
	ans = imap_wait(h, NULL, &closed);
	assert_true(closed);
	assert_contains(ans, "BAD");
	assert_contains(ans, "* BYE");
	free(ans);
	free(zeros);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_through_small_buffers),
		cmocka_unit_test(test_zlib_defaults_hold_more_than_one_buffer),
		cmocka_unit_test(test_partial_write_resumes),
		cmocka_unit_test(test_inflate_beyond_one_read),
		cmocka_unit_test(test_zip_bomb_is_bounded),
		cmocka_unit_test(test_corrupt_stream_closes_with_reason),
		cmocka_unit_test(test_pipelined_input_after_start_is_compressed),
		cmocka_unit_test(test_final_block_ends_input),
		cmocka_unit_test_setup_teardown(test_imap_compress_command, imap_setup,
						imap_teardown),
		cmocka_unit_test_setup_teardown(test_imap_compress_pipelined_and_bomb, imap_setup,
						imap_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
