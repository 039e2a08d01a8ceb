/* tls.h: TLS (OpenSSL 3) as a connection layer, for the servers'
   listeners and for the mailclient.

   A struct tls_ctx holds one configured OpenSSL context: for a server the
   certificate chain and key read from files, for a client the CAs it
   trusts. It is reference counted: every layer made from it holds a
   reference, so a SIGHUP that loads a new certificate gives new sessions
   the new pair while running ones keep theirs.

   A TLS layer (tls_layer_new_server / _client) is a struct conn_layer
   (conn_layer.h) pushed on a connection's socket layer, or on any layer
   whose read/write report EAGAIN as non-blocking sockets do. The
   handshake runs inside the first reads and writes; a layer never
   blocks, never touches the fd and never calls the event loop. A read
   or write that fails for a TLS reason returns -1 with errno EPROTO;
   tls_layer_error() then says why ("handshake failed: wrong version
   number", "certificate verify failed: ...").

   Protocols: TLS 1.2 is the floor (TLS 1.3 may be asked for), ciphers
   are the library's secure defaults; renegotiation is refused and
   compression is off (CRIME). Without OpenSSL at build time every
   constructor fails with "TLS support was not compiled in". */
#ifndef TLS_H
#define TLS_H

#include "lib.h"
#include "conn_layer.h"

struct tls_ctx;

enum tls_min_protocol {
	TLS_MIN_1_2 = 0,
	TLS_MIN_1_3,
};

struct tls_server_settings {
	const char *cert_file;  /* PEM: the certificate, then its chain */
	const char *key_file;   /* PEM: the private key */
	const char *ca_file;    /* PEM: more chain certificates, or NULL */
	enum tls_min_protocol min_protocol;
};

/* True if TLS support was compiled in. */
bool tls_compiled_in(void);

/* Reads the certificate chain and the key and checks that they match.
   Errors name the file: "etc/tls/key.pem: cannot read: Permission
   denied", "etc/tls/cert.pem: the key in etc/tls/key.pem does not match
   this certificate", "...: the certificate expired on 2026-01-02". */
int tls_server_ctx_new(const struct tls_server_settings *set, struct tls_ctx **ctx_r,
		       char **error_r);

/* What "imapserver -t" says of the files beyond tls_server_ctx_new():
   a warning (malloc'ed) when the certificate expires within 30 days,
   else NULL. Returns -1 with *error_r when the files are not usable. */
int tls_server_check(const struct tls_server_settings *set, char **warning_r, char **error_r);

/* A client context. ca_file NULL: the system's CAs. verify false: the
   peer's certificate is not checked (the user asked for it). */
int tls_client_ctx_new(const char *ca_file, bool verify, struct tls_ctx **ctx_r,
		       char **error_r);

void tls_ctx_ref(struct tls_ctx *ctx);
void tls_ctx_unref(struct tls_ctx **ctx);

/* A layer that answers a client's handshake. */
struct conn_layer *tls_layer_new_server(struct tls_ctx *ctx);
/* A layer that starts a handshake with host (sent as SNI; the peer's
   certificate must name it when the context verifies). */
struct conn_layer *tls_layer_new_client(struct tls_ctx *ctx, const char *host);

/* True for a layer made here (a connection's top layer may be tested). */
bool tls_layer_is_tls(const struct conn_layer *layer);
/* True once the handshake completed. */
bool tls_layer_handshake_done(const struct conn_layer *layer);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once the handshake completed, else "". */
const char *tls_layer_describe(const struct conn_layer *layer);
/* Why the last read or write failed with EPROTO, or NULL. */
const char *tls_layer_error(const struct conn_layer *layer);

#endif
