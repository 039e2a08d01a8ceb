/* test_mailclient_parse.c: mailclient's parsing and formatting: IMAP
   responses (framing byte by byte, literals, nesting, junk), SMTP
   replies, EHLO extensions and dot-stuffing, address checks and the
   lab's input lines; the message built to send (quoted-printable,
   folded headers); the terminal's line editor; the command line, and
   the TLS policy (when
   STARTTLS is used, when a password may be sent, what a failed
   handshake tells the user).

   The client's sources are not in libimapcore.a, so they are compiled
   into this test directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "message.h"
#include "mime.h"

#include "../client/client_tls.c"
#include "../client/imap_client_lib.c"
#include "../client/imap_client_parse.c"
#include "../client/mc_edit.c"
#include "../client/mc_options.c"
#include "../client/mc_util.c"
#include "../client/netio.c"
#include "../client/smtp_client.c"

/* ------------------------------------------------------------ IMAP framing */

static void
test_response_size_needs_the_whole_line(void **state)
{
	const char *r = "* 3 EXISTS\r\n* 1 RECENT\r\n";
	size_t size = 0;

	for (size_t n = 0; n < 12; n++)
		assert_int_equal(imapc_response_size(r, n, &size), 0);
	assert_int_equal(imapc_response_size(r, strlen(r), &size), 1);
	assert_int_equal(size, 12);
}

static void
test_response_size_waits_for_literals_byte_by_byte(void **state)
{
	const char *r = "* 1 FETCH (BODY[] {5}\r\nab\r\nc ENVELOPE {3}\r\nxyz)\r\nm1 OK\r\n";
	size_t whole = strlen(r) - strlen("m1 OK\r\n");
	size_t size = 0;

	/* Every prefix shorter than the response is incomplete, even those
	   that end in a line end inside the literal. */
	for (size_t n = 0; n < whole; n++)
		assert_int_equal(imapc_response_size(r, n, &size), 0);
	assert_int_equal(imapc_response_size(r, whole, &size), 1);
	assert_int_equal(size, whole);
	assert_int_equal(imapc_response_size(r, strlen(r), &size), 1);
	assert_int_equal(size, whole);
}

static void
test_response_size_refuses_huge_literals(void **state)
{
	const char *r = "* 1 FETCH (BODY[] {99999999999}\r\n";
	size_t size;

	assert_int_equal(imapc_response_size(r, strlen(r), &size), -1);
}

static const struct imapc_arg *
list_item(const struct imapc_arg *list, size_t i)
{
	assert_int_equal(list->type, IMAPC_ARG_LIST);
	assert_true(i < list->count);
	return &list->list[i];
}

static void
test_parse_fetch_with_envelope_and_literal(void **state)
{
	const char *r = "* 12 FETCH (UID 42 INTERNALDATE \"10-Mar-2022 14:30:00 +0000\" "
			"ENVELOPE (\"Thu, 10 Mar 2022\" \"a \\\"q\\\" subject\" "
			"((\"Bob\" NIL \"bob\" \"example.org\")) NIL NIL NIL NIL NIL NIL \"<id@x>\") "
			"BODY[] {7}\r\nab\0\r\ncd)\r\n";
	size_t len = strlen(r) + strlen("\r\ncd)\r\n") + 1;     /* the literal holds a NUL */
	struct imapc_response resp;
	char *error = NULL;
	size_t size;

	assert_int_equal(imapc_response_size(r, len, &size), 1);
	assert_int_equal(size, len);
	assert_int_equal(imapc_response_parse(r, len, &resp, &error), 0);
	assert_string_equal(resp.tag, "*");
	assert_int_equal(resp.count, 3);
	uint32_t n;
	assert_int_equal(imapc_arg_u32(&resp.args[0], &n), 0);
	assert_int_equal(n, 12);
	assert_string_equal(imapc_arg_str(&resp.args[1]), "FETCH");
	const struct imapc_arg *items = &resp.args[2];
	assert_int_equal(imapc_arg_u32(imapc_fetch_item(items, "uid"), &n), 0);
	assert_int_equal(n, 42);
	assert_string_equal(imapc_arg_str(imapc_fetch_item(items, "INTERNALDATE")),
			    "10-Mar-2022 14:30:00 +0000");
	const struct imapc_arg *env = imapc_fetch_item(items, "ENVELOPE");
	assert_non_null(env);
	assert_string_equal(imapc_arg_str(list_item(env, 1)), "a \"q\" subject");
	const struct imapc_arg *addr = list_item(list_item(env, 2), 0);
	assert_string_equal(imapc_arg_str(list_item(addr, 0)), "Bob");
	assert_int_equal(list_item(addr, 1)->type, IMAPC_ARG_NIL);
	assert_string_equal(imapc_arg_str(list_item(addr, 2)), "bob");
	assert_string_equal(imapc_arg_str(list_item(addr, 3)), "example.org");
	const struct imapc_arg *body = imapc_fetch_item(items, "BODY[]");
	assert_non_null(body);
	assert_int_equal(body->type, IMAPC_ARG_STRING);
	assert_int_equal(body->len, 7);
	assert_memory_equal(body->str, "ab\0\r\ncd", 7);
	assert_null(imapc_fetch_item(items, "FLAGS"));
	imapc_response_free(&resp);
}

