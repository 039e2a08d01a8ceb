/* objectid.c: the object identifiers of OBJECTID (RFC 8474), derived
   from what every backend keeps already; see storage.h for why. */
#include "storage.h"

#include <stdio.h>
#include <string.h>

#include "sha256.h"

/* prefix and the first 16 octets of digest in hex (RFC 8474 3: an
   objectid is 1 to 255 of ALPHA, DIGIT, '-', '_'; starting with a letter
   keeps it from looking like a number). */
static void
objectid_format(char prefix, const uint8_t digest[SHA256_DIGEST_SIZE],
		char id_r[STORAGE_OBJECTID_SIZE])
{
	static const char hex[] = "0123456789abcdef";

	id_r[0] = prefix;
	for (size_t i = 0; i < 16; i++) {
		id_r[1 + 2 * i] = hex[digest[i] >> 4];
		id_r[2 + 2 * i] = hex[digest[i] & 0xf];
	}
	id_r[STORAGE_OBJECTID_SIZE - 1] = '\0';
}

void
storage_mailbox_id(const char *user, const char *name, uint32_t uidvalidity,
		   char id_r[STORAGE_OBJECTID_SIZE])
{
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_SIZE];
	char num[16];
	int n = snprintf(num, sizeof(num), "%u%s", uidvalidity,
			 strcmp(name, "INBOX") == 0 ? "i" : "");

	sha256_init(&ctx);
	sha256_update(&ctx, "mailboxid", strlen("mailboxid") + 1);
	sha256_update(&ctx, user, strlen(user) + 1);
	sha256_update(&ctx, num, (size_t)n);
	sha256_final(&ctx, digest);
	objectid_format('F', digest, id_r);
}

void
storage_email_id(const char *data, size_t len, char id_r[STORAGE_OBJECTID_SIZE])
{
	uint8_t digest[SHA256_DIGEST_SIZE];

	sha256(data, len, digest);
	objectid_format('M', digest, id_r);
}
