/* imap_cmd.h: what the command handlers (cmd_*.c) and the dispatcher
   (imap_commands.c) share; internal to core/imap. */
#ifndef IMAP_CMD_H
#define IMAP_CMD_H

#include "imap_client.h"

/* Where a command may run. */
#define ST_NOT_AUTH 0x1
#define ST_AUTH 0x2
#define ST_SELECTED 0x4
#define ST_ANY (ST_NOT_AUTH | ST_AUTH | ST_SELECTED)

struct cmd_def;

struct cmd_ctx {
	struct client *c;
	const struct cmd_def *def;
	const char *tag;
	const char *name;
	const struct imap_arg *args;
	size_t count;
	bool uid;
};

/* Returns true when done, false when the command goes on asynchronously. */
typedef bool cmd_func(struct cmd_ctx *ctx);

enum cmd_flags {
	/* The command takes no arguments at all. */
	CMD_FLAG_NO_ARGS = 1 << 0,
	/* RFC 3501 7.4.1: no EXPUNGE while answering it by sequence number
	   (FETCH, STORE, SEARCH). */
	CMD_FLAG_NO_EXPUNGE = 1 << 1,
	/* UID may prefix it (RFC 3501 6.4.8, UIDPLUS, MOVE). */
	CMD_FLAG_UID = 1 << 2,
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

/* imap_commands.c: helpers the handlers share. */
/* Queues the command's tagged answer, after the untagged updates of
   the selected mailbox (the view brought in line as the command's
   flags allow). Every handler answers through it (or cmd_bad), last. */
void cmd_tagged(struct cmd_ctx *ctx, const char *fmt, ...) ATTR_FORMAT(2, 3);
/* Queues "tag BAD reason" and counts it; returns true (done). */
bool cmd_bad(struct cmd_ctx *ctx, const char *reason);
/* The string value of an astring argument, or NULL. */
const char *cmd_arg_str(const struct cmd_ctx *ctx, size_t i);
/* Queues the NO answer for a storage error. */
void cmd_no_storage(struct cmd_ctx *ctx, enum storage_error err);
/* The mailbox name argument i, decoded from modified UTF-7 and
   normalized; answers and returns NULL if it is missing or invalid. */
char *cmd_arg_mailbox(struct cmd_ctx *ctx, size_t i);
/* Appends a mailbox name (UTF-8) as the client sees it. */
void cmd_write_mailbox_name(struct buf *out, const char *name);
/* A number atom up to max. */
bool cmd_arg_number(const struct imap_arg *arg, uint64_t max, uint64_t *num_r);
/* The view's sequence numbers that the set names: by number, or by UID.
   For numbers past the end returns -1 (BAD). */
int cmd_collect_seqs(struct cmd_ctx *ctx, const char *setstr, uint32_t **seqs_r,
		     size_t *count_r);

/* cmd_any.c */
/* Turns CONDSTORE (and with qresync QRESYNC) on for the connection. */
void client_enable_condstore(struct client *c, bool qresync);
bool cmd_capability(struct cmd_ctx *ctx);
bool cmd_noop(struct cmd_ctx *ctx);
bool cmd_logout(struct cmd_ctx *ctx);
bool cmd_id(struct cmd_ctx *ctx);
bool cmd_enable(struct cmd_ctx *ctx);

/* cmd_auth.c */
/* Handles a SASL PLAIN response; returns false if the login goes on
   asynchronously. */
bool cmd_auth_plain_response(struct client *c, const char *tag, const char *b64, size_t len);
bool cmd_login(struct cmd_ctx *ctx);
bool cmd_authenticate(struct cmd_ctx *ctx);
bool cmd_starttls(struct cmd_ctx *ctx);

/* cmd_mailbox.c */
bool cmd_namespace(struct cmd_ctx *ctx);
bool cmd_select(struct cmd_ctx *ctx);
bool cmd_create(struct cmd_ctx *ctx);
bool cmd_delete(struct cmd_ctx *ctx);
bool cmd_rename(struct cmd_ctx *ctx);
bool cmd_subscribe(struct cmd_ctx *ctx);

/* cmd_list.c */
bool cmd_list(struct cmd_ctx *ctx);
bool cmd_status(struct cmd_ctx *ctx);

/* cmd_message.c */
bool cmd_append(struct cmd_ctx *ctx);
bool cmd_check(struct cmd_ctx *ctx);
bool cmd_close(struct cmd_ctx *ctx);
bool cmd_expunge(struct cmd_ctx *ctx);
bool cmd_store(struct cmd_ctx *ctx);
bool cmd_copy(struct cmd_ctx *ctx);

/* cmd_idle.c */
bool cmd_idle(struct cmd_ctx *ctx);

/* cmd_search.c */
bool cmd_search(struct cmd_ctx *ctx);

/* cmd_fetch.c */
bool cmd_fetch(struct cmd_ctx *ctx);

#endif
