"""Upstream's v1.32 type definitions, from the kubernetes-validate package (the one schema source).

Used for the served OpenAPI v3 documents, for structural validation (unknown and mistyped
fields) and for strategic-merge-patch metadata (merge keys and patch strategies).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import orjson

SCHEMA_VERSION = "v1.32.0-local"
REF_PREFIX = "#/$defs/"


@functools.cache
def definitions() -> dict[str, dict[str, Any]]:
    """All type definitions by name (io.k8s.api.apps.v1.Deployment ...). Read-only: do not mutate."""
    import kubernetes_validate

    path = os.path.join(
        os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema", SCHEMA_VERSION, "_definitions.json"
    )
    with open(path, "rb") as f:
        return orjson.loads(f.read())["$defs"]


def ref_name(ref: str) -> str:
    """`#/$defs/io.k8s.api.core.v1.PodSpec` -> `io.k8s.api.core.v1.PodSpec`."""
    return ref[len(REF_PREFIX):] if ref.startswith(REF_PREFIX) else ref


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a $ref (if any) to its definition."""
    ref = schema.get("$ref")
    if ref:
        return definitions()[ref_name(ref)]
    return schema


def definition_for_kind(group: str, version: str, kind: str) -> str | None:
    """The definition name carrying x-kubernetes-group-version-kind for (group, version, kind)."""
    return _custom_gvk.get((group, version, kind)) or _gvk_index().get((group, version, kind))


# Definitions of custom resources (CustomResourceDefinition schemas) join upstream's at runtime, so that
# OpenAPI, field validation, pruning and apply treat them like any other kind. Owned by this module.
_custom_gvk: dict[tuple[str, str, str], str] = {}
_custom_names: set[str] = set()


def add_custom_definitions(defs: dict[str, dict[str, Any]]) -> None:
    """Add (or replace) custom-resource definitions; each may carry x-kubernetes-group-version-kind."""
    base = definitions()
    for name, d in defs.items():
        base[name] = d
        _custom_names.add(name)
        for gvk in d.get("x-kubernetes-group-version-kind", ()):
            _custom_gvk[(gvk.get("group", ""), gvk["version"], gvk["kind"])] = name


def remove_custom_definitions(names: list[str]) -> None:
    base = definitions()
    for name in names:
        if name in _custom_names:
            _custom_names.discard(name)
            base.pop(name, None)
    for key in [k for k, v in _custom_gvk.items() if v not in _custom_names]:
        del _custom_gvk[key]


def is_custom(name: str) -> bool:
    """Whether a definition describes a custom resource (unstructured: no Go decoder type errors)."""
    return name in _custom_names


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, d in definitions().items():
        for gvk in d.get("x-kubernetes-group-version-kind", ()):
            out.setdefault((gvk.get("group", ""), gvk["version"], gvk["kind"]), name)
    return out


def field_schema(definition: str, path: list[str]) -> dict[str, Any] | None:
    """The schema of a field reached from a definition by property names ("[]" steps into arrays/maps)."""
    node: dict[str, Any] = definitions()[definition]
    for step in path:
        node = resolve(node)
        if step == "[]":
            nxt = node.get("items") or node.get("additionalProperties")
        else:
            nxt = (node.get("properties") or {}).get(step)
        if not isinstance(nxt, dict):
            return None
        node = nxt
    return node
