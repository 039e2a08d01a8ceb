/* fetch.c: FETCH data items (RFC 3501 sections 6.4.5 and 7.4.2).

   Every body-data item is sent as a literal "{n}\r\n..." (correct for
   8-bit and binary data, and simple). The response names body sections
   as BODY[...] (BODY.PEEK is answered as BODY), with the field names of
   HEADER.FIELDS as the client sent them, and a partial as <offset>. */
#include "fetch.h"
#include "imap_util.h"
#include "imap_date.h"
#include "imap_envelope.h"
#include "imap_section.h"
#include "fetch_binary.h"
#include "imap_bodystructure.h"
#include "message.h"
#include "mime.h"

#include <stdlib.h>

/* Part numbers of a section such as "1.2.3". */
#define FETCH_MAX_PART_DEPTH 32
/* Field names in one HEADER.FIELDS list. */
#define FETCH_MAX_FIELD_NAMES 256

enum fetch_type {
	FETCH_UID,
	FETCH_FLAGS,
	FETCH_INTERNALDATE,
	FETCH_RFC822_SIZE,
	FETCH_ENVELOPE,
	FETCH_RFC822,
	FETCH_RFC822_HEADER,
	FETCH_RFC822_TEXT,
	FETCH_BODY,            /* the structure, non-extensible */
	FETCH_BODYSTRUCTURE,
	FETCH_SECTION,         /* BODY[...] and BODY.PEEK[...] */
	FETCH_MODSEQ,          /* RFC 7162 CONDSTORE */
	FETCH_BINARY,          /* BINARY[...] and BINARY.PEEK[...] (RFC 3516) */
	FETCH_BINARY_SIZE,     /* BINARY.SIZE[...] */
	FETCH_EMAILID,         /* RFC 8474 OBJECTID */
	FETCH_THREADID,
};

enum section_kind {
	SECTION_ALL,           /* "" or a part number alone */
	SECTION_HEADER,
	SECTION_FIELDS,
	SECTION_FIELDS_NOT,
	SECTION_TEXT,
	SECTION_MIME,
};

struct fetch_item {
	enum fetch_type type;
	bool peek;
	enum section_kind kind;
	uint32_t part[FETCH_MAX_PART_DEPTH];
	size_t part_count;
	char **names;
	size_t name_count;
	bool partial;
	uint32_t offset, count;
	char *resp_name;       /* "BODY[HEADER.FIELDS (FROM TO)]<0>" */
};

struct fetch_spec {
	struct fetch_item *items;
	size_t count;
	bool add_uid;
	bool add_modseq;
};

static void
item_free(struct fetch_item *item)
{
	for (size_t i = 0; i < item->name_count; i++)
		free(item->names[i]);
	free(item->names);
	free(item->resp_name);
}

