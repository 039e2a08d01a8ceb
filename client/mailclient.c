/* mailclient.c: the lab's interactive mail client.

	mailclient [--tls | --imap-tls | --smtp-tls] [--starttls] [--ca-file FILE]
		   [--insecure] [--allow-plaintext] SERVER_IP SMTP_PORT IMAP_PORT

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

   TLS (client_tls.h): STARTTLS whenever a server offers it, or implicit
   TLS by option; certificates are checked against the system's CAs or
   --ca-file; a password never crosses a network in clear unless
   --allow-plaintext says so.

   Prompts go to stdout, input comes from stdin (a terminal, a pipe or a
   pty). Exit status: 0 after Quit, 1 on end of input or a fatal error,
   2 on a usage error.

   This file: main(), the login, the menu, the mirror and the IMAP
   session. The terminal input is in mc_input.c, the screens in
   mc_send.c and mc_manage.c; what they share in mc_screens.h. */
#include "lib.h"
#include "buf.h"
#include "client_tls.h"
#include "imap_client_lib.h"
#include "mc_options.h"
#include "mc_screens.h"
#include "mc_util.h"
#include "message.h"
#include "tls.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MC_DEFAULT_TIMEOUT_S 30
#define MC_LOGIN_TRIES 3
#define MC_MAX_MESSAGES 10000000u           /* sequence numbers we mirror */
#define MC_RECONNECT_DELAY_MS 1500          /* after a drop noticed while waiting */
#define MC_RECONNECT_MAX_MS (30 * 1000)     /* the longest wait between tries */
#define MC_RECONNECT_TIMEOUT_MS (5 * 1000)  /* one try in the background */

/* ------------------------------------------------------------ output */

void
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
size_t
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

const char *
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

void
mc_bodies_clear(struct mc *mc)
{
	for (size_t i = 0; i < mc->body_count; i++)
		free(mc->bodies[i].data);
	mc->body_count = 0;
}

const struct mc_body *
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

/* Connects (TLS as mc->imap_tls says) to the IMAP server. Returns 0
   or -1 with *error_r. */
static int
mc_imap_connect(struct mc *mc, char **error_r)
{
	if (imapc_connect(mc->host, mc->imap_port, mc->timeout_ms, &mc->imap_tls, &mc->conn,
			  error_r) < 0)
		return -1;
	imapc_set_untagged_handler(mc->conn, mc_untagged, mc);
	return 0;
}

/* Connects and logs in. Returns 1, 0 (wrong credentials, *reply_r), -1. */
static int
mc_imap_login(struct mc *mc, char **reply_r, char **error_r)
{
	if (mc->conn == NULL && mc_imap_connect(mc, error_r) < 0)
		return -1;
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
   When the user was told it was lost (mc->lost_told), says it is back
   before what changed meanwhile. Returns 0 or -1 with *error_r. */
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
	if (ret == 1 && mc->lost_told) {
		mc_notice_add(mc, "The connection to the IMAP server is back.");
		mc->lost_told = false;
	}
	if (ret == 1) {
		mc->reconnect_delay_ms = 0;
		if (was_loaded)
			mc_announce_diff(mc, old, old_count, old_validity);
	}
	for (size_t i = 0; i < old_count; i++)
		mc_msg_clear(&old[i]);
	free(old);
	return ret == 1 ? 0 : -1;
}

/* Plans the next try in the background, each wait twice the one
   before, up to MC_RECONNECT_MAX_MS. */
static void
mc_plan_reconnect(struct mc *mc)
{
	if (mc->reconnect_delay_ms == 0)
		mc->reconnect_delay_ms = MC_RECONNECT_DELAY_MS;
	else if (mc->reconnect_delay_ms < MC_RECONNECT_MAX_MS / 2)
		mc->reconnect_delay_ms *= 2;
	else
		mc->reconnect_delay_ms = MC_RECONNECT_MAX_MS;
	mc->reconnect_at = mono_ms() + mc->reconnect_delay_ms;
}

/* Tells the user the connection is lost (once until it is back) and
   plans the next try. At a prompt (mc->waiting) the words go with the
   notices, on a line of their own with the prompt again after them;
   otherwise they are printed now. */
