/* test_imap_parser.c: the resumable IMAP command parser.

   Every case of the table is fed whole, one byte at a time and in pieces
   of 2, 3 and 7 bytes; each way must give the same transcript, the one the
   table expects. A transcript has one line per result:
     C tag name args...   a command (ATOM as is, NIL as <NIL>, STRING as
                          "...", LITERAL as {len}"...", LIST as (...);
                          inside quotes \" \\ and \xHH for other bytes)
     +                    a synchronizing literal (the caller sends "+ OK")
     E tag|error          a syntax error ("-" when no tag was read)
     F tag|error          a fatal error (the driver stops there) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "buf.h"
#include "imap_parser.h"
#include "lib.h"

#define TEST_MAX_LINE 1000
#define TEST_MAX_LITERAL 1000

static void
write_escaped(struct buf *out, const char *s, size_t len)
{
	buf_append_c(out, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			buf_printf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			buf_printf(out, "\\x%02x", c);
		else
			buf_append_c(out, (char)c);
	}
	buf_append_c(out, '"');
}

/* Also checks the invariants every argument must keep. */
static void
write_args(struct buf *out, const struct imap_arg *args, size_t count, unsigned int depth)
{
	assert_true(depth <= 33);
	if (count > 0)
		assert_non_null(args);
	for (size_t i = 0; i < count; i++) {
		const struct imap_arg *arg = &args[i];

		if (i > 0)
			buf_append_c(out, ' ');
		switch (arg->type) {
		case IMAP_ARG_NIL:
			assert_non_null(arg->str);
			buf_append_str(out, "<NIL>");
			break;
		case IMAP_ARG_ATOM:
			assert_non_null(arg->str);
			assert_int_equal(strlen(arg->str), arg->len);
			assert_true(arg->len > 0);
			buf_append(out, arg->str, arg->len);
			break;
		case IMAP_ARG_STRING:
			assert_non_null(arg->str);
			assert_int_equal(arg->str[arg->len], '\0');
			write_escaped(out, arg->str, arg->len);
			break;
		case IMAP_ARG_LITERAL:
			assert_non_null(arg->str);
			assert_int_equal(arg->str[arg->len], '\0');
			buf_printf(out, "{%zu}", arg->len);
			write_escaped(out, arg->str, arg->len);
			break;
		case IMAP_ARG_LIST:
			buf_append_c(out, '(');
			write_args(out, arg->list, arg->list_count, depth + 1);
			buf_append_c(out, ')');
			break;
		default:
			fail_msg("bad arg type %d", (int)arg->type);
		}
	}
}

static void
write_command(struct buf *out, const struct imap_command *cmd)
{
	assert_non_null(cmd);
	assert_non_null(cmd->tag);
	assert_non_null(cmd->name);
	assert_true(cmd->tag[0] != '\0');
	assert_true(cmd->name[0] != '\0');
	buf_printf(out, "C %s %s", cmd->tag, cmd->name);
	if (cmd->arg_count > 0) {
		buf_append_c(out, ' ');
		write_args(out, cmd->args, cmd->arg_count, 0);
	}
	buf_append_c(out, '\n');
}

/* Feeds data in pieces of at most chunk bytes (0: all at once; a chunk
   of SIZE_MAX - k picks pseudo-random sizes from seed k) and returns the
   transcript (to free). */
static char *
run_parser(const char *data, size_t len, size_t chunk, size_t max_line, size_t max_literal)
{
	struct imap_parser *parser = imap_parser_new(max_line, max_literal);
	struct buf out = BUF_INIT;
	size_t pos = 0, iterations = 0;
	uint32_t rnd = (uint32_t)(SIZE_MAX - chunk) * 2654435761u + 1;
	bool random_chunks = chunk > SIZE_MAX - 1000;

	buf_append_str(&out, ""); /* so that an empty transcript is "" */
	for (;;) {
		size_t piece = len - pos, consumed = 99999;
		enum imap_parse_result res;

		assert_true(++iterations <= 4 * len + 10);
		if (random_chunks) {
			rnd = rnd * 1103515245u + 12345u;
			size_t want = (rnd >> 16) % 9 + 1;
			if (piece > want)
				piece = want;
		} else if (chunk > 0 && piece > chunk) {
			piece = chunk;
		}
		res = imap_parser_feed(parser, data + pos, piece, &consumed);
		assert_true(consumed <= piece);
		pos += consumed;
		switch (res) {
		case IMAP_PARSE_NEED_MORE:
			assert_int_equal(consumed, piece);
			assert_null(imap_parser_command(parser));
			if (pos == len)
				goto done;
			break;
		case IMAP_PARSE_COMMAND:
			assert_true(consumed > 0);
			assert_int_equal(data[pos - 1], '\n');
			write_command(&out, imap_parser_command(parser));
			imap_parser_reset(parser);
			break;
		case IMAP_PARSE_LITERAL:
			assert_true(consumed > 0);
			assert_int_equal(data[pos - 1], '\n');
			assert_null(imap_parser_command(parser));
			buf_append_str(&out, "+\n");
			break;
		case IMAP_PARSE_ERROR:
		case IMAP_PARSE_FATAL:
			assert_null(imap_parser_command(parser));
			assert_non_null(imap_parser_error(parser));
			buf_printf(&out, "%c %s|%s\n", res == IMAP_PARSE_ERROR ? 'E' : 'F',
				   imap_parser_tag(parser) != NULL ? imap_parser_tag(parser) : "-",
				   imap_parser_error(parser));
			imap_parser_reset(parser);
			if (res == IMAP_PARSE_FATAL)
				goto done;
			break;
		default:
			fail_msg("bad result %d", (int)res);
		}
	}
done:
	imap_parser_free(&parser);
	assert_null(parser);
	return buf_steal(&out);
}

