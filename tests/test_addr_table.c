/* Per-address connection counts and login penalties (addr_table.h):
   the keys (IPv4, an IPv6 /64, IPv4-mapped), the limit, the doubling
   delay with its cap and its reset, and the bounded table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "addr_table.h"

#include <stdio.h>

static void
test_keys(void **state)
{
	char key[ADDR_KEY_MAX];

	(void)state;
	addr_key("192.0.2.7", key);
	assert_string_equal(key, "192.0.2.7");
	/* One /64: the same client whatever its interface identifier. */
	addr_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", key);
	assert_string_equal(key, "2001:db8:1:2::/64");
	addr_key("2001:db8:1:2::1", key);
	assert_string_equal(key, "2001:db8:1:2::/64");
	addr_key("2001:db8:1:3::1", key);
	assert_string_equal(key, "2001:db8:1:3::/64");
	addr_key("::ffff:127.0.0.2", key);
	assert_string_equal(key, "127.0.0.2");
	addr_key("::1", key);
	assert_string_equal(key, "::/64");
	addr_key("local", key);
	assert_string_equal(key, "local");
	addr_key("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", key);
	assert_string_equal(key, "ffff:ffff:ffff:ffff::/64");
}

static void
test_connection_limit(void **state)
{
	struct addr_table *t = addr_table_new();

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_true(addr_conn_add(t, "192.0.2.1", 3));
	assert_false(addr_conn_add(t, "192.0.2.1", 3));
	assert_int_equal(addr_conn_count(t, "192.0.2.1"), 3);
	/* Another address is not affected. */
	assert_true(addr_conn_add(t, "192.0.2.2", 3));
	/* A closed connection makes room. */
	addr_conn_remove(t, "192.0.2.1");
	assert_true(addr_conn_add(t, "192.0.2.1", 3));
	/* 0: no limit. */
	for (int i = 0; i < 1000; i++)
		assert_true(addr_conn_add(t, "192.0.2.3", 0));
	for (int i = 0; i < 1000; i++)
		addr_conn_remove(t, "192.0.2.3");
	assert_int_equal(addr_conn_count(t, "192.0.2.3"), 0);
	/* Removing more than was added is harmless. */
	addr_conn_remove(t, "192.0.2.3");
	addr_conn_remove(t, "192.0.2.9");
	addr_table_free(&t);
	assert_null(t);
}

static void
test_penalty_doubles_to_its_cap_and_resets(void **state)
{
	struct addr_table *t = addr_table_new();
	const unsigned want[] = { 1000, 2000, 4000, 8000, 15000, 15000 };

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(addr_login_failed(t, "192.0.2.1", 1000), want[i]);
	assert_int_equal(addr_failures(t, "192.0.2.1"), 6);
	/* Another address starts at the plain delay. */
	assert_int_equal(addr_login_failed(t, "192.0.2.2", 1000), 1000);
	/* A success forgets the failures. */
	addr_login_succeeded(t, "192.0.2.1");
	assert_int_equal(addr_failures(t, "192.0.2.1"), 0);
	assert_int_equal(addr_login_failed(t, "192.0.2.1", 1000), 1000);
	/* A base of 0 (tests, a trusted network) stays 0. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(addr_login_failed(t, "192.0.2.3", 0), 0);
	/* A base above the cap is kept as it is. */
	assert_int_equal(addr_login_failed(t, "192.0.2.4", 20000), 20000);
	assert_int_equal(addr_login_failed(t, "192.0.2.4", 20000), 20000);
	/* A small base needs more failures to reach the cap. */
	unsigned d = 0;
	for (int i = 0; i < 20; i++)
		d = addr_login_failed(t, "192.0.2.5", 100);
	assert_int_equal(d, 15000);
	addr_table_free(&t);
}

/* Past ADDR_TABLE_MAX entries, failures of new addresses are not
   remembered (the plain delay), but connections are still counted. */
static void
test_table_is_bounded(void **state)
{
	struct addr_table *t = addr_table_new();
	char key[32];

	(void)state;
	for (unsigned i = 0; i < ADDR_TABLE_MAX; i++) {
		snprintf(key, sizeof(key), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		addr_login_failed(t, key, 1000);
	}
	assert_int_equal(addr_login_failed(t, "192.0.2.1", 1000), 1000);
	assert_int_equal(addr_login_failed(t, "192.0.2.1", 1000), 1000);
	assert_int_equal(addr_failures(t, "192.0.2.1"), 0);
	/* Known addresses still count up. */
	assert_int_equal(addr_login_failed(t, "10.0.0.1", 1000), 2000);
	assert_true(addr_conn_add(t, "192.0.2.1", 1));
	assert_false(addr_conn_add(t, "192.0.2.1", 1));
	addr_table_free(&t);
}

static void
test_refusal_logged_once_per_address(void **state)
{
	struct addr_refusal_log log = { { 0 }, 0 };

	(void)state;
	assert_true(addr_refusal_log_due(&log, "192.0.2.1"));
	assert_false(addr_refusal_log_due(&log, "192.0.2.1"));
	assert_false(addr_refusal_log_due(&log, "192.0.2.1"));
	assert_true(addr_refusal_log_due(&log, "192.0.2.2"));
	assert_true(addr_refusal_log_due(&log, "192.0.2.1"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_connection_limit),
		cmocka_unit_test(test_penalty_doubles_to_its_cap_and_resets),
		cmocka_unit_test(test_table_is_bounded),
		cmocka_unit_test(test_refusal_logged_once_per_address),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
