/* test_smtp.c: the SMTP protocol engine (core/smtp/smtp.c), without sockets,
   through the harness of smtp_harness.h (every script fed four ways). */
#include "smtp_harness.h"

#include "auth.h"
#include "registry.h"

#include <unistd.h>

static void
test_greeting_and_ehlo_advertise_the_extensions(void **state)
{
	struct harness h;

	(void)state;
	RUN(&h, "EHLO client.example\r\n", EHLO_REPLY);
	harness_deinit(&h);
	run_script(&h, 1048576, 100, "mail.example,localhost", "EHLO c\r\n", 8,
		   "250-mail.example\r\n250-SIZE 1048576\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
		   "250 ENHANCEDSTATUSCODES\r\n");
	harness_deinit(&h);
}

static void
test_transaction_stores_the_message_with_trace_headers(void **state)
{
	struct harness h;
	const char *input = "EHLO client.example\r\n"
			    "MAIL FROM:<bob@example.org>\r\n"
			    "RCPT TO:<alice@localhost>\r\n"
			    "DATA\r\n"
			    "From: bob@example.org\r\n"
			    "To: alice@localhost\r\n"
			    "Subject: hi\r\n"
			    "\r\n"
			    "body\r\n"
			    ".\r\n"
			    "QUIT\r\n";

	(void)state;
	RUN(&h, input,
	    EHLO_REPLY "250 2.1.0 Ok\r\n"
		       "250 2.1.5 Ok\r\n"
		       "354 End data with <CR><LF>.<CR><LF>\r\n"
		       "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n"
		       "221 2.0.0 Bye\r\n");
	assert_true(h.closed);
	assert_int_equal(h.delivery_count, 1);
	assert_string_equal(h.deliveries[0].from, "bob@example.org");
	assert_int_equal(h.deliveries[0].users.count, 1);
	assert_string_equal(h.deliveries[0].users.items[0], "alice");
	assert_string_equal(after_trace(&h.deliveries[0], "bob@example.org", "client.example",
					"ESMTP", "alice@localhost"),
			    "From: bob@example.org\r\nTo: alice@localhost\r\nSubject: hi\r\n"
			    "\r\nbody\r\n");
	harness_deinit(&h);
}

static void
test_helo_uses_smtp_and_refuses_mail_parameters(void **state)
{
	struct harness h;

	(void)state;
	RUN(&h,
	    "HELO old.client\r\n"
	    "MAIL FROM:<a@b.c> SIZE=10\r\n"
	    "MAIL FROM:<>\r\n"
	    "RCPT TO:<alice@localhost>\r\n"
	    "RCPT TO:<bob@localhost>\r\n"
	    "DATA\r\n"
	    "x\r\n"
	    ".\r\n",
	    "250 localhost\r\n"
	    "555 5.5.4 MAIL parameters need EHLO\r\n"
	    "250 2.1.0 Ok\r\n"
	    "250 2.1.5 Ok\r\n"
	    "250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n");
	assert_int_equal(h.delivery_count, 1);
	/* Null reverse-path; two recipients: no "for" clause. */
	assert_string_equal(h.deliveries[0].from, "");
	assert_int_equal(h.deliveries[0].users.count, 2);
	assert_string_equal(h.deliveries[0].users.items[1], "bob");
	assert_string_equal(after_trace(&h.deliveries[0], "", "old.client", "SMTP", NULL), "x\r\n");
	harness_deinit(&h);
}

static void
test_dot_unstuffing_keeps_every_dot_line(void **state)
{
	struct harness h;

	(void)state;
	/* The lab's layout: header lines then the body, no blank line. */
	RUN(&h,
	    "EHLO c\r\nMAIL FROM:<bob@localhost>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n"
	    "From: bob@localhost\r\nTo: alice@localhost\r\nSubject: dots\r\n"
	    "..\r\n"
	    "..x\r\n"
	    "...\r\n"
	    ". \r\n"
	    "a.\r\n"
	    ".\r\n",
	    EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		       "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n");
	assert_int_equal(h.delivery_count, 1);
	assert_string_equal(after_trace(&h.deliveries[0], "bob@localhost", "c", "ESMTP",
					"alice@localhost"),
			    "From: bob@localhost\r\nTo: alice@localhost\r\nSubject: dots\r\n"
			    ".\r\n.x\r\n..\r\n \r\na.\r\n");
	harness_deinit(&h);
}

