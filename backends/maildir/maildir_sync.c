/* maildir_sync.c: scanning cur/ and new/ and bringing the state in line
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
#include "backends/maildir/maildir_private.h"

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
read_dir_into(const char *base, const char *dir, bool in_new, struct dents *ds, char **error_r)
{
	struct dirent *de;
	DIR *d = fs_opendir_beneath(base, dir);

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
		if (de->d_type != DT_REG) {
			struct stat st;

			/* a link is never a message: skipped, logged once */
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			if (S_ISLNK(st.st_mode)) {
				char *p = xasprintf("%s/%s", dir, de->d_name);

				fs_link_refused_log(base, p);
				free(p);
				continue;
			}
		}
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
	if (read_dir_into(box->user_dir, box->cur_dir, false, ds, error_r) < 0 ||
	    read_dir_into(box->user_dir, box->new_dir, true, ds, error_r) < 0) {
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
md_file_vsize(const char *base, const char *path, uint64_t *vsize_r, struct stat *st_r)
{
	char *tmp;
	uint64_t size = 0, bare = 0;
	char prev = '\0';
	ssize_t n;
	int fd = fs_open_beneath(base, path, O_RDONLY, 0);

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
		ok = fs_stat_beneath(box->user_dir, path, &st) == 0;
		f->vsize = w;
	} else {
		ok = md_file_vsize(box->user_dir, path, &f->vsize, &st) == 0;
	}
	free(path);
	if (!ok || !S_ISREG(st.st_mode))
		return false;
	/* A tool that writes straight into new/ (cp) makes the file empty
	   first: not a message yet. Its close brings another event. */
	if (st.st_size == 0 && time(NULL) - st.st_mtim.tv_sec < MD_YOUNG_SECS) {
		/* Writing it does not touch the folder's mtime: scan again. */
		box->young_skipped = true;
		return false;
	}
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

	if (fs_rename_beneath(box->user_dir, from, to) == 0) {
		free(f->name);
		f->name = newname;
		f->in_new = false;
	} else {
		free(newname);
	}
	free(from);
	free(to);
}

/* One run of md_sync_locked(): what its steps share. */
struct sync_ctx {
	struct storage_box *box;
	struct mbox_state *state;
	struct uidlist ul;         /* the uidlist on disk (valid if read) */
	struct dents ds;           /* the scan of cur/ and new/ */
	struct mfile **known;      /* our table and the records others added, */
	size_t nknown;             /* by base name */
	struct ftable next;        /* the new table, by uid */
	bool fresh;                /* the state had no UIDVALIDITY yet */
	bool reread;               /* ul was read: the file changed (or fresh) */
	bool new_lineage;          /* another UIDVALIDITY on disk won */
	bool write;                /* the uidlist is to be written */
	bool kw_changed;           /* a keyword got a new letter */
	bool removed;              /* a message of the state went away */
	uint32_t uidnext;          /* next UID to give */
	uint32_t min_new_uid;      /* lowest UID of a file seen in new/ */
	/* what our clients may have seen, and what we had written */
	uint64_t pre, old_disk;
	uint64_t floor;            /* the ceiling C another writer left */
};

/* Reads dovecot-keywords, and dovecot-uidlist if it changed since we
   last read or wrote it (always for a fresh state). */
static int
sync_read_uidlist(struct sync_ctx *ctx, char **error_r)
{
	struct storage_box *box = ctx->box;
	struct file_stamp fs;

	md_kw_read(box);
	md_stamp_file(box->user_dir, box->uidlist_path, &fs);
	ctx->reread = ctx->fresh || !md_file_stamp_equal(&fs, &box->uidlist_stamp);
	if (ctx->reread && md_uidlist_read(box, &ctx->ul, error_r) < 0)
		return -1;
	if (ctx->reread)
		box->uidlist_stamp = fs;
	return 0;
}

/* Takes the UIDVALIDITY, next UID and modseq floor of the uidlist just
   read, or starts a new lineage. */
