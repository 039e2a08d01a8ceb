/* test_flat_map.c: the flat backend's index mapped at open
   (mbox_state_map()): what a reopen gives back, changes after it, a
   damaged or truncated index, and another opener's changes. Every test
   runs in its own mkdtemp() root, with every index mapped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"
#include "buf.h"
#include "backends/flat/flat.h"
#include "tmp_tree.h"

static enum storage_error st_err;

static const struct storage_backend *const B = &storage_backend_flat;

#define N_MSGS 300

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

	strcpy(fx->root, "/tmp/test_flat_map.XXXXXX");
	assert_non_null(mkdtemp(fx->root));
	set.root = fx->root;
	assert_int_equal(B->init(&set, &fx->st, &error), 0);
	storage_map_min_count = 1;
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
	return xasprintf("%s/%s", fx->root, rel);
}

static ino_t
ino_of(struct fx *fx, const char *rel)
{
	char *path = path_of(fx, rel);
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	free(path);
	return sb.st_ino;
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

static char *
msg_of(unsigned i)
{
	return xasprintf("From: a@x\r\nSubject: m%u\r\n\r\nbody %u\r\n", i, i);
}

static void
set_flags(struct storage_box *box, struct mbox_state *s, size_t idx, uint8_t flags, uint64_t kw)
{
	char *error = NULL;

	assert_true(mbox_state_set_flags(s, idx, flags, kw));
	if (B->flags_changed(box, s, idx, &st_err, &error) < 0)
		fail_msg("flags_changed: %s", error);
}

static int
do_sync(struct storage_box *box, struct mbox_state *s)
{
	char *error = NULL;
	int ret = B->sync(box, s, &st_err, &error);

	if (ret < 0)
		fail_msg("sync: %s", error);
	return ret;
}

/* A mailbox of N_MSGS messages with flags and a keyword on some; returns
   a copy of its records (freed by the caller) and its UIDVALIDITY. */
static struct mail_rec *
fill(struct fx *fx, uint32_t *uidvalidity_r)
{
	struct storage_box *box;
	struct mbox_state s;
	struct mail_rec *copy;
	char *error = NULL;
	int kw;

	box = open_box(fx, &s);
	kw = mbox_state_keyword(&s, "$Later", true);
	for (unsigned i = 1; i <= N_MSGS; i++) {
		char *m = msg_of(i);
		uint32_t uid;

		if (B->append(box, &s, m, strlen(m), i % 3 == 0 ? MAIL_SEEN : 0,
			      i % 7 == 0 ? 1ULL << kw : 0, 1600000000 + i, 60, &uid, &st_err,
			      &error) < 0)
			fail_msg("append: %s", error);
		free(m);
	}
	set_flags(box, &s, 10, MAIL_FLAGGED | MAIL_ANSWERED, 1ULL << kw);
	copy = xmalloc(s.count * sizeof(*copy));
	memcpy(copy, s.mails, s.count * sizeof(*copy));
	*uidvalidity_r = s.uidvalidity;
	close_box(&box, &s);
	return copy;
}

/* The first n messages of s are want's (where they are in the mail file
   too, unless an expunge moved them). */
static void
assert_same_mails(const struct mbox_state *s, const struct mail_rec *want, size_t n,
		  bool where)
{
	assert_true(s->count >= n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(s->mails[i].uid, want[i].uid);
		assert_int_equal(s->mails[i].flags, want[i].flags);
		assert_int_equal(s->mails[i].keywords, want[i].keywords);
		assert_int_equal(s->mails[i].modseq, want[i].modseq);
		assert_int_equal(s->mails[i].size, want[i].size);
		assert_int_equal(s->mails[i].internal_date, want[i].internal_date);
		assert_int_equal(s->mails[i].tz_minutes, want[i].tz_minutes);
		if (where)
			assert_memory_equal(s->mails[i].priv, want[i].priv, sizeof(want[i].priv));
	}
}

