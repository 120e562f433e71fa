"""Helpers for the course scenario tests (tests/test_course_*.py).

The course (../shared/seed/kubernetes-course.txt) is a list of shell commands typed at a terminal.
`Shell` runs them as written, through bash, with the real kubectl pointed at a kubelite whose
current context is a namespace of the test's own, so the exercises stay unmodified (`kubectl get
pods`, not `kubectl -n X get pods`) and tests sharing one cluster do not see each other's objects.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.conftest import KUBECTL, Cluster

# A non-interactive $KUBE_EDITOR: replace COURSE_EDIT_OLD by COURSE_EDIT_NEW once. kubectl re-opens the
# editor when the server rejects an edit; that file starts with kubectl's error header and is left
# alone, so kubectl gives up as it does for a person who quits without changing anything.
EDITOR_SCRIPT = """
import os, sys
path = sys.argv[-1]
text = open(path).read()
old, new = os.environ["COURSE_EDIT_OLD"], os.environ["COURSE_EDIT_NEW"]
if "was not valid" not in text and "had a syntax error" not in text and old in text:
    text = text.replace(old, new, 1)
open(path, "w").write(text)
"""


def wait_for(pred: Callable[[], Any], timeout: float = 30, what: str = "", interval: float = 0.2) -> Any:
    """Poll `pred` until it returns something truthy; fail with `what` and the last value."""
    deadline = time.time() + timeout
    last: Any = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or pred}; last: {last!r}")


class Shell:
    """A terminal of the course: bash, kubectl on PATH, KUBECONFIG whose context is `namespace`."""

    def __init__(self, cluster: Cluster, workdir: str, namespace: str = "default"):
        self.cluster = cluster
        self.workdir = workdir
        self.namespace = namespace
        os.makedirs(workdir, exist_ok=True)
        self.kubeconfig = os.path.join(workdir, "kubeconfig")
        with open(cluster.kubeconfig) as f:
            text = f.read()
        with open(self.kubeconfig, "w") as f:
            f.write(text)
        if namespace != "default":
            subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, "config", "set-context", "--current",
                            f"--namespace={namespace}"], check=True, capture_output=True)
        self.env = dict(os.environ, KUBECONFIG=self.kubeconfig, PATH=os.path.dirname(KUBECTL) + ":" +
                        os.environ.get("PATH", ""))

    def run(self, cmd: str, check: bool = True, timeout: float = 60, input: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        r = subprocess.run(["bash", "-c", cmd], cwd=self.workdir, env=dict(self.env, **(env or {})),
                           capture_output=True, text=True, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError(f"$ {cmd}\nexit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def out(self, cmd: str, **kw: Any) -> str:
        return self.run(cmd, **kw).stdout

    def fails(self, cmd: str, timeout: float = 60) -> str:
        """Run a command that must fail; its stderr (and stdout) for the assertions."""
        r = self.run(cmd, check=False, timeout=timeout)
        assert r.returncode != 0, f"$ {cmd}\nsucceeded, but upstream fails here:\n{r.stdout}\n{r.stderr}"
        return r.stderr + r.stdout

    def json(self, cmd: str) -> Any:
        return json.loads(self.out(cmd))

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def read(self, name: str) -> str:
        with open(os.path.join(self.workdir, name)) as f:
            return f.read()

    def edit(self, cmd: str, old: str, new: str, check: bool = True) -> subprocess.CompletedProcess:
        """`kubectl edit ...` with an editor that replaces `old` by `new` once (as a person would)."""
        editor = self.write("course-editor.py", EDITOR_SCRIPT)
        return self.run(cmd, check=check, env={"KUBE_EDITOR": f"{sys.executable} {editor}",
                                               "COURSE_EDIT_OLD": old, "COURSE_EDIT_NEW": new})

    # -- observations -------------------------------------------------------------------------------

    def pods(self, selector: str = "") -> list[dict]:
        sel = f" -l '{selector}'" if selector else ""
        return self.json(f"kubectl get pods{sel} -o json")["items"]

    def wait_pods(self, selector: str, n: int, phase: str = "Running", ready: bool = True,
                  timeout: float = 30) -> list[dict]:
        def ok() -> list[dict] | None:
            pods = [p for p in self.pods(selector) if not p["metadata"].get("deletionTimestamp")]
            good = [p for p in pods if p.get("status", {}).get("phase") == phase and (not ready or is_ready(p))]
            return pods if len(pods) == n and len(good) == n else None
        return wait_for(ok, timeout, f"{n} {phase} pods with {selector!r} in {self.namespace}")

    def wait_deploy(self, name: str, timeout: float = 60) -> str:
        return self.out(f"kubectl rollout status deployment {name} --timeout={int(timeout)}s", timeout=timeout + 10)


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def new_shell(cluster: Cluster, tmp_path: Any, prefix: str = "c") -> Shell:
    """A Shell in a fresh namespace of its own."""
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    return Shell(cluster, str(tmp_path / ns), ns)


def table(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """Parse kubectl's column output: (header names, rows as {column: cell}) using header offsets."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return [], []
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
    names = [header[s:e].strip() for s, e in zip(starts, starts[1:] + [len(header) + 1000], strict=True)]
    rows = []
    for ln in lines[1:]:
        if ln == header:
            continue
        cells = [ln[s:e].strip() for s, e in zip(starts, starts[1:] + [len(ln) + 1000], strict=True)]
        rows.append(dict(zip(names, cells, strict=True)))
    return names, rows


