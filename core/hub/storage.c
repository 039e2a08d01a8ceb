/* storage.c: the mbox_state helpers shared by every storage backend, the
   core wrappers around backend calls, and the name rules. */
#include "storage.h"
#include "job.h"
#include "log.h"
#include "username.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int64_t storage_lock_wait_ms = 10000;
size_t storage_map_min_count = 2048;

/* The record layout a mapped index relies on (mbox_state_map()). */
_Static_assert(sizeof(struct mail_rec) == MAIL_REC_SIZE, "mail_rec size");
_Static_assert(offsetof(struct mail_rec, uid) == 0, "mail_rec.uid");
_Static_assert(offsetof(struct mail_rec, flags) == 4, "mail_rec.flags");
_Static_assert(offsetof(struct mail_rec, keywords) == 8, "mail_rec.keywords");
_Static_assert(offsetof(struct mail_rec, internal_date) == 16, "mail_rec.internal_date");
_Static_assert(offsetof(struct mail_rec, tz_minutes) == 24, "mail_rec.tz_minutes");
_Static_assert(offsetof(struct mail_rec, size) == 32, "mail_rec.size");
_Static_assert(offsetof(struct mail_rec, modseq) == 40, "mail_rec.modseq");
_Static_assert(offsetof(struct mail_rec, priv) == 48, "mail_rec.priv");

void
mbox_state_init(struct mbox_state *state)
{
	i_zero(state);
	state->uidnext = 1;
	state->first_recent_uid = 1;
	state->map_fd = -1;
}

/* Gives up the mapping: the array moves to the heap when keep (count
   records copied), else it is dropped. The lock goes with map_fd. */
static void
mbox_state_unmap(struct mbox_state *state, bool keep)
{
	struct mail_rec *heap = NULL;
	size_t alloc = 0;

	if (!state->mapped)
		return;
	if (keep) {
		alloc = state->count < 16 ? 16 : state->count * 2;
		heap = xmalloc(alloc * sizeof(*heap));
		memcpy(heap, state->mails, state->count * sizeof(*heap));
	}
	(void)munmap(state->mails, state->map_size);
	if (state->map_fd >= 0)
		close(state->map_fd);
	state->map_fd = -1;
	state->map_size = 0;
	state->mapped = false;
	state->mails = heap;
	state->alloc = alloc;
}

static void
mbox_state_free_keywords(struct mbox_state *state)
{
	for (unsigned i = 0; i < state->keyword_count && i < MBOX_MAX_KEYWORDS; i++) {
		free(state->keywords[i]);
		state->keywords[i] = NULL;
	}
	state->keyword_count = 0;
}

void
mbox_state_deinit(struct mbox_state *state)
{
	mbox_state_free_keywords(state);
	if (state->mapped)
		mbox_state_unmap(state, false);
	else
		free(state->mails);
	state->mails = NULL;
	state->count = state->alloc = 0;
}

void
mbox_state_reserve(struct mbox_state *state, size_t count)
{
	if (count <= state->alloc)
		return;
	if (state->mapped)
		mbox_state_unmap(state, true);
	xgrow(&state->mails, &state->alloc, count, sizeof(*state->mails));
}

/* The OFD lock of mbox_state_map(): the whole file, shared or exclusive. */
static int
mbox_map_lock(int fd, short type)
{
	struct flock fl;

	i_zero(&fl);
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	return fcntl(fd, F_OFD_SETLK, &fl);
}

/* Address space for twice the records (at least 64 KB more) is reserved
   as private anonymous memory, and the file's pages are mapped over its
   start: appends up to the reserve cost no copy, and the pages past the
   file are ordinary memory (no fault past the end of the file). */
