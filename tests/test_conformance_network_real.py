"""Upstream network conformance behaviours on a real node: given a kubelite with `--kubelet` (its
service proxy in the default iptables mode, cluster DNS), when pods resolve names, talk to each
other over HTTP and UDP, and reach NodePort and session-affinity services, then what they observe
from inside (read with `kubectl exec`) is what upstream's e2e tests (test/e2e/network/dns.go,
service.go, test/e2e/common/network/networking.go) demand.

No registry is reachable, so agnhost is replaced by `localhost/netexec:1`: busybox plus a small
static UDP tool compiled here (busybox's nc has no UDP). Its default command is netexec's
hostname service: HTTP `/hostname` on 8083 (busybox httpd) and UDP on 8081, where a datagram
`hostname` is answered with the pod's hostname and `echo X` with X. The DNS probes stand in for
upstream's `dig`: UDP through busybox's nslookup, TCP as a raw DNS message through `nc` (parsed
here with dnslib), and names through glibc's own resolver (`getent`-like, via busybox ping).
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import shutil
import struct
import subprocess
import tarfile
from collections.abc import Iterator

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from tests.conftest import Cluster
from tests.course_support import wait_for
from tests.images import node_namespace, real_node

pytestmark = [pytest.mark.root, pytest.mark.containerd]

# the service proxy's mode: upstream's default, iptables; KUBELITE_TEST_PROXY_MODE=nftables runs the
# same behaviours against the nftables mode
PROXY_MODE = os.environ.get("KUBELITE_TEST_PROXY_MODE", "iptables")
NETEXEC = "localhost/netexec:1"
HTTP_PORT, UDP_PORT = 8083, 8081
AFFINITY_CONFIRM = 15  # upstream's AffinityConfirmCount

UDP_TOOL = r"""
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* udp serve PORT: answer "hostname" with the hostname, "echo X" with X (agnhost netexec's UDP server).
   udp send IP PORT < message: one datagram, print the answer (3 s timeout, exit 1 without one). */
int main(int argc, char **argv) {
    static char buf[65536];
    char host[256];
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    if (argc == 3 && !strcmp(argv[1], "serve")) {
        a.sin_port = htons(atoi(argv[2]));
        if (bind(s, (struct sockaddr *)&a, sizeof a)) { perror("bind"); return 1; }
        for (;;) {
            struct sockaddr_in from;
            socklen_t len = sizeof from;
            ssize_t n = recvfrom(s, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len);
            if (n < 0) continue;
            buf[n] = 0;
            while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
            const char *out = buf;
            if (!strcmp(buf, "hostname")) { gethostname(host, sizeof host); out = host; }
            else if (!strncmp(buf, "echo ", 5)) out = buf + 5;
            sendto(s, out, strlen(out), 0, (struct sockaddr *)&from, len);
        }
    }
    if (argc == 4 && !strcmp(argv[1], "send")) {
        a.sin_port = htons(atoi(argv[3]));
        if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) { fprintf(stderr, "bad address\n"); return 2; }
        size_t n = fread(buf, 1, sizeof buf, stdin);
        if (sendto(s, buf, n, 0, (struct sockaddr *)&a, sizeof a) < 0) { perror("sendto"); return 1; }
        struct pollfd p = {.fd = s, .events = POLLIN};
        if (poll(&p, 1, 3000) != 1) { fprintf(stderr, "timeout\n"); return 1; }
        ssize_t r = recv(s, buf, sizeof buf, 0);
        if (r < 0) { perror("recv"); return 1; }
        fwrite(buf, 1, r, stdout);
        return 0;
    }
    fprintf(stderr, "usage: udp serve PORT | udp send IP PORT < message\n");
    return 2;
}
"""

NETEXEC_SCRIPT = f"""#!/bin/sh
# agnhost netexec's hostname service: HTTP /hostname on {HTTP_PORT}, UDP on {UDP_PORT}
mkdir -p /www && hostname > /www/hostname && httpd -p {HTTP_PORT} -h /www || exit 1
exec udp serve {UDP_PORT}
"""


def _netexec_image(image_dir: str) -> list[str]:
    """busybox + /bin/udp (compiled statically here) + /bin/netexec; skips without a C compiler."""
    from kubelite.runtime import images

    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        pytest.skip("the netexec test image needs a C compiler (apt-get install gcc libc6-dev)")
    src, binary = os.path.join(image_dir, "udp.c"), os.path.join(image_dir, "udp")
    with open(src, "w") as f:
        f.write(UDP_TOOL)
    r = subprocess.run([cc, "-static", "-Os", "-o", binary, src], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot build the static UDP tool: {r.stderr.strip()[:300]}")
    buf = io.BytesIO(images.busybox_layer())
    with tarfile.open(fileobj=buf, mode="a") as tar:
        for name, data in (("bin/udp", open(binary, "rb").read()), ("bin/netexec", NETEXEC_SCRIPT.encode())):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
    path = os.path.join(image_dir, "netexec.tar")
    with open(path, "wb") as f:
        f.write(images.docker_archive([NETEXEC], buf.getvalue(), ["/bin/netexec"]))
    return [path]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if PROXY_MODE == "nftables" and not shutil.which("nft"):
        pytest.skip("nftables mode needs nft (apt-get install nftables)")
    with real_node(tmp_path_factory, _netexec_image, ["--proxy-mode", PROXY_MODE]) as c:
        args = c.node_args  # type: ignore[attr-defined]
        c.dns_ip = args[args.index("--service-cidr") + 1].rsplit(".", 1)[0] + ".10"  # type: ignore[attr-defined]
        n = json.loads(c.kubectl("get", "node", c.node_name, "-o", "json").stdout)  # type: ignore[attr-defined]
        c.node_ip = next(a["address"] for a in n["status"]["addresses"]  # type: ignore[attr-defined]
                         if a["type"] == "InternalIP")
        yield c


@pytest.fixture
def ns(node: Cluster) -> Iterator[str]:
    with node_namespace(node, "net-") as name:
        yield name


# ---- helpers ---------------------------------------------------------------------------------------

def apply(node: Cluster, ns: str, *objs: dict) -> None:
    node.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                  "items": list(objs)}))


def pod(name: str, labels: dict | None = None, command: list[str] | None = None, **spec) -> dict:
    c = {"name": "main", "image": NETEXEC, **({"command": command} if command else {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [c], **spec}}


def service(name: str, selector: dict, port: int = 80, target: int = HTTP_PORT, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": port, "targetPort": target}], **spec}}


def wait_ready(node: Cluster, ns: str, *names: str, selector: str = "") -> None:
    target = ["pod", "-l", selector] if selector else [f"pod/{n}" for n in names]
    node.kubectl("wait", "-n", ns, "--for=condition=Ready", *target, "--timeout=90s", timeout=100)


def get(node: Cluster, ns: str, kind: str, name: str) -> dict:
    return json.loads(node.kubectl("get", kind, name, "-n", ns, "-o", "json").stdout)


def sh(node: Cluster, ns: str, pod_name: str, script: str, check: bool = True, timeout: float = 60) -> str:
    r = node.kubectl("exec", "-n", ns, pod_name, "--", "sh", "-c", script, check=False, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"`{script}` in {pod_name} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout + (r.stderr if not check else "")


def _norm(text: str) -> str:
    return text.rstrip(".").lower()


def dns_udp(node: Cluster, ns: str, pod_name: str, fqdn: str, qtype: str) -> set[str]:
    """The answers busybox's nslookup (UDP, the pod's nameserver) prints for one type."""
    out = sh(node, ns, pod_name, f"nslookup -type={qtype.lower()} {fqdn}", check=False)
    found: set[str] = set()
    named = False
    for line in out.splitlines():
        if line.startswith("Name:"):
            named = True
        elif named and line.startswith("Address:") and qtype in ("A", "AAAA"):
            found.add(line.split(None, 1)[1].strip())
        elif "\tservice = " in line and qtype == "SRV":
            found.add(_norm(line.split("\tservice = ", 1)[1].strip()))
        elif "\tname = " in line and qtype == "PTR":
            found.add(_norm(line.split("\tname = ", 1)[1].strip()))
    return found


def dns_tcp(node: Cluster, ns: str, pod_name: str, fqdn: str, qtype: str) -> DNSRecord:
    """One query over TCP to the pod's nameserver, sent from inside the pod with `nc`."""
    q = DNSRecord.question(fqdn, qtype).pack()
    escaped = "".join(f"\\{b:03o}" for b in struct.pack(">H", len(q)) + q)
    server = resolv_conf(node, ns, pod_name)["nameserver"][0]
    out = sh(node, ns, pod_name, f"printf '{escaped}' | nc -w 3 {server} 53 | od -An -v -tx1")
    data = bytes.fromhex("".join(out.split()))
    assert len(data) > 2, f"no TCP answer for {fqdn} {qtype}"
    return DNSRecord.parse(data[2:])


