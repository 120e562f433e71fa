"""HorizontalPodAutoscaler: given a Deployment and `kubectl autoscale`, when its replica count is outside
[min, max] then the HPA controller rescales it through the scale subresource with upstream's events
and conditions; inside the range it asks for resource metrics, which kubelite does not serve, and
reports that as an upstream cluster without metrics-server does."""

from __future__ import annotations

import json

from test_controllers_support import get_json, wait_until

NO_METRICS = ("failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from "
              "resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)")


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


def test_without_a_metrics_api_the_hpa_reports_failed_metrics(cluster, ns):
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