static void
test_parse_status_responses_keep_the_text(void **state)
{
	const char *r = "m7 NO [AUTHENTICATIONFAILED] Authentication failed (\"bad\r\n";
	struct imapc_response resp;
	char *error = NULL;

	assert_int_equal(imapc_response_parse(r, strlen(r), &resp, &error), 0);
	assert_string_equal(resp.tag, "m7");
	assert_int_equal(resp.count, 1);
	assert_string_equal(imapc_arg_str(&resp.args[0]), "NO");
	assert_string_equal(resp.text, "[AUTHENTICATIONFAILED] Authentication failed (\"bad");
	imapc_response_free(&resp);

	r = "* ok [CAPABILITY IMAP4rev1 IDLE] hi\r\n";
	assert_int_equal(imapc_response_parse(r, strlen(r), &resp, &error), 0);
	assert_string_equal(imapc_arg_str(&resp.args[0]), "OK");
	assert_string_equal(resp.text, "[CAPABILITY IMAP4rev1 IDLE] hi");
	imapc_response_free(&resp);

	r = "+ idling\r\n";
	assert_int_equal(imapc_response_parse(r, strlen(r), &resp, &error), 0);
	assert_string_equal(resp.tag, "+");
	assert_int_equal(resp.count, 0);
	assert_string_equal(resp.text, "idling");
	imapc_response_free(&resp);
}

static void
test_parse_bracketed_atoms_hold_spaces(void **state)
{
	const char *r = "* 1 FETCH (BODY[HEADER.FIELDS (FROM TO)] {2}\r\nhi)\r\n";
	struct imapc_response resp;
	char *error = NULL;

	assert_int_equal(imapc_response_parse(r, strlen(r), &resp, &error), 0);
	const struct imapc_arg *v = imapc_fetch_item(&resp.args[2], "BODY[HEADER.FIELDS (FROM TO)]");
	assert_non_null(v);
	assert_string_equal(v->str, "hi");
	imapc_response_free(&resp);
}

static void
test_parse_rejects_malformed_responses(void **state)
{
	static const char *const bad[] = {
		"* 1 FETCH (UID 1\r\n",                 /* list not closed */
		"* 1 FETCH UID 1)\r\n",                 /* unbalanced */
		"* 1 FETCH (X \"open\r\n",              /* quoted string not closed */
		"* 1 FETCH (BODY[] {10}\r\nabc)\r\n",   /* literal runs past the end */
		"* 1 FETCH (BODY[] {x}\r\n)\r\n",       /* bad literal */
		" leading space\r\n",                   /* no tag */
	};

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		struct imapc_response resp;
		char *error = NULL;
		assert_int_equal(imapc_response_parse(bad[i], strlen(bad[i]), &resp, &error), -1);
		assert_non_null(error);
		free(error);
	}
}

static void
test_parse_limits_nesting_depth(void **state)
{
	struct buf b = BUF_INIT;
	struct imapc_response resp;
	char *error = NULL;

	buf_append_str(&b, "* 1 FETCH ");
	for (int i = 0; i < 10000; i++)
		buf_append_c(&b, '(');
	for (int i = 0; i < 10000; i++)
		buf_append_c(&b, ')');
	buf_append_str(&b, "\r\n");
	assert_int_equal(imapc_response_parse(b.data, b.len, &resp, &error), -1);
	assert_non_null(strstr(error, "nested"));
	free(error);
	buf_free(&b);
}

static void
test_cmd_strings_are_quoted_or_literal(void **state)
{
	struct imapc conn;
	struct imapc_cmd cmd;

	i_zero(&conn);
	imapc_cmd_init(&cmd);
	imapc_cmd_append(&cmd, "LOGIN ");
	imapc_cmd_append_string(&conn, &cmd, "al\"ice", 6);
	imapc_cmd_append(&cmd, " ");
	imapc_cmd_append_string(&conn, &cmd, "p\xc3\xa4ss", 5);
	assert_string_equal(cmd.text.data, "LOGIN \"al\\\"ice\" {5}\r\np\xc3\xa4ss");
	assert_int_equal(cmd.lit_count, 1);
	assert_int_equal(cmd.lit_starts[0], strlen("LOGIN \"al\\\"ice\" {5}\r\n"));
	imapc_cmd_clear(&cmd);

	strlist_add(&conn.caps, "LITERAL+");
	imapc_cmd_init(&cmd);
	imapc_cmd_append_string(&conn, &cmd, "a\nb", 3);
	assert_string_equal(cmd.text.data, "{3+}\r\na\nb");
	assert_int_equal(cmd.lit_count, 0);
	imapc_cmd_clear(&cmd);
	strlist_clear(&conn.caps);
}

/* ------------------------------------------------------------ SMTP */

static char *
stuffed(const char *in)
{
	struct buf out = BUF_INIT;

	smtpc_dot_stuff(in, strlen(in), &out);
	return buf_steal(&out);
}

static void
test_dot_stuffing_and_crlf(void **state)
{
	char *s;

	s = stuffed("a\n.b\n..c\n.\nd");
	assert_string_equal(s, "a\r\n..b\r\n...c\r\n..\r\nd\r\n.\r\n");
	free(s);
	s = stuffed(".\r\nx\r\n");
	assert_string_equal(s, "..\r\nx\r\n.\r\n");
	free(s);
	s = stuffed("");
	assert_string_equal(s, ".\r\n");
	free(s);
	s = stuffed("mid.dot\n");
	assert_string_equal(s, "mid.dot\r\n.\r\n");
	free(s);
}

