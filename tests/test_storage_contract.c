/* test_storage_contract.c: the storage contract (core/hub/storage.h), one
   suite run against every backend of the registry, and then a few tests
   of what only the Maildir layout promises (other tools' Maildirs, flag
   letters, stale tmp/ files).

   Every test runs in its own mkdtemp() root. The crash trials kill a
   child with SIGKILL at random points of append and of expunge and then
   reopen the mailbox: nothing acknowledged may be lost, nothing may be
   duplicated or half-written. CONTRACT_CRASH_KILLS (environment) sets the
   number of kills per operation and backend (default 110 + 110).

   The hierarchy part of the contract (names with inferiors, RENAME of a
   tree, killed RENAMEs) is tests/test_storage_hierarchy.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"
#include "buf.h"
#include "registry.h"
#include "tmp_tree.h"
#include "pg_test.h"

/* The kind of the last storage failure (the calls below want one). */
static enum storage_error st_err;

/* The backend under test (set before each group runs). */
static const struct storage_backend *B;

struct fx {
	char root[64];
	struct storage *st;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct storage_settings set;
	char *error = NULL;

	strcpy(fx->root, "/tmp/test_contract.XXXXXX");
	assert_non_null(mkdtemp(fx->root));
	set.root = fx->root;
	set.conninfo = pg_test_conninfo();
	if (B->init_db != NULL && pg_test_reset(B, &error) < 0)
		fail_msg("%s: %s", B->name, error);
	if (B->init(&set, &fx->st, &error) < 0)
		fail_msg("%s init: %s", B->name, error);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	storage_lock_wait_ms = 10000;   /* as a test may have shortened it */
	B->deinit(&fx->st);
	assert_null(fx->st);
	tmp_tree_remove(fx->root);
	free(fx);
	return 0;
}

static struct storage_box *
open_box(struct fx *fx, const char *user, const char *name, struct mbox_state *s)
{
	struct storage_box *box = NULL;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	mbox_state_init(s);
	if (B->open(fx->st, user, name, s, &box, &err, &error) < 0)
		fail_msg("%s: open %s/%s: %s", B->name, user, name, error);
	return box;
}

static void
close_box(struct storage_box **box, struct mbox_state *s)
{
	B->close(box);
	assert_null(*box);
	mbox_state_deinit(s);
}

static char *
msg_text(struct storage_box *box, const struct mail_rec *rec)
{
	struct buf b = BUF_INIT;
	char *error = NULL;

	if (B->read(box, rec, &b, &st_err, &error) < 0)
		fail_msg("%s: read uid %u: %s", B->name, rec->uid, error);
	assert_int_equal(b.len, rec->size);
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

static uint32_t
append_full(struct storage_box *box, struct mbox_state *s, const char *data, uint8_t flags,
	    uint64_t kw, int64_t date, int32_t tz)
{
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;
	uint32_t uid = 0;

	if (B->append(box, s, data, strlen(data), flags, kw, date, tz, &uid, &err, &error) < 0)
		fail_msg("%s: append: %s", B->name, error);
	assert_true(uid > 0);
	assert_int_equal(s->mails[s->count - 1].uid, uid);
	return uid;
}

static uint32_t
append_msg(struct storage_box *box, struct mbox_state *s, const char *data, uint8_t flags)
{
	return append_full(box, s, data, flags, 0, 0, 0);
}

static void
set_flags(struct storage_box *box, struct mbox_state *s, size_t idx, uint8_t flags, uint64_t kw)
{
	char *error = NULL;

	assert_true(mbox_state_set_flags(s, idx, flags, kw));
	if (B->flags_changed(box, s, idx, &st_err, &error) < 0)
		fail_msg("%s: flags_changed: %s", B->name, error);
}

static void
expunge_uids(struct storage_box *box, struct mbox_state *s, const uint32_t *uids, size_t n)
{
	char *error = NULL;

	if (B->expunge(box, s, uids, n, &st_err, &error) < 0)
		fail_msg("%s: expunge: %s", B->name, error);
}

static int
do_sync(struct storage_box *box, struct mbox_state *s)
{
	char *error = NULL;
	int ret = B->sync(box, s, &st_err, &error);

	if (ret < 0)
		fail_msg("%s: sync: %s", B->name, error);
	return ret;
}

static char *
simple_msg(unsigned n)
{
	return xasprintf("From: a@x\r\nSubject: m%u\r\n\r\nbody %u\r\n", n, n);
}

static struct strlist
texts_of(struct storage_box *box, struct mbox_state *s)
{
	struct strlist l = { NULL, 0, 0 };

	for (size_t i = 0; i < s->count; i++)
		strlist_add_take(&l, msg_text(box, &s->mails[i]));
	return l;
}

static void
assert_no_duplicates(const struct strlist *l)
{
	for (size_t i = 0; i < l->count; i++) {
		for (size_t j = i + 1; j < l->count; j++)
			assert_string_not_equal(l->items[i], l->items[j]);
	}
}

static void
assert_uids_ascend(const struct mbox_state *s)
{
	for (size_t i = 1; i < s->count; i++)
		assert_true(s->mails[i].uid > s->mails[i - 1].uid);
	if (s->count > 0)
		assert_true(s->uidnext > s->mails[s->count - 1].uid);
}

/* Changes made "by another program", per backend: a new message (LF line
   ends, lab style without the final "." when the backend adds it) and,
   where the format keeps flags in file names, a flag change. */
struct external {
	const char *backend;
	void (*add)(struct fx *fx, const char *user, const char *hdr_body);
	/* Marks the message whose text contains needle \Seen and \Flagged;
	   NULL when flags live only in our own index. */
	void (*flag)(struct fx *fx, const char *user, const char *needle);
};

static void
flat_external_add(struct fx *fx, const char *user, const char *msg)
{
	char *path = xasprintf("%s/%s/mymailbox.mail", fx->root, user);
	FILE *f = fopen(path, "a");

	assert_non_null(f);
	fprintf(f, "%s.\n", msg);
	assert_int_equal(fclose(f), 0);
	free(path);
}

static void
maildir_external_add(struct fx *fx, const char *user, const char *msg)
{
	char *tmp = xasprintf("%s/%s/Maildir/tmp/1700000000.M1P%ld.otherhost", fx->root, user,
			      (long)getpid());
	char *dst = xasprintf("%s/%s/Maildir/new/1700000000.M1P%ld.otherhost", fx->root, user,
			      (long)getpid());
	FILE *f = fopen(tmp, "w");

	assert_non_null(f);
	fputs(msg, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, dst), 0);
	free(tmp);
	free(dst);
}

static bool
file_contains(const char *path, const char *needle)
{
	char data[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return false;
	n = fread(data, 1, sizeof(data) - 1, f);
	fclose(f);
	data[n] = '\0';
	return strstr(data, needle) != NULL;
}

/* What mutt does when a message is read and flagged: rename in cur/. */
static void
maildir_external_flag(struct fx *fx, const char *user, const char *needle)
{
	bool done = false;

	for (unsigned s = 0; s < 2 && !done; s++) {
		char *dir = xasprintf("%s/%s/Maildir/%s", fx->root, user, s == 0 ? "cur" : "new");
		DIR *d = opendir(dir);
		struct dirent *de;

		assert_non_null(d);
		while (!done && (de = readdir(d)) != NULL) {
			char *path, *to, *base;

			if (de->d_name[0] == '.')
				continue;
			path = xasprintf("%s/%s", dir, de->d_name);
			if (file_contains(path, needle)) {
				base = xstrndup(de->d_name, strcspn(de->d_name, ":"));
				to = xasprintf("%s/%s/Maildir/cur/%s:2,FS", fx->root, user, base);
				assert_int_equal(rename(path, to), 0);
				free(base);
				free(to);
				done = true;
			}
			free(path);
		}
		closedir(d);
		free(dir);
	}
	assert_true(done);
}

static const struct external externals[] = {
	{ "flat", flat_external_add, NULL },
	{ "maildir", maildir_external_add, maildir_external_flag },
};

/* The folder that holds a user's INBOX index (mymailbox.mail and its
   index; Maildir/ and its dovecot-uidlist). */
static char *
index_dir(struct fx *fx, const char *user)
{
	if (strcmp(B->name, "maildir") == 0)
		return xasprintf("%s/%s/Maildir", fx->root, user);
	return xasprintf("%s/%s", fx->root, user);
}

static const struct external *
external_of(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(externals); i++) {
		if (strcmp(externals[i].backend, name) == 0)
			return &externals[i];
	}
	return NULL;
}

/* The contract */

static void
test_append_read_round_trip_byte_for_byte(void **state)
{
	struct fx *fx = *state;
	static const char msg[] = "From: x@y\r\nSubject: dots\r\n\r\nline\r\n.\r\n.x\r\n..y\r\n"
		"\r\nend\r\n";
	static const char lf_msg[] = "From: x@y\nSubject: lf\n\nbody\n";
	struct mbox_state s;
	struct storage_box *box;
	struct buf big = BUF_INIT;
	char *text;

	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 0);
	assert_true(s.uidvalidity != 0);
	assert_int_equal(append_msg(box, &s, msg, MAIL_SEEN), 1);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.mails[0].flags, MAIL_SEEN);
	assert_int_equal(s.mails[0].size, strlen(msg));
	text = msg_text(box, &s.mails[0]);
	assert_memory_equal(text, msg, strlen(msg));
	free(text);
	/* LF line ends are served as CRLF, and the size says so */
	assert_int_equal(append_msg(box, &s, lf_msg, 0), 2);
	assert_int_equal(s.mails[1].size, strlen(lf_msg) + 4);
	text = msg_text(box, &s.mails[1]);
	assert_string_equal(text, "From: x@y\r\nSubject: lf\r\n\r\nbody\r\n");
	free(text);
	/* a bigger one, many lines, some 8-bit octets */
	buf_append_str(&big, "From: big@x\r\nSubject: big\r\n\r\n");
	for (unsigned i = 0; i < 5000; i++)
		buf_printf(&big, "line %u \xc3\xa9 %s\r\n", i, i % 7 == 0 ? "." : "text");
	append_msg(box, &s, big.data, 0);
	text = msg_text(box, &s.mails[2]);
	assert_int_equal(strlen(text), big.len);
	assert_memory_equal(text, big.data, big.len);
	free(text);
	close_box(&box, &s);
	/* and the same after reopening */
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 3);
	text = msg_text(box, &s.mails[0]);
	assert_memory_equal(text, msg, strlen(msg));
	free(text);
	text = msg_text(box, &s.mails[2]);
	assert_memory_equal(text, big.data, big.len);
	free(text);
	buf_free(&big);
	close_box(&box, &s);
}

