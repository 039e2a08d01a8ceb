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
};

struct auth;                /* a backend instance, from init() */

struct auth_backend {
	const char *name;
	bool compiled_in;
	int (*init)(const struct auth_settings *set, struct auth **auth_r, char **error_r);
	void (*deinit)(struct auth **auth);
	/* Checks user's password. Must not log the password. May set
	   *reason_r (malloc'ed, for the log only) on failure. */
	enum auth_result (*verify)(struct auth *auth, const char *user, const char *password,
				   char **reason_r);
};

struct auth_ctx {
	const struct auth_backend *backend;
	struct auth *auth;
};

/* Core wrapper: refuses a user name that fails storage_user_is_valid()
   or is longer than 255 octets and a password longer than 1024 octets
   with AUTH_FAIL before the backend sees them, and logs the outcome (never
   the password) with session id sid. */
enum auth_result auth_verify(const struct auth_ctx *ctx, const char *sid, const char *user,
			     const char *password);

/* Compares two strings in time that depends only on their lengths. */
bool auth_str_equal_ct(const char *a, const char *b);

#endif
