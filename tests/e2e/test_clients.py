"""Real third-party IMAP clients against the server: curl (when installed)
and mutt (optional; skipped when absent)."""

import os
import select
import shutil
import subprocess
import time
import unittest

from server import SEED, SLOW, ServerTestCase

CURL = shutil.which("curl")
MUTT = shutil.which("mutt")


@unittest.skipUnless(CURL, "curl is not installed")
class TestCurl(ServerTestCase):

    def curl(self, url, *args, expect_rc=0):
        p = subprocess.run([CURL, "-s", "-S", "--max-time", str(int(10 * SLOW)), *args, url],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=20 * SLOW)
        self.assertEqual(p.returncode, expect_rc,
                         f"curl {' '.join(args)} {url}: {p.stderr.decode(errors='replace')}")
        return p.stdout

    def url(self, path="", user="alice", password="alice123"):
        return f"imap://{user}:{password}@127.0.0.1:{self.port}/{path}"

    def test_curl_fetches_message_by_uid(self):
        out = self.curl(self.url("INBOX;UID=1"))
        self.assertEqual(out, SEED[0].served)
        out = self.curl(self.url("INBOX;UID=2"))
        self.assertEqual(out, SEED[1].served)

    def test_curl_lists_mailboxes(self):
        out = self.curl(self.url())
        self.assertRegex(out, rb'\* LIST \([^)]*\) "/" "?INBOX"?\r\n')

    def test_curl_custom_search_and_fetch(self):
        out = self.curl(self.url("INBOX"), "-X", "SEARCH FROM carol")
        self.assertIn(b"* SEARCH 2\r\n", out)
        out = self.curl(self.url("INBOX"), "-X", "FETCH 1:* (FLAGS)")
        self.assertEqual(out.count(b" FETCH (FLAGS ("), len(SEED), out)

    def test_curl_wrong_password_is_refused(self):
        # 67: "the user name, password, or similar was not accepted".
        self.curl(self.url("INBOX;UID=1", password="nope"), expect_rc=67)


@unittest.skipUnless(MUTT, "mutt is not installed")
class TestMutt(ServerTestCase):

    def run_mutt(self, keys, timeout=20.0):
        """Runs mutt on alice's INBOX in a pseudo-terminal, pushing keys;
        returns its exit status (None if it had to be killed)."""
        home = os.path.join(self.server.dir, "mutthome")
        os.makedirs(home, exist_ok=True)
        rc = os.path.join(home, "muttrc")
        url = f"imap://alice@127.0.0.1:{self.port}/"
        with open(rc, "w") as f:
            f.write(f'set folder="{url}"\nset spoolfile="{url}INBOX"\n'
                    'set imap_user="alice"\nset imap_pass="alice123"\n'
                    'set ssl_starttls=no\nset ssl_force_tls=no\n'
                    'set delete=yes\nset quit=yes\nset move=no\nset confirmappend=no\n'
                    'set sort=mailbox-order\nset header_cache=""\nset message_cachedir=""\n'
                    'set timeout=5\nset mail_check=1\nset imap_keepalive=30\n'
                    f'set tmpdir="{home}"\n')
        master, slave = os.openpty()
        env = dict(os.environ, HOME=home, TERM="vt100", LANG="C", LC_ALL="C")
        p = subprocess.Popen([MUTT, "-n", "-F", rc, "-e", f'push "{keys}"'],
                             stdin=slave, stdout=slave, stderr=slave, env=env,
                             start_new_session=True)
        os.close(slave)
        deadline = time.monotonic() + timeout * SLOW
        try:
            while p.poll() is None and time.monotonic() < deadline:
                r, _, _ = select.select([master], [], [], 0.1)
                if r:
                    try:
                        os.read(master, 65536)
                    except OSError:
                        break
            try:
                return p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                return None
        finally:
            os.close(master)

    def test_mutt_deletes_first_message(self):
        rc = self.run_mutt("<delete-message><sync-mailbox><quit>")
        self.assertEqual(rc, 0, "mutt did not finish; server log:\n" + self.server.log_text(40))
        m = self.imap()
        typ, data = m.select("INBOX")
        self.assertEqual(data, [str(len(SEED) - 1).encode()])
        typ, data = m.search(None, "SUBJECT", "Meeting")
        self.assertEqual(data, [b"1"])


if __name__ == "__main__":
    unittest.main()
