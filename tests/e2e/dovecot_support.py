"""A throwaway Dovecot for the end-to-end tests: its own config, users,
Maildirs, sockets and log in one temp folder, IMAP on a free loopback
port, plaintext auth allowed (no TLS), mail seeded by IMAP APPEND.

    with DovecotServer(users={"alice": "alice123"}) as dc:
        dc.append("alice", raw_message_bytes)
        ... talk to 127.0.0.1:dc.port ...

dovecot_binary() is None when Dovecot is not installed (the tests skip
then). Only the Python standard library is used."""

import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HOST = "127.0.0.1"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def dovecot_binary():
    for path in (os.environ.get("DOVECOT", ""), "/usr/sbin/dovecot", "/usr/local/sbin/dovecot"):
        if path and os.access(path, os.X_OK):
            return path
    return None


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class DovecotServer:
    """One dovecot master process (foreground, -F) and its children."""

    def __init__(self, users=None):
        self.binary = dovecot_binary()
        if self.binary is None:
            raise RuntimeError("dovecot is not installed")
        self.users = dict(users or {"alice": "alice123"})
        self.dir = tempfile.mkdtemp(prefix="dovecot-e2e-")
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log = os.path.join(self.dir, "dovecot.log")
        self.mail = os.path.join(self.dir, "mail")
        self.port = None
        self.proc = None
        os.makedirs(self.mail)
        os.makedirs(os.path.join(self.dir, "run"))
        os.makedirs(os.path.join(self.dir, "state"))
        with open(os.path.join(self.dir, "users"), "w") as f:
            for user, password in self.users.items():
                f.write(f"{user}:{{PLAIN}}{password}\n")

    def _write_config(self):
        # Mail processes run as the current user; as root, as the
        # unprivileged "nobody" that owns the mail folder (Dovecot
        # refuses to give mail access to uid 0).
        uid, gid = os.getuid(), os.getgid()
        if uid == 0:
            pw = pwd.getpwnam("nobody")
            uid, gid = pw.pw_uid, pw.pw_gid
            os.chown(self.mail, uid, gid)
        login_user = "dovenull" if _user_exists("dovenull") else pwd.getpwuid(os.getuid()).pw_name
        internal_user = "dovecot" if _user_exists("dovecot") else pwd.getpwuid(os.getuid()).pw_name
        d = self.dir
        conf = f"""# written by tests/e2e/dovecot_support.py
base_dir = {d}/run
state_dir = {d}/state
log_path = {self.log}
info_log_path = {self.log}
protocols = imap
listen = {HOST}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{self.mail}/%u/Maildir
mail_privileged_group =
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  imap_idle_notify_interval = 1 secs
}}
"""
        with open(self.conf, "w") as f:
            f.write(conf)

    def start(self):
        self.port = _free_port()
        self._write_config()
        self.proc = subprocess.Popen([self.binary, "-c", self.conf, "-F"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode("utf-8", "replace")
                raise RuntimeError(f"dovecot exited with status {self.proc.returncode}:\n"
                                   f"{out}\n{self.log_text()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1.0) as s:
                    s.settimeout(2.0)
                    if s.recv(200).startswith(b"* OK"):
                        return self.port
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dovecot did not answer on its port within "
                           f"{START_TIMEOUT:.0f} s; log:\n{self.log_text()}")

    def stop(self):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def log_text(self, last=60):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-last:])
        except OSError:
            return "(no log)"

    # -- mail

    def imap(self, user="alice"):
        m = imaplib.IMAP4(HOST, self.port, timeout=10)
        m.login(user, self.users[user])
        return m

    def append(self, user, messages, date_time=None):
        """Appends each raw message (bytes, CRLF or LF) to user's INBOX."""
        if isinstance(messages, (bytes, str)):
            messages = [messages]
        m = self.imap(user)
        try:
            for msg in messages:
                if isinstance(msg, str):
                    msg = msg.encode()
                typ, data = m.append("INBOX", None, date_time or time.time(), msg)
                if typ != "OK":
                    raise RuntimeError(f"APPEND failed: {data!r}")
        finally:
            m.logout()

    def uids(self, user="alice"):
        m = self.imap(user)
        try:
            m.select("INBOX")
            typ, data = m.uid("SEARCH", "ALL")
            return [int(x) for x in data[0].split()]
        finally:
            m.logout()
