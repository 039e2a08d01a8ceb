"""A random concurrent workload on one mailbox (issue 5, item 4).

N clients share alice's INBOX for a while, each doing at random: STORE
(+/-FLAGS, FLAGS.SILENT, on system flags and on a keyword of its own),
FETCH, SEARCH, UID SEARCH, APPEND, COPY into INBOX, MOVE to Trash,
STORE \\Deleted + EXPUNGE or UID EXPUNGE, NOOP and short IDLEs. Some
clients ENABLE QRESYNC (they get VANISHED instead of EXPUNGE).

Every client keeps its own model of the mailbox built only from the
untagged responses it received: the seq -> UID map (EXISTS adds unknown
entries, which the next FETCH n:* fills; EXPUNGE n and VANISHED remove
entries; a VANISHED may name a UID announced by EXISTS but not fetched
yet, RFC 7162 3.2.10.2) and each message's flags (from every FETCH). It checks on the
way that a FETCH/STORE/SEARCH by sequence number never gets an EXPUNGE,
that every "* n FETCH (UID u" agrees with its map, and that every command
is answered OK (or OK/NO [EXPUNGEISSUED] / NO [TRYCREATE] where allowed).

At the end every client drains its updates (NOOP) and then:
  - its map equals the server's UID list (UID FETCH 1:* (FLAGS)),
  - its flags equal the server's flags (no lost flag update message),
  - every client saw the same UIDs and flags,
  - each client's private keyword is set exactly on the messages where
    its own last successful STORE left it (no lost flag update).

Run:  python3 tests/e2e/workload.py [--clients 20] [--seconds 20]
Exit status 0 when everything agreed."""

import argparse
import os
import random
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server import ImapServer, lab_message  # noqa: E402

SYSTEM_FLAGS = ["\\Seen", "\\Answered", "\\Flagged", "\\Draft"]
FETCH_RE = re.compile(rb"^\* (\d+) FETCH \((.*)\)$")
UID_RE = re.compile(rb"UID (\d+)")
FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")


class Failure(Exception):
    pass


def parse_set(s):
    out = []
    for part in s.split(b","):
        if b":" in part:
            a, b = part.split(b":")
            a, b = int(a), int(b)
            out.extend(range(min(a, b), max(a, b) + 1))
        else:
            out.append(int(part))
    return out


