"""The resource registry: every kind is described once here and served generically.

A `Resource` says what is special about a kind (names, scope, defaulting, validation, table
columns, strategy hooks) the way upstream's `pkg/registry/<group>/<kind>/strategy.go` does; the
HTTP layer, storage, watch, patch and table envelope know nothing about individual kinds.

Kind modules (`kubelite.api.kinds.*`) build `Resource` values and call `register()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubelite.api.errors import FieldError

Obj = dict[str, Any]


def _noop(*_args: Any) -> None:
    return None


def _no_errors(*_args: Any) -> list[FieldError]:
    return []


@dataclass(frozen=True)
class Column:
    """A Table column definition (meta.k8s.io/v1 TableColumnDefinition)."""

    name: str
    type: str = "string"  # string | integer | number | boolean | date
    format: str = ""  # "name" for the NAME column
    description: str = ""
    priority: int = 0  # 1: shown only with -o wide


@dataclass(frozen=True)
class ScaleSpec:
    """Where the scale subresource reads and writes: upstream's autoscaling/v1 Scale mapping."""

    spec_path: tuple[str, ...] = ("spec", "replicas")
    status_path: tuple[str, ...] = ("status", "replicas")
    # returns the label selector string for status.selector of the Scale object
    selector: Callable[[Obj], str] | None = None


