"""kube-proxy's nftables mode (upstream's `--proxy-mode=nftables`, 1.31+), as a pure ruleset builder
plus the `nft` runner.

One `ip kube-proxy` table holds everything: ClusterIPs, external IPs and load-balancer IPs are
looked up in the `service-ips` verdict map and node ports in `service-nodeports` (one lookup
instead of one rule per service), which jump to per-service chains (`service-`, `local-`,
`external-`) that pick an `endpoint-` chain with `numgen random mod N vmap`. Services without
(local) endpoints are rejected (dropped) through `no-endpoint-services`/`no-endpoint-nodeports`,
and traffic to ClusterIPs no service has through `cluster-ips-check`. Chain names are upstream's:
an 8-character hash, then `ns/name/proto/port` (`__ip/port` for endpoints).

Why it exists here: Debian 12's default `iptables` is iptables-nft 1.8.9, whose `iptables-restore
--noflush` grows quadratically with the number of chains (1,000 services x 10 endpoints: ~12 s).
The whole ruleset is one `nft -f` transaction; like upstream, a sync rewrites only the
per-service chains whose service port changed, and stale chains are flushed at once and deleted
a sync later (after a second: older kernels free map references lazily). As upstream, node ports
are not served on 127.0.0.1 in this mode.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field

from kubelite.proxy.iptables import IPTablesError, run
from kubelite.proxy.rules import MASQ_MARK, NodeContext, service_port_key
from kubelite.proxy.servicemap import Endpoint, ServicePort, usable

NAME_LENGTH_MAX = 256
_BASE_LENGTH_MAX = NAME_LENGTH_MAX - 16

# name, type, hook, priority (numeric: the named priorities dstnat/srcnat are not valid on every hook)
BASE_CHAINS = (
    ("filter-prerouting", "filter", "prerouting", -110),   # dstnat - 10
    ("filter-input", "filter", "input", -110),
    ("filter-forward", "filter", "forward", -110),
    ("filter-output", "filter", "output", -110),
    ("filter-output-post-dnat", "filter", "output", -90),  # dstnat + 10
    ("nat-prerouting", "nat", "prerouting", -100),         # dstnat
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),        # srcnat
)
# (to, from, match) as upstream's nftablesJumpChains
JUMP_CHAINS = (
    ("endpoints-check", "filter-input", "ct state new"),
    ("endpoints-check", "filter-forward", "ct state new"),
    ("endpoints-check", "filter-output", "ct state new"),
    ("cluster-ips-check", "filter-forward", "ct state new"),
    ("cluster-ips-check", "filter-output-post-dnat", "ct state new"),
    ("services", "nat-output", ""),
    ("services", "nat-prerouting", ""),
    ("masquerading", "nat-postrouting", ""),
)
NO_LOCALHOST = "ip daddr != 127.0.0.0/8"


def table_name(prefix: str) -> str:
    """`kube-proxy` for the production prefix; clusters side by side on one host get their own."""
    return "kube-proxy" if prefix == "KUBE" else f"{prefix.lower()}-proxy"


@functools.lru_cache(maxsize=1 << 16)
def _hash_and_truncate(name: str) -> str:
    """Upstream's hashAndTruncate; cached, as names are stable from one sync to the next (5 bytes of
    the digest are exactly the 8 base32 characters kept)."""
    h = base64.b32encode(hashlib.sha256(name.encode()).digest()[:5]).decode()
    name = f"{h}-{name}"
    return name if len(name) <= _BASE_LENGTH_MAX else name[:_BASE_LENGTH_MAX - 3] + "..."


def _port_base(sp: ServicePort) -> str:
    return _hash_and_truncate(f"{sp.namespace}/{sp.name}/{sp.protocol.lower()}/{sp.port_name}")


def _endpoint_base(sp: ServicePort, ep: Endpoint) -> str:
    return _hash_and_truncate(f"{sp.namespace}/{sp.name}/{sp.protocol.lower()}/{sp.port_name}__{ep.ip}/{ep.port}")


LB_MAP_TYPE = "typeof numgen random mod 1 : verdict"


def lb_map(chain: str) -> str:
    """The verdict map a service (or local-policy) chain picks its endpoint with; "" for other chains.

    A named map rather than upstream's anonymous `vmap { 0 : goto ..., }`: the kernel binds each
    anonymous set by walking the whole transaction, which made a 1,000-service sync quadratic
    (2.6 s of kernel time instead of 0.5 s here)."""
    return f"lb-{chain}" if chain.startswith(("service-", "local-")) else ""


def is_service_chain(name: str) -> bool:
    """Per-service and per-endpoint chains are the ones with a `/` (no fixed chain has one)."""
    return "/" in name


@dataclass
class NftRuleset:
    text: str
    chains: set[str]          # per-service chains that exist after this transaction
    sets: set[str]            # affinity sets that exist after it
    rule_count: int
    element_count: int


@dataclass
class _Tx:
    table: str
    head: list[str] = field(default_factory=list)     # tables, chains, sets, maps: declared first
    body: list[str] = field(default_factory=list)     # rules and elements, which refer to them
    existing: set[str] = field(default_factory=set)  # chains that exist already (others need no flush)
    rules: int = 0
    elements: dict[str, list[str]] = field(default_factory=dict)

    def chain(self, name: str, spec: str = "", known: bool = False) -> None:
        """Declare the chain and empty it, unless `known` says it does not exist yet."""
        self.head.append(f"add chain ip {self.table} {name}" + (f" {{ {spec} ; }}" if spec else ""))
        if not known or name in self.existing:
            self.head.append(f"flush chain ip {self.table} {name}")

    def rule(self, chain: str, *parts: str) -> None:
        self.body.append(f"add rule ip {self.table} {chain} " + " ".join(p for p in parts if p))
        self.rules += 1

    def element(self, obj: str, text: str) -> None:
        self.elements.setdefault(obj, []).append(text)


def _quote(comment: str) -> str:
    return '"' + comment.replace('"', "'") + '"'


def _setup(tx: _Tx, ctx: NodeContext) -> None:
    """The fixed part, rewritten on every sync (a few dozen statements): base chains, the jumps to
    the top-level chains, masquerading, and the (flushed, then refilled) dispatch maps."""
    t = tx.table
    tx.head.append(f"add table ip {t} {{ comment {_quote('rules for kube-proxy')} ; }}")
    for name, typ, hook, prio in BASE_CHAINS:
        tx.chain(name, f"type {typ} hook {hook} priority {prio}")
    for name in ("endpoints-check", "cluster-ips-check", "services", "masquerading", "mark-for-masquerade"):
        tx.chain(name)
    tx.head.append(f"add chain ip {t} reject-chain {{ comment {_quote('helper for @no-endpoint-services / @no-endpoint-nodeports')} ; }}")
    tx.head.append(f"flush chain ip {t} reject-chain")
    for name, typ, comment in (
            ("no-endpoint-services", "ipv4_addr . inet_proto . inet_service : verdict",
             "vmap to drop or reject packets to services with no endpoints"),
            ("no-endpoint-nodeports", "inet_proto . inet_service : verdict",
             "vmap to drop or reject packets to service nodeports with no endpoints"),
            ("service-ips", "ipv4_addr . inet_proto . inet_service : verdict",
             "ClusterIP, ExternalIP and LoadBalancer IP traffic"),
            ("service-nodeports", "inet_proto . inet_service : verdict", "NodePort traffic")):
        tx.head.append(f"add map ip {t} {name} {{ type {typ} ; comment {_quote(comment)} ; }}")
        tx.head.append(f"flush map ip {t} {name}")
    tx.head.append(f"add set ip {t} cluster-ips {{ type ipv4_addr ; comment {_quote('Active ClusterIPs')} ; }}")
    tx.head.append(f"flush set ip {t} cluster-ips")

    for to, frm, match in JUMP_CHAINS:
        tx.rule(frm, match, "jump", to)
    tx.rule("mark-for-masquerade", f"mark set mark or {MASQ_MARK}")
    tx.rule("masquerading", f"mark and {MASQ_MARK} == 0 return")
    tx.rule("masquerading", f"mark set mark xor {MASQ_MARK}")
    tx.rule("masquerading", "masquerade fully-random")
    tx.rule("reject-chain", "reject")
    tx.rule("endpoints-check", "ip daddr . meta l4proto . th dport vmap @no-endpoint-services")
    tx.rule("endpoints-check", "fib daddr type local", NO_LOCALHOST,
            "meta l4proto . th dport vmap @no-endpoint-nodeports")
    tx.rule("cluster-ips-check", "ip daddr @cluster-ips reject comment",
            _quote("Reject traffic to invalid ports of ClusterIPs"))
    if ctx.service_cidr:
        tx.rule("cluster-ips-check", f"ip daddr {{ {ctx.service_cidr} }} drop comment",
                _quote("Drop traffic to unallocated ClusterIPs"))
    tx.rule("services", "ip daddr . meta l4proto . th dport vmap @service-ips")
    tx.rule("services", "fib daddr type local", NO_LOCALHOST, "meta l4proto . th dport vmap @service-nodeports")


def build(service_map: Iterable[ServicePort], ctx: NodeContext, table: str,
          unchanged: set[str] | frozenset[str] = frozenset(), existing_chains: Iterable[str] = (),
          existing_sets: Iterable[str] = ()) -> tuple[NftRuleset, set[str]]:
    """The `nft -f` transaction for the whole state, and the per-service chains that became stale
    (flushed in this transaction; the caller deletes them in a later one).

    Chains of service ports in `unchanged` (keys from `rules.service_port_key`) are neither
    flushed nor rewritten; the maps are always refilled (one element per address, cheap)."""
    existing_chains = set(existing_chains)
    tx = _Tx(table, existing=existing_chains)
    _setup(tx, ctx)
    chains: set[str] = set()
    sets: set[str] = set()
    for sp in service_map:
        _service_port(tx, sp, ctx, chains, sets, service_port_key(sp) not in unchanged)
    stale = {c for c in existing_chains if is_service_chain(c) and c not in chains}
    for c in sorted(stale):  # (added first, so a chain someone else already deleted is no error)
        tx.head.append(f"add chain ip {table} {c}")
        tx.head.append(f"flush chain ip {table} {c}")
        if lb_map(c):  # its endpoint chains are referenced from the map too: let go of them now
            tx.head.append(f"add map ip {table} {lb_map(c)} {{ {LB_MAP_TYPE} ; }}")
            tx.head.append(f"flush map ip {table} {lb_map(c)}")
    for s in sorted({s for s in existing_sets if s.startswith("affinity-")} - sets):
        tx.body.append(f"delete set ip {table} {s}")
    for obj, elems in tx.elements.items():  # (a ClusterIP with several ports is one set element)
        tx.body.append(f"add element ip {table} {obj} {{ " + ", ".join(dict.fromkeys(elems)) + " }")
    text = "\n".join([*tx.head, *tx.body, ""])
    return NftRuleset(text, chains, sets, tx.rules, sum(len(e) for e in tx.elements.values())), stale


def _service_port(tx: _Tx, sp: ServicePort, ctx: NodeContext, chains: set[str], sets: set[str],
                  rewrite: bool) -> None:
    if ":" in sp.cluster_ip:
        return  # an IPv4 table; IPv6 would be a second `ip6` table as upstream
    proto, base, name = sp.protocol.lower(), _port_base(sp), sp.port_name_string
    all_eps = usable(sp.endpoints)
    local_eps = usable([e for e in sp.endpoints if e.node_name == ctx.node_name])
    has_eps = bool(all_eps)
    uses_local = bool(local_eps) and (sp.internal_policy_local or sp.external_policy_local)
    uses_cluster = has_eps and (not sp.internal_policy_local or sp.has_external)
    cluster_chain, local_chain, ext_chain = f"service-{base}", f"local-{base}", f"external-{base}"
    has_internal = has_eps and not (sp.internal_policy_local and not local_eps)
    has_external_eps = has_eps and not (sp.external_policy_local and not local_eps)
    internal_chain = local_chain if sp.internal_policy_local else cluster_chain
    external_chain = local_chain if sp.external_policy_local else cluster_chain
    uses_ext = has_eps and sp.has_external
    internal_verdict = "goto reject-chain" if not has_eps else "drop"
    comment = f"comment {_quote(name)}"

    reachable: dict[str, Endpoint] = {}
    for e in [*(all_eps if uses_cluster else []), *(local_eps if uses_local else [])]:
        reachable.setdefault(e.address, e)
    ep_chain = {addr: f"endpoint-{_endpoint_base(sp, e)}" for addr, e in reachable.items()}
    own = [c for c, used in ((cluster_chain, uses_cluster), (local_chain, uses_local), (ext_chain, uses_ext)) if used]
    own += list(ep_chain.values())
    chains.update(own)
    if sp.affinity_seconds:
        sets.update(f"affinity-{_endpoint_base(sp, e)}" for e in reachable.values())

    # dispatch: the maps are rebuilt on every sync
    key = f"{sp.cluster_ip} . {proto} . {sp.port}"
    tx.element("cluster-ips", sp.cluster_ip)
    if has_internal:
        tx.element("service-ips", f"{key} : goto {internal_chain}")
    else:
        tx.element("no-endpoint-services", f"{key} {comment} : {internal_verdict}")
    for ip in [*sp.external_ips, *sp.load_balancer_ips]:
        k = f"{ip} . {proto} . {sp.port}"
        if has_eps:
            tx.element("service-ips", f"{k} : goto {ext_chain}")
        if not has_external_eps:
            tx.element("no-endpoint-services", f"{k} {comment} : {internal_verdict if not has_eps else 'drop'}")
    if sp.node_port:
        k = f"{proto} . {sp.node_port}"
        if has_eps:
            tx.element("service-nodeports", f"{k} : goto {ext_chain}")
        if not has_external_eps:
            tx.element("no-endpoint-nodeports", f"{k} {comment} : {internal_verdict if not has_eps else 'drop'}")
    if not rewrite:
        return

    for c in own:
        tx.chain(c, known=True)
    if sp.affinity_seconds:
        for e in reachable.values():
            tx.head.append(f"add set ip {tx.table} affinity-{_endpoint_base(sp, e)} {{ type ipv4_addr ; "
                           f"flags dynamic,timeout ; timeout {sp.affinity_seconds}s ; }}")
    if has_internal:
        # traffic from outside the pod network must come back through us: masquerade it
        tx.rule(internal_chain, f"ip daddr {sp.cluster_ip} {proto} dport {sp.port} ip saddr != {ctx.cluster_cidr}",
                "jump mark-for-masquerade")
    if uses_ext:
        if not sp.external_policy_local:
            tx.rule(ext_chain, "jump mark-for-masquerade")
        else:
            tx.rule(ext_chain, f"ip saddr {ctx.cluster_cidr} goto {cluster_chain} comment",
                    _quote("short-circuit pod traffic"))
            tx.rule(ext_chain, "fib saddr type local jump mark-for-masquerade comment", _quote("masquerade local traffic"))
            tx.rule(ext_chain, f"fib saddr type local goto {cluster_chain} comment", _quote("short-circuit local traffic"))
        if has_external_eps:
            tx.rule(ext_chain, "goto", external_chain)
    if uses_cluster:
        _balance(tx, sp, cluster_chain, all_eps, ep_chain)
    if uses_local:
        _balance(tx, sp, local_chain, local_eps, ep_chain)
    for addr, e in reachable.items():
        c = ep_chain[addr]
        tx.rule(c, f"ip saddr {e.ip} jump mark-for-masquerade")
        if sp.affinity_seconds:
            tx.rule(c, f"update @affinity-{_endpoint_base(sp, e)} {{ ip saddr }}")
        tx.rule(c, f"meta l4proto {proto} dnat to {addr}")


def _balance(tx: _Tx, sp: ServicePort, chain: str, eps: list[Endpoint], ep_chain: dict[str, str]) -> None:
    """Affinity first (a client seen recently goes back to its endpoint), then one uniformly
    random pick among the endpoints."""
    if sp.affinity_seconds:
        for e in eps:
            tx.rule(chain, f"ip saddr @affinity-{_endpoint_base(sp, e)} goto {ep_chain[e.address]}")
    lb = lb_map(chain)
    tx.head.append(f"add map ip {tx.table} {lb} {{ {LB_MAP_TYPE} ; }}")
    tx.head.append(f"flush map ip {tx.table} {lb}")
    for i, e in enumerate(eps):
        tx.element(lb, f"{i} : goto {ep_chain[e.address]}")
    tx.rule(chain, f"numgen random mod {len(eps)} vmap @{lb}")


class NFTables:
    """Runs `nft` (in a network namespace for the bench) on one table of ours."""

    def __init__(self, table: str, netns: str = ""):
        self.table = table
        self.prefix = ["ip", "netns", "exec", netns] if netns else []

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("nft"))

    async def apply(self, text: str) -> None:
        """One transaction: all of it or none of it. (From a file: a pipe into an `nft` that exits
        early fails the write instead of reporting nft's error.)"""
        fd, path = tempfile.mkstemp(prefix=f"kubelite-{self.table}-", suffix=".nft")
        try:
            await asyncio.to_thread(_write, fd, text)
            rc, _, err = await run([*self.prefix, "nft", "-f", path])
        except BaseException:
            os.unlink(path)
            raise
        if rc == 0:
            os.unlink(path)
            return
        kept = os.path.join(os.path.dirname(path), f"kubelite-{self.table}-failed.nft")
        os.replace(path, kept)  # the last failed transaction, for whoever debugs it
        raise IPTablesError(f"nft -f {kept} failed ({rc}{', crashed' if rc < 0 else ''}): {err.strip()[:2000]}")

    async def objects(self) -> tuple[set[str], set[str]]:
        """The chains and sets of our table now (empty when there is no table)."""
        found: tuple[set[str], set[str]] = (set(), set())
        for kind, out_set in (("chains", found[0]), ("sets", found[1])):
            rc, out, _ = await run([*self.prefix, "nft", "list", kind, "ip"])
            if rc != 0:
                continue
            current = ""
            for line in out.splitlines():
                s = line.strip()
                if s.startswith("table ip "):
                    current = s.split()[2]
                elif current == self.table and s.startswith(("chain ", "set ")) and s.endswith("{"):
                    out_set.add(s.split()[1])
        return found

    async def delete(self, chains: Iterable[str]) -> None:
        """Delete stale chains (flushed by an earlier sync), with their load-balancing maps."""
        text = "".join(f"delete chain ip {self.table} {c}\n" + (f"delete map ip {self.table} {lb_map(c)}\n"
                                                                 if lb_map(c) else "") for c in chains)
        if text:
            await self.apply(text)

    async def remove_all(self) -> None:
        """Delete the table and everything in it (upstream's CleanupLeftovers)."""
        rc, _, err = await run([*self.prefix, "nft", "delete", "table", "ip", self.table])
        if rc != 0 and "No such file" not in err:
            raise IPTablesError(f"nft delete table ip {self.table}: {err.strip()}")


def _write(fd: int, text: str) -> None:
    with os.fdopen(fd, "w") as f:
        f.write(text)
