"""The "pam" auth backend end to end: the real imapserver with
auth.backend = "pam" against a real PAM stack, set up entirely by the test
with pam_wrapper (no change to the machine's /etc/pam.d):

    LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1
    PAM_WRAPPER_SERVICE_DIR=<tmp>/pam.d   the service file "imapserver":
        auth    required pam_matrix.so passdb=<tmp>/passdb
        auth    required pam_sleep.so ms=2000 user=slow   (tests/pam_sleep.c)
        account required pam_matrix.so passdb=<tmp>/passdb

pam_matrix checks "user:password:service" lines; pam_sleep makes the login
of the user "slow" take two seconds, like pam_faildelay or a slow
directory would. Skipped when libpam_wrapper, pam_matrix or the test module
(make tests builds $BUILD/tests/pam_sleep.so) are missing.

Timing bound: another session's NOOP during a slow PAM login must be
answered within 50 ms, in the sanitizer build too (measured there: under
2 ms; the loop does not wait for PAM at all, so the bound holds with a
wide margin). Under the sanitizers the ASan runtime is put first in
LD_PRELOAD, before libpam_wrapper.so, as ASan requires, and pam_wrapper's
RTLD_DEEPBIND is turned off (PAM_WRAPPER_DISABLE_DEEPBIND)."""

import glob
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import time
import unittest

from server import (ImapServer, ServerTestCase, RawClient, SLOW, server_binary,
                    without_server_group)

SERVICE = "imapserver"
PAM_USERS = {"alice": "alice123", "bob": "bob123", "slow": "slow123",
             "j\u00f6rg": "gr\u00fc\u00dfe", "daemon": "daemon123"}
SLOW_MS = 2000
NOOP_BOUND = 0.050


def _find(patterns):
    for pat in patterns:
        hits = sorted(glob.glob(pat))
        if hits:
            return hits[0]
    return None


def pam_wrapper_lib():
    return _find(["/usr/lib/*/libpam_wrapper.so", "/usr/lib/libpam_wrapper.so",
                  "/usr/lib64/libpam_wrapper.so", "/usr/local/lib/libpam_wrapper.so"])


def pam_matrix_module():
    return _find(["/usr/lib/*/pam_wrapper/pam_matrix.so", "/usr/lib/pam_wrapper/pam_matrix.so",
                  "/usr/lib64/pam_wrapper/pam_matrix.so"])


def pam_sleep_module():
    return os.path.join(os.path.dirname(server_binary()), "tests", "pam_sleep.so")


def asan_runtime():
    """The ASan runtime the server links, which must come first in
    LD_PRELOAD when another library is preloaded; None if not built with
    ASan."""
    try:
        out = subprocess.run(["ldd", server_binary()], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if "libasan" in line and "=>" in line:
            path = line.split("=>")[1].split("(")[0].strip()
            if path:
                return path
    return None


def missing_prerequisite():
    if pam_wrapper_lib() is None:
        return "libpam_wrapper.so is missing (Debian package libpam-wrapper)"
    if pam_matrix_module() is None:
        return "pam_matrix.so is missing (Debian package libpam-wrapper)"
    if not os.path.exists(pam_sleep_module()):
        return f"{pam_sleep_module()} is missing (make tests builds it)"
    return None


def process_children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def process_ids(pid):
    """{'Uid': [r, e, s, fs], 'Gid': [...], 'Groups': [...]} of pid."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(x) for x in value.split()]
    return out


def remove_stale_pam_wrapper_dirs():
    """pam_wrapper copies the service folder to /tmp/pam.X (one letter:
    62 slots) in every process that calls pam_start and removes it at
    normal exit; the server's PAM helper ends with _exit(). Removes the
    folders whose process is gone (pam_wrapper's own rule)."""
    for pidfile in glob.glob("/tmp/pam.?/pid"):
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip() or "0")
        except (OSError, ValueError):
            continue
        if pid <= 0:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.dirname(pidfile), ignore_errors=True)
        except OSError:
            pass


