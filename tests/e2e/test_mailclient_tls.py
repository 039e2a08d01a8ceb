"""End-to-end tests of mailclient over TLS (issue 11), driven like
test_mailclient.py (a pty as a person, pipes as a script):

- the lab scenario against our imapserver with STARTTLS on the plain
  IMAP port, and with implicit TLS (--tls) on imap.tls_port; Send Mail
  through an SMTP server that wants STARTTLS (or implicit TLS) and AUTH
  before it takes a mail; a change made elsewhere is announced over TLS
  (IDLE); our own SMTP listener, and its submission ports once the
  server has them;
- against Dovecot with ssl = yes: STARTTLS (plaintext auth disabled
  before TLS) and implicit TLS, list, show, delete, and notices;
- the certificate check: the wrong CA, no CA (the system's), the right
  host; --insecure says it does not check; --starttls against a server
  without TLS; --tls against a plain port;
- plaintext pipelined behind the server's STARTTLS answer (a forged
  "login OK", the STARTTLS injection class of CVE-2011-0411) is
  discarded, never read as if it came over TLS;
- no password in clear to a server that is not loopback: a fake server
  on a non-127 address of this machine (skipped when it has none) sees
  no LOGIN, unless --allow-plaintext; over SMTP the AUTH is skipped and
  the refusal says why.

Certificates come from tls_support.make_pki (the openssl tool). Only the
Python standard library is used."""

import base64
import imaplib
import os
import pty
import re
import select
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import server as server_module  # noqa: E402
from server import HOST, USERS, ImapServer, seed_text  # noqa: E402
import dovecot_support  # noqa: E402
import tls_support  # noqa: E402
from test_mailclient import (WAIT, NOTICE_WAIT, CountingProxy, PtyClient,  # noqa: E402
                             client_binary)

PKI = None              # the test CA and server certificate (setUpModule)
OTHER_PKI = None        # another CA: a "wrong" --ca-file
PKI_DIR = None


def setUpModule():
    global PKI, OTHER_PKI, PKI_DIR
    if not os.access(client_binary(), os.X_OK):
        raise unittest.SkipTest(f"{client_binary()} is not built (make)")
    try:
        subprocess.run([tls_support.OPENSSL, "version"], capture_output=True, check=True,
                       timeout=10)
    except (OSError, subprocess.CalledProcessError):
        raise unittest.SkipTest("the openssl tool is missing (apt-get install openssl)")
    PKI_DIR = tempfile.mkdtemp(prefix="mailclient-tls-")
    os.chmod(PKI_DIR, 0o755)
    PKI = tls_support.make_pki(os.path.join(PKI_DIR, "ca"))
    OTHER_PKI = tls_support.make_pki(os.path.join(PKI_DIR, "other"))


def tearDownModule():
    if PKI_DIR is not None:
        subprocess.run(["rm", "-rf", PKI_DIR], check=False)


def free_port(host=HOST):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def non_loopback_address():
    """An IPv4 address of this machine outside 127.0.0.0/8 that a test
    server can bind, or None."""
    candidates = []
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True,
                             text=True, timeout=10).stdout
        candidates += re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", out)
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        candidates += socket.gethostbyname_ex(socket.gethostname())[2]
    except OSError:
        pass
    for addr in candidates:
        if addr.startswith("127.") or addr.startswith("169.254."):
            continue
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((addr, 0))
            s.close()
            return addr
        except OSError:
            continue
    return None


def accepts(host, port, tls=False):
    """True if host:port takes a connection (and, with tls, completes a
    TLS handshake with the test CA: a listener is never left with a
    handshake cut short)."""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            if tls:
                s.settimeout(5)
                with PKI.client_context().wrap_socket(s, server_hostname="localhost"):
                    pass
            return True
    except (OSError, ssl.SSLError):
        return False


def client_env(extra=None):
    env = dict(os.environ)
    env.update({"TZ": "UTC", "MAILCLIENT_TIMEOUT": "10"})
    env.update(extra or {})
    return env


class TlsPtyClient(PtyClient):
    """PtyClient with options: mailclient OPTIONS... HOST SMTP IMAP."""

    def __init__(self, options, imap_port, smtp_port=25, host=HOST):
        self.master, slave = pty.openpty()
        argv = [client_binary()] + list(options) + [host, str(smtp_port), str(imap_port)]
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, env=client_env(), close_fds=True)
        os.close(slave)
        self.out = b""
        self.pos = 0


def run_client(options, imap_port, script, smtp_port=25, host=HOST, timeout=WAIT * 3):
    """Runs mailclient with script on a pipe; returns (status, stdout, stderr)."""
    argv = [client_binary()] + list(options) + [host, str(smtp_port), str(imap_port)]
    p = subprocess.run(argv, input=script.encode(), capture_output=True, timeout=timeout,
                       env=client_env())
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


# ---------------------------------------------------------------- an SMTP server with TLS

