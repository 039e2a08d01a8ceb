/* flat_storage.c: the "flat" storage backend's mailbox-level operations
   (init, open, close, list, create, delete, rename, subscriptions), its
   names and paths, and its one vtable, storage_backend_flat. The other
   operations live beside their concern: flat_format.c (read),
   flat_save.c (append), flat_expunge.c, flat_index.c (flag changes) and
   flat_sync.c (sync).

   Crash safety: CREATE makes the file with O_EXCL and fsyncs its folder;
   RENAME moves the mail file first and its index after it (without the
   index the new name starts a new UIDVALIDITY, which is allowed); the
   subscriptions file is replaced by temp file, fsync and rename. */
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
	if (flat_refresh(box, state, err_r, error_r) < 0) {
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
	char *path, *udir;
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
	fsync_dir_of(path);
	ret = 0;
out:
	free(udir);
	free(path);
	return ret;
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
	free(udir);
	free(path);
	return 0;
}

static int
flat_rename(struct storage *st, const char *user, const char *oldname, const char *newname,
	    enum storage_error *err_r, char **error_r)
{
	char *oldpath = NULL, *newpath = NULL, *oldidx = NULL, *newidx = NULL;
	char *olddir = NULL, *newdir = NULL, *udir = NULL;
	struct stat sb;
	size_t oldlen = strlen(oldname);
	bool inbox = strcmp(oldname, "INBOX") == 0;
	int ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (flat_check_names(user, oldname, err_r, error_r) < 0 ||
	    flat_check_names(user, newname, err_r, error_r) < 0)
		return -1;
	if (strcmp(newname, "INBOX") == 0) {
		*err_r = STORAGE_ERR_EXISTS;
		*error_r = xstrdup("INBOX exists");
		return -1;
	}
	if (!inbox && strncmp(newname, oldname, oldlen) == 0 && newname[oldlen] == '/') {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xstrdup("cannot rename a mailbox into itself");
		return -1;
	}
	udir = flat_user_dir(st, user);
	oldpath = flat_mail_path(st, user, oldname);
	newpath = flat_mail_path(st, user, newname);
	oldidx = flat_index_path(st, user, oldname);
	newidx = flat_index_path(st, user, newname);
	if (fs_stat_beneath(udir, newpath, &sb) == 0) {
		*err_r = STORAGE_ERR_EXISTS;
		*error_r = xasprintf("%s exists", newname);
		goto out;
	}
	if (fs_stat_beneath(udir, oldpath, &sb) < 0 && !(inbox && errno == ENOENT)) {
		*err_r = errno == ENOENT ? STORAGE_ERR_NOT_FOUND : STORAGE_ERR_TEMP;
		*error_r = xasprintf("stat %s: %s", oldpath, strerror(errno));
		goto out;
	}
	if (mkdir_parents(udir, newpath) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("mkdir for %s: %s", newpath, strerror(errno));
		goto out;
	}
	if (inbox && fs_stat_beneath(udir, oldpath, &sb) < 0) {
		/* an INBOX that was never written: the new mailbox is empty */
		int fd = fs_open_beneath(udir, newpath, O_WRONLY | O_CREAT | O_EXCL, 0600);

		if (fd < 0) {
			*err_r = errno == EEXIST ? STORAGE_ERR_EXISTS : storage_error_from_errno(errno);
			*error_r = xasprintf("create %s: %s", newpath, strerror(errno));
			goto out;
		}
		close(fd);
	} else if (fs_rename_beneath(udir, oldpath, newpath) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("rename %s: %s", oldpath, strerror(errno));
		goto out;
	}
	/* The index follows; without it the new name starts a new
	   UIDVALIDITY, which is allowed. */
	if (mkdir_parents(udir, newidx) == 0) {
		(void)fs_rename_beneath(udir, oldidx, newidx);
		flat_cache_move(st, udir, user, oldname, newname);
	} else {
		(void)fs_unlink_beneath(udir, oldidx);
		flat_cache_move(st, udir, user, oldname, NULL);
	}
	if (!inbox) {
		/* Inferiors move too (RFC 3501 RENAME); INBOX's stay. */
		olddir = xasprintf("%s/%s/%s", st->root, user, oldname);
		newdir = xasprintf("%s/%s/%s", st->root, user, newname);
		if (fs_stat_beneath(udir, olddir, &sb) == 0 && S_ISDIR(sb.st_mode) &&
		    fs_stat_beneath(udir, newdir, &sb) < 0)
			(void)fs_rename_beneath(udir, olddir, newdir);
		free(olddir);
		free(newdir);
		olddir = xasprintf("%s/%s/%s/%s", st->root, user, FLAT_IMAP_DIR, oldname);
		newdir = xasprintf("%s/%s/%s/%s", st->root, user, FLAT_IMAP_DIR, newname);
		if (fs_stat_beneath(udir, olddir, &sb) == 0 && S_ISDIR(sb.st_mode) &&
		    fs_stat_beneath(udir, newdir, &sb) < 0)
			(void)fs_rename_beneath(udir, olddir, newdir);
	}
	ret = 0;
out:
	free(oldpath);
	free(newpath);
	free(oldidx);
	free(newidx);
	free(olddir);
	free(newdir);
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
