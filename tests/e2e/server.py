"""Helpers for the end-to-end tests: start the real imapserver on an
ephemeral loopback port in a throw-away folder, talk to it with imaplib or
a raw socket, parse IMAP responses, and write mail in the lab's format.

Only the Python standard library is used. The server binary comes from
$IMAPSERVER (tests/run.sh sets it to $BUILD/imapserver)."""

import imaplib
import os
import pwd
import re
import shutil
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

# The daemons the tests start abort on a breach of the watch invariant
# (core/io/connection.h), so that no test passes over a stalled session.
os.environ.setdefault("IMAPSERVER_STRICT", "1")

HOST = "127.0.0.1"
USERS = {"alice": "alice123", "bob": "bob123"}
START_TIMEOUT = 10.0    # seconds to wait for "listening on"
STOP_TIMEOUT = 5.0      # seconds between SIGTERM and SIGKILL
SOCK_TIMEOUT = 10.0     # every socket operation of a test

# Under the sanitizers everything is a few times slower: timing bounds
# are multiplied by this.
SLOW = 3.0 if ("ASAN_OPTIONS" in os.environ or "UBSAN_OPTIONS" in os.environ) else 1.0

# $IMAPSERVER_WRAPPER, when set, is a command line the server runs under
# ("valgrind -q --error-exitcode=99 ...": make check-valgrind runs the
# large-answer tests that way); an error it finds makes the exit status
# that tearDown checks non-zero. Everything is much slower then.
WRAPPER = shlex.split(os.environ.get("IMAPSERVER_WRAPPER", ""))
if WRAPPER:
    SLOW = max(SLOW, 20.0)

# Started as root, the server refuses to serve without server.user (mail
# is never read or written as root). Tests run as root (CI does) therefore
# name this unprivileged user in every config and hand it the temporary
# folder at each start; tests/deps.sh creates it ("nobody" if it is
# missing).
SERVICE_USER = "imapserver"

_LISTEN_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
_SERVER_USER_RE = re.compile(r'^server:\s*\{[^}]*\buser\s*=\s*"([^"]*)"', re.M)
_SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                           r"runtime error:")


def server_binary():
    path = os.environ.get("IMAPSERVER", "")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "imapserver")
    return os.path.abspath(path)


def service_user():
    """The pwd entry of the user the server runs as when the tests run as
    root (SERVICE_USER, else "nobody"); None when they do not."""
    if os.geteuid() != 0:
        return None
    for name in (SERVICE_USER, "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    raise RuntimeError(f"running as root, but there is no user {SERVICE_USER!r} to run the "
                       "server as: run tests/deps.sh --test")


def server_group_line():
    """The config line that names the service user when running as root,
    else ""."""
    pw = service_user()
    return f'server: {{ user = "{pw.pw_name}"; }};\n' if pw is not None else ""


def without_server_group(conf_text):
    """conf_text without the line server_group_line() wrote, for a test
    that names its own server.user."""
    return "".join(line for line in conf_text.splitlines(True)
                   if not line.startswith("server: {"))


def give_to_server_user(folder, conf):
    """As root: makes folder and everything in it belong to the server.user
    that conf names (links themselves, never their targets), so that the
    server, once it dropped root, can read and write its mail. Does nothing
    when not root or when conf names no user."""
    if os.geteuid() != 0 or not os.path.exists(conf):
        return
    with open(conf) as f:
        m = _SERVER_USER_RE.search(f.read())
    if m is None:
        return
    pw = pwd.getpwnam(m.group(1))
    os.lchown(folder, pw.pw_uid, pw.pw_gid)
    for base, dirs, files in os.walk(folder):
        for name in dirs + files:
            try:
                os.lchown(os.path.join(base, name), pw.pw_uid, pw.pw_gid)
            except FileNotFoundError:
                pass  # a lock or temp file the running server removed


def server_user_ids(conf):
    """(uid, gid) of the server.user that conf names when running as root,
    else None."""
    if os.geteuid() != 0 or not os.path.exists(conf):
        return None
    with open(conf) as f:
        m = _SERVER_USER_RE.search(f.read())
    if m is None:
        return None
    pw = pwd.getpwnam(m.group(1))
    return pw.pw_uid, pw.pw_gid


# ---------------------------------------------------------------- lab format

