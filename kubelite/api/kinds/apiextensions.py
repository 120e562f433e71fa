"""apiextensions.k8s.io/v1: CustomResourceDefinition (defaults and validation; serving is kubelite.apiextensions)."""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import definition
from kubelite.api.registry import Obj, Registry, Resource

GROUP = "apiextensions.k8s.io"
SCOPES = ["Cluster", "Namespaced"]
CONVERSION_STRATEGIES = ["None", "Webhook"]
COLUMN_TYPES = ["boolean", "date", "integer", "number", "string"]
SCHEMA_TYPES = ["array", "boolean", "integer", "number", "object", "string"]


def default_crd(obj: Obj) -> None:
    """SetDefaults_CustomResourceDefinition(Spec) of v1."""
    spec = obj.setdefault("spec", {})
    names = spec.setdefault("names", {})
    kind = names.get("kind") or ""
    if not names.get("singular") and kind:
        names["singular"] = kind.lower()
    if not names.get("listKind") and kind:
        names["listKind"] = kind + "List"
    conv = spec.get("conversion")
    if conv is None:
        spec["conversion"] = {"strategy": "None"}
    elif conv.get("strategy") == "Webhook":
        svc = ((conv.get("webhook") or {}).get("clientConfig") or {}).get("service")
        if isinstance(svc, dict) and svc.get("port") is None:
            svc["port"] = 443


def prepare_create(obj: Obj) -> None:
    """Status is the server's: storedVersions starts with the storage version, conditions come from the controller."""
    storage = [v.get("name") for v in (obj.get("spec") or {}).get("versions") or [] if v.get("storage")]
    obj["status"] = {"acceptedNames": {"kind": "", "plural": ""}, "conditions": [], "storedVersions": storage[:1]}


def prepare_update(new: Obj, old: Obj) -> None:
    """A new storage version is appended to status.storedVersions (upstream's strategy)."""
    status = new.setdefault("status", {})
    stored = list(status.get("storedVersions") or [])
    for v in (new.get("spec") or {}).get("versions") or []:
        if v.get("storage") and v.get("name") not in stored:
            stored.append(v.get("name"))
    status["storedVersions"] = stored