@dataclass(frozen=True)
class Resource:
    """One served resource: group/version/kind plus the hooks that make it behave as upstream."""

    group: str  # "" for core
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # "status", "scale", "binding", "eviction", "log", "exec", "attach", "portforward", "proxy"
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    # Schema definition name in kubernetes-validate's _definitions.json, e.g. io.k8s.api.apps.v1.Deployment
    definition: str = ""
    # Table: columns after NAME (NAME is always first and generic); row() returns the cells after the name
    columns: tuple[Column, ...] = ()
    row: Callable[[Obj], list] = field(default=lambda obj: [])
    # Strategy hooks, all on plain dicts. default() mutates in place (upstream SetDefaults_*),
    # validate() runs on create after defaulting, validate_update(new, old) on update.
    default: Callable[[Obj], None] = _noop
    validate: Callable[[Obj], list[FieldError]] = _no_errors
    validate_update: Callable[[Obj, Obj], list[FieldError]] = _no_errors
    # A status-subresource write whose kind checks only metadata and status there (upstream's
    # Validate*StatusUpdate); None: validate_update, as for any update.
    validate_status_update: Callable[[Obj, Obj], list[FieldError]] | None = None
    # prepare_create(obj): e.g. reset status (Deployment) or set status.phase=Pending (Pod)
    prepare_create: Callable[[Obj], None] = _noop
    # prepare_update(new, old): called for the main resource after the generic handling
    prepare_update: Callable[[Obj, Obj], None] = _noop
    # prepare_status_update(new, old): the same for a status-subresource write (the status strategy's)
    prepare_status_update: Callable[[Obj, Obj], None] = _noop
    # metadata.generation starts at 1 and is bumped when spec (or other non-status content) changes
    tracks_generation: bool = False
    scale: ScaleSpec | None = None
    # Versions of the same kind share storage: storage_version names the version objects are stored
    # in; convert(obj, to_version) converts between served and stored versions.
    storage_version: str = ""
    storage_plural: str = ""
    convert: Callable[[Obj, str], Obj] | None = None
    # A CRD's spec.conversion.webhook when its strategy is Webhook: the API server has the webhook
    # convert between versions before convert() sets the served version's defaults.
    conversion_webhook: Obj | None = None
    # Whether `kubectl get` of this kind lists in every namespace by default etc. is kubectl's
    # business; whether the kind is listed in discovery's preferred version is ours:
    preferred: bool = True
    # How metadata.name is validated: "subdomain" (DNS-1123 subdomain, most kinds), "label"
    # (DNS-1123 label: Namespace, Service), "path" (path segment: RBAC kinds), "none"
    name_rule: str = "subdomain"
    # Cross-group shared storage (additive): when not None, the group whose key prefix this resource
    # is stored under, e.g. "" for events.k8s.io/v1 events, which upstream stores with core/v1 events.
    # convert() then also translates between the two groups' shapes, with a group-qualified
    # storage_version ("core/v1") so that it differs from the served version ("v1").
    storage_group: str | None = None
    # The NAME cell when it is not plain metadata.name (additive): upstream's StorageClass printer
    # prints "local-path (default)". None: metadata.name.
    name_cell: Callable[[Obj], str] | None = None
    # upstream prints some kinds (events) with NAME elsewhere than first: then `columns` lists every
    # column, NAME included, and row() returns every cell
    name_in_row: bool = False
    # Resources that are computed, not stored (SelfSubjectReview, SubjectAccessReview...):
    # create(obj, user) returns the response object; the kind supports only "create"
    review: Callable[[Obj, Any], Obj] | None = None
    # Served for a CustomResourceDefinition (additive): unstructured objects, no strategic merge patch,
    # schema errors reported by the CRD's validation rather than the Go decoder
    custom: bool = False
    # discovery's singularName when it is not the lowercased kind (CRDs name it: spec.names.singular);
    # "" is served as is (metrics-server's kinds declare none)
    singular_name: str | None = None
    # Read-only resources computed elsewhere than the store (additive; metrics.k8s.io, which upstream
    # serves from metrics-server): get/list go to backend.get(namespace, name) and
    # backend.list(namespace, label_selector, field_selector); every other verb is refused
    backend: Any = None

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower() if self.singular_name is None else self.singular_name

    @property
    def qualified(self) -> str:
        """`deployments.apps` or `pods`, as errors name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def storage_prefix(self) -> str:
        """Key prefix in the store, as upstream: /registry/<group>/<plural>/."""
        group = self.group if self.storage_group is None else self.storage_group
        return f"/registry/{group or 'core'}/{self.storage_plural or self.plural}/"

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.storage_prefix()}{namespace}/{name}"
        return f"{self.storage_prefix()}{name}"


class Registry:
    """All served resources, indexed the ways the API server looks them up."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], Resource] = {}
        self._by_gvk: dict[tuple[str, str, str], Resource] = {}
        # bumped on every change, so that discovery and OpenAPI know to rebuild (CRDs change it at runtime)
        self.revision = 0

    def register(self, res: Resource) -> Resource:
        old = self._by_gvr.get((res.group, res.version, res.plural))
        if old is not None and self._by_gvk.get((old.group, old.version, old.kind)) is old:
            del self._by_gvk[(old.group, old.version, old.kind)]
        self._by_gvr[(res.group, res.version, res.plural)] = res
        self._by_gvk[(res.group, res.version, res.kind)] = res
        self.revision += 1
        return res

    def unregister(self, group: str, version: str, plural: str) -> Resource | None:
        """Stop serving a resource (a CustomResourceDefinition version went away)."""
        res = self._by_gvr.pop((group, version, plural), None)
        if res is not None:
            if self._by_gvk.get((group, version, res.kind)) is res:
                del self._by_gvk[(group, version, res.kind)]
            self.revision += 1
        return res

    def get(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> Resource | None:
        return self._by_gvk.get((group, version, kind))

    def all(self) -> list[Resource]:
        return list(self._by_gvr.values())

    def group_versions(self) -> dict[str, list[str]]:
        """group -> versions in preference order (first is preferred)."""
        out: dict[str, list[str]] = {}
        for res in self._by_gvr.values():
            versions = out.setdefault(res.group, [])
            if res.version not in versions:
                if res.preferred:
                    versions.insert(0, res.version)
                else:
                    versions.append(res.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[Resource]:
        return [r for r in self._by_gvr.values() if r.group == group and r.version == version]


def default_registry() -> Registry:
    """The registry with every kind kubelite serves."""
    from kubelite.api import kinds

    reg = Registry()
    kinds.register_all(reg)
    return reg
