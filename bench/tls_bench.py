#!/usr/bin/env python3
"""TLS benchmarks of imapserver, side by side with Dovecot configured for
TLS (ssl = yes, the same test certificate) in the same run.

Both servers get a test CA and a server certificate for localhost (an
ECDSA P-256 key, tests/e2e/tls_support.py), an implicit TLS listener
(the 993 role) beside the plain one, and the mailboxes of bench.py:

  - memory per idle TLS connection: PSS of the server's process tree
    before and after C implicit TLS connections (logged in, SELECTed on
    a small mailbox, in IDLE), divided by C (target <= 64 kB)
  - TLS handshakes per second: full handshakes (no session resumption)
    + greeting + close, from a few client processes for a fixed time
    (target: at least Dovecot's)
  - FETCH 1:N (BODY.PEEK[]) throughput over TLS and in clear, MB/s of
    answer, median of runs alternating between a TLS and a plain session (target: TLS >= 0.8x our plain figure)
  - IDLE push latency over TLS: STORE on one TLS session until the
    untagged FETCH arrives on another TLS session in IDLE (p50, p99;
    target p99 <= 5 ms)

Prints progress on stderr and a table on stdout. Standard library and
the openssl command only."""

import argparse
import multiprocessing
import os
import resource
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from bench import (DOVECOT, HOST, Conn, Dovecot, Ours, free_port, gen_messages,  # noqa: E402
                   median, percentile)
from tls_support import make_pki  # noqa: E402


# ------------------------------------------------------------------ servers

class OursTls(Ours):
    """imapserver with tls.cert_file/key_file set (nothing else: the
    default TLS settings) and imap.tls_port."""

    def __init__(self, tmp, binary, msgs, small, pki):
        super().__init__(tmp, binary, msgs, small)
        self.tls_port = free_port()
        with open(self.conf) as f:
            text = f.read()
        text = text.replace("port = 0; };", f"port = 0; tls_port = {self.tls_port}; }};", 1)
        with open(self.conf, "w") as f:
            f.write(text + pki.conf())


class DovecotTls(Dovecot):
    """Dovecot with ssl = yes, the same certificate, and an imaps
    listener beside the plain one. Its login processes run in Dovecot's
    default "high-security" mode (one imap-login process per
    connection), or with performance=True in its "high-performance"
    mode (service_count = 0: a few long-lived imap-login processes)."""

    def __init__(self, tmp, msgs, small, pki, performance=False):
        super().__init__(tmp, msgs, small)
        self.tls_port = free_port()
        with open(self.conf) as f:
            text = f.read()
        text = text.replace("ssl = no\n", f"ssl = yes\nssl_cert = <{pki.cert}\n"
                                          f"ssl_key = <{pki.key}\n"
                                          "ssl_min_protocol = TLSv1.2\n", 1)
        text = text.replace("service imap-login {\n",
                            "service imap-login {\n"
                            "  inet_listener imaps {\n"
                            "    address = 127.0.0.1\n"
                            f"    port = {self.tls_port}\n"
                            "    ssl = yes\n"
                            "  }\n"
                            + ("  service_count = 0\n  process_min_avail = 2\n"
                               if performance else ""), 1)
        with open(self.conf, "w") as f:
            f.write(text)


# ------------------------------------------------------------------ client

