"""HorizontalPodAutoscaler: given a Deployment and `kubectl autoscale`, when its replica count is outside
[min, max] then the HPA controller rescales it through the scale subresource with upstream's events
and conditions; inside the range it scales on the pods' resource metrics (metrics.k8s.io): up when
simulated usage is above target, down when it falls (after the stabilization window), and it reports
pods without metrics or without requests as upstream's controller does."""

from __future__ import annotations

import json
import uuid

import pytest
from test_controllers_support import get_json, wait_until

CPU_USAGE = "kubelite.io/simulated-cpu-usage"
NO_METRICS = ("failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from "
              "resource metrics API")


def _conditions(cluster, ns: str, name: str) -> dict:
    status = get_json(cluster, "hpa", name, "-n", ns).get("status") or {}
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status.get("conditions") or []}


def _events(cluster, ns: str, name: str) -> list[tuple[str, str, str]]:
    items = json.loads(cluster.kubectl("get", "events", "-n", ns, "--field-selector",
                                       f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={name}",
                                       "-o", "json").stdout)["items"]
    return [(e["type"], e["reason"], e["message"]) for e in items]


def test_autoscale_raises_replicas_to_the_minimum(cluster, ns):
    cluster.kubectl("create", "deployment", "web", "--image=busybox", "--replicas=1", "-n", ns)
    cluster.kubectl("autoscale", "deployment", "web", "--min=3", "--max=5", "--cpu-percent=50", "-n", ns)
    wait_until(lambda: get_json(cluster, "deploy", "web", "-n", ns)["spec"]["replicas"] == 3, what="rescale to 3")
    wait_until(lambda: ("Normal", "SuccessfulRescale", "New size: 3; reason: Current number of replicas below "
                        "Spec.MinReplicas") in _events(cluster, ns, "web"), what="rescale event")
    cond = wait_until(lambda: (c := _conditions(cluster, ns, "web")).get("AbleToScale", ("",))[1] ==
                      "SucceededRescale" and c)
    assert cond["AbleToScale"] == ("True", "SucceededRescale",
                                   "the HPA controller was able to update the target scale to 3")
    status = get_json(cluster, "hpa", "web", "-n", ns)["status"]
    assert status["desiredReplicas"] == 3 and status["lastScaleTime"]
    out = cluster.kubectl("get", "hpa", "web", "-n", ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert out[1].split()[:6] == ["web", "Deployment/web", "cpu:", "<unknown>/50%", "3", "5"]


def test_replicas_above_the_maximum_are_scaled_down(cluster, ns):
    cluster.kubectl("create", "deployment", "big", "--image=busybox", "--replicas=6", "-n", ns)
    cluster.kubectl("autoscale", "deployment", "big", "--min=1", "--max=2", "-n", ns)
    wait_until(lambda: get_json(cluster, "deploy", "big", "-n", ns)["spec"]["replicas"] == 2, what="rescale to 2")
    wait_until(lambda: ("Normal", "SuccessfulRescale", "New size: 2; reason: Current number of replicas above "
                        "Spec.MaxReplicas") in _events(cluster, ns, "big"), what="rescale event")


def test_pods_without_metrics_are_reported_as_failed_metrics(cluster, ns):
    # the session cluster has no nodes: the pods never run, so the metrics API has nothing for them
    cluster.kubectl("create", "deployment", "mid", "--image=busybox", "--replicas=2", "-n", ns)
    cluster.kubectl("autoscale", "deployment", "mid", "--min=1", "--max=4", "--cpu-percent=80", "-n", ns)
    cond = wait_until(lambda: (c := _conditions(cluster, ns, "mid")).get("ScalingActive") and c)
    assert cond["AbleToScale"] == ("True", "SucceededGetScale",
                                   "the HPA controller was able to get the target's current scale")
    assert cond["ScalingActive"] == ("False", "FailedGetResourceMetric",
                                     f"the HPA was unable to compute the replica count: {NO_METRICS}")
    events = wait_until(lambda: len(e := _events(cluster, ns, "mid")) >= 2 and e)
    assert ("Warning", "FailedGetResourceMetric", NO_METRICS) in events
    assert ("Warning", "FailedComputeMetricsReplicas", "invalid metrics (1 invalid out of 1), first error is: "
            f"failed to get cpu resource metric value: {NO_METRICS}") in events
    assert get_json(cluster, "deploy", "mid", "-n", ns)["spec"]["replicas"] == 2  # left alone
    assert get_json(cluster, "hpa", "mid", "-n", ns)["status"]["currentReplicas"] == 2
    describe = cluster.kubectl("describe", "hpa", "mid", "-n", ns).stdout
    assert "resource cpu on pods  (as a percentage of request):  <unknown> / 80%" in describe


def test_a_missing_target_and_a_target_at_zero(cluster, ns):
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "ghost"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ghost"},
                 "minReplicas": 1, "maxReplicas": 3}}))
    cond = wait_until(lambda: (c := _conditions(cluster, ns, "ghost")).get("AbleToScale") and c)
    assert cond["AbleToScale"][:2] == ("False", "FailedGetScale")
    assert 'deployments.apps "ghost" not found' in cond["AbleToScale"][2]
    cluster.kubectl("create", "deployment", "idle", "--image=busybox", "--replicas=0", "-n", ns)
    cluster.kubectl("autoscale", "deployment", "idle", "--min=1", "--max=3", "-n", ns)
    cond = wait_until(lambda: (c := _conditions(cluster, ns, "idle")).get("ScalingActive") and c)
    assert cond["ScalingActive"] == ("False", "ScalingDisabled",
                                     "scaling is disabled since the replica count of the target is zero")
    assert get_json(cluster, "deploy", "idle", "-n", ns)["spec"]["replicas"] == 0