class _LineSock:
    """Line reading on a socket that may become a TLS socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def readline(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return b""
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")


class TlsSmtpSink:
    """An SMTP server that records what the client does and delivers
    each mail into the recipient's INBOX on our imapserver (IMAP APPEND),
    so the client can read it back.

    mode "starttls": STARTTLS offered; AUTH offered only once TLS is up.
    mode "implicit": TLS from the first byte (the 465 role).
    mode "plain-auth": no TLS, AUTH offered.
    Every mode answers MAIL without a login with 530 5.7.0."""

    VERDICT = "250 2.0.0 Ok: queued as TLSSINK"

    def __init__(self, mode, imap_port=None, host=HOST, pki=None, inject=False,
                 mechs="PLAIN LOGIN"):
        self.mode = mode
        self.mechs = mechs      # what EHLO offers after AUTH
        # With inject, the answer to STARTTLS carries, in the same write,
        # a forged EHLO answer that offers AUTH LOGIN only.
        self.inject = inject
        self.imap_port = imap_port
        self.mails = []         # (mail_from, [rcpt], data, tls_version)
        self.auths = []         # (mechanism, user, password, tls_version)
        self.commands = []      # every command line, as received
        self.plain_after_starttls = []
        pki = pki or PKI
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.cert, pki.key)
        sink = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                sock = self.request
                sock.settimeout(10)
                conn = None
                try:
                    if sink.mode == "implicit":
                        sock = sink.ctx.wrap_socket(sock, server_side=True)
                    conn = _LineSock(sock)
                    sink.session(conn)
                except (OSError, ssl.SSLError):
                    pass
                finally:
                    (conn.sock if conn is not None else sock).close()

        self.server = socketserver.ThreadingTCPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def _tls_version(conn):
        return conn.sock.version() if isinstance(conn.sock, ssl.SSLSocket) else None

    def session(self, conn):
        conn.send("220 tls-sink ESMTP ready")
        user, mail_from, rcpts = None, None, []
        for _ in range(1000):
            raw = conn.readline()
            if not raw:
                return
            cmd = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.commands.append(cmd)
            verb = cmd.split(" ", 1)[0].upper()
            tls = self._tls_version(conn)
            if verb == "EHLO":
                ext = ["PIPELINING", "8BITMIME"]
                if tls is None and self.mode == "starttls":
                    ext.append("STARTTLS")
                if tls is not None or self.mode == "plain-auth":
                    ext.append("AUTH " + self.mechs)
                lines = ["tls-sink"] + ext
                for ln in lines[:-1]:
                    conn.send("250-" + ln)
                conn.send("250 " + lines[-1])
            elif verb == "STARTTLS" and tls is None and self.mode == "starttls":
                conn.sock.sendall(b"220 2.0.0 Ready to start TLS\r\n" +
                                  (b"250-forged\r\n250 AUTH LOGIN\r\n" if self.inject else b""))
                if conn.buf:
                    self.plain_after_starttls.append(conn.buf)
                conn.sock = self.ctx.wrap_socket(conn.sock, server_side=True)
                conn.buf = b""
                user = None
            elif verb == "AUTH":
                parts = cmd.split(" ")
                mech = parts[1].upper() if len(parts) > 1 else ""
                if mech == "PLAIN":
                    resp = parts[2] if len(parts) > 2 else None
                    if resp is None:
                        conn.send("334 ")
                        resp = conn.readline().decode().strip()
                    _, u, p = base64.b64decode(resp).decode().split("\0")
                elif mech == "LOGIN":
                    conn.send("334 VXNlcm5hbWU6")
                    u = base64.b64decode(conn.readline().strip()).decode()
                    conn.send("334 UGFzc3dvcmQ6")
                    p = base64.b64decode(conn.readline().strip()).decode()
                else:
                    conn.send("504 5.5.4 Unrecognized authentication type")
                    continue
                self.auths.append((mech, u, p, tls))
                if USERS.get(u) == p:
                    user = u
                    conn.send("235 2.7.0 Authentication successful")
                else:
                    conn.send("535 5.7.8 Authentication credentials invalid")
            elif verb == "MAIL":
                if user is None:
                    conn.send("530 5.7.0 Authentication required")
                    continue
                mail_from = re.search(r"<(.*)>", cmd).group(1)
                rcpts = []
                conn.send("250 2.1.0 Ok")
            elif verb == "RCPT":
                rcpts.append(re.search(r"<(.*)>", cmd).group(1))
                conn.send("250 2.1.5 Ok")
            elif verb == "DATA":
                conn.send("354 End data with <CR><LF>.<CR><LF>")
                data = b""
                while not data.endswith(b"\r\n.\r\n"):
                    chunk = conn.readline()
                    if not chunk:
                        return
                    data += chunk
                self.mails.append((mail_from, rcpts, data, tls))
                self.deliver(rcpts, data)
                conn.send(self.VERDICT)
            elif verb == "QUIT":
                conn.send("221 2.0.0 Bye")
                return
            else:
                conn.send("502 5.5.2 Command not recognized")

    def deliver(self, rcpts, data):
        if self.imap_port is None:
            return
        lines = data[:-len(b".\r\n")].split(b"\r\n")
        msg = b"\r\n".join(ln[1:] if ln.startswith(b".") else ln for ln in lines)
        for rcpt in rcpts:
            user = rcpt.split("@")[0]
            if user not in USERS:
                continue
            m = imaplib.IMAP4(HOST, self.imap_port, timeout=10)
            try:
                m.starttls(PKI.client_context())
                m.login(user, USERS[user])
                m.append("INBOX", None, None, msg)
            finally:
                m.logout()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- our server

def tls_server(mailboxes=None, smtp=False, submission=False, address=HOST, pki=None):
    """An ImapServer with a certificate (STARTTLS on imap.port) and
    implicit TLS on imap.tls_port (server.tls_port); with smtp, our SMTP
    listener too (server.smtp_port), and with submission its submission
    ports (server.submission_port, server.submissions_port)."""
    pki = pki or PKI
    server = ImapServer(mailboxes if mailboxes is not None else {"alice": seed_text(), "bob": ""})
    server.tls_port = free_port(address)
    with open(server.conf) as f:
        conf = f.read()
    conf = conf.replace('imap: { address = "127.0.0.1"; port = 0; };',
                        f'imap: {{ address = "{address}"; port = 0; '
                        f'tls_port = {server.tls_port}; }};')
    conf += pki.conf()
    if smtp:
        sub = ""
        if submission:
            server.submission_port = free_port()
            server.submissions_port = free_port()
            sub = (f"submission_port = {server.submission_port}; "
                   f"submissions_port = {server.submissions_port}; ")
        conf += ('smtp: { enabled = true; address = "127.0.0.1"; port = 0; ' + sub +
                 'domain = "localhost"; };\n')
    with open(server.conf, "w") as f:
        f.write(conf)
    return server


def start_or_skip(test, server, address=HOST):
    test.addCleanup(server.cleanup)
    # imap.tls_port is a port found free a moment before the start: on a
    # busy machine another process may take it meanwhile. Then the start
    # is tried again on another free port (at most twice more).
    for attempt in range(3):
        try:
            if address == HOST:
                server.start()
            else:
                _start_on(server, address)
            break
        except RuntimeError:
            if attempt == 2 or not any("Address already in use" in line
                                       for line in server.log_lines()):
                raise
            with open(server.conf) as f:
                conf = f.read()
            port = free_port(address)
            conf = conf.replace(f"tls_port = {server.tls_port};", f"tls_port = {port};")
            server.tls_port = port
            with open(server.conf, "w") as f:
                f.write(conf)
    if server.wait_log(r"imaps listening on " + re.escape(address) + r":\d+", 5) is None:
        test.skipTest("this imapserver has no implicit TLS listener (imap.tls_port)")


def _start_on(server, address):
    """ImapServer.start() waits for "listening on 127.0.0.1:PORT": for
    another address, it is told to wait for that one."""
    saved = server_module._LISTEN_RE
    server_module._LISTEN_RE = re.compile(r"listening on " + re.escape(address) + r":(\d+)")
    try:
        server.start()
    finally:
        server_module._LISTEN_RE = saved


class OurServerCase(unittest.TestCase):
    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        server = getattr(self, "server", None)
        if server is not None and server.proc is not None:
            self.assertTrue(server.alive(), "the server died; log:\n" + server.log_text())
            self.assertEqual(server.sanitizer_lines(), [])

    def pty(self, options, imap_port, smtp_port=25, host=HOST):
        c = TlsPtyClient(options, imap_port, smtp_port, host)
        self.clients.append(c)
        return c

    def sink(self, mode, host=HOST):
        s = TlsSmtpSink(mode, self.server.port, host=host)
        self.addCleanup(s.close)
        return s

    def imaps(self, user="alice"):
        m = imaplib.IMAP4_SSL(HOST, self.server.tls_port, ssl_context=PKI.client_context(),
                              timeout=10)
        m.login(user, USERS[user])
        self.addCleanup(lambda: m.logout() if m.state != "LOGOUT" else None)
        return m

    def tls_sessions(self):
        return len(re.findall(r"\bTLS: TLSv1\.[23] ", self.server.log_text(2000)))


class MailclientTlsOurServer(OurServerCase):
    """The lab over TLS against imapserver (seed mailbox: 1 alice "hello",
    2 carol "Meeting tomorrow", 3 bob "Re: hello", 4 dave@example.org
    "Quarterly report")."""

    def setUp(self):
        super().setUp()
        self.server = tls_server()
        start_or_skip(self, self.server)

    def lab_scenario(self, options, imap_port, sink):
        """Two terminals of alice: A sends a mail through the sink, B is
        told; B lists, shows and deletes bob's mail, A is told; every
        connection is TLS."""
        a = self.pty(options, imap_port, sink.port)
        b = self.pty(options, imap_port, sink.port)
        for c in (a, b):
            c.expect(r"Connected to 127\.0\.0\.1 port \d+ over TLS \(TLSv1\.[23] \S+\)\.")
            c.login()

        a.send("1")
        a.expect(r'ending with a line holding a single "\."')
        for line in ("From: alice@localhost", "To: alice@localhost", "Subject: over tls",
                     "first line", ".dotted line", "."):
            a.send(line)
        a.expect(r"Mail sent successfully \(server: " + re.escape(TlsSmtpSink.VERDICT) + r"\)")
        b.expect(r"\[notice\] New mail from alice@localhost: over tls", NOTICE_WAIT)

        b.send("2")
        b.expect(r"Your mailbox \(5 mails\):")
        b.expect(r"5\. alice@localhost +\d{4}-\d\d-\d\d : \d\d : \d\d  over tls")
        b.expect(r"Enter the sender's mail address: ")
        b.send("bob@localhost")
        b.expect(r"Mail 3 \(1 of 1 from bob@localhost\)")
        b.expect(r"second paragraph")
        b.expect(r"delete it \(3\), or press Enter to go back: ")
        b.send("3")
        b.expect(r"Mail 3 deleted\.")
        a.expect(r'\[notice\] Mail from bob@localhost "Re: hello" was deleted on another '
                 r"device\.", NOTICE_WAIT)

        a.send("2")
        a.expect(r"Your mailbox \(4 mails\):")
        a.expect(r"Enter the sender's mail address: ")
        a.send("alice@localhost")
        a.expect(r"Mail 4 \(2 of 2 from alice@localhost\)")
        shown = a.expect(r"(?s)(.*)Enter the number of a mail").group(1).decode()
        self.assertIn("Subject:  over tls", shown)
        self.assertIn("\nfirst line\n.dotted line\n", shown)
        a.send("")
        a.expect(r"Enter your choice: ")
        a.send("3")
        b.send("3")
        self.assertEqual(a.wait_exit(), 0, a.text())
        self.assertEqual(b.wait_exit(), 0, b.text())

        # What crossed the SMTP connection: over TLS, with alice's login.
        self.assertEqual(len(sink.mails), 1)
        mail_from, rcpts, data, tls = sink.mails[0]
        self.assertEqual((mail_from, rcpts), ("alice@localhost", ["alice@localhost"]))
        self.assertIsNotNone(tls)
        self.assertEqual([(u, p, t is not None) for _, u, p, t in sink.auths],
                         [("alice", "alice123", True)])
        self.assertEqual(sink.plain_after_starttls, [])
        m = self.imaps()
        m.select("INBOX")
        self.assertEqual(m.search(None, "FROM", "bob@localhost")[1][0], b"")
        self.assertEqual(len(m.search(None, "ALL")[1][0].split()), 4)

    def test_lab_scenario_with_starttls(self):
        sink = self.sink("starttls")
        self.lab_scenario(["--ca-file", PKI.ca_cert], self.server.port, sink)
        self.assertIn("STARTTLS", sink.commands)
        # Both terminals' IMAP sessions were upgraded, and logged in
        # only after that.
        log = self.server.log_text(2000)
        self.assertGreaterEqual(self.tls_sessions(), 2, log)
        for session in set(re.findall(r"\[(s\d+)\] debug: command AUTHENTICATE", log)):
            first_tls = log.find(f"[{session}] info: TLS: ")
            first_auth = log.find(f"[{session}] debug: command AUTHENTICATE")
            self.assertTrue(0 <= first_tls < first_auth, log)

    def test_lab_scenario_with_implicit_tls(self):
        sink = self.sink("implicit")
        self.lab_scenario(["--tls", "--ca-file", PKI.ca_cert], self.server.tls_port, sink)
        self.assertNotIn("STARTTLS", sink.commands)
        # The mailclient's sessions (AUTHENTICATE; the sink delivers with
        # LOGIN) came to the TLS port and sent no STARTTLS.
        log = self.server.log_text(2000)
        sessions = set(re.findall(r"\[(s\d+)\] debug: command AUTHENTICATE", log))
        self.assertGreaterEqual(len(sessions), 2, log)
        for session in sessions:
            self.assertRegex(log, rf"\[{session}\] info: connect from \S+ \(TLS\)")
            self.assertNotIn(f"[{session}] debug: command STARTTLS", log)

    def test_dropped_tls_connection_is_reestablished_quietly(self):
        proxy = CountingProxy(self.server.port)
        self.addCleanup(proxy.close)
        a = self.pty(["--starttls", "--ca-file", PKI.ca_cert], proxy.port)
        a.expect(r"over TLS")
        a.login()
        proxy.drop_all()
        m = self.imaps()
        m.select("INBOX")
        m.store("4", "+FLAGS", "\\Deleted")
        m.expunge()
        a.expect(r'\[notice\] Mail from dave@example.org "Quarterly report" was deleted on '
                 r"another device\.", NOTICE_WAIT)
        a.send("2")
        a.expect(r"Your mailbox \(3 mails\):")
        a.send("x")
        a.send("x")
        a.expect(r"Enter your choice: ")
        self.assertNotIn("lost", a.text().lower())
        a.send("3")
        self.assertEqual(a.wait_exit(), 0)
        # Every connection through the proxy was TLS: no mail text in clear.
        self.assertNotIn(b"Quarterly", proxy.received())
        self.assertGreaterEqual(self.server.log_text(2000).count("command STARTTLS"), 2)

    def test_starttls_required_and_offered(self):
        status, out, err = run_client(["--starttls", "--ca-file", PKI.ca_cert],
                                      self.server.port, "alice\nalice123\n2\nx\nx\n3\n")
        self.assertEqual(status, 0, out + err)
        self.assertRegex(out, r"Connected to 127\.0\.0\.1 port \d+ over TLS")
        self.assertIn("Your mailbox (4 mails):", out)

    def test_wrong_ca_is_refused_with_the_reason_and_the_remedy(self):
        status, out, err = run_client(["--ca-file", OTHER_PKI.ca_cert], self.server.port,
                                      "alice\nalice123\n3\n")
        self.assertEqual(status, 1, out + err)
        self.assertIn("certificate verify failed", err)
        self.assertIn(OTHER_PKI.ca_cert, err)
        self.assertIn("--ca-file", err)
        self.assertNotIn("Username:", out)
        self.assertNotIn("command AUTHENTICATE", self.server.log_text(2000))
        self.assertNotIn("command LOGIN", self.server.log_text(2000))

    def test_starttls_with_a_server_on_this_machine_checks_no_certificate(self):
        # The lab: make run's self-signed certificate, no --ca-file. On
        # loopback a password may go in clear anyway, so the STARTTLS
        # taken because it is offered does not stop at the certificate;
        # the client says so.
        status, out, err = run_client([], self.server.port, "alice\nalice123\n2\nx\nx\n3\n")
        self.assertEqual(status, 0, out + err)
        self.assertRegex(out, r"Connected to 127\.0\.0\.1 port \d+ over TLS \(TLSv1\.[23] .*"
                              r"a server on this machine: certificate not checked\)")
        self.assertIn("Your mailbox (4 mails):", out)

    def test_system_cas_do_not_trust_a_private_ca(self):
        # Asked for (--starttls, --tls), TLS checks the certificate even
        # on loopback.
        for options, port in ((["--starttls"], self.server.port),
                              (["--tls"], self.server.tls_port)):
            status, out, err = run_client(options, port, "alice\nalice123\n3\n")
            self.assertEqual(status, 1, out + err)
            self.assertRegex(err, r"certificate verify failed: (unable to get local issuer "
                                  r"certificate|self-signed certificate)")
            self.assertIn("the system's CAs", err)
            self.assertIn("--ca-file FILE", err)

    def test_certificate_must_name_the_host(self):
        # The test certificate names localhost and 127.0.0.1.
        status, out, err = run_client(["--ca-file", PKI.ca_cert], self.server.port,
                                      "alice\nalice123\n3\n", host="localhost")
        self.assertEqual(status, 0, out + err)
        self.assertIn("Connected to localhost", out)
        # A certificate of the right CA for another name is refused.
        pki = tls_support.Pki(PKI.folder)
        pki.cert = tls_support.make_cert(pki, "elsewhere.pem", PKI.key, cn="elsewhere.example",
                                         san="DNS:elsewhere.example")
        other = tls_server(pki=pki)
        start_or_skip(self, other)
        for host in ("127.0.0.1", "localhost"):
            status, out, err = run_client(["--ca-file", PKI.ca_cert], other.port,
                                          "alice\nalice123\n3\n", host=host)
            self.assertEqual(status, 1, out + err)
            self.assertRegex(err, r"certificate verify failed: (IP address|hostname) mismatch")
        self.assertNotIn("command AUTHENTICATE", other.log_text(2000))

    def test_insecure_says_that_it_does_not_check(self):
        status, out, err = run_client(["--insecure"], self.server.port,
                                      "alice\nalice123\n2\nx\nx\n3\n")
        self.assertEqual(status, 0, out + err)
        self.assertIn("certificate NOT checked", out)
        self.assertIn("--insecure", err)
        self.assertIn("not checked", err)

    def test_tls_against_the_plain_port_says_so(self):
        status, out, err = run_client(["--tls", "--ca-file", PKI.ca_cert], self.server.port,
                                      "alice\nalice123\n3\n")
        self.assertEqual(status, 1, out + err)
        self.assertIn("does not speak TLS on that port", err)

    def test_smtp_plaintext_behind_the_starttls_answer_is_discarded(self):
        sink = TlsSmtpSink("starttls", self.server.port, inject=True)
        self.addCleanup(sink.close)
        status, out, err = run_client(
            ["--ca-file", PKI.ca_cert], self.server.port,
            "alice\nalice123\n1\nFrom: alice@localhost\nTo: bob@localhost\nSubject: x\nbody\n"
            ".\n3\n", smtp_port=sink.port)
        self.assertEqual(status, 0, out + err)
        self.assertIn("Mail sent successfully", out)
        # The EHLO answer that counted came over TLS: AUTH PLAIN offered
        # there, not the forged LOGIN-only one.
        self.assertEqual([(m, u, t is not None) for m, u, _, t in sink.auths],
                         [("PLAIN", "alice", True)])

    def send_one(self, sink, refused=False):
        # A refused mail is then discarded (D) before Quit.
        return run_client(
            ["--ca-file", PKI.ca_cert], self.server.port,
            "alice\nalice123\n1\nFrom: alice@localhost\nTo: bob@localhost\nSubject: x\nbody\n"
            ".\n" + ("d\n" if refused else "") + "3\n", smtp_port=sink.port)

    def test_smtp_auth_login_when_plain_is_not_offered(self):
        sink = TlsSmtpSink("starttls", self.server.port, mechs="LOGIN")
        self.addCleanup(sink.close)
        status, out, err = self.send_one(sink)
        self.assertEqual(status, 0, out + err)
        self.assertIn("Mail sent successfully", out)
        self.assertEqual([(m, u, p) for m, u, p, _ in sink.auths], [("LOGIN", "alice", "alice123")])

    def test_smtp_without_a_known_auth_mechanism_says_why_the_mail_was_refused(self):
        sink = TlsSmtpSink("starttls", self.server.port, mechs="CRAM-MD5")
        self.addCleanup(sink.close)
        status, out, err = self.send_one(sink, refused=True)
        self.assertEqual(status, 0, out + err)
        self.assertIn("Mail not sent: the sender refused: 530 5.7.0 Authentication required "
                      "(the server offers no login this client knows: AUTH PLAIN or LOGIN)", out)
        self.assertEqual(sink.auths, [])

    def test_smtp_tls_against_a_starttls_port_says_so(self):
        # --smtp-tls against a port that starts in clear: the handshake
        # fails, the user is told, and no login is sent.
        sink = self.sink("starttls")
        status, out, err = run_client(
            ["--smtp-tls", "--ca-file", PKI.ca_cert], self.server.port,
            "alice\nalice123\n1\nFrom: alice@localhost\nTo: bob@localhost\nSubject: x\nbody\n"
            ".\nd\n3\n", smtp_port=sink.port)
        self.assertEqual(status, 0, out + err)
        self.assertRegex(out, r"Mail not sent: TLS handshake failed: .*does not speak TLS")
        self.assertEqual(sink.auths, [])


class MailclientTlsRequired(OurServerCase):
    """--starttls against a server without a certificate."""

    def test_starttls_required_but_not_offered_fails(self):
        self.server = ImapServer({"alice": seed_text()})
        self.addCleanup(self.server.cleanup)
        self.server.start()
        status, out, err = run_client(["--starttls"], self.server.port, "alice\nalice123\n3\n")
        self.assertEqual(status, 1, out + err)
        self.assertIn("does not offer STARTTLS, which --starttls requires", err)
        self.assertNotIn("Username:", out)
        # Without the option the lab's plain loopback session still works.
        status, out, err = run_client([], self.server.port, "alice\nalice123\n3\n")
        self.assertEqual(status, 0, out + err)
        self.assertNotIn("over TLS", out)


class MailclientTlsOurSmtp(OurServerCase):
    """Send Mail through our own SMTP listeners: the receiver (STARTTLS
    when it offers it) and the submission ports (STARTTLS + AUTH, and
    implicit TLS + AUTH) once the server has them."""

    def setUp(self):
        super().setUp()
        self.server = tls_server(smtp=True, submission=True)
        start_or_skip(self, self.server)
        line = self.server.wait_log(r"smtp listening on 127\.0\.0\.1:\d+", 5)
        if line is None:
            self.skipTest("this imapserver hosts no SMTP listener (smtp.enabled)")
        self.smtp_port = int(re.search(r"smtp listening on 127\.0\.0\.1:(\d+)", line).group(1))

    def send_and_read_back(self, options, smtp_port, subject):
        bob = self.pty(["--ca-file", PKI.ca_cert], self.server.port)
        bob.login("bob")
        script = ("alice\nalice123\n1\nFrom: alice@localhost\nTo: bob@localhost\n"
                  f"Subject: {subject}\nfirst line\n.dotted line\n.\n3\n")
        status, out, err = run_client(options + ["--ca-file", PKI.ca_cert], self.server.port,
                                      script, smtp_port=smtp_port)
        self.assertEqual(status, 0, out + err)
        self.assertRegex(out, r"Mail sent successfully \(server: 250[ -]")
        bob.expect(r"\[notice\] New mail from alice@localhost: " + re.escape(subject),
                   NOTICE_WAIT)
        bob.send("2")
        bob.expect(r"1\. alice@localhost  \d{4}-\d\d-\d\d : \d\d : \d\d  " + re.escape(subject))
        bob.expect(r"Enter the sender's mail address: ")
        bob.send("alice@localhost")
        shown = bob.expect(r"(?s)Mail 1 \(1 of 1 from alice@localhost\)(.*)"
                           r"Enter the number of a mail").group(1).decode()
        self.assertIn("\nfirst line\n.dotted line\n", shown)
        bob.send("")
        bob.send("3")
        self.assertEqual(bob.wait_exit(), 0)

    def test_mail_through_the_receiver(self):
        self.send_and_read_back([], self.smtp_port, "via port 25")

    def test_mail_through_submission_with_starttls_and_auth(self):
        if not accepts(HOST, self.server.submission_port):
            self.skipTest("this imapserver has no submission listener (smtp.submission_port)")
        self.send_and_read_back(["--starttls"], self.server.submission_port, "via submission")

    def test_mail_through_submissions_with_implicit_tls_and_auth(self):
        if not accepts(HOST, self.server.submissions_port, tls=True):
            self.skipTest("this imapserver has no submissions listener (smtp.submissions_port)")
        self.send_and_read_back(["--smtp-tls"], self.server.submissions_port,
                                "via submissions")


# ---------------------------------------------------------------- STARTTLS injection

class InjectingImapServer:
    """An IMAP server that answers STARTTLS and, in the same write, a
    forged answer to the CAPABILITY the client sends over TLS next (tag
    m2: m1 is STARTTLS) that leaves out AUTH=PLAIN, then refuses every
    login over TLS. A client that read the plaintext behind the STARTTLS
    answer as TLS-protected would take the forged capabilities and log
    in with LOGIN instead of AUTHENTICATE PLAIN."""

    def __init__(self):
        self.lines = []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(PKI.cert, PKI.key)
        fake = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                sock = self.request
                sock.settimeout(10)
                conn = _LineSock(sock)
                try:
                    fake.session(conn)
                except (OSError, ssl.SSLError, ValueError):
                    pass
                finally:
                    conn.sock.close()

        self.server = socketserver.ThreadingTCPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def session(self, conn):
        conn.sock.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN SASL-IR] fake\r\n")
        for _ in range(100):
            raw = conn.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.lines.append(line)
            words = line.split()
            tag, verb = words[0], words[1].upper() if len(words) > 1 else ""
            if verb == "STARTTLS":
                conn.sock.sendall(tag.encode() + b" OK Begin TLS now\r\n"
                                  b"* CAPABILITY IMAP4rev1\r\nm2 OK forged\r\n")
                conn.sock = self.ctx.wrap_socket(conn.sock, server_side=True)
                conn.buf = b""
            elif verb == "CAPABILITY":
                conn.sock.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n" +
                                  tag.encode() + b" OK done\r\n")
            elif verb in ("AUTHENTICATE", "LOGIN"):
                conn.sock.sendall(tag.encode() + b" NO [AUTHENTICATIONFAILED] no\r\n")
            elif verb == "LOGOUT":
                conn.sock.sendall(b"* BYE bye\r\n" + tag.encode() + b" OK done\r\n")
                return
            else:
                conn.sock.sendall(tag.encode() + b" BAD not here\r\n")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class MailclientStarttlsInjection(unittest.TestCase):
    def test_plaintext_behind_the_starttls_answer_is_discarded(self):
        fake = InjectingImapServer()
        self.addCleanup(fake.close)
        status, out, err = run_client(["--ca-file", PKI.ca_cert], fake.port,
                                      "alice\nalice123\n" * 3)
        self.assertNotIn("Logged in", out, out + err)
        self.assertEqual(status, 1, out + err)
        # It did go through TLS and tried the real login there.
        self.assertIn("Connected to 127.0.0.1 port %d over TLS" % fake.port, out)
        self.assertIn("Login failed: wrong username or password.", out)
        self.assertEqual([ln.split()[1] for ln in fake.lines[:3]],
                         ["STARTTLS", "CAPABILITY", "AUTHENTICATE"])


# ---------------------------------------------------------------- no password in clear

class FakeImapServer:
    """An IMAP server without TLS that records every line it gets and
    refuses every login: enough to see whether a password was sent."""

    def __init__(self, host):
        self.lines = []
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 10

            def handle(self):
                self.wfile.write(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake ready\r\n")
                for _ in range(100):
                    raw = self.rfile.readline(8192)
                    if not raw:
                        return
                    fake.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                    words = raw.decode("utf-8", "replace").split()
                    tag = words[0] if words else "*"
                    verb = words[1].upper() if len(words) > 1 else ""
                    if verb == "CAPABILITY":
                        self.wfile.write(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
                        self.wfile.write(tag.encode() + b" OK done\r\n")
                    elif verb in ("AUTHENTICATE", "LOGIN"):
                        if len(words) == 3:     # no initial response
                            self.wfile.write(b"+ \r\n")
                            fake.lines.append(self.rfile.readline(8192).decode().strip())
                        self.wfile.write(tag.encode() + b" NO [AUTHENTICATIONFAILED] no\r\n")
                    elif verb == "LOGOUT":
                        self.wfile.write(b"* BYE bye\r\n" + tag.encode() + b" OK done\r\n")
                        return
                    else:
                        self.wfile.write(tag.encode() + b" NO not here\r\n")

        self.server = socketserver.ThreadingTCPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def saw_password(self, password):
        secret = base64.b64encode(f"\0alice\0{password}".encode()).decode()
        return any(password in ln or secret in ln for ln in self.lines)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class MailclientNoPasswordInClear(OurServerCase):
    """A server reached over the network (an address of this machine
    outside 127/8) that offers no TLS gets no password."""

    def setUp(self):
        super().setUp()
        self.addr = non_loopback_address()
        if self.addr is None:
            self.skipTest("this machine has no IPv4 address outside 127.0.0.0/8")

    def test_imap_password_is_not_sent_without_tls(self):
        fake = FakeImapServer(self.addr)
        self.addCleanup(fake.close)
        status, out, err = run_client([], fake.port, "alice\nalice123\n3\n", host=self.addr)
        self.assertEqual(status, 1, out + err)
        self.assertIn(f"the IMAP server {self.addr} offers no TLS", err)
        self.assertIn("--allow-plaintext", err)
        self.assertNotIn("Username:", out)
        self.assertFalse(fake.saw_password("alice123"), fake.lines)
        self.assertFalse(any("AUTHENTICATE" in ln or "LOGIN" in ln for ln in fake.lines))

    def test_allow_plaintext_sends_it_and_warns(self):
        fake = FakeImapServer(self.addr)
        self.addCleanup(fake.close)
        status, out, err = run_client(["--allow-plaintext"], fake.port,
                                      "alice\nalice123\nalice\nalice123\nalice\nalice123\n",
                                      host=self.addr)
        self.assertEqual(status, 1, out + err)
        self.assertIn("Login failed: wrong username or password.", out)
        self.assertIn("the password goes in clear", err)
        self.assertTrue(fake.saw_password("alice123"), fake.lines)

    def test_starttls_protects_the_password_on_the_network(self):
        # Our server on the non-loopback address, its certificate naming
        # that address: the login goes over TLS, and an SMTP server there
        # that offers AUTH without TLS gets no password (the mail is then
        # refused, and the user is told why).
        pki = tls_support.Pki(os.path.join(PKI_DIR, "ca"))
        cert = tls_support.make_cert(pki, f"net-{self.addr}.pem", pki.key,
                                     san=f"IP:{self.addr}")
        net_pki = tls_support.Pki(pki.folder)
        net_pki.cert = cert
        self.server = tls_server(address=self.addr, pki=net_pki)
        start_or_skip(self, self.server, address=self.addr)
        sink = TlsSmtpSink("plain-auth", None, host=self.addr)
        self.addCleanup(sink.close)
        status, out, err = run_client(
            ["--ca-file", PKI.ca_cert], self.server.port,
            "alice\nalice123\n1\nFrom: alice@localhost\nTo: bob@localhost\nSubject: x\nbody\n"
            ".\nd\n3\n", smtp_port=sink.port, host=self.addr)
        self.assertEqual(status, 0, out + err)
        self.assertRegex(out, rf"Connected to {re.escape(self.addr)} port \d+ over TLS")
        self.assertIn("Logged in as alice.", out)
        self.assertRegex(out, r"Mail not sent: the sender refused: 530 5\.7\.0 Authentication "
                              r"required \(the SMTP server .* offers no TLS")
        self.assertEqual(sink.auths, [])
        self.assertFalse(any("alice123" in c or "AUTH" in c for c in sink.commands))


# ---------------------------------------------------------------- Dovecot

class TlsDovecot(dovecot_support.DovecotServer):
    """The test Dovecot with ssl = yes: the test CA's certificate, STARTTLS
    on its IMAP port (no plaintext login before it) and implicit TLS on
    an imaps port of its own."""

    def _write_config(self):
        super()._write_config()
        self.tls_port = free_port()
        with open(self.conf) as f:
            conf = f.read()
        conf = conf.replace("ssl = no\n",
                            f"ssl = required\nssl_cert = <{PKI.cert}\nssl_key = <{PKI.key}\n"
                            "ssl_min_protocol = TLSv1.2\n")
        conf = conf.replace("disable_plaintext_auth = no\n", "disable_plaintext_auth = yes\n")
        conf = conf.replace("  inet_listener imaps {\n    port = 0\n  }",
                            f"  inet_listener imaps {{\n    address = {HOST}\n"
                            f"    port = {self.tls_port}\n    ssl = yes\n  }}")
        with open(self.conf, "w") as f:
            f.write(conf)

    def imap(self, user="alice"):
        m = imaplib.IMAP4_SSL(HOST, self.tls_port, ssl_context=PKI.client_context(), timeout=10)
        m.login(user, self.users[user])
        return m


class MailclientTlsDovecot(unittest.TestCase):
    """The same client against Dovecot with TLS."""

    def setUp(self):
        if dovecot_support.dovecot_binary() is None:
            self.skipTest("dovecot is not installed (apt-get install dovecot-imapd)")
        self.dc = TlsDovecot(users={"alice": "alice123"})
        self.addCleanup(self.dc.cleanup)
        self.dc.start()
        self.clients = []
        self.dc.append("alice", [
            b"From: bob@example.org\r\nTo: alice@example.org\r\nSubject: hello\r\n"
            b"Date: Thu, 10 Mar 2022 14:30:00 +0000\r\n\r\nfirst line\r\n.dot line\r\n",
            b"From: Carol <carol@example.org>\r\nTo: alice@example.org\r\n"
            b"Subject: =?UTF-8?Q?Caf=C3=A9?=\r\n\r\nun caf\xc3\xa9\r\n",
            b"From: bob@example.org\r\nTo: alice@example.org\r\nSubject: again\r\n\r\nsecond\r\n",
        ])

    def tearDown(self):
        for c in self.clients:
            c.close()

    def list_show_delete(self, options, port):
        status, out, err = run_client(options + ["--ca-file", PKI.ca_cert], port,
                                      "alice\nalice123\n2\nnobody@example.org\n"
                                      "2\nbob@example.org\n3\n3\n")
        self.assertEqual(status, 0, out + err + self.dc.log_text())
        self.assertRegex(out, r"Connected to 127\.0\.0\.1 port \d+ over TLS \(TLSv1\.[23] ")
        self.assertIn("Your mailbox (3 mails):", out)
        self.assertRegex(out, r"2\. carol@example\.org  .*  Café\n")
        self.assertIn("NO MAILS TO SHOW", out)
        self.assertIn("\nfirst line\n.dot line\n", out)
        self.assertIn("Mail 3 deleted.", out)
        m = self.dc.imap()
        m.select("INBOX")
        self.assertEqual(m.search(None, "SUBJECT", "again")[1][0], b"")
        self.assertEqual(len(m.search(None, "ALL")[1][0].split()), 2)
        m.logout()

    def test_dovecot_starttls_list_show_delete(self):
        before = self.dc.log_text(1000).count("Login: user=<alice>")
        self.list_show_delete([], self.dc.port)
        logins = re.findall(r"imap-login: Info: Login: user=<alice>,.*", self.dc.log_text(1000))
        self.assertGreater(len(logins), before)
        for line in logins:
            self.assertRegex(line, r", TLS, ")

    def test_dovecot_implicit_tls_list_show_delete(self):
        self.list_show_delete(["--tls"], self.dc.tls_port)

    def test_dovecot_wrong_ca_never_logs_in(self):
        before = self.dc.log_text(1000).count("Login: user=<alice>")
        status, out, err = run_client(["--ca-file", OTHER_PKI.ca_cert], self.dc.port,
                                      "alice\nalice123\n3\n")
        self.assertEqual(status, 1, out + err)
        self.assertIn("certificate verify failed", err)
        self.assertEqual(self.dc.log_text(1000).count("Login: user=<alice>"), before)

    def test_dovecot_two_terminals_see_changes_over_tls(self):
        opts = ["--ca-file", PKI.ca_cert]
        a = TlsPtyClient(opts, self.dc.port)
        b = TlsPtyClient(["--tls"] + opts, self.dc.tls_port)
        self.clients += [a, b]
        a.login()
        b.login()
        b.send("2")
        b.expect(r"Enter the sender's mail address: ")
        b.send("carol@example.org")
        b.expect(r"delete it \(2\), or press Enter to go back: ")
        b.send("2")
        b.expect(r"Mail 2 deleted\.")
        a.expect(r'\[notice\] Mail from carol@example\.org "Café" was deleted on another '
                 r"device\.", NOTICE_WAIT)
        self.dc.append("alice", b"From: dan@example.org\r\nSubject: late\r\n\r\nx\r\n")
        a.expect(r"\[notice\] New mail from dan@example\.org: late", NOTICE_WAIT)
        b.expect(r"\[notice\] New mail from dan@example\.org: late", NOTICE_WAIT)
        a.send("3")
        b.send("3")
        self.assertEqual(a.wait_exit(), 0)
        self.assertEqual(b.wait_exit(), 0)


if __name__ == "__main__":
    unittest.main()
