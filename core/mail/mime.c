/* mime.c: the RFC 5322 / MIME part tree, transfer decoding and the
   searchable body text. The parse cache is mime_cache.c, IMAP sections
   core/imap/imap_section.c, the mail client's text and attachment
   helpers client/mail_text.c.

   The parser works top-down on byte ranges: a part's range is split into
   its header and body; a multipart body is split at the delimiter lines
   of its own boundary into child ranges, each parsed the same way one
   level deeper. The recursion is bounded by MIME_MAX_DEPTH and the
   number of parts by MIME_MAX_PARTS, so a nesting bomb costs at most
   MIME_MAX_DEPTH passes over the message. Where Dovecot and RFC 2045/2046
   leave a choice (boundary lines matched by prefix, the line end before
   a delimiter belonging to it, the first Content-Type winning, an
   unterminated multipart's last part running to the end), this follows
   Dovecot, so that BODYSTRUCTURE answers match its answers. */
#include "mime.h"
#include "base64.h"
#include "text.h"
#include "message.h"
#include "charset.h"

#include <stdlib.h>

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static char
to_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The value unfolded (CR, LF dropped) and trimmed, malloc'ed. */
static char *
unfold_dup(const char *v, size_t len)
{
	size_t start = 0, end = len, n = 0;
	char *s;

	while (start < end && text_is_ws(v[start]))
		start++;
	while (end > start && text_is_ws(v[end - 1]))
		end--;
	s = xmalloc(end - start + 1);
	for (size_t i = start; i < end; i++) {
		if (v[i] != '\r' && v[i] != '\n')
			s[n++] = v[i];
	}
	s[n] = '\0';
	return s;
}

/* --- RFC 2045 tokens and parameters ---------------------------------- */

static bool
is_tspecial(char c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static bool
is_token_char(char c)
{
	unsigned char u = (unsigned char)c;

	return u > ' ' && u != 0x7f && !is_tspecial(c);
}

static char *
read_token(const char *s, size_t len, size_t *pos)
{
	size_t start = *pos;

	while (*pos < len && is_token_char(s[*pos]))
		(*pos)++;
	return xstrndup(s + start, *pos - start);
}

/* A quoted string at s[*pos] == '"': its unescaped content (folding
   removed). An unterminated one runs to the end. */
static char *
read_quoted(const char *s, size_t len, size_t *pos)
{
	struct buf b = BUF_INIT;

	buf_append(&b, "", 0);
	for ((*pos)++; *pos < len; (*pos)++) {
		char c = s[*pos];

		if (c == '"') {
			(*pos)++;
			break;
		}
		if (c == '\\' && *pos + 1 < len)
			c = s[++(*pos)];
		if (c != '\r' && c != '\n')
			buf_append_c(&b, c);
	}
	return buf_steal(&b);
}

struct raw_param {
	char *name, *value;
};

/* Reads "; name=value" pairs from s[*pos..len) (a value is a token or a
   quoted string; an empty value is allowed). Junk up to the next ';' is
   skipped. At most 64 parameters are kept. */
static void
read_raw_params(const char *s, size_t len, size_t *pos, struct raw_param **list_r,
		size_t *count_r)
{
	struct raw_param *list = NULL;
	size_t count = 0, alloc = 0;

	while (*pos < len && count < 64) {
		char *name, *value;

		while (*pos < len && s[*pos] != ';') {
			if (s[*pos] == '"') {
				free(read_quoted(s, len, pos));
				continue;
			}
			(*pos)++;
		}
		if (*pos >= len)
			break;
		(*pos)++;
		text_skip_cfws(s, len, pos);
		if (*pos >= len || !is_token_char(s[*pos]))
			continue;
		name = read_token(s, len, pos);
		text_skip_cfws(s, len, pos);
		if (*pos >= len || s[*pos] != '=') {
			free(name);
			continue;
		}
		(*pos)++;
		text_skip_cfws(s, len, pos);
		if (*pos < len && s[*pos] == '"')
			value = read_quoted(s, len, pos);
		else
			value = read_token(s, len, pos);
		xgrow(&list, &alloc, count + 1, sizeof(*list));
		list[count].name = name;
		list[count].value = value;
		count++;
	}
	*list_r = list;
	*count_r = count;
}

/* Splits an RFC 2231 name "base*N*", "base*N", "base*" or "base" into
   its base length, section (-1 if none) and whether it is extended. */
static void
rfc2231_name(const char *name, size_t *base_len_r, long *section_r, bool *extended_r)
{
	size_t len = strlen(name), star;

	*base_len_r = len;
	*section_r = -1;
	*extended_r = false;
	if (len > 1 && name[len - 1] == '*') {
		*extended_r = true;
		len--;
		*base_len_r = len;
	}
	star = len;
	while (star > 0 && name[star - 1] >= '0' && name[star - 1] <= '9')
		star--;
	if (star > 1 && star < len && name[star - 1] == '*' && len - star <= 4 &&
	    (name[star] != '0' || len - star == 1)) {
		*section_r = strtol(name + star, NULL, 10);
		*base_len_r = star - 1;
	}
}

/* Appends the %XX-decoded value. */
static void
percent_decode(const char *s, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len && text_hex_value(s[i + 1]) >= 0 &&
		    text_hex_value(s[i + 2]) >= 0) {
			buf_append_c(out, (char)(text_hex_value(s[i + 1]) * 16 + text_hex_value(s[i + 2])));
			i += 2;
		} else {
			buf_append_c(out, s[i]);
		}
	}
}

