/* test_flat.c: the flat (mymailbox.mail) storage backend. Every test runs
   in its own mkdtemp() root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"
#include "buf.h"
#include "backends/flat/flat.h"
#include "tmp_tree.h"

/* The kind of the last storage failure (the calls below want one). */
static enum storage_error st_err;

static const struct storage_backend *const B = &storage_backend_flat;

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

	strcpy(fx->root, "/tmp/test_flat.XXXXXX");
	assert_non_null(mkdtemp(fx->root));
	set.root = fx->root;
	assert_int_equal(B->init(&set, &fx->st, &error), 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	B->deinit(&fx->st);
	assert_null(fx->st);
	tmp_tree_remove(fx->root);
	free(fx);
	return 0;
}

static char *
path_of(struct fx *fx, const char *rel)
{
	return xasprintf("%s/%s", fx->root, rel);
}

static void
write_file(struct fx *fx, const char *rel, const char *content, const char *mode)
{
	char *path = path_of(fx, rel);
	char *dir = xstrdup(path);
	FILE *f;

	*strrchr(dir, '/') = '\0';
	(void)mkdir(dir, 0700);
	f = fopen(path, mode);
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
	assert_int_equal(fclose(f), 0);
	free(dir);
	free(path);
}

static char *
read_file(struct fx *fx, const char *rel)
{
	char *path = path_of(fx, rel);
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&b, tmp, n);
	fclose(f);
	free(path);
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

static void
set_mtime_past(struct fx *fx, const char *rel, int secs)
{
	char *path = path_of(fx, rel);
	struct timeval tv[2];

	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= secs;
	tv[1] = tv[0];
	assert_int_equal(utimes(path, tv), 0);
	free(path);
}

static struct storage_box *
open_box(struct fx *fx, const char *user, const char *name, struct mbox_state *s)
{
	struct storage_box *box = NULL;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;
	int ret;

	mbox_state_init(s);
	ret = B->open(fx->st, user, name, s, &box, &err, &error);
	if (ret < 0)
		fail_msg("open %s/%s: %s", user, name, error);
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
		fail_msg("read uid %u: %s", rec->uid, error);
	assert_int_equal(b.len, rec->size);
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

static uint32_t
append_msg(struct storage_box *box, struct mbox_state *s, const char *data, uint8_t flags)
{
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;
	uint32_t uid = 0;

	if (B->append(box, s, data, strlen(data), flags, 0, 0, 0, &uid, &err, &error) < 0)
		fail_msg("append: %s", error);
	assert_true(uid > 0);
	return uid;
}

static void
expunge_uids(struct storage_box *box, struct mbox_state *s, const uint32_t *uids, size_t n)
{
	char *error = NULL;

	if (B->expunge(box, s, uids, n, &st_err, &error) < 0)
		fail_msg("expunge: %s", error);
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

static char *
simple_msg(unsigned n)
{
	return xasprintf("From: a@x\r\nSubject: m%u\r\n\r\nbody %u\r\n", n, n);
}

static const char lab_file[] =
	"From: alice@localhost\n"
	"To: bob@localhost\n"
	"Subject: hello\n"
	"Received: 2022-03-10 : 14 : 30\n"
	"Hello: world\n"
	"..leading dot\n"
	"...two dots\n"
	"last line\n"
	".\n"
	"From: carol@localhost\n"
	"To: bob@localhost\n"
	"Subject: no received line\n"
	"Hello: world\n"
	"body text\n"
	".\n"
	"From: dave@localhost\n"
	"Subject: proper\n"
	"Date: Thu, 10 Mar 2022 12:00:00 +0100\n"
	"\n"
	"Hello: world\n"
	".\n";

static void
test_lab_file_served_with_blank_line_and_exact_size(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	char *text, *file;
	struct tm tm;

	write_file(fx, "bob/mymailbox.mail", lab_file, "w");
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.mails[0].uid, 1);
	assert_int_equal(s.mails[2].uid, 3);
	assert_true(s.uidvalidity != 0);

	/* The lab Received line ends the header: "Hello: world" is body. */
	text = msg_text(box, &s.mails[0]);
	assert_string_equal(text, "From: alice@localhost\r\nTo: bob@localhost\r\nSubject: hello\r\n"
			    "Received: 2022-03-10 : 14 : 30\r\n\r\nHello: world\r\n"
			    ".leading dot\r\n..two dots\r\nlast line\r\n");
	assert_int_equal(s.mails[0].size, strlen(text));
	free(text);
	i_zero(&tm);
	tm.tm_year = 122;
	tm.tm_mon = 2;
	tm.tm_mday = 10;
	tm.tm_hour = 14;
	tm.tm_min = 30;
	tm.tm_isdst = -1;
	assert_int_equal(s.mails[0].internal_date, (int64_t)mktime(&tm));

	/* Without a lab Received line, "Hello: world" is a header field
	   (documented rule); the body starts at "body text". */
	text = msg_text(box, &s.mails[1]);
	assert_string_equal(text, "From: carol@localhost\r\nTo: bob@localhost\r\n"
			    "Subject: no received line\r\nHello: world\r\n\r\nbody text\r\n");
	free(text);

	/* A message with its blank line is served as is; date from Date:. */
	text = msg_text(box, &s.mails[2]);
	assert_string_equal(text, "From: dave@localhost\r\nSubject: proper\r\n"
			    "Date: Thu, 10 Mar 2022 12:00:00 +0100\r\n\r\nHello: world\r\n");
	free(text);
	assert_int_equal(s.mails[2].internal_date, 1646910000);
	assert_int_equal(s.mails[2].tz_minutes, 60);

	/* read without conversion: the file is untouched */
	file = read_file(fx, "bob/mymailbox.mail");
	assert_string_equal(file, lab_file);
	free(file);
	close_box(&box, &s);
}

/* A Date: header in the obsolete "GMT" form is the INTERNALDATE of a
   message without a lab Received: line; where one is present, the
   Received: line still wins, wherever the Date: line stands. */
static void
test_gmt_date_header_is_internal_date(void **state)
{
	static const char file[] = "From: erin@localhost\n"
				   "Subject: gmt\n"
				   "Date: Tue, 01 Mar 2022 10:00:00 GMT\n"
				   "\n"
				   "body\n"
				   ".\n"
				   "From: frank@localhost\n"
				   "Date: Tue, 01 Mar 2022 10:00:00 GMT\n"
				   "Received: 2022-03-10 : 14 : 30\n"
				   "body\n"
				   ".\n"
				   "From: gina@localhost\n"
				   "Received: 2022-03-10 : 14 : 30\n"
				   "Date: Tue, 01 Mar 2022 10:00:00 GMT\n"
				   "\n"
				   "body\n"
				   ".\n";
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	struct tm tm;
	int64_t lab;

	write_file(fx, "bob/mymailbox.mail", file, "w");
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 3);
	/* 2022-03-01 10:00:00 UTC */
	assert_int_equal(s.mails[0].internal_date, 1646128800);
	assert_int_equal(s.mails[0].tz_minutes, 0);

	i_zero(&tm);
	tm.tm_year = 122;
	tm.tm_mon = 2;
	tm.tm_mday = 10;
	tm.tm_hour = 14;
	tm.tm_min = 30;
	tm.tm_isdst = -1;
	lab = (int64_t)mktime(&tm);
	assert_int_equal(s.mails[1].internal_date, lab);
	assert_int_equal(s.mails[2].internal_date, lab);
	close_box(&box, &s);
}

static void
test_crlf_on_disk_served_as_crlf(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	char *text;

	write_file(fx, "bob/mymailbox.mail",
		   "From: a\r\nSubject: crlf\r\n\r\n..dot\r\nline\r\n.\r\n"
		   "From: b\nSubject: lf\n\nx\n.\n", "w");
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 2);
	text = msg_text(box, &s.mails[0]);
	assert_string_equal(text, "From: a\r\nSubject: crlf\r\n\r\n.dot\r\nline\r\n");
	free(text);
	text = msg_text(box, &s.mails[1]);
	assert_string_equal(text, "From: b\r\nSubject: lf\r\n\r\nx\r\n");
	free(text);
	close_box(&box, &s);
}

