"""No command pays a network-stack stall (issue 19): a client with Nagle's
algorithm on that sends a literal and its closing CRLF in two writes
(Python's imaplib does, for APPEND) must not wait for the server's delayed
ACK (40 ms on Linux). Each case is a ratio within one run against the
same bytes sent in one write, never an absolute time: the server
acknowledges input at once when it has no answer yet to carry the ACK.
The same for SMTP: the DATA terminator arriving in a write of its own."""

import imaplib
import socket
import statistics
import time

from server import HOST, SOCK_TIMEOUT, ServerTestCase
from smtp_support import SmtpTestCase
from test_maildir import MaildirMixin

MSG = b"From: a@example.org\r\nSubject: latency\r\n\r\n" + b"x" * 3000 + b"\r\n"
# SMTP: lines of at most 1000 octets (RFC 5321 4.5.3.1.6).
SMTP_MSG = b"From: a@example.org\r\nSubject: latency\r\n\r\n" + (b"x" * 70 + b"\r\n") * 40
RUNS = 15
# Before the fix the ratio was about 80 (44 ms against 0.5 ms); a stall
# of 40 ms per command cannot hide under this bound.
MAX_RATIO = 8.0


def median_of(fn, runs=RUNS):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class RawNagle:
    """A plain socket client with Nagle's algorithm on (the default)."""

    def __init__(self, port):
        self.s = socket.create_connection((HOST, port), timeout=SOCK_TIMEOUT)
        self.f = self.s.makefile("rb")
        self.n = 0

    def line(self):
        return self.f.readline()

    def until(self, prefix):
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError(prefix)
            if line.startswith(prefix):
                return line

    def close(self):
        self.s.close()


class TestImapLiteralLatency(ServerTestCase):

    def test_imaplib_append_costs_what_one_write_costs(self):
        m = self.imap()
        raw = RawNagle(self.port)
        self.addCleanup(raw.close)
        raw.line()
        raw.s.sendall(b"a LOGIN alice alice123\r\n")
        raw.until(b"a ")

        def one_write():
            # non-synchronizing literal: command, literal and CRLF at once
            raw.n += 1
            tag = f"w{raw.n}".encode()
            raw.s.sendall(tag + b" APPEND INBOX {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
            line = raw.until(tag + b" ")
            assert line.startswith(tag + b" OK"), line

        def two_writes_sync():
            # what imaplib does: {n}, wait for "+", literal, then CRLF alone
            raw.n += 1
            tag = f"s{raw.n}".encode()
            raw.s.sendall(tag + b" APPEND INBOX {%d}\r\n" % len(MSG))
            raw.until(b"+")
            raw.s.sendall(MSG)
            raw.s.sendall(b"\r\n")
            line = raw.until(tag + b" ")
            assert line.startswith(tag + b" OK"), line

        def imaplib_append():
            typ, data = m.append("INBOX", None, None, MSG)
            assert typ == "OK", data

        base = median_of(one_write)
        sync = median_of(two_writes_sync)
        lib = median_of(imaplib_append)
        self.assertLess(sync / base, MAX_RATIO, f"{sync * 1000:.2f} ms against "
                        f"{base * 1000:.2f} ms in one write")
        self.assertLess(lib / base, MAX_RATIO, f"imaplib {lib * 1000:.2f} ms against "
                        f"{base * 1000:.2f} ms in one write")

    def test_command_line_split_in_two_writes(self):
        # a LOGIN whose password is a literal, sent in pieces
        raw = RawNagle(self.port)
        self.addCleanup(raw.close)
        raw.line()
        raw.s.sendall(b"a LOGIN alice alice123\r\ns SELECT INBOX\r\n")
        raw.until(b"s ")

        def one_write():
            raw.s.sendall(b"n1 SEARCH SUBJECT {7+}\r\nlatency\r\n")
            raw.until(b"n1 ")

        def split():
            raw.s.sendall(b"n2 SEARCH SUBJECT {7+}\r\nlatency")
            raw.s.sendall(b"\r\n")
            raw.until(b"n2 ")

        base = median_of(one_write)
        two = median_of(split)
        self.assertLess(two / base, MAX_RATIO,
                        f"{two * 1000:.2f} ms against {base * 1000:.2f} ms")


class TestImapLiteralLatencyMaildir(MaildirMixin, TestImapLiteralLatency):
    """The same on Maildir storage."""


class TestSmtpDataLatency(SmtpTestCase):

    def test_data_terminator_in_its_own_write(self):
        c = RawNagle(self.smtp_port)
        self.addCleanup(c.close)
        c.line()
        c.s.sendall(b"EHLO client.example\r\n")
        c.until(b"250 ")

        def deliver(split):
            c.s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n")
            c.until(b"250")
            c.until(b"250")
            c.until(b"354")
            if split:
                c.s.sendall(SMTP_MSG)
                c.s.sendall(b".\r\n")
            else:
                c.s.sendall(SMTP_MSG + b".\r\n")
            line = c.until(b"250")
            assert line.startswith(b"250"), line

        base = median_of(lambda: deliver(False))
        two = median_of(lambda: deliver(True))
        self.assertLess(two / base, MAX_RATIO,
                        f"{two * 1000:.2f} ms against {base * 1000:.2f} ms in one write")
