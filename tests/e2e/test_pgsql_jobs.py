"""The pgsql backend's round trips that cost a mailbox's or a message's
size run in a worker thread on a connection of its own, not in the loop
(backends/pgsql/pgsql_job.c): the first open of a mailbox (every message
read), the storing of an appended message's body, and an expunge's
whole change.

The check for other servers' changes made before each command of a
session with a mailbox selected is a job too: the command waits for a
sync started after it came, and the loop serves the others meanwhile.

The work is held through the test-only hook IMAPSERVER_TEST_JOB_HOLD
(core/io/job.h), so the assertions are about order, not time: while the
work is held, other sessions are answered and the held command is not.
A server killed while an append's body is stored but not yet the
mailbox's loses nothing acknowledged, shows nothing half-made, and the
body left over is collected later (its guard row ages out)."""

import os
import re
import smtplib
import socket
import subprocess
import threading
import time
import unittest

import pg_support
from pg_support import PgServer
import server as srv
from server import ServerTestCase
from smtp_support import add_smtp_section
from test_jobs import HOLD_ENV, WAIT, HeldJobCase

SKIP = pg_support.skip_reason()
COUNT = 300


def mailbox_text():
    body = "".join(f"{'z' * 70}\n" for _ in range(20))
    return "".join(f"From: sender{i % 5}@example.org\nTo: alice@localhost\n"
                   f"Subject: message {i}\nReceived: 2022-03-10 : 14 : 30\n{body}.\n"
                   for i in range(1, COUNT + 1))


class PgHeldCase(HeldJobCase):
    """HeldJobCase's helpers, on a pgsql server whose jobs can be held."""

    MAILBOXES = {"alice": mailbox_text(), "bob": None}

    def setUp(self):
        if SKIP:
            self.skipTest(SKIP)
        boxes = {u: (srv.seed_text() if t is None else t) for u, t in self.MAILBOXES.items()}
        self.server = PgServer(boxes, limits=self.LIMITS)
        self.addCleanup(self.server.cleanup)
        self.configure(self.server)
        self._clients = []
        self.hold = os.path.join(self.server.dir, "hold")
        os.environ[HOLD_ENV] = self.hold
        try:
            self.server.start()
        finally:
            os.environ.pop(HOLD_ENV, None)
        self.port = self.server.port

    def configure(self, server):
        """What a subclass adds to the server's config before it starts."""

    def hold_kind(self, kind):
        """Holds the work of that kind alone (job_test_hold_named())."""
        with open(self.hold, "w") as f:
            f.write(kind + "\n")
        os.chmod(self.hold, 0o644)

    def sql_count(self, statement):
        return int(self.server.db.sql(statement).strip())

    def kill_and_restart(self):
        """kill -9 of the server while its job is held, then a new one."""
        self.server.proc.kill()
        self.server.proc.wait()
        self.server.proc = None
        self.release_job()
        self.server.start()
        self.port = self.server.port

    def database_gone(self):
        """The database refuses connections and drops this server's."""
        db = self.server.db
        pg_support.psql(db.admin, f"ALTER DATABASE {db.name} ALLOW_CONNECTIONS false")
        self.addCleanup(self.database_back)
        pg_support.psql(db.admin, "SELECT count(pg_terminate_backend(pid)) FROM "
                                  f"pg_stat_activity WHERE datname = '{db.name}'")

    def database_back(self):
        db = self.server.db
        pg_support.psql(db.admin, f"ALTER DATABASE {db.name} ALLOW_CONNECTIONS true")

    def until_ok(self, client, command):
        """command again until it is answered OK (the backend reconnects),
        at most WAIT seconds; returns the last answer."""
        deadline = time.monotonic() + WAIT
        while True:
            resp, tagged = client.command(command, timeout=WAIT)
            if tagged.startswith(b"OK") or time.monotonic() > deadline:
                return resp, tagged
            time.sleep(0.1)

    def wait_sql(self, statement, want):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.sql_count(statement) == want:
                return
            time.sleep(0.02)
        self.fail(f"{statement}: never {want}; log:\n" + self.server.log_text())


