"""Scenarios for the non-core kinds: what a user sees when kubectl sends these objects.

Each test calls the registry hooks (default, validate, row, convert) the way the API server does,
on manifests like the course's, and checks upstream's defaults, error texts and table cells.
"""

from __future__ import annotations

import copy
import time

import pytest

from kubelite.api.kinds import apps, autoscaling, batch, events, networking, policy, rbac, scheduling, storage
from kubelite.api.registry import Registry

NOW = time.time()
CREATED = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - 3 * 86400))


@pytest.fixture(scope="module")
def reg() -> Registry:
    r = Registry()
    for mod in (apps, batch, networking, events, policy, scheduling, rbac, autoscaling, storage):
        mod.register(r)
    from kubelite.api.kinds import coordination, discovery

    coordination.register(r)
    discovery.register(r)
    return r


def texts(errs) -> list[str]:
    return [str(e) for e in errs]


def deployment(**spec) -> dict:
    obj = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": CREATED},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"restartPolicy": "Always", "containers": [{"name": "nginx", "image": "nginx:1.25"}]}},
        },
    }
    obj["spec"].update(spec)
    return obj


def test_discovery_names_match_upstream(reg):
    expect = {
        ("apps", "deployments"): (("deploy",), ("all",)), ("apps", "replicasets"): (("rs",), ("all",)),
        ("apps", "daemonsets"): (("ds",), ("all",)), ("apps", "statefulsets"): (("sts",), ("all",)),
        ("batch", "jobs"): ((), ("all",)), ("batch", "cronjobs"): (("cj",), ("all",)),
        ("networking.k8s.io", "ingresses"): (("ing",), ()), ("networking.k8s.io", "networkpolicies"): (("netpol",), ()),
        ("policy", "poddisruptionbudgets"): (("pdb",), ()), ("scheduling.k8s.io", "priorityclasses"): (("pc",), ()),
        ("storage.k8s.io", "storageclasses"): (("sc",), ()), ("events.k8s.io", "events"): (("ev",), ()),
    }
    for (group, plural), (short, cats) in expect.items():
        res = next(r for r in reg.all() if r.group == group and r.plural == plural)
        assert (res.short_names, res.categories) == (short, cats), plural
    hpa = reg.get("autoscaling", "v2", "horizontalpodautoscalers")
    assert hpa.short_names == ("hpa",) and hpa.categories == ("all",)
    assert reg.group_versions()["autoscaling"] == ["v2", "v1"]
    assert reg.get("apps", "v1", "daemonsets").subresources == ("status",)
    assert reg.get("apps", "v1", "statefulsets").subresources == ("status", "scale")


def test_deployment_defaults_as_kubectl_create_deployment(reg):
    res = reg.get("apps", "v1", "deployments")
    obj = deployment()
    res.default(obj)
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    assert res.validate(obj) == []
    assert res.tracks_generation and res.scale.selector(obj) == "app=web"


def test_deployment_selector_mismatch_is_upstreams_message(reg):
    res = reg.get("apps", "v1", "deployments")
    obj = deployment(selector={"matchLabels": {"app": "other"}})
    res.default(obj)
    assert texts(res.validate(obj)) == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
        "`selector` does not match template `labels`"
    ]


def test_deployment_required_and_bad_values(reg):
    res = reg.get("apps", "v1", "deployments")
    obj = deployment(replicas=-1, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})
    del obj["spec"]["selector"]
    res.default(obj)
    got = texts(res.validate(obj))
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in got
    assert "spec.selector: Required value" in got
    assert ('spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: '
            "may not be 0 when `maxSurge` is 0") in got
    obj = deployment(strategy={"type": "Blue"})
    res.default(obj)
    assert any(t.startswith('spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"Blue"') and
               t.endswith('supported values: "Recreate", "RollingUpdate"') for t in texts(res.validate(obj)))


def test_deployment_selector_is_immutable(reg):
    res = reg.get("apps", "v1", "deployments")
    old = deployment()
    res.default(old)
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web2"}}
    new["spec"]["template"]["metadata"]["labels"] = {"app": "web2"}
    assert texts(res.validate_update(new, old)) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    ]