static void
test_append_read_round_trip(void **state)
{
	struct fx *fx = *state;
	static const char msg[] = "From: x@y\r\nSubject: dots\r\n\r\nline\r\n.\r\n.x\r\n..y\r\n"
		"\r\nend\r\n";
	static const char lf_msg[] = "From: x@y\nSubject: lf\n\nbody\n";
	struct mbox_state s;
	struct storage_box *box;
	char *text, *file;
	uint32_t uid;

	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 0);
	uid = append_msg(box, &s, msg, MAIL_SEEN);
	assert_int_equal(uid, 1);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.mails[0].flags, MAIL_SEEN);
	assert_int_equal(s.mails[0].size, strlen(msg));
	text = msg_text(box, &s.mails[0]);
	assert_memory_equal(text, msg, strlen(msg));
	free(text);
	uid = append_msg(box, &s, lf_msg, 0);
	assert_int_equal(uid, 2);
	text = msg_text(box, &s.mails[1]);
	assert_string_equal(text, "From: x@y\r\nSubject: lf\r\n\r\nbody\r\n");
	free(text);
	/* stored form: LF, dot-stuffed, "." line */
	file = read_file(fx, "bob/mymailbox.mail");
	assert_string_equal(file, "From: x@y\nSubject: dots\n\nline\n..\n..x\n...y\n\nend\n.\n"
			    "From: x@y\nSubject: lf\n\nbody\n.\n");
	free(file);
	close_box(&box, &s);
}

static void
test_uids_and_flags_stable_across_reopen(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	uint32_t uidvalidity;
	char *error = NULL, *m;
	int kw;

	box = open_box(fx, "bob", "INBOX", &s);
	for (unsigned i = 1; i <= 3; i++) {
		m = simple_msg(i);
		assert_int_equal(append_msg(box, &s, m, 0), i);
		free(m);
	}
	uidvalidity = s.uidvalidity;
	kw = mbox_state_keyword(&s, "$Work", true);
	assert_int_equal(kw, 0);
	assert_true(mbox_state_set_flags(&s, 1, MAIL_FLAGGED | MAIL_SEEN, 1ULL << kw));
	assert_int_equal(B->flags_changed(box, &s, 1, &st_err, &error), 0);
	assert_true(mbox_state_set_flags(&s, 2, MAIL_DELETED, 0));
	assert_int_equal(B->flags_changed(box, &s, 2, &st_err, &error), 0);
	close_box(&box, &s);

	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.uidnext, 4);
	assert_int_equal(s.mails[0].flags, 0);
	assert_int_equal(s.mails[1].flags, MAIL_FLAGGED | MAIL_SEEN);
	assert_int_equal(s.keyword_count, 1);
	assert_string_equal(s.keywords[0], "$Work");
	assert_int_equal(s.mails[1].keywords, 1);
	assert_int_equal(s.mails[2].flags, MAIL_DELETED);
	for (unsigned i = 0; i < 3; i++) {
		char *text = msg_text(box, &s.mails[i]);

		m = simple_msg(i + 1);
		assert_string_equal(text, m);
		free(m);
		free(text);
	}
	/* nothing changed: sync is a no-op */
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.count, 3);
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
	close_box(&box, &s);
	m = read_file(fx, "bob/mymailbox.mail");
	assert_string_equal(m, "From: a@x\nSubject: m1\n\nbody 1\n.\nFrom: a@x\nSubject: m3\n\n"
			    "body 3\n.\nFrom: a@x\nSubject: m5\n\nbody 5\n.\n"
			    "From: a@x\nSubject: m7\n\nbody 7\n.\n");
	free(m);
}

static void
test_index_deleted_keeps_mail_new_uidvalidity(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	uint32_t uidvalidity;
	char *m, *path;

	box = open_box(fx, "bob", "INBOX", &s);
	for (unsigned i = 1; i <= 3; i++) {
		m = simple_msg(i);
		append_msg(box, &s, m, MAIL_SEEN);
		free(m);
	}
	uidvalidity = s.uidvalidity;
	close_box(&box, &s);
	path = path_of(fx, "bob/.imap/INBOX.index");
	assert_int_equal(unlink(path), 0);
	free(path);

	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 3);
	assert_int_not_equal(s.uidvalidity, uidvalidity);
	for (unsigned i = 0; i < 3; i++) {
		char *text = msg_text(box, &s.mails[i]);

		assert_int_equal(s.mails[i].flags, 0);
		m = simple_msg(i + 1);
		assert_string_equal(text, m);
		free(m);
		free(text);
	}
	close_box(&box, &s);

	/* a corrupt index: the same */
	write_file(fx, "bob/.imap/INBOX.index", "garbage", "w");
	uidvalidity = 0;
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 3);
	close_box(&box, &s);
}

static void
test_file_rewritten_by_hand_loses_no_mail(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	uint32_t uidvalidity, uid3;
	char *m;

	box = open_box(fx, "bob", "INBOX", &s);
	for (unsigned i = 1; i <= 3; i++) {
		m = simple_msg(i);
		append_msg(box, &s, m, MAIL_SEEN);
		free(m);
	}
	uidvalidity = s.uidvalidity;
	uid3 = s.mails[2].uid;
	close_box(&box, &s);

	/* another program removed message 2 and added one at the end */
	write_file(fx, "bob/mymailbox.mail",
		   "From: a@x\nSubject: m1\n\nbody 1\n.\nFrom: a@x\nSubject: m3\n\nbody 3\n.\n"
		   "From: new\nSubject: n\n\nnew\n.\n", "w");
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.mails[0].uid, 1);
	assert_int_equal(s.mails[1].uid, uid3);
	assert_int_equal(s.mails[1].flags, MAIL_SEEN);
	assert_int_equal(s.mails[2].uid, 4);
	close_box(&box, &s);

	/* inserted at the front: a new UIDVALIDITY, every message kept */
	write_file(fx, "bob/mymailbox.mail",
		   "From: first\nSubject: f\n\nf\n.\n"
		   "From: a@x\nSubject: m1\n\nbody 1\n.\nFrom: a@x\nSubject: m3\n\nbody 3\n.\n"
		   "From: new\nSubject: n\n\nnew\n.\n", "w");
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_not_equal(s.uidvalidity, uidvalidity);
	assert_int_equal(s.count, 4);
	assert_int_equal(s.mails[0].uid, 1);
	assert_int_equal(s.mails[3].uid, 4);
	m = msg_text(box, &s.mails[0]);
	assert_string_equal(m, "From: first\r\nSubject: f\r\n\r\nf\r\n");
	free(m);
	close_box(&box, &s);
}

static void
test_truncated_tail_served_when_old(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	char *m;

	write_file(fx, "bob/mymailbox.mail",
		   "From: a\nSubject: one\n\n1\n.\nFrom: z\nSubject: cut\n\npartial", "w");
	/* young: an in-progress write, not served yet */
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 1);
	set_mtime_past(fx, "bob/mymailbox.mail", 10);
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.count, 2);
	m = msg_text(box, &s.mails[1]);
	assert_string_equal(m, "From: z\r\nSubject: cut\r\n\r\npartial\r\n");
	free(m);
	close_box(&box, &s);

	/* reopen: served the same, same UID */
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 2);
	assert_int_equal(s.mails[1].uid, 2);
	/* our append terminates it so that it stays its own message */
	append_msg(box, &s, "Subject: three\r\n\r\n3\r\n", 0);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.mails[1].uid, 2);
	assert_int_equal(s.mails[2].uid, 3);
	m = msg_text(box, &s.mails[1]);
	assert_string_equal(m, "From: z\r\nSubject: cut\r\n\r\npartial\r\n");
	free(m);
	m = msg_text(box, &s.mails[2]);
	assert_string_equal(m, "Subject: three\r\n\r\n3\r\n");
	free(m);
	close_box(&box, &s);
	m = read_file(fx, "bob/mymailbox.mail");
	assert_string_equal(m, "From: a\nSubject: one\n\n1\n.\nFrom: z\nSubject: cut\n\npartial\n.\n"
			    "Subject: three\n\n3\n.\n");
	free(m);
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.mails[2].uid, 3);
	close_box(&box, &s);
}

static void
test_young_tail_terminated_by_append(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	char *m;

	box = open_box(fx, "bob", "INBOX", &s);
	append_msg(box, &s, "Subject: one\r\n\r\n1\r\n", 0);
	write_file(fx, "bob/mymailbox.mail", "Subject: half\n\nhalf", "a");
	append_msg(box, &s, "Subject: two\r\n\r\n2\r\n", 0);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.mails[2].uid, 3);
	m = msg_text(box, &s.mails[1]);
	assert_string_equal(m, "Subject: half\r\n\r\nhalf\r\n");
	free(m);
	m = msg_text(box, &s.mails[2]);
	assert_string_equal(m, "Subject: two\r\n\r\n2\r\n");
	free(m);
	close_box(&box, &s);
}

