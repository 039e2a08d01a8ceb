/* watch.h: noticing changes that other processes make to files, so that
   a delivery by the stand-alone smtpmail or a message dropped into a
   Maildir reaches IDLE sessions at once.

   inotify where the kernel has it; a stat() poll where it does not or its
   watches are exhausted. A path may be a file (its folder is watched and
   events are filtered by name, so that a file replaced by rename(2) is
   still followed) or a folder (any change inside it counts). Callbacks run
   from the event loop, at most once per path per batch of events. */
#ifndef WATCH_H
#define WATCH_H

#include "event.h"

struct watch;
struct watch_entry;

/* Poll interval of the fallback, in milliseconds. */
#define WATCH_POLL_MS 500

struct watch *watch_new(struct event_loop *loop);
/* The fallback alone, as on a system without inotify (and for tests). */
struct watch *watch_new_polling(struct event_loop *loop);
void watch_free(struct watch **watch);
/* Calls cb(ctx) when path (or, for a folder, something in it) changes.
   Never fails: without inotify the path is polled. */
struct watch_entry *watch_add(struct watch *watch, const char *path, event_cb *cb, void *ctx);
void watch_remove(struct watch_entry **entry);
/* The loop watch runs in (for other kinds of change news). */
struct event_loop *watch_loop(struct watch *watch);
/* True if the entry is served by inotify (false: polled). For tests. */
bool watch_entry_is_inotify(const struct watch_entry *entry);

#endif
