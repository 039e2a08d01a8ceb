/* seqset.h: IMAP sequence sets ("1:4,7,9:*", RFC 3501 sequence-set). */
#ifndef SEQSET_H
#define SEQSET_H

#include "lib.h"

struct seq_range {
	uint32_t lo, hi;           /* inclusive, lo <= hi */
};

struct seqset {
	struct seq_range *ranges;  /* sorted, merged, non-overlapping */
	size_t count, alloc;
};

/* Parses str; '*' stands for star (the highest number in use; 0 when the
   mailbox is empty, which makes "*" match nothing). Ranges are normalised
   (4:2 is 2:4). Returns 0, or -1 if str is not a sequence set (also for a
   0 in it). */
int seqset_parse(const char *str, uint32_t star, struct seqset *set_r);
bool seqset_contains(const struct seqset *set, uint32_t n);
void seqset_add_range(struct seqset *set, uint32_t lo, uint32_t hi);
void seqset_free(struct seqset *set);
/* Adds every range of src to dst. */
void seqset_copy(struct seqset *dst, const struct seqset *src);
/* Writes the set as "1:3,5" (appending to out). */
struct buf;
void seqset_write(const struct seqset *set, struct buf *out);

#endif
