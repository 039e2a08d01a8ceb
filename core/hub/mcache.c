/* mcache.c: the persistent per-mailbox listing cache (see mcache.h for
   the format and the safety rules).

   Crash and concurrency reasoning, in one place:
   - A record is written with one pwrite() at the end of "<path>" under
     flock(LOCK_EX) and only then is its slot written: a reader that sees
     a new slot before the record (another process, a crash in between)
     reads a record that fails its checks or names another UID: a miss.
   - A slot carries a check over (offset, length, UID, UIDVALIDITY): a
     torn slot, or a slot read through another base UID, is a miss.
   - Dropping the cache (UIDVALIDITY changed, bad header) truncates both
     files under the lock and writes new headers: readers of the old
     contents see short reads or records of another UIDVALIDITY.
   - Compaction writes new files under private names and renames them
     over the old ones under the lock of the old data file. A process
     still holding the old files notices (st_nlink is 0) before its next
     store and at the start of a walk, and reopens. Records it stored
     into the old files meanwhile are lost: a cache may lose entries. */
#include "mcache.h"
#include "buf.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MCACHE_IDX_MAGIC 0x4943494dU   /* "MICI" */
#define MCACHE_DATA_MAGIC 0x4443494dU  /* "MICD" */
#define MCACHE_REC_MAGIC 0x5243494dU   /* "MICR" */
#define MCACHE_VERSION 2U
#define MCACHE_HDR_SIZE 32
#define MCACHE_SLOT_SIZE 16
/* u32 magic, total length, uidvalidity, uid, field mask, lengths[4],
   checks[4] (one per field), the check of these header words */
#define MCACHE_REC_HDR (4 * (5 + 2 * MCACHE_FIELD_COUNT + 1))
#define MCACHE_REC_LENS 20
#define MCACHE_REC_CHECKS (MCACHE_REC_LENS + 4 * MCACHE_FIELD_COUNT)
/* Lookups between two checks that the files were not replaced. */
#define MCACHE_RECHECK_LOOKUPS 512
/* Read-ahead windows: the slots around a lookup's, the data after its
   record (a listing reads records in UID order, mostly adjacent). */
#define MCACHE_SLOT_WINDOW 4096
#define MCACHE_DATA_WINDOW (64 * 1024)
/* Compaction when garbage exceeds half the file and this much. */
#define MCACHE_COMPACT_MIN (256 * 1024)

/* Octets of a file read ahead, as they were when read. Records are never
   changed in place, and any record that verifies is right for its
   (UIDVALIDITY, UID), so a window that is out of date can only make a
   lookup miss (a slot written since) or return an older copy of the
   same entry: both harmless. Windows are dropped at each walk. */
struct mcache_window {
	char *data;
	size_t size, len;
	uint64_t off;
};

struct mcache {
	char *path, *idx_path;
	struct mcache_window slots, records;
	int fd, idx_fd;           /* -1 until opened */
	bool open_failed;
	/* The index header as last read (valid: it verified). */
	bool hdr_valid;
	uint32_t uidvalidity, base_uid;
	unsigned lookups_since_check;
	struct buf rec;
	struct mcache_stats stats;
	/* From the last complete walk. */
	bool compact_wanted;
	struct mcache_walk *compacting;
};

struct mcache_walk {
	struct mcache *cache;
	uint32_t uidvalidity;
	uint64_t live_bytes;
	/* Compaction: new files under private names. */
	bool compact, compact_failed;
	char *tmp_path, *tmp_idx_path;
	int tmp_fd, tmp_idx_fd;
	uint32_t tmp_base;
	uint64_t tmp_size;
};

/* --- encoding ------------------------------------------------------- */

/* The check of records, slots and headers: a 64-bit multiply-and-xor
   hash over 8 octets at a time (a byte-wise check cost more than the
   rest of a cached listing), folded to 32 bits. It detects torn writes
   and flipped bits; it is no defence against a forger, and needs none
   (anyone who can write the file can write the mail). Words are read
   in host order: a file moved to a machine of the other byte order only
   misses. */
