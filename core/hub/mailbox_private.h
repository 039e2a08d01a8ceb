/* mailbox_private.h: what the files of the mailbox hub share (mailbox.c,
   mailbox_job.c, mailbox_signal.c): its structs and the functions one defines for the
   other. Not for use outside core/hub/mailbox*.c. */
#ifndef MAILBOX_PRIVATE_H
#define MAILBOX_PRIVATE_H

#include "lib.h"
#include "storage.h"

/* Named here, defined elsewhere: this header does not include mailbox.h
   (a module and its private header must not include each other); the
   files include both. */
struct job;
struct mailbox;
struct mbox_view;
struct mime_cache;
struct seqset;
struct watch;
struct watch_entry;

struct expunge_entry {
	uint32_t uid;
	uint64_t modseq;
};


/* A session waiting for a busy mailbox. */
struct mailbox_waiter {
	struct mailbox *mbox;
	void (*cb)(void *ctx);
	void *ctx;
	struct mailbox_waiter *prev, *next;
};

/* A job at work on a mailbox (an expunge, or the first open): the
   mailbox is busy until its commit. */
struct mailbox_op {
	struct mailbox *mbox;      /* referenced until the op ends */
	const struct storage_backend *backend;
	struct storage_job *sjob;  /* the worker's until the job is done */
	struct job *job;
	bool open;                 /* the first open */
	bool sync;                 /* a sync (sync_prepare), else an expunge */
	bool flags;                /* flag changes (flags_prepare) */
	bool copy;                 /* copies into it (copy_prepare) */
	uint32_t *copy_uids;       /* where their UIDs go (the caller's) */
	uint64_t *modseq_r;        /* flags: where the modseq written goes (the caller's) */
	uint64_t gen;              /* a sync: its number (syncs_started) */
	/* the append whose commit works (append_settle), which owns sjob */
	struct mailbox_append_op *append;
	uint32_t *list;            /* the UIDs to remove, ascending */
	size_t count;
	/* mailbox_done_func; NULL once detached */
	void (*done)(void *ctx, int ret, enum storage_error err);
	void *ctx;
	char sid[32];
};


struct mailbox {
	struct hub *hub;
	char *user, *name;
	struct storage_box *box;
	struct mbox_state state;
	unsigned refcount;
	struct mbox_view *views;
	/* While some session has it selected: the files other processes
	   may change (one watch per mailbox, shared by its sessions). */
	struct watch_entry **watches;
	size_t watch_count;
	struct mailbox *prev, *next;
	/* Order in which unreferenced mailboxes were released. */
	uint64_t released_at;
	/* QRESYNC: every expunge with a modseq above expunge_known_from is
	   in expunged[] (ascending modseq). Expunges before the mailbox was
	   opened in this process are not known one by one. */
	struct expunge_entry *expunged;
	size_t expunged_count, expunged_alloc;
	uint64_t expunge_known_from;
	/* The job at work on the mailbox (busy), and who waits for it. */
	struct mailbox_op *op;
	/* Appends whose message is being written in a job
	   (mailbox_append_start()); they do not make the mailbox busy. */
	struct mailbox_append_op *appends;
	/* Messages read ahead in a job (mailbox_read_start()); they do not
	   make it busy either. */
	struct mailbox_read_op *reads;
	struct mailbox_waiter *waiters, *waiters_tail;
	/* Syncs in a job (mailbox_catch_up()): how many were started, and
	   the number of the last one done; another is due after the one at
	   work (news came meanwhile). */
	uint64_t syncs_started, syncs_done;
	bool sync_again;
	/* A read-write SELECT waits for a sync (mailbox_want_recent()):
	   until its view is made, syncs take \Recent as for one. */
	bool recent_wanted;
	/* How the last of them ended: mailbox_open() fails with it. */
	enum storage_error sync_err;
	/* A write failed for lack of space and was logged: the next ones
	   are not, until a write succeeds (mailbox_log_write()). */
	bool space_logged;
	/* Being opened by a job (hub_open_start()): no box yet, state
	   empty; mailbox_open() refuses it until the job is done. */
	bool opening;
	/* Flag changes made while busy (a FETCH setting \Seen): in the
	   state at once, written by the backend once the job is done; each
	   as what it set and cleared (a backend shared with others applies
	   that to the message as it is then, storage.h flags_prepare). */
	struct storage_flag_change *deferred_flags;
	size_t deferred_count, deferred_alloc;
	/* The listing cache, opened at first use (mailbox_mcache()). */
	struct mcache *mcache;
	/* The sum of the messages' sizes (mailbox_octets()), for the state
	   as these counters describe it: a message set changes only with
	   them (appends raise uidnext, removals expunge_gen). */
	struct {
		bool valid;
		uint32_t uidvalidity, uidnext;
		uint64_t expunge_gen;
		size_t count;
		uint64_t octets;
	} octets_cache;
};


