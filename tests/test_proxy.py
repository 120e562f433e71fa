"""Services on a real node: given a kubelite with `--kubelet` (and so its service proxy), when a user
exposes pods with kubectl, then the ClusterIP, NodePort, LoadBalancer and external addresses reach
ready pods through kube-proxy-style rules, cluster DNS answers from inside pods, and the host is left
clean when the server stops. Every test runs in both proxy modes (`--proxy-mode iptables|nftables`).

Every packet to a service address is sent only once the proxy's rules are in place (the module
fixture waits for them): without them such traffic would leave the host by its default route.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import Cluster
from tests.course_support import Shell, new_shell, table, wait_for
from tests.images import BUSYBOX, real_node

pytestmark = [pytest.mark.root, pytest.mark.containerd]

SERVE_HOSTNAME = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8888 -h /www"


def iptables_save() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout


def nft_table(node: Cluster) -> str:
    """The nftables mode's table (`kube-proxy` in production; one per test cluster here), or ""."""
    r = subprocess.run(["nft", "list", "table", "ip", f"{node.prefix.lower()}-proxy"],  # type: ignore[attr-defined]
                       capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


def programmed(node: Cluster) -> str:
    """What the proxy programmed, in its mode's own listing."""
    return nft_table(node) if node.mode == "nftables" else iptables_save()  # type: ignore[attr-defined]


def upstream_hash(text: str) -> str:
    """kube-proxy's portProtoHash: base32(sha256(name + protocol))[:16]."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    mode = request.param
    if mode == "nftables" and not shutil.which("nft"):
        pytest.skip("nftables mode needs nft (apt-get install nftables)")
    with real_node(tmp_path_factory, extra_args=["--proxy-mode", mode]) as c:
        args = c.node_args  # type: ignore[attr-defined]
        c.mode = mode  # type: ignore[attr-defined]
        c.prefix = arg(args, "--proxy-chain-prefix")  # type: ignore[attr-defined]
        c.dns_ip = arg(args, "--service-cidr").rsplit(".", 1)[0] + ".10"  # type: ignore[attr-defined]
        node = json.loads(c.kubectl("get", "node", c.node_name, "-o", "json").stdout)  # type: ignore[attr-defined]
        c.node_ip = next(a["address"] for a in node["status"]["addresses"]  # type: ignore[attr-defined]
                         if a["type"] == "InternalIP")
        # the proxy is hooked in and the cluster DNS service has its endpoint before any test sends a packet
        if mode == "nftables":
            wait_for(lambda: f"{c.dns_ip} . udp . 53 : goto service-" in nft_table(c),  # type: ignore[attr-defined]
                     30, "the proxy's nftables table")
        else:
            wait_for(lambda: f"-j {c.prefix}-SERVICES" in iptables_save() and  # type: ignore[attr-defined]
                     f"{c.dns_ip}/32" in iptables_save(), 30, "the proxy's rules")  # type: ignore[attr-defined]
        yield c
    leftover = [ln for ln in iptables_save().splitlines() if f"{c.prefix}-" in ln]  # type: ignore[attr-defined]
    assert not leftover, f"the proxy left rules behind: {leftover[:5]}"
    assert not nft_table(c), "the proxy left its nftables table behind"


@pytest.fixture
def sh(node: Cluster, tmp_path) -> Iterator[Shell]:
    s = new_shell(node, tmp_path, "p")
    yield s
    node.kubectl("delete", "namespace", s.namespace, "--wait=false", check=False)


def web(sh: Shell, name: str = "web", replicas: int = 3, extra: str = "") -> set[str]:
    """A deployment of busybox httpd pods serving their own hostname on 8888; their names."""
    sh.out(f"kubectl create deployment {name} --image={BUSYBOX} --replicas={replicas} -- sh -c '{extra}{SERVE_HOSTNAME}'")
    return {p["metadata"]["name"] for p in sh.wait_pods(f"app={name}", replicas, timeout=90)}


def client(sh: Shell) -> str:
    sh.out(f"kubectl run client --image={BUSYBOX} -- sleep 3600")
    sh.wait_pods("run=client", 1, timeout=60)
    return "client"


def fetch(sh: Shell, url: str, n: int = 12, pod: str = "client") -> list[str]:
    """`n` requests from inside a pod; one answer (or error line) each."""
    # (busybox-static's wget crashes with -T; `timeout` bounds a request instead)
    script = f"for i in $(seq {n}); do timeout 3 wget -qO- {url} 2>&1 || echo FAILED; done"
    return sh.out(f"kubectl exec {pod} -- sh -c '{script}'", timeout=60).split()


def host_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode().strip()


def cluster_ip(sh: Shell, svc: str) -> str:
    return sh.out(f"kubectl get svc {svc} -o jsonpath={{.spec.clusterIP}}")


def test_cluster_ip_spreads_over_ready_pods_and_follows_scale(sh: Shell, node: Cluster):
    names = web(sh)
    client(sh)
    sh.out("kubectl expose deployment web --port 8888")
    ip = cluster_ip(sh, "web")
    assert ip.startswith("10.43.")
    got = wait_for(lambda: (r := fetch(sh, f"http://{ip}:8888/", 20)) and set(r) <= names and len(set(r)) >= 2 and r,
                   30, "answers from several pods")
    assert len(got) == 20
    if node.mode == "nftables":  # type: ignore[attr-defined]
        # upstream's shape: the ClusterIP in the service-ips map, one service chain picking one of 3
        # endpoint chains at random
        listing = nft_table(node)
        svc_chain = f"service-{upstream_hash(f'{sh.namespace}/web/tcp/')[:8]}-{sh.namespace}/web/tcp/"
        assert f"{ip} . tcp . 8888 : goto {svc_chain}" in listing, listing[:3000]
        assert f"numgen random mod 3 vmap @lb-{svc_chain}" in listing
        endpoint_chains = {ln for ln in listing.splitlines()
                           if "chain endpoint-" in ln and f"-{sh.namespace}/web/tcp/__" in ln}
        assert len(endpoint_chains) == 3, endpoint_chains
    else:
        # the rules have upstream's shape: one KUBE-SVC chain, 3 KUBE-SEP chains, random spreading
        svc_chain = f"{node.prefix}-SVC-{upstream_hash(sh.namespace + '/webtcp')}"  # type: ignore[attr-defined]
        rules = [ln for ln in iptables_save().splitlines() if ln.startswith(f"-A {svc_chain} ")]
        assert f"-d {ip}/32 -p tcp -m comment --comment \"{sh.namespace}/web cluster IP\"" in iptables_save()
        assert len([r for r in rules if "--mode random --probability" in r]) == 2, rules
        assert len([r for r in rules if f"-j {node.prefix}-SEP-" in r]) == 3, rules  # type: ignore[attr-defined]

    sh.out("kubectl scale deployment web --replicas=1")
    only = {p["metadata"]["name"] for p in sh.wait_pods("app=web", 1, timeout=60)}  # not counting terminating ones
    wait_for(lambda: set(fetch(sh, f"http://{ip}:8888/", 6)) == only, 20, "traffic to the one pod left")
    # hairpin: the last pod reaches itself through its own service
    me = next(iter(only))
    assert set(fetch(sh, f"http://{ip}:8888/", 3, pod=me)) == {me}

    sh.out("kubectl scale deployment web --replicas=4")
    four = {p["metadata"]["name"] for p in sh.wait_pods("app=web", 4, timeout=90)}
    wait_for(lambda: len(set(fetch(sh, f"http://{ip}:8888/", 24)) & four) >= 3, 30, "the spread to widen again")


def test_node_port_and_load_balancer_from_the_host(sh: Shell, node: Cluster):
    names = web(sh, replicas=2)
    sh.out("kubectl expose deployment web --type NodePort --port 8888 --name web-np")
    port = int(sh.out("kubectl get svc web-np -o jsonpath={.spec.ports[0].nodePort}"))
    assert 30000 <= port <= 32767
    # (as upstream, the nftables mode serves node ports on the node's addresses but not on localhost)
    hosts = [node.node_ip] if node.mode == "nftables" else ["127.0.0.1", node.node_ip]  # type: ignore[attr-defined]
    for host in hosts:
        assert wait_for(lambda h=host: _try_host(f"http://{h}:{port}/"), 20, f"NodePort on {host}") in names

    lb_port = random.randint(20000, 29000)
    sh.out(f"kubectl expose deployment web --type LoadBalancer --port {lb_port} --target-port 8888 --name web-lb")
    ingress = wait_for(lambda: sh.json("kubectl get svc web-lb -o json").get("status", {})
                       .get("loadBalancer", {}).get("ingress"), 20, "status.loadBalancer.ingress")
    assert [i["ip"] for i in ingress] == [node.node_ip]  # type: ignore[attr-defined]
    row = table(sh.out("kubectl get svc web-lb"))[1][0]
    assert row["TYPE"] == "LoadBalancer" and row["EXTERNAL-IP"] == node.node_ip  # type: ignore[attr-defined]
    assert row["PORT(S)"].startswith(f"{lb_port}:3")
    seen = set()
    for _ in range(12):
        seen.add(wait_for(lambda: _try_host(f"http://{node.node_ip}:{lb_port}/"), 20, "the LoadBalancer address"))
    assert seen <= names and len(seen) == 2, seen


def _try_host(url: str) -> str | None:
    try:
        return host_get(url)
    except OSError:
        return None


def test_service_without_endpoints_is_refused_at_once(sh: Shell, node: Cluster):
    client(sh)
    sh.out("kubectl create service clusterip nothing --tcp=80:8080")
    ip = cluster_ip(sh, "nothing")
    if node.mode == "nftables":  # type: ignore[attr-defined]
        wait_for(lambda: f"{ip} . tcp . 80 comment \"{sh.namespace}/nothing:80-8080\" : goto reject-chain"
                 in nft_table(node), 20, "the reject verdict")
    else:
        wait_for(lambda: f"\"{sh.namespace}/nothing:80-8080 has no endpoints\"" in iptables_save(), 20,
                 "the REJECT rule")
    out = sh.run(f"kubectl exec client -- timeout 20 wget -qO- http://{ip}/", check=False, timeout=60)
    assert out.returncode != 0 and "Connection refused" in out.stderr + out.stdout, out
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((ip, 80), timeout=20).close()


def test_session_affinity_client_ip_sticks(sh: Shell):
    names = web(sh)
    client(sh)
    sh.out("kubectl expose deployment web --port 8888")
    sh.out("""kubectl patch svc web -p '{"spec":{"sessionAffinity":"ClientIP"}}'""")
    ip = cluster_ip(sh, "web")
    wait_for(lambda: set(fetch(sh, f"http://{ip}:8888/", 2)) <= names, 20, "the service")
    got = fetch(sh, f"http://{ip}:8888/", 15)
    assert len(set(got)) == 1 and set(got) <= names, got


def test_label_exercise_removes_one_pod_from_rotation(sh: Shell):
    """The course: add enabled=yes to the pods and the selector, then remove it from one pod."""
    names = web(sh, "rng")
    client(sh)
    sh.out("kubectl expose deployment rng --port 8888")
    sh.out("kubectl label pods -l app=rng enabled=yes")
    sh.out("""kubectl patch svc rng -p '{"spec":{"selector":{"app":"rng","enabled":"yes"}}}'""")
    ip = cluster_ip(sh, "rng")
    wait_for(lambda: set(fetch(sh, f"http://{ip}:8888/", 15)) == names, 30, "every pod answering")
    victim = sorted(names)[0]
    sh.out(f"kubectl label pod {victim} enabled-")
    wait_for(lambda: victim not in fetch(sh, f"http://{ip}:8888/", 12), 20, "the unlabelled pod out of rotation")
    assert victim not in fetch(sh, f"http://{ip}:8888/", 15)
    # it is still running, and the deployment did not replace it
    assert {p["metadata"]["name"] for p in sh.pods("app=rng")} == names


def test_readiness_failure_removes_a_pod_from_rotation(sh: Shell):
    sh.write("web.yaml", f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {BUSYBOX}
        command: [sh, -c, "touch /tmp/ready && {SERVE_HOSTNAME}"]
        readinessProbe:
          exec: {{command: [test, -f, /tmp/ready]}}
          periodSeconds: 1
          failureThreshold: 1
""")
    sh.out("kubectl apply -f web.yaml")
    names = {p["metadata"]["name"] for p in sh.wait_pods("app=web", 2, timeout=90)}
    client(sh)
    sh.out("kubectl expose deployment web --port 8888")
    ip = cluster_ip(sh, "web")
    wait_for(lambda: set(fetch(sh, f"http://{ip}:8888/", 12)) == names, 30, "both pods answering")
    sick = sorted(names)[0]
    sh.out(f"kubectl exec {sick} -- rm /tmp/ready")
    wait_for(lambda: sick not in fetch(sh, f"http://{ip}:8888/", 12), 20, "the not-ready pod out of rotation")
    assert set(fetch(sh, f"http://{ip}:8888/", 12)) == names - {sick}
    sh.out(f"kubectl exec {sick} -- touch /tmp/ready")
    wait_for(lambda: sick in fetch(sh, f"http://{ip}:8888/", 12), 20, "the pod back in rotation")


