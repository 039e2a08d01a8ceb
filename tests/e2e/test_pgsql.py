"""The server on PostgreSQL storage (storage.backend = "pgsql"), by config
alone, against the throw-away cluster of tests/run.sh:

1. the basic end-to-end suites (test_messages, test_mailboxes, test_sync's
   two-session tests, test_login, test_robustness) and the real clients'
   (curl, mutt, mbsync, offlineimap, fetchmail, the lab's mailclient) run
   again on pgsql, the seed moved in with imapserver --migrate;
2. imapserver --init-db: creates the schema, leaves it alone the second
   time; a server on a database without it refuses to start, saying so;
   a database that cannot be reached stops the start with a clear line;
3. two nodes on one database behave as one server: what is delivered by
   SMTP to one is seen on the other, expunges too, and UIDs given by both
   at once never collide;
4. the connection lost under a running server (the database restarted):
   the sessions go on, the backend connects again by itself;
5. --migrate flat -> pgsql -> maildir keeps UIDs, UIDVALIDITY and flags."""

import imaplib
import re
import smtplib
import threading
import time
import unittest

import pg_support
from pg_support import Database, PgServer, psql, run_cli
import server as srv
from server import HOST, SEED, SLOW, SOCK_TIMEOUT, USERS, ServerTestCase, seed_text
from smtp_support import add_smtp_section, free_port
from workload import run_workload
import test_clients
import test_interop
import test_login
import test_mailboxes
import test_mailclient
import test_messages
import test_robustness
import test_sync
import variants

SKIP = pg_support.skip_reason()


class PgMixin(variants.BackendMixin):
    """Makes a ServerTestCase run its server on pgsql."""

    SERVER = PgServer
    SKIP_REASON = SKIP


variants.install(globals(), "Pgsql", PgMixin, [
    test_login.TestGreetingAndLogin,
    test_messages.TestSelectAndFetch,
    test_messages.TestSearch,
    test_messages.TestStoreExpunge,
    test_messages.TestAppend,
    test_messages.TestUidCommands,
    test_mailboxes.TestMailboxes,
    test_sync.TestTwoSessions,
    test_robustness.TestBadInput,
    # real clients nobody here wrote
    test_clients.TestCurl,
    test_clients.TestMutt,
    test_interop.TestMbsync,
    test_interop.TestOfflineimap,
    test_interop.TestFetchmail,
    test_interop.TestMuttShowsMessages,
    test_interop.TestCurlByUid,
], "pgsql storage")


class PgsqlMailclientOurServer(test_mailclient.MailclientOurServer):
    """The lab's mailclient against imapserver on pgsql."""

    def setUp(self):
        if SKIP:
            self.skipTest(SKIP)
        self.server = PgServer({"alice": seed_text(), "bob": ""})
        self.addCleanup(self.server.cleanup)
        self.server.start()
        self.port = self.server.port
        self.clients = []

MSG = b"From: carol@localhost\r\nSubject: over the network\r\n\r\nhello\r\n"


def imap(port, user="alice"):
    m = imaplib.IMAP4(HOST, port, timeout=SOCK_TIMEOUT)
    m.login(user, USERS[user])
    return m


