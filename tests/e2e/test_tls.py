"""TLS with real clients (issue 11): openssl s_client (implicit TLS and
-starttls imap), curl (imaps:// and imap:// --ssl-reqd), mutt (imaps://),
mbsync and offlineimap (implicit TLS and STARTTLS), Python's imaplib
(IMAP4_SSL, starttls()), each proving that mail was read or written
through the encrypted channel, not just that it connected; and a TLS
scanner (sslscan) run against the default TLS settings (certificate and
key set, nothing else).

Every client verifies the server certificate against the test CA of
tls_support.make_pki. A client that is not installed is skipped with the
reason (tests/deps.sh --test installs them all). TlsCase, the server
set-up with a certificate and an implicit TLS port, is shared with
test_tls_hostile.py."""

import imaplib
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import time
import unittest

from server import (HOST, SEED, SLOW, SOCK_TIMEOUT, USERS, ImapServer, RawClient,
                    ServerTestCase, seed_text)
from tls_support import make_pki

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
MUTT = shutil.which("mutt")
MBSYNC = shutil.which("mbsync")
OFFLINEIMAP = shutil.which("offlineimap")
SSLSCAN = shutil.which("sslscan")

NEW_MAIL = (b"From: bob@localhost\r\nTo: alice@localhost\r\nSubject: sealed\r\n\r\n"
            b"written through TLS\r\n")


