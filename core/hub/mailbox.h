/* mailbox.h: the mailbox hub. All sessions that open one mailbox share one
   struct mailbox (its message list, struct mbox_state, and the backend's
   open box). Each session keeps its own view: the sequence-number-to-UID
   map it has announced to its client, its \Recent messages, and how far it
   has caught up with the shared state.

   A change (by a session, or noticed on disk) is applied to the shared
   state at once; each view catches up in mbox_view_update(), which says
   what changed for the view as data (struct mbox_view_changes) that the
   protocol turns into its answers (core/imap/imap_view.c: the untagged
   EXPUNGE / EXISTS / RECENT / FETCH responses). The hub calls a view's
   notify callback after every change so that a session in IDLE can sync
   at once; other sessions sync at their next command. */
#ifndef MAILBOX_H
#define MAILBOX_H

#include "lib.h"
#include "buf.h"
#include "seqset.h"
#include "storage.h"

struct hub;
struct mailbox;

/* A range of UIDs, lo <= hi. */
struct mbox_uid_range {
	uint32_t lo, hi;
};

struct mbox_view {
	struct mailbox *mbox;
	const struct mbox_state *state; /* the mailbox's shared state */
	/* The view's count messages, by sequence number (mbox_view_uid()).
	   While uids is NULL the view is the identity map of the shared
	   state: message n is state->mails[n - 1] (the view holds the
	   first count messages of the state, and the state has lost none of
	   them), so opening a view copies nothing. Before the state loses
	   a message the view still holds (an expunge the session has not
	   been told of yet), the hub copies the view's UIDs into uids
	   (uids[seq - 1], ascending); once the session has been told, the
	   view is the identity map again. */
	uint32_t *uids;
	size_t count, alloc;
	/* This session's \Recent messages: those of the view whose UID is
	   in one of these ranges (ascending, disjoint; usually one, a new
	   range only when another session claimed messages in between);
	   recent_count of them. */
	struct mbox_uid_range *recent;
	size_t recent_ranges, recent_alloc;
	size_t recent_count;
	size_t announced_recent;   /* the RECENT count last sent */
	uint64_t synced_modseq;    /* flag changes up to this are announced */
	/* The modseq of the session's own last change made in a job, told
	   in its command's answer: messages still at it are not announced
	   again (mbox_view_told_own_change()). */
	uint64_t told_modseq;
	uint64_t synced_expunge_gen;
	/* The state's highest_modseq when the session was last told of the
	   expunges: every expunge it has not been told of has a higher
	   modseq (see mbox_view_safe_modseq()). */
	uint64_t expunges_told_modseq;
	bool readonly;
	/* RFC 7162, set by the session once enabled: flag updates carry UID
	   and MODSEQ (condstore); expunges are announced as "* VANISHED
	   uids" instead of "* n EXPUNGE" (qresync). Read by the protocol
	   (imap_view_sync()), not by the hub. rev2 (RFC 9051, after ENABLE
	   IMAP4rev2): no \\Recent flag and no RECENT count is shown, and
	   every unsolicited FETCH carries the UID. uidonly (RFC 9586):
	   flag updates are "* uid UIDFETCH (...)", expunges VANISHED. */
	bool condstore, qresync, rev2, uidonly;
	/* Called (from the hub) after the mailbox changed. */
	void (*notify)(void *ctx);
	void *notify_ctx;
	/* Linked list of the mailbox's views. */
	struct mbox_view *next;
};

struct watch;
/* watch (may be NULL) notices changes by other processes to the mailboxes
   that sessions have selected. */
struct hub *hub_new(const struct storage_ctx *storage, struct watch *watch);
void hub_free(struct hub **hub);
/* The parsed-structure cache shared by the hub's sessions (BODYSTRUCTURE
   is parsed once per message); keyed by (struct mailbox *, uid). */
struct mime_cache *hub_mime_cache(struct hub *hub);

