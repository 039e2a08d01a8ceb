/* cmd_mailbox.c: the mailbox commands of RFC 3501 6.3 (SELECT, EXAMINE,
   CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE), with QRESYNC select
   (RFC 7162), and NAMESPACE (RFC 2342). */
#include "imap_cmd.h"
#include "imap_client.h"
#include "imap_view.h"
#include "imap_util.h"
#include "log.h"
#include "mutf7.h"
#include "seqset.h"

#include <stdlib.h>

bool
cmd_namespace(struct client_command *cmd)
{
	client_send(cmd->c, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	cmd_tagged(cmd, "OK Namespace completed.");
	return true;
}

/* The QRESYNC select parameter (RFC 7162 3.2.5). */
struct qresync_param {
	bool given;
	uint32_t uidvalidity;
	uint64_t modseq;
	struct seqset known;       /* empty: not given */
	bool have_known;
	struct seqset match_seqs, match_uids;
	bool have_match;
};

static void
qresync_param_free(struct qresync_param *q)
{
	seqset_free(&q->known);
	seqset_free(&q->match_seqs);
	seqset_free(&q->match_uids);
}

/* Parses the SELECT parameter list. Returns NULL or a static reason. */
static const char *
parse_select_params(struct client *c, const struct imap_arg *list, bool *condstore_r,
		    struct qresync_param *q)
{
	for (size_t i = 0; i < list->list_count; i++) {
		const struct imap_arg *a = &list->list[i];
		uint64_t n;

		if (imap_arg_atom_equals(a, "CONDSTORE")) {
			*condstore_r = true;
			continue;
		}
		if (!imap_arg_atom_equals(a, "QRESYNC"))
			return "Unknown SELECT parameter.";
		if (!c->qresync)
			return "QRESYNC must be enabled first (ENABLE QRESYNC).";
		if (q->given || i + 1 >= list->list_count || list->list[i + 1].type != IMAP_ARG_LIST)
			return "QRESYNC needs (uidvalidity modseq [known-uids [seq-match]]).";
		const struct imap_arg *p = list->list[++i].list;
		size_t pc = list->list[i].list_count;
		if (pc < 2 || pc > 4 || !cmd_arg_number(&p[0], UINT32_MAX, &n) || n == 0)
			return "Invalid QRESYNC parameters.";
		q->uidvalidity = (uint32_t)n;
		if (!cmd_arg_number(&p[1], INT64_MAX, &q->modseq) || q->modseq == 0)
			return "Invalid QRESYNC mod-sequence.";
		if (pc >= 3) {
			if (p[2].type != IMAP_ARG_ATOM ||
			    seqset_parse(p[2].str, UINT32_MAX, &q->known) < 0)
				return "Invalid QRESYNC known-uids.";
			q->have_known = true;
		}
		if (pc == 4 && c->uidonly)
			return "[UIDREQUIRED] No sequence match data with UIDONLY.";
		if (pc == 4) {
			const struct imap_arg *m = &p[3];
			if (m->type != IMAP_ARG_LIST || m->list_count != 2 ||
			    m->list[0].type != IMAP_ARG_ATOM || m->list[1].type != IMAP_ARG_ATOM ||
			    seqset_parse(m->list[0].str, UINT32_MAX, &q->match_seqs) < 0 ||
			    seqset_parse(m->list[1].str, UINT32_MAX, &q->match_uids) < 0)
				return "Invalid QRESYNC sequence match data.";
			q->have_match = true;
		}
		q->given = true;
	}
	return NULL;
}

/* Walks the members of a set in ascending order. */
struct seqset_iter {
	const struct seqset *set;
	size_t range;
	uint64_t next;
};

static bool
seqset_iter_next(struct seqset_iter *it, uint32_t *n_r)
{
	while (it->range < it->set->count) {
		const struct seq_range *r = &it->set->ranges[it->range];
		if (it->next < r->lo)
			it->next = r->lo;
		if (it->next <= r->hi) {
			*n_r = (uint32_t)it->next++;
			return true;
		}
		it->range++;
	}
	return false;
}

/* Writes "* VANISHED (EARLIER) ..." and the FETCH of every changed
   message after a SELECT (QRESYNC ...) whose UIDVALIDITY matched. */
static void
qresync_select(struct client *c, struct qresync_param *q)
{
	const struct mbox_state *st = mailbox_state(c->mbox);
	const struct seqset *known = q->have_known ? &q->known : NULL;
	struct seqset vanished = { 0 };
	uint32_t known_upto = 0;

	if (!mailbox_vanished_since(c->mbox, q->modseq, known, &vanished) && q->have_match) {
		/* Inexact answer: the client's pairs that still match say it
		   knows every expunge up to that UID (RFC 7162 3.2.5.2). The
		   walk stops at the first mismatch, so it is bounded by the
		   view's size. */
		struct seqset_iter si = { &q->match_seqs, 0, 0 }, ui = { &q->match_uids, 0, 0 };
		uint32_t seq, uid;
		while (seqset_iter_next(&si, &seq) && seqset_iter_next(&ui, &uid)) {
			if (seq > c->view->count || mbox_view_uid(c->view, seq) != uid)
				break;
			known_upto = uid;
		}
	}
	if (vanished.count > 0 && known_upto > 0) {
		struct seqset rest = { 0 };
		for (size_t r = 0; r < vanished.count; r++) {
			if (vanished.ranges[r].hi > known_upto)
				seqset_add_range(&rest, vanished.ranges[r].lo > known_upto ?
							vanished.ranges[r].lo : known_upto + 1,
						 vanished.ranges[r].hi);
		}
		seqset_free(&vanished);
		vanished = rest;
	}
	if (vanished.count > 0) {
		buf_append_str(client_outbuf(c), "* VANISHED (EARLIER) ");
		seqset_write(&vanished, client_outbuf(c));
		buf_append_str(client_outbuf(c), "\r\n");
	}
	seqset_free(&vanished);
	for (size_t seq = 1; seq <= c->view->count; seq++) {
		ssize_t idx = mbox_view_index(c->view, (uint32_t)seq);
		if (idx < 0)
			continue;
		const struct mail_rec *rec = &st->mails[idx];
		if (rec->modseq <= q->modseq || (known != NULL && !seqset_contains(known, rec->uid)))
			continue;
		if (c->uidonly) /* RFC 9586 3 */
			buf_printf(client_outbuf(c), "* %u UIDFETCH (FLAGS ", rec->uid);
		else
			buf_printf(client_outbuf(c), "* %zu FETCH (UID %u FLAGS ", seq, rec->uid);
		imap_write_flags(client_outbuf(c), rec->flags, rec->keywords,
				 imap_view_shows_recent(c->view, rec->uid), st);
		buf_printf(client_outbuf(c), " MODSEQ (%llu))\r\n", (unsigned long long)rec->modseq);
	}
}

/* RFC 9051 6.3.2: IMAP4rev2's SELECT names the mailbox in an untagged
   LIST. Its attributes are the ones known without listing the user's
   mailboxes (the special use, which goes by name here); the name is the
   normalized one (INBOX in capitals). */
static void
select_write_list(struct client *c, const char *name)
{
	const char *special = special_use_attr(name);

	buf_printf(client_outbuf(c), "* LIST (%s) \"/\" ", special != NULL ? special : "");
	cmd_write_mailbox_name(c, client_outbuf(c), name);
	buf_append(client_outbuf(c), "\r\n", 2);
}

/* RFC 8474 4.2: SELECT and EXAMINE name the mailbox's MAILBOXID. */
static void
select_write_mailboxid(struct client *c, const char *name, const struct mbox_state *st)
{
	char id[STORAGE_OBJECTID_SIZE];

	storage_mailbox_id(c->user, name, st->uidvalidity, id);
	client_send(c, "* OK [MAILBOXID (%s)] Ok", id);
}

/* RFC 8474 4.1: CREATE answers with the new mailbox's MAILBOXID, which
   its UIDVALIDITY gives: the mailbox is opened (empty, cheap) to learn
   it. If that fails the mailbox exists all the same: a plain OK. */
static void
create_tagged_ok(struct client_command *cmd, const char *name)
{
	struct client *c = cmd->c;
	char id[STORAGE_OBJECTID_SIZE];
	enum storage_error err;
	struct mailbox *mbox;

	if (mailbox_open(c->gen->hub, c->sid, c->user, name, &mbox, &err) < 0) {
		cmd_tagged(cmd, "OK Create completed.");
		return;
	}
	storage_mailbox_id(c->user, name, mailbox_state(mbox)->uidvalidity, id);
	mailbox_unref(&mbox);
	cmd_tagged(cmd, "OK [MAILBOXID (%s)] Create completed.", id);
}

bool
cmd_select(struct client_command *cmd)
{
	struct client *c = cmd->c;
	bool readonly = ascii_strcasecmp(cmd->name, "EXAMINE") == 0;
	bool condstore = false;
	struct qresync_param q;
	enum storage_error err;
	struct mailbox *mbox;
	const char *error;
	char *name;

	if (cmd->count != 1 && !(cmd->count == 2 && cmd->args[1].type == IMAP_ARG_LIST))
		return cmd_bad(cmd, "SELECT needs one mailbox name (and parameters).");
	i_zero(&q);
	if (cmd->count == 2 &&
	    (error = parse_select_params(c, &cmd->args[1], &condstore, &q)) != NULL) {
		qresync_param_free(&q);
		return cmd_bad(cmd, error);
	}
	if ((name = cmd_arg_mailbox(cmd, 0)) == NULL) {
		qresync_param_free(&q);
		return true;
	}
	/* Selecting leaves the selected mailbox, even when it fails; the
	   CLOSED code marks where its responses end (RFC 7162 3.2.11). */
	if (c->mbox != NULL)
		client_send(c, "* OK [CLOSED] Previous mailbox closed.");
	client_unselect(c);
	if (mailbox_open(c->gen->hub, c->sid, c->user, name, &mbox, &err) < 0) {
		cmd_no_storage(cmd, err);
		qresync_param_free(&q);
		free(name);
		return true;
	}
	if (condstore || q.given)
		c->condstore = true;
	c->mbox = mbox;
	c->view = mbox_view_new(mbox, readonly, client_mailbox_notify, c);
	c->view->condstore = c->condstore;
	c->view->qresync = c->qresync;
	c->view->rev2 = c->rev2;
	c->view->uidonly = c->uidonly;
	c->state = CLIENT_SELECTED;

	const struct mbox_state *st = mailbox_state(mbox);
	/* [UNSEEN n] is a message number: none with UIDONLY (RFC 9586) */
	uint32_t unseen = c->uidonly ? 0 : mbox_view_first_unseen(c->view);

	imap_view_write_flag_lists(st, readonly, client_outbuf(c));
	c->keywords_announced = st->keyword_count;
	client_send(c, "* %zu EXISTS", c->view->count);
	if (!c->rev2)
		client_send(c, "* %zu RECENT", mbox_view_recent_count(c->view));
	else
		select_write_list(c, name);
	if (unseen != 0)
		client_send(c, "* OK [UNSEEN %u] First unseen.", unseen);
	client_send(c, "* OK [UIDVALIDITY %u] UIDs valid.", st->uidvalidity);
	client_send(c, "* OK [UIDNEXT %u] Predicted next UID.", st->uidnext);
	select_write_mailboxid(c, name, st);
	if (c->condstore)
		client_send(c, "* OK [HIGHESTMODSEQ %llu] Highest", imap_modseq(st->highest_modseq));
	if (q.given && q.uidvalidity == st->uidvalidity)
		qresync_select(c, &q);
	cmd_tagged(cmd, "OK [%s] %s completed.", readonly ? "READ-ONLY" : "READ-WRITE",
	       readonly ? "Examine" : "Select");
	log_debug(c->sid, "selected %s (%zu messages)", name, c->view->count);
	qresync_param_free(&q);
	free(name);
	return true;
}

bool
cmd_create(struct client_command *cmd)
{
	enum storage_error err;
	struct storage_call_args a = { 0 };
	int ret;
	char *name;

	if (cmd->count != 1 && !(cmd->count == 2 && cmd->args[1].type == IMAP_ARG_LIST))
		return cmd_bad(cmd, "CREATE needs one mailbox name.");
	if ((name = cmd_arg_mailbox(cmd, 0)) == NULL)
		return true;
	if (!mailbox_name_is_nfc(name)) {
		free(name);
		cmd_tagged(cmd, "NO [CANNOT] Mailbox name is not in Unicode normalization form C "
			   "(RFC 9051 5.1).");
		return true;
	}
	if (cmd->count == 2) {
		/* CREATE name (USE (attrs)) (RFC 6154 3): special-use is by
		   name here, so only the attribute the name has is accepted. */
		const struct imap_arg *l = &cmd->args[1];
		const char *attr = special_use_attr(name);
		if (l->list_count != 2 || !imap_arg_atom_equals(&l->list[0], "USE") ||
		    l->list[1].type != IMAP_ARG_LIST) {
			free(name);
			return cmd_bad(cmd, "CREATE: invalid parameters.");
		}
		for (size_t i = 0; i < l->list[1].list_count; i++) {
			const struct imap_arg *u = &l->list[1].list[i];
			if (u->type != IMAP_ARG_ATOM || attr == NULL ||
			    ascii_strcasecmp(u->str, attr) != 0) {
				cmd_tagged(cmd, "NO [USEATTR] Special-use attributes follow the "
					    "mailbox name here.");
				free(name);
				return true;
			}
		}
	}
	a.kind = STORAGE_CALL_CREATE;
	a.name = name;
	if (strcmp(name, "INBOX") == 0)
		cmd_tagged(cmd, "NO [ALREADYEXISTS] Mailbox already exists.");
	else if ((ret = cmd_storage_change(cmd, &a, &err)) > 0) {
		free(name);
		return false;
	} else if (ret < 0)
		cmd_no_storage(cmd, err);
	else {
		hub_signal(cmd->c->gen->hub, cmd->c->user, HUB_EVENT_CREATE, name, NULL);
		create_tagged_ok(cmd, name);
	}
	free(name);
	return true;
}

/* A mailbox that another session has selected is not deleted or renamed
   under it. */
static bool
mailbox_busy(struct client_command *cmd, const char *name)
{
	struct mailbox *mbox = hub_find(cmd->c->gen->hub, cmd->c->user, name);

	return mbox != NULL && mailbox_is_used(mbox);
}

bool
cmd_delete(struct client_command *cmd)
{
	struct client *c = cmd->c;
	enum storage_error err;
	struct storage_call_args a = { 0 };
	int ret;
	char *name;

	if (cmd->count != 1)
		return cmd_bad(cmd, "DELETE needs one mailbox name.");
	if ((name = cmd_arg_mailbox(cmd, 0)) == NULL)
		return true;
	a.kind = STORAGE_CALL_DELETE;
	a.name = name;
	if (strcmp(name, "INBOX") == 0)
		cmd_tagged(cmd, "NO [CANNOT] INBOX can't be deleted.");
	else if (!cmd_storage_change_done(cmd) && mailbox_busy(cmd, name))
		cmd_tagged(cmd, "NO [INUSE] Mailbox is selected by a session.");
	else {
		hub_forget(c->gen->hub, c->user, name);
		if ((ret = cmd_storage_change(cmd, &a, &err)) > 0) {
			free(name);
			return false;
		} else if (ret < 0)
			cmd_no_storage(cmd, err);
		else {
			hub_signal(c->gen->hub, c->user, HUB_EVENT_DELETE, name, NULL);
			cmd_tagged(cmd, "OK Delete completed.");
		}
	}
	free(name);
	return true;
}

/* RENAME moves the inferiors too (RFC 3501 6.3.5): none of the mailboxes
   it would move may be selected by a session (NO [INUSE], as for
   DELETE), and the hub lets go of the unused ones first. When the plan
   is refused the backend refuses the same way, with the reason logged. */
static bool
rename_prepare(struct client_command *cmd, const char *from, const char *to)
{
	struct client *c = cmd->c;
	struct strlist names = { 0 }, olds = { 0 }, news = { 0 };
	enum storage_error err;
	char *error = NULL;
	bool busy = false;

	if (cmd_storage_names(cmd, false, &names, &err) == 0 &&
	    storage_rename_plan(&names, from, to, &olds, &news, &err, &error) == 0) {
		for (size_t i = 0; i < olds.count && !busy; i++)
			busy = mailbox_busy(cmd, olds.items[i]) || mailbox_busy(cmd, news.items[i]);
		for (size_t i = 0; i < olds.count && !busy; i++) {
			hub_forget(c->gen->hub, c->user, olds.items[i]);
			hub_forget(c->gen->hub, c->user, news.items[i]);
		}
	}
	free(error);
	strlist_clear(&names);
	strlist_clear(&olds);
	strlist_clear(&news);
	return !busy;
}

bool
cmd_rename(struct client_command *cmd)
{
	struct client *c = cmd->c;
	enum storage_error err;
	struct storage_call_args a = { 0 };
	int ret;
	char *from, *to;

	if (cmd->count != 2)
		return cmd_bad(cmd, "RENAME needs two mailbox names.");
	if ((from = cmd_arg_mailbox(cmd, 0)) == NULL)
		return true;
	if ((to = cmd_arg_mailbox(cmd, 1)) == NULL) {
		free(from);
		return true;
	}
	if (strcmp(to, "INBOX") == 0)
		cmd_tagged(cmd, "NO [ALREADYEXISTS] INBOX always exists.");
	else if (!mailbox_name_is_nfc(to))
		cmd_tagged(cmd, "NO [CANNOT] Mailbox name is not in Unicode normalization "
			   "form C (RFC 9051 5.1).");
	else if (!cmd_storage_change_done(cmd) &&
		 (mailbox_busy(cmd, from) || mailbox_busy(cmd, to) ||
		  !rename_prepare(cmd, from, to)))
		cmd_tagged(cmd, "NO [INUSE] Mailbox is selected by a session.");
	else {
		a.kind = STORAGE_CALL_RENAME;
		a.name = from;
		a.newname = to;
		hub_forget(c->gen->hub, c->user, from);
		hub_forget(c->gen->hub, c->user, to);
		if ((ret = cmd_storage_change(cmd, &a, &err)) > 0) {
			free(from);
			free(to);
			return false;
		} else if (ret < 0)
			cmd_no_storage(cmd, err);
		else {
			hub_signal(c->gen->hub, c->user, HUB_EVENT_RENAME, to, from);
			cmd_tagged(cmd, "OK Rename completed.");
		}
	}
	free(from);
	free(to);
	return true;
}

bool
cmd_subscribe(struct client_command *cmd)
{
	struct client *c = cmd->c;
	bool subscribe = ascii_strcasecmp(cmd->name, "SUBSCRIBE") == 0;
	struct strlist subs = { 0 }, next = { 0 };
	enum storage_error err;
	struct storage_call_args a = { 0 };
	int ret;
	bool done = true;
	char *name;

	if (cmd->count != 1)
		return cmd_bad(cmd, "Needs one mailbox name.");
	if ((name = cmd_arg_mailbox(cmd, 0)) == NULL)
		return true;
	if (!cmd_storage_change_done(cmd)) {
		if (cmd_storage_names(cmd, true, &subs, &err) < 0) {
			cmd_no_storage(cmd, err);
			goto out;
		}
		for (size_t i = 0; i < subs.count; i++) {
			if (strcmp(subs.items[i], name) != 0)
				strlist_add(&next, subs.items[i]);
		}
		if (subscribe)
			strlist_add(&next, name);
	}
	a.kind = STORAGE_CALL_SUBSCRIPTIONS_WRITE;
	a.subs = &next;
	if ((ret = cmd_storage_change(cmd, &a, &err)) > 0) {
		done = false;
		goto out;
	} else if (ret < 0)
		cmd_no_storage(cmd, err);
	else {
		hub_signal(c->gen->hub, c->user,
			   subscribe ? HUB_EVENT_SUBSCRIBE : HUB_EVENT_UNSUBSCRIBE, name, NULL);
		cmd_tagged(cmd, "OK %s completed.", subscribe ? "Subscribe" : "Unsubscribe");
	}
out:
	strlist_clear(&subs);
	strlist_clear(&next);
	free(name);
	return done;
}
