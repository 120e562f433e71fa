"""A CustomResourceDefinition's served versions as registry `Resource`s.

Each served version gets its names, scope, subresources (status, scale), table columns
(additionalPrinterColumns, else AGE as upstream), defaulting and validation from its schema. All
versions share one storage prefix (/registry/<group>/<plural>/) and are stored in the storage
version; versions convert by rewriting apiVersion only (upstream's `None` conversion strategy), or
through the CRD's conversion webhook first (`Webhook`, see conversion_webhook.py).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from kubelite.api import schema
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.registry import Column, Resource, ScaleSpec
from kubelite.apiextensions import jsonpath, schemas

Obj = dict[str, Any]


def served_versions(crd: Obj) -> list[Obj]:
    return [v for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")]


def storage_version(crd: Obj) -> str:
    for v in (crd.get("spec") or {}).get("versions") or []:
        if v.get("storage"):
            return v.get("name") or ""
    return ""


def _open_api(version: Obj) -> Obj | None:
    return ((version.get("schema") or {}).get("openAPIV3Schema")) or None


def definitions(crd: Obj) -> dict[str, Obj]:
    """Schema definitions of every served version (object and list kinds)."""
    spec = crd["spec"]
    names = spec["names"]
    out: dict[str, Obj] = {}
    for v in served_versions(crd):
        out.update(schemas.definitions_for(spec["group"], v["name"], names["kind"],
                                           names.get("listKind") or names["kind"] + "List", _open_api(v)))
    return out


def _path(p: str) -> tuple[str, ...]:
    return tuple(str(s) for s in jsonpath.parse(p))


def _age_column() -> Column:
    return Column("Age", "date", description=common.column_doc("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                                                              "creationTimestamp"))


def _columns(version: Obj) -> tuple[list[Column], list[tuple[str, str]]]:
    """Column definitions and (jsonPath, type) per column; upstream's default is one AGE column."""
    cols = version.get("additionalPrinterColumns")
    if cols is None:
        return [_age_column()], [(".metadata.creationTimestamp", "date")]
    out, paths = [], []
    for c in cols:
        desc = c.get("description") or f"Custom resource definition column (in JSONPath format): {c.get('jsonPath')}"
        out.append(Column(c.get("name") or "", c.get("type") or "string", c.get("format") or "", desc,
                          int(c.get("priority") or 0)))
        paths.append((c.get("jsonPath") or "", c.get("type") or "string"))
    return out, paths


def _cell(value: Any, typ: str) -> Any:
    """A printer-column cell as upstream's tableconvertor renders it (dates as ages)."""
    if value is None:
        return None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if typ == "date":
        return common.age(value) if isinstance(value, str) else None
    if typ == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if typ == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if typ == "boolean" and isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _row(paths: list[tuple[str, str]]):
    def row(obj: Obj) -> list:
        return [_cell(jsonpath.find(obj, p), t) for p, t in paths]

    return row


def _scale(version: Obj) -> ScaleSpec | None:
    sc = (version.get("subresources") or {}).get("scale")
    if sc is None:
        return None
    selector_path = sc.get("labelSelectorPath") or ""

    def selector(obj: Obj) -> str:
        found = jsonpath.find(obj, selector_path) if selector_path else None
        return found if isinstance(found, str) else ""

    return ScaleSpec(spec_path=_path(sc.get("specReplicasPath") or ".spec.replicas"),
                     status_path=_path(sc.get("statusReplicasPath") or ".status.replicas"),
                     selector=selector if selector_path else None)


def resource_for(crd: Obj, version: Obj) -> Resource:
    """The Resource serving one version of a CRD."""
    spec = crd["spec"]
    names = spec["names"]
    group, v = spec["group"], version["name"]
    definition = schemas.definition_name(group, v, names["kind"])
    open_api = _open_api(version)
    stored = f"{group}/{storage_version(crd) or v}"
    columns, paths = _columns(version)
    subs = version.get("subresources") or {}
    subresources = tuple(s for s in ("status", "scale") if subs.get(s) is not None)

    def default(obj: Obj) -> None:
        schemas.apply_defaults(open_api, obj)

    def validate(obj: Obj) -> list[FieldError]:
        return schemas.validate(open_api, obj)

    def validate_update(new: Obj, old: Obj) -> list[FieldError]:
        return common.validate_object_meta_update(new, old) + schemas.validate(open_api, new)

    def convert(obj: Obj, to: str) -> Obj:
        out = copy.deepcopy(obj)
        if to == v:  # read: served version, with the schema's defaults (upstream defaults on read too)
            out["apiVersion"] = f"{group}/{v}"
            schemas.apply_defaults(open_api, out)
        else:
            out["apiVersion"] = to
        return out

    return Resource(
        group=group, version=v, kind=names["kind"], plural=names["plural"],
        namespaced=spec.get("scope") == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
        subresources=subresources, definition=definition,
        columns=tuple(columns), row=_row(paths),
        default=default, validate=validate, validate_update=validate_update,
        tracks_generation=True, scale=_scale(version),
        storage_version=stored, convert=convert, conversion_webhook=_conversion_webhook(spec),
        preferred=v == _preferred_version(crd),
        custom=True, singular_name=names.get("singular") or names["kind"].lower(),
    )


def _conversion_webhook(spec: Obj) -> Obj | None:
    conversion = spec.get("conversion") or {}
    return conversion.get("webhook") or {} if conversion.get("strategy") == "Webhook" else None


def _preferred_version(crd: Obj) -> str:
    """Discovery's preferred version: the highest-priority served version (kube-aware version order)."""
    from kubelite.apiserver.discovery import _version_key

    served = [v["name"] for v in served_versions(crd)]
    return sorted(served, key=_version_key)[0] if served else ""


def install(registry: Any, crd: Obj) -> list[Resource]:
    """Register (or re-register) a CRD's served versions; drop versions it no longer serves."""
    spec = crd["spec"]
    group, plural = spec["group"], spec["names"]["plural"]
    defs = definitions(crd)
    wanted = {v["name"] for v in served_versions(crd)}
    for res in list(registry.all()):
        if res.custom and res.group == group and res.plural == plural and res.version not in wanted:
            registry.unregister(group, res.version, plural)
            _forget(schemas.definition_name(group, res.version, res.kind))
    schema.add_custom_definitions(defs)
    for name in defs:
        _forget_cached_type(name)
    return [registry.register(resource_for(crd, v)) for v in served_versions(crd)]


def uninstall(registry: Any, crd: Obj) -> None:
    """Stop serving every version of a CRD (it was deleted)."""
    spec = crd.get("spec") or {}
    group, names = spec.get("group", ""), spec.get("names") or {}
    for res in list(registry.all()):
        if res.custom and res.group == group and res.plural == names.get("plural"):
            registry.unregister(group, res.version, res.plural)
            _forget(schemas.definition_name(group, res.version, res.kind))
            _forget(schemas.definition_name(group, res.version, names.get("listKind") or res.kind + "List"))


def _forget(name: str) -> None:
    schema.remove_custom_definitions([name])
    _forget_cached_type(name)


def _forget_cached_type(name: str) -> None:
    """Server-side apply caches a type per definition name; a CRD update may change it."""
    try:
        from kubelite.apiserver import managedfields

        managedfields._root_nodes.pop(name, None)
    except (ImportError, AttributeError):
        pass
