/* test_mcache.c: the persistent listing cache (core/hub/mcache.c) and
   FETCH answered from it (core/imap/fetch.c): round trips across a
   reopen, torn and damaged records, UIDVALIDITY changes, a concurrent
   appender process, compaction, and answers byte-identical to the
   uncached ones over the corpus of tests/data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "corpus.h"
#include "fetch.h"
#include "mcache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct fixture {
	char dir[64];
	char *path, *idx_path;
};

static int
setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_mcache.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->path = xasprintf("%s/box.cache", fx->dir);
	fx->idx_path = xasprintf("%s.idx", fx->path);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char *cmd = xasprintf("test -n \"$KEEP\" || rm -rf '%s'", fx->dir);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(fx->path);
	free(fx->idx_path);
	free(fx);
	return 0;
}

/* The entry of uid: strings that name the uid, of lengths that vary. */
static void
entry_of(uint32_t uid, struct buf bufs[MCACHE_FIELD_COUNT], struct mcache_entry *e)
{
	memset(e, 0, sizeof(*e));
	for (int f = 0; f < MCACHE_FIELD_COUNT; f++) {
		buf_reset(&bufs[f]);
		buf_printf(&bufs[f], "field %d of uid %u:", f, uid);
		for (uint32_t i = 0; i < uid % 7; i++)
			buf_append_str(&bufs[f], " padding");
		e->data[f] = bufs[f].data;
		e->len[f] = bufs[f].len;
	}
	if (uid % 5 == 0) {
		/* no header (above the cap) */
		e->data[MCACHE_HEADER] = NULL;
		e->len[MCACHE_HEADER] = 0;
	}
}

static void
store_uid(struct mcache *mc, struct mcache_walk *walk, uint32_t uidv, uint32_t uid)
{
	struct buf bufs[MCACHE_FIELD_COUNT] = { BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT };
	struct mcache_entry e;

	entry_of(uid, bufs, &e);
	mcache_store(mc, walk, uidv, 1, uid, &e);
	for (int f = 0; f < MCACHE_FIELD_COUNT; f++)
		buf_free(&bufs[f]);
}

/* Asserts that (uidv, uid) is found and holds entry_of(uid). */
static void
assert_hit(struct mcache *mc, struct mcache_walk *walk, uint32_t uidv, uint32_t uid)
{
	struct buf bufs[MCACHE_FIELD_COUNT] = { BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT };
	struct mcache_entry want, got;

	entry_of(uid, bufs, &want);
	if (mcache_lookup(mc, walk, uidv, uid, MCACHE_FIELDS_ALL, &got) != 1)
		fail_msg("uid %u not found", uid);
	for (int f = 0; f < MCACHE_FIELD_COUNT; f++) {
		if (want.data[f] == NULL) {
			assert_null(got.data[f]);
			continue;
		}
		assert_non_null(got.data[f]);
		assert_int_equal(got.len[f], want.len[f]);
		assert_memory_equal(got.data[f], want.data[f], want.len[f]);
	}
	for (int f = 0; f < MCACHE_FIELD_COUNT; f++)
		buf_free(&bufs[f]);
}

static void
assert_miss(struct mcache *mc, uint32_t uidv, uint32_t uid)
{
	struct mcache_entry got;

	assert_int_equal(mcache_lookup(mc, NULL, uidv, uid, MCACHE_FIELDS_ALL, &got), 0);
}

static off_t
file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void
test_round_trip_across_reopen(void **state)
{
	struct fixture *fx = *state;
	struct mcache *mc = mcache_open(fx->path);

	/* nothing on the disk yet: misses, and no file created */
	assert_miss(mc, 7, 1);
	assert_int_equal(access(fx->path, F_OK), -1);
	for (uint32_t uid = 1; uid <= 50; uid++)
		store_uid(mc, NULL, 7, uid);
	for (uint32_t uid = 1; uid <= 50; uid++)
		assert_hit(mc, NULL, 7, uid);
	assert_miss(mc, 7, 51);
	mcache_close(&mc);
	assert_null(mc);

	mc = mcache_open(fx->path);
	for (uint32_t uid = 50; uid >= 1; uid--)
		assert_hit(mc, NULL, 7, uid);
	assert_miss(mc, 7, 1000000);
	mcache_close(&mc);
}

static void
test_no_path_holds_nothing(void **state)
{
	struct mcache *mc = mcache_open(NULL);

	(void)state;
	store_uid(mc, NULL, 7, 1);
	assert_miss(mc, 7, 1);
	mcache_close(&mc);
}

