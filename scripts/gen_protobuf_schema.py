#!/usr/bin/env python3
"""Generate kubelite/api/protobuf_schema/*.py: the protobuf message tables of the Kubernetes 1.32 API.

Source of the facts: the compiled descriptors (FileDescriptorProto) of upstream's
k8s.io/api/<group>/<version>/generated.proto and k8s.io/apimachinery/.../generated.proto that
gogo-protobuf embeds, gzipped, in every client binary; we read them from the kubectl 1.32 binary,
which is exactly the encoder whose bodies the server must decode. The descriptors carry field
numbers, names, types, cardinality and the gogoproto options (nullable=false marks a non-pointer
Go field, customname the Go field name), which is all the decoder needs. Nothing of them is
committed: the script writes our own compact tables.

Every message is cross-checked against the v1.32 JSON schema (kubelite.api.schema): each proto
field name must be a JSON property of the same-named definition, or be a Go embedded struct
that JSON inlines (its fields are then properties of the parent). Mismatches are printed, and
the script fails on them unless they are mapped in JSON_NAMES.

    python scripts/gen_protobuf_schema.py [--kubectl /usr/bin/kubectl] [--scratch /tmp/pbdesc]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import zlib
from collections.abc import Iterable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from kubelite.api import schema  # noqa: E402
from kubelite.api.protobuf import iter_fields  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kubelite", "api", "protobuf_schema")

# proto package -> module name; meta/runtime/resource/intstr first (the others depend on them)
PACKAGES = {
    "k8s.io.apimachinery.pkg.apis.meta.v1": "meta_v1",
    "k8s.io.apimachinery.pkg.runtime": "runtime",
    "k8s.io.apimachinery.pkg.runtime.schema": "runtime_schema",
    "k8s.io.apimachinery.pkg.api.resource": "resource",
    "k8s.io.apimachinery.pkg.util.intstr": "intstr",
    "k8s.io.api.core.v1": "core_v1",
    "k8s.io.api.apps.v1": "apps_v1",
    "k8s.io.api.batch.v1": "batch_v1",
    "k8s.io.api.rbac.v1": "rbac_v1",
    "k8s.io.api.networking.v1": "networking_v1",
    "k8s.io.api.policy.v1": "policy_v1",
    "k8s.io.api.scheduling.v1": "scheduling_v1",
    "k8s.io.api.autoscaling.v1": "autoscaling_v1",
    "k8s.io.api.autoscaling.v2": "autoscaling_v2",
    "k8s.io.api.authentication.v1": "authentication_v1",
    "k8s.io.api.authorization.v1": "authorization_v1",
    "k8s.io.api.coordination.v1": "coordination_v1",
    "k8s.io.api.discovery.v1": "discovery_v1",
    "k8s.io.api.storage.v1": "storage_v1",
    "k8s.io.api.events.v1": "events_v1",
    "k8s.io.api.certificates.v1": "certificates_v1",
    "k8s.io.api.admissionregistration.v1": "admissionregistration_v1",
    "k8s.io.api.node.v1": "node_v1",
    "k8s.io.api.flowcontrol.v1": "flowcontrol_v1",
}

# types decoded by hand in kubelite.api.protobuf (their JSON form is not their message shape)
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1." + n for n in ("Time", "MicroTime", "Duration", "FieldsV1", "Verbs")
} | {
    "k8s.io.apimachinery.pkg.runtime.RawExtension", "k8s.io.apimachinery.pkg.api.resource.Quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString",
} | {f"k8s.io.api.{g}.v1.ExtraValue" for g in ("authentication", "authorization", "certificates")}

# proto field names that differ from the Go json tag (found by the cross-check below)
JSON_NAMES: dict[str, dict[str, str]] = {
    "k8s.io.api.networking.v1.IngressClassParametersReference": {"aPIGroup": "apiGroup"},
    "k8s.io.api.authentication.v1.BoundObjectReference": {"uID": "uid"},
    "k8s.io.api.admissionregistration.v1.MutatingWebhookConfiguration": {"Webhooks": "webhooks"},
    "k8s.io.api.admissionregistration.v1.ValidatingWebhookConfiguration": {"Webhooks": "webhooks"},
    "k8s.io.api.admissionregistration.v1.Validation": {"Expression": "expression"},
    "k8s.io.api.admissionregistration.v1.Variable": {"Name": "name", "Expression": "expression"},
}

# value fields named after their type that Go does not embed, where no JSON definition tells
NOT_INLINE = {"podSignature"}  # core/v1 PreferAvoidPodsEntry (node annotation only)

# repeated fields whose Go json tag has no omitempty: a nil slice is `null` in JSON (checked in types.go)
NULL_WHEN_ABSENT = {"k8s.io.api.rbac.v1.ClusterRole": {"rules"}, "k8s.io.api.rbac.v1.Role": {"rules"}}

SCALARS = {1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32",
           8: "bool", 9: "string", 12: "bytes", 13: "uint32", 14: "enum", 15: "sfixed32",
           16: "sfixed64", 17: "sint32", 18: "sint64"}


# ---------------------------------------------------------------------------------------------
# reading the descriptors

def _s(v: Any) -> str:
    return bytes(v).decode()


def extract_descriptors(binary: str) -> Iterable[bytes]:
    """The gzipped FileDescriptorProtos of generated.proto files embedded in a Go binary."""
    data = open(binary, "rb").read()
    for m in re.finditer(re.escape(b"\x1f\x8b\x08\x00\x00\x00\x00\x00"), data):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[m.start():m.start() + (1 << 20)])
        except zlib.error:
            continue
        if raw[:1] == b"\n" and b"generated.proto" in raw[:200]:
            yield raw


def parse_field(buf: bytes) -> dict[str, Any]:
    f: dict[str, Any] = {"nullable": True, "customname": "", "label": 1, "type_name": ""}
    for num, _wt, val in iter_fields(buf):
        if num == 1:
            f["name"] = _s(val)
        elif num == 3:
            f["number"] = val
        elif num == 4:
            f["label"] = val
        elif num == 5:
            f["type"] = val
        elif num == 6:
            f["type_name"] = _s(val).lstrip(".")
        elif num == 8:  # FieldOptions with gogoproto extensions
            for onum, _owt, oval in iter_fields(val):
                if onum == 65001:
                    f["nullable"] = bool(oval)
                elif onum == 65004:
                    f["customname"] = _s(oval)
    return f


def parse_message(buf: bytes, prefix: str, out: dict[str, dict[str, Any]]) -> None:
    msg: dict[str, Any] = {"fields": [], "map_entry": False}
    nested: list[bytes] = []
    for num, _wt, val in iter_fields(buf):
        if num == 1:
            msg["name"] = prefix + "." + _s(val)
        elif num == 2:
            msg["fields"].append(parse_field(val))
        elif num == 3:
            nested.append(val)
        elif num == 7:
            for onum, _owt, oval in iter_fields(val):
                if onum == 7:
                    msg["map_entry"] = bool(oval)
    out[msg["name"]] = msg
    for n in nested:
        parse_message(n, msg["name"], out)


def parse_file(raw: bytes) -> tuple[str, dict[str, dict[str, Any]]]:
    package = ""
    bodies: list[bytes] = []
    for num, _wt, val in iter_fields(raw):
        if num == 2:
            package = _s(val)
        elif num == 4:
            bodies.append(val)
    msgs: dict[str, dict[str, Any]] = {}
    for b in bodies:
        parse_message(b, package, msgs)
    return package, msgs


# ---------------------------------------------------------------------------------------------
# cross-check with the JSON schema and build the tables

def definition_name(message: str) -> str:
    return "io." + message.replace("k8s.io.", "k8s.", 1) if message.startswith("k8s.io.") else message


def properties(message: str) -> tuple[dict[str, Any] | None, list[str]]:
    d = schema.definitions().get(definition_name(message))
    if d is None:
        return None, []
    return d.get("properties") or {}, list(d.get("required") or ())


def type_of(f: dict[str, Any], all_msgs: dict[str, dict[str, Any]]) -> tuple[Any, str]:
    """(type, flags) of a field: scalar name or message name, or (key, value) for a map."""
    if f["type"] == 11:
        target = all_msgs.get(f["type_name"])
        if target is not None and target["map_entry"]:
            kv = {g["name"]: g for g in target["fields"]}
            return (type_of(kv["key"], all_msgs)[0], type_of(kv["value"], all_msgs)[0]), "m"
        return f["type_name"], ""
    return SCALARS[f["type"]], ""


def is_embedded(f: dict[str, Any], parent_props: dict[str, Any] | None, all_msgs: dict[str, Any]) -> bool:
    """A Go embedded struct that encoding/json inlines (VolumeSource in Volume, ProbeHandler in Probe).

    Go names an embedded field after its type and never makes it a pointer; ObjectMeta, also
    embedded, carries a json name, so a field whose name is a JSON property is never inlined.
    Without the parent's JSON properties to tell, only types with no JSON definition of their
    own (which exist only to be inlined) count.
    """
    t = f["type_name"]
    if f["name"] in NOT_INLINE:
        return False
    if not (f["type"] == 11 and f["label"] != 3 and not f["nullable"] and f["customname"] == t.rsplit(".", 1)[-1]
            and t in all_msgs):
        return False
    if parent_props is None:
        return properties(t)[0] is None and f["name"] != "metadata"
    return f["name"] not in parent_props


def inline_names(message: str, all_msgs: dict[str, dict[str, Any]]) -> set[str]:
    """The JSON names an embedded struct contributes to its parent (its own embedded ones flattened)."""
    out: set[str] = set()
    for f in all_msgs[message]["fields"]:
        if is_embedded(f, None, all_msgs):
            out |= inline_names(f["type_name"], all_msgs)
        else:
            out.add(JSON_NAMES.get(message, {}).get(f["name"], f["name"]))
    return out


def build(all_msgs: dict[str, dict[str, Any]], wanted: set[str]) -> tuple[dict[str, list[tuple]], list[str]]:
    tables: dict[str, list[tuple]] = {}
    problems: list[str] = []
    for name, msg in sorted(all_msgs.items()):
        if msg["map_entry"] or name in SPECIAL or name.rsplit(".", 1)[0] not in wanted:
            continue
        props, required = properties(name)
        if props is None:
            problems.append(f"note: {name} has no JSON schema definition; proto names used as is")
        rows: list[tuple] = []
        covered: set[str] = set()
        for f in msg["fields"]:
            typ, flags = type_of(f, all_msgs)
            jname = JSON_NAMES.get(name, {}).get(f["name"], f["name"])
            if f["label"] == 3 and not flags:
                flags = "r"
            elif not flags and f["nullable"] and f["type"] != 11:
                flags = "p"  # pointer in Go: a zero value on the wire was set on purpose
            if jname in required and not flags:
                flags = "q"
            if is_embedded(f, props, all_msgs):
                flags += "i"  # Go embedded struct, inlined by encoding/json
                sub = inline_names(f["type_name"], all_msgs)
                covered |= sub
                if props is not None and not sub <= set(props):
                    problems.append(f"MISMATCH: {name}.{f['name']} inlines {sorted(sub - set(props))}, "
                                    "which are not JSON properties")
            elif props is not None and jname not in props:
                problems.append(f"MISMATCH: {name}.{f['name']} (#{f['number']}) is not a JSON property")
            if props is not None and jname in props:  # base64 in JSON <=> bytes in protobuf
                prop = props[jname]
                fmt = (prop.get("additionalProperties") or prop.get("items") or prop).get("format")
                if (fmt == "byte") != ("bytes" in (typ if isinstance(typ, tuple) else (typ,))):
                    problems.append(f"MISMATCH: {name}.{jname}: JSON format {fmt!r}, protobuf type {typ!r}")
            if jname in NULL_WHEN_ABSENT.get(name, ()):
                flags += "n"
            covered.add(jname)
            rows.append((f["number"], jname, typ, flags))
        if props is not None:
            missing = set(props) - covered - {"apiVersion", "kind"}
            for p in sorted(missing):
                problems.append(f"note: {name}: JSON property {p!r} has no protobuf field")
        tables[name] = rows
    return tables, problems


def kinds(tables: dict[str, list[tuple]]) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for message in tables:
        d = schema.definitions().get(definition_name(message)) or {}
        for gvk in d.get("x-kubernetes-group-version-kind", ()):
            group, version = gvk.get("group", ""), gvk["version"]
            api_version = f"{group}/{version}" if group else version
            if message.startswith("k8s.io.apimachinery.pkg.apis.meta.v1."):
                continue  # meta kinds are found by name under any group version
            out[(api_version, gvk["kind"])] = message
    return out


# ---------------------------------------------------------------------------------------------
# writing

HEADER = '''"""Protobuf message table for {package} (Kubernetes 1.32).

