/* auth.c: the core wrapper around the auth backends.

   Protocol code calls auth_verify(), never a backend: the checks on the
   user name and password lengths and the log line of every attempt live
   here, once for every backend. */
#include "auth.h"
#include "log.h"
#include "storage.h"

#include <stdlib.h>

#define AUTH_USER_MAX_LEN 255
#define AUTH_PASSWORD_MAX_LEN 1024

enum auth_result
auth_verify(const struct auth_ctx *ctx, const char *sid, const char *user,
	    const char *password)
{
	enum auth_result result;
	char *reason = NULL;

	if (user == NULL || password == NULL) {
		log_info(sid, "auth: login failed: no user name or password given");
		return AUTH_FAIL;
	}
	/* The length first: storage_user_is_valid() then only ever sees a
	   bounded string. The log line shows at most 64 octets of a name;
	   log_msg() replaces control characters. */
	if (strnlen(user, AUTH_USER_MAX_LEN + 1) > AUTH_USER_MAX_LEN) {
		log_info(sid, "auth: login failed for user '%.64s...': user name too long", user);
		return AUTH_FAIL;
	}
	if (!storage_user_is_valid(user)) {
		log_info(sid, "auth: login failed for user '%.64s': invalid user name", user);
		return AUTH_FAIL;
	}
	if (strnlen(password, AUTH_PASSWORD_MAX_LEN + 1) > AUTH_PASSWORD_MAX_LEN) {
		log_info(sid, "auth: login failed for user '%s': password too long", user);
		return AUTH_FAIL;
	}
	if (ctx == NULL || ctx->backend == NULL || ctx->backend->verify == NULL ||
	    ctx->auth == NULL) {
		log_error(sid, "auth: login failed for user '%s': no auth backend configured", user);
		return AUTH_TEMPFAIL;
	}

	result = ctx->backend->verify(ctx->auth, user, password, &reason);
	switch (result) {
	case AUTH_OK:
		log_info(sid, "auth: login ok for user '%s' (%s)", user, ctx->backend->name);
		break;
	case AUTH_FAIL:
		log_info(sid, "auth: login failed for user '%s' (%s): %s", user,
			 ctx->backend->name, reason != NULL ? reason : "authentication failed");
		break;
	case AUTH_TEMPFAIL:
		log_warn(sid, "auth: backend %s unavailable for user '%s': %s", ctx->backend->name,
			 user, reason != NULL ? reason : "temporary failure");
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