def sections(text: str) -> list[str]:
    """`kubectl get all` prints one table per kind separated by blank lines."""
    return [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]


UPSTREAM_API_RESOURCES = {
    # kubectl api-resources on a kubeadm/kind cluster of 1.32: (name, shortnames, apiVersion, namespaced, kind)
    ("bindings", "", "v1", "true", "Binding"),
    ("componentstatuses", "cs", "v1", "false", "ComponentStatus"),
    ("configmaps", "cm", "v1", "true", "ConfigMap"),
    ("endpoints", "ep", "v1", "true", "Endpoints"),
    ("events", "ev", "v1", "true", "Event"),
    ("limitranges", "limits", "v1", "true", "LimitRange"),
    ("namespaces", "ns", "v1", "false", "Namespace"),
    ("nodes", "no", "v1", "false", "Node"),
    ("persistentvolumeclaims", "pvc", "v1", "true", "PersistentVolumeClaim"),
    ("persistentvolumes", "pv", "v1", "false", "PersistentVolume"),
    ("pods", "po", "v1", "true", "Pod"),
    ("podtemplates", "", "v1", "true", "PodTemplate"),
    ("replicationcontrollers", "rc", "v1", "true", "ReplicationController"),
    ("resourcequotas", "quota", "v1", "true", "ResourceQuota"),
    ("secrets", "", "v1", "true", "Secret"),
    ("serviceaccounts", "sa", "v1", "true", "ServiceAccount"),
    ("services", "svc", "v1", "true", "Service"),
    ("mutatingwebhookconfigurations", "", "admissionregistration.k8s.io/v1", "false", "MutatingWebhookConfiguration"),
    ("validatingadmissionpolicies", "", "admissionregistration.k8s.io/v1", "false", "ValidatingAdmissionPolicy"),
    ("validatingadmissionpolicybindings", "", "admissionregistration.k8s.io/v1", "false",
     "ValidatingAdmissionPolicyBinding"),
    ("validatingwebhookconfigurations", "", "admissionregistration.k8s.io/v1", "false",
     "ValidatingWebhookConfiguration"),
    ("customresourcedefinitions", "crd,crds", "apiextensions.k8s.io/v1", "false", "CustomResourceDefinition"),
    ("apiservices", "", "apiregistration.k8s.io/v1", "false", "APIService"),
    ("controllerrevisions", "", "apps/v1", "true", "ControllerRevision"),
    ("daemonsets", "ds", "apps/v1", "true", "DaemonSet"),
    ("deployments", "deploy", "apps/v1", "true", "Deployment"),
    ("replicasets", "rs", "apps/v1", "true", "ReplicaSet"),
    ("statefulsets", "sts", "apps/v1", "true", "StatefulSet"),
    ("selfsubjectreviews", "", "authentication.k8s.io/v1", "false", "SelfSubjectReview"),
    ("tokenreviews", "", "authentication.k8s.io/v1", "false", "TokenReview"),
    ("localsubjectaccessreviews", "", "authorization.k8s.io/v1", "true", "LocalSubjectAccessReview"),
    ("selfsubjectaccessreviews", "", "authorization.k8s.io/v1", "false", "SelfSubjectAccessReview"),
    ("selfsubjectrulesreviews", "", "authorization.k8s.io/v1", "false", "SelfSubjectRulesReview"),
    ("subjectaccessreviews", "", "authorization.k8s.io/v1", "false", "SubjectAccessReview"),
    ("horizontalpodautoscalers", "hpa", "autoscaling/v2", "true", "HorizontalPodAutoscaler"),
    ("cronjobs", "cj", "batch/v1", "true", "CronJob"),
    ("jobs", "", "batch/v1", "true", "Job"),
    ("certificatesigningrequests", "csr", "certificates.k8s.io/v1", "false", "CertificateSigningRequest"),
    ("leases", "", "coordination.k8s.io/v1", "true", "Lease"),
    ("endpointslices", "", "discovery.k8s.io/v1", "true", "EndpointSlice"),
    ("events", "ev", "events.k8s.io/v1", "true", "Event"),
    ("flowschemas", "", "flowcontrol.apiserver.k8s.io/v1", "false", "FlowSchema"),
    ("prioritylevelconfigurations", "", "flowcontrol.apiserver.k8s.io/v1", "false", "PriorityLevelConfiguration"),
    ("ingressclasses", "", "networking.k8s.io/v1", "false", "IngressClass"),
    ("ingresses", "ing", "networking.k8s.io/v1", "true", "Ingress"),
    ("networkpolicies", "netpol", "networking.k8s.io/v1", "true", "NetworkPolicy"),
    ("runtimeclasses", "", "node.k8s.io/v1", "false", "RuntimeClass"),
    ("poddisruptionbudgets", "pdb", "policy/v1", "true", "PodDisruptionBudget"),
    ("clusterrolebindings", "", "rbac.authorization.k8s.io/v1", "false", "ClusterRoleBinding"),
    ("clusterroles", "", "rbac.authorization.k8s.io/v1", "false", "ClusterRole"),
    ("rolebindings", "", "rbac.authorization.k8s.io/v1", "true", "RoleBinding"),
    ("roles", "", "rbac.authorization.k8s.io/v1", "true", "Role"),
    ("priorityclasses", "pc", "scheduling.k8s.io/v1", "false", "PriorityClass"),
    ("csidrivers", "", "storage.k8s.io/v1", "false", "CSIDriver"),
    ("csinodes", "", "storage.k8s.io/v1", "false", "CSINode"),
    ("csistoragecapacities", "", "storage.k8s.io/v1", "true", "CSIStorageCapacity"),
    ("storageclasses", "sc", "storage.k8s.io/v1", "false", "StorageClass"),
    ("volumeattachments", "", "storage.k8s.io/v1", "false", "VolumeAttachment"),
}

