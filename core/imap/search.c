/* search.c: IMAP SEARCH programs (RFC 3501 section 6.4.4).

   search_parse() turns the arguments into a tree of keys; the list of
   top-level keys (and of a parenthesized group) is an AND. Nesting (NOT,
   OR, parentheses) is bounded by SEARCH_MAX_DEPTH, so neither parsing nor
   matching recurses without limit.

   String keys match case-insensitively (message_str_contains()) on the
   RFC 2047-decoded header values (for FROM, TO, CC and BCC the addresses
   as message_address_list_write() writes them) and on the decoded body text
   (mime_body_text(), which walks the tree of the MIME parser,
   core/mail/mime.h: text parts decoded from quoted-printable or base64 and
   converted to UTF-8 from their charset). */
#include "search.h"
#include "address.h"
#include "imap_date.h"
#include "message.h"
#include "mime.h"
#include "seqset.h"

#include <stdlib.h>

#define SEARCH_MAX_DEPTH 64

enum search_type {
	SEARCH_AND,            /* children */
	SEARCH_OR,             /* children[0] or children[1] */
	SEARCH_NOT,            /* children[0] */
	SEARCH_ALL,
	SEARCH_SEQSET,         /* set */
	SEARCH_UIDSET,         /* set */
	SEARCH_FLAG,           /* flag set */
	SEARCH_NOFLAG,         /* flag not set */
	SEARCH_RECENT,
	SEARCH_NEW,            /* recent and not seen */
	SEARCH_KEYWORD,        /* keyword index; -1 unknown */
	SEARCH_UNKEYWORD,
	SEARCH_BEFORE,         /* internal date's day < days */
	SEARCH_ON,
	SEARCH_SINCE,
	SEARCH_SENTBEFORE,     /* Date: header's day */
	SEARCH_SENTON,
	SEARCH_SENTSINCE,
	SEARCH_LARGER,         /* size > number */
	SEARCH_SMALLER,
	SEARCH_HEADER,         /* field contains value */
	SEARCH_BODY,
	SEARCH_TEXT,
	SEARCH_MODSEQ,         /* modseq >= number (RFC 7162) */
	SEARCH_EMAILID,        /* value: the EMAILID (RFC 8474 6) */
	SEARCH_THREADID,       /* value: a THREADID; none is tracked */
};

struct search_key {
	enum search_type type;
	struct search_key **children;
	size_t child_count;
	struct seqset set;
	uint8_t flag;
	int keyword;
	int64_t days;
	uint64_t number;
	char *field;           /* HEADER field name */
	bool address;          /* FROM, TO, CC, BCC: match the addresses */
	char *value;           /* the string to look for (NUL-free up to value_len) */
	size_t value_len;
};

/* Per-message matching context: the message is loaded (and its header
   and body text worked out) at most once. */
struct match_ctx {
	const struct search_msg *msg;
	bool loaded, load_failed;
	const char *data;
	size_t len, hdr_len;
	bool have_body_text;
	struct buf body_text;
	bool have_sent_day;
	int64_t sent_day;
	char emailid[STORAGE_OBJECTID_SIZE]; /* "" until worked out */
};

struct parse_ctx {
	const struct imap_arg *args;
	size_t count, pos;
	const struct mbox_state *state;
	uint32_t star_seq, star_uid;
	const struct seqset *saved;  /* "$" (RFC 5182), or NULL: empty */
	const char *error;
};

static struct search_key *
key_new(enum search_type type)
{
	struct search_key *key = xcalloc(1, sizeof(*key));

	key->type = type;
	return key;
}

static void
key_add_child(struct search_key *parent, struct search_key *child)
{
	parent->children = xrealloc(parent->children,
				    (parent->child_count + 1) * sizeof(*parent->children));
	parent->children[parent->child_count++] = child;
}

void
search_key_free(struct search_key **keyp)
{
	struct search_key *key = *keyp;

	if (key == NULL)
		return;
	/* Depth is bounded by the parser (SEARCH_MAX_DEPTH). */
	for (size_t i = 0; i < key->child_count; i++)
		search_key_free(&key->children[i]);
	free(key->children);
	seqset_free(&key->set);
	free(key->field);
	free(key->value);
	free(key);
	*keyp = NULL;
}

