/* imap_client_lib.c: a small blocking IMAP4rev1 client (see the header);
   the parsing of responses is in imap_client_parse.c. */
#include "imap_client_lib.h"
#include "base64.h"
#include "client_tls.h"
#include "netio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define IMAPC_LOGOUT_TIMEOUT_MS 2000

struct imapc {
	struct netio *nio;
	const struct client_tls *tls;
	char *host;
	int timeout_ms;
	struct buf in;
	size_t in_pos;
	unsigned tag_counter;
	struct strlist caps;
	imapc_untagged_handler_t *handler;
	void *handler_context;
	char idle_tag[16];
	bool idling;
	char *bye_text;         /* the server's BYE, for the error message */
	bool tls_unchecked;     /* TLS without a certificate check */
};

/* ------------------------------------------------------------ connection */

static void
imapc_set_caps_from_words(struct imapc *conn, const char *text, size_t len)
{
	strlist_clear(&conn->caps);
	size_t i = 0;
	while (i < len) {
		while (i < len && text[i] == ' ')
			i++;
		size_t s = i;
		while (i < len && text[i] != ' ')
			i++;
		if (i > s)
			strlist_add_take(&conn->caps, xstrndup(text + s, i - s));
	}
}

/* A response code "[CAPABILITY ...]" at the start of a status text. */
static void
imapc_check_resp_code(struct imapc *conn, const char *text)
{
	static const char prefix[] = "[CAPABILITY ";

	if (ascii_strncasecmp(text, prefix, sizeof(prefix) - 1) != 0)
		return;
	const char *start = text + sizeof(prefix) - 1;
	const char *end = strchr(start, ']');
	if (end != NULL)
		imapc_set_caps_from_words(conn, start, (size_t)(end - start));
}

static bool
imapc_resp_is(const struct imapc_response *resp, size_t idx, const char *word)
{
	const char *s = idx < resp->count ? imapc_arg_str(&resp->args[idx]) : NULL;
	return s != NULL && ascii_strcasecmp(s, word) == 0;
}

/* What the library itself learns from an untagged response, before the
   user's handler sees it. */
static void
imapc_untagged(struct imapc *conn, const struct imapc_response *resp)
{
	if (imapc_resp_is(resp, 0, "CAPABILITY")) {
		strlist_clear(&conn->caps);
		for (size_t i = 1; i < resp->count; i++) {
			const char *s = imapc_arg_str(&resp->args[i]);
			if (s != NULL)
				strlist_add(&conn->caps, s);
		}
	} else if (resp->count == 1 && resp->text != NULL) {
		imapc_check_resp_code(conn, resp->text);
		if (imapc_resp_is(resp, 0, "BYE")) {
			free(conn->bye_text);
			conn->bye_text = xstrdup(resp->text);
		}
	}
	if (conn->handler != NULL)
		conn->handler(resp, conn->handler_context);
}

/* The error for a failed read: the server's BYE text when it said one. */
static char *
imapc_read_error(struct imapc *conn, char *err)
{
	if (conn->bye_text == NULL)
		return err;
	char *e = xasprintf("the server closed the connection: %s", conn->bye_text);
	free(err);
	return e;
}

/* Takes one complete response out of the input buffer if there is one.
   Returns 1 (parsed into resp_r), 0 (need more bytes), -1. */
static int
imapc_take_response(struct imapc *conn, struct imapc_response *resp_r, char **error_r)
{
	size_t size;
	int ret = imapc_response_size(conn->in.data + conn->in_pos, conn->in.len - conn->in_pos,
				      &size);

	if (ret < 0) {
		*error_r = xstrdup("the server sent a response that is too large");
		return -1;
	}
	if (ret == 0)
		return 0;
	ret = imapc_response_parse(conn->in.data + conn->in_pos, size, resp_r, error_r);
	conn->in_pos += size;
	if (conn->in_pos == conn->in.len) {
		buf_reset(&conn->in);
		conn->in_pos = 0;
	} else if (conn->in_pos > 65536 && conn->in_pos > conn->in.len / 2) {
		buf_consume(&conn->in, conn->in_pos);
		conn->in_pos = 0;
	}
	return ret < 0 ? -1 : 1;
}

