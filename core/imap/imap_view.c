/* imap_view.c: a view's changes as IMAP untagged responses (see
   imap_view.h). */
#include "imap_view.h"
#include "imap_util.h"
#include "seqset.h"

static void
imap_view_write_expunges(const struct mbox_view *view, const struct mbox_view_changes *ch,
			 struct buf *out)
{
	if (ch->expunged_count == 0)
		return;
	if (view->qresync || view->uidonly) {
		/* RFC 7162 3.2.10, RFC 9586 3: one VANISHED with the UIDs
		   instead. */
		struct seqset set = { 0 };

		for (size_t i = ch->expunged_count; i > 0; i--)
			seqset_add_range(&set, ch->expunged[i - 1].uid, ch->expunged[i - 1].uid);
		buf_append_str(out, "* VANISHED ");
		seqset_write(&set, out);
		buf_append_str(out, "\r\n");
		seqset_free(&set);
		return;
	}
	/* Highest first, as the hub gives them: each number is right when
	   it is read. */
	for (size_t i = 0; i < ch->expunged_count; i++)
		buf_printf(out, "* %u EXPUNGE\r\n", ch->expunged[i].seq);
}

/* Flag changes of the messages up to seq last_old (those the client knew
   before this sync): a message new in this sync is told by "* n EXISTS"
   alone, and the client fetches its flags (as Dovecot does: an
   unsolicited FETCH of a message the client has not seen yet costs
   state-tracking clients a surprise). */
static void
imap_view_write_flags(const struct mbox_view *view, const struct mbox_view_changes *ch,
		      size_t last_old, struct buf *out)
{
	const struct mbox_state *st = mailbox_state(view->mbox);

	for (size_t i = 0; i < ch->flags_count; i++) {
		const struct mail_rec *rec = &st->mails[ch->flags[i].idx];

		if (ch->flags[i].seq > last_old)
			continue;

		/* RFC 9586 3: by UID alone */
		if (view->uidonly)
			buf_printf(out, "* %u UIDFETCH (", rec->uid);
		else
			buf_printf(out, "* %u FETCH (", ch->flags[i].seq);
		/* RFC 9051 7.5.2: every unsolicited FETCH of IMAP4rev2
		   carries the UID. */
		if ((view->condstore || view->rev2) && !view->uidonly)
			buf_printf(out, "UID %u ", rec->uid);
		buf_append_str(out, "FLAGS ");
		imap_write_flags(out, rec->flags, rec->keywords,
				 imap_view_shows_recent(view, rec->uid), st);
		if (view->condstore)
			buf_printf(out, " MODSEQ (%llu)", (unsigned long long)rec->modseq);
		buf_append_str(out, ")\r\n");
	}
}

void
imap_view_write_flag_lists(const struct mbox_state *st, bool readonly, struct buf *out)
{
	buf_append_str(out, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (unsigned i = 0; i < st->keyword_count; i++) {
		buf_append_c(out, ' ');
		buf_append_str(out, st->keywords[i]);
	}
	buf_append_str(out, ")\r\n");
	if (readonly) {
		buf_append_str(out, "* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n");
		return;
	}
	buf_append_str(out, "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (unsigned i = 0; i < st->keyword_count; i++) {
		buf_append_c(out, ' ');
		buf_append_str(out, st->keywords[i]);
	}
	/* \* only while a new keyword can still be made (RFC 3501 7.1). */
	if (st->keyword_count < MBOX_MAX_KEYWORDS)
		buf_append_str(out, " \\*");
	buf_append_str(out, ")] Flags permitted.\r\n");
}

void
imap_view_announce_keywords(const struct mbox_view *view, unsigned *announced,
			    struct buf *out)
{
	const struct mbox_state *st = mailbox_state(view->mbox);

	if (st->keyword_count <= *announced)
		return;
	imap_view_write_flag_lists(st, view->readonly, out);
	*announced = st->keyword_count;
}

bool
imap_view_shows_recent(const struct mbox_view *view, uint32_t uid)
{
	return !view->rev2 && mbox_view_is_recent(view, uid);
}

void
imap_view_sync(struct mbox_view *view, struct buf *out, bool allow_expunge)
{
	struct mbox_view_changes ch;
	size_t before = view->count, last_old;

	mbox_view_update(view, allow_expunge, &ch);
	/* New messages come after every message the client knew of. */
	last_old = before > ch.expunged_count ? before - ch.expunged_count : 0;
	imap_view_write_expunges(view, &ch, out);
	if (ch.exists > 0)
		buf_printf(out, "* %zu EXISTS\r\n", ch.exists);
	if (ch.recent_changed && !view->rev2)
		buf_printf(out, "* %zu RECENT\r\n", ch.recent);
	imap_view_write_flags(view, &ch, last_old, out);
	mbox_view_changes_free(&ch);
}
