/* pgsql_private.h: what the files of backends/pgsql/ share.

   pgsql_db.c holds the connection (one per process, made again after a
   fork or a lost server), the query helpers and the schema;
   pgsql_storage.c the hierarchy and subscriptions; pgsql_mailbox.c an
   open mailbox; pgsql_job.c the round trips that cost a mailbox's or a
   message's size, made in a worker thread on a connection of its own. */
#ifndef BACKENDS_PGSQL_PRIVATE_H
#define BACKENDS_PGSQL_PRIVATE_H

#include "storage.h"

#include <libpq-fe.h>
#include <sys/types.h>

/* The schema version this build writes and reads (imapserver --init-db). */
#define PG_SCHEMA_VERSION 2
/* The largest message stored (as flat and Maildir allow). */
#define PG_MAX_MSG (1024ULL * 1024 * 1024)
/* How long an expunged message's body stays readable by the sessions of
   other servers that were not told of the expunge yet. */
#define PG_BODY_GRACE "1 hour"
/* A statement that runs longer than this fails (the database is stuck). */
#define PG_STATEMENT_TIMEOUT_MS 30000

struct storage {
	char *conninfo;
	PGconn *conn;
	/* The process that made conn: a forked child makes its own (the
	   parent's socket is left alone, never closed by the child). */
	pid_t conn_pid;
	/* lock_timeout in force on conn (storage_lock_wait_ms when set). */
	int64_t lock_ms;
	/* A second connection that only LISTENs on PG_CHANNEL: other
	   processes' changes (notify_fd()). */
	PGconn *listen_conn;
	pid_t listen_pid;
};

/* Every change of a mailbox is announced on this channel at its commit,
   with "<user>\t<mailbox name>" as the payload. */
#define PG_CHANNEL "imap_changes"

struct storage_box {
	struct storage *st;
	int64_t id;                /* imap_mailboxes.id */
	uint32_t uidvalidity;
	/* Every change up to this modseq is in the state (sync()). */
	uint64_t synced;
	/* first_recent_uid last written: \Recent below it was taken by
	   this process or others (pg_recent_take()) */
	uint32_t recent_written;
	char *news;                /* "<user>\t<name>": what PG_CHANNEL says of it */
};

/* Positional parameters of a statement, as text (NULL = SQL NULL), or
   binary where len is set. */
#define PG_MAX_PARAMS 10
struct pg_params {
	const char *values[PG_MAX_PARAMS];
	int lengths[PG_MAX_PARAMS];
	int formats[PG_MAX_PARAMS];
	int count;
	char text[PG_MAX_PARAMS][24];
};

void pg_params_init(struct pg_params *p);
void pg_param_str(struct pg_params *p, const char *s);
void pg_param_i64(struct pg_params *p, int64_t n);
void pg_param_bin(struct pg_params *p, const void *data, size_t len);

/* A new connection to conninfo, set up as every one of ours is (quiet
   notices, timeouts). NULL with *error_r. */
PGconn *pg_connect(const char *conninfo, char **error_r);
/* The connection, made (or made again) as needed. NULL with *err_r
   STORAGE_ERR_TEMP and *error_r if the database cannot be reached. */
PGconn *pg_conn(struct storage *st, enum storage_error *err_r, char **error_r);
/* Runs sql with p (may be NULL), results in text, or binary if binary.
   Returns the result of a command that succeeded (PGRES_COMMAND_OK or
   PGRES_TUPLES_OK; the caller PQclear()s it), or NULL with *err_r and
   *error_r: STORAGE_ERR_IN_USE for a lock wait that timed out,
   STORAGE_ERR_NO_SPACE for a full disk, STORAGE_ERR_EXISTS for a unique
   key taken, STORAGE_ERR_TEMP for the rest (a connection lost is made
   again at the next call). */
PGresult *pg_exec(struct storage *st, const char *sql, const struct pg_params *p, bool binary,
		  enum storage_error *err_r, char **error_r);
/* pg_exec() for a command whose result is not needed. */
int pg_cmd(struct storage *st, const char *sql, const struct pg_params *p,
	   enum storage_error *err_r, char **error_r);
/* ROLLBACK, errors ignored (the connection may be gone). */
void pg_rollback(struct storage *st);
int64_t pg_i64(const PGresult *res, int row, int col);

/* The user's id, the user made if missing (and its INBOX). */
int pg_user_id(struct storage *st, const char *user, int64_t *id_r, enum storage_error *err_r,
	       char **error_r);
/* A new UIDVALIDITY for a mailbox of user user_id: above every one given
   to the user before (inside the caller's transaction). */
int pg_uidvalidity_new(struct storage *st, int64_t user_id, uint32_t *uidv_r,
		       enum storage_error *err_r, char **error_r);
/* Deletes the bodies of ids (a '{1,2}' array) that no message uses any
   more. Errors are ignored: a body left over is removed by a later one. */
