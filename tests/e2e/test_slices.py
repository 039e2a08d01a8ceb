"""A command that works through a whole mailbox does it in slices: other
sessions are served in between (issue: one session's SEARCH of text held
the loop until it had read every message). And a password hash is
checked outside the loop.

The search here is made slow on purpose, with many NOT TEXT keys that
all have to be tried on every message of a 20 MB mailbox, and another
session's NOOP must be answered before the search's tagged answer. The
search's result must be the same as a quick one's: slicing loses or
repeats no message."""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server as srv  # noqa: E402
from server import ServerTestCase, SLOW  # noqa: E402
import test_maildir  # noqa: E402

COUNT = 2000
TIMEOUT = 300.0 * SLOW


def mailbox():
    out = []
    for i in range(COUNT):
        # every 7th message holds the word the search finds
        word = "marker%d" % (i % 7 == 0)
        body = [("line %d of message %d, nothing to see here " % (j, i)) * 3
                for j in range(80)]
        out.append(srv.Mail([("From", "u%d@localhost" % (i % 5)),
                             ("Subject", "message %d %s" % (i + 1, word))], body).lab)
    return "".join(out)


class Session:
    def __init__(self, port):
        self.s = socket.create_connection((srv.HOST, port), timeout=TIMEOUT)
        self.f = self.s.makefile("rb")
        self.f.readline()

    def send(self, line):
        self.s.sendall(line + b"\r\n")

    def until(self, tag):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise AssertionError("connection closed")
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def command(self, tag, cmd):
        self.send(tag + b" " + cmd)
        return self.until(tag)

    def close(self):
        self.s.close()


def numbers(lines, head):
    for line in lines:
        if line.startswith(head):
            return [int(x) for x in line[len(head):].split()]
    raise AssertionError(f"no {head!r} in {lines!r}")


class TestSearchSlices(ServerTestCase):
    MAILBOXES = {"alice": mailbox(), "bob": None}

    def test_other_sessions_are_served_during_a_long_search(self):
        a = Session(self.port)
        b = Session(self.port)
        try:
            a.command(b"a1", b"LOGIN alice alice123")
            a.command(b"a2", b"SELECT INBOX")
            b.command(b"b1", b"LOGIN bob bob123")
            b.command(b"b2", b"SELECT INBOX")
            quick = numbers(a.command(b"a3", b"SEARCH SUBJECT marker1"), b"* SEARCH")
            self.assertEqual(quick, [i + 1 for i in range(COUNT) if i % 7 == 0])
            # 150 keys that every message passes, tried on each.
            keys = b" ".join(b"NOT TEXT absent%03d" % k for k in range(150))
            a.send(b"a4 SEARCH " + keys + b" TEXT marker1")
            # The search has started: bob's NOOP goes in after it.
            time.sleep(0.05)
            b.send(b"b3 NOOP")
            noop = b.until(b"b3")
            self.assertTrue(noop[-1].startswith(b"b3 OK"), noop)
            # The NOOP was answered while the search still ran.
            a.s.setblocking(False)
            try:
                early = a.s.recv(65536, socket.MSG_PEEK)
            except BlockingIOError:
                early = b""
            a.s.setblocking(True)
            a.s.settimeout(TIMEOUT)
            self.assertFalse(b"a4 OK" in early, "the search ended before bob was served: "
                             "make it slower, or it did not yield to the loop")
            slow = numbers(a.until(b"a4"), b"* SEARCH")
            self.assertEqual(slow, quick)
            # UID SEARCH and ESEARCH take the same slices.
            esearch = a.command(b"a5", b"UID SEARCH RETURN (COUNT MIN MAX) " + keys +
                                b" TEXT marker1")
            self.assertIn(b"* ESEARCH (TAG \"a5\") UID MIN 1 MAX %d COUNT %d\r\n" %
                          (quick[-1], len(quick)), esearch)
        finally:
            a.close()
            b.close()


def peek_tagged(sess, tag):
    """True if the tagged answer of tag has already come (without reading it)."""
    sess.s.setblocking(False)
    try:
        early = sess.s.recv(1 << 22, socket.MSG_PEEK)
    except BlockingIOError:
        early = b""
    sess.s.setblocking(True)
    sess.s.settimeout(TIMEOUT)
    return (b"\r\n" + tag + b" ") in (b"\r\n" + early)


