/* auth.h: the auth backend contract.

   An auth backend is one .c file in auth/ exporting one const struct
   auth_backend; the registry lists them and the config names one. The
   protocol code calls auth_verify() (the core wrapper), never a backend. */
#ifndef AUTH_H
#define AUTH_H

#include "lib.h"

enum auth_result {
	AUTH_OK = 0,
	AUTH_FAIL,          /* wrong password or unknown user: NO [AUTHENTICATIONFAILED] */
	AUTH_TEMPFAIL,      /* backend unavailable: NO [UNAVAILABLE] */
};

struct auth_settings {
	const char *file;       /* passwd-file: absolute path of the users file */
	const char *service;    /* pam: the PAM service name */
	unsigned min_uid;       /* pam: local accounts below this uid are refused */
};

struct auth;                /* a backend instance, from init() */
struct event_loop;

/* How an asynchronous check ends: reason (malloc'ed, may be NULL) is for
   the log only; the callee frees it. */
typedef void auth_backend_done(enum auth_result result, char *reason, void *ctx);

struct auth_backend {
	const char *name;
	bool compiled_in;
	int (*init)(const struct auth_settings *set, struct auth **auth_r, char **error_r);
	void (*deinit)(struct auth **auth);
	/* Checks user's password. Must not log the password. May set
	   *reason_r (malloc'ed, for the log only) on failure. */
	enum auth_result (*verify)(struct auth *auth, const char *user, const char *password,
				   char **reason_r);
	/* Optional, for backends that block (PAM): starts the check and
	   returns at once; done is called later from the event loop (never
	   from inside verify_start). *handle_r identifies the request for
	   verify_cancel, after which done is not called. Returns 0, or -1
	   if the check could not start (done is not called). */
	int (*verify_start)(struct auth *auth, struct event_loop *loop, const char *user,
			    const char *password, auth_backend_done *done, void *ctx,
			    void **handle_r);
	void (*verify_cancel)(struct auth *auth, void *handle);
	/* Optional: 1 if user exists, 0 if not, -1 on a temporary failure
	   with *error_r (for SMTP's RCPT TO check). */
	int (*user_exists)(struct auth *auth, const char *user, char **error_r);
};

struct auth_ctx {
	const struct auth_backend *backend;
	struct auth *auth;
};

/* Core wrapper: refuses a user name that fails username_is_valid()
   or is longer than 255 octets and a password longer than 1024 octets
   with AUTH_FAIL before the backend sees them, and logs the outcome (never
   the password) with session id sid. */
enum auth_result auth_verify(const struct auth_ctx *ctx, const char *sid, const char *user,
			     const char *password);

/* The asynchronous form the protocol code uses: the same checks and log
   lines as auth_verify(), and cb(result, cb_ctx) called exactly once from
   the event loop, never from inside this call, unless the request is
   cancelled first. A backend with verify_start runs outside the loop; the
   others are run now and answered on the next loop pass. remote is the
   client's address (IP only, NULL: "-"): every log line of the attempt
   says "login failed from REMOTE for user 'USER'", the address first,
   before anything the client chose, so that a log watcher such as
   fail2ban (etc/fail2ban-imapserver.conf) cannot be fooled by a user
   name. */
typedef void auth_callback(enum auth_result result, void *ctx);
struct auth_request;
struct auth_request *auth_verify_start(const struct auth_ctx *ctx, struct event_loop *loop,
				       const char *sid, const char *remote, const char *user,
				       const char *password, auth_callback *cb, void *cb_ctx);
/* Drops a pending request: its callback will not be called. */
void auth_request_cancel(struct auth_request **req);

/* Core wrapper around user_exists: 1 if user exists or the backend
   cannot tell (it has no user_exists: the caller accepts the user), 0 if
   it does not (also for a name that fails username_is_valid() or is
   longer than 255 octets, without asking the backend), -1 on a temporary
   failure (logged here with session id sid). */
int auth_user_exists(const struct auth_ctx *ctx, const char *sid, const char *user);

/* Compares two strings in time that depends only on their lengths. */
bool auth_str_equal_ct(const char *a, const char *b);

#endif
