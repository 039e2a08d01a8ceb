/* sha256.h: SHA-256 (FIPS 180-4), for content digests (the EMAILID of
   OBJECTID, core/hub/storage.h). Incremental, so that a digest can be
   taken over data read in pieces. */
#ifndef SHA256_H
#define SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32

struct sha256_ctx {
	uint32_t h[8];
	uint64_t total;            /* octets hashed so far */
	uint8_t block[64];
	size_t fill;               /* octets waiting in block */
};

void sha256_init(struct sha256_ctx *ctx);
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest to out; ctx must be initialised again for reuse. */
void sha256_final(struct sha256_ctx *ctx, uint8_t out[SHA256_DIGEST_SIZE]);
/* The digest of data in one call. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_SIZE]);

#endif
