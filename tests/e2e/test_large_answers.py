"""Large answers complete, whoever reads them and however (issue: a FETCH
1:* that stopped half-way after a restart and never resumed).

A mailbox filled over IMAP, as clients fill it (pipelined APPENDs of 2-6 KB
messages), then, right after a restart, FETCH 1:* (UID FLAGS) and FETCH 1:*
(BODY.PEEK[]) read by a fast reader, a slow one and one that reads in odd
small pieces, on both backends. Every answer must end with its tagged OK
and hold every message, within a bound. And the root cause of that stall,
exactly (TestRoundsEndingAtTheMark): a round of output that ends at the
high-water mark and leaves the socket with nothing queued."""

import os
import random
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server as srv  # noqa: E402
from server import ServerTestCase, SLOW  # noqa: E402
import test_maildir  # noqa: E402

MESSAGES = 3000
ANSWER_TIMEOUT = 60.0 * SLOW   # seconds for one whole answer


def fill(port, count):
    """APPENDs count messages of 2-6 KB into "box", 50 per write."""
    s = socket.create_connection((srv.HOST, port), timeout=30 * SLOW)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a LOGIN alice alice123\r\nb CREATE box\r\n")
    while not f.readline().startswith(b"b "):
        pass
    rnd = random.Random(7)
    i = 0
    while i < count:
        out = []
        for _ in range(min(50, count - i)):
            body = ("x" * 70 + "\r\n") * rnd.randint(27, 83)
            msg = (f"From: user{i % 9}@example.org\r\nSubject: message {i}\r\n\r\n"
                   + body).encode()
            out.append(b"A%d APPEND box {%d+}\r\n" % (i, len(msg)) + msg + b"\r\n")
            i += 1
        s.sendall(b"".join(out))
        done = 0
        while done < len(out):
            line = f.readline()
            if not line:
                raise AssertionError("connection closed while appending")
            if line.startswith(b"A"):
                if b" OK" not in line:
                    raise AssertionError(line)
                done += 1
    s.close()


class Reader:
    """Reads an answer the way a client might: in pieces of a given size,
    with a pause after each, until the tagged line of tag."""

    def __init__(self, port, piece, pause):
        self.s = socket.create_connection((srv.HOST, port), timeout=ANSWER_TIMEOUT)
        self.piece = piece
        self.pause = pause
        self.data = b""

    def until_tagged(self, tag):
        """The answer up to and with the tagged line of tag."""
        deadline = time.monotonic() + ANSWER_TIMEOUT
        want = b"\r\n" + tag + b" "
        scanned = 0
        while True:
            # self.data starts at a line: a CRLF in front finds a tagged
            # line at its very start too.
            buf = b"\r\n" + self.data
            i = buf.find(want, max(0, scanned - len(want)))
            if i >= 0:
                j = buf.find(b"\r\n", i + 2)
                if j >= 0:
                    answer, self.data = buf[2:j + 2], buf[j + 2:]
                    return answer
                scanned = i
            else:
                scanned = len(buf)
            if time.monotonic() > deadline:
                raise AssertionError(f"no tagged {tag!r} within {ANSWER_TIMEOUT:.0f} s: the "
                                     f"answer stopped after {len(self.data)} octets")
            try:
                chunk = self.s.recv(self.piece)
            except socket.timeout:
                raise AssertionError(f"no tagged {tag!r}: nothing came for {ANSWER_TIMEOUT:.0f}"
                                     f" s, the answer stopped after {len(self.data)} "
                                     "octets") from None
            if not chunk:
                raise AssertionError("the server closed the connection in the middle of "
                                     f"an answer, after {len(self.data)} octets")
            self.data += chunk
            if self.pause:
                time.sleep(self.pause)

    def command(self, tag, cmd):
        self.s.sendall(tag + b" " + cmd + b"\r\n")
        return self.until_tagged(tag)

    def close(self):
        self.s.close()