struct parse_case {
	const char *input;
	size_t len;
	const char *expect;
};

/* S(x) gives a string literal with its length, NUL bytes included. */
#define S(x) x, sizeof(x) - 1

static const struct parse_case parse_cases[] = {
	/* simple commands */
	{ S("a NOOP\r\n"), "C a NOOP\n" },
	{ S("a001 LOGIN user pass\r\n"), "C a001 LOGIN user pass\n" },
	{ S("a noop\r\n"), "C a noop\n" },
	{ S("A.1]x NOOP\r\n"), "C A.1]x NOOP\n" },
	{ S("a CAPABILITY\n"), "C a CAPABILITY\n" },
	{ S("\r\n\r\n\na NOOP\r\n"), "C a NOOP\n" },
	{ S("a X  b  \r\n"), "C a X b\n" },
	/* quoted strings */
	{ S("a LOGIN \"us\\\"er\" \"p\\\\ss word\"\r\n"),
	  "C a LOGIN \"us\\\"er\" \"p\\\\ss word\"\n" },
	{ S("a X \"\" \"(a) {3}\"\r\n"), "C a X \"\" \"(a) {3}\"\n" },
	{ S("a SEARCH CHARSET UTF-8 SUBJECT \"h\xc3\xa9llo\"\r\n"),
	  "C a SEARCH CHARSET UTF-8 SUBJECT \"h\\xc3\\xa9llo\"\n" },
	{ S("a X NIL nil \"NIL\" NILS\r\n"), "C a X <NIL> <NIL> \"NIL\" NILS\n" },
	/* literals */
	{ S("a LOGIN {4}\r\nuser pass\r\n"), "+\nC a LOGIN {4}\"user\" pass\n" },
	{ S("a LOGIN {4+}\r\nuser {4+}\r\npass\r\n"), "C a LOGIN {4}\"user\" {4}\"pass\"\n" },
	{ S("a X {3}\r\n\0\0\0\r\n"), "+\nC a X {3}\"\\x00\\x00\\x00\"\n" },
	{ S("a X {5+}\r\na\0b\0c\r\n"), "C a X {5}\"a\\x00b\\x00c\"\n" },
	{ S("a X {0}\r\n\r\n"), "+\nC a X {0}\"\"\n" },
	{ S("a X ({6+}\r\n(\r\n)\"))\r\n"), "C a X ({6}\"(\\x0d\\x0a)\\\")\")\n" },
	{ S("a X {2}\nab \"q\"\n"), "+\nC a X {2}\"ab\" \"q\"\n" },
	{ S("a X {1}\r\nx {1}\r\ny\r\n"), "+\n+\nC a X {1}\"x\" {1}\"y\"\n" },
	{ S("a X {05}\r\nhello\r\n"), "+\nC a X {5}\"hello\"\n" },
	/* lists and atoms */
	{ S("a X (a (b (c)) ()) d\r\n"), "C a X (a (b (c)) ()) d\n" },
	{ S("a X (a )\r\n"), "C a X (a)\n" },
	{ S("a X ((((((\"deep\"))))))\r\n"), "C a X ((((((\"deep\"))))))\n" },
	{ S("a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)\r\n"),
	  "C a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)\n" },
	{ S("a UID FETCH 1,3:5,* (UID RFC822.SIZE BODY[])\r\n"),
	  "C a UID FETCH 1,3:5,* (UID RFC822.SIZE BODY[])\n" },
	{ S("a FETCH 2 BODY[1.2.MIME]\r\n"), "C a FETCH 2 BODY[1.2.MIME]\n" },
	{ S("a FETCH 2 (BODY[HEADER.FIELDS.NOT (\"X-A\" B)])\n"),
	  "C a FETCH 2 (BODY[HEADER.FIELDS.NOT (\"X-A\" B)])\n" },
	{ S("a STORE 1 +FLAGS.SILENT (\\Deleted \\Seen)\r\n"),
	  "C a STORE 1 +FLAGS.SILENT (\\Deleted \\Seen)\n" },
	{ S("a LIST \"\" *\r\n"), "C a LIST \"\" *\n" },
	{ S("a LIST \"\" %/foo\r\n"), "C a LIST \"\" %/foo\n" },
	{ S("a X foo]\r\n"), "C a X foo]\n" },
	/* "[" is an ATOM-CHAR; it opens a section only after a fetch-att
	   that takes one, in FETCH and UID FETCH (RFC 3501 section 9) */
	{ S("a SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}\r\n"),
	  "C a SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}\n" },
	{ S("a LIST \"\" !#$&'+,-.0123456789:;<=>?@^_`|[}%*\r\n"),
	  "C a LIST \"\" !#$&'+,-.0123456789:;<=>?@^_`|[}%*\n" },
	{ S("a SELECT [\r\n"), "C a SELECT [\n" },
	{ S("a X BODY[HEADER\r\n"), "C a X BODY[HEADER\n" },
	{ S("a STATUS [a (MESSAGES)\r\n"), "C a STATUS [a (MESSAGES)\n" },
	{ S("a uid fetch 1 (body.peek[header.fields (a b)] binary[1 2]<0.5>)\r\n"),
	  "C a uid fetch 1 (body.peek[header.fields (a b)] binary[1 2]<0.5>)\n" },
	{ S("a FETCH 1 (BINARY.PEEK[1 (x)] BINARY.SIZE[2 y])\r\n"),
	  "C a FETCH 1 (BINARY.PEEK[1 (x)] BINARY.SIZE[2 y])\n" },
	{ S("a APPEND INBOX (\\Seen \\Flagged) \" 5-Nov-2024 10:00:00 +0100\" {5}\r\n"
	    "Hello\r\n"),
	  "+\nC a APPEND INBOX (\\Seen \\Flagged) \" 5-Nov-2024 10:00:00 +0100\" "
	  "{5}\"Hello\"\n" },
	/* pipelining */
	{ S("a NOOP\r\nb CAPABILITY\r\nc LOGOUT\r\n"), "C a NOOP\nC b CAPABILITY\nC c LOGOUT\n" },
	{ S("a X {1+}\r\nz\nb NOOP\r\n"), "C a X {1}\"z\"\nC b NOOP\n" },
	/* errors: the tag is kept once read, the rest of the line is
	   skipped and the next command is parsed */
	{ S(" NOOP\r\nb NOOP\r\n"), "E -|Missing tag\nC b NOOP\n" },
	{ S("a\r\nb NOOP\r\n"), "E a|Missing command\nC b NOOP\n" },
	{ S("a \r\nb NOOP\r\n"), "E a|Missing command\nC b NOOP\n" },
	{ S("a+b NOOP\r\nb NOOP\r\n"), "E -|Invalid character in tag\nC b NOOP\n" },
	{ S("* NOOP\r\nb NOOP\r\n"), "E -|Invalid character in tag\nC b NOOP\n" },
	{ S("a NO\"OP\r\nb NOOP\r\n"), "E a|Invalid character in command name\nC b NOOP\n" },
	{ S("a X a)\r\nb NOOP\r\n"), "E a|Unexpected ')'\nC b NOOP\n" },
	{ S("a X (a (b)\r\nb NOOP\r\n"), "E a|Missing ')'\nC b NOOP\n" },
	{ S("a X (\nb NOOP\n"), "E a|Missing ')'\nC b NOOP\n" },
	{ S("a X \"abc\r\nb NOOP\r\n"), "E a|Unterminated quoted string\nC b NOOP\n" },
	{ S("a X \"abc\nb NOOP\n"), "E a|Unterminated quoted string\nC b NOOP\n" },
	{ S("a X \"a\\nb\"\r\nb NOOP\r\n"), "E a|Invalid escape in quoted string\nC b NOOP\n" },
	{ S("a X \"a\0b\"\r\nb NOOP\r\n"), "E a|Invalid character in quoted string\nC b NOOP\n" },
	{ S("a X ab\x01"
	    "c\r\nb NOOP\r\n"),
	  "E a|Invalid character in atom\nC b NOOP\n" },
	{ S("a X \xff\r\nb NOOP\r\n"), "E a|Invalid character in atom\nC b NOOP\n" },
	{ S("a X ab(c\r\nb NOOP\r\n"), "E a|Invalid character in atom\nC b NOOP\n" },
	{ S("a X \"a\"b\r\nb NOOP\r\n"), "E a|Missing space after argument\nC b NOOP\n" },
	{ S("a X (a)b\r\nb NOOP\r\n"), "E a|Missing space after argument\nC b NOOP\n" },
	{ S("a FETCH 1 BODY[HEADER\r\nb NOOP\r\n"), "E a|Missing ']'\nC b NOOP\n" },
	{ S("a X {abc}\r\nb NOOP\r\n"), "E a|Invalid literal\nC b NOOP\n" },
	{ S("a X {}\r\nb NOOP\r\n"), "E a|Invalid literal\nC b NOOP\n" },
	{ S("a X {3}x\r\nb NOOP\r\n"), "E a|Invalid literal\nC b NOOP\n" },
	{ S("a X {3+x}\r\nb NOOP\r\n"), "E a|Invalid literal\nC b NOOP\n" },
	{ S("a NOOP\rb NOOP\r\nc NOOP\r\n"), "E a|CR not followed by LF\nC c NOOP\n" },
	{ S("\rx\r\nb NOOP\r\n"), "E -|Missing tag\nC b NOOP\n" },
	/* a sync literal in a bad line is never waited for: its data would
	   not come, as no continuation was sent */
	{ S("a X ) {5}\r\nb NOOP\r\n"), "E a|Unexpected ')'\nC b NOOP\n" },
	{ S("\0\0\0\r\nb NOOP\r\n"), "E -|Invalid character in tag\nC b NOOP\n" },
};

