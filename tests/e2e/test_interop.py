"""Interoperability (issue 5, item 5): whichever of mbsync (isync),
offlineimap, fetchmail, mutt and curl are installed do a real sync or
fetch against the server, and the result is checked; each test also ends
with the server's log free of "error:" lines (ServerTestCase). A client
that is not installed is skipped (tests/deps.sh --test installs them)."""

import glob
import os
import re
import select
import shutil
import socket
import subprocess
import threading
import time
import unittest

from server import SEED, SLOW, ServerTestCase

MBSYNC = shutil.which("mbsync")
OFFLINEIMAP = shutil.which("offlineimap")
FETCHMAIL = shutil.which("fetchmail")
MUTT = shutil.which("mutt")
CURL = shutil.which("curl")

NEW_MAIL = (b"From: zoe@example.org\r\nTo: alice@localhost\r\nSubject: brand new\r\n"
            b"\r\nnew mail body\r\n")


def maildir_messages(path):
    """The files of a Maildir folder (cur and new)."""
    return sorted(glob.glob(os.path.join(path, "cur", "*")) +
                  glob.glob(os.path.join(path, "new", "*")))


def subjects_of(files):
    out = []
    for name in files:
        with open(name, "rb") as f:
            m = re.search(rb"^Subject: (.*?)\r?$", f.read(), re.M)
            out.append(m.group(1).decode() if m else None)
    return sorted(out)


class InteropCase(ServerTestCase):

    def run_tool(self, argv, timeout=60, env=None, ok=(0,)):
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout * SLOW, env=env)
        self.assertIn(p.returncode, ok,
                      f"{' '.join(argv)} exited {p.returncode}\nstdout:\n"
                      f"{p.stdout.decode(errors='replace')[-3000:]}\nstderr:\n"
                      f"{p.stderr.decode(errors='replace')[-3000:]}\nserver log:\n"
                      + self.server.log_text(30))
        return p

    def server_subjects(self):
        m = self.imap()
        m.select("INBOX")
        typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        out = []
        for item in data:
            if isinstance(item, tuple):
                mm = re.search(rb"Subject: (.*?)\r\n", item[1])
                out.append(mm.group(1).decode())
        m.logout()
        return sorted(out)


@unittest.skipUnless(MBSYNC, "mbsync (isync) is not installed")
class TestMbsync(InteropCase):

    def write_config(self):
        self.local = os.path.join(self.server.dir, "mbsync-local")
        os.makedirs(self.local, exist_ok=True)
        conf = os.path.join(self.server.dir, "mbsyncrc")
        with open(conf, "w") as f:
            f.write(f"""IMAPAccount test
Host 127.0.0.1
Port {self.port}
User alice
Pass alice123
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account test

MaildirStore local
Path {self.local}/
Inbox {self.local}/INBOX
SubFolders Verbatim

Channel test
Far :remote:
Near :local:
Patterns *
Create Near
Expunge Both
Sync All
SyncState *
""")
        return conf

    def mbsync(self, conf):
        env = dict(os.environ, HOME=self.server.dir)
        return self.run_tool([MBSYNC, "-c", conf, "-a"], env=env)

    def test_mbsync_syncs_both_ways(self):
        conf = self.write_config()
        self.mbsync(conf)
        inbox = os.path.join(self.local, "INBOX")
        self.assertEqual(subjects_of(maildir_messages(inbox)),
                         sorted(m.header("Subject") for m in SEED))
        # The special-use folders came down too.
        for name in ("Sent", "Drafts", "Trash", "Junk"):
            self.assertTrue(os.path.isdir(os.path.join(self.local, name)), name)
        # New mail down.
        m = self.imap()
        self.assertOK(m.append("INBOX", None, None, NEW_MAIL))
        m.logout()
        self.mbsync(conf)
        self.assertIn("brand new", subjects_of(maildir_messages(inbox)))
        self.assertEqual(len(maildir_messages(inbox)), len(SEED) + 1)
        # A local delete goes up (flagged \Deleted and expunged there).
        victim = [f for f in maildir_messages(inbox)
                  if subjects_of([f]) == [SEED[0].header("Subject")]][0]
        os.unlink(victim)
        self.mbsync(conf)
        subjects = self.server_subjects()
        self.assertNotIn(SEED[0].header("Subject"), subjects)
        self.assertIn("brand new", subjects)
        self.assertEqual(len(subjects), len(SEED))
        # A flag set locally goes up too.
        seen = [f for f in maildir_messages(inbox) if "brand new" in subjects_of([f])][0]
        base, _, flags = seen.partition(":2,")
        os.rename(seen, os.path.join(inbox, "cur", os.path.basename(base) + ":2,F" +
                                     flags.replace("F", "")))
        self.mbsync(conf)
        m = self.imap()
        m.select("INBOX")
        typ, data = m.search(None, "FLAGGED")
        self.assertEqual(len(data[0].split()), 1)
        m.logout()
        # A second run with nothing to do changes nothing.
        self.mbsync(conf)
        self.assertEqual(len(maildir_messages(inbox)), len(SEED))


