/* pgsql_db.c: the connection to PostgreSQL, the query helpers and the
   schema of the "pgsql" storage backend.

   Schema (version PG_SCHEMA_VERSION, written by imapserver --init-db):

     imap_schema         the version, one row
     imap_users          one row a user; last_uidvalidity is the last
                         UIDVALIDITY given to one of its mailboxes
     imap_mailboxes      one row a mailbox: name ('/' between levels),
                         UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and the first
                         UID still \Recent. The row is the mailbox's lock:
                         every change takes it (SELECT ... FOR UPDATE)
                         first, so UIDs and modseqs are handed out in
                         order by one writer at a time, on every node
     imap_bodies         the message bytes as served (CRLF), once for any
                         number of messages with the same bytes (COPY,
                         MOVE, one mail to several users): the digest of
                         the bytes is unique
     imap_messages       (mailbox, UID): body, flags, keywords (names,
                         space-separated), internal date, size, modseq
     imap_expunged       (mailbox, UID, modseq) of every expunge, for the
                         other nodes' sync and for QRESYNC, with the body
                         it left until that is collected (below)
     imap_subscriptions  (user, name)

   An expunged message's body stays readable for PG_BODY_GRACE: a session
   on another server that was not told of the expunge yet may still
   FETCH, COPY or MOVE it (RFC 2180 4.1.1: the data is served). Later
   expunges collect the bodies that no message uses and whose expunge is
   older than that (pg_bodies_collect_old()).

   A message is in the mailbox when its transaction commits: a crash
   (of the server or of the database) before that leaves nothing, after
   it everything. */
#ifdef HAVE_PQ

#include "backends/pgsql/pgsql_private.h"

#include "buf.h"
#include "log.h"
#include "username.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void
pg_params_init(struct pg_params *p)
{
	memset(p, 0, sizeof(*p));
}

void
pg_param_str(struct pg_params *p, const char *s)
{
	if (p->count >= PG_MAX_PARAMS)
		abort();
	p->values[p->count] = s;
	p->lengths[p->count] = 0;
	p->formats[p->count] = 0;
	p->count++;
}

void
pg_param_i64(struct pg_params *p, int64_t n)
{
	if (p->count >= PG_MAX_PARAMS)
		abort();
	snprintf(p->text[p->count], sizeof(p->text[0]), "%lld", (long long)n);
	pg_param_str(p, p->text[p->count]);
}

void
pg_param_bin(struct pg_params *p, const void *data, size_t len)
{
	if (p->count >= PG_MAX_PARAMS || len > INT32_MAX)
		abort();
	p->values[p->count] = data;
	p->lengths[p->count] = (int)len;
	p->formats[p->count] = 1;
	p->count++;
}

