/* test_message.c: RFC 5322 reading (core/mail/message.c) against the corpus
   in tests/data (run from the top of the tree). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "corpus.h"

#include "imap_date.h"
#include "imap_envelope.h"
#include "message.h"
#include "mime.h"

static const char *const corpus[] = {
	"plain.eml", "group.eml", "quoted.eml", "missing.eml", "encoded.eml",
	"qp.eml", "base64.eml", "multipart.eml", "lab.eml", "broken.eml",
	"truncated.eml", "noheader.eml", "nobody.eml",
};

/* Reads tests/data/name into a malloc'ed buffer of exactly its size (so
   that a sanitizer catches any read past the end). */
static void
assert_header(const char *name, const char *field, const char *expected)
{
	struct buf out = BUF_INIT;
	size_t len;
	char *data = read_data(name, &len);
	size_t hdr = message_header_size(data, len);

	if (expected == NULL) {
		assert_int_equal(message_header_get(data, hdr, field, &out), 0);
		assert_int_equal(out.len, 0);
	} else {
		assert_int_equal(message_header_get(data, hdr, field, &out), 1);
		assert_string_equal(out.data == NULL ? "" : out.data, expected);
	}
	buf_free(&out);
	free(data);
}

/* --- header fields --------------------------------------------------- */

static void
test_header_size_finds_blank_line_crlf_and_lf(void **state)
{
	(void)state;
	assert_int_equal(message_header_size("A: b\r\n\r\nbody", 12), 8);
	assert_int_equal(message_header_size("A: b\n\nbody", 10), 6);
	assert_int_equal(message_header_size("\r\nbody", 6), 2);
	assert_int_equal(message_header_size("\nbody", 5), 1);
	/* No blank line: the whole message is header. */
	assert_int_equal(message_header_size("A: b\r\nC: d", 10), 10);
	assert_int_equal(message_header_size("", 0), 0);
	/* A line of spaces is not the end of the header (a continuation). */
	assert_int_equal(message_header_size("A: b\n \nC: d\n\nx", 14), 13);
}

static void
test_header_get_unfolds_and_ignores_case(void **state)
{
	(void)state;
	assert_header("plain.eml", "subject", "Lab meeting tomorrow");
	assert_header("plain.eml", "SUBJECT", "Lab meeting tomorrow");
	assert_header("plain.eml", "Received",
		      "from mail.example.com (mail.example.com [192.0.2.1])\tby mx.example.org "
		      "with ESMTP id 4711\tfor <bob@example.org>; Tue, 15 Feb 2022 10:30:00 +0530");
	assert_header("plain.eml", "X-Missing", NULL);
	/* Body lines are not header fields. */
	assert_header("plain.eml", "Hi Bob,", NULL);
	assert_header("lab.eml", "Subject", "hello from the lab");
	assert_header("missing.eml", "Subject", "nothing else here");
	assert_header("broken.eml", "X-Empty", "");
	/* Junk lines are skipped, the first of two fields wins. */
	assert_header("broken.eml", "Subject",
		      "8-bit \xe9\xff raw bytes =?utf-8?B?!!!?= =?x-unknown?Q?abc?= =?utf-8?Q?ok?=");
	assert_header("broken.eml", "Bad Name", NULL);
	assert_header("broken.eml", "this line has no colon", NULL);
	assert_header("nobody.eml", "Subject", "no blank line");
}

static void
test_header_get_tolerates_space_before_colon(void **state)
{
	const char msg[] = "Subject : spaced\r\nX:y\r\n\r\n";
	struct buf out = BUF_INIT;

	(void)state;
	assert_int_equal(message_header_get(msg, sizeof(msg) - 1, "Subject", &out), 1);
	assert_string_equal(out.data, "spaced");
	buf_reset(&out);
	assert_int_equal(message_header_get(msg, sizeof(msg) - 1, "x", &out), 1);
	assert_string_equal(out.data, "y");
	buf_free(&out);
}

