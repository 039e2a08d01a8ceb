/* flat_sync.c: bringing the shared mailbox state in line with the mail
   file and the index on disk: the reconciliation of an index with a
   changed mail file (flat_reconcile()), the full reload (flat_refresh()),
   the tail path (flat_tail_sync()) and sync().

   Cost on a big mailbox. A box remembers the stamps (inode, size, mtime)
   of the index it last wrote or read, and whether that index holds exactly
   state's records (disk_same). While both hold, nothing needs the whole
   index again:
   - APPEND writes and fsyncs the message, then writes its one record and
     the header in place (flat_index_write_state_tail()): O(message size).
   - Bytes appended by another program ("cat >>", an unlocking deliverer)
     are parsed from where the index stops (flat_tail_sync()), and only
     the new records are written: O(new bytes).
   - sync() with nothing changed is two stat() calls.
   When the stamps differ (another process wrote the index, or replaced it
   by rename), the index is read again in full (flat_refresh()), never
   written over blindly.
   - The open of a large mailbox whose index matches its mail file maps
     the index's records instead of reading them (refresh_mapped()): one
     header read, one stat(), the last message hashed; O(1).

   Crash safety: messages the index knows keep their UIDs, checked by
   hash; bytes past what the index knows are parsed and get new UIDs in
   file order; a file changed in a way that cannot keep UIDs in order gets
   a new UIDVALIDITY (flags reset). A lost, stale or damaged index
   therefore never loses or duplicates a message. */
#include "fileio.h"
#include "safepath.h"
#include "log.h"
#include "flat_private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct match_key {
	uint64_t hash, len;
	size_t idx;
};

static int
match_key_cmp(const void *a, const void *b)
{
	const struct match_key *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	return 0;
}

/* Smallest record index >= min_idx with (hash, len), or -1. */
static ssize_t
match_lookup(const struct match_key *keys, size_t n, uint64_t hash, uint64_t len, size_t min_idx)
{
	struct match_key want = { hash, len, min_idx };
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (match_key_cmp(&keys[mid], &want) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && keys[lo].hash == hash && keys[lo].len == len)
		return (ssize_t)keys[lo].idx;
	return -1;
}

static void
view_push(struct view *v, const struct frec *r)
{
	xgrow(&v->recs, &v->alloc, v->count + 1, sizeof(*v->recs));
	v->recs[v->count++] = *r;
}

void
flat_view_new_message(struct view *v, struct frec *r)
{
	r->uid = v->uidnext;
	if (v->uidnext < UINT32_MAX)
		v->uidnext++;
	r->flags = 0;
	r->keywords = 0;
	r->modseq = ++v->highest_modseq;
	view_push(v, r);
}

enum recon_kind {
	RECON_NONE,                /* the index is right as it is */
	RECON_TAIL,                /* records from *first_r on (and the header) changed */
	RECON_FULL,                /* the index must be rewritten */
};

static bool
view_stat_equal(const struct view *v, const struct stat *st)
{
	return v->ino == (uint64_t)st->st_ino && v->dev == (uint64_t)st->st_dev &&
		v->mail_size == (uint64_t)st->st_size && v->mtime_sec == (int64_t)st->st_mtim.tv_sec &&
		v->mtime_nsec == (int64_t)st->st_mtim.tv_nsec;
}

void
flat_view_set_stat(struct view *v, const struct stat *st)
{
	if (st == NULL) {
		v->ino = v->dev = v->mail_size = 0;
		v->mtime_sec = v->mtime_nsec = 0;
		return;
	}
	v->ino = (uint64_t)st->st_ino;
	v->dev = (uint64_t)st->st_dev;
	v->mail_size = (uint64_t)st->st_size;
	v->mtime_sec = (int64_t)st->st_mtim.tv_sec;
	v->mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
}

/* True if the index needs no work for this mail file (st NULL: absent). */
static bool
view_matches_file(const struct view *v, const struct stat *st)
{
	if (st == NULL)
		return v->count == 0 && v->mail_size == 0 && v->ino == 0;
	return view_stat_equal(v, st) && v->parsed_end == v->mail_size;
}

/* Checks that the bytes the index knows are still where it says: the last
   record's hash. */