static void
param_set(struct mime_param *p, char *name, char *value, size_t base_len, bool extended,
	  struct buf *bytes, const char *charset, size_t charset_len)
{
	struct buf dec = BUF_INIT;

	p->name = name;
	p->value = value;
	p->key = xstrndup(name, base_len);
	for (char *k = p->key; *k != '\0'; k++)
		*k = to_lower(*k);
	if (extended) {
		if (bytes->len == 0 ||
		    charset_to_utf8(charset, charset_len, bytes->data, bytes->len, &dec) < 0)
			buf_append(&dec, bytes->data == NULL ? "" : bytes->data, bytes->len);
	} else {
		message_decode_header(value, strlen(value), &dec);
	}
	buf_append(&dec, "", 0);
	p->decoded = buf_steal(&dec);
}

/* Appends the value of an extended segment to bytes: %XX decoded; the
   first one starts with charset'language' (charset noted). */
static void
extended_segment(const char *value, bool first, struct buf *bytes, const char **cs_r,
		 size_t *cs_len_r)
{
	const char *q1, *q2;

	if (first && (q1 = strchr(value, '\'')) != NULL && (q2 = strchr(q1 + 1, '\'')) != NULL) {
		*cs_r = value;
		*cs_len_r = (size_t)(q1 - value);
		value = q2 + 1;
	}
	percent_decode(value, strlen(value), bytes);
}

/* True if raw[j] (not used yet) is a section of the parameter named by
   the first base_len bytes of base; its section number and whether it
   is extended are returned. */
static bool
is_segment_of(const struct raw_param *raw, size_t j, const bool *used, const char *base,
	      size_t base_len, long *section_r, bool *extended_r)
{
	size_t b2;

	if (used[j])
		return false;
	rfc2231_name(raw[j].name, &b2, section_r, extended_r);
	return *section_r >= 0 && b2 == base_len && ascii_strncasecmp(raw[j].name, base, base_len) == 0;
}

/* Whether the sections of raw[i]'s base (from i on) are exactly 0..N-1,
   each once (then they are merged; otherwise each is kept as written,
   as Dovecot does). *max_section_r = N-1. */