static void
test_flags_keywords_and_dates_persist(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	uint32_t uidvalidity;
	int work, todo;
	char *m;

	box = open_box(fx, "bob", "INBOX", &s);
	for (unsigned i = 1; i <= 4; i++) {
		m = simple_msg(i);
		append_full(box, &s, m, 0, 0, 1646922600 + (int64_t)i * 3600, 330);
		free(m);
	}
	uidvalidity = s.uidvalidity;
	work = mbox_state_keyword(&s, "$Work", true);
	todo = mbox_state_keyword(&s, "todo", true);
	assert_true(work >= 0 && todo >= 0);
	set_flags(box, &s, 1, MAIL_FLAGGED | MAIL_SEEN, 1ULL << work);
	set_flags(box, &s, 2, MAIL_DELETED | MAIL_ANSWERED | MAIL_DRAFT,
		  (1ULL << work) | (1ULL << todo));
	set_flags(box, &s, 3, MAIL_SEEN, 0);
	set_flags(box, &s, 3, 0, 0);
	/* appended with flags and a keyword at once */
	m = simple_msg(5);
	append_full(box, &s, m, MAIL_SEEN | MAIL_ANSWERED, 1ULL << todo, 0, 0);
	free(m);
	close_box(&box, &s);

	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_int_equal(s.count, 5);
	assert_int_equal(s.uidnext, 6);
	assert_int_equal(s.mails[0].flags, 0);
	assert_int_equal(s.mails[0].keywords, 0);
	assert_int_equal(s.mails[1].flags, MAIL_FLAGGED | MAIL_SEEN);
	work = mbox_state_keyword(&s, "$work", false);   /* case-insensitive */
	todo = mbox_state_keyword(&s, "todo", false);
	assert_true(work >= 0 && todo >= 0);
	assert_int_equal(s.mails[1].keywords, 1ULL << work);
	assert_int_equal(s.mails[2].flags, MAIL_DELETED | MAIL_ANSWERED | MAIL_DRAFT);
	assert_int_equal(s.mails[2].keywords, (1ULL << work) | (1ULL << todo));
	assert_int_equal(s.mails[3].flags, 0);
	assert_int_equal(s.mails[4].flags, MAIL_SEEN | MAIL_ANSWERED);
	assert_int_equal(s.mails[4].keywords, 1ULL << todo);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(s.mails[i].internal_date, 1646922600 + (int64_t)(i + 1) * 3600);
		assert_int_equal(s.mails[i].tz_minutes, 330);
	}
	assert_true(s.mails[4].internal_date > time(NULL) - 3600);
	for (unsigned i = 0; i < 5; i++) {
		char *text = msg_text(box, &s.mails[i]);

		m = simple_msg(i + 1);
		assert_string_equal(text, m);
		free(m);
		free(text);
	}
	/* nothing changed: sync is a no-op */
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.count, 5);
	assert_int_equal(s.mails[1].flags, MAIL_FLAGGED | MAIL_SEEN);
	close_box(&box, &s);
}

static void
test_expunge_keeps_rest_and_never_reuses_uids(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	uint32_t uids[] = { 2, 4 }, last[] = { 6 };
	char *m, *text;

	box = open_box(fx, "bob", "INBOX", &s);
	for (unsigned i = 1; i <= 5; i++) {
		m = simple_msg(i);
		append_msg(box, &s, m, i == 3 ? MAIL_ANSWERED : 0);
		free(m);
	}
	expunge_uids(box, &s, uids, 2);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.mails[0].uid, 1);
	assert_int_equal(s.mails[1].uid, 3);
	assert_int_equal(s.mails[2].uid, 5);
	text = msg_text(box, &s.mails[1]);
	m = simple_msg(3);
	assert_string_equal(text, m);
	free(m);
	free(text);
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.count, 3);
	/* the highest one expunged: its UID is still never given again */
	m = simple_msg(6);
	assert_int_equal(append_msg(box, &s, m, 0), 6);
	free(m);
	expunge_uids(box, &s, last, 1);
	close_box(&box, &s);

	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.mails[1].uid, 3);
	assert_int_equal(s.mails[1].flags, MAIL_ANSWERED);
	assert_int_equal(s.uidnext, 7);
	for (unsigned i = 0; i < 3; i++) {
		text = msg_text(box, &s.mails[i]);
		m = simple_msg(s.mails[i].uid);
		assert_string_equal(text, m);
		free(m);
		free(text);
	}
	m = simple_msg(7);
	assert_int_equal(append_msg(box, &s, m, 0), 7);
	free(m);
	/* expunging an unknown UID changes nothing */
	last[0] = 99;
	expunge_uids(box, &s, last, 1);
	assert_int_equal(s.count, 4);
	close_box(&box, &s);
}

static void
test_uids_and_uidvalidity_stable_across_reopen(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	uint32_t uidvalidity, uids[10];
	char *m;

	box = open_box(fx, "bob", "INBOX", &s);
	for (unsigned i = 0; i < 10; i++) {
		m = simple_msg(i);
		uids[i] = append_msg(box, &s, m, 0);
		free(m);
	}
	uidvalidity = s.uidvalidity;
	close_box(&box, &s);
	for (unsigned round = 0; round < 3; round++) {
		box = open_box(fx, "bob", "INBOX", &s);
		assert_int_equal(s.uidvalidity, uidvalidity);
		assert_int_equal(s.count, 10);
		assert_int_equal(s.uidnext, 11);
		for (unsigned i = 0; i < 10; i++)
			assert_int_equal(s.mails[i].uid, uids[i]);
		close_box(&box, &s);
	}
	/* another mailbox has its own lineage */
	{
		enum storage_error err;
		char *error = NULL;

		assert_int_equal(B->create(fx->st, "bob", "Other", &err, &error), 0);
		box = open_box(fx, "bob", "Other", &s);
		assert_int_equal(s.count, 0);
		assert_int_equal(s.uidnext, 1);
		assert_true(s.uidvalidity != 0);
		close_box(&box, &s);
	}
}

/* COPY is read + append (with flags and date); MOVE is COPY + expunge. */
static void
test_copy_and_move_between_mailboxes(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s, t;
	struct storage_box *src, *dst;
	enum storage_error err;
	char *error = NULL, *text, *m;
	uint32_t uid;

	assert_int_equal(B->create(fx->st, "bob", "Saved", &err, &error), 0);
	src = open_box(fx, "bob", "INBOX", &s);
	for (unsigned i = 1; i <= 3; i++) {
		m = simple_msg(i);
		append_full(src, &s, m, i == 2 ? MAIL_FLAGGED : 0, 0, 1600000000 + i, -300);
		free(m);
	}
	dst = open_box(fx, "bob", "Saved", &t);
	for (size_t i = 0; i < s.count; i++) {
		text = msg_text(src, &s.mails[i]);
		uid = append_full(dst, &t, text, s.mails[i].flags, 0, s.mails[i].internal_date,
				  s.mails[i].tz_minutes);
		assert_int_equal(uid, i + 1);
		free(text);
	}
	/* move message 2: copy done above, now flag and expunge at the source */
	set_flags(src, &s, 1, MAIL_FLAGGED | MAIL_DELETED, 0);
	uid = s.mails[1].uid;
	expunge_uids(src, &s, &uid, 1);
	assert_int_equal(s.count, 2);
	close_box(&src, &s);
	close_box(&dst, &t);

	dst = open_box(fx, "bob", "Saved", &t);
	assert_int_equal(t.count, 3);
	for (unsigned i = 0; i < 3; i++) {
		text = msg_text(dst, &t.mails[i]);
		m = simple_msg(i + 1);
		assert_string_equal(text, m);
		free(m);
		free(text);
		assert_int_equal(t.mails[i].internal_date, 1600000000 + i + 1);
		assert_int_equal(t.mails[i].tz_minutes, -300);
	}
	assert_int_equal(t.mails[1].flags, MAIL_FLAGGED);
	close_box(&dst, &t);
	src = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 2);
	assert_int_equal(s.mails[0].uid, 1);
	assert_int_equal(s.mails[1].uid, 3);
	close_box(&src, &s);
}

/* Two boxes of one mailbox (two processes, in effect) see each other's
   appends, flag changes and expunges through sync(). */
static void
test_two_openers_see_each_other_through_sync(void **state)
{
	struct fx *fx = *state;
	struct mbox_state a, b;
	struct storage_box *ba, *bb;
	uint32_t uid;
	char *m;

	ba = open_box(fx, "bob", "INBOX", &a);
	bb = open_box(fx, "bob", "INBOX", &b);
	m = simple_msg(1);
	append_msg(ba, &a, m, 0);
	free(m);
	m = simple_msg(2);
	append_msg(bb, &b, m, 0);
	free(m);
	do_sync(ba, &a);
	do_sync(bb, &b);
	assert_int_equal(a.count, 2);
	assert_int_equal(b.count, 2);
	assert_int_equal(a.mails[0].uid, b.mails[0].uid);
	assert_int_equal(a.mails[1].uid, b.mails[1].uid);
	assert_true(a.mails[0].uid != a.mails[1].uid);
	set_flags(ba, &a, 0, MAIL_SEEN, 0);
	do_sync(bb, &b);
	assert_int_equal(b.mails[0].flags, MAIL_SEEN);
	uid = a.mails[0].uid;
	expunge_uids(ba, &a, &uid, 1);
	do_sync(bb, &b);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.mails[0].uid, a.mails[0].uid);
	{
		char *t1 = msg_text(bb, &b.mails[0]);

		m = simple_msg(2);
		assert_string_equal(t1, m);
		free(m);
		free(t1);
	}
	close_box(&ba, &a);
	close_box(&bb, &b);
}

