"""The server as a process: config checking (-t), the positional port,
SIGHUP reloads, the pre-login timeout, and sockets beyond FD_SETSIZE."""
import os
import re
import resource
import signal
import socket
import subprocess
import time
import unittest

from server import (HOST, SLOW, ServerTestCase, give_to_server_user, server_binary,
                    server_group_line, service_user)


class TestConfigCheck(unittest.TestCase):
    def run_t(self, text):
        d = self.enterContext(__import__("tempfile").TemporaryDirectory())
        # As root the server user must reach storage.root (-t checks it).
        os.chmod(d, 0o755)
        conf = os.path.join(d, "imapserver.conf")
        with open(conf, "w") as f:
            f.write(text + server_group_line())
        with open(os.path.join(d, "users"), "w") as f:
            f.write("alice alice123\n")
        return subprocess.run([server_binary(), "-t", "-c", conf], capture_output=True,
                              text=True, timeout=10 * SLOW), conf

    def test_good_config_passes(self):
        res, _ = self.run_t('auth: { file = "users"; };\nstorage: { root = "mail"; };\n')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("configuration OK", res.stdout)

    def test_bad_config_names_file_and_line(self):
        res, conf = self.run_t('auth: { file = "users"; };\n'
                               'limits: {\n  max_lines = 10;\n};\n')
        self.assertEqual(res.returncode, 1)
        self.assertIn(f"{conf}:3: unknown key 'limits.max_lines'", res.stderr)

    def test_unknown_backend_lists_known_ones(self):
        res, conf = self.run_t('auth: { file = "users"; };\nstorage: { backend = "mbox"; };\n')
        self.assertEqual(res.returncode, 1)
        self.assertIn(f"{conf}:2:", res.stderr)
        self.assertIn("flat", res.stderr)

    def test_aliases_mistake_names_its_file_and_line(self):
        text = ('auth: { file = "users"; };\nstorage: { root = "mail"; };\n'
                'smtp: { enabled = true; port = 0; aliases = "aliases"; };\n')
        d = self.enterContext(__import__("tempfile").TemporaryDirectory())
        with open(os.path.join(d, "aliases"), "w") as f:
            f.write("postmaster: alice\nteam alice bob\n")
        conf = os.path.join(d, "imapserver.conf")
        with open(conf, "w") as f:
            f.write(text + server_group_line())
        with open(os.path.join(d, "users"), "w") as f:
            f.write("alice alice123\n")
        res = subprocess.run([server_binary(), "-t", "-c", conf], capture_output=True,
                             text=True, timeout=10 * SLOW)
        self.assertEqual(res.returncode, 1)
        self.assertIn(f"{d}/aliases:2: expected 'name: user, user'", res.stderr)

    def test_smtp_without_postmaster_is_warned_of(self):
        res, _ = self.run_t('auth: { file = "users"; };\nstorage: { root = "mail"; };\n'
                            'smtp: { enabled = true; port = 0; };\n')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("warning: no user 'postmaster' and no smtp.aliases entry", res.stderr)
        res, _ = self.run_t('auth: { file = "users"; };\nstorage: { root = "mail"; };\n')
        self.assertNotIn("postmaster", res.stderr)

    def test_shipped_config_passes(self):
        top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        shipped = os.path.join(top, "etc", "imapserver.conf")
        res = subprocess.run([server_binary(), "-t", "-c", shipped],
                             capture_output=True, text=True, timeout=10 * SLOW)
        if os.geteuid() != 0:
            self.assertEqual(res.returncode, 0, res.stderr)
            return
        # As root the shipped file (server.user unset) is refused, with
        # the fix named; with server.user added it passes.
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn(f"set server.user (an unprivileged user that owns storage.root) in "
                      f"{shipped}, or run as a normal user", res.stderr)
        with open(shipped) as f:
            text = f.read()
        for key, value in (("root", "var/mail"), ("file", "etc/users"),
                           ("aliases", "etc/aliases")):
            self.assertEqual(len(re.findall(rf'^\s*{key} = "[^"]*";', text, re.M)), 1, key)
            text = re.sub(rf'^(\s*{key} = )"[^"]*";', rf'\1"{os.path.join(top, value)}";', text,
                          flags=re.M)
        d = self.enterContext(__import__("tempfile").TemporaryDirectory())
        conf = os.path.join(d, "imapserver.conf")
        with open(conf, "w") as f:
            f.write(text + server_group_line())
        res = subprocess.run([server_binary(), "-t", "-c", conf],
                             capture_output=True, text=True, timeout=10 * SLOW)
        self.assertEqual(res.returncode, 0, res.stderr)


