"""Generic REST semantics over the store: the one place create/get/list/update/patch/delete/watch live.

Mirrors upstream's generic registry (`k8s.io/apiserver/pkg/registry/generic/registry/store.go`):
kinds plug in through their `Resource` hooks and admission plugins; nothing here knows a kind,
except the few subresources upstream also special-cases (scale, binding, eviction, finalize).
The HTTP handlers and the in-process client transport both call this class.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from kubelite.api import errors, meta
from kubelite.api.registry import Registry, Resource
from kubelite.api.selectors import object_fields, parse_field_selector, parse_label_selector
from kubelite.apiserver import finalizers as fin
from kubelite.apiserver.admission import AdmissionPlugin, AdmissionRequest
from kubelite.apiserver.admission.namespace_lifecycle import check_namespace_deletable
from kubelite.apiserver.auth import current_user
from kubelite.apiserver.webhook_client import WebhookClient
from kubelite.storage.interface import (
    CompactedError,
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    Store,
)

Obj = dict[str, Any]

_CONFLICT_DETAIL = "the object has been modified; please apply your changes to the latest version and try again"
BOOKMARK_INTERVAL = 30.0


def _without_volatile(obj: Obj) -> Obj:
    """The object minus fields that change on every write, to detect no-op updates as upstream does."""
    out = dict(obj)
    m = dict(out.get("metadata") or {})
    for k in ("resourceVersion", "managedFields", "generation"):
        m.pop(k, None)
    out["metadata"] = m
    return out


def _drop_empty_metadata(m: Obj) -> None:
    """Upstream serializes these with omitempty: an empty map or list is never stored or shown."""
    for k in ("labels", "annotations", "finalizers", "ownerReferences"):
        if k in m and not m[k]:
            del m[k]


def _replace_key(m: Obj, old_m: Obj, key: str) -> None:
    """Reset one metadata field to its stored value (a status strategy's reset field)."""
    if key in old_m:
        m[key] = meta.deep_copy(old_m[key])
    else:
        m.pop(key, None)


def _content(obj: Obj) -> Obj:
    """What bumps metadata.generation: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class _ExpiredContinue(errors.StatusError):
    """410 for a continue token whose version was compacted away; its Status carries a token that
    continues the list inconsistently (from the same key, at the newest version), as upstream's."""

    def __init__(self, start: str):
        super().__init__(410, "Expired", "The provided continue parameter is too old to display a consistent list "
                         "result. You can start a new list without the continue parameter, or use the continue "
                         "token in this response to retrieve the remainder of the results. Continuing with the "
                         "provided token results in an inconsistent list - objects that were created, modified, or "
                         "deleted between the time the first chunk was returned and now may show up in the list.")
        token = {"v": "meta.k8s.io/v1", "rv": -1, "start": start}
        self.continue_token = base64.urlsafe_b64encode(orjson.dumps(token)).decode().rstrip("=")

    def status(self) -> dict:
        s = super().status()
        s["metadata"] = {"continue": self.continue_token}
        return s


class APIService:
    def __init__(self, registry: Registry, store: Store, admission: list[AdmissionPlugin] | None = None):
        self.registry = registry
        self.store = store
        self.admission: list[AdmissionPlugin] = []
        self._admitting: list[AdmissionPlugin] = []
        self._mutating: list[AdmissionPlugin] = []
        self._validating: list[AdmissionPlugin] = []
        for plugin in admission or []:
            self.add_admission_plugin(plugin)
        # calls to webhooks (admission, CRD conversion): one pool of kept-alive connections
        self.webhooks = WebhookClient(store)

    def add_admission_plugin(self, plugin: AdmissionPlugin) -> None:
        """Append a plugin to the chain (the escalation check joins once authorization is set up)."""
        self.admission.append(plugin)
        kind = type(plugin)
        # each phase calls only the plugins that implement it: a phase a plugin does not override
        # costs nothing per request
        if kind.admit is not AdmissionPlugin.admit or kind.release is not AdmissionPlugin.release:
            self._admitting.append(plugin)
        if kind.mutate_request is not AdmissionPlugin.mutate_request:
            self._mutating.append(plugin)
        if kind.validate_request is not AdmissionPlugin.validate_request:
            self._validating.append(plugin)

    async def start(self) -> None:
        for plugin in self.admission:
            await plugin.start(self)

    async def stop(self) -> None:
        await self.webhooks.close()

    # ------------------------------------------------------------------ helpers
    def _key(self, res: Resource, namespace: str | None, name: str) -> str:
        return res.key(namespace, name)

    def _prefix(self, res: Resource, namespace: str | None) -> str:
        prefix = res.storage_prefix()
        if res.namespaced and namespace:
            prefix += namespace + "/"
        return prefix

    async def _to_storage(self, res: Resource, obj: Obj) -> Obj:
        if res.convert and res.storage_version and res.storage_version != res.version:
            if res.conversion_webhook is not None:
                obj = await self._webhook_convert(res, obj, res.storage_version)
            return res.convert(obj, res.storage_version)
        return obj

    async def _from_storage(self, res: Resource, obj: Obj) -> Obj:
        if res.convert and res.storage_version and res.storage_version != res.version:
            if res.conversion_webhook is not None:
                obj = await self._webhook_convert(res, obj, res.group_version)
            return res.convert(obj, res.version)
        return obj

    async def _webhook_convert(self, res: Resource, obj: Obj, api_version: str) -> Obj:
        """A custom resource converted by its CRD's conversion webhook (nothing to do within a version)."""
        if obj.get("apiVersion") == api_version:
            return obj
        from kubelite.apiextensions import conversion_webhook

        return (await conversion_webhook.convert(self.webhooks, res, [obj], api_version))[0]

    def _check_type(self, res: Resource, obj: Obj) -> None:
        api_version = obj.get("apiVersion")
        if api_version and api_version != res.group_version:
            raise errors.new_bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({res.group_version})"
            )
        kind = obj.get("kind")
        if kind and kind != res.kind:
            raise errors.new_bad_request(f"the kind in the data ({kind}) does not match the expected kind ({res.kind})")
        obj["apiVersion"] = res.group_version
        obj["kind"] = res.kind

    def _validate(self, res: Resource, obj: Obj, old: Obj | None, subresource: str = "") -> None:
        from kubelite.api.kinds.common import validate_object_meta

        fe = validate_object_meta(obj, res.namespaced, res.name_rule, kube_finalizers=not res.custom)
        if old is None:
            fe += res.validate(obj)
        elif subresource == "status" and res.validate_status_update is not None:
            fe += res.validate_status_update(obj, old)
        else:
            fe += res.validate_update(obj, old)
        if fe:
            # a kind's hooks may validate metadata again: report each error once
            seen: set[str] = set()
            fe = [e for e in fe if not (str(e) in seen or seen.add(str(e)))]
            raise errors.new_invalid(res.kind, res.group, obj["metadata"].get("name", ""), fe)

    async def _admit(self, op: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        done: list[AdmissionPlugin] = []
        try:
            for plugin in self._admitting:
                await plugin.admit(op, res, obj, old)
                done.append(plugin)
        except BaseException:
            for plugin in done:
                plugin.release(res, obj, old)
            raise

    async def admit_request(self, validating: bool, op: str, res: Resource, obj: Obj | None, old: Obj | None,
                            subresource: str = "", dry_run: bool = False, warnings: list[str] | None = None) -> None:
        """The request-level admission phases: mutating after admit(), validating after validation."""
        plugins = self._validating if validating else self._mutating
        if not plugins:
            return
        req = AdmissionRequest(subresource, dry_run, current_user.get(), warnings)
        for plugin in plugins:
            if validating:
                await plugin.validate_request(op, res, obj, old, req)
            else:
                await plugin.mutate_request(op, res, obj, old, req)

    def _release(self, res: Resource, obj: Obj, old: Obj | None) -> None:
        for plugin in self.admission:
            plugin.release(res, obj, old)

    def _committed(self, res: Resource, obj: Obj | None, old: Obj | None) -> None:
        for plugin in self.admission:
            plugin.committed(res, obj, old)

    def _managed_fields(self, res: Resource, old: Obj | None, new: Obj, manager: str, operation: str,
                        subresource: str = "") -> None:
        from kubelite.apiserver.apply import update_managed_fields

        update_managed_fields(old, new, manager or "unknown", operation, res.definition, res.group_version,
                              meta.now_rfc3339(), subresource)

    # ------------------------------------------------------------------ get / list
    async def get(self, res: Resource, namespace: str | None, name: str, subresource: str = "") -> Obj:
        if res.backend is not None:  # computed, not stored (registry.Resource.backend)
            return await res.backend.get(namespace, name)
        obj = await self.store.get(self._key(res, namespace, name))
        if obj is None:
            raise errors.new_not_found(res.plural, res.group, name)
        obj = await self._from_storage(res, obj)
        if subresource == "scale":
            return self._scale_of(res, obj)
        return obj

    def _selector_filter(self, res: Resource, label_selector: str, field_selector: str):
        lsel = parse_label_selector(label_selector) if label_selector else None
        fsel = parse_field_selector(field_selector) if field_selector else None
        if fsel is not None:
            fsel.validate_for(res.kind) if hasattr(fsel, "validate_for") else None
        if lsel is None and fsel is None:
            return None

        def match(obj: Obj) -> bool:
            if lsel is not None and not lsel.matches(obj.get("metadata", {}).get("labels") or {}):
                return False
            if fsel is not None and not fsel.matches(object_fields(res.kind, obj)):
                return False
            return True

        return match

    async def list(self, res: Resource, namespace: str | None, *, label_selector: str = "", field_selector: str = "",
                   limit: int = 0, continue_: str = "", resource_version: str = "",
                   resource_version_match: str = "") -> Obj:
        if res.backend is not None:  # computed, not stored (registry.Resource.backend)
            return await res.backend.list(namespace, label_selector, field_selector)
        match = self._selector_filter(res, label_selector, field_selector)
        prefix = self._prefix(res, namespace)
        start_after = ""
        list_rev = 0
        if continue_:
            try:
                token = orjson.loads(base64.urlsafe_b64decode(continue_ + "=" * (-len(continue_) % 4)))
                start_after = prefix + token["start"]
                list_rev = int(token["rv"])
            except Exception as exc:
                raise errors.new_bad_request(f"continue key is not valid: {exc}") from None
            if list_rev < 0:  # an inconsistent continuation: the rest of the list as it is now
                list_rev = 0
            elif list_rev:
                try:
                    self.store.watch(prefix, list_rev).close()
                except CompactedError:
                    raise _ExpiredContinue(token["start"]) from None
        # without a selector the store pages by itself and counts what remains
        objects, rev, more = await self.store.list(prefix, limit if match is None else 0, start_after)
        if resource_version_match == "Exact" and resource_version and int(resource_version or 0) != rev:
            raise errors.new_gone(f"too old resource version: {resource_version} ({rev})")
        remaining = await self.store.count(prefix, more) if more else 0
        if match is None:
            items = [await self._from_storage(res, obj) for obj in objects] if res.convert else objects
            last_key = objects[-1] if objects else {}
        else:
            items = []
            for obj in objects:
                if not match(obj):
                    continue
                if limit and len(items) >= limit:
                    remaining += 1
                    continue
                items.append(await self._from_storage(res, obj) if res.convert else obj)
                last_key = obj
        list_meta: Obj = {"resourceVersion": str(list_rev or rev)}
        if limit and remaining:
            m = last_key["metadata"]
            start = (m["namespace"] + "/" if res.namespaced and not namespace else "") + m["name"]
            token = {"v": "meta.k8s.io/v1", "rv": list_rev or rev, "start": start}
            list_meta["continue"] = base64.urlsafe_b64encode(orjson.dumps(token)).decode().rstrip("=")
            if match is None:
                list_meta["remainingItemCount"] = remaining
        return {"kind": res.kind + "List", "apiVersion": res.group_version, "metadata": list_meta, "items": items}

    # ------------------------------------------------------------------ create
    async def create(self, res: Resource, namespace: str | None, body: Obj, *, subresource: str = "", name: str = "",
                     dry_run: bool = False, field_manager: str = "", warnings: list[str] | None = None) -> Obj:
        if subresource:
            return await self._create_subresource(res, namespace, name, subresource, body, dry_run)
        if res.group == "" and res.plural == "bindings":  # core/v1 Binding binds the pod it names
            from kubelite.apiserver import pod_subresources

            return await pod_subresources.bind(self, self.registry.get("", "v1", "pods"), namespace,
                                               (body.get("metadata") or {}).get("name", ""), body, dry_run)
        obj = dict(body)
        self._check_type(res, obj)
        m = dict(obj.get("metadata") or {})
        obj["metadata"] = m
        if res.namespaced:
            ns = m.get("namespace") or namespace
            if namespace and m.get("namespace") and m["namespace"] != namespace:
                raise errors.new_bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request")
            m["namespace"] = ns
        else:
            m.pop("namespace", None)
        if not m.get("name"):
            if m.get("generateName"):
                m["name"] = meta.generate_name(m["generateName"])
            else:
                raise errors.new_invalid(res.kind, res.group, "", [errors.required("metadata.name", "name or generateName is required")])
        if m.get("resourceVersion"):
            raise errors.new_bad_request("resourceVersion should not be set on objects to be created")
        m["uid"] = meta.new_uid()
        m["creationTimestamp"] = meta.now_rfc3339()
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            m.pop(k, None)
        if res.tracks_generation:
            m["generation"] = 1
        else:
            m.pop("generation", None)
        obj = meta.deep_copy(obj)
        _drop_empty_metadata(obj["metadata"])
        res.default(obj)
        res.prepare_create(obj)
        await self._admit("CREATE", res, obj, None)
        try:
            await self.admit_request(False, "CREATE", res, obj, None, "", dry_run)
            self._validate(res, obj, None)
            await self.admit_request(True, "CREATE", res, obj, None, "", dry_run, warnings)
            obj["metadata"].pop("managedFields", None)
            self._managed_fields(res, None, obj, field_manager, "Update")
            if dry_run:
                self._release(res, obj, None)
                return obj
            try:
                stored = await self.store.create(self._key(res, obj["metadata"].get("namespace"), obj["metadata"]["name"]),
                                                 await self._to_storage(res, obj))
            except KeyExistsError:
                raise errors.new_already_exists(res.plural, res.group, obj["metadata"]["name"]) from None
        except BaseException:
            self._release(res, obj, None)
            raise
        self._committed(res, stored, None)
        return await self._from_storage(res, stored)

    # ------------------------------------------------------------------ update
    async def update(self, res: Resource, namespace: str | None, name: str, body: Obj, *, subresource: str = "",
                     dry_run: bool = False, field_manager: str = "", warnings: list[str] | None = None) -> Obj:
        body_name = (body.get("metadata") or {}).get("name")
        if subresource == "scale":
            return await self._update_scale(res, namespace, name, body, dry_run, field_manager)
        if body_name and body_name != name:
            raise errors.new_bad_request(f"the name of the object ({body_name}) does not match the name on the URL ({name})")
        expected = (body.get("metadata") or {}).get("resourceVersion")
        old = await self.store.get(self._key(res, namespace, name))
        if old is None:
            raise errors.new_not_found(res.plural, res.group, name)
        old = await self._from_storage(res, old)
        if expected and expected != old["metadata"].get("resourceVersion"):
            raise errors.new_conflict(res.plural, res.group, name, _CONFLICT_DETAIL)
        return await self._write_update(res, old, dict(body), subresource, dry_run, field_manager, "Update")

    async def _write_update(self, res: Resource, old: Obj, new: Obj, subresource: str, dry_run: bool,
                            field_manager: str, operation: str) -> Obj:
        """The shared tail of update and patch: strategy, admission, validation, CAS write."""
        self._check_type(res, new)
        name = old["metadata"]["name"]
        new = meta.deep_copy(new)
        m = meta.meta(new)
        om = old["metadata"]
        if m.get("uid") and m["uid"] != om.get("uid"):
            raise errors.new_conflict(res.plural, res.group, name,
                                      f"Precondition failed: UID in precondition: {m['uid']}, UID in object meta: {om.get('uid')}")
        m["name"] = name
        if res.namespaced:
            m["namespace"] = om.get("namespace")
        else:
            m.pop("namespace", None)
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if k in om:
                m[k] = om[k]
            else:
                m.pop(k, None)
        m["resourceVersion"] = om.get("resourceVersion")
        _drop_empty_metadata(m)
        has_status = "status" in res.subresources
        if subresource == "finalize":
            # namespaces/finalize: only spec.finalizers may change (the namespace controller's last step)
            finalizers = (new.get("spec") or {}).get("finalizers") or []
            new = meta.deep_copy(old)
            new.setdefault("spec", {})["finalizers"] = list(finalizers)
        elif subresource == "ephemeralcontainers":
            from kubelite.apiserver import pod_subresources

            new = pod_subresources.ephemeral_containers_update(new, old)
        elif subresource in ("status", "approval"):
            # upstream's status strategies: status and metadata may change, the rest stays as it was
            # (custom resources keep their metadata too; a Deployment keeps its labels)
            status = new.get("status")
            if subresource == "approval":  # a CSR's approval: only status.conditions may change
                conditions = (status or {}).get("conditions")
                status = {k: v for k, v in (old.get("status") or {}).items() if k != "conditions"}
                if conditions is not None:
                    status["conditions"] = conditions
            new_meta = new["metadata"]
            new = meta.deep_copy(old)
            if not res.custom:
                new["metadata"] = new_meta
                if res.group == "apps" and res.plural == "deployments":
                    _replace_key(new_meta, om, "labels")
                elif res.group == "" and res.plural == "pods":
                    _replace_key(new_meta, om, "ownerReferences")
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            if subresource == "status":
                res.prepare_status_update(new, old)
        else:
            if has_status:
                if "status" in old:
                    new["status"] = meta.deep_copy(old["status"])
                else:
                    new.pop("status", None)
            res.default(new)
            res.prepare_update(new, old)
        if res.tracks_generation:
            gen = om.get("generation") or 1
            if subresource not in ("status", "approval") and _content(new) != _content(old):
                gen += 1
            new["metadata"]["generation"] = gen
        else:
            new["metadata"].pop("generation", None)
        if subresource not in ("status", "approval", "finalize"):
            await self._admit("UPDATE", res, new, old)
        try:
            if subresource != "finalize":
                await self.admit_request(False, "UPDATE", res, new, old, subresource, dry_run)
            if subresource == "ephemeralcontainers":
                from kubelite.apiserver import pod_subresources

                fe = pod_subresources.validate_ephemeral_containers_update(new, old)
                if fe:
                    raise errors.new_invalid(res.kind, res.group, name, fe)
            else:
                self._validate(res, new, old, subresource)
            if subresource != "finalize":
                await self.admit_request(True, "UPDATE", res, new, old, subresource, dry_run)
            if _without_volatile(new) == _without_volatile(old):
                self._release(res, new, old)
                return old
            if "managedFields" not in new["metadata"] and om.get("managedFields"):
                new["metadata"]["managedFields"] = om["managedFields"]
            if operation != "Apply":
                self._managed_fields(res, old, new, field_manager, "Update", subresource)
            if dry_run:
                self._release(res, new, old)
                return new
            if fin.deletion_complete(res, new):
                try:
                    deleted = await self._delete_now(res, new, int(om["resourceVersion"]))
                except ConflictError:
                    raise errors.new_conflict(res.plural, res.group, name, _CONFLICT_DETAIL) from None
                self._committed(res, None, old)
                # answer with what the writer asked for (e.g. finalizers gone), at the deletion's version
                new["metadata"]["resourceVersion"] = deleted["metadata"]["resourceVersion"]
                return new
            try:
                stored = await self.store.update(self._key(res, om.get("namespace"), name), await self._to_storage(res, new),
                                                 int(om["resourceVersion"]))
            except ConflictError:
                raise errors.new_conflict(res.plural, res.group, name, _CONFLICT_DETAIL) from None
            except KeyNotFoundError:
                raise errors.new_not_found(res.plural, res.group, name) from None
        except BaseException:
            self._release(res, new, old)
            raise
        self._committed(res, stored, old)
        return await self._from_storage(res, stored)

    # ------------------------------------------------------------------ patch
    async def patch(self, res: Resource, namespace: str | None, name: str, content_type: str, body: bytes, *,
                    subresource: str = "", dry_run: bool = False, field_manager: str = "", force: bool = False,
                    warnings: list[str] | None = None, field_validation: str = "") -> Obj:
        from kubelite.apiserver import apply, patch

        ctype = content_type.split(";")[0].strip()
        preconditioned = b'"resourceVersion"' in body or b"resourceVersion:" in body
        for attempt in range(5):
            stored = await self.store.get(self._key(res, namespace, name))
            if subresource == "scale":
                if stored is None:
                    raise errors.new_not_found(res.plural, res.group, name)
                scale = self._scale_of(res, await self._from_storage(res, stored))
                patched = patch.patch(scale, body, ctype, "io.k8s.api.autoscaling.v1.Scale")
                try:
                    return await self._update_scale(res, namespace, name, patched, dry_run, field_manager)
                except errors.StatusError as e:
                    if e.code != 409 or preconditioned or attempt == 4:
                        raise
                    continue  # a controller wrote meanwhile: patch the newer object, as upstream retries
            if ctype == "application/apply-patch+yaml":
                applied = _decode_apply(body)
                self._check_type(res, applied)
                if not field_manager:
                    raise errors.new_bad_request("PATCH request with apply content type requires fieldManager parameter")
                if res.definition:
                    from kubelite.api.structural import check_apply

                    found = check_apply(res.definition, body, applied, namespace, name, field_validation or "Warn")
                    if warnings is not None:
                        warnings.extend(found)
                if stored is None:
                    if subresource:
                        raise errors.new_not_found(res.plural, res.group, name)
                    applied = _check_unknown(res, applied, field_validation, warnings)
                    obj = apply.server_side_apply(None, applied, field_manager, force, res.definition,
                                                  res.group_version, meta.now_rfc3339())
                    meta.meta(obj).setdefault("name", name)
                    if res.namespaced:
                        obj["metadata"].setdefault("namespace", namespace)
                    return await self._create_applied(res, namespace, obj, dry_run)
                old = await self._from_storage(res, stored)
                applied = _check_unknown(res, applied, field_validation, warnings)
                new = apply.server_side_apply(old, applied, field_manager, force, res.definition,
                                              res.group_version, meta.now_rfc3339())
                operation = "Apply"
            else:
                if stored is None:
                    raise errors.new_not_found(res.plural, res.group, name)
                old = await self._from_storage(res, stored)
                new = patch.patch(old, body, ctype, res.definition)
                new = _check_unknown(res, new, field_validation, warnings)
                expected = (new.get("metadata") or {}).get("resourceVersion")
                if expected and expected != old["metadata"].get("resourceVersion"):
                    raise errors.new_conflict(res.plural, res.group, name, _CONFLICT_DETAIL)
                operation = "Update"
            try:
                return await self._write_update(res, old, new, subresource, dry_run, field_manager, operation)
            except errors.StatusError as e:
                # upstream's patch retries a write that lost a race, unless the client set a precondition
                if e.reason == "Conflict" and _CONFLICT_DETAIL in e.message and attempt < 4 and not preconditioned:
                    continue
                raise
        raise errors.new_conflict(res.plural, res.group, name, _CONFLICT_DETAIL)

    async def _create_applied(self, res: Resource, namespace: str | None, obj: Obj, dry_run: bool) -> Obj:
        managed = obj["metadata"].get("managedFields")
        created = await self.create(res, namespace, obj, dry_run=dry_run, field_manager="__apply__")
        if dry_run or managed is None:
            return created
        # creation through apply: the applier owns its fields (Apply operation), as upstream records
        fixed = dict(created)
        fixed["metadata"] = dict(created["metadata"])
        fixed["metadata"]["managedFields"] = managed
        stored = await self.store.update(self._key(res, fixed["metadata"].get("namespace"), fixed["metadata"]["name"]),
                                         await self._to_storage(res, fixed), int(created["metadata"]["resourceVersion"]))
        return await self._from_storage(res, stored)

    # ------------------------------------------------------------------ delete
    async def delete(self, res: Resource, namespace: str | None, name: str, options: Obj | None = None, *,
                     dry_run: bool = False) -> Obj:
        options = options or {}
        if res.group == "" and res.plural == "namespaces":
            check_namespace_deletable(name)
        for _ in range(5):
            stored = await self.store.get(self._key(res, namespace, name))
            if stored is None:
                raise errors.new_not_found(res.plural, res.group, name)
            old = await self._from_storage(res, stored)
            fin.check_preconditions(res, old, options)
            await self.admit_request(False, "DELETE", res, None, old, "", dry_run)
            await self.admit_request(True, "DELETE", res, None, old, "", dry_run)
            new, immediate = fin.begin_deletion(res, old, options)
            if dry_run:
                return new if new is not None else old
            try:
                if immediate:
                    out = await self._delete_now(res, old, int(old["metadata"]["resourceVersion"]))
                    self._committed(res, None, old)
                    return out
                if new is None:  # already being deleted, nothing to change
                    return old
                stored = await self.store.update(self._key(res, namespace, name), await self._to_storage(res, new),
                                                 int(old["metadata"]["resourceVersion"]))
                self._committed(res, stored, old)  # e.g. a CRD's cleanup starts with its deletionTimestamp
                return await self._from_storage(res, stored)
            except ConflictError:
                continue
            except KeyNotFoundError:
                raise errors.new_not_found(res.plural, res.group, name) from None
        raise errors.new_conflict(res.plural, res.group, name, _CONFLICT_DETAIL)

    async def _delete_now(self, res: Resource, obj: Obj, expected: int) -> Obj:
        m = obj["metadata"]
        deleted = await self.store.delete(self._key(res, m.get("namespace"), m["name"]), expected)
        return await self._from_storage(res, deleted)

    async def delete_collection(self, res: Resource, namespace: str | None, options: Obj | None = None, *,
                                label_selector: str = "", field_selector: str = "", dry_run: bool = False) -> Obj:
        listed = await self.list(res, namespace, label_selector=label_selector, field_selector=field_selector)
        items = []
        for obj in listed["items"]:
            m = obj["metadata"]
            try:
                items.append(await self.delete(res, m.get("namespace"), m["name"], options, dry_run=dry_run))
            except errors.StatusError as e:
                if e.code != 404:
                    raise
        return {"kind": res.kind + "List", "apiVersion": res.group_version, "metadata": listed["metadata"], "items": items}

    # ------------------------------------------------------------------ subresources
    def _scale_of(self, res: Resource, obj: Obj) -> Obj:
        if res.scale is None:
            raise errors.new_not_found(res.plural + "/scale", res.group, obj["metadata"]["name"])

        def dig(path: tuple[str, ...]) -> Any:
            cur: Any = obj
            for p in path:
                cur = (cur or {}).get(p)
            return cur

        m = obj["metadata"]
        scale: Obj = {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in m},
            "spec": {"replicas": dig(res.scale.spec_path) or 0},
            "status": {"replicas": dig(res.scale.status_path) or 0},
        }
        if res.scale.selector is not None:
            scale["status"]["selector"] = res.scale.selector(obj)
        return scale

    async def _update_scale(self, res: Resource, namespace: str | None, name: str, scale: Obj, dry_run: bool,
                            field_manager: str) -> Obj:
        if res.scale is None:
            raise errors.new_not_found(res.plural + "/scale", res.group, name)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.new_invalid("Scale", "autoscaling", name, [
                errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")])
        expected = (scale.get("metadata") or {}).get("resourceVersion")
        for attempt in range(5):
            stored = await self.store.get(self._key(res, namespace, name))
            if stored is None:
                raise errors.new_not_found(res.plural, res.group, name)
            old = await self._from_storage(res, stored)
            if expected and expected != old["metadata"]["resourceVersion"]:
                raise errors.new_conflict(res.plural, res.group, name, _CONFLICT_DETAIL)
            new = meta.deep_copy(old)
            cur = new
            for p in res.scale.spec_path[:-1]:
                cur = cur.setdefault(p, {})
            cur[res.scale.spec_path[-1]] = replicas
            try:
                updated = await self._write_update(res, old, new, "", dry_run, field_manager, "Update")
            except errors.StatusError as e:
                # a scale without resourceVersion is unconditional: upstream's GuaranteedUpdate
                # retries it against the newer object when a controller wrote in between
                if e.code != 409 or expected or attempt == 4:
                    raise
                continue
            return self._scale_of(res, updated)
        raise AssertionError("unreachable")

    async def _create_subresource(self, res: Resource, namespace: str | None, name: str, subresource: str,
                                  body: Obj, dry_run: bool) -> Obj:
        from kubelite.apiserver import pod_subresources

        if res.group == "" and res.plural == "pods" and subresource == "binding":
            return await pod_subresources.bind(self, res, namespace, name, body, dry_run)
        if res.group == "" and res.plural == "pods" and subresource == "eviction":
            return await pod_subresources.evict(self, res, namespace, name, body, dry_run)
        token_request = getattr(self, "token_request", None)  # set by the control plane (TokenRequestREST)
        if res.group == "" and res.plural == "serviceaccounts" and subresource == "token" and token_request:
            return await token_request.create(self, namespace or "", name, body, dry_run)
        raise errors.new_method_not_allowed()

    # ------------------------------------------------------------------ watch
    async def watch(self, res: Resource, namespace: str | None, *, resource_version: str = "", label_selector: str = "",
                    field_selector: str = "", allow_bookmarks: bool = False, send_initial_events: bool | None = None,
                    timeout: float | None = None) -> AsyncIterator[tuple[str, Obj]]:
        """Events as (type, object); an ERROR event with a 410 Status when the version is too old."""
        match = self._selector_filter(res, label_selector, field_selector)
        prefix = self._prefix(res, namespace)
        initial = send_initial_events if send_initial_events is not None else resource_version in ("", "0")
        try:
            start_rev = int(resource_version) if resource_version not in ("", "0") else None
        except ValueError:
            raise errors.new_bad_request(f'invalid resource version "{resource_version}"') from None
        matching: set[str] = set()
        current, rev, _ = await self.store.list(prefix)
        if start_rev is None or initial:
            if start_rev is None:
                start_rev = rev
        for obj in current:
            if match is None or match(obj):
                matching.add(obj["metadata"].get("namespace", "") + "/" + obj["metadata"]["name"])
        try:
            w = self.store.watch(prefix, start_rev)
        except CompactedError as e:
            yield "ERROR", errors.new_gone(f"too old resource version: {e.requested} ({e.oldest})").status()
            return
        deadline = time.monotonic() + timeout if timeout else None
        try:
            if initial:
                for obj in current:
                    if match is None or match(obj):
                        yield "ADDED", await self._from_storage(res, obj)
                if send_initial_events and allow_bookmarks:
                    yield "BOOKMARK", self._bookmark(res, start_rev, initial_end=True)
            last_rev = start_rev
            while True:
                wait = BOOKMARK_INTERVAL
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        return
                try:
                    ev = await w.next(wait)
                except StopAsyncIteration:
                    return
                if ev is None:
                    if deadline is not None and time.monotonic() >= deadline:
                        return
                    if allow_bookmarks:
                        yield "BOOKMARK", self._bookmark(res, max(last_rev, self.store.revision))
                    continue
                if ev.type == "BOOKMARK":
                    continue
                last_rev = ev.revision
                obj = ev.object
                if match is None:
                    yield ev.type, await self._from_storage(res, obj)
                    continue
                k = obj["metadata"].get("namespace", "") + "/" + obj["metadata"]["name"]
                if ev.type == "DELETED":
                    matching.discard(k)
                    if match(obj):
                        yield "DELETED", await self._from_storage(res, obj)
                    continue
                # did the object match before this change? (from the event's previous state if known)
                # (a creation matched nothing before, even when the object is in the list we started from)
                was = ev.type != "ADDED" and (match(ev.prev) if ev.prev is not None else k in matching)
                now = match(obj)
                if now:
                    matching.add(k)
                else:
                    matching.discard(k)
                if now and was:
                    yield "MODIFIED", await self._from_storage(res, obj)
                elif now:
                    yield "ADDED", await self._from_storage(res, obj)
                elif was:
                    yield "DELETED", await self._from_storage(res, obj)
        finally:
            w.close()

    def _bookmark(self, res: Resource, rev: int, initial_end: bool = False) -> Obj:
        m: Obj = {"resourceVersion": str(rev)}
        if initial_end:
            m["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": res.kind, "apiVersion": res.group_version, "metadata": m}


def _decode_apply(body: bytes) -> Obj:
    import yaml

    try:
        obj = yaml.safe_load(body) if body.strip()[:1] != b"{" else orjson.loads(body)
    except Exception as exc:
        raise errors.new_bad_request(f"error decoding YAML: {exc}") from None
    if not isinstance(obj, dict):
        raise errors.new_bad_request("error decoding patch: the apply configuration must be an object")
    return obj


def _check_unknown(res: Resource, obj: Obj, field_validation: str, warnings: list[str] | None) -> Obj:
    """fieldValidation for patches, checked on the patched object as upstream does."""
    if not res.definition:
        return obj
    from kubelite.api import structural

    checked, found = structural.check_patched(res.definition, obj, field_validation or "Warn")
    if warnings is not None:
        warnings.extend(found)
    return checked