static bool
view_boundary_ok(const struct view *v, int fd)
{
	const struct frec *last;
	char *data;
	ssize_t n;
	bool ok;

	if (v->count == 0)
		return v->parsed_end == 0;
	last = &v->recs[v->count - 1];
	if (last->off + last->len != v->parsed_end || last->len > (uint64_t)SSIZE_MAX / 2)
		return false;
	data = xmalloc((size_t)last->len);
	n = fd_pread_full(fd, data, (size_t)last->len, last->off);
	ok = n == (ssize_t)last->len && flat_hash_bytes(data, (size_t)last->len) == last->hash;
	free(data);
	return ok;
}

/* Resets v to a new UIDVALIDITY holding the messages of sc, flags lost. */
static void
view_reset(struct storage_box *box, struct view *v, struct scan *sc)
{
	uint32_t old = v->uidvalidity;

	for (unsigned i = 0; i < v->kw_count; i++)
		free(v->kw[i]);
	v->kw_count = 0;
	v->count = 0;
	v->uidvalidity = flat_new_uidvalidity(box, old);
	v->uidnext = 1;
	v->first_recent_uid = 1;
	for (size_t i = 0; i < sc->count; i++)
		flat_view_new_message(v, &sc->recs[i]);
}

/* The file only grew: parses the new part (from the start of an
   unterminated last message, which may have grown) into v. Returns 1, 0
   if the last message did not stay where it was (a full rescan is
   needed; v unchanged), -1 on error. Sets *kind_r to RECON_TAIL and
   *first_r as soon as the scan succeeded, on 0 too: the rescan keeps
   them, as it always did (flat_index_write_tail() falls back to a full
   write when they do not fit the new view). */
static int
reconcile_grown(struct storage_box *box, struct view *v, int fd, uint64_t size, bool tail_ok,
		int64_t now, enum recon_kind *kind_r, size_t *first_r, char **error_r)
{
	struct frec *last = v->count > 0 ? &v->recs[v->count - 1] : NULL;
	bool reopen = v->last_open && last != NULL;
	uint64_t from = reopen ? last->off : v->parsed_end;
	size_t start = 0;
	struct scan sc;

	if (flat_scan(fd, from, size, tail_ok, reopen, now, box->mail_path, &sc, error_r) < 0)
		return -1;
	*kind_r = RECON_TAIL;
	*first_r = v->count;
	if (reopen) {
		if (sc.count == 0 || sc.recs[0].off != last->off) {
			flat_scan_free(&sc);
			return 0;
		}
		last->len = sc.recs[0].len;
		last->hash = sc.recs[0].hash;
		last->served = sc.recs[0].served;
		*first_r = v->count - 1;
		start = 1;
	}
	for (size_t i = start; i < sc.count; i++)
		flat_view_new_message(v, &sc.recs[i]);
	v->parsed_end = sc.end;
	v->last_open = sc.count > 0 ? sc.last_open : v->last_open;
	box->pending = sc.pending;
	flat_scan_free(&sc);
	return 1;
}

/* Matches the messages of a full scan with v's records by (hash, length):
   the matched ones keep their UIDs and flags, in file order; unmatched
   ones after them are new messages. A matched message after an unmatched
   one means the file was changed or reordered: a new UIDVALIDITY. */
static void
reconcile_match(struct storage_box *box, struct view *v, struct scan *sc)
{
	struct match_key *keys = xmalloc((v->count + 1) * sizeof(*keys));
	struct frec *old = v->recs;
	size_t old_count = v->count, next = 0;
	bool unmatched = false, conflict = false;

	for (size_t i = 0; i < old_count; i++) {
		keys[i].hash = old[i].hash;
		keys[i].len = old[i].len;
		keys[i].idx = i;
	}
	qsort(keys, old_count, sizeof(*keys), match_key_cmp);
	v->recs = NULL;
	v->count = v->alloc = 0;
	for (size_t i = 0; i < sc->count && !conflict; i++) {
		ssize_t k = match_lookup(keys, old_count, sc->recs[i].hash, sc->recs[i].len, next);

		if (k < 0) {
			unmatched = true;
			continue;
		}
		if (unmatched) {
			conflict = true;
			break;
		}
		old[k].off = sc->recs[i].off;
		old[k].served = sc->recs[i].served;
		view_push(v, &old[k]);
		next = (size_t)k + 1;
	}
	free(keys);
	if (conflict) {
		log_warn("-", "%s: messages were changed or reordered by another program; "
			 "new UIDVALIDITY (flags are reset, no mail is lost)", box->mail_path);
		view_reset(box, v, sc);
	} else {
		/* The unmatched messages all follow the matched ones. */
		for (size_t i = v->count; i < sc->count; i++)
			flat_view_new_message(v, &sc->recs[i]);
	}
	free(old);
}

