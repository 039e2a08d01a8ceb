/* test_basesubject.c: the base subject of RFC 5256 section 2.1, step by
   step, as SORT SUBJECT and THREAD compare it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "basesubject.h"

static void
expect(const char *subject, const char *base, bool reply)
{
	struct buf out = BUF_INIT;
	bool is_reply = !reply;

	base_subject(subject, strlen(subject), &out, &is_reply);
	assert_string_equal(out.data != NULL ? out.data : "", base);
	if (is_reply != reply)
		fail_msg("'%s': is_reply %d, expected %d", subject, is_reply, reply);
	buf_free(&out);
}

static void
test_plain_and_blanks(void **state)
{
	expect("Hello world", "Hello world", false);
	/* Step 1: folding and runs of blanks are one space. */
	expect("Hello\r\n\t  world  ", "Hello world", false);
	expect("", "", false);
	expect("   ", "", false);
}

static void
test_reply_and_forward_leaders(void **state)
{
	expect("Re: Hello", "Hello", true);
	expect("RE: re: Fwd: Hello", "Hello", true);
	expect("Fw: Hello", "Hello", true);
	expect("Re[2]: Hello", "Hello", true);
	expect("Re [list]: Hello", "Hello", true);
	/* A blob before "Re:" goes with it (step 3); a leading blob alone
	   goes if something is left (step 4). */
	expect("[list] Re: Hello", "Hello", true);
	expect("[list] Hello", "Hello", false);
	expect("[list]", "[list]", false);
	/* "Re" without its colon is part of the subject. */
	expect("Reply needed", "Reply needed", false);
	expect("Regarding: x", "Regarding: x", false);
}

static void
test_trailers_and_forward_wrappers(void **state)
{
	/* Step 2 */
	expect("Hello (fwd)", "Hello", true);
	expect("Hello (FWD) (fwd)  ", "Hello", true);
	/* Step 6: "[Fwd: ...]", and the steps again inside. */
	expect("[Fwd: Re: Hello]", "Hello", true);
	expect("[fwd: [fwd: Hello (fwd)]]", "Hello", true);
}

static void
test_encoded_words(void **state)
{
	expect("=?utf-8?q?Re=3A_caf=C3=A9?=", "caf\xc3\xa9", true);
	expect("=?iso-8859-1?q?Gr=FC=DFe?= aus Berlin", "Gr\xc3\xbc\xc3\x9f" "e aus Berlin",
	       false);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_and_blanks),
		cmocka_unit_test(test_reply_and_forward_leaders),
		cmocka_unit_test(test_trailers_and_forward_wrappers),
		cmocka_unit_test(test_encoded_words),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
