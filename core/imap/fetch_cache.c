/* fetch_cache.c: filling the listing cache (mcache.h) where a message is
   stored or copied, outside FETCH (see fetch.h). */
#include "fetch.h"

/* True if data has CR LF line ends only and no NUL. */
static bool
is_served_form(const char *data, size_t len)
{
	const char *p = data, *end = data + len;

	if (memchr(data, '\0', len) != NULL)
		return false;
	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (p == data || p[-1] != '\r')
			return false;
		p++;
	}
	return true;
}

void
fetch_cache_stored(struct mcache *cache, const struct mbox_state *state,
		   const struct mail_rec *rec, const char *data, size_t len)
{
	struct buf bufs[3] = { BUF_INIT, BUF_INIT, BUF_INIT };
	struct fetch_msg msg = { .rec = rec, .state = state, .data = data, .len = len };
	struct mcache_entry entry;

	if (len == 0 || rec->size != len || !is_served_form(data, len))
		return;
	fetch_cache_entry(&msg, bufs, &entry);
	mcache_store(cache, NULL, state->uidvalidity, state->mails[0].uid, rec->uid, &entry);
	for (int i = 0; i < 3; i++)
		buf_free(&bufs[i]);
}

void
fetch_cache_copy(struct mcache *src_cache, const struct mbox_state *src_state,
		 uint32_t src_uid, struct mcache *cache, const struct mbox_state *state,
		 uint32_t uid)
{
	struct mcache_entry entry;

	if (state->count == 0 ||
	    mcache_lookup(src_cache, NULL, src_state->uidvalidity, src_uid, MCACHE_FIELDS_ALL,
			  &entry) <= 0)
		return;
	/* entry points into src_cache's buffer: a store into the same
	   cache encodes it before anything reuses that buffer */
	mcache_store(cache, NULL, state->uidvalidity, state->mails[0].uid, uid, &entry);
}