static void
test_smtp_reply_parse(void **state)
{
	unsigned code = 0;
	size_t size = 0;
	const char *multi = "250-sink\r\n250-8BITMIME\r\n250 OK\r\n354 go\r\n";

	for (size_t n = 0; n < strlen("250-sink\r\n250-8BITMIME\r\n250 OK\r\n"); n++)
		assert_int_equal(smtpc_reply_parse(multi, n, &code, &size), 0);
	assert_int_equal(smtpc_reply_parse(multi, strlen(multi), &code, &size), 1);
	assert_int_equal(code, 250);
	assert_int_equal(size, strlen("250-sink\r\n250-8BITMIME\r\n250 OK\r\n"));
	assert_int_equal(smtpc_reply_parse("550\r\n", 5, &code, &size), 1);
	assert_int_equal(code, 550);
	assert_int_equal(smtpc_reply_parse("hello\r\n", 7, &code, &size), -1);
	assert_int_equal(smtpc_reply_parse("250-a\r\n251 b\r\n", 14, &code, &size), -1);
	assert_int_equal(smtpc_reply_parse("250xa\r\n", 7, &code, &size), -1);
}

/* ------------------------------------------------------------ addresses */

static void
test_address_forms(void **state)
{
	static const char *const good[] = {
		"alice@localhost", "a.b+c@example.org", "x@y", "o'neil@mail.example-1.com",
		"u@[127.0.0.1]",
	};
	static const char *const bad[] = {
		"", "alice", "@localhost", "alice@", "a b@c", "a@b c", "a@@b", ".a@b", "a.@b",
		"a..b@c", "a@-b", "a@b-", "a@b..c", "<a@b>", "a@b.", "a\"@b", "a@b_c",
	};

	for (size_t i = 0; i < N_ELEMENTS(good); i++) {
		if (!mc_address_valid(good[i]))
			fail_msg("%s should be valid", good[i]);
	}
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		if (mc_address_valid(bad[i]))
			fail_msg("%s should be invalid", bad[i]);
	}
}

static void
test_address_belongs_to_user(void **state)
{
	assert_true(mc_address_is_users("alice@localhost", "alice"));
	assert_true(mc_address_is_users("Alice@example.org", "alice"));
	assert_false(mc_address_is_users("alicex@localhost", "alice"));
	assert_false(mc_address_is_users("ali@localhost", "alice"));
	assert_false(mc_address_is_users("bob@localhost", "alice"));
	assert_true(mc_address_is_users("alice@example.org", "alice@example.org"));
	assert_false(mc_address_is_users("alice@other.org", "alice@example.org"));
}

static void
test_lab_header_lines(void **state)
{
	char *v = NULL;
	struct strlist list;
	char *bad = NULL;

	assert_int_equal(mc_header_line("From: alice@localhost ", "From", &v), 1);
	assert_string_equal(v, "alice@localhost");
	free(v);
	assert_int_equal(mc_header_line("subject :  hi there", "Subject", &v), 1);
	assert_string_equal(v, "hi there");
	free(v);
	assert_int_equal(mc_header_line("Subject:", "Subject", &v), 1);
	assert_string_equal(v, "");
	free(v);
	assert_int_equal(mc_header_line("To alice@localhost", "To", &v), 0);
	assert_int_equal(mc_header_line("Tox: a@b", "To", &v), 0);

	i_zero(&list);
	assert_int_equal(mc_split_addresses("a@b, <c@d>,e@f", &list, &bad), 0);
	assert_int_equal(list.count, 3);
	assert_string_equal(list.items[1], "c@d");
	strlist_clear(&list);
	assert_int_equal(mc_split_addresses("a@b, nope", &list, &bad), -1);
	assert_string_equal(bad, "nope");
	free(bad);
	strlist_clear(&list);
	assert_int_equal(mc_split_addresses(" , ", &list, &bad), -1);
	assert_string_equal(bad, "");
	free(bad);
	strlist_clear(&list);
}

static void
test_built_message_has_date_id_and_encoded_subject(void **state)
{
	struct buf out = BUF_INIT;

	mc_build_message("alice@localhost", "bob@localhost", "Gr\xc3\xbc\xc3\x9f" "e", "hi\n",
			 "localhost", 1646922600, &out);
	assert_non_null(strstr(out.data, "From: alice@localhost\n"));
	assert_non_null(strstr(out.data, "To: bob@localhost\n"));
	assert_non_null(strstr(out.data, "Subject: =?UTF-8?B?R3LDvMOfZQ==?=\n"));
	assert_non_null(strstr(out.data, "\nDate: "));
	assert_non_null(strstr(out.data, "\nMessage-ID: <1646922600."));
	assert_non_null(strstr(out.data, "@localhost>\n"));
	assert_non_null(strstr(out.data, "Content-Type: text/plain; charset=UTF-8\n"));
	const char *sep = strstr(out.data, "\n\n");
	assert_non_null(sep);
	assert_string_equal(sep + 2, "hi\n");
	buf_free(&out);
}