static bool
segments_complete(const struct raw_param *raw, size_t count, const bool *used, size_t i,
		  size_t base_len, long *max_section_r)
{
	size_t seg_count = 0;
	long s2, max_section = -1;
	bool e2, complete = true;

	for (size_t j = i; j < count; j++) {
		if (!is_segment_of(raw, j, used, raw[i].name, base_len, &s2, &e2))
			continue;
		seg_count++;
		if (s2 > max_section)
			max_section = s2;
	}
	if ((size_t)(max_section + 1) != seg_count)
		complete = false;
	for (long want = 0; complete && want <= max_section; want++) {
		size_t found = 0;

		for (size_t j = i; j < count; j++) {
			if (is_segment_of(raw, j, used, raw[i].name, base_len, &s2, &e2) &&
			    s2 == want)
				found++;
		}
		complete = found == 1;
	}
	*max_section_r = max_section;
	return complete;
}

/* Sets p to the merge of the sections 0..max_section of raw[i]'s base
   (segments_complete() said yes); marks them used and merged. */
static void
segments_merge(struct raw_param *raw, size_t count, bool *used, bool *merged, size_t i,
	       size_t base_len, long max_section, struct mime_param *p)
{
	struct buf value = BUF_INIT, bytes = BUF_INIT;
	const char *cs = "";
	size_t cs_len = 0;
	bool first_extended = false;
	long s2;
	bool e2;
	char *name;

	buf_append(&value, "", 0);
	for (long want = 0; want <= max_section; want++) {
		for (size_t j = i; j < count; j++) {
			if (!is_segment_of(raw, j, used, raw[i].name, base_len, &s2, &e2) ||
			    s2 != want)
				continue;
			if (want == 0)
				first_extended = e2;
			buf_append_str(&value, raw[j].value);
			if (e2)
				extended_segment(raw[j].value, want == 0, &bytes, &cs, &cs_len);
			else
				buf_append_str(&bytes, raw[j].value);
			used[j] = true;
			merged[j] = true;       /* freed at the end: cs may point in */
			break;
		}
	}
	name = xasprintf("%.*s%s", (int)base_len, raw[i].name, first_extended ? "*" : "");
	param_set(p, name, buf_steal(&value), base_len, first_extended, &bytes, cs, cs_len);
	buf_free(&bytes);
}

/* Turns raw parameters into mime_params, merging RFC 2231
   continuations. Takes the strings of raw. */
static void
params_build(struct raw_param *raw, size_t count, struct mime_param **params_r,
	     size_t *count_r)
{
	struct mime_param *params = count == 0 ? NULL : xcalloc(count, sizeof(*params));
	bool *used = count == 0 ? NULL : xcalloc(count, sizeof(bool));
	bool *merged = count == 0 ? NULL : xcalloc(count, sizeof(bool));
	size_t n = 0;

	for (size_t i = 0; i < count; i++) {
		size_t base_len;
		long section, max_section;
		bool extended;

		if (used[i])
			continue;
		rfc2231_name(raw[i].name, &base_len, &section, &extended);
		if (section < 0) {
			struct buf bytes = BUF_INIT;
			const char *cs = "";
			size_t cs_len = 0;

			if (extended)
				extended_segment(raw[i].value, true, &bytes, &cs, &cs_len);
			used[i] = true;
			param_set(&params[n++], raw[i].name, raw[i].value, base_len, extended, &bytes,
				  cs, cs_len);
			buf_free(&bytes);
			continue;
		}
		if (!segments_complete(raw, count, used, i, base_len, &max_section)) {
			struct buf none = BUF_INIT;

			used[i] = true;
			param_set(&params[n++], raw[i].name, raw[i].value, strlen(raw[i].name),
				  false, &none, "", 0);
			continue;
		}
		segments_merge(raw, count, used, merged, i, base_len, max_section, &params[n++]);
	}
	for (size_t i = 0; i < count; i++) {
		if (merged[i]) {
			free(raw[i].name);
			free(raw[i].value);
		}
	}
	free(merged);
	free(used);
	free(raw);
	*params_r = params;
	*count_r = n;
}

