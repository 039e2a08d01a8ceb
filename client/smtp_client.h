/* smtp_client.h: sends one mail over SMTP (RFC 5321): EHLO (HELO if
   refused), MAIL FROM, RCPT TO for each recipient, DATA with dot-stuffing,
   QUIT. Every wait is bounded by a timeout. */
#ifndef SMTP_CLIENT_H
#define SMTP_CLIENT_H

#include "lib.h"
#include "buf.h"

struct smtpc_mail {
	const char *from;               /* envelope sender: user@domain */
	const char *const *to;          /* envelope recipients */
	size_t to_count;
	const char *data;               /* the whole message, LF or CRLF, not stuffed */
	size_t data_len;
};

/* Sends mail to host:port. helo_name is the name given in EHLO.
   Returns 1 if the server accepted the mail (*verdict_r: its final
   reply, e.g. "250 2.0.0 Ok: queued"), 0 if the server refused it
   (*verdict_r: which step and the server's reply), -1 if the connection
   failed (*error_r). The strings are malloc'ed. */
int smtpc_send(const char *host, const char *port, int timeout_ms, const char *helo_name,
	       const struct smtpc_mail *mail, char **verdict_r, char **error_r);

/* Appends data to out as DATA wants it: CRLF line ends, a '.' in front
   of each line that starts with '.', a CRLF at the end if missing, and
   the final ".\r\n". */
void smtpc_dot_stuff(const char *data, size_t len, struct buf *out);

/* Parses one complete SMTP reply at the start of buf (all lines of a
   multiline reply). Returns 1 with the code and the reply's length, 0
   if more bytes are needed, -1 if it is malformed. */
int smtpc_reply_parse(const char *buf, size_t len, unsigned *code_r, size_t *size_r);

#endif