/* Every line of s (LF ends) is at most max octets. */
static void
assert_lines_at_most(const char *s, size_t max)
{
	while (*s != '\0') {
		size_t len = strcspn(s, "\n");
		assert_true(len <= max);
		s += len;
		if (*s == '\n')
			s++;
	}
}

static void
test_long_or_non_ascii_body_goes_quoted_printable(void **state)
{
	struct buf body = BUF_INIT, out = BUF_INIT, dec = BUF_INIT;

	/* A typed line of 3,000 octets, a UTF-8 one, trailing blanks, a
	   '=' and lines that begin with dots. */
	for (int i = 0; i < 300; i++)
		buf_append_str(&body, "0123456.9=");
	buf_append_str(&body, "\nGr\xc3\xbc\xc3\x9f" "e \n.\n..two\nend\t\n\n");
	assert_true(mc_body_needs_encoding(body.data));
	mc_build_message("alice@localhost", "bob@localhost", "long", body.data, "localhost",
			 1646922600, &out);
	assert_non_null(strstr(out.data, "\nMIME-Version: 1.0\n"));
	assert_non_null(strstr(out.data, "\nContent-Type: text/plain; charset=UTF-8\n"));
	assert_non_null(strstr(out.data, "\nContent-Transfer-Encoding: quoted-printable\n"));
	const char *text = strstr(out.data, "\n\n") + 2;
	assert_lines_at_most(out.data, 76);
	/* No line of the result is a lone "." and none ends in a blank. */
	assert_null(strstr(text, "\n.\n"));
	assert_null(strstr(text, " \n"));
	assert_null(strstr(text, "\t\n"));
	mime_decode(MIME_ENC_QP, text, strlen(text), &dec);
	assert_int_equal(dec.len, body.len);
	assert_memory_equal(dec.data, body.data, body.len);

	/* Short ASCII lines stay as typed. */
	assert_false(mc_body_needs_encoding("short\nlines\n"));
	char line[MC_MAX_LINE + 2];
	memset(line, 'x', MC_MAX_LINE);
	line[MC_MAX_LINE] = '\0';
	assert_false(mc_body_needs_encoding(line));
	line[MC_MAX_LINE] = 'x';
	line[MC_MAX_LINE + 1] = '\0';
	assert_true(mc_body_needs_encoding(line));
	buf_free(&body);
	buf_free(&out);
	buf_free(&dec);
}

static void
test_qp_lines_use_76_columns_exactly(void **state)
{
	struct buf out = BUF_INIT;
	char in[200];

	memset(in, 'a', 76);
	in[76] = '\0';
	/* 76 octets fit one line as they are. */
	mc_qp_encode(in, 76, &out);
	assert_string_equal(out.data, in);
	buf_free(&out);
	/* 77: 75 and a soft break, then 2. */
	memset(in, 'a', 77);
	mc_qp_encode(in, 77, &out);
	assert_int_equal(out.len, 77 + 2);
	assert_memory_equal(out.data + 75, "=\naa", 4);
	buf_free(&out);
	/* An escape is never split by a soft break. */
	memset(in, 'a', 74);
	in[74] = (char)0xc3;
	in[75] = (char)0xbc;
	mc_qp_encode(in, 76, &out);
	assert_string_equal(out.data + 74, "=\n=C3=BC");
	buf_free(&out);
}

static void
test_long_headers_are_folded_or_encoded(void **state)
{
	struct buf to = BUF_INIT, subject = BUF_INIT, out = BUF_INIT, dec = BUF_INIT;

	for (int i = 0; i < 40; i++)
		buf_printf(&to, "%suser%02d@example.org", i == 0 ? "" : ",", i);
	for (int i = 0; i < 150; i++)
		buf_append_str(&subject, "subject ");
	mc_build_message("alice@localhost", to.data, subject.data, "hi\n", "localhost",
			 1646922600, &out);
	const char *sep = strstr(out.data, "\n\n");
	assert_non_null(sep);
	size_t hdr_len = (size_t)(sep - out.data) + 1;
	assert_lines_at_most(out.data, 78);
	assert_non_null(strstr(out.data, "To: user00@example.org, user01@example.org,"));
	assert_non_null(strstr(out.data, ",\n user"));
	assert_int_equal(message_header_get(out.data, hdr_len, "Subject", &dec), 1);
	struct buf text = BUF_INIT;
	message_decode_header(dec.data, dec.len, &text);
	assert_string_equal(text.data, subject.data);
	assert_string_equal(sep + 2, "hi\n");
	buf_free(&to);
	buf_free(&subject);
	buf_free(&out);
	buf_free(&dec);
	buf_free(&text);
}

/* Feeds keys to e; returns the lines completed (LF-ended) and what was
   echoed, the whole input used. */
static void
edit_all(struct mc_edit *e, const char *keys, struct buf *lines, struct buf *echo, bool *eof_r)
{
	size_t len = strlen(keys), pos = 0;

	*eof_r = false;
	while (pos < len && !*eof_r)
		pos += mc_edit_feed(e, keys + pos, len - pos, lines, echo, eof_r);
}

