/* flat_storage.c: the "flat" storage backend's mailbox-level operations
   (init, open, close, list, create, delete, rename, subscriptions), its
   names and paths, and its one vtable, storage_backend_flat. The other
   operations live beside their concern: flat_format.c (read),
   flat_save.c (append), flat_expunge.c, flat_index.c (flag changes) and
   flat_sync.c (sync).

   Hierarchy: mailbox "a/b" is the file a/b.mail; a superior that is not
   a mailbox is only the folder a/ (\Noselect while it holds inferiors,
   removed with its last one), and a mailbox may have inferiors (a.mail
   beside a/).

   Crash safety: CREATE makes the file with O_EXCL and fsyncs its folder;
   RENAME moves each mailbox in turn, its inferiors first, the mail file
   in one rename() between a link and an unlink of its index
   (flat_move_one()): a crash leaves each mailbox whole, flags included,
   under its old or its new name, and the same RENAME again finishes the
   move. The subscriptions file is replaced by temp file, fsync and
   rename. */
#include "fileio.h"
#include "safepath.h"
#include "flat.h"
#include "flat_private.h"
#include "storage_files.h"
#include "username.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The flat format's own rules on top of storage_name_is_valid(): no
   component starts with '.' (our side files), and the top level
   "mymailbox" would collide with INBOX's file. */
static bool
flat_name_ok(const char *name)
{
	const char *p = name;

	if (!storage_name_is_valid(name))
		return false;
	if (strcmp(name, "INBOX") == 0)
		return true;
	if (ascii_strncasecmp(name, "mymailbox", 9) == 0 && (name[9] == '\0' || name[9] == '/'))
		return false;
	for (;;) {
		if (*p == '.')
			return false;
		p = strchr(p, '/');
		if (p == NULL)
			break;
		p++;
	}
	return true;
}

static char *
flat_user_dir(struct storage *st, const char *user)
{
	return xasprintf("%s/%s", st->root, user);
}

static char *
flat_mail_path(struct storage *st, const char *user, const char *name)
{
	if (strcmp(name, "INBOX") == 0)
		return xasprintf("%s/%s/%s", st->root, user, FLAT_INBOX_FILE);
	return xasprintf("%s/%s/%s%s", st->root, user, name, FLAT_SUFFIX);
}

static char *
flat_index_path(struct storage *st, const char *user, const char *name)
{
	return xasprintf("%s/%s/%s/%s.index", st->root, user, FLAT_IMAP_DIR, name);
}

/* The listing cache of the core (storage.h cache_path), next to the
   index: "<name>.cache" and "<name>.cache.idx". */
static char *
flat_cache_path_of(struct storage *st, const char *user, const char *name)
{
	return xasprintf("%s/%s/%s/%s.cache", st->root, user, FLAT_IMAP_DIR, name);
}

/* Moves (newname not NULL) or removes the cache files of oldname. */
static void
flat_cache_move(struct storage *st, const char *udir, const char *user, const char *oldname,
		const char *newname)
{
	for (unsigned i = 0; i < 2; i++) {
		const char *ext = i == 0 ? "" : ".idx";
		char *base = flat_cache_path_of(st, user, oldname);
		char *from = xasprintf("%s%s", base, ext), *to = NULL;

		if (newname != NULL) {
			free(base);
			base = flat_cache_path_of(st, user, newname);
			to = xasprintf("%s%s", base, ext);
		}
		if (to == NULL || fs_rename_beneath(udir, from, to) < 0)
			(void)fs_unlink_beneath(udir, from);
		free(base);
		free(from);
		free(to);
	}
}

/* Checks user and name before they go near a path. */
int
flat_check_names(const char *user, const char *name, enum storage_error *err_r, char **error_r)
{
	if (!username_is_valid(user)) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xstrdup("invalid user name");
		return -1;
	}
	if (name != NULL && !flat_name_ok(name)) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xasprintf("invalid mailbox name for flat storage: %s", name);
		return -1;
	}
	return 0;
}

static int
flat_init(const struct storage_settings *set, struct storage **st_r, char **error_r)
{
	struct storage *st;
	char *root;

	if (storage_root_prepare("flat", set, &root, error_r) < 0)
		return -1;
	st = xcalloc(1, sizeof(*st));
	st->root = root;
	*st_r = st;
	return 0;
}

