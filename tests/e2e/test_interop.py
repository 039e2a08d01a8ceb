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
import subprocess
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