static void
test_header_get_all_joins_values(void **state)
{
	const char msg[] = "To: a@x\nCc: c@x\nTO: b@x\n\n";
	struct buf out = BUF_INIT;

	(void)state;
	assert_int_equal(message_header_get_all(msg, sizeof(msg) - 1, "to", &out), 1);
	assert_string_equal(out.data, "a@x, b@x");
	buf_reset(&out);
	assert_int_equal(message_header_get_all(msg, sizeof(msg) - 1, "bcc", &out), 0);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

static void
test_header_fields_keeps_folding_and_uses_crlf(void **state)
{
	const char *names[] = { "subject", "FROM" };
	struct buf out = BUF_INIT;
	size_t len;
	char *data = read_data("plain.eml", &len);
	size_t hdr = message_header_size(data, len);

	(void)state;
	message_header_fields(data, hdr, names, 2, false, &out);
	assert_string_equal(out.data, "From: Alice Example <alice@example.com>\r\n"
				      "Subject: Lab meeting\r\n tomorrow\r\n\r\n");
	buf_reset(&out);
	/* No match: just the blank line. */
	message_header_fields(data, hdr, (const char *[]){ "X-None" }, 1, false, &out);
	assert_string_equal(out.data, "\r\n");
	buf_free(&out);
	free(data);

	/* LF input comes out with CRLF. */
	data = read_data("lab.eml", &len);
	hdr = message_header_size(data, len);
	message_header_fields(data, hdr, (const char *[]){ "to" }, 1, false, &out);
	assert_string_equal(out.data, "To: bob@localhost\r\n\r\n");
	buf_free(&out);
	free(data);
}

static void
test_header_fields_not_returns_the_others(void **state)
{
	const char msg[] = "From: a\nJunk line\nTo: b\n folded\nSubject: s";
	const char *names[] = { "to" };
	struct buf out = BUF_INIT;

	(void)state;
	message_header_fields(msg, sizeof(msg) - 1, names, 1, true, &out);
	/* The last field had no line end: one is added. Junk is dropped. */
	assert_string_equal(out.data, "From: a\r\nSubject: s\r\n\r\n");
	buf_reset(&out);
	message_header_fields(msg, sizeof(msg) - 1, names, 1, false, &out);
	assert_string_equal(out.data, "To: b\r\n folded\r\n\r\n");
	buf_free(&out);
}

/* --- dates ----------------------------------------------------------- */

static void
assert_date(const char *str, int64_t t, int32_t tz)
{
	int64_t t2 = 0;
	int32_t tz2 = 0;

	if (message_parse_date(str, &t2, &tz2) != 0)
		fail_msg("date did not parse: %s", str);
	assert_int_equal(t2, t);
	assert_int_equal(tz2, tz);
}

static void
test_parse_date_rfc5322_and_obsolete_forms(void **state)
{
	(void)state;
	assert_date("Tue, 15 Feb 2022 10:29:58 +0530", 1644901198, 330);
	assert_date("15 Feb 2022 10:29:58 +0530", 1644901198, 330);
	assert_date("  Tue,15 Feb 2022 10:29:58 +0530  ", 1644901198, 330);
	assert_date("1 Mar 2022 08:00 GMT", 1646121600, 0);
	assert_date("Wed, 02 Mar 2022 23:59:59 -0800 (PST)", 1646294399, -480);
	assert_date("2 Mar 22 10:00:00 EST", 1646233200, -300);
	assert_date("2 Mar 99 10:00:00 +0000", 920368800, 0);
	assert_date("Tue , 15 feb 2022 10 : 29 : 58 +0530", 1644901198, 330);
	assert_date("15-Feb-2022 10:29:58 +0530", 1644901198, 330);
	assert_date("Tuesday, 15 February 2022 10:29:58 +0530", 1644901198, 330);
	/* Military and unknown zones mean +0000. */
	assert_date("1 Mar 2022 08:00:00 A", 1646121600, 0);
	assert_date("1 Mar 2022 08:00:00", 1646121600, 0);
	assert_date("31 Dec 1969 23:00:00 +0000", -3600, 0);
	assert_date("29 Feb 2024 00:00:00 +0000", 1709164800, 0);
}

static void
test_parse_date_rejects_bad_dates(void **state)
{
	static const char *const bad[] = {
		"", "garbage", "Tue,", "15 Feb", "15 Feb 2022", "32 Jan 2022 10:00 +0000",
		"0 Jan 2022 10:00 +0000", "29 Feb 2021 10:00 +0000", "1 Foo 2022 10:00 +0000",
		"1 Jan 2022 24:00:00 +0000", "1 Jan 2022 10:60:00 +0000", "1 Jan 2022 10:00:61",
		"1 Jan 2022 10:00:00 +12", "1 Jan 2022 10:00:00 +0160", "123 Jan 2022 10:00",
		"1 Jan 2 10:00:00", "1 Jan 20222 10:00:00", "Mo, 1 Jan 2022 10:00", "1 Jan 2022 10",
		"32 Jan 2022 25:61:00 +9999",
	};
	int64_t t;
	int32_t tz;

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		if (message_parse_date(bad[i], &t, &tz) != -1)
			fail_msg("bad date accepted: %s", bad[i]);
	}
}

