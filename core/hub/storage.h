/* storage.h: the storage backend contract.

   A storage backend is one .c file in backends/ exporting one const
   struct storage_backend filled with designated initializers; the registry
   (core/hub/registry.c) lists them and the config names one.

   The core owns the in-memory list of a mailbox's messages (struct
   mbox_state). A backend fills and changes it only through the
   mbox_state_*() helpers below, so UIDs, flags and modification sequences
   are kept the same way by every backend. The protocol code never calls a
   backend directly: it calls the storage_*() wrappers at the end of this
   file.

   Conventions: functions return 0 on success and -1 on error with a
   malloc'ed reason in *error_r (the caller frees it) and, for every
   operation that has one, its kind in *err_r (STORAGE_ERR_IN_USE for a
   lock held too long by another process, STORAGE_ERR_NO_SPACE for
   ENOSPC/EDQUOT, STORAGE_ERR_NOT_FOUND for a mailbox gone from the disk,
   STORAGE_ERR_TEMP for the rest). Lookups return 1 found, 0 not found,
   -1 error. */
#ifndef STORAGE_H
#define STORAGE_H

#include "lib.h"
#include "buf.h"

/* System flags. \Recent is not stored: it is a property of a session. */
enum mail_flag {
	MAIL_SEEN = 0x01,
	MAIL_ANSWERED = 0x02,
	MAIL_FLAGGED = 0x04,
	MAIL_DELETED = 0x08,
	MAIL_DRAFT = 0x10,
};
#define MAIL_FLAGS_ALL 0x1f
#define MBOX_MAX_KEYWORDS 64

/* Why an operation failed, so that the client gets the right answer. */
enum storage_error {
	STORAGE_ERR_NONE = 0,
	STORAGE_ERR_TEMP,          /* I/O error and the like: NO [SERVERBUG]/[UNAVAILABLE] */
	STORAGE_ERR_NOT_FOUND,     /* mailbox does not exist: NO [NONEXISTENT] */
	STORAGE_ERR_EXISTS,        /* mailbox exists already: NO [ALREADYEXISTS] */
	STORAGE_ERR_BAD_NAME,      /* name not allowed: NO [CANNOT] */
	STORAGE_ERR_NO_SPACE,      /* disk full or quota: NO [OVERQUOTA] */
	STORAGE_ERR_LIMIT,         /* a limit of the format: NO [LIMIT] */
	STORAGE_ERR_IN_USE,        /* locked by another writer for too long: NO [INUSE] */
};

/* One message as the core sees it. */
struct mail_rec {
	uint32_t uid;
	uint8_t flags;             /* enum mail_flag bits */
	uint64_t keywords;         /* bit i = mbox_state.keywords[i] */
	int64_t internal_date;     /* seconds since the epoch */
	int32_t tz_minutes;        /* zone of the internal date, minutes east of UTC */
	uint64_t size;             /* RFC822.SIZE: octets of the message as served (CRLF) */
	uint64_t modseq;           /* bumped by the core on every flag change */
	uint64_t priv[3];          /* the backend's locator of the message bytes */
};

/* struct mail_rec is also an on-disk record (a mapped index, see
   mbox_state_map()): its layout is fixed, checked in storage.c. */
#define MAIL_REC_SIZE 72

/* The in-memory state of one mailbox, shared by all sessions that
   selected it. Messages are sorted by ascending UID.

   mails is either heap memory or, for a large mailbox opened from an
   index, a private mapping of the index's records (mbox_state_map()):
   the same array to every reader and every helper below. */
struct mbox_state {
	struct mail_rec *mails;
	size_t count, alloc;
	uint32_t uidvalidity;
	uint32_t uidnext;          /* next UID to assign; UIDs are never reused */
	uint32_t first_recent_uid; /* messages with uid >= this are still \Recent for someone */
	/* A store shared with other processes (recent_take()): the \Recent
	   of the messages below this UID is settled for this process
	   (taken by a sync's work, or by recent_take()): no take is due. */
	uint32_t recent_taken;
	uint64_t highest_modseq;
	/* A hint: every message whose UID is below seen_below has \Seen (0
	   or 1: nothing known), so that the first unseen message is found
	   without walking every record (SELECT's UNSEEN). mbox_state_init()
	   and mbox_state_clear() set it to 0; mbox_state_set_flags()
	   lowers it; a backend that writes a message's flags in another way
	   calls mbox_state_flags_written(); a backend that loads a state
	   may set it from its index (at most uidnext). */
	uint32_t seen_below;
	char *keywords[MBOX_MAX_KEYWORDS];
	unsigned keyword_count;
	/* Counts changes, so that a session can tell cheaply whether it
	   has anything to catch up with. */
	uint64_t expunge_gen;
	/* mails is mapped (map_size bytes of address space; map_fd holds
	   the read lock of the mapped file, see mbox_state_map()). */
	bool mapped;
	int map_fd;
	size_t map_size;
	/* If set, called by the helpers below (mbox_state_remove(),
	   mbox_state_remove_uids(), mbox_state_clear()) before they remove
	   messages from index idx on, while mails[] still holds them: the
	   hub's views that read the shared array take their own copy of it
	   then (core/hub/mailbox.c). Set by the hub once the mailbox is
	   open; a backend removes messages only through those helpers. */
	void (*before_remove)(void *ctx, size_t idx);
	void *before_remove_ctx;
};

