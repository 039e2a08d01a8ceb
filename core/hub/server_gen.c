/* server_gen.c: a generation of backends and hub (see server_gen.h). */
#include "server_gen.h"
#include "mailbox.h"

#include <stdlib.h>

struct server_gen *
server_gen_new(struct config *cfg, struct watch *watch, char **error_r)
{
	struct server_gen *gen = xcalloc(1, sizeof(*gen));
	char *error = NULL;

	gen->refcount = 1;
	gen->cfg = cfg;
	if (config_has_tls(cfg) && tls_server_ctx_new(&cfg->tls, &gen->tls, &error) < 0) {
		*error_r = xasprintf("tls: %s", error);
		free(error);
		config_free(&gen->cfg);
		free(gen);
		return NULL;
	}
	gen->storage.backend = cfg->storage_backend;
	gen->auth.backend = cfg->auth_backend;
	if (gen->storage.backend->init(&cfg->storage, &gen->storage.st, &error) < 0) {
		*error_r = xasprintf("storage %s: %s", gen->storage.backend->name,
				     error != NULL ? error : "init failed");
		free(error);
		tls_ctx_unref(&gen->tls);
		config_free(&gen->cfg);
		free(gen);
		return NULL;
	}
	if (gen->auth.backend->init(&cfg->auth, &gen->auth.auth, &error) < 0) {
		*error_r = xasprintf("auth %s: %s", gen->auth.backend->name,
				     error != NULL ? error : "init failed");
		free(error);
		gen->storage.backend->deinit(&gen->storage.st);
		tls_ctx_unref(&gen->tls);
		config_free(&gen->cfg);
		free(gen);
		return NULL;
	}
	gen->hub = hub_new(&gen->storage, watch);
	return gen;
}

void
server_gen_unref(struct server_gen **_gen)
{
	struct server_gen *gen = *_gen;

	if (gen == NULL)
		return;
	*_gen = NULL;
	if (--gen->refcount > 0)
		return;
	hub_free(&gen->hub);
	gen->auth.backend->deinit(&gen->auth.auth);
	gen->storage.backend->deinit(&gen->storage.st);
	tls_ctx_unref(&gen->tls);
	config_free(&gen->cfg);
	free(gen);
}
