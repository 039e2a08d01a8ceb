/* imap_cmd.h: what the command handlers (cmd_*.c) and the dispatcher
   (imap_commands.c) share; internal to core/imap. */
#ifndef IMAP_CMD_H
#define IMAP_CMD_H

#include "lib.h"
#include "seqset.h"
#include "buf.h"
#include "imap_parser.h"
#include "storage.h"

/* The session sees its commands only through the lifecycle functions
   that imap_client.h declares (client_command_start ...); this header
   names struct client without including imap_client.h. */
struct client;

/* Where a command may run. */
#define ST_NOT_AUTH 0x1
#define ST_AUTH 0x2
#define ST_SELECTED 0x4
#define ST_ANY (ST_NOT_AUTH | ST_AUTH | ST_SELECTED)

struct client_command;

/* A command's handler, first called with the parsed arguments. Returns
   true when the command completed (its tagged answer is queued), false
   when it waits: then it set cmd->input or cmd->output to be called
   again, or what it started (a login check, a timer) ends it later with
   client_command_finish(). */
typedef bool cmd_func(struct client_command *cmd);
/* Called again with the line of input the command waits for (without
   its CRLF; wiped after the call). Returns as cmd_func. */
typedef bool cmd_input_func(struct client_command *cmd, const char *line, size_t len);

/* One command of a session, from its tag to its tagged answer (as
   Dovecot's client_command_context). The session holds the one that has
   not finished in c->cmd and reads no other command meanwhile. */
struct client_command {
	struct client *c;
	const struct cmd_def *def;
	char *tag;
	/* The name as the client wrote it, and the arguments (after UID):
	   the parser's, valid during the handler's first call only. */
	const char *name;
	const struct imap_arg *args;
	size_t count;
	bool uid;

	/* What an unfinished command waits for: a line of input
	   (AUTHENTICATE, IDLE), or output below half the high-water mark
	   (a big FETCH). Neither: a callback of its own ends it. */
	cmd_input_func *input;
	cmd_func *output;
	/* While it waits, mailbox changes are sent at once (IDLE). */
	bool live_updates;
	/* The command's own state, freed with context_free when the command
	   ends, or when the session ends first (it then also cancels what
	   the command started). */
	void *context;
	void (*context_free)(void *context);
	/* While it waits for a busy mailbox it would write (imap_commands.c,
	   mailbox_wait_idle()): the waiter, and the command's own copy of
	   its name and arguments, which name and args then point to. */
	struct mailbox_waiter *waiter;
	char *saved_name;
	struct imap_arg *saved_args;
	size_t saved_count;
	/* With a store whose sync is a round trip: the syncs the selected
	   mailbox, and the one the command names, wait for
	   (mailbox_catch_up()). */
	uint64_t sync_ticket, arg_sync_ticket;
	/* With a store whose calls are round trips: the call made in a
	   worker (storage_call_start()), of kind call_kind, done once made.
	   For LIST, LSUB, RENAME, SUBSCRIBE and UNSUBSCRIBE the user's names
	   and subscriptions are read so before the handler runs; the
	   handlers of CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE
	   make their change so (cmd_storage_change()). */
	struct storage_call *call;
	enum storage_call_kind call_kind;
	bool call_done;
};

enum cmd_flags {
	/* The command takes no arguments at all. */
	CMD_FLAG_NO_ARGS = 1 << 0,
	/* RFC 3501 7.4.1: no EXPUNGE while answering it by sequence number
	   (FETCH, STORE, SEARCH). */
	CMD_FLAG_NO_EXPUNGE = 1 << 1,
	/* UID may prefix it (RFC 3501 6.4.8, UIDPLUS, MOVE). */
	CMD_FLAG_UID = 1 << 2,
	/* No untagged updates before its tagged answer: LOGOUT, whose
	   "* BYE" ends the session's view (nothing may follow BYE but the
	   tagged OK, RFC 3501 6.1.3). */
	CMD_FLAG_NO_SYNC = 1 << 3,
};

