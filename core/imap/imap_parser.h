/* imap_parser.h: a resumable parser of IMAP command lines (RFC 3501
   section 9, with RFC 7888 literals).

   The parser is fed whatever bytes arrived, in pieces of any size (one
   byte at a time works); it copies what it needs, so the caller may drop
   the bytes it consumed. It stops after each complete command, and in
   front of a synchronizing literal so that the caller can send the
   continuation request. */
#ifndef IMAP_PARSER_H
#define IMAP_PARSER_H

#include "lib.h"

enum imap_arg_type {
	IMAP_ARG_NIL,          /* the atom NIL (case-insensitive), unquoted */
	IMAP_ARG_ATOM,         /* an atom (also an astring's ASTRING-CHARs); in FETCH
				  it may contain a "[...]" section with spaces, as in
				  BODY[HEADER.FIELDS (A B)]<0.10> */
	IMAP_ARG_STRING,       /* a quoted string, unescaped */
	IMAP_ARG_LITERAL,      /* a literal's octets (may hold NUL bytes) */
	IMAP_ARG_LIST,         /* a parenthesized list */
};

struct imap_arg {
	enum imap_arg_type type;
	/* ATOM, STRING, LITERAL: the value, NUL-terminated, of len octets. */
	char *str;
	size_t len;
	/* LIST: its elements. */
	struct imap_arg *list;
	size_t list_count;
};

/* One command line: "tag name args...". */
struct imap_command {
	char *tag;
	char *name;            /* as sent; compare case-insensitively */
	struct imap_arg *args;
	size_t arg_count;
};

enum imap_parse_result {
	IMAP_PARSE_NEED_MORE,  /* all input consumed; feed more */
	IMAP_PARSE_COMMAND,    /* a command is complete: imap_parser_command() */
	IMAP_PARSE_LITERAL,    /* a synchronizing literal follows: send "+ ..." then feed on */
	IMAP_PARSE_ERROR,      /* a syntax error: answer "<tag> BAD <error>"; the rest of
				  the line has been (or will be) skipped; feed on */
	IMAP_PARSE_FATAL,      /* line longer than max_line or literal larger than
				  max_literal: answer, then close the connection */
};

struct imap_parser;

struct imap_parser *imap_parser_new(size_t max_line, size_t max_literal);
void imap_parser_free(struct imap_parser **parser);
/* Changes the limits for the commands that follow (a session's limits
   grow at login). Call it between commands: right after new() or
   reset(), or while nothing is fed. */
void imap_parser_set_limits(struct imap_parser *parser, size_t max_line, size_t max_literal);
/* At most max_args arguments per command (each list and each of its
   elements count), 0 for no limit (the default): one more is an ERROR
   "Too many arguments". Call it as imap_parser_set_limits(). */
void imap_parser_set_max_args(struct imap_parser *parser, size_t max_args);

/* Consumes up to len bytes of data; *consumed_r says how many (it stops
   right after a command's final LF, after a literal's "{n}\r\n", or at an
   error). After COMMAND, ERROR or FATAL call imap_parser_reset() before
   feeding the next command. After LITERAL simply feed on. */
enum imap_parse_result imap_parser_feed(struct imap_parser *parser, const char *data,
					size_t len, size_t *consumed_r);
/* The complete command; valid until the next reset. */
const struct imap_command *imap_parser_command(const struct imap_parser *parser);
/* After ERROR/FATAL: the tag if it was read (else NULL), and the reason. */
const char *imap_parser_tag(const struct imap_parser *parser);
const char *imap_parser_error(const struct imap_parser *parser);
/* Forgets the current command (and, after ERROR, whether the rest of its
   line is still to be skipped is kept so that feeding on skips it). */
void imap_parser_reset(struct imap_parser *parser);

/* Argument helpers. */
/* True for ATOM, STRING and LITERAL (a "string", atoms accepted; NIL is
   not one: where NIL may mean nil, as in an nstring, test it first). */
bool imap_arg_is_string(const struct imap_arg *arg);
/* True for an ATOM or a NIL: an atom that happens to be spelt NIL is still
   an atom where the grammar wants one (a flag keyword, RFC 3501 section 9). */
bool imap_arg_is_atom(const struct imap_arg *arg);
/* True for an astring (RFC 3501 section 9): ATOM, NIL (the string "NIL",
   its str), STRING and LITERAL. Every argument that the grammar gives as
   astring (mailbox names, LIST patterns, user names, search strings) is
   read with this, not with imap_arg_is_string(). */
bool imap_arg_is_astring(const struct imap_arg *arg);
/* True for an ATOM equal (case-insensitively) to word. */
bool imap_arg_atom_equals(const struct imap_arg *arg, const char *word);

#endif
