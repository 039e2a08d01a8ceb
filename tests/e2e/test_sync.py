"""Two sessions on one mailbox, IDLE (RFC 2177), and changes made to
mymailbox.mail by another process (RFC 3501 5.2, 7.4.1)."""

import threading
import time
import unittest

from server import (SEED, SLOW, Mail, ServerTestCase, fetches, imaplib_fetches,
                    untagged_numbers)


class TestTwoSessions(ServerTestCase):

    def idle(self, c):
        c.send("i IDLE\r\n")
        line = c.readline()
        self.assertTrue(line.startswith(b"+"), line)

    def done(self, c):
        c.send("DONE\r\n")
        return c.read_tagged("i")

    def wait_for(self, c, pattern, timeout):
        """Reads responses until one matches pattern (bytes regex);
        returns (response, seconds waited) or fails after timeout."""
        import re
        rx = re.compile(pattern)
        t0 = time.monotonic()
        seen = []
        while True:
            left = timeout - (time.monotonic() - t0)
            if left <= 0:
                self.fail(f"no {pattern!r} within {timeout:.3f} s; got {seen!r}")
            try:
                r = c.read_response(timeout=left)
            except OSError:
                self.fail(f"no {pattern!r} within {timeout:.3f} s; got {seen!r}")
            if not r:
                self.fail(f"connection closed while waiting for {pattern!r}; got {seen!r}")
            if rx.match(r):
                return r, time.monotonic() - t0
            seen.append(r)

    def test_expunge_pushed_to_idle_session_within_100ms(self):
        watcher = self.raw_login(mailbox="INBOX")
        self.idle(watcher)
        other = self.raw_login(mailbox="INBOX")
        other.command("STORE 2 +FLAGS.SILENT (\\Deleted)")
        # STORE by the other session shows up in IDLE as a FETCH (flags).
        self.wait_for(watcher, rb"\* 2 FETCH \(.*\\Deleted", 1.0 * SLOW)
        # The watcher is read in a thread so that the arrival time of the
        # EXPUNGE line is known even while this thread waits for "x OK".
        arrived = {}

        def watch():
            try:
                r, _ = self.wait_for(watcher, rb"\* 2 EXPUNGE\r\n", 2.0 * SLOW)
                arrived["t"] = time.monotonic()
            except BaseException as e:     # self.fail raises AssertionError
                arrived["error"] = e

        th = threading.Thread(target=watch, daemon=True)
        th.start()
        t_send = time.monotonic()
        other.send("x EXPUNGE\r\n")
        untagged, tagged = other.read_tagged("x")
        t_ok = time.monotonic()
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        th.join(3.0 * SLOW)
        self.assertNotIn("error", arrived, arrived.get("error"))
        self.assertIn("t", arrived, "the IDLE session never saw * 2 EXPUNGE")
        latency = arrived["t"] - t_send
        self.assertLess(latency, 0.1 * SLOW,
                        f"EXPUNGE reached IDLE {1000 * latency:.1f} ms after it was sent "
                        f"(the expunging session got OK after {1000 * (t_ok - t_send):.1f} ms)")
        resp, tagged = self.done(watcher)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = watcher.command("FETCH 1:* UID")
        self.assertEqual(len(fetches(resp)), len(SEED) - 1)

    def test_append_pushed_to_idle_session(self):
        watcher = self.raw_login(mailbox="INBOX")
        self.idle(watcher)
        m = self.imap("alice")
        m.append("INBOX", None, None, b"Subject: pushed\r\n\r\nhi\r\n")
        self.wait_for(watcher, rb"\* 5 EXISTS\r\n", 1.0 * SLOW)
        resp, tagged = self.done(watcher)
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_flag_change_and_append_seen_at_next_noop(self):
        a = self.raw_login(mailbox="INBOX")
        b = self.imap("alice")
        b.select("INBOX")
        b.store("1", "+FLAGS", "(\\Flagged)")
        b.append("INBOX", None, None, b"Subject: new one\r\n\r\nnew\r\n")
        resp, tagged = a.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(len(SEED) + 1, untagged_numbers(resp, "EXISTS"), resp)
        f = fetches(resp)
        self.assertIn(1, f, resp)
        self.assertIn(b"\\Flagged", f[1]["FLAGS"])
        resp, tagged = a.command("FETCH 5 BODY.PEEK[]")
        self.assertEqual(fetches(resp)[5]["BODY[]"], b"Subject: new one\r\n\r\nnew\r\n")

    def test_expunge_not_sent_during_fetch_store_search(self):
        a = self.raw_login(mailbox="INBOX")
        b = self.raw_login(mailbox="INBOX")
        b.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
        b.command("EXPUNGE")
        # (UID FETCH/STORE/SEARCH may carry EXPUNGE: RFC 3501 7.4.1.)
        for cmd in ("FETCH 1:* FLAGS", "STORE 1 +FLAGS.SILENT (\\Seen)", "SEARCH ALL"):
            resp, tagged = a.command(cmd)
            self.assertTrue(tagged.startswith(b"OK") or tagged.startswith(b"NO"), tagged)
            self.assertEqual(untagged_numbers(resp, "EXPUNGE"), [], cmd)
        resp, tagged = a.command("NOOP")
        self.assertEqual(untagged_numbers(resp, "EXPUNGE"), [1])
        resp, tagged = a.command("FETCH 1:* UID")
        self.assertEqual(len(fetches(resp)), len(SEED) - 1)

    def test_new_keyword_announced_in_flags_before_it_is_used(self):
        """RFC 3501 7.2.6: a client hears of a keyword in FLAGS (and
        PERMANENTFLAGS) before it sees it on a message, whether its own
        STORE or another session's made it."""
        a = self.raw_login(mailbox="INBOX")
        b = self.raw_login(mailbox="INBOX")
        resp, tagged = a.command("STORE 1 +FLAGS ($hello)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertRegex(resp[0], rb"^\* FLAGS \(.*\$hello\)\r\n$")
        self.assertRegex(resp[1], rb"^\* OK \[PERMANENTFLAGS \(.*\$hello .*\\\*\)\]")
        self.assertRegex(resp[2], rb"^\* 1 FETCH \(FLAGS \(.*\$hello")
        # Told once: a second STORE of the same keyword repeats no FLAGS.
        resp, tagged = a.command("STORE 2 +FLAGS ($hello)")
        self.assertEqual([r for r in resp if r.startswith(b"* FLAGS")], [], resp)
        # b hears of it at its next command, FLAGS first.
        resp, tagged = b.command("NOOP")
        kinds = [r.split(b" ")[1] if not r.startswith(b"* OK") else b"OK" for r in resp]
        self.assertIn(b"FLAGS", kinds, resp)
        self.assertLess(kinds.index(b"FLAGS"), kinds.index(b"1"), resp)
        # and in a FETCH that meets a keyword made since its last command
        a.command("STORE 3 +FLAGS ($world)")
        resp, tagged = b.command("FETCH 3 FLAGS")
        self.assertRegex(resp[0], rb"^\* FLAGS \(.*\$world\)")
        self.assertRegex(resp[-1], rb"^\* 3 FETCH \(FLAGS \(.*\$world")

    def test_new_message_is_told_by_exists_alone(self):
        """A message another session appended and then flagged comes as
        "* n EXISTS" only (as Dovecot does): no unsolicited FETCH of a
        message the client has not seen yet; its flags come when asked."""
        a = self.raw_login(mailbox="INBOX")
        a.command("ENABLE CONDSTORE")
        b = self.imap("alice")
        b.append("INBOX", None, None, b"Subject: new\r\n\r\nnew\r\n")
        b.select("INBOX")
        b.store(str(len(SEED) + 1), "+FLAGS", "(\\Flagged)")
        resp, tagged = a.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(untagged_numbers(resp, "EXISTS"), [len(SEED) + 1])
        self.assertEqual(fetches(resp), {}, resp)
        resp, tagged = a.command(f"FETCH {len(SEED) + 1} FLAGS")
        self.assertIn(b"\\Flagged", fetches(resp)[len(SEED) + 1]["FLAGS"])

    def test_store_on_a_message_expunged_elsewhere_is_ok(self):
        """STORE that meets a message another session expunged (and this
        one was not told of yet) stores the rest and answers OK
        [EXPUNGEISSUED] (RFC 2180 4.2.1, as Dovecot answers); the
        EXPUNGE comes with the next command."""
        a = self.raw_login(mailbox="INBOX")
        b = self.raw_login(mailbox="INBOX")
        b.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
        b.command("EXPUNGE")
        for cmd in ("STORE 1:2 +FLAGS (\\Flagged)", "STORE 1 +FLAGS.SILENT (\\Seen)"):
            resp, tagged = a.command(cmd)
            self.assertTrue(tagged.startswith(b"OK [EXPUNGEISSUED]"), (cmd, tagged))
            self.assertEqual(untagged_numbers(resp, "EXPUNGE"), [], resp)
        resp, tagged = a.command("NOOP")
        self.assertEqual(untagged_numbers(resp, "EXPUNGE"), [1])
        resp, tagged = a.command("FETCH 1 FLAGS")
        self.assertIn(b"\\Flagged", fetches(resp)[1]["FLAGS"])

    def test_fetch_of_a_message_expunged_elsewhere(self):
        """FETCH by number that meets a message another session
        expunged (this one not told yet) answers the others and OK
        [EXPUNGEISSUED], as Dovecot does (not RFC 2180 4.1.2's NO, which
        makes clients drop the data they got); by UID the gone one is
        simply not there (OK); the EXPUNGE comes with a later command."""
        a = self.raw_login(mailbox="INBOX")
        b = self.raw_login(mailbox="INBOX")
        b.command("STORE 2 +FLAGS.SILENT (\\Deleted)")
        b.command("EXPUNGE")
        resp, tagged = a.command("FETCH 1:3 (UID FLAGS)")
        self.assertEqual(tagged, b"OK [EXPUNGEISSUED] Some messages were already expunged.")
        self.assertEqual(sorted(fetches(resp)), [1, 3], resp)
        self.assertEqual(untagged_numbers(resp, "EXPUNGE"), [], resp)
        # UID FETCH may carry the EXPUNGE (RFC 3501 7.4.1), else NOOP does
        resp, tagged = a.command("UID FETCH 1:* FLAGS")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp2, tagged = a.command("NOOP")
        self.assertEqual(untagged_numbers(resp + resp2, "EXPUNGE"), [2])

    def test_search_and_sort_over_a_message_expunged_elsewhere(self):
        """SEARCH and SORT that meet a message another session expunged
        (this one not told yet) leave it out and say so, OK
        [EXPUNGEISSUED] (RFC 2180 4.3): a client that still counts the
        message knows why it is missing. Without such a message the
        answer is the plain OK."""
        a = self.raw_login(mailbox="INBOX")
        b = self.raw_login(mailbox="INBOX")
        resp, tagged = a.command("SEARCH ALL")
        self.assertEqual(tagged, b"OK Search completed.")
        b.command("STORE 2 +FLAGS.SILENT (\\Deleted)")
        b.command("EXPUNGE")
        for cmd in ("SEARCH ALL", "SORT (ARRIVAL) UTF-8 ALL"):
            resp, tagged = a.command(cmd)
            self.assertTrue(tagged.startswith(b"OK [EXPUNGEISSUED]"), (cmd, tagged))
            self.assertEqual(untagged_numbers(resp, "EXPUNGE"), [], resp)
            line = [r for r in resp if r.startswith((b"* SEARCH", b"* SORT"))][0]
            self.assertNotIn(b" 2 ", line + b" ", (cmd, line))
        resp, tagged = a.command("NOOP")
        self.assertEqual(untagged_numbers(resp, "EXPUNGE"), [2])
        resp, tagged = a.command("SEARCH ALL")
        self.assertEqual(tagged, b"OK Search completed.")

    def test_logout_sends_nothing_after_bye(self):
        """RFC 3501 6.1.3: LOGOUT answers "* BYE" then its tagged OK;
        changes another session made are not told after BYE."""
        a = self.raw_login(mailbox="INBOX")
        b = self.raw_login(mailbox="INBOX")
        b.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
        b.command("STORE 2 +FLAGS.SILENT (\\Seen)")
        b.command("EXPUNGE")
        resp, tagged = a.command("LOGOUT")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(len(resp), 1, resp)
        self.assertTrue(resp[0].startswith(b"* BYE"), resp)

    def test_expunge_by_one_session_delete_sync_on_other(self):
        """The lab's scenario: two terminals, a delete on one is seen on
        the other."""
        a = self.imap("alice")
        b = self.imap("alice")
        a.select("INBOX")
        b.select("INBOX")
        a.store("3", "+FLAGS", "\\Deleted")
        a.expunge()
        typ, data = b.noop()
        self.assertEqual(b.response("EXPUNGE")[1], [b"3"])
        typ, data = b.search(None, "ALL")
        self.assertEqual(data, [b"1 2 3"])

    def test_idle_done_and_timeout_free(self):
        c = self.raw_login(mailbox="INBOX")
        self.idle(c)
        time.sleep(0.2)
        resp, tagged = self.done(c)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)


