"""Cluster DNS end to end: services and pods created through the API, queried with dnslib over UDP/TCP.

The server's address is the one `kubelite server` recorded in `<data_dir>/dns.addr`. Forwarding is
checked against a fake upstream on loopback (the test machine has no other network), configured
the way a user would: by editing the `coredns` ConfigMap.
"""

from __future__ import annotations

import json
import socket

import pytest
from dnslib import EDNS0, QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer
from test_endpoints import make_pod, make_service, wait_for


@pytest.fixture(scope="module")
def dns_addr(cluster) -> tuple[str, int]:
    def read():
        try:
            with open(f"{cluster.data_dir}/dns.addr") as f:
                host, port = f.read().strip().rsplit(":", 1)
                return host, int(port)
        except OSError:
            return None
    return wait_for(read)


def query(addr: tuple[str, int], name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    return DNSRecord.parse(q.send(addr[0], addr[1], tcp=tcp, timeout=5))


def records(r: DNSRecord, section: str = "rr") -> list[tuple[str, str, str]]:
    return sorted((str(x.rname), QTYPE[x.rtype], str(x.rdata)) for x in getattr(r, section))


def a_records(r: DNSRecord) -> set[str]:
    return {str(x.rdata) for x in r.rr if x.rtype == QTYPE.A}


def cluster_ip(core, ns: str, name: str) -> str:
    return core.read_namespaced_service(name, ns).spec.cluster_ip


@pytest.mark.conformance("DNS, services")
def test_service_names_resolve(cluster, ns, core, dns_addr):
    """A ClusterIP service answers A and SRV by all its names; a headless one every ready endpoint."""
    make_service(core, ns, "web", selector={"app": "web"}, ports=[{"name": "http", "port": 80, "targetPort": 8080}])
    ip = cluster_ip(core, ns, "web")
    fqdn = f"web.{ns}.svc.cluster.local"
    # a new service resolves as soon as its watch event arrives
    r = wait_for(lambda: (x := query(dns_addr, fqdn)).header.rcode == RCODE.NOERROR and x.rr and x)
    assert records(r) == [(fqdn + ".", "A", ip)]
    assert r.rr[0].ttl == 5 and r.header.aa == 1

    srv = query(dns_addr, f"_http._tcp.{fqdn}", "SRV")
    assert records(srv) == [(f"_http._tcp.{fqdn}.", "SRV", f"0 100 80 {fqdn}.")]
    assert records(srv, "ar") == [(fqdn + ".", "A", ip)]
    assert query(dns_addr, f"_http._udp.{fqdn}", "SRV").header.rcode == RCODE.NXDOMAIN

    make_service(core, ns, "hl", selector={"app": "hl"}, cluster_ip="None", ports=[{"name": "http", "port": 80}])
    make_pod(core, ns, "hl-a", "10.42.9.1", labels={"app": "hl"})
    make_pod(core, ns, "hl-b", "10.42.9.2", labels={"app": "hl"})
    make_pod(core, ns, "hl-c", "10.42.9.3", labels={"app": "hl"}, ready=False)
    hl = f"hl.{ns}.svc.cluster.local"
    wait_for(lambda: a_records(query(dns_addr, hl)) == {"10.42.9.1", "10.42.9.2"})
    srv = query(dns_addr, f"_http._tcp.{hl}", "SRV")
    assert records(srv) == [(f"_http._tcp.{hl}.", "SRV", f"0 50 80 10-42-9-1.{hl}."),
                            (f"_http._tcp.{hl}.", "SRV", f"0 50 80 10-42-9-2.{hl}.")]
    assert records(srv, "ar") == [(f"10-42-9-1.{hl}.", "A", "10.42.9.1"), (f"10-42-9-2.{hl}.", "A", "10.42.9.2")]
    # the same answers over TCP
    assert a_records(query(dns_addr, hl, tcp=True)) == {"10.42.9.1", "10.42.9.2"}


def test_headless_endpoint_hostnames(cluster, ns, core, dns_addr):
    """`<hostname>.<svc>.<ns>.svc` for pods whose subdomain is the headless service (StatefulSet pods)."""
    make_service(core, ns, "db", selector={"app": "db"}, cluster_ip="None", ports=[{"name": "pg", "port": 5432}])
    make_pod(core, ns, "db-0", "10.42.10.1", labels={"app": "db"}, hostname="db-0", subdomain="db")
    name = f"db-0.db.{ns}.svc.cluster.local"
    r = wait_for(lambda: (x := query(dns_addr, name)).rr and x)
    assert records(r) == [(name + ".", "A", "10.42.10.1")]
    # its PTR names the endpoint
    ptr = query(dns_addr, "1.10.42.10.in-addr.arpa", "PTR")
    assert records(ptr) == [("1.10.42.10.in-addr.arpa.", "PTR", name + ".")]
    assert query(dns_addr, f"db-9.db.{ns}.svc.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_ptr_pod_records_and_negative_answers(cluster, ns, core, dns_addr):
    make_service(core, ns, "api", selector={"app": "api"}, ports=[{"port": 443}])
    ip = cluster_ip(core, ns, "api")
    rev = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
    r = wait_for(lambda: (x := query(dns_addr, rev, "PTR")).rr and x)
    assert records(r) == [(rev + ".", "PTR", f"api.{ns}.svc.cluster.local.")]

    pod = query(dns_addr, f"10-42-11-7.{ns}.pod.cluster.local")
    assert records(pod) == [(f"10-42-11-7.{ns}.pod.cluster.local.", "A", "10.42.11.7")]

    soa_name = "cluster.local."
    nx = query(dns_addr, f"missing.{ns}.svc.cluster.local")
    assert nx.header.rcode == RCODE.NXDOMAIN and not nx.rr
    assert [(str(x.rname), QTYPE[x.rtype]) for x in nx.auth] == [(soa_name, "SOA")]
    assert str(nx.auth[0].rdata).startswith("ns.dns.cluster.local. hostmaster.cluster.local. ")
    assert query(dns_addr, "nothing.cluster.local").header.rcode == RCODE.NXDOMAIN
    # the name exists but has no record of that type: NOERROR with no answers (NODATA)
    nodata = query(dns_addr, f"api.{ns}.svc.cluster.local", "AAAA")
    assert nodata.header.rcode == RCODE.NOERROR and not nodata.rr and QTYPE[nodata.auth[0].rtype] == "SOA"
    ns_only = query(dns_addr, f"{ns}.svc.cluster.local")
    assert ns_only.header.rcode == RCODE.NOERROR and not ns_only.rr


@pytest.mark.conformance("DNS, for ExternalName Services")
def test_externalname_cname_follows_changes(cluster, ns, core, dns_addr):
    core.create_namespaced_service(ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
                                        "spec": {"type": "ExternalName", "externalName": "foo.example.com"}})
    name = f"ext.{ns}.svc.cluster.local"
    r = wait_for(lambda: (x := query(dns_addr, name, "CNAME")).rr and x)
    assert records(r) == [(name + ".", "CNAME", "foo.example.com.")]
    core.patch_namespaced_service("ext", ns, {"spec": {"externalName": "bar.example.com"}})
    wait_for(lambda: records(query(dns_addr, name, "CNAME")) == [(name + ".", "CNAME", "bar.example.com.")])
    core.patch_namespaced_service("ext", ns, {"spec": {"type": "ClusterIP", "externalName": None,
                                                        "ports": [{"port": 80}]}})
    ip = cluster_ip(core, ns, "ext")
    wait_for(lambda: records(query(dns_addr, name)) == [(name + ".", "A", ip)])


class _FakeUpstream(BaseResolver):
    """Answers `*.example.test` A 192.0.2.x; everything else NXDOMAIN."""

    def __init__(self):
        self.seen: list[str] = []

    def resolve(self, request, handler):
        q = request.q
        self.seen.append(str(q.qname))
        reply = request.reply()
        if str(q.qname).endswith("example.test.") and q.qtype == QTYPE.A:
            reply.add_answer(RR(q.qname, QTYPE.A, rdata=A("192.0.2.10"), ttl=60))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def test_forwarding_to_upstream_and_servfail(cluster, ns, core, dns_addr):
    host = "127.0.0.77"
    port = _free_udp_port(host)
    upstream = _FakeUpstream()
    servers = [DNSServer(upstream, address=host, port=port), DNSServer(upstream, address=host, port=port, tcp=True)]
    for s in servers:
        s.start_thread()
    original = json.loads(cluster.kubectl("get", "configmap", "coredns", "-n", "kube-system", "-o", "json").stdout)
    corefile = original["data"]["Corefile"].replace("forward . /etc/resolv.conf", f"forward . {host}:{port}")
    assert corefile != original["data"]["Corefile"]
    try:
        core.patch_namespaced_config_map("coredns", "kube-system", {"data": {"Corefile": corefile}})
        r = wait_for(lambda: (x := query(dns_addr, "www.example.test")).rr and x)
        assert records(r) == [("www.example.test.", "A", "192.0.2.10")]
        assert query(dns_addr, "www.example.test", tcp=True).rr
        assert query(dns_addr, "nothing.invalid").header.rcode == RCODE.NXDOMAIN
        # an ExternalName pointing outside the cluster: the CNAME, completed through the upstream
        core.create_namespaced_service(ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "out"},
                                            "spec": {"type": "ExternalName", "externalName": "db.example.test"}})
        name = f"out.{ns}.svc.cluster.local"
        r = wait_for(lambda: (x := query(dns_addr, name)).rr and x)
        assert records(r) == [("db.example.test.", "A", "192.0.2.10"), (name + ".", "CNAME", "db.example.test.")]
        # nobody answering upstream: SERVFAIL, not a hang
        dead = _free_udp_port(host)
        core.patch_namespaced_config_map("coredns", "kube-system", {"data": {"Corefile": corefile.replace(
            f"{host}:{port}", f"{host}:{dead}")}})
        r = wait_for(lambda: (x := query(dns_addr, "www.example.test")).header.rcode == RCODE.SERVFAIL and x)
        assert not r.rr
    finally:
        core.patch_namespaced_config_map("coredns", "kube-system", {"data": original["data"]})
        for s in servers:
            s.stop()


