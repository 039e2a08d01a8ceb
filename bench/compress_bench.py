#!/usr/bin/env python3
"""COMPRESS=DEFLATE (RFC 4978) benchmark: imapserver beside Dovecot (with
its imap_zlib plugin) when /usr/sbin/dovecot is installed.

  - memory per idle connection, COMPRESS off and on: PSS of the server's
    process tree before and after C connections (logged in, SELECTed on a
    small mailbox, FETCH 1:* (FLAGS) answered, then in IDLE); with
    COMPRESS on, COMPRESS DEFLATE comes after SELECT and the FETCH and
    IDLE go through DEFLATE both ways (so both zlib states exist);
  - FETCH 1:* BODY.PEEK[] of a mailbox of N messages, COMPRESS off and
    on: octets on the wire and the time to the tagged OK (median of runs).

Uses bench.py's servers and data. Figures taken while other work runs on
the machine are rough. Standard library only.

    python3 bench/compress_bench.py --server build/imapserver [--conns 200]
        [--messages 10000] [--runs 3] [--no-dovecot]"""

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

HOST = bench.HOST


class ZConn:
    """An IMAP client that can turn DEFLATE on after COMPRESS."""

    def __init__(self, port, timeout=60.0):
        self.s = socket.create_connection((HOST, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.n = 0
        self.zout = self.zin = None
        self.wire = 0
        line = self.readline()
        if not line.startswith(b"* OK"):
            raise RuntimeError(f"greeting {line!r}")

    def _recv(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise EOFError("connection closed")
        self.wire += len(d)
        return self.zin.decompress(d) if self.zin is not None else d

    def readline(self):
        while b"\n" not in self.buf:
            self.buf += self._recv()
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def send(self, cmd):
        self.n += 1
        tag = f"z{self.n}"
        data = f"{tag} {cmd}\r\n".encode()
        if self.zout is not None:
            data = self.zout.compress(data) + self.zout.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)
        return tag

    def wait_tagged(self, tag):
        """Reads until "tag ..." at the start of a line; scans the decoded
        stream (no literal parsing: a body line never starts with the
        tag)."""
        needle = b"\r\n" + tag.encode() + b" "
        data = self.buf
        self.buf = b""
        while True:
            i = data.find(needle)
            if i < 0 and data.startswith(tag.encode() + b" "):
                i = -2
            if i != -1:
                start = 0 if i == -2 else i + 2
                end = data.find(b"\r\n", start)
                while end < 0:
                    data += self._recv()
                    end = data.find(b"\r\n", start)
                self.buf = data[end + 2:]
                return data[start:end]
            data += self._recv()

    def cmd(self, cmd):
        line = self.wait_tagged(self.send(cmd))
        if line.split(b" ", 2)[1:2] != [b"OK"]:
            raise RuntimeError(f"{cmd!r}: {line!r}")
        return line

    def compress(self):
        tag = self.send("COMPRESS DEFLATE")
        # The OK is in clear; what follows it in the same read is not.
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("closed")
            self.buf += d
        i = self.buf.index(b"\r\n") + 2
        line, rest = self.buf[:i], self.buf[i:]
        if not line.startswith(tag.encode() + b" OK"):
            raise RuntimeError(f"COMPRESS: {line!r}")
        self.zout = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.zin = zlib.decompressobj(-15)
        self.buf = self.zin.decompress(rest)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def idle_memory(srv, conns, compress, log):
    time.sleep(0.3)
    before = srv.pss()
    opened = []
    try:
        for _ in range(conns):
            c = ZConn(srv.port, timeout=30.0)
            opened.append(c)
            c.cmd("LOGIN bob bob123")
            c.cmd("SELECT INBOX")
            if compress:
                c.compress()
            c.cmd("FETCH 1:* (FLAGS)")
            c.send("IDLE")
            while not c.readline().startswith(b"+"):
                pass
        time.sleep(0.5)
        after = srv.pss()
        kb = (after - before) / len(opened)
        log(f"  {srv.name}: {len(opened)} idle connections, COMPRESS "
            f"{'on' if compress else 'off'}: PSS {before} -> {after} kB ({kb:.1f} kB each)")
        return kb
    except (OSError, EOFError, RuntimeError) as e:
        log(f"  {srv.name}: idle connections failed after {len(opened)}: {e}")
        return float("nan")
    finally:
        for c in opened:
            c.close()


def fetch_all(srv, compress, runs, log):
    times, wire = [], 0
    for _ in range(runs):
        c = ZConn(srv.port)
        c.cmd("LOGIN alice alice123")
        c.cmd("SELECT INBOX")
        if compress:
            c.compress()
        c.wire = 0
        t0 = time.perf_counter()
        c.cmd("FETCH 1:* BODY.PEEK[]")
        times.append(time.perf_counter() - t0)
        wire = c.wire
        c.close()
    t = statistics.median(times)
    log(f"  {srv.name}: FETCH 1:* BODY.PEEK[], COMPRESS {'on' if compress else 'off'}: "
        f"{wire} octets on the wire, {t * 1000:.0f} ms")
    return t, wire


def run(srv, args, log):
    r = {}
    srv.start()
    try:
        r["idle_off"] = idle_memory(srv, args.conns, False, log)
        r["idle_on"] = idle_memory(srv, args.conns, True, log)
        r["fetch_off"], r["wire_off"] = fetch_all(srv, False, args.runs, log)
        r["fetch_on"], r["wire_on"] = fetch_all(srv, True, args.runs, log)
    finally:
        srv.stop()
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="build/imapserver")
    ap.add_argument("--conns", type=int, default=200)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-dovecot", action="store_true")
    args, _ = ap.parse_known_args()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    msgs = bench.gen_messages(args.messages, 1)
    small = bench.gen_messages(20, 2)
    results = {}
    with tempfile.TemporaryDirectory(prefix="compress-bench-") as tmp:
        ours_dir = os.path.join(tmp, "ours")
        os.makedirs(ours_dir)
        log(f"compress bench: {args.messages} messages, {args.conns} idle connections")
        results["imapserver"] = run(bench.Ours(ours_dir, os.path.abspath(args.server), msgs,
                                               small), args, log)
        if not args.no_dovecot and os.path.exists(bench.DOVECOT):
            dove_dir = os.path.join(tmp, "dovecot")
            os.makedirs(dove_dir)
            d = bench.Dovecot(dove_dir, msgs, small)
            with open(d.conf, "a") as f:
                f.write("protocol imap {\n  mail_plugins = $mail_plugins zlib imap_zlib\n}\n")
            results["dovecot"] = run(d, args, log)
            shutil.rmtree(os.path.join(dove_dir, "run"), ignore_errors=True)
    names = list(results)
    print(f"\nCOMPRESS=DEFLATE: {args.conns} idle connections; FETCH 1:* BODY.PEEK[] of "
          f"{args.messages} messages (median of {args.runs})")
    print(f"{'':44}" + "".join(f"{n:>14}" for n in names))
    rows = [("memory per idle connection, COMPRESS off", "idle_off", "kB", 1),
            ("memory per idle connection, COMPRESS on", "idle_on", "kB", 1),
            ("FETCH BODY[] on the wire, COMPRESS off", "wire_off", "kB", 1 / 1024),
            ("FETCH BODY[] on the wire, COMPRESS on", "wire_on", "kB", 1 / 1024),
            ("FETCH BODY[] time, COMPRESS off", "fetch_off", "ms", 1000),
            ("FETCH BODY[] time, COMPRESS on", "fetch_on", "ms", 1000)]
    for label, key, unit, scale in rows:
        print(f"{label + ' (' + unit + ')':44}"
              + "".join(f"{results[n][key] * scale:>14.1f}" for n in names))


if __name__ == "__main__":
    main()
