/* cmd_fetch.c: FETCH and UID FETCH (RFC 3501 6.4.5), with CHANGEDSINCE
   and VANISHED (RFC 7162). A big answer is written as output drains. */
#include "imap_cmd.h"
#include "imap_client.h"
#include "imap_view.h"
#include "imap_util.h"
#include "fetch.h"
#include "mcache.h"
#include "seqset.h"

#include <stdlib.h>

/* The context of a FETCH: where it stands in its list of messages. */
struct fetch_job {
	struct fetch_spec *spec;
	uint32_t *seqs;
	size_t count, pos;
	bool expunged_seen;        /* expunged by another session, left out */
	bool expunging;            /* the last read: being expunged here */
	bool missing_seen;         /* gone from the disk (or changed) under us */
	bool flags_changed;
	/* the first read or \Seen write that failed, but for messages gone */
	enum storage_error error;
	/* CHANGEDSINCE (RFC 7162): only messages with a higher modseq. */
	bool changedsince_given;
	uint64_t changedsince;
	struct buf msg;
	/* The listing cache: used when some item can use it (use_cache),
	   looked up before reading when it answers every item (lookup). A
	   FETCH of every message walks it (walk: see mcache.h). */
	bool use_cache, lookup, need_header;
	unsigned cache_fields;
	struct mcache_walk *walk;
	bool walk_broken;
	struct buf cache_bufs[3];
	/* A BINARY item met a transfer encoding we cannot decode. */
	bool unknown_cte;
	/* The \Seen it sets, written first in a job when the mailbox's
	   flag changes are (mailbox_flags_in_job()): its op while it works,
	   then the UIDs (ascending) that got it, told with their FLAGS. */
	struct client_command *cmd;
	struct mailbox_op *op;
	bool seen_by_job;
	/* On a mailbox whose reads are round trips (mailbox_reads_in_job()):
	   the next messages to read, read ahead in a job, the answers
	   written once they are there. */
	bool reads_ahead;
	struct read_ahead ahead;
	uint32_t *seen_uids;
	size_t seen_count;
	uint64_t modseq_before;
	uint64_t modseq_written;   /* by the \Seen job; 0: none */
};

static void
fetch_job_free(void *context)
{
	struct fetch_job *job = context;

	mailbox_op_detach(&job->op);
	read_ahead_free(&job->ahead);
	free(job->seen_uids);
	mcache_walk_end(&job->walk, job->pos == job->count && !job->walk_broken);
	fetch_spec_free(&job->spec);
	free(job->seqs);
	buf_free(&job->msg);
	for (size_t i = 0; i < N_ELEMENTS(job->cache_bufs); i++)
		buf_free(&job->cache_bufs[i]);
	free(job);
}

/* Sets fm's message, or its listing cache entry *ent (fm->cached) when
   that answers every item. A message read is cached when some item can
   use it. Returns 0, or -1 if the message could not be read (noted in
   job). */
