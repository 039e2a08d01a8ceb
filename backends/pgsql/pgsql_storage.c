/* pgsql_storage.c: the "pgsql" storage backend: init, the mailbox list,
   create, delete, rename, subscriptions, and the one const struct
   storage_backend. The tables are described in pgsql_db.c.

   Hierarchy: as on the other backends, only mailboxes have a row; a
   superior that is not one is \Noselect while it has inferiors. RENAME
   of a tree is one transaction: every mailbox moves, or none. */
#include "backends/pgsql/pgsql.h"

#ifdef HAVE_PQ

#include "backends/pgsql/pgsql_private.h"

#include "buf.h"
#include "log.h"
#include "username.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
pg_init(const struct storage_settings *set, struct storage **st_r, char **error_r)
{
	struct storage *st;
	enum storage_error err;
	char *why = NULL;

	if (set == NULL || set->conninfo == NULL || set->conninfo[0] == '\0') {
		*error_r = xstrdup("pgsql: storage.conninfo is not set");
		return -1;
	}
	st = xcalloc(1, sizeof(*st));
	st->conninfo = xstrdup(set->conninfo);
	st->lock_ms = -1;
	if (pg_conn(st, &err, &why) == NULL || pg_schema_check(st, &why) < 0) {
		*error_r = xasprintf("pgsql: %s", why);
		free(why);
		if (st->conn != NULL)
			PQfinish(st->conn);
		free(st->conninfo);
		free(st);
		return -1;
	}
	*st_r = st;
	return 0;
}

static void
pg_deinit(struct storage **stp)
{
	struct storage *st = *stp;

	if (st == NULL)
		return;
	if (st->conn != NULL && st->conn_pid == getpid())
		PQfinish(st->conn);
	pg_listen_close(st);
	free(st->conninfo);
	free(st);
	*stp = NULL;
}

/* storage.h thread_storage: the worker's own connection. */
static struct storage *
pg_thread_storage_of(struct storage *st)
{
	return pg_thread_storage(st->conninfo);
}

static bool
pg_name_ok(const char *name, enum storage_error *err_r, char **error_r)
{
	if (storage_name_is_valid(name))
		return true;
	*err_r = STORAGE_ERR_BAD_NAME;
	*error_r = xstrdup("invalid mailbox name");
	return false;
}

/* The names sql (one parameter: the user's id) gives for user. */
static int
pg_user_names(struct storage *st, const char *user, const char *sql, struct strlist *names_r,
	      enum storage_error *err_r, char **error_r)
{
	struct pg_params p;
	PGresult *res;
	int64_t uid;

	*err_r = STORAGE_ERR_NONE;
	if (pg_user_id(st, user, &uid, err_r, error_r) < 0)
		return -1;
	pg_params_init(&p);
	pg_param_i64(&p, uid);
	res = pg_exec(st, sql, &p, false, err_r, error_r);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		strlist_add(names_r, PQgetvalue(res, i, 0));
	PQclear(res);
	return 0;
}

static int
pg_list(struct storage *st, const char *user, struct strlist *names_r,
	enum storage_error *err_r, char **error_r)
{
	return pg_user_names(st, user,
			     "SELECT name FROM imap_mailboxes WHERE user_id = $1 ORDER BY name",
			     names_r, err_r, error_r);
}

static int
pg_create(struct storage *st, const char *user, const char *name, enum storage_error *err_r,
	  char **error_r)
{
	struct pg_params p;
	uint32_t uidv;
	int64_t uid;

	*err_r = STORAGE_ERR_NONE;
	if (pg_user_id(st, user, &uid, err_r, error_r) < 0)
		return -1;
	if (strcmp(name, "INBOX") == 0) {
		*err_r = STORAGE_ERR_EXISTS;
		*error_r = xstrdup("INBOX exists always");
		return -1;
	}
	if (!pg_name_ok(name, err_r, error_r))
		return -1;
	if (pg_cmd(st, "BEGIN", NULL, err_r, error_r) < 0 ||
	    pg_uidvalidity_new(st, uid, &uidv, err_r, error_r) < 0)
		goto fail;
	pg_params_init(&p);
	pg_param_i64(&p, uid);
	pg_param_str(&p, name);
	pg_param_i64(&p, uidv);
	if (pg_cmd(st, "INSERT INTO imap_mailboxes (user_id, name, uidvalidity) "
		   "VALUES ($1, $2, $3)", &p, err_r, error_r) < 0) {
		if (*err_r == STORAGE_ERR_EXISTS) {
			free(*error_r);
			*error_r = xasprintf("mailbox %s exists already", name);
		}
		goto fail;
	}
	if (pg_cmd(st, "COMMIT", NULL, err_r, error_r) < 0)
		goto fail;
	return 0;
fail:
	pg_rollback(st);
	return -1;
}

/* The body ids of res's column col as an array literal "{1,2}". */
static char *
pg_ids_of(const PGresult *res, int col)
{
	struct buf b = BUF_INIT;

	buf_append_c(&b, '{');
	for (int i = 0; i < PQntuples(res); i++) {
		if (i > 0)
			buf_append_c(&b, ',');
		buf_append_str(&b, PQgetvalue(res, i, col));
	}
	buf_append_c(&b, '}');
	return buf_steal(&b);
}