static void
mc_tell_lost(struct mc *mc, const char *error)
{
	static const char fmt[] = "The connection to the IMAP server was lost and could not "
				  "be re-established: %s. Trying again in the background.";

	if (mc->waiting) {
		if (!mc->lost_told)
			mc_notice_add(mc, fmt, error);
	} else {
		printf(fmt, error);
		putc('\n', stdout);
		fflush(stdout);
	}
	mc->lost_told = true;
	mc_plan_reconnect(mc);
}

/* Runs an IMAP command; a lost connection is re-established once,
   quietly, and the command run again. Returns 1 (OK), 0 (NO/BAD, the
   server's words in *reply_r if not NULL), -1 (no connection: the user
   was told). */
int
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
	mc_tell_lost(mc, err != NULL ? err : "unknown error");
	free(err);
	return -1;
}

/* Fetches the headers of the messages that arrived (uid still 0) and
   announces the new ones. */
void
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
   a moment later (mc_wait_input), and again in the background with
   growing waits as long as that fails. */
void
mc_conn_failed(struct mc *mc, char *error)
{
	free(error);
	imapc_free(&mc->conn);
	mc->reconnect_delay_ms = 0;
	mc_plan_reconnect(mc);
}

void
mc_reconnect_due(struct mc *mc)
{
	char *err = NULL;
	int timeout_ms = mc->timeout_ms;

	mc->reconnect_at = 0;
	if (mc->conn != NULL)
		return;
	/* The user may be typing: a try does not hold them up long. */
	if (mc->timeout_ms > MC_RECONNECT_TIMEOUT_MS)
		mc->timeout_ms = MC_RECONNECT_TIMEOUT_MS;
	int ret = mc_reconnect(mc, &err);
	mc->timeout_ms = timeout_ms;
	if (ret < 0) {
		mc_tell_lost(mc, err);
		free(err);
	}
}

/* ------------------------------------------------------------ start */

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
				if (mc_imap_connect(mc, &cerr) < 0) {
					fprintf(stderr, "mailclient: %s\n", cerr);
					free(cerr);
					exit(1);
				}
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

/* The menu, one choice per round; each round consumes input, so the
   loop ends at the end of input. Returns 0 after Quit, 1 at the end of
   input. */
static int
mc_menu(struct mc *mc)
{
	for (;;) {
		char *line;
		mc_print("\n1. Send Mail\n2. Manage Mail\n3. Quit\n");
		if (mc_read_line(mc, "Enter your choice: ", &line) == 0)
			return 1;
		mc_trim(line);
		int ret = 0;
		if (strcmp(line, "1") == 0) {
			ret = mc_send_mail(mc);
		} else if (strcmp(line, "2") == 0) {
			ret = mc_manage_mail(mc);
		} else if (strcmp(line, "3") == 0) {
			free(line);
			return 0;
		} else {
			printf("Invalid choice \"%s\": enter 1, 2 or 3.\n", line);
		}
		free(line);
		if (ret < 0)
			return 1;
	}
}

/* Frees what mc holds (the connection is already closed); the
   password is wiped first. */
static void
mc_free(struct mc *mc)
{
	mc_msgs_clear(mc);
	mc_bodies_clear(mc);
	free(mc->msgs);
	free(mc->bodies);
	buf_free(&mc->in);
	buf_free(&mc->keys);
	mc_edit_free(&mc->edit);
	free(mc->user);
	if (mc->password != NULL) {
		explicit_bzero(mc->password, strlen(mc->password));
		free(mc->password);
	}
}

/* The TLS context both ports share, and each port's policy, from the
   options. Returns 0 or -1 with *error_r. */
