/* notify.c: serving NOTIFY (RFC 5465) to a session (see notify.h for
   what it keeps and what it costs). */
#include "notify.h"
#include "event.h"
#include "fetch.h"
#include "imap_client.h"
#include "imap_cmd.h"
#include "imap_util.h"
#include "log.h"
#include "mailbox.h"
#include "watch.h"

#include <stdlib.h>

struct notify;

/* A mailbox whose message events the session hears of (not while it
   is the selected one: those come as EXISTS, EXPUNGE and FETCH). */
struct notify_box {
	struct notify *n;
	char *name;
	unsigned events;
	struct watch_entry **watches;
	size_t watch_count;
	bool pending;
	/* What the client was last told (or what it was at NOTIFY SET). */
	bool known;
	uint32_t messages, uidnext, uidvalidity, unseen;
	uint64_t modseq;
};

struct notify {
	struct client *c;
	struct notify_spec spec;
	struct hub_listener *listener;
	struct notify_box **boxes;
	size_t box_count, box_alloc;
	/* The user's subscriptions, kept only for a subscribed filter. */
	struct strlist subs;
	bool want_subs;
	/* LIST lines not yet sent (MailboxName, SubscriptionChange). */
	struct buf lines;
	bool any_pending;
	/* The selected mailbox changed (told between commands with
	   selected events). */
	bool selected_pending;
	/* Too much queued: told and ended at the next flush. */
	bool overflow;
	struct event_timer *timer;
	/* MessageNew (fetch-att): the selected mailbox's highest UID the
	   client was sent FETCH for (or that it had at SELECT). */
	bool fetch_known;
	uint32_t fetch_uid;
	/* Its messages read in a job (a backend whose reads are round
	   trips): the UIDs asked; once read (read_done), their FETCH is
	   written at the next response boundary. */
	struct mailbox_read_op *reading;
	uint32_t *reading_uids;
	size_t reading_count;
	bool read_done;
};

struct notify_status {
	uint32_t messages, uidnext, uidvalidity, unseen;
	uint64_t modseq;
};

void
notify_spec_free(struct notify_spec *spec)
{
	for (size_t i = 0; i < spec->filter_count; i++)
		strlist_clear(&spec->filters[i].names);
	free(spec->filters);
	fetch_spec_free(&spec->new_fetch);
	i_zero(spec);
}

static bool
name_in_subtree(const char *name, const char *top)
{
	size_t len = strlen(top);

	return strncmp(name, top, len) == 0 && (name[len] == '\0' || name[len] == '/');
}

unsigned
notify_spec_match(const struct notify_spec *spec, const struct strlist *subs, const char *name)
{
	unsigned events = 0;

	for (size_t i = 0; i < spec->filter_count; i++) {
		const struct notify_filter *f = &spec->filters[i];
		bool match = false;

		switch (f->type) {
		case NOTIFY_FILTER_PERSONAL:
			match = true;
			break;
		case NOTIFY_FILTER_INBOXES:
			match = strcmp(name, "INBOX") == 0;
			break;
		case NOTIFY_FILTER_SUBSCRIBED:
			match = subs != NULL && strlist_contains(subs, name);
			break;
		case NOTIFY_FILTER_SUBTREE:
			for (size_t k = 0; k < f->names.count && !match; k++)
				match = name_in_subtree(name, f->names.items[k]);
			break;
		case NOTIFY_FILTER_MAILBOXES:
			match = strlist_contains(&f->names, name);
			break;
		}
		if (match)
			events |= f->events;
	}
	return events;
}

static bool
is_selected(const struct client *c, const char *name)
{
	return c->mbox != NULL && strcmp(mailbox_name(c->mbox), name) == 0;
}

/* The STATUS values of st. UNSEEN walks the records: O(messages). */
static void
status_read(const struct mbox_state *st, struct notify_status *s_r)
{
	size_t unseen = 0;

	for (size_t i = 0; i < st->count; i++)
		unseen += (st->mails[i].flags & MAIL_SEEN) == 0;
	s_r->messages = (uint32_t)st->count;
	s_r->uidnext = st->uidnext;
	s_r->uidvalidity = st->uidvalidity;
	s_r->unseen = (uint32_t)unseen;
	s_r->modseq = st->highest_modseq;
}

