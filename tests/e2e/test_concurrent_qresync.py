"""Two sessions on one mailbox with QRESYNC (RFC 7162 3.2.5, 3.2.10;
RFC 2180 4.1): an expunge made by another session that this session has
not been told of yet must not be hidden behind a higher mod-sequence, so
that a client that reconnects with the last mod-sequence it saw is told
of it (VANISHED (EARLIER)). On both backends."""

import re
import unittest

from server import ServerTestCase
from test_maildir import MaildirMixin


def joined(untagged):
    return b"".join(untagged)


class TestQresyncReconnect(ServerTestCase):

    def qresync_session(self):
        c = self.raw_login()
        resp, tagged = c.command("ENABLE QRESYNC")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        untagged, tagged = c.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        text = joined(untagged)
        uidv = int(re.search(rb"\[UIDVALIDITY (\d+)\]", text).group(1))
        return c, uidv

    def test_reconnect_is_told_of_another_sessions_expunge(self):
        a, uidv = self.qresync_session()
        b = self.raw_login(mailbox="INBOX")
        untagged, _ = a.command("UID FETCH 2 (UID)")
        uid2 = int(re.search(rb"UID (\d+)", joined(untagged)).group(1))
        b.command("STORE 2 +FLAGS.SILENT (\\Deleted)")
        resp, tagged = b.command("EXPUNGE")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # A's STORE may not carry the VANISHED (RFC 3501 7.4.1 forbids
        # EXPUNGE during STORE); the modseq it caches must then stay
        # below the expunge's: its MODSEQ answer, or a tagged
        # [HIGHESTMODSEQ n] below it (RFC 7162 3.2.10).
        untagged, tagged = a.command("STORE 3 +FLAGS (\\Flagged)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        text = joined(untagged)
        m = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", tagged)
        if b"VANISHED" in text:
            cached = int(re.search(rb"MODSEQ \((\d+)\)", text).group(1))
        elif m is not None:
            cached = int(m.group(1))
        else:
            cached = int(re.search(rb"MODSEQ \((\d+)\)", text).group(1))
        a.command("LOGOUT")
        b.command("LOGOUT")
        c = self.raw_login()
        c.command("ENABLE QRESYNC")
        untagged, tagged = c.command(f"SELECT INBOX (QRESYNC ({uidv} {cached}))")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertRegex(joined(untagged),
                         rb"\* VANISHED \(EARLIER\) [0-9:,]*\b%d\b" % uid2)


class TestQresyncReconnectMaildir(MaildirMixin, TestQresyncReconnect):
    pass


if __name__ == "__main__":
    unittest.main()
