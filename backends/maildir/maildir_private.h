/* maildir_private.h: what the files of backends/maildir/ share: the
   limits, the instance and mailbox structs, and the functions each file
   gives the others. Not for use outside backends/maildir/ (the backend's
   public header is maildir.h).

   Ownership: a struct storage_box owns its paths, its file table and its
   keyword names; md_box_free() in maildir_storage.c frees them. The
   crash-safety reasoning is written at the top of each file, next to the
   code it applies to. */
#ifndef BACKENDS_MAILDIR_PRIVATE_H
#define BACKENDS_MAILDIR_PRIVATE_H

#include "safepath.h"
#include "storage.h"
#include "storage_files.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define MD_DIR "Maildir"
#define MD_UIDLIST "dovecot-uidlist"
#define MD_KEYWORDS "dovecot-keywords"
#define MD_LOCK "imapserver-uidlist.lock"
#define MD_INDEX "imapserver-index"
#define MD_UIDV "imapserver-uidvalidity"
#define MD_SUBS "subscriptions"
#define MD_TMP_STALE_SECS (36 * 3600)
#define MD_LOCK_TIMEOUT_MS storage_lock_wait_ms
/* A directory mtime this close (or closer) to the moment it was read may
   still change within the same clock tick unnoticed: not trusted. */
#define MD_MTIME_TRUST_NS 1000000000LL
#define MD_MAX_FILES 1000000
/* A file written less than this long ago may still be being written by a
   tool that does not use tmp/. */
#define MD_YOUNG_SECS 2
#define MD_MAX_LETTERS 26
#define MD_LIST_MAX 10000
#define MD_MAX_MSG (1024ULL * 1024 * 1024)
#define MD_READ_CHUNK (256 * 1024)
/* Modseqs reserved at a time for flag changes not yet in the uidlist. */
#define MD_MODSEQ_RESERVE 1024
/* How long a batch of our own flag renames may wait for its uidlist
   write when nothing else changed the folders (see md_sync()). */
#define MD_BATCH_WRITE_MS 2000

struct storage {
	char *root;
	char host[128];            /* hostname, '/' and ':' escaped */
	unsigned long seq;         /* per-process counter for unique names */
};

/* One message file. */
struct mfile {
	uint32_t uid;
	char *base;                /* the unique part of the name, before ':' */
	char *name;                /* the name in its folder (new/ or cur/) */
	bool in_new;
	bool described;            /* vsize, date and tz are known */
	bool seen;                 /* scratch: matched by the current scan */
	uint64_t modseq;           /* as recorded in the uidlist (0: none) */
	uint64_t rec_letters;      /* info letters of the name the uidlist on
				      disk records (UINT64_MAX: no record) */
	uint64_t vsize;            /* RFC822.SIZE */
	int64_t date;
	int32_t tz;
};

struct ftable {
	struct mfile *f;
	size_t count, alloc;
};

struct dir_stamp {
	bool taken;                /* the folder could be stat()ed */
	bool valid;                /* trusted: a later change shows as a new mtime */
	uint64_t ino;
	int64_t sec, nsec;
};

struct file_stamp {
	bool exists;
	uint64_t ino, size;
	int64_t sec, nsec;
};

struct storage_box {
	struct storage *st;
	bool inbox;
	char *user_dir;            /* "<root>/<user>": every path is resolved
				      beneath it (safepath.h) */
	char *dir, *cur_dir, *new_dir, *tmp_dir;
	char *uidlist_path, *uidlist_tmp, *kw_path, *kw_tmp, *lock_path, *uidv_path;
	char *index_path, *index_tmp;

	int lock_fd;
	unsigned lock_depth;