class PamServer(ImapServer):
    """An ImapServer whose config names the "pam" backend and whose
    process runs under pam_wrapper."""

    def __init__(self, extra_conf="", **kw):
        super().__init__({"alice": "", "slow": ""}, **kw)
        self.pam_dir = os.path.join(self.dir, "pam.d")
        self.passdb = os.path.join(self.dir, "passdb")
        os.makedirs(self.pam_dir)
        with open(self.passdb, "w", encoding="utf-8") as f:
            for user, password in PAM_USERS.items():
                f.write(f"{user}:{password}:{SERVICE}\n")
        matrix = pam_matrix_module()
        with open(os.path.join(self.pam_dir, SERVICE), "w") as f:
            f.write(f"auth required {matrix} passdb={self.passdb}\n"
                    f"auth required {pam_sleep_module()} ms={SLOW_MS} user=slow\n"
                    f"account required {matrix} passdb={self.passdb}\n")
        # pam_wrapper looks for "other" when a service is unknown.
        with open(os.path.join(self.pam_dir, "other"), "w") as f:
            f.write(f"auth required {matrix} passdb=/nonexistent\n"
                    f"account required {matrix} passdb=/nonexistent\n")
        with open(self.conf) as f:
            text = f.read()
        text = text.replace('auth: { backend = "passwd-file"; file = "users"; };',
                            f'auth: {{ backend = "pam"; service = "{SERVICE}"; }};')
        assert 'backend = "pam"' in text, text
        if "server:" in extra_conf:
            text = without_server_group(text)
        with open(self.conf, "w") as f:
            f.write(text + extra_conf)

    def environment(self):
        env = {"PAM_WRAPPER": "1", "PAM_WRAPPER_SERVICE_DIR": self.pam_dir}
        preload = [pam_wrapper_lib()]
        asan = asan_runtime()
        if asan is not None:
            # ASan insists on being the first library; pam_wrapper's
            # RTLD_DEEPBIND does not mix with the sanitizers.
            preload.insert(0, asan)
            env["PAM_WRAPPER_DISABLE_DEEPBIND"] = "1"
            # pam_wrapper 1.1.4 (Debian 12) reads the uid_wrapper name.
            env["UID_WRAPPER_DISABLE_DEEPBIND"] = "1"
        env["LD_PRELOAD"] = " ".join(preload)
        return env

    def start(self):
        # Popen copies os.environ: set the PAM variables for this start only.
        saved = {k: os.environ.get(k) for k in self.environment()}
        os.environ.update(self.environment())
        try:
            return super().start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def cleanup(self):
        try:
            super().cleanup()
        finally:
            remove_stale_pam_wrapper_dirs()


class PamTestCase(ServerTestCase):
    EXTRA_CONF = ""

    def setUp(self):
        why = missing_prerequisite()
        if why is not None:
            self.skipTest(why)
        self.server = PamServer(extra_conf=self.EXTRA_CONF)
        self.addCleanup(self.server.cleanup)
        self._clients = []
        self.prepare()
        self.server.start()
        self.port = self.server.port

    def prepare(self):
        pass

    def raw_client(self):
        c = RawClient(self.port)
        self._clients.append(c)
        line = c.readline()
        self.assertTrue(line.startswith(b"* OK"), line)
        return c

    def helper_pid(self):
        kids = process_children(self.server.proc.pid)
        self.assertEqual(len(kids), 1, f"expected one child (the PAM helper): {kids}")
        return kids[0]


