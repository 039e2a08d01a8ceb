/* imap_commands.c: the IMAP4rev1 commands (RFC 3501 section 6) and the
   extensions we advertise: the command table, the dispatcher and the
   helpers the handlers (cmd_*.c) share. Each handler gets the parsed
   command and queues its answer; the dispatcher checks the state and
   brings the selected mailbox's view in line before the tagged answer. */
#include "imap_cmd.h"
#include "imap_client.h"
#include "imap_util.h"
#include "log.h"
#include "mutf7.h"
#include "seqset.h"

#include <stdlib.h>

/* The special-use mailboxes (RFC 6154) every user gets, by name. */
const struct special_use_mailbox special_use[] = {
	{ "Sent", "\\Sent" },
	{ "Drafts", "\\Drafts" },
	{ "Trash", "\\Trash" },
	{ "Junk", "\\Junk" },
};
const size_t special_use_count = N_ELEMENTS(special_use);

const char *
special_use_attr(const char *name)
{
	for (size_t i = 0; i < special_use_count; i++) {
		if (strcmp(name, special_use[i].name) == 0)
			return special_use[i].attr;
	}
	return NULL;
}

void
cmd_tagged(struct client_command *cmd, const char *fmt, ...)
{
	struct client *c = cmd->c;
	struct buf *out;
	va_list args;

	/* The view is brought in line first, so the untagged updates go
	   before the tagged answer (RFC 3501 7.4.1: no EXPUNGE while
	   answering FETCH, STORE or SEARCH by sequence number). */
	if ((cmd->def->flags & CMD_FLAG_NO_SYNC) == 0)
		client_sync_view(c, (cmd->def->flags & CMD_FLAG_NO_EXPUNGE) == 0 || cmd->uid);
	out = client_outbuf(c);
	if (c->view != NULL && c->view->condstore && mbox_view_expunges_pending(c->view) &&
	    strncmp(fmt, "OK [HIGHESTMODSEQ", 17) != 0) {
		/* RFC 7162 3.2.10: MODSEQs were sent (by this command or
		   the updates above) while an expunge this session was not
		   told of is pending: a HIGHESTMODSEQ below it comes last,
		   for a client to cache instead of the highest MODSEQ it
		   saw; else, reconnecting with QRESYNC, it would never be
		   told of that expunge. Untagged when the tagged line has
		   another code ([EXPUNGEISSUED]). */
		buf_printf(out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
			   imap_modseq(mbox_view_safe_modseq(c->view)));
	}
	buf_append_str(out, cmd->tag);
	buf_append_c(out, ' ');
	va_start(args, fmt);
	buf_vprintf(out, fmt, args);
	va_end(args);
	buf_append(out, "\r\n", 2);
}

bool
cmd_bad(struct client_command *cmd, const char *reason)
{
	cmd_tagged(cmd, "BAD %s", reason);
	cmd->c->bad_count++;
	return true;
}

/* The string value of an astring argument (NIL is "NIL"), or NULL. */
const char *
cmd_arg_str(const struct client_command *cmd, size_t i)
{
	if (i >= cmd->count || !imap_arg_is_astring(&cmd->args[i]))
		return NULL;
	/* A NUL inside a literal would cut the string short silently. */
	if (strlen(cmd->args[i].str) != cmd->args[i].len)
		return NULL;
	return cmd->args[i].str;
}

static const char *
storage_no_text(enum storage_error err)
{
	switch (err) {
	case STORAGE_ERR_NOT_FOUND:
		return "Mailbox doesn't exist.";
	case STORAGE_ERR_EXISTS:
		return "Mailbox already exists.";
	case STORAGE_ERR_BAD_NAME:
		return "Invalid mailbox name.";
	case STORAGE_ERR_NO_SPACE:
		return "Not enough disk space.";
	case STORAGE_ERR_LIMIT:
		return "Limit reached.";
	case STORAGE_ERR_IN_USE:
		return "Mailbox is locked, try again later.";
	case STORAGE_ERR_TEMP:
	case STORAGE_ERR_NONE:
		break;
	}
	return "Internal error occurred. Refer to server log for more information.";
}

void
cmd_no_storage(struct client_command *cmd, enum storage_error err)
{
	cmd_tagged(cmd, "NO [%s] %s", storage_error_code(err), storage_no_text(err));
}

