"""The cluster's certificates: one CA, the API server's serving certificate and the admin client certificate.

Mirrors what kubeadm/k3s put in /etc/kubernetes/pki: a self-signed CA (10 years), leaf certificates
(1 year) signed by it, renewed when they come within 90 days of expiry (as k3s does on start). Made
once in `tls_dir` and reused on restart; the serving certificate is reissued when its SANs change.
`cryptography` is imported only when something has to be (re)issued: a restart with valid
certificates checks a small `pki.json` index instead, which keeps start-up fast.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import ipaddress
import json
import os
import socket
import ssl
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubelite.apiserver.config import ServerConfig

CA_CN = "kubelite-ca"
CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE_DAYS = 90
SERVER_CN = "kube-apiserver"
ADMIN_CN = "admin"
ADMIN_GROUPS = ("system:masters",)
DEFAULT_SERVICE_CIDR = "10.43.0.0/16"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"


@dataclass(frozen=True)
class PKI:
    """Where the cluster's certificates live; `sans` are the serving certificate's names."""

    tls_dir: str
    sans: tuple[str, ...] = ()

    def path(self, name: str) -> str:
        return os.path.join(self.tls_dir, name)

    @property
    def ca_cert(self) -> str:
        return self.path("ca.crt")

    @property
    def ca_key(self) -> str:
        return self.path("ca.key")

    @property
    def server_cert(self) -> str:
        return self.path("server.crt")

    @property
    def server_key(self) -> str:
        return self.path("server.key")

    @property
    def admin_cert(self) -> str:
        return self.path("admin.crt")

    @property
    def admin_key(self) -> str:
        return self.path("admin.key")

    def read(self, name: str) -> bytes:
        with open(self.path(name), "rb") as f:
            return f.read()


def default_sans(extra: list[str] | tuple[str, ...] = (), *, service_cidr: str = DEFAULT_SERVICE_CIDR,
                 cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> list[str]:
    """The names kube-apiserver's serving certificate carries, plus `extra` (deduplicated, in order)."""
    service_ip = str(next(ipaddress.ip_network(service_cidr, strict=False).hosts()))
    names = [
        "localhost", "127.0.0.1", "::1", socket.gethostname().lower(), service_ip,
        "kubernetes", "kubernetes.default", "kubernetes.default.svc",
        f"kubernetes.default.svc.{cluster_domain}", *extra,
    ]
    out: list[str] = []
    for n in names:
        n = _normalize_san(n)
        if n and n not in out:
            out.append(n)
    return out


