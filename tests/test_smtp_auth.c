/* test_smtp_auth.c: STARTTLS (RFC 3207), AUTH PLAIN and LOGIN (RFC 4954)
   and the submission rules (RFC 6409) of the SMTP engine
   (core/smtp/smtp.c, core/smtp/smtp_auth.c), without sockets, through the
   harness of smtp_harness.h (every script fed four ways). */
#include "smtp_harness.h"

#include "base64.h"

#define EHLO_STARTTLS                                                              \
	"250-localhost\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n250-PIPELINING\r\n" \
	"250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_AUTH                                                                  \
	"250-localhost\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n250-PIPELINING\r\n" \
	"250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_STARTTLS_AUTH                                                         \
	"250-localhost\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n250-PIPELINING\r\n" \
	"250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n"
/* base64 of "\0alice\0alice123", "alice", "alice123", "\0alice\0wrong" */
#define B64_PLAIN_ALICE "AGFsaWNlAGFsaWNlMTIz"
#define B64_ALICE "YWxpY2U="
#define B64_ALICE123 "YWxpY2UxMjM="
#define B64_PLAIN_WRONG "AGFsaWNlAHdyb25n"

static void
test_port_reset(void)
{
	i_zero(&test_port);
}

static void
test_starttls_is_offered_once_and_resets_the_session(void **state)
{
	struct harness h;

	(void)state;
	test_port.starttls = true;
	RUN(&h,
	    "EHLO c\r\n"
	    "STARTTLS now\r\n"
	    "STARTTLS\r\n"
	    /* RFC 3207 4.2: the EHLO before TLS is forgotten. */
	    "MAIL FROM:<bob@example.org>\r\n"
	    "EHLO c\r\n"
	    "STARTTLS\r\n"
	    "MAIL FROM:<bob@example.org>\r\n"
	    "RCPT TO:<alice@localhost>\r\n"
	    "DATA\r\n"
	    "hi\r\n"
	    ".\r\n",
	    EHLO_STARTTLS "501 5.5.4 Syntax: STARTTLS\r\n"
			  "220 2.0.0 Ready to start TLS\r\n"
			  "503 5.5.1 Error: send HELO/EHLO first\r\n" EHLO_REPLY
			  "503 5.5.1 Error: TLS already active\r\n"
			  "250 2.1.0 Ok\r\n"
			  "250 2.1.5 Ok\r\n"
			  "354 End data with <CR><LF>.<CR><LF>\r\n"
			  "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n");
	assert_int_equal(h.starttls_events, 1);
	assert_true(smtp_session_is_tls(h.s));
	assert_string_equal(after_trace(&h.deliveries[0], "bob@example.org", "c", "ESMTPS",
					"alice@localhost"),
			    "hi\r\n");
	harness_deinit(&h);
	test_port_reset();
}

static void
test_starttls_refused_inside_a_transaction(void **state)
{
	struct harness h;

	(void)state;
	test_port.starttls = true;
	RUN(&h,
	    "EHLO c\r\n"
	    "MAIL FROM:<bob@example.org>\r\n"
	    "STARTTLS\r\n"
	    "RSET\r\n"
	    "STARTTLS\r\n",
	    EHLO_STARTTLS "250 2.1.0 Ok\r\n"
			  "503 5.5.1 Error: MAIL transaction in progress\r\n"
			  "250 2.0.0 Ok\r\n"
			  "220 2.0.0 Ready to start TLS\r\n");
	harness_deinit(&h);
	test_port_reset();
}

/* The CVE-2011-0411 class: the engine stops right after STARTTLS, so the
   commands pipelined behind it in clear are left for the caller to drop,
   never answered. */
