"""SORT (RFC 5256, SORT=DISPLAY RFC 5957) and THREAD (ORDEREDSUBJECT,
REFERENCES) over the wire: the answers for a small corpus written out by
hand, the unhappy paths, and, where Dovecot is installed, the same
commands answered the same way by Dovecot on the same corpus."""

import imaplib
import os
import unittest

from server import SLOW, ServerTestCase

# (internal date, raw message): a thread with a missing parent, replies,
# forwards, list tags, encoded words, groups and equal subjects.
CORPUS = [
    ('"01-Jan-2024 10:00:00 +0000"',
     b"From: Carol <carol@example.org>\r\nTo: bob@example.org\r\n"
     b"Subject: Lab meeting\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
     b"Message-ID: <a@x>\r\n\r\nagenda\r\n"),
    ('"02-Jan-2024 10:00:00 +0000"',
     b"From: alice@example.org\r\nTo: Zed <zed@example.org>\r\nCc: team: a@b.c;\r\n"
     b"Subject: Re: Lab meeting\r\nDate: Tue, 02 Jan 2024 09:00:00 +0100\r\n"
     b"Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\n\r\nok\r\n" + b"x" * 300 + b"\r\n"),
    ('"03-Jan-2024 10:00:00 +0000"',
     b"From: =?utf-8?q?=C3=89mile?= <emile@example.org>\r\nTo: alice@example.org\r\n"
     b"Subject: [lab] Re: Lab meeting\r\nDate: Wed, 03 Jan 2024 10:00:00 +0000\r\n"
     b"Message-ID: <c@x>\r\nReferences: <a@x> <b@x>\r\n\r\nme too\r\n"),
    ('"04-Jan-2024 10:00:00 +0000"',
     b"From: bob@example.org\r\nTo: alice@example.org\r\n"
     b"Subject: Budget (fwd)\r\nDate: Thu, 04 Jan 2024 10:00:00 +0000\r\n"
     b"Message-ID: <d@x>\r\n\r\nnumbers\r\n"),
    ('"05-Jan-2024 10:00:00 +0000"',
     b"From: dave@example.org\r\nTo: alice@example.org\r\n"
     b"Subject: Re: Budget\r\nDate: Fri, 05 Jan 2024 10:00:00 +0000\r\n"
     b"Message-ID: <e@x>\r\nReferences: <missing@x> <d@x>\r\n\r\nyes\r\n"),
    ('"06-Jan-2024 10:00:00 +0000"',
     b"From: alice@example.org\r\nTo: carol@example.org\r\n"
     b"Subject: [Fwd: Holidays]\r\n"
     b"Message-ID: <f@x>\r\nReferences: <gone@x>\r\n\r\nfwd\r\n"),
    ('"07-Jan-2024 10:00:00 +0000"',
     b"From: bob@example.org\r\nTo: carol@example.org\r\n"
     b"Subject: Holidays\r\nDate: Sun, 07 Jan 2024 10:00:00 +0000\r\n"
     b"Message-ID: <g@x>\r\nReferences: <gone@x>\r\n\r\nwhen?\r\n"),
    ('"08-Jan-2024 10:00:00 +0000"',
     b"From: zed@example.org\r\nSubject: lab meeting\r\n"
     b"Date: Mon, 01 Jan 2024 08:00:00 +0000\r\n\r\nno ids at all\r\n"),
]

COMMANDS = [
    "SORT (ARRIVAL) UTF-8 ALL",
    "SORT (REVERSE ARRIVAL) UTF-8 ALL",
    "SORT (DATE) UTF-8 ALL",
    "SORT (SUBJECT DATE) UTF-8 ALL",
    "SORT (REVERSE SUBJECT) UTF-8 ALL",
    "SORT (FROM) UTF-8 ALL",
    "SORT (TO) UTF-8 ALL",
    "SORT (CC) UTF-8 ALL",
    "SORT (SIZE) UTF-8 ALL",
    "SORT (DISPLAYFROM) UTF-8 ALL",
    "SORT (DISPLAYTO) UTF-8 ALL",
    "SORT (SUBJECT) US-ASCII FROM bob",
    "UID SORT (DATE) UTF-8 ALL",
    "THREAD ORDEREDSUBJECT UTF-8 ALL",
    "THREAD REFERENCES UTF-8 ALL",
    "UID THREAD REFERENCES UTF-8 ALL",
    "THREAD REFERENCES UTF-8 SUBJECT budget",
]


def answer(m, command):
    """The untagged SORT/THREAD line of command (text after the name)."""
    typ, data = m._simple_command(*command.split(" ", 1)) if " " in command else (None, None)
    name = "THREAD" if "THREAD" in command.split("(")[0] else "SORT"
    typ, data = m._untagged_response(typ, data, name)
    return typ, (data[-1] or b"").decode()


