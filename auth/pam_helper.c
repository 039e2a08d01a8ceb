/* pam_helper.c: the PAM helper process and its message format.

   See pam_helper.h for the protocol and the process layout. Everything in
   the helper and its workers ends with _exit(): they are forks of the
   server and must not run its atexit handlers, flush its stdio buffers or
   (under the sanitizers) report the server's heap as their leaks. */
#include "pam_helper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HAVE_PAM
#include <security/pam_appl.h>
#endif

/* ---------------------------------------------------------------- messages */

static void
put_u16(unsigned char *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void
put_u32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static uint16_t
get_u16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t
get_u32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* strlen(s) if it is at most max, else SIZE_MAX (never reads past max). */
static size_t
bounded_len(const char *s, size_t max)
{
	size_t len = strnlen(s, max + 1);

	return len > max ? SIZE_MAX : len;
}

size_t
pam_helper_request_encode(unsigned char *buf, uint32_t id, uint32_t min_uid,
			  const char *service, const char *user, const char *password)
{
	size_t slen, ulen, plen, off = PAM_HELPER_REQUEST_HDR;

	if (service == NULL || user == NULL || password == NULL)
		return 0;
	slen = bounded_len(service, PAM_HELPER_SERVICE_MAX);
	ulen = bounded_len(user, PAM_HELPER_USER_MAX);
	plen = bounded_len(password, PAM_HELPER_PASSWORD_MAX);
	if (slen == SIZE_MAX || ulen == SIZE_MAX || plen == SIZE_MAX || slen == 0 || ulen == 0)
		return 0;
	put_u32(buf, id);
	put_u16(buf + 4, (uint16_t)slen);
	put_u16(buf + 6, (uint16_t)ulen);
	put_u16(buf + 8, (uint16_t)plen);
	put_u32(buf + 10, min_uid);
	memcpy(buf + off, service, slen);
	off += slen;
	memcpy(buf + off, user, ulen);
	off += ulen;
	memcpy(buf + off, password, plen);
	off += plen;
	return off;
}

/* A copy of len octets at p as a string, or NULL if they hold a NUL. */
static char *
field_dup(const unsigned char *p, size_t len)
{
	if (memchr(p, '\0', len) != NULL)
		return NULL;
	return xstrndup((const char *)p, len);
}

int
pam_helper_request_decode(const unsigned char *msg, size_t len,
			  struct pam_helper_request *req_r, uint32_t *id_r)
{
	size_t slen, ulen, plen;
	const unsigned char *p;

	i_zero(req_r);
	if (len >= 4)
		*id_r = get_u32(msg);
	if (len < PAM_HELPER_REQUEST_HDR || len > PAM_HELPER_REQUEST_MAX)
		return -1;
	slen = get_u16(msg + 4);
	ulen = get_u16(msg + 6);
	plen = get_u16(msg + 8);
	if (slen == 0 || slen > PAM_HELPER_SERVICE_MAX || ulen == 0 ||
	    ulen > PAM_HELPER_USER_MAX || plen > PAM_HELPER_PASSWORD_MAX ||
	    PAM_HELPER_REQUEST_HDR + slen + ulen + plen != len)
		return -1;
	p = msg + PAM_HELPER_REQUEST_HDR;
	req_r->id = get_u32(msg);
	req_r->min_uid = get_u32(msg + 10);
	req_r->service = field_dup(p, slen);
	req_r->user = field_dup(p + slen, ulen);
	req_r->password = field_dup(p + slen + ulen, plen);
	if (req_r->service == NULL || req_r->user == NULL || req_r->password == NULL) {
		pam_helper_request_clear(req_r);
		return -1;
	}
	return 0;
}

void
pam_helper_request_clear(struct pam_helper_request *req)
{
	if (req->password != NULL)
		explicit_bzero(req->password, strlen(req->password));
	free(req->password);
	free(req->user);
	free(req->service);
	i_zero(req);
}

size_t
pam_helper_reply_encode(unsigned char *buf, uint32_t id, enum auth_result result,
			const char *reason)
{
	size_t rlen = reason == NULL ? 0 : strnlen(reason, PAM_HELPER_REASON_MAX);

	put_u32(buf, id);
	put_u32(buf + 4, (uint32_t)result);
	put_u16(buf + 8, (uint16_t)rlen);
	for (size_t i = 0; i < rlen; i++) {
		unsigned char c = (unsigned char)reason[i];
		buf[PAM_HELPER_REPLY_HDR + i] = c < 0x20 || c == 0x7f ? '?' : c;
	}
	return PAM_HELPER_REPLY_HDR + rlen;
}

int
pam_helper_reply_decode(const unsigned char *msg, size_t len, uint32_t *id_r,
			enum auth_result *result_r, char **reason_r)
{
	size_t rlen;
	uint32_t result;

	*reason_r = NULL;
	if (len < PAM_HELPER_REPLY_HDR || len > PAM_HELPER_REPLY_MAX)
		return -1;
	rlen = get_u16(msg + 8);
	result = get_u32(msg + 4);
	if (PAM_HELPER_REPLY_HDR + rlen != len ||
	    (result != AUTH_OK && result != AUTH_FAIL && result != AUTH_TEMPFAIL))
		return -1;
	if (rlen > 0) {
		*reason_r = field_dup(msg + PAM_HELPER_REPLY_HDR, rlen);
		if (*reason_r == NULL)
			return -1;
	}
	*id_r = get_u32(msg);
	*result_r = (enum auth_result)result;
	return 0;
}

/* ---------------------------------------------------------------- PAM */

#ifdef HAVE_PAM
struct pam_conv_data {
	const char *user, *password;
};

/* Frees the first n replies, wiping what they hold. */
static void
conv_free_replies(struct pam_response *replies, int n)
{
	for (int i = 0; i < n; i++) {
		if (replies[i].resp != NULL) {
			explicit_bzero(replies[i].resp, strlen(replies[i].resp));
			free(replies[i].resp);
		}
	}
	free(replies);
}

/* Answers the password prompt with the password and a visible prompt
   (the user name prompt) with the user name; informational messages get
   no answer. Any other style, or more than PAM_HELPER_MAX_CONV_MSG
   messages, fails the conversation. The replies belong to the module
   that asked (PAM's rule: it frees them); the worker that owns this
   conversation wipes its own copy of the password and exits right after. */
static int
pam_helper_conv(int num_msg, const struct pam_message **msg, struct pam_response **resp_r,
		void *appdata)
{
	const struct pam_conv_data *data = appdata;
	struct pam_response *replies;

	*resp_r = NULL;
	if (num_msg <= 0 || num_msg > PAM_HELPER_MAX_CONV_MSG || msg == NULL)
		return PAM_CONV_ERR;
	replies = calloc((size_t)num_msg, sizeof(*replies));
	if (replies == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < num_msg; i++) {
		const char *answer;

		if (msg[i] == NULL) {
			conv_free_replies(replies, i);
			return PAM_CONV_ERR;
		}
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			answer = data->password;
			break;
		case PAM_PROMPT_ECHO_ON:
			answer = data->user;
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			answer = NULL;
			break;
		default:
			conv_free_replies(replies, i);
			return PAM_CONV_ERR;
		}
		if (answer != NULL) {
			replies[i].resp = strdup(answer);
			if (replies[i].resp == NULL) {
				conv_free_replies(replies, i);
				return PAM_BUF_ERR;
			}
		}
	}
	*resp_r = replies;
	return PAM_SUCCESS;
}

