"""The iptables-restore text for one sync, as a pure function of the service map.

kube-proxy's iptables mode, rule for rule: nat KUBE-SERVICES matches each ClusterIP, external IP
and load-balancer IP (and hands node-local destinations to KUBE-NODEPORTS last); KUBE-SVC-* spreads
new connections over KUBE-SEP-* with `-m statistic --mode random`; each KUBE-SEP-* marks hairpin
traffic for masquerade and DNATs; KUBE-EXT-* decides masquerading and the policy for external
destinations; KUBE-SVL-* holds only this node's endpoints (Local traffic policies). The filter
table REJECTs services without endpoints. Chain names hash as upstream (base32 of sha256, 16
characters), so they match what a kube-proxy would create for the same service.

`prefix` is "KUBE" in production; tests running several clusters on one host give each its own.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from kubelite.proxy.servicemap import Endpoint, ServicePort, usable

MASQ_MARK = "0x4000"
# above this many endpoints, per-endpoint rules go without comments (upstream's largeClusterMode)
LARGE_CLUSTER_ENDPOINTS = 1000
OWNED_KINDS = ("SVC", "SVL", "EXT", "SEP", "FW")


@functools.lru_cache(maxsize=1 << 16)
def port_proto_hash(name: str, protocol: str) -> str:
    """Upstream's portProtoHash: the first 16 base32 characters of the sha256, which are exactly
    those of its first 10 bytes (cached: chain names are stable from one sync to the next)."""
    return base64.b32encode(hashlib.sha256((name + protocol).encode()).digest()[:10]).decode()


@dataclass(frozen=True)
class Names:
    """Chain names for one proxy instance."""

    prefix: str = "KUBE"

    def top(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    def svc(self, sp: ServicePort) -> str:
        return f"{self.prefix}-SVC-{port_proto_hash(sp.port_name_string, sp.protocol.lower())}"

    def svl(self, sp: ServicePort) -> str:
        return f"{self.prefix}-SVL-{port_proto_hash(sp.port_name_string, sp.protocol.lower())}"

    def ext(self, sp: ServicePort) -> str:
        return f"{self.prefix}-EXT-{port_proto_hash(sp.port_name_string, sp.protocol.lower())}"

    def sep(self, sp: ServicePort, ep: Endpoint) -> str:
        h = port_proto_hash(sp.port_name_string, sp.protocol.lower() + ep.address)
        return f"{self.prefix}-SEP-{h}"

    def owned(self, chain: str) -> bool:
        """A per-service chain of ours, safe to delete when no service needs it any more."""
        return any(chain.startswith(f"{self.prefix}-{k}-") for k in OWNED_KINDS)


@dataclass(frozen=True)
class Jump:
    """A rule in a built-in chain sending packets to one of ours (kept out of the sync transaction:
    built-in chains are shared with the rest of the host and never flushed)."""

    table: str
    chain: str
    args: tuple[str, ...]


def jumps(names: Names) -> list[Jump]:
    """Where upstream hooks its chains into the built-in ones."""
    t = names.top
    portals = ("-m", "comment", "--comment", "kubernetes service portals")
    external = ("-m", "comment", "--comment", "kubernetes externally-visible service portals")
    new = ("-m", "conntrack", "--ctstate", "NEW")
    return [
        Jump("nat", "PREROUTING", (*portals, "-j", t("SERVICES"))),
        Jump("nat", "OUTPUT", (*portals, "-j", t("SERVICES"))),
        Jump("nat", "POSTROUTING", ("-m", "comment", "--comment", "kubernetes postrouting rules",
                                    "-j", t("POSTROUTING"))),
        Jump("filter", "INPUT", (*new, *external, "-j", t("EXTERNAL-SERVICES"))),
        Jump("filter", "INPUT", ("-j", t("FIREWALL"))),
        Jump("filter", "FORWARD", ("-m", "comment", "--comment", "kubernetes forwarding rules",
                                   "-j", t("FORWARD"))),
        Jump("filter", "FORWARD", (*new, *portals, "-j", t("SERVICES"))),
        Jump("filter", "FORWARD", (*new, *external, "-j", t("EXTERNAL-SERVICES"))),
        Jump("filter", "OUTPUT", (*new, *portals, "-j", t("SERVICES"))),
        Jump("filter", "OUTPUT", ("-j", t("FIREWALL"))),
    ]


@dataclass
class NodeContext:
    node_name: str
    cluster_cidr: str
    service_cidr: str = ""
    names: Names = field(default_factory=Names)


@dataclass
class Ruleset:
    text: str
    nat_chains: set[str]
    filter_chains: set[str]
    rule_count: int
    large_cluster: bool = False


def _q(comment: str) -> str:
    return '"' + comment.replace('"', "'") + '"'


def _proto(sp: ServicePort) -> list[str]:
    p = sp.protocol.lower()
    return ["-m", p, "-p", p]


class _Table:
    def __init__(self, name: str):
        self.name = name
        self.chains: list[str] = []
        self.kept: set[str] = set()  # chains left as they are in the kernel (partial sync)
        self.rules: list[str] = []
        self.deletes: list[str] = []

    def chain(self, name: str, rewrite: bool = True) -> str:
        if rewrite:
            self.chains.append(name)
        else:
            self.kept.add(name)
        return name

    def add(self, chain: str, *args: str) -> None:
        if chain not in self.kept:
            self.rules.append(" ".join(("-A", chain, *args)))

    def render(self) -> list[str]:
        return [f"*{self.name}", *(f":{c} - [0:0]" for c in self.chains), *self.rules, *self.deletes, "COMMIT"]


def service_port_key(sp: ServicePort) -> str:
    return f"{sp.port_name_string}/{sp.protocol}"


def build(service_map: Iterable[ServicePort], ctx: NodeContext, existing_nat: Iterable[str] = (),
          existing_filter: Iterable[str] = (), unchanged: set[str] | frozenset[str] = frozenset()) -> Ruleset:
    """The ruleset for `iptables-restore --noflush`: every chain written is declared (which flushes
    it) and refilled; chains of ours in `existing_*` that are no longer needed are removed.

    The top-level chains are always rewritten. The per-service chains of service ports in
    `unchanged` (keys from `service_port_key`) are left alone, as upstream's partial syncs do: with
    the nft backend, rewriting 10,000 unchanged chains costs seconds for nothing."""
    n = ctx.names
    t = n.top
    nat, flt = _Table("nat"), _Table("filter")
    for c in ("SERVICES", "EXTERNAL-SERVICES", "FORWARD", "FIREWALL"):
        flt.chain(t(c))
    for c in ("SERVICES", "NODEPORTS", "POSTROUTING", "MARK-MASQ"):
        nat.chain(t(c))
    mark_masq = t("MARK-MASQ")

    # fixed rules: masquerade marked traffic on the way out, accept forwarded service traffic
    nat.add(t("POSTROUTING"), "-m", "mark", "!", "--mark", f"{MASQ_MARK}/{MASQ_MARK}", "-j", "RETURN")
    nat.add(t("POSTROUTING"), "-j", "MARK", "--xor-mark", MASQ_MARK)
    nat.add(t("POSTROUTING"), "-m", "comment", "--comment", _q("kubernetes service traffic requiring SNAT"),
            "-j", "MASQUERADE", "--random-fully")
    nat.add(mark_masq, "-j", "MARK", "--or-mark", MASQ_MARK)
    flt.add(t("FORWARD"), "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
    flt.add(t("FORWARD"), "-m", "comment", "--comment", _q("kubernetes forwarding rules"),
            "-m", "mark", "--mark", f"{MASQ_MARK}/{MASQ_MARK}", "-j", "ACCEPT")
    flt.add(t("FORWARD"), "-m", "comment", "--comment", _q("kubernetes forwarding conntrack rule"),
            "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
    flt.add(t("FIREWALL"), "!", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8", "-m", "comment", "--comment",
            _q("block incoming localnet connections"), "-m", "conntrack", "!", "--ctstate",
            "RELATED,ESTABLISHED,DNAT", "-j", "DROP")

    service_map = list(service_map)
    large = sum(len(sp.endpoints) for sp in service_map) > LARGE_CLUSTER_ENDPOINTS
    for sp in service_map:
        _service_port(sp, ctx, nat, flt, service_port_key(sp) not in unchanged, large)

    nat.add(t("SERVICES"), "-m", "comment", "--comment",
            _q("kubernetes service nodeports; NOTE: this must be the last rule in this chain"),
            "-m", "addrtype", "--dst-type", "LOCAL", "-j", t("NODEPORTS"))
    if ctx.service_cidr:
        # as kube-proxy's nftables mode: a ClusterIP (or port) no service has must not leave the host
        flt.add(t("SERVICES"), "-d", ctx.service_cidr, "-m", "comment", "--comment",
                _q("reject traffic to unallocated ClusterIPs"), "-j", "REJECT")

    active_nat, active_filter = set(nat.chains) | nat.kept, set(flt.chains)
    for table, existing, active in ((nat, existing_nat, active_nat), (flt, existing_filter, active_filter)):
        for c in sorted(set(existing) - active):
            if n.owned(c):
                table.chains.append(c)
                table.deletes.append(f"-X {c}")
    lines = [*flt.render(), *nat.render(), ""]
    return Ruleset("\n".join(lines), active_nat, active_filter, len(nat.rules) + len(flt.rules), large)


def _local(eps: list[Endpoint], node: str) -> list[Endpoint]:
    return [e for e in eps if e.node_name == node]


def _service_port(sp: ServicePort, ctx: NodeContext, nat: _Table, flt: _Table, rewrite: bool = True,
                  large: bool = False) -> None:
    n, t = ctx.names, ctx.names.top
    name = sp.port_name_string
    proto = _proto(sp)
    dport = ["--dport", str(sp.port)]
    all_eps = usable(sp.endpoints)
    local_eps = usable(_local(sp.endpoints, ctx.node_name))
    cluster_ip = f"{sp.cluster_ip}/32"
    if ipaddress.ip_address(sp.cluster_ip).version != 4:
        return

    if not all_eps:
        # nothing to send to: refuse at once rather than let the SYN wander off
        flt.add(t("SERVICES"), "-m", "comment", "--comment", _q(f"{name} has no endpoints"), *proto,
                "-d", cluster_ip, *dport, "-j", "REJECT")
        for ip in [*sp.external_ips, *sp.load_balancer_ips]:
            flt.add(t("EXTERNAL-SERVICES"), "-m", "comment", "--comment", _q(f"{name} has no endpoints"),
                    *proto, "-d", f"{ip}/32", *dport, "-j", "REJECT")
        if sp.node_port:
            flt.add(t("EXTERNAL-SERVICES"), "-m", "comment", "--comment", _q(f"{name} has no endpoints"),
                    "-m", "addrtype", "--dst-type", "LOCAL", *proto, "--dport", str(sp.node_port), "-j", "REJECT")
        return

    svc = nat.chain(n.svc(sp), rewrite)
    svl = nat.chain(n.svl(sp), rewrite) if (sp.internal_policy_local or sp.external_policy_local) else ""

    # ClusterIP
    internal_chain = svl if sp.internal_policy_local else svc
    if sp.internal_policy_local and not local_eps:
        flt.add(t("SERVICES"), "-m", "comment", "--comment", _q(f"{name} has no local endpoints"), *proto,
                "-d", cluster_ip, *dport, "-j", "DROP")
    else:
        nat.add(t("SERVICES"), "-m", "comment", "--comment", _q(f"{name} cluster IP"), *proto,
                "-d", cluster_ip, *dport, "-j", internal_chain)
        # traffic from outside the pod network must come back through us: masquerade it
        nat.add(internal_chain, "-m", "comment", "--comment", _q(f"{name} cluster IP"), *proto,
                "-d", cluster_ip, *dport, "!", "-s", ctx.cluster_cidr, "-j", n.top("MARK-MASQ"))

    # external destinations: node ports, external IPs, load-balancer IPs
    if sp.has_external:
        ext = nat.chain(n.ext(sp), rewrite)
        for ip in sp.external_ips:
            nat.add(t("SERVICES"), "-m", "comment", "--comment", _q(f"{name} external IP"), *proto,
                    "-d", f"{ip}/32", *dport, "-j", ext)
        for ip in sp.load_balancer_ips:
            nat.add(t("SERVICES"), "-m", "comment", "--comment", _q(f"{name} loadbalancer IP"), *proto,
                    "-d", f"{ip}/32", *dport, "-j", ext)
        if sp.node_port:
            nat.add(t("NODEPORTS"), "-m", "comment", "--comment", _q(name), *proto,
                    "--dport", str(sp.node_port), "-j", ext)
        if sp.external_policy_local:
            # pods and the node itself may still use any endpoint; outsiders only local ones,
            # keeping their source address
            nat.add(ext, "-s", ctx.cluster_cidr, "-m", "comment", "--comment",
                    _q(f"pod traffic for {name} external destinations"), "-j", svc)
            nat.add(ext, "-m", "comment", "--comment", _q(f"masquerade LOCAL traffic for {name} external destinations"),
                    "-m", "addrtype", "--src-type", "LOCAL", "-j", n.top("MARK-MASQ"))
            nat.add(ext, "-m", "comment", "--comment", _q(f"route LOCAL traffic for {name} external destinations"),
                    "-m", "addrtype", "--src-type", "LOCAL", "-j", svc)
            nat.add(ext, "-j", svl)
            if not local_eps:
                for ip in [*sp.external_ips, *sp.load_balancer_ips]:
                    flt.add(t("EXTERNAL-SERVICES"), "-m", "comment", "--comment",
                            _q(f"{name} has no local endpoints"), *proto, "-d", f"{ip}/32", *dport, "-j", "DROP")
                if sp.node_port:
                    flt.add(t("EXTERNAL-SERVICES"), "-m", "comment", "--comment",
                            _q(f"{name} has no local endpoints"), "-m", "addrtype", "--dst-type", "LOCAL",
                            *proto, "--dport", str(sp.node_port), "-j", "DROP")
        else:
            nat.add(ext, "-m", "comment", "--comment",
                    _q(f"masquerade traffic for {name} external destinations"), "-j", n.top("MARK-MASQ"))
            nat.add(ext, "-j", svc)

    # load balancing over the endpoints, and one chain per endpoint
    _balance(sp, ctx, nat, svc, all_eps, large)
    if svl:
        _balance(sp, ctx, nat, svl, local_eps, large)
    for ep in {e.address: e for e in [*all_eps, *(local_eps if svl else [])]}.values():
        sep = nat.chain(n.sep(sp, ep), rewrite)
        comment = [] if large else ["-m", "comment", "--comment", _q(name)]
        nat.add(sep, *comment, "-s", f"{ep.ip}/32", "-j", n.top("MARK-MASQ"))
        recent = ["-m", "recent", "--name", sep, "--set"] if sp.affinity_seconds else []
        nat.add(sep, *comment, *recent, *proto,
                "-j", "DNAT", "--to-destination", ep.address)


def _balance(sp: ServicePort, ctx: NodeContext, nat: _Table, chain: str, eps: list[Endpoint],
             large: bool = False) -> None:
    """Affinity first (a client seen recently goes back to the same endpoint), then a chain of
    random matches where the i-th of n rules fires with probability 1/(n-i): uniform overall."""
    n = ctx.names
    name = sp.port_name_string
    if sp.affinity_seconds:
        for ep in eps:
            sep = n.sep(sp, ep)
            comment = [] if large else ["-m", "comment", "--comment", _q(f"{name} -> {ep.address}")]
            nat.add(chain, *comment, "-m", "recent",
                    "--name", sep, "--rcheck", "--seconds", str(sp.affinity_seconds), "--reap", "-j", sep)
    count = len(eps)
    for i, ep in enumerate(eps):
        stat = ["-m", "statistic", "--mode", "random", "--probability", f"{1.0 / (count - i):0.10f}"] \
            if i < count - 1 else []
        comment = [] if large else ["-m", "comment", "--comment", _q(f"{name} -> {ep.address}")]
        nat.add(chain, *comment, *stat, "-j", n.sep(sp, ep))
