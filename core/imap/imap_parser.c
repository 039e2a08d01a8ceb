/* imap_parser.c: a resumable parser of IMAP command lines.

   The parser is a state machine driven one byte at a time (literal data is
   copied in bulk), so the result never depends on how the input was cut
   into pieces. The tree is built as it goes: one frame per open list, the
   outermost frame holding the command's arguments; closing a list turns
   its frame into a LIST argument of the frame below.

   Grammar (RFC 3501 section 9, RFC 7888 literals), with these choices:
   - tag: 1*<ASTRING-CHAR except "+">; command name: 1*ATOM-CHAR.
   - An argument atom is 1*<CHAR except SP, CTL, "(", ")", "{", DQUOTE>,
     so flags (\Seen), wildcards (* %), sequence sets (1:*,4) and every
     astring (ASTRING-CHAR: "[", "}" and "]" included) are atoms. A "["
     opens a section that runs to the next "]" over spaces, parentheses
     and quotes (BODY[HEADER.FIELDS (A B)]<0.10>) only where the grammar
     has one: right after a fetch-att name that takes a section (BODY,
     BODY.PEEK, BINARY, BINARY.PEEK, BINARY.SIZE) in the arguments of FETCH
     or UID FETCH. Anywhere else "[" is an ATOM-CHAR like any other, so
     that a mailbox name or a LIST pattern may hold it (RFC 3501 section
     9: only "]" is a resp-special).
     An atom spelt NIL (any case) is IMAP_ARG_NIL; its str is the text.
     Where the grammar wants an astring, it is the string "NIL"
     (imap_arg_is_astring()).
   - Quoted strings take \\ and \" escapes, any other byte but NUL, CR
     and LF (8-bit for UTF-8 SEARCH, as RFC 9051 allows).
   - Lenient: a bare LF ends a line like CRLF; several spaces between
     arguments, a space before ")" and a trailing space are accepted.
   - An empty line is ignored.

   Limits: the bytes of one command, literal octets excluded, count
   against max_line (including the CRLFs of every line of the command);
   one more is FATAL "Line too long". A literal whose size exceeds
   max_literal is FATAL "Literal too large", and so is a command whose
   literals together exceed max_literal: this bounds the memory one
   command can take to about max_line * sizeof(struct imap_arg) plus
   max_literal, whatever the number of literals. With max_args set, an
   argument past that many (a list counts as one, and so does each of
   its elements) is an ERROR "Too many arguments" (the rest of the line
   is skipped, not stored), which bounds the tree to max_args arguments.
   The size is checked digit by digit, so no digit string can overflow
   the counter.

   Errors: the offending byte is consumed; unless it was the line's LF the
   rest of the line, up to and including the next LF, is skipped raw after
   imap_parser_reset() (a literal announced in the skipped part is not
   waited for: its sender never got a continuation). */
#include "imap_parser.h"

#include <stdlib.h>

/* Deepest nesting of parenthesized lists. */
#define IMAP_PARSER_MAX_DEPTH 32

enum parser_state {
	ST_LINE_START, /* expecting a tag (or an empty line) */
	ST_EMPTY_LF,   /* CR of an empty line seen */
	ST_SKIP,       /* skipping the rest of a bad line up to its LF */
	ST_TAG,
	ST_NAME_START,
	ST_NAME,
	ST_ARG_START, /* after a space or "(": an argument, ")" or EOL */
	ST_ATOM,
	ST_ATOM_SECTION, /* inside "[...]" of an atom */
	ST_QUOTED,
	ST_QUOTED_ESC,
	ST_LIT_NUM,   /* after "{" */
	ST_LIT_CLOSE, /* after "+" of "{n+" */
	ST_LIT_CR,    /* after "}" */
	ST_LIT_LF,    /* after "}\r" */
	ST_LIT_DATA,
	ST_AFTER_ARG, /* after a string, literal or list: SP, ")" or EOL */
	ST_EOL_LF,    /* CR of the line's end seen */
	ST_DONE,      /* a result is pending until imap_parser_reset() */
};

struct arg_frame {
	struct imap_arg *items;
	size_t count, alloc;
};

