/* passwd_file.c: the users-file auth backend ("passwd-file").

   The whole file is read into a sorted array (user name, password) and
   looked up with bsearch(). Each verify() stat()s the file and re-reads it
   when its identity changed (device, inode, size, mtime, ctime), so an
   edited file takes effect at the next login without a restart; when
   nothing changed this costs one stat().

   Bad lines are skipped with a warning naming file:line (never a
   password): the rest of the file still works, so one typo does not lock
   every user out. A file that vanishes or cannot be read after start-up
   gives AUTH_TEMPFAIL, never a login with stale data.

   Every check does the same work whether the user exists or not, and
   whatever kind of password they have: one constant-time comparison
   with a plain-text password (the user's, or a dummy one) and, when the
   file holds any hash, one crypt_r() (the user's hash, or the file's
   first hash as a dummy). So a wrong password takes as long for a known
   plain-text user as for an unknown name; in a file that mixes the two
   kinds every user pays for both. (Hashes of different methods or costs
   in one file still differ in time: keep one method per file.)

   Hashes are checked with crypt_r() in a job (core/io/job.h), outside
   the loop: a $y$ check costs tens of milliseconds at the default cost
   (80 ms on a small machine), time in which every other session would
   wait. The file is read and the user looked up in the loop (a stat()
   when the file did not change); only crypt_r() runs in the worker, on
   copies of the password and the hash, with a crypt_data of its own.
   Without a job queue (tools, tests) the check runs at once, and its
   answer still comes from the loop. */
#include "passwd_file.h"
#include "event.h"
#include "job.h"
#include "log.h"
#include "username.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longer lines are skipped: no user name or password is that long. */
#define PASSWD_LINE_MAX 4096
#define PASSWD_WS " \t\r\v\f"

struct passwd_entry {
	char *user;
	char *password;         /* plain text, or a crypt(3) hash if it starts with '$' */
	unsigned line;
};

struct passwd_table {
	struct passwd_entry *entries;   /* sorted by user, no duplicates */
	size_t count, alloc;
	/* A hash from the file, used as the setting of a throw-away crypt_r()
	   for unknown users and plain-text users so that every check costs
	   the same. Points into entries; NULL if the file has no hashes. */
	const char *dummy_hash;
};

struct passwd_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct auth {
	char *path;
	struct passwd_table table;
	struct passwd_file_id id;
	struct crypt_data *crypt;       /* big (tens of KB): allocated once */
	/* The work done so far (see passwd_file_work_counts()). */
	unsigned crypt_count, plain_count;
};

/* What an unknown user's or a hashed user's password is compared with in
   plain text, so that the comparison is always made; the result is never
   used. */
static const char passwd_dummy_plain[] = "-unused-dummy-password-";

static void
passwd_entry_free(struct passwd_entry *entry)
{
	if (entry->password != NULL) {
		explicit_bzero(entry->password, strlen(entry->password));
		free(entry->password);
		entry->password = NULL;
	}
	free(entry->user);
	entry->user = NULL;
}

static void
passwd_table_clear(struct passwd_table *table)
{
	for (size_t i = 0; i < table->count; i++)
		passwd_entry_free(&table->entries[i]);
	free(table->entries);
	i_zero(table);
}

static int
passwd_entry_cmp(const void *a, const void *b)
{
	const struct passwd_entry *ea = a, *eb = b;
	int ret = strcmp(ea->user, eb->user);

	if (ret != 0)
		return ret;
	return ea->line < eb->line ? -1 : ea->line > eb->line ? 1 : 0;
}

static int
passwd_entry_find_cmp(const void *key, const void *elem)
{
	const struct passwd_entry *entry = elem;

	return strcmp(key, entry->user);
}

/* true if the hash is one crypt_r() can check. */
static bool
passwd_hash_is_usable(const char *hash)
{
	int ret = crypt_checksalt(hash);

	return ret == CRYPT_SALT_OK || ret == CRYPT_SALT_METHOD_LEGACY;
}

/* Parses one line (NUL-terminated, len octets before the NUL) into the
   table. Logs and skips a bad line. */
static void
passwd_parse_line(const char *path, unsigned lineno, char *line, size_t len,
		  struct passwd_table *table)
{
	char *fields[3], *p = line, *save = NULL;
	unsigned nfields = 0;

