/* smtp_client.c: one mail over SMTP (see smtp_client.h). */
#include "smtp_client.h"
#include "netio.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SMTPC_MAX_REPLY 65536

struct smtpc {
	int fd;
	int timeout_ms;
	struct buf in;
	bool esmtp;
};

void
smtpc_dot_stuff(const char *data, size_t len, struct buf *out)
{
	bool line_start = true;

	buf_reserve(out, len + len / 32 + 8);
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (line_start && c == '.')
			buf_append_c(out, '.');
		line_start = false;
		if (c == '\r' && i + 1 < len && data[i + 1] == '\n')
			continue;       /* the LF writes the CRLF */
		if (c == '\n' || c == '\r') {
			buf_append_str(out, "\r\n");
			line_start = true;
			continue;
		}
		buf_append_c(out, c);
	}
	if (!line_start)
		buf_append_str(out, "\r\n");
	buf_append_str(out, ".\r\n");
}

int
smtpc_reply_parse(const char *buf, size_t len, unsigned *code_r, size_t *size_r)
{
	size_t pos = 0;
	unsigned first_code = 0;

	/* One line per round; pos only grows. */
	while (pos < len) {
		const char *lf = memchr(buf + pos, '\n', len - pos);
		if (lf == NULL)
			return len > SMTPC_MAX_REPLY ? -1 : 0;
		size_t line_len = (size_t)(lf - (buf + pos));
		const char *l = buf + pos;
		if (line_len < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' ||
		    l[2] < '0' || l[2] > '9')
			return -1;
		unsigned code = (unsigned)((l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0'));
		if (first_code == 0)
			first_code = code;
		else if (code != first_code)
			return -1;
		pos += line_len + 1;
		if (line_len == 3 || l[3] == ' ' || l[3] == '\r') {
			*code_r = code;
			*size_r = pos;
			return 1;
		}
		if (l[3] != '-')
			return -1;
		if (pos > SMTPC_MAX_REPLY)
			return -1;
	}
	return 0;
}

/* Reads one reply. *text_r: its last line without CRLF (the verdict a
   user wants to see). Returns 0 or -1. */
static int
smtpc_read_reply(struct smtpc *s, unsigned *code_r, char **text_r, char **error_r)
{
	for (;;) {
		size_t size;
		int ret = smtpc_reply_parse(s->in.data != NULL ? s->in.data : "", s->in.len, code_r,
					    &size);
		if (ret < 0) {
			*error_r = xstrdup("the SMTP server sent a malformed reply");
			return -1;
		}
		if (ret > 0) {
			size_t end = size;
			while (end > 0 && (s->in.data[end - 1] == '\n' || s->in.data[end - 1] == '\r'))
				end--;
			size_t start = end;
			while (start > 0 && s->in.data[start - 1] != '\n')
				start--;
			*text_r = xstrndup(s->in.data + start, end - start);
			buf_consume(&s->in, size);
			return 0;
		}
		ret = netio_read_some(s->fd, &s->in, s->timeout_ms, error_r);
		if (ret < 0)
			return -1;
		if (ret == 0) {
			*error_r = xasprintf("the SMTP server did not answer within %d s",
					     s->timeout_ms / 1000);
			return -1;
		}
	}
}

/* Sends line (CRLF added) and reads the reply. Returns 0 or -1. */
static int
smtpc_command(struct smtpc *s, const char *line, unsigned *code_r, char **text_r, char **error_r)
{
	char *out = xasprintf("%s\r\n", line);
	int ret = netio_write_all(s->fd, out, strlen(out), s->timeout_ms, error_r);

	free(out);
	if (ret < 0)
		return -1;
	return smtpc_read_reply(s, code_r, text_r, error_r);
}

/* Runs one step that must answer 2xx (3xx for DATA). Returns 1 ok, 0
   refused (*verdict_r says which step), -1. */
static int
smtpc_step(struct smtpc *s, const char *what, const char *line, unsigned want_class,
	   char **verdict_r, char **error_r)
{
	unsigned code;
	char *text = NULL;

	if (smtpc_command(s, line, &code, &text, error_r) < 0)
		return -1;
	if (code / 100 == want_class) {
		free(text);
		return 1;
	}
	*verdict_r = xasprintf("%s refused: %s", what, text);
	free(text);
	return 0;
}

static int
smtpc_dialog(struct smtpc *s, const char *helo_name, const struct smtpc_mail *mail,
	     char **verdict_r, char **error_r)
{
	unsigned code;
	char *text = NULL;
	int ret;

	if (smtpc_read_reply(s, &code, &text, error_r) < 0)
		return -1;
	if (code != 220) {
		*verdict_r = xasprintf("the SMTP server refused the connection: %s", text);
		free(text);
		return 0;
	}
	free(text);

	char *line = xasprintf("EHLO %s", helo_name);
	ret = smtpc_command(s, line, &code, &text, error_r);
	free(line);
	if (ret < 0)
		return -1;
	free(text);
	text = NULL;
	if (code / 100 != 2) {
		line = xasprintf("HELO %s", helo_name);
		ret = smtpc_step(s, "HELO", line, 2, verdict_r, error_r);
		free(line);
		if (ret <= 0)
			return ret;
	}

	line = xasprintf("MAIL FROM:<%s>", mail->from);
	ret = smtpc_step(s, "the sender", line, 2, verdict_r, error_r);
	free(line);
	if (ret <= 0)
		goto quit;
	for (size_t i = 0; i < mail->to_count; i++) {
		line = xasprintf("RCPT TO:<%s>", mail->to[i]);
		char *what = xasprintf("the recipient %s", mail->to[i]);
		ret = smtpc_step(s, what, line, 2, verdict_r, error_r);
		free(what);
		free(line);
		if (ret <= 0)
			goto quit;
	}
	ret = smtpc_step(s, "DATA", "DATA", 3, verdict_r, error_r);
	if (ret <= 0)
		goto quit;

	struct buf data = BUF_INIT;
	smtpc_dot_stuff(mail->data, mail->data_len, &data);
	ret = netio_write_all(s->fd, data.data, data.len, s->timeout_ms, error_r);
	buf_free(&data);
	if (ret < 0)
		return -1;
	if (smtpc_read_reply(s, &code, &text, error_r) < 0)
		return -1;
	if (code / 100 == 2) {
		*verdict_r = text;
		ret = 1;
	} else {
		*verdict_r = xasprintf("the message was refused: %s", text);
		free(text);
		ret = 0;
	}
quit:
	if (ret >= 0) {
		/* The verdict is known; QUIT is a courtesy. */
		char *err = NULL;
		text = NULL;
		if (smtpc_command(s, "QUIT", &code, &text, &err) < 0)
			free(err);
		free(text);
	}
	return ret;
}

int
smtpc_send(const char *host, const char *port, int timeout_ms, const char *helo_name,
	   const struct smtpc_mail *mail, char **verdict_r, char **error_r)
{
	struct smtpc s;

	i_zero(&s);
	s.timeout_ms = timeout_ms;
	if (netio_connect(host, port, timeout_ms, &s.fd, error_r) < 0)
		return -1;
	int ret = smtpc_dialog(&s, helo_name, mail, verdict_r, error_r);
	close(s.fd);
	buf_free(&s.in);
	return ret;
}