static void
test_parse_imap_datetime(void **state)
{
	static const char *const bad[] = {
		"", "2-Jan-2006", "2-Jan-2006 15:04:05", "2-Jan-2006 15:04:05 0100",
		"2-Jan-06 15:04:05 +0100", "2-Foo-2006 15:04:05 +0100", "30-Feb-2006 15:04:05 +0100",
		"2-Jan-2006 25:04:05 +0100", "2-Jan-2006 15:4:05 +0100", "2-Jan-2006 15:04:05 +0100 ",
		"2-Jan-2006 15:04:05 +2400", "2 Jan 2006 15:04:05 +0100",
	};
	int64_t t;
	int32_t tz;
	struct buf out = BUF_INIT;

	(void)state;
	assert_int_equal(message_parse_imap_datetime(" 2-Jan-2006 15:04:05 +0100", &t, &tz), 0);
	assert_int_equal(t, 1136210645);
	assert_int_equal(tz, 60);
	assert_int_equal(message_parse_imap_datetime("02-Jan-2006 15:04:05 +0100", &t, &tz), 0);
	assert_int_equal(t, 1136210645);
	assert_int_equal(message_parse_imap_datetime("2-jan-2006 08:04:05 -0600", &t, &tz), 0);
	assert_int_equal(t, 1136210645);
	assert_int_equal(tz, -360);
	/* Round trip through the writer. */
	imap_date_write(t, tz, &out);
	assert_int_equal(message_parse_imap_datetime(out.data, &t, &tz), 0);
	assert_int_equal(t, 1136210645);
	assert_int_equal(tz, -360);
	buf_free(&out);
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		if (message_parse_imap_datetime(bad[i], &t, &tz) != -1)
			fail_msg("bad date-time accepted: %s", bad[i]);
	}
}

/* --- RFC 2047 -------------------------------------------------------- */

static void
assert_decoded(const char *in, const char *expected)
{
	struct buf out = BUF_INIT;

	message_decode_header(in, strlen(in), &out);
	assert_string_equal(out.data == NULL ? "" : out.data, expected);
	buf_free(&out);
}

static void
test_decode_header_b_and_q(void **state)
{
	(void)state;
	assert_decoded("=?UTF-8?B?w4lsw6h2ZQ==?=", "\xc3\x89l\xc3\xa8ve");
	assert_decoded("=?utf-8?q?na=C3=AFve_text?=", "na\xc3\xafve text");
	assert_decoded("=?ISO-8859-1?Q?Andr=E9?= Pirard", "Andr\xc3\xa9 Pirard");
	assert_decoded("=?us-ascii?Q?plain?=", "plain");
	assert_decoded("=?UTF-8*en?Q?lang?=", "lang");
	/* Without padding. */
	assert_decoded("=?UTF-8?B?SsO2cmc?=", "J\xc3\xb6rg");
	/* Other charsets through iconv. */
	assert_decoded("=?windows-1252?Q?caf=E9_=80?=", "caf\xc3\xa9 \xe2\x82\xac");
	assert_decoded("plain text only", "plain text only");
	assert_decoded("", "");
}

static void
test_decode_header_joins_adjacent_words(void **state)
{
	(void)state;
	assert_decoded("=?UTF-8?B?w4lsw6h2ZQ==?= =?UTF-8?Q?_r=C3=A9sum=C3=A9?= plain",
		       "\xc3\x89l\xc3\xa8ve r\xc3\xa9sum\xc3\xa9 plain");
	assert_decoded("=?utf-8?q?a?=  \t =?utf-8?q?b?=", "ab");
	assert_decoded("=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab");
	/* Text between words keeps its spaces. */
	assert_decoded("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b");
	assert_decoded("x =?utf-8?q?a?= y", "x a y");
	/* A bad word between two good ones is text. */
	assert_decoded("=?utf-8?q?a?= =?utf-8?B?!!?= =?utf-8?q?b?=", "a =?utf-8?B?!!?= b");
}

static void
test_decode_header_leaves_bad_words_alone(void **state)
{
	(void)state;
	assert_decoded("=?utf-8?B?!!!?=", "=?utf-8?B?!!!?=");
	assert_decoded("=?utf-8?X?abc?=", "=?utf-8?X?abc?=");
	assert_decoded("=?utf-8?Q?unterminated", "=?utf-8?Q?unterminated");
	assert_decoded("=?x-unknown-charset?Q?abc?=", "=?x-unknown-charset?Q?abc?=");
	assert_decoded("=?utf-8?Q?has space?=", "=?utf-8?Q?has space?=");
	assert_decoded("=??Q?abc?=", "=??Q?abc?=");
	assert_decoded("=?", "=?");
	assert_decoded("=?utf-8?", "=?utf-8?");
	assert_decoded("=?utf-8?Q", "=?utf-8?Q");
	assert_decoded("=?../../etc?Q?abc?=", "=?../../etc?Q?abc?=");
	/* Invalid UTF-8 from a converter is refused, 8-bit raw text copied. */
	assert_decoded("raw \xe9 byte", "raw \xe9 byte");
	/* A Q word with a stray '=' keeps it. */
	assert_decoded("=?utf-8?Q?a=ZZb=?=", "a=ZZb=");
}