static void
test_parse_table_any_split_same_tree(void **state)
{
	static const size_t chunks[] = { 0, 1, 2, 3, 7, SIZE_MAX - 1, SIZE_MAX - 2 };

	for (size_t i = 0; i < N_ELEMENTS(parse_cases); i++) {
		const struct parse_case *tc = &parse_cases[i];

		for (size_t j = 0; j < N_ELEMENTS(chunks); j++) {
			char *got = run_parser(tc->input, tc->len, chunks[j], TEST_MAX_LINE,
					       TEST_MAX_LITERAL);

			if (strcmp(got, tc->expect) != 0) {
				print_error("case %zu (chunk %zu):\n%s\nexpected:\n%s\n", i,
					    chunks[j], got, tc->expect);
				free(got);
				fail();
			}
			free(got);
		}
	}
}

/* The parser stops right after each command's LF and after a sync
   literal's header, so pipelined commands come one at a time. */
static void
test_feed_stops_after_command_and_literal_header(void **state)
{
	static const char input[] = "a LOGIN {4}\r\nuser pass\r\nb NOOP\r\n";
	struct imap_parser *parser = imap_parser_new(100, 100);
	const struct imap_command *cmd;
	size_t consumed, pos = 0;

	assert_int_equal(imap_parser_feed(parser, input, strlen(input), &consumed),
			 IMAP_PARSE_LITERAL);
	assert_int_equal(consumed, strlen("a LOGIN {4}\r\n"));
	pos += consumed;
	assert_int_equal(imap_parser_feed(parser, input + pos, strlen(input) - pos, &consumed),
			 IMAP_PARSE_COMMAND);
	assert_int_equal(consumed, strlen("user pass\r\n"));
	pos += consumed;
	cmd = imap_parser_command(parser);
	assert_non_null(cmd);
	assert_string_equal(cmd->tag, "a");
	assert_string_equal(cmd->name, "LOGIN");
	assert_int_equal(cmd->arg_count, 2);
	assert_int_equal(cmd->args[0].type, IMAP_ARG_LITERAL);
	assert_string_equal(cmd->args[0].str, "user");
	assert_int_equal(cmd->args[1].type, IMAP_ARG_ATOM);

	/* Without reset the result stays and nothing is consumed. */
	assert_int_equal(imap_parser_feed(parser, input + pos, strlen(input) - pos, &consumed),
			 IMAP_PARSE_COMMAND);
	assert_int_equal(consumed, 0);

	imap_parser_reset(parser);
	assert_null(imap_parser_command(parser));
	assert_int_equal(imap_parser_feed(parser, input + pos, strlen(input) - pos, &consumed),
			 IMAP_PARSE_COMMAND);
	assert_int_equal(consumed, strlen(input) - pos);
	assert_string_equal(imap_parser_command(parser)->tag, "b");
	imap_parser_free(&parser);
	assert_null(parser);
	imap_parser_free(&parser); /* NULL is fine */
}

