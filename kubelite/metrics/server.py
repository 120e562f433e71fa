"""The metrics server: metrics-server's job inside the kubelite server process.

Every `resolution` seconds (metrics-server's --metric-resolution, 15 s by default) it scrapes every
node's kubelet at /metrics/resource: real kubelets over HTTPS with the API server's kubelet-client
certificate, simulated nodes by asking kubelite.runtime.simulated_stats what their kubelet would say
(they have no kubelet to dial). Both answers go through the same Prometheus text reader, then into
MetricsStorage, which keeps two samples and computes rates. It serves metrics.k8s.io/v1beta1
NodeMetrics and PodMetrics read-only, as the backend of their registry entries (Resource.backend):
get and list with label and field selectors, no watch, objects shaped as metrics-server's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from decimal import Decimal
from typing import Any

import aiohttp

from kubelite.api import errors
from kubelite.api.kinds.common import format_quantity
from kubelite.api.kinds.metrics import GROUP, VERSION, Unavailable
from kubelite.api.meta import is_status_condition_true, now_rfc3339
from kubelite.api.protobuf import go_duration
from kubelite.api.selectors import parse_field_selector, parse_label_selector
from kubelite.client.informer import SharedInformerFactory, index_by_node_name
from kubelite.metrics import resource_text
from kubelite.metrics.storage import MetricsStorage, Usage
from kubelite.runtime.simulated_stats import SimulatedNodeStats

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_RESOLUTION = 15.0


def window_duration(seconds: float) -> str:
    """A window as metav1.Duration prints it (time.Duration.String(): "15.003s", "1m0.5s"), at the
    millisecond precision of the samples' timestamps."""
    return go_duration(int(round(seconds * 1e3)) * 1_000_000)


def usage_quantities(usage: Usage) -> Obj:
    """metrics-server's ResourceList: CPU scaled to nano (DecimalSI), memory in bytes (BinarySI)."""
    return {"cpu": format_quantity(Decimal(usage.cpu).scaleb(-9), "DecimalSI"),
            "memory": format_quantity(usage.memory, "BinarySI")}