static void
test_torn_tail_is_a_miss(void **state)
{
	struct fixture *fx = *state;
	struct mcache *mc = mcache_open(fx->path);
	struct mcache_stats stats;

	for (uint32_t uid = 1; uid <= 3; uid++)
		store_uid(mc, NULL, 7, uid);
	mcache_close(&mc);
	/* a crash in the middle of the last record */
	assert_int_equal(truncate(fx->path, file_size(fx->path) - 3), 0);
	mc = mcache_open(fx->path);
	assert_hit(mc, NULL, 7, 1);
	assert_hit(mc, NULL, 7, 2);
	assert_miss(mc, 7, 3);
	mcache_get_stats(mc, &stats);
	assert_int_equal(stats.bad_records, 1);
	/* recomputed and stored again */
	store_uid(mc, NULL, 7, 3);
	assert_hit(mc, NULL, 7, 3);
	mcache_close(&mc);
}

static void
flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x20;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void
test_flipped_byte_is_a_miss(void **state)
{
	struct fixture *fx = *state;
	struct mcache *mc = mcache_open(fx->path);
	off_t size;

	store_uid(mc, NULL, 7, 1);
	size = file_size(fx->path);
	store_uid(mc, NULL, 7, 2);
	/* one byte inside the second record's payload, then one in the
	   first slot (header 32 octets, slot of uid 1 at 32) */
	flip_byte(fx->path, size + (file_size(fx->path) - size) / 2 + 10);
	/* (reopened: what was read ahead before the damage still verifies) */
	mcache_close(&mc);
	mc = mcache_open(fx->path);
	assert_hit(mc, NULL, 7, 1);
	assert_miss(mc, 7, 2);
	flip_byte(fx->idx_path, 32 + 3);
	mcache_close(&mc);
	mc = mcache_open(fx->path);
	assert_miss(mc, 7, 1);
	store_uid(mc, NULL, 7, 1);
	store_uid(mc, NULL, 7, 2);
	assert_hit(mc, NULL, 7, 1);
	assert_hit(mc, NULL, 7, 2);
	mcache_close(&mc);
}

static void
write_garbage(const char *path, size_t len, unsigned seed)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	srand(seed);
	for (size_t i = 0; i < len; i++)
		fputc(rand() & 0xff, f);
	fclose(f);
}

static void
test_garbage_files_are_misses_then_rebuilt(void **state)
{
	struct fixture *fx = *state;
	struct mcache *mc;

	write_garbage(fx->path, 100000, 1);
	write_garbage(fx->idx_path, 5000, 2);
	mc = mcache_open(fx->path);
	for (uint32_t uid = 1; uid <= 200; uid++)
		assert_miss(mc, 7, uid);
	for (uint32_t uid = 1; uid <= 20; uid++)
		store_uid(mc, NULL, 7, uid);
	for (uint32_t uid = 1; uid <= 20; uid++)
		assert_hit(mc, NULL, 7, uid);
	mcache_close(&mc);
	/* a lost index: everything is a miss, then rebuilt */
	assert_int_equal(unlink(fx->idx_path), 0);
	mc = mcache_open(fx->path);
	assert_miss(mc, 7, 1);
	store_uid(mc, NULL, 7, 1);
	assert_hit(mc, NULL, 7, 1);
	mcache_close(&mc);
}

static void
test_uidvalidity_change_drops_entries(void **state)
{
	struct fixture *fx = *state;
	struct mcache *mc = mcache_open(fx->path), *other;

	for (uint32_t uid = 1; uid <= 10; uid++)
		store_uid(mc, NULL, 7, uid);
	assert_miss(mc, 8, 1);
	/* another process sees the new UIDVALIDITY and stores first */
	other = mcache_open(fx->path);
	store_uid(other, NULL, 8, 3);
	assert_hit(other, NULL, 8, 3);
	mcache_close(&other);
	assert_true(file_size(fx->path) < 1000);
	for (uint32_t uid = 1; uid <= 10; uid++)
		assert_miss(mc, 7, uid);
	assert_hit(mc, NULL, 8, 3);
	assert_miss(mc, 8, 4);
	mcache_close(&mc);
}

/* Stores uid until a lookup finds it: a store is skipped while another
   process holds the lock (which may be descheduled for a while). */
static void
store_until_found(struct mcache *mc, uint32_t uid)
{
	struct mcache_entry e;

	for (int tries = 0; tries < 100000; tries++) {
		store_uid(mc, NULL, 7, uid);
		if (mcache_lookup(mc, NULL, 7, uid, MCACHE_FIELDS_ALL, &e) == 1)
			return;
		usleep(100);
	}
	fail_msg("uid %u never stored", uid);
}

