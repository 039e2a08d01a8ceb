/* cmd_list.c: LIST and LSUB (RFC 3501 6.3.8-9, LIST-EXTENDED RFC 5258,
   SPECIAL-USE RFC 6154) and STATUS (RFC 3501 6.3.10). */
#include "imap_cmd.h"
#include "imap_client.h"
#include "imap_util.h"
#include "mutf7.h"

#include <stdlib.h>

/* LIST wildcard match (RFC 3501 6.3.8): '*' matches anything, '%' anything
   but the hierarchy delimiter. Dynamic programming over pattern x name, so
   a pattern like "*a*a*a*b" costs O(len * len), never exponential. */
static bool
list_match(const char *pattern, const char *name)
{
	size_t plen = strlen(pattern), nlen = strlen(name);
	bool *row = xcalloc(nlen + 1, sizeof(bool)), *next = xcalloc(nlen + 1, sizeof(bool));
	bool ret;

	row[0] = true;
	for (size_t j = 1; j <= nlen; j++)
		row[j] = false;
	for (size_t i = 0; i < plen; i++) {
		char p = pattern[i];
		/* INBOX matches case-insensitively at the start of a name. */
		bool ci = i < 5 && ascii_strncasecmp(pattern, "INBOX", 5) == 0;
		next[0] = row[0] && (p == '*' || p == '%');
		for (size_t j = 1; j <= nlen; j++) {
			char n = name[j - 1];
			if (p == '*')
				next[j] = next[j - 1] || row[j];
			else if (p == '%')
				next[j] = (next[j - 1] && n != '/') || row[j];
			else if (ci)
				next[j] = row[j - 1] && ascii_strncasecmp(&p, &n, 1) == 0;
			else
				next[j] = row[j - 1] && p == n;
		}
		bool *tmp = row;
		row = next;
		next = tmp;
	}
	ret = row[nlen];
	free(row);
	free(next);
	return ret;
}

/* Sorted name sets (strlist_sort(): strcmp order). The inferiors of a
   name, the names that start with "name/", are one run of such a set, so
   membership and inferiors cost a binary search and LIST costs
   O(n log n) in the number of mailboxes, not O(n^2). */

