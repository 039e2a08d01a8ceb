/* maildir_storage.c: the "maildir" storage backend: init, open, close,
   the mailbox list, create, delete, rename, subscriptions, and the one
   const struct storage_backend.

   Layout (Maildir++, as Dovecot, mutt and mbsync know it):
     <root>/<user>/Maildir/{cur,new,tmp}      INBOX
     <root>/<user>/Maildir/.a.b/{cur,new,tmp} mailbox "a/b" (plus an empty
                                              "maildirfolder" file)
     <root>/<user>/Maildir/subscriptions      subscribed names, one a line
     <root>/<user>/Maildir/imapserver-uidvalidity
                                              last UIDVALIDITY given out

   The other files of backends/maildir/ hold the rest: maildir-name
   (names and flag letters), maildir-uidlist, maildir-keywords,
   maildir-lock, maildir-sync (scanning), maildir-save (append),
   maildir-mail (read), maildir-flags, maildir-expunge, maildir-util.

   Hierarchy (as Dovecot's Maildir++): a superior of a mailbox is not a
   folder unless it is a mailbox itself; it is \Noselect while it has
   inferiors. DELETE leaves the inferiors.

   Safety: CREATE builds the folder aside in Maildir/tmp and renames it
   into place, so it is never half there; DELETE renames the folder out
   of sight first, then removes it; RENAME moves each folder in one
   rename(), the inferiors first (see md_rename()). The subscriptions file is replaced
   atomically (temp file, fsync, rename). close() is the last batch
   point of flag changes (see maildir_flags.c). */
#include "fileio.h"
#include "log.h"
#include "storage_files.h"
#include "backends/maildir/maildir.h"
#include "backends/maildir/maildir_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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
	md_ftable_free(&box->files);
	md_kw_clear(box);
	free(box->user_dir);
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
	free(box->index_path);
	free(box->index_tmp);
	md_index_unmap(box);
	free(box);
}

