#!/usr/bin/env python3
"""What each real client's commands cost (issue 19): the same commands
from Python's imaplib, curl, mbsync and offlineimap against our server
(flat and Maildir) and, where installed, Dovecot 2.3 (Maildir), in one
run; and, beside each imaplib command, the same bytes sent in one write by
a raw socket client (the floor a network stall would show against). SMTP:
Python's smtplib and swaks (and msmtp when installed) against our
listener, beside a raw client sending the message and its terminator in
one write, and in two.

Prints, per client and command, the median and p99 in ms and the ratios
ours/Dovecot and ours/one-write. mutt needs a terminal: it runs under
script(1), which gives it one, opening INBOX (LOGIN, SELECT, the headers of
every message) and quitting.

  python3 bench/client_latency.py [--runs 30] [--no-dovecot]
"""

import argparse
import imaplib
import os
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import dovecot_support  # noqa: E402
import server as e2e  # noqa: E402
from smtp_support import add_smtp_section  # noqa: E402
from test_maildir import MaildirServer  # noqa: E402

HOST = "127.0.0.1"
SMALL = b"From: a@example.org\r\nTo: alice@localhost\r\nSubject: bench\r\n\r\n" + \
    (b"x" * 70 + b"\r\n") * 40                 # about 3 KB
BIG = b"From: a@example.org\r\nSubject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 1000  # 1 MB
SEED = 50


def stats(xs):
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]
    return statistics.median(xs) * 1000, p99 * 1000


class Raw:
    """One-write client: sends a whole command (non-synchronizing
    literals) in one sendall and reads to its tagged answer."""

    def __init__(self, port, user="alice", password="alice123"):
        self.s = socket.create_connection((HOST, port), timeout=30)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")
        self.n = 0
        self.f.readline()
        self.cmd(f"LOGIN {user} {password}".encode())

    def cmd(self, data):
        self.n += 1
        tag = b"r%d" % self.n
        self.s.sendall(tag + b" " + data + b"\r\n")
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("closed")
            m = line.rstrip(b"\r\n")
            if m.endswith(b"}") and b"{" in m:
                self.f.read(int(m[m.rindex(b"{") + 1:-1].rstrip(b"+")))
                continue
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{data[:40]!r}: {line!r}")
                return

    def close(self):
        self.s.close()