static void
test_pipelined_commands_are_answered_in_order(void **state)
{
	struct harness h;

	(void)state;
	/* One buffer, as a PIPELINING client sends it: the events stop the
	   feed and the rest is fed again, nothing is lost. */
	RUN(&h,
	    "EHLO c\r\n"
	    "MAIL FROM:<bob@localhost> SIZE=20 BODY=8BITMIME\r\n"
	    "RCPT TO:<nobody@localhost>\r\n"
	    "RCPT TO:<alice@elsewhere.example>\r\n"
	    "RCPT TO:<alice@localhost>\r\n"
	    "RCPT TO:<slow@localhost>\r\n"
	    "DATA\r\n"
	    "one\r\n"
	    ".\r\n"
	    "MAIL FROM:<bob@localhost>\r\n"
	    "RCPT TO:<bob@LOCALHOST>\r\n"
	    "DATA\r\n"
	    "two\r\n"
	    ".\r\n"
	    "NOOP\r\n"
	    "QUIT\r\n"
	    "NOOP\r\n",
	    EHLO_REPLY "250 2.1.0 Ok\r\n"
		       "550 5.1.1 <nobody@localhost>: Recipient address rejected: User unknown\r\n"
		       "550 5.7.1 <alice@elsewhere.example>: Relay access denied\r\n"
		       "250 2.1.5 Ok\r\n"
		       "451 4.3.0 <slow@localhost>: Temporary failure looking up the recipient; "
		       "try again later\r\n"
		       "354 End data with <CR><LF>.<CR><LF>\r\n"
		       "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n"
		       "250 2.1.0 Ok\r\n"
		       "250 2.1.5 Ok\r\n"
		       "354 End data with <CR><LF>.<CR><LF>\r\n"
		       "250 2.0.0 Ok: delivered as " PREFIX ".2\r\n"
		       "250 2.0.0 Ok\r\n"
		       "221 2.0.0 Bye\r\n");
	assert_true(h.closed);
	assert_int_equal(h.delivery_count, 2);
	assert_int_equal(h.deliveries[0].users.count, 1);
	assert_string_equal(h.deliveries[0].users.items[0], "alice");
	assert_string_equal(h.deliveries[1].users.items[0], "bob");
	/* Unknown, local and temp-failed recipients were looked up; the
	   relay attempt never reached the lookup. */
	assert_int_equal(h.rcpt_events, 4);
	harness_deinit(&h);
}

static void
test_bad_sequence_gets_503(void **state)
{
	struct harness h;

	(void)state;
	RUN(&h,
	    "MAIL FROM:<a@b.c>\r\n"
	    "RCPT TO:<alice@localhost>\r\n"
	    "DATA\r\n"
	    "EHLO c\r\n"
	    "RCPT TO:<alice@localhost>\r\n"
	    "DATA\r\n"
	    "MAIL FROM:<a@b.c>\r\n"
	    "MAIL FROM:<a@b.c>\r\n"
	    "DATA\r\n",
	    "503 5.5.1 Error: send HELO/EHLO first\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n" EHLO_REPLY
	    "503 5.5.1 Error: need MAIL command\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n"
	    "250 2.1.0 Ok\r\n"
	    "503 5.5.1 Error: nested MAIL command\r\n"
	    "554 5.5.1 Error: no valid recipients\r\n");
	assert_int_equal(h.delivery_count, 0);
	harness_deinit(&h);
}

