"""Helpers of the workload controller tests (no tests here). These clusters run no kubelet (and
maybe no scheduler), so the tests play the node's part: register Nodes with a Lease, bind pods,
and move pods to Running/Ready/Succeeded/Failed through the status subresource."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def now(micro: bool = False) -> str:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.now(UTC).strftime(fmt)


def wait_until(fn: Callable[[], Any], timeout: float = 30, interval: float = 0.25, what: str = "") -> Any:
    deadline = time.time() + timeout
    last: Any = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or fn}: last value {last!r}")


def get(cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def pods(cluster, ns: str, selector: str = "", include_terminating: bool = False) -> list[dict]:
    args = ["pods", "-n", ns] + (["-l", selector] if selector else [])
    out = get(cluster, *args)["items"]
    if not include_terminating:
        out = [p for p in out if not p["metadata"].get("deletionTimestamp")]
    return sorted(out, key=lambda p: p["metadata"]["name"])


def apply(cluster, ns: str | None, manifest: str) -> None:
    args = ["apply", "-f", "-"] + (["-n", ns] if ns else [])
    cluster.kubectl(*args, input=manifest)


def events(cluster, ns: str, name: str) -> list[tuple[str, str, str]]:
    items = get(cluster, "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")["items"]
    return [(e.get("type", ""), e.get("reason", ""), e.get("message", "")) for e in items]


def has_event(cluster, ns: str, name: str, reason: str, contains: str = "") -> bool:
    return any(r == reason and contains in m for _, r, m in events(cluster, ns, name))


# ------------------------------------------------------------------ nodes
def register_node(cluster, name: str, labels: dict | None = None, taints: list | None = None) -> None:
    """A Node with Ready=True and a fresh Lease, as a kubelet registers it."""
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints} if taints else {}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(node))
    capacity = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    cluster.kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p", json.dumps(
        {"status": {"capacity": capacity, "allocatable": capacity}}))
    heartbeat(cluster, name)


def heartbeat(cluster, name: str) -> None:
    """What a kubelet does every few seconds: post Ready and renew its Lease."""
    t = now()
    cond = {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
            "lastHeartbeatTime": t, "lastTransitionTime": t}
    cluster.kubectl("patch", "node", name, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"conditions": [cond]}}))
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": name, "namespace": "kube-node-lease"},
             "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now(micro=True)}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(lease))


class Kubelet:
    """Heartbeats for a node in a thread until stopped: the node's kubelet, alive."""

    def __init__(self, cluster: Any, name: str, labels: dict | None = None, interval: float = 1.0):
        self.cluster, self.name, self.labels, self.interval = cluster, name, labels, interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                heartbeat(self.cluster, self.name)
            except AssertionError:
                pass

    def __enter__(self) -> Kubelet:
        register_node(self.cluster, self.name, self.labels)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(5)

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------ pods
def target_node(pod: dict) -> str | None:
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    terms = ((((spec.get("affinity") or {}).get("nodeAffinity") or {})
              .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or [])
    for t in terms:
        for f in t.get("matchFields") or []:
            if f.get("key") == "metadata.name":
                return f["values"][0]
    return None


def set_status(cluster, ns: str, name: str, status: dict) -> None:
    cluster.kubectl("patch", "pod", name, "-n", ns, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": status}), check=False)


def finish_terminations(cluster, ns: str, selector: str = "") -> None:
    """What a kubelet does for a pod being deleted from its node: stop it and let it go."""
    for p in pods(cluster, ns, selector, include_terminating=True):
        if p["metadata"].get("deletionTimestamp") and (p.get("spec") or {}).get("nodeName"):
            cluster.kubectl("delete", "pod", p["metadata"]["name"], "-n", ns, "--grace-period=0", "--force",
                            "--wait=false", check=False)


def make_running(cluster, ns: str, selector: str = "", ready: bool = True) -> int:
    """Pending pods become Running (and Ready), and pods being deleted from a node go for good;
    returns how many pods were started."""
    n = 0
    finish_terminations(cluster, ns, selector)
    for p in pods(cluster, ns, selector):
        st = p.get("status") or {}
        if st.get("phase") not in (None, "Pending"):
            continue
        t = now()
        s = "True" if ready else "False"
        set_status(cluster, ns, p["metadata"]["name"], {
            "phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
                           {"type": "Ready", "status": s, "lastTransitionTime": t},
                           {"type": "ContainersReady", "status": s, "lastTransitionTime": t}],
            "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": "", "ready": ready,
                                   "restartCount": 0, "started": True, "state": {"running": {"startedAt": t}}}
                                  for c in p["spec"]["containers"]]})
        n += 1
    return n


def finish(cluster, ns: str, name: str, exit_code: int = 0, conditions: list | None = None) -> None:
    """The pod's containers exit: Succeeded on 0, Failed otherwise."""
    t = now()
    pod = get(cluster, "pod", name, "-n", ns)
    status = {"phase": "Succeeded" if exit_code == 0 else "Failed",
              "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
                                     "restartCount": 0, "started": False,
                                     "state": {"terminated": {"exitCode": exit_code, "startedAt": t, "finishedAt": t,
                                                              "reason": "Completed" if exit_code == 0 else "Error"}}}
                                    for c in pod["spec"]["containers"]]}
    conds = [{"type": "Ready", "status": "False", "lastTransitionTime": t, "reason": "PodCompleted"}]
    status["conditions"] = conds + (conditions or [])
    set_status(cluster, ns, name, status)


def finish_all(cluster, ns: str, selector: str, exit_code: int = 0, limit: int = 1000) -> list[str]:
    done = []
    for p in pods(cluster, ns, selector):
        if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        if len(done) >= limit:
            break
        finish(cluster, ns, p["metadata"]["name"], exit_code)
        done.append(p["metadata"]["name"])
    return done


def force_delete_terminating(cluster, ns: str) -> None:
    """The kubelet's last word on a pod being deleted: remove it for good."""
    for p in pods(cluster, ns, include_terminating=True):
        if p["metadata"].get("deletionTimestamp"):
            cluster.kubectl("delete", "pod", p["metadata"]["name"], "-n", ns, "--grace-period=0", "--force",
                            "--wait=false", check=False)