static void
test_line_editor_keys(void **state)
{
	struct mc_edit e;
	struct buf lines = BUF_INIT, echo = BUF_INIT;
	bool eof;

	mc_edit_init(&e, 0, 0, 0, 0, 0);
	/* Backspace (DEL or ^H) rubs out one character, a UTF-8 one whole. */
	edit_all(&e, "ab\x7f" "c Gr\xc3\xbc\x08\xc3\xbc\n", &lines, &echo, &eof);
	assert_string_equal(lines.data, "ac Gr\xc3\xbc\n");
	assert_string_equal(echo.data, "ab\b \bc Gr\xc3\xbc\b \b\xc3\xbc\n");
	assert_false(eof);
	buf_free(&lines);
	buf_free(&echo);
	/* ^U kills the line, ^W a word; arrow keys and other escape
	   sequences are ignored, a tab is a space. */
	edit_all(&e, "junk\x15one two\x17three\x1b[A\x1b[1;5C\x1bOB\tx\r", &lines, &echo, &eof);
	assert_string_equal(lines.data, "one three x\n");
	assert_int_equal(mc_edit_width(&e), 0);
	buf_free(&lines);
	buf_free(&echo);
	/* One line at a time: the keys after it wait. */
	size_t used = mc_edit_feed(&e, "first\nsecond", 12, &lines, &echo, &eof);
	assert_int_equal(used, 6);
	assert_string_equal(lines.data, "first\n");
	used = mc_edit_feed(&e, "second", 6, &lines, &echo, &eof);
	assert_int_equal(used, 6);
	assert_int_equal(mc_edit_width(&e), 6);
	buf_reset(&echo);
	mc_edit_draw(&e, &echo);
	assert_string_equal(echo.data, "second");
	/* ^D ends the input only on an empty line. */
	edit_all(&e, "\x04", &lines, &echo, &eof);
	assert_false(eof);
	edit_all(&e, "\x15\x04", &lines, &echo, &eof);
	assert_true(eof);
	buf_free(&lines);
	buf_free(&echo);
	/* A secret line echoes its line end only. */
	e.secret = true;
	edit_all(&e, "pw\x7fss\n", &lines, &echo, &eof);
	assert_string_equal(lines.data, "pss\n");
	assert_string_equal(echo.data, "\n");
	buf_free(&lines);
	buf_free(&echo);
	mc_edit_free(&e);
	/* The terminal's own erase character; a full line ends itself. */
	mc_edit_init(&e, '#', 0, 0, 0, 4);
	edit_all(&e, "ab#cdef", &lines, &echo, &eof);
	assert_string_equal(lines.data, "acde\n");
	buf_free(&lines);
	buf_free(&echo);
	mc_edit_free(&e);
}

static void
test_time_formats_in_local_zone(void **state)
{
	char out[80];

	setenv("TZ", "Asia/Kolkata", 1);
	tzset();
	mc_format_time(1646922600, MC_TIME_LIST, out, sizeof(out));     /* 14:30 UTC */
	assert_string_equal(out, "2022-03-10 : 20 : 00");
	setenv("TZ", "UTC", 1);
	tzset();
	mc_format_time(1646922600, MC_TIME_LONG, out, sizeof(out));
	assert_string_equal(out, "Thu, 10 Mar 2022 14:30 UTC");
}

static void
test_trim_and_safe_output(void **state)
{
	char s[] = " \t hello world \r\n";
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_string_equal(mc_trim(s), "hello world");
	mc_write_safe(f, "a\x1b[2Jb\r\nc\td\x7f", 12);
	fclose(f);
	assert_string_equal(buf, "a?[2Jb\nc\td?");
	free(buf);
}


/* ------------------------------------------------------------ SMTP EHLO */

static void
test_ehlo_lines_and_extensions(void **state)
{
	const char *r = "250-mail.example.org greets you\r\n250-PIPELINING\r\n"
			"250-AUTH PLAIN LOGIN\r\n250-STARTTLS\r\n250 8BITMIME\r\n";
	struct strlist lines;
	unsigned code;
	size_t size;

	i_zero(&lines);
	assert_int_equal(smtpc_reply_parse(r, strlen(r), &code, &size), 1);
	assert_int_equal(size, strlen(r));
	smtpc_reply_lines(r, size, &lines);
	assert_int_equal(lines.count, 5);
	assert_string_equal(lines.items[0], "mail.example.org greets you");
	assert_string_equal(lines.items[2], "AUTH PLAIN LOGIN");
	assert_string_equal(lines.items[4], "8BITMIME");

	assert_true(smtpc_ehlo_has(&lines, "STARTTLS", NULL));
	assert_true(smtpc_ehlo_has(&lines, "starttls", NULL));
	assert_true(smtpc_ehlo_has(&lines, "AUTH", NULL));
	assert_true(smtpc_ehlo_has(&lines, "AUTH", "PLAIN"));
	assert_true(smtpc_ehlo_has(&lines, "AUTH", "login"));
	assert_false(smtpc_ehlo_has(&lines, "AUTH", "CRAM-MD5"));
	assert_false(smtpc_ehlo_has(&lines, "AUTH", "PLAI"));
	assert_false(smtpc_ehlo_has(&lines, "START", NULL));
	assert_false(smtpc_ehlo_has(&lines, "SIZE", NULL));
	strlist_clear(&lines);

	/* A bare code line and a one-line reply. */
	smtpc_reply_lines("250\r\n", 5, &lines);
	assert_int_equal(lines.count, 1);
	assert_string_equal(lines.items[0], "");
	strlist_clear(&lines);
	smtpc_reply_lines("250 ok\n", 7, &lines);
	assert_string_equal(lines.items[0], "ok");
	strlist_clear(&lines);
}