/* mbox_state helpers, for backends and the core. */
void mbox_state_init(struct mbox_state *state);
void mbox_state_deinit(struct mbox_state *state);
/* Drops every message and keyword (for a UIDVALIDITY reset). */
void mbox_state_clear(struct mbox_state *state);
/* Appends rec (its uid must be above every present uid; uidnext is
   raised past it). Returns the new record. */
struct mail_rec *mbox_state_append(struct mbox_state *state, const struct mail_rec *rec);
/* Removes the message at index idx. */
void mbox_state_remove(struct mbox_state *state, size_t idx);
/* Removes every message whose UID is in uids[0..count) (ascending,
   duplicates allowed; UIDs not present are ignored) in one compaction
   pass, O(state->count + count): use it instead of mbox_state_remove() in
   a loop. Bumps expunge_gen once if anything was removed. */
void mbox_state_remove_uids(struct mbox_state *state, const uint32_t *uids, size_t count);
/* Makes room for count messages in state->mails (amortised growth; a
   mapped array moves to the heap when it outgrows its reserve). For a
   backend that fills state in one go. */
void mbox_state_reserve(struct mbox_state *state, size_t count);
/* Backs state->mails, which must be empty and not mapped, by the count
   records at offset off (a multiple of the page size) of the open file
   fd, which are struct mail_rec byte for byte (host order, packed at
   MAIL_REC_SIZE): a MAP_PRIVATE mapping with room for as many again
   reserved behind it, so that opening costs no copy and pages are read
   when touched. state->count becomes count; nothing else changes.

   The file must not change under the mapping: pages not yet written by
   the core show what is in the file. mbox_state_map() therefore takes a
   shared lock on fd's open file description (an OFD read lock over the
   whole file, kept on a dup of fd while the array is mapped); a writer
   overwrites bytes of such a file in place only after
   mbox_map_write_begin() succeeded, and rewrites the file whole (a new
   inode by rename) when it did not. Appending past the records every
   reader knows, and replacing the file by rename, need no lock: a mapper
   never reads past its count without writing first, and keeps its
   unlinked inode. Nobody may truncate a mapped file (its pages would
   fault); the writers here never do.

   Returns 0, or -1 with *error_r (state unchanged; the caller reads the
   file instead), for example when the lock is held by a writer. */
int mbox_state_map(struct mbox_state *state, int fd, uint64_t off, size_t count,
		   char **error_r);
/* Takes the read lock of mbox_state_map() on fd's open file description
   ahead of the mapping, so that what the caller reads before mapping (a
   header) does not change either. False while a writer holds the write
   lock. mbox_map_write_end(fd, false) lets it go if no mapping follows. */
bool mbox_map_read_lock(int fd);
/* Before overwriting bytes of the file open as fd in place: returns true
   if no other open file description holds it mapped (fd then holds the
   write lock; a read lock fd's own open file description held for a
   mapping is converted atomically), false if the caller must rewrite the
   file whole instead. */
bool mbox_map_write_begin(int fd);
/* After the in-place write: back to the read lock if mapped_here (fd's
   open file description is the one of a mapping), else unlocked. */
void mbox_map_write_end(int fd, bool mapped_here);
/* Index of uid, or -1. Binary search. */
ssize_t mbox_state_find(const struct mbox_state *state, uint32_t uid);
/* Sets flags and keywords of the message at idx, bumping its modseq if
   anything changed. Returns true if something changed. */
bool mbox_state_set_flags(struct mbox_state *state, size_t idx, uint8_t flags, uint64_t keywords);
/* After a backend set the flags of state->mails[idx] itself (not
   through mbox_state_set_flags()): keeps state->seen_below true. */
void mbox_state_flags_written(struct mbox_state *state, size_t idx);
/* Index of keyword name (case-insensitive), adding it if add is true and
   there is room. Returns -1 if missing (or no room). */
int mbox_state_keyword(struct mbox_state *state, const char *name, bool add);

struct storage_settings {
	const char *root;          /* absolute path of storage.root */
	const char *conninfo;      /* storage.conninfo (a database backend), or NULL */
};

struct storage;                /* a backend instance, from init() */
struct storage_box;            /* one open mailbox of a backend */
struct storage_job;            /* a heavy operation split for a worker thread */
/* One message's flag change, for flags_prepare(): as a rule, not as
   new values, so that a backend shared with other processes applies it
   to the message as it is when written (another process may have
   changed it since the state was read). The flags and keywords in
   clear are removed, then those in set added; a replace (STORE FLAGS)
   clears all of them (keywords_clear STORAGE_KEYWORDS_ALL: also the
   keywords the state does not know yet). Keywords are indexes into the
   state's. With conditional (STORE UNCHANGEDSINCE, RFC 7162 3.1.3) the
   message is left as it is if its modseq is then above
   unchangedsince. */