def free_port():
    """A TCP port nobody listens on right now (imap.tls_port = 0 means
    off, so the implicit TLS port cannot be left to the kernel)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def tls_config(server, pki, tls_port, tls_extra="", auth_extra=""):
    """Rewrites server's config: imap.tls_port, the tls section of pki
    with tls_extra in it ("handshake_timeout = 1; "), and auth_extra in
    the auth section ('plaintext = "never"; ')."""
    with open(server.conf) as f:
        text = f.read()
    text = text.replace("port = 0; };", f"port = 0; tls_port = {tls_port}; }};", 1)
    text = text.replace('file = "users"; };', f'file = "users"; {auth_extra}}};', 1)
    with open(server.conf, "w") as f:
        f.write(text + pki.conf(tls_extra))


class TlsRawClient(RawClient):
    """RawClient over TLS: implicit (tls=True at connect) or after
    STARTTLS (starttls())."""

    def __init__(self, port, ctx, implicit=True, timeout=SOCK_TIMEOUT):
        super().__init__(port, timeout)
        self.ctx = ctx
        if implicit:
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def starttls(self):
        """STARTTLS, then the handshake. Returns the tagged answer."""
        _, tagged = self.command("STARTTLS")
        if tagged.startswith(b"OK"):
            if self.buf:
                raise AssertionError(f"bytes in clear after the STARTTLS OK: {self.buf!r}")
            self.sock = self.ctx.wrap_socket(self.sock, server_hostname="localhost")
        return tagged


class TlsCase(ServerTestCase):
    """One server per test with the test PKI, STARTTLS on the plain port
    and implicit TLS on self.tls_port. TLS_EXTRA goes into the tls
    section, AUTH_EXTRA into the auth section."""

    TLS_EXTRA = ""
    AUTH_EXTRA = ""

    def setUp(self):
        boxes = {u: (seed_text() if t is None else t) for u, t in self.MAILBOXES.items()}
        self._clients = []
        for attempt in range(3):
            self.server = ImapServer(boxes, limits=self.LIMITS)
            self.addCleanup(self.server.cleanup)
            self.pki = make_pki(os.path.join(self.server.dir, "pki"))
            self.tls_port = free_port()
            tls_config(self.server, self.pki, self.tls_port, self.TLS_EXTRA, self.AUTH_EXTRA)
            try:
                self.server.start()
                break
            except RuntimeError:
                # Another process took the port between the probe and
                # the bind: try another one.
                if attempt == 2 or not re.search(r"in use", self.server.log_text()):
                    raise
        self.assertTrue(self.server.wait_log(rf"imaps listening on 127\.0\.0\.1:{self.tls_port}"),
                        self.server.log_text())
        self.port = self.server.port

    def ctx(self):
        return self.pki.client_context()

    def tls_raw(self, greeting=True):
        c = TlsRawClient(self.tls_port, self.ctx())
        self._clients.append(c)
        if greeting:
            line = c.readline()
            self.assertTrue(line.startswith(b"* OK"), line)
        return c

    def starttls_raw(self):
        c = TlsRawClient(self.port, self.ctx(), implicit=False)
        self._clients.append(c)
        self.assertTrue(c.readline().startswith(b"* OK"))
        tagged = c.starttls()
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        return c

    def imaps(self, login=True):
        m = imaplib.IMAP4_SSL(HOST, self.tls_port, ssl_context=self.ctx(),
                              timeout=SOCK_TIMEOUT)
        self._clients.append(_Closer(m))
        if login:
            m.login("alice", USERS["alice"])
        return m

    def assert_tls_serves(self):
        """A new implicit TLS session and a new STARTTLS session each log
        in and read a message; a plain session is served too."""
        for c in (self.tls_raw(), self.starttls_raw()):
            _, tagged = c.command("LOGIN alice alice123")
            self.assertTrue(tagged.startswith(b"OK"), tagged)
            resp, tagged = c.command("SELECT INBOX")
            self.assertTrue(tagged.startswith(b"OK"), tagged)
            resp, tagged = c.command("FETCH 1 BODY.PEEK[]")
            self.assertTrue(tagged.startswith(b"OK"), tagged)
            self.assertIn(SEED[0].served, b"".join(resp))
            c.command("LOGOUT")
            c.close()
        self.assert_server_serves()

    def inbox_subjects(self):
        m = self.imaps()
        m.select("INBOX")
        typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        m.logout()
        return sorted(re.search(rb"Subject: (.*?)\r\n", item[1]).group(1).decode()
                      for item in data if isinstance(item, tuple))

    def run_tool(self, argv, timeout=60, env=None, input=None, ok=(0,)):
        p = subprocess.run(argv, input=input, stdin=None if input is not None else
                           subprocess.DEVNULL, capture_output=True, timeout=timeout * SLOW,
                           env=env)
        self.assertIn(p.returncode, ok,
                      f"{' '.join(argv)} exited {p.returncode}\nstdout:\n"
                      f"{p.stdout.decode(errors='replace')[-3000:]}\nstderr:\n"
                      f"{p.stderr.decode(errors='replace')[-3000:]}\nserver log:\n"
                      + self.server.log_text(30))
        return p


class _Closer:
    def __init__(self, m):
        self.m = m

    def close(self):
        try:
            self.m.shutdown()
        except Exception:
            pass


def maildir_subjects(folder):
    out = []
    for sub in ("cur", "new"):
        d = os.path.join(folder, sub)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), "rb") as f:
                m = re.search(rb"^Subject: (.*?)\r?$", f.read(), re.M)
            out.append(m.group(1).decode() if m else None)
    return sorted(out)


SEED_SUBJECTS = sorted(m.header("Subject") for m in SEED)


# ---------------------------------------------------------------- Python

class TestPythonImaplib(TlsCase):

    def test_imap4_ssl_reads_every_message(self):
        m = self.imaps()
        self.assertEqual(m.sock.version() in ("TLSv1.2", "TLSv1.3"), True, m.sock.version())
        typ, data = m.select("INBOX")
        self.assertEqual(data, [str(len(SEED)).encode()])
        for i, mail in enumerate(SEED, 1):
            typ, data = m.fetch(str(i), "(BODY.PEEK[])")
            self.assertEqual(typ, "OK")
            self.assertEqual(data[0][1], mail.served)
        m.logout()

    def test_imap4_starttls_then_login_append_and_read_back(self):
        m = imaplib.IMAP4(HOST, self.port, timeout=SOCK_TIMEOUT)
        self._clients.append(_Closer(m))
        self.assertIn("STARTTLS", m.capabilities)
        self.assertOK(m.starttls(self.ctx()))
        # The capabilities asked again inside TLS no longer offer it.
        self.assertNotIn("STARTTLS", m.capabilities)
        self.assertIn("AUTH=PLAIN", m.capabilities)
        self.assertOK(m.login("alice", "alice123"))
        self.assertOK(m.append("INBOX", None, None, NEW_MAIL))
        m.select("INBOX")
        typ, data = m.fetch(str(len(SEED) + 1), "(BODY.PEEK[])")
        self.assertEqual(data[0][1], NEW_MAIL)
        m.logout()
        # Written to the store as any other message, readable in clear too.
        self.assertIn(b"Subject: sealed\n", self.server.read_mailbox("alice"))
        self.assertIn("sealed", self.inbox_subjects())

    def test_certificate_is_the_configured_one(self):
        c = self.tls_raw()
        with open(self.pki.cert) as f:
            pem = f.read()
        self.assertEqual(c.sock.getpeercert(binary_form=True), ssl.PEM_cert_to_DER_cert(pem))
        self.assertEqual(dict(x[0] for x in c.sock.getpeercert()["subject"])["commonName"],
                         "localhost")

    def test_log_names_protocol_and_cipher(self):
        m = self.imaps()
        m.logout()
        self.assertTrue(self.server.wait_log(r"\] info: TLS: TLSv1\.[23]"), self.server.log_text())


# ---------------------------------------------------------------- openssl

@unittest.skipUnless(OPENSSL, "openssl is not installed")
class TestOpensslSClient(TlsCase):

    SCRIPT = (b"a LOGIN alice alice123\r\nb SELECT INBOX\r\nc FETCH 2 BODY[]\r\n"
              b"d LOGOUT\r\n")

    def s_client(self, *args):
        # -quiet: no session dump, and end of input does not close (the
        # server's answer to LOGOUT does); -verify_return_error: a
        # certificate the test CA did not sign ends the handshake.
        return self.run_tool([OPENSSL, "s_client", "-quiet", "-verify_return_error",
                              "-CAfile", self.pki.ca_cert, "-verify_hostname", "localhost",
                              *args], input=self.SCRIPT, timeout=30)

    def check(self, out):
        self.assertRegex(out, rb"(^|\r\n)a OK ")
        self.assertRegex(out, rb"\r\nb OK \[READ-WRITE\]")
        self.assertIn(b"{%d}\r\n" % len(SEED[1].served) + SEED[1].served, out)
        self.assertRegex(out, rb"\r\nd OK ")

    def test_implicit_tls(self):
        p = self.s_client("-connect", f"127.0.0.1:{self.tls_port}")
        self.assertTrue(p.stdout.startswith(b"* OK "), p.stdout[:200])
        self.check(p.stdout)

    def test_starttls_imap(self):
        p = self.s_client("-connect", f"127.0.0.1:{self.port}", "-starttls", "imap")
        self.check(p.stdout)
        self.assertTrue(self.server.wait_log(r"\] info: TLS: TLSv1\.[23]"))

    def test_tls12_and_tls13_both_work(self):
        for flag in ("-tls1_2", "-tls1_3"):
            p = self.s_client("-connect", f"127.0.0.1:{self.tls_port}", flag)
            self.check(p.stdout)


# ---------------------------------------------------------------- curl

@unittest.skipUnless(CURL, "curl is not installed")
class TestCurlTls(TlsCase):

    def curl(self, url, *args):
        p = self.run_tool([CURL, "-s", "-S", "--max-time", str(int(20 * SLOW)),
                           "--cacert", self.pki.ca_cert, *args, url], timeout=30)
        return p.stdout

    def test_imaps_fetches_messages(self):
        for uid in (1, 2):
            out = self.curl(f"imaps://alice:alice123@localhost:{self.tls_port}/INBOX;UID={uid}")
            self.assertEqual(out, SEED[uid - 1].served)

    def test_imap_ssl_reqd_upgrades_with_starttls(self):
        out = self.curl(f"imap://alice:alice123@localhost:{self.port}/INBOX;UID=3", "--ssl-reqd")
        self.assertEqual(out, SEED[2].served)
        self.assertTrue(self.server.wait_log(r"\] info: TLS: TLSv1\.[23]"))

    def test_imaps_upload_is_stored(self):
        path = os.path.join(self.server.dir, "upload.eml")
        with open(path, "wb") as f:
            f.write(NEW_MAIL)
        self.curl(f"imaps://alice:alice123@localhost:{self.tls_port}/INBOX", "-T", path)
        self.assertIn("sealed", self.inbox_subjects())

    def test_wrong_ca_is_refused(self):
        # A client that does not trust the certificate does not talk:
        # 60 is curl's "peer certificate cannot be authenticated".
        other = make_pki(os.path.join(self.server.dir, "other-pki"))
        p = subprocess.run([CURL, "-s", "--max-time", "10", "--cacert", other.ca_cert,
                            f"imaps://alice:alice123@localhost:{self.tls_port}/INBOX;UID=1"],
                           capture_output=True, timeout=30 * SLOW)
        self.assertEqual(p.returncode, 60, p.stderr)
        self.assertEqual(p.stdout, b"")


# ---------------------------------------------------------------- mutt

@unittest.skipUnless(MUTT, "mutt is not installed")
class TestMuttTls(TlsCase):

    def run_mutt(self, url, keys, extra="", timeout=30.0):
        home = os.path.join(self.server.dir, "mutthome")
        os.makedirs(home, exist_ok=True)
        rc = os.path.join(home, "muttrc")
        with open(rc, "w") as f:
            f.write(f'set folder="{url}"\nset spoolfile="{url}INBOX"\n'
                    'set imap_user="alice"\nset imap_pass="alice123"\n'
                    f'set ssl_ca_certificates_file="{self.pki.ca_cert}"\n'
                    f'set certificate_file="{home}/certificates"\n'
                    'set ssl_force_tls=yes\n' + extra +
                    'set delete=yes\nset quit=yes\nset move=no\nset confirmappend=no\n'
                    'set sort=mailbox-order\nset header_cache=""\nset message_cachedir=""\n'
                    'set timeout=5\nset mail_check=1\nset imap_keepalive=30\n'
                    f'set tmpdir="{home}"\n')
        master, slave = os.openpty()
        env = dict(os.environ, HOME=home, TERM="vt100", LANG="C", LC_ALL="C")
        p = subprocess.Popen([MUTT, "-n", "-F", rc, "-e", f'push "{keys}"'],
                             stdin=slave, stdout=slave, stderr=slave, env=env,
                             start_new_session=True)
        os.close(slave)
        screen = b""
        deadline = time.monotonic() + timeout * SLOW
        try:
            while p.poll() is None and time.monotonic() < deadline:
                r, _, _ = select.select([master], [], [], 0.1)
                if r:
                    try:
                        screen += os.read(master, 65536)
                    except OSError:
                        break
            try:
                return p.wait(max(0.1, deadline - time.monotonic())), screen
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                return None, screen
        finally:
            os.close(master)

    def check_deleted(self, rc, screen):
        self.assertEqual(rc, 0, "mutt did not finish; screen:\n"
                         + screen.decode(errors="replace")[-1500:]
                         + "\nserver log:\n" + self.server.log_text(40))
        subjects = self.inbox_subjects()
        self.assertEqual(subjects, sorted(m.header("Subject") for m in SEED[1:]))
        self.assertTrue(self.server.wait_log(r"\] info: TLS: TLSv1\.[23]"))

    def test_imaps_deletes_first_message(self):
        rc, screen = self.run_mutt(f"imaps://alice@localhost:{self.tls_port}/",
                                   "<delete-message><sync-mailbox><quit>")
        self.check_deleted(rc, screen)

    def test_starttls_deletes_first_message(self):
        rc, screen = self.run_mutt(f"imap://alice@localhost:{self.port}/",
                                   "<delete-message><sync-mailbox><quit>",
                                   extra="set ssl_starttls=yes\n")
        self.check_deleted(rc, screen)


# ---------------------------------------------------------------- mbsync

@unittest.skipUnless(MBSYNC, "mbsync (isync) is not installed")
class TestMbsyncTls(TlsCase):

    def sync(self, ssl_type, port):
        local = os.path.join(self.server.dir, "mbsync-" + ssl_type)
        os.makedirs(local, exist_ok=True)
        conf = os.path.join(self.server.dir, "mbsyncrc-" + ssl_type)
        with open(conf, "w") as f:
            f.write(f"""IMAPAccount test