static void
test_syntax_errors_get_500_501_555(void **state)
{
	struct harness h;
	static const char input[] = "FOO bar\r\n"
				    "\r\n"
				    "EHLO\r\n"
				    "HELO two words\r\n"
				    "EHLO c\r\n"
				    "MAIL <a@b.c>\r\n"
				    "MAIL FROM:a@b.c\r\n"
				    "MAIL FROM:<a b@c.d>\r\n"
				    "MAIL FROM:<a@b.c> SIZE=abc\r\n"
				    "MAIL FROM:<a@b.c> BODY=BINARYMIME\r\n"
				    "MAIL FROM:<a@b.c> FOO=1\r\n"
				    "MAIL FROM:<a@b.c>x\r\n"
				    "MAIL FROM:<a@-b.c>\r\n"
				    "MAIL FROM:<a..b@c.d>\r\n"
				    "MAIL FROM:<a@b.c\r\n"
				    "MAIL FROM: <a@b.c>\r\n"
				    "RCPT TO:<alice>\r\n"
				    "RCPT TO:<@relay.example:alice@localhost>\r\n"
				    "RCPT TO:<alice@localhost> NOTIFY=NEVER\r\n"
				    "RCPT alice@localhost\r\n"
				    "RSET now\r\n"
				    "QUIT now\r\n"
				    "VRFY\r\n"
				    "DATA now\r\n"
				    "NOOP with text\r\n"
				    "BAD\0CMD\r\n";

	(void)state;
	test_max_bad = 1000;
	run_script(&h, 26214400, 100, "localhost", input, sizeof(input) - 1,
		   "500 5.5.1 Error: command not recognized\r\n"
		   "500 5.5.2 Error: bad syntax\r\n"
		   "501 Syntax: EHLO hostname\r\n"
		   "501 Syntax: HELO hostname\r\n" EHLO_REPLY
		   "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
		   "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
		   "501 5.1.7 Bad sender address syntax\r\n"
		   "501 5.5.4 Bad SIZE parameter\r\n"
		   "501 5.5.4 Bad BODY parameter\r\n"
		   "555 5.5.4 Unsupported MAIL parameter FOO\r\n"
		   "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]\r\n"
		   "501 5.1.7 Bad sender address syntax\r\n"
		   "501 5.1.7 Bad sender address syntax\r\n"
		   "501 5.1.7 Bad sender address syntax\r\n"
		   /* lenient: a blank after the colon */
		   "250 2.1.0 Ok\r\n"
		   "501 5.1.3 Bad recipient address syntax\r\n"
		   /* a source route is accepted and ignored */
		   "250 2.1.5 Ok\r\n"
		   "555 5.5.4 RCPT parameters are not supported\r\n"
		   "501 5.5.4 Syntax: RCPT TO:<address>\r\n"
		   "501 5.5.4 Syntax: RSET\r\n"
		   "501 5.5.4 Syntax: QUIT\r\n"
		   "501 5.5.4 Syntax: VRFY address\r\n"
		   "501 5.5.4 Syntax: DATA\r\n"
		   "250 2.0.0 Ok\r\n"
		   "500 5.5.2 Error: NUL octet in command\r\n");
	test_max_bad = 20;
	assert_false(h.closed);
	harness_deinit(&h);
}

static void
test_other_commands_vrfy_help_noop_expn(void **state)
{
	struct harness h;

	(void)state;
	RUN(&h,
	    "vrfy alice\r\n"
	    "HELP\r\n"
	    "help mail\r\n"
	    "NOOP\r\n"
	    "EXPN list\r\n"
	    "STARTTLS\r\n"
	    "AUTH PLAIN AAAA\r\n",
	    "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
	    "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n"
	    "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n"
	    "250 2.0.0 Ok\r\n"
	    "502 5.5.1 Error: command not implemented\r\n"
	    "502 5.5.1 Error: command not implemented\r\n"
	    "502 5.5.1 Error: command not implemented\r\n");
	harness_deinit(&h);
}

static void
test_unknown_local_user_gets_550_5_1_1(void **state)
{
	struct harness h;

	(void)state;
	RUN(&h,
	    "EHLO c\r\nMAIL FROM:<a@b.c>\r\n"
	    "RCPT TO:<carol@localhost>\r\n"
	    "RCPT TO:<../etc@localhost>\r\n"
	    "RCPT TO:<a/b@localhost>\r\n"
	    "RCPT TO:<Alice@localhost>\r\n"
	    "RCPT TO:<\"alice\"@localhost>\r\n",
	    EHLO_REPLY "250 2.1.0 Ok\r\n"
		       "550 5.1.1 <carol@localhost>: Recipient address rejected: User unknown\r\n"
		       "501 5.1.3 Bad recipient address syntax\r\n"
		       "550 5.1.1 <a/b@localhost>: Recipient address rejected: User unknown\r\n"
		       "550 5.1.1 <Alice@localhost>: Recipient address rejected: User unknown\r\n"
		       "250 2.1.5 Ok\r\n");
	/* carol, Alice and "alice" were looked up; "a/b" never reached it. */
	assert_int_equal(h.rcpt_events, 3);
	harness_deinit(&h);
}