/* Opens (or shares) mailbox name of user. On error returns -1 with *err_r
   and a reason for the log. Each successful open needs one
   mailbox_unref(). */
int mailbox_open(struct hub *hub, const char *sid, const char *user, const char *name,
		 struct mailbox **mbox_r, enum storage_error *err_r);
void mailbox_unref(struct mailbox **mbox);
/* The name mbox was opened by, and its user (for the status report). */
const char *mailbox_name(const struct mailbox *mbox);
const char *mailbox_user(const struct mailbox *mbox);
/* If mailbox name of user is open, it (not referenced), else NULL. */
struct mailbox *hub_find(struct hub *hub, const char *user, const char *name);
/* True if some session holds the mailbox open. */
bool mailbox_is_used(const struct mailbox *mbox);
/* Closes mailbox name of user if it is open but unused (before it is
   deleted or renamed on disk). */
void hub_forget(struct hub *hub, const char *user, const char *name);
/* The shared state of mbox: its messages, UIDs, flags and modseqs. */
struct mbox_state *mailbox_state(struct mailbox *mbox);
/* The sum of the sizes (RFC822.SIZE) of mbox's messages: one pass over
   them when the message set changed since the last call, else O(1). */
uint64_t mailbox_octets(struct mailbox *mbox);
struct mcache;
/* The listing cache of mbox (mcache.h), opened at the first call (reads
   nothing); owned by mbox. Without a backend cache_path() it holds
   nothing. */
struct mcache *mailbox_mcache(struct mailbox *mbox);

/* Picks up changes made on disk by other processes. If any, notifies
   the views. Returns 0, or -1 on a storage error (logged) with its kind
   in *err_r. With a backend whose sync is a round trip (storage.h:
   sync_prepare) it only starts that sync in a job (or, if a job is at
   work, has one made after it) and returns 0: the views are told when
   it is done. */
int mailbox_refresh(struct mailbox *mbox, enum storage_error *err_r, const char *sid);
/* Before a command: whether mbox is in line with every change other
   processes committed before the command came (*ticket 0 the first time,
   kept between calls). True at once, after a refresh, for a backend
   whose sync is cheap; else false while the sync made for it (started
   now if the mailbox is free) is at work: the caller waits
   (mailbox_wait_idle()) and asks again. */
bool mailbox_catch_up(struct mailbox *mbox, uint64_t *ticket, const char *sid);
/* A read-write session is about to select mbox (before its
   mailbox_catch_up()): the syncs made for it take \Recent in their work
   (storage.h sync_prepare take_recent), as they do while a read-write
   view is open. */
void mailbox_want_recent(struct mailbox *mbox);
/* A ticket for mailbox_catch_up() met by the sync (or first open) last
   started on mbox: for a command that came before it started. */
uint64_t mailbox_sync_ticket(const struct mailbox *mbox);
/* Whether mbox's backend syncs in a job (storage.h: sync_prepare). */
bool mailbox_sync_in_job(const struct mailbox *mbox);

/* Creates a view of mbox for a session and fills it with every message;
   claims the \Recent messages unless readonly. */
struct mbox_view *mbox_view_new(struct mailbox *mbox, bool readonly,
				void (*notify)(void *ctx), void *notify_ctx);
void mbox_view_free(struct mbox_view **view);
/* The view's session waits for changes as they come (IDLE): from now on
   until its last view is freed the hub watches the mailbox's files
   (mailbox_watch_paths()) and refreshes it when another process changes
   them, so that the view's notify callback is called. Other sessions
   see such changes at their next command (mailbox_refresh()). Not done
   at every SELECT: adding an inotify watch on a folder costs the kernel
   a walk of the folder's cached entries (about 7 ms for a Maildir cur/
   of 100,000 files). */
void mbox_view_watch(struct mbox_view *view);
/* What one mbox_view_update() changed in a view, for the session to tell
   its client. */