	struct ftable files;       /* sorted by uid; the same uids as the state */
	uint32_t uidvalidity;      /* 0 until loaded */
	uint32_t uidnext;          /* next UID to give; never lowered */
	uint64_t disk_highest;     /* HIGHESTMODSEQ the uidlist last read or
				      written holds */
	uint64_t disk_ceiling;     /* its floor: max(M, C, records); modseqs up
				      to it may be handed out unwritten */
	bool dirty;                /* flag renames not yet in the uidlist */
	int64_t dirty_since;       /* monotonic ms of the first of them */
	uint64_t highest;          /* the state's HIGHESTMODSEQ and first recent */
	uint32_t first_recent;     /* UID at the last flag change (for close()) */
	bool rewrite;              /* the uidlist must be rewritten, not
				      appended to (torn last line) */
	/* The uidlist could not be written for lack of space: the files
	   were changed, the uidlist follows once there is room (dirty). */
	struct storage_space space;
	char *kw[MD_MAX_LETTERS];  /* kw[i] is letter 'a' + i */
	unsigned kw_count;

	struct dir_stamp cur_stamp, new_stamp;
	struct file_stamp uidlist_stamp;
	bool has_young;            /* some file may still grow: scan again */
	bool young_skipped;        /* the last scan skipped an empty young file */
	/* A stamp was taken while its folder's mtime was too young to be
	   trusted: a change by a tool that does not lock, in the same clock
	   tick, could hide behind it. md_unchanged() trusts it until then
	   (monotonic ms) and then asks for one more scan. 0: none pending. */
	int64_t recheck_at;

	/* Opened from imapserver-index (maildir_index.c): box->files is
	   still to be loaded from index_fd (md_files_load()). */
	bool files_lazy;
	int index_fd;
	size_t index_count;
	uint32_t index_header_size;
	uint64_t index_names_off, index_names_len, index_body_hash, index_offs_off;
	void *index_map;           /* the whole index, read-only, while lazy */
	size_t index_map_len;
	/* The stamps the index on disk was made for (read or written), so
	   that close() rewrites it only when something changed. */
	bool index_known;
	struct file_stamp index_ul;
	struct dir_stamp index_cur, index_new;
};

/* Changes of our own to cur/ and new/ (under the lock), so that they do
   not make the next sync() scan the whole folder again: begin records
   whether the stamps still describe the folders; end stamps them again
   after the change if they did. */
struct md_own_change {
	bool cur, new;
};

/* dovecot-uidlist as read from disk (maildir_uidlist.c). */
struct uidlist {
	bool valid;
	uint32_t uidvalidity, uidnext, first_recent;
	uint64_t highest_modseq;   /* max of the header's M and the records' */
	uint64_t ceiling;          /* max of that and the header's C */
	bool have_recent;
	bool torn;                 /* the last line has no LF */
	struct ftable t;           /* sorted by uid; name = last known name */
};

/* maildir_util.c */
void md_stamp_file(const char *base, const char *path, struct file_stamp *fs);
bool md_file_stamp_equal(const struct file_stamp *a, const struct file_stamp *b);
void md_stamp_dir(const char *base, const char *path, struct dir_stamp *ds);
bool md_dir_unchanged(const char *base, const char *path, const struct dir_stamp *ds);
void md_ftable_clear(struct ftable *t);
void md_ftable_free(struct ftable *t);
struct mfile *md_ftable_add(struct ftable *t);
ssize_t md_ftable_find(const struct ftable *t, uint32_t uid);
void md_ftable_remove(struct ftable *t, size_t idx);
int md_mfile_uid_cmp(const void *a, const void *b);
int32_t md_local_tz_minutes(int64_t t);
char *md_file_path(const struct storage_box *box, const struct mfile *f);
int md_mkdir_ok(const char *base, const char *path);
int md_make_maildir(const char *base, const char *dir);

/* maildir_name.c */
int md_check_names(const char *user, const char *name, enum storage_error *err_r, char **error_r);
char *md_user_dir(struct storage *st, const char *user);
char *md_root(struct storage *st, const char *user);
char *md_box_dir(struct storage *st, const char *user, const char *name);
size_t md_base_len(const char *name);
const char *md_name_flags(const char *name);
uint64_t md_name_letters(const char *name);
bool md_base_field(const char *base, size_t len, char key, uint64_t *val_r);
void md_flags_from_name(struct storage_box *box, struct mbox_state *state, const char *name,
			uint8_t *flags_r, uint64_t *kw_r);
