/* cmd_sort.c: SORT and UID SORT (RFC 5256, with SORT=DISPLAY of RFC
   5957), THREAD and UID THREAD (ORDEREDSUBJECT, REFERENCES).

   Like SEARCH they work in slices (CLIENT_SLICE_MS): the search program
   is matched and the sort keys read from each message's header a slice
   at a time, so that sorting a big mailbox never holds the loop for
   long; the ordering itself (n log n on keys in memory) and the answer
   come at the end. */
#include "imap_cmd.h"
#include "imap_client.h"
#include "search.h"
#include "sort.h"

#include <stdlib.h>
#include <strings.h>

struct sort_job {
	bool thread;
	enum thread_algo algo;
	struct sort_crit crits[SORT_MAX_CRITS];
	size_t crit_count;
	bool need_header;
	struct search_key *key;
	size_t next_seq;
	bool failed;
	bool expunged;          /* one was left out: OK [EXPUNGEISSUED] */
	struct buf msg;
	struct sort_msg *msgs;
	size_t count, alloc;
};

static void
sort_job_free(void *context)
{
	struct sort_job *job = context;

	search_key_free(&job->key);
	for (size_t i = 0; i < job->count; i++)
		sort_msg_clear(&job->msgs[i]);
	free(job->msgs);
	buf_free(&job->msg);
	free(job);
}

/* Matches and reads the keys of the messages from job->next_seq on, for
   one slice. Returns true when every message has been seen. */
static bool
sort_slice(struct client_command *cmd, struct sort_job *job)
{
	struct client *c = cmd->c;
	const struct mbox_state *st = mailbox_state(c->mbox);
	int64_t end = mono_ms() + CLIENT_SLICE_MS;
	size_t visited = 0;

	for (; job->next_seq <= c->view->count; job->next_seq++) {
		uint32_t seq = (uint32_t)job->next_seq;
		ssize_t idx = mbox_view_index(c->view, seq);
		const char *data = NULL;
		size_t len = 0;

		if (idx < 0) {
			job->expunged = true;
			continue;
		}
		if ((++visited & 63) == 0 && mono_ms() >= end)
			return false;
		struct search_load_ctx lc = { c, &st->mails[idx], &job->msg, false, NULL };
		struct search_msg sm = {
			.seq = seq,
			.uid = st->mails[idx].uid,
			.rec = &st->mails[idx],
			.recent = mbox_view_is_recent(c->view, st->mails[idx].uid),
			.load = search_load,
			.load_ctx = &lc,
		};
		int ret = search_match(job->key, &sm);

		if (ret < 0 || (ret > 0 && job->need_header && search_load(&lc, &data, &len) < 0)) {
			/* a message whose expunge is at work (its data may be
			   gone already) is left out, as one expunged */
			if (mailbox_expunging(c->mbox, sm.uid))
				job->expunged = true;
			else
				job->failed = true;
			goto next;
		}
		if (ret == 0)
			goto next;
		if (job->count == job->alloc) {
			job->alloc = job->alloc == 0 ? 64 : job->alloc * 2;
			job->msgs = xrealloc(job->msgs, job->alloc * sizeof(*job->msgs));
		}
		struct sort_msg *m = &job->msgs[job->count++];

		i_zero(m);
		m->seq = seq;
		sort_msg_fill(m, &st->mails[idx], data, len);
next:
		if (lc.loaded && mono_ms() >= end) {
			job->next_seq++;
			return false;
		}
	}
	return true;
}