static void
test_other_domains_are_not_relayed(void **state)
{
	struct harness h;
	static const char input[] = "EHLO c\r\nMAIL FROM:<a@b.c>\r\n"
				    "RCPT TO:<alice@example.org>\r\n"
				    "RCPT TO:<alice@localhost.example.org>\r\n"
				    "RCPT TO:<alice@[127.0.0.1]>\r\n"
				    "RCPT TO:<alice@[10.0.0.1]>\r\n"
				    "RCPT TO:<alice@Example.NET>\r\n";

	(void)state;
	run_script(&h, 26214400, 100, "localhost", input, sizeof(input) - 1,
		   EHLO_REPLY "250 2.1.0 Ok\r\n"
			      "550 5.7.1 <alice@example.org>: Relay access denied\r\n"
			      "550 5.7.1 <alice@localhost.example.org>: Relay access denied\r\n"
			      "550 5.7.1 <alice@[127.0.0.1]>: Relay access denied\r\n"
			      "550 5.7.1 <alice@[10.0.0.1]>: Relay access denied\r\n"
			      "550 5.7.1 <alice@Example.NET>: Relay access denied\r\n");
	assert_int_equal(h.rcpt_events, 0);
	harness_deinit(&h);

	/* Every configured domain is local, case-insensitively; an address
	   literal only when it is configured. */
	run_script(&h, 26214400, 100, "localhost,example.net,[127.0.0.1]", input, sizeof(input) - 1,
		   "250-localhost\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
		   "250 ENHANCEDSTATUSCODES\r\n"
		   "250 2.1.0 Ok\r\n"
		   "550 5.7.1 <alice@example.org>: Relay access denied\r\n"
		   "550 5.7.1 <alice@localhost.example.org>: Relay access denied\r\n"
		   "250 2.1.5 Ok\r\n"
		   "550 5.7.1 <alice@[10.0.0.1]>: Relay access denied\r\n"
		   "250 2.1.5 Ok\r\n");
	harness_deinit(&h);
}

static void
test_postmaster_without_domain_is_local(void **state)
{
	struct harness h;

	(void)state;
	RUN(&h, "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<Postmaster>\r\n",
	    EHLO_REPLY "250 2.1.0 Ok\r\n"
		       "550 5.1.1 <Postmaster>: Recipient address rejected: User unknown\r\n");
	assert_int_equal(h.rcpt_events, 1);
	harness_deinit(&h);
}

static void
test_hundred_recipients_are_accepted_then_452(void **state)
{
	struct harness h;
	struct buf in = BUF_INIT, want = BUF_INIT;

	(void)state;
	buf_append_str(&in, "EHLO c\r\nMAIL FROM:<a@b.c>\r\n");
	buf_append_str(&want, EHLO_REPLY "250 2.1.0 Ok\r\n");
	for (unsigned i = 1; i <= 101; i++) {
		buf_printf(&in, "RCPT TO:<u%u@localhost>\r\n", i);
		buf_append_str(&want, i <= 100 ? "250 2.1.5 Ok\r\n" :
						 "452 4.5.3 Error: too many recipients\r\n");
	}
	buf_append_str(&in, "RCPT TO:<alice@localhost>\r\nDATA\r\nhello\r\n.\r\n");
	buf_append_str(&want, "452 4.5.3 Error: too many recipients\r\n"
			      "354 End data with <CR><LF>.<CR><LF>\r\n"
			      "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n");
	run_script(&h, 26214400, 100, "localhost", in.data, in.len, want.data);
	assert_int_equal(h.delivery_count, 1);
	assert_int_equal(h.deliveries[0].users.count, 100);
	assert_string_equal(h.deliveries[0].users.items[0], "u1");
	assert_string_equal(h.deliveries[0].users.items[99], "u100");
	harness_deinit(&h);
	buf_free(&in);
	buf_free(&want);
}

static void
test_duplicate_recipient_is_stored_once(void **state)
{
	struct harness h;

	(void)state;
	RUN(&h,
	    "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\n"
	    "RCPT TO:<alice@LocalHost>\r\nDATA\r\nx\r\n.\r\n",
	    EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
		       "354 End data with <CR><LF>.<CR><LF>\r\n"
		       "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n");
	assert_int_equal(h.deliveries[0].users.count, 1);
	assert_int_equal(h.rcpt_events, 1);
	harness_deinit(&h);
}