class Client:
    def __init__(self, idx, port, seed, qresync):
        self.idx = idx
        self.port = port
        self.rng = random.Random(seed)
        self.qresync = qresync
        self.kw = f"$c{idx}"
        self.tagn = 0
        self.sock = None
        self.buf = b""
        self.map = []           # seq-1 -> uid or None (announced by EXISTS, not yet known)
        self.pending = []       # seq-1 -> flags seen before the UID was known, or None
        self.flags = {}         # uid -> frozenset of flags (without \Recent)
        self.my_kw = {}         # uid -> bool: where this client's own STOREs left its keyword
        self.errors = []
        self.ops = 0

    # -- I/O

    def connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.readline()

    def readline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Failure(f"client {self.idx}: connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        m = re.search(rb"\{(\d+)\}$", line)
        if m:
            raise Failure(f"client {self.idx}: unexpected literal in {line!r}")
        return line

    def command(self, text, by_seq=False, ok_codes=()):
        """Sends a command, applies the untagged responses; returns
        (status, tagged line, untagged lines)."""
        self.tagn += 1
        tag = f"c{self.idx}t{self.tagn}"
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        untagged = []
        while True:
            line = self.readline()
            if line.startswith(tag.encode() + b" "):
                break
            if line.startswith(b"+"):
                continue
            untagged.append(line)
            self.apply(line, text, by_seq)
        status = line.split(b" ", 2)[1].decode()
        if status != "OK" and not any(code in line for code in ok_codes):
            raise Failure(f"client {self.idx}: {text!r} -> {line!r}")
        return status, line, untagged

    # -- the model

    def apply(self, line, cmd, by_seq):
        parts = line.split(b" ")
        if len(parts) >= 3 and parts[2] == b"EXPUNGE":
            if by_seq:
                raise Failure(f"client {self.idx}: EXPUNGE during {cmd!r}")
            n = int(parts[1])
            if n < 1 or n > len(self.map):
                raise Failure(f"client {self.idx}: EXPUNGE {n} with {len(self.map)} messages")
            uid = self.map.pop(n - 1)
            self.pending.pop(n - 1)
            self.flags.pop(uid, None)
            return
        if len(parts) >= 3 and parts[2] == b"EXISTS":
            n = int(parts[1])
            if n < len(self.map):
                raise Failure(f"client {self.idx}: EXISTS {n} below {len(self.map)}")
            self.pending.extend([None] * (n - len(self.map)))
            self.map.extend([None] * (n - len(self.map)))
            return
        if parts[1] == b"VANISHED":
            if by_seq:
                raise Failure(f"client {self.idx}: VANISHED during {cmd!r}")
            if parts[2] == b"(EARLIER)":
                return
            gone = set(parse_set(parts[2]))
            known = set(u for u in self.map if u is not None)
            # RFC 7162 3.2.10.2: a VANISHED may name a message announced by
            # EXISTS whose UID this client has not learned yet (Dovecot
            # does so too), never one it was not told of. Such a UID lies
            # among the unknown entries between the known UIDs around it;
            # which of them went cannot be told, so one of them goes and
            # those left lose their pending flags (fill() learns them).
            drop = set()
            for u in sorted(gone - known):
                region = []
                below = 0
                for k, v in enumerate(self.map):
                    if v is not None:
                        if v > u:
                            break
                        below = v
                        region = []
                    elif below < u and k not in drop:
                        region.append(k)
                if not region:
                    raise Failure(f"client {self.idx}: VANISHED of unknown UID {u}")
                drop.add(region[-1])
                for k in region:
                    self.pending[k] = None
            keep = [k for k, v in enumerate(self.map) if v not in gone and k not in drop]
            self.pending = [self.pending[k] for k in keep]
            self.map = [self.map[k] for k in keep]
            for u in gone:
                self.flags.pop(u, None)
            return
        m = FETCH_RE.match(line)
        if m:
            seq = int(m.group(1))
            if seq < 1 or seq > len(self.map):
                raise Failure(f"client {self.idx}: FETCH {seq} with {len(self.map)} messages")
            um = UID_RE.search(m.group(2))
            uid = self.map[seq - 1]
            if um:
                u = int(um.group(1))
                if uid is not None and uid != u:
                    raise Failure(f"client {self.idx}: seq {seq} is UID {u}, model says {uid}")
                self.map[seq - 1] = uid = u
                if self.pending[seq - 1] is not None:
                    self.flags[uid] = self.pending[seq - 1]
                    self.pending[seq - 1] = None
            fm = FLAGS_RE.search(m.group(2))
            if fm:
                fl = frozenset(f for f in fm.group(1).decode().split() if f != "\\Recent")
                if uid is None:
                    # announced by EXISTS, UID not known yet: kept by position
                    self.pending[seq - 1] = fl
                else:
                    self.flags[uid] = fl

    def store(self, seqs, sign, flag, silent):
        """STORE by number. With .SILENT the client applies its own change
        to its model (RFC 3501 6.4.6), unless the answer carried a FETCH
        for the message (another session's change came with it)."""
        a, _, b = seqs.partition(":")
        before = {seq: self.map[seq - 1] for seq in range(int(a), int(b or a) + 1)}
        status, tagged, untagged = self.command(
            f"STORE {seqs} {sign}FLAGS{'.SILENT' if silent else ''} ({flag})", by_seq=True,
            ok_codes=(b"[EXPUNGEISSUED]",))
        fetched = set()
        for line in untagged:
            m = FETCH_RE.match(line)
            if m:
                fetched.add(int(m.group(1)))
        for seq, uid in before.items():
            if uid is None or seq in fetched or uid not in self.flags:
                continue
            if not silent:
                continue
            if sign == "+":
                self.flags[uid] = self.flags[uid] | {flag}
            else:
                self.flags[uid] = self.flags[uid] - {flag}
        return status, before

    def fill(self):
        """Learns the UIDs and flags of messages announced by EXISTS."""
        for _ in range(50):
            unknown = [i for i, u in enumerate(self.map) if u is None]
            if not unknown:
                return
            status, tagged, _ = self.command(f"FETCH {unknown[0] + 1}:* (UID FLAGS)",
                                             by_seq=True, ok_codes=(b"[EXPUNGEISSUED]",))
            if status != "OK" or b"[EXPUNGEISSUED]" in tagged:
                # expunged meanwhile (and left out of the answer): its
                # EXPUNGE comes with the next command
                self.command("NOOP")
        raise Failure(f"client {self.idx}: could not learn new UIDs")

    def check_map_sorted(self):
        known = [u for u in self.map if u is not None]
        if known != sorted(known) or len(set(known)) != len(known):
            raise Failure(f"client {self.idx}: map not ascending: {self.map}")

    # -- operations

    def rand_seqset(self):
        n = len(self.map)
        if n == 0:
            return None
        a = self.rng.randint(1, n)
        b = min(n, a + self.rng.randint(0, 3))
        return f"{a}:{b}" if a != b else str(a)

    def op(self):
        self.fill()
        n = len(self.map)
        r = self.rng.random()
        if n == 0 or r < 0.12 or (n < 15 and r < 0.25):
            msg = lab_message([("From", f"c{self.idx}@localhost"), ("To", "alice@localhost"),
                               ("Subject", f"from client {self.idx} op {self.ops}")],
                              ["body"]).replace("\n", "\r\n")
            data = msg.encode()
            self.command(f"APPEND INBOX {{{len(data)}+}}\r\n".encode().decode() + msg)
        elif r < 0.40:
            s = self.rand_seqset()
            flag = self.rng.choice(SYSTEM_FLAGS + [self.kw])
            sign = self.rng.choice("+-")
            silent = self.rng.choice(["", ".SILENT"])
            status, before = self.store(s, sign, flag, silent == ".SILENT")
            if flag == self.kw:
                # (with [EXPUNGEISSUED] the messages still there were stored)
                for uid in before.values():
                    if uid is not None:
                        self.my_kw[uid] = sign == "+"
        elif r < 0.52:
            s = self.rand_seqset()
            self.command(f"FETCH {s} (UID FLAGS)", by_seq=True, ok_codes=(b"[EXPUNGEISSUED]",))
        elif r < 0.58:
            self.command(self.rng.choice(["SEARCH FLAGGED", "SEARCH UNSEEN", "SEARCH ALL"]),
                         by_seq=True)
        elif r < 0.64:
            self.command(self.rng.choice(["UID SEARCH ALL", "UID FETCH 1:* (FLAGS)"]))
        elif r < 0.70 and n < 60:
            self.command(f"COPY {self.rand_seqset()} INBOX")
        elif r < 0.76:
            self.command(f"MOVE {self.rand_seqset()} Trash")
        elif r < 0.86:
            s = self.rand_seqset()
            self.store(s, "+", "\\Deleted", True)
            if self.rng.random() < 0.5:
                self.command("EXPUNGE")
            else:
                self.fill()
                uids = [u for u in self.map if u is not None]
                if uids:
                    self.command(f"UID EXPUNGE {self.rng.choice(uids)}")
        elif r < 0.93:
            self.command("NOOP")
        else:
            self.idle(self.rng.uniform(0.01, 0.2))
        self.ops += 1
        self.check_map_sorted()

    def idle(self, secs):
        self.tagn += 1
        tag = f"c{self.idx}t{self.tagn}"
        self.sock.sendall(f"{tag} IDLE\r\n".encode())
        line = self.readline()
        while not line.startswith(b"+"):
            self.apply(line, "IDLE", False)
            line = self.readline()
        end = time.monotonic() + secs
        self.sock.settimeout(0.02)
        while time.monotonic() < end:
            try:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Failure(f"client {self.idx}: closed in IDLE")
                self.buf += chunk
                while b"\r\n" in self.buf:
                    line = self.readline()
                    self.apply(line, "IDLE", False)
            except socket.timeout:
                pass
        self.sock.settimeout(30)
        self.sock.sendall(b"DONE\r\n")
        while True:
            line = self.readline()
            if line.startswith(tag.encode() + b" "):
                if b" OK" not in line:
                    raise Failure(f"client {self.idx}: IDLE -> {line!r}")
                return
            self.apply(line, "IDLE", False)

    def setup(self):
        self.connect()
        self.command("LOGIN alice alice123")
        if self.qresync:
            self.command("ENABLE QRESYNC")
        self.command("SELECT INBOX")
        self.fill()

    def run(self, deadline, barrier):
        try:
            while time.monotonic() < deadline:
                self.op()
        except Failure as e:
            self.errors.append(str(e))
        except OSError as e:
            self.errors.append(f"client {self.idx}: {e!r}")
        barrier.wait()

    def final(self):
        """Drains updates; returns (uids, flags) from the server."""
        self.command("NOOP")
        self.fill()
        model_uids = list(self.map)
        model_flags = dict(self.flags)
        _, _, untagged = self.command("UID FETCH 1:* (FLAGS)")
        uids, flags = [], {}
        for line in untagged:
            m = FETCH_RE.match(line)
            if not m:
                continue
            u = int(UID_RE.search(m.group(2)).group(1))
            uids.append(u)
            flags[u] = frozenset(f for f in FLAGS_RE.search(m.group(2)).group(1).decode().split()
                                 if f != "\\Recent")
        if model_uids != uids:
            self.errors.append(f"client {self.idx}: model UIDs {model_uids} != server {uids}")
        for u in uids:
            if model_flags.get(u) != flags[u]:
                self.errors.append(f"client {self.idx}: UID {u} model flags "
                                   f"{sorted(model_flags.get(u, []))} != server {sorted(flags[u])}")
                break
        for u, want in self.my_kw.items():
            if u in flags and (self.kw in flags[u]) != want:
                self.errors.append(f"client {self.idx}: lost update: {self.kw} on UID {u} "
                                   f"should be {'set' if want else 'clear'}")
        return uids, flags


def run_workload(clients=20, seconds=20.0, seed=None, verbose=True, make_servers=None):
    """Returns a list of errors (empty when every session agreed).
    make_servers(seed_text), if given, returns the servers (not started)
    that serve one store together: the clients are spread over them."""
    seed = seed if seed is not None else int(time.time())
    rng = random.Random(seed)
    msgs = "".join(lab_message([("From", "x@localhost"), ("To", "alice@localhost"),
                                ("Subject", f"seed {i}")], [f"body {i}"]) for i in range(20))
    servers = []
    errors = []
    try:
        servers = (make_servers(msgs) if make_servers is not None
                   else [ImapServer({"alice": msgs}, log_level="info")])
        for server in servers:
            server.start()
        cl = [Client(i, servers[i % len(servers)].port, rng.randrange(1 << 30),
                     qresync=(i % 4 == 3))
              for i in range(clients)]
        for c in cl:
            c.setup()
        barrier = threading.Barrier(clients)
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=c.run, args=(deadline, barrier)) for c in cl]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 120)
        results = []
        for c in cl:
            errors.extend(c.errors)
            try:
                results.append(c.final())
            except (Failure, OSError) as e:
                errors.append(str(e))
            errors.extend(c.errors[len(errors):] if False else [])
        for c in cl:
            for e in c.errors:
                if e not in errors:
                    errors.append(e)
        if results and any(r != results[0] for r in results):
            errors.append("sessions disagree on the final mailbox state")
        ops = sum(c.ops for c in cl)
        if verbose:
            print(f"workload: seed {seed}, {clients} clients, {seconds:.0f} s, {ops} operations, "
                  f"{len(results[0][0]) if results else 0} messages at the end, "
                  f"{len(errors)} error(s)")
        for server in servers:
            if not server.alive():
                errors.append("server died")
            errors.extend(f"server log: {line}" for line in server.error_lines())
    finally:
        # the last made first (a second node before the one that owns
        # their shared store)
        for server in reversed(servers):
            server.cleanup()
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    errors = run_workload(a.clients, a.seconds, a.seed)
    for e in errors[:30]:
        print("  " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
