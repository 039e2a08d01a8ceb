/* cmd_message.c: the commands that add, copy and remove messages
   (RFC 3501 6.3.11 APPEND, 6.4 CHECK CLOSE EXPUNGE COPY, UNSELECT
   RFC 3691, MOVE RFC 6851, UIDPLUS RFC 4315); STORE is in cmd_store.c. */
#include "imap_cmd.h"
#include "imap_client.h"
#include "imap_view.h"
#include "mime.h"
#include "imap_util.h"
#include "fetch.h"
#include "log.h"
#include "message.h"
#include "seqset.h"

#include <stdlib.h>
#include <time.h>

static void
keywords_remap(const struct mbox_state *from, struct mbox_state *to, uint64_t keywords,
	       uint64_t *keywords_r)
{
	*keywords_r = 0;
	for (unsigned i = 0; i < from->keyword_count && i < 64; i++) {
		if ((keywords & ((uint64_t)1 << i)) == 0)
			continue;
		int idx = mbox_state_keyword(to, from->keywords[i], true);
		if (idx >= 0)
			*keywords_r |= (uint64_t)1 << idx;
	}
}

/* One message of an APPEND: its flag list and date-time (each NULL when
   not given) and its data. */
struct append_msg {
	const struct imap_arg *flags, *date, *data;
	uint8_t flag_bits;
	uint64_t keywords;
	int64_t time;
	int32_t tz;
};

/* The messages of "APPEND mailbox 1*([flags] [date-time] literal)" (RFC
   3502 MULTIAPPEND: one or more). Returns their count (at most max), or
   0 with a static reason. */
static size_t
append_parse(struct client_command *cmd, struct append_msg *msgs, size_t max,
	     const char **error_r)
{
	size_t i = 1, n = 0;

	while (i < cmd->count) {
		struct append_msg *m = &msgs[n];

		if (n == max) {
			*error_r = "APPEND: too many messages in one command.";
			return 0;
		}
		i_zero(m);
		if (cmd->args[i].type == IMAP_ARG_LIST)
			m->flags = &cmd->args[i++];
		if (i + 1 < cmd->count && cmd->args[i].type == IMAP_ARG_STRING &&
		    (cmd->args[i + 1].type == IMAP_ARG_LITERAL ||
		     cmd->args[i + 1].type == IMAP_ARG_STRING))
			m->date = &cmd->args[i++];
		if (i >= cmd->count || (cmd->args[i].type != IMAP_ARG_LITERAL &&
					cmd->args[i].type != IMAP_ARG_STRING)) {
			*error_r = "APPEND: invalid arguments.";
			return 0;
		}
		m->data = &cmd->args[i++];
		if (m->date != NULL) {
			if (message_parse_imap_datetime(m->date->str, &m->time, &m->tz) < 0) {
				*error_r = "APPEND: invalid date-time.";
				return 0;
			}
		} else {
			struct tm tm;
			time_t now = time(NULL);

			m->time = (int64_t)now;
			localtime_r(&now, &tm);
			m->tz = (int32_t)(tm.tm_gmtoff / 60);
		}
		n++;
	}
	if (n == 0)
		*error_r = "APPEND needs a mailbox and a message.";
	return n;
}

/* Answers a single APPEND once its message is stored (ret 0, uid) or not. */
static void
append_answer(struct client_command *cmd, struct mailbox *mbox, int ret, uint32_t uid,
	      enum storage_error err, const char *data, size_t len)
{
	struct client *c = cmd->c;
	const struct mbox_state *st = mailbox_state(mbox);
	ssize_t idx;

	if (ret < 0) {
		cmd_no_storage(cmd, err);
		return;
	}
	idx = mbox_state_find(st, uid);
	if (idx >= 0)
		fetch_cache_stored(mailbox_mcache(mbox), st, &st->mails[idx], data, len);
	mailbox_changed(mbox, c->view);
	cmd_tagged(cmd, "OK [APPENDUID %u %u] Append completed.", st->uidvalidity, uid);
}

