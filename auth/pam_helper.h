/* pam_helper.h: the process that runs PAM for the "pam" auth backend, and
   the messages the server and that process exchange.

   PAM modules block (pam_faildelay alone sleeps for seconds, pam_ldap waits
   on the network), so the server's loop never calls PAM. At backend init,
   before the server drops root, pam_helper_spawn() forks the helper; it
   keeps root (pam_unix needs it to read /etc/shadow) and nothing else of
   the server: every other descriptor is closed, signals are reset.

   Transport: a SOCK_SEQPACKET socketpair, so one send() is one message
   and a message is never split or merged. Every message is checked for its
   exact length before a field is read.

     request  (server -> helper): u32 id, u16 service_len, u16 user_len,
              u16 password_len, u32 min_uid, then the three strings, no
              NULs, no terminators
     reply    (helper -> server): u32 id, u32 result (enum auth_result),
              u16 reason_len, then the reason (for the log only)

   Integers are in host order: both ends are the same program.

   Concurrency: the helper reads requests one by one and runs each in a
   worker process of its own (fork per request), at most
   PAM_HELPER_MAX_WORKERS at once; further requests wait in the socket
   until a worker ends. A worker that crashes (a PAM module's fault) or
   runs past PAM_HELPER_TIMEOUT_MS answers AUTH_TEMPFAIL and the helper
   goes on. The helper exits when the server closes its end. */
#ifndef AUTH_PAM_HELPER_H
#define AUTH_PAM_HELPER_H

#include "auth.h"

#define PAM_HELPER_SERVICE_MAX 255
#define PAM_HELPER_USER_MAX 255
#define PAM_HELPER_PASSWORD_MAX 1024
#define PAM_HELPER_REASON_MAX 255
#define PAM_HELPER_REQUEST_HDR 14
#define PAM_HELPER_REPLY_HDR 10
#define PAM_HELPER_REQUEST_MAX \
	(PAM_HELPER_REQUEST_HDR + PAM_HELPER_SERVICE_MAX + PAM_HELPER_USER_MAX + \
	 PAM_HELPER_PASSWORD_MAX)
#define PAM_HELPER_REPLY_MAX (PAM_HELPER_REPLY_HDR + PAM_HELPER_REASON_MAX)

#define PAM_HELPER_MAX_WORKERS 8
#define PAM_HELPER_TIMEOUT_MS 60000
/* At most this many PAM conversation messages in one call. */
#define PAM_HELPER_MAX_CONV_MSG 32

/* A decoded request: the strings are copies (malloc'ed, NUL-terminated);
   pam_helper_request_clear() wipes the password and frees them. */
struct pam_helper_request {
	uint32_t id;
	/* auth.min_uid: a local account below it (getpwnam(3)) is refused
	   before PAM runs. */
	uint32_t min_uid;
	char *service, *user, *password;
};

/* Encodes a request into buf (at least PAM_HELPER_REQUEST_MAX octets).
   Returns the length, or 0 if a string is too long or holds a NUL.
   The caller wipes buf after sending it: it holds the password. */
size_t pam_helper_request_encode(unsigned char *buf, uint32_t id, uint32_t min_uid,
				 const char *service, const char *user, const char *password);
/* Decodes msg of len octets. Returns 0, or -1 if the message is not
   exactly one well-formed request (*id_r is set if len >= 4). */
int pam_helper_request_decode(const unsigned char *msg, size_t len,
			      struct pam_helper_request *req_r, uint32_t *id_r);
void pam_helper_request_clear(struct pam_helper_request *req);

/* True (with *reason_r) if user is a local account whose uid is below
   min_uid (auth.min_uid: root, daemon, nobody ... may not read mail);
   false for 0, an unknown user or a lookup that failed (PAM decides). */
bool pam_helper_system_account(const char *user, uint32_t min_uid, char **reason_r);

/* Encodes a reply into buf (at least PAM_HELPER_REPLY_MAX octets); a
   longer reason is cut, control characters are replaced by '?'. */
size_t pam_helper_reply_encode(unsigned char *buf, uint32_t id, enum auth_result result,
			       const char *reason);
/* Decodes a reply. *reason_r is malloc'ed (NULL when empty). Returns 0,
   or -1 if msg is not exactly one well-formed reply. */
int pam_helper_reply_decode(const unsigned char *msg, size_t len, uint32_t *id_r,
			    enum auth_result *result_r, char **reason_r);

/* Forks the helper. *fd_r is the server's end of the socketpair
   (non-blocking, close-on-exec), *pid_r the helper's pid. Returns 0, or
   -1 with *error_r. Without HAVE_PAM the helper answers every request
   with AUTH_TEMPFAIL. */
int pam_helper_spawn(int *fd_r, pid_t *pid_r, char **error_r);

/* Runs one PAM check in the calling process (the worker): pam_start with
   service, the conversation, pam_authenticate, pam_acct_mgmt, pam_end.
   *reason_r (malloc'ed) says why on failure. Blocks as long as PAM does. */
enum auth_result pam_helper_check(const char *service, const char *user, const char *password,
				  char **reason_r);

#endif