/* Mailbox names: INBOX in any case is INBOX (RFC 3501 5.1), also as the
   first level of a hierarchy; a trailing delimiter is dropped. Returns a
   malloc'ed name, or NULL if the name is not allowed. */
static char *
mailbox_name_normalize(const char *name)
{
	char *norm;
	size_t len;

	if (ascii_strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/'))
		norm = xasprintf("INBOX%s", name + 5);
	else
		norm = xstrdup(name);
	len = strlen(norm);
	if (len > 1 && norm[len - 1] == '/')
		norm[len - 1] = '\0';
	if (!storage_name_is_valid(norm)) {
		free(norm);
		return NULL;
	}
	return norm;
}

/* The mailbox name argument i, decoded from modified UTF-7 and
   normalized; answers and returns NULL if it is missing or invalid. */
char *
cmd_arg_mailbox(struct client_command *cmd, size_t i)
{
	const char *name = cmd_arg_str(cmd, i);
	char *utf8, *norm;
	size_t len;

	if (name == NULL) {
		cmd_bad(cmd, "Missing or invalid mailbox name.");
		return NULL;
	}
	if (imap_name_decode(name, cmd->c->rev2, false, &utf8) < 0) {
		cmd_tagged(cmd, cmd->c->rev2 ? "NO [CANNOT] Mailbox name is not valid UTF-8." :
			   "NO [CANNOT] Mailbox name is not valid modified UTF-7.");
		return NULL;
	}
	norm = mailbox_name_normalize(utf8);
	len = strlen(utf8);
	if (len > 1 && utf8[len - 1] == '/')
		len--;     /* normalizing drops it */
	if (norm == NULL && len > STORAGE_NAME_MAX) {
		cmd_tagged(cmd, "NO [CANNOT] Mailbox name too long (at most %d octets).",
			   STORAGE_NAME_MAX);
	} else if (norm == NULL) {
		cmd_tagged(cmd, "NO [CANNOT] Invalid mailbox name.");
	}
	free(utf8);
	return norm;
}

/* Appends a mailbox name (UTF-8) as c's client sees it, as an astring:
   modified UTF-7, or UTF-8 itself to an IMAP4rev2 session. */
void
cmd_write_mailbox_name(const struct client *c, struct buf *out, const char *name)
{
	char *enc = imap_name_encode(name, c->rev2);

	if (c->rev2)
		buf_append_imap_utf8_string(out, enc);
	else
		buf_append_imap_nstring(out, enc);
	free(enc);
}

bool
cmd_arg_number(const struct imap_arg *arg, uint64_t max, uint64_t *num_r)
{
	return arg->type == IMAP_ARG_ATOM && str_to_u64(arg->str, max, num_r) == 0;
}

/* "$": the saved search result (RFC 5182 2.1). */
static bool
is_saved_ref(const char *setstr)
{
	return setstr[0] == '$' && setstr[1] == '\0';
}

int
cmd_parse_uidset(struct client_command *cmd, const char *setstr, uint32_t star,
		 struct seqset *set_r)
{
	i_zero(set_r);
	if (is_saved_ref(setstr)) {
		seqset_copy(set_r, &cmd->c->searchres);
		return 0;
	}
	return seqset_parse(setstr, star, set_r);
}

/* The view's sequence numbers that the set names: by number, or by UID;
   "$" names the saved search result, whichever the command (RFC 5182
   2.1: by UID, so what was expunged since is not named). For numbers past
   the end returns -1 (BAD, RFC 3501 9 seq-number). */
int
cmd_collect_seqs(struct client_command *cmd, const char *setstr, uint32_t **seqs_r,
		 size_t *count_r)
{
	const struct mbox_view *view = cmd->c->view;
	uint32_t max_uid = mbox_view_max_uid(view);
	struct seqset set = { 0 };
	uint32_t *seqs = NULL;
	size_t count = 0, alloc = 0;
	bool by_uid = cmd->uid || is_saved_ref(setstr);

	if (cmd_parse_uidset(cmd, setstr, by_uid ? max_uid : (uint32_t)view->count, &set) < 0)
		return -1;
	if (by_uid) {
		for (size_t s = 1; s <= view->count; s++) {
			if (!seqset_contains(&set, mbox_view_uid(view, (uint32_t)s)))
				continue;
			xgrow(&seqs, &alloc, count + 1, sizeof(*seqs));
			seqs[count++] = (uint32_t)s;
		}
	} else {
		for (size_t r = 0; r < set.count; r++) {
			if (set.ranges[r].lo == 0 || set.ranges[r].hi > view->count) {
				seqset_free(&set);
				free(seqs);
				return -1;
			}
			for (uint64_t s = set.ranges[r].lo; s <= set.ranges[r].hi; s++) {
				xgrow(&seqs, &alloc, count + 1, sizeof(*seqs));
				seqs[count++] = (uint32_t)s;
			}
		}
	}
	seqset_free(&set);
	*seqs_r = seqs;
	*count_r = count;
	return 0;
}

static const struct cmd_def commands[] = {
	{ .name = "CAPABILITY", .func = cmd_capability, .states = ST_ANY,
	  .flags = CMD_FLAG_NO_ARGS },
	{ .name = "NOOP", .func = cmd_noop, .states = ST_ANY, .flags = CMD_FLAG_NO_ARGS },
	{ .name = "LOGOUT", .func = cmd_logout, .states = ST_ANY,
	  .flags = CMD_FLAG_NO_ARGS | CMD_FLAG_NO_SYNC },
	{ .name = "ID", .func = cmd_id, .states = ST_ANY },
	{ .name = "STARTTLS", .func = cmd_starttls, .states = ST_NOT_AUTH,
	  .flags = CMD_FLAG_NO_ARGS },
	{ .name = "LOGIN", .func = cmd_login, .states = ST_NOT_AUTH },
	{ .name = "AUTHENTICATE", .func = cmd_authenticate, .states = ST_NOT_AUTH },
	{ .name = "ENABLE", .func = cmd_enable, .states = ST_AUTH | ST_SELECTED },
	{ .name = "COMPRESS", .func = cmd_compress, .states = ST_AUTH | ST_SELECTED },
	{ .name = "NAMESPACE", .func = cmd_namespace, .states = ST_AUTH | ST_SELECTED,
	  .flags = CMD_FLAG_NO_ARGS },
	{ .name = "SELECT", .func = cmd_select, .states = ST_AUTH | ST_SELECTED },
	{ .name = "EXAMINE", .func = cmd_select, .states = ST_AUTH | ST_SELECTED },
	{ .name = "CREATE", .func = cmd_create, .states = ST_AUTH | ST_SELECTED },
	{ .name = "DELETE", .func = cmd_delete, .states = ST_AUTH | ST_SELECTED },
	{ .name = "RENAME", .func = cmd_rename, .states = ST_AUTH | ST_SELECTED },
	{ .name = "SUBSCRIBE", .func = cmd_subscribe, .states = ST_AUTH | ST_SELECTED },
	{ .name = "UNSUBSCRIBE", .func = cmd_subscribe, .states = ST_AUTH | ST_SELECTED },
	{ .name = "LIST", .func = cmd_list, .states = ST_AUTH | ST_SELECTED },
	{ .name = "LSUB", .func = cmd_list, .states = ST_AUTH | ST_SELECTED },
	{ .name = "STATUS", .func = cmd_status, .states = ST_AUTH | ST_SELECTED },
	{ .name = "APPEND", .func = cmd_append, .states = ST_AUTH | ST_SELECTED },
	{ .name = "GETQUOTA", .func = cmd_getquota, .states = ST_AUTH | ST_SELECTED },
	{ .name = "GETQUOTAROOT", .func = cmd_getquotaroot, .states = ST_AUTH | ST_SELECTED },
	{ .name = "SETQUOTA", .func = cmd_setquota, .states = ST_AUTH | ST_SELECTED },
	{ .name = "IDLE", .func = cmd_idle, .states = ST_AUTH | ST_SELECTED,
	  .flags = CMD_FLAG_NO_ARGS },
	{ .name = "NOTIFY", .func = cmd_notify, .states = ST_AUTH | ST_SELECTED },
	{ .name = "CHECK", .func = cmd_check, .states = ST_SELECTED, .flags = CMD_FLAG_NO_ARGS },
	{ .name = "CLOSE", .func = cmd_close, .states = ST_SELECTED, .flags = CMD_FLAG_NO_ARGS },
	{ .name = "UNSELECT", .func = cmd_close, .states = ST_SELECTED, .flags = CMD_FLAG_NO_ARGS },
	{ .name = "EXPUNGE", .func = cmd_expunge, .states = ST_SELECTED, .flags = CMD_FLAG_UID },
	{ .name = "SEARCH", .func = cmd_search, .states = ST_SELECTED,
	  .flags = CMD_FLAG_NO_EXPUNGE | CMD_FLAG_UID },
	{ .name = "SORT", .func = cmd_sort, .states = ST_SELECTED,
	  .flags = CMD_FLAG_NO_EXPUNGE | CMD_FLAG_UID },
	{ .name = "THREAD", .func = cmd_thread, .states = ST_SELECTED,
	  .flags = CMD_FLAG_NO_EXPUNGE | CMD_FLAG_UID },
	{ .name = "FETCH", .func = cmd_fetch, .states = ST_SELECTED,
	  .flags = CMD_FLAG_NO_EXPUNGE | CMD_FLAG_UID },
	{ .name = "STORE", .func = cmd_store, .states = ST_SELECTED,
	  .flags = CMD_FLAG_NO_EXPUNGE | CMD_FLAG_UID },
	{ .name = "COPY", .func = cmd_copy, .states = ST_SELECTED, .flags = CMD_FLAG_UID },
	{ .name = "MOVE", .func = cmd_copy, .states = ST_SELECTED, .flags = CMD_FLAG_UID },
};

static const struct cmd_def *
cmd_def_find(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(commands); i++) {
		if (ascii_strcasecmp(name, commands[i].name) == 0)
			return &commands[i];
	}
	return NULL;
}