class TestPamLogin(PamTestCase):

    def test_right_password_logs_in_through_pam(self):
        c = self.raw_client()
        resp, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIsNotNone(self.server.wait_log(r"login ok from 127\.0\.0\.1 for user 'alice' \(pam\)"))

    def test_wrong_password_and_unknown_user_are_authenticationfailed(self):
        for cmd in ("LOGIN alice wrong", "LOGIN mallory alice123", 'LOGIN alice ""',
                    "LOGIN slow alice123"):
            c = self.raw_client()
            resp, tagged = c.command(cmd)
            self.assertRegex(tagged, rb"^NO \[AUTHENTICATIONFAILED\]", cmd)
        # The session goes on after a failure.
        resp, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_system_account_is_refused_before_pam(self):
        """auth.min_uid (default 1000): the system account "daemon" (uid 1
        on every Debian machine) cannot log in even with the password PAM
        would take."""
        c = self.raw_client()
        resp, tagged = c.command("LOGIN daemon daemon123")
        self.assertRegex(tagged, rb"^NO \[AUTHENTICATIONFAILED\]")
        self.assertIsNotNone(self.server.wait_log(
            r"login failed from 127\.0\.0\.1 for user 'daemon' \(pam\): a system account "
            r"\(uid 1, below auth\.min_uid 1000\)"))

    def test_non_ascii_user_and_password(self):
        c = self.raw_client()
        user = "j\u00f6rg".encode()
        pw = "gr\u00fc\u00dfe".encode()
        c.send(b"a LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(user), user, len(pw), pw))
        resp, tagged = c.read_tagged("a")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_authenticate_plain_through_pam(self):
        import base64
        c = self.raw_client()
        token = base64.b64encode(b"\0bob\0bob123").decode()
        resp, tagged = c.command(f"AUTHENTICATE PLAIN {token}")
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_password_never_reaches_the_log(self):
        c = self.raw_client()
        c.command("LOGIN alice Sekrit-Pa55")
        c.command("LOGIN alice alice123")
        for line in self.server.log_lines():
            self.assertNotIn("Sekrit-Pa55", line)
            self.assertNotIn("alice123", line)

    def test_slow_pam_login_does_not_delay_another_sessions_noop(self):
        other = self.raw_client()
        resp, tagged = other.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        slow = self.raw_client()
        t0 = time.monotonic()
        slow.send("s1 LOGIN slow slow123\r\n")
        latencies = []
        # NOOPs on the other session for as long as the slow login runs.
        for i in range(1000):
            if time.monotonic() - t0 > (SLOW_MS / 1000.0) * 0.9:
                break
            t = time.monotonic()
            resp, tagged = other.command("NOOP")
            latencies.append(time.monotonic() - t)
            self.assertTrue(tagged.startswith(b"OK"), tagged)
            time.sleep(0.01)
        resp, tagged = slow.read_tagged("s1", timeout=10 * SLOW)
        elapsed = time.monotonic() - t0
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertGreaterEqual(elapsed, SLOW_MS / 1000.0 * 0.95,
                                "the slow PAM module did not run")
        self.assertGreaterEqual(len(latencies), 20, latencies)
        worst = max(latencies)
        sys.stderr.write(f"\n  NOOP during a {SLOW_MS} ms PAM login: {len(latencies)} NOOPs, "
                         f"median {statistics.median(latencies) * 1000:.2f} ms, "
                         f"max {worst * 1000:.2f} ms (bound {NOOP_BOUND * 1000:.0f} ms); "
                         f"slow login answered after {elapsed:.3f} s\n")
        self.assertLess(worst, NOOP_BOUND, latencies)

    def test_fast_login_is_not_queued_behind_a_slow_one(self):
        slow = self.raw_client()
        t0 = time.monotonic()
        slow.send("s1 LOGIN slow slow123\r\n")
        time.sleep(0.2)
        fast = self.raw_client()
        t = time.monotonic()
        resp, tagged = fast.command("LOGIN bob bob123")
        fast_time = time.monotonic() - t
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertLess(fast_time, 1.0, "the fast login waited for the slow one")
        resp, tagged = slow.read_tagged("s1", timeout=10 * SLOW)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertGreaterEqual(time.monotonic() - t0, SLOW_MS / 1000.0 * 0.95)

    def test_several_slow_logins_in_flight_all_answered(self):
        clients = [self.raw_client() for _ in range(4)]
        t0 = time.monotonic()
        for i, c in enumerate(clients):
            c.send(f"x{i} LOGIN slow {'slow123' if i % 2 == 0 else 'nope'}\r\n")
        for i, c in enumerate(clients):
            resp, tagged = c.read_tagged(f"x{i}", timeout=15 * SLOW)
            if i % 2 == 0:
                self.assertTrue(tagged.startswith(b"OK"), tagged)
            else:
                self.assertRegex(tagged, rb"^NO \[AUTHENTICATIONFAILED\]")
        # In parallel workers: about one PAM delay, not four.
        self.assertLess(time.monotonic() - t0, 3 * SLOW_MS / 1000.0 * SLOW)

    def test_closing_the_connection_during_a_slow_login(self):
        slow = self.raw_client()
        slow.send("s1 LOGIN slow slow123\r\n")
        time.sleep(0.2)
        slow.close()
        # The helper's late answer finds no request and is dropped; the
        # server goes on serving.
        time.sleep(SLOW_MS / 1000.0 + 0.3)
        c = self.raw_client()
        resp, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertTrue(self.server.alive())

    def test_helper_death_fails_pending_login_with_unavailable_and_restarts(self):
        helper = self.helper_pid()
        slow = self.raw_client()
        slow.send("s1 LOGIN slow slow123\r\n")
        time.sleep(0.3)
        os.kill(helper, signal.SIGKILL)
        resp, tagged = slow.read_tagged("s1", timeout=5 * SLOW)
        self.assertRegex(tagged, rb"^NO \[UNAVAILABLE\]")
        self.assertIsNotNone(self.server.wait_log(r"helper process \d+ .*restarting"))
        # A new helper answers the next login.
        c = self.raw_client()
        resp, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        new_helper = self.helper_pid()
        self.assertNotEqual(new_helper, helper)
        # The same session may try again.
        resp, tagged = slow.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)