@unittest.skipIf(SKIP, SKIP or "")
class TestInitDb(unittest.TestCase):

    def test_init_db_creates_then_leaves_the_schema(self):
        db = Database()
        self.addCleanup(db.drop)
        s = srv.ImapServer({"alice": seed_text()})
        self.addCleanup(s.cleanup)
        pg_support.use_pgsql(s, db)
        # no schema yet: the server refuses to start, naming the fix
        p = run_cli(s, "-t")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(b"run imapserver --init-db first", p.stderr)
        p = run_cli(s, "--init-db")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"schema version 2 created", p.stdout)
        self.assertEqual(db.sql("SELECT version FROM imap_schema").strip(), "2")
        p = run_cli(s, "--init-db")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"at version 2 already", p.stdout)
        p = run_cli(s, "-t")
        self.assertEqual(p.returncode, 0, p.stderr)
        # a schema newer than the build is left alone and refused
        db.sql("UPDATE imap_schema SET version = 99")
        p = run_cli(s, "--init-db")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"version 99, newer than this build", p.stderr)
        p = run_cli(s, "-t")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"schema is version 99", p.stderr)

    def test_init_db_upgrades_a_version_1_schema_keeping_the_mail(self):
        s = PgServer({"alice": seed_text()})
        self.addCleanup(s.cleanup)
        # the database as a build of schema version 1 left it
        s.db.sql("DROP TABLE imap_body_pending")
        s.db.sql("UPDATE imap_schema SET version = 1")
        p = run_cli(s, "-t")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"schema is version 1, this build knows version 2: "
                      b"run imapserver --init-db", p.stderr)
        p = run_cli(s, "--init-db")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"schema upgraded from version 1 to 2", p.stdout)
        self.assertEqual(s.db.sql("SELECT version FROM imap_schema").strip(), "2")
        s.start()
        m = imap(s.port)
        typ, data = m.select("INBOX")
        self.assertEqual(int(data[0]), len(SEED))
        typ, data = m.append("INBOX", None, None, b"Subject: after\r\n\r\nupgrade\r\n")
        self.assertEqual(typ, "OK", data)
        m.logout()

    def test_conninfo_is_required_and_an_unreachable_database_is_named(self):
        s = srv.ImapServer({"alice": seed_text()})
        self.addCleanup(s.cleanup)
        with open(s.conf) as f:
            conf = f.read()
        with open(s.conf, "w") as f:
            f.write(conf.replace('backend = "flat";', 'backend = "pgsql";'))
        p = run_cli(s, "-t")
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr.decode(), r"imapserver\.conf:\d+: storage\.backend: "
                         r"storage\.backend \"pgsql\" needs storage\.conninfo")
        port = free_port()      # nothing listens there
        with open(s.conf, "w") as f:
            f.write(conf.replace('backend = "flat";', 'backend = "pgsql"; conninfo = '
                                 f'"host=127.0.0.1 port={port} dbname=x connect_timeout=2";'))
        t0 = time.monotonic()
        p = run_cli(s, "-t")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"pgsql: database unavailable:", p.stderr)
        self.assertLess(time.monotonic() - t0, 10 * SLOW)