/* The next argument as an astring (an atom spelt NIL is the string
   "NIL"), or NULL with the error set. */
static const struct imap_arg *
next_string(struct parse_ctx *ctx)
{
	const struct imap_arg *arg;

	if (ctx->pos >= ctx->count) {
		ctx->error = "Missing argument for search key";
		return NULL;
	}
	arg = &ctx->args[ctx->pos];
	if (!imap_arg_is_astring(arg) || arg->str == NULL) {
		ctx->error = "Search key argument must be a string";
		return NULL;
	}
	ctx->pos++;
	return arg;
}

static const struct {
	const char *name;
	enum search_type type;
	uint8_t flag;
} simple_keys[] = {
	{ "ALL", SEARCH_ALL, 0 },
	{ "ANSWERED", SEARCH_FLAG, MAIL_ANSWERED },
	{ "DELETED", SEARCH_FLAG, MAIL_DELETED },
	{ "DRAFT", SEARCH_FLAG, MAIL_DRAFT },
	{ "FLAGGED", SEARCH_FLAG, MAIL_FLAGGED },
	{ "SEEN", SEARCH_FLAG, MAIL_SEEN },
	{ "UNANSWERED", SEARCH_NOFLAG, MAIL_ANSWERED },
	{ "UNDELETED", SEARCH_NOFLAG, MAIL_DELETED },
	{ "UNDRAFT", SEARCH_NOFLAG, MAIL_DRAFT },
	{ "UNFLAGGED", SEARCH_NOFLAG, MAIL_FLAGGED },
	{ "UNSEEN", SEARCH_NOFLAG, MAIL_SEEN },
	{ "RECENT", SEARCH_RECENT, 0 },
	{ "NEW", SEARCH_NEW, 0 },
};

static const struct {
	const char *name;
	enum search_type type;
} date_keys[] = {
	{ "BEFORE", SEARCH_BEFORE },
	{ "ON", SEARCH_ON },
	{ "SINCE", SEARCH_SINCE },
	{ "SENTBEFORE", SEARCH_SENTBEFORE },
	{ "SENTON", SEARCH_SENTON },
	{ "SENTSINCE", SEARCH_SENTSINCE },
};

/* Header keys that are shorthands for HEADER <field> <string>. */
static const char *const header_keys[] = { "BCC", "CC", "FROM", "SUBJECT", "TO" };

static struct search_key *parse_key(struct parse_ctx *ctx, unsigned depth);

/* A sequence set starts with a digit or '*'. */
static bool
is_digit_or_star(char c)
{
	return (c >= '0' && c <= '9') || c == '*';
}

/* Parses keys up to the end of ctx's arguments into an AND node. */
static struct search_key *
parse_and(struct parse_ctx *ctx, unsigned depth)
{
	struct search_key *and = key_new(SEARCH_AND);

	if (ctx->pos >= ctx->count) {
		ctx->error = "Empty search program";
		search_key_free(&and);
		return NULL;
	}
	while (ctx->pos < ctx->count) {
		struct search_key *key = parse_key(ctx, depth);

		if (key == NULL) {
			search_key_free(&and);
			return NULL;
		}
		key_add_child(and, key);
	}
	return and;
}

static struct search_key *
parse_string_key(struct parse_ctx *ctx, enum search_type type, const char *field)
{
	const struct imap_arg *arg = next_string(ctx);
	struct search_key *key;

	if (arg == NULL)
		return NULL;
	key = key_new(type);
	if (field != NULL)
		key->field = xstrdup(field);
	key->value = xmalloc(arg->len + 1);
	memcpy(key->value, arg->str, arg->len);
	key->value[arg->len] = '\0';
	key->value_len = arg->len;
	return key;
}