static void
test_external_changes_noticed_by_sync(void **state)
{
	struct fx *fx = *state;
	const struct external *ext = external_of(B->name);
	struct mbox_state s;
	struct storage_box *box;
	uint32_t uid1;
	char *text, *m;

	if (ext == NULL)
		skip();
	box = open_box(fx, "bob", "INBOX", &s);
	m = simple_msg(1);
	uid1 = append_msg(box, &s, m, 0);
	free(m);
	ext->add(fx, "bob", "From: ext@x\nSubject: external\n\nbody\n");
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.count, 2);
	assert_int_equal(s.mails[0].uid, uid1);
	assert_true(s.mails[1].uid > uid1);
	text = msg_text(box, &s.mails[1]);
	assert_string_equal(text, "From: ext@x\r\nSubject: external\r\n\r\nbody\r\n");
	free(text);
	if (ext->flag != NULL) {
		ext->flag(fx, "bob", "Subject: m1");
		assert_int_equal(do_sync(box, &s), 0);
		assert_int_equal(s.count, 2);
		assert_int_equal(s.mails[0].flags, MAIL_SEEN | MAIL_FLAGGED);
		/* still readable under its new name */
		text = msg_text(box, &s.mails[0]);
		m = simple_msg(1);
		assert_string_equal(text, m);
		free(m);
		free(text);
	}
	close_box(&box, &s);
	/* the UID it got is kept */
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 2);
	assert_int_equal(s.mails[0].uid, uid1);
	if (ext->flag != NULL)
		assert_int_equal(s.mails[0].flags, MAIL_SEEN | MAIL_FLAGGED);
	close_box(&box, &s);
}

/* CONDSTORE/QRESYNC (RFC 7162) rely on these: a modseq the clients saw
   is the modseq they see after a restart. */
static void
test_modseqs_survive_close_and_reopen(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	uint64_t modseqs[4], highest;
	char *m;

	box = open_box(fx, "bob", "INBOX", &s);
	for (unsigned i = 0; i < 4; i++) {
		m = simple_msg(i);
		append_msg(box, &s, m, 0);
		free(m);
	}
	set_flags(box, &s, 0, MAIL_SEEN, 0);
	set_flags(box, &s, 2, MAIL_FLAGGED, 0);
	set_flags(box, &s, 2, MAIL_FLAGGED | MAIL_ANSWERED, 0);
	/* a keyword alone changes the modseq as much as a flag */
	set_flags(box, &s, 3, 0, 1ULL << mbox_state_keyword(&s, "$Label1", true));
	for (unsigned i = 0; i < 4; i++) {
		modseqs[i] = s.mails[i].modseq;
		assert_true(modseqs[i] > 0);
		assert_true(modseqs[i] <= s.highest_modseq);
	}
	assert_true(modseqs[2] > modseqs[0]);
	assert_true(modseqs[3] > modseqs[2]);
	highest = s.highest_modseq;
	close_box(&box, &s);
	/* (HIGHESTMODSEQ may come back higher than it was: a backend may
	   have reserved modseqs; never lower) */
	for (unsigned round = 0; round < 2; round++) {
		box = open_box(fx, "bob", "INBOX", &s);
		assert_int_equal(s.count, 4);
		assert_true(s.highest_modseq >= highest);
		for (unsigned i = 0; i < 4; i++)
			assert_int_equal(s.mails[i].modseq, modseqs[i]);
		if (round == 0)
			highest = s.highest_modseq;
		else
			assert_int_equal(s.highest_modseq, highest);
		close_box(&box, &s);
	}
	/* a change after the reopen goes above everything seen before */
	box = open_box(fx, "bob", "INBOX", &s);
	set_flags(box, &s, 1, MAIL_DRAFT, 0);
	assert_true(s.mails[1].modseq > highest);
	highest = s.highest_modseq;
	modseqs[1] = s.mails[1].modseq;
	close_box(&box, &s);
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.mails[1].modseq, modseqs[1]);
	assert_true(s.highest_modseq >= highest);
	close_box(&box, &s);
}

/* What the core does for EXPUNGE: a new modseq, raised before the
   backend's expunge() so that the backend writes it. */
static void
core_expunge(struct storage_box *box, struct mbox_state *s, const uint32_t *uids, size_t n)
{
	uint64_t modseq = ++s->highest_modseq;

	expunge_uids(box, s, uids, n);
	assert_true(s->highest_modseq >= modseq);
}

static void
test_highest_modseq_never_goes_down_across_expunge_and_reopen(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	uint64_t seen;
	uint32_t uids[3];
	char *m;

	box = open_box(fx, "bob", "INBOX", &s);
	for (unsigned i = 0; i < 3; i++) {
		m = simple_msg(i);
		uids[i] = append_msg(box, &s, m, 0);
		free(m);
	}
	set_flags(box, &s, 2, MAIL_SEEN, 0);
	set_flags(box, &s, 2, MAIL_SEEN | MAIL_DELETED, 0);
	/* the message with the highest modseq goes: what is left has lower
	   ones, and HIGHESTMODSEQ must not follow them down */
	core_expunge(box, &s, &uids[2], 1);
	seen = s.highest_modseq;
	assert_int_equal(s.count, 2);
	close_box(&box, &s);
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 2);
	assert_true(s.highest_modseq >= seen);
	for (size_t i = 0; i < s.count; i++)
		assert_true(s.mails[i].modseq < seen);
	/* empty: nothing left to carry a modseq */
	core_expunge(box, &s, uids, 2);
	assert_int_equal(s.count, 0);
	seen = s.highest_modseq;
	close_box(&box, &s);
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 0);
	assert_true(s.highest_modseq >= seen);
	/* new mail gets a modseq above all of it */
	m = simple_msg(9);
	append_msg(box, &s, m, 0);
	free(m);
	assert_true(s.mails[0].modseq > seen);
	assert_true(s.highest_modseq >= s.mails[0].modseq);
	seen = s.highest_modseq;
	close_box(&box, &s);
	box = open_box(fx, "bob", "INBOX", &s);
	assert_true(s.highest_modseq >= seen);
	close_box(&box, &s);
}

static void
test_flag_change_by_second_opener_bumps_modseq_after_sync(void **state)
{
	struct fx *fx = *state;
	struct mbox_state a, b;
	struct storage_box *ba, *bb;
	uint64_t before, highest_before;
	uint32_t uid;
	char *m;

	ba = open_box(fx, "bob", "INBOX", &a);
	bb = open_box(fx, "bob", "INBOX", &b);
	for (unsigned i = 0; i < 2; i++) {
		m = simple_msg(i);
		append_msg(ba, &a, m, 0);
		free(m);
	}
	do_sync(bb, &b);
	assert_int_equal(b.count, 2);
	before = b.mails[0].modseq;
	highest_before = b.highest_modseq;
	set_flags(ba, &a, 0, MAIL_SEEN | MAIL_FLAGGED, 0);
	assert_int_equal(do_sync(bb, &b), 0);
	assert_int_equal(b.mails[0].flags, MAIL_SEEN | MAIL_FLAGGED);
	assert_true(b.mails[0].modseq > before);
	assert_true(b.highest_modseq > highest_before);
	assert_true(b.highest_modseq >= b.mails[0].modseq);
	/* the other message did not change */
	assert_true(b.mails[1].modseq <= highest_before);
	/* both openers give the change the same modseq */
	assert_int_equal(b.mails[0].modseq, a.mails[0].modseq);
	/* and B's own change goes above A's */
	set_flags(bb, &b, 1, MAIL_ANSWERED, 0);
	assert_true(b.mails[1].modseq > a.mails[0].modseq);
	assert_int_equal(do_sync(ba, &a), 0);
	assert_int_equal(a.mails[1].flags, MAIL_ANSWERED);
	assert_int_equal(a.mails[1].modseq, b.mails[1].modseq);
	/* an expunge by A raises what B sees */
	highest_before = b.highest_modseq;
	uid = a.mails[0].uid;
	core_expunge(ba, &a, &uid, 1);
	assert_int_equal(do_sync(bb, &b), 0);
	assert_int_equal(b.count, 1);
	assert_true(b.highest_modseq > highest_before);
	close_box(&ba, &a);
	close_box(&bb, &b);
	/* what both saw survives */
	highest_before = b.highest_modseq > a.highest_modseq ? b.highest_modseq : a.highest_modseq;
	ba = open_box(fx, "bob", "INBOX", &a);
	assert_true(a.highest_modseq >= highest_before);
	close_box(&ba, &a);
}


/* A keeps a batch of flag changes unwritten (its reserve not used up)
   while B syncs: B reports A's change above everything B's clients saw;
   once A reaches a batch point, both give each message the same modseq,
   and neither went down. */
