"""Mail is never read or written as root: started as root without
server.user, imapserver and smtpmail refuse to start (-t included) with one
line that names the fix and exit status 1, before touching the store;
with server.user, the mail they write belongs to that user. Needs root
(CI runs the tests as root); skipped otherwise."""
import imaplib
import os
import re
import stat
import subprocess
import unittest

from server import (HOST, SLOW, SOCK_TIMEOUT, USERS, ImapServer, ServerTestCase, service_user,
                    without_server_group)
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


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class TestRootCreatesTheStore(unittest.TestCase):
    """storage.root is missing below a folder an operator made (root's):
    started as root, the server creates the missing folders for the store
    as server.user's, at start-up and with -t, and leaves the operator's
    folder as it is."""

    def setUp(self):
        self.pw = service_user()
        self.server = ImapServer()
        self.addCleanup(self.server.cleanup)
        self.ops = os.path.join(self.server.dir, "ops")
        os.mkdir(self.ops, 0o755)
        self.operators = [self.ops]      # folders the operator made: root's
        give = self.server.give_to_server

        def give_but_operators():
            give()
            for path in self.operators:
                os.chown(path, 0, 0)
        # start() gives the test's folder to the server user: not those.
        self.server.give_to_server = give_but_operators

    def use_root(self, root):
        with open(self.server.conf) as f:
            text, n = re.subn(r'root = "[^"]*"', f'root = "{root}"', f.read())
        self.assertEqual(n, 1)
        with open(self.server.conf, "w") as f:
            f.write(text)

    def assert_created_for_server(self, *names):
        st = os.lstat(self.ops)
        self.assertEqual((st.st_uid, st.st_gid), (0, 0), "the operator's folder was changed")
        path = self.ops
        for name in names:
            path = os.path.join(path, name)
            st = os.lstat(path)
            self.assertTrue(stat.S_ISDIR(st.st_mode), path)
            self.assertEqual((st.st_uid, st.st_gid), (self.pw.pw_uid, self.pw.pw_gid), path)
            self.assertEqual(stat.S_IMODE(st.st_mode) & 0o077, 0, path)
        return path

    def test_serving_creates_the_store_as_the_server_user(self):
        self.use_root("ops/store/mail")
        self.server.start()
        m = imaplib.IMAP4(HOST, self.server.port, timeout=SOCK_TIMEOUT)
        self.addCleanup(m.sock.close)
        m.login("alice", USERS["alice"])
        typ, data = m.append("INBOX", None, None, b"Subject: x\r\n\r\nbody\r\n")
        self.assertEqual(typ, "OK", data)
        typ, data = m.create("Box")
        self.assertEqual(typ, "OK", data)
        m.logout()
        self.assertIsNotNone(self.server.wait_log(r"storage\.root: created .*/ops/store/mail "
                                                  rf"for {self.pw.pw_name}"))
        root = self.assert_created_for_server("store", "mail")
        found = 0
        for base, dirs, files in os.walk(root):
            for name in [base] + [os.path.join(base, n) for n in dirs + files]:
                self.assertEqual(os.lstat(name).st_uid, self.pw.pw_uid, name)
                found += 1
        self.assertGreater(found, 2)
        self.assertEqual(self.server.stop(), 0, self.server.log_text())
        self.assertEqual(self.server.error_lines(), [])

    def check_only(self, binary, root):
        self.use_root(root)
        self.server.give_to_server()
        res = subprocess.run([binary, "-c", self.server.conf, "-t"], capture_output=True,
                             text=True, timeout=10 * SLOW, stdin=subprocess.DEVNULL,
                             cwd=self.server.dir)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("configuration OK", res.stdout)

    def test_check_creates_the_store_as_the_server_user(self):
        self.check_only(self.server.binary, "ops/new/store/mail")
        self.assert_created_for_server("new", "store", "mail")

    def test_smtpmail_check_creates_the_store_as_the_server_user(self):
        if not os.access(smtpmail_binary(), os.X_OK):
            self.skipTest("smtpmail is not built")
        self.check_only(smtpmail_binary(), "ops/smtp/mail")
        self.assert_created_for_server("smtp", "mail")

    def test_existing_folders_are_left_alone(self):
        mine = os.path.join(self.ops, "mine")
        os.makedirs(os.path.join(mine, "mail"), 0o755)
        self.operators += [mine, os.path.join(mine, "mail")]
        # root's folder as the store: the server user could not write
        # there, so the start is refused with the fix, and nothing changes.
        self.use_root("ops/mine/mail")
        self.server.give_to_server()
        res = subprocess.run([self.server.binary, "-c", self.server.conf, "-t"],
                             capture_output=True, text=True, timeout=10 * SLOW,
                             stdin=subprocess.DEVNULL, cwd=self.server.dir)
        self.assertEqual(res.returncode, 1, res.stdout)
        self.assertIn(f"storage.root: {self.pw.pw_name} cannot write in {mine}/mail "
                      f"(Permission denied): give the folder to that user "
                      f"(chown -R {self.pw.pw_name} {mine}/mail)", res.stderr)
        for path in self.operators:
            self.assertEqual(os.lstat(path).st_uid, 0, path)
        self.check_only(self.server.binary, "ops/mine/mail/below")
        for path in self.operators:
            self.assertEqual(os.lstat(path).st_uid, 0, path)
        st = os.lstat(os.path.join(mine, "mail", "below"))
        self.assertEqual((st.st_uid, st.st_gid), (self.pw.pw_uid, self.pw.pw_gid))


if __name__ == "__main__":
    unittest.main()