static int
pg_delete(struct storage *st, const char *user, const char *name, enum storage_error *err_r,
	  char **error_r)
{
	struct pg_params p;
	PGresult *res;
	char *ids = NULL;
	int64_t uid, id;

	*err_r = STORAGE_ERR_NONE;
	if (pg_user_id(st, user, &uid, err_r, error_r) < 0)
		return -1;
	if (strcmp(name, "INBOX") == 0) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xstrdup("INBOX cannot be deleted");
		return -1;
	}
	if (!pg_name_ok(name, err_r, error_r))
		return -1;
	if (pg_cmd(st, "BEGIN", NULL, err_r, error_r) < 0)
		goto fail;
	pg_params_init(&p);
	pg_param_i64(&p, uid);
	pg_param_str(&p, name);
	res = pg_exec(st, "SELECT id FROM imap_mailboxes WHERE user_id = $1 AND name = $2 "
		      "FOR UPDATE", &p, false, err_r, error_r);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*err_r = STORAGE_ERR_NOT_FOUND;
		*error_r = xasprintf("no mailbox %s", name);
		goto fail;
	}
	id = pg_i64(res, 0, 0);
	PQclear(res);
	pg_params_init(&p);
	pg_param_i64(&p, id);
	res = pg_exec(st, "DELETE FROM imap_messages WHERE mailbox_id = $1 RETURNING body_id", &p,
		      false, err_r, error_r);
	if (res == NULL)
		goto fail;
	ids = pg_ids_of(res, 0);
	PQclear(res);
	if (pg_cmd(st, "DELETE FROM imap_mailboxes WHERE id = $1", &p, err_r, error_r) < 0 ||
	    pg_cmd(st, "COMMIT", NULL, err_r, error_r) < 0)
		goto fail;
	pg_bodies_collect(st, ids);
	free(ids);
	return 0;
fail:
	free(ids);
	pg_rollback(st);
	return -1;
}

/* RENAME INBOX: its messages move to newname, a new mailbox with its own
   UIDVALIDITY that keeps their UIDs; INBOX stays, empty, and tells its
   openers of the move as expunges. */
static int
pg_rename_inbox(struct storage *st, int64_t uid, const char *news, const char *newname,
		enum storage_error *err_r, char **error_r)
{
	struct pg_params p;
	PGresult *res;
	int64_t inbox, uidnext, modseq, nid;
	uint32_t uidv;

	pg_params_init(&p);
	pg_param_i64(&p, uid);
	res = pg_exec(st, "SELECT id, uidnext, highest_modseq FROM imap_mailboxes "
		      "WHERE user_id = $1 AND name = 'INBOX' FOR UPDATE", &p, false, err_r, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*err_r = STORAGE_ERR_NOT_FOUND;
		*error_r = xstrdup("no INBOX");
		return -1;
	}
	inbox = pg_i64(res, 0, 0);
	uidnext = pg_i64(res, 0, 1);
	modseq = pg_i64(res, 0, 2) + 1;
	PQclear(res);
	if (pg_uidvalidity_new(st, uid, &uidv, err_r, error_r) < 0)
		return -1;
	pg_params_init(&p);
	pg_param_i64(&p, uid);
	pg_param_str(&p, newname);
	pg_param_i64(&p, uidv);
	pg_param_i64(&p, uidnext);
	pg_param_i64(&p, modseq);
	res = pg_exec(st, "INSERT INTO imap_mailboxes (user_id, name, uidvalidity, uidnext, "
		      "highest_modseq) VALUES ($1, $2, $3, $4, $5) RETURNING id", &p, false, err_r,
		      error_r);
	if (res == NULL)
		return -1;
	nid = pg_i64(res, 0, 0);
	PQclear(res);
	pg_params_init(&p);
	pg_param_i64(&p, inbox);
	pg_param_i64(&p, nid);
	pg_param_i64(&p, modseq);
	if (pg_cmd(st, "WITH moved AS (UPDATE imap_messages SET mailbox_id = $2 "
		   "  WHERE mailbox_id = $1 RETURNING uid) "
		   "INSERT INTO imap_expunged (mailbox_id, uid, modseq) "
		   "SELECT $1, uid, $3 FROM moved", &p, err_r, error_r) < 0)
		return -1;
	pg_params_init(&p);
	pg_param_i64(&p, inbox);
	pg_param_i64(&p, modseq);
	pg_param_str(&p, news);
	return pg_cmd(st, "UPDATE imap_mailboxes SET highest_modseq = $2 WHERE id = $1 "
		      "RETURNING pg_notify('" PG_CHANNEL "', $3)", &p, err_r, error_r);
}

