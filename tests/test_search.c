/* test_search.c: SEARCH programs (core/imap/search.c) against a small set of
   in-memory messages. Argument trees are built here by hand (a tiny
   tokenizer), so these tests do not depend on the command parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "search.h"
#include "buf.h"

/* --- argument trees -------------------------------------------------- */

struct arglist {
	struct imap_arg *args;
	size_t count;
};

static void
args_free(struct imap_arg *args, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(args[i].str);
		args_free(args[i].list, args[i].list_count);
	}
	free(args);
}

/* Tokenizes s: "(" ")" make lists, "..." a STRING (no escapes), anything
   else up to a space or parenthesis an ATOM. Nesting depth is bounded by
   the length of the (test) input. */
static struct arglist
tokenize(const char **sp, bool in_list)
{
	struct arglist l = { NULL, 0 };
	const char *s = *sp;

	for (;;) {
		struct imap_arg arg;

		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		if (*s == ')') {
			assert_true(in_list);
			s++;
			break;
		}
		memset(&arg, 0, sizeof(arg));
		if (*s == '(') {
			struct arglist sub;

			s++;
			sub = tokenize(&s, true);
			arg.type = IMAP_ARG_LIST;
			arg.list = sub.args;
			arg.list_count = sub.count;
		} else if (*s == '"') {
			const char *end = strchr(s + 1, '"');

			assert_non_null(end);
			arg.type = IMAP_ARG_STRING;
			arg.str = xstrndup(s + 1, (size_t)(end - s - 1));
			arg.len = (size_t)(end - s - 1);
			s = end + 1;
		} else {
			const char *start = s;

			while (*s != '\0' && *s != ' ' && *s != '(' && *s != ')')
				s++;
			arg.type = IMAP_ARG_ATOM;
			arg.str = xstrndup(start, (size_t)(s - start));
			arg.len = (size_t)(s - start);
			if (ascii_strcasecmp(arg.str, "NIL") == 0)
				arg.type = IMAP_ARG_NIL;
		}
		l.args = realloc(l.args, (l.count + 1) * sizeof(*l.args));
		assert_non_null(l.args);
		l.args[l.count++] = arg;
	}
	*sp = s;
	return l;
}

/* --- the messages ---------------------------------------------------- */

struct test_msg {
	const char *text;
	struct mail_rec rec;
	bool recent;
	int loads;
	bool fail_load;
};

static struct test_msg msgs[] = {
	{
		.text = "From: Alice Example <alice@example.com>\r\n"
			"To: Bob <bob@example.org>\r\n"
			"Subject: Lab meeting\r\n"
			"Date: Mon, 14 Feb 2022 22:00:00 +0530\r\n"
			"\r\n"
			"the lab meeting is at 10\r\n",
		/* 15-Feb-2022 10:00 +0530 */
		.rec = { .uid = 10, .flags = MAIL_SEEN | MAIL_ANSWERED, .keywords = 1,
			 .internal_date = 1644899400, .tz_minutes = 330, .size = 500 },
	},
	{
		.text = "From: carol@example.com\r\n"
			"Cc: Dave <dave@example.com>\r\n"
			"Bcc: eve@example.com\r\n"
			"Subject: =?UTF-8?B?w4lsw6h2ZQ==?= report\r\n"
			"Date: Tue, 1 Mar 2022 23:30:00 -0800\r\n"
			"Content-Type: text/plain; charset=utf-8\r\n"
			"Content-Transfer-Encoding: quoted-printable\r\n"
			"\r\n"
			"caf=C3=A9 au lait\r\n",
		/* 1-Mar-2022 23:30 -0800, i.e. 2-Mar-2022 in UTC */
		.rec = { .uid = 11, .flags = MAIL_FLAGGED | MAIL_DELETED,
			 .internal_date = 1646206200, .tz_minutes = -480, .size = 1500 },
		.recent = true,
	},
	{
		.text = "Subject: draft\r\n"
			"X-Priority: 1\r\n"
			"\r\n"
			"no date header here\r\n",
		/* 3-Mar-2022 12:00 +0000 */
		.rec = { .uid = 12, .flags = MAIL_DRAFT | MAIL_SEEN,
			 .internal_date = 1646308800, .tz_minutes = 0, .size = 100 },
		.recent = true,
	},
	{
		.text = "From: Frank <frank@example.com>\r\n"
			"Date: garbage\r\n"
			"\r\n"
			"body four\r\n",
		/* 10-Mar-2022 00:00 +0000 */
		.rec = { .uid = 20, .flags = 0,
			 .internal_date = 1646870400, .tz_minutes = 0, .size = 1000 },
	},
};

