"""Answers for the cluster zone, as CoreDNS's kubernetes plugin gives them (DNS spec for Kubernetes).

- `<svc>.<ns>.svc.<zone>`: A/AAAA of the cluster IP; a headless service's ready endpoint IPs;
  ExternalName: a CNAME to spec.externalName.
- `<hostname>.<svc>.<ns>.svc.<zone>`: one endpoint (its hostname, or its IP with dashes).
- `_<port>._<proto>.<svc>.<ns>.svc.<zone>`: SRV per matching named port, target A records in
  the additional section; weights split 100 between equal records.
- `a-b-c-d.<ns>.pod.<zone>`: the pod's A record (`pods insecure`: any well-formed IP; `verified`:
  only if such a pod exists; `disabled`: none).
- PTR in in-addr.arpa/ip6.arpa for cluster IPs and endpoint IPs; unknown ones fall through upstream.
- A name that does not exist is NXDOMAIN, one that exists without the asked type NOERROR/NODATA,
  both with the zone's SOA in the authority section. TTL 5 (the plugin's default).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from dnslib import AAAA, CNAME, NS, PTR, QTYPE, RCODE, RR, SOA, SRV, TXT, A

from kubelite.dns.records import NO_PORT, ClusterRecords

DEFAULT_TTL = 5
DNS_SCHEMA_VERSION = "1.1.0"


@dataclass
class Answer:
    rcode: int = RCODE.NOERROR
    answers: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)
    forward: bool = False  # not ours: ask the upstream resolvers
    chase: str | None = None  # a CNAME target outside the zone, to resolve upstream and append
    cacheable: bool = True
    # what the answer was computed from (records' change keys), for the server's memo to drop it
    # when one of them changes; None: anything (the SOA's serial, pods)
    deps: set[tuple[str, ...]] | None = None


@dataclass(frozen=True)
class _Record:
    """CoreDNS's msg.Service: what a name resolves to (an IP, or a name for a CNAME) and its port."""

    host: str
    port: int
    target: str  # the name an SRV record points at


@dataclass
class _Request:
    port: str = ""
    protocol: str = ""
    endpoint: str = ""
    service: str = ""
    namespace: str = ""
    pod_or_svc: str = ""


class _NameError(Exception):
    """NXDOMAIN."""


def _ip_version(host: str) -> int:
    """4, 6, or 0 for a name (inet_pton: ipaddress.ip_address costs tens of microseconds a call)."""
    try:
        socket.inet_pton(socket.AF_INET, host)
        return 4
    except OSError:
        pass
    try:
        socket.inet_pton(socket.AF_INET6, host)
        return 6
    except OSError:
        return 0


def _match(want: str, have: str) -> bool:
    return not want or want == "*" or want == have.lower()


def reverse_to_ip(name: str) -> str | None:
    """`4.3.2.1.in-addr.arpa.` -> 1.2.3.4; nibble ip6.arpa names likewise; None if partial."""
    labels = name.rstrip(".").split(".")
    try:
        if name.endswith(".in-addr.arpa."):
            octets = labels[:-2]
            if len(octets) != 4:
                return None
            return str(ipaddress.IPv4Address(".".join(reversed(octets))))
        if name.endswith(".ip6.arpa."):
            nibbles = labels[:-2]
            if len(nibbles) != 32:
                return None
            h = "".join(reversed(nibbles))
            return str(ipaddress.IPv6Address(":".join(h[i:i + 4] for i in range(0, 32, 4))))
    except ValueError:
        return None
    return None