/* Brings v (the records as last known, valid or not) in line with the mail
   file (fd and st; fd < 0 when it is absent). Messages the index knows
   keep their UIDs; new ones get new UIDs; if the file changed in a way
   that cannot keep UIDs in order, a new UIDVALIDITY. */
static int
flat_reconcile(struct storage_box *box, struct view *v, bool valid, int fd, const struct stat *st,
	       enum recon_kind *kind_r, size_t *first_r, char **error_r)
{
	int64_t now = (int64_t)time(NULL);
	bool tail_ok = st != NULL && now - (int64_t)st->st_mtim.tv_sec >= FLAT_TAIL_AGE_SECS;
	uint64_t size = st != NULL ? (uint64_t)st->st_size : 0;
	struct scan sc;

	*kind_r = RECON_FULL;
	*first_r = 0;
	box->pending = false;
	if (fd < 0) {
		/* INBOX without a file: empty. */
		if (!valid) {
			flat_view_free(v);
			v->uidvalidity = flat_new_uidvalidity(box, 0);
			v->uidnext = 1;
			v->first_recent_uid = 1;
		}
		v->count = 0;
		v->parsed_end = 0;
		v->last_open = false;
		flat_view_set_stat(v, NULL);
		return 0;
	}
	if (valid && view_matches_file(v, st)) {
		*kind_r = RECON_NONE;
		return 0;
	}
	if (valid && v->ino == (uint64_t)st->st_ino && v->dev == (uint64_t)st->st_dev &&
	    (size > v->mail_size || (size == v->mail_size && view_stat_equal(v, st))) &&
	    v->parsed_end <= size && view_boundary_ok(v, fd)) {
		int r = reconcile_grown(box, v, fd, size, tail_ok, now, kind_r, first_r, error_r);

		if (r < 0)
			return -1;
		if (r > 0) {
			flat_view_set_stat(v, st);
			return 0;
		}
	}
	if (flat_scan(fd, 0, size, tail_ok, false, now, box->mail_path, &sc, error_r) < 0)
		return -1;
	if (!valid) {
		if (sc.count > 0)
			log_warn("-", "%s: no usable index, new UIDVALIDITY (flags are reset, "
				 "no mail is lost)", box->mail_path);
		view_reset(box, v, &sc);
	} else {
		reconcile_match(box, v, &sc);
	}
	v->parsed_end = sc.end;
	v->last_open = sc.last_open;
	box->pending = sc.pending;
	flat_scan_free(&sc);
	flat_view_set_stat(v, st);
	return 0;
}

/* Keyword bits of the view renumbered to state's table. */
static uint64_t
remap_keywords(struct mbox_state *state, const int *map, uint64_t bits)
{
	uint64_t out = 0;

	if (bits == 0)
		return 0;
	for (unsigned i = 0; i < MBOX_MAX_KEYWORDS; i++) {
		if ((bits & (1ULL << i)) != 0 && map[i] >= 0)
			out |= 1ULL << map[i];
	}
	return out;
}

void
flat_box_take_view_stat(struct storage_box *box, const struct view *v)
{
	box->mail_size = v->mail_size;
	box->ino = v->ino;
	box->dev = v->dev;
	box->mtime_sec = v->mtime_sec;
	box->mtime_nsec = v->mtime_nsec;
	box->parsed_end = v->parsed_end;
	box->last_open = v->last_open;
	if (v->parsed_end < v->mail_size)
		box->pending = true;
}

/* Makes state hold exactly v's messages. Returns 1 if that meant a new
   UIDVALIDITY for a state that had one, else 0. */
