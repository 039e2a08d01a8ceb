/* tls.c: TLS as a connection layer, on OpenSSL 3 (see tls.h).

   The SSL object talks to the layer below through a BIO of our own
   (conn_bio_*), with no buffer of its own: a record goes straight to
   the socket layer, and when the socket would block the BIO says
   "retry", SSL_read/SSL_write answer WANT_READ/WANT_WRITE and the layer
   returns EAGAIN. The socket layer has noted which of recv() or send()
   blocked, so the connection waits for the right event (conn_layer.h).

   Writes follow the layer contract ("EAGAIN: nothing taken"): OpenSSL
   keeps a record it could not finish writing and wants the same octets
   again, which is what the connection offers next time (its buffer
   still holds them). SSL_MODE_ENABLE_PARTIAL_WRITE makes SSL_write
   return after each record, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets
   the retry come from a buffer that has moved, and
   SSL_MODE_RELEASE_BUFFERS gives the 16 KB record buffers back while a
   connection is idle (an idle TLS session then costs a few KB). */
#include "tls.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* A certificate that expires sooner than this gets a warning. */
#define TLS_EXPIRY_WARN_DAYS 30

#ifdef HAVE_OPENSSL

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <limits.h>

struct tls_ctx {
	unsigned refcount;
	SSL_CTX *ssl_ctx;
};

struct tls_layer {
	struct conn_layer layer;
	struct tls_ctx *ctx;
	SSL *ssl;
	/* errno of the last failed read or write below (not EAGAIN). */
	int below_errno;
	bool failed;
	char *error;
	char describe[96];
};

static BIO_METHOD *conn_bio_method;

static int
conn_bio_write(BIO *bio, const char *data, int len)
{
	struct tls_layer *t = BIO_get_data(bio);
	ssize_t ret;

	BIO_clear_retry_flags(bio);
	ret = conn_layer_write(t->layer.below, data, (size_t)len);
	if (ret < 0 && errno == EAGAIN) {
		BIO_set_retry_write(bio);
		return -1;
	}
	if (ret < 0)
		t->below_errno = errno;
	return (int)ret;
}

static int
conn_bio_read(BIO *bio, char *data, int len)
{
	struct tls_layer *t = BIO_get_data(bio);
	ssize_t ret;

	BIO_clear_retry_flags(bio);
	ret = conn_layer_read(t->layer.below, data, (size_t)len);
	if (ret < 0 && errno == EAGAIN) {
		BIO_set_retry_read(bio);
		return -1;
	}
	if (ret < 0)
		t->below_errno = errno;
	return (int)ret;
}

static long
conn_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	/* Nothing is buffered here: a flush is done at once. */
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
conn_bio_create(BIO *bio)
{
	BIO_set_init(bio, 1);
	return 1;
}

static BIO_METHOD *
conn_bio_get_method(void)
{
	if (conn_bio_method != NULL)
		return conn_bio_method;
	conn_bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "conn_layer");
	if (conn_bio_method == NULL)
		fatal("BIO_meth_new: out of memory");
	BIO_meth_set_write(conn_bio_method, conn_bio_write);
	BIO_meth_set_read(conn_bio_method, conn_bio_read);
	BIO_meth_set_ctrl(conn_bio_method, conn_bio_ctrl);
	BIO_meth_set_create(conn_bio_method, conn_bio_create);
	return conn_bio_method;
}

bool
tls_compiled_in(void)
{
	return true;
}

/* The reason of OpenSSL's oldest queued error, or fallback; clears the
   queue. */
static const char *
tls_err_reason(const char *fallback)
{
	unsigned long err = ERR_get_error();
	const char *reason = err != 0 ? ERR_reason_error_string(err) : NULL;

	ERR_clear_error();
	return reason != NULL ? reason : fallback;
}

/* Common settings of both sides. */
static struct tls_ctx *
tls_ctx_alloc(const SSL_METHOD *method, enum tls_min_protocol min)
{
	struct tls_ctx *ctx;
	SSL_CTX *ssl_ctx = SSL_CTX_new(method);

	if (ssl_ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ssl_ctx,
				      min == TLS_MIN_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
	/* No renegotiation (a client could make the server redo the costly
	   half of a handshake at will), no compression (CRIME); a peer that
	   closes without close_notify is an end of stream, as for a plain
	   socket: IMAP and SMTP frame their own data. */
	SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					     SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
					  SSL_MODE_RELEASE_BUFFERS);
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->refcount = 1;
	ctx->ssl_ctx = ssl_ctx;
	return ctx;
}

