/* pgsql_job.h: the pgsql backend's jobs (storage.h's heavy operations
   split for a worker thread), shared by pgsql_job.c (a mailbox's opens,
   appends, expunges and syncs) and pgsql_job_msgs.c (a command's flag
   changes, reads ahead and copies). Private to the backend. */
#ifndef PGSQL_JOB_H
#define PGSQL_JOB_H

#include "backends/pgsql/pgsql_private.h"

#include "buf.h"

enum pg_job_kind {
	PG_JOB_OPEN,
	PG_JOB_APPEND,
	PG_JOB_EXPUNGE,
	PG_JOB_SYNC,
	PG_JOB_FLAGS,
	PG_JOB_READ,
	PG_JOB_COPY,
};

struct storage_job {
	struct storage *st;        /* the loop's: for the commit and abort */
	char *conninfo;            /* the worker connects with it */
	enum pg_job_kind kind;
	/* what the work did */
	int ret;
	enum storage_error err;
	char *error;
	/* open */
	char *user, *name;
	struct mbox_state state;
	struct storage_box *box;
	/* append: the message as given, then its body as stored */
	char *data;
	size_t len;
	int64_t body_id, pending_id;
	uint64_t size;
	/* expunge: a copy of the box as the worker uses it (its st set
	   there), the UIDs, the state's modseq; then what was read and the
	   expunge's modseq */
	struct storage_box wbox;
	uint32_t *uids;
	size_t count;
	uint64_t highest;
	struct pg_changes changes;
	uint64_t modseq;
	/* sync: the changes read are the whole mailbox, made again; with
	   take_recent, \Recent taken in the work from recent_from up to
	   recent_upto (0: not taken) */
	bool reload;
	bool take_recent;
	uint32_t recent_from, recent_upto;
	/* flags: the changes (count of them, the UIDs in uids), the new
	   values they give as the state has the messages (the keywords'
	   names in state), then the ones the worker left out (others
	   changed them past their condition); modseq is theirs, 0 if none
	   was written */
	struct storage_flag_change *fchanges;
	uint8_t *new_flags, *skipped;
	uint64_t *new_kw;
	/* read: the bodies' ids (an array literal) and UIDs (uids), then
	   one row per message, in order (data NULL: gone) */
	char *body_arr;
	PGresult *bodies;
	/* copy: the copies as records (count, body ids in priv[0], the
	   keywords dst's), the columns as array literals; the first UID */
	struct mail_rec *recs;
	char *copy_cols[5];
	uint32_t first_uid;
	/* append, once settled: its transaction in the worker too (the
	   changes read as for an expunge), the message as committed */
	bool settled;
	char *kw;
	struct mail_rec rec;
};

struct storage_job *pg_job_new(struct storage *st, enum pg_job_kind kind);
void pg_job_free(struct storage_job *job);
/* The job's copy of box, for the worker (its st set there). */
void pg_job_box(struct storage_job *job, const struct storage_box *box);
/* value, quoted as an element of an SQL array literal. */
void pg_array_quote(struct buf *arr, const char *value);
/* At a commit: whether the work failed; then its failure is the
   commit's (the reason moved to *error_r). */
bool pg_job_failed(struct storage_job *job, enum storage_error *err_r, char **error_r);
/* In the worker: begins a change of the job's box (see pgsql_job.c). */
int pg_job_change_begin(struct storage_job *job, struct storage *wst, struct pg_head *h);

/* pgsql_job_msgs.c: the work of a command's jobs */
void pg_flags_work(struct storage_job *job);
void pg_read_work(struct storage_job *job);
void pg_copy_work(struct storage_job *job);

#endif
