#!/usr/bin/env python3
"""PostgreSQL storage (storage.backend "pgsql") beside flat, Maildir and
Dovecot, and several imapserver nodes on one database, in one run.

1. sessions/s: 10 clients loop over LOGIN, SELECT INBOX, FETCH 1:* (FLAGS
   UID RFC822.SIZE), LOGOUT for --seconds on a --messages INBOX (the same
   messages everywhere: written as the lab's file, moved into Maildir and
   pgsql with imapserver --migrate; Dovecot reads them as mbox);
2. APPEND/s: one client, 4 APPENDs in flight, --appends messages of
   2-6 KB into a new mailbox (Dovecot on Maildir);
3. push: a client in IDLE on node B, another APPENDs on node A (both
   pgsql, one database); the time from the APPEND sent to "* n EXISTS"
   on B, --pushes times (p50, p99), beside the same on one node;
4. scaling: 1, 2 and 3 pgsql nodes on one database, the same 10 listing
   clients and 4 appending clients spread over them.

The database is a throw-away cluster (tests/pg_cluster.sh, fsync on) on
this machine: what it measures is the server's cost per operation and
the database's, not a network's.

  python3 bench/pgsql_bench.py --seconds 10 --appends 2000

Standard library only; skipped (exit 0, said on stderr) without
PostgreSQL; Dovecot is skipped when it is not installed."""

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import append_bench  # noqa: E402
import bench  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
CLIENTS = 10
APPENDERS = 4


def say(msg):
    print(msg, file=sys.stderr, flush=True)


class Conn:
    """One IMAP connection, commands answered in order."""

    def __init__(self, port, user="alice"):
        self.s = socket.create_connection((bench.HOST, port), timeout=60)
        self.f = self.s.makefile("rb")
        self.n = 0
        self.f.readline()
        if user:
            self.cmd(f"LOGIN {user} {bench.USERS[user]}")

    def cmd(self, text, data=None):
        self.n += 1
        tag = b"T%d" % self.n
        if data is not None:
            self.s.sendall(tag + b" " + text.encode() + b" {%d+}\r\n" % len(data) + data +
                           b"\r\n")
        else:
            self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("connection closed")
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text}: {line!r}")
                return

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


# ------------------------------------------------------------------ servers

class Cluster:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "pg")
        os.makedirs(tmp, exist_ok=True)
        os.chmod(tmp, 0o755)
        # fsync on: a commit waits for the disk, as flat's and
        # Maildir's appends do
        env = dict(os.environ, PG_CLUSTER_FSYNC="on")
        p = subprocess.run(["sh", os.path.join(TOP, "tests", "pg_cluster.sh"), "start",
                            self.dir], capture_output=True, text=True, env=env)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.strip() or "the cluster did not start")
        self.admin = p.stdout.strip()

    def database(self):
        name = "bench_" + uuid.uuid4().hex[:10]
        subprocess.run(["psql", "-X", "-q", "-d", self.admin, "-c", f"CREATE DATABASE {name}"],
                       check=True, capture_output=True)
        return self.admin.replace("dbname=postgres", f"dbname={name}")

    def stop(self):
        subprocess.run(["sh", os.path.join(TOP, "tests", "pg_cluster.sh"), "stop", self.dir],
                       capture_output=True)


def ours(tmp, binary, msgs, backend, conninfo=None, migrate=True):
    """bench.Ours on backend; the seed (lab file) moved in with --migrate."""
    os.makedirs(tmp)
    srv = bench.Ours(tmp, binary, msgs, [])
    if backend == "flat":
        return srv
    with open(srv.conf) as f:
        text = f.read()
    extra = f' conninfo = "{conninfo}";' if conninfo else ""
    text = text.replace('backend = "flat"; root = "mail";',
                        f'backend = "{backend}"; root = "mail";{extra}')
    with open(srv.conf, "w") as f:
        f.write(text)

    def cli(*args):
        p = subprocess.run([binary, "-c", srv.conf, *args], capture_output=True, cwd=tmp)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {p.stderr.decode(errors='replace')}")

    if backend == "pgsql" and migrate:
        cli("--init-db")
    if migrate:
        cli("--migrate", "alice", "--from", "flat", "--to", backend)
    if bench.server_group_line():
        bench.give_to_server_user(tmp, srv.conf)
    return srv


