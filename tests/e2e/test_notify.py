"""End-to-end tests of NOTIFY (RFC 5465) on both backends, against the
real binaries: a Python client that set NOTIFY and waits in IDLE hears
of a message delivered by the stand-alone smtpmail (another process) to
a mailbox it has not selected, of an APPEND by another session (Python's
imaplib) into a mailbox it has not selected, and of CREATE, RENAME and
DELETE (MailboxName). Every wait is bounded; no timing is asserted."""

import re
import time

from server import SLOW
from smtp_support import SmtpTestCase

WAIT = 5.0 * SLOW


class NotifyBehaviour:
    MODE = "standalone"
    MAILBOXES = {"alice": ""}     # an empty INBOX on either backend

    def notify_idle(self, command, select="other"):
        """A raw session: CREATE other, SELECT it, the NOTIFY command,
        then IDLE."""
        c = self.raw_login("alice")
        _, tagged = c.command("CREATE other")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        _, tagged = c.command(f"SELECT {select}")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        _, tagged = c.command(command)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c.send("i1 IDLE\r\n")
        self.assertTrue(c.readline().startswith(b"+"))
        return c

    def wait_line(self, c, pattern):
        """Reads untagged lines until one matches pattern (bytes regex);
        returns it. Fails after WAIT seconds."""
        end = time.monotonic() + WAIT
        seen = []
        while time.monotonic() < end:
            try:
                line = c.readline(timeout=max(0.1, end - time.monotonic()))
            except OSError:
                break
            if not line:
                break
            seen.append(line)
            if re.search(pattern, line):
                return line
        self.fail(f"no line matching {pattern!r}; got {seen!r}")

    def done(self, c):
        c.send("DONE\r\n")
        _, tagged = c.read_tagged("i1")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_delivery_by_smtpmail_reaches_notify_in_idle(self):
        c = self.notify_idle("NOTIFY SET (selected (MessageNew MessageExpunge)) "
                             "(inboxes (MessageNew MessageExpunge))")
        s = self.smtp()
        self.assertEqual(s.sendmail("bob@localhost", ["alice@localhost"],
                                    b"Subject: push\r\n\r\nnew mail\r\n"), {})
        s.quit()
        line = self.wait_line(c, rb'^\* STATUS "INBOX" \(')
        self.assertIn(b"MESSAGES 1 ", line)
        self.assertIn(b"UNSEEN 1", line)
        self.done(c)

    def test_append_by_another_session_reaches_notify_in_idle(self):
        c = self.notify_idle("NOTIFY SET (personal (MessageNew MessageExpunge FlagChange))",
                             select="INBOX")
        m = self.imap()
        self.assertOK(m.append("other", None, None, b"Subject: hi\r\n\r\nbody\r\n"))
        line = self.wait_line(c, rb'^\* STATUS "other" \(')
        self.assertIn(b"MESSAGES 1 UIDNEXT 2 ", line)
        self.assertIn(b"HIGHESTMODSEQ ", line)
        self.assertOK(m.select("other"))
        self.assertOK(m.store("1", "+FLAGS", "(\\Seen)"))
        line = self.wait_line(c, rb'^\* STATUS "other" \(')
        self.assertIn(b"UNSEEN 0", line)
        self.done(c)

    def test_mailbox_names(self):
        c = self.notify_idle("NOTIFY SET (personal (MailboxName))", select="INBOX")
        m = self.imap()
        self.assertOK(m.create("fresh"))
        self.wait_line(c, rb'^\* LIST \(\) "/" "fresh"\r\n')
        self.assertOK(m.rename("fresh", "renamed"))
        self.wait_line(c, rb'^\* LIST \(\) "/" "renamed" \("OLDNAME" \("fresh"\)\)\r\n')
        self.assertOK(m.delete("renamed"))
        self.wait_line(c, rb'^\* LIST \(\\NonExistent\) "/" "renamed"\r\n')
        self.done(c)


class TestNotifyFlat(NotifyBehaviour, SmtpTestCase):
    pass


class TestNotifyMaildir(NotifyBehaviour, SmtpTestCase):
    def configure(self, server):
        with open(server.conf) as f:
            conf = f.read()
        conf = conf.replace('backend = "flat"; root', 'backend = "maildir"; root')
        assert 'backend = "maildir"' in conf
        with open(server.conf, "w") as f:
            f.write(conf)
