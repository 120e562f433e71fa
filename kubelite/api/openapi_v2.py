"""The served OpenAPI v2 document (/openapi/v2): swagger 2.0 as JSON or as gnostic's protobuf `Document`.

kubectl 1.32 reads v2 in one place: client-side validation of objects whose kind has no PATCH
operation listing `fieldValidation` in v3 (the `kind: List` that `kubectl get -o yaml` prints). It then
GETs /openapi/v2 as `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, finds no PATCH for
v1/List there either, and validates each item against the definition carrying the item's
`x-kubernetes-group-version-kind`. A 404 fails the whole command ("error validating data").

The document is upstream's shape: paths for every served resource (derived from the v3 builder's
operations), `definitions` for every type reachable from them in swagger 2.0 form (single `type`,
`$ref: #/definitions/...` with siblings, IntOrString as `type: string, format: int-or-string`) and
the BearerToken security definition. The protobuf encoding is written here by hand: a small
wire-format writer and one function per gnostic openapi_v2 message used (field numbers from
gnostic's OpenAPIv2.proto). Vendor extensions travel as `NamedAny` whose `Any.yaml` holds the YAML of
the value, as gnostic's compiler produces them.

The document is big (about 1.3 MB as protobuf, 1.7 MB as JSON, 150 KB gzipped), so it is built once,
lazily, off the event loop, and cached as bytes per representation (JSON, protobuf, and their gzip
forms). As upstream, the ETag is the SHA-512 of the JSON (the same for every representation) and
answers If-None-Match with 304; responses are gzipped when the client accepts it (Go's HTTP client
always does).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import struct
import threading
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any

import orjson
import yaml
from aiohttp import web

from kubelite.api import schema
from kubelite.api.openapi import (
    _SPECIAL_DEFS,
    DELETE_OPTIONS_DEF,
    PATCH_DEF,
    SCHEMAS_PREFIX,
    STATUS_DEF,
    WATCH_EVENT_DEF,
    definition_of,
    reachable_definitions,
    resource_paths,
    without_empty_properties,
)
from kubelite.api.registry import Registry, Resource

DEFS_PREFIX = "#/definitions/"
JSON_TYPE = "application/json"
# What upstream answers with for protobuf, whichever of the two spellings was asked for: the "@"
# spelling (the one kubectl 1.32 sends, deprecated upstream) is not a valid media type for Go's
# mime.ParseMediaType, and client-go fails with "mime: unexpected content after media subtype" on it.
PROTO_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
PROTO_TYPE_AT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
# Same as /version's gitVersion.
INFO_VERSION = "v1.32.0+kubelite"
# Upstream's handler (gziphandler) compresses responses from this size on when the client accepts gzip.
GZIP_MIN_BYTES = 1400

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")  # PathItem fields 2..8
_Dumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# ---------------------------------------------------------------------------------------------
# Swagger 2.0 form of the definitions


def convert_schema_v2(node: Any, prop_name: str = "") -> Any:
    """One kubernetes-validate schema node in upstream's v2 flavour."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            types = [t for t in value if t != "null"] if isinstance(value, list) else [value]
            if len(types) == 1:
                out["type"] = types[0]
            # several types: no `type` at all (an arbitrary value); v2 has no type lists
        elif key == "$ref":
            out["$ref"] = DEFS_PREFIX + schema.ref_name(value)
        elif key == "properties":
            out["properties"] = {name: convert_schema_v2(value[name], name) for name in sorted(value)}
        elif key in ("items", "additionalProperties"):
            out[key] = convert_schema_v2(value)
        elif key in ("oneOf", "anyOf", "allOf", "not"):
            continue  # only IntOrString and Quantity use them, and those are special-cased
        elif key == "enum" and prop_name in ("apiVersion", "kind"):
            continue  # added by kubernetes-validate; upstream has none
        else:
            out[key] = value
    return out


