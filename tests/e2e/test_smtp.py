"""End-to-end tests of the SMTP receiver, against the real binaries: the
listener inside imapserver (smtp.enabled = true) and the stand-alone
smtpmail on the same config and storage. Mail is sent with Python's
smtplib, a raw socket (pipelining, exact replies) and swaks when it is
installed, and read back over IMAP."""

import hashlib
import os
import shutil
import smtplib
import subprocess
import unittest

from server import SLOW, seed_text
from smtp_support import TRACE_RE, SmtpTestCase

SEED_COUNT = 4   # messages in alice's seeded INBOX (server.SEED)

# A message with a blank line after its header, and body lines that start
# with "." (smtplib stuffs them; the server must unstuff them).
DOT_MESSAGE = (b"From: bob@localhost\r\n"
               b"To: alice@localhost\r\n"
               b"Subject: dots survive\r\n"
               b"\r\n"
               b"first line\r\n"
               b".\r\n"
               b".x\r\n"
               b"..two dots\r\n"
               b" .not first\r\n"
               b"last line\r\n")


class SmtpBehaviour:
    """The tests run in both modes (mixed into the classes at the end)."""

    def test_ehlo_advertises_size_8bitmime_pipelining_enhancedstatuscodes(self):
        c = self.raw_smtp()
        code, lines = c.command("EHLO client.example")
        self.assertEqual(code, 250)
        self.assertEqual(lines[0], "localhost")
        self.assertEqual(lines[1:], ["SIZE 26214400", "8BITMIME", "PIPELINING",
                                     "ENHANCEDSTATUSCODES"])
        self.assertEqual(c.command("VRFY alice")[0], 252)
        self.assertEqual(c.command("HELP")[0], 214)
        self.assertEqual(c.command("NOOP")[0], 250)
        self.assertEqual(c.command("QUIT"), (221, ["2.0.0 Bye"]))
        self.assertTrue(c.at_eof())

    def test_smtp_then_imap_byte_for_byte(self):
        s = self.smtp()
        refused = s.sendmail("bob@localhost", ["alice@localhost"], DOT_MESSAGE)
        self.assertEqual(refused, {})
        s.quit()
        self.assertEqual(self.inbox_count(), SEED_COUNT + 1)
        body = self.fetch_body(SEED_COUNT + 1)
        self.assert_trace_then(body, DOT_MESSAGE, "bob@localhost", rcpt="alice@localhost")
        # The flat file holds it in the lab's layout: dot-stuffed, "." last.
        raw = self.server.read_mailbox("alice")
        self.assertTrue(raw.startswith(seed_text().encode()))
        self.assertTrue(raw.endswith(b"first line\n..\n..x\n...two dots\n .not first\n"
                                     b"last line\n.\n"), raw[-200:])

    def test_lab_layout_message_arrives_intact(self):
        # The lab's layout: From/To/Subject lines, then the body, no blank
        # line; body lines "." and ".x".
        lab = (b"From: bob@localhost\r\nTo: alice@localhost\r\nSubject: lab layout\r\n"
               b"Hello Alice,\r\n.\r\n.x\r\nbye\r\n")
        s = self.smtp()
        self.assertEqual(s.sendmail("bob@localhost", ["alice@localhost"], lab), {})
        s.quit()
        raw = self.server.read_mailbox("alice")
        self.assertTrue(raw.endswith(b"From: bob@localhost\nTo: alice@localhost\n"
                                     b"Subject: lab layout\nHello Alice,\n..\n..x\nbye\n.\n"),
                        raw[-300:])
        # IMAP serves it as RFC 5322: the blank line after the header that
        # the lab's layout leaves out is put in, nothing else changes.
        body = self.fetch_body(SEED_COUNT + 1)
        self.assert_trace_then(body, b"From: bob@localhost\r\nTo: alice@localhost\r\n"
                               b"Subject: lab layout\r\n\r\nHello Alice,\r\n.\r\n.x\r\nbye\r\n",
                               "bob@localhost")

    def test_pipelined_commands_are_answered_in_order(self):
        c = self.raw_smtp()
        code, lines = c.command("EHLO pipe.example")
        self.assertIn("PIPELINING", lines)
        c.send("MAIL FROM:<carol@localhost> BODY=8BITMIME\r\n"
               "RCPT TO:<alice@localhost>\r\n"
               "RCPT TO:<nobody@localhost>\r\n"
               "RCPT TO:<alice@example.org>\r\n"
               "RCPT TO:<bob@localhost>\r\n"
               "DATA\r\n")
        replies = [c.reply() for _ in range(6)]
        self.assertEqual([r[0] for r in replies], [250, 250, 550, 550, 250, 354], replies)
        self.assertTrue(replies[2][1][0].startswith("5.1.1 "), replies[2])
        self.assertTrue(replies[3][1][0].startswith("5.7.1 "), replies[3])
        # The data, the end, and the next transaction in one write.
        c.send("Subject: pipelined\r\n\r\n\xc3\xa9t\xc3\xa9 8bit\r\n.\r\n"
               "MAIL FROM:<>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n"
               "Subject: second\r\n\r\nbounce\r\n.\r\nQUIT\r\n")
        replies = [c.reply() for _ in range(6)]
        self.assertEqual([r[0] for r in replies], [250, 250, 250, 354, 250, 221], replies)
        self.assertTrue(c.at_eof())
        self.assertEqual(self.inbox_count("alice"), SEED_COUNT + 2)
        # bob had no mailbox yet: the delivery made it.
        self.assertEqual(self.inbox_count("bob"), 1)
        self.assert_trace_then(self.fetch_body(1, "bob"),
                               "Subject: pipelined\r\n\r\n\xc3\xa9t\xc3\xa9 8bit\r\n".encode(),
                               "carol@localhost")
        self.assert_trace_then(self.fetch_body(SEED_COUNT + 2),
                               b"Subject: second\r\n\r\nbounce\r\n", "")

    def test_hundred_recipients_in_one_pipelined_write(self):
        c = self.raw_smtp()
        c.command("EHLO c")
        rcpts = "".join(f"RCPT TO:<{'alice' if i % 2 else 'bob'}@localhost>\r\n"
                        for i in range(100))
        c.send("MAIL FROM:<x@example.org>\r\n" + rcpts + "RCPT TO:<alice@localhost>\r\nDATA\r\n")
        replies = [c.reply() for _ in range(103)]
        self.assertEqual([r[0] for r in replies], [250] + [250] * 100 + [452, 354])
        self.assertTrue(replies[101][1][0].startswith("4.5.3 "))
        c.send("Subject: many\r\n\r\nx\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        # One copy per user.
        self.assertEqual(self.inbox_count("alice"), SEED_COUNT + 1)
        self.assertEqual(self.inbox_count("bob"), 1)

    def test_ten_megabyte_message(self):
        line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,-+*/0123456789\r\n"
        body = line * (10 * 1024 * 1024 // len(line) + 1)
        msg = b"From: bob@localhost\r\nTo: alice@localhost\r\nSubject: big\r\n\r\n" + body
        self.assertGreater(len(msg), 10 * 1024 * 1024)
        s = self.smtp()
        s.ehlo()
        self.assertEqual(s.sendmail("bob@localhost", ["alice@localhost"], msg), {})
        s.quit()
        got = self.fetch_body(SEED_COUNT + 1)
        self.assert_trace_then(got, msg, "bob@localhost")
        self.assertEqual(hashlib.sha256(got[-len(msg):]).digest(), hashlib.sha256(msg).digest())

    def test_open_relay_is_refused(self):
        before = self.server.read_mailbox("alice")
        s = self.smtp()
        s.ehlo()
        self.assertEqual(s.mail("alice@localhost")[0], 250)
        code, text = s.rcpt("victim@example.org")
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith(b"5.7.1"), text)
        code, text = s.rcpt("alice@[10.1.2.3]")
        self.assertEqual(code, 550)
        self.assertEqual(s.rset()[0], 250)
        with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
            s.sendmail("alice@localhost", ["victim@example.org"], b"Subject: relay\r\n\r\nx\r\n")
        self.assertEqual(cm.exception.recipients["victim@example.org"][0], 550)
        s.quit()
        self.assertEqual(self.server.read_mailbox("alice"), before)
        self.assertFalse(os.path.exists(os.path.join(self.server.root, "victim")))

    def test_unknown_local_user_gets_550_5_1_1(self):
        s = self.smtp()
        s.ehlo()
        s.mail("bob@localhost")
        code, text = s.rcpt("carol@localhost")
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith(b"5.1.1"), text)
        code, text = s.rcpt("../alice@localhost")
        self.assertEqual(code, 501)
        s.quit()
        self.assertFalse(os.path.exists(os.path.join(self.server.root, "carol")))

    def test_bad_sequence_and_syntax(self):
        c = self.raw_smtp()
        self.assertEqual(c.command("MAIL FROM:<a@b.c>")[0], 503)
        self.assertEqual(c.command("EHLO c")[0], 250)
        self.assertEqual(c.command("RCPT TO:<alice@localhost>")[0], 503)
        self.assertEqual(c.command("DATA")[0], 503)
        self.assertEqual(c.command("FROB")[0], 500)
        self.assertEqual(c.command("MAIL FROM:<not an address>")[0], 501)
        self.assertEqual(c.command("NOOP " + "x" * 600)[0], 500)
        self.assertEqual(c.command("RSET")[0], 250)
        self.assertEqual(c.command("QUIT")[0], 221)

    def test_swaks_delivers(self):
        swaks = shutil.which("swaks")
        if swaks is None:
            self.skipTest("swaks is not installed")
        proc = subprocess.run([swaks, "--to", "alice@localhost", "--server",
                               f"127.0.0.1:{self.smtp_port}", "--helo", "swaks.example",
                               "--pipeline"],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=30 * SLOW)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        body = self.fetch_body(SEED_COUNT + 1)
        m = TRACE_RE.match(body)
        self.assertIsNotNone(m, body[:300])
        self.assertEqual(m.group("helo"), b"swaks.example")
        self.assertEqual(m.group("for"), b"alice@localhost")
        self.assertIn(b"\r\nTo: alice@localhost\r\n", body)
        self.assertIn(b"\r\n\r\nThis is a test mailing\r\n", body)

    def test_idle_session_sees_the_delivery(self):
        c = self.raw_login("alice", "INBOX")
        c.send("i1 IDLE\r\n")
        self.assertTrue(c.readline().startswith(b"+"))
        s = self.smtp()
        self.assertEqual(s.sendmail("bob@localhost", ["alice@localhost"],
                                    b"Subject: push\r\n\r\nnew mail\r\n"), {})
        # After the final 250: "* 5 EXISTS" (no time bound beyond a
        # generous deadline here).
        line = c.readline(timeout=2.0 * SLOW)
        while line.startswith(b"* ") and b"EXISTS" not in line:
            line = c.readline(timeout=2.0 * SLOW)
        self.assertEqual(line, f"* {SEED_COUNT + 1} EXISTS\r\n".encode())
        s.quit()
        c.send("DONE\r\n")
        untagged, tagged = c.read_tagged("i1")
        self.assertTrue(tagged.startswith(b"OK"), tagged)


