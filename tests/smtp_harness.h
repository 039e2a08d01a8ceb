/* smtp_harness.h: the harness of the SMTP engine's unit tests
   (tests/test_smtp.c, tests/test_smtp_auth.c), without sockets.

   Every script is fed whole, one octet at a time and in pieces of 3 and 7
   octets; each way must give exactly the expected replies and the same
   deliveries. A fake directory answers the RCPT lookups (users "alice",
   "bob", "u1".."u200"; "slow" is a temporary failure), a fake auth backend
   the AUTH checks, and a fake store records what would be delivered.

   Included by one test file per binary (its functions are static). */
#ifndef SMTP_HARNESS_H
#define SMTP_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "buf.h"
#include "lib.h"
#include "smtp.h"

#define PREFIX "T"

/* 500/501/503/555 replies before the 421 (smtp_settings.max_bad_commands). */
static unsigned test_max_bad = 20;
/* The TLS and submission settings of the next sessions (tests set them
   and put them back to all false). */
static struct {
	bool starttls, tls, submission, plaintext_auth;
} test_port;

struct delivery {
	char *from;
	char *message;
	size_t len;
	struct strlist users;
};

struct harness {
	struct smtp_settings set;
	struct strlist domains;
	struct smtp_session *s;
	struct buf out;
	enum smtp_deliver_result deliver_result;
	struct delivery deliveries[8];
	unsigned delivery_count;
	unsigned rcpt_events;
	unsigned starttls_events;
	unsigned auth_events;
	char last_auth_user[64];
	bool closed;
};

static void
harness_init(struct harness *h, uint64_t max_size, unsigned max_rcpt, const char *domains)
{
	char *copy = xstrdup(domains), *save = NULL;

	i_zero(h);
	for (char *d = strtok_r(copy, ",", &save); d != NULL; d = strtok_r(NULL, ",", &save))
		strlist_add(&h->domains, d);
	free(copy);
	h->set.hostname = h->domains.items[0];
	h->set.domains = &h->domains;
	h->set.max_message_size = max_size;
	h->set.max_recipients = max_rcpt;
	h->set.max_bad_commands = test_max_bad;
	h->set.starttls = test_port.starttls;
	h->set.tls = test_port.tls;
	h->set.submission = test_port.submission;
	h->set.plaintext_auth = test_port.plaintext_auth;
	h->deliver_result = SMTP_DELIVER_OK;
}

static void
harness_start(struct harness *h)
{
	h->s = smtp_session_new(&h->set, "127.0.0.1", PREFIX);
}

static void
harness_deinit(struct harness *h)
{
	smtp_session_free(&h->s);
	assert_null(h->s);
	buf_free(&h->out);
	for (unsigned i = 0; i < h->delivery_count; i++) {
		free(h->deliveries[i].from);
		free(h->deliveries[i].message);
		strlist_clear(&h->deliveries[i].users);
	}
	strlist_clear(&h->domains);
}

static bool
fake_user_known(const char *user)
{
	unsigned n;

	if (strcmp(user, "alice") == 0 || strcmp(user, "bob") == 0)
		return true;
	return sscanf(user, "u%u", &n) == 1 && n >= 1 && n <= 200;
}

/* The fake auth backend: alice/alice123, bob/bob123; user "down" is a
   temporary failure. */
static enum smtp_auth_answer
fake_auth(struct harness *h)
{
	const char *user = smtp_session_auth_user(h->s);
	const char *pass = smtp_session_auth_password(h->s);

	assert_non_null(user);
	assert_non_null(pass);
	snprintf(h->last_auth_user, sizeof(h->last_auth_user), "%s", user);
	if (strcmp(user, "down") == 0)
		return SMTP_AUTH_TEMPFAIL;
	if ((strcmp(user, "alice") == 0 && strcmp(pass, "alice123") == 0) ||
	    (strcmp(user, "bob") == 0 && strcmp(pass, "bob123") == 0))
		return SMTP_AUTH_OK;
	return SMTP_AUTH_FAIL;
}

static void
handle_event(struct harness *h, enum smtp_event ev)
{
	switch (ev) {
	case SMTP_EVENT_NONE:
		break;
	case SMTP_EVENT_RCPT: {
		const char *user = smtp_session_rcpt_user(h->s);

		assert_non_null(user);
		h->rcpt_events++;
		if (strcmp(user, "slow") == 0)
			smtp_session_rcpt_answer(h->s, SMTP_RCPT_TEMPFAIL, &h->out);
		else
			smtp_session_rcpt_answer(h->s,
						 fake_user_known(user) ? SMTP_RCPT_OK :
									 SMTP_RCPT_UNKNOWN,
						 &h->out);
		assert_null(smtp_session_rcpt_user(h->s));
		break;
	}
	case SMTP_EVENT_DELIVER: {
		struct delivery *d;
		const struct strlist *users = smtp_session_recipients(h->s);
		const char *msg;
		size_t len;

		assert_true(h->delivery_count < N_ELEMENTS(h->deliveries));
		d = &h->deliveries[h->delivery_count++];
		msg = smtp_session_message(h->s, &len);
		d->message = xstrndup(msg, len);
		d->len = len;
		d->from = xstrdup(smtp_session_mail_from(h->s));
		for (size_t i = 0; i < users->count; i++)
			strlist_add(&d->users, users->items[i]);
		assert_string_not_equal(smtp_session_message_id(h->s), "");
		smtp_session_deliver_answer(h->s, h->deliver_result, &h->out);
		break;
	}
	case SMTP_EVENT_STARTTLS:
		h->starttls_events++;
		smtp_session_starttls_answer(h->s, &h->out);
		break;
	case SMTP_EVENT_AUTH:
		h->auth_events++;
		if (smtp_session_auth_answer(h->s, fake_auth(h), &h->out) == SMTP_EVENT_CLOSE)
			h->closed = true;
		break;
	case SMTP_EVENT_CLOSE:
		h->closed = true;
		break;
	}
}