static void
sync_adopt_uidlist(struct sync_ctx *ctx)
{
	struct storage_box *box = ctx->box;
	struct mbox_state *state = ctx->state;
	const struct uidlist *ul = &ctx->ul;

	if (ctx->fresh) {
		md_ftable_clear(&box->files);
		if (ul->valid) {
			box->uidvalidity = ul->uidvalidity;
			box->uidnext = ul->uidnext;
		} else {
			box->uidvalidity = md_new_uidvalidity(box, 0);
			box->uidnext = 1;
			ctx->write = true;
		}
	} else if (ctx->reread && ul->valid && ul->uidvalidity != box->uidvalidity) {
		/* Another lineage on disk: it wins. */
		md_ftable_clear(&box->files);
		mbox_state_clear(state);
		box->uidvalidity = ul->uidvalidity;
		box->uidnext = ul->uidnext;
		ctx->new_lineage = true;
	} else if (ctx->reread && !ul->valid) {
		/* The uidlist went away while we had the mailbox: what we have
		   in memory is the best base. */
		ctx->write = true;
	}
	state->uidvalidity = box->uidvalidity;
	ctx->uidnext = box->uidnext;
	if (ctx->reread && ul->valid && ul->uidnext > ctx->uidnext)
		ctx->uidnext = ul->uidnext;
	/* HIGHESTMODSEQ never goes down, whoever wrote the file, and it is
	   at least the ceiling C: a writer may have handed out modseqs up to
	   it that are not in the file (it may have crashed since). */
	if (ctx->reread && ul->valid) {
		box->disk_highest = ul->highest_modseq;
		box->disk_ceiling = ul->ceiling;
		ctx->floor = ul->ceiling;
		if (ul->ceiling > state->highest_modseq)
			state->highest_modseq = ul->ceiling;
	} else if (ctx->reread) {
		box->disk_highest = 0;
		box->disk_ceiling = 0;
	}
	if (ul->torn || box->dirty || box->rewrite)
		ctx->write = true;
}

/* What is known: our table, plus what others recorded since. */
static void
sync_collect_known(struct sync_ctx *ctx)
{
	struct storage_box *box = ctx->box;
	const struct uidlist *ul = &ctx->ul;

	ctx->known = xmalloc((box->files.count + ul->t.count + 1) * sizeof(*ctx->known));
	for (size_t i = 0; i < box->files.count; i++)
		ctx->known[ctx->nknown++] = &box->files.f[i];
	for (size_t i = 0; i < ul->t.count; i++) {
		if (ctx->new_lineage || ctx->fresh || ul->t.f[i].uid >= box->uidnext)
			ctx->known[ctx->nknown++] = &ul->t.f[i];
	}
	if (ctx->nknown > 1)
		qsort(ctx->known, ctx->nknown, sizeof(*ctx->known), mfile_ptr_base_cmp);
}

/* Reads cur/ and new/ and matches each file to what is known by its
   base. Returns the number of messages of our table the scan missed. */
static size_t
sync_scan_once(struct sync_ctx *ctx)
{
	struct dents *ds = &ctx->ds;
	size_t missing = 0;

	if (ds->count > 1)
		qsort(ds->d, ds->count, sizeof(*ds->d), dent_name_cmp);
	for (size_t i = 0; i < ctx->nknown; i++)
		ctx->known[i]->seen = false;
	for (size_t i = 0; i < ds->count; i++) {
		struct mfile *k = known_lookup(ctx->known, ctx->nknown, ds->d[i].name,
					       ds->d[i].blen);

		/* A base seen twice (new/ and cur/ while another tool
		   moves it): only the first copy counts. */
		if (k != NULL && k->seen)
			k = MD_DUPLICATE;
		else if (k != NULL)
			k->seen = true;
		ds->d[i].known = k;
	}
	for (size_t i = 0; i < ctx->box->files.count; i++) {
		if (!ctx->box->files.f[i].seen)
			missing++;
	}
	return missing;
}

/* Scans the folders; once more if messages of our table are missing:
   renamed by a tool that does not lock, while we read? */
static int
sync_scan(struct sync_ctx *ctx, char **error_r)
{
	struct storage_box *box = ctx->box;

	for (unsigned pass = 0; pass < 2; pass++) {
		box->recheck_at = 0;
		box->young_skipped = false;
		md_stamp_dir(box->user_dir, box->cur_dir, &box->cur_stamp);
		md_stamp_dir(box->user_dir, box->new_dir, &box->new_stamp);
		md_stamp_note(box, &box->cur_stamp);
		md_stamp_note(box, &box->new_stamp);
		if (md_read_dirs(box, &ctx->ds, error_r) < 0)
			return -1;
		if (sync_scan_once(ctx) == 0 || pass == 1)
			break;
		dents_free(&ctx->ds);
	}
	return 0;
}

/* Adds to the new table the file e matched to a known message: it keeps
   its UID. */
