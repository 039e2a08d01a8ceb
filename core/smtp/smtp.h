/* smtp.h: the SMTP protocol engine of smtpmail (RFC 5321, with the ESMTP
   extensions SIZE, 8BITMIME, PIPELINING and ENHANCEDSTATUSCODES, STARTTLS
   (RFC 3207) and, on the submission ports (RFC 6409), AUTH PLAIN and
   LOGIN (RFC 4954)).

   A resumable state machine without sockets or storage: it is fed the
   octets a client sent, in pieces of any size (one octet at a time works),
   writes its replies to a buffer, and stops when the caller has to decide
   something: does a local recipient exist (SMTP_EVENT_RCPT), deliver a
   complete message (SMTP_EVENT_DELIVER), start TLS (SMTP_EVENT_STARTTLS),
   check a password (SMTP_EVENT_AUTH). smtp_server.c drives it on the
   event loop; tests/test_smtp.c drives it from memory.

   Pipelining (RFC 2920): smtp_session_feed() consumes whole commands in
   order and answers each one in order; it stops after the command that
   raised an event and reports how many octets it consumed, so the caller
   keeps the rest and feeds it again after answering. Nothing is dropped
   here, but the caller drops what follows STARTTLS (below).

   Line ends and limits (RFC 5321 4.5.3.1):
   - Command lines end in CRLF; a bare LF is accepted as well. A command
     line may be 512 octets with its CRLF (MAIL: 512 + 26 for SIZE= and 15
     for BODY=8BITMIME). A longer one is answered "500 5.5.2" once its LF
     arrives (the octets in between are not stored).
   - DATA text lines may be 1000 octets with their CRLF. A message with a
     longer line is refused at its end with "554 5.6.0" and not stored (552
     and 554 are the replies RFC 5321 4.3.2 allows after DATA; X.6.0 is
     RFC 3463's code for content the server cannot take).
   - A DATA line ending in a bare LF is taken as a line (stored with CRLF),
     but the message ends only at CRLF "." CRLF: "LF . LF" or "LF . CRLF"
     never ends it. A client that sends bare LFs throughout therefore never
     ends its message (it times out); in exchange nothing that another
     server would read as message text can end a message here early (SMTP
     smuggling). Every common client (smtplib, swaks, mutt, our mailclient)
     sends CRLF.
   - Dot-unstuffing: a DATA line "." + text loses its first "." (4.5.2).
   - Over max_message_size, the data is counted but no longer kept, and
     the message is refused with "552 5.3.4" at its end: nothing is stored.
   - A message holding a NUL octet is refused at its end with "554 5.6.0"
     and not stored (RFC 5322 allows no NUL in a message, RFC 3501 none in
     the IMAP literal it would later be read through).

   Enhanced status codes (RFC 2034, RFC 3463) are on every reply but the
   220 greeting, the replies to HELO and EHLO, and 354, as RFC 2034 says.

   STARTTLS (RFC 3207), offered in EHLO while set.starttls and the channel
   is not TLS yet: "STARTTLS" with no argument, outside a mail
   transaction, raises SMTP_EVENT_STARTTLS and consumes nothing after the
   command's line end: what the client pipelined behind it was sent in
   clear and the caller drops it (connection_start_layer()). The answer
   "220 2.0.0" resets the session as RFC 3207 4.2 asks (the EHLO name, the
   transaction and a login are forgotten; the client must EHLO again).
   STARTTLS again: 503 5.5.1; with an argument: 501 5.5.4.

   AUTH (RFC 4954), on submission ports only (set.submission; elsewhere
   the command is not implemented, 502): mechanisms PLAIN (RFC 4616) and
   LOGIN, each with or without an initial response ("=" is an empty one).
   Before TLS it is offered and accepted only if set.plaintext_auth, else
   "538 5.7.11". A response "*" cancels (501 5.7.0), bad base64 is 501
   5.5.2, a response line over SMTP_AUTH_LINE_MAX is 500 5.5.6. A complete
   user name and password raise SMTP_EVENT_AUTH; the caller checks them
   and answers 235 2.7.0, 535 5.7.8 or 454 4.7.0. After
   set.max_auth_failures failures "421 4.7.0" ends the session. AUTH
   after a successful AUTH, or during a transaction: 503 5.5.1.

   Submission (set.submission): MAIL before AUTH is "530 5.7.0
   Authentication required"; the reverse-path must be the user's own
   address (user@ a local domain, the domain case-insensitive; "<>" is
   refused too), else "553 5.7.1"; a recipient outside the local domains
   is "550 5.7.1 Relaying denied" (there is no relay host). The Received
   header says "ESMTPSA" / "ESMTPA" for an authenticated session and
   "ESMTPS" for one over TLS (RFC 3848). */
