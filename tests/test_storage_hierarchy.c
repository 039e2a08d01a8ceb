/* test_storage_hierarchy.c: the hierarchy part of the storage contract
   (core/hub/storage.h: list, create, delete and rename of names with
   inferiors, RFC 3501 6.3.3-6.3.5), one suite run against every backend
   of the registry beside tests/test_storage_contract.c, and the shared
   rule storage_rename_plan() on its own.

   A superior that is not a mailbox is not listed by a backend (the core
   shows it as \Noselect while it has inferiors); DELETE leaves the
   inferiors; RENAME moves them, each mailbox whole with its messages,
   UIDs and side files; a refused RENAME moves nothing; and a RENAME
   killed with SIGKILL at any instant leaves every mailbox whole under
   its old or its new name, the same RENAME again finishing the move. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"
#include "buf.h"
#include "registry.h"
#include "tmp_tree.h"
#include "pg_test.h"

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

	strcpy(fx->root, "/tmp/test_hierarchy.XXXXXX");
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

	B->deinit(&fx->st);
	tmp_tree_remove(fx->root);
	free(fx);
	return 0;
}

static void
create(struct fx *fx, const char *name)
{
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	if (B->create(fx->st, "bob", name, &err, &error) < 0)
		fail_msg("%s: create %s: %s", B->name, name, error);
}

/* The kind of error of a call that must fail (its reason is freed). */
static enum storage_error
create_fails(struct fx *fx, const char *name)
{
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	if (B->create(fx->st, "bob", name, &err, &error) == 0)
		fail_msg("%s: create %s succeeded", B->name, name);
	free(error);
	return err;
}

static void
delete(struct fx *fx, const char *name)
{
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	if (B->delete(fx->st, "bob", name, &err, &error) < 0)
		fail_msg("%s: delete %s: %s", B->name, name, error);
}

static enum storage_error
delete_fails(struct fx *fx, const char *name)
{
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	if (B->delete(fx->st, "bob", name, &err, &error) == 0)
		fail_msg("%s: delete %s succeeded", B->name, name);
	free(error);
	return err;
}

static int
try_rename(struct fx *fx, const char *from, const char *to, enum storage_error *err_r)
{
	char *error = NULL;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	ret = B->rename(fx->st, "bob", from, to, err_r, &error);
	free(error);
	return ret;
}

static void
rename_ok(struct fx *fx, const char *from, const char *to)
{
	enum storage_error err;
	char *error = NULL;

	if (B->rename(fx->st, "bob", from, to, &err, &error) < 0)
		fail_msg("%s: rename %s %s: %s", B->name, from, to, error);
}

static enum storage_error
rename_fails(struct fx *fx, const char *from, const char *to)
{
	enum storage_error err;

	if (try_rename(fx, from, to, &err) == 0)
		fail_msg("%s: rename %s %s succeeded", B->name, from, to);
	return err;
}

/* The names list() gives, sorted, joined by spaces (for comparing). */
static char *
names_of(struct fx *fx)
{
	struct strlist names = { 0 };
	enum storage_error err;
	struct buf b = BUF_INIT;
	char *error = NULL;

	if (B->list(fx->st, "bob", &names, &err, &error) < 0)
		fail_msg("%s: list: %s", B->name, error);
	strlist_sort(&names);
	for (size_t i = 0; i < names.count; i++) {
		if (i > 0)
			buf_append_c(&b, ' ');
		buf_append_str(&b, names.items[i]);
	}
	buf_append(&b, "", 0);
	strlist_clear(&names);
	return buf_steal(&b);
}

#define assert_names(fx, expected)                                                      \
	do {                                                                            \
		char *got_ = names_of(fx);                                              \
		if (strcmp(got_, (expected)) != 0)                                      \
			fail_msg("%s: list is \"%s\", expected \"%s\"", B->name, got_,  \
				 (expected));                                           \
		free(got_);                                                             \
	} while (0)