int
flat_view_apply(const struct view *v, struct mbox_state *state)
{
	int map[MBOX_MAX_KEYWORDS];
	struct mail_rec m;
	size_t i = 0, j = 0;
	bool restarted = false;
	int ret = 0;

	if (state->uidvalidity != v->uidvalidity) {
		ret = state->uidvalidity != 0 ? 1 : 0;
		mbox_state_clear(state);
		state->uidvalidity = v->uidvalidity;
		state->first_recent_uid = v->first_recent_uid;
		state->seen_below = v->seen_below;
	}
	for (unsigned k = 0; k < MBOX_MAX_KEYWORDS; k++)
		map[k] = k < v->kw_count ? mbox_state_keyword(state, v->kw[k], true) : -1;
	/* The messages v no longer has leave first, in one pass (a mass
	   expunge by another process must not cost a memmove each). */
	if (state->count > 0) {
		uint32_t *gone = NULL;
		size_t ngone = 0, galloc = 0;

		for (i = 0; i < state->count; i++) {
			uint32_t uid = state->mails[i].uid;

			while (j < v->count && v->recs[j].uid < uid)
				j++;
			if (j < v->count && v->recs[j].uid == uid)
				continue;
			xgrow(&gone, &galloc, ngone + 1, sizeof(*gone));
			gone[ngone++] = uid;
		}
		mbox_state_remove_uids(state, gone, ngone);
		free(gone);
		i = j = 0;
	}
	/* one allocation for a fresh load */
	if (state->count == 0)
		mbox_state_reserve(state, v->count);
	/* Now every UID of state is in v: update those, append the rest. */
	while (j < v->count) {
		flat_frec_to_mail(&v->recs[j], &m);
		m.keywords = remap_keywords(state, map, m.keywords);
		if (i < state->count && state->mails[i].uid == m.uid) {
			struct mail_rec *cur = &state->mails[i];

			cur->size = m.size;
			cur->internal_date = m.internal_date;
			cur->tz_minutes = m.tz_minutes;
			memcpy(cur->priv, m.priv, sizeof(cur->priv));
			(void)mbox_state_set_flags(state, i, m.flags, m.keywords);
			i++;
			j++;
			continue;
		}
		if (i < state->count || (state->count > 0 &&
					 state->mails[state->count - 1].uid >= m.uid)) {
			/* A known UID below ours appeared: cannot happen in one
			   lineage; start the state over. Once: v's UIDs are
			   ascending (flat_index_read() and flat_reconcile() make
			   sure), so a second time is impossible; the bound
			   keeps the loop finite whatever. */
			if (restarted) {
				j++;
				continue;
			}
			restarted = true;
			mbox_state_clear(state);
			state->uidvalidity = v->uidvalidity;
			ret = 1;
			i = j = 0;
			for (unsigned k = 0; k < MBOX_MAX_KEYWORDS; k++)
				map[k] = k < v->kw_count ? mbox_state_keyword(state, v->kw[k], true) : -1;
			continue;
		}
		(void)mbox_state_append(state, &m);
		i++;
		j++;
	}
	if (v->uidnext > state->uidnext)
		state->uidnext = v->uidnext;
	if (v->highest_modseq > state->highest_modseq)
		state->highest_modseq = v->highest_modseq;
	return ret;
}