class KubernetesResolver:
    def __init__(self, records: ClusterRecords, zone: str = "cluster.local", ttl: int = DEFAULT_TTL,
                 pods_mode: str = "insecure", dns_ip: str = ""):
        self.records = records
        self.zone = zone.strip(".").lower() + "."
        self.ttl = ttl
        self.pods_mode = pods_mode
        self.dns_ip = dns_ip
        self._soa: tuple[tuple, RR] | None = None

    # ---------------------------------------------------------------- entry point
    def resolve(self, qname: str, qtype: int) -> Answer:
        name = qname.lower()
        if not name.endswith("."):
            name += "."
        if name.endswith(".in-addr.arpa.") or name.endswith(".ip6.arpa."):
            return self._reverse(qname, name, qtype)
        if name != self.zone and not name.endswith("." + self.zone):
            return Answer(forward=True)
        if not self.records.synced:
            return Answer(rcode=RCODE.SERVFAIL, cacheable=False)  # as CoreDNS before its caches sync
        ans = Answer(deps=set())
        try:
            if name == self.zone:
                ans.deps = None  # the SOA's serial is the last change
                self._apex(qname, qtype, ans)
            elif name == "ns.dns." + self.zone:
                if qtype == QTYPE.A and self.dns_ip:
                    ans.answers.append(RR(qname, QTYPE.A, rdata=A(self.dns_ip), ttl=self.ttl))
            elif name == "dns-version." + self.zone:
                if qtype == QTYPE.TXT:
                    ans.answers.append(RR(qname, QTYPE.TXT, rdata=TXT(DNS_SCHEMA_VERSION), ttl=self.ttl))
            else:
                self._records(qname, name, qtype, ans)
        except _NameError:
            ans.rcode = RCODE.NXDOMAIN
            ans.answers.clear()
        if not ans.answers or ans.rcode != RCODE.NOERROR:
            ans.authority.append(self.soa())
        return ans

    def soa(self) -> RR:
        """The zone's SOA (serial: the last change), built once per change rather than per answer."""
        key = (self.zone, self.ttl, self.records.modified)
        if self._soa is None or self._soa[0] != key:
            self._soa = (key, RR(self.zone, QTYPE.SOA, ttl=min(self.ttl, 300),
                                 rdata=SOA("ns.dns." + self.zone, "hostmaster." + self.zone,
                                           (self.records.modified, 7200, 1800, 86400, self.ttl))))
        return self._soa[1]

    def _apex(self, qname: str, qtype: int, ans: Answer) -> None:
        if qtype == QTYPE.SOA:
            ans.answers.append(self.soa())
        elif qtype == QTYPE.NS:
            ans.answers.append(RR(qname, QTYPE.NS, rdata=NS("ns.dns." + self.zone), ttl=self.ttl))
            if self.dns_ip:
                ans.additional.append(RR("ns.dns." + self.zone, QTYPE.A, rdata=A(self.dns_ip), ttl=self.ttl))

    # ---------------------------------------------------------------- reverse
    def _reverse(self, qname: str, name: str, qtype: int) -> Answer:
        ip = reverse_to_ip(name)
        if qtype != QTYPE.PTR or ip is None:
            return Answer(forward=True)
        targets = []
        svc = self.records.service_by_ip(ip)
        if svc is not None:
            targets.append(f"{svc[1]}.{svc[0]}.svc.{self.zone}")
        else:
            targets += [f"{host}.{s}.{ns}.svc.{self.zone}" for ns, s, host in self.records.endpoint_names(ip)]
        if not targets:
            return Answer(forward=True)  # fallthrough in-addr.arpa ip6.arpa
        return Answer(answers=[RR(qname, QTYPE.PTR, rdata=PTR(t), ttl=self.ttl) for t in targets],
                      deps={("ip", ip)})

    # ---------------------------------------------------------------- zone records
    def _parse(self, name: str) -> _Request:
        """CoreDNS parseRequest: [_port._proto.|endpoint.]service.namespace.(svc|pod).zone"""
        base = name[: -len(self.zone) - 1]
        r = _Request()
        if base in ("", "svc", "pod"):
            return r
        segs = base.split(".")
        r.pod_or_svc = segs.pop()
        if r.pod_or_svc not in ("svc", "pod"):
            raise _NameError
        if not segs:
            return r
        r.namespace = segs.pop()
        if not segs:
            return r
        r.service = segs.pop()
        if len(segs) == 1:
            r.endpoint = segs[0]
        elif len(segs) == 2:
            r.port, r.protocol = segs[0].removeprefix("_"), segs[1].removeprefix("_")
        elif segs:
            raise _NameError
        return r

    def _find(self, r: _Request) -> list[_Record]:
        if not r.pod_or_svc or not r.service:
            return []  # NODATA: zone structure names and namespaces exist
        if r.pod_or_svc == "pod":
            return self._find_pods(r)
        svc = self.records.service(r.namespace, r.service)
        if svc is None:
            raise _NameError
        spec = svc.get("spec") or {}
        svc_name = f"{r.service}.{r.namespace}.svc.{self.zone}"
        out: list[_Record] = []
        if spec.get("type") == "ExternalName":
            if r.endpoint:
                raise _NameError
            target = (spec.get("externalName") or "").rstrip(".") + "."
            ports = [p for p in spec.get("ports") or []
                     if _match(r.port, p.get("name") or "") and _match(r.protocol, p.get("protocol") or "TCP")]
            if r.port and not ports:
                raise _NameError
            out += [_Record(target, p.get("port") or 0, target) for p in ports] or [_Record(target, 0, target)]
            return out
        cluster_ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP") or ""] if ip and ip != "None"]
        if not cluster_ips or r.endpoint:
            for ep in self.records.endpoints(r.namespace, r.service):
                if r.endpoint and r.endpoint != ep.hostname:
                    continue
                for p in ep.ports:
                    if p is NO_PORT and (r.port or r.protocol):
                        continue
                    if _match(r.port, p.name) and _match(r.protocol, p.protocol):
                        out.append(_Record(ep.ip, p.port, f"{ep.hostname}.{svc_name}"))
        else:
            for p in spec.get("ports") or []:
                if _match(r.port, p.get("name") or "") and _match(r.protocol, p.get("protocol") or "TCP"):
                    out += [_Record(ip, p.get("port") or 0, svc_name) for ip in cluster_ips]
        if not out:
            raise _NameError
        return out

    def _find_pods(self, r: _Request) -> list[_Record]:
        if self.pods_mode == "disabled":
            raise _NameError
        name = r.service
        ip = name.replace("-", ".") if name.count("-") == 3 and "--" not in name else name.replace("-", ":")
        if _ip_version(ip) == 0:
            raise _NameError
        if self.pods_mode == "verified" and not self.records.pod_exists(r.namespace, ip):
            raise _NameError
        return [_Record(ip, 0, f"{name}.{r.namespace}.pod.{self.zone}")]

    def _depend(self, r: _Request, ans: Answer) -> None:
        """Note what the answer for a parsed name depends on."""
        if ans.deps is None:
            return
        if r.pod_or_svc == "svc" and r.service:
            ans.deps.add(("svc", r.namespace, r.service))
        elif r.pod_or_svc == "pod" and self.pods_mode == "verified":
            ans.deps = None

    def _records(self, qname: str, name: str, qtype: int, ans: Answer) -> None:
        r = self._parse(name)
        self._depend(r, ans)
        found = self._find(r)
        ttl = self.ttl
        if qtype in (QTYPE.A, QTYPE.AAAA):
            self._address_records(qname, qtype, found, ans, depth=0)
        elif qtype == QTYPE.CNAME:
            ans.answers += [RR(qname, QTYPE.CNAME, rdata=CNAME(rec.host), ttl=ttl)
                            for rec in found if not _ip_version(rec.host)][:1]
        elif qtype == QTYPE.SRV:
            usable = list(dict.fromkeys((rec.port, rec.target, rec.host) for rec in found if rec.port >= 0))
            if usable:
                weight = max(int(100 / len(usable)), 1)  # CoreDNS splits 100 between same-priority records
                extra = set()
                for port, target, host in usable:
                    ans.answers.append(RR(qname, QTYPE.SRV, rdata=SRV(0, weight, port, target), ttl=ttl))
                    v = _ip_version(host)
                    if v and (target, host) not in extra:
                        extra.add((target, host))
                        rtype, rdata = (QTYPE.A, A(host)) if v == 4 else (QTYPE.AAAA, AAAA(host))
                        ans.additional.append(RR(target, rtype, rdata=rdata, ttl=ttl))
        # any other type: the name exists (no _NameError), so NODATA

    def _address_records(self, qname: str, qtype: int, found: list[_Record], ans: Answer, depth: int) -> None:
        want = 4 if qtype == QTYPE.A else 6
        seen = set()
        for rec in found:
            v = _ip_version(rec.host)
            if v == want and rec.host not in seen:
                seen.add(rec.host)
                rdata = A(rec.host) if v == 4 else AAAA(rec.host)
                ans.answers.append(RR(qname, qtype, rdata=rdata, ttl=self.ttl))
            elif v == 0 and rec.host not in seen:
                seen.add(rec.host)
                ans.answers.append(RR(qname, QTYPE.CNAME, rdata=CNAME(rec.host), ttl=self.ttl))
                target = rec.host.lower()
                if target.endswith("." + self.zone) and depth < 7:
                    try:
                        r = self._parse(target)
                        self._depend(r, ans)
                        self._address_records(rec.host, qtype, self._find(r), ans, depth + 1)
                    except _NameError:
                        pass
                elif not target.endswith("." + self.zone):
                    ans.chase = rec.host
                    ans.cacheable = False
