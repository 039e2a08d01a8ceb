/* mime_cache.c: the trees of the last messages parsed, keyed by (owner,
   UID), so that a FETCH of BODYSTRUCTURE and several sections of one
   message parses it once (see mime.h, "parse cache"). */
#include "mime.h"

#include <stdlib.h>

#define MIME_CACHE_MAX_ENTRIES 4096

struct mime_cache_entry {
	const void *owner;
	uint32_t uid;
	uint64_t last_use;
	struct mime_message *msg;
};

struct mime_cache {
	struct mime_cache_entry *entries;
	size_t count, max;
	uint64_t clock, parses;
};

struct mime_cache *
mime_cache_new(size_t max_entries)
{
	struct mime_cache *cache = xcalloc(1, sizeof(*cache));

	if (max_entries == 0)
		max_entries = 1;
	if (max_entries > MIME_CACHE_MAX_ENTRIES)
		max_entries = MIME_CACHE_MAX_ENTRIES;
	cache->max = max_entries;
	cache->entries = xcalloc(max_entries, sizeof(*cache->entries));
	return cache;
}

void
mime_cache_free(struct mime_cache **cachep)
{
	struct mime_cache *cache = *cachep;

	if (cache == NULL)
		return;
	for (size_t i = 0; i < cache->count; i++)
		mime_message_free(&cache->entries[i].msg);
	free(cache->entries);
	free(cache);
	*cachep = NULL;
}

static struct mime_cache_entry *
cache_find(struct mime_cache *cache, const void *owner, uint32_t uid)
{
	/* Linear: max is small (a FETCH walks messages in order, so the
	   recent entries are the ones that hit). */
	for (size_t i = 0; i < cache->count; i++) {
		if (cache->entries[i].owner == owner && cache->entries[i].uid == uid)
			return &cache->entries[i];
	}
	return NULL;
}

const struct mime_message *
mime_cache_get(struct mime_cache *cache, const void *owner, uint32_t uid, size_t len)
{
	struct mime_cache_entry *e = cache_find(cache, owner, uid);

	if (e == NULL || e->msg->len != len)
		return NULL;
	e->last_use = ++cache->clock;
	return e->msg;
}

void
mime_cache_put(struct mime_cache *cache, const void *owner, uint32_t uid,
	       struct mime_message *msg)
{
	struct mime_cache_entry *e = cache_find(cache, owner, uid);

	if (e != NULL) {
		mime_message_free(&e->msg);
	} else if (cache->count < cache->max) {
		e = &cache->entries[cache->count++];
	} else {
		e = &cache->entries[0];
		for (size_t i = 1; i < cache->count; i++) {
			if (cache->entries[i].last_use < e->last_use)
				e = &cache->entries[i];
		}
		mime_message_free(&e->msg);
	}
	e->owner = owner;
	e->uid = uid;
	e->msg = msg;
	e->last_use = ++cache->clock;
}

const struct mime_message *
mime_cache_parse(struct mime_cache *cache, const void *owner, uint32_t uid, const char *msg,
		 size_t len)
{
	const struct mime_message *m = mime_cache_get(cache, owner, uid, len);
	struct mime_message *parsed;

	if (m != NULL)
		return m;
	parsed = mime_parse(msg, len);
	cache->parses++;
	mime_cache_put(cache, owner, uid, parsed);
	return parsed;
}

void
mime_cache_forget(struct mime_cache *cache, const void *owner)
{
	size_t i = 0;

	while (i < cache->count) {
		if (cache->entries[i].owner == owner) {
			mime_message_free(&cache->entries[i].msg);
			cache->entries[i] = cache->entries[--cache->count];
		} else {
			i++;
		}
	}
}

uint64_t
mime_cache_parse_count(const struct mime_cache *cache)
{
	return cache->parses;
}