static void
test_reopen_maps_and_gives_back_the_same_state(void **state)
{
	struct fx *fx = *state;
	struct storage_box *box;
	struct mbox_state s;
	struct mail_rec *want;
	uint32_t uidvalidity;
	uint64_t highest;
	char *m;

	want = fill(fx, &uidvalidity);
	box = open_box(fx, &s);
	assert_true(s.mapped);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_int_equal(s.uidnext, N_MSGS + 1);
	assert_int_equal(s.keyword_count, 1);
	assert_string_equal(s.keywords[0], "$Later");
	assert_same_mails(&s, want, N_MSGS, true);
	highest = s.highest_modseq;
	assert_true(highest >= want[10].modseq);
	m = msg_text(box, &s.mails[41]);
	assert_string_equal(m, "From: a@x\r\nSubject: m42\r\n\r\nbody 42\r\n");
	free(m);
	/* changes after the mapped open: a flag, an append, an expunge */
	set_flags(box, &s, 0, MAIL_DELETED, 0);
	want[0].flags = MAIL_DELETED;
	want[0].modseq = s.mails[0].modseq;
	assert_true(want[0].modseq > highest);
	m = msg_of(N_MSGS + 1);
	{
		uint32_t uid;
		char *error = NULL;

		if (B->append(box, &s, m, strlen(m), MAIL_SEEN, 0, 0, 0, &uid, &st_err,
			      &error) < 0)
			fail_msg("append: %s", error);
		assert_int_equal(uid, N_MSGS + 1);
	}
	free(m);
	assert_int_equal(do_sync(box, &s), 0);
	want = xrealloc(want, (N_MSGS + 1) * sizeof(*want));
	want[N_MSGS] = s.mails[N_MSGS];
	close_box(&box, &s);

	box = open_box(fx, &s);
	assert_true(s.mapped);
	assert_same_mails(&s, want, N_MSGS + 1, true);
	{
		uint32_t uid = want[5].uid;
		char *error = NULL;

		if (B->expunge(box, &s, &uid, 1, &st_err, &error) < 0)
			fail_msg("expunge: %s", error);
	}
	assert_int_equal(s.count, N_MSGS);
	memmove(&want[5], &want[6], (N_MSGS - 5) * sizeof(*want));
	close_box(&box, &s);
	box = open_box(fx, &s);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_same_mails(&s, want, N_MSGS, false);
	close_box(&box, &s);
	free(want);
}

/* The index cut short or with a damaged record: the open falls back to
   reading it, which finds it invalid, and the mailbox is rebuilt from the
   mail file: no message lost. */
static void
test_damaged_or_truncated_index_rebuilt_without_losing_mail(void **state)
{
	struct fx *fx = *state;
	struct storage_box *box;
	struct mbox_state s;
	struct mail_rec *want;
	uint32_t uidvalidity;
	char *path = path_of(fx, "bob/.imap/INBOX.index");
	struct stat sb;
	uint32_t zero = 0;
	int fd;

	want = fill(fx, &uidvalidity);
	/* cut in the middle of the records */
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(truncate(path, sb.st_size - 100 * MAIL_REC_SIZE), 0);
	box = open_box(fx, &s);
	assert_false(s.mapped);
	assert_int_equal(s.count, N_MSGS);
	for (size_t i = 0; i < N_MSGS; i++) {
		char *m = msg_text(box, &s.mails[i]), *w = msg_of((unsigned)i + 1);

		assert_string_equal(m, w);
		free(m);
		free(w);
	}
	uidvalidity = s.uidvalidity;
	close_box(&box, &s);

	/* rebuilt whole: mapped again */
	box = open_box(fx, &s);
	assert_true(s.mapped);
	assert_int_equal(s.uidvalidity, uidvalidity);
	close_box(&box, &s);

	/* the UID of the last record zeroed */
	assert_int_equal(stat(path, &sb), 0);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &zero, sizeof(zero), sb.st_size - MAIL_REC_SIZE),
			 (ssize_t)sizeof(zero));
	close(fd);
	box = open_box(fx, &s);
	assert_false(s.mapped);
	assert_int_equal(s.count, N_MSGS);
	for (size_t i = 1; i < N_MSGS; i++)
		assert_true(s.mails[i].uid > s.mails[i - 1].uid);
	close_box(&box, &s);
	free(path);
	free(want);
}

/* While one opener maps the index, another's flag change replaces the
   index instead of writing into it: the first sees nothing change until
   its sync, which then reports the change with a higher modseq. */
static void
test_other_openers_change_never_shows_under_the_mapping(void **state)
{
	struct fx *fx = *state;
	struct storage_box *box, *other;
	struct mbox_state s, o;
	struct mail_rec *want;
	uint32_t uidvalidity;
	uint64_t before;
	ino_t ino;

	want = fill(fx, &uidvalidity);
	box = open_box(fx, &s);
	assert_true(s.mapped);
	other = open_box(fx, &o);
	ino = ino_of(fx, "bob/.imap/INBOX.index");
	before = s.highest_modseq;
	set_flags(other, &o, 20, MAIL_FLAGGED, 0);
	assert_true(ino_of(fx, "bob/.imap/INBOX.index") != ino);
	/* nothing moved under the first opener */
	assert_same_mails(&s, want, N_MSGS, true);
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.mails[20].flags, MAIL_FLAGGED);
	assert_true(s.mails[20].modseq > before);
	assert_true(s.highest_modseq >= s.mails[20].modseq);
	close_box(&other, &o);
	/* alone again on the new index: its own changes are written in place */
	close_box(&box, &s);
	box = open_box(fx, &s);
	assert_true(s.mapped);
	ino = ino_of(fx, "bob/.imap/INBOX.index");
	set_flags(box, &s, 30, MAIL_SEEN | MAIL_FLAGGED, 0);
	assert_true(ino_of(fx, "bob/.imap/INBOX.index") == ino);
	close_box(&box, &s);
	box = open_box(fx, &s);
	assert_int_equal(s.mails[30].flags, MAIL_SEEN | MAIL_FLAGGED);
	assert_int_equal(s.mails[20].flags, MAIL_FLAGGED);
	close_box(&box, &s);
	free(want);
}

