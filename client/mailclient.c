/* mailclient.c: the lab's interactive mail client.

	mailclient SERVER_IP SMTP_PORT IMAP_PORT

   Asks for a username and a password and logs in over IMAP, then offers
   1. Send Mail (over SMTP), 2. Manage Mail (list, filter by sender, show,
   delete over IMAP), 3. Quit. Only standard IMAP4rev1 (+ IDLE, UIDPLUS
   when offered) and SMTP are used, so any standard server will do.

   Synchronisation: the client mirrors the mailbox's sequence numbers
   (UID, sender, subject per message) from the server's EXISTS, EXPUNGE
   and FETCH responses. While it waits for input it keeps the connection
   in IDLE and polls stdin and the socket together, so a mail deleted or
   delivered elsewhere is announced at once. A lost connection is
   re-established once without a word (what changed meanwhile is
   announced); if that fails the user is told.

   Prompts go to stdout, input comes from stdin (a terminal, a pipe or a
   pty). Exit status: 0 after Quit, 1 on end of input or a fatal error,
   2 on a usage error. */
#include "lib.h"
#include "buf.h"
#include "imap_client_lib.h"
#include "mail_view.h"
#include "mc_util.h"
#include "message.h"
#include "smtp_client.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MC_DEFAULT_TIMEOUT_S 30
#define MC_IDLE_RENEW_MS (25 * 60 * 1000)   /* RFC 2177: re-issue IDLE within 29 min */
#define MC_NOOP_INTERVAL_MS (30 * 1000)     /* without IDLE: how often to poll */
#define MC_LOGIN_TRIES 3
#define MC_MAX_INPUT (1024 * 1024)          /* one input line */
#define MC_MAX_BODY (10 * 1024 * 1024)      /* one mail typed in */
#define MC_MAX_MESSAGES 10000000u           /* sequence numbers we mirror */
#define MC_FETCH_BATCH 100                  /* UIDs per FETCH of whole mails */
#define MC_RECONNECT_DELAY_MS 1500          /* after a drop noticed while waiting */

/* One message of the mailbox: msgs[seq - 1]. */
struct mc_msg {
	uint32_t uid;                       /* 0 until known */
	char *from;                         /* envelope sender "x@y", NULL if none */
	char *subject;                      /* decoded, NULL if none */
	int64_t date;                       /* INTERNALDATE, -1 until known */
	bool is_new;                        /* came after the mailbox was loaded */
};

/* A whole message fetched to be shown. */
struct mc_body {
	uint32_t uid;
	char *data;
	size_t len;
};

struct mc {
	const char *host, *smtp_port, *imap_port;
	int timeout_ms;
	char *user, *password;

	struct imapc *conn;
	struct mc_msg *msgs;
	size_t count, alloc;
	uint32_t uidvalidity;
	bool loaded;                        /* INBOX selected and mirrored */
	uint32_t deleting_uid;              /* our own deletion: no notice */
	struct strlist notices;

	bool collect_bodies;
	struct mc_body *bodies;
	size_t body_count, body_alloc;

	/* A drop noticed while waiting for input: when to reconnect (0:
	   nothing planned). Gives a restarting server a moment. */
	int64_t reconnect_at;

	struct buf in;                      /* stdin, not yet consumed */
	bool in_eof;
	const char *prompt;                 /* shown again after a notice */
};

static struct termios mc_saved_termios;
static volatile sig_atomic_t mc_termios_saved;

/* ------------------------------------------------------------ output */

static void
mc_print(const char *s)
{
	fputs(s, stdout);
}

static void
mc_notice_add(struct mc *mc, const char *fmt, ...) ATTR_FORMAT(2, 3);

static void
mc_notice_add(struct mc *mc, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list args;

	va_start(args, fmt);
	buf_vprintf(&b, fmt, args);
	va_end(args);
	strlist_add_take(&mc->notices, buf_steal(&b));
}

/* Prints the notices that wait, one line each. Returns how many. */
static size_t
mc_notices_flush(struct mc *mc)
{
	size_t n = mc->notices.count;

	for (size_t i = 0; i < n; i++) {
		fputs("[notice] ", stdout);
		mc_write_safe(stdout, mc->notices.items[i], strlen(mc->notices.items[i]));
		putc('\n', stdout);
	}
	strlist_clear(&mc->notices);
	fflush(stdout);
	return n;
}

static const char *
mc_or(const char *s, const char *dflt)
{
	return s != NULL && *s != '\0' ? s : dflt;
}

/* ------------------------------------------------------------ mirror */

static void
mc_msg_clear(struct mc_msg *m)
{
	free(m->from);
	free(m->subject);
	i_zero(m);
	m->date = -1;
}

static void
mc_msgs_resize(struct mc *mc, size_t n, bool is_new)
{
	if (n > MC_MAX_MESSAGES)
		n = MC_MAX_MESSAGES;
	while (mc->count > n)
		mc_msg_clear(&mc->msgs[--mc->count]);
	if (n > mc->count) {
		xgrow(&mc->msgs, &mc->alloc, n, sizeof(*mc->msgs));
		for (size_t i = mc->count; i < n; i++) {
			i_zero(&mc->msgs[i]);
			mc->msgs[i].date = -1;
			mc->msgs[i].is_new = is_new;
		}
		mc->count = n;
	}
}

