/* flat_private.h: what the files of the flat backend share: its
   constants, the box and index structs, and the functions one file
   defines for another. Not for use outside backends/flat/.

   The files, by concern:
   - flat_format.c   the mail file format: scan, serve, read, stuff
   - flat_index.c    the side index in .imap/, UIDVALIDITY, flag changes
   - flat_lock.c     the writers' dotlock + fcntl() lock
   - flat_sync.c     reconciling state with the disk, sync()
   - flat_save.c     APPEND
   - flat_expunge.c  EXPUNGE, the rewrite of the mail file
   - flat_storage.c  init/open/close, list/create/delete/rename,
                     subscriptions, and the vtable
   Each file's crash-safety reasoning is written at its top. */
#ifndef BACKENDS_FLAT_PRIVATE_H
#define BACKENDS_FLAT_PRIVATE_H

#include "storage.h"
#include "storage_files.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define FLAT_INBOX_FILE "mymailbox.mail"
#define FLAT_SUFFIX ".mail"
#define FLAT_IMAP_DIR ".imap"
#define FLAT_LOCK_TIMEOUT_MS storage_lock_wait_ms
#define FLAT_LOCK_STALE_SECS 300
/* An empty dotlock (taken on a full disk) whose maker holds no fcntl
   lock on the mail file after this long is stale (flat_lock.c). */
#define FLAT_LOCK_EMPTY_STALE_SECS 2
/* An unterminated tail is served as a message only once its file has
   not been written for this long (an in-progress "cat >>" is not). */
#define FLAT_TAIL_AGE_SECS 2
#define FLAT_SCAN_CHUNK (1024 * 1024)
#define FLAT_COPY_CHUNK (256 * 1024)
/* A mail file without an index at least this big is scanned in a job at
   its first open (open_prepare); a smaller one by open() at once. */
#define FLAT_FIRST_BUILD_JOB_MIN (1024 * 1024)
#define FLAT_LIST_MAX_DEPTH 16
#define FLAT_LIST_MAX_NAMES 10000

#define IDX_MAGIC "FLATIDX1"
/* Version 2: the records are struct mail_rec byte for byte and start on
   a page (IDX_ALIGN), so that a large index is mapped, not read
   (mbox_state_map()). Version 1 (records in another order, a header
   rounded to 64 bytes) is still read, and rewritten as version 2 at the
   first change. */
#define IDX_VERSION 2
#define IDX_VERSION_1 1
#define IDX_ALIGN 4096
#define IDX_FIXED_SIZE 112
/* The last 16 octets of a version 2 header: "SEEN" (IDX_SEEN_MAGIC), the
   state's seen_below hint and the HIGHESTMODSEQ it goes with. */
#define IDX_SEEN_SIZE 16
#define IDX_SEEN_MAGIC 0x5345454eU
#define IDX_REC_SIZE MAIL_REC_SIZE
/* Space kept allocated past the end of an index (flat_index.c). */
#define IDX_ROOM (32 * 1024)
#define IDX_FLAG_LAST_OPEN 0x1
/* The last records an open without reading the index checks (order,
   spans), beside the last message's hash against the mail file. */
#define IDX_MAP_CHECK_TAIL 128

struct storage {
	char *root;
};

/* One message as the index knows it. */
struct frec {
	uint32_t uid;
	uint8_t flags;
	uint64_t keywords;         /* bits index the keyword table of its view */
	int64_t date;
	int32_t tz;
	uint64_t modseq;
	uint64_t off, len;         /* stored bytes, terminator line included */
	uint64_t served;           /* RFC822.SIZE */
	uint64_t hash;             /* of the stored bytes */
};