static void
test_size_parameter_over_the_limit_is_refused_before_data(void **state)
{
	struct harness h;
	static const char input[] = "EHLO c\r\n"
				    "MAIL FROM:<a@b.c> SIZE=1025\r\n"
				    "MAIL FROM:<a@b.c> SIZE=99999999999999999999999\r\n"
				    "MAIL FROM:<a@b.c> SIZE=1024\r\n";

	(void)state;
	run_script(&h, 1024, 100, "localhost", input, sizeof(input) - 1,
		   "250-localhost\r\n250-SIZE 1024\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
		   "250 ENHANCEDSTATUSCODES\r\n"
		   "552 5.3.4 Message size exceeds fixed maximum message size (1024)\r\n"
		   "501 5.5.4 Bad SIZE parameter\r\n"
		   "250 2.1.0 Ok\r\n");
	harness_deinit(&h);
}

static void
test_message_over_the_size_limit_is_refused_and_not_delivered(void **state)
{
	struct harness h;
	struct buf in = BUF_INIT;

	(void)state;
	buf_append_str(&in, "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n");
	/* 1024 octets fit exactly (16 lines of 62 + CRLF) ... */
	for (int i = 0; i < 16; i++)
		buf_printf(&in, "%062d\r\n", i);
	buf_append_str(&in, ".\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n");
	/* ... 1025 do not. */
	for (int i = 0; i < 16; i++)
		buf_printf(&in, "%062d\r\n", i);
	buf_append_str(&in, "x\r\n.\r\nRSET\r\n");
	run_script(&h, 1024, 100, "localhost", in.data, in.len,
		   "250-localhost\r\n250-SIZE 1024\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
		   "250 ENHANCEDSTATUSCODES\r\n"
		   "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		   "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n"
		   "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		   "552 5.3.4 Error: message exceeds fixed maximum message size (1024); "
		   "not stored\r\n"
		   "250 2.0.0 Ok\r\n");
	assert_int_equal(h.delivery_count, 1);
	buf_free(&in);
	harness_deinit(&h);
}

static void
test_command_line_limits_give_500_5_5_2(void **state)
{
	struct harness h;
	struct buf in = BUF_INIT, want = BUF_INIT;
	char *addr;

	(void)state;
	/* NOOP: 512 octets with CRLF is fine, 513 is not. */
	buf_printf(&in, "NOOP %0505d\r\n", 0);
	buf_printf(&in, "NOOP %0506d\r\n", 0);
	buf_append_str(&want, "250 2.0.0 Ok\r\n500 5.5.2 Error: line too long\r\n");
	/* The same with a bare LF (counted as a CRLF). */
	buf_printf(&in, "NOOP %0505d\n", 0);
	buf_printf(&in, "NOOP %0506d\n", 0);
	buf_append_str(&want, "250 2.0.0 Ok\r\n500 5.5.2 Error: line too long\r\n");
	/* MAIL may be 553 octets with SIZE and BODY. */
	buf_append_str(&in, "EHLO c\r\n");
	buf_append_str(&want, EHLO_REPLY);
	addr = xasprintf("MAIL FROM:<%0*d@b.c> SIZE=1 BODY=8BITMIME ", 64, 0);
	buf_printf(&in, "%s%*s\r\n", addr, (int)(553 - 2 - strlen(addr)), "");
	buf_append_str(&want, "250 2.1.0 Ok\r\n");
	buf_append_str(&in, "RSET\r\n");
	buf_append_str(&want, "250 2.0.0 Ok\r\n");
	buf_printf(&in, "%s%*s\r\n", addr, (int)(554 - 2 - strlen(addr)), "");
	buf_append_str(&want, "500 5.5.2 Error: line too long\r\n");
	free(addr);
	/* A huge line is skipped to its LF, then the session goes on. */
	buf_append_str(&in, "NOOP ");
	for (int i = 0; i < 20000; i++)
		buf_append_str(&in, "xxxxx");
	buf_append_str(&in, "\r\nNOOP\r\n");
	buf_append_str(&want, "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n");
	run_script(&h, 26214400, 100, "localhost", in.data, in.len, want.data);
	buf_free(&in);
	buf_free(&want);
	harness_deinit(&h);
}

