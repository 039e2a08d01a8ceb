/* test_imap_section.c: IMAP sections (core/imap/imap_section.c) of
   messages of the corpus in tests/data/ (run from the top of the
   clone). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "corpus.h"

#include "imap_section.h"
#include "message.h"

/* The section's bytes as a string, or NULL if it does not exist. */
static char *
section_str(const struct mime_message *m, const char *msg, const char *section)
{
	size_t off, len;
	int ret = imap_section_lookup(m, section, &off, &len);

	assert_true(ret >= 0);
	if (ret == 0) {
		assert_int_equal(len, 0);
		return NULL;
	}
	assert_true(off + len <= m->len);
	return xstrndup(msg + off, len);
}

static void
assert_section(const struct mime_message *m, const char *msg, const char *section,
	       const char *expected)
{
	char *got = section_str(m, msg, section);

	if (expected == NULL) {
		if (got != NULL)
			fail_msg("section %s: expected none, got \"%s\"", section, got);
	} else {
		if (got == NULL)
			fail_msg("section %s: expected \"%s\", got none", section, expected);
		assert_string_equal(got, expected);
	}
	free(got);
}

static void
test_sections_of_nested_rfc822(void **state)
{
	size_t len;
	char *msg = read_crlf("mime-rfc822.eml", &len);
	struct mime_message *m = mime_parse(msg, len);
	char *s;

	(void)state;
	assert_section(m, msg, "1", "See the forwarded message.");
	assert_section(m, msg, "1.MIME", "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	assert_section(m, msg, "2.MIME",
		       "Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n");
	assert_section(m, msg, "2.1", "Lunch at the caf\xc3\xa9?");
	assert_section(m, msg, "2.2", "<p>Lunch at the <i>caf\xc3\xa9</i>?</p>");
	assert_section(m, msg, "2.1.MIME",
		       "Content-Type: text/plain; charset=utf-8\r\n"
		       "Content-Transfer-Encoding: 8bit\r\n\r\n");
	s = section_str(m, msg, "2.HEADER");
	assert_non_null(s);
	assert_int_equal(strncmp(s, "From: \"Eve, E.\"", 15), 0);
	assert_int_equal(strlen(s), 274);
	free(s);
	s = section_str(m, msg, "2.text");
	assert_non_null(s);
	assert_int_equal(strncmp(s, "--inner-b\r\n", 11), 0);
	assert_int_equal(strlen(s), 209);
	free(s);
	s = section_str(m, msg, "2");
	assert_int_equal(strlen(s), 483);
	free(s);
	/* Sections that do not exist. */
	assert_section(m, msg, "3", NULL);
	/* 1 is not multipart: 1.1 is 1 again, 1.1.1 nothing (as Dovecot). */
	assert_section(m, msg, "1.1", "See the forwarded message.");
	assert_section(m, msg, "1.1.1", NULL);
	assert_section(m, msg, "1.HEADER", NULL);
	assert_section(m, msg, "1.TEXT", NULL);
	assert_section(m, msg, "2.3", NULL);
	assert_section(m, msg, "2.1.2.MIME", NULL);
	assert_section(m, msg, "4294967295", NULL);
	/* The message's own sections. */
	s = section_str(m, msg, "");
	assert_int_equal(strlen(s), len);
	free(s);
	s = section_str(m, msg, "HEADER");
	assert_int_equal(strlen(s), message_header_size(msg, len));
	free(s);
	/* Syntax errors. */
	size_t off, slen;
	assert_int_equal(imap_section_lookup(m, "0", &off, &slen), -1);
	assert_int_equal(imap_section_lookup(m, "1..2", &off, &slen), -1);
	assert_int_equal(imap_section_lookup(m, "1.", &off, &slen), -1);
	assert_int_equal(imap_section_lookup(m, "MIME", &off, &slen), -1);
	assert_int_equal(imap_section_lookup(m, "1.FOO", &off, &slen), -1);
	assert_int_equal(imap_section_lookup(m, "4294967296", &off, &slen), -1);
	mime_message_free(&m);
	free(msg);
}

static void
test_sections_of_single_part_messages(void **state)
{
	size_t len;
	char *msg = read_crlf("mime-rfc822-single.eml", &len);
	struct mime_message *m = mime_parse(msg, len);
	char *s;

	(void)state;
	/* A message/rfc822 message: 1 is the enclosed message, 1.1 its
	   body, 1.1.1 nothing (Dovecot's reading of RFC 3501). */
	s = section_str(m, msg, "1");
	assert_int_equal(strlen(s), 112);
	assert_int_equal(strncmp(s, "From: nina@example.com\r\n", 24), 0);
	free(s);
	assert_section(m, msg, "1.1", "inner body line 1\r\ninner body line 2\r\n");
	assert_section(m, msg, "1.1.1", NULL);
	assert_section(m, msg, "1.2", NULL);
	assert_section(m, msg, "1.TEXT", "inner body line 1\r\ninner body line 2\r\n");
	s = section_str(m, msg, "1.MIME");
	assert_int_equal(strncmp(s, "From: mallory@example.com\r\n", 27), 0);
	free(s);
	mime_message_free(&m);
	free(msg);

	msg = read_crlf("plain.eml", &len);
	m = mime_parse(msg, len);
	s = section_str(m, msg, "1");
	assert_int_equal(strncmp(s, "Hi Bob,\r\n", 9), 0);
	free(s);
	assert_section(m, msg, "2", NULL);
	assert_section(m, msg, "1.1", NULL);
	mime_message_free(&m);
	free(msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sections_of_nested_rfc822),
		cmocka_unit_test(test_sections_of_single_part_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