static bool
rel_exists(struct fx *fx, const char *rel)
{
	char *path = path_of(fx, rel);
	struct stat st;
	bool ret = lstat(path, &st) == 0;

	free(path);
	return ret;
}

/* A pid that is surely gone: a child's, reaped. */
static pid_t
dead_pid(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

/* kill -9 of a writer (smtpmail) while it waited for the lock leaves its
   private "mymailbox.mail.lock.<pid>": the next writer to take the lock
   removes a dead pid's, and any older than the stale age, and nothing
   else. */
static void
test_stale_lock_tmp_files_removed_when_lock_taken(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	char *dead, *old, *live, *other, *m;
	pid_t pid = dead_pid();

	box = open_box(fx, "bob", "INBOX", &s);
	dead = xasprintf("bob/mymailbox.mail.lock.%ld", (long)pid);
	old = xasprintf("bob/mymailbox.mail.lock.%ld", (long)getppid());
	live = xasprintf("bob/mymailbox.mail.lock.%ld", (long)getppid());
	other = xasprintf("bob/Box.mail.lock.%ld", (long)pid);
	write_file(fx, dead, "1\n", "w");
	write_file(fx, other, "1\n", "w");
	write_file(fx, "bob/mymailbox.mail.lock.x12", "1\n", "w");
	/* a live process's, young: it may be waiting for the lock */
	write_file(fx, live, "1\n", "w");
	append_msg(box, &s, "Subject: one\r\n\r\n1\r\n", 0);
	assert_false(rel_exists(fx, dead));
	assert_true(rel_exists(fx, live));
	assert_true(rel_exists(fx, other));
	assert_true(rel_exists(fx, "bob/mymailbox.mail.lock.x12"));
	assert_false(rel_exists(fx, "bob/mymailbox.mail.lock"));
	/* the same live pid's, but older than any wait */
	set_mtime_past(fx, old, 3600);
	append_msg(box, &s, "Subject: two\r\n\r\n2\r\n", 0);
	assert_false(rel_exists(fx, old));
	assert_true(rel_exists(fx, other));
	assert_int_equal(s.count, 2);
	m = msg_text(box, &s.mails[1]);
	assert_string_equal(m, "Subject: two\r\n\r\n2\r\n");
	free(m);
	close_box(&box, &s);
	free(dead);
	free(old);
	free(live);
	free(other);
}

/* A writer killed in the middle of an APPEND leaves a message without
   its final "." line, and its dotlock and private lock file. It is
   hidden while young; the next APPEND takes the lock (the holder is
   dead), ends the torn message with its terminator (keeping its bytes: a
   lab-style writer's complete message may lack the "." too) and writes
   the new message after it, never glued onto it. */
static void
test_torn_message_of_killed_writer_not_glued_by_append(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	char *lock, *tmp, *m, *pidline;
	pid_t pid = dead_pid();

	box = open_box(fx, "bob", "INBOX", &s);
	append_msg(box, &s, "Subject: one\r\n\r\n1\r\n", 0);
	/* what the killed writer left */
	pidline = xasprintf("%ld\n", (long)pid);
	tmp = xasprintf("bob/mymailbox.mail.lock.%ld", (long)pid);
	lock = xstrdup("bob/mymailbox.mail.lock");
	write_file(fx, tmp, pidline, "w");
	write_file(fx, lock, pidline, "w");
	write_file(fx, "bob/mymailbox.mail", "Subject: torn\n\n..dotted\npart", "a");
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.count, 1);
	append_msg(box, &s, "Subject: two\r\n\r\n.2\r\n", 0);
	assert_false(rel_exists(fx, tmp));
	assert_false(rel_exists(fx, lock));
	assert_int_equal(s.count, 3);
	m = msg_text(box, &s.mails[1]);
	assert_string_equal(m, "Subject: torn\r\n\r\n.dotted\r\npart\r\n");
	free(m);
	m = msg_text(box, &s.mails[2]);
	assert_string_equal(m, "Subject: two\r\n\r\n.2\r\n");
	free(m);
	close_box(&box, &s);
	m = read_file(fx, "bob/mymailbox.mail");
	assert_string_equal(m, "Subject: one\n\n1\n.\nSubject: torn\n\n..dotted\npart\n.\n"
			    "Subject: two\n\n..2\n.\n");
	free(m);
	/* the same after a reopen, with the same UIDs */
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.mails[1].uid, 2);
	assert_int_equal(s.mails[2].uid, 3);
	m = msg_text(box, &s.mails[2]);
	assert_string_equal(m, "Subject: two\r\n\r\n.2\r\n");
	free(m);
	close_box(&box, &s);
	free(pidline);
	free(tmp);
	free(lock);
}

/* sync() runs in the server's loop: a lock held by another process (the
   stand-alone smtpmail in the middle of a delivery) must not make it
   wait; the change is taken in once the lock is gone. */
static void
test_sync_does_not_wait_for_another_writers_lock(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	char *lock = path_of(fx, "bob/mymailbox.mail.lock");
	int pipefd[2];
	pid_t pid;

	box = open_box(fx, "bob", "INBOX", &s);
	append_msg(box, &s, "Subject: one\r\n\r\n1\r\n", 0);
	/* A live process holds the dotlock. */
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;
		close(pipefd[1]);
		(void)read(pipefd[0], &c, 1);
		_exit(0);
	}
	close(pipefd[0]);
	FILE *f = fopen(lock, "w");
	assert_non_null(f);
	fprintf(f, "%ld\n", (long)pid);
	fclose(f);
	/* Its message is in the file, but its index update is not. */
	write_file(fx, "bob/mymailbox.mail", "Subject: two\n\n2\n.\n", "a");
	int64_t start = mono_ms();
	assert_int_equal(do_sync(box, &s), 0);
	/* Returned at once (the lock wait is 10 s), without the message. */
	assert_true(mono_ms() - start < 2000);
	assert_int_equal(s.count, 1);
	/* The writer lets go: the next sync takes the message in. */
	assert_int_equal(unlink(lock), 0);
	close(pipefd[1]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.count, 2);
	assert_int_equal(s.mails[1].uid, 2);
	/* The lock file is among the watched paths, so its removal wakes
	   the server. */
	struct strlist paths = { 0 };
	B->watch_paths(box, &paths);
	assert_true(strlist_contains(&paths, lock));
	strlist_clear(&paths);
	free(lock);
	close_box(&box, &s);
}

/* Another program empties the file (the lab's tools rewrite it in place):
   sync() rescans the empty file and ends with an empty mailbox that goes
   on working; a new empty mailbox file (CREATE) opens the same way. */
static void
test_file_emptied_by_another_program(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	char *path = path_of(fx, "bob/mymailbox.mail");

	box = open_box(fx, "bob", "INBOX", &s);
	append_msg(box, &s, "Subject: one\r\n\r\n1\r\n", 0);
	append_msg(box, &s, "Subject: two\r\n\r\n2\r\n", 0);
	assert_int_equal(truncate(path, 0), 0);
	(void)do_sync(box, &s);
	assert_int_equal(s.count, 0);
	/* And the mailbox goes on working. */
	append_msg(box, &s, "Subject: three\r\n\r\n3\r\n", 0);
	assert_int_equal(s.count, 1);
	assert_true(s.mails[0].uid >= 1);
	free(path);
	close_box(&box, &s);
	/* A new, empty mailbox file without an index (CREATE, then SELECT)
	   is scanned the same way. */
	enum storage_error err;
	char *error = NULL;
	assert_int_equal(B->create(fx->st, "bob", "Empty", &err, &error), 0);
	box = open_box(fx, "bob", "Empty", &s);
	assert_int_equal(s.count, 0);
	(void)do_sync(box, &s);
	close_box(&box, &s);
}

static void
test_unlocked_append_picked_up_by_sync(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	uint32_t uidvalidity;
	char *m;

	box = open_box(fx, "bob", "INBOX", &s);
	append_msg(box, &s, "Subject: one\r\n\r\n1\r\n", MAIL_SEEN);
	uidvalidity = s.uidvalidity;
	write_file(fx, "bob/mymailbox.mail",
		   "From: smtp\nSubject: lab\nReceived: 2022-03-10 : 14 : 30\nhi\n.\n", "a");
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_int_equal(s.count, 2);
	assert_int_equal(s.mails[0].flags, MAIL_SEEN);
	assert_int_equal(s.mails[1].uid, 2);
	m = msg_text(box, &s.mails[1]);
	assert_string_equal(m, "From: smtp\r\nSubject: lab\r\nReceived: 2022-03-10 : 14 : 30\r\n"
			    "\r\nhi\r\n");
	free(m);
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.count, 2);
	close_box(&box, &s);
	/* a second process sees the same UIDs */
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 2);
	assert_int_equal(s.mails[1].uid, 2);
	assert_int_equal(s.uidvalidity, uidvalidity);
	close_box(&box, &s);
}

