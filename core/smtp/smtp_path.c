/* smtp_path.c: the paths and parameters of MAIL and RCPT (RFC 5321
   4.1.2), for the SMTP engine (smtp.c). */
#include "smtp.h"
#include "smtp_private.h"

#include <stdlib.h>

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_atext(char c)
{
	return is_alpha(c) || is_digit(c) ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Domain or address-literal at p; returns its length, 0 if none. */
static size_t
parse_domain(const char *p)
{
	size_t i = 0, label = 0;

	if (p[0] == '[') {
		for (i = 1; p[i] != ']'; i++) {
			if (p[i] <= ' ' || p[i] >= 0x7f || p[i] == '[' || p[i] == '\\')
				return 0;
		}
		return i > 1 ? i + 1 : 0;
	}
	for (;; i++) {
		char c = p[i];

		if (is_alpha(c) || is_digit(c)) {
			label++;
		} else if (c == '-' && label > 0) {
			label++;
		} else if (c == '.' && label > 0 && p[i - 1] != '-') {
			label = 0;
		} else {
			break;
		}
	}
	if (label == 0 || p[i - 1] == '-')
		return 0;
	return i;
}

void
smtp_path_free(struct smtp_path *path)
{
	free(path->addr);
	free(path->user);
	free(path->domain);
	i_zero(path);
}

/* Parses "<" [source-route ":"] mailbox ">" at *pp and moves *pp past it.
   allow_null: "<>" is valid (reverse-path); allow_postmaster: "<postmaster>"
   without domain is valid (RFC 5321 4.5.1). Returns 0, or -1 for bad
   syntax or a path over the limits. */
int
smtp_path_parse(const char **pp, bool allow_null, bool allow_postmaster, struct smtp_path *path_r)
{
	const char *start = *pp, *p = *pp, *local, *mbox;
	struct buf user = BUF_INIT;
	size_t n;

	i_zero(path_r);
	if (*p++ != '<')
		return -1;
	if (*p == '>' && allow_null) {
		*pp = p + 1;
		path_r->addr = xstrdup("");
		path_r->user = xstrdup("");
		return 0;
	}
	if (*p == '@') {
		/* A source route: accepted and ignored (RFC 5321 3.3, C). */
		while (*p == '@') {
			n = parse_domain(p + 1);
			if (n == 0)
				return -1;
			p += 1 + n;
			if (*p == ',')
				p++;
		}
		if (*p++ != ':')
			return -1;
	}
	mbox = local = p;
	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\\') {
				p++;
				if (*p < ' ' || *p > '~')
					goto fail;
			} else if (*p < ' ' || *p > '~') {
				goto fail;
			}
			buf_append_c(&user, *p);
		}
		p++;
		if (user.len == 0)
			goto fail;
	} else {
		while (is_atext(*p) || (*p == '.' && p > local && p[-1] != '.' && is_atext(p[1])))
			p++;
		if (p == local)
			goto fail;
		buf_append(&user, local, (size_t)(p - local));
	}
	if ((size_t)(p - local) > SMTP_LOCAL_PART_MAX)
		goto fail;
	if (*p == '>' && allow_postmaster && ascii_strcasecmp(user.data, "postmaster") == 0) {
		path_r->addr = xstrndup(mbox, (size_t)(p - mbox));
		path_r->user = buf_steal(&user);
		*pp = p + 1;
		return 0;
	}
	if (*p++ != '@')
		goto fail;
	n = parse_domain(p);
	if (n == 0 || n > SMTP_DOMAIN_MAX || p[n] != '>')
		goto fail;
	if ((size_t)(p + n + 1 - start) > SMTP_PATH_MAX)
		goto fail;
	path_r->domain = xstrndup(p, n);
	for (char *q = path_r->domain; *q != '\0'; q++) {
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	}
	path_r->addr = xstrndup(mbox, (size_t)(p + n - mbox));
	path_r->user = buf_steal(&user);
	*pp = p + n + 1;
	return 0;
fail:
	buf_free(&user);
	return -1;
}

/* "FROM:" / "TO:" (case-insensitive), then optional blanks (a lenient
   reading: RFC 5321 has none). Returns the text after them, or NULL. */
const char *
smtp_skip_prefix(const char *args, const char *prefix)
{
	size_t len = strlen(prefix);

	if (ascii_strncasecmp(args, prefix, len) != 0)
		return NULL;
	args += len;
	while (*args == ' ')
		args++;
	return args;
}

/* One ESMTP parameter at *pp: keyword [= value]. Copies the keyword and
   value (NUL-terminated) into the given buffers. Returns 0 or -1. */
int
smtp_param_parse(const char **pp, char *key, size_t key_size, char *value, size_t value_size)
{
	const char *p = *pp;
	size_t n = 0;

	if (!is_alpha(*p) && !is_digit(*p))
		return -1;
	while (is_alpha(*p) || is_digit(*p) || *p == '-') {
		if (n + 1 >= key_size)
			return -1;
		key[n++] = *p++;
	}
	key[n] = '\0';
	n = 0;
	value[0] = '\0';
	if (*p == '=') {
		p++;
		while (*p > ' ' && *p < 0x7f && *p != '=') {
			if (n + 1 >= value_size)
				return -1;
			value[n++] = *p++;
		}
		if (n == 0)
			return -1;
		value[n] = '\0';
	}
	if (*p != '\0' && *p != ' ')
		return -1;
	*pp = p;
	return 0;
}
