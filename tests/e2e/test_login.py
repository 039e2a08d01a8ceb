"""Greeting, CAPABILITY, LOGIN, AUTHENTICATE, LOGOUT (RFC 3501 6.1, 6.2)."""

import base64
import imaplib
import os
import re
import shutil
import subprocess
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

    def test_failed_login_is_one_line_fail2ban_matches_on_the_address(self):
        """One log line per failed login with the address, the user and
        the reason; the filter shipped for fail2ban
        (etc/fail2ban-imapserver.conf) finds the address, also when the
        user name itself pretends to be another address."""
        c = self.raw()
        c.command("LOGIN alice wrong")
        c.command("LOGIN \"x' from 10.9.9.9 for user '\" wrong")
        line = self.server.wait_log(r"login failed from .* 'alice'")
        self.assertIsNotNone(line, self.server.log_text())
        self.assertRegex(line, r"auth: login failed from 127\.0\.0\.1 for user 'alice' "
                               r"\(passwd-file\): ")
        self.assertIsNotNone(self.server.wait_log(r"login failed from .* 'x'"))
        filt = os.path.join(os.path.dirname(__file__), "..", "..", "etc",
                            "fail2ban-imapserver.conf")
        with open(filt) as f:
            m = re.search(r"^failregex = (.*)$", f.read(), re.M)
        rx = re.compile(m.group(1).replace("<HOST>", r"(?P<host>\S+)"))
        failed = [line for line in self.server.log_lines() if "login failed" in line]
        self.assertEqual(len(failed), 2, failed)
        self.assertEqual([rx.search(line).group("host") for line in failed],
                         ["127.0.0.1", "127.0.0.1"])
        if shutil.which("fail2ban-regex") is None:
            return
        # fail2ban itself, on the lines as the server wrote them.
        log = os.path.join(self.server.dir, "f2b.log")
        with open(log, "w") as f:
            f.write("\n".join(self.server.log_lines()) + "\n")
        r = subprocess.run(["fail2ban-regex", "--print-all-matched", log, os.path.abspath(filt)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, out)
        self.assertRegex(out, r"Lines: \d+ lines, 0 ignored, 2 matched", out)
        self.assertNotIn("10.9.9.9", out.split("Failregex:")[1].split("Ignoreregex")[0])

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