static void
test_data_line_over_1000_octets_refuses_the_message(void **state)
{
	struct harness h;
	struct buf in = BUF_INIT;

	(void)state;
	buf_append_str(&in, "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n");
	/* 1000 octets with CRLF: fine; a stuffed dot does not count extra
	   once removed, but the line as sent is what the limit bounds. */
	buf_printf(&in, "%0998d\r\n", 1);
	buf_printf(&in, ".%0997d\r\n", 2);
	buf_append_str(&in, ".\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n");
	buf_printf(&in, "%0999d\r\n", 3);
	buf_append_str(&in, "after\r\n.\r\nNOOP\r\n");
	run_script(&h, 26214400, 100, "localhost", in.data, in.len,
		   EHLO_REPLY
		   "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		   "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n"
		   "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		   "554 5.6.0 Error: message has a line longer than 1000 octets; not stored\r\n"
		   "250 2.0.0 Ok\r\n");
	assert_int_equal(h.delivery_count, 1);
	assert_int_equal(h.deliveries[0].len - (size_t)(after_trace(&h.deliveries[0], "a@b.c", "c",
								    "ESMTP", "alice@localhost") -
							h.deliveries[0].message),
			 1000 + 999);
	buf_free(&in);
	harness_deinit(&h);
}

static void
test_nul_in_data_refuses_the_message_with_554_5_6_0(void **state)
{
	/* sizeof - 1: the NULs are part of the input */
	static const char input[] =
		"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n"
		"Subject: x\r\n\r\nbefore\0after\r\nmore\r\n.\r\n"
		/* the session goes on; a NUL as a line's first octet, and
		   in a dot-stuffed line */
		"MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n"
		"\0\r\n.\r\n"
		"MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n"
		"..\0\r\n.\r\n"
		/* the next message is clean and delivered */
		"MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n"
		"clean\r\n.\r\nNOOP\r\n";
	struct harness h;

	(void)state;
	run_script(&h, 26214400, 100, "localhost", input, sizeof(input) - 1,
		   EHLO_REPLY
		   "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		   "554 5.6.0 Error: message contains a NUL octet; not stored\r\n"
		   "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		   "554 5.6.0 Error: message contains a NUL octet; not stored\r\n"
		   "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		   "554 5.6.0 Error: message contains a NUL octet; not stored\r\n"
		   "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		   "250 2.0.0 Ok: delivered as " PREFIX ".4\r\n"
		   "250 2.0.0 Ok\r\n");
	assert_int_equal(h.delivery_count, 1);
	assert_string_equal(after_trace(&h.deliveries[0], "a@b.c", "c", "ESMTP", "alice@localhost"),
			    "clean\r\n");
	harness_deinit(&h);
}

static void
test_bare_lf_is_a_line_end_but_only_crlf_dot_crlf_ends_data(void **state)
{
	struct harness h;

	(void)state;
	RUN(&h,
	    "EHLO c\nMAIL FROM:<a@b.c>\nRCPT TO:<alice@localhost>\nDATA\n"
	    "line one\n"
	    ".\n"
	    "line\rwith cr\r\n"
	    ".\r\n"
	    "NOOP\n",
	    EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		       "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n"
		       "250 2.0.0 Ok\r\n");
	/* "LF . LF" was text; bare LFs became CRLF; a bare CR stays. */
	assert_string_equal(after_trace(&h.deliveries[0], "a@b.c", "c", "ESMTP", "alice@localhost"),
			    "line one\r\n.\r\nline\rwith cr\r\n");
	harness_deinit(&h);

	/* "text LF . CRLF" does not end the data either: the CRLF before
	   the dot is missing. */
	RUN(&h,
	    "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n"
	    "text\n.\r\nmore\r\n.\r\n",
	    EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		       "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n");
	assert_string_equal(after_trace(&h.deliveries[0], "a@b.c", "c", "ESMTP", "alice@localhost"),
			    "text\r\n.\r\nmore\r\n");
	harness_deinit(&h);
}

static void
test_empty_message_and_data_right_after_354(void **state)
{
	struct harness h;

	(void)state;
	RUN(&h, "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n.\r\n",
	    EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		       "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n");
	assert_string_equal(after_trace(&h.deliveries[0], "a@b.c", "c", "ESMTP", "alice@localhost"),
			    "");
	harness_deinit(&h);
}

static void
test_rset_and_ehlo_end_the_transaction(void **state)
{
	struct harness h;

	(void)state;
	RUN(&h,
	    "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\nRSET\r\nDATA\r\n"
	    "MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\nEHLO d\r\nRCPT TO:<alice@localhost>\r\n",
	    EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n"
		       "503 5.5.1 Error: need MAIL command\r\n"
		       "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" EHLO_REPLY
		       "503 5.5.1 Error: need MAIL command\r\n");
	harness_deinit(&h);
}