int
mbox_state_map(struct mbox_state *state, int fd, uint64_t off, size_t count, char **error_r)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t bytes, file_bytes, reserve;
	void *base, *p;
	int lock_fd;

	if (state->mapped || state->count != 0 || count == 0 || page == 0 || off % page != 0 ||
	    count > SIZE_MAX / 4 / MAIL_REC_SIZE) {
		*error_r = xstrdup("cannot map: bad arguments");
		return -1;
	}
	bytes = count * MAIL_REC_SIZE;
	file_bytes = (bytes + page - 1) / page * page;
	reserve = bytes * 2 < bytes + 65536 ? bytes + 65536 : bytes * 2;
	reserve = (reserve + page - 1) / page * page;
	lock_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (lock_fd < 0) {
		*error_r = xasprintf("dup: %s", strerror(errno));
		return -1;
	}
	/* Locked first: what is mapped after this is what stays. */
	if (mbox_map_lock(lock_fd, F_RDLCK) < 0) {
		*error_r = xasprintf("read lock: %s", strerror(errno));
		close(lock_fd);
		return -1;
	}
	base = mmap(NULL, reserve, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		*error_r = xasprintf("mmap: %s", strerror(errno));
		close(lock_fd);
		return -1;
	}
	p = mmap(base, file_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd,
		 (off_t)off);
	if (p == MAP_FAILED) {
		*error_r = xasprintf("mmap: %s", strerror(errno));
		(void)munmap(base, reserve);
		close(lock_fd);
		return -1;
	}
	free(state->mails);
	state->mails = base;
	state->count = count;
	state->alloc = reserve / MAIL_REC_SIZE;
	state->mapped = true;
	state->map_fd = lock_fd;
	state->map_size = reserve;
	return 0;
}

bool
mbox_map_read_lock(int fd)
{
	return mbox_map_lock(fd, F_RDLCK) == 0;
}

bool
mbox_map_write_begin(int fd)
{
	return mbox_map_lock(fd, F_WRLCK) == 0;
}

void
mbox_map_write_end(int fd, bool mapped_here)
{
	(void)mbox_map_lock(fd, mapped_here ? F_RDLCK : F_UNLCK);
}

/* Tells the hook that messages from idx on are about to go. */
static void
mbox_state_before_remove(struct mbox_state *state, size_t idx)
{
	if (state->before_remove != NULL)
		state->before_remove(state->before_remove_ctx, idx);
}

/* Drops messages and keywords and restarts uidnext and first_recent_uid
   at 1; uidvalidity and highest_modseq are left for the caller to set to
   the new lineage's values. Counts as an expunge for the sessions (their
   sequence maps are void). */
void
mbox_state_clear(struct mbox_state *state)
{
	mbox_state_free_keywords(state);
	if (state->count > 0)
		mbox_state_before_remove(state, 0);
	state->count = 0;
	state->uidnext = 1;
	state->first_recent_uid = 1;
	state->recent_taken = 0;
	state->seen_below = 0;
	state->expunge_gen++;
}

struct mail_rec *
mbox_state_append(struct mbox_state *state, const struct mail_rec *rec)
{
	struct mail_rec *r;

	mbox_state_reserve(state, state->count + 1);
	r = &state->mails[state->count++];
	*r = *rec;
	if (rec->uid >= state->uidnext)
		state->uidnext = rec->uid == UINT32_MAX ? UINT32_MAX : rec->uid + 1;
	if (rec->modseq > state->highest_modseq)
		state->highest_modseq = rec->modseq;
	return r;
}

/* Bumps expunge_gen: expunge_gen counts removals only (the core compares
   it to notice expunges; appends are seen through uidnext/count). */
void
mbox_state_remove(struct mbox_state *state, size_t idx)
{
	if (idx >= state->count)
		return;
	mbox_state_before_remove(state, idx);
	memmove(&state->mails[idx], &state->mails[idx + 1],
		(state->count - idx - 1) * sizeof(*state->mails));
	state->count--;
	state->expunge_gen++;
}

/* A merge of two ascending lists: state->mails (by uid) and uids. A list
   that is not ascending (a caller's bug) is sorted in a copy first, so
   the result is right whatever the order. */
void
mbox_state_remove_uids(struct mbox_state *state, const uint32_t *uids, size_t count)
{
	uint32_t *sorted = NULL;
	size_t i, j = 0, out = 0;

	if (count == 0 || state->count == 0)
		return;
	for (i = 1; i < count; i++) {
		if (uids[i] < uids[i - 1])
			break;
	}
	if (i < count) {
		sorted = xmalloc(count * sizeof(*sorted));
		memcpy(sorted, uids, count * sizeof(*sorted));
		qsort(sorted, count, sizeof(*sorted), u32_cmp);
		uids = sorted;
	}
	for (i = 0; i < state->count; i++) {
		uint32_t uid = state->mails[i].uid;

		while (j < count && uids[j] < uid)
			j++;
		if (j < count && uids[j] == uid) {
			/* nothing is written before the first removal */
			if (out == i)
				mbox_state_before_remove(state, i);
			continue;
		}
		if (out != i)
			state->mails[out] = state->mails[i];
		out++;
	}
	free(sorted);
	if (out != state->count) {
		state->count = out;
		state->expunge_gen++;
	}
}

