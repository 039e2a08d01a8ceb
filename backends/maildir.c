/* maildir.c: the "maildir" storage backend.

   Layout (Maildir++, as Dovecot, mutt and mbsync know it):
     <root>/<user>/Maildir/{cur,new,tmp}      INBOX
     <root>/<user>/Maildir/.a.b/{cur,new,tmp} mailbox "a/b" (plus an empty
                                              "maildirfolder" file)
     <root>/<user>/Maildir/subscriptions      subscribed names, one a line
     <root>/<user>/Maildir/imapserver-uidvalidity
                                              last UIDVALIDITY given out
   In every mailbox folder:
     dovecot-uidlist      UIDs <-> file names, in Dovecot's version 3 format:
                          "3 V<uidvalidity> N<next uid> R<first recent uid>
                          M<highest modseq>" then "<uid> W<rfc822.size>
                          T<internal date> Z<zone minutes> M<modseq>
                          :<file name>" per message. W is Dovecot's own
                          field; T, Z, M and R are ours. Dovecot keeps
                          header fields it does not know and record fields
                          named by a capital letter (it uses V N G P in the
                          header, S W P O G in records), so the file stays
                          valid for it; mutt and mbsync never read it.
     dovecot-keywords     "<n> <keyword>": letter 'a' + n in file names
     imapserver-uidlist.lock
                          an empty file; writers hold flock() on it, so a
                          killed writer never leaves a stale lock.

   A message is one file named "<base>:2,<flags>" (flags D F P R S T and
   keyword letters a-z, in ASCII order); our bases are
   "<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<rfc822.size>". Files are
   stored with LF line ends (as other Maildir tools do) and served with
   CRLF: RFC822.SIZE is the file size plus one octet per bare LF.

   Safety: delivery writes tmp/<base>, fsyncs, then rename()s it into new/
   (or cur/ when it has flags): a message is in the mailbox complete or
   not at all. The uidlist is replaced atomically (temp file, fsync,
   rename) under the lock; a message file found without a UID gets the
   next one, a UID whose file is gone is dropped, and the next UID is
   never lowered, so a crash at any instant loses, duplicates or reuses
   nothing. Flag changes rename the file (atomic): the letters are the
   durable record of the flags.

   Modification sequences (RFC 7162). The header's M is the mailbox's
   HIGHESTMODSEQ, never lowered: a read keeps the larger of it and what
   the state has. A record's M is its message's modseq; a record whose
   recorded name has other flag letters than the file has now (changed by
   a tool, or by us before a crash, while the uidlist was not written), or
   that has no M (an older file, or one another tool wrote), gets a new
   modseq above the highest.

   Batches. flags_changed() renames the file at once and marks the
   uidlist dirty; the uidlist is rewritten once at the next batch point:
   sync() (the core's next command, or its watch seeing our renames),
   append(), expunge(), set_uids() or close(). What makes that safe is
   the header's C, a ceiling: a modseq may be handed out unwritten only
   if it is at most the C on disk, and when HIGHESTMODSEQ passes it,
   flags_changed() writes the uidlist at once with C = HIGHESTMODSEQ +
   MD_MODSEQ_RESERVE. Every reader takes max(M, C, records' M) as a floor
   for its HIGHESTMODSEQ (it cannot tell a live writer's reserve from a
   crashed one's), so after a crash the renamed files' new modseqs go
   above everything a client saw. C is never cleared: another process may
   have reported it, so a reopen starts at it (up to MD_MODSEQ_RESERVE
   above the last modseq used), never lower. A message whose name goes
   back to the letters of its record within one batch is written at once:
   nothing else would tell a reload that it changed.

   Two openers. Whoever rewrites the uidlist reads it first if another
   process wrote it since (under the lock), so nothing another wrote is
   lost and the floor never goes down. A sync() that learns of a change
   (the file's letters differ from what the state has) gives it the
   other opener's recorded modseq if that is above all our clients saw,
   else a new one; one that finds a larger modseq recorded for the very
   flags the state has takes it (the larger wins, so both openers end up
   agreeing once both passed a batch point); our own unwritten changes
   under a floor another opener raised are given new modseqs above it.

   UIDs. append() adds its record at the end of the uidlist and
   fdatasync()s it before returning (O(1); Dovecot appends records the
   same way, and a record past the header's N raises the next UID): a UID
   given to a client is on disk. It reads the uidlist first only if
   another process wrote it (every UID our processes give is recorded
   there, under the lock); files other tools put in new/ or cur/ get
   their UIDs at the next sync(), after it. A record torn by a crash was
   never acknowledged; the next write rewrites the file.

   Every scan of new/ and cur/ happens under the lock, so that our own
   renames never make another of our processes believe a message was
   expunged; for tools that rename without the lock, a message missing
   from a scan is looked for once more before it is dropped.

   Messages seen in new/ are moved to cur/ by the first scan that sees
   them (they stay \Recent for the session that got them: the uidlist
   remembers the first recent UID). tmp/ files not written for 36 hours
   (mtime) are removed when the mailbox is opened. */
#include "fileio.h"
#include "storage.h"
#include "log.h"
#include "maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MD_DIR "Maildir"
#define MD_UIDLIST "dovecot-uidlist"
#define MD_KEYWORDS "dovecot-keywords"
#define MD_LOCK "imapserver-uidlist.lock"
#define MD_UIDV "imapserver-uidvalidity"
#define MD_SUBS "subscriptions"
#define MD_TMP_STALE_SECS (36 * 3600)
#define MD_LOCK_TIMEOUT_MS 10000
/* A directory mtime this close (or closer) to the moment it was read may
   still change within the same clock tick unnoticed: not trusted. */
#define MD_MTIME_TRUST_NS 1000000000LL
#define MD_MAX_FILES 1000000
/* A file written less than this long ago may still be being written by a
   tool that does not use tmp/. */
#define MD_YOUNG_SECS 2
#define MD_MAX_LETTERS 26
#define MD_LIST_MAX 10000
#define MD_MAX_MSG (1024ULL * 1024 * 1024)
#define MD_READ_CHUNK (256 * 1024)
#define MD_DUPLICATE ((struct mfile *)&md_duplicate_marker)
/* Modseqs reserved at a time for flag changes not yet in the uidlist. */
#define MD_MODSEQ_RESERVE 1024

struct storage {
	char *root;
	char host[128];            /* hostname, '/' and ':' escaped */
	unsigned long seq;         /* per-process counter for unique names */
};

/* One message file. */
struct mfile {
	uint32_t uid;
	char *base;                /* the unique part of the name, before ':' */
	char *name;                /* the name in its folder (new/ or cur/) */
	bool in_new;
	bool described;            /* vsize, date and tz are known */
	bool seen;                 /* scratch: matched by the current scan */
	uint64_t modseq;           /* as recorded in the uidlist (0: none) */
	uint64_t rec_letters;      /* info letters of the name the uidlist on
				      disk records (UINT64_MAX: no record) */
	uint64_t vsize;            /* RFC822.SIZE */
	int64_t date;
	int32_t tz;
};

static const char md_duplicate_marker = 0;

struct ftable {
	struct mfile *f;
	size_t count, alloc;
};

struct dir_stamp {
	bool valid;                /* trusted: a later change shows as a new mtime */
	uint64_t ino;
	int64_t sec, nsec;
};

struct file_stamp {
	bool exists;
	uint64_t ino, size;
	int64_t sec, nsec;
};

struct storage_box {
	struct storage *st;
	char *user, *name;
	bool inbox;
	char *dir, *cur_dir, *new_dir, *tmp_dir;
	char *uidlist_path, *uidlist_tmp, *kw_path, *kw_tmp, *lock_path, *uidv_path;

	int lock_fd;
	unsigned lock_depth;

	struct ftable files;       /* sorted by uid; the same uids as the state */
	uint32_t uidvalidity;      /* 0 until loaded */
	uint32_t uidnext;          /* next UID to give; never lowered */
	uint64_t disk_highest;     /* HIGHESTMODSEQ the uidlist last read or
				      written holds */
	uint64_t disk_ceiling;     /* its floor: max(M, C, records); modseqs up
				      to it may be handed out unwritten */
	bool dirty;                /* flag renames not yet in the uidlist */
	uint64_t highest;          /* the state's HIGHESTMODSEQ and first recent */
	uint32_t first_recent;     /* UID at the last flag change (for close()) */
	bool rewrite;              /* the uidlist must be rewritten, not
				      appended to (torn last line) */
	char *kw[MD_MAX_LETTERS];  /* kw[i] is letter 'a' + i */
	unsigned kw_count;

	struct dir_stamp cur_stamp, new_stamp;
	struct file_stamp uidlist_stamp;
	bool has_young;            /* some file may still grow: scan again */
};

/* Helpers */

static void
stamp_file(const char *path, struct file_stamp *fs)
{
	struct stat st;

	i_zero(fs);
	if (stat(path, &st) < 0)
		return;
	fs->exists = true;
	fs->ino = (uint64_t)st.st_ino;
	fs->size = (uint64_t)st.st_size;
	fs->sec = (int64_t)st.st_mtim.tv_sec;
	fs->nsec = (int64_t)st.st_mtim.tv_nsec;
}

static bool
file_stamp_equal(const struct file_stamp *a, const struct file_stamp *b)
{
	return a->exists == b->exists && a->ino == b->ino && a->size == b->size &&
		a->sec == b->sec && a->nsec == b->nsec;
}

/* Records a folder's mtime, taken just before it is read. */
static void
stamp_dir(const char *path, struct dir_stamp *ds)
{
	struct timespec now;
	struct stat st;
	int64_t age;

	i_zero(ds);
	if (stat(path, &st) < 0 || clock_gettime(CLOCK_REALTIME, &now) < 0)
		return;
	ds->ino = (uint64_t)st.st_ino;
	ds->sec = (int64_t)st.st_mtim.tv_sec;
	ds->nsec = (int64_t)st.st_mtim.tv_nsec;
	age = ((int64_t)now.tv_sec - ds->sec) * 1000000000LL + ((int64_t)now.tv_nsec - ds->nsec);
	ds->valid = age > MD_MTIME_TRUST_NS;
}

static bool
dir_unchanged(const char *path, const struct dir_stamp *ds)
{
	struct stat st;

	if (!ds->valid || stat(path, &st) < 0)
		return false;
	return ds->ino == (uint64_t)st.st_ino && ds->sec == (int64_t)st.st_mtim.tv_sec &&
		ds->nsec == (int64_t)st.st_mtim.tv_nsec;
}

/* Names */

/* Maildir++ keeps the hierarchy in one folder name with '.' between the
   levels, so a level may not itself hold a '.'. */
