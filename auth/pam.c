/* pam.c: the PAM auth backend.

   Not implemented yet: a later change writes the real backend (run in a
   helper process, since PAM modules may block). Until then the backend is
   registered with compiled_in = false and no functions, so that a config
   naming "pam" fails at start-up with "not compiled in" instead of
   "unknown backend", and nothing can call into it. */
#include "pam.h"

const struct auth_backend auth_backend_pam = {
	.name = "pam",
	.compiled_in = false,
};
