"""What the server does when one write fails for want of space (ENOSPC),
injected with tests/fail_write.c (LD_PRELOAD): a write whose data holds
the marker fails, every other one goes through. On both backends:
a MULTIAPPEND whose second message cannot be stored stores none
(RFC 3502), answers NO [OVERQUOTA] (RFC 5530), and the session and the
mailbox go on."""

import os
import re
import unittest

from server import ServerTestCase, server_binary

MARKER = "FAILWRITE-2b7e151628aed2a6"


def fail_write_lib():
    return os.path.join(os.path.dirname(server_binary()), "tests", "fail_write.so")


class WriteFaultBehaviour:
    BACKEND = "flat"
    ALLOW_LOG_ERRORS = True

    def fault_env(self):
        from test_pam import asan_runtime
        preload = [fail_write_lib()]
        asan = asan_runtime()
        if asan is not None:
            preload.insert(0, asan)
        return {"LD_PRELOAD": " ".join(preload), "FAILWRITE_MARKER": MARKER}

    def with_fault_env(self, fn):
        """Runs fn (which starts the server) with the injector loaded."""
        env = self.fault_env()
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return fn()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def setUp(self):
        if not os.path.exists(fail_write_lib()):
            self.skipTest(f"{fail_write_lib()} is not built (make tests)")
        self.with_fault_env(super().setUp)

    def test_multiappend_with_a_message_that_cannot_be_stored_stores_none(self):
        if self.BACKEND != "flat":
            self.server.stop()
            with open(self.server.conf) as f:
                text = f.read()
            with open(self.server.conf, "w") as f:
                f.write(text.replace('backend = "flat"', f'backend = "{self.BACKEND}"'))
            self.with_fault_env(self.server.start)
            self.port = self.server.port
        c = self.raw_login()
        resp, tagged = c.command("STATUS INBOX (MESSAGES UIDNEXT)")
        before = re.search(rb"MESSAGES (\d+) UIDNEXT (\d+)", b"".join(resp)).groups()
        bad = f"Subject: full\r\n\r\n{MARKER}\r\n".encode()
        resp, tagged = c.command(b"APPEND INBOX {14+}\r\nSubject: a\r\n\r\n {" +
                                 str(len(bad)).encode() + b"+}\r\n" + bad +
                                 b" {14+}\r\nSubject: c\r\n\r\n")
        self.assertTrue(tagged.startswith(b"NO [OVERQUOTA]"), tagged)
        resp, tagged = c.command("STATUS INBOX (MESSAGES)")
        self.assertIn(f"MESSAGES {before[0].decode()})".encode(), b"".join(resp))
        # The session and the mailbox go on.
        resp, tagged = c.command(b"APPEND INBOX {14+}\r\nSubject: d\r\n\r\n")
        self.assertTrue(tagged.startswith(b"OK [APPENDUID"), tagged)
        resp, tagged = c.command("SELECT INBOX")
        self.assertIn(f"* {int(before[0]) + 1} EXISTS".encode(), b"".join(resp))
        resp, tagged = c.command("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = re.findall(rb"Subject: (\w+)", b"".join(resp))
        self.assertNotIn(b"a", subjects)
        self.assertNotIn(b"full", subjects)
        self.assertIn(b"d", subjects)


class TestWriteFaultsFlat(WriteFaultBehaviour, ServerTestCase):
    BACKEND = "flat"


class TestWriteFaultsMaildir(WriteFaultBehaviour, ServerTestCase):
    BACKEND = "maildir"


if __name__ == "__main__":
    unittest.main()