static struct storage_box *
open_box(struct fx *fx, const char *name, struct mbox_state *s)
{
	struct storage_box *box = NULL;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	mbox_state_init(s);
	if (B->open(fx->st, "bob", name, s, &box, &err, &error) < 0)
		fail_msg("%s: open %s: %s", B->name, name, error);
	return box;
}

static void
close_box(struct storage_box **box, struct mbox_state *s)
{
	B->close(box);
	mbox_state_deinit(s);
}

static enum storage_error
open_fails(struct fx *fx, const char *name)
{
	struct storage_box *box = NULL;
	enum storage_error err = STORAGE_ERR_NONE;
	struct mbox_state s;
	char *error = NULL;

	mbox_state_init(&s);
	if (B->open(fx->st, "bob", name, &s, &box, &err, &error) == 0)
		fail_msg("%s: open %s succeeded", B->name, name);
	free(error);
	mbox_state_deinit(&s);
	return err;
}

/* STORAGE_ERR_NONE if name opens (it is closed again), else the error. */
static enum storage_error
open_fails_or_ok(struct fx *fx, const char *name)
{
	struct storage_box *box = NULL;
	enum storage_error err = STORAGE_ERR_NONE;
	struct mbox_state s;
	char *error = NULL;

	mbox_state_init(&s);
	if (B->open(fx->st, "bob", name, &s, &box, &err, &error) == 0) {
		B->close(&box);
		err = STORAGE_ERR_NONE;
	} else if (err == STORAGE_ERR_NONE) {
		err = STORAGE_ERR_TEMP;
	}
	free(error);
	mbox_state_deinit(&s);
	return err;
}

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Appends one message naming mailbox name (flags as given). */
static void
put_msg(struct fx *fx, const char *name, uint8_t flags)
{
	struct storage_box *box;
	enum storage_error err = STORAGE_ERR_NONE;
	struct mbox_state s;
	char *error = NULL, *msg = xasprintf("From: a@x\r\nSubject: in %s\r\n\r\nbody\r\n", name);
	uint32_t uid;

	box = open_box(fx, name, &s);
	if (B->append(box, &s, msg, strlen(msg), flags, 0, 0, 0, &uid, &err, &error) < 0)
		fail_msg("%s: append to %s: %s", B->name, name, error);
	close_box(&box, &s);
	free(msg);
}

/* What a mailbox holds, for comparing across a rename: UIDVALIDITY, and
   each message's UID, flags and subject line. */