void
fetch_spec_free(struct fetch_spec **specp)
{
	struct fetch_spec *spec = *specp;

	if (spec == NULL)
		return;
	for (size_t i = 0; i < spec->count; i++)
		item_free(&spec->items[i]);
	free(spec->items);
	free(spec);
	*specp = NULL;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Case-insensitive prefix test; advances *p past it on a match. */
static bool
skip_prefix_ci(const char **p, const char *prefix)
{
	size_t n = strlen(prefix);

	if (ascii_strncasecmp(*p, prefix, n) != 0)
		return false;
	*p += n;
	return true;
}

/* Reads a decimal number of at most 10 digits that fits in uint32. */
static bool
read_u32(const char **p, uint32_t *num_r)
{
	uint64_t n = 0;
	size_t digits = 0;

	while (is_digit(**p)) {
		n = n * 10 + (uint64_t)(**p - '0');
		if (++digits > 10 || n > UINT32_MAX)
			return false;
		(*p)++;
	}
	*num_r = (uint32_t)n;
	return digits > 0;
}

/* Parses "(name name ...)" at *p (names are atoms or quoted strings). */
static int
parse_field_names(const char **p, struct fetch_item *item, const char **error_r)
{
	const char *s = *p;

	while (*s == ' ')
		s++;
	if (*s != '(') {
		*error_r = "HEADER.FIELDS needs a list of field names";
		return -1;
	}
	s++;
	for (;;) {
		const char *start;
		char *name;
		size_t n = 0;

		while (*s == ' ')
			s++;
		if (*s == ')') {
			s++;
			break;
		}
		if (*s == '\0') {
			*error_r = "Unterminated field name list";
			return -1;
		}
		if (item->name_count >= FETCH_MAX_FIELD_NAMES) {
			*error_r = "Too many field names";
			return -1;
		}
		if (*s == '"') {
			start = ++s;
			name = xmalloc(strlen(start) + 1);
			while (*s != '\0' && *s != '"') {
				if (*s == '\\' && s[1] != '\0')
					s++;
				name[n++] = *s++;
			}
			if (*s != '"') {
				free(name);
				*error_r = "Unterminated field name";
				return -1;
			}
			s++;
			name[n] = '\0';
		} else {
			start = s;
			while (*s != '\0' && *s != ' ' && *s != ')' && *s != '(' && *s != '"')
				s++;
			name = xstrndup(start, (size_t)(s - start));
			n = (size_t)(s - start);
		}
		/* A field name is printable ASCII without ':' or space. */
		bool ok = n > 0;
		for (size_t i = 0; i < n && ok; i++)
			ok = (unsigned char)name[i] > 0x20 && (unsigned char)name[i] < 0x7f &&
			     name[i] != ':';
		if (!ok) {
			free(name);
			*error_r = "Invalid field name";
			return -1;
		}
		item->names = xrealloc(item->names, (item->name_count + 1) * sizeof(char *));
		item->names[item->name_count++] = name;
	}
	if (item->name_count == 0) {
		*error_r = "Empty field name list";
		return -1;
	}
	*p = s;
	return 0;
}

/* Parses the section text between '[' and ']' into item. */
static int
parse_section(const char *s, struct fetch_item *item, const char **error_r)
{
	item->kind = SECTION_ALL;
	while (is_digit(*s)) {
		uint32_t n;

		if (!read_u32(&s, &n) || n == 0 || item->part_count >= FETCH_MAX_PART_DEPTH) {
			*error_r = "Invalid section part number";
			return -1;
		}
		item->part[item->part_count++] = n;
		if (*s == '\0')
			return 0;
		if (*s != '.') {
			*error_r = "Invalid section";
			return -1;
		}
		s++;
	}
	if (*s == '\0' && item->part_count == 0)
		return 0;
	if (skip_prefix_ci(&s, "HEADER.FIELDS.NOT")) {
		item->kind = SECTION_FIELDS_NOT;
		if (parse_field_names(&s, item, error_r) < 0)
			return -1;
	} else if (skip_prefix_ci(&s, "HEADER.FIELDS")) {
		item->kind = SECTION_FIELDS;
		if (parse_field_names(&s, item, error_r) < 0)
			return -1;
	} else if (skip_prefix_ci(&s, "HEADER")) {
		item->kind = SECTION_HEADER;
	} else if (skip_prefix_ci(&s, "TEXT")) {
		item->kind = SECTION_TEXT;
	} else if (item->part_count > 0 && skip_prefix_ci(&s, "MIME")) {
		item->kind = SECTION_MIME;
	} else {
		*error_r = "Invalid section";
		return -1;
	}
	if (*s != '\0') {
		*error_r = "Invalid section";
		return -1;
	}
	return 0;
}

/* The canonical response name of a section item. */
static char *
section_resp_name(const struct fetch_item *item)
{
	static const char *const kinds[] = {
		[SECTION_ALL] = "", [SECTION_HEADER] = "HEADER",
		[SECTION_FIELDS] = "HEADER.FIELDS", [SECTION_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[SECTION_TEXT] = "TEXT", [SECTION_MIME] = "MIME",
	};
	struct buf b = BUF_INIT;

	buf_append_str(&b, "BODY[");
	for (size_t i = 0; i < item->part_count; i++) {
		if (i > 0)
			buf_append_c(&b, '.');
		buf_append_u64(&b, item->part[i]);
	}
	if (item->kind != SECTION_ALL) {
		if (item->part_count > 0)
			buf_append_c(&b, '.');
		buf_append_str(&b, kinds[item->kind]);
	}
	if (item->kind == SECTION_FIELDS || item->kind == SECTION_FIELDS_NOT) {
		buf_append_str(&b, " (");
		for (size_t i = 0; i < item->name_count; i++) {
			if (i > 0)
				buf_append_c(&b, ' ');
			/* Names are atoms or were quoted: quote when needed. */
			if (imap_is_atom(item->names[i]))
				buf_append_str(&b, item->names[i]);
			else
				buf_append_imap_string(&b, item->names[i], strlen(item->names[i]));
		}
		buf_append_c(&b, ')');
	}
	buf_append_c(&b, ']');
	if (item->partial)
		buf_printf(&b, "<%u>", item->offset);
	return buf_steal(&b);
}

/* Parses "BODY[...]<o.n>" / "BODY.PEEK[...]<o.n>" after the '['. */
static int
parse_body_section(const char *s, struct fetch_item *item, const char **error_r)
{
	const char *close = strchr(s, ']');
	char *section;
	int ret;

	if (close == NULL) {
		*error_r = "Missing ']' in section";
		return -1;
	}
	section = xstrndup(s, (size_t)(close - s));
	ret = parse_section(section, item, error_r);
	free(section);
	if (ret < 0)
		return -1;
	s = close + 1;
	if (*s == '<') {
		s++;
		if (!read_u32(&s, &item->offset) || *s++ != '.' || !read_u32(&s, &item->count) ||
		    item->count == 0 || *s++ != '>' || *s != '\0') {
			*error_r = "Invalid partial";
			return -1;
		}
		item->partial = true;
	} else if (*s != '\0') {
		*error_r = "Invalid characters after section";
		return -1;
	}
	item->type = FETCH_SECTION;
	item->resp_name = section_resp_name(item);
	return 0;
}

/* Parses "BINARY[1.2]<o.n>", "BINARY.PEEK[...]", "BINARY.SIZE[...]" (the
   whole atom is name, s points after its '['): section-binary is part
   numbers alone (RFC 9051 9); no partial for BINARY.SIZE. */
static int
parse_binary_section(const char *name, const char *s, struct fetch_item *item,
		     const char **error_r)
{
	bool size = ascii_strncasecmp(name, "BINARY.SIZE[", 12) == 0;
	struct buf b = BUF_INIT;

	item->peek = size || ascii_strncasecmp(name, "BINARY.PEEK[", 12) == 0;
	item->type = size ? FETCH_BINARY_SIZE : FETCH_BINARY;
	while (is_digit(*s)) {
		uint32_t n;

		if (!read_u32(&s, &n) || n == 0 || item->part_count >= FETCH_MAX_PART_DEPTH) {
			*error_r = "Invalid section part number";
			return -1;
		}
		item->part[item->part_count++] = n;
		if (*s == '.' && is_digit(s[1]))
			s++;
		else
			break;
	}
	if (*s++ != ']') {
		*error_r = "Invalid BINARY section (part numbers only)";
		return -1;
	}
	if (*s == '<' && !size) {
		s++;
		if (!read_u32(&s, &item->offset) || *s++ != '.' || !read_u32(&s, &item->count) ||
		    item->count == 0 || *s++ != '>') {
			*error_r = "Invalid partial";
			return -1;
		}
		item->partial = true;
	}
	if (*s != '\0') {
		*error_r = "Invalid characters after section";
		return -1;
	}
	buf_append_str(&b, size ? "BINARY.SIZE[" : "BINARY[");
	for (size_t i = 0; i < item->part_count; i++)
		buf_printf(&b, "%s%u", i > 0 ? "." : "", item->part[i]);
	buf_append_c(&b, ']');
	if (item->partial)
		buf_printf(&b, "<%u>", item->offset);
	item->resp_name = buf_steal(&b);
	return 0;
}

static const struct {
	const char *name;
	enum fetch_type type;
} simple_items[] = {
	{ "UID", FETCH_UID },
	{ "FLAGS", FETCH_FLAGS },
	{ "INTERNALDATE", FETCH_INTERNALDATE },
	{ "RFC822.SIZE", FETCH_RFC822_SIZE },
	{ "ENVELOPE", FETCH_ENVELOPE },
	{ "RFC822", FETCH_RFC822 },
	{ "RFC822.HEADER", FETCH_RFC822_HEADER },
	{ "RFC822.TEXT", FETCH_RFC822_TEXT },
	{ "BODY", FETCH_BODY },
	{ "BODYSTRUCTURE", FETCH_BODYSTRUCTURE },
	{ "MODSEQ", FETCH_MODSEQ },
	{ "EMAILID", FETCH_EMAILID },
	{ "THREADID", FETCH_THREADID },
};

static int
spec_add_named(struct fetch_spec *spec, enum fetch_type type)
{
	spec->items = xrealloc(spec->items, (spec->count + 1) * sizeof(*spec->items));
	i_zero(&spec->items[spec->count]);
	spec->items[spec->count++].type = type;
	return 0;
}

static int
parse_item(struct fetch_spec *spec, const struct imap_arg *arg, const char **error_r)
{
	struct fetch_item item;
	const char *s;

	if (arg->type != IMAP_ARG_ATOM || arg->str == NULL || strlen(arg->str) != arg->len) {
		*error_r = "Invalid FETCH item";
		return -1;
	}
	s = arg->str;
	for (size_t i = 0; i < N_ELEMENTS(simple_items); i++) {
		if (ascii_strcasecmp(s, simple_items[i].name) == 0)
			return spec_add_named(spec, simple_items[i].type);
	}
	i_zero(&item);
	if (skip_prefix_ci(&s, "BINARY.PEEK[") || skip_prefix_ci(&s, "BINARY.SIZE[") ||
	    skip_prefix_ci(&s, "BINARY[")) {
		if (parse_binary_section(arg->str, s, &item, error_r) < 0) {
			item_free(&item);
			return -1;
		}
		spec->items = xrealloc(spec->items, (spec->count + 1) * sizeof(*spec->items));
		spec->items[spec->count++] = item;
		return 0;
	}
	if (skip_prefix_ci(&s, "BODY.PEEK["))
		item.peek = true;
	else if (!skip_prefix_ci(&s, "BODY[")) {
		*error_r = "Unknown FETCH item";
		return -1;
	}
	if (parse_body_section(s, &item, error_r) < 0) {
		item_free(&item);
		return -1;
	}
	spec->items = xrealloc(spec->items, (spec->count + 1) * sizeof(*spec->items));
	spec->items[spec->count++] = item;
	return 0;
}

int
fetch_parse(const struct imap_arg *args, size_t count, struct fetch_spec **spec_r,
	    const char **error_r)
{
	struct fetch_spec *spec;
	const struct imap_arg *list = args;
	size_t list_count = count;

	*spec_r = NULL;
	if (count == 0) {
		*error_r = "Missing FETCH items";
		return -1;
	}
	spec = xcalloc(1, sizeof(*spec));
	if (count == 1 && args[0].type == IMAP_ARG_ATOM && args[0].str != NULL) {
		const char *s = args[0].str;

		if (ascii_strcasecmp(s, "ALL") == 0 || ascii_strcasecmp(s, "FAST") == 0 ||
		    ascii_strcasecmp(s, "FULL") == 0) {
			spec_add_named(spec, FETCH_FLAGS);
			spec_add_named(spec, FETCH_INTERNALDATE);
			spec_add_named(spec, FETCH_RFC822_SIZE);
			if (ascii_strcasecmp(s, "FAST") != 0)
				spec_add_named(spec, FETCH_ENVELOPE);
			if (ascii_strcasecmp(s, "FULL") == 0)
				spec_add_named(spec, FETCH_BODY);
			*spec_r = spec;
			return 0;
		}
	}
	if (count == 1 && args[0].type == IMAP_ARG_LIST) {
		list = args[0].list;
		list_count = args[0].list_count;
		if (list_count == 0) {
			*error_r = "Empty FETCH item list";
			fetch_spec_free(&spec);
			return -1;
		}
	}
	/* Several items without parentheses are taken as a list (lenient). */
	for (size_t i = 0; i < list_count; i++) {
		if (parse_item(spec, &list[i], error_r) < 0) {
			fetch_spec_free(&spec);
			return -1;
		}
	}
	*spec_r = spec;
	return 0;
}

static bool
spec_has(const struct fetch_spec *spec, enum fetch_type type)
{
	for (size_t i = 0; i < spec->count; i++) {
		if (spec->items[i].type == type)
			return true;
	}
	return false;
}

void
fetch_spec_add_uid(struct fetch_spec *spec)
{
	if (!spec_has(spec, FETCH_UID))
		spec->add_uid = true;
}

void
fetch_spec_add_modseq(struct fetch_spec *spec)
{
	if (!spec_has(spec, FETCH_MODSEQ))
		spec->add_modseq = true;
}

bool
fetch_spec_has_modseq(const struct fetch_spec *spec)
{
	return spec->add_modseq || spec_has(spec, FETCH_MODSEQ);
}

bool
fetch_spec_needs_message(const struct fetch_spec *spec)
{
	for (size_t i = 0; i < spec->count; i++) {
		switch (spec->items[i].type) {
		case FETCH_MODSEQ:
		case FETCH_UID:
		case FETCH_FLAGS:
		case FETCH_INTERNALDATE:
		case FETCH_RFC822_SIZE:
		case FETCH_THREADID:
			break;
		default:
			return true;
		}
	}
	return false;
}

bool
fetch_spec_sets_seen(const struct fetch_spec *spec)
{
	for (size_t i = 0; i < spec->count; i++) {
		const struct fetch_item *item = &spec->items[i];

		if (((item->type == FETCH_SECTION || item->type == FETCH_BINARY) && !item->peek) ||
		    item->type == FETCH_RFC822 ||
		    item->type == FETCH_RFC822_TEXT)
			return true;
	}
	return false;
}

bool
fetch_spec_has_flags(const struct fetch_spec *spec)
{
	return spec_has(spec, FETCH_FLAGS);
}

/* True if item is answered from the message's header alone. */
static bool
item_is_own_header(const struct fetch_item *item)
{
	if (item->type == FETCH_RFC822_HEADER)
		return true;
	return item->type == FETCH_SECTION && item->part_count == 0 &&
	       (item->kind == SECTION_HEADER || item->kind == SECTION_FIELDS ||
		item->kind == SECTION_FIELDS_NOT);
}

bool
fetch_spec_uses_cache(const struct fetch_spec *spec)
{
	for (size_t i = 0; i < spec->count; i++) {
		const struct fetch_item *item = &spec->items[i];

		if (item->type == FETCH_ENVELOPE || item->type == FETCH_BODY ||
		    item->type == FETCH_BODYSTRUCTURE || item_is_own_header(item))
			return true;
	}
	return false;
}

bool
fetch_spec_cache_answers(const struct fetch_spec *spec)
{
	for (size_t i = 0; i < spec->count; i++) {
		const struct fetch_item *item = &spec->items[i];

		switch (item->type) {
		case FETCH_MODSEQ:
		case FETCH_UID:
		case FETCH_FLAGS:
		case FETCH_INTERNALDATE:
		case FETCH_RFC822_SIZE:
		case FETCH_ENVELOPE:
		case FETCH_BODY:
		case FETCH_BODYSTRUCTURE:
		case FETCH_THREADID:
			break;
		default:
			if (!item_is_own_header(item))
				return false;
		}
	}
	return true;
}

bool
fetch_spec_cache_needs_header(const struct fetch_spec *spec)
{
	return (fetch_spec_cache_fields(spec) & (1U << MCACHE_HEADER)) != 0;
}

unsigned
fetch_spec_cache_fields(const struct fetch_spec *spec)
{
	unsigned fields = 0;

	for (size_t i = 0; i < spec->count; i++) {
		const struct fetch_item *item = &spec->items[i];

		if (item->type == FETCH_ENVELOPE)
			fields |= 1U << MCACHE_ENVELOPE;
		else if (item->type == FETCH_BODY)
			fields |= 1U << MCACHE_BODY;
		else if (item->type == FETCH_BODYSTRUCTURE)
			fields |= 1U << MCACHE_BODYSTRUCTURE;
		else if (item_is_own_header(item))
			fields |= 1U << MCACHE_HEADER;
	}
	return fields;
}

/* --- writing --------------------------------------------------------- */

/* A literal of data. RFC 3501 (4.3, 9: CHAR8) allows no NUL in a
   literal; a message stored with one (written by another tool, or before
   SMTP refused them) is sent with each NUL as 0x80, as Dovecot does
   outside BINARY: the size stays, and nothing else changes. */
static void
write_literal(struct buf *out, const char *data, size_t len)
{
	char *p, *end;

	buf_append_c(out, '{');
	buf_append_u64(out, len);
	buf_append_str(out, "}\r\n");
	buf_append(out, data, len);
	p = out->data + out->len - len;
	end = out->data + out->len;
	while (p < end && (p = memchr(p, '\0', (size_t)(end - p))) != NULL)
		*p++ = (char)0x80;
}

/* Per fetch_write(): the message and its part tree, parsed (or taken
   from the cache) at most once, when an item first needs it. */
struct write_ctx {
	const struct fetch_msg *msg;
	const char *data;
	size_t len;
	const struct mime_message *tree;
	struct mime_message *owned;           /* freed at the end when not cached */
	const struct mcache_entry *cached;    /* NULL, or the listing cache entry */
};

/* The cached string of field f, or NULL. */
static const char *
ctx_cached(const struct write_ctx *ctx, enum mcache_field f, size_t *len_r)
{
	if (ctx->cached == NULL || ctx->cached->data[f] == NULL)
		return NULL;
	*len_r = ctx->cached->len[f];
	return ctx->cached->data[f];
}

static const struct mime_message *
ctx_tree(struct write_ctx *ctx)
{
	const struct fetch_msg *msg = ctx->msg;

	if (ctx->tree != NULL)
		return ctx->tree;
	if (msg->cache != NULL && msg->cache_owner != NULL && msg->data != NULL) {
		ctx->tree = mime_cache_parse(msg->cache, msg->cache_owner, msg->rec->uid,
					     ctx->data, ctx->len);
	} else {
		ctx->owned = mime_parse(ctx->data, ctx->len);
		ctx->tree = ctx->owned;
	}
	return ctx->tree;
}

/* The octets of a body section: points *data_r into the message, or
   into tmp for HEADER.FIELDS. A section that does not exist is the empty
   string (as Dovecot answers). */
static void
section_data(const struct fetch_item *item, struct write_ctx *ctx, struct buf *tmp,
	     const char **data_r, size_t *len_r)
{
	static const enum imap_section_kind kinds[] = {
		[SECTION_ALL] = IMAP_SECTION_ALL, [SECTION_HEADER] = IMAP_SECTION_HEADER,
		[SECTION_FIELDS] = IMAP_SECTION_HEADER, [SECTION_FIELDS_NOT] = IMAP_SECTION_HEADER,
		[SECTION_TEXT] = IMAP_SECTION_TEXT, [SECTION_MIME] = IMAP_SECTION_MIME,
	};
	const char *data = ctx->data;
	size_t len = ctx->len, off = 0, slen = 0;
	int found;

	*data_r = "";
	*len_r = 0;
	if (item->part_count == 0 && item->kind != SECTION_ALL && item->kind != SECTION_TEXT &&
	    (data = ctx_cached(ctx, MCACHE_HEADER, &len)) != NULL) {
		/* the message's own header, from the listing cache */
		found = 1;
		slen = len;
	} else if (item->part_count == 0) {
		/* No tree needed for the message's own sections. */
		size_t hdr_len;

		data = ctx->data;
		len = ctx->len;
		hdr_len = message_header_size(data, len);

		found = 1;
		if (item->kind == SECTION_ALL) {
			slen = len;
		} else if (item->kind == SECTION_TEXT) {
			off = hdr_len;
			slen = len - hdr_len;
		} else {
			slen = hdr_len;
		}
	} else {
		found = imap_section_range(ctx_tree(ctx), item->part, item->part_count,
					   kinds[item->kind], &off, &slen);
	}
	if (found <= 0 || off > len || slen > len - off)
		return;
	if (item->kind == SECTION_FIELDS || item->kind == SECTION_FIELDS_NOT) {
		message_header_fields(data + off, slen, (const char *const *)item->names,
				      item->name_count, item->kind == SECTION_FIELDS_NOT, tmp);
		*data_r = tmp->data;
		*len_r = tmp->len;
		return;
	}
	*data_r = data + off;
	*len_r = slen;
}

/* Writes item from the listing cache entry if it holds it. Returns true
   if it did. */
static bool
write_item_cached(const struct fetch_item *item, struct write_ctx *ctx, struct buf *out)
{
	static const char *const names[] = {
		[MCACHE_ENVELOPE] = "ENVELOPE ", [MCACHE_BODY] = "BODY ",
		[MCACHE_BODYSTRUCTURE] = "BODYSTRUCTURE ", [MCACHE_HEADER] = "RFC822.HEADER ",
	};
	enum mcache_field f;
	const char *s;
	size_t len;

	switch (item->type) {
	case FETCH_ENVELOPE:
		f = MCACHE_ENVELOPE;
		break;
	case FETCH_BODY:
		f = MCACHE_BODY;
		break;
	case FETCH_BODYSTRUCTURE:
		f = MCACHE_BODYSTRUCTURE;
		break;
	case FETCH_RFC822_HEADER:
		f = MCACHE_HEADER;
		break;
	default:
		return false;
	}
	if ((s = ctx_cached(ctx, f, &len)) == NULL)
		return false;
	buf_append_str(out, names[f]);
	if (f == MCACHE_HEADER)
		write_literal(out, s, len);
	else
		buf_append(out, s, len);
	return true;
}

/* BINARY[...] and BINARY.SIZE[...]: a transfer encoding we cannot
   decode answers NIL (and 0) here, and the command NO [UNKNOWN-CTE]
   (msg->unknown_cte). */
static void
write_binary(const struct fetch_item *item, struct write_ctx *ctx, struct buf *out)
{
	struct buf tmp = BUF_INIT;
	const char *sdata;
	size_t slen;
	int ret = fetch_binary_data(item->part_count > 0 ? ctx_tree(ctx) : NULL, ctx->data,
				    ctx->len, item->part, item->part_count, &tmp, &sdata, &slen);

	buf_append_str(out, item->resp_name);
	buf_append_c(out, ' ');
	if (ret < 0) {
		if (ctx->msg->unknown_cte != NULL)
			*ctx->msg->unknown_cte = true;
		buf_append_str(out, item->type == FETCH_BINARY_SIZE ? "0" : "NIL");
	} else if (item->type == FETCH_BINARY_SIZE) {
		buf_append_u64(out, slen);
	} else {
		if (item->partial) {
			if (item->offset >= slen) {
				slen = 0;
			} else {
				sdata += item->offset;
				slen -= item->offset;
				if (slen > item->count)
					slen = item->count;
			}
		}
		fetch_binary_write_literal(out, sdata, slen);
	}
	buf_free(&tmp);
}

static void
write_item(const struct fetch_item *item, struct write_ctx *ctx, struct buf *out)
{
	const struct fetch_msg *msg = ctx->msg;
	const struct mail_rec *rec = msg->rec;
	const char *data = ctx->data;
	size_t len = ctx->len;
	size_t hdr_len;
	struct buf tmp = BUF_INIT;
	const char *sdata;
	size_t slen;

	if (ctx->cached != NULL && write_item_cached(item, ctx, out))
		return;
	switch (item->type) {
	case FETCH_UID:
		buf_append_str(out, "UID ");
		buf_append_u64(out, rec->uid);
		break;
	case FETCH_MODSEQ:
		/* Mod-sequences are positive (RFC 7162 3.1). */
		buf_printf(out, "MODSEQ (%llu)",
			   (unsigned long long)(rec->modseq > 0 ? rec->modseq : 1));
		break;
	case FETCH_FLAGS:
		buf_append_str(out, "FLAGS ");
		imap_write_flags(out, rec->flags, rec->keywords, msg->recent, msg->state);
		break;
	case FETCH_INTERNALDATE:
		buf_append_str(out, "INTERNALDATE \"");
		imap_date_write(rec->internal_date, rec->tz_minutes, out);
		buf_append_c(out, '"');
		break;
	case FETCH_RFC822_SIZE:
		buf_append_str(out, "RFC822.SIZE ");
		buf_append_u64(out, rec->size);
		break;
	case FETCH_ENVELOPE:
		buf_append_str(out, "ENVELOPE ");
		imap_envelope(data, len, out);
		break;
	case FETCH_RFC822:
		buf_append_str(out, "RFC822 ");
		write_literal(out, data, len);
		break;
	case FETCH_RFC822_HEADER:
		buf_append_str(out, "RFC822.HEADER ");
		write_literal(out, data, message_header_size(data, len));
		break;
	case FETCH_RFC822_TEXT:
		hdr_len = message_header_size(data, len);
		buf_append_str(out, "RFC822.TEXT ");
		write_literal(out, data + hdr_len, len - hdr_len);
		break;
	case FETCH_BODY:
		buf_append_str(out, "BODY ");
		imap_write_body_structure(out, ctx_tree(ctx)->root, data, len, false);
		break;
	case FETCH_BODYSTRUCTURE:
		buf_append_str(out, "BODYSTRUCTURE ");
		imap_write_body_structure(out, ctx_tree(ctx)->root, data, len, true);
		break;
	case FETCH_SECTION:
		section_data(item, ctx, &tmp, &sdata, &slen);
		if (item->partial) {
			if (item->offset >= slen) {
				slen = 0;
			} else {
				sdata += item->offset;
				slen -= item->offset;
				if (slen > item->count)
					slen = item->count;
			}
		}
		buf_append_str(out, item->resp_name);
		buf_append_c(out, ' ');
		write_literal(out, sdata, slen);
		break;
	case FETCH_BINARY:
	case FETCH_BINARY_SIZE:
		write_binary(item, ctx, out);
		break;
	case FETCH_EMAILID:
		fetch_write_emailid(data, len, out);
		break;
	case FETCH_THREADID:
		fetch_write_threadid(out);
		break;
	}
	buf_free(&tmp);
}

void
fetch_write(const struct fetch_spec *spec, const struct fetch_msg *msg, struct buf *out)
{
	struct write_ctx ctx = {
		.msg = msg, .data = msg->data != NULL ? msg->data : "",
		.len = msg->data != NULL ? msg->len : 0, .cached = msg->cached,
	};
	bool first = true;

	/* (no printf: a listing writes these a million times) */
	buf_append_str(out, "* ");
	buf_append_u64(out, msg->uidonly ? msg->rec->uid : msg->seq);
	buf_append_str(out, msg->uidonly ? " UIDFETCH (" : " FETCH (");
	if (spec->add_uid && !msg->uidonly) {
		buf_append_str(out, "UID ");
		buf_append_u64(out, msg->rec->uid);
		first = false;
	}
	for (size_t i = 0; i < spec->count; i++) {
		if (!first)
			buf_append_c(out, ' ');
		write_item(&spec->items[i], &ctx, out);
		first = false;
	}
	if (msg->add_flags && !fetch_spec_has_flags(spec)) {
		if (!first)
			buf_append_c(out, ' ');
		buf_append_str(out, "FLAGS ");
		imap_write_flags(out, msg->rec->flags, msg->rec->keywords, msg->recent, msg->state);
		first = false;
	}
	if (spec->add_modseq) {
		if (!first)
			buf_append_c(out, ' ');
		buf_printf(out, "MODSEQ (%llu)",
			   (unsigned long long)(msg->rec->modseq > 0 ? msg->rec->modseq : 1));
	}
	buf_append_str(out, ")\r\n");
	mime_message_free(&ctx.owned);
}

void
fetch_cache_entry(const struct fetch_msg *msg, struct buf bufs[3], struct mcache_entry *entry_r)
{
	struct write_ctx ctx = { .msg = msg, .data = msg->data, .len = msg->len };
	const struct mime_message *tree = ctx_tree(&ctx);
	size_t hdr_len = message_header_size(msg->data, msg->len);

	for (int i = 0; i < 3; i++)
		buf_reset(&bufs[i]);
	imap_envelope(msg->data, msg->len, &bufs[0]);
	imap_write_body_structure(&bufs[1], tree->root, msg->data, msg->len, false);
	imap_write_body_structure(&bufs[2], tree->root, msg->data, msg->len, true);
	mime_message_free(&ctx.owned);
	memset(entry_r, 0, sizeof(*entry_r));
	entry_r->data[MCACHE_ENVELOPE] = bufs[0].data != NULL ? bufs[0].data : "";
	entry_r->len[MCACHE_ENVELOPE] = bufs[0].len;
	entry_r->data[MCACHE_BODY] = bufs[1].data != NULL ? bufs[1].data : "";
	entry_r->len[MCACHE_BODY] = bufs[1].len;
	entry_r->data[MCACHE_BODYSTRUCTURE] = bufs[2].data != NULL ? bufs[2].data : "";
	entry_r->len[MCACHE_BODYSTRUCTURE] = bufs[2].len;
	if (hdr_len <= MCACHE_HEADER_MAX) {
		entry_r->data[MCACHE_HEADER] = msg->len > 0 ? msg->data : "";
		entry_r->len[MCACHE_HEADER] = hdr_len;
	}
}