static bool
md_name_ok(const char *name)
{
	if (!storage_name_is_valid(name))
		return false;
	if (strcmp(name, "INBOX") == 0)
		return true;
	return strchr(name, '.') == NULL;
}

static int
md_check_names(const char *user, const char *name, enum storage_error *err_r, char **error_r)
{
	if (!storage_user_is_valid(user)) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xstrdup("invalid user name");
		return -1;
	}
	if (name != NULL && !md_name_ok(name)) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xasprintf("invalid mailbox name for Maildir storage "
				     "(no '.' inside a level): %s", name);
		return -1;
	}
	return 0;
}

static char *
md_root(struct storage *st, const char *user)
{
	return xasprintf("%s/%s/%s", st->root, user, MD_DIR);
}

/* The folder of mailbox name: "a/b" -> Maildir/.a.b */
static char *
md_box_dir(struct storage *st, const char *user, const char *name)
{
	char *p, *dir;

	if (strcmp(name, "INBOX") == 0)
		return md_root(st, user);
	dir = xasprintf("%s/%s/%s/.%s", st->root, user, MD_DIR, name);
	for (p = dir + strlen(dir) - strlen(name); *p != '\0'; p++) {
		if (*p == '/')
			*p = '.';
	}
	return dir;
}

/* Length of the base of a file name (up to the ":2," info). */
static size_t
base_len(const char *name)
{
	return strcspn(name, ":");
}

/* The info letters of a file name ("" if none). */
static const char *
name_flags(const char *name)
{
	const char *p = strstr(name, ":2,");

	return p != NULL ? p + 3 : "";
}

/* The info letters A-Z a-z of a file name as a bit set. */
static uint64_t
name_letters(const char *name)
{
	uint64_t set = 0;

	for (const char *p = name_flags(name); *p != '\0' && *p != ','; p++) {
		if (*p >= 'A' && *p <= 'Z')
			set |= 1ULL << (*p - 'A');
		else if (*p >= 'a' && *p <= 'z')
			set |= 1ULL << (26 + *p - 'a');
	}
	return set;
}

/* ,W=<n> (or failing that nothing) from a base name. */
static bool
base_field(const char *base, size_t len, char key, uint64_t *val_r)
{
	for (size_t i = 0; i + 3 <= len; i++) {
		if (base[i] == ',' && base[i + 1] == key && base[i + 2] == '=') {
			uint64_t v = 0;
			size_t j = i + 3, digits = 0;

			while (j < len && base[j] >= '0' && base[j] <= '9' && digits < 19) {
				v = v * 10 + (uint64_t)(base[j] - '0');
				j++;
				digits++;
			}
			if (digits > 0 && (j == len || base[j] == ',')) {
				*val_r = v;
				return true;
			}
		}
	}
	return false;
}

/* File tables */

static void
ftable_clear(struct ftable *t)
{
	for (size_t i = 0; i < t->count; i++) {
		free(t->f[i].base);
		free(t->f[i].name);
	}
	t->count = 0;
}

static void
ftable_free(struct ftable *t)
{
	ftable_clear(t);
	free(t->f);
	i_zero(t);
}

static struct mfile *
ftable_add(struct ftable *t)
{
	struct mfile *f;

	xgrow(&t->f, &t->alloc, t->count + 1, sizeof(*t->f));
	f = &t->f[t->count++];
	i_zero(f);
	return f;
}