def ensure_pki(tls_dir: str, sans: list[str], *, service_cidr: str = DEFAULT_SERVICE_CIDR,
               cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> PKI:
    """Create the CA, serving and admin certificates in `tls_dir` if missing, stale or (serving) renamed.

    `sans` are added to the standard names (see `default_sans`). Safe to call on every start.
    """
    os.makedirs(tls_dir, mode=0o700, exist_ok=True)
    pki = PKI(tls_dir, tuple(default_sans(sans, service_cidr=service_cidr, cluster_domain=cluster_domain)))
    with _locked(os.path.join(tls_dir, ".lock")):
        if not _index_current(pki):
            _ensure_slow(pki)
    return pki


def ensure_cluster_pki(config: ServerConfig) -> PKI:
    """`ensure_pki` for a control plane: its --tls-san names, its bind address (or, bound to all
    addresses, the host's primary IP, which is what kubelets on other hosts dial), its service CIDR."""
    extra = list(config.tls_sans)
    bind = _normalize_san(config.bind)
    pod_facing = pod_facing_address(config)
    if pod_facing:
        extra.append(pod_facing)
    if bind in ("0.0.0.0", "::", ""):
        ip = primary_ip()
        if ip:
            extra.append(ip)
    else:
        extra.append(bind)
    return ensure_pki(config.tls_dir, extra, service_cidr=config.service_cidr,
                      cluster_domain=config.cluster_domain)


def pod_facing_address(config: ServerConfig) -> str | None:
    """With a real node and a loopback-only API server, the node address the server also listens on,
    so that pods reach it through the `kubernetes` service (as kube-apiserver's advertise address)."""
    if not config.kubelet or not _normalize_san(config.bind).startswith("127."):
        return None
    return config.node_ip or primary_ip()


def primary_ip() -> str | None:
    """The source address of the default route (a UDP connect sends no packet)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.254.254.254", 1))
        return s.getsockname()[0]
    return None


def issue_client_cert(pki: PKI, cn: str, groups: list[str] | tuple[str, ...]) -> tuple[bytes, bytes]:
    """A client certificate for user `cn` in `groups` (subject O), signed by the cluster CA: (cert_pem, key_pem).

    This is how kubelets (`system:node:<name>` in `system:nodes`) and other components authenticate.
    """
    ca_cert, ca_key = _load_ca(pki)
    return _issue(ca_cert, ca_key, cn, list(groups), client=True)


def issue_serving_cert(pki: PKI, cn: str, sans: list[str]) -> tuple[bytes, bytes]:
    """A serving certificate for `sans` signed by the cluster CA (for kubelet or webhook servers)."""
    ca_cert, ca_key = _load_ca(pki)
    return _issue(ca_cert, ca_key, cn, [], sans=sans, client=False)


def ssl_server_context(pki: PKI) -> ssl.SSLContext:
    """TLS for the API server: serves server.crt and asks for, but does not require, a client certificate
    signed by the cluster CA, so bearer-token clients connect too (upstream's RequestClientCert)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.load_verify_locations(cafile=pki.ca_cert)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def ssl_client_context(pki: PKI, *, client_cert: bool = True) -> ssl.SSLContext:
    """TLS for clients of the API server: trusts only the cluster CA, presents the admin certificate."""
    ctx = ssl.create_default_context(cafile=pki.ca_cert)
    if client_cert:
        ctx.load_cert_chain(pki.admin_cert, pki.admin_key)
    return ctx


# ---- fast path: the index written after the last successful check -------------------------------

def _index_path(pki: PKI) -> str:
    return pki.path("pki.json")


def _index_current(pki: PKI) -> bool:
    names = ("ca.crt", "ca.key", "server.crt", "server.key", "admin.crt", "admin.key")
    try:
        with open(_index_path(pki), "rb") as f:
            index = json.load(f)
        digests = {n: hashlib.sha256(pki.read(n)).hexdigest() for n in names}
    except (OSError, ValueError):
        return False
    renew_at = dt.datetime.now(dt.UTC).timestamp() + RENEW_BEFORE_DAYS * 86400
    return (
        index.get("digests") == digests
        and index.get("server_sans") == list(pki.sans)
        and all(index.get("not_after", {}).get(n, 0) > renew_at for n in ("server.crt", "admin.crt"))
        and index.get("not_after", {}).get("ca.crt", 0) > dt.datetime.now(dt.UTC).timestamp()
    )


# ---- slow path: parse, verify and (re)issue with `cryptography` ---------------------------------

def _ensure_slow(pki: PKI) -> None:
    from cryptography import x509

    now = dt.datetime.now(dt.UTC)
    renew_at = now + dt.timedelta(days=RENEW_BEFORE_DAYS)
    ca = _try_load(pki, "ca.crt", "ca.key")
    if ca is None or ca[0].not_valid_after_utc <= now or not _is_ca(ca[0]):
        ca_pem, ca_key_pem = _new_ca()
        _write(pki.ca_key, ca_key_pem, 0o600)
        _write(pki.ca_cert, ca_pem, 0o644)
        ca = _try_load(pki, "ca.crt", "ca.key")
        assert ca is not None
    ca_cert, ca_key = ca

    def usable(cert: x509.Certificate) -> bool:
        try:
            cert.verify_directly_issued_by(ca_cert)
        except Exception:
            return False
        return cert.not_valid_after_utc > renew_at

    server = _try_load(pki, "server.crt", "server.key")
    if server is None or not usable(server[0]) or _cert_sans(server[0]) != list(pki.sans):
        cert_pem, key_pem = _issue(ca_cert, ca_key, SERVER_CN, [], sans=list(pki.sans), client=False)
        _write(pki.server_key, key_pem, 0o600)
        _write(pki.server_cert, cert_pem, 0o644)
        server = _try_load(pki, "server.crt", "server.key")

    admin = _try_load(pki, "admin.crt", "admin.key")
    if admin is None or not usable(admin[0]) or _subject(admin[0]) != (ADMIN_CN, list(ADMIN_GROUPS)):
        cert_pem, key_pem = _issue(ca_cert, ca_key, ADMIN_CN, list(ADMIN_GROUPS), client=True)
        _write(pki.admin_key, key_pem, 0o600)
        _write(pki.admin_cert, cert_pem, 0o644)
        admin = _try_load(pki, "admin.crt", "admin.key")

    assert server is not None and admin is not None
    names = ("ca.crt", "ca.key", "server.crt", "server.key", "admin.crt", "admin.key")
    index = {
        "digests": {n: hashlib.sha256(pki.read(n)).hexdigest() for n in names},
        "server_sans": list(pki.sans),
        "not_after": {
            "ca.crt": ca_cert.not_valid_after_utc.timestamp(),
            "server.crt": server[0].not_valid_after_utc.timestamp(),
            "admin.crt": admin[0].not_valid_after_utc.timestamp(),
        },
    }
    _write(_index_path(pki), json.dumps(index, indent=1).encode(), 0o644)


def _try_load(pki: PKI, cert_name: str, key_name: str):
    """(certificate, private key) if both files parse and belong together, else None."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(pki.read(cert_name))
        key = serialization.load_pem_private_key(pki.read(key_name), password=None)
    except (OSError, ValueError, TypeError):
        return None
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if cert.public_key().public_bytes(enc, pub) != key.public_key().public_bytes(enc, pub):
        return None
    return cert, key


def _load_ca(pki: PKI):
    ca = _try_load(pki, "ca.crt", "ca.key")
    if ca is None:
        raise FileNotFoundError(f"no usable cluster CA in {pki.tls_dir}")
    return ca


def _is_ca(cert) -> bool:
    from cryptography import x509

    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _subject(cert) -> tuple[str, list[str]]:
    from cryptography.x509.oid import NameOID

    cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return (cn[0] if cn else ""), orgs


def _cert_sans(cert) -> list[str]:
    """SANs in the order `default_sans` produces them (we issue them in that order)."""
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [_normalize_san(str(n.value)) for n in ext]


def _normalize_san(name: str) -> str:
    name = name.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _new_ca() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_CN)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _issue(ca_cert, ca_key, cn: str, groups: list[str], *, sans: list[str] | None = None,
           client: bool) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs)).issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=LEAF_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        general: list[x509.GeneralName] = []
        for s in sans:
            try:
                general.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                general.append(x509.DNSName(s))
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _write(path: str, data: bytes, mode: int) -> None:
    """Atomically replace `path` (a crash leaves the old file or the new one, never half of one)."""
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(path: str):
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