static unsigned
state_bit(enum client_state state)
{
	switch (state) {
	case CLIENT_NOT_AUTH:
		return ST_NOT_AUTH;
	case CLIENT_AUTH:
		return ST_AUTH;
	case CLIENT_SELECTED:
		return ST_SELECTED;
	case CLIENT_LOGOUT:
		break;
	}
	return 0;
}

static struct imap_arg *
command_args_copy(const struct imap_arg *args, size_t count)
{
	struct imap_arg *copy = xcalloc(count == 0 ? 1 : count, sizeof(*copy));

	for (size_t i = 0; i < count; i++) {
		copy[i].type = args[i].type;
		copy[i].len = args[i].len;
		if (args[i].str != NULL) {
			copy[i].str = xmalloc(args[i].len + 1);
			memcpy(copy[i].str, args[i].str, args[i].len);
			copy[i].str[args[i].len] = '\0';
		}
		if (args[i].list != NULL) {
			copy[i].list = command_args_copy(args[i].list, args[i].list_count);
			copy[i].list_count = args[i].list_count;
		}
	}
	return copy;
}

static void
command_args_free(struct imap_arg *args, size_t count)
{
	if (args == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(args[i].str);
		command_args_free(args[i].list, args[i].list_count);
	}
	free(args);
}

