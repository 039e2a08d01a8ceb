"""imapserver --user-add / --user-passwd / --user-del: the users of the
passwd-file backend managed without an editor, while the server runs;
passwords stored as yescrypt hashes, never in plain text; two commands at
once both take effect."""

import imaplib
import os
import subprocess
import unittest
from concurrent.futures import ThreadPoolExecutor

from server import HOST, SLOW, SOCK_TIMEOUT, ServerTestCase


class TestUserCommands(ServerTestCase):

    def run_cmd(self, *args, password=None):
        return subprocess.run([self.server.binary, "-c", self.server.conf, *args],
                              input=(password + "\n").encode() if password is not None else b"",
                              capture_output=True, timeout=60 * SLOW, cwd=self.server.dir)

    def can_login(self, user, password):
        m = imaplib.IMAP4(HOST, self.port, timeout=SOCK_TIMEOUT)
        try:
            m.login(user, password)
            return True
        except imaplib.IMAP4.error:
            return False
        finally:
            m.shutdown()

    def users_text(self):
        with open(self.server.users) as f:
            return f.read()

    def test_add_change_delete_while_serving(self):
        before = self.users_text()
        r = self.run_cmd("--user-add", "dora", password="dora-pass-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"dora added", r.stdout)
        text = self.users_text()
        self.assertTrue(text.startswith(before), "the other lines changed")
        self.assertRegex(text, r"\ndora \$y\$\S+\n$")
        self.assertNotIn("dora-pass-1", text)
        self.assertTrue(self.can_login("dora", "dora-pass-1"))
        # an existing user is not added twice
        r = self.run_cmd("--user-add", "dora", password="other")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"exists already", r.stderr)
        r = self.run_cmd("--user-passwd", "dora", password="dora-pass-2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(self.can_login("dora", "dora-pass-1"))
        self.assertTrue(self.can_login("dora", "dora-pass-2"))
        r = self.run_cmd("--user-del", "dora")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.users_text(), before)
        self.assertFalse(self.can_login("dora", "dora-pass-2"))
        self.assertTrue(self.can_login("alice", "alice123"))

    def test_mistakes_change_nothing(self):
        before = self.users_text()
        for args, password, why in ((("--user-del", "nosuch"), None, b"no user 'nosuch'"),
                                    (("--user-passwd", "nosuch"), "x", b"no user 'nosuch'"),
                                    (("--user-add", "../evil"), "x", b"not a valid user name"),
                                    (("--user-add", "emma"), "", b"a password must have")):
            r = self.run_cmd(*args, password=password)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(why, r.stderr, args)
        self.assertEqual(self.users_text(), before)
        self.assertEqual([n for n in os.listdir(self.server.dir) if ".tmp." in n], [])

    def test_concurrent_adds_all_take_effect(self):
        names = [f"user{i}" for i in range(10)]
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda n: self.run_cmd("--user-add", n, password=n + "pw"),
                                    names))
        for r in results:
            self.assertEqual(r.returncode, 0, r.stderr)
        text = self.users_text()
        for n in names:
            self.assertRegex(text, rf"\n{n} \$y\$")
        self.assertTrue(self.can_login("user7", "user7pw"))


if __name__ == "__main__":
    unittest.main()