struct mbox_view_changes {
	/* Messages removed from the view, highest sequence number first:
	   seq is the number the message had in the view, still right when
	   the removals are told in this order. */
	struct mbox_view_expunge {
		uint32_t seq, uid;
	} *expunged;
	size_t expunged_count, expunged_alloc;
	/* If new messages were added: the view's message count, else 0. */
	size_t exists;
	/* The view's \Recent count, if it changed since last told. */
	bool recent_changed;
	size_t recent;
	/* Messages whose flags changed since the view last synced (but not
	   by its own session's STORE), ascending: seq in the view after the
	   removals, idx in the mailbox's mbox_state (valid until the shared
	   state next changes). */
	struct mbox_view_flags {
		uint32_t seq;
		size_t idx;
	} *flags;
	size_t flags_count, flags_alloc;
};

/* Brings view in line with the shared state and fills *changes_r (free
   it with mbox_view_changes_free()) with what changed: removed messages
   (only when allow_expunge: RFC 3501 7.4.1 forbids EXPUNGE responses
   during FETCH, STORE and SEARCH; until then the view keeps their
   numbers), new messages, the \Recent count, and flags others changed. */
void mbox_view_update(struct mbox_view *view, bool allow_expunge,
		      struct mbox_view_changes *changes_r);
void mbox_view_changes_free(struct mbox_view_changes *changes);
/* The shared index of the message at sequence number seq (1-based), or -1
   if it has been expunged (by another session) since the view last synced. */
/* A command of the view's session made a change in a job at modseq
   written (0: none), the state at before when it began, and tells it in
   its answer: the view's next sync does not tell it again, but tells
   the changes of others the job's commit brought in. */
void mbox_view_told_own_change(struct mbox_view *view, uint64_t before, uint64_t written);
/* The highest modseq a client of this view may cache (RFC 7162 3.2.10,
   3.1.2): the mailbox's highest_modseq, or, while an expunge the session
   has not been told of is pending, a value below that expunge's modseq,
   so that a client which reconnects with it is told of the expunge. */
uint64_t mbox_view_safe_modseq(const struct mbox_view *view);
/* True while the view holds an expunge it has not been told of. */
bool mbox_view_expunges_pending(const struct mbox_view *view);
ssize_t mbox_view_index(const struct mbox_view *view, uint32_t seq);
bool mbox_view_is_recent(const struct mbox_view *view, uint32_t uid);
/* The UID of the message at sequence number seq of view; 1 <= seq <=
   view->count. */
static inline uint32_t
mbox_view_uid(const struct mbox_view *view, uint32_t seq)
{
	return view->uids != NULL ? view->uids[seq - 1] : view->state->mails[seq - 1].uid;
}
/* The view's highest UID, 0 if it is empty. */
static inline uint32_t
mbox_view_max_uid(const struct mbox_view *view)
{
	return view->count > 0 ? mbox_view_uid(view, (uint32_t)view->count) : 0;
}
/* The sequence number of uid in view, 0 if the view does not hold it.
   O(log count). */
uint32_t mbox_view_seq(const struct mbox_view *view, uint32_t uid);
/* The sequence number of the view's first message without \Seen, 0 if
   none (SELECT's UNSEEN). Walks the records from the shared state's
   seen_below hint on, and raises the hint (kept by the backend's index,
   storage.h hints_changed): O(1) after the first time, also across
   restarts, until a message below the hint loses \Seen. */
uint32_t mbox_view_first_unseen(struct mbox_view *view);
/* How many of the view's messages are \Recent for its session. */
static inline size_t
mbox_view_recent_count(const struct mbox_view *view)
{
	return view->recent_count;
}

/* Messages read ahead in a job, for a backend whose reads are round trips
   (storage.h read_prepare): a command about to read several messages
   asks for them at once, waits for done(ctx), then takes each. */
struct mailbox_read_op;
bool mailbox_reads_in_job(const struct mailbox *mbox);
/* Starts reading recs (copied) of mbox in a job; done(ctx) is called in
   the loop once they are read (or failed), unless mailbox_read_free()
   came first. NULL (nothing started) if the backend cannot, or with
   count 0. */