/* Fails with "path: cannot read: why" when path cannot be opened. */
static int
tls_check_readable(const char *path, char **error_r)
{
	FILE *fp = fopen(path, "re");

	if (fp == NULL) {
		*error_r = xasprintf("%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	fclose(fp);
	return 0;
}

/* "2026-01-02" for an ASN.1 time. */
static void
tls_format_date(const ASN1_TIME *when, char *str, size_t size)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(when, &tm) != 1 || strftime(str, size, "%Y-%m-%d", &tm) == 0)
		snprintf(str, size, "(unreadable date)");
}

/* A server never prompts for a passphrase (OpenSSL's default would
   read the terminal): an encrypted key is refused. */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *context)
{
	return -1;
}

/* The private key of a PEM file, or NULL. */
static EVP_PKEY *
tls_read_key(const char *path)
{
	FILE *fp = fopen(path, "re");
	EVP_PKEY *key;

	if (fp == NULL)
		return NULL;
	key = PEM_read_PrivateKey(fp, NULL, tls_no_passphrase, NULL);
	fclose(fp);
	return key;
}

int
tls_server_ctx_new(const struct tls_server_settings *set, struct tls_ctx **ctx_r,
		   char **error_r)
{
	struct tls_ctx *ctx;
	EVP_PKEY *key;
	X509 *cert;
	char date[32];
	bool matched;

	*ctx_r = NULL;
	if (tls_check_readable(set->cert_file, error_r) < 0 ||
	    tls_check_readable(set->key_file, error_r) < 0 ||
	    (set->ca_file != NULL && tls_check_readable(set->ca_file, error_r) < 0))
		return -1;
	ctx = tls_ctx_alloc(TLS_server_method(), set->min_protocol);
	if (ctx == NULL) {
		*error_r = xasprintf("cannot create a TLS context: %s",
				     tls_err_reason("out of memory"));
		return -1;
	}
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, set->cert_file) != 1) {
		*error_r = xasprintf("%s: not a PEM certificate chain (%s)", set->cert_file,
				     tls_err_reason("unreadable"));
		goto fail;
	}
	key = tls_read_key(set->key_file);
	if (key == NULL) {
		*error_r = xasprintf("%s: not a PEM private key (%s)", set->key_file,
				     tls_err_reason("unreadable"));
		goto fail;
	}
	matched = SSL_CTX_use_PrivateKey(ctx->ssl_ctx, key) == 1 &&
		  SSL_CTX_check_private_key(ctx->ssl_ctx) == 1;
	EVP_PKEY_free(key);
	if (!matched) {
		ERR_clear_error();
		*error_r = xasprintf("%s: the key does not match the certificate in %s",
				     set->key_file, set->cert_file);
		goto fail;
	}
	/* More chain certificates: the chain is built from them. */
	if (set->ca_file != NULL && SSL_CTX_load_verify_file(ctx->ssl_ctx, set->ca_file) != 1) {
		*error_r = xasprintf("%s: not a PEM certificate file (%s)", set->ca_file,
				     tls_err_reason("unreadable"));
		goto fail;
	}
	cert = SSL_CTX_get0_certificate(ctx->ssl_ctx);
	if (cert != NULL && X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
		tls_format_date(X509_get0_notAfter(cert), date, sizeof(date));
		*error_r = xasprintf("%s: the certificate expired on %s", set->cert_file, date);
		goto fail;
	}
	*ctx_r = ctx;
	return 0;
fail:
	tls_ctx_unref(&ctx);
	return -1;
}

int
tls_server_check(const struct tls_server_settings *set, char **warning_r, char **error_r)
{
	struct tls_ctx *ctx;
	X509 *cert;
	time_t soon = time(NULL) + (time_t)TLS_EXPIRY_WARN_DAYS * 86400;
	char date[32];

	*warning_r = NULL;
	if (tls_server_ctx_new(set, &ctx, error_r) < 0)
		return -1;
	cert = SSL_CTX_get0_certificate(ctx->ssl_ctx);
	if (cert != NULL && X509_cmp_time(X509_get0_notAfter(cert), &soon) < 0) {
		tls_format_date(X509_get0_notAfter(cert), date, sizeof(date));
		*warning_r = xasprintf("%s: the certificate expires on %s (within %d days)",
				       set->cert_file, date, TLS_EXPIRY_WARN_DAYS);
	} else if (cert != NULL && X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
		tls_format_date(X509_get0_notBefore(cert), date, sizeof(date));
		*warning_r = xasprintf("%s: the certificate is not valid before %s",
				       set->cert_file, date);
	}
	tls_ctx_unref(&ctx);
	return 0;
}

