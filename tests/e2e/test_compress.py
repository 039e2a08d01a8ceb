"""COMPRESS=DEFLATE (RFC 4978) against the real server: a client of our
own on Python's zlib (raw DEFLATE, wbits -15) over plain IMAP, over
STARTTLS and over implicit TLS, reading and writing mail through the
compressed channel; the unhappy paths (a second COMPRESS, an unknown
mechanism, COMPRESS before login, a corrupt stream, a zip bomb); and
mutt with imap_deflate, a real client that uses it."""

import os
import re
import select
import shutil
import socket
import subprocess
import time
import unittest
import zlib

from server import HOST, SEED, SLOW, SOCK_TIMEOUT, USERS, WRAPPER, ServerTestCase
from test_tls import TlsCase

MUTT = shutil.which("mutt")


class ZClient:
    """An IMAP client that can switch to DEFLATE after COMPRESS: lines and
    whole responses (literals inline), compressed or not. sock may be a
    TLS socket: then DEFLATE runs inside TLS, as RFC 4978 wants."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(SOCK_TIMEOUT * SLOW)
        self.plain = b""        # decoded input not yet consumed
        self.deflate = None
        self.inflate = None
        self.wire_in = 0        # octets received after COMPRESS
        self.tagn = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def start_compress(self, leftover=b""):
        """Compress from now on; leftover: octets already received after
        the tagged OK (compressed)."""
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)
        self.plain += self.inflate.decompress(leftover)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        if self.inflate is not None:
            self.wire_in += len(chunk)
            chunk = self.inflate.decompress(chunk)
        self.plain += chunk

    def readline(self):
        while b"\n" not in self.plain:
            self._fill()
        i = self.plain.index(b"\n") + 1
        line, self.plain = self.plain[:i], self.plain[i:]
        return line

    def read_response(self):
        out = b""
        while True:
            line = self.readline()
            out += line
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.plain) < n:
                self._fill()
            out += self.plain[:n]
            self.plain = self.plain[n:]

    def command(self, text):
        """Sends "tN text"; returns (untagged responses, tagged line)."""
        self.tagn += 1
        tag = f"t{self.tagn}".encode()
        self.send(tag + b" " + text.encode() + b"\r\n")
        untagged = []
        while True:
            resp = self.read_response()
            if resp.startswith(tag + b" "):
                return untagged, resp[len(tag) + 1:]
            untagged.append(resp)

    def compress(self):
        """COMPRESS DEFLATE; returns its tagged line. The OK comes in
        clear and whatever follows it is compressed (the raw octets after
        its CRLF are what was read in the same recv)."""
        self.tagn += 1
        tag = f"t{self.tagn}".encode()
        self.sock.sendall(tag + b" COMPRESS DEFLATE\r\n")
        while True:
            while b"\n" not in self.plain:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed")
                self.plain += chunk
            i = self.plain.index(b"\n") + 1
            line, self.plain = self.plain[:i], self.plain[i:]
            if line.startswith(tag + b" "):
                break
        tagged = line[len(tag) + 1:]
        if tagged.startswith(b"OK"):
            rest, self.plain = self.plain, b""
            self.start_compress(rest)
        return tagged


def lab_message(subject, body):
    return (f"From: bob@localhost\r\nTo: alice@localhost\r\nSubject: {subject}\r\n\r\n"
            + body).encode()


class CompressChecks:
    """What every channel (plain, STARTTLS, implicit TLS) must do once
    COMPRESS is on: read the seeded mail, APPEND a small message and a
    2 MB one (a synchronizing literal: the "+" comes compressed) and read
    them back whole."""

    def check_session(self, c):
        _, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK [CAPABILITY "), tagged)
        self.assertIn(b" COMPRESS=DEFLATE", tagged)
        self.assertTrue(c.compress().startswith(b"OK"))
        untagged, tagged = c.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"OK [READ-WRITE]"), tagged)
        self.assertIn(f"* {len(SEED)} EXISTS\r\n".encode(), untagged)
        for i, mail in enumerate(SEED, 1):
            untagged, tagged = c.command(f"FETCH {i} BODY.PEEK[]")
            self.assertTrue(tagged.startswith(b"OK"), tagged)
            self.assertIn(mail.served, untagged[0])
        small = lab_message("through deflate", "a small body\r\n")
        big = lab_message("big", "".join(f"line {i} of a big message, compressible\r\n"
                                         for i in range(50000)))
        self.assertGreater(len(big), 2 * 1024 * 1024)
        for msg in (small, big):
            c.tagn += 1
            tag = f"t{c.tagn}".encode()
            c.send(tag + b" APPEND INBOX {" + str(len(msg)).encode() + b"}\r\n")
            self.assertTrue(c.readline().startswith(b"+"))
            c.send(msg + b"\r\n")
            while True:
                line = c.readline()
                if line.startswith(tag + b" "):
                    break
            self.assertIn(b"OK [APPENDUID ", line)
        n = len(SEED) + 2
        untagged, tagged = c.command(f"FETCH {n - 1}:{n} BODY.PEEK[]")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        fetched = b"".join(untagged)
        self.assertIn(small, fetched)
        self.assertIn(big, fetched)
        # The answers were compressed: far fewer octets than they hold.
        self.assertLess(c.wire_in, len(big) // 4)
        untagged, tagged = c.command("LOGOUT")
        self.assertIn(b"* BYE", b"".join(untagged))
        self.assertTrue(tagged.startswith(b"OK"), tagged)


class TestCompressPlain(ServerTestCase, CompressChecks):

    def zclient(self):
        c = ZClient(socket.create_connection((HOST, self.port), timeout=SOCK_TIMEOUT))
        self._clients.append(c)
        self.assertTrue(c.readline().startswith(b"* OK"))
        return c

    def test_read_and_append_through_deflate(self):
        self.check_session(self.zclient())

    def test_unhappy_paths(self):
        c = self.zclient()
        untagged, tagged = c.command("CAPABILITY")
        self.assertNotIn(b"COMPRESS", b"".join(untagged))
        # Before login.
        self.assertFalse(c.compress().startswith(b"OK"))
        c.command("LOGIN alice alice123")
        for bad in ("COMPRESS", "COMPRESS LZ4", "COMPRESS DEFLATE DEFLATE"):
            _, tagged = c.command(bad)
            self.assertTrue(tagged.startswith(b"BAD"), (bad, tagged))
        _, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertTrue(c.compress().startswith(b"OK"))
        _, tagged = c.command("COMPRESS DEFLATE")
        self.assertTrue(tagged.startswith(b"NO [COMPRESSIONACTIVE]"), tagged)
        _, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_command_pipelined_behind_compress_is_compressed(self):
        c = self.zclient()
        c.command("LOGIN alice alice123")
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        c.sock.sendall(b"a COMPRESS DEFLATE\r\n"
                       + deflate.compress(b"b SELECT INBOX\r\n")
                       + deflate.flush(zlib.Z_SYNC_FLUSH))
        while b"\r\n" not in c.plain:
            c.plain += c.sock.recv(65536)
        i = c.plain.index(b"\r\n") + 2
        self.assertEqual(c.plain[:i], b"a OK DEFLATE active.\r\n")
        rest, c.plain = c.plain[i:], b""
        c.start_compress(rest)
        c.deflate = deflate
        while True:
            line = c.readline()
            if line.startswith(b"b "):
                break
        self.assertTrue(line.startswith(b"b OK [READ-WRITE]"), line)

    def test_corrupt_stream_closes_with_a_log_line(self):
        c = self.zclient()
        c.command("LOGIN alice alice123")
        self.assertTrue(c.compress().startswith(b"OK"))
        c.sock.sendall(b"\xff\xff\xff\xff garbage, not DEFLATE\r\n")
        with self.assertRaises((EOFError, ConnectionResetError)):
            while True:
                c._fill()
        self.assertTrue(self.server.wait_log(r"disconnected user=alice: deflate: corrupt input: ",
                                             timeout=5 * SLOW), self.server.log_text(20))
        self.assert_server_serves()

    @unittest.skipIf(WRAPPER, "memory is not measured under a wrapper")
    def test_zip_bomb_costs_no_more_than_the_line_limit(self):
        """256 MB of one line, 256 KB on the wire: BAD and BYE at the line
        limit, and the server's memory does not follow the bomb."""
        c = self.zclient()
        c.command("LOGIN alice alice123")
        self.assertTrue(c.compress().startswith(b"OK"))
        rss_before = vm_rss_kb(self.server.proc.pid)
        mb = b"A" * (1024 * 1024)
        d = c.deflate
        c.sock.sendall(d.compress(b"x NOOP "))
        try:
            for _ in range(256):
                c.sock.sendall(d.compress(mb))
            c.sock.sendall(d.flush(zlib.Z_SYNC_FLUSH))
        except (BrokenPipeError, ConnectionResetError):
            pass    # the server closed before the end: fine
        got = b""
        try:
            while True:
                got += c.readline()
        except (EOFError, ConnectionResetError, OSError):
            pass
        self.assertIn(b"BAD", got)
        self.assertIn(b"* BYE", got)
        rss_after = vm_rss_kb(self.server.proc.pid)
        self.assertLess(rss_after - rss_before, 16 * 1024,
                        f"RSS {rss_before} -> {rss_after} kB")
        self.assert_server_serves()


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class TestCompressTls(TlsCase, CompressChecks):
    """DEFLATE inside TLS: after STARTTLS and on the implicit TLS port.
    handshake_timeout is 1 s: a session that compressed after its
    handshake must not be taken for one whose handshake never ended."""

    TLS_EXTRA = "handshake_timeout = 1; "

    def test_starttls_then_compress(self):
        sock = socket.create_connection((HOST, self.port), timeout=SOCK_TIMEOUT)
        c = ZClient(sock)
        self._clients.append(c)
        self.assertTrue(c.readline().startswith(b"* OK"))
        _, tagged = c.command("STARTTLS")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c.sock = self.ctx().wrap_socket(sock, server_hostname="localhost")
        self.check_session(c)

    def test_implicit_tls_then_compress_outlives_the_handshake_timeout(self):
        sock = socket.create_connection((HOST, self.tls_port), timeout=SOCK_TIMEOUT)
        c = ZClient(self.ctx().wrap_socket(sock, server_hostname="localhost"))
        self._clients.append(c)
        self.assertTrue(c.readline().startswith(b"* OK"))
        c.command("LOGIN alice alice123")
        self.assertTrue(c.compress().startswith(b"OK"))
        time.sleep(2.5)
        _, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertNotIn("TLS handshake not done", self.server.log_text())
        self.check_session_after_login(c)

    def check_session_after_login(self, c):
        _, tagged = c.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        untagged, tagged = c.command("FETCH 1 BODY.PEEK[]")
        self.assertIn(SEED[0].served, untagged[0])