struct mailbox_read_op *mailbox_read_start(struct mailbox *mbox, const struct mail_rec *recs,
					   size_t count, void (*done)(void *ctx), void *ctx,
					   const char *sid);
/* The i-th message of the op, once done: as mailbox_read() (logged the
   same way). */
int mailbox_read_take(struct mailbox_read_op *op, size_t i, struct buf *out,
		      enum storage_error *err_r);
/* Frees op; one still at work frees itself when its work returns. */
void mailbox_read_free(struct mailbox_read_op **op);

/* Operations that change the mailbox: they update the shared state, the
   disk, and tell the other views. Each returns 0, or -1 (logged) with the
   kind of the failure in *err_r. */
/* STORAGE_ERR_NOT_FOUND: the message is gone from the disk (expunged by
   another process). */
int mailbox_read(struct mailbox *mbox, const struct mail_rec *rec, struct buf *out,
		 enum storage_error *err_r, const char *sid);
/* Sets flags/keywords of state->mails[idx]; view (may be NULL) is the
   view that made the change. Does not notify: call mailbox_changed()
   once after a batch. If the disk could not be written, the message's
   flags, keywords and modseq (and HIGHESTMODSEQ) are put back as they
   were, so that no session is told of a change the disk does not have. */
int mailbox_set_flags(struct mailbox *mbox, struct mbox_view *view, size_t idx,
		      uint8_t flags, uint64_t keywords, enum storage_error *err_r,
		      const char *sid);
int mailbox_append(struct mailbox *mbox, const char *data, size_t len, uint8_t flags,
		   uint64_t keywords, int64_t internal_date, int32_t tz_minutes, uint32_t *uid_r,
		   enum storage_error *err_r, const char *sid);
/* Expunges the messages with \Deleted (only those in uids if uids is not
   NULL: UID EXPUNGE). Raises HIGHESTMODSEQ once and remembers the
   expunged UIDs with it (RFC 7162 QRESYNC). */
int mailbox_expunge(struct mailbox *mbox, const struct seqset *uids, enum storage_error *err_r,
		    const char *sid);
/* Expunges exactly the messages whose UIDs are in uids, \Deleted or not
   (MOVE, RFC 6851), like mailbox_expunge() otherwise. */
int mailbox_expunge_uids(struct mailbox *mbox, const struct seqset *uids,
			 enum storage_error *err_r, const char *sid);
/* RFC 7162 QRESYNC: adds to vanished_r the UIDs of uids (NULL: all of
   1:UIDNEXT-1) that are gone and were expunged after modseq. Exact while
   the hub remembers the expunges back to modseq (it remembers those made
   since the mailbox was opened in this process, bounded); otherwise it
   adds every UID of the set that is not in the mailbox, which RFC 7162
   section 5.1 allows. Returns true if the answer was exact. */
bool mailbox_vanished_since(struct mailbox *mbox, uint64_t modseq, const struct seqset *uids,
			    struct seqset *vanished_r);
/* Heavy operations outside the loop. A backend that splits its expunge
   (storage.h, expunge_prepare) has it run in a job of the process's job
   queue (job_queue_default(), core/io/job.h). While the job works the
   mailbox is busy: its state and the disk stay as they were (reads,
   FETCH, NOOP and IDLE go on), changes by other processes are picked up
   after it, and the operations that would write it (append, set_flags,
   expunge) fail with STORAGE_ERR_IN_USE: a session waits with
   mailbox_wait_idle() before it calls them. mailbox_set_flags() is the
   exception (FETCH sets \Seen): the change is made in the state at once
   and written to the disk when the job is done. The job holds a reference
   to the mailbox, so it commits or aborts cleanly whoever goes away. */
bool mailbox_is_busy(const struct mailbox *mbox);
/* Whether mbox is busy with an expunge of the message uid: its work may
   have removed the message's data already (a read fails with
   STORAGE_ERR_NOT_FOUND); it is gone once the job commits. */
