"""`make install` gives a working service, as an operator runs it: the
installed imapserver and smtpmail start from the installed configuration
(absolute paths, server.user, the state folder), a user added with the
installed --user-add logs in and gets mail from the installed smtpmail,
the units name the installed files, and a second install keeps the
operator's configuration. Installed into a temporary root through
PREFIX, SYSCONFDIR and LOCALSTATEDIR (so its paths are real), from the
build under test, without building."""

import imaplib
import os
import re
import smtplib
import subprocess
import tempfile
import time
import unittest

from server import HOST, SLOW, SOCK_TIMEOUT, server_binary

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class TestMakeInstall(unittest.TestCase):

    def make_install(self, root):
        build = os.path.relpath(os.path.dirname(os.path.abspath(server_binary())), TOP)
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
        r = subprocess.run(["make", "-s", "-C", TOP, "-o", "all", "install", f"BUILD={build}",
                            f"PREFIX={root}/usr", f"SYSCONFDIR={root}/etc",
                            f"LOCALSTATEDIR={root}/var"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace"))
        return r.stdout.decode(errors="replace")

    def start(self, args, pattern):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(lambda: (p.terminate(), p.wait(timeout=10 * SLOW), p.stderr.close()))
        deadline = time.monotonic() + 10 * SLOW
        seen = []
        while time.monotonic() < deadline:
            line = p.stderr.readline().decode(errors="replace")
            if not line:
                break
            seen.append(line)
            m = re.search(pattern, line)
            if m:
                return int(m.group(1))
        self.fail(f"{args[0]} did not start: {''.join(seen)}")

    def test_installed_service_works_from_its_own_files(self):
        root = self.enterContext(tempfile.TemporaryDirectory(prefix="imapserver-inst."))
        os.chmod(root, 0o755)
        self.make_install(root)
        conf = f"{root}/etc/imapserver/imapserver.conf"
        sbin = f"{root}/usr/sbin"
        for path in (conf, f"{root}/etc/imapserver/users", f"{root}/etc/imapserver/aliases",
                     f"{sbin}/imapserver", f"{sbin}/smtpmail", f"{root}/usr/bin/mailclient",
                     f"{root}/usr/lib/systemd/system/imapserver.service",
                     f"{root}/usr/lib/systemd/system/smtpmail.service",
                     f"{root}/usr/lib/sysusers.d/imapserver.conf",
                     f"{root}/usr/share/man/man8/imapserver.8"):
            self.assertTrue(os.path.isfile(path), path)
        with open(conf) as f:
            text = f.read()
        self.assertIn(f'root = "{root}/var/lib/imapserver/mail"', text)
        self.assertIn(f'file = "{root}/etc/imapserver/users"', text)
        self.assertRegex(text, r'(?m)^server: \{ user = "imapserver"; \};')
        # No demo account is installed.
        with open(f"{root}/etc/imapserver/users") as f:
            self.assertNotIn("alice", f.read())
        for unit, prog in (("imapserver", "imapserver"), ("smtpmail", "smtpmail")):
            with open(f"{root}/usr/lib/systemd/system/{unit}.service") as f:
                u = f.read()
            self.assertIn(f"ExecStart={sbin}/{prog} -f -c {conf}\n", u)
            self.assertNotIn("@", u.replace("$MAINPID", ""))
        # The configuration passes -t (as root its server.user is used).
        r = subprocess.run([f"{sbin}/imapserver", "-t", "-c", conf], capture_output=True,
                           text=True, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        # An operator's first steps: a user, the service, mail in, mail out.
        r = subprocess.run([f"{sbin}/imapserver", "-c", conf, "--user-add", "dora"],
                           input=b"dora-pw\n", capture_output=True, timeout=60 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        imap_port = self.start([f"{sbin}/imapserver", "-f", "-c", conf, "0"],
                               r"listening on 127\.0\.0\.1:(\d+)")
        smtp_port = self.start([f"{sbin}/smtpmail", "-f", "-c", conf, "0"],
                               r"listening on 127\.0\.0\.1:(\d+)")
        with smtplib.SMTP(HOST, smtp_port, timeout=SOCK_TIMEOUT) as s:
            s.sendmail("x@example.org", ["dora@localhost"],
                       b"Subject: installed\r\n\r\nit works\r\n")
        m = imaplib.IMAP4(HOST, imap_port, timeout=SOCK_TIMEOUT)
        try:
            m.login("dora", "dora-pw")
            typ, data = m.select("INBOX")
            self.assertEqual(data, [b"1"])
        finally:
            m.logout()
        if os.geteuid() == 0:
            st = os.stat(f"{root}/var/lib/imapserver/mail/dora")
            self.assertNotEqual(st.st_uid, 0, "mail written as root")
        # A second install keeps what the operator changed.
        with open(conf, "a") as f:
            f.write("# the operator's line\n")
        out = self.make_install(root)
        with open(conf) as f:
            self.assertIn("# the operator's line", f.read())
        self.assertTrue(os.path.isfile(conf + ".dist"))
        self.assertIn(f"kept {conf}", out)


if __name__ == "__main__":
    unittest.main()