/* ------------------------------------------------------------ command line */

static int
parse_args(struct mc_options *o, char **error_r, ...)
{
	char *argv[16];
	int argc = 0;
	va_list args;

	argv[argc++] = (char *)"mailclient";
	va_start(args, error_r);
	for (char *a = va_arg(args, char *); a != NULL && argc < 15; a = va_arg(args, char *))
		argv[argc++] = a;
	va_end(args);
	argv[argc] = NULL;
	*error_r = NULL;
	return mc_options_parse(argc, argv, o, error_r);
}

/* ret and *error_r come from one parse_args() call; error_r is read
   only here, after the call (argument order is unspecified). */
static void
assert_usage_error(int ret, char **error_r, const char *want)
{
	assert_int_equal(ret, -1);
	assert_non_null(*error_r);
	assert_non_null(strstr(*error_r, want));
	free(*error_r);
	*error_r = NULL;
}

static void
test_options_keep_the_lab_command_line(void **state)
{
	struct mc_options o;
	char *err;

	assert_int_equal(parse_args(&o, &err, "10.0.0.5", "25", "143", NULL), 0);
	assert_string_equal(o.host, "10.0.0.5");
	assert_string_equal(o.smtp_port, "25");
	assert_string_equal(o.imap_port, "143");
	assert_int_equal(o.imap_mode, CLIENT_TLS_AUTO);
	assert_int_equal(o.smtp_mode, CLIENT_TLS_AUTO);
	assert_null(o.ca_file);
	assert_false(o.insecure);
	assert_false(o.allow_plaintext);

	assert_int_equal(parse_args(&o, &err, "--help", NULL), 1);
	assert_int_equal(parse_args(&o, &err, "h", "25", "143", "-h", NULL), 1);
	assert_usage_error(parse_args(&o, &err, NULL), &err, "are needed");
	assert_usage_error(parse_args(&o, &err, "h", "25", NULL), &err, "are needed");
	assert_usage_error(parse_args(&o, &err, "h", "25", "143", "x", NULL), &err,
			   "too many arguments: x");
	assert_usage_error(parse_args(&o, &err, "h", "x", "143", NULL), &err, "\"x\" is not a port");
	assert_usage_error(parse_args(&o, &err, "h", "25", "70000", NULL), &err, "\"70000\"");
	assert_usage_error(parse_args(&o, &err, "h", "0", "143", NULL), &err, "\"0\"");
	assert_usage_error(parse_args(&o, &err, "--tlss", "h", "25", "143", NULL), &err,
			   "unknown option --tlss");
	assert_usage_error(parse_args(&o, &err, "-t", "h", "25", "143", NULL), &err,
			   "unknown option -t");
}

static void
test_options_choose_tls_per_port(void **state)
{
	struct mc_options o;
	char *err;

	/* Options before or after the arguments, values both ways. */
	assert_int_equal(parse_args(&o, &err, "h", "465", "993", "--tls", "--ca-file", "ca.pem",
				    NULL), 0);
	assert_int_equal(o.imap_mode, CLIENT_TLS_IMPLICIT);
	assert_int_equal(o.smtp_mode, CLIENT_TLS_IMPLICIT);
	assert_string_equal(o.ca_file, "ca.pem");
	assert_string_equal(o.imap_port, "993");

	assert_int_equal(parse_args(&o, &err, "--imap-tls", "--starttls", "--ca-file=c.pem", "h",
				    "587", "993", NULL), 0);
	assert_int_equal(o.imap_mode, CLIENT_TLS_IMPLICIT);
	assert_int_equal(o.smtp_mode, CLIENT_TLS_STARTTLS);
	assert_string_equal(o.ca_file, "c.pem");

	assert_int_equal(parse_args(&o, &err, "--smtp-tls", "h", "465", "143", NULL), 0);
	assert_int_equal(o.imap_mode, CLIENT_TLS_AUTO);
	assert_int_equal(o.smtp_mode, CLIENT_TLS_IMPLICIT);

	assert_int_equal(parse_args(&o, &err, "--starttls", "--insecure", "--allow-plaintext",
				    "h", "25", "143", NULL), 0);
	assert_int_equal(o.imap_mode, CLIENT_TLS_STARTTLS);
	assert_int_equal(o.smtp_mode, CLIENT_TLS_STARTTLS);
	assert_true(o.insecure);
	assert_true(o.allow_plaintext);

	/* "--" ends the options: a host may then start with a dash. */
	assert_int_equal(parse_args(&o, &err, "--", "-h", "25", "143", NULL), 0);
	assert_string_equal(o.host, "-h");

	assert_usage_error(parse_args(&o, &err, "h", "25", "143", "--ca-file", NULL), &err,
			   "--ca-file needs a FILE");
	assert_usage_error(parse_args(&o, &err, "--ca-file=", "h", "25", "143", NULL), &err,
			   "--ca-file needs a FILE");
	assert_usage_error(parse_args(&o, &err, "--tls=yes", "h", "25", "143", NULL), &err,
			   "--tls=yes takes no value");
	assert_usage_error(parse_args(&o, &err, "--insecure", "--ca-file", "c", "h", "25", "143",
				      NULL), &err, "--insecure");
	assert_usage_error(parse_args(&o, &err, "--tls", "--starttls", "h", "25", "143", NULL),
			   &err, "choose one");
}