def test_deployment_row_and_wide_columns(reg):
    res = reg.get("apps", "v1", "deployments")
    obj = deployment(replicas=3)
    obj["status"] = {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    assert [c.name for c in res.columns] == ["Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]
    assert [c.priority for c in res.columns] == [0, 0, 0, 0, 1, 1, 1]
    assert res.row(obj) == ["2/3", 3, 2, "3d", "nginx", "nginx:1.25", "app=web"]


def test_replicaset_and_daemonset(reg):
    rs = reg.get("apps", "v1", "replicasets")
    obj = deployment()
    obj["kind"] = "ReplicaSet"
    rs.default(obj)
    assert obj["spec"]["replicas"] == 1 and "strategy" not in obj["spec"]
    obj["status"] = {"replicas": 1, "readyReplicas": 1}
    assert rs.row(obj) == [1, 1, 1, "3d", "nginx", "nginx:1.25", "app=web"]

    ds = reg.get("apps", "v1", "daemonsets")
    d = deployment()
    d["kind"] = "DaemonSet"
    ds.default(d)
    assert d["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert d["spec"]["revisionHistoryLimit"] == 10 and "replicas" not in d["spec"]
    ds.prepare_create(d)
    assert d["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    assert ds.validate(d) == []
    d["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": 0}
    assert "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0" in texts(ds.validate(d))
    d["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/os": "linux"}
    d["status"] = {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                   "updatedNumberScheduled": 2, "numberAvailable": 1}
    assert [c.name for c in ds.columns][:7] == ["Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"]
    assert ds.row(d)[:7] == [2, 2, 1, 2, 1, "kubernetes.io/os=linux", "3d"]


def test_statefulset_defaults_and_forbidden_updates(reg):
    res = reg.get("apps", "v1", "statefulsets")
    obj = deployment(serviceName="web", volumeClaimTemplates=[
        {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}])
    obj["kind"] = "StatefulSet"
    res.default(obj)
    spec = obj["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10
    assert spec["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"
    assert spec["volumeClaimTemplates"][0]["status"] == {"phase": "Pending"}
    assert res.validate(obj) == [] and res.name_rule == "label"
    new = copy.deepcopy(obj)
    new["spec"]["serviceName"] = "other"
    assert texts(res.validate_update(new, obj)) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"]
    obj["status"] = {"readyReplicas": 1}
    assert res.row(obj) == ["1/1", "3d", "nginx", "nginx:1.25"]


def test_controllerrevision_row(reg):
    res = reg.get("apps", "v1", "controllerrevisions")
    obj = {"metadata": {"name": "web-5d4f", "creationTimestamp": CREATED, "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u", "controller": True}]},
        "revision": 2, "data": {}}
    assert res.row(obj) == ["statefulset.apps/web", 2, "3d"]
    assert texts(res.validate({"metadata": {"name": "x", "namespace": "d"}, "revision": 1})) == [
        "data: Required value: data is mandatory"]


def job(**spec) -> dict:
    obj = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "pi", "namespace": "default", "uid": "1234", "creationTimestamp": CREATED},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "pi", "image": "perl"}]}}}}
    obj["spec"].update(spec)
    return obj


