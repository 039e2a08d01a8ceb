"""Helpers for the SMTP end-to-end tests: an imapserver with the SMTP
listener inside (smtp.enabled = true, port 0), or an imapserver plus the
stand-alone smtpmail on the same config file and storage; a raw SMTP
client for exact replies and pipelining.

Builds on tests/e2e/server.py (not changed here). The smtpmail binary comes
from $SMTPMAIL (tests/run.sh sets it), else build/smtpmail beside the
imapserver binary."""

import os
import re
import socket
import smtplib
import threading

from server import (HOST, SOCK_TIMEOUT, SLOW, ImapServer, ServerTestCase, imaplib_fetches,
                    server_binary)

_SMTP_LISTEN_RE = r"smtp listening on 127\.0\.0\.1:(\d+)"
_SUBMISSION_LISTEN_RE = r"\bsubmission listening on 127\.0\.0\.1:(\d+)"
_SUBMISSIONS_LISTEN_RE = r"\bsubmissions listening on 127\.0\.0\.1:(\d+)"

# The trace headers smtpmail puts in front of every message (RFC 5321 4.4).
TRACE_RE = re.compile(
    rb"Return-Path: <(?P<from>[^>\r\n]*)>\r\n"
    rb"Received: from (?P<helo>[^ \r\n]+) \(\[(?P<ip>[^\]\r\n]+)\]\)\r\n"
    rb"\tby (?P<by>[^ \r\n]+) with (?P<proto>E?SMTP(?:SA|A|S)?) id (?P<id>[^\r\n;]+)"
    rb"(?:\r\n\tfor <(?P<for>[^>\r\n]+)>)?; (?P<date>[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} "
    rb"\d\d:\d\d:\d\d [+-]\d{4})\r\n")


def smtpmail_binary():
    path = os.environ.get("SMTPMAIL", "")
    if not path:
        path = os.path.join(os.path.dirname(server_binary()), "smtpmail")
    return os.path.abspath(path)


def free_port():
    """A loopback port that is free now (for the keys where 0 means off,
    such as smtp.submission_port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def add_smtp_section(server, enabled, keys=None):
    """Appends an smtp section (port 0, domain localhost) to server's config."""
    values = {"enabled": "true" if enabled else "false", "address": '"127.0.0.1"',
              "port": "0", "domain": '"localhost"'}
    for k, v in (keys or {}).items():
        values[k] = f'"{v}"' if isinstance(v, str) else str(v)
    text = " ".join(f"{k} = {v};" for k, v in values.items())
    with open(server.conf, "a") as f:
        f.write(f"smtp: {{ {text} }};\n")


class Smtpmail(ImapServer):
    """The stand-alone smtpmail on the folder and config file of an
    ImapServer (it only borrows them: cleanup() stops the process and
    leaves the folder to its owner). start() returns the SMTP port."""

    def __init__(self, imap):  # pylint: disable=super-init-not-called
        self.binary = smtpmail_binary()
        self.dir = imap.dir
        self.root = imap.root
        self.conf = imap.conf
        self.users = imap.users
        self.proc = None
        self.port = None
        self.logs = []
        self._lock = threading.Lock()
        self._reader = None

    def cleanup(self):
        self.stop(check=False)


