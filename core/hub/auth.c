/* auth.c: the core wrapper around the auth backends.

   Protocol code calls auth_verify(), never a backend: the checks on the
   user name and password lengths and the log line of every attempt live
   here, once for every backend. */
#include "auth.h"
#include "event.h"
#include "log.h"
#include "username.h"

#include <stdlib.h>

#define AUTH_USER_MAX_LEN 255
#define AUTH_PASSWORD_MAX_LEN 1024

/* The checks before any backend sees the input. Returns true if the
   attempt may go on, else false with *result_r. */
static bool
auth_precheck(const struct auth_ctx *ctx, const char *sid, const char *remote, const char *user,
	      const char *password, enum auth_result *result_r)
{
	*result_r = AUTH_FAIL;
	if (user == NULL || password == NULL) {
		log_info(sid, "auth: login failed from %s: no user name or password given", remote);
		return false;
	}
	/* The length first: username_is_valid() then only ever sees a
	   bounded string. The log line shows at most 64 octets of a name;
	   log_msg() replaces control characters. */
	if (strnlen(user, AUTH_USER_MAX_LEN + 1) > AUTH_USER_MAX_LEN) {
		log_info(sid, "auth: login failed from %s for user '%.64s...': user name too long",
			 remote, user);
		return false;
	}
	if (!username_is_valid(user)) {
		log_info(sid, "auth: login failed from %s for user '%.64s': invalid user name", remote,
			 user);
		return false;
	}
	if (strnlen(password, AUTH_PASSWORD_MAX_LEN + 1) > AUTH_PASSWORD_MAX_LEN) {
		log_info(sid, "auth: login failed from %s for user '%s': password too long", remote,
			 user);
		return false;
	}
	if (ctx == NULL || ctx->backend == NULL ||
	    (ctx->backend->verify == NULL && ctx->backend->verify_start == NULL) ||
	    ctx->auth == NULL) {
		log_error(sid, "auth: login failed from %s for user '%s': no auth backend configured",
			  remote, user);
		*result_r = AUTH_TEMPFAIL;
		return false;
	}
	return true;
}

/* Logs the outcome once for every backend; frees reason. */
static enum auth_result
auth_log_result(const struct auth_ctx *ctx, const char *sid, const char *remote,
		const char *user, enum auth_result result, char *reason)
{
	switch (result) {
	case AUTH_OK:
		log_info(sid, "auth: login ok from %s for user '%s' (%s)", remote, user,
			 ctx->backend->name);
		break;
	case AUTH_FAIL:
		log_info(sid, "auth: login failed from %s for user '%s' (%s): %s", remote, user,
			 ctx->backend->name, reason != NULL ? reason : "authentication failed");
		break;
	case AUTH_TEMPFAIL:
		log_warn(sid, "auth: backend %s unavailable from %s for user '%s': %s",
			 ctx->backend->name, remote, user,
			 reason != NULL ? reason : "temporary failure");
		break;
	default:
		log_error(sid, "auth: backend %s returned an unknown result %d for user '%s'",
			  ctx->backend->name, (int)result, user);
		result = AUTH_TEMPFAIL;
		break;
	}
	free(reason);
	return result;
}

enum auth_result
auth_verify(const struct auth_ctx *ctx, const char *sid, const char *user,
	    const char *password)
{
	enum auth_result result;
	char *reason = NULL;

	if (!auth_precheck(ctx, sid, "-", user, password, &result))
		return result;
	if (ctx->backend->verify == NULL) {
		log_error(sid, "auth: backend %s can only verify asynchronously",
			  ctx->backend->name);
		return AUTH_TEMPFAIL;
	}
	result = ctx->backend->verify(ctx->auth, user, password, &reason);
	return auth_log_result(ctx, sid, "-", user, result, reason);
}

struct auth_request {
	struct auth_ctx ctx;
	char *sid, *remote, *user;
	auth_callback *cb;
	void *cb_ctx;
	/* A backend request in flight, or the timer that answers a
	   synchronous result on the next pass. */
	void *handle;
	struct event_timer *timer;
	enum auth_result result;
};

