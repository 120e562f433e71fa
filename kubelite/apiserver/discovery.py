"""API discovery as upstream 1.32 serves it: /version, /api, /apis, /api/v1, /apis/<g>[/<v>].

kubectl 1.32 first asks /api and /apis for the aggregated form (apidiscovery.k8s.io/v2
APIGroupDiscoveryList, negotiated through the Accept header) and only falls back to the legacy
APIVersions / APIGroupList / APIResourceList documents when the server does not offer it. Both forms
are computed from the registry and recomputed when it changes (CustomResourceDefinitions add and
remove resources at runtime), so a CRD is discoverable as soon as it is Established.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import orjson
from aiohttp import web

from kubelite.api.openapi import subresource_info
from kubelite.api.registry import Registry, Resource

# A 1.32 version kubectl accepts; "+kubelite" is semver build metadata, so it compares equal to v1.32.0.
VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+kubelite",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64",
}

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

# Upstream's group order in /apis (kube-apiserver's default APIService priorities), best first;
# groups not listed come after, alphabetically.
GROUP_ORDER = (
    "apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io",
    "autoscaling", "batch", "certificates.k8s.io", "networking.k8s.io", "policy", "rbac.authorization.k8s.io",
    "storage.k8s.io", "admissionregistration.k8s.io", "apiextensions.k8s.io", "scheduling.k8s.io",
    "coordination.k8s.io", "node.k8s.io", "discovery.k8s.io", "flowcontrol.apiserver.k8s.io", "resource.k8s.io",
)


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """Upstream's discovery.StorageVersionHash: base64 of the first 8 bytes of sha256("group/version/kind")."""
    return base64.b64encode(hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()[:8]).decode()