static struct mbox_state test_state;

static int
load_msg(void *ctx, const char **data_r, size_t *len_r)
{
	struct test_msg *m = ctx;

	m->loads++;
	if (m->fail_load)
		return -1;
	*data_r = m->text;
	*len_r = strlen(m->text);
	return 0;
}

static int
setup(void **state)
{
	(void)state;
	memset(&test_state, 0, sizeof(test_state));
	test_state.keywords[0] = xstrdup("$Important");
	test_state.keywords[1] = xstrdup("Junk");
	test_state.keyword_count = 2;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(test_state.keywords[0]);
	free(test_state.keywords[1]);
	return 0;
}

static struct search_msg
search_msg_of(size_t i)
{
	struct search_msg sm = {
		.seq = (uint32_t)i + 1, .uid = msgs[i].rec.uid, .rec = &msgs[i].rec,
		.recent = msgs[i].recent, .load = load_msg, .load_ctx = &msgs[i],
	};
	return sm;
}

/* Runs program over the messages: "1 3" (sequence numbers that match),
   or "ERR: reason" / "BADCHARSET". */
static char *
run(const char *program)
{
	const char *s = program;
	struct arglist l = tokenize(&s, false);
	struct search_key *key = NULL;
	const char *error = NULL;
	bool badcharset = true;
	struct buf out = BUF_INIT;

	if (search_parse(l.args, l.count, &test_state, N_ELEMENTS(msgs), 20, &key, &error,
			 &badcharset) < 0) {
		assert_null(key);
		assert_non_null(error);
		if (badcharset)
			buf_append_str(&out, "BADCHARSET");
		else
			buf_printf(&out, "ERR: %s", error);
	} else {
		assert_false(badcharset);
		assert_non_null(key);
		buf_append(&out, "", 0);
		for (size_t i = 0; i < N_ELEMENTS(msgs); i++) {
			struct search_msg sm = search_msg_of(i);
			int ret = search_match(key, &sm);

			assert_true(ret == 0 || ret == 1);
			if (ret == 1)
				buf_printf(&out, "%s%zu", out.len > 0 ? " " : "", i + 1);
		}
		search_key_free(&key);
		assert_null(key);
	}
	args_free(l.args, l.count);
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

/* --- tests ----------------------------------------------------------- */

static void
test_flag_keys(void **state)
{
	(void)state;
	check("ALL", "1 2 3 4");
	check("ANSWERED", "1");
	check("UNANSWERED", "2 3 4");
	check("DELETED", "2");
	check("UNDELETED", "1 3 4");
	check("DRAFT", "3");
	check("UNDRAFT", "1 2 4");
	check("FLAGGED", "2");
	check("UNFLAGGED", "1 3 4");
	check("SEEN", "1 3");
	check("UNSEEN", "2 4");
	check("RECENT", "2 3");
	check("OLD", "1 4");
	check("NEW", "2");
}

static void
test_keys_are_case_insensitive(void **state)
{
	(void)state;
	check("seen", "1 3");
	check("Not Seen", "2 4");
	check("subject LAB", "1");
}

static void
test_keyword_keys(void **state)
{
	(void)state;
	check("KEYWORD $Important", "1");
	check("KEYWORD $important", "1");
	check("UNKEYWORD $Important", "2 3 4");
	check("KEYWORD Junk", "");
	check("KEYWORD $Unknown", "");
	check("UNKEYWORD $Unknown", "1 2 3 4");
	check("KEYWORD \\Flagged", "2");
	check("KEYWORD", "ERR: Missing argument for search key");
}

static void
test_size_keys(void **state)
{
	(void)state;
	check("LARGER 1000", "2");
	check("LARGER 999", "2 4");
	check("SMALLER 1000", "1 3");
	check("SMALLER 100", "");
	check("LARGER abc", "ERR: Invalid number");
	check("SMALLER -1", "ERR: Invalid number");
	check("LARGER 99999999999", "ERR: Invalid number");
	check("LARGER", "ERR: Missing argument for search key");
}

static void
test_internal_date_keys_use_the_messages_own_zone(void **state)
{
	(void)state;
	check("BEFORE 1-Mar-2022", "1");
	/* Message 2 is 1-Mar in its zone even though it is 2-Mar in UTC. */
	check("ON 1-Mar-2022", "2");
	check("ON 2-Mar-2022", "");
	check("SINCE 2-Mar-2022", "3 4");
	check("SINCE 1-Mar-2022", "2 3 4");
	check("ON 15-Feb-2022", "1");
	check("BEFORE 1-Jan-1970", "");
	check("BEFORE 1-Mar-22", "ERR: Invalid date");
	check("SINCE 30-Feb-2022", "ERR: Invalid date");
	check("ON", "ERR: Missing argument for search key");
}

static void
test_sent_keys_use_date_header_with_fallback(void **state)
{
	(void)state;
	/* Message 1 was sent 14-Feb (its Date:) but arrived 15-Feb. */
	check("SENTON 14-Feb-2022", "1");
	check("ON 14-Feb-2022", "");
	check("SENTBEFORE 1-Mar-2022", "1");
	check("SENTON 1-Mar-2022", "2");
	/* No Date: (3) and an unparsable one (4) use the internal date. */
	check("SENTON 3-Mar-2022", "3");
	check("SENTSINCE 3-Mar-2022", "3 4");
	check("SENTON 10-Mar-2022", "4");
	check("SENTSINCE bad", "ERR: Invalid date");
}

static void
test_header_keys(void **state)
{
	(void)state;
	check("FROM alice", "1");
	check("FROM ALICE@EXAMPLE", "1");
	check("FROM \"Alice Example\"", "1");
	check("FROM \"example.com\"", "1 2 4");
	check("TO bob", "1");
	check("CC dave", "2");
	check("BCC eve", "2");
	check("BCC alice", "");
	check("SUBJECT lab", "1");
	check("SUBJECT report", "2");
	check("SUBJECT nothing", "");
	check("HEADER X-Priority 1", "3");
	check("HEADER x-priority \"\"", "3");
	check("HEADER Subject \"\"", "1 2 3");
	check("HEADER Date garbage", "4");
	check("HEADER", "ERR: Missing argument for search key");
	check("HEADER X-Priority", "ERR: Missing argument for search key");
	check("HEADER \"\" x", "ERR: Invalid header field name");
	check("SUBJECT (lab)", "ERR: Search key argument must be a string");
}

/* NIL where a search key wants an astring is the string "NIL" (RFC 3501
   section 9: astring includes every atom); it is no search key itself. */
static void
test_nil_is_a_string_argument(void **state)
{
	(void)state;
	check("SUBJECT NIL", "");
	check("SUBJECT nil", "");
	check("NOT SUBJECT NIL", "1 2 3 4");
	check("OR SUBJECT NIL SUBJECT lab", "1");
	check("BODY nil", "");
	check("TEXT NIL", "");
	check("FROM NIL", "");
	check("HEADER NIL x", "");
	check("HEADER X-Priority NIL", "");
	check("KEYWORD NIL", "");
	check("UNKEYWORD NIL", "1 2 3 4");
	check("CHARSET NIL SEEN", "BADCHARSET");
	check("LARGER NIL", "ERR: Invalid number");
	check("UID NIL", "ERR: Invalid UID set");
	check("MODSEQ NIL", "ERR: Invalid mod-sequence");
	check("BEFORE NIL", "ERR: Invalid date");
}

static void
test_utf8_search_on_encoded_subject(void **state)
{
	(void)state;
	check("CHARSET UTF-8 SUBJECT \"\xc3\xa9l\xc3\xa8ve\"", "2");
	/* Latin-1 letters fold too. */
	check("CHARSET UTF-8 SUBJECT \"\xc3\x89L\xc3\x88VE\"", "2");
	check("SUBJECT \"\xc3\xa9l\xc3\xa8ve report\"", "2");
	/* The raw encoded form does not match the decoded text. */
	check("SUBJECT w4lsw6h2ZQ", "");
}

static void
test_body_and_text_keys(void **state)
{
	(void)state;
	check("BODY \"lab meeting\"", "1");
	check("BODY \"caf\xc3\xa9\"", "2");     /* quoted-printable decoded */
	check("BODY CAF=C3", "");
	check("BODY alice", "");                /* only in the header */
	check("TEXT alice", "1");
	check("TEXT \"caf\xc3\xa9 AU\"", "2");
	check("TEXT \"\xc3\xa9l\xc3\xa8ve\"", "2");  /* decoded header */
	check("TEXT four", "4");
	check("BODY \"\"", "1 2 3 4");
}

/* --- MIME bodies from tests/data ------------------------------------ */

static char *
read_corpus(const char *name, size_t *len_r)
{
	char path[256];
	FILE *f;
	struct buf b = BUF_INIT;
	int c, prev = 0;

	snprintf(path, sizeof(path), "tests/data/%s", name);
	f = fopen(path, "rb");
	assert_non_null(f);
	while ((c = fgetc(f)) != EOF) {        /* bounded by the file */
		if (c == '\n' && prev != '\r')
			buf_append_c(&b, '\r');
		buf_append_c(&b, (char)c);
		prev = c;
	}
	fclose(f);
	*len_r = b.len;
	return buf_steal(&b);
}

struct corpus_msg {
	char *data;
	size_t len;
};

static int
load_corpus(void *ctx, const char **data_r, size_t *len_r)
{
	struct corpus_msg *m = ctx;

	*data_r = m->data;
	*len_r = m->len;
	return 0;
}

/* 1 if program matches the corpus file name, else 0. */
static int
corpus_match(const char *name, const char *program)
{
	struct corpus_msg cm;
	const char *s = program;
	struct arglist l = tokenize(&s, false);
	struct search_key *key = NULL;
	const char *error = NULL;
	bool badcharset = false;
	struct mail_rec rec = { .uid = 1, .size = 1 };
	struct search_msg sm = { .seq = 1, .uid = 1, .rec = &rec, .load = load_corpus,
				 .load_ctx = &cm };
	int ret;

	cm.data = read_corpus(name, &cm.len);
	assert_int_equal(search_parse(l.args, l.count, &test_state, 1, 1, &key, &error,
				      &badcharset), 0);
	ret = search_match(key, &sm);
	assert_true(ret == 0 || ret == 1);
	search_key_free(&key);
	args_free(l.args, l.count);
	free(cm.data);
	return ret;
}

static void
test_body_search_decodes_mime_text_parts(void **state)
{
	(void)state;
	/* Quoted-printable UTF-8 in a multipart/alternative, soft breaks. */
	assert_int_equal(corpus_match("mime-nested.eml", "BODY \"r\xc3\xa9sum\xc3\xa9 of\""), 1);
	assert_int_equal(corpus_match("mime-nested.eml", "BODY \"soft-wrapped here\""), 1);
	assert_int_equal(corpus_match("mime-nested.eml", "BODY \"r=C3=A9sum\""), 0);
	/* The HTML alternative is searched too. */
	assert_int_equal(corpus_match("mime-nested.eml", "BODY \"&amp; notes\""), 1);
	/* A base64 attachment is not text. */
	assert_int_equal(corpus_match("mime-nested.eml", "BODY JVBERi0xLjQK"), 0);
	assert_int_equal(corpus_match("mime-nested.eml", "BODY PDF-1.4"), 0);
	/* A base64 text part of an unterminated multipart. */
	assert_int_equal(corpus_match("mime-noclose.eml", "BODY \"never closed\""), 1);
	assert_int_equal(corpus_match("mime-noclose.eml", "BODY c2Vjb25k"), 0);
	/* Latin-1 quoted-printable. */
	assert_int_equal(corpus_match("mime-rfc2231.eml", "BODY \"voil\xc3\xa0 les\""), 1);
	/* An attached message: its text and its header. */
	assert_int_equal(corpus_match("mime-rfc822.eml", "BODY \"lunch at the caf\xc3\xa9?\""), 1);
	assert_int_equal(corpus_match("mime-rfc822.eml", "BODY eve@example.com"), 1);
	assert_int_equal(corpus_match("mime-rfc822.eml", "TEXT \"forwarded message\""), 1);
	/* RFC 2047 in the message's own header, for TEXT. */
	assert_int_equal(corpus_match("mime-rfc822.eml", "TEXT \"Fwd: lunch\""), 1);
	assert_int_equal(corpus_match("encoded.eml", "TEXT \"r\xc3\xa9sum\xc3\xa9 plain\""), 1);
	/* 8-bit text without a charset is searched as it is. */
	assert_int_equal(corpus_match("mime-badheaders.eml", "BODY \"caf\xe9\""), 1);
}

static void
test_sequence_and_uid_sets(void **state)
{
	(void)state;
	check("2:3", "2 3");
	check("*", "4");
	check("1,4", "1 4");
	check("4:2", "2 3 4");
	check("UID 11:12", "2 3");
	check("UID 20", "4");
	check("UID *", "4");
	check("UID 13:19", "");
	check("UID 1:* SEEN", "1 3");
	check("0", "ERR: Invalid sequence set");
	check("1:x", "ERR: Invalid sequence set");
	check("UID abc", "ERR: Invalid UID set");
	check("UID", "ERR: Missing argument for search key");
}

static void
test_or_not_and_groups(void **state)
{
	(void)state;
	check("OR SEEN FLAGGED", "1 2 3");
	check("NOT SEEN", "2 4");
	check("NOT NOT SEEN", "1 3");
	check("(SEEN DRAFT)", "3");
	check("OR (SEEN DRAFT) DELETED", "2 3");
	check("SEEN UNDRAFT", "1");
	check("OR OR ANSWERED DRAFT DELETED", "1 2 3");
	check("NOT (OR SEEN RECENT)", "4");
	check("((((SEEN))))", "1 3");
	check("OR SEEN", "ERR: Missing search key");
	check("NOT", "ERR: Missing search key");
	check("()", "ERR: Empty search program");
	check("SEEN ()", "ERR: Empty search program");
}

static void
test_nesting_is_bounded(void **state)
{
	struct buf prog = BUF_INIT;
	char *got;

	(void)state;
	for (int i = 0; i < 100; i++)
		buf_append_str(&prog, "NOT ");
	buf_append_str(&prog, "SEEN");
	got = run(prog.data);
	assert_string_equal(got, "ERR: Search program nested too deeply");
	free(got);
	buf_reset(&prog);
	for (int i = 0; i < 100; i++)
		buf_append_c(&prog, '(');
	buf_append_str(&prog, "SEEN");
	for (int i = 0; i < 100; i++)
		buf_append_c(&prog, ')');
	got = run(prog.data);
	assert_string_equal(got, "ERR: Search program nested too deeply");
	free(got);
	/* 30 levels are fine. */
	buf_reset(&prog);
	for (int i = 0; i < 30; i++)
		buf_append_str(&prog, "NOT ");
	buf_append_str(&prog, "SEEN");
	got = run(prog.data);
	assert_string_equal(got, "1 3");
	free(got);
	buf_free(&prog);
}

static void
test_charset(void **state)
{
	(void)state;
	check("CHARSET UTF-8 SEEN", "1 3");
	check("CHARSET us-ascii SEEN", "1 3");
	check("CHARSET \"utf-8\" SEEN", "1 3");
	check("CHARSET ISO-8859-5 SEEN", "BADCHARSET");
	check("CHARSET KOI8-R SUBJECT x", "BADCHARSET");
	check("CHARSET", "ERR: Missing charset name");
	check("CHARSET UTF-8", "ERR: Empty search program");
}

static void
test_unknown_keys_and_empty_program(void **state)
{
	(void)state;
	check("", "ERR: Empty search program");
	check("FOO", "ERR: Unknown search key");
	check("SEEN FOO", "ERR: Unknown search key");
	check("\"SEEN\"", "ERR: Search key must be an atom");
	check("NIL", "ERR: Search key must be an atom");
	check("SUBJECT", "ERR: Missing argument for search key");
}

static void
test_needs_message(void **state)
{
	static const struct {
		const char *program;
		bool needs;
	} cases[] = {
		{ "SEEN", false }, { "OR SEEN (NOT 1:3)", false }, { "UID 1 LARGER 5", false },
		{ "BEFORE 1-Jan-2000", false }, { "OR SEEN (SUBJECT x)", true },
		{ "SENTON 1-Jan-2000", true }, { "NOT BODY x", true }, { "TEXT x", true },
		{ "HEADER a b", true },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const char *s = cases[i].program;
		struct arglist l = tokenize(&s, false);
		struct search_key *key;
		const char *error;
		bool bad;

		assert_int_equal(search_parse(l.args, l.count, &test_state, 4, 20, &key, &error,
					      &bad), 0);
		if (search_needs_message(key) != cases[i].needs)
			fail_msg("needs_message wrong for %s", cases[i].program);
		search_key_free(&key);
		args_free(l.args, l.count);
	}
}

static void
test_message_loaded_once_and_load_failure(void **state)
{
	const char *s = "SUBJECT a BODY b TEXT c HEADER X d SENTON 1-Jan-2000";
	struct arglist l = tokenize(&s, false);
	struct search_key *key;
	const char *error;
	bool bad;
	struct search_msg sm = search_msg_of(0);

	(void)state;
	/* Message 1 matches the first four keys and misses HEADER X: five
	   keys that need the message, one load. */
	assert_int_equal(search_parse(l.args, l.count, &test_state, 4, 20, &key, &error, &bad), 0);
	msgs[0].loads = 0;
	assert_int_equal(search_match(key, &sm), 0);
	assert_int_equal(msgs[0].loads, 1);
	search_key_free(&key);
	args_free(l.args, l.count);

	s = "OR SUBJECT zz OR BODY zz OR TEXT zz SENTON 14-Feb-2022";
	l = tokenize(&s, false);
	assert_int_equal(search_parse(l.args, l.count, &test_state, 4, 20, &key, &error, &bad), 0);
	msgs[0].loads = 0;
	assert_int_equal(search_match(key, &sm), 1);
	assert_int_equal(msgs[0].loads, 1);

	/* A message that cannot be loaded: -1, and the loader is not hammered. */
	msgs[0].fail_load = true;
	msgs[0].loads = 0;
	assert_int_equal(search_match(key, &sm), -1);
	assert_int_equal(msgs[0].loads, 1);
	search_key_free(&key);
	args_free(l.args, l.count);

	s = "NOT SUBJECT x";
	l = tokenize(&s, false);
	assert_int_equal(search_parse(l.args, l.count, &test_state, 4, 20, &key, &error, &bad), 0);
	assert_int_equal(search_match(key, &sm), -1);
	search_key_free(&key);
	args_free(l.args, l.count);

	/* Keys that need no message never load it. */
	s = "SEEN";
	l = tokenize(&s, false);
	assert_int_equal(search_parse(l.args, l.count, &test_state, 4, 20, &key, &error, &bad), 0);
	msgs[0].loads = 0;
	assert_int_equal(search_match(key, &sm), 1);
	assert_int_equal(msgs[0].loads, 0);
	msgs[0].fail_load = false;
	search_key_free(&key);
	args_free(l.args, l.count);
}

static void
test_literal_and_null_state(void **state)
{
	struct imap_arg args[2] = {
		{ .type = IMAP_ARG_ATOM, .str = (char *)"BODY", .len = 4 },
		{ .type = IMAP_ARG_LITERAL, .str = (char *)"lab\0x", .len = 5 },
	};
	struct search_key *key;
	const char *error;
	bool bad;
	struct search_msg sm = search_msg_of(0);

	(void)state;
	/* A literal with a NUL in it is searched for as it is (no match). */
	assert_int_equal(search_parse(args, 2, NULL, 4, 20, &key, &error, &bad), 0);
	assert_int_equal(search_match(key, &sm), 0);
	search_key_free(&key);
	args[1].len = 3;
	assert_int_equal(search_parse(args, 2, NULL, 4, 20, &key, &error, &bad), 0);
	assert_int_equal(search_match(key, &sm), 1);
	search_key_free(&key);
	/* Without a state every keyword is unknown. */
	args[0].str = (char *)"UNKEYWORD";
	args[0].len = 9;
	args[1].type = IMAP_ARG_ATOM;
	args[1].str = (char *)"$Important";
	args[1].len = 10;
	assert_int_equal(search_parse(args, 2, NULL, 4, 20, &key, &error, &bad), 0);
	assert_int_equal(search_match(key, &sm), 1);
	search_key_free(&key);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flag_keys),
		cmocka_unit_test(test_keys_are_case_insensitive),
		cmocka_unit_test(test_keyword_keys),
		cmocka_unit_test(test_size_keys),
		cmocka_unit_test(test_internal_date_keys_use_the_messages_own_zone),
		cmocka_unit_test(test_sent_keys_use_date_header_with_fallback),
		cmocka_unit_test(test_header_keys),
		cmocka_unit_test(test_nil_is_a_string_argument),
		cmocka_unit_test(test_utf8_search_on_encoded_subject),
		cmocka_unit_test(test_body_and_text_keys),
		cmocka_unit_test(test_body_search_decodes_mime_text_parts),
		cmocka_unit_test(test_sequence_and_uid_sets),
		cmocka_unit_test(test_or_not_and_groups),
		cmocka_unit_test(test_nesting_is_bounded),
		cmocka_unit_test(test_charset),
		cmocka_unit_test(test_unknown_keys_and_empty_program),
		cmocka_unit_test(test_needs_message),
		cmocka_unit_test(test_message_loaded_once_and_load_failure),
		cmocka_unit_test(test_literal_and_null_state),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