/* A single APPEND whose message is written in a job (mailbox_append_start()):
   the command waits as c->cmd and answers when it is stored. */
struct append_wait {
	struct client_command *cmd;
	struct mailbox *mbox;
	struct mailbox_append_op *op;
	/* The message as stored (a copy: the command's arguments are the
	   parser's again once it waits), for the listing cache. */
	struct buf msg;
};

/* The command ends (answered, or the session went away first: then the
   append goes on alone). */
static void
append_wait_free(void *context)
{
	struct append_wait *w = context;

	mailbox_append_detach(&w->op);
	buf_free(&w->msg);
	mailbox_unref(&w->mbox);
	free(w);
}

static void
append_wait_done(void *ctx, int ret, uint32_t uid, enum storage_error err)
{
	struct append_wait *w = ctx;
	struct client_command *cmd = w->cmd;

	w->op = NULL;
	append_answer(cmd, w->mbox, ret, uid, err, w->msg.data, w->msg.len);
	client_command_finish(cmd);
}

/* Stores the one message m of an APPEND into mbox (a reference the call
   takes). Returns true if answered, false if the command waits. */
static bool
append_one(struct client_command *cmd, struct mailbox *mbox, const struct append_msg *m)
{
	struct client *c = cmd->c;
	struct append_wait *w = xcalloc(1, sizeof(*w));
	enum storage_error err;
	uint32_t uid = 0;
	int ret;

	w->cmd = cmd;
	w->mbox = mbox;
	/* A binary part the store could not give back as sent goes in as
	   base64 (RFC 3516 4.3). */
	if (!mime_binary_to_base64(m->data->str, m->data->len, &w->msg))
		buf_append(&w->msg, m->data->str, m->data->len);
	ret = mailbox_append_start(mbox, w->msg.data, w->msg.len, m->flag_bits, m->keywords,
				   m->time, m->tz, append_wait_done, w, &w->op, &uid, &err,
				   c->sid);
	if (ret > 0) {
		cmd->context = w;
		cmd->context_free = append_wait_free;
		return false;
	}
	append_answer(cmd, mbox, ret, uid, err, w->msg.data, w->msg.len);
	append_wait_free(w);
	return true;
}

/* At most this many messages in one MULTIAPPEND (their octets together
   are bounded by limits.max_literal already). */
#define APPEND_MAX_MESSAGES 1000

/* APPEND (RFC 3501 6.3.11) and MULTIAPPEND (RFC 3502): every message or
   none. A message that cannot be stored takes back those stored before
   it in this command (they are expunged, never seen by anyone: the
   others' views hear of them only after the command). */
