"""The node runs real containers: given a kubelite with `--kubelet` (containerd via CRI, CNI bridge),
when a user creates pods with kubectl, then they run as Linux containers with their own IPs, and
logs, exec, probes, restarts and termination behave as upstream's kubelet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import Cluster
from tests.images import BUSYBOX, node_namespace, real_node

pytestmark = [pytest.mark.root, pytest.mark.containerd]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    with real_node(tmp_path_factory) as c:
        yield c


@pytest.fixture
def ns(node: Cluster):
    with node_namespace(node, "k-") as name:
        yield name


def pod_manifest(name: str, command: list[str], **spec) -> str:
    containers = spec.pop("containers", None) or [{"name": "main", "image": BUSYBOX, "command": command}]
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"terminationGracePeriodSeconds": 2, "containers": containers, **spec}})


def get_pod(node: Cluster, ns: str, name: str) -> dict:
    return json.loads(node.kubectl("get", "pod", name, "-n", ns, "-o", "json").stdout)


def wait_pod(node: Cluster, ns: str, name: str, pred, timeout: float = 60, what: str = "") -> dict:
    deadline = time.time() + timeout
    pod: dict = {}
    while time.time() < deadline:
        r = node.kubectl("get", "pod", name, "-n", ns, "-o", "json", check=False)
        if r.returncode == 0:
            pod = json.loads(r.stdout)
            if pred(pod):
                return pod
        time.sleep(0.25)
    raise AssertionError(f"pod {ns}/{name} never {what}: {json.dumps(pod.get('status'), indent=1)}\n"
                         f"{node.log_tail(30)}")


def running(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and all(
        "running" in (s.get("state") or {}) for s in pod["status"].get("containerStatuses") or [{}])


def cstatus(pod: dict, name: str = "main") -> dict:
    return next((s for s in (pod.get("status") or {}).get("containerStatuses") or [] if s["name"] == name),
                {"restartCount": 0, "ready": False})


def test_pod_runs_busybox_with_its_own_ip(node: Cluster, ns: str):
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("sleeper", ["sleep", "3600"]))
    pod = wait_pod(node, ns, "sleeper", running, what="Running")
    st = pod["status"]
    assert st["podIP"] and st["podIP"] != st["hostIP"]
    assert st["podIPs"] == [{"ip": st["podIP"]}]
    assert pod["spec"]["nodeName"] == node.node_name
    cs = cstatus(pod)
    assert cs["ready"] is True and cs["started"] is True and cs["restartCount"] == 0
    assert cs["containerID"].startswith("containerd://")
    assert cs["image"] == BUSYBOX and cs["imageID"].startswith("sha256:")
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                     "ContainersReady": "True", "PodScheduled": "True"}
    assert st["qosClass"] == "BestEffort" and st["startTime"]
    out = node.kubectl("get", "pod", "sleeper", "-n", ns, "-o", "wide").stdout
    assert "Running" in out and st["podIP"] in out and "1/1" in out
    # the container has its own network namespace with that address
    ip = node.kubectl("exec", "-n", ns, "sleeper", "--", "ip", "-4", "addr", "show", "eth0").stdout
    assert st["podIP"] in ip


def test_pod_to_pod_ping_and_http(node: Cluster, ns: str):
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest(
        "web", ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && httpd -f -p 8080 -h /www"]))
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("client", ["sleep", "3600"]))
    web = wait_pod(node, ns, "web", running, what="Running")
    wait_pod(node, ns, "client", running, what="Running")
    ip = web["status"]["podIP"]
    ping = node.kubectl("exec", "-n", ns, "client", "--", "ping", "-c", "1", "-W", "3", ip, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    body = node.kubectl("exec", "-n", ns, "client", "--", "wget", "-qO-", f"http://{ip}:8080/")
    assert body.stdout.strip() == "hello-from-web"


def test_logs_tail_follow_timestamps(node: Cluster, ns: str):
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("pingpong", ["ping", "127.0.0.1"]))
    wait_pod(node, ns, "pingpong", running, what="Running")
    time.sleep(3)
    tail = node.kubectl("logs", "-n", ns, "pingpong", "--tail", "2").stdout.splitlines()
    assert len(tail) == 2 and all("bytes from 127.0.0.1" in x for x in tail)
    full = node.kubectl("logs", "-n", ns, "pingpong", "-c", "main").stdout.splitlines()
    assert full[0].startswith("PING 127.0.0.1")
    stamped = node.kubectl("logs", "-n", ns, "pingpong", "--tail", "1", "--timestamps").stdout
    assert stamped[:4].isdigit() and "Z 64 bytes from" in stamped
    proc = subprocess.Popen(["kubectl", "--kubeconfig", node.kubeconfig, "logs", "-f", "-n", ns, "pingpong",
                             "--tail", "1"], stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]  # the tail line, then two new ones as they come
    finally:
        proc.kill()
        proc.wait()
    seqs = [int(x.split("seq=")[1].split()[0]) for x in lines]
    assert seqs == sorted(seqs) and seqs[-1] > seqs[0]
    r = node.kubectl("logs", "-n", ns, "pingpong", "-c", "nope", check=False)
    assert r.returncode != 0 and "container nope is not valid for pod pingpong" in r.stderr


def test_exec_hostname_and_exit_code(node: Cluster, ns: str):
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("box", ["sleep", "3600"]))
    wait_pod(node, ns, "box", running, what="Running")
    assert node.kubectl("exec", "-n", ns, "box", "--", "hostname").stdout.strip() == "box"
    r = node.kubectl("exec", "-n", ns, "box", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert r.returncode == 3
    assert r.stdout == "out\n" and "err" in r.stderr and "command terminated with exit code 3" in r.stderr


def test_env_configmap_and_downward_api(node: Cluster, ns: str):
    node.kubectl("create", "configmap", "settings", "-n", ns, "--from-literal=greeting=hello",
                 "--from-literal=app.conf=level=debug")
    manifest = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "envy", "labels": {"app": "envy"}},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": BUSYBOX,
            "command": ["sh", "-c", "echo cmd=$(GREETING) pod=$POD_NAME ns=$POD_NS combined=$COMBINED; "
                                    "cat /etc/config/app.conf; echo; cat /etc/info/labels"],
            "env": [
                {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "COMBINED", "value": "$(GREETING)-$(POD_NAME)"},
            ],
            "volumeMounts": [{"name": "config", "mountPath": "/etc/config"},
                             {"name": "info", "mountPath": "/etc/info"}],
        }], "volumes": [
            {"name": "config", "configMap": {"name": "settings"}},
            {"name": "info", "downwardAPI": {"items": [{"path": "labels",
                                                       "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        ]}}
    node.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest))
    wait_pod(node, ns, "envy", lambda p: p["status"].get("phase") == "Succeeded", what="Succeeded")
    out = node.kubectl("logs", "-n", ns, "envy").stdout
    assert f"cmd=hello pod=envy ns={ns} combined=hello-envy" in out
    assert "level=debug" in out and 'app="envy"' in out


def test_missing_configmap_is_a_config_error(node: Cluster, ns: str):
    c = [{"name": "main", "image": BUSYBOX, "command": ["sleep", "60"],
          "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]}]
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("noconf", [], containers=c))
    pod = wait_pod(node, ns, "noconf", lambda p: (cstatus(p).get("state") or {}).get("waiting", {}).get(
        "reason") == "CreateContainerConfigError", what="CreateContainerConfigError")
    assert cstatus(pod)["state"]["waiting"]["message"] == 'configmap "absent" not found'
    assert "CreateContainerConfigError" in node.kubectl("get", "pod", "-n", ns, "noconf").stdout


def test_init_containers_run_in_order(node: Cluster, ns: str):
    vm = [{"name": "work", "mountPath": "/work"}]
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "inits"}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "initContainers": [
            {"name": "first", "image": BUSYBOX, "command": ["sh", "-c", "echo first >> /work/log; sleep 1"],
             "volumeMounts": vm},
            {"name": "second", "image": BUSYBOX, "command": ["sh", "-c", "echo second >> /work/log"],
             "volumeMounts": vm}],
        "containers": [{"name": "main", "image": BUSYBOX, "command": ["sh", "-c", "cat /work/log; sleep 3600"],
                        "volumeMounts": vm}],
        "volumes": [{"name": "work", "emptyDir": {}}]}}
    node.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest))
    seen_init = wait_pod(node, ns, "inits", lambda p: p["status"].get("phase") == "Pending" and any(
        "running" in (s.get("state") or {}) for s in p["status"].get("initContainerStatuses") or []),
        what="initializing", timeout=30)
    assert cstatus(seen_init)["state"]["waiting"]["reason"] == "PodInitializing"
    pod = wait_pod(node, ns, "inits", running, what="Running")
    inits = pod["status"]["initContainerStatuses"]
    assert [s["state"]["terminated"]["reason"] for s in inits] == ["Completed", "Completed"]
    assert node.kubectl("logs", "-n", ns, "inits").stdout == "first\nsecond\n"
    assert node.kubectl("logs", "-n", ns, "inits", "-c", "first").stdout == ""


def test_restart_policies(node: Cluster, ns: str):
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("fails", ["sh", "-c", "exit 4"],
                                                                  restartPolicy="Never"))
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("succeeds", ["true"], restartPolicy="OnFailure"))
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("crashes", ["sh", "-c", "echo boom; exit 1"]))
    failed = wait_pod(node, ns, "fails", lambda p: p["status"].get("phase") == "Failed", what="Failed")
    term = cstatus(failed)["state"]["terminated"]
    assert term["exitCode"] == 4 and term["reason"] == "Error"
    ok = wait_pod(node, ns, "succeeds", lambda p: p["status"].get("phase") == "Succeeded", what="Succeeded")
    assert cstatus(ok)["state"]["terminated"]["reason"] == "Completed"
    assert {c["type"]: c.get("reason") for c in ok["status"]["conditions"]}["Ready"] == "PodCompleted"
    crash = wait_pod(node, ns, "crashes", lambda p: (cstatus(p).get("state") or {}).get("waiting", {}).get(
        "reason") == "CrashLoopBackOff", what="CrashLoopBackOff", timeout=60)
    cs = cstatus(crash)
    assert cs["restartCount"] >= 1 and cs["lastState"]["terminated"]["exitCode"] == 1
    assert "back-off 10s restarting failed container=main pod=crashes_" in cs["state"]["waiting"]["message"]
    assert crash["status"]["phase"] == "Running"
    assert "CrashLoopBackOff" in node.kubectl("get", "pod", "-n", ns, "crashes").stdout
    assert node.kubectl("logs", "-n", ns, "crashes", "--previous").stdout == "boom\n"


def test_liveness_probe_restarts_the_container(node: Cluster, ns: str):
    c = [{"name": "main", "image": BUSYBOX,
          "command": ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600"],
          "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1,
                            "failureThreshold": 1}}]
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("live", [], containers=c))
    pod = wait_pod(node, ns, "live", lambda p: cstatus(p)["restartCount"] >= 1, what="restarted by its liveness probe", timeout=60)
    assert "terminated" in cstatus(pod)["lastState"]
    events = node.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=live").stdout
    assert "Unhealthy" in events and "Liveness probe failed" in events
    assert "failed liveness probe, will be restarted" in events


def test_readiness_probe_gates_ready(node: Cluster, ns: str):
    c = [{"name": "main", "image": BUSYBOX, "command": ["sleep", "3600"],
          "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1}}]
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("ready", [], containers=c))
    pod = wait_pod(node, ns, "ready", running, what="Running")
    time.sleep(2)
    pod = get_pod(node, ns, "ready")
    assert cstatus(pod)["ready"] is False
    ready = {c["type"]: c for c in pod["status"]["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [main]"
    node.kubectl("exec", "-n", ns, "ready", "--", "touch", "/tmp/ready")
    wait_pod(node, ns, "ready", lambda p: cstatus(p)["ready"] is True, what="ready", timeout=20)
    # and an httpGet readiness probe from the host to the pod IP
    c2 = [{"name": "main", "image": BUSYBOX, "command": ["sh", "-c", "mkdir /w; echo ok > /w/index.html; "
                                                                     "httpd -f -p 8080 -h /w"],
           "readinessProbe": {"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1}}]
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("httpready", [], containers=c2))
    wait_pod(node, ns, "httpready", lambda p: cstatus(p)["ready"],
             what="ready via httpGet", timeout=30)


def test_graceful_termination_honours_short_grace_period(node: Cluster, ns: str):
    c = [{"name": "main", "image": BUSYBOX, "command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]}]
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("stubborn", [], containers=c,
                                                                  terminationGracePeriodSeconds=3))
    wait_pod(node, ns, "stubborn", running, what="Running")
    t0 = time.time()
    node.kubectl("delete", "pod", "-n", ns, "stubborn", timeout=60)
    took = time.time() - t0
    assert 2.5 <= took < 20, took
    assert node.kubectl("get", "pod", "-n", ns, "stubborn", check=False).returncode != 0


def test_prestop_hook_runs_before_stop(node: Cluster, ns: str):
    c = [{"name": "main", "image": BUSYBOX, "command": ["sleep", "3600"],
          "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo bye > /shared/prestop"]}}},
          "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}]
    hostdir = f"/tmp/kubelite-prestop-{uuid.uuid4().hex[:6]}"
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest(
        "hooked", [], containers=c, volumes=[{"name": "shared", "hostPath": {"path": hostdir,
                                                                              "type": "DirectoryOrCreate"}}]))
    wait_pod(node, ns, "hooked", running, what="Running")
    node.kubectl("delete", "pod", "-n", ns, "hooked", timeout=60)
    with open(os.path.join(hostdir, "prestop")) as f:
        assert f.read() == "bye\n"
    subprocess.run(["rm", "-rf", hostdir])


def test_missing_image_err_image_pull_then_backoff(node: Cluster, ns: str):
    c = [{"name": "main", "image": "localhost/does-not-exist:0", "command": ["true"]}]
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("noimage", [], containers=c))
    reasons = set()
    deadline = time.time() + 40
    while time.time() < deadline and reasons != {"ErrImagePull", "ImagePullBackOff"}:
        pod = get_pod(node, ns, "noimage")
        if pod["status"].get("containerStatuses"):
            w = (cstatus(pod).get("state") or {}).get("waiting") or {}
            if w.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
                reasons.add(w["reason"])
        time.sleep(0.2)
    assert reasons == {"ErrImagePull", "ImagePullBackOff"}
    assert pod["status"]["phase"] == "Pending"
    events = node.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=noimage").stdout
    assert 'Failed to pull image "localhost/does-not-exist:0"' in events
    r = node.kubectl("logs", "-n", ns, "noimage", check=False)
    assert r.returncode != 0 and 'is waiting to start' in r.stderr


def test_node_object_and_lease(node: Cluster):
    n = json.loads(node.kubectl("get", "node", node.node_name, "-o", "json").stdout)
    st = n["status"]
    assert {"cpu", "memory", "ephemeral-storage", "pods"} <= set(st["capacity"]) and st["capacity"]["pods"] == "110"
    assert st["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert {c["type"] for c in st["conditions"]} == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    assert n["spec"]["podCIDR"].endswith("/24")
    lease = json.loads(node.kubectl("get", "lease", "-n", "kube-node-lease", node.node_name, "-o", "json").stdout)
    assert lease["spec"]["holderIdentity"] == node.node_name and lease["spec"]["renewTime"]

    def images() -> list[str]:
        st = json.loads(node.kubectl("get", "node", node.node_name, "-o", "json").stdout)["status"]
        return [name for i in st.get("images") or [] for name in i.get("names") or []]

    deadline = time.time() + 40  # the node status is reported every 10 s, images included
    while BUSYBOX not in images() and time.time() < deadline:
        time.sleep(1)
    assert BUSYBOX in images(), images()
    # the kubelet's events about its node, as `kubectl describe node` shows them
    described = node.kubectl("describe", "node", node.node_name).stdout.split("\nEvents:", 1)[1]
    for reason, message in (("Starting", "Starting kubelet."),
                            ("NodeHasSufficientMemory", f"Node {node.node_name} status is now: NodeHasSufficientMemory"),
                            ("NodeAllocatableEnforced", "Updated Node Allocatable limit across pods"),
                            ("NodeReady", f"Node {node.node_name} status is now: NodeReady"),
                            ("RegisteredNode", f"Node {node.node_name} event: Registered Node {node.node_name} in "
                                               "Controller")):
        assert any(line.split()[1:2] == [reason] and line.rstrip().endswith(message)
                   for line in described.splitlines()), (reason, described)


def test_images_ls(node: Cluster):
    r = subprocess.run([sys.executable, "-m", "kubelite", "images", "ls", "--data-dir", node.data_dir],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("IMAGE")
    assert "localhost/busybox" in r.stdout and "localhost/kubelite/pause" in r.stdout