static ssize_t
ftable_find(const struct ftable *t, uint32_t uid)
{
	size_t lo = 0, hi = t->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->f[mid].uid == uid)
			return (ssize_t)mid;
		if (t->f[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void
ftable_remove(struct ftable *t, size_t idx)
{
	if (idx >= t->count)
		return;
	free(t->f[idx].base);
	free(t->f[idx].name);
	memmove(&t->f[idx], &t->f[idx + 1], (t->count - idx - 1) * sizeof(*t->f));
	t->count--;
}

static int
mfile_uid_cmp(const void *a, const void *b)
{
	const struct mfile *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid ? 1 : 0;
}

/* Locking */

static int
md_lock(struct storage_box *box, enum storage_error *err_r, char **error_r)
{
	int64_t deadline;
	unsigned tries = 0;

	if (box->lock_depth > 0) {
		box->lock_depth++;
		return 0;
	}
	if (box->lock_fd < 0) {
		box->lock_fd = open(box->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (box->lock_fd < 0) {
			*err_r = storage_error_from_errno(errno);
			*error_r = xasprintf("open %s: %s", box->lock_path, strerror(errno));
			return -1;
		}
	}
	deadline = mono_ms() + MD_LOCK_TIMEOUT_MS;
	while (flock(box->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			*err_r = STORAGE_ERR_TEMP;
			*error_r = xasprintf("flock %s: %s", box->lock_path, strerror(errno));
			return -1;
		}
		if (mono_ms() >= deadline) {
			*err_r = STORAGE_ERR_IN_USE;
			*error_r = xasprintf("%s: locked by another process", box->lock_path);
			return -1;
		}
		sleep_ms(2 + (unsigned)((mono_ms() + tries++ * 7) % 19));
	}
	box->lock_depth = 1;
	return 0;
}

static void
md_unlock(struct storage_box *box)
{
	if (box->lock_depth == 0)
		return;
	if (--box->lock_depth > 0)
		return;
	(void)flock(box->lock_fd, LOCK_UN);
}

/* Keywords file */

static void
md_kw_clear(struct storage_box *box)
{
	for (unsigned i = 0; i < box->kw_count; i++) {
		free(box->kw[i]);
		box->kw[i] = NULL;
	}
	box->kw_count = 0;
}

/* Reads dovecot-keywords; keeps what we have when it is missing. */
static void
md_kw_read(struct storage_box *box)
{
	char *data = NULL, *line, *save = NULL;
	size_t len;
	char *names[MD_MAX_LETTERS] = { 0 };
	unsigned count = 0;

	if (file_read_small(box->kw_path, 64 * 1024, &data, &len, NULL) <= 0)
		return;
	for (line = strtok_r(data, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *end;
		unsigned long n = strtoul(line, &end, 10);

		if (end == line || *end != ' ' || n >= MD_MAX_LETTERS || end[1] == '\0')
			continue;
		free(names[n]);
		names[n] = xstrdup(end + 1);
		if (n + 1 > count)
			count = (unsigned)n + 1;
	}
	free(data);
	md_kw_clear(box);
	for (unsigned i = 0; i < count; i++)
		box->kw[i] = names[i] != NULL ? names[i] : xstrdup("");
	box->kw_count = count;
}

static int
md_kw_write(struct storage_box *box, char **error_r)
{
	struct buf b = BUF_INIT;
	int ret;

	for (unsigned i = 0; i < box->kw_count; i++) {
		if (box->kw[i][0] != '\0')
			buf_printf(&b, "%u %s\n", i, box->kw[i]);
	}
	ret = file_replace(box->kw_tmp, box->kw_path, b.data != NULL ? b.data : "", b.len);
	if (ret < 0)
		*error_r = xasprintf("write %s: %s", box->kw_path, strerror(errno));
	buf_free(&b);
	return ret;
}

/* The letter index of keyword name, adding it (and writing the file,
   the lock held) if add. -1 if it has no letter. */
static int
md_kw_letter(struct storage_box *box, const char *name, bool add, bool *wrote_r)
{
	for (unsigned i = 0; i < box->kw_count; i++) {
		if (ascii_strcasecmp(box->kw[i], name) == 0)
			return (int)i;
	}
	if (!add || box->kw_count >= MD_MAX_LETTERS)
		return -1;
	box->kw[box->kw_count++] = xstrdup(name);
	*wrote_r = true;
	return (int)box->kw_count - 1;
}

/* Flags and keywords from a name's info letters. */
static void
md_flags_from_name(struct storage_box *box, struct mbox_state *state, const char *name,
		   uint8_t *flags_r, uint64_t *kw_r)
{
	const char *p = name_flags(name);
	uint8_t flags = 0;
	uint64_t kw = 0;

	for (; *p != '\0' && *p != ','; p++) {
		switch (*p) {
		case 'D': flags |= MAIL_DRAFT; break;
		case 'F': flags |= MAIL_FLAGGED; break;
		case 'R': flags |= MAIL_ANSWERED; break;
		case 'S': flags |= MAIL_SEEN; break;
		case 'T': flags |= MAIL_DELETED; break;
		default:
			if (*p >= 'a' && *p <= 'z' && (unsigned)(*p - 'a') < box->kw_count &&
			    box->kw[*p - 'a'][0] != '\0') {
				int k = mbox_state_keyword(state, box->kw[*p - 'a'], true);

				if (k >= 0)
					kw |= 1ULL << k;
			}
			break;
		}
	}
	*flags_r = flags;
	*kw_r = kw;
}

/* The file name for base with these flags and keywords; letters of the
   old name that we do not manage (P, unknown keyword letters, anything
   after a ',') are kept. Sets *kw_changed_r when a keyword got a new
   letter (the caller writes the keywords file). */
static char *
md_name_with_flags(struct storage_box *box, const struct mbox_state *state, const char *base,
		   size_t blen, const char *old, uint8_t flags, uint64_t kw, bool *kw_changed_r)
{
	bool set[128] = { false };
	const char *p = old != NULL ? name_flags(old) : "";
	const char *rest = NULL;
	struct buf b = BUF_INIT;

	for (; *p != '\0'; p++) {
		if (*p == ',') {
			rest = p;
			break;
		}
		if ((unsigned char)*p < 128 && *p != 'D' && *p != 'F' && *p != 'R' && *p != 'S' &&
		    *p != 'T' && !(*p >= 'a' && *p <= 'z' && (unsigned)(*p - 'a') < box->kw_count))
			set[(unsigned char)*p] = true;
	}
	set['D'] = (flags & MAIL_DRAFT) != 0;
	set['F'] = (flags & MAIL_FLAGGED) != 0;
	set['R'] = (flags & MAIL_ANSWERED) != 0;
	set['S'] = (flags & MAIL_SEEN) != 0;
	set['T'] = (flags & MAIL_DELETED) != 0;
	for (unsigned i = 0; i < state->keyword_count && i < MBOX_MAX_KEYWORDS; i++) {
		int letter;

		if ((kw & (1ULL << i)) == 0)
			continue;
		letter = md_kw_letter(box, state->keywords[i], true, kw_changed_r);
		if (letter >= 0)
			set['a' + letter] = true;
	}
	buf_append(&b, base, blen);
	buf_append_str(&b, ":2,");
	for (unsigned c = 33; c < 127; c++) {
		if (set[c])
			buf_append_c(&b, (char)c);
	}
	if (rest != NULL)
		buf_append_str(&b, rest);
	return buf_steal(&b);
}

/* UIDVALIDITY: time-based, above every value given to this user before. */
static uint32_t
md_new_uidvalidity(struct storage_box *box, uint32_t old)
{
	uint32_t v = (uint32_t)time(NULL), last = 0;
	char tmp[32], *data = NULL, *tmp_path;
	size_t len;

	if (file_read_small(box->uidv_path, 64, &data, &len, NULL) > 0)
		last = (uint32_t)strtoul(data, NULL, 10);
	free(data);
	if (v <= last)
		v = last + 1;
	if (v <= old)
		v = old + 1;
	if (v == 0)
		v = 1;
	tmp_path = xasprintf("%s.tmp.%ld", box->uidv_path, (long)getpid());
	snprintf(tmp, sizeof(tmp), "%u\n", v);
	(void)file_replace(tmp_path, box->uidv_path, tmp, strlen(tmp));
	free(tmp_path);
	return v;
}

/* The uidlist */

struct uidlist {
	bool valid;
	uint32_t uidvalidity, uidnext, first_recent;
	uint64_t highest_modseq;   /* max of the header's M and the records' */
	uint64_t ceiling;          /* max of that and the header's C */
	bool have_recent;
	bool torn;                 /* the last line has no LF */
	struct ftable t;           /* sorted by uid; name = last known name */
};

static void
uidlist_free(struct uidlist *ul)
{
	ftable_free(&ul->t);
	i_zero(ul);
}

static bool
parse_u64_token(const char *s, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*v_r = v;
	return true;
}

/* Parses one record line "uid [fields] :name" (version 3) or "uid name"
   (version 1). Returns false if malformed. */
static bool
uidlist_parse_rec(char *line, int version, struct mfile *f)
{
	char *p = line, *sp;
	uint64_t v;
	bool have_w = false, have_t = false;

	sp = strchr(p, ' ');
	if (sp == NULL || !parse_u64_token(p, (size_t)(sp - p), &v) || v == 0 || v > UINT32_MAX)
		return false;
	f->uid = (uint32_t)v;
	p = sp + 1;
	if (version == 1) {
		if (*p == '\0')
			return false;
		f->name = xstrdup(p);
		return true;
	}
	while (*p != ':' && *p != '\0') {
		size_t len = strcspn(p, " ");
		int64_t sign = 1;
		const char *num = p + 1;
		size_t nlen = len - 1;

		if (len >= 2 && p[0] == 'Z' && p[1] == '-') {
			sign = -1;
			num++;
			nlen--;
		}
		if (len >= 2 && parse_u64_token(num, nlen, &v)) {
			if (p[0] == 'W') {
				f->vsize = v;
				have_w = true;
			} else if (p[0] == 'T') {
				f->date = (int64_t)v;
				have_t = true;
			} else if (p[0] == 'Z' && v <= 24 * 60) {
				f->tz = (int32_t)(sign * (int64_t)v);
			} else if (p[0] == 'M' && sign > 0) {
				f->modseq = v;
			}
		}
		p += len;
		while (*p == ' ')
			p++;
	}
	if (*p != ':' || p[1] == '\0' || strchr(p + 1, '/') != NULL)
		return false;
	f->name = xstrdup(p + 1);
	f->described = have_w && have_t;
	return true;
}

/* Reads the uidlist. Returns 0 (ul->valid false if missing or broken)
   or -1 on an I/O error. */
static int
uidlist_read(struct storage_box *box, struct uidlist *ul, char **error_r)
{
	char *data = NULL, *line, *next;
	size_t len;
	struct stat st;
	int version, r;

	i_zero(ul);
	r = file_read_small(box->uidlist_path, 512 * 1024 * 1024, &data, &len, &st);
	if (r < 0) {
		*error_r = xasprintf("read %s: %s", box->uidlist_path, strerror(errno));
		return -1;
	}
	if (r == 0)
		return 0;
	line = data;
	next = strchr(line, '\n');
	if (next == NULL)
		goto broken;
	*next++ = '\0';
	if (line[0] == '3' && line[1] == ' ') {
		char *p = line + 2, *save = NULL, *tok;

		version = 3;
		for (tok = strtok_r(p, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
			uint64_t v;

			if (!parse_u64_token(tok + 1, strlen(tok + 1), &v))
				continue;
			if (tok[0] == 'M' || tok[0] == 'C') {
				if (tok[0] == 'M' && v > ul->highest_modseq)
					ul->highest_modseq = v;
				if (v > ul->ceiling)
					ul->ceiling = v;
				continue;
			}
			if (v > UINT32_MAX)
				continue;
			if (tok[0] == 'V')
				ul->uidvalidity = (uint32_t)v;
			else if (tok[0] == 'N')
				ul->uidnext = (uint32_t)v;
			else if (tok[0] == 'R') {
				ul->first_recent = (uint32_t)v;
				ul->have_recent = true;
			}
		}
	} else if (line[0] == '1' && line[1] == ' ') {
		unsigned long long v1, v2;

		version = 1;
		if (sscanf(line + 2, "%llu %llu", &v1, &v2) != 2 || v1 > UINT32_MAX ||
		    v2 > UINT32_MAX)
			goto broken;
		ul->uidvalidity = (uint32_t)v1;
		ul->uidnext = (uint32_t)v2;
	} else {
		goto broken;
	}
	if (ul->uidvalidity == 0 || ul->uidnext == 0)
		goto broken;
	for (line = next; line != NULL && *line != '\0'; line = next) {
		struct mfile *f;

		next = strchr(line, '\n');
		if (next == NULL) {
			/* a record append() was writing when the system
			   crashed: it never returned, so the UID was never
			   given; the next write rewrites the file */
			ul->torn = true;
			break;
		}
		*next++ = '\0';
		f = ftable_add(&ul->t);
		if (!uidlist_parse_rec(line, version, f) ||
		    (ul->t.count > 1 && f->uid <= ul->t.f[ul->t.count - 2].uid) ||
		    ul->t.count > MD_MAX_FILES || (version == 1 && f->uid >= ul->uidnext)) {
			free(f->name);
			ul->t.count--;
			continue;
		}
		/* Records append() added after the header was written: the
		   header's N is older than they are. */
		if (f->uid >= ul->uidnext)
			ul->uidnext = f->uid == UINT32_MAX ? UINT32_MAX : f->uid + 1;
		if (f->modseq > ul->highest_modseq)
			ul->highest_modseq = f->modseq;
		f->base = xstrndup(f->name, base_len(f->name));
		f->rec_letters = name_letters(f->name);
	}
	if (ul->highest_modseq > ul->ceiling)
		ul->ceiling = ul->highest_modseq;
	free(data);
	ul->valid = true;
	return 0;
broken:
	free(data);
	log_warn("-", "%s: unreadable, UIDs start over (no mail is lost)", box->uidlist_path);
	uidlist_free(ul);
	return 0;
}

static void
uidlist_rec_print(struct buf *b, const struct mfile *f)
{
	buf_printf(b, "%u W%llu T%lld Z%d M%llu :%s\n", f->uid, (unsigned long long)f->vsize,
		   (long long)f->date, (int)f->tz, (unsigned long long)f->modseq, f->name);
}

/* Writes box->files with the modseqs, first recent UID and highest
   modseq of state (box->files and state hold the same UIDs, both
   ascending; a UID state lacks keeps the modseq it had), and the ceiling
   C: the one it had, raised to highest + MD_MODSEQ_RESERVE if reserve.
   This is the batch point of flag changes: the box is clean after. */
static int
uidlist_write(struct storage_box *box, const struct mbox_state *state, bool reserve,
	      char **error_r)
{
	struct buf b = BUF_INIT;
	uint64_t highest = state->highest_modseq, ceiling = box->disk_ceiling;
	size_t j = 0;
	int ret;

	if (box->disk_highest > highest)
		highest = box->disk_highest;
	for (size_t i = 0; i < box->files.count; i++) {
		struct mfile *f = &box->files.f[i];

		while (j < state->count && state->mails[j].uid < f->uid)
			j++;
		if (j < state->count && state->mails[j].uid == f->uid)
			f->modseq = state->mails[j].modseq;
		if (f->modseq > highest)
			highest = f->modseq;
	}
	if (reserve && highest + MD_MODSEQ_RESERVE > ceiling)
		ceiling = highest + MD_MODSEQ_RESERVE;
	buf_printf(&b, "3 V%u N%u R%u M%llu", box->uidvalidity, box->uidnext,
		   state->first_recent_uid, (unsigned long long)highest);
	if (ceiling > highest)
		buf_printf(&b, " C%llu", (unsigned long long)ceiling);
	buf_append_c(&b, '\n');
	for (size_t i = 0; i < box->files.count; i++)
		uidlist_rec_print(&b, &box->files.f[i]);
	ret = file_replace(box->uidlist_tmp, box->uidlist_path, b.data, b.len);
	for (size_t i = 0; ret == 0 && i < box->files.count; i++)
		box->files.f[i].rec_letters = name_letters(box->files.f[i].name);
	if (ret < 0) {
		*error_r = xasprintf("write %s: %s", box->uidlist_path, strerror(errno));
	} else {
		stamp_file(box->uidlist_path, &box->uidlist_stamp);
		box->disk_highest = highest;
		box->disk_ceiling = ceiling > highest ? ceiling : highest;
		box->highest = highest;
		box->first_recent = state->first_recent_uid;
		box->dirty = false;
		box->rewrite = false;
	}
	buf_free(&b);
	return ret;
}

/* Adds the record of f (just appended) at the end of the uidlist and
   fdatasync()s it: O(1), where a rewrite is O(messages). The lock is held
   and the file is the one we last read or wrote (so it ends in a LF).
   Readers take a record past the header's N as raising the next UID. */
static int
uidlist_append_rec(struct storage_box *box, const struct mfile *f, char **error_r)
{
	struct buf b = BUF_INIT;
	int fd, ret = -1;

	uidlist_rec_print(&b, f);
	fd = open(box->uidlist_path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd >= 0 && fd_write_full(fd, b.data, b.len) == 0 && fdatasync(fd) == 0)
		ret = 0;
	if (ret < 0)
		*error_r = xasprintf("append to %s: %s", box->uidlist_path, strerror(errno));
	if (fd >= 0 && close(fd) < 0 && ret == 0) {
		*error_r = xasprintf("close %s: %s", box->uidlist_path, strerror(errno));
		ret = -1;
	}
	if (ret == 0) {
		stamp_file(box->uidlist_path, &box->uidlist_stamp);
		((struct mfile *)f)->rec_letters = name_letters(f->name);
		if (f->modseq > box->disk_highest)
			box->disk_highest = f->modseq;
		if (f->modseq > box->disk_ceiling)
			box->disk_ceiling = f->modseq;
	} else {
		/* whatever reached the file (a torn line?) goes at the
		   next write */
		box->rewrite = true;
	}
	buf_free(&b);
	return ret;
}

/* Scanning */

struct dent {
	char *name;
	bool in_new;
	size_t blen;
	struct mfile *known;       /* matched entry, or NULL */
};

struct dents {
	struct dent *d;
	size_t count, alloc;
};

static void
dents_free(struct dents *ds)
{
	for (size_t i = 0; i < ds->count; i++)
		free(ds->d[i].name);
	free(ds->d);
	i_zero(ds);
}

static int
read_dir_into(const char *dir, bool in_new, struct dents *ds, char **error_r)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("opendir %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL && ds->count < MD_MAX_FILES) {
		struct dent *e;

		if (de->d_name[0] == '.' || base_len(de->d_name) == 0)
			continue;
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN && de->d_type != DT_LNK)
			continue;
		xgrow(&ds->d, &ds->alloc, ds->count + 1, sizeof(*ds->d));
		e = &ds->d[ds->count++];
		e->name = xstrdup(de->d_name);
		e->in_new = in_new;
		e->blen = base_len(e->name);
		e->known = NULL;
	}
	closedir(d);
	return 0;
}

static int
md_read_dirs(struct storage_box *box, struct dents *ds, char **error_r)
{
	i_zero(ds);
	if (read_dir_into(box->cur_dir, false, ds, error_r) < 0 ||
	    read_dir_into(box->new_dir, true, ds, error_r) < 0) {
		dents_free(ds);
		return -1;
	}
	return 0;
}

static int
dent_name_cmp(const void *a, const void *b)
{
	const struct dent *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static int
mfile_ptr_base_cmp(const void *a, const void *b)
{
	const struct mfile *const *x = a, *const *y = b;

	return strcmp((*x)->base, (*y)->base);
}

static struct mfile *
known_lookup(struct mfile **known, size_t n, const char *base, size_t blen)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strncmp(known[mid]->base, base, blen);

		if (c == 0 && known[mid]->base[blen] != '\0')
			c = 1;
		if (c == 0)
			return known[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* RFC822.SIZE of a stored file: its size plus one octet per bare LF. */
static int
md_file_vsize(const char *path, uint64_t *vsize_r, struct stat *st_r)
{
	char *tmp;
	uint64_t size = 0, bare = 0;
	char prev = '\0';
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, st_r) < 0) {
		close(fd);
		return -1;
	}
	tmp = xmalloc(MD_READ_CHUNK);
	while ((n = read(fd, tmp, MD_READ_CHUNK)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(tmp);
			close(fd);
			return -1;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (tmp[i] == '\n' && prev != '\r')
				bare++;
			prev = tmp[i];
		}
		size += (uint64_t)n;
		if (size > MD_MAX_MSG)
			break;
	}
	free(tmp);
	close(fd);
	*vsize_r = size + bare;
	return 0;
}

static int32_t
local_tz_minutes(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return (int32_t)(tm.tm_gmtoff / 60);
}

/* Fills vsize, date and tz of a file found without a uidlist record. */
static bool
md_describe_new_file(struct storage_box *box, const struct dent *e, struct mfile *f)
{
	char *path = xasprintf("%s/%s", e->in_new ? box->new_dir : box->cur_dir, e->name);
	struct stat st;
	uint64_t w;
	bool ok;

	if (base_field(e->name, e->blen, 'W', &w)) {
		ok = stat(path, &st) == 0;
		f->vsize = w;
	} else {
		ok = md_file_vsize(path, &f->vsize, &st) == 0;
	}
	free(path);
	if (!ok || !S_ISREG(st.st_mode))
		return false;
	/* A tool that writes straight into new/ (cp) makes the file empty
	   first: not a message yet. Its close brings another event. */
	if (st.st_size == 0 && time(NULL) - st.st_mtim.tv_sec < MD_YOUNG_SECS)
		return false;
	f->date = (int64_t)st.st_mtim.tv_sec;
	f->tz = local_tz_minutes(f->date);
	/* Still young: it may grow yet; measured again by later scans. */
	f->described = time(NULL) - st.st_mtim.tv_sec >= MD_YOUNG_SECS;
	return true;
}

/* Moves a file from new/ to cur/, adding the info suffix. */
static void
md_move_to_cur(struct storage_box *box, struct mbox_state *state, struct mfile *f,
	       const struct mail_rec *m, bool *kw_changed_r)
{
	char *newname = md_name_with_flags(box, state, f->base, strlen(f->base), f->name,
					   m->flags, m->keywords, kw_changed_r);
	char *from = xasprintf("%s/%s", box->new_dir, f->name);
	char *to = xasprintf("%s/%s", box->cur_dir, newname);

	if (rename(from, to) == 0) {
		free(f->name);
		f->name = newname;
		f->in_new = false;
	} else {
		free(newname);
	}
	free(from);
	free(to);
}

/* Brings box->files and state in line with the disk; the lock is held.
   Returns 0, 1 (a new UIDVALIDITY for a state that had one) or -1. */
static int
md_sync_locked(struct storage_box *box, struct mbox_state *state, char **error_r)
{
	struct uidlist ul;
	struct ftable next = { 0 };
	struct dents ds = { 0 };
	struct mfile **known = NULL;
	size_t nknown = 0, missing = 0;
	bool fresh = state->uidvalidity == 0, reread, write = false, kw_changed = false;
	bool removed = false;
	uint32_t uidnext, min_new_uid = UINT32_MAX;
	/* what our clients may have seen, and what we had written */
	uint64_t pre = state->highest_modseq, old_disk = box->disk_highest, floor = 0;
	int ret = 0;
	struct file_stamp fs;

	md_kw_read(box);
	stamp_file(box->uidlist_path, &fs);
	reread = fresh || !file_stamp_equal(&fs, &box->uidlist_stamp);
	i_zero(&ul);
	if (reread && uidlist_read(box, &ul, error_r) < 0)
		return -1;
	if (reread)
		box->uidlist_stamp = fs;

	if (fresh) {
		ftable_clear(&box->files);
		if (ul.valid) {
			box->uidvalidity = ul.uidvalidity;
			box->uidnext = ul.uidnext;
		} else {
			box->uidvalidity = md_new_uidvalidity(box, 0);
			box->uidnext = 1;
			write = true;
		}
	} else if (reread && ul.valid && ul.uidvalidity != box->uidvalidity) {
		/* Another lineage on disk: it wins. */
		ftable_clear(&box->files);
		mbox_state_clear(state);
		box->uidvalidity = ul.uidvalidity;
		box->uidnext = ul.uidnext;
		ret = 1;
	} else if (reread && !ul.valid) {
		/* The uidlist went away while we had the mailbox: what we have
		   in memory is the best base. */
		write = true;
	}
	state->uidvalidity = box->uidvalidity;
	uidnext = box->uidnext;
	if (reread && ul.valid && ul.uidnext > uidnext)
		uidnext = ul.uidnext;
	/* HIGHESTMODSEQ never goes down, whoever wrote the file, and it is
	   at least the ceiling C: a writer may have handed out modseqs up to
	   it that are not in the file (it may have crashed since). */
	if (reread && ul.valid) {
		box->disk_highest = ul.highest_modseq;
		box->disk_ceiling = ul.ceiling;
		floor = ul.ceiling;
		if (ul.ceiling > state->highest_modseq)
			state->highest_modseq = ul.ceiling;
	} else if (reread) {
		box->disk_highest = 0;
		box->disk_ceiling = 0;
	}
	if (ul.torn || box->dirty || box->rewrite)
		write = true;

	/* What is known: our table, plus what others recorded since. */
	known = xmalloc((box->files.count + ul.t.count + 1) * sizeof(*known));
	for (size_t i = 0; i < box->files.count; i++)
		known[nknown++] = &box->files.f[i];
	for (size_t i = 0; i < ul.t.count; i++) {
		if (ret == 1 || fresh || ul.t.f[i].uid >= box->uidnext)
			known[nknown++] = &ul.t.f[i];
	}
	if (nknown > 1)
		qsort(known, nknown, sizeof(*known), mfile_ptr_base_cmp);

	for (unsigned pass = 0; pass < 2; pass++) {
		stamp_dir(box->cur_dir, &box->cur_stamp);
		stamp_dir(box->new_dir, &box->new_stamp);
		if (md_read_dirs(box, &ds, error_r) < 0) {
			ret = -1;
			goto out;
		}
		if (ds.count > 1)
			qsort(ds.d, ds.count, sizeof(*ds.d), dent_name_cmp);
		for (size_t i = 0; i < nknown; i++)
			known[i]->seen = false;
		for (size_t i = 0; i < ds.count; i++) {
			struct mfile *k = known_lookup(known, nknown, ds.d[i].name, ds.d[i].blen);

			/* A base seen twice (new/ and cur/ while another tool
			   moves it): only the first copy counts. */
			if (k != NULL && k->seen)
				k = MD_DUPLICATE;
			else if (k != NULL)
				k->seen = true;
			ds.d[i].known = k;
		}
		/* Messages of our table that the scan missed: renamed by a tool
		   that does not lock, while we read? Look once more. */
		missing = 0;
		for (size_t i = 0; i < box->files.count; i++) {
			if (!box->files.f[i].seen)
				missing++;
		}
		if (missing == 0 || pass == 1)
			break;
		dents_free(&ds);
	}

	/* The new table: matched files keep their UIDs, the rest get new
	   ones in name order (names start with the delivery time). */
	for (size_t i = 0; i < ds.count; i++) {
		struct dent *e = &ds.d[i];
		struct mfile *f;

		if (e->known == MD_DUPLICATE)
			continue;
		if (e->known != NULL) {
			f = ftable_add(&next);
			f->uid = e->known->uid;
			f->vsize = e->known->vsize;
			f->date = e->known->date;
			f->tz = e->known->tz;
			f->base = xstrndup(e->name, e->blen);
			f->name = xstrdup(e->name);
			f->in_new = e->in_new;
			f->described = e->known->described;
			/* what the uidlist on disk says of it now */
			if (reread && ul.valid) {
				ssize_t d = ftable_find(&ul.t, f->uid);

				f->rec_letters = d >= 0 ? ul.t.f[d].rec_letters : UINT64_MAX;
			} else {
				f->rec_letters = reread ? UINT64_MAX : e->known->rec_letters;
			}
			/* The recorded modseq stands only for the flags the
			   recorded name has. */
			f->modseq = strcmp(name_flags(e->known->name), name_flags(e->name)) == 0 ?
				e->known->modseq : 0;
			if (!f->described) {
				/* a foreign uidlist: W and T learnt once, then kept */
				struct mfile tmp = { 0 };
				uint64_t w = f->vsize;

				if (md_describe_new_file(box, e, &tmp)) {
					*f = (struct mfile){ .uid = f->uid, .base = f->base,
							     .name = f->name, .in_new = f->in_new,
							     .modseq = f->modseq,
							     .rec_letters = f->rec_letters,
							     .described = tmp.described,
							     .vsize = w != 0 && tmp.described ?
								     w : tmp.vsize,
							     .date = tmp.date, .tz = tmp.tz };
					write = true;
				}
			}
			if (f->in_new && f->uid < min_new_uid)
				min_new_uid = f->uid;
		}
	}
	for (size_t i = 0; i < ds.count; i++) {
		struct dent *e = &ds.d[i];
		struct mfile *f, tmp = { 0 };

		if (e->known != NULL)
			continue;
		if (!md_describe_new_file(box, e, &tmp))
			continue;       /* vanished meanwhile */
		if (uidnext == UINT32_MAX) {
			log_error("-", "%s: out of UIDs", box->dir);
			break;
		}
		f = ftable_add(&next);
		*f = tmp;
		f->rec_letters = UINT64_MAX;
		f->uid = uidnext++;
		f->base = xstrndup(e->name, e->blen);
		f->name = xstrdup(e->name);
		f->in_new = e->in_new;
		if (f->uid < min_new_uid)
			min_new_uid = f->uid;
		write = true;
	}
	if (next.count > 1)
		qsort(next.f, next.count, sizeof(*next.f), mfile_uid_cmp);

	/* Does the uidlist on disk still say the same? */
	if (!write) {
		if (reread && ul.valid) {
			write = ul.t.count != next.count || ul.uidnext != uidnext;
			for (size_t i = 0; i < next.count && !write; i++)
				write = ul.t.f[i].uid != next.f[i].uid;
		} else {
			write = box->files.count != next.count || box->uidnext != uidnext;
			for (size_t i = 0; i < next.count && !write; i++)
				write = box->files.f[i].uid != next.f[i].uid;
		}
	}

	/* Apply to the state: both lists ascend by UID. */
	{
		size_t i = 0, j = 0;

		if (state->count == 0 && next.count > 0)
			xgrow(&state->mails, &state->alloc, next.count, sizeof(*state->mails));
		while (i < state->count || j < next.count) {
			uint8_t flags;
			uint64_t kw;

			if (i < state->count &&
			    (j >= next.count || state->mails[i].uid < next.f[j].uid)) {
				mbox_state_remove(state, i);
				removed = true;
				continue;
			}
			md_flags_from_name(box, state, next.f[j].name, &flags, &kw);
			if (i < state->count && state->mails[i].uid == next.f[j].uid) {
				struct mail_rec *r = &state->mails[i];
				ssize_t d = reread && ul.valid ? ftable_find(&ul.t, r->uid) : -1;
				uint64_t recorded = 0;

				r->size = next.f[j].vsize;
				/* another opener's modseq for these very flags */
				if (d >= 0 && ul.t.f[d].modseq > r->modseq &&
				    strcmp(name_flags(ul.t.f[d].name), name_flags(next.f[j].name)) == 0)
					recorded = ul.t.f[d].modseq;
				if ((flags & MAIL_FLAGS_ALL) != r->flags || kw != r->keywords) {
					/* A change news to us: above all our clients
					   saw (and the floor), so that none misses
					   it; the opener's own modseq if it is. */
					r->flags = flags & MAIL_FLAGS_ALL;
					r->keywords = kw;
					r->modseq = recorded > pre ? recorded : ++state->highest_modseq;
				} else if (recorded != 0) {
					/* the same flags, a later modseq: the larger
					   one wins, so that both openers agree */
					r->modseq = recorded;
				} else if (r->modseq > old_disk && r->modseq <= floor) {
					/* our change, not yet written, under a
					   floor another opener raised: a crash of
					   that opener must not leave it below what
					   its clients saw */
					r->modseq = ++state->highest_modseq;
				}
				if (r->modseq > state->highest_modseq)
					state->highest_modseq = r->modseq;
				i++;
				j++;
				continue;
			}
			{
				struct mail_rec m;

				i_zero(&m);
				m.uid = next.f[j].uid;
				m.flags = flags & MAIL_FLAGS_ALL;
				m.keywords = kw;
				m.internal_date = next.f[j].date;
				m.tz_minutes = next.f[j].tz;
				m.size = next.f[j].vsize;
				/* a new message gets a modseq above what our
				   clients saw (the recorded one on a first read) */
				m.modseq = next.f[j].modseq;
				if (m.modseq == 0 || (!fresh && ret != 1 && m.modseq <= pre))
					m.modseq = state->highest_modseq + 1;
				if (state->count > 0 && state->mails[state->count - 1].uid >= m.uid) {
					/* cannot happen in one lineage */
					*error_r = xasprintf("%s: UID %u out of order", box->dir, m.uid);
					ret = -1;
					goto out;
				}
				(void)mbox_state_append(state, &m);
				i++;
				j++;
			}
		}
	}
	/* Removed by another tool: the mailbox changed, so HIGHESTMODSEQ
	   rises (RFC 7162 3.2), here so that it is written below. */
	if (removed && !fresh && ret == 0)
		state->highest_modseq++;
	if (state->highest_modseq > box->disk_highest)
		write = true;
	ftable_free(&box->files);
	box->files = next;
	i_zero(&next);
	box->has_young = false;
	for (size_t k = 0; k < box->files.count; k++) {
		if (!box->files.f[k].described)
			box->has_young = true;
	}
	box->uidnext = uidnext;
	if (state->uidnext < uidnext)
		state->uidnext = uidnext;
	if (fresh || ret == 1) {
		uint32_t fr = ul.valid && ul.have_recent ? ul.first_recent : uidnext;

		if (min_new_uid < fr)
			fr = min_new_uid;
		state->first_recent_uid = fr;
	}
	/* new/ -> cur/ */
	for (size_t k = 0; k < box->files.count; k++) {
		if (box->files.f[k].in_new)
			md_move_to_cur(box, state, &box->files.f[k], &state->mails[k], &kw_changed);
	}
	if (kw_changed && md_kw_write(box, error_r) < 0) {
		ret = -1;
		goto out;
	}
	if (write && uidlist_write(box, state, false, error_r) < 0)
		ret = -1;
out:
	ftable_free(&next);
	dents_free(&ds);
	free(known);
	uidlist_free(&ul);
	return ret;
}

/* True if nothing changed since the last scan (three stat() calls). */
static bool
md_unchanged(struct storage_box *box)
{
	struct file_stamp fs;

	if (box->has_young || !dir_unchanged(box->cur_dir, &box->cur_stamp) ||
	    !dir_unchanged(box->new_dir, &box->new_stamp))
		return false;
	stamp_file(box->uidlist_path, &fs);
	return file_stamp_equal(&fs, &box->uidlist_stamp);
}

/* Finds the current name of f by its base (after another tool renamed
   it). Returns true if found. */
static bool
md_locate(struct storage_box *box, struct mfile *f)
{
	struct dents ds;
	char *error = NULL;
	bool found = false;

	if (md_read_dirs(box, &ds, &error) < 0) {
		free(error);
		return false;
	}
	for (size_t i = 0; i < ds.count; i++) {
		if (ds.d[i].blen == strlen(f->base) && strncmp(ds.d[i].name, f->base, ds.d[i].blen) == 0) {
			free(f->name);
			f->name = xstrdup(ds.d[i].name);
			f->in_new = ds.d[i].in_new;
			found = true;
			break;
		}
	}
	dents_free(&ds);
	return found;
}

static char *
md_file_path(const struct storage_box *box, const struct mfile *f)
{
	return xasprintf("%s/%s", f->in_new ? box->new_dir : box->cur_dir, f->name);
}

/* Removes tmp/ files older than 36 hours (interrupted deliveries). */
static void
md_clean_tmp(struct storage_box *box)
{
	time_t now = time(NULL);
	struct dirent *de;
	unsigned n = 0;
	DIR *d = opendir(box->tmp_dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL && n++ < 100000) {
		struct stat st;
		char *path;

		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", box->tmp_dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    now - st.st_mtim.tv_sec > MD_TMP_STALE_SECS)
			(void)unlink(path);
		free(path);
	}
	closedir(d);
}

static int
mkdir_ok(const char *path)
{
	return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* Creates <dir>/{cur,new,tmp} (and dir). */
static int
md_make_maildir(const char *dir)
{
	char *p;
	int ret = 0;

	if (mkdir_ok(dir) < 0)
		return -1;
	for (unsigned i = 0; i < 3 && ret == 0; i++) {
		static const char *const sub[] = { "cur", "new", "tmp" };

		p = xasprintf("%s/%s", dir, sub[i]);
		ret = mkdir_ok(p);
		free(p);
	}
	return ret;
}

/* Backend operations */

static int
md_init(const struct storage_settings *set, struct storage **st_r, char **error_r)
{
	struct storage *st;
	size_t o = 0;
	char host[64];

	char *root;

	if (storage_root_prepare("maildir", set, &root, error_r) < 0)
		return -1;
	st = xcalloc(1, sizeof(*st));
	st->root = root;
	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	/* maildir(5): '/' and ':' in the host name are written as octal. */
	for (const char *p = host; *p != '\0' && o + 5 < sizeof(st->host); p++) {
		if (*p == '/' || *p == ':' || *p == ',') {
			o += (size_t)snprintf(st->host + o, sizeof(st->host) - o, "\\%03o",
					      (unsigned char)*p);
		} else {
			st->host[o++] = *p;
		}
	}
	st->host[o] = '\0';
	*st_r = st;
	return 0;
}

static void
md_deinit(struct storage **stp)
{
	struct storage *st = *stp;

	if (st == NULL)
		return;
	free(st->root);
	free(st);
	*stp = NULL;
}

static void
md_box_free(struct storage_box *box)
{
	if (box->lock_fd >= 0)
		close(box->lock_fd);
	ftable_free(&box->files);
	md_kw_clear(box);
	free(box->user);
	free(box->name);
	free(box->dir);
	free(box->cur_dir);
	free(box->new_dir);
	free(box->tmp_dir);
	free(box->uidlist_path);
	free(box->uidlist_tmp);
	free(box->kw_path);
	free(box->kw_tmp);
	free(box->lock_path);
	free(box->uidv_path);
	free(box);
}

static struct storage_box *
md_box_new(struct storage *st, const char *user, const char *name)
{
	struct storage_box *box = xcalloc(1, sizeof(*box));
	char *root = md_root(st, user);

	box->st = st;
	box->user = xstrdup(user);
	box->name = xstrdup(name);
	box->inbox = strcmp(name, "INBOX") == 0;
	box->dir = md_box_dir(st, user, name);
	box->cur_dir = xasprintf("%s/cur", box->dir);
	box->new_dir = xasprintf("%s/new", box->dir);
	box->tmp_dir = xasprintf("%s/tmp", box->dir);
	box->uidlist_path = xasprintf("%s/%s", box->dir, MD_UIDLIST);
	box->uidlist_tmp = xasprintf("%s/%s.tmp", box->dir, MD_UIDLIST);
	box->kw_path = xasprintf("%s/%s", box->dir, MD_KEYWORDS);
	box->kw_tmp = xasprintf("%s/%s.tmp", box->dir, MD_KEYWORDS);
	box->lock_path = xasprintf("%s/%s", box->dir, MD_LOCK);
	box->uidv_path = xasprintf("%s/%s", root, MD_UIDV);
	box->lock_fd = -1;
	free(root);
	return box;
}

static int
md_open(struct storage *st, const char *user, const char *name, struct mbox_state *state,
	struct storage_box **box_r, enum storage_error *err_r, char **error_r)
{
	struct storage_box *box;
	struct stat sb;

	*err_r = STORAGE_ERR_NONE;
	if (md_check_names(user, name, err_r, error_r) < 0)
		return -1;
	box = md_box_new(st, user, name);
	if (box->inbox) {
		char *udir = xasprintf("%s/%s", st->root, user);

		if (mkdir_ok(udir) < 0 || md_make_maildir(box->dir) < 0) {
			*err_r = storage_error_from_errno(errno);
			*error_r = xasprintf("create %s: %s", box->dir, strerror(errno));
			free(udir);
			md_box_free(box);
			return -1;
		}
		free(udir);
	} else if (stat(box->cur_dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		*err_r = errno == ENOENT || errno == ENOTDIR || S_ISDIR(sb.st_mode) == 0 ?
			STORAGE_ERR_NOT_FOUND : STORAGE_ERR_TEMP;
		*error_r = xasprintf("%s: no such Maildir folder", box->dir);
		md_box_free(box);
		return -1;
	} else if (md_make_maildir(box->dir) < 0) {
		/* another tool's folder without new/ or tmp/ */
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("create %s: %s", box->dir, strerror(errno));
		md_box_free(box);
		return -1;
	}
	md_clean_tmp(box);
	if (md_lock(box, err_r, error_r) < 0) {
		md_box_free(box);
		return -1;
	}
	if (md_sync_locked(box, state, error_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		md_unlock(box);
		md_box_free(box);
		return -1;
	}
	md_unlock(box);
	*box_r = box;
	return 0;
}

/* close() has no state: the flag changes not yet written are in
   box->files (names and modseqs). A state is rebuilt from them so that
   the usual sync writes them, merged with what another opener wrote. */
static void
md_close_flush(struct storage_box *box)
{
	struct mbox_state tmp;
	enum storage_error err;
	char *error = NULL;

	mbox_state_init(&tmp);
	tmp.uidvalidity = box->uidvalidity;
	tmp.uidnext = box->uidnext;
	tmp.first_recent_uid = box->first_recent;
	tmp.highest_modseq = box->highest;
	for (size_t i = 0; i < box->files.count; i++) {
		const struct mfile *f = &box->files.f[i];
		struct mail_rec m;
		uint64_t kw;

		i_zero(&m);
		md_flags_from_name(box, &tmp, f->name, &m.flags, &kw);
		m.flags &= MAIL_FLAGS_ALL;
		m.keywords = kw;
		m.uid = f->uid;
		m.size = f->vsize;
		m.internal_date = f->date;
		m.tz_minutes = f->tz;
		m.modseq = f->modseq;
		(void)mbox_state_append(&tmp, &m);
	}
	if (md_lock(box, &err, &error) == 0) {
		if (md_sync_locked(box, &tmp, &error) < 0)
			log_error("-", "%s: flag changes not written at close: %s", box->dir, error);
		md_unlock(box);
	} else {
		log_error("-", "%s: flag changes not written at close: %s", box->dir, error);
	}
	free(error);
	mbox_state_deinit(&tmp);
}

/* The last batch point: a crash before it is covered by the ceiling (the
   renamed files' flags are kept; their modseqs start over above it). */
static void
md_close(struct storage_box **boxp)
{
	if (*boxp == NULL)
		return;
	if ((*boxp)->dirty || (*boxp)->rewrite)
		md_close_flush(*boxp);
	md_box_free(*boxp);
	*boxp = NULL;
}

static int
md_sync(struct storage_box *box, struct mbox_state *state, char **error_r)
{
	enum storage_error err;
	int ret;

	if (!box->dirty && !box->rewrite && md_unchanged(box))
		return 0;
	if (md_lock(box, &err, error_r) < 0)
		return -1;
	/* (dirty: the batch of flag changes is written here) */
	ret = md_sync_locked(box, state, error_r);
	md_unlock(box);
	return ret;
}

static int
md_read(struct storage_box *box, const struct mail_rec *rec, struct buf *out, char **error_r)
{
	ssize_t idx = ftable_find(&box->files, rec->uid);
	struct mfile *f;
	char *path, *tmp;
	char prev = '\0';
	ssize_t n;
	int fd;

	if (idx < 0) {
		*error_r = xasprintf("%s: message %u is not available", box->dir, rec->uid);
		return -1;
	}
	f = &box->files.f[idx];
	path = md_file_path(box, f);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && md_locate(box, f)) {
		free(path);
		path = md_file_path(box, f);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		*error_r = xasprintf("open %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	buf_reserve(out, rec->size < MD_MAX_MSG ? (size_t)rec->size : 0);
	tmp = xmalloc(MD_READ_CHUNK);
	while ((n = read(fd, tmp, MD_READ_CHUNK)) != 0) {
		ssize_t start = 0;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			*error_r = xasprintf("read %s: %s", path, strerror(errno));
			free(tmp);
			free(path);
			close(fd);
			return -1;
		}
		/* LF -> CRLF, in runs */
		for (ssize_t i = 0; i < n; i++) {
			if (tmp[i] == '\n' && (i > 0 ? tmp[i - 1] : prev) != '\r') {
				buf_append(out, tmp + start, (size_t)(i - start));
				buf_append(out, "\r\n", 2);
				start = i + 1;
			}
		}
		buf_append(out, tmp + start, (size_t)(n - start));
		prev = tmp[n - 1];
	}
	free(tmp);
	free(path);
	close(fd);
	return 0;
}

/* CRLF -> LF, the form Maildir tools expect. */
static void
md_to_lf(const char *data, size_t len, struct buf *out, uint64_t *vsize_r)
{
	uint64_t bare = 0;
	size_t start = 0;

	buf_reserve(out, len);
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			if (i > 0 && data[i - 1] == '\r') {
				buf_append(out, data + start, i - 1 - start);
				start = i;
			}
		}
	}
	buf_append(out, data + start, len - start);
	/* served size: every LF not after a CR gains one */
	for (size_t i = 0; i < out->len; i++) {
		if (out->data[i] == '\n' && (i == 0 || out->data[i - 1] != '\r'))
			bare++;
	}
	*vsize_r = out->len + bare;
}

static int
md_append(struct storage_box *box, struct mbox_state *state, const char *data, size_t len,
	  uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
	  uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	struct buf stored = BUF_INIT;
	struct timeval tv;
	struct timespec times[2];
	struct mfile *f;
	struct mail_rec m;
	struct file_stamp fs;
	char *base = NULL, *tmp_path = NULL, *dest = NULL, *name = NULL;
	uint64_t vsize;
	bool kw_changed = false, linked = false;
	int fd = -1, ret = -1, r;

	*err_r = STORAGE_ERR_NONE;
	if (len == 0 || len > MD_MAX_MSG) {
		*err_r = STORAGE_ERR_LIMIT;
		*error_r = xstrdup("message is empty or too large");
		return -1;
	}
	md_to_lf(data, len, &stored, &vsize);
	gettimeofday(&tv, NULL);
	if (internal_date == 0) {
		internal_date = (int64_t)tv.tv_sec;
		tz_minutes = local_tz_minutes(internal_date);
	}
	base = xasprintf("%lld.M%06ldP%ldQ%lu.%s,S=%zu,W=%llu", (long long)tv.tv_sec,
			 (long)tv.tv_usec, (long)getpid(), ++box->st->seq, box->st->host, stored.len,
			 (unsigned long long)vsize);
	tmp_path = xasprintf("%s/%s", box->tmp_dir, base);
	fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("create %s: %s", tmp_path, strerror(errno));
		goto out;
	}
	times[0].tv_sec = tv.tv_sec;
	times[0].tv_nsec = 0;
	times[1].tv_sec = (time_t)internal_date;
	times[1].tv_nsec = 0;
	if (fd_write_full(fd, stored.data, stored.len) < 0 || fsync(fd) < 0 || close(fd) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("write %s: %s", tmp_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
		(void)unlink(tmp_path);
		goto out;
	}
	fd = -1;
	if (md_lock(box, err_r, error_r) < 0) {
		(void)unlink(tmp_path);
		goto out;
	}
	/* The next UID: every UID given by one of our processes is in the
	   uidlist (a record is added under the lock before append() returns),
	   so only a uidlist another process wrote needs reading. Files other
	   tools dropped into new/ or cur/ get their UIDs at the next sync(),
	   after this one: no scan of the folders here (O(messages)). */
	stamp_file(box->uidlist_path, &fs);
	if (!file_stamp_equal(&fs, &box->uidlist_stamp) &&
	    md_sync_locked(box, state, error_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		(void)unlink(tmp_path);
		goto unlock;
	}
	if (box->uidnext == UINT32_MAX || state->uidnext == UINT32_MAX) {
		*err_r = STORAGE_ERR_LIMIT;
		*error_r = xasprintf("%s: out of UIDs", box->dir);
		(void)unlink(tmp_path);
		goto unlock;
	}
	if (box->uidnext < state->uidnext)
		box->uidnext = state->uidnext;
	flags &= MAIL_FLAGS_ALL;
	if (flags == 0 && keywords == 0) {
		name = xstrdup(base);
		dest = xasprintf("%s/%s", box->new_dir, name);
	} else {
		name = md_name_with_flags(box, state, base, strlen(base), NULL, flags, keywords,
					  &kw_changed);
		dest = xasprintf("%s/%s", box->cur_dir, name);
		if (kw_changed && md_kw_write(box, error_r) < 0) {
			*err_r = storage_error_from_errno(errno);
			(void)unlink(tmp_path);
			goto unlock;
		}
	}
	if (rename(tmp_path, dest) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("rename %s: %s", tmp_path, strerror(errno));
		(void)unlink(tmp_path);
		goto unlock;
	}
	linked = true;
	/* mtime is the internal date (as Dovecot reads it). Set only now, so
	   that a tmp/ file always looks as young as it is; nobody scans
	   before we unlock. */
	(void)utimensat(AT_FDCWD, dest, times, 0);
	fsync_dir(flags == 0 && keywords == 0 ? box->new_dir : box->cur_dir);
	f = ftable_add(&box->files);
	f->uid = box->uidnext++;
	f->base = xstrdup(base);
	f->name = name;
	name = NULL;
	f->in_new = flags == 0 && keywords == 0;
	f->vsize = vsize;
	f->date = internal_date;
	f->tz = tz_minutes;
	f->described = true;
	i_zero(&m);
	m.uid = f->uid;
	m.flags = flags;
	m.keywords = keywords;
	m.internal_date = internal_date;
	m.tz_minutes = tz_minutes;
	m.size = vsize;
	m.modseq = state->highest_modseq + 1;
	f->modseq = m.modseq;
	(void)mbox_state_append(state, &m);
	/* The UID is given to the client (APPENDUID) when we return, so its
	   record is durable first: one line added and fdatasync()ed, the
	   message file and its folder having been fsynced above. A crash
	   before that line is on disk happens before we return: the UID was
	   never given, and the file gets the next UID at the next open (the
	   next UID is never lowered, so no UID is reused). A batch of flag
	   changes pending is written with it (a rewrite instead). */
	if (box->dirty || box->rewrite)
		r = uidlist_write(box, state, false, error_r);
	else if ((r = uidlist_append_rec(box, f, error_r)) < 0) {
		/* (gone, or a disk error: one whole write more) */
		free(*error_r);
		*error_r = NULL;
		r = uidlist_write(box, state, false, error_r);
	}
	if (r < 0) {
		/* Without its UID on disk the message would get another one
		   later: take it back. */
		*err_r = storage_error_from_errno(errno);
		(void)unlink(dest);
		mbox_state_remove(state, state->count - 1);
		ftable_remove(&box->files, box->files.count - 1);
		goto unlock;
	}
	*uid_r = m.uid;
	ret = 0;
unlock:
	md_unlock(box);
out:
	(void)linked;
	buf_free(&stored);
	free(base);
	free(tmp_path);
	free(dest);
	free(name);
	return ret;
}

/* Renames the file to its new flags at once: the flag letters are the
   durable record of the flags (Maildir's own). The uidlist, with the
   message's new modseq, is written at the next batch point: sync() (the
   core calls it before every command, and when the watch sees our own
   renames), append(), expunge(), set_uids() or close(). So STORE on n
   messages costs n renames and one uidlist write.

   Crash safety: a modseq is handed out (the core answers the STORE with
   it) only if it is at most the ceiling C of the uidlist on disk; when
   the state's HIGHESTMODSEQ passes the ceiling, the uidlist is written
   now with C = highest + MD_MODSEQ_RESERVE (once per MD_MODSEQ_RESERVE
   changes). Whoever reads the uidlist (a reopen after a crash, another
   opener) starts at or above C, and a file whose flag letters differ from
   its record gets a modseq above that: nothing any client saw is reused,
   and no change is reported below a HIGHESTMODSEQ a client saw.

   If another process rewrote the uidlist since we read it, it is read in
   first and written at once (after the rename, so that the scan sees the
   flags the core just set and does not take them back; idx may be stale
   after that: only the UID is used). */
static int
md_flags_changed(struct storage_box *box, struct mbox_state *state, size_t idx, char **error_r)
{
	enum storage_error err;
	const struct mail_rec *m;
	struct mfile *f;
	char *newname = NULL, *from, *to;
	struct file_stamp fs;
	bool kw_changed = false, others;
	ssize_t fi;
	int ret = 0;

	if (idx >= state->count)
		return 0;
	m = &state->mails[idx];
	fi = ftable_find(&box->files, m->uid);
	if (fi < 0)
		return 0;
	f = &box->files.f[fi];
	if (md_lock(box, &err, error_r) < 0)
		return -1;
	stamp_file(box->uidlist_path, &fs);
	others = !file_stamp_equal(&fs, &box->uidlist_stamp);
	newname = md_name_with_flags(box, state, f->base, strlen(f->base), f->name, m->flags,
				     m->keywords, &kw_changed);
	if (kw_changed && md_kw_write(box, error_r) < 0) {
		ret = -1;
		goto out;
	}
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		if (!f->in_new && strcmp(newname, f->name) == 0)
			break;          /* same name: only the modseq changes */
		from = md_file_path(box, f);
		to = xasprintf("%s/%s", box->cur_dir, newname);
		if (rename(from, to) == 0) {
			free(f->name);
			f->name = newname;
			newname = NULL;
			f->in_new = false;
			free(from);
			free(to);
			break;
		}
		if (errno != ENOENT || attempt == 1 || !md_locate(box, f)) {
			/* gone: the next sync drops it */
			if (errno != ENOENT) {
				*error_r = xasprintf("rename %s: %s", from, strerror(errno));
				ret = -1;
			}
			free(from);
			free(to);
			break;
		}
		free(from);
		free(to);
		/* the info may have changed: rebuild from the found name */
		free(newname);
		newname = md_name_with_flags(box, state, f->base, strlen(f->base), f->name,
					     m->flags, m->keywords, &kw_changed);
		others = true;
	}
	if (ret < 0)
		goto out;
	f->modseq = m->modseq;
	box->dirty = true;
	box->highest = state->highest_modseq;
	box->first_recent = state->first_recent_uid;
	if (others) {
		/* merged and written (dirty) */
		ret = md_sync_locked(box, state, error_r) < 0 ? -1 : 0;
	} else if (state->highest_modseq > box->disk_ceiling) {
		/* the reserve is used up: reserve again (this writes the
		   batch so far too) */
		ret = uidlist_write(box, state, true, error_r);
	} else if (name_letters(f->name) == f->rec_letters) {
		/* Back to the letters its record has (changed twice in one
		   batch): after a crash nothing would tell that it changed,
		   and its old modseq would come back. Written now. */
		ret = uidlist_write(box, state, false, error_r);
	}
out:
	free(newname);
	md_unlock(box);
	return ret;
}

static int
md_expunge(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
	   size_t count, char **error_r)
{
	enum storage_error err;
	uint32_t *gone;
	size_t ngone = 0, out = 0;
	bool removed = false;
	int ret = 0;

	if (count == 0)
		return 0;
	if (md_lock(box, &err, error_r) < 0)
		return -1;
	if (!md_unchanged(box) && md_sync_locked(box, state, error_r) < 0) {
		md_unlock(box);
		return -1;
	}
	gone = xmalloc(count * sizeof(*gone));
	/* One pass over the table, then one over the state. */
	for (size_t i = 0; i < box->files.count; i++) {
		struct mfile *f = &box->files.f[i];

		if (ret == 0 && u32_sorted_contains(uids, count, f->uid)) {
			char *path = md_file_path(box, f);
			bool ok = true;

			if (unlink(path) < 0) {
				if (errno != ENOENT) {
					*error_r = xasprintf("unlink %s: %s", path, strerror(errno));
					ret = -1;
					ok = false;
				} else if (md_locate(box, f)) {
					/* renamed by another tool meanwhile */
					free(path);
					path = md_file_path(box, f);
					(void)unlink(path);
				}
			}
			free(path);
			if (ok) {
				gone[ngone++] = f->uid;
				free(f->base);
				free(f->name);
				removed = true;
				continue;
			}
		}
		box->files.f[out++] = *f;
	}
	box->files.count = out;
	mbox_state_remove_uids(state, gone, ngone);
	free(gone);
	if (removed) {
		fsync_dir(box->cur_dir);
		fsync_dir(box->new_dir);
	}
	/* Written even when nothing was removed: the core raised
	   state->highest_modseq for this expunge before calling. */
	{
		char *werr = NULL;

		if (uidlist_write(box, state, false, &werr) < 0 && ret == 0) {
			*error_r = werr;
			werr = NULL;
			ret = -1;
		}
		free(werr);
	}
	md_unlock(box);
	return ret;
}

static void
md_watch_paths(struct storage_box *box, struct strlist *paths_r)
{
	strlist_add(paths_r, box->new_dir);
	strlist_add(paths_r, box->cur_dir);
}

static int
md_set_uids(struct storage_box *box, struct mbox_state *state, uint32_t uidvalidity,
	    uint32_t uidnext, char **error_r)
{
	enum storage_error err;
	int ret = -1;

	if (md_lock(box, &err, error_r) < 0)
		return -1;
	if (!md_unchanged(box) && md_sync_locked(box, state, error_r) < 0)
		goto out;
	if (uidvalidity != 0 && uidvalidity != box->uidvalidity) {
		if (box->files.count > 0 || box->uidnext > 1 || state->count > 0) {
			*error_r = xasprintf("%s: has held messages; its UIDVALIDITY stays",
					     box->dir);
			goto out;
		}
		box->uidvalidity = uidvalidity;
		state->uidvalidity = uidvalidity;
	}
	if (uidnext == 0 || uidnext < box->uidnext || uidnext < state->uidnext) {
		*error_r = xasprintf("%s: UID %u was already given", box->dir, uidnext);
		goto out;
	}
	box->uidnext = uidnext;
	state->uidnext = uidnext;
	if (state->first_recent_uid < uidnext && state->count == 0)
		state->first_recent_uid = uidnext;
	ret = uidlist_write(box, state, false, error_r);
out:
	md_unlock(box);
	return ret;
}

/* Mailbox management */

static int
md_list(struct storage *st, const char *user, struct strlist *names_r,
	enum storage_error *err_r, char **error_r)
{
	struct dirent *de;
	char *root;
	DIR *d;

	*err_r = STORAGE_ERR_NONE;
	if (md_check_names(user, NULL, err_r, error_r) < 0)
		return -1;
	strlist_add(names_r, "INBOX");
	root = md_root(st, user);
	d = opendir(root);
	if (d == NULL) {
		free(root);
		return 0;
	}
	while ((de = readdir(d)) != NULL && names_r->count < MD_LIST_MAX) {
		char *name, *cur;
		struct stat sb;

		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		cur = xasprintf("%s/%s/cur", root, de->d_name);
		if (stat(cur, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
			free(cur);
			continue;
		}
		free(cur);
		name = xstrdup(de->d_name + 1);
		for (char *p = name; *p != '\0'; p++) {
			if (*p == '.')
				*p = '/';
		}
		if (storage_name_is_valid(name) && ascii_strcasecmp(name, "INBOX") != 0 &&
		    !strlist_contains(names_r, name))
			strlist_add_take(names_r, name);
		else
			free(name);
	}
	closedir(d);
	free(root);
	return 0;
}

/* A name for a private work folder inside Maildir/tmp. */
static char *
md_work_path(struct storage *st, const char *user, const char *what)
{
	return xasprintf("%s/%s/%s/tmp/imapserver-%s.%ld.%lu", st->root, user, MD_DIR, what,
			 (long)getpid(), ++st->seq);
}

static int
md_ensure_root(struct storage *st, const char *user)
{
	char *udir = xasprintf("%s/%s", st->root, user);
	char *root = md_root(st, user);
	int ret = mkdir_ok(udir) == 0 && md_make_maildir(root) == 0 ? 0 : -1;

	free(udir);
	free(root);
	return ret;
}

static int
md_create(struct storage *st, const char *user, const char *name, enum storage_error *err_r,
	  char **error_r)
{
	char *dir, *work, *marker;
	int fd, ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (md_check_names(user, name, err_r, error_r) < 0)
		return -1;
	if (strcmp(name, "INBOX") == 0) {
		*err_r = STORAGE_ERR_EXISTS;
		*error_r = xstrdup("INBOX always exists");
		return -1;
	}
	if (md_ensure_root(st, user) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("create Maildir of %s: %s", user, strerror(errno));
		return -1;
	}
	dir = md_box_dir(st, user, name);
	work = md_work_path(st, user, "new");
	/* Built aside, then renamed into place: never half there. */
	if (md_make_maildir(work) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("create %s: %s", work, strerror(errno));
		goto out;
	}
	marker = xasprintf("%s/maildirfolder", work);
	fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	free(marker);
	if (rename(work, dir) < 0) {
		*err_r = errno == EEXIST || errno == ENOTEMPTY ? STORAGE_ERR_EXISTS :
			storage_error_from_errno(errno);
		*error_r = xasprintf("create %s: %s", dir, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (ret < 0) {
		char *p;

		for (unsigned i = 0; i < 4; i++) {
			static const char *const sub[] = { "cur", "new", "tmp", "maildirfolder" };

			p = xasprintf("%s/%s", work, sub[i]);
			(void)remove(p);
			free(p);
		}
		(void)rmdir(work);
	}
	free(dir);
	free(work);
	return ret;
}

/* Removes dir and what is inside, two levels deep at most (a Maildir
   folder: its files, and the files of cur/, new/, tmp/). */
static void
md_remove_tree(const char *dir, unsigned depth)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	unsigned n = 0;

	if (d != NULL) {
		while ((de = readdir(d)) != NULL && n++ < MD_MAX_FILES) {
			char *p;
			struct stat sb;

			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			p = xasprintf("%s/%s", dir, de->d_name);
			if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
				if (depth < 2)
					md_remove_tree(p, depth + 1);
			} else {
				(void)unlink(p);
			}
			free(p);
		}
		closedir(d);
	}
	(void)rmdir(dir);
}

static int
md_delete(struct storage *st, const char *user, const char *name, enum storage_error *err_r,
	  char **error_r)
{
	char *dir, *work;

	*err_r = STORAGE_ERR_NONE;
	if (md_check_names(user, name, err_r, error_r) < 0)
		return -1;
	if (strcmp(name, "INBOX") == 0) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xstrdup("INBOX cannot be deleted");
		return -1;
	}
	dir = md_box_dir(st, user, name);
	work = md_work_path(st, user, "deleted");
	/* Out of sight first (one rename), then removed. */
	if (rename(dir, work) < 0) {
		*err_r = errno == ENOENT ? STORAGE_ERR_NOT_FOUND : storage_error_from_errno(errno);
		*error_r = xasprintf("delete %s: %s", dir, strerror(errno));
		free(dir);
		free(work);
		return -1;
	}
	md_remove_tree(work, 0);
	free(dir);
	free(work);
	return 0;
}

/* RENAME INBOX: its messages move to a new mailbox; INBOX stays, empty. */
static int
md_rename_inbox(struct storage *st, const char *user, const char *newname,
		enum storage_error *err_r, char **error_r)
{
	char *inbox = md_root(st, user), *dir = md_box_dir(st, user, newname);
	int ret = -1;

	if (md_create(st, user, newname, err_r, error_r) < 0)
		goto out;
	for (unsigned s = 0; s < 2; s++) {
		const char *sub = s == 0 ? "cur" : "new";
		char *from_dir = xasprintf("%s/%s", inbox, sub);
		struct dirent *de;
		DIR *d = opendir(from_dir);
		unsigned n = 0;

		while (d != NULL && (de = readdir(d)) != NULL && n++ < MD_MAX_FILES) {
			char *from, *to;

			if (de->d_name[0] == '.')
				continue;
			from = xasprintf("%s/%s", from_dir, de->d_name);
			to = xasprintf("%s/%s/%s", dir, sub, de->d_name);
			(void)rename(from, to);
			free(from);
			free(to);
		}
		if (d != NULL)
			closedir(d);
		free(from_dir);
	}
	{
		/* keyword letters go along with the files */
		char *from = xasprintf("%s/%s", inbox, MD_KEYWORDS);
		char *to = xasprintf("%s/%s", dir, MD_KEYWORDS);
		char *data = NULL;
		size_t len;

		if (file_read_small(from, 64 * 1024, &data, &len, NULL) > 0) {
			char *tmp = xasprintf("%s.tmp", to);

			(void)file_replace(tmp, to, data, len - 1);
			free(tmp);
		}
		free(data);
		free(from);
		free(to);
	}
	ret = 0;
out:
	free(inbox);
	free(dir);
	return ret;
}

static int
md_rename(struct storage *st, const char *user, const char *oldname, const char *newname,
	  enum storage_error *err_r, char **error_r)
{
	char *olddir = NULL, *newdir = NULL, *root = NULL, *oldprefix = NULL;
	size_t oldlen = strlen(oldname);
	struct stat sb;
	DIR *d;
	int ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (md_check_names(user, oldname, err_r, error_r) < 0 ||
	    md_check_names(user, newname, err_r, error_r) < 0)
		return -1;
	if (strcmp(newname, "INBOX") == 0) {
		*err_r = STORAGE_ERR_EXISTS;
		*error_r = xstrdup("INBOX exists");
		return -1;
	}
	if (strcmp(oldname, "INBOX") == 0)
		return md_rename_inbox(st, user, newname, err_r, error_r);
	if (strncmp(newname, oldname, oldlen) == 0 && newname[oldlen] == '/') {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xstrdup("cannot rename a mailbox into itself");
		return -1;
	}
	olddir = md_box_dir(st, user, oldname);
	newdir = md_box_dir(st, user, newname);
	if (lstat(newdir, &sb) == 0) {
		*err_r = STORAGE_ERR_EXISTS;
		*error_r = xasprintf("%s exists", newname);
		goto out;
	}
	if (rename(olddir, newdir) < 0) {
		*err_r = errno == ENOENT ? STORAGE_ERR_NOT_FOUND : storage_error_from_errno(errno);
		*error_r = xasprintf("rename %s: %s", olddir, strerror(errno));
		goto out;
	}
	/* Inferiors move too (RFC 3501 RENAME): .old.x -> .new.x */
	root = md_root(st, user);
	oldprefix = xasprintf("%s.", strrchr(olddir, '/') + 1);
	d = opendir(root);
	if (d != NULL) {
		struct strlist kids = { 0 };
		struct dirent *de;

		while ((de = readdir(d)) != NULL && kids.count < MD_LIST_MAX) {
			if (strncmp(de->d_name, oldprefix, strlen(oldprefix)) == 0)
				strlist_add(&kids, de->d_name);
		}
		closedir(d);
		for (size_t i = 0; i < kids.count; i++) {
			char *from = xasprintf("%s/%s", root, kids.items[i]);
			char *to = xasprintf("%s.%s", newdir, kids.items[i] + strlen(oldprefix));

			if (lstat(to, &sb) < 0)
				(void)rename(from, to);
			free(from);
			free(to);
		}
		strlist_clear(&kids);
	}
	ret = 0;
out:
	free(olddir);
	free(newdir);
	free(root);
	free(oldprefix);
	return ret;
}

static char *
md_subs_path(struct storage *st, const char *user)
{
	return xasprintf("%s/%s/%s/%s", st->root, user, MD_DIR, MD_SUBS);
}

static int
md_subscriptions_read(struct storage *st, const char *user, struct strlist *names_r,
		      char **error_r)
{
	enum storage_error err;
	char *path, *data = NULL, *line, *save = NULL;
	size_t len;
	int r;

	if (md_check_names(user, NULL, &err, error_r) < 0)
		return -1;
	path = md_subs_path(st, user);
	r = file_read_small(path, 16 * 1024 * 1024, &data, &len, NULL);
	if (r < 0) {
		*error_r = xasprintf("read %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	if (r == 0)
		return 0;
	for (line = strtok_r(data, "\r\n", &save); line != NULL && names_r->count < MD_LIST_MAX;
	     line = strtok_r(NULL, "\r\n", &save)) {
		/* Dovecot 2.x writes a "V\t2" header line and tab-separated
		   levels; plain lines are names. */
		if (strncmp(line, "V\t", 2) == 0)
			continue;
		for (char *p = line; *p != '\0'; p++) {
			if (*p == '\t')
				*p = '/';
		}
		if (storage_name_is_valid(line) && !strlist_contains(names_r, line))
			strlist_add(names_r, line);
	}
	free(data);
	return 0;
}

static int
md_subscriptions_write(struct storage *st, const char *user, const struct strlist *names,
		       char **error_r)
{
	enum storage_error err;
	struct buf b = BUF_INIT;
	char *path, *tmp;
	int ret = -1;

	if (md_check_names(user, NULL, &err, error_r) < 0)
		return -1;
	for (size_t i = 0; i < names->count; i++) {
		if (!storage_name_is_valid(names->items[i]))
			continue;
		buf_append_str(&b, names->items[i]);
		buf_append_c(&b, '\n');
	}
	if (md_ensure_root(st, user) < 0) {
		*error_r = xasprintf("create Maildir of %s: %s", user, strerror(errno));
		buf_free(&b);
		return -1;
	}
	path = md_subs_path(st, user);
	tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	if (file_replace(tmp, path, b.data != NULL ? b.data : "", b.len) < 0)
		*error_r = xasprintf("write %s: %s", path, strerror(errno));
	else
		ret = 0;
	buf_free(&b);
	free(tmp);
	free(path);
	return ret;
}

const struct storage_backend storage_backend_maildir = {
	.name = "maildir",
	.compiled_in = true,
	.init = md_init,
	.deinit = md_deinit,
	.list = md_list,
	.create = md_create,
	.delete = md_delete,
	.rename = md_rename,
	.subscriptions_read = md_subscriptions_read,
	.subscriptions_write = md_subscriptions_write,
	.open = md_open,
	.close = md_close,
	.sync = md_sync,
	.read = md_read,
	.append = md_append,
	.flags_changed = md_flags_changed,
	.expunge = md_expunge,
	.watch_paths = md_watch_paths,
	.set_uids = md_set_uids,
};
