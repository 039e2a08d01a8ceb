/* pgsql_mailbox.c: an open mailbox of the "pgsql" backend: open, sync,
   read, append, flag changes, expunge.

   The mailbox's row in imap_mailboxes is its lock: append(),
   flags_changed(), expunge() and set_uids() each run in one transaction
   that takes it first (SELECT ... FOR UPDATE, waiting at most
   storage_lock_wait_ms: STORAGE_ERR_IN_USE after that), then bring the
   state in line with what other sessions and nodes committed (every
   change since box->synced: changed rows by modseq, expunges from
   imap_expunged), and only then hand out the next UID or modseq. So two
   nodes never give the same UID, a modseq never goes down, and the state
   never misses a change below a modseq it reports. sync() reads the same
   without the lock, in one snapshot (REPEATABLE READ): one round trip
   when nothing changed. */
#ifdef HAVE_PQ

#include "backends/pgsql/pgsql_private.h"

#include "buf.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The columns of a message, in the order pg_rec_of() reads them. */
#define PG_MSG_COLS "uid, body_id, flags, keywords, internal_date, tz_minutes, size, modseq"

/* The keyword bits of "a b c" (names as stored), added to state's list. */
static uint64_t
pg_keywords_in(struct mbox_state *state, const char *names)
{
	uint64_t bits = 0;
	char *copy = xstrdup(names), *save = NULL;

	for (char *w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
		int i = mbox_state_keyword(state, w, true);

		if (i >= 0)
			bits |= 1ULL << i;
	}
	free(copy);
	return bits;
}