#define STORAGE_KEYWORDS_ALL UINT64_MAX
struct storage_flag_change {
	uint32_t uid;
	uint8_t flags_set, flags_clear;
	bool conditional;
	uint64_t keywords_set, keywords_clear;
	uint64_t unchangedsince;
};

/* The flags and keywords change gives a message that has *flags and
   *keywords. */
void storage_flag_change_apply(const struct storage_flag_change *change, uint8_t *flags,
			       uint64_t *keywords);

/* A mailbox changed by another process (notify_read()). */
typedef void storage_changed_func(void *ctx, const char *user, const char *name);

struct storage_backend {
	const char *name;
	/* false for a backend whose dependencies were missing at build time;
	   it stays registered so that the config error can say so. */
	bool compiled_in;

	int (*init)(const struct storage_settings *set, struct storage **st_r, char **error_r);
	/* Optional (NULL: nothing to prepare), for a backend whose store
	   has a schema (a database): creates it, or upgrades it to the
	   version this build knows, and says which in *msg_r (malloc'ed).
	   init() refuses a store whose schema is missing or of another
	   version, naming this step (imapserver --init-db). */
	int (*init_db)(const struct storage_settings *set, char **msg_r, char **error_r);
	void (*deinit)(struct storage **st);

	/* The hierarchy (RFC 3501 6.3.3-6.3.5), the same on every backend;
	   see "Hierarchy" below for the shared rules and helpers. */
	/* Every mailbox of user, "INBOX" included, as names with '/' as the
	   hierarchy delimiter. Only mailboxes: a superior that is not one
	   (a \Noselect name) is not listed; the core derives those from the
	   names, so a \Noselect name exists exactly while it has inferiors. */
	int (*list)(struct storage *st, const char *user, struct strlist *names_r,
		    enum storage_error *err_r, char **error_r);
	/* Creates mailbox name, and what its store needs of the superiors
	   (a folder), which do not become mailboxes: they are \Noselect
	   while they have inferiors. STORAGE_ERR_EXISTS if name is a
	   mailbox (INBOX always is); a \Noselect name becomes a mailbox
	   and keeps its inferiors. */
	int (*create)(struct storage *st, const char *user, const char *name,
		      enum storage_error *err_r, char **error_r);
	/* Removes mailbox name with its messages and side data (index,
	   listing cache). Its inferiors stay: name is then \Noselect while
	   they exist (RFC 3501 6.3.4 allows it; Dovecot does it).
	   STORAGE_ERR_NOT_FOUND if name is not a mailbox (a \Noselect name
	   included: deleting one with inferiors is an error there too),
	   STORAGE_ERR_BAD_NAME for INBOX. */
	int (*delete)(struct storage *st, const char *user, const char *name,
		      enum storage_error *err_r, char **error_r);
	/* Renames oldname, a mailbox or a \Noselect name, and every
	   inferior with it (RFC 3501 6.3.5), each with its side data: the
	   names moved and their new names are storage_rename_plan()'s, and
	   its refusals are the backend's (EXISTS, NOT_FOUND, BAD_NAME), given
	   before anything moves. Each mailbox moves whole in one step, the
	   inferiors first and oldname last, so that a crash at any instant
	   leaves every mailbox whole under its old or its new name, and the
	   same RENAME again finishes the move. Subscriptions are not
	   changed (RFC 3501 6.3.6; Dovecot does not either). RENAME INBOX
	   moves its messages to newname, a new mailbox; INBOX stays, empty,
	   and keeps its inferiors. */
	int (*rename)(struct storage *st, const char *user, const char *oldname,
		      const char *newname, enum storage_error *err_r, char **error_r);
	int (*subscriptions_read)(struct storage *st, const char *user, struct strlist *names_r,
				  enum storage_error *err_r, char **error_r);
	int (*subscriptions_write)(struct storage *st, const char *user,
				   const struct strlist *names, enum storage_error *err_r,
				   char **error_r);