static void
sync_add_known(struct sync_ctx *ctx, const struct dent *e)
{
	const struct uidlist *ul = &ctx->ul;
	struct mfile *f = md_ftable_add(&ctx->next);

	f->uid = e->known->uid;
	f->vsize = e->known->vsize;
	f->date = e->known->date;
	f->tz = e->known->tz;
	f->base = xstrndup(e->name, e->blen);
	f->name = xstrdup(e->name);
	f->in_new = e->in_new;
	f->described = e->known->described;
	/* what the uidlist on disk says of it now */
	if (ctx->reread && ul->valid) {
		ssize_t d = md_ftable_find(&ul->t, f->uid);

		f->rec_letters = d >= 0 ? ul->t.f[d].rec_letters : UINT64_MAX;
	} else {
		f->rec_letters = ctx->reread ? UINT64_MAX : e->known->rec_letters;
	}
	/* The recorded modseq stands only for the flags the
	   recorded name has. */
	f->modseq = strcmp(md_name_flags(e->known->name), md_name_flags(e->name)) == 0 ?
		e->known->modseq : 0;
	if (!f->described) {
		/* a foreign uidlist: W and T learnt once, then kept */
		struct mfile tmp = { 0 };
		uint64_t w = f->vsize;

		if (md_describe_new_file(ctx->box, e, &tmp)) {
			*f = (struct mfile){ .uid = f->uid, .base = f->base, .name = f->name,
					     .in_new = f->in_new, .modseq = f->modseq,
					     .rec_letters = f->rec_letters,
					     .described = tmp.described,
					     .vsize = w != 0 && tmp.described ? w : tmp.vsize,
					     .date = tmp.date, .tz = tmp.tz };
			ctx->write = true;
		}
	}
	if (f->in_new && f->uid < ctx->min_new_uid)
		ctx->min_new_uid = f->uid;
}

/* Adds to the new table the files nothing knew: they get new UIDs in
   name order (names start with the delivery time). */
static void
sync_add_unknown(struct sync_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ds.count; i++) {
		struct dent *e = &ctx->ds.d[i];
		struct mfile *f, tmp = { 0 };

		if (e->known != NULL)
			continue;
		if (!md_describe_new_file(ctx->box, e, &tmp))
			continue;       /* vanished meanwhile */
		if (ctx->uidnext == UINT32_MAX) {
			log_error("-", "%s: out of UIDs", ctx->box->dir);
			break;
		}
		f = md_ftable_add(&ctx->next);
		*f = tmp;
		f->rec_letters = UINT64_MAX;
		f->uid = ctx->uidnext++;
		f->base = xstrndup(e->name, e->blen);
		f->name = xstrdup(e->name);
		f->in_new = e->in_new;
		if (f->uid < ctx->min_new_uid)
			ctx->min_new_uid = f->uid;
		ctx->write = true;
	}
}

/* The new table: matched files keep their UIDs, the rest get new ones. */
static void
sync_build_table(struct sync_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ds.count; i++) {
		const struct dent *e = &ctx->ds.d[i];

		if (e->known != NULL && e->known != MD_DUPLICATE)
			sync_add_known(ctx, e);
	}
	sync_add_unknown(ctx);
	if (ctx->next.count > 1)
		qsort(ctx->next.f, ctx->next.count, sizeof(*ctx->next.f), md_mfile_uid_cmp);
}

/* True if the uidlist on disk no longer says what the new table does. */
static bool
sync_table_differs(const struct sync_ctx *ctx)
{
	const struct ftable *disk = ctx->reread && ctx->ul.valid ? &ctx->ul.t : &ctx->box->files;
	uint32_t disk_uidnext = ctx->reread && ctx->ul.valid ? ctx->ul.uidnext : ctx->box->uidnext;

	if (disk->count != ctx->next.count || disk_uidnext != ctx->uidnext)
		return true;
	for (size_t i = 0; i < ctx->next.count; i++) {
		if (disk->f[i].uid != ctx->next.f[i].uid)
			return true;
	}
	return false;
}

/* Brings the state's message r in line with its file f (the same UID),
   whose letters mean flags and kw. */