#ifndef SMTP_H
#define SMTP_H

#include "lib.h"
#include "buf.h"

/* RFC 5321 4.5.3.1 */
#define SMTP_CMD_LINE_MAX 512
#define SMTP_MAIL_LINE_MAX (SMTP_CMD_LINE_MAX + 26 + 15)
#define SMTP_TEXT_LINE_MAX 1000
#define SMTP_PATH_MAX 256
#define SMTP_LOCAL_PART_MAX 64
#define SMTP_DOMAIN_MAX 255
/* An AUTH command or response line with its CRLF. RFC 4954 4 allows
   12288; this is enough for the longest user name (255) and password
   (1024) the auth wrappers take, in PLAIN's base64. */
#define SMTP_AUTH_LINE_MAX 4096

struct smtp_settings {
	/* Announced in the greeting, EHLO and the Received header. */
	const char *hostname;
	/* The local domains, lower case ("localhost", "[127.0.0.1]"):
	   recipients elsewhere get 550 5.7.1 (no relaying). */
	const struct strlist *domains;
	uint64_t max_message_size; /* advertised with SIZE */
	unsigned max_recipients;   /* accepted RCPTs per message */
	/* 500/501/503/555 replies before "421 4.7.0" ends the session. */
	unsigned max_bad_commands;
	/* STARTTLS is offered (a certificate is configured). */
	bool starttls;
	/* The channel is TLS from the start (implicit TLS, RFC 8314). */
	bool tls;
	/* A submission port (RFC 6409): AUTH offered and required. */
	bool submission;
	/* AUTH is allowed before TLS (auth.plaintext, for this peer). */
	bool plaintext_auth;
	/* Failed AUTHs before "421 4.7.0" ends the session (0: 3). */
	unsigned max_auth_failures;
};

enum smtp_event {
	/* Everything given was consumed: feed more when it arrives. */
	SMTP_EVENT_NONE = 0,
	/* A RCPT names local user smtp_session_rcpt_user(): answer with
	   smtp_session_rcpt_answer() before feeding again. */
	SMTP_EVENT_RCPT,
	/* A message is complete: store smtp_session_message() for every user
	   of smtp_session_recipients(), then smtp_session_deliver_answer(). */
	SMTP_EVENT_DELIVER,
	/* The session is over (QUIT, too many errors): send what was written,
	   then close. Feeding again consumes nothing. */
	SMTP_EVENT_CLOSE,
	/* STARTTLS was accepted: drop the input that follows it, call
	   smtp_session_starttls_answer(), and start TLS once the reply is
	   written. */
	SMTP_EVENT_STARTTLS,
	/* AUTH gave smtp_session_auth_user() and smtp_session_auth_password():
	   check them and answer with smtp_session_auth_answer(). */
	SMTP_EVENT_AUTH,
};

enum smtp_rcpt_answer {
	SMTP_RCPT_OK,       /* 250 2.1.5 */
	SMTP_RCPT_UNKNOWN,  /* 550 5.1.1 */
	SMTP_RCPT_TEMPFAIL, /* 451 4.3.0 */
	SMTP_RCPT_FULL,     /* 452 4.2.2: the user's quota is used up (RFC 3463) */
};