/* Queues "* STATUS name (...)": MESSAGES UIDNEXT UIDVALIDITY UNSEEN
   (RFC 5465 5.2, 5.3: the counts and UIDNEXT tell of new and expunged
   messages), and HIGHESTMODSEQ when flag changes are watched or
   CONDSTORE is on (5.1: a flag change shows only there). */
static void
status_write(struct notify *n, const struct notify_box *box, const struct notify_status *s)
{
	struct buf *out = client_outbuf(n->c);

	buf_append_str(out, "* STATUS ");
	cmd_write_mailbox_name(n->c, out, box->name);
	buf_printf(out, " (MESSAGES %u UIDNEXT %u UIDVALIDITY %u UNSEEN %u", s->messages,
		   s->uidnext, s->uidvalidity, s->unseen);
	if ((box->events & NOTIFY_EV_FLAG_CHANGE) != 0 || n->c->condstore)
		buf_printf(out, " HIGHESTMODSEQ %llu", imap_modseq(s->modseq));
	buf_append_str(out, ")\r\n");
}

/* Opens box's mailbox through the hub, refreshed, for its values (and
   its watch paths when paths_r is not NULL). Returns 0 or -1. */
static int
box_read(struct notify *n, struct notify_box *box, struct notify_status *s_r,
	 struct strlist *paths_r)
{
	struct client *c = n->c;
	struct mailbox *mbox;
	enum storage_error err;

	if (mailbox_open(c->gen->hub, c->sid, c->user, box->name, &mbox, &err) < 0)
		return -1;
	if (!mailbox_is_busy(mbox))
		(void)mailbox_refresh(mbox, &err, c->sid);
	status_read(mailbox_state(mbox), s_r);
	if (paths_r != NULL)
		mailbox_watch_paths(mbox, paths_r);
	mailbox_unref(&mbox);
	return 0;
}

static void notify_timer_cb(void *ctx);

static void
notify_arm(struct notify *n)
{
	if (n->timer == NULL)
		n->timer = event_timer_add(n->c->server->loop, NOTIFY_COALESCE_MS, notify_timer_cb,
					   n);
}

static void
box_watch_event(void *ctx)
{
	struct notify_box *box = ctx;

	box->pending = true;
	box->n->any_pending = true;
	notify_arm(box->n);
}

static void
box_free(struct notify_box *box)
{
	for (size_t i = 0; i < box->watch_count; i++)
		watch_remove(&box->watches[i]);
	free(box->watches);
	free(box->name);
	free(box);
}

static ssize_t
box_find(const struct notify *n, const char *name)
{
	for (size_t i = 0; i < n->box_count; i++) {
		if (strcmp(n->boxes[i]->name, name) == 0)
			return (ssize_t)i;
	}
	return -1;
}

static void
box_remove(struct notify *n, const char *name)
{
	ssize_t i = box_find(n, name);

	if (i < 0)
		return;
	box_free(n->boxes[i]);
	n->boxes[i] = n->boxes[--n->box_count];
}

/* Starts watching the message events of name. With the STATUS
   indicator (status) tells its values at once. A mailbox that cannot
   be opened is not watched (it may be a \Noselect parent). */
static void
box_add(struct notify *n, const char *name, unsigned events, bool status)
{
	struct watch *watch = hub_watch(n->c->gen->hub);
	struct strlist paths = { 0 };
	struct notify_status s;
	struct notify_box *box;

	if ((events & NOTIFY_EV_MESSAGE) == 0 || box_find(n, name) >= 0)
		return;
	box = xcalloc(1, sizeof(*box));
	box->n = n;
	box->name = xstrdup(name);
	box->events = events;
	if (box_read(n, box, &s, &paths) < 0) {
		box_free(box);
		return;
	}
	box->known = true;
	box->messages = s.messages;
	box->uidnext = s.uidnext;
	box->uidvalidity = s.uidvalidity;
	box->unseen = s.unseen;
	box->modseq = s.modseq;
	if (status && !is_selected(n->c, name))
		status_write(n, box, &s);
	if (watch != NULL && paths.count > 0) {
		box->watches = xcalloc(paths.count, sizeof(*box->watches));
		for (size_t i = 0; i < paths.count; i++)
			box->watches[box->watch_count++] =
				watch_add(watch, paths.items[i], box_watch_event, box);
	}
	strlist_clear(&paths);
	xgrow(&n->boxes, &n->box_alloc, n->box_count + 1, sizeof(*n->boxes));
	n->boxes[n->box_count++] = box;
}