def _version_key(version: str) -> tuple:
    """Kubernetes version priority: GA > beta > alpha, higher numbers first (v1 > v1beta2 > v1beta1 > v1alpha1)."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    stage = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0), version)


class Discovery:
    """Every discovery document, serialized once."""

    def __init__(self, registry: Registry) -> None:
        resources = registry.all()
        self.groups = self._ordered_groups(registry)
        by_gv: dict[tuple[str, str], list[Resource]] = {}
        for r in resources:
            by_gv.setdefault((r.group, r.version), []).append(r)
        for rs in by_gv.values():
            rs.sort(key=lambda r: r.plural)

        self.resource_lists: dict[str, bytes] = {}
        for (group, version), rs in by_gv.items():
            self.resource_lists[f"{group}/{version}" if group else version] = orjson.dumps(
                self._resource_list(group, version, rs))

        core_versions = self.groups.get("", [])
        self.api_versions = {"kind": "APIVersions", "versions": core_versions}
        named = [g for g in self.groups if g]
        self.group_docs: dict[str, bytes] = {g: orjson.dumps(self._api_group(g, self.groups[g])) for g in named}
        self.apis = orjson.dumps({"kind": "APIGroupList", "apiVersion": "v1",
                                  "groups": [self._api_group(g, self.groups[g], full=False) for g in named]})

        agg_core = [self._aggregated_group("", core_versions, by_gv)] if core_versions else []
        agg_named = [self._aggregated_group(g, self.groups[g], by_gv) for g in named]
        self.aggregated: dict[tuple[str, str], bytes] = {}
        for api_version in ("v2", "v2beta1"):
            for root, items in (("api", agg_core), ("apis", agg_named)):
                self.aggregated[(root, api_version)] = orjson.dumps({
                    "kind": "APIGroupDiscoveryList",
                    "apiVersion": f"apidiscovery.k8s.io/{api_version}",
                    "metadata": {},
                    "items": items,
                })
        self.version = orjson.dumps(VERSION_INFO)

    @staticmethod
    def _ordered_groups(registry: Registry) -> dict[str, list[str]]:
        found = registry.group_versions()
        rank = {g: i for i, g in enumerate(GROUP_ORDER)}
        order = sorted(found, key=lambda g: (g != "", rank.get(g, len(rank)), g))
        out: dict[str, list[str]] = {}
        for g in order:
            preferred = [v for v in found[g]
                         if any(r.preferred for r in registry.in_group_version(g, v))]
            rest = sorted((v for v in found[g] if v not in preferred), key=_version_key)
            out[g] = sorted(preferred, key=_version_key) + rest
        return out

    @staticmethod
    def _api_group(group: str, versions: list[str], full: bool = True) -> dict[str, Any]:
        vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        doc: dict[str, Any] = {"kind": "APIGroup", "apiVersion": "v1"} if full else {}
        doc.update({"name": group, "versions": vs, "preferredVersion": vs[0]})
        return doc

    @staticmethod
    def _resource_list(group: str, version: str, resources: list[Resource]) -> dict[str, Any]:
        entries: list[dict[str, Any]] = []
        for r in resources:
            e: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": list(r.verbs)}
            if r.short_names:
                e["shortNames"] = list(r.short_names)
            if r.categories:
                e["categories"] = list(r.categories)
            stored = (r.storage_version or r.version).rpartition("/")[2]  # may be group-qualified
            e["storageVersionHash"] = storage_version_hash(r.group, stored, r.kind)
            entries.append(e)
            for sub in r.subresources:
                info = subresource_info(r, sub)
                s: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced}
                if (info.group, info.version) != (group, version):
                    s["group"] = info.group
                    s["version"] = info.version
                s["kind"] = info.kind
                s["verbs"] = list(info.verbs)
                entries.append(s)
        entries.sort(key=lambda e: e["name"])
        doc: dict[str, Any] = {"kind": "APIResourceList"}
        if group:  # upstream's /api/v1 answer has no apiVersion, the named groups' answers do
            doc["apiVersion"] = "v1"
        doc["groupVersion"] = f"{group}/{version}" if group else version
        doc["resources"] = entries
        return doc

    @staticmethod
    def _aggregated_group(group: str, versions: list[str],
                          by_gv: dict[tuple[str, str], list[Resource]]) -> dict[str, Any]:
        out_versions = []
        for v in versions:
            resources = []
            for r in by_gv.get((group, v), []):
                e: dict[str, Any] = {
                    "resource": r.plural,
                    "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                    "scope": "Namespaced" if r.namespaced else "Cluster",
                    "singularResource": r.singular,
                    "verbs": list(r.verbs),
                }
                if r.short_names:
                    e["shortNames"] = list(r.short_names)
                if r.categories:
                    e["categories"] = list(r.categories)
                subs = []
                for sub in sorted(r.subresources):
                    info = subresource_info(r, sub)
                    subs.append({"subresource": sub,
                                 "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
                                 "verbs": list(info.verbs)})
                if subs:
                    e["subresources"] = subs
                resources.append(e)
            out_versions.append({"version": v, "resources": resources, "freshness": "Current"})
        meta: dict[str, Any] = {"name": group} if group else {}
        meta["creationTimestamp"] = None
        return {"metadata": meta, "versions": out_versions}


def aggregated_version(accept: str) -> str | None:
    """The apidiscovery version the Accept header asks for first (v2 or v2beta1), or None for the legacy form."""
    for part in accept.split(","):
        params = {}
        media, *rest = [p.strip() for p in part.split(";")]
        if media not in ("application/json", "*/*", "application/*"):
            continue
        for p in rest:
            k, _, v = p.partition("=")
            params[k.strip()] = v.strip()
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList":
            if params.get("v") in ("v2", "v2beta1"):
                return params["v"]
        elif media == "application/json" and "g" not in params:
            return None  # plain JSON preferred before any aggregated form
    return None


def add_discovery_routes(app: web.Application, registry: Registry, advertise_address: str = "") -> None:
    """Serve the discovery endpoints for `registry` on `app` (documents rebuilt when the registry changes)."""
    built: list[Any] = [registry.revision, Discovery(registry)]

    def current() -> Discovery:
        if built[0] != registry.revision:
            built[0] = registry.revision
            built[1] = Discovery(registry)
        return built[1]

    def json_response(body: bytes, content_type: str = "application/json") -> web.Response:
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = content_type
        return resp

    def aggregated(root: str, request: web.Request) -> web.Response | None:
        version = aggregated_version(request.headers.get("Accept", ""))
        if version is None:
            return None
        resp = json_response(current().aggregated[(root, version)], AGGREGATED_V2 if version == "v2" else AGGREGATED_V2BETA1)
        resp.headers["Vary"] = "Accept"
        etag = '"' + hashlib.sha256(current().aggregated[(root, version)]).hexdigest().upper() + '"'
        resp.headers["ETag"] = etag
        return resp

    async def version(request: web.Request) -> web.Response:
        return json_response(current().version)

    async def api(request: web.Request) -> web.Response:
        agg = aggregated("api", request)
        if agg is not None:
            return agg
        address = advertise_address or request.host
        body = dict(current().api_versions)
        body["serverAddressByClientCIDRs"] = [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]
        resp = json_response(orjson.dumps(body))
        resp.headers["Vary"] = "Accept"
        return resp

    async def apis(request: web.Request) -> web.Response:
        agg = aggregated("apis", request)
        if agg is not None:
            return agg
        resp = json_response(current().apis)
        resp.headers["Vary"] = "Accept"
        return resp

    async def core_version(request: web.Request) -> web.Response:
        body = current().resource_lists.get(request.match_info["version"])
        if body is None or "/" in request.match_info["version"]:
            return _not_found()
        return json_response(body)

    async def group(request: web.Request) -> web.Response:
        body = current().group_docs.get(request.match_info["group"])
        return json_response(body) if body is not None else _not_found()

    async def group_version(request: web.Request) -> web.Response:
        body = current().resource_lists.get(f"{request.match_info['group']}/{request.match_info['version']}")
        return json_response(body) if body is not None else _not_found()

    app.router.add_get("/version", version)
    app.router.add_get("/version/", version)
    app.router.add_get("/api", api)
    app.router.add_get("/api/", api)
    app.router.add_get("/apis", apis)
    app.router.add_get("/apis/", apis)
    app.router.add_get("/api/{version}", core_version)
    app.router.add_get("/api/{version}/", core_version)
    app.router.add_get("/apis/{group}", group)
    app.router.add_get("/apis/{group}/", group)
    app.router.add_get("/apis/{group}/{version}", group_version)
    app.router.add_get("/apis/{group}/{version}/", group_version)


def _not_found() -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "the server could not find the requested resource", "reason": "NotFound",
            "details": {}, "code": 404}
    return web.Response(status=404, body=orjson.dumps(body), content_type="application/json")