static void
mc_msgs_clear(struct mc *mc)
{
	mc_msgs_resize(mc, 0, false);
}

static void
mc_bodies_clear(struct mc *mc)
{
	for (size_t i = 0; i < mc->body_count; i++)
		free(mc->bodies[i].data);
	mc->body_count = 0;
}

static const struct mc_body *
mc_body_find(const struct mc *mc, uint32_t uid)
{
	for (size_t i = 0; i < mc->body_count; i++) {
		if (mc->bodies[i].uid == uid)
			return &mc->bodies[i];
	}
	return NULL;
}

/* The envelope's From as "mailbox@host" (RFC 3501 7.4.2 address). */
static char *
mc_envelope_from(const struct imapc_arg *env)
{
	if (env == NULL || env->type != IMAPC_ARG_LIST || env->count < 3)
		return NULL;
	const struct imapc_arg *from = &env->list[2];
	for (size_t i = 0; from->type == IMAPC_ARG_LIST && i < from->count; i++) {
		const struct imapc_arg *a = &from->list[i];
		if (a->type != IMAPC_ARG_LIST || a->count < 4)
			continue;
		const char *mbox = imapc_arg_str(&a->list[2]);
		const char *host = imapc_arg_str(&a->list[3]);
		if (mbox == NULL)
			continue;       /* group syntax markers */
		return host != NULL ? xasprintf("%s@%s", mbox, host) : xstrdup(mbox);
	}
	return NULL;
}

static char *
mc_envelope_subject(const struct imapc_arg *env)
{
	if (env == NULL || env->type != IMAPC_ARG_LIST || env->count < 2)
		return NULL;
	const struct imapc_arg *s = &env->list[1];
	if (s->type != IMAPC_ARG_STRING && s->type != IMAPC_ARG_ATOM)
		return NULL;
	struct buf out = BUF_INIT;
	message_decode_header(s->str, s->len, &out);
	return out.data != NULL ? buf_steal(&out) : xstrdup("");
}

static void
mc_on_fetch(struct mc *mc, uint32_t seq, const struct imapc_arg *list)
{
	if (seq == 0 || seq > MC_MAX_MESSAGES || list->type != IMAPC_ARG_LIST)
		return;
	if (seq > mc->count)
		mc_msgs_resize(mc, seq, false);
	struct mc_msg *m = &mc->msgs[seq - 1];
	uint32_t uid;
	if (imapc_arg_u32(imapc_fetch_item(list, "UID"), &uid) == 0)
		m->uid = uid;
	const struct imapc_arg *env = imapc_fetch_item(list, "ENVELOPE");
	if (env != NULL) {
		free(m->from);
		free(m->subject);
		m->from = mc_envelope_from(env);
		m->subject = mc_envelope_subject(env);
	}
	const char *idate = imapc_arg_str(imapc_fetch_item(list, "INTERNALDATE"));
	int64_t t;
	int32_t tz;
	if (idate != NULL && message_parse_imap_datetime(idate, &t, &tz) == 0)
		m->date = t;
	const struct imapc_arg *body = imapc_fetch_item(list, "BODY[]");
	if (body != NULL && mc->collect_bodies && m->uid != 0 && body->type == IMAPC_ARG_STRING &&
	    mc_body_find(mc, m->uid) == NULL) {
		xgrow(&mc->bodies, &mc->body_alloc, mc->body_count + 1, sizeof(*mc->bodies));
		struct mc_body *b = &mc->bodies[mc->body_count++];
		b->uid = m->uid;
		b->len = body->len;
		b->data = xmalloc(body->len + 1);
		memcpy(b->data, body->str, body->len);
		b->data[body->len] = '\0';
	}
}

static void
mc_on_expunge(struct mc *mc, uint32_t seq)
{
	if (seq == 0 || seq > mc->count)
		return;
	struct mc_msg *m = &mc->msgs[seq - 1];
	if (mc->loaded && m->uid != 0 && m->uid != mc->deleting_uid) {
		mc_notice_add(mc, "Mail from %s \"%s\" was deleted on another device.",
			      mc_or(m->from, "(unknown sender)"), mc_or(m->subject, "(no subject)"));
	}
	mc_msg_clear(m);
	memmove(m, m + 1, (mc->count - seq) * sizeof(*m));
	mc->count--;
}

/* Status texts: [UIDVALIDITY n], [ALERT] text. */
static void
mc_on_status_text(struct mc *mc, const char *text)
{
	uint64_t n;

	if (ascii_strncasecmp(text, "[UIDVALIDITY ", 13) == 0) {
		char num[16];
		size_t i = 0;
		for (const char *p = text + 13; *p >= '0' && *p <= '9' && i + 1 < sizeof(num); p++)
			num[i++] = *p;
		num[i] = '\0';
		if (str_to_u64(num, UINT32_MAX, &n) == 0)
			mc->uidvalidity = (uint32_t)n;
	} else if (ascii_strncasecmp(text, "[ALERT]", 7) == 0) {
		mc_notice_add(mc, "Server alert:%s", text + 7);
	}
}