static void
test_two_openers_agree_after_a_pending_batch(void **state)
{
	struct fx *fx = *state;
	struct mbox_state a, b;
	struct storage_box *ba, *bb;
	uint64_t b_seen, a_mod;
	char *m;

	ba = open_box(fx, "bob", "INBOX", &a);
	bb = open_box(fx, "bob", "INBOX", &b);
	for (unsigned i = 0; i < 4; i++) {
		m = simple_msg(i);
		append_msg(ba, &a, m, 0);
		free(m);
	}
	set_flags(ba, &a, 0, MAIL_SEEN, 0);
	do_sync(ba, &a);
	assert_int_equal(do_sync(bb, &b), 0);
	assert_int_equal(b.count, 4);
	b_seen = b.highest_modseq;
	set_flags(ba, &a, 1, MAIL_FLAGGED, 0);
	set_flags(ba, &a, 2, MAIL_ANSWERED, 0);
	a_mod = a.mails[2].modseq;
	assert_int_equal(do_sync(bb, &b), 0);
	assert_int_equal(b.mails[1].flags, MAIL_FLAGGED);
	assert_int_equal(b.mails[2].flags, MAIL_ANSWERED);
	assert_true(b.mails[1].modseq > b_seen);
	assert_true(b.mails[2].modseq > b_seen);
	/* A's batch point, then B's next command */
	do_sync(ba, &a);
	assert_true(a.mails[2].modseq >= a_mod);
	do_sync(bb, &b);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(a.mails[i].flags, b.mails[i].flags);
		assert_int_equal(a.mails[i].modseq, b.mails[i].modseq);
	}
	close_box(&ba, &a);
	close_box(&bb, &b);
}

/* Flag changes in many rounds (flags and keywords), then close and
   reopen: every message's flags and modseq are as they were, and
   HIGHESTMODSEQ is not lower. */
static void
test_many_flag_changes_keep_flags_and_modseqs_across_reopen(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	enum { N = 120 };
	uint8_t flags[N];
	uint64_t kws[N], modseqs[N], highest;
	unsigned seed = 7;
	char *m;

	box = open_box(fx, "bob", "INBOX", &s);
	for (unsigned i = 0; i < N; i++) {
		m = simple_msg(i);
		append_msg(box, &s, m, 0);
		free(m);
	}
	for (unsigned round = 0; round < 1500; round++) {
		size_t idx = rand_r(&seed) % N;
		uint8_t fl = (uint8_t)(rand_r(&seed) % (MAIL_FLAGS_ALL + 1));
		uint64_t kw = 0;

		if (rand_r(&seed) % 4 == 0)
			kw = 1ULL << mbox_state_keyword(&s, rand_r(&seed) % 2 ? "$Work" : "$Todo",
							 true);
		if (fl == s.mails[idx].flags && kw == s.mails[idx].keywords)
			continue;
		set_flags(box, &s, idx, fl, kw);
		/* the core's next command, now and then */
		if (round % 97 == 0)
			do_sync(box, &s);
	}
	for (unsigned i = 0; i < N; i++) {
		flags[i] = s.mails[i].flags;
		kws[i] = s.mails[i].keywords;
		modseqs[i] = s.mails[i].modseq;
	}
	highest = s.highest_modseq;
	close_box(&box, &s);
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, N);
	assert_true(s.highest_modseq >= highest);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(s.mails[i].flags, flags[i]);
		assert_int_equal(s.mails[i].modseq, modseqs[i]);
		/* (keyword indexes may be renumbered: compare by name) */
		for (unsigned k = 0; k < MBOX_MAX_KEYWORDS; k++) {
			if ((kws[i] & (1ULL << k)) != 0)
				assert_true(s.mails[i].keywords != 0);
		}
		if (kws[i] == 0)
			assert_true(s.mails[i].keywords == 0);
	}
	close_box(&box, &s);
}

/* How many times a file was renamed into dir (a whole index rewritten
   and put in place) since the watch was set, from inotify. */
static unsigned
count_renames_into(int ifd)
{
	char ev[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	unsigned n = 0;
	ssize_t len;

	for (unsigned rounds = 0; rounds < 1000; rounds++) {
		len = read(ifd, ev, sizeof(ev));
		if (len <= 0)
			break;
		for (char *p = ev; p < ev + len;) {
			const struct inotify_event *e = (const struct inotify_event *)p;

			assert_true((e->mask & IN_Q_OVERFLOW) == 0);
			if ((e->mask & IN_MOVED_TO) != 0)
				n++;
			p += sizeof(*e) + e->len;
		}
	}
	return n;
}

/* STORE 1:1000 +FLAGS: a thousand flag changes and the sync() of the
   next command rewrite the index a few times at most, not once per
   message (which fsyncs a thousand times). Counted, not timed. */
static void
test_store_of_1000_messages_rewrites_the_index_once(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	uint64_t before, modseqs[1000];
	unsigned renames;
	char *dir;
	int ifd, wd;

	if (B->init_db != NULL)
		skip();         /* no index file: each change is its own row */
	box = open_box(fx, "bob", "INBOX", &s);
	for (unsigned i = 0; i < 1000; i++) {
		char *m = simple_msg(i);

		append_msg(box, &s, m, 0);
		free(m);
	}
	do_sync(box, &s);
	dir = index_dir(fx, "bob");
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	assert_true(ifd >= 0);
	wd = inotify_add_watch(ifd, dir, IN_MOVED_TO);
	assert_true(wd >= 0);
	before = s.highest_modseq;
	for (size_t i = 0; i < 1000; i++) {
		set_flags(box, &s, i, MAIL_SEEN, 0);
		modseqs[i] = s.mails[i].modseq;
		assert_true(modseqs[i] > before);
		assert_true(i == 0 || modseqs[i] > modseqs[i - 1]);
	}
	do_sync(box, &s);
	renames = count_renames_into(ifd);
	print_message("[ %s ] STORE of 1000: %u index rewrites\n", B->name, renames);
	/* one for the batch, one for a reservation, and slack */
	assert_true(renames <= 4);
	close(ifd);
	free(dir);
	for (size_t i = 0; i < 1000; i++)
		assert_int_equal(s.mails[i].modseq, modseqs[i]);
	close_box(&box, &s);
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 1000);
	for (size_t i = 0; i < 1000; i++) {
		assert_int_equal(s.mails[i].flags, MAIL_SEEN);
		assert_int_equal(s.mails[i].modseq, modseqs[i]);
	}
	close_box(&box, &s);
}

/* A child changes flags (and tells the parent each message's new flags
   and modseq, as a STORE answer would tell a client), then is killed
   before any batch point. After the reopen: the flags are the last ones
   set, and no modseq any client saw is reused: a changed message has the
   modseq of its last change or one above all that was handed out,
   HIGHESTMODSEQ is not lower, and a new change goes above all of it. */
