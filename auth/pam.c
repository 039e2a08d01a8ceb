/* pam.c: the PAM auth backend ("pam").

   The loop never calls PAM: every check goes to the helper process of
   pam_helper.c over a socketpair, and the answer comes back through the
   loop (verify_start / verify_cancel; there is no blocking verify). The
   requests in flight wait in a queue, each with its own id; the helper
   runs up to PAM_HELPER_MAX_WORKERS of them at once, each in a worker
   process of its own.

   If the helper dies, the logins in flight get AUTH_TEMPFAIL (the client
   sees NO [UNAVAILABLE]) and a new helper is started at once (and again
   at the next login if that fails).

   One helper per process, shared by every instance: the helper must be
   forked while the server is still root, and a SIGHUP reload makes a new
   instance after the privileges are gone. So the connection to it is the
   one piece of mutable state of this file outside an instance
   (pam_conn), reference-counted by the instances, created by the first
   init and closed by the last deinit. A helper restarted after the drop
   can only run with the server's own user (logged as a warning). */
#include "pam.h"
#include "pam_helper.h"
#include "event.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_PAM

/* Replies read per loop wake-up before the others get a turn. */
#define PAM_READ_BURST 64
/* How long deinit waits for the helper to exit after closing its socket. */
#define PAM_STOP_WAIT_MS 2000

struct pam_request {
	struct pam_request *prev, *next;
	uint32_t id;
	unsigned helper_gen;    /* the helper it was given to */
	struct auth *owner;
	auth_backend_done *done;
	void *ctx;
	/* The encoded request while it is not sent yet (it holds the
	   password: wiped and freed once sent or dropped). */
	unsigned char *msg;
	size_t msg_len;
};

struct pam_conn {
	unsigned refcount;
	pid_t pid;              /* 0: no helper running */
	int fd;                 /* -1: no helper running */
	bool started_as_root;   /* the first helper was forked by root */
	struct event_loop *loop;        /* from the first verify_start */
	struct event_io *io;
	struct pam_request *head, *tail; /* in flight, oldest first */
	uint32_t next_id;
	unsigned helper_gen;    /* counts helper restarts */
};

struct auth {
	struct pam_conn *conn;
	char *service;
	uint32_t min_uid;       /* auth.min_uid */
};

static struct pam_conn *pam_conn;

static void
request_wipe_msg(struct pam_request *req)
{
	if (req->msg != NULL) {
		explicit_bzero(req->msg, req->msg_len);
		free(req->msg);
		req->msg = NULL;
	}
}

static void
request_unlink(struct pam_conn *conn, struct pam_request *req)
{
	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		conn->head = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	else
		conn->tail = req->prev;
	req->prev = req->next = NULL;
}

static void
request_free(struct pam_request *req)
{
	request_wipe_msg(req);
	free(req);
}

/* Closes the socket and reaps the helper, waiting at most wait_ms for it
   to exit by itself (it does when its socket closes), then SIGKILL. */