Host localhost
Port {port}
User alice
Pass alice123
SSLType {ssl_type}
CertificateFile {self.pki.ca_cert}
AuthMechs LOGIN

IMAPStore remote
Account test

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel test
Far :remote:
Near :local:
Patterns INBOX
Create Near
Expunge Both
Sync All
SyncState *
""")
        env = dict(os.environ, HOME=self.server.dir)
        self.run_tool([MBSYNC, "-c", conf, "-a"], env=env)
        return os.path.join(local, "INBOX")

    def test_imaps_syncs_both_ways(self):
        inbox = self.sync("IMAPS", self.tls_port)
        self.assertEqual(maildir_subjects(inbox), SEED_SUBJECTS)
        # A message written locally goes up through TLS.
        name = os.path.join(inbox, "new", "1.local:2,")
        with open(name, "wb") as f:
            f.write(NEW_MAIL.replace(b"\r\n", b"\n"))
        self.sync("IMAPS", self.tls_port)
        self.assertIn("sealed", self.inbox_subjects())

    def test_starttls_syncs(self):
        inbox = self.sync("STARTTLS", self.port)
        self.assertEqual(maildir_subjects(inbox), SEED_SUBJECTS)
        self.assertTrue(self.server.wait_log(r"\] info: TLS: TLSv1\.[23]"))


# ---------------------------------------------------------------- offlineimap

@unittest.skipUnless(OFFLINEIMAP, "offlineimap is not installed")
class TestOfflineimapTls(TlsCase):

    def sync(self, name, port, ssl_line):
        local = os.path.join(self.server.dir, "oi-" + name)
        meta = os.path.join(self.server.dir, "oi-meta-" + name)
        conf = os.path.join(self.server.dir, "offlineimaprc-" + name)
        with open(conf, "w") as f:
            f.write(f"""[general]
