/* imap_util.h: flags and small IMAP syntax helpers shared by commands. */
#ifndef IMAP_UTIL_H
#define IMAP_UTIL_H

#include "lib.h"
#include "buf.h"
#include "storage.h"
#include "imap_parser.h"

/* Appends "(\Seen \Flagged kw1 ...)" (with \Recent when recent). */
void imap_write_flags(struct buf *out, uint8_t flags, uint64_t keywords, bool recent,
		      const struct mbox_state *state);
/* Parses a flag list (a LIST arg, or a single ATOM) into system flags and
   keywords. Keywords are looked up in state and added when add_keywords;
   \Recent and unknown \-flags are errors. Returns 0, -1 with a reason
   (a syntax error: BAD), or IMAP_FLAGS_NO_ROOM with a reason when a new
   keyword does not fit in the mailbox (MBOX_MAX_KEYWORDS: "NO [LIMIT]",
   RFC 5530; PERMANENTFLAGS stops offering \* then). */
#define IMAP_FLAGS_NO_ROOM (-2)
int imap_parse_flags(const struct imap_arg *arg, struct mbox_state *state, bool add_keywords,
		     uint8_t *flags_r, uint64_t *keywords_r, const char **error_r);
/* True if s is a valid IMAP atom (for keywords and tags). */
bool imap_is_atom(const char *s);

/* A mod-sequence as the protocol says it: RFC 7162 3.1 makes them
   positive, so a mailbox that never changed (0 inside) reports 1, as
   Dovecot does. */
static inline unsigned long long
imap_modseq(uint64_t modseq)
{
	return modseq > 0 ? (unsigned long long)modseq : 1ULL;
}

#endif