Generated by scripts/gen_protobuf_schema.py; do not edit. Each message maps to its fields in Go
struct order as (number, JSON name, type, flags): type is a scalar name, a message name (".X" is
relative to this package) or (key, value) for a map; flags: r repeated, m map, p pointer (zero
values kept), q required (zero values kept), i inlined embedded struct, n null when absent.
"""

PACKAGE = {package!r}

MESSAGES = {{
'''


def _rel(t: Any, package: str) -> Any:
    if isinstance(t, tuple):
        return tuple(_rel(x, package) for x in t)
    if isinstance(t, str) and t.startswith(package + ".") and "." not in t[len(package) + 1:]:
        return t[len(package):]
    return t


def write_module(package: str, module: str, tables: dict[str, list[tuple]],
                 kind_map: dict[tuple[str, str], str]) -> None:
    lines = [HEADER.format(package=package)]
    for name, rows in tables.items():
        if name.rsplit(".", 1)[0] != package:
            continue
        lines.append(f"    {name[len(package):]!r}: (\n")
        for num, jname, typ, flags in rows:
            lines.append(f"        ({num}, {jname!r}, {_rel(typ, package)!r}, {flags!r}),\n")
        lines.append("    ),\n")
    lines.append("}\n\nKINDS = {\n")
    for (av, kind), msg in sorted(kind_map.items()):
        if msg.rsplit(".", 1)[0] == package:
            lines.append(f"    ({av!r}, {kind!r}): {msg[len(package):]!r},\n")
    lines.append("}\n")
    with open(os.path.join(OUT, module + ".py"), "w") as f:
        f.write("".join(lines))


INIT = '''"""Protobuf message tables of the Kubernetes 1.32 API, for kubelite.api.protobuf.