def tcp_answers(r: DNSRecord, qtype: str) -> set[str]:
    return {_norm(str(rr.rdata)) for rr in r.rr if QTYPE[rr.rtype] == qtype}


_resolv_confs: dict[tuple[str, str, str], dict[str, list[str]]] = {}  # a pod's never changes


def resolv_conf(node: Cluster, ns: str, pod_name: str) -> dict[str, list[str]]:
    key = (node.data_dir, ns, pod_name)
    if key not in _resolv_confs:
        conf: dict[str, list[str]] = {"nameserver": [], "search": [], "options": []}
        for line in sh(node, ns, pod_name, "cat /etc/resolv.conf").splitlines():
            parts = line.split()
            if parts and parts[0] in conf:
                conf[parts[0]] += parts[1:]
        _resolv_confs[key] = conf
    return _resolv_confs[key]


def search(conf: dict[str, list[str]], name: str) -> list[str]:
    """The names a stub resolver (dig +search) tries for `name`, in order (ndots from options)."""
    ndots = next((int(o.split(":")[1]) for o in conf["options"] if o.startswith("ndots:")), 1)
    expanded = [f"{name}.{s}" for s in conf["search"]]
    return [name, *expanded] if name.count(".") >= ndots else [*expanded, name]


def dig(node: Cluster, ns: str, pod_name: str, name: str, qtype: str) -> tuple[set[str], set[str]]:
    """`dig +search` over UDP and over TCP: the answers of the first name in the search list that
    has any, each way."""
    conf = resolv_conf(node, ns, pod_name)
    udp: set[str] = set()
    tcp: set[str] = set()
    for fqdn in search(conf, name):
        udp = udp or dns_udp(node, ns, pod_name, fqdn, qtype)
        r = dns_tcp(node, ns, pod_name, fqdn, qtype) if not tcp else None
        if r is not None and r.header.rcode == RCODE.NOERROR:
            tcp = tcp_answers(r, qtype)
        if udp and tcp:
            break
    return udp, tcp