/* Served texts of a state, for set comparisons. */
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
test_locked_append_by_other_process_during_expunge(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	struct strlist texts;
	pid_t pid;
	int status = 0;
	char *m;
	unsigned expunged = 0;
	/* Bounded in time, not in rounds: under valgrind the child is slow. */
	int64_t deadline = mono_ms() + 60000;

	box = open_box(fx, "bob", "INBOX", &s);
	for (unsigned i = 1; i <= 40; i++) {
		m = simple_msg(i);
		append_msg(box, &s, m, 0);
		free(m);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct mbox_state cs;
		struct storage_box *cbox = NULL;
		enum storage_error err;
		char *error = NULL;

		mbox_state_init(&cs);
		if (B->open(fx->st, "bob", "INBOX", &cs, &cbox, &err, &error) < 0)
			_exit(2);
		for (unsigned i = 100; i < 120; i++) {
			char *cm = simple_msg(i);
			uint32_t uid;

			if (B->append(cbox, &cs, cm, strlen(cm), 0, 0, 0, 0, &uid, &err, &error) < 0)
				_exit(3);
			free(cm);
			usleep(500);
		}
		B->close(&cbox);
		mbox_state_deinit(&cs);
		_exit(0);
	}
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		uint32_t uid;

		assert_true(w >= 0);
		if (w == pid)
			break;
		if (mono_ms() >= deadline)
			break;
		do_sync(box, &s);
		/* expunge one of the first 40 per round */
		if (expunged < 20) {
			uid = s.mails[0].uid;
			assert_true(uid <= 40);
			expunge_uids(box, &s, &uid, 1);
			expunged++;
		}
		usleep(300);
	}
	if (mono_ms() >= deadline && waitpid(pid, &status, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("child did not finish");
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	do_sync(box, &s);
	assert_int_equal(s.count, 40 - expunged + 20);
	texts = texts_of(box, &s);
	assert_no_duplicates(&texts);
	for (unsigned i = 100; i < 120; i++) {
		m = simple_msg(i);
		assert_true(strlist_contains(&texts, m));
		free(m);
	}
	for (unsigned i = expunged + 1; i <= 40; i++) {
		m = simple_msg(i);
		assert_true(strlist_contains(&texts, m));
		free(m);
	}
	for (size_t i = 1; i < s.count; i++)
		assert_true(s.mails[i].uid > s.mails[i - 1].uid);
	strlist_clear(&texts);
	close_box(&box, &s);
}

static void
test_crash_during_expunge_loses_nothing(void **state)
{
	struct fx *fx = *state;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

	for (unsigned iter = 0; iter < 30; iter++) {
		struct mbox_state s;
		struct storage_box *box;
		struct strlist all = { NULL, 0, 0 }, kept = { NULL, 0, 0 }, got;
		uint32_t kept_uids[100];
		char user[32];
		pid_t pid;
		int status;
		bool is_all, is_kept;

		snprintf(user, sizeof(user), "crash%u", iter);
		box = open_box(fx, user, "INBOX", &s);
		for (unsigned i = 1; i <= 100; i++) {
			char *m = simple_msg(i);

			append_msg(box, &s, m, 0);
			strlist_add(&all, m);
			if (i % 3 != 0) {
				kept_uids[kept.count] = s.mails[s.count - 1].uid;
				strlist_add(&kept, m);
			}
			free(m);
		}
		close_box(&box, &s);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct mbox_state cs;
			struct storage_box *cbox = NULL;
			enum storage_error err;
			char *error = NULL;
			uint32_t uids[40];
			size_t n = 0;

			mbox_state_init(&cs);
			if (B->open(fx->st, user, "INBOX", &cs, &cbox, &err, &error) < 0)
				_exit(2);
			for (uint32_t u = 3; u <= 100; u += 3)
				uids[n++] = u;
			if (B->expunge(cbox, &cs, uids, n, &st_err, &error) < 0)
				_exit(3);
			_exit(0);
		}
		usleep((useconds_t)(rand_r(&seed) % 4000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);

		box = open_box(fx, user, "INBOX", &s);
		got = texts_of(box, &s);
		assert_no_duplicates(&got);
		is_all = got.count == all.count;
		is_kept = got.count == kept.count;
		assert_true(is_all || is_kept);
		for (size_t i = 0; i < got.count; i++)
			assert_true(strlist_contains(is_all ? &all : &kept, got.items[i]));
		if (is_kept) {
			for (size_t i = 0; i < got.count; i++)
				assert_int_equal(s.mails[i].uid, kept_uids[i]);
		}
		strlist_clear(&got);
		strlist_clear(&all);
		strlist_clear(&kept);
		/* and it still works: append after the crash */
		append_msg(box, &s, "Subject: after\r\n\r\nx\r\n", 0);
		assert_int_equal(s.mails[s.count - 1].uid, 101);
		close_box(&box, &s);
	}
}

static bool
list_has(const struct strlist *l, const char *name)
{
	return strlist_contains(l, name);
}

static void
test_create_delete_rename_list(void **state)
{
	struct fx *fx = *state;
	struct strlist names = { NULL, 0, 0 };
	enum storage_error err;
	char *error = NULL;
	struct mbox_state s;
	struct storage_box *box = NULL;
	struct stat sb;
	char *p;

	assert_int_equal(B->create(fx->st, "bob", "Sent", &err, &error), 0);
	assert_int_equal(B->create(fx->st, "bob", "a/b/c", &err, &error), 0);
	assert_int_equal(B->create(fx->st, "bob", "Sent", &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_EXISTS);
	free(error);
	error = NULL;
	assert_int_equal(B->create(fx->st, "bob", "INBOX", &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_EXISTS);
	free(error);
	error = NULL;
	p = path_of(fx, "bob/Sent.mail");
	assert_int_equal(stat(p, &sb), 0);
	free(p);
	assert_int_equal(B->list(fx->st, "bob", &names, &err, &error), 0);
	assert_int_equal(names.count, 3);
	assert_true(list_has(&names, "INBOX"));
	assert_true(list_has(&names, "Sent"));
	assert_true(list_has(&names, "a/b/c"));
	assert_false(list_has(&names, "a"));
	strlist_clear(&names);

	/* a mailbox that does not exist */
	mbox_state_init(&s);
	assert_int_equal(B->open(fx->st, "bob", "nope", &s, &box, &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_NOT_FOUND);
	free(error);
	error = NULL;
	mbox_state_deinit(&s);
	assert_int_equal(B->delete(fx->st, "bob", "nope", &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_NOT_FOUND);
	free(error);
	error = NULL;
	assert_int_equal(B->delete(fx->st, "bob", "INBOX", &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_BAD_NAME);
	free(error);
	error = NULL;

	/* nested mailbox with mail, renamed with its index */
	box = open_box(fx, "bob", "a/b/c", &s);
	append_msg(box, &s, "Subject: nested\r\n\r\nn\r\n", MAIL_FLAGGED);
	close_box(&box, &s);
	assert_int_equal(B->rename(fx->st, "bob", "a/b/c", "x/y", &err, &error), 0);
	assert_int_equal(B->rename(fx->st, "bob", "Sent", "x/y", &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_EXISTS);
	free(error);
	error = NULL;
	assert_int_equal(B->rename(fx->st, "bob", "gone", "z", &err, &error), -1);
	assert_int_equal(err, STORAGE_ERR_NOT_FOUND);
	free(error);
	error = NULL;
	box = open_box(fx, "bob", "x/y", &s);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.mails[0].flags, MAIL_FLAGGED);
	close_box(&box, &s);

	/* renaming INBOX moves its mail; INBOX is empty afterwards */
	box = open_box(fx, "bob", "INBOX", &s);
	append_msg(box, &s, "Subject: i1\r\n\r\n1\r\n", 0);
	append_msg(box, &s, "Subject: i2\r\n\r\n2\r\n", 0);
	close_box(&box, &s);
	assert_int_equal(B->rename(fx->st, "bob", "INBOX", "Old", &err, &error), 0);
	box = open_box(fx, "bob", "Old", &s);
	assert_int_equal(s.count, 2);
	close_box(&box, &s);
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 0);
	close_box(&box, &s);

	assert_int_equal(B->delete(fx->st, "bob", "x/y", &err, &error), 0);
	assert_int_equal(B->list(fx->st, "bob", &names, &err, &error), 0);
	assert_true(list_has(&names, "INBOX"));
	assert_true(list_has(&names, "Old"));
	assert_true(list_has(&names, "Sent"));
	assert_false(list_has(&names, "x/y"));
	assert_int_equal(names.count, 3);
	strlist_clear(&names);
	/* a deleted mailbox re-created starts with a new UIDVALIDITY */
	box = open_box(fx, "bob", "Old", &s);
	{
		uint32_t uv = s.uidvalidity;

		close_box(&box, &s);
		assert_int_equal(B->delete(fx->st, "bob", "Old", &err, &error), 0);
		assert_int_equal(B->create(fx->st, "bob", "Old", &err, &error), 0);
		box = open_box(fx, "bob", "Old", &s);
		assert_int_not_equal(s.uidvalidity, uv);
		assert_int_equal(s.count, 0);
		close_box(&box, &s);
	}
}

static void
test_subscriptions_round_trip(void **state)
{
	struct fx *fx = *state;
	struct strlist in = { NULL, 0, 0 }, out = { NULL, 0, 0 };
	char *error = NULL;

	assert_int_equal(B->subscriptions_read(fx->st, "bob", &out, &st_err, &error), 0);
	assert_int_equal(out.count, 0);
	strlist_add(&in, "INBOX");
	strlist_add(&in, "a/b");
	strlist_add(&in, "Sent Items");
	assert_int_equal(B->subscriptions_write(fx->st, "bob", &in, &st_err, &error), 0);
	assert_int_equal(B->subscriptions_read(fx->st, "bob", &out, &st_err, &error), 0);
	assert_int_equal(out.count, 3);
	assert_string_equal(out.items[2], "Sent Items");
	strlist_clear(&out);
	strlist_clear(&in);
	assert_int_equal(B->subscriptions_write(fx->st, "bob", &in, &st_err, &error), 0);
	assert_int_equal(B->subscriptions_read(fx->st, "bob", &out, &st_err, &error), 0);
	assert_int_equal(out.count, 0);
	assert_int_equal(B->subscriptions_read(fx->st, "../x", &out, &st_err, &error), -1);
	free(error);
}

static void
test_bad_names_and_users_refused(void **state)
{
	struct fx *fx = *state;
	static const char *const bad_users[] = { "", "../bob", ".hidden", "a/b", "x..y" };
	static const char *const bad_names[] = { "", "../x", "a//b", "/abs", "a/./b", ".imap",
		"a/.hidden", "mymailbox", "MyMailbox/sub", "a/" };
	struct strlist names = { NULL, 0, 0 };
	enum storage_error err;
	char *error = NULL;
	struct mbox_state s;
	struct storage_box *box = NULL;

	for (size_t i = 0; i < N_ELEMENTS(bad_users); i++) {
		err = STORAGE_ERR_NONE;
		assert_int_equal(B->list(fx->st, bad_users[i], &names, &err, &error), -1);
		assert_int_equal(err, STORAGE_ERR_BAD_NAME);
		free(error);
		error = NULL;
		mbox_state_init(&s);
		assert_int_equal(B->open(fx->st, bad_users[i], "INBOX", &s, &box, &err, &error), -1);
		assert_int_equal(err, STORAGE_ERR_BAD_NAME);
		free(error);
		error = NULL;
		mbox_state_deinit(&s);
	}
	for (size_t i = 0; i < N_ELEMENTS(bad_names); i++) {
		err = STORAGE_ERR_NONE;
		assert_int_equal(B->create(fx->st, "bob", bad_names[i], &err, &error), -1);
		assert_int_equal(err, STORAGE_ERR_BAD_NAME);
		free(error);
		error = NULL;
		mbox_state_init(&s);
		assert_int_equal(B->open(fx->st, "bob", bad_names[i], &s, &box, &err, &error), -1);
		assert_int_equal(err, STORAGE_ERR_BAD_NAME);
		free(error);
		error = NULL;
		mbox_state_deinit(&s);
		assert_int_equal(B->rename(fx->st, "bob", "INBOX", bad_names[i], &err, &error), -1);
		assert_int_equal(err, STORAGE_ERR_BAD_NAME);
		free(error);
		error = NULL;
	}
	assert_null(box);
	assert_int_equal(names.count, 0);
}

static void
test_read_detects_changed_bytes(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	struct buf b = BUF_INIT;
	char *error = NULL, *p;
	int fd;

	box = open_box(fx, "bob", "INBOX", &s);
	append_msg(box, &s, "Subject: one\r\n\r\nabc\r\n", 0);
	/* another program overwrites a byte in place */
	p = path_of(fx, "bob/mymailbox.mail");
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 0), 1);
	close(fd);
	free(p);
	assert_int_equal(B->read(box, &s.mails[0], &b, &st_err, &error), -1);
	assert_non_null(error);
	free(error);
	buf_free(&b);
	close_box(&box, &s);
}

/* Performance paths: appends, tail syncs and mass expunges */

static ino_t
ino_of(struct fx *fx, const char *rel)
{
	char *path = path_of(fx, rel);
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	free(path);
	return sb.st_ino;
}

/* Every field a reopen must give back the same. */
static void
assert_same_mail(const struct mail_rec *a, const struct mail_rec *b)
{
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->keywords, b->keywords);
	assert_int_equal(a->internal_date, b->internal_date);
	assert_int_equal(a->tz_minutes, b->tz_minutes);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->modseq, b->modseq);
	assert_memory_equal(a->priv, b->priv, sizeof(a->priv));
}

static void
test_many_appends_then_reopen_keep_uids_sizes_flags(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	struct mail_rec *copy;
	enum storage_error err;
	char *error = NULL;
	uint32_t uidvalidity, uidnext;
	uint64_t modseq;
	ino_t index_ino;
	int kw;

	box = open_box(fx, "bob", "INBOX", &s);
	append_msg(box, &s, "Subject: first\r\n\r\n1\r\n", 0);
	index_ino = ino_of(fx, "bob/.imap/INBOX.index");
	kw = mbox_state_keyword(&s, "$Later", true);
	assert_int_equal(kw, 0);
	for (unsigned i = 2; i <= 300; i++) {
		char *m = xasprintf("From: a@x\r\nSubject: m%u\r\n\r\n%s%u\r\n", i,
				    i % 7 == 0 ? ".dotted line " : "", i);
		uint8_t flags = (uint8_t)(i % 3 == 0 ? MAIL_SEEN : i % 5 == 0 ? MAIL_FLAGGED : 0);
		uint64_t kws = i % 11 == 0 ? 1ULL << kw : 0;
		int64_t date = i % 2 == 0 ? 1600000000 + (int64_t)i : 0;
		uint32_t uid = 0;

		if (B->append(box, &s, m, strlen(m), flags, kws, date, i % 2 == 0 ? 120 : 0, &uid,
			      &err, &error) < 0)
			fail_msg("append %u: %s", i, error);
		assert_int_equal(uid, i);
		assert_int_equal(s.count, i);
		assert_int_equal(s.mails[i - 1].uid, i);
		assert_int_equal(s.mails[i - 1].flags, flags);
		assert_int_equal(s.mails[i - 1].keywords, kws);
		assert_int_equal(s.mails[i - 1].size, strlen(m));
		if (date != 0) {
			assert_int_equal(s.mails[i - 1].internal_date, date);
			assert_int_equal(s.mails[i - 1].tz_minutes, 120);
		}
		assert_true(s.mails[i - 1].modseq > s.mails[i - 2].modseq);
		free(m);
	}
	/* the index was written in place, never rewritten by rename */
	assert_true(ino_of(fx, "bob/.imap/INBOX.index") == index_ino);
	/* nothing changed since: sync is a no-op */
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.count, 300);
	copy = xmalloc(s.count * sizeof(*copy));
	memcpy(copy, s.mails, s.count * sizeof(*copy));
	uidvalidity = s.uidvalidity;
	uidnext = s.uidnext;
	modseq = s.highest_modseq;
	close_box(&box, &s);

	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_int_equal(s.uidnext, uidnext);
	assert_int_equal(s.uidnext, 301);
	assert_int_equal(s.highest_modseq, modseq);
	assert_int_equal(s.count, 300);
	assert_int_equal(s.keyword_count, 1);
	assert_string_equal(s.keywords[0], "$Later");
	for (size_t i = 0; i < 300; i++) {
		char *text = msg_text(box, &s.mails[i]);

		assert_same_mail(&s.mails[i], &copy[i]);
		if (i > 0)
			assert_non_null(strstr(text, "Subject: m"));
		free(text);
	}
	close_box(&box, &s);

	/* The records made without reading the file back are the ones a
	   scan makes: after a rewrite of the file (same bytes, another
	   mtime) every message is matched again and keeps all its fields. */
	{
		char *file = read_file(fx, "bob/mymailbox.mail");

		write_file(fx, "bob/mymailbox.mail", file, "w");
		set_mtime_past(fx, "bob/mymailbox.mail", 30);
		free(file);
	}
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_int_equal(s.count, 300);
	for (size_t i = 0; i < 300; i++) {
		assert_int_equal(s.mails[i].uid, copy[i].uid);
		assert_int_equal(s.mails[i].flags, copy[i].flags);
		assert_int_equal(s.mails[i].size, copy[i].size);
		assert_memory_equal(s.mails[i].priv, copy[i].priv, sizeof(copy[i].priv));
	}
	close_box(&box, &s);
	free(copy);
}