/* The content of an index: the header fields and the records. */
struct view {
	uint32_t uidvalidity, uidnext, first_recent_uid;
	uint32_t seen_below;       /* mbox_state.seen_below (0: unknown) */
	uint64_t highest_modseq;
	/* The mail file as of the last sync, and how far it was parsed. */
	uint64_t mail_size, ino, dev, parsed_end;
	int64_t mtime_sec, mtime_nsec;
	bool last_open;            /* last record has no terminator line */
	uint32_t header_size;      /* on disk, when read from disk */
	uint32_t version;          /* on disk, when read from disk */
	struct frec *recs;
	size_t count, alloc;
	char *kw[MBOX_MAX_KEYWORDS];
	unsigned kw_count;
};

struct storage_box {
	struct storage *st;
	bool inbox;
	char *user_dir, *mail_path, *mail_tmp, *lock_path;
	char *index_path, *index_tmp, *uidv_path;
	char *cache_path;          /* the core's listing cache (storage.h) */

	int fd;                    /* read fd of the mail file, -1 when absent */
	/* What the index on disk says about the mail file; state matches it. */
	uint64_t mail_size, ino, dev, parsed_end;
	int64_t mtime_sec, mtime_nsec;
	bool last_open;
	bool pending;              /* bytes after parsed_end wait to be parsed */

	int index_fd;              /* the index file state was written to/read from */
	uint32_t index_header_size;
	/* index_fd's open file description holds the read lock of state's
	   mapping of it (mbox_state_map()): its own in-place overwrites
	   convert that lock, and give it back. */
	bool index_mapped;
	/* The index at index_fd holds exactly state's records and keyword
	   table, so a flag change can be written in place. */
	bool disk_same;
	/* The index on disk is behind state: its write failed for lack of
	   space (state is what a rebuild from the old index and the mail file
	   gives, so nothing depends on it but speed); retried by sync(). */
	struct storage_space space;
	uint64_t index_ino, index_size;
	int64_t index_mtime_sec, index_mtime_nsec;

	int lock_fd;
	bool locked;
	/* sync() from the event loop must not wait for another process's
	   lock: it tries once and leaves the change for the next event (the
	   dotlock's removal is watched, see flat_watch_paths()). */
	bool lock_nowait;
};

/* The messages a scan of the mail file found. */
struct scan {
	struct frec *recs;
	size_t count, alloc;
	uint64_t end;              /* file offset up to which bytes are accounted for */
	bool last_open;            /* the last record has no terminator line */
	bool pending;              /* a young unterminated tail starts at end */
};

/* The start value of flat_hash_update() (FNV-1a, 64 bits). */
#define HASH_INIT 0xcbf29ce484222325ULL

/* flat_storage.c */
/* At an open: finishes an in-place expunge a crash stopped. */
int flat_open_recover(struct storage_box *box, enum storage_error *err_r, char **error_r);
/* Checks user and name (the backend's rules); 0 or -1 with *err_r. */
int flat_check_names(const char *user, const char *name, enum storage_error *err_r,
		     char **error_r);
/* A box for mailbox name of user with its paths, nothing open. */
struct storage_box *flat_box_new(struct storage *st, const char *user, const char *name);
void flat_box_free(struct storage_box *box);

/* flat_format.c */
uint64_t flat_hash_update(uint64_t h, const void *data, size_t len);
/* The hash of a message's stored bytes (with its length, what tells
   messages apart when the index is matched against the mail file). */
uint64_t flat_hash_bytes(const void *data, size_t len);
/* The served form of a stored message and its length (see the
   definition); out may be NULL to measure only. */
uint64_t flat_serve(const char *p, size_t len, struct buf *out, bool *have_date_r,
		    int64_t *date_r, int32_t *tz_r);
/* Appends data in the stored form (LF, dot-stuffed, "." line) to out. */
void flat_stuff(const char *data, size_t len, struct buf *out);
void flat_scan_free(struct scan *sc);
/* Parses the messages of the mail file in [from, to) into sc (freed with
   flat_scan_free()). Returns 0 or -1 with *error_r. */
int flat_scan(int fd, uint64_t from, uint64_t to, bool take_tail, bool force_first, int64_t now,
	      const char *path, struct scan *sc, char **error_r);
int flat_read(struct storage_box *box, const struct mail_rec *rec, struct buf *out,
	      enum storage_error *err_r, char **error_r);