static void
test_line_too_long_is_fatal(void **state)
{
	char line[64];
	char *got;

	/* max_line 20 counts every byte of the line, CRLF included. */
	memcpy(line, "a X 12345678901234\r\n", 21); /* 20 bytes */
	got = run_parser(line, 20, 0, 20, 100);
	assert_string_equal(got, "C a X 12345678901234\n");
	free(got);
	memcpy(line, "a X 123456789012345\r\n", 22); /* 21 bytes */
	got = run_parser(line, 21, 0, 20, 100);
	assert_string_equal(got, "F a|Line too long\n");
	free(got);
	got = run_parser(line, 21, 1, 20, 100);
	assert_string_equal(got, "F a|Line too long\n");
	free(got);

	/* No LF at all: FATAL after max_line bytes, not unbounded growth. */
	{
		static char big[10000];
		struct imap_parser *parser = imap_parser_new(8192, 100);
		size_t consumed;

		memset(big, 'x', sizeof(big));
		assert_int_equal(imap_parser_feed(parser, big, sizeof(big), &consumed),
				 IMAP_PARSE_FATAL);
		assert_int_equal(consumed, 8192);
		assert_string_equal(imap_parser_error(parser), "Line too long");
		assert_null(imap_parser_tag(parser));
		imap_parser_free(&parser);
	}
}

