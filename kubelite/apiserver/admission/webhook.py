"""Dynamic admission: MutatingAdmissionWebhook and ValidatingAdmissionWebhook, as upstream calls them.

The configurations (admissionregistration.k8s.io/v1) are read from the store on each request (an
in-memory list). A webhook matches by its rules (operations, groups, versions, resources with `*`,
`pods/*` and `*/scale` forms, scope), namespaceSelector and objectSelector; it is sent an
AdmissionReview v1 over HTTPS (clientConfig.url, or a Service resolved to a ready endpoint, verified
against caBundle) and answers allowed/denied, mutating ones with a base64 JSONPatch. Mutating webhooks
run in configuration-name order, each seeing the previous one's result; validating ones run together
after schema validation. Errors are worded as upstream's (`admission webhook "x" denied the request:
...`, `failed calling webhook "x": ...`); failurePolicy Ignore lets a broken webhook pass.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import uuid
from typing import Any

import aiohttp
import orjson

from kubelite.api import errors
from kubelite.api.registry import Resource
from kubelite.api.selectors import selector_from_label_selector
from kubelite.apiserver.admission import AdmissionPlugin, AdmissionRequest

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
        self._contexts: dict[str, ssl.SSLContext] = {}

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
                # the mutated object is decoded again upstream: what the webhook left out is defaulted
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
        subresource, dry_run, user = req.subresource, req.dry_run, req.user
        m = (obj or old or {}).get("metadata") or {}
        gvk = {"group": res.group, "version": res.version, "kind": res.kind}
        gvr = {"group": res.group, "version": res.version, "resource": res.plural}
        req: Obj = {"uid": str(uuid.uuid4()), "kind": gvk, "resource": gvr, "requestKind": gvk,
                    "requestResource": gvr, "name": m.get("name", ""), "operation": op,
                    "userInfo": _user_info(user), "object": obj if op != "DELETE" else None,
                    "oldObject": old if op in ("UPDATE", "DELETE") else None, "dryRun": dry_run,
                    "options": {"apiVersion": "meta.k8s.io/v1",
                                "kind": {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions",
                                         "DELETE": "DeleteOptions"}.get(op, "CreateOptions")}}
        if subresource:
            req["subResource"] = req["requestSubResource"] = subresource
        if res.namespaced and m.get("namespace"):
            req["namespace"] = m["namespace"]
        return req

    async def _call(self, hook: Obj, op: str, res: Resource, obj: Obj | None, old: Obj | None,
                    req: AdmissionRequest) -> Obj | None:
        """The webhook's response when it allowed the request; None when a failure is ignored."""
        name = hook.get("name", "")
        if req.dry_run and hook.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise errors.StatusError(400, "BadRequest", f'admission webhook "{name}" does not support dry run', {})
        request = self._request(op, res, obj, old, req)
        timeout = int(hook.get("timeoutSeconds") or 10)
        try:
            url, server_name = await self._url(hook.get("clientConfig") or {})
            url += ("&" if "?" in url else "?") + f"timeout={timeout}s"
            body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
            ctx = self._ssl(str((hook.get("clientConfig") or {}).get("caBundle") or ""))
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
                try:
                    async with session.post(url, data=orjson.dumps(body), ssl=ctx, server_hostname=server_name,
                                            headers={"Content-Type": "application/json",
                                                     "Accept": "application/json"}) as r:
                        raw = await r.read()
                        if r.status != 200:
                            raise _CallError(f'failed to call webhook: Post "{url}": the server responded '
                                             f"with the status code {r.status}")
                except TimeoutError:
                    raise _CallError(f'failed to call webhook: Post "{url}": context deadline exceeded') from None
                except aiohttp.ClientError as e:
                    raise _CallError(f'failed to call webhook: Post "{url}": {e}') from None
            try:
                response = orjson.loads(raw).get("response") or {}
            except (orjson.JSONDecodeError, AttributeError):
                raise _CallError("received invalid webhook response") from None
            if response.get("uid") != request["uid"]:
                raise _CallError(f"expected response.uid=\"{request['uid']}\", got \"{response.get('uid', '')}\"")
        except _CallError as e:
            if hook.get("failurePolicy", "Fail") == "Ignore":
                log.warning('failed calling webhook "%s": %s (failurePolicy Ignore)', name, e)
                return None
            raise errors.new_internal(f'failed calling webhook "{name}": {e}') from None
        if not response.get("allowed"):
            raise _denied(name, response.get("status"))
        return response

    async def _url(self, client_config: Obj) -> tuple[str, str | None]:
        """The URL to post to, and the TLS server name when it is a Service's (`svc.ns.svc`)."""
        if client_config.get("url"):
            return str(client_config["url"]), None
        svc_ref = client_config.get("service") or {}
        ns, svc_name = svc_ref.get("namespace", ""), svc_ref.get("name", "")
        port = int(svc_ref.get("port") or 443)
        path = svc_ref.get("path") or ""
        store = self._service.store
        svc = await store.get(f"/registry/core/services/{ns}/{svc_name}")
        if svc is None:
            raise _CallError(f'failed to call webhook: service "{svc_name}" not found')
        target = None
        for p in (svc.get("spec") or {}).get("ports") or ():
            if p.get("port") == port:
                target = p
        if target is None:
            raise _CallError(f"failed to call webhook: no service port {port} found for service \"{svc_name}\"")
        # endpoint routing (upstream's --enable-aggregator-routing): a ready address of the service
        ep = await store.get(f"/registry/core/endpoints/{ns}/{svc_name}") or {}
        for subset in ep.get("subsets") or ():
            for address in subset.get("addresses") or ():
                for ep_port in subset.get("ports") or ():
                    if ep_port.get("name", "") == target.get("name", "") or len(subset.get("ports")) == 1:
                        return (f"https://{address['ip']}:{ep_port['port']}{path}",
                                f"{svc_name}.{ns}.svc")
        raise _CallError(f'failed to call webhook: service "{ns}/{svc_name}" has no ready endpoints')

    def _ssl(self, ca_bundle: str) -> ssl.SSLContext:
        ctx = self._contexts.get(ca_bundle)
        if ctx is None:
            ctx = ssl.create_default_context()
            if ca_bundle:
                try:
                    ctx.load_verify_locations(cadata=base64.b64decode(ca_bundle).decode())
                except (ValueError, ssl.SSLError) as e:
                    raise _CallError(f"failed to call webhook: invalid caBundle: {e}") from None
            self._contexts[ca_bundle] = ctx
        return ctx


class _CallError(Exception):
    pass


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
