/* cmd_notify.c: NOTIFY SET / NOTIFY NONE (RFC 5465 3, 8): parses the
   whole grammar into a struct notify_spec, refuses what we do not serve
   with the RFC's answers, and hands the rest to notify.c.

     notify          = "NOTIFY" SP (notify-set / "NONE")
     notify-set      = "SET" [SP "STATUS"] SP event-group *(SP event-group)
     event-group     = "(" filter-mailboxes SP events ")"
     filter-mailboxes = "selected" / "selected-delayed" / "inboxes" /
                       "personal" / "subscribed" /
                       ("subtree" / "mailboxes") SP one-or-more-mailbox
     one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")"
     events          = "(" event *(SP event) ")" / "NONE"
     event           = "MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"] /
                       "MessageExpunge" / "FlagChange" / "MailboxName" /
                       "SubscriptionChange" / other atoms (event-ext) */
#include "imap_cmd.h"
#include "imap_client.h"
#include "fetch.h"
#include "mutf7.h"
#include "notify.h"

#include <stdlib.h>

static const struct {
	const char *name;
	unsigned event;      /* 0: known to the RFC, not served here */
} notify_events[] = {
	{ "MessageNew", NOTIFY_EV_MESSAGE_NEW },
	{ "MessageExpunge", NOTIFY_EV_MESSAGE_EXPUNGE },
	{ "FlagChange", NOTIFY_EV_FLAG_CHANGE },
	{ "MailboxName", NOTIFY_EV_MAILBOX_NAME },
	{ "SubscriptionChange", NOTIFY_EV_SUBSCRIPTION_CHANGE },
	{ "AnnotationChange", 0 },
	{ "MailboxMetadataChange", 0 },
	{ "ServerMetadataChange", 0 },
};

/* What went wrong while parsing: a BAD (syntax, the RFC's rules on
   event combinations) or the NO [BADEVENT] of an event we do not serve
   (RFC 5465 3.1: any well-formed event name we do not know). */
struct notify_parse {
	struct notify_spec spec;
	const char *bad;
	bool badevent;
	bool utf8;      /* an IMAP4rev2 session: names in UTF-8 */
};

static int
parse_bad(struct notify_parse *p, const char *reason)
{
	if (p->bad == NULL)
		p->bad = reason;
	return -1;
}

/* A mailbox name of the command: modified UTF-7 decoded (UTF-8 as it is
   to an IMAP4rev2 session), INBOX in any case made INBOX, a trailing
   delimiter dropped. NULL if invalid. */
static char *
notify_mailbox_name(const struct imap_arg *arg, bool utf8_names)
{
	char *utf8, *norm;
	size_t len;

	if (!imap_arg_is_astring(arg) || imap_name_decode(arg->str, utf8_names, false, &utf8) < 0)
		return NULL;
	if (ascii_strncasecmp(utf8, "INBOX", 5) == 0 && (utf8[5] == '\0' || utf8[5] == '/'))
		norm = xasprintf("INBOX%s", utf8 + 5);
	else
		norm = xstrdup(utf8);
	free(utf8);
	len = strlen(norm);
	if (len > 1 && norm[len - 1] == '/')
		norm[len - 1] = '\0';
	if (!storage_name_is_valid(norm)) {
		free(norm);
		return NULL;
	}
	return norm;
}

static int
parse_mailboxes(struct notify_parse *p, const struct imap_arg *arg, struct strlist *names)
{
	const struct imap_arg *items = arg;
	size_t count = 1;
	char *name;

	if (arg->type == IMAP_ARG_LIST) {
		items = arg->list;
		count = arg->list_count;
		if (count == 0)
			return parse_bad(p, "NOTIFY: empty mailbox list.");
	}
	for (size_t i = 0; i < count; i++) {
		if ((name = notify_mailbox_name(&items[i], p->utf8)) == NULL)
			return parse_bad(p, "NOTIFY: invalid mailbox name.");
		if (!strlist_contains(names, name))
			strlist_add(names, name);
		free(name);
	}
	return 0;
}

