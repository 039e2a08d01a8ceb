/* mailbox_notify.c: news of changes made by other processes, from a
   backend that is told of them (storage.h, notify_fd(): a database's
   notifications), so that a session in IDLE on this server hears at
   once of a delivery, a flag change or an expunge made through another
   server on the same store. The news only says which mailbox changed:
   the mailbox, if open here, is brought in line (mailbox_refresh()), as
   a file watch does for the file backends. */
#include "mailbox.h"
#include "mailbox_private.h"
#include "event.h"
#include "watch.h"

/* How long to wait before asking the backend again for a descriptor. */
#define HUB_NOTIFY_RETRY_MS 1000

static void hub_notify_watch(struct hub *hub, int fd);

static void
hub_notify_changed(void *ctx, const char *user, const char *name)
{
	struct hub *hub = ctx;
	enum storage_error err;
	struct mailbox *m, *next;

	if (user == NULL || name == NULL) {
		/* news lost: any open mailbox may have changed */
		for (m = hub->mailboxes; m != NULL; m = next) {
			next = m->next;
			(void)mailbox_refresh(m, &err, "-");
		}
		return;
	}
	m = hub_find(hub, user, name);
	if (m != NULL)
		(void)mailbox_refresh(m, &err, "-");
}

static void
hub_notify_event(void *ctx)
{
	struct hub *hub = ctx;
	int fd = hub->storage.backend->notify_read(hub->storage.st, hub_notify_changed, hub);

	hub_notify_watch(hub, fd);
}

static void
hub_notify_retry(void *ctx)
{
	struct hub *hub = ctx;

	hub->notify_retry = NULL;
	hub_notify_watch(hub, hub->storage.backend->notify_fd(hub->storage.st));
	/* what changed while nobody listened */
	if (hub->notify_io != NULL)
		hub_notify_changed(hub, NULL, NULL);
}

/* Watches fd from now on (the same one, a new one after the backend
   connected again, or none: asked again later). */
static void
hub_notify_watch(struct hub *hub, int fd)
{
	struct event_loop *loop = watch_loop(hub->watch);

	if (fd >= 0 && fd == hub->notify_fd && hub->notify_io != NULL)
		return;
	event_io_remove(&hub->notify_io);
	hub->notify_fd = -1;
	if (fd >= 0 && event_fd_ok(fd)) {
		hub->notify_fd = fd;
		hub->notify_io = event_io_add(loop, fd, hub_notify_event, NULL, hub);
	} else if (hub->notify_retry == NULL) {
		hub->notify_retry = event_timer_add(loop, HUB_NOTIFY_RETRY_MS, hub_notify_retry, hub);
	}
}

void
hub_notify_start(struct hub *hub)
{
	const struct storage_backend *b = hub->storage.backend;

	if (hub->watch == NULL || b->notify_fd == NULL || b->notify_read == NULL)
		return;
	hub_notify_watch(hub, b->notify_fd(hub->storage.st));
}

void
hub_notify_stop(struct hub *hub)
{
	event_io_remove(&hub->notify_io);
	event_timer_remove(&hub->notify_retry);
	hub->notify_fd = -1;
}
