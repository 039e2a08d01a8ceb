/* test_pam_helper.c: the messages between the server and its PAM helper
   (auth/pam_helper.h): round trips, and every malformed message refused
   before a field is trusted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "../auth/pam_helper.h"

static void
test_request_round_trip(void **state)
{
	unsigned char buf[PAM_HELPER_REQUEST_MAX];
	struct pam_helper_request req;
	uint32_t id = 0;
	size_t len;

	len = pam_helper_request_encode(buf, 77, 0, "imap", "j\xc3\xb6rg", "pa ss\x01word");
	assert_int_equal(len, PAM_HELPER_REQUEST_HDR + 4 + 5 + 10);
	assert_int_equal(pam_helper_request_decode(buf, len, &req, &id), 0);
	assert_int_equal(req.id, 77);
	assert_int_equal(id, 77);
	assert_string_equal(req.service, "imap");
	assert_string_equal(req.user, "j\xc3\xb6rg");
	assert_string_equal(req.password, "pa ss\x01word");
	pam_helper_request_clear(&req);
	assert_null(req.password);
	assert_null(req.user);
	/* An empty password is a valid request (PAM says no to it). */
	len = pam_helper_request_encode(buf, 1, 0, "imap", "alice", "");
	assert_int_equal(pam_helper_request_decode(buf, len, &req, &id), 0);
	assert_string_equal(req.password, "");
	pam_helper_request_clear(&req);
}

static void
test_request_limits_on_encode(void **state)
{
	unsigned char buf[PAM_HELPER_REQUEST_MAX];
	char big[PAM_HELPER_PASSWORD_MAX + 2];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(pam_helper_request_encode(buf, 1, 0, "imap", "alice", big), 0);
	big[PAM_HELPER_PASSWORD_MAX] = '\0';
	assert_int_equal(pam_helper_request_encode(buf, 1, 0, "imap", "alice", big),
			 PAM_HELPER_REQUEST_HDR + 4 + 5 + PAM_HELPER_PASSWORD_MAX);
	big[PAM_HELPER_USER_MAX + 1] = '\0';
	assert_int_equal(pam_helper_request_encode(buf, 1, 0, "imap", big, "pw"), 0);
	big[PAM_HELPER_USER_MAX] = '\0';
	assert_int_not_equal(pam_helper_request_encode(buf, 1, 0, "imap", big, "pw"), 0);
	assert_int_equal(pam_helper_request_encode(buf, 1, 0, "", "alice", "pw"), 0);
	assert_int_equal(pam_helper_request_encode(buf, 1, 0, "imap", "", "pw"), 0);
	assert_int_equal(pam_helper_request_encode(buf, 1, 0, NULL, "alice", "pw"), 0);
	assert_int_equal(pam_helper_request_encode(buf, 1, 0, "imap", NULL, "pw"), 0);
	assert_int_equal(pam_helper_request_encode(buf, 1, 0, "imap", "alice", NULL), 0);
}

static void
test_malformed_requests_are_refused(void **state)
{
	unsigned char buf[PAM_HELPER_REQUEST_MAX + 16], bad[PAM_HELPER_REQUEST_MAX + 16];
	struct pam_helper_request req;
	uint32_t id = 0;
	size_t len = pam_helper_request_encode(buf, 9, 0, "imap", "alice", "secret");
	uint16_t v;

	/* Every shorter prefix and a longer message. */
	for (size_t n = 0; n < len; n++)
		assert_int_equal(pam_helper_request_decode(buf, n, &req, &id), -1);
	buf[len] = 'x';
	assert_int_equal(pam_helper_request_decode(buf, len + 1, &req, &id), -1);
	assert_int_equal(id, 9);        /* the id is known for the answer */
	/* A NUL inside a field. */
	memcpy(bad, buf, len);
	bad[len - 3] = '\0';
	assert_int_equal(pam_helper_request_decode(bad, len, &req, &id), -1);
	assert_null(req.password);
	/* Lengths that do not add up or break the limits. */
	memcpy(bad, buf, len);
	v = 0;
	memcpy(bad + 4, &v, 2);         /* empty service */
	assert_int_equal(pam_helper_request_decode(bad, len, &req, &id), -1);
	memcpy(bad, buf, len);
	v = 0xffff;
	memcpy(bad + 8, &v, 2);         /* password length past the end */
	assert_int_equal(pam_helper_request_decode(bad, len, &req, &id), -1);
	memcpy(bad, buf, len);
	v = 300;
	memcpy(bad + 6, &v, 2);         /* user longer than the limit */
	assert_int_equal(pam_helper_request_decode(bad, len, &req, &id), -1);
	assert_int_equal(pam_helper_request_decode(buf, PAM_HELPER_REQUEST_MAX + 1, &req, &id),
			 -1);
	/* The intact one still decodes. */
	assert_int_equal(pam_helper_request_decode(buf, len, &req, &id), 0);
	pam_helper_request_clear(&req);
}