class TestPositionalPort(unittest.TestCase):
    def test_bad_port_is_refused(self):
        res = subprocess.run([server_binary(), "-t", "70000"], capture_output=True, text=True,
                             timeout=10 * SLOW)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("invalid port", res.stderr)


class TestReload(ServerTestCase):
    ALLOW_LOG_ERRORS = True   # the broken config is reported as an error

    def test_broken_config_is_reported_and_old_one_kept(self):
        old = self.raw_login()
        with open(self.server.conf) as f:
            good = f.read()
        with open(self.server.conf, "w") as f:
            f.write(good + "bogus: { x = 1; };\n")
        self.server.proc.send_signal(signal.SIGHUP)
        line = self.server.wait_log("reload failed", timeout=5)
        self.assertIsNotNone(line, self.server.log_text())
        self.assertIn("unknown", line)
        # Still serving, old and new sessions alike.
        resp, tagged = old.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.raw_login()

    def test_new_config_applies_to_new_sessions(self):
        old = self.raw_login()
        with open(self.server.users, "a") as f:
            pass
        users2 = os.path.join(self.server.dir, "users2")
        with open(users2, "w") as f:
            f.write("dora dora123\n")
        with open(self.server.conf) as f:
            text = f.read().replace('file = "users"', 'file = "users2"')
        with open(self.server.conf, "w") as f:
            f.write(text)
        self.server.proc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(self.server.wait_log("configuration reloaded", timeout=5),
                             self.server.log_text())
        c = self.raw()
        resp, tagged = c.command("LOGIN dora dora123")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = old.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"OK"), tagged)


class TestLoginTimeout(ServerTestCase):
    LIMITS = {"login_timeout": 1}

    def test_silent_client_is_logged_out(self):
        c = self.raw()
        c.sock.settimeout(10 * SLOW)
        data = b""
        start = time.monotonic()
        while b"BYE" not in data and time.monotonic() - start < 10 * SLOW:
            chunk = c.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        self.assertIn(b"* BYE", data)
        # And the server goes on.
        self.raw_login()