@unittest.skipIf(SKIP, SKIP or "")
class TestTwoNodes(unittest.TestCase):
    """Two imapserver processes on one database: node A also receives
    mail by SMTP (in process)."""

    def setUp(self):
        self.a = PgServer({"alice": seed_text()})
        self.addCleanup(self.a.cleanup)
        add_smtp_section(self.a, True, {})
        self.a.start()
        line = self.a.wait_log(r"smtp listening on 127\.0\.0\.1:(\d+)", 5.0)
        self.assertIsNotNone(line, self.a.log_text())
        self.smtp_port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        self.b = PgServer({}, db=self.a.db)
        self.addCleanup(self.b.cleanup)
        self.b.start()

    def tearDown(self):
        for node in (self.a, self.b):
            self.assertTrue(node.alive(), node.log_text())
            self.assertEqual(node.stop(check=False), 0, node.log_text())
            self.assertEqual(node.error_lines(), [])
            self.assertEqual(node.sanitizer_lines(), [])

    def test_smtp_delivery_on_a_seen_on_b_and_expunge_on_b_seen_on_a(self):
        mb = imap(self.b.port)
        typ, data = mb.select("INBOX")
        self.assertEqual(int(data[0]), len(SEED))
        with smtplib.SMTP(HOST, self.smtp_port, timeout=SOCK_TIMEOUT) as s:
            s.sendmail("carol@localhost", ["alice@localhost"],
                       b"Subject: via node A\r\n\r\nacross nodes\r\n")
        typ, data = mb.noop()
        self.assertIn(str(len(SEED) + 1).encode(), [x for x in mb.untagged_responses
                                                    .get("EXISTS", [])] or data)
        typ, data = mb.fetch(str(len(SEED) + 1), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn(b"via node A", data[0][1])
        ma = imap(self.a.port)
        ma.select("INBOX")
        mb.store("1", "+FLAGS", "(\\Deleted)")
        mb.expunge()
        typ, data = ma.noop()
        self.assertIn(b"1", ma.untagged_responses.get("EXPUNGE", [b""]))
        typ, data = ma.search(None, "ALL")
        self.assertEqual(len(data[0].split()), len(SEED))
        for m in (ma, mb):
            m.logout()

    def idle_on(self, port):
        c = srv.RawClient(port)
        self.addCleanup(c.close)
        c.readline()
        self.assertTrue(c.command("LOGIN alice alice123")[1].startswith(b"OK"))
        self.assertTrue(c.command("SELECT INBOX")[1].startswith(b"OK"))
        c.send("i IDLE\r\n")
        self.assertTrue(c.readline().startswith(b"+"))
        return c

    def wait_for(self, c, pattern, timeout):
        rx = re.compile(pattern)
        t0 = time.monotonic()
        seen = []
        while time.monotonic() - t0 < timeout:
            try:
                r = c.read_response(timeout=timeout - (time.monotonic() - t0))
            except OSError:
                break
            if not r:
                break
            if rx.match(r):
                return time.monotonic() - t0
            seen.append(r)
        self.fail(f"no {pattern!r} within {timeout} s; got {seen!r}")

    def test_delivery_and_expunge_on_one_node_pushed_to_idle_on_the_other(self):
        c = self.idle_on(self.b.port)
        with smtplib.SMTP(HOST, self.smtp_port, timeout=SOCK_TIMEOUT) as s:
            s.sendmail("carol@localhost", ["alice@localhost"],
                       b"Subject: pushed\r\n\r\nacross nodes\r\n")
        waited = self.wait_for(c, rb"\* %d EXISTS" % (len(SEED) + 1), 2.0 * SLOW)
        print(f"\n  cross-node push of a delivery: {waited * 1000:.1f} ms", end=" ")
        ma = imap(self.a.port)
        ma.select("INBOX")
        ma.store("2", "+FLAGS", "(\\Seen)")
        self.wait_for(c, rb"\* 2 FETCH \(.*\\Seen", 2.0 * SLOW)
        ma.store("1", "+FLAGS", "(\\Deleted)")
        ma.expunge()
        self.wait_for(c, rb"\* 1 EXPUNGE", 2.0 * SLOW)
        ma.logout()
        c.send("DONE\r\n")
        c.read_tagged("i")

    def test_recent_is_given_to_one_session_across_nodes(self):
        """RFC 3501 2.3.2: a new message is \\Recent for exactly one
        session, also when sessions on two servers select it at the same
        instant."""
        ma = imap(self.a.port)
        shown = []
        for round in range(15):
            self.assertEqual(ma.append("INBOX", None, None, MSG)[0], "OK")
            got = []
            go = threading.Barrier(2)

            def select(port):
                m = imap(port)
                go.wait(10)
                m.select("INBOX")
                got.append(int(m.untagged_responses.get("RECENT", [b"0"])[-1]))
                m.logout()

            threads = [threading.Thread(target=select, args=(p,))
                       for p in (self.a.port, self.b.port)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30 * SLOW)
            shown.append(sum(got))
        ma.logout()
        # the seed's messages went to the first round's sessions
        self.assertEqual(shown[0], len(SEED) + 1, shown)
        self.assertEqual(shown[1:], [1] * 14, shown)

    def test_appends_on_both_nodes_at_once_get_distinct_uids(self):
        uids, errors = [], []
        lock = threading.Lock()

        def work(port, n):
            try:
                m = imap(port)
                for i in range(n):
                    typ, data = m.append("INBOX", None, None,
                                         MSG.replace(b"hello", f"hello {port} {i}".encode()))
                    got = re.search(rb"APPENDUID \d+ (\d+)", data[0])
                    with lock:
                        uids.append(int(got.group(1)))
                m.logout()
            except Exception as e:      # noqa: BLE001 - reported below
                with lock:
                    errors.append(repr(e))

        threads = [threading.Thread(target=work, args=(port, 25))
                   for port in (self.a.port, self.b.port, self.a.port, self.b.port)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * SLOW)
        self.assertEqual(errors, [])
        self.assertEqual(len(uids), 100)
        self.assertEqual(len(set(uids)), 100, "a UID was given twice")
        # both nodes list the same messages, with the same UIDs
        views = []
        for port in (self.a.port, self.b.port):
            m = imap(port)
            m.select("INBOX")
            typ, data = m.uid("SEARCH", "ALL")
            views.append(data[0])
            m.logout()
        self.assertEqual(views[0], views[1])
        self.assertEqual(len(views[0].split()), len(SEED) + 100)


@unittest.skipIf(SKIP, SKIP or "")
class TestTwoNodesWorkload(unittest.TestCase):

    def test_clients_spread_over_two_nodes_agree(self):
        def two_nodes(msgs):
            a = PgServer({"alice": msgs}, log_level="info")
            return [a, PgServer({}, db=a.db, log_level="info")]

        errors = run_workload(clients=12, seconds=15.0 * (1 if SLOW == 1 else 0.5),
                              make_servers=two_nodes)
        self.assertEqual(errors, [], "\n".join(errors[:20]))


@unittest.skipIf(SKIP, SKIP or "")
class TestDatabaseGoesAway(PgMixin, ServerTestCase):

    def test_sessions_go_on_after_the_connection_is_lost(self):
        m = self.imap()
        m.select("INBOX")
        typ, data = m.fetch("1", "(FLAGS)")
        self.assertEqual(typ, "OK")
        for round in range(3):
            # every connection of the server's database is cut, as a
            # restart of PostgreSQL does
            killed = psql(self.server.db.admin,
                          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          f"WHERE datname = '{self.server.db.name}'")
            self.assertGreaterEqual(int(killed.strip()), 1)
            typ, data = m.noop()
            self.assertEqual(typ, "OK")
            typ, data = m.fetch("1:*", "(UID FLAGS)")
            self.assertEqual(typ, "OK")
            self.assertEqual(len(data), len(SEED) + round)
            typ, data = m.append("INBOX", None, None, MSG)
            self.assertEqual(typ, "OK")
        m2 = self.imap("bob")
        self.assertEqual(m2.select("INBOX")[0], "OK")


@unittest.skipIf(SKIP, SKIP or "")
class TestDatabaseUnreachable(unittest.TestCase):
    """The database refuses connections for a while (as when it is down):
    IMAP answers NO [UNAVAILABLE], SMTP 451, nothing is half-written, the
    server stays up and serves again by itself once the database is
    back."""

    def setUp(self):
        self.s = PgServer({"alice": seed_text()})
        self.addCleanup(self.s.cleanup)
        add_smtp_section(self.s, True, {})
        self.s.start()
        line = self.s.wait_log(r"smtp listening on 127\.0\.0\.1:(\d+)", 5.0)
        self.smtp_port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        self.addCleanup(self.allow, True)

    def allow(self, yes):
        db = self.s.db
        psql(db.admin, f"ALTER DATABASE {db.name} ALLOW_CONNECTIONS {str(yes).lower()}")
        if not yes:
            psql(db.admin, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           f"WHERE datname = '{db.name}'")

    def test_unavailable_then_back(self):
        m = imap(self.s.port)
        self.assertEqual(m.select("INBOX")[0], "OK")
        self.allow(False)
        c = srv.RawClient(self.s.port)
        self.addCleanup(c.close)
        c.readline()
        self.assertTrue(c.command("LOGIN alice alice123")[1].startswith(b"OK"))
        untagged, tagged = c.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"NO [UNAVAILABLE]"), tagged)
        msg = b"Subject: lost?\r\n\r\nx"
        untagged, tagged = c.command(b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
        self.assertTrue(tagged.startswith(b"NO [UNAVAILABLE]"), tagged)
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            with smtplib.SMTP(HOST, self.smtp_port, timeout=SOCK_TIMEOUT) as sm:
                sm.sendmail("carol@localhost", ["alice@localhost"],
                            b"Subject: later\r\n\r\nplease retry\r\n")
        self.assertEqual(cm.exception.smtp_code, 451)
        self.assertTrue(self.s.alive())
        self.allow(True)
        # back by itself: the session that was selected goes on, a new
        # one selects, and neither the refused APPEND nor the mail is there
        typ, data = m.noop()
        self.assertEqual(typ, "OK")
        untagged, tagged = c.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"* %d EXISTS" % len(SEED), b"\r\n".join(untagged))
        with smtplib.SMTP(HOST, self.smtp_port, timeout=SOCK_TIMEOUT) as sm:
            sm.sendmail("carol@localhost", ["alice@localhost"],
                        b"Subject: later\r\n\r\nplease retry\r\n")
        typ, data = m.noop()
        typ, data = m.search(None, "ALL")
        self.assertEqual(len(data[0].split()), len(SEED) + 1)
        m.logout()
        self.s.stop()
        self.assertTrue(any("database unavailable" in line for line in self.s.log_lines()))


