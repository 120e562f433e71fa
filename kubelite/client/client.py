"""The one API client every kubelite component uses, in the spirit of client-go's dynamic client.

`Client(transport)` is transport-agnostic: `Client.from_kubeconfig()` talks HTTPS to a server,
`Client.in_process(service)` calls the API server's service object directly (the embedded
controllers and the tests). `client.resource(group, version, plural)` returns a `ResourceClient`
with the REST verbs; failures raise `kubelite.api.errors.StatusError` as the server worded them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from kubelite.client.transport import GVR, PATCH_CONTENT_TYPES, InProcessTransport, Transport


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


class ResourceClient:
    """REST verbs on one resource (group, version, plural); namespace None means cluster-wide."""

    def __init__(self, transport: Transport, group: str, version: str, plural: str):
        self._t = transport
        self.gvr: GVR = (group, version, plural)

    def __repr__(self) -> str:
        return f"ResourceClient{self.gvr}"

    @staticmethod
    def _ns(namespace: str | None, obj: dict | None = None) -> str | None:
        if namespace:
            return namespace
        if obj is not None:
            return _meta(obj).get("namespace") or None
        return None

    async def get(self, name: str, namespace: str | None = None) -> dict:
        return await self._t.get(self.gvr, self._ns(namespace), name)

    async def list(self, namespace: str | None = None, label_selector: str = "", field_selector: str = "",
                   limit: int = 0, continue_: str = "", resource_version: str = "") -> dict:
        """The List object (`items`, `metadata.resourceVersion`, `metadata.continue`)."""
        return await self._t.list(self.gvr, self._ns(namespace), label_selector=label_selector,
                                  field_selector=field_selector, limit=limit, continue_=continue_,
                                  resource_version=resource_version)

    async def list_all(self, namespace: str | None = None, label_selector: str = "", field_selector: str = "",
                       page_size: int = 500) -> dict:
        """All pages of a list joined into one List object, as client-go's pager does."""
        out: dict | None = None
        cont = ""
        while True:
            page = await self.list(namespace, label_selector, field_selector, limit=page_size, continue_=cont)
            if out is None:
                out = page
            else:
                out["items"].extend(page.get("items") or [])
                out["metadata"] = page.get("metadata") or {}
            cont = (page.get("metadata") or {}).get("continue") or ""
            if not cont:
                out.setdefault("items", [])
                out["metadata"].pop("continue", None)
                return out

    async def create(self, obj: dict, namespace: str | None = None, dry_run: bool = False,
                     field_manager: str | None = None) -> dict:
        return await self._t.create(self.gvr, self._ns(namespace, obj), obj, dry_run=dry_run,
                                    field_manager=field_manager or "")

    async def update(self, obj: dict, namespace: str | None = None, dry_run: bool = False,
                     field_manager: str | None = None) -> dict:
        return await self._t.update(self.gvr, self._ns(namespace, obj), _meta(obj)["name"], obj,
                                    dry_run=dry_run, field_manager=field_manager or "")

    async def update_status(self, obj: dict, namespace: str | None = None, field_manager: str | None = None) -> dict:
        return await self._t.update(self.gvr, self._ns(namespace, obj), _meta(obj)["name"], obj,
                                    subresource="status", field_manager=field_manager or "")

    async def patch(self, name: str, patch: Any, patch_type: str = "merge", namespace: str | None = None,
                    subresource: str = "", field_manager: str | None = None, force: bool = False,
                    dry_run: bool = False) -> dict:
        """patch_type: merge | strategic | json | apply (server-side apply needs field_manager)."""
        try:
            content_type = PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r}: one of {', '.join(PATCH_CONTENT_TYPES)}") from None
        if isinstance(patch, str):
            body = patch.encode()
        elif isinstance(patch, bytes):
            body = patch
        else:
            body = orjson.dumps(patch)
        return await self._t.patch(self.gvr, self._ns(namespace), name, content_type, body,
                                   subresource=subresource, dry_run=dry_run, field_manager=field_manager or "",
                                   force=force)

    async def delete(self, name: str, namespace: str | None = None, propagation_policy: str | None = None,
                     grace_period_seconds: int | None = None, preconditions: dict | None = None,
                     dry_run: bool = False) -> dict:
        """Returns what the server answers: the object (being finalized or gone) or a Success Status."""
        return await self._t.delete(self.gvr, self._ns(namespace), name,
                                    _delete_options(propagation_policy, grace_period_seconds, preconditions),
                                    dry_run=dry_run)

    async def delete_collection(self, namespace: str | None = None, label_selector: str = "",
                                field_selector: str = "", propagation_policy: str | None = None) -> dict:
        return await self._t.delete_collection(self.gvr, self._ns(namespace),
                                               _delete_options(propagation_policy, None, None),
                                               label_selector=label_selector, field_selector=field_selector)

    def watch(self, namespace: str | None = None, resource_version: str = "", label_selector: str = "",
              field_selector: str = "", allow_bookmarks: bool = True, timeout_seconds: int | None = None,
              trim_managed_fields: bool = False) -> AsyncIterator[tuple[str, dict]]:
        """(type, object) events: ADDED, MODIFIED, DELETED, BOOKMARK. An ERROR event raises StatusError
        (410 Expired when resource_version is too old). Close with `aclose()` or by leaving `async for`.
        `trim_managed_fields` leaves metadata.managedFields out of the objects."""
        kw = {"trim_managed_fields": True} if trim_managed_fields else {}  # transports that predate it
        return self._t.watch(self.gvr, self._ns(namespace), resource_version=resource_version,
                             label_selector=label_selector, field_selector=field_selector,
                             allow_bookmarks=allow_bookmarks, timeout_seconds=timeout_seconds, **kw)

    async def create_subresource(self, name: str, subresource: str, body: dict,
                                 namespace: str | None = None) -> dict:
        """POST to a subresource: pods/binding, pods/eviction, serviceaccounts/token."""
        return await self._t.create(self.gvr, self._ns(namespace, body), body, subresource=subresource, name=name)

    async def get_subresource(self, name: str, subresource: str, namespace: str | None = None) -> dict:
        return await self._t.get(self.gvr, self._ns(namespace), name, subresource)

    async def update_subresource(self, name: str, subresource: str, body: dict,
                                 namespace: str | None = None) -> dict:
        return await self._t.update(self.gvr, self._ns(namespace, body), name, body, subresource=subresource)