/* One line of the command table. */
struct cmd_def {
	const char *name;
	cmd_func *func;
	unsigned states;        /* ST_* where it may run */
	unsigned flags;         /* enum cmd_flags */
};

/* The special-use mailboxes (RFC 6154) every user gets, by name. */
struct special_use_mailbox {
	const char *name;
	const char *attr;
};
extern const struct special_use_mailbox special_use[];
extern const size_t special_use_count;
/* The special-use attribute of a mailbox name, or NULL. */
const char *special_use_attr(const char *name);

/* imap_commands.c: the lifecycle and helpers the handlers share. */
/* Ends a command that waited, after its tagged answer, and reads the
   session's next commands. */
void client_command_finish(struct client_command *cmd);
/* Queues the command's tagged answer, after the untagged updates of
   the selected mailbox (the view brought in line as the command's
   flags allow). Every handler answers through it (or cmd_bad), last. */
void cmd_tagged(struct client_command *cmd, const char *fmt, ...) ATTR_FORMAT(2, 3);
/* Queues "tag BAD reason" and counts it; returns true (done). */
bool cmd_bad(struct client_command *cmd, const char *reason);
/* The string value of an astring argument, or NULL. */
const char *cmd_arg_str(const struct client_command *cmd, size_t i);
/* Queues the NO answer for a storage error. */
void cmd_no_storage(struct client_command *cmd, enum storage_error err);
/* The user's mailbox names (subs: subscriptions) into *list_r: those
   read in a worker before the command ran (LIST, LSUB), else read now.
   As storage_list(). */
int cmd_storage_names(struct client_command *cmd, bool subs, struct strlist *list_r,
		      enum storage_error *err_r);
/* The change a (CREATE, DELETE, RENAME, subscriptions): made in a
   worker with a store whose calls are round trips, then 1: the handler
   returns false (the command waits) and runs again, from the start,
   once it is made, when cmd_storage_change_done() is true and this
   gives its result. Else made now. 0, or -1 with *err_r (logged). */
int cmd_storage_change(struct client_command *cmd, const struct storage_call_args *a,
		       enum storage_error *err_r);
/* Whether the handler runs again with its change made (its checks
   before the change are not made again). */
bool cmd_storage_change_done(const struct client_command *cmd);
/* The mailbox name argument i, decoded from modified UTF-7 and
   normalized; answers and returns NULL if it is missing or invalid. */
char *cmd_arg_mailbox(struct client_command *cmd, size_t i);
/* Appends a mailbox name (UTF-8) as the client sees it. */
void cmd_write_mailbox_name(const struct client *c, struct buf *out, const char *name);
/* Parses a UID set, or "$" (the saved search result, RFC 5182). */
int cmd_parse_uidset(struct client_command *cmd, const char *setstr, uint32_t star,
		     struct seqset *set_r);
/* STATUS items in the order a client asked for them (cmd_list.c). */
struct status_items {
	uint8_t order[16];
	size_t count;
};
/* Writes "* STATUS name (...)" of mailbox name with items. Returns 0, or
   -1 with *err_r if the mailbox cannot be opened. */
int imap_status_write(struct client *c, const char *name, const struct status_items *items,
		      enum storage_error *err_r);
/* A number atom up to max. */
bool cmd_arg_number(const struct imap_arg *arg, uint64_t max, uint64_t *num_r);
/* The view's sequence numbers that the set names: by number, or by UID.
   For numbers past the end returns -1 (BAD). */
int cmd_collect_seqs(struct client_command *cmd, const char *setstr, uint32_t **seqs_r,
		     size_t *count_r);

/* cmd_any.c */
/* Turns CONDSTORE (and with qresync QRESYNC) on for the connection. */
void client_enable_condstore(struct client *c, bool qresync);
bool cmd_capability(struct client_command *cmd);
bool cmd_noop(struct client_command *cmd);
bool cmd_logout(struct client_command *cmd);
bool cmd_id(struct client_command *cmd);
bool cmd_enable(struct client_command *cmd);

