/* compress.c: COMPRESS=DEFLATE as a connection layer (see compress.h).

   Reading: octets are read from below into a buffer on the stack and
   inflated straight into the caller's buffer; only what did not fit
   (the caller's buffer filled first) is copied into a heap buffer
   (raw), which the next reads inflate before reading below again. When
   inflate filled the caller's buffer it may still hold output of its
   own (the rest of a match): in_more says so, and the next read asks
   inflate first. Both make in_pending true, so the connection reads
   again without waiting for the socket.

   Writing: write() deflates into the output buffer (obuf) until its
   input is taken or obuf is full; obuf is written below first on the
   next write or flush, and a write finds obuf not yet written below
   answers EAGAIN (nothing taken), as the layer contract asks. flush()
   ends the burst with Z_SYNC_FLUSH, writes obuf below and, once all is
   out, frees the deflate state and obuf (compress.h says why that is
   sound).

   Parameters of our deflate: the peer's inflater accepts any window
   (RFC 4978 section 4: windowBits -8 to -15 are all raw DEFLATE), so
   ours is chosen for memory: an 8 KB window and memLevel 6 take about
   64 KB while a burst is written, against 256 KB for zlib's defaults
   (Dovecot's), and cost about a tenth more output on text (RFC texts in
   16 KB bursts: 30.3% of the input against 26.8%). Our inflater must
   take the peer's window, up to 32 KB (windowBits -15). */
#include "compress.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#define COMPRESS_WINDOW_BITS 13
#define COMPRESS_MEM_LEVEL 6
#define COMPRESS_LEVEL Z_DEFAULT_COMPRESSION
/* Read from below at once, and the output buffer. */
#define COMPRESS_CHUNK 16384
/* Reads below per read call that give no output (empty blocks):
   after these the call answers EAGAIN, the socket still readable. */
#define COMPRESS_MAX_EMPTY_READS 8

struct compress_layer {
	struct conn_layer layer;
	z_stream zin, zout;
	int window_bits, mem_level; /* of our deflate */
	bool zout_live;             /* zout is initialized (a burst is on) */
	/* Received octets not yet inflated: raw[raw_pos..raw_len). */
	unsigned char *raw;
	size_t raw_pos, raw_len;
	bool in_more; /* inflate may hold output */
	bool in_end;  /* the peer ended its stream */
	/* Compressed output not yet written below: obuf[out_pos..out_len). */
	unsigned char *obuf;
	size_t out_pos, out_len;
	bool dirty; /* deflate took input not yet sync-flushed */
	/* Failed: every later call fails with fail_errno. */
	bool failed;
	int fail_errno;
	char error[128];
	size_t zmem; /* octets zlib holds allocated */
	uint64_t in_plain, in_raw, out_plain, out_raw;
};

static const struct conn_layer_vfuncs compress_vfuncs;

/* zlib's allocations, counted (compress_layer_memory). A failure is
   zlib's Z_MEM_ERROR, which fails the layer, not the server. */
struct zalloc_head {
	size_t size;
	max_align_t align;
};

static voidpf
compress_zalloc(voidpf opaque, uInt items, uInt size)
{
	struct compress_layer *z = opaque;
	size_t n;
	unsigned char *p;

	if (size != 0 && items > (SIZE_MAX - sizeof(struct zalloc_head)) / size)
		return Z_NULL;
	n = (size_t)items * size;
	p = malloc(offsetof(struct zalloc_head, align) + n);
	if (p == NULL)
		return Z_NULL;
	((struct zalloc_head *)(void *)p)->size = n;
	z->zmem += n;
	return p + offsetof(struct zalloc_head, align);
}

static void
compress_zfree(voidpf opaque, voidpf ptr)
{
	struct compress_layer *z = opaque;
	unsigned char *p = (unsigned char *)ptr - offsetof(struct zalloc_head, align);

	z->zmem -= ((struct zalloc_head *)(void *)p)->size;
	free(p);
}

static void
compress_fail(struct compress_layer *z, int err, const char *what, const char *msg)
{
	if (!z->failed) {
		z->failed = true;
		z->fail_errno = err;
		if (what != NULL)
			snprintf(z->error, sizeof(z->error), "%s%s%s", what,
				 msg != NULL ? ": " : "", msg != NULL ? msg : "");
	}
	errno = z->fail_errno;
}

