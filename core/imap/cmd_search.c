/* cmd_search.c: SEARCH and UID SEARCH (RFC 3501 6.4.4), ESEARCH
   (RFC 4731) and MODSEQ search (RFC 7162). */
#include "imap_cmd.h"
#include "search.h"
#include "seqset.h"

#include <stdlib.h>

struct search_load_ctx {
	struct client *c;
	const struct mail_rec *rec;
	struct buf *msg;
	bool loaded;
};

static int
search_load(void *context, const char **data_r, size_t *len_r)
{
	struct search_load_ctx *lc = context;

	if (!lc->loaded) {
		buf_reset(lc->msg);
		if (mailbox_read(lc->c->mbox, lc->rec, lc->msg, lc->c->sid) < 0)
			return -1;
		lc->loaded = true;
	}
	*data_r = lc->msg->data != NULL ? lc->msg->data : "";
	*len_r = lc->msg->len;
	return 0;
}

bool
cmd_search(struct client_command *cmd)
{
	struct client *c = cmd->c;
	const struct mbox_state *st = mailbox_state(c->mbox);
	struct search_key *key;
	struct buf msg = BUF_INIT;
	const char *error = "Invalid search program.";
	bool badcharset = false, failed = false;
	uint32_t max_uid = c->view->count > 0 ? c->view->uids[c->view->count - 1] : 0;
	/* ESEARCH (RFC 4731): SEARCH RETURN (MIN MAX ALL COUNT) keys. */
	bool esearch = false, r_min = false, r_max = false, r_all = false, r_count = false;
	const struct imap_arg *args = cmd->args;
	size_t nargs = cmd->count;
	struct seqset result = { 0 };
	uint64_t count = 0, max_modseq = 0, min_modseq_of = 0, max_modseq_of = 0;
	uint32_t min_val = 0, max_val = 0;

	if (nargs >= 2 && imap_arg_atom_equals(&args[0], "RETURN") &&
	    args[1].type == IMAP_ARG_LIST) {
		esearch = true;
		for (size_t i = 0; i < args[1].list_count; i++) {
			const struct imap_arg *o = &args[1].list[i];
			if (imap_arg_atom_equals(o, "MIN"))
				r_min = true;
			else if (imap_arg_atom_equals(o, "MAX"))
				r_max = true;
			else if (imap_arg_atom_equals(o, "ALL"))
				r_all = true;
			else if (imap_arg_atom_equals(o, "COUNT"))
				r_count = true;
			else
				return cmd_bad(cmd, "Unknown SEARCH RETURN option.");
		}
		/* RETURN () means ALL. */
		if (!r_min && !r_max && !r_count)
			r_all = true;
		args += 2;
		nargs -= 2;
	}
	if (nargs == 0)
		return cmd_bad(cmd, "SEARCH needs search keys.");
	if (search_parse(args, nargs, st, (uint32_t)c->view->count, max_uid, &key,
			 &error, &badcharset) < 0) {
		if (badcharset)
			cmd_tagged(cmd, "NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset.");
		else
			cmd_bad(cmd, error);
		return true;
	}
	bool with_modseq = search_uses_modseq(key);
	if (with_modseq)
		client_enable_condstore(c, false);
	if (!esearch)
		buf_append_str(client_outbuf(c), "* SEARCH");
	for (size_t seq = 1; seq <= c->view->count; seq++) {
		ssize_t idx = mbox_view_index(c->view, (uint32_t)seq);
		if (idx < 0)
			continue;
		struct search_load_ctx lc = { c, &st->mails[idx], &msg, false };
		struct search_msg sm = {
			.seq = (uint32_t)seq,
			.uid = st->mails[idx].uid,
			.rec = &st->mails[idx],
			.recent = mbox_view_is_recent(c->view, st->mails[idx].uid),
			.load = search_load,
			.load_ctx = &lc,
		};
		int ret = search_match(key, &sm);
		if (ret < 0) {
			failed = true;
		} else if (ret > 0) {
			uint32_t v = cmd->uid ? sm.uid : sm.seq;
			if (!esearch)
				buf_printf(client_outbuf(c), " %u", v);
			else if (r_all)
				seqset_add_range(&result, v, v);
			if (count++ == 0) {
				min_val = v;
				min_modseq_of = st->mails[idx].modseq;
			}
			max_val = v;
			max_modseq_of = st->mails[idx].modseq;
			if (st->mails[idx].modseq > max_modseq)
				max_modseq = st->mails[idx].modseq;
		}
	}
	if (!esearch) {
		/* RFC 7162 3.1.6 */
		if (with_modseq && count > 0)
			buf_printf(client_outbuf(c), " (MODSEQ %llu)", (unsigned long long)max_modseq);
	} else {
		buf_append_str(client_outbuf(c), "* ESEARCH (TAG ");
		buf_append_imap_nstring(client_outbuf(c), cmd->tag);
		buf_append_c(client_outbuf(c), ')');
		if (cmd->uid)
			buf_append_str(client_outbuf(c), " UID");
		if (r_min && count > 0)
			buf_printf(client_outbuf(c), " MIN %u", min_val);
		if (r_max && count > 0)
			buf_printf(client_outbuf(c), " MAX %u", max_val);
		if (r_all && count > 0) {
			buf_append_str(client_outbuf(c), " ALL ");
			seqset_write(&result, client_outbuf(c));
		}
		if (r_count)
			buf_printf(client_outbuf(c), " COUNT %llu", (unsigned long long)count);
		/* RFC 7162 3.1.10: the highest mod-sequence of the messages
		   returned: MIN's and/or MAX's alone unless ALL or COUNT. */
		if (with_modseq && count > 0) {
			uint64_t m = max_modseq;
			if (!r_all && !r_count) {
				m = 0;
				if (r_min)
					m = min_modseq_of;
				if (r_max && max_modseq_of > m)
					m = max_modseq_of;
			}
			buf_printf(client_outbuf(c), " MODSEQ %llu", (unsigned long long)m);
		}
	}
	buf_append(client_outbuf(c), "\r\n", 2);
	seqset_free(&result);
	search_key_free(&key);
	buf_free(&msg);
	if (failed)
		cmd_tagged(cmd, "NO Some messages could not be read.");
	else
		cmd_tagged(cmd, "OK Search completed.");
	return true;
}