static int
fetch_message(struct fetch_job *job, struct client *c, const struct mbox_state *st,
	      size_t idx, struct fetch_msg *fm, struct mcache_entry *ent)
{
	const struct mail_rec *rec = &st->mails[idx];
	struct mcache *mc = job->use_cache ? mailbox_mcache(c->mbox) : NULL;
	bool store = mc != NULL;
	enum storage_error err;

	if (mc != NULL && mcache_lookup(mc, job->walk, st->uidvalidity, rec->uid, job->cache_fields,
				    ent) > 0) {
		/* a header above the cap is never cached: do not store again */
		store = false;
		if (job->lookup && (!job->need_header || ent->data[MCACHE_HEADER] != NULL)) {
			fm->cached = ent;
			return 0;
		}
	}
	if (mailbox_expunging(c->mbox, rec->uid)) {
		/* its data may be gone already (Maildir's work unlinks):
		   left out, as one another session expunged */
		job->expunging = true;
		return -1;
	}
	buf_reset(&job->msg);
	if (read_ahead_read(&job->ahead, c, rec, &job->msg, &err) < 0) {
		/* gone from the disk: being expunged here (its EXPUNGE
		   comes once the job commits), as for a message another
		   session expunged; or expunged by another process */
		if (err == STORAGE_ERR_NOT_FOUND && mailbox_expunging(c->mbox, rec->uid))
			job->expunging = true;
		else if (err == STORAGE_ERR_NOT_FOUND)
			job->missing_seen = true;
		else if (job->error == STORAGE_ERR_NONE)
			job->error = err;
		return -1;
	}
	fm->data = job->msg.data != NULL ? job->msg.data : "";
	fm->len = job->msg.len;
	if (store) {
		fm->rec = rec;
		fetch_cache_entry(fm, job->cache_bufs, ent);
		mcache_store(mc, job->walk, st->uidvalidity, st->mails[0].uid, rec->uid, ent);
		fm->cached = ent;
	}
	return 0;
}

static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Whether the job's \Seen write set it on uid. */
static bool
fetch_seen_set(const struct fetch_job *job, uint32_t uid)
{
	return bsearch(&uid, job->seen_uids, job->seen_count, sizeof(uid), uid_cmp) != NULL;
}

static bool fetch_continue(struct client_command *cmd);

/* Starts reading ahead the messages from job->pos on that the answers
   will read (not those the listing cache answers). Returns true if the
   command waits for them. */
static bool
fetch_ahead_start(struct client_command *cmd, struct fetch_job *job)
{
	struct client *c = cmd->c;
	const struct mbox_state *st = mailbox_state(c->mbox);
	struct mcache *mc = job->use_cache && job->lookup ? mailbox_mcache(c->mbox) : NULL;
	struct mail_rec *recs;
	struct mcache_entry ent;
	uint64_t octets = 0;
	size_t n = 0, p;
	bool started;

	recs = xmalloc(READ_AHEAD_MAX * sizeof(*recs));
	for (p = job->pos; p < job->count && n < READ_AHEAD_MAX && octets < READ_AHEAD_OCTETS;
	     p++) {
		ssize_t idx = mbox_view_index(c->view, job->seqs[p]);

		if (idx < 0)
			continue;
		const struct mail_rec *rec = &st->mails[idx];
		if (job->changedsince_given && rec->modseq <= job->changedsince)
			continue;
		if (mc != NULL &&
		    mcache_lookup(mc, NULL, st->uidvalidity, rec->uid, job->cache_fields, &ent) > 0 &&
		    (!job->need_header || ent.data[MCACHE_HEADER] != NULL))
			continue;
		recs[n++] = *rec;
		octets += rec->size;
	}
	started = read_ahead_start(&job->ahead, cmd, recs, n, p, fetch_continue);
	free(recs);
	return started;
}

/* The \Seen write is done (ret 0: in the state) or failed: the answers. */
static void
fetch_seen_written(void *ctx, int ret, enum storage_error err)
{
	struct fetch_job *job = ctx;
	struct client_command *cmd = job->cmd;
	struct client *c = cmd->c;

	job->op = NULL;
	if (ret < 0) {
		job->error = err;
		job->seen_count = 0;
	} else {
		/* as STORE: the answers tell the view its own change */
		mbox_view_told_own_change(c->view, job->modseq_before, job->modseq_written);
	}
	cmd->output = fetch_continue;
	client_resume(c);
}

/* FETCH sets \Seen (RFC 3501 6.4.5) on a mailbox whose flag changes
   are written in a job: on every unseen message it names, in one job,
   before the answers. Returns false if the command waits for it. */
