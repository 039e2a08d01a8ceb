/* imap_client_parse.c: the IMAP client's response framing and parsing
   (imapc_response_size, imapc_response_parse and the imapc_arg helpers
   of imap_client_lib.h): pure functions of the bytes received. */
#include "imap_client_lib.h"

#include <stdlib.h>

/* Bounds on what the server may send us. */
#define IMAPC_MAX_RESPONSE (256u * 1024 * 1024)
#define IMAPC_MAX_DEPTH 64

/* If the line ending at line_end (index of '\n') ends with "{n}\r\n"
   or "{n+}\r\n", returns 1 with n. */
static int
imapc_line_literal(const char *buf, size_t line_start, size_t line_end, uint64_t *n_r)
{
	size_t e = line_end;

	if (e > line_start && buf[e - 1] == '\r')
		e--;
	if (e == line_start || buf[e - 1] != '}')
		return 0;
	e--;
	if (e > line_start && buf[e - 1] == '+')
		e--;
	size_t digits_end = e;
	while (e > line_start && buf[e - 1] >= '0' && buf[e - 1] <= '9')
		e--;
	if (e == digits_end || e == line_start || buf[e - 1] != '{' || digits_end - e > 12)
		return 0;
	uint64_t n = 0;
	for (size_t i = e; i < digits_end; i++)
		n = n * 10 + (uint64_t)(buf[i] - '0');
	*n_r = n;
	return 1;
}

int
imapc_response_size(const char *buf, size_t len, size_t *size_r)
{
	size_t pos = 0;

	/* Each round consumes one line and at most one literal, and pos
	   only grows, so this ends. */
	while (pos < len) {
		const char *lf = memchr(buf + pos, '\n', len - pos);
		if (lf == NULL)
			return len > IMAPC_MAX_RESPONSE ? -1 : 0;
		size_t line_end = (size_t)(lf - buf);
		uint64_t n;
		if (!imapc_line_literal(buf, pos, line_end, &n)) {
			*size_r = line_end + 1;
			return 1;
		}
		if (n > IMAPC_MAX_RESPONSE || line_end + 1 + n > IMAPC_MAX_RESPONSE)
			return -1;
		pos = line_end + 1 + (size_t)n;
	}
	return 0;
}

struct imapc_parser {
	const char *data;
	size_t pos, len;
	char *error;
};

static void
imapc_arg_free(struct imapc_arg *arg, unsigned depth)
{
	free(arg->str);
	arg->str = NULL;
	if (arg->list != NULL && depth < IMAPC_MAX_DEPTH + 2) {
		for (size_t i = 0; i < arg->count; i++)
			imapc_arg_free(&arg->list[i], depth + 1);
	}
	free(arg->list);
	arg->list = NULL;
	arg->count = 0;
}

static bool
imapc_is_atom_end(char c)
{
	return c == ' ' || c == '(' || c == ')' || c == '"' || c == '\r' || c == '\n';
}

static int imapc_parse_list(struct imapc_parser *p, unsigned depth, bool top,
			    struct imapc_arg **items_r, size_t *count_r);

/* Parses a quoted string at p->pos (its opening '"') into arg. */
static int
imapc_parse_quoted(struct imapc_parser *p, struct imapc_arg *arg)
{
	const char *d = p->data;
	struct buf s = BUF_INIT;

	p->pos++;
	while (p->pos < p->len && d[p->pos] != '"') {
		if (d[p->pos] == '\r' || d[p->pos] == '\n')
			break;
		if (d[p->pos] == '\\' && p->pos + 1 < p->len)
			p->pos++;
		buf_append_c(&s, d[p->pos]);
		p->pos++;
	}
	if (p->pos >= p->len || d[p->pos] != '"') {
		buf_free(&s);
		p->error = xstrdup("unterminated quoted string");
		return -1;
	}
	p->pos++;
	arg->type = IMAPC_ARG_STRING;
	arg->len = s.len;
	arg->str = s.data != NULL ? buf_steal(&s) : xstrdup("");
	return 0;
}

/* Parses a literal {n}CRLF (or a bare LF) and its n bytes at p->pos
   (its '{') into arg. */