static void
test_starttls_consumes_nothing_pipelined_behind_it(void **state)
{
	struct harness h;
	const char *in = "EHLO c\r\nSTARTTLS\r\nRSET\r\nMAIL FROM:<bob@example.org>\r\n";
	size_t consumed, again, before;

	(void)state;
	test_port.starttls = true;
	harness_init(&h, 26214400, 100, "localhost");
	harness_start(&h);
	assert_int_equal(smtp_session_feed(h.s, in, strlen(in), &consumed, &h.out),
			 SMTP_EVENT_STARTTLS);
	assert_int_equal(consumed, strlen("EHLO c\r\nSTARTTLS\r\n"));
	before = h.out.len;
	assert_int_equal(smtp_session_feed(h.s, in + consumed, strlen(in) - consumed, &again,
					   &h.out),
			 SMTP_EVENT_STARTTLS);
	assert_int_equal(again, 0);
	assert_int_equal(h.out.len, before);
	assert_false(smtp_session_is_tls(h.s));
	smtp_session_starttls_answer(h.s, &h.out);
	assert_string_equal(h.out.data, EHLO_STARTTLS "220 2.0.0 Ready to start TLS\r\n");
	assert_true(smtp_session_is_tls(h.s));
	/* What comes through TLS is a new session: EHLO first. */
	feed(&h, "MAIL FROM:<bob@example.org>\r\n", 29, 0);
	assert_non_null(strstr(h.out.data, "220 2.0.0 Ready to start TLS\r\n"
					   "503 5.5.1 Error: send HELO/EHLO first\r\n"));
	harness_deinit(&h);
	test_port_reset();
}

static void
test_auth_plain_and_login_with_and_without_initial_response(void **state)
{
	static const char *const scripts[][2] = {
		{ "AUTH PLAIN " B64_PLAIN_ALICE "\r\n", "235 2.7.0 Authentication successful\r\n" },
		{ "AUTH plain\r\n" B64_PLAIN_ALICE "\r\n",
		  "334 \r\n235 2.7.0 Authentication successful\r\n" },
		{ "AUTH LOGIN\r\n" B64_ALICE "\r\n" B64_ALICE123 "\r\n",
		  "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n" },
		{ "AUTH LOGIN " B64_ALICE "\r\n" B64_ALICE123 "\r\n",
		  "334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n" },
	};
	struct harness h;

	(void)state;
	test_port.submission = true;
	test_port.tls = true;
	for (size_t i = 0; i < N_ELEMENTS(scripts); i++) {
		char *in = xasprintf("EHLO c\r\n%sAUTH PLAIN " B64_PLAIN_ALICE "\r\n"
				     "MAIL FROM:<alice@localhost>\r\n"
				     "RCPT TO:<bob@localhost>\r\n"
				     "DATA\r\n"
				     "hi\r\n"
				     ".\r\n",
				     scripts[i][0]);
		char *want = xasprintf(EHLO_AUTH "%s"
						 "503 5.5.1 Error: already authenticated\r\n"
						 "250 2.1.0 Ok\r\n"
						 "250 2.1.5 Ok\r\n"
						 "354 End data with <CR><LF>.<CR><LF>\r\n"
						 "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n",
				       scripts[i][1]);

		RUN(&h, in, want);
		assert_int_equal(h.auth_events, 1);
		assert_string_equal(h.last_auth_user, "alice");
		assert_string_equal(smtp_session_user(h.s), "alice");
		assert_string_equal(after_trace(&h.deliveries[0], "alice@localhost", "c", "ESMTPSA",
						"bob@localhost"),
				    "hi\r\n");
		harness_deinit(&h);
		free(in);
		free(want);
	}
	test_port_reset();
}

static void
test_auth_cancel_bad_base64_and_bad_responses_get_501(void **state)
{
	struct harness h;

	(void)state;
	test_port.submission = true;
	test_port.tls = true;
	RUN(&h,
	    "EHLO c\r\n"
	    /* Implicit TLS: there is nothing to start. */
	    "STARTTLS\r\n"
	    "AUTH LOGIN\r\n*\r\n"
	    "AUTH PLAIN\r\n*\r\n"
	    "AUTH PLAIN !!!!\r\n"
	    "AUTH LOGIN\r\nYW=xp\r\n"
	    "AUTH PLAIN =\r\n"
	    "AUTH PLAIN YWxpY2U=\r\n"
	    "AUTH PLAIN Ym9iAGFsaWNlAGFsaWNlMTIz\r\n"
	    "AUTH CRAM-MD5\r\n"
	    "AUTH\r\n"
	    "AUTH PLAIN a b\r\n"
	    "MAIL FROM:<alice@localhost>\r\n",
	    EHLO_AUTH "503 5.5.1 Error: TLS already active\r\n"
		      "334 VXNlcm5hbWU6\r\n501 5.7.0 Authentication aborted\r\n"
		      "334 \r\n501 5.7.0 Authentication aborted\r\n"
		      "501 5.5.2 Cannot decode response\r\n"
		      "334 VXNlcm5hbWU6\r\n501 5.5.2 Cannot decode response\r\n"
		      "501 5.5.2 Invalid PLAIN response\r\n"
		      "501 5.5.2 Invalid PLAIN response\r\n"
		      "535 5.7.8 Authorization identity differs from the login\r\n"
		      "504 5.5.4 Unrecognized authentication type\r\n"
		      "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"
		      "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"
		      "530 5.7.0 Authentication required\r\n");
	assert_int_equal(h.auth_events, 0);
	harness_deinit(&h);
	test_port_reset();
}

