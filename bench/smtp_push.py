"""How long after SMTP's final 250 a client in IDLE hears of the new mail
(`* n EXISTS`), with the SMTP listener inside imapserver (delivery and the
IDLE session in one loop) and with the stand-alone smtpmail (another
process: the server learns of it by watching the mailbox file).

    python3 bench/smtp_push.py [--server build/imapserver] [--samples 100]

Prints p50/p99 per mode. Loopback only; every wait is bounded."""
import argparse
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
os.environ.setdefault("IMAPSERVER", "build/imapserver")

from server import ImapServer, seed_text  # noqa: E402
from smtp_support import Smtpmail, add_smtp_section, _SMTP_LISTEN_RE  # noqa: E402

MESSAGE = (b"From: bob@localhost\r\nTo: alice@localhost\r\nSubject: push\r\n\r\n"
           b"hello\r\n.\r\n")


def read_until(sock, buf, marker, deadline):
    while marker not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(marker)
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def smtp_session(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    buf = read_until(s, b"", b"\r\n", time.monotonic() + 10)
    s.sendall(b"EHLO bench\r\n")
    read_until(s, b"", b"250 ", time.monotonic() + 10)
    return s


def measure(imap_port, smtp_port, samples):
    idle = socket.create_connection(("127.0.0.1", imap_port), timeout=10)
    buf = read_until(idle, b"", b"\r\n", time.monotonic() + 10)
    idle.sendall(b"a LOGIN alice alice123\r\nb SELECT INBOX\r\n")
    buf = read_until(idle, b"", b"b OK", time.monotonic() + 10)
    count = int(buf.split(b" EXISTS")[0].split(b"* ")[-1])
    idle.sendall(b"c IDLE\r\n")
    read_until(idle, b"", b"+ ", time.monotonic() + 10)
    smtp = smtp_session(smtp_port)
    times = []
    buf = b""
    for i in range(samples):
        smtp.sendall(b"MAIL FROM:<bob@localhost>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n")
        r = read_until(smtp, b"", b"354 ", time.monotonic() + 10)
        smtp.sendall(MESSAGE)
        r = read_until(smtp, b"", b"250 ", time.monotonic() + 10)
        t0 = time.monotonic()
        count += 1
        marker = b"* %d EXISTS" % count
        buf = read_until(idle, buf, marker, t0 + 5)
        times.append((time.monotonic() - t0) * 1000)
        buf = buf[buf.index(marker) + len(marker):]
    smtp.sendall(b"QUIT\r\n")
    smtp.close()
    idle.sendall(b"DONE\r\n")
    idle.close()
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="build/imapserver")
    ap.add_argument("--samples", type=int, default=100)
    args = ap.parse_args()
    os.environ["IMAPSERVER"] = args.server
    os.environ.setdefault("SMTPMAIL", os.path.join(os.path.dirname(args.server), "smtpmail"))
    rows = []
    for mode in ("inside imapserver", "stand-alone smtpmail"):
        srv = ImapServer({"alice": seed_text()}, log_level="info")
        other = None
        try:
            add_smtp_section(srv, enabled=(mode == "inside imapserver"))
            srv.start()
            if mode == "inside imapserver":
                line = srv.wait_log(_SMTP_LISTEN_RE, timeout=5)
                smtp_port = int(line.rsplit(":", 1)[1])
            else:
                other = Smtpmail(srv)
                smtp_port = other.start()
            p50, p99 = measure(srv.port, smtp_port, args.samples)
            rows.append((mode, p50, p99))
            print(f"  smtp push ({mode}): p50 {p50:.2f} ms p99 {p99:.2f} ms", file=sys.stderr)
        finally:
            if other is not None:
                other.cleanup()
            srv.cleanup()
    print(f"\nSMTP 250 -> IDLE '* n EXISTS', {args.samples} deliveries each")
    print("| SMTP listener | p50 (ms) | p99 (ms) |")
    print("|---|---:|---:|")
    for mode, p50, p99 in rows:
        print(f"| {mode} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()