static void
auth_request_free(struct auth_request *req)
{
	free(req->sid);
	free(req->remote);
	free(req->user);
	free(req);
}

static void
auth_request_answer(void *context)
{
	struct auth_request *req = context;

	req->timer = NULL;
	req->cb(req->result, req->cb_ctx);
	auth_request_free(req);
}

static void
auth_request_backend_done(enum auth_result result, char *reason, void *context)
{
	struct auth_request *req = context;

	req->handle = NULL;
	result = auth_log_result(&req->ctx, req->sid, req->remote, req->user, result, reason);
	req->cb(result, req->cb_ctx);
	auth_request_free(req);
}

struct auth_request *
auth_verify_start(const struct auth_ctx *ctx, struct event_loop *loop, const char *sid,
		  const char *remote, const char *user, const char *password, auth_callback *cb,
		  void *cb_ctx)
{
	struct auth_request *req = xcalloc(1, sizeof(*req));
	char *reason = NULL;

	req->sid = xstrdup(sid != NULL ? sid : "-");
	req->remote = xstrdup(remote != NULL ? remote : "-");
	req->user = xstrdup(user != NULL ? user : "");
	req->cb = cb;
	req->cb_ctx = cb_ctx;
	if (ctx != NULL)
		req->ctx = *ctx;
	if (!auth_precheck(ctx, sid, req->remote, user, password, &req->result)) {
		req->timer = event_timer_add(loop, 0, auth_request_answer, req);
		return req;
	}
	if (ctx->backend->verify_start != NULL) {
		if (ctx->backend->verify_start(ctx->auth, loop, user, password,
					       auth_request_backend_done, req, &req->handle) == 0)
			return req;
		req->result = auth_log_result(ctx, sid, req->remote, user, AUTH_TEMPFAIL,
					      xstrdup("could not start the check"));
	} else {
		enum auth_result res = ctx->backend->verify(ctx->auth, user, password, &reason);
		req->result = auth_log_result(ctx, sid, req->remote, user, res, reason);
	}
	req->timer = event_timer_add(loop, 0, auth_request_answer, req);
	return req;
}

void
auth_request_cancel(struct auth_request **_req)
{
	struct auth_request *req = *_req;

	if (req == NULL)
		return;
	*_req = NULL;
	event_timer_remove(&req->timer);
	if (req->handle != NULL && req->ctx.backend->verify_cancel != NULL)
		req->ctx.backend->verify_cancel(req->ctx.auth, req->handle);
	auth_request_free(req);
}

int
auth_user_exists(const struct auth_ctx *ctx, const char *sid, const char *user)
{
	char *error = NULL;
	int ret;

	if (user == NULL || strnlen(user, AUTH_USER_MAX_LEN + 1) > AUTH_USER_MAX_LEN ||
	    !username_is_valid(user))
		return 0;
	if (ctx == NULL || ctx->backend == NULL || ctx->auth == NULL) {
		log_error(sid, "auth: cannot look up user '%s': no auth backend configured", user);
		return -1;
	}
	if (ctx->backend->user_exists == NULL)
		return 1;
	ret = ctx->backend->user_exists(ctx->auth, user, &error);
	if (ret < 0) {
		log_warn(sid, "auth: backend %s unavailable looking up user '%s': %s",
			 ctx->backend->name, user, error != NULL ? error : "temporary failure");
		ret = -1;
	} else if (ret > 1) {
		ret = 1;
	}
	free(error);
	return ret;
}

bool
auth_str_equal_ct(const char *a, const char *b)
{
	size_t la, lb;
	volatile unsigned char diff;

	if (a == NULL || b == NULL)
		return false;
	la = strlen(a);
	lb = strlen(b);
	/* Walk all of a whatever the content; the comparison octet from b
	   is chosen by position only, so the time depends on the lengths
	   alone. */
	diff = la != lb;
	for (size_t i = 0; i < la; i++) {
		unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
		diff |= (unsigned char)a[i] ^ cb;
	}
	return diff == 0;
}