def lab_message(headers, body_lines, blank_line=False):
    """One message as the lab's SMTP server writes it into mymailbox.mail:
    header lines, (optionally a blank line,) the body with dot-stuffing, and
    a line holding a single "."."""
    out = [f"{k}: {v}\n" for k, v in headers]
    if blank_line:
        out.append("\n")
    for line in body_lines:
        out.append(("." + line if line.startswith(".") else line) + "\n")
    out.append(".\n")
    return "".join(out)


def served_message(headers, body_lines):
    """The same message as IMAP serves it: CRLF, a blank line between the
    header and the body, dots unstuffed."""
    out = [f"{k}: {v}\r\n" for k, v in headers]
    out.append("\r\n")
    out.extend(line + "\r\n" for line in body_lines)
    return "".join(out).encode()


class Mail:
    def __init__(self, headers, body_lines, blank_line=False):
        self.headers = headers
        self.body_lines = body_lines
        self.blank_line = blank_line

    @property
    def lab(self):
        return lab_message(self.headers, self.body_lines, self.blank_line)

    @property
    def served(self):
        return served_message(self.headers, self.body_lines)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


# The mailbox most tests start with (alice's INBOX). Message 2 has body
# lines that start with "." (stored with one more "."), message 3 has a
# blank line between header and body already.
SEED = [
    Mail([("From", "alice@localhost"), ("To", "bob@localhost"), ("Subject", "hello"),
          ("Received", "2022-03-10 : 14 : 30")],
         ["body line"]),
    Mail([("From", "carol@localhost"), ("To", "alice@localhost"),
          ("Subject", "Meeting tomorrow"), ("Received", "2022-03-11 : 09 : 05")],
         ["Hi Alice,", ".hidden line starts with a dot", ".", "..two dots", "see you", "carol"]),
    Mail([("From", "bob@localhost"), ("To", "alice@localhost"), ("Subject", "Re: hello"),
          ("Received", "2022-03-12 : 18 : 45")],
         ["first", "", "second paragraph"], blank_line=True),
    Mail([("From", "dave@example.org"), ("To", "alice@localhost"),
          ("Subject", "Quarterly report"), ("Received", "2022-03-13 : 07 : 00")],
         ["numbers inside", "line two", "line three"]),
]


def seed_text(mails=SEED):
    return "".join(m.lab for m in mails)


# ---------------------------------------------------------------- the server

