"""Test certificates with the openssl CLI: a throw-away CA that issues
server certificates, and the certificate a port serves."""

import os
import random
import re
import socket
import ssl
import subprocess

from .util import HarnessError, sanitize


def openssl(*args, cwd=None, input=None, timeout=60):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, input=input, capture_output=True,
                       timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
    if p.returncode != 0:
        raise HarnessError("openssl %s failed: %s" % (" ".join(args),
                                                      p.stderr.decode("utf-8", "replace")))
    return p.stdout


class CA:
    """A throw-away certificate authority (EC P-256) in directory d."""

    def __init__(self, d, name="notifyd test CA"):
        os.makedirs(d, exist_ok=True)
        self.dir = d
        self.name = name
        slug = sanitize(name)
        self.key = os.path.join(d, slug + ".key")
        self.cert = os.path.join(d, slug + ".pem")
        self._serial = 1000 + random.randrange(100000)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=" + name,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, name, cn=None, serial=None, san="IP:127.0.0.1,DNS:localhost", rsa=False):
        """A server certificate: returns (cert path, key path, serial)."""
        self._serial += 1
        serial = serial or self._serial
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(self.dir, name + ".pem")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n" % san)
        newkey = ["-newkey", "rsa:2048"] if rsa else ["-newkey", "ec", "-pkeyopt",
                                                      "ec_paramgen_curve:P-256"]
        openssl("req", *newkey, "-nodes", "-keyout", key, "-out", csr, "-subj",
                "/CN=" + (cn or name))
        openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                "-set_serial", str(serial), "-days", "2", "-out", cert, "-extfile", ext)
        os.chmod(key, 0o644)  # the broker (same user) and notifyd read it
        return cert, key, serial

    def context(self):
        """A client ssl.SSLContext that trusts this CA (and checks host names)."""
        ctx = ssl.create_default_context(cafile=self.cert)
        return ctx


def peer_certificate(port, host="127.0.0.1", timeout=5):
    """(serial number, subject CN) of the certificate served on port."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname=host) as t:
            der = t.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der).encode()
    out = openssl("x509", "-noout", "-serial", "-subject", "-nameopt", "RFC2253",
                  input=pem).decode()
    serial = re.search(r"serial=([0-9A-Fa-f]+)", out).group(1)
    cn = re.search(r"CN=([^,\n]+)", out)
    return int(serial, 16), cn.group(1).strip() if cn else None
