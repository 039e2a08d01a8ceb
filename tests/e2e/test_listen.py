"""Several listen addresses per key (issue 14): imap.address and
smtp.address name IPv4 and IPv6 addresses, as a list or in one string;
every port (IMAP, implicit TLS, SMTP, submission) listens on each of them,
on one port number, in imapserver and in smtpmail alike, and -t refuses a
list that cannot be bound, with file:line."""

import re
import socket
import subprocess
import unittest

from server import HOST, SOCK_TIMEOUT, ImapServer
from smtp_support import SmtpTestCase


def _ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# The second address: IPv6 loopback where the machine has it, else
# another IPv4 loopback address (Linux answers on all of 127/8).
SECOND = "::1" if _ipv6_loopback() else "127.0.0.2"
FAMILY = socket.AF_INET6 if SECOND == "::1" else socket.AF_INET
SHOWN = "[::1]" if SECOND == "::1" else SECOND


def greeting(addr, port, family):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(SOCK_TIMEOUT)
        s.connect((addr, port))
        return s.recv(512)


def set_addresses(server, imap_value, smtp_value):
    with open(server.conf) as f:
        text = f.read()
    text = text.replace('imap: { address = "127.0.0.1";', f"imap: {{ address = {imap_value};", 1)
    text = re.sub(r'(smtp: \{.*?)address = "127\.0\.0\.1";', rf"\1address = {smtp_value};",
                  text, count=1)
    with open(server.conf, "w") as f:
        f.write(text)


class TestSeveralAddresses(SmtpTestCase):
    SUBMISSION = True

    def configure(self, server):
        set_addresses(server, f'["127.0.0.1", "{SECOND}"]', f'"127.0.0.1, {SECOND}"')

    def test_every_port_on_every_address(self):
        log = self.server.log_text()
        self.assertIn(f"listening on 127.0.0.1:{self.port}, {SHOWN}:{self.port}", log)
        self.assertIn(f"127.0.0.1:{self.smtp_port}, {SHOWN}:{self.smtp_port}", log)
        self.assertIn(f"127.0.0.1:{self.submission_port}, {SHOWN}:{self.submission_port}",
                      log)
        for addr, fam in ((HOST, socket.AF_INET), (SECOND, FAMILY)):
            self.assertTrue(greeting(addr, self.port, fam).startswith(b"* OK"))
            self.assertTrue(greeting(addr, self.smtp_port, fam).startswith(b"220"))
            self.assertTrue(greeting(addr, self.submission_port, fam).startswith(b"220"))
        # a login over the second address is a normal session
        with socket.socket(FAMILY, socket.SOCK_STREAM) as s:
            s.settimeout(SOCK_TIMEOUT)
            s.connect((SECOND, self.port))
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"a LOGIN alice alice123\r\nb LOGOUT\r\n")
            lines = [f.readline() for _ in range(3)]
            self.assertTrue(lines[0].startswith(b"a OK"), lines)


class TestSeveralAddressesSmtpmail(TestSeveralAddresses):
    MODE = "standalone"

    def test_every_port_on_every_address(self):
        log = self.smtpmail.log_text()
        self.assertIn(f"127.0.0.1:{self.smtp_port}, {SHOWN}:{self.smtp_port}", log)
        for addr, fam in ((HOST, socket.AF_INET), (SECOND, FAMILY)):
            self.assertTrue(greeting(addr, self.smtp_port, fam).startswith(b"220"))
            self.assertTrue(greeting(addr, self.submission_port, fam).startswith(b"220"))


class TestAddressListChecked(unittest.TestCase):
    """-t on a list with one address the machine does not have names it,
    with the file and line; nothing starts."""

    def test_bad_member_refused_by_check(self):
        server = ImapServer({"alice": ""})
        self.addCleanup(server.cleanup)
        set_addresses(server, '["127.0.0.1", "192.0.2.1"]', '"127.0.0.1"')
        server.give_to_server()
        r = subprocess.run([server.binary, "-t", "-c", server.conf], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, r"imapserver\.conf:\d+: imap\.address: cannot listen on "
                         r"'192\.0\.2\.1'")
