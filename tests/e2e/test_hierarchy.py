"""The mailbox hierarchy over the wire (issue 13), on flat and on Maildir
storage: with Python's imaplib (CREATE of a name with superiors, LIST of
the \\Noselect superiors, RENAME of a tree with its messages, DELETE of a
parent, a selected inferior), with mbsync creating nested folders both
ways (Create Both), and the same command script against Dovecot 2.3 on
Maildir++ (when installed), whose LIST, LSUB and tagged answers ours
must match where the RFCs leave a choice."""

import imaplib
import os
import re
import shutil
import subprocess
import unittest

import dovecot_support
from server import SLOW, ServerTestCase
from test_maildir import MaildirMixin

MBSYNC = shutil.which("mbsync")

MSG = b"From: a@example.org\r\nSubject: %s\r\n\r\nbody\r\n"


def list_lines(data):
    """{name: set of attributes (+ extended data)} of imaplib LIST/LSUB
    answers."""
    out = {}
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            item = item[0]
        m = re.match(rb'\(([^)]*)\) "/" (?:"([^"]*)"|(\S+))(.*)$', item)
        assert m, item
        name = (m.group(2) if m.group(2) is not None else m.group(3)).decode()
        attrs = set(m.group(1).decode().split())
        extra = m.group(4).decode().replace('"', "").strip()
        if extra:
            attrs.add(extra)
        out[name] = attrs
    return out


class TestHierarchy(ServerTestCase):
    """imaplib against our server (flat; Maildir below)."""

    def test_create_child_then_rename_parent(self):
        # what issue 13 saw: no "parent", and RENAME parent NO [NONEXISTENT]
        m = self.imap()
        self.assertOK(m.create("parent/child"))
        self.assertOK(m.append("parent/child", "(\\Seen)", None, MSG % b"one"))
        boxes = list_lines(self.assertOK(m.list('""', "*")))
        self.assertEqual(boxes["parent"], {"\\Noselect", "\\HasChildren"})
        self.assertEqual(boxes["parent/child"], {"\\HasNoChildren"})
        boxes = list_lines(self.assertOK(m.list('""', "%")))
        self.assertIn("parent", boxes)
        self.assertNotIn("parent/child", boxes)
        typ, data = m.select("parent")
        self.assertEqual(typ, "NO", data)
        self.assertOK(m.rename("parent", "parent2"), "RENAME of a \\Noselect parent")
        boxes = list_lines(self.assertOK(m.list('""', "*")))
        self.assertNotIn("parent", boxes)
        self.assertNotIn("parent/child", boxes)
        self.assertEqual(boxes["parent2"], {"\\Noselect", "\\HasChildren"})
        typ, data = m.status("parent2/child", "(MESSAGES UNSEEN)")
        self.assertEqual(typ, "OK")
        self.assertIn(b"MESSAGES 1 UNSEEN 0", data[0])

    def test_rename_tree_refusals_and_delete(self):
        m = self.imap()
        for name in ("a", "a/b", "a/b/c", "z"):
            self.assertOK(m.create(name))
            self.assertOK(m.append(name, None, None, MSG % name.encode()))
        typ, data = m.rename("a", "z")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[ALREADYEXISTS]", data[0])
        typ, data = m.rename("a", "a/b/x")
        self.assertEqual(typ, "NO")
        self.assertOK(m.rename("a", "y/a"))
        boxes = list_lines(self.assertOK(m.list('""', "*")))
        for name in ("y/a", "y/a/b", "y/a/b/c"):
            self.assertIn(name, boxes)
            typ, data = m.status(name, "(MESSAGES)")
            self.assertIn(b"MESSAGES 1", data[0], name)
        for name in ("a", "a/b", "a/b/c"):
            self.assertNotIn(name, boxes)
        # DELETE of a parent keeps the children; it is then \Noselect
        self.assertOK(m.delete("y/a"))
        boxes = list_lines(self.assertOK(m.list('""', "y/*")))
        self.assertEqual(boxes["y/a"], {"\\Noselect", "\\HasChildren"})
        typ, data = m.delete("y/a")
        self.assertEqual(typ, "NO")
        typ, data = m.delete("INBOX")
        self.assertEqual(typ, "NO")

    def test_selected_inferior_is_not_moved(self):
        m1, m2 = self.imap(), self.imap()
        self.assertOK(m1.create("p/q"))
        self.assertOK(m2.select("p/q"))
        typ, data = m1.rename("p", "r")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[INUSE]", data[0])
        self.assertOK(m2.noop())
        self.assertOK(m2.close())
        self.assertOK(m1.rename("p", "r"))
        self.assertOK(m2.select("r/q"))