char *md_name_with_flags(struct storage_box *box, const struct mbox_state *state, const char *base,
			 size_t blen, const char *old, uint8_t flags, uint64_t kw,
			 bool *kw_changed_r);

/* maildir_lock.c */
int md_lock(struct storage_box *box, enum storage_error *err_r, char **error_r);
void md_unlock(struct storage_box *box);

/* maildir_keywords.c */
void md_kw_clear(struct storage_box *box);
void md_kw_read(struct storage_box *box);
int md_kw_write(struct storage_box *box, char **error_r);
int md_kw_letter(struct storage_box *box, const char *name, bool add, bool *wrote_r);

/* maildir_uidlist.c */
uint32_t md_new_uidvalidity(struct storage_box *box, uint32_t old);
void md_uidlist_free(struct uidlist *ul);
int md_uidlist_read(struct storage_box *box, struct uidlist *ul, char **error_r);
/* md_uidlist_write() after a change the files already have (a rename,
   an unlink, new UIDs): a lack of space leaves the uidlist behind and
   dirty (written by a later sync once there is room, see
   storage_space) and returns 0; other errors as md_uidlist_write(). */
int md_uidlist_write_soft(struct storage_box *box, const struct mbox_state *state, bool reserve,
			  char **error_r);
int md_uidlist_write(struct storage_box *box, const struct mbox_state *state, bool reserve,
		     char **error_r);
int md_uidlist_append_rec(struct storage_box *box, const struct mfile *f, char **error_r);
/* md_uidlist_append_rec() in its parts, for a worker thread to make the
   write: the record of f as a line; the line appended to the uidlist at
   path and fdatasync()ed (touches nothing but the file; 0, or -1 with
   errno set); the box told whether it was written. */
void md_uidlist_rec_line(struct buf *b, const struct mfile *f);
int md_uidlist_append_line(const char *user_dir, const char *path, const struct buf *line);
void md_uidlist_rec_done(struct storage_box *box, const struct mfile *f, bool written);

/* maildir_index.c */
/* The open from the index when nothing changed since it was written (the
   lock is held): true if state and box are loaded. */
bool md_index_open(struct storage_box *box, struct mbox_state *state);
/* Writes the index when box's state allows and it is not the one on
   disk already; never fails the caller. */
void md_index_write(struct storage_box *box);
/* storage_backend.hints_changed: keeps state's first recent UID for the
   next write and, when the index on disk describes the folder, it and
   state's seen_below in its header in place. O(1). */
void md_hints_changed(struct storage_box *box, const struct mbox_state *state);
/* Loads box->files if the open left it to later; every operation that
   uses box->files calls it first. Returns 0 or -1 with *error_r. */
int md_files_load(struct storage_box *box, char **error_r);
/* While box->files waits: the name in cur/ of UID uid's file as the index
   has it (O(log messages), no copy), or NULL (then load the table). The
   name lives as long as the lazy state. */
const char *md_index_name(struct storage_box *box, uint32_t uid);
/* Drops the index's mapping and descriptor (the table is loaded). */
void md_index_unmap(struct storage_box *box);

/* maildir_sync.c */
int md_sync_locked(struct storage_box *box, struct mbox_state *state, char **error_r);
bool md_unchanged(struct storage_box *box);
void md_own_change_begin(struct storage_box *box, struct md_own_change *oc);
void md_own_change_end(struct storage_box *box, const struct md_own_change *oc);
/* A stamp was taken: schedules the recheck if it is not trusted. */
void md_stamp_note(struct storage_box *box, const struct dir_stamp *ds);
bool md_locate(struct storage_box *box, struct mfile *f);
int md_sync(struct storage_box *box, struct mbox_state *state, enum storage_error *err_r,
	    char **error_r);

/* maildir_mail.c */
int md_read(struct storage_box *box, const struct mail_rec *rec, struct buf *out,
	    enum storage_error *err_r, char **error_r);