static int
imapc_fill(struct imapc *conn, int timeout_ms, char **error_r)
{
	char *err = NULL;
	int ret = netio_read_some(conn->nio, &conn->in, timeout_ms, &err);

	if (ret < 0) {
		*error_r = imapc_read_error(conn, err);
		return -1;
	}
	return ret;
}

/* Reads one whole response, waiting at most the timeout for each piece. */
static int
imapc_read_response(struct imapc *conn, struct imapc_response *resp_r, char **error_r)
{
	for (;;) {
		int ret = imapc_take_response(conn, resp_r, error_r);
		if (ret != 0)
			return ret < 0 ? -1 : 0;
		ret = imapc_fill(conn, conn->timeout_ms, error_r);
		if (ret < 0)
			return -1;
		if (ret == 0) {
			*error_r = xasprintf("the server did not answer within %d s",
					     conn->timeout_ms / 1000);
			return -1;
		}
	}
}

static int
imapc_send(struct imapc *conn, const char *data, size_t len, char **error_r)
{
	return netio_write_all(conn->nio, data, len, conn->timeout_ms, error_r);
}

/* Reads responses until the tagged answer to tag. With want_cont, a
   continuation request ends the wait too (returns 2). Returns 1 (OK),
   0 (NO/BAD, text in *reply_r), 2, or -1. */
static int
imapc_wait_tagged(struct imapc *conn, const char *tag, bool want_cont, char **reply_r,
		  char **error_r)
{
	for (;;) {
		struct imapc_response resp;
		if (imapc_read_response(conn, &resp, error_r) < 0)
			return -1;
		int ret = -1;
		if (strcmp(resp.tag, "*") == 0) {
			imapc_untagged(conn, &resp);
		} else if (strcmp(resp.tag, "+") == 0) {
			if (want_cont)
				ret = 2;
		} else if (strcmp(resp.tag, tag) == 0) {
			imapc_check_resp_code(conn, resp.text);
			ret = imapc_resp_is(&resp, 0, "OK") ? 1 : 0;
			if (reply_r != NULL)
				*reply_r = xstrdup(resp.text);
		}
		imapc_response_free(&resp);
		if (ret >= 0)
			return ret;
	}
}

/* STARTTLS (RFC 3501 6.2.1): the command, the handshake, then the
   capabilities again, those learnt in clear being forgotten. Returns 0
   or -1 with *error_r. */
static int
imapc_starttls(struct imapc *conn, char **error_r)
{
	char *reply = NULL, *err = NULL;
	int ret = imapc_run(conn, "STARTTLS", &reply, error_r);

	if (ret == 0)
		*error_r = xasprintf("the server refused STARTTLS: %s", reply);
	free(reply);
	if (ret != 1)
		return -1;
	/* Whatever came after the OK came in clear, possibly injected by
	   someone on the path: never read as if it came over TLS. */
	buf_reset(&conn->in);
	conn->in_pos = 0;
	struct tls_ctx *ctx = client_tls_starttls_ctx(conn->tls, netio_peer_is_loopback(conn->nio),
						      &conn->tls_unchecked);
	if (netio_start_tls(conn->nio, ctx, conn->host, conn->timeout_ms, &conn->in, &err) < 0) {
		*error_r = client_tls_handshake_error(conn->tls, err);
		free(err);
		return -1;
	}
	strlist_clear(&conn->caps);
	reply = NULL;
	ret = imapc_run(conn, "CAPABILITY", &reply, error_r);
	free(reply);
	return ret < 0 ? -1 : 0;
}

/* Reads the greeting and learns the capabilities. Returns 0 or -1. */
static int
imapc_greeting(struct imapc *conn, char **error_r)
{
	struct imapc_response resp;

	if (imapc_read_response(conn, &resp, error_r) < 0)
		return -1;
	bool ok = strcmp(resp.tag, "*") == 0 && imapc_resp_is(&resp, 0, "OK");
	if (!ok) {
		*error_r = xasprintf("the server refused the connection: %s %s",
				     resp.count > 0 ? imapc_arg_str(&resp.args[0]) : "",
				     resp.text != NULL ? resp.text : "");
		imapc_response_free(&resp);
		return -1;
	}
	imapc_check_resp_code(conn, resp.text);
	imapc_response_free(&resp);
	if (conn->caps.count == 0) {
		char *reply = NULL;
		int ret = imapc_run(conn, "CAPABILITY", &reply, error_r);
		free(reply);
		if (ret < 0)
			return -1;
	}
	return 0;
}

