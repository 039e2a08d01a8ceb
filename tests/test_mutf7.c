/* Modified UTF-7 mailbox names (RFC 3501 5.1.3): both directions, the
   RFC's examples, round trips, and every kind of invalid input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mutf7.h"

#include <stdlib.h>
#include <string.h>

static void
check_pair(const char *utf8, const char *mutf7)
{
	char *enc = mutf7_from_utf8(utf8), *dec = NULL;

	assert_string_equal(enc, mutf7);
	assert_int_equal(mutf7_to_utf8(mutf7, &dec), 0);
	assert_string_equal(dec, utf8);
	free(enc);
	free(dec);
}

static void
test_ascii_and_ampersand(void **state)
{
	(void)state;
	check_pair("INBOX", "INBOX");
	check_pair("a b/c~d", "a b/c~d");
	check_pair("&", "&-");
	check_pair("Tom & Jerry", "Tom &- Jerry");
	check_pair("", "");
}

static void
test_rfc3501_examples(void **state)
{
	(void)state;
	/* ~peter/mail/台北/日本語 */
	check_pair("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
		   "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	check_pair("Entw\xc3\xbcrfe", "Entw&APw-rfe");
	/* a character outside the BMP: a surrogate pair */
	check_pair("\xf0\x9f\x98\x81", "&2D3eAQ-");
	/* two non-ASCII runs separated by ASCII */
	check_pair("\xc3\xa9t\xc3\xa9", "&AOk-t&AOk-");
}

static void
test_invalid_input_is_refused(void **state)
{
	static const char *const bad[] = {
		"&",            /* not closed */
		"&Jjo",         /* not closed */
		"&AGE-",        /* encodes "a", printable ASCII */
		"&2D0-",        /* lone high surrogate */
		"&3gE-",        /* lone low surrogate */
		"&A!-",         /* not modified base64 */
		"&AOk/-",       /* "/" is "," in modified base64 */
		"&AOl-",        /* non-zero padding bits */
		"&AOkA-",       /* a partial UTF-16 unit left over */
		"caf\xc3\xa9",  /* 8-bit octets */
		"tab\there",    /* control character */
		"x\x7f",        /* DEL */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out = (char *)1;
		if (mutf7_to_utf8(bad[i], &out) == 0)
			fail_msg("accepted invalid \"%s\" as \"%s\"", bad[i], out);
		assert_null(out);
	}
}

/* In a LIST pattern an "&" that cannot begin a shift stands for itself;
   everything else is read as in a name. */
static void
test_pattern(void **state)
{
	static const struct {
		const char *in, *out; /* out NULL: refused */
	} cases[] = {
		{ "!#$&'+,-.0123456789:;<=>?@^_`|[}%*", "!#$&'+,-.0123456789:;<=>?@^_`|[}%*" },
		{ "a&", "a&" },
		{ "&*", "&*" },
		{ "& %", "& %" },
		{ "&-", "&" },
		{ "Entw&APw-*", "Entw\xc3\xbc*" },
		{ "&Jjo", NULL },
		{ "&AGE-", NULL },
		{ "&A!-", NULL },
		{ "caf\xc3\xa9", NULL },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = (char *)1;
		int ret = mutf7_pattern_to_utf8(cases[i].in, &out);

		if (cases[i].out == NULL) {
			if (ret == 0)
				fail_msg("accepted invalid \"%s\" as \"%s\"", cases[i].in, out);
			assert_null(out);
		} else {
			assert_int_equal(ret, 0);
			assert_string_equal(out, cases[i].out);
			free(out);
		}
		/* A name is read strictly. */
		if (strchr(cases[i].in, '&') != NULL && cases[i].out != NULL &&
		    strstr(cases[i].in, "&-") == NULL && strstr(cases[i].in, "&APw-") == NULL) {
			assert_int_equal(mutf7_to_utf8(cases[i].in, &out), -1);
		}
	}
}

static void
test_invalid_utf8_is_encoded_as_latin1(void **state)
{
	char *enc, *dec = NULL;

	(void)state;
	enc = mutf7_from_utf8("a\xff" "b");
	assert_string_equal(enc, "a&AP8-b");
	assert_int_equal(mutf7_to_utf8(enc, &dec), 0);
	assert_string_equal(dec, "a\xc3\xbf" "b");
	free(enc);
	free(dec);
	/* a truncated sequence at the end */
	enc = mutf7_from_utf8("x\xe5\x8f");
	assert_int_equal(mutf7_to_utf8(enc, &dec), 0);
	free(dec);
	free(enc);
}

/* Every BMP character (and some beyond) survives the round trip. */
static void
test_round_trip_all_characters(void **state)
{
	(void)state;
	for (uint32_t cp = 1; cp < 0x11000; cp += 7) {
		char s[8];
		size_t n = 0;
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		if (cp < 0x80) {
			s[n++] = (char)cp;
		} else if (cp < 0x800) {
			s[n++] = (char)(0xc0 | (cp >> 6));
			s[n++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			s[n++] = (char)(0xe0 | (cp >> 12));
			s[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			s[n++] = (char)(0x80 | (cp & 0x3f));
		} else {
			s[n++] = (char)(0xf0 | (cp >> 18));
			s[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			s[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			s[n++] = (char)(0x80 | (cp & 0x3f));
		}
		s[n++] = 'z';
		s[n] = '\0';
		char *enc = mutf7_from_utf8(s), *dec = NULL;
		for (const char *p = enc; *p != '\0'; p++)
			assert_true(*p >= 0x20 && *p <= 0x7e);
		if (mutf7_to_utf8(enc, &dec) < 0)
			fail_msg("U+%04X: %s does not decode", cp, enc);
		assert_string_equal(dec, s);
		free(enc);
		free(dec);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii_and_ampersand),
		cmocka_unit_test(test_rfc3501_examples),
		cmocka_unit_test(test_invalid_input_is_refused),
		cmocka_unit_test(test_pattern),
		cmocka_unit_test(test_invalid_utf8_is_encoded_as_latin1),
		cmocka_unit_test(test_round_trip_all_characters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