@unittest.skipUnless(os.geteuid() == 0, "needs root: checks the drop to server.user")
class TestPamPrivilegeDrop(PamTestCase):
    """Started as root with server.user = "nobody": the server serves as
    nobody, the PAM helper stays root."""

    USER = "nobody"
    EXTRA_CONF = 'server: { user = "nobody"; };\n'

    def prepare(self):
        try:
            self.pw = pwd.getpwnam(self.USER)
        except KeyError:
            self.skipTest("no user 'nobody' on this machine")
        # The mail folder belongs to the server's user; the rest stays
        # root's, readable.
        os.chmod(self.server.dir, 0o755)
        for base, dirs, files in os.walk(self.server.root):
            for name in [base] + [os.path.join(base, n) for n in dirs + files]:
                os.chown(name, self.pw.pw_uid, self.pw.pw_gid)

    def test_server_runs_as_configured_user_and_helper_as_root(self):
        # "listening on" (what start() waits for) comes before the drop
        self.assertIsNotNone(self.server.wait_log(r"dropped root: running as user nobody"))
        ids = process_ids(self.server.proc.pid)
        self.assertEqual(ids["Uid"], [self.pw.pw_uid] * 4, ids)
        self.assertEqual(ids["Gid"], [self.pw.pw_gid] * 4, ids)
        self.assertEqual(ids["Groups"], [self.pw.pw_gid], ids)
        helper = process_ids(self.helper_pid())
        self.assertEqual(helper["Uid"], [0] * 4, helper)
        self.assertIsNotNone(self.server.wait_log(r"dropped root: running as user nobody"))
        # PAM (run by the root helper) and the mail (read by nobody) work.
        c = self.raw_client()
        resp, tagged = c.command("LOGIN alice alice123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"OK"), tagged)


if __name__ == "__main__":
    unittest.main()