static void
flat_deinit(struct storage **stp)
{
	struct storage *st = *stp;

	if (st == NULL)
		return;
	free(st->root);
	free(st);
	*stp = NULL;
}

void
flat_box_free(struct storage_box *box)
{
	flat_unlock(box);
	if (box->fd >= 0)
		close(box->fd);
	if (box->index_fd >= 0)
		close(box->index_fd);
	free(box->user_dir);
	free(box->mail_path);
	free(box->mail_tmp);
	free(box->lock_path);
	free(box->index_path);
	free(box->index_tmp);
	free(box->uidv_path);
	free(box->cache_path);
	free(box);
}

struct storage_box *
flat_box_new(struct storage *st, const char *user, const char *name)
{
	struct storage_box *box = xcalloc(1, sizeof(*box));

	box->st = st;
	box->inbox = strcmp(name, "INBOX") == 0;
	box->user_dir = flat_user_dir(st, user);
	box->mail_path = flat_mail_path(st, user, name);
	box->mail_tmp = xasprintf("%s.tmp", box->mail_path);
	box->lock_path = xasprintf("%s.lock", box->mail_path);
	box->index_path = flat_index_path(st, user, name);
	box->index_tmp = xasprintf("%s.tmp", box->index_path);
	box->uidv_path = xasprintf("%s/%s/uidvalidity", box->user_dir, FLAT_IMAP_DIR);
	box->cache_path = flat_cache_path_of(st, user, name);
	box->fd = -1;
	box->index_fd = -1;
	box->lock_fd = -1;
	return box;
}

/* At an open: an in-place expunge a crash stopped is finished first, and
   the journal for the next one is kept allocated. */
int
flat_open_recover(struct storage_box *box, enum storage_error *err_r, char **error_r)
{
	int ret;

	if (box->inbox)
		flat_compact_reserve(box);
	if (!flat_compact_pending(box))
		return 0;
	if (flat_lock(box, false, err_r, error_r) < 0) {
		if (*err_r != STORAGE_ERR_IN_USE)
			return -1;
		/* the holder finishes it, or the next open */
		free(*error_r);
		*error_r = NULL;
		*err_r = STORAGE_ERR_NONE;
		return 0;
	}
	ret = flat_compact_recover(box, error_r);
	if (ret < 0)
		*err_r = STORAGE_ERR_TEMP;
	flat_unlock(box);
	return ret;
}

static int
flat_open(struct storage *st, const char *user, const char *name, struct mbox_state *state,
	  struct storage_box **box_r, enum storage_error *err_r, char **error_r)
{
	struct storage_box *box;

	*err_r = STORAGE_ERR_NONE;
	if (flat_check_names(user, name, err_r, error_r) < 0)
		return -1;
	box = flat_box_new(st, user, name);
	if (box->inbox) {
		/* the user folder is made, or must be a folder, not a link */
		if (fs_mkdir_beneath(box->user_dir, box->user_dir, 0700) < 0 && errno != EEXIST) {
			*err_r = storage_error_from_errno(errno);
			*error_r = xasprintf("mkdir %s: %s", box->user_dir, strerror(errno));
			flat_box_free(box);
			return -1;
		}
	}
	if (flat_open_recover(box, err_r, error_r) < 0 ||
	    flat_refresh(box, state, err_r, error_r) < 0) {
		flat_box_free(box);
		return -1;
	}
	*box_r = box;
	return 0;
}

static void
flat_close(struct storage_box **boxp)
{
	if (*boxp == NULL)
		return;
	flat_box_free(*boxp);
	*boxp = NULL;
}

static void
flat_watch_paths(struct storage_box *box, struct strlist *paths_r)
{
	strlist_add(paths_r, box->mail_path);
	/* Its removal tells that a writer that made sync() wait is done. */
	strlist_add(paths_r, box->lock_path);
}

static char *
flat_cache_path(struct storage_box *box)
{
	return xstrdup(box->cache_path);
}

static void
flat_list_dir(const char *base, const char *dir, const char *prefix, unsigned depth,
	      struct strlist *names)
{
	DIR *d;
	struct dirent *de;