UPSTREAM_API_VERSIONS = [
    "admissionregistration.k8s.io/v1", "apiextensions.k8s.io/v1", "apiregistration.k8s.io/v1", "apps/v1",
    "authentication.k8s.io/v1", "authorization.k8s.io/v1", "autoscaling/v1", "autoscaling/v2", "batch/v1",
    "certificates.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1", "events.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1", "metrics.k8s.io/v1beta1",  # metrics-server's, as k3s ships it
    "networking.k8s.io/v1", "node.k8s.io/v1", "policy/v1",
    "rbac.authorization.k8s.io/v1", "scheduling.k8s.io/v1", "storage.k8s.io/v1", "v1",
]


def start_simulated(tmp_path_factory: Any, nodes: int = 3) -> Cluster:
    """A kubelite with `nodes` simulated nodes, all Ready, `sleep N` scaled down tenfold so the
    course's `sleep 10` jobs finish in a second."""
    from tests.conftest import _make_cluster

    c = _make_cluster(tmp_path_factory, ["--simulated-nodes", str(nodes)])
    c.start()
    try:
        def ready() -> bool:
            r = c.kubectl("get", "nodes", "-o", "json", check=False)
            if r.returncode:
                return False
            items = json.loads(r.stdout)["items"]
            return sum(1 for n in items for cond in n["status"].get("conditions") or []
                       if cond["type"] == "Ready" and cond["status"] == "True") >= nodes
        wait_for(ready, 30, f"{nodes} simulated nodes Ready")
        c.kubectl("-n", "kube-system", "patch", "configmap", "kubelite-simulated-nodes", "--type", "merge", "-p",
                  json.dumps({"data": {"_settings": json.dumps({"sleepScale": 0.1})}}))
    except BaseException:
        c.stop()
        raise
    return c
