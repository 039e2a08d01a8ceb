/* compress.h: COMPRESS=DEFLATE (RFC 4978) as a connection layer.

   The layer inflates what it reads from the layer below and deflates
   what it is given to write, as raw DEFLATE (RFC 1951, no zlib header).
   It is symmetric, so the same layer serves the server side and a
   client (the tests). On a connection it sits on top of TLS when TLS is
   on: IMAP -> deflate -> TLS -> socket, which is the order RFC 4978
   section 3 asks for (compress, then encrypt).

   Output: every write is deflated without flushing; the layer's flush
   (called by the connection after each burst of writes) ends it with
   Z_SYNC_FLUSH, so the peer can decode every answer at once. A write
   below that would block keeps the compressed octets in the layer
   (out_pending) and they go first next time.

   Memory: the inflate state (about 7 KB, plus its 32 KB window from the
   first octet in) lives as long as the layer: the peer may refer back
   32 KB. The deflate state (about 70 KB with an 8 KB window) exists only
   while a burst is being written: once a burst is flushed and written
   below it is freed, and the next burst starts a new deflate stream
   (sound: after a sync flush the output is byte-aligned and complete,
   no block is final, and a new stream never refers to octets before
   it, so the peer's inflater just reads on). Input and output buffers
   are held only while they hold octets. An idle session with COMPRESS
   on thus keeps about 40 KB allocated here, of which about 26 KB were
   resident in bench/compress_bench.py (the window's pages are touched
   only as far as the peer's octets reach).

   Bounds: a read returns at most the size asked (the connection's read
   chunk) however much the octets inflate to; the rest stays compressed
   in the layer (in_pending) until the connection reads again, which it
   does only while its owner consumes input. A "zip bomb" thus costs no
   more memory than the same data sent uncompressed: the owner's line
   and literal limits bound it.

   Errors: a corrupt stream from the peer fails the read with EPROTO and
   compress_layer_error() (the layer's error op) says why ("corrupt
   input: invalid block type"); an out-of-memory of zlib fails it the
   same way. Failures of the layer below keep their errno. */
#ifndef COMPRESS_H
#define COMPRESS_H

#include "lib.h"
#include "conn_layer.h"

/* The vtable name of the layer ("deflate"), for connection_has_layer(). */
#define COMPRESS_LAYER_NAME "deflate"

/* A new layer, to push on a connection (or on another layer). */
struct conn_layer *compress_layer_new(void);
/* The same with another window (9..15: 2^n octets) and memLevel (1..9)
   for our deflate (compress.c says why the defaults are 13 and 6); for
   tests and comparisons. */
struct conn_layer *compress_layer_new_with(int window_bits, int mem_level);
/* True for a layer made here. */
bool compress_layer_is_deflate(const struct conn_layer *layer);
/* Octets the layer holds allocated now: its struct, buffers and zlib's
   states (for tests and benchmarks). */
size_t compress_layer_memory(const struct conn_layer *layer);
/* Octets that went through: decoded in, encoded in (as received),
   given to write, written below (compressed). Any may be NULL. */
void compress_layer_stats(const struct conn_layer *layer, uint64_t *in_plain_r, uint64_t *in_raw_r,
			  uint64_t *out_plain_r, uint64_t *out_raw_r);
/* Why the last read or write failed with EPROTO, or NULL. */
const char *compress_layer_error(const struct conn_layer *layer);

#endif