	if (depth > FLAT_LIST_MAX_DEPTH)
		return;
	d = fs_opendir_beneath(base, dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL && names->count < FLAT_LIST_MAX_NAMES) {
		size_t nlen = strlen(de->d_name);
		char *path, *name;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			free(path);
			continue;
		}
		if (S_ISLNK(st.st_mode)) {
			/* never a mailbox, never followed */
			fs_link_refused_log(base, path);
			name = NULL;
		} else if (S_ISDIR(st.st_mode)) {
			name = xasprintf("%s%s/", prefix, de->d_name);
			flat_list_dir(base, path, name, depth + 1, names);
		} else if (S_ISREG(st.st_mode) && nlen > strlen(FLAT_SUFFIX) &&
			   strcmp(de->d_name + nlen - strlen(FLAT_SUFFIX), FLAT_SUFFIX) == 0) {
			name = xasprintf("%s%.*s", prefix, (int)(nlen - strlen(FLAT_SUFFIX)),
					 de->d_name);
			if (depth == 0 && strcmp(name, "mymailbox") == 0) {
				/* INBOX is added by the caller */
			} else if (flat_name_ok(name) && strcmp(name, "INBOX") != 0) {
				strlist_add(names, name);
			}
		} else {
			name = NULL;
		}
		free(name);
		free(path);
	}
	closedir(d);
}

static int
flat_list(struct storage *st, const char *user, struct strlist *names_r,
	  enum storage_error *err_r, char **error_r)
{
	char *dir;

	*err_r = STORAGE_ERR_NONE;
	if (flat_check_names(user, NULL, err_r, error_r) < 0)
		return -1;
	dir = flat_user_dir(st, user);
	strlist_add(names_r, "INBOX");
	flat_list_dir(dir, dir, "", 0, names_r);
	free(dir);
	return 0;
}

static int
flat_create(struct storage *st, const char *user, const char *name, enum storage_error *err_r,
	    char **error_r)
{
	char *path, *udir, *index;
	int fd, ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (flat_check_names(user, name, err_r, error_r) < 0)
		return -1;
	if (strcmp(name, "INBOX") == 0) {
		*err_r = STORAGE_ERR_EXISTS;
		*error_r = xstrdup("INBOX always exists");
		return -1;
	}
	path = flat_mail_path(st, user, name);
	udir = flat_user_dir(st, user);
	if (mkdir_parents(udir, path) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("mkdir for %s: %s", path, strerror(errno));
		goto out;
	}
	fd = fs_open_beneath(udir, path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		*err_r = errno == EEXIST ? STORAGE_ERR_EXISTS : storage_error_from_errno(errno);
		*error_r = xasprintf("create %s: %s", path, strerror(errno));
		goto out;
	}
	close(fd);
	/* Side files under this name are a dead mailbox's (one a crash in
	   RENAME left): the new mailbox starts without them. */
	index = flat_index_path(st, user, name);
	(void)fs_unlink_beneath(udir, index);
	free(index);
	flat_cache_move(st, udir, user, name, NULL);
	fsync_dir_of(path);
	ret = 0;
out:
	free(udir);
	free(path);
	return ret;
}

/* Removes the folders that held name and are now empty, in the mail tree
   and in .imap, from name's own level up to the user folder, stopping at
   the first that is not empty: a superior that is not a mailbox is only
   a folder, and it goes with its last inferior (storage.h: a \Noselect
   name exists while it has inferiors). */
static void
flat_prune_dirs(const char *udir, const char *name)
{
	for (unsigned t = 0; t < 2; t++) {
		char *top = t == 0 ? xstrdup(udir) : xasprintf("%s/%s", udir, FLAT_IMAP_DIR);
		char *dir = xasprintf("%s/%s", top, name), *slash;

		while ((slash = strrchr(dir, '/')) != NULL && slash > dir + strlen(top)) {
			*slash = '\0';
			if (fs_rmdir_beneath(udir, dir) < 0)
				break;
		}
		free(dir);
		free(top);
	}
}