static void
params_free(struct mime_param *params, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(params[i].name);
		free(params[i].value);
		free(params[i].key);
		free(params[i].decoded);
	}
	free(params);
}

const char *
mime_param_get(const struct mime_param *params, size_t count, const char *key)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(params[i].key, key) == 0)
			return params[i].decoded;
	}
	return NULL;
}

/* Content-Type: "type/subtype *(; param)". Returns false (nothing set)
   when there is no valid type/subtype. */
static bool
parse_content_type(const char *s, size_t len, struct mime_part *part)
{
	size_t pos = 0;
	char *type, *subtype;
	struct raw_param *raw;
	size_t raw_count;

	text_skip_cfws(s, len, &pos);
	type = read_token(s, len, &pos);
	text_skip_cfws(s, len, &pos);
	if (type[0] == '\0' || pos >= len || s[pos] != '/') {
		free(type);
		return false;
	}
	pos++;
	text_skip_cfws(s, len, &pos);
	subtype = read_token(s, len, &pos);
	if (subtype[0] == '\0') {
		free(type);
		free(subtype);
		return false;
	}
	free(part->type);
	free(part->subtype);
	part->type = type;
	part->subtype = subtype;
	read_raw_params(s, len, &pos, &raw, &raw_count);
	params_build(raw, raw_count, &part->params, &part->param_count);
	return true;
}

static void
parse_disposition(const char *s, size_t len, struct mime_part *part)
{
	size_t pos = 0;
	struct raw_param *raw;
	size_t raw_count;

	text_skip_cfws(s, len, &pos);
	part->disposition = read_token(s, len, &pos);
	read_raw_params(s, len, &pos, &raw, &raw_count);
	params_build(raw, raw_count, &part->disp_params, &part->disp_param_count);
}

static void
parse_language(const char *s, size_t len, struct mime_part *part)
{
	size_t pos = 0, alloc = 0;

	part->has_language = true;
	while (pos < len && part->language_count < 64) {
		char *tok;

		text_skip_cfws(s, len, &pos);
		if (pos >= len)
			break;
		if (s[pos] == ',') {
			pos++;
			continue;
		}
		if (!is_token_char(s[pos])) {
			pos++;
			continue;
		}
		tok = read_token(s, len, &pos);
		xgrow(&part->languages, &alloc, part->language_count + 1, sizeof(char *));
		part->languages[part->language_count++] = tok;
	}
}

/* --- decoding -------------------------------------------------------- */

enum mime_encoding
mime_encoding_parse(const char *token, size_t len)
{
	if (len == 0 || text_mem_equals_ci(token, len, "7bit"))
		return MIME_ENC_7BIT;
	if (text_mem_equals_ci(token, len, "8bit"))
		return MIME_ENC_8BIT;
	if (text_mem_equals_ci(token, len, "binary"))
		return MIME_ENC_BINARY;
	if (text_mem_equals_ci(token, len, "quoted-printable"))
		return MIME_ENC_QP;
	if (text_mem_equals_ci(token, len, "base64"))
		return MIME_ENC_BASE64;
	return MIME_ENC_OTHER;
}

/* RFC 2045 6.7: "=XX" octets, "=" ending a line a soft line break (also
   with white space after it), and white space at the end of a line
   deleted (rule 3: it was added in transport). */
static void
qp_decode(const char *s, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (is_wsp(s[i])) {
			size_t j = i;
			while (j < len && is_wsp(s[j]))
				j++;
			if (j == len || s[j] == '\n' || (s[j] == '\r' && j + 1 < len && s[j + 1] == '\n')) {
				i = j - 1;      /* trailing white space */
				continue;
			}
			buf_append(out, s + i, j - i);
			i = j - 1;
			continue;
		}
		if (s[i] != '=') {
			buf_append_c(out, s[i]);
			continue;
		}
		if (i + 2 < len && text_hex_value(s[i + 1]) >= 0 && text_hex_value(s[i + 2]) >= 0) {
			buf_append_c(out, (char)(text_hex_value(s[i + 1]) * 16 + text_hex_value(s[i + 2])));
			i += 2;
			continue;
		}
		size_t j = i + 1;
		while (j < len && is_wsp(s[j]))
			j++;
		if (j < len && s[j] == '\r' && j + 1 < len && s[j + 1] == '\n')
			j++;
		if (j < len && s[j] == '\n') {
			i = j;                  /* soft line break */
			continue;
		}
		if (j >= len) {
			i = len;                /* '=' at the very end */
			continue;
		}
		buf_append_c(out, '=');
	}
}

