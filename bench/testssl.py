#!/usr/bin/env python3
"""testssl.sh against the default TLS settings of imapserver (only
tls.cert_file and tls.key_file set): the implicit TLS port and STARTTLS
on the plain port. Too slow for "make check" (a minute or two); run by
"sh bench/run.sh --testssl" or directly:

    python3 bench/testssl.py [--server build/imapserver]

Runs the protocol (-p), cipher category (-s), server defaults and
renegotiation (-R), compression/CRIME (-C), BREACH-free and the other
vulnerability checks it can do quickly (--heartbleed, --ccs-injection,
--ticketbleed, --robot, --poodle, --sweet32, --freak, --logjam,
--beast, --lucky13, --rc4), writes testssl's JSON and fails (exit 1)
on any finding of severity MEDIUM, HIGH or CRITICAL, listing them."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from server import ImapServer  # noqa: E402
from tls_support import make_pki  # noqa: E402
from test_tls import free_port, tls_config  # noqa: E402

CHECKS = ["-p", "-s", "-R", "-C", "--heartbleed", "--ccs-injection", "--ticketbleed",
          "--robot", "--poodle", "--sweet32", "--freak", "--logjam", "--beast", "--lucky13",
          "--rc4"]
BAD = ("MEDIUM", "HIGH", "CRITICAL")


def scan(testssl, target, starttls, folder):
    out = os.path.join(folder, f"testssl-{target.replace(':', '-')}.json")
    argv = [testssl, "--quiet", "--color", "0", "--warnings", "batch", "--ip", "one",
            "--jsonfile", out] + CHECKS + (["--starttls", "imap"] if starttls else []) + [target]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=900)
    print(p.stdout)
    if not os.path.exists(out):
        sys.exit(f"testssl: no JSON written (exit {p.returncode}): {p.stderr[-2000:]}")
    with open(out) as f:
        findings = json.load(f)
    return [x for x in findings if x.get("severity") in BAD]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="build/imapserver")
    args = ap.parse_args()
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    if not testssl:
        sys.exit("testssl.sh is not installed (Debian package testssl.sh)")
    os.environ["IMAPSERVER"] = os.path.abspath(args.server)
    srv = ImapServer({"alice": ""})
    try:
        pki = make_pki(os.path.join(srv.dir, "pki"))
        tls_port = free_port()
        tls_config(srv, pki, tls_port)
        srv.start()
        bad = []
        for target, starttls in ((f"127.0.0.1:{tls_port}", False),
                                 (f"127.0.0.1:{srv.port}", True)):
            print(f"== testssl {'--starttls imap ' if starttls else ''}{target}", flush=True)
            found = scan(testssl, target, starttls, srv.dir)
            bad += [(target, x) for x in found]
        alive = srv.alive()
    finally:
        srv.cleanup()
    if not alive:
        sys.exit("testssl: the server died during the scan")
    if bad:
        for target, x in bad:
            print(f"!! {target}: {x.get('id')}: {x.get('severity')}: {x.get('finding')}")
        sys.exit(1)
    print("testssl: no finding of severity MEDIUM or above on either port")


if __name__ == "__main__":
    main()