void pg_bodies_collect(struct storage *st, const char *ids);
/* Deletes the bodies of messages expunged longer than PG_BODY_GRACE ago
   that no message uses any more (a batch at a time; errors ignored). */
void pg_bodies_collect_old(struct storage *st);
/* Drops the guard pending_id of a body a job stored for an append that
   was not made, and the body unless something else uses it (errors
   ignored: pg_bodies_collect_old() does it later). */
void pg_body_pending_drop(struct storage *st, int64_t pending_id);

/* A storage of the calling thread's own (a worker's: its own connection
   to conninfo), made at its first call, freed when the thread ends. */
struct storage *pg_thread_storage(const char *conninfo);

int pg_init_db(const struct storage_settings *set, char **msg_r, char **error_r);
int pg_notify_fd(struct storage *st);
int pg_notify_read(struct storage *st, storage_changed_func *changed, void *ctx);
void pg_listen_close(struct storage *st);
int pg_schema_check(struct storage *st, char **error_r);

/* pgsql_mailbox.c */

/* What a mailbox's row says, read with or without its lock. */
struct pg_head {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highest;
	uint32_t first_recent;
};

/* What other sessions committed to a mailbox since box->synced, up to
   h.highest: read (in a worker, say) by pg_changes_fetch(), made the
   state's by pg_changes_apply() (in the loop). */
struct pg_changes {
	struct pg_head h;
	PGresult *expunged, *changed;  /* NULL: nothing */
};

/* Reads box's row into *h (locking it if lock). 0, or -1 with
   STORAGE_ERR_NOT_FOUND if the mailbox was deleted meanwhile. */
int pg_head_read(struct storage_box *box, bool lock, struct pg_head *h,
		 enum storage_error *err_r, char **error_r);
int pg_changes_fetch(struct storage_box *box, const struct pg_head *h, struct pg_changes *c,
		     enum storage_error *err_r, char **error_r);
/* Applies c to state (box->synced = c->h.highest) and frees it. */
void pg_changes_apply(struct storage_box *box, struct mbox_state *state,
		      struct pg_changes *c);
void pg_changes_free(struct pg_changes *c);
/* The mailbox's new HIGHESTMODSEQ, inside the change, announced to
   every other server at the commit. */
int pg_head_write(struct storage_box *box, uint64_t modseq, enum storage_error *err_r,
		  char **error_r);
/* COMMIT of a change (rolled back on failure). */
int pg_change_commit(struct storage_box *box, enum storage_error *err_r, char **error_r);
/* uids as an SQL array literal ("{1,2,3}"), malloc'ed. */
char *pg_uid_array(const uint32_t *uids, size_t count);
/* Inside a change: removes uids (an array literal) as expunged at
   modseq, recorded for other servers and QRESYNC. */
int pg_expunge_write(struct storage_box *box, const char *uids, uint64_t modseq,
		     enum storage_error *err_r, char **error_r);

int pg_open(struct storage *st, const char *user, const char *name, struct mbox_state *state,
	    struct storage_box **box_r, enum storage_error *err_r, char **error_r);
void pg_close(struct storage_box **box);
int pg_sync(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	    char **error_r);
/* pg_sync() in two steps: the reads (in one snapshot: every change since
   box->synced, or every message if the mailbox was made again, then
   *reload_r), on any connection (box->st); then, in the loop, applying
   them to state (freeing c; returns as pg_sync()). */
int pg_sync_read(struct storage_box *box, struct pg_changes *c, bool *reload_r,
		 enum storage_error *err_r, char **error_r);
int pg_sync_apply(struct storage_box *box, struct mbox_state *state, struct pg_changes *c,
		  bool reload);
int pg_sync_prepare(struct storage_box *box, const struct mbox_state *state, bool take_recent,
		    struct storage_job **job_r, enum storage_error *err_r, char **error_r);
int pg_sync_commit(struct storage_box *box, struct mbox_state *state,
		   struct storage_job **job, enum storage_error *err_r, char **error_r);
int pg_flags_prepare(struct storage_box *box, const struct mbox_state *state,
		     const struct storage_flag_change *changes, size_t count,
		     struct storage_job **job_r, enum storage_error *err_r, char **error_r);
int pg_flags_commit(struct storage_box *box, struct mbox_state *state,
		    struct storage_job **job, uint64_t *modseq_r, enum storage_error *err_r,
		    char **error_r);
int pg_read_prepare(struct storage_box *box, const struct mail_rec *recs, size_t count,
		    struct storage_job **job_r, enum storage_error *err_r, char **error_r);
int pg_read_take(struct storage_job *job, size_t i, struct buf *out, enum storage_error *err_r,
		 char **error_r);
int pg_copy_prepare(struct storage_box *src, struct storage_box *dst,
		    const struct mbox_state *dst_state, const struct mail_rec *recs,
		    const uint64_t *keywords, size_t count, struct storage_job **job_r,
		    enum storage_error *err_r, char **error_r);
