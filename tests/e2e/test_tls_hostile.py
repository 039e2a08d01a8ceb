"""Bad input on the TLS paths (issue 11): garbage or HTTP instead of a
ClientHello, a handshake that stops half-way or is closed in the middle,
a stalled handshake ended by tls.handshake_timeout, renegotiation,
TLS 1.0/1.1 and SSLv3 offers, STARTTLS twice, after login and with
pipelined plaintext behind it, LOGIN/AUTHENTICATE in clear where
auth.plaintext forbids them, SIGHUP with a new certificate, and missing,
unreadable, mismatched, expired or expiring certificates at start-up.

After each attack another session is served (implicit TLS, STARTTLS and
plain); tearDown checks the log holds no error or sanitizer line and
that the server stops cleanly."""

import base64
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from server import (HOST, SLOW, SOCK_TIMEOUT, ImapServer, RawClient, server_binary,
                    server_group_line, service_user)
from test_tls import OPENSSL, TlsCase, TlsRawClient
from tls_support import make_cert, make_expired, make_expiring, make_key, make_mismatched, make_pki


def client_hello(server_hostname="localhost"):
    """The bytes of a real TLS ClientHello (from Python's ssl over memory
    BIOs)."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def sslv3_client_hello():
    """A minimal SSLv3 ClientHello (record and hello version 3.0), as an
    old client would send it: TLS_RSA_WITH_AES_128_CBC_SHA and
    TLS_RSA_WITH_3DES_EDE_CBC_SHA, no compression, no extensions."""
    body = (b"\x03\x00" + bytes(range(32)) + b"\x00" + b"\x00\x04\x00\x2f\x00\x0a"
            + b"\x01\x00")
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x00" + len(hs).to_bytes(2, "big") + hs


def read_until_closed(sock, timeout):
    """What the peer sent until it closed (or reset); raises
    AssertionError if it stays open past timeout seconds."""
    deadline = time.monotonic() + timeout * SLOW
    got = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk
    raise AssertionError(f"connection still open after {timeout * SLOW:.1f} s; read {got[:80]!r}")


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


class HostileCase(TlsCase):

    def connect(self, port=None):
        s = socket.create_connection((HOST, port or self.tls_port), timeout=SOCK_TIMEOUT)
        self._clients.append(s)
        return s


class TestBadHandshakes(HostileCase):

    def test_garbage_instead_of_client_hello(self):
        s = self.connect()
        s.sendall(b"\x00\xff" * 300 + b"\r\n")
        got = read_until_closed(s, 5)
        # No IMAP in clear on the TLS port: at most a TLS alert.
        self.assertNotIn(b"* ", got)
        self.assertTrue(self.server.wait_log(r"disconnected: tls: "), self.server.log_text())
        self.assert_tls_serves()

    def test_http_request_instead_of_client_hello(self):
        s = self.connect()
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        got = read_until_closed(s, 5)
        self.assertNotIn(b"HTTP", got)
        self.assertNotIn(b"* ", got)
        self.assert_tls_serves()

    def test_garbage_after_starttls(self):
        c = RawClient(self.port)
        self._clients.append(c)
        self.assertTrue(c.readline().startswith(b"* OK"))
        _, tagged = c.command("STARTTLS")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c.send(b"a LOGIN alice alice123\r\n")
        got = read_until_closed(c.sock, 5)
        self.assertNotIn(b"a OK", got)
        self.assert_tls_serves()

    def test_half_a_client_hello_does_not_block_others(self):
        hello = client_hello()
        s = self.connect()
        s.sendall(hello[:len(hello) // 2])
        # While it waits for the rest, everyone else is served.
        self.assert_tls_serves()
        m = self.imaps()
        m.select("INBOX")
        self.assertEqual(m.fetch("1", "(UID)")[0], "OK")
        s.close()
        self.assert_tls_serves()

    def test_close_in_the_middle_of_the_handshake(self):
        for cut in ("after-hello", "after-server-hello", "half-close"):
            s = self.connect()
            s.sendall(client_hello())
            if cut == "after-server-hello":
                self.assertTrue(s.recv(5))      # the server's first record
            elif cut == "half-close":
                s.shutdown(socket.SHUT_WR)
                read_until_closed(s, 5)
            s.close()
            self.assert_tls_serves()

    def test_client_hello_byte_by_byte(self):
        """A trickling client is served in the end and blocks nobody."""
        ctx = self.ctx()
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        s = self.connect()
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outgoing.read()
        for i in range(len(hello)):
            s.sendall(hello[i:i + 1])
            if i % 64 == 0:
                self.assert_server_serves()
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                out = outgoing.read()
                if out:
                    s.sendall(out)
                data = s.recv(65536)
                self.assertTrue(data, "closed during the handshake")
                incoming.write(data)
        s.sendall(outgoing.read())
        self.assertIn(obj.version(), ("TLSv1.2", "TLSv1.3"))

    def test_renegotiation_is_refused(self):
        if not OPENSSL:
            self.skipTest("openssl is not installed")
        out_path = os.path.join(self.server.dir, "s_client.out")
        with open(out_path, "wb") as out:
            p = subprocess.Popen([OPENSSL, "s_client", "-connect", f"127.0.0.1:{self.tls_port}",
                                  "-tls1_2", "-CAfile", self.pki.ca_cert],
                                 stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
        try:
            # The greeting, then "R": s_client asks for a renegotiation.
            deadline = time.monotonic() + 10 * SLOW
            while b"* OK" not in read_file(out_path) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertIn(b"* OK", read_file(out_path))
            p.stdin.write(b"R\n")
            p.stdin.flush()
            try:
                time.sleep(0.5 * SLOW)
                p.stdin.write(b"a CAPABILITY\n")
                p.stdin.flush()
            except BrokenPipeError:
                pass
            try:
                p.stdin.close()
            except BrokenPipeError:
                pass
            p.wait(15 * SLOW)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            if not p.stdin.closed:
                try:
                    p.stdin.close()
                except BrokenPipeError:
                    pass
        out = read_file(out_path)
        self.assertIn(b"RENEGOTIATING", out)
        # OpenSSL's client reports the server's no_renegotiation alert;
        # the session never went on renegotiated.
        self.assertIn(b"no renegotiation", out)
        self.assertNotIn(b"a OK", out)
        self.assertTrue(self.server.wait_log(r"disconnected: tls: "), self.server.log_text())
        self.assert_tls_serves()

    def old_protocol(self, version):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = version
        s = self.connect()
        with self.assertRaises(ssl.SSLError) as cm:
            ctx.wrap_socket(s, server_hostname="localhost")
        return cm.exception

    def test_tls10_and_tls11_are_refused(self):
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            err = self.old_protocol(version)
            self.assertIn("PROTOCOL_VERSION", str(err).upper(), err)
        self.assertTrue(self.server.wait_log(r"handshake failed: unsupported protocol"),
                        self.server.log_text())
        self.assert_tls_serves()

    def test_openssl_tls1_is_refused(self):
        if not OPENSSL:
            self.skipTest("openssl is not installed")
        for flag in ("-tls1", "-tls1_1"):
            p = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{self.tls_port}",
                                flag, "-cipher", "DEFAULT@SECLEVEL=0"], input=b"",
                               capture_output=True, timeout=30 * SLOW)
            self.assertNotEqual(p.returncode, 0)
            self.assertNotIn(b"* OK", p.stdout)
        self.assert_tls_serves()

    def test_sslv3_offer_is_refused(self):
        s = self.connect()
        s.sendall(sslv3_client_hello())
        got = read_until_closed(s, 5)
        # At most an alert record (content type 21), never a ServerHello.
        self.assertTrue(got == b"" or got[:1] == b"\x15", got[:20])
        self.assert_tls_serves()


class TestHandshakeTimeout(HostileCase):

    TLS_EXTRA = "handshake_timeout = 1; "

    def test_stalled_handshake_is_closed(self):
        hello = client_hello()
        stalled = []
        for kind in ("nothing", "half-hello", "starttls"):
            if kind == "starttls":
                c = RawClient(self.port)
                self._clients.append(c)
                self.assertTrue(c.readline().startswith(b"* OK"))
                _, tagged = c.command("STARTTLS")
                self.assertTrue(tagged.startswith(b"OK"), tagged)
                stalled.append(c.sock)
            else:
                s = self.connect()
                if kind == "half-hello":
                    s.sendall(hello[:40])
                stalled.append(s)
        # Meanwhile others are served.
        self.assert_tls_serves()
        for s in stalled:
            read_until_closed(s, 10)
        self.assertTrue(self.server.wait_log(r"TLS handshake not done within "
                                             r"tls\.handshake_timeout"), self.server.log_text())
        self.assert_tls_serves()


class TestStarttls(HostileCase):

    def test_starttls_twice(self):
        c = self.starttls_raw()
        _, tagged = c.command("STARTTLS")
        self.assertTrue(tagged.startswith(b"BAD") or tagged.startswith(b"NO"), tagged)
        # The session goes on inside TLS.
        _, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_starttls_on_the_implicit_tls_port(self):
        c = self.tls_raw()
        resp, tagged = c.command("CAPABILITY")
        self.assertNotIn(b"STARTTLS", b"".join(resp))
        _, tagged = c.command("STARTTLS")
        self.assertTrue(tagged.startswith(b"BAD") or tagged.startswith(b"NO"), tagged)
        _, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_starttls_after_login(self):
        c = self.raw_login()
        _, tagged = c.command("STARTTLS")
        self.assertTrue(tagged.startswith(b"BAD"), tagged)
        # Still in clear, still logged in.
        resp, tagged = c.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_pipelined_plaintext_after_starttls_is_dropped(self):
        c = TlsRawClient(self.port, self.ctx(), implicit=False)
        self._clients.append(c)
        self.assertTrue(c.readline().startswith(b"* OK"))
        c.send(b"a STARTTLS\r\nb CAPABILITY\r\nc LOGIN alice alice123\r\n")
        line = c.readline()
        self.assertTrue(line.startswith(b"a OK"), line)
        # Nothing more in clear: the next bytes are the TLS handshake.
        c.sock.settimeout(0.5 * SLOW)
        try:
            extra = c.sock.recv(100)
        except socket.timeout:
            extra = b""
        c.sock.settimeout(SOCK_TIMEOUT)
        self.assertEqual(c.buf + extra, b"", "answered in clear after STARTTLS")
        c.sock = c.ctx.wrap_socket(c.sock, server_hostname="localhost")
        # Inside TLS: the session starts afresh; b and c were never run.
        resp, tagged = c.command("NOOP", tag="d")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        for r in resp:
            self.assertFalse(r.startswith(b"b ") or r.startswith(b"c "), resp)
        resp, tagged = c.command("CAPABILITY", tag="e")
        self.assertIn(b"AUTH=PLAIN", b"".join(resp))
        self.assertFalse(any(line.startswith((b"b ", b"c ")) for line in resp))
        # Not logged in: c's LOGIN was dropped.
        _, tagged = c.command("SELECT INBOX", tag="f")
        self.assertTrue(tagged.startswith(b"BAD"), tagged)


class TestPlaintextNever(HostileCase):

    AUTH_EXTRA = 'plaintext = "never"; '

    def test_login_and_authenticate_need_tls(self):
        c = self.raw()
        resp, tagged = c.command("CAPABILITY")
        caps = b"".join(resp).split()
        self.assertIn(b"STARTTLS", caps)
        self.assertIn(b"LOGINDISABLED", caps)
        self.assertNotIn(b"AUTH=PLAIN", caps)
        _, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"NO [PRIVACYREQUIRED]"), tagged)
        plain = base64.b64encode(b"\0alice\0alice123").decode()
        _, tagged = c.command("AUTHENTICATE PLAIN " + plain)
        self.assertTrue(tagged.startswith(b"NO [PRIVACYREQUIRED]"), tagged)
        _, tagged = c.command("AUTHENTICATE PLAIN")
        self.assertTrue(tagged.startswith(b"NO [PRIVACYREQUIRED]"), tagged)
        _, tagged = c.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"BAD"), tagged)
        # After STARTTLS on the same connection both work.
        c = TlsRawClient(self.port, self.ctx(), implicit=False)
        self._clients.append(c)
        c.readline()
        self.assertTrue(c.starttls().startswith(b"OK"))
        resp, _ = c.command("CAPABILITY")
        caps = b"".join(resp).split()
        self.assertNotIn(b"LOGINDISABLED", caps)
        self.assertNotIn(b"STARTTLS", caps)
        self.assertIn(b"AUTH=PLAIN", caps)
        _, tagged = c.command("AUTHENTICATE PLAIN " + plain)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c2 = self.starttls_raw()
        _, tagged = c2.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # And on the implicit TLS port.
        m = self.imaps()
        self.assertEqual(m.select("INBOX")[0], "OK")


class TestReload(HostileCase):

    def test_sighup_new_certificate_for_new_sessions_only(self):
        old = self.tls_raw()
        old_der = old.sock.getpeercert(binary_form=True)
        _, tagged = old.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # A new key and certificate in place of the old files.
        new_key = make_key(self.pki.folder, "new.key")
        new_cert = make_cert(self.pki, "new.pem", new_key)
        shutil.copyfile(new_key, self.pki.key)
        shutil.copyfile(new_cert, self.pki.cert)
        self.server.give_to_server()
        self.server.proc.send_signal(signal.SIGHUP)
        self.assertTrue(self.server.wait_log(r"configuration reloaded"), self.server.log_text())
        new = self.tls_raw()
        new_der = new.sock.getpeercert(binary_form=True)
        with open(new_cert) as f:
            self.assertEqual(new_der, ssl.PEM_cert_to_DER_cert(f.read()))
        self.assertNotEqual(new_der, old_der)
        # The running session keeps its TLS session and works on.
        resp, tagged = old.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = old.command("FETCH 1 BODY.PEEK[]")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(old.sock.getpeercert(binary_form=True), old_der)
        # STARTTLS sessions get the new one too.
        st = self.starttls_raw()
        self.assertEqual(st.sock.getpeercert(binary_form=True), new_der)


class TestReloadBroken(HostileCase):

    ALLOW_LOG_ERRORS = True     # the failed reload is logged as an error

    def test_sighup_with_a_broken_pair_keeps_the_old_one(self):
        old = self.tls_raw()
        old_der = old.sock.getpeercert(binary_form=True)
        # A key that does not match the certificate any more.
        other = make_key(self.pki.folder, "other.key")
        shutil.copyfile(other, self.pki.key)
        self.server.give_to_server()
        self.server.proc.send_signal(signal.SIGHUP)
        self.assertTrue(self.server.wait_log(r"reload failed, keeping the running "
                                             r"configuration: .*the key does not match"),
                        self.server.log_text())
        new = self.tls_raw()
        self.assertEqual(new.sock.getpeercert(binary_form=True), old_der)
        _, tagged = old.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assert_tls_serves()


class TestStartupCertificates(unittest.TestCase):
    """A broken certificate at start-up: "imapserver -t" and a real start
    both exit 1 naming the file and what is wrong; one that expires
    within 30 days is a warning of -t."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="imapserver-tls-start-")
        os.chmod(self.dir, 0o755)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.pki = make_pki(os.path.join(self.dir, "pki"))
        with open(os.path.join(self.dir, "users"), "w") as f:
            f.write("alice alice123\n")
        os.makedirs(os.path.join(self.dir, "mail"))
        # As root, -t checks that the server user can write in the store.
        pw = __import__("server").service_user()
        if pw is not None:
            os.chown(os.path.join(self.dir, "mail"), pw.pw_uid, pw.pw_gid)

    def conf(self, cert, key, server_line=None):
        path = os.path.join(self.dir, "imapserver.conf")
        with open(path, "w") as f:
            f.write('imap: { address = "127.0.0.1"; port = 0; };\n'
                    'storage: { backend = "flat"; root = "mail"; };\n'
                    'auth: { backend = "passwd-file"; file = "users"; };\n'
                    f'tls: {{ cert_file = "{cert}"; key_file = "{key}"; }};\n'
                    + (server_group_line() if server_line is None else server_line))
        return path

    def run_server(self, conf, check, **kw):
        args = [server_binary(), "-c", conf] + (["-t"] if check else ["-f"])
        return subprocess.run(args, capture_output=True, text=True, timeout=20 * SLOW, **kw)

    def assert_refused(self, cert, key, message, **kw):
        conf = self.conf(cert, key, kw.pop("server_line", None))
        for check in (True, False):
            p = self.run_server(conf, check, **kw)
            self.assertEqual(p.returncode, 1, f"-t={check}: {p.stdout}{p.stderr}")
            self.assertIn(message, p.stderr, f"-t={check}")
            self.assertNotIn("listening on", p.stderr)
            self.assertNotRegex(p.stderr, r"AddressSanitizer|runtime error:|Segmentation")

    def test_missing_certificate(self):
        missing = os.path.join(self.dir, "nope.pem")
        self.assert_refused(missing, self.pki.key, f"{missing}: cannot read: No such file")

    def test_missing_key(self):
        missing = os.path.join(self.dir, "nope.key")
        self.assert_refused(self.pki.cert, missing, f"{missing}: cannot read: No such file")

    def test_unreadable_key(self):
        key = os.path.join(self.dir, "private", "server.key")
        os.makedirs(os.path.dirname(key))
        shutil.copyfile(self.pki.key, key)
        os.chmod(key, 0o000)
        kw = {}
        if os.geteuid() == 0:
            # Root reads anything: run the server as the service user
            # (it cannot switch users then: no server.user).
            pw = service_user()
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            for base, dirs, files in os.walk(self.dir):
                for name in dirs + files:
                    os.chown(os.path.join(base, name), pw.pw_uid, pw.pw_gid)
            os.chown(key, 0, 0)
            kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [],
                  "server_line": ""}
        self.assert_refused(self.pki.cert, key, f"{key}: cannot read: Permission denied", **kw)

    def test_not_a_certificate(self):
        bogus = os.path.join(self.dir, "bogus.pem")
        with open(bogus, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
        self.assert_refused(bogus, self.pki.key, f"{bogus}: not a PEM certificate chain")

    def test_mismatched_key(self):
        cert, key = make_mismatched(self.pki)
        self.assert_refused(cert, key, f"{key}: the key does not match the certificate in {cert}")

    def test_expired_certificate(self):
        cert, key = make_expired(self.pki)
        self.assert_refused(cert, key, f"{cert}: the certificate expired on ")

    def test_expiring_certificate_is_a_warning(self):
        cert, key = make_expiring(self.pki, days=10)
        p = self.run_server(self.conf(cert, key), check=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout + p.stderr, rf"warning.*{cert}: the certificate expires on "
                                              r"\d{4}-\d\d-\d\d \(within 30 days\)")

    def test_good_certificate_checks_clean(self):
        p = self.run_server(self.conf(self.pki.cert, self.pki.key), check=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("warning", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
