"""Field validation of request bodies, as upstream's strict decoding does it (the `fieldValidation` option).

Upstream decodes a body into the Go type of its kind: a value of the wrong JSON type fails the request
whatever the directive (`json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas
of type int32`); unknown and duplicate fields are collected as "strict decoding errors" and then, by
directive, fail the request (Strict, 400), become `Warning` headers (Warn, the server default), or
are dropped silently (Ignore). Unknown fields never reach storage.

The REST layer calls, for a create/update body (see `decode_and_check` for the whole sequence):

    obj, warnings = structural.decode_and_check(res_definition, raw, content_type, directive)
    for w in warnings:
        response.headers.add("Warning", structural.warning_header(w))

and for a merge/strategic-merge/JSON patch: `patch, dups = structural.decode_strict(raw, content_type)`,
apply it, then `merged, warnings = structural.check_patched(definition, merged, directive, dups)`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import yaml

from kubelite.api import errors, schema

STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"
DIRECTIVES = (IGNORE, WARN, STRICT)

_YAML_TYPES = ("application/yaml", "application/apply-patch+yaml", "application/x-yaml", "text/yaml")
_QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


# ---------------------------------------------------------------------------------------------
# Decoding with duplicate detection


class _Decoded:
    """A parsed body plus where its duplicate keys were (by id of the dict that holds them)."""

    def __init__(self, obj: Any, dup_keys: dict[int, list[str]], yaml_dups: list[str], is_yaml: bool):
        self.obj = obj
        self.dup_keys = dup_keys
        self.yaml_dups = yaml_dups
        self.is_yaml = is_yaml


def is_yaml(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in _YAML_TYPES


def decode_strict(raw: bytes, content_type: str) -> tuple[Any, list[str]]:
    """Parse a JSON or YAML body; return it with upstream's duplicate-field messages.

    JSON: `duplicate field "spec.paused"` (full path, document order). YAML: one entry
    `yaml: unmarshal errors:\\n  line 5: key "name" already set in map...`. The last duplicate wins.
    Malformed input raises a 400 BadRequest StatusError worded as upstream's decoder.
    """
    d = _decode(raw, content_type)
    if d.is_yaml:
        return d.obj, _yaml_dup_messages(d.yaml_dups)
    out: list[str] = []
    _collect_dups(d.obj, "", d.dup_keys, out)
    return d.obj, out


def _decode(raw: bytes, content_type: str) -> _Decoded:
    if is_yaml(content_type):
        obj, dups = _load_yaml(raw)
        return _Decoded(obj, {}, dups, True)
    dup_keys: dict[int, list[str]] = {}

    def hook(pairs: list[tuple[str, Any]]) -> dict:
        out: dict[str, Any] = {}
        dups: list[str] | None = None
        for k, v in pairs:
            if k in out:
                if dups is None:
                    dups = []
                if k not in dups:
                    dups.append(k)
            out[k] = v
        if dups:
            dup_keys[id(out)] = dups
        return out

    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        obj = json.loads(text, object_pairs_hook=hook)
    except UnicodeDecodeError:
        raise errors.new_bad_request("couldn't get version/kind; json parse error: invalid character in string "
                                     "literal") from None
    except json.JSONDecodeError as e:
        raise errors.new_bad_request(f"couldn't get version/kind; json parse error: {_go_json_error(e)}") from None
    return _Decoded(obj, dup_keys, [], False)


def _go_json_error(e: json.JSONDecodeError) -> str:
    """encoding/json's wording for a syntax error."""
    doc, pos = e.doc, e.pos
    if e.msg.startswith("Unterminated string") or not doc[pos:].strip():
        return "unexpected end of JSON input"
    c = doc[pos]
    ch = "'\\''" if c == "'" else ("'\"'" if c == '"' else "'" + json.dumps(c)[1:-1] + "'")
    if e.msg == "Expecting value":
        return f"invalid character {ch} looking for beginning of value"
    if e.msg.startswith("Expecting property name"):
        return f"invalid character {ch} looking for beginning of object key string"
    if e.msg == "Expecting ':' delimiter":
        return f"invalid character {ch} after object key"
    if e.msg == "Expecting ',' delimiter":
        where = "array element" if _innermost_open(doc, pos) == "[" else "object key:value pair"
        return f"invalid character {ch} after {where}"
    if e.msg == "Extra data":
        return f"invalid character {ch} after top-level value"
    if e.msg.startswith("Invalid control character"):
        return f"invalid character {ch} in string literal"
    return e.msg