/* What a PAM error means for the client: a refusal (wrong password,
   unknown user, expired or locked account) or a failure of the service. */
static enum auth_result
pam_helper_map(int ret)
{
	switch (ret) {
	case PAM_SUCCESS:
		return AUTH_OK;
	case PAM_AUTH_ERR:
	case PAM_USER_UNKNOWN:
	case PAM_CRED_INSUFFICIENT:
	case PAM_MAXTRIES:
	case PAM_ACCT_EXPIRED:
	case PAM_NEW_AUTHTOK_REQD:
	case PAM_PERM_DENIED:
	case PAM_AUTHTOK_EXPIRED:
		return AUTH_FAIL;
	default:
		return AUTH_TEMPFAIL;
	}
}

/* Takes (F_WRLCK) or releases (F_UNLCK) the workers' start lock: a POSIX
   record lock, so it belongs to the worker process and the kernel drops
   it if the worker dies holding it. */
static void
start_lock(int lock_fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

	if (lock_fd < 0)
		return;
	for (int i = 0; i < 100 && fcntl(lock_fd, F_SETLKW, &fl) < 0 && errno == EINTR; i++)
		;
}

/* pam_helper_check(), with pam_start run under the start lock when
   lock_fd >= 0. pam_start only reads the service file and loads the
   modules (nothing that waits on a user or the network), so serialising
   it costs little; pam_authenticate and the rest run in parallel. It
   keeps sibling workers from doing a library's first-use set-up at the
   same moment: pam_wrapper (the tests' PAM) does it after every fork, in
   a /tmp folder chosen without locking, and concurrent workers collide. */
