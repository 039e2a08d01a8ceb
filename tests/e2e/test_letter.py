"""RFC 3501 to the letter, over the wire: the cases of Dovecot's ImapTest
scripted tests (src/tests: atoms, nil, fetch-envelope, search-addresses,
id) that the server once failed, sent as ImapTest sends them, and the
line limits around them."""

import unittest

from server import ServerTestCase

# ATOM-CHARs that are not letters: RFC 3501 section 9 leaves "[" and "}"
# in atoms; only "]" is a resp-special.
ATOM_CHARS = "!#$&'+,-.0123456789:;<=>?@^_`|[}"

ENVELOPE_MSGS = [
    "Message-ID: <msg@id>\r\nIn-Reply-To: <reply@to.id>\r\n"
    "Date: Thu, 15 Feb 2007 01:02:03 +0200\r\nSubject: subject header\r\n"
    "From: From Real <fromuser@fromdomain.org>\r\nTo: To Real <touser@todomain.org>\r\n"
    "Cc: Cc Real <ccuser@ccdomain.org>\r\nBcc: Bcc Real <bccuser@bccdomain.org>\r\n"
    "Sender: Sender Real <senderuser@senderdomain.org>\r\n"
    "Reply-To: ReplyTo Real <replytouser@replytodomain.org>\r\n\r\nbody\r\n",
    "Date: Thu, 15 Feb 2007 01:02:03 +0200\r\nFrom: user@domain\r\n\r\nbody\r\n",
    "Date: Thu, 15 Feb 2007 01:02:03 +0200\r\nFrom: user@domain (Real Name)\r\n"
    "To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\n"
    "Cc: group:;, group2: (foo) ;\r\n\r\nbody\r\n",
    "Date: Thu, 15 Feb 2007 01:02:03 +0200\r\nFrom: user@domain (Real Name)\r\n"
    "Sender: \r\nReply-To: \r\n\r\nbody\r\n",
    "Date: Thu, 15 Feb 2007 01:02:03 +0200\r\nFrom: <@route:user@domain>\r\n\r\nbody\r\n",
]

D = '"Thu, 15 Feb 2007 01:02:03 +0200"'
RN = '(("Real Name" NIL "user" "domain"))'
ENVELOPES = [
    f'{D} "subject header" (("From Real" NIL "fromuser" "fromdomain.org")) '
    '(("Sender Real" NIL "senderuser" "senderdomain.org")) '
    '(("ReplyTo Real" NIL "replytouser" "replytodomain.org")) '
    '(("To Real" NIL "touser" "todomain.org")) (("Cc Real" NIL "ccuser" "ccdomain.org")) '
    '(("Bcc Real" NIL "bccuser" "bccdomain.org")) "<reply@to.id>" "<msg@id>"',
    f'{D} NIL ((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) '
    '((NIL NIL "user" "domain")) NIL NIL NIL NIL NIL',
    f'{D} NIL {RN} {RN} {RN} '
    '((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL "g2" "d2.org")(NIL NIL NIL NIL)'
    '(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.org")(NIL NIL NIL NIL)) '
    '((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)) '
    'NIL NIL NIL',
    f'{D} NIL {RN} {RN} {RN} NIL NIL NIL NIL NIL',
    f'{D} NIL ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) '
    '((NIL "@route" "user" "domain")) NIL NIL NIL NIL NIL',
]

ADDRESS_MSGS = [
    "From: user-from@domain.org\r\nTo: user-to@domain.org\r\nCc: user-cc@domain.org\r\n"
    "Bcc: user-bcc@domain.org\r\n\r\nbody\r\n",
    "From: RealFrom <user-from@domain.org>\r\nTo: RealTo <user-to@domain.org>\r\n"
    "Cc: RealCc <user-cc@domain.org>\r\nBcc: RealBcc <user-bcc@domain.org>\r\n\r\nbody2\r\n",
    "From: <user-from (comment)@ (comment) domain.org>\r\nTo: <user-to@domain.org>\r\n"
    "Cc: <user-cc@domain.org>\r\nBcc: <user-bcc@domain.org>\r\n\r\nbody3\r\n",
    "From: user-from@domain.org (RealFrom)\r\nTo: user-to@domain.org (RealTo)\r\n"
    "Cc: user-cc@domain.org (RealCc)\r\nBcc: user-bcc@domain.org (RealBcc)\r\n\r\nbody4\r\n",
    "From: user-from1@domain.org, user-from2@domain.org\r\nCc: user-cc@domain.org\r\n"
    "\r\nbody5\r\n",
    "From: RealFrom <user-from@domain.org>\r\n"
    "To: groupname: groupuser1@domain.org, groupuser2@domain.org;,\r\n"
    "  groupname2: groupuser3@domain.org;\r\n\r\nbody6\r\n",
    "From: RealFrom <user-from@domain.org>\r\nTo: groupname:;\r\n\r\nbody7\r\n",
]