static void
mc_untagged(const struct imapc_response *resp, void *context)
{
	struct mc *mc = context;
	uint32_t num;

	if (resp->count == 1) {
		mc_on_status_text(mc, resp->text);
		return;
	}
	if (resp->count < 2 || imapc_arg_u32(&resp->args[0], &num) < 0)
		return;
	const char *word = imapc_arg_str(&resp->args[1]);
	if (word == NULL)
		return;
	if (ascii_strcasecmp(word, "EXISTS") == 0) {
		if (num > mc->count)
			mc_msgs_resize(mc, num, mc->loaded);
	} else if (ascii_strcasecmp(word, "EXPUNGE") == 0) {
		mc_on_expunge(mc, num);
	} else if (ascii_strcasecmp(word, "FETCH") == 0 && resp->count >= 3) {
		mc_on_fetch(mc, num, &resp->args[2]);
	}
}

/* ------------------------------------------------------------ IMAP session */

/* Connects and logs in. Returns 1, 0 (wrong credentials, *reply_r), -1. */
static int
mc_imap_login(struct mc *mc, char **reply_r, char **error_r)
{
	if (mc->conn == NULL) {
		if (imapc_connect(mc->host, mc->imap_port, mc->timeout_ms, &mc->conn, error_r) < 0)
			return -1;
		imapc_set_untagged_handler(mc->conn, mc_untagged, mc);
	}
	int ret = imapc_login(mc->conn, mc->user, mc->password, reply_r, error_r);
	if (ret < 0)
		imapc_free(&mc->conn);
	return ret;
}

/* SELECT INBOX and mirror it: UID, sender, subject and date of every
   message (headers only: ENVELOPE, never a body). */
static int
mc_select(struct mc *mc, char **error_r)
{
	char *reply = NULL;

	mc->loaded = false;
	mc_msgs_clear(mc);
	int ret = imapc_run(mc->conn, "SELECT INBOX", &reply, error_r);
	if (ret == 0) {
		*error_r = xasprintf("cannot open INBOX: %s", reply);
		ret = -1;
	}
	free(reply);
	reply = NULL;
	if (ret == 1 && mc->count > 0) {
		ret = imapc_run(mc->conn, "FETCH 1:* (UID ENVELOPE INTERNALDATE)", &reply, error_r);
		if (ret == 0)
			*error_r = xasprintf("cannot list INBOX: %s", reply);
		free(reply);
	}
	if (ret != 1)
		return -1;
	mc->loaded = true;
	return 0;
}

/* After a reconnection: what changed while we were away, by UID. */
static void
mc_announce_diff(struct mc *mc, const struct mc_msg *old, size_t old_count, uint32_t old_validity)
{
	uint32_t old_max = 0;

	if (old_validity != mc->uidvalidity)
		return;
	for (size_t i = 0; i < old_count; i++) {
		bool found = false;
		if (old[i].uid > old_max)
			old_max = old[i].uid;
		for (size_t j = 0; j < mc->count && !found; j++)
			found = mc->msgs[j].uid == old[i].uid;
		if (!found && old[i].uid != 0 && old[i].uid != mc->deleting_uid)
			mc_notice_add(mc, "Mail from %s \"%s\" was deleted on another device.",
				      mc_or(old[i].from, "(unknown sender)"),
				      mc_or(old[i].subject, "(no subject)"));
	}
	for (size_t j = 0; j < mc->count; j++) {
		if (mc->msgs[j].uid > old_max)
			mc_notice_add(mc, "New mail from %s: %s",
				      mc_or(mc->msgs[j].from, "(unknown sender)"),
				      mc_or(mc->msgs[j].subject, "(no subject)"));
	}
}

/* The connection was lost: connect, log in and select again, once.
   Returns 0 or -1 with *error_r. */
static int
mc_reconnect(struct mc *mc, char **error_r)
{
	struct mc_msg *old = mc->msgs;
	size_t old_count = mc->count;
	uint32_t old_validity = mc->uidvalidity;
	bool was_loaded = mc->loaded;
	char *reply = NULL;

	imapc_free(&mc->conn);
	mc->msgs = NULL;
	mc->count = mc->alloc = 0;
	mc->loaded = false;
	int ret = mc_imap_login(mc, &reply, error_r);
	if (ret == 0) {
		*error_r = xasprintf("the server no longer accepts the login: %s", reply);
		ret = -1;
	}
	free(reply);
	if (ret == 1 && mc_select(mc, error_r) < 0) {
		imapc_free(&mc->conn);
		ret = -1;
	}
	if (ret == 1 && was_loaded)
		mc_announce_diff(mc, old, old_count, old_validity);
	for (size_t i = 0; i < old_count; i++)
		mc_msg_clear(&old[i]);
	free(old);
	return ret == 1 ? 0 : -1;
}

static void
mc_tell_lost(const char *error)
{
	printf("The connection to the IMAP server was lost and could not be "
	       "re-established: %s\n", error);
	fflush(stdout);
}

/* Runs an IMAP command; a lost connection is re-established once,
   quietly, and the command run again. Returns 1 (OK), 0 (NO/BAD, the
   server's words in *reply_r if not NULL), -1 (no connection: the user
   was told). */
