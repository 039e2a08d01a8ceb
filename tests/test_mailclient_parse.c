/* test_mailclient_parse.c: mailclient's parsing and formatting: IMAP
   responses (framing byte by byte, literals, nesting, junk), SMTP
   replies and dot-stuffing, address checks and the lab's input lines.

   The client's sources are not in libimapcore.a, so they are compiled
   into this test directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "../client/client_tls.c"
#include "../client/imap_client_lib.c"
#include "../client/imap_client_parse.c"
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
		cmocka_unit_test(test_address_forms),
		cmocka_unit_test(test_address_belongs_to_user),
		cmocka_unit_test(test_lab_header_lines),
		cmocka_unit_test(test_built_message_has_date_id_and_encoded_subject),
		cmocka_unit_test(test_time_formats_in_local_zone),
		cmocka_unit_test(test_trim_and_safe_output),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
