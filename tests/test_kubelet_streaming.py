"""Streaming to real containers: given a kubelite with a real node (`--kubelet`, containerd), when a
user runs `kubectl attach`, `kubectl port-forward` (pod/x and svc/x) or `kubectl cp`, then bytes
flow to and from the container as with upstream's kubelet."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import KUBECTL, Cluster, _make_cluster
from tests.images import BUSYBOX, node_namespace, real_node
from tests.test_kubelet_pods import get_pod, pod_manifest, running, wait_pod

pytestmark = [pytest.mark.root, pytest.mark.containerd]

HTTPD = ["sh", "-c", "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    with real_node(tmp_path_factory) as c:
        yield c


@pytest.fixture
def ns(node: Cluster):
    with node_namespace(node, "s-") as name:
        yield name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_forward(node: Cluster, ns: str, target: str, ports: str) -> subprocess.Popen:
    """Start `kubectl port-forward` and wait for its 'Forwarding from' line."""
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", node.kubeconfig, "-n", ns, "port-forward", target, ports],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("Forwarding from 127.0.0.1:"):
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"port-forward did not start: {line!r} {err}")
    return proc


def http_get(port: int, attempts: int = 3) -> str:
    for i in range(attempts):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                return r.read().decode()
        except OSError:
            if i == attempts - 1:
                raise
            time.sleep(0.3)
    return ""


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def test_attach_to_a_container_reading_stdin(node: Cluster, ns: str):
    """`kubectl attach -i` feeds the container's own stdin (created with stdin: true) and shows its output."""
    manifest = json.loads(pod_manifest("reader", ["sh", "-c", "read x; echo got:$x; sleep 1"]))
    manifest["spec"]["containers"][0].update(stdin=True, stdinOnce=True)
    manifest["spec"]["restartPolicy"] = "Never"
    node.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest))
    wait_pod(node, ns, "reader", running, what="Running")
    r = node.kubectl("attach", "-n", ns, "-i", "reader", input="hello\n", check=False, timeout=30)
    assert "got:hello" in r.stdout, r
    pod = wait_pod(node, ns, "reader", lambda p: p["status"].get("phase") == "Succeeded", what="Succeeded")
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_attach_errors(node: Cluster, ns: str):
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("sleeper", ["sleep", "3600"]))
    wait_pod(node, ns, "sleeper", running, what="Running")
    r = node.kubectl("attach", "-n", ns, "sleeper", "-c", "nope", check=False)
    assert r.returncode != 0 and "container nope not found in pod sleeper" in r.stderr, r.stderr
    # without -i, attach streams the container's output until interrupted
    r = subprocess.run(["timeout", "2", KUBECTL, "--kubeconfig", node.kubeconfig, "-n", ns, "attach", "sleeper"],
                       capture_output=True, text=True)
    assert r.returncode == 124 and "error" not in r.stderr.lower(), r


def test_exec_stdin_eof_ends_the_command(node: Cluster, ns: str):
    """`echo x | kubectl exec -i pod -- cat`: closing stdin (v5 CLOSE frame) reaches the process."""
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("cat", ["sleep", "3600"]))
    wait_pod(node, ns, "cat", running, what="Running")
    r = node.kubectl("exec", "-n", ns, "-i", "cat", "--", "sh", "-c", "wc -c; echo done >&2",
                     input="x" * 100_000, timeout=30)
    assert r.stdout.strip() == "100000" and r.stderr == "done\n", r


def test_exec_with_a_tty(node: Cluster, ns: str):
    """`kubectl exec -it` under a terminal: stdout and stderr share the TTY, whose size is the caller's."""
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("tty", ["sleep", "3600"]))
    wait_pod(node, ns, "tty", running, what="Running")
    cmd = (f"stty rows 33 cols 101; {KUBECTL} --kubeconfig {node.kubeconfig} -n {ns} exec -it tty -- "
           "sh -c 'sleep 1; stty size; echo to-stderr >&2; tty'")  # containerd resizes just after the start
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert "33 101\n" in r.stdout and "to-stderr\n" in r.stdout and "/dev/pts/" in r.stdout, r


def test_run_interactive_rm(node: Cluster, ns: str):
    r = node.kubectl("run", "-n", ns, "once", f"--image={BUSYBOX}", "--restart=Never", "--rm", "-i", "--",
                     "sh", "-c", "read x; echo got $x", input="hello\n", check=False, timeout=90)
    assert r.returncode == 0, r
    assert r.stdout.startswith("got hello\n"), r
    assert node.kubectl("get", "pod", "once", "-n", ns, check=False).returncode != 0


def test_port_forward_pod_and_service(node: Cluster, ns: str):
    manifest = json.loads(pod_manifest("web", HTTPD))
    manifest["metadata"]["labels"] = {"app": "web"}
    manifest["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
    node.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest))
    wait_pod(node, ns, "web", running, what="Running")
    local = free_port()
    proc = port_forward(node, ns, "pod/web", f"{local}:8080")
    try:
        assert http_get(local) == "hello-from-web\n"
        assert http_get(local) == "hello-from-web\n"  # a second connection over the same session
    finally:
        err = stop(proc)
    assert "error" not in err.lower(), err
    node.kubectl("create", "service", "clusterip", "web", "-n", ns, "--tcp=80:http")
    local = free_port()
    proc = port_forward(node, ns, "svc/web", f"{local}:80")
    try:
        assert http_get(local) == "hello-from-web\n"
    finally:
        stop(proc)


