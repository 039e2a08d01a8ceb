"""End-to-end tests of mailclient, the lab's interactive client, driven
through ptys (as a person on a terminal) and pipes (as a script):

- against our imapserver: login, the menu, Send Mail (over SMTP),
  Manage Mail (list, filter: valid, invalid twice, no mail; show; delete),
  two clients of one user on two terminals seeing each other's changes,
  a dropped connection re-established quietly;
- against a throwaway Dovecot (skipped if it is not installed): the same
  list/show/delete session, proving the client speaks standard IMAP;
- listing 1,000 mails moves no message body over the network (a proxy
  between client and server sees every byte).

Only the Python standard library is used. The client binary comes from
$MAILCLIENT (tests/run.sh sets it), else build/mailclient."""

import fcntl
import imaplib
import os
import pty
import re
import select
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from server import HOST, SLOW, USERS, ImapServer, seed_text  # noqa: E402
import dovecot_support  # noqa: E402

WAIT = 10.0 * SLOW          # seconds to wait for any expected output
NOTICE_WAIT = 10.0 * SLOW   # seconds for a change to be announced


def client_binary():
    path = os.environ.get("MAILCLIENT", "")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "mailclient")
    return os.path.abspath(path)


def smtp_binary():
    path = os.environ.get("SMTPMAIL", "")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "smtpmail")
    return os.path.abspath(path) if os.access(path, os.X_OK) else None


# ---------------------------------------------------------------- drivers