static int
imapc_parse_literal(struct imapc_parser *p, struct imapc_arg *arg)
{
	const char *d = p->data;
	size_t q = p->pos + 1;
	uint64_t n = 0;
	unsigned digits = 0;

	while (q < p->len && d[q] >= '0' && d[q] <= '9' && digits < 12) {
		n = n * 10 + (uint64_t)(d[q] - '0');
		q++;
		digits++;
	}
	if (q < p->len && d[q] == '+')
		q++;
	if (digits == 0 || q + 2 >= p->len || d[q] != '}' || d[q + 1] != '\r' ||
	    d[q + 2] != '\n') {
		if (!(digits > 0 && q + 1 < p->len && d[q] == '}' && d[q + 1] == '\n')) {
			p->error = xstrdup("bad literal");
			return -1;
		}
		q += 2;         /* a bare LF after the literal's size */
	} else {
		q += 3;
	}
	if (n > p->len - q) {
		p->error = xstrdup("literal runs past the response");
		return -1;
	}
	arg->type = IMAPC_ARG_STRING;
	arg->len = (size_t)n;
	arg->str = xmalloc(arg->len + 1);
	memcpy(arg->str, d + q, arg->len);
	arg->str[arg->len] = '\0';
	p->pos = q + arg->len;
	return 0;
}

/* Parses an atom or NIL at p->pos into arg; brackets may hold spaces
   and parentheses: BODY[HEADER.FIELDS (FROM TO)]<0>. */
static int
imapc_parse_atom(struct imapc_parser *p, struct imapc_arg *arg)
{
	const char *d = p->data;
	size_t start = p->pos;
	unsigned brackets = 0;

	while (p->pos < p->len) {
		char ch = d[p->pos];
		if (ch == '\r' || ch == '\n')
			break;
		if (ch == '[')
			brackets++;
		else if (ch == ']' && brackets > 0)
			brackets--;
		else if (brackets == 0 && imapc_is_atom_end(ch))
			break;
		p->pos++;
	}
	if (p->pos == start) {
		p->error = xasprintf("unexpected character 0x%02x", (unsigned char)d[start]);
		return -1;
	}
	size_t alen = p->pos - start;
	if (alen == 3 && ascii_strncasecmp(d + start, "NIL", 3) == 0) {
		arg->type = IMAPC_ARG_NIL;
		arg->str = xstrdup("");
		return 0;
	}
	arg->type = IMAPC_ARG_ATOM;
	arg->str = xstrndup(d + start, alen);
	arg->len = alen;
	return 0;
}

/* Parses one item at p->pos into arg. */
static int
imapc_parse_item(struct imapc_parser *p, unsigned depth, struct imapc_arg *arg)
{
	char c = p->data[p->pos];

	i_zero(arg);
	if (c == '(') {
		if (depth >= IMAPC_MAX_DEPTH) {
			p->error = xstrdup("lists nested too deeply");
			return -1;
		}
		p->pos++;
		arg->type = IMAPC_ARG_LIST;
		return imapc_parse_list(p, depth + 1, false, &arg->list, &arg->count);
	}
	if (c == '"')
		return imapc_parse_quoted(p, arg);
	if (c == '{')
		return imapc_parse_literal(p, arg);
	return imapc_parse_atom(p, arg);
}

/* Parses items up to ')' (or, at the top, up to the end of the line). */
static int
imapc_parse_list(struct imapc_parser *p, unsigned depth, bool top, struct imapc_arg **items_r,
		 size_t *count_r)
{
	struct imapc_arg *items = NULL;
	size_t count = 0, alloc = 0;

	for (;;) {
		while (p->pos < p->len && p->data[p->pos] == ' ')
			p->pos++;
		if (p->pos >= p->len || p->data[p->pos] == '\r' || p->data[p->pos] == '\n') {
			if (top)
				break;
			p->error = xstrdup("list not closed");
			goto fail;
		}
		if (p->data[p->pos] == ')') {
			if (top) {
				p->error = xstrdup("unbalanced ')'");
				goto fail;
			}
			p->pos++;
			break;
		}
		xgrow(&items, &alloc, count + 1, sizeof(*items));
		if (imapc_parse_item(p, depth, &items[count]) < 0) {
			imapc_arg_free(&items[count], 0);
			goto fail;
		}
		count++;
	}
	*items_r = items;
	*count_r = count;
	return 0;
fail:
	for (size_t i = 0; i < count; i++)
		imapc_arg_free(&items[i], 0);
	free(items);
	*items_r = NULL;
	*count_r = 0;
	return -1;
}