/* Messages appended by our fast path are served and sized the same as
   if the file had been scanned from scratch (index deleted). */
static void
test_fast_append_records_equal_scanned_ones(void **state)
{
	struct fx *fx = *state;
	static const char *const msgs[] = {
		"From: a@x\r\nDate: Thu, 10 Mar 2022 12:00:00 +0100\r\n\r\nbody\r\n",
		"From: lab\nSubject: s\nReceived: 2022-03-10 : 14 : 30\nno blank line\n",
		".\r\n..\r\n.x\r\n",
		"",
		"\r\n\r\n",
		"Subject: no final newline",
		"Subject: crlf\r\nDate: Fri, 11 Mar 2022 08:00:00 -0500\r\n\r\n.\r\nend\r\n",
	};
	struct mbox_state s;
	struct storage_box *box;
	uint64_t sizes[N_ELEMENTS(msgs)];
	int64_t dates[N_ELEMENTS(msgs)];
	char *texts[N_ELEMENTS(msgs)], *path;

	box = open_box(fx, "bob", "INBOX", &s);
	for (size_t i = 0; i < N_ELEMENTS(msgs); i++) {
		append_msg(box, &s, msgs[i], 0);
		sizes[i] = s.mails[i].size;
		dates[i] = s.mails[i].internal_date;
		texts[i] = msg_text(box, &s.mails[i]);
	}
	close_box(&box, &s);
	path = path_of(fx, "bob/.imap/INBOX.index");
	assert_int_equal(unlink(path), 0);
	free(path);
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, N_ELEMENTS(msgs));
	for (size_t i = 0; i < N_ELEMENTS(msgs); i++) {
		char *text = msg_text(box, &s.mails[i]);

		assert_int_equal(s.mails[i].size, sizes[i]);
		assert_string_equal(text, texts[i]);
		/* dates from headers are the same; messages without one get
		   the time they were seen */
		if (i == 0 || i == 1 || i == 6)
			assert_int_equal(s.mails[i].internal_date, dates[i]);
		free(text);
		free(texts[i]);
	}
	close_box(&box, &s);
}

