/* imap_view.h: a session's view of its selected mailbox, told to its IMAP
   client as untagged responses. The hub (mailbox.h) says what changed;
   this file says it in IMAP. */
#ifndef IMAP_VIEW_H
#define IMAP_VIEW_H

#include "lib.h"
#include "buf.h"
#include "mailbox.h"

/* Brings view in line with the shared state (mbox_view_update()) and
   writes to out the untagged responses that say so: "* n EXPUNGE", or
   one "* VANISHED uids" once view->qresync is set (only when
   allow_expunge: RFC 3501 7.4.1 forbids them during FETCH, STORE and
   SEARCH), "* n EXISTS", "* n RECENT", and "* n FETCH (FLAGS ...)" for
   flags others changed (with UID and MODSEQ once view->condstore is
   set). */
void imap_view_sync(struct mbox_view *view, struct buf *out, bool allow_expunge);

/* Writes "* FLAGS (...)" and "* OK [PERMANENTFLAGS (...)]" with the
   keywords of st (RFC 3501 7.1, 7.2.6); readonly: PERMANENTFLAGS is
   empty. */
void imap_view_write_flag_lists(const struct mbox_state *st, bool readonly, struct buf *out);

/* RFC 3501 7.2.6: a client learns of a keyword from FLAGS before it sees
   it on a message. If the mailbox has keywords beyond the *announced
   first ones (a STORE of this or another session made them), writes the
   flag lists again and raises *announced. Call before writing a
   message's flags. */
void imap_view_announce_keywords(const struct mbox_view *view, unsigned *announced,
				 struct buf *out);
/* Whether FLAGS of message uid show \Recent to the view's session: not
   for an IMAP4rev2 session (RFC 9051 appendix E, item 12). */
bool imap_view_shows_recent(const struct mbox_view *view, uint32_t uid);

#endif
