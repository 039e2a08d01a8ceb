/* cmd_store.c: STORE and UID STORE (RFC 3501 6.4.6), with
   UNCHANGEDSINCE (RFC 7162 3.1.3). */
#include "imap_cmd.h"
#include "imap_client.h"
#include "imap_view.h"
#include "imap_util.h"
#include "seqset.h"

#include <stdlib.h>

/* A parsed STORE (RFC 3501 6.4.6, UNCHANGEDSINCE RFC 7162 3.1.3). */
struct store_req {
	int mode;               /* 0 replace, 1 add, -1 remove */
	uint8_t flags;
	uint64_t keywords;
	bool silent;
	bool unchangedsince_given;
	uint64_t unchangedsince;
};

/* What a STORE did. */
struct store_result {
	bool changed, expunged;
	struct seqset modified; /* not stored: changed since UNCHANGEDSINCE */
	enum storage_error error; /* the first flag write that failed */
};

/* The rule of req's change to message uid (storage.h), as a backend
   applies it again to a message another process changed meanwhile. */
static void
store_rule(const struct store_req *req, uint32_t uid, struct storage_flag_change *change_r)
{
	i_zero(change_r);
	change_r->uid = uid;
	change_r->conditional = req->unchangedsince_given;
	change_r->unchangedsince = req->unchangedsince;
	if (req->mode >= 0) {
		change_r->flags_set = req->flags;
		change_r->keywords_set = req->keywords;
	}
	if (req->mode == 0) {
		change_r->flags_clear = MAIL_FLAGS_ALL;
		change_r->keywords_clear = STORAGE_KEYWORDS_ALL;
	} else if (req->mode < 0) {
		change_r->flags_clear = req->flags;
		change_r->keywords_clear = req->keywords;
	}
}

/* The flags and keywords req gives a message that has rec's. */
static void
store_new_flags(const struct store_req *req, const struct mail_rec *rec, uint8_t *flags_r,
		uint64_t *keywords_r)
{
	struct storage_flag_change change;

	store_rule(req, rec->uid, &change);
	*flags_r = rec->flags;
	*keywords_r = rec->keywords;
	storage_flag_change_apply(&change, flags_r, keywords_r);
}

/* The untagged FETCH that tells the new flags of message seq. */
static void
store_write_fetch(struct client_command *cmd, uint32_t seq, const struct mail_rec *rec)
{
	struct client *c = cmd->c;
	struct buf *out = client_outbuf(c);

	imap_view_announce_keywords(c->view, &c->keywords_announced, out);
	if (c->uidonly)
		buf_printf(out, "* %u UIDFETCH (", rec->uid); /* RFC 9586 3 */
	else
		buf_printf(out, "* %u FETCH (", seq);
	if ((cmd->uid || c->condstore || c->rev2) && !c->uidonly)
		buf_printf(out, "UID %u ", rec->uid);
	buf_append_str(out, "FLAGS ");
	imap_write_flags(out, rec->flags, rec->keywords, imap_view_shows_recent(c->view, rec->uid),
			 mailbox_state(c->mbox));
	if (c->condstore)
		buf_printf(out, " MODSEQ (%llu)", (unsigned long long)rec->modseq);
	buf_append_str(out, ")\r\n");
}

/* A STORE under way: where it stands in its list of messages. It works
   in slices, as FETCH does (CLIENT_SLICE_MS, or until its untagged
   answers reach the output mark), so that STORE 1:* on a big mailbox
   (one flag write per message: a rename each on Maildir) never holds
   the loop for long. Flag writes that meet a mailbox busy with a job
   are deferred by the hub, as FETCH's \Seen.
   On a mailbox whose flag changes are written in a job (a database's
   one transaction, mailbox_flags_in_job()) the STORE gives them all to
   it first and waits; once they are in the state, the slices only write
   the answers. */
struct store_job {
	struct client_command *cmd;
	struct store_req req;
	struct store_result res;
	uint32_t *seqs;
	size_t count, pos;
	/* the job's way: its op while it works; then what each message got
	   (STORE_*) and written set: only the answers are left */
	struct mailbox_op *op;
	uint8_t *fate;
	bool written;
	uint64_t modseq_before;
	uint64_t modseq_written;  /* by the job; 0: none */
};