def test_port_forward_reaches_pod_loopback_and_reports_refused(node: Cluster, ns: str):
    """The port is dialled inside the pod's network namespace: a server on 127.0.0.1 is reachable."""
    cmd = ["sh", "-c", "mkdir -p /www && echo local-only > /www/index.html && exec httpd -f -p 127.0.0.1:9090 -h /www"]
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("lo", cmd))
    wait_pod(node, ns, "lo", running, what="Running")
    local = free_port()
    proc = port_forward(node, ns, "pod/lo", f"{local}:9090")
    try:
        assert http_get(local) == "local-only\n"
    finally:
        stop(proc)
    local = free_port()
    proc = port_forward(node, ns, "pod/lo", f"{local}:9999")
    try:
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10).read()
        proc.wait(10)
    finally:
        err = stop(proc)
    assert "error forwarding port 9999 to pod" in err and "connection refused" in err.lower(), err


def test_cp_both_directions(node: Cluster, ns: str, tmp_path):
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("box", ["sleep", "3600"]))
    wait_pod(node, ns, "box", running, what="Running")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(os.urandom(200_000))
    node.kubectl("cp", str(src), f"{ns}/box:/tmp/in", timeout=60)
    assert node.kubectl("exec", "-n", ns, "box", "--", "cat", "/tmp/in/a.txt").stdout == "alpha\n"
    node.kubectl("exec", "-n", ns, "box", "--", "sh", "-c", "echo made-in-pod > /tmp/in/c.txt")
    out = tmp_path / "out"
    node.kubectl("cp", f"{ns}/box:/tmp/in", str(out), timeout=60)
    assert (out / "a.txt").read_text() == "alpha\n"
    assert (out / "c.txt").read_text() == "made-in-pod\n"
    assert (out / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()


def test_discovery_lists_streaming_subresources(node: Cluster):
    res = json.loads(node.kubectl("get", "--raw", "/api/v1").stdout)["resources"]
    names = {r["name"]: r for r in res}
    for sub in ("pods/attach", "pods/exec", "pods/portforward", "pods/log"):
        assert sub in names, sub
    assert names["pods/portforward"]["kind"] == "PodPortForwardOptions"
    assert names["pods/attach"]["kind"] == "PodAttachOptions"


def test_simulated_node_pods_refuse_streams_without_dialling(tmp_path_factory: pytest.TempPathFactory):
    """A simulated node has no kubelet: attach/port-forward get a clear BadRequest from the API server."""
    c = _make_cluster(tmp_path_factory, ["--simulated-nodes", "1"])
    c.start()
    try:
        c.kubectl("run", "web", "--image=nginx")
        deadline = time.time() + 30
        while "Running" not in c.kubectl("get", "pod", "web", "--no-headers").stdout and time.time() < deadline:
            time.sleep(0.3)
        for args in (["attach", "web"], ["port-forward", "pod/web", f"{free_port()}:80"]):
            r = c.kubectl(*args, check=False, timeout=30)
            assert r.returncode == 1 and "runs on simulated node sim-node-0" in r.stderr, r
    finally:
        c.stop()


# ---- kubelet gaps from issue 4 that tests/test_kubelet_pods.py does not cover -----------------------

def _cs(pod: dict, name: str = "main") -> dict:
    return next((s for s in (pod.get("status") or {}).get("containerStatuses") or [] if s["name"] == name), {})


def test_memory_limit_oomkilled(node: Cluster, ns: str):
    """A container over its memory limit is killed by the kernel and reported OOMKilled, exit code 137."""
    c = [{"name": "main", "image": BUSYBOX, "command": ["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"],
          "resources": {"limits": {"memory": "32Mi"}}}]
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("hog", [], containers=c, restartPolicy="Never"))
    pod = wait_pod(node, ns, "hog", lambda p: p["status"].get("phase") == "Failed", what="Failed", timeout=60)
    term = _cs(pod)["state"]["terminated"]
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137, term
    assert pod["status"]["qosClass"] == "Burstable"
    assert "OOMKilled" in node.kubectl("get", "pod", "hog", "-n", ns).stdout


def test_crashloop_backoff_doubles(node: Cluster, ns: str):
    """Upstream's back-off: restart at once, then 10 s, then 20 s (message names the delay)."""
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("crash", ["sh", "-c", "exit 2"]))
    seen: dict[int, float] = {}
    messages: set[str] = set()
    deadline = time.time() + 60
    while time.time() < deadline and 3 not in seen:
        r = node.kubectl("get", "pod", "crash", "-n", ns, "-o", "json", check=False)
        if r.returncode == 0:
            cs = _cs(json.loads(r.stdout))
            seen.setdefault(cs.get("restartCount", 0), time.time())
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff":
                messages.add(waiting["message"].split(" restarting")[0])
        time.sleep(0.25)
    assert 3 in seen, seen
    assert seen[2] - seen[1] >= 8 and seen[3] - seen[2] >= 18, seen
    assert {"back-off 10s", "back-off 20s"} <= messages, messages
    cs = _cs(get_pod(node, ns, "crash"))
    assert cs["lastState"]["terminated"]["exitCode"] == 2 and cs["lastState"]["terminated"]["reason"] == "Error"