static void
client_command_free(struct client_command **_cmd)
{
	struct client_command *cmd = *_cmd;

	if (cmd == NULL)
		return;
	*_cmd = NULL;
	mailbox_waiter_cancel(&cmd->waiter);
	storage_call_free(&cmd->call);
	if (cmd->context_free != NULL)
		cmd->context_free(cmd->context);
	command_args_free(cmd->saved_args, cmd->saved_count);
	free(cmd->saved_name);
	free(cmd->tag);
	free(cmd);
}

/* The mailbox named by argument i that the command must wait for: if
   the command opens it (opens), one being opened by a job, or whose
   first open is heavy (hub_open_start() starts that job now); if it
   writes it (writes), one busy with a job. NULL if none (or if the name
   is not valid: the handler answers that). selects: a read-write
   SELECT (the sync it waits for takes \Recent for it). */
static struct mailbox *
command_busy_arg(struct client_command *cmd, size_t i, bool opens, bool writes, bool selects)
{
	const struct client *c = cmd->c;
	const char *name = cmd_arg_str(cmd, i);
	struct mailbox *mbox = NULL;
	char *utf8, *norm;

	if (name == NULL || imap_name_decode(name, c->rev2, false, &utf8) < 0)
		return NULL;
	norm = mailbox_name_normalize(utf8);
	free(utf8);
	/* A command that waited once opens it itself: a job that failed
	   (no such mailbox) is not started again. */
	if (norm != NULL && opens && cmd->saved_args == NULL) {
		mbox = hub_open_start(c->gen->hub, c->sid, c->user, norm);
		/* an open that came after the command is the sync it needs */
		if (mbox != NULL && cmd->arg_sync_ticket == 0)
			cmd->arg_sync_ticket = mailbox_sync_ticket(mbox);
	}
	if (norm != NULL && mbox == NULL && writes) {
		mbox = hub_find(c->gen->hub, c->user, norm);
		if (mbox != NULL && !mailbox_is_busy(mbox))
			mbox = NULL;
	}
	/* A mailbox open here that it opens is in line with what other
	   servers committed before it came (what SELECT, EXAMINE and
	   STATUS report; whether the store can be reached). */
	if (norm != NULL && mbox == NULL && opens) {
		mbox = hub_find(c->gen->hub, c->user, norm);
		if (mbox != NULL && selects)
			mailbox_want_recent(mbox);
		if (mbox != NULL && (!mailbox_sync_in_job(mbox) ||
				     mailbox_catch_up(mbox, &cmd->arg_sync_ticket, c->sid)))
			mbox = NULL;
	}
	free(norm);
	return mbox;
}