enum {
	STORE_AS_IS,            /* unchanged: told as it is */
	STORE_MODIFIED,         /* changed since UNCHANGEDSINCE: not stored */
	STORE_CHANGED,          /* given to the job */
};

static void
store_job_free(void *context)
{
	struct store_job *job = context;

	mailbox_op_detach(&job->op);
	free(job->seqs);
	free(job->fate);
	seqset_free(&job->res.modified);
	free(job);
}

static bool store_continue(struct client_command *cmd);

/* With UNCHANGEDSINCE, the job's changes committed: a message another
   process changed past it after this session's state was read was left
   as it is by the store (its condition is checked under the store's
   lock): not stored either. */
static void
store_modified_meanwhile(struct client_command *cmd, struct store_job *job)
{
	struct client *c = cmd->c;
	const struct mbox_state *st = mailbox_state(c->mbox);

	for (size_t i = 0; i < job->count; i++) {
		ssize_t idx = mbox_view_index(c->view, job->seqs[i]);

		if (idx < 0 || job->fate[i] == STORE_MODIFIED)
			continue;
		const struct mail_rec *rec = &st->mails[idx];
		if (rec->modseq > job->req.unchangedsince && rec->modseq != job->modseq_written) {
			uint32_t v = cmd->uid ? rec->uid : job->seqs[i];

			seqset_add_range(&job->res.modified, v, v);
			job->fate[i] = STORE_MODIFIED;
		}
	}
}

/* The job's changes are in the state (ret 0), or not: the answers. */
static void
store_written(void *ctx, int ret, enum storage_error err)
{
	struct store_job *job = ctx;
	struct client_command *cmd = job->cmd;
	struct client *c = cmd->c;

	job->op = NULL;
	if (ret < 0)
		job->res.error = err;
	else {
		job->res.changed = true;
		if (job->req.unchangedsince_given)
			store_modified_meanwhile(cmd, job);
		mbox_view_told_own_change(c->view, job->modseq_before, job->modseq_written);
	}
	cmd->output = store_continue;
	client_resume(c);
}

/* The job's way: works out every message's new flags (the state is
   not touched) and gives the changes to the job. Returns false if the
   command waits for it. */
static bool
store_start_job(struct client_command *cmd, struct store_job *job)
{
	struct client *c = cmd->c;
	const struct mbox_state *st = mailbox_state(c->mbox);
	const struct store_req *req = &job->req;
	struct storage_flag_change *changes;
	enum storage_error err;
	size_t n = 0;
	int ret;

	changes = xmalloc((job->count > 0 ? job->count : 1) * sizeof(*changes));
	job->fate = xcalloc(job->count > 0 ? job->count : 1, 1);
	for (size_t i = 0; i < job->count; i++) {
		ssize_t idx = mbox_view_index(c->view, job->seqs[i]);

		if (idx < 0)
			continue;
		const struct mail_rec *rec = &st->mails[idx];
		if (req->unchangedsince_given && rec->modseq > req->unchangedsince) {
			uint32_t v = cmd->uid ? rec->uid : job->seqs[i];
			seqset_add_range(&job->res.modified, v, v);
			job->fate[i] = STORE_MODIFIED;
			continue;
		}
		uint8_t nf;
		uint64_t nk;

		store_new_flags(req, rec, &nf, &nk);
		if (nf == rec->flags && nk == rec->keywords)
			continue;
		store_rule(req, rec->uid, &changes[n++]);
		job->fate[i] = STORE_CHANGED;
	}
	job->written = true;
	job->modseq_before = st->highest_modseq;
	ret = mailbox_flags_start(c->mbox, changes, n, &job->modseq_written, store_written, job,
				  &job->op, &err, c->sid);
	free(changes);
	if (ret > 0)
		return false;
	if (ret < 0)
		job->res.error = err;
	return true;
}

/* The job's way, its changes made: the answers, for one slice. Returns
   true when every message is done. */
