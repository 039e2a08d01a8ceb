#!/usr/bin/env python3
"""SELECT of a large mailbox right after a restart of the server, over IMAP,
on both storage backends, side by side with Dovecot (Maildir) when it is
installed (issue 12: it must not grow with the mailbox).

For each of imapserver/flat, imapserver/maildir and dovecot/maildir: N
messages (bench.py's generator, fixed seed) written as the backend keeps
them (a lab-format mymailbox.mail, or one file each in Maildir/cur, the
folders dated a minute back as a mailbox nobody changed lately), one
first SELECT (which builds the index), then RUNS times: stop the server,
start it, LOGIN, time SELECT INBOX until its tagged OK. Prints p50 and max
per server and the ratios to Dovecot's p50. Standard library only; the
figures of a machine others are using at the same time are rough.

    bench/select_restart.py [--server build/imapserver] [--messages 100000]
                            [--runs 9] [--no-dovecot]"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import Conn, Dovecot, Ours, DOVECOT, timed  # noqa: E402


def message_text(headers, body):
    return "".join(f"{k}: {v}\n" for k, v in headers) + "\n" + "".join(b + "\n" for b in body)


def write_maildir(base, msgs):
    """msgs as files in base/cur, named and dated as a delivery agent
    leaves them; the folders dated a minute back."""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    for i, (headers, body) in enumerate(msgs):
        name = f"{1600000000 + i}.M{i}P1.bench:2,"
        path = os.path.join(base, "cur", name)
        with open(path, "w") as f:
            f.write(message_text(headers, body))
        os.utime(path, (1600000000 + i, 1600000000 + i))
    age(base)


def age(base):
    past = time.time() - 60
    for sub in ("cur", "new"):
        os.utime(os.path.join(base, sub), (past, past))


class OursMaildir(Ours):
    name = "imapserver-maildir"

    def __init__(self, tmp, binary, msgs, small):
        super().__init__(tmp, binary, [], small)
        root = os.path.join(tmp, "mail")
        shutil.rmtree(os.path.join(root, "alice"))
        write_maildir(os.path.join(root, "alice", "Maildir"), msgs)
        with open(self.conf) as f:
            conf = f.read()
        with open(self.conf, "w") as f:
            f.write(conf.replace('backend = "flat"', 'backend = "maildir"'))
        if bench.server_group_line():
            bench.give_to_server_user(tmp, self.conf)


class DovecotMaildir(Dovecot):
    name = "dovecot-maildir"

    def __init__(self, tmp, msgs, small):
        super().__init__(tmp, [], small)
        base = os.path.join(tmp, "home", "alice", "Maildir")
        write_maildir(base, msgs)
        st = os.stat(os.path.join(tmp, "home", "alice", "mail"))
        for root, dirs, files in os.walk(base):
            for x in [root] + [os.path.join(root, f) for f in files]:
                os.chown(x, st.st_uid, st.st_gid)
        age(base)
        with open(self.conf) as f:
            conf = f.read()
        with open(self.conf, "w") as f:
            f.write(conf.replace("mail_location = mbox:~/mail:INBOX=~/mail/inbox",
                                 "mail_location = maildir:~/Maildir"))


def select_times(srv, runs, log):
    """The first SELECT, then runs restarts each timed at its SELECT."""
    srv.start()
    c = Conn(srv.port)
    c.cmd("LOGIN alice alice123")
    first = timed(lambda: c.cmd("SELECT INBOX"))
    c.cmd("LOGOUT")
    c.close()
    log(f"  {srv.name}: first SELECT {first * 1000:.1f} ms")
    out = []
    for _ in range(runs):
        srv.stop()
        srv.start()
        c = Conn(srv.port)
        c.cmd("LOGIN alice alice123")
        out.append(timed(lambda: c.cmd("SELECT INBOX")))
        c.cmd("LOGOUT")
        c.close()
    srv.stop()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="build/imapserver")
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument("--seed", type=int, default=20220310)
    args = ap.parse_args()
    if not (1 <= args.messages <= 10 ** 7 and 1 <= args.runs <= 100):
        ap.error("value out of range")
    binary = os.path.abspath(args.server)
    if not os.access(binary, os.X_OK):
        sys.exit(f"select_restart: {binary} is missing: run make first")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    top = tempfile.mkdtemp(prefix="imapserver-select-restart-")
    results = []
    try:
        log(f"select_restart: {args.messages} messages in {top}")
        msgs = bench.gen_messages(args.messages, args.seed)
        small = bench.gen_messages(5, args.seed + 1)
        makers = [("imapserver flat", lambda d: Ours(d, binary, msgs, small)),
                  ("imapserver maildir", lambda d: OursMaildir(d, binary, msgs, small))]
        if not args.no_dovecot and os.access(DOVECOT, os.X_OK):
            makers.append(("dovecot maildir", lambda d: DovecotMaildir(d, msgs, small)))
        for i, (label, make) in enumerate(makers):
            d = os.path.join(top, str(i))
            os.makedirs(d)
            srv = make(d)
            try:
                results.append((label, select_times(srv, args.runs, log)))
            finally:
                srv.stop()
    finally:
        shutil.rmtree(top, ignore_errors=True)

    dove = dict(results).get("dovecot maildir")
    print(f"SELECT INBOX after a restart, {args.messages} messages, {args.runs} runs")
    print(f"{'server':<22} {'p50 ms':>9} {'max ms':>9} {'p50/dovecot':>12}")
    for label, xs in results:
        p50 = statistics.median(xs)
        ratio = f"{p50 / statistics.median(dove):12.2f}" if dove else f"{'-':>12}"
        print(f"{label:<22} {p50 * 1000:9.2f} {max(xs) * 1000:9.2f} {ratio}")


if __name__ == "__main__":
    main()
