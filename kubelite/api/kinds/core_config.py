"""core/v1 ConfigMap, Secret and ServiceAccount.

Secrets arrive with base64 `data` and plain `stringData`; upstream decodes data while reading the
request (a bad value is a 400 BadRequest, not a field error) and folds stringData into data during
conversion, so stored and returned Secrets never carry stringData.
"""

from __future__ import annotations

import base64

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.registry import Column, Resource
from kubelite.api.schema import definition_for_kind

MAX_SECRET_SIZE = 1 * 1024 * 1024
IMMUTABLE_MSG = "field is immutable when `immutable` is set"


def _data_size(values: dict, decode: bool) -> int:
    total = 0
    for v in values.values():
        if not isinstance(v, str):
            continue
        if decode:
            try:
                total += len(base64.b64decode(v))
            except ValueError:
                total += len(v)
        else:
            total += len(v.encode())
    return total


# ---------------------------------------------------------------------------------------------
# ConfigMap


def validate_config_map(obj: dict) -> list[FieldError]:
    """ValidateConfigMap: keys, no key in both data and binaryData, total size at most 1 MiB."""
    errs: list[FieldError] = []
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    for key in sorted(data):
        errs += [ferr.invalid(f"data[{key}]", key, m) for m in common.config_map_key(key)]
        if key in binary:
            errs.append(ferr.invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    for key in sorted(binary):
        errs += [ferr.invalid(f"binaryData[{key}]", key, m) for m in common.config_map_key(key)]
    if _data_size(data, False) + _data_size(binary, True) > MAX_SECRET_SIZE:
        errs.append(ferr.too_long("", "", MAX_SECRET_SIZE))
    return errs


def validate_config_map_update(new: dict, old: dict) -> list[FieldError]:
    errs = common.validate_object_meta_update(new, old)
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(ferr.forbidden("immutable", IMMUTABLE_MSG))
        if (new.get("data") or {}) != (old.get("data") or {}):
            errs.append(ferr.forbidden("data", IMMUTABLE_MSG))
        if (new.get("binaryData") or {}) != (old.get("binaryData") or {}):
            errs.append(ferr.forbidden("binaryData", IMMUTABLE_MSG))
    return errs + validate_config_map(new)


def config_map_resource() -> Resource:
    return Resource(
        group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True, short_names=("cm",),
        definition=definition_for_kind("", "v1", "ConfigMap") or "",
        columns=(Column("Data", "string", description=common.column_doc("io.k8s.api.core.v1.ConfigMap", "data")),
                 common.age_column()),
        row=lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {}), common.creation_age(o)],
        validate=validate_config_map, validate_update=validate_config_map_update,
    )


# ---------------------------------------------------------------------------------------------
# Secret

_B64 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def base64_error(value: str) -> str | None:
    """Go's base64.StdEncoding error for a value ("illegal base64 data at input byte N"), or None."""
    chars = [c for c in value if c not in "\r\n"]
    n = len(chars)
    i = 0
    while i < n:
        quantum = chars[i:i + 4]
        for j, c in enumerate(quantum):
            if c == "=":
                # padding may only close the final quantum, at positions 2 or 3
                if j < 2 or i + 4 != n or (j == 2 and quantum[3:] != ["="]):
                    return f"illegal base64 data at input byte {i + j}"
                break
            if c not in _B64:
                return f"illegal base64 data at input byte {i + j}"
        if len(quantum) < 4:
            return f"illegal base64 data at input byte {i}"
        i += 4
    return None


def default_secret(obj: dict) -> None:
    """Decode-time checks and conversion: data must be base64; stringData is merged into data and dropped."""
    data = obj.get("data")
    if isinstance(data, dict):
        for v in data.values():
            err = base64_error(v) if isinstance(v, str) else None
            if err:
                raise ferr.new_bad_request(f'Secret in version "v1" cannot be handled as a Secret: {err}')
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj["data"] = data
    if not obj.get("type"):
        obj["type"] = "Opaque"


def _decoded(data: dict, key: str) -> bytes | None:
    v = data.get(key)
    if not isinstance(v, str):
        return None
    try:
        return base64.b64decode(v)
    except ValueError:
        return None


def validate_secret(obj: dict) -> list[FieldError]:
    """ValidateSecret: keys, total size, and the per-type required keys."""
    import json

    errs: list[FieldError] = []
    data = obj.get("data") or {}
    for key in sorted(data):
        errs += [ferr.invalid(f"data[{key}]", key, m) for m in common.config_map_key(key)]
    if _data_size(data, True) > MAX_SECRET_SIZE:
        errs.append(ferr.too_long("data", "", MAX_SECRET_SIZE))
    stype = obj.get("type") or ""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if stype == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            errs.append(ferr.required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if stype == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            errs.append(ferr.required(f"data[{key}]"))
        else:
            raw = _decoded(data, key) or b""
            try:
                if not isinstance(json.loads(raw or b"null"), dict):
                    raise ValueError("json: cannot unmarshal into Go value of type map[string]interface {}")
            except ValueError as e:
                errs.append(ferr.invalid(f"data[{key}]", "<secret contents redacted>", str(e)))
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs.append(ferr.required("data[username]"))
            errs.append(ferr.required("data[password]"))
    elif stype == "kubernetes.io/ssh-auth":
        if not _decoded(data, "ssh-privatekey"):
            errs.append(ferr.required("data[ssh-privatekey]"))
    elif stype == "kubernetes.io/tls":
        if "tls.crt" not in data:
            errs.append(ferr.required("data[tls.crt]"))
        if "tls.key" not in data:
            errs.append(ferr.required("data[tls.key]"))
    return errs


def validate_secret_update(new: dict, old: dict) -> list[FieldError]:
    errs = common.validate_object_meta_update(new, old)
    if (new.get("type") or "") != (old.get("type") or ""):
        errs.append(ferr.invalid("type", new.get("type") or "", "field is immutable"))
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(ferr.forbidden("immutable", IMMUTABLE_MSG))
        if (new.get("data") or {}) != (old.get("data") or {}):
            errs.append(ferr.forbidden("data", IMMUTABLE_MSG))
    return errs + validate_secret(new)


def secret_resource() -> Resource:
    d = "io.k8s.api.core.v1.Secret"
    return Resource(
        group="", version="v1", kind="Secret", plural="secrets", namespaced=True,
        definition=definition_for_kind("", "v1", "Secret") or "",
        columns=(Column("Type", "string", description=common.column_doc(d, "type")),
                 Column("Data", "string", description=common.column_doc(d, "data")),
                 common.age_column()),
        row=lambda o: [o.get("type") or "", len(o.get("data") or {}), common.creation_age(o)],
        default=default_secret, validate=validate_secret, validate_update=validate_secret_update,
    )


# ---------------------------------------------------------------------------------------------
# ServiceAccount


def validate_service_account(obj: dict) -> list[FieldError]:
    return []


def service_account_resource() -> Resource:
    return Resource(
        group="", version="v1", kind="ServiceAccount", plural="serviceaccounts", namespaced=True,
        short_names=("sa",),
        subresources=("token",),
        definition=definition_for_kind("", "v1", "ServiceAccount") or "",
        columns=(Column("Secrets", "string", description=common.column_doc("io.k8s.api.core.v1.ServiceAccount", "secrets")),
                 common.age_column()),
        row=lambda o: [len(o.get("secrets") or []), common.creation_age(o)],
        validate=validate_service_account,
        validate_update=lambda new, old: common.validate_object_meta_update(new, old) + validate_service_account(new),
    )


def resources() -> list[Resource]:
    return [config_map_resource(), secret_resource(), service_account_resource()]
