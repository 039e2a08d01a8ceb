#!/usr/bin/env python3
"""Listing sessions under concurrency: imapserver (flat and Maildir) beside
Dovecot (mbox and maildir) in the same run.

1,000 mixed messages (2-200 KB, fixed seed: plain text, HTML alternatives,
multiparts with attachments, replies with References) are APPENDed into
INBOX of each server the same way. Then 10 clients loop over LOGIN,
SELECT INBOX, FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE), LOGOUT for
--seconds; the table gives sessions/s, SELECT and FETCH p50/p99 per
server and the ratios ours / Dovecot for the same storage kind.

Before the timed run every server is restarted, so that the run starts
from what is on the disk (what a server keeps across restarts counts,
what it keeps only in memory does not), and one warm-up session runs.

  python3 bench/sessions_bench.py --seconds 20

Standard library only; Dovecot is skipped when it is not installed."""

import argparse
import base64
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import append_bench  # noqa: E402
import bench  # noqa: E402

CLIENTS = 10
LISTING = "FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)"


def text_lines(rnd, size):
    out, n = [], 0
    while n < size:
        line = " ".join(rnd.choice(bench.WORDS) for _ in range(rnd.randint(4, 12)))
        out.append(line)
        n += len(line) + 2
    return "\r\n".join(out) + "\r\n"