class TestLetter(ServerTestCase):

    def ok(self, c, cmd):
        untagged, tagged = c.command(cmd)
        self.assertTrue(tagged.startswith(b"OK"), (cmd, tagged, untagged))
        return untagged

    def fill(self, c, name, msgs):
        self.ok(c, f"CREATE {name}")
        for m in msgs:
            data = m.encode()
            c.send(f"a APPEND {name} {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
            untagged, tagged = c.read_tagged("a")
            self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.ok(c, f"SELECT {name}")

    def search(self, c, program):
        untagged = self.ok(c, f"SEARCH {program}")
        lines = [u for u in untagged if u.upper().startswith(b"* SEARCH")]
        self.assertEqual(len(lines), 1, (program, untagged))
        return lines[0].split()[2:]

    # ImapTest src/tests/atoms
    def test_atoms(self):
        c = self.raw_login()
        untagged, tagged = c.command("LIST \"\" ~foo")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        untagged, tagged = c.command("SELECT ~foo")
        self.assertTrue(tagged.startswith(b"NO"), tagged)
        untagged, tagged = c.command(f"SELECT {ATOM_CHARS}")
        self.assertTrue(tagged.startswith(b"NO"), tagged)
        untagged, tagged = c.command(f"LIST \"\" {ATOM_CHARS}%*")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # A mailbox so named ("&" is "&-" in a name) is created, listed
        # and selected.
        name = "a" + ATOM_CHARS.replace("&", "&-")
        self.ok(c, f"CREATE {name}")
        untagged = self.ok(c, f"LIST \"\" {name}%*")
        self.assertEqual(len(untagged), 1, untagged)
        self.assertIn(b"[}", untagged[0])
        self.ok(c, f"STATUS {name} (MESSAGES)")
        self.ok(c, f"SELECT {name}")
        # The section of a fetch-att still spans spaces.
        self.ok(c, "SELECT INBOX")
        untagged = self.ok(c, "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")
        self.assertIn(b"BODY[HEADER.FIELDS (SUBJECT FROM)]", untagged[0])

    # ImapTest src/tests/nil
    def test_nil_is_a_string(self):
        c = self.raw_login()
        self.fill(c, "nilbox", ["Subject: nil\r\n\r\nNil body\r\n",
                                "Subject: other\r\n\r\nbody\r\n"])
        self.assertEqual(self.search(c, "SUBJECT NIL"), [b"1"])
        self.assertEqual(self.search(c, "body nil"), [b"1"])
        self.assertEqual(self.search(c, "OR SUBJECT NIL SUBJECT other"), [b"1", b"2"])
        self.ok(c, 'LIST "" NIL')
        self.ok(c, "STORE 1 +FLAGS NIL")
        untagged = self.ok(c, "FETCH 1 FLAGS")
        self.assertIn(b"NIL", untagged[0])
        # NIL as any other astring: a mailbox name, a user name.
        self.ok(c, "CREATE NIL")
        untagged = self.ok(c, 'LIST "" NIL')
        self.assertEqual(len(untagged), 1, untagged)
        self.ok(c, "STATUS NIL (MESSAGES)")
        d = self.raw()
        untagged, tagged = d.command("LOGIN NIL NIL")
        self.assertTrue(tagged.startswith(b"NO"), tagged)

    # ImapTest src/tests/fetch-envelope
    def test_fetch_envelope(self):
        c = self.raw_login()
        self.fill(c, "envbox", ENVELOPE_MSGS)
        untagged = self.ok(c, "FETCH 1:* ENVELOPE")
        self.assertEqual(len(untagged), len(ENVELOPES), untagged)
        for i, (got, want) in enumerate(zip(untagged, ENVELOPES)):
            self.assertEqual(got.rstrip(b"\r\n").decode(),
                             f"* {i + 1} FETCH (ENVELOPE ({want}))")

    # ImapTest src/tests/search-addresses
    def test_search_addresses(self):
        c = self.raw_login()
        self.fill(c, "addrbox", ADDRESS_MSGS)
        cases = {
            "from user-from@domain.org": "1 2 3 4 6 7",
            "to user-to@domain.org": "1 2 3 4",
            "cc user-cc@domain.org": "1 2 3 4 5",
            "bcc user-bcc@domain.org": "1 2 3 4",
            "from realfrom": "2 4 6 7",
            "to realto": "2 4",
            "header from \"\"": "1 2 3 4 5 6 7",
            "header to \"\"": "1 2 3 4 6 7",
            "from ser-fro": "1 2 3 4 5 6 7",
            "from ealfro": "2 4 6 7",
            "from user-from1": "5",
            "to groupname": "6 7",
            "to groupname2": "6",
            "to groupuser3": "6",
            "to groupuser4": "",
        }
        for program, want in cases.items():
            got = b" ".join(self.search(c, program)).decode()
            self.assertEqual(got, want, program)

    # ImapTest src/tests/id: about 32 KB of ID before login, as RFC 2971
    # allows (30 pairs of 30 and 1024 octets).
    def test_long_id_before_and_after_login(self):
        pairs = " ".join(f'"{chr(97 + i % 26) * 30}" "{"1234567890" * 102}1234"'
                         for i in range(30))
        for login in (False, True):
            c = self.raw_login() if login else self.raw()
            untagged, tagged = c.command(f"ID ({pairs})")
            self.assertTrue(tagged.startswith(b"OK"), tagged)
            self.assertTrue(any(u.startswith(b"* ID") for u in untagged), untagged)

    # Before login a command holds at most 256 arguments (imap_client.h):
    # one more is BAD and the session goes on; after login, no such cap.
    def test_prelogin_argument_cap(self):
        many = " ".join(["x"] * 300)
        c = self.raw()
        untagged, tagged = c.command(f"ID ({many})")
        self.assertEqual(tagged, b"BAD Too many arguments")
        untagged, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        untagged, tagged = c.command(f"ID ({many})")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    # limits.max_line defaults to 64 KiB: a long UID set is taken.
    def test_long_uid_set_under_the_default_max_line(self):
        c = self.raw_login(mailbox="INBOX")
        uids = ",".join(str(n) for n in range(1, 12000, 2))
        self.assertGreater(len(uids), 30000)
        untagged, tagged = c.command(f"UID FETCH {uids} FLAGS")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        untagged, tagged = c.command(f"UID SEARCH UID {uids}")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    # Over the limit: BAD, then "* BYE" with the reason (RFC 3501 7.1.5).
    def test_line_over_the_default_limit_gets_bad_and_bye(self):
        for login in (False, True):
            c = self.raw_login() if login else self.raw()
            c.send(b"a1 NOOP " + b"x" * 70000 + b"\r\n")
            got = c.wait_closed()
            self.assertIn(b"a1 BAD Line too long\r\n* BYE Line too long", got)
        self.assert_server_serves()


class TestLetterSmallLimit(ServerTestCase):
    LIMITS = {"max_line": 1024, "max_bad_commands": 2}

    def test_every_forced_close_says_bye_first(self):
        c = self.raw_login()
        c.send(b"a1 NOOP " + b"x" * 2000 + b"\r\n")
        self.assertIn(b"* BYE Line too long", c.wait_closed())
        c = self.raw_login()
        c.send(b"a1 FROB\r\na2 FROB\r\n")
        got = c.wait_closed()
        self.assertIn(b"a2 BAD", got)
        self.assertIn(b"* BYE Too many invalid commands.", got)
        c = self.raw_login()
        c.send(b"a1 LOGIN {99999999}\r\n")
        self.assertIn(b"* BYE Literal too large", c.wait_closed())
        c = self.raw_login()
        self.server.stop()
        self.assertIn(b"* BYE Server shutting down.", c.wait_closed())
        self.server.start()
        self.port = self.server.port


if __name__ == "__main__":
    unittest.main()