/* Another program appended to the mail file while nobody had it open:
   the mapped open parses only the new part. */
static void
test_mail_file_grown_since_is_parsed_after_the_mapped_open(void **state)
{
	struct fx *fx = *state;
	struct storage_box *box;
	struct mbox_state s;
	struct mail_rec *want;
	uint32_t uidvalidity;
	char *path = path_of(fx, "bob/mymailbox.mail");
	FILE *f;
	char *m;

	want = fill(fx, &uidvalidity);
	f = fopen(path, "a");
	assert_non_null(f);
	fputs("From: c@x\nSubject: external\n\nhello\n.\n", f);
	assert_int_equal(fclose(f), 0);
	box = open_box(fx, &s);
	assert_true(s.mapped);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_int_equal(s.count, N_MSGS + 1);
	assert_same_mails(&s, want, N_MSGS, true);
	assert_int_equal(s.mails[N_MSGS].uid, N_MSGS + 1);
	m = msg_text(box, &s.mails[N_MSGS]);
	assert_string_equal(m, "From: c@x\r\nSubject: external\r\n\r\nhello\r\n");
	free(m);
	close_box(&box, &s);
	box = open_box(fx, &s);
	assert_int_equal(s.count, N_MSGS + 1);
	assert_same_mails(&s, want, N_MSGS, true);
	close_box(&box, &s);
	free(path);
	free(want);
}

static uint64_t
fnv(uint64_t h, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* An index of the version before the mapped one (its own record order, a
   header rounded to 64 bytes), as an older server left it: read as it
   is, the same state; rewritten in the new version at the first change. */
static void
test_version_1_index_still_read(void **state)
{
	struct fx *fx = *state;
	struct storage_box *box;
	struct mbox_state s;
	struct mail_rec *want;
	uint32_t uidvalidity, hsize, kwbytes, v1size, version;
	char *path = path_of(fx, "bob/.imap/INBOX.index");
	unsigned char *v2, *v1;
	struct stat sb;
	uint64_t h;
	FILE *f;

	want = fill(fx, &uidvalidity);
	assert_int_equal(stat(path, &sb), 0);
	v2 = xmalloc((size_t)sb.st_size);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fread(v2, 1, (size_t)sb.st_size, f), (size_t)sb.st_size);
	fclose(f);
	memcpy(&hsize, v2 + 12, 4);
	memcpy(&kwbytes, v2 + 100, 4);
	v1size = (112 + kwbytes + 63) / 64 * 64;
	v1 = xcalloc(1, v1size + N_MSGS * MAIL_REC_SIZE);
	memcpy(v1, v2, 112 + kwbytes);
	version = 1;
	memcpy(v1 + 8, &version, 4);
	memcpy(v1 + 12, &v1size, 4);
	h = fnv(0xcbf29ce484222325ULL, v1, 104);
	h = fnv(h, v1 + 112, kwbytes);
	memcpy(v1 + 104, &h, 8);
	for (size_t i = 0; i < N_MSGS; i++) {
		struct mail_rec m;
		unsigned char *r = v1 + v1size + i * MAIL_REC_SIZE;

		memcpy(&m, v2 + hsize + i * MAIL_REC_SIZE, sizeof(m));
		memcpy(r, &m.uid, 4);
		r[4] = m.flags;
		memcpy(r + 8, &m.keywords, 8);
		memcpy(r + 16, &m.internal_date, 8);
		memcpy(r + 24, &m.tz_minutes, 4);
		memcpy(r + 32, &m.modseq, 8);
		memcpy(r + 40, &m.priv[0], 8);
		memcpy(r + 48, &m.priv[1], 8);
		memcpy(r + 56, &m.size, 8);
		memcpy(r + 64, &m.priv[2], 8);
	}
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(v1, 1, v1size + N_MSGS * MAIL_REC_SIZE, f),
			 v1size + N_MSGS * MAIL_REC_SIZE);
	assert_int_equal(fclose(f), 0);

	box = open_box(fx, &s);
	assert_false(s.mapped);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_same_mails(&s, want, N_MSGS, true);
	assert_int_equal(s.count, N_MSGS);
	set_flags(box, &s, 3, MAIL_DRAFT, 0);
	want[3] = s.mails[3];
	close_box(&box, &s);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fread(v1, 1, 12, f), 12);
	fclose(f);
	memcpy(&version, v1 + 8, 4);
	assert_int_equal(version, 2);
	box = open_box(fx, &s);
	assert_true(s.mapped);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_same_mails(&s, want, N_MSGS, true);
	close_box(&box, &s);
	free(v1);
	free(v2);
	free(want);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reopen_maps_and_gives_back_the_same_state,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_damaged_or_truncated_index_rebuilt_without_losing_mail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_openers_change_never_shows_under_the_mapping,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_mail_file_grown_since_is_parsed_after_the_mapped_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version_1_index_still_read, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
