"""OBJECTID (RFC 8474) over the wire with Python's imaplib, on flat and
on Maildir storage: MAILBOXID from CREATE, SELECT, STATUS and LIST-STATUS,
kept across RENAME and a restart, new after DELETE+CREATE; EMAILID kept
across COPY, MOVE and a restart; THREADID NIL; the unhappy paths."""

import re
import subprocess
import unittest

from server import SLOW, ServerTestCase
from test_maildir import MaildirMixin

MSG = b"From: a@example.org\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\nbody\r\n"
OBJECTID = rb"[A-Za-z0-9_-]{1,255}"


def one_id(key, data):
    """The objectid after "key (" in imaplib answer data (bytes items or
    tuples), which must hold exactly one."""
    text = b" ".join(x if isinstance(x, bytes) else b" ".join(x)
                     for x in data if x is not None)
    found = re.findall(key + rb" \((" + OBJECTID + rb")\)", text)
    assert len(found) == 1, (key, text)
    return found[0].decode()


class ObjectIdBehaviour:
    def restart(self):
        self.server.stop()
        self.server.start()
        self.port = self.server.port

    def mailboxid(self, m, name):
        return one_id(b"MAILBOXID", self.assertOK(m.status(name, "(MAILBOXID)")))

    def emailids(self, m, mailbox):
        self.assertOK(m.select(mailbox))
        data = self.assertOK(m.fetch("1:*", "(UID EMAILID)"))
        ids = {}
        for item in data:
            uid = re.search(rb"UID (\d+)", item).group(1)
            ids[int(uid)] = one_id(b"EMAILID", [item])
        return ids

    def test_mailboxid(self):
        m = self.imap()
        typ, data = m.capability()
        self.assertIn(b" OBJECTID", data[0])
        typ, data = m.create("work")
        self.assertEqual(typ, "OK", data)
        created = one_id(b"MAILBOXID", data)
        self.assertEqual(self.mailboxid(m, "work"), created)
        self.assertOK(m.select("work"))
        self.assertEqual(one_id(b"MAILBOXID", m.untagged_responses["OK"]), created)
        typ, data = m.list('""', "work RETURN (STATUS (MAILBOXID MESSAGES))")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(one_id(b"MAILBOXID", m.untagged_responses.pop("STATUS", [])),
                         created)
        inbox = self.mailboxid(m, "INBOX")
        self.assertNotEqual(inbox, created)
        m.close()
        self.assertOK(m.rename("work", "archive"))
        self.assertEqual(self.mailboxid(m, "archive"), created)
        m.logout()
        self.restart()
        m = self.imap()
        self.assertEqual(self.mailboxid(m, "archive"), created)
        self.assertEqual(self.mailboxid(m, "INBOX"), inbox)
        self.assertOK(m.delete("archive"))
        typ, data = m.create("archive")
        self.assertEqual(typ, "OK", data)
        self.assertNotEqual(one_id(b"MAILBOXID", data), created)
        m.logout()

    def test_emailid_across_copy_move_restart(self):
        m = self.imap()
        for name in ("src", "a", "b"):
            self.assertOK(m.create(name))
        for s in (b"one", b"two", b"three"):
            self.assertOK(m.append("src", None, None, MSG % (s, s)))
        before = self.emailids(m, "src")
        self.assertEqual(len(set(before.values())), len(before))
        data = self.assertOK(m.fetch("1", "(THREADID)"))
        self.assertIn(b"THREADID NIL", data[0])
        self.assertOK(m.uid("COPY", "1:*", "a"))
        self.assertOK(m.uid("MOVE", "2", "b"))
        copies = self.emailids(m, "a")
        self.assertEqual(sorted(copies.values()), sorted(before.values()))
        moved = self.emailids(m, "b")
        self.assertEqual(list(moved.values()), [before[2]])
        # SEARCH EMAILID (RFC 8474 6) finds it where it went
        data = self.assertOK(m.uid("SEARCH", "EMAILID", before[2]))
        self.assertEqual(data, [b"1"])
        self.assertOK(m.select("a"))
        data = self.assertOK(m.search(None, "OR", "EMAILID", before[1], "EMAILID", before[3]))
        self.assertEqual(data[0].split(), [b"1", b"3"])
        data = self.assertOK(m.search(None, "THREADID", "T1"))
        self.assertEqual(data, [b""])
        m.logout()
        self.restart()
        m = self.imap()
        self.assertEqual(sorted(self.emailids(m, "a").values()), sorted(before.values()))
        self.assertEqual(list(self.emailids(m, "b").values()), [before[2]])
        self.assertEqual(self.emailids(m, "src"), {1: before[1], 3: before[3]})
        m.logout()

    def test_unhappy_paths(self):
        m = self.imap()
        typ, data = m.status("nosuch", "(MAILBOXID)")
        self.assertEqual(typ, "NO", data)
        self.assertIn(b"[NONEXISTENT]", data[0])
        with self.assertRaises(m.error):
            m.status("INBOX", "(MAILBOXID NOSUCHITEM)")
        self.assertOK(m.select("INBOX"))
        for bad in ("0", "1:x", "99999"):
            with self.assertRaises(m.error):
                m.fetch(bad, "(EMAILID)")
        with self.assertRaises(m.error):
            m.fetch("1", "(EMAILID.PEEK)")
        # a UID set with no message answers OK with no FETCH
        typ, data = m.uid("FETCH", "99999", "(EMAILID)")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(data, [None])
        m.logout()


class TestObjectIdFlat(ObjectIdBehaviour, ServerTestCase):
    pass


class TestObjectIdMigration(ServerTestCase):
    """imapserver --migrate from flat to Maildir keeps the ids: the same
    messages (EMAILID, a digest of their bytes) in mailboxes of the same
    UIDVALIDITY (MAILBOXID)."""

    def ids(self):
        m = self.imap()
        boxes = {}
        for name in ("INBOX", "work"):
            mailboxid = one_id(b"MAILBOXID", self.assertOK(m.status(name, "(MAILBOXID)")))
            self.assertOK(m.select(name))
            data = self.assertOK(m.uid("FETCH", "1:*", "(UID EMAILID)"))
            boxes[name] = (mailboxid, sorted((int(re.search(rb"UID (\d+)", x).group(1)),
                                              one_id(b"EMAILID", [x])) for x in data))
        m.logout()
        return boxes

    def test_ids_survive_migration(self):
        m = self.imap()
        self.assertOK(m.create("work"))
        self.assertOK(m.append("work", None, None, MSG % (b"w", b"w")))
        m.logout()
        before = self.ids()
        self.server.stop()
        p = subprocess.run([self.server.binary, "-c", self.server.conf, "--migrate", "alice",
                            "--from", "flat", "--to", "maildir"], capture_output=True,
                           timeout=60 * SLOW, cwd=self.server.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.server.conf) as f:
            conf = f.read()
        with open(self.server.conf, "w") as f:
            f.write(conf.replace('backend = "flat"; root', 'backend = "maildir"; root'))
        self.server.start()
        self.port = self.server.port
        self.assertEqual(self.ids(), before)


class TestObjectIdMaildir(MaildirMixin, ObjectIdBehaviour, ServerTestCase):
    pass


if __name__ == "__main__":
    unittest.main()