void
mime_decode(enum mime_encoding enc, const char *data, size_t len, struct buf *out)
{
	buf_append(out, "", 0);
	buf_reserve(out, len);
	if (enc == MIME_ENC_QP)
		qp_decode(data, len, out);
	else if (enc == MIME_ENC_BASE64)
		base64_decode_lenient(data, len, out);
	else
		buf_append(out, data, len);
}

bool
mime_part_is(const struct mime_part *part, const char *type, const char *subtype)
{
	return ascii_strcasecmp(part->type, type) == 0 &&
	       (subtype == NULL || ascii_strcasecmp(part->subtype, subtype) == 0);
}

void
mime_part_decoded(const struct mime_part *part, const char *msg, size_t len,
		  struct buf *out)
{
	struct buf raw = BUF_INIT;
	const char *cs;
	size_t off = part->body_off, blen = part->body_len;

	if (off > len || blen > len - off) {
		buf_append(out, "", 0);
		return;                 /* a tree of another message: nothing */
	}
	mime_decode(part->encoding, msg + off, blen, &raw);
	cs = mime_param_get(part->params, part->param_count, "charset");
	if (!mime_part_is(part, "text", NULL) || raw.len == 0 ||
	    charset_to_utf8(cs == NULL ? "" : cs, cs == NULL ? 0 : strlen(cs), raw.data,
				 raw.len, out) < 0)
		buf_append(out, raw.data == NULL ? "" : raw.data, raw.len);
	buf_free(&raw);
}

/* --- parsing --------------------------------------------------------- */

struct parse_ctx {
	const char *msg;
	size_t len;
	size_t part_count;
};

