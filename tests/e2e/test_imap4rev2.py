"""IMAP4rev2 (RFC 9051) over the wire, on flat and on Maildir storage: a
session that sends ENABLE IMAP4rev2 gets rev2's answers (UTF-8 mailbox
names, ESEARCH, no \\Recent, the LIST line of SELECT, the UID in every
unsolicited FETCH, also in IDLE), while an IMAP4rev1 session on the same
mailboxes keeps rev1's, also after a restart."""

import time

from server import SLOW, ServerTestCase
from test_maildir import MaildirMixin

UMLAUT = "Entw\u00fcrfe".encode()          # UTF-8
UMLAUT_MUTF7 = b"Entw&APw-rfe"


def rev2_session(test, mailbox=None):
    c = test.raw_login()
    resp, tagged = c.command("ENABLE IMAP4rev2")
    test.assertTrue(tagged.startswith(b"OK"), tagged)
    test.assertIn(b"* ENABLED IMAP4rev2\r\n", resp)
    if mailbox is not None:
        resp, tagged = c.command(b"SELECT " + mailbox)
        test.assertTrue(tagged.startswith(b"OK"), tagged)
    return c


class TestImap4rev2(ServerTestCase):

    def test_capability_advertises_both_revisions(self):
        c = self.raw()
        resp, tagged = c.command("CAPABILITY")
        caps = resp[0].split()
        self.assertIn(b"IMAP4rev1", caps)
        self.assertIn(b"IMAP4rev2", caps)
        # what rev2 folds in, advertised for rev1 clients too
        for cap in (b"ESEARCH", b"SEARCHRES", b"LIST-STATUS", b"BINARY",
                    b"STATUS=SIZE", b"MOVE", b"UIDPLUS", b"LIST-EXTENDED",
                    b"SPECIAL-USE", b"NAMESPACE", b"UNSELECT", b"IDLE", b"SASL-IR"):
            self.assertIn(cap, caps)

    def test_utf8_names_both_ways_and_after_restart(self):
        c = rev2_session(self)
        resp, tagged = c.command(b'CREATE "' + UMLAUT + b'/Alt"')
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command(b'LIST "" "Entw*"')
        self.assertIn(b'* LIST (\\Noselect \\HasChildren) "/" "' + UMLAUT + b'"\r\n', resp)
        self.assertIn(b'* LIST (\\HasNoChildren) "/" "' + UMLAUT + b'/Alt"\r\n', resp)
        # invalid UTF-8 is refused with a reason, nothing is created
        resp, tagged = c.command(b'CREATE "bad\xffname"')
        self.assertTrue(tagged.startswith(b"NO [CANNOT]"), tagged)
        c.close()
        self.server.restart()
        self.port = self.server.port
        old = self.raw_login()
        resp, tagged = old.command('LIST "" "*"')
        names = b"".join(resp)
        self.assertIn(b'"' + UMLAUT_MUTF7 + b'"', names)
        self.assertIn(b'"' + UMLAUT_MUTF7 + b'/Alt"', names)
        self.assertNotIn(b"bad", names)
        c = rev2_session(self)
        resp, tagged = c.command(b'STATUS "' + UMLAUT + b'/Alt" (MESSAGES)')
        self.assertIn(b'* STATUS "' + UMLAUT + b'/Alt" (MESSAGES 0)\r\n', resp)

    def test_select_search_and_flags(self):
        c = rev2_session(self, b"INBOX")
        resp, tagged = c.command("EXAMINE INBOX")
        self.assertIn(b"* OK [CLOSED] Previous mailbox closed.\r\n", resp)
        self.assertIn(b'* LIST () "/" "INBOX"\r\n', resp)
        self.assertFalse([r for r in resp if b"RECENT" in r], resp)
        resp, tagged = c.command("SELECT INBOX")
        resp, tagged = c.command("FETCH 1:* FLAGS")
        self.assertTrue(resp)
        self.assertFalse([r for r in resp if b"\\Recent" in r], resp)
        resp, tagged = c.command("SEARCH ALL", tag="s1")
        self.assertEqual(len(resp), 1, resp)
        self.assertTrue(resp[0].startswith(b'* ESEARCH (TAG "s1") ALL 1:'), resp)
        resp, tagged = c.command("UID SEARCH DELETED", tag="s2")
        self.assertEqual(resp, [b'* ESEARCH (TAG "s2") UID\r\n'])
        old = self.raw_login(mailbox="INBOX")
        resp, tagged = old.command("SEARCH ALL")
        self.assertTrue(resp[0].startswith(b"* SEARCH 1"), resp)

    def test_idle_hears_other_sessions_with_uids(self):
        c = rev2_session(self, b"INBOX")
        other = self.raw_login(mailbox="INBOX")
        c.send("i1 IDLE\r\n")
        self.assertTrue(c.readline().startswith(b"+"))
        resp, tagged = other.command("STORE 1 +FLAGS (\\Flagged)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        line = c.readline(timeout=5 * SLOW)
        self.assertRegex(line, rb"^\* 1 FETCH \(UID \d+ FLAGS \(\\Flagged\)\)\r\n$")
        resp, tagged = other.command("APPEND INBOX {14+}\r\nSubject: n\r\n\r\n")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        deadline = time.monotonic() + 5 * SLOW
        got = []
        while time.monotonic() < deadline and not any(b"EXISTS" in r for r in got):
            got.append(c.readline(timeout=5 * SLOW))
        self.assertTrue(any(r.endswith(b" EXISTS\r\n") for r in got), got)
        c.send("DONE\r\n")
        resp, tagged = c.read_tagged("i1")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertFalse([r for r in got + resp if b"RECENT" in r], got + resp)


    def test_binary_append_and_fetch_survive_a_restart(self):
        # a literal8 APPEND of a binary part, read back with FETCH BINARY
        # octet for octet, also after a restart (stored as base64)
        data = bytes(range(256)) + b"\n\r\x00end"
        msg = (b"From: a@example.org\r\nMime-Version: 1.0\r\n"
               b"Content-Type: application/octet-stream\r\n"
               b"Content-Transfer-Encoding: binary\r\n\r\n" + data)
        c = self.raw_login()
        resp, tagged = c.command(b"APPEND INBOX ~{%d+}\r\n" % len(msg) + msg)
        self.assertTrue(tagged.startswith(b"OK [APPENDUID"), tagged)
        uid = tagged.split()[3].rstrip(b"]")
        c.close()
        for _ in range(2):
            c = self.raw_login(mailbox="INBOX")
            c.send(b"f UID FETCH " + uid + b" (BINARY.SIZE[1] BINARY.PEEK[1])\r\n")
            got = b""
            while b"\r\nf OK" not in got:
                chunk = c.sock.recv(65536)
                self.assertTrue(chunk, got[-200:])
                got += chunk
            self.assertIn(b"BINARY.SIZE[1] %d" % len(data), got)
            self.assertIn(b"BINARY[1] ~{%d}\r\n" % len(data) + data, got)
            c.close()
            self.server.restart()
            self.port = self.server.port


class TestImap4rev2Maildir(MaildirMixin, TestImap4rev2):
    """The same on Maildir storage."""