/* Tells box's changes if its events ask for them (they are not told
   for the selected mailbox). */
static void
box_tell(struct notify *n, struct notify_box *box)
{
	struct notify_status s;
	unsigned changed = 0;

	box->pending = false;
	if (box_read(n, box, &s, NULL) < 0)
		return;
	if (box->known) {
		if (s.uidvalidity != box->uidvalidity)
			changed |= NOTIFY_EV_MESSAGE;
		if (s.uidnext != box->uidnext)
			changed |= NOTIFY_EV_MESSAGE_NEW;
		if ((uint64_t)s.messages < (uint64_t)box->messages + (s.uidnext - box->uidnext))
			changed |= NOTIFY_EV_MESSAGE_EXPUNGE;
		if (s.unseen != box->unseen || s.modseq != box->modseq)
			changed |= NOTIFY_EV_FLAG_CHANGE;
	} else {
		changed = NOTIFY_EV_MESSAGE;
	}
	if ((changed & box->events) != 0 && !is_selected(n->c, box->name))
		status_write(n, box, &s);
	box->known = true;
	box->messages = s.messages;
	box->uidnext = s.uidnext;
	box->uidvalidity = s.uidvalidity;
	box->unseen = s.unseen;
	box->modseq = s.modseq;
}

/* May the session hear unsolicited responses now? In IDLE, or with no
   command in progress; never in the middle of a command's answer, nor
   while its output is backed up. */
static bool
notify_may_send(const struct client *c)
{
	if (c->closing || c->state == CLIENT_LOGOUT)
		return false;
	if (c->cmd != NULL && !client_command_live_updates(c))
		return false;
	return client_out_pending(c) < CLIENT_OUT_HIGH_WATER;
}

void
notify_flush(struct client *c)
{
	struct notify *n = c->notify;

	if (n == NULL || (!n->any_pending && !n->selected_pending && n->lines.len == 0 &&
			  !n->overflow))
		return;
	if (!notify_may_send(c)) {
		notify_arm(n);
		return;
	}
	if (n->overflow) {
		client_send(c, "* OK [NOTIFICATIONOVERFLOW] Too many changes; NOTIFY is now "
			       "NONE.");
		notify_free(c);
		client_flush(c);
		return;
	}
	if (n->selected_pending) {
		n->selected_pending = false;
		if (c->cmd == NULL)
			client_sync_view(c, !n->spec.selected_delayed);
	}
	if (n->lines.len > 0) {
		buf_append(client_outbuf(c), n->lines.data, n->lines.len);
		buf_reset(&n->lines);
	}
	if (n->any_pending) {
		n->any_pending = false;
		for (size_t i = 0; i < n->box_count; i++) {
			if (n->boxes[i]->pending)
				box_tell(n, n->boxes[i]);
		}
	}
	client_flush(c);
}

static void
notify_timer_cb(void *ctx)
{
	struct notify *n = ctx;

	n->timer = NULL;
	notify_flush(n->c);
}

/* Queues "* LIST (attrs) "/" name [extra]" for a name event. */
static void
list_line(struct notify *n, const char *attrs, const char *name, const char *old_name)
{
	buf_printf(&n->lines, "* LIST (%s) \"/\" ", attrs);
	cmd_write_mailbox_name(n->c, &n->lines, name);
	if (old_name != NULL) {
		/* RFC 5465 5.4, RFC 5258 OLDNAME */
		buf_append_str(&n->lines, " (\"OLDNAME\" (");
		cmd_write_mailbox_name(n->c, &n->lines, old_name);
		buf_append_str(&n->lines, "))");
	}
	buf_append_str(&n->lines, "\r\n");
}

