"""SELECT, FETCH, SEARCH, STORE, EXPUNGE, APPEND, UID commands, CLOSE,
UNSELECT and EXAMINE on a flat mailbox seeded in the lab's format
(RFC 3501 6.3.1, 6.3.2, 6.3.11, 6.4)."""

import re
import unittest

from server import (SEED, IMAP_DATE_RE, Mail, ServerTestCase, fetches, imaplib_fetches,
                    search_result, untagged_numbers)


def flags_of(value):
    return sorted(f.decode() for f in value)


class TestSelectAndFetch(ServerTestCase):

    def test_select_reports_exists_flags_uidvalidity_uidnext(self):
        c = self.raw_login()
        resp, tagged = c.command("SELECT INBOX")
        self.assertRegex(tagged, rb"^OK \[READ-WRITE\]")
        self.assertEqual(untagged_numbers(resp, "EXISTS"), [len(SEED)])
        self.assertEqual(len(untagged_numbers(resp, "RECENT")), 1, resp)
        text = b"".join(resp)
        self.assertRegex(text, rb"\* FLAGS \([^)]*\\Seen[^)]*\)")
        self.assertRegex(text, rb"\* OK \[UIDVALIDITY \d+\]")
        self.assertRegex(text, rb"\* OK \[UIDNEXT \d+\]")
        self.assertRegex(text, rb"\* OK \[PERMANENTFLAGS \(")

    def test_select_with_imaplib(self):
        m = self.imap()
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(int(data[0]), len(SEED))

    def test_select_inbox_is_case_insensitive(self):
        m = self.imap()
        self.assertEqual(m.select("inbox"), ("OK", [str(len(SEED)).encode()]))

    def test_select_missing_mailbox_is_no(self):
        c = self.raw_login()
        resp, tagged = c.command("SELECT Nowhere")
        self.assertRegex(tagged, rb"^NO")
        resp, tagged = c.command('SELECT "../bob/INBOX"')
        self.assertRegex(tagged, rb"^NO")

    def test_fetch_body_is_exact_bytes(self):
        m = self.imap()
        m.select("INBOX")
        typ, data = m.fetch("1:*", "(BODY.PEEK[] RFC822.SIZE)")
        self.assertEqual(typ, "OK")
        got = imaplib_fetches(data)
        self.assertEqual(sorted(got), list(range(1, len(SEED) + 1)))
        for i, mail in enumerate(SEED, 1):
            self.assertEqual(got[i]["BODY[]"], mail.served, f"message {i}")
            self.assertEqual(int(got[i]["RFC822.SIZE"]), len(mail.served), f"message {i}")

    def test_fetch_dot_stuffed_lines_are_unstuffed(self):
        m = self.imap()
        m.select("INBOX")
        typ, data = m.fetch("2", "(BODY.PEEK[TEXT])")
        body = imaplib_fetches(data)[2]["BODY[TEXT]"]
        self.assertIn(b"\r\n.hidden line starts with a dot\r\n", body)
        self.assertIn(b"\r\n.\r\n", body)
        self.assertIn(b"\r\n..two dots\r\n", body)
        self.assertNotIn(b"\n", body.replace(b"\r\n", b""))

    def test_fetch_header_has_blank_line_inserted(self):
        m = self.imap()
        m.select("INBOX")
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER] BODY.PEEK[TEXT])")
        d = imaplib_fetches(data)[1]
        self.assertEqual(d["BODY[HEADER]"],
                         b"From: alice@localhost\r\nTo: bob@localhost\r\nSubject: hello\r\n"
                         b"Received: 2022-03-10 : 14 : 30\r\n\r\n")
        self.assertEqual(d["BODY[TEXT]"], b"body line\r\n")

    def test_fetch_header_fields(self):
        m = self.imap()
        m.select("INBOX")
        typ, data = m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")
        d = imaplib_fetches(data)[2]
        self.assertEqual(d["BODY[HEADER.FIELDS (SUBJECT FROM)]"],
                         b"From: carol@localhost\r\nSubject: Meeting tomorrow\r\n\r\n")

    def test_fetch_partial(self):
        m = self.imap()
        m.select("INBOX")
        typ, data = m.fetch("1", "(BODY.PEEK[]<0.10>)")
        d = imaplib_fetches(data)[1]
        self.assertEqual(d["BODY[]<0>"], SEED[0].served[:10])

    def test_fetch_envelope(self):
        c = self.raw_login(mailbox="INBOX")
        resp, tagged = c.command("FETCH 1:2 ENVELOPE")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        f = fetches(resp)
        env1 = f[1]["ENVELOPE"]
        self.assertEqual(len(env1), 10, env1)
        self.assertEqual(env1[1], b"hello")
        self.assertEqual(env1[2], [[None, None, b"alice", b"localhost"]])
        self.assertEqual(env1[3], env1[2])     # sender defaults to from
        self.assertEqual(env1[4], env1[2])     # reply-to defaults to from
        self.assertEqual(env1[5], [[None, None, b"bob", b"localhost"]])
        self.assertEqual(f[2]["ENVELOPE"][1], b"Meeting tomorrow")

    def test_fetch_flags_internaldate_uid(self):
        c = self.raw_login(mailbox="INBOX")
        resp, tagged = c.command("FETCH 1:* (UID FLAGS INTERNALDATE)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        f = fetches(resp)
        uids = [int(f[i]["UID"]) for i in range(1, len(SEED) + 1)]
        self.assertEqual(uids, sorted(set(uids)), "UIDs must ascend")
        for i in f:
            self.assertNotIn("\\Seen", flags_of(f[i]["FLAGS"]))
            self.assertRegex(f[i]["INTERNALDATE"], IMAP_DATE_RE)

    def test_fetch_macros_and_bodystructure(self):
        c = self.raw_login(mailbox="INBOX")
        resp, tagged = c.command("FETCH 1 FAST")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        d = fetches(resp)[1]
        self.assertEqual(set(d), {"FLAGS", "INTERNALDATE", "RFC822.SIZE"})
        resp, tagged = c.command("FETCH 1 (BODYSTRUCTURE)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        bs = fetches(resp)[1]["BODYSTRUCTURE"]
        self.assertEqual(bs[0].upper(), b"TEXT")
        self.assertEqual(bs[1].upper(), b"PLAIN")

    def test_fetch_body_sets_seen_peek_does_not(self):
        c = self.raw_login(mailbox="INBOX")
        resp, tagged = c.command("FETCH 1 BODY.PEEK[]")
        self.assertNotIn("\\Seen", flags_of(fetches(resp)[1].get("FLAGS", [])))
        resp, tagged = c.command("FETCH 1 FLAGS")
        self.assertNotIn("\\Seen", flags_of(fetches(resp)[1]["FLAGS"]))
        resp, tagged = c.command("FETCH 1 BODY[]")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("FETCH 1 FLAGS")
        self.assertIn("\\Seen", flags_of(fetches(resp)[1]["FLAGS"]))

    def test_fetch_out_of_range_is_bad_or_no(self):
        c = self.raw_login(mailbox="INBOX")
        resp, tagged = c.command("FETCH 99 FLAGS")
        self.assertRegex(tagged, rb"^(BAD|NO)")
        resp, tagged = c.command("FETCH 0 FLAGS")
        self.assertRegex(tagged, rb"^BAD")
        resp, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"))


class TestSearch(ServerTestCase):

    def search(self, m, *crit):
        typ, data = m.search(None, *crit)
        self.assertEqual(typ, "OK", data)
        return [int(x) for x in data[0].split()]

    def test_search_all_from_subject(self):
        m = self.imap()
        m.select("INBOX")
        self.assertEqual(self.search(m, "ALL"), [1, 2, 3, 4])
        self.assertEqual(self.search(m, "FROM", "carol"), [2])
        self.assertEqual(self.search(m, "FROM", "localhost"), [1, 2, 3])
        self.assertEqual(self.search(m, "SUBJECT", "hello"), [1, 3])
        self.assertEqual(self.search(m, "SUBJECT", '"Quarterly REPORT"'), [4])
        self.assertEqual(self.search(m, "TO", "bob"), [1])
        self.assertEqual(self.search(m, "BODY", "paragraph"), [3])
        self.assertEqual(self.search(m, "TEXT", "numbers"), [4])
        self.assertEqual(self.search(m, "SUBJECT", "nothing-like-this"), [])

    def test_search_not_or_and_sequence_sets(self):
        m = self.imap()
        m.select("INBOX")
        self.assertEqual(self.search(m, "NOT", "FROM", "alice"), [2, 3, 4])
        self.assertEqual(self.search(m, "OR", "FROM", "carol", "SUBJECT", "quarterly"), [2, 4])
        self.assertEqual(self.search(m, "2:3"), [2, 3])
        self.assertEqual(self.search(m, "2:*", "SUBJECT", "hello"), [3])
        self.assertEqual(self.search(m, "(OR FROM bob FROM dave)", "NOT", "4"), [3])

    def test_search_seen_unseen(self):
        m = self.imap()
        m.select("INBOX")
        self.assertEqual(self.search(m, "UNSEEN"), [1, 2, 3, 4])
        self.assertEqual(self.search(m, "SEEN"), [])
        m.store("1,3", "+FLAGS", "\\Seen")
        self.assertEqual(self.search(m, "UNSEEN"), [2, 4])
        self.assertEqual(self.search(m, "SEEN"), [1, 3])

    def test_uid_search_uid_range(self):
        c = self.raw_login(mailbox="INBOX")
        resp, tagged = c.command("FETCH 1:* UID")
        uids = [int(d["UID"]) for s, d in sorted(fetches(resp).items())]
        resp, tagged = c.command(f"UID SEARCH UID {uids[1]}:{uids[2]}")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(search_result(resp), uids[1:3])
        resp, tagged = c.command(f"SEARCH UID {uids[3]}")
        self.assertEqual(search_result(resp), [4])
        resp, tagged = c.command("UID SEARCH FROM carol")
        self.assertEqual(search_result(resp), [uids[1]])

    def test_search_bad_criteria_is_bad(self):
        c = self.raw_login(mailbox="INBOX")
        resp, tagged = c.command("SEARCH FROBNICATE 3")
        self.assertRegex(tagged, rb"^BAD")
        resp, tagged = c.command("SEARCH OR FROM x")
        self.assertRegex(tagged, rb"^BAD")
        resp, tagged = c.command("SEARCH ALL")
        self.assertEqual(search_result(resp), [1, 2, 3, 4])


class TestStoreExpunge(ServerTestCase):

    def test_store_seen_then_fetch_flags(self):
        m = self.imap()
        m.select("INBOX")
        typ, data = m.store("2", "+FLAGS", "(\\Seen \\Flagged)")
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0], rb"^2 \(FLAGS \(.*\\Seen")
        typ, data = m.fetch("2", "(FLAGS)")
        self.assertIn(b"\\Seen", data[0])
        self.assertIn(b"\\Flagged", data[0])
        typ, data = m.store("2", "-FLAGS.SILENT", "(\\Flagged)")
        self.assertEqual(typ, "OK")
        self.assertEqual(data, [None])
        typ, data = m.fetch("2", "(FLAGS)")
        self.assertNotIn(b"\\Flagged", data[0])
        typ, data = m.store("2", "FLAGS", "(\\Answered)")
        typ, data = m.fetch("2", "(FLAGS)")
        self.assertIn(b"\\Answered", data[0])
        self.assertNotIn(b"\\Seen", data[0])

    def test_store_keyword(self):
        c = self.raw_login(mailbox="INBOX")
        resp, tagged = c.command("STORE 1 +FLAGS (Work $Important)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("FETCH 1 FLAGS")
        self.assertEqual(set(flags_of(fetches(resp)[1]["FLAGS"])) - {"\\Recent"},
                         {"Work", "$Important"})

    def test_store_bad_flag_is_bad(self):
        c = self.raw_login(mailbox="INBOX")
        resp, tagged = c.command("STORE 1 +FLAGS (\\Bogus)")
        self.assertRegex(tagged, rb"^(BAD|NO)")
        resp, tagged = c.command("STORE 1 FROB (\\Seen)")
        self.assertRegex(tagged, rb"^BAD")

    def test_store_deleted_and_expunge(self):
        m = self.imap()
        m.select("INBOX")
        m.store("2", "+FLAGS", "\\Deleted")
        typ, data = m.expunge()
        self.assertEqual(typ, "OK")
        self.assertEqual(data, [b"2"])
        typ, data = m.search(None, "ALL")
        self.assertEqual(data, [b"1 2 3"])
        typ, data = m.fetch("2", "(BODY.PEEK[])")
        self.assertEqual(imaplib_fetches(data)[2]["BODY[]"], SEED[2].served)
        disk = self.server.read_mailbox("alice")
        self.assertNotIn(b"Meeting tomorrow", disk)
        self.assertIn(b"Quarterly report", disk)
        # A new session sees three messages.
        m2 = self.imap()
        self.assertEqual(m2.select("INBOX"), ("OK", [b"3"]))

    def test_expunge_sequence_numbers_shift(self):
        c = self.raw_login(mailbox="INBOX")
        resp, tagged = c.command("FETCH 1:* UID")
        uids = [int(d["UID"]) for s, d in sorted(fetches(resp).items())]
        c.command("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
        resp, tagged = c.command("EXPUNGE")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # Each "* n EXPUNGE" renumbers the ones after it ("3 1" and "1 2"
        # are both right); replaying them must leave messages 2 and 4.
        view = list(uids)
        for n in untagged_numbers(resp, "EXPUNGE"):
            self.assertTrue(1 <= n <= len(view), (n, view))
            del view[n - 1]
        self.assertEqual(view, [uids[1], uids[3]])
        resp, tagged = c.command("FETCH 1:* UID")
        self.assertEqual([int(d["UID"]) for s, d in sorted(fetches(resp).items())], view)

    def test_flags_and_uids_persist_across_restart(self):
        c = self.raw_login(mailbox="INBOX")
        c.command("STORE 1 +FLAGS (\\Seen)")
        c.command("STORE 3 +FLAGS (\\Flagged \\Answered)")
        c.command("STORE 4 +FLAGS (\\Deleted)")
        c.command("EXPUNGE")
        resp, tagged = c.command("FETCH 1:* (UID FLAGS)")
        before = {s: (int(d["UID"]), sorted(set(flags_of(d["FLAGS"])) - {"\\Recent"}))
                  for s, d in fetches(resp).items()}
        resp, tagged = c.command("STATUS INBOX (UIDVALIDITY UIDNEXT)")
        st_before = [r for r in resp if r.startswith(b"* STATUS")]
        c.close()
        self.server.restart()
        self.port = self.server.port
        c = self.raw_login()
        resp, tagged = c.command("SELECT INBOX")
        self.assertEqual(untagged_numbers(resp, "EXISTS"), [3])
        resp, tagged = c.command("FETCH 1:* (UID FLAGS)")
        after = {s: (int(d["UID"]), sorted(set(flags_of(d["FLAGS"])) - {"\\Recent"}))
                 for s, d in fetches(resp).items()}
        self.assertEqual(after, before)
        resp, tagged = c.command("STATUS INBOX (UIDVALIDITY UIDNEXT)")
        self.assertEqual([r for r in resp if r.startswith(b"* STATUS")], st_before)

    def test_mailbox_file_stays_lab_format(self):
        m = self.imap()
        m.select("INBOX")
        m.store("1", "+FLAGS", "\\Seen")
        m.store("4", "+FLAGS", "\\Deleted")
        m.expunge()
        disk = self.server.read_mailbox("alice").decode()
        # The three remaining messages, each ended by a lone ".", dots
        # still stuffed; flags live beside the file, not in it.
        self.assertTrue(disk.endswith("\n.\n"), disk[-40:])
        parts = disk[:-len("\n.\n")].split("\n.\n")
        self.assertEqual(len(parts), 3, disk)
        for part, mail in zip(parts, SEED[:3]):
            for k, v in mail.headers:
                self.assertIn(f"{k}: {v}\n", part + "\n")
            for line in mail.body_lines:
                if line:
                    self.assertIn(("." + line if line.startswith(".") else line) + "\n",
                                  part + "\n")
        self.assertNotIn("Quarterly report", disk)
        self.assertNotRegex(disk, r"(?m)^(Status|X-Status|X-UID|X-Keywords):")

    def test_close_expunges_unselect_does_not(self):
        c = self.raw_login(mailbox="INBOX")
        c.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
        resp, tagged = c.command("UNSELECT")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(untagged_numbers(resp, "EXPUNGE"), [])
        resp, tagged = c.command("SELECT INBOX")
        self.assertEqual(untagged_numbers(resp, "EXISTS"), [4])
        resp, tagged = c.command("FETCH 1 FLAGS")
        self.assertIn("\\Deleted", flags_of(fetches(resp)[1]["FLAGS"]))
        resp, tagged = c.command("CLOSE")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(untagged_numbers(resp, "EXPUNGE"), [])  # CLOSE sends none
        resp, tagged = c.command("FETCH 1 FLAGS")
        self.assertRegex(tagged, rb"^(BAD|NO)")                  # nothing selected
        resp, tagged = c.command("SELECT INBOX")
        self.assertEqual(untagged_numbers(resp, "EXISTS"), [3])

    def test_examine_is_read_only(self):
        c = self.raw_login()
        resp, tagged = c.command("EXAMINE INBOX")
        self.assertRegex(tagged, rb"^OK \[READ-ONLY\]")
        resp, tagged = c.command("STORE 1 +FLAGS (\\Seen)")
        self.assertRegex(tagged, rb"^NO")
        resp, tagged = c.command("FETCH 1 BODY[]")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("FETCH 1 FLAGS")
        self.assertNotIn("\\Seen", flags_of(fetches(resp)[1]["FLAGS"]))
        resp, tagged = c.command("EXPUNGE")
        self.assertRegex(tagged, rb"^NO")
        resp, tagged = c.command("UID STORE 1:* +FLAGS (\\Deleted)")
        self.assertRegex(tagged, rb"^NO")


class TestAppend(ServerTestCase):

    MSG = (b"From: bob@localhost\r\nTo: alice@localhost\r\nSubject: appended\r\n"
           b"Date: Thu, 10 Mar 2022 14:30:00 +0530\r\n\r\n"
           b"line one\r\n.starts with dot\r\n.\r\n..\r\nlast line\r\n")

    def test_append_with_imaplib_then_fetch_back(self):
        m = self.imap()
        typ, data = m.append("INBOX", "(\\Flagged)", '"10-Mar-2022 14:30:00 +0530"', self.MSG)
        self.assertEqual(typ, "OK", data)
        typ, data = m.select("INBOX")
        self.assertEqual(data, [b"5"])
        typ, data = m.fetch("5", "(BODY.PEEK[] FLAGS INTERNALDATE RFC822.SIZE)")
        d = imaplib_fetches(data)[5]
        self.assertEqual(d["BODY[]"], self.MSG)
        self.assertEqual(int(d["RFC822.SIZE"]), len(self.MSG))
        self.assertIn("\\Flagged", flags_of(d["FLAGS"]))
        self.assertEqual(d["INTERNALDATE"], b"10-Mar-2022 14:30:00 +0530")
        # On disk: lab format, dot-stuffed, ended by a lone ".".
        disk = self.server.read_mailbox("alice")
        self.assertIn(b"\n..starts with dot", disk)
        self.assertTrue(disk.endswith(b"\n.\n"), disk[-40:])

    def test_append_non_sync_literal_raw(self):
        c = self.raw_login()
        c.send(b"a APPEND INBOX (\\Seen) {%d+}\r\n" % len(self.MSG) + self.MSG + b"\r\n")
        resp, tagged = c.read_tagged("a")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("SELECT INBOX")
        self.assertEqual(untagged_numbers(resp, "EXISTS"), [5])
        resp, tagged = c.command("FETCH 5 (BODY.PEEK[] FLAGS)")
        d = fetches(resp)[5]
        self.assertEqual(d["BODY[]"], self.MSG)
        self.assertIn("\\Seen", flags_of(d["FLAGS"]))

    def test_append_sync_literal_waits_for_continuation(self):
        c = self.raw_login()
        c.send(b"a APPEND INBOX {%d}\r\n" % len(self.MSG))
        self.assertTrue(c.readline().startswith(b"+"))
        c.send(self.MSG + b"\r\n")
        resp, tagged = c.read_tagged("a")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_append_lf_only_message_is_served_with_crlf(self):
        m = self.imap()
        c = self.raw_login()
        msg = b"Subject: lf\nFrom: x@y\n\nbody\n"
        c.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        resp, tagged = c.read_tagged("a")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        m.select("INBOX")
        typ, data = m.fetch("5", "(BODY.PEEK[])")
        self.assertEqual(imaplib_fetches(data)[5]["BODY[]"], msg.replace(b"\n", b"\r\n"))

    def test_append_to_missing_mailbox_is_no_trycreate(self):
        c = self.raw_login()
        c.send(b"a APPEND Nowhere {%d+}\r\n" % len(self.MSG) + self.MSG + b"\r\n")
        resp, tagged = c.read_tagged("a")
        self.assertRegex(tagged, rb"^NO \[TRYCREATE\]")

    def test_append_seen_by_selected_session_as_exists(self):
        c = self.raw_login(mailbox="INBOX")
        c.send(b"a APPEND INBOX {%d+}\r\n" % len(self.MSG) + self.MSG + b"\r\n")
        resp, tagged = c.read_tagged("a")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp2, tagged = c.command("NOOP")
        self.assertIn(5, untagged_numbers(resp + resp2, "EXISTS"))


class TestUidCommands(ServerTestCase):

    def uids(self, c):
        resp, tagged = c.command("FETCH 1:* UID")
        return [int(d["UID"]) for s, d in sorted(fetches(resp).items())]

    def test_uid_fetch_store_copy_search(self):
        c = self.raw_login(mailbox="INBOX")
        uids = self.uids(c)
        resp, tagged = c.command(f"UID FETCH {uids[2]} (FLAGS)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        f = fetches(resp)
        self.assertEqual(list(f), [3])
        self.assertEqual(int(f[3]["UID"]), uids[2])       # UID is always returned
        resp, tagged = c.command(f"UID STORE {uids[2]} +FLAGS (\\Flagged)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn("\\Flagged", flags_of(fetches(resp)[3]["FLAGS"]))
        resp, tagged = c.command("UID SEARCH FLAGGED")
        self.assertEqual(search_result(resp), [uids[2]])
        c.command("CREATE Archive")
        resp, tagged = c.command(f"UID COPY {uids[2]}:{uids[3]} Archive")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("STATUS Archive (MESSAGES)")
        self.assertRegex(b"".join(resp), rb"MESSAGES 2")
        # UID sets with no existing message are not an error.
        resp, tagged = c.command("UID FETCH 999999 FLAGS")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(fetches(resp), {})
        resp, tagged = c.command(f"UID FETCH {uids[3]}:* UID")
        self.assertEqual(list(fetches(resp)), [4])

    def test_uids_are_not_reused_after_expunge(self):
        c = self.raw_login(mailbox="INBOX")
        uids = self.uids(c)
        c.command("STORE 4 +FLAGS.SILENT (\\Deleted)")
        c.command("EXPUNGE")
        msg = b"Subject: new\r\n\r\nx\r\n"
        c.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        c.read_tagged("a")
        c.command("NOOP")
        new = self.uids(c)
        self.assertEqual(new[:3], uids[:3])
        self.assertGreater(new[3], uids[3])


if __name__ == "__main__":
    unittest.main()
