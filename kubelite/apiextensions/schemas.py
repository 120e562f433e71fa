"""A CRD version's openAPIV3Schema as a schema definition, plus defaulting and validation of objects.

Upstream's apiextensions-apiserver prunes unknown fields, applies `default`s and validates custom
resources against the structural schema (kube-openapi's validator); its messages are reproduced
here (`spec.replicas in body should be less than or equal to 10`). The definition form (that of
kubernetes-validate's `_definitions.json`) lets the generic decoder prune, the OpenAPI service
publish it for `kubectl explain`, and server-side apply read list types from it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from kubelite.api import errors as ferr
from kubelite.api import schema
from kubelite.api.errors import FieldError

Obj = dict[str, Any]
META = "io.k8s.apimachinery.pkg.apis.meta.v1."

_API_VERSION_DOC = ("APIVersion defines the versioned schema of this representation of an object. Servers should "
                    "convert recognized schemas to the latest internal value, and may reject unrecognized values. "
                    "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
                    "#resources")
_KIND_DOC = ("Kind is a string value representing the REST resource this object represents. Servers may infer "
             "this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
             "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")
_METADATA_DOC = ("Standard object's metadata. More info: "
                 "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")

# Keys of a JSONSchemaProps copied as they are into the definition
_COPIED = ("description", "type", "format", "enum", "default", "minimum", "maximum", "exclusiveMinimum",
           "exclusiveMaximum", "pattern", "minLength", "maxLength", "minItems", "maxItems", "uniqueItems",
           "minProperties", "maxProperties", "multipleOf", "nullable", "required", "title", "example",
           "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource",
           "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
           "x-kubernetes-validations")


def definition_name(group: str, version: str, kind: str) -> str:
    """Upstream's component name for a custom kind: reversed group, version, kind (com.example.stable.v1.CronTab)."""
    return ".".join([*reversed(group.split(".")), version, kind])


