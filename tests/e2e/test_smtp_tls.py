"""End-to-end tests of SMTP over TLS and of authenticated submission
(issue 11): STARTTLS on the receiver port (RFC 3207), smtp.submission_port
(STARTTLS + AUTH, RFC 6409) and smtp.submissions_port (implicit TLS + AUTH,
RFC 8314), against the real binaries, with Python's smtplib (starttls(),
login(), SMTP_SSL), swaks and openssl s_client when they are installed,
and raw sockets for exact replies and hostile input. Every delivery is
read back over IMAP.

Certificates come from tls_support.make_pki (the openssl tool): a test CA
and a certificate for localhost / 127.0.0.1 that clients verify."""

import imaplib
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import unittest

from server import HOST, SLOW, SOCK_TIMEOUT, USERS
from smtp_support import TRACE_RE, RawSmtp, SmtpTestCase
from tls_support import make_cert, make_pki

SEED_COUNT = 4   # messages in alice's seeded INBOX (server.SEED)

MESSAGE = (b"From: bob@localhost\r\n"
           b"To: alice@localhost\r\n"
           b"Subject: over TLS\r\n"
           b"\r\n"
           b"sent by an authenticated user\r\n"
           b".leading dot\r\n")

# Tools the tests drive (skipped with a reason where missing; CI has them).
OPENSSL = shutil.which("openssl")
SWAKS = shutil.which("swaks")


def swaks_missing():
    """Why swaks cannot run the TLS tests, or None."""
    if SWAKS is None:
        return "swaks is missing (package swaks)"
    out = subprocess.run([SWAKS, "--support"], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=60)
    if "=== TLS supported" not in out.stdout + out.stderr:
        return "swaks has no TLS: it needs Net::SSLeay (package libnet-ssleay-perl)"
    return None

_PKI = None
_PKI_DIR = None


def setUpModule():  # pylint: disable=invalid-name
    global _PKI, _PKI_DIR
    if OPENSSL is None:
        return
    _PKI_DIR = tempfile.mkdtemp(prefix="smtp-tls-pki-")
    os.chmod(_PKI_DIR, 0o755)
    _PKI = make_pki(os.path.join(_PKI_DIR, "pki"))


def tearDownModule():  # pylint: disable=invalid-name
    if _PKI_DIR is not None:
        shutil.rmtree(_PKI_DIR, ignore_errors=True)


class TlsSmtpCase(SmtpTestCase):
    """A server with a certificate, the submission ports, auth.plaintext
    as AUTH_PLAINTEXT and tls.handshake_timeout as HANDSHAKE_TIMEOUT."""

    SUBMISSION = True
    SUBMISSIONS = True
    AUTH_PLAINTEXT = None          # None: the default ("loopback")
    HANDSHAKE_TIMEOUT = None

    def setUp(self):
        if _PKI is None:
            self.skipTest("the openssl tool is missing (package openssl)")
        self.pki = _PKI
        super().setUp()

    def configure(self, server):
        extra = ""
        if self.HANDSHAKE_TIMEOUT is not None:
            extra = f"handshake_timeout = {self.HANDSHAKE_TIMEOUT}; "
        with open(server.conf) as f:
            text = f.read()
        if self.AUTH_PLAINTEXT is not None:
            old = 'auth: { backend = "passwd-file"; file = "users"; };'
            self.assertIn(old, text)
            text = text.replace(old, 'auth: { backend = "passwd-file"; file = "users"; '
                                f'plaintext = "{self.AUTH_PLAINTEXT}"; }};')
        with open(server.conf, "w") as f:
            f.write(text + self.pki.conf(extra))

    # -- clients

    def context(self):
        return self.pki.client_context()

    def submission(self, login=None):
        """smtplib on the submission port, after STARTTLS (and login)."""
        s = smtplib.SMTP(HOST, self.submission_port, timeout=SOCK_TIMEOUT * SLOW)
        self._clients.append(_Closer(s))
        s.ehlo("client.example")
        s.starttls(context=self.context())
        s.ehlo("client.example")
        if login is not None:
            s.login(login, login + "123")
        return s

    def submissions(self, login=None):
        """smtplib on the implicit TLS port (and login)."""
        s = smtplib.SMTP_SSL(HOST, self.submissions_port, timeout=SOCK_TIMEOUT * SLOW,
                             context=self.context())
        self._clients.append(_Closer(s))
        s.ehlo("client.example")
        if login is not None:
            s.login(login, login + "123")
        return s

    def tls_raw(self, port, starttls):
        """A RawSmtp whose socket is TLS: after STARTTLS on port (the
        greeting and EHLO read in clear), or from connect."""
        c = RawSmtp(port)
        self._clients.append(c)
        if starttls:
            self.assertEqual(c.reply()[0], 220)
            self.assertEqual(c.command("EHLO client.example")[0], 250)
            self.assertEqual(c.command("STARTTLS"), (220, ["2.0.0 Ready to start TLS"]))
        self.assertEqual(c.buf, b"")
        c.sock = self.context().wrap_socket(c.sock, server_hostname="localhost")
        if not starttls:
            self.assertEqual(c.reply()[0], 220)
        return c

    def wait_smtp_log(self, pattern):
        proc = self.smtpmail if self.smtpmail is not None else self.server
        return proc.wait_log(pattern, 5.0)

    def smtp_log_text(self):
        proc = self.smtpmail if self.smtpmail is not None else self.server
        return proc.log_text()

    def assert_delivered(self, count, mail_from, proto, user="alice"):
        """user's INBOX holds count messages, the last one MESSAGE from
        mail_from, received with proto."""
        self.assertEqual(self.inbox_count(user), count)
        body = self.fetch_body(count, user)
        m = self.assert_trace_then(body, MESSAGE, mail_from, proto=proto)
        return m