static bool
fetch_seen_start(struct client_command *cmd, struct fetch_job *job)
{
	struct client *c = cmd->c;
	const struct mbox_state *st = mailbox_state(c->mbox);
	struct storage_flag_change *changes;
	enum storage_error err;
	size_t n = 0;
	int ret;

	job->seen_by_job = true;
	changes = xmalloc((job->count > 0 ? job->count : 1) * sizeof(*changes));
	job->seen_uids = xmalloc((job->count > 0 ? job->count : 1) * sizeof(uint32_t));
	for (size_t i = 0; i < job->count; i++) {
		ssize_t idx = mbox_view_index(c->view, job->seqs[i]);

		if (idx < 0 || (st->mails[idx].flags & MAIL_SEEN) != 0 ||
		    (job->changedsince_given && st->mails[idx].modseq <= job->changedsince))
			continue;
		i_zero(&changes[n]);
		changes[n].uid = st->mails[idx].uid;
		changes[n].flags_set = MAIL_SEEN;
		job->seen_uids[n] = st->mails[idx].uid;
		n++;
	}
	qsort(job->seen_uids, n, sizeof(uint32_t), uid_cmp);
	job->seen_count = n;
	job->modseq_before = st->highest_modseq;
	ret = mailbox_flags_start(c->mbox, changes, n, &job->modseq_written, fetch_seen_written,
				  job, &job->op, &err, c->sid);
	free(changes);
	if (ret > 0)
		return false;
	if (ret < 0) {
		job->error = err;
		job->seen_count = 0;
	}
	return true;
}

/* Writes FETCH answers until the output reaches the high-water mark,
   or, for items read from the messages, for about CLIENT_SLICE_MS (a
   BODYSTRUCTURE of big messages not yet cached makes little output from
   much work). Returns true when the command is complete (tagged answer
   queued), false to be called again in a later pass of the loop. */
