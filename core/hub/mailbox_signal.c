/* mailbox_signal.c: the hub's change signals for sessions that watch
   mailboxes they have not selected (NOTIFY; see mailbox.h, hub_listen()). */
#include "mailbox.h"
#include "mailbox_private.h"

#include <stdlib.h>

struct hub_listener *
hub_listen(struct hub *hub, const char *user, hub_listen_func *cb, void *ctx)
{
	struct hub_listener *l = xcalloc(1, sizeof(*l));

	l->hub = hub;
	l->user = xstrdup(user);
	l->cb = cb;
	l->ctx = ctx;
	l->next = hub->listeners;
	if (l->next != NULL)
		l->next->prev = l;
	hub->listeners = l;
	return l;
}

void
hub_unlisten(struct hub_listener **_l)
{
	struct hub_listener *l = *_l;

	if (l == NULL)
		return;
	*_l = NULL;
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		l->hub->listeners = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	free(l->user);
	free(l);
}

void
hub_signal(struct hub *hub, const char *user, int event, const char *name,
	   const char *old_name)
{
	struct hub_listener *l, *next;

	for (l = hub->listeners; l != NULL; l = next) {
		next = l->next;
		if (strcmp(l->user, user) == 0)
			l->cb(l->ctx, event, name, old_name);
	}
}

struct watch *
hub_watch(struct hub *hub)
{
	return hub->watch;
}