class ImapServer:
    """One imapserver process in its own temp folder:

        <tmp>/imapserver.conf   imap.port 0, flat storage, passwd-file auth
        <tmp>/users             alice alice123, bob bob123
        <tmp>/mail/<user>/mymailbox.mail   seeded as asked

    Paths in the config are relative (to the config's folder). Run as
    root, the config names server.user (service_user()) and start() gives
    the folder to that user."""

    def __init__(self, mailboxes=None, limits=None, log_level="debug"):
        self.binary = server_binary()
        self.dir = tempfile.mkdtemp(prefix="imapserver-e2e-")
        self.root = os.path.join(self.dir, "mail")
        self.conf = os.path.join(self.dir, "imapserver.conf")
        self.users = os.path.join(self.dir, "users")
        self.proc = None
        self.port = None
        self.logs = []          # one list of lines per run (restarts)
        self._lock = threading.Lock()
        self._reader = None
        os.makedirs(self.root)
        with open(self.users, "w") as f:
            for user, password in USERS.items():
                f.write(f"{user} {password}\n")
        for user, text in (mailboxes or {}).items():
            self.write_mailbox(user, text)
        lim = {"auth_fail_delay": 0}
        lim.update(limits or {})
        lim_text = " ".join(f"{k} = {v};" for k, v in lim.items())
        with open(self.conf, "w") as f:
            f.write("# written by tests/e2e/server.py\n"
                    "imap: { address = \"127.0.0.1\"; port = 0; };\n"
                    "storage: { backend = \"flat\"; root = \"mail\"; };\n"
                    "auth: { backend = \"passwd-file\"; file = \"users\"; };\n"
                    f"limits: {{ {lim_text} }};\n"
                    f"log: {{ level = \"{log_level}\"; }};\n"
                    + server_group_line())

    # -- files

    def user_dir(self, user):
        return os.path.join(self.root, user)

    def mailbox_path(self, user):
        return os.path.join(self.root, user, "mymailbox.mail")

    def write_mailbox(self, user, text):
        """Writes user's mailbox file (as another tool would, also while
        the server runs); as root, hands it to the server's user."""
        owner = server_user_ids(self.conf)
        path = self.mailbox_path(user)
        if not os.path.isdir(self.user_dir(user)):
            os.makedirs(self.user_dir(user), exist_ok=True)
            if owner is not None:
                os.chown(self.user_dir(user), *owner)
        if owner is not None and not os.path.exists(path):
            # A running server must never see the file owned by root: it
            # appears empty and already the server user's.
            tmp = os.path.join(self.dir, ".new-mailbox")
            with open(tmp, "w"):
                pass
            os.chown(tmp, *owner)
            os.rename(tmp, path)
        with open(path, "w") as f:
            f.write(text)
        self.give_to_server()

    def give_to_server(self):
        """As root: gives everything in the folder to the server's user
        (start() does it; a test that writes into the store while the
        server runs calls it after writing)."""
        give_to_server_user(self.dir, self.conf)

    def read_mailbox(self, user):
        with open(self.mailbox_path(user), "rb") as f:
            return f.read()

    # -- process

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError(f"{self.binary} is missing: build it first (make)")
        self.give_to_server()
        self.logs.append([])
        ready = threading.Event()
        lines = self.logs[-1]
        self.port = None
        self.proc = subprocess.Popen(WRAPPER + [self.binary, "-c", self.conf, "-f"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, cwd=self.dir)

        def read(stream):
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self._lock:
                    lines.append(line)
                m = _LISTEN_RE.search(line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    ready.set()
            stream.close()
            ready.set()

        self._reader = threading.Thread(target=read, args=(self.proc.stderr,), daemon=True)
        self._reader.start()
        ready.wait(START_TIMEOUT * SLOW)
        if self.port is None:
            self.stop(check=False)
            raise RuntimeError("server did not log 'listening on 127.0.0.1:PORT' within "
                               f"{START_TIMEOUT * SLOW:.0f} s; log:\n" + self.log_text())
        return self.port

    def stop(self, check=True):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT. Returns the exit status."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT * SLOW)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                if check:
                    raise AssertionError("server ignored SIGTERM for "
                                         f"{STOP_TIMEOUT * SLOW:.0f} s; log:\n" + self.log_text())
        if self._reader is not None:
            self._reader.join(5)
        if check and proc.returncode != 0:
            raise AssertionError(f"server exited with status {proc.returncode} after "
                                 "SIGTERM; log:\n" + self.log_text())
        return proc.returncode

    def restart(self):
        self.stop()
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self):
        try:
            self.stop(check=False)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- log

    def log_lines(self):
        with self._lock:
            return [line for run in self.logs for line in run]

    def log_text(self, last=80):
        lines = self.log_lines()
        return "\n".join(lines[-last:])

    def error_lines(self):
        return [line for line in self.log_lines() if " error: " in line]

    def sanitizer_lines(self):
        return [line for line in self.log_lines() if _SANITIZER_RE.search(line)]

    def wait_log(self, pattern, timeout=2.0):
        """Waits until a log line matches pattern (a regex); returns it."""
        deadline = time.monotonic() + timeout * SLOW
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if rx.search(line):
                    return line
            time.sleep(0.02)
        return None


class ServerTestCase(unittest.TestCase):
    """Starts one server per test. Subclasses set MAILBOXES (user -> lab
    text) and LIMITS, and ALLOW_LOG_ERRORS when a test means to provoke
    "error:" lines. tearDown stops the server with SIGTERM and checks the
    exit status, the absence of sanitizer reports and of "error:" lines."""

    MAILBOXES = {"alice": None}      # None = seed_text()
    LIMITS = None
    ALLOW_LOG_ERRORS = False

    def setUp(self):
        boxes = {u: (seed_text() if t is None else t) for u, t in self.MAILBOXES.items()}
        self.server = ImapServer(boxes, limits=self.LIMITS)
        self.addCleanup(self.server.cleanup)
        self._clients = []
        self.server.start()
        self.port = self.server.port

    def tearDown(self):
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        alive = self.server.alive()
        status = self.server.stop(check=False)
        self.assertTrue(alive, "the server died during the test; log:\n"
                        + self.server.log_text())
        self.assertEqual(status, 0, "bad exit status after SIGTERM; log:\n"
                         + self.server.log_text())
        san = self.server.sanitizer_lines()
        self.assertEqual(san, [], "sanitizer report; log:\n" + self.server.log_text())
        if not self.ALLOW_LOG_ERRORS:
            self.assertEqual(self.server.error_lines(), [], "unexpected error lines in the log")

    # -- clients

    def imap(self, user="alice", password=None, login=True):
        m = imaplib.IMAP4(HOST, self.port, timeout=SOCK_TIMEOUT)
        self._clients.append(_ImaplibCloser(m))
        if login:
            m.login(user, password or USERS[user])
        return m

    def raw(self, greeting=True):
        c = RawClient(self.port)
        self._clients.append(c)
        if greeting:
            line = c.readline()
            self.assertTrue(line.startswith(b"* OK"), line)
        return c

    def raw_login(self, user="alice", mailbox=None):
        c = self.raw()
        resp, tagged = c.command(f"LOGIN {user} {USERS[user]}")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        if mailbox is not None:
            resp, tagged = c.command(f"SELECT {mailbox}")
            self.assertTrue(tagged.startswith(b"OK"), tagged)
        return c

    # -- assertions

    def assertOK(self, result, what=""):
        typ, data = result
        self.assertEqual(typ, "OK", f"{what}: {data!r}")
        return data

    def assert_server_serves(self):
        """A new connection gets a greeting and can log in."""
        c = self.raw()
        resp, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("LOGOUT")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c.close()


class _ImaplibCloser:
    def __init__(self, m):
        self.m = m

    def close(self):
        try:
            self.m.shutdown()
        except Exception:
            pass


# ---------------------------------------------------------------- raw client

class RawClient:
    """A line/literal-aware IMAP client on a plain socket, for the tests
    that need exact bytes, timing or bad input."""

    def __init__(self, port, timeout=SOCK_TIMEOUT):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""
        self.tagn = 0
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        finally:
            if timeout is not None:
                self.sock.settimeout(SOCK_TIMEOUT)
        if not chunk:
            self.eof = True
        self.buf += chunk
        return chunk

    def readline(self, timeout=None):
        """One line with its CRLF; b"" at end of file."""
        while b"\n" not in self.buf:
            if not self._fill(timeout):
                line, self.buf = self.buf, b""
                return line
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def read_exact(self, n, timeout=None):
        while len(self.buf) < n:
            if not self._fill(timeout):
                raise EOFError(f"connection closed inside a {n}-octet literal")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, timeout=None):
        """One whole response, literals included ("{n}\\r\\n" + n bytes
        kept inline). b"" at end of file."""
        out = b""
        while True:
            line = self.readline(timeout)
            if not line:
                return out
            out += line
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if not m:
                return out
            out += self.read_exact(int(m.group(1)), timeout)

    def next_tag(self):
        self.tagn += 1
        return f"t{self.tagn}"

    def command(self, cmd, tag=None, timeout=None):
        """Sends "tag cmd" and reads up to the tagged answer. Returns
        (untagged responses, tagged answer without the tag: b"OK ...")."""
        tag = tag or self.next_tag()
        self.send(f"{tag} {cmd}\r\n" if isinstance(cmd, str) else tag.encode() + b" " + cmd + b"\r\n")
        return self.read_tagged(tag, timeout)

    def read_tagged(self, tag, timeout=None):
        untagged = []
        prefix = tag.encode() + b" "
        for _ in range(1000000):
            r = self.read_response(timeout)
            if not r:
                raise EOFError(f"connection closed before '{tag}' was answered; got "
                               f"{untagged[-5:]!r}")
            if r.startswith(prefix):
                return untagged, r[len(prefix):].rstrip(b"\r\n")
            untagged.append(r)
        raise AssertionError("too many responses")

    def wait_closed(self, timeout=5.0):
        """Reads and drops until the server closes; returns what was read,
        or raises AssertionError if it stays open."""
        deadline = time.monotonic() + timeout * SLOW
        got = self.buf
        self.buf = b""
        while time.monotonic() < deadline:
            try:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                return got
            if not chunk:
                return got
            got += chunk
        raise AssertionError(f"connection still open after {timeout * SLOW:.1f} s; read "
                             f"{got[-300:]!r}")