static unsigned
match(struct notify *n, const char *name)
{
	return notify_spec_match(&n->spec, n->want_subs ? &n->subs : NULL, name);
}

static void
subs_update(struct notify *n, const char *name, bool add)
{
	struct strlist next = { 0 };

	for (size_t i = 0; i < n->subs.count; i++) {
		if (strcmp(n->subs.items[i], name) != 0)
			strlist_add(&next, n->subs.items[i]);
	}
	if (add)
		strlist_add(&next, name);
	strlist_clear(&n->subs);
	n->subs = next;
}

/* One name of a RENAME: its LIST line, and its watch under the new
   name. */
static void
renamed_one(struct notify *n, const char *name, const char *old_name)
{
	if (((match(n, name) | match(n, old_name)) & NOTIFY_EV_MAILBOX_NAME) != 0)
		list_line(n, "", name, old_name);
	box_remove(n, old_name);
	if (n->box_count < NOTIFY_MAX_BOXES)
		box_add(n, name, match(n, name), false);
}

/* RENAME moves the inferiors too (RFC 3501 6.3.5): each gets its LIST
   line with OLDNAME (RFC 5465 5.4). Lists the user's mailboxes once:
   O(mailboxes), for a rare command. */
static void
notify_renamed(struct notify *n, const char *name, const char *old_name)
{
	struct client *c = n->c;
	struct strlist all = { 0 };
	enum storage_error err;
	size_t len = strlen(name);

	renamed_one(n, name, old_name);
	if (storage_list(&c->gen->storage, c->sid, c->user, &all, &err) < 0)
		return;
	strlist_sort(&all);
	for (size_t i = 0; i < all.count; i++) {
		const char *child = all.items[i];

		if (strncmp(child, name, len) == 0 && child[len] == '/') {
			char *old = xasprintf("%s%s", old_name, child + len);

			renamed_one(n, child, old);
			free(old);
		}
	}
	strlist_clear(&all);
}

/* The hub's signal (mailbox.h): marks what changed, tells it later. */
static void
notify_hub_event(void *ctx, int event, const char *name, const char *old_name)
{
	struct notify *n = ctx;
	ssize_t i;

	if (n->overflow)
		return;
	switch ((enum hub_event)event) {
	case HUB_EVENT_MAILBOX:
		if (is_selected(n->c, name) && n->spec.selected_events != 0)
			n->selected_pending = true;
		if ((i = box_find(n, name)) >= 0) {
			n->boxes[i]->pending = true;
			n->any_pending = true;
		}
		if (!n->selected_pending && !n->any_pending)
			return;
		break;
	case HUB_EVENT_CREATE:
		if ((match(n, name) & NOTIFY_EV_MAILBOX_NAME) != 0)
			list_line(n, "", name, NULL);
		if (n->box_count < NOTIFY_MAX_BOXES)
			box_add(n, name, match(n, name), false);
		break;
	case HUB_EVENT_DELETE:
		if ((match(n, name) & NOTIFY_EV_MAILBOX_NAME) != 0)
			list_line(n, "\\NonExistent", name, NULL);
		box_remove(n, name);
		break;
	case HUB_EVENT_RENAME:
		notify_renamed(n, name, old_name);
		break;
	case HUB_EVENT_SUBSCRIBE:
	case HUB_EVENT_UNSUBSCRIBE: {
		bool add = event == HUB_EVENT_SUBSCRIBE;
		unsigned before = match(n, name), after;

		if (n->want_subs)
			subs_update(n, name, add);
		after = match(n, name);
		if (((before | after) & NOTIFY_EV_SUBSCRIPTION_CHANGE) != 0)
			list_line(n, add ? "\\Subscribed" : "", name, NULL);
		if ((after & NOTIFY_EV_MESSAGE) == 0)
			box_remove(n, name);
		else if (n->box_count < NOTIFY_MAX_BOXES)
			box_add(n, name, after, false);
		break;
	}
	}
	if (n->lines.len > NOTIFY_MAX_QUEUED) {
		buf_reset(&n->lines);
		n->overflow = true;
	}
	notify_arm(n);
}