static char *
contents_of(struct fx *fx, const char *name)
{
	struct storage_box *box;
	struct mbox_state s;
	struct buf b = BUF_INIT;

	box = open_box(fx, name, &s);
	buf_printf(&b, "V%u", s.uidvalidity);
	for (size_t i = 0; i < s.count; i++) {
		struct buf msg = BUF_INIT;
		enum storage_error err;
		char *error = NULL, *subj, *end;

		if (B->read(box, &s.mails[i], &msg, &err, &error) < 0)
			fail_msg("%s: read in %s: %s", B->name, name, error);
		buf_append(&msg, "", 0);
		subj = strstr(msg.data, "Subject: ");
		assert_non_null(subj);
		end = strchr(subj, '\r');
		buf_printf(&b, " %u:%u:%.*s", s.mails[i].uid, s.mails[i].flags,
			   (int)(end != NULL ? end - subj : 20), subj);
		buf_free(&msg);
	}
	close_box(&box, &s);
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

/* CREATE of a name with superiors: the superiors are not mailboxes
   (\Noselect in LIST, made by the core from the names) and cannot be
   opened; creating one makes it a mailbox that keeps its inferiors. */
static void
test_create_makes_superiors_noselect(void **state)
{
	struct fx *fx = *state;

	create(fx, "a/b/c");
	assert_names(fx, "INBOX a/b/c");
	assert_int_equal(open_fails(fx, "a"), STORAGE_ERR_NOT_FOUND);
	assert_int_equal(open_fails(fx, "a/b"), STORAGE_ERR_NOT_FOUND);
	assert_int_equal(create_fails(fx, "a/b/c"), STORAGE_ERR_EXISTS);
	create(fx, "a");
	assert_names(fx, "INBOX a a/b/c");
	put_msg(fx, "a", 0);
	put_msg(fx, "a/b/c", 0);
	create(fx, "a/b");
	assert_names(fx, "INBOX a a/b a/b/c");
	assert_int_equal(create_fails(fx, "a"), STORAGE_ERR_EXISTS);
	/* an inferior of INBOX */
	create(fx, "INBOX/sub");
	assert_names(fx, "INBOX INBOX/sub a a/b a/b/c");
}

/* DELETE of a mailbox with inferiors removes it and keeps them (it is
   then \Noselect); DELETE of a \Noselect name is refused; once the last
   inferior is gone the name is gone too and can be created afresh. */
static void
test_delete_keeps_inferiors_and_refuses_noselect(void **state)
{
	struct fx *fx = *state;
	char *c;

	create(fx, "p");
	create(fx, "p/q");
	put_msg(fx, "p", MAIL_SEEN);
	put_msg(fx, "p/q", MAIL_FLAGGED);
	c = contents_of(fx, "p/q");
	delete(fx, "p");
	assert_names(fx, "INBOX p/q");
	assert_int_equal(open_fails(fx, "p"), STORAGE_ERR_NOT_FOUND);
	assert_int_equal(delete_fails(fx, "p"), STORAGE_ERR_NOT_FOUND);
	{
		char *c2 = contents_of(fx, "p/q");

		assert_string_equal(c, c2);
		free(c2);
	}
	delete(fx, "p/q");
	assert_names(fx, "INBOX");
	assert_int_equal(delete_fails(fx, "p"), STORAGE_ERR_NOT_FOUND);
	create(fx, "p");
	assert_names(fx, "INBOX p");
	{
		struct storage_box *box;
		struct mbox_state s;

		box = open_box(fx, "p", &s);
		assert_int_equal(s.count, 0);
		close_box(&box, &s);
	}
	assert_int_equal(delete_fails(fx, "INBOX"), STORAGE_ERR_BAD_NAME);
	free(c);
}

static bool
tree_has(const char *root, const char *needle)
{
	char *cmd = xasprintf("find '%s' | grep -q -- '%s'", root, needle);
	int ret = system(cmd);

	free(cmd);
	return ret == 0;
}

/* RENAME moves the name and every inferior, each with its messages,
   UIDs, UIDVALIDITY and flags; nothing of the old names stays on the
   disk (indexes and caches included). */
static void
test_rename_moves_every_inferior_whole(void **state)
{
	struct fx *fx = *state;
	static const char *const olds[] = { "Zold", "Zold/c", "Zold/c/d", "Zold/e" };
	static const char *const news[] = { "New/x", "New/x/c", "New/x/c/d", "New/x/e" };
	char *before[N_ELEMENTS(olds)];

	for (size_t i = 0; i < N_ELEMENTS(olds); i++) {
		create(fx, olds[i]);
		put_msg(fx, olds[i], (uint8_t)(i % 2 == 0 ? MAIL_SEEN : MAIL_ANSWERED));
		put_msg(fx, olds[i], 0);
		before[i] = contents_of(fx, olds[i]);
	}
	create(fx, "Zoldie");
	rename_ok(fx, "Zold", "New/x");
	assert_names(fx, "INBOX New/x New/x/c New/x/c/d New/x/e Zoldie");
	for (size_t i = 0; i < N_ELEMENTS(olds); i++) {
		char *after = contents_of(fx, news[i]);

		assert_string_equal(before[i], after);
		free(after);
		free(before[i]);
		assert_int_equal(open_fails(fx, olds[i]), STORAGE_ERR_NOT_FOUND);
	}
	delete(fx, "Zoldie");
	if (tree_has(fx->root, "Zold"))
		fail_msg("%s: a file of the old names is left:", B->name);
	/* a \Noselect name moves its inferiors */
	rename_ok(fx, "New", "Top");
	assert_names(fx, "INBOX Top/x Top/x/c Top/x/c/d Top/x/e");
	/* into a level of its own parent */
	rename_ok(fx, "Top/x/c", "Top/c");
	assert_names(fx, "INBOX Top/c Top/c/d Top/x Top/x/e");
}

/* The refusals move nothing: a target that exists (as a mailbox, or as
   the new name of an inferior), a target below the name itself, INBOX,
   a name that does not exist. A target that is only a \Noselect name is
   no conflict: the inferiors join. */
static void
test_rename_refusals_move_nothing(void **state)
{
	struct fx *fx = *state;
	const char *all = "INBOX a a/k b c/k d/m";

	create(fx, "a");
	create(fx, "a/k");
	create(fx, "b");
	create(fx, "c/k");
	create(fx, "d/m");
	assert_names(fx, all);
	assert_int_equal(rename_fails(fx, "a", "b"), STORAGE_ERR_EXISTS);
	assert_int_equal(rename_fails(fx, "a", "c"), STORAGE_ERR_EXISTS);
	assert_int_equal(rename_fails(fx, "a", "a/k/z"), STORAGE_ERR_BAD_NAME);
	assert_int_equal(rename_fails(fx, "a", "a/new"), STORAGE_ERR_BAD_NAME);
	assert_int_equal(rename_fails(fx, "a", "a"), STORAGE_ERR_EXISTS);
	assert_int_equal(rename_fails(fx, "a", "INBOX"), STORAGE_ERR_EXISTS);
	assert_int_equal(rename_fails(fx, "nope", "z"), STORAGE_ERR_NOT_FOUND);
	assert_int_equal(rename_fails(fx, "a/k", "b"), STORAGE_ERR_EXISTS);
	assert_names(fx, all);
	rename_ok(fx, "a", "d");
	assert_names(fx, "INBOX b c/k d d/k d/m");
}

/* RENAME INBOX moves its messages to a new mailbox; INBOX stays, empty,
   with its inferiors. */
static void
test_rename_inbox_keeps_its_inferiors(void **state)
{
	struct fx *fx = *state;
	struct storage_box *box;
	struct mbox_state s;

	create(fx, "INBOX/sub");
	put_msg(fx, "INBOX", MAIL_SEEN);
	put_msg(fx, "INBOX/sub", 0);
	rename_ok(fx, "INBOX", "Old/inbox");
	assert_names(fx, "INBOX INBOX/sub Old/inbox");
	box = open_box(fx, "INBOX", &s);
	assert_int_equal(s.count, 0);
	close_box(&box, &s);
	box = open_box(fx, "Old/inbox", &s);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.mails[0].flags, MAIL_SEEN);
	close_box(&box, &s);
	box = open_box(fx, "INBOX/sub", &s);
	assert_int_equal(s.count, 1);
	close_box(&box, &s);
	assert_int_equal(rename_fails(fx, "INBOX", "Old/inbox"), STORAGE_ERR_EXISTS);
}