static void
test_crash_after_flag_changes_keeps_flags_and_modseqs_rise(void **state)
{
	struct fx *fx = *state;
	enum { N = 60, CHANGES = 200 };
	struct { uint32_t idx; uint8_t flags; uint64_t modseq; } rep;
	uint8_t want[N];
	uint64_t got_modseq[N] = { 0 }, max_seen = 0;
	struct mbox_state s;
	struct storage_box *box;
	int fds[2], status;
	pid_t pid;

	box = open_box(fx, "eve", "INBOX", &s);
	for (unsigned i = 0; i < N; i++) {
		char *m = simple_msg(i);

		append_msg(box, &s, m, i % 2 ? MAIL_SEEN : 0);
		free(m);
		want[i] = s.mails[i].flags;
	}
	close_box(&box, &s);
	for (unsigned round = 0; round < 3; round++) {
		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct mbox_state cs;
			struct storage_box *cbox = NULL;
			enum storage_error err;
			char *error = NULL;
			unsigned seed = 11 + round;

			close(fds[0]);
			mbox_state_init(&cs);
			if (B->open(fx->st, "eve", "INBOX", &cs, &cbox, &err, &error) < 0)
				_exit(2);
			for (unsigned c = 0; c < CHANGES; c++) {
				size_t idx = rand_r(&seed) % N;
				uint8_t fl = (uint8_t)(cs.mails[idx].flags ^
						       (1u << (rand_r(&seed) % 5)));

				if (!mbox_state_set_flags(&cs, idx, fl, cs.mails[idx].keywords) ||
				    B->flags_changed(cbox, &cs, idx, &st_err, &error) < 0)
					_exit(3);
				rep.idx = (uint32_t)idx;
				rep.flags = cs.mails[idx].flags;
				rep.modseq = cs.mails[idx].modseq;
				if (write(fds[1], &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
					_exit(4);
			}
			/* no close(), no sync(): killed here */
			for (;;)
				pause();
		}
		close(fds[1]);
		for (unsigned c = 0; c < CHANGES; c++) {
			size_t got = 0;

			while (got < sizeof(rep)) {
				ssize_t n = read(fds[0], (char *)&rep + got, sizeof(rep) - got);

				if (n <= 0)
					fail_msg("flag child died after %u changes", c);
				got += (size_t)n;
			}
			assert_true(rep.idx < N);
			want[rep.idx] = rep.flags;
			got_modseq[rep.idx] = rep.modseq;
			if (rep.modseq > max_seen)
				max_seen = rep.modseq;
		}
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		close(fds[0]);

		box = open_box(fx, "eve", "INBOX", &s);
		assert_int_equal(s.count, N);
		assert_true(s.highest_modseq >= max_seen);
		for (unsigned i = 0; i < N; i++) {
			assert_int_equal(s.mails[i].flags, want[i]);
			if (got_modseq[i] == 0)
				continue;
			/* the modseq written with the change, or one above
			   everything handed out */
			assert_true(s.mails[i].modseq == got_modseq[i] ||
				    s.mails[i].modseq > max_seen);
		}
		set_flags(box, &s, 0, (uint8_t)(s.mails[0].flags ^ MAIL_FLAGGED), 0);
		assert_true(s.mails[0].modseq > max_seen);
		want[0] = s.mails[0].flags;
		max_seen = s.highest_modseq;
		memset(got_modseq, 0, sizeof(got_modseq));
		close_box(&box, &s);
	}
}

/* A child expunges messages one at a time (as the core does, raising
   HIGHESTMODSEQ first) and tells the parent each UID and the modseq
   after it, then is killed with no close() and no sync() (on Maildir the
   uidlist still lists the gone files then). After the reopen every
   expunge told is there: the UIDs are gone, the rest kept, and
   HIGHESTMODSEQ is at least every modseq told. */
static void
test_crash_right_after_expunges_keeps_them(void **state)
{
	struct fx *fx = *state;
	enum { N = 30, GONE = 10 };
	struct { uint32_t uid; uint64_t modseq; } rep;
	bool gone[N + 1] = { false };
	uint64_t max_seen = 0;
	struct mbox_state s;
	struct storage_box *box;
	int fds[2], status;
	pid_t pid;

	box = open_box(fx, "gus", "INBOX", &s);
	for (unsigned i = 0; i < N; i++) {
		char *m = simple_msg(i);

		append_msg(box, &s, m, 0);
		free(m);
	}
	close_box(&box, &s);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct mbox_state cs;
		struct storage_box *cbox = NULL;
		enum storage_error err;
		char *error = NULL;

		close(fds[0]);
		mbox_state_init(&cs);
		if (B->open(fx->st, "gus", "INBOX", &cs, &cbox, &err, &error) < 0)
			_exit(2);
		for (unsigned g = 0; g < GONE; g++) {
			uint32_t uid = cs.mails[(g * 7) % cs.count].uid;

			++cs.highest_modseq;
			if (B->expunge(cbox, &cs, &uid, 1, &err, &error) < 0)
				_exit(3);
			rep.uid = uid;
			rep.modseq = cs.highest_modseq;
			if (write(fds[1], &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
				_exit(4);
		}
		/* no close(), no sync(): killed here */
		for (;;)
			pause();
	}
	close(fds[1]);
	for (unsigned g = 0; g < GONE; g++) {
		size_t got = 0;

		while (got < sizeof(rep)) {
			ssize_t n = read(fds[0], (char *)&rep + got, sizeof(rep) - got);

			if (n <= 0)
				fail_msg("expunge child died after %u expunges", g);
			got += (size_t)n;
		}
		assert_true(rep.uid >= 1 && rep.uid <= N);
		gone[rep.uid] = true;
		if (rep.modseq > max_seen)
			max_seen = rep.modseq;
	}
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	close(fds[0]);

	box = open_box(fx, "gus", "INBOX", &s);
	assert_int_equal(s.count, N - GONE);
	for (size_t i = 0; i < s.count; i++)
		assert_false(gone[s.mails[i].uid]);
	assert_true(s.highest_modseq >= max_seen);
	/* the next change goes above everything a client was told */
	set_flags(box, &s, 0, MAIL_FLAGGED, 0);
	assert_true(s.mails[0].modseq > max_seen);
	close_box(&box, &s);
}

/* A child appends and tells the parent each UID (APPENDUID), then is
   killed right after an append() returned. After the reopen every UID
   told is the same message, and later UIDs are above them. */
static void
test_crash_right_after_append_keeps_uids(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;

	for (unsigned round = 0; round < 4; round++) {
		uint32_t uids[40], top = 0;
		unsigned count = 0;
		int fds[2], status;
		pid_t pid;

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct mbox_state cs;
			struct storage_box *cbox = NULL;
			enum storage_error err;
			char *error = NULL;

			close(fds[0]);
			mbox_state_init(&cs);
			if (B->open(fx->st, "fay", "INBOX", &cs, &cbox, &err, &error) < 0)
				_exit(2);
			/* a pending flag batch on the first round, too */
			if (round == 1 && cs.count > 0 &&
			    (!mbox_state_set_flags(&cs, 0, MAIL_FLAGGED, 0) ||
			     B->flags_changed(cbox, &cs, 0, &st_err, &error) < 0))
				_exit(5);
			for (unsigned i = 0; i < 10 + round * 10; i++) {
				char *m = xasprintf("Subject: r%u m%u\r\n\r\nbody\r\n", round, i);
				uint32_t uid;

				if (B->append(cbox, &cs, m, strlen(m), i % 2 ? MAIL_SEEN : 0, 0, 0, 0,
					      &uid, &err, &error) < 0)
					_exit(3);
				free(m);
				if (write(fds[1], &uid, sizeof(uid)) != (ssize_t)sizeof(uid))
					_exit(4);
			}
			for (;;)
				pause();
		}
		close(fds[1]);
		while (count < 10 + round * 10) {
			size_t got = 0;

			while (got < sizeof(uint32_t)) {
				ssize_t n = read(fds[0], (char *)&uids[count] + got,
						 sizeof(uint32_t) - got);

				if (n <= 0)
					fail_msg("append child died after %u appends", count);
				got += (size_t)n;
			}
			count++;
		}
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		close(fds[0]);
		box = open_box(fx, "fay", "INBOX", &s);
		assert_uids_ascend(&s);
		for (unsigned i = 0; i < count; i++) {
			ssize_t idx = mbox_state_find(&s, uids[i]);
			char *text, *want = xasprintf("Subject: r%u m%u\r\n\r\nbody\r\n", round, i);

			assert_true(idx >= 0);
			text = msg_text(box, &s.mails[idx]);
			assert_string_equal(text, want);
			assert_int_equal(s.mails[idx].flags, i % 2 ? MAIL_SEEN : 0);
			free(text);
			free(want);
			if (uids[i] > top)
				top = uids[i];
		}
		assert_true(s.uidnext > top);
		{
			char *m = simple_msg(round);

			assert_true(append_msg(box, &s, m, 0) > top);
			free(m);
		}
		close_box(&box, &s);
	}
}

static void
test_create_delete_rename_list(void **state)
{
	struct fx *fx = *state;
	struct strlist names = { 0 };
	enum storage_error err;
	char *error = NULL;
	struct mbox_state s;
	struct storage_box *box;
	char *m;

	assert_int_equal(B->list(fx->st, "bob", &names, &err, &error), 0);
	assert_int_equal(names.count, 1);
	assert_string_equal(names.items[0], "INBOX");
	strlist_clear(&names);
	assert_int_equal(B->create(fx->st, "bob", "Work", &err, &error), 0);
	assert_int_equal(B->create(fx->st, "bob", "Work", &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_EXISTS);
	free(error);
	error = NULL;
	assert_int_equal(B->create(fx->st, "bob", "Lists/imap", &err, &error), 0);
	assert_int_equal(B->create(fx->st, "bob", "INBOX", &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_EXISTS);
	free(error);
	error = NULL;
	assert_int_equal(B->list(fx->st, "bob", &names, &err, &error), 0);
	assert_true(strlist_contains(&names, "INBOX"));
	assert_true(strlist_contains(&names, "Work"));
	assert_true(strlist_contains(&names, "Lists/imap"));
	strlist_clear(&names);

	box = open_box(fx, "bob", "Work", &s);
	m = simple_msg(1);
	append_msg(box, &s, m, MAIL_SEEN);
	free(m);
	close_box(&box, &s);
	assert_int_equal(B->rename(fx->st, "bob", "Work", "Projects", &err, &error), 0);
	assert_int_equal(B->rename(fx->st, "bob", "Work", "Other", &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_NOT_FOUND);
	free(error);
	error = NULL;
	box = open_box(fx, "bob", "Projects", &s);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.mails[0].flags, MAIL_SEEN);
	close_box(&box, &s);
	/* RENAME INBOX moves its messages; INBOX stays, empty */
	box = open_box(fx, "bob", "INBOX", &s);
	m = simple_msg(2);
	append_msg(box, &s, m, 0);
	free(m);
	close_box(&box, &s);
	assert_int_equal(B->rename(fx->st, "bob", "INBOX", "Old", &err, &error), 0);
	box = open_box(fx, "bob", "Old", &s);
	assert_int_equal(s.count, 1);
	close_box(&box, &s);
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 0);
	close_box(&box, &s);

	assert_int_equal(B->delete(fx->st, "bob", "Projects", &err, &error), 0);
	assert_int_equal(B->delete(fx->st, "bob", "Projects", &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_NOT_FOUND);
	free(error);
	error = NULL;
	assert_int_equal(B->delete(fx->st, "bob", "INBOX", &err, &error), -1);
	free(error);
	error = NULL;
	{
		struct storage_box *nb = NULL;

		mbox_state_init(&s);
		assert_int_equal(B->open(fx->st, "bob", "Projects", &s, &nb, &err, &error), -1);
		assert_int_equal(err, STORAGE_ERR_NOT_FOUND);
		free(error);
		error = NULL;
		mbox_state_deinit(&s);
	}
	assert_int_equal(B->list(fx->st, "bob", &names, &err, &error), 0);
	assert_false(strlist_contains(&names, "Projects"));
	assert_true(strlist_contains(&names, "Old"));
	strlist_clear(&names);
}

#ifdef HAVE_PQ
/* pgsql's lock: the mailbox's row, held by a transaction of its own
   connection. */
static void
hold_pgsql_inbox_lock(const char *user, int fd)
{
	PGconn *conn = PQconnectdb(pg_test_conninfo());
	const char *params[1] = { user };
	PGresult *res;

	if (PQstatus(conn) != CONNECTION_OK)
		_exit(2);
	PQclear(PQexec(conn, "BEGIN"));
	res = PQexecParams(conn, "SELECT m.id FROM imap_mailboxes m JOIN imap_users u "
			   "ON u.id = m.user_id WHERE u.name = $1 AND m.name = 'INBOX' "
			   "FOR UPDATE", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		_exit(3);
	PQclear(res);
	if (write(fd, "l", 1) != 1)
		_exit(4);
	alarm(30);      /* never outlives a test that failed */
	for (;;)
		pause();
}
#endif

/* A child process that holds the writers' lock of user's INBOX until it
   is killed. The lock is the backend's own: a fcntl() write lock on the
   flat mail file, flock() on the Maildir lock file, the mailbox's row
   on pgsql. Returns its pid. */
static pid_t
hold_inbox_lock(struct fx *fx, const char *user)
{
	char path[256], c;
	int fds[2];
	pid_t pid;

#ifdef HAVE_PQ
	if (strcmp(B->name, "pgsql") == 0) {
		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			hold_pgsql_inbox_lock(user, fds[1]);
		}
		close(fds[1]);
		if (read(fds[0], &c, 1) != 1)
			fail_msg("%s: the lock holder failed", B->name);
		close(fds[0]);
		return pid;
	}
#endif
	if (strcmp(B->name, "flat") == 0)
		snprintf(path, sizeof(path), "%s/%s/mymailbox.mail", fx->root, user);
	else if (strcmp(B->name, "maildir") == 0)
		snprintf(path, sizeof(path), "%s/%s/Maildir/imapserver-uidlist.lock", fx->root,
			 user);
	else
		fail_msg("%s: no way to hold its lock known to this test", B->name);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct flock fl;
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

		close(fds[0]);
		if (fd < 0)
			_exit(2);
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (strcmp(B->name, "flat") == 0 ? fcntl(fd, F_SETLK, &fl) < 0 :
						   flock(fd, LOCK_EX | LOCK_NB) < 0)
			_exit(3);
		if (write(fds[1], "l", 1) != 1)
			_exit(4);
		alarm(30);      /* never outlives a test that failed */
		for (;;)
			pause();
	}
	close(fds[1]);
	if (read(fds[0], &c, 1) != 1)
		fail_msg("%s: the lock holder failed", B->name);
	close(fds[0]);
	return pid;
}

/* A lock held by another process for longer than the wait makes expunge
   and append fail with STORAGE_ERR_IN_USE (IMAP NO [INUSE]), leaving the
   mailbox as it was; once it is let go, both go through. */
static void
test_lock_held_by_another_process_is_in_use(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL, *m = simple_msg(2);
	uint32_t uid = 0, uids[1];
	pid_t pid;

	box = open_box(fx, "lee", "INBOX", &s);
	append_msg(box, &s, "From: a@x\r\nSubject: m1\r\n\r\nbody\r\n", MAIL_DELETED);
	uids[0] = s.mails[0].uid;
	pid = hold_inbox_lock(fx, "lee");
	storage_lock_wait_ms = 150;

	assert_int_equal(B->expunge(box, &s, uids, 1, &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_IN_USE);
	assert_non_null(error);
	free(error);
	error = NULL;
	assert_int_equal(s.count, 1);

	err = STORAGE_ERR_NONE;
	assert_int_equal(B->append(box, &s, m, strlen(m), 0, 0, 0, 0, &uid, &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_IN_USE);
	free(error);
	error = NULL;
	assert_int_equal(s.count, 1);

	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	expunge_uids(box, &s, uids, 1);
	assert_int_equal(s.count, 0);
	append_msg(box, &s, m, 0);
	assert_int_equal(s.count, 1);
	free(m);
	close_box(&box, &s);
}

static void
test_subscriptions_round_trip(void **state)
{
	struct fx *fx = *state;
	struct strlist in = { 0 }, out = { 0 };
	char *error = NULL;

	assert_int_equal(B->subscriptions_read(fx->st, "bob", &out, &st_err, &error), 0);
	assert_int_equal(out.count, 0);
	strlist_add(&in, "News");
	strlist_add(&in, "Lists/imap");
	assert_int_equal(B->subscriptions_write(fx->st, "bob", &in, &st_err, &error), 0);
	assert_int_equal(B->subscriptions_read(fx->st, "bob", &out, &st_err, &error), 0);
	assert_int_equal(out.count, 2);
	assert_true(strlist_contains(&out, "News"));
	assert_true(strlist_contains(&out, "Lists/imap"));
	strlist_clear(&in);
	strlist_clear(&out);
}

static void
test_bad_names_and_users_refused(void **state)
{
	struct fx *fx = *state;
	static const char *const bad_users[] = { "", "../x", "a/b", ".hidden", "a\nb" };
	static const char *const bad_names[] = { "../x", "a//b", "/abs", ".", "a/../b", "" };
	enum storage_error err;
	char *error = NULL;
	struct mbox_state s;
	struct storage_box *box = NULL;

	for (size_t i = 0; i < N_ELEMENTS(bad_users); i++) {
		mbox_state_init(&s);
		assert_int_equal(B->open(fx->st, bad_users[i], "INBOX", &s, &box, &err, &error), -1);
		assert_int_equal(err, STORAGE_ERR_BAD_NAME);
		free(error);
		error = NULL;
		mbox_state_deinit(&s);
	}
	for (size_t i = 0; i < N_ELEMENTS(bad_names); i++) {
		assert_int_equal(B->create(fx->st, "bob", bad_names[i], &err, &error), -1);
		assert_int_equal(err, STORAGE_ERR_BAD_NAME);
		free(error);
		error = NULL;
	}
}

/* A name as long as the name rule allows (STORAGE_NAME_MAX) works on
   every backend, at the top and one level down; a longer one (255
   octets) is refused by the rule, not by the file system. */
static void
test_longest_names_work(void **state)
{
	struct fx *fx = *state;
	char name[STORAGE_NAME_MAX + 60], *renamed, *m;
	const char *const tops[] = { "", "Lists/" };
	enum storage_error err;
	char *error = NULL;
	struct strlist names = { 0 };
	struct mbox_state s;
	struct storage_box *box;

	for (size_t i = 0; i < N_ELEMENTS(tops); i++) {
		size_t top = strlen(tops[i]);

		memcpy(name, tops[i], top);
		memset(name + top, 'n', STORAGE_NAME_MAX - top);
		name[STORAGE_NAME_MAX] = '\0';
		if (B->create(fx->st, "bob", name, &err, &error) < 0)
			fail_msg("create %zu octets: %s", strlen(name), error);
		box = open_box(fx, "bob", name, &s);
		m = simple_msg(1);
		append_msg(box, &s, m, MAIL_SEEN);
		free(m);
		close_box(&box, &s);
		assert_int_equal(B->list(fx->st, "bob", &names, &err, &error), 0);
		assert_true(strlist_contains(&names, name));
		strlist_clear(&names);
		renamed = xstrdup(name);
		renamed[STORAGE_NAME_MAX - 1] = 'r';
		if (B->rename(fx->st, "bob", name, renamed, &err, &error) < 0)
			fail_msg("rename %zu octets: %s", strlen(name), error);
		box = open_box(fx, "bob", renamed, &s);
		assert_int_equal(s.count, 1);
		close_box(&box, &s);
		assert_int_equal(B->delete(fx->st, "bob", renamed, &err, &error), 0);
		free(renamed);
	}
	memset(name, 'l', 255);
	name[255] = '\0';
	assert_int_equal(B->create(fx->st, "bob", name, &err, &error), -1);
	if (err != STORAGE_ERR_BAD_NAME)
		fail_msg("255 octets: error %d: %s", (int)err, error);
	free(error);
}

/* Crash trials */

static unsigned
crash_kills(void)
{
	const char *env = getenv("CONTRACT_CRASH_KILLS");
	uint64_t n;

	if (env != NULL && str_to_u64(env, 100000, &n) == 0 && n > 0)
		return (unsigned)n;
	return 110;
}

static char *
crash_msg(unsigned iter, unsigned i)
{
	/* a few KB, so that a kill can land inside the write */
	struct buf b = BUF_INIT;

	buf_printf(&b, "From: crash@x\r\nSubject: c%u-%u\r\n\r\n", iter, i);
	for (unsigned l = 0; l < 40 + (i % 5) * 20; l++)
		buf_printf(&b, "line %u of message %u of round %u\r\n", l, i, iter);
	return buf_steal(&b);
}

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A child appends messages one after the other, telling the parent
   through a pipe after each acknowledged append; it is killed at a random
   instant. Then: every acknowledged message is there once and whole, the
   one in flight is there whole or not at all, nothing else is. */
static void
test_crash_during_append_loses_nothing(void **state)
{
	struct fx *fx = *state;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	unsigned kills = crash_kills(), in_flight_kept = 0, max_acked = 0;
	int64_t started = now_us(), span_us = 4000;

	for (unsigned iter = 0; iter < kills; iter++) {
		struct mbox_state s;
		struct storage_box *box;
		struct strlist got;
		char user[32], buf[256];
		unsigned acked = 0;
		int fds[2], status;
		ssize_t n;
		pid_t pid;

		snprintf(user, sizeof(user), "ap%u", iter % 8);
		assert_int_equal(pipe(fds), 0);
		/* what earlier rounds left in this user's INBOX */
		box = open_box(fx, user, "INBOX", &s);
		got = texts_of(box, &s);
		close_box(&box, &s);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct mbox_state cs;
			struct storage_box *cbox = NULL;
			enum storage_error err;
			char *error = NULL;

			close(fds[0]);
			mbox_state_init(&cs);
			if (B->open(fx->st, user, "INBOX", &cs, &cbox, &err, &error) < 0 ||
			    write(fds[1], "o", 1) != 1)
				_exit(2);
			for (unsigned i = 0; i < 200; i++) {
				char *m = crash_msg(iter, i);
				uint32_t uid;

				if (B->append(cbox, &cs, m, strlen(m), i % 3 == 0 ? MAIL_SEEN : 0, 0,
					      0, 0, &uid, &err, &error) < 0)
					_exit(3);
				free(m);
				if (write(fds[1], "a", 1) != 1)
					_exit(4);
			}
			_exit(0);
		}
		close(fds[1]);
		/* the kill lands at a random instant after the child's open */
		if (read(fds[0], buf, 1) != 1)
			fail_msg("append child could not open the mailbox");
		usleep((useconds_t)(rand_r(&seed) % (unsigned)span_us));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status))
			fail_msg("append child exited with %d before the kill", WEXITSTATUS(status));
		while ((n = read(fds[0], buf, sizeof(buf))) > 0)
			acked += (unsigned)n;
		close(fds[0]);
		if (acked > max_acked)
			max_acked = acked;

		box = open_box(fx, user, "INBOX", &s);
		assert_uids_ascend(&s);
		{
			struct strlist now = texts_of(box, &s);
			size_t base = got.count;

			assert_no_duplicates(&now);
			assert_true(now.count == base + acked || now.count == base + acked + 1);
			for (size_t i = 0; i < base; i++)
				assert_string_equal(now.items[i], got.items[i]);
			for (unsigned i = 0; i < now.count - base; i++) {
				char *m = crash_msg(iter, i);

				assert_string_equal(now.items[base + i], m);
				/* (the one in flight may have lost its flags: it was
				   never acknowledged) */
				if (i < acked)
					assert_int_equal(s.mails[base + i].flags,
							 i % 3 == 0 ? MAIL_SEEN : 0);
				free(m);
			}
			if (now.count == base + acked + 1)
				in_flight_kept++;
			strlist_clear(&now);
		}
		strlist_clear(&got);
		/* it still works: an append after the crash gets a fresh UID */
		{
			uint32_t top = s.uidnext;

			char *after = xasprintf("Subject: after %u\r\n\r\nx\r\n", iter);

			assert_true(append_msg(box, &s, after, 0) >= top);
			free(after);
			/* keep the mailboxes small */
			if (s.count > 60) {
				uint32_t *uids = xmalloc(s.count * sizeof(*uids));
				size_t nu = s.count;

				for (size_t i = 0; i < nu; i++)
					uids[i] = s.mails[i].uid;
				expunge_uids(box, &s, uids, nu);
				free(uids);
			}
		}
		close_box(&box, &s);
		/* the kill window: about eight appends, as fast as they are here */
		if (iter == 4 && max_acked > 8)
			span_us = span_us * 8 / (int64_t)max_acked + 300;
	}
	print_message("[ %s ] append crash trial: %u kills, %u with the in-flight message "
		      "kept, %lld ms\n", B->name, kills, in_flight_kept,
		      (long long)((now_us() - started) / 1000));
}

/* A child expunges every third of 30 messages and is killed at a random
   instant. Then: every message not asked for is there with its UID, each
   asked for is there (same UID) or gone, nothing is duplicated or torn. */
static void
test_crash_during_expunge_loses_nothing(void **state)
{
	struct fx *fx = *state;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ 0x5bd1e995u;
	unsigned kills = crash_kills(), none = 0, all = 0, partial = 0;
	int64_t span_us = 3000, started = now_us();

	for (unsigned iter = 0; iter < kills; iter++) {
		struct mbox_state s;
		struct storage_box *box;
		int fds[2];
		char c;
		char *texts[30];
		uint32_t uids[30], gone_uids[10];
		char user[32];
		unsigned removed = 0;
		int status;
		pid_t pid;

		snprintf(user, sizeof(user), "ex%u", iter);
		box = open_box(fx, user, "INBOX", &s);
		for (unsigned i = 0; i < 30; i++) {
			texts[i] = crash_msg(iter, i);
			uids[i] = append_msg(box, &s, texts[i], i % 4 == 0 ? MAIL_FLAGGED : 0);
		}
		close_box(&box, &s);
		for (unsigned i = 0, k = 0; i < 30; i += 3)
			gone_uids[k++] = uids[i];
		if (iter == 0) {
			/* calibrate the kill window on an uninterrupted expunge */
			int64_t t0;

			box = open_box(fx, user, "INBOX", &s);
			t0 = now_us();
			expunge_uids(box, &s, gone_uids, 10);
			close_box(&box, &s);
			span_us = (now_us() - t0) * 3 / 2 + 200;
			for (unsigned i = 0; i < 30; i++)
				free(texts[i]);
			continue;
		}
		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct mbox_state cs;
			struct storage_box *cbox = NULL;
			enum storage_error err;
			char *error = NULL;

			close(fds[0]);
			mbox_state_init(&cs);
			if (B->open(fx->st, user, "INBOX", &cs, &cbox, &err, &error) < 0 ||
			    write(fds[1], "o", 1) != 1)
				_exit(2);
			if (B->expunge(cbox, &cs, gone_uids, 10, &st_err, &error) < 0)
				_exit(3);
			for (;;)
				pause();        /* wait for the kill */
		}
		close(fds[1]);
		if (read(fds[0], &c, 1) != 1)
			fail_msg("expunge child could not open the mailbox");
		close(fds[0]);
		usleep((useconds_t)(rand_r(&seed) % (unsigned)span_us));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status))
			fail_msg("expunge child exited with %d", WEXITSTATUS(status));

		box = open_box(fx, user, "INBOX", &s);
		assert_uids_ascend(&s);
		{
			size_t j = 0;

			for (unsigned i = 0; i < 30; i++) {
				bool asked = i % 3 == 0;
				char *t;

				if (j < s.count && s.mails[j].uid == uids[i]) {
					t = msg_text(box, &s.mails[j]);
					assert_string_equal(t, texts[i]);
					assert_int_equal(s.mails[j].flags, i % 4 == 0 ? MAIL_FLAGGED : 0);
					free(t);
					j++;
				} else {
					if (!asked)
						fail_msg("%s: message uid %u lost (round %u)", B->name,
							 uids[i], iter);
					removed++;
				}
			}
			assert_int_equal(j, s.count);
		}
		if (removed == 0)
			none++;
		else if (removed == 10)
			all++;
		else
			partial++;
		assert_int_equal(append_msg(box, &s, "Subject: after\r\n\r\nx\r\n", 0), 31);
		close_box(&box, &s);
		for (unsigned i = 0; i < 30; i++)
			free(texts[i]);
	}
	print_message("[ %s ] expunge crash trial: %u kills: %u before any removal, %u partial, "
		      "%u complete, %lld ms\n", B->name, kills - 1, none, partial, all,
		      (long long)((now_us() - started) / 1000));
}