def test_truncation_and_tcp_fallback(cluster, ns, core, dns_addr):
    """A headless answer too big for 512 bytes comes back truncated over UDP and whole over TCP."""
    make_service(core, ns, "many", selector={"app": "many"}, cluster_ip="None", ports=[{"name": "p", "port": 80}])
    for i in range(40):
        make_pod(core, ns, f"m{i}", f"10.42.12.{i + 1}", labels={"app": "many"})
    name = f"many.{ns}.svc.cluster.local"
    wait_for(lambda: len(a_records(query(dns_addr, name, tcp=True))) == 40)
    udp = query(dns_addr, name)
    assert udp.header.tc == 1 and not udp.rr
    assert len(a_records(query(dns_addr, name, tcp=True))) == 40


def test_question_case_flags_and_edns_are_echoed(cluster, ns, core, dns_addr):
    """Ordinary queries take the server's fast codec: the reply still echoes the question exactly as
    asked (mixed case, as resolvers using 0x20 randomisation check), copies RD/CD, answers EDNS with
    an OPT record and honours the client's buffer size before truncating."""
    make_service(core, ns, "big", selector={"app": "big"}, cluster_ip="None", ports=[{"name": "p", "port": 80}])
    for i in range(40):
        make_pod(core, ns, f"b{i}", f"10.42.13.{i + 1}", labels={"app": "big"})
    name = f"big.{ns}.svc.cluster.local"
    wait_for(lambda: len(a_records(query(dns_addr, name, tcp=True))) == 40)

    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(name))
    q = DNSRecord.question(mixed, "A")
    q.header.cd = 1
    plain = DNSRecord.parse(q.send(*dns_addr, timeout=5))
    assert str(plain.q.qname) == mixed + "." and plain.header.id == q.header.id
    assert plain.header.rd == 1 and plain.header.cd == 1 and plain.header.aa == 1 and plain.header.qr == 1
    assert plain.header.tc == 1 and not plain.ar  # 40 A records exceed 512 bytes; no OPT asked, none given

    q.add_ar(EDNS0(udp_len=4096))
    big = DNSRecord.parse(q.send(*dns_addr, timeout=5))
    assert big.header.tc == 0 and len(a_records(big)) == 40
    assert {str(rr.rname) for rr in big.rr} == {mixed + "."}
    opt = [rr for rr in big.ar if rr.rtype == QTYPE.OPT]
    assert len(opt) == 1 and opt[0].rclass == 1232

    miss = DNSRecord.parse(DNSRecord.question(f"NoPe.{ns}.svc.cluster.local", "AAAA").send(*dns_addr, timeout=5))
    assert miss.header.rcode == RCODE.NXDOMAIN and str(miss.q.qname) == f"NoPe.{ns}.svc.cluster.local."
    assert [QTYPE[rr.rtype] for rr in miss.auth] == ["SOA"]


