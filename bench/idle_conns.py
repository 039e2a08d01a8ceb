#!/usr/bin/env python3
"""Many idle connections on one imapserver, per event.backend (issue 15).

For each backend: starts the server (flat storage, a 20-message INBOX for
bob) with event.backend set and limits.max_connections above the count,
opens C connections that each LOGIN (alice), SELECT INBOX and enter IDLE,
then measures
  - memory per idle connection: PSS of the server before and after, / C
  - the time to bring them all into IDLE
  - push latency with all of them idle: STORE on one more session until
    the untagged FETCH reaches another one in IDLE (p50, p99 of S samples),
    on bob's INBOX, so that the figure is the loop's cost with C idle
    connections, not that of telling C sessions of a change
select() watches descriptors below FD_SETSIZE only, so it runs with
--select-conns (900 by default) connections; poll and epoll with --conns.
--storage pgsql runs the same on PostgreSQL storage (a throw-away
cluster, tests/pg_cluster.sh; the seed moved in with --migrate).
Standard library only. Example:

  python3 bench/idle_conns.py --conns 10000
  python3 bench/idle_conns.py --conns 10000 --backends epoll --storage pgsql
"""

import argparse
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


class Ours(bench.Ours):
    def __init__(self, tmp, binary, msgs, small, backend, max_conns):
        super().__init__(tmp, binary, msgs, small)
        with open(self.conf) as f:
            text = f.read()
        text = text.replace("max_connections = 1000;", f"max_connections = {max_conns};")
        text += f'event: {{ backend = "{backend}"; }};\n'
        with open(self.conf, "w") as f:
            f.write(text)
        self.name = f"imapserver ({backend})"


def open_idle(port, count, log):
    """count connections, each logged in, INBOX selected, in IDLE. Reads
    the answers with the selectors module (epoll here), not one blocking
    read per socket, so that the client is not what is measured."""
    sel = selectors.DefaultSelector()
    socks = []
    pending = {}
    t0 = time.monotonic()
    for i in range(count):
        s = socket.create_connection((bench.HOST, port), timeout=30.0)
        s.setblocking(False)
        socks.append(s)
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
        s.sendall(b"l LOGIN alice alice123\r\ns SELECT INBOX\r\ni IDLE\r\n")
        if i % 500 == 499:
            drain(sel, pending, 0)
    deadline = time.monotonic() + 120.0
    while pending and time.monotonic() < deadline:
        drain(sel, pending, 1.0)
    if pending:
        raise RuntimeError(f"{len(pending)} connections never reached IDLE")
    took = time.monotonic() - t0
    sel.close()
    for s in socks:
        s.setblocking(True)
    log(f"  {count} connections in IDLE after {took:.1f} s")
    return socks, took


def drain(sel, pending, timeout):
    for key, _ in sel.select(timeout):
        s = key.fileobj
        try:
            d = s.recv(65536)
        except BlockingIOError:
            continue
        if not d:
            raise RuntimeError("a connection was closed: " + repr(pending[s][-200:]))
        buf = pending[s] + d
        if b"\r\n+ " in buf or buf.startswith(b"+ "):
            sel.unregister(s)
            del pending[s]
        else:
            pending[s] = buf[-4096:]


def push_latency(port, samples):
    idle = bench.Conn(port)
    idle.cmd("LOGIN bob bob123")
    idle.cmd("SELECT INBOX")
    idle.s.sendall(b"i IDLE\r\n")
    while not idle.readline().startswith(b"+"):
        pass
    actor = bench.Conn(port)
    actor.cmd("LOGIN bob bob123")
    actor.cmd("SELECT INBOX")
    lat = []
    for k in range(samples):
        flag = "+FLAGS" if k % 2 == 0 else "-FLAGS"
        t0 = time.perf_counter()
        actor.send(f"STORE 1 {flag} (\\Flagged)")
        while b"FETCH" not in idle.readline():
            pass
        lat.append(time.perf_counter() - t0)
    idle.close()
    actor.close()
    return bench.median(lat), bench.percentile(lat, 99)


def to_pgsql(srv, binary, tmp, conninfo):
    """srv's config on storage.backend "pgsql", its seed moved in."""
    with open(srv.conf) as f:
        text = f.read()
    text = text.replace('backend = "flat"; root = "mail";',
                        f'backend = "pgsql"; root = "mail"; conninfo = "{conninfo}";')
    with open(srv.conf, "w") as f:
        f.write(text)
    steps = [["--init-db"]] + [["--migrate", u, "--from", "flat", "--to", "pgsql"]
                               for u in ("alice", "bob")]
    for args in steps:
        p = subprocess.run([binary, "-c", srv.conf, *args], capture_output=True, cwd=tmp)
        if p.returncode != 0:
            raise RuntimeError(f"{args}: {p.stderr.decode(errors='replace')}")
    if bench.server_group_line():
        bench.give_to_server_user(tmp, srv.conf)


def measure(binary, backend, count, args, log, conninfo=None):
    tmp = tempfile.mkdtemp(prefix=f"idle-{backend}-")
    msgs = bench.gen_messages(20, args.seed)
    srv = Ours(tmp, binary, msgs, msgs, backend, count + 100)
    if conninfo is not None:
        to_pgsql(srv, binary, tmp, conninfo)
    srv.start()
    r = {"backend": backend, "conns": count}
    socks = []
    try:
        time.sleep(0.3)
        before = srv.pss()
        socks, r["open_s"] = open_idle(srv.port, count, log)
        time.sleep(0.5)
        after = srv.pss()
        r["kb_per_conn"] = (after - before) / count
        log(f"  {backend}: PSS {before} -> {after} kB, "
            f"{r['kb_per_conn']:.1f} kB per idle connection")
        r["push_p50"], r["push_p99"] = push_latency(srv.port, args.samples)
        log(f"  {backend}: push p50 {r['push_p50'] * 1000:.2f} ms, "
            f"p99 {r['push_p99'] * 1000:.2f} ms with {count} idle")
    finally:
        for s in socks:
            s.close()
        srv.stop()
        bench.shutil.rmtree(tmp, ignore_errors=True)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="build/imapserver")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--select-conns", type=int, default=900)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--backends", default="select,poll,epoll")
    ap.add_argument("--seed", type=int, default=20220310)
    ap.add_argument("--storage", choices=("flat", "pgsql"), default="flat")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.conns + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < need:
        args.conns = soft - 256
        print(f"open files limit {soft}: {args.conns} connections", file=sys.stderr)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    rows = []
    cluster = None
    try:
        if args.storage == "pgsql":
            from pgsql_bench import Cluster
            pgtmp = tempfile.mkdtemp(prefix="idle-pg-")
            cluster = Cluster(pgtmp)
        for backend in args.backends.split(","):
            count = args.select_conns if backend == "select" else args.conns
            log(f"{backend}: {count} idle connections ({args.storage})")
            rows.append(measure(os.path.abspath(args.server), backend, count, args, log,
                                cluster.database() if cluster is not None else None))
    finally:
        if cluster is not None:
            cluster.stop()
            bench.shutil.rmtree(pgtmp, ignore_errors=True)
    print(f"storage: {args.storage}\n")
    print("| event.backend | idle connections | into IDLE | memory per connection "
          "| push p50 | push p99 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['backend']} | {r['conns']} | {r['open_s']:.1f} s "
              f"| {r['kb_per_conn']:.1f} kB | {r['push_p50'] * 1000:.2f} ms "
              f"| {r['push_p99'] * 1000:.2f} ms |")


if __name__ == "__main__":
    main()