static void
conn_stop_helper(struct pam_conn *conn, int64_t wait_ms)
{
	int64_t deadline = mono_ms() + wait_ms;

	event_io_remove(&conn->io);
	if (conn->fd >= 0) {
		close(conn->fd);
		conn->fd = -1;
	}
	if (conn->pid <= 0)
		return;
	for (;;) {
		pid_t ret = waitpid(conn->pid, NULL, WNOHANG);
		if (ret == conn->pid || (ret < 0 && errno != EINTR))
			break;
		if (mono_ms() >= deadline) {
			/* SIGKILL fails with EPERM once the server is no
			   longer root: then give the helper, which exits on
			   the closed socket, one more second. */
			if (kill(conn->pid, SIGKILL) == 0 || errno == ESRCH) {
				while (waitpid(conn->pid, NULL, 0) < 0 && errno == EINTR)
					;
				break;
			}
			if (mono_ms() >= deadline + 1000)
				break;
		}
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	conn->pid = 0;
}

static void conn_input(void *context);
static void conn_output(void *context);

static int
conn_start_helper(struct pam_conn *conn, char **error_r)
{
	if (pam_helper_spawn(&conn->fd, &conn->pid, error_r) < 0)
		return -1;
	if (!event_fd_ok(conn->fd)) {
		*error_r = xasprintf("PAM helper socket fd %d is beyond FD_SETSIZE", conn->fd);
		conn_stop_helper(conn, 0);
		return -1;
	}
	if (conn->loop != NULL)
		conn->io = event_io_add(conn->loop, conn->fd, conn_input, conn_output, conn);
	return 0;
}

/* Sends the queued messages in order while the socket takes them. An
   error other than EAGAIN is left to conn_input, which sees the closed
   socket on the next pass and fails the requests from the loop. */
static void
conn_flush(struct pam_conn *conn)
{
	bool blocked = false;

	for (struct pam_request *req = conn->head; req != NULL; req = req->next) {
		ssize_t n;

		if (req->msg == NULL)
			continue;
		if (conn->fd < 0)
			break;
		n = send(conn->fd, req->msg, req->msg_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				blocked = true;
			break;
		}
		request_wipe_msg(req);
	}
	if (conn->io != NULL)
		event_io_want_write(conn->io, blocked);
}

static void
conn_output(void *context)
{
	conn_flush(context);
}

static void
conn_unref(struct pam_conn **_conn)
{
	struct pam_conn *conn = *_conn;

	*_conn = NULL;
	if (conn == NULL || --conn->refcount > 0)
		return;
	while (conn->head != NULL) {
		struct pam_request *req = conn->head;
		request_unlink(conn, req);
		request_free(req);
	}
	conn_stop_helper(conn, PAM_STOP_WAIT_MS);
	if (pam_conn == conn)
		pam_conn = NULL;
	free(conn);
}

/* The helper is gone (or spoke nonsense): fail everything in flight with
   AUTH_TEMPFAIL and start a new one. Runs from the loop. */
static void
conn_helper_died(struct pam_conn *conn, const char *why)
{
	unsigned dead_gen = conn->helper_gen++;
	char *error = NULL;

	log_warn("-", "auth pam: helper process %ld %s; restarting it", (long)conn->pid, why);
	conn_stop_helper(conn, 0);
	if (conn_start_helper(conn, &error) < 0) {
		log_error("-", "auth pam: cannot restart the helper: %s (trying again at the "
			       "next login)", error);
		free(error);
	} else if (conn->started_as_root && geteuid() != 0) {
		log_warn("-", "auth pam: the new helper runs without root privileges (they were "
			      "dropped at start-up): PAM modules that need root will refuse "
			      "logins until imapserver is restarted");
	}
	/* One at a time from the head, looking again after each callback:
	   a callback may cancel other requests or start new ones (those go
	   to the new helper and are not failed). */
	for (;;) {
		struct pam_request *req;
		auth_backend_done *done;
		void *ctx;

		for (req = conn->head; req != NULL; req = req->next) {
			if (req->helper_gen == dead_gen)
				break;
		}
		if (req == NULL)
			break;
		done = req->done;
		ctx = req->ctx;
		request_unlink(conn, req);
		request_free(req);
		done(AUTH_TEMPFAIL, xstrdup("the PAM helper process died"), ctx);
	}
}

static void
conn_input(void *context)
{
	struct pam_conn *conn = context;

	/* A callback may free the last instance: hold the connection. */
	conn->refcount++;
	for (int i = 0; i < PAM_READ_BURST && conn->fd >= 0; i++) {
		unsigned char buf[PAM_HELPER_REPLY_MAX];
		struct pam_request *req;
		enum auth_result result;
		char *reason = NULL;
		uint32_t id;
		ssize_t n;

		n = recv(conn->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		if (n <= 0) {
			conn_helper_died(conn, n == 0 ? "exited" : "closed its socket");
			break;
		}
		if ((size_t)n > sizeof(buf) ||
		    pam_helper_reply_decode(buf, (size_t)n, &id, &result, &reason) < 0) {
			conn_helper_died(conn, "sent a malformed reply");
			break;
		}
		for (req = conn->head; req != NULL; req = req->next) {
			if (req->id == id && req->msg == NULL)
				break;
		}
		if (req == NULL) {
			/* Cancelled while the helper worked on it. */
			free(reason);
			continue;
		}
		request_unlink(conn, req);
		req->done(result, reason, req->ctx);
		free(req);
	}
	conn_unref(&conn);
}

/* A service without a file of its own silently falls back to PAM's
   "other" (on Debian: everyone refused): a typo in auth.service is worth
   a warning at start and in -t. */
static void
pam_check_service(const char *service)
{
	static const char *const dirs[] = { "/etc/pam.d", "/usr/lib/pam.d" };

	for (size_t i = 0; i < N_ELEMENTS(dirs); i++) {
		char *path = xasprintf("%s/%s", dirs[i], service);
		bool found = access(path, F_OK) == 0;

		free(path);
		if (found)
			return;
	}
	if (access("/etc/pam.conf", F_OK) == 0)
		return;
	log_warn("-", "auth.service '%s': there is no /etc/pam.d/%s, so PAM uses its 'other' "
		      "service (on Debian it refuses everyone): check the name", service, service);
}

static int
pam_init(const struct auth_settings *set, struct auth **auth_r, char **error_r)
{
	struct auth *auth;

	if (set->service == NULL || set->service[0] == '\0' ||
	    strnlen(set->service, PAM_HELPER_SERVICE_MAX + 1) > PAM_HELPER_SERVICE_MAX ||
	    strchr(set->service, '/') != NULL) {
		*error_r = xstrdup("auth.service must be a PAM service name (no '/', at most "
				   "255 octets)");
		return -1;
	}
	if (pam_conn == NULL) {
		struct pam_conn *conn = xcalloc(1, sizeof(*conn));

		conn->fd = -1;
		conn->started_as_root = geteuid() == 0;
		if (conn_start_helper(conn, error_r) < 0) {
			free(conn);
			return -1;
		}
		pam_conn = conn;
	}
	pam_check_service(set->service);
	auth = xcalloc(1, sizeof(*auth));
	auth->conn = pam_conn;
	auth->conn->refcount++;
	auth->service = xstrdup(set->service);
	auth->min_uid = set->min_uid;
	*auth_r = auth;
	return 0;
}

static void
pam_deinit(struct auth **_auth)
{
	struct auth *auth = *_auth;
	struct pam_request *req, *next;

	if (auth == NULL)
		return;
	*_auth = NULL;
	/* Requests of this instance still in flight are dropped unanswered:
	   whoever could be answered is gone with the instance. */
	for (req = auth->conn->head; req != NULL; req = next) {
		next = req->next;
		if (req->owner == auth) {
			request_unlink(auth->conn, req);
			request_free(req);
		}
	}
	conn_unref(&auth->conn);
	free(auth->service);
	free(auth);
}

static int
pam_verify_start(struct auth *auth, struct event_loop *loop, const char *user,
		 const char *password, auth_backend_done *done, void *ctx, void **handle_r)
{
	struct pam_conn *conn = auth->conn;
	unsigned char buf[PAM_HELPER_REQUEST_MAX];
	struct pam_request *req;
	char *error = NULL;
	size_t len;

	if (conn->loop == NULL)
		conn->loop = loop;
	if (conn->fd < 0 && conn_start_helper(conn, &error) < 0) {
		log_error("-", "auth pam: cannot start the helper: %s", error);
		free(error);
		return -1;
	}
	if (conn->io == NULL)
		conn->io = event_io_add(conn->loop, conn->fd, conn_input, conn_output, conn);
	/* Ids only need to differ among the requests in flight. */
	len = pam_helper_request_encode(buf, ++conn->next_id, auth->min_uid, auth->service, user,
					password);
	if (len == 0) {
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	req = xcalloc(1, sizeof(*req));
	req->id = conn->next_id;
	req->helper_gen = conn->helper_gen;
	req->owner = auth;
	req->done = done;
	req->ctx = ctx;
	req->msg = xmalloc(len);
	req->msg_len = len;
	memcpy(req->msg, buf, len);
	explicit_bzero(buf, sizeof(buf));
	req->prev = conn->tail;
	if (conn->tail != NULL)
		conn->tail->next = req;
	else
		conn->head = req;
	conn->tail = req;
	conn_flush(conn);
	*handle_r = req;
	return 0;
}

static void
pam_verify_cancel(struct auth *auth, void *handle)
{
	struct pam_request *req = handle;

	/* If it was sent, the helper's answer finds no request and is
	   dropped. */
	request_unlink(auth->conn, req);
	request_free(req);
}

const struct auth_backend auth_backend_pam = {
	.name = "pam",
	.compiled_in = true,
	.init = pam_init,
	.deinit = pam_deinit,
	.verify_start = pam_verify_start,
	.verify_cancel = pam_verify_cancel,
};

#else /* !HAVE_PAM */

/* Registered by name only, so that a config naming "pam" fails at
   start-up with "not compiled in" rather than "unknown backend". */
const struct auth_backend auth_backend_pam = {
	.name = "pam",
	.compiled_in = false,
};

#endif