ssize_t
mbox_state_find(const struct mbox_state *state, uint32_t uid)
{
	size_t lo = 0, hi = state->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t m = state->mails[mid].uid;

		if (m == uid)
			return (ssize_t)mid;
		if (m < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

bool
mbox_state_set_flags(struct mbox_state *state, size_t idx, uint8_t flags, uint64_t keywords)
{
	struct mail_rec *r;

	if (idx >= state->count)
		return false;
	r = &state->mails[idx];
	flags &= MAIL_FLAGS_ALL;
	if (r->flags == flags && r->keywords == keywords)
		return false;
	r->flags = flags;
	r->keywords = keywords;
	r->modseq = ++state->highest_modseq;
	mbox_state_flags_written(state, idx);
	return true;
}

void
mbox_state_flags_written(struct mbox_state *state, size_t idx)
{
	const struct mail_rec *r = &state->mails[idx];

	if ((r->flags & MAIL_SEEN) == 0 && r->uid < state->seen_below)
		state->seen_below = r->uid;
}

void
storage_flag_change_apply(const struct storage_flag_change *change, uint8_t *flags,
			  uint64_t *keywords)
{
	*flags = (uint8_t)(((*flags & ~change->flags_clear) | change->flags_set) & MAIL_FLAGS_ALL);
	*keywords = (*keywords & ~change->keywords_clear) | change->keywords_set;
}

int
mbox_state_keyword(struct mbox_state *state, const char *name, bool add)
{
	for (unsigned i = 0; i < state->keyword_count && i < MBOX_MAX_KEYWORDS; i++) {
		if (ascii_strcasecmp(state->keywords[i], name) == 0)
			return (int)i;
	}
	if (!add || state->keyword_count >= MBOX_MAX_KEYWORDS || name[0] == '\0')
		return -1;
	state->keywords[state->keyword_count] = xstrdup(name);
	return (int)state->keyword_count++;
}

/* Name rules */

int
storage_root_prepare(const char *backend, const struct storage_settings *set, char **root_r,
		      char **error_r)
{
	char *root;
	size_t len;

	if (set == NULL || set->root == NULL || set->root[0] == '\0') {
		*error_r = xasprintf("%s: storage.root is not set", backend);
		return -1;
	}
	root = xstrdup(set->root);
	len = strlen(root);
	while (len > 1 && root[len - 1] == '/')
		root[--len] = '\0';
	/* mkdir -p: each missing level from the top down. */
	for (char *p = root + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(root, 0700) < 0 && errno != EEXIST) {
			*error_r = xasprintf("%s: cannot create %s: %s", backend, root,
					     strerror(errno));
			free(root);
			return -1;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	struct stat st;
	if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*error_r = xasprintf("%s: %s is not a folder", backend, root);
		free(root);
		return -1;
	}
	*root_r = root;
	return 0;
}

bool
storage_name_is_valid(const char *name)
{
	size_t len, comp = 0;

	if (name == NULL)
		return false;
	len = strlen(name);
	if (len == 0 || len > STORAGE_NAME_MAX || name[0] == '/')
		return false;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '/' || c == '\0') {
			/* component is name[i - comp .. i) */
			if (comp == 0)
				return false;
			if (comp == 1 && name[i - 1] == '.')
				return false;
			if (comp == 2 && name[i - 1] == '.' && name[i - 2] == '.')
				return false;
			comp = 0;
			continue;
		}
		if (c < 0x20 || c == 0x7f)
			return false;
		comp++;
	}
	return true;
}