/* maildir_save.c */
void md_clean_tmp(struct storage_box *box);
int md_append(struct storage_box *box, struct mbox_state *state, const char *data, size_t len,
	      uint8_t flags, uint64_t keywords, int64_t internal_date, int32_t tz_minutes,
	      uint32_t *uid_r, enum storage_error *err_r, char **error_r);
/* append() in two steps (storage.h, append_prepare): the message written
   to tmp/ and fsynced by the job's work, the rest at the commit. */
struct md_append_job;
int md_append_prepare(struct storage_box *box, const char *data, size_t len,
		      struct storage_job **job_r, enum storage_error *err_r, char **error_r);
/* The commit's disk waits in a second work (storage.h append_settle):
   the lock, the UID and the rename here, the folder's fsync and the
   UID's record by the work, the state at md_append_commit(). */
int md_append_settle(struct storage_box *box, const struct mbox_state *state,
		     struct storage_job *job, uint8_t flags, uint64_t keywords,
		     int64_t internal_date, int32_t tz_minutes);
/* Drops an append's job not committed; a settled one's message taken
   back out of the mailbox, the lock let go. */
void md_append_abort(struct storage_box *box, struct md_append_job *a);
int md_append_commit(struct storage_box *box, struct mbox_state *state,
		     struct storage_job **job, uint8_t flags, uint64_t keywords,
		     int64_t internal_date, int32_t tz_minutes, uint32_t *uid_r,
		     enum storage_error *err_r, char **error_r);
/* In the worker: writes and fsyncs the message (touches only a). */
void md_append_work(struct md_append_job *a);
/* Frees a, removing the file its work wrote if the commit did not take it. */
void md_append_job_free(struct md_append_job *a);

/* maildir_flags.c */
int md_flags_changed(struct storage_box *box, struct mbox_state *state, size_t idx,
		     enum storage_error *err_r, char **error_r);

/* maildir_expunge.c */
int md_expunge(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
	       size_t count, enum storage_error *err_r, char **error_r);
/* md_expunge() in its three steps (storage.h, expunge_prepare): the
   lock and the paths (x NULL: none of the UIDs is there); the unlinks
   and folder fsyncs (touches only x); the table and state, the lock let
   go. md_expunge_abort() drops a job not committed. */
struct md_expunge_job;
int md_expunge_prepare(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
		       size_t count, struct md_expunge_job **x_r, enum storage_error *err_r,
		       char **error_r);
void md_expunge_work(struct md_expunge_job *x);
int md_expunge_commit(struct storage_box *box, struct mbox_state *state, struct md_expunge_job *x,
		      enum storage_error *err_r, char **error_r);
void md_expunge_abort(struct storage_box *box, struct md_expunge_job *x);
/* maildir_job.c: the same as the backend's expunge_prepare and
   job_commit. */
int md_expunge_prepare_job(struct storage_box *box, struct mbox_state *state, const uint32_t *uids,
			   size_t count, struct storage_job **job_r, enum storage_error *err_r,
			   char **error_r);
int md_job_commit(struct storage_box *box, struct mbox_state *state, struct storage_job **job,
		  enum storage_error *err_r, char **error_r);

/* maildir_job.c: the first open of a big folder in a job (storage.h,
   open_prepare). */
int md_open_prepare(struct storage *st, const char *user, const char *name,
		    struct storage_job **job_r, enum storage_error *err_r, char **error_r);
void md_job_work(struct storage_job *job);
int md_open_commit(struct storage *st, struct storage_job **job, struct mbox_state *state,
		   struct storage_box **box_r, enum storage_error *err_r, char **error_r);
void md_job_abort(struct storage_box *box, struct storage_job **job);
/* A job that carries an append's message (maildir_save.c). */
struct storage_job *md_job_of_append(struct md_append_job *a);
/* The append of job (NULL for an open job), taken out of it; the job
   is freed. */
struct md_append_job *md_job_take_append(struct storage_job *job);
/* The append a job carries, still the job's. */
struct md_append_job *md_job_append(struct storage_job *job);

#endif
