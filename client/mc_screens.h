/* mc_screens.h: what the mailclient's parts share: its state (struct
   mc, the mirror of the mailbox), the IMAP session and notices
   (mailclient.c), the terminal input (mc_input.c) and the two screens
   Send Mail (mc_send.c) and Manage Mail (mc_manage.c).

   Internal to the mailclient; the unit tests reach its pure parts
   through mc_util.h. */
#ifndef MC_SCREENS_H
#define MC_SCREENS_H

#include "lib.h"
#include "buf.h"
#include "client_tls.h"
#include "mc_edit.h"

struct imapc;

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
	/* The TLS policy of each port; they share one context. */
	struct client_tls imap_tls, smtp_tls;
	/* Their loopback_ctx (client_tls.h), or NULL. */
	struct tls_ctx *loopback_ctx;

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

	/* Without a connection: when to try again in the background (0:
	   nothing planned), and the wait before that try, doubled after
	   each failure up to a bound. */
	int64_t reconnect_at;
	int reconnect_delay_ms;
	bool lost_told;                     /* the user knows it is lost */
	bool waiting;                       /* a prompt is up (mc_read_line) */

	struct buf in;                      /* stdin, not yet consumed */
	bool in_eof;
	const char *prompt;                 /* shown again after a notice */
	/* On a terminal (mc_term_init): keys read but not yet edited (the
	   rest after a completed line waits for the next prompt), and the
	   line being typed. mc->in then gets only whole lines. */
	bool editing;
	struct buf keys;
	struct mc_edit edit;
	/* While a mail is typed, notices wait and are shown after it. */
	bool hold_notices;
};

/* ---- mailclient.c: output, the mirror, the IMAP session */

void mc_print(const char *s);
/* Prints the notices that wait, one line each. Returns how many. */
size_t mc_notices_flush(struct mc *mc);
/* s, or dflt if s is NULL or empty. */
const char *mc_or(const char *s, const char *dflt);
/* The fetched whole mails (mc->bodies): forget them; find one by UID. */
void mc_bodies_clear(struct mc *mc);
const struct mc_body *mc_body_find(const struct mc *mc, uint32_t uid);
/* Runs an IMAP command; a lost connection is re-established once,
   quietly, and the command run again. Returns 1 (OK), 0 (NO/BAD, the
   server's words in *reply_r if not NULL), -1 (no connection: the user
   was told, and tries go on in the background). */
int mc_imap(struct mc *mc, const char *text, char **reply_r);
/* Fetches the headers of the messages that arrived (uid still 0) and
   announces the new ones. */
void mc_announce_new(struct mc *mc);
/* The connection failed while we waited for input (error is freed):
   reconnect quietly a moment later, then in the background with
   growing waits (at most 30 s apart) until it is back. */
void mc_conn_failed(struct mc *mc, char *error);
/* The moment to reconnect came: reconnect (announcing it is back if
   the user was told it was lost), or tell the user once and plan the
   next try. */
void mc_reconnect_due(struct mc *mc);

/* ---- mc_input.c: the terminal */

/* When stdin is a terminal: the client edits the lines itself
   (mc_edit.h), so a notice never splits what is being typed; the
   terminal is restored at exit. */
void mc_term_init(struct mc *mc);
/* Signal handler: restores the terminal, exits 128 + sig. */
void mc_on_signal(int sig);
/* Prints prompt and reads one line, while the IMAP connection is
   watched and its notices printed (unless mc->hold_notices), each on a
   line of its own, then the prompt and what was typed of the line
   again. Returns 1 with *line_r (malloc'ed), or 0 at the end of
   input. */
int mc_read_line(struct mc *mc, const char *prompt, char **line_r);
/* mc_read_line without echo when stdin is a terminal. */
int mc_read_password(struct mc *mc, const char *prompt, char **line_r);
/* Says so on stderr and exits 1. */
void mc_end_of_input(void) ATTR_NORETURN;

/* ---- the screens: 0 when done, -1 at the end of input */

int mc_send_mail(struct mc *mc);     /* mc_send.c */
int mc_manage_mail(struct mc *mc);   /* mc_manage.c */

#endif
