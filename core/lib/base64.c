/* base64.c: RFC 4648 base64. */
#include "base64.h"

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
base64_decode(const char *src, size_t len, struct buf *out)
{
	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		size_t pad = 0;

		for (size_t j = 0; j < 4; j++) {
			unsigned char c = (unsigned char)src[i + j];
			if (c == '=' && i + 4 == len && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				return -1;
			v[j] = base64_value((char)c);
			if (v[j] < 0)
				return -1;
		}
		uint32_t n = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		buf_append_c(out, (char)(n >> 16));
		if (pad < 2)
			buf_append_c(out, (char)(n >> 8 & 0xff));
		if (pad < 1)
			buf_append_c(out, (char)(n & 0xff));
	}
	return 0;
}

void
base64_encode(const void *src, size_t len, struct buf *out)
{
	const unsigned char *p = src;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t n = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			n |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			n |= p[i + 2];
		buf_append_c(out, b64chars[n >> 18 & 63]);
		buf_append_c(out, b64chars[n >> 12 & 63]);
		buf_append_c(out, i + 1 < len ? b64chars[n >> 6 & 63] : '=');
		buf_append_c(out, i + 2 < len ? b64chars[n & 63] : '=');
	}
}

/* Both decoders below keep the bits in an accumulator and emit a byte
   whenever 8 are there: partial groups at the end decode as far as they
   go, which is what mail readers do with damaged base64. */
void
base64_decode_lenient(const char *src, size_t len, struct buf *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;

	for (size_t i = 0; i < len; i++) {
		int v = base64_value(src[i]);

		if (src[i] == '=') {
			acc = 0;
			bits = 0;
			continue;
		}
		if (v < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_append_c(out, (char)((acc >> bits) & 0xff));
		}
	}
}

int
base64_decode_word(const char *src, size_t len, struct buf *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;

	for (size_t i = 0; i < len && src[i] != '='; i++) {
		int v = base64_value(src[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_append_c(out, (char)((acc >> bits) & 0xff));
		}
	}
	return 0;
}