static void
test_literal_data_does_not_count_against_line(void **state)
{
	struct buf in = BUF_INIT;
	char *got;

	buf_append_str(&in, "a X {30+}\r\n");
	for (int i = 0; i < 30; i++)
		buf_append_c(&in, 'x');
	buf_append_str(&in, "\r\n");
	got = run_parser(in.data, in.len, 0, 20, 100);
	assert_string_equal(got, "C a X {30}\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n");
	free(got);

	/* but every line of the command does count: 10 + 11 > 20 */
	buf_reset(&in);
	buf_append_str(&in, "a X {1+}\r\nx 23456789\r\n");
	got = run_parser(in.data, in.len, 0, 20, 100);
	assert_string_equal(got, "F a|Line too long\n");
	free(got);
	buf_free(&in);
}

static void
test_literal_too_large_is_fatal_and_data_not_consumed(void **state)
{
	static const char input[] = "a APPEND INBOX {11}\r\nhello world\r\n";
	struct imap_parser *parser = imap_parser_new(100, 10);
	size_t consumed;
	char *got;

	assert_int_equal(imap_parser_feed(parser, input, strlen(input), &consumed),
			 IMAP_PARSE_FATAL);
	assert_string_equal(imap_parser_error(parser), "Literal too large");
	assert_string_equal(imap_parser_tag(parser), "a");
	assert_true(consumed <= (size_t)(strchr(input, '}') - input));
	imap_parser_free(&parser);

	/* exactly max_literal is fine, sync and non-sync */
	got = run_parser(S("a X {10}\r\n0123456789\r\n"), 1, 100, 10);
	assert_string_equal(got, "+\nC a X {10}\"0123456789\"\n");
	free(got);
	got = run_parser(S("a X {11+}\r\n0123456789a\r\n"), 0, 100, 10);
	assert_string_equal(got, "F a|Literal too large\n");
	free(got);
	/* The literals of one command together are held to max_literal. */
	got = run_parser(S("a X {6+}\r\nabcdef {5+}\r\nabcde\r\n"), 0, 100, 10);
	assert_string_equal(got, "F a|Literal too large\n");
	free(got);
	got = run_parser(S("a X {6+}\r\nabcdef {4+}\r\nabcd\r\n"), 0, 100, 10);
	assert_string_equal(got, "C a X {6}\"abcdef\" {4}\"abcd\"\n");
	free(got);
}

/* The limits can grow between commands (a session's at login). */
static void
test_set_limits_between_commands(void **state)
{
	static const char small[] = "a LOGIN {5}\r\n";
	static const char big[] = "b APPEND INBOX {50}\r\n";
	struct imap_parser *parser = imap_parser_new(1024, 10);
	size_t consumed;

	(void)state;
	assert_int_equal(imap_parser_feed(parser, small, strlen(small), &consumed),
			 IMAP_PARSE_LITERAL);
	assert_int_equal(imap_parser_feed(parser, "user1 x\r\n", 9, &consumed),
			 IMAP_PARSE_COMMAND);
	imap_parser_reset(parser);
	assert_int_equal(imap_parser_feed(parser, big, strlen(big), &consumed),
			 IMAP_PARSE_FATAL);
	imap_parser_free(&parser);

	parser = imap_parser_new(1024, 10);
	assert_int_equal(imap_parser_feed(parser, small, strlen(small), &consumed),
			 IMAP_PARSE_LITERAL);
	assert_int_equal(imap_parser_feed(parser, "user1 x\r\n", 9, &consumed),
			 IMAP_PARSE_COMMAND);
	imap_parser_reset(parser);
	imap_parser_set_limits(parser, 1024, 100);
	assert_int_equal(imap_parser_feed(parser, big, strlen(big), &consumed),
			 IMAP_PARSE_LITERAL);
	imap_parser_free(&parser);
}

static void
test_huge_literal_number_does_not_overflow(void **state)
{
	char *got;

	got = run_parser(S("a X {99999999999999999999}\r\n"), 0, 100, 26214400);
	assert_string_equal(got, "F a|Literal too large\n");
	free(got);
	got = run_parser(S("a X {99999999999999999999}\r\n"), 0, 100, SIZE_MAX);
	assert_string_equal(got, "F a|Literal too large\n");
	free(got);
	got = run_parser(S("a X {18446744073709551616+}\r\n"), 1, 100, SIZE_MAX);
	assert_string_equal(got, "F a|Literal too large\n");
	free(got);
	got = run_parser(S("a X {26214401}\r\n"), 0, 100, 26214400);
	assert_string_equal(got, "F a|Literal too large\n");
	free(got);
	/* a big announced size alone does not fail or allocate it all */
	got = run_parser(S("a X {26214400}\r\nabc"), 0, 100, 26214400);
	assert_string_equal(got, "+\n");
	free(got);
}