class TestFdSetsize(ServerTestCase):
    LIMITS = {"max_connections": 5000, "max_connections_per_address": 0}

    def setUp(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < 1200:
            self.skipTest(f"RLIMIT_NOFILE hard limit {hard} is too low")
        # The server inherits our limit: let it open fds past FD_SETSIZE.
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        super().setUp()

    def test_connections_past_fd_setsize_get_bye(self):
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        refused = None
        for i in range(1100):
            s = socket.create_connection((HOST, self.port), timeout=10 * SLOW)
            socks.append(s)
            line = b""
            while not line.endswith(b"\n"):
                chunk = s.recv(1)
                if not chunk:
                    break
                line += chunk
            if line.startswith(b"* BYE"):
                refused = line
                break
            self.assertTrue(line.startswith(b"* OK"), line)
        self.assertIsNotNone(refused, "no connection was refused past FD_SETSIZE")
        self.assertIsNotNone(self.server.wait_log("fd above FD_SETSIZE"))
        for s in socks:
            s.close()
        socks.clear()
        # Everyone else is still served.
        time.sleep(0.2)
        self.raw_login()


if __name__ == "__main__":
    unittest.main()


class TestDaemonReload(unittest.TestCase):
    """Without -f the server detaches and works from "/": a SIGHUP must
    still re-read the relative -c FILE the start was given."""

    def find_pid(self, conf):
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if args and args[0].endswith(b"imapserver") and conf.encode() in args:
                return int(pid)
        return None

    def login(self, port, user, password):
        s = socket.create_connection((HOST, port), timeout=10 * SLOW)
        try:
            f = s.makefile("rb")
            f.readline()
            s.sendall(f"a LOGIN {user} {password}\r\n".encode())
            line = f.readline()
            while line.startswith(b"*"):
                line = f.readline()
            return line
        finally:
            s.close()

    def test_sighup_rereads_relative_config_after_detaching(self):
        d = self.enterContext(__import__("tempfile").TemporaryDirectory())
        probe = socket.socket()
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
        probe.close()
        with open(os.path.join(d, "users"), "w") as f:
            f.write("alice alice123\n")
        with open(os.path.join(d, "users2"), "w") as f:
            f.write("dora dora123\n")
        conf = "daemon-test.conf"
        text = (f'imap: {{ port = {port}; }};\nstorage: {{ root = "mail"; }};\n'
                'auth: { file = "users"; };\nlimits: { auth_fail_delay = 0; };\n'
                + server_group_line())
        with open(os.path.join(d, conf), "w") as f:
            f.write(text)
        os.mkdir(os.path.join(d, "mail"))
        give_to_server_user(d, os.path.join(d, conf))
        res = subprocess.run([os.path.abspath(server_binary()), "-c", conf], cwd=d,
                             timeout=10 * SLOW)
        self.assertEqual(res.returncode, 0)
        pid = None
        deadline = time.monotonic() + 5 * SLOW
        while pid is None and time.monotonic() < deadline:
            pid = self.find_pid(conf)
            time.sleep(0.05)
        self.assertIsNotNone(pid, "the detached server was not found")
        self.addCleanup(lambda: os.kill(pid, signal.SIGTERM) if self.find_pid(conf) else None)
        line = b""
        while time.monotonic() < deadline:
            try:
                line = self.login(port, "alice", "alice123")
                break
            except OSError:
                time.sleep(0.05)
        self.assertTrue(line.startswith(b"a OK"), line)
        with open(os.path.join(d, conf), "w") as f:
            f.write(text.replace('"users"', '"users2"'))
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:
            line = self.login(port, "dora", "dora123")
            if line.startswith(b"a OK"):
                break
            time.sleep(0.1)
        self.assertTrue(line.startswith(b"a OK"), line)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5 * SLOW
        while self.find_pid(conf) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIsNone(self.find_pid(conf), "the server ignored SIGTERM")


class TestSmtpmailReload(__import__("smtp_support").SmtpTestCase):
    """The stand-alone smtpmail re-reads the shared config on SIGHUP: a
    domain added to smtp.domain is local for the next session."""

    MODE = "standalone"

    def test_sighup_adds_a_local_domain(self):
        s = self.raw_smtp()
        code, _ = s.command("EHLO test")
        self.assertEqual(code, 250)
        s.command("MAIL FROM:<bob@localhost>")
        code, _ = s.command("RCPT TO:<alice@lab.example>")
        self.assertEqual(code, 550)
        with open(self.server.conf) as f:
            text = f.read()
        with open(self.server.conf, "w") as f:
            f.write(text.replace('domain = "localhost"', 'domain = "localhost, lab.example"'))
        self.smtpmail.proc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(self.smtpmail.wait_log("configuration reloaded", timeout=5),
                             self.smtpmail.log_text())
        s2 = self.raw_smtp()
        s2.command("EHLO test")
        s2.command("MAIL FROM:<bob@localhost>")
        code, lines = s2.command("RCPT TO:<alice@lab.example>")
        self.assertEqual(code, 250, lines)


class TestBackground(unittest.TestCase):
    """Without -f: the start says where the server runs and logs, writes
    server.pid_file (smtp.pid_file for smtpmail), logs to log.file, opens
    the log again on SIGUSR1 (rotation), and refuses a second start on the
    same pid file."""

    def start(self, prog, d, text):
        conf = os.path.join(d, "bg.conf")
        with open(conf, "w") as f:
            f.write(text)
        give_to_server_user(d, conf)
        binary = os.path.join(os.path.dirname(os.path.abspath(server_binary())), prog)
        return subprocess.run([binary, "-c", conf], capture_output=True, timeout=10 * SLOW)

    def config(self, d, port_line):
        pw = service_user()
        user = f'user = "{pw.pw_name}"; ' if pw is not None else ""
        os.mkdir(os.path.join(d, "mail"))
        with open(os.path.join(d, "users"), "w") as f:
            f.write("alice alice123\n")
        return (f'server: {{ {user}pid_file = "{d}/imapserver.pid"; }};\n'
                f'{port_line}\nstorage: {{ root = "mail"; }};\n'
                'auth: { file = "users"; };\nlimits: { auth_fail_delay = 0; };\n'
                f'log: {{ file = "{d}/mail.log"; }};\n')

    def wait_for(self, cond, what):
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.05)
        self.fail(what)

    def read(self, path):
        try:
            with open(path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def alive(self, pid):
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False

    def run_daemon(self, prog, port_key, pid_name):
        d = self.enterContext(__import__("tempfile").TemporaryDirectory())
        probe = socket.socket()
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
        probe.close()
        text = self.config(d, f"{port_key}: {{ port = {port}; }};")
        text = text.replace("imapserver.pid", pid_name)
        if prog == "smtpmail":
            text = text.replace(f'pid_file = "{d}/{pid_name}"; ', "")
            text = text.replace(f"smtp: {{ port = {port}; }};",
                                f'smtp: {{ port = {port}; pid_file = "{d}/{pid_name}"; }};')
        res = self.start(prog, d, text)
        out = res.stdout.decode()
        self.assertEqual(res.returncode, 0, res.stderr)
        m = re.match(rf"{prog}: running in the background as pid (\d+), logging to "
                     rf"{re.escape(d)}/mail\.log\n$", out)
        self.assertIsNotNone(m, out)
        pid = int(m.group(1))
        self.addCleanup(lambda: os.kill(pid, signal.SIGTERM) if self.alive(pid) else None)
        pid_file = os.path.join(d, pid_name)
        self.assertEqual(self.read(pid_file), f"{pid}\n")
        log = os.path.join(d, "mail.log")
        self.assertIn("listening on", self.read(log))
        # It serves.
        s = socket.create_connection((HOST, port), timeout=10 * SLOW)
        self.assertTrue(s.makefile("rb").readline().startswith(b"* OK" if prog == "imapserver"
                                                                  else b"220"))
        s.close()
        # A second start on the same pid file is refused, before its ports.
        res = self.start(prog, d, text)
        self.assertEqual(res.returncode, 1)
        self.assertIn(f"already running as pid {pid} (pid file {pid_file})",
                      res.stderr.decode())
        self.assertEqual(self.read(pid_file), f"{pid}\n")
        # Rotation: the old file moved away, SIGUSR1 makes a new one.
        os.rename(log, log + ".1")
        os.kill(pid, signal.SIGUSR1)
        self.wait_for(lambda: "log file reopened" in self.read(log),
                      "no new log file after SIGUSR1")
        # SIGTERM: it stops and its pid file goes.
        os.kill(pid, signal.SIGTERM)
        self.wait_for(lambda: not os.path.exists(pid_file), "the pid file stayed")
        self.wait_for(lambda: "stopped" in self.read(log), "no 'stopped' in the log")

    def test_imapserver_pid_file_log_file_and_rotation(self):
        self.run_daemon("imapserver", "imap", "imapserver.pid")

    def test_smtpmail_pid_file_log_file_and_rotation(self):
        self.run_daemon("smtpmail", "smtp", "smtpmail.pid")

    def test_log_file_that_cannot_be_opened_is_a_start_error(self):
        d = self.enterContext(__import__("tempfile").TemporaryDirectory())
        text = self.config(d, "imap: { port = 0; };").replace(
            f'{d}/mail.log', f'{d}/no/such/folder/mail.log')
        res = self.start("imapserver", d, text)
        self.assertEqual(res.returncode, 1)
        self.assertIn(f"log.file {d}/no/such/folder/mail.log: No such file or directory",
                      res.stderr.decode())
        self.assertEqual(res.stdout, b"")


class TestMakeRun(unittest.TestCase):
    """`make run`, the student's first command: it serves IMAP and SMTP
    (the lab's mailclient needs both), on the ports given as IMAP_PORT and
    SMTP_PORT, and prints them with the exact mailclient command. Run on a
    copy of the Makefile and etc/ (the build is linked), without its deps
    and build steps."""

    def free_port(self):
        s = socket.socket()
        s.bind((HOST, 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def test_make_run_serves_imap_and_smtp_on_the_given_ports(self):
        import shutil
        import smtplib
        import imaplib
        top = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
        build = os.path.dirname(os.path.abspath(server_binary()))
        if shutil.which("openssl") is None:
            self.skipTest("openssl is not installed (make run makes a certificate)")
        d = self.enterContext(__import__("tempfile").TemporaryDirectory())
        os.chmod(d, 0o755)
        shutil.copy(os.path.join(top, "Makefile"), d)
        shutil.copytree(os.path.join(top, "etc"), os.path.join(d, "etc"))
        os.symlink(build, os.path.join(d, "runbuild"))
        imap_port, smtp_port, tls_port = self.free_port(), self.free_port(), self.free_port()
        proc = subprocess.Popen(
            ["make", "-s", "-o", "deps", "-o", "all", "run", "BUILD=runbuild",
             f"IMAP_PORT={imap_port}", f"SMTP_PORT={smtp_port}", f"RUN_TLS_PORT={tls_port}"],
            cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

        def stop():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10 * SLOW)
            proc.stdout.close()
        self.addCleanup(stop)
        lines = []
        deadline = time.monotonic() + 30 * SLOW
        while time.monotonic() < deadline:
            line = proc.stdout.readline().decode()
            if not line:
                break
            lines.append(line)
            if "imapserver started" in line:
                break
        text = "".join(lines)
        self.assertIn("imapserver started", text)
        self.assertIn(f"IMAP on 127.0.0.1:{imap_port}", text)
        self.assertIn(f"SMTP on 127.0.0.1:{smtp_port}", text)
        self.assertIn(f"mailclient 127.0.0.1 {smtp_port} {imap_port}", text)
        # What the lab's client does: SMTP in, IMAP out.
        with smtplib.SMTP(HOST, smtp_port, timeout=10 * SLOW) as s:
            s.sendmail("bob@localhost", ["alice@localhost"],
                       b"From: bob@localhost\r\nTo: alice@localhost\r\n"
                       b"Subject: lab check\r\n\r\nhello\r\n")
        imap = imaplib.IMAP4(HOST, imap_port, timeout=10 * SLOW)
        try:
            imap.login("alice", "alice123")
            imap.select("INBOX")
            typ, data = imap.search(None, "SUBJECT", '"lab check"')
            self.assertEqual(typ, "OK")
            self.assertEqual(len(data[0].split()), 1, data)
        finally:
            imap.logout()


class TestStatus(ServerTestCase):
    """imapserver --status: the running server's sessions, users and open
    mailboxes (as "doveadm who"), read from its status socket, which only
    the server's user and root may open."""

    def status(self):
        return subprocess.run([self.server.binary, "-c", self.server.conf, "--status"],
                              capture_output=True, text=True, timeout=10 * SLOW)

    def test_sessions_users_and_mailboxes(self):
        a = self.raw_login("alice", mailbox="INBOX")
        b = self.raw_login("bob")
        anon = self.raw()
        r = self.status()
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertRegex(out, r"^imapserver pid \d+, up \d+d \d\d:\d\d:\d\d, storage flat, "
                              r"auth passwd-file\n")
        self.assertIn("imap sessions: 3 (2 logged in, 2 users)\n", out)
        self.assertRegex(out, r"\n  s\d+ +127\.0\.0\.1:\d+ +alice +selected INBOX\n")
        self.assertRegex(out, r"\n  s\d+ +127\.0\.0\.1:\d+ +bob +logged in\n")
        self.assertRegex(out, r"\n  s\d+ +127\.0\.0\.1:\d+ +- +not logged in\n")
        self.assertIn("open mailboxes: 1\n  alice/INBOX\n", out)
        sock = os.path.join(self.server.root, ".imapserver-status")
        self.assertEqual(os.stat(sock).st_mode & 0o777, 0o600)
        for c in (a, b, anon):
            c.command("LOGOUT")
        # The server gone, --status says so.
        self.server.stop()
        self.assertFalse(os.path.exists(sock), "the socket stayed")
        r = self.status()
        self.assertEqual(r.returncode, 1)
        self.assertIn("no running server answers on", r.stderr)
        self.server.start()
        self.port = self.server.port
