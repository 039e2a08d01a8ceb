/* maildir_util.c: small helpers shared by the Maildir files: stamps of
   files and folders (to skip a scan when nothing changed), the table of
   message files, paths and folder creation.

   Safety: a folder's mtime is trusted only when it is older than
   MD_MTIME_TRUST_NS, so that a change within the same clock tick is not
   taken for "unchanged" for long: a younger stamp is trusted for that
   long, then one more scan looks (md_stamp_note, md_unchanged). So a
   burst of our own changes costs one scan a second, not one each, and a
   file another tool drops in the same tick is seen within a second. md_make_maildir() only
   creates folders; it never removes or renames anything. */
#include "backends/maildir/maildir_private.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

/* Helpers */

void
md_stamp_file(const char *base, const char *path, struct file_stamp *fs)
{
	struct stat st;

	i_zero(fs);
	/* Stamps only tell whether to read again (through the confined
	   opens): a hint is enough. */
	if (fs_stat_hint(path, &st) < 0)
		return;
	fs->exists = true;
	fs->ino = (uint64_t)st.st_ino;
	fs->size = (uint64_t)st.st_size;
	fs->sec = (int64_t)st.st_mtim.tv_sec;
	fs->nsec = (int64_t)st.st_mtim.tv_nsec;
}

bool
md_file_stamp_equal(const struct file_stamp *a, const struct file_stamp *b)
{
	return a->exists == b->exists && a->ino == b->ino && a->size == b->size &&
		a->sec == b->sec && a->nsec == b->nsec;
}

/* Records a folder's mtime, taken just before it is read. */
void
md_stamp_dir(const char *base, const char *path, struct dir_stamp *ds)
{
	struct timespec now;
	struct stat st;
	int64_t age;

	i_zero(ds);
	if (fs_stat_hint(path, &st) < 0 || clock_gettime(CLOCK_REALTIME, &now) < 0)
		return;
	ds->taken = true;
	ds->ino = (uint64_t)st.st_ino;
	ds->sec = (int64_t)st.st_mtim.tv_sec;
	ds->nsec = (int64_t)st.st_mtim.tv_nsec;
	age = ((int64_t)now.tv_sec - ds->sec) * 1000000000LL + ((int64_t)now.tv_nsec - ds->nsec);
	ds->valid = age > MD_MTIME_TRUST_NS;
}

bool
md_dir_unchanged(const char *base, const char *path, const struct dir_stamp *ds)
{
	struct stat st;

	if (!ds->taken || fs_stat_hint(path, &st) < 0)
		return false;
	return ds->ino == (uint64_t)st.st_ino && ds->sec == (int64_t)st.st_mtim.tv_sec &&
		ds->nsec == (int64_t)st.st_mtim.tv_nsec;
}

void
md_stamp_note(struct storage_box *box, const struct dir_stamp *ds)
{
	if (!ds->valid && box->recheck_at == 0)
		box->recheck_at = mono_ms() + MD_MTIME_TRUST_NS / 1000000 + 1;
}

void
md_own_change_begin(struct storage_box *box, struct md_own_change *oc)
{
	oc->cur = md_dir_unchanged(box->user_dir, box->cur_dir, &box->cur_stamp);
	oc->new = md_dir_unchanged(box->user_dir, box->new_dir, &box->new_stamp);
}

void
md_own_change_end(struct storage_box *box, const struct md_own_change *oc)
{
	if (oc->cur) {
		md_stamp_dir(box->user_dir, box->cur_dir, &box->cur_stamp);
		md_stamp_note(box, &box->cur_stamp);
	}
	if (oc->new) {
		md_stamp_dir(box->user_dir, box->new_dir, &box->new_stamp);
		md_stamp_note(box, &box->new_stamp);
	}
}

/* File tables */

void
md_ftable_clear(struct ftable *t)
{
	for (size_t i = 0; i < t->count; i++) {
		free(t->f[i].base);
		free(t->f[i].name);
	}
	t->count = 0;
}

void
md_ftable_free(struct ftable *t)
{
	md_ftable_clear(t);
	free(t->f);
	i_zero(t);
}

struct mfile *
md_ftable_add(struct ftable *t)
{
	struct mfile *f;

	xgrow(&t->f, &t->alloc, t->count + 1, sizeof(*t->f));
	f = &t->f[t->count++];
	i_zero(f);
	return f;
}

ssize_t
md_ftable_find(const struct ftable *t, uint32_t uid)
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

void
md_ftable_remove(struct ftable *t, size_t idx)
{
	if (idx >= t->count)
		return;
	free(t->f[idx].base);
	free(t->f[idx].name);
	memmove(&t->f[idx], &t->f[idx + 1], (t->count - idx - 1) * sizeof(*t->f));
	t->count--;
}

int
md_mfile_uid_cmp(const void *a, const void *b)
{
	const struct mfile *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid ? 1 : 0;
}

int32_t
md_local_tz_minutes(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return (int32_t)(tm.tm_gmtoff / 60);
}

char *
md_file_path(const struct storage_box *box, const struct mfile *f)
{
	return xasprintf("%s/%s", f->in_new ? box->new_dir : box->cur_dir, f->name);
}

int
md_mkdir_ok(const char *base, const char *path)
{
	struct stat st;

	if (fs_mkdir_beneath(base, path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	/* there already: a folder, not a link to one */
	if (fs_stat_beneath(base, path, &st) < 0)
		return -1;
	if (S_ISLNK(st.st_mode)) {
		fs_link_refused_log(base, path);
		errno = ELOOP;
		return -1;
	}
	return 0;
}

/* Creates <dir>/{cur,new,tmp} (and dir). */
int
md_make_maildir(const char *base, const char *dir)
{
	char *p;
	int ret = 0;

	if (md_mkdir_ok(base, dir) < 0)
		return -1;
	for (unsigned i = 0; i < 3 && ret == 0; i++) {
		static const char *const sub[] = { "cur", "new", "tmp" };

		p = xasprintf("%s/%s", dir, sub[i]);
		ret = md_mkdir_ok(base, p);
		free(p);
	}
	return ret;
}
