"""The store is a trust boundary, end to end: links planted in alice's
folder (as a user with a shell account could) pointing at bob's mail and
at a canary outside the store are never followed by the real server
(started as root with a service user when the tests run as root, else as
the current user). SELECT/EXAMINE/FETCH, APPEND, DELETE and RENAME through
them give nothing away and change nothing; LIST does not show them; the
refusal is logged once per path; on Maildir, DELETE of a linked folder
removes the link only.

The canary and bob's mail belong to the server's user too (start() gives
the whole temp folder to it), so only the server's own refusal keeps them
safe here, not file permissions."""

import os
import unittest

from server import ImapServer, ServerTestCase, seed_text
from test_maildir import MaildirServer

CANARY = b"CANARY-BYTES-7f3a"
BOB = b"BOB-SECRET-51c2"
CANARY_MSG = b"From: x@y\nSubject: " + CANARY + b"\n\n" + CANARY + b" body\n.\n"
BOB_TEXT = ("From: bob@x\nSubject: " + BOB.decode() + "\n\n" + BOB.decode() + "\n.\n")


class HostileStoreBase:
    """Mixed into ServerTestCase; BACKEND_SERVER makes the server."""

    MAILBOXES = {"alice": None, "bob": BOB_TEXT}
    ALLOW_LOG_ERRORS = True          # refused operations log storage errors
    BACKEND_SERVER = ImapServer

    def setUp(self):
        boxes = {u: (seed_text() if t is None else t) for u, t in self.MAILBOXES.items()}
        self.server = self.BACKEND_SERVER(boxes, limits=self.LIMITS)
        self.addCleanup(self.server.cleanup)
        self._clients = []
        self.outside = os.path.join(self.server.dir, "outside")
        os.makedirs(os.path.join(self.outside, "dir", "cur"))
        os.makedirs(os.path.join(self.outside, "dir", "new"))
        os.makedirs(os.path.join(self.outside, "dir", "tmp"))
        for rel in ("canary", "dir/keep", "dir/cur/1.canary:2,S", "dir/new/2.canary",
                    "dir/mymailbox.mail"):
            with open(os.path.join(self.outside, rel), "wb") as f:
                f.write(CANARY_MSG)
        self.plant()
        self.server.start()
        self.port = self.server.port
        self.before = self.snapshot()

    # -- what the subclass plants: (link path, target) pairs

    def links(self):
        raise NotImplementedError

    def plant(self):
        for at, target in self.links():
            os.makedirs(os.path.dirname(at), exist_ok=True)
            if os.path.lexists(at):
                os.remove(at)
            os.symlink(target, at)

    def snapshot(self):
        """Every entry under outside/ and bob's folder, never followed:
        path -> (mode, size, mtime, content)."""
        snap = {}
        for top in (self.outside, self.server.user_dir("bob")):
            for base, dirs, files in os.walk(top):
                for name in [""] + dirs + files:
                    p = os.path.join(base, name)
                    st = os.lstat(p)
                    data = b""
                    if os.path.isfile(p) and not os.path.islink(p):
                        with open(p, "rb") as f:
                            data = f.read()
                    snap[p] = (st.st_mode, st.st_size, st.st_mtime_ns, data)
        return snap

    def assert_outside_untouched(self):
        self.assertEqual(self.snapshot(), self.before,
                         "something outside alice's folder changed; log:\n"
                         + self.server.log_text())

    def assert_clean(self, data, what):
        self.assertNotIn(CANARY, data, what)
        self.assertNotIn(BOB, data, what)

    def everything(self, c, mailbox):
        """SELECT, FETCH all, EXAMINE; returns all bytes received."""
        got = b""
        for cmd in (f"SELECT {mailbox}", "FETCH 1:* (BODY.PEEK[] FLAGS)",
                    f"EXAMINE {mailbox}", "FETCH 1:* RFC822", "CLOSE"):
            resp, tagged = c.command(cmd)
            got += b"".join(resp) + tagged
        return got

    def append(self, c, mailbox):
        msg = b"Subject: planted\r\n\r\nALICE-WRITES\r\n"
        c.send(f"A1 APPEND {mailbox} {{{len(msg)}}}\r\n".encode())
        line = c.readline()
        if line.startswith(b"+"):
            c.send(msg + b"\r\n")
            resp, tagged = c.read_tagged("A1")
            return tagged
        return line

    def refusals(self, path):
        """The log's link warnings for path (logged under the configured,
        maybe relative, storage root)."""
        tail = "/" + os.path.relpath(path, self.server.root)
        return [l for l in self.server.log_lines()
                if "symbolic link refused" in l and l.rstrip().endswith(tail)]