/* MessageNew's fetch attributes (selected only, RFC 5465 5.2): parsed
   as FETCH's; none may set \Seen (a notification must not change the
   mailbox), and UID is always sent. */
static int
parse_fetch_atts(struct notify_parse *p, const struct imap_arg *list)
{
	const char *error;

	if (list->list_count == 0)
		return parse_bad(p, "NOTIFY: MessageNew needs fetch attributes in its list.");
	if (p->spec.new_fetch != NULL)
		return parse_bad(p, "NOTIFY: MessageNew given twice.");
	if (fetch_parse(list, 1, &p->spec.new_fetch, &error) < 0)
		return parse_bad(p, "NOTIFY: invalid MessageNew fetch attributes.");
	if (fetch_spec_sets_seen(p->spec.new_fetch))
		return parse_bad(p, "NOTIFY: MessageNew fetch attributes must not set \\Seen "
				    "(use BODY.PEEK).");
	fetch_spec_add_uid(p->spec.new_fetch);
	return 0;
}

/* events: "NONE" (0) or a list. Sets *events_r. */
static int
parse_events(struct notify_parse *p, const struct imap_arg *arg, bool selected,
	     unsigned *events_r)
{
	*events_r = 0;
	if (imap_arg_atom_equals(arg, "NONE"))
		return 0;
	if (arg->type != IMAP_ARG_LIST || arg->list_count == 0)
		return parse_bad(p, "NOTIFY: events must be NONE or a list of events.");
	for (size_t i = 0; i < arg->list_count; i++) {
		const struct imap_arg *ev = &arg->list[i];
		size_t k;

		if (ev->type != IMAP_ARG_ATOM)
			return parse_bad(p, "NOTIFY: an event is an atom.");
		for (k = 0; k < N_ELEMENTS(notify_events); k++) {
			if (ascii_strcasecmp(ev->str, notify_events[k].name) == 0)
				break;
		}
		if (k == N_ELEMENTS(notify_events) || notify_events[k].event == 0) {
			p->badevent = true;
			continue;
		}
		*events_r |= notify_events[k].event;
		if (notify_events[k].event == NOTIFY_EV_MESSAGE_NEW && i + 1 < arg->list_count &&
		    arg->list[i + 1].type == IMAP_ARG_LIST) {
			if (!selected)
				return parse_bad(p, "NOTIFY: MessageNew fetch attributes are "
						    "for the selected mailbox only.");
			if (parse_fetch_atts(p, &arg->list[++i]) < 0)
				return -1;
		}
	}
	/* RFC 5465 5.2, 5.3: for the selected mailbox (whose sequence
	   numbers the client keeps) MessageNew and MessageExpunge go
	   together, and FlagChange needs both. Other mailboxes are told of
	   by STATUS: any set will do. */
	if (!selected)
		return 0;
	if (((*events_r & NOTIFY_EV_MESSAGE_NEW) != 0) !=
	    ((*events_r & NOTIFY_EV_MESSAGE_EXPUNGE) != 0))
		return parse_bad(p, "NOTIFY: MessageNew and MessageExpunge must be given together.");
	if ((*events_r & NOTIFY_EV_FLAG_CHANGE) != 0 &&
	    (*events_r & NOTIFY_EV_MESSAGE_NEW) == 0)
		return parse_bad(p, "NOTIFY: FlagChange needs MessageNew and MessageExpunge.");
	return 0;
}