int pg_copy_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **job,
		   uint32_t *uids_r, enum storage_error *err_r, char **error_r);
int pg_read(struct storage_box *box, const struct mail_rec *rec, struct buf *out,
	    enum storage_error *err_r, char **error_r);
int pg_append(struct storage_box *box, struct mbox_state *state, const char *data, size_t len,
	      uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
	      uint32_t *uid_r, enum storage_error *err_r, char **error_r);
int pg_flags_changed(struct storage_box *box, struct mbox_state *state, size_t idx,
		     enum storage_error *err_r, char **error_r);
int pg_expunge(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
	       size_t count, enum storage_error *err_r, char **error_r);
int pg_set_uids(struct storage_box *box, struct mbox_state *state, uint32_t uidvalidity,
		uint32_t uidnext, enum storage_error *err_r, char **error_r);
void pg_hints_changed(struct storage_box *box, const struct mbox_state *state);
int pg_set_modseqs(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
		   char **error_r);

/* A message to add: its body as served, stored by the change itself; or
   stored already by a job (body_id), guarded from the collectors until
   the change takes it by its imap_body_pending row (pending_id). */
struct pg_new_msg {
	const struct buf *body;    /* NULL when body_id is set */
	const char *digest;
	int64_t body_id, pending_id;
	uint64_t size;
};

/* The message as stored (CRLF line ends) into body, and its digest.
   -1 with STORAGE_ERR_LIMIT for an empty or too large one. */
int pg_body_make(const char *data, size_t len, struct buf *body,
		 char digest_r[STORAGE_OBJECTID_SIZE], enum storage_error *err_r,
		 char **error_r);
/* Adds m to box in one change (append() after its body is made). */
/* The keywords of bits (indexes into state), as stored ("a b c"). */
char *pg_keywords_out(const struct mbox_state *state, uint64_t bits);
/* A message's keywords (names, space-separated: current) once a flag
   change's rule (storage.h) is applied, its set and clear indexes into
   names' keywords; malloc'ed. */
char *pg_keywords_rule(const char *current, const struct mbox_state *names, uint64_t set,
		       uint64_t clear);
/* A new message's record: the next UID of h, the modseq above h's and
   highest, the date now if internal_date is 0. */
void pg_add_rec(const struct pg_head *h, uint64_t highest, uint8_t flags, uint64_t keywords,
		int64_t internal_date, int32_t tz_minutes, uint64_t size, struct mail_rec *rec);
/* Whether h has a UID left to give (else STORAGE_ERR_LIMIT). */
bool pg_uids_left(const struct pg_head *h, enum storage_error *err_r, char **error_r);
/* Inside a change (the mailbox's row locked): stores rec (its body m's,
   rec->priv[0] set to it; kw its keywords) and raises the mailbox's
   UIDNEXT and HIGHESTMODSEQ, announced at the commit. */
int pg_add_write(struct storage_box *box, const struct pg_new_msg *m, struct mail_rec *rec,
		 const char *kw, enum storage_error *err_r, char **error_r);
int pg_add(struct storage_box *box, struct mbox_state *state, const struct pg_new_msg *m,
	   uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
	   uint32_t *uid_r, enum storage_error *err_r, char **error_r);

/* pgsql_job.c (storage.h: open_prepare, append_prepare) */
int pg_open_prepare(struct storage *st, const char *user, const char *name,
		    struct storage_job **job_r, enum storage_error *err_r, char **error_r);
int pg_open_commit(struct storage *st, struct storage_job **job, struct mbox_state *state,
		   struct storage_box **box_r, enum storage_error *err_r, char **error_r);
int pg_append_prepare(struct storage_box *box, const char *data, size_t len,
		      struct storage_job **job_r, enum storage_error *err_r, char **error_r);
int pg_append_settle(struct storage_box *box, const struct mbox_state *state,
		     struct storage_job *job, uint8_t flags, uint64_t keywords,
		     int64_t internal_date, int32_t tz_minutes);
int pg_append_commit(struct storage_box *box, struct mbox_state *state,
		     struct storage_job **job, uint8_t flags, uint64_t keywords,
		     int64_t internal_date, int32_t tz_minutes, uint32_t *uid_r,
		     enum storage_error *err_r, char **error_r);
int pg_expunge_prepare(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
		       size_t count, struct storage_job **job_r, enum storage_error *err_r,
		       char **error_r);
int pg_job_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **job,
		  enum storage_error *err_r, char **error_r);
void pg_job_work(struct storage_job *job);
void pg_job_abort(struct storage_box *box, struct storage_job **job);
/* storage.h recent_take(); also in a worker (a sync's take), state
   NULL there. */
uint32_t pg_recent_take(struct storage_box *box, const struct mbox_state *state, uint32_t upto);

#endif