class MetricsServer:
    """Scrapes kubelets and serves the resource metrics API; `await start()`, `await stop()`."""

    def __init__(self, client: Any, registry: Any, kubelet_client: Any = None,
                 resolution: float = DEFAULT_RESOLUTION):
        self.client = client
        self.registry = registry
        self.kubelet_client = kubelet_client
        self.resolution = resolution
        self.storage = MetricsStorage(resolution)
        self.factory = SharedInformerFactory(client, trim_managed_fields=True)
        self.nodes = self.factory.informer("", "v1", "nodes")
        self.pods = self.factory.informer("", "v1", "pods")
        self.pods.store.add_index("node", index_by_node_name)
        self._simulated: dict[str, SimulatedNodeStats] = {}
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.factory.start()
        await self.factory.wait_for_sync()
        self._bind(NodeMetricsBackend(self), PodMetricsBackend(self))
        self._task = asyncio.get_running_loop().create_task(self._run(), name="metrics-server")

    async def stop(self) -> None:
        self._bind(Unavailable("nodes"), Unavailable("pods"))
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._session is not None:
            await self._session.close()
        await self.factory.stop()

    def _bind(self, nodes: Any, pods: Any) -> None:
        for plural, backend in (("nodes", nodes), ("pods", pods)):
            res = self.registry.get(GROUP, VERSION, plural)
            if res is not None:
                self.registry.register(dataclasses.replace(res, backend=backend))

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.scrape()
            except Exception:
                log.exception("metrics scrape failed")
            await asyncio.sleep(max(self.resolution - (time.monotonic() - started), 0.05))

    async def scrape(self) -> None:
        """One round: every node's kubelet, concurrently; the nodes that answered replace their data."""
        nodes = self.nodes.store.list()
        names = {n["metadata"]["name"] for n in nodes}
        for gone in self.storage.nodes_known() - names:
            self.storage.forget(gone)
        for gone in set(self._simulated) - names:
            del self._simulated[gone]
        from kubelite.kubelet.proxy import _simulated

        real = []
        for i, node in enumerate(nodes):
            if _simulated(node):
                self._scrape_simulated(node)
                if i % 10 == 9:
                    await asyncio.sleep(0)  # about 1 ms a node: let API requests in between
            else:
                real.append(node)
        if real:
            await asyncio.gather(*(self._scrape_kubelet(n) for n in real))

    def _scrape_simulated(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        if not is_status_condition_true(node, "Ready"):  # a killed simulated kubelet answers nothing
            self.storage.forget(name)
            return
        sim = self._simulated.get(name)
        if sim is None:
            sim = self._simulated[name] = SimulatedNodeStats(name)
        now = time.time()
        text = resource_text.render(sim.collect(self.pods.store.by_index("node", name), now))
        self.storage.store(name, resource_text.parse(text, now))

    async def _scrape_kubelet(self, node: Obj) -> None:
        from kubelite.kubelet.proxy import kubelet_url

        name = node["metadata"]["name"]
        if self.kubelet_client is None:
            return
        url = f"{kubelet_url(node)}/metrics/resource"
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            timeout = aiohttp.ClientTimeout(total=max(self.resolution * 0.9, 1.0))
            async with self._session.get(url, ssl=self.kubelet_client.ssl_context(), timeout=timeout) as resp:
                if resp.status != 200:
                    raise aiohttp.ClientError(f"request failed, status: {resp.status}")
                text = await resp.text()
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            log.warning('Failed to scrape node "%s": %s', name, e)
            self.storage.forget(name)
            return
        self.storage.store(name, resource_text.parse(text, time.time()))

    # --- objects, as metrics-server returns them ---

    def node_metrics(self, node: Obj) -> Obj | None:
        name = node["metadata"]["name"]
        usage = self.storage.nodes.get(name)
        if usage is None:
            return None
        meta = {"name": name, "creationTimestamp": now_rfc3339()}
        if node["metadata"].get("labels"):
            meta["labels"] = dict(node["metadata"]["labels"])
        return {"kind": "NodeMetrics", "apiVersion": f"{GROUP}/{VERSION}", "metadata": meta,
                "timestamp": now_rfc3339(usage.timestamp), "window": window_duration(usage.window),
                "usage": usage_quantities(usage)}

    def pod_metrics(self, pod: Obj) -> Obj | None:
        meta_in = pod["metadata"]
        usages = self.storage.pods.get((meta_in.get("namespace", ""), meta_in["name"]))
        if not usages:
            return None
        earliest = min(usages.values(), key=lambda u: u.timestamp)
        meta = {"name": meta_in["name"], "namespace": meta_in.get("namespace", ""),
                "creationTimestamp": now_rfc3339()}
        if meta_in.get("labels"):
            meta["labels"] = dict(meta_in["labels"])
        order = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        names = sorted(usages, key=lambda n: order.index(n) if n in order else len(order))
        return {"kind": "PodMetrics", "apiVersion": f"{GROUP}/{VERSION}", "metadata": meta,
                "timestamp": now_rfc3339(earliest.timestamp), "window": window_duration(earliest.window),
                "containers": [{"name": n, "usage": usage_quantities(usages[n])} for n in names]}


def _selectors(label_selector: str, field_selector: str) -> tuple[Any, Any]:
    lsel = parse_label_selector(label_selector) if label_selector else None
    fsel = parse_field_selector(field_selector) if field_selector else None
    return lsel, fsel


def _fields(obj: Obj) -> dict[str, str]:
    meta = obj["metadata"]
    return {"metadata.name": meta["name"], "metadata.namespace": meta.get("namespace", "")}


def _list(kind: str, items: list[Obj]) -> Obj:
    return {"kind": kind, "apiVersion": f"{GROUP}/{VERSION}", "metadata": {}, "items": items}


class NodeMetricsBackend:
    """nodes.metrics.k8s.io: the nodes the informer knows, with the metrics storage's usage."""

    def __init__(self, server: MetricsServer):
        self.server = server

    async def get(self, namespace: str | None, name: str) -> Obj:
        node = self.server.nodes.store.get(None, name)
        if node is None:
            raise errors.new_not_found("nodes", "", name)  # the node lister's error, as metrics-server returns it
        obj = self.server.node_metrics(node)
        if obj is None:
            raise errors.new_not_found("nodemetrics", GROUP, name)
        return obj

    async def list(self, namespace: str | None, label_selector: str = "", field_selector: str = "") -> Obj:
        lsel, fsel = _selectors(label_selector, field_selector)
        items = []
        for node in sorted(self.server.nodes.store.list(selector=lsel), key=lambda n: n["metadata"]["name"]):
            obj = self.server.node_metrics(node)
            if obj is not None and (fsel is None or fsel.matches(_fields(obj))):
                items.append(obj)
        return _list("NodeMetricsList", items)


class PodMetricsBackend:
    """pods.metrics.k8s.io: the pods the informer knows, with the metrics storage's usage."""

    def __init__(self, server: MetricsServer):
        self.server = server

    async def get(self, namespace: str | None, name: str) -> Obj:
        pod = self.server.pods.store.get(namespace, name)
        if pod is None:
            raise errors.new_not_found("pods", "", name)
        obj = self.server.pod_metrics(pod)
        if obj is None:
            raise errors.new_not_found("podmetrics", GROUP, f"{namespace}/{name}")
        return obj

    async def list(self, namespace: str | None, label_selector: str = "", field_selector: str = "") -> Obj:
        lsel, fsel = _selectors(label_selector, field_selector)
        pods = self.server.pods.store.list(namespace, selector=lsel)
        items = []
        for pod in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
            obj = self.server.pod_metrics(pod)
            if obj is not None and (fsel is None or fsel.matches(_fields(obj))):
                items.append(obj)
        return _list("PodMetricsList", items)
