/* flat_compact.c: EXPUNGE in place, for a disk too full to rewrite.

   The usual EXPUNGE (flat_expunge.c) copies the kept messages to a new
   file, which needs free space as large as they are: on a full disk it
   fails, and EXPUNGE is the only way a user has to free space. Then the
   kept messages are moved down in place instead, over the bytes of the
   expunged ones, and the file is truncated.

   Crash safety comes from a redo journal, <user>/.imap/compact, a file
   of COMPACT_SIZE octets allocated while there is room (at each open of
   a mailbox, flat_compact_reserve()), so that writing it later needs no
   new block. It holds the plan (the runs of kept bytes: from, to,
   length, in file order, each moving down) and, before each chunk is
   written into the mail file, that chunk's bytes and place:
     1. the plan is written and fsynced (nothing moved yet);
     2. for each chunk: its bytes are written to the journal with its
        position and fsynced, then written to the mail file and fsynced;
     3. the mail file is truncated and fsynced, then the journal is
        cleared (its magic zeroed) and fsynced.
   A chunk never overwrites the source of a later chunk (runs move down,
   in file order), only its own source, which the journal holds. So after
   a crash at any instant, flat_compact_recover() (at the next open,
   under the lock) writes the logged chunk again, goes on with the plan
   from there and truncates: the result is the file the compaction would
   have made. The index is rewritten after that (or, when even that
   fails, matched by hash at the next open, as after a crash between
   the renames of flat_expunge.c), so the kept messages keep their UIDs.
   A torn plan (a crash in step 1) fails its checksum and nothing had
   moved: the journal is ignored. Nothing is lost or duplicated.

   It costs two fsyncs per COMPACT_CHUNK octets after the first expunged
   message, in the loop: the rewrite's cost, on a path taken only when
   the disk is full. */
#include "fileio.h"
#include "log.h"
#include "safepath.h"
#include "flat_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMPACT_FILE "compact"
#define COMPACT_SIZE (256 * 1024)
#define COMPACT_MAGIC "FLATCMP1"
/* Layout: the plan's header, the two chunk records, the runs, the two
   chunks' bytes. */
#define COMPACT_HDR_SIZE 512
#define COMPACT_CHUNK_REC_OFF(slot) (512 + 256 * (slot))
#define COMPACT_RUNS_OFF 1024
#define COMPACT_CHUNK (64 * 1024)
#define COMPACT_DATA_OFF(slot) (COMPACT_SIZE - (2 - (slot)) * COMPACT_CHUNK)
#define COMPACT_MAX_RUNS ((COMPACT_DATA_OFF(0) - COMPACT_RUNS_OFF) / 24)
#define COMPACT_NAME_MAX 400

struct compact_run {
	uint64_t from, to, len;
};

/* The plan: which mail file, and how it shrinks. */
struct compact_plan {
	char name[COMPACT_NAME_MAX + 1]; /* the mail file, relative to the user folder */
	uint64_t ino, old_size, new_size;
	struct compact_run *runs;
	size_t count;
};

/* A test stops the compaction after this many chunks, as a crash would
   (flat_compact_test_crash_after; 0: never). */
unsigned flat_compact_test_crash_after;

static char *
compact_path(const struct storage_box *box)
{
	return xasprintf("%s/%s/%s", box->user_dir, FLAT_IMAP_DIR, COMPACT_FILE);
}

/* The mail file's name relative to the user folder. */
static const char *
compact_rel_name(const struct storage_box *box)
{
	size_t n = strlen(box->user_dir);

	return strncmp(box->mail_path, box->user_dir, n) == 0 && box->mail_path[n] == '/' ?
		box->mail_path + n + 1 : box->mail_path;
}

void
flat_compact_reserve(struct storage_box *box)
{
	char *path = compact_path(box);
	struct stat st;
	int fd;

	if (mkdir_parents(box->user_dir, path) == 0 &&
	    (fd = fs_open_beneath(box->user_dir, path, O_RDWR | O_CREAT, 0600)) >= 0) {
		if (fstat(fd, &st) == 0 && ((uint64_t)st.st_size < COMPACT_SIZE ||
					    (uint64_t)st.st_blocks * 512 < COMPACT_SIZE))
			(void)fallocate(fd, 0, 0, COMPACT_SIZE);
		close(fd);
	}
	free(path);
}