static void
test_external_append_between_our_appends(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	uint32_t uidvalidity;
	char *m;

	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(append_msg(box, &s, "Subject: ours 1\r\n\r\na\r\n", MAIL_SEEN), 1);
	uidvalidity = s.uidvalidity;
	/* the lab's SMTP server (or "cat >>") adds one, no sync in between */
	write_file(fx, "bob/mymailbox.mail", "From: smtp\nSubject: theirs\n\nb\n.\n", "a");
	assert_int_equal(append_msg(box, &s, "Subject: ours 2\r\n\r\nc\r\n", MAIL_FLAGGED), 3);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.mails[1].uid, 2);
	assert_int_equal(s.mails[1].flags, 0);
	m = msg_text(box, &s.mails[1]);
	assert_string_equal(m, "From: smtp\r\nSubject: theirs\r\n\r\nb\r\n");
	free(m);
	/* two at once, then ours again */
	write_file(fx, "bob/mymailbox.mail",
		   "Subject: theirs 2\n\nd\n.\nSubject: theirs 3\n\ne\n.\n", "a");
	assert_int_equal(append_msg(box, &s, "Subject: ours 3\r\n\r\nf\r\n", 0), 6);
	/* and one picked up by a sync */
	write_file(fx, "bob/mymailbox.mail", "Subject: theirs 4\n\ng\n.\n", "a");
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.count, 7);
	assert_int_equal(s.mails[6].uid, 7);
	close_box(&box, &s);

	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_int_equal(s.count, 7);
	for (unsigned i = 0; i < 7; i++)
		assert_int_equal(s.mails[i].uid, i + 1);
	assert_int_equal(s.mails[0].flags, MAIL_SEEN);
	assert_int_equal(s.mails[2].flags, MAIL_FLAGGED);
	m = msg_text(box, &s.mails[3]);
	assert_string_equal(m, "Subject: theirs 2\r\n\r\nd\r\n");
	free(m);
	m = msg_text(box, &s.mails[5]);
	assert_string_equal(m, "Subject: ours 3\r\n\r\nf\r\n");
	free(m);
	m = read_file(fx, "bob/mymailbox.mail");
	assert_string_equal(m, "Subject: ours 1\n\na\n.\nFrom: smtp\nSubject: theirs\n\nb\n.\n"
			    "Subject: ours 2\n\nc\n.\nSubject: theirs 2\n\nd\n.\n"
			    "Subject: theirs 3\n\ne\n.\nSubject: ours 3\n\nf\n.\n"
			    "Subject: theirs 4\n\ng\n.\n");
	free(m);
	close_box(&box, &s);
}

/* Another process (here: a second box, with its own state, fds and
   remembered stamps) writes the index between two of our appends: in
   place (an append, a flag change), then by rename (an expunge; a copy
   put in place). Each time our next append must read the index again,
   not write into what it remembers. */
static void
test_index_replaced_by_other_process_between_our_appends(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s, o;
	struct storage_box *box, *other;
	uint32_t uidvalidity, gone = 2;
	char *error = NULL, *m, *p, *tmp, *content;
	ino_t ino;

	box = open_box(fx, "bob", "INBOX", &s);
	append_msg(box, &s, "Subject: 1\r\n\r\n1\r\n", 0);
	append_msg(box, &s, "Subject: 2\r\n\r\n2\r\n", 0);
	uidvalidity = s.uidvalidity;

	/* in place: the other appends and flags message 1 */
	other = open_box(fx, "bob", "INBOX", &o);
	assert_int_equal(append_msg(other, &o, "Subject: 3\r\n\r\n3\r\n", MAIL_DRAFT), 3);
	assert_true(mbox_state_set_flags(&o, 0, MAIL_ANSWERED, 0));
	assert_int_equal(B->flags_changed(other, &o, 0, &st_err, &error), 0);
	assert_int_equal(append_msg(box, &s, "Subject: 4\r\n\r\n4\r\n", MAIL_SEEN), 4);
	assert_int_equal(s.count, 4);
	assert_int_equal(s.mails[0].flags, MAIL_ANSWERED);
	assert_int_equal(s.mails[2].uid, 3);
	assert_int_equal(s.mails[2].flags, MAIL_DRAFT);

	/* by rename: the other expunges message 2 (new mail file, new index) */
	assert_int_equal(do_sync(other, &o), 0);
	assert_int_equal(o.count, 4);
	expunge_uids(other, &o, &gone, 1);
	assert_int_equal(append_msg(box, &s, "Subject: 5\r\n\r\n5\r\n", 0), 5);
	assert_int_equal(s.count, 4);
	assert_true(mbox_state_find(&s, 2) < 0);

	/* by rename again: a copy of the index, changed by the other (a
	   flag) and put in place under a new inode, the mail file untouched */
	assert_int_equal(do_sync(other, &o), 0);
	assert_true(mbox_state_set_flags(&o, 1, MAIL_FLAGGED, 0));
	assert_int_equal(B->flags_changed(other, &o, 1, &st_err, &error), 0);
	p = path_of(fx, "bob/.imap/INBOX.index");
	tmp = path_of(fx, "bob/.imap/INBOX.index.copy");
	ino = ino_of(fx, "bob/.imap/INBOX.index");
	content = read_file(fx, "bob/.imap/INBOX.index");
	{
		struct stat sb;
		FILE *f = fopen(tmp, "w");

		assert_int_equal(stat(p, &sb), 0);
		assert_non_null(f);
		assert_int_equal(fwrite(content, 1, (size_t)sb.st_size, f), (size_t)sb.st_size);
		assert_int_equal(fclose(f), 0);
	}
	assert_int_equal(rename(tmp, p), 0);
	assert_true(ino_of(fx, "bob/.imap/INBOX.index") != ino);
	free(content);
	assert_int_equal(append_msg(box, &s, "Subject: 6\r\n\r\n6\r\n", MAIL_DELETED), 6);
	assert_int_equal(s.count, 5);
	assert_int_equal(s.mails[1].uid, 3);
	assert_int_equal(s.mails[1].flags, MAIL_FLAGGED);
	close_box(&other, &o);
	close_box(&box, &s);

	/* what a third process sees */
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_int_equal(s.count, 5);
	{
		static const uint32_t uids[] = { 1, 3, 4, 5, 6 };
		static const uint8_t flags[] = { MAIL_ANSWERED, MAIL_FLAGGED, MAIL_SEEN, 0,
			MAIL_DELETED };

		for (unsigned i = 0; i < 5; i++) {
			char want[32];

			assert_int_equal(s.mails[i].uid, uids[i]);
			assert_int_equal(s.mails[i].flags, flags[i]);
			m = msg_text(box, &s.mails[i]);
			snprintf(want, sizeof(want), "Subject: %u\r\n\r\n%u\r\n", uids[i], uids[i]);
			assert_string_equal(m, want);
			free(m);
		}
	}
	assert_int_equal(s.uidnext, 7);
	close_box(&box, &s);
	free(p);
	free(tmp);
}