accounts = test
metadata = {meta}
ui = quiet

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {port}
remoteuser = alice
remotepass = alice123
folderfilter = lambda name: name == "INBOX"
sslcacertfile = {self.pki.ca_cert}
{ssl_line}
""")
        env = dict(os.environ, HOME=self.server.dir)
        self.run_tool([OFFLINEIMAP, "-c", conf, "-o", "-u", "quiet"], env=env, timeout=120)
        return os.path.join(local, "INBOX")

    def test_ssl_fetches_everything(self):
        inbox = self.sync("ssl", self.tls_port, "ssl = yes\nstarttls = no")
        self.assertEqual(maildir_subjects(inbox), SEED_SUBJECTS)
        self.assertTrue(self.server.wait_log(r"\] info: TLS: TLSv1\.[23]"))

    def test_starttls_fetches_everything(self):
        # offlineimap's imaplib2 reads in a thread of its own and now and
        # then sends a command in clear right behind STARTTLS, before its
        # ClientHello: the server rightly refuses that as TLS ("wrong
        # version number", the CVE-2011-0411 defence) and the client
        # fails. Other times the same race leaves it waiting after the
        # server's STARTTLS OK without ever sending its ClientHello, until
        # the server closes the session at its login timeout; and once the
        # client crashed (SIGSEGV) in the middle of its handshake, which
        # the server logs as the client's "internal error" alert; and
        # once its cleartext command came right after its handshake,
        # inside the TLS stream ("bad record type"; the client said
        # "unexpected message"). And once the handshake went through and
        # the server answered the CAPABILITY that followed, but the
        # client's two threads had both read from the TLS stream: it
        # reported "SSLEOFError ... command: CAPABILITY" and closed.
        # Only these five failures (the first four shown by the server's
        # log, the fifth by the client's) are tried again, at most twice.
        faces = 0
        for attempt in range(3):
            try:
                inbox = self.sync(f"starttls{attempt}", self.port,
                                  "ssl = no\nstarttls = yes")
                break
            except AssertionError as e:
                log = self.server.log_text(2000)
                refused = log.count("tls: handshake failed: wrong version number")
                stalled = log.count("autologout after login_timeout")
                crashed = log.count("tls: handshake failed: tlsv1 alert internal error")
                mixed = log.count("tls: handshake failed: bad record type")
                if re.search(r"command: CAPABILITY => socket error: <class "
                             r"'ssl\.SSLEOFError'>", str(e)):
                    faces += 1
                if attempt == 2 or refused + stalled + crashed + mixed + faces != attempt + 1:
                    raise
        self.assertEqual(maildir_subjects(inbox), SEED_SUBJECTS)
        self.assertTrue(self.server.wait_log(r"\] info: TLS: TLSv1\.[23]"))


# ---------------------------------------------------------------- scanner

@unittest.skipUnless(SSLSCAN, "sslscan is not installed")
class TestSslscan(TlsCase):
    """sslscan against the default TLS settings: only cert_file and
    key_file set (TlsCase adds nothing else to the tls section)."""

    WEAK = re.compile(r"RC4|3DES|DES-CBC|NULL|EXP|anon|ADH|AECDH|MD5|PSK|SRP|IDEA|SEED|CAMELLIA"
                      r"|ARIA", re.I)

    def scan(self, *args):
        p = self.run_tool([SSLSCAN, "--no-colour", *args], timeout=180)
        return p.stdout.decode(errors="replace")

    def check(self, out):
        protocols = dict(re.findall(r"^(SSLv[23]|TLSv1\.[0-3])\s+(enabled|disabled)\s*$", out,
                                    re.M))
        self.assertEqual(protocols, {"SSLv2": "disabled", "SSLv3": "disabled",
                                     "TLSv1.0": "disabled", "TLSv1.1": "disabled",
                                     "TLSv1.2": "enabled", "TLSv1.3": "enabled"}, out)
        ciphers = re.findall(r"^(?:Preferred|Accepted)\s+(\S+)\s+(\d+) bits\s+(\S+)", out, re.M)
        self.assertTrue(ciphers, out)
        for proto, bits, name in ciphers:
            self.assertIn(proto, ("TLSv1.2", "TLSv1.3"), out)
            self.assertGreaterEqual(int(bits), 128, name)
            self.assertIsNone(self.WEAK.search(name), f"weak cipher {name} accepted")
        # No client-initiated (insecure) renegotiation, no compression.
        self.assertRegex(out, r"TLS renegotiation:\s*\n\s*Session renegotiation not supported")
        self.assertNotRegex(out, r"Insecure session renegotiation supported")
        self.assertRegex(out, r"TLS Compression:\s*\n\s*(Compression disabled|OpenSSL version "
                              r"does not support compression)")
        self.assertNotRegex(out, r"Compression enabled")
        self.assertNotRegex(out, r"(?m)^\S+ vulnerable to heartbleed")
        # The certificate is the configured one.
        self.assertRegex(out, r"Subject:\s+localhost")

    def test_implicit_tls_port(self):
        self.check(self.scan(f"127.0.0.1:{self.tls_port}"))
        self.assert_tls_serves()

    def test_starttls_imap(self):
        self.check(self.scan("--starttls-imap", f"127.0.0.1:{self.port}"))
        self.assert_tls_serves()


if __name__ == "__main__":
    unittest.main()