def _innermost_open(doc: str, pos: int) -> str:
    stack: list[str] = []
    in_str = esc = False
    for c in doc[:pos]:
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "[{":
            stack.append(c)
        elif c in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


class _StrictYAMLLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader that records duplicate keys and keeps timestamps as strings (as YAML-to-JSON does)."""

    yaml_implicit_resolvers = {
        k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []


def _yaml_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return key if isinstance(key, str) else str(key)


def _construct_mapping(loader: _StrictYAMLLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = _yaml_key(loader.construct_object(key_node, deep=True))
        if key in out:
            loader.duplicates.append(f'line {key_node.start_mark.line + 1}: key "{key}" already set in map')
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_StrictYAMLLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _load_yaml(raw: bytes) -> tuple[Any, list[str]]:
    loader = _StrictYAMLLoader(raw)
    try:
        obj = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = (e.problem or e.context or "invalid YAML").replace(
            "mapping values are not allowed here", "mapping values are not allowed in this context")
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise errors.new_bad_request(f"error converting YAML to JSON: yaml: {line}{problem}") from None
    except yaml.YAMLError as e:
        raise errors.new_bad_request(f"error converting YAML to JSON: yaml: {e}") from None
    finally:
        loader.dispose()
    return obj, loader.duplicates


def _yaml_dup_messages(dups: list[str]) -> list[str]:
    if not dups:
        return []
    return ["yaml: unmarshal errors:\n  " + "\n  ".join(dups)]


def _collect_dups(value: Any, path: str, dup_keys: dict[int, list[str]], out: list[str]) -> None:
    if isinstance(value, dict):
        dups = dup_keys.get(id(value), ())
        for k, v in value.items():
            p = f"{path}.{k}" if path else k
            if k in dups:
                out.append(f'duplicate field "{p}"')
            _collect_dups(v, p, dup_keys, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _collect_dups(v, f"{path}[{i}]", dup_keys, out)


# ---------------------------------------------------------------------------------------------
# The schema walk: unknown fields, duplicates in order, Go type errors, pruning


class _Walk:
    def __init__(self, dup_keys: dict[int, list[str]] | None = None, sort_keys: bool = False, prune: bool = False):
        self.dup_keys = dup_keys or {}
        self.sort_keys = sort_keys
        self.prune = prune
        self.strict: list[str] = []  # unknown/duplicate messages in upstream order
        self.type_errors: list[str] = []

    def object(self, definition: str, value: Any) -> Any:
        # custom resources are decoded as unstructured JSON: their schema validation reports types
        self.unstructured = schema.is_custom(definition)
        self.defs = schema.definitions()
        return self.node({"$ref": schema.REF_PREFIX + definition}, value, "", "", "")

    def node(self, sch: dict, value: Any, path: str, go_path: str, struct: str) -> Any:
        """Check `value` against `sch`; return it (pruned copy when pruning). struct: Go struct holding the field."""
        if value is None:
            return value
        ref = sch.get("$ref")
        if ref:
            name = _REF_NAMES.get(ref)
            if name is None:
                name = _REF_NAMES[ref] = schema.ref_name(ref)
            if name == _INT_OR_STRING:
                if not isinstance(value, str) and not (isinstance(value, int) and not isinstance(value, bool)
                                                       and _in_range(value, "int32")):
                    self._type_error(value, struct, go_path, "int32")
                return value
            if name == _QUANTITY:
                if isinstance(value, bool) or not isinstance(value, str | int | float) or (
                        isinstance(value, str) and not _QUANTITY_RE.match(value.strip())):
                    self.type_errors.append(_QUANTITY_ERROR)
                return value
            sch = self.defs[name]  # schema.resolve, looked up afresh: custom definitions are replaced
        else:
            name = ""
        info = _info(sch)
        shape = info.shape
        if shape is _STRUCT or shape is _MAP or shape is _FREE:
            if not isinstance(value, dict):
                self._type_error(value, struct, go_path, _go_type(sch, name))
                return value
            if shape is _STRUCT:
                return self.struct(sch, value, path, go_path, name.rsplit(".", 1)[-1] if name else struct)
            if shape is _MAP:
                return self.map(info.elem, value, path, go_path, struct)
            return value  # free-form object (RawExtension, FieldsV1, JSON)
        if shape is _ARRAY:
            if not isinstance(value, list):
                self._type_error(value, struct, go_path, _go_type(sch, name))
                return value
            items = info.elem
            node = self.node
            out = [node(items, v, f"{path}[{i}]", go_path, struct) for i, v in enumerate(value)]
            return out if self.prune else value
        if shape is _STRING:
            if not isinstance(value, str):
                self._type_error(value, struct, go_path, "string")
        elif shape is _INTEGER:
            fmt = info.fmt
            if isinstance(value, bool) or not isinstance(value, int) or not _in_range(value, fmt):
                self._type_error(value, struct, go_path, fmt)
        elif shape is _NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self._type_error(value, struct, go_path, "float64")
        elif shape is _BOOLEAN:
            if not isinstance(value, bool):
                self._type_error(value, struct, go_path, "bool")
        return value

    def struct(self, sch: dict, value: dict, path: str, go_path: str, struct: str) -> dict:
        props = sch["properties"]
        preserve = sch.get("x-kubernetes-preserve-unknown-fields") is True
        dups = self.dup_keys.get(id(value), ())
        keys = sorted(value) if self.sort_keys else list(value)
        out: dict[str, Any] = {}
        for k in keys:
            p = f"{path}.{k}" if path else k
            sub = props.get(k)
            if sub is None:
                if not preserve:
                    self.strict.append(f'unknown field "{p}"')
                    continue
                out[k] = value[k]
                continue
            if k in dups:
                self.strict.append(f'duplicate field "{p}"')
            gp = f"{go_path}.{k}" if go_path else k
            out[k] = self.node(sub, value[k], p, gp, struct)
        if not self.prune:
            return value
        if not self.sort_keys:
            return out  # built in the body's key order already
        return {k: out[k] for k in value if k in out}  # keep the body's key order

    def map(self, elem: dict, value: dict, path: str, go_path: str, struct: str) -> dict:
        dups = self.dup_keys.get(id(value), ())
        out: dict[str, Any] = {}
        for k in (sorted(value) if self.sort_keys else list(value)):
            p = f"{path}.{k}" if path else k
            if k in dups:
                self.strict.append(f'duplicate field "{p}"')
            out[k] = self.node(elem, value[k], p, go_path, struct)
        if not self.prune:
            return value
        return {k: out[k] for k in value} if self.sort_keys else out

    def _type_error(self, value: Any, struct: str, go_path: str, go_type: str) -> None:
        if getattr(self, "unstructured", False):
            return
        what = _json_kind(value, go_type)
        if struct and go_path:
            self.type_errors.append(f"json: cannot unmarshal {what} into Go struct field {struct}.{go_path} "
                                    f"of type {go_type}")
        else:
            self.type_errors.append(f"json: cannot unmarshal {what} into Go value of type {go_type}")


_STRUCT, _MAP, _FREE, _ARRAY, _STRING, _INTEGER, _NUMBER, _BOOLEAN, _ANY = (
    "struct", "map", "free", "array", "string", "integer", "number", "boolean", "any")


class _Info:
    """What the walk needs of one resolved schema node, worked out once: every request body walks the
    same few hundred nodes, and re-reading their types and items per value was most of the walk."""

    __slots__ = ("sch", "shape", "elem", "fmt")

    def __init__(self, sch: dict):
        self.sch = sch  # held so that its id is not reused while the entry lives
        typ = _type_of(sch)
        self.elem: dict = {}
        self.fmt = ""
        if typ == "object" or "properties" in sch or "additionalProperties" in sch:
            if "properties" in sch:
                self.shape = _STRUCT
            elif isinstance(sch.get("additionalProperties"), dict):
                self.shape, self.elem = _MAP, sch["additionalProperties"]
            else:
                self.shape = _FREE
        elif typ == "array":
            self.shape, self.elem = _ARRAY, sch.get("items") or {}
        elif typ in ("string", "integer", "number", "boolean"):
            self.shape = {"string": _STRING, "integer": _INTEGER, "number": _NUMBER, "boolean": _BOOLEAN}[typ]
            self.fmt = sch.get("format") or "int64"
        else:
            self.shape = _ANY


_INFOS: dict[int, _Info] = {}
_REF_NAMES: dict[str, str] = {}  # $ref -> definition name (a few hundred refs)


def _info(sch: dict) -> _Info:
    """The schema node's _Info, by identity (custom resource definitions come and go as new dicts)."""
    hit = _INFOS.get(id(sch))
    if hit is not None and hit.sch is sch:
        return hit
    if len(_INFOS) >= 20000:
        _INFOS.clear()
    info = _INFOS[id(sch)] = _Info(sch)
    return info