static int
mc_imap(struct mc *mc, const char *text, char **reply_r)
{
	bool reconnected = false;
	char *err = NULL;

	mc->reconnect_at = 0;   /* a planned reconnection happens now */
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		if (mc->conn == NULL) {
			if (reconnected || mc_reconnect(mc, &err) < 0)
				break;
			reconnected = true;
		}
		int ret = 1;
		if (imapc_is_idling(mc->conn))
			ret = imapc_idle_stop(mc->conn, &err);
		if (ret >= 0) {
			ret = imapc_run(mc->conn, text, reply_r, &err);
			if (ret >= 0)
				return ret;
		}
		imapc_free(&mc->conn);
		if (reconnected)
			break;
		free(err);
		err = NULL;
	}
	mc_tell_lost(err != NULL ? err : "unknown error");
	free(err);
	return -1;
}

/* Fetches the headers of the messages that arrived (uid still 0) and
   announces the new ones. */
static void
mc_announce_new(struct mc *mc)
{
	size_t first = mc->count;

	for (size_t i = 0; i < mc->count; i++) {
		if (mc->msgs[i].uid == 0) {
			first = i;
			break;
		}
	}
	if (first < mc->count) {
		char *cmd = xasprintf("FETCH %zu:* (UID ENVELOPE INTERNALDATE)", first + 1);
		char *reply = NULL;
		(void)mc_imap(mc, cmd, &reply);
		free(reply);
		free(cmd);
	}
	for (size_t i = 0; i < mc->count; i++) {
		struct mc_msg *m = &mc->msgs[i];
		if (m->is_new && m->uid != 0) {
			mc_notice_add(mc, "New mail from %s: %s", mc_or(m->from, "(unknown sender)"),
				      mc_or(m->subject, "(no subject)"));
			m->is_new = false;
		}
	}
}

/* The connection failed while we waited for input: reconnect quietly
   once, a moment later (mc_wait_input), or tell the user. */
static void
mc_conn_failed(struct mc *mc, char *error)
{
	free(error);
	imapc_free(&mc->conn);
	mc->reconnect_at = mono_ms() + MC_RECONNECT_DELAY_MS;
}

static void
mc_reconnect_due(struct mc *mc)
{
	char *err = NULL;

	mc->reconnect_at = 0;
	if (mc->conn == NULL && mc_reconnect(mc, &err) < 0) {
		mc_tell_lost(err);
		free(err);
	}
}

/* ------------------------------------------------------------ input */

static void
mc_restore_termios(void)
{
	if (mc_termios_saved)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &mc_saved_termios);
}

static void
mc_on_signal(int sig)
{
	mc_restore_termios();
	_exit(128 + sig);
}

/* Takes one line (without its line end) out of the input buffer if a
   whole one is there, or the rest at end of input. */
static bool
mc_take_line(struct mc *mc, char **line_r)
{
	const char *lf = mc->in.len > 0 ? memchr(mc->in.data, '\n', mc->in.len) : NULL;
	size_t len;

	if (lf != NULL) {
		len = (size_t)(lf - mc->in.data);
	} else if (mc->in.len >= MC_MAX_INPUT || (mc->in_eof && mc->in.len > 0)) {
		len = mc->in.len;
	} else {
		return false;
	}
	size_t consumed = lf != NULL ? len + 1 : len;
	if (len > 0 && mc->in.data[len - 1] == '\r')
		len--;
	*line_r = xstrndup(mc->in.data, len);
	buf_consume(&mc->in, consumed);
	return true;
}

/* Waits for input on stdin while watching the IMAP connection (IDLE,
   or NOOP now and then without it). Notices are printed as they come,
   followed by the prompt again. */
static void
mc_wait_input(struct mc *mc)
{
	struct pollfd pfd[2];
	nfds_t nfds = 1;
	int timeout = -1;
	char *err = NULL;
	bool idle_capable = false;

	pfd[0].fd = STDIN_FILENO;
	pfd[0].events = POLLIN;
	pfd[0].revents = 0;
	if (mc->reconnect_at != 0) {
		int64_t now = mono_ms();
		if (now >= mc->reconnect_at || mc->conn != NULL) {
			mc_reconnect_due(mc);
			return;
		}
		timeout = (int)(mc->reconnect_at - now);
	}
	if (mc->conn != NULL && mc->loaded) {
		idle_capable = imapc_has_capability(mc->conn, "IDLE");
		if (idle_capable && !imapc_is_idling(mc->conn) &&
		    imapc_idle_start(mc->conn, &err) < 0) {
			mc_conn_failed(mc, err);
			return;
		}
	}
	if (mc->conn != NULL && mc->loaded) {
		pfd[1].fd = imapc_fd(mc->conn);
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		nfds = 2;
		timeout = imapc_is_idling(mc->conn) ? MC_IDLE_RENEW_MS : MC_NOOP_INTERVAL_MS;
	}
	/* Changes that came with earlier answers. */
	if (mc->loaded)
		mc_announce_new(mc);
	if (mc->notices.count > 0) {
		putc('\n', stdout);
		mc_notices_flush(mc);
		fputs(mc->prompt != NULL ? mc->prompt : "", stdout);
		fflush(stdout);
		return;         /* the IDLE state may have changed: start over */
	}
	fflush(stdout);

	int ret = poll(pfd, nfds, timeout);
	if (ret == 0 && mc->reconnect_at != 0)
		return;         /* time to reconnect: the next round does it */
	if (ret < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "mailclient: poll(): %s\n", strerror(errno));
			exit(1);
		}
		return;
	}
	if (nfds == 2 && mc->conn != NULL) {
		if (pfd[1].revents != 0) {
			if (imapc_is_idling(mc->conn)) {
				if (imapc_idle_input(mc->conn, &err) < 0) {
					mc_conn_failed(mc, err);
					return;
				}
			} else {
				/* Not idling, yet the server speaks: most likely
				   a BYE or a close; NOOP finds out. */
				char *reply = NULL;
				(void)mc_imap(mc, "NOOP", &reply);
				free(reply);
			}
		} else if (ret == 0) {
			char *reply = NULL;
			if (imapc_is_idling(mc->conn)) {
				if (imapc_idle_stop(mc->conn, &err) < 0) {
					mc_conn_failed(mc, err);
					return;
				}
			} else {
				(void)mc_imap(mc, "NOOP", &reply);
			}
			free(reply);
		}
	}
	if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
		buf_reserve(&mc->in, 4096);
		ssize_t n = read(STDIN_FILENO, mc->in.data + mc->in.len, 4096);
		if (n > 0) {
			mc->in.len += (size_t)n;
			mc->in.data[mc->in.len] = '\0';
		} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			mc->in_eof = true;
		}
	}
}

