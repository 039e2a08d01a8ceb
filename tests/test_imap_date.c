/* test_imap_date.c: the IMAP date syntaxes of the server
   (core/imap/imap_date.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "imap_date.h"

static void
test_write_imap_date_space_pads_the_day(void **state)
{
	struct buf out = BUF_INIT;

	(void)state;
	imap_date_write(0, 0, &out);
	assert_string_equal(out.data, " 1-Jan-1970 00:00:00 +0000");
	buf_reset(&out);
	imap_date_write(1644901198, 330, &out);
	assert_string_equal(out.data, "15-Feb-2022 10:29:58 +0530");
	buf_reset(&out);
	imap_date_write(1646294399, -480, &out);
	assert_string_equal(out.data, " 2-Mar-2022 23:59:59 -0800");
	buf_reset(&out);
	imap_date_write(-3600, 60, &out);
	assert_string_equal(out.data, " 1-Jan-1970 00:00:00 +0100");
	buf_reset(&out);
	/* Absurd zones are not trusted. */
	imap_date_write(0, 100000, &out);
	assert_string_equal(out.data, " 1-Jan-1970 00:00:00 +0000");
	buf_free(&out);
}

static void
test_parse_imap_date(void **state)
{
	static const char *const bad[] = {
		"", "1-Feb-94", "31-Feb-1994", "1-Feb-1994x", "1 Feb 1994", "0-Feb-1994",
		"1-Fe-1994", "001-Feb-1994", "1-Feb-19940",
	};
	int64_t days;

	(void)state;
	assert_int_equal(imap_date_parse("1-Feb-1994", &days), 0);
	assert_int_equal(days, 8797);
	assert_int_equal(imap_date_parse("01-FEB-1994", &days), 0);
	assert_int_equal(days, 8797);
	assert_int_equal(imap_date_parse("1-Jan-1970", &days), 0);
	assert_int_equal(days, 0);
	assert_int_equal(imap_date_parse("31-Dec-1969", &days), 0);
	assert_int_equal(days, -1);
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		if (imap_date_parse(bad[i], &days) != -1)
			fail_msg("bad date accepted: %s", bad[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_imap_date_space_pads_the_day),
		cmocka_unit_test(test_parse_imap_date),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
