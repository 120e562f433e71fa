"""admissionregistration.k8s.io/v1: webhook configurations and ValidatingAdmissionPolicy(Binding).

Stored with upstream's defaults, essential validation and `kubectl get` columns. CEL expressions
(matchConditions, validations, variables) are compiled on write, so a bad one is refused as upstream
refuses it (`compilation failed: ...`); the admission plugins in kubelite/apiserver/admission/ run them.
"""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import age_cell, age_column, definition
from kubelite.api.registry import Column, Obj, Registry, Resource

GROUP = "admissionregistration.k8s.io"
FAILURE_POLICIES = ["Fail", "Ignore"]
MATCH_POLICIES = ["Equivalent", "Exact"]
SIDE_EFFECTS = ["None", "NoneOnDryRun"]
REINVOCATION = ["IfNeeded", "Never"]
REVIEW_VERSIONS = ["v1", "v1beta1"]
SCOPES = ["*", "Cluster", "Namespaced"]
VALIDATION_ACTIONS = ["Audit", "Deny", "Warn"]
MAX_MATCH_CONDITIONS = 64


def _validate_cel(expression, path: str, declared) -> list[FieldError]:
    """Compile `expression` as the admission plugins will; its error is upstream's field detail."""
    from kubelite.apiserver.admission import cel

    if not expression:
        return [ferr.required(path, "")]
    try:
        cel.compile_expression(str(expression), declared)
    except cel.CompileError as e:
        return [ferr.invalid(path, expression, str(e))]
    return []


def validate_match_conditions(conditions, path: str, declared) -> list[FieldError]:
    """ValidateMatchConditions: named (qualified names, unique), at most 64, each compiling."""
    errs: list[FieldError] = []
    if not conditions:
        return errs
    if len(conditions) > MAX_MATCH_CONDITIONS:
        errs.append(ferr.too_many(path, len(conditions), MAX_MATCH_CONDITIONS))
    seen: set[str] = set()
    for i, c in enumerate(conditions):
        c = c if isinstance(c, dict) else {}
        p = f"{path}[{i}]"
        name = c.get("name") or ""
        if not name:
            errs.append(ferr.required(f"{p}.name", ""))
        else:
            errs.extend(ferr.invalid(f"{p}.name", name, m) for m in common.qualified_name(name))
            if name in seen:
                errs.append(ferr.duplicate(f"{p}.name", name))
            seen.add(name)
        errs.extend(_validate_cel(c.get("expression"), f"{p}.expression", declared))
    return errs


def _default_rules(rules: list) -> None:
    for r in rules or []:
        if isinstance(r, dict) and r.get("scope") is None:
            r["scope"] = "*"


def _default_webhook(w: Obj, mutating: bool) -> None:
    """SetDefaults_ValidatingWebhook / SetDefaults_MutatingWebhook."""
    w.setdefault("failurePolicy", "Fail")
    w.setdefault("matchPolicy", "Equivalent")
    w.setdefault("namespaceSelector", {})
    w.setdefault("objectSelector", {})
    w.setdefault("timeoutSeconds", 10)
    if mutating:
        w.setdefault("reinvocationPolicy", "Never")
    _default_rules(w.get("rules"))
    svc = (w.get("clientConfig") or {}).get("service")
    if isinstance(svc, dict) and svc.get("port") is None:
        svc["port"] = 443


def _defaulter(mutating: bool):
    def default(obj: Obj) -> None:
        for w in obj.get("webhooks") or []:
            if isinstance(w, dict):
                _default_webhook(w, mutating)

    return default