class _Closer:
    def __init__(self, s):
        self.s = s

    def close(self):
        try:
            self.s.close()
        except Exception:
            pass


class SubmissionTests:
    """Run in both modes (mixed into the classes at the end)."""

    def test_receiver_offers_starttls_but_never_auth(self):
        c = self.raw_smtp()
        code, lines = c.command("EHLO client.example")
        self.assertEqual(code, 250)
        self.assertIn("STARTTLS", lines)
        self.assertFalse([x for x in lines if x.startswith("AUTH")], lines)
        self.assertEqual(c.command("AUTH PLAIN AGFsaWNlAGFsaWNlMTIz")[0], 502)

    def test_smtplib_starttls_login_sendmail_then_imap(self):
        s = self.submission(login="bob")
        self.assertEqual(s.sendmail("bob@localhost", ["alice@localhost"], MESSAGE), {})
        s.quit()
        self.assert_delivered(SEED_COUNT + 1, "bob@localhost", b"ESMTPSA")

    def test_smtp_ssl_on_submissions_login_sendmail(self):
        s = self.submissions(login="bob")
        self.assertIn("PLAIN", s.esmtp_features.get("auth", ""))
        self.assertNotIn("starttls", s.esmtp_features)
        self.assertEqual(s.sendmail("bob@localhost", ["alice@localhost"], MESSAGE), {})
        s.quit()
        self.assert_delivered(SEED_COUNT + 1, "bob@localhost", b"ESMTPSA")

    def test_receiver_starttls_delivers_without_auth(self):
        s = self.smtp()
        s.ehlo("client.example")
        s.starttls(context=self.context())
        self.assertEqual(s.sendmail("bob@example.org", ["alice@localhost"], MESSAGE), {})
        s.quit()
        self.assert_delivered(SEED_COUNT + 1, "bob@example.org", b"ESMTPS")
        self.assertTrue(self.wait_smtp_log(r"smtp: TLS: TLSv1\.[23] "), self.smtp_log_text())

    def test_mail_before_auth_is_530(self):
        s = self.submission()
        self.assertEqual(s.mail("alice@localhost")[0], 530)
        c = self.submissions()
        code, msg = c.mail("alice@localhost")
        self.assertEqual((code, msg), (530, b"5.7.0 Authentication required"))

    def test_wrong_password_is_535_and_the_third_closes(self):
        s = self.submission()
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s.login("alice", "wrong")
        self.assertEqual(cm.exception.smtp_code, 535)
        c = self.tls_raw(self.submissions_port, starttls=False)
        self.assertEqual(c.command("EHLO c")[0], 250)
        for _ in range(2):
            self.assertEqual(c.command("AUTH PLAIN AGFsaWNlAHdyb25n"),
                             (535, ["5.7.8 Authentication credentials invalid"]))
        self.assertEqual(c.command("AUTH LOGIN YWxpY2U=")[0], 334)
        self.assertEqual(c.command("d3Jvbmc=")[0], 535)
        self.assertEqual(c.reply()[0], 421)
        self.assertTrue(c.at_eof())

    def test_forged_sender_is_553_and_relaying_550(self):
        s = self.submission(login="alice")
        code, msg = s.mail("bob@localhost")
        self.assertEqual((code, msg),
                         (553, b"5.7.1 Sender address rejected: not owned by user alice"))
        self.assertEqual(s.mail("<>")[0], 553)
        self.assertEqual(s.mail("alice@LOCALHOST")[0], 250)
        code, msg = s.rcpt("carol@example.org")
        self.assertEqual((code, msg), (550, b"5.7.1 Relaying denied: this server delivers to "
                                            b"local users only"))
        self.assertEqual(s.rcpt("alice@localhost")[0], 250)
        with self.assertRaises(smtplib.SMTPSenderRefused):
            s.rset()
            s.sendmail("bob@localhost", ["alice@localhost"], MESSAGE)
        self.assertEqual(self.inbox_count(), SEED_COUNT)

    def test_starttls_twice_is_503(self):
        s = self.submission()
        self.assertEqual(s.docmd("STARTTLS")[0], 503)
        self.assertEqual(s.docmd("STARTTLS", "now")[0], 501)
        self.assertEqual(s.noop()[0], 250)

    def test_plaintext_pipelined_behind_starttls_is_never_answered(self):
        # CVE-2011-0411: RSET and MAIL sent in clear in the same write as
        # STARTTLS must not be read as if they came through TLS.
        for port in (self.smtp_port, self.submission_port):
            c = RawSmtp(port)
            self._clients.append(c)
            self.assertEqual(c.reply()[0], 220)
            self.assertEqual(c.command("EHLO client.example")[0], 250)
            c.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\n")
            self.assertEqual(c.reply(), (220, ["2.0.0 Ready to start TLS"]))
            self.assertEqual(c.buf, b"")
            c.sock = self.context().wrap_socket(c.sock, server_hostname="localhost")
            # The first reply inside TLS answers our EHLO (the session
            # was reset), not the RSET; and no MAIL is in progress.
            code, lines = c.command("EHLO again.example")
            self.assertEqual(code, 250)
            self.assertEqual(lines[0], "localhost")
            self.assertNotIn("STARTTLS", lines)
            self.assertEqual(c.command("RCPT TO:<alice@localhost>")[0], 503)
            self.assertEqual(c.command("QUIT")[0], 221)

    def test_garbage_instead_of_client_hello_closes_only_that_connection(self):
        bad = socket.create_connection((HOST, self.submissions_port), timeout=SOCK_TIMEOUT)
        self._clients.append(bad)
        bad.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        after_starttls = self.raw_smtp(port=self.submission_port)
        self.assertEqual(after_starttls.command("EHLO c")[0], 250)
        self.assertEqual(after_starttls.command("STARTTLS")[0], 220)
        after_starttls.send(b"\x00\x01garbage, not a ClientHello\r\n" * 4)
        self.assertTrue(after_starttls.at_eof(10.0))
        bad.settimeout(10.0 * SLOW)
        data = b""
        try:
            while True:
                chunk = bad.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        # Never a clear-text SMTP reply to an HTTP request.
        self.assertFalse(data.startswith(b"220") or data.startswith(b"5"), data)
        # Everyone else is still served.
        s = self.submissions(login="bob")
        self.assertEqual(s.sendmail("bob@localhost", ["alice@localhost"], MESSAGE), {})
        s.quit()
        self.assert_delivered(SEED_COUNT + 1, "bob@localhost", b"ESMTPSA")

    def test_swaks_tls_and_tls_on_connect_with_auth_plain_and_login(self):
        why = swaks_missing()
        if why is not None:
            self.skipTest(why)
        runs = [(self.submission_port, "--tls", "PLAIN"),
                (self.submissions_port, "--tls-on-connect", "LOGIN")]
        for n, (port, mode, mech) in enumerate(runs, 1):
            out = subprocess.run(
                [SWAKS, "--server", HOST, "--port", str(port), mode,
                 "--tls-verify", "--tls-ca-path", self.pki.ca_cert,
                 "--auth", mech, "--auth-user", "bob", "--auth-password", "bob123",
                 "--from", "bob@localhost", "--to", "alice@localhost",
                 "--helo", "swaks.example", "--header", f"Subject: swaks {n}",
                 "--body", "sent by swaks"],
                stdin=subprocess.DEVNULL, capture_output=True, timeout=60 * SLOW, text=True)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr + "\nserver log:\n"
                             + self.smtp_log_text())
            self.assertIn("235 2.7.0", out.stdout)
            self.assertEqual(self.inbox_count(), SEED_COUNT + n)
            body = self.fetch_body(SEED_COUNT + n)
            m = TRACE_RE.match(body)
            self.assertIsNotNone(m, body[:300])
            self.assertEqual(m.group("proto"), b"ESMTPSA")
            self.assertIn(f"Subject: swaks {n}".encode(), body)

    def test_client_closing_in_the_handshake_leaves_the_others_served(self):
        for port, starttls in ((self.submissions_port, False), (self.submission_port, True)):
            c = RawSmtp(port)
            self._clients.append(c)
            if starttls:
                self.assertEqual(c.reply()[0], 220)
                self.assertEqual(c.command("EHLO c")[0], 250)
                self.assertEqual(c.command("STARTTLS")[0], 220)
            c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20)
            c.close()
        s = self.submissions(login="bob")
        self.assertEqual(s.sendmail("bob@localhost", ["alice@localhost"], MESSAGE), {})
        s.quit()
        self.assert_delivered(SEED_COUNT + 1, "bob@localhost", b"ESMTPSA")

    def test_sighup_gives_new_sessions_the_new_certificate(self):
        old = self.submissions()
        old_cert = old.sock.getpeercert(binary_form=True)
        renewed = make_cert(self.pki, f"renewed-{self.MODE}.pem", self.pki.key, days=200)
        with open(self.server.conf) as f:
            text = f.read()
        with open(self.server.conf, "w") as f:
            f.write(text.replace(f'cert_file = "{self.pki.cert}"',
                                 f'cert_file = "{renewed}"'))
        proc = self.smtpmail if self.smtpmail is not None else self.server
        proc.proc.send_signal(signal.SIGHUP)
        self.assertTrue(proc.wait_log("configuration reloaded", 5.0), proc.log_text())
        new = self.submissions()
        new_cert = new.sock.getpeercert(binary_form=True)
        self.assertNotEqual(new_cert, old_cert)
        with open(renewed) as f:
            self.assertEqual(new_cert, ssl.PEM_cert_to_DER_cert(f.read()))
        # The running session keeps its channel and goes on.
        self.assertEqual(old.noop()[0], 250)
        old.login("bob", "bob123")
        self.assertEqual(old.sendmail("bob@localhost", ["alice@localhost"], MESSAGE), {})
        self.assert_delivered(SEED_COUNT + 1, "bob@localhost", b"ESMTPSA")

    @unittest.skipIf(OPENSSL is None, "openssl is missing (package openssl)")
    def test_openssl_s_client_starttls_smtp_verifies_the_chain(self):
        out = subprocess.run(
            [OPENSSL, "s_client", "-connect", f"{HOST}:{self.smtp_port}", "-starttls", "smtp",
             "-CAfile", self.pki.ca_cert, "-verify_return_error", "-verify_hostname",
             "localhost", "-quiet"],
            input=b"EHLO openssl.example\r\nQUIT\r\n", capture_output=True,
            timeout=60 * SLOW)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn(b"221 2.0.0 Bye", out.stdout)