static uint32_t
check32(const void *data, size_t len)
{
	const uint64_t m = 0xc4ceb9fe1a85ec53ULL;
	const unsigned char *p = data;
	uint64_t h[4] = { 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * 0xff51afd7ed558ccdULL),
			  0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL, 0xa4093822299f31d0ULL };
	uint64_t w[4], x;

	/* four independent lanes: the multiplies overlap */
	while (len >= 32) {
		memcpy(w, p, 32);
		for (int i = 0; i < 4; i++) {
			h[i] = (h[i] ^ w[i]) * m;
			h[i] ^= h[i] >> 31;
		}
		p += 32;
		len -= 32;
	}
	for (int i = 1; i < 4; i++)
		h[0] = ((h[0] ^ h[i]) * m) ^ (h[i] >> 29);
	while (len >= 8) {
		memcpy(&x, p, 8);
		h[0] = (h[0] ^ x) * m;
		h[0] ^= h[0] >> 31;
		p += 8;
		len -= 8;
	}
	x = 0;
	memcpy(&x, p, len);
	h[0] = (h[0] ^ x ^ ((uint64_t)len << 56)) * m;
	h[0] ^= h[0] >> 29;
	h[0] *= 0xff51afd7ed558ccdULL;
	h[0] ^= h[0] >> 32;
	return (uint32_t)h[0];
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void
put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t
get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void
slot_encode(unsigned char slot[MCACHE_SLOT_SIZE], uint64_t off, uint32_t len,
	    uint32_t uidvalidity, uint32_t uid)
{
	unsigned char keyed[20];

	put64(slot, off);
	put32(slot + 8, len);
	memcpy(keyed, slot, 12);
	put32(keyed + 12, uidvalidity);
	put32(keyed + 16, uid);
	put32(slot + 12, check32(keyed, sizeof(keyed)));
}

/* Returns true if slot verifies for (uidvalidity, uid). */
static bool
slot_decode(const unsigned char slot[MCACHE_SLOT_SIZE], uint32_t uidvalidity, uint32_t uid,
	    uint64_t *off_r, uint32_t *len_r)
{
	unsigned char check[MCACHE_SLOT_SIZE];

	*off_r = get64(slot);
	*len_r = get32(slot + 8);
	if (*len_r < MCACHE_REC_HDR || *len_r > MCACHE_RECORD_MAX || *off_r < MCACHE_HDR_SIZE)
		return false;
	slot_encode(check, *off_r, *len_r, uidvalidity, uid);
	return memcmp(check, slot, MCACHE_SLOT_SIZE) == 0;
}

/* Encodes the record of entry into out (reset first). Returns its length,
   0 if it is too big to store. */
static size_t
record_encode(struct buf *out, uint32_t uidvalidity, uint32_t uid,
	      const struct mcache_entry *entry)
{
	unsigned char hdr[MCACHE_REC_HDR];
	size_t total = MCACHE_REC_HDR;
	uint32_t mask = 0;

	memset(hdr, 0, sizeof(hdr));
	for (int f = 0; f < MCACHE_FIELD_COUNT; f++) {
		if (entry->data[f] == NULL)
			continue;
		if (entry->len[f] > MCACHE_RECORD_MAX)
			return 0;
		mask |= 1U << f;
		total += entry->len[f];
		put32(hdr + MCACHE_REC_LENS + 4 * f, (uint32_t)entry->len[f]);
		put32(hdr + MCACHE_REC_CHECKS + 4 * f, check32(entry->data[f], entry->len[f]));
	}
	if (total > MCACHE_RECORD_MAX)
		return 0;
	put32(hdr, MCACHE_REC_MAGIC);
	put32(hdr + 4, (uint32_t)total);
	put32(hdr + 8, uidvalidity);
	put32(hdr + 12, uid);
	put32(hdr + 16, mask);
	put32(hdr + MCACHE_REC_HDR - 4, check32(hdr, MCACHE_REC_HDR - 4));
	buf_reset(out);
	buf_append(out, hdr, sizeof(hdr));
	for (int f = 0; f < MCACHE_FIELD_COUNT; f++) {
		if (entry->data[f] != NULL)
			buf_append(out, entry->data[f], entry->len[f]);
	}
	return total;
}

/* Verifies the record p[0..len) for (uidvalidity, uid) and points
   entry_r into it: the fields in the mask fields, each checked (the
   others are left out unchecked: a listing checks what it sends).
   Returns true if it verifies. */