static int
pg_rename(struct storage *st, const char *user, const char *oldname, const char *newname,
	  enum storage_error *err_r, char **error_r)
{
	struct strlist names = { 0 }, from = { 0 }, to = { 0 };
	struct pg_params p;
	int64_t uid;
	int ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (pg_user_id(st, user, &uid, err_r, error_r) < 0)
		return -1;
	if (pg_cmd(st, "BEGIN", NULL, err_r, error_r) < 0)
		return -1;
	/* the user's row: one RENAME of the user at a time */
	pg_params_init(&p);
	pg_param_i64(&p, uid);
	if (pg_cmd(st, "SELECT 1 FROM imap_users WHERE id = $1 FOR UPDATE", &p, err_r,
		   error_r) < 0 ||
	    pg_list(st, user, &names, err_r, error_r) < 0 ||
	    storage_rename_plan(&names, oldname, newname, &from, &to, err_r, error_r) < 0)
		goto out;
	for (size_t i = 0; i < from.count; i++) {
		if (strcmp(from.items[i], "INBOX") == 0) {
			char *news = xasprintf("%s\tINBOX", user);

			ret = pg_rename_inbox(st, uid, news, to.items[i], err_r, error_r);
			free(news);
			if (ret < 0)
				goto out;
			ret = -1;
			continue;
		}
		pg_params_init(&p);
		pg_param_i64(&p, uid);
		pg_param_str(&p, from.items[i]);
		pg_param_str(&p, to.items[i]);
		if (pg_cmd(st, "UPDATE imap_mailboxes SET name = $3 "
			   "WHERE user_id = $1 AND name = $2", &p, err_r, error_r) < 0)
			goto out;
	}
	if (pg_cmd(st, "COMMIT", NULL, err_r, error_r) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0)
		pg_rollback(st);
	strlist_clear(&names);
	strlist_clear(&from);
	strlist_clear(&to);
	return ret;
}

static int
pg_subscriptions_read(struct storage *st, const char *user, struct strlist *names_r,
		      enum storage_error *err_r, char **error_r)
{
	return pg_user_names(st, user,
			     "SELECT name FROM imap_subscriptions WHERE user_id = $1 ORDER BY name",
			     names_r, err_r, error_r);
}

static int
pg_subscriptions_write(struct storage *st, const char *user, const struct strlist *names,
		       enum storage_error *err_r, char **error_r)
{
	struct pg_params p;
	int64_t uid;

	*err_r = STORAGE_ERR_NONE;
	if (pg_user_id(st, user, &uid, err_r, error_r) < 0)
		return -1;
	if (pg_cmd(st, "BEGIN", NULL, err_r, error_r) < 0)
		return -1;
	pg_params_init(&p);
	pg_param_i64(&p, uid);
	if (pg_cmd(st, "DELETE FROM imap_subscriptions WHERE user_id = $1", &p, err_r,
		   error_r) < 0)
		goto fail;
	for (size_t i = 0; i < names->count; i++) {
		pg_params_init(&p);
		pg_param_i64(&p, uid);
		pg_param_str(&p, names->items[i]);
		if (pg_cmd(st, "INSERT INTO imap_subscriptions (user_id, name) VALUES ($1, $2) "
			   "ON CONFLICT DO NOTHING", &p, err_r, error_r) < 0)
			goto fail;
	}
	if (pg_cmd(st, "COMMIT", NULL, err_r, error_r) < 0)
		goto fail;
	return 0;
fail:
	pg_rollback(st);
	return -1;
}

const struct storage_backend storage_backend_pgsql = {
	.name = "pgsql",
	.compiled_in = true,
	.init = pg_init,
	.init_db = pg_init_db,
	.deinit = pg_deinit,
	.list = pg_list,
	.create = pg_create,
	.delete = pg_delete,
	.rename = pg_rename,
	.subscriptions_read = pg_subscriptions_read,
	.subscriptions_write = pg_subscriptions_write,
	.open = pg_open,
	.close = pg_close,
	.sync = pg_sync,
	.read = pg_read,
	.append = pg_append,
	.flags_changed = pg_flags_changed,
	.expunge = pg_expunge,
	.set_uids = pg_set_uids,
	.set_modseqs = pg_set_modseqs,
	.hints_changed = pg_hints_changed,
	.recent_take = pg_recent_take,
	.expunge_prepare = pg_expunge_prepare,
	.job_work = pg_job_work,
	.job_commit = pg_job_commit,
	.sync_prepare = pg_sync_prepare,
	.flags_prepare = pg_flags_prepare,
	.flags_commit = pg_flags_commit,
	.read_prepare = pg_read_prepare,
	.read_take = pg_read_take,
	.copy_prepare = pg_copy_prepare,
	.copy_commit = pg_copy_commit,
	.sync_commit = pg_sync_commit,
	.job_abort = pg_job_abort,
	.open_prepare = pg_open_prepare,
	.open_commit = pg_open_commit,
	.append_prepare = pg_append_prepare,
	.append_commit = pg_append_commit,
	.append_settle = pg_append_settle,
	.thread_storage = pg_thread_storage_of,
	.notify_fd = pg_notify_fd,
	.notify_read = pg_notify_read,
};

#else /* !HAVE_PQ */

/* Registered by name only, so that a config naming "pgsql" fails at
   start-up with "not compiled in" rather than "unknown backend". */
const struct storage_backend storage_backend_pgsql = {
	.name = "pgsql",
	.compiled_in = false,
};

#endif
