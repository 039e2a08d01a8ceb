/* Tests of a session's view of a shared mailbox: the view reads the
   shared state (an identity map, no copy) until the state loses a
   message the session has not been told of; \Recent is held as UID
   ranges, and the first recent UID reaches the backend when it rises,
   so that exactly one session gets \Recent across sessions, restarts
   and the mailbox leaving the hub's linger cache (RFC 3501 2.3.2). On an
   in-memory backend whose "disk" outlives the hub. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mailbox.h"

#include <stdio.h>
#include <stdlib.h>

/* The "disk": what survives a hub (a restart). first_recent is written
   only by hints_changed(), as the backends keep it. */
#define DISK_MAX 64
static struct {
	uint32_t uids[DISK_MAX];
	size_t count;
	uint8_t flags[DISK_MAX];
	uint32_t uidnext, first_recent, seen_below;
	int recent_writes;
} disk;

static int box_token;

static int
mem_open(struct storage *st, const char *user, const char *name, struct mbox_state *state,
	 struct storage_box **box_r, enum storage_error *err_r, char **error_r)
{
	state->uidvalidity = 7;
	for (size_t i = 0; i < disk.count; i++) {
		struct mail_rec rec;

		i_zero(&rec);
		rec.uid = disk.uids[i];
		rec.flags = disk.flags[i];
		rec.modseq = 1;
		(void)mbox_state_append(state, &rec);
	}
	state->uidnext = disk.uidnext;
	state->first_recent_uid = disk.first_recent;
	state->seen_below = disk.seen_below;
	*box_r = (struct storage_box *)&box_token;
	return 0;
}

static void
mem_close(struct storage_box **box)
{
	*box = NULL;
}

/* Another process removed messages from the disk: the state follows. */
static int
mem_sync(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	 char **error_r)
{
	uint32_t gone[DISK_MAX];
	size_t n = 0;

	for (size_t i = 0; i < state->count; i++) {
		bool found = false;

		for (size_t j = 0; j < disk.count && !found; j++)
			found = disk.uids[j] == state->mails[i].uid;
		if (!found)
			gone[n++] = state->mails[i].uid;
	}
	mbox_state_remove_uids(state, gone, n);
	return 0;
}

static int
mem_read(struct storage_box *box, const struct mail_rec *rec, struct buf *out,
	 enum storage_error *err_r, char **error_r)
{
	return 0;
}

static int
mem_append(struct storage_box *box, struct mbox_state *state, const char *data, size_t len,
	   uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
	   uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	struct mail_rec rec;

	i_zero(&rec);
	rec.uid = state->uidnext;
	rec.modseq = 1;
	(void)mbox_state_append(state, &rec);
	disk.uids[disk.count++] = rec.uid;
	disk.uidnext = state->uidnext;
	*uid_r = rec.uid;
	return 0;
}

static int
mem_flags_changed(struct storage_box *box, struct mbox_state *state, size_t idx,
		  enum storage_error *err_r, char **error_r)
{
	for (size_t i = 0; i < disk.count; i++) {
		if (disk.uids[i] == state->mails[idx].uid)
			disk.flags[i] = state->mails[idx].flags;
	}
	return 0;
}

static void
disk_remove(uint32_t uid)
{
	size_t out = 0;

	for (size_t i = 0; i < disk.count; i++) {
		if (disk.uids[i] != uid) {
			disk.flags[out] = disk.flags[i];
			disk.uids[out++] = disk.uids[i];
		}
	}
	disk.count = out;
}

static int
mem_expunge(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
	    size_t count, enum storage_error *err_r, char **error_r)
{
	for (size_t i = 0; i < count; i++)
		disk_remove(uids[i]);
	mbox_state_remove_uids(state, uids, count);
	return 0;
}

static void
mem_hints_changed(struct storage_box *box, const struct mbox_state *state)
{
	disk.first_recent = state->first_recent_uid;
	disk.seen_below = state->seen_below;
	disk.recent_writes++;
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
	.hints_changed = mem_hints_changed,
};

