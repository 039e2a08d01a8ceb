/* Tests of the TLS layer (core/io/tls.c) on real connections over
   socketpairs, both ends on one event loop: the handshake and data both
   ways, a 2 MB answer through small socket buffers (the write-retry
   contract), STARTTLS with plaintext pipelined behind it, garbage and a
   peer that vanishes in the handshake, certificate verification, and
   the start-up checks of the certificate files (missing, mismatched,
   expired, expiring soon). The certificates are made here with the
   OpenSSL API. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "connection.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef HAVE_OPENSSL
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static char tmpdir[] = "/tmp/test_tls.XXXXXX";

/* Writes a new P-256 key to dir/name; returns it. */
static EVP_PKEY *
make_key(const char *name)
{
	char path[256];
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	FILE *fp;

	assert_non_null(key);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	return key;
}

/* A self-signed certificate for "localhost" valid from now - 1 day for
   days (negative: expired), written to dir/name. */
static void
make_cert(const char *name, EVP_PKEY *key, long days)
{
	char path[256];
	X509 *x = X509_new();
	X509_NAME *subject;
	X509_EXTENSION *ext;
	FILE *fp;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -2 * 86400L);
	X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L);
	X509_set_pubkey(x, key);
	subject = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
				   -1, -1, 0);
	X509_set_issuer_name(x, subject);
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:localhost");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, x), 1);
	fclose(fp);
	X509_free(x);
}