def test_dns_from_inside_a_pod(sh: Shell, node: Cluster):
    ns = sh.namespace
    names = web(sh, replicas=2)
    sh.write("svcs.yaml", f"""apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8888}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-headless}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 8888}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ext}}
spec:
  type: ExternalName
  externalName: web.{ns}.svc.cluster.local
""")
    sh.out("kubectl apply -f svcs.yaml")
    client(sh)
    resolv = sh.out("kubectl exec client -- cat /etc/resolv.conf")
    assert f"nameserver {node.dns_ip}" in resolv and f"search {ns}.svc.cluster.local" in resolv  # type: ignore[attr-defined]
    ip = cluster_ip(sh, "web")
    pod_ips = {p["status"]["podIP"] for p in sh.pods("app=web")}

    def lookup(*args: str) -> str:
        r = sh.run("kubectl exec client -- nslookup " + " ".join(args), check=False, timeout=30)
        return r.stdout + r.stderr

    out = wait_for(lambda: (o := lookup("web")) and ip in o and o, 20, "the service's A record")
    assert f"web.{ns}.svc.cluster.local" in out
    out = lookup(f"web-headless.{ns}.svc.cluster.local")
    assert pod_ips <= set(out.split()), out
    out = lookup("-type=srv", f"_http._tcp.web.{ns}.svc.cluster.local")
    assert f"web.{ns}.svc.cluster.local" in out and " 80 " in f" {out} ", out
    out = lookup(ip)
    assert f"web.{ns}.svc.cluster.local" in out, out
    out = lookup(f"ext.{ns}.svc.cluster.local")
    assert f"canonical name = web.{ns}.svc.cluster.local" in out and ip in out, out
    assert "NXDOMAIN" in lookup(f"nope.{ns}.svc.cluster.local")
    # and by name, over HTTP, through the ClusterIP
    assert set(fetch(sh, "http://web/", 6)) <= names