static void
test_nesting_limit(void **state)
{
	struct buf in = BUF_INIT, expect = BUF_INIT;
	char *got;

	/* 32 levels parse */
	buf_append_str(&in, "a X ");
	for (int i = 0; i < 32; i++)
		buf_append_c(&in, '(');
	buf_append_c(&in, 'x');
	for (int i = 0; i < 32; i++)
		buf_append_c(&in, ')');
	buf_append_str(&in, "\r\n");
	buf_printf(&expect, "C %.*s\n", (int)(in.len - 2), in.data);
	got = run_parser(in.data, in.len, 0, TEST_MAX_LINE, TEST_MAX_LITERAL);
	assert_string_equal(got, expect.data);
	free(got);

	/* 33 are an error, and the next command is parsed */
	buf_reset(&in);
	buf_append_str(&in, "a X ");
	for (int i = 0; i < 33; i++)
		buf_append_c(&in, '(');
	buf_append_str(&in, "\r\nb NOOP\r\n");
	got = run_parser(in.data, in.len, 1, TEST_MAX_LINE, TEST_MAX_LITERAL);
	assert_string_equal(got, "E a|Too deeply nested lists\nC b NOOP\n");
	free(got);

	/* thousands of "(" are bounded the same way */
	buf_reset(&in);
	buf_append_str(&in, "a X ");
	for (int i = 0; i < 5000; i++)
		buf_append_c(&in, '(');
	buf_append_str(&in, "\r\nb NOOP\r\n");
	got = run_parser(in.data, in.len, 0, 10000, TEST_MAX_LITERAL);
	assert_string_equal(got, "E a|Too deeply nested lists\nC b NOOP\n");
	free(got);
	buf_free(&in);
	buf_free(&expect);
}

/* After an ERROR the rest of the line is skipped even when it arrives in
   later pieces, and the command after it is parsed normally. */
static void
test_error_skips_rest_of_line_across_feeds(void **state)
{
	struct imap_parser *parser = imap_parser_new(100, 100);
	size_t consumed;

	assert_int_equal(imap_parser_feed(parser, "t1 X \"abc\r", 10, &consumed), IMAP_PARSE_ERROR);
	assert_int_equal(consumed, 10);
	assert_string_equal(imap_parser_tag(parser), "t1");
	assert_string_equal(imap_parser_error(parser), "Unterminated quoted string");
	imap_parser_reset(parser);
	assert_null(imap_parser_tag(parser));
	assert_null(imap_parser_error(parser));
	/* garbage still belonging to the bad line, then the next command */
	assert_int_equal(imap_parser_feed(parser, "junk ) {5}", 10, &consumed),
			 IMAP_PARSE_NEED_MORE);
	assert_int_equal(consumed, 10);
	assert_int_equal(imap_parser_feed(parser, "\nt2 NOOP\r\n", 10, &consumed),
			 IMAP_PARSE_COMMAND);
	assert_int_equal(consumed, 10);
	assert_string_equal(imap_parser_command(parser)->tag, "t2");
	assert_string_equal(imap_parser_command(parser)->name, "NOOP");
	assert_int_equal(imap_parser_command(parser)->arg_count, 0);
	imap_parser_free(&parser);
}

static void
test_arg_helpers(void **state)
{
	struct imap_parser *parser = imap_parser_new(200, 100);
	const struct imap_command *cmd;
	size_t consumed;
	static const char input[] = "a X atom \"str\" {3+}\r\nlit NIL (l) Atom2\r\n";

	assert_int_equal(imap_parser_feed(parser, input, strlen(input), &consumed),
			 IMAP_PARSE_COMMAND);
	cmd = imap_parser_command(parser);
	assert_int_equal(cmd->arg_count, 6);
	assert_true(imap_arg_is_string(&cmd->args[0]));
	assert_true(imap_arg_is_string(&cmd->args[1]));
	assert_true(imap_arg_is_string(&cmd->args[2]));
	assert_false(imap_arg_is_string(&cmd->args[3]));
	assert_int_equal(cmd->args[3].type, IMAP_ARG_NIL);
	assert_false(imap_arg_is_string(&cmd->args[4]));
	assert_int_equal(cmd->args[4].type, IMAP_ARG_LIST);
	/* An astring is any atom, NIL included (the string "NIL"). */
	for (size_t i = 0; i < 4; i++)
		assert_true(imap_arg_is_astring(&cmd->args[i]));
	assert_string_equal(cmd->args[3].str, "NIL");
	assert_false(imap_arg_is_astring(&cmd->args[4]));
	assert_true(imap_arg_is_astring(&cmd->args[5]));
	assert_true(imap_arg_is_atom(&cmd->args[0]));
	assert_false(imap_arg_is_atom(&cmd->args[1]));
	assert_false(imap_arg_is_atom(&cmd->args[2]));
	assert_true(imap_arg_is_atom(&cmd->args[3]));
	assert_false(imap_arg_is_atom(&cmd->args[4]));
	assert_false(imap_arg_is_astring(NULL));
	assert_int_equal(cmd->args[4].list_count, 1);

	assert_true(imap_arg_atom_equals(&cmd->args[0], "ATOM"));
	assert_true(imap_arg_atom_equals(&cmd->args[0], "atom"));
	assert_false(imap_arg_atom_equals(&cmd->args[0], "ato"));
	assert_false(imap_arg_atom_equals(&cmd->args[0], "atoms"));
	assert_false(imap_arg_atom_equals(&cmd->args[1], "str")); /* quoted */
	assert_false(imap_arg_atom_equals(&cmd->args[2], "lit")); /* literal */
	assert_false(imap_arg_atom_equals(&cmd->args[3], "NIL")); /* NIL type */
	assert_false(imap_arg_atom_equals(&cmd->args[4], "l"));
	assert_true(imap_arg_atom_equals(&cmd->args[5], "ATOM2"));
	assert_true(imap_arg_atom_equals(&cmd->args[4].list[0], "L"));
	imap_parser_free(&parser);
}

