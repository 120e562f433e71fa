"""Dynamic admission: MutatingAdmissionWebhook and ValidatingAdmissionWebhook, as upstream calls them.

The configurations (admissionregistration.k8s.io/v1) are read from the store on each request (an
in-memory list). A webhook matches by its rules (operations, groups, versions, resources with `*`,
`pods/*` and `*/scale` forms, scope), namespaceSelector and objectSelector; it is sent an
AdmissionReview v1 over HTTPS (clientConfig.url, or a Service resolved to a ready endpoint, verified
against caBundle) and answers allowed/denied, mutating ones with a base64 JSONPatch. Mutating webhooks
run in configuration-name order, each seeing the previous one's result; validating ones run together
after schema validation. matchConditions (CEL, see cel.py) decide last whether a matching webhook is
called. Errors are worded as upstream's (`admission webhook "x" denied the request:
...`, `failed calling webhook "x": ...`); failurePolicy Ignore lets a broken webhook pass.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from typing import Any

import orjson

from kubelite.api import errors
from kubelite.api.registry import Resource
from kubelite.api.selectors import selector_from_label_selector
from kubelite.apiserver.admission import AdmissionPlugin, AdmissionRequest
from kubelite.apiserver.webhook_client import WebhookCallError

log = logging.getLogger(__name__)

Obj = dict[str, Any]

MUTATING = "mutatingwebhookconfigurations"
VALIDATING = "validatingwebhookconfigurations"
# upstream never sends its own admission configuration to webhooks, so a bad webhook cannot lock it out
_EXEMPT = {("admissionregistration.k8s.io", r) for r in (
    MUTATING, VALIDATING, "validatingadmissionpolicies", "validatingadmissionpolicybindings")}


def rule_matches(rule: Obj, op: str, group: str, version: str, resource: str, subresource: str,
                 namespaced: bool) -> bool:
    """admissionregistration's Rule: every list may hold `*`; resources `*`, `*/*`, `pods/*`, `*/scale`."""
    if not _any(rule.get("operations"), op):
        return False
    if not _any(rule.get("apiGroups"), group) or not _any(rule.get("apiVersions"), version):
        return False
    scope = rule.get("scope") or "*"
    if scope == "Cluster" and namespaced or scope == "Namespaced" and not namespaced:
        return False
    for r in rule.get("resources") or ():
        res_part, _, sub_part = r.partition("/")
        if (res_part in ("*", resource)) and (sub_part == subresource or sub_part == "*" and r != "*"):
            return True
    return False


def _any(values: Any, value: str) -> bool:
    return bool(values) and ("*" in values or value in values)


class WebhookAdmission(AdmissionPlugin):
    """One of the two dynamic admission plugins: `mutating` decides which configurations it reads."""

    def __init__(self, mutating: bool):
        self.mutating = mutating

    # ------------------------------------------------------------------ the plugin hooks
    async def mutate_request(self, op: str, res: Resource, obj: Obj | None, old: Obj | None,
                             req: AdmissionRequest) -> None:
        if not self.mutating:
            return
        for hook in await self._matching(op, res, obj, old, req.subresource):
            review = await self._call(hook, op, res, obj, old, req)
            if review is None:
                continue
            patch = review.get("patch")
            if patch and op in ("CREATE", "UPDATE"):
                if review.get("patchType") != "JSONPatch":
                    raise errors.new_internal(f'failed calling webhook "{hook["name"]}": '
                                              f'unsupported patch type "{review.get("patchType")}"')
                from kubelite.apiserver.patch import apply_json_patch

                try:
                    patched = apply_json_patch(obj, orjson.loads(base64.b64decode(patch)))
                except (ValueError, errors.StatusError) as e:
                    raise errors.new_internal(f'failed calling webhook "{hook["name"]}": {e}') from None
                # the mutated object is decoded again upstream: unknown fields are dropped (a custom
                # resource's schema prunes), what the webhook left out is defaulted
                if res.definition:
                    from kubelite.api import structural

                    patched = structural.prune(res.definition, patched)
                res.default(patched)
                obj.clear()
                obj.update(patched)

    async def validate_request(self, op: str, res: Resource, obj: Obj | None, old: Obj | None,
                               req: AdmissionRequest) -> None:
        if self.mutating:
            return
        hooks = await self._matching(op, res, obj, old, req.subresource)
        if hooks:
            await asyncio.gather(*(self._call(h, op, res, obj, old, req) for h in hooks))

    # ------------------------------------------------------------------ matching
    async def _matching(self, op: str, res: Resource, obj: Obj | None, old: Obj | None,
                        subresource: str) -> list[Obj]:
        if (res.group, res.plural) in _EXEMPT or self._service is None:
            return []
        store = self._service.store
        plural = MUTATING if self.mutating else VALIDATING
        configs, _, _ = await store.list(f"/registry/admissionregistration.k8s.io/{plural}/")
        out: list[Obj] = []
        namespace = ((obj or old or {}).get("metadata") or {}).get("namespace", "")
        for config in sorted(configs, key=lambda c: c["metadata"]["name"]):
            for hook in config.get("webhooks") or ():
                if not any(rule_matches(r, op, res.group, res.version, res.plural, subresource, res.namespaced)
                           for r in hook.get("rules") or ()):
                    continue
                if not self._object_selected(hook, obj, old):
                    continue
                if not await self._namespace_selected(hook, res, obj or old or {}, namespace):
                    continue
                out.append(hook)
        return out

    @staticmethod
    def _object_selected(hook: Obj, obj: Obj | None, old: Obj | None) -> bool:
        sel = hook.get("objectSelector")
        if not sel:
            return True
        selector = selector_from_label_selector(sel)
        return any(o is not None and selector.matches((o.get("metadata") or {}).get("labels") or {})
                   for o in (obj, old))

    async def _namespace_selected(self, hook: Obj, res: Resource, obj: Obj, namespace: str) -> bool:
        sel = hook.get("namespaceSelector")
        if not sel:
            return True
        selector = selector_from_label_selector(sel)
        if res.group == "" and res.plural == "namespaces":
            return selector.matches((obj.get("metadata") or {}).get("labels") or {})
        if not res.namespaced:
            return True  # cluster-scoped objects are never excluded by a namespace selector
        ns = await self._service.store.get(f"/registry/core/namespaces/{namespace}")
        return selector.matches(((ns or {}).get("metadata") or {}).get("labels") or {})

    # ------------------------------------------------------------------ calling
    def _request(self, op: str, res: Resource, obj: Obj | None, old: Obj | None, req: AdmissionRequest) -> Obj:
        return review_request(op, res, obj, old, req)

    async def _call(self, hook: Obj, op: str, res: Resource, obj: Obj | None, old: Obj | None,
                    req: AdmissionRequest) -> Obj | None:
        """The webhook's response when it allowed the request; None when a failure is ignored."""
        name = hook.get("name", "")
        request = self._request(op, res, obj, old, req)
        try:
            if not _conditions_match(hook, request):
                return None
        except WebhookCallError as e:
            if hook.get("failurePolicy", "Fail") == "Ignore":
                return None
            raise errors.new_internal(f'failed calling webhook "{name}": {e}') from None
        if req.dry_run and hook.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise errors.StatusError(400, "BadRequest", f'admission webhook "{name}" does not support dry run', {})
        timeout = int(hook.get("timeoutSeconds") or 10)
        try:
            body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
            response = (await self._service.webhooks.post(hook.get("clientConfig") or {}, body, timeout)).get("response")
            if not isinstance(response, dict):
                raise WebhookCallError("received invalid webhook response")
            if response.get("uid") != request["uid"]:
                raise WebhookCallError(f"expected response.uid=\"{request['uid']}\", got \"{response.get('uid', '')}\"")
        except WebhookCallError as e:
            if hook.get("failurePolicy", "Fail") == "Ignore":
                log.warning('failed calling webhook "%s": %s (failurePolicy Ignore)', name, e)
                return None
            raise errors.new_internal(f'failed calling webhook "{name}": {e}') from None
        if not response.get("allowed"):
            raise _denied(name, response.get("status"))
        return response