/* Children store disjoint UIDs while the parent stores its own: no
   record is lost to another's (every store succeeds or is skipped while
   the lock is taken, and a skipped one is stored again), and none is
   damaged. */
static void
test_concurrent_appender_processes(void **state)
{
	struct fixture *fx = *state;
	struct mcache *mc = mcache_open(fx->path);
	pid_t pids[3];

	store_uid(mc, NULL, 7, 1);
	for (int k = 0; k < 3; k++) {
		pids[k] = fork();
		assert_true(pids[k] >= 0);
		if (pids[k] == 0) {
			struct mcache *cmc = mcache_open(fx->path);

			for (uint32_t uid = 2 + (uint32_t)k; uid < 2000; uid += 4)
				store_until_found(cmc, uid);
			mcache_close(&cmc);
			_exit(0);
		}
	}
	for (uint32_t uid = 5; uid < 2000; uid += 4)
		store_until_found(mc, uid);
	for (int k = 0; k < 3; k++) {
		int status;

		assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	for (uint32_t uid = 1; uid < 2000; uid++)
		assert_hit(mc, NULL, 7, uid);
	mcache_close(&mc);
}

/* A walk that finds more garbage than live data makes the next walk
   copy the live entries to new files that replace the old ones; another
   process holding the old files notices and reads the new ones. */
static void
test_compaction_by_walks(void **state)
{
	struct fixture *fx = *state;
	struct mcache *mc = mcache_open(fx->path), *other;
	struct mcache_walk *walk;
	struct mcache_stats stats;
	struct mcache_entry e;
	off_t before;

	/* every entry stored 30 times: most of the file is garbage */
	for (int round = 0; round < 30; round++) {
		for (uint32_t uid = 1; uid <= 300; uid++)
			store_uid(mc, NULL, 7, uid);
	}
	other = mcache_open(fx->path);
	assert_hit(other, NULL, 7, 1);
	before = file_size(fx->path);
	/* "expunged": uids 1-100 are not walked */
	walk = mcache_walk_begin(mc, 7);
	for (uint32_t uid = 101; uid <= 300; uid++)
		assert_hit(mc, walk, 7, uid);
	mcache_walk_end(&walk, true);
	assert_null(walk);
	mcache_get_stats(mc, &stats);
	assert_int_equal(stats.compactions, 0);
	/* an incomplete walk does not replace the files */
	walk = mcache_walk_begin(mc, 7);
	assert_hit(mc, walk, 7, 101);
	mcache_walk_end(&walk, false);
	assert_int_equal(file_size(fx->path), before);
	/* the compacting walk: one message missing is stored on the way */
	walk = mcache_walk_begin(mc, 7);
	for (uint32_t uid = 101; uid <= 300; uid++) {
		if (uid == 200)
			store_uid(mc, walk, 7, 301);
		else
			assert_hit(mc, walk, 7, uid);
	}
	mcache_walk_end(&walk, true);
	mcache_get_stats(mc, &stats);
	assert_int_equal(stats.compactions, 1);
	assert_true(file_size(fx->path) * 10 < before);
	for (uint32_t uid = 101; uid <= 301; uid++) {
		if (uid != 200)
			assert_hit(mc, NULL, 7, uid);
	}
	assert_miss(mc, 7, 50);
	assert_int_equal(mcache_lookup(mc, NULL, 7, 200, MCACHE_FIELDS_ALL, &e), 0);
	/* no temporary file left */
	{
		char *cmd = xasprintf("test $(ls '%s' | wc -l) -eq 2", fx->dir);

		assert_int_equal(system(cmd), 0);
		free(cmd);
	}
	/* the other process stores: it notices the replaced files first */
	store_uid(other, NULL, 7, 400);
	assert_hit(mc, NULL, 7, 400);
	assert_hit(other, NULL, 7, 150);
	mcache_close(&other);
	mcache_close(&mc);
}

/* --- FETCH from the cache ------------------------------------------- */

static const char *const corpus_names[] = {
	"base64.eml", "broken.eml", "encoded.eml", "group.eml", "lab.eml",
	"mime-badheaders.eml", "mime-multiext.eml", "mime-nested.eml", "mime-noboundary.eml",
	"mime-noclose.eml", "mime-rfc2231.eml", "mime-rfc822-single.eml", "mime-rfc822.eml",
	"missing.eml", "multipart.eml", "nobody.eml", "noheader.eml", "plain.eml", "qp.eml",
	"quoted.eml", "truncated.eml",
};

static const char *const listing_items[] = {
	"ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822.HEADER", "BODY.PEEK[HEADER]",
	"BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID References "
	"In-Reply-To Content-Type)]",
	"BODY.PEEK[HEADER.FIELDS.NOT (Subject Received)]", "BODY.PEEK[HEADER]<5.20>",
	"UID", "FLAGS", "RFC822.SIZE",
};

static struct fetch_spec *
listing_spec(void)
{
	struct imap_arg list[N_ELEMENTS(listing_items)], top;
	struct fetch_spec *spec;
	const char *error;

	for (size_t i = 0; i < N_ELEMENTS(listing_items); i++) {
		memset(&list[i], 0, sizeof(list[i]));
		list[i].type = IMAP_ARG_ATOM;
		list[i].str = (char *)listing_items[i];
		list[i].len = strlen(listing_items[i]);
	}
	memset(&top, 0, sizeof(top));
	top.type = IMAP_ARG_LIST;
	top.list = list;
	top.list_count = N_ELEMENTS(listing_items);
	assert_int_equal(fetch_parse(&top, 1, &spec, &error), 0);
	assert_true(fetch_spec_uses_cache(spec));
	assert_true(fetch_spec_cache_answers(spec));
	assert_true(fetch_spec_cache_needs_header(spec));
	return spec;
}

static void
test_fetch_from_cache_is_byte_identical(void **state)
{
	struct fixture *fx = *state;
	struct fetch_spec *spec = listing_spec();
	struct mcache *mc = mcache_open(fx->path);
	struct mbox_state st;
	struct mail_rec recs[N_ELEMENTS(corpus_names)];
	char *data[N_ELEMENTS(corpus_names)];
	struct buf want[N_ELEMENTS(corpus_names)];

	memset(&st, 0, sizeof(st));
	memset(recs, 0, sizeof(recs));
	/* uncached answers, and the entries stored */
	for (size_t i = 0; i < N_ELEMENTS(corpus_names); i++) {
		struct buf bufs[3] = { BUF_INIT, BUF_INIT, BUF_INIT };
		struct mcache_entry e;
		struct fetch_msg m = { .seq = (uint32_t)i + 1, .rec = &recs[i], .state = &st };
		size_t len;

		data[i] = read_crlf(corpus_names[i], &len);
		recs[i].uid = (uint32_t)i + 10;
		recs[i].size = len;
		m.data = data[i];
		m.len = len;
		memset(&want[i], 0, sizeof(want[i]));
		fetch_write(spec, &m, &want[i]);
		fetch_cache_entry(&m, bufs, &e);
		/* the entry written the way cmd_fetch does after a miss */
		m.cached = &e;
		{
			struct buf again = BUF_INIT;

			fetch_write(spec, &m, &again);
			assert_int_equal(again.len, want[i].len);
			assert_memory_equal(again.data, want[i].data, again.len);
			buf_free(&again);
		}
		mcache_store(mc, NULL, 5, 10, recs[i].uid, &e);
		for (int k = 0; k < 3; k++)
			buf_free(&bufs[k]);
	}
	mcache_close(&mc);
	/* after a "restart", from the cache alone: no message data */
	mc = mcache_open(fx->path);
	for (size_t i = 0; i < N_ELEMENTS(corpus_names); i++) {
		struct mcache_entry e;
		struct fetch_msg m = { .seq = (uint32_t)i + 1, .rec = &recs[i], .state = &st };
		struct buf got = BUF_INIT;

		assert_int_equal(mcache_lookup(mc, NULL, 5, recs[i].uid,
					       fetch_spec_cache_fields(spec), &e),
				 1);
		assert_non_null(e.data[MCACHE_HEADER]);
		m.cached = &e;
		fetch_write(spec, &m, &got);
		if (got.len != want[i].len || memcmp(got.data, want[i].data, got.len) != 0)
			fail_msg("%s from the cache:\n got: %.*s\nwant: %.*s", corpus_names[i],
				 (int)got.len, got.data, (int)want[i].len, want[i].data);
		buf_free(&got);
		buf_free(&want[i]);
		free(data[i]);
	}
	mcache_close(&mc);
	fetch_spec_free(&spec);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_across_reopen, setup, teardown),
		cmocka_unit_test(test_no_path_holds_nothing),
		cmocka_unit_test_setup_teardown(test_torn_tail_is_a_miss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte_is_a_miss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_files_are_misses_then_rebuilt, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_uidvalidity_change_drops_entries, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_appender_processes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_compaction_by_walks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_from_cache_is_byte_identical, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