class MaildirTestHierarchy(MaildirMixin, TestHierarchy):
    """TestHierarchy on Maildir storage."""


@unittest.skipUnless(MBSYNC, "mbsync (isync) is not installed")
class TestMbsyncNestedFolders(ServerTestCase):
    """mbsync (Create Both) makes nested folders on the server and brings
    nested server folders down; a second run has nothing to do."""

    def write_config(self, local):
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
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel test
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
Sync All
SyncState *
""")
        return conf

    def mbsync(self, conf):
        env = dict(os.environ, HOME=self.server.dir)
        p = subprocess.run([MBSYNC, "-c", conf, "-a"], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60 * SLOW, env=env)
        self.assertEqual(p.returncode, 0,
                         f"mbsync exited {p.returncode}\nstdout:\n"
                         f"{p.stdout.decode(errors='replace')[-3000:]}\nstderr:\n"
                         f"{p.stderr.decode(errors='replace')[-3000:]}\nserver log:\n"
                         + self.server.log_text(30))
        return p

    def test_nested_folders_both_ways(self):
        local = os.path.join(self.server.dir, "mbsync-local")
        folder = os.path.join(local, "Projects", "2024", "Q1")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(folder, sub))
        with open(os.path.join(folder, "new", "1700000000.1.host"), "wb") as f:
            f.write(MSG % b"local nested")
        m = self.imap()
        self.assertOK(m.create("Lists/imap/rfc"))
        self.assertOK(m.append("Lists/imap/rfc", None, None, MSG % b"server nested"))
        m.logout()
        conf = self.write_config(local)
        self.mbsync(conf)
        m = self.imap()
        boxes = list_lines(self.assertOK(m.list('""', "*")))
        self.assertIn("Projects/2024/Q1", boxes)
        self.assertIn("\\Noselect", boxes["Projects"])
        self.assertIn("\\HasChildren", boxes["Projects/2024"])
        typ, data = m.status("Projects/2024/Q1", "(MESSAGES)")
        self.assertIn(b"MESSAGES 1", data[0])
        m.logout()
        down = os.path.join(local, "Lists", "imap", "rfc")
        self.assertTrue(os.path.isdir(os.path.join(down, "cur")), os.listdir(local))
        files = os.listdir(os.path.join(down, "cur")) + os.listdir(os.path.join(down, "new"))
        self.assertEqual(len(files), 1)
        # again: nothing new either way, no error
        self.mbsync(conf)
        m = self.imap()
        typ, data = m.status("Projects/2024/Q1", "(MESSAGES)")
        self.assertIn(b"MESSAGES 1", data[0])
        typ, data = m.status("Lists/imap/rfc", "(MESSAGES)")
        self.assertIn(b"MESSAGES 1", data[0])


class MaildirTestMbsyncNestedFolders(MaildirMixin, TestMbsyncNestedFolders):
    """TestMbsyncNestedFolders on Maildir storage."""


class SlashDovecot(dovecot_support.DovecotServer):
    """Dovecot on Maildir++ with "/" as the hierarchy delimiter, as ours."""

    def _write_config(self):
        super()._write_config()
        with open(self.conf, "a") as f:
            f.write("namespace inbox {\n  inbox = yes\n  separator = /\n}\n")


# The script run against both servers: (command, compare its answers:
# the tagged status word and the untagged LIST/LSUB lines). Only names under these tops are compared (ours
# makes the special-use mailboxes for a new user, Dovecot does not).
TOPS = ("parent", "a", "c", "d", "e", "g")
SCRIPT = [
    ('CREATE parent/child', True),
    ('LIST "" "*"', True),
    ('LIST "" "%"', True),
    ('LIST "" "parent/%"', True),
    ('LIST "" "*" RETURN (CHILDREN)', True),
    ('SELECT parent', True),
    ('RENAME parent parent2', True),
    ('LIST "" "*"', True),
    ('DELETE parent2', True),
    ('CREATE a', True),
    ('CREATE a/b', True),
    ('CREATE c', True),
    ('RENAME a c', True),
    ('RENAME a a/x', True),
    ('CREATE d/x', True),
    ('RENAME a d', True),
    ('LIST "" "*"', True),
    # Dovecot's Maildir++ keeps a deleted parent's folder for its index
    # files and lists it without \Noselect (SELECT of it fails), even
    # once its children are gone: the LIST after it is not compared.
    ('DELETE d', True),
    ('LIST "" "d/*"', True),
    ('DELETE d/b', True),
    ('DELETE d/x', True),
    ('LIST "" "*"', False),
    ('CREATE e/f', True),
    ('SUBSCRIBE e/f', True),
    ('LSUB "" "%"', True),
    ('LSUB "" "*"', True),
    ('LIST (SUBSCRIBED) "" "%"', True),
    ('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"', True),
    ('RENAME e g', True),
    ('LSUB "" "*"', True),
    ('RENAME g/f INBOX', True),
    ('DELETE INBOX', True),
]


def run_script(port):
    """[(command, tagged status word, {name: attrs} of the answers)]."""
    m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        m.login("alice", "alice123")
        out = []
        for command, compare in SCRIPT:
            name, _, args = command.partition(" ")
            m.untagged_responses.clear()
            typ, data = m._simple_command(name, *([args] if args else []))
            resp = {}
            for kind in ("LIST", "LSUB"):
                lines = m.untagged_responses.pop(kind, [])
                resp.update(list_lines([x for x in lines if x is not None]))
            resp = {k: v for k, v in resp.items() if k.split("/")[0] in TOPS}
            if command.startswith("LIST (") and "CHILDREN" not in command:
                # we send \HasChildren/\HasNoChildren unasked too (RFC
                # 5258 4 allows it), Dovecot only to a LIST without
                # selection options or with RETURN (CHILDREN)
                resp = {k: v - {"\\HasChildren", "\\HasNoChildren"}
                        for k, v in resp.items()}
            out.append((command, typ if compare else None, resp if compare else None))
    finally:
        m.shutdown()
    return out


@unittest.skipIf(dovecot_support.dovecot_binary() is None, "Dovecot is not installed")
class TestSameAnswersAsDovecot(ServerTestCase):

    def test_script_answers_match_dovecot(self):
        dc = SlashDovecot(users={"alice": "alice123"})
        self.addCleanup(dc.cleanup)
        dc.start()
        theirs = run_script(dc.port)
        ours = run_script(self.port)
        for (cmd, t_typ, t_resp), (_, o_typ, o_resp) in zip(theirs, ours):
            self.assertEqual((cmd, o_typ), (cmd, t_typ), "tagged answer")
            self.assertEqual((cmd, o_resp), (cmd, t_resp), "LIST/LSUB answer")


class MaildirTestSameAnswersAsDovecot(MaildirMixin, TestSameAnswersAsDovecot):
    """TestSameAnswersAsDovecot on Maildir storage."""


if __name__ == "__main__":
    unittest.main()
