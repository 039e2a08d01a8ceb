/* smtp.h: the SMTP protocol engine of smtpmail (RFC 5321, with the ESMTP
   extensions SIZE, 8BITMIME, PIPELINING and ENHANCEDSTATUSCODES).

   A resumable state machine without sockets or storage: it is fed the
   octets a client sent, in pieces of any size (one octet at a time works),
   writes its replies to a buffer, and stops when the caller has to decide
   something: does a local recipient exist (SMTP_EVENT_RCPT), deliver a
   complete message (SMTP_EVENT_DELIVER). smtp_server.c drives it on the
   event loop; tests/test_smtp.c drives it from memory.

   Pipelining (RFC 2920): smtp_session_feed() consumes whole commands in
   order and answers each one in order; it stops after the command that
   raised an event and reports how many octets it consumed, so the caller
   keeps the rest and feeds it again after answering. Nothing is dropped.

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
   220 greeting, the replies to HELO and EHLO, and 354, as RFC 2034 says. */
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
};

enum smtp_rcpt_answer {
	SMTP_RCPT_OK,       /* 250 2.1.5 */
	SMTP_RCPT_UNKNOWN,  /* 550 5.1.1 */
	SMTP_RCPT_TEMPFAIL, /* 451 4.3.0 */
};

enum smtp_deliver_result {
	SMTP_DELIVER_OK,       /* 250 2.0.0: stored durably for every recipient */
	SMTP_DELIVER_TEMPFAIL, /* 451 4.3.0 */
	SMTP_DELIVER_NO_SPACE, /* 452 4.3.1 */
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

/* True while message data is being received (for the data timeout). */
bool smtp_session_in_data(const struct smtp_session *s);
/* Writes "421 4.4.2 ..." (timeout) and ends the session. */
void smtp_session_timeout(struct smtp_session *s, struct buf *out);

#endif
