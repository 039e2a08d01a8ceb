"""Bad input on raw sockets: the answer is BAD/NO (or BYE and a close),
the session or at least the server goes on, and nothing is lost."""

import random
import socket
import struct
import threading
import time
import unittest

from server import SEED, SLOW, ServerTestCase, untagged_numbers


class TestBadInput(ServerTestCase):

    def test_malformed_commands_get_bad_with_reason(self):
        c = self.raw_login()
        for cmd in (b"FROBNICATE", b"SELECT", b"FETCH", b'SELECT "unterminated',
                    b"NOOP extra args", b"LIST (", b"STATUS INBOX (MESSAGES",
                    b"UID FROB 1", b"APPEND", b"CREATE"):
            resp, tagged = c.command(cmd)
            self.assertRegex(tagged, rb"^BAD \S", cmd)
        resp, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c = self.raw()
        resp, tagged = c.command("LOGIN a b c d")
        self.assertRegex(tagged, rb"^BAD \S")
        resp, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_untaggable_lines_get_untagged_bad(self):
        c = self.raw()
        for line in (b"*\r\n", b"(a) NOOP\r\n", b"a\r\n", b"+ x\r\n"):
            c.send(line)
            r = c.read_response()
            self.assertRegex(r, rb"^(\* |\S+ )BAD", line)
        resp, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_bad_sequence_sets(self):
        c = self.raw_login(mailbox="INBOX")
        for s in ("a", "1:", ":1", "1,,2", "1:*:2", "-1", "4294967296", "99999999999999999999"):
            resp, tagged = c.command(f"FETCH {s} FLAGS")
            self.assertRegex(tagged, rb"^BAD", s)
        resp, tagged = c.command("FETCH 1 FLAGS")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_nul_and_8bit_in_command(self):
        c = self.raw_login()
        resp, tagged = c.command(b"SELECT IN\x00BOX")
        self.assertRegex(tagged, rb"^(BAD|NO)")
        resp, tagged = c.command(b"SELECT \xff\xfe")
        self.assertRegex(tagged, rb"^(BAD|NO)")
        resp, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_one_megabyte_line(self):
        c = self.raw()
        line = b"a NOOP " + b"x" * (1 << 20) + b"\r\n"
        got = []

        def reader():
            try:
                got.append(c.wait_closed(10.0))
            except AssertionError as e:
                got.append(e)

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        try:
            c.sock.sendall(line)
        except OSError:
            pass            # the server may close before it has read it all
        th.join(15 * SLOW)
        self.assertEqual(len(got), 1)
        self.assertNotIsInstance(got[0], AssertionError, got[0])
        self.assertRegex(got[0], rb"(BAD|BYE)", "no answer to a 1 MB line")
        self.assert_server_serves()

    def test_long_line_below_limit_is_fine(self):
        c = self.raw_login(mailbox="INBOX")
        # 6000 bytes of sequence set, under the 8192 default max_line.
        s = ",".join(["1"] * 3000)
        resp, tagged = c.command(f"FETCH {s} UID")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_huge_literal_is_refused(self):
        c = self.raw_login()
        c.send("a APPEND INBOX {999999999}\r\n")
        r = c.read_response()
        self.assertFalse(r.startswith(b"+"), "server asked for a 1 GB literal")
        self.assertRegex(r, rb"^(a NO|a BAD|\* BYE)", r)
        self.assert_server_serves()
        m = self.imap()
        self.assertEqual(m.select("INBOX")[1], [str(len(SEED)).encode()])

    def test_huge_non_sync_literal_is_refused(self):
        c = self.raw_login()
        c.send("a APPEND INBOX {999999999+}\r\nFrom: x\r\n\r\nsome bytes\r\n")
        r = c.read_response()
        self.assertRegex(r, rb"^(a NO|a BAD|\* BYE)", r)
        self.assert_server_serves()
        m = self.imap()
        self.assertEqual(m.select("INBOX")[1], [str(len(SEED)).encode()])

    def test_random_bytes(self):
        rnd = random.Random(20220310)
        blob = bytes(rnd.getrandbits(8) for _ in range(64 * 1024))
        for login in (False, True):
            c = self.raw_login() if login else self.raw()
            try:
                c.sock.sendall(blob)
            except OSError:
                pass
            # Whatever it answers, it must answer or close within bounds.
            try:
                c.wait_closed(5.0)
            except AssertionError:
                # Still open is allowed; then it must still answer.
                c.send(b"\r\nzz NOOP\r\n")
                for _ in range(1000):
                    r = c.read_response(timeout=5.0 * SLOW)
                    if not r or r.startswith(b"zz "):
                        break
                self.assertTrue(r, "closed after random bytes without BYE? fine, but "
                                "then wait_closed should have seen it")
            c.close()
        self.assert_server_serves()

    def test_disconnect_inside_literal_loses_nothing(self):
        c = self.raw_login()
        c.send("a APPEND INBOX {100}\r\n")
        self.assertTrue(c.readline().startswith(b"+"))
        c.send(b"From: half@localhost\r\nSubject: half\r\n\r\n" + b"x" * 10)
        c.close()
        c2 = self.raw_login()
        c2.send(b"b APPEND INBOX {50+}\r\n" + b"y" * 20)
        c2.sock.shutdown(socket.SHUT_WR)
        c2.close()
        time.sleep(0.2)
        m = self.imap()
        self.assertEqual(m.select("INBOX")[1], [str(len(SEED)).encode()])
        self.assertNotIn(b"half@localhost", self.server.read_mailbox("alice"))

    def test_disconnect_mid_command_and_during_output(self):
        c = self.raw_login(mailbox="INBOX")
        c.send("a FETCH 1:* (BODY[")
        c.close()
        c = self.raw_login(mailbox="INBOX")
        c.send("a FETCH 1:* BODY.PEEK[]\r\n" * 50)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()           # RST while the server writes
        self.assert_server_serves()

    def test_pipelined_commands_answered_in_order(self):
        c = self.raw_login()
        c.send("p1 SELECT INBOX\r\np2 NOOP\r\np3 FETCH 1 UID\r\np4 CHECK\r\n")
        for tag in ("p1", "p2", "p3", "p4"):
            resp, tagged = c.read_tagged(tag)
            self.assertTrue(tagged.startswith(b"OK"), (tag, tagged))

    def test_byte_by_byte_command(self):
        c = self.raw()
        for b in b"a LOGIN {5+}\r\nalice alice123\r\n":
            c.send(bytes([b]))
        resp, tagged = c.read_tagged("a")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_many_connections_at_once(self):
        conns = [self.raw() for _ in range(50)]
        for i, c in enumerate(conns):
            c.send(f"a{i} LOGIN alice alice123\r\n")
        for i, c in enumerate(conns):
            resp, tagged = c.read_tagged(f"a{i}")
            self.assertTrue(tagged.startswith(b"OK"), tagged)
        for c in conns:
            c.close()
        self.assert_server_serves()