/* What only Maildir promises */

static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void
mkdirs(struct fx *fx, const char *rel)
{
	char *p = xasprintf("%s/%s", fx->root, rel);

	for (char *q = p + strlen(fx->root) + 1; *q != '\0'; q++) {
		if (*q == '/') {
			*q = '\0';
			(void)mkdir(p, 0700);
			*q = '/';
		}
	}
	(void)mkdir(p, 0700);
	free(p);
}

static bool
exists(struct fx *fx, const char *rel)
{
	char *p = xasprintf("%s/%s", fx->root, rel);
	bool ret = access(p, F_OK) == 0;

	free(p);
	return ret;
}

static void
test_maildir_of_other_tools_opens_as_it_is(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	struct strlist names = { 0 };
	enum storage_error err;
	char *error = NULL, *p, *text;
	struct timeval tv[2];

	mkdirs(fx, "carol/Maildir/cur");
	mkdirs(fx, "carol/Maildir/new");
	mkdirs(fx, "carol/Maildir/tmp");
	mkdirs(fx, "carol/Maildir/.Lists.imap/cur");
	mkdirs(fx, "carol/Maildir/.Lists.imap/new");
	mkdirs(fx, "carol/Maildir/.Lists.imap/tmp");
	p = xasprintf("%s/carol/Maildir/dovecot-keywords", fx->root);
	write_text(p, "0 $Junk\n1 $NonJunk\n");
	free(p);
	/* Dovecot / mbsync style names with ,S= and flags; mutt's new mail */
	p = xasprintf("%s/carol/Maildir/cur/1700000000.M123P456.host,S=40:2,Sb", fx->root);
	write_text(p, "From: a@x\nSubject: one\n\nfirst body\n");
	tv[0].tv_sec = tv[1].tv_sec = 1600000000;
	tv[0].tv_usec = tv[1].tv_usec = 0;
	assert_int_equal(utimes(p, tv), 0);
	free(p);
	p = xasprintf("%s/carol/Maildir/cur/1700000001.M124P456.host,S=30:2,FRT", fx->root);
	write_text(p, "From: b@x\r\nSubject: two\r\n\r\ncrlf\r\n");
	free(p);
	p = xasprintf("%s/carol/Maildir/new/1700000002.12345_1.host", fx->root);
	write_text(p, "From: c@x\nSubject: three\n\nnew one\n");
	free(p);

	box = open_box(fx, "carol", "INBOX", &s);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.mails[0].uid, 1);
	assert_int_equal(s.mails[0].flags, MAIL_SEEN);
	assert_int_equal(s.keyword_count, 1);
	assert_string_equal(s.keywords[0], "$NonJunk");
	assert_int_equal(s.mails[0].keywords, 1);
	assert_int_equal(s.mails[0].internal_date, 1600000000);
	assert_int_equal(s.mails[1].flags, MAIL_FLAGGED | MAIL_ANSWERED | MAIL_DELETED);
	assert_int_equal(s.mails[2].flags, 0);
	/* the new/ one is \Recent and moved to cur/ */
	assert_true(s.first_recent_uid <= s.mails[2].uid);
	assert_false(exists(fx, "carol/Maildir/new/1700000002.12345_1.host"));
	assert_true(exists(fx, "carol/Maildir/cur/1700000002.12345_1.host:2,"));
	text = msg_text(box, &s.mails[0]);
	assert_string_equal(text, "From: a@x\r\nSubject: one\r\n\r\nfirst body\r\n");
	free(text);
	text = msg_text(box, &s.mails[1]);
	assert_string_equal(text, "From: b@x\r\nSubject: two\r\n\r\ncrlf\r\n");
	free(text);
	/* our flag change keeps the letters in ASCII order with the keyword */
	set_flags(box, &s, 0, MAIL_SEEN | MAIL_FLAGGED | MAIL_DRAFT, s.mails[0].keywords);
	assert_true(exists(fx, "carol/Maildir/cur/1700000000.M123P456.host,S=40:2,DFSb"));
	close_box(&box, &s);
	/* the uidlist keeps the UIDs */
	assert_true(exists(fx, "carol/Maildir/dovecot-uidlist"));
	box = open_box(fx, "carol", "INBOX", &s);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.mails[2].uid, 3);
	assert_int_equal(s.mails[0].flags, MAIL_SEEN | MAIL_FLAGGED | MAIL_DRAFT);
	close_box(&box, &s);
	assert_int_equal(B->list(fx->st, "carol", &names, &err, &error), 0);
	assert_true(strlist_contains(&names, "Lists/imap"));
	strlist_clear(&names);
}