def test_memoised_answers_follow_what_they_depend_on(cluster, ns, core, dns_addr):
    """The server memoises packed answers and, on a change, drops only those computed from what
    changed: an alias (ExternalName) follows its in-cluster target, a memoised NXDOMAIN turns into
    an answer once the service exists, a PTR follows a cluster IP, and unrelated churn leaves a
    service's answer as it is."""
    make_service(core, ns, "target", selector={"app": "t"}, ports=[{"port": 80}])
    core.create_namespaced_service(ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "alias"},
                                        "spec": {"type": "ExternalName",
                                                 "externalName": f"target.{ns}.svc.cluster.local"}})
    alias, target = f"alias.{ns}.svc.cluster.local", f"target.{ns}.svc.cluster.local"
    first = cluster_ip(core, ns, "target")
    wait_for(lambda: a_records(query(dns_addr, alias)) == {first})
    rev = ".".join(reversed(first.split("."))) + ".in-addr.arpa"
    assert records(query(dns_addr, rev, "PTR")) == [(rev + ".", "PTR", target + ".")]
    later = f"later.{ns}.svc.cluster.local"
    assert query(dns_addr, later).header.rcode == RCODE.NXDOMAIN  # memoised too
    # churn elsewhere: the memo keeps answering these names, and still right
    make_service(core, ns, "other", selector={"app": "o"}, ports=[{"port": 81}])
    wait_for(lambda: query(dns_addr, f"other.{ns}.svc.cluster.local").rr)
    assert a_records(query(dns_addr, alias)) == {first}
    # the target gets another cluster IP: the alias (memoised) follows it, the old PTR goes
    core.delete_namespaced_service("target", ns)
    wait_for(lambda: not a_records(query(dns_addr, alias)))
    make_service(core, ns, "target", selector={"app": "t"}, ports=[{"port": 80}])
    second = cluster_ip(core, ns, "target")
    assert second != first
    wait_for(lambda: a_records(query(dns_addr, alias)) == {second})
    assert a_records(query(dns_addr, target, tcp=True)) == {second}
    assert not query(dns_addr, rev, "PTR").rr
    make_service(core, ns, "later", selector={"app": "l"}, ports=[{"port": 80}])
    wait_for(lambda: a_records(query(dns_addr, later)) == {cluster_ip(core, ns, "later")})