/* Feeds input in pieces of step octets (0: all at once), answering the
   events, until it is consumed or the session closed. */
static void
feed(struct harness *h, const char *input, size_t len, size_t step)
{
	size_t pos = 0, rounds = 0;

	while (pos < len && !h->closed) {
		size_t n = step == 0 || step > len - pos ? len - pos : step;
		size_t consumed;
		enum smtp_event ev;

		assert_true(++rounds <= 4 * len + 10);
		ev = smtp_session_feed(h->s, input + pos, n, &consumed, &h->out);
		assert_true(consumed <= n);
		if (ev == SMTP_EVENT_NONE)
			assert_int_equal(consumed, n);
		/* An unanswered event consumes nothing more. */
		if (ev == SMTP_EVENT_RCPT || ev == SMTP_EVENT_DELIVER ||
		    ev == SMTP_EVENT_STARTTLS || ev == SMTP_EVENT_AUTH) {
			size_t again;
			size_t before = h->out.len;

			assert_int_equal(smtp_session_feed(h->s, input + pos + consumed,
							   n - consumed, &again, &h->out),
					 ev);
			assert_int_equal(again, 0);
			assert_int_equal(h->out.len, before);
		}
		pos += consumed;
		handle_event(h, ev);
	}
}

static const size_t steps[] = { 0, 1, 3, 7 };

/* Runs input through a fresh session in every way of feeding it; each
   must give expected (after the greeting). h is left with the last run
   for more checks; the caller calls harness_deinit(). */
static void
run_script(struct harness *h, uint64_t max_size, unsigned max_rcpt, const char *domains,
	   const char *input, size_t input_len, const char *expected)
{
	for (size_t i = 0; i < N_ELEMENTS(steps); i++) {
		char *greeting;

		if (i > 0)
			harness_deinit(h);
		harness_init(h, max_size, max_rcpt, domains);
		harness_start(h);
		smtp_session_greet(h->s, &h->out);
		feed(h, input, input_len, steps[i]);
		greeting = xasprintf("220 %s ESMTP smtpmail ready\r\n", h->set.hostname);
		if (strncmp(h->out.data, greeting, strlen(greeting)) != 0 ||
		    strcmp(h->out.data + strlen(greeting), expected) != 0)
			fail_msg("step %zu: got\n%s\nexpected\n%s%s", steps[i], h->out.data,
				 greeting, expected);
		free(greeting);
	}
}

#define RUN(h, input, expected) \
	run_script(h, 26214400, 100, "localhost", input, strlen(input), expected)

#define EHLO_REPLY                                                                 \
	"250-localhost\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n250-PIPELINING\r\n" \
	"250 ENHANCEDSTATUSCODES\r\n"

/* The stored message minus its trace headers; checks them on the way. */
static const char *
after_trace(const struct delivery *d, const char *from, const char *helo, const char *proto,
	    const char *for_rcpt)
{
	const char *p = d->message;
	char *want = xasprintf("Return-Path: <%s>\r\nReceived: from %s ([127.0.0.1])\r\n"
			       "\tby localhost with %s id " PREFIX ".",
			       from, helo, proto);
	const char *end;

	if (strncmp(p, want, strlen(want)) != 0)
		fail_msg("trace headers: got\n%.300s\nwant prefix\n%s", p, want);
	p += strlen(want);
	free(want);
	while (*p >= '0' && *p <= '9')
		p++;
	if (for_rcpt != NULL) {
		want = xasprintf("\r\n\tfor <%s>", for_rcpt);
		assert_int_equal(strncmp(p, want, strlen(want)), 0);
		p += strlen(want);
		free(want);
	}
	/* "; Sat, 29 Nov 2025 10:00:00 +0100" then CRLF */
	assert_int_equal(strncmp(p, "; ", 2), 0);
	end = strstr(p, "\r\n");
	assert_non_null(end);
	assert_int_equal(end - p, 2 + 31);
	assert_true(p[2 + 3] == ',' && (p[2 + 26] == '+' || p[2 + 26] == '-'));
	return end + 2;
}

#endif