# ---------------------------------------------------------------- parsing

class ParseError(Exception):
    pass


def parse_imap(data, i=0):
    """Parses IMAP data (a sequence of atoms, strings, literals and
    parenthesized lists, up to CRLF or the end) into Python values: lists,
    bytes (strings and atoms), None for NIL. Atoms keep their brackets:
    BODY[HEADER.FIELDS (FROM)]<0> is one atom."""
    items, i = _parse_seq(data, i, top=True)
    return items


def _parse_seq(data, i, top):
    items = []
    n = len(data)
    while i < n:
        c = data[i:i + 1]
        if c == b" ":
            i += 1
        elif c in (b"\r", b"\n"):
            if top:
                return items, n
            raise ParseError(f"line ends inside a list at {i}")
        elif c == b"(":
            sub, i = _parse_seq(data, i + 1, top=False)
            items.append(sub)
        elif c == b")":
            if top:
                raise ParseError(f"unbalanced ')' at {i}")
            return items, i + 1
        elif c == b'"':
            j = i + 1
            s = bytearray()
            while j < n and data[j:j + 1] != b'"':
                if data[j:j + 1] == b"\\":
                    j += 1
                s += data[j:j + 1]
                j += 1
            if j >= n:
                raise ParseError("unterminated quoted string")
            items.append(bytes(s))
            i = j + 1
        elif c == b"{":
            m = re.compile(rb"\{(\d+)\+?\}\r\n").match(data, i)
            if not m:
                raise ParseError(f"bad literal at {i}")
            ln = int(m.group(1))
            start = m.end()
            if start + ln > n:
                raise ParseError("literal runs past the end")
            items.append(data[start:start + ln])
            i = start + ln
        else:
            j = i
            depth = 0
            while j < n:
                ch = data[j:j + 1]
                if ch == b"[":
                    depth += 1
                elif ch == b"]":
                    depth -= 1
                elif depth == 0 and ch in (b" ", b"(", b")", b"\r", b"\n", b'"'):
                    break
                j += 1
            atom = data[i:j]
            items.append(None if atom.upper() == b"NIL" else atom)
            i = j
    if not top:
        raise ParseError("unterminated list")
    return items, i