struct imap_parser {
	size_t max_line, max_literal;
	size_t max_args;                    /* 0: no limit but max_line's */
	size_t arg_count;                   /* arguments of this command, lists included */

	enum parser_state state;
	enum imap_parse_result done_result; /* in ST_DONE */
	bool skip_pending;                  /* after ERROR: skip to LF on reset */
	size_t line_len;                    /* bytes of this command, literals excluded */
	uint64_t literal_total;             /* literal octets of this command */

	/* The token being read (tag, name, atom or quoted string). */
	char *tok;
	size_t tok_len, tok_alloc;

	/* The literal being read. */
	uint64_t lit_size;
	bool lit_sync;
	bool lit_has_digits;
	char *lit_data;
	size_t lit_len, lit_alloc;

	char *tag, *name;
	struct arg_frame frames[IMAP_PARSER_MAX_DEPTH + 1];
	unsigned int depth; /* open lists; frames[depth] is current */

	const char *error; /* static text */
	struct imap_command cmd;
};

struct imap_parser *
imap_parser_new(size_t max_line, size_t max_literal)
{
	struct imap_parser *parser = xcalloc(1, sizeof(*parser));

	imap_parser_set_limits(parser, max_line, max_literal);
	parser->state = ST_LINE_START;
	return parser;
}

void
imap_parser_set_limits(struct imap_parser *parser, size_t max_line, size_t max_literal)
{
	parser->max_line = max_line;
	/* Leaves room for the literal's NUL and for size arithmetic. */
	parser->max_literal = max_literal < SIZE_MAX / 2 ? max_literal : SIZE_MAX / 2;
}

void
imap_parser_set_max_args(struct imap_parser *parser, size_t max_args)
{
	parser->max_args = max_args;
}

/* Recursion is bounded by IMAP_PARSER_MAX_DEPTH. */
static void
imap_args_free(struct imap_arg *args, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(args[i].str);
		if (args[i].type == IMAP_ARG_LIST)
			imap_args_free(args[i].list, args[i].list_count);
	}
	free(args);
}

/* Frees everything of the current command, keeps the limits and the
   buffers that can be reused. */
static void
imap_parser_clear(struct imap_parser *parser)
{
	for (unsigned int i = 0; i <= parser->depth; i++) {
		imap_args_free(parser->frames[i].items, parser->frames[i].count);
		i_zero(&parser->frames[i]);
	}
	parser->depth = 0;
	free(parser->tag);
	free(parser->name);
	free(parser->lit_data);
	parser->tag = parser->name = parser->lit_data = NULL;
	parser->lit_len = parser->lit_alloc = 0;
	parser->lit_size = 0;
	parser->tok_len = 0;
	parser->line_len = 0;
	parser->literal_total = 0;
	parser->arg_count = 0;
	parser->error = NULL;
	i_zero(&parser->cmd);
}

void
imap_parser_free(struct imap_parser **_parser)
{
	struct imap_parser *parser = *_parser;

	if (parser == NULL)
		return;
	*_parser = NULL;
	imap_parser_clear(parser);
	free(parser->tok);
	free(parser);
}

void
imap_parser_reset(struct imap_parser *parser)
{
	imap_parser_clear(parser);
	parser->state = parser->skip_pending ? ST_SKIP : ST_LINE_START;
	parser->skip_pending = false;
}

const struct imap_command *
imap_parser_command(const struct imap_parser *parser)
{
	if (parser->state != ST_DONE || parser->done_result != IMAP_PARSE_COMMAND)
		return NULL;
	return &parser->cmd;
}

const char *
imap_parser_tag(const struct imap_parser *parser)
{
	return parser->tag;
}

const char *
imap_parser_error(const struct imap_parser *parser)
{
	return parser->error;
}

bool
imap_arg_is_string(const struct imap_arg *arg)
{
	return arg != NULL && (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_STRING ||
			       arg->type == IMAP_ARG_LITERAL);
}

bool
imap_arg_is_atom(const struct imap_arg *arg)
{
	return arg != NULL && (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL);
}

bool
imap_arg_is_astring(const struct imap_arg *arg)
{
	return imap_arg_is_atom(arg) || imap_arg_is_string(arg);
}