/* Returns NULL for STORAGE_ERR_NONE (there is no code to send). */
const char *
storage_error_code(enum storage_error err)
{
	switch (err) {
	case STORAGE_ERR_NONE:
		return NULL;
	case STORAGE_ERR_TEMP:
		return "UNAVAILABLE";
	case STORAGE_ERR_NOT_FOUND:
		return "NONEXISTENT";
	case STORAGE_ERR_EXISTS:
		return "ALREADYEXISTS";
	case STORAGE_ERR_BAD_NAME:
		return "CANNOT";
	case STORAGE_ERR_NO_SPACE:
		return "OVERQUOTA";
	case STORAGE_ERR_LIMIT:
		return "LIMIT";
	case STORAGE_ERR_IN_USE:
		return "INUSE";
	}
	return "UNAVAILABLE";
}

/* Core wrappers */

/* Logs a failed backend call once, with the session id, and frees the
   reason. err is NOT_FOUND/EXISTS/BAD_NAME for a client mistake (info),
   anything else is the server's problem (error). */
static void
storage_log_failure(const char *sid, const char *what, const char *user, const char *name,
		    enum storage_error err, char *error)
{
	bool client = err == STORAGE_ERR_NOT_FOUND || err == STORAGE_ERR_EXISTS ||
		err == STORAGE_ERR_BAD_NAME;

	log_msg(client ? LOG_LEVEL_INFO : LOG_LEVEL_ERROR, sid != NULL ? sid : "-",
		"storage %s %s/%s: %s", what, user != NULL ? user : "?",
		name != NULL ? name : "", error != NULL ? error : "failed");
	free(error);
}

static bool
storage_ctx_ok(const struct storage_ctx *ctx)
{
	return ctx != NULL && ctx->backend != NULL && ctx->st != NULL;
}

/* Checks the arguments every wrapper shares. Returns false (with *err_r set
   and logged) if the call must not reach the backend. */
static bool
storage_check_args(const struct storage_ctx *ctx, const char *sid, const char *what,
		   const char *user, const char *name, bool has_op, enum storage_error *err_r)
{
	if (!storage_ctx_ok(ctx) || !has_op) {
		*err_r = STORAGE_ERR_TEMP;
		storage_log_failure(sid, what, user, name, *err_r,
				    xstrdup("operation not supported by the storage backend"));
		return false;
	}
	if (!username_is_valid(user)) {
		*err_r = STORAGE_ERR_BAD_NAME;
		storage_log_failure(sid, what, "?", name, *err_r, xstrdup("invalid user name"));
		return false;
	}
	if (name != NULL && !storage_name_is_valid(name)) {
		*err_r = STORAGE_ERR_BAD_NAME;
		/* not logged as given: it may hold control characters */
		storage_log_failure(sid, what, user, "?", *err_r, xstrdup("invalid mailbox name"));
		return false;
	}
	return true;
}

/* A backend that returned -1 without saying why still yields an answer. */
void
storage_error_fix(int ret, enum storage_error *err_r)
{
	if (ret < 0 && *err_r == STORAGE_ERR_NONE)
		*err_r = STORAGE_ERR_TEMP;
	if (ret == 0)
		*err_r = STORAGE_ERR_NONE;
}

int
storage_list(const struct storage_ctx *ctx, const char *sid, const char *user,
	     struct strlist *names_r, enum storage_error *err_r)
{
	char *error = NULL;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	if (!storage_check_args(ctx, sid, "list", user, NULL,
				storage_ctx_ok(ctx) && ctx->backend->list != NULL, err_r))
		return -1;
	ret = ctx->backend->list(ctx->st, user, names_r, err_r, &error);
	storage_error_fix(ret, err_r);
	if (ret < 0)
		storage_log_failure(sid, "list", user, NULL, *err_r, error);
	else
		free(error);
	return ret < 0 ? -1 : 0;
}

int
storage_create(const struct storage_ctx *ctx, const char *sid, const char *user,
	       const char *name, enum storage_error *err_r)
{
	char *error = NULL;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	if (!storage_check_args(ctx, sid, "create", user, name,
				storage_ctx_ok(ctx) && ctx->backend->create != NULL, err_r))
		return -1;
	ret = ctx->backend->create(ctx->st, user, name, err_r, &error);
	storage_error_fix(ret, err_r);
	if (ret < 0)
		storage_log_failure(sid, "create", user, name, *err_r, error);
	else
		free(error);
	return ret < 0 ? -1 : 0;
}