bool
cmd_append(struct client_command *cmd)
{
	struct client *c = cmd->c;
	struct append_msg *msgs;
	struct seqset stored = { 0 };
	struct buf converted = BUF_INIT;
	enum storage_error err = STORAGE_ERR_NONE;
	struct mailbox *mbox;
	const char *error = NULL;
	uint32_t uid;
	size_t count, done = 0;
	char *name;
	int ret = 0;

	if (cmd->count < 2)
		return cmd_bad(cmd, "APPEND needs a mailbox and a message.");
	/* Each message takes one argument at least. */
	msgs = xcalloc(cmd->count, sizeof(*msgs));
	count = append_parse(cmd, msgs, cmd->count - 1 < APPEND_MAX_MESSAGES ? cmd->count - 1 :
					APPEND_MAX_MESSAGES, &error);
	if (count == 0) {
		free(msgs);
		return cmd_bad(cmd, error);
	}
	for (size_t k = 0; k < count; k++) {
		if (msgs[k].data->len == 0) {
			free(msgs);
			cmd_tagged(cmd, "NO Can't save an empty message.");
			return true;
		}
	}
	if ((name = cmd_arg_mailbox(cmd, 0)) == NULL) {
		free(msgs);
		return true;
	}
	if (mailbox_open(c->gen->hub, c->sid, c->user, name, &mbox, &err) < 0) {
		if (err == STORAGE_ERR_NOT_FOUND)
			cmd_tagged(cmd, "NO [TRYCREATE] Mailbox doesn't exist.");
		else
			cmd_no_storage(cmd, err);
		free(name);
		free(msgs);
		return true;
	}
	for (size_t k = 0; k < count && ret == 0; k++) {
		struct append_msg *m = &msgs[k];

		if (m->flags != NULL &&
		    (ret = imap_parse_flags(m->flags, mailbox_state(mbox), true, &m->flag_bits,
					    &m->keywords, &error)) < 0)
			break;
	}
	if (ret < 0) {
		if (ret == IMAP_FLAGS_NO_ROOM)
			cmd_tagged(cmd, "NO [LIMIT] %s.", error);
		else
			cmd_bad(cmd, error);
		goto out;
	}
	{
		uint64_t octets = 0;

		/* Before anything is written (RFC 9208 5.1): the whole
		   MULTIAPPEND must fit. */
		for (size_t k = 0; k < count; k++)
			octets += msgs[k].data->len;
		if (cmd_quota_check(cmd, octets, count) < 0)
			goto out;
	}
	if (count == 1) {
		bool answered = append_one(cmd, mbox, &msgs[0]);

		free(name);
		free(msgs);
		return answered;
	}
	for (; done < count; done++) {
		struct append_msg *m = &msgs[done];
		const struct mbox_state *st;
		const char *data = m->data->str;
		size_t len = m->data->len;
		ssize_t idx;

		/* A binary part the store could not give back as sent goes in
		   as base64 (RFC 3516 4.3). */
		if (mime_binary_to_base64(data, len, &converted)) {
			data = converted.data;
			len = converted.len;
		}
		if (mailbox_append(mbox, data, len, m->flag_bits, m->keywords, m->time, m->tz,
				   &uid, &err, c->sid) < 0)
			break;
		seqset_add_range(&stored, uid, uid);
		st = mailbox_state(mbox);
		idx = mbox_state_find(st, uid);
		if (idx >= 0)
			fetch_cache_stored(mailbox_mcache(mbox), st, &st->mails[idx], data, len);
	}
	if (done < count) {
		enum storage_error ignored;

		/* All or nothing (RFC 3502): the ones stored go again. */
		if (done > 0 && mailbox_expunge_uids(mbox, &stored, &ignored, c->sid) < 0)
			log_error(c->sid, "append: %zu of %zu messages stored and not taken back",
				  done, count);
		if (done > 0)
			mailbox_changed(mbox, c->view);
		cmd_no_storage(cmd, err);
		goto out;
	}
	mailbox_changed(mbox, c->view);
	{
		struct buf uids = BUF_INIT;

		seqset_write(&stored, &uids);
		cmd_tagged(cmd, "OK [APPENDUID %u %s] Append completed.",
			   mailbox_state(mbox)->uidvalidity, uids.data);
		buf_free(&uids);
	}
out:
	buf_free(&converted);
	seqset_free(&stored);
	mailbox_unref(&mbox);
	free(name);
	free(msgs);
	return true;
}

/* An expunge (EXPUNGE, CLOSE, MOVE) that works in a job (mailbox.h):
   the command waits as c->cmd and answers when it is done. */
typedef void expunge_answer_func(struct client_command *cmd, int ret, enum storage_error err,
				 uint64_t modseq_before);
struct expunge_wait {
	struct client_command *cmd;
	struct mailbox_op *op;
	uint64_t modseq_before;
	expunge_answer_func *answer;
};

/* The command ends (answered, or the session went away first: then the
   job goes on alone and commits). */
static void
expunge_wait_free(void *context)
{
	struct expunge_wait *w = context;

	mailbox_op_detach(&w->op);
	free(w);
}

