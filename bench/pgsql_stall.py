#!/usr/bin/env python3
"""Does the loop wait for the database? The pgsql backend's round trips
that cost a mailbox's or a message's size (the first open of a mailbox,
an appended message's body) run in a worker thread; this measures what
another session sees meanwhile.

One pgsql server; alice has a mailbox of --messages messages (rows put
straight into the database). While she SELECTs it (its first open: every
message read) and then APPENDs a --append-mb MB message, bob sends NOOPs
one after another; the table gives the SELECT's and the APPEND's time and
bob's NOOP latency during them beside his latency on an idle server. A
loop that did the work itself would keep bob waiting as long as the
SELECT takes. Then alice FETCHes the bodies of --fetch messages (read
ahead in a worker, a batch at a time), flags them with one STORE and
copies them with one COPY (each one transaction in a worker), bob's NOOPs
measured the same way.

  python3 bench/pgsql_stall.py --messages 100000 [--binary OTHER]

Standard library only; skipped (exit 0) without PostgreSQL."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from pgsql_bench import Cluster, Conn, TOP, ours, pct, say  # noqa: E402


def psql(conninfo, sql):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
                   check=True, capture_output=True)


def fill(conninfo, count):
    """alice's mailbox "big" with count messages (one shared body), made
    behind the server's back: its first SELECT is its first open."""
    psql(conninfo, "INSERT INTO imap_mailboxes (user_id, name, uidvalidity) "
                   "SELECT id, 'big', last_uidvalidity + 1 FROM imap_users WHERE name = 'alice'")
    psql(conninfo,
         "WITH b AS (INSERT INTO imap_bodies (digest, data) VALUES ('stall-bench', "
         "convert_to(E'From: a@example.org\\r\\nSubject: s\\r\\n\\r\\nbody\\r\\n', 'UTF8')) "
         "RETURNING id), "
         "m AS (SELECT x.id FROM imap_mailboxes x JOIN imap_users u ON u.id = x.user_id "
         "  WHERE u.name = 'alice' AND x.name = 'big') "
         "INSERT INTO imap_messages (mailbox_id, uid, body_id, flags, keywords, "
         "  internal_date, tz_minutes, size, modseq) "
         f"SELECT m.id, g, b.id, g % 4, '', 1700000000 + g, 0, 38, g + 1 "
         f"FROM b, m, generate_series(1, {count}) g")
    psql(conninfo, f"UPDATE imap_mailboxes SET uidnext = {count + 1}, "
                   f"highest_modseq = {count + 2} WHERE name = 'big'")


def noop_during(port, action):
    """bob's NOOP latencies (ms) while action() runs, and action's time."""
    bob = Conn(port, "bob")
    lat, stop = [], threading.Event()

    def loop():
        while not stop.is_set():
            t0 = time.perf_counter()
            bob.cmd("NOOP")
            lat.append((time.perf_counter() - t0) * 1000)

    t = threading.Thread(target=loop)
    t.start()
    time.sleep(0.2)
    lat.clear()
    t0 = time.perf_counter()
    action()
    took = (time.perf_counter() - t0) * 1000
    stop.set()
    t.join(60)
    bob.close()
    return took, lat


def busy(port, alice, sessions, separate, seconds=4.0):
    """sessions of alice's NOOPing as fast as they are answered, on one
    mailbox or each on its own (made first with alice); returns their
    NOOPs per second and bob's NOOP latencies (ms) meanwhile. Each NOOP
    of a session with a mailbox selected asks the database what other
    servers changed: the loop should not wait for those answers."""
    conns = [Conn(port, "alice") for _ in range(sessions)]
    for i, c in enumerate(conns):
        if separate:
            alice.cmd(f"CREATE busy{i}")
        c.cmd(f"SELECT busy{i}" if separate else "SELECT INBOX")
    stop, counts = threading.Event(), [0] * sessions

    def run(i):
        while not stop.is_set():
            conns[i].cmd("NOOP")
            counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(sessions)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    took, lat = noop_during(port, lambda: time.sleep(seconds))
    stop.set()
    for t in threads:
        t.join()
    rate = sum(counts) / (time.monotonic() - t0)
    for c in conns:
        c.close()
    return rate, lat


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(TOP, os.environ.get("BUILD", "build"),
                                                     "imapserver"))
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--append-mb", type=int, default=20)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--fetch", type=int, default=20000)
    a = ap.parse_args()
    if not shutil.which("psql"):
        say("pgsql stall bench: PostgreSQL is not installed (package postgresql): skipped")
        return 0
    tmp = tempfile.mkdtemp(prefix="pgsql-stall-")
    os.chmod(tmp, 0o755)
    bench.open_parent(tmp, 0o755)
    cluster = srv = None
    try:
        cluster = Cluster(os.path.join(tmp, "c"))
        conninfo = cluster.database()
        srv = ours(os.path.join(tmp, "s"), a.binary, bench.gen_messages(10, 1), "pgsql",
                   conninfo)
        srv.start()
        alice = Conn(srv.port, "alice")
        say(f"{a.messages} messages into alice's big")
        fill(conninfo, a.messages)
        idle_took, idle = noop_during(srv.port, lambda: time.sleep(1.0))
        sel_took, sel = noop_during(srv.port, lambda: alice.cmd("SELECT big"))
        body = (b"From: a@example.org\r\nSubject: big\r\n\r\n" +
                (b"x" * 76 + b"\r\n") * (a.append_mb * 1024 * 1024 // 78))
        app_took, app = noop_during(srv.port, lambda: alice.cmd("APPEND big", body))
        n = min(a.fetch, a.messages)
        fetch_took, fetch = noop_during(srv.port,
                                        lambda: alice.cmd(f"FETCH 1:{n} (BODY.PEEK[])"))
        store_took, store = noop_during(srv.port,
                                        lambda: alice.cmd(f"STORE 1:{n} +FLAGS (\\Flagged)"))
        alice.cmd("CREATE copies")
        copy_took, copy = noop_during(srv.port, lambda: alice.cmd(f"COPY 1:{n} copies"))
        shared = busy(srv.port, alice, a.sessions, False)
        separate = busy(srv.port, alice, a.sessions, True)
        alice.close()
    finally:
        if srv is not None:
            srv.stop()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n## Another session's NOOP while pgsql works ({a.messages:,} messages; "
          f"a {a.append_mb} MB APPEND)\n")
    print("| during | took ms | NOOPs | NOOP p50 ms | NOOP p99 ms | NOOP max ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, took, xs in (("idle (1 s)", idle_took, idle),
                           ("first SELECT", sel_took, sel),
                           ("APPEND", app_took, app),
                           (f"FETCH 1:{n} BODY.PEEK[]", fetch_took, fetch),
                           (f"STORE 1:{n} +FLAGS", store_took, store),
                           (f"COPY 1:{n}", copy_took, copy)):
        if not xs:
            xs = [took]
        print(f"| {name} | {took:,.0f} | {len(xs)} | {pct(xs, 50):.1f} | {pct(xs, 99):.1f} "
              f"| {max(xs):.1f} |")
    print(f"\n## {a.sessions} sessions NOOPing on selected mailboxes, and another "
          "session's NOOP meanwhile\n")
    print("| mailboxes | their NOOPs/s | other NOOP p50 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (rate, xs) in (("one shared", shared), ("one each", separate)):
        print(f"| {name} | {rate:,.0f} | {pct(xs, 50):.2f} | {pct(xs, 99):.2f} "
              f"| {max(xs):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