def imaplib_commands(port, runs, log):
    """{command: (imaplib samples, one-write samples)}."""
    out = {}
    m = imaplib.IMAP4(HOST, port, timeout=30)
    m.login("alice", "alice123")
    raw = Raw(port)
    for box in ("Other", "Moved"):
        m.create(box)

    def both(name, lib_fn, raw_bytes, n=runs):
        lib, one = [], []
        for _ in range(n):
            t0 = time.perf_counter()
            lib_fn()
            lib.append(time.perf_counter() - t0)
            if raw_bytes is not None:
                t0 = time.perf_counter()
                raw.cmd(raw_bytes() if callable(raw_bytes) else raw_bytes)
                one.append(time.perf_counter() - t0)
        out[name] = (lib, one)

    def ok(res):
        if res[0] != "OK":
            raise RuntimeError(repr(res))

    def login():
        c = imaplib.IMAP4(HOST, port, timeout=30)
        t0 = time.perf_counter()
        c.login("alice", "alice123")
        took = time.perf_counter() - t0
        c.logout()
        return took

    samples = [login() for _ in range(runs)]
    out["LOGIN"] = (samples, [])
    both("SELECT INBOX", lambda: ok(m.select("INBOX")), b"SELECT INBOX")
    both("FETCH 1 (BODY.PEEK[HEADER])", lambda: ok(m.fetch("1", "(BODY.PEEK[HEADER])")),
         b"FETCH 1 (BODY.PEEK[HEADER])")
    both("FETCH 1 (BODY[])", lambda: ok(m.fetch("1", "(BODY[])")), b"FETCH 1 (BODY[])")
    both("STORE 1 +FLAGS (\\Flagged)", lambda: ok(m.store("1", "+FLAGS", "(\\Flagged)")),
         b"STORE 1 +FLAGS (\\Flagged)")
    both("APPEND 3 KB", lambda: ok(m.append("INBOX", None, None, SMALL)),
         b"APPEND INBOX {%d+}\r\n" % len(SMALL) + SMALL)
    both("APPEND 1 MB", lambda: ok(m.append("INBOX", None, None, BIG)),
         b"APPEND INBOX {%d+}\r\n" % len(BIG) + BIG, n=max(3, runs // 6))
    both("COPY 1 Other", lambda: ok(m.copy("1", "Other")), b"COPY 1 Other")
    ok(m.select("INBOX"))

    def move():
        typ, data = m.uid("MOVE", last_uid(m), "Moved")
        if typ != "OK":
            raise RuntimeError(repr(data))
    raw.cmd(b"SELECT INBOX")
    both("UID MOVE (last) Moved", move, lambda: b"UID MOVE %s Moved" % last_uid_raw(port))

    def expunge():
        ok(m.store(str(count(m)), "+FLAGS", "(\\Deleted)"))
        ok(m.expunge())
    both("STORE \\Deleted + EXPUNGE", expunge, None)

    def idle():
        tag = m._new_tag()
        m.send(tag + b" IDLE\r\n")
        while not m.readline().startswith(b"+"):
            pass
        m.send(b"DONE\r\n")
        while not m.readline().startswith(tag):
            pass
    both("IDLE + DONE", idle, None)
    m.logout()
    raw.close()
    log("  imaplib done")
    return out


def last_uid(m):
    typ, data = m.uid("SEARCH", None, "ALL")
    return data[0].split()[-1].decode()


def last_uid_raw(port):
    m = imaplib.IMAP4(HOST, port, timeout=30)
    m.login("alice", "alice123")
    m.select("INBOX")
    uid = last_uid(m).encode()
    m.logout()
    return uid


def count(m):
    typ, data = m.select("INBOX")
    return int(data[0])


def curl_commands(port, runs):
    if shutil.which("curl") is None:
        return {}
    base = f"imap://{HOST}:{port}"
    tmp = tempfile.NamedTemporaryFile(delete=False)
    tmp.write(SMALL)
    tmp.close()
    cmds = {
        "curl LIST": [base + "/"],
        "curl FETCH UID=1": [base + "/INBOX;UID=1"],
        "curl SEARCH ALL": [base + "/INBOX", "-X", "SEARCH ALL"],
        "curl APPEND 3 KB": [base + "/INBOX", "-T", tmp.name],
    }
    out = {}
    for name, args in cmds.items():
        xs = []
        for _ in range(runs):
            t0 = time.perf_counter()
            r = subprocess.run(["curl", "-s", "-S", "-u", "alice:alice123"] + args,
                               capture_output=True, timeout=60)
            xs.append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise RuntimeError(f"{name}: {r.stderr!r}")
        out[name] = (xs, [])
    os.unlink(tmp.name)
    return out


def sync_tool(port, runs, tool):
    """The whole sync of INBOX (SEED+ messages) into an empty local
    Maildir, per run."""
    if shutil.which(tool) is None:
        return {}
    xs = []
    for _ in range(max(2, runs // 10)):
        d = tempfile.mkdtemp(prefix=f"{tool}-")
        try:
            if tool == "mbsync":
                os.makedirs(os.path.join(d, "m"))
                rc = os.path.join(d, "rc")
                with open(rc, "w") as f:
                    f.write(f"IMAPAccount a\nHost {HOST}\nPort {port}\nUser alice\n"
                            f"Pass alice123\nSSLType None\nAuthMechs LOGIN\n\n"
                            f"IMAPStore r\nAccount a\n\nMaildirStore l\nPath {d}/m/\n"
                            f"Inbox {d}/m/INBOX\n\nChannel c\nFar :r:\nNear :l:\n"
                            f"Patterns INBOX\nCreate Near\nSyncState *\n")
                argv = ["mbsync", "-q", "-c", rc, "-a"]
            else:
                rc = os.path.join(d, "rc")
                with open(rc, "w") as f:
                    f.write(f"[general]\naccounts = a\nmetadata = {d}/meta\n\n"
                            f"[Account a]\nlocalrepository = l\nremoterepository = r\n\n"
                            f"[Repository l]\ntype = Maildir\nlocalfolders = {d}/m\n\n"
                            f"[Repository r]\ntype = IMAP\nremotehost = {HOST}\n"
                            f"remoteport = {port}\nremoteuser = alice\n"
                            f"remotepass = alice123\nssl = no\nstarttls = no\n"
                            f"folderfilter = lambda f: f == 'INBOX'\n")
                argv = ["offlineimap", "-c", rc, "-o", "-u", "quiet"]
            t0 = time.perf_counter()
            r = subprocess.run(argv, capture_output=True, timeout=300)
            xs.append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise RuntimeError(f"{tool}: {r.stderr[-400:]!r}")
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return {f"{tool}: sync INBOX": (xs, [])}


def smtp_commands(port, runs):
    out = {}
    xs = []
    s = smtplib.SMTP(HOST, port, timeout=30)
    for _ in range(runs):
        t0 = time.perf_counter()
        s.sendmail("a@example.org", ["alice@localhost"], SMALL)
        xs.append(time.perf_counter() - t0)
    s.quit()
    one, two = [], []
    c = socket.create_connection((HOST, port), timeout=30)
    f = c.makefile("rb")
    f.readline()
    c.sendall(b"EHLO bench\r\n")
    while not f.readline().startswith(b"250 "):
        pass

    def until(prefix):
        while not f.readline().startswith(prefix):
            pass
    for split, dest in ((False, one), (True, two)):
        for _ in range(runs):
            t0 = time.perf_counter()
            c.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n")
            until(b"354")
            if split:
                c.sendall(SMALL)
                c.sendall(b".\r\n")
            else:
                c.sendall(SMALL + b".\r\n")
            until(b"250 2.0.0")
            dest.append(time.perf_counter() - t0)
    c.close()
    out["smtplib sendmail 3 KB"] = (xs, one)
    out["raw, terminator in its own write"] = (two, one)
    for tool, argv in (("swaks", ["swaks", "-S", "-s", HOST, "-p", str(port), "-f",
                                  "a@example.org", "-t", "alice@localhost"]),
                       ("msmtp", ["msmtp", "--host", HOST, "--port", str(port), "-f",
                                  "a@example.org", "alice@localhost"])):
        if shutil.which(tool) is None:
            continue
        ys = []
        for _ in range(max(3, runs // 3)):
            t0 = time.perf_counter()
            r = subprocess.run(argv, input=SMALL if tool == "msmtp" else None,
                               capture_output=True, timeout=60)
            ys.append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise RuntimeError(f"{tool}: {r.stderr[-300:]!r}")
        out[f"{tool} (one process per mail)"] = (ys, [])
    return out


def mutt_session(port, runs):
    """mutt opens INBOX (listing every message's headers) and quits."""
    if shutil.which("mutt") is None or shutil.which("script") is None:
        return {}
    d = tempfile.mkdtemp(prefix="mutt-")
    rc = os.path.join(d, "muttrc")
    with open(rc, "w") as f:
        f.write(f'set folder="imap://alice:alice123@{HOST}:{port}/"\n'
                'set spoolfile="+INBOX"\nset ssl_starttls=no\nset ssl_force_tls=no\n'
                'set header_cache=""\nset message_cachedir=""\nset mail_check=0\n')
    xs = []
    env = dict(os.environ, TERM="xterm", HOME=d)
    try:
        for _ in range(max(3, runs // 3)):
            t0 = time.perf_counter()
            r = subprocess.run(["script", "-qec", f"mutt -n -F {rc} -e 'push <quit>y'",
                                "/dev/null"], capture_output=True, timeout=60, env=env)
            xs.append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise RuntimeError(f"mutt: {r.stdout[-300:]!r}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return {"mutt: open INBOX, quit": (xs, [])}


def measure_imap(port, runs, log):
    res = imaplib_commands(port, runs, log)
    res.update(curl_commands(port, max(5, runs // 3)))
    try:
        res.update(mutt_session(port, runs))
    except RuntimeError as e:
        log(f"  mutt failed: {e}")
    for tool in ("mbsync", "offlineimap"):
        try:
            res.update(sync_tool(port, runs, tool))
        except RuntimeError as e:
            log(f"  {tool} failed: {e}")
    return res


def ours(kind, log):
    cls = MaildirServer if kind == "maildir" else e2e.ImapServer
    srv = cls({"alice": e2e.seed_text()}, limits={"max_connections_per_address": 0},
              log_level="info")
    add_smtp_section(srv, True)
    return srv


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--no-dovecot", action="store_true")
    args = ap.parse_args()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    results = {}
    smtp = {}
    for kind in ("flat", "maildir"):
        log(f"ours ({kind})")
        srv = ours(kind, log)
        try:
            srv.start()
            line = srv.wait_log(r"smtp listening on 127\.0\.0\.1:(\d+)", 5.0)
            smtp_port = int(line.rsplit(":", 1)[1]) if line else None
            m = imaplib.IMAP4(HOST, srv.port)
            m.login("alice", "alice123")
            for _ in range(SEED):
                m.append("INBOX", None, None, SMALL)
            m.logout()
            results[kind] = measure_imap(srv.port, args.runs, log)
            if kind == "flat" and smtp_port:
                smtp = smtp_commands(smtp_port, args.runs)
        finally:
            srv.stop(check=False)
            srv.cleanup()
    if not args.no_dovecot and dovecot_support.dovecot_binary():
        log("dovecot (maildir)")
        with dovecot_support.DovecotServer(users={"alice": "alice123"}) as dc:
            dc.append("alice", [SMALL] * SEED)
            results["dovecot"] = measure_imap(dc.port, args.runs, log)

    cols = [k for k in ("flat", "maildir", "dovecot") if k in results]
    print("| client: command | " + " | ".join(f"{c} p50 / p99 (ms)" for c in cols)
          + " | flat/dovecot | flat/one write |")
    print("| --- | " + " | ".join("---:" for _ in cols) + " | ---: | ---: |")
    for name in results["flat"]:
        cells = []
        for c in cols:
            if name in results[c]:
                p50, p99 = stats(results[c][name][0])
                cells.append(f"{p50:.2f} / {p99:.2f}")
            else:
                cells.append("")
        fl = stats(results["flat"][name][0])[0]
        dv = stats(results["dovecot"][name][0])[0] if "dovecot" in results and \
            name in results["dovecot"] else None
        one = results["flat"][name][1]
        label = name if name.startswith(("curl", "mbsync", "offlineimap", "mutt")) else \
            "imaplib: " + name
        print(f"| {label} | " + " | ".join(cells)
              + f" | {fl / dv:.2f} |" if dv else f"| {label} | " + " | ".join(cells) + " | |",
              end="")
        print(f" {fl / stats(one)[0]:.2f} |" if one else " |")
    if smtp:
        print()
        print("| SMTP (ours, flat) | p50 / p99 (ms) | / one write |")
        print("| --- | ---: | ---: |")
        for name, (xs, one) in smtp.items():
            p50, p99 = stats(xs)
            ratio = f"{p50 / stats(one)[0]:.2f}" if one else ""
            print(f"| {name} | {p50:.2f} / {p99:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
