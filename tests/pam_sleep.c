/* pam_sleep.c: a PAM module for the tests only: it sleeps, to stand for a
   slow PAM stack (pam_faildelay, a network directory) in tests/e2e.

     auth required /path/pam_sleep.so ms=2000 [user=NAME]

   pam_sm_authenticate sleeps ms milliseconds (at most 60000), for every
   user or only for NAME, and returns PAM_IGNORE, so the verdict is left
   to the other modules of the stack. Built by "make tests" as
   $(BUILD)/tests/pam_sleep.so; never installed. */
#include <security/pam_modules.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv);
int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv);
int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv);

int
pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const char *only = NULL, *user = NULL;
	long ms = 0;

	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "ms=", 3) == 0)
			ms = strtol(argv[i] + 3, NULL, 10);
		else if (strncmp(argv[i], "user=", 5) == 0)
			only = argv[i] + 5;
	}
	if (ms < 0 || ms > 60000)
		ms = 0;
	if (only != NULL &&
	    (pam_get_item(pamh, PAM_USER, (const void **)&user) != PAM_SUCCESS || user == NULL ||
	     strcmp(user, only) != 0))
		return PAM_IGNORE;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	for (int i = 0; i < 1000 && nanosleep(&ts, &ts) != 0; i++)
		;
	return PAM_IGNORE;
}

int
pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_IGNORE;
}

int
pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_IGNORE;
}