/* flat_index.c */
void flat_view_free(struct view *v);
/* A whole index file for v into out; returns its header size. */
size_t flat_index_encode(const struct view *v, struct buf *out);
/* Returns 1 if valid (*fd_r open read-write), 0 if missing or invalid,
   -1 on I/O error. */
int flat_index_read(const char *base, const char *path, struct view *v, int *fd_r,
		    char **error_r);
/* The same for the header only: v gets the header fields and count, no
   records (v->recs NULL); the file is long enough for count records.
   For a version 2 index only (0 for the others). */
int flat_index_read_head(const char *base, const char *path, struct view *v, int *fd_r,
			 char **error_r);
/* Checks the last IDX_MAP_CHECK_TAIL records of a mapped state (count,
   as v's header says) as flat_index_read() checks them all: O(1). */
bool flat_index_tail_sane(const struct view *v, const struct mbox_state *state);
void flat_box_set_index_fd(struct storage_box *box, int fd, uint32_t header_size);
int flat_index_write_full(struct storage_box *box, const struct view *v, char **error_r);
int flat_index_write_tail(struct storage_box *box, const struct view *v, size_t first,
			  char **error_r);
uint32_t flat_new_uidvalidity(struct storage_box *box, uint32_t old);
void flat_frec_to_mail(const struct frec *r, struct mail_rec *m);
void flat_mail_to_frec(const struct mail_rec *m, struct frec *r);
void flat_view_from_state(const struct storage_box *box, const struct mbox_state *state,
			  bool with_recs, struct view *v);
bool flat_keywords_same(const struct view *v, const struct mbox_state *state);
bool flat_index_ours(const struct storage_box *box);
int flat_index_write_state_tail(struct storage_box *box, struct mbox_state *state, size_t first,
				char **error_r);
/* storage_backend.hints_changed: the index header (first recent UID,
   seen_below) in place when the index on disk holds exactly state (else
   the next write keeps them). O(1). */
void flat_hints_changed(struct storage_box *box, const struct mbox_state *state);
int flat_flags_changed(struct storage_box *box, struct mbox_state *state, size_t idx,
		       enum storage_error *err_r, char **error_r);

/* flat_lock.c */
/* Takes the dotlock and the fcntl lock (a no-op when held). Returns 0 or
   -1 with *err_r (STORAGE_ERR_IN_USE after the bounded wait). */
int flat_lock(struct storage_box *box, bool create, enum storage_error *err_r, char **error_r);
void flat_unlock(struct storage_box *box);

/* flat_sync.c, for flat_first_build.c: appends a scanned message to v
   (a new UID), and makes state hold exactly v's messages (1 if that
   meant a new UIDVALIDITY for a state that had one, else 0). */
void flat_view_new_message(struct view *v, struct frec *r);
int flat_view_apply(const struct view *v, struct mbox_state *state);

/* flat_index.c: 64-bit numbers in the index's (and the journal's) byte
   order, the host's. */
void flat_put64(unsigned char *p, uint64_t v);
uint64_t flat_get64(const unsigned char *p);
/* flat_index.c: rewrites the whole index from state (a keyword table
   change, an index that was behind). Takes the lock unless held. Returns
   0 or -1 with *err_r and *error_r. */
int flat_write_state(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
		     char **error_r);

/* flat_compact.c: EXPUNGE in place when the disk is too full to rewrite
   (see the top of the file). */
/* Keeps the user's journal allocated (best effort). */
void flat_compact_reserve(struct storage_box *box);
/* Moves the n kept messages (offsets off, lengths len, in file order) of
   the locked mail file down over the rest and truncates it; newoff gets
   their new offsets. Returns 0, or -1 with errno and *error_r (the file
   is then whole, or left to flat_compact_recover()). */
int flat_compact_in_place(struct storage_box *box, const uint64_t *off, const uint64_t *len,
			  size_t n, uint64_t *newoff, char **error_r);
