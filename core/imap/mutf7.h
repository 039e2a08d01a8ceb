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

#endif