static int
mc_setup_tls(struct mc *mc, const struct mc_options *o, struct tls_ctx **ctx_r, char **error_r)
{
	bool required = o->imap_mode != CLIENT_TLS_AUTO || o->smtp_mode != CLIENT_TLS_AUTO;
	char *err = NULL;

	*ctx_r = NULL;
	if (tls_client_ctx_new(o->ca_file, !o->insecure, ctx_r, &err) < 0) {
		if (required || o->ca_file != NULL) {
			*error_r = err;
			return -1;
		}
		/* Built without TLS: STARTTLS cannot be used, and the
		   password rule still holds. */
		free(err);
	}
	/* STARTTLS that is only offered, with a server on this machine:
	   no certificate check (client_tls.h), so that make run's
	   self-signed certificate does not stop the lab. */
	if (*ctx_r != NULL && o->ca_file == NULL && !o->insecure &&
	    (o->imap_mode == CLIENT_TLS_AUTO || o->smtp_mode == CLIENT_TLS_AUTO) &&
	    tls_client_ctx_new(NULL, false, &mc->loopback_ctx, &err) < 0) {
		*error_r = err;
		return -1;
	}
	struct client_tls base = {
		.ctx = *ctx_r,
		.loopback_ctx = mc->loopback_ctx,
		.allow_plaintext = o->allow_plaintext,
		.insecure = o->insecure,
		.ca_file = o->ca_file,
	};
	mc->imap_tls = base;
	mc->imap_tls.mode = o->imap_mode;
	mc->smtp_tls = base;
	mc->smtp_tls.mode = o->smtp_mode;
	if (o->insecure)
		fprintf(stderr, "mailclient: warning: --insecure: the servers' certificates are "
				"not checked; anyone on the way can read your password and mail\n");
	return 0;
}

/* Says over what the IMAP connection runs; a password about to go in
   clear to a server on the network is refused here, before it is typed
   (unless --allow-plaintext). Returns 0 or -1 with *error_r. */
static int
mc_tell_security(struct mc *mc, char **error_r)
{
	const char *tls = imapc_tls_describe(mc->conn);

	if (*tls != '\0') {
		printf("Connected to %s port %s over TLS (%s%s).\n", mc->host, mc->imap_port, tls,
		       !imapc_tls_unchecked(mc->conn) ? "" :
		       mc->imap_tls.insecure	     ? ", certificate NOT checked" :
						       ", a server on this machine: certificate "
						       "not checked");
		return 0;
	}
	if (imapc_password_check(mc->conn, error_r) < 0)
		return -1;
	if (mc->imap_tls.allow_plaintext)
		fprintf(stderr, "mailclient: warning: no TLS with %s port %s: the password goes "
				"in clear (--allow-plaintext)\n", mc->host, mc->imap_port);
	return 0;
}

int
main(int argc, char **argv)
{
	struct mc mc;
	struct mc_options opts;
	struct tls_ctx *tls_ctx = NULL;
	char *err = NULL;

	int pret = mc_options_parse(argc, argv, &opts, &err);
	if (pret == 1) {
		mc_options_usage(stdout, MC_DEFAULT_TIMEOUT_S);
		return 0;
	}
	if (pret < 0) {
		fprintf(stderr, "mailclient: %s\n", err);
		free(err);
		mc_options_usage(stderr, MC_DEFAULT_TIMEOUT_S);
		return 2;
	}

	i_zero(&mc);
	mc.host = opts.host;
	mc.smtp_port = opts.smtp_port;
	mc.imap_port = opts.imap_port;
	mc.timeout_ms = MC_DEFAULT_TIMEOUT_S * 1000;
	const char *t = getenv("MAILCLIENT_TIMEOUT");
	uint64_t secs;
	if (t != NULL && str_to_u64(t, 3600, &secs) == 0 && secs > 0)
		mc.timeout_ms = (int)secs * 1000;
	if (mc_setup_tls(&mc, &opts, &tls_ctx, &err) < 0) {
		fprintf(stderr, "mailclient: %s\n", err);
		free(err);
		return 1;
	}

	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	i_zero(&sa);
	sa.sa_handler = mc_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	mc_term_init(&mc);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	if (mc_imap_connect(&mc, &err) < 0 || mc_tell_security(&mc, &err) < 0) {
		fprintf(stderr, "mailclient: IMAP server: %s\n", err);
		free(err);
		imapc_free(&mc.conn);
		tls_ctx_unref(&tls_ctx);
		tls_ctx_unref(&mc.loopback_ctx);
		return 1;
	}
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

	int status = mc_menu(&mc);
	if (status != 0)
		fprintf(stderr, "mailclient: end of input before Quit\n");
	imapc_logout(&mc.conn);
	if (status == 0)
		mc_print("Goodbye.\n");
	mc_notices_flush(&mc);
	mc_free(&mc);
	tls_ctx_unref(&tls_ctx);
	tls_ctx_unref(&mc.loopback_ctx);
	fflush(stdout);
	return status;
}
