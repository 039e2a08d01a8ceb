/* smtp_client.h: sends one mail over SMTP (RFC 5321): EHLO (HELO if
   refused), STARTTLS (RFC 3207) and EHLO again when the TLS policy says
   so (client_tls.h), or implicit TLS from the first byte (RFC 8314);
   AUTH PLAIN or LOGIN (RFC 4954) when the server offers AUTH and the
   password may be sent; MAIL FROM, RCPT TO for each recipient, DATA
   with dot-stuffing, QUIT. Every wait is bounded by a timeout. */
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

struct client_tls;

struct smtpc_settings {
	const char *host, *port;
	int timeout_ms;                 /* bounds each wait */
	const char *helo_name;          /* the name given in EHLO */
	const struct client_tls *tls;   /* when to use TLS and send a password */
	/* The login for AUTH when the server offers it (a submission
	   port); user NULL: never authenticate. */
	const char *user, *password;
};

/* Sends mail as set says. Returns 1 if the server accepted the mail
   (*verdict_r: its final reply, e.g. "250 2.0.0 Ok: queued"), 0 if the
   server refused it or the login (*verdict_r: which step and the
   server's reply; when AUTH was skipped because the password may not go
   in clear, why), -1 if the connection or TLS failed (*error_r). The
   strings are malloc'ed. */
int smtpc_send(const struct smtpc_settings *set, const struct smtpc_mail *mail,
	       char **verdict_r, char **error_r);

/* Appends data to out as DATA wants it: CRLF line ends, a '.' in front
   of each line that starts with '.', a CRLF at the end if missing, and
   the final ".\r\n". */
void smtpc_dot_stuff(const char *data, size_t len, struct buf *out);

/* Parses one complete SMTP reply at the start of buf (all lines of a
   multiline reply). Returns 1 with the code and the reply's length, 0
   if more bytes are needed, -1 if it is malformed. */
int smtpc_reply_parse(const char *buf, size_t len, unsigned *code_r, size_t *size_r);

/* Adds the text of each line of a complete reply (size octets, as
   smtpc_reply_parse measured it) to lines, without the code, the
   separator and the line end: "250-STARTTLS\r\n" gives "STARTTLS". */
void smtpc_reply_lines(const char *reply, size_t size, struct strlist *lines);

/* True if an EHLO extension line (smtpc_reply_lines, the greeting line
   left out) has keyword, and param among its parameters when param is
   not NULL: smtpc_ehlo_has(ext, "AUTH", "PLAIN"). Case-insensitive. */
bool smtpc_ehlo_has(const struct strlist *ext, const char *keyword, const char *param);

#endif