/* ------------------------------------------------------------ TLS policy */

/* The certificate is not checked only for a STARTTLS taken because a
   server on this machine offers it (make run's self-signed certificate). */
static void
test_starttls_context_skips_the_check_only_on_loopback(void **state)
{
	struct tls_ctx *checked = (struct tls_ctx *)&checked, *unchecked_ctx =
		(struct tls_ctx *)&unchecked_ctx;
	struct client_tls set = { .mode = CLIENT_TLS_AUTO, .ctx = checked,
				  .loopback_ctx = unchecked_ctx };
	bool unchecked;

	assert_ptr_equal(client_tls_starttls_ctx(&set, true, &unchecked), unchecked_ctx);
	assert_true(unchecked);
	assert_ptr_equal(client_tls_starttls_ctx(&set, false, &unchecked), checked);
	assert_false(unchecked);
	/* Asked for: checked even on loopback. */
	set.mode = CLIENT_TLS_STARTTLS;
	assert_ptr_equal(client_tls_starttls_ctx(&set, true, &unchecked), checked);
	assert_false(unchecked);
	/* --ca-file or --insecure: no loopback context was made. */
	set.mode = CLIENT_TLS_AUTO;
	set.loopback_ctx = NULL;
	assert_ptr_equal(client_tls_starttls_ctx(&set, true, &unchecked), checked);
	assert_false(unchecked);
	set.insecure = true;
	assert_ptr_equal(client_tls_starttls_ctx(&set, false, &unchecked), checked);
	assert_true(unchecked);
}

static void
test_starttls_is_used_when_offered_and_required_when_asked(void **state)
{
	struct tls_ctx *ctx = (struct tls_ctx *)&ctx;     /* only compared with NULL */
	struct client_tls set = { .mode = CLIENT_TLS_AUTO, .ctx = ctx };

	assert_int_equal(client_tls_next_step(&set, true), CLIENT_TLS_STEP_STARTTLS);
	assert_int_equal(client_tls_next_step(&set, false), CLIENT_TLS_STEP_PLAIN);
	set.mode = CLIENT_TLS_STARTTLS;
	assert_int_equal(client_tls_next_step(&set, true), CLIENT_TLS_STEP_STARTTLS);
	assert_int_equal(client_tls_next_step(&set, false), CLIENT_TLS_STEP_REFUSE);
	/* Inside implicit TLS a STARTTLS offer is never taken. */
	set.mode = CLIENT_TLS_IMPLICIT;
	assert_int_equal(client_tls_next_step(&set, true), CLIENT_TLS_STEP_PLAIN);
	/* Without a TLS context (not compiled in): plain, unless required. */
	set.ctx = NULL;
	set.mode = CLIENT_TLS_AUTO;
	assert_int_equal(client_tls_next_step(&set, true), CLIENT_TLS_STEP_PLAIN);
	set.mode = CLIENT_TLS_STARTTLS;
	assert_int_equal(client_tls_next_step(&set, true), CLIENT_TLS_STEP_REFUSE);
}

static void
test_password_goes_in_clear_only_to_loopback_or_when_allowed(void **state)
{
	struct client_tls set = { .mode = CLIENT_TLS_AUTO };
	char *err = NULL;

	/* tls, loopback */
	assert_int_equal(client_tls_password_check(&set, true, false, "the IMAP server x", &err), 0);
	assert_int_equal(client_tls_password_check(&set, true, true, "the IMAP server x", &err), 0);
	assert_int_equal(client_tls_password_check(&set, false, true, "the IMAP server x", &err), 0);
	assert_null(err);
	assert_int_equal(client_tls_password_check(&set, false, false, "the IMAP server 192.0.2.7",
						    &err), -1);
	assert_non_null(strstr(err, "the IMAP server 192.0.2.7 offers no TLS"));
	assert_non_null(strstr(err, "is not sent"));
	assert_non_null(strstr(err, "--allow-plaintext"));
	assert_non_null(strstr(err, "--tls"));
	free(err);
	err = NULL;
	set.allow_plaintext = true;
	assert_int_equal(client_tls_password_check(&set, false, false, "x", &err), 0);
	assert_null(err);
}

static void
test_loopback_addresses(void **state)
{
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;

	i_zero(&in4);
	in4.sin_family = AF_INET;
	const char *v4[] = { "127.0.0.1", "127.0.0.2", "127.255.255.254" };
	for (size_t i = 0; i < N_ELEMENTS(v4); i++) {
		assert_int_equal(inet_pton(AF_INET, v4[i], &in4.sin_addr), 1);
		assert_true(netio_addr_is_loopback((struct sockaddr *)&in4, sizeof(in4)));
	}
	const char *not4[] = { "192.0.2.2", "10.0.0.1", "128.0.0.1", "0.0.0.0" };
	for (size_t i = 0; i < N_ELEMENTS(not4); i++) {
		assert_int_equal(inet_pton(AF_INET, not4[i], &in4.sin_addr), 1);
		assert_false(netio_addr_is_loopback((struct sockaddr *)&in4, sizeof(in4)));
	}
	i_zero(&in6);
	in6.sin6_family = AF_INET6;
	const char *v6[] = { "::1", "::ffff:127.0.0.1" };
	for (size_t i = 0; i < N_ELEMENTS(v6); i++) {
		assert_int_equal(inet_pton(AF_INET6, v6[i], &in6.sin6_addr), 1);
		assert_true(netio_addr_is_loopback((struct sockaddr *)&in6, sizeof(in6)));
	}
	const char *not6[] = { "fd00::2", "fe80::1", "::ffff:192.0.2.2", "::" };
	for (size_t i = 0; i < N_ELEMENTS(not6); i++) {
		assert_int_equal(inet_pton(AF_INET6, not6[i], &in6.sin6_addr), 1);
		assert_false(netio_addr_is_loopback((struct sockaddr *)&in6, sizeof(in6)));
	}
	/* A short address is not trusted. */
	assert_false(netio_addr_is_loopback((struct sockaddr *)&in4, 4));
}

