/* flat_ops.c: timings of a storage backend's operations on one big
   mailbox, straight through the backend API (no IMAP, no network).

     build/bench/flat_ops [-b flat|maildir] [-n MESSAGES] [-a APPENDS] [-d DIR]

   For the flat backend (the default) writes a lab-format mymailbox.mail
   of MESSAGES small messages (fixed seed, default 100,000); for -b maildir
   the same messages as files in Maildir/cur/ (as another Maildir tool
   leaves them: no uidlist yet). Both in a mkdtemp() folder under DIR
   (default: $TMPDIR or /tmp; the disk matters, since appends and
   expunges fsync). Then measures:

     first open        the index (uidlist) is built from the mail
     open (restart)    a new backend instance opens the mailbox (index read)
     first read        one message read right after that open (for Maildir
                       the first access loads the file names)
     sync, no change   sync() when nothing changed
     append            one APPEND (median, p90 and max of APPENDS)
     store 1000        +FLAGS on 1,000 messages (mbox_state_set_flags() and
                       flags_changed() each), then the sync() that the
                       core's next command does: what STORE 1:1000 costs
     sync, ext append  sync() after another program delivered one message
     expunge 1         one message from the middle
     expunge 1000      every n-th message, 1,000 in all
     (disk)            a 100-byte write + fsync on the same disk, for scale

   and checks the result after each step (counts, UIDs, a reopen), so a
   fast but wrong backend does not pass. Prints a table on stdout; exits 1
   if a check fails. The folder is removed at the end. */
#include "storage.h"
#include "buf.h"
#include "backends/flat/flat.h"
#include "backends/maildir/maildir.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The kind of the last storage failure (the calls below want one). */
static enum storage_error st_err;

static const struct storage_backend *B = &storage_backend_flat;
static bool maildir;

#define MAX_SAMPLES 10000

struct timing {
	const char *what;
	double samples[MAX_SAMPLES];
	size_t count;
};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void
timing_add(struct timing *t, double ms)
{
	if (t->count < MAX_SAMPLES)
		t->samples[t->count++] = ms;
}

static int
double_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* The q-quantile (0..1) of t's samples, nearest rank. */
static double
timing_q(struct timing *t, double q)
{
	size_t i;

	if (t->count == 0)
		return 0;
	qsort(t->samples, t->count, sizeof(double), double_cmp);
	i = (size_t)(q * (double)(t->count - 1) + 0.5);
	return t->samples[i < t->count ? i : t->count - 1];
}

static void ATTR_FORMAT(1, 2) ATTR_NORETURN
die(const char *fmt, ...)
{
	va_list args;

	fprintf(stderr, "flat_ops: ");
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
	exit(1);
}

static void
check(bool ok, const char *what)
{
	if (!ok)
		die("check failed: %s", what);
}

/* xorshift: the same file for the same seed on every machine. */
static uint32_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 11);
}

static const char *const words[] = {
	"meeting", "report", "lab", "network", "socket", "server", "client", "mail",
	"box", "protocol", "exam", "deadline", "project", "review", "draft", "budget",
	"coffee", "lunch", "schedule", "update", "notes", "question", "answer", "thanks",
};
static const char *const names[] = { "alice", "bob", "carol", "dave", "erin", "frank" };

/* One message in the lab's stored form (as the lab's SMTP server writes
   it: header lines, Received last, no blank line, body, "."). */
static void
gen_message(struct buf *b, uint64_t *seed, unsigned n)
{
	unsigned lines = 1 + rnd(seed) % 2;

	buf_printf(b, "From: %s@localhost\nTo: %s@localhost\nSubject: %s %s #%u\n"
		   "Received: 2022-03-%02u : %02u : %02u\n",
		   names[rnd(seed) % N_ELEMENTS(names)], names[rnd(seed) % N_ELEMENTS(names)],
		   words[rnd(seed) % N_ELEMENTS(words)], words[rnd(seed) % N_ELEMENTS(words)], n,
		   1 + n % 28, rnd(seed) % 24, rnd(seed) % 60);
	for (unsigned i = 0; i < lines; i++) {
		unsigned nw = 3 + rnd(seed) % 6;

		if (rnd(seed) % 50 == 0)
			buf_append(b, "..", 2);
		for (unsigned w = 0; w < nw; w++) {
			buf_append_str(b, words[rnd(seed) % N_ELEMENTS(words)]);
			buf_append_c(b, w + 1 < nw ? ' ' : '\n');
		}
	}
	buf_append(b, ".\n", 2);
}

static void
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