static enum auth_result
pam_helper_check_locked(int lock_fd, const char *service, const char *user,
			const char *password, char **reason_r)
{
	struct pam_conv_data data = { .user = user, .password = password };
	struct pam_conv conv = { .conv = pam_helper_conv, .appdata_ptr = &data };
	pam_handle_t *pamh = NULL;
	const char *step = "pam_start";
	int ret;

	*reason_r = NULL;
	start_lock(lock_fd, F_WRLCK);
	ret = pam_start(service, user, &conv, &pamh);
	start_lock(lock_fd, F_UNLCK);
	if (ret != PAM_SUCCESS) {
		*reason_r = xasprintf("pam_start(%s): %s", service, pam_strerror(pamh, ret));
		return AUTH_TEMPFAIL;
	}
	/* A user with an empty password is not let in by an empty answer. */
	step = "pam_authenticate";
	ret = pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	if (ret == PAM_SUCCESS) {
		step = "pam_acct_mgmt";
		ret = pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	}
	if (ret != PAM_SUCCESS)
		*reason_r = xasprintf("%s: %s", step, pam_strerror(pamh, ret));
	pam_end(pamh, ret);
	return pam_helper_map(ret);
}
#else
static enum auth_result
pam_helper_check_locked(int lock_fd, const char *service, const char *user,
			const char *password, char **reason_r)
{
	*reason_r = xstrdup("PAM was not compiled in");
	return AUTH_TEMPFAIL;
}
#endif

enum auth_result
pam_helper_check(const char *service, const char *user, const char *password,
		 char **reason_r)
{
	return pam_helper_check_locked(-1, service, user, password, reason_r);
}

bool
pam_helper_system_account(const char *user, uint32_t min_uid, char **reason_r)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (min_uid == 0 || getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return false;
	if ((uint32_t)res->pw_uid >= min_uid)
		return false;
	*reason_r = xasprintf("a system account (uid %lu, below auth.min_uid %lu)",
			      (unsigned long)res->pw_uid, (unsigned long)min_uid);
	return true;
}

/* ---------------------------------------------------------------- helper */

struct pam_worker {
	pid_t pid;              /* 0: slot free */
	int fd;                 /* read end of the worker's result pipe */
	uint32_t id;
	int64_t deadline;       /* mono_ms() */
};

/* Sends one reply; the helper's socket is blocking. Exits if the server
   is gone. */
static void
helper_reply(int sock, uint32_t id, enum auth_result result, const char *reason)
{
	unsigned char buf[PAM_HELPER_REPLY_MAX];
	size_t len = pam_helper_reply_encode(buf, id, result, reason);

	while (send(sock, buf, len, MSG_NOSIGNAL) < 0) {
		if (errno != EINTR)
			_exit(0);
	}
}

/* The worker: runs the check and writes "result reason" into fd (one
   write, below PIPE_BUF, so it arrives whole). */