bool
imap_arg_atom_equals(const struct imap_arg *arg, const char *word)
{
	return arg != NULL && arg->type == IMAP_ARG_ATOM && arg->str != NULL &&
	       strlen(word) == arg->len && ascii_strcasecmp(arg->str, word) == 0;
}

/* Character classes. c is an unsigned byte value. */

/* ATOM-CHAR: any CHAR except atom-specials. */
static bool
is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\]", c) == NULL;
}

/* ASTRING-CHAR except "+". */
static bool
is_tag_char(unsigned char c)
{
	return c != '+' && (is_atom_char(c) || c == ']');
}

/* What an argument atom may hold outside "[...]". */
static bool
is_arg_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){\"", c) == NULL;
}

/* The fetch-att names that a section follows (RFC 3501 section 9, RFC
   3516 section 4). */
static const char *const section_atts[] = {
	"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE",
};

/* Called at a "[" in an atom: true when the atom so far is a fetch-att
   name that takes a section and the command is FETCH or UID FETCH, so
   that the "[" opens a section rather than being an ATOM-CHAR. */
static bool
atom_opens_section(const struct imap_parser *parser)
{
	const struct arg_frame *top = &parser->frames[0];
	bool fetch;

	if (parser->name == NULL)
		return false;
	if (ascii_strcasecmp(parser->name, "UID") == 0)
		fetch = top->count > 0 && top->items[0].type == IMAP_ARG_ATOM &&
			ascii_strcasecmp(top->items[0].str, "FETCH") == 0;
	else
		fetch = ascii_strcasecmp(parser->name, "FETCH") == 0;
	if (!fetch)
		return false;
	for (size_t i = 0; i < N_ELEMENTS(section_atts); i++) {
		size_t n = strlen(section_atts[i]);

		if (parser->tok_len == n && ascii_strncasecmp(parser->tok, section_atts[i], n) == 0)
			return true;
	}
	return false;
}

static void
tok_append(struct imap_parser *parser, char c)
{
	/* tok_len < max_line always holds (every token byte is a line
	   byte), so this stays bounded. */
	xgrow(&parser->tok, &parser->tok_alloc, parser->tok_len + 2, 1);
	parser->tok[parser->tok_len++] = c;
}

/* Returns a malloc'ed NUL-terminated copy of the token and empties it. */
static char *
tok_take(struct imap_parser *parser, size_t *len_r)
{
	char *s = xmalloc(parser->tok_len + 1);

	if (parser->tok_len > 0)
		memcpy(s, parser->tok, parser->tok_len);
	s[parser->tok_len] = '\0';
	if (len_r != NULL)
		*len_r = parser->tok_len;
	parser->tok_len = 0;
	return s;
}

static enum imap_parse_result
parse_fail(struct imap_parser *parser, enum imap_parse_result result, const char *error,
	   unsigned char c)
{
	parser->error = error;
	parser->done_result = result;
	parser->state = ST_DONE;
	/* The byte that failed was consumed; if it was the line's end there
	   is nothing left to skip. A FATAL ends the connection. */
	parser->skip_pending = result == IMAP_PARSE_ERROR && c != '\n';
	return result;
}

static void
frame_append(struct imap_parser *parser, const struct imap_arg *arg)
{
	struct arg_frame *frame = &parser->frames[parser->depth];

	xgrow(&frame->items, &frame->alloc, frame->count + 1, sizeof(frame->items[0]));
	frame->items[frame->count++] = *arg;
}

static void
finish_atom(struct imap_parser *parser)
{
	struct imap_arg arg;

	i_zero(&arg);
	arg.str = tok_take(parser, &arg.len);
	arg.type = arg.len == 3 && ascii_strcasecmp(arg.str, "NIL") == 0 ? IMAP_ARG_NIL :
									   IMAP_ARG_ATOM;
	frame_append(parser, &arg);
}

static void
finish_quoted(struct imap_parser *parser)
{
	struct imap_arg arg;

	i_zero(&arg);
	arg.type = IMAP_ARG_STRING;
	arg.str = tok_take(parser, &arg.len);
	frame_append(parser, &arg);
}

