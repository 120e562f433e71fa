"""ServiceAccount tokens: the signing key, JWT encoding and the claims upstream puts in them.

Upstream signs with the key given by --service-account-signing-key-file; kubelite keeps one ES256 key in
the data dir's tls dir (`sa.key`), made on first use with `cryptography` and shared by the API server
(TokenRequest, authentication) and the controller manager (legacy Secret tokens). `cryptography` is
imported only when a token is signed or checked, which keeps start-up fast.

Two token shapes, as upstream's pkg/serviceaccount/claims.go and legacy.go:
- bound tokens (TokenRequest): issuer https://kubernetes.default.svc.cluster.local, audiences, expiry,
  a `kubernetes.io` claim naming the namespace, the ServiceAccount and an optional bound Pod/Secret/Node;
- legacy tokens (Secrets of type kubernetes.io/service-account-token): issuer
  `kubernetes/serviceaccount`, no expiry, the Secret's name in the claims.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from typing import Any

import orjson

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
KEY_FILE = "sa.key"
SA_USER_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"

Obj = dict[str, Any]


class InvalidToken(Exception):
    """A token that is not ours or cannot be trusted; the message is upstream's wording where it has one."""


def make_username(namespace: str, name: str) -> str:
    return f"{SA_USER_PREFIX}{namespace}:{name}"


def split_username(username: str) -> tuple[str, str] | None:
    """`system:serviceaccount:ns:name` -> (ns, name), or None for other users."""
    if not username.startswith(SA_USER_PREFIX):
        return None
    parts = username[len(SA_USER_PREFIX):].split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def group_names(namespace: str) -> tuple[str, str]:
    return SA_GROUP, f"{SA_GROUP}:{namespace}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class SigningKey:
    """The ES256 key pair in `<tls_dir>/sa.key`, loaded (or made) on first use."""

    def __init__(self, tls_dir: str):
        self.path = os.path.join(tls_dir, KEY_FILE)
        self._key: Any = None
        self._kid = ""
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._key is not None:
            return self._key
        with self._lock:
            if self._key is None:
                from cryptography.hazmat.primitives import serialization
                from cryptography.hazmat.primitives.asymmetric import ec

                from kubelite.apiserver.pki import _key_pem, _locked, _write

                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                with _locked(self.path + ".lock"):
                    if not os.path.exists(self.path):
                        _write(self.path, _key_pem(ec.generate_private_key(ec.SECP256R1())), 0o600)
                    with open(self.path, "rb") as f:
                        key = serialization.load_pem_private_key(f.read(), None)
                der = key.public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
                # upstream's key id: base64url(sha256(DER public key))
                self._kid = _b64(hashlib.sha256(der).digest())
                self._key = key
        return self._key

    def ensure(self) -> None:
        """Make the key file now (the API server does at start, so that every component shares it)."""
        self._load()

    @property
    def kid(self) -> str:
        self._load()
        return self._kid

    def jwks(self) -> Obj:
        """The public key as a JWK set (what /openid/v1/jwks serves upstream)."""
        pub = self._load().public_key().public_numbers()
        return {"keys": [{"use": "sig", "kty": "EC", "kid": self._kid, "crv": "P-256", "alg": "ES256",
                          "x": _b64(pub.x.to_bytes(32, "big")), "y": _b64(pub.y.to_bytes(32, "big"))}]}

    def sign(self, claims: Obj) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        key = self._load()
        header = _b64(orjson.dumps({"alg": "ES256", "kid": self._kid}))
        payload = _b64(orjson.dumps(claims))
        signing_input = f"{header}.{payload}".encode()
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return f"{header}.{payload}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def verify(self, token: str) -> Obj:
        """The claims of a token signed by this key; InvalidToken otherwise."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("not a JWT")
        try:
            header = orjson.loads(_unb64(parts[0]))
            claims = orjson.loads(_unb64(parts[1]))
            sig = _unb64(parts[2])
        except (ValueError, orjson.JSONDecodeError) as e:
            raise InvalidToken("malformed JWT") from e
        if not isinstance(header, dict) or header.get("alg") != "ES256" or len(sig) != 64 \
                or not isinstance(claims, dict):
            raise InvalidToken("not signed by this issuer")
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        try:
            self._load().public_key().verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as e:
            raise InvalidToken("invalid signature") from e
        return claims


def bound_claims(issuer: str, audiences: list[str], namespace: str, sa: Obj, now: int, expiration_seconds: int,
                 jti: str, pod: Obj | None = None, secret: Obj | None = None, node: Obj | None = None) -> Obj:
    """Upstream's serviceaccount.Claims for a TokenRequest (private claims under `kubernetes.io`)."""
    private: Obj = {"namespace": namespace,
                    "serviceaccount": {"name": sa["metadata"]["name"], "uid": sa["metadata"].get("uid", "")}}
    for key, obj in (("pod", pod), ("secret", secret), ("node", node)):
        if obj is not None:
            private[key] = {"name": obj["metadata"]["name"], "uid": obj["metadata"].get("uid", "")}
    return {"aud": audiences, "exp": now + expiration_seconds, "iat": now, "iss": issuer, "jti": jti,
            "kubernetes.io": private, "nbf": now, "sub": make_username(namespace, sa["metadata"]["name"])}


def legacy_claims(sa: Obj, secret_name: str) -> Obj:
    """Upstream's LegacyClaims for a kubernetes.io/service-account-token Secret."""
    m = sa["metadata"]
    return {"iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": m["namespace"],
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": m["name"],
            "kubernetes.io/serviceaccount/service-account.uid": m.get("uid", ""),
            "sub": make_username(m["namespace"], m["name"])}


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")