class RawSmtp:
    """An SMTP client on a plain socket: exact replies, pipelining."""

    def __init__(self, port, timeout=SOCK_TIMEOUT):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def readline(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    line, self.buf = self.buf, b""
                    return line
                self.buf += chunk
        finally:
            if timeout is not None:
                self.sock.settimeout(SOCK_TIMEOUT)
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def reply(self, timeout=None):
        """One whole reply: (code, [text lines]); (None, []) at end of file."""
        lines = []
        for _ in range(1000):
            line = self.readline(timeout)
            if not line:
                return None, lines
            if not line.endswith(b"\r\n") or len(line) < 5 or line[3:4] not in (b" ", b"-"):
                raise AssertionError(f"malformed SMTP reply line {line!r}")
            lines.append(line[4:-2].decode("utf-8", "replace"))
            if line[3:4] == b" ":
                return int(line[:3]), lines
        raise AssertionError("reply of more than 1000 lines")

    def command(self, cmd):
        self.send(cmd + "\r\n")
        return self.reply()

    def at_eof(self, timeout=5.0):
        """True if the server closes the connection (reads what is left)."""
        self.sock.settimeout(timeout * SLOW)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


class SmtpTestCase(ServerTestCase):
    """One imapserver per test with SMTP: MODE "inprocess" (the listener
    inside imapserver) or "standalone" (smtpmail beside it, same config).
    SMTP holds extra smtp.* keys. self.smtp_port is the SMTP port.

    SUBMISSION = True also opens smtp.submission_port, and with
    SUBMISSIONS = True smtp.submissions_port (which needs a certificate:
    configure() adds one); self.submission_port / self.submissions_port
    are read from the log lines. configure(server) is called once the
    config is written, before the start: a subclass appends to it there."""

    MODE = "inprocess"
    SMTP = None
    SUBMISSION = False
    SUBMISSIONS = False

    def configure(self, server):
        pass

    def setUp(self):
        from server import seed_text
        boxes = {u: (seed_text() if t is None else t) for u, t in self.MAILBOXES.items()}
        self._clients = []
        self.submission_port = self.submissions_port = None
        self.smtpmail = None
        # A port free_port() found free can be handed by the kernel to a
        # listener of port 0 before the server binds it (the server's own
        # IMAP port included): then the start fails with "Address already
        # in use" and is tried again, with new ports, at most 3 times.
        for attempt in range(3):
            self.server = ImapServer(boxes, limits=self.LIMITS)
            self.addCleanup(self.server.cleanup)
            keys = dict(self.SMTP or {})
            if self.SUBMISSION:
                keys.setdefault("submission_port", free_port())
            if self.SUBMISSIONS:
                keys.setdefault("submissions_port", free_port())
            add_smtp_section(self.server, self.MODE == "inprocess", keys)
            self.configure(self.server)
            try:
                self.server.start()
                break
            except RuntimeError as e:
                if (attempt == 2 or not (self.SUBMISSION or self.SUBMISSIONS)
                        or "Address already in use" not in str(e)):
                    raise
        self.port = self.server.port
        if self.MODE == "inprocess":
            line = self.server.wait_log(_SMTP_LISTEN_RE, 5.0)
            self.assertIsNotNone(line, "no 'smtp listening on' line; log:\n"
                                 + self.server.log_text())
            self.smtp_port = int(re.search(_SMTP_LISTEN_RE, line).group(1))
            self.assertNotEqual(self.smtp_port, self.port)
        else:
            if not os.access(smtpmail_binary(), os.X_OK):
                self.skipTest(f"{smtpmail_binary()} is not built")
            self.smtpmail = Smtpmail(self.server)
            self.addCleanup(self.smtpmail.cleanup)
            self.smtp_port = self.smtpmail.start()
        proc = self.smtpmail if self.smtpmail is not None else self.server
        if self.SUBMISSION:
            self.submission_port = self._logged_port(proc, _SUBMISSION_LISTEN_RE)
        if self.SUBMISSIONS:
            self.submissions_port = self._logged_port(proc, _SUBMISSIONS_LISTEN_RE)

    def _logged_port(self, proc, pattern):
        line = proc.wait_log(pattern, 5.0)
        self.assertIsNotNone(line, f"no {pattern!r} line; log:\n" + proc.log_text())
        return int(re.search(pattern, line).group(1))

    def tearDown(self):
        if self.smtpmail is not None:
            alive = self.smtpmail.alive()
            status = self.smtpmail.stop(check=False)
            log = self.smtpmail.log_text()
            self.assertTrue(alive, "smtpmail died during the test; log:\n" + log)
            self.assertEqual(status, 0, "bad smtpmail exit status after SIGTERM; log:\n" + log)
            self.assertEqual(self.smtpmail.sanitizer_lines(), [], "sanitizer report:\n" + log)
            if not self.ALLOW_LOG_ERRORS:
                self.assertEqual(self.smtpmail.error_lines(), [],
                                 "unexpected error lines in the smtpmail log")
        super().tearDown()

    def smtp_log_lines(self):
        proc = self.smtpmail if self.smtpmail is not None else self.server
        return proc.log_lines()

    # -- clients

    def smtp(self):
        s = smtplib.SMTP(HOST, self.smtp_port, timeout=SOCK_TIMEOUT * SLOW)
        self._clients.append(_SmtpCloser(s))
        return s

    def raw_smtp(self, greeting=True, port=None):
        c = RawSmtp(self.smtp_port if port is None else port)
        self._clients.append(c)
        if greeting:
            code, lines = c.reply()
            self.assertEqual(code, 220, lines)
        return c

    # -- IMAP side

    def inbox_count(self, user="alice"):
        m = self.imap(user)
        typ, data = m.select("INBOX", readonly=True)
        self.assertEqual(typ, "OK", data)
        n = int(data[0])
        m.logout()
        return n

    def fetch_body(self, seq, user="alice"):
        """BODY[] of message seq (a number or "*") of user's INBOX."""
        m = self.imap(user)
        typ, data = m.select("INBOX", readonly=True)
        self.assertEqual(typ, "OK", data)
        typ, data = m.fetch(str(seq), "(BODY.PEEK[])")
        self.assertEqual(typ, "OK", data)
        f = imaplib_fetches(data)
        self.assertEqual(len(f), 1, data)
        body = list(f.values())[0]["BODY[]"]
        m.logout()
        return body

    def assert_trace_then(self, body, message, mail_from, rcpt=None, proto=b"ESMTP"):
        """body is the trace headers followed by exactly message."""
        m = TRACE_RE.match(body)
        self.assertIsNotNone(m, f"no trace headers at the start of {body[:400]!r}")
        self.assertEqual(m.group("from"), mail_from.encode())
        self.assertEqual(m.group("by"), b"localhost")
        self.assertEqual(m.group("ip"), b"127.0.0.1")
        self.assertEqual(m.group("proto"), proto)
        if rcpt is not None:
            self.assertEqual(m.group("for"), rcpt.encode())
        rest = body[m.end():]
        if rest != message:
            # Show where they differ rather than 10 MB of text.
            i = next((k for k in range(min(len(rest), len(message))) if rest[k] != message[k]),
                     min(len(rest), len(message)))
            self.fail(f"message differs at octet {i} (lengths {len(rest)} and {len(message)}): "
                      f"got {rest[max(0, i - 40):i + 40]!r}, "
                      f"want {message[max(0, i - 40):i + 40]!r}")
        return m


class _SmtpCloser:
    def __init__(self, s):
        self.s = s

    def close(self):
        try:
            self.s.close()
        except Exception:
            pass
