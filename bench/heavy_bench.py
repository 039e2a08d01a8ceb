#!/usr/bin/env python3
"""Heavy operations against the latency of the other sessions (issue 12):
while session A expunges one message from a big flat mailbox (1 GB by
default), and while A opens a 100,000-message flat mailbox that has no
index yet (the first open scans the whole mail file), session B (another
user, another mailbox) sends NOOP every 5 ms and records how long each
answer takes.

Prints, for each operation, A's own duration and the max and p99 of B's
NOOP latencies while it ran. The goal: B's max under 50 ms.

  python3 bench/heavy_bench.py                    # build/imapserver
  python3 bench/heavy_bench.py --binary OTHER/imapserver --big-mb 200
  python3 bench/heavy_bench.py --maildir-messages 100000   # and a Maildir folder

The mailboxes are written directly in the lab's format (fast); the big
one gets its index from one SELECT before the measurement. The figures
are rough when the machine is shared. Standard library only."""

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

NOOP_EVERY = 0.005


def write_mailbox(path, count, size, tag):
    """count messages of about size octets in the lab's format, each with
    a Subject of its own."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    line = "z" * 70 + "\n"
    body = line * max(1, (size - 150) // len(line))
    with open(path, "w") as f:
        out = []
        for i in range(1, count + 1):
            out.append(f"From: sender{i % 13}@example.org\nTo: alice@localhost\n"
                       f"Subject: {tag} {i}\nReceived: 2022-03-10 : 14 : 30\n{body}.\n")
            if len(out) == 1000:
                f.write("".join(out))
                out = []
        f.write("".join(out))


class Session:
    """A blocking IMAP session on a raw socket."""

    def __init__(self, port, user, password):
        self.sock = socket.create_connection((bench.HOST, port), timeout=600)
        self.f = self.sock.makefile("rb")
        self.n = 0
        self.f.readline()
        self.command(f"LOGIN {user} {password}")

    def command(self, text):
        self.n += 1
        tag = b"c%d" % self.n
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("connection closed")
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].startswith(b"OK"):
                    raise RuntimeError(f"{text}: {line!r}")
                return

    def close(self):
        self.sock.close()


class Pinger(threading.Thread):
    """Session B: NOOP every 5 ms; records (sent at, latency) pairs."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.s = Session(port, "bob", bench.USERS["bob"])
        self.s.command("SELECT INBOX")
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            t = time.perf_counter()
            self.s.command("NOOP")
            self.samples.append((t, time.perf_counter() - t))
            time.sleep(NOOP_EVERY)

    def during(self, t0, t1):
        """Latencies of the NOOPs sent while [t0, t1] ran, or answered
        during it, in ms."""
        return sorted(lat * 1000 for t, lat in self.samples if t + lat >= t0 and t <= t1)


def p99(xs):
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else 0.0


def measure(port, what, run):
    pinger = Pinger(port)
    pinger.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    run()
    t1 = time.perf_counter()
    time.sleep(0.05)
    pinger.stop.set()
    pinger.join(30)
    pinger.s.close()
    lat = pinger.during(t0, t1)
    print(f"{what}: A {1000 * (t1 - t0):.0f} ms; B's NOOP during it: {len(lat)} answers, "
          f"max {lat[-1] if lat else 0:.1f} ms, p99 {p99(lat):.1f} ms", flush=True)
    return t1 - t0, (lat[-1] if lat else 0.0), p99(lat)


