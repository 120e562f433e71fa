"""Registry credentials from a pod's imagePullSecrets, matched to an image as upstream's keyring does.

Upstream (pkg/credentialprovider) reads `kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg`
Secrets, indexes each entry by host[/path] (scheme and a `/v1/` or `/v2/` suffix dropped), and for
an image returns every entry whose host matches (same port, `*` globs per host label) and whose path
is a prefix of the image's repository, most specific first; Docker Hub entries also serve short
names. The kubelet then tries each in turn in CRI's PullImageRequest.auth, or pulls anonymously.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

DOCKER_CONFIG_JSON = ("kubernetes.io/dockerconfigjson", ".dockerconfigjson")
DOCKER_CFG = ("kubernetes.io/dockercfg", ".dockercfg")
DEFAULT_DOMAIN = "docker.io"
DEFAULT_REGISTRY_HOST = "index.docker.io"


@dataclass(frozen=True)
class AuthConfig:
    username: str = ""
    password: str = ""


def normalize_repository(image: str) -> str:
    """The image's repository as docker's ParseNormalizedNamed gives it, without tag or digest:
    `busybox:1` -> `docker.io/library/busybox`, `127.0.0.1:5000/bb:1` -> `127.0.0.1:5000/bb`."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost") or first.lower() != first:
        domain, path = DEFAULT_DOMAIN, name
        if "/" not in path:
            path = "library/" + path
        return f"{domain}/{path}"
    return name


def _split_host(host: str) -> tuple[list[str], str]:
    if host.startswith("["):  # [v6]:port
        end = host.find("]")
        return [host[: end + 1]], host[end + 2:] if host[end + 1: end + 2] == ":" else ""
    if host.count(":") == 1:
        h, port = host.split(":")
        return h.split("."), port
    return host.split("."), ""


def _schemeless(url: str) -> tuple[str, str]:
    parts = urlsplit("https://" + url)
    return parts.netloc, parts.path


def urls_match(glob: str, target: str) -> bool:
    """Upstream's URLsMatch: equal ports, as many host labels, each label glob-matched, path prefix."""
    ghost, gpath = _schemeless(glob)
    thost, tpath = _schemeless(target)
    glabels, gport = _split_host(ghost)
    tlabels, tport = _split_host(thost)
    if gport != tport or len(glabels) != len(tlabels) or not tpath.startswith(gpath):
        return False
    return all(fnmatch.fnmatchcase(t, g) for g, t in zip(glabels, tlabels, strict=True))


def _entry_auth(entry: dict) -> AuthConfig:
    user, password = entry.get("username") or "", entry.get("password") or ""
    encoded = entry.get("auth") or ""
    if encoded:  # `auth` (base64 user:password) wins, as upstream's DockerConfigEntry.UnmarshalJSON
        try:
            decoded = base64.b64decode(encoded).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        if ":" in decoded:
            user, password = decoded.split(":", 1)
    return AuthConfig(user, password)


class DockerKeyring:
    """Credentials indexed by registry location, looked up by image."""

    def __init__(self) -> None:
        self._creds: dict[str, list[AuthConfig]] = {}

    def add(self, config: dict) -> None:
        """One docker config: {"registry[/path]": {"username", "password", "auth", ...}}."""
        for loc, entry in config.items():
            if not isinstance(entry, dict):
                continue
            value = loc if loc.startswith(("http://", "https://")) else "https://" + loc
            parts = urlsplit(value)
            path = parts.path
            if path.startswith(("/v1/", "/v2/")):
                path = path[3:]
            key = parts.netloc + path if path and path != "/" else parts.netloc
            self._creds.setdefault(key, []).append(_entry_auth(entry))

    def lookup(self, image: str) -> list[AuthConfig]:
        repo = normalize_repository(image)
        out: list[AuthConfig] = []
        for key in sorted(self._creds, reverse=True):  # more specific paths first
            if urls_match(key, repo):
                out.extend(self._creds[key])
        if not out and repo.startswith(DEFAULT_DOMAIN + "/"):
            out.extend(self._creds.get(DEFAULT_REGISTRY_HOST, []))
        return out


def keyring_from_secrets(secrets: list[dict]) -> DockerKeyring:
    """A keyring from pull Secrets of the two docker types (others are ignored, as upstream)."""
    ring = DockerKeyring()
    for secret in secrets:
        data = secret.get("data") or {}
        for secret_type, key in (DOCKER_CONFIG_JSON, DOCKER_CFG):
            if secret.get("type") != secret_type or not data.get(key):
                continue
            try:
                config = json.loads(base64.b64decode(data[key]))
            except (ValueError, binascii.Error):
                continue
            if secret_type == DOCKER_CONFIG_JSON[0]:
                config = (config.get("auths") or {}) if isinstance(config, dict) else {}
            if isinstance(config, dict):
                ring.add(config)
    return ring