static void
finish_literal(struct imap_parser *parser)
{
	struct imap_arg arg;

	if (parser->lit_data == NULL)
		parser->lit_data = xmalloc(1);
	parser->lit_data[parser->lit_len] = '\0';
	i_zero(&arg);
	arg.type = IMAP_ARG_LITERAL;
	arg.str = parser->lit_data;
	arg.len = parser->lit_len;
	parser->lit_data = NULL;
	parser->lit_len = parser->lit_alloc = 0;
	frame_append(parser, &arg);
	parser->state = ST_AFTER_ARG;
}

static enum imap_parse_result
open_list(struct imap_parser *parser, unsigned char c)
{
	if (parser->depth >= IMAP_PARSER_MAX_DEPTH)
		return parse_fail(parser, IMAP_PARSE_ERROR, "Too deeply nested lists", c);
	parser->depth++;
	i_zero(&parser->frames[parser->depth]);
	parser->state = ST_ARG_START;
	return IMAP_PARSE_NEED_MORE;
}

static enum imap_parse_result
close_list(struct imap_parser *parser, unsigned char c)
{
	struct arg_frame *frame;
	struct imap_arg arg;

	if (parser->depth == 0)
		return parse_fail(parser, IMAP_PARSE_ERROR, "Unexpected ')'", c);
	frame = &parser->frames[parser->depth];
	i_zero(&arg);
	arg.type = IMAP_ARG_LIST;
	arg.list = frame->items;
	arg.list_count = frame->count;
	i_zero(frame);
	parser->depth--;
	frame_append(parser, &arg);
	parser->state = ST_AFTER_ARG;
	return IMAP_PARSE_NEED_MORE;
}

/* c is the LF that ends the command's last line. */
static enum imap_parse_result
end_line(struct imap_parser *parser, unsigned char c)
{
	if (parser->depth > 0)
		return parse_fail(parser, IMAP_PARSE_ERROR, "Missing ')'", c);
	parser->cmd.tag = parser->tag;
	parser->cmd.name = parser->name;
	parser->cmd.args = parser->frames[0].items;
	parser->cmd.arg_count = parser->frames[0].count;
	parser->done_result = IMAP_PARSE_COMMAND;
	parser->state = ST_DONE;
	return IMAP_PARSE_COMMAND;
}

/* The "{n}" or "{n+}" header ended with its LF. */
static enum imap_parse_result
start_literal(struct imap_parser *parser, unsigned char c)
{
	if (parser->lit_size > parser->max_literal - parser->literal_total)
		return parse_fail(parser, IMAP_PARSE_FATAL, "Literal too large", c);
	parser->literal_total += parser->lit_size;
	parser->lit_len = 0;
	if (parser->lit_size == 0)
		finish_literal(parser);
	else
		parser->state = ST_LIT_DATA;
	return parser->lit_sync ? IMAP_PARSE_LITERAL : IMAP_PARSE_NEED_MORE;
}

/* Copies literal octets; returns how many of len were taken. */
static size_t
read_literal(struct imap_parser *parser, const char *data, size_t len)
{
	size_t want = (size_t)parser->lit_size - parser->lit_len;
	size_t n = len < want ? len : want;
	size_t need = parser->lit_len + n + 1;

	if (need > parser->lit_alloc) {
		/* Grow by doubling but never past the announced size, so a
		   client that announces a big literal and sends little of it
		   holds little memory. */
		size_t alloc = parser->lit_alloc < 4096 ? 4096 : parser->lit_alloc;

		while (alloc < need)
			alloc *= 2;
		if (alloc > (size_t)parser->lit_size + 1)
			alloc = (size_t)parser->lit_size + 1;
		parser->lit_data = xrealloc(parser->lit_data, alloc);
		parser->lit_alloc = alloc;
	}
	memcpy(parser->lit_data + parser->lit_len, data, n);
	parser->lit_len += n;
	if (parser->lit_len == parser->lit_size)
		finish_literal(parser);
	return n;
}