def test_service_environment_variables(sh: Shell):
    web(sh, replicas=1)
    sh.out("kubectl expose deployment web --port 8888")
    ip = cluster_ip(sh, "web")
    sh.out(f"kubectl run env --image={BUSYBOX} -- sleep 3600")
    sh.write("nolinks.yaml", f"""apiVersion: v1
kind: Pod
metadata: {{name: nolinks}}
spec:
  enableServiceLinks: false
  containers: [{{name: main, image: "{BUSYBOX}", command: [sleep, "3600"]}}]
""")
    sh.out("kubectl apply -f nolinks.yaml")
    sh.wait_pods("run=env", 1, timeout=60)
    wait_for(lambda: sh.run("kubectl exec nolinks -- true", check=False).returncode == 0, 60, "nolinks running")
    env = dict(line.split("=", 1) for line in sh.out("kubectl exec env -- env").splitlines() if "=" in line)
    assert env["WEB_SERVICE_HOST"] == ip and env["WEB_SERVICE_PORT"] == "8888"
    assert env["WEB_PORT"] == f"tcp://{ip}:8888"
    assert env["WEB_PORT_8888_TCP"] == f"tcp://{ip}:8888" and env["WEB_PORT_8888_TCP_ADDR"] == ip
    assert env["WEB_PORT_8888_TCP_PROTO"] == "tcp" and env["WEB_PORT_8888_TCP_PORT"] == "8888"
    assert "KUBERNETES_SERVICE_HOST" in env
    # the variables point somewhere real
    assert sh.out("kubectl exec env -- sh -c 'timeout 5 wget -qO- http://$WEB_SERVICE_HOST:$WEB_SERVICE_PORT/'").strip()
    # and the API server is reachable through the kubernetes service, as in-cluster clients expect
    api = sh.run("kubectl exec env -- sh -c 'timeout 10 nc $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT "
                 "</dev/null && echo connected'", check=False, timeout=60)
    assert "connected" in api.stdout, api
    nolinks = sh.out("kubectl exec nolinks -- env")
    assert "WEB_SERVICE_HOST" not in nolinks and "KUBERNETES_SERVICE_HOST=" in nolinks


