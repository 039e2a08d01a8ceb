#!/usr/bin/env python3
"""Benchmarks of imapserver, side by side with Dovecot when it is installed.

Generates a flat mailbox of N small messages (lab format, fixed seed),
starts the server on a free loopback port in a temp folder and measures:

  - time from process start to the greeting (connect poll), median of runs
  - SELECT INBOX of the big mailbox: first ever, first after a restart, warm
  - FETCH 1:* (UID FLAGS) until the tagged OK, median of runs
  - memory per idle connection: PSS of the server's process tree before and
    after C connections (logged in, SELECTed on a small mailbox, in IDLE)
  - push latency: STORE on one session until the untagged FETCH arrives on
    another session in IDLE (p50, p99 of S samples)

With /usr/sbin/dovecot, the same against a throw-away Dovecot (mbox of the
same messages) and the ratio ours/dovecot. Standard library only."""

import argparse
import os
import pwd
import random
import resource
import select
import shutil
import signal
import socket
import stat
import statistics
import subprocess
import sys
import tempfile
import time

# As root the server refuses to start without server.user: the benchmark
# runs it as the end-to-end tests' service user, with their helpers.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from server import give_to_server_user, server_group_line  # noqa: E402

HOST = "127.0.0.1"
USERS = {"alice": "alice123", "bob": "bob123"}
DOVECOT = "/usr/sbin/dovecot"

FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
WORDS = ("meeting report lab network socket server client mail box protocol exam "
         "deadline project review draft budget coffee lunch schedule update notes "
         "question answer thanks please attached agenda minutes").split()


# ------------------------------------------------------------------ data

def gen_messages(n, seed):
    """n messages as (headers, body_lines), deterministic."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        frm = rnd.choice(FIRST)
        to = rnd.choice(FIRST)
        subj = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 6))).capitalize()
        day = 1 + i * 28 // max(n, 1)
        hdr = [("From", f"{frm}@localhost"), ("To", f"{to}@localhost"),
               ("Subject", f"{subj} #{i + 1}"),
               ("Received", f"2022-03-{day:02d} : {rnd.randint(0, 23):02d} : "
                            f"{rnd.randint(0, 59):02d}")]
        body = []
        for _ in range(rnd.randint(2, 12)):
            line = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 12)))
            if rnd.random() < 0.02:
                line = "." + line
            body.append(line)
        out.append((hdr, body))
    return out


def write_lab(path, msgs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for hdr, body in msgs:
            for k, v in hdr:
                f.write(f"{k}: {v}\n")
            for line in body:
                f.write(("." + line if line.startswith(".") else line) + "\n")
            f.write(".\n")


def write_mbox(path, msgs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for hdr, body in msgs:
            f.write("From MAILER-DAEMON Thu Mar 10 14:30:00 2022\n")
            for k, v in hdr:
                f.write(f"{k}: {v}\n")
            f.write("\n")
            for line in body:
                f.write((">" + line if line.startswith("From ") else line) + "\n")
            f.write("\n")


# ------------------------------------------------------------------ processes

def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_tree(root_pid):
    """root_pid and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root_pid]
    while todo and len(out) < 100000:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def pss_kb(root_pid):
    total = 0
    for pid in proc_tree(root_pid):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