/* Another program rewrote the file under the same inode and made it
   longer: the part the index knows changed, so the tail alone must not be
   trusted (the last known message is checked by its hash). */
static void
test_file_rewritten_in_place_and_grown_is_rescanned(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	ino_t ino;
	char *m;

	box = open_box(fx, "bob", "INBOX", &s);
	append_msg(box, &s, "Subject: 1\r\n\r\none\r\n", MAIL_SEEN);
	append_msg(box, &s, "Subject: 2\r\n\r\ntwo\r\n", 0);
	ino = ino_of(fx, "bob/mymailbox.mail");
	write_file(fx, "bob/mymailbox.mail",
		   "Subject: 1\n\none\n.\nSubject: 2\n\nTWO, edited\n.\nSubject: 3\n\nthree\n.\n", "w");
	assert_true(ino_of(fx, "bob/mymailbox.mail") == ino);
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.mails[0].uid, 1);
	assert_int_equal(s.mails[0].flags, MAIL_SEEN);
	/* the edited message is another message: a new UID */
	assert_true(s.mails[1].uid > 2);
	assert_true(s.mails[2].uid > s.mails[1].uid);
	m = msg_text(box, &s.mails[1]);
	assert_string_equal(m, "Subject: 2\r\n\r\nTWO, edited\r\n");
	free(m);
	m = msg_text(box, &s.mails[2]);
	assert_string_equal(m, "Subject: 3\r\n\r\nthree\r\n");
	free(m);

	/* the same size, a message in the middle edited: same answer */
	write_file(fx, "bob/mymailbox.mail",
		   "Subject: 1\n\none\n.\nSubject: 2\n\nTWO, EDITED\n.\nSubject: 3\n\nthree\n.\n", "w");
	set_mtime_past(fx, "bob/mymailbox.mail", 20);
	assert_true(do_sync(box, &s) >= 0);
	assert_int_equal(s.count, 3);
	m = msg_text(box, &s.mails[1]);
	assert_string_equal(m, "Subject: 2\r\n\r\nTWO, EDITED\r\n");
	free(m);
	for (size_t i = 0; i < 3; i++)
		free(msg_text(box, &s.mails[i]));
	close_box(&box, &s);
}

/* A power loss can leave the index as it was before an append (its
   in-place writes are not fsynced; the mail file's are): the message
   comes back, with the UID it was given. */
static void
test_stale_index_after_append_keeps_uid(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	uint32_t uidvalidity;
	char *p, *old, *m;
	struct stat sb;
	FILE *f;

	box = open_box(fx, "bob", "INBOX", &s);
	append_msg(box, &s, "Subject: 1\r\n\r\n1\r\n", MAIL_SEEN);
	append_msg(box, &s, "Subject: 2\r\n\r\n2\r\n", 0);
	uidvalidity = s.uidvalidity;
	p = path_of(fx, "bob/.imap/INBOX.index");
	assert_int_equal(stat(p, &sb), 0);
	old = read_file(fx, "bob/.imap/INBOX.index");
	assert_int_equal(append_msg(box, &s, "Subject: 3\r\n\r\n3\r\n", MAIL_FLAGGED), 3);
	close_box(&box, &s);
	/* the old bytes back in place, the record of message 3 cut off */
	f = fopen(p, "r+");
	assert_non_null(f);
	assert_int_equal(fwrite(old, 1, (size_t)sb.st_size, f), (size_t)sb.st_size);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(truncate(p, sb.st_size), 0);
	free(old);

	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.mails[0].flags, MAIL_SEEN);
	assert_int_equal(s.mails[2].uid, 3);
	m = msg_text(box, &s.mails[2]);
	assert_string_equal(m, "Subject: 3\r\n\r\n3\r\n");
	free(m);
	assert_int_equal(append_msg(box, &s, "Subject: 4\r\n\r\n4\r\n", 0), 4);
	close_box(&box, &s);
	free(p);
}

/* A process killed at any instant of a run of appends: every append that
   returned is there with its UID; no message twice. */