static size_t
count_lf(const char *p, size_t len)
{
	size_t n = 0;
	const char *end = p + len;

	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

static void
part_set_default_type(struct mime_part *part, bool digest_child)
{
	free(part->type);
	free(part->subtype);
	part->type = xstrdup(digest_child ? "message" : "text");
	part->subtype = xstrdup(digest_child ? "rfc822" : "plain");
}

static void
part_make_opaque(struct mime_part *part)
{
	free(part->type);
	free(part->subtype);
	part->type = xstrdup("application");
	part->subtype = xstrdup("octet-stream");
	params_free(part->params, part->param_count);
	part->params = NULL;
	part->param_count = 0;
	part->opaque = true;
	part->multipart = false;
	part->message = false;
}

static struct mime_part *parse_part(struct parse_ctx *ctx, struct mime_part *parent,
				    size_t off, size_t end, size_t extra, unsigned depth,
				    bool digest_child);

static struct mime_part *
part_new_empty(struct parse_ctx *ctx, struct mime_part *parent, size_t at, unsigned depth)
{
	struct mime_part *part = xcalloc(1, sizeof(*part));

	ctx->part_count++;
	part->parent = parent;
	part->depth = depth;
	part->hdr_off = part->body_off = at;
	part_set_default_type(part, false);
	return part;
}

static void
add_child(struct mime_part *parent, struct mime_part ***tail, struct mime_part *child)
{
	**tail = child;
	*tail = &child->next;
	parent->child_count++;
}

/* Splits the multipart body of part at its boundary. extra: see
   parse_part(). */
static void
parse_multipart(struct parse_ctx *ctx, struct mime_part *part, const char *boundary,
		size_t extra)
{
	const char *p = ctx->msg;
	size_t blen = strlen(boundary);
	size_t pos = part->body_off, end = part->body_off + part->body_len;
	size_t part_start = 0;
	bool in_part = false, digest = mime_part_is(part, "multipart", "digest");
	struct mime_part **tail = &part->children;

	while (pos < end && blen > 0) {
		size_t lend, next = text_line_next(p, end, pos, &lend);
		bool delim = lend - pos >= blen + 2 && p[pos] == '-' && p[pos + 1] == '-' &&
			     memcmp(p + pos + 2, boundary, blen) == 0;

		if (delim) {
			size_t rest = pos + 2 + blen;
			bool close = lend - rest >= 2 && p[rest] == '-' && p[rest + 1] == '-';

			part->boundary_found = true;
			if (in_part) {
				/* The line end before the delimiter belongs to it. */
				size_t part_end = pos;
				if (part_end > part_start && p[part_end - 1] == '\n')
					part_end--;
				if (part_end > part_start && p[part_end - 1] == '\r')
					part_end--;
				add_child(part, &tail, parse_part(ctx, part, part_start, part_end,
								  pos - part_end, part->depth + 1,
								  digest));
			}
			in_part = false;
			if (close && lend == end && extra > 0) {
				/* The close delimiter is the last line and its line
				   end was cut off as the outer delimiter's: Dovecot
				   counts it in this part; so do we. */
				part->body_len += extra;
			}
			if (close || ctx->part_count >= MIME_MAX_PARTS)
				break;
			in_part = true;
			part_start = next;
		}
		pos = next;
	}
	if (in_part)
		add_child(part, &tail, parse_part(ctx, part, part_start, end, 0, part->depth + 1,
						  digest));
	if (part->children == NULL) {
		if (ctx->part_count >= MIME_MAX_PARTS && part->boundary_found) {
			part_make_opaque(part);
			return;
		}
		/* No boundary or none found: one empty part, as Dovecot. */
		add_child(part, &tail, part_new_empty(ctx, part, end, part->depth + 1));
	}
}

/* Parses the part msg[off..end). extra is the length of the line end
   that follows end and was cut off as the start of the parent's next
   delimiter (0 if none): a multipart whose close delimiter is its last
   line takes it back, so the part may end up extra longer than end. */
static struct mime_part *
parse_part(struct parse_ctx *ctx, struct mime_part *parent, size_t off, size_t end,
	   size_t extra, unsigned depth, bool digest_child)
{
	struct mime_part *part = xcalloc(1, sizeof(*part));
	const char *p = ctx->msg;
	struct message_field f;
	size_t pos = 0;
	bool have_type = false, have_enc = false;

	ctx->part_count++;
	part->parent = parent;
	part->depth = depth;
	part->hdr_off = off;
	part->hdr_len = message_header_size(p + off, end - off);
	part->body_off = off + part->hdr_len;
	part->body_len = end - part->body_off;
	part->lines = count_lf(p + part->body_off, part->body_len);

	/* The first of each field counts (as Dovecot). */
	while (message_header_next(p + off, part->hdr_len, &pos, &f)) {
		if (f.name_len < 8 || ascii_strncasecmp(f.name, "Content-", 8) != 0)
			continue;
		const char *n = f.name + 8;
		size_t nl = f.name_len - 8;

		if (text_mem_equals_ci(n, nl, "Type")) {
			if (!have_type)
				have_type = parse_content_type(f.value, f.value_len, part);
			if (!have_type)
				have_type = true;       /* invalid: the default, not a later one */
		} else if (text_mem_equals_ci(n, nl, "Transfer-Encoding") && !have_enc) {
			size_t tpos = 0;
			text_skip_cfws(f.value, f.value_len, &tpos);
			part->encoding_str = read_token(f.value, f.value_len, &tpos);
			part->encoding = mime_encoding_parse(part->encoding_str,
							     strlen(part->encoding_str));
			have_enc = true;
		} else if (text_mem_equals_ci(n, nl, "ID") && part->id == NULL) {
			part->id = unfold_dup(f.value, f.value_len);
		} else if (text_mem_equals_ci(n, nl, "Description") && part->description == NULL) {
			part->description = unfold_dup(f.value, f.value_len);
		} else if (text_mem_equals_ci(n, nl, "MD5") && part->md5 == NULL) {
			part->md5 = unfold_dup(f.value, f.value_len);
		} else if (text_mem_equals_ci(n, nl, "Location") && part->location == NULL) {
			part->location = unfold_dup(f.value, f.value_len);
		} else if (text_mem_equals_ci(n, nl, "Disposition") && part->disposition == NULL) {
			parse_disposition(f.value, f.value_len, part);
		} else if (text_mem_equals_ci(n, nl, "Language") && !part->has_language) {
			parse_language(f.value, f.value_len, part);
		}
	}
	if (part->type == NULL)
		part_set_default_type(part, digest_child);

	bool within = depth < MIME_MAX_DEPTH && ctx->part_count < MIME_MAX_PARTS;

	if (mime_part_is(part, "multipart", NULL)) {
		const char *boundary = mime_param_get(part->params, part->param_count, "boundary");

		if (!within) {
			part_make_opaque(part);
		} else {
			part->multipart = true;
			parse_multipart(ctx, part, boundary == NULL ? "" : boundary, extra);
		}
	} else if (mime_part_is(part, "message", "rfc822")) {
		if (!within) {
			part_make_opaque(part);
		} else {
			const struct mime_part *inner;

			part->message = true;
			part->children = parse_part(ctx, part, part->body_off, end, extra, depth + 1,
						    false);
			part->child_count = 1;
			inner = part->children;
			if (inner->body_off + inner->body_len > end)
				part->body_len = inner->body_off + inner->body_len - part->body_off;
		}
	}
	if (part->body_off + part->body_len > end)
		part->lines = count_lf(p + part->body_off, part->body_len);
	return part;
}

struct mime_message *
mime_parse(const char *msg, size_t len)
{
	struct mime_message *m = xcalloc(1, sizeof(*m));
	struct parse_ctx ctx = { .msg = msg == NULL ? "" : msg, .len = msg == NULL ? 0 : len };

	m->root = parse_part(&ctx, NULL, 0, ctx.len, 0, 0, false);
	m->part_count = ctx.part_count;
	m->len = ctx.len;
	return m;
}

/* Frees part and its subtree. Iterative over siblings; the depth of the
   recursion is bounded by MIME_MAX_DEPTH like the tree itself. */
static void
part_free(struct mime_part *part)
{
	while (part != NULL) {
		struct mime_part *next = part->next;

		part_free(part->children);
		free(part->type);
		free(part->subtype);
		params_free(part->params, part->param_count);
		free(part->encoding_str);
		free(part->id);
		free(part->description);
		free(part->md5);
		free(part->location);
		free(part->disposition);
		params_free(part->disp_params, part->disp_param_count);
		for (size_t i = 0; i < part->language_count; i++)
			free(part->languages[i]);
		free(part->languages);
		free(part);
		part = next;
	}
}

void
mime_message_free(struct mime_message **mp)
{
	if (*mp == NULL)
		return;
	part_free((*mp)->root);
	free(*mp);
	*mp = NULL;
}

/* --- body text ------------------------------------------------------- */

/* Appends the searchable text of part: multiparts walked, the header
   and text of an attached message/rfc822, text parts decoded (transfer
   encoding and charset); other parts are skipped except the message
   itself, whose body is searched (decoded) whatever its type. An opaque
   part (beyond the parser's limits) and a multipart whose boundary never
   occurs are searched raw. Recursion follows the tree, whose depth the
   parser bounds by MIME_MAX_DEPTH. */
static void
part_text(const struct mime_part *part, const char *msg, size_t len, struct buf *out)
{
	if (part->multipart && !part->boundary_found) {
		buf_append(out, msg + part->body_off, part->body_len);
	} else if (part->multipart) {
		for (const struct mime_part *c = part->children; c != NULL; c = c->next) {
			if (out->len > 0 && (c->multipart || c->message || c->opaque ||
					     mime_part_is(c, "text", NULL)))
				buf_append_c(out, '\n');
			part_text(c, msg, len, out);
		}
	} else if (part->message) {
		const struct mime_part *inner = part->children;

		buf_append(out, msg + inner->hdr_off, inner->hdr_len);
		part_text(inner, msg, len, out);
	} else if (part->opaque) {
		buf_append(out, msg + part->body_off, part->body_len);
	} else if (mime_part_is(part, "text", NULL) || part->parent == NULL) {
		mime_part_decoded(part, msg, len, out);
	}
}

void
mime_body_text(const char *msg, size_t len, struct buf *out)
{
	struct mime_message *m = mime_parse(msg, len);

	buf_append(out, "", 0);
	part_text(m->root, msg, len, out);
	mime_message_free(&m);
}

/* True if body would not come back the same from a store that keeps
   lines (CRLF): a NUL, or a CR or LF that is not part of a CRLF. */
static bool
body_needs_encoding(const char *body, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (body[i] == '\0')
			return true;
		if (body[i] == '\r' && (i + 1 == len || body[i + 1] != '\n'))
			return true;
		if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r'))
			return true;
	}
	return false;
}