def review_request(op: str, res: Resource, obj: Obj | None, old: Obj | None, req: AdmissionRequest) -> Obj:
    """An AdmissionReview's `request` (also what CEL expressions see as `request`)."""
    subresource, dry_run, user = req.subresource, req.dry_run, req.user
    m = (obj or old or {}).get("metadata") or {}
    gvk = {"group": res.group, "version": res.version, "kind": res.kind}
    gvr = {"group": res.group, "version": res.version, "resource": res.plural}
    out: Obj = {"uid": str(uuid.uuid4()), "kind": gvk, "resource": gvr, "requestKind": gvk,
                "requestResource": gvr, "name": m.get("name", ""), "operation": op,
                "userInfo": _user_info(user), "object": obj if op != "DELETE" else None,
                "oldObject": old if op in ("UPDATE", "DELETE") else None, "dryRun": dry_run,
                "options": {"apiVersion": "meta.k8s.io/v1",
                            "kind": {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions",
                                     "DELETE": "DeleteOptions"}.get(op, "CreateOptions")}}
    if subresource:
        out["subResource"] = out["requestSubResource"] = subresource
    if res.namespaced and m.get("namespace"):
        out["namespace"] = m["namespace"]
    return out


def _conditions_match(hook: Obj, request: Obj) -> bool:
    """matchConditions: all true calls the webhook, any false skips it; an error is a call failure."""
    conditions = hook.get("matchConditions")
    if not conditions:
        return True
    from kubelite.apiserver.admission import cel  # cel-python costs ~0.1 s to import: not at start-up

    act = cel.activation(request.get("object"), request.get("oldObject"), request)
    errs: list[str] = []
    for c in conditions:
        try:
            result = cel.compile_expression(c.get("expression", ""), cel.WEBHOOK_VARS).evaluate(act)
        except (cel.CompileError, cel.EvalError) as e:
            errs.append(f"expression '{c.get('name', '')}' resulted in error: {e}")
            continue
        if result is False:
            return False  # a false condition skips the webhook, whatever errors others gave
        if not isinstance(result, bool):
            errs.append(f"expression '{c.get('name', '')}' resulted in error: cel expression must evaluate to a bool")
    if errs:
        raise WebhookCallError("failed evaluating match conditions: " + "; ".join(errs))
    return True


def _denied(name: str, status: Obj | None) -> errors.StatusError:
    """webhookerrors.ToStatusErr: the webhook's Status, its message prefixed with who denied it."""
    status = dict(status or {})
    code = int(status.get("code") or 0)
    if code < 400:
        code = 400
    denied_by = f'admission webhook "{name}" denied the request'
    if status.get("message"):
        message = f"{denied_by}: {status['message']}"
    elif status.get("reason"):
        message = f"{denied_by}: {status['reason']}"
    else:
        message = f"{denied_by} without explanation"
    return errors.StatusError(code, str(status.get("reason") or ""), message, status.get("details") or {})


def _user_info(user: Any) -> Obj:
    if user is None:
        return {"username": "system:apiserver", "groups": ["system:masters", "system:authenticated"]}
    info: Obj = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        info["uid"] = user.uid
    if user.extra:
        info["extra"] = {k: list(v) for k, v in user.extra.items()}
    return info