static bool
fetch_continue(struct client_command *cmd)
{
	struct client *c = cmd->c;
	struct fetch_job *job = cmd->context;
	struct mbox_state *st = mailbox_state(c->mbox);
	bool needs_msg = fetch_spec_needs_message(job->spec);
	bool sets_seen = fetch_spec_sets_seen(job->spec) && !c->view->readonly &&
			 !job->seen_by_job;
	enum storage_error err;
	int64_t end = mono_ms() + CLIENT_SLICE_MS;

	if (read_ahead_waiting(&job->ahead)) {
		cmd->output = NULL;     /* read_ahead_start()'s output goes on */
		return false;
	}
	while (job->pos < job->count && client_out_pending(c) < CLIENT_OUT_HIGH_WATER &&
	       (!needs_msg || mono_ms() < end)) {
		if (job->reads_ahead && job->pos >= job->ahead.end && fetch_ahead_start(cmd, job))
			return false;
		uint32_t seq = job->seqs[job->pos++];
		ssize_t idx = mbox_view_index(c->view, seq);
		struct fetch_msg fm;
		struct mcache_entry ent;

		if (idx < 0) {
			/* Expunged by another session. By UID it is simply not
			   there (its EXPUNGE follows this answer, RFC 2180 4.1.2);
			   by number the client needs to be told. */
			if (!cmd->uid)
				job->expunged_seen = true;
			continue;
		}
		if (job->changedsince_given && st->mails[idx].modseq <= job->changedsince) {
			job->walk_broken = true;
			continue;
		}
		i_zero(&fm);
		fm.cache = hub_mime_cache(c->gen->hub);
		fm.cache_owner = c->mbox;
		fm.seq = seq;
		fm.uidonly = c->uidonly;
		fm.state = st;
		fm.recent = imap_view_shows_recent(c->view, st->mails[idx].uid);
		fm.unknown_cte = &job->unknown_cte;
		if (needs_msg && fetch_message(job, c, st, (size_t)idx, &fm, &ent) < 0) {
			if (job->expunging && !cmd->uid)
				job->expunged_seen = true;
			job->expunging = false;
			job->walk_broken = true;
			continue;
		}
		if (job->seen_count > 0 &&
		    fetch_seen_set(job, st->mails[idx].uid)) {
			job->flags_changed = true;
			fm.add_flags = !fetch_spec_has_flags(job->spec);
		} else if (sets_seen && (st->mails[idx].flags & MAIL_SEEN) == 0) {
			uint32_t uid = st->mails[idx].uid;

			if (mailbox_set_flags(c->mbox, c->view, (size_t)idx,
					      st->mails[idx].flags | MAIL_SEEN,
					      st->mails[idx].keywords, &err, c->sid) == 0) {
				job->flags_changed = true;
				fm.add_flags = !fetch_spec_has_flags(job->spec);
			} else if (job->error == STORAGE_ERR_NONE) {
				job->error = err;
			}
			/* the write may have brought in other processes'
			   changes: the message again by its UID (gone: as
			   one expunged by another session) */
			idx = mbox_state_find(st, uid);
			if (idx < 0) {
				if (!cmd->uid)
					job->expunged_seen = true;
				continue;
			}
		}
		fm.rec = &st->mails[idx];
		imap_view_announce_keywords(c->view, &c->keywords_announced, client_outbuf(c));
		fetch_write(job->spec, &fm, client_outbuf(c));
	}
	if (job->pos < job->count)
		return false;
	if (job->flags_changed)
		mailbox_changed(c->mbox, c->view);
	if (job->error != STORAGE_ERR_NONE)
		cmd_no_storage(cmd, job->error);
	else if (job->unknown_cte)
		cmd_tagged(cmd, "NO [UNKNOWN-CTE] A part's Content-Transfer-Encoding "
				"cannot be decoded.");
	else if (job->missing_seen)
		/* Files gone or changed behind the server (another process
		   expunged them, or a tool rewrote them): RFC 2180 4.1.2, in
		   its own words; what remains was answered, the EXPUNGE comes
		   with the next command that syncs. */
		cmd_tagged(cmd, "NO [EXPUNGEISSUED] Some of the requested messages no longer "
				"exist.");
	else if (job->expunged_seen)
		/* Messages another session expunged (this one not told yet)
		   are left out; the rest were answered. As Dovecot answers,
		   OK [EXPUNGEISSUED] rather than RFC 2180 4.1.2's NO: a client
		   keeps what it got, and learns which went at its next command
		   (NOOP) from the EXPUNGEs; a NO makes clients (and ImapTest's
		   counts) throw the whole answer away. */
		cmd_tagged(cmd, "OK [EXPUNGEISSUED] Some messages were already expunged.");
	else if (c->view->condstore && mbox_view_expunges_pending(c->view))
		/* RFC 7162 3.2.10: MODSEQs sent while an expunge this session
		   was not told of is pending (RFC 3501 7.4.1) come with a
		   HIGHESTMODSEQ below that expunge's, for the client to cache. */
		cmd_tagged(cmd, "OK [HIGHESTMODSEQ %llu] Fetch completed.",
			   imap_modseq(mbox_view_safe_modseq(c->view)));
	else
		cmd_tagged(cmd, "OK Fetch completed.");
	return true;
}