	/* Opens mailbox name of user and loads its messages into state (which
	   is freshly initialised). */
	int (*open)(struct storage *st, const char *user, const char *name,
		    struct mbox_state *state, struct storage_box **box_r,
		    enum storage_error *err_r, char **error_r);
	void (*close)(struct storage_box **box);
	/* Brings state in line with the disk: messages added or removed by
	   other processes, flags changed by other tools. Returns 0 if state is
	   in line (possibly changed), 1 if the UIDVALIDITY changed (state was
	   reloaded from scratch), -1 on error. Cheap when nothing changed (a
	   stat()). */
	int (*sync)(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
		    char **error_r);
	/* Appends the whole message rec (as served: RFC 5322, CRLF line ends)
	   to out. */
	int (*read)(struct storage_box *box, const struct mail_rec *rec, struct buf *out,
		    enum storage_error *err_r, char **error_r);
	/* Stores a new message (data is RFC 5322, CRLF or LF line ends) with
	   the given flags, keywords (indexes into state) and internal date,
	   durably (fsync) before returning, and appends it to state.
	   *uid_r is its UID. */
	int (*append)(struct storage_box *box, struct mbox_state *state, const char *data,
		      size_t len, uint8_t flags, uint64_t keywords, int64_t internal_date,
		      int32_t tz_minutes, uint32_t *uid_r, enum storage_error *err_r,
		      char **error_r);
	/* Persists the flags of state->mails[idx], which the core has just
	   changed with mbox_state_set_flags(). */
	int (*flags_changed)(struct storage_box *box, struct mbox_state *state, size_t idx,
			     enum storage_error *err_r, char **error_r);
	/* Removes the messages whose UIDs are in uids (ascending) from the
	   disk and from state, so that a crash at any instant neither loses
	   nor duplicates a message. */
	int (*expunge)(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
		       size_t count, enum storage_error *err_r, char **error_r);
	/* Paths whose changes mean the mailbox changed (for file watching):
	   adds them to paths_r. */
	void (*watch_paths)(struct storage_box *box, struct strlist *paths_r);
	/* Optional (NULL: the backend cannot), for moving mail between
	   backends with the same UIDs (core/daemon/migrate.c). Raises the next UID
	   that append() gives to uidnext (fails if UIDs at or above it were
	   already given) and, if uidvalidity is not 0, sets the mailbox's
	   UIDVALIDITY (fails unless the mailbox has never held a message).
	   Persisted before returning. */
	int (*set_uids)(struct storage_box *box, struct mbox_state *state, uint32_t uidvalidity,
			uint32_t uidnext, enum storage_error *err_r, char **error_r);
	/* Optional (NULL: flags_changed() keeps the modseq the state gives a
	   message), for --migrate (core/daemon/migrate.c): persists every
	   message's modseq as state has it (each at most the store's
	   HIGHESTMODSEQ, which does not go down), so that a CONDSTORE client
	   finds the mailbox as it knew it. */
	int (*set_modseqs)(struct storage_box *box, struct mbox_state *state,
			   enum storage_error *err_r, char **error_r);
	/* Optional (NULL: no persistent listing cache): where the core keeps
	   box's listing cache (core/hub/mcache.h), as a malloc'ed path of
	   the backend's side data; the core adds files "<path>" and
	   "<path>.idx". delete() removes them and rename() moves them (or
	   removes them) with the mailbox. */
	char *(*cache_path)(struct storage_box *box);
	/* Optional (NULL: the values are kept by the backend's next write
	   of its index): the core has raised state->first_recent_uid,
	   because a session took the \Recent messages below it (RFC 3501
	   2.3.2: \Recent for exactly one session), or state->seen_below. The
	   backend keeps them where its next open reads them when that is
	   cheap (a header written in place), so that a restart, or the
	   mailbox closed and opened again, neither makes those messages
	   \Recent again nor costs a walk of the records to find the first
	   unseen one. Called in the loop, never while a job works on box:
	   O(1), no lock wait; a failure is no error (first_recent_uid: the
	   next write keeps it; seen_below is only a hint). */
	void (*hints_changed)(struct storage_box *box, const struct mbox_state *state);
	/* Optional (NULL: the state's first_recent_uid decides, which is
	   exact within one process), for a store several servers share: a
	   session of this process takes the \Recent messages below upto
	   (RFC 3501 2.3.2: \Recent for exactly one session). Raises the
	   store's first \Recent UID to upto, atomically across processes,
	   and returns the value it had: the messages from it on are this
	   session's \Recent, those below were taken by another process's
	   session. On a failure returns upto (none is shown as \Recent:
	   never twice). Called in the loop, never while a job works on box:
	   it must not wait for a lock another process holds for a while (a
	   failure instead). */
	uint32_t (*recent_take)(struct storage_box *box, const struct mbox_state *state,
				uint32_t upto);