static struct search_key *
parse_keyword_key(struct parse_ctx *ctx, enum search_type type)
{
	const struct imap_arg *arg = next_string(ctx);
	struct search_key *key;

	if (arg == NULL)
		return NULL;
	key = key_new(type);
	key->keyword = -1;
	if (arg->str[0] == '\\') {
		/* Lenient: KEYWORD \Seen means the system flag. */
		static const struct {
			const char *name;
			uint8_t flag;
		} sys[] = {
			{ "\\Seen", MAIL_SEEN }, { "\\Answered", MAIL_ANSWERED },
			{ "\\Flagged", MAIL_FLAGGED }, { "\\Deleted", MAIL_DELETED },
			{ "\\Draft", MAIL_DRAFT },
		};
		for (size_t i = 0; i < N_ELEMENTS(sys); i++) {
			if (ascii_strcasecmp(arg->str, sys[i].name) == 0) {
				key->type = type == SEARCH_KEYWORD ? SEARCH_FLAG : SEARCH_NOFLAG;
				key->flag = sys[i].flag;
				return key;
			}
		}
		return key;            /* an unknown \-flag: like an unknown keyword */
	}
	if (ctx->state != NULL) {
		for (unsigned i = 0; i < ctx->state->keyword_count && i < MBOX_MAX_KEYWORDS; i++) {
			if (ctx->state->keywords[i] != NULL &&
			    ascii_strcasecmp(ctx->state->keywords[i], arg->str) == 0) {
				key->keyword = (int)i;
				break;
			}
		}
	}
	return key;
}

static struct search_key *
parse_list_key(struct parse_ctx *ctx, const struct imap_arg *arg, unsigned depth)
{
	struct parse_ctx sub = *ctx;
	struct search_key *key;

	sub.args = arg->list;
	sub.count = arg->list_count;
	sub.pos = 0;
	key = parse_and(&sub, depth + 1);
	if (key == NULL)
		ctx->error = sub.error;
	return key;
}

/* "$": the UIDs of the saved result, as a UID key (RFC 5182 2.1). */
static struct search_key *
parse_saved_key(struct parse_ctx *ctx)
{
	struct search_key *key = key_new(SEARCH_UIDSET);

	if (ctx->saved != NULL)
		seqset_copy(&key->set, ctx->saved);
	return key;
}

static struct search_key *
parse_seqset_key(struct parse_ctx *ctx, const char *name)
{
	struct search_key *key = key_new(SEARCH_SEQSET);

	if (seqset_parse(name, ctx->star_seq, &key->set) < 0) {
		ctx->error = "Invalid sequence set";
		search_key_free(&key);
	}
	return key;
}

static struct search_key *
parse_date_key(struct parse_ctx *ctx, enum search_type type)
{
	const struct imap_arg *darg = next_string(ctx);
	struct search_key *key;

	if (darg == NULL)
		return NULL;
	key = key_new(type);
	if (imap_date_parse(darg->str, &key->days) < 0) {
		ctx->error = "Invalid date";
		search_key_free(&key);
	}
	return key;
}

/* The keys below take their name as it was matched (in upper case) and
   read their own arguments; NULL with ctx->error set on a mistake. */
typedef struct search_key *named_key_parser(struct parse_ctx *ctx, const char *name,
					    unsigned depth);

static struct search_key *
parse_old_key(struct parse_ctx *ctx, const char *name, unsigned depth)
{
	struct search_key *key = key_new(SEARCH_NOT);

	key_add_child(key, key_new(SEARCH_RECENT));
	return key;
}

static struct search_key *
parse_header_key(struct parse_ctx *ctx, const char *name, unsigned depth)
{
	const struct imap_arg *farg = next_string(ctx);

	if (farg == NULL)
		return NULL;
	if (farg->len == 0 || memchr(farg->str, '\0', farg->len) != NULL) {
		ctx->error = "Invalid header field name";
		return NULL;
	}
	return parse_string_key(ctx, SEARCH_HEADER, farg->str);
}

static struct search_key *
parse_body_key(struct parse_ctx *ctx, const char *name, unsigned depth)
{
	return parse_string_key(ctx, strcmp(name, "BODY") == 0 ? SEARCH_BODY : SEARCH_TEXT, NULL);
}

static struct search_key *
parse_kw_key(struct parse_ctx *ctx, const char *name, unsigned depth)
{
	return parse_keyword_key(ctx, strcmp(name, "KEYWORD") == 0 ? SEARCH_KEYWORD
								   : SEARCH_UNKEYWORD);
}

static struct search_key *
parse_size_key(struct parse_ctx *ctx, const char *name, unsigned depth)
{
	const struct imap_arg *narg = next_string(ctx);
	struct search_key *key;

	if (narg == NULL)
		return NULL;
	key = key_new(strcmp(name, "LARGER") == 0 ? SEARCH_LARGER : SEARCH_SMALLER);
	if (narg->type == IMAP_ARG_LITERAL || str_to_u64(narg->str, UINT32_MAX, &key->number) < 0) {
		ctx->error = "Invalid number";
		search_key_free(&key);
	}
	return key;
}