/* --- body text ------------------------------------------------------- */

static char *
body_text_of(const char *name)
{
	struct buf out = BUF_INIT;
	size_t len;
	char *data = read_data(name, &len);

	mime_body_text(data, len, &out);
	free(data);
	buf_append_c(&out, '\0');   /* also for an empty result */
	return buf_steal(&out);
}

static void
test_body_text_quoted_printable_latin1(void **state)
{
	char *text = body_text_of("qp.eml");

	(void)state;
	assert_string_equal(text,
		"Soft line \r\nbreak here: continued, caf\xc3\xa9 and equals = sign.\r\n");
	free(text);
}

static void
test_body_text_base64(void **state)
{
	char *text = body_text_of("base64.eml");

	(void)state;
	assert_string_equal(text, "Hello base64 world, caf\xc3\xa9!");
	free(text);
}

static void
test_body_text_multipart_walks_text_parts_only(void **state)
{
	char *text = body_text_of("multipart.eml");

	(void)state;
	assert_non_null(strstr(text, "Plain part with na\xc3\xafve text"));
	assert_non_null(strstr(text, "<p>HTML part</p>"));
	assert_non_null(strstr(text, "Subject: forwarded"));
	assert_non_null(strstr(text, "Inner message body"));
	assert_null(strstr(text, "secret binary"));
	assert_null(strstr(text, "c2VjcmV0"));
	assert_null(strstr(text, "preamble"));
	assert_null(strstr(text, "epilogue"));
	assert_null(strstr(text, "--inner"));
	free(text);
}

static void
test_body_text_plain_and_lab_format(void **state)
{
	char *text = body_text_of("plain.eml");

	(void)state;
	assert_string_equal(text, "Hi Bob,\r\n\r\nthe lab meeting is at 10.\r\n"
				  ".. a line that started with a dot\r\nAlice\r\n");
	free(text);
	text = body_text_of("lab.eml");
	assert_string_equal(text, "This is the body.\nSecond line.\n");
	free(text);
}

static void
test_body_text_malformed_multipart_gives_raw_body(void **state)
{
	char *text = body_text_of("broken.eml");

	(void)state;
	assert_string_equal(text, "--not-the-boundary\nbody without parts\n");
	free(text);
	text = body_text_of("truncated.eml");
	assert_non_null(strstr(text, "truncated"));
	assert_non_null(strstr(text, "last part without close "));
	free(text);
	text = body_text_of("nobody.eml");
	assert_string_equal(text, "");
	free(text);
}