static bool
record_decode(const unsigned char *p, size_t len, uint32_t uidvalidity, uint32_t uid,
	      unsigned fields, struct mcache_entry *entry_r)
{
	size_t pos = MCACHE_REC_HDR;
	uint32_t mask;

	memset(entry_r, 0, sizeof(*entry_r));
	if (len < MCACHE_REC_HDR || get32(p) != MCACHE_REC_MAGIC || get32(p + 4) != len ||
	    get32(p + 8) != uidvalidity || get32(p + 12) != uid ||
	    get32(p + MCACHE_REC_HDR - 4) != check32(p, MCACHE_REC_HDR - 4))
		return false;
	mask = get32(p + 16);
	for (int f = 0; f < MCACHE_FIELD_COUNT; f++) {
		size_t flen = get32(p + MCACHE_REC_LENS + 4 * f);

		if ((mask & (1U << f)) == 0)
			continue;
		if (flen > len - pos)
			return false;
		if ((fields & (1U << f)) != 0) {
			if (check32(p + pos, flen) != get32(p + MCACHE_REC_CHECKS + 4 * f))
				return false;
			entry_r->data[f] = (const char *)p + pos;
			entry_r->len[f] = flen;
		}
		pos += flen;
	}
	return pos == len;
}

static void
header_encode(unsigned char hdr[MCACHE_HDR_SIZE], uint32_t magic, uint32_t uidvalidity,
	      uint32_t base_uid)
{
	memset(hdr, 0, MCACHE_HDR_SIZE);
	put32(hdr, magic);
	put32(hdr + 4, MCACHE_VERSION);
	put32(hdr + 8, uidvalidity);
	put32(hdr + 12, base_uid);
	put32(hdr + 28, check32(hdr, 28));
}

/* --- files ---------------------------------------------------------- */

struct mcache *
mcache_open(const char *path)
{
	struct mcache *cache = xcalloc(1, sizeof(*cache));

	cache->fd = -1;
	cache->idx_fd = -1;
	if (path != NULL) {
		cache->path = xstrdup(path);
		cache->idx_path = xasprintf("%s.idx", path);
	} else {
		cache->open_failed = true;
	}
	return cache;
}

/* Points *p_r at len octets at off, read through w (size octets read
   ahead, from off rounded down to size if align). Returns 0, or -1 if
   they are not all in the window (the file is shorter, or len is above
   size). */
static int
window_get(int fd, struct mcache_window *w, size_t size, bool align, size_t len, uint64_t off,
	   const unsigned char **p_r)
{
	ssize_t n;

	if (w->len == 0 || off < w->off || off - w->off > w->len ||
	    len > w->len - (off - w->off)) {
		if (len > size)
			return -1;
		if (w->data == NULL) {
			w->data = xmalloc(size);
			w->size = size;
		}
		w->off = align ? off - off % size : off;
		w->len = 0;
		n = fd_pread_full(fd, w->data, size, w->off);
		if (n <= 0)
			return -1;
		w->len = (size_t)n;
		if (off - w->off > w->len || len > w->len - (off - w->off))
			return -1;
	}
	*p_r = (const unsigned char *)w->data + (off - w->off);
	return 0;
}

static void
cache_drop_windows(struct mcache *cache)
{
	cache->slots.len = 0;
	cache->records.len = 0;
}

static void
cache_close_files(struct mcache *cache)
{
	if (cache->fd >= 0)
		close(cache->fd);
	if (cache->idx_fd >= 0)
		close(cache->idx_fd);
	cache->fd = cache->idx_fd = -1;
	cache->hdr_valid = false;
	cache_drop_windows(cache);
}

void
mcache_close(struct mcache **_cache)
{
	struct mcache *cache = *_cache;

	if (cache == NULL)
		return;
	if (cache->compacting != NULL)
		cache->compacting->cache = NULL;
	cache_close_files(cache);
	buf_free(&cache->rec);
	free(cache->slots.data);
	free(cache->records.data);
	free(cache->path);
	free(cache->idx_path);
	free(cache);
	*_cache = NULL;
}

/* Opens the files if they are not open. create: also create them.
   Returns 0, or -1 if they cannot be used now. */
static int
cache_files(struct mcache *cache, bool create)
{
	int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);

	if (cache->open_failed)
		return -1;
	if (cache->fd >= 0 && cache->idx_fd >= 0)
		return 0;
	cache_close_files(cache);
	cache->fd = open(cache->path, flags, 0600);
	if (cache->fd < 0) {
		if (errno != ENOENT)
			cache->open_failed = true;
		return -1;
	}
	cache->idx_fd = open(cache->idx_path, flags, 0600);
	if (cache->idx_fd < 0) {
		if (errno != ENOENT)
			cache->open_failed = true;
		cache_close_files(cache);
		return -1;
	}
	return 0;
}