/* Prints prompt and reads one line. Returns 1 with *line_r (malloc'ed),
   or 0 at the end of input. */
static int
mc_read_line(struct mc *mc, const char *prompt, char **line_r)
{
	if (mc->notices.count > 0)
		mc_notices_flush(mc);
	mc->prompt = prompt;
	fputs(prompt, stdout);
	fflush(stdout);
	/* Each round either takes a line, or waits for an event (input,
	   the server, a timer). */
	for (;;) {
		if (mc_take_line(mc, line_r))
			return 1;
		if (mc->in_eof)
			return 0;
		mc_wait_input(mc);
	}
}

/* Reads the password without echo when stdin is a terminal. */
static int
mc_read_password(struct mc *mc, const char *prompt, char **line_r)
{
	struct termios t;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t) == 0;

	if (tty) {
		mc_saved_termios = t;
		mc_termios_saved = 1;
		t.c_lflag &= ~(tcflag_t)ECHO;
		t.c_lflag |= ECHONL;
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &t);
	}
	int ret = mc_read_line(mc, prompt, line_r);
	if (tty) {
		mc_restore_termios();
		mc_termios_saved = 0;
	}
	return ret;
}

static void ATTR_NORETURN
mc_end_of_input(void)
{
	fprintf(stderr, "mailclient: end of input before Quit\n");
	exit(1);
}

/* ------------------------------------------------------------ Send Mail */

/* Reads one "Name: value" line of the lab's format; an invalid one is
   explained and asked again once. check returns NULL if the value is
   good or the explanation (malloc'ed). Returns 1 with *value_r, 0 if
   both tries failed, -1 at end of input. */
static int
mc_read_field(struct mc *mc, const char *name, char *(*check)(struct mc *, const char *),
	      char **value_r)
{
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		char *line = NULL;
		/* Blank lines before a field are skipped; each one is
		   consumed, so this ends at the end of input. */
		do {
			free(line);
			if (mc_read_line(mc, "", &line) == 0)
				return -1;
		} while (*mc_trim(line) == '\0');
		char *value = NULL;
		char *why;
		if (mc_header_line(line, name, &value) == 0)
			why = xasprintf("expected a line \"%s: ...\", got \"%s\"", name, line);
		else
			why = check(mc, value);
		free(line);
		if (why == NULL) {
			*value_r = value;
			return 1;
		}
		free(value);
		printf("Invalid %s line: %s.\n", name, why);
		free(why);
		if (attempt == 0)
			printf("Please enter the %s line again:\n", name);
	}
	return 0;
}

static char *
mc_check_from(struct mc *mc, const char *value)
{
	if (!mc_address_valid(value))
		return xasprintf("\"%s\" is not a mail address of the form user@domain", value);
	if (!mc_address_is_users(value, mc->user))
		return xasprintf("\"%s\" is not your address: you are logged in as %s", value,
				 mc->user);
	return NULL;
}

static char *
mc_check_to(struct mc *mc, const char *value)
{
	struct strlist list;
	char *bad = NULL;

	i_zero(&list);
	int ret = mc_split_addresses(value, &list, &bad);
	strlist_clear(&list);
	if (ret == 0)
		return NULL;
	char *why = *bad == '\0' ? xstrdup("no recipient given") :
				   xasprintf("\"%s\" is not a mail address of the form user@domain",
					     bad);
	free(bad);
	return why;
}

static char *
mc_check_subject(struct mc *mc, const char *value)
{
	return NULL;
}