	/* Optional (NULL: expunge() runs whole in the loop), for a backend
	   whose expunge costs the size of the mailbox: expunge() in three
	   steps, so that its bulk runs in a worker thread (core/io/job.h).
	   expunge_prepare(), in the loop, takes what the work needs (the
	   lock, which it keeps, and a copy of what it reads of state) into
	   *job_r; *job_r NULL with 0 means there was nothing to do (state
	   may have been brought in line). job_work() then runs once in a
	   worker thread and touches nothing but the job (no box, no state,
	   no log); it records its own failure for the commit. Then, in the
	   loop, exactly one of: job_commit(), which makes the work the
	   mailbox from state as it is then (flag changes made meanwhile are
	   kept) and removes the messages from state, as expunge() does; or
	   job_abort(), which undoes what the job started (temp files) and
	   leaves the mailbox as it was, or, if the work already made its
	   change durable (flat's work ends with the renames, so that their
	   fsyncs are not the loop's), leaves it as the work made it, as a
	   crash at that instant would (only at shutdown: the expunge was
	   asked for, its answer never sent). Both free the job, release the lock
	   and set *job to NULL. Between prepare and commit/abort the core
	   makes no other call on the box that could write it or take its
	   lock (no append, flags_changed, expunge, sync, set_uids); read()
	   and watch_paths() may be called and see the mailbox as before.
	   A crash at any instant loses and duplicates nothing, as for
	   expunge(). */
	int (*expunge_prepare)(struct storage_box *box, struct mbox_state *state,
			       const uint32_t *uids, size_t count, struct storage_job **job_r,
			       enum storage_error *err_r, char **error_r);
	void (*job_work)(struct storage_job *job);
	int (*job_commit)(struct storage_box *box, struct mbox_state *state,
			  struct storage_job **job, enum storage_error *err_r, char **error_r);
	void (*job_abort)(struct storage_box *box, struct storage_job **job);
	/* Optional (NULL: open() does all of it), for a backend whose first
	   open() of a mailbox costs the mailbox's size (flat without an
	   index scans the whole mail file): that part done ahead, in a job.
	   open_prepare(), in the loop, sets *job_r to NULL if open() is
	   cheap (or would fail: open() then says why), else to a job that
	   holds what it needs (its own paths and descriptors); job_work()
	   runs it in a worker thread; open_commit(), in the loop, stores its
	   result (the index) and opens the mailbox with it as open() would
	   (state is freshly initialised, and may be replaced whole by one
	   the job built with the mbox_state helpers): returns 1 with state
	   and *box_r set; or 0 if the mailbox changed meanwhile, or -1 with
	   *error_r, and then the caller calls open(), which does the work.
	   job_abort() with box NULL drops the job. Both free the job and set
	   *job to NULL. Nothing is lost or duplicated by a crash at any
	   instant: the result is written as open() would write it. */
	int (*open_prepare)(struct storage *st, const char *user, const char *name,
			    struct storage_job **job_r, enum storage_error *err_r, char **error_r);
	int (*open_commit)(struct storage *st, struct storage_job **job, struct mbox_state *state,
			   struct storage_box **box_r, enum storage_error *err_r, char **error_r);
	/* Optional (NULL: append() does all of it), for a backend that can
	   write a new message before it takes anything of the mailbox:
	   append() in two steps, so that writing the message and waiting
	   for its fsync run in a worker thread, not in the loop.
	   append_prepare(), in the loop, checks data as append() would and
	   sets *job_r to a job with its own copy of the message and of what
	   writing it needs (no lock is taken and state is not touched);
	   job_work() writes it; append_commit(), in the loop, does the rest
	   of append() with what the work wrote (the lock, the UID, the
	   message put in its place, state; a failure of the work is its
	   failure) and frees the job, setting *job to NULL. job_abort(box,
	   job) drops a job not committed and removes what its work wrote.
	   Between prepare and commit the box is used as usual, other appends
	   included. A crash at any instant loses nothing acknowledged: what
	   the work wrote is not in the mailbox until the commit (a Maildir's
	   tmp/ file, removed as stale later). */
	int (*append_prepare)(struct storage_box *box, const char *data, size_t len,
			      struct storage_job **job_r, enum storage_error *err_r,
			      char **error_r);
	int (*append_commit)(struct storage_box *box, struct mbox_state *state,
			     struct storage_job **job, uint8_t flags, uint64_t keywords,
			     int64_t internal_date, int32_t tz_minutes, uint32_t *uid_r,
			     enum storage_error *err_r, char **error_r);
	/* Optional (NULL: append_commit() does all of its part in the
	   loop), for a backend whose append_commit() is a round trip (a
	   database's transaction): that transaction made in a worker.
	   Called in the loop, the mailbox not busy, once the append's work
	   is done and did not fail: returns 0 (append_commit() does it
	   all), or 1 after taking into job what the transaction needs (the
	   flags, keywords and date; what it reads of state): the core then
	   keeps the mailbox busy (as for expunge_prepare()) while
	   job_work() runs again on job in a worker (the UID given under
	   the store's lock, the message committed), then calls
	   append_commit(), which only applies to state what was committed
	   (or returns the work's failure), or job_abort(). */
	int (*append_settle)(struct storage_box *box, const struct mbox_state *state,
			     struct storage_job *job, uint8_t flags, uint64_t keywords,
			     int64_t internal_date, int32_t tz_minutes);
	/* Optional (NULL: sync() is cheap enough for the loop), for a
	   backend whose sync() is a round trip (a database on the network):
	   sync() in steps, so that the loop does not wait for it.
	   sync_prepare(), in the loop, copies into *job_r what the reads
	   need (nothing of state is kept); job_work() reads, in a worker
	   thread, every change committed before it started; sync_commit(),
	   in the loop, brings state in line with what was read and returns
	   as sync() (0, 1 if the UIDVALIDITY changed, -1 with the work's
	   failure, state unchanged), freeing the job. With take_recent (a
	   read-write session has the mailbox selected, or is selecting it)
	   a backend with recent_take() also takes in the work, as that
	   would, the \Recent of the messages up to the UIDNEXT it read, for
	   this process: the commit raises state->first_recent_uid past what
	   others took, and state->recent_taken to that UIDNEXT (no
	   recent_take() is due below it). job_abort() drops a
	   job not committed. Between prepare and commit the core makes no
	   call that could write the box or take its lock, as for
	   expunge_prepare(). */
	int (*sync_prepare)(struct storage_box *box, const struct mbox_state *state,
			    bool take_recent, struct storage_job **job_r,
			    enum storage_error *err_r, char **error_r);
	int (*sync_commit)(struct storage_box *box, struct mbox_state *state,
			   struct storage_job **job, enum storage_error *err_r, char **error_r);
	/* Optional (NULL: flags_changed() per message, in the loop), for a
	   backend whose flags_changed() is a round trip (a database's
	   transaction): the flag changes of one command made in one
	   transaction in a worker. flags_prepare(), in the loop, the
	   mailbox not busy, copies into *job_r the changes (count > 0 of
	   them, each a message's UID and its rule; state is not changed,
	   only read); job_work() makes them in a worker, under the store's
	   lock, at one modseq above every one given before, and reads the
	   changes others committed: a message others changed meanwhile
	   gets the rule applied to its flags as they are now, or, its
	   condition failing, is left as it is. flags_commit(), in the
	   loop, applies to state those changes, then the rules, to the
	   messages written, with that modseq, and sets *modseq_r to it (0
	   if none was written: a message others expunged meanwhile, or
	   changed past its condition, is left out), or returns the work's
	   failure with state as it was. Freed
	   as the others: flags_commit() or job_abort(). Between prepare and
	   commit the core makes no call that could write the box or take
	   its lock, as for expunge_prepare(). */
	int (*flags_prepare)(struct storage_box *box, const struct mbox_state *state,
			     const struct storage_flag_change *changes, size_t count,
			     struct storage_job **job_r, enum storage_error *err_r,
			     char **error_r);
	int (*flags_commit)(struct storage_box *box, struct mbox_state *state,
			    struct storage_job **job, uint64_t *modseq_r,
			    enum storage_error *err_r, char **error_r);
	/* Optional (NULL: read() and append() per message, in the loop),
	   for a backend whose writes are round trips and that stores a body
	   once: COPY's copies made in one transaction in a worker, sharing
	   the originals' bodies. copy_prepare(), in the loop, dst not busy,
	   copies into *job_r what the copies need: the count > 0 records
	   recs of src (as src's state has them) and each copy's keywords as
	   indexes into dst_state's (keywords[i]). job_work() makes them in
	   dst under the store's lock, with UIDs from its UIDNEXT on, in the
	   order of recs, at one modseq, and reads the changes others
	   committed; copy_commit(), in the loop, applies those changes to
	   dst_state, then appends the copies and writes their UIDs to
	   uids_r (count of them); or returns the work's failure with dst as
	   it was. job_abort() drops a job not committed. Between prepare and
	   commit the core makes no call that could write dst or take its
	   lock, as for expunge_prepare(). */
	int (*copy_prepare)(struct storage_box *src, struct storage_box *dst,
			    const struct mbox_state *dst_state, const struct mail_rec *recs,
			    const uint64_t *keywords, size_t count, struct storage_job **job_r,
			    enum storage_error *err_r, char **error_r);
	int (*copy_commit)(struct storage_box *dst, struct mbox_state *dst_state,
			   struct storage_job **job, uint32_t *uids_r, enum storage_error *err_r,
			   char **error_r);
	/* Optional (NULL: read() in the loop, per message), for a backend
	   whose read() is a round trip (a database on the network): the
	   messages a command is about to read, read ahead in a worker, all
	   in one. read_prepare(), in the loop, copies into *job_r what
	   reading the count > 0 messages recs needs (nothing of the box or
	   state is kept: a message is read as it is stored, whatever became
	   of the mailbox meanwhile); job_work() reads them; read_take(), in
	   the loop, appends the i-th (as read() would) to out, or returns -1
	   with that message's failure (STORAGE_ERR_NOT_FOUND: gone), the
	   work's failure for every one if it failed. job_abort() frees the
	   job, worked or not. The box is not busy meanwhile. */
	int (*read_prepare)(struct storage_box *box, const struct mail_rec *recs, size_t count,
			    struct storage_job **job_r, enum storage_error *err_r,
			    char **error_r);
	int (*read_take)(struct storage_job *job, size_t i, struct buf *out,
			 enum storage_error *err_r, char **error_r);
	/* Optional (NULL: every call is made in the loop), for a backend
	   whose calls are round trips (a database on the network): the
	   storage a worker thread uses in place of st, for the calls on
	   the user's names made there (core/io/job.h;
	   storage_call_start()): its own connection, made at its first
	   call in that thread and freed when the thread ends. Called only
	   in a worker. */
	struct storage *(*thread_storage)(struct storage *st);
	/* Optional (NULL: other processes' changes are seen through
	   watch_paths(), or at the next command), for a backend that is
	   told of them (a database's notifications), so that a session in
	   IDLE hears at once of a delivery or expunge made by another
	   server. notify_fd() returns a descriptor that becomes readable
	   when such news arrives (-1: none now, asked again a second later).
	   notify_read(), called in the loop when it is readable, must not
	   block: it calls changed(ctx, user, name) for each mailbox another
	   process changed (user and name NULL: any may have, after news was
	   lost with a connection) and returns the descriptor to watch from
	   then on (-1: none; notify_fd() is asked again a second later). */
	int (*notify_fd)(struct storage *st);
	int (*notify_read)(struct storage *st, storage_changed_func *changed, void *ctx);
};