enum smtp_deliver_result {
	SMTP_DELIVER_OK,       /* 250 2.0.0: stored durably for every recipient */
	SMTP_DELIVER_TEMPFAIL, /* 451 4.3.0 */
	SMTP_DELIVER_NO_SPACE, /* 452 4.3.1 */
	SMTP_DELIVER_FULL,     /* 452 4.2.2: no recipient's quota has room for it */
};

enum smtp_auth_answer {
	SMTP_AUTH_OK,       /* 235 2.7.0 */
	SMTP_AUTH_FAIL,     /* 535 5.7.8 (the caller delays it) */
	SMTP_AUTH_TEMPFAIL, /* 454 4.7.0 */
};

struct smtp_session;

/* set (copied; the strings it points to must outlive the session), the
   client's address as text ("127.0.0.1", "::1") and a prefix that makes
   the message ids of this session unique (e.g. time, pid, session). */
struct smtp_session *smtp_session_new(const struct smtp_settings *set, const char *peer_ip,
				      const char *id_prefix);
void smtp_session_free(struct smtp_session **session);

/* Writes the 220 greeting. */
void smtp_session_greet(struct smtp_session *s, struct buf *out);

/* Feeds len octets of input; sets *consumed_r to how many were used (all
   of them unless an event is returned) and appends the replies to out.
   While an event waits for its answer, returns it again and consumes
   nothing. */
enum smtp_event smtp_session_feed(struct smtp_session *s, const char *data, size_t len,
				  size_t *consumed_r, struct buf *out);

/* SMTP_EVENT_RCPT: the local user named by the pending RCPT. */
const char *smtp_session_rcpt_user(const struct smtp_session *s);
void smtp_session_rcpt_answer(struct smtp_session *s, enum smtp_rcpt_answer answer,
			      struct buf *out);

/* SMTP_EVENT_DELIVER: the message as it is to be stored (Return-Path and
   Received headers, then the data, dot-unstuffed, CRLF line ends), its
   local recipients (distinct users, in RCPT order), the reverse-path ("",
   for "<>") and the id named in the Received header. */
const char *smtp_session_message(const struct smtp_session *s, size_t *len_r);
const struct strlist *smtp_session_recipients(const struct smtp_session *s);
const char *smtp_session_mail_from(const struct smtp_session *s);
const char *smtp_session_message_id(const struct smtp_session *s);
/* Answers the delivery and ends the mail transaction. */
void smtp_session_deliver_answer(struct smtp_session *s, enum smtp_deliver_result result,
				 struct buf *out);

/* SMTP_EVENT_STARTTLS: writes "220 2.0.0 Ready to start TLS" and
   resets the session; from now on the channel counts as TLS. */
void smtp_session_starttls_answer(struct smtp_session *s, struct buf *out);

/* SMTP_EVENT_AUTH: the user name and the password given (NULL when no
   AUTH waits; the password is wiped once answered). */
const char *smtp_session_auth_user(const struct smtp_session *s);
const char *smtp_session_auth_password(const struct smtp_session *s);
/* Answers the check. Returns SMTP_EVENT_CLOSE when that was one failure
   too many (a 421 follows the 535: send what was written, then close),
   else SMTP_EVENT_NONE. */
enum smtp_event smtp_session_auth_answer(struct smtp_session *s, enum smtp_auth_answer answer,
					 struct buf *out);
/* The user a successful AUTH logged in, or NULL. */
const char *smtp_session_user(const struct smtp_session *s);
/* True once the channel is TLS (implicit, or STARTTLS answered). */
bool smtp_session_is_tls(const struct smtp_session *s);

/* True while message data is being received (for the data timeout). */
bool smtp_session_in_data(const struct smtp_session *s);
/* Writes "421 4.4.2 ..." (timeout) and ends the session. */
void smtp_session_timeout(struct smtp_session *s, struct buf *out);

#endif