/* The mailbox the command must wait for before it runs, or NULL: a
   mailbox busy with a job (mailbox.h) that it would write (the selected
   one for STORE, EXPUNGE, CLOSE and MOVE, the named one for APPEND,
   COPY, MOVE, DELETE and RENAME), or one it opens (SELECT, EXAMINE,
   STATUS, APPEND, COPY, MOVE) whose first open works in a job. Reads of
   a mailbox busy with an expunge (FETCH, SEARCH, STATUS, SELECT, NOOP,
   IDLE) go on. */
static struct mailbox *
command_busy_target(struct client_command *cmd)
{
	const struct client *c = cmd->c;
	const char *name = cmd->def->name;
	bool selected = false, opens = false, writes = true;
	bool selects = strcmp(name, "SELECT") == 0;
	ssize_t arg = -1, arg2 = -1;
	struct mailbox *mbox = NULL;

	if (c->user == NULL)
		return NULL;
	if (strcmp(name, "STORE") == 0 || strcmp(name, "EXPUNGE") == 0 ||
	    strcmp(name, "CLOSE") == 0)
		selected = true;
	else if (strcmp(name, "SELECT") == 0 || strcmp(name, "EXAMINE") == 0 ||
		 strcmp(name, "STATUS") == 0) {
		arg = 0;
		opens = true;
		writes = false;
	} else if (strcmp(name, "APPEND") == 0) {
		arg = 0;
		opens = true;
	} else if (strcmp(name, "DELETE") == 0)
		arg = 0;
	else if (strcmp(name, "COPY") == 0) {
		arg = 1;
		opens = true;
	} else if (strcmp(name, "MOVE") == 0) {
		selected = true;
		arg = 1;
		opens = true;
	} else if (strcmp(name, "RENAME") == 0) {
		arg = 0;
		arg2 = 1;
	}
	if (selected && c->mbox != NULL && mailbox_is_busy(c->mbox))
		return c->mbox;
	if (arg >= 0)
		mbox = command_busy_arg(cmd, (size_t)arg, opens, writes, selects);
	if (mbox == NULL && arg2 >= 0)
		mbox = command_busy_arg(cmd, (size_t)arg2, opens, writes, false);
	/* Changes made by other processes show up before the command (a
	   sync in a job waited for, or made now). */
	if (mbox == NULL && c->mbox != NULL &&
	    !mailbox_catch_up(c->mbox, &cmd->sync_ticket, c->sid))
		mbox = c->mbox;
	return mbox;
}

static void command_wake(void *ctx);

/* The command waits (as c->cmd, reading nothing else): it keeps its own
   copy of its name and arguments, which the parser reuses. */