def convert_definition_v2(name: str) -> dict[str, Any]:
    """A definition as upstream's /openapi/v2 lists it."""
    special = _SPECIAL_DEFS.get(name)
    if special is not None:
        out = {"description": special["description"], "type": "string"}
        if "format" in special:
            out["format"] = special["format"]
        return out
    if schema.is_custom(name):
        return custom_schema_v2(schema.definitions()[name])
    return convert_schema_v2(schema.definitions()[name])


_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_GVK = "x-kubernetes-group-version-kind"


def custom_schema_v2(root: dict[str, Any]) -> dict[str, Any]:
    """A CustomResourceDefinition's published v2 schema, as upstream's ToStructuralOpenAPIV2 filters it for
    kubectl's client-side validation: no junctors, and nullable or unknown-preserving nodes lose their type
    and fields. A kind preserving unknown fields at the root is published as a bare object."""
    if root.get(_PRESERVE) and _GVK in root:
        return {"type": "object", _GVK: root[_GVK]}
    return convert_schema_v2(_filter_v2(without_empty_properties(root)))


def _filter_v2(node: Any) -> Any:
    if not isinstance(node, dict) or "$ref" in node:
        return node
    out = {k: v for k, v in node.items() if k not in ("allOf", "anyOf", "oneOf", "not")}
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _filter_v2(v) for k, v in out["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _filter_v2(out[key])
    if out.pop("nullable", False):
        for key in ("type", "items", "properties"):
            out.pop(key, None)
    if out.get(_PRESERVE):
        out.pop("items", None)
        out.pop("properties", None)
    if out.get("type") == "array" and "items" not in out:
        del out["type"]
    if out.get(_PRESERVE) and out.get("type") == "object":
        del out["type"]
    nullable = [k for k, v in (node.get("properties") or {}).items() if isinstance(v, dict) and v.get("nullable")]
    ap = node.get("additionalProperties")
    if isinstance(ap, dict) and ap.get("nullable"):
        out.pop("required", None)
    elif nullable and "required" in out:
        out["required"] = [r for r in out["required"] if r not in nullable]
        if not out["required"]:
            del out["required"]
    return out


# ---------------------------------------------------------------------------------------------
# Swagger 2.0 form of the paths (converted from the v3 builder's operations)


def _ref_v2(node: Any) -> Any:
    """A v3 schema fragment with its component refs pointed at #/definitions/."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith(SCHEMAS_PREFIX):
                out[k] = DEFS_PREFIX + v[len(SCHEMAS_PREFIX):]
            else:
                out[k] = _ref_v2(v)
        return out
    if isinstance(node, list):
        return [_ref_v2(v) for v in node]
    return node


def _param_v2(p: dict) -> dict:
    out = {k: v for k, v in p.items() if k != "schema"}
    out.update(p.get("schema") or {})
    return out


def _op_v2(op: dict) -> dict:
    out: dict[str, Any] = {"description": op["description"]}
    params: list[dict] = []
    body = op.get("requestBody")
    if body is not None:
        content = body["content"]
        out["consumes"] = list(content)
        bp: dict[str, Any] = {"in": "body", "name": "body"}
        if body.get("required"):
            bp["required"] = True
        bp["schema"] = _ref_v2(next(iter(content.values()))["schema"])
        params.append(bp)
    else:
        out["consumes"] = ["*/*"]
    params += [_param_v2(p) for p in op.get("parameters", ())]
    out["operationId"] = op["operationId"]
    if params:
        out["parameters"] = params
    produces: list[str] = []
    responses: dict[str, Any] = {}
    for code, r in op["responses"].items():
        rv: dict[str, Any] = {"description": r["description"]}
        content = r.get("content") or {}
        if content:
            rv["schema"] = _ref_v2(next(iter(content.values()))["schema"])
            produces += [t for t in content if t not in produces]
        responses[code] = rv
    out["produces"] = produces
    out["responses"] = responses
    out["schemes"] = ["https"]
    for k, v in op.items():
        if k == "tags" or k.startswith("x-"):
            out[k] = v
    return out


def paths_v2(resources: Iterable[Resource]) -> dict[str, dict]:
    """Every served path with its operations in swagger 2.0 form."""
    out: dict[str, dict] = {}
    for res in resources:
        for path, item in resource_paths(res).items():
            v2: dict[str, Any] = {}
            for k, v in item.items():
                if k == "parameters":
                    v2[k] = [_param_v2(p) for p in v]
                else:
                    v2[k] = _op_v2(v)
            out[path] = v2
    return dict(sorted(out.items()))


def _refs_v2(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(DEFS_PREFIX):
            yield ref[len(DEFS_PREFIX):]
        for v in node.values():
            yield from _refs_v2(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs_v2(v)


def build_parts(resources: Iterable[Resource], known: frozenset[str] = frozenset()) -> tuple[dict, dict]:
    """(paths, definitions) of the given resources in swagger 2.0 form; definitions in `known` are left out."""
    resources = sorted(resources, key=lambda r: (r.group, r.version, r.plural))
    paths = paths_v2(resources)
    roots = {definition_of(r) for r in resources if definition_of(r)}
    roots |= set(_refs_v2(paths))
    definitions = {name: convert_definition_v2(name) for name in reachable_definitions(roots) if name not in known}
    return paths, definitions


def build_document(resources: Iterable[Resource]) -> dict[str, Any]:
    """The whole swagger 2.0 document as a dict (keys as upstream, sorted when serialised)."""
    resources = list(resources)
    paths, definitions = build_parts(resources)
    for name in reachable_definitions({STATUS_DEF, DELETE_OPTIONS_DEF, WATCH_EVENT_DEF, PATCH_DEF}):
        definitions.setdefault(name, convert_definition_v2(name))
    return assemble(paths, definitions)


def assemble(paths: dict, definitions: dict) -> dict[str, Any]:
    return {
        "definitions": definitions,
        "info": {"title": "Kubernetes", "version": INFO_VERSION},
        "paths": paths,
        "security": [{"BearerToken": []}],
        "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication", "in": "header",
                                                "name": "authorization", "type": "apiKey"}},
        "swagger": "2.0",
    }


# ---------------------------------------------------------------------------------------------
# Protobuf wire format (proto3: scalar defaults are omitted, message fields always written)


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _msg(field: int, body: bytes) -> bytes:
    return _tag(field, 2) + _varint(len(body)) + body


def _str(field: int, s: str | None) -> bytes:
    if not s:
        return b""
    data = s.encode()
    return _tag(field, 2) + _varint(len(data)) + data


def _strs(field: int, values: Iterable[str]) -> bytes:
    return b"".join(_msg(field, v.encode()) for v in values)  # repeated strings keep empty ones


def _bool(field: int, b: Any, always: bool = False) -> bytes:
    if b or always:
        return _tag(field, 0) + (b"\x01" if b else b"\x00")
    return b""


def _int(field: int, n: Any) -> bytes:
    if n is None or isinstance(n, bool) or not isinstance(n, int | float) or int(n) == 0:
        return b""
    return _tag(field, 0) + _varint(int(n))


def _double(field: int, x: Any) -> bytes:
    if x is None or isinstance(x, bool) or not isinstance(x, int | float) or x == 0:
        return b""
    return _tag(field, 1) + struct.pack("<d", float(x))


class _Encoder:
    """gnostic openapi_v2 messages from a swagger 2.0 dict; memoises the YAML of extension values."""

    def __init__(self) -> None:
        self._yaml: dict[bytes, str] = {}

    # -- Any / NamedAny ---------------------------------------------------------------------------

    def yaml_of(self, value: Any) -> str:
        key = orjson.dumps(value)
        text = self._yaml.get(key)
        if text is None:
            text = yaml.dump(value, Dumper=_Dumper, default_flow_style=False, sort_keys=True, width=1 << 30,
                             allow_unicode=True)
            text = text.removesuffix("...\n")  # a bare scalar's document-end marker
            self._yaml[key] = text
        return text

    def any(self, value: Any) -> bytes:
        """Any{yaml=2}."""
        return _str(2, self.yaml_of(value))

    def named_any(self, field: int, name: str, value: Any) -> bytes:
        return _msg(field, _str(1, name) + _msg(2, self.any(value)))

    def extensions(self, field: int, node: dict) -> bytes:
        return b"".join(self.named_any(field, k, v) for k, v in node.items() if k.startswith("x-"))

    # -- Schema -----------------------------------------------------------------------------------

    def schema(self, s: dict) -> bytes:
        """Schema: _ref=1 format=2 title=3 description=4 default=5 multiple_of=6 maximum=7
        exclusive_maximum=8 minimum=9 exclusive_minimum=10 max_length=11 min_length=12 pattern=13
        max_items=14 min_items=15 unique_items=16 max_properties=17 min_properties=18 required=19
        enum=20 additional_properties=21 type=22 items=23 all_of=24 properties=25 discriminator=26
        read_only=27 example=30 vendor_extension=31."""
        g = s.get
        parts = [
            _str(1, g("$ref")), _str(2, g("format")), _str(3, g("title")), _str(4, g("description")),
        ]
        if "default" in s:
            parts.append(_msg(5, self.any(s["default"])))
        parts += [
            _double(6, g("multipleOf")), _double(7, g("maximum")), _bool(8, g("exclusiveMaximum")),
            _double(9, g("minimum")), _bool(10, g("exclusiveMinimum")), _int(11, g("maxLength")),
            _int(12, g("minLength")), _str(13, g("pattern")), _int(14, g("maxItems")), _int(15, g("minItems")),
            _bool(16, g("uniqueItems")), _int(17, g("maxProperties")), _int(18, g("minProperties")),
            _strs(19, g("required") or ()),
        ]
        parts += [_msg(20, self.any(v)) for v in g("enum") or ()]
        ap = g("additionalProperties")
        if isinstance(ap, dict):
            parts.append(_msg(21, _msg(1, self.schema(ap))))  # AdditionalPropertiesItem.schema=1
        elif isinstance(ap, bool):
            parts.append(_msg(21, _bool(2, ap, always=True)))  # AdditionalPropertiesItem.boolean=2
        typ = g("type")
        if typ:
            parts.append(_msg(22, _strs(1, [typ] if isinstance(typ, str) else typ)))  # TypeItem.value=1
        items = g("items")
        if isinstance(items, dict):
            parts.append(_msg(23, _msg(1, self.schema(items))))  # ItemsItem.schema=1
        elif isinstance(items, list):
            parts.append(_msg(23, b"".join(_msg(1, self.schema(i)) for i in items)))
        parts += [_msg(24, self.schema(a)) for a in g("allOf") or ()]
        props = g("properties")
        if props is not None:  # Properties.additional_properties=1 of NamedSchema{name=1, value=2}
            parts.append(_msg(25, b"".join(_msg(1, _str(1, n) + _msg(2, self.schema(p))) for n, p in props.items())))
        parts += [_str(26, g("discriminator")), _bool(27, g("readOnly"))]
        if "example" in s:
            parts.append(_msg(30, self.any(s["example"])))
        parts.append(self.extensions(31, s))
        return b"".join(parts)

    def definitions(self, defs: dict) -> bytes:
        """Definitions.additional_properties=1 of NamedSchema{name=1, value=2}."""
        return b"".join(_msg(1, _str(1, n) + _msg(2, self.schema(s))) for n, s in defs.items())

    # -- Parameters -------------------------------------------------------------------------------

    def _primitive_param(self, p: dict, f: dict[str, int]) -> bytes:
        """The common shape of Query/Path/Header/FormData parameter sub-schemas: required=1 in=2
        description=3 name=4, then `type` and the fields after it at fixed offsets from it."""
        g = p.get
        parts = [_bool(1, g("required")), _str(2, g("in")), _str(3, g("description")), _str(4, g("name"))]
        if "allowEmptyValue" in f:
            parts.append(_bool(f["allowEmptyValue"], g("allowEmptyValue")))
        parts += [_str(f["type"], g("type")), _str(f["format"], g("format"))]
        if isinstance(g("items"), dict):
            parts.append(_msg(f["items"], self.primitives_items(g("items"))))
        parts.append(_str(f["type"] + 3, g("collectionFormat")))
        if "default" in p:
            parts.append(_msg(f["type"] + 4, self.any(p["default"])))
        base = f["type"] + 5  # maximum
        parts += [_double(base, g("maximum")), _bool(base + 1, g("exclusiveMaximum")), _double(base + 2, g("minimum")),
                  _bool(base + 3, g("exclusiveMinimum")), _int(base + 4, g("maxLength")),
                  _int(base + 5, g("minLength")), _str(base + 6, g("pattern")), _int(base + 7, g("maxItems")),
                  _int(base + 8, g("minItems")), _bool(base + 9, g("uniqueItems"))]
        parts += [_msg(base + 10, self.any(v)) for v in g("enum") or ()]
        parts += [_double(base + 11, g("multipleOf")), self.extensions(base + 12, p)]
        return b"".join(parts)

    def primitives_items(self, p: dict) -> bytes:
        """PrimitivesItems: type=1 format=2 items=3 collection_format=4 default=5 ... enum=16 vendor_extension=18."""
        parts = [_str(1, p.get("type")), _str(2, p.get("format"))]
        if isinstance(p.get("items"), dict):
            parts.append(_msg(3, self.primitives_items(p["items"])))
        parts.append(_str(4, p.get("collectionFormat")))
        parts += [_msg(16, self.any(v)) for v in p.get("enum") or ()]
        parts.append(self.extensions(18, p))
        return b"".join(parts)

    def parameter(self, p: dict) -> bytes:
        """Parameter: body_parameter=1 | non_body_parameter=2 (header=1, form_data=2, query=3, path=4)."""
        where = p.get("in")
        if where == "body":
            # BodyParameter: description=1 name=2 in=3 required=4 schema=5 vendor_extension=6
            body = (_str(1, p.get("description")) + _str(2, p.get("name")) + _str(3, where)
                    + _bool(4, p.get("required")) + _msg(5, self.schema(p.get("schema") or {}))
                    + self.extensions(6, p))
            return _msg(1, body)
        if where == "query":  # required=1 in=2 description=3 name=4 allow_empty_value=5 type=6 ... vendor=23
            sub = _msg(3, self._primitive_param(p, {"allowEmptyValue": 5, "type": 6, "format": 7, "items": 8}))
        elif where == "formData":  # same numbering as query
            sub = _msg(2, self._primitive_param(p, {"allowEmptyValue": 5, "type": 6, "format": 7, "items": 8}))
        elif where == "header":  # required=1 in=2 description=3 name=4 type=5 ... vendor=22
            sub = _msg(1, self._primitive_param(p, {"type": 5, "format": 6, "items": 7}))
        else:  # path: same numbering as header
            sub = _msg(4, self._primitive_param(p, {"type": 5, "format": 6, "items": 7}))
        return _msg(2, sub)

    def parameters_item(self, field: int, p: dict) -> bytes:
        """ParametersItem: parameter=1 | json_reference=2 (JsonReference: _ref=1 description=2)."""
        if "$ref" in p:
            return _msg(field, _msg(2, _str(1, p["$ref"]) + _str(2, p.get("description"))))
        return _msg(field, _msg(1, self.parameter(p)))

    # -- Operations and paths ---------------------------------------------------------------------

    def responses(self, rs: dict) -> bytes:
        """Responses.response_code=1 of NamedResponseValue{name=1, value=2 ResponseValue{response=1}};
        Response: description=1 schema=2 (SchemaItem.schema=1) vendor_extension=5."""
        out = []
        for code, r in rs.items():
            if code.startswith("x-"):
                continue
            if "$ref" in r:
                value = _msg(2, _str(1, r["$ref"]))
            else:
                resp = _str(1, r.get("description"))
                if isinstance(r.get("schema"), dict):
                    resp += _msg(2, _msg(1, self.schema(r["schema"])))
                resp += self.extensions(5, r)
                value = _msg(1, resp)
            out.append(_msg(1, _str(1, code) + _msg(2, value)))
        out.append(self.extensions(2, rs))
        return b"".join(out)

    def operation(self, op: dict) -> bytes:
        """Operation: tags=1 summary=2 description=3 operation_id=5 produces=6 consumes=7 parameters=8
        responses=9 schemes=10 deprecated=11 vendor_extension=13."""
        parts = [_strs(1, op.get("tags") or ()), _str(2, op.get("summary")), _str(3, op.get("description")),
                 _str(5, op.get("operationId")), _strs(6, op.get("produces") or ()),
                 _strs(7, op.get("consumes") or ())]
        parts += [self.parameters_item(8, p) for p in op.get("parameters") or ()]
        if "responses" in op:
            parts.append(_msg(9, self.responses(op["responses"])))
        parts += [_strs(10, op.get("schemes") or ()), _bool(11, op.get("deprecated")), self.extensions(13, op)]
        return b"".join(parts)

    def path_item(self, item: dict) -> bytes:
        """PathItem: _ref=1 get=2 put=3 post=4 delete=5 options=6 head=7 patch=8 parameters=9 vendor=10."""
        parts = [_str(1, item.get("$ref"))]
        for i, m in enumerate(_METHODS, start=2):
            if m in item:
                parts.append(_msg(i, self.operation(item[m])))
        parts += [self.parameters_item(9, p) for p in item.get("parameters") or ()]
        parts.append(self.extensions(10, item))
        return b"".join(parts)

    def paths(self, paths: dict) -> bytes:
        """Paths: vendor_extension=1, path=2 of NamedPathItem{name=1, value=2}."""
        return self.extensions(1, paths) + b"".join(
            _msg(2, _str(1, p) + _msg(2, self.path_item(item))) for p, item in paths.items() if p.startswith("/"))

    # -- Document ---------------------------------------------------------------------------------

    def document(self, doc: dict) -> bytes:
        """Document: swagger=1 info=2 host=3 base_path=4 schemes=5 consumes=6 produces=7 paths=8
        definitions=9 security=12 security_definitions=13 vendor_extension=16."""
        info = doc.get("info") or {}
        parts = [_str(1, doc.get("swagger")),
                 _msg(2, _str(1, info.get("title")) + _str(2, info.get("version")) + _str(3, info.get("description"))
                      + self.extensions(7, info)),
                 _str(3, doc.get("host")), _str(4, doc.get("basePath")), _strs(5, doc.get("schemes") or ()),
                 _strs(6, doc.get("consumes") or ()), _strs(7, doc.get("produces") or ())]
        if "paths" in doc:
            parts.append(_msg(8, self.paths(doc["paths"])))
        if "definitions" in doc:
            parts.append(_msg(9, self.definitions(doc["definitions"])))
        # SecurityRequirement.additional_properties=1 of NamedStringArray{name=1, value=2 StringArray{value=1}}
        for req in doc.get("security") or ():
            parts.append(_msg(12, b"".join(_msg(1, _str(1, n) + _msg(2, _strs(1, v))) for n, v in req.items())))
        sec = doc.get("securityDefinitions")
        if sec:
            parts.append(_msg(13, b"".join(_msg(1, _str(1, n) + _msg(2, self.security_item(s)))
                                           for n, s in sec.items())))
        parts.append(self.extensions(16, doc))
        return b"".join(parts)

    def security_item(self, s: dict) -> bytes:
        """SecurityDefinitionsItem: basic_authentication_security=1 | api_key_security=2 (ApiKeySecurity:
        type=1 name=2 in=3 description=4 vendor_extension=5); OAuth2 flows are not used here."""
        if s.get("type") == "basic":
            return _msg(1, _str(1, "basic") + _str(2, s.get("description")) + self.extensions(3, s))
        return _msg(2, _str(1, s.get("type")) + _str(2, s.get("name")) + _str(3, s.get("in"))
                    + _str(4, s.get("description")) + self.extensions(5, s))


def encode_document(doc: dict) -> bytes:
    """The gnostic openapi_v2.Document protobuf bytes of a swagger 2.0 document."""
    return _Encoder().document(doc)


# ---------------------------------------------------------------------------------------------
# The service


def _accepted(header: str) -> list[str]:
    """Media ranges of an Accept header, best first (by q, then specificity, then order)."""
    ranked = []
    for i, clause in enumerate(header.split(",")):
        parts = [p.strip() for p in clause.split(";")]
        media = parts[0].lower()
        if not media:
            continue
        q = 1.0
        for p in parts[1:]:
            if p.lower().startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        specificity = 0 if media == "*/*" else 1 if media.endswith("/*") else 2
        ranked.append((-q, -specificity, i, media))
    return [m for *_, m in sorted(ranked)]


def negotiate(header: str) -> str | None:
    """The representation to serve (JSON_TYPE or PROTO_TYPE) for an Accept header, or None (406)."""
    offers = (JSON_TYPE, PROTO_TYPE_AT, PROTO_TYPE)
    for media in _accepted(header or "*/*"):
        mtype, _, sub = media.partition("/")
        for offer in offers:
            otype, _, osub = offer.partition("/")
            if mtype in (otype, "*") and sub in (osub, "*"):
                return JSON_TYPE if offer == JSON_TYPE else PROTO_TYPE
    return None


class _Published:
    """One revision of the document: the custom resources' part, and what was built from it so far."""

    def __init__(self, custom_paths: dict, custom_defs: dict, missing: set[str]) -> None:
        self.custom_paths, self.custom_defs, self.missing = custom_paths, custom_defs, missing
        self.doc: dict[str, Any] | None = None
        self.bodies: dict[tuple[str, bool], bytes] = {}  # (JSON_TYPE or PROTO_TYPE, gzipped) -> bytes
        self.etag = ""
        self.last_modified = formatdate(usegmt=True)


class OpenAPIV2Service:
    """Serves /openapi/v2 for the registry's resources, building each representation once per registry revision.

    Built-in kinds never change, so their paths and definitions are built once; the CustomResourceDefinitions'
    part is rebuilt when the registry changes (a CRD created, changed, deleted), as upstream republishes."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._lock = threading.RLock()  # one build at a time; built bodies are then read without it
        self._base: tuple[dict, dict] | None = None
        self._revision = -1
        self._custom_ids: list[int] = []
        self._current = _Published({}, {}, set())
        self.build_seconds: dict[str, float] = {}

    def refresh(self) -> None:
        """Start a new revision when the served custom resources changed. On the event loop, where CRDs
        change the registry and the schemas: their (small) part is converted here, the rest in a thread."""
        if self._revision == self._registry.revision:
            return
        self._revision = self._registry.revision
        custom = sorted((r for r in self._registry.all() if r.custom), key=lambda r: (r.group, r.version, r.plural))
        if [id(r) for r in custom] == self._custom_ids:
            return
        self._custom_ids = [id(r) for r in custom]
        paths = paths_v2(custom)
        roots = {definition_of(r) for r in custom if definition_of(r)} | set(_refs_v2(paths))
        names = reachable_definitions(roots)
        defs = {name: convert_definition_v2(name) for name in names if schema.is_custom(name)}
        self._current = _Published(paths, defs, {name for name in names if name not in defs})

    def document(self) -> dict[str, Any]:
        """The swagger 2.0 document as a dict (built on first use; read-only)."""
        return self._document(self._current)

    def _document(self, pub: _Published) -> dict[str, Any]:
        with self._lock:
            if pub.doc is None:
                start = time.perf_counter()
                if self._base is None:
                    builtin = [r for r in self._registry.all() if not r.custom]
                    paths, definitions = build_parts(builtin)
                    for name in reachable_definitions({STATUS_DEF, DELETE_OPTIONS_DEF, WATCH_EVENT_DEF, PATCH_DEF}):
                        definitions.setdefault(name, convert_definition_v2(name))
                    self._base = (paths, definitions)
                paths, definitions = self._base
                if pub.custom_paths:
                    paths = dict(sorted({**paths, **pub.custom_paths}.items()))
                    definitions = {**definitions, **pub.custom_defs}
                    for name in pub.missing - definitions.keys():
                        definitions[name] = convert_definition_v2(name)
                pub.doc = assemble(paths, definitions)
                self.build_seconds["document"] = time.perf_counter() - start
            return pub.doc

    def cached(self, media_type: str, compressed: bool = False) -> tuple[bytes, str] | None:
        pub = self._current
        body = pub.bodies.get((media_type, compressed))
        return None if body is None else (body, pub.etag)

    def body(self, media_type: str, compressed: bool = False) -> tuple[bytes, str]:
        """(bytes, ETag) of one representation, built on first use. Blocking: call it off the event loop.

        The ETag is upstream's: the SHA-512 of the JSON, the same for every representation."""
        return self._body(self._current, media_type, compressed)

    def _body(self, pub: _Published, media_type: str, compressed: bool = False) -> tuple[bytes, str]:
        got = pub.bodies.get((media_type, compressed))
        if got is not None:
            return got, pub.etag
        with self._lock:
            key = (media_type, compressed)
            if key not in pub.bodies:
                if not pub.etag:
                    doc = self._document(pub)
                    pub.bodies[(JSON_TYPE, False)] = self._timed(
                        JSON_TYPE, lambda: orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
                    pub.etag = '"' + hashlib.sha512(pub.bodies[(JSON_TYPE, False)]).hexdigest().upper() + '"'
                if compressed:
                    raw, _ = self._body(pub, media_type)
                    pub.bodies[key] = self._timed(media_type + "+gzip",
                                                  lambda: gzip.compress(raw, compresslevel=6, mtime=0))
                elif media_type == PROTO_TYPE:
                    pub.bodies[key] = self._timed(PROTO_TYPE, lambda: encode_document(self._document(pub)))
            return pub.bodies[key], pub.etag

    def _timed(self, what: str, build: Callable[[], bytes]) -> bytes:
        start = time.perf_counter()
        out = build()
        self.build_seconds[what] = time.perf_counter() - start
        return out

    async def _get(self, pub: _Published, media_type: str, compressed: bool = False) -> tuple[bytes, str]:
        got = pub.bodies.get((media_type, compressed))
        if got is not None and pub.etag:
            return got, pub.etag
        return await asyncio.to_thread(self._body, pub, media_type, compressed)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/openapi/v2", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.refresh()
        pub = self._current
        media_type = negotiate(request.headers.get("Accept", ""))
        if media_type is None:
            return web.Response(status=406, headers={"Vary": "Accept"})
        raw, etag = await self._get(pub, media_type)
        headers = {"Content-Type": media_type, "ETag": etag, "Last-Modified": pub.last_modified,
                   "Vary": "Accept, Accept-Encoding"}
        if etag in (t.strip() for t in request.headers.get("If-None-Match", "").split(",")):
            return web.Response(status=304, headers=headers)
        body = raw
        if len(raw) >= GZIP_MIN_BYTES and _accepts_gzip(request.headers.get("Accept-Encoding", "")):
            body, _ = await self._get(pub, media_type, True)
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)


def _accepts_gzip(header: str) -> bool:
    for clause in header.split(","):
        coding, *params = (p.strip() for p in clause.split(";"))
        if coding.lower() in ("gzip", "*"):
            return not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params)
    return False