static int
mc_send_mail(struct mc *mc)
{
	char *from = NULL, *to = NULL, *subject = NULL;
	struct buf body = BUF_INIT;
	int ret;

	mc_print("Enter the mail in this format, ending with a line holding a single \".\":\n"
		 "From: user@domain\n"
		 "To: user@domain\n"
		 "Subject: subject\n"
		 "message body, one or more lines\n"
		 ".\n");
	ret = mc_read_field(mc, "From", mc_check_from, &from);
	if (ret == 1)
		ret = mc_read_field(mc, "To", mc_check_to, &to);
	if (ret == 1)
		ret = mc_read_field(mc, "Subject", mc_check_subject, &subject);
	/* The body: every line up to a line that is a single ".". */
	bool too_long = false;
	while (ret == 1) {
		char *line;
		if (mc_read_line(mc, "", &line) == 0) {
			ret = -1;
			break;
		}
		if (strcmp(line, ".") == 0) {
			free(line);
			break;
		}
		if (body.len + strlen(line) + 1 <= MC_MAX_BODY) {
			buf_append_str(&body, line);
			buf_append_c(&body, '\n');
		} else {
			too_long = true;
		}
		free(line);
	}
	if (ret == 1 && too_long) {
		printf("Mail not sent: the body is longer than %d MB.\n", MC_MAX_BODY / 1024 / 1024);
		ret = 0;
	}
	if (ret == 1) {
		struct strlist rcpts;
		char *bad = NULL, *verdict = NULL, *err = NULL;
		struct buf msg = BUF_INIT;
		const char *domain = strrchr(from, '@') + 1;

		i_zero(&rcpts);
		(void)mc_split_addresses(to, &rcpts, &bad);
		free(bad);
		mc_build_message(from, to, subject, body.data != NULL ? body.data : "", domain,
				 (int64_t)time(NULL), &msg);
		struct smtpc_mail mail = {
			.from = from,
			.to = (const char *const *)rcpts.items,
			.to_count = rcpts.count,
			.data = msg.data,
			.data_len = msg.len,
		};
		int sret = smtpc_send(mc->host, mc->smtp_port, mc->timeout_ms, domain, &mail,
				      &verdict, &err);
		if (sret == 1)
			printf("Mail sent successfully (server: %s).\n", verdict);
		else if (sret == 0)
			printf("Mail not sent: %s\n", verdict);
		else
			printf("Mail not sent: %s\n", err);
		free(verdict);
		free(err);
		buf_free(&msg);
		strlist_clear(&rcpts);
	} else if (ret == 0) {
		mc_print("Mail not sent.\n");
	}
	free(from);
	free(to);
	free(subject);
	buf_free(&body);
	return ret < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ Manage Mail */

/* Brings the mirror to the server's state now: NOOP for pending
   changes, then the headers of every message again. Returns 0 or -1. */
static int
mc_refresh(struct mc *mc)
{
	char *reply = NULL;

	if (mc_imap(mc, "NOOP", &reply) < 0)
		return -1;
	free(reply);
	reply = NULL;
	if (mc->count == 0)
		return 0;
	int ret = mc_imap(mc, "FETCH 1:* (UID ENVELOPE INTERNALDATE)", &reply);
	if (ret == 0)
		printf("Cannot list the mailbox: %s\n", reply);
	free(reply);
	if (ret != 1)
		return -1;
	for (size_t i = 0; i < mc->count; i++)
		mc->msgs[i].is_new = false;
	return 0;
}

static void
mc_print_listing(struct mc *mc)
{
	if (mc->count == 0) {
		mc_print("Your mailbox is empty.\n");
		return;
	}
	printf("Your mailbox (%zu mail%s):\n", mc->count, mc->count == 1 ? "" : "s");
	for (size_t i = 0; i < mc->count; i++) {
		const struct mc_msg *m = &mc->msgs[i];
		char when[64] = "(unknown date)";
		if (m->date >= 0)
			mc_format_time(m->date, MC_TIME_LIST, when, sizeof(when));
		printf("%4zu. ", i + 1);
		const char *from = mc_or(m->from, "(unknown sender)");
		mc_write_safe(stdout, from, strlen(from));
		printf("  %s  ", when);
		const char *subject = mc_or(m->subject, "(no subject)");
		mc_write_safe(stdout, subject, strlen(subject));
		putc('\n', stdout);
	}
}

/* Asks for a sender's address, twice at most. Returns 1 with *addr_r,
   0 after two invalid ones, -1 at end of input. */
static int
mc_ask_sender(struct mc *mc, char **addr_r)
{
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		char *line;
		if (mc_read_line(mc, "Enter the sender's mail address: ", &line) == 0)
			return -1;
		mc_trim(line);
		size_t len = strlen(line);
		if (len >= 2 && line[0] == '<' && line[len - 1] == '>') {
			memmove(line, line + 1, len - 2);
			line[len - 2] = '\0';
		}
		if (mc_address_valid(line)) {
			*addr_r = line;
			return 1;
		}
		free(line);
		mc_print("INVALID MAIL-ID\n");
	}
	return 0;
}

/* Fetches the whole mails of uids (in batches) into mc->bodies. */
static int
mc_fetch_bodies(struct mc *mc, const uint32_t *uids, size_t count)
{
	mc_bodies_clear(mc);
	mc->collect_bodies = true;
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i += MC_FETCH_BATCH) {
		struct buf cmd = BUF_INIT;
		buf_append_str(&cmd, "UID FETCH ");
		for (size_t j = i; j < count && j < i + MC_FETCH_BATCH; j++)
			buf_printf(&cmd, "%s%u", j == i ? "" : ",", uids[j]);
		buf_append_str(&cmd, " (UID INTERNALDATE BODY[])");
		char *reply = NULL;
		int r = mc_imap(mc, cmd.data, &reply);
		if (r == 0)
			printf("Cannot fetch the mails: %s\n", reply);
		if (r != 1)
			ret = -1;
		free(reply);
		buf_free(&cmd);
	}
	mc->collect_bodies = false;
	return ret;
}

