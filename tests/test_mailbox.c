/* Tests of the mailbox hub: shared state, per-session views, and the
   untagged updates each view gets (RFC 3501 7.4.1 rules), on an in-memory
   storage backend so that only the hub is under test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "imap_view.h"
#include "mailbox.h"

#include <stdio.h>
#include <stdlib.h>

/* The kind of the last storage failure (the calls below want one). */
static enum storage_error st_err;

/* An in-memory backend: one mailbox per name, messages as strings. */
struct mem_box {
	struct buf bodies[64];
	int opens;
};

static struct mem_box mem_inbox;
static int mem_flag_writes;
/* When not STORAGE_ERR_NONE, flags_changed() fails with this kind. */
static enum storage_error mem_flags_fail;

static int
mem_open(struct storage *st, const char *user, const char *name, struct mbox_state *state,
	 struct storage_box **box_r, enum storage_error *err_r, char **error_r)
{
	if (strcmp(name, "INBOX") != 0) {
		*err_r = STORAGE_ERR_NOT_FOUND;
		*error_r = xstrdup("no such mailbox");
		return -1;
	}
	state->uidvalidity = 42;
	state->uidnext = 1;
	state->first_recent_uid = 1;
	mem_inbox.opens++;
	*box_r = (struct storage_box *)&mem_inbox;
	return 0;
}

static void
mem_close(struct storage_box **box)
{
	*box = NULL;
}

static int
mem_sync(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	 char **error_r)
{
	return 0;
}

static int
mem_read(struct storage_box *box, const struct mail_rec *rec, struct buf *out,
	 enum storage_error *err_r, char **error_r)
{
	struct mem_box *mb = (struct mem_box *)box;

	buf_append(out, mb->bodies[rec->priv[0]].data, mb->bodies[rec->priv[0]].len);
	return 0;
}

static int
mem_append(struct storage_box *box, struct mbox_state *state, const char *data, size_t len,
	   uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
	   uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	struct mem_box *mb = (struct mem_box *)box;
	struct mail_rec rec;

	i_zero(&rec);
	rec.uid = state->uidnext;
	rec.flags = flags;
	rec.keywords = keywords;
	rec.size = len;
	rec.priv[0] = rec.uid % 64;
	buf_reset(&mb->bodies[rec.priv[0]]);
	buf_append(&mb->bodies[rec.priv[0]], data, len);
	mbox_state_append(state, &rec);
	*uid_r = rec.uid;
	return 0;
}

static int
mem_flags_changed(struct storage_box *box, struct mbox_state *state, size_t idx,
		  enum storage_error *err_r, char **error_r)
{
	if (mem_flags_fail != STORAGE_ERR_NONE) {
		*err_r = mem_flags_fail;
		*error_r = xstrdup("flag write failed (test)");
		return -1;
	}
	mem_flag_writes++;
	return 0;
}

/* When set, expunge() first catches up with this many changes another
   process made (as a store shared by several servers does), raising the
   highest modseq above the one the hub gave, then takes the next. */
static unsigned mem_expunge_catchup;

static int
mem_expunge(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
	    size_t count, enum storage_error *err_r, char **error_r)
{
	if (mem_expunge_catchup > 0)
		state->highest_modseq += mem_expunge_catchup + 1;
	for (size_t i = 0; i < count; i++) {
		ssize_t idx = mbox_state_find(state, uids[i]);
		if (idx >= 0)
			mbox_state_remove(state, (size_t)idx);
	}
	return 0;
}

static const struct storage_backend mem_backend = {
	.name = "mem",
	.compiled_in = true,
	.open = mem_open,
	.close = mem_close,
	.sync = mem_sync,
	.read = mem_read,
	.append = mem_append,
	.flags_changed = mem_flags_changed,
	.expunge = mem_expunge,
};

static int notified[2];

static void
notify(void *ctx)
{
	notified[*(int *)ctx]++;
}

struct fixture {
	struct hub *hub;
	struct mailbox *m1, *m2;
	struct mbox_view *v1, *v2;
	int id1, id2;
};