class RecordingProxy:
    """A TCP relay on an ephemeral loopback port to the server's port
    (target, which may change across restarts): records what the clients
    send, so that a test can tell which FETCH items they asked for. The
    server's own log names only the command, not the items."""

    def __init__(self, target):
        self.target = target
        self.sent = []          # client -> server bytes, one entry per read
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _pump(self, src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record:
                    with self.lock:
                        self.sent.append(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def take(self):
        """What the clients sent since the last take()."""
        with self.lock:
            data, self.sent = b"".join(self.sent), []
        return data

    def close(self):
        self.closing = True
        self.sock.close()


# A FETCH that downloads a message: BODY[], BODY.PEEK[], BODY[TEXT],
# RFC822, RFC822.TEXT (not RFC822.SIZE, RFC822.HEADER or header fields).
BODY_FETCH_RE = re.compile(rb"FETCH [^\r\n]*(BODY(\.PEEK)?\[(TEXT)?\]|RFC822(\.TEXT)?[ )])", re.I)


def file_set(top):
    """{path under top: (inode, size, mtime)} of every message file (cur/,
    new/) of every Maildir folder under top: a file downloaded again or
    rewritten shows as a new inode or a new name."""
    out = {}
    for d, _, files in os.walk(top):
        if os.path.basename(d) not in ("cur", "new"):
            continue
        for name in files:
            st = os.stat(os.path.join(d, name))
            out[os.path.relpath(os.path.join(d, name), top)] = (st.st_ino, st.st_size,
                                                                 st.st_mtime_ns)
    return out


@unittest.skipUnless(MBSYNC, "mbsync (isync) is not installed")
class TestBackendSwitchUnseenBySyncClients(InteropCase):
    """Issue 6: after imapserver --migrate alice --from flat --to maildir,
    storage.backend = "maildir" and a restart, a connected mbsync (and
    offlineimap, if installed) finds no change at all: nothing downloaded
    again, same UIDs and UIDVALIDITY."""

    LISTS_MAIL = (b"From: list@example.org\r\nTo: alice@localhost\r\n"
                  b"Subject: list traffic\r\n\r\nto the list\r\n")

    def mbsync_config(self, port):
        self.mb_local = os.path.join(self.server.dir, "mbsync-local")
        os.makedirs(self.mb_local, exist_ok=True)
        conf = os.path.join(self.server.dir, "mbsyncrc")
        with open(conf, "w") as f:
            f.write(f"""IMAPAccount test
Host 127.0.0.1
Port {port}
User alice
Pass alice123
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account test

MaildirStore local
Path {self.mb_local}/
Inbox {self.mb_local}/INBOX
SubFolders Verbatim

Channel test
Far :remote:
Near :local:
Patterns *
Create Near
Expunge Both
Sync All
SyncState *
""")
        return conf

    def offlineimap_config(self, port):
        self.oi_local = os.path.join(self.server.dir, "oi-local")
        meta = os.path.join(self.server.dir, "oi-meta")
        conf = os.path.join(self.server.dir, "offlineimaprc")
        with open(conf, "w") as f:
            f.write(f"""[general]
accounts = test
metadata = {meta}
ui = basic

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {self.oi_local}

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {port}
remoteuser = alice
remotepass = alice123
ssl = no
starttls = no
""")
        return conf

    def sync_all(self, mb_conf, oi_conf):
        """Runs the clients once; returns their outputs (for the message of
        a failed assertion)."""
        env = dict(os.environ, HOME=self.server.dir)
        out = self.run_tool([MBSYNC, "-c", mb_conf, "-a"], env=env)
        text = (out.stdout + out.stderr).decode(errors="replace")
        if oi_conf is not None:
            out = self.run_tool([OFFLINEIMAP, "-c", oi_conf, "-o", "-u", "basic"], env=env,
                                timeout=120)
            text += (out.stdout + out.stderr).decode(errors="replace")
        return text

    def server_state(self):
        """{mailbox: (UIDVALIDITY, UIDNEXT, [(uid, flags)])} of every mailbox."""
        m = self.imap()
        typ, data = m.list('""', "*")
        self.assertEqual(typ, "OK")
        # a \Noselect superior (listed by "*" since issue 13) has no state
        names = sorted(re.search(rb'"[^"]*" "?([^"]*)"?$', x).group(1).decode() for x in data
                       if b"\\Noselect" not in x)
        out = {}
        for name in names:
            typ, st = m.status(f'"{name}"', "(UIDVALIDITY UIDNEXT)")
            self.assertEqual(typ, "OK", st)
            v = re.search(rb"UIDVALIDITY (\d+)", st[0]).group(1)
            n = re.search(rb"UIDNEXT (\d+)", st[0]).group(1)
            typ, data = m.select(f'"{name}"', readonly=True)
            self.assertEqual(typ, "OK", data)
            msgs = []
            if int(data[0]) > 0:
                typ, data = m.fetch("1:*", "(UID FLAGS)")
                for x in data:
                    uid = int(re.search(rb"UID (\d+)", x).group(1))
                    flags = sorted(f for f in re.search(rb"FLAGS \(([^)]*)\)", x).group(1).split()
                                   if f != b"\\Recent")
                    msgs.append((uid, flags))
            out[name] = (int(v), int(n), sorted(msgs))
        m.logout()
        return out

    def migrate_and_switch(self):
        """Stops the server, migrates alice from flat to maildir, switches
        storage.backend and starts the server again."""
        self.server.stop()
        p = subprocess.run([self.server.binary, "-c", self.server.conf, "--migrate", "alice",
                            "--from", "flat", "--to", "maildir"], capture_output=True,
                           timeout=60 * SLOW, cwd=self.server.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"UIDs and UIDVALIDITY kept", p.stdout)
        with open(self.server.conf) as f:
            conf = f.read()
        self.assertIn('backend = "flat"; root', conf)
        with open(self.server.conf, "w") as f:
            f.write(conf.replace('backend = "flat"; root', 'backend = "maildir"; root'))
        self.server.start()
        self.port = self.server.port
        self.assertTrue(os.path.isdir(os.path.join(self.server.root, "alice", "Maildir", "cur")))

    def highest_modseqs(self):
        m = self.imap()
        out = {}
        for name in ("INBOX", "Lists/imap"):
            typ, st = m.status(f'"{name}"', "(HIGHESTMODSEQ)")
            self.assertEqual(typ, "OK", st)
            out[name] = int(re.search(rb"HIGHESTMODSEQ (\d+)", st[0]).group(1))
        m.logout()
        return out

    # core/daemon/migrate.c copies messages with append(), which gives them new
    # modseqs from 1: HIGHESTMODSEQ must still not come back lower on
    # Maildir, or a CONDSTORE/QRESYNC client that cached it would miss
    # later changes (RFC 7162 3.1.2.1).
    def test_flat_to_maildir_switch_never_lowers_highestmodseq(self):
        m = self.imap()
        m.select("INBOX")
        for _ in range(3):
            m.store("1:*", "+FLAGS", "(\\Flagged)")
            m.store("1:*", "-FLAGS", "(\\Flagged)")
        self.assertOK(m.create("Lists/imap"))
        self.assertOK(m.append("Lists/imap", None, None, self.LISTS_MAIL))
        m.select("Lists/imap")
        m.store("1", "+FLAGS", "(\\Seen)")
        m.logout()
        before = self.highest_modseqs()
        self.migrate_and_switch()
        after = self.highest_modseqs()
        for name in before:
            self.assertGreaterEqual(after[name], before[name], name)

    def test_flat_to_maildir_switch_downloads_nothing_again(self):
        m = self.imap()
        m.select("INBOX")
        m.store("1", "+FLAGS", "(\\Seen)")
        m.store("3", "+FLAGS", "(\\Flagged $Work)")
        m.store("2", "+FLAGS", "(\\Deleted)")
        m.expunge()             # a gap in the UIDs
        self.assertOK(m.create("Lists/imap"))
        self.assertOK(m.append("Lists/imap", "(\\Seen)", None, self.LISTS_MAIL))
        m.logout()
        proxy = RecordingProxy(self.port)
        self.addCleanup(proxy.close)
        mb_conf = self.mbsync_config(proxy.port)
        oi_conf = self.offlineimap_config(proxy.port) if OFFLINEIMAP else None

        first = self.sync_all(mb_conf, oi_conf)
        wire = proxy.take()
        # the check below can see a download: the first run is one
        self.assertRegex(wire, BODY_FETCH_RE)
        inbox = os.path.join(self.mb_local, "INBOX")
        self.assertEqual(len(maildir_messages(inbox)), len(SEED) - 1, first)
        self.assertEqual(subjects_of(maildir_messages(os.path.join(self.mb_local, "Lists",
                                                                   "imap"))),
                         ["list traffic"])
        before_state = self.server_state()
        before_mb = file_set(self.mb_local)
        before_oi = file_set(self.oi_local) if oi_conf else None
        if oi_conf:
            self.assertEqual(len(maildir_messages(os.path.join(self.oi_local, "INBOX"))),
                             len(SEED) - 1)

        self.migrate_and_switch()
        proxy.target = self.port

        second = self.sync_all(mb_conf, oi_conf)
        wire = proxy.take()
        self.assertIn(b"LOGIN", wire.upper())
        self.assertNotRegex(wire, BODY_FETCH_RE, second)
        self.assertEqual(file_set(self.mb_local), before_mb, second)
        if oi_conf:
            self.assertEqual(file_set(self.oi_local), before_oi, second)
        self.assertEqual(self.server_state(), before_state)
        # nothing went up either: the server still has what it had
        self.assertNotRegex(wire, rb"(?i)\r\n\S+ (UID )?(APPEND|STORE|EXPUNGE|COPY|MOVE) ")


@unittest.skipUnless(OFFLINEIMAP, "offlineimap is not installed")
class TestOfflineimap(InteropCase):

    def test_offlineimap_fetches_everything(self):
        m = self.imap()
        self.assertOK(m.create("Lists/imap"))
        self.assertOK(m.append("Lists/imap", None, None, NEW_MAIL))
        m.logout()
        local = os.path.join(self.server.dir, "oi-local")
        meta = os.path.join(self.server.dir, "oi-meta")
        conf = os.path.join(self.server.dir, "offlineimaprc")
        with open(conf, "w") as f:
            f.write(f"""[general]
accounts = test
metadata = {meta}
ui = quiet

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {self.port}
remoteuser = alice
remotepass = alice123
ssl = no
starttls = no
""")
        env = dict(os.environ, HOME=self.server.dir)
        self.run_tool([OFFLINEIMAP, "-c", conf, "-o", "-u", "quiet"], env=env, timeout=120)
        inbox = os.path.join(local, "INBOX")
        self.assertEqual(subjects_of(maildir_messages(inbox)),
                         sorted(m.header("Subject") for m in SEED))
        lists = os.path.join(local, "Lists", "imap")
        if not os.path.isdir(lists):
            lists = os.path.join(local, "Lists.imap")
        self.assertEqual(subjects_of(maildir_messages(lists)), ["brand new"])
        # A second run: nothing new, nothing lost on either side.
        self.run_tool([OFFLINEIMAP, "-c", conf, "-o", "-u", "quiet"], env=env, timeout=120)
        self.assertEqual(len(maildir_messages(inbox)), len(SEED))
        self.assertEqual(len(self.server_subjects()), len(SEED))


@unittest.skipUnless(FETCHMAIL, "fetchmail is not installed")
class TestFetchmail(InteropCase):

    def test_fetchmail_fetches_everything(self):
        out = os.path.join(self.server.dir, "fetched")
        os.makedirs(out)
        rc = os.path.join(self.server.dir, "fetchmailrc")
        with open(rc, "w") as f:
            f.write(f"""set no syslog
poll 127.0.0.1 service {self.port} protocol IMAP auth password
  user "alice" password "alice123" is "alice" here
  keep fetchall
  sslproto ''
  mda "/bin/sh -c 'cat > {out}/msg.$$'"
""")
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=self.server.dir, FETCHMAILHOME=self.server.dir)
        self.run_tool([FETCHMAIL, "-f", rc, "-d0", "--nodetach", "-i",
                       os.path.join(self.server.dir, "fetchids")], env=env)
        files = sorted(glob.glob(os.path.join(out, "msg.*")))
        self.assertEqual(subjects_of(files), sorted(m.header("Subject") for m in SEED))
        texts = []
        for name in files:
            with open(name, "rb") as f:
                texts.append(f.read())
        for m in SEED:
            body = m.body_lines[-1].encode() if m.body_lines else b""
            self.assertTrue(any(body in t for t in texts), body)
        # keep: the messages are still there.
        self.assertEqual(len(self.server_subjects()), len(SEED))


@unittest.skipUnless(MUTT, "mutt is not installed")
class TestMuttShowsMessages(InteropCase):

    def test_mutt_opens_the_mailbox_and_shows_the_messages(self):
        home = os.path.join(self.server.dir, "mutthome")
        os.makedirs(home)
        rc = os.path.join(home, "muttrc")
        url = f"imap://alice@127.0.0.1:{self.port}/"
        with open(rc, "w") as f:
            f.write(f'set folder="{url}"\nset spoolfile="{url}INBOX"\n'
                    'set imap_user="alice"\nset imap_pass="alice123"\n'
                    'set ssl_starttls=no\nset ssl_force_tls=no\nset quit=yes\n'
                    'set sort=mailbox-order\nset header_cache=""\nset message_cachedir=""\n'
                    'set index_format="%4C %s"\n'
                    f'set tmpdir="{home}"\n')
        master, slave = os.openpty()
        env = dict(os.environ, HOME=home, TERM="vt100", LANG="C", LC_ALL="C",
                   COLUMNS="120", LINES="40")
        p = subprocess.Popen([MUTT, "-n", "-F", rc], stdin=slave, stdout=slave,
                             stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        screen = b""
        want = [m.header("Subject").encode() for m in SEED]
        deadline = time.monotonic() + 20 * SLOW
        try:
            while time.monotonic() < deadline and not all(w in screen for w in want):
                r, _, _ = select.select([master], [], [], 0.1)
                if r:
                    try:
                        screen += os.read(master, 65536)
                    except OSError:
                        break
            os.write(master, b"q")
            try:
                p.wait(5 * SLOW)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        finally:
            os.close(master)
        for w in want:
            self.assertIn(w, screen, "mutt's index does not show it")


@unittest.skipUnless(CURL, "curl is not installed")
class TestCurlByUid(InteropCase):

    def test_curl_fetches_each_message_by_uid(self):
        for uid, m in enumerate(SEED, 1):
            p = self.run_tool([CURL, "-s", "-S", "--max-time", str(int(10 * SLOW)),
                               f"imap://alice:alice123@127.0.0.1:{self.port}/INBOX;UID={uid}"])
            self.assertEqual(p.stdout, m.served)


if __name__ == "__main__":
    unittest.main()
