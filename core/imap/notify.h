/* notify.h: NOTIFY (RFC 5465): what a session asked to hear of
   (struct notify_spec, parsed by cmd_notify.c) and the watching that
   serves it (notify.c).

   A session that never sent NOTIFY SET has no state here (c->notify is
   NULL). One that did keeps one struct notify_box per mailbox it hears
   message events of (about 60 octets, its name and its file watches),
   the hub listener and one timer.

   Costs. Changes made in this process reach the session through the
   hub's signals (hub_listen(), one call per NOTIFY session of the user
   per change); changes by other processes (smtpmail, a Maildir
   delivery) through the file watches the backend names for each
   watched mailbox (mailbox_watch_paths(): two per mailbox). A change
   only marks its mailbox pending and arms a timer; when the timer fires
   (NOTIFY_COALESCE_MS later) each pending mailbox is opened through the
   hub (a lingering mailbox: a stat and the new records only), its
   STATUS values read (UNSEEN counts the flags of its records: O(its
   messages), a tight loop over memory) and one "* STATUS" line sent if
   they differ from what the client was last told. So a burst of 1,000
   deliveries costs 1,000 cheap marks and at most one STATUS line per
   mailbox per NOTIFY_COALESCE_MS, and no other mailbox is opened. NOTIFY
   SET itself opens each watched mailbox once (as STATUS would) for its
   values and its watch paths. */
#ifndef NOTIFY_H
#define NOTIFY_H

#include "lib.h"

struct client;
struct fetch_spec;

/* The events we serve (others get NO [BADEVENT]). */
enum notify_event {
	NOTIFY_EV_MESSAGE_NEW = 1 << 0,
	NOTIFY_EV_MESSAGE_EXPUNGE = 1 << 1,
	NOTIFY_EV_FLAG_CHANGE = 1 << 2,
	NOTIFY_EV_MAILBOX_NAME = 1 << 3,
	NOTIFY_EV_SUBSCRIPTION_CHANGE = 1 << 4,
};
#define NOTIFY_EV_MESSAGE \
	(NOTIFY_EV_MESSAGE_NEW | NOTIFY_EV_MESSAGE_EXPUNGE | NOTIFY_EV_FLAG_CHANGE)
/* The supported events as BADEVENT lists them. */
#define NOTIFY_EVENT_NAMES "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange"

/* Pending changes are told this many milliseconds after the first of
   them (a burst is told once per mailbox). */
#define NOTIFY_COALESCE_MS 100
/* Queued LIST lines beyond this (a client that does not read): the
   session gets "* OK [NOTIFICATIONOVERFLOW]" and NOTIFY NONE (5465 5.8). */
#define NOTIFY_MAX_QUEUED 65536
/* NOTIFY SET refuses (NO [NOTIFICATIONOVERFLOW]) to watch the message
   events of more mailboxes than this. */
#define NOTIFY_MAX_BOXES 1000

enum notify_filter_type {
	NOTIFY_FILTER_PERSONAL,
	NOTIFY_FILTER_INBOXES,   /* INBOX: the only mailbox mail is delivered to */
	NOTIFY_FILTER_SUBSCRIBED,
	NOTIFY_FILTER_SUBTREE,
	NOTIFY_FILTER_MAILBOXES,
};

struct notify_filter {
	enum notify_filter_type type;
	unsigned events;              /* enum notify_event */
	struct strlist names;         /* subtree, mailboxes: UTF-8 names */
};

struct notify_spec {
	bool status;                  /* the STATUS indicator */
	bool selected_set;            /* a selected or selected-delayed group */
	bool selected_delayed;        /* selected-delayed: no EXPUNGE between commands */
	unsigned selected_events;
	/* MessageNew (fetch-att ...) of the selected mailbox, or NULL. */
	struct fetch_spec *new_fetch;
	struct notify_filter *filters;
	size_t filter_count, filter_alloc;
};

void notify_spec_free(struct notify_spec *spec);
/* The events filters give to mailbox name (0: none), subs being the
   user's subscriptions (only read for a subscribed filter). */
unsigned notify_spec_match(const struct notify_spec *spec, const struct strlist *subs,
			   const char *name);

/* Replaces the session's notifications by spec (taken). With the
   STATUS indicator queues a STATUS line for each watched mailbox but
   the selected one. Returns 0, or -1 with *error_r (a static response
   text for the tagged NO). */
int notify_set(struct client *c, struct notify_spec *spec, const char **error_r);
/* Sends what is pending if the session may hear it now: in IDLE or
   between commands (RFC 5465 3, 5.x), not in the middle of a command.
   With (selected ...) the selected mailbox's changes are sent between
   commands too (EXISTS, FETCH, and EXPUNGE unless selected-delayed, 5.3). */
void notify_flush(struct client *c);
/* notify_free(), notify_view_synced() and notify_unselected(), which
   the session calls, are declared in imap_client.h (the session's
   module does not include this one: notify.c uses the session). */

#endif
