"""Upstream's sig-cli (kubectl) conformance behaviours, driven with the real kubectl: version,
cluster-info, run, label, patch, describe, diff, expose, proxy, and replication controllers
created, scaled and deleted. The shared cluster runs no kubelet, so the tests play the node's part:
pods are marked Running (with an IP where a Service must find them)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from conftest import KUBECTL, Cluster
from test_workloads_support import Kubelet, get, make_running, pods, set_status, wait_until

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
HTTPD = "registry.k8s.io/e2e-test-images/httpd:2.4.38-4"
BUSYBOX = "registry.k8s.io/e2e-test-images/busybox:1.36.1-1"
NAUTILUS = "registry.k8s.io/e2e-test-images/nautilus:1.7"


def running(cluster: Cluster, ns: str, selector: str, ip_base: str = "") -> list[dict]:
    """Pending pods become Running and Ready; with ip_base each gets a pod IP, as a node gives it."""
    make_running(cluster, ns, selector)
    out = []
    for i, p in enumerate(pods(cluster, ns, selector)):
        st = p.get("status") or {}
        if st.get("phase") != "Running":
            continue
        if ip_base and not st.get("podIP"):
            ip = f"{ip_base}.{i + 10}"
            set_status(cluster, ns, p["metadata"]["name"], {"podIP": ip, "podIPs": [{"ip": ip}],
                                                            "hostIP": "192.0.2.1"})
        out.append(p)
    return out


def rc_manifest(name: str, replicas: int, labels: dict, image: str, port: int | None = None) -> str:
    container: dict = {"name": name, "image": image}
    if port:
        container["ports"] = [{"name": "agnhost-server", "containerPort": port}]
    return json.dumps({"apiVersion": "v1", "kind": "ReplicationController",
                       "metadata": {"name": name, "labels": labels},
                       "spec": {"replicas": replicas, "selector": labels,
                                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}})


@pytest.mark.conformance("Kubectl, version")
def test_kubectl_version_shows_client_and_server(cluster: Cluster) -> None:
    out = cluster.kubectl("version").stdout
    assert re.search(r"^Client Version: v1\.\d+\.\d+", out, re.M), out
    assert re.search(r"^Server Version: v1\.\d+\.\d+", out, re.M), out
    info = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    for side in ("clientVersion", "serverVersion"):
        v = info[side]
        assert v["major"] == "1" and re.fullmatch(r"\d+\+?", v["minor"]) and v["gitCommit"] and v["goVersion"], v
        assert v["gitVersion"].startswith("v1.") and v["platform"]


@pytest.mark.conformance("Kubectl, cluster info")
def test_kubectl_cluster_info(cluster: Cluster) -> None:
    out = cluster.kubectl("cluster-info").stdout
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert f"Kubernetes control plane is running at {cluster.url}" in plain, plain


@pytest.mark.conformance("Kubectl, run pod")
def test_kubectl_run_pod(cluster: Cluster, ns: str) -> None:
    out = cluster.kubectl("run", "e2e-test-httpd-pod", "--restart=Never", "--pod-running-timeout=2m0s",
                          f"--image={HTTPD}", "-n", ns).stdout
    assert out.strip() == "pod/e2e-test-httpd-pod created"
    pod = get(cluster, "pod", "e2e-test-httpd-pod", "-n", ns)
    assert [c["image"] for c in pod["spec"]["containers"]] == [HTTPD]
    assert pod["spec"]["restartPolicy"] == "Never" and pod["metadata"]["labels"] == {"run": "e2e-test-httpd-pod"}
    wait_until(lambda: running(cluster, ns, "run=e2e-test-httpd-pod"), what="the pod running")
    st = get(cluster, "pod", "e2e-test-httpd-pod", "-n", ns)["status"]
    assert [c["image"] for c in st["containerStatuses"]] == [HTTPD] and "running" in st["containerStatuses"][0]["state"]


@pytest.mark.conformance("Kubectl, label update")
def test_kubectl_label_add_and_remove(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("run", "pause", "--image=registry.k8s.io/pause:3.10", "--restart=Never", "-n", ns)
    wait_until(lambda: running(cluster, ns, "run=pause"), what="pause running")
    out = cluster.kubectl("label", "pods", "pause", "testing-label=testing-label-value", "-n", ns).stdout
    assert out.strip() == "pod/pause labeled"
    rows = cluster.kubectl("get", "pod", "pause", "-L", "testing-label", "-n", ns).stdout.splitlines()
    assert rows[0].split()[-1] == "TESTING-LABEL" and rows[1].split()[-1] == "testing-label-value"
    assert "pause" in cluster.kubectl("get", "pods", "-l", "testing-label=testing-label-value", "-n", ns).stdout
    out = cluster.kubectl("label", "pods", "pause", "testing-label-", "-n", ns).stdout
    assert out.strip() == "pod/pause unlabeled"
    rows = cluster.kubectl("get", "pod", "pause", "-L", "testing-label", "-n", ns).stdout.splitlines()
    assert "testing-label-value" not in rows[1]
    r = cluster.kubectl("get", "pods", "-l", "testing-label=testing-label-value", "-n", ns)
    assert r.stdout == "" and "No resources found" in r.stderr


@pytest.mark.conformance("Kubectl, patch to annotate")
def test_kubectl_patch_annotates_every_pod_of_an_rc(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "-f", "-", "-n", ns,
                    input=rc_manifest("agnhost-primary", 2, {"app": "agnhost", "role": "primary"}, AGNHOST, 6379))
    started = rc_pods_running(cluster, ns, "app=agnhost", 2, AGNHOST)
    names = [p["metadata"]["name"] for p in started]
    for name in names:
        out = cluster.kubectl("patch", "pod", name, "-n", ns, "-p",
                              '{"metadata":{"annotations":{"x":"y"}}}').stdout
        assert out.strip() == f"pod/{name} patched"
    for p in pods(cluster, ns, "app=agnhost"):
        assert p["metadata"]["annotations"]["x"] == "y"


def rc_pods_running(cluster: Cluster, ns: str, selector: str, n: int, image: str) -> list[dict]:
    def check() -> list[dict] | None:
        got = running(cluster, ns, selector)
        all_pods = pods(cluster, ns, selector)
        if len(got) != n or len(all_pods) != n:
            return None
        return got
    got = wait_until(check, timeout=60, what=f"{n} running pods")
    # what upstream's validateController reads: each pod's container is running the image
    out = cluster.kubectl("get", "pods", "-l", selector, "-n", ns, "-o",
                          "template", "--template={{range.items}}{{range.status.containerStatuses}}"
                          "{{if .state.running}}{{.image}} {{end}}{{end}}{{end}}").stdout
    assert out.split() == [image] * n
    return got


@pytest.mark.conformance("Kubectl, replication controller")
def test_kubectl_create_and_stop_rc(cluster: Cluster, ns: str) -> None:
    manifest = rc_manifest("update-demo-nautilus", 2, {"name": "update-demo"}, NAUTILUS)
    out = cluster.kubectl("create", "-f", "-", "-n", ns, input=manifest).stdout
    assert out.strip() == "replicationcontroller/update-demo-nautilus created"
    rc_pods_running(cluster, ns, "name=update-demo", 2, NAUTILUS)
    cluster.kubectl("delete", "--grace-period=0", "--force", "-f", "-", "-n", ns, input=manifest)
    r = cluster.kubectl("get", "rc,svc", "-l", "name=update-demo", "--no-headers", "-n", ns)
    assert r.stdout == ""
    wait_until(lambda: not pods(cluster, ns, "name=update-demo", include_terminating=False) or
               make_running(cluster, ns, "name=update-demo") < 0, what="the pods gone")


@pytest.mark.conformance("Kubectl, scale replication controller")
def test_kubectl_scale_rc(cluster: Cluster, ns: str) -> None:
    manifest = rc_manifest("update-demo-nautilus", 2, {"name": "update-demo"}, NAUTILUS)
    cluster.kubectl("create", "-f", "-", "-n", ns, input=manifest)
    rc_pods_running(cluster, ns, "name=update-demo", 2, NAUTILUS)
    out = cluster.kubectl("scale", "rc", "update-demo-nautilus", "--replicas=1", "--timeout=5m", "-n", ns).stdout
    assert out.strip() == "replicationcontroller/update-demo-nautilus scaled"
    rc_pods_running(cluster, ns, "name=update-demo", 1, NAUTILUS)
    cluster.kubectl("scale", "rc", "update-demo-nautilus", "--replicas=2", "--timeout=5m", "-n", ns)
    rc_pods_running(cluster, ns, "name=update-demo", 2, NAUTILUS)
    assert get(cluster, "rc", "update-demo-nautilus", "-n", ns)["spec"]["replicas"] == 2


@pytest.mark.conformance("Kubectl, create service, replication controller")
def test_kubectl_expose_rc_and_service(cluster: Cluster, ns: str) -> None:
    labels = {"app": "agnhost", "role": "primary"}
    cluster.kubectl("create", "-f", "-", "-n", ns, input=rc_manifest("agnhost-primary", 1, labels, AGNHOST, 6379))
    pod = wait_until(lambda: running(cluster, ns, "app=agnhost", "10.244.77"), what="the pod running")[0]
    ip = get(cluster, "pod", pod["metadata"]["name"], "-n", ns)["status"]["podIP"]

    def validate(svc: str, port: int) -> None:
        s = get(cluster, "svc", svc, "-n", ns)
        assert [(p["port"], p["targetPort"]) for p in s["spec"]["ports"]] == [(port, 6379)]
        assert s["spec"]["selector"] == labels

        def endpoints() -> list:
            ep = get(cluster, "endpoints", svc, "-n", ns)
            return [(a["ip"], p["port"]) for sub in ep.get("subsets") or [] for a in sub.get("addresses") or []
                    for p in sub.get("ports") or []]
        assert wait_until(endpoints, what=f"endpoints of {svc}") == [(ip, 6379)]

    out = cluster.kubectl("expose", "rc", "agnhost-primary", "--name=rm2", "--port=1234", "--target-port=6379",
                          "-n", ns).stdout
    assert out.strip() == "service/rm2 exposed"
    validate("rm2", 1234)
    cluster.kubectl("expose", "service", "rm2", "--name=rm3", "--port=2345", "--target-port=6379", "-n", ns)
    validate("rm3", 2345)


def assert_lines(out: str, *required: tuple[str, ...]) -> None:
    """Each tuple's strings appear, in order, on one line of the describe output (upstream's
    requiredStrings check)."""
    lines = out.splitlines()
    for strings in required:
        pattern = ".*".join(re.escape(s) for s in strings)
        assert any(re.search(pattern, line) for line in lines), f"{strings} not in:\n{out}"


@pytest.mark.conformance("Kubectl, describe pod or rc")
def test_kubectl_describe(cluster: Cluster, ns: str) -> None:
    labels = {"app": "agnhost", "role": "primary"}
    cluster.kubectl("create", "-f", "-", "-n", ns, input=rc_manifest("agnhost-primary", 1, labels, AGNHOST, 6379))
    cluster.kubectl("create", "-f", "-", "-n", ns, input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "agnhost-primary", "labels": labels},
        "spec": {"ports": [{"port": 6379, "targetPort": "agnhost-server"}], "selector": labels}}))
    pod = wait_until(lambda: running(cluster, ns, "app=agnhost", "10.244.78"), what="the pod running")[0]
    name = pod["metadata"]["name"]

    out = cluster.kubectl("describe", "pod", name, "-n", ns).stdout
    assert_lines(out, ("Name:", "agnhost-primary-"), ("Namespace:", ns), ("Node:",), ("Labels:", "app=agnhost"),
                 ("role=primary",), ("Annotations:",), ("Status:", "Running"), ("IP:",),
                 ("Controlled By:", "ReplicationController/agnhost-primary"), ("Image:", AGNHOST),
                 ("State:", "Running"), ("QoS Class:", "BestEffort"))

    out = cluster.kubectl("describe", "rc", "agnhost-primary", "-n", ns).stdout
    assert_lines(out, ("Name:", "agnhost-primary"), ("Namespace:", ns), ("Selector:", "app=agnhost,role=primary"),
                 ("Labels:", "app=agnhost"), ("role=primary",), ("Annotations:",),
                 ("Replicas:", "1 current", "1 desired"), ("Pods Status:", "1 Running", "0 Waiting", "0 Succeeded",
                                                           "0 Failed"), ("Image:", AGNHOST),
                 ("SuccessfulCreate", "Created pod: agnhost-primary-"))

    out = cluster.kubectl("describe", "service", "agnhost-primary", "-n", ns).stdout
    assert_lines(out, ("Name:", "agnhost-primary"), ("Namespace:", ns), ("Labels:", "app=agnhost"),
                 ("role=primary",), ("Annotations:",), ("Selector:", "app=agnhost", "role=primary"),
                 ("Type:", "ClusterIP"), ("IP:",), ("Port:", "<unset>", "6379/TCP"), ("Endpoints:",),
                 ("Session Affinity:", "None"))

    node = "describe-node-" + uuid.uuid4().hex[:6]
    with Kubelet(cluster, node):
        cluster.kubectl("cordon", node)  # no other test's pods land here
        out = cluster.kubectl("describe", "node", node).stdout
        assert_lines(out, ("Name:", node), ("Labels:",), ("CreationTimestamp:",), ("Conditions:",),
                     ("Type", "Status", "LastHeartbeatTime", "LastTransitionTime", "Reason", "Message"),
                     ("Ready", "True", "KubeletReady"), ("Capacity:",), ("cpu:", "8"), ("Allocatable:",),
                     ("Unschedulable:", "true"), ("Non-terminated Pods:",), ("Allocated resources:",))
    cluster.kubectl("delete", "node", node, "--wait=false")

    out = cluster.kubectl("describe", "namespace", ns).stdout
    assert_lines(out, ("Name:", ns), ("Labels:",), ("Annotations:",), ("Status:", "Active"))


@pytest.mark.conformance("Kubectl, diff Deployment")
def test_kubectl_diff_deployment(cluster: Cluster, ns: str) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "httpd-deployment", "namespace": ns},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "httpd"}},
                    "template": {"metadata": {"labels": {"app": "httpd"}},
                                 "spec": {"containers": [{"name": "httpd", "image": HTTPD}]}}}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(dep))
    same = cluster.kubectl("diff", "-f", "-", input=json.dumps(dep), check=False)
    assert same.returncode == 0 and same.stdout == "", same.stderr
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = BUSYBOX
    r = cluster.kubectl("diff", "-f", "-", input=json.dumps(dep), check=False)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert re.search(rf"^-\s+- image: {re.escape(HTTPD)}$", r.stdout, re.M), r.stdout
    assert re.search(rf"^\+\s+- image: {re.escape(BUSYBOX)}$", r.stdout, re.M), r.stdout
    # diff changes nothing
    live = get(cluster, "deployment", "httpd-deployment", "-n", ns)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == HTTPD
    cluster.kubectl("delete", "-f", "-", input=json.dumps(dep))


# ------------------------------------------------------------------ kubectl proxy
@pytest.fixture
def proxy(cluster: Cluster) -> Iterator[callable]:
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        p = subprocess.Popen([KUBECTL, "--kubeconfig", cluster.kubeconfig, "proxy", *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(p)
        return p
    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.mark.conformance("Kubectl, proxy port zero")
def test_kubectl_proxy_on_port_zero(proxy) -> None:
    p = proxy("-p", "0", "--disable-filter")
    line = p.stdout.readline()
    m = re.match(r"Starting to serve on 127\.0\.0\.1:(\d+)", line)
    assert m, line
    port = int(m.group(1))
    assert port != 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/", timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["kind"] == "APIVersions" and "v1" in body["versions"]


@pytest.mark.conformance("Kubectl, proxy socket")
def test_kubectl_proxy_on_unix_socket(proxy, tmp_path) -> None:
    path = os.path.join(str(tmp_path), "kubectl-proxy-unix.sock")
    p = proxy(f"--unix-socket={path}")
    line = p.stdout.readline()
    assert line.startswith(f"Starting to serve on {path}"), line
    wait_until(lambda: os.path.exists(path), timeout=10, what="the socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(b"GET /api HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        deadline = time.time() + 10
        while time.time() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    if b"chunked" in head.lower():
        parts, rest = [], body
        while rest:
            size_s, _, rest = rest.partition(b"\r\n")
            size = int(size_s, 16)
            if not size:
                break
            parts.append(rest[:size])
            rest = rest[size + 2:]
        body = b"".join(parts)
    versions = json.loads(body)
    assert versions["kind"] == "APIVersions" and "v1" in versions["versions"]