/* cmd_auth.c */
bool cmd_login(struct client_command *cmd);
bool cmd_authenticate(struct client_command *cmd);
bool cmd_starttls(struct client_command *cmd);

/* cmd_compress.c */
bool cmd_compress(struct client_command *cmd);

/* cmd_mailbox.c */
bool cmd_namespace(struct client_command *cmd);
bool cmd_select(struct client_command *cmd);
bool cmd_create(struct client_command *cmd);
bool cmd_delete(struct client_command *cmd);
bool cmd_rename(struct client_command *cmd);
bool cmd_subscribe(struct client_command *cmd);

/* cmd_list.c */
bool cmd_list(struct client_command *cmd);
bool cmd_status(struct client_command *cmd);

/* cmd_quota.c */
bool cmd_getquota(struct client_command *cmd);
bool cmd_getquotaroot(struct client_command *cmd);
bool cmd_setquota(struct client_command *cmd);
/* Before APPEND, COPY or MOVE into the user's quota root: 0 when
   add_octets octets in add_messages messages fit the user's limits, else
   answers the command (NO [OVERQUOTA], or the storage error that kept
   the usage from being read) and returns -1. Nothing is answered when
   no limit is set. */
int cmd_quota_check(struct client_command *cmd, uint64_t add_octets, uint64_t add_messages);

/* cmd_message.c */
bool cmd_append(struct client_command *cmd);
bool cmd_check(struct client_command *cmd);
bool cmd_close(struct client_command *cmd);
bool cmd_expunge(struct client_command *cmd);
bool cmd_store(struct client_command *cmd);
bool cmd_copy(struct client_command *cmd);

/* cmd_notify.c */
bool cmd_notify(struct client_command *cmd);

/* cmd_idle.c */
bool cmd_idle(struct client_command *cmd);

/* read_ahead.c: the messages a command is about to read, read ahead in
   a job when the mailbox's reads are round trips (mailbox_reads_in_job()):
   the batch at work or read, and the position in the command's list
   after its last message. At most READ_AHEAD_MAX messages, or about
   READ_AHEAD_OCTETS (at least one), at a time. */
#define READ_AHEAD_MAX 128
#define READ_AHEAD_OCTETS (4 * 1024 * 1024)
struct read_ahead {
	struct mailbox_read_op *op;
	uint32_t *uids;
	size_t count, next, end;
	bool ready;
	struct client_command *cmd;
	bool (*output)(struct client_command *cmd);
};
/* Starts reading recs (count of them; end: the position in the
   command's list after them) for cmd. Returns true if it did: the
   command waits (cmd->output NULL) until they are read, then
   cmd->output is output and the session goes on. */
bool read_ahead_start(struct read_ahead *ra, struct client_command *cmd,
		      const struct mail_rec *recs, size_t count, size_t end,
		      bool (*output)(struct client_command *cmd));
bool read_ahead_waiting(const struct read_ahead *ra);
/* Reads rec into out: from the batch if it has it, else mailbox_read(). */
int read_ahead_read(struct read_ahead *ra, struct client *c, const struct mail_rec *rec,
		    struct buf *out, enum storage_error *err_r);
void read_ahead_free(struct read_ahead *ra);

/* cmd_search.c */
bool cmd_search(struct client_command *cmd);
/* The search_msg.load of SEARCH, SORT and THREAD: reads rec of c's
   mailbox into msg once (loaded), then hands out that copy. */
struct search_load_ctx {
	struct client *c;
	const struct mail_rec *rec;
	struct buf *msg;
	bool loaded;
	struct read_ahead *ahead;  /* NULL: mailbox_read() */
};
int search_load(void *context, const char **data_r, size_t *len_r);
/* cmd_sort.c */
bool cmd_sort(struct client_command *cmd);
bool cmd_thread(struct client_command *cmd);

/* cmd_fetch.c */
bool cmd_fetch(struct client_command *cmd);

#endif
