"""A real full disk: the store on a 5 MB tmpfs, filled by APPEND of 20 KB
mails, with imaplib and smtplib, on both backends. Mounting needs root
(CI runs the tests as root); elsewhere the tests are skipped with the
reason. The same paths are covered without root, write by write, by
tests/test_space_faults.c.

What a user relies on: reading never stops (SELECT, FETCH, STATUS, for
every user, also after a restart on the full disk); STORE is stored and
the untagged FETCH says what was stored; EXPUNGE works and frees space,
so that the next APPEND works; every write refused for space answers
NO [OVERQUOTA] (RFC 5530) or, for SMTP, 452 4.3.1 (RFC 3463); the log
says it once per mailbox, not once per attempt; nothing is lost."""

import os
import re
import smtplib
import subprocess
import imaplib
import unittest

from smtp_support import SmtpTestCase

imaplib.Commands.setdefault("MOVE", ("SELECTED",))

FILL = (b"From: alice@localhost\r\nSubject: fill\r\n\r\n" + (b"z" * 78 + b"\r\n") * 256)
FILL_LIMIT = 400        # 5 MB holds about 250 of them


class FullDiskBehaviour:
    MODE = "inprocess"
    MAILBOXES = {}
    ALLOW_LOG_ERRORS = True   # the first refused write of a mailbox is an error line

    def setUp(self):  # pylint: disable=invalid-name
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root (CI runs the tests as root)")
        super().setUp()

    def configure(self, server):
        with open(server.conf) as f:
            conf = f.read()
        if self.BACKEND == "maildir":
            conf = conf.replace('backend = "flat"; root', 'backend = "maildir"; root')
        with open(server.conf, "w") as f:
            f.write(conf)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m,mode=0755", "tmpfs",
                            server.root], capture_output=True, text=True, check=False)
        if r.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", server.root], check=False)

    def fill(self, m):
        """APPENDs until the disk is full; returns how many were stored."""
        for n in range(FILL_LIMIT):
            typ, data = m.append("INBOX", None, None, FILL)
            if typ != "OK":
                self.assertIn(b"[OVERQUOTA]", data[0], data)
                return n
        self.fail(f"{FILL_LIMIT} mails of 20 KB fit on a 5 MB disk")

    def space_log_lines(self):
        return [line for line in self.server.log_lines()
                if re.search(r"space|quota exceeded", line, re.I)]

    def test_full_disk_keeps_serving_and_expunge_frees_space(self):
        bob = self.imap("bob")
        self.assertOK(bob.append("INBOX", None, None, b"Subject: bob's\r\n\r\nhello bob\r\n"))
        bob.logout()
        alice = self.imap("alice")
        self.assertOK(alice.create("Archive"))
        stored = self.fill(alice)
        self.assertGreater(stored, 100)
        # Reading works, and STORE is stored and told as stored.
        typ, data = alice.select("INBOX")
        self.assertEqual((typ, int(data[0])), ("OK", stored))
        typ, data = alice.store("1:3", "+FLAGS", "(\\Flagged)")
        self.assertEqual(typ, "OK", data)
        for line in data:
            self.assertIn(b"\\Flagged", line)
        typ, data = alice.fetch("1:3", "(FLAGS)")
        self.assertTrue(all(b"\\Flagged" in line for line in data), data)
        typ, data = alice.fetch(str(stored), "(BODY.PEEK[])")
        self.assertEqual((typ, data[0][1]), ("OK", FILL))
        # COPY and MOVE: done, or refused for space with nothing changed.
        typ, data = alice.copy("1:20", "Archive")
        self.assertTrue(typ == "OK" or b"[OVERQUOTA]" in data[0], data)
        copied = 20 if typ == "OK" else 0
        typ, data = alice._simple_command("MOVE", "1:2", "Archive")
        self.assertTrue(typ == "OK" or b"[OVERQUOTA]" in data[0], data)
        moved = 2 if typ == "OK" else 0
        stored -= moved
        typ, data = alice.status("Archive", "(MESSAGES)")
        self.assertIn(f"MESSAGES {copied + moved}".encode(), data[0])
        typ, data = alice.select("INBOX")
        self.assertEqual((typ, int(data[0])), ("OK", stored))
        # Another user reads too.
        bob = self.imap("bob")
        typ, data = bob.select("INBOX")
        self.assertEqual((typ, data[0]), ("OK", b"1"))
        typ, data = bob.fetch("1", "(BODY.PEEK[TEXT])")
        self.assertEqual(data[0][1], b"hello bob\r\n")
        bob.logout()
        # EXPUNGE frees space: the next APPEND is stored.
        self.assertOK(alice.store("1:10", "+FLAGS", "(\\Deleted)"))
        typ, data = alice.expunge()
        self.assertEqual(typ, "OK", data)
        self.assertEqual(len(data), 10, data)
        typ, data = alice.append("INBOX", None, None, FILL)
        self.assertEqual(typ, "OK", data)
        # Full again, and a delivery by SMTP is refused as "mail system full".
        stored = stored - 10 + 1 + self.fill(alice)
        alice.logout()
        s = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10)
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.sendmail("bob@localhost", ["alice@localhost"], FILL)
        self.assertEqual(cm.exception.smtp_code, 452, cm.exception)
        self.assertTrue(cm.exception.smtp_error.startswith(b"4.3.1"), cm.exception)
        s.quit()
        # A restart on the full disk: everything reads, nothing was lost.
        self.server.restart()
        self.port = self.server.port
        alice = self.imap("alice")
        typ, data = alice.select("INBOX")
        self.assertEqual((typ, int(data[0])), ("OK", stored))
        typ, data = alice.status("INBOX", "(MESSAGES)")
        self.assertEqual(typ, "OK", data)
        self.assertIn(f"MESSAGES {stored}".encode(), data[0])
        typ, data = alice.fetch("1", "(FLAGS BODY.PEEK[])")
        self.assertEqual(data[0][1], FILL)
        alice.logout()
        bob = self.imap("bob")
        self.assertEqual(bob.select("INBOX")[0], "OK")
        bob.logout()
        # Told once per mailbox and condition, not once per attempt.
        lines = self.space_log_lines()
        self.assertLessEqual(len(lines), 12, "\n".join(lines))


class FlatFullDisk(FullDiskBehaviour, SmtpTestCase):
    BACKEND = "flat"


class MaildirFullDisk(FullDiskBehaviour, SmtpTestCase):
    BACKEND = "maildir"


if __name__ == "__main__":
    unittest.main()