Generated by scripts/gen_protobuf_schema.py (from the descriptors compiled from upstream's
generated.proto files, cross-checked against the v1.32 JSON schema); do not edit.
"""

from __future__ import annotations

import importlib
from typing import Any

MODULES = {modules!r}


def _expand(t: Any, package: str) -> Any:
    if isinstance(t, tuple):
        return tuple(_expand(x, package) for x in t)
    return package + t if t.startswith(".") else t


def messages() -> dict[str, tuple[tuple[int, str, Any, str], ...]]:
    """Every message by full name -> its (number, JSON name, type, flags) rows."""
    out: dict[str, tuple[tuple[int, str, Any, str], ...]] = {{}}
    for m in MODULES:
        mod = importlib.import_module(f"{{__name__}}.{{m}}")
        for name, rows in mod.MESSAGES.items():
            out[mod.PACKAGE + name] = tuple((n, j, _expand(t, mod.PACKAGE), f) for n, j, t, f in rows)
    return out


def kinds() -> dict[tuple[str, str], str]:
    """(apiVersion, kind) -> message full name, for the kinds that travel as top-level objects."""
    out: dict[tuple[str, str], str] = {{}}
    for m in MODULES:
        mod = importlib.import_module(f"{{__name__}}.{{m}}")
        for key, name in mod.KINDS.items():
            out[key] = mod.PACKAGE + name
    return out
'''


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kubectl", default="/usr/bin/kubectl")
    ap.add_argument("--scratch", default="/tmp/pbdesc", help="where to keep the extracted descriptors")
    args = ap.parse_args()
    os.makedirs(args.scratch, exist_ok=True)
    all_msgs: dict[str, dict[str, Any]] = {}
    found: set[str] = set()
    for raw in extract_descriptors(args.kubectl):
        package, msgs = parse_file(raw)
        with open(os.path.join(args.scratch, package + ".pb"), "wb") as f:
            f.write(raw)
        if package in PACKAGES:
            found.add(package)
            all_msgs.update(msgs)
    missing = set(PACKAGES) - found
    if missing:
        print("missing descriptors:", sorted(missing), file=sys.stderr)
        return 1
    tables, problems = build(all_msgs, set(PACKAGES))
    for name, rows in tables.items():  # every referenced message must be decodable
        for _n, _j, typ, _f in rows:
            for t in typ if isinstance(typ, tuple) else (typ,):
                if "." in t and t not in tables and t not in SPECIAL:
                    problems.append(f"MISMATCH: {name} refers to {t}, which has no table")
    for p in problems:
        print(p)
    os.makedirs(OUT, exist_ok=True)
    kind_map = kinds(tables)
    for package, module in PACKAGES.items():
        write_module(package, module, tables, kind_map)
    with open(os.path.join(OUT, "__init__.py"), "w") as f:
        f.write(INIT.format(modules=tuple(PACKAGES.values())))
    print(f"{len(tables)} messages, {sum(len(r) for r in tables.values())} fields, {len(kind_map)} kinds")
    return 1 if any(p.startswith("MISMATCH") for p in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