int
imapc_connect(const char *host, const char *port, int timeout_ms, const struct client_tls *tls,
	      struct imapc **conn_r, char **error_r)
{
	struct netio *nio;
	char *err = NULL;

	if (tls->mode != CLIENT_TLS_AUTO && tls->ctx == NULL) {
		*error_r = xstrdup("TLS was asked for, but there is no TLS context");
		return -1;
	}
	if (netio_connect(host, port, timeout_ms, &nio, error_r) < 0)
		return -1;
	struct imapc *conn = xcalloc(1, sizeof(*conn));
	conn->nio = nio;
	conn->tls = tls;
	conn->host = xstrdup(host);
	conn->timeout_ms = timeout_ms;
	conn->tls_unchecked = tls->insecure;

	if (tls->mode == CLIENT_TLS_IMPLICIT &&
	    netio_start_tls(nio, tls->ctx, host, timeout_ms, &conn->in, &err) < 0) {
		*error_r = client_tls_handshake_error(tls, err);
		free(err);
		imapc_free(&conn);
		return -1;
	}
	if (imapc_greeting(conn, error_r) < 0) {
		imapc_free(&conn);
		return -1;
	}
	if (!netio_is_tls(nio)) {
		switch (client_tls_next_step(tls, imapc_has_capability(conn, "STARTTLS"))) {
		case CLIENT_TLS_STEP_STARTTLS:
			if (imapc_starttls(conn, error_r) < 0) {
				imapc_free(&conn);
				return -1;
			}
			break;
		case CLIENT_TLS_STEP_REFUSE:
			*error_r = xasprintf("the server at %s port %s does not offer STARTTLS, "
					     "which --starttls requires", host, port);
			imapc_free(&conn);
			return -1;
		case CLIENT_TLS_STEP_PLAIN:
			break;
		}
	}
	*conn_r = conn;
	return 0;
}

void
imapc_free(struct imapc **connp)
{
	struct imapc *conn = *connp;

	if (conn == NULL)
		return;
	*connp = NULL;
	netio_free(&conn->nio);
	free(conn->host);
	buf_free(&conn->in);
	strlist_clear(&conn->caps);
	free(conn->bye_text);
	free(conn);
}

void
imapc_logout(struct imapc **connp)
{
	struct imapc *conn = *connp;
	char *err = NULL;

	if (conn == NULL)
		return;
	conn->timeout_ms = IMAPC_LOGOUT_TIMEOUT_MS;
	if (conn->idling && imapc_idle_stop(conn, &err) < 0) {
		free(err);
		imapc_free(connp);
		return;
	}
	if (imapc_run(conn, "LOGOUT", NULL, &err) < 0)
		free(err);
	imapc_free(connp);
}

void
imapc_set_untagged_handler(struct imapc *conn, imapc_untagged_handler_t *handler, void *context)
{
	conn->handler = handler;
	conn->handler_context = context;
}

bool
imapc_has_capability(const struct imapc *conn, const char *cap)
{
	for (size_t i = 0; i < conn->caps.count; i++) {
		if (ascii_strcasecmp(conn->caps.items[i], cap) == 0)
			return true;
	}
	return false;
}

int
imapc_fd(const struct imapc *conn)
{
	return netio_fd(conn->nio);
}

bool
imapc_input_pending(const struct imapc *conn)
{
	return netio_in_pending(conn->nio);
}

const char *
imapc_tls_describe(const struct imapc *conn)
{
	return netio_tls_describe(conn->nio);
}

bool
imapc_tls_unchecked(const struct imapc *conn)
{
	return conn->tls_unchecked;
}

int
imapc_password_check(const struct imapc *conn, char **error_r)
{
	char *what = xasprintf("the IMAP server %s", conn->host);
	int ret = client_tls_password_check(conn->tls, netio_is_tls(conn->nio),
					    netio_peer_is_loopback(conn->nio), what, error_r);

	free(what);
	return ret;
}

/* ------------------------------------------------------------ commands */

void
imapc_cmd_init(struct imapc_cmd *cmd)
{
	i_zero(cmd);
}

void
imapc_cmd_append(struct imapc_cmd *cmd, const char *text)
{
	buf_append_str(&cmd->text, text);
}