static void
sync_update_mail(struct sync_ctx *ctx, struct mail_rec *r, const struct mfile *f, uint8_t flags,
		 uint64_t kw)
{
	struct mbox_state *state = ctx->state;
	const struct uidlist *ul = &ctx->ul;
	ssize_t d = ctx->reread && ul->valid ? md_ftable_find(&ul->t, r->uid) : -1;
	uint64_t recorded = 0;

	r->size = f->vsize;
	/* another opener's modseq for these very flags */
	if (d >= 0 && ul->t.f[d].modseq > r->modseq &&
	    strcmp(md_name_flags(ul->t.f[d].name), md_name_flags(f->name)) == 0)
		recorded = ul->t.f[d].modseq;
	if ((flags & MAIL_FLAGS_ALL) != r->flags || kw != r->keywords) {
		/* A change news to us: above all our clients
		   saw (and the floor), so that none misses
		   it; the opener's own modseq if it is. */
		r->flags = flags & MAIL_FLAGS_ALL;
		r->keywords = kw;
		r->modseq = recorded > ctx->pre ? recorded : ++state->highest_modseq;
	} else if (recorded != 0) {
		/* the same flags, a later modseq: the larger
		   one wins, so that both openers agree */
		r->modseq = recorded;
	} else if (r->modseq > ctx->old_disk && r->modseq <= ctx->floor) {
		/* our change, not yet written, under a
		   floor another opener raised: a crash of
		   that opener must not leave it below what
		   its clients saw */
		r->modseq = ++state->highest_modseq;
	}
	if (r->modseq > state->highest_modseq)
		state->highest_modseq = r->modseq;
	mbox_state_flags_written(state, (size_t)(r - state->mails));
}

/* Appends the message of file f, new to the state, whose letters mean
   flags and kw. */
static int
sync_add_mail(struct sync_ctx *ctx, const struct mfile *f, uint8_t flags, uint64_t kw,
	      char **error_r)
{
	struct mbox_state *state = ctx->state;
	struct mail_rec m;

	i_zero(&m);
	m.uid = f->uid;
	m.flags = flags & MAIL_FLAGS_ALL;
	m.keywords = kw;
	m.internal_date = f->date;
	m.tz_minutes = f->tz;
	m.size = f->vsize;
	/* a new message gets a modseq above what our
	   clients saw (the recorded one on a first read) */
	m.modseq = f->modseq;
	if (m.modseq == 0 || (!ctx->fresh && !ctx->new_lineage && m.modseq <= ctx->pre))
		m.modseq = state->highest_modseq + 1;
	if (state->count > 0 && state->mails[state->count - 1].uid >= m.uid) {
		/* cannot happen in one lineage */
		*error_r = xasprintf("%s: UID %u out of order", ctx->box->dir, m.uid);
		return -1;
	}
	(void)mbox_state_append(state, &m);
	return 0;
}

/* Applies the new table to the state: both lists ascend by UID. */
static int
sync_apply_to_state(struct sync_ctx *ctx, char **error_r)
{
	struct mbox_state *state = ctx->state;
	const struct ftable *next = &ctx->next;
	size_t i = 0, j = 0;

	if (state->count == 0 && next->count > 0)
		mbox_state_reserve(state, next->count);
	while (i < state->count || j < next->count) {
		uint8_t flags;
		uint64_t kw;

		if (i < state->count &&
		    (j >= next->count || state->mails[i].uid < next->f[j].uid)) {
			mbox_state_remove(state, i);
			ctx->removed = true;
			continue;
		}
		md_flags_from_name(ctx->box, state, next->f[j].name, &flags, &kw);
		if (i < state->count && state->mails[i].uid == next->f[j].uid)
			sync_update_mail(ctx, &state->mails[i], &next->f[j], flags, kw);
		else if (sync_add_mail(ctx, &next->f[j], flags, kw, error_r) < 0)
			return -1;
		i++;
		j++;
	}
	return 0;
}

/* The new table replaces the box's; the next UID, first recent UID and
   HIGHESTMODSEQ of the state follow. */
static void
sync_commit_table(struct sync_ctx *ctx)
{
	struct storage_box *box = ctx->box;
	struct mbox_state *state = ctx->state;

	/* Removed by another tool: the mailbox changed, so HIGHESTMODSEQ
	   rises (RFC 7162 3.2), here so that it is written below. */
	if (ctx->removed && !ctx->fresh && !ctx->new_lineage)
		state->highest_modseq++;
	if (state->highest_modseq > box->disk_highest)
		ctx->write = true;
	md_ftable_free(&box->files);
	box->files = ctx->next;
	i_zero(&ctx->next);
	box->has_young = box->young_skipped;
	for (size_t k = 0; k < box->files.count; k++) {
		if (!box->files.f[k].described)
			box->has_young = true;
	}
	box->uidnext = ctx->uidnext;
	if (state->uidnext < ctx->uidnext)
		state->uidnext = ctx->uidnext;
	if (ctx->fresh || ctx->new_lineage) {
		uint32_t fr = ctx->ul.valid && ctx->ul.have_recent ? ctx->ul.first_recent :
			ctx->uidnext;

		if (ctx->min_new_uid < fr)
			fr = ctx->min_new_uid;
		state->first_recent_uid = fr;
		/* what the uidlist says, for the index (maildir_index.c) */
		box->first_recent = fr;
	}
}

