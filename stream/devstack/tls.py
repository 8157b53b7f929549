"""A throw-away certificate authority and server certificate, for Redis over TLS in tests.

Made with the ``openssl`` command (Debian's ``openssl`` package): a CA, and a key and
certificate for ``127.0.0.1`` signed by it, valid for two days. Clients trust the CA
through the URL (``rediss://...?ssl_ca_certs=<ca>``), which redis-py reads in both its
standalone and its cluster client.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stream.errors import ServiceMissing


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The CA certificate, and the server's certificate and key."""

    ca: Path
    cert: Path
    key: Path

    def server_args(self) -> list[str]:
        """``redis-server`` options serving TLS only, on the cluster bus and replication links too."""
        return ["--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key), "--tls-ca-cert-file",
                str(self.ca), "--tls-auth-clients", "no", "--tls-cluster", "yes", "--tls-replication", "yes"]

    def cli_args(self) -> list[str]:
        return ["--tls", "--cacert", str(self.ca)]

    def url(self, port: int, credentials: str = "") -> str:
        """A ``rediss://`` URL of a node on 127.0.0.1 that trusts the CA (``credentials``: ``user:password@``)."""
        return f"rediss://{credentials}127.0.0.1:{port}/0?ssl_ca_certs={self.ca}"


def make_tls_files(directory: Path) -> TlsFiles:
    """Create a CA and a certificate for 127.0.0.1 signed by it, in ``directory``."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise ServiceMissing("no openssl command: TLS test certificates need it (`apt-get install openssl`)")
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.crt", directory / "redis.crt", directory / "redis.key")
    ca_key, csr, ext = directory / "ca.key", directory / "redis.csr", directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    for argv in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", files.ca, "-days", "2",
         "-subj", "/CN=hubcounter test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", files.key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", files.ca, "-CAkey", ca_key, "-CAcreateserial", "-out", files.cert,
         "-days", "2", "-extfile", ext],
    ):
        done = subprocess.run([openssl, *map(str, argv)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise ServiceMissing(f"openssl {argv[0]} failed: {done.stderr}")
    return files
