"""A large mailbox gives the same answers after a restart as before it
(issue 12: the index of a large mailbox is opened without reading all of
it: flat maps its side index, Maildir opens from imapserver-index when
the folders did not change). 20,000 messages, flags and keywords set over
IMAP, then SELECT and FETCH 1:* (UID FLAGS MODSEQ RFC822.SIZE
INTERNALDATE) compared before the restart, after one (Maildir: a full
open, which writes the index) and after a second one (the index opened)."""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server import ServerTestCase, SLOW, lab_message  # noqa: E402
import test_maildir  # noqa: E402

MESSAGES = 20000


def big_mailbox():
    return "".join(
        lab_message([("From", f"user{i % 13}@example.org"),
                     ("To", "alice@localhost"),
                     ("Subject", f"message {i}"),
                     ("Date", "Mon, 7 Feb 2022 10:%02d:00 +0000" % (i % 60))],
                    [f"line one of {i}", "line two"])
        for i in range(MESSAGES))


class TestRestartSameAnswers(ServerTestCase):
    MAILBOXES = {"alice": big_mailbox()}

    def session_view(self):
        """What a client sees of INBOX: the SELECT answer (but \\Recent,
        which belongs to a session) and every message's UID, flags,
        modseq, size and date."""
        c = self.raw_login()
        resp, tagged = c.command("ENABLE CONDSTORE")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("SELECT INBOX (CONDSTORE)", timeout=60 * SLOW)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        select = sorted(r for r in resp if not re.match(rb"\* \d+ RECENT", r))
        resp, tagged = c.command("FETCH 1:* (UID FLAGS MODSEQ RFC822.SIZE INTERNALDATE)",
                                 timeout=120 * SLOW)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        fetch = [re.sub(rb" ?\\Recent", b"", r) for r in resp]
        self.assertEqual(len(fetch), MESSAGES)
        resp, tagged = c.command("FETCH %d BODY.PEEK[HEADER.FIELDS (SUBJECT)]" % MESSAGES)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"Subject: message %d" % (MESSAGES - 1), b"".join(resp))
        c.command("LOGOUT")
        c.close()
        return select, fetch

    def change_some(self):
        c = self.raw_login()
        # (20,000 messages: as long as session_view()'s SELECT may take)
        resp, tagged = c.command("SELECT INBOX", timeout=60 * SLOW)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        for cmd in ("STORE 2:300 +FLAGS (\\Seen)",
                    "UID STORE 5,77,1000:1010,19999 +FLAGS (\\Flagged $Work)",
                    "STORE 40:45 +FLAGS (\\Answered Later)",
                    "STORE 44 -FLAGS (Later)"):
            resp, tagged = c.command(cmd, timeout=60 * SLOW)
            self.assertTrue(tagged.startswith(b"OK"), (cmd, tagged))
        c.command("LOGOUT")
        c.close()

    def between_restarts(self):
        """Maildir: the folders age, as they do when nobody changes them."""

    def index_used(self):
        """Maildir: the second restart found an index to open."""

    def assert_same_view(self, before, after):
        """Equal, but that HIGHESTMODSEQ may have risen: Maildir reserves
        modseqs above the highest it wrote (the uidlist's C) and takes
        that ceiling at an open, so that no modseq a client saw is given
        again after a crash."""
        def split(view):
            select, fetch = view
            hms = [int(m.group(1)) for r in select
                   for m in [re.search(rb"HIGHESTMODSEQ (\d+)", r)] if m]
            return [r for r in select if b"HIGHESTMODSEQ" not in r], fetch, hms

        b_sel, b_fetch, b_hms = split(before)
        a_sel, a_fetch, a_hms = split(after)
        self.assertEqual(a_sel, b_sel)
        self.assertEqual(a_fetch, b_fetch)
        self.assertEqual(len(a_hms), 1)
        self.assertGreaterEqual(a_hms[0], b_hms[0])

    def test_restart_gives_the_same_answers(self):
        self.change_some()
        before = self.session_view()
        self.server.stop()
        self.between_restarts()
        self.server.start()
        self.port = self.server.port
        first = self.session_view()
        self.assert_same_view(before, first)
        self.server.stop()
        self.index_used()
        self.server.start()
        self.port = self.server.port
        # no change in between: exactly the same, HIGHESTMODSEQ too
        self.assertEqual(self.session_view(), first)
        # still a working mailbox: a change after the restart sticks
        c = self.raw_login(mailbox="INBOX")
        resp, tagged = c.command("STORE 7 +FLAGS (\\Deleted)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c.command("LOGOUT")
        c.close()
        self.server.stop()
        self.between_restarts()
        self.server.start()
        self.port = self.server.port
        c = self.raw_login()
        resp, tagged = c.command("SELECT INBOX")
        resp, tagged = c.command("FETCH 7 (FLAGS)")
        self.assertIn(b"\\Deleted", b"".join(resp))


class TestMaildirRestartSameAnswers(test_maildir.MaildirMixin, TestRestartSameAnswers):
    def between_restarts(self):
        base = self.server.maildir("alice")
        past = time.time() - 60
        for sub in ("cur", "new"):
            os.utime(os.path.join(base, sub), (past, past))

    def index_used(self):
        self.assertTrue(os.path.exists(os.path.join(self.server.maildir("alice"),
                                                    "imapserver-index")))


RECENT_MESSAGES = 3000


class TestRecentAcrossRestarts(ServerTestCase):
    """\\Recent goes to exactly one session (RFC 3501 2.3.2), also across
    restarts: the session that took the messages raises the first recent
    UID, which reaches the index at once (flat: a mapped index of more
    than storage_map_min_count messages; Maildir: the index header, or
    the uidlist when the folder is too young to have an index)."""
    MAILBOXES = {"alice": "".join(
        lab_message([("From", "a@example.org"), ("Subject", f"r {i}")], [f"body {i}"])
        for i in range(RECENT_MESSAGES))}

    def between_restarts(self):
        """Maildir: the folders age, as they do when nobody changes them."""

    def recent_of_select(self):
        c = self.raw_login()
        resp, tagged = c.command("SELECT INBOX", timeout=60 * SLOW)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        counts = [int(m.group(1)) for r in resp for m in [re.match(rb"\* (\d+) RECENT", r)] if m]
        c.command("LOGOUT")
        c.close()
        self.assertEqual(len(counts), 1, resp)
        return counts[0]

    def restart(self):
        self.server.stop()
        self.between_restarts()
        self.server.start()
        self.port = self.server.port

    def test_recent_once_across_restarts(self):
        self.assertEqual(self.recent_of_select(), RECENT_MESSAGES)
        self.assertEqual(self.recent_of_select(), 0)
        self.restart()
        self.assertEqual(self.recent_of_select(), 0)
        self.restart()
        self.assertEqual(self.recent_of_select(), 0)
        # a new message while nobody has the mailbox selected
        c = self.raw_login()
        msg = b"Subject: new\r\n\r\nnew one\r\n"
        resp, tagged = c.command(b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c.command("LOGOUT")
        c.close()
        self.restart()
        self.assertEqual(self.recent_of_select(), 1)
        self.assertEqual(self.recent_of_select(), 0)
        self.restart()
        self.assertEqual(self.recent_of_select(), 0)


class TestMaildirRecentAcrossRestarts(test_maildir.MaildirMixin, TestRecentAcrossRestarts):
    def between_restarts(self):
        TestMaildirRestartSameAnswers.between_restarts(self)


if __name__ == "__main__":
    unittest.main()