void
imapc_cmd_printf(struct imapc_cmd *cmd, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	buf_vprintf(&cmd->text, fmt, args);
	va_end(args);
}

void
imapc_cmd_append_string(struct imapc *conn, struct imapc_cmd *cmd, const char *s, size_t len)
{
	bool quotable = len <= 1024;

	for (size_t i = 0; i < len && quotable; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80)
			quotable = false;
	}
	if (quotable) {
		buf_append_c(&cmd->text, '"');
		for (size_t i = 0; i < len; i++) {
			if (s[i] == '"' || s[i] == '\\')
				buf_append_c(&cmd->text, '\\');
			buf_append_c(&cmd->text, s[i]);
		}
		buf_append_c(&cmd->text, '"');
		return;
	}
	bool nonsync = imapc_has_capability(conn, "LITERAL+");
	if (!nonsync && cmd->lit_count == IMAPC_MAX_LITERALS) {
		/* Cannot happen with the commands mailclient sends. */
		nonsync = true;
	}
	buf_printf(&cmd->text, "{%zu%s}\r\n", len, nonsync ? "+" : "");
	if (!nonsync)
		cmd->lit_starts[cmd->lit_count++] = cmd->text.len;
	buf_append(&cmd->text, s, len);
}

void
imapc_cmd_clear(struct imapc_cmd *cmd)
{
	if (cmd->text.data != NULL)
		explicit_bzero(cmd->text.data, cmd->text.cap);
	buf_free(&cmd->text);
	cmd->lit_count = 0;
}

static void
imapc_next_tag(struct imapc *conn, char tag[16])
{
	snprintf(tag, 16, "m%u", ++conn->tag_counter % 1000000);
}

int
imapc_cmd_run(struct imapc *conn, struct imapc_cmd *cmd, char **reply_r, char **error_r)
{
	char tag[16];
	size_t pos = 0;

	if (conn->idling) {
		*error_r = xstrdup("internal error: a command while idling");
		return -1;
	}
	imapc_next_tag(conn, tag);
	struct buf out = BUF_INIT;
	buf_printf(&out, "%s ", tag);
	for (size_t i = 0; i <= cmd->lit_count; i++) {
		size_t end = i < cmd->lit_count ? cmd->lit_starts[i] : cmd->text.len;
		buf_append(&out, cmd->text.data + pos, end - pos);
		if (i == cmd->lit_count)
			buf_append_str(&out, "\r\n");
		int ret = imapc_send(conn, out.data, out.len, error_r);
		explicit_bzero(out.data, out.cap);
		buf_reset(&out);
		if (ret < 0) {
			buf_free(&out);
			return -1;
		}
		pos = end;
		if (i == cmd->lit_count)
			break;
		/* A synchronizing literal: the server says "+" or refuses. */
		ret = imapc_wait_tagged(conn, tag, true, reply_r, error_r);
		if (ret != 2) {
			buf_free(&out);
			return ret;
		}
	}
	buf_free(&out);
	return imapc_wait_tagged(conn, tag, false, reply_r, error_r);
}

int
imapc_run(struct imapc *conn, const char *text, char **reply_r, char **error_r)
{
	struct imapc_cmd cmd;

	imapc_cmd_init(&cmd);
	imapc_cmd_append(&cmd, text);
	int ret = imapc_cmd_run(conn, &cmd, reply_r, error_r);
	imapc_cmd_clear(&cmd);
	return ret;
}

static int
imapc_login_plain(struct imapc *conn, const char *user, const char *password, char **reply_r,
		  char **error_r)
{
	struct buf raw = BUF_INIT, b64 = BUF_INIT;
	int ret;

	buf_append_c(&raw, '\0');
	buf_append_str(&raw, user);
	buf_append_c(&raw, '\0');
	buf_append_str(&raw, password);
	base64_encode(raw.data, raw.len, &b64);
	explicit_bzero(raw.data, raw.cap);
	buf_free(&raw);

	if (imapc_has_capability(conn, "SASL-IR")) {
		struct imapc_cmd cmd;
		imapc_cmd_init(&cmd);
		imapc_cmd_printf(&cmd, "AUTHENTICATE PLAIN %s", b64.data);
		ret = imapc_cmd_run(conn, &cmd, reply_r, error_r);
		imapc_cmd_clear(&cmd);
	} else {
		char tag[16];
		imapc_next_tag(conn, tag);
		char *line = xasprintf("%s AUTHENTICATE PLAIN\r\n", tag);
		ret = imapc_send(conn, line, strlen(line), error_r);
		free(line);
		if (ret == 0)
			ret = imapc_wait_tagged(conn, tag, true, reply_r, error_r);
		if (ret == 2) {
			buf_append_str(&b64, "\r\n");
			ret = imapc_send(conn, b64.data, b64.len, error_r);
			if (ret == 0)
				ret = imapc_wait_tagged(conn, tag, false, reply_r, error_r);
		}
	}
	explicit_bzero(b64.data, b64.cap);
	buf_free(&b64);
	return ret;
}