static bool
sort_continue(struct client_command *cmd)
{
	struct sort_job *job = cmd->context;
	struct buf *out = client_outbuf(cmd->c);
	struct sort_msg **order;

	if (!sort_slice(cmd, job))
		return false;
	order = xmalloc((job->count > 0 ? job->count : 1) * sizeof(*order));
	for (size_t i = 0; i < job->count; i++)
		order[i] = &job->msgs[i];
	if (job->thread) {
		buf_append_str(out, "* THREAD");
		thread_write(job->algo, order, job->count, cmd->uid, out);
	} else {
		sort_msgs(order, job->count, job->crits, job->crit_count);
		buf_append_str(out, "* SORT");
		for (size_t i = 0; i < job->count; i++)
			buf_printf(out, " %u", cmd->uid ? order[i]->uid : order[i]->seq);
	}
	buf_append(out, "\r\n", 2);
	free(order);
	if (job->failed)
		cmd_tagged(cmd, "NO Some messages could not be read.");
	else if (job->expunged)
		cmd_tagged(cmd, job->thread ?
			   "OK [EXPUNGEISSUED] Thread completed; messages expunged meanwhile "
			   "were left out." :
			   "OK [EXPUNGEISSUED] Sort completed; messages expunged meanwhile "
			   "were left out.");
	else
		cmd_tagged(cmd, job->thread ? "OK Thread completed." : "OK Sort completed.");
	return true;
}

/* The shared tail: "charset search-keys" from args, then the job. */
static bool
sort_start(struct client_command *cmd, struct sort_job *job, const struct imap_arg *args,
	   size_t nargs)
{
	struct client *c = cmd->c;
	const struct mbox_state *st = mailbox_state(c->mbox);
	const char *error = "Invalid search program.", *charset = args != NULL ? args[0].str : "";
	bool badcharset = false;
	uint32_t max_uid = mbox_view_max_uid(c->view);

	if (nargs < 2 || !imap_arg_is_string(&args[0])) {
		free(job);
		return cmd_bad(cmd, "Missing charset and search keys.");
	}
	/* RFC 5256: US-ASCII and UTF-8 at least, as SEARCH takes them. */
	if (strcasecmp(charset, "UTF-8") != 0 && strcasecmp(charset, "US-ASCII") != 0) {
		free(job);
		cmd_tagged(cmd, "NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset.");
		return true;
	}
	if (search_parse_saved(args + 1, nargs - 1, st, (uint32_t)c->view->count, max_uid,
			       &c->searchres, &job->key, &error, &badcharset) < 0) {
		free(job);
		return cmd_bad(cmd, error);
	}
	if (c->uidonly && search_uses_seqnums(job->key)) {
		search_key_free(&job->key);
		free(job);
		return cmd_bad(cmd, "[UIDREQUIRED] No message numbers with UIDONLY.");
	}
	job->next_seq = 1;
	cmd->context = job;
	cmd->context_free = sort_job_free;
	if (sort_continue(cmd))
		return true;
	cmd->output = sort_continue;
	return false;
}

bool
cmd_sort(struct client_command *cmd)
{
	struct sort_job *job = xcalloc(1, sizeof(*job));
	const char *error = NULL;
	int n;

	if (cmd->count < 1 || (n = sort_parse(&cmd->args[0], job->crits, &error)) < 0) {
		free(job);
		return cmd_bad(cmd, error != NULL ? error : "SORT needs sort criteria.");
	}
	job->crit_count = (size_t)n;
	job->need_header = sort_needs_header(job->crits, job->crit_count);
	return sort_start(cmd, job, cmd->args + 1, cmd->count - 1);
}

bool
cmd_thread(struct client_command *cmd)
{
	struct sort_job *job = xcalloc(1, sizeof(*job));

	job->thread = true;
	job->need_header = true;
	if (cmd->count >= 1 && imap_arg_atom_equals(&cmd->args[0], "ORDEREDSUBJECT")) {
		job->algo = THREAD_ORDEREDSUBJECT;
	} else if (cmd->count >= 1 && imap_arg_atom_equals(&cmd->args[0], "REFERENCES")) {
		job->algo = THREAD_REFERENCES;
	} else {
		free(job);
		return cmd_bad(cmd, "Unknown thread algorithm (ORDEREDSUBJECT, REFERENCES).");
	}
	return sort_start(cmd, job, cmd->args + 1, cmd->count - 1);
}