/* Core wrappers: the only way protocol code reaches a backend. They bound
   arguments, supply a reason when a backend forgot to, and log in one
   place (with session id sid). */
struct storage_ctx {
	const struct storage_backend *backend;
	struct storage *st;
};

int storage_list(const struct storage_ctx *ctx, const char *sid, const char *user,
		 struct strlist *names_r, enum storage_error *err_r);
int storage_create(const struct storage_ctx *ctx, const char *sid, const char *user,
		   const char *name, enum storage_error *err_r);
int storage_delete(const struct storage_ctx *ctx, const char *sid, const char *user,
		   const char *name, enum storage_error *err_r);
int storage_rename(const struct storage_ctx *ctx, const char *sid, const char *user,
		   const char *oldname, const char *newname, enum storage_error *err_r);
/* A backend call made in a worker thread (storage.h: thread_storage),
   so that the loop does not wait for a backend whose calls are round
   trips: the user's mailbox names and subscriptions (NAMES), or one
   change of them. */
enum storage_call_kind {
	STORAGE_CALL_NAMES,
	STORAGE_CALL_CREATE,               /* name */
	STORAGE_CALL_DELETE,               /* name */
	STORAGE_CALL_RENAME,               /* name to newname */
	STORAGE_CALL_SUBSCRIPTIONS_WRITE,  /* subs */
	/* For a user who has no mailbox but INBOX: the mailboxes subs,
	   made and subscribed (storage_first_mailboxes()) */
	STORAGE_CALL_FIRST_MAILBOXES,
};
struct storage_call_args {
	enum storage_call_kind kind;
	const char *name, *newname;
	const struct strlist *subs;
};
struct storage_call;
/* NULL if the backend's calls are made in the loop (then the caller
   calls storage_call_now(), or storage_list() and the rest); else
   done(done_ctx) is called in the loop once the call is made, and
   storage_call_result() (and, for NAMES, storage_names_take()) gives
   its result. The arguments are copied. */