static struct hub *
hub_start(void)
{
	struct storage_ctx ctx = { &mem_backend, NULL };

	return hub_new(&ctx, NULL);
}

/* The disk holds UIDs 1..n, nobody has seen them. */
static void
disk_fill(size_t n)
{
	i_zero(&disk);
	for (size_t i = 0; i < n; i++)
		disk.uids[disk.count++] = (uint32_t)i + 1;
	disk.uidnext = (uint32_t)n + 1;
	disk.first_recent = 1;
}

struct session {
	struct mailbox *mbox;
	struct mbox_view *view;
};

static void
session_open(struct hub *hub, struct session *s, bool readonly)
{
	enum storage_error err;

	assert_int_equal(mailbox_open(hub, "t", "alice", "INBOX", &s->mbox, &err), 0);
	s->view = mbox_view_new(s->mbox, readonly, NULL, NULL);
}

static void
session_close(struct session *s)
{
	mbox_view_free(&s->view);
	mailbox_unref(&s->mbox);
}

static void
sync_view(struct session *s, bool allow_expunge, struct mbox_view_changes *ch)
{
	mbox_view_update(s->view, allow_expunge, ch);
}

static void
expunge_uid(struct session *s, uint32_t uid)
{
	struct seqset set = { 0 };
	enum storage_error err;

	seqset_add_range(&set, uid, uid);
	assert_int_equal(mailbox_expunge_uids(s->mbox, &set, &err, "t"), 0);
	seqset_free(&set);
}

static void
test_view_is_identity_until_an_expunge(void **state)
{
	struct hub *hub = hub_start();
	struct session a, b;
	struct mbox_view_changes ch;
	enum storage_error err;
	uint32_t uid;

	disk_fill(6);
	session_open(hub, &a, false);
	session_open(hub, &b, false);
	/* no copy of the UIDs: both read the shared state */
	assert_null(a.view->uids);
	assert_null(b.view->uids);
	assert_int_equal(b.view->count, 6);
	assert_int_equal(mbox_view_uid(b.view, 4), 4);
	assert_int_equal(mbox_view_seq(b.view, 5), 5);
	assert_int_equal(mbox_view_index(b.view, 6), 5);
	/* a new message: still the identity map, once b is told */
	assert_int_equal(mailbox_append(a.mbox, "x", 1, 0, 0, 0, 0, &uid, &err, "t"), 0);
	sync_view(&b, true, &ch);
	assert_int_equal(ch.exists, 7);
	mbox_view_changes_free(&ch);
	assert_null(b.view->uids);
	/* a removes message 3: b has not been told, keeps its numbers */
	expunge_uid(&a, 3);
	assert_non_null(b.view->uids);
	assert_int_equal(b.view->count, 7);
	assert_int_equal(mbox_view_uid(b.view, 3), 3);
	assert_int_equal(mbox_view_index(b.view, 3), -1);
	assert_int_equal(mbox_view_index(b.view, 4), 2);
	assert_int_equal(mbox_view_seq(b.view, 7), 7);
	/* during a FETCH (no EXPUNGE allowed) it stays diverged */
	sync_view(&b, false, &ch);
	assert_int_equal(ch.expunged_count, 0);
	mbox_view_changes_free(&ch);
	assert_non_null(b.view->uids);
	/* told: the shared state's first messages again, no copy */
	sync_view(&b, true, &ch);
	assert_int_equal(ch.expunged_count, 1);
	assert_int_equal(ch.expunged[0].seq, 3);
	assert_int_equal(ch.expunged[0].uid, 3);
	mbox_view_changes_free(&ch);
	assert_null(b.view->uids);
	assert_int_equal(b.view->count, 6);
	assert_int_equal(mbox_view_uid(b.view, 3), 4);
	sync_view(&a, true, &ch);
	mbox_view_changes_free(&ch);
	assert_null(a.view->uids);
	session_close(&a);
	session_close(&b);
	hub_free(&hub);
}