def _type_of(sch: dict) -> str:
    t = sch.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "")
    return t or ""


def _in_range(value: int, fmt: str) -> bool:
    lo, hi = _INT_RANGES.get(fmt, _INT_RANGES["int64"])
    return lo <= value <= hi


def _json_kind(value: Any, go_type: str) -> str:
    """encoding/json's name for the offending JSON value; numbers into integers carry their literal."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        if go_type in _INT_RANGES or go_type.startswith(("int", "uint")):
            return f"number {value!r}"
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _go_type(sch: dict, name: str) -> str:
    """The Go type upstream names in an unmarshal error: v1.DeploymentSpec, []v1.Container, map[string]string."""
    if name:
        pkg, _, typ = name.rpartition(".")
        return f"{pkg.rsplit('.', 1)[-1]}.{typ}"
    sch = schema.resolve(sch)
    t = _type_of(sch)
    if t == "array":
        return "[]" + _go_type(sch.get("items") or {}, _ref(sch.get("items") or {}))
    if isinstance(sch.get("additionalProperties"), dict):
        ap = sch["additionalProperties"]
        return "map[string]" + _go_type(ap, _ref(ap))
    return {"string": "string", "integer": sch.get("format") or "int64", "number": "float64",
            "boolean": "bool"}.get(t, "map[string]interface {}")


def _ref(sch: dict) -> str:
    ref = sch.get("$ref")
    return schema.ref_name(ref) if ref else ""


# ---------------------------------------------------------------------------------------------
# Public checks


def unknown_fields(definition: str, obj: dict) -> list[str]:
    """`unknown field "spec.templat"` for every field the kind's schema does not have, in body order."""
    w = _Walk()
    w.object(definition, obj)
    return [m for m in w.strict if m.startswith("unknown field")]