class PlaintextNeverTests(TlsSmtpCase):
    """auth.plaintext = "never": no AUTH before TLS, even on loopback."""

    AUTH_PLAINTEXT = "never"
    SUBMISSIONS = False

    def imap(self, user="alice", password=None, login=True):
        # IMAP refuses a password in clear here too: STARTTLS first.
        m = imaplib.IMAP4(HOST, self.port, timeout=SOCK_TIMEOUT * SLOW)
        self._clients.append(_Closer(m))
        m.starttls(ssl_context=self.context())
        if login:
            m.login(user, password or USERS[user])
        return m

    def test_auth_before_tls_is_538_and_not_offered(self):
        c = self.raw_smtp(port=self.submission_port)
        code, lines = c.command("EHLO client.example")
        self.assertEqual(code, 250)
        self.assertIn("STARTTLS", lines)
        self.assertFalse([x for x in lines if x.startswith("AUTH")], lines)
        self.assertEqual(c.command("AUTH PLAIN AGFsaWNlAGFsaWNlMTIz"),
                         (538, ["5.7.11 Encryption required for requested authentication "
                                "mechanism"]))
        self.assertEqual(c.command("MAIL FROM:<alice@localhost>")[0], 530)
        # After STARTTLS it is offered and works.
        s = self.submission(login="alice")
        self.assertEqual(s.sendmail("alice@localhost", ["alice@localhost"], MESSAGE), {})
        s.quit()
        self.assert_delivered(SEED_COUNT + 1, "alice@localhost", b"ESMTPSA")