def getent(node: Cluster, ns: str, pod_name: str, name: str) -> str:
    """The address glibc's resolver (files, then DNS with the search list) gives `name`; "" if none.
    (busybox has no getent; its ping resolves with getaddrinfo and prints the address first.)"""
    out = sh(node, ns, pod_name, f"ping -c 1 -W 1 {name} 2>&1 | head -1", check=False)
    if out.startswith("PING ") and "(" in out:
        return out.split("(", 1)[1].split(")", 1)[0]
    return ""


def pod_ip(node: Cluster, ns: str, name: str) -> str:
    return get(node, ns, "pod", name)["status"]["podIP"]


def arpa(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


# ---- DNS --------------------------------------------------------------------------------------------

@pytest.mark.conformance("DNS, cluster")
def test_dns_for_the_cluster_and_its_hosts_file(node: Cluster, ns: str):
    """kubernetes.default by DNS (UDP and TCP), the pod's own A record, and its hostname and FQDN
    through /etc/hosts (no service `dns-test-service` exists, so DNS cannot be what answers)."""
    apply(node, ns, pod("dns-querier", hostname="dns-querier-1", subdomain="dns-test-service"))
    wait_ready(node, ns, "dns-querier")
    k8s_ip = get(node, "default", "service", "kubernetes")["spec"]["clusterIP"]
    udp, tcp = dig(node, ns, "dns-querier", "kubernetes.default.svc.cluster.local", "A")
    assert udp == tcp == {k8s_ip}
    assert getent(node, ns, "dns-querier", "kubernetes.default") == k8s_ip  # through the search list

    ip = pod_ip(node, ns, "dns-querier")
    assert sh(node, ns, "dns-querier", "hostname -i").strip() == ip
    pod_a = ip.replace(".", "-") + f".{ns}.pod.cluster.local"
    assert dig(node, ns, "dns-querier", pod_a, "A") == ({ip}, {ip})

    fqdn = f"dns-querier-1.dns-test-service.{ns}.svc.cluster.local"
    assert sh(node, ns, "dns-querier", "hostname").strip() == "dns-querier-1"
    for name in (fqdn, "dns-querier-1"):
        assert getent(node, ns, "dns-querier", name) == ip, name
    assert dns_tcp(node, ns, "dns-querier", fqdn, "A").header.rcode == RCODE.NXDOMAIN


@pytest.mark.conformance("DNS, PQDN for services")
def test_dns_partial_names_for_services(node: Cluster, ns: str):
    sel = {"dns-test": "true"}
    apply(node, ns, service("dns-test-service", sel, clusterIP="None"), service("test-service-2", sel),
          pod("dns-querier", sel, hostname="dns-querier-1", subdomain="dns-test-service"))
    wait_ready(node, ns, "dns-querier")
    ip = pod_ip(node, ns, "dns-querier")
    svc_ip = get(node, ns, "service", "test-service-2")["spec"]["clusterIP"]
    headless = f"dns-test-service.{ns}.svc.cluster.local"
    # the headless service has the ready pod as its endpoint once the slice is written
    wait_for(lambda: dns_udp(node, ns, "dns-querier", headless, "A") == {ip}, 30, "the headless A record")
    for name in ("dns-test-service", f"dns-test-service.{ns}", f"dns-test-service.{ns}.svc"):
        assert dig(node, ns, "dns-querier", name, "A") == ({ip}, {ip}), name
        assert getent(node, ns, "dns-querier", name) == ip, name
    srv = f"0 100 {HTTP_PORT} dns-querier-1.{headless}"  # a headless service's SRV: the endpoint's port
    assert dig(node, ns, "dns-querier", f"_http._tcp.dns-test-service.{ns}.svc", "SRV") == ({srv}, {srv})
    srv = f"0 100 80 test-service-2.{ns}.svc.cluster.local"
    assert dig(node, ns, "dns-querier", f"_http._tcp.test-service-2.{ns}.svc", "SRV") == ({srv}, {srv})
    assert getent(node, ns, "dns-querier", "test-service-2") == svc_ip
    ptr = f"test-service-2.{ns}.svc.cluster.local"
    assert dig(node, ns, "dns-querier", arpa(svc_ip), "PTR") == ({ptr}, {ptr})


@pytest.mark.conformance("DNS, resolve the hostname")
@pytest.mark.conformance("DNS, resolve the subdomain")
def test_dns_pod_hostname_and_subdomain(node: Cluster, ns: str):
    """A pod whose subdomain is a headless service gets `<hostname>.<subdomain>.<ns>.svc` (and the
    service name answers with its address); its short hostname resolves through /etc/hosts."""
    sel = {"dns-test-hostname-attribute": "true"}
    apply(node, ns, service("dns-test-service-2", sel, clusterIP="None"),
          pod("dns-querier-2", sel, hostname="dns-querier-2", subdomain="dns-test-service-2"))
    wait_ready(node, ns, "dns-querier-2")
    ip = pod_ip(node, ns, "dns-querier-2")
    fqdn = f"dns-querier-2.dns-test-service-2.{ns}.svc.cluster.local"
    subdomain = f"dns-test-service-2.{ns}.svc.cluster.local"
    wait_for(lambda: dns_udp(node, ns, "dns-querier-2", fqdn, "A") == {ip}, 30, "the pod's A record")
    assert dig(node, ns, "dns-querier-2", fqdn, "A") == ({ip}, {ip})
    assert dig(node, ns, "dns-querier-2", subdomain, "A") == ({ip}, {ip})
    for name in (fqdn, "dns-querier-2"):
        assert getent(node, ns, "dns-querier-2", name) == ip, name
    # a pod without the hostname in that subdomain is not published under it
    assert dns_tcp(node, ns, "dns-querier-2", f"other.{subdomain}", "A").header.rcode == RCODE.NXDOMAIN


@pytest.mark.conformance("DNS, custom dnsConfig")
def test_pod_dns_config(node: Cluster, ns: str):
    """dnsPolicy None: the pod's resolv.conf is exactly its dnsConfig; ClusterFirst with a dnsConfig:
    the cluster's settings, extended (searches, nameservers) and overridden (options) by it."""
    apply(node, ns,
          pod("none", dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1"], "searches": ["resolv.conf.local"],
                                                   "options": [{"name": "ndots", "value": "2"}]}),
          pod("merged", dnsConfig={"nameservers": ["1.1.1.1"], "searches": ["my.dns.search.suffix"],
                                   "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}))
    wait_ready(node, ns, "none", "merged")
    conf = resolv_conf(node, ns, "none")
    assert conf == {"nameserver": ["1.1.1.1"], "search": ["resolv.conf.local"], "options": ["ndots:2"]}
    conf = resolv_conf(node, ns, "merged")
    assert conf["nameserver"] == [node.dns_ip, "1.1.1.1"]  # type: ignore[attr-defined]
    assert conf["search"] == [f"{ns}.svc.cluster.local", "svc.cluster.local", "cluster.local", "my.dns.search.suffix"]
    assert sorted(conf["options"]) == ["edns0", "ndots:2"]


# ---- pod networking ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def netservers(node: Cluster) -> Iterator[tuple[str, dict[str, str]]]:
    """Two netexec pods (upstream runs one per node; two make "unique hostnames" mean something),
    a test pod and a host-network pod, in a namespace of their own: (namespace, {pod IP: name})."""
    with node_namespace(node, "netsrv-") as ns:
        apply(node, ns, pod("netserver-0", {"selector": "netserver"}), pod("netserver-1", {"selector": "netserver"}),
              pod("test-container-pod"),
              pod("host-test-container-pod", command=["sleep", "3600"], hostNetwork=True))
        wait_ready(node, ns, "netserver-0", "netserver-1", "test-container-pod", "host-test-container-pod")
        yield ns, {pod_ip(node, ns, n): n for n in ("netserver-0", "netserver-1")}


def reach(node: Cluster, ns: str, source: str, ip: str, protocol: str) -> str:
    """The hostname the netserver at `ip` reports, asked over HTTP or UDP from pod `source`."""
    if protocol == "http":
        script = f"timeout 5 wget -qO- http://{ip}:{HTTP_PORT}/hostname"
    else:
        script = f"echo hostname | udp send {ip} {UDP_PORT}"
    r = node.kubectl("exec", "-n", ns, source, "--", "sh", "-c", script, check=False)
    return r.stdout.strip() if r.returncode == 0 else ""


@pytest.mark.conformance("Networking, intra pod http")
@pytest.mark.conformance("Networking, intra pod udp")
def test_pod_to_pod_http_and_udp(node: Cluster, netservers: tuple[str, dict[str, str]]):
    ns, servers = netservers
    for protocol in ("http", "udp"):
        got = {ip: wait_for(lambda ip=ip, p=protocol: reach(node, ns, "test-container-pod", ip, p), 30,
                            f"{protocol} {ip}")
               for ip in servers}
        assert got == servers, protocol  # each endpoint answered, with its own hostname
    # UDP carries what was sent, not just a canned answer
    ip = next(iter(servers))
    assert sh(node, ns, "test-container-pod", f"echo 'echo marker-{ip}' | udp send {ip} {UDP_PORT}") == f"marker-{ip}"


@pytest.mark.conformance("Networking, intra pod http, from node")
def test_node_to_pod_http_and_udp(node: Cluster, netservers: tuple[str, dict[str, str]]):
    ns, servers = netservers
    host_pod = get(node, ns, "pod", "host-test-container-pod")
    assert host_pod["status"]["podIP"] == node.node_ip  # type: ignore[attr-defined]  # it runs in the node's network
    for protocol in ("http", "udp"):
        got = {ip: wait_for(lambda ip=ip, p=protocol: reach(node, ns, "host-test-container-pod", ip, p), 30,
                            f"{protocol} {ip} from the node")
               for ip in servers}
        assert got == servers, protocol


# ---- services ---------------------------------------------------------------------------------------

def backends(node: Cluster, ns: str, name: str, replicas: int) -> set[str]:
    """A ReplicationController of netexec pods (as upstream's serve-hostname RCs); their names."""
    apply(node, ns, {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
                     "spec": {"replicas": replicas, "selector": {"name": name},
                              "template": {"metadata": {"labels": {"name": name}},
                                           "spec": pod(name)["spec"]}}})

    def ready() -> set[str] | None:
        pods = json.loads(node.kubectl("get", "pods", "-n", ns, "-l", f"name={name}", "-o", "json").stdout)["items"]
        ok = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                     for c in (p.get("status") or {}).get("conditions") or [])]
        return {p["metadata"]["name"] for p in ok} if len(ok) == len(pods) == replicas else None
    return wait_for(ready, 90, f"{replicas} ready pods of {name}")


def exec_pod(node: Cluster, ns: str) -> str:
    apply(node, ns, pod("execpod", command=["sleep", "3600"]))
    wait_ready(node, ns, "execpod")
    return "execpod"


def hostnames(node: Cluster, ns: str, url: str, n: int, pause: float = 0) -> list[str]:
    """`n` requests from the exec pod, one answer (or FAILED) each."""
    gap = f"sleep {pause};" if pause else ""
    script = f"for i in $(seq {n}); do timeout 3 wget -qO- {url} 2>/dev/null || echo FAILED; {gap} done"
    return sh(node, ns, "execpod", script, timeout=60 + n * (pause + 3)).split()


def reachable(node: Cluster, ns: str, url: str, names: set[str]) -> None:
    wait_for(lambda: set(hostnames(node, ns, url, 1)) <= names, 30, f"{url} answering")


def sticks(node: Cluster, ns: str, url: str, names: set[str]) -> str:
    """upstream's checkAffinity(shouldHold=true): consecutive requests all land on one backend."""
    got = hostnames(node, ns, url, AFFINITY_CONFIRM)
    assert len(set(got)) == 1 and set(got) <= names, got
    return got[0]


def spreads(node: Cluster, ns: str, url: str, names: set[str]) -> None:
    """checkAffinity(shouldHold=false): requests reach more than one backend."""
    wait_for(lambda: len(set(got := hostnames(node, ns, url, AFFINITY_CONFIRM))) > 1 and set(got) <= names, 30,
             f"{url} to spread over several backends")


def set_affinity(node: Cluster, ns: str, name: str, affinity: str) -> None:
    node.kubectl("patch", "service", name, "-n", ns, "-p", json.dumps({"spec": {"sessionAffinity": affinity}}))
    spec = get(node, ns, "service", name)["spec"]
    assert spec["sessionAffinity"] == affinity
    if affinity == "ClientIP":  # defaulted, as upstream: three hours
        assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    else:
        assert "sessionAffinityConfig" not in spec


@pytest.mark.conformance("Service, NodePort Service")
def test_nodeport_service(node: Cluster, ns: str):
    names = backends(node, ns, "nodeport-test", 2)
    apply(node, ns, service("nodeport-test", {"name": "nodeport-test"}, type="NodePort"))
    svc = get(node, ns, "service", "nodeport-test")
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767 and svc["spec"]["clusterIP"]
    exec_pod(node, ns)
    for url in ("http://nodeport-test/hostname", f"http://{svc['spec']['clusterIP']}/hostname",
                f"http://{node.node_ip}:{node_port}/hostname"):  # type: ignore[attr-defined]
        reachable(node, ns, url, names)
        got = hostnames(node, ns, url, 10)
        assert set(got) <= names, (url, got)


@pytest.mark.conformance("Service, ClusterIP type, session affinity to ClientIP")
@pytest.mark.conformance("Service, ClusterIP type, session affinity to None")
def test_cluster_ip_session_affinity_and_switching_it(node: Cluster, ns: str):
    names = backends(node, ns, "affinity-clusterip", 3)
    apply(node, ns, service("affinity-clusterip", {"name": "affinity-clusterip"}, sessionAffinity="ClientIP"))
    ip = get(node, ns, "service", "affinity-clusterip")["spec"]["clusterIP"]
    exec_pod(node, ns)
    for url in ("http://affinity-clusterip/hostname", f"http://{ip}/hostname"):
        reachable(node, ns, url, names)
        sticks(node, ns, url, names)
    url = f"http://{ip}/hostname"
    set_affinity(node, ns, "affinity-clusterip", "None")
    spreads(node, ns, url, names)
    set_affinity(node, ns, "affinity-clusterip", "ClientIP")
    wait_for(lambda: len(set(hostnames(node, ns, url, AFFINITY_CONFIRM))) == 1, 30, "affinity back in force")
    sticks(node, ns, url, names)


@pytest.mark.conformance("Service, NodePort type, session affinity to ClientIP")
@pytest.mark.conformance("Service, NodePort type, session affinity to None")
def test_node_port_session_affinity_and_switching_it(node: Cluster, ns: str):
    names = backends(node, ns, "affinity-nodeport", 3)
    apply(node, ns, service("affinity-nodeport", {"name": "affinity-nodeport"}, type="NodePort",
                            sessionAffinity="ClientIP"))
    svc = get(node, ns, "service", "affinity-nodeport")["spec"]
    exec_pod(node, ns)
    url = f"http://{node.node_ip}:{svc['ports'][0]['nodePort']}/hostname"  # type: ignore[attr-defined]
    for u in ("http://affinity-nodeport/hostname", f"http://{svc['clusterIP']}/hostname", url):
        reachable(node, ns, u, names)
    sticks(node, ns, url, names)
    set_affinity(node, ns, "affinity-nodeport", "None")
    spreads(node, ns, url, names)
    set_affinity(node, ns, "affinity-nodeport", "ClientIP")
    wait_for(lambda: len(set(hostnames(node, ns, url, AFFINITY_CONFIRM))) == 1, 30, "affinity back in force")
    sticks(node, ns, url, names)


def test_session_affinity_timeout(node: Cluster, ns: str):
    """sessionAffinityConfig.clientIP.timeoutSeconds: within it a client keeps its backend; idle for
    longer, it is balanced anew. A change of the timeout applies to a live service; 0 is invalid."""
    names = backends(node, ns, "affinity-timeout", 3)
    apply(node, ns, service("affinity-timeout", {"name": "affinity-timeout"}, sessionAffinity="ClientIP"))
    ip = get(node, ns, "service", "affinity-timeout")["spec"]["clusterIP"]
    exec_pod(node, ns)
    url = f"http://{ip}/hostname"
    reachable(node, ns, url, names)
    sticks(node, ns, url, names)
    r = node.kubectl("patch", "service", "affinity-timeout", "-n", ns, "-p",
                     '{"spec":{"sessionAffinityConfig":{"clientIP":{"timeoutSeconds":0}}}}', check=False)
    assert r.returncode != 0 and ("spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: "
                                  "must be greater than 0 and less than 86400") in r.stderr, r.stderr
    node.kubectl("patch", "service", "affinity-timeout", "-n", ns, "-p",
                 '{"spec":{"sessionAffinityConfig":{"clientIP":{"timeoutSeconds":1}}}}')
    # idle for 2 s between requests: each is a new pick (the same backend only by chance, 1 in 3)
    wait_for(lambda: len(set(hostnames(node, ns, url, 8, pause=2))) > 1, 60, "picks after the timeout to differ")
    sticks(node, ns, url, names)  # back to back, well within the second: still sticky


@pytest.mark.conformance("Service endpoint latency, thresholds")
def test_service_endpoints_follow_new_services(node: Cluster, ns: str):
    """upstream's service_latency.go scaled down (10 services instead of 100, no percentiles: the
    figures are bench/service_latency.py's): every new Service selecting a running pod gets an
    Endpoints object with that pod's address, seen through a watch with the official client, within
    upstream's 50 s bound for its 90th percentile."""
    from kubernetes import client, watch

    backends(node, ns, "svc-latency-rc", 1)
    ip = json.loads(node.kubectl("get", "pods", "-n", ns, "-l", "name=svc-latency-rc", "-o", "json").stdout
                    )["items"][0]["status"]["podIP"]
    core = client.CoreV1Api(node.api_client())
    rv = core.list_namespaced_endpoints(ns).metadata.resource_version
    names = {f"latency-svc-{i}" for i in range(10)}
    for name in sorted(names):
        core.create_namespaced_service(ns, service(name, {"name": "svc-latency-rc"}))
    ready: dict[str, list] = {}
    for event in watch.Watch().stream(core.list_namespaced_endpoints, ns, resource_version=rv, timeout_seconds=50):
        ep = event["object"]
        addrs = [(a.ip, p.port) for s in ep.subsets or [] for a in s.addresses or [] for p in s.ports or []]
        if ep.metadata.name in names and addrs:
            ready[ep.metadata.name] = addrs
        if len(ready) == len(names):
            break
    assert ready == {n: [(ip, HTTP_PORT)] for n in names}