/* Appends part's header with its Content-Transfer-Encoding made base64,
   then its body in base64 lines of 76 characters. */
static void
part_as_base64(const struct mime_part *part, const char *msg, struct buf *out)
{
	const char *hdr = msg + part->hdr_off;
	size_t pos = 0;
	struct message_field f;
	struct buf b64 = BUF_INIT;

	while (message_header_next(hdr, part->hdr_len, &pos, &f)) {
		if (f.name_len == 25 && text_mem_equals_ci(f.name, 25, "Content-Transfer-Encoding"))
			buf_append_str(out, "Content-Transfer-Encoding: base64\r\n");
		else
			buf_append(out, f.raw, f.raw_len);
	}
	/* the blank line that ends the header (junk lines are left out) */
	buf_append_str(out, "\r\n");
	base64_encode(msg + part->body_off, part->body_len, &b64);
	for (size_t i = 0; i < b64.len; i += 76) {
		size_t n = b64.len - i < 76 ? b64.len - i : 76;
		buf_append(out, b64.data + i, n);
		buf_append_str(out, "\r\n");
	}
	buf_free(&b64);
}

/* Walks the tree in order: rewrites each leaf part in binary that needs
   it, copying what lies between. *copied is how far msg was written. */
static void
binary_parts_rewrite(const struct mime_part *part, const char *msg, size_t *copied,
		     struct buf *out, bool *changed)
{
	if (part->multipart || part->message) {
		for (const struct mime_part *c = part->children; c != NULL; c = c->next)
			binary_parts_rewrite(c, msg, copied, out, changed);
		return;
	}
	if (part->encoding != MIME_ENC_BINARY || part->hdr_off < *copied ||
	    !body_needs_encoding(msg + part->body_off, part->body_len))
		return;
	buf_append(out, msg + *copied, part->hdr_off - *copied);
	part_as_base64(part, msg, out);
	*copied = part->body_off + part->body_len;
	*changed = true;
}

bool
mime_binary_to_base64(const char *msg, size_t len, struct buf *out)
{
	struct mime_message *tree;
	size_t copied = 0;
	bool changed = false;

	if (memchr(msg, '\0', len) == NULL && !message_ascii_contains(msg, len, "binary"))
		return false;
	tree = mime_parse(msg, len);
	buf_reset(out);
	binary_parts_rewrite(tree->root, msg, &copied, out, &changed);
	if (changed)
		buf_append(out, msg + copied, len - copied);
	mime_message_free(&tree);
	return changed;
}