class TlsConn(Conn):
    """bench.Conn over implicit TLS."""

    def __init__(self, port, ctx, timeout=60.0):
        raw = socket.create_connection((HOST, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = b""
        self.n = 0
        line = self.readline()
        if not line.startswith(b"* OK"):
            raise RuntimeError(f"greeting {line!r}")


def idle_memory(srv, ctx, conns, log):
    time.sleep(0.3)
    before = srv.pss()
    opened = []
    try:
        for _ in range(conns):
            c = TlsConn(srv.tls_port, ctx, timeout=15.0)
            opened.append(c)
            c.s.sendall(b"l LOGIN bob bob123\r\ns SELECT INBOX\r\n")
        for c in opened:
            c.wait_tagged("s")
            c.s.sendall(b"i IDLE\r\n")
        for c in opened:
            while not c.readline().startswith(b"+"):
                pass
        time.sleep(0.5)
        after = srv.pss()
        log(f"  {srv.name}: {len(opened)} idle TLS connections, PSS {before} -> {after} kB")
        return (after - before) / len(opened)
    except (OSError, EOFError, RuntimeError) as e:
        log(f"  {srv.name}: idle TLS connections failed after {len(opened)}: {e}")
        return float("nan")
    finally:
        for c in opened:
            c.close()


def _handshake_worker(port, ca_file, stop_at, out):
    """One client process: handshakes until stop_at (time.time()); puts
    its count (or the error) on out."""
    ctx = ssl.create_default_context(cafile=ca_file)
    n = 0
    try:
        while time.time() < stop_at:
            raw = socket.create_connection((HOST, port), timeout=10)
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            data = b""
            while b"\n" not in data:
                d = s.recv(4096)
                if not d:
                    raise EOFError("closed before the greeting")
                data += d
            s.close()
            n += 1
        out.put(n)
    except (OSError, EOFError) as e:
        out.put(f"{type(e).__name__}: {e}")


def handshakes_per_second(srv, ca_file, seconds, clients):
    """Full handshakes (a new session each time) + greeting + close, from
    client processes (not threads: the client must not be the limit)."""
    out = multiprocessing.Queue()
    t0 = time.time()
    procs = [multiprocessing.Process(target=_handshake_worker,
                                     args=(srv.tls_port, ca_file, t0 + seconds, out))
             for _ in range(clients)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.time() - t0
    errors = [r for r in results if isinstance(r, str)]
    if errors:
        raise RuntimeError(f"handshake failed: {errors[0]}")
    return sum(results) / elapsed


def fetch_rate(conn, n):
    """MB/s of one FETCH 1:n (BODY.PEEK[]) answer on a selected session."""
    t0 = time.perf_counter()
    line, size = conn.wait_tagged(conn.send(f"FETCH 1:{n} (BODY.PEEK[])"))
    dt = time.perf_counter() - t0
    if b" OK" not in line:
        raise RuntimeError(f"FETCH: {line!r}")
    return size / dt / 1e6


def fetch_throughput(sessions, n, runs):
    """Median MB/s of FETCH 1:n (BODY.PEEK[]) on each session; the runs
    alternate between the sessions so that a busy moment of the machine
    weighs on both alike."""
    rates = [[] for _ in sessions]
    for _ in range(runs):
        for k, conn in enumerate(sessions):
            rates[k].append(fetch_rate(conn, n))
    return [median(r) for r in rates]


def push_latency(srv, ctx, samples, budget):
    a = TlsConn(srv.tls_port, ctx)
    a.cmd("LOGIN bob bob123")
    a.cmd("SELECT INBOX")
    b = TlsConn(srv.tls_port, ctx)
    b.cmd("LOGIN bob bob123")
    b.cmd("SELECT INBOX")
    a.s.sendall(b"i IDLE\r\n")
    while not a.readline().startswith(b"+"):
        pass
    lat = []
    deadline = time.monotonic() + budget
    a.s.settimeout(5.0)
    for k in range(samples):
        if time.monotonic() > deadline:
            break
        sign = "+" if k % 2 == 0 else "-"
        t0 = time.perf_counter()
        tag = b.send(f"STORE 1 {sign}FLAGS.SILENT (\\Flagged)")
        try:
            while True:
                line = a.readline()
                if b" FETCH " in line and (b"\\Flagged" in line) == (sign == "+"):
                    break
        except (socket.timeout, TimeoutError):
            b.wait_tagged(tag)
            break
        lat.append(time.perf_counter() - t0)
        b.wait_tagged(tag)
    a.s.sendall(b"DONE\r\n")
    a.close()
    b.close()
    return lat


def measure(srv, args, ctx, log):
    r = {}
    srv.start()
    try:
        r["conn_kb"] = idle_memory(srv, ctx, args.conns, log)
        r["hs_per_s"] = handshakes_per_second(srv, args.ca_file, args.hs_seconds,
                                              args.hs_clients)
        log(f"  {srv.name}: {r['hs_per_s']:.0f} TLS handshakes/s")
        n = args.fetch_messages
        sessions = [TlsConn(srv.tls_port, ctx), Conn(srv.port)]
        for c in sessions:
            c.cmd("LOGIN alice alice123")
            c.cmd("SELECT INBOX")
        r["fetch_tls"], r["fetch_plain"] = fetch_throughput(sessions, n, args.runs)
        for c in sessions:
            c.close()
        log(f"  {srv.name}: FETCH 1:{n} BODY[] {r['fetch_tls']:.1f} MB/s over TLS, "
            f"{r['fetch_plain']:.1f} MB/s in clear")
        lat = push_latency(srv, ctx, args.samples, args.push_budget)
        r["push_p50"] = percentile(lat, 50)
        r["push_p99"] = percentile(lat, 99)
        r["push_n"] = len(lat)
        log(f"  {srv.name}: TLS push p50 {r['push_p50'] * 1000:.2f} ms, p99 "
            f"{r['push_p99'] * 1000:.2f} ms ({len(lat)} samples)")
    finally:
        srv.stop()
    return r


ROWS = [
    ("memory per idle TLS connection", "conn_kb", "kB"),
    ("TLS handshakes per second", "hs_per_s", "/s"),
    ("FETCH BODY[] over TLS", "fetch_tls", "MB/s"),
    ("FETCH BODY[] in clear", "fetch_plain", "MB/s"),
    ("IDLE push over TLS p50", "push_p50", "ms"),
    ("IDLE push over TLS p99", "push_p99", "ms"),
]


def fmt(v, unit):
    if v is None or v != v:
        return "n/a"
    return f"{v * 1000:.2f}" if unit == "ms" else f"{v:.1f}"


def print_table(ours, dove, args):
    print()
    print(f"TLS: {args.conns} idle connections; handshakes from {args.hs_clients} client processes "
          f"for {args.hs_seconds:.0f} s; FETCH of {args.fetch_messages} messages, median of "
          f"{args.runs}; {ours.get('push_n', 0)} push samples")
    head = f"| {'measure':<38} | {'imapserver':>12} |"
    if dove:
        head += f" {'dovecot':>12} | {'ours/dovecot':>12} |"
    print(head)
    print("|" + "-" * 40 + "|" + "-" * 14 + "|" + ("-" * 14 + "|" + "-" * 14 + "|"
                                                     if dove else ""))
    for label, key, unit in ROWS:
        line = f"| {label + ' (' + unit + ')':<38} | {fmt(ours.get(key), unit):>12} |"
        if dove:
            o, d = ours.get(key), dove.get(key)
            ratio = "n/a"
            if o is not None and d is not None and o == o and d == d and d:
                ratio = f"{o / d:.2f}"
            line += f" {fmt(d, unit):>12} | {ratio:>12} |"
        print(line)
    ratio = ours["fetch_tls"] / ours["fetch_plain"] if ours.get("fetch_plain") else float("nan")
    print(f"\nour FETCH BODY[] over TLS / in clear: {ratio:.2f} (target >= 0.80); "
          f"memory per idle TLS connection target <= 64 kB; IDLE push over TLS p99 target "
          f"<= 5 ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="build/imapserver")
    ap.add_argument("--messages", type=int, default=100000,
                    help="messages in the big mailbox (bench.py's option; capped at 20000)")
    ap.add_argument("--fetch-messages", type=int, default=5000)
    ap.add_argument("--small", type=int, default=20)
    ap.add_argument("--conns", type=int, default=500)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--hs-seconds", type=float, default=5.0)
    ap.add_argument("--hs-clients", type=int, default=4,
                    help="client processes doing handshakes")
    ap.add_argument("--push-budget", type=float, default=60.0)
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument("--dovecot-performance-login", action="store_true",
                    help="run Dovecot's imap-login in its high-performance mode "
                         "(service_count = 0) instead of its default one process per "
                         "connection")
    ap.add_argument("--seed", type=int, default=20220310)
    args = ap.parse_args()
    binary = os.path.abspath(args.server)
    if not os.access(binary, os.X_OK):
        sys.exit(f"bench: {binary} is missing: run make first")
    if not shutil.which("openssl"):
        sys.exit("bench: the openssl command is missing (Debian package openssl)")
    messages = min(args.messages, 20000)
    args.fetch_messages = max(1, min(args.fetch_messages, messages))

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * args.conns + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 2 * args.conns + 64:
        args.conns = max(1, (want - 64) // 2)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    top = tempfile.mkdtemp(prefix="imapserver-tls-bench-")
    servers = []
    try:
        pki = make_pki(os.path.join(top, "pki"))
        os.chmod(top, 0o755)
        ctx = pki.client_context()
        args.ca_file = pki.ca_cert
        msgs = gen_messages(messages, args.seed)
        small = gen_messages(args.small, args.seed + 1)
        os.makedirs(os.path.join(top, "ours"))
        ours_srv = OursTls(os.path.join(top, "ours"), binary, msgs, small, pki)
        servers.append(ours_srv)
        dove_srv = None
        if not args.no_dovecot and os.access(DOVECOT, os.X_OK):
            os.makedirs(os.path.join(top, "dovecot"))
            dove_srv = DovecotTls(os.path.join(top, "dovecot"), msgs, small, pki,
                                  args.dovecot_performance_login)
            servers.append(dove_srv)
        log("bench: imapserver over TLS")
        ours = measure(ours_srv, args, ctx, log)
        dove = None
        if dove_srv is not None:
            log("bench: dovecot over TLS")
            try:
                dove = measure(dove_srv, args, ctx, log)
            except (RuntimeError, OSError, EOFError) as e:
                log(f"bench: dovecot TLS run failed: {e}")
                dove_srv.stop()
        else:
            log("bench: no dovecot at " + DOVECOT + ": imapserver only")
        print_table(ours, dove, args)
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception:
                if s.proc is not None:
                    s.kill_tree()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