static int
flat_open_mail(struct storage_box *box, struct stat *st_r, bool *exists_r, enum storage_error *err_r,
	       char **error_r)
{
	struct stat st;
	int fd;

	*exists_r = false;
	if (fs_stat_beneath(box->user_dir, box->mail_path, &st) < 0) {
		if (errno == ENOENT && box->inbox) {
			if (box->fd >= 0) {
				close(box->fd);
				box->fd = -1;
			}
			return 0;
		}
		*err_r = errno == ENOENT ? STORAGE_ERR_NOT_FOUND : STORAGE_ERR_TEMP;
		*error_r = xasprintf("stat %s: %s", box->mail_path, strerror(errno));
		return -1;
	}
	if (box->fd >= 0) {
		struct stat cur;

		if (fstat(box->fd, &cur) == 0 && cur.st_ino == st.st_ino && cur.st_dev == st.st_dev) {
			*st_r = cur;
			*exists_r = true;
			return 0;
		}
		close(box->fd);
		box->fd = -1;
	}
	fd = fs_open_beneath(box->user_dir, box->mail_path, O_RDONLY, 0);
	if (fd < 0) {
		*err_r = errno == ENOENT && !box->inbox ? STORAGE_ERR_NOT_FOUND : STORAGE_ERR_TEMP;
		if (errno == ENOENT && box->inbox)
			return 0;
		*error_r = xasprintf("open %s: %s", box->mail_path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		*error_r = xasprintf("fstat %s: %s", box->mail_path, strerror(errno));
		close(fd);
		return -1;
	}
	box->fd = fd;
	*exists_r = true;
	return 0;
}

/* Makes state hold v's messages and box v's stamps, box->pending then
   being pending. Returns like flat_view_apply(). */
static int
refresh_take_view(struct storage_box *box, const struct view *v, struct mbox_state *state,
		  bool pending)
{
	int ret = flat_view_apply(v, state);

	box->disk_same = flat_keywords_same(v, state);
	flat_box_take_view_stat(box, v);
	box->pending = pending;
	return ret;
}

/* The header size box may write records against: 0 (never matches, so
   the first write is a whole rewrite) for an index of an older version. */
static uint32_t
view_disk_header_size(const struct view *v)
{
	return v->version == IDX_VERSION ? v->header_size : 0;
}

/* Takes the header of v (just read, records not decoded) into a fresh
   state, whose records are mapped. Returns false if the keyword table
   would not map one to one (names equal but for case). */
static bool
mapped_take_header(const struct view *v, struct mbox_state *state)
{
	state->uidvalidity = v->uidvalidity;
	state->uidnext = v->uidnext;
	state->first_recent_uid = v->first_recent_uid;
	state->seen_below = v->seen_below;
	state->highest_modseq = v->highest_modseq;
	for (unsigned k = 0; k < v->kw_count; k++) {
		if (mbox_state_keyword(state, v->kw[k], true) != (int)k)
			return false;
	}
	return true;
}

static bool tail_boundary_ok_at(int fd, uint64_t parsed_end, const struct mail_rec *last);

/* The open of a large mailbox after a restart, without reading its
   index: when the index header is valid and the mail file is the one it
   describes (same inode, not shrunk, the last known message in place:
   one stat() and one pread() of that message), the records are mapped
   into state (mbox_state_map()) and only the last ones are checked.
   Bytes the mail file gained since are then parsed by the usual tail
   path. O(1) in the number of messages. Returns 1 if state is loaded, 0
   if this does not apply (nothing changed: the caller reads the index),
   -1 on error. */
static int
refresh_mapped(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	       char **error_r)
{
	struct view v;
	struct stat st;
	bool exists, ok;
	char *error = NULL;
	int ifd, r;

	if (state->mapped || state->count != 0 || state->uidvalidity != 0)
		return 0;
	if (flat_open_mail(box, &st, &exists, err_r, error_r) < 0)
		return -1;
	r = flat_index_read_head(box->user_dir, box->index_path, &v, &ifd, &error);
	free(error);
	error = NULL;
	if (r <= 0)
		return 0;
	ok = exists && box->fd >= 0 && v.count > 0 && v.count >= storage_map_min_count &&
		v.ino == (uint64_t)st.st_ino && v.dev == (uint64_t)st.st_dev &&
		(uint64_t)st.st_size >= v.mail_size && v.parsed_end <= (uint64_t)st.st_size;
	/* The read lock first, so that no in-place writer changes a record
	   between the checks and the mapping. */
	if (ok && mbox_map_read_lock(ifd)) {
		ok = mbox_state_map(state, ifd, v.header_size, v.count, &error) == 0;
		free(error);
		if (ok && (!flat_index_tail_sane(&v, state) || !mapped_take_header(&v, state) ||
			   !tail_boundary_ok_at(box->fd, v.parsed_end,
						&state->mails[state->count - 1]))) {
			mbox_state_deinit(state);
			mbox_state_init(state);
			ok = false;
		}
	} else {
		ok = false;
	}
	if (!ok) {
		mbox_map_write_end(ifd, false);
		close(ifd);
		flat_view_free(&v);
		return 0;
	}
	flat_box_set_index_fd(box, ifd, v.header_size);
	box->index_mapped = true;
	box->disk_same = true;
	flat_box_take_view_stat(box, &v);
	box->pending = v.parsed_end < v.mail_size;
	flat_view_free(&v);
	/* the file grew since (or a young tail waits): the tail path */
	if (!flat_box_stat_equal(box, &st) || box->pending)
		return flat_catch_up(box, state, err_r, error_r) < 0 ? -1 : 1;
	return 1;
}

/* Brings state in line with the mail file and the index on disk, writing
   the index if it was behind. Takes the lock only when something must be
   written (unless the caller holds it). Returns 0, 1 (new UIDVALIDITY for
   a state that had one) or -1. */
int
flat_refresh(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	     char **error_r)
{
	bool took_lock = false;
	int ret = -1;

	ret = refresh_mapped(box, state, err_r, error_r);
	if (ret != 0)
		return ret < 0 ? -1 : 0;
	ret = -1;
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		struct view v;
		struct stat st;
		bool exists, valid;
		enum recon_kind kind;
		size_t first;
		int ifd, r;

		if (flat_open_mail(box, &st, &exists, err_r, error_r) < 0)
			break;
		r = flat_index_read(box->user_dir, box->index_path, &v, &ifd, error_r);
		if (r < 0) {
			*err_r = STORAGE_ERR_TEMP;
			break;
		}
		valid = r > 0;
		if (valid && view_matches_file(&v, exists ? &st : NULL)) {
			if (storage_space_pending(&box->space))
				storage_space_cleared(&box->space, box->index_path);
			flat_box_set_index_fd(box, ifd, view_disk_header_size(&v));
			ret = refresh_take_view(box, &v, state, false);
			flat_view_free(&v);
			break;
		}
		if (!box->locked) {
			if (ifd >= 0)
				close(ifd);
			flat_view_free(&v);
			if (flat_lock(box, false, err_r, error_r) < 0)
				break;
			took_lock = true;
			continue;
		}
		if (!valid && state->uidvalidity != 0) {
			/* The index went away while we had the mailbox open:
			   what we have in memory is the best base. */
			flat_view_free(&v);
			flat_view_from_state(box, state, true, &v);
			valid = true;
			ifd = -1;
		}
		/* A valid index of another lineage than state's wins. */
		if (flat_reconcile(box, &v, valid, exists ? box->fd : -1, exists ? &st : NULL,
				   &kind, &first, error_r) < 0) {
			*err_r = STORAGE_ERR_TEMP;
			if (ifd >= 0)
				close(ifd);
			flat_view_free(&v);
			break;
		}
		if (ifd >= 0)
			flat_box_set_index_fd(box, ifd, view_disk_header_size(&v));
		else
			flat_box_set_index_fd(box, -1, 0);
		if (kind == RECON_TAIL && ifd >= 0)
			r = flat_index_write_tail(box, &v, first, error_r);
		else if (kind != RECON_NONE || ifd < 0)
			r = flat_index_write_full(box, &v, error_r);
		else
			r = 0;
		if (r < 0 && storage_errno_is_space(errno)) {
			/* Reading goes on: state is what the index would
			   hold; the write is retried (flat_index_retry()). */
			storage_space_failed(&box->space, box->index_path, errno);
			free(*error_r);
			*error_r = NULL;
			r = 0;
		} else if (r == 0 && storage_space_pending(&box->space)) {
			storage_space_cleared(&box->space, box->index_path);
		}
		if (r < 0) {
			*err_r = storage_error_from_errno(errno);
			flat_view_free(&v);
			break;
		}
		ret = refresh_take_view(box, &v, state, box->pending || v.parsed_end < v.mail_size);
		if (storage_space_pending(&box->space))
			box->disk_same = false;
		flat_view_free(&v);
		break;
	}
	if (took_lock)
		flat_unlock(box);
	return ret;
}