char *
pg_keywords_out(const struct mbox_state *state, uint64_t bits)
{
	struct buf b = BUF_INIT;

	for (unsigned i = 0; i < state->keyword_count && i < MBOX_MAX_KEYWORDS; i++) {
		if ((bits & (1ULL << i)) == 0)
			continue;
		if (b.len > 0)
			buf_append_c(&b, ' ');
		buf_append_str(&b, state->keywords[i]);
	}
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

char *
pg_keywords_rule(const char *current, const struct mbox_state *names, uint64_t set,
		 uint64_t clear)
{
	struct buf b = BUF_INIT;
	char *copy = xstrdup(current), *save = NULL;
	unsigned count = names->keyword_count < MBOX_MAX_KEYWORDS ? names->keyword_count :
								    MBOX_MAX_KEYWORDS;

	for (char *w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
		uint64_t bit = 0;

		if (clear == STORAGE_KEYWORDS_ALL)
			break;
		for (unsigned i = 0; i < count; i++) {
			if (ascii_strcasecmp(names->keywords[i], w) == 0) {
				bit = 1ULL << i;
				break;
			}
		}
		/* cleared, or set: written once, below */
		if ((bit & (clear | set)) != 0)
			continue;
		if (b.len > 0)
			buf_append_c(&b, ' ');
		buf_append_str(&b, w);
	}
	free(copy);
	for (unsigned i = 0; i < count; i++) {
		if ((set & (1ULL << i)) == 0)
			continue;
		if (b.len > 0)
			buf_append_c(&b, ' ');
		buf_append_str(&b, names->keywords[i]);
	}
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

static void
pg_rec_of(const PGresult *res, int row, struct mbox_state *state, struct mail_rec *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->uid = (uint32_t)pg_i64(res, row, 0);
	rec->priv[0] = (uint64_t)pg_i64(res, row, 1);
	rec->flags = (uint8_t)(pg_i64(res, row, 2) & MAIL_FLAGS_ALL);
	rec->keywords = pg_keywords_in(state, PQgetvalue(res, row, 3));
	rec->internal_date = pg_i64(res, row, 4);
	rec->tz_minutes = (int32_t)pg_i64(res, row, 5);
	rec->size = (uint64_t)pg_i64(res, row, 6);
	rec->modseq = (uint64_t)pg_i64(res, row, 7);
}

int
pg_head_read(struct storage_box *box, bool lock, struct pg_head *h, enum storage_error *err_r,
	     char **error_r)
{
	struct pg_params p;
	PGresult *res;

	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	res = pg_exec(box->st,
		      lock ? "SELECT uidvalidity, uidnext, highest_modseq, first_recent_uid "
			     "FROM imap_mailboxes WHERE id = $1 FOR UPDATE" :
			     "SELECT uidvalidity, uidnext, highest_modseq, first_recent_uid "
			     "FROM imap_mailboxes WHERE id = $1",
		      &p, false, err_r, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*err_r = STORAGE_ERR_NOT_FOUND;
		*error_r = xstrdup("the mailbox was deleted");
		return -1;
	}
	h->uidvalidity = (uint32_t)pg_i64(res, 0, 0);
	h->uidnext = (uint32_t)pg_i64(res, 0, 1);
	h->highest = (uint64_t)pg_i64(res, 0, 2);
	h->first_recent = (uint32_t)pg_i64(res, 0, 3);
	PQclear(res);
	return 0;
}

static void
pg_head_apply(struct storage_box *box, struct mbox_state *state, const struct pg_head *h)
{
	if (h->uidnext > state->uidnext)
		state->uidnext = h->uidnext;
	if (h->highest > state->highest_modseq)
		state->highest_modseq = h->highest;
	/* \Recent taken by others: up to the store's first recent UID, if
	   it is above what this process took (below, the messages this
	   process took and its sessions have not claimed yet are theirs) */
	if (h->first_recent > box->recent_written) {
		if (h->first_recent > state->first_recent_uid)
			state->first_recent_uid = h->first_recent;
		box->recent_written = h->first_recent;
	}
	box->synced = h->highest;
}

/* Loads every message of box into state (empty). */
static int
pg_load(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	char **error_r)
{
	struct pg_params p;
	struct mail_rec rec;
	PGresult *res;
	int n;

	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	res = pg_exec(box->st, "SELECT " PG_MSG_COLS " FROM imap_messages WHERE mailbox_id = $1 "
		      "ORDER BY uid", &p, false, err_r, error_r);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	mbox_state_reserve(state, (size_t)n);
	for (int i = 0; i < n; i++) {
		pg_rec_of(res, i, state, &rec);
		mbox_state_append(state, &rec);
	}
	PQclear(res);
	return 0;
}

int
pg_changes_fetch(struct storage_box *box, const struct pg_head *h, struct pg_changes *c,
		 enum storage_error *err_r, char **error_r)
{
	struct pg_params p;

	memset(c, 0, sizeof(*c));
	c->h = *h;
	if (h->highest == box->synced)
		return 0;
	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	pg_param_i64(&p, (int64_t)box->synced);
	c->expunged = pg_exec(box->st, "SELECT DISTINCT uid FROM imap_expunged "
			      "WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid", &p, false,
			      err_r, error_r);
	if (c->expunged == NULL)
		return -1;
	c->changed = pg_exec(box->st, "SELECT " PG_MSG_COLS " FROM imap_messages "
			     "WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid", &p, false,
			     err_r, error_r);
	if (c->changed == NULL) {
		pg_changes_free(c);
		return -1;
	}
	return 0;
}

void
pg_changes_free(struct pg_changes *c)
{
	PQclear(c->expunged);
	PQclear(c->changed);
	c->expunged = c->changed = NULL;
}

void
pg_changes_apply(struct storage_box *box, struct mbox_state *state, struct pg_changes *c)
{
	struct mail_rec rec;
	uint32_t *uids;
	int n;

	n = c->expunged != NULL ? PQntuples(c->expunged) : 0;
	if (n > 0) {
		uids = xmalloc((size_t)n * sizeof(*uids));
		for (int i = 0; i < n; i++)
			uids[i] = (uint32_t)pg_i64(c->expunged, i, 0);
		mbox_state_remove_uids(state, uids, (size_t)n);
		free(uids);
	}
	n = c->changed != NULL ? PQntuples(c->changed) : 0;
	for (int i = 0; i < n; i++) {
		ssize_t idx;

		pg_rec_of(c->changed, i, state, &rec);
		idx = mbox_state_find(state, rec.uid);
		if (idx >= 0) {
			struct mail_rec *r = &state->mails[idx];

			r->flags = rec.flags;
			r->keywords = rec.keywords;
			r->modseq = rec.modseq;
			mbox_state_flags_written(state, (size_t)idx);
		} else if (state->count == 0 || rec.uid > state->mails[state->count - 1].uid) {
			mbox_state_append(state, &rec);
		} else {
			/* cannot happen while every writer syncs under the lock */
			log_warn("-", "pgsql: mailbox %lld: UID %u below the last one known, "
				 "left out", (long long)box->id, rec.uid);
		}
	}
	pg_changes_free(c);
	pg_head_apply(box, state, &c->h);
}

/* Brings state in line with every change committed since box->synced,
   up to h->highest (read in the same snapshot, or under the lock). */
static int
pg_apply(struct storage_box *box, struct mbox_state *state, const struct pg_head *h,
	 enum storage_error *err_r, char **error_r)
{
	struct pg_changes c;

	if (pg_changes_fetch(box, h, &c, err_r, error_r) < 0)
		return -1;
	pg_changes_apply(box, state, &c);
	return 0;
}

int
pg_open(struct storage *st, const char *user, const char *name, struct mbox_state *state,
	struct storage_box **box_r, enum storage_error *err_r, char **error_r)
{
	struct storage_box *box;
	struct pg_params p;
	struct pg_head h;
	PGresult *res;
	int64_t uid;

	*err_r = STORAGE_ERR_NONE;
	*box_r = NULL;
	if (pg_user_id(st, user, &uid, err_r, error_r) < 0)
		return -1;
	if (strcmp(name, "INBOX") != 0 && !storage_name_is_valid(name)) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xstrdup("invalid mailbox name");
		return -1;
	}
	if (pg_cmd(st, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, err_r,
		   error_r) < 0)
		return -1;
	pg_params_init(&p);
	pg_param_i64(&p, uid);
	pg_param_str(&p, name);
	res = pg_exec(st, "SELECT id, uidvalidity, uidnext, highest_modseq, first_recent_uid "
		      "FROM imap_mailboxes WHERE user_id = $1 AND name = $2", &p, false, err_r,
		      error_r);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*err_r = STORAGE_ERR_NOT_FOUND;
		*error_r = xasprintf("no mailbox %s", name);
		goto fail;
	}
	box = xcalloc(1, sizeof(*box));
	box->st = st;
	box->news = xasprintf("%s\t%s", user, name);
	box->id = pg_i64(res, 0, 0);
	h.uidvalidity = (uint32_t)pg_i64(res, 0, 1);
	h.uidnext = (uint32_t)pg_i64(res, 0, 2);
	h.highest = (uint64_t)pg_i64(res, 0, 3);
	h.first_recent = (uint32_t)pg_i64(res, 0, 4);
	PQclear(res);
	box->uidvalidity = h.uidvalidity;
	state->uidvalidity = h.uidvalidity;
	if (pg_load(box, state, err_r, error_r) < 0 ||
	    pg_cmd(st, "COMMIT", NULL, err_r, error_r) < 0) {
		free(box->news);
		free(box);
		goto fail;
	}
	pg_head_apply(box, state, &h);
	*box_r = box;
	return 0;
fail:
	pg_rollback(st);
	return -1;
}

