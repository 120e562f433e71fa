"""rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding.

Mirrors pkg/apis/rbac/v1/defaults.go and pkg/apis/rbac/validation/validation.go. Roles have no
printer upstream, so their table is the default one (NAME, CREATED AT).
"""

from __future__ import annotations

import time

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import GoRepr, age_cell, age_column, definition
from kubelite.api.registry import Column, Obj, Registry, Resource

GROUP = "rbac.authorization.k8s.io"


def validate_policy_rule(rule: dict, namespaced: bool, path: str) -> list[FieldError]:
    """ValidatePolicyRule."""
    errs: list[FieldError] = []
    if not rule.get("verbs"):
        errs.append(ferr.required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs") or []
    if urls:
        if namespaced:
            errs.append(ferr.invalid(f"{path}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            errs.append(ferr.invalid(f"{path}.nonResourceURLs", urls,
                                     "rules cannot apply to both regular resources and non-resource URLs"))
        return errs
    if not rule.get("apiGroups"):
        errs.append(ferr.required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        errs.append(ferr.required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errs


def _validate_role(obj: Obj, namespaced: bool) -> list[FieldError]:
    errs = common.validate_object_meta(obj, namespaced, "path")
    for i, rule in enumerate(obj.get("rules") or []):
        errs.extend(validate_policy_rule(rule or {}, namespaced, f"rules[{i}]"))
    return errs


def validate_role(obj: Obj) -> list[FieldError]:
    return _validate_role(obj, True)


def validate_clusterrole(obj: Obj) -> list[FieldError]:
    errs = _validate_role(obj, False)
    agg = obj.get("aggregationRule")
    if agg is not None:
        selectors = agg.get("clusterRoleSelectors") or []
        if not selectors:
            errs.append(ferr.required("aggregationRule.clusterRoleSelectors",
                                      "at least one clusterRoleSelector required if aggregationRule is non-nil"))
        for i, sel in enumerate(selectors):
            errs.extend(common.validate_label_selector(sel, f"aggregationRule.clusterRoleSelectors[{i}]"))
    return errs


def default_subjects(obj: Obj) -> None:
    """SetDefaults_Subject and SetDefaults_(Cluster)RoleBinding."""
    for s in obj.get("subjects") or []:
        if not s.get("apiGroup"):
            if s.get("kind") == "ServiceAccount":
                s["apiGroup"] = ""
            elif s.get("kind") in ("User", "Group"):
                s["apiGroup"] = GROUP
    ref = obj.setdefault("roleRef", {})
    if not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP


def validate_subject(subject: dict, namespaced: bool, path: str) -> list[FieldError]:
    """ValidateRoleBindingSubject."""
    errs: list[FieldError] = []
    name = subject.get("name") or ""
    if not name:
        errs.append(ferr.required(f"{path}.name", ""))
    kind, api_group = subject.get("kind") or "", subject.get("apiGroup") or ""
    if kind == "ServiceAccount":
        if name:
            errs.extend(ferr.invalid(f"{path}.name", name, m) for m in common.dns1123_subdomain(name))
        if api_group:
            errs.append(ferr.not_supported(f"{path}.apiGroup", api_group, [""]))
        if not namespaced and not subject.get("namespace"):
            errs.append(ferr.required(f"{path}.namespace", ""))
    elif kind in ("User", "Group"):
        if api_group != GROUP:
            errs.append(ferr.not_supported(f"{path}.apiGroup", api_group, [GROUP]))
    else:
        errs.append(ferr.not_supported(f"{path}.kind", kind, ["ServiceAccount", "User", "Group"]))
    return errs


def _validate_binding(obj: Obj, namespaced: bool) -> list[FieldError]:
    errs = common.validate_object_meta(obj, namespaced, "path")
    ref = obj.get("roleRef") or {}
    if (ref.get("apiGroup") or "") != GROUP:
        errs.append(ferr.not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        errs.append(ferr.not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    name = ref.get("name") or ""
    if not name:
        errs.append(ferr.required("roleRef.name", ""))
    else:
        errs.extend(ferr.invalid("roleRef.name", name, m) for m in common.path_segment_name(name))
    for i, s in enumerate(obj.get("subjects") or []):
        errs.extend(validate_subject(s or {}, namespaced, f"subjects[{i}]"))
    return errs


def validate_rolebinding(obj: Obj) -> list[FieldError]:
    return _validate_binding(obj, True)


def validate_clusterrolebinding(obj: Obj) -> list[FieldError]:
    return _validate_binding(obj, False)


def _go_role_ref(ref: dict) -> GoRepr:
    def q(key: str) -> str:
        return ferr.go_value(ref.get(key) or "")

    return GoRepr(f"rbac.RoleRef{{APIGroup:{q('apiGroup')}, Kind:{q('kind')}, Name:{q('name')}}}")


def _binding_update(namespaced: bool):
    def validate_update(new: Obj, old: Obj) -> list[FieldError]:
        errs = _validate_binding(new, namespaced)
        nr, orf = new.get("roleRef") or {}, old.get("roleRef") or {}
        if any((nr.get(k) or "") != (orf.get(k) or "") for k in ("apiGroup", "kind", "name")):
            errs.append(ferr.invalid("roleRef", _go_role_ref(nr), "cannot change roleRef"))
        return errs

    return validate_update


def _rules_update(validate):
    return lambda new, old: validate(new)


def _created_at(obj: Obj) -> list:
    """The default table's "Created At" cell: creationTimestamp in RFC 3339, UTC."""
    ts = common.parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts is not None else ""]


CREATED_AT_COLUMNS = (
    Column("Created At", "date", description="CreationTimestamp is a timestamp representing the server time when this "
           "object was created."),
)


def subjects_strings(subjects: list) -> tuple[list[str], list[str], list[str]]:
    """rbac.SubjectsStrings: users, groups and service accounts (`namespace/name`)."""
    users, groups, sas = [], [], []
    for s in subjects or []:
        kind = s.get("kind")
        if kind == "ServiceAccount":
            sas.append(f"{s.get('namespace') or ''}/{s.get('name') or ''}")
        elif kind == "User":
            users.append(s.get("name") or "")
        elif kind == "Group":
            groups.append(s.get("name") or "")
    return users, groups, sas


def binding_row(obj: Obj) -> list:
    ref = obj.get("roleRef") or {}
    users, groups, sas = subjects_strings(obj.get("subjects") or [])
    return [f"{ref.get('kind') or ''}/{ref.get('name') or ''}", age_cell(obj),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


def _binding_columns(what: str) -> tuple[Column, ...]:
    return (
        Column("Role", "string", description="RoleRef can reference a Role in the current namespace or a ClusterRole "
               "in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error."),
        age_column(),
        Column("Users", "string", priority=1, description=f"Users in the {what}"),
        Column("Groups", "string", priority=1, description=f"Groups in the {what}"),
        Column("ServiceAccounts", "string", priority=1, description=f"ServiceAccounts in the {what}"),
    )


def register(reg: Registry) -> None:
    g, v = GROUP, "v1"
    reg.register(Resource(
        group=g, version=v, kind="Role", plural="roles", namespaced=True, definition=definition(g, v, "Role"),
        columns=CREATED_AT_COLUMNS, row=_created_at, validate=validate_role,
        validate_update=_rules_update(validate_role), name_rule="path",
    ))
    reg.register(Resource(
        group=g, version=v, kind="ClusterRole", plural="clusterroles", namespaced=False,
        definition=definition(g, v, "ClusterRole"), columns=CREATED_AT_COLUMNS, row=_created_at,
        validate=validate_clusterrole, validate_update=_rules_update(validate_clusterrole), name_rule="path",
    ))
    reg.register(Resource(
        group=g, version=v, kind="RoleBinding", plural="rolebindings", namespaced=True,
        definition=definition(g, v, "RoleBinding"), columns=_binding_columns("roleBinding"), row=binding_row,
        default=default_subjects, validate=validate_rolebinding, validate_update=_binding_update(True),
        name_rule="path",
    ))
    reg.register(Resource(
        group=g, version=v, kind="ClusterRoleBinding", plural="clusterrolebindings", namespaced=False,
        definition=definition(g, v, "ClusterRoleBinding"), columns=_binding_columns("clusterRoleBinding"),
        row=binding_row, default=default_subjects, validate=validate_clusterrolebinding,
        validate_update=_binding_update(False), name_rule="path",
    ))