int64_t
pg_i64(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* The server's notices (NOTICE: relation exists, ...) are not for the
   log of a mail server. */
static void
pg_notice_quiet(void *ctx, const char *message)
{
}

/* libpq's message without its trailing newline. */
static char *
pg_message(const char *what, const char *msg)
{
	size_t len = msg != NULL ? strlen(msg) : 0;

	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		len--;
	return xasprintf("%s: %.*s", what, (int)len, msg != NULL ? msg : "");
}

static void
pg_drop(struct storage *st)
{
	if (st->conn != NULL && st->conn_pid == getpid())
		PQfinish(st->conn);
	/* a forked child leaves its parent's connection alone */
	st->conn = NULL;
}

static int
pg_set_lock_timeout(struct storage *st, char **error_r)
{
	char sql[128];
	PGresult *res;
	bool ok;

	snprintf(sql, sizeof(sql), "SET lock_timeout = %lld",
		 (long long)(storage_lock_wait_ms > 0 ? storage_lock_wait_ms : 1));
	res = PQexec(st->conn, sql);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		*error_r = pg_message("database", PQerrorMessage(st->conn));
	PQclear(res);
	if (ok)
		st->lock_ms = storage_lock_wait_ms;
	return ok ? 0 : -1;
}

PGconn *
pg_connect(const char *conninfo, char **error_r)
{
	/* connect_timeout first: the conninfo given (expanded from
	   "dbname") overrides it */
	static const char *const keys[] = { "connect_timeout", "application_name", "dbname",
					    NULL };
	const char *values[] = { "5", "imapserver", conninfo, NULL };
	char sql[160];
	PGresult *res;
	PGconn *conn;

	conn = PQconnectdbParams(keys, values, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		*error_r = pg_message("database unavailable",
				      conn != NULL ? PQerrorMessage(conn) : "no memory");
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, pg_notice_quiet, NULL);
	snprintf(sql, sizeof(sql), "SET statement_timeout = %d; SET client_min_messages = warning",
		 PG_STATEMENT_TIMEOUT_MS);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		*error_r = pg_message("database", PQerrorMessage(conn));
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

PGconn *
pg_conn(struct storage *st, enum storage_error *err_r, char **error_r)
{
	if (st->conn != NULL && (st->conn_pid != getpid() || PQstatus(st->conn) != CONNECTION_OK))
		pg_drop(st);
	if (st->conn == NULL) {
		st->conn = pg_connect(st->conninfo, error_r);
		st->conn_pid = getpid();
		st->lock_ms = -1;
		if (st->conn == NULL) {
			*err_r = STORAGE_ERR_TEMP;
			return NULL;
		}
	}
	if (st->lock_ms != storage_lock_wait_ms &&
	    PQtransactionStatus(st->conn) == PQTRANS_IDLE && pg_set_lock_timeout(st, error_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		pg_drop(st);
		return NULL;
	}
	return st->conn;
}

/* News of other processes' changes */

void
pg_listen_close(struct storage *st)
{
	if (st->listen_conn != NULL && st->listen_pid == getpid())
		PQfinish(st->listen_conn);
	st->listen_conn = NULL;
}

int
pg_notify_fd(struct storage *st)
{
	char *error = NULL;
	PGresult *res;
	PGconn *conn;

	if (st->listen_conn != NULL && st->listen_pid == getpid() &&
	    PQstatus(st->listen_conn) == CONNECTION_OK)
		return PQsocket(st->listen_conn);
	pg_listen_close(st);
	conn = pg_connect(st->conninfo, &error);
	if (conn == NULL) {
		log_warn("-", "pgsql: not told of other servers' changes for now: %s", error);
		free(error);
		return -1;
	}
	res = PQexec(conn, "LISTEN " PG_CHANNEL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK || PQsetnonblocking(conn, 1) != 0) {
		log_warn("-", "pgsql: LISTEN: %s", PQerrorMessage(conn));
		PQclear(res);
		PQfinish(conn);
		return -1;
	}
	PQclear(res);
	st->listen_conn = conn;
	st->listen_pid = getpid();
	return PQsocket(conn);
}

int
pg_notify_read(struct storage *st, storage_changed_func *changed, void *ctx)
{
	PGconn *conn = st->listen_conn;
	PGnotify *n;
	int own;

	if (conn == NULL || st->listen_pid != getpid())
		return -1;
	if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK) {
		/* lost: the core asks for a new one (and refreshes all) */
		log_warn("-", "pgsql: the notification connection was lost: %s",
			 PQerrorMessage(conn));
		pg_listen_close(st);
		return -1;
	}
	/* our own changes are in our state already */
	own = st->conn != NULL && st->conn_pid == getpid() ? PQbackendPID(st->conn) : 0;
	while ((n = PQnotifies(conn)) != NULL) {
		const char *tab = strchr(n->extra, '\t');

		if (n->be_pid != own && tab != NULL) {
			char *user = xstrndup(n->extra, (size_t)(tab - n->extra));

			changed(ctx, user, tab + 1);
			free(user);
		}
		PQfreemem(n);
	}
	return PQsocket(conn);
}

PGresult *
pg_exec(struct storage *st, const char *sql, const struct pg_params *p, bool binary,
	enum storage_error *err_r, char **error_r)
{
	PGconn *conn = pg_conn(st, err_r, error_r);
	ExecStatusType status;
	const char *state;
	PGresult *res;
	bool outside;

	if (conn == NULL)
		return NULL;
	/* A statement outside a transaction (every one of those here can
	   run twice: a read, BEGIN, an insert that does nothing the second
	   time) is sent again once on a new connection when the old one
	   turns out lost (the database restarted, a proxy closed it). */
	outside = PQtransactionStatus(conn) == PQTRANS_IDLE;
	for (unsigned attempt = 0;; attempt++) {
		res = PQexecParams(conn, sql, p != NULL ? p->count : 0, NULL,
				   p != NULL ? p->values : NULL, p != NULL ? p->lengths : NULL,
				   p != NULL ? p->formats : NULL, binary ? 1 : 0);
		status = PQresultStatus(res);
		if (res != NULL && (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK))
			return res;
		if (!outside || attempt > 0 || PQstatus(conn) == CONNECTION_OK)
			break;
		PQclear(res);
		pg_drop(st);
		conn = pg_conn(st, err_r, error_r);
		if (conn == NULL)
			return NULL;
	}
	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state == NULL)
		state = "";
	if (strcmp(state, "55P03") == 0) {
		*err_r = STORAGE_ERR_IN_USE;
		*error_r = xstrdup("the mailbox is locked by another session for too long");
	} else if (strcmp(state, "53100") == 0) {
		*err_r = STORAGE_ERR_NO_SPACE;
		*error_r = xstrdup("the database's disk is full");
	} else if (strcmp(state, "23505") == 0) {
		*err_r = STORAGE_ERR_EXISTS;
		*error_r = pg_message("database", PQerrorMessage(conn));
	} else {
		*err_r = STORAGE_ERR_TEMP;
		*error_r = pg_message(PQstatus(conn) == CONNECTION_OK ? "database" :
				      "database unavailable", PQerrorMessage(conn));
	}
	PQclear(res);
	if (PQstatus(conn) != CONNECTION_OK)
		pg_drop(st);
	return NULL;
}

int
pg_cmd(struct storage *st, const char *sql, const struct pg_params *p,
       enum storage_error *err_r, char **error_r)
{
	PGresult *res = pg_exec(st, sql, p, false, err_r, error_r);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

void
pg_rollback(struct storage *st)
{
	PGresult *res;

	if (st->conn == NULL || st->conn_pid != getpid() ||
	    PQtransactionStatus(st->conn) == PQTRANS_IDLE)
		return;
	res = PQexec(st->conn, "ROLLBACK");
	PQclear(res);
}

int
pg_user_id(struct storage *st, const char *user, int64_t *id_r, enum storage_error *err_r,
	   char **error_r)
{
	struct pg_params p;
	PGresult *res;

	if (!username_is_valid(user)) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xasprintf("invalid user name");
		return -1;
	}
	pg_params_init(&p);
	pg_param_str(&p, user);
	res = pg_exec(st, "SELECT id FROM imap_users WHERE name = $1", &p, false, err_r, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1) {
		*id_r = pg_i64(res, 0, 0);
		PQclear(res);
		return 0;
	}
	PQclear(res);
	/* new: the user with its INBOX, at once (another node may do the
	   same: the unique name makes one of them win) */
	res = pg_exec(st,
		      "WITH u AS (INSERT INTO imap_users (name, last_uidvalidity) "
		      "  VALUES ($1, GREATEST(extract(epoch FROM now())::bigint, 1)) "
		      "  ON CONFLICT (name) DO NOTHING RETURNING id, last_uidvalidity) "
		      "INSERT INTO imap_mailboxes (user_id, name, uidvalidity) "
		      "SELECT id, 'INBOX', last_uidvalidity FROM u RETURNING user_id",
		      &p, false, err_r, error_r);
	if (res == NULL)
		return -1;
	PQclear(res);
	res = pg_exec(st, "SELECT id FROM imap_users WHERE name = $1", &p, false, err_r, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*err_r = STORAGE_ERR_TEMP;
		*error_r = xstrdup("database: the user could not be added");
		return -1;
	}
	*id_r = pg_i64(res, 0, 0);
	PQclear(res);
	return 0;
}

int
pg_uidvalidity_new(struct storage *st, int64_t user_id, uint32_t *uidv_r,
		   enum storage_error *err_r, char **error_r)
{
	struct pg_params p;
	PGresult *res;
	int64_t v;

	pg_params_init(&p);
	pg_param_i64(&p, user_id);
	res = pg_exec(st,
		      "UPDATE imap_users SET last_uidvalidity = "
		      "  GREATEST(last_uidvalidity + 1, extract(epoch FROM now())::bigint) "
		      "WHERE id = $1 RETURNING last_uidvalidity",
		      &p, false, err_r, error_r);
	if (res == NULL)
		return -1;
	v = PQntuples(res) == 1 ? pg_i64(res, 0, 0) : 0;
	PQclear(res);
	if (v <= 0 || v > (int64_t)UINT32_MAX) {
		*err_r = STORAGE_ERR_LIMIT;
		*error_r = xstrdup("no UIDVALIDITY left for this user");
		return -1;
	}
	*uidv_r = (uint32_t)v;
	return 0;
}

void
pg_bodies_collect(struct storage *st, const char *ids)
{
	enum storage_error err;
	struct pg_params p;
	char *error = NULL;

	if (strcmp(ids, "{}") == 0)
		return;
	pg_params_init(&p);
	pg_param_str(&p, ids);
	/* A body another transaction is giving to a new message is locked
	   by it (ON CONFLICT DO UPDATE): this waits, and the foreign key
	   then refuses to delete it. */
	if (pg_cmd(st,
		   "DELETE FROM imap_bodies b WHERE b.id = ANY($1::bigint[]) "
		   "AND NOT EXISTS (SELECT 1 FROM imap_messages m WHERE m.body_id = b.id)",
		   &p, &err, &error) < 0) {
		log_debug("-", "pgsql: bodies left for later: %s", error);
		free(error);
	}
}

/* Deletes the bodies of the guards in g (a WITH query deleting them and
   returning body_id) that nothing else uses: no message, no other guard
   younger than PG_BODY_GRACE. */
#define PG_GUARDED_BODIES_DELETE \
	"DELETE FROM imap_bodies b WHERE b.id IN (SELECT body_id FROM g) " \
	"AND NOT EXISTS (SELECT 1 FROM imap_messages m WHERE m.body_id = b.id) " \
	"AND NOT EXISTS (SELECT 1 FROM imap_body_pending q WHERE q.body_id = b.id " \
	"  AND q.at >= now() - interval '" PG_BODY_GRACE "' AND q.id NOT IN (SELECT id FROM g))"

void
pg_bodies_collect_old(struct storage *st)
{
	enum storage_error err;
	char *error = NULL;

	/* Bodies stored by an append that never committed (the server
	   was killed between its job and its commit). */
	if (pg_cmd(st,
		   "WITH g AS (DELETE FROM imap_body_pending WHERE id IN "
		   "  (SELECT id FROM imap_body_pending "
		   "   WHERE at < now() - interval '" PG_BODY_GRACE "' LIMIT 500) "
		   "  RETURNING id, body_id) " PG_GUARDED_BODIES_DELETE,
		   NULL, &err, &error) < 0) {
		log_debug("-", "pgsql: unused bodies left for later: %s", error);
		free(error);
		error = NULL;
	}
	/* At most a batch each time; a body some message still uses (or a
	   new one takes meanwhile: the foreign key refuses, and everything
	   is tried again later) stays. */
	if (pg_cmd(st,
		   "WITH old AS (SELECT DISTINCT body_id FROM imap_expunged "
		   "  WHERE body_id IS NOT NULL AND at < now() - interval '" PG_BODY_GRACE "' "
		   "  LIMIT 500), "
		   "done AS (UPDATE imap_expunged SET body_id = NULL "
		   "  WHERE body_id IN (SELECT body_id FROM old)) "
		   "DELETE FROM imap_bodies b WHERE b.id IN (SELECT body_id FROM old) "
		   "AND NOT EXISTS (SELECT 1 FROM imap_messages m WHERE m.body_id = b.id)",
		   NULL, &err, &error) < 0) {
		log_debug("-", "pgsql: old bodies left for later: %s", error);
		free(error);
	}
}

void
pg_body_pending_drop(struct storage *st, int64_t pending_id)
{
	enum storage_error err;
	struct pg_params p;
	char *error = NULL;

	pg_params_init(&p);
	pg_param_i64(&p, pending_id);
	if (pg_cmd(st, "WITH g AS (DELETE FROM imap_body_pending WHERE id = $1 "
		   "  RETURNING id, body_id) " PG_GUARDED_BODIES_DELETE, &p, &err, &error) < 0) {
		log_debug("-", "pgsql: an unused body left for later: %s", error);
		free(error);
	}
}

/* A worker thread's own storage (pg_thread_storage()). */
static pthread_key_t pg_thread_key;
static pthread_once_t pg_thread_once = PTHREAD_ONCE_INIT;

static void
pg_thread_storage_free(void *ctx)
{
	struct storage *st = ctx;

	pg_drop(st);
	free(st->conninfo);
	free(st);
}

static void
pg_thread_key_make(void)
{
	if (pthread_key_create(&pg_thread_key, pg_thread_storage_free) != 0)
		fatal("pgsql: pthread_key_create failed");
}

struct storage *
pg_thread_storage(const char *conninfo)
{
	struct storage *st;

	(void)pthread_once(&pg_thread_once, pg_thread_key_make);
	st = pthread_getspecific(pg_thread_key);
	if (st != NULL && strcmp(st->conninfo, conninfo) == 0)
		return st;
	if (st != NULL)
		pg_thread_storage_free(st);
	st = xcalloc(1, sizeof(*st));
	st->conninfo = xstrdup(conninfo);
	st->lock_ms = -1;
	if (pthread_setspecific(pg_thread_key, st) != 0)
		fatal("pgsql: pthread_setspecific failed");
	return st;
}

/* The schema */

static const char *const schema_v1[] = {
	"CREATE TABLE imap_schema (version integer NOT NULL)",
	"CREATE TABLE imap_users ("
	"  id bigserial PRIMARY KEY,"
	"  name text NOT NULL UNIQUE,"
	"  last_uidvalidity bigint NOT NULL)",
	"CREATE TABLE imap_mailboxes ("
	"  id bigserial PRIMARY KEY,"
	"  user_id bigint NOT NULL REFERENCES imap_users (id) ON DELETE CASCADE,"
	"  name text NOT NULL,"
	"  uidvalidity bigint NOT NULL,"
	"  uidnext bigint NOT NULL DEFAULT 1,"
	"  highest_modseq bigint NOT NULL DEFAULT 1,"
	"  first_recent_uid bigint NOT NULL DEFAULT 1,"
	"  UNIQUE (user_id, name))",
	"CREATE TABLE imap_bodies ("
	"  id bigserial PRIMARY KEY,"
	"  digest text NOT NULL UNIQUE,"
	"  data bytea NOT NULL)",
	"CREATE TABLE imap_messages ("
	"  mailbox_id bigint NOT NULL REFERENCES imap_mailboxes (id),"
	"  uid bigint NOT NULL,"
	"  body_id bigint NOT NULL REFERENCES imap_bodies (id),"
	"  flags integer NOT NULL,"
	"  keywords text NOT NULL DEFAULT '',"
	"  internal_date bigint NOT NULL,"
	"  tz_minutes integer NOT NULL,"
	"  size bigint NOT NULL,"
	"  modseq bigint NOT NULL,"
	"  PRIMARY KEY (mailbox_id, uid))",
	"CREATE INDEX imap_messages_modseq ON imap_messages (mailbox_id, modseq)",
	"CREATE INDEX imap_messages_body ON imap_messages (body_id)",
	"CREATE TABLE imap_expunged ("
	"  mailbox_id bigint NOT NULL REFERENCES imap_mailboxes (id) ON DELETE CASCADE,"
	"  uid bigint NOT NULL,"
	"  modseq bigint NOT NULL,"
	"  body_id bigint,"
	"  at timestamptz NOT NULL DEFAULT now())",
	"CREATE INDEX imap_expunged_modseq ON imap_expunged (mailbox_id, modseq)",
	"CREATE INDEX imap_expunged_body ON imap_expunged (at) WHERE body_id IS NOT NULL",
	"CREATE TABLE imap_subscriptions ("
	"  user_id bigint NOT NULL REFERENCES imap_users (id) ON DELETE CASCADE,"
	"  name text NOT NULL,"
	"  PRIMARY KEY (user_id, name))",
};

/* Version 2: a body stored by an append's job, guarded until its commit
   takes it (pgsql_job.c). */
static const char *const schema_v2[] = {
	"CREATE TABLE imap_body_pending ("
	"  id bigserial PRIMARY KEY,"
	"  body_id bigint NOT NULL REFERENCES imap_bodies (id),"
	"  at timestamptz NOT NULL DEFAULT now())",
	"CREATE INDEX imap_body_pending_body ON imap_body_pending (body_id)",
	"CREATE INDEX imap_body_pending_at ON imap_body_pending (at)",
};

/* The steps from version i to i + 1. */
static const struct {
	const char *const *sql;
	size_t count;
} schema_steps[PG_SCHEMA_VERSION] = {
	{ schema_v1, N_ELEMENTS(schema_v1) },
	{ schema_v2, N_ELEMENTS(schema_v2) },
};

/* The version in the database: 0 if there is no schema, -1 on error. */
static int
pg_schema_version(struct storage *st, enum storage_error *err_r, char **error_r)
{
	PGresult *res;
	int v;

	res = pg_exec(st, "SELECT to_regclass('imap_schema') IS NOT NULL", NULL, false, err_r,
		      error_r);
	if (res == NULL)
		return -1;
	v = strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? 1 : 0;
	PQclear(res);
	if (v == 0)
		return 0;
	res = pg_exec(st, "SELECT max(version) FROM imap_schema", NULL, false, err_r, error_r);
	if (res == NULL)
		return -1;
	v = PQgetisnull(res, 0, 0) ? 0 : (int)pg_i64(res, 0, 0);
	PQclear(res);
	return v;
}

int
pg_schema_check(struct storage *st, char **error_r)
{
	enum storage_error err;
	int v = pg_schema_version(st, &err, error_r);

	if (v < 0)
		return -1;
	if (v == 0) {
		*error_r = xstrdup("the database has no imapserver schema: "
				   "run imapserver --init-db first");
		return -1;
	}
	if (v != PG_SCHEMA_VERSION) {
		*error_r = xasprintf("the database's schema is version %d, this build "
				     "knows version %d: run imapserver --init-db%s",
				     v, PG_SCHEMA_VERSION,
				     v > PG_SCHEMA_VERSION ? " of a newer build" : "");
		return -1;
	}
	return 0;
}

int
pg_init_db(const struct storage_settings *set, char **msg_r, char **error_r)
{
	struct storage st = { .conninfo = (char *)set->conninfo, .lock_ms = -1 };
	enum storage_error err;
	struct pg_params p;
	int v, ret = -1;

	pg_params_init(&p);
	pg_param_i64(&p, PG_SCHEMA_VERSION);
	if (set->conninfo == NULL) {
		*error_r = xstrdup("storage.conninfo is not set");
		return -1;
	}
	/* one --init-db at a time, whatever runs them */
	if (pg_cmd(&st, "BEGIN", NULL, &err, error_r) < 0 ||
	    pg_cmd(&st, "SELECT pg_advisory_xact_lock(7173)", NULL, &err, error_r) < 0)
		goto out;
	v = pg_schema_version(&st, &err, error_r);
	if (v < 0)
		goto out;
	if (v > PG_SCHEMA_VERSION) {
		*error_r = xasprintf("the database's schema is version %d, newer than this "
				     "build's (%d): nothing changed", v, PG_SCHEMA_VERSION);
		goto out;
	}
	if (v == PG_SCHEMA_VERSION) {
		*msg_r = xasprintf("the schema is at version %d already", v);
		ret = 0;
		goto out;
	}
	for (int step = v; step < PG_SCHEMA_VERSION; step++) {
		for (size_t i = 0; i < schema_steps[step].count; i++) {
			if (pg_cmd(&st, schema_steps[step].sql[i], NULL, &err, error_r) < 0)
				goto out;
		}
	}
	if (pg_cmd(&st, "DELETE FROM imap_schema", NULL, &err, error_r) < 0 ||
	    pg_cmd(&st, "INSERT INTO imap_schema (version) VALUES ($1)", &p, &err, error_r) < 0 ||
	    pg_cmd(&st, "COMMIT", NULL, &err, error_r) < 0)
		goto out;
	if (v == 0)
		*msg_r = xasprintf("schema version %d created", PG_SCHEMA_VERSION);
	else
		*msg_r = xasprintf("schema upgraded from version %d to %d", v, PG_SCHEMA_VERSION);
	ret = 0;
out:
	pg_rollback(&st);
	pg_drop(&st);
	return ret;
}

#endif /* HAVE_PQ */