class FlatHostileStore(HostileStoreBase, ServerTestCase):
    def links(self):
        alice = self.server.user_dir("alice")
        bob = self.server.user_dir("bob")
        return [
            (os.path.join(alice, "Shadow.mail"), os.path.join(self.outside, "canary")),
            (os.path.join(alice, "Bob.mail"), os.path.join(bob, "mymailbox.mail")),
            (os.path.join(alice, "Dir"), os.path.join(self.outside, "dir")),
        ]

    def test_select_fetch_append_delete_through_links(self):
        c = self.raw_login("alice")
        resp, tagged = c.command('LIST "" "*"')
        listing = b"".join(resp)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        for name in (b"Shadow", b"Bob", b"Dir"):
            self.assertNotIn(name, listing)
        for box in ("Shadow", "Bob", "Dir/mymailbox", "Dir/x"):
            got = self.everything(c, box)
            self.assert_clean(got, f"SELECT/FETCH {box}")
            tagged = self.append(c, box)
            self.assertFalse(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("SELECT Shadow")
        self.assertTrue(tagged.startswith(b"NO ["), tagged)
        # INBOX still works
        got = self.everything(c, "INBOX")
        self.assert_clean(got, "INBOX")
        # DELETE and RENAME act on the link itself
        resp, tagged = c.command("RENAME Bob Bob2")
        resp, tagged = c.command("DELETE Shadow")
        resp, tagged = c.command("DELETE Bob2")
        c.command("LOGOUT")
        self.assert_outside_untouched()
        alice = self.server.user_dir("alice")
        self.assertFalse(os.path.lexists(os.path.join(alice, "Shadow.mail")))
        # logged once a path, however often it was met
        self.assertEqual(len(self.refusals(os.path.join(alice, "Dir/x.mail"))), 1,
                         self.server.log_text())

    def test_inbox_that_is_a_link_to_bobs_mail(self):
        alice = self.server.user_dir("alice")
        inbox = os.path.join(alice, "mymailbox.mail")
        os.remove(inbox)
        os.symlink(os.path.join(self.server.user_dir("bob"), "mymailbox.mail"), inbox)
        self.before = self.snapshot()
        c = self.raw_login("alice")
        got = self.everything(c, "INBOX")
        self.assert_clean(got, "INBOX")
        tagged = self.append(c, "INBOX")
        self.assertFalse(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"NO ["), tagged)
        c.command("LOGOUT")
        self.assert_outside_untouched()
        self.assertEqual(len(self.refusals(inbox)), 1, self.server.log_text())


class MaildirHostileStore(HostileStoreBase, ServerTestCase):
    BACKEND_SERVER = MaildirServer

    def links(self):
        md = self.server.maildir("alice")
        bob = self.server.maildir("bob")
        return [
            (os.path.join(md, ".Shadow"), os.path.join(self.outside, "dir")),
            (os.path.join(md, ".Bob"), bob),
            (os.path.join(md, "cur", "1700000000.M1P1.host,S=10:2,S"),
             os.path.join(self.outside, "canary")),
            (os.path.join(md, "new", "1700000001.M2P1.host"),
             os.path.join(self.outside, "dir", "keep")),
        ]

    def test_select_fetch_append_delete_through_links(self):
        c = self.raw_login("alice")
        resp, tagged = c.command('LIST "" "*"')
        listing = b"".join(resp)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertNotIn(b"Shadow", listing)
        self.assertNotIn(b"Bob", listing)
        for box in ("Shadow", "Bob"):
            got = self.everything(c, box)
            self.assert_clean(got, f"SELECT/FETCH {box}")
            tagged = self.append(c, box)
            self.assertFalse(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("SELECT Bob")
        self.assertTrue(tagged.startswith(b"NO ["), tagged)
        # INBOX: its real messages, never the linked files in cur/ and new/
        got = self.everything(c, "INBOX")
        self.assert_clean(got, "INBOX")
        resp, tagged = c.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command('STORE 1:* +FLAGS (\\Deleted)')
        resp, tagged = c.command("EXPUNGE")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # DELETE of a linked folder removes the link, never the target's mail
        resp, tagged = c.command("DELETE Shadow")
        resp, tagged = c.command("RENAME Bob Bob2")
        resp, tagged = c.command("DELETE Bob2")
        c.command("LOGOUT")
        self.assert_outside_untouched()
        md = self.server.maildir("alice")
        self.assertFalse(os.path.lexists(os.path.join(md, ".Shadow")))
        self.assertTrue(os.path.exists(os.path.join(self.outside, "dir", "cur",
                                                    "1.canary:2,S")))
        cur_link = os.path.join(md, "cur", "1700000000.M1P1.host,S=10:2,S")
        self.assertEqual(len(self.refusals(cur_link)), 1, self.server.log_text())


if __name__ == "__main__":
    unittest.main()