class Server:
    """Base: start() returns once the greeting can be read; the port is
    fixed at construction so that restarts keep it."""

    name = "?"

    def __init__(self, tmp):
        self.tmp = tmp
        self.port = free_port()
        self.proc = None
        self.start_to_greeting = None

    def argv(self):
        raise NotImplementedError

    def start(self, timeout=60.0):
        t0 = time.monotonic()
        self.log = open(os.path.join(self.tmp, f"{self.name}.log"), "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, cwd=self.tmp)
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                with open(self.log.name, "rb") as f:
                    tail = f.read()[-2000:].decode("utf-8", "replace")
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; its "
                                   f"log ({self.log.name}):\n{tail}")
            try:
                s = socket.create_connection((HOST, self.port), timeout=5)
            except OSError:
                time.sleep(0.001)
                continue
            try:
                line = s.makefile("rb").readline()
            finally:
                s.close()
            if line.startswith(b"* OK"):
                self.start_to_greeting = time.monotonic() - t0
                return
            raise RuntimeError(f"{self.name}: bad greeting {line!r}")
        raise RuntimeError(f"{self.name} did not answer within {timeout} s")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill_tree()
        self.proc = None
        self.log.close()

    def kill_tree(self):
        for pid in reversed(proc_tree(self.proc.pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.proc.wait()

    def pss(self):
        return pss_kb(self.proc.pid)


def open_parent(path, mode):
    """Lets other users through the folder above path (a mkdtemp folder
    of ours, mode 0700). Never a shared folder such as /tmp itself (sticky
    and open to all already): its mode is not ours to change."""
    parent = os.path.dirname(os.path.abspath(path))
    st = os.stat(parent)
    if st.st_mode & stat.S_ISVTX or st.st_uid != os.geteuid():
        return
    os.chmod(parent, mode)


class Ours(Server):
    name = "imapserver"

    def __init__(self, tmp, binary, msgs, small):
        super().__init__(tmp)
        self.binary = binary
        root = os.path.join(tmp, "mail")
        write_lab(os.path.join(root, "alice", "mymailbox.mail"), msgs)
        write_lab(os.path.join(root, "bob", "mymailbox.mail"), small)
        with open(os.path.join(tmp, "users"), "w") as f:
            for u, p in USERS.items():
                f.write(f"{u} {p}\n")
        self.conf = os.path.join(tmp, "imapserver.conf")
        with open(self.conf, "w") as f:
            f.write('imap: { address = "127.0.0.1"; port = 0; };\n'
                    'storage: { backend = "flat"; root = "mail"; };\n'
                    'auth: { backend = "passwd-file"; file = "users"; };\n'
                    'limits: { max_connections = 1000; max_connections_per_address = 0; '
                    'auth_fail_delay = 0; };\n'
                    'log: { level = "warn"; };\n'
                    + server_group_line())
        # As root: the folder is the server user's, who must also pass
        # through the one above it (mkdtemp's, root's, mode 0700).
        if server_group_line():
            give_to_server_user(tmp, self.conf)
            open_parent(tmp, 0o711)

    def argv(self):
        return [self.binary, "-c", self.conf, "-f", str(self.port)]

    def forget_side_data(self):
        for user in USERS:
            shutil.rmtree(os.path.join(self.tmp, "mail", user, ".imap"), ignore_errors=True)


class Dovecot(Server):
    name = "dovecot"

    def __init__(self, tmp, msgs, small):
        super().__init__(tmp)
        # Dovecot's auth and login processes run as other users.
        os.chmod(tmp, 0o755)
        open_parent(tmp, 0o755)
        for user, m in (("alice", msgs), ("bob", small)):
            write_mbox(os.path.join(tmp, "home", user, "mail", "inbox"), m)
        users = os.path.join(tmp, "dovecot.users")
        with open(users, "w") as f:
            for u, p in USERS.items():
                f.write(f"{u}:{{PLAIN}}{p}\n")
        uid, gid = os.getuid(), os.getgid()
        me = None
        if uid != 0:
            me = pwd.getpwuid(uid).pw_name
        else:
            # Dovecot refuses to serve mail as root: as root, the mail
            # belongs to "nobody" for the length of the benchmark.
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
            for root, dirs, files in os.walk(os.path.join(tmp, "home")):
                for x in [root] + [os.path.join(root, f) for f in files]:
                    os.chown(x, uid, gid)
        self.conf = os.path.join(tmp, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(f"""protocols = imap
listen = 127.0.0.1
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot-mail.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = {uid}
first_valid_gid = {gid}
default_process_limit = 1200
default_client_limit = 2500
default_vsz_limit = 0
mail_location = mbox:~/mail:INBOX=~/mail/inbox
# Dovecot's IDLE re-checks the mailbox this often when no inotify event
# wakes it (the default is 30 s, which the push samples would time out on).
mailbox_idle_check_interval = 1 secs
# Flag changes reach the mbox file (and so other sessions) at once, not
# when the changing session closes the mailbox.
mbox_lazy_writes = no
protocol imap {{
  mail_max_userip_connections = 2000
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={tmp}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
""")
            if me:
                f.write(f"default_internal_user = {me}\ndefault_login_user = {me}\n")

    def argv(self):
        return [DOVECOT, "-F", "-c", self.conf]

    def forget_side_data(self):
        for user in USERS:
            d = os.path.join(self.tmp, "home", user, "mail")
            for root, dirs, files in os.walk(d):
                for x in dirs:
                    if x.startswith(".imap") or x == ".imap":
                        shutil.rmtree(os.path.join(root, x), ignore_errors=True)
            shutil.rmtree(os.path.join(d, ".imap"), ignore_errors=True)
            for x in ("dovecot.index", "dovecot.index.log", "dovecot.index.cache",
                      "dovecot-uidlist"):
                try:
                    os.unlink(os.path.join(d, x))
                except OSError:
                    pass


# ------------------------------------------------------------------ client

class Conn:
    """A minimal IMAP client that only scans for tagged answers."""

    def __init__(self, port, timeout=60.0):
        self.s = socket.create_connection((HOST, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.n = 0
        line = self.readline()
        if not line.startswith(b"* OK"):
            raise RuntimeError(f"greeting {line!r}")

    def readline(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def send(self, cmd):
        self.n += 1
        tag = f"b{self.n}"
        self.s.sendall(f"{tag} {cmd}\r\n".encode())
        return tag

    def wait_tagged(self, tag):
        """Reads until the line "tag OK|NO|BAD"; returns (line, bytes read).
        Scans raw bytes: literals in FETCH (UID FLAGS) are not expected."""
        needle = b"\r\n" + tag.encode() + b" "
        data = self.buf
        self.buf = b""
        total = 0
        while True:
            i = data.find(needle)
            if i < 0 and data.startswith(tag.encode() + b" "):
                i = -2
            if i != -1:
                start = 0 if i == -2 else i + 2
                end = data.find(b"\r\n", start)
                while end < 0:
                    d = self.s.recv(65536)
                    if not d:
                        raise EOFError("closed")
                    data += d
                    end = data.find(b"\r\n", start)
                line = data[start:end]
                self.buf = data[end + 2:]
                return line, total + end + 2
            keep = data[-(len(needle) - 1):]
            total += len(data) - len(keep)
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError("closed while waiting for " + tag)
            data = keep + d

    def cmd(self, cmd):
        line, _ = self.wait_tagged(self.send(cmd))
        if line.split(b" ", 2)[1:2] != [b"OK"]:
            raise RuntimeError(f"{cmd!r}: {line!r}")
        return line

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


# ------------------------------------------------------------------ measures

def measure(srv, args, log):
    r = {}
    # Start to greeting (and first-ever SELECT right after, no side data).
    srv.forget_side_data()
    srv.start()
    greet = [srv.start_to_greeting]
    c = Conn(srv.port)
    c.cmd("LOGIN alice alice123")
    r["select_first_ever"] = timed(lambda: c.cmd("SELECT INBOX"))
    c.close()
    log(f"  {srv.name}: first SELECT ever {r['select_first_ever'] * 1000:.1f} ms")

    firsts = []
    for _ in range(args.runs):
        srv.stop()
        srv.start()
        greet.append(srv.start_to_greeting)
        c = Conn(srv.port)
        c.cmd("LOGIN alice alice123")
        firsts.append(timed(lambda: c.cmd("SELECT INBOX")))
        c.close()
    r["greeting"] = median(greet)
    r["select_restart"] = median(firsts)
    log(f"  {srv.name}: start->greeting {r['greeting'] * 1000:.1f} ms, "
        f"first SELECT after restart {r['select_restart'] * 1000:.1f} ms")

    # Warm: the mailbox stays open in a session kept selected meanwhile.
    keeper = Conn(srv.port)
    keeper.cmd("LOGIN alice alice123")
    keeper.cmd("SELECT INBOX")
    warm = []
    for _ in range(args.runs):
        c = Conn(srv.port)
        c.cmd("LOGIN alice alice123")
        warm.append(timed(lambda: c.cmd("SELECT INBOX")))
        c.close()
    r["select_warm"] = median(warm)

    fetch = []
    size = 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        line, size = keeper.wait_tagged(keeper.send("FETCH 1:* (UID FLAGS)"))
        fetch.append(time.perf_counter() - t0)
        if b"OK" not in line:
            raise RuntimeError(f"FETCH: {line!r}")
    r["fetch"] = median(fetch)
    r["fetch_bytes"] = size
    keeper.close()
    log(f"  {srv.name}: warm SELECT {r['select_warm'] * 1000:.1f} ms, "
        f"FETCH 1:* (UID FLAGS) {r['fetch'] * 1000:.1f} ms ({size} bytes)")

    # Memory per idle connection (bob's small mailbox).
    time.sleep(0.3)
    before = srv.pss()
    conns = []
    t0 = time.monotonic()
    try:
        for i in range(args.conns):
            c = Conn(srv.port, timeout=15.0)
            conns.append(c)
            c.s.sendall(b"l LOGIN bob bob123\r\ns SELECT INBOX\r\n")
        for c in conns:
            c.wait_tagged("s")
            c.s.sendall(b"i IDLE\r\n")
        for c in conns:
            line = c.readline()
            while not line.startswith(b"+"):
                line = c.readline()
        time.sleep(0.5)
        after = srv.pss()
        r["conn_kb"] = (after - before) / len(conns)
        r["conns"] = len(conns)
        log(f"  {srv.name}: {len(conns)} idle connections in "
            f"{time.monotonic() - t0:.1f} s, PSS {before} -> {after} kB")
    except (OSError, EOFError, RuntimeError) as e:
        r["conn_kb"] = float("nan")
        r["conns"] = len(conns)
        log(f"  {srv.name}: idle connections failed after {len(conns)}: {e}")
    finally:
        for c in conns:
            c.close()

    # Push latency: STORE on b, untagged FETCH on a (in IDLE).
    a = Conn(srv.port)
    a.cmd("LOGIN bob bob123")
    a.cmd("SELECT INBOX")
    b = Conn(srv.port)
    b.cmd("LOGIN bob bob123")
    b.cmd("SELECT INBOX")
    a.s.sendall(b"i IDLE\r\n")
    while not a.readline().startswith(b"+"):
        pass
    lat = []
    missed = 0
    deadline = time.monotonic() + args.push_budget
    for k in range(args.samples):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        # One sample waits at most 5 s (a server that only polls would
        # otherwise hold the benchmark for minutes).
        a.s.settimeout(min(5.0, left))
        sign = "+" if k % 2 == 0 else "-"
        # Drop whatever a has pending, so that only this change counts.
        a.buf = b""
        a.s.setblocking(False)
        try:
            while a.s.recv(65536):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        a.s.settimeout(min(5.0, left))
        t0 = time.perf_counter()
        tag = b.send(f"STORE 1 {sign}FLAGS.SILENT (\\Flagged)")
        try:
            while True:
                line = a.readline()
                if b" FETCH " in line and (b"\\Flagged" in line) == (sign == "+"):
                    break
        except (socket.timeout, TimeoutError):
            missed += 1
            b.wait_tagged(tag)
            break
        lat.append(time.perf_counter() - t0)
        b.wait_tagged(tag)
    if missed:
        log(f"  {srv.name}: no push within 5 s after {len(lat)} samples; stopped")
    a.s.sendall(b"DONE\r\n")
    a.close()
    b.close()
    r["push_p50"] = percentile(lat, 50)
    r["push_p99"] = percentile(lat, 99)
    r["push_n"] = len(lat)
    log(f"  {srv.name}: push p50 {r['push_p50'] * 1000:.2f} ms p99 "
        f"{r['push_p99'] * 1000:.2f} ms ({len(lat)} samples)")
    srv.stop()
    return r


ROWS = [
    ("start -> greeting", "greeting", "ms"),
    ("SELECT INBOX, first ever", "select_first_ever", "ms"),
    ("SELECT INBOX, after restart", "select_restart", "ms"),
    ("SELECT INBOX, warm", "select_warm", "ms"),
    ("FETCH 1:* (UID FLAGS)", "fetch", "ms"),
    ("memory per idle connection", "conn_kb", "kB"),
    ("push latency p50", "push_p50", "ms"),
    ("push latency p99", "push_p99", "ms"),
]


def fmt(v, unit):
    if v is None or v != v:
        return "n/a"
    return f"{v * 1000:.2f}" if unit == "ms" else f"{v:.1f}"


def print_table(ours, dove, args):
    print()
    print(f"{args.messages} messages in INBOX; {ours.get('conns', 0)} idle connections; "
          f"{ours.get('push_n', 0)} push samples; medians of {args.runs} runs")
    head = f"| {'measure':<36} | {'imapserver':>12} |"
    if dove:
        head += f" {'dovecot':>12} | {'ours/dovecot':>12} |"
    print(head)
    print("|" + "-" * 38 + "|" + "-" * 14 + "|" + ("-" * 14 + "|" + "-" * 14 + "|"
                                                     if dove else ""))
    for label, key, unit in ROWS:
        line = f"| {label + ' (' + unit + ')':<36} | {fmt(ours.get(key), unit):>12} |"
        if dove:
            o, d = ours.get(key), dove.get(key)
            ratio = "n/a"
            if o == o and d == d and o is not None and d:
                ratio = f"{o / d:.2f}"
            line += f" {fmt(d, unit):>12} | {ratio:>12} |"
        print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="build/imapserver")
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--small", type=int, default=20, help="messages in the IDLE mailbox")
    ap.add_argument("--conns", type=int, default=500)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--push-budget", type=float, default=60.0,
                    help="seconds at most for the push samples of one server")
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument("--seed", type=int, default=20220310)
    args = ap.parse_args()

    for v, lo, hi in ((args.messages, 1, 10 ** 7), (args.conns, 1, 5000),
                      (args.samples, 1, 100000), (args.runs, 1, 100)):
        if not lo <= v <= hi:
            ap.error("value out of range")
    binary = os.path.abspath(args.server)
    if not os.access(binary, os.X_OK):
        sys.exit(f"bench: {binary} is missing: run make first")

    # Both the client and the servers need a descriptor per connection.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * args.conns + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 2 * args.conns + 64:
        args.conns = max(1, (want - 64) // 2)
        print(f"bench: RLIMIT_NOFILE {want}: only {args.conns} connections", file=sys.stderr)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    top = tempfile.mkdtemp(prefix="imapserver-bench-")
    servers = []
    try:
        log(f"bench: generating {args.messages} messages in {top}")
        msgs = gen_messages(args.messages, args.seed)
        small = gen_messages(args.small, args.seed + 1)
        os.makedirs(os.path.join(top, "ours"))
        ours_srv = Ours(os.path.join(top, "ours"), binary, msgs, small)
        servers.append(ours_srv)
        dove_srv = None
        if not args.no_dovecot and os.access(DOVECOT, os.X_OK):
            os.makedirs(os.path.join(top, "dovecot"))
            dove_srv = Dovecot(os.path.join(top, "dovecot"), msgs, small)
            servers.append(dove_srv)
        del msgs
        log("bench: imapserver")
        ours = measure(ours_srv, args, log)
        dove = None
        if dove_srv is not None:
            log("bench: dovecot")
            try:
                dove = measure(dove_srv, args, log)
            except (RuntimeError, OSError, EOFError) as e:
                log(f"bench: dovecot run failed: {e}")
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
