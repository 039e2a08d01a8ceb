"""Heavy operations outside the loop (issue 12): a flat EXPUNGE rewrites
the whole mail file in a worker thread while the other sessions are
served.

The job is held in the middle of its copy through the test-only hook
IMAPSERVER_TEST_JOB_HOLD (core/io/job.h: the work waits while the named
file exists), so the assertions are about order, not time: while the
expunge is held, another user's NOOP and another session's FETCH of the
same mailbox are answered and the expunge's tagged OK is not; an APPEND
into the busy mailbox is answered only after it, with the next UID. A
kill -9 of the server in the middle of the job loses and duplicates
nothing; a session that goes away, and a SIGTERM, while the job works
leave the mailbox whole."""

import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server as srv  # noqa: E402
from server import ServerTestCase, SLOW  # noqa: E402

COUNT = 2000
BODY_LINES = 110           # about 8 KB a message, 16 MB in all
HOLD_ENV = "IMAPSERVER_TEST_JOB_HOLD"
WAIT = 20.0 * SLOW         # bound of every wait for the server
NO_ANSWER_GRACE = 0.3      # how long "no answer yet" listens


def big_mailbox():
    """COUNT messages in the lab's format, message i with Subject
    "message i"."""
    body = "".join(f"{'y' * 70}\n" for _ in range(BODY_LINES))
    out = []
    for i in range(1, COUNT + 1):
        out.append(f"From: sender{i % 7}@example.org\nTo: alice@localhost\n"
                   f"Subject: message {i}\nReceived: 2022-03-10 : 14 : 30\n"
                   f"{body}.\n")
    return "".join(out)