	if (memchr(line, '\0', len) != NULL) {
		log_warn("-", "%s:%u: NUL byte in line, skipped", path, lineno);
		return;
	}
	p += strspn(p, PASSWD_WS "\n");
	if (*p == '\0' || *p == '#')
		return;
	for (char *tok = strtok_r(p, PASSWD_WS "\n", &save); tok != NULL;
	     tok = strtok_r(NULL, PASSWD_WS "\n", &save)) {
		if (nfields == N_ELEMENTS(fields))
			break;
		fields[nfields++] = tok;
	}
	if (nfields != 2) {
		log_warn("-", "%s:%u: expected 'username password', found %s field%s; skipped",
			 path, lineno, nfields == 1 ? "one" : "more than two",
			 nfields == 1 ? "" : "s");
		return;
	}
	if (!username_is_valid(fields[0])) {
		log_warn("-", "%s:%u: invalid user name; skipped", path, lineno);
		return;
	}
	if (fields[1][0] == '$' && !passwd_hash_is_usable(fields[1])) {
		log_warn("-", "%s:%u: unsupported or malformed password hash for '%s'; skipped",
			 path, lineno, fields[0]);
		return;
	}
	xgrow(&table->entries, &table->alloc, table->count + 1, sizeof(table->entries[0]));
	table->entries[table->count].user = xstrdup(fields[0]);
	table->entries[table->count].password = xstrdup(fields[1]);
	table->entries[table->count].line = lineno;
	table->count++;
}

/* Sorts the table and drops later duplicates of a user (the first line
   wins), with a warning each. */
static void
passwd_table_finish(const char *path, struct passwd_table *table)
{
	size_t out = 0;

	if (table->count > 1)
		qsort(table->entries, table->count, sizeof(table->entries[0]), passwd_entry_cmp);
	for (size_t i = 0; i < table->count; i++) {
		if (out > 0 && strcmp(table->entries[out - 1].user, table->entries[i].user) == 0) {
			log_warn("-", "%s:%u: duplicate user '%s' (first at line %u); skipped",
				 path, table->entries[i].line, table->entries[i].user,
				 table->entries[out - 1].line);
			passwd_entry_free(&table->entries[i]);
			continue;
		}
		table->entries[out++] = table->entries[i];
	}
	table->count = out;
	table->dummy_hash = NULL;
	for (size_t i = 0; i < table->count; i++) {
		if (table->entries[i].password[0] == '$') {
			table->dummy_hash = table->entries[i].password;
			break;
		}
	}
}

static void
passwd_file_id_from_stat(const struct stat *st, struct passwd_file_id *id_r)
{
	i_zero(id_r);
	id_r->dev = st->st_dev;
	id_r->ino = st->st_ino;
	id_r->size = st->st_size;
	id_r->mtime = st->st_mtim;
	id_r->ctime = st->st_ctim;
}