/* Removes the message file whose text contains needle, as mutt does when
   it purges a message. */
static void
maildir_external_remove(struct fx *fx, const char *user, const char *needle)
{
	char *dir = xasprintf("%s/%s/Maildir/cur", fx->root, user);
	DIR *d = opendir(dir);
	struct dirent *de;
	bool done = false;

	assert_non_null(d);
	while (!done && (de = readdir(d)) != NULL) {
		char *path;

		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (file_contains(path, needle)) {
			assert_int_equal(unlink(path), 0);
			done = true;
		}
		free(path);
	}
	closedir(d);
	free(dir);
	assert_true(done);
}

/* The uidlist keeps HIGHESTMODSEQ in its header and each modseq in its
   record as "M<n>" fields Dovecot keeps (capital letter keys); changes
   other tools made while the mailbox was closed or open get modseqs
   above everything given before, and they are written at once. */
static void
test_maildir_modseqs_of_other_tools_changes_kept(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	uint64_t highest;
	char *path, *data = NULL, *line, *save = NULL, *m;
	size_t len = 0;
	unsigned records = 0;
	FILE *f;

	box = open_box(fx, "bob", "INBOX", &s);
	for (unsigned i = 0; i < 3; i++) {
		m = simple_msg(i);
		append_msg(box, &s, m, 0);
		free(m);
	}
	set_flags(box, &s, 0, MAIL_SEEN, 0);
	highest = s.highest_modseq;
	close_box(&box, &s);

	/* the file as Dovecot reads it */
	path = xasprintf("%s/bob/Maildir/dovecot-uidlist", fx->root);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_true(getdelim(&data, &len, '\0', f) > 0);
	fclose(f);
	line = strtok_r(data, "\n", &save);
	assert_non_null(line);
	assert_true(strncmp(line, "3 V", 3) == 0);
	{
		char want[64];

		snprintf(want, sizeof(want), " M%llu", (unsigned long long)highest);
		assert_non_null(strstr(line, want));
	}
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *colon = strstr(line, " :");
		char *p = strchr(line, ' ');

		assert_non_null(colon);
		assert_non_null(p);
		/* every field between the UID and the name: <capital><digits> */
		while (p < colon) {
			p++;
			assert_true(*p >= 'A' && *p <= 'Z');
			p++;
			if (*p == '-')
				p++;
			assert_true(*p >= '0' && *p <= '9');
			while (*p >= '0' && *p <= '9')
				p++;
			assert_true(*p == ' ');
		}
		assert_non_null(strstr(line, " M"));
		records++;
	}
	assert_int_equal(records, 3);
	free(data);
	free(path);

	/* mutt flags the second message while we are not running */
	maildir_external_flag(fx, "bob", "Subject: m1");
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.mails[1].flags, MAIL_SEEN | MAIL_FLAGGED);
	assert_true(s.mails[1].modseq > highest);
	assert_true(s.highest_modseq >= s.mails[1].modseq);
	/* unchanged ones keep theirs */
	assert_true(s.mails[0].modseq <= highest);
	assert_true(s.mails[2].modseq <= highest);
	highest = s.highest_modseq;
	/* and removes the third one while we are */
	maildir_external_remove(fx, "bob", "Subject: m2");
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.count, 2);
	assert_true(s.highest_modseq > highest);
	highest = s.highest_modseq;
	/* flags renamed while open */
	maildir_external_flag(fx, "bob", "Subject: m0");
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.mails[0].flags, MAIL_SEEN | MAIL_FLAGGED);
	assert_true(s.mails[0].modseq > highest);
	highest = s.highest_modseq;
	/* written at once: a process that dies now loses none of it */
	{
		struct mbox_state s2;
		struct storage_box *box2 = open_box(fx, "bob", "INBOX", &s2);

		assert_int_equal(s2.highest_modseq, highest);
		assert_int_equal(s2.mails[0].modseq, s.mails[0].modseq);
		close_box(&box2, &s2);
	}
	close_box(&box, &s);
}

