"""The server on Maildir storage, by config alone:

1. the basic end-to-end suites (test_messages, test_mailboxes, test_sync's
   two-session tests, test_login, test_robustness) run again with
   storage.backend = "maildir", the seed written as Maildir files;
2. changes from outside: a message copied into Maildir/new/ with cp
   reaches a client in IDLE within a second; a flag renamed in cur/ shows;
3. other tools: Python's mailbox.Maildir reads our layout and flags, and
   mutt (when installed) works on our Maildir with "mutt -f";
4. imapserver --migrate: flat -> maildir keeps UIDs, UIDVALIDITY, flags,
   keywords and internal dates, and refuses to overwrite existing mail."""

import mailbox
import os
import re
import select
import shutil
import signal
import subprocess
import time
import unittest

import server as srv
from server import (SEED, SLOW, USERS, ImapServer, Mail, ServerTestCase, fetches,
                    untagged_numbers)
import test_login
import test_mailboxes
import test_messages
import test_robustness
import test_sync
import variants

MUTT = shutil.which("mutt")


def lab_to_messages(text):
    """Splits lab-format text into (served bytes with LF, internal date or
    None): a "." line ends a message, dots are unstuffed, a blank line is
    put between header and body where the lab's server left none."""
    out = []
    cur = []
    for line in text.split("\n"):
        if line == ".":
            out.append(cur)
            cur = []
            continue
        cur.append(line[1:] if line.startswith(".") else line)
    msgs = []
    for lines in out:
        hdr, body, in_hdr, date = [], [], True, None
        for i, line in enumerate(lines):
            if in_hdr:
                if line == "":
                    in_hdr = False
                    continue
                if re.match(r"^[!-9;-~]+:", line) or (line[:1] in (" ", "\t") and hdr):
                    hdr.append(line)
                    m = re.match(r"^Received:\s*(\d{4})-(\d\d)-(\d\d) : (\d\d) : (\d\d)\s*$",
                                 line)
                    if m and date is None:
                        y, mo, d, h, mi = map(int, m.groups())
                        date = time.mktime((y, mo, d, h, mi, 0, 0, 0, -1))
                    continue
                in_hdr = False
            body.append(line)
        msgs.append(("\n".join(hdr) + "\n\n" + "".join(b + "\n" for b in body), date))
    return msgs


