/* cmd_search.c: SEARCH and UID SEARCH (RFC 3501 6.4.4), ESEARCH
   (RFC 4731) and MODSEQ search (RFC 7162). */
#include "imap_cmd.h"
#include "imap_client.h"
#include "search.h"
#include "seqset.h"

#include <stdlib.h>

int
search_load(void *context, const char **data_r, size_t *len_r)
{
	struct search_load_ctx *lc = context;
	enum storage_error err;

	if (!lc->loaded) {
		buf_reset(lc->msg);
		if ((lc->ahead != NULL ? read_ahead_read(lc->ahead, lc->c, lc->rec, lc->msg, &err) :
					 mailbox_read(lc->c->mbox, lc->rec, lc->msg, &err, lc->c->sid)) < 0)
			return -1;
		lc->loaded = true;
	}
	*data_r = lc->msg->data != NULL ? lc->msg->data : "";
	*len_r = lc->msg->len;
	return 0;
}

/* What SEARCH RETURN asks for (ESEARCH, RFC 4731), and what the search
   found. */
struct search_answer {
	bool esearch, r_min, r_max, r_all, r_count;
	/* SAVE (RFC 5182): the UIDs found become the session's "$" */
	bool r_save;
	bool with_modseq;
	struct seqset result;   /* with r_all */
	struct seqset saved;    /* with r_save: the UIDs found */
	uint64_t count, max_modseq, min_modseq_of, max_modseq_of;
	uint32_t min_val, max_val, min_uid, max_uid;
};

/* SEARCH RETURN (MIN MAX ALL COUNT): returns NULL or a static reason. */
static const char *
search_parse_return(const struct imap_arg *list, struct search_answer *a)
{
	a->esearch = true;
	for (size_t i = 0; i < list->list_count; i++) {
		const struct imap_arg *o = &list->list[i];
		if (imap_arg_atom_equals(o, "MIN"))
			a->r_min = true;
		else if (imap_arg_atom_equals(o, "MAX"))
			a->r_max = true;
		else if (imap_arg_atom_equals(o, "ALL"))
			a->r_all = true;
		else if (imap_arg_atom_equals(o, "COUNT"))
			a->r_count = true;
		else if (imap_arg_atom_equals(o, "SAVE"))
			a->r_save = true;
		else
			return "Unknown SEARCH RETURN option.";
	}
	/* RETURN () means ALL; RETURN (SAVE) answers nothing but the tagged
	   OK (RFC 5182 2.1). */
	if (!a->r_min && !a->r_max && !a->r_count && list->list_count == 0)
		a->r_all = true;
	return NULL;
}

/* The UIDs SAVE keeps (RFC 5182 2.1): with MIN and/or MAX alone, only
   those; else every match. */
static void
search_answer_save(struct client *c, struct search_answer *a)
{
	seqset_free(&c->searchres);
	if ((a->r_min || a->r_max) && !a->r_all && !a->r_count) {
		if (a->count == 0)
			return;
		if (a->r_min)
			seqset_add_range(&c->searchres, a->min_uid, a->min_uid);
		if (a->r_max)
			seqset_add_range(&c->searchres, a->max_uid, a->max_uid);
		return;
	}
	c->searchres = a->saved;
	i_zero(&a->saved);
}

/* A SEARCH that asked to SAVE and failed leaves "$" empty (RFC 5182 2.1). */
static bool
search_failed(struct client_command *cmd, const struct imap_arg *ret_list, const char *reason)
{
	for (size_t i = 0; ret_list != NULL && i < ret_list->list_count; i++) {
		if (imap_arg_atom_equals(&ret_list->list[i], "SAVE"))
			seqset_free(&cmd->c->searchres);
	}
	return cmd_bad(cmd, reason);
}

/* Counts one match v (a number or a UID) of the given modseq; without
   ESEARCH it is written at once. */
static void
search_answer_add(struct client *c, struct search_answer *a, uint32_t v, uint32_t uid,
		  uint64_t modseq)
{
	if (!a->esearch)
		buf_printf(client_outbuf(c), " %u", v);
	else if (a->r_all)
		seqset_add_range(&a->result, v, v);
	if (a->r_save)
		seqset_add_range(&a->saved, uid, uid);
	if (a->count++ == 0) {
		a->min_val = v;
		a->min_uid = uid;
		a->min_modseq_of = modseq;
	}
	a->max_val = v;
	a->max_uid = uid;
	a->max_modseq_of = modseq;
	if (modseq > a->max_modseq)
		a->max_modseq = modseq;
}

/* The rest of the untagged answer, after the matches: "(MODSEQ n)" of
   SEARCH, or the whole ESEARCH line. */