static void
test_maildir_layout_and_stale_tmp(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	enum storage_error err;
	char *error = NULL, *p, *data;
	struct timeval tv[2];
	FILE *f;
	size_t n;

	assert_int_equal(B->create(fx->st, "dan", "a/b", &err, &error), 0);
	assert_true(exists(fx, "dan/Maildir/.a.b/cur"));
	assert_true(exists(fx, "dan/Maildir/.a.b/new"));
	assert_true(exists(fx, "dan/Maildir/.a.b/tmp"));
	assert_int_equal(B->create(fx->st, "dan", "has.dot", &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_BAD_NAME);
	free(error);
	error = NULL;
	/* an old tmp/ file goes, a young one stays */
	mkdirs(fx, "dan/Maildir/tmp");
	p = xasprintf("%s/dan/Maildir/tmp/old.delivery", fx->root);
	write_text(p, "half");
	free(p);
	p = xasprintf("%s/dan/Maildir/tmp/young.delivery", fx->root);
	write_text(p, "half");
	free(p);
	tv[0].tv_sec = tv[1].tv_sec = time(NULL) - 40 * 3600;
	tv[0].tv_usec = tv[1].tv_usec = 0;
	p = xasprintf("%s/dan/Maildir/tmp/old.delivery", fx->root);
	assert_int_equal(utimes(p, tv), 0);
	free(p);
	box = open_box(fx, "dan", "INBOX", &s);
	assert_true(exists(fx, "dan/Maildir/tmp/young.delivery"));
	assert_false(exists(fx, "dan/Maildir/tmp/old.delivery"));
	assert_int_equal(s.count, 0);
	append_msg(box, &s, "From: a@x\r\nSubject: s\r\n\r\nbody\r\n", 0);
	/* delivered into new/ (no flags), name with ,S= and ,W= */
	{
		DIR *d;
		struct dirent *de;
		unsigned files = 0;

		p = xasprintf("%s/dan/Maildir/new", fx->root);
		d = opendir(p);
		assert_non_null(d);
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			files++;
			assert_non_null(strstr(de->d_name, ",S=27,W=31"));
		}
		closedir(d);
		free(p);
		assert_int_equal(files, 1);
	}
	close_box(&box, &s);
	/* the uidlist: Dovecot's header, then the record (append() adds it
	   at the end: the header's N may be older, as in Dovecot's own) */
	p = xasprintf("%s/dan/Maildir/dovecot-uidlist", fx->root);
	f = fopen(p, "r");
	assert_non_null(f);
	data = calloc(1, 4096);
	n = fread(data, 1, 4095, f);
	fclose(f);
	assert_true(n > 0);
	assert_true(strncmp(data, "3 V", 3) == 0);
	assert_true(strstr(data, " N2") != NULL || strstr(data, " N1") != NULL);
	assert_non_null(strstr(data, "\n1 W31 "));
	free(data);
	free(p);
}

/* Runs the suite once per registered backend. */
int
main(void)
{
	const struct CMUnitTest contract[] = {
		cmocka_unit_test_setup_teardown(test_append_read_round_trip_byte_for_byte, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_flags_keywords_and_dates_persist, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expunge_keeps_rest_and_never_reuses_uids, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_uids_and_uidvalidity_stable_across_reopen, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_copy_and_move_between_mailboxes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_two_openers_see_each_other_through_sync, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_external_changes_noticed_by_sync, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_modseqs_survive_close_and_reopen, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_highest_modseq_never_goes_down_across_expunge_and_reopen, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_flag_change_by_second_opener_bumps_modseq_after_sync,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_openers_agree_after_a_pending_batch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_many_flag_changes_keep_flags_and_modseqs_across_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_of_1000_messages_rewrites_the_index_once,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_crash_after_flag_changes_keeps_flags_and_modseqs_rise, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_right_after_expunges_keeps_them, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_crash_right_after_append_keeps_uids, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_create_delete_rename_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscriptions_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_held_by_another_process_is_in_use, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_names_and_users_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_longest_names_work, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_during_append_loses_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_crash_during_expunge_loses_nothing, setup,
						teardown),
	};
	const struct CMUnitTest maildir_only[] = {
		cmocka_unit_test_setup_teardown(test_maildir_of_other_tools_opens_as_it_is, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_maildir_layout_and_stale_tmp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_modseqs_of_other_tools_changes_kept,
						setup, teardown),
	};
	char *names = registry_storage_names(), *save = NULL, *name;
	int failed = 0;
	unsigned backends = 0;

	for (name = strtok_r(names, ", ", &save); name != NULL; name = strtok_r(NULL, ", ", &save)) {
		char group[64];

		B = registry_storage_find(name);
		if (B == NULL || !B->compiled_in || !pg_test_backend_usable(B))
			continue;
		backends++;
		snprintf(group, sizeof(group), "storage contract: %s", name);
		failed += _cmocka_run_group_tests(group, contract, N_ELEMENTS(contract), NULL, NULL);
		if (B->init_db != NULL)
			continue;       /* nothing mapped: a database */
		/* again with every index that can be mapped at open mapped
		   (mbox_state_map()), as a large mailbox's is */
		storage_map_min_count = 1;
		snprintf(group, sizeof(group), "storage contract: %s, mapped", name);
		failed += _cmocka_run_group_tests(group, contract, N_ELEMENTS(contract), NULL, NULL);
		storage_map_min_count = 2048;
	}
	free(names);
	B = registry_storage_find("maildir");
	if (B != NULL)
		failed += cmocka_run_group_tests_name("maildir layout", maildir_only, NULL, NULL);
	if (backends < 2)
		fprintf(stderr, "storage contract: only %u backend(s) registered\n", backends);
	return failed;
}