def b64_lines(rnd, size):
    raw = bytes(rnd.getrandbits(8) for _ in range(size * 3 // 4))
    s = base64.b64encode(raw).decode()
    return "\r\n".join(s[i:i + 76] for i in range(0, len(s), 76)) + "\r\n"


def gen_message(rnd, i):
    """One message of about 2-200 KB (most small, some large), as bytes."""
    size = int(min(200_000, max(2_000, rnd.lognormvariate(9.0, 1.1))))
    frm = rnd.choice(bench.FIRST)
    to = [rnd.choice(bench.FIRST) for _ in range(rnd.randint(1, 3))]
    subj = " ".join(rnd.choice(bench.WORDS) for _ in range(rnd.randint(2, 8))).capitalize()
    mid = f"<{i}.{rnd.getrandbits(32):08x}@example.org>"
    hdr = [
        f"Return-Path: <{frm}@example.org>",
        f"Received: from mx{rnd.randint(1, 9)}.example.org (mx.example.org [192.0.2.{i % 250}])"
        f"\r\n\tby mail.example.net with ESMTPS id {rnd.getrandbits(40):010x}"
        f"\r\n\tfor <{to[0]}@example.net>; Fri, 4 Dec 2026 08:{i % 60:02d}:00 +0000",
        f"From: \"{frm.capitalize()} Example\" <{frm}@example.org>",
        "To: " + ", ".join(f"{t.capitalize()} <{t}@example.net>" for t in to),
    ]
    if rnd.random() < 0.3:
        hdr.append(f"Cc: {rnd.choice(bench.FIRST)}@example.com")
    hdr += [f"Subject: {'Re: ' if i % 3 == 0 else ''}{subj} #{i + 1}",
            f"Date: Fri, {1 + i % 28} Dec 2026 {i % 24:02d}:{i % 60:02d}:00 +0100",
            f"Message-ID: {mid}"]
    if i % 3 == 0 and i > 0:
        ref = f"<{i - 1}.parent@example.org>"
        hdr += [f"In-Reply-To: {ref}", f"References: <{i - 2}.root@example.org> {ref}"]
    hdr.append("MIME-Version: 1.0")
    kind = rnd.random()
    if kind < 0.45:
        hdr.append("Content-Type: text/plain; charset=utf-8")
        body = text_lines(rnd, size)
    elif kind < 0.7:
        b = f"alt-{i}"
        hdr.append(f"Content-Type: multipart/alternative; boundary=\"{b}\"")
        t = text_lines(rnd, size // 2)
        body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{t}"
                f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>"
                f"{t}</body></html>\r\n--{b}--\r\n")
    else:
        b = f"mix-{i}"
        hdr.append(f"Content-Type: multipart/mixed; boundary=\"{b}\"")
        att = rnd.choice([("application", "pdf", "report.pdf"),
                          ("image", "png", "photo.png"),
                          ("application", "octet-stream", "data.bin")])
        body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                f"{text_lines(rnd, 1000)}--{b}\r\n"
                f"Content-Type: {att[0]}/{att[1]}; name=\"{att[2]}\"\r\n"
                f"Content-Disposition: attachment; filename=\"{att[2]}\"\r\n"
                f"Content-Transfer-Encoding: base64\r\n\r\n"
                f"{b64_lines(rnd, max(500, size - 2000))}--{b}--\r\n")
    return ("\r\n".join(hdr) + "\r\n\r\n" + body).encode()


def gen_messages(n, seed=12):
    rnd = random.Random(seed)
    return [gen_message(rnd, i) for i in range(n)]


def fill(port, msgs):
    """APPENDs msgs into INBOX, 4 in flight (LITERAL+)."""
    c = bench.Conn(port, timeout=300)
    c.cmd("LOGIN alice alice123")
    i = 0
    while i < len(msgs):
        tags = []
        for m in msgs[i:i + 4]:
            c.n += 1
            tag = f"b{c.n}"
            c.s.sendall(f"{tag} APPEND INBOX {{{len(m)}+}}\r\n".encode() + m + b"\r\n")
            tags.append(tag)
        for tag in tags:
            line, _ = c.wait_tagged(tag)
            if b" OK" not in line:
                raise RuntimeError(line)
        i += 4
    c.cmd("LOGOUT")
    c.close()


def session(port, sel, fet):
    c = bench.Conn(port)
    c.cmd("LOGIN alice alice123")
    sel.append(bench.timed(lambda: c.cmd("SELECT INBOX")))
    fet.append(bench.timed(lambda: c.cmd(LISTING)))
    c.cmd("LOGOUT")
    c.close()


def run(port, seconds):
    sel, fet, errors = [], [], []
    done = [0]
    stop = time.monotonic() + seconds

    def worker():
        while time.monotonic() < stop:
            try:
                session(port, sel, fet)
                done[0] += 1
            except (OSError, EOFError, RuntimeError) as e:
                errors.append(e)
                time.sleep(0.05)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    if errors:
        print(f"  {len(errors)} failed sessions, first: {errors[0]!r}", file=sys.stderr)
    return {"sessions/s": done[0] / elapsed,
            "SELECT p50": bench.percentile(sel, 50), "SELECT p99": bench.percentile(sel, 99),
            "FETCH p50": bench.percentile(fet, 50), "FETCH p99": bench.percentile(fet, 99)}


def measure(name, srv, msgs, seconds):
    print(f"{name}: filling {len(msgs)} messages", file=sys.stderr)
    srv.start()
    try:
        fill(srv.port, msgs)
    finally:
        srv.stop()
    srv.start()
    try:
        session(srv.port, [], [])
        print(f"{name}: {CLIENTS} clients for {seconds} s", file=sys.stderr)
        return run(srv.port, seconds)
    finally:
        srv.stop()


def dovecot_mbox(tmp):
    os.makedirs(tmp)
    return bench.Dovecot(tmp, [], [])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--no-dovecot", action="store_true")
    args = ap.parse_args()
    binary = os.path.abspath(os.path.join(os.environ.get("BUILD", "build"), "imapserver"))
    msgs = gen_messages(args.messages)
    total = sum(len(m) for m in msgs)
    tmp = tempfile.mkdtemp(prefix="sessions-bench-")
    res = {}
    try:
        os.makedirs(os.path.join(tmp, "flat"))
        res["ours flat"] = measure("imapserver flat",
                                   bench.Ours(os.path.join(tmp, "flat"), binary, [], []),
                                   msgs, args.seconds)
        res["ours maildir"] = measure("imapserver maildir",
                                      append_bench.ours(os.path.join(tmp, "md"), binary),
                                      msgs, args.seconds)
        if not args.no_dovecot and os.path.exists(bench.DOVECOT):
            res["dovecot mbox"] = measure("dovecot mbox", dovecot_mbox(os.path.join(tmp, "dm")),
                                          msgs, args.seconds)
            res["dovecot maildir"] = measure("dovecot maildir",
                                             append_bench.dovecot(os.path.join(tmp, "dd")),
                                             msgs, args.seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{CLIENTS} clients, LOGIN / SELECT INBOX / {LISTING} / LOGOUT, "
          f"{len(msgs)} messages ({total / 1e6:.1f} MB), {args.seconds:g} s each")
    cols = ["sessions/s", "SELECT p50", "SELECT p99", "FETCH p50", "FETCH p99"]
    print("| server | " + " | ".join(cols) + " |")
    print("| --- |" + " ---: |" * len(cols))
    for name, r in res.items():
        cells = [f"{r[k]:.1f}" if k == "sessions/s" else f"{r[k] * 1000:.1f} ms" for k in cols]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for ours, dove in (("ours flat", "dovecot mbox"), ("ours maildir", "dovecot maildir"),
                       ("ours flat", "dovecot maildir")):
        if ours in res and dove in res:
            a, b = res[ours], res[dove]
            print(f"{ours} / {dove}: sessions/s {a['sessions/s'] / b['sessions/s']:.2f}x, "
                  f"SELECT p50 {a['SELECT p50'] / b['SELECT p50']:.2f}x, "
                  f"FETCH p50 {a['FETCH p50'] / b['FETCH p50']:.2f}x")


if __name__ == "__main__":
    main()