class TestLargeAnswers(ServerTestCase):

    # (name, piece size, pause after each piece in seconds)
    READERS = [
        ("fast", 65536, 0),
        ("slow", 4096, 0.0005),
        ("odd pieces", 997, 0),
    ]

    def test_every_answer_completes_after_a_restart(self):
        fill(self.port, MESSAGES)
        for name, piece, pause in self.READERS:
            with self.subTest(reader=name):
                self.server.restart()
                self.port = self.server.port
                r = Reader(self.port, piece, pause)
                try:
                    greeting = r.s.makefile("rb", buffering=0).readline()
                    self.assertTrue(greeting.startswith(b"* OK"), greeting)
                    self.assertIn(b"a OK", r.command(b"a", b"LOGIN alice alice123"))
                    sel = r.command(b"b", b"SELECT box")
                    self.assertIn(b"* %d EXISTS" % MESSAGES, sel)
                    ans = r.command(b"c", b"FETCH 1:* (UID FLAGS)")
                    self.assertIn(b"\r\nc OK", ans)
                    self.assertEqual(ans.count(b" FETCH (UID "), MESSAGES)
                    ans = r.command(b"d", b"FETCH 1:* (BODY.PEEK[])")
                    self.assertIn(b"\r\nd OK", ans)
                    self.assertEqual(ans.count(b" FETCH (BODY[] {"), MESSAGES)
                    self.assertIn(b"Subject: message %d\r\n" % (MESSAGES - 1), ans)
                finally:
                    r.close()
        self.assertEqual(self.server.error_lines(), [])


class TestMaildirLargeAnswers(test_maildir.MaildirMixin, TestLargeAnswers):
    pass


# The server writes a big answer in rounds: it queues FETCH lines until
# its output reaches the high-water mark (CLIENT_OUT_HIGH_WATER, 256 KiB),
# then waits for the output to drain and queues the next round.
HIGH_WATER = 256 * 1024


class TestRoundsEndingAtTheMark(ServerTestCase):
    """The stall of the issue, at its root: when a round of FETCH lines
    ends exactly at the high-water mark and the socket takes all of it in
    one write, nothing is left queued, so no "writable" event ever comes
    again; the server must still go on with the next round. Before the
    connection layer called the command back after such a write, the
    answer stopped after exactly 262,144 octets and never resumed. Only
    some mailboxes show it (the lines must add up exactly to the mark):
    here every line is made the same length, a divisor of the mark, by
    a keyword of the right length."""

    COUNT = 20000
    FIRST = 10000    # from here on, numbers have five digits
    MAILBOXES = {"alice": "".join(srv.Mail([("From", "a@localhost"), ("Subject", f"m{i}")],
                                           ["x"]).lab for i in range(COUNT))}

    def answer(self, line_len):
        # "* 12345 FETCH (UID 12345 FLAGS (kw))\r\n" is 36 octets and the keyword
        kw = b"k" * (line_len - 36)
        r = Reader(self.port, 65536, 0)
        try:
            r.s.makefile("rb", buffering=0).readline()
            self.assertIn(b"a OK", r.command(b"a", b"LOGIN alice alice123"))
            # The SELECT takes \Recent: after it, the lines hold the keyword only.
            self.assertIn(b"b OK", r.command(b"b", b"SELECT INBOX"))
            self.assertIn(b"c OK", r.command(b"c", b"STORE 1:* FLAGS.SILENT (" + kw + b")"))
            self.assertIn(b"d OK", r.command(b"d", b"CLOSE"))
            self.assertIn(b"e OK", r.command(b"e", b"EXAMINE INBOX"))
            ans = r.command(b"f", b"FETCH %d:* (UID FLAGS)" % self.FIRST)
        finally:
            r.close()
        lines = ans.split(b"\r\n")[:-2]
        self.assertEqual(len(lines), self.COUNT - self.FIRST + 1)
        self.assertEqual({len(x) + 2 for x in lines}, {line_len}, lines[:2])
        self.assertEqual(lines[-1], b"* %d FETCH (UID %d FLAGS (%s))" %
                         (self.COUNT, self.COUNT, kw))
        # Several whole rounds, each ending exactly at the mark.
        self.assertEqual(HIGH_WATER % line_len, 0)
        self.assertGreater(len(lines) * line_len, 2 * HIGH_WATER)

    def test_lines_of_64_octets(self):
        self.answer(64)

    def test_lines_of_128_octets(self):
        self.answer(128)


if __name__ == "__main__":
    unittest.main()