/* A session's own change made in a job is told in its command's answer:
   the view's next sync does not tell it again, but tells the changes of
   others that the job's commit brought in with it (at lower modseqs),
   and those made after it; another session is told of all of them. */
static void
test_own_change_in_a_job_not_told_again(void **state)
{
	struct hub *hub = hub_start();
	struct session a, b;
	struct mbox_view_changes ch;
	struct mbox_state *st;
	uint64_t h;

	disk_fill(4);
	session_open(hub, &a, false);
	session_open(hub, &b, false);
	st = mailbox_state(a.mbox);
	h = st->highest_modseq;
	assert_int_equal(a.view->synced_modseq, h);
	/* the commit: another process's change to message 3 (h + 1), then
	   a's to messages 1 and 2 (h + 2) */
	st->mails[2].modseq = h + 1;
	st->mails[0].modseq = st->mails[1].modseq = h + 2;
	st->highest_modseq = h + 2;
	mbox_view_told_own_change(a.view, h, h + 2);
	sync_view(&a, true, &ch);
	assert_int_equal(ch.flags_count, 1);
	assert_int_equal(ch.flags[0].seq, 3);
	mbox_view_changes_free(&ch);
	sync_view(&b, true, &ch);
	assert_int_equal(ch.flags_count, 3);
	mbox_view_changes_free(&ch);
	/* another change to message 1 afterwards is told to a */
	st->mails[0].modseq = h + 3;
	st->highest_modseq = h + 3;
	sync_view(&a, true, &ch);
	assert_int_equal(ch.flags_count, 1);
	assert_int_equal(ch.flags[0].seq, 1);
	mbox_view_changes_free(&ch);
	/* nothing else came in: caught up at once, nothing to tell */
	st->mails[3].modseq = h + 4;
	st->highest_modseq = h + 4;
	mbox_view_told_own_change(a.view, h + 3, h + 4);
	assert_int_equal(a.view->synced_modseq, h + 4);
	sync_view(&a, true, &ch);
	assert_int_equal(ch.flags_count, 0);
	mbox_view_changes_free(&ch);
	/* no change written (0): nothing skipped */
	mbox_view_told_own_change(b.view, h, 0);
	sync_view(&b, true, &ch);
	assert_int_equal(ch.flags_count, 2);
	mbox_view_changes_free(&ch);
	session_close(&a);
	session_close(&b);
	hub_free(&hub);
}

static void
test_removal_beyond_the_view_keeps_identity(void **state)
{
	struct hub *hub = hub_start();
	struct session a, b;
	struct mbox_view_changes ch;
	enum storage_error err;
	uint32_t uid;

	disk_fill(4);
	session_open(hub, &a, false);
	session_open(hub, &b, false);
	assert_int_equal(mailbox_append(a.mbox, "x", 1, 0, 0, 0, 0, &uid, &err, "t"), 0);
	/* b never saw message 5: its removal changes nothing of b's map */
	expunge_uid(&a, uid);
	assert_null(b.view->uids);
	sync_view(&b, true, &ch);
	assert_int_equal(ch.expunged_count, 0);
	assert_int_equal(ch.exists, 0);
	mbox_view_changes_free(&ch);
	assert_int_equal(b.view->count, 4);
	session_close(&a);
	session_close(&b);
	hub_free(&hub);
}