void
pg_close(struct storage_box **boxp)
{
	if (*boxp != NULL)
		free((*boxp)->news);
	free(*boxp);
	*boxp = NULL;
}

int
pg_sync_read(struct storage_box *box, struct pg_changes *c, bool *reload_r,
	     enum storage_error *err_r, char **error_r)
{
	struct pg_head h;
	struct pg_params p;

	*reload_r = false;
	memset(c, 0, sizeof(*c));
	if (pg_head_read(box, false, &h, err_r, error_r) < 0)
		return -1;
	if (h.highest == box->synced && h.uidvalidity == box->uidvalidity) {
		c->h = h;
		return 0;
	}
	if (pg_cmd(box->st, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, err_r,
		   error_r) < 0 ||
	    pg_head_read(box, false, &h, err_r, error_r) < 0)
		goto fail;
	if (h.uidvalidity != box->uidvalidity) {
		/* the mailbox was made again (migrated in, say): start over */
		*reload_r = true;
		c->h = h;
		pg_params_init(&p);
		pg_param_i64(&p, box->id);
		c->changed = pg_exec(box->st, "SELECT " PG_MSG_COLS " FROM imap_messages "
				     "WHERE mailbox_id = $1 ORDER BY uid", &p, false, err_r,
				     error_r);
		if (c->changed == NULL)
			goto fail;
	} else if (pg_changes_fetch(box, &h, c, err_r, error_r) < 0) {
		goto fail;
	}
	if (pg_cmd(box->st, "COMMIT", NULL, err_r, error_r) < 0) {
		pg_changes_free(c);
		goto fail;
	}
	return 0;
fail:
	pg_rollback(box->st);
	return -1;
}