@unittest.skipIf(SKIP, SKIP or "")
class TestMigrateThroughPgsql(ServerTestCase):

    maxDiff = None

    def snapshot(self, m, box="INBOX"):
        typ, data = m.select(box)
        st = m.status(box, "(UIDVALIDITY UIDNEXT MESSAGES)")
        highest = int(re.search(rb"HIGHESTMODSEQ (\d+)",
                                m.status(box, "(HIGHESTMODSEQ)")[1][0]).group(1))
        typ, data = m.fetch("1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ BODY.PEEK[])")
        got = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            flags = sorted(re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).split())
            flags = [f for f in flags if f != b"\\Recent"]
            got[uid] = (flags, re.search(rb'INTERNALDATE "([^"]*)"', item[0]).group(1),
                        re.search(rb"MODSEQ \((\d+)\)", item[0]).group(1), item[1])
        return st[1], got, highest

    def test_flat_to_pgsql_and_back_keeps_uids_flags_and_modseqs(self):
        m = self.imap()
        m.select("INBOX")
        # modseqs out of UID order: the last change on the first message
        m.store("3", "+FLAGS", "(\\Answered)")
        m.store("1", "+FLAGS", "(\\Seen $Work)")
        m.store("2", "+FLAGS", "(\\Deleted)")
        m.expunge()
        self.assertEqual(m.append("INBOX", "(\\Draft)", '"10-Mar-2022 14:30:00 +0530"',
                                  MSG)[0], "OK")
        before = self.snapshot(m)
        m.logout()
        self.server.stop()
        db = Database()
        self.addCleanup(db.drop)
        flat_conf = open(self.server.conf).read()
        pg_support.use_pgsql(self.server, db)
        self.assertEqual(run_cli(self.server, "--init-db").returncode, 0)
        p = run_cli(self.server, "--migrate", "alice", "--from", "flat", "--to", "pgsql")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.server.start()
        self.port = self.server.port
        m = self.imap()
        self.assertEqual(self.snapshot(m), before)
        m.logout()
        self.server.stop()
        # and out again into Maildir (flat cannot take UIDs from elsewhere:
        # it has no set_uids, and says so)
        p = run_cli(self.server, "--migrate", "alice", "--from", "pgsql", "--to", "maildir")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"UIDs and UIDVALIDITY kept", p.stdout)
        with open(self.server.conf, "w") as f:
            f.write(flat_conf.replace('backend = "flat"; root', 'backend = "maildir"; root'))
        self.server.start()
        self.port = self.server.port
        m = self.imap()
        after = self.snapshot(m)
        # the same messages with the same modseqs; Maildir keeps a reserve
        # of modseqs above the highest given: HIGHESTMODSEQ may only rise
        self.assertEqual(after[:2], before[:2])
        self.assertGreaterEqual(after[2], before[2])
        m.logout()


if __name__ == "__main__":
    unittest.main()