def _convert(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out: Obj = {k: copy.deepcopy(node[k]) for k in _COPIED if k in node}
    if isinstance(node.get("properties"), dict):
        out["properties"] = {k: _convert(v) for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = _convert(node["items"])
    ap = node.get("additionalProperties")
    if isinstance(ap, dict):
        out["additionalProperties"] = _convert(ap)
    elif isinstance(ap, bool):
        out["additionalProperties"] = ap
    for k in ("allOf", "anyOf", "oneOf"):
        if isinstance(node.get(k), list):
            out[k] = [_convert(v) for v in node[k]]
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        # as upstream's builder: an embedded object's metadata is an ObjectMeta, whatever the schema says of it
        props["metadata"] = {"$ref": schema.REF_PREFIX + META + "ObjectMeta"}
    if (out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["properties"] = {}  # a structural object without fields: everything in it is pruned
    return out


def definitions_for(group: str, version: str, kind: str, list_kind: str, open_api: Obj | None) -> dict[str, Obj]:
    """The object and list definitions of one served version of a CRD."""
    name = definition_name(group, version, kind)
    root = _convert(open_api or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    root["type"] = "object"
    props = root.setdefault("properties", {})
    props["apiVersion"] = {"description": _API_VERSION_DOC, "type": "string"}
    props["kind"] = {"description": _KIND_DOC, "type": "string"}
    props["metadata"] = {"$ref": schema.REF_PREFIX + META + "ObjectMeta", "description": _METADATA_DOC}
    root["properties"] = {k: props[k] for k in ("apiVersion", "kind", "metadata")} | {
        k: v for k, v in props.items() if k not in ("apiVersion", "kind", "metadata")}
    root["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": version}]
    listed = {
        "description": f"{list_kind} is a list of {kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": _API_VERSION_DOC, "type": "string"},
            "items": {"description": f"List of {kind.lower()}s. More info: "
                      "https://kubernetes.io/docs/reference/kubectl/overview/#list",
                      "type": "array", "items": {"$ref": schema.REF_PREFIX + name}},
            "kind": {"description": _KIND_DOC, "type": "string"},
            "metadata": {"$ref": schema.REF_PREFIX + META + "ListMeta", "description": _METADATA_DOC},
        },
        "x-kubernetes-group-version-kind": [{"group": group, "kind": list_kind, "version": version}],
    }
    return {name: root, definition_name(group, version, list_kind): listed}


# ---------------------------------------------------------------------------------------------
# Defaulting (structural defaulting: from the schema's `default`s, recursively)


def apply_defaults(sch: Obj | None, value: Any) -> Any:
    """Set missing fields that have a `default`, and drop nulls the schema does not allow (in place)."""
    if not isinstance(sch, dict):
        return value
    if isinstance(value, dict):
        props = sch.get("properties")
        if isinstance(props, dict):
            for k, sub in props.items():
                if not isinstance(sub, dict):
                    continue
                if k in value and value[k] is None and not sub.get("nullable"):
                    if "default" in sub:
                        value[k] = copy.deepcopy(sub["default"])
                    else:
                        del value[k]
                elif k not in value and "default" in sub:
                    value[k] = copy.deepcopy(sub["default"])
                if k in value:
                    apply_defaults(sub, value[k])
        ap = sch.get("additionalProperties")
        if isinstance(ap, dict):
            for k in list(value):
                apply_defaults(ap, value[k])
    elif isinstance(value, list) and isinstance(sch.get("items"), dict):
        for item in value:
            apply_defaults(sch["items"], item)
    return value


# ---------------------------------------------------------------------------------------------
# Validation (kube-openapi's validator, wording as upstream's CR validation reports it)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _type_ok(typ: str, value: Any) -> bool:
    got = _json_type(value)
    if typ == "number":
        return got in ("number", "integer")
    return got == typ


def _num(v: Any) -> str:
    """Go's %v of a float64 bound: 10, 0.5."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def validate(sch: Obj | None, value: Any, path: str = "") -> list[FieldError]:
    """Every schema violation of `value` as field errors, paths as upstream (`spec.replicas`)."""
    errs: list[FieldError] = []
    if isinstance(sch, dict):
        _validate(sch, value, path, errs)
    return errs


def _validate(sch: Obj, value: Any, path: str, errs: list[FieldError]) -> None:
    where = path or "<root>"
    if value is None:
        if sch.get("nullable") or not sch.get("type"):
            return
        errs.append(ferr.invalid(path, None, f'{where} in body must be of type {sch["type"]}: "null"'))
        return
    if sch.get("x-kubernetes-int-or-string"):
        if _json_type(value) not in ("integer", "string"):
            errs.append(ferr.invalid(path, _json_type(value), f'{where} in body must be of type integer,string: '
                                                              f'"{_json_type(value)}"'))
            return
    typ = sch.get("type")
    if typ and not _type_ok(typ, value):
        # upstream shows the offending JSON type as the value
        errs.append(ferr.invalid(path, _json_type(value), f'{where} in body must be of type {typ}: '
                                                          f'"{_json_type(value)}"'))
        return
    enum = sch.get("enum")
    if isinstance(enum, list) and value not in enum:
        errs.append(ferr.not_supported(path, value, [e if isinstance(e, str) else _num(e) for e in enum]))
    if _json_type(value) in ("integer", "number"):
        _validate_number(sch, value, path, where, errs)
    elif isinstance(value, str):
        _validate_string(sch, value, path, where, errs)
    elif isinstance(value, list):
        if isinstance(sch.get("maxItems"), int) and len(value) > sch["maxItems"]:
            errs.append(ferr.too_many(path, len(value), sch["maxItems"]))
        if isinstance(sch.get("minItems"), int) and len(value) < sch["minItems"]:
            errs.append(ferr.invalid(path, len(value), f"{where} in body should have at least {sch['minItems']} "
                                                       "items"))
        items = sch.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _validate(items, item, f"{path}[{i}]", errs)
    elif isinstance(value, dict):
        for req in sch.get("required") or []:
            if req not in value or value[req] is None:
                errs.append(ferr.required(f"{path}.{req}" if path else req, ""))
        props = sch.get("properties") or {}
        for k, v in value.items():
            sub = props.get(k)
            child = f"{path}.{k}" if path else k
            if isinstance(sub, dict):
                if not path and k == "metadata":
                    continue  # ObjectMeta is validated by the generic metadata checks
                _validate(sub, v, child, errs)
            elif isinstance(sch.get("additionalProperties"), dict):
                _validate(sch["additionalProperties"], v, child, errs)


def _validate_number(sch: Obj, value: Any, path: str, where: str, errs: list[FieldError]) -> None:
    hi, lo = sch.get("maximum"), sch.get("minimum")
    if isinstance(hi, int | float):
        if sch.get("exclusiveMaximum") and value >= hi:
            errs.append(ferr.invalid(path, value, f"{where} in body should be less than {_num(hi)}"))
        elif value > hi:
            errs.append(ferr.invalid(path, value, f"{where} in body should be less than or equal to {_num(hi)}"))
    if isinstance(lo, int | float):
        if sch.get("exclusiveMinimum") and value <= lo:
            errs.append(ferr.invalid(path, value, f"{where} in body should be greater than {_num(lo)}"))
        elif value < lo:
            errs.append(ferr.invalid(path, value, f"{where} in body should be greater than or equal to {_num(lo)}"))
    mult = sch.get("multipleOf")
    if isinstance(mult, int | float) and mult and (value / mult) != int(value / mult):
        errs.append(ferr.invalid(path, value, f"{where} in body should be a multiple of {_num(mult)}"))


def _validate_string(sch: Obj, value: str, path: str, where: str, errs: list[FieldError]) -> None:
    if isinstance(sch.get("maxLength"), int) and len(value) > sch["maxLength"]:
        errs.append(ferr.too_long(path, value, sch["maxLength"]))
    if isinstance(sch.get("minLength"), int) and len(value) < sch["minLength"]:
        errs.append(ferr.invalid(path, value, f"{where} in body should be at least {sch['minLength']} chars long"))
    pattern = sch.get("pattern")
    if isinstance(pattern, str):
        try:
            ok = re.search(pattern, value) is not None
        except re.error:
            ok = True  # a pattern Python cannot compile is not held against the object
        if not ok:
            errs.append(ferr.invalid(path, value, f"{where} in body should match '{pattern}'"))