def test_tcp_socket_and_startup_probes(node: Cluster, ns: str):
    web = ["sh", "-c", "mkdir -p /w && exec httpd -f -p 8080 -h /w"]
    c = [{"name": "main", "image": BUSYBOX, "command": web,
          "startupProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1, "timeoutSeconds": 3},
          "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1, "timeoutSeconds": 3},
          "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1, "timeoutSeconds": 3}}]
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("tcp", [], containers=c))
    pod = wait_pod(node, ns, "tcp", lambda p: _cs(p).get("ready") is True, what="ready via tcpSocket", timeout=30)
    assert _cs(pod)["started"] is True and _cs(pod)["restartCount"] == 0
    # nothing listens on 9999: readiness stays false, liveness restarts the container
    c = [{"name": "main", "image": BUSYBOX, "command": web,
          "readinessProbe": {"tcpSocket": {"port": 9999}, "periodSeconds": 1},
          "livenessProbe": {"tcpSocket": {"port": 9999}, "periodSeconds": 1, "failureThreshold": 2}}]
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("closed", [], containers=c))
    pod = wait_pod(node, ns, "closed", lambda p: _cs(p).get("restartCount", 0) >= 1, what="restarted", timeout=60)
    assert _cs(pod)["ready"] is False
    events = json.loads(node.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=closed",
                                     "-o", "json").stdout)["items"]
    messages = [e["message"] for e in events if e["reason"] == "Unhealthy"]
    assert any(m.startswith("Liveness probe failed: dial tcp ") and m.endswith(":9999: connect: connection refused")
               for m in messages), messages


def test_volumes_configmap_secret_emptydir_downward_projected(node: Cluster, ns: str):
    node.kubectl("create", "configmap", "cfg", "-n", ns, "--from-literal=a=alpha", "--from-literal=b=beta")
    node.kubectl("create", "secret", "generic", "sec", "-n", ns, "--from-literal=user=admin")
    spec = {
        "terminationGracePeriodSeconds": 2,
        "volumes": [
            {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "sub/a.txt", "mode": 0o600}]}},
            {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
            {"name": "scratch", "emptyDir": {}},
            {"name": "mem", "emptyDir": {"medium": "Memory"}},
            {"name": "info", "downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "mem", "resourceFieldRef": {"containerName": "main", "resource": "limits.memory",
                                                     "divisor": "1Mi"}}]}},
            {"name": "all", "projected": {"sources": [
                {"configMap": {"name": "cfg", "items": [{"key": "b", "path": "b"}]}},
                {"secret": {"name": "sec"}},
                {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}}],
        "containers": [
            {"name": "main", "image": BUSYBOX, "command": ["sleep", "3600"],
             "resources": {"limits": {"memory": "64Mi"}},
             "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}, {"name": "sec", "mountPath": "/sec"},
                              {"name": "scratch", "mountPath": "/scratch"}, {"name": "mem", "mountPath": "/mem"},
                              {"name": "info", "mountPath": "/info"}, {"name": "all", "mountPath": "/all"}]},
            {"name": "writer", "image": BUSYBOX,
             "command": ["sh", "-c", "echo from-writer > /shared/note; sleep 3600"],
             "volumeMounts": [{"name": "scratch", "mountPath": "/shared"}]}]}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vols", "labels": {"app": "vols"}}, "spec": spec}
    node.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(pod))
    wait_pod(node, ns, "vols", running, what="Running")

    def sh(script: str) -> str:
        return node.kubectl("exec", "-n", ns, "vols", "-c", "main", "--", "sh", "-c", script).stdout

    assert sh("cat /cfg/sub/a.txt; echo; ls /cfg") == "alpha\nsub\n"
    assert sh("stat -L -c %a /cfg/sub/a.txt /sec/user") == "600\n400\n"
    assert sh("cat /sec/user") == "admin"
    assert sh("cat /scratch/note") == "from-writer\n"
    assert sh("grep ' /mem ' /proc/mounts | cut -d' ' -f3") == "tmpfs\n"
    assert sh("cat /info/labels; echo; cat /info/name; echo; cat /info/mem") == 'app="vols"\nvols\n64'
    assert sh("cat /all/b /all/user /all/ns") == f"betaadmin{ns}"
    token = sh("cat /all/token")
    assert token.count(".") == 2, token
    # a ConfigMap update reaches the mounted file (kubelet resync, upstream within about a minute)
    patch = json.dumps({"data": {"a": "changed"}})
    node.kubectl("patch", "configmap", "cfg", "-n", ns, "-p", patch)
    deadline = time.time() + 90
    while time.time() < deadline and sh("cat /cfg/sub/a.txt") != "changed":
        time.sleep(1)
    assert sh("cat /cfg/sub/a.txt") == "changed"
