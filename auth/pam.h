/* pam.h: the PAM auth backend ("pam"). */
#ifndef AUTH_PAM_H
#define AUTH_PAM_H

#include "auth.h"

extern const struct auth_backend auth_backend_pam;

#endif