class TestSortThread(ServerTestCase):
    MAILBOXES = {"alice": ""}

    def load(self, m):
        for date, msg in CORPUS:
            typ, data = m.append("INBOX", None, date, msg)
            self.assertEqual(typ, "OK", data)
        m.select("INBOX")

    def test_capabilities(self):
        m = self.imap()
        caps = m.capabilities
        for cap in ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"):
            self.assertIn(cap, caps)
        # Python's imaplib, as scripts call it.
        self.load(m)
        typ, data = m.sort("(REVERSE DATE)", "UTF-8", "ALL")
        self.assertEqual((typ, data), ("OK", [b"7 6 5 4 3 2 1 8"]))
        typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
        self.assertEqual(typ, "OK")
        self.assertEqual(data, [b"((8)(1 2 3))(4 5)((6)(7))"])

    def test_answers_for_the_corpus(self):
        m = self.imap()
        self.load(m)
        got = {c: answer(m, c) for c in COMMANDS}
        for c, (typ, _) in got.items():
            self.assertEqual(typ, "OK", c)
        self.assertEqual(got["SORT (ARRIVAL) UTF-8 ALL"][1], "1 2 3 4 5 6 7 8")
        self.assertEqual(got["SORT (REVERSE ARRIVAL) UTF-8 ALL"][1], "8 7 6 5 4 3 2 1")
        # 8 is dated before 1 (its arrival is last); 2 is 08:00 UTC on
        # the 2nd; 6 has no Date: its arrival counts.
        self.assertEqual(got["SORT (DATE) UTF-8 ALL"][1], "8 1 2 3 4 5 6 7")
        # BUDGET < HOLIDAYS < LAB MEETING; within a subject by date.
        self.assertEqual(got["SORT (SUBJECT DATE) UTF-8 ALL"][1], "4 5 6 7 8 1 2 3")
        # Émile sorts as EMILE, between CAROL and ZED.
        self.assertEqual(got["SORT (DISPLAYFROM) UTF-8 ALL"][1], "2 6 4 7 1 5 3 8")
        self.assertEqual(got["SORT (SIZE) UTF-8 ALL"][1].split()[-1], "2")
        self.assertEqual(got["SORT (SUBJECT) US-ASCII FROM bob"][1], "4 7")
        self.assertEqual(got["UID SORT (DATE) UTF-8 ALL"][1].split(),
                         [str(u) for u in self.uids(m, "8 1 2 3 4 5 6 7")])
        # ORDEREDSUBJECT: by subject, first of each the parent, threads in
        # the order of their first message's date.
        self.assertEqual(got["THREAD ORDEREDSUBJECT UTF-8 ALL"][1],
                         "(8 (1)(2)(3))(4 5)(6 7)")
        # REFERENCES: 1-2-3 by their ids; 8 has the subject of 1 and
        # neither is a reply: siblings under a dummy (RFC 5256 step 5B);
        # 4-5 by reference; 6 and 7 share a missing parent (a dummy kept
        # at the root with its two children).
        self.assertEqual(got["THREAD REFERENCES UTF-8 ALL"][1],
                         "((8)(1 2 3))(4 5)((6)(7))")
        self.assertEqual(got["THREAD REFERENCES UTF-8 SUBJECT budget"][1], "(4 5)")

    def uids(self, m, seqs):
        typ, data = m.fetch(",".join(seqs.split()), "(UID)")
        by_seq = {}
        for line in data:
            seq, rest = line.split(b" ", 1)
            by_seq[int(seq)] = int(rest.split(b"UID ")[1].rstrip(b")"))
        return [by_seq[int(s)] for s in seqs.split()]

    def test_mistakes(self):
        m = self.imap()
        self.load(m)
        for cmd, want in (("SORT (BOGUS) UTF-8 ALL", b"BAD"),
                          ("SORT (REVERSE) UTF-8 ALL", b"BAD"),
                          ("SORT ARRIVAL UTF-8 ALL", b"BAD"),
                          ("SORT (ARRIVAL) UTF-8", b"BAD"),
                          ("SORT (ARRIVAL) KOI8-R ALL", b"NO [BADCHARSET"),
                          ("THREAD NOSUCH UTF-8 ALL", b"BAD"),
                          ("THREAD REFERENCES UTF-8 NOSUCHKEY", b"BAD")):
            tag = m._new_tag()
            m.send(tag + b" " + cmd.encode() + b"\r\n")
            while True:
                line = m.readline()
                if line.startswith(tag + b" "):
                    break
            self.assertTrue(line[len(tag) + 1:].startswith(want), (cmd, line))
        # The session goes on.
        self.assertEqual(m.noop()[0], "OK")

    def test_same_answers_as_dovecot(self):
        try:
            from dovecot_support import DovecotServer, dovecot_binary
        except ImportError:
            self.skipTest("no dovecot support")
        if dovecot_binary() is None:
            self.skipTest("dovecot is not installed")
        ours = self.imap()
        self.load(ours)
        with DovecotServer() as dc:
            theirs = dc.imap()
            self.load(theirs)
            for c in COMMANDS:
                if c.startswith("UID"):
                    continue        # other UIDVALIDITY, other UIDs
                with self.subTest(command=c):
                    self.assertEqual(answer(ours, c), answer(theirs, c))
            theirs.logout()


if __name__ == "__main__":
    unittest.main()