static char *
tmp_path(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

static int
setup_certs(void **state)
{
	EVP_PKEY *key, *other;

	if (mkdtemp(tmpdir) == NULL)
		return -1;
	key = make_key("key.pem");
	other = make_key("other.pem");
	make_cert("cert.pem", key, 365);
	make_cert("expired.pem", key, -1);
	make_cert("expiring.pem", key, 10);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	return 0;
}

static int
teardown_certs(void **state)
{
	char *cmd = xasprintf("rm -rf %s", tmpdir);
	int ret = system(cmd);

	free(cmd);
	return ret == 0 ? 0 : -1;
}

static struct tls_ctx *
server_ctx(void)
{
	char *cert = tmp_path("cert.pem"), *key = tmp_path("key.pem"), *error = NULL;
	struct tls_server_settings set = { .cert_file = cert, .key_file = key };
	struct tls_ctx *ctx = NULL;

	if (tls_server_ctx_new(&set, &ctx, &error) < 0)
		fail_msg("tls_server_ctx_new: %s", error);
	free(cert);
	free(key);
	return ctx;
}

/* A client context that trusts the self-signed certificate. */
static struct tls_ctx *
client_ctx(bool trust)
{
	char *cert = tmp_path("cert.pem"), *error = NULL;
	struct tls_ctx *ctx = NULL;

	if (tls_client_ctx_new(trust ? cert : NULL, trust, &ctx, &error) < 0)
		fail_msg("tls_client_ctx_new: %s", error);
	free(cert);
	return ctx;
}

/* One end: collects its input, answers "PING" lines with big output,
   and can start TLS on a "STARTTLS" line. */
struct end {
	struct connection *conn;
	struct buf got;
	struct tls_ctx *starttls_ctx; /* server end: STARTTLS answered with this */
	size_t produce, produced;
	bool destroyed, hungup;
	char reason[160];
};

static void
end_input(void *ctx)
{
	struct end *e = ctx;
	size_t len;
	const char *in = connection_input(e->conn, &len);
	const char *lf;

	if (e->starttls_ctx != NULL && (lf = memchr(in, '\n', len)) != NULL) {
		size_t line = (size_t)(lf - in) + 1;
		buf_append(&e->got, in, line);
		connection_input_consume(e->conn, line);
		buf_append_str(connection_outbuf(e->conn), "OK go\r\n");
		connection_start_layer(e->conn, tls_layer_new_server(e->starttls_ctx));
		e->starttls_ctx = NULL;
		connection_flush(e->conn);
		return;
	}
	buf_append(&e->got, in, len);
	connection_input_consume(e->conn, len);
	connection_flush(e->conn);
}

static void
end_output(void *ctx)
{
	struct end *e = ctx;
	struct buf *out;
	size_t n;

	if (e->produced >= e->produce)
		return;
	out = connection_outbuf(e->conn);
	n = e->produce - e->produced < 65536 ? e->produce - e->produced : 65536;
	for (size_t i = 0; i < n; i++)
		buf_append_c(out, (char)('a' + (e->produced + i) % 26));
	e->produced += n;
	connection_flush(e->conn);
}

static void
end_hangup(void *ctx, const char *reason)
{
	struct end *e = ctx;

	e->hungup = true;
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

/* Runs the loop until done(ctx) or about 5 s of passes. */
static void
run_until(struct event_loop *loop, bool (*done)(void *), void *ctx)
{
	for (int i = 0; i < 5000 && !done(ctx); i++)
		assert_true(event_loop_run_once(loop, 1) >= 0);
}

struct pair_state {
	struct end *a, *b;
	size_t want_a, want_b;
};

static bool
both_got(void *ctx)
{
	struct pair_state *p = ctx;

	return p->a->got.len >= p->want_a && p->b->got.len >= p->want_b;
}

static bool
b_gone(void *ctx)
{
	struct pair_state *p = ctx;

	return p->b->destroyed;
}

static void
end_free(struct end *e)
{
	connection_free(&e->conn);
	buf_free(&e->got);
}

/* Handshake, then data both ways; 2 MB from the server through 4 KB
   socket buffers, in order. */
static void
test_tls_handshake_and_bulk(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct tls_ctx *sctx = server_ctx(), *cctx = client_ctx(true);
	struct end srv = { 0 }, cli = { 0 };
	struct pair_state p = { .a = &srv, .b = &cli };
	int sv[2];

	socket_pair(sv, 4096);
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	cli.conn = connection_new(loop, sv[1], NULL, &end_cb, &cli);
	connection_push_layer(srv.conn, tls_layer_new_server(sctx));
	connection_push_layer(cli.conn, tls_layer_new_client(cctx, "localhost"));
	/* Both queue before the handshake: sent once it is done. */
	buf_append_str(connection_outbuf(cli.conn), "hello server\r\n");
	srv.produce = 2 * 1024 * 1024;
	end_output(&srv);
	p.want_a = 14;
	p.want_b = srv.produce;
	run_until(loop, both_got, &p);
	assert_int_equal(srv.got.len, 14);
	assert_memory_equal(srv.got.data, "hello server\r\n", 14);
	assert_int_equal(cli.got.len, srv.produce);
	for (size_t i = 0; i < cli.got.len; i++) {
		if (cli.got.data[i] != (char)('a' + i % 26))
			fail_msg("octet %zu differs", i);
	}
	assert_true(tls_layer_handshake_done(connection_top_layer(srv.conn)));
	assert_non_null(strstr(tls_layer_describe(connection_top_layer(cli.conn)), "TLSv1."));
	end_free(&srv);
	end_free(&cli);
	tls_ctx_unref(&sctx);
	tls_ctx_unref(&cctx);
	event_loop_free(&loop);
}

/* STARTTLS: the line pipelined in clear behind the command is dropped,
   and what comes inside TLS afterwards is read. */
static void
test_tls_starttls_drops_pipelined_plaintext(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct tls_ctx *sctx = server_ctx(), *cctx = client_ctx(true);
	struct end srv = { 0 }, cli = { 0 };
	struct pair_state p = { .a = &srv, .b = &cli };
	const char *inject = "STARTTLS\r\nINJECTED COMMAND\r\n";
	int sv[2];

	socket_pair(sv, 0);
	srv.starttls_ctx = sctx;
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	/* The client writes the command and the injection in one piece. */
	assert_int_equal(write(sv[1], inject, strlen(inject)), (ssize_t)strlen(inject));
	cli.conn = connection_new(loop, sv[1], NULL, &end_cb, &cli);
	p.want_a = 10;
	p.want_b = 7;
	run_until(loop, both_got, &p);
	assert_int_equal(cli.got.len, 7);
	assert_memory_equal(cli.got.data, "OK go\r\n", 7);
	/* The answer came in clear; now the client starts TLS. */
	connection_push_layer(cli.conn, tls_layer_new_client(cctx, "localhost"));
	buf_append_str(connection_outbuf(cli.conn), "INSIDE\r\n");
	connection_flush(cli.conn);
	p.want_a = 10 + 8;
	run_until(loop, both_got, &p);
	assert_int_equal(srv.got.len, 18);
	assert_memory_equal(srv.got.data, "STARTTLS\r\nINSIDE\r\n", 18);
	assert_true(tls_layer_handshake_done(connection_top_layer(srv.conn)));
	end_free(&srv);
	end_free(&cli);
	tls_ctx_unref(&sctx);
	tls_ctx_unref(&cctx);
	event_loop_free(&loop);
}

/* Garbage (an HTTP request) instead of a ClientHello: the server end is
   closed with a TLS reason, nothing is handed to the owner. */
static void
test_tls_garbage_instead_of_hello(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct tls_ctx *sctx = server_ctx();
	struct end srv = { 0 };
	struct pair_state p = { .b = &srv };
	const char *http = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	char sink[4096];
	int sv[2];

	socket_pair(sv, 0);
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	connection_push_layer(srv.conn, tls_layer_new_server(sctx));
	buf_append_str(connection_outbuf(srv.conn), "* OK greeting\r\n");
	assert_int_equal(write(sv[1], http, strlen(http)), (ssize_t)strlen(http));
	run_until(loop, b_gone, &p);
	assert_true(srv.destroyed);
	assert_int_equal(srv.got.len, 0);
	assert_true(strncmp(srv.reason, "tls: handshake failed: ", 23) == 0);
	/* The greeting never went out in clear. */
	ssize_t n = read(sv[1], sink, sizeof(sink));
	assert_true(n <= 0 || memmem(sink, (size_t)n, "greeting", 8) == NULL);
	close(sv[1]);
	buf_free(&srv.got);
	tls_ctx_unref(&sctx);
	event_loop_free(&loop);
}

/* A client that sends part of a ClientHello and closes: the server end
   ends as a closed connection. */
static void
test_tls_peer_closes_in_handshake(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct tls_ctx *sctx = server_ctx();
	struct end srv = { 0 };
	struct pair_state p = { .b = &srv };
	/* The start of a TLS 1.2 ClientHello record. */
	const unsigned char hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03 };
	int sv[2];

	socket_pair(sv, 0);
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	connection_push_layer(srv.conn, tls_layer_new_server(sctx));
	assert_int_equal(write(sv[1], hello, sizeof(hello)), (ssize_t)sizeof(hello));
	for (int i = 0; i < 20; i++)
		(void)event_loop_run_once(loop, 1);
	assert_false(srv.destroyed);
	close(sv[1]);
	run_until(loop, b_gone, &p);
	assert_true(srv.destroyed);
	assert_int_equal(srv.got.len, 0);
	buf_free(&srv.got);
	tls_ctx_unref(&sctx);
	event_loop_free(&loop);
}

/* The implicit TLS greeting is queued and the client closes before its
   ClientHello: the write that drives the handshake meets the end of the
   stream and the connection ends (it used to spin). */
static void
test_tls_peer_closes_before_hello_with_output_queued(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct tls_ctx *sctx = server_ctx();
	struct end srv = { 0 };
	struct pair_state p = { .b = &srv };
	int sv[2];

	socket_pair(sv, 0);
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	connection_push_layer(srv.conn, tls_layer_new_server(sctx));
	close(sv[1]);
	buf_append_str(connection_outbuf(srv.conn), "* OK greeting\r\n");
	connection_flush(srv.conn);
	run_until(loop, b_gone, &p);
	assert_true(srv.destroyed);
	buf_free(&srv.got);
	tls_ctx_unref(&sctx);
	event_loop_free(&loop);
}

/* A client that does not trust the certificate fails its handshake
   with the reason, and so does the server end. */
static void
test_tls_client_verify_fails(void **state)
{
	struct event_loop *loop = event_loop_new();
	struct tls_ctx *sctx = server_ctx(), *cctx = NULL;
	struct end srv = { 0 }, cli = { 0 };
	struct pair_state p = { .a = &srv, .b = &cli };
	char *error = NULL, *other = tmp_path("expiring.pem");
	int sv[2];

	/* Trusts another self-signed certificate only. */
	assert_int_equal(tls_client_ctx_new(other, true, &cctx, &error), 0);
	socket_pair(sv, 0);
	srv.conn = connection_new(loop, sv[0], NULL, &end_cb, &srv);
	cli.conn = connection_new(loop, sv[1], NULL, &end_cb, &cli);
	connection_push_layer(srv.conn, tls_layer_new_server(sctx));
	connection_push_layer(cli.conn, tls_layer_new_client(cctx, "localhost"));
	buf_append_str(connection_outbuf(cli.conn), "secret\r\n");
	run_until(loop, b_gone, &p);
	assert_true(cli.destroyed);
	assert_non_null(strstr(cli.reason, "certificate verify failed"));
	assert_int_equal(srv.got.len, 0);
	end_free(&srv);
	buf_free(&cli.got);
	free(other);
	tls_ctx_unref(&sctx);
	tls_ctx_unref(&cctx);
	event_loop_free(&loop);
}

/* The start-up checks name the file and the problem. */
static void
test_tls_server_files(void **state)
{
	char *cert = tmp_path("cert.pem"), *key = tmp_path("key.pem"),
	     *other = tmp_path("other.pem"), *expired = tmp_path("expired.pem"),
	     *expiring = tmp_path("expiring.pem"), *missing = tmp_path("missing.pem");
	struct tls_server_settings set = { .cert_file = cert, .key_file = key };
	struct tls_ctx *ctx = NULL;
	char *error = NULL, *warning = NULL;

	assert_int_equal(tls_server_check(&set, &warning, &error), 0);
	assert_null(warning);

	set.key_file = missing;
	assert_int_equal(tls_server_ctx_new(&set, &ctx, &error), -1);
	assert_null(ctx);
	assert_non_null(strstr(error, "missing.pem: cannot read: No such file"));
	free(error);

	set.key_file = other;
	assert_int_equal(tls_server_ctx_new(&set, &ctx, &error), -1);
	assert_non_null(strstr(error, "other.pem: the key does not match the certificate"));
	free(error);

	set.key_file = cert; /* a certificate is no key */
	assert_int_equal(tls_server_ctx_new(&set, &ctx, &error), -1);
	assert_non_null(strstr(error, "cert.pem: not a PEM private key"));
	free(error);

	set.key_file = key;
	set.cert_file = key; /* a key is no certificate */
	assert_int_equal(tls_server_ctx_new(&set, &ctx, &error), -1);
	assert_non_null(strstr(error, "key.pem: not a PEM certificate chain"));
	free(error);

	set.cert_file = expired;
	assert_int_equal(tls_server_ctx_new(&set, &ctx, &error), -1);
	assert_non_null(strstr(error, "expired.pem: the certificate expired on "));
	free(error);

	set.cert_file = expiring;
	assert_int_equal(tls_server_check(&set, &warning, &error), 0);
	assert_non_null(warning);
	assert_non_null(strstr(warning, "expiring.pem: the certificate expires on "));
	free(warning);

	free(cert);
	free(key);
	free(other);
	free(expired);
	free(expiring);
	free(missing);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_handshake_and_bulk),
		cmocka_unit_test(test_tls_starttls_drops_pipelined_plaintext),
		cmocka_unit_test(test_tls_garbage_instead_of_hello),
		cmocka_unit_test(test_tls_peer_closes_in_handshake),
		cmocka_unit_test(test_tls_peer_closes_before_hello_with_output_queued),
		cmocka_unit_test(test_tls_client_verify_fails),
		cmocka_unit_test(test_tls_server_files),
	};

	return cmocka_run_group_tests(tests, setup_certs, teardown_certs);
}

#else /* !HAVE_OPENSSL */

static void
test_tls_not_compiled_in(void **state)
{
	struct tls_server_settings set = { .cert_file = "c", .key_file = "k" };
	struct tls_ctx *ctx = NULL;
	char *error = NULL;

	assert_false(tls_compiled_in());
	assert_int_equal(tls_server_ctx_new(&set, &ctx, &error), -1);
	assert_non_null(strstr(error, "not compiled in"));
	free(error);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_not_compiled_in),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