static void
command_park(struct client_command *cmd)
{
	if (cmd->saved_args != NULL)
		return;
	cmd->saved_name = xstrdup(cmd->name);
	cmd->saved_args = command_args_copy(cmd->args, cmd->count);
	cmd->saved_count = cmd->count;
	cmd->name = cmd->saved_name;
	cmd->args = cmd->saved_args;
}

/* The call made in a worker for the command is made. */
static void
command_call_done(void *ctx)
{
	struct client_command *cmd = ctx;

	cmd->call_done = true;
	command_wake(cmd);
}

int
cmd_storage_names(struct client_command *cmd, bool subs, struct strlist *list_r,
		  enum storage_error *err_r)
{
	struct client *c = cmd->c;

	if (cmd->call != NULL && cmd->call_done && cmd->call_kind == STORAGE_CALL_NAMES)
		return storage_names_take(cmd->call, subs, list_r, err_r);
	return subs ? storage_subscriptions_read(&c->gen->storage, c->sid, c->user, list_r,
						 err_r) :
		      storage_list(&c->gen->storage, c->sid, c->user, list_r, err_r);
}

bool
cmd_storage_change_done(const struct client_command *cmd)
{
	return cmd->call != NULL && cmd->call_done && cmd->call_kind != STORAGE_CALL_NAMES;
}

int
cmd_storage_change(struct client_command *cmd, const struct storage_call_args *a,
		   enum storage_error *err_r)
{
	struct client *c = cmd->c;
	int ret;

	if (cmd_storage_change_done(cmd)) {
		ret = storage_call_result(cmd->call, err_r);
		storage_call_free(&cmd->call);
		return ret;
	}
	/* (the names read for it before are taken) */
	storage_call_free(&cmd->call);
	cmd->call_done = false;
	cmd->call = storage_call_start(&c->gen->storage, c->sid, c->user, a, command_call_done,
				       cmd);
	if (cmd->call != NULL) {
		cmd->call_kind = a->kind;
		command_park(cmd);
		log_debug(c->sid, "command %s waits for its change", cmd->def->name);
		return 1;
	}
	return storage_call_now(&c->gen->storage, c->sid, c->user, a, err_r);
}

/* Whether the handler reads the user's names or subscriptions. */
static bool
command_reads_names(const struct client_command *cmd)
{
	return cmd->def->func == cmd_list || cmd->def->func == cmd_rename ||
	       cmd->def->func == cmd_subscribe;
}

/* Runs the command's handler, unless a mailbox it would write is busy
   or what it reads is being read in a worker: then the command waits
   (command_park()) until the mailbox is free or the reading done, and
   runs then. Returns as cmd_func. */
static bool
command_run(struct client_command *cmd)
{
	struct client *c = cmd->c;
	struct mailbox *busy = command_busy_target(cmd);

	if (busy != NULL) {
		command_park(cmd);
		log_debug(c->sid, "command %s waits for a busy mailbox", cmd->def->name);
		cmd->waiter = mailbox_wait_idle(busy, command_wake, cmd);
		return false;
	}
	if (cmd->call == NULL && c->user != NULL && command_reads_names(cmd)) {
		const struct storage_call_args a = { .kind = STORAGE_CALL_NAMES };

		cmd->call = storage_call_start(&c->gen->storage, c->sid, c->user, &a,
					       command_call_done, cmd);
		if (cmd->call != NULL) {
			cmd->call_kind = STORAGE_CALL_NAMES;
			command_park(cmd);
			log_debug(c->sid, "command %s waits for the mailbox names",
				  cmd->def->name);
			return false;
		}
	}
	/* The handler writes its tagged answer last, through cmd_tagged(),
	   which brings the view in line first. */
	return cmd->def->func(cmd);
}

/* The mailbox a waiting command needs is free (the waiter is gone). */
static void
command_wake(void *ctx)
{
	struct client_command *cmd = ctx;

	cmd->waiter = NULL;
	if (command_run(cmd))
		client_command_finish(cmd);
}

/* A command refused before its handler runs: no view update goes with
   the answer. */
static void
command_refuse(struct client_command *cmd, const char *reason)
{
	client_send_tagged(cmd->c, cmd->tag, "BAD %s", reason);
	cmd->c->bad_count++;
}