static int
setup(void **state)
{
	struct storage_ctx ctx = { &mem_backend, NULL };
	struct fixture *f = xcalloc(1, sizeof(*f));
	enum storage_error err;
	uint32_t uid;

	i_zero(&mem_inbox);
	notified[0] = notified[1] = 0;
	f->hub = hub_new(&ctx, NULL);
	assert_int_equal(mailbox_open(f->hub, "t", "alice", "INBOX", &f->m1, &err), 0);
	for (int i = 0; i < 5; i++) {
		char msg[64];
		snprintf(msg, sizeof(msg), "Subject: %d\r\n\r\nbody %d\r\n", i, i);
		assert_int_equal(mailbox_append(f->m1, msg, strlen(msg), 0, 0, 0, 0, &uid, &err,
						"t"),
				 0);
		assert_int_equal(uid, (uint32_t)i + 1);
	}
	f->id1 = 0;
	f->id2 = 1;
	assert_int_equal(mailbox_open(f->hub, "t", "alice", "INBOX", &f->m2, &err), 0);
	/* One shared mailbox for both sessions. */
	assert_ptr_equal(f->m1, f->m2);
	assert_int_equal(mem_inbox.opens, 1);
	f->v1 = mbox_view_new(f->m1, false, notify, &f->id1);
	f->v2 = mbox_view_new(f->m2, false, notify, &f->id2);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	mbox_view_free(&f->v1);
	mbox_view_free(&f->v2);
	mailbox_unref(&f->m1);
	mailbox_unref(&f->m2);
	hub_free(&f->hub);
	for (size_t i = 0; i < N_ELEMENTS(mem_inbox.bodies); i++)
		buf_free(&mem_inbox.bodies[i]);
	free(f);
	return 0;
}

static void
expunge_uids(struct fixture *f, uint32_t a, uint32_t b)
{
	struct mbox_state *st = mailbox_state(f->m1);
	ssize_t ia = mbox_state_find(st, a), ib = mbox_state_find(st, b);

	assert_true(ia >= 0 && ib >= 0);
	assert_int_equal(mailbox_set_flags(f->m1, f->v1, (size_t)ia, MAIL_DELETED, 0, &st_err, "t"), 0);
	assert_int_equal(mailbox_set_flags(f->m1, f->v1, (size_t)ib, MAIL_DELETED, 0, &st_err, "t"), 0);
	assert_int_equal(mailbox_expunge(f->m1, NULL, &st_err, "t"), 0);
	mailbox_changed(f->m1, f->v1);
}

/* mailbox_octets() (the quota's running total): the sum of the sizes,
   taken again after an append and after an expunge, the same value in
   between without a pass (a size changed under it is not seen, which
   shows that no pass was made). */
static void
test_octets_follow_appends_and_expunges(void **state)
{
	struct fixture *f = *state;
	struct mbox_state *st = mailbox_state(f->m1);
	enum storage_error err;
	uint64_t sum = 0;
	uint32_t uid;

	for (size_t i = 0; i < st->count; i++)
		sum += st->mails[i].size;
	assert_int_equal(mailbox_octets(f->m1), sum);
	st->mails[0].size += 1000;      /* not a change of the message set */
	assert_int_equal(mailbox_octets(f->m1), sum);
	st->mails[0].size -= 1000;
	assert_int_equal(mailbox_append(f->m1, "Subject: x\r\n\r\n1234\r\n", 20, 0, 0, 0, 0,
					&uid, &err, "t"),
			 0);
	assert_int_equal(mailbox_octets(f->m1), sum + 20);
	sum += 20 - st->mails[1].size - st->mails[3].size;
	expunge_uids(f, 2, 4);
	assert_int_equal(mailbox_octets(f->m1), sum);
}

