"""Mail is never read or written as root: started as root without
server.user, imapserver and smtpmail refuse to start (-t included) with one
line that names the fix and exit status 1, before touching the store;
with server.user, the mail they write belongs to that user. Needs root
(CI runs the tests as root); skipped otherwise."""
import os
import subprocess
import unittest

from server import (SLOW, ImapServer, ServerTestCase, service_user, without_server_group)
from smtp_support import smtpmail_binary


def proc_uids(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return []


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class TestRootWithoutServerUser(unittest.TestCase):

    def setUp(self):
        self.server = ImapServer()
        self.addCleanup(self.server.cleanup)
        with open(self.server.conf) as f:
            text = without_server_group(f.read())
        self.assertNotIn("server:", text)
        self.storage = os.path.join(self.server.dir, "store")
        text = text.replace('root = "mail"', 'root = "store"')
        with open(self.server.conf, "w") as f:
            f.write(text)

    def refused(self, argv):
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10 * SLOW,
                             stdin=subprocess.DEVNULL, cwd=self.server.dir)
        self.assertEqual(res.returncode, 1, res.stderr)
        lines = res.stderr.splitlines()
        self.assertEqual(len(lines), 1, res.stderr)
        self.assertIn("started as root without server.user", lines[0])
        self.assertIn(f"set server.user (an unprivileged user that owns storage.root) in "
                      f"{self.server.conf}, or run as a normal user", lines[0])
        # Refused before any backend started: the store was not created.
        self.assertFalse(os.path.exists(self.storage))

    def test_imapserver_refuses_to_start(self):
        self.refused([self.server.binary, "-c", self.server.conf, "-f"])

    def test_imapserver_check_refuses_too(self):
        self.refused([self.server.binary, "-c", self.server.conf, "-t"])

    def test_smtpmail_refuses_to_start(self):
        if not os.access(smtpmail_binary(), os.X_OK):
            self.skipTest("smtpmail is not built")
        self.refused([smtpmail_binary(), "-c", self.server.conf, "-f"])
        self.refused([smtpmail_binary(), "-c", self.server.conf, "-t"])

    def test_migrate_refuses_too(self):
        self.refused([self.server.binary, "-c", self.server.conf, "--migrate", "alice",
                      "--from", "flat", "--to", "maildir"])

    def test_built_in_defaults_name_the_option(self):
        res = subprocess.run([self.server.binary, "-t"], capture_output=True, text=True,
                             timeout=10 * SLOW, stdin=subprocess.DEVNULL,
                             cwd=self.server.dir)
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("in a config file given with -c FILE, or run as a normal user",
                      res.stderr)


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class TestRootWithServerUser(ServerTestCase):
    MAILBOXES = {}

    def test_serves_as_the_user_and_its_mail_is_the_users(self):
        pw = service_user()
        self.assertIsNotNone(self.server.wait_log(rf"dropped root: running as user {pw.pw_name}"))
        self.assertEqual(proc_uids(self.server.proc.pid), [pw.pw_uid] * 4)
        m = self.imap()
        self.assertOK(m.append("INBOX", None, None, b"Subject: x\r\n\r\nbody\r\n"))
        self.assertOK(m.create("Box"))
        m.logout()
        found = 0
        for base, dirs, files in os.walk(self.server.user_dir("alice")):
            for name in [base] + [os.path.join(base, n) for n in files]:
                self.assertEqual(os.lstat(name).st_uid, pw.pw_uid, name)
                found += 1
        self.assertGreater(found, 1)


if __name__ == "__main__":
    unittest.main()