int
storage_delete(const struct storage_ctx *ctx, const char *sid, const char *user,
	       const char *name, enum storage_error *err_r)
{
	char *error = NULL;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	if (!storage_check_args(ctx, sid, "delete", user, name,
				storage_ctx_ok(ctx) && ctx->backend->delete != NULL, err_r))
		return -1;
	ret = ctx->backend->delete(ctx->st, user, name, err_r, &error);
	storage_error_fix(ret, err_r);
	if (ret < 0)
		storage_log_failure(sid, "delete", user, name, *err_r, error);
	else
		free(error);
	return ret < 0 ? -1 : 0;
}

int
storage_rename(const struct storage_ctx *ctx, const char *sid, const char *user,
	       const char *oldname, const char *newname, enum storage_error *err_r)
{
	char *error = NULL;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	if (!storage_check_args(ctx, sid, "rename", user, oldname,
				storage_ctx_ok(ctx) && ctx->backend->rename != NULL, err_r))
		return -1;
	if (!storage_name_is_valid(newname)) {
		*err_r = STORAGE_ERR_BAD_NAME;
		storage_log_failure(sid, "rename", user, "?", *err_r,
				    xstrdup("invalid new mailbox name"));
		return -1;
	}
	ret = ctx->backend->rename(ctx->st, user, oldname, newname, err_r, &error);
	storage_error_fix(ret, err_r);
	if (ret < 0)
		storage_log_failure(sid, "rename", user, oldname, *err_r, error);
	else
		free(error);
	return ret < 0 ? -1 : 0;
}

int
storage_subscriptions_read(const struct storage_ctx *ctx, const char *sid, const char *user,
			   struct strlist *names_r, enum storage_error *err_r)
{
	char *error = NULL;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	if (!storage_check_args(ctx, sid, "subscriptions read", user, NULL,
				storage_ctx_ok(ctx) && ctx->backend->subscriptions_read != NULL,
				err_r))
		return -1;
	ret = ctx->backend->subscriptions_read(ctx->st, user, names_r, err_r, &error);
	storage_error_fix(ret, err_r);
	if (ret < 0)
		storage_log_failure(sid, "subscriptions read", user, NULL, *err_r, error);
	else
		free(error);
	return ret < 0 ? -1 : 0;
}

int
storage_subscriptions_write(const struct storage_ctx *ctx, const char *sid, const char *user,
			    const struct strlist *names, enum storage_error *err_r)
{
	char *error = NULL;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	if (!storage_check_args(ctx, sid, "subscriptions write", user, NULL,
				storage_ctx_ok(ctx) && ctx->backend->subscriptions_write != NULL,
				err_r))
		return -1;
	ret = ctx->backend->subscriptions_write(ctx->st, user, names, err_r, &error);
	storage_error_fix(ret, err_r);
	if (ret < 0)
		storage_log_failure(sid, "subscriptions write", user, NULL, *err_r, error);
	else
		free(error);
	return ret < 0 ? -1 : 0;
}

enum storage_error
storage_error_from_errno(int err)
{
	if (err == ENOSPC || err == EDQUOT)
		return STORAGE_ERR_NO_SPACE;
	return STORAGE_ERR_TEMP;
}

struct storage_call {
	struct storage_ctx ctx;
	enum storage_call_kind kind;
	char *user, *name, *newname;
	struct strlist subs_in;
	char sid[32];
	struct job *job;
	void (*done)(void *ctx);
	void *done_ctx;
	/* what the work did */
	int ret;
	const char *what;
	enum storage_error err;
	char *error;
	struct strlist names, subs;
};

/* storage_first_mailboxes() on backend b and st (in a worker or the
   loop): a mailbox that cannot be made is logged and left out; the
   failure that stops it is returned. */
