"""The service proxy's control loop: kube-proxy in iptables mode, one per real node.

Informers on Services and EndpointSlices only mark the state dirty; one loop turns the current
cache into a ruleset and applies it in a single iptables-restore: the top-level chains always, the
per-service chains only for service ports that changed since the last sync (upstream's partial
sync; a full sync at start, after a failure and hourly). Like upstream's
BoundedFrequencyRunner, a change after a quiet period syncs at once and a burst costs one sync per
`min_sync_period`; a periodic full sync repairs rules someone else removed.

Established flows survive proxy restarts: their NAT lives in conntrack, which we never flush; only
UDP entries pointing at endpoints that went away are deleted (`conntrack`, when installed).

`mode` is kube-proxy's `--proxy-mode`: "iptables" (upstream's default) or "nftables", where the same
loop writes one `nft -f` transaction (see `nftables.py`) and deletes stale chains a sync later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from kubelite.client.informer import SharedInformerFactory
from kubelite.proxy import nftables, rules
from kubelite.proxy.iptables import Conntrack, IPTables
from kubelite.proxy.servicemap import ServicePort, build_service_map, usable

log = logging.getLogger(__name__)

ROUTE_LOCALNET = "/proc/sys/net/ipv4/conf/all/route_localnet"
PROXY_MODES = ("iptables", "nftables")


@dataclass
class ProxyConfig:
    node_name: str
    node_ip: str
    cluster_cidr: str
    service_cidr: str = ""
    chain_prefix: str = "KUBE"
    min_sync_period: float = 0.25
    full_sync_period: float = 3600.0  # as upstream: partial syncs in between, a full one hourly
    netns: str = ""
    backend: str = ""  # "" the host's iptables; "nft" or "legacy" to choose
    mode: str = "iptables"  # or "nftables" (upstream's --proxy-mode)


class Proxier:
    def __init__(self, client: Any, config: ProxyConfig):
        self.client = client
        self.config = config
        self.names = rules.Names(config.chain_prefix)
        self.ctx = rules.NodeContext(config.node_name, config.cluster_cidr, config.service_cidr, self.names)
        if config.mode not in PROXY_MODES:
            raise ValueError(f"unknown proxy mode {config.mode!r}: want one of {', '.join(PROXY_MODES)}")
        self.iptables = IPTables(config.netns, config.backend)
        self.nft = nftables.NFTables(nftables.table_name(config.chain_prefix), config.netns)
        self._nft_objects: tuple[set[str], set[str]] | None = None  # chains, sets; None: list them
        self._stale: dict[str, float] = {}  # nftables chains flushed, to delete a second later
        self.conntrack = Conntrack(config.netns)
        self.factory = SharedInformerFactory(client)
        self.services = self.factory.informer("", "v1", "services")
        self.slices = self.factory.informer("discovery.k8s.io", "v1", "endpointslices")
        for inf in (self.services, self.slices):
            inf.add_handler(self._changed, lambda _old, _new: self._changed(), self._changed)
        self._dirty = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._side_tasks: set[asyncio.Task] = set()
        self._existing: tuple[set[str], set[str]] | None = None  # None: read them from iptables-save
        self._hooked = False
        self._written: dict[str, str] = {}  # service port key -> what its chains were written from
        self._full = True
        self._large_cluster = False  # upstream's largeClusterMode at the last iptables sync
        self._udp: dict[str, tuple[ServicePort, set[str]]] = {}
        self.last_sync_seconds = 0.0
        self.syncs = 0

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if not self.config.netns and self.config.mode == "iptables":
            # node ports on 127.0.0.1 need DNAT of loopback-sourced packets out of `lo` (as upstream)
            with contextlib.suppress(OSError), open(ROUTE_LOCALNET, "w") as f:
                f.write("1")
        await self._cleanup_other_mode()
        await self.factory.start()
        await self.factory.wait_for_sync(timeout=30)
        await self.sync()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="proxy-sync")
        log.info("service proxy on %s: %d rules in chains %s-*", self.config.node_name, self._rule_count,
                 self.names.prefix)

    async def _cleanup_other_mode(self) -> None:
        """As upstream on start: remove what the other mode left behind (a crash, or a restart with
        another --proxy-mode), which would otherwise DNAT the same traffic a second way."""
        try:
            if self.config.mode == "nftables":
                if IPTables.available():
                    await self.iptables.remove_all(self.names, rules.jumps(self.names))
            elif nftables.NFTables.available():
                await self.nft.remove_all()
        except Exception as e:
            log.warning("service proxy: cleaning up after the other proxy mode failed: %s", e)

    async def stop(self) -> None:
        """Stop syncing and remove every chain and hook of ours: the host is left as we found it.
        (Established connections keep their conntrack NAT entries and finish normally.)"""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for t in list(self._side_tasks):
            t.cancel()
        await asyncio.gather(*self._side_tasks, return_exceptions=True)
        await self.factory.stop()
        try:
            if self.config.mode == "nftables":
                await self.nft.remove_all()
            else:
                await self.iptables.remove_all(self.names, rules.jumps(self.names))
        except Exception as e:
            log.warning("service proxy: cleaning up %s failed: %s", self.config.mode, e)

    def _changed(self, *_: Any) -> None:
        self._dirty.set()

    async def _loop(self) -> None:
        last = time.monotonic()
        backoff = 0.0
        while True:
            try:
                await asyncio.wait_for(self._dirty.wait(), self.config.full_sync_period)
            except TimeoutError:
                self._full = True  # repair whatever someone else changed
            wait = max(backoff, last + self.config.min_sync_period - time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
            self._dirty.clear()
            last = time.monotonic()
            try:
                await self.sync()
                backoff = 0.0
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("service proxy: sync failed; retrying with a full resync")
                self._existing = None
                self._nft_objects = None
                self._hooked = False
                self._full = True
                self._dirty.set()
                backoff = min(max(backoff * 2, 0.5), 30.0)

    # ---------------------------------------------------------------- one sync
    _rule_count = 0

    async def sync(self) -> None:
        """Program the whole current state: build the text, one iptables-restore, then housekeeping."""
        start = time.perf_counter()
        smap = build_service_map(self.services.store.list(), self.slices.store.list())
        if self.config.mode == "nftables":
            await self._sync_nftables(smap, start)
            self._clear_stale_udp(smap)
            return
        if self._existing is None:
            self._existing = (await self.iptables.chains("nat", self.names),
                              await self.iptables.chains("filter", self.names))
        written = {rules.service_port_key(sp): repr(sp) for sp in smap}
        unchanged = set() if self._full else {k for k, v in written.items() if self._written.get(k) == v}
        ruleset = rules.build(smap, self.ctx, *self._existing, unchanged=unchanged)
        self._written = {}  # unknown until the restore succeeds
        await self.iptables.restore(ruleset.text)
        self._written = written
        # after a partial sync across upstream's large-cluster threshold, the chains left alone have
        # the other comment style: rewrite them all next time
        self._full = bool(unchanged) and ruleset.large_cluster != self._large_cluster
        self._large_cluster = ruleset.large_cluster
        if self._full:
            self._dirty.set()
        self._existing = (ruleset.nat_chains, ruleset.filter_chains)
        if not self._hooked:
            for j in reversed(rules.jumps(self.names)):  # each goes first: reversed keeps upstream's order
                await self.iptables.ensure_jump(j)
            self._hooked = True
        self.last_sync_seconds = time.perf_counter() - start
        self.syncs += 1
        self._rule_count = ruleset.rule_count
        log.debug("service proxy: synced %d service ports, %d rules in %.1f ms", len(smap), ruleset.rule_count,
                  self.last_sync_seconds * 1000)
        self._clear_stale_udp(smap)

    async def _sync_nftables(self, smap: list[ServicePort], start: float) -> None:
        """One `nft -f` transaction; chains made stale by an earlier sync are deleted first, in a
        transaction of their own (as upstream: a failure there only delays their removal)."""
        if self._nft_objects is None:
            self._nft_objects = await self.nft.objects()
        due = [c for c, t in self._stale.items() if t < time.monotonic() - 1.0]
        if due:
            try:
                await self.nft.delete(due)
                self._nft_objects[0].difference_update(due)
            except Exception as e:
                log.warning("service proxy: deleting %d stale chains failed, will retry: %s", len(due), e)
            for c in due:
                self._stale.pop(c, None)
        written = {rules.service_port_key(sp): repr(sp) for sp in smap}
        unchanged = set() if self._full else {k for k, v in written.items() if self._written.get(k) == v}
        ruleset, stale = nftables.build(smap, self.ctx, self.nft.table, unchanged, *self._nft_objects)
        self._written = {}
        await self.nft.apply(ruleset.text)
        self._written = written
        self._full = False
        now = time.monotonic()
        for c in ruleset.chains:
            self._stale.pop(c, None)
        for c in stale:
            self._stale.setdefault(c, now)
        self._nft_objects = (ruleset.chains | set(self._stale), ruleset.sets)
        if stale:
            asyncio.get_running_loop().call_later(1.1, self._dirty.set)  # come back to delete them
        self.last_sync_seconds = time.perf_counter() - start
        self.syncs += 1
        self._rule_count = ruleset.rule_count
        log.debug("service proxy (nftables): synced %d service ports, %d rules in %.1f ms", len(smap),
                  ruleset.rule_count, self.last_sync_seconds * 1000)

    def _clear_stale_udp(self, smap: list[ServicePort]) -> None:
        """Conntrack entries that now lead nowhere (UDP has no handshake to notice)."""
        now: dict[str, tuple[ServicePort, set[str]]] = {}
        for sp in smap:
            if sp.protocol == "UDP":
                now[f"{sp.port_name_string}/{sp.cluster_ip}"] = (sp, {e.ip for e in usable(sp.endpoints)})
        work = []
        for key, (sp, ips) in now.items():
            old = self._udp.get(key)
            if old is None:
                continue
            if not old[1] and ips:
                work.append(self.conntrack.clear_service(sp.cluster_ip))
            for gone in old[1] - ips:
                work.append(self.conntrack.clear_endpoint(sp.cluster_ip, gone))
                for ip in [*sp.external_ips, *sp.load_balancer_ips]:
                    work.append(self.conntrack.clear_endpoint(ip, gone))
                if sp.node_port:
                    work.append(self.conntrack.clear_node_port(sp.node_port, gone))
        self._udp = now
        if work and self.conntrack.tool:
            t = asyncio.get_running_loop().create_task(_gather(work))
            self._side_tasks.add(t)
            t.add_done_callback(self._side_tasks.discard)
        else:
            for coro in work:
                coro.close()


async def _gather(coros: list) -> None:
    await asyncio.gather(*coros, return_exceptions=True)