static void
test_reply_round_trip_and_refusals(void **state)
{
	unsigned char buf[PAM_HELPER_REPLY_MAX + 8];
	char long_reason[400];
	enum auth_result res;
	char *reason;
	uint32_t id;
	size_t len;

	len = pam_helper_reply_encode(buf, 5, AUTH_FAIL, "pam_authenticate: bad\npassword");
	assert_int_equal(pam_helper_reply_decode(buf, len, &id, &res, &reason), 0);
	assert_int_equal(id, 5);
	assert_int_equal(res, AUTH_FAIL);
	assert_string_equal(reason, "pam_authenticate: bad?password");     /* no control chars */
	free(reason);
	len = pam_helper_reply_encode(buf, 6, AUTH_OK, NULL);
	assert_int_equal(len, PAM_HELPER_REPLY_HDR);
	assert_int_equal(pam_helper_reply_decode(buf, len, &id, &res, &reason), 0);
	assert_int_equal(res, AUTH_OK);
	assert_null(reason);
	/* A long reason is cut to the limit. */
	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	len = pam_helper_reply_encode(buf, 7, AUTH_TEMPFAIL, long_reason);
	assert_int_equal(len, PAM_HELPER_REPLY_MAX);
	assert_int_equal(pam_helper_reply_decode(buf, len, &id, &res, &reason), 0);
	assert_int_equal(strlen(reason), PAM_HELPER_REASON_MAX);
	free(reason);
	/* Truncated, too long, unknown result, NUL in the reason. */
	len = pam_helper_reply_encode(buf, 8, AUTH_FAIL, "why");
	for (size_t n = 0; n < len; n++)
		assert_int_equal(pam_helper_reply_decode(buf, n, &id, &res, &reason), -1);
	assert_int_equal(pam_helper_reply_decode(buf, len + 1, &id, &res, &reason), -1);
	uint32_t r = 3;
	memcpy(buf + 4, &r, 4);
	assert_int_equal(pam_helper_reply_decode(buf, len, &id, &res, &reason), -1);
	r = AUTH_FAIL;
	memcpy(buf + 4, &r, 4);
	buf[PAM_HELPER_REPLY_HDR + 1] = '\0';
	assert_int_equal(pam_helper_reply_decode(buf, len, &id, &res, &reason), -1);
	assert_null(reason);
}

/* auth.min_uid: root and the system accounts of every Debian machine are
   refused before PAM runs; 0 lets everyone through to PAM; an unknown
   name is PAM's to judge. */
static void
test_system_accounts(void **state)
{
	char *reason = NULL;

	assert_true(pam_helper_system_account("root", 1000, &reason));
	assert_non_null(strstr(reason, "a system account (uid 0, below auth.min_uid 1000)"));
	free(reason);
	reason = NULL;
	assert_true(pam_helper_system_account("daemon", 1000, &reason));
	free(reason);
	reason = NULL;
	assert_false(pam_helper_system_account("root", 0, &reason));
	assert_false(pam_helper_system_account("no-such-user-here", 1000, &reason));
	assert_false(pam_helper_system_account("daemon", 1, &reason));
	assert_null(reason);
}

/* min_uid travels to the helper with each request. */
static void
test_request_carries_min_uid(void **state)
{
	unsigned char buf[PAM_HELPER_REQUEST_MAX];
	struct pam_helper_request req;
	uint32_t id = 0;
	size_t len = pam_helper_request_encode(buf, 5, 1234, "imap", "alice", "pw");

	assert_int_equal(pam_helper_request_decode(buf, len, &req, &id), 0);
	assert_int_equal(req.min_uid, 1234);
	assert_string_equal(req.user, "alice");
	pam_helper_request_clear(&req);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_system_accounts),
		cmocka_unit_test(test_request_carries_min_uid),
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_request_limits_on_encode),
		cmocka_unit_test(test_malformed_requests_are_refused),
		cmocka_unit_test(test_reply_round_trip_and_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