class TestBadCommandLimit(ServerTestCase):

    LIMITS = {"max_bad_commands": 10}

    def test_too_many_bad_commands_closes_connection(self):
        c = self.raw()
        got = b""
        closed = False
        for i in range(30):
            try:
                c.send(f"b{i} FROBNICATE\r\n")
            except OSError:
                closed = True
                break
        try:
            got = c.wait_closed(5.0)
            closed = True
        except AssertionError as e:
            self.fail(f"30 bad commands with max_bad_commands=10: {e}")
        self.assertTrue(closed)
        self.assertIn(b"* BYE", got)
        self.assertLessEqual(got.count(b" BAD "), 11, got)
        self.assert_server_serves()


class TestConnectionLimit(ServerTestCase):

    LIMITS = {"max_connections": 3}

    def test_connections_beyond_limit_get_bye(self):
        # Logged in: a session that has not logged in would make room.
        conns = [self.raw_login() for _ in range(3)]
        extra = self.raw(greeting=False)
        line = extra.readline()
        self.assertTrue(line.startswith(b"* BYE"), line)
        extra.wait_closed()
        conns[0].command("LOGOUT")
        conns[0].close()
        # The slot is given back.
        deadline = time.monotonic() + 2 * SLOW
        while True:
            c = self.raw(greeting=False)
            line = c.readline()
            if line.startswith(b"* OK") or time.monotonic() > deadline:
                break
            c.close()
            time.sleep(0.05)
        self.assertTrue(line.startswith(b"* OK"), line)


if __name__ == "__main__":
    unittest.main()