static int
mc_msg_seq(const struct mc *mc, uint32_t uid)
{
	for (size_t i = 0; i < mc->count; i++) {
		if (mc->msgs[i].uid == uid)
			return (int)(i + 1);
	}
	return 0;
}

static void
mc_delete(struct mc *mc, uint32_t uid, size_t number)
{
	char *reply = NULL;

	/* The server's state now: was it deleted elsewhere meanwhile? */
	if (mc_imap(mc, "NOOP", &reply) < 0)
		return;
	free(reply);
	reply = NULL;
	if (mc_msg_seq(mc, uid) == 0) {
		printf("Mail %zu was already deleted on another device.\n", number);
		return;
	}
	mc->deleting_uid = uid;
	char *cmd = xasprintf("UID STORE %u +FLAGS.SILENT (\\Deleted)", uid);
	int ret = mc_imap(mc, cmd, &reply);
	free(cmd);
	if (ret == 1) {
		free(reply);
		reply = NULL;
		bool uidplus = mc->conn != NULL && imapc_has_capability(mc->conn, "UIDPLUS");
		cmd = uidplus ? xasprintf("UID EXPUNGE %u", uid) : xstrdup("EXPUNGE");
		ret = mc_imap(mc, cmd, &reply);
		free(cmd);
	}
	if (ret == 1 && mc_msg_seq(mc, uid) == 0)
		printf("Mail %zu deleted.\n", number);
	else if (ret >= 0)
		printf("Mail %zu could not be deleted: %s\n", number,
		       reply != NULL ? reply : "the server kept it");
	free(reply);
	mc->deleting_uid = 0;
}

static int
mc_manage_mail(struct mc *mc)
{
	if (mc_refresh(mc) < 0)
		return 0;
	mc_print_listing(mc);

	char *addr = NULL;
	int ret = mc_ask_sender(mc, &addr);
	if (ret <= 0)
		return ret;

	/* The sender's mails, as the server has them now. */
	if (mc_refresh(mc) < 0) {
		free(addr);
		return 0;
	}
	uint32_t *uids = xcalloc(mc->count + 1, sizeof(*uids));
	size_t n = 0;
	for (size_t i = 0; i < mc->count; i++) {
		if (mc->msgs[i].from != NULL && mc->msgs[i].uid != 0 &&
		    mc_address_equal(mc->msgs[i].from, addr))
			uids[n++] = mc->msgs[i].uid;
	}
	free(addr);
	if (n == 0 || mc_fetch_bodies(mc, uids, n) < 0) {
		if (n == 0)
			mc_print("NO MAILS TO SHOW\n");
		free(uids);
		return 0;
	}
	/* Mails deleted meanwhile are simply not there. */
	uint32_t *shown = xcalloc(n, sizeof(*shown));
	size_t shown_count = 0;
	for (size_t i = 0; i < n; i++) {
		const struct mc_body *b = mc_body_find(mc, uids[i]);
		if (b == NULL)
			continue;
		int seq = mc_msg_seq(mc, uids[i]);
		int64_t date = seq > 0 ? mc->msgs[seq - 1].date : -1;
		shown[shown_count++] = uids[i];
		printf("\n======== Mail %zu of %zu ========\n", shown_count, n);
		mail_view_print(stdout, b->data, b->len, date);
	}
	mc_bodies_clear(mc);
	free(uids);
	if (shown_count == 0) {
		mc_print("NO MAILS TO SHOW\n");
		free(shown);
		return 0;
	}
	putc('\n', stdout);

	ret = 0;
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		char *line;
		char *prompt = xasprintf("Enter the number of a mail to delete it (1-%zu), "
					 "or press Enter to go back: ", shown_count);
		int r = mc_read_line(mc, prompt, &line);
		free(prompt);
		if (r == 0) {
			ret = -1;
			break;
		}
		mc_trim(line);
		uint64_t num;
		if (*line == '\0') {
			free(line);
			break;
		}
		if (str_to_u64(line, UINT32_MAX, &num) == 0 && num >= 1 && num <= shown_count) {
			free(line);
			mc_delete(mc, shown[num - 1], (size_t)num);
			break;
		}
		printf("There is no mail number \"%s\".\n", line);
		free(line);
	}
	free(shown);
	return ret;
}

/* ------------------------------------------------------------ start */

static void
mc_usage(FILE *out)
{
	fprintf(out,
		"usage: mailclient SERVER_IP SMTP_PORT IMAP_PORT\n"
		"\n"
		"The lab's mail client. Asks for a username and a password, logs in\n"
		"over IMAP, then offers:\n"
		"  1. Send Mail     type a mail (From:, To:, Subject:, body, a line \".\")\n"
		"                   and send it over SMTP\n"
		"  2. Manage Mail   list the mailbox, show the mails of one sender,\n"
		"                   delete one of them\n"
		"  3. Quit\n"
		"\n"
		"Changes made on another device are announced while it waits for input.\n"
		"Prompts go to stdout and input is read from stdin, so a script can\n"
		"drive it. Exit status: 0 after Quit, 1 on end of input or an error,\n"
		"2 for a usage error.\n"
		"\n"
		"Environment: MAILCLIENT_TIMEOUT  seconds to wait for a server's answer\n"
		"             (default %d).\n",
		MC_DEFAULT_TIMEOUT_S);
}