/* MODSEQ [entry-name entry-type] value: one mod-sequence per message
   here, so the entry is checked and ignored (RFC 7162 3.1.5). */
static struct search_key *
parse_modseq_key(struct parse_ctx *ctx, const char *name, unsigned depth)
{
	const struct imap_arg *marg = next_string(ctx);
	struct search_key *key;

	if (marg == NULL)
		return NULL;
	if (!imap_arg_is_atom(marg)) {
		const struct imap_arg *targ = next_string(ctx);

		if (targ == NULL)
			return NULL;
		if (targ->type != IMAP_ARG_ATOM ||
		    (ascii_strcasecmp(targ->str, "priv") != 0 &&
		     ascii_strcasecmp(targ->str, "shared") != 0 &&
		     ascii_strcasecmp(targ->str, "all") != 0)) {
			ctx->error = "Invalid MODSEQ entry type";
			return NULL;
		}
		marg = next_string(ctx);
		if (marg == NULL)
			return NULL;
	}
	key = key_new(SEARCH_MODSEQ);
	if (marg->type != IMAP_ARG_ATOM || str_to_u64(marg->str, INT64_MAX, &key->number) < 0) {
		ctx->error = "Invalid mod-sequence";
		search_key_free(&key);
	}
	return key;
}

static struct search_key *
parse_uid_key(struct parse_ctx *ctx, const char *name, unsigned depth)
{
	const struct imap_arg *sarg = next_string(ctx);
	struct search_key *key;

	if (sarg == NULL)
		return NULL;
	if (sarg->type == IMAP_ARG_ATOM && strcmp(sarg->str, "$") == 0)
		return parse_saved_key(ctx);
	key = key_new(SEARCH_UIDSET);
	if (sarg->type != IMAP_ARG_ATOM || seqset_parse(sarg->str, ctx->star_uid, &key->set) < 0) {
		ctx->error = "Invalid UID set";
		search_key_free(&key);
	}
	return key;
}

static struct search_key *
parse_not_key(struct parse_ctx *ctx, const char *name, unsigned depth)
{
	struct search_key *child = parse_key(ctx, depth + 1);
	struct search_key *key;

	if (child == NULL) {
		if (ctx->error == NULL)
			ctx->error = "Missing argument for NOT";
		return NULL;
	}
	key = key_new(SEARCH_NOT);
	key_add_child(key, child);
	return key;
}

static struct search_key *
parse_or_key(struct parse_ctx *ctx, const char *name, unsigned depth)
{
	struct search_key *a, *b, *key;

	a = parse_key(ctx, depth + 1);
	if (a == NULL)
		return NULL;
	b = parse_key(ctx, depth + 1);
	if (b == NULL) {
		search_key_free(&a);
		return NULL;
	}
	key = key_new(SEARCH_OR);
	key_add_child(key, a);
	key_add_child(key, b);
	return key;
}

/* EMAILID and THREADID (RFC 8474 6): objectid is 1*255 of ALPHA,
   DIGIT, "-", "_". */