int
pg_sync_apply(struct storage_box *box, struct mbox_state *state, struct pg_changes *c,
	      bool reload)
{
	if (reload) {
		mbox_state_clear(state);
		state->uidvalidity = c->h.uidvalidity;
		state->uidnext = 1;
		state->highest_modseq = 0;
		state->first_recent_uid = 0;
		box->uidvalidity = c->h.uidvalidity;
	}
	pg_changes_apply(box, state, c);
	return reload ? 1 : 0;
}

int
pg_sync(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	char **error_r)
{
	struct pg_changes c;
	bool reload;

	*err_r = STORAGE_ERR_NONE;
	if (pg_sync_read(box, &c, &reload, err_r, error_r) < 0)
		return -1;
	return pg_sync_apply(box, state, &c, reload);
}

int
pg_read(struct storage_box *box, const struct mail_rec *rec, struct buf *out,
	enum storage_error *err_r, char **error_r)
{
	struct pg_params p;
	PGresult *res;

	*err_r = STORAGE_ERR_NONE;
	pg_params_init(&p);
	pg_param_i64(&p, (int64_t)rec->priv[0]);
	res = pg_exec(box->st, "SELECT data FROM imap_bodies WHERE id = $1", &p, true, err_r,
		      error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*err_r = STORAGE_ERR_NOT_FOUND;
		*error_r = xasprintf("message %u no longer exists", rec->uid);
		return -1;
	}
	buf_append(out, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
	PQclear(res);
	return 0;
}

/* Begins a change of box: the transaction, the lock, the state in line.
   On failure the transaction is rolled back. */
static int
pg_change_begin(struct storage_box *box, struct mbox_state *state, struct pg_head *h,
		enum storage_error *err_r, char **error_r)
{
	if (pg_cmd(box->st, "BEGIN", NULL, err_r, error_r) < 0 ||
	    pg_head_read(box, true, h, err_r, error_r) < 0)
		goto fail;
	if (h->uidvalidity != box->uidvalidity) {
		*err_r = STORAGE_ERR_TEMP;
		*error_r = xstrdup("the mailbox was made again meanwhile");
		goto fail;
	}
	if (pg_apply(box, state, h, err_r, error_r) < 0)
		goto fail;
	return 0;
fail:
	pg_rollback(box->st);
	return -1;
}

int
pg_head_write(struct storage_box *box, uint64_t modseq, enum storage_error *err_r,
	      char **error_r)
{
	struct pg_params p;

	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	pg_param_i64(&p, (int64_t)modseq);
	pg_param_str(&p, box->news);
	/* announced to every other server at the commit */
	return pg_cmd(box->st, "UPDATE imap_mailboxes SET highest_modseq = $2 WHERE id = $1 "
		      "RETURNING pg_notify('" PG_CHANNEL "', $3)", &p, err_r, error_r);
}

int
pg_change_commit(struct storage_box *box, enum storage_error *err_r, char **error_r)
{
	if (pg_cmd(box->st, "COMMIT", NULL, err_r, error_r) < 0) {
		pg_rollback(box->st);
		return -1;
	}
	return 0;
}

/* The message as served: every LF not after a CR gets one. */
static void
pg_to_crlf(const char *data, size_t len, struct buf *out)
{
	buf_reserve(out, len + len / 32 + 2);
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			buf_append_c(out, '\r');
		buf_append_c(out, data[i]);
	}
}