int
tls_client_ctx_new(const char *ca_file, bool verify, struct tls_ctx **ctx_r, char **error_r)
{
	struct tls_ctx *ctx;

	*ctx_r = NULL;
	if (ca_file != NULL && tls_check_readable(ca_file, error_r) < 0)
		return -1;
	ctx = tls_ctx_alloc(TLS_client_method(), TLS_MIN_1_2);
	if (ctx == NULL) {
		*error_r = xasprintf("cannot create a TLS context: %s",
				     tls_err_reason("out of memory"));
		return -1;
	}
	if (verify) {
		int ok = ca_file != NULL ? SSL_CTX_load_verify_file(ctx->ssl_ctx, ca_file) :
					   SSL_CTX_set_default_verify_paths(ctx->ssl_ctx);
		if (ok != 1) {
			*error_r = xasprintf("%s: cannot load the CA certificates (%s)",
					     ca_file != NULL ? ca_file : "system CA store",
					     tls_err_reason("unreadable"));
			tls_ctx_unref(&ctx);
			return -1;
		}
		SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_NONE, NULL);
	}
	*ctx_r = ctx;
	return 0;
}

void
tls_ctx_ref(struct tls_ctx *ctx)
{
	ctx->refcount++;
}

void
tls_ctx_unref(struct tls_ctx **_ctx)
{
	struct tls_ctx *ctx = *_ctx;

	if (ctx == NULL)
		return;
	*_ctx = NULL;
	if (--ctx->refcount > 0)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
}

/* The layer. */

static void
tls_set_error(struct tls_layer *t, const char *what)
{
	const char *prefix = SSL_is_init_finished(t->ssl) ? "" : "handshake failed: ";
	long verify = SSL_get_verify_result(t->ssl);

	free(t->error);
	if (verify != X509_V_OK && !SSL_is_server(t->ssl)) {
		ERR_clear_error();
		t->error = xasprintf("%scertificate verify failed: %s", prefix,
				     X509_verify_cert_error_string(verify));
	} else {
		t->error = xasprintf("%s%s", prefix, tls_err_reason(what));
	}
}

/* The layer's answer to an SSL_read/SSL_write that returned ret <= 0. */
static ssize_t
tls_result(struct tls_layer *t, int ret)
{
	int err = SSL_get_error(t->ssl, ret);

	switch (err) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (t->below_errno != 0) {
			t->failed = true;
			errno = t->below_errno;
			ERR_clear_error();
			return -1;
		}
		if (ERR_peek_error() == 0) {
			/* The peer closed. */
			return 0;
		}
		break;
	default:
		break;
	}
	t->failed = true;
	tls_set_error(t, "protocol error");
	errno = EPROTO;
	return -1;
}

static ssize_t
tls_read(struct conn_layer *layer, void *data, size_t size)
{
	struct tls_layer *t = (struct tls_layer *)layer;
	int ret;

	if (t->failed) {
		errno = EPROTO;
		return -1;
	}
	t->below_errno = 0;
	ERR_clear_error();
	ret = SSL_read(t->ssl, data, size > INT_MAX ? INT_MAX : (int)size);
	if (ret > 0)
		return ret;
	return tls_result(t, ret);
}

static ssize_t
tls_write(struct conn_layer *layer, const void *data, size_t size)
{
	struct tls_layer *t = (struct tls_layer *)layer;
	int ret;

	if (t->failed) {
		errno = EPROTO;
		return -1;
	}
	t->below_errno = 0;
	ERR_clear_error();
	ret = SSL_write(t->ssl, data, size > INT_MAX ? INT_MAX : (int)size);
	if (ret > 0)
		return ret;
	if (SSL_get_error(t->ssl, ret) == SSL_ERROR_ZERO_RETURN) {
		/* The peer sent close_notify: nobody reads what we write. */
		t->failed = true;
		errno = EPIPE;
		return -1;
	}
	if (tls_result(t, ret) == 0) {
		/* The peer closed (during the handshake that a write drives,
		   e.g. before the implicit-TLS greeting): a write never
		   returns 0, or a writer loops on it. */
		t->failed = true;
		errno = EPIPE;
	}
	return -1;
}

static bool
tls_in_pending(const struct conn_layer *layer)
{
	const struct tls_layer *t = (const struct tls_layer *)layer;

	return !t->failed && SSL_pending(t->ssl) > 0;
}

static void
tls_free(struct conn_layer *layer)
{
	struct tls_layer *t = (struct tls_layer *)layer;

	/* A close_notify, best effort: one try, never waited for. */
	if (!t->failed && SSL_is_init_finished(t->ssl)) {
		ERR_clear_error();
		(void)SSL_shutdown(t->ssl);
	}
	ERR_clear_error();
	SSL_free(t->ssl);
	tls_ctx_unref(&t->ctx);
	free(t->error);
	free(t);
}