static void
notify_read_stop(struct notify *n)
{
	mailbox_read_free(&n->reading);
	free(n->reading_uids);
	n->reading_uids = NULL;
	n->reading_count = 0;
	n->read_done = false;
}

void
notify_free(struct client *c)
{
	struct notify *n = c->notify;

	if (n == NULL)
		return;
	c->notify = NULL;
	notify_read_stop(n);
	hub_unlisten(&n->listener);
	event_timer_remove(&n->timer);
	for (size_t i = 0; i < n->box_count; i++)
		box_free(n->boxes[i]);
	free(n->boxes);
	strlist_clear(&n->subs);
	buf_free(&n->lines);
	notify_spec_free(&n->spec);
	free(n);
}

/* The mailboxes of the user whose message events spec asks for. */
static int
notify_collect(struct notify *n, struct strlist *names_r, const char **error_r)
{
	struct client *c = n->c;
	struct strlist all = { 0 };
	enum storage_error err;

	if (n->want_subs &&
	    storage_subscriptions_read(&c->gen->storage, c->sid, c->user, &n->subs, &err) < 0) {
		*error_r = "NO [UNAVAILABLE] Subscriptions could not be read.";
		return -1;
	}
	if (storage_list(&c->gen->storage, c->sid, c->user, &all, &err) < 0) {
		*error_r = "NO [UNAVAILABLE] Mailboxes could not be listed.";
		return -1;
	}
	if (!strlist_contains(&all, "INBOX"))
		strlist_add(&all, "INBOX");
	for (size_t i = 0; i < all.count; i++) {
		if ((match(n, all.items[i]) & NOTIFY_EV_MESSAGE) != 0)
			strlist_add(names_r, all.items[i]);
	}
	strlist_clear(&all);
	if (names_r->count > NOTIFY_MAX_BOXES) {
		*error_r = "NO [NOTIFICATIONOVERFLOW] Too many mailboxes to watch.";
		return -1;
	}
	return 0;
}

int
notify_set(struct client *c, struct notify_spec *spec, const char **error_r)
{
	struct notify *n = xcalloc(1, sizeof(*n));
	struct strlist names = { 0 };

	n->c = c;
	n->spec = *spec;
	i_zero(spec);
	for (size_t i = 0; i < n->spec.filter_count; i++)
		n->want_subs = n->want_subs || n->spec.filters[i].type == NOTIFY_FILTER_SUBSCRIBED;
	if (notify_collect(n, &names, error_r) < 0) {
		strlist_clear(&names);
		strlist_clear(&n->subs);
		notify_spec_free(&n->spec);
		free(n);
		return -1;
	}
	notify_free(c);
	c->notify = n;
	for (size_t i = 0; i < names.count; i++)
		box_add(n, names.items[i], match(n, names.items[i]), n->spec.status);
	strlist_clear(&names);
	n->listener = hub_listen(c->gen->hub, c->user, notify_hub_event, n);
	notify_unselected(c);
	if (c->view != NULL && n->spec.new_fetch != NULL) {
		n->fetch_known = true;
		n->fetch_uid = mbox_view_max_uid(c->view);
	}
	return 0;
}

void
notify_unselected(struct client *c)
{
	if (c->notify != NULL) {
		c->notify->fetch_known = false;
		notify_read_stop(c->notify);
	}
}

/* The FETCH response of MessageNew (fetch-att) for the message at seq
   (RFC 5465 5.2); UID is always among the items. The message's bytes
   are data (NULL: read here if the items need them). */
static void
fetch_new(struct client *c, const struct fetch_spec *spec, uint32_t seq, const struct buf *data,
	  struct buf *msg)
{
	ssize_t idx = mbox_view_index(c->view, seq);
	enum storage_error err;
	struct fetch_msg fm;

	if (idx < 0)
		return;
	i_zero(&fm);
	fm.seq = seq;
	fm.uidonly = c->uidonly; /* RFC 9586: "* uid UIDFETCH" */
	fm.state = c->view->state;
	fm.rec = &c->view->state->mails[idx];
	fm.recent = mbox_view_is_recent(c->view, fm.rec->uid);
	if (fetch_spec_needs_message(spec)) {
		if (data == NULL) {
			buf_reset(msg);
			if (mailbox_read(c->mbox, fm.rec, msg, &err, c->sid) < 0)
				return;
			data = msg;
		}
		fm.data = data->data != NULL ? data->data : "";
		fm.len = data->len;
	}
	fm.cache = hub_mime_cache(c->gen->hub);
	fm.cache_owner = c->mbox;
	fetch_write(spec, &fm, client_outbuf(c));
}