bool mailbox_expunging(const struct mailbox *mbox, uint32_t uid);
/* Calls cb(ctx) once, in the loop, when mbox is no longer busy (at
   once, from the caller, it is not: check mailbox_is_busy() first). The
   waiter is freed before cb is called. Waiters are called in the order
   they came, each only while the mailbox is not busy (one may start a
   new job; the others then wait for it too). */
struct mailbox_waiter;
struct mailbox_waiter *mailbox_wait_idle(struct mailbox *mbox, void (*cb)(void *ctx),
					 void *ctx);
/* Withdraws a waiter that has not been called; sets *waiter to NULL. */
void mailbox_waiter_cancel(struct mailbox_waiter **waiter);

/* For a command about to open mailbox name of user: if it is being
   opened by a job, or is not open and the backend's first open of it
   costs its size (storage.h, open_prepare), returns it (busy: the
   command waits with mailbox_wait_idle() and then calls mailbox_open()
   as usual, which is cheap then). Otherwise NULL: mailbox_open() as
   usual. */
struct mailbox *hub_open_start(struct hub *hub, const char *sid, const char *user,
			       const char *name);

/* The result of an operation that finished in a job: ret 0, or -1
   (logged) with the kind in err. Called in the loop, after the change
   is in the shared state and before the other views are told. */
typedef void mailbox_done_func(void *ctx, int ret, enum storage_error err);
struct mailbox_op;
/* mailbox_expunge() (deleted_only) or mailbox_expunge_uids(), in a job
   if the backend and the process allow it. Returns 1 if it went to a
   job: then *op_r is set, mbox is busy, and done(ctx, ...) is called
   when the job is done, unless mailbox_op_detach() came first. Returns
   0 or -1 (with *err_r) if it was done at once; done is not called. The
   caller must not call it while mbox is busy (-1, STORAGE_ERR_IN_USE). */
int mailbox_expunge_start(struct mailbox *mbox, const struct seqset *uids, bool deleted_only,
			  mailbox_done_func *done, void *ctx, struct mailbox_op **op_r,
			  enum storage_error *err_r, const char *sid);
/* Whether flag changes of mbox are written in a job (the backend
   makes a command's changes in one round trip, storage.h
   flags_prepare): then a command gives them all at once to
   mailbox_flags_start() instead of calling mailbox_set_flags() per
   message. */
bool mailbox_flags_in_job(const struct mailbox *mbox);
/* Writes changes (each a message's UID and the rule of its change,
   storage.h) in a job: mbox is busy until it is done; then the state
   has the changes other processes committed before, then these, at
   the job's modseq, written to *modseq_r (if not NULL; 0 if nothing was
   written: a message expunged meanwhile, or changed past its condition,
   is left out), and done(ctx, 0, ...) is called; or done(ctx, -1, err)
   with the flags as they were (logged). Returns 1 with *op_r
   (mailbox_op_detach() as for an expunge; then *modseq_r is not
   written), 0 if there was nothing to do, or -1 with *err_r. Only when
   mailbox_flags_in_job(), and not while mbox is busy. */
int mailbox_flags_start(struct mailbox *mbox, const struct storage_flag_change *changes,
			size_t count, uint64_t *modseq_r, mailbox_done_func *done, void *ctx,
			struct mailbox_op **op_r, enum storage_error *err_r, const char *sid);
/* Whether COPY into dest is made in one job (storage.h copy_prepare). */
bool mailbox_copies_in_job(const struct mailbox *dest);
/* Copies the count > 0 messages recs of src (records as src's state has
   them; keywords[i] already indexes into dest's) into dest in a job:
   dest is busy until it is done; then dest's state has them, their UIDs
   are in uids_r (count of them, the caller's until done or detach) and
   done(ctx, 0, ...) is called; or done(ctx, -1, err) with nothing
   copied (logged). Returns 1 with *op_r (mailbox_op_detach() as for an
   expunge), or -1 with *err_r. Only when mailbox_copies_in_job(dest),
   and not while dest is busy. */