static unsigned
rename_kills(void)
{
	const char *env = getenv("CONTRACT_CRASH_KILLS");
	uint64_t n;

	if (env != NULL && str_to_u64(env, 100000, &n) == 0 && n > 0)
		return (unsigned)n < 40 ? (unsigned)n : 40;
	return 40;
}

#define KILL_KIDS 12

/* A RENAME of a name with KILL_KIDS inferiors killed with SIGKILL at a
   random instant: every mailbox is whole under its old name or its new
   one (one message each, its UIDVALIDITY and UID kept), and the same
   RENAME again (or, if it was done, nothing) finishes the move. The
   tree is renamed back and forth, so each trial starts where the last
   ended. */
static void
test_rename_killed_at_any_instant_finishes_on_retry(void **state)
{
	struct fx *fx = *state;
	char *names[KILL_KIDS + 1], *contents[KILL_KIDS + 1];
	unsigned kills = rename_kills();
	const char *from = "Src", *to = "Dst/t";
	int64_t window, t0;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (unsigned i = 0; i <= KILL_KIDS; i++) {
		names[i] = i == 0 ? xstrdup("") : xasprintf("/k%02u", i);
		char *n = xasprintf("%s%s", from, names[i]);

		create(fx, n);
		put_msg(fx, n, MAIL_SEEN);
		contents[i] = contents_of(fx, n);
		free(n);
	}
	/* the kills fall within the time a whole RENAME takes */
	t0 = now_us();
	rename_ok(fx, from, to);
	rename_ok(fx, to, from);
	window = (now_us() - t0) / 2 + 200;
	for (unsigned k = 0; k < kills; k++) {
		enum storage_error err;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			char *error = NULL;

			_exit(B->rename(fx->st, "bob", from, to, &err, &error) == 0 ? 0 : 1);
		}
		usleep((useconds_t)(rand() % window));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, NULL, 0), pid);
		/* each mailbox whole, under one of its names */
		for (unsigned i = 0; i <= KILL_KIDS; i++) {
			char *o = xasprintf("%s%s", from, names[i]);
			char *n = xasprintf("%s%s", to, names[i]);
			enum storage_error oe = open_fails_or_ok(fx, o), ne = open_fails_or_ok(fx, n);

			if ((oe == STORAGE_ERR_NONE) == (ne == STORAGE_ERR_NONE))
				fail_msg("%s: trial %u: %s is under %s", B->name, k, o,
					 oe == STORAGE_ERR_NONE ? "both names" : "neither name");
			{
				char *c = contents_of(fx, oe == STORAGE_ERR_NONE ? o : n);

				/* the UIDVALIDITY may start over only where an
				   index had not followed yet; the message stays */
				assert_string_equal(strchr(c, ' '), strchr(contents[i], ' '));
				free(c);
			}
			free(o);
			free(n);
		}
		/* again: it finishes, or (done already) it finds nothing
		   to move, or the target exists */
		if (try_rename(fx, from, to, &err) < 0 && err != STORAGE_ERR_NOT_FOUND &&
		    err != STORAGE_ERR_EXISTS)
			fail_msg("%s: trial %u: the RENAME again failed: %d", B->name, k, (int)err);
		{
			char *got = names_of(fx), *p = got;
			size_t flen = strlen(from);

			for (; (p = strstr(p, from)) != NULL; p += flen) {
				if ((p == got || p[-1] == ' ') && (p[flen] == '\0' || p[flen] == ' ' ||
								   p[flen] == '/'))
					fail_msg("%s: trial %u: left under %s: %s", B->name, k, from,
						 got);
			}
			free(got);
		}
		/* and back, for the next trial */
		{
			const char *t = from;

			from = to;
			to = t;
		}
	}
	for (unsigned i = 0; i <= KILL_KIDS; i++) {
		free(names[i]);
		free(contents[i]);
	}
}