/* The messages read in a job: their FETCH (those still in the view). */
static void
notify_read_write(struct client *c)
{
	struct notify *n = c->notify;
	struct buf data = BUF_INIT;
	enum storage_error err;

	for (size_t i = 0; i < n->reading_count; i++) {
		uint32_t seq = mbox_view_seq(c->view, n->reading_uids[i]);

		buf_reset(&data);
		if (seq == 0 || mailbox_read_take(n->reading, i, &data, &err) < 0)
			continue;
		fetch_new(c, n->spec.new_fetch, seq, &data, NULL);
	}
	buf_free(&data);
	notify_read_stop(n);
}

static void notify_new_messages(struct client *c);

/* The job has read them: written now if the session is between commands
   or in IDLE (else at the next response boundary: the command's next
   sync of its view), then the messages that came meanwhile. */
static void
notify_read_done(void *ctx)
{
	struct notify *n = ctx;
	struct client *c = n->c;

	n->read_done = true;
	if (c->cmd != NULL && !client_command_live_updates(c))
		return;
	notify_read_write(c);
	notify_new_messages(c);
	client_flush(c);
}

/* Reads the view's messages from seq on in a job; false if the backend
   cannot (then they are read here). */
static bool
notify_read_start(struct client *c, uint32_t seq)
{
	struct notify *n = c->notify;
	const struct mbox_state *st = c->view->state;
	size_t k = (size_t)(c->view->count - seq + 1), m = 0;
	struct mail_rec *recs = xmalloc(k * sizeof(*recs));

	n->reading_uids = xmalloc(k * sizeof(*n->reading_uids));
	for (; seq <= c->view->count; seq++) {
		ssize_t idx = mbox_view_index(c->view, seq);

		if (idx < 0)
			continue;
		recs[m] = st->mails[idx];
		n->reading_uids[m++] = st->mails[idx].uid;
	}
	n->reading_count = m;
	n->reading = mailbox_read_start(c->mbox, recs, m, notify_read_done, n, c->sid);
	free(recs);
	if (n->reading == NULL) {
		notify_read_stop(n);
		return false;
	}
	return true;
}

/* MessageNew's FETCH of the view's messages above fetch_uid. */
static void
notify_new_messages(struct client *c)
{
	struct notify *n = c->notify;
	struct buf msg = BUF_INIT;
	uint32_t seq, max;

	max = mbox_view_max_uid(c->view);
	if (max <= n->fetch_uid || n->reading != NULL)
		return;
	/* The new messages are the view's last ones. */
	for (seq = (uint32_t)c->view->count; seq > 1; seq--) {
		if (mbox_view_uid(c->view, seq - 1) <= n->fetch_uid)
			break;
	}
	n->fetch_uid = max;
	if (fetch_spec_needs_message(n->spec.new_fetch) && mailbox_reads_in_job(c->mbox) &&
	    notify_read_start(c, seq))
		return;
	for (; seq <= c->view->count; seq++)
		fetch_new(c, n->spec.new_fetch, seq, NULL, &msg);
	buf_free(&msg);
}

void
notify_view_synced(struct client *c)
{
	struct notify *n = c->notify;

	if (n == NULL || c->view == NULL)
		return;
	/* Changes by other processes reach the selected mailbox between
	   commands too (the hub watches its files, as in IDLE). */
	if (n->spec.selected_events != 0)
		mbox_view_watch(c->view);
	if (n->spec.new_fetch == NULL)
		return;
	if (!n->fetch_known) {
		/* Just selected: what is there is not new. */
		n->fetch_known = true;
		n->fetch_uid = mbox_view_max_uid(c->view);
		return;
	}
	if (n->read_done)
		notify_read_write(c);
	notify_new_messages(c);
}