/* The tag and the command name. */
static enum imap_parse_result
parse_head_byte(struct imap_parser *parser, unsigned char c)
{
	switch (parser->state) {
	case ST_LINE_START:
		if (c == '\r') {
			parser->state = ST_EMPTY_LF;
		} else if (c == '\n') {
			parser->line_len = 0; /* empty line: ignored */
		} else if (is_tag_char(c)) {
			tok_append(parser, (char)c);
			parser->state = ST_TAG;
		} else if (c == ' ') {
			return parse_fail(parser, IMAP_PARSE_ERROR, "Missing tag", c);
		} else {
			return parse_fail(parser, IMAP_PARSE_ERROR, "Invalid character in tag", c);
		}
		return IMAP_PARSE_NEED_MORE;
	case ST_EMPTY_LF:
		if (c != '\n')
			return parse_fail(parser, IMAP_PARSE_ERROR, "Missing tag", c);
		parser->line_len = 0;
		parser->state = ST_LINE_START;
		return IMAP_PARSE_NEED_MORE;
	case ST_TAG:
		if (is_tag_char(c)) {
			tok_append(parser, (char)c);
		} else if (c == ' ') {
			parser->tag = tok_take(parser, NULL);
			parser->state = ST_NAME_START;
		} else if (c == '\r' || c == '\n') {
			parser->tag = tok_take(parser, NULL);
			return parse_fail(parser, IMAP_PARSE_ERROR, "Missing command", c);
		} else {
			return parse_fail(parser, IMAP_PARSE_ERROR, "Invalid character in tag", c);
		}
		return IMAP_PARSE_NEED_MORE;
	case ST_NAME_START:
		if (c == ' ' || c == '\r' || c == '\n')
			return parse_fail(parser, IMAP_PARSE_ERROR, "Missing command", c);
		if (!is_atom_char(c))
			return parse_fail(parser, IMAP_PARSE_ERROR,
					  "Invalid character in command name", c);
		tok_append(parser, (char)c);
		parser->state = ST_NAME;
		return IMAP_PARSE_NEED_MORE;
	case ST_NAME:
		if (is_atom_char(c)) {
			tok_append(parser, (char)c);
			return IMAP_PARSE_NEED_MORE;
		}
		if (c != ' ' && c != '\r' && c != '\n')
			return parse_fail(parser, IMAP_PARSE_ERROR,
					  "Invalid character in command name", c);
		parser->name = tok_take(parser, NULL);
		if (c == '\n')
			return end_line(parser, c);
		parser->state = c == ' ' ? ST_ARG_START : ST_EOL_LF;
		return IMAP_PARSE_NEED_MORE;
	default:
		break;
	}
	return parse_fail(parser, IMAP_PARSE_FATAL, "Internal parser error", c);
}

