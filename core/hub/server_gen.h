/* server_gen.h: what the sessions started under one configuration share
   (the configuration, the storage and auth backends' instances, and the
   mailbox hub), whatever their protocol. The IMAP and SMTP servers each
   hold a reference to the current generation and each session one to the
   generation it started under. */
#ifndef SERVER_GEN_H
#define SERVER_GEN_H

#include "lib.h"
#include "auth.h"
#include "config.h"
#include "storage.h"
#include "tls.h"

/* What sessions started under one configuration share. SIGHUP makes a new
   generation for new sessions; the old one lives while its sessions do. */
struct server_gen {
	unsigned refcount;
	struct config *cfg;
	struct storage_ctx storage;
	struct auth_ctx auth;
	struct hub *hub;
	/* The certificate and key for TLS (config_has_tls), else NULL:
	   read when the generation starts (before the privilege drop for
	   the first one), so a SIGHUP gives new sessions a renewed pair
	   while running sessions keep theirs. */
	struct tls_ctx *tls;
};

/* Makes a generation from cfg (takes ownership of cfg): initialises the
   backends. Returns NULL with *error_r on failure. */
struct watch;
struct server_gen *server_gen_new(struct config *cfg, struct watch *watch, char **error_r);
void server_gen_unref(struct server_gen **gen);

#endif