# ------------------------------------------------------------------ measures

def run_threads(fn, n, timeout):
    """fn(i) in n threads at once; raises the first error any raised.
    Returns the seconds they took."""
    errors = []

    def guarded(i):
        try:
            fn(i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    t0 = time.monotonic()
    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if errors:
        raise RuntimeError(errors[0])
    return time.monotonic() - t0


def sessions(ports, seconds):
    """CLIENTS clients spread over ports; returns sessions per second."""
    counts = [0] * CLIENTS
    deadline = time.monotonic() + seconds

    def loop(i):
        port = ports[i % len(ports)]
        while time.monotonic() < deadline:
            c = Conn(port)
            c.cmd("SELECT INBOX")
            c.cmd("FETCH 1:* (FLAGS UID RFC822.SIZE)")
            c.cmd("LOGOUT")
            c.close()
            counts[i] += 1

    took = run_threads(loop, CLIENTS, seconds + 120)
    return sum(counts) / took


def appends(ports, count, clients=1, prefix="box"):
    """clients appending count messages each (4 in flight), spread over
    ports, into mailbox "box" (each client its own: box0, box1...).
    Returns APPENDs per second in all."""
    def run(i):
        c = Conn(ports[i % len(ports)])
        box = f"{prefix}{i}"
        c.cmd(f"CREATE {box}")
        rnd = random.Random(i)
        n = 0
        while n < count:
            k = min(append_bench.IN_FLIGHT, count - n)
            out = []
            for j in range(k):
                msg = append_bench.message(rnd, n + j)
                out.append(b"A%d APPEND %s {%d+}\r\n" % (n + j, box.encode(), len(msg)) +
                           msg + b"\r\n")
            c.s.sendall(b"".join(out))
            for j in range(k):
                tag = b"A%d " % (n + j)
                while True:
                    line = c.f.readline()
                    if not line:
                        raise RuntimeError("closed")
                    if line.startswith(tag):
                        if b" OK" not in line:
                            raise RuntimeError(line.decode(errors="replace"))
                        break
            n += k
        c.close()

    took = run_threads(run, clients, 600)
    return clients * count / took


def push(port_append, port_idle, count):
    """Milliseconds from an APPEND sent on one port to EXISTS in IDLE on
    the other, count times."""
    idle = Conn(port_idle)
    idle.cmd("SELECT INBOX")
    idle.s.sendall(b"I IDLE\r\n")
    if not idle.f.readline().startswith(b"+"):
        raise RuntimeError("no IDLE continuation")
    app = Conn(port_append)
    rnd = random.Random(7)
    out = []
    for i in range(count):
        msg = append_bench.message(rnd, i)
        t0 = time.perf_counter()
        app.cmd("APPEND INBOX", msg)
        while True:
            line = idle.f.readline()
            if not line:
                raise RuntimeError("IDLE connection closed")
            if line.endswith(b"EXISTS\r\n"):
                break
        out.append((time.perf_counter() - t0) * 1000)
    idle.s.sendall(b"DONE\r\n")
    idle.close()
    app.close()
    return out


def pct(xs, p):
    return bench.percentile(xs, p)


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(TOP, os.environ.get("BUILD", "build"),
                                                     "imapserver"))
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--appends", type=int, default=2000)
    ap.add_argument("--pushes", type=int, default=300)
    ap.add_argument("--no-dovecot", action="store_true")
    a = ap.parse_args()
    if not shutil.which("psql"):
        say("pgsql bench: PostgreSQL is not installed (package postgresql): skipped")
        return 0
    tmp = tempfile.mkdtemp(prefix="pgsql-bench-")
    os.chmod(tmp, 0o755)
    bench.open_parent(tmp, 0o755)
    cluster = None
    servers = []
    msgs = bench.gen_messages(a.messages, 1)
    rows = []
    try:
        cluster = Cluster(os.path.join(tmp, "c"))
        kinds = [("flat", None), ("maildir", None), ("pgsql", cluster.database())]
        for kind, conninfo in kinds:
            say(f"{kind}: {a.messages} messages, sessions for {a.seconds:.0f} s")
            srv = ours(os.path.join(tmp, kind), a.binary, msgs, kind, conninfo)
            servers.append(srv)
            srv.start()
            s = sessions([srv.port], a.seconds)
            say(f"{kind}: {a.appends} APPENDs")
            ap_rate = appends([srv.port], a.appends)
            rows.append((f"imapserver {kind}", s, ap_rate))
            srv.stop()
        if not a.no_dovecot and os.access(bench.DOVECOT, os.X_OK):
            say("dovecot: sessions (mbox), APPENDs (maildir)")
            os.makedirs(os.path.join(tmp, "dv"))
            d = bench.Dovecot(os.path.join(tmp, "dv"), msgs, [])
            servers.append(d)
            d.start()
            s = sessions([d.port], a.seconds)
            d.stop()
            d2 = append_bench.dovecot(os.path.join(tmp, "dv2"))
            servers.append(d2)
            d2.start()
            ap_rate = appends([d2.port], a.appends)
            d2.stop()
            rows.append(("dovecot", s, ap_rate))

        # push, one node and across two, and scaling over 1-3 nodes
        conninfo = cluster.database()
        nodes = [ours(os.path.join(tmp, "n0"), a.binary, msgs, "pgsql", conninfo)]
        nodes += [ours(os.path.join(tmp, f"n{i}"), a.binary, [], "pgsql", conninfo,
                       migrate=False) for i in (1, 2)]
        servers.extend(nodes)
        for n in nodes:
            n.start()
        say(f"push: {a.pushes} APPENDs on one node, then across two")
        same = push(nodes[0].port, nodes[0].port, a.pushes)
        cross = push(nodes[0].port, nodes[1].port, a.pushes)
        scale = []
        for k in (1, 2, 3):
            ports = [n.port for n in nodes[:k]]
            say(f"scaling: {k} node(s)")
            s = sessions(ports, a.seconds)
            ap_rate = appends(ports, a.appends // APPENDERS, clients=APPENDERS,
                              prefix=f"scale{k}_")
            scale.append((k, s, ap_rate))
    finally:
        for srv in servers:
            srv.stop()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n## pgsql beside flat, Maildir and Dovecot ({a.messages} messages, "
          f"{CLIENTS} listing clients, {a.seconds:.0f} s; {a.appends} APPENDs, 4 in flight)\n")
    print("| server | sessions/s | APPEND/s |")
    print("| --- | ---: | ---: |")
    for name, s, ap_rate in rows:
        print(f"| {name} | {s:,.0f} | {ap_rate:,.0f} |")
    print(f"\n## IDLE push of an APPEND ({a.pushes} times)\n")
    print("| where | p50 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, xs in (("same node", same), ("across two nodes", cross)):
        print(f"| {name} | {pct(xs, 50):.1f} | {pct(xs, 99):.1f} | {max(xs):.1f} |")
    print(f"\n## Scaling on one database ({CLIENTS} listing clients, {APPENDERS} appending "
          "clients, spread over the nodes)\n")
    print("| nodes | sessions/s | APPEND/s |")
    print("| ---: | ---: | ---: |")
    for k, s, ap_rate in scale:
        print(f"| {k} | {s:,.0f} | {ap_rate:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