static void
test_removal_by_another_process_diverges(void **state)
{
	struct hub *hub = hub_start();
	struct session a;
	struct mbox_view_changes ch;
	enum storage_error err;

	disk_fill(5);
	session_open(hub, &a, false);
	disk_remove(2);
	disk_remove(5);
	assert_int_equal(mailbox_refresh(a.mbox, &err, "t"), 0);
	assert_non_null(a.view->uids);
	assert_int_equal(mbox_view_index(a.view, 2), -1);
	assert_int_equal(mbox_view_index(a.view, 3), 1);
	sync_view(&a, true, &ch);
	assert_int_equal(ch.expunged_count, 2);
	assert_int_equal(ch.expunged[0].seq, 5);
	assert_int_equal(ch.expunged[1].seq, 2);
	mbox_view_changes_free(&ch);
	/* both were \Recent for a (the EXPUNGE responses tell the drop) */
	assert_null(a.view->uids);
	assert_int_equal(mbox_view_recent_count(a.view), 3);
	session_close(&a);
	hub_free(&hub);
}

static void
test_recent_for_exactly_one_session(void **state)
{
	struct hub *hub = hub_start();
	struct session a, b, ro;
	struct mbox_view_changes ch;
	enum storage_error err;
	uint32_t uid;

	disk_fill(5);
	session_open(hub, &ro, true);
	/* read-only: sees them as \Recent, takes nothing */
	assert_int_equal(mbox_view_recent_count(ro.view), 5);
	assert_int_equal(disk.first_recent, 1);
	session_open(hub, &a, false);
	assert_int_equal(mbox_view_recent_count(a.view), 5);
	assert_true(mbox_view_is_recent(a.view, 1));
	assert_true(mbox_view_is_recent(a.view, 5));
	/* taken, and the backend was told */
	assert_int_equal(disk.first_recent, 6);
	session_open(hub, &b, false);
	assert_int_equal(mbox_view_recent_count(b.view), 0);
	assert_false(mbox_view_is_recent(b.view, 3));
	/* new messages go to the first session that syncs */
	assert_int_equal(mailbox_append(a.mbox, "x", 1, 0, 0, 0, 0, &uid, &err, "t"), 0);
	sync_view(&b, true, &ch);
	assert_true(ch.recent_changed);
	assert_int_equal(ch.recent, 1);
	mbox_view_changes_free(&ch);
	assert_true(mbox_view_is_recent(b.view, uid));
	sync_view(&a, true, &ch);
	assert_false(ch.recent_changed);
	mbox_view_changes_free(&ch);
	assert_false(mbox_view_is_recent(a.view, uid));
	assert_int_equal(mbox_view_recent_count(a.view), 5);
	/* then to a again: a holds two ranges */
	assert_int_equal(mailbox_append(a.mbox, "y", 1, 0, 0, 0, 0, &uid, &err, "t"), 0);
	sync_view(&a, true, &ch);
	assert_int_equal(ch.recent, 6);
	mbox_view_changes_free(&ch);
	assert_true(mbox_view_is_recent(a.view, uid));
	assert_false(mbox_view_is_recent(a.view, uid - 1));
	assert_true(mbox_view_is_recent(a.view, 2));
	/* an expunge of a \Recent message lowers the count */
	expunge_uid(&b, 2);
	sync_view(&a, true, &ch);
	assert_int_equal(ch.expunged_count, 1);
	mbox_view_changes_free(&ch);
	assert_int_equal(mbox_view_recent_count(a.view), 5);
	assert_false(mbox_view_is_recent(a.view, 2));
	session_close(&ro);
	session_close(&a);
	session_close(&b);
	hub_free(&hub);
}

