/* mutf7.h: IMAP mailbox names in modified UTF-7 (RFC 3501 section 5.1.3).

   Names are kept in UTF-8 on disk and in the core; the protocol shows them
   in modified UTF-7: printable ASCII stands for itself ("&" is "&-"), any
   other character is UTF-16 in modified base64 (",", not "/") between "&"
   and "-". */
#ifndef MUTF7_H
#define MUTF7_H

#include "lib.h"

/* Decodes a name a client sent. Returns 0 with the UTF-8 name in *utf8_r
   (malloc'ed), or -1 if name is not modified UTF-7: an octet outside
   printable ASCII, an "&" not closed by "-", a character outside the
   modified base64 alphabet, a shift that encodes printable ASCII or
   nothing but "&-", non-zero padding bits, or bad UTF-16 (a lone
   surrogate). */
int mutf7_to_utf8(const char *name, char **utf8_r);
/* The same for a LIST pattern, where an "&" followed by neither "-" nor
   a modified base64 character cannot begin a shift and stands for
   itself, as the other ATOM-CHARs do (ImapTest's "atoms": LIST ""
   !#$&'+,-... is answered OK); "&Jjo" is still refused. */
int mutf7_pattern_to_utf8(const char *pattern, char **utf8_r);
/* Encodes a UTF-8 name for the client (malloc'ed). An octet that is not
   part of valid UTF-8 is taken as a Latin-1 character. */
char *mutf7_from_utf8(const char *utf8);

/* IMAP4rev2 (RFC 9051 5.1, after ENABLE IMAP4rev2) sends and takes names
   in UTF-8 itself. Returns 0 with a copy of name in *utf8_r, or -1 if it
   is not valid UTF-8 (an invalid or overlong sequence, a surrogate, a
   code point past U+10FFFF) or holds a control character (RFC 9051 5.1:
   names SHOULD NOT contain them; a CTL cannot be sent in a quoted
   string anyway). */
int mailbox_name_utf8_check(const char *name, char **utf8_r);
/* The name a client of the given kind sends (utf8: an IMAP4rev2
   session), decoded to UTF-8 (malloc'ed); -1 if invalid. pattern: a LIST
   pattern (see mutf7_pattern_to_utf8()). */
int imap_name_decode(const char *name, bool utf8, bool pattern, char **utf8_r);
/* True if the UTF-8 name is in Unicode Normalization Form C (an ASCII
   name always is). RFC 9051 5.1: a server MUST NOT create an 8-bit name
   that is not Net-Unicode (RFC 5198: NFC). Checked with libunistring. */
bool mailbox_name_is_nfc(const char *name);
/* The name as a client of the given kind reads it (malloc'ed). */
char *imap_name_encode(const char *name, bool utf8);

#endif
