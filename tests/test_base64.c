/* base64: the strict decoder (SASL), the lenient one (MIME bodies), the
   encoded-word one (RFC 2047) and the encoder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base64.h"

static void
test_round_trip_every_length(void **state)
{
	unsigned char data[64];
	struct buf enc = BUF_INIT, dec = BUF_INIT;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 37 + 1);
	for (size_t len = 0; len <= sizeof(data); len++) {
		buf_reset(&enc);
		buf_reset(&dec);
		base64_encode(data, len, &enc);
		assert_int_equal(enc.len % 4, 0);
		assert_int_equal(base64_decode(enc.data, enc.len, &dec), 0);
		assert_int_equal(dec.len, len);
		assert_memory_equal(dec.data, data, len);
	}
	buf_free(&enc);
	buf_free(&dec);
}

static void
test_strict_refuses_bad_input(void **state)
{
	static const char *const bad[] = { "AGFs", "=AAA", "AA=A", "AB", "A?==", "AAAA=AAA",
					   "AA\r\nAA" };
	struct buf out = BUF_INIT;

	/* "AGFs" is fine; the rest are not. */
	assert_int_equal(base64_decode(bad[0], 4, &out), 0);
	for (size_t i = 1; i < N_ELEMENTS(bad); i++) {
		buf_reset(&out);
		assert_int_equal(base64_decode(bad[i], strlen(bad[i]), &out), -1);
	}
	/* SASL PLAIN "\0alice\0alice123". */
	buf_reset(&out);
	assert_int_equal(base64_decode("AGFsaWNlAGFsaWNlMTIz", 20, &out), 0);
	assert_int_equal(out.len, 15);
	assert_memory_equal(out.data, "\0alice\0alice123", 15);
	buf_free(&out);
}

static void
test_lenient_skips_line_ends_and_joined_padding(void **state)
{
	struct buf out = BUF_INIT;
	const char *body = "SGVs\r\nbG8g\r\nd29y bGQ=\r\nIQ==\r\n";

	base64_decode_lenient(body, strlen(body), &out);
	assert_string_equal(out.data, "Hello world!");
	buf_reset(&out);
	/* Truncated: decodes as far as it goes. */
	base64_decode_lenient("SGVsbG", 6, &out);
	assert_string_equal(out.data, "Hell");
	buf_free(&out);
}

static void
test_word_decoder_stops_at_padding_refuses_junk(void **state)
{
	struct buf out = BUF_INIT;

	assert_int_equal(base64_decode_word("w6l0w6k=", 8, &out), 0);
	assert_string_equal(out.data, "\xc3\xa9t\xc3\xa9");
	buf_reset(&out);
	assert_int_equal(base64_decode_word("w6 l0", 5, &out), -1);
	assert_int_equal(base64_value('A'), 0);
	assert_int_equal(base64_value('/'), 63);
	assert_int_equal(base64_value('='), -1);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_every_length),
		cmocka_unit_test(test_strict_refuses_bad_input),
		cmocka_unit_test(test_lenient_skips_line_ends_and_joined_padding),
		cmocka_unit_test(test_word_decoder_stops_at_padding_refuses_junk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