static void
expunge_done(void *ctx, int ret, enum storage_error err)
{
	struct expunge_wait *w = ctx;
	struct client_command *cmd = w->cmd;

	w->op = NULL;
	w->answer(cmd, ret, err, w->modseq_before);
	client_command_finish(cmd);
}

/* Expunges the selected mailbox's messages (with \Deleted if
   deleted_only, and in uids unless NULL), then answers with answer().
   Returns true if it is done (answered), false if the command waits for
   the job. */
static bool
expunge_run(struct client_command *cmd, const struct seqset *uids, bool deleted_only,
	    expunge_answer_func *answer)
{
	struct client *c = cmd->c;
	struct expunge_wait *w = xcalloc(1, sizeof(*w));
	enum storage_error err;
	int ret;

	w->cmd = cmd;
	w->modseq_before = mailbox_state(c->mbox)->highest_modseq;
	w->answer = answer;
	ret = mailbox_expunge_start(c->mbox, uids, deleted_only, expunge_done, w, &w->op, &err,
				    c->sid);
	if (ret > 0) {
		cmd->context = w;
		cmd->context_free = expunge_wait_free;
		return false;
	}
	answer(cmd, ret, err, w->modseq_before);
	free(w);
	return true;
}

bool
cmd_check(struct client_command *cmd)
{
	cmd_tagged(cmd, "OK Check completed.");
	return true;
}

static void
close_answer(struct client_command *cmd, int ret, enum storage_error err, uint64_t before)
{
	struct client *c = cmd->c;

	if (ret == 0)
		mailbox_changed(c->mbox, c->view);
	client_unselect(c);
	cmd_tagged(cmd, "OK Close completed.");
}

bool
cmd_close(struct client_command *cmd)
{
	struct client *c = cmd->c;
	bool unselect = ascii_strcasecmp(cmd->name, "UNSELECT") == 0;

	if (cmd->count != 0)
		return cmd_bad(cmd, "No arguments expected.");
	/* CLOSE expunges silently (RFC 3501 6.4.2). */
	if (!unselect && !c->view->readonly)
		return expunge_run(cmd, NULL, true, close_answer);
	client_unselect(c);
	cmd_tagged(cmd, "OK Unselect completed.");
	return true;
}

static void
expunge_answer(struct client_command *cmd, int ret, enum storage_error err, uint64_t before)
{
	struct client *c = cmd->c;

	if (ret < 0) {
		cmd_no_storage(cmd, err);
		return;
	}
	mailbox_changed(c->mbox, c->view);
	client_sync_view(c, true);
	if (c->qresync && mailbox_state(c->mbox)->highest_modseq != before)
		/* RFC 7162 3.2.7 and 3.2.9 */
		cmd_tagged(cmd, "OK [HIGHESTMODSEQ %llu] Expunge completed.",
		       imap_modseq(mailbox_state(c->mbox)->highest_modseq));
	else
		cmd_tagged(cmd, "OK Expunge completed.");
}

bool
cmd_expunge(struct client_command *cmd)
{
	struct client *c = cmd->c;
	struct seqset uids = { 0 };
	bool done;

	if (c->view->readonly) {
		cmd_tagged(cmd, "NO [READ-ONLY] Mailbox is read-only.");
		return true;
	}
	if (cmd->uid) {
		if (cmd->count != 1 || cmd->args[0].type != IMAP_ARG_ATOM ||
		    cmd_parse_uidset(cmd, cmd->args[0].str, mailbox_state(c->mbox)->uidnext,
				     &uids) < 0)
			return cmd_bad(cmd, "UID EXPUNGE needs a UID set.");
	} else if (cmd->count != 0)
		return cmd_bad(cmd, "EXPUNGE takes no arguments.");
	done = expunge_run(cmd, cmd->uid ? &uids : NULL, true, expunge_answer);
	seqset_free(&uids);
	return done;
}