static int
parse_group(struct notify_parse *p, const struct imap_arg *group)
{
	struct notify_filter f;
	const struct imap_arg *a = group->list;
	size_t n = group->list_count, ev_at = 1;
	unsigned events;

	if (group->type != IMAP_ARG_LIST || n < 2 || a[0].type != IMAP_ARG_ATOM)
		return parse_bad(p, "NOTIFY: an event group is (filter events).");
	i_zero(&f);
	if (imap_arg_atom_equals(&a[0], "selected") ||
	    imap_arg_atom_equals(&a[0], "selected-delayed")) {
		if (n != 2)
			return parse_bad(p, "NOTIFY: (selected events) takes no mailbox.");
		if (p->spec.selected_set)
			return parse_bad(p, "NOTIFY: selected given twice.");
		p->spec.selected_set = true;
		p->spec.selected_delayed = imap_arg_atom_equals(&a[0], "selected-delayed");
		return parse_events(p, &a[1], true, &p->spec.selected_events);
	}
	if (imap_arg_atom_equals(&a[0], "personal"))
		f.type = NOTIFY_FILTER_PERSONAL;
	else if (imap_arg_atom_equals(&a[0], "inboxes"))
		f.type = NOTIFY_FILTER_INBOXES;
	else if (imap_arg_atom_equals(&a[0], "subscribed"))
		f.type = NOTIFY_FILTER_SUBSCRIBED;
	else if (imap_arg_atom_equals(&a[0], "subtree"))
		f.type = NOTIFY_FILTER_SUBTREE;
	else if (imap_arg_atom_equals(&a[0], "mailboxes"))
		f.type = NOTIFY_FILTER_MAILBOXES;
	else
		return parse_bad(p, "NOTIFY: unknown mailbox filter.");
	if (f.type == NOTIFY_FILTER_SUBTREE || f.type == NOTIFY_FILTER_MAILBOXES) {
		if (n != 3)
			return parse_bad(p, "NOTIFY: subtree and mailboxes need mailbox names.");
		if (parse_mailboxes(p, &a[1], &f.names) < 0) {
			strlist_clear(&f.names);
			return -1;
		}
		ev_at = 2;
	} else if (n != 2) {
		return parse_bad(p, "NOTIFY: an event group is (filter events).");
	}
	if (parse_events(p, &a[ev_at], false, &events) < 0) {
		strlist_clear(&f.names);
		return -1;
	}
	f.events = events;
	xgrow(&p->spec.filters, &p->spec.filter_alloc, p->spec.filter_count + 1,
	      sizeof(*p->spec.filters));
	p->spec.filters[p->spec.filter_count++] = f;
	return 0;
}

static int
parse_set(struct notify_parse *p, const struct imap_arg *args, size_t count)
{
	size_t i = 0;

	if (count > 0 && imap_arg_atom_equals(&args[0], "STATUS")) {
		p->spec.status = true;
		i++;
	}
	if (i == count)
		return parse_bad(p, "NOTIFY SET needs at least one event group.");
	for (; i < count; i++) {
		if (parse_group(p, &args[i]) < 0)
			return -1;
	}
	return 0;
}

bool
cmd_notify(struct client_command *cmd)
{
	struct client *c = cmd->c;
	struct notify_parse p;
	const char *error;

	i_zero(&p);
	p.utf8 = c->rev2;
	if (cmd->count == 1 && imap_arg_atom_equals(&cmd->args[0], "NONE")) {
		notify_free(c);
		cmd_tagged(cmd, "OK NOTIFY completed.");
		return true;
	}
	if (cmd->count < 1 || !imap_arg_atom_equals(&cmd->args[0], "SET"))
		return cmd_bad(cmd, "NOTIFY needs SET or NONE.");
	if (parse_set(&p, cmd->args + 1, cmd->count - 1) < 0) {
		notify_spec_free(&p.spec);
		return cmd_bad(cmd, p.bad);
	}
	if (p.badevent) {
		/* RFC 5465 3.1: the events we serve. */
		notify_spec_free(&p.spec);
		cmd_tagged(cmd, "NO [BADEVENT (" NOTIFY_EVENT_NAMES ")] Unsupported event.");
		return true;
	}
	if (notify_set(c, &p.spec, &error) < 0) {
		notify_spec_free(&p.spec);
		cmd_tagged(cmd, "%s", error);
		return true;
	}
	cmd_tagged(cmd, "OK NOTIFY completed.");
	return true;
}