/* Inflates src into data. Returns the octets produced (0: it needs
   more input), or -1 with errno EPROTO. *used_r: octets of src used. */
static ssize_t
compress_inflate(struct compress_layer *z, const unsigned char *src, size_t len, void *data,
		 size_t size, size_t *used_r)
{
	size_t produced;
	int ret;

	z->zin.next_in = (Bytef *)(uintptr_t)src;
	z->zin.avail_in = (uInt)len;
	z->zin.next_out = data;
	z->zin.avail_out = size > UINT_MAX ? UINT_MAX : (uInt)size;
	ret = inflate(&z->zin, Z_SYNC_FLUSH);
	*used_r = len - z->zin.avail_in;
	produced = (size > UINT_MAX ? UINT_MAX : size) - z->zin.avail_out;
	z->in_raw += *used_r;
	z->in_plain += produced;
	/* A full buffer: inflate may have more to give without input. */
	z->in_more = produced > 0 && z->zin.avail_out == 0;
	switch (ret) {
	case Z_OK:
	case Z_BUF_ERROR: /* no progress: more input needed */
		break;
	case Z_STREAM_END:
		/* The peer ended its stream (a final block): nothing after
		   it is read, the connection ends as if closed. */
		z->in_end = true;
		z->in_more = false;
		break;
	case Z_MEM_ERROR:
		compress_fail(z, EPROTO, "out of memory", NULL);
		return -1;
	default:
		compress_fail(z, EPROTO, "corrupt input",
			      z->zin.msg != NULL ? z->zin.msg : "bad data");
		return -1;
	}
	return (ssize_t)produced;
}

/* Inflates what raw holds (and what inflate holds) into data. */
static ssize_t
compress_inflate_held(struct compress_layer *z, void *data, size_t size)
{
	size_t used;
	ssize_t ret = compress_inflate(z, z->raw != NULL ? z->raw + z->raw_pos : NULL,
				       z->raw_len - z->raw_pos, data, size, &used);

	z->raw_pos += used;
	if (z->raw_pos == z->raw_len) {
		free(z->raw);
		z->raw = NULL;
		z->raw_pos = z->raw_len = 0;
	}
	return ret;
}

/* Keeps a copy of src (octets read but not inflated yet); raw is empty. */
static void
compress_hold_input(struct compress_layer *z, const void *src, size_t len)
{
	if (len == 0)
		return;
	z->raw = xmalloc(len);
	memcpy(z->raw, src, len);
	z->raw_pos = 0;
	z->raw_len = len;
}

static ssize_t
compress_read(struct conn_layer *layer, void *data, size_t size)
{
	struct compress_layer *z = (struct compress_layer *)layer;
	unsigned char chunk[COMPRESS_CHUNK];

	if (z->failed) {
		errno = z->fail_errno;
		return -1;
	}
	if (size == 0)
		return 0;
	for (unsigned empty = 0;; empty++) {
		ssize_t got, ret;
		size_t used;

		if (z->in_end)
			return 0;
		if (z->raw_len > 0 || z->in_more) {
			ret = compress_inflate_held(z, data, size);
			if (ret != 0)
				return ret;
			if (z->in_end)
				return 0;
			if (z->raw_len > 0) {
				/* Room for output and input left, yet nothing
				   came: zlib never does that. */
				compress_fail(z, EPROTO, "inflate made no progress", NULL);
				return -1;
			}
		}
		if (empty == COMPRESS_MAX_EMPTY_READS) {
			/* Input that decodes to nothing (empty blocks): let
			   the others have their turn, the socket still has it. */
			errno = EAGAIN;
			return -1;
		}
		got = conn_layer_read(layer->below, chunk, sizeof(chunk));
		if (got <= 0) {
			/* End of stream, EAGAIN, or the failure below. */
			explicit_bzero(chunk, sizeof(chunk));
			return got;
		}
		ret = compress_inflate(z, chunk, (size_t)got, data, size, &used);
		if (ret >= 0 && used < (size_t)got)
			compress_hold_input(z, chunk + used, (size_t)got - used);
		explicit_bzero(chunk, (size_t)got);
		if (ret != 0)
			return ret;
	}
}