static bool
store_answer(struct client_command *cmd, struct store_job *job)
{
	struct client *c = cmd->c;
	const struct mbox_state *st = mailbox_state(c->mbox);
	int64_t end = mono_ms() + CLIENT_SLICE_MS;
	size_t done = 0;

	for (; job->pos < job->count; job->pos++) {
		if (client_out_pending(c) >= CLIENT_OUT_HIGH_WATER ||
		    ((++done & 255) == 0 && mono_ms() >= end))
			return false;
		uint32_t seq = job->seqs[job->pos];
		ssize_t idx = mbox_view_index(c->view, seq);
		if (idx < 0) {
			/* As in FETCH: only a STORE by number says so. */
			if (!cmd->uid)
				job->res.expunged = true;
			continue;
		}
		if (job->fate[job->pos] == STORE_MODIFIED ||
		    (job->fate[job->pos] == STORE_CHANGED && job->res.error != STORAGE_ERR_NONE))
			continue;
		/* With UNCHANGEDSINCE the new MODSEQ is always sent. */
		if (!job->req.silent || job->req.unchangedsince_given)
			store_write_fetch(cmd, seq, &st->mails[idx]);
	}
	return true;
}

/* Changes the flags of the job's next messages as its request says, for
   one slice. Returns true when every message is done. */
static bool
store_apply(struct client_command *cmd, struct store_job *job)
{
	struct client *c = cmd->c;
	struct mbox_state *st = mailbox_state(c->mbox);
	const struct store_req *req = &job->req;
	struct store_result *res = &job->res;
	int64_t end = mono_ms() + CLIENT_SLICE_MS;
	size_t done = 0;

	for (; job->pos < job->count; job->pos++) {
		uint32_t seq = job->seqs[job->pos];
		if (client_out_pending(c) >= CLIENT_OUT_HIGH_WATER ||
		    ((++done & 31) == 0 && mono_ms() >= end))
			return false;
		ssize_t idx = mbox_view_index(c->view, seq);
		if (idx < 0) {
			/* As in FETCH: only a STORE by number says so. */
			if (!cmd->uid)
				res->expunged = true;
			continue;
		}
		struct mail_rec *rec = &st->mails[idx];
		if (req->unchangedsince_given && rec->modseq > req->unchangedsince) {
			/* Changed since the client looked: not stored. */
			uint32_t v = cmd->uid ? rec->uid : seq;
			seqset_add_range(&res->modified, v, v);
			continue;
		}
		uint8_t nf;
		uint64_t nk;

		store_new_flags(req, rec, &nf, &nk);
		if (nf != rec->flags || nk != rec->keywords) {
			enum storage_error err;
			uint32_t uid = rec->uid;

			if (mailbox_set_flags(c->mbox, c->view, (size_t)idx, nf, nk, &err,
					      c->sid) < 0) {
				/* not stored (the flags are as they were): the
				   command fails, nothing is told of it */
				if (res->error == STORAGE_ERR_NONE)
					res->error = err;
				continue;
			}
			res->changed = true;
			/* The write may have brought the state in line with
			   other processes' changes (the array moved, messages
			   gone): the message is found again by its UID. */
			st = mailbox_state(c->mbox);
			idx = mbox_state_find(st, uid);
			if (idx < 0) {
				if (!cmd->uid)
					res->expunged = true;
				continue;
			}
			rec = &st->mails[idx];
		}
		/* With UNCHANGEDSINCE the new MODSEQ is always sent. */
		if (!req->silent || req->unchangedsince_given)
			store_write_fetch(cmd, seq, rec);
	}
	return true;
}

/* The command's output callback: one more slice, then the answer.
   Returns true when the command is complete. */
static bool
store_continue(struct client_command *cmd)
{
	struct client *c = cmd->c;
	struct store_job *job = cmd->context;
	struct store_result *res = &job->res;

	if (!(job->written ? store_answer(cmd, job) : store_apply(cmd, job)))
		return false;
	if (res->changed)
		mailbox_changed(c->mbox, c->view);
	if (res->error != STORAGE_ERR_NONE) {
		cmd_no_storage(cmd, res->error);
	} else if (res->modified.count > 0) {
		struct buf set = BUF_INIT;
		seqset_write(&res->modified, &set);
		cmd_tagged(cmd, "OK [MODIFIED %s] Conditional STORE failed for some messages.", set.data);
		buf_free(&set);
	} else if (c->view->condstore && mbox_view_expunges_pending(c->view)) {
		/* RFC 7162 3.2.10: the expunges this session has not been told
		   of (RFC 3501 7.4.1 keeps them out of STORE) have modseqs above
		   the MODSEQs just sent: the client caches this value instead,
		   and is told of them on reconnection (as Dovecot answers). */
		cmd_tagged(cmd, "OK [HIGHESTMODSEQ %llu] Store completed%s.",
			   imap_modseq(mbox_view_safe_modseq(c->view)),
			   res->expunged ? ", some messages were expunged" : "");
	} else if (res->expunged) {
		/* A message another session expunged, and this one was not told
		   of yet, has nothing left to change: the others are stored, and
		   the EXPUNGE comes with the next command. OK, as Dovecot
		   answers and RFC 2180 4.2.1 asks for .SILENT; the code says
		   why some got no FETCH (RFC 5530). */
		cmd_tagged(cmd, "OK [EXPUNGEISSUED] Some messages were expunged.");
	} else
		cmd_tagged(cmd, "OK Store completed.");
	return true;
}

