/* basesubject.h: the base subject of RFC 5256 section 2.1, which SORT
   SUBJECT and THREAD compare: encoded words decoded, blanks folded, and
   "Re:", "Fwd:", "[list]" prefixes, "(fwd)" trailers and "[Fwd: ...]"
   wrappers taken off. */
#ifndef BASESUBJECT_H
#define BASESUBJECT_H

#include "lib.h"
#include "buf.h"

/* The base subject of the raw Subject field value (len octets, as in the
   header: encoded words and folding allowed) into out (reset first).
   *is_reply_r (may be NULL) says whether a "Re:"/"Fwd:" prefix, a
   "(fwd)" trailer or a "[Fwd: ...]" wrapper was taken off (RFC 5256
   section 2.1 step 2, 3 and 6). */
void base_subject(const char *subject, size_t len, struct buf *out, bool *is_reply_r);

#endif
