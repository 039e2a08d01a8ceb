/* imap_client_lib.h: a small blocking IMAP4rev1 client for mailclient.

   One connection, one command at a time. Every network wait (connect,
   each read, each write) is bounded by the connection's timeout through
   poll(); nothing here waits forever. Responses are read whole, literals
   included, and parsed into a tree of imapc_arg; untagged responses go to
   one handler set by the user of the connection.

   Return conventions: functions that run a command return 1 when the
   server said OK, 0 when it said NO or BAD (the server's text in
   *reply_r, malloc'ed), -1 when the connection failed (closed, timed
   out, garbage): the connection is then unusable and should be freed. */
#ifndef IMAP_CLIENT_LIB_H
#define IMAP_CLIENT_LIB_H

#include "lib.h"
#include "buf.h"

enum imapc_arg_type {
	IMAPC_ARG_NIL,
	IMAPC_ARG_ATOM,         /* also numbers and bracketed atoms: BODY[] */
	IMAPC_ARG_STRING,       /* quoted string or literal */
	IMAPC_ARG_LIST,
};

struct imapc_arg {
	enum imapc_arg_type type;
	/* ATOM and STRING: NUL-terminated copy; a literal may hold NULs,
	   len is the true length. NIL and LIST: "" and 0. */
	char *str;
	size_t len;
	/* LIST: its items. */
	struct imapc_arg *list;
	size_t count;
};

/* One response from the server, valid only during the handler call.
   tag: "*" (untagged), "+" (continuation) or the command's tag.
   Status responses (OK, NO, BAD, BYE, PREAUTH, tagged or untagged):
   args[0] is the status word and text the rest of the line (response
   code included). "* 3 FETCH (...)": args = 3, FETCH, (...). Other
   untagged data: args parsed from the line; text is "". */
struct imapc_response {
	const char *tag;
	const struct imapc_arg *args;
	size_t count;
	const char *text;
};

typedef void imapc_untagged_handler_t(const struct imapc_response *resp, void *context);

struct imapc;
struct client_tls;

/* Connects to host:port (a name or an address), reads the greeting and
   learns the capabilities. TLS as tls says (client_tls.h): implicit TLS
   before the greeting, or STARTTLS when the server offers it (then the
   capabilities are asked again). tls is kept and must outlive the
   connection. timeout_ms bounds each wait from now on. Returns 0 or -1
   with *error_r. A PREAUTH or BYE greeting is an error. */
int imapc_connect(const char *host, const char *port, int timeout_ms, const struct client_tls *tls,
		  struct imapc **conn_r, char **error_r);
/* Closes the socket (without LOGOUT) and frees; *conn becomes NULL. */
void imapc_free(struct imapc **conn);
/* Sends LOGOUT, waits (bounded) for the answer, then frees. */
void imapc_logout(struct imapc **conn);

void imapc_set_untagged_handler(struct imapc *conn, imapc_untagged_handler_t *handler,
				void *context);
/* True if the server advertised cap (case-insensitive), e.g. "IDLE". */
bool imapc_has_capability(const struct imapc *conn, const char *cap);
int imapc_fd(const struct imapc *conn);
/* True if decoded input waits inside the connection (TLS) that a poll()
   of imapc_fd() would not show. */
bool imapc_input_pending(const struct imapc *conn);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", or "" without TLS. */
const char *imapc_tls_describe(const struct imapc *conn);
/* True if the TLS in use checked no certificate (--insecure, or
   STARTTLS with a server on this machine, client_tls.h). */
bool imapc_tls_unchecked(const struct imapc *conn);
/* 0 if a password may be sent on this connection (client_tls.h), else
   -1 with *error_r saying why not. */
int imapc_password_check(const struct imapc *conn, char **error_r);

/* Logs in with AUTHENTICATE PLAIN when the server offers it, else LOGIN.
   Returns 1 logged in, 0 refused (the server's words in *reply_r), -1
   connection failed, or the password may not be sent on this connection
   (imapc_password_check). The password is wiped from every buffer used. */
int imapc_login(struct imapc *conn, const char *user, const char *password, char **reply_r,
		char **error_r);

/* A command being built: text plus where its literals start, so a
   synchronizing literal can wait for the server's "+". */
#define IMAPC_MAX_LITERALS 8
struct imapc_cmd {
	struct buf text;
	size_t lit_starts[IMAPC_MAX_LITERALS];
	size_t lit_count;
};

void imapc_cmd_init(struct imapc_cmd *cmd);
void imapc_cmd_append(struct imapc_cmd *cmd, const char *text);
void imapc_cmd_printf(struct imapc_cmd *cmd, const char *fmt, ...) ATTR_FORMAT(2, 3);
/* Appends s as an IMAP string: quoted when it can be, else a literal
   (non-synchronizing when the server has LITERAL+). */
void imapc_cmd_append_string(struct imapc *conn, struct imapc_cmd *cmd, const char *s,
			     size_t len);
/* Wipes and frees the text (it may hold a password). */
void imapc_cmd_clear(struct imapc_cmd *cmd);

/* Sends the command with a fresh tag and reads up to its tagged answer.
   reply_r may be NULL. Returns 1 (OK), 0 (NO/BAD), -1 (connection). */
int imapc_cmd_run(struct imapc *conn, struct imapc_cmd *cmd, char **reply_r, char **error_r);
/* The same for a command of plain text ("UID FETCH 1:* (UID FLAGS)"). */
int imapc_run(struct imapc *conn, const char *text, char **reply_r, char **error_r);

/* IDLE (RFC 2177). imapc_idle_start returns 1 idling, 0 refused, -1.
   While idling, call imapc_idle_input whenever imapc_fd() is readable:
   it reads what is there and dispatches the complete responses (0, or
   -1 if the connection failed). imapc_idle_stop sends DONE and reads
   the tagged answer (1, 0, -1). Responses already buffered when IDLE
   starts are dispatched by imapc_idle_start. */
int imapc_idle_start(struct imapc *conn, char **error_r);
int imapc_idle_input(struct imapc *conn, char **error_r);
int imapc_idle_stop(struct imapc *conn, char **error_r);
bool imapc_is_idling(const struct imapc *conn);

/* Parsing, exposed for the unit tests. imapc_response_size: if buf
   holds at least one complete response (lines and literals), its length
   in *size_r and 1; 0 if more bytes are needed; -1 if malformed.
   imapc_response_parse parses exactly one complete response. */
int imapc_response_size(const char *buf, size_t len, size_t *size_r);
int imapc_response_parse(const char *data, size_t len, struct imapc_response *resp_r,
			 char **error_r);
void imapc_response_free(struct imapc_response *resp);

/* Helpers for handlers: the arg as a string (ATOM or STRING) or NULL,
   as a number (0 or -1), and the first FETCH item named name. */
const char *imapc_arg_str(const struct imapc_arg *arg);
int imapc_arg_u32(const struct imapc_arg *arg, uint32_t *num_r);
const struct imapc_arg *imapc_fetch_item(const struct imapc_arg *fetch_list, const char *name);

#endif
