/* test_hostile_store.c: the store is a trust boundary. A user who can
   write into their own folder plants a symbolic link at each place a
   backend opens a path (user folder, mailbox file or folder, message
   file, UID list, keywords, index, uidvalidity, lock file, subscriptions)
   pointing at another user's mail or at a canary outside the store; the
   storage operations then run for that user (open, read, append, flags,
   expunge, list, create, rename, delete, subscriptions) and nothing
   outside the user's own folder may have been read (the canary's and
   bob's bytes never come back), written (contents and mtimes unchanged)
   or deleted. Run against every storage backend of the registry.

   The tree of each test (T = a fresh mkdtemp() folder):
     T/root/alice/    the user under attack (a store with INBOX and Box)
     T/root/bob/      another user's store, with "BOB-SECRET" mail
     T/outside/canary     a message "CANARY-BYTES"
     T/outside/dir/       a Maildir-looking folder holding canaries */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "registry.h"
#include "storage.h"
#include "tmp_tree.h"

#define CANARY "CANARY-BYTES"
#define BOB "BOB-SECRET"
#define CANARY_MSG "From: x@y\nSubject: " CANARY "\n\n" CANARY " body\n.\n"

/* The backend under test (set before each group runs). */
static const struct storage_backend *B;

struct fx {
	char top[PATH_MAX];
	char root[PATH_MAX + 8];
	struct storage *st;
	struct storage_ctx ctx;
	struct strlist snap;         /* "path|mode|size|mtime|content" lines */
};

static bool
is_flat(void)
{
	return strcmp(B->name, "flat") == 0;
}

static char *
tp(struct fx *fx, const char *rel)
{
	return xasprintf("%s/%s", fx->top, rel);
}

static void
write_file(const char *path, const char *data)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(data, f);
	assert_int_equal(fclose(f), 0);
}

