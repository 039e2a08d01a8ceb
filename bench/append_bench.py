#!/usr/bin/env python3
"""Pipelined APPEND into one Maildir folder as it grows, imapserver (maildir
backend) beside Dovecot (maildir) in the same run.

One client appends N messages of 2-6 KB into the folder "box", keeping 4
APPENDs in flight (LITERAL+), and prints the rate of each batch of 2,000.
The figure that matters is the rate into the full folder against the rate
into the empty one: a server that reads the whole folder after each change
it made itself slows down as the folder grows.

  python3 bench/append_bench.py --messages 100000

Standard library only; Dovecot is skipped when it is not installed."""

import argparse
import os
import random
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

BATCH = 2000
IN_FLIGHT = 4


def message(rnd, i):
    body = ("x" * 70 + "\r\n") * rnd.randint(27, 83)
    return (f"From: user{i % 50}@example.org\r\nTo: alice@localhost\r\n"
            f"Subject: message {i}\r\nDate: Fri, 4 Dec 2026 08:00:00 +0000\r\n\r\n"
            + body).encode()


def append_run(port, count):
    """Appends count messages; returns the rate (messages/s) of each batch."""
    s = socket.create_connection((bench.HOST, port), timeout=120)
    f = s.makefile("rb")
    f.readline()

    def tagged(tag):
        while True:
            line = f.readline()
            if not line:
                raise RuntimeError("connection closed")
            if line.startswith(tag + b" "):
                if b" OK" not in line:
                    raise RuntimeError(line.decode("utf-8", "replace"))
                return

    s.sendall(b"a LOGIN alice alice123\r\n")
    tagged(b"a")
    s.sendall(b"b CREATE box\r\n")
    f.readline()
    rnd = random.Random(1)
    rates = []
    t = time.perf_counter()
    i = 0
    while i < count:
        n = min(IN_FLIGHT, count - i)
        out = []
        for _ in range(n):
            msg = message(rnd, i)
            out.append(b"A%d APPEND box {%d+}\r\n" % (i, len(msg)) + msg + b"\r\n")
            i += 1
        s.sendall(b"".join(out))
        for k in range(i - n, i):
            tagged(b"A%d" % k)
        if i % BATCH == 0:
            now = time.perf_counter()
            rates.append(BATCH / (now - t))
            t = now
            print(f"  {i} messages: {rates[-1]:.0f}/s", file=sys.stderr)
    s.close()
    return rates


def ours(tmp, binary):
    os.makedirs(tmp)
    srv = bench.Ours(tmp, binary, [], [])
    with open(srv.conf) as f:
        text = f.read().replace('backend = "flat"', 'backend = "maildir"')
    with open(srv.conf, "w") as f:
        f.write(text)
    return srv


def dovecot(tmp):
    os.makedirs(tmp)
    srv = bench.Dovecot(tmp, [], [])
    with open(srv.conf) as f:
        text = f.read().replace("mail_location = mbox:~/mail:INBOX=~/mail/inbox",
                                "mail_location = maildir:~/Maildir")
    with open(srv.conf, "w") as f:
        f.write(text)
    for user in bench.USERS:
        home = os.path.join(tmp, "home", user)
        os.makedirs(home, exist_ok=True)
        st = os.stat(os.path.join(tmp, "home"))
        os.chown(home, st.st_uid, st.st_gid)
    return srv


def measure(name, srv, count):
    print(f"{name}: {count} APPENDs", file=sys.stderr)
    srv.start()
    try:
        rates = append_run(srv.port, count)
    finally:
        srv.stop()
    return rates[0], rates[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--no-dovecot", action="store_true")
    args = ap.parse_args()
    count = max(BATCH * 2, args.messages // BATCH * BATCH)
    binary = os.path.abspath(os.path.join(os.environ.get("BUILD", "build"), "imapserver"))
    results = {}
    tmp = tempfile.mkdtemp(prefix="append-bench-")
    try:
        results["imapserver"] = measure("imapserver", ours(os.path.join(tmp, "ours"),
                                                           binary), count)
        if not args.no_dovecot and os.path.exists(bench.DOVECOT):
            results["dovecot"] = measure("dovecot", dovecot(os.path.join(tmp, "dove")), count)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nPipelined APPEND into one Maildir folder, {count} messages of 2-6 KB")
    print(f"| server | first {BATCH} (msg/s) | last {BATCH} (msg/s) | last / first |")
    print("| --- | ---: | ---: | ---: |")
    for name, (first, last) in results.items():
        print(f"| {name} | {first:.0f} | {last:.0f} | {last / first:.2f} |")


if __name__ == "__main__":
    main()