static void
test_crash_during_appends_loses_no_acknowledged_message(void **state)
{
	struct fx *fx = *state;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

	for (unsigned iter = 0; iter < 10; iter++) {
		struct mbox_state s;
		struct storage_box *box;
		struct strlist got;
		uint32_t acked[200];
		size_t nacked = 0;
		char user[32];
		int fds[2], status;
		pid_t pid;

		snprintf(user, sizeof(user), "acrash%u", iter);
		box = open_box(fx, user, "INBOX", &s);
		append_msg(box, &s, "Subject: seed\r\n\r\n0\r\n", 0);
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
			if (B->open(fx->st, user, "INBOX", &cs, &cbox, &err, &error) < 0)
				_exit(2);
			for (unsigned i = 1; i < 200; i++) {
				char *cm = simple_msg(i);
				uint32_t uid;

				if (B->append(cbox, &cs, cm, strlen(cm), MAIL_SEEN, 0, 0, 0, &uid, &err,
					      &error) < 0)
					_exit(3);
				if (write(fds[1], &uid, sizeof(uid)) != sizeof(uid))
					_exit(4);
				free(cm);
			}
			_exit(0);
		}
		close(fds[1]);
		usleep((useconds_t)(rand_r(&seed) % 8000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		while (nacked < N_ELEMENTS(acked) &&
		       read(fds[0], &acked[nacked], sizeof(acked[0])) == sizeof(acked[0]))
			nacked++;
		close(fds[0]);

		box = open_box(fx, user, "INBOX", &s);
		got = texts_of(box, &s);
		assert_no_duplicates(&got);
		/* the acknowledged ones, and at most the one in flight */
		assert_true(s.count >= 1 + nacked && s.count <= 2 + nacked);
		for (size_t i = 0; i < nacked; i++) {
			char *m = simple_msg((unsigned)i + 1);

			assert_int_equal(acked[i], i + 2);
			assert_int_equal(s.mails[i + 1].uid, acked[i]);
			assert_string_equal(got.items[i + 1], m);
			free(m);
		}
		for (size_t i = 1; i < s.count; i++)
			assert_int_equal(s.mails[i].uid, s.mails[i - 1].uid + 1);
		strlist_clear(&got);
		/* and it goes on */
		{
			uint32_t next = s.uidnext;

			assert_int_equal(next, s.mails[s.count - 1].uid + 1);
			assert_int_equal(append_msg(box, &s, "Subject: after\r\n\r\nx\r\n", 0), next);
		}
		close_box(&box, &s);
	}
}

static void
test_mass_expunge_half_of_2000(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s;
	struct storage_box *box;
	struct buf file = BUF_INIT;
	uint32_t *uids;
	uint64_t gen;
	uint32_t uidvalidity;
	size_t n = 0;
	char *error = NULL;

	for (unsigned i = 1; i <= 2000; i++)
		buf_printf(&file, "From: a@x\nSubject: m%u\n\nbody %u\n.\n", i, i);
	write_file(fx, "bob/mymailbox.mail", file.data, "w");
	buf_free(&file);
	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.count, 2000);
	uidvalidity = s.uidvalidity;
	/* flags on some that stay and some that go */
	for (size_t i = 0; i < 2000; i += 3) {
		assert_true(mbox_state_set_flags(&s, i, MAIL_SEEN, 0));
		assert_int_equal(B->flags_changed(box, &s, i, &st_err, &error), 0);
	}
	uids = xmalloc(1000 * sizeof(*uids));
	for (uint32_t u = 2; u <= 2000; u += 2)
		uids[n++] = u;
	assert_int_equal(n, 1000);
	gen = s.expunge_gen;
	expunge_uids(box, &s, uids, n);
	assert_int_equal(s.expunge_gen, gen + 1);
	assert_int_equal(s.count, 1000);
	for (size_t i = 0; i < 1000; i++) {
		char *text = msg_text(box, &s.mails[i]), *want;

		assert_int_equal(s.mails[i].uid, 2 * i + 1);
		assert_int_equal(s.mails[i].flags, (2 * i) % 3 == 0 ? MAIL_SEEN : 0);
		want = simple_msg((unsigned)(2 * i + 1));
		/* stored in the lab's LF form, served as CRLF */
		assert_string_equal(text, want);
		free(want);
		free(text);
	}
	/* expunging them again removes nothing */
	gen = s.expunge_gen;
	expunge_uids(box, &s, uids, n);
	assert_int_equal(s.expunge_gen, gen);
	assert_int_equal(s.count, 1000);
	close_box(&box, &s);

	box = open_box(fx, "bob", "INBOX", &s);
	assert_int_equal(s.uidvalidity, uidvalidity);
	assert_int_equal(s.count, 1000);
	assert_int_equal(s.uidnext, 2001);
	for (size_t i = 0; i < 1000; i++) {
		assert_int_equal(s.mails[i].uid, 2 * i + 1);
		assert_int_equal(s.mails[i].flags, (2 * i) % 3 == 0 ? MAIL_SEEN : 0);
	}
	assert_int_equal(append_msg(box, &s, "Subject: after\r\n\r\nx\r\n", 0), 2001);
	close_box(&box, &s);
	free(uids);
}

/* Another process expunges half of a big mailbox: our sync takes the
   removals in (one pass over state, not one memmove each). */
static void
test_mass_expunge_by_other_process_seen_by_sync(void **state)
{
	struct fx *fx = *state;
	struct mbox_state s, o;
	struct storage_box *box, *other;
	uint32_t *uids;
	uint64_t gen;
	size_t n = 0;

	box = open_box(fx, "bob", "INBOX", &s);
	{
		struct buf file = BUF_INIT;

		for (unsigned i = 1; i <= 2000; i++)
			buf_printf(&file, "From: a@x\nSubject: m%u\n\nbody %u\n.\n", i, i);
		write_file(fx, "bob/mymailbox.mail", file.data, "w");
		buf_free(&file);
	}
	assert_int_equal(do_sync(box, &s), 0);
	assert_int_equal(s.count, 2000);
	other = open_box(fx, "bob", "INBOX", &o);
	uids = xmalloc(1000 * sizeof(*uids));
	for (uint32_t u = 1; u <= 2000; u += 2)
		uids[n++] = u;
	expunge_uids(other, &o, uids, n);
	close_box(&other, &o);
	gen = s.expunge_gen;
	assert_int_equal(do_sync(box, &s), 0);
	assert_true(s.expunge_gen > gen);
	assert_int_equal(s.count, 1000);
	for (size_t i = 0; i < 1000; i++)
		assert_int_equal(s.mails[i].uid, 2 * i + 2);
	close_box(&box, &s);
	free(uids);
}

static void
fill_state(struct mbox_state *s, size_t n)
{
	mbox_state_init(s);
	for (uint32_t u = 1; u <= n; u++) {
		struct mail_rec r;

		i_zero(&r);
		r.uid = u * 2;          /* even UIDs: odd ones are absent */
		r.size = u;
		(void)mbox_state_append(s, &r);
	}
}

static void
test_mbox_state_remove_uids_one_pass(void **state)
{
	static const uint32_t asc[] = { 1, 2, 2, 3, 8, 9, 20, 21, 9999 };
	static const uint32_t unsorted[] = { 20, 4, 2, 18 };
	static const uint32_t absent[] = { 1, 3, 5, 41 };
	struct mbox_state s;
	uint64_t gen;
	uint32_t *all;

	(void)state;
	fill_state(&s, 10);             /* UIDs 2, 4, ..., 20 */
	gen = s.expunge_gen;
	mbox_state_remove_uids(&s, asc, N_ELEMENTS(asc));
	assert_int_equal(s.expunge_gen, gen + 1);
	assert_int_equal(s.count, 7);
	{
		static const uint32_t left[] = { 4, 6, 10, 12, 14, 16, 18 };

		for (size_t i = 0; i < N_ELEMENTS(left); i++) {
			assert_int_equal(s.mails[i].uid, left[i]);
			assert_int_equal(s.mails[i].size, left[i] / 2);
		}
	}
	/* nothing to remove: no change, no bump */
	gen = s.expunge_gen;
	mbox_state_remove_uids(&s, absent, N_ELEMENTS(absent));
	mbox_state_remove_uids(&s, NULL, 0);
	assert_int_equal(s.expunge_gen, gen);
	assert_int_equal(s.count, 7);
	/* a list out of order still removes the right ones */
	mbox_state_remove_uids(&s, unsorted, N_ELEMENTS(unsorted));
	assert_int_equal(s.count, 5);
	assert_int_equal(s.mails[0].uid, 6);
	assert_int_equal(s.mails[4].uid, 16);
	assert_int_equal(s.expunge_gen, gen + 1);
	mbox_state_deinit(&s);

	/* everything, from a big state */
	fill_state(&s, 100000);
	all = xmalloc(100000 * sizeof(*all));
	for (uint32_t i = 0; i < 100000; i++)
		all[i] = (i + 1) * 2;
	mbox_state_remove_uids(&s, all + 1, 99999);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.mails[0].uid, 2);
	mbox_state_remove_uids(&s, all, 1);
	assert_int_equal(s.count, 0);
	mbox_state_remove_uids(&s, all, 100000);
	assert_int_equal(s.count, 0);
	free(all);
	mbox_state_deinit(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lab_file_served_with_blank_line_and_exact_size,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gmt_date_header_is_internal_date, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_crlf_on_disk_served_as_crlf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_read_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uids_and_flags_stable_across_reopen, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expunge_keeps_rest_and_never_reuses_uids, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_index_deleted_keeps_mail_new_uidvalidity, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_file_rewritten_by_hand_loses_no_mail, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_truncated_tail_served_when_old, setup, teardown),
		cmocka_unit_test_setup_teardown(test_young_tail_terminated_by_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_lock_tmp_files_removed_when_lock_taken,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_message_of_killed_writer_not_glued_by_append,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_does_not_wait_for_another_writers_lock,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_emptied_by_another_program, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unlocked_append_picked_up_by_sync, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_locked_append_by_other_process_during_expunge,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_during_expunge_loses_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_create_delete_rename_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscriptions_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names_and_users_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_detects_changed_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_appends_then_reopen_keep_uids_sizes_flags,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_fast_append_records_equal_scanned_ones, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_external_append_between_our_appends, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_index_replaced_by_other_process_between_our_appends,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_rewritten_in_place_and_grown_is_rescanned,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_index_after_append_keeps_uid, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_crash_during_appends_loses_no_acknowledged_message,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_mass_expunge_half_of_2000, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mass_expunge_by_other_process_seen_by_sync, setup,
						teardown),
		cmocka_unit_test(test_mbox_state_remove_uids_one_pass),
	};
	int failed = cmocka_run_group_tests_name("flat, index read", tests, NULL, NULL);

	/* again with every index mapped at open, as a large mailbox's is */
	storage_map_min_count = 1;
	failed += cmocka_run_group_tests_name("flat, index mapped", tests, NULL, NULL);
	return failed;
}