bool
cmd_fetch(struct client_command *cmd)
{
	struct client *c = cmd->c;
	struct fetch_job *job;
	struct fetch_spec *spec;
	const char *error;
	uint32_t *seqs;
	size_t count;

	size_t nitems = cmd->count - 1;
	bool changedsince_given = false, vanished = false;
	uint64_t changedsince = 0;

	if (cmd->count < 2 || cmd->args[0].type != IMAP_ARG_ATOM)
		return cmd_bad(cmd, "FETCH needs a sequence set and data items.");
	/* FETCH modifiers (RFC 4466): a last list after the items. */
	if (cmd->count >= 3 && cmd->args[cmd->count - 1].type == IMAP_ARG_LIST) {
		const struct imap_arg *m = &cmd->args[cmd->count - 1];
		nitems--;
		for (size_t i = 0; i < m->list_count; i++) {
			if (imap_arg_atom_equals(&m->list[i], "CHANGEDSINCE") && i + 1 < m->list_count &&
			    !changedsince_given &&
			    cmd_arg_number(&m->list[i + 1], INT64_MAX, &changedsince)) {
				changedsince_given = true;
				i++;
			} else if (imap_arg_atom_equals(&m->list[i], "VANISHED") && !vanished) {
				vanished = true;
			} else {
				return cmd_bad(cmd, "Unknown FETCH modifier.");
			}
		}
		/* RFC 7162 3.2.6 */
		if (vanished && (!cmd->uid || !c->qresync || !changedsince_given))
			return cmd_bad(cmd, "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC.");
	}
	if (fetch_parse(cmd->args + 1, nitems, &spec, &error) < 0)
		return cmd_bad(cmd, error);
	if (cmd_collect_seqs(cmd, cmd->args[0].str, &seqs, &count) < 0) {
		fetch_spec_free(&spec);
		return cmd_bad(cmd, "Invalid sequence set.");
	}
	if (cmd->uid)
		fetch_spec_add_uid(spec);
	if (changedsince_given || fetch_spec_has_modseq(spec))
		client_enable_condstore(c, false);
	if (changedsince_given)
		fetch_spec_add_modseq(spec);
	if (c->condstore && fetch_spec_sets_seen(spec) && !c->view->readonly) {
		/* RFC 7162 3.2.4: FETCHes that set \Seen carry UID and MODSEQ. */
		fetch_spec_add_uid(spec);
		fetch_spec_add_modseq(spec);
	}
	if (vanished) {
		/* VANISHED (EARLIER) for the UIDs of the set that are gone,
		   before any FETCH (RFC 7162 3.2.6). */
		struct seqset uids = { 0 }, gone = { 0 };
		const struct mbox_state *st = mailbox_state(c->mbox);
		if (cmd_parse_uidset(cmd, cmd->args[0].str, st->uidnext > 1 ? st->uidnext - 1 : 0,
				     &uids) == 0)
			(void)mailbox_vanished_since(c->mbox, changedsince, &uids, &gone);
		if (gone.count > 0) {
			buf_append_str(client_outbuf(c), "* VANISHED (EARLIER) ");
			seqset_write(&gone, client_outbuf(c));
			buf_append_str(client_outbuf(c), "\r\n");
		}
		seqset_free(&uids);
		seqset_free(&gone);
	}
	job = xcalloc(1, sizeof(*job));
	job->changedsince_given = changedsince_given;
	job->changedsince = changedsince;
	job->spec = spec;
	job->seqs = seqs;
	job->count = count;
	job->use_cache = fetch_spec_uses_cache(spec);
	job->lookup = job->use_cache && fetch_spec_cache_answers(spec);
	job->need_header = fetch_spec_cache_needs_header(spec);
	job->reads_ahead = fetch_spec_needs_message(spec) && mailbox_reads_in_job(c->mbox);
	job->cache_fields = fetch_spec_cache_fields(spec);
	if (job->lookup && !changedsince_given && count > 0 &&
	    count == mailbox_state(c->mbox)->count)
		job->walk = mcache_walk_begin(mailbox_mcache(c->mbox),
					      mailbox_state(c->mbox)->uidvalidity);
	job->cmd = cmd;
	cmd->context = job;
	cmd->context_free = fetch_job_free;
	if (fetch_spec_sets_seen(spec) && !c->view->readonly && mailbox_flags_in_job(c->mbox) &&
	    !mailbox_is_busy(c->mbox) && !fetch_seen_start(cmd, job))
		return false;   /* fetch_seen_written() goes on */
	if (fetch_continue(cmd))
		return true;
	if (!read_ahead_waiting(&job->ahead))
		cmd->output = fetch_continue;
	return false;
}