class MaildirServer(ImapServer):
    """ImapServer with storage.backend = "maildir"; the seed becomes files
    in <root>/<user>/Maildir/cur (their mtime is the Received date, which
    is what the flat backend serves as INTERNALDATE)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        with open(self.conf) as f:
            conf = f.read()
        conf = conf.replace('backend = "flat"; root', 'backend = "maildir"; root')
        assert 'backend = "maildir"' in conf
        with open(self.conf, "w") as f:
            f.write(conf)

    def maildir(self, user, folder=""):
        return os.path.join(self.root, user, "Maildir", folder)

    def write_mailbox(self, user, text):
        base = self.maildir(user)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        for i, (msg, date) in enumerate(lab_to_messages(text)):
            data = msg.encode()
            name = f"16000{i:05d}.M{i}P1.seed,S={len(data)}:2,"
            path = os.path.join(base, "cur", name)
            with open(path, "wb") as f:
                f.write(data)
            if date is not None:
                os.utime(path, (date, date))

    def read_mailbox(self, user):
        """Every message file of INBOX, concatenated (for "is it on disk")."""
        out = b""
        for sub in ("cur", "new"):
            d = os.path.join(self.maildir(user), sub)
            for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                with open(os.path.join(d, name), "rb") as f:
                    out += f.read()
        return out


class MaildirMixin(variants.BackendMixin):
    """Makes a ServerTestCase run its server on Maildir storage."""

    SERVER = MaildirServer


variants.install(globals(), "Maildir", MaildirMixin, [
    test_login.TestGreetingAndLogin,
    test_messages.TestSelectAndFetch,
    test_messages.TestSearch,
    test_messages.TestStoreExpunge,
    test_messages.TestAppend,
    test_messages.TestUidCommands,
    test_mailboxes.TestMailboxes,
    test_sync.TestTwoSessions,
    test_robustness.TestBadInput,
], "Maildir storage")


class TestMaildirExternalChanges(MaildirMixin, ServerTestCase):

    NEW = b"From: eve@localhost\nTo: alice@localhost\nSubject: copied with cp\n\nfresh\n"

    def cp_into_new(self, name="1700000000.M1P1.cp"):
        src = os.path.join(self.server.dir, "msg.eml")
        with open(src, "wb") as f:
            f.write(self.NEW)
        dst = os.path.join(self.server.maildir("alice"), "new", name)
        subprocess.run(["cp", src, dst], check=True)

    def test_cp_into_new_reaches_idle_within_a_second(self):
        c = self.raw_login(mailbox="INBOX")
        c.send("i IDLE\r\n")
        self.assertTrue(c.readline().startswith(b"+"))
        t0 = time.monotonic()
        self.cp_into_new()
        want = b"* %d EXISTS\r\n" % (len(SEED) + 1)
        got = []
        deadline = t0 + 1.0 * SLOW
        while time.monotonic() < deadline:
            try:
                r = c.read_response(timeout=max(0.05, deadline - time.monotonic()))
            except OSError:
                break
            got.append(r)
            if r == want:
                break
        self.assertIn(want, got, "cp into new/ was not pushed to IDLE within 1 s")
        c.send("DONE\r\n")
        resp, tagged = c.read_tagged("i")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command(f"FETCH {len(SEED) + 1} (BODY.PEEK[] FLAGS RFC822.SIZE)")
        d = fetches(resp)[len(SEED) + 1]
        self.assertEqual(d["BODY[]"], self.NEW.replace(b"\n", b"\r\n"))
        self.assertEqual(int(d["RFC822.SIZE"]), len(self.NEW.replace(b"\n", b"\r\n")))
        self.assertIn(b"\\Recent", d["FLAGS"])
        # it was moved to cur/ and keeps its UID across a restart
        self.assertFalse(os.listdir(os.path.join(self.server.maildir("alice"), "new")))
        resp, tagged = c.command(f"FETCH {len(SEED) + 1} UID")
        uid = fetches(resp)[len(SEED) + 1]["UID"]
        c.close()
        self.server.restart()
        self.port = self.server.port
        c = self.raw_login(mailbox="INBOX")
        resp, tagged = c.command(f"FETCH {len(SEED) + 1} UID")
        self.assertEqual(fetches(resp)[len(SEED) + 1]["UID"], uid)

    def test_file_hidden_behind_our_own_change_is_seen_within_a_second(self):
        # Our own APPENDs do not make the next command read the whole
        # folder again. A tool that does not lock may drop a file in the
        # same clock tick as our own change, so that the folder's mtime
        # does not move: emulated here by putting the mtime back. The
        # file must still be seen, after at most about a second.
        c = self.raw_login(mailbox="INBOX")
        # Files younger than a few seconds may still grow and are looked
        # at by every command: wait until the seeded ones are not.
        time.sleep(3.2)
        resp, tagged = c.command("NOOP")
        msg = b"From: bob@localhost\r\nSubject: ours\r\n\r\nappended\r\n"
        c.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        resp, tagged = c.read_tagged("a")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp2, tagged = c.command("NOOP")
        self.assertIn(b"* %d EXISTS\r\n" % (len(SEED) + 1), resp + resp2)
        maildir = self.server.maildir("alice")
        stamps = {d: os.stat(os.path.join(maildir, d)).st_mtime_ns for d in ("new", "cur")}
        # Stopped meanwhile, so that it cannot look at the folder before
        # its mtime is put back.
        os.kill(self.server.proc.pid, signal.SIGSTOP)
        try:
            self.cp_into_new("1700000001.M2P2.hidden")
            for d, ns in stamps.items():
                os.utime(os.path.join(maildir, d), ns=(ns, ns))
        finally:
            os.kill(self.server.proc.pid, signal.SIGCONT)
        want = b"* %d EXISTS\r\n" % (len(SEED) + 2)
        seen = False
        deadline = time.monotonic() + 3.0 * SLOW
        while not seen and time.monotonic() < deadline:
            resp, tagged = c.command("NOOP")
            self.assertTrue(tagged.startswith(b"OK"), tagged)
            seen = want in resp
            if not seen:
                time.sleep(0.1)
        self.assertTrue(seen, "a file hidden behind our own change was never seen")
        resp, tagged = c.command(f"FETCH {len(SEED) + 2} BODY.PEEK[]")
        self.assertEqual(fetches(resp)[len(SEED) + 2]["BODY[]"],
                         self.NEW.replace(b"\n", b"\r\n"))

    def test_flag_renamed_in_cur_shows_at_noop(self):
        c = self.raw_login(mailbox="INBOX")
        cur = os.path.join(self.server.maildir("alice"), "cur")
        first = sorted(os.listdir(cur))[0]
        base = first.split(":")[0]
        os.rename(os.path.join(cur, first), os.path.join(cur, base + ":2,FS"))
        resp, tagged = c.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        d = fetches(resp)
        self.assertIn(1, d, resp)
        self.assertIn(b"\\Seen", d[1]["FLAGS"])
        self.assertIn(b"\\Flagged", d[1]["FLAGS"])

    def test_file_removed_from_cur_is_expunged(self):
        c = self.raw_login(mailbox="INBOX")
        cur = os.path.join(self.server.maildir("alice"), "cur")
        os.unlink(os.path.join(cur, sorted(os.listdir(cur))[1]))
        resp, tagged = c.command("NOOP")
        self.assertEqual(untagged_numbers(resp, "EXPUNGE"), [2])


class TestMaildirOtherTools(MaildirMixin, ServerTestCase):

    MSG = (b"From: frank@localhost\r\nTo: alice@localhost\r\nSubject: appended\r\n\r\n"
           b"line one\r\n.dot line\r\n")

    def test_python_mailbox_reads_our_layout_and_flags(self):
        m = self.imap()
        self.assertOK(m.append("INBOX", "(\\Seen \\Flagged)", None, self.MSG))
        self.assertOK(m.create("Lists/imap"))
        self.assertOK(m.append("Lists/imap", "(\\Answered)", None, self.MSG))
        m.select("INBOX")
        m.store("1", "+FLAGS", "(\\Deleted \\Draft)")
        md = mailbox.Maildir(self.server.maildir("alice"), create=False)
        self.assertEqual(len(md), len(SEED) + 1)
        by_subject = {msg["Subject"]: msg for msg in md}
        appended = by_subject["appended"]
        self.assertEqual(appended.get_flags(), "FS")
        self.assertEqual(appended.get_subdir(), "cur")
        self.assertEqual(appended.get_payload(), "line one\n.dot line\n")
        self.assertEqual(by_subject["hello"].get_flags(), "DT")
        self.assertIn("Lists.imap", md.list_folders())
        sub = md.get_folder("Lists.imap")
        self.assertEqual([msg.get_flags() for msg in sub], ["R"])
        # and one delivered by Python's mailbox module reaches us
        md.add(mailbox.MaildirMessage(b"From: py@localhost\nSubject: from python\n\nhi\n"))
        typ, data = m.noop()
        typ, data = m.search(None, "SUBJECT", '"from python"')
        self.assertEqual(data, [str(len(SEED) + 2).encode()])

    def server_view(self, m):
        """{uid: (flags without \\Recent, subject)} of INBOX as the server
        serves it."""
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK", data)
        typ, data = m.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(typ, "OK", data)
        view = {}
        for d in srv.imaplib_fetches(data).values():
            hdr = d["BODY[HEADER.FIELDS (SUBJECT)]"].decode()
            subject = re.sub(r"^Subject:\s*", "", hdr.strip(), flags=re.I)
            flags = frozenset(f.decode() for f in d["FLAGS"] if f != b"\\Recent")
            view[int(d["UID"])] = (flags, subject)
        return view

    def disk_view(self):
        """{subject: flag letters} of the Maildir's INBOX files."""
        md = mailbox.Maildir(self.server.maildir("alice"), create=False)
        return {msg["Subject"]: msg.get_flags() for msg in md}

    @unittest.skipUnless(MUTT, "mutt is not installed")
    def test_mutt_reads_and_changes_our_maildir(self):
        m = self.imap()
        self.assertOK(m.append("INBOX", "(\\Seen)", None, self.MSG))
        before = self.server_view(m)
        self.assertEqual(len(before), len(SEED) + 1)
        m.logout()
        # mutt -f on the Maildir: flag the first message, delete the
        # second, write the changes, quit. Which messages those are is
        # mutt's reading order (the order of the directory): not assumed,
        # found out below from what changed.
        rc = self.run_mutt("<flag-message><next-undeleted><delete-message><sync-mailbox><quit>")
        self.assertEqual(rc, 0, "mutt did not finish")
        m = self.imap()
        after = self.server_view(m)
        gone = sorted(set(before) - set(after))
        self.assertEqual(len(gone), 1, f"mutt deleted one message: {before} -> {after}")
        self.assertFalse(set(after) - set(before), "the other messages keep their UIDs")
        flagged = [uid for uid in after
                   if "\\Flagged" in after[uid][0] and "\\Flagged" not in before[uid][0]]
        self.assertEqual(len(flagged), 1, f"mutt flagged one message: {before} -> {after}")
        self.assertNotEqual(flagged[0], gone[0])
        for uid in after:
            want = before[uid][0] | ({"\\Flagged"} if uid == flagged[0] else set())
            self.assertEqual(after[uid], (want, before[uid][1]), f"UID {uid}")
        # the server's view is the Maildir's
        disk = self.disk_view()
        self.assertNotIn(before[gone[0]][1], disk)
        self.assertEqual(sorted(disk), sorted(subject for _, subject in after.values()))
        self.assertIn("F", disk[after[flagged[0]][1]])
        # the APPENDed message (the highest UID) keeps its \Seen, unless
        # it is the one mutt's order made it delete
        appended = max(before)
        if appended in after:
            self.assertIn("S", disk[after[appended][1]])

    def run_mutt(self, keys, timeout=20.0):
        home = os.path.join(self.server.dir, "mutthome")
        os.makedirs(home, exist_ok=True)
        rc = os.path.join(home, "muttrc")
        with open(rc, "w") as f:
            f.write(f'set folder="{home}"\nset record=""\nset postponed="{home}/postponed"\n'
                    'set resolve=no\nset mbox_type=Maildir\nset delete=yes\nset quit=yes\nset move=no\n'
                    'set sort=mailbox-order\nset mark_old=no\nset header_cache=""\n'
                    'set confirmappend=no\nset wait_key=no\n'
                    f'set tmpdir="{home}"\n')
        master, slave = os.openpty()
        env = dict(os.environ, HOME=home, TERM="vt100", LANG="C", LC_ALL="C")
        p = subprocess.Popen([MUTT, "-n", "-F", rc, "-f", self.server.maildir("alice"),
                              "-e", f'push "{keys}"'],
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


class TestMigration(ServerTestCase):
    """Starts on flat storage (the default of server.py), migrates alice to
    Maildir with imapserver --migrate, switches the config, restarts."""

    MSG = b"From: gina@localhost\r\nSubject: with date\r\n\r\nbody\r\n"

    def snapshot(self, m, mailbox="INBOX"):
        typ, data = m.select(mailbox)
        self.assertEqual(typ, "OK", data)
        typ, st = m.status(mailbox, "(UIDVALIDITY UIDNEXT MESSAGES)")
        self.assertEqual(typ, "OK")
        typ, data = m.uid("FETCH", "1:*", "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        got = {}
        for resp in srv.imaplib_responses(data):
            seq, rest = resp.split(b" ", 1)
            seq, d = srv.parse_fetch(b"* " + seq + b" FETCH " + rest)
            flags = sorted(f.decode() for f in d["FLAGS"] if f != b"\\Recent")
            got[int(d["UID"])] = (flags, d["INTERNALDATE"], int(d["RFC822.SIZE"]), d["BODY[]"])
        return st[0], got

    def migrate(self, *args):
        return subprocess.run([self.server.binary, "-c", self.server.conf, "--migrate", "alice",
                               *args], capture_output=True, timeout=60 * SLOW,
                              cwd=self.server.dir)

    def switch_to_maildir(self):
        with open(self.server.conf) as f:
            conf = f.read()
        with open(self.server.conf, "w") as f:
            f.write(conf.replace('backend = "flat"; root', 'backend = "maildir"; root'))

    def test_flat_to_maildir_keeps_uids_flags_dates(self):
        m = self.imap()
        m.select("INBOX")
        m.store("1", "+FLAGS", "(\\Seen $Work)")
        m.store("3", "+FLAGS", "(\\Answered \\Flagged)")
        m.store("2", "+FLAGS", "(\\Deleted)")
        m.expunge()           # a gap in the UIDs
        self.assertOK(m.append("INBOX", "(\\Draft)", '"10-Mar-2022 14:30:00 +0530"', self.MSG))
        self.assertOK(m.create("Archive/2022"))
        self.assertOK(m.append("Archive/2022", "(\\Seen)", '"01-Feb-2021 08:00:00 -0800"',
                               self.MSG))
        self.assertOK(m.subscribe("Archive/2022"))
        before = self.snapshot(m)
        before_arch = self.snapshot(m, "Archive/2022")
        m.logout()
        self.server.stop()

        p = self.migrate("--from", "flat", "--to", "maildir")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"UIDs and UIDVALIDITY kept", p.stdout)
        self.switch_to_maildir()
        self.server.start()
        self.port = self.server.port
        m = self.imap()
        self.assertEqual(self.snapshot(m), before)
        self.assertEqual(self.snapshot(m, "Archive/2022"), before_arch)
        typ, data = m.lsub('""', "*")
        self.assertIn(b"Archive/2022", b"".join(data))
        # the next UID goes on where flat left it
        self.assertOK(m.append("INBOX", None, None, self.MSG))
        m.select("INBOX")
        typ, data = m.uid("SEARCH", "ALL")
        uids = [int(x) for x in data[0].split()]
        self.assertEqual(uids[-1], int(re.search(rb"UIDNEXT (\d+)", before[0]).group(1)))
        # the Maildir is a standard one
        md = mailbox.Maildir(os.path.join(self.server.root, "alice", "Maildir"), create=False)
        self.assertEqual(len(md), len(before[1]) + 1)

    def test_migration_refuses_to_overwrite_existing_mail(self):
        self.imap().logout()      # the server is up and serving
        self.server.stop()
        p = self.migrate("--from", "flat", "--to", "maildir")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.migrate("--from", "flat", "--to", "maildir")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"refusing to overwrite", p.stderr)
        # the Maildir holds exactly one copy
        md = mailbox.Maildir(os.path.join(self.server.root, "alice", "Maildir"), create=False)
        self.assertEqual(len(md), len(SEED))
        p = self.migrate("--from", "flat", "--to", "nosuch")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"known: flat, maildir", p.stderr)
        self.server.start()
        self.port = self.server.port
        self.imap().logout()      # serving (signals set up) before tearDown stops it

    def test_migration_of_a_user_without_mail_is_refused_and_creates_nothing(self):
        self.imap().logout()
        self.server.stop()
        p = subprocess.run([self.server.binary, "-c", self.server.conf, "--migrate", "nosuchuser",
                            "--from", "flat", "--to", "maildir"], capture_output=True,
                           timeout=60 * SLOW, cwd=self.server.dir)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(b"nosuchuser has no mail (no folder ", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.server.root, "nosuchuser")))
        self.server.start()
        self.port = self.server.port
        self.imap().logout()

    def test_migration_of_all_users(self):
        m = self.imap("bob")
        self.assertOK(m.append("INBOX", None, None, self.MSG))
        m.logout()
        self.server.stop()
        p = subprocess.run([self.server.binary, "-c", self.server.conf, "--migrate", "--all",
                            "--from", "flat", "--to", "maildir"], capture_output=True,
                           timeout=60 * SLOW, cwd=self.server.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertIn(f"migrated {len(SEED)} message(s) in 1 mailbox(es) of alice", out)
        self.assertRegex(out, r"migrated 1 message\(s\) in \d+ mailbox\(es\) of bob ")
        self.switch_to_maildir()
        self.server.start()
        self.port = self.server.port
        m = self.imap("bob")
        typ, data = m.select("INBOX")
        self.assertEqual(data, [b"1"])
        m.logout()

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_migration_as_root_writes_as_the_server_user(self):
        """Run as root, --migrate drops to server.user before it touches any
        mail: every file under alice's folder is the server user's."""
        pw = srv.service_user()
        m = self.imap()
        self.assertOK(m.create("Archive/2022"))
        self.assertOK(m.append("Archive/2022", "(\\Seen $Work)", None, self.MSG))
        self.assertOK(m.subscribe("Archive/2022"))
        m.logout()
        self.server.stop()
        p = self.migrate("--from", "flat", "--to", "maildir")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"dropped root: running as user {pw.pw_name}".encode(), p.stderr)
        found = []
        for base, dirs, files in os.walk(self.server.user_dir("alice")):
            for name in [base] + [os.path.join(base, n) for n in dirs + files]:
                st = os.lstat(name)
                self.assertEqual((st.st_uid, st.st_gid), (pw.pw_uid, pw.pw_gid), name)
                found.append(os.path.relpath(name, self.server.user_dir("alice")))
        md = mailbox.Maildir(os.path.join(self.server.root, "alice", "Maildir"), create=False)
        self.assertEqual(len(md), len(SEED))
        self.assertGreater(len([n for n in found if n.startswith("Maildir")]), len(SEED))
        self.server.start()
        self.port = self.server.port
        self.imap().logout()      # serving (signals set up) before tearDown stops it


