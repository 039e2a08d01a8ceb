"""Clients that have not logged in: the login deadline counts from
connect, their input is capped, and when every slot is taken the oldest
of them makes room for a newcomer. Small limits, every loop bounded in
count and time."""

import socket
import time
import unittest

from server import SLOW, ServerTestCase

PRELOGIN_MAX_INPUT = 8192       # IMAP_PRELOGIN_MAX_INPUT in imap_client.h


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class TestLoginDeadline(ServerTestCase):
    LIMITS = {"login_timeout": 2}

    def test_dribbling_client_is_closed_at_the_deadline(self):
        c = self.raw()
        start = time.monotonic()
        c.sock.settimeout(0.5)
        got = b""
        payload = b"a LOGIN alice alice123"      # never finished: no CRLF
        for i in range(200):
            if time.monotonic() - start > 10 * SLOW:
                break
            try:
                c.sock.send(payload[i % len(payload):i % len(payload) + 1])
            except OSError:
                break
            try:
                chunk = c.sock.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        elapsed = time.monotonic() - start
        self.assertIn(b"* BYE", got)
        self.assertIn(b"login", got.lower())
        # The deadline counts from connect, not from the last byte.
        self.assertLess(elapsed, 2 + 3 * SLOW, got)
        self.assertIsNotNone(self.server.wait_log(r"autologout after login_timeout"))
        self.assert_server_serves()

    def test_logged_in_session_outlives_the_login_deadline(self):
        c = self.raw()
        time.sleep(1.0)
        resp, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        time.sleep(2.5)          # past connect + login_timeout
        resp, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)


class TestPreloginSlots(ServerTestCase):
    LIMITS = {"max_connections": 3}

    def test_oldest_prelogin_connection_makes_room(self):
        user = self.raw_login()
        old = self.raw()
        time.sleep(0.05)
        young = self.raw()
        newcomer = self.raw()        # the greeting "* OK" is checked by raw()
        got = old.wait_closed()
        self.assertIn(b"* BYE", got)
        # The logged-in one and the younger one are served.
        resp, tagged = user.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = young.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = newcomer.command("LOGIN bob bob123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = young.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # All logged in: a logged-in session is never closed for room,
        # the newcomer is refused.
        extra = self.raw(greeting=False)
        line = extra.readline()
        self.assertTrue(line.startswith(b"* BYE"), line)
        extra.wait_closed()
        for c in (user, young, newcomer):
            resp, tagged = c.command("NOOP")
            self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_many_slow_clients_do_not_lock_out_a_user(self):
        slow = []
        for _ in range(10):
            c = self.raw(greeting=False)
            c.send(b"a")
            slow.append(c)
        c = self.raw()
        resp, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)


class TestPreloginInput(ServerTestCase):
    LIMITS = {"max_line": 1024}

    def test_big_literals_before_login_are_refused_unbuffered(self):
        pid = self.server.proc.pid
        before = vm_rss_kb(pid)
        clients = [self.raw() for _ in range(5)]
        chunk = b"x" * 65536
        for c in clients:
            c.send(b"a1 LOGIN {25000000+}\r\n")
        for c in clients:
            # Up to 25 MB each, until the server stops taking it.
            c.sock.settimeout(0.2)
            sent = 0
            deadline = time.monotonic() + 5 * SLOW
            while sent < 25000000 and time.monotonic() < deadline:
                try:
                    sent += c.sock.send(chunk)
                except (socket.timeout, BlockingIOError):
                    break
                except OSError:
                    break
            c.sock.settimeout(5)
        peak = vm_rss_kb(pid)
        for c in clients:
            got = c.wait_closed()
            self.assertIn(b"a1 BAD Literal too large\r\n* BYE", got)
        # Five 25 MB literals buffered would be 125 MB.
        self.assertLess(peak - before, 20 * 1024, (before, peak))
        self.assert_server_serves()

    def test_prelogin_literal_is_capped_and_lifted_at_login(self):
        c = self.raw()
        c.send(f"a1 LOGIN {{{PRELOGIN_MAX_INPUT + 1}}}\r\n")
        got = c.wait_closed()
        self.assertIn(b"a1 BAD Literal too large\r\n* BYE", got)
        c = self.raw_login()
        body = b"Subject: big\r\n\r\n" + b"y" * (PRELOGIN_MAX_INPUT * 2)
        c.send(f"a2 APPEND INBOX {{{len(body)}}}\r\n")
        line = c.readline()
        self.assertTrue(line.startswith(b"+"), line)
        c.send(body + b"\r\n")
        untagged, tagged = c.read_tagged("a2")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_line_too_long_gets_bad_then_bye(self):
        for login in (False, True):
            c = self.raw_login() if login else self.raw()
            c.send(b"a1 NOOP " + b"x" * 3000 + b"\r\n")
            got = c.wait_closed()
            self.assertIn(b"a1 BAD Line too long\r\n* BYE Line too long", got)
        # AUTHENTICATE's response line too.
        c = self.raw()
        c.send(b"a1 AUTHENTICATE PLAIN\r\n")
        line = c.readline()
        self.assertTrue(line.startswith(b"+"), line)
        c.send(b"A" * (PRELOGIN_MAX_INPUT + 10) + b"\r\n")
        got = c.wait_closed()
        self.assertIn(b"a1 BAD Line too long.\r\n* BYE", got)

    def test_authenticate_plain_empty_initial_response(self):
        c = self.raw()
        c.send(b"a1 AUTHENTICATE PLAIN =\r\n")
        line = c.readline()
        self.assertEqual(line, b"+ \r\n")
        c.send(b"AGFsaWNlAGFsaWNlMTIz\r\n")
        untagged, tagged = c.read_tagged("a1")
        self.assertTrue(tagged.startswith(b"OK"), tagged)


if __name__ == "__main__":
    unittest.main()