class HeldJobCase(ServerTestCase):
    """A server whose jobs can be held (the hook), with alice's big
    mailbox; the tests are in the subclasses."""

    MAILBOXES = {"alice": big_mailbox(), "bob": srv.seed_text()}

    def setUp(self):
        # As ServerTestCase.setUp(), with the hook set for this server:
        # it is read when the server starts.
        boxes = {u: (srv.seed_text() if t is None else t) for u, t in self.MAILBOXES.items()}
        self.server = srv.ImapServer(boxes, limits=self.LIMITS)
        self.addCleanup(self.server.cleanup)
        self._clients = []
        self.hold = os.path.join(self.server.dir, "hold")
        os.environ[HOLD_ENV] = self.hold
        try:
            self.server.start()
        finally:
            os.environ.pop(HOLD_ENV, None)
        self.port = self.server.port

    def tearDown(self):
        # A failed test may leave the job held: SIGTERM waits for it.
        self.release_job()
        super().tearDown()

    # -- helpers

    def hold_job(self):
        with open(self.hold, "w"):
            pass
        os.chmod(self.hold, 0o644)

    def release_job(self):
        if os.path.exists(self.hold):
            os.unlink(self.hold)

    def wait_job_held(self):
        """Until the expunge's temp file holds some of the copy (the work
        reached the hook halfway)."""
        tmp = self.server.mailbox_path("alice") + ".tmp"
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if os.path.exists(tmp) and os.path.getsize(tmp) > 0:
                return
            time.sleep(0.01)
        self.fail("the expunge job did not start; log:\n" + self.server.log_text())

    def no_answer(self, client, what):
        """client has nothing to read yet (the job is held: whatever is
        not there now comes only after the release)."""
        chunk = client.buf or None
        # (a socket with a timeout polls for that long even with
        # MSG_DONTWAIT: a short grace instead)
        client.sock.settimeout(NO_ANSWER_GRACE)
        try:
            chunk = chunk or client.sock.recv(65536)
        except (BlockingIOError, TimeoutError, socket.timeout):
            chunk = None
        finally:
            client.sock.settimeout(srv.SOCK_TIMEOUT)
        self.assertIsNone(chunk, f"{what} was answered while the job was held: {chunk!r}")

    def subjects(self, c):
        resp, tagged = c.command("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
                                 timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        out = []
        for r in resp:
            m = re.search(rb"UID (\d+).*Subject: message (\d+)", r, re.S)
            if m:
                out.append((int(m.group(1)), int(m.group(2))))
            elif re.search(rb"UID (\d+)", r):
                out.append((int(re.search(rb"UID (\d+)", r).group(1)), None))
        return out

    def start_expunge(self, uid):
        a = self.raw_login("alice", "INBOX")
        resp, tagged = a.command(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.hold_job()
        a.send("X1 EXPUNGE\r\n")
        self.wait_job_held()
        return a


class HeldExpungeTest(HeldJobCase):
    def test_others_served_while_expunge_works(self):
        a = self.start_expunge(2)
        # Another user's NOOP, another session's FETCH of the same
        # mailbox (from the old file, unchanged until the commit).
        b = self.raw_login("bob", "INBOX")
        resp, tagged = b.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c = self.raw_login("alice", "INBOX")
        resp, tagged = c.command("FETCH 1999 (BODY[HEADER.FIELDS (SUBJECT)])")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"Subject: message 1999", b"".join(resp))
        resp, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # An APPEND into the busy mailbox waits.
        d = self.raw_login("alice")
        msg = b"From: late@example.org\r\nSubject: appended late\r\n\r\nhello\r\n"
        d.send(b"D1 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        # The server has read the APPEND once the same session answers
        # nothing else: another session's NOOP goes round the loop.
        resp, tagged = b.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.no_answer(a, "the EXPUNGE")
        self.no_answer(d, "the APPEND into the busy mailbox")
        self.release_job()
        untagged, tagged = a.read_tagged("X1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"* 2 EXPUNGE\r\n", untagged)
        untagged, tagged = d.read_tagged("D1", timeout=WAIT)
        self.assertRegex(tagged, rb"^OK \[APPENDUID \d+ %d\]" % (COUNT + 1))
        # Every session agrees on the result.
        resp, tagged = c.command("NOOP")
        self.assertIn(b"* 2 EXPUNGE\r\n", resp)
        got = self.subjects(c)
        want = [(u, u) for u in range(1, COUNT + 1) if u != 2]
        self.assertEqual(got[:-1], want)
        self.assertEqual(got[-1][0], COUNT + 1)
        resp, tagged = c.command(f"UID FETCH {COUNT + 1} (BODY.PEEK[TEXT])")
        self.assertIn(b"hello", b"".join(resp))
        # And after a restart (the index and the file agree).
        self.server.restart()
        self.port = self.server.port
        e = self.raw_login("alice", "INBOX")
        self.assertEqual(self.subjects(e)[:-1], want)

    def test_store_and_fetch_seen_while_busy(self):
        a = self.start_expunge(3)
        c = self.raw_login("alice", "INBOX")
        # FETCH BODY[] sets \Seen: in memory at once, on disk after.
        resp, tagged = c.command("FETCH 10 (BODY[TEXT])")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # A STORE waits for the job.
        c.send("S1 STORE 11 +FLAGS (\\Flagged)\r\n")
        b = self.raw_login("bob", "INBOX")
        resp, tagged = b.command("NOOP")
        self.no_answer(c, "the STORE into the busy mailbox")
        self.release_job()
        untagged, tagged = a.read_tagged("X1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        untagged, tagged = c.read_tagged("S1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.server.restart()
        self.port = self.server.port
        e = self.raw_login("alice", "INBOX")
        resp, tagged = e.command("UID FETCH 10:11 (FLAGS)")
        flags = b"".join(resp)
        self.assertRegex(flags, rb"UID 10 FLAGS \(\\Seen\)|FLAGS \(\\Seen\) UID 10")
        self.assertIn(b"\\Flagged", flags)

    def test_kill_during_expunge_loses_nothing(self):
        self.start_expunge(5)
        self.server.proc.kill()
        self.server.proc.wait()
        self.server.proc = None
        self.release_job()
        self.server.start()
        self.port = self.server.port
        e = self.raw_login("alice", "INBOX")
        got = self.subjects(e)
        # Not committed: every message is there once, with its UID.
        self.assertEqual(got, [(u, u) for u in range(1, COUNT + 1)])
        # And the expunge goes through now.
        resp, tagged = e.command("EXPUNGE", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(self.subjects(e), [(u, u) for u in range(1, COUNT + 1) if u != 5])

    def test_session_gone_while_expunge_works(self):
        a = self.start_expunge(7)
        a.close()
        c = self.raw_login("alice", "INBOX")
        self.release_job()
        self.assertTrue(self.server.wait_log(r"expunged 1 message", timeout=WAIT),
                        self.server.log_text())
        resp, tagged = c.command("NOOP")
        self.assertIn(b"* 7 EXPUNGE\r\n", resp)
        self.assertEqual(self.subjects(c), [(u, u) for u in range(1, COUNT + 1) if u != 7])

    def test_sigterm_while_expunge_works(self):
        self.start_expunge(9)
        proc = self.server.proc
        proc.send_signal(15)
        time.sleep(0.2)
        self.release_job()
        self.assertEqual(proc.wait(WAIT), 0, self.server.log_text())
        self.server.proc = None
        self.server._reader.join(5)
        self.assertFalse(os.path.exists(self.server.mailbox_path("alice") + ".tmp"))
        self.server.start()
        self.port = self.server.port
        e = self.raw_login("alice", "INBOX")
        # The stop waited for the work, which ends with the renames
        # (storage.h, job_abort): the expunge asked for stands, whole,
        # as after a crash at that instant; every other message is
        # there once, with its UID.
        self.assertEqual(self.subjects(e), [(u, u) for u in range(1, COUNT + 1) if u != 9])


class HeldSwitchTest(HeldJobCase):
    """The expunge's work held after its renames (the hook's named point
    "expunge-switched"): the file on disk is the new one, the mailbox
    busy with the expunge until the commit."""

    def test_fetch_of_a_message_being_expunged(self):
        a = self.raw_login("alice", "INBOX")
        resp, tagged = a.command("UID STORE 5 +FLAGS.SILENT (\\Deleted)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        b = self.raw_login("alice", "INBOX")
        with open(self.hold, "w") as f:
            f.write("expunge-switched\n")
        os.chmod(self.hold, 0o644)
        a.send("X1 EXPUNGE\r\n")
        deadline = time.monotonic() + WAIT
        while not os.path.exists(self.hold + ".held") and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertTrue(os.path.exists(self.hold + ".held"), self.server.log_text())
        # Message 5 is being expunged (its data may be gone already on
        # Maildir): left out, the others answered, OK [EXPUNGEISSUED]
        # (RFC 2180 4.1, as for one another session expunged).
        resp, tagged = b.command("FETCH 4:6 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
                                 timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK [EXPUNGEISSUED]"), tagged)
        uids = sorted(int(m.group(1)) for r in resp for m in [re.search(rb"UID (\d+)", r)] if m)
        self.assertEqual(uids, [4, 6])
        self.release_job()
        resp, tagged = a.read_tagged("X1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = b.command("NOOP")
        self.assertIn(b"* 5 EXPUNGE\r\n", resp)
        self.assertNotIn(" error:", self.server.log_text())


def first_mailbox():
    """A second mailbox of alice's, "first", without an index: big enough
    (over FLAT_FIRST_BUILD_JOB_MIN) that its first open is a job."""
    return "".join(f"From: x@example.org\nSubject: first {i}\n{'w' * 70}\n" * 1
                   + f"{'v' * 70}\n" * 20 + ".\n" for i in range(1, 1201))


class HeldFirstOpenTest(HeldJobCase):
    """The first open of a mailbox without an index scans it in a job."""

    def setUp(self):
        super().setUp()
        path = os.path.join(self.server.user_dir("alice"), "first.mail")
        with open(path, "w") as f:
            f.write(first_mailbox())
        self.server.give_to_server()

    def start_open(self, command):
        self.hold_job()
        a = self.raw_login("alice")
        a.send(f"O1 {command}\r\n")
        self.assertTrue(self.server.wait_log(r"alice/first: first open in a job", timeout=WAIT),
                        self.server.log_text())
        return a

    def test_others_served_while_first_open_works(self):
        a = self.start_open("SELECT first")
        b = self.raw_login("bob", "INBOX")
        resp, tagged = b.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # Another session's STATUS of the same mailbox waits too.
        c = self.raw_login("alice")
        c.send("S1 STATUS first (MESSAGES UIDNEXT)\r\n")
        resp, tagged = b.command("NOOP")
        self.no_answer(a, "the SELECT")
        self.no_answer(c, "the STATUS")
        self.release_job()
        untagged, tagged = a.read_tagged("O1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"* 1200 EXISTS\r\n", untagged)
        uidv = re.search(rb"UIDVALIDITY (\d+)", b"".join(untagged)).group(1)
        untagged, tagged = c.read_tagged("S1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"MESSAGES 1200 UIDNEXT 1201", b"".join(untagged))
        resp, tagged = a.command("FETCH 1200 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn(b"Subject: first 1200", b"".join(resp))
        # The index it wrote is the mailbox's after a restart.
        self.server.restart()
        self.port = self.server.port
        e = self.raw_login("alice")
        resp, tagged = e.command("SELECT first")
        self.assertIn(b"* 1200 EXISTS\r\n", resp)
        self.assertIn(b"UIDVALIDITY " + uidv, b"".join(resp))

    def test_kill_during_first_open_loses_nothing(self):
        self.start_open("EXAMINE first")
        self.server.proc.kill()
        self.server.proc.wait()
        self.server.proc = None
        self.release_job()
        self.server.start()
        self.port = self.server.port
        e = self.raw_login("alice")
        resp, tagged = e.command("SELECT first", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"* 1200 EXISTS\r\n", resp)

    def test_session_gone_while_first_open_works(self):
        a = self.start_open("SELECT first")
        a.close()
        self.release_job()
        c = self.raw_login("alice")
        resp, tagged = c.command("SELECT first", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"* 1200 EXISTS\r\n", resp)


if __name__ == "__main__":
    unittest.main()