static void
test_delivery_failures_answer_451_and_452(void **state)
{
	struct harness h;
	static const char input[] = "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\n"
				    "DATA\r\nx\r\n.\r\nRCPT TO:<alice@localhost>\r\n";

	(void)state;
	harness_init(&h, 26214400, 100, "localhost");
	harness_start(&h);
	h.deliver_result = SMTP_DELIVER_TEMPFAIL;
	feed(&h, input, sizeof(input) - 1, 0);
	assert_non_null(strstr(h.out.data, "354 End data with <CR><LF>.<CR><LF>\r\n"
					   "451 4.3.0 Error: local error in processing; "
					   "try again later\r\n"
					   "503 5.5.1 Error: need MAIL command\r\n"));
	harness_deinit(&h);

	harness_init(&h, 26214400, 100, "localhost");
	harness_start(&h);
	h.deliver_result = SMTP_DELIVER_NO_SPACE;
	feed(&h, input, sizeof(input) - 1, 1);
	assert_non_null(strstr(h.out.data, "452 4.3.1 Error: insufficient system storage; "
					   "try again later\r\n"
					   "503 5.5.1 Error: need MAIL command\r\n"));
	harness_deinit(&h);
}

static void
test_too_many_errors_close_with_421(void **state)
{
	struct harness h;
	struct buf in = BUF_INIT, want = BUF_INIT;

	(void)state;
	for (int i = 0; i < 25; i++)
		buf_append_str(&in, "BOGUS\r\n");
	for (int i = 0; i < 20; i++)
		buf_append_str(&want, "500 5.5.1 Error: command not recognized\r\n");
	buf_append_str(&want, "421 4.7.0 localhost Error: too many errors, closing connection\r\n");
	run_script(&h, 26214400, 100, "localhost", in.data, in.len, want.data);
	assert_true(h.closed);
	buf_free(&in);
	buf_free(&want);
	harness_deinit(&h);
}

static void
test_timeout_writes_421_and_closes(void **state)
{
	struct harness h;
	size_t consumed;

	(void)state;
	harness_init(&h, 26214400, 100, "localhost");
	harness_start(&h);
	feed(&h, "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\npart", 60, 0);
	assert_true(smtp_session_in_data(h.s));
	buf_reset(&h.out);
	smtp_session_timeout(h.s, &h.out);
	assert_string_equal(h.out.data, "421 4.4.2 localhost Error: timeout exceeded\r\n");
	assert_false(smtp_session_in_data(h.s));
	assert_int_equal(smtp_session_feed(h.s, "NOOP\r\n", 6, &consumed, &h.out),
			 SMTP_EVENT_CLOSE);
	assert_int_equal(consumed, 0);
	harness_deinit(&h);
}

/* Every reply but 220, 354 and the answers to HELO/EHLO carries an
   enhanced status code (RFC 2034). */
static void
test_enhanced_status_codes_on_every_other_reply(void **state)
{
	struct harness h;
	const char *p;

	(void)state;
	RUN(&h,
	    "EHLO c\r\nNOOP\r\nVRFY x\r\nHELP\r\nFOO\r\nRSET\r\nMAIL FROM:<a@b.c>\r\n"
	    "RCPT TO:<alice@localhost>\r\nRCPT TO:<x@localhost>\r\nRCPT TO:<x@y.z>\r\n"
	    "DATA\r\nhi\r\n.\r\nQUIT\r\n",
	    EHLO_REPLY
	    "250 2.0.0 Ok\r\n"
	    "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
	    "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n"
	    "500 5.5.1 Error: command not recognized\r\n"
	    "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "550 5.1.1 <x@localhost>: Recipient address rejected: User unknown\r\n"
	    "550 5.7.1 <x@y.z>: Relay access denied\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 Ok: delivered as " PREFIX ".1\r\n221 2.0.0 Bye\r\n");
	p = strstr(h.out.data, "250 ENHANCEDSTATUSCODES\r\n");
	assert_non_null(p);
	p += strlen("250 ENHANCEDSTATUSCODES\r\n");
	for (unsigned n = 0; *p != '\0'; n++) {
		assert_true(n < 100);
		if (strncmp(p, "354 ", 4) != 0) {
			assert_true(p[4] == p[0] && p[5] == '.' && p[6] >= '0' && p[6] <= '9' &&
				    p[7] == '.');
		}
		p = strstr(p, "\r\n");
		assert_non_null(p);
		p += 2;
	}
	harness_deinit(&h);
}

