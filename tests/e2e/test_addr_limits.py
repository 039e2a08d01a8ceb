"""One client address cannot guess passwords in parallel nor take every
connection (issue 18, items 5 and 6). Two loopback addresses stand for two
clients: the attacker binds 127.0.0.2, the user 127.0.0.1 (Linux answers
on all of 127/8).

- The delay before a failed login is answered grows with the failures of
  the address (doubling from auth_fail_delay up to 15 s), whatever
  connection they come on, and a success resets it; the user on the other
  address logs in meanwhile, and its own failure gets the plain delay.
- limits.max_connections_per_address: the connection past it gets
  "* BYE" (IMAP) or 421 (SMTP), logged once for the burst; other
  addresses are served; a closed connection makes room."""

import socket
import threading
import time

from server import HOST, SLOW, SOCK_TIMEOUT, RawClient
from smtp_support import SmtpTestCase

ATTACKER = "127.0.0.2"


def connect_from(source, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(SOCK_TIMEOUT * SLOW * 4)
    s.bind((source, 0))
    s.connect((HOST, port))
    return s


class RawFrom(RawClient):
    """RawClient on a socket bound to a source address."""

    def __init__(self, source, port):  # pylint: disable=super-init-not-called
        self.sock = connect_from(source, port)
        self.buf = b""
        self.tagn = 0
        self.eof = False


class TestPerAddressPenalty(SmtpTestCase):
    LIMITS = {"auth_fail_delay": 200}
    SUBMISSION = True

    def login(self, source, password, results, key):
        c = RawFrom(source, self.port)
        self._clients.append(c)
        c.readline()
        t0 = time.monotonic()
        resp, tagged = c.command(f"LOGIN alice {password}")
        results[key] = (tagged, time.monotonic() - t0, time.monotonic())

    def test_parallel_guesses_wait_longer_and_the_other_address_does_not(self):
        results = {}
        threads = [threading.Thread(target=self.login,
                                    args=(ATTACKER, "wrong", results, f"bad{i}"))
                   for i in range(6)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        # the attacker's guesses are being delayed; the user on the
        # other address logs in, and fails once, at the plain delay
        time.sleep(0.3 * SLOW)
        self.login(HOST, "alice123", results, "user_ok")
        self.login(HOST, "wrong", results, "user_bad")
        for t in threads:
            t.join(60 * SLOW)
        took = time.monotonic() - t0
        bad = [results[f"bad{i}"] for i in range(6)]
        self.assertTrue(all(r[0].startswith(b"NO") for r in bad), bad)
        self.assertTrue(results["user_ok"][0].startswith(b"OK"), results["user_ok"])
        self.assertTrue(results["user_bad"][0].startswith(b"NO"), results["user_bad"])
        # 200, 400, 800, 1600, 3200, 6400 ms: the last waits 6.4 s,
        # where one delay per connection would have ended all in 0.2 s
        self.assertGreaterEqual(max(r[1] for r in bad), 6.0)
        self.assertGreaterEqual(took, 6.0)
        # both of the user's answers came before the slowest guess
        last_bad = max(r[2] for r in bad)
        self.assertLess(results["user_ok"][2], last_bad)
        self.assertLess(results["user_bad"][2], last_bad)

    def test_success_resets_the_penalty(self):
        results = {}
        for i in range(3):
            self.login(ATTACKER, "wrong", results, f"bad{i}")
        self.assertGreaterEqual(results["bad2"][1], 0.75)      # 800 ms
        self.login(ATTACKER, "alice123", results, "ok")
        self.assertTrue(results["ok"][0].startswith(b"OK"))
        self.login(ATTACKER, "wrong", results, "again")
        self.assertLess(results["again"][1], results["bad2"][1])

    def test_smtp_auth_failures_count_for_the_address(self):
        # the penalty is one per process: IMAP failures slow SMTP AUTH too
        results = {}
        for i in range(3):
            self.login(ATTACKER, "wrong", results, f"bad{i}")
        s = connect_from(ATTACKER, self.submission_port)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO x\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        t0 = time.monotonic()
        s.sendall(b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n")     # alice / wrong
        line = f.readline()
        self.assertTrue(line.startswith(b"535"), line)
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)  # 1600 ms, the 4th


class TestPerAddressConnections(SmtpTestCase):
    LIMITS = {"max_connections_per_address": 5}

    def test_sixth_connection_from_one_address_is_refused(self):
        held = [connect_from(ATTACKER, self.port) for _ in range(5)]
        for s in held:
            self.addCleanup(s.close)
            self.assertTrue(s.recv(256).startswith(b"* OK"))
        for _ in range(3):
            s = connect_from(ATTACKER, self.port)
            self.addCleanup(s.close)
            self.assertEqual(s.recv(256),
                             b"* BYE Too many connections from your address, try again "
                             b"later.\r\n")
        # the user on another address is served
        self.assert_server_serves()
        # one line in the log for the burst, with the address
        line = self.server.wait_log("max_connections_per_address", 2.0)
        self.assertIn("127.0.0.2", line)
        self.assertEqual(sum("max_connections_per_address" in x
                             for x in self.server.log_lines()), 1)
        # a closed connection makes room
        held[0].close()
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:
            s = connect_from(ATTACKER, self.port)
            self.addCleanup(s.close)
            if s.recv(256).startswith(b"* OK"):
                break
            time.sleep(0.05)
        else:
            self.fail("no room after a connection closed")

    def test_smtp_has_the_same_limit(self):
        held = [connect_from(ATTACKER, self.smtp_port) for _ in range(5)]
        for s in held:
            self.addCleanup(s.close)
            self.assertTrue(s.recv(256).startswith(b"220"))
        s = connect_from(ATTACKER, self.smtp_port)
        self.addCleanup(s.close)
        self.assertTrue(s.recv(256).startswith(b"421 4.7.0"))
        s = connect_from(HOST, self.smtp_port)
        self.addCleanup(s.close)
        self.assertTrue(s.recv(256).startswith(b"220"))