# --- on resource metrics: simulated nodes report usage (kubelite.runtime.simulated_stats) ---

@pytest.fixture(scope="module")
def metrics_cluster(tmp_path_factory: pytest.TempPathFactory):
    from conftest import _make_cluster

    c = _make_cluster(tmp_path_factory, ["--simulated-nodes", "2", "--metric-resolution", "1s",
                                         "--horizontal-pod-autoscaler-sync-period", "1s"])
    c.start()
    yield c
    c.stop()


def _workload(c, ns: str, name: str, replicas: int, requests: dict | None, annotations: dict | None = None) -> None:
    container: dict = {"name": "app", "image": "nginx"}
    if requests:
        container["resources"] = {"requests": requests}
    template: dict = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}
    if annotations:
        template["metadata"]["annotations"] = annotations
    c.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template}}))


def _replicas(c, ns: str, name: str) -> int:
    return get_json(c, "deploy", name, "-n", ns)["spec"]["replicas"]


def test_cpu_utilization_scales_up_and_back_down(metrics_cluster):
    c, ns = metrics_cluster, "hpa-" + uuid.uuid4().hex[:6]
    c.kubectl("create", "namespace", ns)
    _workload(c, ns, "web", 1, {"cpu": "100m"}, {CPU_USAGE: "200m"})  # 200% of the request
    c.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 5,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": 50}}}],
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": 2}}}}))
    # 200% against 50%: four times the pods, then the maximum
    wait_until(lambda: _replicas(c, ns, "web") == 5, timeout=90, what="scale up to 5")
    events = _events(c, ns, "web")
    assert ("Normal", "SuccessfulRescale", "New size: 4; reason: cpu resource utilization (percentage of request) "
            "above target") in events
    cond = wait_until(lambda: (x := _conditions(c, ns, "web")).get("ScalingLimited", ("",))[0] == "True" and x,
                      timeout=30, what="scaling limited at the maximum")
    assert cond["ScalingActive"] == ("True", "ValidMetricFound", "the HPA was able to successfully calculate a replica "
                                     "count from cpu resource utilization (percentage of request)")
    assert cond["ScalingLimited"] == ("True", "TooManyReplicas",
                                      "the desired replica count is more than the maximum replica count")
    status = wait_until(lambda: (s := get_json(c, "hpa", "web", "-n", ns)["status"]).get("currentReplicas") == 5 and s)
    assert status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": 200, "averageValue": "200m"}}}]
    row = c.kubectl("get", "hpa", "web", "-n", ns).stdout.splitlines()[1].split()
    assert row[:7] == ["web", "Deployment/web", "cpu:", "200%/50%", "1", "5", "5"]
    describe = c.kubectl("describe", "hpa", "web", "-n", ns).stdout
    assert "resource cpu on pods  (as a percentage of request):  200% (200m) / 50%" in describe

    # usage drops to 20%: down to ceil(5 x 0.4) = 2, then ceil(2 x 0.4) = 1, once the 2 s window has passed
    c.kubectl("annotate", "pods", "-n", ns, "-l", "app=web", f"{CPU_USAGE}=20m", "--overwrite")
    wait_until(lambda: _replicas(c, ns, "web") == 1, timeout=90, what="scale down to 1")
    events = _events(c, ns, "web")
    assert ("Normal", "SuccessfulRescale", "New size: 2; reason: All metrics below target") in events
    assert ("Normal", "SuccessfulRescale", "New size: 1; reason: All metrics below target") in events
    # at the minimum, one pod at 20% still proposes one pod: nothing limits it any more
    cond = wait_until(lambda: (x := _conditions(c, ns, "web")).get("ScalingLimited", ("",))[0] == "False" and
                      x["AbleToScale"][1] != "SucceededRescale" and x, timeout=30, what="a sync after the last rescale")
    assert cond["ScalingLimited"] == ("False", "DesiredWithinRange", "the desired count is within the acceptable range")
    assert cond["AbleToScale"] == ("True", "ReadyForNewScale", "recommended size matches current size")