int
imapc_login(struct imapc *conn, const char *user, const char *password, char **reply_r,
	    char **error_r)
{
	int ret;

	if (imapc_password_check(conn, error_r) < 0)
		return -1;
	if (imapc_has_capability(conn, "AUTH=PLAIN")) {
		ret = imapc_login_plain(conn, user, password, reply_r, error_r);
	} else if (imapc_has_capability(conn, "LOGINDISABLED")) {
		*error_r = xstrdup("the server allows no plaintext login on this connection "
				   "(LOGINDISABLED, no AUTH=PLAIN)");
		return -1;
	} else {
		struct imapc_cmd cmd;
		imapc_cmd_init(&cmd);
		imapc_cmd_append(&cmd, "LOGIN ");
		imapc_cmd_append_string(conn, &cmd, user, strlen(user));
		imapc_cmd_append(&cmd, " ");
		imapc_cmd_append_string(conn, &cmd, password, strlen(password));
		ret = imapc_cmd_run(conn, &cmd, reply_r, error_r);
		imapc_cmd_clear(&cmd);
	}
	if (ret == 1) {
		/* Capabilities may change after login; ask unless the
		   answer carried them. */
		bool had = false;
		if (reply_r != NULL && *reply_r != NULL)
			had = ascii_strncasecmp(*reply_r, "[CAPABILITY ", 12) == 0;
		if (!had) {
			char *reply = NULL;
			int cret = imapc_run(conn, "CAPABILITY", &reply, error_r);
			free(reply);
			if (cret < 0)
				return -1;
		}
	}
	return ret;
}

/* ------------------------------------------------------------ IDLE */

/* Dispatches the complete responses in the input buffer. A tagged
   answer to IDLE means the server ended it. Returns 0 or -1. */
static int
imapc_idle_dispatch(struct imapc *conn, char **error_r)
{
	for (;;) {
		struct imapc_response resp;
		int ret = imapc_take_response(conn, &resp, error_r);
		if (ret <= 0)
			return ret;
		if (strcmp(resp.tag, "*") == 0)
			imapc_untagged(conn, &resp);
		else if (strcmp(resp.tag, conn->idle_tag) == 0)
			conn->idling = false;
		imapc_response_free(&resp);
	}
}

int
imapc_idle_start(struct imapc *conn, char **error_r)
{
	if (conn->idling)
		return 1;
	imapc_next_tag(conn, conn->idle_tag);
	char *line = xasprintf("%s IDLE\r\n", conn->idle_tag);
	int ret = imapc_send(conn, line, strlen(line), error_r);
	free(line);
	if (ret < 0)
		return -1;
	char *reply = NULL;
	ret = imapc_wait_tagged(conn, conn->idle_tag, true, &reply, error_r);
	free(reply);
	if (ret != 2)
		return ret < 0 ? -1 : 0;
	conn->idling = true;
	return imapc_idle_dispatch(conn, error_r) < 0 ? -1 : 1;
}

int
imapc_idle_input(struct imapc *conn, char **error_r)
{
	int ret = imapc_fill(conn, 0, error_r);

	if (ret < 0)
		return -1;
	return imapc_idle_dispatch(conn, error_r);
}

int
imapc_idle_stop(struct imapc *conn, char **error_r)
{
	if (!conn->idling)
		return 1;
	conn->idling = false;
	if (imapc_send(conn, "DONE\r\n", 6, error_r) < 0)
		return -1;
	return imapc_wait_tagged(conn, conn->idle_tag, false, NULL, error_r);
}

bool
imapc_is_idling(const struct imapc *conn)
{
	return conn->idling;
}