static void
gen_mailbox(const char *path, unsigned count)
{
	struct buf b = BUF_INIT;
	uint64_t seed = 20220310;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		die("create %s: %s", path, strerror(errno));
	for (unsigned i = 1; i <= count; i++) {
		gen_message(&b, &seed, i);
		if (b.len >= 1024 * 1024 || i == count) {
			write_all(fd, b.data, b.len);
			buf_reset(&b);
		}
	}
	if (fsync(fd) < 0 || close(fd) < 0)
		die("fsync %s: %s", path, strerror(errno));
	buf_free(&b);
}

/* The same messages as Maildir files in cur/, named as a delivery agent
   names them, dated in the past (not "young"). */
static void
gen_maildir(const char *dir, unsigned count)
{
	struct buf b = BUF_INIT;
	uint64_t seed = 20220310;
	struct timespec times[2] = { { 1646870400, 0 }, { 1646870400, 0 } };

	for (unsigned i = 1; i <= count; i++) {
		char *path = xasprintf("%s/cur/1646870400.M%06uP1Q%u.benchhost:2,", dir, i % 1000000,
				       i);
		int fd;

		buf_reset(&b);
		gen_message(&b, &seed, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			die("create %s: %s", path, strerror(errno));
		write_all(fd, b.data, b.len);
		if (futimens(fd, times) < 0 || close(fd) < 0)
			die("write %s: %s", path, strerror(errno));
		free(path);
	}
	buf_free(&b);
}

/* What another program's delivery does: one more message. */
static void
external_add(const char *mail_path, unsigned i)
{
	char *msg = xasprintf("From: other@localhost\nSubject: external %u\n\nhi\n.\n", i);
	int fd;

	if (!maildir) {
		fd = open(mail_path, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (fd < 0)
			die("open %s: %s", mail_path, strerror(errno));
		write_all(fd, msg, strlen(msg));
		close(fd);
	} else {
		char *tmp = xasprintf("%s/tmp/1700000000.M%uP2Q1.otherhost", mail_path, i);
		char *dst = xasprintf("%s/new/1700000000.M%uP2Q1.otherhost", mail_path, i);
		struct timespec times[2] = { { 1700000000, 0 }, { 1700000000, 0 } };

		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			die("create %s: %s", tmp, strerror(errno));
		write_all(fd, msg, strlen(msg));
		if (futimens(fd, times) < 0 || close(fd) < 0 || rename(tmp, dst) < 0)
			die("deliver %s: %s", dst, strerror(errno));
		free(tmp);
		free(dst);
	}
	free(msg);
}

static int
rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

struct ctx {
	char *root;
	struct storage *st;
	struct storage_box *box;
	struct mbox_state state;
};

static void
ctx_open(struct ctx *c)
{
	struct storage_settings set = { .root = c->root };
	enum storage_error err;
	char *error = NULL;

	if (B->init(&set, &c->st, &error) < 0)
		die("init: %s", error);
	mbox_state_init(&c->state);
	if (B->open(c->st, "bench", "INBOX", &c->state, &c->box, &err, &error) < 0)
		die("open: %s", error);
}

static void
ctx_close(struct ctx *c)
{
	B->close(&c->box);
	mbox_state_deinit(&c->state);
	B->deinit(&c->st);
}

static void
do_sync(struct ctx *c)
{
	char *error = NULL;

	if (B->sync(c->box, &c->state, &st_err, &error) < 0)
		die("sync: %s", error);
}

static void
do_expunge(struct ctx *c, const uint32_t *uids, size_t n)
{
	char *error = NULL;

	if (B->expunge(c->box, &c->state, uids, n, &st_err, &error) < 0)
		die("expunge: %s", error);
}

static void
usage(void)
{
	fprintf(stderr, "usage: flat_ops [-b flat|maildir] [-n messages] [-a appends] [-d dir]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static struct timing t_first = { "first open (index built)", { 0 }, 0 };
	static struct timing t_open = { "open after restart", { 0 }, 0 };
	static struct timing t_read1 = { "first read after restart", { 0 }, 0 };
	static struct timing t_sync = { "sync, nothing changed", { 0 }, 0 };
	static struct timing t_append = { "append", { 0 }, 0 };
	static struct timing t_store = { "store 1000 (+ next sync)", { 0 }, 0 };
	static struct timing t_ext = { "sync after external append", { 0 }, 0 };
	static struct timing t_exp1 = { "expunge 1", { 0 }, 0 };
	static struct timing t_exp1000 = { "expunge 1000", { 0 }, 0 };
	static struct timing t_fsync = { "(disk: 100 B write + fsync)", { 0 }, 0 };
	struct timing *all[] = { &t_first, &t_open, &t_read1, &t_sync, &t_append, &t_store, &t_ext, &t_exp1,
		&t_exp1000, &t_fsync };
	uint64_t messages = 100000, appends = 50;
	const char *dir = getenv("TMPDIR");
	char *mail_path;
	struct ctx c;
	struct stat sb;
	size_t expect;
	uint32_t *uids;
	int opt;

	while ((opt = getopt(argc, argv, "b:n:a:d:")) != -1) {
		switch (opt) {
		case 'b':
			if (strcmp(optarg, "maildir") == 0) {
				B = &storage_backend_maildir;
				maildir = true;
			} else if (strcmp(optarg, "flat") != 0) {
				usage();
			}
			break;
		case 'n':
			if (str_to_u64(optarg, 10000000, &messages) < 0 || messages < 2000)
				usage();
			break;
		case 'a':
			if (str_to_u64(optarg, 1000, &appends) < 0 || appends == 0)
				usage();
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			usage();
		}
	}
	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	i_zero(&c);
	c.root = xasprintf("%s/flat_ops.XXXXXX", dir);
	if (mkdtemp(c.root) == NULL)
		die("mkdtemp in %s: %s", dir, strerror(errno));
	mail_path = xasprintf(maildir ? "%s/bench/Maildir" : "%s/bench/mymailbox.mail", c.root);
	{
		char *udir = xasprintf("%s/bench", c.root);

		if (mkdir(udir, 0700) < 0)
			die("mkdir %s: %s", udir, strerror(errno));
		free(udir);
	}
	fprintf(stderr, "flat_ops: %s, %llu messages in %s\n", B->name,
		(unsigned long long)messages, c.root);
	if (maildir) {
		static const char *const sub[] = { "", "/cur", "/new", "/tmp" };

		for (size_t i = 0; i < N_ELEMENTS(sub); i++) {
			char *d = xasprintf("%s%s", mail_path, sub[i]);

			if (mkdir(d, 0700) < 0)
				die("mkdir %s: %s", d, strerror(errno));
			free(d);
		}
		gen_maildir(mail_path, (unsigned)messages);
		/* folders as a mailbox not changed in the last seconds has
		   them: a stamp younger than that is not trusted */
		for (size_t i = 1; i < 3; i++) {
			char *d = xasprintf("%s%s", mail_path, sub[i]);
			struct timespec past[2] = { { time(NULL) - 60, 0 }, { time(NULL) - 60, 0 } };

			if (utimensat(AT_FDCWD, d, past, 0) < 0)
				die("utimensat %s: %s", d, strerror(errno));
			free(d);
		}
		sb.st_size = 0;
	} else {
		gen_mailbox(mail_path, (unsigned)messages);
		if (stat(mail_path, &sb) < 0)
			die("stat %s: %s", mail_path, strerror(errno));
	}

	{
		double t0 = now_ms();

		ctx_open(&c);
		timing_add(&t_first, now_ms() - t0);
	}
	check(c.state.count == messages, "first open: message count");
	ctx_close(&c);
	for (unsigned i = 0; i < 5; i++) {
		double t0 = now_ms();

		ctx_open(&c);
		timing_add(&t_open, now_ms() - t0);
		check(c.state.count == messages, "reopen: message count");
		/* what the first FETCH of one message costs after it */
		{
			struct buf one = BUF_INIT;
			char *error = NULL;

			t0 = now_ms();
			if (B->read(c.box, &c.state.mails[c.state.count / 2], &one, &st_err,
				    &error) < 0)
				die("read: %s", error);
			timing_add(&t_read1, now_ms() - t0);
			check(one.len == c.state.mails[c.state.count / 2].size, "read after reopen");
			buf_free(&one);
		}
		if (i < 4)
			ctx_close(&c);
	}
	for (unsigned i = 0; i < 1000; i++) {
		double t0 = now_ms();

		do_sync(&c);
		timing_add(&t_sync, now_ms() - t0);
	}
	check(c.state.count == messages, "sync: message count");

	expect = messages;
	for (unsigned i = 0; i < appends; i++) {
		char *msg = xasprintf("From: bench@localhost\r\nTo: bench@localhost\r\n"
				      "Subject: appended %u\r\n\r\nline one\r\n.dot line\r\n"
				      "line three\r\n", i);
		enum storage_error err;
		char *error = NULL;
		uint32_t uid = 0, want = c.state.uidnext;
		double t0 = now_ms();

		if (B->append(c.box, &c.state, msg, strlen(msg), MAIL_SEEN, 0, 0, 0, &uid, &err,
			      &error) < 0)
			die("append: %s", error);
		timing_add(&t_append, now_ms() - t0);
		expect++;
		check(uid == want && c.state.count == expect, "append: UID and count");
		check(c.state.mails[c.state.count - 1].flags == MAIL_SEEN &&
		      c.state.mails[c.state.count - 1].size == strlen(msg), "append: flags and size");
		free(msg);
	}

	/* What the disk alone costs an append (its one fsync), for scale. */
	{
		char *path = xasprintf("%s/fsync.probe", c.root);
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		char line[100];

		if (fd < 0)
			die("create %s: %s", path, strerror(errno));
		memset(line, 'x', sizeof(line));
		for (unsigned i = 0; i < appends; i++) {
			double t0 = now_ms();

			write_all(fd, line, sizeof(line));
			if (fsync(fd) < 0)
				die("fsync %s: %s", path, strerror(errno));
			timing_add(&t_fsync, now_ms() - t0);
		}
		close(fd);
		free(path);
	}

	/* STORE +FLAGS (\Seen), then -FLAGS, ... on 1,000 messages spread
	   over the mailbox; the sync() after it is the core's next command. */
	for (unsigned round = 0; round < 3; round++) {
		size_t step = c.state.count / 1000;
		uint64_t before = c.state.highest_modseq;
		double t0 = now_ms();

		for (size_t k = 0; k < 1000; k++) {
			size_t idx = k * step + round;
			struct mail_rec *r = &c.state.mails[idx];
			char *error = NULL;

			if (mbox_state_set_flags(&c.state, idx, (uint8_t)(r->flags ^ MAIL_FLAGGED),
						 r->keywords) &&
			    B->flags_changed(c.box, &c.state, idx, &st_err, &error) < 0)
				die("flags_changed: %s", error);
		}
		do_sync(&c);
		timing_add(&t_store, now_ms() - t0);
		check(c.state.highest_modseq >= before + 1000, "store: modseqs");
	}

	for (unsigned i = 0; i < 20; i++) {
		double t0;

		external_add(mail_path, i);
		t0 = now_ms();
		do_sync(&c);
		timing_add(&t_ext, now_ms() - t0);
		expect++;
		check(c.state.count == expect, "external append: count");
	}

	for (unsigned i = 0; i < 3; i++) {
		uint32_t uid = c.state.mails[c.state.count / 2].uid;
		double t0 = now_ms();

		do_expunge(&c, &uid, 1);
		timing_add(&t_exp1, now_ms() - t0);
		expect--;
		check(c.state.count == expect && mbox_state_find(&c.state, uid) < 0, "expunge 1");
	}

	uids = xmalloc(1000 * sizeof(*uids));
	for (unsigned i = 0; i < 3 && c.state.count >= 2000; i++) {
		size_t step = c.state.count / 1000;
		double t0;

		for (size_t k = 0; k < 1000; k++)
			uids[k] = c.state.mails[k * step + i].uid;
		t0 = now_ms();
		do_expunge(&c, uids, 1000);
		timing_add(&t_exp1000, now_ms() - t0);
		expect -= 1000;
		check(c.state.count == expect, "expunge 1000: count");
	}
	free(uids);
	{
		uint32_t uidnext = c.state.uidnext, uidvalidity = c.state.uidvalidity;
		struct mail_rec *before = xmalloc(c.state.count * sizeof(*before));

		/* flags and modseqs (of the STOREs above) are kept */
		memcpy(before, c.state.mails, c.state.count * sizeof(*before));
		ctx_close(&c);
		ctx_open(&c);
		check(c.state.count == expect && c.state.uidnext == uidnext &&
		      c.state.uidvalidity == uidvalidity, "reopen at the end");
		for (size_t i = 0; i < c.state.count; i++)
			check(c.state.mails[i].uid == before[i].uid &&
			      c.state.mails[i].flags == before[i].flags &&
			      c.state.mails[i].modseq == before[i].modseq, "reopen: flags, modseqs");
		free(before);
		for (size_t i = 1; i < c.state.count; i++)
			check(c.state.mails[i].uid > c.state.mails[i - 1].uid, "UIDs ascending");
		ctx_close(&c);
	}

	if (maildir)
		printf("maildir backend, %llu messages (one file each)\n",
		       (unsigned long long)messages);
	else
		printf("flat backend, %llu messages (%.1f MB mail file)\n",
		       (unsigned long long)messages, (double)sb.st_size / 1e6);
	printf("%-30s %10s %10s %10s %6s\n", "operation", "median ms", "p90 ms", "max ms", "runs");
	for (size_t i = 0; i < N_ELEMENTS(all); i++) {
		struct timing *t = all[i];

		printf("%-30s %10.3f %10.3f %10.3f %6zu\n", t->what, timing_q(t, 0.5),
		       timing_q(t, 0.9), timing_q(t, 1.0), t->count);
	}
	nftw(c.root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(mail_path);
	free(c.root);
	return 0;
}