def type_errors(definition: str, obj: dict) -> list[str]:
    """Go-decoder wording of every mistyped value; upstream reports the first one (null is always accepted)."""
    w = _Walk()
    w.object(definition, obj)
    return w.type_errors


def prune(definition: str, obj: dict) -> dict:
    """A copy of obj without its unknown fields (what upstream stores under Warn and Ignore)."""
    w = _Walk(prune=True)
    return w.object(definition, obj)


def kind_and_version(definition: str, obj: Any = None) -> tuple[str, str]:
    """The GVK upstream names in decode errors: the body's apiVersion/kind, else the definition's."""
    gvks = schema.definitions().get(definition, {}).get("x-kubernetes-group-version-kind") or [{}]
    kind, version = gvks[0].get("kind", ""), gvks[0].get("version", "")
    if isinstance(obj, dict):
        if isinstance(obj.get("kind"), str) and obj["kind"]:
            kind = obj["kind"]
        if isinstance(obj.get("apiVersion"), str) and obj["apiVersion"]:
            version = obj["apiVersion"].rpartition("/")[2]
    return kind, version


def decode_error(definition: str, obj: Any, message: str) -> errors.StatusError:
    """Upstream's transformDecodeError: `Deployment in version "v1" cannot be handled as a Deployment: ...`."""
    target = kind_and_version(definition)[0]
    kind, version = kind_and_version(definition, obj)
    return errors.new_bad_request(f'{kind} in version "{version}" cannot be handled as a {target}: {message}')


def strict_error(definition: str, obj: Any, messages: list[str]) -> errors.StatusError:
    """The 400 answered under fieldValidation=Strict."""
    return decode_error(definition, obj, "strict decoding error: " + ", ".join(messages))