class TestStoreSlices(test_maildir.MaildirMixin, ServerTestCase):
    """STORE 1:* on a big Maildir folder (a rename per message) also works
    in slices: another session is served before it ends, and every
    message gets its flag and its untagged FETCH exactly once."""

    COUNT = 20000
    MAILBOXES = {"alice": "".join(srv.Mail([("From", "a@localhost"), ("Subject", f"m{i}")],
                                           ["x"]).lab for i in range(COUNT)),
                 "bob": None}

    def test_other_sessions_are_served_during_a_long_store(self):
        a = Session(self.port)
        b = Session(self.port)
        try:
            a.command(b"a1", b"LOGIN alice alice123")
            self.assertIn(b"* %d EXISTS\r\n" % self.COUNT, a.command(b"a2", b"SELECT INBOX"))
            b.command(b"b1", b"LOGIN bob bob123")
            # SILENT: no answer lines, so that only the work can hold
            # the tagged answer back (the server writes long answers in
            # rounds anyway).
            a.send(b"a3 STORE 1:* +FLAGS.SILENT (\\Flagged)")
            time.sleep(0.05)
            b.send(b"b2 NOOP")
            self.assertTrue(b.until(b"b2")[-1].startswith(b"b2 OK"))
            self.assertFalse(peek_tagged(a, b"a3"), "the STORE ended before bob was served: "
                             "make it slower, or it did not yield to the loop")
            lines = a.until(b"a3")
            self.assertTrue(lines[-1].startswith(b"a3 OK"), lines[-1])
            self.assertIn(b"* ESEARCH (TAG \"a4\") COUNT %d\r\n" % self.COUNT,
                          a.command(b"a4", b"SEARCH RETURN (COUNT) FLAGGED"))
            # Not silent: one answer line per message, none twice.
            lines = a.command(b"a5", b"STORE 1:* -FLAGS (\\Flagged)")
            self.assertTrue(lines[-1].startswith(b"a5 OK"), lines[-1])
            fetches = [x for x in lines if b" FETCH (FLAGS (" in x]
            self.assertEqual(len(fetches), self.COUNT)
            self.assertEqual(len(set(fetches)), self.COUNT)
            self.assertIn(b"* ESEARCH (TAG \"a6\") COUNT 0\r\n",
                          a.command(b"a6", b"SEARCH RETURN (COUNT) FLAGGED"))
        finally:
            a.close()
            b.close()


# alice123 as a yescrypt hash at Debian's default cost: 50 to 100 ms of
# work per check on a small machine.
ALICE_YESCRYPT = "$y$j9T$PzmhTnLQ0Xb7s3ciHU7Mm/$dY6wCv2DQg16Zc.Fs4p7E1Af6C2N4KnjycVBAggM66/"


class TestHashedLogin(ServerTestCase):
    """A password hash is checked outside the loop: while alice's
    yescrypt is computed, bob's NOOP is answered (before, every session
    waited for every hash check)."""

    def test_other_sessions_are_served_during_a_hash_check(self):
        with open(self.server.users, "w") as f:
            f.write(f"alice {ALICE_YESCRYPT}\nbob bob123\n")
        self.server.give_to_server()
        a = Session(self.port)
        b = Session(self.port)
        try:
            self.assertTrue(b.command(b"b1", b"LOGIN bob bob123")[-1].startswith(b"b1 OK"))
            a.send(b"a1 LOGIN alice alice123")
            b.send(b"b2 NOOP")
            noop = b.until(b"b2")
            self.assertTrue(noop[-1].startswith(b"b2 OK"), noop)
            a.s.setblocking(False)
            try:
                early = a.s.recv(65536, socket.MSG_PEEK)
            except BlockingIOError:
                early = b""
            a.s.setblocking(True)
            a.s.settimeout(TIMEOUT)
            self.assertFalse(b"a1 " in early, "alice's hash check held bob's NOOP back")
            self.assertTrue(a.until(b"a1")[-1].startswith(b"a1 OK"))
            # A wrong password is refused the same way.
            c = Session(self.port)
            try:
                self.assertIn(b"[AUTHENTICATIONFAILED]",
                              c.command(b"c1", b"LOGIN alice alice124")[-1])
            finally:
                c.close()
        finally:
            a.close()
            b.close()


if __name__ == "__main__":
    unittest.main()
