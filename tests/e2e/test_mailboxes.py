"""CREATE, DELETE, RENAME, LIST, LSUB, SUBSCRIBE, UNSUBSCRIBE, STATUS and
COPY (RFC 3501 6.3.3 - 6.3.10, 6.4.7)."""

import imaplib
import re
import unittest

from server import SEED, ServerTestCase, fetches, imaplib_fetches, untagged_numbers


# Every new user gets these at first login (RFC 6154 SPECIAL-USE),
# subscribed; the tests below look at the other names.
SPECIAL_USE = ("Sent", "Drafts", "Trash", "Junk")


def list_names(data):
    """Mailbox names from imaplib's LIST/LSUB data, without the special-use
    mailboxes every user has."""
    names = []
    for item in data:
        if item is None:
            continue
        m = re.match(rb'^\(([^)]*)\) (NIL|"(?:[^"\\]|\\.)*") (.*)$', item)
        assert m, item
        name = m.group(3)
        if name.startswith(b'"'):
            name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        names.append(name.decode())
    return [n for n in names if n not in SPECIAL_USE]


class TestMailboxes(ServerTestCase):

    def list(self, m, pattern="*"):
        typ, data = m.list('""', pattern)
        self.assertEqual(typ, "OK", data)
        return list_names(data)

    def test_list_has_inbox_and_delimiter(self):
        c = self.raw_login()
        resp, tagged = c.command('LIST "" ""')
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertRegex(b"".join(resp), rb'\* LIST \(\\Noselect\) "/" ""')
        m = self.imap()
        self.assertEqual(self.list(m), ["INBOX"])

    def test_create_list_rename_delete(self):
        m = self.imap()
        self.assertOK(m.create("Work"), "CREATE Work")
        self.assertEqual(sorted(self.list(m)), ["INBOX", "Work"])
        typ, data = m.create("Work")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[ALREADYEXISTS]", data[0])
        self.assertOK(m.rename("Work", "Projects"), "RENAME")
        self.assertEqual(sorted(self.list(m)), ["INBOX", "Projects"])
        typ, data = m.rename("Work", "Other")
        self.assertEqual(typ, "NO")
        self.assertOK(m.delete("Projects"), "DELETE")
        self.assertEqual(self.list(m), ["INBOX"])
        typ, data = m.delete("Projects")
        self.assertEqual(typ, "NO")

    def test_create_hierarchy_and_patterns(self):
        m = self.imap()
        self.assertOK(m.create("Lists/imap"))
        self.assertOK(m.create("Lists/smtp"))
        names = self.list(m)
        self.assertIn("Lists/imap", names)
        self.assertIn("Lists/smtp", names)
        self.assertEqual(sorted(self.list(m, "Lists/%")), ["Lists/imap", "Lists/smtp"])
        self.assertNotIn("Lists/imap", self.list(m, "%"))
        self.assertEqual(self.list(m, "inbox"), ["INBOX"])

    def test_inbox_cannot_be_deleted_and_bad_names_are_refused(self):
        m = self.imap()
        self.assertEqual(m.delete("INBOX")[0], "NO")
        for bad in ('"../escape"', '"a//b"', '"/abs"', '"a/../b"', '"."'):
            typ, data = m.create(bad)
            self.assertEqual(typ, "NO", bad)
        self.assertEqual(self.list(m), ["INBOX"])

    def test_rename_inbox_moves_messages(self):
        m = self.imap()
        self.assertOK(m.rename("INBOX", "Old"))
        self.assertEqual(m.select("Old"), ("OK", [str(len(SEED)).encode()]))
        self.assertEqual(m.select("INBOX"), ("OK", [b"0"]))

    def test_subscribe_lsub_unsubscribe(self):
        m = self.imap()
        m.create("News")
        m.create("Spam")
        self.assertOK(m.subscribe("News"))
        typ, data = m.lsub('""', "*")
        self.assertEqual(typ, "OK")
        self.assertEqual(list_names(data), ["News"])
        self.assertOK(m.unsubscribe("News"))
        typ, data = m.lsub('""', "*")
        self.assertEqual(list_names(data), [])

    def test_subscriptions_persist_across_restart(self):
        m = self.imap()
        m.create("News")
        m.subscribe("News")
        m.logout()
        self.server.restart()
        self.port = self.server.port
        m = self.imap()
        typ, data = m.lsub('""', "*")
        self.assertEqual(list_names(data), ["News"])

    def test_status(self):
        m = self.imap()
        typ, data = m.status("INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
        self.assertEqual(typ, "OK")
        st = data[0]
        self.assertRegex(st, rb"MESSAGES %d\b" % len(SEED))
        self.assertRegex(st, rb"UNSEEN %d\b" % len(SEED))
        self.assertRegex(st, rb"UIDNEXT \d+")
        self.assertRegex(st, rb"UIDVALIDITY \d+")
        m.create("Empty")
        typ, data = m.status("Empty", "(MESSAGES UNSEEN)")
        self.assertRegex(data[0], rb"MESSAGES 0\b")
        self.assertEqual(m.status("Nowhere", "(MESSAGES)")[0], "NO")
        with self.assertRaises(imaplib.IMAP4.error):    # imaplib raises on BAD
            m.status("INBOX", "(FROB)")

    def test_copy_to_another_mailbox(self):
        m = self.imap()
        m.create("Saved")
        m.select("INBOX")
        m.store("2", "+FLAGS", "(\\Flagged)")
        typ, data = m.copy("2:3", "Saved")
        self.assertEqual(typ, "OK", data)
        typ, data = m.copy("1", "Nowhere")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[TRYCREATE]", data[0])
        typ, data = m.select("Saved")
        self.assertEqual(data, [b"2"])
        typ, data = m.fetch("1:2", "(BODY.PEEK[] FLAGS)")
        got = imaplib_fetches(data)
        self.assertEqual(got[1]["BODY[]"], SEED[1].served)
        self.assertEqual(got[2]["BODY[]"], SEED[2].served)
        self.assertIn(b"\\Flagged", got[1]["FLAGS"])
        # The source is unchanged.
        typ, data = m.select("INBOX")
        self.assertEqual(data, [str(len(SEED)).encode()])

    def test_select_created_mailbox_and_append(self):
        c = self.raw_login()
        c.command("CREATE Drafts")
        msg = b"Subject: draft\r\n\r\n.dot\r\n"
        c.send(b"a APPEND Drafts (\\Draft) {%d+}\r\n" % len(msg) + msg + b"\r\n")
        resp, tagged = c.read_tagged("a")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("SELECT Drafts")
        self.assertEqual(untagged_numbers(resp, "EXISTS"), [1])
        resp, tagged = c.command("FETCH 1 (BODY.PEEK[] FLAGS)")
        d = fetches(resp)[1]
        self.assertEqual(d["BODY[]"], msg)
        self.assertIn(b"\\Draft", d["FLAGS"])

    def test_delete_selected_mailbox_elsewhere(self):
        m = self.imap()
        m.create("Tmp")
        m.select("Tmp")
        m2 = self.imap()
        typ, data = m2.delete("Tmp")
        # Either refused while in use or done; the first session must not
        # bring the server down either way.
        self.assertIn(typ, ("OK", "NO"))
        try:
            m.noop()
        except Exception:
            pass
        self.assert_server_serves()


if __name__ == "__main__":
    unittest.main()