static int
storage_first_mailboxes_in(const struct storage_backend *b, struct storage *st, const char *sid,
			   const char *user, const struct strlist *want, enum storage_error *err_r,
			   char **error_r)
{
	struct strlist names = { 0 }, subs = { 0 };
	enum storage_error err;
	char *error;
	bool changed = false;
	int ret = -1;

	if (b->list(st, user, &names, err_r, error_r) < 0)
		goto out;
	ret = 0;
	if (names.count > 1 || (names.count == 1 && strcmp(names.items[0], "INBOX") != 0))
		goto out;
	if ((ret = b->subscriptions_read(st, user, &subs, err_r, error_r)) < 0)
		goto out;
	for (size_t i = 0; i < want->count; i++) {
		error = NULL;
		err = STORAGE_ERR_NONE;
		if (b->create(st, user, want->items[i], &err, &error) < 0 &&
		    err != STORAGE_ERR_EXISTS) {
			storage_error_fix(-1, &err);
			storage_log_failure(sid, "create", user, want->items[i], err, error);
			continue;
		}
		free(error);
		if (!strlist_contains(&subs, want->items[i])) {
			strlist_add(&subs, want->items[i]);
			changed = true;
		}
	}
	if (changed)
		ret = b->subscriptions_write(st, user, &subs, err_r, error_r);
out:
	strlist_clear(&names);
	strlist_clear(&subs);
	return ret;
}

void
storage_first_mailboxes(const struct storage_ctx *ctx, const char *sid, const char *user,
			const struct strlist *want)
{
	const struct storage_backend *b = ctx != NULL ? ctx->backend : NULL;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	if (!storage_check_args(ctx, sid, "first mailboxes", user, NULL,
				storage_ctx_ok(ctx) && b->list != NULL &&
				b->subscriptions_read != NULL && b->create != NULL &&
				b->subscriptions_write != NULL, &err))
		return;
	if (storage_first_mailboxes_in(b, ctx->st, sid, user, want, &err, &error) < 0) {
		storage_error_fix(-1, &err);
		storage_log_failure(sid, "first mailboxes", user, NULL, err, error);
	} else
		free(error);
}

/* In a worker: the backend's call on the thread's own storage. */
static void
storage_call_work(void *ctx)
{
	struct storage_call *op = ctx;
	const struct storage_backend *b = op->ctx.backend;
	struct storage *st = b->thread_storage(op->ctx.st);

	switch (op->kind) {
	case STORAGE_CALL_NAMES:
		op->what = "list";
		op->ret = b->list(st, op->user, &op->names, &op->err, &op->error);
		if (op->ret == 0) {
			op->what = "subscriptions read";
			op->ret = b->subscriptions_read(st, op->user, &op->subs, &op->err,
							&op->error);
		}
		job_test_hold_named("names");
		return;
	case STORAGE_CALL_CREATE:
		op->what = "create";
		op->ret = b->create(st, op->user, op->name, &op->err, &op->error);
		break;
	case STORAGE_CALL_DELETE:
		op->what = "delete";
		op->ret = b->delete(st, op->user, op->name, &op->err, &op->error);
		break;
	case STORAGE_CALL_RENAME:
		op->what = "rename";
		op->ret = b->rename(st, op->user, op->name, op->newname, &op->err, &op->error);
		break;
	case STORAGE_CALL_SUBSCRIPTIONS_WRITE:
		op->what = "subscriptions write";
		op->ret = b->subscriptions_write(st, op->user, &op->subs_in, &op->err,
						 &op->error);
		break;
	case STORAGE_CALL_FIRST_MAILBOXES:
		op->what = "first mailboxes";
		op->ret = storage_first_mailboxes_in(b, st, op->sid, op->user, &op->subs_in,
						     &op->err, &op->error);
		break;
	}
	job_test_hold_named("call");
}

static void
storage_call_done(void *ctx, bool ran)
{
	struct storage_call *op = ctx;

	op->job = NULL;
	if (!ran) {
		op->ret = -1;
		op->err = STORAGE_ERR_TEMP;
		op->error = xstrdup("not done: the server is stopping");
	}
	storage_error_fix(op->ret, &op->err);
	if (op->ret < 0)
		storage_log_failure(op->sid, op->what, op->user, op->name, op->err, op->error);
	else
		free(op->error);
	op->error = NULL;
	if (op->done != NULL)
		op->done(op->done_ctx);
	else
		storage_call_free(&op);
}

