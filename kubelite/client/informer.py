"""Shared informers: a list-then-watch fed cache per resource, with indexes and event handlers.

As client-go's reflector + indexer + shared processor: list, then watch from the list's
resourceVersion; on 410 Gone or a broken stream relist with backoff and diff the new list against
the cache so handlers see the adds, updates and deletes they missed. Handlers run in their own
task per registration (a slow handler never stalls the cache) and should only enqueue keys.
Objects in the store are shared: never mutate them, copy first.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.api.selectors import LabelSelector

log = logging.getLogger(__name__)

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str] | str | None]


def meta_namespace_key(obj: Obj) -> str:
    """cache.MetaNamespaceKeyFunc: `namespace/name`, or `name` for cluster-scoped objects."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else meta.get("name", "")


def split_meta_namespace_key(key: str) -> tuple[str | None, str]:
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def _rv(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion", "")


def index_by_namespace(obj: Obj) -> str | None:
    return (obj.get("metadata") or {}).get("namespace")


def index_by_node_name(obj: Obj) -> str | None:
    """Pods by spec.nodeName (the kubelet's and the scheduler's lookup)."""
    return (obj.get("spec") or {}).get("nodeName") or None


def index_by_owner_uid(obj: Obj) -> list[str]:
    """Objects by the uid of every owner (garbage collector, controllers adopting children)."""
    return [r["uid"] for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid")]


def index_by_controller_uid(obj: Obj) -> str | None:
    """Objects by the uid of their controller ownerReference: a controller finds its children
    without scanning every object of the namespace on each sync."""
    for r in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if r.get("controller"):
            return r.get("uid") or None
    return None


def index_orphans_by_namespace(obj: Obj) -> str | None:
    """Objects without a controller, by namespace: the only ones a controller may adopt."""
    meta = obj.get("metadata") or {}
    for r in meta.get("ownerReferences") or []:
        if r.get("controller"):
            return None
    return meta.get("namespace") or ""


class Store:
    """Thread-unsafe (single loop) keyed cache with secondary indexes, like cache.Indexer."""

    def __init__(self) -> None:
        self._items: dict[str, Obj] = {}
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        # index -> key -> the values the key is filed under: an update that leaves them alone (a
        # status write) touches no index set, and removal needs no recomputation
        self._filed: dict[str, dict[str, tuple[str, ...]]] = {}
        self.add_index("namespace", index_by_namespace)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Register an index; existing items are indexed at once. Registering the same function
        again under the same name is a no-op, so controllers sharing an informer can each ask."""
        if self._index_funcs.get(name) is fn:
            return
        self._index_funcs[name] = fn
        idx: dict[str, set[str]] = {}
        filed: dict[str, tuple[str, ...]] = {}
        self._indexes[name] = idx
        self._filed[name] = filed
        for key, obj in self._items.items():
            vals = _index_values(fn, obj)
            if vals:
                filed[key] = vals
                for v in vals:
                    idx.setdefault(v, set()).add(key)

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> Obj | None:
        return self._items.get(key)

    def list(self, namespace: str | None = None, selector: LabelSelector | None = None) -> list[Obj]:
        if namespace:
            objs: Iterable[Obj] = (self._items[k] for k in self._indexes["namespace"].get(namespace, ()))
        else:
            objs = self._items.values()
        if selector is None or selector.empty():
            return list(objs)
        return [o for o in objs if selector.matches_object(o)]

    def by_index(self, index_name: str, value: str) -> list[Obj]:
        keys = self._indexes[index_name].get(value, ())
        return [self._items[k] for k in keys]

    def index_items(self, index_name: str, value: str) -> list[tuple[str, Obj]]:
        """(key, object) pairs under one index value, for callers caching per-key derived data."""
        items = self._items
        return [(k, items[k]) for k in self._indexes[index_name].get(value, ())]

    def keys(self) -> list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    # mutation, by the informer only
    def _put(self, key: str, obj: Obj) -> Obj | None:
        old = self._items.get(key)
        self._items[key] = obj
        for name, fn in self._index_funcs.items():
            filed = self._filed[name]
            vals = _index_values(fn, obj)
            before = filed.get(key, ())
            if vals == before:
                continue
            idx = self._indexes[name]
            for v in before:
                if v not in vals:
                    _discard(idx, v, key)
            for v in vals:
                idx.setdefault(v, set()).add(key)
            if vals:
                filed[key] = vals
            else:
                del filed[key]
        return old

    def _delete(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            for name, filed in self._filed.items():
                idx = self._indexes[name]
                for v in filed.pop(key, ()):
                    _discard(idx, v, key)
        return old


def _discard(idx: dict[str, set[str]], value: str, key: str) -> None:
    keys = idx.get(value)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del idx[value]


def _index_values(fn: IndexFunc, obj: Obj) -> tuple[str, ...]:
    try:
        v = fn(obj)
    except Exception:  # an index function must not break the cache
        log.exception("index function failed")
        return ()
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    return tuple(v)


class _Listener:
    """One handler registration with its own queue and task (client-go's processorListener)."""

    def __init__(self, on_add: Callable | None, on_update: Callable | None, on_delete: Callable | None):
        self.on_add, self.on_update, self.on_delete = on_add, on_update, on_delete
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            kind, old, new = await self.queue.get()
            fn = {"add": self.on_add, "update": self.on_update, "delete": self.on_delete}[kind]
            if fn is None:
                continue
            try:
                res = fn(old, new) if kind == "update" else fn(new)
                if inspect.isawaitable(res):
                    await res
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("informer event handler failed on %s", kind)

    def notify(self, kind: str, old: Obj | None, new: Obj) -> None:
        self.queue.put_nowait((kind, old, new))


class Informer:
    """One watch-fed cache for a (group, version, plural, namespace, selectors)."""

    def __init__(self, client: Any, group: str, version: str, plural: str, namespace: str | None = None,
                 label_selector: str = "", field_selector: str = "", resync_period: float = 0.0,
                 trim_managed_fields: bool = False):
        self.resource = client.resource(group, version, plural)
        # cache objects without metadata.managedFields, as kube-controller-manager's informers do: no
        # controller reads them, and they are the bulk of every pod copied from the API server
        self.trim_managed_fields = trim_managed_fields
        self.gvr = (group, version, plural)
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.store = Store()
        self.resource_version = ""
        self._listeners: list[_Listener] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._resync_task: asyncio.Task | None = None
        self._kind = ""
        self._api_version = f"{group}/{version}" if group else version

    # -- public ------------------------------------------------------------------------------

    def add_handler(self, on_add: Callable | None = None, on_update: Callable | None = None,
                    on_delete: Callable | None = None) -> None:
        """Sync or async callables; on_update(old, new); on_delete gets the last known state.

        A handler added to a running informer first receives on_add for everything cached.
        """
        listener = _Listener(on_add, on_update, on_delete)
        self._listeners.append(listener)
        for obj in self.store.list():
            listener.notify("add", None, obj)
        if self._task is not None:
            listener.start()

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_for_sync(self) -> None:
        await self._synced.wait()

    def start(self) -> None:
        if self._task is not None:
            return
        for listener in self._listeners:
            listener.start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"informer-{'/'.join(self.gvr)}")
        if self.resync_period > 0:
            self._resync_task = asyncio.get_running_loop().create_task(self._resync())

    async def stop(self) -> None:
        tasks = [t for t in [self._task, self._resync_task] + [lis.task for lis in self._listeners] if t]
        # cancel until done: Python 3.11's wait_for can swallow a cancellation that races a result
        for _ in range(20):
            pending = [t for t in tasks if not t.done()]
            if not pending:
                break
            for t in pending:
                t.cancel()
            await asyncio.wait(pending, timeout=0.5)
        self._task = self._resync_task = None
        for lis in self._listeners:
            lis.task = None

    # -- reflector ---------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.8
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                    backoff = 0.8
                await self._watch()
                # a watch that ends cleanly (server timeout) resumes from the last resourceVersion
            except asyncio.CancelledError:
                raise
            except StatusError as e:
                need_list = True
                if e.code == 410:
                    log.info("%s: watch expired (%s), relisting", "/".join(self.gvr), e.message)
                    continue
                log.warning("%s: list/watch failed: %s %s", "/".join(self.gvr), e.code, e.message)
                await asyncio.sleep(backoff * (1 + random.random() * 0.2))
                backoff = min(backoff * 2, 30.0)
            except Exception:
                need_list = True
                log.exception("%s: list/watch failed", "/".join(self.gvr))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def _list(self) -> None:
        items: list[Obj] = []
        cont = ""
        while True:
            page = await self.resource.list(self.namespace, self.label_selector, self.field_selector,
                                            limit=500, continue_=cont)
            if not self._kind:
                lk = page.get("kind") or ""
                self._kind = lk[:-4] if lk.endswith("List") else lk
                self._api_version = page.get("apiVersion") or self._api_version
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            cont = meta.get("continue") or ""
            if not cont:
                break
        for obj in items:  # list items carry no kind/apiVersion on the wire; handlers want them
            obj.setdefault("kind", self._kind)
            obj.setdefault("apiVersion", self._api_version)
            if self.trim_managed_fields:
                (obj.get("metadata") or {}).pop("managedFields", None)
        self._replace(items)
        self.resource_version = meta.get("resourceVersion", "")
        self._synced.set()

    def _replace(self, items: list[Obj]) -> None:
        """Diff a fresh list against the cache and notify as if the missed events had been seen."""
        fresh = {meta_namespace_key(o): o for o in items}
        for key in [k for k in self.store.keys() if k not in fresh]:
            old = self.store._delete(key)
            if old is not None:
                self._notify("delete", None, old)
        for key, obj in fresh.items():
            old = self.store._put(key, obj)
            if old is None:
                self._notify("add", None, obj)
            elif _rv(old) != _rv(obj):
                self._notify("update", old, obj)

    async def _watch(self) -> None:
        timeout = int(300 + random.random() * 300)  # as the reflector: 5-10 min, then resume
        stream = self.resource.watch(self.namespace, resource_version=self.resource_version,
                                     label_selector=self.label_selector, field_selector=self.field_selector,
                                     allow_bookmarks=True, timeout_seconds=timeout,
                                     trim_managed_fields=self.trim_managed_fields)
        try:
            async for etype, obj in stream:
                self._apply(etype, obj)
        finally:
            await stream.aclose()

    def _apply(self, etype: str, obj: Obj) -> None:
        rv = _rv(obj)
        if etype == "BOOKMARK":
            if rv:
                self.resource_version = rv
            return
        key = meta_namespace_key(obj)
        if etype in ("ADDED", "MODIFIED"):
            old = self.store._put(key, obj)
            if old is None:
                self._notify("add", None, obj)
            else:
                self._notify("update", old, obj)
        elif etype == "DELETED":
            old = self.store._delete(key)
            if old is not None:
                self._notify("delete", None, obj)
        if rv:
            self.resource_version = rv

    def _notify(self, kind: str, old: Obj | None, new: Obj) -> None:
        for listener in self._listeners:
            listener.notify(kind, old, new)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_period)
            for obj in self.store.list():
                self._notify("update", obj, obj)


class SharedInformerFactory:
    """One informer per (group, version, plural, label selector, field selector), shared by all users."""

    def __init__(self, client: Any, namespace: str | None = None, resync_period: float = 0.0,
                 trim_managed_fields: bool = False):
        self.client = client
        self.namespace = namespace
        self.resync_period = resync_period
        self.trim_managed_fields = trim_managed_fields
        self._informers: dict[tuple[str, str, str, str, str], Informer] = {}
        self._started = False

    def informer(self, group: str, version: str, plural: str, label_selector: str = "",
                 field_selector: str = "") -> Informer:
        key = (group, version, plural, label_selector, field_selector)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, group, version, plural, self.namespace, label_selector, field_selector,
                           self.resync_period, self.trim_managed_fields)
            self._informers[key] = inf
            if self._started:
                inf.start()
        return inf

    async def start(self) -> None:
        """Start every informer created so far (and any created later)."""
        self._started = True
        for inf in self._informers.values():
            inf.start()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        """True once every started informer has completed its first list."""
        waits = [inf.wait_for_sync() for inf in self._informers.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(inf.stop() for inf in self._informers.values()))