@pytest.fixture
def external_ip() -> Iterator[str]:
    """An address of this host that no service proxy knows about, on an interface of its own (a veth
    pair: the dummy driver is not in every kernel)."""
    tag = uuid.uuid4().hex[:8]
    dev, ip = f"klx{tag}", f"198.51.100.{random.randint(2, 250)}"
    subprocess.run(["ip", "link", "add", dev, "type", "veth", "peer", "name", f"kly{tag}"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{ip}/32", "dev", dev], check=True)
        subprocess.run(["ip", "link", "set", dev, "up"], check=True)
        yield ip
    finally:
        subprocess.run(["ip", "link", "delete", dev], capture_output=True)


def test_external_ips_reach_the_pods_from_the_host(sh: Shell, node: Cluster, external_ip: str):
    """spec.externalIPs: traffic to that address and the service port is proxied like the ClusterIP."""
    names = web(sh, replicas=2)
    port = random.randint(20000, 29000)
    sh.out(f"kubectl expose deployment web --port {port} --target-port 8888 --external-ip {external_ip}")
    row = table(sh.out("kubectl get svc web"))[1][0]
    assert row["EXTERNAL-IP"] == external_ip and row["PORT(S)"] == f"{port}/TCP", row
    seen = set()
    for _ in range(12):
        seen.add(wait_for(lambda: _try_host(f"http://{external_ip}:{port}/"), 20, "the external IP"))
    assert seen <= names and len(seen) == 2, seen
    # the address is only proxied on the service's port, and no longer once the service is gone
    sh.out("kubectl delete svc web")
    wait_for(lambda: _try_host(f"http://{external_ip}:{port}/") is None, 20, "the external IP to be released")