/* Finds the command's definition and checks that it may run; answers
   and returns false if not. */
static bool
command_lookup(struct client_command *cmd, const struct imap_command *parsed)
{
	struct client *c = cmd->c;
	const struct cmd_def *def;

	if (ascii_strcasecmp(parsed->name, "UID") == 0) {
		if (parsed->arg_count == 0 || parsed->args[0].type != IMAP_ARG_ATOM ||
		    (def = cmd_def_find(parsed->args[0].str)) == NULL ||
		    (def->flags & CMD_FLAG_UID) == 0) {
			command_refuse(cmd, "UID needs FETCH, STORE, SEARCH, SORT, THREAD, COPY, "
					    "MOVE or EXPUNGE.");
			return false;
		}
		cmd->uid = true;
		cmd->name = parsed->args[0].str;
		cmd->args++;
		cmd->count--;
	} else
		def = cmd_def_find(cmd->name);
	cmd->def = def;
	if (def == NULL) {
		command_refuse(cmd, "Unknown command.");
		return false;
	}
	if ((def->states & state_bit(c->state)) == 0) {
		if (c->state == CLIENT_NOT_AUTH)
			command_refuse(cmd, "Log in first.");
		else if (c->state == CLIENT_AUTH && def->states == ST_SELECTED)
			command_refuse(cmd, "Select a mailbox first.");
		else
			command_refuse(cmd, "Command not valid in this state.");
		return false;
	}
	/* RFC 9586 3: FETCH, STORE, SEARCH, SORT, THREAD, COPY and MOVE
	   take sequence numbers; UIDONLY leaves only their UID forms
	   (EXPUNGE takes none). */
	if (c->uidonly && !cmd->uid && (def->flags & CMD_FLAG_UID) != 0 &&
	    strcmp(def->name, "EXPUNGE") != 0) {
		command_refuse(cmd, "[UIDREQUIRED] UIDONLY is enabled: use the UID form.");
		return false;
	}
	if ((def->flags & CMD_FLAG_NO_ARGS) != 0 && cmd->count > 0) {
		command_refuse(cmd, "This command takes no arguments.");
		return false;
	}
	return true;
}

bool
client_command_start(struct client *c, const struct imap_command *parsed)
{
	struct client_command *cmd = xcalloc(1, sizeof(*cmd));

	cmd->c = c;
	cmd->tag = xstrdup(parsed->tag);
	cmd->name = parsed->name;
	cmd->args = parsed->args;
	cmd->count = parsed->arg_count;
	if (!command_lookup(cmd, parsed)) {
		client_command_free(&cmd);
		return true;
	}
	log_debug(c->sid, "command %s%s", cmd->uid ? "UID " : "", cmd->def->name);
	c->cmd = cmd;
	if (command_run(cmd)) {
		client_command_free(&c->cmd);
		return true;
	}
	/* The parser reuses them (a command waiting for a busy mailbox has
	   its own copy). */
	if (cmd->saved_args == NULL) {
		cmd->name = NULL;
		cmd->args = NULL;
		cmd->count = 0;
	}
	return false;
}

void
client_command_input(struct client *c, const char *line, size_t len)
{
	struct client_command *cmd = c->cmd;

	if (cmd->input(cmd, line, len))
		client_command_free(&c->cmd);
}

bool
client_command_wants_input(const struct client *c)
{
	return c->cmd != NULL && c->cmd->input != NULL;
}

bool
client_command_wants_output(const struct client *c)
{
	return c->cmd != NULL && c->cmd->output != NULL;
}

bool
client_command_live_updates(const struct client *c)
{
	return c->cmd != NULL && c->cmd->live_updates;
}

const char *
client_command_tag(const struct client *c)
{
	return c->cmd != NULL ? c->cmd->tag : "*";
}

bool
client_command_output(struct client *c)
{
	struct client_command *cmd = c->cmd;

	if (!cmd->output(cmd))
		return false;
	client_command_free(&c->cmd);
	return true;
}

void
client_command_finish(struct client_command *cmd)
{
	struct client *c = cmd->c;

	client_command_free(&c->cmd);
	client_resume(c);
}

void
client_command_abort(struct client *c)
{
	client_command_free(&c->cmd);
}