def _validate_webhook(w: Obj, path: str, mutating: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    name = w.get("name") or ""
    if not name:
        errs.append(ferr.required(f"{path}.name", ""))
    else:
        errs.extend(ferr.invalid(f"{path}.name", name, m) for m in common.dns1123_subdomain(name))
        if name.count(".") < 2:
            errs.append(ferr.invalid(f"{path}.name", name, "should be a domain with at least three segments "
                                                          "separated by dots"))
    versions = w.get("admissionReviewVersions")
    if not versions:
        errs.append(ferr.required(f"{path}.admissionReviewVersions", "must specify one of v1, v1beta1"))
    elif not any(v in REVIEW_VERSIONS for v in versions):
        errs.append(ferr.invalid(f"{path}.admissionReviewVersions", versions, "must include at least one of v1, "
                                 "v1beta1"))
    side = w.get("sideEffects")
    if side is None:
        errs.append(ferr.required(f"{path}.sideEffects", "must specify one of None, NoneOnDryRun"))
    elif side not in SIDE_EFFECTS:
        errs.append(ferr.not_supported(f"{path}.sideEffects", side, SIDE_EFFECTS))
    cc = w.get("clientConfig") or {}
    if cc.get("url") and cc.get("service"):
        errs.append(ferr.required(f"{path}.clientConfig", "exactly one of url or service is required"))
    elif not cc.get("url") and not cc.get("service"):
        errs.append(ferr.required(f"{path}.clientConfig", "exactly one of url or service is required"))
    for key, allowed in (("failurePolicy", FAILURE_POLICIES), ("matchPolicy", MATCH_POLICIES)):
        if w.get(key) is not None and w[key] not in allowed:
            errs.append(ferr.not_supported(f"{path}.{key}", w[key], allowed))
    if mutating and w.get("reinvocationPolicy") is not None and w["reinvocationPolicy"] not in REINVOCATION:
        errs.append(ferr.not_supported(f"{path}.reinvocationPolicy", w["reinvocationPolicy"], REINVOCATION))
    t = w.get("timeoutSeconds")
    if isinstance(t, int) and not 1 <= t <= 30:
        errs.append(ferr.invalid(f"{path}.timeoutSeconds", t, "the timeout value must be between 1 and 30 "
                                                              "seconds"))
    for i, r in enumerate(w.get("rules") or []):
        scope = (r or {}).get("scope")
        if scope is not None and scope not in SCOPES:
            errs.append(ferr.not_supported(f"{path}.rules[{i}].scope", scope, SCOPES))
    errs.extend(common.validate_label_selector(w.get("namespaceSelector"), f"{path}.namespaceSelector"))
    errs.extend(common.validate_label_selector(w.get("objectSelector"), f"{path}.objectSelector"))
    from kubelite.apiserver.admission.cel import WEBHOOK_VARS

    errs.extend(validate_match_conditions(w.get("matchConditions"), f"{path}.matchConditions", WEBHOOK_VARS))
    return errs


def _validator(mutating: bool):
    def validate(obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        seen: set[str] = set()
        for i, w in enumerate(obj.get("webhooks") or []):
            w = w or {}
            errs.extend(_validate_webhook(w, f"webhooks[{i}]", mutating))
            if w.get("name") in seen:
                errs.append(ferr.duplicate(f"webhooks[{i}].name", w.get("name")))
            seen.add(w.get("name"))
        return errs

    return validate


def webhooks_row(obj: Obj) -> list:
    return [len(obj.get("webhooks") or []), age_cell(obj)]


def default_policy(obj: Obj) -> None:
    """SetDefaults_ValidatingAdmissionPolicySpec and its MatchResources."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("failurePolicy", "Fail")
    mc = spec.get("matchConstraints")
    if isinstance(mc, dict):
        _default_match_resources(mc)


def _default_match_resources(mc: Obj) -> None:
    mc.setdefault("matchPolicy", "Equivalent")
    mc.setdefault("namespaceSelector", {})
    mc.setdefault("objectSelector", {})
    for key in ("resourceRules", "excludeResourceRules"):
        _default_rules(mc.get(key))


def validate_policy(obj: Obj) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    fp = spec.get("failurePolicy")
    if fp is not None and fp not in FAILURE_POLICIES:
        errs.append(ferr.not_supported("spec.failurePolicy", fp, FAILURE_POLICIES))
    if not spec.get("validations") and not spec.get("auditAnnotations"):
        errs.append(ferr.required("spec.validations", "validations or auditAnnotations must contain at least one "
                                                      "item"))
    if not spec.get("matchConstraints"):
        errs.append(ferr.required("spec.matchConstraints", ""))
    elif not (spec["matchConstraints"].get("resourceRules")):
        errs.append(ferr.required("spec.matchConstraints.resourceRules", ""))
    from kubelite.apiserver.admission.cel import POLICY_VARS

    for i, v in enumerate(spec.get("variables") or []):
        v = v if isinstance(v, dict) else {}
        if not v.get("name"):
            errs.append(ferr.required(f"spec.variables[{i}].name", ""))
        errs.extend(_validate_cel(v.get("expression"), f"spec.variables[{i}].expression", POLICY_VARS))
    for i, v in enumerate(spec.get("validations") or []):
        v = v if isinstance(v, dict) else {}
        errs.extend(_validate_cel(v.get("expression"), f"spec.validations[{i}].expression", POLICY_VARS))
        if v.get("messageExpression"):
            errs.extend(_validate_cel(v["messageExpression"], f"spec.validations[{i}].messageExpression",
                                      POLICY_VARS))
    for i, a in enumerate(spec.get("auditAnnotations") or []):
        a = a if isinstance(a, dict) else {}
        errs.extend(_validate_cel(a.get("valueExpression"), f"spec.auditAnnotations[{i}].valueExpression",
                                  POLICY_VARS))
    errs.extend(validate_match_conditions(spec.get("matchConditions"), "spec.matchConditions", POLICY_VARS))
    return errs


def policy_row(obj: Obj) -> list:
    spec = obj.get("spec") or {}
    pk = spec.get("paramKind")
    param = f"{pk.get('apiVersion', '')}/{pk.get('kind', '')}" if pk else "<unset>"
    return [len(spec.get("validations") or []), param, age_cell(obj)]


def default_binding(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    mr = spec.get("matchResources")
    if isinstance(mr, dict):
        _default_match_resources(mr)


def validate_binding(obj: Obj) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    if not spec.get("policyName"):
        errs.append(ferr.required("spec.policyName", ""))
    actions = spec.get("validationActions")
    if not actions:
        errs.append(ferr.required("spec.validationActions", "at least one validation action is required"))
    for i, a in enumerate(actions or []):
        if a not in VALIDATION_ACTIONS:
            errs.append(ferr.not_supported(f"spec.validationActions[{i}]", a, VALIDATION_ACTIONS))
    return errs


def binding_row(obj: Obj) -> list:
    spec = obj.get("spec") or {}
    ref = spec.get("paramRef")
    if not ref:
        param = "<unset>"
    elif ref.get("name"):
        param = f"{ref['namespace']}/{ref['name']}" if ref.get("namespace") else ref["name"]
    else:
        param = "*/*"
    return [spec.get("policyName") or "", param, age_cell(obj)]


def _update(validate):
    return lambda new, old: common.validate_object_meta_update(new, old) + validate(new)


def register(reg: Registry) -> None:
    g, v = GROUP, "v1"
    webhooks = Column("Webhooks", "integer", description="Webhooks indicates the number of webhooks included in "
                      "the configuration.")
    for kind, plural, mutating in (("ValidatingWebhookConfiguration", "validatingwebhookconfigurations", False),
                                   ("MutatingWebhookConfiguration", "mutatingwebhookconfigurations", True)):
        validate = _validator(mutating)
        reg.register(Resource(
            group=g, version=v, kind=kind, plural=plural, namespaced=False, definition=definition(g, v, kind),
            columns=(webhooks, age_column()), row=webhooks_row, default=_defaulter(mutating), validate=validate,
            validate_update=_update(validate),
        ))
    reg.register(Resource(
        group=g, version=v, kind="ValidatingAdmissionPolicy", plural="validatingadmissionpolicies",
        namespaced=False, subresources=("status",), definition=definition(g, v, "ValidatingAdmissionPolicy"),
        columns=(Column("Validations", "integer", description="Validations indicates the number of validation "
                        "rules defined in this configuration"),
                 Column("ParamKind", "string", description="ParamKind specifies the kind of resources used to "
                        "parameterize this policy"), age_column()),
        row=policy_row, default=default_policy, validate=validate_policy, validate_update=_update(validate_policy),
        tracks_generation=True,
    ))
    reg.register(Resource(
        group=g, version=v, kind="ValidatingAdmissionPolicyBinding", plural="validatingadmissionpolicybindings",
        namespaced=False, definition=definition(g, v, "ValidatingAdmissionPolicyBinding"),
        columns=(Column("PolicyName", "string", description="PolicyName indicates the policy definition which the "
                        "policy binding binded to"),
                 Column("ParamRef", "string", description="ParamRef indicates the param resource which sets the "
                        "configration param"), age_column()),
        row=binding_row, default=default_binding, validate=validate_binding, validate_update=_update(validate_binding),
        tracks_generation=True,
    ))