/* The whole of a small file (plain read, for checking), or "". */
static char *
read_all(const char *path)
{
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	if (f != NULL) {
		while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
			buf_append(&b, tmp, n);
		fclose(f);
	}
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

/* Thin calls of the backend, one place each. */
static struct storage_box *
box_open(struct fx *fx, const char *user, const char *name, struct mbox_state *s)
{
	struct storage_box *box = NULL;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	mbox_state_init(s);
	if (B->open(fx->st, user, name, s, &box, &err, &error) < 0) {
		assert_int_not_equal(err, STORAGE_ERR_NONE);
		free(error);
		mbox_state_deinit(s);
		return NULL;
	}
	return box;
}

static void
box_close(struct storage_box **box, struct mbox_state *s)
{
	B->close(box);
	mbox_state_deinit(s);
}

static int
box_read(struct storage_box *box, const struct mail_rec *rec, struct buf *out)
{
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;
	int ret = B->read(box, rec, out, &err, &error);

	free(error);
	return ret;
}

static int
box_append(struct storage_box *box, struct mbox_state *s, const char *data)
{
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;
	uint32_t uid = 0;
	int ret = B->append(box, s, data, strlen(data), 0, 0, 0, 0, &uid, &err, &error);

	free(error);
	return ret;
}

static void
box_flags(struct storage_box *box, struct mbox_state *s, size_t idx)
{
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	if (mbox_state_set_flags(s, idx, MAIL_SEEN | MAIL_FLAGGED, 1))
		(void)B->flags_changed(box, s, idx, &err, &error);
	free(error);
}

static void
box_expunge(struct storage_box *box, struct mbox_state *s, uint32_t uid)
{
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	(void)B->expunge(box, s, &uid, 1, &err, &error);
	free(error);
}

/* Fills user's store: INBOX with one message (flagged, so that keyword
   and index files exist), mailbox Box with one, a subscription. */
static void
make_store(struct fx *fx, const char *user, const char *word)
{
	struct mbox_state s;
	struct storage_box *box;
	struct strlist subs = { 0 };
	enum storage_error err;
	char *msg = xasprintf("From: a@x\r\nSubject: %s\r\n\r\n%s body\r\n", word, word);

	box = box_open(fx, user, "INBOX", &s);
	assert_non_null(box);
	assert_int_equal(box_append(box, &s, msg), 0);
	box_flags(box, &s, 0);
	box_close(&box, &s);
	assert_int_equal(storage_create(&fx->ctx, "-", user, "Box", &err), 0);
	box = box_open(fx, user, "Box", &s);
	assert_non_null(box);
	assert_int_equal(box_append(box, &s, msg), 0);
	box_close(&box, &s);
	strlist_add(&subs, "Box");
	assert_int_equal(storage_subscriptions_write(&fx->ctx, "-", user, &subs, &err), 0);
	strlist_clear(&subs);
	free(msg);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct storage_settings set;
	char *error = NULL, *p;

	snprintf(fx->top, sizeof(fx->top), "%s/test_hostile.XXXXXX",
		 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(fx->top));
	snprintf(fx->root, sizeof(fx->root), "%s/root", fx->top);
	assert_int_equal(mkdir(fx->root, 0700), 0);
	set.root = fx->root;
	if (B->init(&set, &fx->st, &error) < 0)
		fail_msg("%s init: %s", B->name, error);
	fx->ctx.backend = B;
	fx->ctx.st = fx->st;
	make_store(fx, "alice", "ALICE-OLD");
	make_store(fx, "bob", BOB);
	/* the canaries outside the store */
	const char *dirs[] = { "outside", "outside/dir", "outside/dir/cur", "outside/dir/new",
			       "outside/dir/tmp", "outside/dir/Maildir", "outside/dir/Maildir/cur",
			       "outside/dir/Maildir/new", "outside/dir/Maildir/tmp" };
	for (size_t i = 0; i < N_ELEMENTS(dirs); i++) {
		p = tp(fx, dirs[i]);
		assert_int_equal(mkdir(p, 0700), 0);
		free(p);
	}
	const char *files[] = { "outside/canary", "outside/dir/keep",
				"outside/dir/cur/1.canary:2,S", "outside/dir/new/2.canary",
				"outside/dir/Maildir/cur/3.canary:2,", "outside/dir/mymailbox.mail",
				"outside/dir/x.mail" };
	for (size_t i = 0; i < N_ELEMENTS(files); i++) {
		p = tp(fx, files[i]);
		write_file(p, CANARY_MSG);
		free(p);
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	B->deinit(&fx->st);
	strlist_clear(&fx->snap);
	tmp_tree_remove(fx->top);
	free(fx);
	return 0;
}

/* Snapshots: everything under T/outside and T/root/bob, never followed. */
static struct strlist *snap_into;

static int
snap_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	char *content = S_ISREG(sb->st_mode) ? read_all(path) : xstrdup("");

	(void)flag;
	(void)ftw;
	strlist_add_take(snap_into, xasprintf("%s|%o|%lld|%lld.%ld|%s", path,
					      (unsigned)sb->st_mode, (long long)sb->st_size,
					      (long long)sb->st_mtim.tv_sec,
					      (long)sb->st_mtim.tv_nsec, content));
	free(content);
	return 0;
}

static void
snapshot(struct fx *fx, struct strlist *out)
{
	char *a = tp(fx, "outside"), *b = tp(fx, "root/bob");

	snap_into = out;
	assert_int_equal(nftw(a, snap_cb, 16, FTW_PHYS), 0);
	assert_int_equal(nftw(b, snap_cb, 16, FTW_PHYS), 0);
	free(a);
	free(b);
}

static void
assert_untouched(struct fx *fx, const char *what)
{
	struct strlist now = { 0 };

	snapshot(fx, &now);
	if (now.count != fx->snap.count)
		fail_msg("%s, link at %s: %zu entries outside alice's folder, %zu before", B->name,
			 what, now.count, fx->snap.count);
	for (size_t i = 0; i < now.count; i++) {
		if (strcmp(now.items[i], fx->snap.items[i]) != 0)
			fail_msg("%s, link at %s: changed outside alice's folder: %s (was %s)",
				 B->name, what, now.items[i], fx->snap.items[i]);
	}
	strlist_clear(&now);
}

static void
assert_clean(const char *data, const char *what, const char *how)
{
	if (strstr(data, CANARY) != NULL || strstr(data, BOB) != NULL)
		fail_msg("%s, link at %s: %s gave away bytes from outside: %.80s", B->name, what,
			 how, data);
}

/* Opens name and does all a client can do with it; asserts that
   nothing read comes from outside. */
static void
use_mailbox(struct fx *fx, const char *name, const char *what)
{
	struct storage_box *box;
	struct mbox_state s;

	box = box_open(fx, "alice", name, &s);
	if (box == NULL)
		return;
	for (size_t i = 0; i < s.count; i++) {
		struct buf b = BUF_INIT;

		if (box_read(box, &s.mails[i], &b) == 0) {
			buf_append(&b, "", 0);
			assert_clean(b.data, what, "read");
		}
		buf_free(&b);
	}
	(void)box_append(box, &s, "From: a@x\r\nSubject: new\r\n\r\nALICE-NEW\r\n");
	if (s.count > 0) {
		box_flags(box, &s, 0);
		box_expunge(box, &s, s.mails[0].uid);
	}
	box_close(&box, &s);
}

/* Every operation, for user alice, around the link planted at what. */
static void
run_all_ops(struct fx *fx, const char *what, const char *linked_name)
{
	struct strlist names = { 0 }, subs = { 0 };
	enum storage_error err;

	if (storage_list(&fx->ctx, "-", "alice", &names, &err) == 0) {
		for (size_t i = 0; i < names.count; i++) {
			assert_clean(names.items[i], what, "LIST");
			if (linked_name != NULL && strcmp(names.items[i], linked_name) == 0)
				fail_msg("%s, link at %s: LIST shows the link as mailbox %s",
					 B->name, what, linked_name);
		}
	}
	strlist_clear(&names);
	use_mailbox(fx, "INBOX", what);
	use_mailbox(fx, "Box", what);
	if (linked_name != NULL) {
		use_mailbox(fx, linked_name, what);
		(void)storage_create(&fx->ctx, "-", "alice", "Linked/Sub", &err);
	}
	(void)storage_create(&fx->ctx, "-", "alice", "New", &err);
	if (storage_subscriptions_read(&fx->ctx, "-", "alice", &subs, &err) == 0) {
		for (size_t i = 0; i < subs.count; i++)
			assert_clean(subs.items[i], what, "LSUB");
	}
	strlist_add(&subs, "New");
	(void)storage_subscriptions_write(&fx->ctx, "-", "alice", &subs, &err);
	strlist_clear(&subs);
	(void)storage_rename(&fx->ctx, "-", "alice", "Box", "Box2", &err);
	if (linked_name != NULL) {
		(void)storage_rename(&fx->ctx, "-", "alice", linked_name, "Renamed", &err);
		(void)storage_rename(&fx->ctx, "-", "alice", "Renamed", linked_name, &err);
		(void)storage_delete(&fx->ctx, "-", "alice", linked_name, &err);
	}
	(void)storage_delete(&fx->ctx, "-", "alice", "Box2", &err);
	(void)storage_rename(&fx->ctx, "-", "alice", "INBOX", "Old", &err);
	use_mailbox(fx, "Old", what);
}

/* One place: rel (beneath T/root/alice) replaced by a link to target
   (beneath T), then every operation. */
static void
attack(struct fx *fx, const char *rel, const char *target, const char *linked_name)
{
	char *at = rel[0] == '\0' ? xasprintf("%s/alice", fx->root) :
		xasprintf("%s/alice/%s", fx->root, rel);
	char *to = tp(fx, target);
	char *what = xasprintf("%s -> %s", rel, target);
	struct stat st;

	if (lstat(at, &st) == 0)
		assert_int_equal(tmp_tree_remove(at), 0);
	if (lstat(to, &st) < 0)
		fail_msg("%s: no %s to link to", B->name, to);
	assert_int_equal(symlink(to, at), 0);
	snapshot(fx, &fx->snap);
	run_all_ops(fx, what, linked_name);
	assert_untouched(fx, what);
	free(at);
	free(to);
	free(what);
}

/* The name of the first file in dir (beneath alice's folder), or NULL. */
static char *
first_file_in(struct fx *fx, const char *user, const char *dir)
{
	char *path = xasprintf("%s/%s/%s", fx->root, user, dir), *name = NULL;
	DIR *d = opendir(path);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.') {
			name = xasprintf("%s/%s", dir, de->d_name);
			break;
		}
	}
	if (d != NULL)
		closedir(d);
	free(path);
	return name;
}