static void ATTR_NORETURN
worker_run(int fd, int lock_fd, struct pam_helper_request *req)
{
	unsigned char buf[PAM_HELPER_REPLY_MAX];
	enum auth_result result;
	char *reason = NULL;
	size_t len;

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (pam_helper_system_account(req->user, req->min_uid, &reason))
		result = AUTH_FAIL;
	else
		result = pam_helper_check_locked(lock_fd, req->service, req->user, req->password,
						 &reason);
	pam_helper_request_clear(req);
	len = pam_helper_reply_encode(buf, 0, result, reason);
	if (write(fd, buf, len) < 0)
		_exit(1);
	_exit(0);
}

static void
worker_reap(struct pam_worker *w)
{
	while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
		;
	close(w->fd);
	w->pid = 0;
	w->fd = -1;
}

/* Starts a worker for req in a free slot, or answers at once. */
static void
worker_start(int sock, int lock_fd, struct pam_worker *slot, struct pam_helper_request *req)
{
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		helper_reply(sock, req->id, AUTH_TEMPFAIL, "pipe failed in the PAM helper");
		return;
	}
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		helper_reply(sock, req->id, AUTH_TEMPFAIL, "fork failed in the PAM helper");
		return;
	}
	if (pid == 0) {
		close(pfd[0]);
		close(sock);
		worker_run(pfd[1], lock_fd, req);
	}
	close(pfd[1]);
	slot->pid = pid;
	slot->fd = pfd[0];
	slot->id = req->id;
	slot->deadline = mono_ms() + PAM_HELPER_TIMEOUT_MS;
}

/* A worker's pipe is readable: it answered, or it died without a word. */
static void
worker_finish(int sock, struct pam_worker *w)
{
	unsigned char buf[PAM_HELPER_REPLY_MAX];
	enum auth_result result;
	char *reason = NULL;
	uint32_t id;
	ssize_t n;

	do {
		n = read(w->fd, buf, sizeof(buf));
	} while (n < 0 && errno == EINTR);
	if (n > 0 && pam_helper_reply_decode(buf, (size_t)n, &id, &result, &reason) == 0) {
		helper_reply(sock, w->id, result, reason);
	} else {
		helper_reply(sock, w->id, AUTH_TEMPFAIL,
			     "the PAM worker ended without an answer (a PAM module crashed?)");
	}
	free(reason);
	worker_reap(w);
}

static void
worker_timeout(int sock, struct pam_worker *w)
{
	(void)kill(w->pid, SIGKILL);
	helper_reply(sock, w->id, AUTH_TEMPFAIL, "PAM did not answer in time");
	worker_reap(w);
}

/* Reads one request from the server and starts its worker. Returns -1
   when the server has closed its end. */
static int
helper_read_request(int sock, int lock_fd, struct pam_worker *workers)
{
	unsigned char buf[PAM_HELPER_REQUEST_MAX];
	struct pam_helper_request req;
	uint32_t id = 0;
	ssize_t n;
	int ret;

	n = recv(sock, buf, sizeof(buf), MSG_TRUNC);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (n == 0)
		return -1;
	ret = (size_t)n > sizeof(buf) ? -1 :
		pam_helper_request_decode(buf, (size_t)n, &req, &id);
	explicit_bzero(buf, sizeof(buf));
	if (ret < 0) {
		helper_reply(sock, id, AUTH_TEMPFAIL, "malformed request to the PAM helper");
		return 0;
	}
	for (size_t i = 0; i <= PAM_HELPER_MAX_WORKERS; i++) {
		if (i == PAM_HELPER_MAX_WORKERS) {
			/* Not reached: the socket is only read with a free slot. */
			helper_reply(sock, req.id, AUTH_TEMPFAIL, "the PAM helper is busy");
		} else if (workers[i].pid == 0) {
			worker_start(sock, lock_fd, &workers[i], &req);
			break;
		}
	}
	pam_helper_request_clear(&req);
	return 0;
}