class TestFirstOpenInAJob(PgHeldCase):

    def test_others_served_while_the_first_open_reads_the_mailbox(self):
        self.hold_job()
        a = self.raw_login("alice")
        a.send("O1 SELECT INBOX\r\n")
        self.assertTrue(self.server.wait_log(r"alice/INBOX: first open in a job",
                                             timeout=WAIT), self.server.log_text())
        b = self.raw_login("bob")
        resp, tagged = b.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = b.command('LIST "" "*"')
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # another session's STATUS of the same mailbox waits for it
        c = self.raw_login("alice")
        c.send("S1 STATUS INBOX (MESSAGES UIDNEXT)\r\n")
        resp, tagged = b.command("NOOP")
        self.no_answer(a, "the SELECT")
        self.no_answer(c, "the STATUS")
        self.release_job()
        untagged, tagged = a.read_tagged("O1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(f"* {COUNT} EXISTS\r\n".encode(), untagged)
        untagged, tagged = c.read_tagged("S1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(f"MESSAGES {COUNT} UIDNEXT {COUNT + 1}".encode(), b"".join(untagged))
        resp, tagged = a.command(f"FETCH {COUNT} (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn(f"Subject: message {COUNT}".encode(), b"".join(resp))

    def test_a_change_made_while_the_job_read_is_seen(self):
        """The job reads one snapshot; what another session commits after
        it is caught up at the first command after the open."""
        self.hold_job()
        a = self.raw_login("alice")
        a.send("O1 SELECT INBOX\r\n")
        self.assertTrue(self.server.wait_log(r"alice/INBOX: first open in a job",
                                             timeout=WAIT), self.server.log_text())
        # the job is held after its snapshot was read: a delivery now
        # (by another server on the same database) comes after it
        self.server.db.sql("SELECT 1")
        time.sleep(0.2)
        other = PgServer({}, db=self.server.db)
        self.addCleanup(other.cleanup)
        other.start()
        o = srv.RawClient(other.port)
        o.readline()
        resp, tagged = o.command("LOGIN alice alice123")
        msg = b"From: x@example.org\r\nSubject: late\r\n\r\nlate\r\n"
        o.send(f"A1 APPEND INBOX {{{len(msg)}+}}\r\n".encode() + msg + b"\r\n")
        untagged, tagged = o.read_tagged("A1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        o.close()
        self.release_job()
        untagged, tagged = a.read_tagged("O1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = a.command("NOOP", timeout=WAIT)
        self.assertIn(f"* {COUNT + 1} EXISTS\r\n".encode(), resp + untagged)

    def test_list_status_waits_for_the_first_opens(self):
        a = self.raw_login("alice")
        resp, tagged = a.command("CREATE Work")
        self.hold_job()
        a.send('L1 LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT))\r\n')
        # (one at a time, in the order of the names)
        self.assertTrue(self.server.wait_log(r"alice/Drafts: first open in a job",
                                             timeout=WAIT), self.server.log_text())
        b = self.raw_login("bob")
        resp, tagged = b.command('LIST "" "*"')
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.no_answer(a, "the LIST")
        self.release_job()
        untagged, tagged = a.read_tagged("L1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # each LIST line followed by its STATUS
        lines = [l for l in untagged if l.startswith((b"* LIST", b"* STATUS"))]
        names = [re.search(rb'"/" "?([^"\r]*)"?\r\n', l).group(1) for l in lines
                 if l.startswith(b"* LIST")]
        self.assertIn(b"INBOX", names)
        self.assertIn(b"Work", names)
        for i, l in enumerate(lines):
            if l.startswith(b"* LIST"):
                self.assertTrue(lines[i + 1].startswith(b"* STATUS"), lines)
        self.assertIn(f'* STATUS "INBOX" (MESSAGES {COUNT} UIDNEXT {COUNT + 1})\r\n'.encode(),
                      untagged)
        self.assertIn(b'* STATUS "Work" (MESSAGES 0 UIDNEXT 1)\r\n', untagged)
        self.assertNotIn("first open of", self.server.log_text())

    def test_list_status_of_a_mailbox_deleted_meanwhile(self):
        """A mailbox deleted by another session while the LIST waits for
        the first opens before it: its STATUS is left out (RFC 5819 4:
        the server cannot give it), the others' are there."""
        a = self.raw_login("alice")
        for name in ("Work", "Zeta"):
            resp, tagged = a.command(f"CREATE {name}", timeout=WAIT)
            self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.hold_job()
        a.send('L1 LIST "" "*" RETURN (STATUS (MESSAGES))\r\n')
        self.assertTrue(self.server.wait_log(r"alice/Drafts: first open in a job",
                                             timeout=WAIT), self.server.log_text())
        d = self.raw_login("alice")
        resp, tagged = d.command("DELETE Zeta", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.release_job()
        untagged, tagged = a.read_tagged("L1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b'* STATUS "Work" (MESSAGES 0)\r\n', untagged)
        self.assertIn(f'* STATUS "INBOX" (MESSAGES {COUNT})\r\n'.encode(), untagged)
        self.assertFalse([l for l in untagged if l.startswith(b'* STATUS "Zeta"')], untagged)
        # the session goes on
        resp, tagged = a.command('LIST "" "*"', timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertFalse([l for l in resp if b"Zeta" in l], resp)

    def test_a_missing_mailbox_is_named_without_a_warning(self):
        a = self.raw_login("alice")
        resp, tagged = a.command("SELECT nosuch", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"NO"), tagged)
        resp, tagged = a.command("STATUS nosuch (MESSAGES)", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"NO"), tagged)
        self.assertNotIn("in a job:", self.server.log_text())


class TestAppendInAJob(PgHeldCase):

    MESSAGE = (b"From: carol@example.org\r\nTo: alice@localhost\r\nSubject: held\r\n\r\n" +
               b"".join(b"line %d of the held message\r\n" % i for i in range(4000)))
    PENDING = "SELECT count(*) FROM imap_body_pending"
    HELD_IN_DB = ("SELECT count(*) FROM imap_bodies WHERE position('Subject: held' IN "
                  "convert_from(data, 'UTF8')) > 0")
    HELD_MSGS = ("SELECT count(*) FROM imap_messages m JOIN imap_bodies b ON b.id = m.body_id "
                 "WHERE position('Subject: held' IN convert_from(b.data, 'UTF8')) > 0")

    def start_append(self):
        a = self.raw_login("alice", "INBOX")
        self.hold_job()
        a.send(f"A1 APPEND INBOX (\\Flagged) {{{len(self.MESSAGE)}+}}\r\n".encode() +
               self.MESSAGE + b"\r\n")
        # the work stored the body with its guard, then the hook holds it
        self.wait_sql(self.PENDING, 1)
        return a

    def test_others_served_while_the_body_is_stored(self):
        a = self.start_append()
        # (bob's first open would be a job held too: he lists)
        b = self.raw_login("bob")
        resp, tagged = b.command('LIST "" "*"')
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c = self.raw_login("alice", "INBOX")
        resp, tagged = c.command(f"FETCH {COUNT} (FLAGS)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("NOOP")
        self.assertNotIn(f"* {COUNT + 1} EXISTS\r\n".encode(), resp)
        self.no_answer(a, "the APPEND")
        # stored, not yet the mailbox's
        self.assertEqual(self.sql_count(self.HELD_MSGS), 0)
        self.release_job()
        untagged, tagged = a.read_tagged("A1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK [APPENDUID "), tagged)
        uid = int(re.search(rb"APPENDUID \d+ (\d+)", tagged).group(1))
        self.assertEqual(uid, COUNT + 1)
        self.assertEqual(self.sql_count(self.PENDING), 0)
        self.assertEqual(self.sql_count(self.HELD_MSGS), 1)
        resp, tagged = c.command("NOOP", timeout=WAIT)
        self.assertIn(f"* {COUNT + 1} EXISTS\r\n".encode(), resp)
        resp, tagged = c.command(f"UID FETCH {uid} (FLAGS BODY.PEEK[])", timeout=WAIT)
        data = b"".join(resp)
        self.assertIn(b"\\Flagged", data)
        self.assertIn(self.MESSAGE, data)

    def start_commit(self):
        """An APPEND whose transaction (the UID given, the message
        committed) is held in the worker after its commit."""
        a = self.raw_login("alice", "INBOX")
        with open(self.hold, "w") as f:
            f.write("commit\n")
        a.send(f"A1 APPEND INBOX (\\Flagged) {{{len(self.MESSAGE)}+}}\r\n".encode() +
               self.MESSAGE + b"\r\n")
        self.wait_sql(self.HELD_MSGS, 1)
        return a

    def test_others_served_while_the_append_commits(self):
        c = self.raw_login("alice", "INBOX")
        b = self.raw_login("bob", "INBOX")
        a = self.start_commit()
        # the loop serves the others; reads of the mailbox go on (as
        # during an expunge), its writes wait for the commit
        resp, tagged = b.command("FETCH 1 (FLAGS)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("NOOP")
        self.assertNotIn(f"* {COUNT + 1} EXISTS\r\n".encode(), resp)
        c.send("N1 STORE 1 +FLAGS (\\Seen)\r\n")
        self.no_answer(a, "the APPEND")
        self.no_answer(c, "the STORE")
        self.assertEqual(self.sql_count(self.PENDING), 0)
        self.release_job()
        untagged, tagged = a.read_tagged("A1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK [APPENDUID "), tagged)
        uid = int(re.search(rb"APPENDUID \d+ (\d+)", tagged).group(1))
        self.assertEqual(uid, COUNT + 1)
        untagged, tagged = c.read_tagged("N1", timeout=WAIT)
        self.assertIn(f"* {COUNT + 1} EXISTS\r\n".encode(), untagged)
        resp, tagged = c.command(f"UID FETCH {uid} (FLAGS BODY.PEEK[])", timeout=WAIT)
        data = b"".join(resp)
        self.assertIn(b"\\Flagged", data)
        self.assertIn(self.MESSAGE, data)
        # the next append follows it
        resp, tagged = c.command(b"APPEND INBOX {3+}\r\nx\r\n", timeout=WAIT)
        self.assertIn(f"APPENDUID".encode(), tagged)
        self.assertEqual(int(re.search(rb"APPENDUID \d+ (\d+)", tagged).group(1)), uid + 1)

    def test_kill_while_the_append_commits_keeps_the_committed_message(self):
        self.start_commit()
        self.kill_and_restart()
        a = self.raw_login("alice")
        resp, tagged = a.command("SELECT INBOX", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # committed (never acknowledged): there once, whole, no guard left
        self.assertIn(f"* {COUNT + 1} EXISTS\r\n".encode(), resp)
        self.assertEqual(self.sql_count(self.HELD_MSGS), 1)
        self.assertEqual(self.sql_count(self.PENDING), 0)
        resp, tagged = a.command(f"FETCH {COUNT + 1} BODY.PEEK[]", timeout=WAIT)
        self.assertIn(self.MESSAGE, b"".join(resp))

    def test_database_gone_before_the_transaction_refuses_the_append(self):
        self.ALLOW_LOG_ERRORS = True
        a = self.start_append()
        self.database_gone()
        self.release_job()
        untagged, tagged = a.read_tagged("A1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"NO [UNAVAILABLE]"), tagged)
        self.database_back()
        # nothing half-made: not in the mailbox; the server serves again
        self.assertEqual(self.sql_count(self.HELD_MSGS), 0)
        resp, tagged = a.command("NOOP", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertNotIn(f"* {COUNT + 1} EXISTS\r\n".encode(), resp)
        resp, tagged = a.command(b"APPEND INBOX {3+}\r\nx\r\n", timeout=WAIT)
        self.assertEqual(int(re.search(rb"APPENDUID \d+ (\d+)", tagged).group(1)), COUNT + 1)

    def test_the_same_body_twice_is_stored_once(self):
        a = self.raw_login("alice", "INBOX")
        for tag in ("A1", "A2"):
            a.send(f"{tag} APPEND INBOX {{{len(self.MESSAGE)}+}}\r\n".encode() +
                   self.MESSAGE + b"\r\n")
            untagged, tagged = a.read_tagged(tag, timeout=WAIT)
            self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(self.sql_count(self.HELD_IN_DB), 1)
        self.assertEqual(self.sql_count(self.HELD_MSGS), 2)
        self.assertEqual(self.sql_count(self.PENDING), 0)

    def test_kill_while_the_body_is_stored_loses_nothing(self):
        self.start_append()
        bodies = self.sql_count("SELECT count(*) FROM imap_bodies")
        self.kill_and_restart()
        a = self.raw_login("alice")
        resp, tagged = a.command("SELECT INBOX", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # never acknowledged, never shown: the mailbox is as it was
        self.assertIn(f"* {COUNT} EXISTS\r\n".encode(), resp)
        self.assertIn(f"UIDNEXT {COUNT + 1}".encode(), b"".join(resp))
        self.assertEqual(self.sql_count(self.HELD_MSGS), 0)
        # the body left over stays guarded until its grace is over ...
        resp, tagged = a.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
        resp, tagged = a.command("EXPUNGE", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(self.sql_count(self.PENDING), 1)
        self.assertEqual(self.sql_count("SELECT count(*) FROM imap_bodies"), bodies)
        # ... then an expunge's collection removes it with its guard
        self.server.db.sql("UPDATE imap_body_pending SET at = now() - interval '2 hours'")
        resp, tagged = a.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
        resp, tagged = a.command("EXPUNGE", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(self.sql_count(self.PENDING), 0)
        self.assertEqual(self.sql_count(self.HELD_IN_DB), 0)
        self.assertEqual(self.sql_count("SELECT count(*) FROM imap_bodies"), bodies - 1)
        resp, tagged = a.command(f"FETCH {COUNT - 2} (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn(f"Subject: message {COUNT}".encode(), b"".join(resp))

    def test_session_gone_while_the_body_is_stored(self):
        """The message is committed all the same (as on flat and Maildir:
        the client may have seen nothing, but nothing is half-made)."""
        a = self.start_append()
        a.close()
        self.release_job()
        self.wait_sql(self.PENDING, 0)
        self.assertEqual(self.sql_count(self.HELD_MSGS), 1)
        c = self.raw_login("alice")
        resp, tagged = c.command("SELECT INBOX", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(f"* {COUNT + 1} EXISTS\r\n".encode(), resp)


class TestExpungeInAJob(PgHeldCase):

    MESSAGES = ("SELECT count(*) FROM imap_messages WHERE mailbox_id = "
                "(SELECT x.id FROM imap_mailboxes x JOIN imap_users u ON u.id = x.user_id "
                "WHERE u.name = 'alice' AND x.name = 'INBOX')")

    def start_expunge(self, a):
        resp, tagged = a.command("STORE 1:10 +FLAGS.SILENT (\\Deleted)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.hold_job()
        a.send("X1 EXPUNGE\r\n")
        # the work committed its change, then the hook holds it
        self.wait_sql(self.MESSAGES, COUNT - 10)

    def test_others_served_while_the_expunge_works_then_qresync_is_told(self):
        a = self.raw_login("alice")
        resp, tagged = a.command("ENABLE QRESYNC")
        resp, tagged = a.command("SELECT INBOX")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        uidv = re.search(rb"UIDVALIDITY (\d+)", b"".join(resp)).group(1).decode()
        known = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(resp)).group(1))
        c = self.raw_login("alice", "INBOX")
        self.start_expunge(a)
        resp, tagged = c.command(f"FETCH {COUNT} (UID FLAGS)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("NOOP")
        self.assertFalse([r for r in resp if r.endswith(b" EXPUNGE\r\n")], resp)
        self.no_answer(a, "the EXPUNGE")
        self.release_job()
        untagged, tagged = a.read_tagged("X1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"* VANISHED 1:10\r\n", untagged)
        resp, tagged = c.command("NOOP", timeout=WAIT)
        self.assertEqual(len([r for r in resp if r.endswith(b" EXPUNGE\r\n")]), 10, resp)
        resp, tagged = c.command("STATUS INBOX (MESSAGES HIGHESTMODSEQ)", timeout=WAIT)
        status = b"".join(resp)
        self.assertIn(f"MESSAGES {COUNT - 10}".encode(), status)
        highest = int(re.search(rb"HIGHESTMODSEQ (\d+)", status).group(1))
        self.assertEqual(highest, self.sql_count(
            "SELECT highest_modseq FROM imap_mailboxes x JOIN imap_users u "
            "ON u.id = x.user_id WHERE u.name = 'alice' AND x.name = 'INBOX'"))
        self.assertEqual(self.sql_count("SELECT count(*) FROM imap_expunged"), 10)
        # a client that knew the mailbox before is told of the expunge
        e = self.raw_login("alice")
        resp, tagged = e.command("ENABLE QRESYNC")
        resp, tagged = e.command(f"SELECT INBOX (QRESYNC ({uidv} {known}))", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"* VANISHED (EARLIER) 1:10\r\n", resp)

    def test_a_store_waits_for_the_expunge_then_is_kept(self):
        a = self.raw_login("alice", "INBOX")
        c = self.raw_login("alice", "INBOX")
        self.start_expunge(a)
        c.send(f"S1 UID STORE {COUNT} +FLAGS (\\Flagged)\r\n")
        resp, tagged = self.raw_login("bob").command("NOOP")
        self.no_answer(c, "the STORE")
        self.release_job()
        untagged, tagged = a.read_tagged("X1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        untagged, tagged = c.read_tagged("S1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"\\Flagged", b"".join(untagged))
        self.assertEqual(self.sql_count(f"SELECT flags & 4 FROM imap_messages WHERE uid = {COUNT} "
                                        "AND mailbox_id = (SELECT x.id FROM imap_mailboxes x "
                                        "JOIN imap_users u ON u.id = x.user_id "
                                        "WHERE u.name = 'alice' AND x.name = 'INBOX')"), 4)

    def test_kill_while_the_expunge_works_loses_nothing_else(self):
        a = self.raw_login("alice", "INBOX")
        self.start_expunge(a)
        self.kill_and_restart()
        e = self.raw_login("alice")
        resp, tagged = e.command("SELECT INBOX", timeout=WAIT)
        # committed before the kill: the ten are gone, the rest is there
        self.assertIn(f"* {COUNT - 10} EXISTS\r\n".encode(), resp)
        resp, tagged = e.command("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn(b"Subject: message 11", b"".join(resp))


ALICE_INBOX = ("(SELECT x.id FROM imap_mailboxes x JOIN imap_users u ON u.id = x.user_id "
               "WHERE u.name = 'alice' AND x.name = 'INBOX')")


class TestFlagsInAJob(PgHeldCase):
    """A command's flag changes (STORE, FETCH's implicit \\Seen) are one
    transaction in a worker, at one modseq: the loop serves the others
    meanwhile, and the answer comes once they are committed."""

    def flag_count(self, bit):
        return self.sql_count(f"SELECT count(*) FROM imap_messages WHERE flags & {bit} <> 0 "
                              f"AND mailbox_id = {ALICE_INBOX}")

    def hold_flags(self):
        self.hold_kind("flags")

    def start_store(self, a, command="S1 STORE 1:100 +FLAGS (\\Flagged)"):
        self.hold_flags()
        a.send(command + "\r\n")
        # committed, then held by the hook
        self.wait_sql(f"SELECT count(*) FROM imap_messages WHERE flags & 4 <> 0 "
                      f"AND mailbox_id = {ALICE_INBOX}", 100)

    def test_others_served_while_a_store_commits_then_its_answer(self):
        a = self.raw_login("alice")
        resp, tagged = a.command("SELECT INBOX (CONDSTORE)")
        before = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(resp)).group(1))
        c = self.raw_login("alice", "INBOX")
        self.start_store(a)
        # the loop serves the others; a read of the mailbox goes on (the
        # flags as they were: not committed for this server yet), a write
        # waits for the commit
        b = self.raw_login("bob", "INBOX")
        resp, tagged = b.command('LIST "" *')
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = c.command("FETCH 1 (FLAGS)")
        self.assertNotIn(b"\\Flagged", b"".join(resp))
        c.send("C1 STORE 200 +FLAGS (\\Answered)\r\n")
        self.no_answer(a, "the STORE")
        self.no_answer(c, "the second STORE")
        self.release_job()
        untagged, tagged = a.read_tagged("S1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        fetches = [r for r in untagged if b" FETCH (" in r]
        self.assertEqual(len(fetches), 100, untagged)
        # one transaction, one modseq, the next one after the mailbox's
        modseqs = {int(re.search(rb"MODSEQ \((\d+)\)", r).group(1)) for r in fetches}
        self.assertEqual(modseqs, {before + 1})
        self.assertTrue(all(b"\\Flagged" in r for r in fetches))
        untagged, tagged = c.read_tagged("C1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(self.flag_count(2), 1)
        # the other session is told of the first STORE's change (it
        # waited for it: in its answer)
        told = [r for r in untagged if b"\\Flagged" in r]
        self.assertEqual(len(told), 100, untagged)
        # the answering session knows its own change: nothing again
        resp, tagged = a.command("NOOP", timeout=WAIT)
        self.assertFalse([r for r in resp if b"\\Flagged" in r], resp)

    def test_conditional_and_silent_stores(self):
        a = self.raw_login("alice")
        resp, tagged = a.command("SELECT INBOX (CONDSTORE)")
        resp, tagged = a.command("STORE 1 +FLAGS.SILENT (\\Answered)", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertFalse([r for r in resp if b" FETCH (" in r], resp)
        resp, tagged = a.command("FETCH 1:2 (MODSEQ)", timeout=WAIT)
        m1, m2 = [int(x) for x in re.findall(rb"MODSEQ \((\d+)\)", b"".join(resp))]
        # message 1 changed after m2: not stored, MODIFIED says so
        resp, tagged = a.command(f"STORE 1:2 (UNCHANGEDSINCE {m2}) +FLAGS (\\Draft)",
                                 timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK [MODIFIED 1]"), tagged)
        self.assertEqual([r for r in resp if b" FETCH (" in r][0][:4], b"* 2 ")
        self.assertEqual(self.flag_count(16), 1)
        # a custom keyword, kept by the database
        resp, tagged = a.command("STORE 3 +FLAGS ($Label1 Work,Home)", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"$Label1", b"".join(resp))
        e = self.raw_login("alice", "INBOX")
        resp, tagged = e.command("FETCH 3 (FLAGS)", timeout=WAIT)
        self.assertIn(b"$Label1", b"".join(resp))
        self.assertIn(b"Work,Home", b"".join(resp))

    def test_fetch_sets_seen_in_a_worker(self):
        a = self.raw_login("alice", "INBOX")
        seen = self.flag_count(1)
        self.hold_flags()
        a.send("F1 FETCH 1:3 (BODY[HEADER.FIELDS (SUBJECT)])\r\n")
        self.wait_sql(f"SELECT count(*) FROM imap_messages WHERE flags & 1 <> 0 "
                      f"AND mailbox_id = {ALICE_INBOX}", seen + 3)
        b = self.raw_login("bob", "INBOX")
        resp, tagged = b.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.no_answer(a, "the FETCH")
        self.release_job()
        untagged, tagged = a.read_tagged("F1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        fetches = [r for r in untagged if b" FETCH (" in r]
        self.assertEqual(len(fetches), 3, untagged)
        self.assertTrue(all(b"\\Seen" in r for r in fetches), fetches)
        self.assertIn(b"Subject: message 1", b"".join(untagged))
        # told once: not again at the next command
        resp, tagged = a.command("NOOP", timeout=WAIT)
        self.assertFalse([r for r in resp if b" FETCH (" in r], resp)

    def test_kill_while_the_store_commits_keeps_it(self):
        a = self.raw_login("alice", "INBOX")
        self.start_store(a)
        self.kill_and_restart()
        e = self.raw_login("alice", "INBOX")
        resp, tagged = e.command("SEARCH FLAGGED", timeout=WAIT)
        self.assertIn(b"* SEARCH " + b" ".join(str(i).encode() for i in range(1, 101)) +
                      b"\r\n", resp)

    def test_session_gone_while_its_store_commits(self):
        a = self.raw_login("alice", "INBOX")
        c = self.raw_login("alice", "INBOX")
        self.start_store(a)
        a.close()
        time.sleep(0.1)
        self.release_job()
        # (a read does not wait for the commit: NOOPs until it is told)
        told = []
        for _ in range(100):
            resp, tagged = c.command("NOOP", timeout=WAIT)
            self.assertTrue(tagged.startswith(b"OK"), tagged)
            told += [r for r in resp if b"\\Flagged" in r]
            if told:
                break
            time.sleep(0.05)
        self.assertEqual(len(told), 100, told)

    def test_database_gone_before_the_transaction_refuses_the_store(self):
        self.ALLOW_LOG_ERRORS = True
        a = self.raw_login("alice", "INBOX")
        # the check before commands made once, with the database there:
        # the STORE's own transaction meets it gone
        resp, tagged = a.command("NOOP")
        self.database_gone()
        resp, tagged = a.command("STORE 1:5 +FLAGS (\\Flagged)", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"NO [UNAVAILABLE]"), tagged)
        self.assertFalse([r for r in resp if b"\\Flagged" in r], resp)
        self.database_back()
        # nothing half-made: the flags as they were, here and stored
        self.assertEqual(self.flag_count(4), 0)
        resp, tagged = self.until_ok(a, "FETCH 1:5 (FLAGS)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertFalse([r for r in resp if b"\\Flagged" in r], resp)
        resp, tagged = a.command("STORE 1:5 +FLAGS (\\Flagged)", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(self.flag_count(4), 5)


class TestFlagsAcrossNodes(PgHeldCase):
    """Another node's change to a STORE's messages, committed after this
    node's state was read but before the STORE's transaction (held
    there): the STORE's rule is applied to the messages as they are
    then (+FLAGS and -FLAGS keep the other's flags and keywords, FLAGS
    replaces them, as if it came second), and UNCHANGEDSINCE is checked
    against them under the lock (RFC 7162 3.1.3): no change is lost."""

    def setUp(self):
        super().setUp()
        self.other = PgServer({}, db=self.server.db)
        self.addCleanup(self.other.cleanup)
        self.other.start()
        self.o = srv.RawClient(self.other.port)
        self.addCleanup(self.o.close)
        self.o.readline()
        for command in ("LOGIN alice alice123", "SELECT INBOX (CONDSTORE)"):
            resp, tagged = self.o.command(command, timeout=WAIT)
            self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.a = self.raw_login("alice")
        resp, tagged = self.a.command("SELECT INBOX (CONDSTORE)", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def held_store(self, command, meanwhile):
        """command on this node, its transaction held before it begins
        while the other node makes meanwhile; then its answer."""
        mark = self.hold + ".held"
        if os.path.exists(mark):
            os.unlink(mark)
        self.hold_kind("flags-begin")
        self.a.send(f"S1 {command}\r\n")
        deadline = time.monotonic() + WAIT
        while not os.path.exists(mark):
            self.assertLess(time.monotonic(), deadline, self.server.log_text())
            time.sleep(0.01)
        resp, tagged = self.o.command(meanwhile, timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.release_job()
        return self.a.read_tagged("S1", timeout=WAIT)

    def stored(self, uid):
        """(flags, sorted keywords) of alice's message uid, as stored."""
        out = self.server.db.sql(f"SELECT flags, keywords FROM imap_messages WHERE "
                                 f"mailbox_id = {ALICE_INBOX} AND uid = {uid}").strip()
        flags, _, keywords = out.partition("|")
        return int(flags), sorted(keywords.split())

    def highest(self):
        return self.sql_count(f"SELECT highest_modseq FROM imap_mailboxes "
                              f"WHERE id = {ALICE_INBOX}")

    def test_a_store_applies_its_rule_to_the_others_change(self):
        # +FLAGS: both changes kept
        untagged, tagged = self.held_store("STORE 1 +FLAGS (\\Seen $Work)",
                                           "STORE 1 +FLAGS (\\Flagged $Home)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(self.stored(1), (1 | 4, ["$Home", "$Work"]))
        fetch = [r for r in untagged if r.startswith(b"* 1 FETCH")]
        self.assertEqual(len(fetch), 1, untagged)
        for flag in (b"\\Seen", b"\\Flagged", b"$Work", b"$Home"):
            self.assertIn(flag, fetch[0])
        # -FLAGS: removes its own, keeps the other's
        resp, tagged = self.a.command("STORE 2 +FLAGS (\\Seen $Work)", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        untagged, tagged = self.held_store("STORE 2 -FLAGS ($Work)",
                                           "STORE 2 +FLAGS (\\Answered $Home)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(self.stored(2), (1 | 2, ["$Home"]))
        # FLAGS: replaces what the other added too (it came second)
        untagged, tagged = self.held_store("STORE 3 FLAGS (\\Draft)",
                                           "STORE 3 +FLAGS (\\Flagged $Home)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(self.stored(3), (16, []))
        fetch = [r for r in untagged if r.startswith(b"* 3 FETCH")]
        self.assertEqual(len(fetch), 1, untagged)
        self.assertNotIn(b"\\Flagged", fetch[0])
        # both nodes agree
        for c in (self.a, self.o):
            resp, tagged = c.command("FETCH 1:3 (FLAGS)", timeout=WAIT)
            flags = {int(m.group(1)): set(m.group(2).split()) - {b"\\Recent"}
                     for m in re.finditer(rb"\* (\d+) FETCH \(.*?FLAGS \(([^)]*)\)",
                                          b"".join(resp))}
            self.assertEqual(flags[1], {b"\\Seen", b"\\Flagged", b"$Work", b"$Home"})
            self.assertEqual(flags[2], {b"\\Seen", b"\\Answered", b"$Home"})
            self.assertEqual(flags[3], {b"\\Draft"})

    def test_unchangedsince_is_checked_under_the_lock(self):
        resp, tagged = self.a.command("FETCH 4:6 (MODSEQ)", timeout=WAIT)
        since = max(int(x) for x in re.findall(rb"MODSEQ \((\d+)\)", b"".join(resp)))
        untagged, tagged = self.held_store(f"STORE 4:5 (UNCHANGEDSINCE {since}) "
                                           "+FLAGS (\\Deleted)",
                                           "STORE 5 +FLAGS (\\Flagged)")
        # 5 was changed past it by the other node: not stored, said so
        self.assertTrue(tagged.startswith(b"OK [MODIFIED 5]"), tagged)
        self.assertEqual([r[:8] for r in untagged if b" FETCH (" in r and b"\\Deleted" in r],
                         [b"* 4 FETC"])
        self.assertEqual(self.stored(4)[0], 8)
        self.assertEqual(self.stored(5)[0], 4)
        # every one changed past it: nothing written, no modseq taken
        untagged, tagged = self.held_store(f"STORE 6 (UNCHANGEDSINCE {since}) "
                                           "+FLAGS (\\Deleted)",
                                           "STORE 6 +FLAGS (\\Answered)")
        self.assertTrue(tagged.startswith(b"OK [MODIFIED 6]"), tagged)
        self.assertEqual(self.stored(6)[0], 2)
        highest = self.highest()
        resp, tagged = self.o.command("FETCH 6 (MODSEQ)", timeout=WAIT)
        self.assertIn(f"MODSEQ ({highest})".encode(), b"".join(resp))
        # this node's session is told of the other's changes
        resp, tagged = self.a.command("FETCH 5:6 (FLAGS MODSEQ)", timeout=WAIT)
        text = b"".join(resp)
        self.assertRegex(text, rb"\* 5 FETCH \([^\r]*\\Flagged")
        self.assertRegex(text, rb"\* 6 FETCH \([^\r]*\\Answered")


class TestRecentTaken(PgHeldCase):
    """\\Recent is taken from the database (RFC 3501 2.3.2: for one
    session, across servers) by the sync a command of a read-write
    session waits for, in its worker; taken in the loop (one statement)
    only for messages no such sync read, and then it never waits for the
    mailbox row's lock, which a change of another server holds for its
    whole transaction: none is taken (none shown: never twice), and the
    loop goes on at once."""

    def first_recent(self):
        return self.sql_count(f"SELECT first_recent_uid FROM imap_mailboxes "
                              f"WHERE id = {ALICE_INBOX}")

    def hold_sync(self):
        self.hold_kind("sync")

    def taken_before_the_answer(self, client, tag, command, first_recent):
        """command sent with the check's work held: the store's first
        recent UID reaches first_recent (taken by the check) before the
        command is answered; then its answer, OK."""
        self.hold_sync()
        client.send(f"{tag} {command}\r\n")
        deadline = time.monotonic() + WAIT
        while self.first_recent() != first_recent:
            self.assertLess(time.monotonic(), deadline, self.server.log_text())
            time.sleep(0.02)
        self.no_answer(client, command)
        self.release_job()
        untagged, tagged = client.read_tagged(tag, timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        return untagged, tagged

    def append(self, client, tag):
        msg = b"From: x@example.org\r\nSubject: new\r\n\r\nnew\r\n"
        client.send(f"{tag} APPEND INBOX {{{len(msg)}+}}\r\n".encode() + msg + b"\r\n")
        untagged, tagged = client.read_tagged(tag, timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_taken_by_the_sync_in_its_worker(self):
        ro = self.raw_login("alice")
        resp, tagged = ro.command("EXAMINE INBOX", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(self.first_recent(), 1)
        # a delivery by another server
        other = PgServer({}, db=self.server.db)
        self.addCleanup(other.cleanup)
        other.start()
        o = srv.RawClient(other.port)
        self.addCleanup(o.close)
        o.readline()
        resp, tagged = o.command("LOGIN alice alice123", timeout=WAIT)
        self.append(o, "A1")
        # only read-only sessions here: their syncs take nothing
        resp, tagged = ro.command("NOOP", timeout=WAIT)
        self.assertIn(f"* {COUNT + 1} EXISTS\r\n".encode(), resp)
        self.assertEqual(self.first_recent(), 1)
        # a SELECT's sync takes them (held after its work), before the
        # SELECT is answered
        rw = self.raw_login("alice")
        untagged, tagged = self.taken_before_the_answer(rw, "S1", "SELECT INBOX", COUNT + 2)
        self.assertIn(f"* {COUNT + 1} RECENT\r\n".encode(), untagged)
        # another delivery: the read-write session's sync takes it
        self.append(o, "A2")
        untagged, tagged = self.taken_before_the_answer(rw, "N1", "NOOP", COUNT + 3)
        self.assertIn(f"* {COUNT + 2} EXISTS\r\n".encode(), untagged)
        self.assertIn(f"* {COUNT + 2} RECENT\r\n".encode(), untagged)
        # given once: not to a session of the other server
        resp, tagged = o.command("SELECT INBOX", timeout=WAIT)
        self.assertIn(b"* 0 RECENT\r\n", resp)

    def hold_row_lock(self):
        """Another server's transaction on alice's INBOX, at work until
        the returned psql gets its stdin closed."""
        locker = subprocess.Popen([pg_support.PSQL, "-X", "-q", "-A", "-t", "-d",
                                   self.server.db.info], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(locker.wait, 60)
        self.addCleanup(locker.stdout.close)
        self.addCleanup(locker.stderr.close)
        self.addCleanup(locker.stdin.close)
        locker.stdin.write(f"BEGIN;\nSELECT 'locked' FROM imap_mailboxes WHERE id = "
                           f"{ALICE_INBOX} FOR UPDATE;\n".encode())
        locker.stdin.flush()
        self.assertEqual(locker.stdout.readline().strip(), b"locked")
        return locker

    def test_a_select_while_the_row_is_locked(self):
        a = self.raw_login("alice")
        self.append(a, "A1")
        locker = self.hold_row_lock()
        # answered at once, not after the server's lock wait (10 s)
        s2 = self.raw_login("alice")
        started = time.monotonic()
        selected, tagged = s2.command("SELECT INBOX", timeout=WAIT)
        took = time.monotonic() - started
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(f"* {COUNT + 1} EXISTS\r\n".encode(), selected)
        self.assertLess(took, 5.0)
        b = self.raw_login("bob", "INBOX")
        resp, tagged = b.command("NOOP", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # none taken, none shown
        self.assertIn(b"* 0 RECENT\r\n", selected)
        self.assertEqual(self.first_recent(), 1)
        self.assertEqual(locker.poll(), None)
        locker.stdin.close()
        self.assertEqual(locker.wait(WAIT), 0)
        # the lock gone, the next message is taken again
        self.append(a, "A2")
        resp, tagged = s2.command("NOOP", timeout=WAIT)
        self.assertIn(f"* {COUNT + 2} EXISTS\r\n".encode(), resp)
        self.assertIn(b"* 1 RECENT\r\n", resp)
        resp, tagged = s2.command(f"FETCH {COUNT + 2} (FLAGS)", timeout=WAIT)
        self.assertIn(b"\\Recent", b"".join(resp))


class TestReadsInAJob(PgHeldCase):
    """The messages a FETCH reads are read ahead in a worker, up to 128
    at a time, in one statement: the loop serves the others meanwhile."""

    def hold_reads(self):
        self.hold_kind("read")

    def test_notify_message_new_read_in_a_worker(self):
        """NOTIFY's MessageNew with items that need the message (RFC 5465
        5.2): the new message is read in a job, its FETCH sent once read."""
        n = self.raw_login("alice", "INBOX")
        resp, tagged = n.command("NOTIFY SET (selected (MessageNew (UID BODY.PEEK[HEADER]) "
                                 "MessageExpunge))", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        n.send("I1 IDLE\r\n")
        self.assertTrue(n.readline(timeout=WAIT).startswith(b"+"))
        self.hold_reads()
        a = self.raw_login("alice")
        msg = b"From: x@example.org\r\nSubject: pushed\r\n\r\nbody\r\n"
        a.send(f"A1 APPEND INBOX {{{len(msg)}+}}\r\n".encode() + msg + b"\r\n")
        untagged, tagged = a.read_tagged("A1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(n.readline(timeout=WAIT), f"* {COUNT + 1} EXISTS\r\n".encode())
        self.assertEqual(n.readline(timeout=WAIT), f"* {COUNT + 1} RECENT\r\n".encode())
        # the read is held: the loop serves the others, the FETCH waits
        b = self.raw_login("bob", "INBOX")
        resp, tagged = b.command("NOOP", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.no_answer(n, "the FETCH of the new message")
        self.release_job()
        head = n.readline(timeout=WAIT)
        self.assertTrue(head.startswith(f"* {COUNT + 1} FETCH (".encode()), head)
        self.assertIn(f"UID {COUNT + 1}".encode(), head)
        literal = int(re.search(rb"\{(\d+)\}\r\n$", head).group(1))
        self.assertIn(b"Subject: pushed", n.read_exact(literal, timeout=WAIT))
        self.assertEqual(n.readline(timeout=WAIT), b")\r\n")
        n.send("DONE\r\n")
        untagged, tagged = n.read_tagged("I1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)

    def test_others_served_while_a_fetch_reads_then_every_answer(self):
        a = self.raw_login("alice", "INBOX")
        self.hold_reads()
        a.send("F1 FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.SIZE)\r\n")
        b = self.raw_login("bob", "INBOX")
        resp, tagged = b.command('LIST "" *')
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = b.command("STATUS INBOX (MESSAGES)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.no_answer(a, "the FETCH")
        self.release_job()
        untagged, tagged = a.read_tagged("F1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # every message (three reads of at most 128), in order, whole
        text = b"".join(untagged)
        subjects = [int(x) for x in re.findall(rb"Subject: message (\d+)", text)]
        self.assertEqual(subjects, list(range(1, COUNT + 1)))
        sizes = [int(x) for x in re.findall(rb"RFC822.SIZE (\d+)", text)]
        self.assertEqual(len(sizes), COUNT)
        resp, tagged = a.command(f"FETCH {COUNT} BODY[]", timeout=WAIT)
        body = b"".join(resp)
        self.assertIn(b"Subject: message 300", body)
        self.assertEqual(body.count(b"z" * 70), 20)

    def test_a_search_of_the_text_reads_ahead_too(self):
        a = self.raw_login("alice", "INBOX")
        self.hold_reads()
        a.send('S1 SEARCH SUBJECT "message 250" BODY zzzz\r\n')
        b = self.raw_login("bob", "INBOX")
        resp, tagged = b.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # (the start of "* SEARCH" may be out: not a line of it)
        a.sock.settimeout(0.3)
        try:
            a.buf += a.sock.recv(65536)
        except (TimeoutError, socket.timeout):
            pass
        finally:
            a.sock.settimeout(srv.SOCK_TIMEOUT)
        self.assertNotIn(b"\r\n", a.buf)
        self.release_job()
        untagged, tagged = a.read_tagged("S1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"* SEARCH 250\r\n", untagged)
        # and a search of flags alone reads nothing
        self.hold_reads()
        resp, tagged = a.command("SEARCH UNSEEN SMALLER 100000", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.release_job()

    def test_session_gone_while_its_fetch_reads(self):
        a = self.raw_login("alice", "INBOX")
        self.hold_reads()
        a.send("F1 FETCH 1:* (BODY.PEEK[])\r\n")
        time.sleep(0.2)
        a.close()
        time.sleep(0.1)
        self.release_job()
        c = self.raw_login("alice", "INBOX")
        resp, tagged = c.command("FETCH 1:2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
                                 timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"Subject: message 2", b"".join(resp))

    def test_database_gone_before_the_read_gives_no(self):
        self.ALLOW_LOG_ERRORS = True
        a = self.raw_login("alice", "INBOX")
        self.hold_reads()
        a.send("F1 FETCH 1:3 (BODY.PEEK[])\r\n")
        time.sleep(0.2)
        self.database_gone()
        self.release_job()
        untagged, tagged = a.read_tagged("F1", timeout=WAIT)
        # (held before its statement: made with the database gone)
        self.assertTrue(tagged.startswith(b"NO [UNAVAILABLE]"), tagged)
        self.database_back()
        resp, tagged = self.until_ok(a, "FETCH 1:3 (BODY.PEEK[])")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(b"".join(resp).count(b"Subject: message"), 3)


class TestCopyInAJob(PgHeldCase):
    """COPY and MOVE on pgsql are one transaction in a worker: the copies
    get their UIDs under the destination's lock and share the originals'
    bodies; the loop serves the others meanwhile."""

    IN_TRASH = ("SELECT count(*) FROM imap_messages WHERE mailbox_id = "
                "(SELECT x.id FROM imap_mailboxes x JOIN imap_users u ON u.id = x.user_id "
                "WHERE u.name = 'alice' AND x.name = 'Trash')")

    def setUp(self):
        super().setUp()
        self.a = self.raw_login("alice", "INBOX")
        resp, tagged = self.a.command("STORE 5 +FLAGS ($Work \\Flagged)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.bodies = self.sql_count("SELECT count(*) FROM imap_bodies")

    def test_others_served_while_a_copy_commits_then_copyuid(self):
        t = self.raw_login("alice", "Trash")
        self.hold_kind("copied")
        self.a.send("C1 COPY 1:10 Trash\r\n")
        self.wait_sql(self.IN_TRASH, 10)
        b = self.raw_login("bob", "INBOX")
        resp, tagged = b.command("FETCH 1 (FLAGS)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # the source is read as usual; a write to the destination waits
        resp, tagged = self.raw_login("alice", "INBOX").command("FETCH 5 (FLAGS)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        t.send("T1 APPEND Trash {3+}\r\nx\r\n\r\n")
        self.no_answer(self.a, "the COPY")
        self.release_job()
        untagged, tagged = self.a.read_tagged("C1", timeout=WAIT)
        m = re.match(rb"OK \[COPYUID \d+ 1:10 (\d+):(\d+)\]", tagged)
        self.assertIsNotNone(m, tagged)
        first, last = int(m.group(1)), int(m.group(2))
        self.assertEqual(last - first, 9)
        # no body stored twice: the copies' are the originals' (one more
        # body: the APPEND's, stored while the copy was held)
        self.assertEqual(self.sql_count("SELECT count(*) FROM imap_bodies"), self.bodies + 1)
        self.assertEqual(self.sql_count(
            "SELECT count(*) FROM imap_messages t JOIN imap_messages i "
            "ON i.body_id = t.body_id AND i.uid = t.uid - " + str(first - 1) +
            f" WHERE t.mailbox_id = {self.IN_TRASH.split('= ', 1)[1]} "
            f"AND i.mailbox_id = {ALICE_INBOX}"), 10)
        untagged, tagged = t.read_tagged("T1", timeout=WAIT)
        # after the copies: its UID follows theirs
        self.assertTrue(tagged.startswith(b"OK [APPENDUID"), tagged)
        self.assertIn(f" {last + 1}]".encode(), tagged)
        resp, tagged = t.command("NOOP", timeout=WAIT)
        self.assertIn(b"* 11 EXISTS\r\n", untagged + resp)
        resp, tagged = t.command(f"UID FETCH {first + 4} (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
                                 timeout=WAIT)
        data = b"".join(resp)
        self.assertIn(b"$Work", data)
        self.assertIn(b"\\Flagged", data)
        self.assertIn(b"Subject: message 5", data)
        # the next copy follows
        resp, tagged = self.a.command("COPY 20 Trash", timeout=WAIT)
        self.assertIn(f" 20 {last + 2}]".encode(), tagged)

    def test_move_in_a_job_then_the_originals_go(self):
        self.hold_kind("copied")
        self.a.send("M1 MOVE 1:3 Trash\r\n")
        self.wait_sql(self.IN_TRASH, 3)
        self.no_answer(self.a, "the MOVE")
        self.release_job()
        untagged, tagged = self.a.read_tagged("M1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        text = b"".join(untagged)
        self.assertIn(b"[COPYUID ", text)
        self.assertEqual(len(re.findall(rb"\* \d+ EXPUNGE\r\n", text)), 3, text)
        self.assertEqual(self.sql_count(self.IN_TRASH), 3)
        resp, tagged = self.a.command("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn(b"Subject: message 4", b"".join(resp))

    def test_kill_while_the_copy_commits_keeps_it_once(self):
        self.hold_kind("copied")
        self.a.send("C1 COPY 1:10 Trash\r\n")
        self.wait_sql(self.IN_TRASH, 10)
        self.kill_and_restart()
        e = self.raw_login("alice")
        resp, tagged = e.command("SELECT Trash", timeout=WAIT)
        self.assertIn(b"* 10 EXISTS\r\n", resp)
        resp, tagged = e.command("COPY 1 Trash", timeout=WAIT)
        self.assertIn(b" 1 11]", tagged)

    def test_session_gone_while_its_copy_commits(self):
        self.hold_kind("copied")
        self.a.send("C1 COPY 1:10 Trash\r\n")
        self.wait_sql(self.IN_TRASH, 10)
        self.a.close()
        time.sleep(0.1)
        self.release_job()
        t = self.raw_login("alice", "Trash")
        resp, tagged = t.command("NOOP", timeout=WAIT)
        resp, tagged = t.command("STATUS Trash (MESSAGES UIDNEXT)", timeout=WAIT)
        self.assertIn(b"MESSAGES 10 UIDNEXT 11", b"".join(resp))

    def test_database_gone_before_the_transaction_refuses_the_copy(self):
        self.ALLOW_LOG_ERRORS = True
        self.hold_kind("copy")
        self.a.send("C1 COPY 1:10 Trash\r\n")
        time.sleep(0.2)     # (reached or not, the work meets the database gone)
        self.database_gone()
        self.release_job()
        untagged, tagged = self.a.read_tagged("C1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"NO [UNAVAILABLE]"), tagged)
        self.database_back()
        self.assertEqual(self.sql_count(self.IN_TRASH), 0)
        resp, tagged = self.until_ok(self.a, "COPY 1:2 Trash")
        self.assertIn(b"OK [COPYUID ", tagged)
        self.assertIn(b" 1:2 1:2]", tagged)


class TestSyncInAJob(PgHeldCase):
    """Before each command of a session with a mailbox selected, the
    changes other servers committed are read in a worker: the command
    waits for that read, the loop does not, and a change committed on
    another server before the command came is in its answer."""

    def hold_sync(self):
        self.hold_kind("sync")

    def second_node_login(self, mailbox=None):
        """A session of alice's on a second server on the same database."""
        node = PgServer({}, db=self.server.db)
        self.addCleanup(node.cleanup)
        node.start()
        d = srv.RawClient(node.port)
        self.addCleanup(d.close)
        d.readline()
        self.assertTrue(d.command("LOGIN alice alice123")[1].startswith(b"OK"))
        if mailbox is not None:
            resp, tagged = d.command(f"SELECT {mailbox}")
            self.assertTrue(tagged.startswith(b"OK"), tagged)
        return d

    def test_others_served_while_a_sync_reads_then_the_news_is_told(self):
        a = self.raw_login("alice", "INBOX")
        d = self.second_node_login()
        self.hold_sync()
        a.send("X1 NOOP\r\n")
        self.server.wait_log(r"debug: command NOOP waits for a busy mailbox", WAIT)
        # the loop serves the others: a login, a listing, another user's
        # mailbox opened (a first open is a job of another kind)
        b = self.raw_login("bob")
        resp, tagged = b.command('LIST "" *')
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = b.command("EXAMINE INBOX")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.no_answer(a, "the NOOP")
        # another server's delivery while the sync is held
        msg = b"Subject: from node B\r\n\r\nhello\r\n"
        resp, tagged = d.command(b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.no_answer(a, "the NOOP")
        self.release_job()
        untagged, tagged = a.read_tagged("X1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        # told at the latest at the next command, which came after the
        # delivery's OK
        resp, tagged = a.command("NOOP", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(f"* {COUNT + 1} EXISTS\r\n".encode(), b"".join(untagged + resp))

    def test_a_change_on_another_server_is_in_the_next_answer(self):
        a = self.raw_login("alice", "INBOX")
        d = self.second_node_login("INBOX")
        # no IDLE: only the check before each command can tell it
        for i in range(1, 21):
            resp, tagged = d.command(f"STORE {i} +FLAGS.SILENT (\\Flagged)")
            self.assertTrue(tagged.startswith(b"OK"), tagged)
            resp, tagged = a.command("NOOP", timeout=WAIT)
            self.assertTrue(tagged.startswith(b"OK"), tagged)
            self.assertTrue([r for r in resp if r.startswith(f"* {i} FETCH".encode())
                             and b"\\Flagged" in r], (i, resp))

    def test_select_and_status_of_a_mailbox_open_here_see_the_other_server(self):
        a = self.raw_login("alice", "INBOX")
        d = self.second_node_login("INBOX")
        resp, tagged = d.command("STORE 1:5 +FLAGS.SILENT (\\Deleted)")
        resp, tagged = d.command("EXPUNGE")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        c = self.raw_login("alice")
        resp, tagged = c.command("STATUS INBOX (MESSAGES)", timeout=WAIT)
        self.assertIn(f"MESSAGES {COUNT - 5}".encode(), b"".join(resp))
        resp, tagged = c.command("SELECT INBOX", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(f"* {COUNT - 5} EXISTS\r\n".encode(), b"".join(resp))
        # the session that had it selected is told too
        resp, tagged = a.command("NOOP", timeout=WAIT)
        self.assertEqual(len([r for r in resp if r.endswith(b" EXPUNGE\r\n")]), 5, resp)


class TestNamesInAJob(PgHeldCase):
    """LIST and LSUB read the user's mailbox names and subscriptions in a
    worker, and CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE make
    their change there: the command waits for it, the loop does not."""

    def hold_names(self):
        self.hold_kind("names")

    def test_others_served_while_the_names_are_read(self):
        a = self.raw_login("alice")
        for name in ("Work", "Work/2026", "Trips"):
            resp, tagged = a.command(f"CREATE {name}")
            self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = a.command("SUBSCRIBE Trips")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.hold_names()
        a.send('L1 LIST "" "*" RETURN (SUBSCRIBED)\r\n')
        self.server.wait_log(r"debug: command LIST waits for the mailbox names", WAIT)
        b = self.raw_login("bob", "INBOX")
        resp, tagged = b.command("FETCH 1 (FLAGS)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.no_answer(a, "the LIST")
        self.release_job()
        untagged, tagged = a.read_tagged("L1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        listed = b"".join(untagged)
        for name in (b"INBOX", b"Work", b"Work/2026"):
            self.assertIn(b' "/" "' + name + b'"\r\n', listed)
        self.assertIn(b'(\\HasNoChildren \\Subscribed) "/" "Trips"\r\n', listed)
        resp, tagged = a.command('LSUB "" "*"', timeout=WAIT)
        lsub = [r for r in resp if r.startswith(b"* LSUB")]
        self.assertIn(b'* LSUB () "/" "Trips"\r\n', lsub)
        self.assertFalse([r for r in lsub if b"Work" in r], lsub)

    def test_session_gone_while_the_names_are_read(self):
        a = self.raw_login("alice")
        self.hold_names()
        a.send('L1 LIST "" "*"\r\n')
        self.server.wait_log(r"debug: command LIST waits for the mailbox names", WAIT)
        a.close()
        self.release_job()
        b = self.raw_login("alice")
        resp, tagged = b.command('LIST "" "*"', timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertTrue(self.server.alive())

    def hold_call(self):
        self.hold_kind("call")

    def held(self, client, tag, command, verb):
        """client sends command, whose change is held in its worker while
        bob is served; returns the untagged and tagged answer after the
        release."""
        # (logged in first: a new user's first login makes mailboxes)
        b = self.raw_login("bob", "INBOX")
        rx = re.compile(rf"debug: command {verb} waits for its change")
        before = len([x for x in self.server.log_lines() if rx.search(x)])
        self.hold_call()
        client.send(f"{tag} {command}\r\n")
        deadline = time.monotonic() + WAIT
        while len([x for x in self.server.log_lines() if rx.search(x)]) == before:
            self.assertLess(time.monotonic(), deadline, f"{command} did not wait")
            time.sleep(0.01)
        resp, tagged = b.command("FETCH 1 (FLAGS)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.no_answer(client, command)
        self.release_job()
        return client.read_tagged(tag, timeout=WAIT)

    def names(self, client, command='LIST "" "*"'):
        resp, tagged = client.command(command, timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        return [r.rsplit(b" ", 1)[1].strip(b'"\r\n') for r in resp if r.startswith(b"* L")]

    def test_mailbox_changes_are_made_in_a_worker(self):
        a = self.raw_login("alice")
        untagged, tagged = self.held(a, "C1", "CREATE Projects/2027", "CREATE")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"Projects/2027", self.names(a))
        untagged, tagged = self.held(a, "R1", "RENAME Projects Plans", "RENAME")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        listed = self.names(a)
        self.assertIn(b"Plans/2027", listed)
        self.assertNotIn(b"Projects/2027", listed)
        untagged, tagged = self.held(a, "S1", "SUBSCRIBE Plans/2027", "SUBSCRIBE")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertIn(b"Plans/2027", self.names(a, 'LSUB "" "*"'))
        untagged, tagged = self.held(a, "U1", "UNSUBSCRIBE Plans/2027", "UNSUBSCRIBE")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertNotIn(b"Plans/2027", self.names(a, 'LSUB "" "*"'))
        untagged, tagged = self.held(a, "D1", "DELETE Plans/2027", "DELETE")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertNotIn(b"Plans/2027", self.names(a))
        # refusals come from the worker's call as from the loop's
        untagged, tagged = self.held(a, "D2", "DELETE Nowhere", "DELETE")
        self.assertTrue(tagged.startswith(b"NO [NONEXISTENT]"), tagged)
        resp, tagged = a.command("CREATE Plans", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        untagged, tagged = self.held(a, "C2", "CREATE Plans", "CREATE")
        self.assertTrue(tagged.startswith(b"NO [ALREADYEXISTS]"), tagged)

    def test_session_gone_while_its_change_is_made(self):
        a = self.raw_login("alice")
        self.hold_call()
        a.send("C1 CREATE Orphan\r\n")
        self.server.wait_log(r"debug: command CREATE waits for its change", WAIT)
        a.close()
        self.release_job()
        b = self.raw_login("alice")
        # made (the work ran), told to nobody; the server goes on
        deadline = time.monotonic() + WAIT
        while b"Orphan" not in self.names(b) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(b"Orphan", self.names(b))
        self.assertTrue(self.server.alive())

    def test_a_new_users_first_mailboxes_are_made_in_a_worker(self):
        a = self.raw()
        self.hold_call()
        a.send("L1 LOGIN alice alice123\r\n")
        self.server.wait_log(r"login ok .* for user 'alice'", WAIT)
        # the loop serves another connection meanwhile
        b = self.raw()
        resp, tagged = b.command("CAPABILITY")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.no_answer(a, "the LOGIN")
        self.release_job()
        untagged, tagged = a.read_tagged("L1", timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK [CAPABILITY"), tagged)
        self.assertEqual(sorted(self.names(a, 'LSUB "" "*"')),
                         [b"Drafts", b"Junk", b"Sent", b"Trash"])
        self.assertEqual(len(self.names(a)), 5)

    def test_database_unreachable_gives_no_to_the_list(self):
        self.ALLOW_LOG_ERRORS = True
        a = self.raw_login("alice")
        self.database_gone()
        resp, tagged = a.command('LIST "" "*"', timeout=WAIT)
        self.assertTrue(tagged.startswith(b"NO [UNAVAILABLE]"), tagged)
        self.database_back()
        resp, tagged = a.command('LIST "" "*"', timeout=WAIT)
        self.assertTrue(tagged.startswith(b"OK"), tagged)


class TestSmtpDeliveryInAJob(PgHeldCase):
    """A message received by the SMTP listener this server hosts is
    stored as an APPEND is (its body, then its transaction, in a
    worker): the SMTP session waits for its 250, the loop does not."""

    def configure(self, server):
        add_smtp_section(server, True, {})

    def setUp(self):
        super().setUp()
        line = self.server.wait_log(r"smtp listening on 127\.0\.0\.1:(\d+)", WAIT)
        self.smtp_port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))

    def send_mail(self, result):
        try:
            with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=WAIT) as sm:
                sm.sendmail("carol@example.org", ["alice@localhost"],
                            b"Subject: by smtp, held\r\n\r\nhello\r\n")
            result.append("sent")
        except (OSError, smtplib.SMTPException) as e:
            result.append(e)

    def test_imap_served_while_a_delivery_is_stored(self):
        a = self.raw_login("alice", "INBOX")
        b = self.raw_login("bob", "INBOX")
        self.hold_job()
        result = []
        t = threading.Thread(target=self.send_mail, args=(result,))
        t.start()
        self.addCleanup(t.join, WAIT)
        # the body is stored, with its guard; the hook holds the work
        self.wait_sql(TestAppendInAJob.PENDING, 1)
        resp, tagged = b.command("FETCH 1 (FLAGS)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        resp, tagged = a.command("NOOP")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(result, [], "answered while its store was held")
        self.release_job()
        t.join(WAIT)
        self.assertEqual(result, ["sent"])
        resp, tagged = a.command("NOOP", timeout=WAIT)
        self.assertIn(f"* {COUNT + 1} EXISTS\r\n".encode(), resp)
        self.assertEqual(self.sql_count(TestAppendInAJob.PENDING), 0)

    def test_the_first_open_of_an_inbox_for_a_delivery_is_a_job(self):
        # alice's INBOX not open here: its first open (every message
        # read) is a job the delivery waits for
        b = self.raw_login("bob", "INBOX")
        self.hold_job()
        result = []
        t = threading.Thread(target=self.send_mail, args=(result,))
        t.start()
        self.addCleanup(t.join, WAIT)
        self.assertTrue(self.server.wait_log(r"alice/INBOX: first open in a job", WAIT),
                        self.server.log_text())
        resp, tagged = b.command("FETCH 1 (FLAGS)")
        self.assertTrue(tagged.startswith(b"OK"), tagged)
        self.assertEqual(result, [], "answered while the INBOX's open was held")
        self.release_job()
        t.join(WAIT)
        self.assertEqual(result, ["sent"])
        a = self.raw_login("alice")
        resp, tagged = a.command("SELECT INBOX", timeout=WAIT)
        self.assertIn(f"* {COUNT + 1} EXISTS\r\n".encode(), resp)

    def test_smtp_session_gone_while_its_delivery_is_stored(self):
        # (the INBOX open here: the hold is the body's store)
        self.raw_login("alice", "INBOX")
        self.hold_job()
        s = socket.create_connection(("127.0.0.1", self.smtp_port), timeout=WAIT)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        f.readline()
        for line in (b"EHLO test", b"MAIL FROM:<carol@example.org>",
                     b"RCPT TO:<alice@localhost>", b"DATA"):
            s.sendall(line + b"\r\n")
            reply = f.readline()
            while reply[3:4] == b"-":
                reply = f.readline()
        s.sendall(b"Subject: gone\r\n\r\nbye\r\n.\r\n")
        self.wait_sql(TestAppendInAJob.PENDING, 1)
        s.close()
        self.release_job()
        # stored all the same (no 250 was sent), the server goes on
        self.wait_sql("SELECT count(*) FROM imap_messages m JOIN imap_bodies b "
                      "ON b.id = m.body_id WHERE position('Subject: gone' IN "
                      "convert_from(b.data, 'UTF8')) > 0", 1)
        self.assertEqual(self.sql_count(TestAppendInAJob.PENDING), 0)
        a = self.raw_login("alice")
        resp, tagged = a.command("SELECT INBOX", timeout=WAIT)
        self.assertIn(f"* {COUNT + 1} EXISTS\r\n".encode(), resp)
        self.assertTrue(self.server.alive())


if __name__ == "__main__":
    unittest.main()