/* True if the journal holds a plan for box's mail file (one read). */
bool flat_compact_pending(const struct storage_box *box);
/* Finishes an in-place expunge of box's mail file that a crash stopped;
   the lock is held. Returns 0 (also when there was none) or -1. */
int flat_compact_recover(struct storage_box *box, char **error_r);
extern unsigned flat_compact_test_crash_after;

/* flat_sync.c */
void flat_index_retry(struct storage_box *box, struct mbox_state *state, bool force);
void flat_view_set_stat(struct view *v, const struct stat *st);
void flat_box_take_view_stat(struct storage_box *box, const struct view *v);
bool flat_box_stat_equal(const struct storage_box *box, const struct stat *st);
void flat_box_set_stat(struct storage_box *box, const struct stat *st);
/* Return 0, 1 (new UIDVALIDITY for a state that had one) or -1. */
int flat_refresh(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
		 char **error_r);
int flat_catch_up(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
		  char **error_r);
int flat_sync(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	      char **error_r);
/* The first build of an index in a job (storage.h open_prepare): the
   scan of the mail file without an index, and the index written from it
   (what flat_refresh() would do). */
struct flat_scan_job;
/* Sets *job_r to NULL if the mailbox has an index, or no mail file, or a
   small one. */
void flat_first_build_prepare(struct storage *st, const char *user, const char *name,
			      struct flat_scan_job **job_r);
void flat_first_build_work(struct flat_scan_job *job);
int flat_first_build_commit(struct flat_scan_job **job, struct mbox_state *state,
			    struct storage_box **box_r, enum storage_error *err_r,
			    char **error_r);
void flat_first_build_free(struct flat_scan_job **job);

/* flat_save.c */
int flat_append(struct storage_box *box, struct mbox_state *state, const char *data, size_t len,
		uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
		uint32_t *uid_r, enum storage_error *err_r, char **error_r);
/* append() in steps (storage.h append_prepare, append_settle): the
   message stuffed here and hashed by the work; the lock and its place
   taken by the settle, written and fsynced by a second work, recorded
   by the commit. */
struct flat_append_job;
int flat_append_prepare(struct storage_box *box, const char *data, size_t len,
			struct storage_job **job_r, enum storage_error *err_r, char **error_r);
int flat_append_settle(struct storage_box *box, const struct mbox_state *state,
		       struct storage_job *job, uint8_t flags, uint64_t keywords,
		       int64_t internal_date, int32_t tz_minutes);
int flat_append_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **job,
		       uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
		       uint32_t *uid_r, enum storage_error *err_r, char **error_r);
/* In the worker: the job's work of either step. */
void flat_append_work(struct flat_append_job *a);
/* Frees a; one settled and not committed is undone (the file cut back
   to what it was, the lock let go; box may be NULL only if unsettled). */
void flat_append_job_free(struct storage_box *box, struct flat_append_job *a);
/* flat_expunge.c: the job that carries an append (a stays the job's
   until taken). */
struct storage_job *flat_job_of_append(struct flat_append_job *a);
struct flat_append_job *flat_job_append(struct storage_job *job);
struct flat_append_job *flat_job_take_append(struct storage_job *job);

/* flat_expunge.c */
int flat_expunge(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
		 size_t count, enum storage_error *err_r, char **error_r);
/* The split expunge of storage.h (expunge_prepare, job_work, job_commit,
   job_abort); flat_expunge() is the three in a row. */
int flat_expunge_prepare(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
			 size_t count, struct storage_job **job_r, enum storage_error *err_r,
			 char **error_r);
void flat_job_work(struct storage_job *job);
int flat_job_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **job,
		    enum storage_error *err_r, char **error_r);
void flat_job_abort(struct storage_box *box, struct storage_job **job);
int flat_open_prepare(struct storage *st, const char *user, const char *name,
		      struct storage_job **job_r, enum storage_error *err_r, char **error_r);
int flat_open_commit(struct storage *st, struct storage_job **job, struct mbox_state *state,
		     struct storage_box **box_r, enum storage_error *err_r, char **error_r);

#endif
