"""HTTP in front of APIService: URL parsing, query parameters, content negotiation, watch streaming.

One handler serves every resource: /api/v1/... and /apis/<group>/<version>/... paths are parsed
into (resource, namespace, name, subresource) and dispatched by HTTP method, as upstream's
generic endpoint installer does.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from aiohttp import web

from kubelite.api import errors
from kubelite.api.registry import Registry, Resource
from kubelite.apiserver import tables
from kubelite.apiserver.service import APIService

log = logging.getLogger(__name__)

Obj = dict[str, Any]

JSON = "application/json"
YAML = "application/yaml"
_NS_SUBRESOURCES = ("status", "finalize")


@dataclass
class Target:
    res: Resource
    namespace: str | None
    name: str = ""
    subresource: str = ""
    watch_path: bool = False


def _not_found_path() -> errors.StatusError:
    return errors.StatusError(404, "NotFound", "the server could not find the requested resource",
                              {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def parse_path(registry: Registry, path: str) -> Target:
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise _not_found_path()
    if parts[0] == "api" and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise _not_found_path()
    watch_path = False
    if rest and rest[0] == "watch":
        watch_path, rest = True, rest[1:]
    if not rest:
        raise _not_found_path()
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in _NS_SUBRESOURCES):
        namespace, rest = rest[1], rest[2:]
    res = registry.get(group, version, rest[0])
    if res is not None and len(rest) > 3 and rest[2] == "proxy" and "proxy" in res.subresources:
        rest = rest[:3]  # <name>/proxy/<path>: the path is the proxied request's (proxy_subresource.py)
    if res is None or len(rest) > 3:
        raise _not_found_path()
    if namespace is not None and not res.namespaced:
        raise _not_found_path()
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in res.subresources:
        raise _not_found_path()
    return Target(res, namespace, name, sub, watch_path)


def _truthy(v: str | None) -> bool:
    return v in ("true", "1", "True")


def _accept_kind(request: web.Request) -> str:
    """json | yaml | table, or 406 when nothing we speak is acceptable."""
    accept = request.headers.get("Accept", "") or "*/*"
    if tables.wants_table(accept):
        return "table"
    for part in accept.split(","):
        p = part.split(";")[0].strip()
        if p in ("application/json", "*/*", "application/*", "application/json-patch+json"):
            return "json"
        if p == "application/yaml":
            return "yaml"
    if "application/vnd.kubernetes.protobuf" in accept or "text/" in accept:
        raise errors.new_not_acceptable()
    return "json"


def respond(data: Obj, status: int = 200, kind: str = "json", warnings: list[str] | None = None) -> web.Response:
    headers = {}
    if warnings:
        from kubelite.api.structural import warning_header

        headers["Warning"] = ", ".join(warning_header(w) for w in warnings)
    if kind == "yaml":
        return web.Response(body=yaml.safe_dump(data, sort_keys=False).encode(), status=status,
                            content_type=YAML, headers=headers)
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON, headers=headers)


def status_response(err: errors.StatusError) -> web.Response:
    return web.Response(body=orjson.dumps(err.status()), status=err.code, content_type=JSON)


async def _read_body(request: web.Request, field_validation: str, res: Resource,
                     warnings: list[str]) -> Obj:
    """Decode a create/update body, applying fieldValidation (Strict/Warn/Ignore) as upstream."""
    from kubelite.api import structural

    raw = await request.read()
    ctype = _media_type(request) or JSON
    if ctype == PROTOBUF and raw:  # protobuf body (kubectl typed clients): decode, then the JSON path
        raw, ctype = orjson.dumps(_decode_protobuf(raw)), JSON
    if ctype not in (JSON, YAML, "*/*", "text/plain", "application/octet-stream"):
        raise errors.new_unsupported_media_type(ctype)
    if not raw.strip():
        raise errors.new_bad_request("the body of the request was empty")
    obj, found = structural.decode_and_check(res.definition, raw, YAML if ctype == YAML else JSON,
                                             field_validation or "Warn")
    warnings.extend(found)
    return obj


# --- protobuf request bodies (kubelite.api.protobuf): kubectl's typed clients send
# application/vnd.kubernetes.protobuf for create/update, subresource POSTs and DeleteOptions ---
PROTOBUF = "application/vnd.kubernetes.protobuf"


def _decode_protobuf(raw: bytes) -> Obj:
    from kubelite.api import protobuf

    try:
        return protobuf.decode_k8s_protobuf(raw)
    except protobuf.ProtobufError as e:
        raise errors.new_bad_request(f"the object provided is unrecognized: {e}") from None


async def _read_plain_body(request: web.Request) -> Obj:
    """A subresource body (binding, eviction, token request): JSON, or protobuf by its prefix."""
    raw = await request.read()
    if raw.startswith(b"k8s\x00"):
        return _decode_protobuf(raw)
    return orjson.loads(raw or b"{}")
# --- end protobuf ---


def _delete_options(body: bytes, q: Any) -> Obj:
    opts: Obj = {}
    if body.startswith(b"k8s\x00"):  # protobuf DeleteOptions
        opts = _decode_protobuf(body)
    elif body.strip():
        try:
            opts = orjson.loads(body)
        except orjson.JSONDecodeError:
            opts = yaml.safe_load(body) or {}
    if "gracePeriodSeconds" in q:
        opts["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
    if "propagationPolicy" in q:
        opts["propagationPolicy"] = q["propagationPolicy"]
    if "orphanDependents" in q:
        opts["orphanDependents"] = _truthy(q["orphanDependents"])
    policy = opts.get("propagationPolicy")
    if policy not in (None, "Foreground", "Background", "Orphan"):
        raise errors.new_invalid("DeleteOptions", "", "", [errors.not_supported(
            "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])])
    return opts


class ResourceHandler:
    def __init__(self, service: APIService):
        self.service = service
        # watch event lines by the event's (shared, never mutated) object: N watchers of one
        # resource encode an event once, as upstream's watch cache serializes it once
        self._encoded: dict[int, tuple[Obj, str, bytes]] = {}

    def _event_line(self, etype: str, obj: Obj) -> bytes:
        hit = self._encoded.get(id(obj))
        if hit is not None and hit[0] is obj and hit[1] == etype:
            return hit[2]
        line = orjson.dumps({"type": etype, "object": obj}) + b"\n"
        if len(self._encoded) >= 1024:
            self._encoded.clear()
        self._encoded[id(obj)] = (obj, etype, line)
        return line

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        t = parse_path(self.service.registry, request.path)
        q = request.query
        method = request.method
        svc = self.service
        res = t.res
        dry_run = q.get("dryRun") == "All"
        manager = "" if method == "GET" else (
            q.get("fieldManager", "") or _manager_from_ua(request.headers.get("User-Agent", "")))
        warnings: list[str] = []
        if t.subresource in ("log", "exec", "attach", "portforward") and res.plural == "pods" and not res.group:
            # streamed via the kubelet; exec, attach and port-forward are admitted as CONNECT first
            from kubelite.kubelet import proxy

            if t.subresource != "log":
                kinds = {"exec": "PodExecOptions", "attach": "PodAttachOptions",
                         "portforward": "PodPortForwardOptions"}
                options = {"kind": kinds[t.subresource], "apiVersion": "v1",
                           "metadata": {"name": t.name, "namespace": t.namespace or ""}}
                await svc.admit_request(False, "CONNECT", res, options, None, t.subresource)
                await svc.admit_request(True, "CONNECT", res, options, None, t.subresource)

            return await proxy.handle(svc, request, t.namespace or "", t.name, t.subresource)
        if t.subresource == "proxy" and not res.group and res.plural in ("pods", "services", "nodes"):
            from kubelite.apiserver import proxy_subresource

            return await proxy_subresource.handle(svc, request, res, t.namespace, t.name)
        out_kind = _accept_kind(request)

        if res.review is not None:
            if method != "POST" or t.name:
                raise errors.new_method_not_allowed()
            if out_kind == "table":  # reviews have no table convertor: upstream answers 406
                raise errors.new_not_acceptable()
            body = await _read_body(request, q.get("fieldValidation", ""), res, warnings)
            reviewed = res.review(body, request.get("user"))
            if asyncio.iscoroutine(reviewed):  # TokenReview looks objects up
                reviewed = await reviewed
            return respond(reviewed, 201, "json", warnings)
        if method == "GET" and "get" not in res.verbs or method == "POST" and "create" not in res.verbs:
            raise errors.new_method_not_allowed()
        if res.backend is not None and (method != "GET" or t.watch_path or _truthy(q.get("watch"))):
            raise errors.new_method_not_allowed()  # read-only computed resources (metrics.k8s.io): get, list
        if method == "GET":
            if t.watch_path or _truthy(q.get("watch")):
                if t.name:
                    # watch of one object: a field selector on its name, as upstream
                    fs = q.get("fieldSelector", "")
                    fs = f"metadata.name={t.name}" + ("," + fs if fs else "")
                else:
                    fs = q.get("fieldSelector", "")
                return await self._watch(request, t, fs, out_kind)
            if t.name:
                obj = await svc.get(res, t.namespace, t.name, t.subresource)
                if out_kind == "table" and not t.subresource:
                    return respond(tables.table(res, [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                                                q.get("includeObject", "Metadata")))
                return respond(obj, kind=out_kind if out_kind != "table" else "json")
            listed = await svc.list(res, t.namespace, label_selector=q.get("labelSelector", ""),
                                    field_selector=q.get("fieldSelector", ""), limit=int(q.get("limit", 0) or 0),
                                    continue_=q.get("continue", ""), resource_version=q.get("resourceVersion", ""),
                                    resource_version_match=q.get("resourceVersionMatch", ""))
            if out_kind == "table":
                return respond(tables.table(res, listed["items"], listed["metadata"], q.get("includeObject", "Metadata")))
            return respond(listed, kind=out_kind)

        if method == "POST":
            if t.name and not t.subresource:
                raise errors.new_method_not_allowed()
            body = await _read_body(request, q.get("fieldValidation", ""), res, warnings) if not t.subresource else \
                await _read_plain_body(request)
            obj = await svc.create(res, t.namespace, body, subresource=t.subresource, name=t.name, dry_run=dry_run,
                                   field_manager=manager, warnings=warnings)
            return respond(obj, 201, out_kind if out_kind != "table" else "json", warnings)
        if method == "PUT":
            if not t.name:
                raise errors.new_method_not_allowed()
            if t.subresource == "finalize":
                return respond(await self._finalize(t, await request.read()))
            if t.subresource and t.subresource not in ("status", "scale", "approval", "ephemeralcontainers"):
                raise errors.new_method_not_allowed()
            body = await _read_body(request, q.get("fieldValidation", "") if t.subresource != "scale" else "Ignore",
                                    res, warnings)
            obj = await svc.update(res, t.namespace, t.name, body, subresource=t.subresource, dry_run=dry_run,
                                   field_manager=manager, warnings=warnings)
            return respond(obj, 200, out_kind if out_kind != "table" else "json", warnings)
        if method == "PATCH":
            if not t.name:
                raise errors.new_method_not_allowed()
            ctype = request.headers.get("Content-Type", "")
            base = ctype.split(";")[0].strip()
            smp_ok = bool(res.definition) and not res.custom  # custom resources have no patch strategies
            if base not in ("application/json-patch+json", "application/merge-patch+json",
                            "application/apply-patch+yaml") + (("application/strategic-merge-patch+json",)
                                                               if smp_ok else ()):
                raise errors.StatusError(
                    415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                    + (", application/strategic-merge-patch+json" if smp_ok else ""))
            obj = await svc.patch(res, t.namespace, t.name, base, await request.read(), subresource=t.subresource,
                                  dry_run=dry_run, field_manager=q.get("fieldManager", "") or (
                                      manager if base != "application/apply-patch+yaml" else ""),
                                  force=_truthy(q.get("force")), warnings=warnings,
                                  field_validation=q.get("fieldValidation", "Warn"))
            return respond(obj, 200, out_kind if out_kind != "table" else "json", warnings)
        if method == "DELETE":
            opts = _delete_options(await request.read(), q)
            if opts.get("dryRun") == ["All"]:
                dry_run = True
            if not t.name:
                obj = await svc.delete_collection(res, t.namespace, opts, label_selector=q.get("labelSelector", ""),
                                                  field_selector=q.get("fieldSelector", ""), dry_run=dry_run)
                return respond(obj)
            obj = await svc.delete(res, t.namespace, t.name, opts, dry_run=dry_run)
            return respond(obj)
        raise errors.new_method_not_allowed()

    async def _finalize(self, t: Target, raw: bytes) -> Obj:
        body = orjson.loads(raw)
        ns = await self.service.get(t.res, None, t.name)
        new = dict(ns)
        new["spec"] = dict(ns.get("spec") or {})
        new["spec"]["finalizers"] = list((body.get("spec") or {}).get("finalizers") or [])
        return await self.service._write_update(t.res, ns, new, "finalize", False, "namespace-controller", "Update")

    async def _watch(self, request: web.Request, t: Target, field_selector: str, out_kind: str) -> web.StreamResponse:
        q = request.query
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        sie = q.get("sendInitialEvents")
        events = self.service.watch(
            t.res, t.namespace, resource_version=q.get("resourceVersion", ""),
            label_selector=q.get("labelSelector", ""), field_selector=field_selector,
            allow_bookmarks=_truthy(q.get("allowWatchBookmarks")),
            send_initial_events=None if sie is None else _truthy(sie), timeout=timeout)
        # bad selectors or versions are answered as plain Status responses, before the stream starts
        self.service._selector_filter(t.res, q.get("labelSelector", ""), field_selector)
        rv = q.get("resourceVersion", "")
        if rv and not rv.isdigit():
            raise errors.new_bad_request(f'invalid resource version "{rv}"')
        resp = web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        include = q.get("includeObject", "Metadata")
        first_table = True

        async def send(etype: str, obj: Obj) -> None:
            nonlocal first_table
            if out_kind == "table" and etype not in ("ERROR", "BOOKMARK"):
                obj = tables.table(t.res, [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                                   include, with_columns=first_table)
                first_table = False
                await resp.write(orjson.dumps({"type": etype, "object": obj}) + b"\n")
            else:
                await resp.write(self._event_line(etype, obj))

        try:
            async for etype, obj in events:
                await send(etype, obj)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            await events.aclose()
        return resp


_MEDIA_TYPES: dict[str | None, str] = {}  # Content-Type header -> request.content_type


def _media_type(request: web.Request) -> str:
    """request.content_type, remembered by header: aiohttp parses the header with the email package
    on every request, a few percent of a create's CPU, and clients send the same few values."""
    header = request.headers.get("Content-Type")
    ctype = _MEDIA_TYPES.get(header)
    if ctype is None:
        ctype = request.content_type
        if len(_MEDIA_TYPES) < 256:
            _MEDIA_TYPES[header] = ctype
    return ctype


@functools.lru_cache(maxsize=64)
def _manager_from_ua(ua: str) -> str:
    """Clients send the same User-Agent on every request."""
    from kubelite.apiserver.apply import manager_from_user_agent

    return manager_from_user_agent(ua)
