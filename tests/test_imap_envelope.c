/* test_imap_envelope.c: the IMAP ENVELOPE (core/imap/imap_envelope.c)
   against the corpus in tests/data (run from the top of the tree). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "corpus.h"

#include "imap_envelope.h"

/* Reads tests/data/name into a malloc'ed buffer of exactly its size (so
   that a sanitizer catches any read past the end). */
static char *
envelope_of(const char *name)
{
	struct buf out = BUF_INIT;
	size_t len;
	char *data = read_data(name, &len);

	imap_envelope(data, len, &out);
	free(data);
	return buf_steal(&out);
}

/* --- ENVELOPE -------------------------------------------------------- */

/* An empty quoted display name or local part (found by fuzzing: the
   address parser must not do pointer arithmetic on an empty buffer). */
static void
test_envelope_empty_quoted_strings(void **state)
{
	static const char msg[] = "From: \"\" <a@b>\r\nTo: \"\"@x, \"\" \"\" <c@d>\r\n\r\nbody\r\n";
	struct buf out = BUF_INIT;

	imap_envelope(msg, sizeof(msg) - 1, &out);
	assert_non_null(strstr(out.data, "\"a\" \"b\""));
	assert_non_null(strstr(out.data, "\"c\" \"d\""));
	buf_free(&out);
}

static void
test_envelope_plain_message(void **state)
{
	char *env = envelope_of("plain.eml");

	(void)state;
	assert_string_equal(env,
		"(\"Tue, 15 Feb 2022 10:29:58 +0530\" \"Lab meeting tomorrow\" "
		"((\"Alice Example\" NIL \"alice\" \"example.com\")) "
		"((\"Alice Example\" NIL \"alice\" \"example.com\")) "
		"((\"Alice Example\" NIL \"alice\" \"example.com\")) "
		"((\"Bob\" NIL \"bob\" \"example.org\")) "
		"((NIL NIL \"carol\" \"example.net\")) NIL "
		"\"<prev.99@example.org>\" \"<20220215.1@example.com>\")");
	free(env);
}

static void
test_envelope_group_syntax(void **state)
{
	char *env = envelope_of("group.eml");

	(void)state;
	assert_string_equal(env,
		"(\"1 Mar 2022 08:00 GMT\" \"group syntax\" "
		"((NIL NIL \"news\" \"example.com\")) "
		"((NIL NIL \"news\" \"example.com\")) "
		"((NIL NIL \"news\" \"example.com\")) "
		"((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
		"((NIL NIL \"Friends\" NIL)(NIL NIL \"anna\" \"example.com\")"
		"(\"Ben B.\" NIL \"ben\" \"example.com\")(NIL NIL NIL NIL)"
		"(NIL NIL \"dave\" \"example.com\")) "
		"NIL NIL NIL)");
	free(env);
}

/* Dovecot's ImapTest, src/tests/fetch-envelope: the headers of its six
   messages and the envelopes it expects (the Date and Subject aside). */
static void
test_envelope_imaptest_fetch_envelope(void **state)
{
	static const struct {
		const char *hdr;
		const char *addrs; /* from sender reply-to to cc bcc */
	} cases[] = {
		{ "From: From Real <fromuser@fromdomain.org>\r\n"
		  "To: To Real <touser@todomain.org>\r\n"
		  "Cc: Cc Real <ccuser@ccdomain.org>\r\n"
		  "Bcc: Bcc Real <bccuser@bccdomain.org>\r\n"
		  "Sender: Sender Real <senderuser@senderdomain.org>\r\n"
		  "Reply-To: ReplyTo Real <replytouser@replytodomain.org>\r\n",
		  "((\"From Real\" NIL \"fromuser\" \"fromdomain.org\")) "
		  "((\"Sender Real\" NIL \"senderuser\" \"senderdomain.org\")) "
		  "((\"ReplyTo Real\" NIL \"replytouser\" \"replytodomain.org\")) "
		  "((\"To Real\" NIL \"touser\" \"todomain.org\")) "
		  "((\"Cc Real\" NIL \"ccuser\" \"ccdomain.org\")) "
		  "((\"Bcc Real\" NIL \"bccuser\" \"bccdomain.org\"))" },
		{ "From: user@domain\r\n",
		  "((NIL NIL \"user\" \"domain\")) ((NIL NIL \"user\" \"domain\")) "
		  "((NIL NIL \"user\" \"domain\")) NIL NIL NIL" },
		{ "From: user@domain (Real Name)\r\n"
		  "To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\n"
		  "Cc: group:;, group2: (foo) ;\r\n",
		  "((\"Real Name\" NIL \"user\" \"domain\")) "
		  "((\"Real Name\" NIL \"user\" \"domain\")) "
		  "((\"Real Name\" NIL \"user\" \"domain\")) "
		  "((NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")(NIL NIL \"g2\" \"d2.org\")"
		  "(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")"
		  "(NIL NIL NIL NIL)) "
		  "((NIL NIL \"group\" NIL)(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)"
		  "(NIL NIL NIL NIL)) NIL" },
		{ "From: user@domain (Real Name)\r\nSender: \r\nReply-To: \r\n",
		  "((\"Real Name\" NIL \"user\" \"domain\")) "
		  "((\"Real Name\" NIL \"user\" \"domain\")) "
		  "((\"Real Name\" NIL \"user\" \"domain\")) NIL NIL NIL" },
		{ "From: <@route:user@domain>\r\n",
		  "((NIL \"@route\" \"user\" \"domain\")) ((NIL \"@route\" \"user\" \"domain\")) "
		  "((NIL \"@route\" \"user\" \"domain\")) NIL NIL NIL" },
		/* the last comment of the addr-spec, escapes removed, nested
		   parentheses kept; a comment inside <...> is no name */
		{ "From: a(x)@b (y \\) (z) w), c@d ()\r\nTo: N <e(f)@g>, h (i)\r\n",
		  "((\"y ) (z) w\" NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")) "
		  "((\"y ) (z) w\" NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")) "
		  "((\"y ) (z) w\" NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")) "
		  "((\"N\" NIL \"e\" \"g\")(\"i\" NIL \"h\" \"MISSING_DOMAIN\")) NIL NIL" },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf msg = BUF_INIT, out = BUF_INIT, want = BUF_INIT;

		buf_printf(&msg, "Date: Thu, 15 Feb 2007 01:02:03 +0200\r\n%s\r\nbody\r\n",
			   cases[i].hdr);
		imap_envelope(msg.data, msg.len, &out);
		buf_printf(&want, "(\"Thu, 15 Feb 2007 01:02:03 +0200\" NIL %s NIL NIL)",
			   cases[i].addrs);
		assert_string_equal(out.data, want.data);
		buf_free(&msg);
		buf_free(&out);
		buf_free(&want);
	}
}