static void
test_failed_handshake_says_what_to_do(void **state)
{
	struct client_tls set = { .mode = CLIENT_TLS_AUTO };
	char *msg;

	msg = client_tls_handshake_error(&set, "TLS handshake failed: certificate verify failed: "
					       "self-signed certificate");
	assert_non_null(strstr(msg, "certificate verify failed: self-signed certificate"));
	assert_non_null(strstr(msg, "the system's CAs"));
	assert_non_null(strstr(msg, "--ca-file FILE"));
	free(msg);
	set.ca_file = "wrong-ca.pem";
	msg = client_tls_handshake_error(&set, "TLS handshake failed: certificate verify failed: "
					       "unable to get local issuer certificate");
	assert_non_null(strstr(msg, "against wrong-ca.pem"));
	free(msg);
	msg = client_tls_handshake_error(&set, "TLS handshake failed: wrong version number");
	assert_non_null(strstr(msg, "does not speak TLS on that port"));
	free(msg);
	msg = client_tls_handshake_error(&set, "TLS handshake failed: no answer within 5 s");
	assert_string_equal(msg, "TLS handshake failed: no answer within 5 s");
	free(msg);
}

/* The listing's columns line up with names in any script: a CJK or
   Hangul character takes two columns, a combining accent none. */
static void
test_display_width_of_wide_and_combining(void **state)
{
	(void)state;
	assert_int_equal(mc_display_width(""), 0);
	assert_int_equal(mc_display_width("bob@x"), 5);
	assert_int_equal(mc_display_width("J\xc3\xbcrgen"), 6);            /* Jürgen */
	assert_int_equal(mc_display_width("Ju\xcc\x88rgen"), 6);           /* u + U+0308 */
	assert_int_equal(mc_display_width("\xe7\x8e\x8b\xe5\xb0\x8f\xe6\x98\x8e"), 6); /* 王小明 */
	assert_int_equal(mc_display_width("\xea\xb9\x80 kim"), 6);        /* 김 kim */
	assert_int_equal(mc_display_width("\xef\xbc\xa1"), 2);            /* fullwidth A */
	assert_int_equal(mc_display_width("\xf0\x9f\x98\x80!"), 3);       /* U+1F600 ! */
	/* Broken UTF-8 still counts, one column per octet. */
	assert_int_equal(mc_display_width("a\xe7\x8e" "b"), 4);
	assert_int_equal(mc_display_width("\x80\x80"), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_response_size_needs_the_whole_line),
		cmocka_unit_test(test_response_size_waits_for_literals_byte_by_byte),
		cmocka_unit_test(test_response_size_refuses_huge_literals),
		cmocka_unit_test(test_parse_fetch_with_envelope_and_literal),
		cmocka_unit_test(test_parse_status_responses_keep_the_text),
		cmocka_unit_test(test_parse_bracketed_atoms_hold_spaces),
		cmocka_unit_test(test_parse_rejects_malformed_responses),
		cmocka_unit_test(test_parse_limits_nesting_depth),
		cmocka_unit_test(test_cmd_strings_are_quoted_or_literal),
		cmocka_unit_test(test_dot_stuffing_and_crlf),
		cmocka_unit_test(test_smtp_reply_parse),
		cmocka_unit_test(test_ehlo_lines_and_extensions),
		cmocka_unit_test(test_address_forms),
		cmocka_unit_test(test_address_belongs_to_user),
		cmocka_unit_test(test_lab_header_lines),
		cmocka_unit_test(test_built_message_has_date_id_and_encoded_subject),
		cmocka_unit_test(test_long_or_non_ascii_body_goes_quoted_printable),
		cmocka_unit_test(test_qp_lines_use_76_columns_exactly),
		cmocka_unit_test(test_long_headers_are_folded_or_encoded),
		cmocka_unit_test(test_line_editor_keys),
		cmocka_unit_test(test_time_formats_in_local_zone),
		cmocka_unit_test(test_trim_and_safe_output),
		cmocka_unit_test(test_display_width_of_wide_and_combining),
		cmocka_unit_test(test_options_keep_the_lab_command_line),
		cmocka_unit_test(test_options_choose_tls_per_port),
		cmocka_unit_test(test_starttls_is_used_when_offered_and_required_when_asked),
		cmocka_unit_test(test_password_goes_in_clear_only_to_loopback_or_when_allowed),
		cmocka_unit_test(test_loopback_addresses),
		cmocka_unit_test(test_starttls_context_skips_the_check_only_on_loopback),
		cmocka_unit_test(test_failed_handshake_says_what_to_do),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
