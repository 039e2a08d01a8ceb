/* test_search_addresses.c: SEARCH FROM/TO/CC/BCC and HEADER on address
   fields (core/imap/search.c with core/mail/address.c), on the messages
   and the answers of Dovecot's ImapTest src/tests/search-addresses, and
   the normalized address form they are matched against. The programs go
   through the real command parser (core/imap/imap_parser.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "address.h"
#include "buf.h"
#include "imap_parser.h"
#include "search.h"

static const char *const texts[] = {
	"From: user-from@domain.org\r\n"
	"To: user-to@domain.org\r\n"
	"Cc: user-cc@domain.org\r\n"
	"Bcc: user-bcc@domain.org\r\n"
	"\r\nbody\r\n",

	"From: RealFrom <user-from@domain.org>\r\n"
	"To: RealTo <user-to@domain.org>\r\n"
	"Cc: RealCc <user-cc@domain.org>\r\n"
	"Bcc: RealBcc <user-bcc@domain.org>\r\n"
	"\r\nbody2\r\n",

	"From: <user-from (comment)@ (comment) domain.org>\r\n"
	"To: <user-to@domain.org>\r\n"
	"Cc: <user-cc@domain.org>\r\n"
	"Bcc: <user-bcc@domain.org>\r\n"
	"\r\nbody3\r\n",

	"From: user-from@domain.org (RealFrom)\r\n"
	"To: user-to@domain.org (RealTo)\r\n"
	"Cc: user-cc@domain.org (RealCc)\r\n"
	"Bcc: user-bcc@domain.org (RealBcc)\r\n"
	"\r\nbody4\r\n",

	"From: user-from1@domain.org, user-from2@domain.org\r\n"
	"Cc: user-cc@domain.org\r\n"
	"\r\nbody5\r\n",

	"From: RealFrom <user-from@domain.org>\r\n"
	"To: groupname: groupuser1@domain.org, groupuser2@domain.org;,\r\n"
	"  groupname2: groupuser3@domain.org;\r\n"
	"\r\nbody6\r\n",

	"From: RealFrom <user-from@domain.org>\r\n"
	"To: groupname:;\r\n"
	"\r\nbody7\r\n",
};

static int
load_text(void *ctx, const char **data_r, size_t *len_r)
{
	*data_r = ctx;
	*len_r = strlen(ctx);
	return 0;
}

/* The sequence numbers that program matches, "1 2 3", or "ERR". */
static char *
run(const char *program)
{
	struct imap_parser *parser = imap_parser_new(1000, 1000);
	struct buf line = BUF_INIT, out = BUF_INIT;
	const struct imap_command *cmd;
	struct search_key *key = NULL;
	struct mbox_state state;
	const char *error;
	size_t consumed;
	bool badcharset;

	memset(&state, 0, sizeof(state));
	buf_printf(&line, "a SEARCH %s\r\n", program);
	assert_int_equal(imap_parser_feed(parser, line.data, line.len, &consumed),
			 IMAP_PARSE_COMMAND);
	cmd = imap_parser_command(parser);
	buf_append(&out, "", 0);
	if (search_parse(cmd->args, cmd->arg_count, &state, N_ELEMENTS(texts), 100, &key,
			 &error, &badcharset) < 0) {
		buf_append_str(&out, "ERR");
	} else {
		for (size_t i = 0; i < N_ELEMENTS(texts); i++) {
			struct mail_rec rec = { .uid = (uint32_t)i + 1 };
			struct search_msg sm = {
				.seq = (uint32_t)i + 1, .uid = (uint32_t)i + 1, .rec = &rec,
				.load = load_text, .load_ctx = (void *)texts[i],
			};

			if (search_match(key, &sm) == 1)
				buf_printf(&out, "%s%zu", out.len > 0 ? " " : "", i + 1);
		}
		search_key_free(&key);
	}
	imap_parser_free(&parser);
	buf_free(&line);
	return buf_steal(&out);
}