def write_maildir_folder(folder, count, size):
    """count messages of about size octets as files in folder/cur (a
    Maildir++ folder without dovecot-uidlist: its first open reads the
    whole folder)."""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    body = ("z" * 70 + "\n") * max(1, (size - 100) // 71)
    for i in range(1, count + 1):
        with open(os.path.join(folder, "cur", f"1700000000.M{i}P1.bench:2,S"), "w") as f:
            f.write(f"From: sender@example.org\nSubject: maildir {i}\n\n{body}")


def maildir_run(binary, messages, size, settle):
    """The first open of a Maildir++ folder of messages files, with B's
    NOOPs beside it."""
    top = tempfile.mkdtemp(prefix="heavy-bench-md-")
    try:
        # Ours() opens the folder above its own to the server user: a
        # folder of ours, never /tmp itself.
        tmp = os.path.join(top, "ours")
        os.makedirs(tmp)
        srv = bench.Ours(tmp, binary, [], [])
        with open(srv.conf) as f:
            text = f.read().replace('backend = "flat"', 'backend = "maildir"')
        with open(srv.conf, "w") as f:
            f.write(text)
        print(f"writing a Maildir folder of {messages} files ...", file=sys.stderr, flush=True)
        for user in bench.USERS:
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(tmp, "mail", user, "Maildir", sub), exist_ok=True)
        write_maildir_folder(os.path.join(tmp, "mail", "alice", "Maildir", ".big"), messages,
                             size)
        if bench.server_group_line():
            bench.give_to_server_user(tmp, srv.conf)
        # Directory stamps younger than a second are not trusted by the
        # Maildir sync: a folder written just now is read again.
        time.sleep(settle)
        srv.start()
        try:
            a = Session(srv.port, "alice", bench.USERS["alice"])
            measure(srv.port, f"maildir first open of {messages} files (no uidlist)",
                    lambda: a.command("SELECT big"))
            a.close()
        finally:
            srv.stop()
    finally:
        shutil.rmtree(top, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--binary", default=os.path.join(here, "..", "build", "imapserver"))
    ap.add_argument("--big-mb", type=int, default=1024, help="size of the expunged mailbox")
    ap.add_argument("--first-messages", type=int, default=100000,
                    help="messages of the mailbox opened without an index")
    ap.add_argument("--first-size", type=int, default=2000, help="octets a message there")
    ap.add_argument("--keep", action="store_true", help="keep the folder (and the log)")
    ap.add_argument("--maildir-messages", type=int, default=0,
                    help="also the first open of a Maildir folder of this many files")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds between writing the Maildir folder and opening it")
    args = ap.parse_args()

    top = tempfile.mkdtemp(prefix="heavy-bench-")
    try:
        # Ours() opens the folder above its own to the server user: a
        # folder of ours, never /tmp itself.
        tmp = os.path.join(top, "ours")
        os.makedirs(tmp)
        srv = bench.Ours(tmp, os.path.abspath(args.binary), [], bench.gen_messages(20, 2))
        root = os.path.join(tmp, "mail", "alice")
        big_size = 10000
        print(f"writing {args.big_mb} MB and {args.first_messages} messages ...",
              file=sys.stderr, flush=True)
        write_mailbox(os.path.join(root, "big.mail"), args.big_mb * 1048576 // big_size,
                      big_size, "big")
        write_mailbox(os.path.join(root, "first.mail"), args.first_messages,
                      args.first_size, "first")
        if bench.server_group_line():
            bench.give_to_server_user(tmp, srv.conf)
        srv.start()
        try:
            a = Session(srv.port, "alice", bench.USERS["alice"])
            # The big mailbox's index, once, before the measurement.
            a.command("SELECT big")
            a.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
            measure(srv.port, f"expunge 1 of {args.big_mb} MB",
                    lambda: a.command("EXPUNGE"))
            measure(srv.port, f"first open of {args.first_messages} messages "
                    f"({args.first_messages * args.first_size // 1048576} MB, no index)",
                    lambda: a.command("SELECT first"))
            a.close()
        finally:
            srv.stop()
    finally:
        if args.keep:
            print(f"kept {top}", file=sys.stderr)
        else:
            shutil.rmtree(top, ignore_errors=True)
    if args.maildir_messages > 0:
        maildir_run(os.path.abspath(args.binary), args.maildir_messages, args.first_size,
                    args.settle)


if __name__ == "__main__":
    main()
