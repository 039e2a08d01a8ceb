#!/usr/bin/env python3
"""What a user sees on a full disk, step by step (the table of the full-disk
issue): the store on a 5 MB tmpfs, alice fills it with 20 KB APPENDs, then
SELECT, STORE, COPY, another user's SELECT and FETCH, EXPUNGE and an APPEND
after it, a refill, a restart on the full disk, SELECT and STATUS; and how
many log lines spoke of the lack of space. Needs root (mount).

    sudo IMAPSERVER=build/imapserver python3 bench/full_disk.py [flat|maildir]

Not a test (tests/e2e/test_full_disk.py asserts the same behaviour)."""

import imaplib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

MSG = b"Subject: fill\r\n\r\n" + (b"z" * 78 + b"\r\n") * 256


def main():
    backend = sys.argv[1] if len(sys.argv) > 1 else "flat"
    binary = os.environ.get("IMAPSERVER", "build/imapserver")
    if os.geteuid() != 0:
        sys.exit("full_disk.py: needs root to mount a tmpfs")
    tmp = tempfile.mkdtemp(prefix="full-disk-")
    mnt = os.path.join(tmp, "mnt")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m,mode=0755", "tmpfs", mnt], check=True)
    logf = os.path.join(tmp, "log")
    procs = []
    try:
        os.makedirs(os.path.join(mnt, "mail"))
        with open(os.path.join(tmp, "users"), "w") as f:
            f.write("alice alice123\nbob bob123\n")
        conf = os.path.join(tmp, "c.conf")
        with open(conf, "w") as f:
            f.write(f'server: {{ user = "imapserver"; }};\n'
                    f'imap: {{ address = "127.0.0.1"; port = 0; }};\n'
                    f'storage: {{ backend = "{backend}"; root = "{mnt}/mail"; }};\n'
                    f'auth: {{ backend = "passwd-file"; file = "{tmp}/users"; }};\n'
                    f'limits: {{ auth_fail_delay = 0; }};\nlog: {{ level = "info"; }};\n')
        subprocess.run(["chown", "-R", "imapserver", mnt], check=True)
        os.chmod(tmp, 0o755)

        def start():
            p = subprocess.Popen([binary, "-f", "-c", conf], stderr=open(logf, "a"))
            procs.append(p)
            for _ in range(100):
                time.sleep(0.05)
                with open(logf) as f:
                    m = re.findall(r"listening on 127.0.0.1:(\d+)", f.read())
                if m:
                    return p, int(m[-1])
            sys.exit("the server did not start")

        p, port = start()
        b = imaplib.IMAP4("127.0.0.1", port)
        b.login("bob", "bob123")
        b.append("INBOX", None, None, b"Subject: b\r\n\r\nhi\r\n")
        b.logout()
        a = imaplib.IMAP4("127.0.0.1", port)
        a.login("alice", "alice123")
        n = 0
        while True:
            typ, data = a.append("INBOX", None, None, MSG)
            if typ != "OK":
                print(f"APPEND after {n} stored: {typ} {data[0].decode()}")
                break
            n += 1
        print("SELECT:", a.select("INBOX")[0])
        typ, data = a.store("1:3", "+FLAGS", "(\\Flagged)")
        print("STORE +FLAGS:", typ, data[0].decode())
        typ, data = a.copy("1:20", "INBOX")
        print("COPY 20 messages:", typ, data[0].decode())
        b = imaplib.IMAP4("127.0.0.1", port)
        b.login("bob", "bob123")
        print("another user's SELECT:", b.select("INBOX")[0], "FETCH:", b.fetch("1", "(FLAGS)")[0])
        a.store("1:10", "+FLAGS", "(\\Deleted)")
        typ, data = a.expunge()
        print("EXPUNGE of 10:", typ, f"{len([d for d in data if d])} EXPUNGE responses")
        typ, data = a.append("INBOX", None, None, MSG)
        print("APPEND after EXPUNGE:", typ, data[0].decode())
        while a.append("INBOX", None, None, MSG)[0] == "OK":
            pass
        a.logout()
        b.logout()
        p.terminate()
        p.wait()
        p, port = start()
        a = imaplib.IMAP4("127.0.0.1", port)
        a.login("alice", "alice123")
        print("SELECT after a restart on the full disk:", a.select("INBOX"))
        print("STATUS:", a.status("INBOX", "(MESSAGES)"))
        a.logout()
        p.terminate()
        p.wait()
        with open(logf) as f:
            lines = [x for x in f if re.search(r"space|quota exceeded", x, re.I)]
        print(f"log lines about the lack of space: {len(lines)}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["umount", "-l", mnt], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