static int
flat_delete(struct storage *st, const char *user, const char *name, enum storage_error *err_r,
	    char **error_r)
{
	char *path, *index, *udir;

	*err_r = STORAGE_ERR_NONE;
	if (flat_check_names(user, name, err_r, error_r) < 0)
		return -1;
	if (strcmp(name, "INBOX") == 0) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xstrdup("INBOX cannot be deleted");
		return -1;
	}
	path = flat_mail_path(st, user, name);
	udir = flat_user_dir(st, user);
	/* a link is removed itself, never its target */
	if (fs_unlink_beneath(udir, path) < 0) {
		*err_r = errno == ENOENT ? STORAGE_ERR_NOT_FOUND : STORAGE_ERR_TEMP;
		*error_r = xasprintf("delete %s: %s", path, strerror(errno));
		free(udir);
		free(path);
		return -1;
	}
	index = flat_index_path(st, user, name);
	(void)fs_unlink_beneath(udir, index);
	free(index);
	flat_cache_move(st, udir, user, name, NULL);
	/* its inferiors stay, in its folder */
	flat_prune_dirs(udir, name);
	free(udir);
	free(path);
	return 0;
}

/* Moves one mailbox so that at every instant one of its names has both
   its mail file and its index (flags live in the index): the index gets
   its new name as a second link first, the mail file then moves in one
   rename(), and the old link goes last. A crash before the rename leaves
   the mailbox whole under its old name (the new link is stale and is
   replaced by the next try), after it whole under its new name (the old
   link is stale, removed by a later CREATE of that name). Where no link
   can be made the index follows the mail file (without the index the
   new name starts a new UIDVALIDITY, which is allowed). The listing
   cache follows; an INBOX never written becomes an empty mailbox; the
   folders left empty go. */
static int
flat_move_one(struct storage *st, const char *udir, const char *user, const char *from,
	      const char *to, enum storage_error *err_r, char **error_r)
{
	char *frompath = flat_mail_path(st, user, from), *topath = flat_mail_path(st, user, to);
	char *fromidx = flat_index_path(st, user, from), *toidx = flat_index_path(st, user, to);
	bool inbox = strcmp(from, "INBOX") == 0, linked = false, idx_dir;
	struct stat sb;
	int ret = -1;

	if (mkdir_parents(udir, topath) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("mkdir for %s: %s", topath, strerror(errno));
		goto out;
	}
	if (fs_stat_beneath(udir, topath, &sb) == 0) {
		*err_r = STORAGE_ERR_EXISTS;
		*error_r = xasprintf("%s exists", topath);
		goto out;
	}
	idx_dir = mkdir_parents(udir, toidx) == 0;
	if (idx_dir) {
		(void)fs_unlink_beneath(udir, toidx);
		linked = fs_link_beneath(udir, fromidx, toidx) == 0;
		if (linked)
			fsync_dir_of(toidx);
	}
	if (inbox && fs_stat_beneath(udir, frompath, &sb) < 0 && errno == ENOENT) {
		int fd = fs_open_beneath(udir, topath, O_WRONLY | O_CREAT | O_EXCL, 0600);

		if (fd < 0) {
			*err_r = errno == EEXIST ? STORAGE_ERR_EXISTS : storage_error_from_errno(errno);
			*error_r = xasprintf("create %s: %s", topath, strerror(errno));
			goto undo;
		}
		close(fd);
	} else if (fs_rename_beneath(udir, frompath, topath) < 0) {
		*err_r = errno == ENOENT ? STORAGE_ERR_NOT_FOUND : storage_error_from_errno(errno);
		*error_r = xasprintf("rename %s: %s", frompath, strerror(errno));
		goto undo;
	}
	fsync_dir_of(topath);
	fsync_dir_of(frompath);
	if (linked)
		(void)fs_unlink_beneath(udir, fromidx);
	else if (!idx_dir || fs_rename_beneath(udir, fromidx, toidx) < 0)
		(void)fs_unlink_beneath(udir, fromidx);
	flat_cache_move(st, udir, user, from, idx_dir ? to : NULL);
	if (!inbox)
		flat_prune_dirs(udir, from);
	ret = 0;
	goto out;
undo:
	if (linked)
		(void)fs_unlink_beneath(udir, toidx);
out:
	free(frompath);
	free(topath);
	free(fromidx);
	free(toidx);
	return ret;
}

