"""Real nginx in front of real gunicorn for the deployment test: certificates, /etc/hosts
names, the nginx process. Everything here undoes itself (``contextlib`` managers), so a
failing test leaves no nginx running and /etc/hosts as it was.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import requests

from .support.packages import ensure_program

HOSTS_FILE = Path("/etc/hosts")
#: One nginx test at a time on a machine (ports 80/443 and /etc/hosts are shared).
LOCK_FILE = Path("/tmp/qrs-nginx-test.lock")


def ensure_nginx() -> str | None:
    """The nginx binary, installing the distribution's package if it is missing (CI runs
    as root on a fresh machine); ``None`` if that is impossible."""
    return ensure_program(["nginx"], "nginx")


@contextlib.contextmanager
def machine_lock(timeout: float = 900.0) -> Iterator[None]:
    """Wait for any other nginx test on this machine to finish."""
    with open(LOCK_FILE, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another test holds {LOCK_FILE}") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def hosts_entries(names: list[str], address: str = "127.0.0.1") -> Iterator[None]:
    """Names resolving to ``address`` through /etc/hosts while the block runs; exactly the
    lines added are removed afterwards, whatever happened meanwhile."""
    marker = f"# qrs-test {os.getpid()} {uuid.uuid4().hex[:8]}"
    line = f"{address} {' '.join(names)} {marker}"
    original = HOSTS_FILE.read_text()
    HOSTS_FILE.write_text(original.rstrip("\n") + "\n" + line + "\n")
    try:
        yield
    finally:
        current = HOSTS_FILE.read_text().splitlines(keepends=True)
        HOSTS_FILE.write_text("".join(text for text in current if not text.rstrip().endswith(marker)))


def make_certificates(folder: Path, names: list[str]) -> dict[str, Path]:
    """A throw-away CA and a server certificate it signed, covering ``names``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "QRS test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
              .issuer_name(ca_name).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                             critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    paths["key"].chmod(0o600)
    return paths


MAIN_CONF = """\
user root;
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {site};
}}
"""


class NginxProcess:
    """nginx in the foreground (``daemon off``) with the shipped site included."""

    def __init__(self, binary: str, prefix: Path, site_text: str) -> None:
        self.binary, self.prefix = binary, prefix
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        site = prefix / "qrs-site.conf"
        site.write_text(site_text)
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(MAIN_CONF.format(prefix=prefix, site=site))
        self.proc: subprocess.Popen | None = None

    def check(self) -> subprocess.CompletedProcess:
        """``nginx -t`` on the configuration."""
        return subprocess.run([self.binary, "-t", "-c", str(self.conf), "-p", str(self.prefix)],
                              capture_output=True, text=True, timeout=60)

    def start(self, probe_url: str, verify: str, timeout: float = 60.0) -> "NginxProcess":
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf), "-p", str(self.prefix), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=open(self.prefix / "stderr.log", "ab"),
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self.log()}")
            try:
                if requests.get(probe_url, verify=verify, timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"nginx did not answer {probe_url} in {timeout} s: {self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # fast shutdown of the master and its workers
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()

    def log(self) -> str:
        parts = [(self.prefix / name) for name in ("stderr.log", "error.log")]
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in parts if p.exists())


def loopback_alias_works(address: str) -> bool:
    """Whether this machine can send from another loopback address (Linux routes
    127.0.0.0/8 to lo; some sandboxes do not)."""
    assert ipaddress.ip_address(address).is_loopback
    with socket.socket() as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True