static bool
imapc_is_status_word(const char *s, size_t len)
{
	static const char *const words[] = { "OK", "NO", "BAD", "BYE", "PREAUTH" };

	for (size_t i = 0; i < N_ELEMENTS(words); i++) {
		if (strlen(words[i]) == len && ascii_strncasecmp(s, words[i], len) == 0)
			return true;
	}
	return false;
}

/* The rest of the first line from pos, without CRLF. */
static char *
imapc_rest_of_line(const char *data, size_t len, size_t pos)
{
	size_t e = pos;

	while (e < len && data[e] != '\r' && data[e] != '\n')
		e++;
	return xstrndup(data + pos, e - pos);
}

int
imapc_response_parse(const char *data, size_t len, struct imapc_response *resp_r,
		     char **error_r)
{
	struct imapc_arg *args = NULL;
	size_t count = 0;
	size_t pos = 0;

	i_zero(resp_r);
	while (pos < len && data[pos] != ' ' && data[pos] != '\r' && data[pos] != '\n')
		pos++;
	if (pos == 0) {
		*error_r = xstrdup("response without a tag");
		return -1;
	}
	char *tag = xstrndup(data, pos);
	if (pos < len && data[pos] == ' ')
		pos++;
	if (strcmp(tag, "+") == 0) {
		resp_r->tag = tag;
		resp_r->text = imapc_rest_of_line(data, len, pos);
		resp_r->args = xcalloc(1, sizeof(struct imapc_arg));
		return 0;
	}
	/* A status response: tagged or untagged OK/NO/BAD/BYE/PREAUTH. */
	size_t w = pos;
	while (w < len && data[w] != ' ' && data[w] != '\r' && data[w] != '\n')
		w++;
	if (imapc_is_status_word(data + pos, w - pos)) {
		args = xcalloc(1, sizeof(*args));
		args[0].type = IMAPC_ARG_ATOM;
		args[0].str = xstrndup(data + pos, w - pos);
		args[0].len = w - pos;
		for (char *s = args[0].str; *s != '\0'; s++) {
			if (*s >= 'a' && *s <= 'z')
				*s = (char)(*s - 'a' + 'A');
		}
		if (w < len && data[w] == ' ')
			w++;
		resp_r->tag = tag;
		resp_r->args = args;
		resp_r->count = 1;
		resp_r->text = imapc_rest_of_line(data, len, w);
		return 0;
	}
	struct imapc_parser p = { .data = data, .pos = pos, .len = len };
	if (imapc_parse_list(&p, 0, true, &args, &count) < 0) {
		*error_r = xasprintf("cannot parse the server's response: %s", p.error);
		free(p.error);
		free(tag);
		return -1;
	}
	resp_r->tag = tag;
	resp_r->args = args != NULL ? args : xcalloc(1, sizeof(struct imapc_arg));
	resp_r->count = count;
	resp_r->text = xstrdup("");
	return 0;
}

void
imapc_response_free(struct imapc_response *resp)
{
	struct imapc_arg *args = (struct imapc_arg *)resp->args;

	for (size_t i = 0; i < resp->count; i++)
		imapc_arg_free(&args[i], 0);
	free(args);
	free((char *)resp->tag);
	free((char *)resp->text);
	i_zero(resp);
}

const char *
imapc_arg_str(const struct imapc_arg *arg)
{
	if (arg == NULL || (arg->type != IMAPC_ARG_ATOM && arg->type != IMAPC_ARG_STRING))
		return NULL;
	return arg->str;
}

int
imapc_arg_u32(const struct imapc_arg *arg, uint32_t *num_r)
{
	uint64_t n;

	if (arg == NULL || arg->type != IMAPC_ARG_ATOM || str_to_u64(arg->str, UINT32_MAX, &n) < 0)
		return -1;
	*num_r = (uint32_t)n;
	return 0;
}

const struct imapc_arg *
imapc_fetch_item(const struct imapc_arg *fetch_list, const char *name)
{
	if (fetch_list == NULL || fetch_list->type != IMAPC_ARG_LIST)
		return NULL;
	for (size_t i = 0; i + 1 < fetch_list->count; i += 2) {
		const char *key = imapc_arg_str(&fetch_list->list[i]);
		if (key != NULL && ascii_strcasecmp(key, name) == 0)
			return &fetch_list->list[i + 1];
	}
	return NULL;
}

