"""The persistent listing cache (core/hub/mcache.c), end to end, on both
backends:

1. after a restart, a listing (ENVELOPE, BODYSTRUCTURE, header fields) is
   served from the cache: the message files are changed behind the
   server's back (same size, same mtime, so no backend notices) and the
   listing still gives the answer of before, while BODY[] shows the
   change (Maildir) or is refused as changed on disk (flat, which checks
   a hash of each message it reads);
2. a deleted cache file is rebuilt by the next listing, and then serves;
3. a cache file full of garbage gives the correct answers (and is
   rebuilt)."""

import os
import random
import unittest

from server import ServerTestCase
import test_maildir

LISTING = ("FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE "
           "BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID References "
           "In-Reply-To Content-Type)] BODY.PEEK[HEADER])")


def multipart(i):
    b = f"b{i}"
    return (f"From: Carol <carol@example.org>\r\nTo: alice@localhost\r\n"
            f"Subject: attachment {i}\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{i}@example.org>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n"
            f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello {i}\r\n"
            f"--{b}\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\n"
            f"Content-Disposition: attachment; filename=\"r.pdf\"\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--{b}--\r\n").encode()


class ListingCacheFlat(ServerTestCase):
    """On the flat backend."""

    # reading a message changed behind the server's back is an error
    ALLOW_LOG_ERRORS = True

    def message_files(self):
        return [self.server.mailbox_path("alice")]

    def cache_files(self, mailbox="INBOX"):
        base = os.path.join(self.server.root, "alice", ".imap", mailbox + ".cache")
        return [base, base + ".idx"]

    def fill(self):
        c = self.raw_login("alice")
        for i in range(3):
            data = multipart(i)
            resp, tagged = c.command(b"APPEND INBOX {%d+}\r\n" % len(data) + data)
            self.assertTrue(tagged.startswith(b"OK"), tagged)
        c.close()

    def listing(self, mailbox="INBOX"):
        c = self.raw_login("alice", mailbox)
        resp, tagged = c.command(LISTING)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c.close()
        self.assertGreaterEqual(len(resp), 4)
        # \Recent belongs to the first session only (RFC 3501 2.3.2),
        # also across a restart: not part of what the cache serves
        return b"".join(resp).replace(b" \\Recent", b"").replace(b"\\Recent", b"")

    def assert_changed_on_disk(self, changed):
        """BODY[] (never cached) sees the files changed, or not."""
        c = self.raw_login("alice", "INBOX")
        body, tagged = c.command("FETCH 1:* (BODY.PEEK[])")
        c.close()
        if not changed:
            self.assertTrue(tagged.startswith(b"OK"), tagged)
            self.assertNotIn(b"Subject:_", b"".join(body))
        else:
            self.assert_changed_answer(tagged, b"".join(body))

    def assert_changed_answer(self, tagged, body):
        self.assertTrue(tagged.startswith(b"NO"), tagged)
        self.server.wait_log("changed on disk")
        errors = self.server.error_lines()
        self.assertTrue(errors)
        for line in errors:
            self.assertIn("changed on disk", line)

    def change_behind_the_server(self):
        """Every "Subject: " becomes "Subject:_" in the message files,
        size and mtime kept: no backend sees a change."""
        for path in self.message_files():
            st = os.stat(path)
            with open(path, "r+b") as f:
                data = f.read()
                self.assertIn(b"Subject: ", data)
                f.seek(0)
                f.write(data.replace(b"Subject: ", b"Subject:_"))
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    def restart(self):
        self.server.restart()
        self.port = self.server.port

    def test_listing_after_restart_is_served_from_the_cache(self):
        self.fill()
        before = self.listing()
        self.assert_changed_on_disk(False)
        for path in self.cache_files():
            self.assertTrue(os.path.exists(path), path)
        self.server.stop()
        self.change_behind_the_server()
        self.restart()
        self.assertEqual(self.listing(), before)
        self.assert_changed_on_disk(True)

    def test_deleted_cache_is_rebuilt(self):
        self.fill()
        before = self.listing()
        self.server.stop()
        for path in self.cache_files():
            os.unlink(path)
        self.restart()
        self.assertEqual(self.listing(), before)
        for path in self.cache_files():
            self.assertTrue(os.path.exists(path), path)
        self.server.stop()
        self.change_behind_the_server()
        self.restart()
        self.assertEqual(self.listing(), before)
        self.assert_changed_on_disk(True)

    def test_copy_carries_entries_that_match_computed_ones(self):
        self.fill()
        self.listing()
        c = self.raw_login("alice", "INBOX")
        for cmd in ("CREATE other", "COPY 1:* other"):
            resp, tagged = c.command(cmd)
            self.assertTrue(tagged.startswith(b"OK"), tagged)
        c.close()
        copied = self.listing("other")
        for path in self.cache_files("other"):
            self.assertTrue(os.path.exists(path), path)
        self.server.stop()
        for path in self.cache_files("other"):
            os.unlink(path)
        self.restart()
        self.assertEqual(self.listing("other"), copied)

    def test_garbage_cache_gives_correct_answers(self):
        self.fill()
        before = self.listing()
        self.server.stop()
        rnd = random.Random(12)
        for path in self.cache_files():
            size = os.path.getsize(path)
            with open(path, "r+b") as f:
                f.seek(0)
                f.write(bytes(rnd.getrandbits(8) for _ in range(size + 4096)))
        self.restart()
        self.assertEqual(self.listing(), before)
        # and the same once more, from whatever the cache holds now
        self.restart()
        self.assertEqual(self.listing(), before)


class ListingCacheMaildir(test_maildir.MaildirMixin, ListingCacheFlat):
    """On the Maildir backend."""

    def message_files(self):
        out = []
        for sub in ("cur", "new"):
            d = self.server.maildir("alice", sub)
            out += [os.path.join(d, n) for n in sorted(os.listdir(d))]
        return out

    def cache_files(self, mailbox="INBOX"):
        folder = "" if mailbox == "INBOX" else "." + mailbox
        base = os.path.join(self.server.maildir("alice", folder), "imapserver.cache")
        return [base, base + ".idx"]

    def assert_changed_answer(self, tagged, body):
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"Subject:_", body)
        self.assertEqual(self.server.error_lines(), [])


if __name__ == "__main__":
    unittest.main()