def parse_fetch(resp):
    """b"* 3 FETCH (UID 7 FLAGS (\\Seen))" -> (3, {"UID": b"7", "FLAGS": [...]})."""
    items = parse_imap(resp)
    if len(items) < 4 or items[0] != b"*" or items[2].upper() != b"FETCH":
        raise ParseError(f"not a FETCH response: {resp[:200]!r}")
    seq = int(items[1])
    lst = items[3]
    if len(lst) % 2:
        raise ParseError(f"odd FETCH list: {resp[:200]!r}")
    out = {}
    for k in range(0, len(lst), 2):
        out[lst[k].decode().upper()] = lst[k + 1]
    return seq, out


def fetches(untagged):
    """{seq: fetch dict} of every FETCH response in untagged (later ones
    merged over earlier ones for the same seq)."""
    out = {}
    for r in untagged:
        if re.match(rb"\* \d+ FETCH ", r, re.I):
            seq, d = parse_fetch(r)
            out.setdefault(seq, {}).update(d)
    return out


def untagged_numbers(untagged, word):
    """The numbers n of every "* n WORD" response, in order."""
    rx = re.compile(rb"\* (\d+) " + word.encode() + rb"\r\n", re.I)
    return [int(m.group(1)) for r in untagged for m in [rx.match(r)] if m]


def search_result(untagged):
    for r in untagged:
        if r.upper().startswith(b"* SEARCH"):
            return [int(x) for x in r[8:].split()]
    raise AssertionError(f"no SEARCH response in {untagged!r}")


def imaplib_responses(data):
    """Rebuilds the raw untagged responses (without "* ") from imaplib's
    fetch data: a tuple (prefix, literal) starts or continues a response,
    a bytes item after a tuple ends it, a bytes item alone is a response."""
    out = []
    cur = None
    for item in data:
        if isinstance(item, tuple):
            piece = item[0] + b"\r\n" + item[1]
            cur = piece if cur is None else cur + piece
        else:
            if cur is not None:
                out.append(cur + item)
                cur = None
            elif item is not None:
                out.append(item)
    if cur is not None:
        out.append(cur)
    return out


def imaplib_fetches(data):
    """{seq: fetch dict} from imaplib's fetch data."""
    out = {}
    for r in imaplib_responses(data):
        seq, d = parse_fetch(b"* " + r.split(b" ", 1)[0] + b" FETCH " + r.split(b" ", 1)[1])
        out.setdefault(seq, {}).update(d)
    return out


IMAP_DATE_RE = re.compile(rb"^[ 0-3]\d-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-"
                          rb"\d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$")
