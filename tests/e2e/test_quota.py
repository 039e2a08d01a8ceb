"""End-to-end tests of QUOTA (RFC 9208) with real clients: imaplib's
getquotaroot/getquota/append and smtplib's sendmail, against the listener
inside imapserver and the stand-alone smtpmail, on both backends. Every
user may keep LIMIT messages (quota.messages) and 1 MiB (quota.storage)."""

import re
import smtplib
import unittest

from smtp_support import SmtpTestCase

LIMIT = 6
MESSAGE = (b"From: bob@localhost\r\nTo: alice@localhost\r\nSubject: q\r\n\r\n"
           b"a line\r\n")


def quota_messages(data):
    """The MESSAGE usage in imaplib's getquota/getquotaroot data."""
    text = b" ".join(x if isinstance(x, bytes) else b" ".join(x) for x in data)
    m = re.search(rb"MESSAGE (\d+) (\d+)", text)
    assert m is not None, text
    return int(m.group(1)), int(m.group(2))


class QuotaBehaviour:
    def configure(self, server):
        with open(server.conf) as f:
            conf = f.read()
        if self.BACKEND == "maildir":
            conf = conf.replace('backend = "flat"; root', 'backend = "maildir"; root')
        conf += f"quota: {{ storage = 1024; messages = {LIMIT}; }};\n"
        with open(server.conf, "w") as f:
            f.write(conf)

    def usage(self, user="alice"):
        m = self.imap(user)
        typ, data = m.getquota('""')
        self.assertEqual(typ, "OK", data)
        m.logout()
        return quota_messages(data)[0]

    def fill_to(self, count, user="alice"):
        m = self.imap(user)
        while True:
            typ, data = m.getquota('""')
            self.assertEqual(typ, "OK", data)
            used = quota_messages(data)[0]
            if used >= count:
                break
            self.assertOK(m.append("INBOX", None, None, MESSAGE), "append")
        m.logout()

    def test_imaplib_getquotaroot_and_overquota(self):
        self.fill_to(LIMIT - 1)
        m = self.imap()
        typ, data = m.getquotaroot("INBOX")
        self.assertEqual(typ, "OK", data)
        self.assertIn(b'"INBOX" ""', data[0][0])
        self.assertEqual(quota_messages(data[1]), (LIMIT - 1, LIMIT))
        self.assertIn(b"STORAGE ", data[1][0])
        typ, data = m.capability()
        self.assertIn(b"QUOTA=RES-MESSAGE", data[0])
        self.assertOK(m.append("INBOX", None, None, MESSAGE), "append at limit - 1")
        typ, data = m.append("INBOX", None, None, MESSAGE)
        self.assertEqual(typ, "NO", data)
        self.assertIn(b"[OVERQUOTA]", data[0])
        # SETQUOTA is refused: the limits are the config's.
        typ, data = m._simple_command("SETQUOTA", '""', "(STORAGE 10)")
        self.assertEqual(typ, "NO")
        # EXPUNGE frees room.
        self.assertOK(m.select("INBOX"), "select")
        self.assertOK(m.store("1", "+FLAGS.SILENT", r"(\Deleted)"), "store")
        self.assertOK(m.expunge(), "expunge")
        self.assertOK(m.append("INBOX", None, None, MESSAGE), "append after expunge")
        m.logout()

    def test_smtp_452_per_recipient(self):
        self.fill_to(LIMIT - 1)
        s = self.smtp()
        # Room for one: delivered to both.
        self.assertEqual(s.sendmail("carol@localhost", ["alice@localhost", "bob@localhost"],
                                    MESSAGE), {})
        self.assertEqual(self.usage(), LIMIT)
        # alice is full: 452 4.2.2 for her, bob still gets it.
        refused = s.sendmail("carol@localhost", ["alice@localhost", "bob@localhost"], MESSAGE)
        self.assertEqual(list(refused), ["alice@localhost"])
        code, text = refused["alice@localhost"]
        self.assertEqual(code, 452)
        self.assertTrue(text.startswith(b"4.2.2"), text)
        self.assertEqual(self.usage("bob"), 2)
        self.assertEqual(self.usage(), LIMIT)
        # alice alone: refused, nothing stored.
        with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
            s.sendmail("carol@localhost", ["alice@localhost"], MESSAGE)
        self.assertEqual(cm.exception.recipients["alice@localhost"][0], 452)
        s.quit()
        self.assertEqual(self.usage(), LIMIT)

    def test_smtp_message_too_big_for_the_room_left(self):
        big = MESSAGE + (b"x" * 70 + b"\r\n") * 16000
        s = self.smtp()
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.sendmail("carol@localhost", ["alice@localhost"], big)
        self.assertEqual(cm.exception.smtp_code, 452)
        self.assertTrue(cm.exception.smtp_error.startswith(b"4.2.2"), cm.exception.smtp_error)
        s.quit()


class FlatInprocess(QuotaBehaviour, SmtpTestCase):
    BACKEND = "flat"
    MODE = "inprocess"
    ALLOW_LOG_ERRORS = True   # a refused delivery is logged as an error


class FlatStandalone(QuotaBehaviour, SmtpTestCase):
    BACKEND = "flat"
    MODE = "standalone"
    ALLOW_LOG_ERRORS = True


class MaildirInprocess(QuotaBehaviour, SmtpTestCase):
    BACKEND = "maildir"
    MODE = "inprocess"
    MAILBOXES = {}
    ALLOW_LOG_ERRORS = True


class MaildirStandalone(QuotaBehaviour, SmtpTestCase):
    BACKEND = "maildir"
    MODE = "standalone"
    MAILBOXES = {}
    ALLOW_LOG_ERRORS = True


if __name__ == "__main__":
    unittest.main()
