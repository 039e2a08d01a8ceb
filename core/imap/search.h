/* search.h: IMAP SEARCH programs (RFC 3501 section 6.4.4): parsing the
   arguments into a tree and matching one message against it. */
#ifndef SEARCH_H
#define SEARCH_H

#include "lib.h"
#include "seqset.h"
#include "imap_parser.h"
#include "storage.h"

struct search_key;

/* What search_match() needs to know about one message. */
struct search_msg {
	uint32_t seq, uid;
	const struct mail_rec *rec;          /* flags, keywords, size, internal date */
	bool recent;
	/* Loads the whole message (RFC 5322, CRLF). Returns 0 or -1. Called
	   only when a key needs headers or text; at most once per message. */
	int (*load)(void *ctx, const char **data_r, size_t *len_r);
	void *load_ctx;
};

/* Parses args (everything after "SEARCH", charset included if given).
   state supplies keyword names, star_seq and star_uid what '*' means.
   Returns 0, or -1 with a static reason in *error_r; *badcharset_r is set
   when the CHARSET is not supported (answer NO [BADCHARSET (US-ASCII UTF-8)]). */
int search_parse(const struct imap_arg *args, size_t count, const struct mbox_state *state,
		 uint32_t star_seq, uint32_t star_uid, struct search_key **key_r,
		 const char **error_r, bool *badcharset_r);
/* The same, with "$" standing for the UIDs of saved (RFC 5182; NULL:
   none saved, "$" matches nothing). */
int search_parse_saved(const struct imap_arg *args, size_t count, const struct mbox_state *state,
		       uint32_t star_seq, uint32_t star_uid, const struct seqset *saved,
		       struct search_key **key_r, const char **error_r, bool *badcharset_r);
/* 1 match, 0 no match, -1 the message could not be loaded. */
int search_match(const struct search_key *key, const struct search_msg *msg);
/* True if matching needs the message bytes (headers or text). */
bool search_needs_message(const struct search_key *key);
/* True if a MODSEQ key is used (RFC 7162: the SEARCH answer then ends
   with "(MODSEQ n)"). */
bool search_uses_modseq(const struct search_key *key);
/* True if a key is a sequence set of message numbers (RFC 9586 3: not
   with UIDONLY). */
bool search_uses_seqnums(const struct search_key *key);
void search_key_free(struct search_key **key);

#endif