/* Reopens the files if another process replaced them (compaction). */
static void
cache_check_replaced(struct mcache *cache)
{
	struct stat st;

	cache->lookups_since_check = 0;
	if (cache->fd >= 0 && fstat(cache->fd, &st) == 0 && st.st_nlink > 0 &&
	    cache->idx_fd >= 0 && fstat(cache->idx_fd, &st) == 0 && st.st_nlink > 0)
		return;
	cache_close_files(cache);
}

/* Reads and checks the index header. Returns 0 or -1 (absent or bad). */
static int
cache_read_header(struct mcache *cache)
{
	unsigned char hdr[MCACHE_HDR_SIZE];

	cache->hdr_valid = false;
	if (fd_pread_full(cache->idx_fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    get32(hdr) != MCACHE_IDX_MAGIC || get32(hdr + 4) != MCACHE_VERSION ||
	    get32(hdr + 28) != check32(hdr, 28))
		return -1;
	cache->uidvalidity = get32(hdr + 8);
	cache->base_uid = get32(hdr + 12);
	cache->hdr_valid = true;
	return 0;
}

/* Drops every entry: empty files with new headers. Under the lock. */
static int
cache_reset(struct mcache *cache, uint32_t uidvalidity, uint32_t base_uid)
{
	unsigned char hdr[MCACHE_HDR_SIZE];

	cache_drop_windows(cache);
	if (ftruncate(cache->idx_fd, 0) < 0 || ftruncate(cache->fd, 0) < 0)
		return -1;
	header_encode(hdr, MCACHE_DATA_MAGIC, uidvalidity, base_uid);
	if (fd_pwrite_full(cache->fd, hdr, sizeof(hdr), 0) < 0)
		return -1;
	header_encode(hdr, MCACHE_IDX_MAGIC, uidvalidity, base_uid);
	if (fd_pwrite_full(cache->idx_fd, hdr, sizeof(hdr), 0) < 0)
		return -1;
	cache->uidvalidity = uidvalidity;
	cache->base_uid = base_uid;
	cache->hdr_valid = true;
	return 0;
}

/* --- lookups and stores ---------------------------------------------- */

static void walk_copy(struct mcache_walk *walk, uint32_t uid, const unsigned char *rec,
		      size_t len);

int
mcache_lookup(struct mcache *cache, struct mcache_walk *walk, uint32_t uidvalidity,
	      uint32_t uid, unsigned fields, struct mcache_entry *entry_r)
{
	static const unsigned char zero[MCACHE_SLOT_SIZE];
	unsigned char slot[MCACHE_SLOT_SIZE];
	const unsigned char *p;
	uint64_t slot_off, off;
	uint32_t len;

	memset(entry_r, 0, sizeof(*entry_r));
	if (++cache->lookups_since_check >= MCACHE_RECHECK_LOOKUPS)
		cache_check_replaced(cache);
	if (cache_files(cache, false) < 0)
		goto miss;
	if (!cache->hdr_valid && cache_read_header(cache) < 0)
		goto miss;
	if (cache->uidvalidity != uidvalidity || uid < cache->base_uid)
		goto miss;
	slot_off = MCACHE_HDR_SIZE + (uint64_t)(uid - cache->base_uid) * MCACHE_SLOT_SIZE;
	if (window_get(cache->idx_fd, &cache->slots, MCACHE_SLOT_WINDOW, true, sizeof(slot),
		       slot_off, &p) == 0)
		memcpy(slot, p, sizeof(slot));
	else
		memset(slot, 0, sizeof(slot));
	if (!slot_decode(slot, uidvalidity, uid, &off, &len)) {
		/* the window may be older than the slot: read it alone */
		cache->slots.len = 0;
		if (fd_pread_full(cache->idx_fd, slot, sizeof(slot), slot_off) !=
		    (ssize_t)sizeof(slot))
			goto miss;
		if (!slot_decode(slot, uidvalidity, uid, &off, &len)) {
			if (memcmp(slot, zero, sizeof(zero)) != 0) {
				/* torn, damaged, or written through another
				   base: read the header again next time */
				cache->stats.bad_records++;
				cache->hdr_valid = false;
			}
			goto miss;
		}
	}
	if (window_get(cache->fd, &cache->records, MCACHE_DATA_WINDOW, false, len, off, &p) < 0 ||
	    !record_decode(p, len, uidvalidity, uid, fields, entry_r)) {
		/* not in the window, or the window holds a record that was
		   still being written: read it alone */
		cache_drop_windows(cache);
		buf_reset(&cache->rec);
		buf_reserve(&cache->rec, len);
		if (fd_pread_full(cache->fd, cache->rec.data, len, off) != (ssize_t)len)
			goto bad;
		cache->rec.len = len;
		p = (const unsigned char *)cache->rec.data;
		if (!record_decode(p, len, uidvalidity, uid, fields, entry_r))
			goto bad;
	}
	cache->stats.hits++;
	if (walk != NULL) {
		walk->live_bytes += len;
		walk_copy(walk, uid, p, len);
	}
	return 1;
bad:
	cache->stats.bad_records++;
	memset(entry_r, 0, sizeof(*entry_r));
miss:
	cache->stats.misses++;
	return 0;
}

/* Appends rec (encoded) under the lock. Returns 0 or -1. */
static int
cache_append_locked(struct mcache *cache, uint32_t uidvalidity, uint32_t low_uid,
		    uint32_t uid, const struct buf *rec)
{
	unsigned char slot[MCACHE_SLOT_SIZE];
	struct stat st;

	if (fstat(cache->fd, &st) < 0)
		return -1;
	if (cache_read_header(cache) < 0 || cache->uidvalidity != uidvalidity ||
	    st.st_size < MCACHE_HDR_SIZE) {
		if (cache_reset(cache, uidvalidity, low_uid < uid ? low_uid : uid) < 0)
			return -1;
		st.st_size = MCACHE_HDR_SIZE;
	}
	if (uid < cache->base_uid)
		return -1;
	if (fd_pwrite_full(cache->fd, rec->data, rec->len, (uint64_t)st.st_size) < 0) {
		/* a partial record stays as garbage: it never verifies */
		return -1;
	}
	slot_encode(slot, (uint64_t)st.st_size, (uint32_t)rec->len, uidvalidity, uid);
	return fd_pwrite_full(cache->idx_fd, slot, sizeof(slot),
			      MCACHE_HDR_SIZE +
				      (uint64_t)(uid - cache->base_uid) * MCACHE_SLOT_SIZE);
}

void
mcache_store(struct mcache *cache, struct mcache_walk *walk, uint32_t uidvalidity,
	     uint32_t low_uid, uint32_t uid, const struct mcache_entry *entry)
{
	struct buf rec = BUF_INIT;

	if (record_encode(&rec, uidvalidity, uid, entry) == 0)
		goto out;
	if (walk != NULL) {
		walk->live_bytes += rec.len;
		walk_copy(walk, uid, (const unsigned char *)rec.data, rec.len);
	}
	cache_check_replaced(cache);
	if (cache_files(cache, true) < 0)
		goto out;
	if (flock(cache->fd, LOCK_EX | LOCK_NB) < 0)
		goto out;
	/* Replaced between the check and the lock: give up this once. */
	cache_check_replaced(cache);
	if (cache->fd >= 0) {
		if (cache_append_locked(cache, uidvalidity, low_uid, uid, &rec) == 0)
			cache->stats.stores++;
		cache_drop_windows(cache);
		(void)flock(cache->fd, LOCK_UN);
	}
out:
	buf_free(&rec);
}

/* --- walks and compaction --------------------------------------------- */

struct mcache_walk *
mcache_walk_begin(struct mcache *cache, uint32_t uidvalidity)
{
	struct mcache_walk *walk = xcalloc(1, sizeof(*walk));

	walk->cache = cache;
	walk->uidvalidity = uidvalidity;
	walk->tmp_fd = walk->tmp_idx_fd = -1;
	cache_check_replaced(cache);
	cache_drop_windows(cache);
	if (cache->compact_wanted && cache->compacting == NULL && cache->path != NULL) {
		walk->tmp_path = xasprintf("%s.%ld.tmp", cache->path, (long)getpid());
		walk->tmp_idx_path = xasprintf("%s.idx.%ld.tmp", cache->path, (long)getpid());
		walk->tmp_fd = open(walk->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		walk->tmp_idx_fd =
			open(walk->tmp_idx_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		walk->compact = true;
		walk->compact_failed = walk->tmp_fd < 0 || walk->tmp_idx_fd < 0;
		cache->compacting = walk;
	}
	return walk;
}

/* During a compacting walk: copies the verified record rec of uid to the
   new files (the first UID copied is their base). */
static void
walk_copy(struct mcache_walk *walk, uint32_t uid, const unsigned char *rec, size_t len)
{
	unsigned char hdr[MCACHE_HDR_SIZE], slot[MCACHE_SLOT_SIZE];

	if (!walk->compact || walk->compact_failed)
		return;
	if (walk->tmp_size == 0) {
		walk->tmp_base = uid;
		header_encode(hdr, MCACHE_DATA_MAGIC, walk->uidvalidity, uid);
		if (fd_pwrite_full(walk->tmp_fd, hdr, sizeof(hdr), 0) < 0)
			goto fail;
		header_encode(hdr, MCACHE_IDX_MAGIC, walk->uidvalidity, uid);
		if (fd_pwrite_full(walk->tmp_idx_fd, hdr, sizeof(hdr), 0) < 0)
			goto fail;
		walk->tmp_size = MCACHE_HDR_SIZE;
	}
	if (uid < walk->tmp_base)
		goto fail;
	if (fd_pwrite_full(walk->tmp_fd, rec, len, walk->tmp_size) < 0)
		goto fail;
	slot_encode(slot, walk->tmp_size, (uint32_t)len, walk->uidvalidity, uid);
	if (fd_pwrite_full(walk->tmp_idx_fd, slot, sizeof(slot),
			   MCACHE_HDR_SIZE + (uint64_t)(uid - walk->tmp_base) * MCACHE_SLOT_SIZE) <
	    0)
		goto fail;
	walk->tmp_size += len;
	return;
fail:
	walk->compact_failed = true;
}

/* Puts the new files in place of the old ones, under the old lock. */
static void
walk_commit(struct mcache_walk *walk)
{
	struct mcache *cache = walk->cache;
	bool locked;

	if (cache_files(cache, false) < 0)
		return;
	locked = flock(cache->fd, LOCK_EX | LOCK_NB) == 0;
	if (!locked)
		return;
	if (rename(walk->tmp_path, cache->path) == 0 &&
	    rename(walk->tmp_idx_path, cache->idx_path) == 0)
		cache->stats.compactions++;
	(void)flock(cache->fd, LOCK_UN);
	cache_close_files(cache);
}

void
mcache_walk_end(struct mcache_walk **_walk, bool complete)
{
	struct mcache_walk *walk = *_walk;
	struct mcache *cache;
	struct stat st;

	if (walk == NULL)
		return;
	*_walk = NULL;
	cache = walk->cache;
	if (cache != NULL && walk->compact) {
		cache->compacting = NULL;
		if (complete && !walk->compact_failed && walk->tmp_size > 0) {
			walk_commit(walk);
			cache->compact_wanted = false;
		}
	} else if (cache != NULL && complete && cache_files(cache, false) == 0 &&
		   fstat(cache->fd, &st) == 0) {
		uint64_t garbage = (uint64_t)st.st_size > walk->live_bytes + MCACHE_HDR_SIZE ?
					   (uint64_t)st.st_size - walk->live_bytes - MCACHE_HDR_SIZE :
					   0;

		cache->compact_wanted = garbage > MCACHE_COMPACT_MIN &&
					garbage > (uint64_t)st.st_size / 2;
	}
	if (walk->tmp_fd >= 0)
		close(walk->tmp_fd);
	if (walk->tmp_idx_fd >= 0)
		close(walk->tmp_idx_fd);
	if (walk->tmp_path != NULL) {
		/* gone already if committed */
		(void)unlink(walk->tmp_path);
		(void)unlink(walk->tmp_idx_path);
	}
	free(walk->tmp_path);
	free(walk->tmp_idx_path);
	free(walk);
}

void
mcache_get_stats(const struct mcache *cache, struct mcache_stats *stats_r)
{
	*stats_r = cache->stats;
}

void
mcache_unlink(const char *path)
{
	char *idx = xasprintf("%s.idx", path);

	(void)unlink(path);
	(void)unlink(idx);
	free(idx);
}