def _validate_names(names: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key, rule in (("plural", common.dns1035_label), ("singular", common.dns1035_label)):
        value = names.get(key) or ""
        if not value:
            errs.append(ferr.required(f"{path}.{key}", ""))
        else:
            errs.extend(ferr.invalid(f"{path}.{key}", value, m) for m in rule(value))
    for key in ("kind", "listKind"):
        value = names.get(key) or ""
        if not value:
            errs.append(ferr.required(f"{path}.{key}", ""))
        else:
            errs.extend(ferr.invalid(f"{path}.{key}", value, m) for m in common.dns1035_label(value.lower()))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(ferr.invalid(f"{path}.listKind", names["listKind"], "kind and listKind may not be the same"))
    for i, short in enumerate(names.get("shortNames") or []):
        errs.extend(ferr.invalid(f"{path}.shortNames[{i}]", short, m) for m in common.dns1035_label(short))
    return errs


def _validate_structural(node: object, path: str, root: bool) -> list[FieldError]:
    """The cheap part of upstream's structural-schema check: every specified field has a type."""
    errs: list[FieldError] = []
    if not isinstance(node, dict):
        return errs
    typ = node.get("type")
    untyped_ok = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    if not typ and not untyped_ok:
        errs.append(ferr.required(f"{path}.type", "must not be empty at the root" if root
                                  else "must not be empty for specified object fields"))
    elif typ and typ not in SCHEMA_TYPES:
        errs.append(ferr.not_supported(f"{path}.type", typ, SCHEMA_TYPES))
    for name, sub in (node.get("properties") or {}).items():
        errs.extend(_validate_structural(sub, f"{path}.properties[{name}]", False))
    if isinstance(node.get("items"), dict):
        errs.extend(_validate_structural(node["items"], f"{path}.items", False))
    if isinstance(node.get("additionalProperties"), dict):
        errs.extend(_validate_structural(node["additionalProperties"], f"{path}.additionalProperties", False))
    return errs


def _validate_version(v: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = v.get("name") or ""
    if not name:
        errs.append(ferr.required(f"{path}.name", ""))
    else:
        errs.extend(ferr.invalid(f"{path}.name", name, m) for m in common.dns1035_label(name))
    open_api = (v.get("schema") or {}).get("openAPIV3Schema")
    if open_api is None:
        errs.append(ferr.required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
    else:
        errs.extend(_validate_structural(open_api, f"{path}.schema.openAPIV3Schema", True))
    for i, col in enumerate(v.get("additionalPrinterColumns") or []):
        p = f"{path}.additionalPrinterColumns[{i}]"
        if not col.get("name"):
            errs.append(ferr.required(f"{p}.name", ""))
        if not col.get("type"):
            errs.append(ferr.required(f"{p}.type", ""))
        elif col["type"] not in COLUMN_TYPES:
            errs.append(ferr.not_supported(f"{p}.type", col["type"], COLUMN_TYPES))
        if not col.get("jsonPath"):
            errs.append(ferr.required(f"{p}.jsonPath", ""))
    scale = (v.get("subresources") or {}).get("scale")
    if isinstance(scale, dict):
        for key in ("specReplicasPath", "statusReplicasPath"):
            if not scale.get(key):
                errs.append(ferr.required(f"{path}.subresources.scale.{key}", ""))
    return errs


def validate_crd(obj: Obj) -> list[FieldError]:
    """ValidateCustomResourceDefinition: the essentials, worded as upstream."""
    errs: list[FieldError] = []
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    name = (obj.get("metadata") or {}).get("name") or ""
    if name and name != f"{names.get('plural', '')}.{group}":
        errs.append(ferr.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if not group:
        errs.append(ferr.required("spec.group", ""))
    else:
        errs.extend(ferr.invalid("spec.group", group, m) for m in common.dns1123_subdomain(group))
        if "." not in group:
            errs.append(ferr.invalid("spec.group", group, "should be a domain with at least one dot"))
    scope = spec.get("scope") or ""
    if not scope:
        errs.append(ferr.required("spec.scope", ""))
    elif scope not in SCOPES:
        errs.append(ferr.not_supported("spec.scope", scope, SCOPES))
    versions = spec.get("versions") or []
    if not versions:
        errs.append(ferr.required("spec.versions", "must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(ferr.invalid("spec.versions", common.GoLiteral("[]apiextensions.CustomResourceDefinitionVersion"
                                                                   "{...}"),
                                 "must have exactly one version marked as storage version"))
    seen: set[str] = set()
    for i, v in enumerate(versions):
        errs.extend(_validate_version(v, f"spec.versions[{i}]"))
        if v.get("name") in seen:
            errs.append(ferr.duplicate(f"spec.versions[{i}].name", v.get("name")))
        seen.add(v.get("name"))
    errs.extend(_validate_names(names, "spec.names"))
    strategy = (spec.get("conversion") or {}).get("strategy")
    if strategy not in CONVERSION_STRATEGIES:
        errs.append(ferr.not_supported("spec.conversion.strategy", strategy, CONVERSION_STRATEGIES))
    errs.extend(_validate_conversion_webhook(spec.get("conversion") or {}))
    return errs


def _validate_conversion_webhook(conversion: Obj) -> list[FieldError]:
    """A Webhook strategy needs a webhook naming one of url/service and speaking ConversionReview v1 or v1beta1."""
    webhook = conversion.get("webhook")
    if conversion.get("strategy") != "Webhook":
        if webhook is not None:
            return [ferr.forbidden("spec.conversion.webhook", "should not be set when strategy is not set to Webhook")]
        return []
    if not webhook:
        return [ferr.required("spec.conversion.webhook", "required when strategy is set to Webhook")]
    errs: list[FieldError] = []
    cc = webhook.get("clientConfig") or {}
    if bool(cc.get("url")) == bool(cc.get("service")):
        errs.append(ferr.required("spec.conversion.webhook.clientConfig", "exactly one of url or service is required"))
    versions = webhook.get("conversionReviewVersions") or []
    if not any(v in ("v1", "v1beta1") for v in versions):
        errs.append(ferr.invalid("spec.conversion.webhook.conversionReviewVersions", list(versions),
                                 "must include at least one of v1, v1beta1"))
    return errs


def validate_crd_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = common.validate_object_meta_update(new, old) + validate_crd(new)
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    for key in ("group", "scope"):
        if ns.get(key) != os_.get(key):
            errs.append(ferr.invalid(f"spec.{key}", ns.get(key), "field is immutable"))
    if (ns.get("names") or {}).get("plural") != (os_.get("names") or {}).get("plural"):
        errs.append(ferr.invalid("spec.names.plural", (ns.get("names") or {}).get("plural"), "field is immutable"))
    return errs


def register(reg: Registry) -> None:
    reg.register(Resource(
        group=GROUP, version="v1", kind="CustomResourceDefinition", plural="customresourcedefinitions",
        namespaced=False, short_names=("crd", "crds"), subresources=("status",),
        definition=definition(GROUP, "v1", "CustomResourceDefinition"),
        default=default_crd, validate=validate_crd, validate_update=validate_crd_update,
        prepare_create=prepare_create, prepare_update=prepare_update, tracks_generation=True,
    ))