/* The mailboxes that move and their new names are storage_rename_plan()'s;
   each moves whole (flat_move_one()), the inferiors first, so that a
   crash leaves each under its old or its new name and the same RENAME
   again finishes the move. */
static int
flat_rename(struct storage *st, const char *user, const char *oldname, const char *newname,
	    enum storage_error *err_r, char **error_r)
{
	struct strlist names = { 0 }, from = { 0 }, to = { 0 };
	char *udir = NULL;
	int ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (flat_check_names(user, oldname, err_r, error_r) < 0 ||
	    flat_check_names(user, newname, err_r, error_r) < 0)
		return -1;
	if (flat_list(st, user, &names, err_r, error_r) < 0 ||
	    storage_rename_plan(&names, oldname, newname, &from, &to, err_r, error_r) < 0)
		goto out;
	udir = flat_user_dir(st, user);
	for (size_t i = 0; i < from.count; i++) {
		if (flat_move_one(st, udir, user, from.items[i], to.items[i], err_r, error_r) < 0)
			goto out;
	}
	ret = 0;
out:
	strlist_clear(&names);
	strlist_clear(&from);
	strlist_clear(&to);
	free(udir);
	return ret;
}

/* The subscriptions file of user (malloc'ed), or NULL with *err_r and
   *error_r for a user name that is not allowed. */
static char *
flat_subscriptions_path(struct storage *st, const char *user, enum storage_error *err_r,
			char **error_r)
{
	*err_r = STORAGE_ERR_NONE;
	if (flat_check_names(user, NULL, err_r, error_r) < 0)
		return NULL;
	return xasprintf("%s/%s/%s/subscriptions", st->root, user, FLAT_IMAP_DIR);
}

static int
flat_subscriptions_read(struct storage *st, const char *user, struct strlist *names_r,
			enum storage_error *err_r, char **error_r)
{
	char *path = flat_subscriptions_path(st, user, err_r, error_r), *udir;
	int ret;

	if (path == NULL)
		return -1;
	udir = flat_user_dir(st, user);
	ret = storage_subscriptions_file_read(udir, path, FLAT_LIST_MAX_NAMES, names_r, err_r,
					      error_r);
	free(udir);
	free(path);
	return ret;
}

/* The .imap folder is created on the first write. */
static int
flat_subscriptions_write(struct storage *st, const char *user, const struct strlist *names,
			 enum storage_error *err_r, char **error_r)
{
	char *path = flat_subscriptions_path(st, user, err_r, error_r), *tmp, *udir;
	int ret = -1;

	if (path == NULL)
		return -1;
	tmp = xasprintf("%s.tmp", path);
	udir = flat_user_dir(st, user);
	if (mkdir_parents(udir, tmp) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("mkdir for %s: %s", tmp, strerror(errno));
	} else {
		ret = storage_subscriptions_file_write(udir, path, tmp, names, err_r, error_r);
	}
	free(udir);
	free(tmp);
	free(path);
	return ret;
}

const struct storage_backend storage_backend_flat = {
	.name = "flat",
	.compiled_in = true,
	.init = flat_init,
	.deinit = flat_deinit,
	.list = flat_list,
	.create = flat_create,
	.delete = flat_delete,
	.rename = flat_rename,
	.subscriptions_read = flat_subscriptions_read,
	.subscriptions_write = flat_subscriptions_write,
	.open = flat_open,
	.close = flat_close,
	.sync = flat_sync,
	.read = flat_read,
	.append = flat_append,
	.append_prepare = flat_append_prepare,
	.append_commit = flat_append_commit,
	.append_settle = flat_append_settle,
	.flags_changed = flat_flags_changed,
	.expunge = flat_expunge,
	.expunge_prepare = flat_expunge_prepare,
	.job_work = flat_job_work,
	.job_commit = flat_job_commit,
	.job_abort = flat_job_abort,
	.open_prepare = flat_open_prepare,
	.open_commit = flat_open_commit,
	.watch_paths = flat_watch_paths,
	.cache_path = flat_cache_path,
	.hints_changed = flat_hints_changed,
};