def test_job_defaults_and_generated_selector(reg):
    res = reg.get("batch", "v1", "jobs")
    obj = job()
    res.default(obj)
    res.prepare_create(obj)
    spec = obj["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed" and spec["manualSelector"] is False
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "1234"}}
    assert spec["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": "1234", "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "1234", "job-name": "pi"}
    assert obj["metadata"]["labels"] == spec["template"]["metadata"]["labels"]
    assert res.validate(obj) == []
    assert res.tracks_generation


def test_job_parallelism_only_leaves_completions_unset(reg):
    res = reg.get("batch", "v1", "jobs")
    obj = job(parallelism=3)
    res.default(obj)
    assert obj["spec"]["parallelism"] == 3 and "completions" not in obj["spec"]
    obj["status"] = {"succeeded": 1}
    assert res.row(obj)[1] == "1/1 of 3"


def test_job_restart_policy_always_is_rejected(reg):
    res = reg.get("batch", "v1", "jobs")
    obj = job()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    res.default(obj)
    res.prepare_create(obj)
    assert texts(res.validate(obj)) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"']


def test_job_template_is_immutable(reg):
    res = reg.get("batch", "v1", "jobs")
    old = job()
    res.default(old)
    res.prepare_create(old)
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:2"
    assert "spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable" in texts(res.validate_update(new, old))


def test_job_row_status_and_duration(reg):
    res = reg.get("batch", "v1", "jobs")
    obj = job()
    res.default(obj)
    res.prepare_create(obj)
    obj["status"] = {"succeeded": 1, "startTime": "2024-01-01T00:00:00Z", "completionTime": "2024-01-01T00:00:07Z",
                     "conditions": [{"type": "Complete", "status": "True"}]}
    row = res.row(obj)
    assert [c.name for c in res.columns][:4] == ["Status", "Completions", "Duration", "Age"]
    assert row[:4] == ["Complete", "1/1", "7s", "3d"]
    assert row[6] == "batch.kubernetes.io/controller-uid=1234"


def cronjob(schedule: str = "*/1 * * * *", **spec) -> dict:
    obj = {"apiVersion": "batch/v1", "kind": "CronJob",
           "metadata": {"name": "hello", "namespace": "default", "creationTimestamp": CREATED},
           "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
               "restartPolicy": "OnFailure", "containers": [{"name": "hello", "image": "busybox"}]}}}}}}
    obj["spec"].update(spec)
    return obj


def test_cronjob_defaults_and_row(reg):
    res = reg.get("batch", "v1", "cronjobs")
    obj = cronjob()
    res.default(obj)
    spec = obj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
            spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]
    assert res.validate(obj) == []
    assert [c.name for c in res.columns][:7] == ["Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age", "Containers"]
    assert res.row(obj)[:6] == ["*/1 * * * *", "<none>", "False", 0, "<none>", "3d"]