bool
flat_box_stat_equal(const struct storage_box *box, const struct stat *st)
{
	return box->ino == (uint64_t)st->st_ino && box->dev == (uint64_t)st->st_dev &&
		box->mail_size == (uint64_t)st->st_size &&
		box->mtime_sec == (int64_t)st->st_mtim.tv_sec &&
		box->mtime_nsec == (int64_t)st->st_mtim.tv_nsec;
}

void
flat_box_set_stat(struct storage_box *box, const struct stat *st)
{
	box->ino = (uint64_t)st->st_ino;
	box->dev = (uint64_t)st->st_dev;
	box->mail_size = (uint64_t)st->st_size;
	box->mtime_sec = (int64_t)st->st_mtim.tv_sec;
	box->mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
}

/* True if neither the mail file nor the index changed since state was
   last brought in line with them (two stat() calls). */
static bool
flat_box_unchanged(struct storage_box *box)
{
	struct stat st;
	bool mail_same;

	if (box->pending)
		return false;
	/* A hint only: a change is then read through the confined opens. */
	if (fs_stat_hint(box->mail_path, &st) == 0)
		mail_same = flat_box_stat_equal(box, &st);
	else
		mail_same = errno == ENOENT && box->inbox && box->ino == 0;
	return mail_same && flat_index_ours(box);
}

/* What flat_tail_sync() changes in state and box, to undo it when the
   index cannot be written. */
struct tail_undo {
	size_t count;
	uint32_t uidnext;
	uint64_t highest_modseq;
	struct mail_rec last;      /* state's last message, if any */
	uint64_t mail_size, ino, dev, parsed_end;
	int64_t mtime_sec, mtime_nsec;
	bool last_open, pending;
};