static struct storage_box *
md_box_new(struct storage *st, const char *user, const char *name)
{
	struct storage_box *box = xcalloc(1, sizeof(*box));
	char *root = md_root(st, user);

	box->st = st;
	box->inbox = strcmp(name, "INBOX") == 0;
	box->user_dir = md_user_dir(st, user);
	box->dir = md_box_dir(st, user, name);
	box->cur_dir = xasprintf("%s/cur", box->dir);
	box->new_dir = xasprintf("%s/new", box->dir);
	box->tmp_dir = xasprintf("%s/tmp", box->dir);
	box->uidlist_path = xasprintf("%s/%s", box->dir, MD_UIDLIST);
	box->uidlist_tmp = xasprintf("%s/%s.tmp", box->dir, MD_UIDLIST);
	box->kw_path = xasprintf("%s/%s", box->dir, MD_KEYWORDS);
	box->kw_tmp = xasprintf("%s/%s.tmp", box->dir, MD_KEYWORDS);
	box->lock_path = xasprintf("%s/%s", box->dir, MD_LOCK);
	box->index_path = xasprintf("%s/%s", box->dir, MD_INDEX);
	/* per process: close() writes it without the lock */
	box->index_tmp = xasprintf("%s/%s.tmp.%ld", box->dir, MD_INDEX, (long)getpid());
	box->index_fd = -1;
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
	int serr;

	*err_r = STORAGE_ERR_NONE;
	if (md_check_names(user, name, err_r, error_r) < 0)
		return -1;
	box = md_box_new(st, user, name);
	if (box->inbox) {
		if (md_mkdir_ok(box->user_dir, box->user_dir) < 0 ||
		    md_make_maildir(box->user_dir, box->dir) < 0) {
			*err_r = storage_error_from_errno(errno);
			*error_r = xasprintf("create %s: %s", box->dir, strerror(errno));
			md_box_free(box);
			return -1;
		}
	} else if ((serr = fs_stat_beneath(box->user_dir, box->cur_dir, &sb) < 0 ? errno : 0) != 0 ||
		   !S_ISDIR(sb.st_mode)) {
		/* a link (ELOOP, or cur/ itself one) is refused, not followed */
		bool link = serr == ELOOP || (serr == 0 && S_ISLNK(sb.st_mode));

		if (link && serr == 0)
			fs_link_refused_log(box->user_dir, box->cur_dir);
		*err_r = link || !(serr == ENOENT || serr == ENOTDIR || serr == 0) ?
			STORAGE_ERR_TEMP : STORAGE_ERR_NOT_FOUND;
		*error_r = link ? xasprintf("%s: symbolic link refused", box->dir) :
			xasprintf("%s: no such Maildir folder", box->dir);
		md_box_free(box);
		return -1;
	} else if (md_make_maildir(box->user_dir, box->dir) < 0) {
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
	/* A folder unchanged since its index was written: no scan. */
	if (md_index_open(box, state)) {
		md_unlock(box);
		*box_r = box;
		return 0;
	}
	if (md_sync_locked(box, state, error_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		md_unlock(box);
		md_box_free(box);
		return -1;
	}
	md_index_write(box);
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
			log_error("-", "%s: flag changes not written at close: %s", box->dir,
				  error);
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
	/* Without the lock (close() must not wait for another process):
	   the index records the stamps of our last scan, which another
	   writer's change makes differ. */
	if (!(*boxp)->files_lazy)
		md_index_write(*boxp);
	md_box_free(*boxp);
	*boxp = NULL;
}

static void
md_watch_paths(struct storage_box *box, struct strlist *paths_r)
{
	strlist_add(paths_r, box->new_dir);
	strlist_add(paths_r, box->cur_dir);
}

/* The core's listing cache lives in the folder: it goes with the
   folder on delete and rename. */
static char *
md_cache_path(struct storage_box *box)
{
	return xasprintf("%s/imapserver.cache", box->dir);
}

static int
md_set_uids(struct storage_box *box, struct mbox_state *state, uint32_t uidvalidity,
	    uint32_t uidnext, enum storage_error *err_r, char **error_r)
{
	int ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (md_files_load(box, error_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		return -1;
	}
	if (md_lock(box, err_r, error_r) < 0)
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
	ret = md_uidlist_write(box, state, false, error_r);
out:
	if (ret < 0 && *err_r == STORAGE_ERR_NONE)
		*err_r = STORAGE_ERR_TEMP;
	md_unlock(box);
	return ret;
}

/* Mailbox management */

static int
md_list(struct storage *st, const char *user, struct strlist *names_r,
	enum storage_error *err_r, char **error_r)
{
	struct dirent *de;
	char *root, *udir;
	DIR *d;

	*err_r = STORAGE_ERR_NONE;
	if (md_check_names(user, NULL, err_r, error_r) < 0)
		return -1;
	strlist_add(names_r, "INBOX");
	root = md_root(st, user);
	udir = md_user_dir(st, user);
	d = fs_opendir_beneath(udir, root);
	if (d == NULL) {
		free(udir);
		free(root);
		return 0;
	}
	while ((de = readdir(d)) != NULL && names_r->count < MD_LIST_MAX) {
		char *name, *cur;
		struct stat sb;

		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		/* a link is not a mailbox (not shown, not followed) */
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(sb.st_mode)) {
			cur = xasprintf("%s/%s", root, de->d_name);
			fs_link_refused_log(udir, cur);
			free(cur);
			continue;
		}
		cur = xasprintf("%s/%s/cur", root, de->d_name);
		if (fs_stat_beneath(udir, cur, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
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
	free(udir);
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
	int ret = md_mkdir_ok(udir, udir) == 0 && md_make_maildir(udir, root) == 0 ? 0 : -1;

	free(udir);
	free(root);
	return ret;
}

static int
md_create(struct storage *st, const char *user, const char *name, enum storage_error *err_r,
	  char **error_r)
{
	char *dir, *work, *marker, *udir;
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
	udir = md_user_dir(st, user);
	dir = md_box_dir(st, user, name);
	work = md_work_path(st, user, "new");
	/* Built aside, then renamed into place: never half there. */
	if (md_make_maildir(udir, work) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("create %s: %s", work, strerror(errno));
		goto out;
	}
	marker = xasprintf("%s/maildirfolder", work);
	fd = fs_open_beneath(udir, marker, O_WRONLY | O_CREAT, 0600);
	if (fd >= 0)
		close(fd);
	free(marker);
	if (fs_rename_beneath(udir, work, dir) < 0) {
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
			if (fs_unlink_beneath(udir, p) < 0 && errno == EISDIR)
				(void)fs_rmdir_beneath(udir, p);
			free(p);
		}
		(void)fs_rmdir_beneath(udir, work);
	}
	free(udir);
	free(dir);
	free(work);
	return ret;
}

static int
md_delete(struct storage *st, const char *user, const char *name, enum storage_error *err_r,
	  char **error_r)
{
	char *dir, *work, *udir;

	*err_r = STORAGE_ERR_NONE;
	if (md_check_names(user, name, err_r, error_r) < 0)
		return -1;
	if (strcmp(name, "INBOX") == 0) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xstrdup("INBOX cannot be deleted");
		return -1;
	}
	udir = md_user_dir(st, user);
	dir = md_box_dir(st, user, name);
	work = md_work_path(st, user, "deleted");
	/* Out of sight first (one rename: a link is moved itself), then
	   removed, never through a link: a folder that is a link loses the
	   link only, its target is left alone (as Dovecot does). */
	if (fs_rename_beneath(udir, dir, work) < 0) {
		*err_r = errno == ENOENT ? STORAGE_ERR_NOT_FOUND : storage_error_from_errno(errno);
		*error_r = xasprintf("delete %s: %s", dir, strerror(errno));
		free(udir);
		free(dir);
		free(work);
		return -1;
	}
	(void)fs_remove_tree_beneath(udir, work);
	free(udir);
	free(dir);
	free(work);
	return 0;
}

/* Moves the files of inbox/sub into dir/sub (RENAME INBOX). */
static void
rename_inbox_move_files(const char *udir, const char *inbox, const char *dir, const char *sub)
{
	char *from_dir = xasprintf("%s/%s", inbox, sub);
	struct dirent *de;
	DIR *d = fs_opendir_beneath(udir, from_dir);
	unsigned n = 0;

	while (d != NULL && (de = readdir(d)) != NULL && n++ < MD_MAX_FILES) {
		char *from, *to;

		if (de->d_name[0] == '.')
			continue;
		from = xasprintf("%s/%s", from_dir, de->d_name);
		to = xasprintf("%s/%s/%s", dir, sub, de->d_name);
		(void)fs_rename_beneath(udir, from, to);
		free(from);
		free(to);
	}
	if (d != NULL)
		closedir(d);
	free(from_dir);
}

/* Keyword letters go along with the files: INBOX's dovecot-keywords is
   copied into dir. */
static void
rename_inbox_copy_keywords(const char *udir, const char *inbox, const char *dir)
{
	char *from = xasprintf("%s/%s", inbox, MD_KEYWORDS);
	char *to = xasprintf("%s/%s", dir, MD_KEYWORDS);
	char *data = NULL;
	size_t len;

	if (file_read_small(udir, from, 64 * 1024, &data, &len, NULL) > 0) {
		char *tmp = xasprintf("%s.tmp", to);

		(void)file_replace(udir, tmp, to, data, len - 1);
		free(tmp);
	}
	free(data);
	free(from);
	free(to);
}

/* RENAME INBOX: its messages move to a new mailbox; INBOX stays, empty. */
static int
md_rename_inbox(struct storage *st, const char *user, const char *newname,
		enum storage_error *err_r, char **error_r)
{
	char *inbox = md_root(st, user), *dir = md_box_dir(st, user, newname);
	char *udir = md_user_dir(st, user);
	int ret = -1;

	if (md_create(st, user, newname, err_r, error_r) < 0)
		goto out;
	rename_inbox_move_files(udir, inbox, dir, "cur");
	rename_inbox_move_files(udir, inbox, dir, "new");
	rename_inbox_copy_keywords(udir, inbox, dir);
	ret = 0;
out:
	free(udir);
	free(inbox);
	free(dir);
	return ret;
}

/* The mailboxes that move and their new names are storage_rename_plan()'s;
   each folder (with its uidlist, keywords, index and listing cache) moves
   in one rename(), the inferiors first, so that a crash leaves each
   mailbox whole under its old or its new name and the same RENAME again
   finishes the move. */
static int
md_rename(struct storage *st, const char *user, const char *oldname, const char *newname,
	  enum storage_error *err_r, char **error_r)
{
	struct strlist names = { 0 }, from = { 0 }, to = { 0 };
	char *udir = NULL, *newdir = NULL;
	int ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (md_check_names(user, oldname, err_r, error_r) < 0 ||
	    md_check_names(user, newname, err_r, error_r) < 0)
		return -1;
	if (md_list(st, user, &names, err_r, error_r) < 0 ||
	    storage_rename_plan(&names, oldname, newname, &from, &to, err_r, error_r) < 0)
		goto out;
	if (strcmp(oldname, "INBOX") == 0) {
		ret = md_rename_inbox(st, user, newname, err_r, error_r);
		goto out;
	}
	udir = md_user_dir(st, user);
	for (size_t i = 0; i < from.count; i++) {
		char *olddir = md_box_dir(st, user, from.items[i]);
		struct stat sb;

		free(newdir);
		newdir = md_box_dir(st, user, to.items[i]);
		/* a folder that is not a mailbox (no cur/) is in the way too */
		if (fs_stat_beneath(udir, newdir, &sb) == 0) {
			*err_r = STORAGE_ERR_EXISTS;
			*error_r = xasprintf("%s exists", newdir);
		} else if (fs_rename_beneath(udir, olddir, newdir) < 0) {
			/* a link is renamed itself */
			*err_r = errno == ENOENT ? STORAGE_ERR_NOT_FOUND :
				storage_error_from_errno(errno);
			*error_r = xasprintf("rename %s: %s", olddir, strerror(errno));
		}
		free(olddir);
		if (*err_r != STORAGE_ERR_NONE)
			goto out;
	}
	fsync_dir_of(newdir);
	ret = 0;
out:
	strlist_clear(&names);
	strlist_clear(&from);
	strlist_clear(&to);
	free(udir);
	free(newdir);
	return ret;
}

static char *
md_subs_path(struct storage *st, const char *user)
{
	return xasprintf("%s/%s/%s/%s", st->root, user, MD_DIR, MD_SUBS);
}

static int
md_subscriptions_read(struct storage *st, const char *user, struct strlist *names_r,
		      enum storage_error *err_r, char **error_r)
{
	char *path, *udir;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	if (md_check_names(user, NULL, err_r, error_r) < 0)
		return -1;
	path = md_subs_path(st, user);
	udir = md_user_dir(st, user);
	ret = storage_subscriptions_file_read(udir, path, MD_LIST_MAX, names_r, err_r, error_r);
	free(udir);
	free(path);
	return ret;
}

static int
md_subscriptions_write(struct storage *st, const char *user, const struct strlist *names,
		       enum storage_error *err_r, char **error_r)
{
	char *path, *tmp, *udir;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	if (md_check_names(user, NULL, err_r, error_r) < 0)
		return -1;
	if (md_ensure_root(st, user) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("create Maildir of %s: %s", user, strerror(errno));
		return -1;
	}
	path = md_subs_path(st, user);
	tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	udir = md_user_dir(st, user);
	ret = storage_subscriptions_file_write(udir, path, tmp, names, err_r, error_r);
	free(udir);
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
	.open_prepare = md_open_prepare,
	.open_commit = md_open_commit,
	.job_work = md_job_work,
	.job_commit = md_job_commit,
	.job_abort = md_job_abort,
	.expunge_prepare = md_expunge_prepare_job,
	.close = md_close,
	.sync = md_sync,
	.read = md_read,
	.append = md_append,
	.append_prepare = md_append_prepare,
	.append_commit = md_append_commit,
	.append_settle = md_append_settle,
	.flags_changed = md_flags_changed,
	.expunge = md_expunge,
	.watch_paths = md_watch_paths,
	.set_uids = md_set_uids,
	.cache_path = md_cache_path,
	.hints_changed = md_hints_changed,
};