/* Opens the journal if it is fully allocated; -1 otherwise. */
static int
compact_open(const struct storage_box *box)
{
	char *path = compact_path(box);
	struct stat st;
	int fd = fs_open_beneath(box->user_dir, path, O_RDWR, 0);

	free(path);
	if (fd >= 0 && (fstat(fd, &st) < 0 || (uint64_t)st.st_size < COMPACT_SIZE ||
			(uint64_t)st.st_blocks * 512 < COMPACT_SIZE)) {
		close(fd);
		fd = -1;
		errno = ENOSPC;
	}
	return fd;
}

static uint64_t
compact_plan_hash(const unsigned char *hdr, const unsigned char *runs, size_t nruns)
{
	uint64_t h = flat_hash_update(HASH_INIT, hdr, COMPACT_HDR_SIZE - 8);

	return flat_hash_update(h, runs, nruns * 24);
}

/* Writes the plan (step 1). */
static int
compact_write_plan(int fd, const struct compact_plan *p)
{
	unsigned char hdr[COMPACT_HDR_SIZE];
	unsigned char *runs = xmalloc(p->count * 24 + 1);
	unsigned char zero[COMPACT_HDR_SIZE];
	int ret;

	memset(hdr, 0, sizeof(hdr));
	memset(zero, 0, sizeof(zero));
	memcpy(hdr, COMPACT_MAGIC, 8);
	flat_put64(hdr + 8, p->ino);
	flat_put64(hdr + 16, p->old_size);
	flat_put64(hdr + 24, p->new_size);
	flat_put64(hdr + 32, p->count);
	memcpy(hdr + 40, p->name, strlen(p->name));
	for (size_t i = 0; i < p->count; i++) {
		flat_put64(runs + i * 24, p->runs[i].from);
		flat_put64(runs + i * 24 + 8, p->runs[i].to);
		flat_put64(runs + i * 24 + 16, p->runs[i].len);
	}
	flat_put64(hdr + COMPACT_HDR_SIZE - 8, compact_plan_hash(hdr, runs, p->count));
	ret = (fd_pwrite_full(fd, zero, sizeof(zero), COMPACT_CHUNK_REC_OFF(0)) < 0 ||
	       (p->count > 0 && fd_pwrite_full(fd, runs, p->count * 24, COMPACT_RUNS_OFF) < 0) ||
	       fd_pwrite_full(fd, hdr, sizeof(hdr), 0) < 0 || fdatasync(fd) < 0) ? -1 : 0;
	free(runs);
	return ret;
}

