"""Certificates for the TLS tests, made with the openssl command line tool
(package openssl; tests/deps.sh installs it).

make_pki(folder) makes a test CA and a server certificate signed by it for
localhost and 127.0.0.1, the way a real deployment looks (a chain the
client verifies against a CA file). The other helpers make the broken
files a start-up must refuse: an expired certificate, a key that does not
match, a certificate that expires soon.

Every file is world-readable (the server runs as the service user when
the tests run as root); nothing here is secret."""

import os
import ssl
import subprocess

OPENSSL = "openssl"


def _run(args, cwd):
    subprocess.run([OPENSSL] + args, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)


class Pki:
    """Paths of a test CA and a server certificate signed by it."""

    def __init__(self, folder):
        self.folder = folder
        self.ca_cert = os.path.join(folder, "ca.pem")
        self.ca_key = os.path.join(folder, "ca.key")
        self.cert = os.path.join(folder, "server.pem")
        self.key = os.path.join(folder, "server.key")

    def client_context(self, verify=True):
        """An ssl.SSLContext that trusts the test CA (or nothing)."""
        ctx = ssl.create_default_context(cafile=self.ca_cert if verify else None)
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def conf(self, extra=""):
        """The tls section naming these files."""
        return (f'tls: {{ cert_file = "{self.cert}"; key_file = "{self.key}"; {extra}}};\n')


def make_key(folder, name):
    path = os.path.join(folder, name)
    _run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
          "-out", path], folder)
    os.chmod(path, 0o644)
    return path


def make_cert(pki, name, key, days=365, cn="localhost",
              san="DNS:localhost,IP:127.0.0.1"):
    """A certificate for key, signed by pki's CA, valid for days from now
    (negative: already expired)."""
    csr = os.path.join(pki.folder, name + ".csr")
    ext = os.path.join(pki.folder, name + ".ext")
    out = os.path.join(pki.folder, name)
    _run(["req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr], pki.folder)
    with open(ext, "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _run(["x509", "-req", "-in", csr, "-CA", pki.ca_cert, "-CAkey", pki.ca_key,
          "-CAcreateserial", "-days", str(days), "-extfile", ext, "-out", out], pki.folder)
    os.chmod(out, 0o644)
    return out


def make_pki(folder):
    """A CA and a server certificate for localhost / 127.0.0.1 in folder."""
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o755)
    pki = Pki(folder)
    make_key(folder, "ca.key")
    _run(["req", "-x509", "-new", "-key", pki.ca_key, "-subj", "/CN=imapserver test CA",
          "-days", "3650", "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", pki.ca_cert], folder)
    os.chmod(pki.ca_cert, 0o644)
    make_key(folder, "server.key")
    make_cert(pki, "server.pem", pki.key)
    return pki


def make_expired(pki):
    """(cert, key): a certificate that expired yesterday."""
    return make_cert(pki, "expired.pem", pki.key, days=-1), pki.key


def make_expiring(pki, days=10):
    """(cert, key): a certificate that expires in days."""
    return make_cert(pki, "expiring.pem", pki.key, days=days), pki.key


def make_mismatched(pki):
    """(cert, key): the server certificate with another key."""
    return pki.cert, make_key(pki.folder, "other.key")
