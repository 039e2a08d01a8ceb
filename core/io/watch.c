/* watch.c: inotify with a stat() poll as fallback (see watch.h). */
#include "watch.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

struct watch_entry {
	struct watch *watch;
	struct watch_entry *prev, *next;
	char *path;
	char *dir;              /* the folder watched by inotify */
	char *name;             /* NULL: any change in dir counts */
	int wd;                 /* inotify watch, or -1 when polled */
	event_cb *cb;
	void *ctx;
	bool fired;             /* in the current batch */
	/* Last stat() for the poll. */
	struct stat st;
	bool st_ok;
};

struct watch {
	struct event_loop *loop;
	int fd;                 /* inotify fd, or -1 */
	struct event_io *io;
	struct event_timer *poll_timer;
	struct watch_entry *entries;
};

#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | \
		    IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF)

static void watch_poll(void *ctx);

static void
watch_fire_marked(struct watch *watch)
{
	/* Callbacks may remove entries (their own or others): restart the
	   walk after each call. Bounded: each call clears one mark. */
	for (;;) {
		struct watch_entry *e;
		for (e = watch->entries; e != NULL; e = e->next) {
			if (e->fired)
				break;
		}
		if (e == NULL)
			return;
		e->fired = false;
		e->cb(e->ctx);
	}
}

static void
watch_input(void *ctx)
{
	struct watch *watch = ctx;
	char events[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	/* Bounded: a few reads per event, the rest next time. */
	for (int round = 0; round < 8; round++) {
		n = read(watch->fd, events, sizeof(events));
		if (n <= 0)
			break;
		for (char *p = events; p < events + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			for (struct watch_entry *e = watch->entries; e != NULL; e = e->next) {
				if (e->wd != ev->wd)
					continue;
				if (e->name != NULL && (ev->len == 0 || strcmp(ev->name, e->name) != 0) &&
				    (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_Q_OVERFLOW)) == 0)
					continue;
				e->fired = true;
			}
			if (ev->mask & IN_Q_OVERFLOW) {
				for (struct watch_entry *e = watch->entries; e != NULL; e = e->next)
					e->fired = true;
			}
		}
	}
	watch_fire_marked(watch);
}

struct event_loop *
watch_loop(struct watch *watch)
{
	return watch->loop;
}

struct watch *
watch_new(struct event_loop *loop)
{
	struct watch *watch = xcalloc(1, sizeof(*watch));

	watch->loop = loop;
	watch->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (watch->fd >= 0 && !event_fd_ok(watch->fd)) {
		close(watch->fd);
		watch->fd = -1;
	}
	if (watch->fd < 0)
		log_warn("-", "inotify unavailable (%s); polling mailboxes every %d ms",
			 strerror(errno), WATCH_POLL_MS);
	else
		watch->io = event_io_add(loop, watch->fd, watch_input, NULL, watch);
	return watch;
}

struct watch *
watch_new_polling(struct event_loop *loop)
{
	struct watch *watch = xcalloc(1, sizeof(*watch));

	watch->loop = loop;
	watch->fd = -1;
	return watch;
}

void
watch_free(struct watch **_watch)
{
	struct watch *watch = *_watch;

	if (watch == NULL)
		return;
	*_watch = NULL;
	while (watch->entries != NULL) {
		struct watch_entry *e = watch->entries;
		watch_remove(&e);
	}
	event_io_remove(&watch->io);
	event_timer_remove(&watch->poll_timer);
	if (watch->fd >= 0)
		close(watch->fd);
	free(watch);
}

static void
watch_poll_schedule(struct watch *watch)
{
	if (watch->poll_timer == NULL)
		watch->poll_timer = event_timer_add(watch->loop, WATCH_POLL_MS, watch_poll, watch);
}

static bool
stat_changed(struct watch_entry *e)
{
	struct stat st;
	bool ok = stat(e->path, &st) == 0, changed;

	changed = ok != e->st_ok ||
		  (ok && (st.st_ino != e->st.st_ino || st.st_size != e->st.st_size ||
			  st.st_mtim.tv_sec != e->st.st_mtim.tv_sec ||
			  st.st_mtim.tv_nsec != e->st.st_mtim.tv_nsec ||
			  st.st_ctim.tv_nsec != e->st.st_ctim.tv_nsec));
	e->st_ok = ok;
	if (ok)
		e->st = st;
	return changed;
}

static void
watch_poll(void *ctx)
{
	struct watch *watch = ctx;
	bool any = false;

	watch->poll_timer = NULL;
	for (struct watch_entry *e = watch->entries; e != NULL; e = e->next) {
		if (e->wd >= 0)
			continue;
		any = true;
		if (stat_changed(e))
			e->fired = true;
	}
	if (any)
		watch_poll_schedule(watch);
	watch_fire_marked(watch);
}

struct watch_entry *
watch_add(struct watch *watch, const char *path, event_cb *cb, void *ctx)
{
	struct watch_entry *e = xcalloc(1, sizeof(*e));
	struct stat st;

	e->watch = watch;
	e->path = xstrdup(path);
	e->cb = cb;
	e->ctx = ctx;
	e->wd = -1;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		e->dir = xstrdup(path);
	} else {
		const char *slash = strrchr(path, '/');
		e->dir = slash == NULL ? xstrdup(".") :
					 xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
		e->name = xstrdup(slash == NULL ? path : slash + 1);
	}
	if (watch->fd >= 0) {
		e->wd = inotify_add_watch(watch->fd, e->dir, WATCH_MASK);
		if (e->wd < 0)
			log_warn("-", "inotify_add_watch %s: %s; polling it instead", e->dir,
				 strerror(errno));
	}
	(void)stat_changed(e);
	e->next = watch->entries;
	if (watch->entries != NULL)
		watch->entries->prev = e;
	watch->entries = e;
	if (e->wd < 0)
		watch_poll_schedule(watch);
	return e;
}

void
watch_remove(struct watch_entry **_entry)
{
	struct watch_entry *e = *_entry;
	struct watch *watch;
	bool shared = false;

	if (e == NULL)
		return;
	*_entry = NULL;
	watch = e->watch;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		watch->entries = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	/* inotify gives one wd per folder: keep it while others use it. */
	for (struct watch_entry *o = watch->entries; o != NULL && e->wd >= 0; o = o->next) {
		if (o->wd == e->wd)
			shared = true;
	}
	if (e->wd >= 0 && !shared)
		(void)inotify_rm_watch(watch->fd, e->wd);
	free(e->path);
	free(e->dir);
	free(e->name);
	free(e);
}

bool
watch_entry_is_inotify(const struct watch_entry *entry)
{
	return entry->wd >= 0;
}