static bool
passwd_file_id_equal(const struct passwd_file_id *a, const struct passwd_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Reads path into *table_r (empty on entry) and its identity into *id_r. */
static int
passwd_file_read(const char *path, struct passwd_table *table_r, struct passwd_file_id *id_r,
		 char **error_r)
{
	struct stat st;
	char *line = NULL;
	size_t line_alloc = 0;
	unsigned lineno = 0;
	ssize_t len;
	FILE *fp;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*error_r = xasprintf("cannot open users file %s: %s", path, strerror(errno));
		return -1;
	}
	/* The identity of what we read, not of what path names later. */
	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("fstat(%s) failed: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = xasprintf("users file %s is not a regular file", path);
		close(fd);
		return -1;
	}
	fp = fdopen(fd, "r");
	if (fp == NULL) {
		*error_r = xasprintf("fdopen(%s) failed: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	while ((len = getline(&line, &line_alloc, fp)) >= 0) {
		if (lineno < UINT_MAX)
			lineno++;
		if ((size_t)len > PASSWD_LINE_MAX) {
			log_warn("-", "%s:%u: line longer than %d octets; skipped", path, lineno,
				 PASSWD_LINE_MAX);
		} else {
			passwd_parse_line(path, lineno, line, (size_t)len, table_r);
		}
		/* The line may hold a password. */
		explicit_bzero(line, line_alloc);
	}
	if (ferror(fp)) {
		*error_r = xasprintf("read(%s) failed: %s", path, strerror(errno));
		free(line);
		fclose(fp);
		passwd_table_clear(table_r);
		return -1;
	}
	free(line);
	fclose(fp);
	passwd_table_finish(path, table_r);
	passwd_file_id_from_stat(&st, id_r);
	return 0;
}

/* Re-reads the file if it changed since the last read. */
static int
passwd_file_refresh(struct auth *auth, char **error_r)
{
	struct passwd_table table;
	struct passwd_file_id id;
	struct stat st;

	if (stat(auth->path, &st) < 0) {
		*error_r = xasprintf("stat(%s) failed: %s", auth->path, strerror(errno));
		return -1;
	}
	passwd_file_id_from_stat(&st, &id);
	if (passwd_file_id_equal(&id, &auth->id))
		return 0;

	i_zero(&table);
	if (passwd_file_read(auth->path, &table, &id, error_r) < 0)
		return -1;
	passwd_table_clear(&auth->table);
	auth->table = table;
	auth->id = id;
	log_info("-", "passwd-file: re-read %s (%zu user%s)", auth->path, auth->table.count,
		 auth->table.count == 1 ? "" : "s");
	return 0;
}

static void passwd_file_deinit(struct auth **authp);

static int
passwd_file_init(const struct auth_settings *set, struct auth **auth_r, char **error_r)
{
	struct auth *auth;

	*auth_r = NULL;
	if (set == NULL || set->file == NULL || set->file[0] == '\0') {
		*error_r = xstrdup("passwd-file: auth.file is not set");
		return -1;
	}
	auth = xcalloc(1, sizeof(*auth));
	auth->path = xstrdup(set->file);
	auth->crypt = xcalloc(1, sizeof(*auth->crypt));
	if (passwd_file_read(auth->path, &auth->table, &auth->id, error_r) < 0) {
		passwd_file_deinit(&auth);
		return -1;
	}
	*auth_r = auth;
	return 0;
}

static void
passwd_file_deinit(struct auth **authp)
{
	struct auth *auth = *authp;

	if (auth == NULL)
		return;
	*authp = NULL;
	passwd_table_clear(&auth->table);
	if (auth->crypt != NULL) {
		explicit_bzero(auth->crypt, sizeof(*auth->crypt));
		free(auth->crypt);
	}
	free(auth->path);
	free(auth);
}

/* Checks password against a crypt(3) hash. */
static bool
passwd_hash_matches(struct auth *auth, const char *password, const char *hash)
{
	const char *out;
	bool ok;

	auth->crypt_count++;
	out = crypt_r(password, hash, auth->crypt);
	/* libxcrypt returns NULL or a "*..." failure token on error; a
	   failure token never equals a hash that starts with '$'. */
	ok = out != NULL && out[0] == '$' && auth_str_equal_ct(out, hash);
	/* The structure holds the password and derived material. */
	explicit_bzero(auth->crypt, sizeof(*auth->crypt));
	return ok;
}

/* Compares password with a plain-text one in constant time (the time
   depends on the length of password only). */
static bool
passwd_plain_matches(struct auth *auth, const char *password, const char *plain)
{
	auth->plain_count++;
	return auth_str_equal_ct(password, plain);
}

void
passwd_file_work_counts(const struct auth *auth, unsigned *crypts_r, unsigned *plains_r)
{
	*crypts_r = auth->crypt_count;
	*plains_r = auth->plain_count;
}

static enum auth_result
passwd_file_verify(struct auth *auth, const char *user, const char *password, char **reason_r)
{
	const struct passwd_entry *entry;
	const char *plain = passwd_dummy_plain, *hash = auth->table.dummy_hash;
	bool plain_ok, hash_ok = false;
	char *error;

	if (passwd_file_refresh(auth, &error) < 0) {
		*reason_r = error;
		return AUTH_TEMPFAIL;
	}
	entry = auth->table.count == 0 ? NULL :
		bsearch(user, auth->table.entries, auth->table.count, sizeof(*entry),
			passwd_entry_find_cmp);
	if (entry != NULL && entry->password[0] == '$')
		hash = entry->password;
	else if (entry != NULL)
		plain = entry->password;
	/* Both checks, always (see the top of the file): the answer time
	   tells neither whether the user exists nor how the password is
	   stored. */
	plain_ok = passwd_plain_matches(auth, password, plain);
	if (hash != NULL)
		hash_ok = passwd_hash_matches(auth, password, hash);
	if (entry == NULL) {
		*reason_r = xstrdup("unknown user");
		return AUTH_FAIL;
	}
	if (!(entry->password[0] == '$' ? hash_ok : plain_ok)) {
		*reason_r = xstrdup("wrong password");
		return AUTH_FAIL;
	}
	return AUTH_OK;
}

static int
passwd_file_user_exists(struct auth *auth, const char *user, char **error_r)
{
	if (passwd_file_refresh(auth, error_r) < 0)
		return -1;
	if (auth->table.count == 0)
		return 0;
	return bsearch(user, auth->table.entries, auth->table.count,
		       sizeof(auth->table.entries[0]), passwd_entry_find_cmp) != NULL ? 1 : 0;
}

/* A check under way (verify_start). It holds copies of what the
   worker needs and nothing of the backend instance, which a reload may
   free meanwhile. Cancelled, it is freed when its job ends. */
struct passwd_check {
	char *password, *hash;     /* copies, wiped before they are freed */
	size_t password_len;
	struct crypt_data *crypt;  /* the worker's own */
	bool known, hashed;        /* the user is in the file; with a hash */
	bool plain_ok, hash_ok;
	bool cancelled;
	enum auth_result result;   /* when answered without crypt_r() */
	char *reason;
	struct job *job;
	struct event_timer *timer;
	auth_backend_done *done;
	void *ctx;
};

static void
passwd_check_free(struct passwd_check *check)
{
	if (check->password != NULL)
		explicit_bzero(check->password, check->password_len);
	free(check->password);
	free(check->hash);
	if (check->crypt != NULL) {
		explicit_bzero(check->crypt, sizeof(*check->crypt));
		free(check->crypt);
	}
	free(check->reason);
	free(check);
}

/* In the worker: the crypt_r() of the check, on its own copies. */
static void
passwd_check_work(void *context)
{
	struct passwd_check *check = context;
	const char *out = crypt_r(check->password, check->hash, check->crypt);

	check->hash_ok = out != NULL && out[0] == '$' && auth_str_equal_ct(out, check->hash);
	explicit_bzero(check->crypt, sizeof(*check->crypt));
}

/* In the loop: the result from what the checks found (as verify()). */
static void
passwd_check_answer(struct passwd_check *check)
{
	enum auth_result result = check->result;
	char *reason = check->reason;

	check->reason = NULL;
	if (result == AUTH_OK) {
		if (!check->known) {
			result = AUTH_FAIL;
			reason = xstrdup("unknown user");
		} else if (!(check->hashed ? check->hash_ok : check->plain_ok)) {
			result = AUTH_FAIL;
			reason = xstrdup("wrong password");
		}
	}
	check->done(result, reason, check->ctx);
	passwd_check_free(check);
}

static void
passwd_check_job_done(void *context, bool ran)
{
	struct passwd_check *check = context;

	check->job = NULL;
	if (check->cancelled) {
		passwd_check_free(check);
		return;
	}
	if (!ran) {
		/* The server is stopping. */
		check->result = AUTH_TEMPFAIL;
		check->reason = xstrdup("the server is shutting down");
	}
	passwd_check_answer(check);
}

static void
passwd_check_timer(void *context)
{
	struct passwd_check *check = context;

	check->timer = NULL;
	passwd_check_answer(check);
}

static int
passwd_file_verify_start(struct auth *auth, struct event_loop *loop, const char *user,
			 const char *password, auth_backend_done *done, void *ctx,
			 void **handle_r)
{
	struct passwd_check *check = xcalloc(1, sizeof(*check));
	const struct passwd_entry *entry = NULL;
	const char *plain = passwd_dummy_plain, *hash;
	struct job_queue *queue = job_queue_default();
	char *error;

	check->done = done;
	check->ctx = ctx;
	check->result = AUTH_OK;
	if (passwd_file_refresh(auth, &error) < 0) {
		check->result = AUTH_TEMPFAIL;
		check->reason = error;
	} else {
		entry = auth->table.count == 0 ? NULL :
			bsearch(user, auth->table.entries, auth->table.count, sizeof(*entry),
				passwd_entry_find_cmp);
		hash = auth->table.dummy_hash;
		if (entry != NULL && entry->password[0] == '$')
			hash = entry->password;
		else if (entry != NULL)
			plain = entry->password;
		check->known = entry != NULL;
		check->hashed = entry != NULL && entry->password[0] == '$';
		/* Both checks, always, as in verify(). */
		check->plain_ok = passwd_plain_matches(auth, password, plain);
		if (hash != NULL) {
			auth->crypt_count++;
			check->password_len = strlen(password);
			check->password = xstrdup(password);
			check->hash = xstrdup(hash);
			check->crypt = xcalloc(1, sizeof(*check->crypt));
		}
	}
	if (check->hash != NULL && queue != NULL) {
		check->job = job_submit(queue, passwd_check_work, passwd_check_job_done, check);
	} else {
		if (check->hash != NULL)
			passwd_check_work(check);
		check->timer = event_timer_add(loop, 0, passwd_check_timer, check);
	}
	*handle_r = check;
	return 0;
}

static void
passwd_file_verify_cancel(struct auth *auth ATTR_UNUSED, void *handle)
{
	struct passwd_check *check = handle;

	if (check->job != NULL) {
		/* Its worker may be running: never wait for it in the loop;
		   the check is freed when its job ends. */
		check->cancelled = true;
		return;
	}
	event_timer_remove(&check->timer);
	passwd_check_free(check);
}

const struct auth_backend auth_backend_passwd_file = {
	.name = "passwd-file",
	.compiled_in = true,
	.init = passwd_file_init,
	.deinit = passwd_file_deinit,
	.verify = passwd_file_verify,
	.verify_start = passwd_file_verify_start,
	.verify_cancel = passwd_file_verify_cancel,
	.user_exists = passwd_file_user_exists,
};