/* Between and in atoms, and at the end of the line. */
static enum imap_parse_result
parse_arg_byte(struct imap_parser *parser, unsigned char c)
{
	switch (parser->state) {
	case ST_ARG_START:
		if (c != ' ' && c != ')' && c != '\r' && c != '\n' && parser->max_args > 0 &&
		    parser->arg_count++ >= parser->max_args)
			return parse_fail(parser, IMAP_PARSE_ERROR, "Too many arguments", c);
		switch (c) {
		case ' ':
			return IMAP_PARSE_NEED_MORE;
		case '(':
			return open_list(parser, c);
		case ')':
			return close_list(parser, c);
		case '"':
			parser->state = ST_QUOTED;
			return IMAP_PARSE_NEED_MORE;
		case '{':
			parser->lit_size = 0;
			parser->lit_has_digits = false;
			parser->lit_sync = true;
			parser->state = ST_LIT_NUM;
			return IMAP_PARSE_NEED_MORE;
		case '\r':
			parser->state = ST_EOL_LF;
			return IMAP_PARSE_NEED_MORE;
		case '\n':
			return end_line(parser, c);
		default:
			break;
		}
		if (!is_arg_atom_char(c))
			return parse_fail(parser, IMAP_PARSE_ERROR, "Invalid character in atom", c);
		tok_append(parser, (char)c);
		parser->state = ST_ATOM;
		return IMAP_PARSE_NEED_MORE;
	case ST_ATOM:
		if (is_arg_atom_char(c)) {
			if (c == '[' && atom_opens_section(parser))
				parser->state = ST_ATOM_SECTION;
			tok_append(parser, (char)c);
			return IMAP_PARSE_NEED_MORE;
		}
		switch (c) {
		case ' ':
			finish_atom(parser);
			parser->state = ST_ARG_START;
			return IMAP_PARSE_NEED_MORE;
		case ')':
			finish_atom(parser);
			return close_list(parser, c);
		case '\r':
			finish_atom(parser);
			parser->state = ST_EOL_LF;
			return IMAP_PARSE_NEED_MORE;
		case '\n':
			finish_atom(parser);
			return end_line(parser, c);
		default:
			if (c == '{' && parser->tok_len == 1 && parser->tok[0] == '~') {
				/* literal8 (RFC 3516, RFC 9051 4.3): "~{n}", a
				   literal that may hold any octet, NUL too; APPEND
				   takes it for a message with binary parts. */
				parser->tok_len = 0;
				parser->lit_size = 0;
				parser->lit_has_digits = false;
				parser->lit_sync = true;
				parser->state = ST_LIT_NUM;
				return IMAP_PARSE_NEED_MORE;
			}
			return parse_fail(parser, IMAP_PARSE_ERROR, "Invalid character in atom", c);
		}
	case ST_ATOM_SECTION:
		if (c >= 0x20 && c < 0x7f) {
			tok_append(parser, (char)c);
			if (c == ']')
				parser->state = ST_ATOM;
			return IMAP_PARSE_NEED_MORE;
		}
		if (c == '\r' || c == '\n')
			return parse_fail(parser, IMAP_PARSE_ERROR, "Missing ']'", c);
		return parse_fail(parser, IMAP_PARSE_ERROR, "Invalid character in atom", c);
	case ST_AFTER_ARG:
		switch (c) {
		case ' ':
			parser->state = ST_ARG_START;
			return IMAP_PARSE_NEED_MORE;
		case ')':
			return close_list(parser, c);
		case '\r':
			parser->state = ST_EOL_LF;
			return IMAP_PARSE_NEED_MORE;
		case '\n':
			return end_line(parser, c);
		default:
			return parse_fail(parser, IMAP_PARSE_ERROR, "Missing space after argument",
					  c);
		}
	case ST_EOL_LF:
		if (c != '\n')
			return parse_fail(parser, IMAP_PARSE_ERROR, "CR not followed by LF", c);
		return end_line(parser, c);
	default:
		break;
	}
	return parse_fail(parser, IMAP_PARSE_FATAL, "Internal parser error", c);
}

/* In a quoted string. */
static enum imap_parse_result
parse_quoted_byte(struct imap_parser *parser, unsigned char c)
{
	switch (parser->state) {
	case ST_QUOTED:
		switch (c) {
		case '"':
			finish_quoted(parser);
			parser->state = ST_AFTER_ARG;
			return IMAP_PARSE_NEED_MORE;
		case '\\':
			parser->state = ST_QUOTED_ESC;
			return IMAP_PARSE_NEED_MORE;
		case '\r':
		case '\n':
			return parse_fail(parser, IMAP_PARSE_ERROR, "Unterminated quoted string",
					  c);
		case '\0':
			return parse_fail(parser, IMAP_PARSE_ERROR,
					  "Invalid character in quoted string", c);
		default:
			tok_append(parser, (char)c);
			return IMAP_PARSE_NEED_MORE;
		}
	case ST_QUOTED_ESC:
		if (c == '\\' || c == '"') {
			tok_append(parser, (char)c);
			parser->state = ST_QUOTED;
			return IMAP_PARSE_NEED_MORE;
		}
		if (c == '\r' || c == '\n')
			return parse_fail(parser, IMAP_PARSE_ERROR, "Unterminated quoted string",
					  c);
		return parse_fail(parser, IMAP_PARSE_ERROR, "Invalid escape in quoted string", c);
	default:
		break;
	}
	return parse_fail(parser, IMAP_PARSE_FATAL, "Internal parser error", c);
}

