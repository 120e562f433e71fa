"""Resource metrics on a real node: given a kubelite with `--kubelet` and a 1 s metric resolution, when a
busybox container spins on a CPU, then the kubelet's /metrics/resource reports its cgroup's usage and
`kubectl top pod` shows it busy, while an idle container next to it stays near zero."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from kubelite.api.kinds.common import parse_quantity
from tests.images import BUSYBOX, node_namespace, real_node

pytestmark = [pytest.mark.root, pytest.mark.containerd]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    with real_node(tmp_path_factory, extra_args=["--metric-resolution", "1s"]) as c:
        yield c


def _top_pods(node, ns: str) -> dict[str, tuple[int, int]]:
    """NAME -> (millicores, MiB) from `kubectl top pod`; {} until metrics are there."""
    r = node.kubectl("top", "pod", "-n", ns, "--containers", check=False)
    if r.returncode != 0:
        return {}
    out = {}
    for line in r.stdout.splitlines()[1:]:
        pod, container, cpu, mem = line.split()
        out[f"{pod}/{container}"] = (int(cpu.rstrip("m")), int(mem.rstrip("Mi")))
    return out


def test_a_cpu_burner_shows_in_kubectl_top(node):
    with node_namespace(node, "m-") as ns:
        spec = {"terminationGracePeriodSeconds": 0, "containers": [
            {"name": "burn", "image": BUSYBOX, "command": ["sh", "-c", "while :; do :; done"]},
            {"name": "idle", "image": BUSYBOX, "command": ["sleep", "3600"]}]}
        node.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "burner"}, "spec": spec}))
        deadline = time.time() + 120
        top: dict[str, tuple[int, int]] = {}
        while time.time() < deadline:
            top = _top_pods(node, ns)
            if top.get("burner/burn", (0, 0))[0] >= 50:
                break
            time.sleep(1)
        # a spinning shell takes what a busy 2-core machine gives it: far more than the sleeping one
        assert top.get("burner/burn", (0, 0))[0] >= 50, (top, node.log_tail(20))
        assert top["burner/idle"][0] < 20 and top["burner/burn"][0] > 5 * top["burner/idle"][0]
        assert top["burner/burn"][1] >= 0 and top["burner/idle"][1] >= 0

        raw = json.loads(node.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/burner").stdout)
        assert raw["kind"] == "PodMetrics" and {c["name"] for c in raw["containers"]} == {"burn", "idle"}
        burn = next(c for c in raw["containers"] if c["name"] == "burn")
        assert parse_quantity(burn["usage"]["cpu"]) > Decimal("0.02")  # cores, in nanocores as metrics-server

        # the kubelet's own endpoint, through the API server's node proxy, in upstream's format
        text = node.kubectl("get", "--raw", f"/api/v1/nodes/{node.node_name}/proxy/metrics/resource").stdout
        assert "# TYPE container_cpu_usage_seconds_total counter" in text
        assert f'container_cpu_usage_seconds_total{{container="burn",namespace="{ns}",pod="burner"}} ' in text
        assert f'pod_memory_working_set_bytes{{namespace="{ns}",pod="burner"}} ' in text
        assert "\nnode_cpu_usage_seconds_total " in text and "\nresource_scrape_error 0\n" in text
        nodes = node.kubectl("top", "node").stdout.splitlines()
        assert nodes[0].split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
        assert nodes[1].split()[0] == node.node_name and nodes[1].split()[1].endswith("m")