static void
compress_take_input(struct conn_layer *layer, const void *data, size_t size)
{
	struct compress_layer *z = (struct compress_layer *)layer;
	unsigned char *raw;

	if (size == 0)
		return;
	/* Before anything held (there is nothing yet, in practice). */
	raw = xmalloc(z->raw_len - z->raw_pos + size);
	memcpy(raw, data, size);
	if (z->raw_len > z->raw_pos)
		memcpy(raw + size, z->raw + z->raw_pos, z->raw_len - z->raw_pos);
	z->raw_len = z->raw_len - z->raw_pos + size;
	z->raw_pos = 0;
	free(z->raw);
	z->raw = raw;
}

/* Writes obuf below. 0 when it is empty; -1 with errno EAGAIN when the
   layer below would block, or with its failure. */
static int
compress_push(struct compress_layer *z)
{
	while (z->out_pos < z->out_len) {
		ssize_t ret = conn_layer_write(z->layer.below, z->obuf + z->out_pos,
					       z->out_len - z->out_pos);
		if (ret < 0 && errno == EAGAIN)
			return -1;
		if (ret <= 0) {
			compress_fail(z, ret < 0 ? errno : EPIPE, NULL, NULL);
			return -1;
		}
		z->out_pos += (size_t)ret;
		z->out_raw += (uint64_t)ret;
	}
	z->out_pos = z->out_len = 0;
	return 0;
}