static void
search_answer_write(struct client_command *cmd, const struct search_answer *a)
{
	struct buf *out = client_outbuf(cmd->c);

	if (a->esearch && a->r_save && !a->r_min && !a->r_max && !a->r_all && !a->r_count)
		return;         /* RETURN (SAVE): no untagged answer */
	if (!a->esearch) {
		/* RFC 7162 3.1.6 */
		if (a->with_modseq && a->count > 0)
			buf_printf(out, " (MODSEQ %llu)", (unsigned long long)a->max_modseq);
		buf_append(out, "\r\n", 2);
		return;
	}
	buf_append_str(out, "* ESEARCH (TAG ");
	buf_append_imap_nstring(out, cmd->tag);
	buf_append_c(out, ')');
	if (cmd->uid)
		buf_append_str(out, " UID");
	if (a->r_min && a->count > 0)
		buf_printf(out, " MIN %u", a->min_val);
	if (a->r_max && a->count > 0)
		buf_printf(out, " MAX %u", a->max_val);
	if (a->r_all && a->count > 0) {
		buf_append_str(out, " ALL ");
		seqset_write(&a->result, out);
	}
	if (a->r_count)
		buf_printf(out, " COUNT %llu", (unsigned long long)a->count);
	/* RFC 7162 3.1.10: the highest mod-sequence of the messages
	   returned: MIN's and/or MAX's alone unless ALL or COUNT. */
	if (a->with_modseq && a->count > 0) {
		uint64_t m = a->max_modseq;
		if (!a->r_all && !a->r_count) {
			m = 0;
			if (a->r_min)
				m = a->min_modseq_of;
			if (a->r_max && a->max_modseq_of > m)
				m = a->max_modseq_of;
		}
		buf_printf(out, " MODSEQ %llu", (unsigned long long)m);
	}
	buf_append(out, "\r\n", 2);
}

/* A SEARCH under way: where it stands in the view. It works in slices
   (CLIENT_SLICE_MS), so that a search that reads every message of a
   big mailbox (TEXT, BODY, HEADER) never holds the loop for long: between
   slices the other sessions are served. The session's view does not
   change while its command runs (no sync between slices); a message
   another session expunged meanwhile is skipped, as in FETCH. */
struct search_job {
	struct search_key *key;
	struct search_answer a;
	size_t next_seq;
	bool failed;
	/* A message of the view another session expunged (the client not
	   yet told) was left out: the answer says so, OK [EXPUNGEISSUED]
	   (RFC 2180 4.3), so that a client which still counts it knows why
	   it is missing. */
	bool expunged;
	struct buf msg;
	/* On a mailbox whose reads are round trips: the next messages read
	   ahead in a job (when the key reads them) */
	bool reads_ahead;
	struct read_ahead ahead;
};

static void
search_job_free(void *context)
{
	struct search_job *job = context;

	search_key_free(&job->key);
	seqset_free(&job->a.result);
	seqset_free(&job->a.saved);
	buf_free(&job->msg);
	read_ahead_free(&job->ahead);
	free(job);
}

static bool search_continue(struct client_command *cmd);

/* Starts reading ahead the view's messages from job->next_seq on.
   Returns true if the command waits for them. */
static bool
search_ahead_start(struct client_command *cmd, struct search_job *job)
{
	struct client *c = cmd->c;
	const struct mbox_state *st = mailbox_state(c->mbox);
	struct mail_rec *recs = xmalloc(READ_AHEAD_MAX * sizeof(*recs));
	uint64_t octets = 0;
	size_t n = 0, seq;
	bool started;

	for (seq = job->next_seq;
	     seq <= c->view->count && n < READ_AHEAD_MAX && octets < READ_AHEAD_OCTETS; seq++) {
		ssize_t idx = mbox_view_index(c->view, (uint32_t)seq);

		if (idx < 0)
			continue;
		recs[n++] = st->mails[idx];
		octets += st->mails[idx].size;
	}
	started = read_ahead_start(&job->ahead, cmd, recs, n, seq, search_continue);
	free(recs);
	return started;
}

/* Matches the key against the view's messages from job->next_seq on,
   for one slice. Returns true when every message has been seen. */