if __name__ == "__main__":
    unittest.main()


class TestMaildirExpungeAtWork(ServerTestCase):
    """An EXPUNGE's work (unlinks, then the folders' fsync) held after the
    unlinks (the test hook IMAPSERVER_TEST_JOB_HOLD, named point
    "expunge-unlinked"): another session reading the message finds its
    file gone while the mailbox still lists it; FETCH, SEARCH and SORT
    leave it out with OK [EXPUNGEISSUED] (RFC 2180 4.1, 4.3), no NO and
    no error in the log."""

    WAIT = 20.0 * SLOW

    def setUp(self):
        self.server = MaildirServer({"alice": srv.seed_text()}, log_level="debug")
        self.addCleanup(self.server.cleanup)
        self._clients = []
        self.hold = os.path.join(self.server.dir, "hold")
        os.environ["IMAPSERVER_TEST_JOB_HOLD"] = self.hold
        try:
            self.server.start()
        finally:
            os.environ.pop("IMAPSERVER_TEST_JOB_HOLD", None)
        self.port = self.server.port

    def tearDown(self):
        # A failed test may leave the work held: the stop waits for it.
        if os.path.exists(self.hold):
            os.unlink(self.hold)
        super().tearDown()

    def test_reads_of_a_message_being_expunged(self):
        a = self.raw_login("alice", "INBOX")
        resp, tagged = a.command("UID STORE 2 +FLAGS.SILENT (\\Deleted)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        b = self.raw_login("alice", "INBOX")
        with open(self.hold, "w") as f:
            f.write("expunge-unlinked\n")
        a.send("X1 EXPUNGE\r\n")
        deadline = time.monotonic() + self.WAIT
        while not os.path.exists(self.hold + ".held") and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertTrue(os.path.exists(self.hold + ".held"), self.server.log_text())
        resp, tagged = b.command("FETCH 1:3 (UID BODY.PEEK[])", timeout=self.WAIT)
        self.assertTrue(tagged.startswith(b"OK [EXPUNGEISSUED]"), tagged)
        uids = sorted(int(m.group(1)) for r in resp for m in [re.search(rb"UID (\d+)", r)] if m)
        self.assertEqual(uids, [1, 3])
        resp, tagged = b.command("SEARCH BODY \"zzz-not-there\"", timeout=self.WAIT)
        self.assertTrue(tagged.startswith(b"OK [EXPUNGEISSUED]"), tagged)
        resp, tagged = b.command("SORT (SUBJECT) US-ASCII BODY \"zzz-not-there\"",
                                 timeout=self.WAIT)
        self.assertTrue(tagged.startswith(b"OK [EXPUNGEISSUED]"), tagged)
        os.unlink(self.hold)
        resp, tagged = a.read_tagged("X1", timeout=self.WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = b.command("NOOP")
        self.assertIn(b"* 2 EXPUNGE\r\n", resp)
        self.assertNotIn(" error:", self.server.log_text())