class TestExternalChanges(ServerTestCase):

    NEW = Mail([("From", "eve@localhost"), ("To", "alice@localhost"),
                ("Subject", "delivered by smtpmail"), ("Received", "2022-03-14 : 10 : 00")],
               ["fresh mail", ".dotted"])

    def append_file(self):
        with open(self.server.mailbox_path("alice"), "a") as f:
            f.write(self.NEW.lab)

    def test_file_append_shows_up_at_next_noop(self):
        c = self.raw_login(mailbox="INBOX")
        self.append_file()
        resp, tagged = c.command("NOOP")
        self.assertIn(len(SEED) + 1, untagged_numbers(resp, "EXISTS"), resp)
        resp, tagged = c.command(f"FETCH {len(SEED) + 1} (BODY.PEEK[] FLAGS)")
        d = fetches(resp)[len(SEED) + 1]
        self.assertEqual(d["BODY[]"], self.NEW.served)
        self.assertNotIn(b"\\Seen", d["FLAGS"])

    def test_file_append_pushed_to_idle(self):
        c = self.raw_login(mailbox="INBOX")
        c.send("i IDLE\r\n")
        self.assertTrue(c.readline().startswith(b"+"))
        self.append_file()
        deadline = time.monotonic() + 3.0 * SLOW
        got = []
        while time.monotonic() < deadline:
            try:
                r = c.read_response(timeout=max(0.05, deadline - time.monotonic()))
            except OSError:
                break
            got.append(r)
            if r == b"* %d EXISTS\r\n" % (len(SEED) + 1):
                break
        self.assertIn(b"* %d EXISTS\r\n" % (len(SEED) + 1), got,
                      "a file append was not pushed to IDLE within 3 s")
        c.send("DONE\r\n")
        resp, tagged = c.read_tagged("i")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_file_append_keeps_existing_uids_and_flags(self):
        c = self.raw_login(mailbox="INBOX")
        c.command("STORE 2 +FLAGS.SILENT (\\Seen)")
        resp, tagged = c.command("FETCH 1:* UID")
        before = {s: d["UID"] for s, d in fetches(resp).items()}
        self.append_file()
        c.command("NOOP")
        resp, tagged = c.command("FETCH 1:* (UID FLAGS)")
        after = fetches(resp)
        for s, uid in before.items():
            self.assertEqual(after[s]["UID"], uid)
        self.assertIn(b"\\Seen", after[2]["FLAGS"])
        self.assertGreater(int(after[len(SEED) + 1]["UID"]), int(before[len(SEED)]))

    def test_mailbox_file_created_after_login(self):
        """bob has no folder at first; the lab's SMTP server creates it."""
        c = self.raw_login("bob", mailbox="INBOX")
        self.server.write_mailbox("bob", self.NEW.lab)
        resp, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(1, untagged_numbers(resp, "EXISTS"), resp)


if __name__ == "__main__":
    unittest.main()
