/* mime.h: one RFC 5322 / MIME parser for the server (FETCH BODYSTRUCTURE,
   BODY[section], SEARCH text) and the mail client (text, attachments:
   client/mail_text.h).

   mime_parse() turns a message (CRLF or LF line ends) into a tree of
   parts. The tree holds offsets into the message and its own copies of
   the header values, never a pointer into the message, so it may outlive
   the buffer it was parsed from (the parse cache relies on that); the
   functions that need the bytes take the message again.

   Malformed MIME gives a best-effort tree, never a crash: a multipart
   without a boundary (or whose boundary never occurs) gets one empty
   text/plain part, a missing closing boundary ends the last part at the
   end of its parent, an unparsable Content-Type is text/plain (RFC 2045
   section 5.2). Nesting deeper than MIME_MAX_DEPTH and parts beyond
   MIME_MAX_PARTS are not split: such a part is kept as one opaque
   application/octet-stream body. Nothing reads past the given length. */
#ifndef MIME_H
#define MIME_H

#include "lib.h"
#include "buf.h"
#include "message.h"

#define MIME_MAX_DEPTH 32
#define MIME_MAX_PARTS 1000

/* --- the part tree --------------------------------------------------- */

/* A Content-Type or Content-Disposition parameter, after RFC 2231
   continuations were merged (name*0, name*1 ... in order and without a
   gap; otherwise each is kept as it was written). */
struct mime_param {
	char *name;                /* as written: "filename", or "filename*" if extended */
	char *value;               /* as written (merged), quotes removed: IMAP shows this */
	char *key;                 /* lower case, without the RFC 2231 '*': "filename" */
	char *decoded;             /* UTF-8: RFC 2231 %XX and charset decoded, or RFC 2047
				      encoded words decoded (a common non-standard use) */
};

enum mime_encoding {
	MIME_ENC_7BIT,             /* also when absent */
	MIME_ENC_8BIT,
	MIME_ENC_BINARY,
	MIME_ENC_QP,
	MIME_ENC_BASE64,
	MIME_ENC_OTHER,            /* an unknown token: copied as is */
};

struct mime_part {
	struct mime_part *parent;
	/* Multipart: its parts. message/rfc822: exactly one child, the root
	   part of the enclosed message. Otherwise NULL. */
	struct mime_part *children;
	struct mime_part *next;
	size_t child_count;

	/* Offsets into the message. The header includes the blank line that
	   ends it; a multipart body part ends before the line end that
	   precedes the next boundary line (RFC 2046 section 5.1.1). */
	size_t hdr_off, hdr_len;
	size_t body_off, body_len;
	size_t lines;              /* LF count of the body */
	unsigned depth;            /* 0 for the message itself */

	/* Content-Type, type and subtype as written (compare case-
	   insensitively); "text"/"plain" when absent or invalid, and
	   "message"/"rfc822" in a multipart/digest. */
	char *type, *subtype;
	struct mime_param *params;
	size_t param_count;
	bool multipart;            /* split into children */
	bool message;              /* message/rfc822 with its enclosed message parsed */
	bool opaque;               /* beyond the limits: not split, shown as
				      application/octet-stream */
	bool boundary_found;       /* multipart: a delimiter line was found */

	enum mime_encoding encoding;
	char *encoding_str;        /* Content-Transfer-Encoding token, NULL if absent */
	char *id, *description, *md5, *location;   /* values, NULL if absent */
	char *disposition;         /* the disposition token ("" if junk), NULL if absent */
	struct mime_param *disp_params;
	size_t disp_param_count;
	char **languages;          /* Content-Language tokens */
	size_t language_count;
	bool has_language;         /* the field exists (possibly empty) */
};

struct mime_message {
	struct mime_part *root;    /* the message: header = the message header */
	size_t part_count;
	size_t len;                /* length of the message it was parsed from */
};

/* Parses msg[0..len). Never fails. */
struct mime_message *mime_parse(const char *msg, size_t len);
void mime_message_free(struct mime_message **msg);

/* Case-insensitive compare of a part's type and subtype (subtype NULL:
   any). */
bool mime_part_is(const struct mime_part *part, const char *type, const char *subtype);
/* The decoded (UTF-8) value of the parameter key (lower case, without
   '*'), or NULL. */
const char *mime_param_get(const struct mime_param *params, size_t count, const char *key);

/* --- decoding -------------------------------------------------------- */

enum mime_encoding mime_encoding_parse(const char *token, size_t len);

/* Appends data decoded from the transfer encoding: quoted-printable or
   base64 to bytes (lenient: junk skipped, a truncated end tolerated);
   other encodings copied. */
void mime_decode(enum mime_encoding enc, const char *data, size_t len, struct buf *out);

/* A message APPENDed with a literal8 may hold parts in the "binary"
   transfer encoding whose bytes (NUL, a lone CR or LF) a store that keeps
   lines cannot give back as they came. Writes into out (reset first) the
   message with each such leaf part turned into base64 (its
   Content-Transfer-Encoding field rewritten) and returns true; false if
   there is none (out untouched). FETCH BINARY then decodes the part to the
   very octets sent (RFC 3516 4.3 allows the server to change the
   encoding). */
bool mime_binary_to_base64(const char *msg, size_t len, struct buf *out);

/* Appends the body of part decoded from its transfer encoding and, for
   text parts, converted to UTF-8 from its charset (raw bytes kept when
   the charset is unknown). */
void mime_part_decoded(const struct mime_part *part, const char *msg, size_t len,
		       struct buf *out);

/* Appends the searchable text of the body: for SEARCH BODY/TEXT. Text
   parts decoded from quoted-printable or base64 when the headers say so;
   otherwise the raw body. */
void mime_body_text(const char *msg, size_t len, struct buf *out);

/* --- parse cache ----------------------------------------------------- */

/* Keeps the trees of the last max_entries messages parsed, keyed by an
   opaque (owner, uid) pair, e.g. the shared mailbox and the UID. A UID
   names one message forever within a mailbox, so an entry stays right
   as long as the owner lives: call mime_cache_forget(owner) before the
   owner is freed (its address may be reused). */
struct mime_cache;

struct mime_cache *mime_cache_new(size_t max_entries);
void mime_cache_free(struct mime_cache **cache);
/* The cached tree of (owner, uid) if it was parsed from a message of
   len octets, else NULL. Owned by the cache; valid until the next
   mime_cache_put/parse/forget/free on it. */
const struct mime_message *mime_cache_get(struct mime_cache *cache, const void *owner,
					  uint32_t uid, size_t len);
/* Gives msg to the cache (replacing an entry of the same key; the least
   recently used entry is freed when full). */
void mime_cache_put(struct mime_cache *cache, const void *owner, uint32_t uid,
		    struct mime_message *msg);
/* Get, or parse msg[0..len) and put. Same lifetime as mime_cache_get. */
const struct mime_message *mime_cache_parse(struct mime_cache *cache, const void *owner,
					    uint32_t uid, const char *msg, size_t len);
/* Drops every entry of owner. */
void mime_cache_forget(struct mime_cache *cache, const void *owner);
/* Parses done by mime_cache_parse since the cache was made (for tests
   and statistics). */
uint64_t mime_cache_parse_count(const struct mime_cache *cache);

#endif