static const struct conn_layer_vfuncs tls_vfuncs = {
	.name = "tls",
	.read = tls_read,
	.write = tls_write,
	.in_pending = tls_in_pending,
	.error = tls_layer_error,
	.free = tls_free,
};

static struct tls_layer *
tls_layer_alloc(struct tls_ctx *ctx)
{
	struct tls_layer *t = xcalloc(1, sizeof(*t));
	BIO *bio;

	t->layer.v = &tls_vfuncs;
	t->ssl = SSL_new(ctx->ssl_ctx);
	bio = BIO_new(conn_bio_get_method());
	if (t->ssl == NULL || bio == NULL)
		fatal("TLS: out of memory");
	BIO_set_data(bio, t);
	SSL_set_bio(t->ssl, bio, bio);
	tls_ctx_ref(ctx);
	t->ctx = ctx;
	return t;
}

struct conn_layer *
tls_layer_new_server(struct tls_ctx *ctx)
{
	struct tls_layer *t = tls_layer_alloc(ctx);

	SSL_set_accept_state(t->ssl);
	return &t->layer;
}

struct conn_layer *
tls_layer_new_client(struct tls_ctx *ctx, const char *host)
{
	struct tls_layer *t = tls_layer_alloc(ctx);
	unsigned char addr[16];
	bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;

	/* SNI names a host, never an address (RFC 6066 3); the check of
	   the certificate takes either. */
	if (!is_ip)
		SSL_set_tlsext_host_name(t->ssl, host);
	if (is_ip)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host);
	else
		SSL_set1_host(t->ssl, host);
	SSL_set_connect_state(t->ssl);
	return &t->layer;
}

bool
tls_layer_is_tls(const struct conn_layer *layer)
{
	return layer != NULL && layer->v == &tls_vfuncs;
}

bool
tls_layer_handshake_done(const struct conn_layer *layer)
{
	const struct tls_layer *t = (const struct tls_layer *)layer;

	return tls_layer_is_tls(layer) && SSL_is_init_finished(t->ssl);
}

const char *
tls_layer_describe(const struct conn_layer *layer)
{
	struct tls_layer *t = (struct tls_layer *)layer;

	if (!tls_layer_handshake_done(layer))
		return "";
	if (t->describe[0] == '\0')
		snprintf(t->describe, sizeof(t->describe), "%s %s", SSL_get_version(t->ssl),
			 SSL_get_cipher_name(t->ssl));
	return t->describe;
}

const char *
tls_layer_error(const struct conn_layer *layer)
{
	const struct tls_layer *t = (const struct tls_layer *)layer;

	return tls_layer_is_tls(layer) ? t->error : NULL;
}

#else /* !HAVE_OPENSSL */

#define TLS_MISSING "TLS support was not compiled in (OpenSSL headers were missing at build time)"

bool
tls_compiled_in(void)
{
	return false;
}

int
tls_server_ctx_new(const struct tls_server_settings *set, struct tls_ctx **ctx_r,
		   char **error_r)
{
	*ctx_r = NULL;
	*error_r = xstrdup(TLS_MISSING);
	return -1;
}

int
tls_server_check(const struct tls_server_settings *set, char **warning_r, char **error_r)
{
	*warning_r = NULL;
	*error_r = xstrdup(TLS_MISSING);
	return -1;
}

int
tls_client_ctx_new(const char *ca_file, bool verify, struct tls_ctx **ctx_r, char **error_r)
{
	*ctx_r = NULL;
	*error_r = xstrdup(TLS_MISSING);
	return -1;
}

void
tls_ctx_ref(struct tls_ctx *ctx)
{
}

void
tls_ctx_unref(struct tls_ctx **ctx)
{
	*ctx = NULL;
}

struct conn_layer *
tls_layer_new_server(struct tls_ctx *ctx)
{
	fatal("tls_layer_new_server: " TLS_MISSING);
}

struct conn_layer *
tls_layer_new_client(struct tls_ctx *ctx, const char *host)
{
	fatal("tls_layer_new_client: " TLS_MISSING);
}

bool
tls_layer_is_tls(const struct conn_layer *layer)
{
	return false;
}

bool
tls_layer_handshake_done(const struct conn_layer *layer)
{
	return false;
}

const char *
tls_layer_describe(const struct conn_layer *layer)
{
	return "";
}

const char *
tls_layer_error(const struct conn_layer *layer)
{
	return NULL;
}

#endif