/* Appends the messages seqs of the view to dest, in order, with their
   flags and dates; the UIDs of the originals and of the copies are added
   to src_uids and dst_uids. Returns 0, or -1 with *err_r at the first
   failure (what was copied before stays). */
static int
copy_messages(struct client *c, struct mailbox *dest, const uint32_t *seqs, size_t count,
	      struct seqset *src_uids, struct seqset *dst_uids, enum storage_error *err_r)
{
	struct mbox_state *src = mailbox_state(c->mbox), *dst = mailbox_state(dest);
	struct buf msg = BUF_INIT;
	int ret = 0;

	for (size_t i = 0; i < count; i++) {
		ssize_t idx = mbox_view_index(c->view, seqs[i]);
		if (idx < 0)
			continue;
		/* A copy of the record: appending to the same mailbox may move
		   the array. */
		struct mail_rec rec = src->mails[idx];
		uint64_t keywords;
		uint32_t uid;

		buf_reset(&msg);
		if (mailbox_read(c->mbox, &rec, &msg, err_r, c->sid) < 0) {
			/* a message gone from the disk is not a missing mailbox */
			if (*err_r == STORAGE_ERR_NOT_FOUND)
				*err_r = STORAGE_ERR_TEMP;
			ret = -1;
			break;
		}
		keywords_remap(src, dst, rec.keywords, &keywords);
		if (mailbox_append(dest, msg.data, msg.len, rec.flags, keywords, rec.internal_date,
				   rec.tz_minutes, &uid, err_r, c->sid) < 0) {
			ret = -1;
			break;
		}
		fetch_cache_copy(mailbox_mcache(c->mbox), src, rec.uid, mailbox_mcache(dest), dst,
				 uid);
		seqset_add_range(src_uids, rec.uid, rec.uid);
		seqset_add_range(dst_uids, uid, uid);
		/* src may have moved if dest is the same mailbox. */
		src = mailbox_state(c->mbox);
	}
	buf_free(&msg);
	return ret;
}

static void
move_answer(struct client_command *cmd, int ret, enum storage_error err, uint64_t before)
{
	struct client *c = cmd->c;

	if (ret < 0) {
		cmd_no_storage(cmd, err);
		return;
	}
	mailbox_changed(c->mbox, c->view);
	client_sync_view(c, true);
	cmd_tagged(cmd, "OK Move completed.");
}

/* A COPY or MOVE whose copies are made in a job (mailbox_copy_start()):
   the command waits as c->cmd and answers when they are made. */
struct copy_wait {
	struct client_command *cmd;
	struct mailbox *dest;      /* referenced */
	struct mailbox_op *op;
	bool move;
	uint32_t *src_uids, *dst_uids;
	size_t count;
	/* MOVE: the originals, expunged once the selected mailbox is not
	   busy (another session's job may have come meanwhile) */
	struct seqset moved;
	struct mailbox_waiter *waiter;
};

static void
copy_wait_free(void *context)
{
	struct copy_wait *w = context;

	mailbox_op_detach(&w->op);
	mailbox_waiter_cancel(&w->waiter);
	mailbox_unref(&w->dest);
	seqset_free(&w->moved);
	free(w->src_uids);
	free(w->dst_uids);
	free(w);
}

/* MOVE, its copies made: the originals expunged (the expunge may wait
   for its job in its turn: then its wait is the command's context). */
static void
copy_move_expunge(void *ctx)
{
	struct copy_wait *w = ctx;
	struct client_command *cmd = w->cmd;
	bool done;

	w->waiter = NULL;
	cmd->context = NULL;
	cmd->context_free = NULL;
	done = expunge_run(cmd, &w->moved, false, move_answer);
	copy_wait_free(w);
	if (done)
		client_command_finish(cmd);
}