static void ATTR_NORETURN
helper_main(int sock)
{
	struct pam_worker workers[PAM_HELPER_MAX_WORKERS];
	struct pollfd pfds[PAM_HELPER_MAX_WORKERS + 1];
	size_t map[PAM_HELPER_MAX_WORKERS + 1];
	/* The workers' start lock (see pam_helper_check_locked); without
	   it (no memfd) the workers just do not serialise pam_start. */
	int lock_fd = memfd_create("imapserver-pam-start", MFD_CLOEXEC);

	for (size_t i = 0; i < PAM_HELPER_MAX_WORKERS; i++) {
		workers[i].pid = 0;
		workers[i].fd = -1;
	}
	for (;;) {
		int64_t now = mono_ms(), wait = -1;
		size_t nfds = 0, busy = 0;
		int ret;

		for (size_t i = 0; i < PAM_HELPER_MAX_WORKERS; i++) {
			if (workers[i].pid == 0)
				continue;
			if (workers[i].deadline <= now) {
				worker_timeout(sock, &workers[i]);
				continue;
			}
			if (wait < 0 || workers[i].deadline - now < wait)
				wait = workers[i].deadline - now;
			pfds[nfds].fd = workers[i].fd;
			pfds[nfds].events = POLLIN;
			map[nfds++] = i;
			busy++;
		}
		/* Full: new requests wait in the socket. */
		pfds[nfds].fd = sock;
		pfds[nfds].events = busy < PAM_HELPER_MAX_WORKERS ? POLLIN : 0;
		map[nfds++] = SIZE_MAX;
		ret = poll(pfds, nfds, wait < 0 ? -1 : (int)wait);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (size_t k = 0; k < nfds; k++) {
			if (pfds[k].revents == 0)
				continue;
			if (map[k] != SIZE_MAX) {
				worker_finish(sock, &workers[map[k]]);
			} else if ((pfds[k].revents & (POLLERR | POLLNVAL)) != 0 ||
				   helper_read_request(sock, lock_fd, workers) < 0) {
				goto out;
			} else if ((pfds[k].revents & POLLHUP) != 0 &&
				   (pfds[k].revents & POLLIN) == 0) {
				goto out;
			}
		}
	}
out:
	for (size_t i = 0; i < PAM_HELPER_MAX_WORKERS; i++) {
		if (workers[i].pid != 0)
			(void)kill(workers[i].pid, SIGKILL);
	}
	_exit(0);
}

/* In the new helper: keep fd 0-2 (stdin and stdout on /dev/null), the
   socket as fd 3, nothing else; default signal handling, no signal
   blocked; die with the server. */
static void ATTR_NORETURN
helper_child(int sock, pid_t parent)
{
	static const int ignored[] = { SIGPIPE, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 };
	static const int defaulted[] = { SIGTERM, SIGCHLD, SIGALRM, SIGQUIT };
	sigset_t none;
	int null;

	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	for (size_t i = 0; i < N_ELEMENTS(ignored); i++)
		(void)signal(ignored[i], SIG_IGN);
	for (size_t i = 0; i < N_ELEMENTS(defaulted); i++)
		(void)signal(defaulted[i], SIG_DFL);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0);
	if (sock != 3) {
		if (dup2(sock, 3) < 0)
			_exit(1);
		sock = 3;
	}
	(void)close_range(4, ~0U, 0);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		(void)dup2(null, 0);
		(void)dup2(null, 1);
		if (null > 3)
			close(null);
	}
	/* The socket was non-blocking for the server: the helper waits. */
	(void)fcntl(sock, F_SETFL, 0);
	if (chdir("/") < 0)
		_exit(1);
	helper_main(sock);
}

int
pam_helper_spawn(int *fd_r, pid_t *pid_r, char **error_r)
{
	int sv[2];
	pid_t pid, parent = getpid();

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		*error_r = xasprintf("socketpair: %s", strerror(errno));
		return -1;
	}
	/* Nothing half-written in stdio may be written twice. */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		*error_r = xasprintf("fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		helper_child(sv[1], parent);
	}
	close(sv[1]);
	if (fd_set_nonblock_cloexec(sv[0]) < 0) {
		*error_r = xasprintf("fcntl: %s", strerror(errno));
		close(sv[0]);
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		return -1;
	}
	*fd_r = sv[0];
	*pid_r = pid;
	return 0;
}