static void
tail_undo_save(const struct storage_box *box, const struct mbox_state *state,
	       struct tail_undo *u)
{
	u->count = state->count;
	u->uidnext = state->uidnext;
	u->highest_modseq = state->highest_modseq;
	u->last = state->count > 0 ? state->mails[state->count - 1] : (struct mail_rec){ 0 };
	u->mail_size = box->mail_size;
	u->ino = box->ino;
	u->dev = box->dev;
	u->mtime_sec = box->mtime_sec;
	u->mtime_nsec = box->mtime_nsec;
	u->parsed_end = box->parsed_end;
	u->last_open = box->last_open;
	u->pending = box->pending;
}

static void
tail_undo_restore(struct storage_box *box, struct mbox_state *state, const struct tail_undo *u)
{
	state->count = u->count;
	state->uidnext = u->uidnext;
	state->highest_modseq = u->highest_modseq;
	if (u->count > 0)
		state->mails[u->count - 1] = u->last;
	box->mail_size = u->mail_size;
	box->ino = u->ino;
	box->dev = u->dev;
	box->mtime_sec = u->mtime_sec;
	box->mtime_nsec = u->mtime_nsec;
	box->parsed_end = u->parsed_end;
	box->last_open = u->last_open;
	box->pending = u->pending;
	/* what the index holds is unknown now: read it next time */
	box->index_ino = 0;
}

/* The same check as view_boundary_ok(), on state's last message (last,
   NULL if none), for a mail file fd parsed up to parsed_end. */
static bool
tail_boundary_ok_at(int fd, uint64_t parsed_end, const struct mail_rec *last)
{
	struct frec lr;
	struct view lv;

	i_zero(&lv);
	lv.parsed_end = parsed_end;
	if (last != NULL) {
		flat_mail_to_frec(last, &lr);
		lv.recs = &lr;
		lv.count = 1;
	}
	return view_boundary_ok(&lv, fd);
}

static bool
tail_boundary_ok(const struct storage_box *box, const struct mail_rec *last)
{
	return tail_boundary_ok_at(box->fd, box->parsed_end, last);
}

/* Takes the messages of sc (parsed from the end of what state knows, or
   from its unterminated last message when reopen) into state, and the
   mail file's new stamps st into box. Returns the index of the first
   message of state that changed. */
static size_t
tail_take_scan(struct storage_box *box, struct mbox_state *state, const struct scan *sc,
	       bool reopen, const struct stat *st)
{
	size_t first = state->count, start = 0;

	if (reopen) {
		/* the unterminated last message grew */
		struct mail_rec *last = &state->mails[state->count - 1];

		last->priv[1] = sc->recs[0].len;
		last->priv[2] = sc->recs[0].hash;
		last->size = sc->recs[0].served;
		first = state->count - 1;
		start = 1;
	}
	for (size_t i = start; i < sc->count; i++) {
		struct frec r = sc->recs[i];
		struct mail_rec m;

		r.uid = state->uidnext;
		r.flags = 0;
		r.keywords = 0;
		r.modseq = state->highest_modseq + 1;
		flat_frec_to_mail(&r, &m);
		(void)mbox_state_append(state, &m);
	}
	flat_box_set_stat(box, st);
	box->parsed_end = sc->end;
	if (sc->count > 0)
		box->last_open = sc->last_open;
	box->pending = sc->pending || box->parsed_end < box->mail_size;
	return first;
}

/* The tail path of a sync, with the lock held: when the index is ours and
   holds exactly state's records, and the mail file only grew, parses the
   bytes after the part the index knows and appends their messages to
   state and to the index. O(new bytes + the last known message, which is
   re-hashed to make sure the file was not rewritten under the same
   inode). Returns 1 if done, 0 if this case does not apply (the caller
   does a full flat_refresh(); nothing was changed), -1 on error (state
   and box as before). */