struct storage_call *storage_call_start(const struct storage_ctx *ctx, const char *sid,
					const char *user, const struct storage_call_args *a,
					void (*done)(void *ctx), void *done_ctx);
/* Once done: 0, or -1 with *err_r (logged once, when the call ended). */
int storage_call_result(const struct storage_call *op, enum storage_error *err_r);
/* NAMES, once done: moves the names (or, subs, the subscriptions) into
   *list_r (empty before). As storage_call_result(). */
int storage_names_take(struct storage_call *op, bool subs, struct strlist *list_r,
		       enum storage_error *err_r);
/* The same call made now, in the caller (storage_create() and the rest;
   not NAMES). */
int storage_call_now(const struct storage_ctx *ctx, const char *sid, const char *user,
		     const struct storage_call_args *a, enum storage_error *err_r);
/* For a user who has no mailbox but INBOX (a new user): makes the
   mailboxes names and subscribes them. Failures are logged (through the
   wrappers) and stop nothing. */
void storage_first_mailboxes(const struct storage_ctx *ctx, const char *sid, const char *user,
			     const struct strlist *names);
/* Frees op; one not yet made is made all the same and freed then
   (done() is not called). */
void storage_call_free(struct storage_call **op);
int storage_subscriptions_read(const struct storage_ctx *ctx, const char *sid,
			       const char *user, struct strlist *names_r,
			       enum storage_error *err_r);
int storage_subscriptions_write(const struct storage_ctx *ctx, const char *sid,
				const char *user, const struct strlist *names,
				enum storage_error *err_r);
/* For the calls on an open mailbox (core/hub/mailbox.c): a backend that
   returned ret < 0 without a kind gets STORAGE_ERR_TEMP, and ret >= 0
   clears *err_r. */
void storage_error_fix(int ret, enum storage_error *err_r);
const char *storage_error_code(enum storage_error err);

/* For a backend's init(): checks storage.root, creates it with its missing
   parents (mode 0700), and returns it without trailing slashes in *root_r
   (malloc'ed). Returns 0, or -1 with *error_r naming the backend. */
int storage_root_prepare(const char *backend, const struct storage_settings *set,
			 char **root_r, char **error_r);

/* The longest mailbox name, in octets (UTF-8). Every backend can store
   a name this long: flat's file is "<last level>.mail" with side files
   up to ".mail.lock.<pid>" next to it, Maildir++'s folder is
   ".<name with '/' as '.'>", and a file name holds at most 255 octets
   (NAME_MAX), so a 255-octet name would pass the rule and then fail in
   the backend. */
#define STORAGE_NAME_MAX 200

