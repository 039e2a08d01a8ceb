"""The IMAP extensions over the network with the real server: MOVE,
ESEARCH, LIST-EXTENDED / SPECIAL-USE, modified UTF-7 names, and CONDSTORE
/ QRESYNC state kept on disk across a restart (RFC 6851, 4731, 5258,
6154, 3501 5.1.3, 7162). The in-process unit tests (tests/test_imap_cmds.c)
cover each command's unhappy paths."""

import re
import unittest

from server import SEED, ServerTestCase


def joined(untagged):
    return b"".join(untagged)


class TestExtensions(ServerTestCase):

    def select_qresync(self, c, args=""):
        untagged, tagged = c.command("SELECT INBOX" + args)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        text = joined(untagged)
        hms = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", text).group(1))
        uidv = int(re.search(rb"\[UIDVALIDITY (\d+)\]", text).group(1))
        return text, hms, uidv

    def test_empty_mailbox_reports_highestmodseq_1(self):
        """RFC 7162 3.1: mod-sequences are positive; a mailbox that never
        changed says 1 (as Dovecot), never 0, in SELECT and STATUS."""
        c = self.raw_login()
        c.command("CREATE Empty")
        c.command("ENABLE CONDSTORE")
        untagged, tagged = c.command("STATUS Empty (HIGHESTMODSEQ)")
        self.assertIn(b"HIGHESTMODSEQ 1)", joined(untagged))
        untagged, tagged = c.command("SELECT Empty")
        self.assertIn(b"* OK [HIGHESTMODSEQ 1]", joined(untagged))

    def test_multiappend_stores_all_or_nothing(self):
        """RFC 3502: several messages in one APPEND, each with its own
        flags and date; one APPENDUID set; a mistake in any of them
        stores none; another session hears of them at once."""
        c = self.raw_login()
        watcher = self.raw_login(mailbox="INBOX")
        resp, tagged = c.command(b'APPEND INBOX (\\Seen) {5+}\r\nhello '
                                 b'"01-Jan-2024 10:00:00 +0000" {3+}\r\nabc {4+}\r\nwxyz')
        m = re.match(rb"OK \[APPENDUID (\d+) (\d+):(\d+)\]", tagged)
        self.assertIsNotNone(m, tagged)
        self.assertEqual(int(m.group(3)) - int(m.group(2)), 2)
        resp, tagged = watcher.command("NOOP")
        self.assertIn(f"* {len(SEED) + 3} EXISTS".encode(), joined(resp))
        resp, tagged = watcher.command(f"FETCH {len(SEED) + 1}:* (FLAGS INTERNALDATE BODY[])")
        text = joined(resp)
        self.assertIn(b"\\Seen", text.split(b"FETCH")[1])
        self.assertIn(b'" 1-Jan-2024 10:00:00 +0000"', text)
        self.assertIn(b"wxyz", text)
        # An empty message, or bad flags, anywhere: nothing is stored.
        resp, tagged = c.command(b"APPEND INBOX {3+}\r\nabc {0+}\r\n")
        self.assertTrue(tagged.startswith(b"NO"), tagged)
        resp, tagged = c.command(b"APPEND INBOX {3+}\r\nabc (\\Bogus) {3+}\r\nxyz")
        self.assertTrue(tagged.startswith(b"BAD"), tagged)
        resp, tagged = c.command("STATUS INBOX (MESSAGES)")
        self.assertIn(f"MESSAGES {len(SEED) + 3})".encode(), joined(resp))

    def test_modseq_state_survives_a_restart(self):
        c = self.raw_login()
        c.command("ENABLE QRESYNC")
        _, hms0, uidv = self.select_qresync(c)
        untagged, tagged = c.command("STORE 1 +FLAGS (\\Flagged)")
        modseq1 = int(re.search(rb"MODSEQ \((\d+)\)", joined(untagged)).group(1))
        self.assertGreater(modseq1, hms0)
        c.command("STORE 2 +FLAGS.SILENT (\\Deleted)")
        untagged, tagged = c.command("EXPUNGE")
        self.assertIn(b"* VANISHED 2\r\n", joined(untagged))
        hms1 = int(re.search(rb"HIGHESTMODSEQ (\d+)", tagged).group(1))
        self.assertGreater(hms1, modseq1)
        c.command("LOGOUT")
        self.server.restart()
        self.port = self.server.port
        c = self.raw_login()
        c.command("ENABLE QRESYNC")
        # HIGHESTMODSEQ and the message's MODSEQ were kept on disk.
        text, hms2, uidv2 = self.select_qresync(c)
        self.assertEqual(uidv2, uidv)
        self.assertEqual(hms2, hms1)
        untagged, _ = c.command("UID FETCH 1 (MODSEQ)")
        self.assertIn(f"MODSEQ ({modseq1})".encode(), joined(untagged))
        # A client that last saw hms0 learns of the expunge and the flag.
        text, _, _ = self.select_qresync(c, f" (QRESYNC ({uidv} {hms0}))")
        self.assertIn(b"* VANISHED (EARLIER) 2\r\n", text)
        self.assertRegex(text, rb"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged[^)]*\) MODSEQ")
        # One that saw hms1 has nothing to learn.
        text, _, _ = self.select_qresync(c, f" (QRESYNC ({uidv} {hms1}))")
        self.assertNotIn(b"FETCH", text)
        # New changes go on from there.
        untagged, _ = c.command("STORE 3 +FLAGS (\\Seen)")
        m = re.search(rb"MODSEQ \((\d+)\)", joined(untagged))
        self.assertGreater(int(m.group(1)), hms1)

    def test_move_and_esearch(self):
        c = self.raw_login(mailbox="INBOX")
        untagged, tagged = c.command("UID MOVE 1:2 Trash")
        text = joined(untagged)
        self.assertRegex(text, rb"\* OK \[COPYUID \d+ 1:2 1:2\]")
        self.assertEqual(text.count(b" EXPUNGE\r\n"), 2)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        untagged, _ = c.command("SEARCH RETURN (MIN MAX COUNT) ALL")
        self.assertIn(f"MIN 1 MAX {len(SEED) - 2} COUNT {len(SEED) - 2}".encode(),
                      joined(untagged))
        m = self.imap()
        typ, data = m.status("Trash", "(MESSAGES)")
        self.assertIn(b"MESSAGES 2", data[0])

    def test_special_use_and_utf7_names(self):
        m = self.imap()
        typ, data = m.list('""', "*")
        text = b"\n".join(data)
        for name, attr in (("Sent", b"\\Sent"), ("Drafts", b"\\Drafts"),
                           ("Trash", b"\\Trash"), ("Junk", b"\\Junk")):
            self.assertRegex(text, rb"\([^)]*" + re.escape(attr) + rb"[^)]*\) \"/\" \"?" +
                             name.encode())
        self.assertOK(m.create("&U,BTFw-"))
        typ, data = m.list('""', "*")
        self.assertIn(b'"&U,BTFw-"', b"\n".join(data))
        # UTF-8 on disk
        import os
        self.assertTrue(os.path.exists(os.path.join(self.server.user_dir("alice"),
                                                    "\u53f0\u5317.mail")))
        typ, data = m.create("&Jjo")
        self.assertEqual(typ, "NO")


if __name__ == "__main__":
    unittest.main()
