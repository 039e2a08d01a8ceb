"""The end-to-end tests' PostgreSQL: tests/run.sh starts a throw-away
cluster (tests/pg_cluster.sh) and names it in $PGTEST_CONNINFO. Each
server here gets a database of its own in it (CREATE DATABASE, dropped at
cleanup), made ready with "imapserver --init-db"; without the cluster the
tests that need it are skipped.

Only the standard library: the database is reached with psql."""

import base64
import os
import re
import shutil
import subprocess
import uuid

from server import SLOW, ImapServer

PSQL = shutil.which("psql")


def conninfo():
    c = os.environ.get("PGTEST_CONNINFO", "")
    return c if c and PSQL else None


def skip_reason():
    if not os.environ.get("PGTEST_CONNINFO"):
        return "no PostgreSQL (PGTEST_CONNINFO unset: tests/run.sh sets it)"
    if not PSQL:
        return "psql is not installed"
    return None


def with_dbname(info, name):
    if re.search(r"\bdbname=\S+", info):
        return re.sub(r"\bdbname=\S+", f"dbname={name}", info)
    return f"{info} dbname={name}"


def psql(info, sql, check=True):
    """Runs sql (one statement) with psql; returns its unaligned output."""
    p = subprocess.run([PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", info,
                        "-c", sql], capture_output=True, timeout=60 * SLOW)
    if check and p.returncode != 0:
        raise RuntimeError(f"psql: {sql!r}: {p.stderr.decode(errors='replace')}")
    return p.stdout.decode(errors="replace")


class Database:
    """A database of its own in the test cluster."""

    def __init__(self):
        self.admin = conninfo()
        self.name = "e2e_" + uuid.uuid4().hex[:12]
        psql(self.admin, f"CREATE DATABASE {self.name}")
        self.info = with_dbname(self.admin, self.name)

    def sql(self, statement):
        return psql(self.info, statement)

    def drop(self):
        psql(self.admin, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)", check=False)


def use_pgsql(server, db):
    """Switches server's config to storage.backend "pgsql" on db."""
    with open(server.conf) as f:
        conf = f.read()
    new = conf.replace('backend = "flat"; root = "mail";',
                       f'backend = "pgsql"; root = "mail"; conninfo = "{db.info}";')
    assert new != conf
    with open(server.conf, "w") as f:
        f.write(new)


def run_cli(server, *args):
    """imapserver -c CONF ARGS (the folder handed to the server's user
    first, as its start does)."""
    server.give_to_server()
    return subprocess.run([server.binary, "-c", server.conf, *args], capture_output=True,
                          timeout=120 * SLOW, cwd=server.dir)


class PgServer(ImapServer):
    """ImapServer with storage.backend = "pgsql" on a database of its own.
    The seed is written as the flat files ImapServer writes, then moved
    into the database with imapserver --migrate (as an operator would)."""

    def __init__(self, *args, db=None, **kwargs):
        self.db = None
        self.own_db = db is None
        super().__init__(*args, **kwargs)
        seeded = sorted(os.listdir(self.root))
        self.db = db if db is not None else Database()
        use_pgsql(self, self.db)
        if self.own_db:
            p = run_cli(self, "--init-db")
            if p.returncode != 0:
                raise RuntimeError("--init-db: " + p.stderr.decode(errors="replace"))
        self.give_to_server()
        for user in seeded:
            p = run_cli(self, "--migrate", user, "--from", "flat", "--to", "pgsql")
            if p.returncode != 0:
                raise RuntimeError(f"--migrate {user}: " + p.stderr.decode(errors="replace"))

    def read_mailbox(self, user):
        """Every message of the user's INBOX in the database, concatenated."""
        out = self.db.sql(
            "SELECT translate(encode(b.data, 'base64'), E'\\n', '') FROM imap_messages m "
            "JOIN imap_bodies b ON b.id = m.body_id "
            "JOIN imap_mailboxes x ON x.id = m.mailbox_id "
            "JOIN imap_users u ON u.id = x.user_id "
            f"WHERE u.name = '{user}' AND x.name = 'INBOX' ORDER BY m.uid")
        return b"".join(base64.b64decode(line) for line in out.split("\n") if line)

    def cleanup(self):
        try:
            super().cleanup()
        finally:
            if self.db is not None and self.own_db:
                self.db.drop()