static void
copy_done(void *ctx, int ret, enum storage_error err)
{
	struct copy_wait *w = ctx;
	struct client_command *cmd = w->cmd;
	struct client *c = cmd->c;
	struct seqset src_uids = { 0 }, dst_uids = { 0 };
	struct buf set1 = BUF_INIT, set2 = BUF_INIT;
	bool done = true;

	w->op = NULL;
	if (ret < 0) {
		cmd_no_storage(cmd, err);
		client_command_finish(cmd);
		return;
	}
	for (size_t i = 0; i < w->count; i++) {
		fetch_cache_copy(mailbox_mcache(c->mbox), mailbox_state(c->mbox), w->src_uids[i],
				 mailbox_mcache(w->dest), mailbox_state(w->dest), w->dst_uids[i]);
		seqset_add_range(&src_uids, w->src_uids[i], w->src_uids[i]);
		seqset_add_range(&dst_uids, w->dst_uids[i], w->dst_uids[i]);
	}
	mailbox_changed(w->dest, c->view);
	seqset_write(&src_uids, &set1);
	seqset_write(&dst_uids, &set2);
	if (w->move) {
		/* as in cmd_copy(): the COPYUID first, then the expunge */
		client_send(c, "* OK [COPYUID %u %s %s] Moved.", mailbox_state(w->dest)->uidvalidity,
			    set1.data, set2.data);
		w->moved = src_uids;
		i_zero(&src_uids);
		done = false;
		if (mailbox_is_busy(c->mbox))
			w->waiter = mailbox_wait_idle(c->mbox, copy_move_expunge, w);
		else
			copy_move_expunge(w);
	} else {
		cmd_tagged(cmd, "OK [COPYUID %u %s %s] Copy completed.",
			   mailbox_state(w->dest)->uidvalidity, set1.data, set2.data);
	}
	seqset_free(&src_uids);
	seqset_free(&dst_uids);
	buf_free(&set1);
	buf_free(&set2);
	if (done)
		client_command_finish(cmd);
}

/* cmd_copy()'s copies, in a job. Takes dest's reference. Returns as a
   command handler. */
static bool
copy_in_job(struct client_command *cmd, struct mailbox *dest, const uint32_t *seqs,
	    size_t count, bool move)
{
	struct client *c = cmd->c;
	const struct mbox_state *src = mailbox_state(c->mbox);
	struct copy_wait *w = xcalloc(1, sizeof(*w));
	struct mail_rec *recs = xmalloc((count > 0 ? count : 1) * sizeof(*recs));
	uint64_t *keywords = xmalloc((count > 0 ? count : 1) * sizeof(*keywords));
	enum storage_error err;
	size_t n = 0;
	int ret;

	w->cmd = cmd;
	w->dest = dest;
	w->move = move;
	w->src_uids = xmalloc((count > 0 ? count : 1) * sizeof(uint32_t));
	for (size_t i = 0; i < count; i++) {
		ssize_t idx = mbox_view_index(c->view, seqs[i]);

		if (idx < 0)
			continue;
		recs[n] = src->mails[idx];
		keywords_remap(src, mailbox_state(dest), recs[n].keywords, &keywords[n]);
		w->src_uids[n++] = src->mails[idx].uid;
	}
	w->count = n;
	w->dst_uids = xcalloc(n > 0 ? n : 1, sizeof(uint32_t));
	if (n == 0) {
		cmd_tagged(cmd, "OK %s completed (no messages).", move ? "Move" : "Copy");
		ret = 0;
	} else {
		ret = mailbox_copy_start(c->mbox, dest, recs, keywords, n, w->dst_uids, copy_done, w,
					 &w->op, &err, c->sid);
		if (ret < 0)
			cmd_no_storage(cmd, err);
	}
	free(recs);
	free(keywords);
	if (ret <= 0) {
		copy_wait_free(w);
		return true;
	}
	cmd->context = w;
	cmd->context_free = copy_wait_free;
	return false;
}