struct storage_call *
storage_call_start(const struct storage_ctx *ctx, const char *sid, const char *user,
		   const struct storage_call_args *a, void (*done)(void *ctx), void *done_ctx)
{
	struct job_queue *queue = job_queue_default();
	const struct storage_backend *b;
	struct storage_call *op;

	if (queue == NULL || !storage_ctx_ok(ctx) || ctx->backend->thread_storage == NULL ||
	    user == NULL || !username_is_valid(user) ||
	    (a->name != NULL && !storage_name_is_valid(a->name)) ||
	    (a->newname != NULL && !storage_name_is_valid(a->newname)))
		return NULL;      /* made in the loop, which says why it fails */
	b = ctx->backend;
	if ((a->kind == STORAGE_CALL_NAMES &&
	     (b->list == NULL || b->subscriptions_read == NULL)) ||
	    (a->kind == STORAGE_CALL_CREATE && b->create == NULL) ||
	    (a->kind == STORAGE_CALL_DELETE && b->delete == NULL) ||
	    (a->kind == STORAGE_CALL_RENAME && b->rename == NULL) ||
	    (a->kind == STORAGE_CALL_SUBSCRIPTIONS_WRITE && b->subscriptions_write == NULL) ||
	    (a->kind == STORAGE_CALL_FIRST_MAILBOXES &&
	     (b->list == NULL || b->subscriptions_read == NULL || b->create == NULL ||
	      b->subscriptions_write == NULL)))
		return NULL;      /* the wrapper says so, in the loop */
	op = xcalloc(1, sizeof(*op));
	op->ctx = *ctx;
	op->kind = a->kind;
	op->user = xstrdup(user);
	op->name = a->name != NULL ? xstrdup(a->name) : NULL;
	op->newname = a->newname != NULL ? xstrdup(a->newname) : NULL;
	for (size_t i = 0; a->subs != NULL && i < a->subs->count; i++)
		strlist_add(&op->subs_in, a->subs->items[i]);
	snprintf(op->sid, sizeof(op->sid), "%s", sid != NULL ? sid : "-");
	op->done = done;
	op->done_ctx = done_ctx;
	op->job = job_submit(queue, storage_call_work, storage_call_done, op);
	return op;
}

int
storage_call_result(const struct storage_call *op, enum storage_error *err_r)
{
	*err_r = op->ret < 0 ? op->err : STORAGE_ERR_NONE;
	return op->ret < 0 ? -1 : 0;
}

int
storage_names_take(struct storage_call *op, bool subs, struct strlist *list_r,
		   enum storage_error *err_r)
{
	struct strlist *from = subs ? &op->subs : &op->names;

	if (storage_call_result(op, err_r) < 0)
		return -1;
	*list_r = *from;
	memset(from, 0, sizeof(*from));
	return 0;
}

int
storage_call_now(const struct storage_ctx *ctx, const char *sid, const char *user,
		 const struct storage_call_args *a, enum storage_error *err_r)
{
	switch (a->kind) {
	case STORAGE_CALL_CREATE:
		return storage_create(ctx, sid, user, a->name, err_r);
	case STORAGE_CALL_DELETE:
		return storage_delete(ctx, sid, user, a->name, err_r);
	case STORAGE_CALL_RENAME:
		return storage_rename(ctx, sid, user, a->name, a->newname, err_r);
	case STORAGE_CALL_SUBSCRIPTIONS_WRITE:
		return storage_subscriptions_write(ctx, sid, user, a->subs, err_r);
	case STORAGE_CALL_FIRST_MAILBOXES:
		storage_first_mailboxes(ctx, sid, user, a->subs);
		*err_r = STORAGE_ERR_NONE;
		return 0;
	case STORAGE_CALL_NAMES:
		break;
	}
	*err_r = STORAGE_ERR_TEMP;
	return -1;
}

void
storage_call_free(struct storage_call **_op)
{
	struct storage_call *op = *_op;

	if (op == NULL)
		return;
	*_op = NULL;
	if (op->job != NULL) {
		/* Its caller is gone: the call is made all the same (its
		   change is wanted, and the loop does not wait for the
		   store), then freed. */
		op->done = NULL;
		return;
	}
	strlist_clear(&op->names);
	strlist_clear(&op->subs);
	strlist_clear(&op->subs_in);
	free(op->error);
	free(op->user);
	free(op->name);
	free(op->newname);
	free(op);
}
