"""UIDONLY (RFC 9586) over the wire with Python's imaplib, on flat and on
Maildir storage: ENABLE UIDONLY, the number forms refused with
BAD [UIDREQUIRED], UID FETCH answered "* uid UIDFETCH", expunges told
as VANISHED, a second session unaffected."""

import unittest

from server import ServerTestCase
from test_maildir import MaildirMixin

MSG = b"From: a@example.org\r\nSubject: %s\r\n\r\nbody\r\n"


class UidOnlyBehaviour:
    def test_uidonly(self):
        m = self.imap()
        typ, data = m.capability()
        self.assertIn(b" UIDONLY", data[0])
        self.assertOK(m.create("box"))
        for s in (b"one", b"two", b"three"):
            self.assertOK(m.append("box", None, None, MSG % s))
        typ, data = m._simple_command("ENABLE", "UIDONLY")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(m.untagged_responses.pop("ENABLED"), [b"UIDONLY"])
        self.assertOK(m.select("box"))
        for command in (lambda: m.fetch("1", "(FLAGS)"),
                        lambda: m.store("1", "+FLAGS", r"(\Seen)"),
                        lambda: m.copy("1", "INBOX"),
                        lambda: m.search(None, "ALL"),
                        lambda: m.uid("SEARCH", "1:2")):
            with self.assertRaises(m.error) as cm:
                command()
            self.assertIn("UIDREQUIRED", str(cm.exception))
        typ, data = m.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE)")
        self.assertEqual(typ, "OK", data)
        answers = m.untagged_responses.pop("UIDFETCH")
        self.assertEqual(len(answers), 3, answers)
        self.assertTrue(answers[0].startswith(b"1 (FLAGS ("), answers)
        self.assertNotIn(b"UID ", answers[0])
        self.assertOK(m.uid("STORE", "2", "+FLAGS.SILENT", r"(\Deleted)"))
        typ, data = m.expunge()
        self.assertEqual(typ, "OK", data)
        self.assertEqual(m.untagged_responses.pop("VANISHED"), [b"2"])
        self.assertNotIn("EXPUNGE", m.untagged_responses)

        # another session, without UIDONLY, changes a flag and expunges
        o = self.imap()
        self.assertOK(o.select("box"))
        data = self.assertOK(o.fetch("2", "(UID)"))
        self.assertIn(b"2 (UID 3)", data[0])
        self.assertOK(o.store("2", "+FLAGS", r"(\Flagged)"))
        self.assertOK(o.store("1", "+FLAGS.SILENT", r"(\Deleted)"))
        self.assertOK(o.expunge())
        o.logout()
        self.assertOK(m.noop())
        self.assertEqual(m.untagged_responses.pop("VANISHED"), [b"1"])
        flags = m.untagged_responses.pop("UIDFETCH")
        self.assertTrue(any(f.startswith(b"3 (FLAGS (") and b"\\Flagged" in f
                            for f in flags), flags)
        m.logout()


class TestUidOnlyFlat(UidOnlyBehaviour, ServerTestCase):
    pass


class TestUidOnlyMaildir(MaildirMixin, UidOnlyBehaviour, ServerTestCase):
    pass


if __name__ == "__main__":
    unittest.main()
