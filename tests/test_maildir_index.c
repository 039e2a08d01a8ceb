/* test_maildir_index.c: the Maildir backend's imapserver-index: an
   unchanged folder opens from it (records mapped) with the answers a full
   open gives; a change by us or by another tool, and a damaged index,
   mean a full open again; nothing is lost either way. Every test runs in
   its own mkdtemp() root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"
#include "buf.h"
#include "backends/maildir/maildir.h"
#include "tmp_tree.h"

static enum storage_error st_err;

static const struct storage_backend *const B = &storage_backend_maildir;

#define N_MSGS 200

struct fx {
	char root[64];
	struct storage *st;
	time_t age;                /* the next folder mtime age() sets */
};

/* What a client sees of a message: everything but the backend's locator,
   keywords by name. */
struct seen {
	uint32_t uid;
	uint8_t flags;
	uint64_t modseq, size;
	int64_t date;
	char kw[128];
};

struct snapshot {
	uint32_t uidvalidity, uidnext, first_recent;
	uint64_t highest;
	size_t count;
	struct seen *m;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct storage_settings set;
	char *error = NULL;

	strcpy(fx->root, "/tmp/test_md_index.XXXXXX");
	assert_non_null(mkdtemp(fx->root));
	set.root = fx->root;
	assert_int_equal(B->init(&set, &fx->st, &error), 0);
	storage_map_min_count = 1;
	fx->age = time(NULL) - 3600;
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

static char *
path_of(struct fx *fx, const char *rel)
{
	return xasprintf("%s/bob/Maildir/%s", fx->root, rel);
}

/* Gives cur/ and new/ an mtime in the past (a new one each call), as a
   folder nobody changed in the last seconds has: only such a stamp is
   trusted. */
static void
age(struct fx *fx)
{
	static const char *const sub[] = { "cur", "new" };

	for (size_t i = 0; i < 2; i++) {
		char *p = path_of(fx, sub[i]);
		struct timespec t[2] = { { fx->age, 0 }, { fx->age, 0 } };

		assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
		free(p);
	}
	fx->age += 10;
}

static struct storage_box *
open_box(struct fx *fx, struct mbox_state *s)
{
	struct storage_box *box = NULL;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	mbox_state_init(s);
	if (B->open(fx->st, "bob", "INBOX", s, &box, &err, &error) < 0)
		fail_msg("open: %s", error);
	return box;
}

static void
close_box(struct storage_box **box, struct mbox_state *s)
{
	B->close(box);
	mbox_state_deinit(s);
}

static void
take(const struct mbox_state *s, struct snapshot *snap)
{
	snap->uidvalidity = s->uidvalidity;
	snap->uidnext = s->uidnext;
	snap->first_recent = s->first_recent_uid;
	snap->highest = s->highest_modseq;
	snap->count = s->count;
	snap->m = calloc(s->count + 1, sizeof(*snap->m));
	for (size_t i = 0; i < s->count; i++) {
		const struct mail_rec *r = &s->mails[i];
		struct seen *m = &snap->m[i];

		m->uid = r->uid;
		m->flags = r->flags;
		m->modseq = r->modseq;
		m->size = r->size;
		m->date = r->internal_date;
		for (unsigned k = 0; k < s->keyword_count; k++) {
			if ((r->keywords & (1ULL << k)) != 0) {
				strcat(m->kw, s->keywords[k]);
				strcat(m->kw, " ");
			}
		}
	}
}

static void
assert_same(const struct snapshot *a, const struct snapshot *b)
{
	assert_int_equal(a->uidvalidity, b->uidvalidity);
	assert_int_equal(a->uidnext, b->uidnext);
	assert_int_equal(a->first_recent, b->first_recent);
	assert_int_equal(a->highest, b->highest);
	assert_int_equal(a->count, b->count);
	for (size_t i = 0; i < a->count; i++) {
		assert_int_equal(a->m[i].uid, b->m[i].uid);
		assert_int_equal(a->m[i].flags, b->m[i].flags);
		assert_int_equal(a->m[i].modseq, b->m[i].modseq);
		assert_int_equal(a->m[i].size, b->m[i].size);
		assert_int_equal(a->m[i].date, b->m[i].date);
		assert_string_equal(a->m[i].kw, b->m[i].kw);
	}
}

static char *
msg_of(unsigned i)
{
	return xasprintf("From: a@x\r\nSubject: m%u\r\n\r\nbody %u\r\n", i, i);
}

static char *
msg_text(struct storage_box *box, const struct mail_rec *rec)
{
	struct buf b = BUF_INIT;
	char *error = NULL;

	if (B->read(box, rec, &b, &st_err, &error) < 0)
		fail_msg("read uid %u: %s", rec->uid, error);
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

static void
set_flags(struct storage_box *box, struct mbox_state *s, size_t idx, uint8_t flags, uint64_t kw)
{
	char *error = NULL;

	assert_true(mbox_state_set_flags(s, idx, flags, kw));
	if (B->flags_changed(box, s, idx, &st_err, &error) < 0)
		fail_msg("flags_changed: %s", error);
}

static void
do_sync(struct storage_box *box, struct mbox_state *s)
{
	char *error = NULL;

	if (B->sync(box, s, &st_err, &error) < 0)
		fail_msg("sync: %s", error);
}

/* N_MSGS messages, flags on some, keywords on others, moved to cur/;
   then the folders age (the next full open writes the index). */
static void
fill(struct fx *fx)
{
	struct storage_box *box;
	struct mbox_state s;
	char *error = NULL;
	int kw, kw2;

	box = open_box(fx, &s);
	kw = mbox_state_keyword(&s, "$Later", true);
	kw2 = mbox_state_keyword(&s, "Work", true);
	for (unsigned i = 1; i <= N_MSGS; i++) {
		char *m = msg_of(i);
		uint32_t uid;

		if (B->append(box, &s, m, strlen(m), i % 3 == 0 ? MAIL_SEEN : 0,
			      i % 7 == 0 ? 1ULL << kw : i % 11 == 0 ? 1ULL << kw2 : 0,
			      1600000000 + i, 60, &uid, &st_err, &error) < 0)
			fail_msg("append: %s", error);
		free(m);
	}
	set_flags(box, &s, 10, MAIL_FLAGGED | MAIL_ANSWERED, 1ULL << kw2);
	do_sync(box, &s);
	close_box(&box, &s);
	/* appended into new/: the next open moves them to cur/ */
	box = open_box(fx, &s);
	close_box(&box, &s);
	age(fx);
}

static bool
index_exists(struct fx *fx)
{
	char *p = path_of(fx, "imapserver-index");
	bool ok = access(p, F_OK) == 0;

	free(p);
	return ok;
}

static void
test_unchanged_folder_opens_from_index_with_same_answers(void **state)
{
	struct fx *fx = *state;
	struct storage_box *box;
	struct mbox_state s;
	struct snapshot full, fast, again;
	char *m;

	fill(fx);
	box = open_box(fx, &s);
	assert_false(s.mapped);   /* the folders changed since: a full open */
	take(&s, &full);
	close_box(&box, &s);
	assert_true(index_exists(fx));

	box = open_box(fx, &s);
	assert_true(s.mapped);
	take(&s, &fast);
	assert_same(&full, &fast);
	m = msg_text(box, &s.mails[41]);
	assert_string_equal(m, "From: a@x\r\nSubject: m42\r\n\r\nbody 42\r\n");
	free(m);
	/* a change of ours after it, then a reopen: a full open sees it */
	set_flags(box, &s, 5, MAIL_DELETED, 0);
	do_sync(box, &s);
	take(&s, &again);
	close_box(&box, &s);
	age(fx);
	box = open_box(fx, &s);
	assert_int_equal(s.mails[5].flags, MAIL_DELETED);
	assert_int_equal(s.mails[10].flags, MAIL_FLAGGED | MAIL_ANSWERED);
	free(full.m);
	take(&s, &full);
	close_box(&box, &s);
	box = open_box(fx, &s);
	assert_true(s.mapped);
	free(fast.m);
	take(&s, &fast);
	assert_same(&full, &fast);
	/* an append after the open from the index */
	{
		char *msg = msg_of(N_MSGS + 1), *error = NULL;
		uint32_t uid;

		if (B->append(box, &s, msg, strlen(msg), 0, 0, 0, 0, &uid, &st_err, &error) < 0)
			fail_msg("append: %s", error);
		assert_int_equal(uid, N_MSGS + 1);
		free(msg);
	}
	close_box(&box, &s);
	age(fx);
	box = open_box(fx, &s);
	assert_int_equal(s.count, N_MSGS + 1);
	assert_int_equal(s.mails[N_MSGS].uid, N_MSGS + 1);
	close_box(&box, &s);
	free(full.m);
	free(fast.m);
	free(again.m);
}

/* The name of the file of UID uid in cur/ (malloc'ed). */
static char *
cur_name_of(struct fx *fx, unsigned n)
{
	char *dir = path_of(fx, "cur"), *found = NULL;
	char *want = xasprintf("Subject: m%u\n", n);
	DIR *d = opendir(dir);
	struct dirent *e;

	assert_non_null(d);
	while (found == NULL && (e = readdir(d)) != NULL) {
		char *p, buf[256];
		FILE *f;
		size_t len;

		if (e->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s", dir, e->d_name);
		f = fopen(p, "r");
		assert_non_null(f);
		len = fread(buf, 1, sizeof(buf) - 1, f);
		buf[len] = '\0';
		fclose(f);
		if (strstr(buf, want) != NULL)
			found = xstrdup(e->d_name);
		free(p);
	}
	closedir(d);
	free(dir);
	free(want);
	assert_non_null(found);
	return found;
}

/* mutt renames a file to flag it, a deliverer drops one into new/: both
   seen at the next open, even with the folders' mtimes in the past. */
static void
test_other_tools_changes_seen_after_the_index(void **state)
{
	struct fx *fx = *state;
	struct storage_box *box;
	struct mbox_state s;
	char *name, *from, *to, *rel, *p;
	FILE *f;

	fill(fx);
	box = open_box(fx, &s);
	close_box(&box, &s);
	assert_true(index_exists(fx));
	name = cur_name_of(fx, 20);
	rel = xasprintf("cur/%s", name);
	from = path_of(fx, rel);
	free(rel);
	rel = xasprintf("cur/%.*sT", (int)strlen(name), name);
	to = path_of(fx, rel);
	free(rel);
	assert_int_equal(rename(from, to), 0);
	p = path_of(fx, "new/1700000000.M1P2Q1.otherhost");
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("From: c@x\nSubject: delivered\n\nhi\n", f);
	assert_int_equal(fclose(f), 0);
	{
		struct timespec t[2] = { { fx->age, 0 }, { fx->age, 0 } };

		assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
	}
	age(fx);
	box = open_box(fx, &s);
	assert_false(s.mapped);
	assert_int_equal(s.count, N_MSGS + 1);
	assert_true((s.mails[19].flags & MAIL_DELETED) != 0);
	assert_int_equal(s.mails[N_MSGS].uid, N_MSGS + 1);
	close_box(&box, &s);
	free(name);
	free(from);
	free(to);
	free(p);
}

/* A truncated index means a full open; one whose names were damaged after
   the open still serves every message (the names come from the uidlist). */
static void
test_damaged_index_loses_nothing(void **state)
{
	struct fx *fx = *state;
	struct storage_box *box;
	struct mbox_state s;
	struct snapshot full, other;
	char *p = path_of(fx, "imapserver-index");
	struct stat sb;
	int fd;

	fill(fx);
	box = open_box(fx, &s);
	take(&s, &full);
	close_box(&box, &s);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(truncate(p, sb.st_size - 10), 0);
	box = open_box(fx, &s);
	assert_false(s.mapped);
	take(&s, &other);
	assert_same(&full, &other);
	free(other.m);
	close_box(&box, &s);
	assert_true(index_exists(fx));

	/* the open maps it; then the name of message 200 in it is damaged */
	box = open_box(fx, &s);
	assert_true(s.mapped);
	{
		char *name = cur_name_of(fx, N_MSGS), *data, *hit;
		size_t len;
		FILE *f = fopen(p, "r");

		assert_non_null(f);
		assert_int_equal(stat(p, &sb), 0);
		data = xmalloc((size_t)sb.st_size);
		len = fread(data, 1, (size_t)sb.st_size, f);
		fclose(f);
		hit = memmem(data, len, name, strlen(name) + 1);
		assert_non_null(hit);
		fd = open(p, O_WRONLY);
		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, "X", 1, hit - data), 1);
		close(fd);
		free(data);
		free(name);
	}
	{
		char *m = msg_text(box, &s.mails[N_MSGS - 1]), *want = msg_of(N_MSGS);

		assert_string_equal(m, want);
		free(m);
		free(want);
	}
	for (size_t i = 0; i < s.count; i += 37) {
		char *m = msg_text(box, &s.mails[i]), *want = msg_of((unsigned)i + 1);

		assert_string_equal(m, want);
		free(m);
		free(want);
	}
	close_box(&box, &s);
	free(full.m);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_unchanged_folder_opens_from_index_with_same_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_tools_changes_seen_after_the_index, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_damaged_index_loses_nothing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