/* A new deflate stream for a burst, and its output buffer. */
static int
compress_burst_start(struct compress_layer *z)
{
	if (z->zout_live)
		return 0;
	memset(&z->zout, 0, sizeof(z->zout));
	z->zout.zalloc = compress_zalloc;
	z->zout.zfree = compress_zfree;
	z->zout.opaque = z;
	if (deflateInit2(&z->zout, COMPRESS_LEVEL, Z_DEFLATED, -z->window_bits, z->mem_level,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		compress_fail(z, EPROTO, "out of memory", NULL);
		return -1;
	}
	z->zout_live = true;
	if (z->obuf == NULL)
		z->obuf = xmalloc(COMPRESS_CHUNK);
	return 0;
}

/* The burst is flushed and written below: its memory goes back. */
static void
compress_burst_end(struct compress_layer *z)
{
	if (z->zout_live) {
		/* Z_DATA_ERROR only says the stream had no final block. */
		(void)deflateEnd(&z->zout);
		z->zout_live = false;
	}
	free(z->obuf);
	z->obuf = NULL;
}

static ssize_t
compress_write(struct conn_layer *layer, const void *data, size_t size)
{
	struct compress_layer *z = (struct compress_layer *)layer;
	size_t taken;
	int ret;

	if (z->failed) {
		errno = z->fail_errno;
		return -1;
	}
	if (compress_push(z) < 0 || compress_burst_start(z) < 0)
		return -1;
	/* deflate first gives out what it holds from before (up to its
	   pending buffer, which may exceed obuf): it may fill obuf without
	   taking any input. Then obuf goes below and deflate is asked again,
	   until it takes some or the layer below would block. */
	for (;;) {
		z->zout.next_in = (Bytef *)(uintptr_t)data;
		z->zout.avail_in = size > UINT_MAX ? UINT_MAX : (uInt)size;
		z->zout.next_out = z->obuf;
		z->zout.avail_out = COMPRESS_CHUNK;
		ret = deflate(&z->zout, Z_NO_FLUSH);
		taken = (size > UINT_MAX ? UINT_MAX : size) - z->zout.avail_in;
		z->out_len = COMPRESS_CHUNK - z->zout.avail_out;
		if (ret != Z_OK && ret != Z_BUF_ERROR) {
			compress_fail(z, EPROTO, "deflate failed", z->zout.msg);
			return -1;
		}
		if (taken > 0)
			break;
		if (z->out_len == 0) {
			/* No input taken, no output made: cannot happen with
			   room in obuf; do not spin. */
			compress_fail(z, EPROTO, "deflate made no progress", NULL);
			return -1;
		}
		z->dirty = true;
		if (compress_push(z) < 0)
			return -1;
	}
	z->dirty = true;
	z->out_plain += taken;
	return (ssize_t)taken;
}

static int
compress_flush(struct conn_layer *layer)
{
	struct compress_layer *z = (struct compress_layer *)layer;

	if (z->failed) {
		errno = z->fail_errno;
		return -1;
	}
	for (;;) {
		int ret;

		if (compress_push(z) < 0)
			return -1;
		if (!z->dirty)
			break;
		z->zout.next_in = Z_NULL;
		z->zout.avail_in = 0;
		z->zout.next_out = z->obuf;
		z->zout.avail_out = COMPRESS_CHUNK;
		ret = deflate(&z->zout, Z_SYNC_FLUSH);
		if (ret != Z_OK && ret != Z_BUF_ERROR) {
			compress_fail(z, EPROTO, "deflate failed", z->zout.msg);
			return -1;
		}
		z->out_len = COMPRESS_CHUNK - z->zout.avail_out;
		/* Room left: the flush is complete (zlib's rule). */
		if (z->zout.avail_out > 0)
			z->dirty = false;
	}
	compress_burst_end(z);
	return 0;
}

static size_t
compress_out_pending(const struct conn_layer *layer)
{
	const struct compress_layer *z = (const struct compress_layer *)layer;

	if (z->failed)
		return 0;
	return z->out_len - z->out_pos + (z->dirty ? 1 : 0);
}

static bool
compress_in_pending(const struct conn_layer *layer)
{
	const struct compress_layer *z = (const struct compress_layer *)layer;

	/* At the end of the peer's stream: the next read says so. */
	return !z->failed && (z->in_end || z->raw_len > 0 || z->in_more);
}

const char *
compress_layer_error(const struct conn_layer *layer)
{
	const struct compress_layer *z = (const struct compress_layer *)layer;

	if (!compress_layer_is_deflate(layer) || z->error[0] == '\0')
		return NULL;
	return z->error;
}

static void
compress_free(struct conn_layer *layer)
{
	struct compress_layer *z = (struct compress_layer *)layer;

	compress_burst_end(z);
	(void)inflateEnd(&z->zin);
	if (z->raw != NULL)
		explicit_bzero(z->raw, z->raw_len);
	free(z->raw);
	free(z);
}

static const struct conn_layer_vfuncs compress_vfuncs = {
	.name = COMPRESS_LAYER_NAME,
	.read = compress_read,
	.write = compress_write,
	.flush = compress_flush,
	.out_pending = compress_out_pending,
	.in_pending = compress_in_pending,
	.error = compress_layer_error,
	.take_input = compress_take_input,
	.free = compress_free,
};

struct conn_layer *
compress_layer_new(void)
{
	return compress_layer_new_with(COMPRESS_WINDOW_BITS, COMPRESS_MEM_LEVEL);
}

struct conn_layer *
compress_layer_new_with(int window_bits, int mem_level)
{
	struct compress_layer *z = xcalloc(1, sizeof(*z));

	if (window_bits < 9 || window_bits > 15 || mem_level < 1 || mem_level > 9)
		fatal("compress_layer_new_with: window_bits %d, mem_level %d out of range",
		      window_bits, mem_level);
	z->window_bits = window_bits;
	z->mem_level = mem_level;
	z->layer.v = &compress_vfuncs;
	z->zin.zalloc = compress_zalloc;
	z->zin.zfree = compress_zfree;
	z->zin.opaque = z;
	/* -15: raw DEFLATE with any window the peer chose. */
	if (inflateInit2(&z->zin, -15) != Z_OK)
		fatal("COMPRESS: inflateInit2 failed: out of memory");
	return &z->layer;
}

bool
compress_layer_is_deflate(const struct conn_layer *layer)
{
	return layer != NULL && layer->v == &compress_vfuncs;
}

size_t
compress_layer_memory(const struct conn_layer *layer)
{
	const struct compress_layer *z = (const struct compress_layer *)layer;

	return sizeof(*z) + z->zmem + z->raw_len + (z->obuf != NULL ? COMPRESS_CHUNK : 0);
}

void
compress_layer_stats(const struct conn_layer *layer, uint64_t *in_plain_r, uint64_t *in_raw_r,
		     uint64_t *out_plain_r, uint64_t *out_raw_r)
{
	const struct compress_layer *z = (const struct compress_layer *)layer;

	if (in_plain_r != NULL)
		*in_plain_r = z->in_plain;
	if (in_raw_r != NULL)
		*in_raw_r = z->in_raw;
	if (out_plain_r != NULL)
		*out_plain_r = z->out_plain;
	if (out_raw_r != NULL)
		*out_raw_r = z->out_raw;
}
