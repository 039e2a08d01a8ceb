/* OBJECTID (RFC 8474) in process: the real server on each backend,
   MAILBOXID (SELECT, EXAMINE, CREATE, STATUS, LIST-STATUS), EMAILID and
   THREADID (FETCH), the ids across RENAME, DELETE+CREATE, COPY, MOVE and
   a restart, and the unhappy paths. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "event.h"
#include "imap_client.h"
#include "imap_server.h"
#include "log.h"
#include "sha256.h"
#include "storage.h"
#include "watch.h"
#include "imap_harness.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The backend of the group being run ("flat" or "maildir"). */
static const char *backend = "flat";

static int
setup(void **state)
{
	*state = harness_new("objectid", backend, "");
	return 0;
}

static int
teardown(void **state)
{
	harness_free(*state);
	return 0;
}

/* The id after "<key> (" in answer, into id_r (fails the test if none). */
static void
id_after(const char *answer, const char *key, char id_r[STORAGE_OBJECTID_SIZE])
{
	char *pat = xasprintf("%s (", key);
	const char *p = strstr(answer, pat);
	size_t n;

	if (p == NULL)
		fail_msg("no %s in:\n%s", pat, answer);
	p += strlen(pat);
	n = strcspn(p, ")");
	assert_true(n > 0 && n < STORAGE_OBJECTID_SIZE);
	memcpy(id_r, p, n);
	id_r[n] = '\0';
	/* RFC 8474 3: 1*255 of ALPHA / DIGIT / "_" / "-" */
	assert_int_equal(strspn(id_r, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789_-"), n);
	free(pat);
}

/* Sends command and returns the id after key in its answer. */
static void
cmd_id(struct harness *h, int s, const char *tag, const char *command, const char *key,
       char id_r[STORAGE_OBJECTID_SIZE])
{
	char *ans = cmd(h, s, tag, command);
	char *ok = xasprintf("%s OK", tag);

	assert_contains(ans, ok);
	id_after(ans, key, id_r);
	free(ok);
	free(ans);
}

static void
append_msg(struct harness *h, int s, const char *tag, const char *mailbox, const char *subject)
{
	char *body = xasprintf("Subject: %s\r\nMessage-ID: <%s@test>\r\n\r\nbody of %s\r\n",
			       subject, subject, subject);
	char *c = xasprintf("APPEND %s {%zu+}\r\n%s", mailbox, strlen(body), body);
	char *ans = cmd(h, s, tag, c);
	char *ok = xasprintf("%s OK", tag);

	assert_contains(ans, ok);
	free(ok);
	free(ans);
	free(c);
	free(body);
}

static void
test_sha256_vectors(void **state)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	uint8_t d[SHA256_DIGEST_SIZE];
	char hex[2 * SHA256_DIGEST_SIZE + 1];
	struct sha256_ctx ctx;

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(v); i++) {
		sha256(v[i].in, strlen(v[i].in), d);
		for (size_t k = 0; k < SHA256_DIGEST_SIZE; k++)
			snprintf(hex + 2 * k, 3, "%02x", d[k]);
		assert_string_equal(hex, v[i].hex);
	}
	/* a million 'a', fed in uneven pieces */
	sha256_init(&ctx);
	for (size_t n = 0, step = 1; n < 1000000; n += step, step = step % 97 + 1) {
		char a[100];
		size_t len = step < 1000000 - n ? step : 1000000 - n;

		memset(a, 'a', len);
		sha256_update(&ctx, a, len);
	}
	sha256_final(&ctx, d);
	for (size_t k = 0; k < SHA256_DIGEST_SIZE; k++)
		snprintf(hex + 2 * k, 3, "%02x", d[k]);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* MAILBOXID: CREATE, SELECT, EXAMINE, STATUS and LIST-STATUS agree; it
   survives RENAME and a restart, and is new after DELETE+CREATE. */
static void
test_mailboxid(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char created[STORAGE_OBJECTID_SIZE], id[STORAGE_OBJECTID_SIZE];
	char other[STORAGE_OBJECTID_SIZE], inbox[STORAGE_OBJECTID_SIZE];

	EXPECT(h, s, "m0", "CAPABILITY", " OBJECTID");
	login(h, s, "alice");
	cmd_id(h, s, "m1", "CREATE box", "[MAILBOXID", created);
	assert_int_equal(created[0], 'F');
	cmd_id(h, s, "m2", "SELECT box", "* OK [MAILBOXID", id);
	assert_string_equal(id, created);
	cmd_id(h, s, "m3", "EXAMINE box", "* OK [MAILBOXID", id);
	assert_string_equal(id, created);
	EXPECT(h, s, "m3b", "UNSELECT", "m3b OK");
	cmd_id(h, s, "m4", "STATUS box (MESSAGES MAILBOXID UIDNEXT)", "MAILBOXID", id);
	assert_string_equal(id, created);
	EXPECT(h, s, "m5", "STATUS box (MESSAGES MAILBOXID UIDNEXT)",
	       "* STATUS \"box\" (MESSAGES 0 MAILBOXID (");
	EXPECT(h, s, "m5b", "STATUS box (MAILBOXID UIDNEXT)", ") UIDNEXT 1)");
	cmd_id(h, s, "m6", "LIST \"\" box RETURN (STATUS (MAILBOXID))", "MAILBOXID", id);
	assert_string_equal(id, created);
	cmd_id(h, s, "m7", "STATUS INBOX (MAILBOXID)", "MAILBOXID", inbox);
	assert_string_not_equal(inbox, created);
	cmd_id(h, s, "m7b", "STATUS inbox (MAILBOXID)", "MAILBOXID", id);
	assert_string_equal(id, inbox);
	cmd_id(h, s, "m7c", "EXAMINE iNbOx", "* OK [MAILBOXID", id);
	assert_string_equal(id, inbox);
	cmd_id(h, s, "m7d", "LIST \"\" INBOX RETURN (STATUS (MAILBOXID))", "MAILBOXID", id);
	assert_string_equal(id, inbox);
	EXPECT(h, s, "m7e", "UNSELECT", "m7e OK");
	cmd_id(h, s, "m8", "CREATE other", "[MAILBOXID", other);
	assert_string_not_equal(other, created);
	assert_string_not_equal(other, inbox);

	/* RENAME keeps it (and the new name's inferiors' too) */
	append_msg(h, s, "m9", "box", "one");
	EXPECT(h, s, "m10", "RENAME box renamed", "m10 OK");
	cmd_id(h, s, "m11", "STATUS renamed (MAILBOXID)", "MAILBOXID", id);
	assert_string_equal(id, created);
	EXPECT(h, s, "m12", "CREATE renamed/child", "m12 OK");
	cmd_id(h, s, "m13", "STATUS renamed/child (MAILBOXID)", "MAILBOXID", other);
	EXPECT(h, s, "m14", "RENAME renamed top", "m14 OK");
	cmd_id(h, s, "m15", "STATUS top (MAILBOXID)", "MAILBOXID", id);
	assert_string_equal(id, created);
	cmd_id(h, s, "m16", "STATUS top/child (MAILBOXID)", "MAILBOXID", id);
	assert_string_equal(id, other);

	/* a mailbox created and not used since keeps the id CREATE gave */
	char fresh[STORAGE_OBJECTID_SIZE];
	cmd_id(h, s, "f1", "CREATE fresh", "[MAILBOXID", fresh);

	/* a restart changes nothing */
	server_stop(h);
	server_start(h);
	s = connect_session(h, 0);
	login(h, s, "alice");
	cmd_id(h, s, "r1", "SELECT top", "* OK [MAILBOXID", id);
	cmd_id(h, s, "f2", "STATUS fresh (MAILBOXID)", "MAILBOXID", other);
	assert_string_equal(other, fresh);
	cmd_id(h, s, "f3", "STATUS top/child (MAILBOXID)", "MAILBOXID", other);
	assert_string_equal(id, created);
	cmd_id(h, s, "r2", "STATUS INBOX (MAILBOXID)", "MAILBOXID", id);
	assert_string_equal(id, inbox);
	EXPECT(h, s, "r3", "UNSELECT", "r3 OK");

	/* DELETE then CREATE of the same name: a new mailbox, a new id */
	EXPECT(h, s, "d1", "DELETE top/child", "d1 OK");
	cmd_id(h, s, "d2", "CREATE top/child", "[MAILBOXID", id);
	assert_string_not_equal(id, other);
	EXPECT(h, s, "d3", "DELETE top", "d3 OK");
	cmd_id(h, s, "d4", "CREATE top", "[MAILBOXID", id);
	assert_string_not_equal(id, created);

	/* RENAME INBOX moves its messages to a new mailbox (RFC 3501
	   6.3.5): whichever keeps the old id, the two differ */
	char newbox[STORAGE_OBJECTID_SIZE];
	append_msg(h, s, "i0", "INBOX", "inbox");
	EXPECT(h, s, "i1", "RENAME INBOX frominbox", "i1 OK");
	cmd_id(h, s, "i2", "STATUS frominbox (MAILBOXID)", "MAILBOXID", newbox);
	cmd_id(h, s, "i3", "STATUS INBOX (MAILBOXID)", "MAILBOXID", id);
	assert_string_not_equal(id, newbox);
	assert_string_not_equal(inbox, newbox);
	/* Maildir keeps INBOX's UIDVALIDITY and its id (flat gives INBOX a
	   new UIDVALIDITY, and a new id with it: storage.h) */
	if (strcmp(backend, "maildir") == 0)
		assert_string_equal(id, inbox);

	/* another user's mailboxes have ids of their own */
	int s2 = connect_session(h, 1);
	login(h, s2, "bob");
	cmd_id(h, s2, "b1", "STATUS INBOX (MAILBOXID)", "MAILBOXID", id);
	assert_string_not_equal(id, inbox);
}

/* EMAILID: the same in every copy, after MOVE and a restart; distinct
   messages have distinct ids; THREADID is NIL. */
static void
test_emailid(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);
	char one[STORAGE_OBJECTID_SIZE], two[STORAGE_OBJECTID_SIZE], id[STORAGE_OBJECTID_SIZE];

	login(h, s, "alice");
	EXPECT(h, s, "e0", "CREATE box", "e0 OK");
	EXPECT(h, s, "e0b", "CREATE dest", "e0b OK");
	append_msg(h, s, "e1", "INBOX", "one");
	append_msg(h, s, "e2", "INBOX", "two");
	EXPECT(h, s, "e3", "SELECT INBOX", "e3 OK");
	EXPECT(h, s, "e4", "FETCH 1 (EMAILID THREADID)", "* 1 FETCH (EMAILID (M");
	EXPECT(h, s, "e5", "FETCH 1 (THREADID)", "* 1 FETCH (THREADID NIL)");
	cmd_id(h, s, "e6", "FETCH 1 EMAILID", "EMAILID", one);
	cmd_id(h, s, "e7", "UID FETCH 2 (EMAILID)", "EMAILID", two);
	assert_string_not_equal(one, two);
	EXPECT(h, s, "e8", "FETCH 1:2 (UID EMAILID BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
	       "e8 OK");

	/* COPY and MOVE keep it */
	EXPECT(h, s, "c1", "COPY 1 box", "c1 OK");
	EXPECT(h, s, "c2", "MOVE 2 dest", "c2 OK");
	EXPECT(h, s, "c3", "SELECT box", "c3 OK");
	cmd_id(h, s, "c4", "FETCH 1 (EMAILID)", "EMAILID", id);
	assert_string_equal(id, one);
	EXPECT(h, s, "c5", "MOVE 1 dest", "c5 OK");
	EXPECT(h, s, "c6", "SELECT dest", "* 2 EXISTS");
	cmd_id(h, s, "c7", "FETCH 1 (EMAILID)", "EMAILID", id);
	assert_string_equal(id, two);
	cmd_id(h, s, "c8", "FETCH 2 (EMAILID)", "EMAILID", id);
	assert_string_equal(id, one);

	/* SEARCH EMAILID and THREADID (RFC 8474 6): ids are case-sensitive,
	   no message has a THREADID */
	char *c = xasprintf("UID SEARCH EMAILID %s", one);
	EXPECT(h, s, "k1", c, "* SEARCH 2\r\nk1 OK");
	free(c);
	c = xasprintf("SEARCH OR EMAILID %s EMAILID %s", two, one);
	EXPECT(h, s, "k2", c, "* SEARCH 1 2\r\nk2 OK");
	free(c);
	c = xasprintf("SEARCH EMAILID M%s", one + 1);
	for (char *p = c; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	EXPECT(h, s, "k3", c, "* SEARCH\r\nk3 OK");
	free(c);
	EXPECT(h, s, "k4", "SEARCH NOT THREADID T1", "* SEARCH 1 2\r\nk4 OK");
	EXPECT(h, s, "k5", "SEARCH THREADID T1", "* SEARCH\r\nk5 OK");

	/* a restart changes nothing */
	server_stop(h);
	server_start(h);
	s = connect_session(h, 0);
	login(h, s, "alice");
	EXPECT(h, s, "r1", "SELECT dest", "r1 OK");
	cmd_id(h, s, "r2", "FETCH 1 (EMAILID)", "EMAILID", id);
	assert_string_equal(id, two);
	cmd_id(h, s, "r3", "UID FETCH 2 (EMAILID)", "EMAILID", id);
	assert_string_equal(id, one);
	EXPECT(h, s, "r4", "SELECT INBOX", "r4 OK");
	cmd_id(h, s, "r5", "FETCH 1 (EMAILID)", "EMAILID", id);
	assert_string_equal(id, one);
}

/* The unhappy paths. */
static void
test_errors(void **state)
{
	struct harness *h = *state;
	int s = connect_session(h, 0);

	EXPECT(h, s, "n0", "STATUS INBOX (MAILBOXID)", "n0 BAD");
	login(h, s, "alice");
	EXPECT(h, s, "n1", "STATUS nosuch (MAILBOXID)", "n1 NO [NONEXISTENT]");
	EXPECT(h, s, "n2", "STATUS INBOX (MAILBOXID BOGUS)", "n2 BAD");
	EXPECT(h, s, "n3", "STATUS INBOX MAILBOXID", "n3 BAD");
	EXPECT(h, s, "n4", "SELECT nosuch", "n4 NO");
	EXPECT(h, s, "n5", "FETCH 1 (EMAILID)", "n5 BAD");
	append_msg(h, s, "n6", "INBOX", "one");
	EXPECT(h, s, "n7", "SELECT INBOX", "n7 OK");
	EXPECT(h, s, "n8", "FETCH 0 (EMAILID)", "n8 BAD");
	EXPECT(h, s, "n9", "FETCH x:y (EMAILID)", "n9 BAD");
	EXPECT(h, s, "n10", "FETCH 1 (EMAILID[])", "n10 BAD");
	EXPECT(h, s, "n11", "FETCH 1 (EMAILIDS)", "n11 BAD");
	EXPECT(h, s, "n12", "FETCH 5 (EMAILID)", "n12 BAD");
	EXPECT(h, s, "n13", "UID FETCH 5 (EMAILID)", "n13 OK");
	char *ans = cmd(h, s, "n14", "UID FETCH 5 (EMAILID)");
	assert_null(strstr(ans, "FETCH ("));
	free(ans);
	EXPECT(h, s, "n15", "CREATE INBOX", "n15 NO");
	EXPECT(h, s, "n17", "SEARCH EMAILID \"M 1\"", "n17 BAD");
	EXPECT(h, s, "n18", "SEARCH EMAILID \"\"", "n18 BAD");
	EXPECT(h, s, "n19", "SEARCH THREADID", "n19 BAD");
	EXPECT(h, s, "n20", "SEARCH EMAILID (M1)", "n20 BAD");
	char big[300];
	memset(big, 'M', 256);
	big[256] = '\0';
	char *c = xasprintf("SEARCH EMAILID %s", big);
	EXPECT(h, s, "n21", c, "n21 BAD");
	free(c);
	big[255] = '\0';
	c = xasprintf("SEARCH EMAILID %s", big);
	EXPECT(h, s, "n22", c, "* SEARCH\r\nn22 OK");
	free(c);
	EXPECT(h, s, "n16", "LIST \"\" nosuch RETURN (STATUS (MAILBOXID))", "n16 OK");
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test_setup_teardown(test_mailboxid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emailid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	};
	int failed;

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	backend = "flat";
	failed = cmocka_run_group_tests_name("flat", tests, NULL, NULL);
	backend = "maildir";
	failed += cmocka_run_group_tests_name("maildir", tests, NULL, NULL);
	return failed;
}