static bool
search_slice(struct client_command *cmd, struct search_job *job)
{
	struct client *c = cmd->c;
	const struct mbox_state *st = mailbox_state(c->mbox);
	int64_t end = mono_ms() + CLIENT_SLICE_MS;
	size_t visited = 0;

	for (; job->next_seq <= c->view->count; job->next_seq++) {
		size_t seq = job->next_seq;
		ssize_t idx = mbox_view_index(c->view, (uint32_t)seq);
		if (idx < 0) {
			job->expunged = true;
			continue;
		}
		if (job->reads_ahead && seq >= job->ahead.end && search_ahead_start(cmd, job))
			return false;
		/* The clock is read only now and then: a search of flags
		   alone costs nanoseconds per message. */
		if ((++visited & 63) == 0 && mono_ms() >= end)
			return false;
		struct search_load_ctx lc = { c, &st->mails[idx], &job->msg, false,
					      job->reads_ahead ? &job->ahead : NULL };
		struct search_msg sm = {
			.seq = (uint32_t)seq,
			.uid = st->mails[idx].uid,
			.rec = &st->mails[idx],
			.recent = mbox_view_is_recent(c->view, st->mails[idx].uid),
			.load = search_load,
			.load_ctx = &lc,
		};
		int ret = search_match(job->key, &sm);
		if (ret < 0 && mailbox_expunging(c->mbox, sm.uid))
			/* its expunge is at work (its data may be gone
			   already): left out, as one expunged */
			job->expunged = true;
		else if (ret < 0)
			job->failed = true;
		else if (ret > 0)
			search_answer_add(c, &job->a, cmd->uid ? sm.uid : sm.seq, sm.uid,
					  st->mails[idx].modseq);
		/* A message read for the search counts at once. */
		if (lc.loaded && mono_ms() >= end) {
			job->next_seq++;
			return false;
		}
	}
	return true;
}

/* The command's output callback: one more slice, then the answer.
   Returns true when the command is complete. */
static bool
search_continue(struct client_command *cmd)
{
	struct search_job *job = cmd->context;

	if (read_ahead_waiting(&job->ahead)) {
		cmd->output = NULL;     /* read_ahead_start()'s output goes on */
		return false;
	}
	if (!search_slice(cmd, job))
		return false;
	search_answer_write(cmd, &job->a);
	if (job->a.r_save) {
		/* A search that could not read every message saves what it
		   found: the NO says the result may be short. */
		search_answer_save(cmd->c, &job->a);
	}
	if (job->failed)
		cmd_tagged(cmd, "NO Some messages could not be read.");
	else if (job->expunged)
		cmd_tagged(cmd, "OK [EXPUNGEISSUED] Search completed; messages expunged "
			   "meanwhile were left out.");
	else
		cmd_tagged(cmd, "OK Search completed.");
	return true;
}

bool
cmd_search(struct client_command *cmd)
{
	struct client *c = cmd->c;
	const struct mbox_state *st = mailbox_state(c->mbox);
	struct search_key *key;
	const char *error = "Invalid search program.";
	bool badcharset = false;
	uint32_t max_uid = mbox_view_max_uid(c->view);
	const struct imap_arg *args = cmd->args;
	size_t nargs = cmd->count;
	struct search_answer a;
	struct search_job *job;
	const struct imap_arg *ret_list = NULL;

	i_zero(&a);
	if (nargs >= 2 && imap_arg_atom_equals(&args[0], "RETURN") &&
	    args[1].type == IMAP_ARG_LIST) {
		const char *reason = search_parse_return(&args[1], &a);
		ret_list = &args[1];
		if (reason != NULL)
			return search_failed(cmd, ret_list, reason);
		args += 2;
		nargs -= 2;
	} else if (c->rev2) {
		/* RFC 9051 6.4.4: IMAP4rev2 answers ESEARCH, ALL when no
		   result option is given. */
		a.esearch = true;
		a.r_all = true;
	}
	if (nargs == 0)
		return search_failed(cmd, ret_list, "SEARCH needs search keys.");
	if (search_parse_saved(args, nargs, st, (uint32_t)c->view->count, max_uid,
			       &c->searchres, &key, &error, &badcharset) < 0) {
		if (badcharset) {
			if (a.r_save)
				seqset_free(&c->searchres);
			cmd_tagged(cmd, "NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset.");
		} else {
			search_failed(cmd, ret_list, error);
		}
		return true;
	}
	if (c->uidonly && search_uses_seqnums(key)) {
		search_key_free(&key);
		return search_failed(cmd, ret_list,
				     "[UIDREQUIRED] No message numbers with UIDONLY.");
	}
	a.with_modseq = search_uses_modseq(key);
	if (a.with_modseq)
		client_enable_condstore(c, false);
	if (!a.esearch)
		buf_append_str(client_outbuf(c), "* SEARCH");
	job = xcalloc(1, sizeof(*job));
	job->key = key;
	job->a = a;
	job->next_seq = 1;
	job->reads_ahead = search_needs_message(key) && mailbox_reads_in_job(c->mbox);
	cmd->context = job;
	cmd->context_free = search_job_free;
	if (search_continue(cmd))
		return true;
	if (!read_ahead_waiting(&job->ahead))
		cmd->output = search_continue;
	return false;
}
