/* mcache.h: the persistent per-mailbox cache of what listings need.

   Per message, keyed by (UIDVALIDITY, UID), a few strings the protocol
   layer computed once from the message: its ENVELOPE, BODY and
   BODYSTRUCTURE as served and its raw header block (when not above
   MCACHE_HEADER_MAX). A message behind a UID never changes, so an entry
   goes stale only with a UIDVALIDITY change (the whole cache is then
   dropped) or an expunge (the entry is garbage, compacted away later).
   The cache knows nothing of IMAP: it stores opaque octet strings.

   On the disk, two files next to the backend's side data (the path comes
   from the backend's cache_path(), see storage.h):
   - "<path>": append-only records; each carries its UIDVALIDITY, UID,
     length and checks over its header and each field, so a torn or damaged record is
     seen and ignored (the caller recomputes the entry);
   - "<path>.idx": a 32-octet header (magic, UIDVALIDITY, lowest UID),
     then one 16-octet slot per UID (offset, length, check), written in
     place. A lookup reads one slot and one record: O(1), and opening
     reads nothing.
   Writers (this process, other imapserver processes, other tools) append
   under flock() on "<path>" and never wait for it: a store that finds the
   lock taken is skipped (a cache may miss). Readers take no lock: no
   record is trusted that does not verify. Nothing is fsynced: after a
   crash, what does not verify is recomputed.

   Garbage (entries of expunged messages, entries stored twice) is removed
   by a FETCH that walks every message anyway: mcache_walk_begin() sees,
   from the previous walk, whether garbage exceeds half the file, and if
   so the walk copies every entry it uses into new files that replace
   the old ones when it completes. The cost is a copy per message the
   FETCH answers, spread over its incremental output: never a stall.

   Memory: one record buffer per cache; nothing else of the file is held. */
#ifndef MCACHE_H
#define MCACHE_H

#include "lib.h"

enum mcache_field {
	MCACHE_ENVELOPE,
	MCACHE_BODY,
	MCACHE_BODYSTRUCTURE,
	MCACHE_HEADER,
	MCACHE_FIELD_COUNT
};

/* A header block above this is not cached (its HEADER sections are read
   from the message). */
#define MCACHE_HEADER_MAX (32 * 1024)
/* A record above this is not stored. */
#define MCACHE_RECORD_MAX (1024 * 1024)

/* One message's entry: data[f] NULL if field f is absent. */
struct mcache_entry {
	const char *data[MCACHE_FIELD_COUNT];
	size_t len[MCACHE_FIELD_COUNT];
};

struct mcache_stats {
	uint64_t hits, misses, stores, bad_records, compactions;
};

struct mcache;
struct mcache_walk;

/* Opens the cache whose files are path and path".idx" (path NULL: a
   cache that never holds anything). Reads nothing; files are created by
   the first store. Never fails: an unusable file only means misses. */
struct mcache *mcache_open(const char *path);
void mcache_close(struct mcache **cache);

/* Every field, for mcache_lookup(). */
#define MCACHE_FIELDS_ALL ((1U << MCACHE_FIELD_COUNT) - 1)

/* Looks up (uidvalidity, uid). Returns 1 with *entry_r pointing into the
   cache's buffers (valid until the next call on cache), 0 if absent or if
   what is on the disk does not verify. Only the fields whose bit
   (1 << enum mcache_field) is in fields are checked and returned; the
   rest are NULL. walk may be NULL. */
int mcache_lookup(struct mcache *cache, struct mcache_walk *walk, uint32_t uidvalidity,
		  uint32_t uid, unsigned fields, struct mcache_entry *entry_r);
/* Stores entry for (uidvalidity, uid). low_uid is the mailbox's lowest
   UID (slots start there when the files are (re)created). A cache of
   another UIDVALIDITY is dropped first. Errors (lock taken, disk full)
   are ignored: the entry is simply not cached. walk may be NULL. */
void mcache_store(struct mcache *cache, struct mcache_walk *walk, uint32_t uidvalidity,
		  uint32_t low_uid, uint32_t uid, const struct mcache_entry *entry);

/* A walk over every message of the mailbox in ascending UID order (a
   FETCH 1:* of cacheable items): lookups and stores made with it measure
   the live part of the file and, when the previous walk found too much
   garbage, copy it to new files. mcache_walk_end() with complete true
   (every message was looked up or stored) replaces the files; with
   false it drops the copy. Only one walk of a cache compacts at a time. */
struct mcache_walk *mcache_walk_begin(struct mcache *cache, uint32_t uidvalidity);
void mcache_walk_end(struct mcache_walk **walk, bool complete);

void mcache_get_stats(const struct mcache *cache, struct mcache_stats *stats_r);

/* Removes the cache files of path (for a deleted mailbox). */
void mcache_unlink(const char *path);

#endif