/* Brings box->files and state in line with the disk; the lock is held.
   Returns 0, 1 (a new UIDVALIDITY for a state that had one) or -1. */
int
md_sync_locked(struct storage_box *box, struct mbox_state *state, char **error_r)
{
	struct sync_ctx ctx = {
		.box = box,
		.state = state,
		.fresh = state->uidvalidity == 0,
		.min_new_uid = UINT32_MAX,
		.pre = state->highest_modseq,
		.old_disk = box->disk_highest,
	};
	struct md_own_change own;
	int ret = -1;

	if (md_files_load(box, error_r) < 0)
		return -1;
	if (sync_read_uidlist(&ctx, error_r) < 0)
		return -1;
	sync_adopt_uidlist(&ctx);
	sync_collect_known(&ctx);
	if (sync_scan(&ctx, error_r) < 0)
		goto out;
	sync_build_table(&ctx);
	if (!ctx.write)
		ctx.write = sync_table_differs(&ctx);
	if (sync_apply_to_state(&ctx, error_r) < 0)
		goto out;
	sync_commit_table(&ctx);
	/* new/ -> cur/: our own renames, which need no scan afterwards. */
	md_own_change_begin(box, &own);
	for (size_t k = 0; k < box->files.count; k++) {
		if (box->files.f[k].in_new)
			md_move_to_cur(box, state, &box->files.f[k], &state->mails[k],
				       &ctx.kw_changed);
	}
	md_own_change_end(box, &own);
	if (ctx.kw_changed && md_kw_write(box, error_r) < 0)
		goto out;
	if (ctx.write && md_uidlist_write_soft(box, state, false, error_r) < 0)
		goto out;
	ret = ctx.new_lineage ? 1 : 0;
out:
	md_ftable_free(&ctx.next);
	dents_free(&ctx.ds);
	free(ctx.known);
	md_uidlist_free(&ctx.ul);
	return ret;
}

/* True if nothing changed since the last scan (three stat() calls), and
   no stamp taken too young to be trusted is due for its recheck. */
bool
md_unchanged(struct storage_box *box)
{
	struct file_stamp fs;

	if (box->recheck_at != 0 && mono_ms() >= box->recheck_at)
		return false;
	if (box->has_young || !md_dir_unchanged(box->user_dir, box->cur_dir, &box->cur_stamp) ||
	    !md_dir_unchanged(box->user_dir, box->new_dir, &box->new_stamp))
		return false;
	md_stamp_file(box->user_dir, box->uidlist_path, &fs);
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
		if (ds.d[i].blen == strlen(f->base) &&
		    strncmp(ds.d[i].name, f->base, ds.d[i].blen) == 0) {
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
md_sync(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	char **error_r)
{
	struct stat st;
	int ret;

	*err_r = STORAGE_ERR_NONE;
	if (!box->rewrite && md_unchanged(box)) {
		/* Nobody but us changed the folders: no scan. A batch of
		   our own flag renames is written once it is
		   MD_BATCH_WRITE_MS old (the ceiling C keeps a crash before
		   that safe, see maildir_flags.c), or at close. */
		if (!box->dirty || mono_ms() < box->dirty_since + MD_BATCH_WRITE_MS ||
		    (storage_space_pending(&box->space) && !storage_space_due(&box->space)))
			return 0;
		if (md_lock(box, err_r, error_r) < 0)
			return -1;
		ret = md_uidlist_write_soft(box, state, false, error_r);
		if (ret < 0)
			*err_r = storage_error_from_errno(errno);
		md_unlock(box);
		return ret;
	}
	if (md_lock(box, err_r, error_r) < 0)
		return -1;
	/* (dirty: the batch of flag changes is written here) */
	ret = md_sync_locked(box, state, error_r);
	if (ret < 0) {
		/* a mailbox removed under us is not the server's fault */
		*err_r = stat(box->dir, &st) < 0 && errno == ENOENT ?
			STORAGE_ERR_NOT_FOUND : storage_error_from_errno(errno);
	}
	md_unlock(box);
	return ret;
}