int mailbox_copy_start(struct mailbox *src, struct mailbox *dest, const struct mail_rec *recs,
		       const uint64_t *keywords, size_t count, uint32_t *uids_r,
		       mailbox_done_func *done, void *ctx, struct mailbox_op **op_r,
		       enum storage_error *err_r, const char *sid);
/* The caller of mailbox_expunge_start() goes away: done is not called;
   the job still commits (or aborts) and the views are told. Sets *op
   to NULL. */
void mailbox_op_detach(struct mailbox_op **op);

/* mailbox_append(), with the message written (and fsynced) in a job
   when the backend and the process allow it (storage.h,
   append_prepare): the loop goes on meanwhile, and the mailbox is not
   busy (other appends, flag changes and expunges go on; it stays in use,
   so DELETE and RENAME refuse it); on a mailbox busy with a job the
   commit waits for it. Returns 1 if it went to a job: then
   *op_r is set and done(ctx, ret, uid, err) is called once the message
   is in the mailbox (or not: ret -1, logged), unless
   mailbox_append_detach() came first; the others' views are not told
   (the caller does it, as after mailbox_append()). Returns 0 with *uid_r
   or -1 with *err_r if it was done at once; done is not called. */
typedef void mailbox_append_done_func(void *ctx, int ret, uint32_t uid,
				      enum storage_error err);
struct mailbox_append_op;
int mailbox_append_start(struct mailbox *mbox, const char *data, size_t len, uint8_t flags,
			 uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
			 mailbox_append_done_func *done, void *ctx,
			 struct mailbox_append_op **op_r, uint32_t *uid_r,
			 enum storage_error *err_r, const char *sid);
/* The caller of mailbox_append_start() goes away: done is not called;
   the append still finishes, and then the views are told. Sets *op to
   NULL. */
void mailbox_append_detach(struct mailbox_append_op **op);

/* Tells every view except 'except' that the mailbox changed, and the
   hub's listeners for its user (HUB_EVENT_MAILBOX). */
void mailbox_changed(struct mailbox *mbox, struct mbox_view *except);

/* Change signals for sessions that watch mailboxes they have not
   selected (NOTIFY, RFC 5465). A listener hears of the changes made in
   this process: the messages or flags of a mailbox (every
   mailbox_changed()), and the names and subscriptions (the commands
   that change them call hub_signal()). Changes by other processes reach
   it through file watches (hub_watch()). A signal costs one call per
   listener of the hub (sessions that did not ask for NOTIFY do not
   listen). A callback must not free listeners; it may queue output. */
enum hub_event {
	HUB_EVENT_MAILBOX,      /* messages or flags of name changed */
	HUB_EVENT_CREATE,       /* name was created */
	HUB_EVENT_DELETE,       /* name was deleted */
	HUB_EVENT_RENAME,       /* old_name is now name */
	HUB_EVENT_SUBSCRIBE,    /* name was subscribed */
	HUB_EVENT_UNSUBSCRIBE,  /* name was unsubscribed */
};
typedef void hub_listen_func(void *ctx, int event, const char *name, const char *old_name);
struct hub_listener;
/* cb(ctx, event, name, old_name) for every signal about user's
   mailboxes until hub_unlisten(). */
struct hub_listener *hub_listen(struct hub *hub, const char *user, hub_listen_func *cb,
				void *ctx);
void hub_unlisten(struct hub_listener **listener);
/* Calls the listeners of user with event (enum hub_event). old_name
   only with HUB_EVENT_RENAME, else NULL. */
void hub_signal(struct hub *hub, const char *user, int event, const char *name,
		const char *old_name);
/* The file watches of the hub (NULL without: unit tests may run so). */
struct watch *hub_watch(struct hub *hub);
/* The paths the backend asks to watch for changes from other processes. */
void mailbox_watch_paths(struct mailbox *mbox, struct strlist *paths_r);

#endif