static void
test_auth_failures_535_tempfail_454_and_the_third_failure_closes(void **state)
{
	struct harness h;

	(void)state;
	test_port.submission = true;
	test_port.tls = true;
	RUN(&h,
	    "EHLO c\r\n"
	    "AUTH PLAIN " B64_PLAIN_WRONG "\r\n"
	    "AUTH PLAIN AGRvd24AeA==\r\n"
	    "AUTH LOGIN " B64_ALICE "\r\nd3Jvbmc=\r\n"
	    "AUTH PLAIN " B64_PLAIN_WRONG "\r\n"
	    "AUTH PLAIN " B64_PLAIN_ALICE "\r\n",
	    EHLO_AUTH "535 5.7.8 Authentication credentials invalid\r\n"
		      "454 4.7.0 Temporary authentication failure\r\n"
		      "334 UGFzc3dvcmQ6\r\n535 5.7.8 Authentication credentials invalid\r\n"
		      "535 5.7.8 Authentication credentials invalid\r\n"
		      "421 4.7.0 localhost Error: too many failed authentications\r\n");
	assert_true(h.closed);
	assert_null(smtp_session_user(h.s));
	harness_deinit(&h);
	test_port_reset();
}

static void
test_auth_before_tls_only_where_plaintext_is_allowed(void **state)
{
	struct harness h;

	(void)state;
	test_port.submission = true;
	test_port.starttls = true;
	/* Not offered, and refused with 538, before TLS... */
	RUN(&h,
	    "EHLO c\r\n"
	    "AUTH PLAIN " B64_PLAIN_ALICE "\r\n"
	    "AUTH LOGIN\r\n"
	    "STARTTLS\r\n"
	    "EHLO c\r\n"
	    "AUTH PLAIN " B64_PLAIN_ALICE "\r\n",
	    EHLO_STARTTLS "538 5.7.11 Encryption required for requested authentication "
			  "mechanism\r\n"
			  "538 5.7.11 Encryption required for requested authentication "
			  "mechanism\r\n"
			  "220 2.0.0 Ready to start TLS\r\n" EHLO_AUTH
			  "235 2.7.0 Authentication successful\r\n");
	assert_int_equal(h.auth_events, 1);
	harness_deinit(&h);
	/* ...unless auth.plaintext allows it for this peer (loopback). */
	test_port.plaintext_auth = true;
	RUN(&h,
	    "EHLO c\r\n"
	    "AUTH PLAIN " B64_PLAIN_ALICE "\r\n"
	    "MAIL FROM:<alice@localhost>\r\n"
	    "RCPT TO:<alice@localhost>\r\n"
	    "DATA\r\n"
	    "hi\r\n"
	    ".\r\n"
	    /* STARTTLS forgets the login too. */
	    "STARTTLS\r\n"
	    "EHLO c\r\n"
	    "MAIL FROM:<alice@localhost>\r\n",
	    EHLO_STARTTLS_AUTH "235 2.7.0 Authentication successful\r\n"
			       "250 2.1.0 Ok\r\n"
			       "250 2.1.5 Ok\r\n"
			       "354 End data with <CR><LF>.<CR><LF>\r\n"
			       "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n"
			       "220 2.0.0 Ready to start TLS\r\n" EHLO_AUTH
			       "530 5.7.0 Authentication required\r\n");
	assert_string_equal(after_trace(&h.deliveries[0], "alice@localhost", "c", "ESMTPA",
					"alice@localhost"),
			    "hi\r\n");
	harness_deinit(&h);
	/* The receiver port has no AUTH at all. */
	test_port.submission = false;
	RUN(&h, "EHLO c\r\nAUTH PLAIN " B64_PLAIN_ALICE "\r\n",
	    EHLO_STARTTLS "502 5.5.1 Error: command not implemented\r\n");
	harness_deinit(&h);
	test_port_reset();
}

