"""ValidatingAdmissionPolicy: CEL validations bound to resources by ValidatingAdmissionPolicyBindings.

Upstream runs it in the validating phase, before the validating webhooks. For each binding whose
policy exists and whose matchConstraints and matchResources (rules, excluded rules, namespace and
object selectors) take the request, the policy's matchConditions decide whether it applies; then its
validations are evaluated (with `variables`, `params` from the binding's paramRef, `namespaceObject`).
A failed validation is handled by the binding's validationActions: Deny refuses the request with
upstream's text (`ValidatingAdmissionPolicy 'p' with binding 'b' denied request: ...`, reason
Invalid unless the validation names one), Warn adds a warning, Audit is logged (kubelite keeps no
audit log). An expression error follows the policy's failurePolicy.
"""

from __future__ import annotations

import logging
from typing import Any

from kubelite.api import errors
from kubelite.api.registry import Resource
from kubelite.api.selectors import selector_from_label_selector
from kubelite.apiserver.admission import AdmissionPlugin, AdmissionRequest
from kubelite.apiserver.admission.webhook import review_request, rule_matches

log = logging.getLogger(__name__)

Obj = dict[str, Any]

GROUP = "admissionregistration.k8s.io"
POLICIES = f"/registry/{GROUP}/validatingadmissionpolicies/"
BINDINGS = f"/registry/{GROUP}/validatingadmissionpolicybindings/"
# upstream never applies policies to the policy objects themselves
_EXEMPT = {(GROUP, "validatingadmissionpolicies"), (GROUP, "validatingadmissionpolicybindings")}
_REASON_CODES = {"Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413, "Invalid": 422}


class _Denied(Exception):
    """A validation failed (or erred under failurePolicy Fail): message and reason of the decision."""

    def __init__(self, message: str, reason: str = "Invalid"):
        super().__init__(message)
        self.message, self.reason = message, reason


class ValidatingAdmissionPolicyPlugin(AdmissionPlugin):
    """The ValidatingAdmissionPolicy admission plugin."""

    async def validate_request(self, op: str, res: Resource, obj: Obj | None, old: Obj | None,
                               req: AdmissionRequest) -> None:
        if (res.group, res.plural) in _EXEMPT or self._service is None:
            return
        store = self._service.store
        bindings, _, _ = await store.list(BINDINGS)
        if not bindings:
            return
        subject = obj if obj is not None else old or {}
        namespace = (subject.get("metadata") or {}).get("namespace", "") if res.namespaced else ""
        ns_obj: Obj | None = None
        if namespace:
            ns_obj = await store.get(f"/registry/core/namespaces/{namespace}")
        elif res.group == "" and res.plural == "namespaces":
            ns_obj = subject
        request: Obj | None = None
        policies: dict[str, Obj | None] = {}
        for binding in sorted(bindings, key=lambda b: b["metadata"]["name"]):
            spec = binding.get("spec") or {}
            name = spec.get("policyName") or ""
            if name not in policies:
                policies[name] = await store.get(POLICIES + name)
            policy = policies[name]
            if policy is None:
                continue
            pspec = policy.get("spec") or {}
            if not pspec.get("matchConstraints") or not _matches(pspec["matchConstraints"], op, res, req, subject,
                                                                   obj, old, ns_obj, rules_required=True):
                continue
            if spec.get("matchResources") and not _matches(spec["matchResources"], op, res, req, subject, obj, old,
                                                           ns_obj, rules_required=False):
                continue
            if request is None:
                request = review_request(op, res, obj, old, req)
            actions = spec.get("validationActions") or []
            for message, reason in await self._evaluate(policy, binding, request, ns_obj):
                self._act(policy, binding, actions, message, reason, res, subject, req)

    async def _evaluate(self, policy: Obj, binding: Obj, request: Obj, ns_obj: Obj | None) -> list[tuple[str, str]]:
        """The failed decisions (message, reason) of `policy` under `binding`, once per param object."""
        pspec = policy.get("spec") or {}
        fail = (pspec.get("failurePolicy") or "Fail") == "Fail"
        params_list: list[Any] = [None]
        if pspec.get("paramKind"):
            try:
                params_list = await self._params(pspec["paramKind"], binding, request)
            except _Denied as e:
                return [(e.message, e.reason)] if fail else []
            if not params_list:
                return []
        out: list[tuple[str, str]] = []
        for params in params_list:
            try:
                out.extend(_validate(pspec, request, params, ns_obj, fail))
            except _Denied as e:
                out.append((e.message, e.reason))
        return out

    async def _params(self, param_kind: Obj, binding: Obj, request: Obj) -> list[Any]:
        """The param objects the binding's paramRef selects (upstream: one evaluation per object)."""
        ref = (binding.get("spec") or {}).get("paramRef")
        api_version = param_kind.get("apiVersion", "")
        group, _, version = api_version.rpartition("/")
        res = self._service.registry.by_kind(group, version, param_kind.get("kind", ""))
        if res is None:
            raise _Denied(f"failed to configure binding: paramKind kind `{param_kind.get('kind', '')}` not known")
        if not ref:
            raise _Denied("failed to configure binding: no paramRef")
        namespace = ""
        if res.namespaced:
            namespace = ref.get("namespace") or request.get("namespace") or ""
            if not namespace:
                raise _Denied("failed to configure binding: cannot use namespaced paramRef in policy binding "
                              "that matches cluster-scoped resources")
        found: list[Any] = []
        if ref.get("name"):
            got = await self._service.store.get(res.key(namespace or None, ref["name"]))
            if got is not None:
                found.append(got)
        else:
            selector = selector_from_label_selector(ref.get("selector") or {})
            prefix = res.storage_prefix() + (namespace + "/" if namespace else "")
            items, _, _ = await self._service.store.list(prefix)
            found = [o for o in items if selector.matches((o.get("metadata") or {}).get("labels") or {})]
        if not found and (ref.get("parameterNotFoundAction") or "Deny") == "Deny":
            raise _Denied("no params found for policy binding with `Deny` parameterNotFoundAction")
        return found

    @staticmethod
    def _act(policy: Obj, binding: Obj, actions: list[str], message: str, reason: str, res: Resource,
             subject: Obj, req: AdmissionRequest) -> None:
        pname, bname = policy["metadata"]["name"], binding["metadata"]["name"]
        if "Warn" in actions and req.warnings is not None:
            req.warnings.append(f"Validation failed for ValidatingAdmissionPolicy '{pname}' with binding "
                                f"'{bname}': {message}")
        if "Audit" in actions:
            log.info("validation.policy.admission.k8s.io/validation_failure: policy %s binding %s: %s",
                     pname, bname, message)
        if "Deny" in actions:
            text = f"ValidatingAdmissionPolicy '{pname}' with binding '{bname}' denied request: {message}"
            name = (subject.get("metadata") or {}).get("name", "")
            err = errors.new_forbidden(res.plural, res.group, name, text)
            err.reason = reason or "Invalid"
            err.code = _REASON_CODES.get(err.reason, 500)
            err.details = dict(err.details or {}, causes=[{"message": text}])
            raise err


def _matches(mr: Obj, op: str, res: Resource, req: AdmissionRequest, subject: Obj, obj: Obj | None,
             old: Obj | None, ns_obj: Obj | None, rules_required: bool) -> bool:
    """upstream's matching.Matcher: selectors, then excluded rules, then rules (none: everything)."""
    sel = mr.get("namespaceSelector")
    if sel and res.namespaced or sel and res.group == "" and res.plural == "namespaces":
        labels = ((ns_obj or {}).get("metadata") or {}).get("labels") or {}
        if not selector_from_label_selector(sel).matches(labels):
            return False
    sel = mr.get("objectSelector")
    if sel:
        selector = selector_from_label_selector(sel)
        if not any(o is not None and selector.matches((o.get("metadata") or {}).get("labels") or {})
                   for o in (obj, old)):
            return False
    name = (subject.get("metadata") or {}).get("name", "")
    if any(_rule(r, op, res, req, name) for r in mr.get("excludeResourceRules") or ()):
        return False
    rules = mr.get("resourceRules") or []
    if not rules:
        return not rules_required
    return any(_rule(r, op, res, req, name) for r in rules)


def _rule(rule: Obj, op: str, res: Resource, req: AdmissionRequest, name: str) -> bool:
    names = rule.get("resourceNames")
    if names and name not in names:
        return False
    return rule_matches(rule, op, res.group, res.version, res.plural, req.subresource, res.namespaced)


def _validate(spec: Obj, request: Obj, params: Any, ns_obj: Obj | None, fail: bool) -> list[tuple[str, str]]:
    """Evaluate one policy for one param object: the failed validations as (message, reason)."""
    from kubelite.apiserver.admission import cel  # cel-python costs ~0.1 s to import: not at start-up

    variables = {v.get("name", ""): v.get("expression", "") for v in spec.get("variables") or ()}

    def resolve(name: str) -> Any:
        if name not in variables:
            raise cel.EvalError(f"no such key: {name}")
        return cel.to_cel(cel.compile_expression(variables[name]).evaluate(act))

    act = cel.activation(request.get("object"), request.get("oldObject"), request, params=params,
                         namespace_object=ns_obj, variables=resolve)
    for c in spec.get("matchConditions") or ():
        try:
            if cel.compile_expression(c.get("expression", "")).evaluate(act) is False:
                return []
        except (cel.CompileError, cel.EvalError) as e:
            if fail:
                raise _Denied(f"failed to evaluate matchCondition '{c.get('name', '')}': {e}") from None
            return []
    out: list[tuple[str, str]] = []
    for v in spec.get("validations") or ():
        expression = v.get("expression", "")
        try:
            result = cel.compile_expression(expression).evaluate(act)
        except (cel.CompileError, cel.EvalError) as e:
            if fail:
                out.append((f"expression '{expression}' resulted in error: {e}", "Invalid"))
            continue
        if result is True:
            continue
        if not isinstance(result, bool):
            if fail:
                out.append((f"expression '{expression}' resulted in error: must evaluate to bool", "Invalid"))
            continue
        message = ""
        if v.get("messageExpression"):
            try:
                got = cel.compile_expression(v["messageExpression"]).evaluate(act)
                if isinstance(got, str):
                    message = " ".join(got.split())  # upstream refuses line breaks: it keeps one line
            except (cel.CompileError, cel.EvalError) as e:
                log.info("messageExpression %r failed: %s", v["messageExpression"], e)
        if not message:
            message = v.get("message") or f"failed expression: {expression}"
        out.append((message, v.get("reason") or "Invalid"))
    return out