/* The places of each layout: (path beneath alice's folder, target that
   is a file or folder of bob's, canary target, mailbox name it makes). */
struct place {
	const char *rel;
	const char *bob;
	const char *canary;
	const char *name;
};

static const struct place flat_places[] = {
	{ "mymailbox.mail", "root/bob/mymailbox.mail", "outside/canary", NULL },
	{ "Linked.mail", "root/bob/mymailbox.mail", "outside/canary", "Linked" },
	{ "Box.mail", "root/bob/Box.mail", "outside/canary", NULL },
	{ "Linked", "root/bob", "outside/dir", "Linked/x" },
	{ ".imap", "root/bob/.imap", "outside/dir", NULL },
	{ ".imap/INBOX.index", "root/bob/.imap/INBOX.index", "outside/canary", NULL },
	{ ".imap/Box.index", "root/bob/.imap/Box.index", "outside/canary", NULL },
	{ ".imap/uidvalidity", "root/bob/.imap/uidvalidity", "outside/canary", NULL },
	{ ".imap/subscriptions", "root/bob/.imap/subscriptions", "outside/canary", NULL },
	{ "mymailbox.mail.lock", "root/bob/mymailbox.mail", "outside/canary", NULL },
	{ "Box.mail.lock", "root/bob/Box.mail", "outside/canary", NULL },
	{ "mymailbox.mail.tmp", "root/bob/mymailbox.mail", "outside/canary", NULL },
	{ ".imap/INBOX.index.tmp", "root/bob/.imap/INBOX.index", "outside/canary", NULL },
	{ ".imap/subscriptions.tmp", "root/bob/.imap/subscriptions", "outside/canary", NULL },
};