class PlaintextLoopbackTests(TlsSmtpCase):
    """The default, auth.plaintext = "loopback": the tests' client is on
    loopback, so AUTH is offered in clear too."""

    SUBMISSIONS = False

    def test_auth_in_clear_on_loopback(self):
        s = smtplib.SMTP(HOST, self.submission_port, timeout=SOCK_TIMEOUT * SLOW)
        self._clients.append(_Closer(s))
        s.ehlo("client.example")
        self.assertIn("LOGIN", s.esmtp_features.get("auth", ""))
        s.login("alice", "alice123")
        self.assertEqual(s.sendmail("alice@localhost", ["alice@localhost"], MESSAGE), {})
        s.quit()
        self.assert_delivered(SEED_COUNT + 1, "alice@localhost", b"ESMTPA")


class StalledHandshakeTests(TlsSmtpCase):
    """A client that stops in its handshake holds nobody up and is closed
    after tls.handshake_timeout."""

    HANDSHAKE_TIMEOUT = 1

    def test_stalled_handshakes_do_not_stop_other_sessions(self):
        # One says nothing on the implicit TLS port, one sends half a
        # ClientHello, one stops after STARTTLS.
        silent = socket.create_connection((HOST, self.submissions_port), timeout=SOCK_TIMEOUT)
        half = socket.create_connection((HOST, self.submissions_port), timeout=SOCK_TIMEOUT)
        half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        stalled = self.raw_smtp()
        self.assertEqual(stalled.command("EHLO c")[0], 250)
        self.assertEqual(stalled.command("STARTTLS")[0], 220)
        for sock in (silent, half):
            self._clients.append(sock)
        # Meanwhile the others are served at once.
        s = self.submissions(login="bob")
        self.assertEqual(s.sendmail("bob@localhost", ["alice@localhost"], MESSAGE), {})
        s.quit()
        self.assert_delivered(SEED_COUNT + 1, "bob@localhost", b"ESMTPSA")
        # Then the server gives up on them.
        self.assertTrue(stalled.at_eof(10.0))
        for sock in (silent, half):
            sock.settimeout(10.0 * SLOW)
            try:
                self.assertEqual(sock.recv(4096), b"")
            except ConnectionResetError:
                pass
        self.assertTrue(self.wait_smtp_log("TLS handshake not done within "
                                           "tls.handshake_timeout"))


class InProcessTlsTest(SubmissionTests, TlsSmtpCase):
    MODE = "inprocess"


class StandaloneTlsTest(SubmissionTests, TlsSmtpCase):
    MODE = "standalone"


if __name__ == "__main__":
    unittest.main()