static void
test_envelope_quoted_names_comments_routes_and_missing_domain(void **state)
{
	char *env = envelope_of("quoted.eml");

	(void)state;
	assert_string_equal(env,
		"(\"Wed, 02 Mar 2022 23:59:59 -0800 (PST)\" \"quoted names and comments\" "
		"((\"Doe, John\" NIL \"john.doe\" \"example.com\")) "
		/* the comment of a bare addr-spec is its display name */
		"((\"The Secretary\" NIL \"secretary\" \"example.com\")) "
		"((\"Smith \\\"JJ\\\" Bob\" NIL \"bob\" \"example.org\")) "
		"((NIL NIL \"bob\" \"MISSING_DOMAIN\")"
		"(\"Mary Q. Public\" NIL \"mary\" \"[192.0.2.7]\")"
		"(NIL \"@relay.example\" \"route\" \"example.net\")) "
		"NIL ((NIL NIL \"hidden\" \"example.com\")) NIL NIL)");
	free(env);
}

static void
test_envelope_missing_fields_are_nil(void **state)
{
	char *env = envelope_of("missing.eml");

	(void)state;
	assert_string_equal(env, "(NIL \"nothing else here\" NIL NIL NIL NIL NIL NIL NIL NIL)");
	free(env);
	env = envelope_of("noheader.eml");
	assert_string_equal(env, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	free(env);
}

static void
test_envelope_passes_encoded_words_through(void **state)
{
	char *env = envelope_of("encoded.eml");

	(void)state;
	assert_string_equal(env,
		"(\"Thu, 3 Mar 2022 12:00:00 +0100\" "
		"\"=?UTF-8?B?w4lsw6h2ZQ==?= =?UTF-8?Q?_r=C3=A9sum=C3=A9?= plain\" "
		"((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" \"example.be\")) "
		"((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" \"example.be\")) "
		"((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" \"example.be\")) "
		"((\"=?UTF-8?B?SsO2cmc=?=\" NIL \"joerg\" \"example.de\")) NIL NIL NIL NIL)");
	free(env);
}

static void
test_envelope_empty_sender_defaults_to_from_and_8bit_is_literal(void **state)
{
	const char msg[] = "From: J\xc3\xb6rg <j@x>\r\nSender:\r\nReply-To: ,\r\n"
			   "Subject: \xc3\xa9t\xc3\xa9\r\n\r\n";
	struct buf out = BUF_INIT;

	(void)state;
	imap_envelope(msg, sizeof(msg) - 1, &out);
	assert_string_equal(out.data,
		"(NIL {5}\r\n\xc3\xa9t\xc3\xa9 "
		"(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) "
		"(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) "
		"(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) NIL NIL NIL NIL NIL)");
	buf_free(&out);
}

static void
test_envelope_of_broken_message_is_well_formed(void **state)
{
	char *env = envelope_of("broken.eml");

	(void)state;
	/* From: "Unterminated <x@y : the quoted string runs to the end, so
	   the whole rest is a bare local part. Date is kept raw even though
	   it does not parse. */
	assert_non_null(strstr(env, "(\"32 Jan 2022 25:61:00 +9999\" "));
	assert_non_null(strstr(env, "((NIL NIL \"Unterminated <x@y\" \"MISSING_DOMAIN\"))"));
	assert_non_null(strstr(env, "(NIL NIL \"missing-close\" \"example.com\")"));
	assert_int_equal(env[strlen(env) - 1], ')');
	free(env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope_plain_message),
		cmocka_unit_test(test_envelope_empty_quoted_strings),
		cmocka_unit_test(test_envelope_group_syntax),
		cmocka_unit_test(test_envelope_imaptest_fetch_envelope),
		cmocka_unit_test(test_envelope_quoted_names_comments_routes_and_missing_domain),
		cmocka_unit_test(test_envelope_missing_fields_are_nil),
		cmocka_unit_test(test_envelope_passes_encoded_words_through),
		cmocka_unit_test(test_envelope_empty_sender_defaults_to_from_and_8bit_is_literal),
		cmocka_unit_test(test_envelope_of_broken_message_is_well_formed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