class TestSmtpInImapserver(SmtpBehaviour, SmtpTestCase):
    MODE = "inprocess"

    def test_both_listeners_are_logged_apart(self):
        lines = self.server.log_lines()
        imap = [l for l in lines if "listening on" in l and "smtp listening on" not in l]
        smtp = [l for l in lines if "smtp listening on" in l]
        self.assertEqual(len(imap), 1, lines)
        self.assertEqual(len(smtp), 1, lines)
        self.assertLess(lines.index(imap[0]), lines.index(smtp[0]))


class TestSmtpmailStandalone(SmtpBehaviour, SmtpTestCase):
    MODE = "standalone"


class SizeLimitBehaviour:
    SMTP = {"max_message_size": 4096}

    def test_size_parameter_over_the_limit_is_refused_early(self):
        c = self.raw_smtp()
        code, lines = c.command("EHLO c")
        self.assertIn("SIZE 4096", lines)
        code, lines = c.command("MAIL FROM:<bob@localhost> SIZE=4097")
        self.assertEqual(code, 552)
        self.assertTrue(lines[0].startswith("5.3.4 "), lines)
        self.assertEqual(c.command("MAIL FROM:<bob@localhost> SIZE=4096")[0], 250)

    def test_message_over_the_limit_is_not_stored(self):
        before = self.server.read_mailbox("alice")
        c = self.raw_smtp()
        c.command("EHLO c")
        self.assertEqual(c.command("MAIL FROM:<bob@localhost>")[0], 250)
        self.assertEqual(c.command("RCPT TO:<alice@localhost>")[0], 250)
        self.assertEqual(c.command("DATA")[0], 354)
        c.send("Subject: too big\r\n\r\n" + ("y" * 78 + "\r\n") * 60 + ".\r\n")
        code, lines = c.reply()
        self.assertEqual(code, 552)
        self.assertTrue(lines[0].startswith("5.3.4 "), lines)
        self.assertEqual(self.server.read_mailbox("alice"), before)
        self.assertEqual(self.inbox_count(), SEED_COUNT)
        # The session goes on, and a message under the limit is stored.
        self.assertEqual(c.command("MAIL FROM:<bob@localhost>")[0], 250)
        self.assertEqual(c.command("RCPT TO:<alice@localhost>")[0], 250)
        self.assertEqual(c.command("DATA")[0], 354)
        c.send("Subject: small\r\n\r\nok\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(self.inbox_count(), SEED_COUNT + 1)


class TestSizeLimitInImapserver(SizeLimitBehaviour, SmtpTestCase):
    MODE = "inprocess"


class TestSizeLimitStandalone(SizeLimitBehaviour, SmtpTestCase):
    MODE = "standalone"


class TestSmtpLimits(SmtpTestCase):
    MODE = "inprocess"
    SMTP = {"timeout": 1, "domain": "localhost, example.net, [127.0.0.1]"}
    LIMITS = {"max_connections": 2}

    def test_idle_client_gets_421_and_is_closed(self):
        c = self.raw_smtp()
        code, lines = c.reply(timeout=10.0 * SLOW)
        self.assertEqual(code, 421)
        self.assertTrue(lines[0].startswith("4.4.2 "), lines)
        self.assertTrue(c.at_eof())

    def test_connections_beyond_max_connections_get_421(self):
        a = self.raw_smtp()
        b = self.raw_smtp()
        c = self.raw_smtp(greeting=False)
        code, lines = c.reply()
        self.assertEqual(code, 421)
        self.assertTrue(lines[0].startswith("4.7.0 "), lines)
        self.assertTrue(c.at_eof())
        self.assertEqual(a.command("NOOP")[0], 250)
        self.assertEqual(b.command("NOOP")[0], 250)

    def test_every_configured_domain_is_local(self):
        s = self.smtp()
        s.ehlo()
        s.mail("bob@localhost")
        self.assertEqual(s.rcpt("alice@EXAMPLE.net")[0], 250)
        self.assertEqual(s.rcpt("alice@[127.0.0.1]")[0], 250)
        self.assertEqual(s.rcpt("alice@example.org")[0], 550)
        s.rset()
        s.quit()


class TestStorageFailure(SmtpTestCase):
    """A mailbox that cannot be written: 451 4.3.0, nothing stored."""
    MODE = "inprocess"
    ALLOW_LOG_ERRORS = True

    def test_storage_failure_answers_451(self):
        # bob's mymailbox.mail is a folder: the backend cannot open it.
        os.makedirs(os.path.join(self.server.root, "bob", "mymailbox.mail"))
        s = self.smtp()
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.sendmail("alice@localhost", ["bob@localhost"], b"Subject: x\r\n\r\ny\r\n")
        self.assertEqual(cm.exception.smtp_code, 451)
        self.assertTrue(cm.exception.smtp_error.startswith(b"4.3.0"), cm.exception.smtp_error)
        self.assertEqual(os.listdir(os.path.join(self.server.root, "bob", "mymailbox.mail")), [])
        # The session and the server go on.
        self.assertEqual(s.sendmail("bob@localhost", ["alice@localhost"],
                                    b"Subject: fine\r\n\r\nok\r\n"), {})
        s.quit()
        self.assertEqual(self.inbox_count(), SEED_COUNT + 1)


if __name__ == "__main__":
    unittest.main()


class AliasBehaviour:
    """smtp.aliases: RFC 5321 4.5.1's postmaster, in any case and without
    a domain, and a list alias, each delivered once to the users named."""
    SMTP = {"aliases": "aliases"}
    MAILBOXES = {"alice": None, "bob": ""}

    def configure(self, server):
        with open(os.path.join(server.dir, "aliases"), "w") as f:
            f.write("# test aliases\npostmaster: alice\nteam: alice,\n  bob, nobody-here\n")

    def test_postmaster_and_a_list_alias(self):
        c = self.raw_smtp()
        self.assertEqual(c.command("EHLO c")[0], 250)
        self.assertEqual(c.command("MAIL FROM:<x@example.org>")[0], 250)
        self.assertEqual(c.command("RCPT TO:<postmaster>")[0], 250)
        self.assertEqual(c.command("RCPT TO:<PostMaster@localhost>")[0], 250)
        self.assertEqual(c.command("RCPT TO:<Team@localhost>")[0], 250)
        self.assertEqual(c.command("DATA")[0], 354)
        c.send(b"Subject: to the postmaster\r\n\r\nhello\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.command("QUIT")[0], 221)
        # alice once (postmaster, PostMaster and team), bob once (team).
        self.assertEqual(self.inbox_count("alice"), SEED_COUNT + 1)
        self.assertEqual(self.inbox_count("bob"), 1)

    def test_alias_of_nobody_is_refused(self):
        with open(os.path.join(self.server.dir, "aliases"), "a") as f:
            f.write("ghosts: nobody-here\n")
        proc = self.smtpmail if self.smtpmail is not None else self.server
        os.kill(proc.proc.pid, __import__("signal").SIGHUP)
        self.assertIsNotNone(proc.wait_log("configuration reloaded", 5.0))
        c = self.raw_smtp()
        c.command("EHLO c")
        c.command("MAIL FROM:<x@example.org>")
        code, lines = c.command("RCPT TO:<ghosts@localhost>")
        self.assertEqual(code, 550, lines)


class TestAliasesInImapserver(AliasBehaviour, SmtpTestCase):
    MODE = "inprocess"


class TestAliasesStandalone(AliasBehaviour, SmtpTestCase):
    MODE = "standalone"