static struct search_key *
parse_objectid_key(struct parse_ctx *ctx, const char *name, unsigned depth)
{
	struct search_key *key;

	(void)depth;
	key = parse_string_key(ctx, strcmp(name, "EMAILID") == 0 ? SEARCH_EMAILID : SEARCH_THREADID,
			       NULL);
	if (key == NULL)
		return NULL;
	if (key->value_len == 0 || key->value_len > 255 ||
	    strspn(key->value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
		    key->value_len) {
		ctx->error = "Invalid object identifier";
		search_key_free(&key);
	}
	return key;
}

static const struct {
	const char *name;
	named_key_parser *parse;
} named_keys[] = {
	{ "OLD", parse_old_key },
	{ "HEADER", parse_header_key },
	{ "BODY", parse_body_key },
	{ "TEXT", parse_body_key },
	{ "KEYWORD", parse_kw_key },
	{ "UNKEYWORD", parse_kw_key },
	{ "LARGER", parse_size_key },
	{ "SMALLER", parse_size_key },
	{ "MODSEQ", parse_modseq_key },
	{ "UID", parse_uid_key },
	{ "NOT", parse_not_key },
	{ "OR", parse_or_key },
	{ "EMAILID", parse_objectid_key },
	{ "THREADID", parse_objectid_key },
};

static struct search_key *
parse_key(struct parse_ctx *ctx, unsigned depth)
{
	const struct imap_arg *arg;
	struct search_key *key;
	const char *name;

	if (depth >= SEARCH_MAX_DEPTH) {
		ctx->error = "Search program nested too deeply";
		return NULL;
	}
	if (ctx->pos >= ctx->count) {
		ctx->error = "Missing search key";
		return NULL;
	}
	arg = &ctx->args[ctx->pos++];
	if (arg->type == IMAP_ARG_LIST)
		return parse_list_key(ctx, arg, depth);
	if (arg->type != IMAP_ARG_ATOM || arg->str == NULL) {
		ctx->error = "Search key must be an atom";
		return NULL;
	}
	name = arg->str;

	if (is_digit_or_star(name[0]))
		return parse_seqset_key(ctx, name);
	if (strcmp(name, "$") == 0)
		return parse_saved_key(ctx);
	for (size_t i = 0; i < N_ELEMENTS(simple_keys); i++) {
		if (ascii_strcasecmp(name, simple_keys[i].name) == 0) {
			key = key_new(simple_keys[i].type);
			key->flag = simple_keys[i].flag;
			return key;
		}
	}
	for (size_t i = 0; i < N_ELEMENTS(date_keys); i++) {
		if (ascii_strcasecmp(name, date_keys[i].name) == 0)
			return parse_date_key(ctx, date_keys[i].type);
	}
	for (size_t i = 0; i < N_ELEMENTS(header_keys); i++) {
		if (ascii_strcasecmp(name, header_keys[i]) == 0) {
			key = parse_string_key(ctx, SEARCH_HEADER, header_keys[i]);
			if (key != NULL)
				key->address = strcmp(header_keys[i], "SUBJECT") != 0;
			return key;
		}
	}
	for (size_t i = 0; i < N_ELEMENTS(named_keys); i++) {
		if (ascii_strcasecmp(name, named_keys[i].name) == 0)
			return named_keys[i].parse(ctx, named_keys[i].name, depth);
	}
	ctx->error = "Unknown search key";
	return NULL;
}

int
search_parse(const struct imap_arg *args, size_t count, const struct mbox_state *state,
	     uint32_t star_seq, uint32_t star_uid, struct search_key **key_r,
	     const char **error_r, bool *badcharset_r)
{
	return search_parse_saved(args, count, state, star_seq, star_uid, NULL, key_r, error_r,
				  badcharset_r);
}

int
search_parse_saved(const struct imap_arg *args, size_t count, const struct mbox_state *state,
		   uint32_t star_seq, uint32_t star_uid, const struct seqset *saved,
		   struct search_key **key_r, const char **error_r, bool *badcharset_r)
{
	struct parse_ctx ctx = {
		.args = args, .count = count, .state = state,
		.star_seq = star_seq, .star_uid = star_uid, .saved = saved,
	};
	struct search_key *key;

	*key_r = NULL;
	*badcharset_r = false;
	if (count > 0 && args[0].type == IMAP_ARG_ATOM && args[0].str != NULL &&
	    ascii_strcasecmp(args[0].str, "CHARSET") == 0) {
		if (count < 2 || !imap_arg_is_astring(&args[1]) || args[1].str == NULL) {
			*error_r = "Missing charset name";
			return -1;
		}
		if (ascii_strcasecmp(args[1].str, "US-ASCII") != 0 &&
		    ascii_strcasecmp(args[1].str, "UTF-8") != 0) {
			*error_r = "Unsupported charset";
			*badcharset_r = true;
			return -1;
		}
		ctx.pos = 2;
	}
	key = parse_and(&ctx, 0);
	if (key == NULL) {
		*error_r = ctx.error != NULL ? ctx.error : "Invalid search program";
		return -1;
	}
	*key_r = key;
	return 0;
}

bool
search_needs_message(const struct search_key *key)
{
	switch (key->type) {
	case SEARCH_HEADER:
	case SEARCH_BODY:
	case SEARCH_TEXT:
	case SEARCH_SENTBEFORE:
	case SEARCH_SENTON:
	case SEARCH_SENTSINCE:
	case SEARCH_EMAILID:
		return true;
	default:
		break;
	}
	for (size_t i = 0; i < key->child_count; i++) {
		if (search_needs_message(key->children[i]))
			return true;
	}
	return false;
}

bool
search_uses_modseq(const struct search_key *key)
{
	if (key->type == SEARCH_MODSEQ)
		return true;
	for (size_t i = 0; i < key->child_count; i++) {
		if (search_uses_modseq(key->children[i]))
			return true;
	}
	return false;
}

bool
search_uses_seqnums(const struct search_key *key)
{
	if (key->type == SEARCH_SEQSET)
		return true;
	for (size_t i = 0; i < key->child_count; i++) {
		if (search_uses_seqnums(key->children[i]))
			return true;
	}
	return false;
}

/* --- matching -------------------------------------------------------- */

static int
ctx_load(struct match_ctx *ctx)
{
	if (ctx->load_failed)
		return -1;
	if (ctx->loaded)
		return 0;
	if (ctx->msg->load == NULL ||
	    ctx->msg->load(ctx->msg->load_ctx, &ctx->data, &ctx->len) < 0) {
		ctx->load_failed = true;
		return -1;
	}
	if (ctx->data == NULL)
		ctx->len = 0;
	if (ctx->len == 0)
		ctx->data = "";
	ctx->hdr_len = message_header_size(ctx->data, ctx->len);
	ctx->loaded = true;
	return 0;
}

/* Calendar day (days since the epoch) of t in zone tz_minutes. */
static int64_t
day_of(int64_t t, int32_t tz_minutes)
{
	int64_t local = t + (int64_t)tz_minutes * 60;

	return local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
}

static int
sent_day(struct match_ctx *ctx, int64_t *day_r)
{
	if (!ctx->have_sent_day) {
		struct buf date = BUF_INIT;
		int64_t t;
		int32_t tz;

		if (ctx_load(ctx) < 0)
			return -1;
		/* No parsable Date: fall back to the internal date (as Dovecot). */
		if (message_header_get(ctx->data, ctx->hdr_len, "Date", &date) > 0 &&
		    message_parse_date(date.data, &t, &tz) == 0)
			ctx->sent_day = day_of(t, tz);
		else
			ctx->sent_day = day_of(ctx->msg->rec->internal_date,
					       ctx->msg->rec->tz_minutes);
		buf_free(&date);
		ctx->have_sent_day = true;
	}
	*day_r = ctx->sent_day;
	return 0;
}

static int
match_header(struct match_ctx *ctx, const struct search_key *key)
{
	struct buf raw = BUF_INIT, decoded = BUF_INIT;
	int ret;

	if (ctx_load(ctx) < 0)
		return -1;
	if (message_header_get_all(ctx->data, ctx->hdr_len, key->field, &raw) == 0) {
		ret = 0;
	} else if (key->value_len == 0) {
		ret = 1;               /* HEADER field "": the field exists */
	} else {
		if (key->address) {
			/* RFC 3501 6.4.4: FROM and the others look into the
			   envelope's field: the addresses without comments or
			   quoting ("a (c)@ b" is a@b), the name of
			   "a@b (Name)" included. A field with no address at
			   all is matched as it is. */
			struct buf norm = BUF_INIT;

			if (message_address_list_write(raw.data, raw.len, &norm) > 0) {
				buf_free(&raw);
				raw = norm;
			} else {
				buf_free(&norm);
			}
		}
		message_decode_header(raw.data, raw.len, &decoded);
		ret = decoded.len > 0 &&
		      message_str_contains(decoded.data, decoded.len, key->value, key->value_len);
	}
	buf_free(&raw);
	buf_free(&decoded);
	return ret;
}

static int
match_body(struct match_ctx *ctx, const struct search_key *key)
{
	if (ctx_load(ctx) < 0)
		return -1;
	if (!ctx->have_body_text) {
		mime_body_text(ctx->data, ctx->len, &ctx->body_text);
		ctx->have_body_text = true;
	}
	if (key->value_len == 0)
		return 1;
	return ctx->body_text.len > 0 &&
	       message_str_contains(ctx->body_text.data, ctx->body_text.len, key->value,
				    key->value_len);
}

static int
match_text(struct match_ctx *ctx, const struct search_key *key)
{
	struct buf decoded = BUF_INIT;
	int ret;

	if (ctx_load(ctx) < 0)
		return -1;
	if (key->value_len == 0)
		return 1;
	/* The header, with encoded words decoded, then the body text. */
	message_decode_header(ctx->data, ctx->hdr_len, &decoded);
	ret = decoded.len > 0 &&
	      message_str_contains(decoded.data, decoded.len, key->value, key->value_len);
	buf_free(&decoded);
	if (ret == 0)
		ret = match_body(ctx, key);
	return ret;
}

/* The message's EMAILID is its digest (storage.h): worked out once per
   message. Object ids are compared case-sensitively. */
static int
match_emailid(struct match_ctx *ctx, const struct search_key *key)
{
	if (ctx_load(ctx) < 0)
		return -1;
	if (ctx->emailid[0] == '\0')
		storage_email_id(ctx->data, ctx->len, ctx->emailid);
	return strcmp(ctx->emailid, key->value) == 0;
}

static int
match_key(struct match_ctx *ctx, const struct search_key *key)
{
	const struct mail_rec *rec = ctx->msg->rec;
	int64_t day;
	int ret;

	switch (key->type) {
	case SEARCH_AND:
		for (size_t i = 0; i < key->child_count; i++) {
			ret = match_key(ctx, key->children[i]);
			if (ret <= 0)
				return ret;
		}
		return 1;
	case SEARCH_OR:
		ret = match_key(ctx, key->children[0]);
		if (ret != 0)
			return ret;
		return match_key(ctx, key->children[1]);
	case SEARCH_NOT:
		ret = match_key(ctx, key->children[0]);
		return ret < 0 ? -1 : !ret;
	case SEARCH_ALL:
		return 1;
	case SEARCH_SEQSET:
		return seqset_contains(&key->set, ctx->msg->seq);
	case SEARCH_UIDSET:
		return seqset_contains(&key->set, ctx->msg->uid);
	case SEARCH_FLAG:
		return (rec->flags & key->flag) != 0;
	case SEARCH_NOFLAG:
		return (rec->flags & key->flag) == 0;
	case SEARCH_RECENT:
		return ctx->msg->recent;
	case SEARCH_NEW:
		return ctx->msg->recent && (rec->flags & MAIL_SEEN) == 0;
	case SEARCH_KEYWORD:
		return key->keyword >= 0 && (rec->keywords & ((uint64_t)1 << key->keyword)) != 0;
	case SEARCH_UNKEYWORD:
		return key->keyword < 0 || (rec->keywords & ((uint64_t)1 << key->keyword)) == 0;
	case SEARCH_BEFORE:
		return day_of(rec->internal_date, rec->tz_minutes) < key->days;
	case SEARCH_ON:
		return day_of(rec->internal_date, rec->tz_minutes) == key->days;
	case SEARCH_SINCE:
		return day_of(rec->internal_date, rec->tz_minutes) >= key->days;
	case SEARCH_SENTBEFORE:
	case SEARCH_SENTON:
	case SEARCH_SENTSINCE:
		if (sent_day(ctx, &day) < 0)
			return -1;
		if (key->type == SEARCH_SENTBEFORE)
			return day < key->days;
		if (key->type == SEARCH_SENTON)
			return day == key->days;
		return day >= key->days;
	case SEARCH_LARGER:
		return rec->size > key->number;
	case SEARCH_SMALLER:
		return rec->size < key->number;
	case SEARCH_HEADER:
		return match_header(ctx, key);
	case SEARCH_BODY:
		return match_body(ctx, key);
	case SEARCH_TEXT:
		return match_text(ctx, key);
	case SEARCH_MODSEQ:
		return rec->modseq >= key->number;
	case SEARCH_EMAILID:
		return match_emailid(ctx, key);
	case SEARCH_THREADID:
		return 0; /* no message has one (FETCH THREADID is NIL) */
	}
	return 0;
}

int
search_match(const struct search_key *key, const struct search_msg *msg)
{
	struct match_ctx ctx = { .msg = msg, .body_text = BUF_INIT };
	int ret = match_key(&ctx, key);

	buf_free(&ctx.body_text);
	return ret;
}
