"""Reading a kubeconfig (and in-cluster service-account config) into an HTTPTransport.

Follows client-go's clientcmd for what matters to kubelite components: $KUBECONFIG or
~/.kube/config, the current or a named context, CA verification, client certificates or bearer
tokens, inline `*-data` fields and `insecure-skip-tls-verify`.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile

import yaml

from kubelite.client.transport import HTTPTransport

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class ConfigError(Exception):
    """A kubeconfig that cannot be used; worded as clientcmd words it where it matters."""


def default_kubeconfig_path() -> str:
    env = os.environ.get("KUBECONFIG", "")
    for p in env.split(os.pathsep):
        if p and os.path.exists(p):
            return p
    return os.path.join(os.path.expanduser("~"), ".kube", "config")


def _named(entries: list | None, name: str, what: str) -> dict:
    for e in entries or []:
        if e.get("name") == name:
            return e.get(what) or {}
    raise ConfigError(f'{what} "{name}" not found in kubeconfig') if name else ConfigError(
        "invalid configuration: no configuration has been provided")


def _resolve(base_dir: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(base_dir, path)


def _ssl_context(cluster: dict, user: dict, base_dir: str) -> ssl.SSLContext | bool:
    if not cluster.get("server", "").startswith("https"):
        return False
    if cluster.get("insecure-skip-tls-verify"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        ctx = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        ctx = ssl.create_default_context(cafile=_resolve(base_dir, cluster["certificate-authority"]))
    else:
        ctx = ssl.create_default_context()
    cert, key = user.get("client-certificate"), user.get("client-key")
    cert_data, key_data = user.get("client-certificate-data"), user.get("client-key-data")
    if cert_data and key_data:
        load_cert_chain_from_data(ctx, base64.b64decode(cert_data), base64.b64decode(key_data))
    elif cert and key:
        ctx.load_cert_chain(_resolve(base_dir, cert), _resolve(base_dir, key))
    return ctx


def load_cert_chain_from_data(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """ssl only loads chains from files: write them to a private temp dir and remove it at once."""
    with tempfile.TemporaryDirectory(prefix="kubelite-client-") as d:
        cp, kp = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        for path, data in ((cp, cert_pem), (kp, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cp, kp)


def transport_from_kubeconfig(path: str | None = None, context: str | None = None) -> HTTPTransport:
    path = path or default_kubeconfig_path()
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f) or {}
    except OSError as e:
        raise ConfigError(f"cannot read kubeconfig {path}: {e.strerror}") from e
    ctx_name = context or cfg.get("current-context") or ""
    if not ctx_name:
        raise ConfigError("invalid configuration: no configuration has been provided, "
                          "try setting KUBERNETES_MASTER environment variable")
    ctx = _named(cfg.get("contexts"), ctx_name, "context")
    cluster = _named(cfg.get("clusters"), ctx.get("cluster", ""), "cluster")
    user = _named(cfg.get("users"), ctx["user"], "user") if ctx.get("user") else {}
    server = cluster.get("server")
    if not server:
        raise ConfigError("invalid configuration: no server found for cluster " + repr(ctx.get("cluster")))
    base_dir = os.path.dirname(os.path.abspath(path))
    token_file = _resolve(base_dir, user["tokenFile"]) if user.get("tokenFile") else None
    basic = (user["username"], user.get("password", "")) if user.get("username") else None
    return HTTPTransport(server, ssl_context=_ssl_context(cluster, user, base_dir), token=user.get("token"),
                         token_file=token_file, basic_auth=basic)


def transport_in_cluster() -> HTTPTransport:
    """rest.InClusterConfig: KUBERNETES_SERVICE_HOST/PORT plus the mounted service-account token and CA."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                          "KUBERNETES_SERVICE_PORT must be defined")
    if ":" in host:
        host = f"[{host}]"
    ctx = ssl.create_default_context(cafile=os.path.join(SERVICE_ACCOUNT_DIR, "ca.crt"))
    return HTTPTransport(f"https://{host}:{port}", ssl_context=ctx,
                         token_file=os.path.join(SERVICE_ACCOUNT_DIR, "token"))