/* In a literal's announcement {n} / {n+} and its CRLF. */
static enum imap_parse_result
parse_literal_byte(struct imap_parser *parser, unsigned char c)
{
	switch (parser->state) {
	case ST_LIT_NUM:
		if (c >= '0' && c <= '9') {
			/* lit_size <= max_literal <= SIZE_MAX before this digit;
			   checking against (max - d) / 10 avoids any overflow. */
			uint64_t d = c - '0';

			if (d > parser->max_literal ||
			    parser->lit_size > (parser->max_literal - d) / 10)
				return parse_fail(parser, IMAP_PARSE_FATAL, "Literal too large", c);
			parser->lit_size = parser->lit_size * 10 + d;
			parser->lit_has_digits = true;
			return IMAP_PARSE_NEED_MORE;
		}
		if (!parser->lit_has_digits || (c != '+' && c != '}'))
			return parse_fail(parser, IMAP_PARSE_ERROR, "Invalid literal", c);
		if (c == '+') {
			parser->lit_sync = false;
			parser->state = ST_LIT_CLOSE;
		} else {
			parser->state = ST_LIT_CR;
		}
		return IMAP_PARSE_NEED_MORE;
	case ST_LIT_CLOSE:
		if (c != '}')
			return parse_fail(parser, IMAP_PARSE_ERROR, "Invalid literal", c);
		parser->state = ST_LIT_CR;
		return IMAP_PARSE_NEED_MORE;
	case ST_LIT_CR:
		if (c == '\n')
			return start_literal(parser, c);
		if (c != '\r')
			return parse_fail(parser, IMAP_PARSE_ERROR, "Invalid literal", c);
		parser->state = ST_LIT_LF;
		return IMAP_PARSE_NEED_MORE;
	case ST_LIT_LF:
		if (c != '\n')
			return parse_fail(parser, IMAP_PARSE_ERROR, "Invalid literal", c);
		return start_literal(parser, c);
	default:
		break;
	}
	return parse_fail(parser, IMAP_PARSE_FATAL, "Internal parser error", c);
}

/* One byte of the line (never in ST_LIT_DATA, ST_SKIP or ST_DONE): the
   state machine, one function per part of the line. */
static enum imap_parse_result
parse_byte(struct imap_parser *parser, unsigned char c)
{
	switch (parser->state) {
	case ST_LINE_START:
	case ST_EMPTY_LF:
	case ST_TAG:
	case ST_NAME_START:
	case ST_NAME:
		return parse_head_byte(parser, c);
	case ST_ARG_START:
	case ST_ATOM:
	case ST_ATOM_SECTION:
	case ST_AFTER_ARG:
	case ST_EOL_LF:
		return parse_arg_byte(parser, c);
	case ST_QUOTED:
	case ST_QUOTED_ESC:
		return parse_quoted_byte(parser, c);
	case ST_LIT_NUM:
	case ST_LIT_CLOSE:
	case ST_LIT_CR:
	case ST_LIT_LF:
		return parse_literal_byte(parser, c);
	case ST_SKIP:
	case ST_LIT_DATA:
	case ST_DONE:
		break;
	}
	/* Not reached: the caller handles these states. */
	return parse_fail(parser, IMAP_PARSE_FATAL, "Internal parser error", c);
}

enum imap_parse_result
imap_parser_feed(struct imap_parser *parser, const char *data, size_t len, size_t *consumed_r)
{
	enum imap_parse_result result;
	size_t i = 0;

	if (parser->state == ST_DONE) {
		/* A result is pending: nothing more until reset. */
		*consumed_r = 0;
		return parser->done_result;
	}
	while (i < len) {
		if (parser->state == ST_LIT_DATA) {
			i += read_literal(parser, data + i, len - i);
			continue;
		}
		if (parser->state == ST_SKIP) {
			const char *lf = memchr(data + i, '\n', len - i);

			if (lf == NULL) {
				i = len;
				break;
			}
			i = (size_t)(lf - data) + 1;
			parser->state = ST_LINE_START;
			continue;
		}
		if (parser->line_len >= parser->max_line) {
			*consumed_r = i;
			return parse_fail(parser, IMAP_PARSE_FATAL, "Line too long", 0);
		}
		parser->line_len++;
		result = parse_byte(parser, (unsigned char)data[i++]);
		if (result != IMAP_PARSE_NEED_MORE) {
			*consumed_r = i;
			return result;
		}
	}
	*consumed_r = i;
	return IMAP_PARSE_NEED_MORE;
}