def _delete_options(propagation_policy: str | None, grace_period_seconds: int | None,
                    preconditions: dict | None) -> dict | None:
    opts: dict[str, Any] = {}
    if propagation_policy:
        opts["propagationPolicy"] = propagation_policy
    if grace_period_seconds is not None:
        opts["gracePeriodSeconds"] = grace_period_seconds
    if preconditions:
        opts["preconditions"] = preconditions
    if not opts:
        return None
    return {"kind": "DeleteOptions", "apiVersion": "v1", **opts}


# Convenience accessors: attribute name -> (group, version, plural)
WELL_KNOWN: dict[str, GVR] = {
    "pods": ("", "v1", "pods"),
    "nodes": ("", "v1", "nodes"),
    "namespaces": ("", "v1", "namespaces"),
    "services": ("", "v1", "services"),
    "endpoints": ("", "v1", "endpoints"),
    "configmaps": ("", "v1", "configmaps"),
    "secrets": ("", "v1", "secrets"),
    "events": ("", "v1", "events"),
    "serviceaccounts": ("", "v1", "serviceaccounts"),
    "persistentvolumes": ("", "v1", "persistentvolumes"),
    "persistentvolumeclaims": ("", "v1", "persistentvolumeclaims"),
    "replicationcontrollers": ("", "v1", "replicationcontrollers"),
    "resourcequotas": ("", "v1", "resourcequotas"),
    "limitranges": ("", "v1", "limitranges"),
    "deployments": ("apps", "v1", "deployments"),
    "replicasets": ("apps", "v1", "replicasets"),
    "statefulsets": ("apps", "v1", "statefulsets"),
    "daemonsets": ("apps", "v1", "daemonsets"),
    "controllerrevisions": ("apps", "v1", "controllerrevisions"),
    "jobs": ("batch", "v1", "jobs"),
    "cronjobs": ("batch", "v1", "cronjobs"),
    "endpointslices": ("discovery.k8s.io", "v1", "endpointslices"),
    "leases": ("coordination.k8s.io", "v1", "leases"),
    "ingresses": ("networking.k8s.io", "v1", "ingresses"),
    "networkpolicies": ("networking.k8s.io", "v1", "networkpolicies"),
    "horizontalpodautoscalers": ("autoscaling", "v2", "horizontalpodautoscalers"),
    "poddisruptionbudgets": ("policy", "v1", "poddisruptionbudgets"),
}


class Client:
    """Entry point: `client.resource(group, version, plural)` or `client.pods`, `client.deployments`..."""

    def __init__(self, transport: Transport):
        self.transport = transport
        self._resources: dict[GVR, ResourceClient] = {}

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> Client:
        from kubelite.client.kubeconfig import transport_from_kubeconfig

        return cls(transport_from_kubeconfig(path, context))

    @classmethod
    def in_cluster(cls) -> Client:
        from kubelite.client.kubeconfig import transport_in_cluster

        return cls(transport_in_cluster())

    @classmethod
    def in_process(cls, service: Any) -> Client:
        return cls(InProcessTransport(service))

    def resource(self, group: str, version: str, plural: str) -> ResourceClient:
        key = (group, version, plural)
        rc = self._resources.get(key)
        if rc is None:
            rc = self._resources[key] = ResourceClient(self.transport, group, version, plural)
        return rc

    def __getattr__(self, name: str) -> ResourceClient:
        gvr = WELL_KNOWN.get(name)
        if gvr is None:
            raise AttributeError(name)
        return self.resource(*gvr)

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