static int
flat_tail_sync(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	       char **error_r)
{
	int64_t now = (int64_t)time(NULL);
	struct mail_rec *last;
	struct tail_undo undo;
	size_t first, start;
	uint64_t size, from;
	bool exists, reopen;
	struct stat st;
	struct scan sc;

	if (!box->disk_same || !flat_index_ours(box) || box->ino == 0)
		return 0;
	if (flat_open_mail(box, &st, &exists, err_r, error_r) < 0)
		return -1;
	if (!exists || box->fd < 0 || box->ino != (uint64_t)st.st_ino ||
	    box->dev != (uint64_t)st.st_dev)
		return 0;
	size = (uint64_t)st.st_size;
	/* Grown, or the same file with a pending tail; anything else (same
	   size but written, shrunk) needs the matching of flat_reconcile(). */
	if (!(size > box->mail_size || flat_box_stat_equal(box, &st)) || box->parsed_end > size)
		return 0;
	last = state->count > 0 ? &state->mails[state->count - 1] : NULL;
	if (!tail_boundary_ok(box, last))
		return 0;
	reopen = box->last_open && last != NULL;
	from = reopen ? last->priv[0] : box->parsed_end;
	if (flat_scan(box->fd, from, size,
		      now - (int64_t)st.st_mtim.tv_sec >= FLAT_TAIL_AGE_SECS, reopen, now,
		      box->mail_path, &sc, error_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		return -1;
	}
	if (reopen && (sc.count == 0 || sc.recs[0].off != last->priv[0])) {
		flat_scan_free(&sc);
		return 0;
	}
	start = reopen ? 1 : 0;
	if ((uint64_t)state->uidnext + (sc.count - start) > UINT32_MAX) {
		/* out of UIDs: flat_refresh() does what it does for that */
		flat_scan_free(&sc);
		return 0;
	}
	tail_undo_save(box, state, &undo);
	first = tail_take_scan(box, state, &sc, reopen, &st);
	flat_scan_free(&sc);
	if (first == state->count && box->parsed_end == undo.parsed_end &&
	    undo.mail_size == box->mail_size && undo.mtime_sec == box->mtime_sec &&
	    undo.mtime_nsec == box->mtime_nsec)
		return 1;       /* a pending tail that is still pending: nothing to write */
	if (flat_index_write_state_tail(box, state, first, error_r) < 0) {
		*err_r = storage_error_from_errno(errno);
		tail_undo_restore(box, state, &undo);
		return -1;
	}
	return 1;
}

/* Brings state in line with the disk: nothing if nothing changed, the
   tail path when only the mail file grew behind our own index, else a
   full flat_refresh(). Takes the lock only if something must be written
   (unless the caller holds it). Returns like flat_refresh(). */
int
flat_catch_up(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	      char **error_r)
{
	bool took = false;
	int ret;

	if (flat_box_unchanged(box))
		return 0;
	if (!box->disk_same || !flat_index_ours(box))
		return flat_refresh(box, state, err_r, error_r);
	if (!box->locked) {
		if (flat_lock(box, false, err_r, error_r) < 0)
			return -1;
		took = true;
	}
	ret = flat_tail_sync(box, state, err_r, error_r);
	if (ret == 0)
		ret = flat_refresh(box, state, err_r, error_r);
	else if (ret > 0)
		ret = 0;
	if (took)
		flat_unlock(box);
	return ret;
}

/* The index that could not be written for lack of space: written from
   state once its retry is due (or force). Errors stay in box->space. */
void
flat_index_retry(struct storage_box *box, struct mbox_state *state, bool force)
{
	enum storage_error err;
	char *error = NULL;

	if (!(force ? storage_space_pending(&box->space) : storage_space_due(&box->space)))
		return;
	if (!flat_index_ours(box))
		return;         /* replaced by another process: the next refresh reads it */
	if (flat_write_state(box, state, &err, &error) == 0)
		storage_space_cleared(&box->space, box->index_path);
	else if (err == STORAGE_ERR_NO_SPACE)
		storage_space_failed(&box->space, box->index_path, ENOSPC);
	free(error);
}

int
flat_sync(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	  char **error_r)
{
	int ret;

	*err_r = STORAGE_ERR_NONE;
	box->lock_nowait = true;
	flat_index_retry(box, state, false);
	ret = flat_catch_up(box, state, err_r, error_r);
	box->lock_nowait = false;
	if (ret < 0 && *err_r == STORAGE_ERR_IN_USE) {
		/* Another writer is busy: what it writes is picked up when it
		   lets go of the lock (a watched event) or at the next command. */
		free(*error_r);
		*error_r = NULL;
		*err_r = STORAGE_ERR_NONE;
		return 0;
	}
	if (ret < 0 && *err_r == STORAGE_ERR_NONE)
		*err_r = STORAGE_ERR_TEMP;
	return ret;
}
