/* seqset.c: IMAP sequence sets (RFC 3501 section 9, "sequence-set").

   Representation: a sorted array of inclusive ranges that never overlap
   and never touch (1:3 and 4:5 are stored as 1:5), so membership is a
   binary search and seqset_write() gives the most compact form.

   The number 0 is never a member. '*' is replaced by the caller's star;
   when star is 0 (an empty mailbox) a range that reaches 0 is clipped to
   start at 1, so "*" alone matches nothing and "5:*" matches 1..5. That is
   RFC 3501's rule that n:* covers every number between n and the highest
   one in use, for the case where nothing is in use: the caller's own
   bounds check then finds no message in it. */
#include "seqset.h"
#include "buf.h"

#include <stdlib.h>

/* Parses one seq-number at *pp: an nz-number (no leading zero, at most
   4294967295) or '*'. Returns 0 and advances *pp, or -1. */
static int
seqset_parse_number(const char **pp, uint32_t star, uint32_t *num_r)
{
	const char *p = *pp;
	uint64_t n = 0;

	if (*p == '*') {
		*num_r = star;
		*pp = p + 1;
		return 0;
	}
	if (*p < '1' || *p > '9')
		return -1;
	/* At most 10 digits are looked at before the bound check fails, so
	   n cannot overflow. */
	while (*p >= '0' && *p <= '9') {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > UINT32_MAX)
			return -1;
		p++;
	}
	*num_r = (uint32_t)n;
	*pp = p;
	return 0;
}

int
seqset_parse(const char *str, uint32_t star, struct seqset *set_r)
{
	const char *p = str;
	uint32_t lo, hi;

	i_zero(set_r);
	if (str == NULL || *str == '\0')
		return -1;
	for (;;) {
		if (seqset_parse_number(&p, star, &lo) < 0)
			goto fail;
		hi = lo;
		if (*p == ':') {
			p++;
			if (seqset_parse_number(&p, star, &hi) < 0)
				goto fail;
		}
		seqset_add_range(set_r, lo, hi);
		if (*p == '\0')
			return 0;
		if (*p != ',')
			goto fail;
		p++;
	}
fail:
	seqset_free(set_r);
	return -1;
}

/* Index of the first range whose hi + 1 >= n, i.e. the first range that n
   could extend or fall into; set->count if none. */
static size_t
seqset_lower_bound(const struct seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((uint64_t)set->ranges[mid].hi + 1 < n)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void
seqset_add_range(struct seqset *set, uint32_t lo, uint32_t hi)
{
	size_t first, last;

	if (lo > hi) {
		uint32_t tmp = lo;

		lo = hi;
		hi = tmp;
	}
	/* 0 is never a member (see the top of this file). */
	if (hi == 0)
		return;
	if (lo == 0)
		lo = 1;

	/* Fast path: ascending additions, as when a set is built from a
	   message list. */
	if (set->count == 0 || (uint64_t)set->ranges[set->count - 1].hi + 1 < lo) {
		xgrow(&set->ranges, &set->alloc, set->count + 1, sizeof(set->ranges[0]));
		set->ranges[set->count].lo = lo;
		set->ranges[set->count].hi = hi;
		set->count++;
		return;
	}

	first = seqset_lower_bound(set, lo);
	/* Every range from first on that starts at or before hi + 1 merges
	   with [lo, hi]. */
	last = first;
	while (last < set->count && (uint64_t)set->ranges[last].lo <= (uint64_t)hi + 1)
		last++;
	if (last == first) {
		/* Nothing to merge with: insert before first. */
		xgrow(&set->ranges, &set->alloc, set->count + 1, sizeof(set->ranges[0]));
		memmove(&set->ranges[first + 1], &set->ranges[first],
			(set->count - first) * sizeof(set->ranges[0]));
		set->ranges[first].lo = lo;
		set->ranges[first].hi = hi;
		set->count++;
		return;
	}
	/* Merge ranges first..last-1 into ranges[first]. */
	if (set->ranges[first].lo < lo)
		lo = set->ranges[first].lo;
	if (set->ranges[last - 1].hi > hi)
		hi = set->ranges[last - 1].hi;
	set->ranges[first].lo = lo;
	set->ranges[first].hi = hi;
	memmove(&set->ranges[first + 1], &set->ranges[last],
		(set->count - last) * sizeof(set->ranges[0]));
	set->count -= last - first - 1;
}

bool
seqset_contains(const struct seqset *set, uint32_t n)
{
	size_t i;

	if (n == 0 || set->count == 0)
		return false;
	/* The range found may end at n - 1; then n is in no range, since
	   ranges never touch and the next one starts above n. */
	i = seqset_lower_bound(set, n);
	return i < set->count && set->ranges[i].lo <= n && n <= set->ranges[i].hi;
}

void
seqset_free(struct seqset *set)
{
	free(set->ranges);
	i_zero(set);
}

void
seqset_write(const struct seqset *set, struct buf *out)
{
	size_t i;

	for (i = 0; i < set->count; i++) {
		if (i > 0)
			buf_append_c(out, ',');
		buf_append_u64(out, set->ranges[i].lo);
		if (set->ranges[i].hi != set->ranges[i].lo) {
			buf_append_c(out, ':');
			buf_append_u64(out, set->ranges[i].hi);
		}
	}
}

void
seqset_copy(struct seqset *dst, const struct seqset *src)
{
	for (size_t r = 0; r < src->count; r++)
		seqset_add_range(dst, src->ranges[r].lo, src->ranges[r].hi);
}