/* storage_rename_plan() alone: what moves, in what order, and the
   refusals. */
static void
test_rename_plan_rule(void **state)
{
	static const char *const list[] = { "INBOX", "INBOX/x", "a", "a/b", "a/b/c", "a b",
					    "ab", "d/e" };
	struct strlist names = { 0 }, from = { 0 }, to = { 0 };
	enum storage_error err;
	char *error = NULL;

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(list); i++)
		strlist_add(&names, list[i]);
	assert_int_equal(storage_rename_plan(&names, "a", "z/y", &from, &to, &err, &error), 0);
	assert_int_equal(from.count, 3);
	assert_string_equal(from.items[0], "a/b");
	assert_string_equal(to.items[0], "z/y/b");
	assert_string_equal(from.items[1], "a/b/c");
	assert_string_equal(to.items[1], "z/y/b/c");
	assert_string_equal(from.items[2], "a");
	assert_string_equal(to.items[2], "z/y");
	strlist_clear(&from);
	strlist_clear(&to);
	/* a \Noselect name: only its inferiors */
	assert_int_equal(storage_rename_plan(&names, "d", "f", &from, &to, &err, &error), 0);
	assert_int_equal(from.count, 1);
	assert_string_equal(to.items[0], "f/e");
	strlist_clear(&from);
	strlist_clear(&to);
	/* INBOX alone */
	assert_int_equal(storage_rename_plan(&names, "INBOX", "INBOX/old", &from, &to, &err,
					     &error), 0);
	assert_int_equal(from.count, 1);
	assert_string_equal(from.items[0], "INBOX");
	strlist_clear(&from);
	strlist_clear(&to);
	/* refusals */
	static const struct {
		const char *from, *to;
		enum storage_error err;
	} bad[] = {
		{ "a", "INBOX", STORAGE_ERR_EXISTS },    { "a", "ab", STORAGE_ERR_EXISTS },
		{ "a", "a/q", STORAGE_ERR_BAD_NAME },     { "a", "a", STORAGE_ERR_EXISTS },
		{ "q", "r", STORAGE_ERR_NOT_FOUND },      { "a/b", "a b", STORAGE_ERR_EXISTS },
		{ "d", "a", STORAGE_ERR_EXISTS },
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		err = STORAGE_ERR_NONE;
		if (storage_rename_plan(&names, bad[i].from, bad[i].to, &from, &to, &err,
					&error) == 0)
			fail_msg("plan %s -> %s accepted", bad[i].from, bad[i].to);
		assert_int_equal(err, bad[i].err);
		assert_int_equal(from.count, 0);
		assert_int_equal(to.count, 0);
		free(error);
		error = NULL;
	}
	/* a new name past the longest allowed */
	{
		char longname[STORAGE_NAME_MAX + 1];

		memset(longname, 'l', STORAGE_NAME_MAX - 1);
		longname[STORAGE_NAME_MAX - 1] = '\0';
		assert_int_equal(storage_rename_plan(&names, "a", longname, &from, &to, &err,
						     &error), -1);
		assert_int_equal(err, STORAGE_ERR_BAD_NAME);
		free(error);
	}
	assert_true(storage_name_is_inferior("a/b", "a"));
	assert_false(storage_name_is_inferior("ab", "a"));
	assert_false(storage_name_is_inferior("a", "a"));
	strlist_clear(&names);
}

int
main(void)
{
	const struct CMUnitTest contract[] = {
		cmocka_unit_test_setup_teardown(test_create_makes_superiors_noselect, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_delete_keeps_inferiors_and_refuses_noselect,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_moves_every_inferior_whole, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rename_refusals_move_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_inbox_keeps_its_inferiors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rename_killed_at_any_instant_finishes_on_retry,
						setup, teardown),
	};
	const struct CMUnitTest rule[] = {
		cmocka_unit_test(test_rename_plan_rule),
	};
	char *names = registry_storage_names(), *save = NULL, *name;
	int failed = 0;

	failed += cmocka_run_group_tests_name("storage_rename_plan", rule, NULL, NULL);
	for (name = strtok_r(names, ", ", &save); name != NULL; name = strtok_r(NULL, ", ", &save)) {
		char group[64];

		B = registry_storage_find(name);
		if (B == NULL || !B->compiled_in || !pg_test_backend_usable(B))
			continue;
		snprintf(group, sizeof(group), "storage hierarchy: %s", name);
		failed += _cmocka_run_group_tests(group, contract, N_ELEMENTS(contract), NULL, NULL);
	}
	free(names);
	return failed;
}