/* Where "[" opens a section (one argument over spaces) and where it is
   an ATOM-CHAR (the space ends the atom): checked by argument count. */
static void
test_atom_brackets(void **state)
{
	static const struct {
		const char *line;
		size_t count;  /* top-level arguments */
		const char *last; /* the last atom (of the last list if it ends with one) */
	} cases[] = {
		{ "a SELECT BODY[x y]\r\n", 2, "y]" },
		{ "a CREATE a[b c]d\r\n", 2, "c]d" },
		{ "a LIST \"\" a[%\r\n", 2, "a[%" },
		{ "a UID STORE 1 FLAGS (BODY[x y])\r\n", 4, "y]" },
		{ "a FETCH 1 (FLAGS X[a b])\r\n", 2, "b]" },
		{ "a FETCH 1 BODY[x y]\r\n", 2, "BODY[x y]" },
		{ "a FETCH 1 (BODY.PEEK[x y])\r\n", 2, "BODY.PEEK[x y]" },
		{ "a UID FETCH 1 binary.size[x y]\r\n", 3, "binary.size[x y]" },
		{ "a UID SEARCH BODY[x y]\r\n", 3, "y]" },
		{ "a FETCH 1 XBODY[x y]\r\n", 3, "y]" },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct imap_parser *parser = imap_parser_new(200, 100);
		const struct imap_command *cmd;
		const struct imap_arg *last;
		size_t consumed;

		assert_int_equal(imap_parser_feed(parser, cases[i].line, strlen(cases[i].line),
						  &consumed),
				 IMAP_PARSE_COMMAND);
		cmd = imap_parser_command(parser);
		if (cmd->arg_count != cases[i].count)
			fail_msg("%s: %zu arguments", cases[i].line, cmd->arg_count);
		last = &cmd->args[cmd->arg_count - 1];
		if (last->type == IMAP_ARG_LIST) {
			assert_true(last->list_count > 0);
			last = &last->list[last->list_count - 1];
		}
		assert_string_equal(last->str, cases[i].last);
		imap_parser_free(&parser);
	}
}

/* With max_args, one argument more (lists and their elements count) is
   an ERROR; the rest of the line is skipped and the next command parsed. */
static void
test_max_args(void **state)
{
	static const struct {
		const char *line;
		bool ok;
	} cases[] = {
		{ "a X 1 2 3 4\r\n", true },
		{ "a X 1 2 3 4 5\r\n", false },
		{ "a X (1 2 3)\r\n", true },
		{ "a X (1 2 3) 4\r\n", false },
		{ "a X ((()))\r\n", true },
		{ "a X ((())) () ()\r\n", false },
		{ "a X \"1\" {1+}\r\n2 3 NIL\r\n", true },
		{ "a X 1 2 3 4 \"5\"\r\n", false },
		{ "a X 1 2 3 4 {1}\r\n", false },
		{ "a X  1  2 3 4 \r\n", true },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct imap_parser *parser = imap_parser_new(200, 100);
		enum imap_parse_result res;
		size_t consumed;
		const char *next = "b NOOP\r\n";

		imap_parser_set_max_args(parser, 4);
		res = imap_parser_feed(parser, cases[i].line, strlen(cases[i].line), &consumed);
		if (cases[i].ok) {
			if (res != IMAP_PARSE_COMMAND)
				fail_msg("%s: refused", cases[i].line);
		} else {
			if (res != IMAP_PARSE_ERROR)
				fail_msg("%s: not refused", cases[i].line);
			assert_string_equal(imap_parser_error(parser), "Too many arguments");
			imap_parser_reset(parser);
			/* the rest of the line is skipped */
			while (consumed < strlen(cases[i].line)) {
				size_t n;

				assert_int_equal(imap_parser_feed(parser, cases[i].line + consumed,
								  strlen(cases[i].line) - consumed, &n),
						 IMAP_PARSE_NEED_MORE);
				consumed += n;
			}
		}
		imap_parser_reset(parser);
		/* the count starts again for the next command */
		assert_int_equal(imap_parser_feed(parser, next, strlen(next), &consumed),
				 IMAP_PARSE_COMMAND);
		imap_parser_reset(parser);
		imap_parser_set_max_args(parser, 0);
		next = "c X 1 2 3 4 5 6\r\n";
		res = imap_parser_feed(parser, next, strlen(next), &consumed);
		assert_int_equal(res, IMAP_PARSE_COMMAND);
		assert_int_equal(imap_parser_command(parser)->arg_count, 6);
		imap_parser_free(&parser);
	}
}