int
pg_body_make(const char *data, size_t len, struct buf *body,
	     char digest_r[STORAGE_OBJECTID_SIZE], enum storage_error *err_r, char **error_r)
{
	if (len == 0 || len > PG_MAX_MSG) {
		*err_r = STORAGE_ERR_LIMIT;
		*error_r = xstrdup("message is empty or too large");
		return -1;
	}
	pg_to_crlf(data, len, body);
	if (body->len > INT32_MAX) {
		*err_r = STORAGE_ERR_LIMIT;
		*error_r = xstrdup("message too large for the database");
		return -1;
	}
	storage_email_id(body->data, body->len, digest_r);
	return 0;
}

int
pg_add_write(struct storage_box *box, const struct pg_new_msg *m, struct mail_rec *rec,
	     const char *kw, enum storage_error *err_r, char **error_r)
{
	struct pg_params p;
	PGresult *res;
	int64_t body_id = m->body_id;

	if (m->body != NULL) {
		pg_params_init(&p);
		pg_param_str(&p, m->digest);
		pg_param_bin(&p, m->body->data, m->body->len);
		/* the same bytes are stored once; DO UPDATE locks the row, so
		   that no collection removes it before this commits */
		res = pg_exec(box->st, "INSERT INTO imap_bodies (digest, data) VALUES ($1, $2) "
			      "ON CONFLICT (digest) DO UPDATE SET digest = EXCLUDED.digest "
			      "RETURNING id", &p, false, err_r, error_r);
		if (res == NULL)
			return -1;
		body_id = pg_i64(res, 0, 0);
		PQclear(res);
	}
	rec->priv[0] = (uint64_t)body_id;
	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	pg_param_i64(&p, rec->uid);
	pg_param_i64(&p, body_id);
	pg_param_i64(&p, rec->flags);
	pg_param_str(&p, kw);
	pg_param_i64(&p, rec->internal_date);
	pg_param_i64(&p, rec->tz_minutes);
	pg_param_i64(&p, (int64_t)rec->size);
	pg_param_i64(&p, (int64_t)rec->modseq);
	/* a body a job stored is the message's now: its guard goes */
	pg_param_i64(&p, m->pending_id);
	if (pg_cmd(box->st, "WITH g AS (DELETE FROM imap_body_pending WHERE id = $10) "
		   "INSERT INTO imap_messages (mailbox_id, uid, body_id, flags, "
		   "keywords, internal_date, tz_minutes, size, modseq) "
		   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", &p, err_r, error_r) < 0)
		return -1;
	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	pg_param_i64(&p, rec->uid);
	pg_param_i64(&p, (int64_t)rec->modseq);
	pg_param_str(&p, box->news);
	return pg_cmd(box->st, "UPDATE imap_mailboxes SET uidnext = $2 + 1, highest_modseq = $3 "
		      "WHERE id = $1 RETURNING pg_notify('" PG_CHANNEL "', $4)", &p, err_r,
		      error_r);
}

void
pg_add_rec(const struct pg_head *h, uint64_t highest, uint8_t flags, uint64_t keywords,
	   int64_t internal_date, int32_t tz_minutes, uint64_t size, struct mail_rec *rec)
{
	memset(rec, 0, sizeof(*rec));
	if (internal_date == 0) {
		struct tm tm;
		time_t now = time(NULL);

		internal_date = (int64_t)now;
		tz_minutes = localtime_r(&now, &tm) != NULL ? (int32_t)(tm.tm_gmtoff / 60) : 0;
	}
	rec->uid = h->uidnext;
	rec->flags = flags & MAIL_FLAGS_ALL;
	rec->keywords = keywords;
	rec->internal_date = internal_date;
	rec->tz_minutes = tz_minutes;
	rec->size = size;
	rec->modseq = (h->highest > highest ? h->highest : highest) + 1;
}

bool
pg_uids_left(const struct pg_head *h, enum storage_error *err_r, char **error_r)
{
	if (h->uidnext != 0 && h->uidnext != UINT32_MAX)
		return true;
	*err_r = STORAGE_ERR_LIMIT;
	*error_r = xstrdup("no UID left in this mailbox");
	return false;
}

int
pg_add(struct storage_box *box, struct mbox_state *state, const struct pg_new_msg *m,
       uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
       uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	struct pg_head h;
	struct mail_rec rec;
	char *kw = NULL;

	*err_r = STORAGE_ERR_NONE;
	if (pg_change_begin(box, state, &h, err_r, error_r) < 0)
		return -1;
	if (!pg_uids_left(&h, err_r, error_r))
		goto fail;
	pg_add_rec(&h, state->highest_modseq, flags, keywords, internal_date, tz_minutes,
		   m->size, &rec);
	kw = pg_keywords_out(state, keywords);
	if (pg_add_write(box, m, &rec, kw, err_r, error_r) < 0)
		goto fail;
	free(kw);
	if (pg_change_commit(box, err_r, error_r) < 0)
		return -1;
	mbox_state_append(state, &rec);
	box->synced = rec.modseq;
	*uid_r = rec.uid;
	return 0;
fail:
	free(kw);
	pg_rollback(box->st);
	return -1;
}

int
pg_append(struct storage_box *box, struct mbox_state *state, const char *data, size_t len,
	  uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
	  uint32_t *uid_r, enum storage_error *err_r, char **error_r)
{
	char digest[STORAGE_OBJECTID_SIZE];
	struct buf body = BUF_INIT;
	struct pg_new_msg m;
	int ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (pg_body_make(data, len, &body, digest, err_r, error_r) == 0) {
		memset(&m, 0, sizeof(m));
		m.body = &body;
		m.digest = digest;
		m.size = body.len;
		ret = pg_add(box, state, &m, flags, keywords, internal_date, tz_minutes, uid_r,
			     err_r, error_r);
	}
	buf_free(&body);
	return ret;
}

int
pg_flags_changed(struct storage_box *box, struct mbox_state *state, size_t idx,
		 enum storage_error *err_r, char **error_r)
{
	struct pg_params p;
	struct pg_head h;
	struct mail_rec *r;
	uint32_t uid;
	uint8_t flags;
	uint64_t keywords, modseq;
	ssize_t at;
	char *kw;

	*err_r = STORAGE_ERR_NONE;
	if (idx >= state->count)
		return 0;
	uid = state->mails[idx].uid;
	flags = state->mails[idx].flags;
	keywords = state->mails[idx].keywords;
	modseq = state->mails[idx].modseq;
	if (pg_change_begin(box, state, &h, err_r, error_r) < 0)
		return -1;
	/* the catch-up may have changed the message too: ours is the last
	   change, so it wins */
	at = mbox_state_find(state, uid);
	if (at < 0) {
		/* expunged by another session meanwhile */
		return pg_change_commit(box, err_r, error_r);
	}
	r = &state->mails[at];
	r->flags = flags;
	r->keywords = keywords;
	if (modseq <= h.highest)
		modseq = h.highest + 1;
	r->modseq = modseq;
	if (modseq > state->highest_modseq)
		state->highest_modseq = modseq;
	mbox_state_flags_written(state, (size_t)at);
	kw = pg_keywords_out(state, keywords);
	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	pg_param_i64(&p, uid);
	pg_param_i64(&p, (int64_t)modseq);
	pg_param_i64(&p, flags);
	pg_param_str(&p, kw);
	if (pg_cmd(box->st, "UPDATE imap_messages SET flags = $4, keywords = $5, modseq = $3 "
		   "WHERE mailbox_id = $1 AND uid = $2", &p, err_r, error_r) < 0 ||
	    pg_head_write(box, modseq, err_r, error_r) < 0) {
		free(kw);
		pg_rollback(box->st);
		return -1;
	}
	free(kw);
	if (pg_change_commit(box, err_r, error_r) < 0)
		return -1;
	box->synced = modseq;
	return 0;
}

char *
pg_uid_array(const uint32_t *uids, size_t count)
{
	struct buf arr = BUF_INIT;

	buf_append_c(&arr, '{');
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			buf_append_c(&arr, ',');
		buf_append_u64(&arr, uids[i]);
	}
	buf_append(&arr, "}", 2);
	return buf_steal(&arr);
}

int
pg_expunge_write(struct storage_box *box, const char *uids, uint64_t modseq,
		 enum storage_error *err_r, char **error_r)
{
	struct pg_params p;
	PGresult *res;

	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	pg_param_str(&p, uids);
	pg_param_i64(&p, (int64_t)modseq);
	res = pg_exec(box->st,
		      "WITH d AS (DELETE FROM imap_messages "
		      "  WHERE mailbox_id = $1 AND uid = ANY($2::bigint[]) "
		      "  RETURNING uid, body_id), "
		      "e AS (INSERT INTO imap_expunged (mailbox_id, uid, modseq, body_id) "
		      "  SELECT $1, uid, $3, body_id FROM d) "
		      "SELECT count(*) FROM d",
		      &p, false, err_r, error_r);
	if (res == NULL)
		return -1;
	PQclear(res);
	return pg_head_write(box, modseq, err_r, error_r);
}

int
pg_expunge(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
	   size_t count, enum storage_error *err_r, char **error_r)
{
	struct pg_head h;
	uint64_t modseq;
	char *arr;
	int ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (count == 0)
		return 0;
	arr = pg_uid_array(uids, count);
	if (pg_change_begin(box, state, &h, err_r, error_r) < 0)
		goto out;
	modseq = (h.highest > state->highest_modseq ? h.highest : state->highest_modseq) + 1;
	if (pg_expunge_write(box, arr, modseq, err_r, error_r) < 0) {
		pg_rollback(box->st);
		goto out;
	}
	if (pg_change_commit(box, err_r, error_r) < 0)
		goto out;
	mbox_state_remove_uids(state, uids, count);
	if (modseq > state->highest_modseq)
		state->highest_modseq = modseq;
	box->synced = modseq;
	/* the bodies this left are collected later (PG_BODY_GRACE) */
	pg_bodies_collect_old(box->st);
	ret = 0;
out:
	free(arr);
	return ret;
}

int
pg_set_uids(struct storage_box *box, struct mbox_state *state, uint32_t uidvalidity,
	    uint32_t uidnext, enum storage_error *err_r, char **error_r)
{
	struct pg_params p, p1;
	struct pg_head h;

	*err_r = STORAGE_ERR_NONE;
	pg_params_init(&p1);
	pg_param_i64(&p1, box->id);
	if (pg_change_begin(box, state, &h, err_r, error_r) < 0)
		return -1;
	if (h.uidnext > uidnext && uidnext != 0) {
		*err_r = STORAGE_ERR_LIMIT;
		*error_r = xasprintf("UIDs up to %u were given already", h.uidnext - 1);
		goto fail;
	}
	if (uidvalidity != 0 && uidvalidity != h.uidvalidity && h.uidnext > 1) {
		*err_r = STORAGE_ERR_LIMIT;
		*error_r = xstrdup("the mailbox held messages: its UIDVALIDITY stays");
		goto fail;
	}
	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	pg_param_i64(&p, uidnext > h.uidnext ? uidnext : h.uidnext);
	pg_param_i64(&p, uidvalidity != 0 ? uidvalidity : h.uidvalidity);
	/* and the HIGHESTMODSEQ a migration brings (never lower) */
	pg_param_i64(&p, (int64_t)(state->highest_modseq > h.highest ? state->highest_modseq :
				   h.highest));
	pg_param_str(&p, box->news);
	if (pg_cmd(box->st, "UPDATE imap_mailboxes SET uidnext = $2, uidvalidity = $3, "
		   "highest_modseq = $4 WHERE id = $1 RETURNING pg_notify('" PG_CHANNEL "', $5)",
		   &p, err_r, error_r) < 0 ||
	    pg_cmd(box->st, "UPDATE imap_users u SET last_uidvalidity = "
		   "  GREATEST(u.last_uidvalidity, m.uidvalidity) FROM imap_mailboxes m "
		   "WHERE m.id = $1 AND u.id = m.user_id", &p1, err_r, error_r) < 0)
		goto fail;
	if (pg_change_commit(box, err_r, error_r) < 0)
		return -1;
	if (uidnext > state->uidnext)
		state->uidnext = uidnext;
	if (uidvalidity != 0) {
		state->uidvalidity = uidvalidity;
		box->uidvalidity = uidvalidity;
	}
	if (state->highest_modseq > box->synced)
		box->synced = state->highest_modseq;
	return 0;
fail:
	pg_rollback(box->st);
	return -1;
}

int
pg_set_modseqs(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	       char **error_r)
{
	struct buf uids = BUF_INIT, modseqs = BUF_INIT;
	struct pg_params p;
	struct pg_head h;
	uint64_t highest;
	int ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (pg_change_begin(box, state, &h, err_r, error_r) < 0)
		return -1;
	buf_append_c(&uids, '{');
	buf_append_c(&modseqs, '{');
	for (size_t i = 0; i < state->count; i++) {
		if (i > 0) {
			buf_append_c(&uids, ',');
			buf_append_c(&modseqs, ',');
		}
		buf_append_u64(&uids, state->mails[i].uid);
		buf_append_u64(&modseqs, state->mails[i].modseq);
	}
	buf_append(&uids, "}", 1);
	buf_append(&modseqs, "}", 1);
	highest = state->highest_modseq > h.highest ? state->highest_modseq : h.highest;
	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	pg_param_str(&p, uids.data);
	pg_param_str(&p, modseqs.data);
	if (pg_cmd(box->st, "UPDATE imap_messages m SET modseq = c.modseq "
		   "FROM unnest($2::bigint[], $3::bigint[]) AS c (uid, modseq) "
		   "WHERE m.mailbox_id = $1 AND m.uid = c.uid", &p, err_r, error_r) < 0 ||
	    pg_head_write(box, highest, err_r, error_r) < 0) {
		pg_rollback(box->st);
		goto out;
	}
	if (pg_change_commit(box, err_r, error_r) < 0)
		goto out;
	state->highest_modseq = highest;
	box->synced = highest;
	ret = 0;
out:
	buf_free(&uids);
	buf_free(&modseqs);
	return ret;
}

uint32_t
pg_recent_take(struct storage_box *box, const struct mbox_state *state, uint32_t upto)
{
	enum storage_error err;
	struct pg_params p;
	char *error = NULL;
	PGresult *res;
	uint32_t from = upto;

	(void)state;
	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	pg_param_i64(&p, upto);
	/* one statement: the row locked, its old value returned, the new
	   one written. In the loop: it never waits for the row's lock (a
	   change of another session or server at work holds it for its
	   transaction): then none is taken, and none is shown. */
	res = pg_exec(box->st,
		      "WITH old AS (SELECT first_recent_uid AS v FROM imap_mailboxes "
		      "  WHERE id = $1 FOR UPDATE NOWAIT) "
		      "UPDATE imap_mailboxes SET first_recent_uid = "
		      "  GREATEST(imap_mailboxes.first_recent_uid, $2) "
		      "FROM old WHERE id = $1 RETURNING old.v",
		      &p, false, &err, &error);
	if (res == NULL) {
		log_info("-", "pgsql: \\Recent not taken (none shown): %s", error);
		free(error);
	} else {
		if (PQntuples(res) == 1)
			from = (uint32_t)pg_i64(res, 0, 0);
		PQclear(res);
	}
	/* (not written again by pg_hints_changed(): taken, or left to
	   others) */
	if (upto > box->recent_written)
		box->recent_written = upto;
	return from;
}

void
pg_hints_changed(struct storage_box *box, const struct mbox_state *state)
{
	enum storage_error err;
	struct pg_params p;
	char *error = NULL;

	if (state->first_recent_uid <= box->recent_written)
		return;
	pg_params_init(&p);
	pg_param_i64(&p, box->id);
	pg_param_i64(&p, state->first_recent_uid);
	/* (in the loop: never waits for the row's lock, as above) */
	if (pg_cmd(box->st, "UPDATE imap_mailboxes SET first_recent_uid = "
		   "GREATEST(first_recent_uid, $2) WHERE id = "
		   "(SELECT id FROM imap_mailboxes WHERE id = $1 FOR UPDATE NOWAIT)",
		   &p, &err, &error) < 0) {
		log_debug("-", "pgsql: first recent UID kept for later: %s", error);
		free(error);
		return;
	}
	box->recent_written = state->first_recent_uid;
}

#endif /* HAVE_PQ */