def test_missing_requests_and_average_value_targets(metrics_cluster):
    c, ns = metrics_cluster, "hpa-" + uuid.uuid4().hex[:6]
    c.kubectl("create", "namespace", ns)
    _workload(c, ns, "noreq", 2, None)
    c.kubectl("autoscale", "deployment", "noreq", "--min=1", "--max=4", "--cpu-percent=50", "-n", ns)
    pods = {p["metadata"]["name"] for p in json.loads(c.kubectl("get", "pods", "-n", ns, "-l", "app=noreq",
                                                                "-o", "json").stdout)["items"]}
    cond = wait_until(lambda: (x := _conditions(c, ns, "noreq")).get("ScalingActive", ("",))[1] ==
                      "FailedGetResourceMetric" and "missing request" in x["ScalingActive"][2] and x,
                      timeout=60, what="missing request reported")
    message = cond["ScalingActive"][2]
    prefix = "the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu " \
             "in container app of Pod "
    assert message.startswith(prefix) and message[len(prefix):] in pods
    assert _replicas(c, ns, "noreq") == 2

    # memory: 64Mi per pod (half the request) against an average of 32Mi: double, up to the maximum of 4
    _workload(c, ns, "mem", 2, {"memory": "128Mi"})
    c.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "mem"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "mem"},
                 "minReplicas": 1, "maxReplicas": 4,
                 "metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {
                     "type": "AverageValue", "averageValue": "32Mi"}}}]}}))
    wait_until(lambda: _replicas(c, ns, "mem") == 4, timeout=60, what="scale up to 4 on memory")
    assert ("Normal", "SuccessfulRescale", "New size: 4; reason: memory resource above target") in _events(c, ns, "mem")
    row = wait_until(lambda: (r := c.kubectl("get", "hpa", "mem", "-n", ns).stdout.splitlines()[1].split())[3] != \
                     "<unknown>/32Mi" and r, timeout=30)
    assert row[2:4] == ["memory:", "67108864/32Mi"]