@pytest.mark.parametrize("schedule, message", [
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("61 * * * *", "end of range (61) above maximum (59): 61"),
    ("* * * * 7", "end of range (7) above maximum (6): 7"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
])
def test_cronjob_bad_schedule(reg, schedule, message):
    res = reg.get("batch", "v1", "cronjobs")
    obj = cronjob(schedule)
    res.default(obj)
    assert texts(res.validate(obj)) == [f'spec.schedule: Invalid value: "{schedule}": {message}']


def test_cronjob_time_zone_and_tz_in_schedule(reg):
    res = reg.get("batch", "v1", "cronjobs")
    ok = cronjob("0 9 * * mon-fri", timeZone="Europe/Paris")
    res.default(ok)
    assert res.validate(ok) == [] and res.row(ok)[1] == "Europe/Paris"
    bad = cronjob(timeZone="Mars/Olympus")
    res.default(bad)
    assert texts(res.validate(bad)) == ['spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus']
    tz = cronjob("CRON_TZ=UTC 0 * * * *")
    res.default(tz)
    assert texts(res.validate(tz)) == ['spec.schedule: Invalid value: "CRON_TZ=UTC 0 * * * *": cannot use TZ or '
                                       "CRON_TZ in schedule, use timeZone field instead"]


def ingress(**spec) -> dict:
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "web", "namespace": "default", "creationTimestamp": CREATED},
           "spec": {"ingressClassName": "traefik", "rules": [{"host": "web.example.com", "http": {"paths": [
               {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}
    obj["spec"].update(spec)
    return obj


def test_ingress_validation_and_row(reg):
    res = reg.get("networking.k8s.io", "v1", "ingresses")
    obj = ingress()
    assert res.validate(obj) == []
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.5"}]}}
    assert [c.name for c in res.columns] == ["Class", "Hosts", "Address", "Ports", "Age"]
    assert res.row(obj) == ["traefik", "web.example.com", "10.0.0.5", "80", "3d"]
    bad = ingress()
    del bad["spec"]["rules"][0]["http"]["paths"][0]["pathType"]
    assert texts(res.validate(bad)) == ["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"]
    empty = ingress()
    del empty["spec"]["rules"]
    assert texts(res.validate(empty)) == [
        "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"]
    noport = ingress()
    noport["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {}
    assert texts(res.validate(noport)) == [
        "spec.rules[0].http.paths[0].backend: Required value: port name or number is required"]


def test_networkpolicy_policy_types_default(reg):
    res = reg.get("networking.k8s.io", "v1", "networkpolicies")
    obj = {"metadata": {"name": "deny", "namespace": "default", "creationTimestamp": CREATED},
           "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "egress": [{"ports": [{"port": 53}]}]}}
    res.default(obj)
    assert obj["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert obj["spec"]["egress"][0]["ports"][0]["protocol"] == "TCP"
    assert res.validate(obj) == []
    assert res.row(obj) == ["app=db", "3d"]
    assert res.row({"metadata": {}, "spec": {"podSelector": {}}})[0] == "<none>"


def test_pdb(reg):
    res = reg.get("policy", "v1", "poddisruptionbudgets")
    obj = {"metadata": {"name": "web", "namespace": "default", "creationTimestamp": CREATED},
           "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}}
    assert res.validate(obj) == []
    res.prepare_create(obj)
    assert res.row(obj) == ["50%", "N/A", 0, "3d"]
    obj["spec"]["maxUnavailable"] = 1
    assert "minAvailable and maxUnavailable cannot be both set" in texts(res.validate(obj))[0]
    bad = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"maxUnavailable": "150%"}}
    assert texts(res.validate(bad)) == [
        'spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: must not be greater than 100%']


def test_priority_classes(reg):
    res = reg.get("scheduling.k8s.io", "v1", "priorityclasses")
    builtins = scheduling.builtin_priority_classes()
    assert {b["metadata"]["name"]: b["value"] for b in builtins} == {
        "system-cluster-critical": 2000000000, "system-node-critical": 2000001000}
    for b in builtins:
        assert res.validate(b) == []
    obj = {"metadata": {"name": "high", "creationTimestamp": CREATED}, "value": 1000}
    res.default(obj)
    assert obj["preemptionPolicy"] == "PreemptLowerPriority"
    assert res.row(obj) == [1000, False, "3d", "PreemptLowerPriority"]
    assert texts(res.validate({"metadata": {"name": "system-mine"}, "value": 5})) == [
        "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. "
        "error: system-mine is not a known system priority class"]
    changed = dict(obj, value=2000)
    assert texts(res.validate_update(changed, obj)) == ["value: Forbidden: may not be changed in an update."]


def test_rbac(reg):
    role = reg.get("rbac.authorization.k8s.io", "v1", "roles")
    ok = {"metadata": {"name": "pod-reader", "namespace": "default", "creationTimestamp": "2024-05-01T10:00:00Z"},
          "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}
    assert role.validate(ok) == [] and role.name_rule == "path"
    assert [c.name for c in role.columns] == ["Created At"] and role.row(ok) == ["2024-05-01T10:00:00Z"]
    bad = {"metadata": {"name": "r", "namespace": "default"}, "rules": [{"resources": ["pods"]}]}
    assert texts(role.validate(bad)) == [
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[0].apiGroups: Required value: resource rules must supply at least one api group"]

    rb = reg.get("rbac.authorization.k8s.io", "v1", "rolebindings")
    binding = {"metadata": {"name": "read-pods", "namespace": "default", "creationTimestamp": CREATED},
               "roleRef": {"kind": "Role", "name": "pod-reader"},
               "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "default"}]}
    rb.default(binding)
    assert binding["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert binding["subjects"][0]["apiGroup"] == "rbac.authorization.k8s.io" and binding["subjects"][1]["apiGroup"] == ""
    assert rb.validate(binding) == []
    assert rb.row(binding) == ["Role/pod-reader", "3d", "jane", "", "default/sa"]
    changed = copy.deepcopy(binding)
    changed["roleRef"]["name"] = "admin"
    assert texts(rb.validate_update(changed, binding)) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"admin"}: '
        "cannot change roleRef"]
    crb = reg.get("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
    cb = {"metadata": {"name": "x"}, "roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}
    crb.default(cb)
    assert texts(crb.validate(cb)) == ['roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
                                       "subjects[0].namespace: Required value"]


def test_hpa_v1_round_trip_through_v2(reg):
    v1 = reg.get("autoscaling", "v1", "horizontalpodautoscalers")
    v2 = reg.get("autoscaling", "v2", "horizontalpodautoscalers")
    assert v1.storage_version == v2.storage_version == "v2"
    obj = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "web", "namespace": "default", "creationTimestamp": CREATED},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}}
    v1.default(obj)
    assert v1.validate(obj) == []
    stored = v1.convert(obj, "v2")
    assert stored["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
    assert stored["spec"]["minReplicas"] == 1 and "targetCPUUtilizationPercentage" not in stored["spec"]
    stored["status"] = {"currentReplicas": 2, "desiredReplicas": 2, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "6m"}}}]}
    assert v2.row(stored) == ["Deployment/web", "cpu: 12%/50%", "1", 5, 2, "3d"]
    back = v1.convert(stored, "v1")
    assert back["spec"]["targetCPUUtilizationPercentage"] == 50
    assert back["status"]["currentCPUUtilizationPercentage"] == 12
    assert "annotations" not in back["metadata"]


def test_hpa_v2_defaults_and_extra_metrics_survive_v1(reg):
    v2 = reg.get("autoscaling", "v2", "horizontalpodautoscalers")
    obj = {"apiVersion": "autoscaling/v2", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3, "behavior": {}}}
    v2.default(obj)
    assert obj["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80
    assert obj["spec"]["behavior"]["scaleUp"]["policies"][0] == {"type": "Pods", "value": 4, "periodSeconds": 15}
    assert obj["spec"]["behavior"]["scaleDown"]["selectPolicy"] == "Max"
    obj["spec"]["metrics"].append({"type": "Pods", "pods": {"metric": {"name": "rps"},
                                                            "target": {"type": "AverageValue", "averageValue": "10"}}})
    v1 = v2.convert(obj, "autoscaling/v1")
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 80
    assert "autoscaling.alpha.kubernetes.io/metrics" in v1["metadata"]["annotations"]
    again = v2.convert(v1, "v2")
    assert again["spec"]["metrics"] == obj["spec"]["metrics"] and again["spec"]["behavior"] == obj["spec"]["behavior"]
    bad = copy.deepcopy(obj)
    bad["spec"]["minReplicas"], bad["spec"]["maxReplicas"] = 4, 2
    assert "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`" in texts(v2.validate(bad))


def test_storage_class_local_path_default(reg):
    res = reg.get("storage.k8s.io", "v1", "storageclasses")
    sc = storage.builtin_local_path_storage_class()
    sc["metadata"]["creationTimestamp"] = CREATED
    res.default(sc)
    assert res.validate(sc) == []
    assert res.name_cell(sc) == "local-path (default)"
    assert res.row(sc) == ["rancher.io/local-path", "Delete", "WaitForFirstConsumer", False, "3d"]
    changed = dict(sc, provisioner="other.io/x")
    assert texts(res.validate_update(changed, sc)) == ["provisioner: Forbidden: updates to provisioner are forbidden."]
    plain = {"metadata": {"name": "fast"}, "provisioner": "kubernetes.io/no-provisioner"}
    res.default(plain)
    assert (plain["reclaimPolicy"], plain["volumeBindingMode"]) == ("Delete", "Immediate")
    assert res.name_cell(plain) == "fast"


def test_events_share_core_storage_and_convert(reg):
    res = reg.get("events.k8s.io", "v1", "events")
    assert res.storage_prefix() == "/registry/core/events/"
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
          "metadata": {"name": "web.17a", "namespace": "default", "creationTimestamp": CREATED},
          "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "kubelite.io/scheduler",
          "reportingInstance": "node-1", "action": "Binding", "reason": "Scheduled", "type": "Normal",
          "note": "Successfully assigned default/web to node-1",
          "regarding": {"kind": "Pod", "name": "web", "namespace": "default"}}
    assert res.validate(ev) == []
    assert res.storage_version == "core/v1" != res.version
    core = res.convert(ev, res.storage_version)
    assert core["apiVersion"] == "v1" and core["message"] == ev["note"]
    assert core["involvedObject"] == ev["regarding"] and core["reportingComponent"] == "kubelite.io/scheduler"
    assert "note" not in core and "regarding" not in core
    back = res.convert(core, res.version)
    assert back["note"] == ev["note"] and back["regarding"] == ev["regarding"] and "deprecatedCount" not in back
    legacy = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "x", "namespace": "default"},
              "message": "Pulled", "count": 3, "involvedObject": {"kind": "Pod", "name": "web"},
              "source": {"component": "kubelet", "host": "node-1"}}
    assert events.to_events_v1(legacy)["deprecatedCount"] == 3
    row = res.row(ev)
    assert row[1:4] == ["Normal", "Scheduled", "pod/web"] and row[8] == 1
    assert texts(res.validate(dict(ev, type="Bad"))) == ['type: Invalid value: "": has invalid value: Bad']


def test_lease_and_endpointslice(reg):
    lease = reg.get("coordination.k8s.io", "v1", "leases")
    obj = {"metadata": {"name": "node-1", "namespace": "kube-node-lease", "creationTimestamp": CREATED},
           "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}}
    assert lease.validate(obj) == [] and lease.row(obj) == ["node-1", "3d"]
    obj["spec"]["leaseDurationSeconds"] = 0
    assert texts(lease.validate(obj)) == ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]

    eps = reg.get("discovery.k8s.io", "v1", "endpointslices")
    s = {"metadata": {"name": "web-abc", "namespace": "default", "creationTimestamp": CREATED}, "addressType": "IPv4",
         "ports": [{"port": 80}], "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(1, 6)]}
    eps.default(s)
    assert s["ports"][0] == {"port": 80, "name": "", "protocol": "TCP"}
    assert eps.validate(s) == []
    assert eps.row(s) == ["IPv4", "80", "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...", "3d"]
    s["endpoints"][0]["addresses"] = ["not-an-ip"]
    assert texts(eps.validate(s)) == ['endpoints[0].addresses[0]: Invalid value: "not-an-ip": must be a valid IPv4 address']


# ---------------------------------------------------------------------------------------------
# The rest of upstream 1.32's default API surface


@pytest.fixture(scope="module")
def more() -> Registry:
    from kubelite.api.kinds import (
        admissionregistration,
        apiextensions,
        apiregistration,
        certificates,
        core_cluster,
        flowcontrol,
        node_k8s_io,
        storage_csi,
    )

    r = Registry()
    for mod in (admissionregistration, apiextensions, apiregistration, certificates, core_cluster, flowcontrol,
                node_k8s_io, storage_csi):
        mod.register(r)
    return r


def test_webhook_configuration_defaults_and_errors(more):
    res = more.get("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
    obj = {"metadata": {"name": "w", "creationTimestamp": CREATED}, "webhooks": [
        {"name": "check.example.com", "clientConfig": {"service": {"namespace": "d", "name": "s"}},
         "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]}
    res.default(obj)
    w = obj["webhooks"][0]
    assert (w["failurePolicy"], w["matchPolicy"], w["timeoutSeconds"], w["rules"][0]["scope"]) == \
        ("Fail", "Equivalent", 10, "*")
    assert w["clientConfig"]["service"]["port"] == 443 and w["namespaceSelector"] == {}
    assert texts(res.validate(obj)) == [
        "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
        "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun"]
    assert res.row(obj)[:1] == [1]
    mutating = more.get("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations")
    m = copy.deepcopy(obj)
    mutating.default(m)
    assert m["webhooks"][0]["reinvocationPolicy"] == "Never"


def test_apiservice_local_is_available(more):
    res = more.get("apiregistration.k8s.io", "v1", "apiservices")
    obj = {"metadata": {"name": "v1.apps", "creationTimestamp": CREATED},
           "spec": {"group": "apps", "version": "v1", "groupPriorityMinimum": 17800, "versionPriority": 15}}
    res.prepare_create(obj)
    assert res.validate(obj) == []
    assert res.row(obj)[:2] == ["Local", "True"]
    assert [c.name for c in res.columns] == ["Service", "Available", "Age"]


def test_csr_condition_column(more):
    res = more.get("certificates.k8s.io", "v1", "certificatesigningrequests")
    obj = {"metadata": {"name": "c", "creationTimestamp": CREATED},
           "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "alice",
                    "request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K", "expirationSeconds": 86400}}
    res.default(obj)
    assert obj["spec"]["usages"] == ["digital signature", "key encipherment"] and res.validate(obj) == []
    assert res.row(obj)[1:] == ["kubernetes.io/kube-apiserver-client", "alice", "24h", "Pending"]
    obj["status"] = {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "x"}
    assert res.row(obj)[-1] == "Approved,Issued"
    assert res.short_names == ("csr",)


def test_flowcontrol_defaults_and_rows(more):
    pl = more.get("flowcontrol.apiserver.k8s.io", "v1", "prioritylevelconfigurations")
    obj = {"metadata": {"name": "x", "creationTimestamp": CREATED},
           "spec": {"type": "Limited", "limited": {"limitResponse": {"type": "Queue"}}}}
    pl.default(obj)
    assert pl.validate(obj) == []
    assert pl.row(obj)[:5] == ["Limited", 30, 64, 8, 50]
    fs = more.get("flowcontrol.apiserver.k8s.io", "v1", "flowschemas")
    f = {"metadata": {"name": "f", "creationTimestamp": CREATED}, "spec": {"priorityLevelConfiguration": {"name": "x"}}}
    fs.default(f)
    assert fs.row(f)[:3] == ["x", 1000, "<none>"] and fs.row(f)[-1] == "?"


def test_runtimeclass_and_csi_kinds(more):
    rc = more.get("node.k8s.io", "v1", "runtimeclasses")
    assert texts(rc.validate({"metadata": {"name": "r"}, "handler": "Run C"}))[0].startswith(
        'handler: Invalid value: "Run C": a lowercase RFC 1123 label must consist of')
    drv = more.get("storage.k8s.io", "v1", "csidrivers")
    d = {"metadata": {"name": "csi.example.com", "creationTimestamp": CREATED}}
    drv.default(d)
    assert d["spec"] == {"attachRequired": True, "podInfoOnMount": False, "storageCapacity": False,
                         "fsGroupPolicy": "ReadWriteOnceWithFSType", "requiresRepublish": False,
                         "seLinuxMount": False, "volumeLifecycleModes": ["Persistent"]}
    assert drv.row(d)[:6] == [True, False, False, "<unset>", False, "Persistent"]
    va = more.get("storage.k8s.io", "v1", "volumeattachments")
    assert texts(va.validate({"metadata": {"name": "v"}, "spec": {}})) == [
        "spec.attacher: Required value", "spec.nodeName: Required value",
        "spec.source: Required value: must specify exactly one of inlineVolumeSpec and persistentVolumeName"]
    cap = more.get("storage.k8s.io", "v1", "csistoragecapacities")
    assert cap.namespaced and cap.row({"storageClassName": "fast", "capacity": "1Gi",
                                       "metadata": {"creationTimestamp": CREATED}})[:2] == ["fast", "1Gi"]


def test_core_podtemplate_componentstatus_binding(more):
    pt = more.get("", "v1", "podtemplates")
    obj = {"metadata": {"name": "t", "namespace": "d"}, "template": {
        "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}}
    pt.default(obj)
    assert obj["template"]["spec"]["restartPolicy"] == "Always" and pt.validate(obj) == []
    assert pt.row(obj) == ["nginx", "nginx:1.25", "app=web"]
    cs = more.get("", "v1", "componentstatuses")
    assert cs.verbs == ("get", "list") and cs.short_names == ("cs",)
    from kubelite.api.kinds.core_cluster import builtin_component_statuses

    assert [cs.row(o) for o in builtin_component_statuses()] == [["Healthy", "ok", ""]] * 3
    assert more.get("", "v1", "bindings").verbs == ("create",)


def test_crd_defaults_and_validation(more):
    res = more.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    crd = {"metadata": {"name": "widgets.example.com"}, "spec": {
        "group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {}}}}}]}}
    res.default(crd)
    assert crd["spec"]["names"]["singular"] == "widget" and crd["spec"]["names"]["listKind"] == "WidgetList"
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    assert texts(res.validate(crd)) == ["spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required "
                                        "value: must not be empty for specified object fields"]
    assert res.short_names == ("crd", "crds")