/* Mailbox name rules shared by every backend: returns true if name may be
   used as a mailbox name (no NUL, no control characters, no empty
   component, no "." or ".." component, not absolute, at most
   STORAGE_NAME_MAX octets). */
bool storage_name_is_valid(const char *name);

/* Hierarchy. A name's inferiors are the names below it ("a/b" and
   "a/b/c" are inferiors of "a"). */
/* True if name is an inferior of parent. */
bool storage_name_is_inferior(const char *name, const char *parent);
/* What RENAME oldname newname moves, given names, the mailboxes of the
   user (list()): fills from_r with the mailboxes that move, the
   inferiors of oldname first (in the order of names) and oldname last
   if it is a mailbox, and to_r with their new names, index for index.
   Refuses, with nothing added: newname INBOX or a mailbox
   (STORAGE_ERR_EXISTS); newname one of the inferiors of oldname
   (STORAGE_ERR_BAD_NAME); oldname neither a mailbox nor a superior of one
   (STORAGE_ERR_NOT_FOUND); a new name that is a mailbox already
   (STORAGE_ERR_EXISTS) or not a valid name (STORAGE_ERR_BAD_NAME).
   INBOX moves alone (its inferiors stay). Returns 0, or -1 with *err_r
   and *error_r. O(n log n) in the number of names. */
int storage_rename_plan(const struct strlist *names, const char *oldname, const char *newname,
			struct strlist *from_r, struct strlist *to_r, enum storage_error *err_r,
			char **error_r);

/* How long a backend waits for a lock held by another process before the
   operation fails with STORAGE_ERR_IN_USE, in milliseconds (10 s). Set
   once before use; tests shorten it. */
extern int64_t storage_lock_wait_ms;

/* A backend maps an index (mbox_state_map()) only for a mailbox of at
   least this many messages (default 2048); smaller ones are read, which
   costs less than a mapping. Set once before use; tests lower it. */
extern size_t storage_map_min_count;

/* Object identifiers (OBJECTID, RFC 8474): derived, nothing stored.

   MAILBOXID is a digest of the user's name, the mailbox's UIDVALIDITY
   and whether it is INBOX. Every backend gives a user's mailboxes their
   UIDVALIDITY from one per-user record (storage_files.h: time-based and
   above every value given before), keeps it with the mailbox's
   index/uidlist (migrate keeps it too, set_uids()), which
   RENAME moves with the mailbox, and gives a new one to a mailbox
   created again after DELETE. So the id survives RENAME, is new after
   DELETE+CREATE, and costs nothing to find where UIDVALIDITY is known
   (SELECT, STATUS, LIST-STATUS). A mailbox whose UIDVALIDITY had to
   change (its index lost, its file rewritten by another tool) gets a new
   MAILBOXID too: for a client it is a new mailbox, as its UID cache
   already says. RENAME INBOX moves INBOX's messages to a new mailbox
   (RFC 3501 6.3.5), which gets a new id: on Maildir it has a new
   UIDVALIDITY and INBOX keeps its own and its id; on flat the new
   mailbox takes the mail file and its UIDVALIDITY, INBOX starts again
   with a new one, and the INBOX bit keeps the two ids apart (INBOX's id
   changes with its UIDVALIDITY).

   EMAILID is a digest (SHA-256, 128 bits shown) of the message's bytes
   as read() serves them. RFC 8474 5.1 lets identical messages share an
   EMAILID; a digest is the same in every mailbox, after COPY and MOVE
   (which copy the bytes), after a restart, a migration between
   backends and a lost index, on both backends, with no change to any
   storage format and nothing for a backend to carry. The cost is a read
   of the message: FETCH 1:* EMAILID on 100,000 messages reads each of
   them once, as FETCH BODY[] would (each FETCH runs in slices, so the
   loop never stalls: measured on flat, 100,000 messages of 2 KB, 1.8 s
   against 0.6 s for FLAGS and 2.0 s for BODY.PEEK[], another session's
   NOOP answered within 16 ms meanwhile), and SEARCH EMAILID reads each
   message as SEARCH BODY does. A stored id would be read from the
   index, but needs a new field in the flat index, the Maildir
   imapserver-index and uidlist, carried through COPY, MOVE and migrate
   in both backends; clients ask for EMAILID with the headers of new
   messages (UID n:*), which are read then anyway.

   THREADID is not tracked: FETCH THREADID answers NIL (RFC 8474 5.2
   allows it). */
/* Length of an id with its NUL: a letter and 32 hex digits. */
#define STORAGE_OBJECTID_SIZE 34
/* The MAILBOXID ("F...") of user's mailbox name of UIDVALIDITY
   uidvalidity (of name only whether it is "INBOX": the id stays across
   RENAME). */
void storage_mailbox_id(const char *user, const char *name, uint32_t uidvalidity,
			char id_r[STORAGE_OBJECTID_SIZE]);
/* The EMAILID ("M...") of the message data[0..len) (as read() gives it). */
void storage_email_id(const char *data, size_t len, char id_r[STORAGE_OBJECTID_SIZE]);

/* The storage error for a failed system call's errno. */
enum storage_error storage_error_from_errno(int err);

#endif