/* A deterministic generator, so a failure can be reproduced. */
static uint32_t
rnd_next(uint32_t *state)
{
	*state = *state * 1664525u + 1013904223u;
	return *state >> 8;
}

static void
test_random_garbage_never_crashes(void **state)
{
	/* Bytes the grammar cares about, drawn more often than others. */
	static const char interesting[] = " ()[]{}\"\\+*%\r\n0123456789aNIL<>.:,";
	static const char *const soup[] = {
		"a X ",
		"b FETCH 1:* ",
		"{3}\r\n",
		"{2+}\r\n",
		"{0}\n",
		"{60+}\r\n",
		"{99999999999999999999}",
		"(",
		")",
		"\"q\\\"\"",
		"BODY[X (A)]<0.1>",
		"NIL",
		" ",
		" ",
		"\r\n",
		"\n",
		"abc",
		"\\Seen",
		"",
		"",
		"((((((((((((",
	};
	uint32_t seed = 12345;
	char data[600];
	size_t seen_command = 0, seen_literal = 0, seen_error = 0, seen_fatal = 0;

	for (int iter = 0; iter < 10000; iter++) {
		size_t len = rnd_next(&seed) % sizeof(data);
		uint32_t mode = rnd_next(&seed) % 4;
		char *whole, *bytewise, *pieces;

		if (mode == 3) {
			/* a soup of grammar pieces, to reach literals, deep
			   lists and the limits */
			size_t pos = 0;

			while (pos < len) {
				uint32_t r = rnd_next(&seed);
				const char *t = soup[r % N_ELEMENTS(soup)];
				size_t tlen = strlen(t);

				if (tlen == 0) { /* a random byte */
					data[pos++] = (char)(r >> 8);
					continue;
				}
				if (tlen > len - pos)
					tlen = len - pos;
				memcpy(data + pos, t, tlen);
				pos += tlen;
			}
		}
		for (size_t i = 0; i < len && mode != 3; i++) {
			uint32_t r = rnd_next(&seed);

			if (mode == 0 || r % 4 == 0)
				data[i] = (char)(r >> 4);
			else
				data[i] = interesting[(r >> 4) % (sizeof(interesting) - 1)];
		}
		if (mode == 2 && len > 8)
			memcpy(data, "a X ", 4);
		/* small limits so that the fatal paths are hit too */
		whole = run_parser(data, len, 0, 200, 50);
		bytewise = run_parser(data, len, 1, 200, 50);
		pieces = run_parser(data, len, SIZE_MAX - (size_t)iter % 100, 200, 50);
		assert_string_equal(whole, bytewise);
		assert_string_equal(whole, pieces);
		for (const char *p = whole; *p != '\0'; p++) {
			if (p != whole && p[-1] != '\n')
				continue;
			seen_command += *p == 'C';
			seen_literal += *p == '+';
			seen_error += *p == 'E';
			seen_fatal += *p == 'F';
		}
		free(whole);
		free(bytewise);
		free(pieces);
	}
	/* The inputs reach every kind of result, not only early errors. */
	print_message("random: %zu commands, %zu literals, %zu errors, %zu fatal\n", seen_command,
		      seen_literal, seen_error, seen_fatal);
	assert_true(seen_command > 100);
	assert_true(seen_literal > 10);
	assert_true(seen_error > 1000);
	assert_true(seen_fatal > 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table_any_split_same_tree),
		cmocka_unit_test(test_feed_stops_after_command_and_literal_header),
		cmocka_unit_test(test_line_too_long_is_fatal),
		cmocka_unit_test(test_literal_data_does_not_count_against_line),
		cmocka_unit_test(test_literal_too_large_is_fatal_and_data_not_consumed),
		cmocka_unit_test(test_set_limits_between_commands),
		cmocka_unit_test(test_huge_literal_number_does_not_overflow),
		cmocka_unit_test(test_nesting_limit),
		cmocka_unit_test(test_error_skips_rest_of_line_across_feeds),
		cmocka_unit_test(test_arg_helpers),
		cmocka_unit_test(test_atom_brackets),
		cmocka_unit_test(test_max_args),
		cmocka_unit_test(test_random_garbage_never_crashes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
