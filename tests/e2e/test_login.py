"""Greeting, CAPABILITY, LOGIN, AUTHENTICATE, LOGOUT (RFC 3501 6.1, 6.2)."""

import base64
import imaplib
import unittest

from server import ServerTestCase


class TestGreetingAndLogin(ServerTestCase):

    def test_greeting_is_untagged_ok(self):
        c = self.raw(greeting=False)
        line = c.readline()
        self.assertRegex(line, rb"^\* OK .*\r\n$")

    def test_capability_lists_required_extensions(self):
        c = self.raw()
        resp, tagged = c.command("CAPABILITY")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        caps = [r for r in resp if r.upper().startswith(b"* CAPABILITY ")]
        self.assertEqual(len(caps), 1, resp)
        words = caps[0].upper().split()
        for cap in (b"IMAP4REV1", b"IDLE", b"LITERAL+", b"AUTH=PLAIN", b"UNSELECT",
                    b"SASL-IR"):
            self.assertIn(cap, words, caps[0])

    def test_capability_with_imaplib(self):
        m = self.imap(login=False)
        self.assertIn("IMAP4REV1", m.capabilities)
        self.assertIn("IDLE", m.capabilities)
        self.assertIn("AUTH=PLAIN", m.capabilities)

    def test_login_ok_and_logout_bye(self):
        m = self.imap(login=False)
        typ, data = m.login("alice", "alice123")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.state, "AUTH")
        typ, data = m.logout()
        self.assertEqual(typ, "BYE")

    def test_login_wrong_password_is_no_authenticationfailed(self):
        m = self.imap(login=False)
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            m.login("alice", "wrong")
        self.assertIn("[AUTHENTICATIONFAILED]", str(cm.exception))
        # The session goes on: a right password works afterwards.
        self.assertEqual(m.login("alice", "alice123")[0], "OK")

    def test_login_unknown_user_is_no_authenticationfailed(self):
        c = self.raw()
        resp, tagged = c.command("LOGIN mallory secret")
        self.assertRegex(tagged, rb"^NO \[AUTHENTICATIONFAILED\]")

    def test_password_never_reaches_the_log(self):
        c = self.raw()
        c.command("LOGIN alice Sekrit-Pa55")
        c.command("LOGIN alice alice123")
        c.command("LOGOUT")
        for line in self.server.log_lines():
            self.assertNotIn("Sekrit-Pa55", line)
            self.assertNotIn("alice123", line)

    def test_login_quoted_and_literal_arguments(self):
        c = self.raw()
        resp, tagged = c.command('LOGIN "alice" "alice123"')
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c2 = self.raw()
        c2.send("a LOGIN {5}\r\n")
        self.assertTrue(c2.readline().startswith(b"+"))
        c2.send("alice {8+}\r\nalice123\r\n")
        resp, tagged = c2.read_tagged("a")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_user_with_path_traversal_is_refused(self):
        for user in ("../bob", "bob/..", "..", "/etc/passwd", ".bob"):
            c = self.raw()
            resp, tagged = c.command(f'LOGIN "{user}" bob123')
            self.assertRegex(tagged, rb"^NO", user)
            c.close()

    def test_authenticate_plain_with_imaplib(self):
        m = self.imap(login=False)
        typ, data = m.authenticate("PLAIN", lambda _: b"\0alice\0alice123")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.select("INBOX")[0], "OK")

    def test_authenticate_plain_bad_password(self):
        m = self.imap(login=False)
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            m.authenticate("PLAIN", lambda _: b"\0alice\0nope")
        self.assertIn("AUTHENTICATIONFAILED", str(cm.exception))

    def test_authenticate_plain_initial_response(self):
        c = self.raw()
        ir = base64.b64encode(b"\0bob\0bob123").decode()
        resp, tagged = c.command(f"AUTHENTICATE PLAIN {ir}")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_authenticate_cancelled_by_client(self):
        c = self.raw()
        c.send("a AUTHENTICATE PLAIN\r\n")
        self.assertTrue(c.readline().startswith(b"+"))
        c.send("*\r\n")
        resp, tagged = c.read_tagged("a")
        self.assertTrue(tagged.startswith(b"BAD") or tagged.startswith(b"NO"), tagged)
        resp, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_authenticate_unknown_mechanism_is_no(self):
        c = self.raw()
        resp, tagged = c.command("AUTHENTICATE CRAM-MD5")
        self.assertRegex(tagged, rb"^(NO|BAD)")

    def test_authenticate_garbage_base64(self):
        c = self.raw()
        c.send("a AUTHENTICATE PLAIN\r\n")
        self.assertTrue(c.readline().startswith(b"+"))
        c.send("!!!not base64!!!\r\n")
        resp, tagged = c.read_tagged("a")
        self.assertRegex(tagged, rb"^(NO|BAD)")

    def test_commands_before_login_are_refused(self):
        c = self.raw()
        for cmd in ("SELECT INBOX", "LIST \"\" *", "FETCH 1 FLAGS", "CREATE x"):
            resp, tagged = c.command(cmd)
            self.assertRegex(tagged, rb"^(NO|BAD)", cmd)
        resp, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_second_login_in_authenticated_state_is_refused(self):
        c = self.raw_login()
        resp, tagged = c.command("LOGIN bob bob123")
        self.assertRegex(tagged, rb"^(NO|BAD)")

    def test_user_without_mail_folder_has_empty_inbox(self):
        m = self.imap("bob")
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(data, [b"0"])

    def test_logout_closes_connection(self):
        c = self.raw()
        resp, tagged = c.command("LOGOUT")
        self.assertTrue(any(r.startswith(b"* BYE") for r in resp), resp)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c.wait_closed()


if __name__ == "__main__":
    unittest.main()