def warning_header(text: str) -> str:
    """A `Warning` response header value as upstream writes it: `299 - "unknown field \\"spec.foo\\""`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def check_patched(definition: str, merged: dict, directive: str,
                  patch_duplicates: list[str] | None = None) -> tuple[dict, list[str]]:
    """fieldValidation for PATCH: check the object that results from applying the patch.

    `patch_duplicates`: what decode_strict found in the patch body (reported first, as upstream).
    Unknown fields are reported in sorted order (upstream re-serializes the patched map). Returns
    (merged without unknown fields, warnings). Raises upstream's 422 for a patch:
    `"" is invalid: patch: Invalid value: "<patched JSON>": strict decoding error: ...` (Strict, or
    a mistyped value under any directive).
    """
    w = _Walk(sort_keys=True, prune=True)
    pruned = w.object(definition, merged)
    if w.type_errors:
        raise _patch_invalid(merged, w.type_errors[0])
    strict = list(patch_duplicates or []) + w.strict
    if strict and directive == STRICT:
        raise _patch_invalid(merged, "strict decoding error: " + ", ".join(strict))
    return _by_directive(definition, merged, pruned, strict, WARN if directive == STRICT else directive)


def _patch_invalid(merged: dict, message: str) -> errors.StatusError:
    patched = orjson.dumps(merged, option=orjson.OPT_SORT_KEYS).decode()
    return errors.new_invalid("", "", "", [errors.invalid("patch", patched, message)])


def decode_and_check(definition: str, raw: bytes, content_type: str, directive: str = WARN) -> tuple[dict, list[str]]:
    """Decode a create/update body of the given kind and apply fieldValidation as upstream does.

    Returns (object with unknown fields dropped and the last of duplicate fields kept, warnings to
    send as `Warning` headers). Raises StatusError 400: malformed body, mistyped value (any
    directive), unknown or duplicate fields (Strict).
    """
    try:
        d = _decode(raw, content_type)
    except errors.StatusError as e:
        target = kind_and_version(definition)[0]
        raise errors.new_bad_request(f"the object provided is unrecognized (must be of type {target}): "
                                     f"{e.message} ({_summarize(raw)})") from None
    if not isinstance(d.obj, dict):
        target = kind_and_version(definition)[0]
        what = "null" if d.obj is None else _json_kind(d.obj, "")
        raise errors.new_bad_request(f"the object provided is unrecognized (must be of type {target}): couldn't "
                                     f"get version/kind; json parse error: json: cannot unmarshal {what} into Go "
                                     f"value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty"
                                     f"\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }} ({_summarize(raw)})")
    w = _Walk(None if d.is_yaml else d.dup_keys, sort_keys=d.is_yaml, prune=True)
    pruned = w.object(definition, d.obj)
    if w.type_errors:
        raise decode_error(definition, d.obj, w.type_errors[0])
    strict = (_yaml_dup_messages(d.yaml_dups) + w.strict) if d.is_yaml else w.strict
    return _by_directive(definition, d.obj, pruned, strict, directive)


def _by_directive(definition: str, obj: dict, pruned: dict, strict: list[str], directive: str) -> tuple[dict, list]:
    if not strict or directive == IGNORE:
        return pruned, []
    if directive == STRICT:
        raise strict_error(definition, obj, strict)
    # Warn: a YAML duplicate block is one error upstream but one warning per line
    warnings: list[str] = []
    for m in strict:
        if m.startswith("yaml: unmarshal errors:\n"):
            warnings.extend(line.strip() for line in m.splitlines()[1:])
        else:
            warnings.append(m)
    return pruned, warnings


def _summarize(raw: bytes) -> str:
    """apimachinery's summarizeData(body, 30)."""
    if not raw:
        return "<empty>"
    if raw[:1] == b"{":
        text = raw.decode("utf-8", "replace")
        return text[:30] + " ..." if len(raw) > 30 else text
    return raw[:30].hex() + " ..." if len(raw) > 30 else raw.hex()


def check_apply(definition: str, raw: bytes, applied: dict, namespace: str | None, name: str,
                directive: str) -> list[str]:
    """Server-side apply's checks of an apply configuration, in upstream's order and wording.

    The configuration is first converted to a typed value (structured-merge-diff), which refuses any field
    the schema does not declare whatever fieldValidation says: a 500 `failed to create typed patch object
    (<ns>/<name>; <group>/<version>, Kind=<kind>): .spec.foo: field not declared in schema`. Then, under
    Strict, duplicate keys in the YAML are a 400 `error strict decoding YAML: ...`; under Warn they are
    warnings (returned)."""
    w = _Walk(sort_keys=True)
    w.object(definition, applied)
    prefix = 'unknown field "'
    undeclared = [f".{m[len(prefix):-1]}: field not declared in schema" for m in w.strict if m.startswith(prefix)]
    if undeclared:
        group, _, version = str(applied.get("apiVersion") or "").rpartition("/")
        gvk = f"{group}/{version}, Kind={applied.get('kind') or ''}"
        text = undeclared[0] if len(undeclared) == 1 else "errors:\n  " + "\n  ".join(undeclared)
        raise errors.StatusError(500, "", f"failed to create typed patch object ({namespace or ''}/{name}; {gvk}): "
                                          f"{text}")
    if directive not in (STRICT, WARN):
        return []
    try:
        _, dups = _load_yaml(raw)
    except errors.StatusError:
        return []  # the configuration was decoded already; nothing more to say
    if not dups:
        return []
    if directive == STRICT:
        raise errors.new_bad_request("error strict decoding YAML: error converting YAML to JSON: "
                                     + _yaml_dup_messages(dups)[0])
    return list(dups)