class PtyClient:
    """mailclient on a pseudo-terminal: what a person sees and types."""

    def __init__(self, imap_port, smtp_port=25, env=None):
        self.master, slave = pty.openpty()
        full_env = dict(os.environ)
        full_env.update({"TZ": "UTC", "MAILCLIENT_TIMEOUT": "10"})
        full_env.update(env or {})
        self.proc = subprocess.Popen([client_binary(), HOST, str(smtp_port), str(imap_port)],
                                     stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, env=full_env, close_fds=True)
        os.close(slave)
        self.out = b""
        self.pos = 0            # expect() searches from here on

    def _read(self, timeout):
        r, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not r:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:         # EIO: the child closed the terminal
            chunk = b""
        if not chunk:
            return None
        self.out += chunk
        return True

    def expect(self, pattern, timeout=WAIT):
        """Waits until pattern (a regex on the output, \\r removed)
        appears after the previous match; returns the match."""
        rx = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = self.out.replace(b"\r", b"")
            m = rx.search(text, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} within {timeout:.0f} s; output after "
                                     f"the last match:\n{text[self.pos:].decode('utf-8', 'replace')}")
            if self._read(left) is None:
                raise AssertionError(f"the client ended before {pattern!r}; output:\n"
                                     f"{text[self.pos:].decode('utf-8', 'replace')}")

    def absent(self, pattern, wait=0.5):
        """Reads for wait seconds and checks pattern did not appear."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self._read(deadline - time.monotonic()) is None:
                break
        text = self.out.replace(b"\r", b"")[self.pos:]
        if re.search(pattern.encode() if isinstance(pattern, str) else pattern, text):
            raise AssertionError(f"unexpected {pattern!r} in:\n{text.decode('utf-8', 'replace')}")

    def send(self, line):
        os.write(self.master, line.encode() + b"\n")

    def text(self):
        return self.out.replace(b"\r", b"").decode("utf-8", "replace")

    def login(self, user="alice", password=None):
        self.expect(r"Username: ")
        self.send(user)
        self.expect(r"Password: ")
        self.send(password or USERS[user])
        self.expect(r"Logged in as " + re.escape(user))
        self.expect(r"Enter your choice: ")

    def wait_exit(self, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.05)
        if self.proc.poll() is None:
            raise AssertionError("the client did not exit; output:\n" + self.text())
        while self._read(0.05):
            pass
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.close(self.master)
        except OSError:
            pass


def run_piped(imap_port, script, smtp_port=25, timeout=WAIT * 3, env=None):
    """Runs mailclient with script on a pipe; returns (status, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.update({"TZ": "UTC", "MAILCLIENT_TIMEOUT": "10"})
    full_env.update(env or {})
    p = subprocess.run([client_binary(), HOST, str(smtp_port), str(imap_port)],
                       input=script.encode(), capture_output=True, timeout=timeout,
                       env=full_env)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class SmtpSink:
    """A minimal SMTP server that records what the client sends (the
    envelope and the DATA exactly as it crossed the wire) and delivers
    each mail into the recipient's INBOX over IMAP APPEND, so the client
    can read it back. It answers DATA with a recognisable verdict."""

    VERDICT = "250 2.0.0 Ok: queued as SINK1"

    def __init__(self, imap_port=None, passwords=None, reject_rcpt=None, refuse_data=0):
        self.mails = []         # (mail_from, [rcpt], raw data bytes)
        self.imap_port = imap_port
        self.passwords = passwords or USERS
        self.reject_rcpt = reject_rcpt
        self.refuse_data = refuse_data      # how many DATA to refuse at the end (451)
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 10

            def reply(self, line):
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self):
                self.reply("220 sink ESMTP ready")
                mail_from, rcpts = None, []
                for _ in range(1000):
                    line = self.rfile.readline(8192)
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.wfile.write(b"250-sink\r\n250 8BITMIME\r\n")
                    elif verb == "MAIL":
                        mail_from = re.search(r"<(.*)>", cmd).group(1)
                        rcpts = []
                        self.reply("250 2.1.0 Ok")
                    elif verb == "RCPT":
                        rcpt = re.search(r"<(.*)>", cmd).group(1)
                        if sink.reject_rcpt and rcpt == sink.reject_rcpt:
                            self.reply("550 5.1.1 No such user here")
                        else:
                            rcpts.append(rcpt)
                            self.reply("250 2.1.5 Ok")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        data = b""
                        while not data.endswith(b"\r\n.\r\n"):
                            chunk = self.rfile.readline(1 << 20)
                            if not chunk:
                                return
                            data += chunk
                        if sink.refuse_data > 0:
                            sink.refuse_data -= 1
                            self.reply("451 4.3.0 Try again later")
                            continue
                        sink.mails.append((mail_from, rcpts, data))
                        sink.deliver(rcpts, data)
                        self.reply(SmtpSink.VERDICT)
                    elif verb == "QUIT":
                        self.reply("221 2.0.0 Bye")
                        return
                    else:
                        self.reply("502 5.5.2 Command not recognized")

        self.server = socketserver.ThreadingTCPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def deliver(self, rcpts, data):
        if self.imap_port is None:
            return
        # Undo the dot-stuffing and the final ".", as a server does.
        lines = data[:-len(b".\r\n")].split(b"\r\n")
        msg = b"\r\n".join(ln[1:] if ln.startswith(b".") else ln for ln in lines)
        for rcpt in rcpts:
            user = rcpt.split("@")[0]
            if user not in self.passwords:
                continue
            m = imaplib.IMAP4(HOST, self.imap_port, timeout=10)
            try:
                m.login(user, self.passwords[user])
                m.append("INBOX", None, None, msg)
            finally:
                m.logout()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class CountingProxy:
    """A TCP proxy in front of a server that keeps every byte the server
    sends to the client: the test's view of what crossed the network."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.down = bytearray()         # server -> client
        self.lock = threading.Lock()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.threads = []
        self.socks = []
        self.closing = False
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            s = socket.create_connection((HOST, self.target_port), timeout=30)
            with self.lock:
                self.socks += [c, s]
            for src, dst, keep in ((c, s, False), (s, c, True)):
                t = threading.Thread(target=self._pump, args=(src, dst, keep), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src, dst, keep):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if keep:
                    with self.lock:
                        self.down += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            if keep:        # the second pump of the pair closes both
                src.close()
                dst.close()

    def received(self):
        with self.lock:
            return bytes(self.down)

    def reset(self):
        with self.lock:
            self.down = bytearray()

    def drop_all(self):
        """Cuts every connection open now, as a network failure would."""
        with self.lock:
            socks, self.socks = self.socks, []
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closing = True
        self.lsock.close()


def skip_without_client(cls):
    if not os.access(client_binary(), os.X_OK):
        return unittest.skip(f"{client_binary()} is not built (make)")(cls)
    return cls


# ---------------------------------------------------------------- our server

@skip_without_client
class MailclientOurServer(unittest.TestCase):
    """mailclient against imapserver with the lab's seed mailbox:
    1 alice "hello", 2 carol "Meeting tomorrow", 3 bob "Re: hello",
    4 dave@example.org "Quarterly report"."""

    def setUp(self):
        self.server = ImapServer({"alice": seed_text(), "bob": ""})
        self.addCleanup(self.server.cleanup)
        self.server.start()
        self.port = self.server.port
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.assertTrue(self.server.alive(), "the server died; log:\n" + self.server.log_text())
        self.assertEqual(self.server.sanitizer_lines(), [])

    def pty_client(self, smtp_port=25, env=None):
        c = PtyClient(self.port, smtp_port, env=env)
        self.clients.append(c)
        return c

    def sink(self):
        s = SmtpSink(self.port)
        self.addCleanup(s.close)
        return s

    def imap(self, user="alice"):
        m = imaplib.IMAP4(HOST, self.port, timeout=10)
        m.login(user, USERS[user])
        self.addCleanup(lambda: m.logout() if m.state != "LOGOUT" else None)
        return m

    # -- start

    def test_help_exits_0_and_usage_errors_exit_2(self):
        p = subprocess.run([client_binary(), "--help"], capture_output=True, timeout=WAIT)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"usage: mailclient SERVER_IP SMTP_PORT IMAP_PORT", p.stdout)
        for args in ([], [HOST, "25"], [HOST, "x", "143"], [HOST, "25", "70000"]):
            p = subprocess.run([client_binary()] + args, capture_output=True, timeout=WAIT)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(b"usage:", p.stderr)

    def test_unreachable_server_is_an_error(self):
        s = socket.socket()
        s.bind((HOST, 0))
        port = s.getsockname()[1]
        s.close()
        status, out, err = run_piped(port, "alice\nalice123\n3\n")
        self.assertEqual(status, 1)
        self.assertIn("cannot connect", err)

    def test_wrong_password_is_said_and_asked_again(self):
        status, out, err = run_piped(self.port, "alice\nnope\nalice\nalice123\n3\n")
        self.assertEqual(status, 0, out + err)
        self.assertIn("Login failed: wrong username or password.", out)
        self.assertIn("Please try again (2 of 3 tries left).", out)
        self.assertIn("Logged in as alice.", out)
        self.assertIn("1. Send Mail\n2. Manage Mail\n3. Quit\n", out)
        self.assertTrue(out.rstrip().endswith("Goodbye."), out)

    def test_three_wrong_passwords_end_with_status_1(self):
        status, out, err = run_piped(self.port, "alice\nx\nalice\ny\nmallory\nz\nalice\nalice123\n")
        self.assertEqual(status, 1)
        self.assertEqual(out.count("Login failed: wrong username or password."), 3)
        self.assertIn("Too many failed logins.", out)
        self.assertNotIn("Logged in", out)

    def test_end_of_input_before_quit_is_status_1(self):
        status, out, err = run_piped(self.port, "alice\nalice123\n")
        self.assertEqual(status, 1)
        self.assertIn("Logged in as alice.", out)
        self.assertIn("end of input", err)
        status, out, err = run_piped(self.port, "alice\nalice123\n9\n3\n")
        self.assertEqual(status, 0)
        self.assertIn('Invalid choice "9": enter 1, 2 or 3.', out)

    def test_slow_typist_outlasting_the_login_timeout_still_logs_in(self):
        server = ImapServer({"alice": seed_text()}, limits={"login_timeout": 1})
        self.addCleanup(server.cleanup)
        server.start()
        c = PtyClient(server.port)
        self.clients.append(c)
        c.expect("Username: ")
        self.assertIsNotNone(server.wait_log(r"(?i)disconnected|timeout|timed out", 5 * SLOW),
                             server.log_text())
        c.send("alice")
        c.expect("Password: ")
        c.send("alice123")
        c.expect(r"Logged in as alice\.")
        self.assertNotIn("Login failed", c.text())
        self.assertNotIn("Cannot log in", c.text())
        c.send("3")
        self.assertEqual(c.wait_exit(), 0)

    def test_password_is_not_echoed_on_a_terminal(self):
        c = self.pty_client()
        c.expect("Username: ")
        c.send("alice")
        c.expect("Password: ")
        c.send("alice123")
        c.expect("Logged in as alice")
        c.expect("Enter your choice: ")
        self.assertIn("alice\n", c.text())          # the username is echoed
        self.assertNotIn("alice123", c.text())
        c.send("3")
        c.expect("Goodbye")
        self.assertEqual(c.wait_exit(), 0)

    # -- Manage Mail

    def test_list_shows_sender_date_subject_numbered(self):
        status, out, err = run_piped(self.port, "alice\nalice123\n2\nx\nx\n3\n")
        self.assertEqual(status, 0, err)
        self.assertIn("Your mailbox (4 mails):", out)
        rows = re.findall(r"^ +(\d+)\. (\S+) +(\d{4}-\d\d-\d\d : \d\d : \d\d)  (.*)$", out, re.M)
        self.assertEqual([(r[0], r[1], r[3]) for r in rows],
                         [("1", "alice@localhost", "hello"),
                          ("2", "carol@localhost", "Meeting tomorrow"),
                          ("3", "bob@localhost", "Re: hello"),
                          ("4", "dave@example.org", "Quarterly report")])

    def test_list_columns_are_aligned_under_a_head(self):
        status, out, err = run_piped(self.port, "alice\nalice123\n2\nx\nx\n3\n")
        self.assertEqual(status, 0, err)
        lines = out.split("Your mailbox (4 mails):\n", 1)[1].split("\n")
        head, rows = lines[0], lines[1:5]
        self.assertRegex(head, r"^ +#  Sender +Received \(UTC\) +Subject$")
        self.assertEqual(len({row.index(" 2022-") + 1 for row in rows}), 1, rows)
        date_col = rows[0].index(" 2022-") + 1
        self.assertEqual(head.index("Received"), date_col, [head] + rows)
        self.assertEqual(head.index("Sender"), rows[0].index("alice@"), [head] + rows)
        subjects = ["hello", "Meeting tomorrow", "Re: hello", "Quarterly report"]
        cols = {row.rindex(subject) for row, subject in zip(rows, subjects)}
        self.assertEqual(cols, {head.index("Subject")}, [head] + rows)

    def test_list_and_detail_show_one_time_in_the_clients_zone(self):
        # A client 5:30 east of UTC (a POSIX TZ, no zone files needed):
        # the listing and the detail's Received: give the same time, the
        # server's INTERNALDATE in the client's zone, in one format.
        m = self.imap()
        m.select("INBOX")
        typ, data = m.fetch("2", "(INTERNALDATE)")
        stamp = imaplib.Internaldate2tuple(data[0])
        self.assertIsNotNone(stamp, data)
        local = time.strftime("%Y-%m-%d : %H : %M", time.gmtime(time.mktime(stamp) + 19800))
        status, out, err = run_piped(self.port, "alice\nalice123\n2\ncarol@localhost\n\n3\n",
                                     env={"TZ": "IST-5:30"})
        self.assertEqual(status, 0, err)
        self.assertRegex(out, r"Received \(IST\)")
        self.assertRegex(out, r"\n +2\. carol@localhost +" + re.escape(local) + "  Meeting")
        self.assertIn("\nReceived: " + local + "\n", out)

    def test_filter_invalid_twice_goes_back_to_the_menu(self):
        status, out, err = run_piped(self.port, "alice\nalice123\n2\nbob\nbob@\n3\n")
        self.assertEqual(status, 0, err)
        self.assertEqual(out.count("INVALID MAIL-ID"), 2)
        after = out.split("INVALID MAIL-ID")[2]
        self.assertIn("1. Send Mail", after)
        self.assertNotIn("From:", after)

    def test_filter_invalid_then_valid_shows_the_mail(self):
        status, out, err = run_piped(self.port, "alice\nalice123\n2\nnot an address\n"
                                     "bob@localhost\n\n3\n")
        self.assertEqual(status, 0, err)
        self.assertEqual(out.count("INVALID MAIL-ID"), 1)
        self.assertIn("Mail 3 (1 of 1 from bob@localhost)", out)
        self.assertIn("From:     bob@localhost", out)
        self.assertIn("Subject:  Re: hello", out)

    def test_filter_valid_without_mail_says_no_mails_to_show(self):
        status, out, err = run_piped(self.port, "alice\nalice123\n2\nzed@nowhere.org\n3\n")
        self.assertEqual(status, 0, err)
        self.assertIn("NO MAILS TO SHOW", out)
        self.assertNotIn("INVALID MAIL-ID", out)
        self.assertIn("1. Send Mail", out.split("NO MAILS TO SHOW")[1])

    def test_empty_mailbox_asks_for_no_sender(self):
        # bob has no mail: the listing says so, NO MAILS TO SHOW, and the
        # menu comes back without asking for a sender (the "3" that
        # follows is the menu's Quit, not a sender to call invalid).
        status, out, err = run_piped(self.port, "bob\nbob123\n2\n3\n")
        self.assertEqual(status, 0, out + err)
        self.assertIn("Your mailbox is empty.\nNO MAILS TO SHOW\n", out)
        self.assertNotIn("Enter the sender's mail address", out)
        self.assertNotIn("INVALID MAIL-ID", out)
        self.assertIn("1. Send Mail", out.split("NO MAILS TO SHOW")[1])
        self.assertTrue(out.rstrip().endswith("Goodbye."), out)

    def test_show_gives_the_whole_mail_with_dots_unstuffed(self):
        status, out, err = run_piped(self.port, "alice\nalice123\n2\ncarol@localhost\n\n3\n")
        self.assertEqual(status, 0, err)
        m = re.search(r"Mail 2 \(1 of 1 from carol@localhost\) =+\n(.*?)\nEnter the number",
                      out, re.S)
        self.assertIsNotNone(m, out)
        shown = m.group(1)
        self.assertIn("From:     carol@localhost\n", shown)
        self.assertIn("To:       alice@localhost\n", shown)
        self.assertIn("Subject:  Meeting tomorrow\n", shown)
        self.assertIn("Received: 2022-03-11 : 09 : 05\n", shown)
        self.assertIn("\nHi Alice,\n.hidden line starts with a dot\n.\n..two dots\nsee you\n"
                      "carol\n", shown)

    def test_delete_by_number_removes_it_on_the_server(self):
        status, out, err = run_piped(self.port, "alice\nalice123\n2\nbob@localhost\n3\n2\nx\nx\n3\n")
        self.assertEqual(status, 0, err)
        self.assertIn("Enter the number of a mail to delete it (3), or press Enter", out)
        self.assertIn("Mail 3 deleted.", out)
        second = out.split("Mail 3 deleted.")[1]
        self.assertIn("Your mailbox (3 mails):", second)
        self.assertNotIn("bob@localhost", second)
        m = self.imap()
        m.select("INBOX")
        typ, data = m.search(None, "FROM", "bob@localhost")
        self.assertEqual(data[0], b"")
        typ, data = m.search(None, "ALL")
        self.assertEqual(len(data[0].split()), 3)

    def test_bad_delete_number_and_enter_keep_the_mail(self):
        status, out, err = run_piped(self.port, "alice\nalice123\n2\nbob@localhost\n7\n\n3\n")
        self.assertEqual(status, 0, err)
        self.assertIn('There is no mail number "7" among those shown.', out)
        self.assertNotIn("deleted", out)
        m = self.imap()
        m.select("INBOX")
        self.assertEqual(len(m.search(None, "ALL")[1][0].split()), 4)

    def test_show_decodes_mime_and_lists_attachments(self):
        m = self.imap()
        msg = (b"From: =?UTF-8?Q?J=C3=BCrgen?= <jurgen@example.org>\r\n"
               b"To: alice@localhost\r\n"
               b"Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n"
               b"Date: Thu, 10 Mar 2022 14:30:00 +0530\r\n"
               b"MIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
               b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
               b"Sch=C3=B6ne Gr=C3=BC=C3=9Fe, a very long line that is=\r\n"
               b" continued\r\n"
               b"--b1\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\n"
               b"Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n"
               + b"QUJD" * 300 + b"\r\n--b1--\r\n")
        m.append("INBOX", None, None, msg)
        status, out, err = run_piped(self.port, "alice\nalice123\n2\njurgen@example.org\n\n3\n")
        self.assertEqual(status, 0, err)
        self.assertIn("jurgen@example.org  ", out)           # the listing
        self.assertIn("Grüße", out)
        self.assertIn("From:     Jürgen <jurgen@example.org>", out)
        self.assertIn("Subject:  Grüße", out)
        self.assertIn("Date:     2022-03-10 : 09 : 00", out)    # local time (TZ=UTC)
        self.assertIn("Attached: report.pdf (application/pdf, 900 bytes)", out)
        self.assertIn("Schöne Grüße, a very long line that is continued", out)
        self.assertNotIn("QUJD", out)

    # -- Send Mail

    def test_send_mail_goes_over_smtp_with_date_message_id_and_dots(self):
        sink = self.sink()
        script = ("alice\nalice123\n1\nFrom: alice@localhost\nTo: bob@localhost\n"
                  "Subject: Lunch\nline one\n.starts with a dot\n..two\n\nlast\n.\n3\n")
        status, out, err = run_piped(self.port, script, smtp_port=sink.port)
        self.assertEqual(status, 0, err)
        self.assertIn(f"Mail sent successfully (server: {SmtpSink.VERDICT}).", out)
        self.assertEqual(len(sink.mails), 1)
        mail_from, rcpts, data = sink.mails[0]
        self.assertEqual(mail_from, "alice@localhost")
        self.assertEqual(rcpts, ["bob@localhost"])
        head, body = data.split(b"\r\n\r\n", 1)
        self.assertIn(b"From: alice@localhost\r\n", head + b"\r\n")
        self.assertIn(b"To: bob@localhost\r\n", head + b"\r\n")
        self.assertIn(b"Subject: Lunch\r\n", head + b"\r\n")
        self.assertRegex(head, rb"\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}")
        self.assertRegex(head, rb"\r\nMessage-ID: <[^<>@\s]+@localhost>")
        self.assertEqual(body, b"line one\r\n..starts with a dot\r\n...two\r\n\r\nlast\r\n.\r\n")
        self.assertNotIn(b"\n", data.replace(b"\r\n", b""))   # CRLF only

    def test_send_mail_checks_addresses_with_a_second_chance(self):
        sink = self.sink()
        script = ("alice\nalice123\n1\n"
                  "From: bob@localhost\nFrom: alice@localhost\n"    # not alice's, then good
                  "To: bob-at-localhost\nTo: bob@localhost\n"       # invalid, then good
                  "Subject: hi\nbody\n.\n"
                  "1\nFrom: alice\nFrom: carol@localhost\n"         # two bad From: not sent
                  "3\n")
        status, out, err = run_piped(self.port, script, smtp_port=sink.port)
        self.assertEqual(status, 0, out + err)
        self.assertIn('Invalid From line: "bob@localhost" is not your address: you are logged '
                      'in as alice.', out)
        self.assertIn('Invalid To line: "bob-at-localhost" is not a mail address of the form '
                      'user@domain.', out)
        self.assertIn("Please enter the From line again:", out)
        self.assertIn("Mail sent successfully", out)
        self.assertIn("Mail not sent.", out)
        self.assertEqual(len(sink.mails), 1)

    def test_send_mail_shows_the_servers_refusal(self):
        s = SmtpSink(self.port, reject_rcpt="nobody@localhost")
        self.addCleanup(s.close)
        script = ("alice\nalice123\n1\nFrom: alice@localhost\nTo: nobody@localhost\n"
                  "Subject: x\ny\n.\nd\n3\n")
        status, out, err = run_piped(self.port, script, smtp_port=s.port)
        self.assertEqual(status, 0, err)
        self.assertIn("Mail not sent: the recipient nobody@localhost refused: "
                      "550 5.1.1 No such user here", out)
        self.assertEqual(s.mails, [])

    def test_send_mail_without_smtp_server_says_so(self):
        s = socket.socket()
        s.bind((HOST, 0))
        port = s.getsockname()[1]
        s.close()
        script = ("alice\nalice123\n1\nFrom: alice@localhost\nTo: bob@localhost\n"
                  "Subject: x\ny\n.\nd\n3\n")
        status, out, err = run_piped(self.port, script, smtp_port=port)
        self.assertEqual(status, 0, err)
        self.assertRegex(out, r"Mail not sent: cannot connect to 127\.0\.0\.1 port \d+")

    LONG_LINE = "".join(f"{i:04d}=word " for i in range(300))       # 3,000 octets

    def test_refused_mail_is_sent_again_on_r(self):
        s = SmtpSink(self.port, refuse_data=1)
        self.addCleanup(s.close)
        script = ("alice\nalice123\n1\nFrom: alice@localhost\nTo: bob@localhost\n"
                  "Subject: again\nkeep me\n.\nr\n3\n")
        status, out, err = run_piped(self.port, script, smtp_port=s.port)
        self.assertEqual(status, 0, out + err)
        self.assertIn("Mail not sent: ", out)
        self.assertIn("451 4.3.0 Try again later", out)
        self.assertIn("type R to try again, S to save it to a file, D to discard it: ", out)
        self.assertIn(f"Mail sent successfully (server: {SmtpSink.VERDICT}).",
                      out.split("451 4.3.0")[1])
        self.assertEqual(len(s.mails), 1)
        self.assertIn(b"\r\n\r\nkeep me\r\n", s.mails[0][2])

    def _closed_port(self):
        sock = socket.socket()
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
        sock.close()
        return port

    def test_unsent_mail_is_saved_to_a_file_as_typed(self):
        home = tempfile.mkdtemp(prefix="mailclient-home-")
        self.addCleanup(shutil.rmtree, home, True)
        typed = ("From: alice@localhost\nTo: bob@localhost, carol@localhost\n"
                 "Subject: Grüße\n" + self.LONG_LINE + "\nzweite Zeile: schön\n")
        # S saves it; then the same mail once more, and the input ends
        # at the question: it is saved without being asked.
        for script, status_wanted in (("alice\nalice123\n1\n" + typed + ".\nx\ns\n3\n", 0),
                                      ("alice\nalice123\n1\n" + typed + ".\n", 1)):
            status, out, err = run_piped(self.port, script, smtp_port=self._closed_port(),
                                         env={"HOME": home})
            self.assertEqual(status, status_wanted, out + err)
            if status == 0:     # "x" is no answer: asked again
                self.assertIn("Please type R, S or D.", out)
            self.assertRegex(out, r"Mail not sent: cannot connect to 127\.0\.0\.1 port \d+")
            m = re.search(r"Mail saved in (\S+) \(paste it into Send Mail to send it again\)\.",
                          out)
            self.assertIsNotNone(m, out)
            self.assertEqual(os.path.dirname(m.group(1)), home)
            with open(m.group(1), encoding="utf-8") as f:
                self.assertEqual(f.read(), typed + ".\n")
            self.assertEqual(os.stat(m.group(1)).st_mode & 0o777, 0o600)
        self.assertEqual(len(os.listdir(home)), 2)

    def test_discarded_mail_is_said(self):
        script = ("alice\nalice123\n1\nFrom: alice@localhost\nTo: bob@localhost\n"
                  "Subject: x\ny\n.\nd\n3\n")
        status, out, err = run_piped(self.port, script, smtp_port=self._closed_port())
        self.assertEqual(status, 0, out + err)
        self.assertIn("Mail discarded.", out)

    def test_long_line_and_utf8_body_go_quoted_printable(self):
        sink = self.sink()
        script = ("alice\nalice123\n1\nFrom: alice@localhost\nTo: bob@localhost\n"
                  "Subject: long\n" + self.LONG_LINE + "\nGrüße\n.\n3\n")
        status, out, err = run_piped(self.port, script, smtp_port=sink.port)
        self.assertEqual(status, 0, out + err)
        self.assertIn("Mail sent successfully", out)
        data = sink.mails[0][2]
        head, body = data.split(b"\r\n\r\n", 1)
        head += b"\r\n"
        self.assertIn(b"\r\nMIME-Version: 1.0\r\n", head)
        self.assertIn(b"\r\nContent-Type: text/plain; charset=UTF-8\r\n", head)
        self.assertIn(b"\r\nContent-Transfer-Encoding: quoted-printable\r\n", head)
        self.assertLessEqual(max(len(line) for line in data.split(b"\r\n")), 76)
        # bob reads it back as typed.
        status, out, err = run_piped(self.port, "bob\nbob123\n2\nalice@localhost\n\n3\n")
        self.assertEqual(status, 0, out + err)
        self.assertIn("\n" + self.LONG_LINE + "\nGrüße\n", out)

    def test_quoted_printable_and_base64_text_from_others_is_decoded(self):
        m = self.imap()
        m.append("INBOX", None, None,
                 b"From: erin@example.org\r\nTo: alice@localhost\r\nSubject: b64\r\n"
                 b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 b"Content-Transfer-Encoding: base64\r\n\r\n"
                 b"YmFzZSA2NCB0ZXh0OiBHcsO8w59lCg==\r\n")
        m.append("INBOX", None, None,
                 b"From: erin@example.org\r\nTo: alice@localhost\r\nSubject: qp\r\n"
                 b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
                 b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                 b"un caf=E9 tr=E8s=\r\n long\r\n")
        status, out, err = run_piped(self.port, "alice\nalice123\n2\nerin@example.org\n\n3\n")
        self.assertEqual(status, 0, out + err)
        self.assertIn("\nbase 64 text: Grüße\n", out)
        self.assertIn("\nun café très long\n", out)
        self.assertNotIn("YmFzZSA2", out)

    # -- two devices

    def test_two_terminals_see_each_others_changes(self):
        """The seed's scenario: one user on two terminals. A mail sent
        arrives, both list it; one deletes a mail and the other is told
        at once, and its next listing shows the server's state."""
        sink = self.sink()
        a = self.pty_client(smtp_port=sink.port)
        b = self.pty_client(smtp_port=sink.port)
        a.login()
        b.login()

        # B sends alice a mail; A, idle at its menu, is told.
        b.send("1")
        b.expect(r'ending with a line holding a single "\."')
        for line in ("From: alice@localhost", "To: alice@localhost", "Subject: note to self",
                     "remember the milk", "."):
            b.send(line)
        b.expect(r"Mail sent successfully")
        a.expect(r"\[notice\] New mail from alice@localhost: note to self", NOTICE_WAIT)
        a.expect(r"Enter your choice: ")

        # A lists: five mails now.
        a.send("2")
        a.expect(r"Your mailbox \(5 mails\):")
        a.expect(r"5\. alice@localhost +\d{4}-\d\d-\d\d : \d\d : \d\d  note to self")
        a.expect(r"Enter the sender's mail address: ")
        a.send("bob")
        a.expect(r"INVALID MAIL-ID")
        a.send("bob@")
        a.expect(r"INVALID MAIL-ID")
        a.expect(r"Enter your choice: ")

        # B shows bob's mail and deletes it; A is told.
        b.send("2")
        b.expect(r"Enter the sender's mail address: ")
        b.send("bob@localhost")
        b.expect(r"Mail 3 \(1 of 1 from bob@localhost\)")
        b.expect(r"second paragraph")
        b.expect(r"delete it \(3\), or press Enter to go back: ")
        b.send("3")
        b.expect(r"Mail 3 deleted\.")
        a.expect(r'\[notice\] Mail from bob@localhost "Re: hello" was deleted on another '
                 r"device\.", NOTICE_WAIT)
        b.absent(r"\[notice\]")      # no notice of its own deletion

        # A's listing is the server's state now.
        a.send("2")
        a.expect(r"Your mailbox \(4 mails\):")
        listing = a.expect(r"(?s)(.*?)Enter the sender's mail address: ").group(1)
        self.assertNotIn(b"bob@localhost", listing)
        a.send("nobody@nowhere.org")
        a.expect("NO MAILS TO SHOW")
        a.send("3")
        b.send("3")
        self.assertEqual(a.wait_exit(), 0)
        self.assertEqual(b.wait_exit(), 0)

    def _new_mail(self, subject):
        m = self.imap()
        m.append("INBOX", None, None, b"From: erin@example.org\r\nSubject: " +
                 subject.encode() + b"\r\n\r\nhi\r\n")

    def test_notice_while_typing_is_shown_apart_and_the_line_drawn_again(self):
        a = self.pty_client()
        a.login()
        a.send("2")
        a.expect(r"Enter the sender's mail address: ")
        os.write(a.master, b"bob@locx\x7f")        # typed, one key rubbed out, no Enter
        a.expect(r"bob@locx\x08 \x08")
        self._new_mail("while typing")
        # The notice on a line of its own, then the prompt and the
        # typed text again, the cursor after it.
        a.expect(r"\n\[notice\] New mail from erin@example\.org: while typing\n"
                 r"Enter the sender's mail address: bob@loc$", NOTICE_WAIT)
        os.write(a.master, b"alhost\n")
        a.expect(r"Mail 3 \(1 of 1 from bob@localhost\)")
        a.expect(r"or press Enter to go back: ")
        a.send("")
        a.expect(r"Enter your choice: ")
        a.send("3")
        self.assertEqual(a.wait_exit(), 0)

    def test_notice_on_a_wide_terminal_clears_the_prompt_line(self):
        a = self.pty_client()
        fcntl.ioctl(a.master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        a.login()
        os.write(a.master, b"junk\x15")           # ^U erases the line
        a.expect(r"junk(\x08 \x08){4}")
        os.write(a.master, b"2")
        a.expect(r"2")
        self._new_mail("wide")
        # "\r" (dropped by expect) and clear-to-end-of-line: the notice
        # takes the prompt's line, which comes back under it.
        a.expect(r"\x1b\[K\[notice\] New mail from erin@example\.org: wide\n"
                 r"Enter your choice: 2$", NOTICE_WAIT)
        os.write(a.master, b"\n")
        a.expect(r"Your mailbox \(5 mails\):")
        a.send("x")
        a.send("x")
        a.expect(r"Enter your choice: ")
        a.send("3")
        self.assertEqual(a.wait_exit(), 0)

    def test_the_terminal_is_restored_when_stopped_and_at_exit(self):
        a = self.pty_client()
        canonical = bool(termios.tcgetattr(a.master)[3] & termios.ICANON)
        a.login()
        self.assertFalse(termios.tcgetattr(a.master)[3] & termios.ICANON)    # the editor's
        os.write(a.master, b"2")
        a.expect("2")
        # ^Z (the pty is not the client's controlling terminal here, so
        # the signal is sent as the terminal would; in its own session
        # the client is not stopped, but its handler runs).
        os.kill(a.proc.pid, signal.SIGTSTP)
        deadline = time.monotonic() + WAIT
        while (bool(termios.tcgetattr(a.master)[3] & termios.ICANON) != canonical
               and time.monotonic() < deadline):
            time.sleep(0.05)
        self.assertEqual(bool(termios.tcgetattr(a.master)[3] & termios.ICANON), canonical)
        os.kill(a.proc.pid, signal.SIGCONT)
        a.expect(r"\nEnter your choice: 2$")         # drawn again, typed text kept
        self.assertFalse(termios.tcgetattr(a.master)[3] & termios.ICANON)
        os.write(a.master, b"\n")
        a.expect(r"Your mailbox \(4 mails\):")
        a.send("x")
        a.send("x")
        a.expect(r"Enter your choice: ")
        a.send("3")
        self.assertEqual(a.wait_exit(), 0)
        self.assertEqual(bool(termios.tcgetattr(a.master)[3] & termios.ICANON), canonical)

    def test_notices_wait_while_a_mail_is_typed(self):
        sink = self.sink()
        a = self.pty_client(smtp_port=sink.port)
        a.login()
        a.send("1")
        a.expect(r'ending with a line holding a single "\."')
        a.send("From: alice@localhost")
        os.write(a.master, b"To: bob@loc")
        a.expect(r"To: bob@loc")
        self._new_mail("held")
        a.absent(r"\[notice\]", 2.0 * SLOW)
        os.write(a.master, b"alhost\n")
        for line in ("Subject: s", "body", "."):
            a.send(line)
        a.expect(r"\nbody\n\.\n\[notice\] New mail from erin@example\.org: held\n"
                 r"Mail sent successfully", NOTICE_WAIT)
        self.assertEqual(len(sink.mails), 1)
        self.assertIn(b"To: bob@localhost\r\n", sink.mails[0][2])
        a.expect(r"Enter your choice: ")
        a.send("3")
        self.assertEqual(a.wait_exit(), 0)

    def test_delete_of_a_mail_already_deleted_elsewhere(self):
        a = self.pty_client()
        a.login()
        a.send("2")
        a.expect(r"Enter the sender's mail address: ")
        a.send("dave@example.org")
        a.expect(r"or press Enter to go back: ")
        m = self.imap()
        m.select("INBOX")
        m.store("4", "+FLAGS", "\\Deleted")
        m.expunge()
        a.expect(r'\[notice\] Mail from dave@example.org "Quarterly report" was deleted on '
                 r"another device\.", NOTICE_WAIT)
        a.send("4")
        a.expect(r"Mail 4 was already deleted on another device\.")
        a.expect(r"Enter your choice: ")
        a.send("3")
        self.assertEqual(a.wait_exit(), 0)

    # -- dropped connections

    def _fixed_port_restart(self):
        """Restarts the server on the same port (the config says port 0,
        so pin the one it got)."""
        with open(self.server.conf) as f:
            conf = f.read()
        with open(self.server.conf, "w") as f:
            f.write(conf.replace("port = 0;", f"port = {self.port};"))
        self.server.stop()
        deadline = time.monotonic() + 5
        while True:
            try:
                self.server.start()
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def test_dropped_connection_is_reestablished_quietly(self):
        proxy = CountingProxy(self.port)
        self.addCleanup(proxy.close)
        a = PtyClient(proxy.port)
        self.clients.append(a)
        a.login()
        proxy.drop_all()
        # While it is away, another device deletes a mail: after the
        # quiet reconnection that change is announced like any other.
        m = self.imap()
        m.select("INBOX")
        m.store("4", "+FLAGS", "\\Deleted")
        m.expunge()
        a.expect(r'\[notice\] Mail from dave@example.org "Quarterly report" was deleted on '
                 r"another device\.", NOTICE_WAIT)
        a.send("2")
        a.expect(r"Your mailbox \(3 mails\):")
        a.expect(r"Enter the sender's mail address: ")
        self.assertNotIn("connection", a.text().lower())
        self.assertNotIn("lost", a.text().lower())
        a.send("bob@localhost")
        a.expect(r"Mail 3 \(1 of 1 from bob@localhost\)")
        a.send("")
        a.expect(r"Enter your choice: ")
        # A drop found by a command (not while idle) is mended the same way.
        proxy.drop_all()
        a.send("2")
        a.expect(r"Your mailbox \(3 mails\):")
        a.send("x")
        a.send("x")
        a.expect(r"Enter your choice: ")
        self.assertNotIn("lost", a.text().lower())
        a.send("3")
        self.assertEqual(a.wait_exit(), 0)

    def test_server_gone_is_told_to_the_user(self):
        a = self.pty_client()
        a.login()
        self.server.stop()
        a.expect(r"The connection to the IMAP server was lost and could not be "
                 r"re-established: cannot connect", NOTICE_WAIT)
        a.send("2")
        a.expect(r"The connection to the IMAP server was lost and could not be "
                 r"re-established: cannot connect")
        a.expect(r"Enter your choice: ")
        # The server is back: the next Manage Mail works.
        self._fixed_port_restart()
        a.send("2")
        a.expect(r"Your mailbox \(4 mails\):")
        a.send("x")
        a.send("x")
        a.expect(r"Enter your choice: ")
        a.send("3")
        self.assertEqual(a.wait_exit(), 0)

    def test_server_down_a_while_is_told_apart_and_reconnected_in_the_background(self):
        a = self.pty_client()
        a.login()
        self.server.stop()
        # On a line of its own (not glued to the prompt), the prompt
        # printed again after it.
        a.expect(r"\n\[notice\] The connection to the IMAP server was lost "
                 r"and could not be re-established: cannot connect[^\n]*Trying again in the "
                 r"background\.\nEnter your choice: $", NOTICE_WAIT)
        self.assertIn("Enter your choice: \n[notice] The connection", a.text())
        # The server comes back: without a key pressed the client is
        # connected again, says so, and is told of changes (IDLE again).
        self._fixed_port_restart()
        a.expect(r"\n\[notice\] The connection to the IMAP server is back\.\n"
                 r"Enter your choice: $", NOTICE_WAIT + 5)
        m = self.imap()
        m.append("INBOX", None, None, b"From: erin@example.org\r\nSubject: after the break"
                 b"\r\n\r\nhi\r\n")
        a.expect(r"\n\[notice\] New mail from erin@example\.org: after the break\n"
                 r"Enter your choice: $", NOTICE_WAIT)
        self.assertEqual(a.text().count("was lost"), 1, a.text())
        a.send("3")
        self.assertEqual(a.wait_exit(), 0)


@skip_without_client
class MailclientOurSmtp(unittest.TestCase):
    """Send Mail through our own SMTP listener (imapserver with
    smtp.enabled), then read the mail back over IMAP: the whole lab."""

    def setUp(self):
        self.server = ImapServer({"alice": seed_text(), "bob": ""})
        self.addCleanup(self.server.cleanup)
        with open(self.server.conf, "a") as f:
            f.write('smtp: { enabled = true; address = "127.0.0.1"; port = 0; '
                    'domain = "localhost"; };\n')
        self.server.start()
        self.clients = []
        line = self.server.wait_log(r"smtp listening on 127\.0\.0\.1:\d+", 5)
        if line is None:
            self.skipTest("this imapserver hosts no SMTP listener (smtp.enabled)")
        self.smtp_port = int(re.search(r"smtp listening on 127\.0\.0\.1:(\d+)", line).group(1))
        imap_line = self.server.wait_log(r"(?<!smtp )listening on 127\.0\.0\.1:\d+", 5)
        self.imap_port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", imap_line).group(1))

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.assertTrue(self.server.alive(), "the server died; log:\n" + self.server.log_text())
        self.assertEqual(self.server.sanitizer_lines(), [])

    def test_mail_sent_by_one_user_is_read_by_the_other(self):
        bob = PtyClient(self.imap_port, self.smtp_port)
        self.clients.append(bob)
        bob.login("bob")
        script = ("alice\nalice123\n1\nFrom: alice@localhost\nTo: bob@localhost\n"
                  "Subject: lab done\nfirst line\n.dotted line\nlast\n.\n3\n")
        status, out, err = run_piped(self.imap_port, script, smtp_port=self.smtp_port)
        self.assertEqual(status, 0, out + err)
        self.assertRegex(out, r"Mail sent successfully \(server: 250[ -]")
        # Bob, idle at his menu, is told; his listing and filter show it.
        bob.expect(r"\[notice\] New mail from alice@localhost: lab done", NOTICE_WAIT)
        bob.send("2")
        bob.expect(r"Your mailbox \(1 mail\):")
        listed = bob.expect(r"1\. alice@localhost  (\d{4}-\d\d-\d\d : \d\d : \d\d)  lab done")
        bob.expect(r"Enter the sender's mail address: ")
        bob.send("alice@localhost")
        bob.expect(r"Mail 1 \(1 of 1 from alice@localhost\)")
        shown = bob.expect(r"(?s)(.*)Enter the number of a mail").group(1).decode()
        self.assertIn("From:     alice@localhost", shown)
        self.assertIn("To:       bob@localhost", shown)
        self.assertIn("Subject:  lab done", shown)
        # The mail came through SMTP (an RFC 5321 Received trace field):
        # the detail shows the time the listing shows, in its format.
        self.assertIn("\nReceived: " + listed.group(1).decode() + "\n", shown)
        self.assertRegex(shown, r"\nDate:     \d{4}-\d\d-\d\d : \d\d : \d\d\n")
        self.assertIn("\nfirst line\n.dotted line\nlast\n", shown)
        bob.send("1")
        bob.expect(r"Mail 1 deleted\.")
        bob.send("3")
        self.assertEqual(bob.wait_exit(), 0)


    def test_a_typed_line_of_3000_octets_goes_through_our_smtp(self):
        # Our SMTP listener refuses a line over 1,000 octets (RFC 5321
        # 4.5.3.1.6): the client encodes the body, and the mail is read
        # back as it was typed.
        long_line = "".join(f"{i:04d}=word " for i in range(300))
        script = ("alice\nalice123\n1\nFrom: alice@localhost\nTo: bob@localhost\n"
                  "Subject: long\n" + long_line + "\nGrüße\n.\n3\n")
        status, out, err = run_piped(self.imap_port, script, smtp_port=self.smtp_port)
        self.assertEqual(status, 0, out + err)
        self.assertRegex(out, r"Mail sent successfully \(server: 250[ -]")
        status, out, err = run_piped(self.imap_port, "bob\nbob123\n2\nalice@localhost\n\n3\n")
        self.assertEqual(status, 0, out + err)
        self.assertIn("\n" + long_line + "\nGrüße\n", out)


@skip_without_client
class MailclientBigMailbox(unittest.TestCase):
    """Listing 1,000 mails fetches headers only."""

    COUNT = 1000
    MARK = "BODYMARK"

    def test_listing_1000_mails_moves_no_message_body(self):
        body = [f"{self.MARK} {i:04d} " + "x" * 60 for i in range(40)]     # ~3 KB each
        mails = []
        for i in range(self.COUNT):
            mails.append("".join([
                f"From: sender{i % 7}@example.org\n", "To: alice@localhost\n",
                f"Subject: mail number {i}\n", "Received: 2022-03-10 : 14 : 30\n",
                *(line + "\n" for line in body), ".\n"]))
        server = ImapServer({"alice": "".join(mails)}, log_level="info")
        self.addCleanup(server.cleanup)
        server.start()
        proxy = CountingProxy(server.port)
        self.addCleanup(proxy.close)

        status, out, err = run_piped(proxy.port, "alice\nalice123\n2\nx\nx\n3\n")
        self.assertEqual(status, 0, err)
        rows = re.findall(r"^ *\d+\. sender\d@example\.org  .*  mail number (\d+)$", out, re.M)
        self.assertEqual(len(rows), self.COUNT)
        self.assertEqual(rows[-1], str(self.COUNT - 1))
        down = proxy.received()
        body_bytes = self.COUNT * sum(len(line) + 2 for line in body)
        self.assertNotIn(self.MARK.encode(), down, "a message body crossed the network")
        self.assertLess(len(down), body_bytes // 5,
                        f"{len(down)} bytes received for a listing")

        # The measurement does see bodies: showing sender3's mails
        # moves theirs (and only theirs).
        proxy.reset()
        status, out, err = run_piped(proxy.port, "alice\nalice123\n2\nsender3@example.org\n\n3\n")
        self.assertEqual(status, 0, err)
        numbers = [int(n) for n in re.findall(r"Mail (\d+) \(\d+ of \d+ from ", out)]
        # Each is headed by its number in the listing.
        self.assertEqual(numbers, [i + 1 for i in range(self.COUNT) if i % 7 == 3])
        self.assertIn(self.MARK.encode(), proxy.received())


# ---------------------------------------------------------------- Dovecot

@skip_without_client
class MailclientDovecot(unittest.TestCase):
    """The same client, unchanged, against a real Dovecot."""

    def setUp(self):
        if dovecot_support.dovecot_binary() is None:
            self.skipTest("dovecot is not installed (apt-get install dovecot-imapd)")
        self.dc = dovecot_support.DovecotServer(users={"alice": "alice123"})
        self.addCleanup(self.dc.cleanup)
        self.dc.start()
        self.clients = []
        self.dc.append("alice", [
            b"From: bob@example.org\r\nTo: alice@example.org\r\nSubject: hello\r\n"
            b"Date: Thu, 10 Mar 2022 14:30:00 +0000\r\n\r\nfirst line\r\n.dot line\r\n",
            b"From: Carol <carol@example.org>\r\nTo: alice@example.org\r\n"
            b"Subject: =?UTF-8?Q?Caf=C3=A9?=\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n"
            b"--zz\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\nun caf=E9\r\n"
            b"--zz\r\nContent-Type: image/png\r\nContent-Disposition: attachment; "
            b"filename=\"cup.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            b"iVBORw0KGgo=\r\n--zz--\r\n",
            b"From: bob@example.org\r\nTo: alice@example.org\r\nSubject: again\r\n\r\nsecond\r\n",
        ])

    def tearDown(self):
        for c in self.clients:
            c.close()

    def test_dovecot_list_show_delete(self):
        status, out, err = run_piped(self.dc.port, "alice\nalice123\n2\nbob\nbob@\n"
                                     "2\nnobody@example.org\n"
                                     "2\ncarol@example.org\n\n"
                                     "2\nbob@example.org\n3\n3\n")
        self.assertEqual(status, 0, out + err + self.dc.log_text())
        self.assertIn("Your mailbox (3 mails):", out)
        self.assertRegex(out, r"1\. bob@example\.org +\d{4}-\d\d-\d\d : \d\d : \d\d  hello\n")
        self.assertRegex(out, r"2\. carol@example\.org  .*  Café\n")
        self.assertEqual(out.count("INVALID MAIL-ID"), 2)
        self.assertIn("NO MAILS TO SHOW", out)
        self.assertIn("From:     Carol <carol@example.org>", out)
        self.assertIn("Attached: cup.png (image/png, 8 bytes)", out)
        self.assertIn("\nun café\n", out)
        self.assertIn("Mail 1 (1 of 2 from bob@example.org)", out)
        self.assertIn("Mail 3 (2 of 2 from bob@example.org)", out)
        self.assertIn("\nfirst line\n.dot line\n", out)
        self.assertIn("Mail 3 deleted.", out)
        m = self.dc.imap()
        m.select("INBOX")
        typ, data = m.search(None, "SUBJECT", "again")
        self.assertEqual(data[0], b"")
        self.assertEqual(len(m.search(None, "ALL")[1][0].split()), 2)
        m.logout()

    def test_dovecot_listing_fetches_no_body(self):
        status, out, err = run_piped(self.dc.port, "alice\nalice123\n2\nx\nx\n3\n")
        self.assertEqual(status, 0, err)
        self.assertIn("Your mailbox (3 mails):", out)
        # Dovecot counts the bodies it sent in its logout line.
        deadline = time.monotonic() + WAIT
        line = None
        while time.monotonic() < deadline and line is None:
            for ln in self.dc.log_text(200).splitlines():
                if "imap(alice)" in ln and "Logged out" in ln and "hdr_count" in ln:
                    line = ln
            time.sleep(0.05)
        self.assertIsNotNone(line, self.dc.log_text())
        self.assertIn("body_count=0 body_bytes=0", line)

    def test_dovecot_two_terminals_see_a_deletion(self):
        a = PtyClient(self.dc.port)
        b = PtyClient(self.dc.port)
        self.clients += [a, b]
        a.login()
        b.login()
        b.send("2")
        b.expect(r"Enter the sender's mail address: ")
        b.send("carol@example.org")
        b.expect(r"delete it \(2\), or press Enter to go back: ")
        b.send("2")
        b.expect(r"Mail 2 deleted\.")
        a.expect(r'\[notice\] Mail from carol@example\.org "Café" was deleted on another '
                 r"device\.", NOTICE_WAIT)
        self.dc.append("alice", b"From: dan@example.org\r\nSubject: late\r\n\r\nx\r\n")
        a.expect(r"\[notice\] New mail from dan@example\.org: late", NOTICE_WAIT)
        b.expect(r"\[notice\] New mail from dan@example\.org: late", NOTICE_WAIT)
        a.send("3")
        b.send("3")
        self.assertEqual(a.wait_exit(), 0)
        self.assertEqual(b.wait_exit(), 0)


if __name__ == "__main__":
    unittest.main()