static void
test_recent_after_restart_and_linger(void **state)
{
	struct hub *hub = hub_start();
	struct session a, b;
	enum storage_error err;
	uint32_t uid;

	disk_fill(8);
	session_open(hub, &a, false);
	assert_int_equal(mbox_view_recent_count(a.view), 8);
	session_close(&a);
	/* a restart: nothing else was written, first_recent was */
	hub_free(&hub);
	hub = hub_start();
	session_open(hub, &b, false);
	assert_int_equal(b.view->count, 8);
	assert_int_equal(mbox_view_recent_count(b.view), 0);
	/* one new message, while nobody has the mailbox open */
	session_close(&b);
	hub_forget(hub, "alice", "INBOX");
	assert_null(hub_find(hub, "alice", "INBOX"));
	session_open(hub, &a, false);
	assert_int_equal(mailbox_append(a.mbox, "x", 1, 0, 0, 0, 0, &uid, &err, "t"), 0);
	session_close(&a);
	hub_forget(hub, "alice", "INBOX");
	/* the mailbox left the hub: the next session gets the new one only */
	session_open(hub, &b, false);
	assert_int_equal(mbox_view_recent_count(b.view), 1);
	assert_true(mbox_view_is_recent(b.view, uid));
	session_close(&b);
	hub_forget(hub, "alice", "INBOX");
	session_open(hub, &a, false);
	assert_int_equal(mbox_view_recent_count(a.view), 0);
	session_close(&a);
	hub_free(&hub);
}

static void
set_seen(struct session *s, uint32_t uid, bool seen)
{
	struct mbox_state *st = mailbox_state(s->mbox);
	ssize_t idx = mbox_state_find(st, uid);
	enum storage_error err;

	assert_true(idx >= 0);
	assert_int_equal(mailbox_set_flags(s->mbox, s->view, (size_t)idx, seen ? MAIL_SEEN : 0, 0,
					   &err, "t"),
			 0);
}

static void
test_first_unseen_uses_and_keeps_the_hint(void **state)
{
	struct hub *hub = hub_start();
	struct session a, b;
	struct mbox_view_changes ch;

	disk_fill(8);
	session_open(hub, &a, false);
	assert_int_equal(mbox_view_first_unseen(a.view), 1);
	for (uint32_t uid = 1; uid <= 5; uid++)
		set_seen(&a, uid, true);
	assert_int_equal(mbox_view_first_unseen(a.view), 6);
	/* raised, and the backend was told */
	assert_int_equal(mailbox_state(a.mbox)->seen_below, 6);
	assert_int_equal(disk.seen_below, 6);
	/* a message below the hint loses \Seen: the hint follows */
	set_seen(&a, 3, false);
	assert_int_equal(mailbox_state(a.mbox)->seen_below, 3);
	assert_int_equal(mbox_view_first_unseen(a.view), 3);
	set_seen(&a, 3, true);
	for (uint32_t uid = 6; uid <= 8; uid++)
		set_seen(&a, uid, true);
	assert_int_equal(mbox_view_first_unseen(a.view), 0);
	assert_int_equal(mailbox_state(a.mbox)->seen_below, 9);
	session_close(&a);
	/* after a restart: the kept hint, the same answers */
	hub_free(&hub);
	hub = hub_start();
	session_open(hub, &a, false);
	assert_int_equal(mailbox_state(a.mbox)->seen_below, 9);
	assert_int_equal(mbox_view_first_unseen(a.view), 0);
	set_seen(&a, 7, false);
	assert_int_equal(mbox_view_first_unseen(a.view), 7);
	/* a view that kept an expunged message counts by its own numbers */
	session_open(hub, &b, false);
	expunge_uid(&a, 2);
	assert_non_null(b.view->uids);
	assert_int_equal(mbox_view_first_unseen(b.view), 7);
	sync_view(&b, true, &ch);
	mbox_view_changes_free(&ch);
	assert_int_equal(mbox_view_first_unseen(b.view), 6);
	session_close(&a);
	session_close(&b);
	hub_free(&hub);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_view_is_identity_until_an_expunge),
		cmocka_unit_test(test_own_change_in_a_job_not_told_again),
		cmocka_unit_test(test_removal_beyond_the_view_keeps_identity),
		cmocka_unit_test(test_removal_by_another_process_diverges),
		cmocka_unit_test(test_recent_for_exactly_one_session),
		cmocka_unit_test(test_recent_after_restart_and_linger),
		cmocka_unit_test(test_first_unseen_uses_and_keeps_the_hint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