bool
cmd_store(struct client_command *cmd)
{
	struct client *c = cmd->c;
	struct mbox_state *st = mailbox_state(c->mbox);
	const char *item, *error;
	struct imap_arg list_arg;
	uint32_t *seqs;
	size_t count;
	/* STORE set [(UNCHANGEDSINCE n)] item flags (RFC 7162 3.1.3):
	   args[] without the modifier. */
	struct imap_arg args[2];
	const struct imap_arg *rest;
	size_t nrest;
	struct store_req req;
	struct store_job *job;
	int ret;

	i_zero(&req);
	if (cmd->count < 3 || cmd->args[0].type != IMAP_ARG_ATOM)
		return cmd_bad(cmd, "STORE needs a sequence set, an item and flags.");
	args[0] = cmd->args[0];
	rest = cmd->args + 1;
	nrest = cmd->count - 1;
	if (rest[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *m = &rest[0];
		if (m->list_count != 2 || !imap_arg_atom_equals(&m->list[0], "UNCHANGEDSINCE") ||
		    !cmd_arg_number(&m->list[1], INT64_MAX, &req.unchangedsince))
			return cmd_bad(cmd, "Unknown STORE modifier.");
		req.unchangedsince_given = true;
		rest++;
		nrest--;
	}
	if (nrest < 2 || rest[0].type != IMAP_ARG_ATOM)
		return cmd_bad(cmd, "STORE needs a sequence set, an item and flags.");
	args[1] = rest[0];
	item = args[1].str;
	req.mode = *item == '+' ? 1 : *item == '-' ? -1 : 0;
	if (req.mode != 0)
		item++;
	if (ascii_strcasecmp(item, "FLAGS") == 0)
		req.silent = false;
	else if (ascii_strcasecmp(item, "FLAGS.SILENT") == 0)
		req.silent = true;
	else
		return cmd_bad(cmd, "Unknown STORE item.");
	if (c->view->readonly) {
		cmd_tagged(cmd, "NO [READ-ONLY] Mailbox is read-only.");
		return true;
	}
	/* The flags: one list, or flags separated by spaces. */
	if (nrest == 2 && rest[1].type == IMAP_ARG_LIST)
		list_arg = rest[1];
	else {
		i_zero(&list_arg);
		list_arg.type = IMAP_ARG_LIST;
		list_arg.list = (struct imap_arg *)(uintptr_t)(rest + 1);
		list_arg.list_count = nrest - 1;
	}
	ret = imap_parse_flags(&list_arg, st, req.mode >= 0, &req.flags, &req.keywords, &error);
	if (ret == IMAP_FLAGS_NO_ROOM) {
		/* A limit, not a syntax error: NO, not counted as a BAD. */
		cmd_tagged(cmd, "NO [LIMIT] %s.", error);
		return true;
	}
	if (ret < 0)
		return cmd_bad(cmd, error);
	if (cmd_collect_seqs(cmd, args[0].str, &seqs, &count) < 0)
		return cmd_bad(cmd, "Invalid sequence set.");
	if (req.unchangedsince_given)
		client_enable_condstore(c, false);
	job = xcalloc(1, sizeof(*job));
	job->cmd = cmd;
	job->req = req;
	job->seqs = seqs;
	job->count = count;
	cmd->context = job;
	cmd->context_free = store_job_free;
	if (mailbox_flags_in_job(c->mbox) && !store_start_job(cmd, job))
		return false;   /* store_written() goes on */
	if (store_continue(cmd))
		return true;
	cmd->output = store_continue;
	return false;
}