static bool
mc_port_valid(const char *s)
{
	uint64_t n;
	return str_to_u64(s, 65535, &n) == 0 && n > 0;
}

/* Asks for the credentials and logs in, three tries at most. */
static void
mc_login(struct mc *mc)
{
	for (unsigned attempt = 1; attempt <= MC_LOGIN_TRIES; attempt++) {
		char *user, *password;
		if (mc_read_line(mc, "Username: ", &user) == 0)
			mc_end_of_input();
		mc_trim(user);
		if (mc_read_password(mc, "Password: ", &password) == 0)
			mc_end_of_input();
		free(mc->user);
		mc->user = user;
		if (mc->password != NULL) {
			explicit_bzero(mc->password, strlen(mc->password));
			free(mc->password);
		}
		mc->password = password;

		char *reply = NULL, *err = NULL;
		bool had_conn = mc->conn != NULL;
		int ret = *user == '\0' ? 0 : mc_imap_login(mc, &reply, &err);
		if (ret < 0 && had_conn) {
			/* The server may have closed the connection while the
			   user typed (login timeout): once more on a new one. */
			free(err);
			err = NULL;
			ret = mc_imap_login(mc, &reply, &err);
		}
		if (ret == 1) {
			free(reply);
			printf("Logged in as %s.\n", mc->user);
			return;
		}
		if (ret < 0) {
			printf("Cannot log in: %s\n", err);
			free(err);
			/* Unreachable server: no point asking again. */
			if (mc->conn == NULL) {
				char *cerr = NULL;
				if (imapc_connect(mc->host, mc->imap_port, mc->timeout_ms, &mc->conn,
						  &cerr) < 0) {
					fprintf(stderr, "mailclient: %s\n", cerr);
					free(cerr);
					exit(1);
				}
				imapc_set_untagged_handler(mc->conn, mc_untagged, mc);
			}
		} else {
			printf("Login failed: wrong username or password.\n");
		}
		free(reply);
		if (attempt < MC_LOGIN_TRIES)
			printf("Please try again (%u of %u tries left).\n", MC_LOGIN_TRIES - attempt,
			       MC_LOGIN_TRIES);
	}
	printf("Too many failed logins.\n");
	fflush(stdout);
	exit(1);
}

int
main(int argc, char **argv)
{
	struct mc mc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			mc_usage(stdout);
			return 0;
		}
	}
	if (argc != 4 || !mc_port_valid(argv[2]) || !mc_port_valid(argv[3])) {
		mc_usage(stderr);
		return 2;
	}

	i_zero(&mc);
	mc.host = argv[1];
	mc.smtp_port = argv[2];
	mc.imap_port = argv[3];
	mc.timeout_ms = MC_DEFAULT_TIMEOUT_S * 1000;
	const char *t = getenv("MAILCLIENT_TIMEOUT");
	uint64_t secs;
	if (t != NULL && str_to_u64(t, 3600, &secs) == 0 && secs > 0)
		mc.timeout_ms = (int)secs * 1000;

	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	i_zero(&sa);
	sa.sa_handler = mc_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	char *err = NULL;
	if (imapc_connect(mc.host, mc.imap_port, mc.timeout_ms, &mc.conn, &err) < 0) {
		fprintf(stderr, "mailclient: IMAP server: %s\n", err);
		free(err);
		return 1;
	}
	imapc_set_untagged_handler(mc.conn, mc_untagged, &mc);
	mc_login(&mc);
	if (mc_select(&mc, &err) < 0) {
		/* Once more on a fresh connection, then give up. */
		free(err);
		err = NULL;
		if (mc_reconnect(&mc, &err) < 0) {
			fprintf(stderr, "mailclient: %s\n", err);
			free(err);
			return 1;
		}
	}

	int status = 1;
	/* One menu choice per round; each round consumes input, so the
	   loop ends at the end of input. */
	for (;;) {
		char *line;
		mc_print("\n1. Send Mail\n2. Manage Mail\n3. Quit\n");
		if (mc_read_line(&mc, "Enter your choice: ", &line) == 0)
			break;
		mc_trim(line);
		int ret = 0;
		if (strcmp(line, "1") == 0) {
			ret = mc_send_mail(&mc);
		} else if (strcmp(line, "2") == 0) {
			ret = mc_manage_mail(&mc);
		} else if (strcmp(line, "3") == 0) {
			free(line);
			status = 0;
			break;
		} else {
			printf("Invalid choice \"%s\": enter 1, 2 or 3.\n", line);
		}
		free(line);
		if (ret < 0)
			break;
	}
	if (status != 0)
		fprintf(stderr, "mailclient: end of input before Quit\n");
	imapc_logout(&mc.conn);
	if (status == 0)
		mc_print("Goodbye.\n");
	mc_notices_flush(&mc);
	mc_msgs_clear(&mc);
	mc_bodies_clear(&mc);
	free(mc.msgs);
	free(mc.bodies);
	buf_free(&mc.in);
	free(mc.user);
	if (mc.password != NULL) {
		explicit_bzero(mc.password, strlen(mc.password));
		free(mc.password);
	}
	fflush(stdout);
	return status;
}