static void
test_body_text_nesting_is_bounded(void **state)
{
	struct buf msg = BUF_INIT, out = BUF_INIT;

	(void)state;
	/* 200 nested multiparts: far past the depth limit, must not crash. */
	for (int i = 0; i < 200; i++)
		buf_printf(&msg, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
	buf_append_str(&msg, "Content-Type: text/plain\n\ndeep text\n");
	mime_body_text(msg.data, msg.len, &out);
	assert_true(out.len > 0);
	buf_free(&msg);
	buf_free(&out);
}

/* --- searching ------------------------------------------------------- */

static void
test_str_contains_folds_ascii_and_latin1(void **state)
{
	(void)state;
	assert_true(message_str_contains("Hello World", 11, "wORLD", 5));
	assert_true(message_str_contains("Hello World", 11, "", 0));
	assert_false(message_str_contains("Hello", 5, "Hello!", 6));
	assert_false(message_str_contains("Hello", 5, "xyz", 3));
	assert_true(message_str_contains("CAF\xc3\x89", 5, "caf\xc3\xa9", 5));
	/* the ASCII search without a copy: the same answers */
	assert_true(message_ascii_contains("Content-Transfer-Encoding: BINARY", 33, "binary"));
	assert_true(message_ascii_contains("binary", 6, "binary"));
	assert_true(message_ascii_contains("xxBinAry", 8, "binary"));
	assert_true(message_ascii_contains("bbinary", 7, "binary"));
	assert_false(message_ascii_contains("xxBinAr", 7, "binary"));
	assert_false(message_ascii_contains("bin\xc3\x80ry", 8, "binary"));
	assert_false(message_ascii_contains("", 0, "binary"));
	assert_true(message_ascii_contains("Hello World", 11, "world"));
	assert_true(message_str_contains("caf\xc3\xa9", 5, "CAF\xc3\x89", 5));
	/* U+00D7 (multiplication sign) has no lower case. */
	assert_false(message_str_contains("\xc3\x97", 2, "\xc3\xb7", 2));
	/* A lone lead byte at the end is not over-read. */
	assert_false(message_str_contains("ab\xc3", 3, "\xc3\xa9", 2));
}

/* --- robustness ------------------------------------------------------ */

/* Feeds every prefix of every corpus file to every function, each in a
   buffer of exactly that size. */
static void
test_every_prefix_of_corpus_is_safe(void **state)
{
	const char *names[] = { "subject", "from", "x-none" };

	(void)state;
	for (size_t f = 0; f < N_ELEMENTS(corpus); f++) {
		size_t len;
		char *data = read_data(corpus[f], &len);

		for (size_t n = 0; n <= len; n++) {
			char *p = malloc(n + 1);
			struct buf out = BUF_INIT;
			size_t hdr;
			int64_t t;
			int32_t tz;

			assert_non_null(p);
			memcpy(p, data, n);
			hdr = message_header_size(p, n);
			assert_true(hdr <= n);
			(void)message_header_get(p, hdr, "Subject", &out);
			(void)message_header_get_all(p, hdr, "To", &out);
			message_header_fields(p, hdr, names, 3, false, &out);
			message_header_fields(p, hdr, names, 3, true, &out);
			imap_envelope(p, n, &out);
			mime_body_text(p, n, &out);
			message_decode_header(p, n, &out);
			(void)message_str_contains(p, n, "lab", 3);
			p[n] = '\0';
			(void)message_parse_date(p, &t, &tz);
			(void)message_parse_imap_datetime(p, &t, &tz);
			(void)imap_date_parse(p, &t);
			buf_free(&out);
			/* The same bytes without their start, as a header value. */
			message_decode_header(p + n / 2, n - n / 2, &out);
			imap_envelope(p + n / 2, n - n / 2, &out);
			buf_free(&out);
			free(p);
		}
		free(data);
	}
}

static void
test_dates_every_prefix_is_safe(void **state)
{
	static const char *const dates[] = {
		"Tue, 15 Feb 2022 10:29:58 +0530 (IST)", " 2-Jan-2006 15:04:05 +0100",
		"1-Feb-1994", "Wed , 2 (c) Mar 22 10 : 00 EST",
	};

	(void)state;
	for (size_t d = 0; d < N_ELEMENTS(dates); d++) {
		size_t len = strlen(dates[d]);

		for (size_t n = 0; n <= len; n++) {
			char *p = xstrndup(dates[d], n);
			int64_t t;
			int32_t tz;

			(void)message_parse_date(p, &t, &tz);
			(void)message_parse_imap_datetime(p, &t, &tz);
			(void)imap_date_parse(p, &t);
			free(p);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_size_finds_blank_line_crlf_and_lf),
		cmocka_unit_test(test_header_get_unfolds_and_ignores_case),
		cmocka_unit_test(test_header_get_tolerates_space_before_colon),
		cmocka_unit_test(test_header_get_all_joins_values),
		cmocka_unit_test(test_header_fields_keeps_folding_and_uses_crlf),
		cmocka_unit_test(test_header_fields_not_returns_the_others),
		cmocka_unit_test(test_parse_date_rfc5322_and_obsolete_forms),
		cmocka_unit_test(test_parse_date_rejects_bad_dates),
		cmocka_unit_test(test_parse_imap_datetime),
		cmocka_unit_test(test_decode_header_b_and_q),
		cmocka_unit_test(test_decode_header_joins_adjacent_words),
		cmocka_unit_test(test_decode_header_leaves_bad_words_alone),
		cmocka_unit_test(test_body_text_quoted_printable_latin1),
		cmocka_unit_test(test_body_text_base64),
		cmocka_unit_test(test_body_text_multipart_walks_text_parts_only),
		cmocka_unit_test(test_body_text_plain_and_lab_format),
		cmocka_unit_test(test_body_text_malformed_multipart_gives_raw_body),
		cmocka_unit_test(test_body_text_nesting_is_bounded),
		cmocka_unit_test(test_str_contains_folds_ascii_and_latin1),
		cmocka_unit_test(test_every_prefix_of_corpus_is_safe),
		cmocka_unit_test(test_dates_every_prefix_is_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