static const struct place maildir_places[] = {
	{ "Maildir", "root/bob/Maildir", "outside/dir/Maildir", NULL },
	{ "Maildir/.Linked", "root/bob/Maildir", "outside/dir", "Linked" },
	{ "Maildir/.Box", "root/bob/Maildir/.Box", "outside/dir", NULL },
	{ "Maildir/cur", "root/bob/Maildir/cur", "outside/dir/cur", NULL },
	{ "Maildir/new", "root/bob/Maildir/new", "outside/dir/new", NULL },
	{ "Maildir/tmp", "root/bob/Maildir/tmp", "outside/dir/tmp", NULL },
	{ "Maildir/.Box/cur", "root/bob/Maildir/.Box/cur", "outside/dir/cur", NULL },
	{ "Maildir/dovecot-uidlist", "root/bob/Maildir/dovecot-uidlist", "outside/canary", NULL },
	{ "Maildir/dovecot-keywords", "root/bob/Maildir/dovecot-uidlist", "outside/canary",
	  NULL },
	{ "Maildir/imapserver-uidvalidity", "root/bob/Maildir/imapserver-uidvalidity",
	  "outside/canary", NULL },
	{ "Maildir/imapserver-uidlist.lock", "root/bob/Maildir/dovecot-uidlist",
	  "outside/canary", NULL },
	{ "Maildir/subscriptions", "root/bob/Maildir/subscriptions", "outside/canary", NULL },
	{ "Maildir/dovecot-uidlist.tmp", "root/bob/Maildir/dovecot-uidlist", "outside/canary",
	  NULL },
	{ "Maildir/.Box/dovecot-uidlist", "root/bob/Maildir/.Box/dovecot-uidlist",
	  "outside/canary", NULL },
};

static void
places(const struct place **p_r, size_t *n_r)
{
	if (is_flat()) {
		*p_r = flat_places;
		*n_r = N_ELEMENTS(flat_places);
	} else {
		*p_r = maildir_places;
		*n_r = N_ELEMENTS(maildir_places);
	}
}

static void
test_link_to_another_users_mail(void **state)
{
	const struct place *p;
	size_t n;

	places(&p, &n);
	for (size_t i = 0; i < n; i++) {
		teardown(state);
		setup(state);
		attack(*state, p[i].rel, p[i].bob, p[i].name);
	}
}

static void
test_link_to_a_canary_outside_the_store(void **state)
{
	const struct place *p;
	size_t n;

	places(&p, &n);
	for (size_t i = 0; i < n; i++) {
		teardown(state);
		setup(state);
		attack(*state, p[i].rel, p[i].canary, p[i].name);
	}
}

static void
test_user_folder_that_is_a_link(void **state)
{
	struct fx *fx = *state;

	attack(fx, "", "root/bob", NULL);
	teardown(state);
	setup(state);
	attack(*state, "", "outside/dir", NULL);
}

/* A message file that is a link (Maildir; for flat the message lives in
   the mail file, covered above): never served, never removed through. */
static void
test_message_file_that_is_a_link(void **state)
{
	struct fx *fx = *state;
	const char *dirs[] = { "Maildir/cur", "Maildir/new" };

	if (is_flat())
		skip();
	for (size_t d = 0; d < N_ELEMENTS(dirs); d++) {
		for (unsigned t = 0; t < 2; t++) {
			char *name, *bobs, *rel, *target;

			teardown(state);
			setup(state);
			fx = *state;
			name = first_file_in(fx, "alice", "Maildir/cur");
			bobs = first_file_in(fx, "bob", "Maildir/cur");
			assert_non_null(name);
			assert_non_null(bobs);
			target = t == 0 ? xasprintf("root/bob/%s", bobs) :
				xstrdup("outside/dir/cur/1.canary:2,S");
			/* the known message's own name (its uidlist record
			   stays), or a new name in new/ */
			rel = d == 0 ? xstrdup(name) : xasprintf("%s/9999.M1P1.host", dirs[d]);
			attack(fx, rel, target, NULL);
			free(name);
			free(bobs);
			free(target);
			free(rel);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_link_to_another_users_mail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_to_a_canary_outside_the_store, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_user_folder_that_is_a_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_file_that_is_a_link, setup, teardown),
	};
	char *names = registry_storage_names(), *save = NULL, *name;
	int failed = 0;

	for (name = strtok_r(names, ", ", &save); name != NULL; name = strtok_r(NULL, ", ", &save)) {
		char group[64];

		B = registry_storage_find(name);
		/* links in a store of files: a database has none */
		if (B == NULL || !B->compiled_in || B->init_db != NULL)
			continue;
		snprintf(group, sizeof(group), "hostile store: %s", name);
		failed += _cmocka_run_group_tests(group, tests, N_ELEMENTS(tests), NULL, NULL);
	}
	free(names);
	return failed;
}