static void
test_expunge_reaches_other_view_with_right_numbers(void **state)
{
	struct fixture *f = *state;
	struct buf out = BUF_INIT;

	expunge_uids(f, 2, 4);
	assert_int_equal(notified[1], 1);
	assert_int_equal(notified[0], 0);
	/* Highest first, so each number is right when it is read. */
	imap_view_sync(f->v2, &out, true);
	assert_string_equal(out.data, "* 4 EXPUNGE\r\n* 2 EXPUNGE\r\n");
	assert_int_equal(f->v2->count, 3);
	assert_int_equal(mbox_view_uid(f->v2, 1), 1);
	assert_int_equal(mbox_view_uid(f->v2, 2), 3);
	assert_int_equal(mbox_view_uid(f->v2, 3), 5);
	buf_reset(&out);
	imap_view_sync(f->v1, &out, true);
	/* v1 holds the five as \Recent: its count drops to 3, and it is
	   told so (Dovecot does; a client summing RECENT counts must not
	   count expunged messages). */
	assert_string_equal(out.data, "* 4 EXPUNGE\r\n* 2 EXPUNGE\r\n* 3 RECENT\r\n");
	/* Nothing more to say afterwards. */
	buf_reset(&out);
	imap_view_sync(f->v2, &out, true);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

static void
test_no_expunge_during_fetch_store_search(void **state)
{
	struct fixture *f = *state;
	struct buf out = BUF_INIT;

	expunge_uids(f, 1, 3);
	imap_view_sync(f->v2, &out, false);
	/* The other session's FLAGS change may be told, but no EXPUNGE. */
	assert_null(strstr(out.data != NULL ? out.data : "", "EXPUNGE"));
	assert_int_equal(f->v2->count, 5);
	/* Sequence numbers still map; the expunged ones map to nothing. */
	assert_int_equal(mbox_view_index(f->v2, 1), -1);
	assert_true(mbox_view_index(f->v2, 2) >= 0);
	assert_int_equal(mbox_view_index(f->v2, 3), -1);
	buf_reset(&out);
	imap_view_sync(f->v2, &out, true);
	assert_string_equal(out.data, "* 3 EXPUNGE\r\n* 1 EXPUNGE\r\n");
	buf_free(&out);
}

static void
test_append_gives_exists_and_recent_to_one_session(void **state)
{
	struct fixture *f = *state;
	struct buf out = BUF_INIT;
	enum storage_error err;
	uint32_t uid;

	assert_int_equal(mailbox_append(f->m1, "x\r\n\r\ny\r\n", 8, 0, 0, 0, 0, &uid, &err, "t"),
			 0);
	mailbox_changed(f->m1, NULL);
	assert_int_equal(notified[0], 1);
	assert_int_equal(notified[1], 1);
	imap_view_sync(f->v2, &out, true);
	assert_string_equal(out.data, "* 6 EXISTS\r\n* 1 RECENT\r\n");
	assert_true(mbox_view_is_recent(f->v2, uid));
	buf_reset(&out);
	/* \Recent went to the first session that saw it. */
	imap_view_sync(f->v1, &out, true);
	assert_string_equal(out.data, "* 6 EXISTS\r\n");
	assert_false(mbox_view_is_recent(f->v1, uid));
	buf_free(&out);
}

/* A flag write the backend refuses is taken back in memory: the message
   keeps its flags and modseq, HIGHESTMODSEQ does not move, the kind of
   the failure reaches the caller, and no view is told anything. */
static void
test_failed_flag_write_is_taken_back(void **state)
{
	struct fixture *f = *state;
	struct mbox_state *st = mailbox_state(f->m1);
	ssize_t idx = mbox_state_find(st, 3);
	struct mail_rec before;
	uint64_t highest = st->highest_modseq;
	enum storage_error err = STORAGE_ERR_NONE;
	struct buf out = BUF_INIT;

	assert_true(idx >= 0);
	before = st->mails[idx];
	mem_flags_fail = STORAGE_ERR_NO_SPACE;
	assert_int_equal(mailbox_set_flags(f->m1, f->v1, (size_t)idx, MAIL_FLAGGED, 1, &err, "t"),
			 -1);
	mem_flags_fail = STORAGE_ERR_NONE;
	assert_int_equal(err, STORAGE_ERR_NO_SPACE);
	assert_int_equal(st->mails[idx].flags, before.flags);
	assert_int_equal(st->mails[idx].keywords, before.keywords);
	assert_int_equal(st->mails[idx].modseq, before.modseq);
	assert_int_equal(st->highest_modseq, highest);
	mailbox_changed(f->m1, f->v1);
	imap_view_sync(f->v2, &out, false);
	assert_null(out.data != NULL ? strstr(out.data, "FETCH") : NULL);
	buf_free(&out);
	assert_int_equal(mailbox_set_flags(f->m1, f->v1, (size_t)idx, MAIL_FLAGGED, 0, &err, "t"),
			 0);
	assert_int_equal(err, STORAGE_ERR_NONE);
	assert_true(st->highest_modseq > highest);
}

static void
test_flag_change_reaches_other_view_not_own(void **state)
{
	struct fixture *f = *state;
	struct buf out = BUF_INIT;
	ssize_t idx = mbox_state_find(mailbox_state(f->m1), 3);
	int writes = mem_flag_writes;

	assert_int_equal(mailbox_set_flags(f->m1, f->v1, (size_t)idx, MAIL_SEEN | MAIL_FLAGGED, 0, &st_err,
					   "t"),
			 0);
	assert_int_equal(mem_flag_writes, writes + 1);
	/* Setting the same flags again changes nothing, writes nothing. */
	assert_int_equal(mailbox_set_flags(f->m1, f->v1, (size_t)idx, MAIL_SEEN | MAIL_FLAGGED, 0, &st_err,
					   "t"),
			 0);
	assert_int_equal(mem_flag_writes, writes + 1);
	mailbox_changed(f->m1, f->v1);
	imap_view_sync(f->v2, &out, false);
	assert_non_null(strstr(out.data, "* 3 FETCH (FLAGS ("));
	assert_non_null(strstr(out.data, "\\Seen"));
	assert_non_null(strstr(out.data, "\\Flagged"));
	buf_reset(&out);
	imap_view_sync(f->v1, &out, true);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

static void
test_readonly_view_does_not_claim_recent(void **state)
{
	struct fixture *f = *state;
	struct mbox_view *ro;
	struct mailbox *m;
	enum storage_error err;
	uint32_t uid;

	assert_int_equal(mailbox_append(f->m1, "a\r\n\r\nb\r\n", 8, 0, 0, 0, 0, &uid, &err, "t"),
			 0);
	assert_int_equal(mailbox_open(f->hub, "t", "alice", "INBOX", &m, &err), 0);
	ro = mbox_view_new(m, true, NULL, NULL);
	assert_true(mbox_view_is_recent(ro, uid));
	mbox_view_free(&ro);
	mailbox_unref(&m);
	/* Still recent for the next read-write session. */
	struct buf out = BUF_INIT;
	imap_view_sync(f->v1, &out, true);
	assert_true(mbox_view_is_recent(f->v1, uid));
	buf_free(&out);
}

static void
test_uid_expunge_only_named_uids(void **state)
{
	struct fixture *f = *state;
	struct mbox_state *st = mailbox_state(f->m1);
	struct seqset set = { 0 };

	for (uint32_t uid = 1; uid <= 5; uid++)
		assert_int_equal(mailbox_set_flags(f->m1, f->v1, (size_t)mbox_state_find(st, uid),
						   MAIL_DELETED, 0, &st_err, "t"),
				 0);
	assert_int_equal(seqset_parse("2,5", 5, &set), 0);
	assert_int_equal(mailbox_expunge(f->m1, &set, &st_err, "t"), 0);
	seqset_free(&set);
	assert_int_equal(st->count, 3);
	assert_int_equal(mbox_state_find(st, 2), -1);
	assert_int_equal(mbox_state_find(st, 5), -1);
	assert_true(mbox_state_find(st, 1) >= 0);
}

/* An expunge whose backend caught up with other processes' changes has
   the modseq the backend gave it, not the lower one the hub expected: a
   QRESYNC client that saw one of those changes' modseqs is still told of
   it (RFC 7162 3.2.5.2). */
static void
test_expunge_takes_the_backends_higher_modseq(void **state)
{
	struct fixture *f = *state;
	struct mbox_state *st = mailbox_state(f->m1);
	struct seqset set = { 0 }, vanished = { 0 };
	uint64_t before = st->highest_modseq;
	struct buf text = BUF_INIT;

	mem_expunge_catchup = 3;
	assert_int_equal(seqset_parse("2", 5, &set), 0);
	assert_int_equal(mailbox_expunge_uids(f->m1, &set, &st_err, "t"), 0);
	mem_expunge_catchup = 0;
	seqset_free(&set);
	/* the hub's own +1, the 3 caught up, then the expunge's */
	assert_int_equal(st->highest_modseq, before + 5);
	/* a client that knew the last change caught up (before + 4) */
	assert_true(mailbox_vanished_since(f->m1, before + 4, NULL, &vanished));
	seqset_write(&vanished, &text);
	buf_append(&text, "", 1);
	assert_string_equal(text.data, "2");
	buf_free(&text);
	seqset_free(&vanished);
	/* and one that knew the expunge itself is told nothing */
	assert_true(mailbox_vanished_since(f->m1, before + 5, NULL, &vanished));
	assert_int_equal(vanished.count, 0);
	seqset_free(&vanished);
}

/* The hub says what changed in a view as data, with no protocol syntax:
   removed messages highest first with the numbers they had, the new
   count, the \Recent count, and whose flags changed. */
static void
test_update_reports_changes_as_data(void **state)
{
	struct fixture *f = *state;
	struct mbox_state *st = mailbox_state(f->m1);
	struct mbox_view_changes ch;
	enum storage_error err;
	uint32_t uid;

	expunge_uids(f, 2, 4);
	assert_int_equal(mailbox_set_flags(f->m1, f->v1, (size_t)mbox_state_find(st, 5), MAIL_SEEN,
					   0, &st_err, "t"),
			 0);
	assert_int_equal(mailbox_append(f->m1, "x\r\n\r\ny\r\n", 8, 0, 0, 0, 0, &uid, &err, "t"),
			 0);
	mailbox_changed(f->m1, NULL);
	mbox_view_update(f->v2, true, &ch);
	assert_int_equal(ch.expunged_count, 2);
	assert_int_equal(ch.expunged[0].seq, 4);
	assert_int_equal(ch.expunged[0].uid, 4);
	assert_int_equal(ch.expunged[1].seq, 2);
	assert_int_equal(ch.expunged[1].uid, 2);
	assert_int_equal(ch.exists, 4);
	assert_true(ch.recent_changed);
	assert_int_equal(ch.recent, 1);
	/* uid 5 is number 3 once 2 and 4 are gone. */
	assert_true(ch.flags_count >= 1);
	assert_int_equal(ch.flags[0].seq, 3);
	assert_int_equal(st->mails[ch.flags[0].idx].uid, 5);
	for (size_t i = 0; i < ch.flags_count; i++)
		assert_int_equal(mbox_view_index(f->v2, ch.flags[i].seq), (ssize_t)ch.flags[i].idx);
	mbox_view_changes_free(&ch);
	assert_int_equal(f->v2->count, 4);
	/* Nothing left to report. */
	mbox_view_update(f->v2, true, &ch);
	assert_int_equal(ch.expunged_count, 0);
	assert_int_equal(ch.exists, 0);
	assert_false(ch.recent_changed);
	assert_int_equal(ch.flags_count, 0);
	mbox_view_changes_free(&ch);
}

/* RFC 7162: with QRESYNC the removals are one VANISHED; with CONDSTORE a
   flag update carries UID and MODSEQ. */
static void
test_qresync_and_condstore_responses(void **state)
{
	struct fixture *f = *state;
	struct mbox_state *st = mailbox_state(f->m1);
	struct buf out = BUF_INIT;
	char want[128];

	f->v2->qresync = true;
	f->v2->condstore = true;
	expunge_uids(f, 2, 4);
	imap_view_sync(f->v2, &out, true);
	assert_string_equal(out.data, "* VANISHED 2,4\r\n");
	buf_reset(&out);
	assert_int_equal(mailbox_set_flags(f->m1, f->v1, (size_t)mbox_state_find(st, 5),
					   MAIL_FLAGGED, 0, &st_err, "t"),
			 0);
	mailbox_changed(f->m1, f->v1);
	imap_view_sync(f->v2, &out, true);
	snprintf(want, sizeof(want), "* 3 FETCH (UID 5 FLAGS (\\Flagged) MODSEQ (%llu))\r\n",
		 (unsigned long long)st->mails[mbox_state_find(st, 5)].modseq);
	assert_string_equal(out.data, want);
	buf_free(&out);
}

static void
test_missing_mailbox_is_not_found(void **state)
{
	struct fixture *f = *state;
	struct mailbox *m = NULL;
	enum storage_error err;

	assert_int_equal(mailbox_open(f->hub, "t", "alice", "Nope", &m, &err), -1);
	assert_int_equal(err, STORAGE_ERR_NOT_FOUND);
	assert_null(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_failed_flag_write_is_taken_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_octets_follow_appends_and_expunges, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expunge_reaches_other_view_with_right_numbers,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_expunge_during_fetch_store_search, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_gives_exists_and_recent_to_one_session,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_flag_change_reaches_other_view_not_own, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_readonly_view_does_not_claim_recent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_uid_expunge_only_named_uids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expunge_takes_the_backends_higher_modseq,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_mailbox_is_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_reports_changes_as_data, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_qresync_and_condstore_responses, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
