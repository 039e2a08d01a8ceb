/* smtp_private.h: what the files of the SMTP engine share (smtp.c, the
   commands and the state machine; smtp_path.c, the MAIL and RCPT paths).
   Not for use outside core/smtp: the contract is smtp.h.

   Include smtp.h before this header: it does not include smtp.h itself,
   since smtp.c includes it (two headers that include each other's module
   are a loop to tests/layering.sh). */
#ifndef SMTP_PRIVATE_H
#define SMTP_PRIVATE_H

/* The line buffer holds the longest allowed line with its CRLF (an AUTH
   line is the longest); a line that does not fit is too long in any
   mode. */
#define SMTP_LINE_BUF SMTP_AUTH_LINE_MAX

enum smtp_state {
	SMTP_ST_COMMAND,
	SMTP_ST_DATA,
	SMTP_ST_WAIT_RCPT,     /* SMTP_EVENT_RCPT returned, no answer yet */
	SMTP_ST_WAIT_DELIVER,  /* SMTP_EVENT_DELIVER returned, no answer yet */
	SMTP_ST_WAIT_STARTTLS, /* SMTP_EVENT_STARTTLS returned, no answer yet */
	SMTP_ST_AUTH,          /* an AUTH exchange awaits a response line */
	SMTP_ST_WAIT_AUTH,     /* SMTP_EVENT_AUTH returned, no answer yet */
	SMTP_ST_CLOSED,
};

/* What the response line of an AUTH exchange is. */
enum smtp_auth_step {
	SMTP_AUTH_STEP_PLAIN,      /* PLAIN's whole response */
	SMTP_AUTH_STEP_LOGIN_USER, /* LOGIN's user name */
	SMTP_AUTH_STEP_LOGIN_PASS, /* LOGIN's password */
};

struct smtp_session {
	struct smtp_settings set;
	char *peer_ip;
	char *id_prefix;
	enum smtp_state state;

	/* The line being assembled: line_len octets stored (LF included
	   once complete), line_total octets seen. */
	char line[SMTP_LINE_BUF + 1];
	size_t line_len;
	uint64_t line_total;
	bool last_was_cr; /* the octet before the current one was CR */
	bool line_crlf;   /* the completed line ended in CRLF */

	char *helo; /* NULL until HELO/EHLO */
	bool esmtp; /* EHLO (not HELO) */
	unsigned bad_count;

	bool tls;   /* implicit TLS, or STARTTLS answered */
	char *user; /* logged in by AUTH, else NULL */
	unsigned auth_failures;
	/* An AUTH exchange: what the next response line is, the user name
	   and password given so far (the password wiped when freed). */
	enum smtp_auth_step auth_step;
	char *auth_user, *auth_pass;

	/* The mail transaction. */
	bool in_txn;
	char *mail_from;
	struct strlist rcpt_users;
	unsigned rcpt_count; /* accepted RCPT commands (duplicates too) */
	char *first_rcpt;    /* the first accepted forward-path, for "for <...>" */
	char *pending_user, *pending_path;

	/* DATA */
	struct buf msg;     /* trace headers, then the data */
	uint64_t data_size; /* unstuffed octets of data, CRLF line ends */
	bool data_too_big;
	bool data_line_too_long;
	bool data_has_nul;
	bool prev_crlf; /* the previous text line ended in CRLF */
	unsigned txn_count;
	char id[128];
};

/* Appends one reply line (CRLF added). */
void ATTR_FORMAT(2, 3) smtp_reply(struct buf *out, const char *fmt, ...);
/* Writes a 5xx reply for a bad command and counts it. Returns
   SMTP_EVENT_CLOSE (after a 421) once there were too many. */
enum smtp_event ATTR_FORMAT(3, 4)
	smtp_reply_bad(struct smtp_session *s, struct buf *out, const char *fmt, ...);

/* AUTH (smtp_auth.c) */

/* AUTH mechanism [initial-response] on a submission port. */
enum smtp_event smtp_cmd_auth(struct smtp_session *s, const char *args, struct buf *out);
/* A response line of the exchange in s->line (content_len octets;
   stored_whole false if it was too long to keep). */
enum smtp_event smtp_auth_response(struct smtp_session *s, size_t content_len, bool stored_whole,
				   struct buf *out);
/* True if AUTH may be used now (a submission port; TLS, or a password
   may be sent in clear here). */
bool smtp_auth_allowed(const struct smtp_session *s);
/* Ends an AUTH exchange: wipes and frees what it was given. */
void smtp_auth_forget(struct smtp_session *s);

/* Paths (smtp_path.c) */

struct smtp_path {
	char *addr;   /* local@domain as written, "" for "<>" */
	char *user;   /* the local part, unquoted */
	char *domain; /* lower case; NULL for "<postmaster>" */
};

void smtp_path_free(struct smtp_path *path);
/* Parses "<" [source-route ":"] mailbox ">" at *pp and moves *pp past it.
   allow_null: "<>" is valid (reverse-path); allow_postmaster: "<postmaster>"
   without domain is valid (RFC 5321 4.5.1). Returns 0, or -1 for bad
   syntax or a path over the limits. */
int smtp_path_parse(const char **pp, bool allow_null, bool allow_postmaster,
		    struct smtp_path *path_r);
/* "FROM:" / "TO:" (case-insensitive), then optional blanks. Returns the
   text after them, or NULL. */
const char *smtp_skip_prefix(const char *args, const char *prefix);
/* One ESMTP parameter at *pp: keyword [= value]. Copies the keyword and
   value (NUL-terminated) into the given buffers. Returns 0 or -1. */
int smtp_param_parse(const char **pp, char *key, size_t key_size, char *value, size_t value_size);

#endif