@unittest.skipUnless(MUTT, "mutt is not installed")
class TestMuttDeflate(ServerTestCase):
    """mutt with imap_deflate=yes sends COMPRESS DEFLATE after login and
    then works through the compressed channel (as test_clients.TestMutt,
    with DEFLATE on)."""

    def run_mutt(self, keys, timeout=20.0):
        home = os.path.join(self.server.dir, "mutthome")
        os.makedirs(home, exist_ok=True)
        rc = os.path.join(home, "muttrc")
        url = f"imap://alice@127.0.0.1:{self.port}/"
        with open(rc, "w") as f:
            f.write(f'set folder="{url}"\nset spoolfile="{url}INBOX"\n'
                    'set imap_user="alice"\nset imap_pass="alice123"\n'
                    'set ssl_starttls=no\nset ssl_force_tls=no\nset imap_deflate=yes\n'
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
        deadline = time.monotonic() + timeout * SLOW
        try:
            while p.poll() is None and time.monotonic() < deadline:
                r, _, _ = select.select([master], [], [], 0.1)
                if r:
                    try:
                        os.read(master, 65536)
                    except OSError:
                        break
            try:
                return p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                return None
        finally:
            os.close(master)

    def test_mutt_with_deflate_deletes_first_message(self):
        rc = self.run_mutt("<delete-message><sync-mailbox><quit>")
        self.assertEqual(rc, 0, "mutt did not finish; server log:\n" + self.server.log_text(40))
        log = self.server.log_text(400)
        self.assertRegex(log, r"command COMPRESS")
        self.assertNotRegex(log, r"deflate: ")
        m = self.imap()
        typ, data = m.select("INBOX")
        self.assertEqual(data, [str(len(SEED) - 1).encode()])
        typ, data = m.search(None, "SUBJECT", "Meeting")
        self.assertEqual(data, [b"1"])


if __name__ == "__main__":
    unittest.main()
