/* maildir-sync.c: scanning cur/ and new/ and bringing the state in line
   with them and with the uidlist (md_sync_locked), and the sync() op.

   Two openers. Whoever rewrites the uidlist reads it first if another
   process wrote it since (under the lock), so nothing another wrote is
   lost and the floor never goes down. A sync() that learns of a change
   (the file's letters differ from what the state has) gives it the
   other opener's recorded modseq if that is above all our clients saw,
   else a new one; one that finds a larger modseq recorded for the very
   flags the state has takes it (the larger wins, so both openers end up
   agreeing once both passed a batch point); our own unwritten changes
   under a floor another opener raised are given new modseqs above it.

   Every scan of new/ and cur/ happens under the lock, so that our own
   renames never make another of our processes believe a message was
   expunged; for tools that rename without the lock, a message missing
   from a scan is looked for once more before it is dropped.

   Messages seen in new/ are moved to cur/ by the first scan that sees
   them (they stay \Recent for the session that got them: the uidlist
   remembers the first recent UID). */
#include "log.h"
#include "backends/maildir/maildir-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MD_DUPLICATE ((struct mfile *)&md_duplicate_marker)

static const char md_duplicate_marker = 0;

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

		if (de->d_name[0] == '.' || md_base_len(de->d_name) == 0)
			continue;
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN && de->d_type != DT_LNK)
			continue;
		xgrow(&ds->d, &ds->alloc, ds->count + 1, sizeof(*ds->d));
		e = &ds->d[ds->count++];
		e->name = xstrdup(de->d_name);
		e->in_new = in_new;
		e->blen = md_base_len(e->name);
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

/* Fills vsize, date and tz of a file found without a uidlist record. */
static bool
md_describe_new_file(struct storage_box *box, const struct dent *e, struct mfile *f)
{
	char *path = xasprintf("%s/%s", e->in_new ? box->new_dir : box->cur_dir, e->name);
	struct stat st;
	uint64_t w;
	bool ok;

	if (md_base_field(e->name, e->blen, 'W', &w)) {
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
	f->tz = md_local_tz_minutes(f->date);
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
int
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
	md_stamp_file(box->uidlist_path, &fs);
	reread = fresh || !md_file_stamp_equal(&fs, &box->uidlist_stamp);
	i_zero(&ul);
	if (reread && md_uidlist_read(box, &ul, error_r) < 0)
		return -1;
	if (reread)
		box->uidlist_stamp = fs;

	if (fresh) {
		md_ftable_clear(&box->files);
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
		md_ftable_clear(&box->files);
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
		md_stamp_dir(box->cur_dir, &box->cur_stamp);
		md_stamp_dir(box->new_dir, &box->new_stamp);
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
			f = md_ftable_add(&next);
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
				ssize_t d = md_ftable_find(&ul.t, f->uid);

				f->rec_letters = d >= 0 ? ul.t.f[d].rec_letters : UINT64_MAX;
			} else {
				f->rec_letters = reread ? UINT64_MAX : e->known->rec_letters;
			}
			/* The recorded modseq stands only for the flags the
			   recorded name has. */
			f->modseq = strcmp(md_name_flags(e->known->name), md_name_flags(e->name)) == 0 ?
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
		f = md_ftable_add(&next);
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
		qsort(next.f, next.count, sizeof(*next.f), md_mfile_uid_cmp);

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
				ssize_t d = reread && ul.valid ? md_ftable_find(&ul.t, r->uid) : -1;
				uint64_t recorded = 0;

				r->size = next.f[j].vsize;
				/* another opener's modseq for these very flags */
				if (d >= 0 && ul.t.f[d].modseq > r->modseq &&
				    strcmp(md_name_flags(ul.t.f[d].name),
					   md_name_flags(next.f[j].name)) == 0)
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
	md_ftable_free(&box->files);
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
	if (write && md_uidlist_write(box, state, false, error_r) < 0)
		ret = -1;
out:
	md_ftable_free(&next);
	dents_free(&ds);
	free(known);
	md_uidlist_free(&ul);
	return ret;
}

/* True if nothing changed since the last scan (three stat() calls). */
bool
md_unchanged(struct storage_box *box)
{
	struct file_stamp fs;

	if (box->has_young || !md_dir_unchanged(box->cur_dir, &box->cur_stamp) ||
	    !md_dir_unchanged(box->new_dir, &box->new_stamp))
		return false;
	md_stamp_file(box->uidlist_path, &fs);
	return md_file_stamp_equal(&fs, &box->uidlist_stamp);
}

/* Finds the current name of f by its base (after another tool renamed
   it). Returns true if found. */
bool
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

int
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