/* A session listening for the changes of a user's mailboxes (NOTIFY,
   hub_listen()). */
struct hub_listener {
	struct hub *hub;
	char *user;
	void (*cb)(void *ctx, int event, const char *name, const char *old_name);
	void *ctx;
	struct hub_listener *prev, *next;
};

struct hub {
	struct storage_ctx storage;
	struct watch *watch;
	struct mime_cache *mime_cache;
	struct mailbox *mailboxes;
	uint64_t release_clock;
	/* Only sessions that asked for NOTIFY listen. */
	struct hub_listener *listeners;
	/* The backend's news of other processes' changes (notify_fd()). */
	struct event_io *notify_io;
	struct event_timer *notify_retry;
	int notify_fd;
};

/* mailbox_notify.c: listening to the backend's news of changes made by
   other processes (storage.h, notify_fd()), started with the hub. */
void hub_notify_start(struct hub *hub);
void hub_notify_stop(struct hub *hub);


/* mailbox.c */
/* After the backend's sync returned ret (state is in line; before holds
   the state's counters from before it): logs a UIDVALIDITY change, keeps
   expunge_gen and HIGHESTMODSEQ right for expunges made elsewhere and
   tells the views if anything changed. */
struct mailbox_sync_before {
	uint64_t modseq, gen;
	uint32_t uidnext, uidvalidity;
	size_t count;
};
void mailbox_sync_before(const struct mailbox *mbox, struct mailbox_sync_before *b);
void mailbox_synced(struct mailbox *mbox, int ret, const struct mailbox_sync_before *b,
		    const char *sid);
/* mailbox_job.c: starts a sync in a job (mailbox_sync_in_job()). */
void mailbox_sync_start(struct mailbox *mbox, const char *sid);

/* The UIDs mailbox_expunge*() removes, ascending, into *list_r. */
size_t mailbox_expunge_collect(const struct mbox_state *st, const struct seqset *uids,
			       bool deleted_only, uint32_t **list_r);
/* After the backend's expunge (or commit) returned ret: logs, keeps the
   expunge's modseq, remembers the removed UIDs for QRESYNC and bumps
   expunge_gen (from gen) once. Takes error. Returns ret. */
int mailbox_expunge_finish(struct mailbox *mbox, const uint32_t *list, size_t count,
			   uint64_t modseq, uint64_t gen, int ret, enum storage_error *err_r,
			   char *error, const char *sid);
int mailbox_expunge_full(struct mailbox *mbox, const struct seqset *uids, bool deleted_only,
			 enum storage_error *err_r, const char *sid);

/* Unlinks mbox from its hub and frees it (its job, if any, is waited
   for and undone). */
/* Logs a failed write to mbox (what: "append to", ...; ret -1) with its
   reason, except that a lack of space is logged once until an append
   succeeds again (ret 0 after "append to"), which is logged too: one line
   per mailbox per condition, not one per attempt. error may be NULL. */
/* Points the state's before_remove hook at the hub (again: a backend
   that loads an empty state afresh, mbox_state_init(), clears it). */
void mailbox_hook_state(struct mailbox *mbox);
/* At hub_free(): the reads at work are waited for and dropped (their
   callers are gone). */
void mailbox_reads_free(struct mailbox *mbox);
void mailbox_log_write(struct mailbox *mbox, const char *sid, int ret, enum storage_error err,
		       const char *what, const char *error);
void mailbox_destroy(struct mailbox *mbox);

/* mailbox_job.c */
/* True (with *err_r and a log line) if mbox is busy: the caller should
   have waited (mailbox_wait_idle()). */
bool mailbox_busy_error(struct mailbox *mbox, enum storage_error *err_r, const char *sid,
			const char *what);
/* At mailbox_destroy(): waits for and undoes the job at work, forgets the
   waiters. */
void mailbox_jobs_free(struct mailbox *mbox);
/* Finishes mbox's first open in a job at once, in the loop
   (job_finish_now()): its waiters go on, and mbox is open, or gone if
   the open failed. */
void mailbox_open_now(struct mailbox *mbox);

#endif