/* auth_user_exists(): the passwd-file backend answers; names that are
   not valid user names never reach it; a backend without the operation
   accepts everyone. */
static void
test_auth_user_exists_wrapper(void **state)
{
	char dir[] = "/tmp/test_smtp.XXXXXX";
	struct auth_settings set;
	struct auth_ctx ctx;
	struct auth_backend no_lookup;
	char *path, *error = NULL, *cmd;
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/users", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("alice alice123\nbob bob123\n", fp);
	assert_int_equal(fclose(fp), 0);

	i_zero(&set);
	set.file = path;
	ctx.backend = registry_auth_find("passwd-file");
	assert_non_null(ctx.backend);
	if (ctx.backend->init(&set, &ctx.auth, &error) < 0)
		fail_msg("init: %s", error);
	assert_int_equal(auth_user_exists(&ctx, "t", "alice"), 1);
	assert_int_equal(auth_user_exists(&ctx, "t", "bob"), 1);
	assert_int_equal(auth_user_exists(&ctx, "t", "carol"), 0);
	assert_int_equal(auth_user_exists(&ctx, "t", "alice123"), 0);
	assert_int_equal(auth_user_exists(&ctx, "t", "../alice"), 0);
	assert_int_equal(auth_user_exists(&ctx, "t", ""), 0);
	/* The file vanishing is a temporary failure, not "unknown". */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(auth_user_exists(&ctx, "t", "alice"), -1);

	no_lookup = *ctx.backend;
	no_lookup.user_exists = NULL;
	{
		struct auth_ctx ctx2 = { &no_lookup, ctx.auth };
		assert_int_equal(auth_user_exists(&ctx2, "t", "anyone"), 1);
		assert_int_equal(auth_user_exists(&ctx2, "t", "a/b"), 0);
	}
	ctx.backend->deinit(&ctx.auth);
	assert_int_equal(auth_user_exists(&ctx, "t", "alice"), -1);
	cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_and_ehlo_advertise_the_extensions),
		cmocka_unit_test(test_transaction_stores_the_message_with_trace_headers),
		cmocka_unit_test(test_helo_uses_smtp_and_refuses_mail_parameters),
		cmocka_unit_test(test_dot_unstuffing_keeps_every_dot_line),
		cmocka_unit_test(test_pipelined_commands_are_answered_in_order),
		cmocka_unit_test(test_bad_sequence_gets_503),
		cmocka_unit_test(test_syntax_errors_get_500_501_555),
		cmocka_unit_test(test_other_commands_vrfy_help_noop_expn),
		cmocka_unit_test(test_unknown_local_user_gets_550_5_1_1),
		cmocka_unit_test(test_other_domains_are_not_relayed),
		cmocka_unit_test(test_postmaster_without_domain_is_local),
		cmocka_unit_test(test_hundred_recipients_are_accepted_then_452),
		cmocka_unit_test(test_duplicate_recipient_is_stored_once),
		cmocka_unit_test(test_size_parameter_over_the_limit_is_refused_before_data),
		cmocka_unit_test(test_message_over_the_size_limit_is_refused_and_not_delivered),
		cmocka_unit_test(test_command_line_limits_give_500_5_5_2),
		cmocka_unit_test(test_data_line_over_1000_octets_refuses_the_message),
		cmocka_unit_test(test_nul_in_data_refuses_the_message_with_554_5_6_0),
		cmocka_unit_test(test_bare_lf_is_a_line_end_but_only_crlf_dot_crlf_ends_data),
		cmocka_unit_test(test_empty_message_and_data_right_after_354),
		cmocka_unit_test(test_rset_and_ehlo_end_the_transaction),
		cmocka_unit_test(test_delivery_failures_answer_451_and_452),
		cmocka_unit_test(test_too_many_errors_close_with_421),
		cmocka_unit_test(test_timeout_writes_421_and_closes),
		cmocka_unit_test(test_enhanced_status_codes_on_every_other_reply),
		cmocka_unit_test(test_auth_user_exists_wrapper),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
