/* fetch.h: FETCH data items (RFC 3501 section 6.4.5): parsing them and
   writing one message's response. */
#ifndef FETCH_H
#define FETCH_H

#include "lib.h"
#include "buf.h"
#include "imap_parser.h"
#include "storage.h"
#include "mcache.h"

struct fetch_spec;
struct mime_cache;

/* Parses the data items of a FETCH (the args after the sequence set: a
   macro atom ALL/FAST/FULL, one item, or a list of items). Returns 0 or
   -1 with a static reason in *error_r. */
int fetch_parse(const struct imap_arg *args, size_t count, struct fetch_spec **spec_r,
		const char **error_r);
void fetch_spec_free(struct fetch_spec **spec);
/* Adds UID to the items (UID FETCH must return it). */
void fetch_spec_add_uid(struct fetch_spec *spec);
/* Adds MODSEQ to the items (RFC 7162: a CONDSTORE-aware session gets it
   in every FETCH that CHANGEDSINCE asks for or that sets \Seen). */
void fetch_spec_add_modseq(struct fetch_spec *spec);
/* True if MODSEQ is among the items (asked for or added). */
bool fetch_spec_has_modseq(const struct fetch_spec *spec);
/* True if some item needs the message bytes (BODY and BODYSTRUCTURE
   too: reading is cheap, the parse cache saves the parse). */
bool fetch_spec_needs_message(const struct fetch_spec *spec);
/* True if some item is a non-PEEK body section (or RFC822, RFC822.TEXT),
   which sets \Seen in a read-write mailbox. */
bool fetch_spec_sets_seen(const struct fetch_spec *spec);
/* True if FLAGS is among the items. */
bool fetch_spec_has_flags(const struct fetch_spec *spec);

/* The listing cache (mcache.h). An entry holds what these items need:
   ENVELOPE, BODY, BODYSTRUCTURE, and the message's own header (for
   RFC822.HEADER, BODY[HEADER], BODY[HEADER.FIELDS[.NOT] (...)]).
   True if some item can use an entry (the message is worth caching). */
bool fetch_spec_uses_cache(const struct fetch_spec *spec);
/* True if every item that needs the message can be answered from an
   entry (one with the header if fetch_spec_cache_needs_header()). */
bool fetch_spec_cache_answers(const struct fetch_spec *spec);
bool fetch_spec_cache_needs_header(const struct fetch_spec *spec);
/* The fields of an entry the items use, for mcache_lookup(). */
unsigned fetch_spec_cache_fields(const struct fetch_spec *spec);

/* The EMAILID and THREADID items (RFC 8474 7) of the message
   data[0..len), written to out (fetch_objectid.c). The EMAILID is the
   digest of the message (storage.h), so the message is read for it;
   threads are not tracked, and THREADID is NIL as RFC 8474 5.2 allows. */
void fetch_write_emailid(const char *data, size_t len, struct buf *out);
void fetch_write_threadid(struct buf *out);

struct fetch_msg {
	uint32_t seq;
	/* RFC 9586: "* uid UIDFETCH (...)", UID only if asked for by name */
	bool uidonly;
	const struct mail_rec *rec;
	const struct mbox_state *state;      /* keyword names */
	bool recent;
	bool add_flags;                      /* also write FLAGS (after \Seen was set) */
	const char *data;                    /* the message when needed, else NULL */
	size_t len;
	/* Optional (both NULL: parse every time). With both set, BODY,
	   BODYSTRUCTURE and part sections reuse the parsed tree of
	   (cache_owner, rec->uid) from cache (see mime.h). */
	struct mime_cache *cache;
	const void *cache_owner;
	/* Optional: the message's listing cache entry. Items it answers are
	   written from it (byte for byte what the message gives), the rest
	   from data. With data NULL, only fetch_spec_cache_answers() items
	   may be asked for. */
	const struct mcache_entry *cached;
	/* Optional: set to true when a BINARY item names a part whose
	   transfer encoding is unknown (the command answers NO
	   [UNKNOWN-CTE], RFC 9051 6.4.5). */
	bool *unknown_cte;
};

/* Computes the listing cache entry of msg (msg->data must be set) into
   entry_r. Its strings point into bufs (reset first) and into msg->data:
   valid while both are. The header is absent above MCACHE_HEADER_MAX. */
void fetch_cache_entry(const struct fetch_msg *msg, struct buf bufs[3],
		       struct mcache_entry *entry_r);
/* Caches the message rec of state, just stored from data (APPEND): only
   when data is the message as served (CR LF line ends, no NUL, the size
   the backend reports), so that the entry is the one a FETCH would
   compute. */
void fetch_cache_stored(struct mcache *cache, const struct mbox_state *state,
			const struct mail_rec *rec, const char *data, size_t len);
/* Caches for (state, uid) the entry that src_cache holds for
   (src_state, src_uid), if any (COPY, MOVE: no parse). */
void fetch_cache_copy(struct mcache *src_cache, const struct mbox_state *src_state,
		      uint32_t src_uid, struct mcache *cache, const struct mbox_state *state,
		      uint32_t uid);

/* Appends "* <seq> FETCH (...)\r\n" for msg. */
void fetch_write(const struct fetch_spec *spec, const struct fetch_msg *msg, struct buf *out);

#endif
