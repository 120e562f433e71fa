"""PersistentVolumeClaims on a real node: given a kubelite with `--kubelet`, when a pod writes a file
to a claim of the default `local-path` class, is deleted, and a new pod mounts the same claim, then
the new pod reads the file back from the node's directory `<data-dir>/storage/pvc-<uid>_<ns>_<name>`;
deleting the claim (reclaimPolicy Delete) removes the volume and its directory."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import Cluster
from tests.images import BUSYBOX, node_namespace, real_node
from tests.test_workloads_support import wait_until

pytestmark = [pytest.mark.root, pytest.mark.containerd]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    with real_node(tmp_path_factory) as c:
        yield c


def pod(name: str, script: str) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 1, "restartPolicy": "Never",
                 "containers": [{"name": "main", "image": BUSYBOX, "command": ["sh", "-c", script],
                                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "notes"}}]}})


def phase(c: Cluster, *args: str) -> str:
    r = c.kubectl("get", *args, "-o", "jsonpath={.status.phase}", check=False)
    return r.stdout if r.returncode == 0 else "<gone>"


def test_pod_data_survives_on_its_claim(node: Cluster) -> None:
    with node_namespace(node, "v-") as ns:
        node.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "notes"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}}))
        node.kubectl("apply", "-n", ns, "-f", "-", input=pod("writer", "echo kept-$HOSTNAME > /data/note && cat /data/note"))
        wait_until(lambda: phase(node, "pod", "writer", "-n", ns) == "Succeeded", timeout=90, what="writer done")
        assert node.kubectl("logs", "writer", "-n", ns).stdout.strip() == "kept-writer"
        pvc = json.loads(node.kubectl("get", "pvc", "notes", "-n", ns, "-o", "json").stdout)
        assert pvc["status"]["phase"] == "Bound"
        assert pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node.node_name  # type: ignore[attr-defined]
        path = os.path.join(node.data_dir, "storage", f"pvc-{pvc['metadata']['uid']}_{ns}_notes")
        with open(os.path.join(path, "note")) as f:
            assert f.read().strip() == "kept-writer"

        node.kubectl("delete", "pod", "writer", "-n", ns)
        node.kubectl("apply", "-n", ns, "-f", "-", input=pod("reader", "cat /data/note"))
        wait_until(lambda: phase(node, "pod", "reader", "-n", ns) == "Succeeded", timeout=90, what="reader done")
        assert node.kubectl("logs", "reader", "-n", ns).stdout.strip() == "kept-writer"

        node.kubectl("delete", "pod", "reader", "-n", ns)
        node.kubectl("delete", "pvc", "notes", "-n", ns, "--timeout=60s")
        pv_name = f"pvc-{pvc['metadata']['uid']}"
        wait_until(lambda: node.kubectl("get", "pv", pv_name, check=False).returncode != 0, what="volume deleted")
        assert not os.path.exists(path)