bool
cmd_copy(struct client_command *cmd)
{
	struct client *c = cmd->c;
	struct mbox_state *dst;
	enum storage_error err = STORAGE_ERR_NONE;
	struct mailbox *dest;
	struct seqset src_uids = { 0 }, dst_uids = { 0 };
	struct buf set1 = BUF_INIT, set2 = BUF_INIT;
	uint32_t *seqs;
	size_t count;
	bool failed, done = true;
	/* MOVE (RFC 6851): a COPY, then the originals are expunged. */
	bool move = ascii_strcasecmp(cmd->name, "MOVE") == 0;
	char *name;

	if (cmd->count != 2 || cmd->args[0].type != IMAP_ARG_ATOM)
		return cmd_bad(cmd, move ? "MOVE needs a sequence set and a mailbox." :
				       "COPY needs a sequence set and a mailbox.");
	if (move && c->view->readonly) {
		cmd_tagged(cmd, "NO [READ-ONLY] Mailbox is read-only.");
		return true;
	}
	if ((name = cmd_arg_mailbox(cmd, 1)) == NULL)
		return true;
	if (cmd_collect_seqs(cmd, cmd->args[0].str, &seqs, &count) < 0) {
		free(name);
		return cmd_bad(cmd, "Invalid sequence set.");
	}
	if (mailbox_open(c->gen->hub, c->sid, c->user, name, &dest, &err) < 0) {
		if (err == STORAGE_ERR_NOT_FOUND)
			cmd_tagged(cmd, "NO [TRYCREATE] Mailbox doesn't exist.");
		else
			cmd_no_storage(cmd, err);
		free(seqs);
		free(name);
		return true;
	}
	dst = mailbox_state(dest);
	/* A MOVE stays inside the user's one quota root and adds nothing
	   (RFC 9208 5.1): only COPY is checked, before anything is
	   written. */
	if (!move) {
		const struct mbox_state *src = mailbox_state(c->mbox);
		uint64_t octets = 0, messages = 0;

		for (size_t i = 0; i < count; i++) {
			ssize_t idx = mbox_view_index(c->view, seqs[i]);

			if (idx >= 0) {
				octets += src->mails[idx].size;
				messages++;
			}
		}
		if (cmd_quota_check(cmd, octets, messages) < 0) {
			mailbox_unref(&dest);
			free(seqs);
			free(name);
			return true;
		}
	}
	if (mailbox_copies_in_job(dest)) {
		done = copy_in_job(cmd, dest, seqs, count, move);
		free(seqs);
		free(name);
		return done;
	}
	failed = copy_messages(c, dest, seqs, count, &src_uids, &dst_uids, &err) < 0;
	if (dst_uids.count > 0)
		mailbox_changed(dest, c->view);
	if (failed)
		cmd_no_storage(cmd, err);
	else if (dst_uids.count == 0)
		cmd_tagged(cmd, "OK %s completed (no messages).", move ? "Move" : "Copy");
	else if (move) {
		/* The COPYUID goes first, in an untagged OK, then the
		   EXPUNGEs (or VANISHED) of the originals (RFC 6851 4.3). */
		seqset_write(&src_uids, &set1);
		seqset_write(&dst_uids, &set2);
		client_send(c, "* OK [COPYUID %u %s %s] Moved.", dst->uidvalidity, set1.data,
			    set2.data);
		done = expunge_run(cmd, &src_uids, false, move_answer);
	} else {
		seqset_write(&src_uids, &set1);
		seqset_write(&dst_uids, &set2);
		cmd_tagged(cmd, "OK [COPYUID %u %s %s] Copy completed.", dst->uidvalidity, set1.data,
		       set2.data);
	}
	mailbox_unref(&dest);
	seqset_free(&src_uids);
	seqset_free(&dst_uids);
	buf_free(&set1);
	buf_free(&set2);
	free(seqs);
	free(name);
	return done;
}