static void
check(const char *program, const char *expected)
{
	char *got = run(program);

	if (strcmp(got, expected) != 0)
		fail_msg("SEARCH %s: got \"%s\", expected \"%s\"", program, got, expected);
	free(got);
}

/* ImapTest's search-addresses, every command and answer in its order. */
static void
test_imaptest_search_addresses(void **state)
{
	(void)state;
	/* full address searching */
	check("from user-from@domain.org", "1 2 3 4 6 7");
	check("to user-to@domain.org", "1 2 3 4");
	check("cc user-cc@domain.org", "1 2 3 4 5");
	check("bcc user-bcc@domain.org", "1 2 3 4");
	/* realname searching */
	check("from realfrom", "2 4 6 7");
	check("to realto", "2 4");
	check("cc realcc", "2 4");
	check("bcc realbcc", "2 4");
	/* existence searches */
	check("header from \"\"", "1 2 3 4 5 6 7");
	check("header to \"\"", "1 2 3 4 6 7");
	check("header cc \"\"", "1 2 3 4 5");
	check("header bcc \"\"", "1 2 3 4");
	/* substring address searches */
	check("from ser-fro", "1 2 3 4 5 6 7");
	check("to ser-t", "1 2 3 4");
	check("cc ser-c", "1 2 3 4 5");
	check("bcc ser-bc", "1 2 3 4");
	/* substring realname searches */
	check("from ealfro", "2 4 6 7");
	check("to ealt", "2 4");
	check("cc ealc", "2 4");
	check("bcc ealbc", "2 4");
	/* multiple addresses */
	check("from user-from1", "5");
	check("from user-from2", "5");
	/* groups */
	check("to groupname", "6 7");
	check("to groupname2", "6");
	check("to groupuser1", "6");
	check("to groupuser2", "6");
	check("to groupuser3", "6");
	check("to groupuser4", "");
}

/* What the address keys look into: the envelope's addresses, so a
   comment is gone but a bare addr-spec's comment is its name. */
static void
test_address_keys_match_the_envelope_form(void **state)
{
	(void)state;
	check("from comment", "");
	check("from \"RealFrom <user-from@domain.org>\"", "2 4 6 7");
	check("from \"user-from@domain.org, user\"", "");
	check("from \"user-from1@domain.org, user-from2@\"", "5");
	check("to \"groupname: groupuser1@domain.org, groupuser2@domain.org;\"", "6");
	check("to \"groupname: ;\"", "7");
	check("or to realto from user-from1", "2 4 5");
	check("not from realfrom", "1 3 5");
}

static void
test_address_list_write(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "a@b", "a@b" },
		{ "  A  B  <a@b>", "A B <a@b>" },
		{ "\"A, B\" <a@b>, c@d", "A, B <a@b>, c@d" },
		{ "<a (x) @ (y) b>", "a@b" },
		{ "a@b (Real (Name))", "Real (Name) <a@b>" },
		{ "<@r1,@r2:a@b>", "<@r1,@r2:a@b>" },
		{ "g: a@b, c@d;, e@f", "g: a@b, c@d;, e@f" },
		{ "g:;", "g: ;" },
		{ "bob", "bob" },
		{ "=?utf-8?q?J=C3=BCrgen?= <j@x>", "=?utf-8?q?J=C3=BCrgen?= <j@x>" },
		{ "", "" },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf out = BUF_INIT;

		buf_append(&out, "", 0);
		message_address_list_write(cases[i].in, strlen(cases[i].in), &out);
		if (strcmp(out.data, cases[i].out) != 0)
			fail_msg("\"%s\": got \"%s\", expected \"%s\"", cases[i].in, out.data,
				 cases[i].out);
		buf_free(&out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imaptest_search_addresses),
		cmocka_unit_test(test_address_keys_match_the_envelope_form),
		cmocka_unit_test(test_address_list_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
