/* test_seqset.c: IMAP sequence sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "buf.h"
#include "lib.h"
#include "seqset.h"

/* Parses str with star and returns seqset_write()'s form (to free), or
   NULL when seqset_parse() fails. */
static char *
parse_write(const char *str, uint32_t star)
{
	struct seqset set;
	struct buf out = BUF_INIT;

	if (seqset_parse(str, star, &set) < 0) {
		assert_int_equal(set.count, 0);
		seqset_free(&set);
		return NULL;
	}
	/* the invariant: sorted, no 0, lo <= hi, ranges neither overlap
	   nor touch */
	for (size_t i = 0; i < set.count; i++) {
		assert_true(set.ranges[i].lo >= 1);
		assert_true(set.ranges[i].lo <= set.ranges[i].hi);
		if (i > 0)
			assert_true((uint64_t)set.ranges[i - 1].hi + 1 < set.ranges[i].lo);
	}
	seqset_write(&set, &out);
	seqset_free(&set);
	assert_null(set.ranges);
	assert_int_equal(set.count, 0);
	buf_append_str(&out, "");
	return buf_steal(&out);
}

struct seq_case {
	const char *input;
	uint32_t star;
	const char *expect; /* NULL: a parse error */
};

static const struct seq_case seq_cases[] = {
	{ "1", 10, "1" },
	{ "1:3", 10, "1:3" },
	{ "3:1", 10, "1:3" },
	{ "*", 10, "10" },
	{ "1:*", 10, "1:10" },
	{ "*:4", 10, "4:10" },
	{ "2,4:6,*", 10, "2,4:6,10" },
	{ "4:6,5:8", 10, "4:8" },
	{ "1,2,3", 10, "1:3" }, /* adjacent numbers merge */
	{ "5,1,3,2,4", 10, "1:5" },
	{ "9,1:2,7,4", 10, "1:2,4,7,9" },
	{ "1:2,8:9,3:7", 10, "1:9" }, /* fills a gap, merges three */
	{ "20:30,1,10:15,2:25", 100, "1:30" },
	{ "4294967295", 1, "4294967295" },
	{ "1:4294967295,7", 1, "1:4294967295" },
	{ "4294967294,4294967295", 1, "4294967294:4294967295" },
	{ "12:*", 5, "5:12" }, /* RFC 3501: n:* with n > star */
	{ "*:*", 5, "5" },
	/* star 0, an empty mailbox: '*' stands for 0, which is no member;
	   "n:*" keeps 1..n (what RFC 3501 gives for n above the highest
	   number), so the caller's own range check finds nothing */
	{ "*", 0, "" },
	{ "*:*", 0, "" },
	{ "1:*", 0, "1" },
	{ "5:*", 0, "1:5" },
	{ "*,3", 0, "3" },
	/* not sequence sets */
	{ "", 10, NULL },
	{ "0", 10, NULL },
	{ "0:3", 10, NULL },
	{ "3:0", 10, NULL },
	{ "01", 10, NULL },
	{ "1:", 10, NULL },
	{ ":3", 10, NULL },
	{ "a", 10, NULL },
	{ "1a", 10, NULL },
	{ "1,,2", 10, NULL },
	{ "1,", 10, NULL },
	{ ",1", 10, NULL },
	{ "1:2:3", 10, NULL },
	{ "1 2", 10, NULL },
	{ "-1", 10, NULL },
	{ "**", 10, NULL },
	{ "4294967296", 10, NULL },
	{ "99999999999999999999999", 10, NULL },
	{ "1:4294967296", 10, NULL },
};

static void
test_seqset_parse_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(seq_cases); i++) {
		const struct seq_case *tc = &seq_cases[i];
		char *got = parse_write(tc->input, tc->star);

		if (tc->expect == NULL) {
			if (got != NULL)
				fail_msg("\"%s\" parsed as \"%s\", expected an error", tc->input,
					 got);
		} else {
			if (got == NULL)
				fail_msg("\"%s\" failed, expected \"%s\"", tc->input, tc->expect);
			if (strcmp(got, tc->expect) != 0)
				fail_msg("\"%s\" (star %u) gave \"%s\", expected \"%s\"", tc->input,
					 tc->star, got, tc->expect);
		}
		free(got);
	}
}