/* Reads the plan; 1 if there is a whole one, 0 if none, -1 on error. */
static int
compact_read_plan(int fd, struct compact_plan *p)
{
	unsigned char hdr[COMPACT_HDR_SIZE];
	unsigned char *runs;
	uint64_t count;

	memset(p, 0, sizeof(*p));
	if (fd_pread_full(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		return -1;
	if (memcmp(hdr, COMPACT_MAGIC, 8) != 0)
		return 0;
	count = flat_get64(hdr + 32);
	if (count > COMPACT_MAX_RUNS)
		return 0;
	runs = xmalloc(count * 24 + 1);
	if (fd_pread_full(fd, runs, count * 24, COMPACT_RUNS_OFF) != (ssize_t)(count * 24)) {
		free(runs);
		return -1;
	}
	if (compact_plan_hash(hdr, runs, count) != flat_get64(hdr + COMPACT_HDR_SIZE - 8)) {
		free(runs);
		return 0;       /* torn in step 1: nothing moved */
	}
	p->ino = flat_get64(hdr + 8);
	p->old_size = flat_get64(hdr + 16);
	p->new_size = flat_get64(hdr + 24);
	p->count = (size_t)count;
	memcpy(p->name, hdr + 40, COMPACT_NAME_MAX);
	p->name[COMPACT_NAME_MAX] = '\0';
	p->runs = xmalloc((count == 0 ? 1 : count) * sizeof(*p->runs));
	for (size_t i = 0; i < count; i++) {
		p->runs[i].from = flat_get64(runs + i * 24);
		p->runs[i].to = flat_get64(runs + i * 24 + 8);
		p->runs[i].len = flat_get64(runs + i * 24 + 16);
	}
	free(runs);
	return 1;
}

/* A chunk record: seq, run, done (octets of the run before the chunk),
   length, hash of the bytes, and a check of the five. Two slots are used
   in turn, each with its own data area, so that a record torn by a
   crash leaves the previous one (whose chunk is in the mail file
   already, so writing it again changes nothing) whole. */
static int
compact_log_chunk(int fd, uint64_t seq, size_t run, uint64_t done, const char *data, size_t len)
{
	unsigned slot = (unsigned)(seq % 2);
	unsigned char rec[48];

	flat_put64(rec, seq);
	flat_put64(rec + 8, run);
	flat_put64(rec + 16, done);
	flat_put64(rec + 24, len);
	flat_put64(rec + 32, flat_hash_bytes(data, len));
	flat_put64(rec + 40, flat_hash_bytes(rec, 40));
	return fd_pwrite_full(fd, data, len, COMPACT_DATA_OFF(slot)) < 0 ||
	       fd_pwrite_full(fd, rec, sizeof(rec), COMPACT_CHUNK_REC_OFF(slot)) < 0 ||
	       fdatasync(fd) < 0 ? -1 : 0;
}

/* The last chunk logged whole: 1 with seq, run, done, len and data
   (COMPACT_CHUNK octets), 0 if none. */
static int
compact_read_chunk(int fd, uint64_t *seq_r, size_t *run_r, uint64_t *done_r, size_t *len_r,
		   char *data)
{
	int found = 0;

	for (unsigned slot = 0; slot < 2; slot++) {
		unsigned char rec[48];
		uint64_t len, seq;

		if (fd_pread_full(fd, rec, sizeof(rec), COMPACT_CHUNK_REC_OFF(slot)) !=
			    (ssize_t)sizeof(rec) ||
		    flat_get64(rec + 40) != flat_hash_bytes(rec, 40))
			continue;
		seq = flat_get64(rec);
		len = flat_get64(rec + 24);
		if (seq == 0 || (found && seq < *seq_r) || len == 0 || len > COMPACT_CHUNK ||
		    fd_pread_full(fd, data, (size_t)len, COMPACT_DATA_OFF(slot)) != (ssize_t)len ||
		    flat_hash_bytes(data, (size_t)len) != flat_get64(rec + 32))
			continue;
		*seq_r = seq;
		*run_r = (size_t)flat_get64(rec + 8);
		*done_r = flat_get64(rec + 16);
		*len_r = (size_t)len;
		found = 1;
	}
	return found;
}

/* Steps 2 and 3 from run, done on: moves the rest of the plan in the
   mail file mfd, truncates it and clears the journal. */
static int
compact_run_plan(int jfd, int mfd, const struct compact_plan *p, uint64_t seq, size_t run,
		 uint64_t done, char *chunk)
{
	unsigned chunks = 0;
	char magic[8];

	for (; run < p->count; run++, done = 0) {
		const struct compact_run *r = &p->runs[run];

		while (done < r->len) {
			size_t n = r->len - done > COMPACT_CHUNK ? COMPACT_CHUNK :
								   (size_t)(r->len - done);

			if (fd_pread_full(mfd, chunk, n, r->from + done) != (ssize_t)n) {
				if (errno == 0)
					errno = EIO;
				return -1;
			}
			if (compact_log_chunk(jfd, ++seq, run, done, chunk, n) < 0)
				return -1;
			if (flat_compact_test_crash_after != 0 &&
			    ++chunks >= flat_compact_test_crash_after)
				_exit(99);
			if (fd_pwrite_full(mfd, chunk, n, r->to + done) < 0 || fdatasync(mfd) < 0)
				return -1;
			done += n;
		}
	}
	if (ftruncate(mfd, (off_t)p->new_size) < 0 || fsync(mfd) < 0)
		return -1;
	memset(magic, 0, sizeof(magic));
	if (fd_pwrite_full(jfd, magic, sizeof(magic), 0) < 0 || fdatasync(jfd) < 0)
		return -1;
	return 0;
}

int
flat_compact_in_place(struct storage_box *box, const uint64_t *off, const uint64_t *len,
		      size_t n, uint64_t *newoff, char **error_r)
{
	struct compact_plan p;
	struct stat st;
	uint64_t to = 0;
	char *chunk;
	int jfd, ret;

	memset(&p, 0, sizeof(p));
	if (strlen(compact_rel_name(box)) > COMPACT_NAME_MAX || fstat(box->lock_fd, &st) < 0) {
		*error_r = xasprintf("expunge in place %s: %s", box->mail_path,
				     strerror(errno == 0 ? ENAMETOOLONG : errno));
		return -1;
	}
	p.runs = xmalloc((n == 0 ? 1 : n) * sizeof(*p.runs));
	for (size_t i = 0; i < n; i++) {
		newoff[i] = to;
		if (off[i] != to) {
			if (p.count > 0 && p.runs[p.count - 1].from + p.runs[p.count - 1].len == off[i])
				p.runs[p.count - 1].len += len[i];
			else
				p.runs[p.count++] = (struct compact_run){ off[i], to, len[i] };
		}
		to += len[i];
	}
	if (p.count > COMPACT_MAX_RUNS) {
		free(p.runs);
		errno = ENOSPC;
		*error_r = xasprintf("expunge in place %s: more than %u gaps at once; expunge "
				     "fewer messages at a time", box->mail_path,
				     (unsigned)COMPACT_MAX_RUNS);
		return -1;
	}
	(void)snprintf(p.name, sizeof(p.name), "%s", compact_rel_name(box));
	p.ino = (uint64_t)st.st_ino;
	p.old_size = (uint64_t)st.st_size;
	p.new_size = to;
	jfd = compact_open(box);
	if (jfd < 0) {
		free(p.runs);
		*error_r = xasprintf("expunge in place %s: no journal space kept", box->mail_path);
		errno = ENOSPC;
		return -1;
	}
	chunk = xmalloc(COMPACT_CHUNK);
	ret = compact_write_plan(jfd, &p);
	if (ret == 0)
		ret = compact_run_plan(jfd, box->lock_fd, &p, 0, 0, 0, chunk);
	if (ret < 0)
		*error_r = xasprintf("expunge in place %s: %s", box->mail_path, strerror(errno));
	free(chunk);
	free(p.runs);
	close(jfd);
	return ret;
}

bool
flat_compact_pending(const struct storage_box *box)
{
	unsigned char hdr[COMPACT_HDR_SIZE];
	char *path = compact_path(box);
	const char *name = compact_rel_name(box);
	int fd = fs_open_beneath(box->user_dir, path, O_RDONLY, 0);
	bool ret;

	free(path);
	if (fd < 0)
		return false;
	ret = fd_pread_full(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
	      memcmp(hdr, COMPACT_MAGIC, 8) == 0 && strlen(name) <= COMPACT_NAME_MAX &&
	      strncmp((const char *)hdr + 40, name, COMPACT_NAME_MAX) == 0;
	close(fd);
	return ret;
}

int
flat_compact_recover(struct storage_box *box, char **error_r)
{
	struct compact_plan p;
	char *chunk = NULL;
	size_t run = 0, clen;
	uint64_t done = 0, seq = 0;
	struct stat st;
	int jfd, mfd = -1, ret = 0, r;
	char *path = compact_path(box);

	jfd = fs_open_beneath(box->user_dir, path, O_RDWR, 0);
	free(path);
	if (jfd < 0)
		return 0;
	r = compact_read_plan(jfd, &p);
	if (r <= 0 || strcmp(p.name, compact_rel_name(box)) != 0) {
		free(p.runs);
		close(jfd);
		return 0;       /* none, or another mailbox's (finished at its open) */
	}
	mfd = fs_open_beneath(box->user_dir, box->mail_path, O_RDWR, 0);
	if (mfd < 0 || fstat(mfd, &st) < 0 || (uint64_t)st.st_ino != p.ino) {
		/* the file was replaced since: the plan is not for it */
		log_warn("-", "%s: an in-place expunge journal for another file is dropped",
			 box->mail_path);
		ret = 0;
		goto clear;
	}
	chunk = xmalloc(COMPACT_CHUNK);
	if (compact_read_chunk(jfd, &seq, &run, &done, &clen, chunk) > 0 && run < p.count &&
	    done + clen <= p.runs[run].len) {
		/* the chunk being written when it stopped: again */
		if (fd_pwrite_full(mfd, chunk, clen, p.runs[run].to + done) < 0 ||
		    fdatasync(mfd) < 0) {
			ret = -1;
			goto out;
		}
		done += clen;
	}
	log_warn("-", "%s: finishing an expunge in place that was interrupted",
		 box->mail_path);
	ret = compact_run_plan(jfd, mfd, &p, seq, run, done, chunk);
	goto out;
clear:
	{
		char magic[8] = { 0 };

		if (fd_pwrite_full(jfd, magic, sizeof(magic), 0) < 0 || fdatasync(jfd) < 0)
			ret = -1;
	}
out:
	if (ret < 0)
		*error_r = xasprintf("finish expunge in place %s: %s", box->mail_path,
				     strerror(errno));
	free(chunk);
	free(p.runs);
	if (mfd >= 0)
		close(mfd);
	close(jfd);
	return ret;
}