/* Index of the first name of sorted that is not below key. */
static size_t
sorted_lower_bound(const struct strlist *sorted, const char *key)
{
	size_t lo = 0, hi = sorted->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(sorted->items[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool
sorted_contains(const struct strlist *sorted, const char *name)
{
	size_t i = sorted_lower_bound(sorted, name);

	return i < sorted->count && strcmp(sorted->items[i], name) == 0;
}

/* Index of the first inferior of name in sorted (sorted->count if none):
   the inferiors are the run of names from there that start with
   "name/". */
static size_t
sorted_inferiors(const struct strlist *sorted, const char *name)
{
	char *key = xasprintf("%s/", name);
	size_t i = sorted_lower_bound(sorted, key);

	if (i < sorted->count && strncmp(sorted->items[i], key, strlen(key)) != 0)
		i = sorted->count;
	free(key);
	return i;
}

static bool
name_has_children(const struct strlist *sorted, const char *name)
{
	return sorted_inferiors(sorted, name) < sorted->count;
}

/* Sorts list and drops the duplicates. */
static void
sorted_make(struct strlist *list)
{
	size_t out = 0;

	strlist_sort(list);
	for (size_t i = 0; i < list->count; i++) {
		if (out > 0 && strcmp(list->items[out - 1], list->items[i]) == 0)
			free(list->items[i]);
		else
			list->items[out++] = list->items[i];
	}
	list->count = out;
	if (list->items != NULL)
		list->items[out] = NULL;
}

/* LIST options (RFC 5258 LIST-EXTENDED, RFC 6154 SPECIAL-USE). */
struct list_opts {
	bool sel_subscribed, sel_recursive, sel_special;
	bool ret_subscribed, ret_special;
	bool extended;             /* any option or several patterns given */
	/* RETURN (STATUS (...)): RFC 5819, RFC 9051 6.3.9 */
	bool ret_status;
	struct status_items status;
};

static const char *status_items_parse(const struct imap_arg *list,
				      struct status_items *items);

static const char *
parse_list_select(const struct imap_arg *list, struct list_opts *o)
{
	bool remote = false;

	for (size_t i = 0; i < list->list_count; i++) {
		const struct imap_arg *a = &list->list[i];
		if (imap_arg_atom_equals(a, "SUBSCRIBED"))
			o->sel_subscribed = true;
		else if (imap_arg_atom_equals(a, "REMOTE"))
			remote = true;
		else if (imap_arg_atom_equals(a, "RECURSIVEMATCH"))
			o->sel_recursive = true;
		else if (imap_arg_atom_equals(a, "SPECIAL-USE"))
			o->sel_special = true;
		else
			return "Unknown LIST selection option.";
	}
	(void)remote;
	/* RFC 5258 3: RECURSIVEMATCH alone (or with REMOTE only) is BAD. */
	if (o->sel_recursive && !o->sel_subscribed && !o->sel_special)
		return "RECURSIVEMATCH needs another selection option.";
	return NULL;
}

static const char *
parse_list_return(const struct imap_arg *list, struct list_opts *o)
{
	for (size_t i = 0; i < list->list_count; i++) {
		const struct imap_arg *a = &list->list[i];
		if (imap_arg_atom_equals(a, "SUBSCRIBED"))
			o->ret_subscribed = true;
		else if (imap_arg_atom_equals(a, "CHILDREN"))
			; /* \HasChildren / \HasNoChildren are always sent */
		else if (imap_arg_atom_equals(a, "SPECIAL-USE"))
			o->ret_special = true;
		else if (imap_arg_atom_equals(a, "STATUS") && i + 1 < list->list_count &&
			 list->list[i + 1].type == IMAP_ARG_LIST) {
			const char *error = status_items_parse(&list->list[++i], &o->status);
			if (error != NULL)
				return error;
			o->ret_status = true;
		} else
			return "Unknown LIST return option.";
	}
	return NULL;
}

static bool list_match_any(const struct strlist *patterns, const char *name, bool *pct_r);

/* RFC 5258 3.5 (RECURSIVEMATCH): true if name has a descendant in sorted
   that the patterns do not match (so it is not listed itself). */
static bool
has_unlisted_descendant(const struct strlist *sorted, const char *name,
			const struct strlist *patterns)
{
	size_t len = strlen(name);
	bool pct;

	for (size_t i = sorted_inferiors(sorted, name);
	     i < sorted->count && strncmp(sorted->items[i], name, len) == 0 &&
	     sorted->items[i][len] == '/';
	     i++) {
		if (!list_match_any(patterns, sorted->items[i], &pct))
			return true;
	}
	return false;
}

static bool
list_match_any(const struct strlist *patterns, const char *name, bool *pct_r)
{
	bool any = false;

	*pct_r = false;
	for (size_t i = 0; i < patterns->count; i++) {
		if (list_match(patterns->items[i], name)) {
			any = true;
			if (strchr(patterns->items[i], '%') != NULL)
				*pct_r = true;
		}
	}
	return any;
}

/* Parses the arguments of LIST or LSUB: [(selection)] reference
   pattern(s) [RETURN (options)] into o and the full patterns (reference
   joined, UTF-8). Returns false when they are good, true when the
   command has been answered (BAD, or the root of an empty pattern). */
static bool
list_parse_args(struct client_command *cmd, bool lsub, struct list_opts *o,
		struct strlist *patterns)
{
	const struct imap_arg *pat_arg, *pats;
	const char *ref, *error;
	char *uref = NULL;
	size_t i = 0, npats = 1;

	if (!lsub && cmd->count > 0 && cmd->args[0].type == IMAP_ARG_LIST) {
		if ((error = parse_list_select(&cmd->args[0], o)) != NULL)
			return cmd_bad(cmd, error);
		o->extended = true;
		i++;
	}
	ref = cmd_arg_str(cmd, i);
	pat_arg = i + 1 < cmd->count ? &cmd->args[i + 1] : NULL;
	if (ref == NULL || pat_arg == NULL)
		return cmd_bad(cmd, "LIST needs a reference and a mailbox pattern.");
	if (i + 2 < cmd->count) {
		if (lsub || i + 4 != cmd->count || !imap_arg_atom_equals(&cmd->args[i + 2], "RETURN") ||
		    cmd->args[i + 3].type != IMAP_ARG_LIST)
			return cmd_bad(cmd, "LIST: invalid arguments.");
		if ((error = parse_list_return(&cmd->args[i + 3], o)) != NULL)
			return cmd_bad(cmd, error);
		o->extended = true;
	}
	if (imap_name_decode(ref, cmd->c->rev2, false, &uref) < 0)
		return cmd_bad(cmd, cmd->c->rev2 ? "LIST reference is not valid UTF-8." :
					   "LIST reference is not valid modified UTF-7.");
	/* One pattern, or a list of them (LIST-EXTENDED). */
	pats = pat_arg;
	if (pat_arg->type == IMAP_ARG_LIST) {
		if (lsub || pat_arg->list_count == 0) {
			free(uref);
			return cmd_bad(cmd, "LIST: invalid mailbox patterns.");
		}
		pats = pat_arg->list;
		npats = pat_arg->list_count;
		o->extended = true;
	}
	for (size_t p = 0; p < npats; p++) {
		char *upat;

		if (!imap_arg_is_astring(&pats[p]) || strlen(pats[p].str) != pats[p].len ||
		    imap_name_decode(pats[p].str, cmd->c->rev2, true, &upat) < 0) {
			free(uref);
			return cmd_bad(cmd, "LIST: invalid mailbox pattern.");
		}
		if (*upat == '\0' && npats == 1 && !o->extended && !lsub) {
			/* The hierarchy delimiter and root (RFC 3501 6.3.8). */
			free(upat);
			free(uref);
			client_send(cmd->c, "* LIST (\\Noselect) \"/\" \"\"");
			cmd_tagged(cmd, "OK List completed.");
			return true;
		}
		if (*uref != '\0' && *upat != '/' && uref[strlen(uref) - 1] != '/' && *upat != '\0')
			strlist_add_take(patterns, xasprintf("%s/%s", uref, upat));
		else
			strlist_add_take(patterns, xasprintf("%s%s", uref, upat));
		free(upat);
	}
	free(uref);
	return false;
}

/* Adds to all (then sorted) names and their superiors that are not
   mailboxes (storage.h: a \Noselect name exists while it has
   inferiors), listed as \Noselect (or \NonExistent) \HasChildren when a
   pattern matches them, by '*' as by '%' (RFC 3501 6.3.8 and its example
   in 6.3.4, as Dovecot does). */
static void
list_add_parents(const struct strlist *names, struct strlist *all)
{
	for (size_t k = 0; k < names->count; k++) {
		strlist_add(all, names->items[k]);
		for (char *p = strchr(names->items[k], '/'); p != NULL; p = strchr(p + 1, '/'))
			strlist_add_take(all, xstrndup(names->items[k],
						       (size_t)(p - names->items[k])));
	}
	sorted_make(all);
}

/* The nearest parent of a subscribed name that a '%' pattern matches and
   that is not subscribed itself (malloc'ed), or NULL. subs is sorted. */
static char *
lsub_noselect_parent(const char *name, const struct strlist *subs,
		     const struct strlist *patterns)
{
	char *parent = NULL;
	bool pct;

	for (char *p = strrchr(name, '/'); p != NULL && parent == NULL;) {
		char *cand = xstrndup(name, (size_t)(p - name));
		if (list_match_any(patterns, cand, &pct) && pct && !sorted_contains(subs, cand))
			parent = cand;
		else
			free(cand);
		while (--p > name && *p != '/')
			;
		if (p <= name)
			p = NULL;
	}
	return parent;
}

/* The LSUB lines. RFC 3501 6.3.9: with "%", a subscribed "foo/bar" whose
   parent "foo" is not subscribed shows "foo" as \Noselect. A subscribed
   name is listed as it is, whether a mailbox has it or not (RFC 3501
   leaves it open; Dovecot does so). */
static void
lsub_write_line(struct client *c, const char *name, bool noselect)
{
	buf_printf(client_outbuf(c), "* LSUB (%s) \"/\" ", noselect ? "\\Noselect" : "");
	cmd_write_mailbox_name(c, client_outbuf(c), name);
	buf_append(client_outbuf(c), "\r\n", 2);
}

/* subs is sorted, without duplicates. */
static void
lsub_write(struct client *c, const struct strlist *subs, const struct strlist *patterns)
{
	struct strlist parents = { 0 };

	for (size_t k = 0; k < subs->count; k++) {
		char *parent;
		bool pct;

		if (list_match_any(patterns, subs->items[k], &pct))
			lsub_write_line(c, subs->items[k], false);
		else if ((parent = lsub_noselect_parent(subs->items[k], subs, patterns)) != NULL)
			strlist_add_take(&parents, parent);
	}
	sorted_make(&parents);
	for (size_t k = 0; k < parents.count; k++)
		lsub_write_line(c, parents.items[k], true);
	strlist_clear(&parents);
}

/* What LIST knows of one name. */
struct list_entry {
	const char *name;
	bool real, subscribed, childinfo;
	const char *special;
};

/* Writes the LIST line of one name. */
static void
list_write_entry(struct client *c, const struct list_opts *o, const struct list_entry *e,
		 const struct strlist *all, const struct strlist *subs)
{
	struct buf attrs = BUF_INIT;

	/* A name that is not a mailbox: \Noselect to a LIST of RFC 3501,
	   \NonExistent (which implies it) to an extended one (RFC 5258
	   3, RFC 9051 6.3.9.4), as Dovecot answers. */
	if (!e->real)
		buf_append_str(&attrs, o->extended ? "\\NonExistent" : "\\Noselect");
	if (attrs.len > 0)
		buf_append_c(&attrs, ' ');
	buf_append_str(&attrs, name_has_children(all, e->name) ? "\\HasChildren" :
								 "\\HasNoChildren");
	if (e->subscribed && (o->sel_subscribed || o->ret_subscribed))
		buf_append_str(&attrs, " \\Subscribed");
	if (e->special != NULL) {
		buf_append_c(&attrs, ' ');
		buf_append_str(&attrs, e->special);
	}
	buf_printf(client_outbuf(c), "* LIST (%s) \"/\" ", attrs.data);
	cmd_write_mailbox_name(c, client_outbuf(c), e->name);
	if (e->childinfo)
		buf_append_str(client_outbuf(c), " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	buf_append(client_outbuf(c), "\r\n", 2);
	buf_free(&attrs);
}

/* The LIST lines of every name of all the patterns and the selection
   options let through. names, subs and all are sorted. With status_r,
   nothing is written: the names whose STATUS would follow are added to
   it. */
static void
list_write(struct client *c, const struct list_opts *o, const struct strlist *names,
	   const struct strlist *subs, const struct strlist *all, const struct strlist *patterns,
	   struct strlist *status_r)
{
	for (size_t k = 0; k < all->count; k++) {
		struct list_entry e = { .name = all->items[k] };
		bool pct;

		e.real = sorted_contains(names, e.name);
		e.subscribed = sorted_contains(subs, e.name);
		e.special = e.real ? special_use_attr(e.name) : NULL;
		if (!list_match_any(patterns, e.name, &pct))
			continue;
		if (o->sel_subscribed || o->sel_special) {
			bool selected = (!o->sel_subscribed || e.subscribed) &&
					(!o->sel_special || e.special != NULL);
			if (o->sel_recursive && o->sel_subscribed &&
			    has_unlisted_descendant(subs, e.name, patterns))
				e.childinfo = true;
			if (!selected && !e.childinfo)
				continue;
		}
		if (status_r != NULL) {
			if (o->ret_status && e.real)
				strlist_add(status_r, e.name);
			continue;
		}
		list_write_entry(c, o, &e, all, subs);
		/* LIST-STATUS: a STATUS after each mailbox that can be
		   selected, none for a name that is not one (RFC 5819 1). A
		   mailbox that cannot be opened now is left out; its LIST
		   line stands. */
		if (o->ret_status && e.real) {
			enum storage_error err;
			(void)imap_status_write(c, e.name, &o->status, &err);
		}
	}
}

/* A LIST with RETURN (STATUS) whose mailboxes are opened first: a first
   open that works in a job (a database's read of the mailbox, a flat
   mail file without an index) is waited for, not made in the loop; the
   answer is written once every one is open (each LIST line followed by
   its STATUS, RFC 9051 6.3.9). */
struct list_job {
	struct list_opts o;
	struct strlist names, subs, all, patterns, status;
	/* the next to open; the open of status.items[started - 1] was
	   started (one at a time: a worker each, shared with every session) */
	size_t next, started;
	struct mailbox **held;     /* kept open until the answer */
	size_t held_count;
	struct mailbox_waiter *waiter;
};

static void
list_job_free(void *context)
{
	struct list_job *job = context;

	mailbox_waiter_cancel(&job->waiter);
	for (size_t i = 0; i < job->held_count; i++)
		mailbox_unref(&job->held[i]);
	free(job->held);
	strlist_clear(&job->names);
	strlist_clear(&job->subs);
	strlist_clear(&job->all);
	strlist_clear(&job->patterns);
	strlist_clear(&job->status);
	free(job);
}

static bool list_status_continue(struct client_command *cmd);

static void
list_status_opened(void *ctx)
{
	struct client_command *cmd = ctx;
	struct list_job *job = cmd->context;

	job->waiter = NULL;
	cmd->output = list_status_continue;
	client_resume(cmd->c);
}

/* Opens the mailboxes to STATUS, one after the other. Returns false
   while one is being opened in a job (the command waits for it). */
static bool
list_status_open(struct client_command *cmd, struct list_job *job)
{
	struct client *c = cmd->c;

	for (; job->next < job->status.count; job->next++) {
		const char *name = job->status.items[job->next];
		struct mailbox *mbox = hub_find(c->gen->hub, c->user, name);
		enum storage_error err;

		/* (one whose open was started and failed is not started again) */
		if (mbox != NULL || job->started != job->next + 1)
			mbox = hub_open_start(c->gen->hub, c->sid, c->user, name);
		if (mbox != NULL) {
			job->started = job->next + 1;
			job->waiter = mailbox_wait_idle(mbox, list_status_opened, cmd);
			cmd->output = NULL;
			return false;
		}
		/* open now (cheap, or as without jobs); one that cannot be
		   opened gets no STATUS (as below) */
		if (mailbox_open(c->gen->hub, c->sid, c->user, name, &mbox, &err) == 0) {
			job->held = xrealloc(job->held, (job->held_count + 1) * sizeof(*job->held));
			job->held[job->held_count++] = mbox;
		}
	}
	return true;
}

static bool
list_status_continue(struct client_command *cmd)
{
	struct list_job *job = cmd->context;

	if (!list_status_open(cmd, job))
		return false;
	list_write(cmd->c, &job->o, &job->names, &job->subs, &job->all, &job->patterns, NULL);
	cmd_tagged(cmd, "OK List completed.");
	return true;
}

bool
cmd_list(struct client_command *cmd)
{
	struct client *c = cmd->c;
	bool lsub = ascii_strcasecmp(cmd->name, "LSUB") == 0;
	struct list_opts o;
	struct strlist names = { 0 }, subs = { 0 }, all = { 0 }, patterns = { 0 };
	enum storage_error err;

	i_zero(&o);
	if (list_parse_args(cmd, lsub, &o, &patterns))
		goto out;
	if ((lsub || o.sel_subscribed || o.ret_subscribed) &&
	    cmd_storage_names(cmd, true, &subs, &err) < 0) {
		cmd_no_storage(cmd, err);
		goto out;
	}
	sorted_make(&subs);
	if (lsub) {
		lsub_write(c, &subs, &patterns);
		cmd_tagged(cmd, "OK Lsub completed.");
		goto out;
	}
	if (cmd_storage_names(cmd, false, &names, &err) < 0) {
		cmd_no_storage(cmd, err);
		goto out;
	}
	sorted_make(&names);
	if (o.sel_subscribed) {
		/* Subscribed names that no longer exist are listed too, as
		   \NonExistent (RFC 5258 3.1). */
		for (size_t k = 0; k < subs.count; k++)
			strlist_add(&all, subs.items[k]);
	}
	list_add_parents(&names, &all);
	if (o.ret_status) {
		struct list_job *job = xcalloc(1, sizeof(*job));

		job->o = o;
		job->names = names;
		job->subs = subs;
		job->all = all;
		job->patterns = patterns;
		i_zero(&names);
		i_zero(&subs);
		i_zero(&all);
		i_zero(&patterns);
		list_write(c, &job->o, &job->names, &job->subs, &job->all, &job->patterns,
			   &job->status);
		cmd->context = job;
		cmd->context_free = list_job_free;
		if (list_status_continue(cmd))
			return true;
		return false;   /* list_status_opened() goes on */
	}
	list_write(c, &o, &names, &subs, &all, &patterns, NULL);
	cmd_tagged(cmd, "OK List completed.");
out:
	strlist_clear(&patterns);
	strlist_clear(&names);
	strlist_clear(&all);
	strlist_clear(&subs);
	return true;
}

/* The STATUS items (RFC 3501 6.3.10, RFC 9051 6.3.11: SIZE and DELETED
   too, RFC 7162 HIGHESTMODSEQ, RFC 8474 MAILBOXID, RFC 9208
   DELETED-STORAGE), as bits, in the order given. */
enum status_item {
	STATUS_MESSAGES,
	STATUS_RECENT,
	STATUS_UIDNEXT,
	STATUS_UIDVALIDITY,
	STATUS_UNSEEN,
	STATUS_HIGHESTMODSEQ,
	STATUS_SIZE,
	STATUS_DELETED,
	STATUS_MAILBOXID,      /* RFC 8474 4.3 */
	STATUS_DELETED_STORAGE, /* RFC 9208 4.2: KiB an EXPUNGE would free */
	STATUS_ITEM_COUNT
};

static const char *const status_item_names[STATUS_ITEM_COUNT] = {
	[STATUS_MESSAGES] = "MESSAGES",
	[STATUS_RECENT] = "RECENT",
	[STATUS_UIDNEXT] = "UIDNEXT",
	[STATUS_UIDVALIDITY] = "UIDVALIDITY",
	[STATUS_UNSEEN] = "UNSEEN",
	[STATUS_HIGHESTMODSEQ] = "HIGHESTMODSEQ",
	[STATUS_SIZE] = "SIZE",
	[STATUS_DELETED] = "DELETED",
	[STATUS_MAILBOXID] = "MAILBOXID",
	[STATUS_DELETED_STORAGE] = "DELETED-STORAGE",
};

/* Parses a STATUS item list into items (in the order asked, at most one
   of each); NULL, or the reason it is not one. */
static const char *
status_items_parse(const struct imap_arg *list, struct status_items *items)
{
	i_zero(items);
	if (list->type != IMAP_ARG_LIST || list->list_count == 0)
		return "STATUS needs a list of items.";
	for (size_t i = 0; i < list->list_count; i++) {
		const struct imap_arg *it = &list->list[i];
		size_t k;

		if (it->type != IMAP_ARG_ATOM)
			return "Unknown STATUS item.";
		for (k = 0; k < STATUS_ITEM_COUNT; k++) {
			if (ascii_strcasecmp(it->str, status_item_names[k]) == 0)
				break;
		}
		if (k == STATUS_ITEM_COUNT)
			return "Unknown STATUS item.";
		if (items->count < N_ELEMENTS(items->order))
			items->order[items->count++] = (uint8_t)k;
	}
	return NULL;
}

/* The values of the items for st. One pass over the messages at most
   (RECENT, UNSEEN, SIZE and DELETED count them, as a listing would). */
static void
status_values(const struct mbox_state *st, const struct status_items *items,
	      uint64_t values[STATUS_ITEM_COUNT])
{
	bool scan = false;

	memset(values, 0, sizeof(uint64_t) * STATUS_ITEM_COUNT);
	for (size_t i = 0; i < items->count; i++) {
		uint8_t k = items->order[i];
		scan |= k == STATUS_RECENT || k == STATUS_UNSEEN || k == STATUS_SIZE ||
			k == STATUS_DELETED || k == STATUS_DELETED_STORAGE;
	}
	values[STATUS_MESSAGES] = st->count;
	values[STATUS_UIDNEXT] = st->uidnext;
	values[STATUS_UIDVALIDITY] = st->uidvalidity;
	/* RFC 7162 3.1.7 */
	values[STATUS_HIGHESTMODSEQ] = imap_modseq(st->highest_modseq);
	for (size_t j = 0; scan && j < st->count; j++) {
		const struct mail_rec *rec = &st->mails[j];

		values[STATUS_RECENT] += rec->uid >= st->first_recent_uid;
		values[STATUS_UNSEEN] += (rec->flags & MAIL_SEEN) == 0;
		values[STATUS_DELETED] += (rec->flags & MAIL_DELETED) != 0;
		if ((rec->flags & MAIL_DELETED) != 0)
			values[STATUS_DELETED_STORAGE] += rec->size;
		values[STATUS_SIZE] += rec->size;
	}
	/* in units of 1024 octets, as the STORAGE resource (RFC 9208) */
	values[STATUS_DELETED_STORAGE] = (values[STATUS_DELETED_STORAGE] + 1023) / 1024;
}

/* "MAILBOXID (id)" (RFC 8474 4.3): derived from the UIDVALIDITY (storage.h). */
static void
status_write_mailboxid(struct client *c, const char *name, const struct mbox_state *st,
		       bool space, struct buf *out)
{
	char id[STORAGE_OBJECTID_SIZE];

	storage_mailbox_id(c->user, name, st->uidvalidity, id);
	buf_printf(out, "%sMAILBOXID (%s)", space ? " " : "", id);
}

int
imap_status_write(struct client *c, const char *name, const struct status_items *items,
		  enum storage_error *err_r)
{
	struct buf *out = client_outbuf(c);
	uint64_t values[STATUS_ITEM_COUNT];
	struct mailbox *mbox;

	if (mailbox_open(c->gen->hub, c->sid, c->user, name, &mbox, err_r) < 0)
		return -1;
	status_values(mailbox_state(mbox), items, values);
	buf_append_str(out, "* STATUS ");
	cmd_write_mailbox_name(c, out, name);
	buf_append_str(out, " (");
	for (size_t i = 0; i < items->count; i++) {
		uint8_t k = items->order[i];

		if (k == STATUS_MAILBOXID) {
			status_write_mailboxid(c, name, mailbox_state(mbox), i > 0, out);
			continue;
		}
		buf_printf(out, "%s%s %llu", i > 0 ? " " : "", status_item_names[k],
			   (unsigned long long)values[k]);
	}
	buf_append_str(out, ")\r\n");
	mailbox_unref(&mbox);
	return 0;
}

bool
cmd_status(struct client_command *cmd)
{
	struct client *c = cmd->c;
	struct status_items items;
	enum storage_error err;
	const char *error;
	char *name;

	if (cmd->count != 2)
		return cmd_bad(cmd, "STATUS needs a mailbox and a list of items.");
	if ((error = status_items_parse(&cmd->args[1], &items)) != NULL)
		return cmd_bad(cmd, error);
	if ((name = cmd_arg_mailbox(cmd, 0)) == NULL)
		return true;
	if (imap_status_write(c, name, &items, &err) < 0)
		cmd_no_storage(cmd, err);
	else
		cmd_tagged(cmd, "OK Status completed.");
	free(name);
	return true;
}