static void
test_seqset_contains(void **state)
{
	struct seqset set;

	assert_int_equal(seqset_parse("2,4:6,9:*", 12, &set), 0);
	assert_false(seqset_contains(&set, 0));
	assert_false(seqset_contains(&set, 1));
	assert_true(seqset_contains(&set, 2));
	assert_false(seqset_contains(&set, 3));
	assert_true(seqset_contains(&set, 4));
	assert_true(seqset_contains(&set, 5));
	assert_true(seqset_contains(&set, 6));
	assert_false(seqset_contains(&set, 7));
	assert_false(seqset_contains(&set, 8));
	assert_true(seqset_contains(&set, 9));
	assert_true(seqset_contains(&set, 12));
	assert_false(seqset_contains(&set, 13));
	assert_false(seqset_contains(&set, UINT32_MAX));
	seqset_free(&set);

	/* star 0: "*" matches nothing, 0 included */
	assert_int_equal(seqset_parse("*", 0, &set), 0);
	assert_false(seqset_contains(&set, 0));
	assert_false(seqset_contains(&set, 1));
	seqset_free(&set);

	assert_int_equal(seqset_parse("4294967295", 0, &set), 0);
	assert_true(seqset_contains(&set, UINT32_MAX));
	assert_false(seqset_contains(&set, UINT32_MAX - 1));
	seqset_free(&set);

	/* a failed parse leaves an empty set that contains nothing */
	assert_int_equal(seqset_parse("1,x", 5, &set), -1);
	assert_false(seqset_contains(&set, 1));
	seqset_free(&set);
}

static void
test_seqset_add_range_merges(void **state)
{
	struct seqset set;
	struct buf out = BUF_INIT;

	i_zero(&set);
	seqset_add_range(&set, 10, 12);
	seqset_add_range(&set, 1, 1);
	seqset_add_range(&set, 5, 3); /* reversed: 3:5 */
	seqset_add_range(&set, 0, 0); /* 0 is never a member */
	seqset_add_range(&set, 20, 20);
	seqset_write(&set, &out);
	assert_string_equal(out.data, "1,3:5,10:12,20");
	assert_int_equal(set.count, 4);

	buf_reset(&out);
	seqset_add_range(&set, 6, 9); /* joins 3:5 and 10:12 */
	seqset_add_range(&set, 2, 2); /* joins 1 and 3:12 */
	seqset_write(&set, &out);
	assert_string_equal(out.data, "1:12,20");

	buf_reset(&out);
	seqset_add_range(&set, 0, 25); /* 0 clipped, swallows all */
	seqset_write(&set, &out);
	assert_string_equal(out.data, "1:25");
	assert_int_equal(set.count, 1);

	buf_reset(&out);
	seqset_add_range(&set, UINT32_MAX, UINT32_MAX - 1);
	seqset_add_range(&set, 26, 26);
	seqset_write(&set, &out);
	assert_string_equal(out.data, "1:26,4294967294:4294967295");
	seqset_free(&set);
	buf_free(&out);
}

/* Many ascending single numbers (as a SEARCH result is built) and a
   descending run stay correct and compact. */
static void
test_seqset_many_ranges(void **state)
{
	struct seqset set;

	i_zero(&set);
	for (uint32_t n = 1; n <= 20000; n += 2)
		seqset_add_range(&set, n, n);
	assert_int_equal(set.count, 10000);
	for (uint32_t n = 19998; n >= 2; n -= 2)
		seqset_add_range(&set, n, n);
	assert_int_equal(set.count, 1);
	assert_int_equal(set.ranges[0].lo, 1);
	assert_int_equal(set.ranges[0].hi, 19999);
	for (uint32_t n = 1; n <= 19999; n++)
		assert_true(seqset_contains(&set, n));
	assert_false(seqset_contains(&set, 20000));
	seqset_free(&set);
}

static void
test_seqset_write_empty(void **state)
{
	struct seqset set;
	struct buf out = BUF_INIT;

	i_zero(&set);
	buf_append_str(&out, "x");
	seqset_write(&set, &out);
	assert_string_equal(out.data, "x"); /* appends nothing */
	seqset_add_range(&set, 7, 7);
	seqset_write(&set, &out);
	assert_string_equal(out.data, "x7"); /* appends */
	seqset_free(&set);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seqset_parse_table),
		cmocka_unit_test(test_seqset_contains),
		cmocka_unit_test(test_seqset_add_range_merges),
		cmocka_unit_test(test_seqset_many_ranges),
		cmocka_unit_test(test_seqset_write_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