static void
test_submission_needs_auth_the_users_own_sender_and_local_recipients(void **state)
{
	struct harness h;

	(void)state;
	test_port.submission = true;
	test_port.tls = true;
	RUN(&h,
	    "EHLO c\r\n"
	    "MAIL FROM:<alice@localhost>\r\n"
	    "AUTH PLAIN " B64_PLAIN_ALICE "\r\n"
	    "MAIL FROM:<bob@localhost>\r\n"
	    "MAIL FROM:<>\r\n"
	    "MAIL FROM:<alice@example.org>\r\n"
	    "MAIL FROM:<Alice@localhost>\r\n"
	    "MAIL FROM:<alice@LocalHost> AUTH=<alice@localhost>\r\n"
	    "RCPT TO:<carol@example.org>\r\n"
	    "RCPT TO:<nobody@localhost>\r\n"
	    "RCPT TO:<bob@localhost>\r\n"
	    "DATA\r\n"
	    "hi\r\n"
	    ".\r\n",
	    EHLO_AUTH "530 5.7.0 Authentication required\r\n"
		      "235 2.7.0 Authentication successful\r\n"
		      "553 5.7.1 Sender address rejected: not owned by user alice\r\n"
		      "553 5.7.1 Sender address rejected: not owned by user alice\r\n"
		      "553 5.7.1 Sender address rejected: not owned by user alice\r\n"
		      "553 5.7.1 Sender address rejected: not owned by user alice\r\n"
		      "250 2.1.0 Ok\r\n"
		      "550 5.7.1 Relaying denied: this server delivers to local users only\r\n"
		      "550 5.1.1 <nobody@localhost>: Recipient address rejected: User unknown\r\n"
		      "250 2.1.5 Ok\r\n"
		      "354 End data with <CR><LF>.<CR><LF>\r\n"
		      "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n");
	assert_int_equal(h.delivery_count, 1);
	assert_string_equal(h.deliveries[0].from, "alice@LocalHost");
	harness_deinit(&h);
	test_port_reset();
}

static void
test_auth_lines_may_be_long_but_bounded(void **state)
{
	struct harness h;
	struct buf raw = BUF_INIT, in = BUF_INIT, want = BUF_INIT;

	(void)state;
	test_port.submission = true;
	test_port.tls = true;
	/* A 1000-octet password makes an AUTH line over 512 octets. */
	buf_append(&raw, "\0alice\0", 7);
	for (int i = 0; i < 1000; i++)
		buf_append_c(&raw, 'p');
	buf_append_str(&in, "EHLO c\r\nAUTH PLAIN ");
	base64_encode(raw.data, raw.len, &in);
	buf_append_str(&in, "\r\nAUTH LOGIN\r\n");
	for (int i = 0; i < SMTP_AUTH_LINE_MAX; i++)
		buf_append_c(&in, 'Q');
	buf_append_str(&in, "\r\nNOOP\r\n");
	buf_append_str(&want, EHLO_AUTH "535 5.7.8 Authentication credentials invalid\r\n"
					"334 VXNlcm5hbWU6\r\n"
					"500 5.5.6 Authentication exchange line is too long\r\n"
					"250 2.0.0 Ok\r\n");
	run_script(&h, 26214400, 100, "localhost", in.data, in.len, want.data);
	assert_int_equal(h.auth_events, 1);
	harness_deinit(&h);
	buf_free(&raw);
	buf_free(&in);
	buf_free(&want);
	test_port_reset();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_starttls_is_offered_once_and_resets_the_session),
		cmocka_unit_test(test_starttls_refused_inside_a_transaction),
		cmocka_unit_test(test_starttls_consumes_nothing_pipelined_behind_it),
		cmocka_unit_test(test_auth_plain_and_login_with_and_without_initial_response),
		cmocka_unit_test(test_auth_cancel_bad_base64_and_bad_responses_get_501),
		cmocka_unit_test(test_auth_failures_535_tempfail_454_and_the_third_failure_closes),
		cmocka_unit_test(test_auth_before_tls_only_where_plaintext_is_allowed),
		cmocka_unit_test(
			test_submission_needs_auth_the_users_own_sender_and_local_recipients),
		cmocka_unit_test(test_auth_lines_may_be_long_but_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
