"""Scenarios for the core/v1 kinds: what a user sees when kubectl sends these objects.

Each test calls the registry hooks the way the API server does (default, prepare_create, validate,
validate_update, row) on manifests like the course's, and checks upstream's defaults, error texts
and table cells. The integrated server is tested end to end with kubectl elsewhere.
"""

from __future__ import annotations

import copy
import time

import pytest

from kubelite.api import errors
from kubelite.api.kinds import common, core, pod
from kubelite.api.registry import Registry


def ago(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))


# three days: HumanDuration prints "3d" for a whole hour, so slow test runs do not change the AGE cells
CREATED = ago(3 * 86400)


@pytest.fixture(scope="module")
def reg() -> Registry:
    r = Registry()
    core.register(r)
    return r


def res(reg: Registry, plural: str):
    r = reg.get("", "v1", plural)
    assert r is not None, plural
    return r


def create(reg: Registry, plural: str, obj: dict) -> tuple[dict, list[str]]:
    """default -> prepare_create -> validate, as the API server runs a create."""
    r = res(reg, plural)
    obj = copy.deepcopy(obj)
    meta = obj.setdefault("metadata", {})
    if r.namespaced:
        meta.setdefault("namespace", "default")
    meta.setdefault("creationTimestamp", CREATED)
    r.default(obj)
    r.prepare_create(obj)
    errs = common.validate_object_meta(obj, r.namespaced, r.name_rule) + r.validate(obj)
    return obj, [str(e) for e in errs]


def update(reg: Registry, plural: str, old: dict, new: dict) -> tuple[dict, list[str]]:
    r = res(reg, plural)
    new = copy.deepcopy(new)
    meta = new.setdefault("metadata", {})
    for key in ("name", "namespace", "uid", "creationTimestamp"):  # the server keeps these from the old object
        if key in old["metadata"]:
            meta[key] = old["metadata"][key]
    r.default(new)
    r.prepare_update(new, old)
    return new, [str(e) for e in r.validate_update(new, old)]


def nginx_pod(name: str = "web", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}], **spec}}


# ---------------------------------------------------------------------------------------------
# common helpers


@pytest.mark.parametrize("seconds,text", [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (45, "45s"), (119, "119s"), (120, "2m"), (310, "5m10s"),
    (600, "10m"), (12 * 60 + 30, "12m"), (179 * 60, "179m"), (3 * 3600 + 5 * 60, "3h5m"), (5 * 3600, "5h"),
    (8 * 3600 + 59, "8h"), (47 * 3600, "47h"), (2 * 86400 + 3 * 3600, "2d3h"), (3 * 86400, "3d"),
    (45 * 86400, "45d"), (2 * 365 * 86400 + 10 * 86400, "2y10d"), (3 * 365 * 86400, "3y"), (9 * 365 * 86400, "9y"),
])
def test_age_is_go_human_duration(seconds, text):
    assert common.human_duration(seconds) == text


def test_age_of_missing_timestamp_is_unknown():
    assert common.age(None) == "<unknown>"
    assert common.age("2024-01-01T00:00:00Z", common.parse_time("2024-01-01T00:05:10Z")) == "5m10s"


def test_label_selector_formats_as_kubectl_shows():
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["b", "a"]},
        {"key": "env", "operator": "NotIn", "values": ["prod"]},
        {"key": "canary", "operator": "DoesNotExist"}, {"key": "zone", "operator": "Exists"}]}
    assert common.format_label_selector(sel) == "app=web,!canary,env notin (prod),tier in (a,b),zone"
    assert common.format_label_selector(None) == "<none>"
    assert common.format_label_selector({}) == "<none>"


def test_label_selector_validation_messages():
    errs = [str(e) for e in common.validate_label_selector(
        {"matchExpressions": [{"key": "a", "operator": "In"}, {"key": "b", "operator": "Exists", "values": ["x"]},
                              {"key": "c", "operator": "Like"}]}, "spec.selector")]
    assert errs == [
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        'spec.selector.matchExpressions[2].operator: Invalid value: "Like": not a valid selector operator',
    ]


@pytest.mark.parametrize("text,value,canonical", [
    ("100m", "0.1", "100m"), ("0.5", "0.5", "500m"), ("1", "1", "1"), ("1000m", "1", "1"), ("1.5", "1.5", "1500m"),
    ("128Mi", "134217728", "128Mi"), ("1Gi", "1073741824", "1Gi"), ("0.5Gi", "536870912", "512Mi"),
    ("1k", "1000", "1k"), ("2M", "2000000", "2M"), ("1e3", "1000", "1e3"), ("1500", "1500", "1500"),
    ("1024", "1024", "1024"), ("1n", "0.000000001", "1n"),
])
def test_quantities_parse_and_print_canonically(text, value, canonical):
    from decimal import Decimal

    assert common.parse_quantity(text) == Decimal(value)
    assert common.canonical_quantity(text) == canonical


def test_bad_quantity_names_upstreams_regex():
    with pytest.raises(ValueError, match=r"quantities must match the regular expression"):
        common.parse_quantity("ten")


@pytest.mark.parametrize("value,total,up,expected", [
    (3, 10, True, 3), ("25%", 10, True, 3), ("25%", 10, False, 2), ("100%", 7, False, 7), ("0%", 5, True, 0),
])
def test_int_or_percent_scaling(value, total, up, expected):
    assert common.int_or_percent(value, total, up) == expected


def test_int_or_percent_rejects_plain_strings():
    with pytest.raises(ValueError, match="invalid value for IntOrString: invalid type: string is not a percentage"):
        common.int_or_percent("5", 10, True)


def test_object_name_messages_are_upstreams():
    errs = [str(e) for e in common.validate_object_meta({"metadata": {"name": "Foo", "namespace": "default"}}, True, "subdomain")]
    assert errs == [
        'metadata.name: Invalid value: "Foo": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
        "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
        "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
    errs = [str(e) for e in common.validate_object_meta({"metadata": {"name": "a.b"}}, False, "label")]
    assert errs == ['metadata.name: Invalid value: "a.b": must not contain dots']
    errs = [str(e) for e in common.validate_object_meta({"metadata": {}}, True, "subdomain")]
    assert errs == ["metadata.name: Required value: name or generateName is required", "metadata.namespace: Required value"]
    assert common.validate_object_meta({"metadata": {"generateName": "web-", "namespace": "x"}}, True, "subdomain") == []


def test_label_and_annotation_messages():
    obj = {"metadata": {"name": "x", "labels": {"app": "bad value!", "-k": "v"},
                        "annotations": {"big": "x" * (256 * 1024)}}}
    errs = [str(e) for e in common.validate_object_meta(obj, False, "subdomain")]
    assert errs[0].startswith('metadata.labels: Invalid value: "-k": name part must consist of alphanumeric characters')
    assert errs[1] == (
        'metadata.labels: Invalid value: "bad value!": a valid label must be an empty string or consist of alphanumeric '
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
        "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
    assert errs[-1] == "metadata.annotations: Too long: may not be more than 262144 bytes"


def test_unknown_finalizer_must_be_qualified():
    errs = [str(e) for e in common.validate_object_meta({"metadata": {"name": "x", "finalizers": ["cleanup"]}}, False, "subdomain")]
    assert errs == ['metadata.finalizers[0]: Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified']


# ---------------------------------------------------------------------------------------------
# Pod


def test_pod_defaults_as_the_apiserver_returns_them(reg):
    p, errs = create(reg, "pods", nginx_pod())
    assert errs == []
    spec, c = p["spec"], p["spec"]["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["terminationMessagePath"] == "/dev/termination-log" and c["terminationMessagePolicy"] == "File"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler" and spec["terminationGracePeriodSeconds"] == 30
    assert spec["securityContext"] == {} and spec["enableServiceLinks"] is True
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    assert spec["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
    assert p["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


@pytest.mark.parametrize("image,policy", [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("localhost:5000/app", "Always"), ("localhost:5000/app:v1", "IfNotPresent"),
    ("busybox@sha256:" + "a" * 64, "IfNotPresent"),
])
def test_image_pull_policy_follows_the_tag(image, policy):
    c = {"name": "c", "image": image}
    pod.default_container(c)
    assert c["imagePullPolicy"] == policy


def test_probe_and_volume_defaults():
    spec = {"containers": [{"name": "c", "image": "x", "readinessProbe": {"httpGet": {"port": 8080}},
                            "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 5}}],
            "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "scratch"},
                        {"name": "h", "hostPath": {"path": "/tmp"}}]}
    pod.default_pod_spec(spec)
    c = spec["containers"][0]
    assert c["readinessProbe"] == {"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["livenessProbe"]["periodSeconds"] == 5
    assert spec["volumes"][0]["configMap"]["defaultMode"] == 420
    assert spec["volumes"][1] == {"name": "scratch", "emptyDir": {}}
    assert spec["volumes"][2]["hostPath"]["type"] == ""


def test_pod_templates_do_not_get_pod_only_defaults():
    tmpl = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    pod.default_pod_template(tmpl)
    assert "serviceAccountName" not in tmpl["spec"] and "tolerations" not in tmpl["spec"]
    assert "enableServiceLinks" not in tmpl["spec"]
    assert tmpl["spec"]["restartPolicy"] == "Always"


def test_resources_are_canonical_and_requests_follow_limits(reg):
    p, errs = create(reg, "pods", nginx_pod(containers=[
        {"name": "c", "image": "nginx", "resources": {"limits": {"cpu": "0.5", "memory": "128Mi"}}}]))
    assert errs == []
    res_ = p["spec"]["containers"][0]["resources"]
    assert res_ == {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "500m", "memory": "128Mi"}}
    assert p["status"]["qosClass"] == "Guaranteed"


@pytest.mark.parametrize("resources,qos", [
    ({}, "BestEffort"),
    ({"requests": {"cpu": "100m"}}, "Burstable"),
    ({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}, "Burstable"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
])
def test_qos_class(reg, resources, qos):
    p, _ = create(reg, "pods", nginx_pod(containers=[{"name": "c", "image": "nginx", "resources": resources}]))
    assert p["status"]["qosClass"] == qos


def test_invalid_pod_is_refused_with_upstreams_messages(reg):
    bad = nginx_pod("Bad_Name", restartPolicy="Sometimes", containers=[
        {"name": "a", "image": "x", "ports": [{"containerPort": 70000, "protocol": "XTP"}],
         "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
        {"name": "a"}])
    _, errs = create(reg, "pods", bad)
    assert errs[1:] == [
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        'spec.containers[0].ports[0].protocol: Unsupported value: "XTP": supported values: "SCTP", "TCP", "UDP"',
        'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1',
        "spec.containers[1].image: Required value",
        'spec.containers[1].name: Duplicate value: "a"',
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
    ]
    assert errs[0].startswith('metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain')
    message = errors.new_invalid("Pod", "", "Bad_Name", [errors.required("spec.containers")]).message
    assert message == 'Pod "Bad_Name" is invalid: spec.containers: Required value'


def test_pod_without_containers_and_unknown_volume_mount(reg):
    _, errs = create(reg, "pods", {"metadata": {"name": "p"}, "spec": {}})
    assert errs == ["spec.containers: Required value"]
    _, errs = create(reg, "pods", nginx_pod(containers=[
        {"name": "c", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]))
    # upstream prints the value too (`Not found: "data"`); errors.FieldError omits it for NotFound
    assert len(errs) == 1 and errs[0].startswith("spec.containers[0].volumeMounts[0].name: Not found")


def test_probe_and_env_errors(reg):
    _, errs = create(reg, "pods", nginx_pod(containers=[
        {"name": "c", "image": "x", "livenessProbe": {"successThreshold": 2, "tcpSocket": {"port": 80}},
         "readinessProbe": {}, "env": [{"name": ""}, {"name": "A", "valueFrom": {}}]}]))
    assert errs == [
        "spec.containers[0].env[0].name: Required value",
        'spec.containers[0].env[1].valueFrom: Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, '
        "`configMapKeyRef` or `secretKeyRef`",
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        "spec.containers[0].readinessProbe: Required value: must specify a handler type",
    ]


def test_pod_update_may_only_change_images(reg):
    old, _ = create(reg, "pods", nginx_pod())
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    _, errs = update(reg, "pods", old, new)
    assert errs == []
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["ports"][0]["containerPort"] = 8080
    _, errs = update(reg, "pods", old, new)
    assert len(errs) == 1
    assert errs[0].startswith(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
        "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n")
    assert "containers[0].ports[0].containerPort" in errs[0]
    new = copy.deepcopy(old)
    new["spec"]["containers"].append({"name": "side", "image": "busybox"})
    _, errs = update(reg, "pods", old, new)
    assert errs == ["spec.containers: Forbidden: pod updates may not add or remove containers"]


def test_pod_update_keeps_status(reg):
    old, _ = create(reg, "pods", nginx_pod())
    old["status"] = {"phase": "Running", "qosClass": "BestEffort"}
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Failed"}
    new, _ = update(reg, "pods", old, new)
    assert new["status"]["phase"] == "Running"


def _status(**kw) -> dict:
    p = nginx_pod()
    p["metadata"]["creationTimestamp"] = CREATED
    p["status"] = kw
    return p


def _cs(name="nginx", ready=False, restarts=0, **state) -> dict:
    return {"name": name, "ready": ready, "restartCount": restarts, "state": state}


@pytest.mark.parametrize("status,ready,text", [
    ({"phase": "Pending"}, "0/1", "Pending"),
    ({"phase": "Pending", "containerStatuses": [_cs(waiting={"reason": "ContainerCreating"})]}, "0/1", "ContainerCreating"),
    ({"phase": "Running", "containerStatuses": [_cs(ready=True, running={"startedAt": CREATED})]}, "1/1", "Running"),
    ({"phase": "Running", "containerStatuses": [_cs(restarts=3, waiting={"reason": "CrashLoopBackOff"})]}, "0/1", "CrashLoopBackOff"),
    ({"phase": "Pending", "containerStatuses": [_cs(waiting={"reason": "ErrImagePull"})]}, "0/1", "ErrImagePull"),
    ({"phase": "Succeeded", "containerStatuses": [_cs(terminated={"exitCode": 0, "reason": "Completed"})]}, "0/1", "Completed"),
    ({"phase": "Failed", "containerStatuses": [_cs(terminated={"exitCode": 1, "reason": "Error"})]}, "0/1", "Error"),
    ({"phase": "Failed", "containerStatuses": [_cs(terminated={"exitCode": 137})]}, "0/1", "ExitCode:137"),
    ({"phase": "Failed", "reason": "Evicted"}, "0/1", "Evicted"),
    ({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]},
     "0/1", "SchedulingGated"),
])
def test_pod_status_column(status, ready, text):
    p = _status(**status)
    assert pod.pod_status_text(p) == text
    assert pod.pod_ready_count(p) == ready


def test_init_containers_status():
    p = _status(phase="Pending", initContainerStatuses=[_cs("init", waiting={"reason": "PodInitializing"})])
    p["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    assert pod.pod_status_text(p) == "Init:0/1"
    p["status"]["initContainerStatuses"] = [_cs("init", restarts=2, waiting={"reason": "CrashLoopBackOff"})]
    assert pod.pod_status_text(p) == "Init:CrashLoopBackOff"
    p["status"]["initContainerStatuses"] = [_cs("init", terminated={"exitCode": 1, "reason": "Error"})]
    assert pod.pod_status_text(p) == "Init:Error"


def test_sidecar_counts_in_ready_column():
    p = _status(phase="Running", conditions=[{"type": "Initialized", "status": "True"}],
                initContainerStatuses=[{**_cs("side", ready=True, running={}), "started": True}],
                containerStatuses=[_cs(ready=True, running={})])
    p["spec"]["initContainers"] = [{"name": "side", "image": "busybox", "restartPolicy": "Always"}]
    assert pod.pod_ready_count(p) == "2/2" and pod.pod_status_text(p) == "Running"


def test_terminating_pod():
    p = _status(phase="Running", containerStatuses=[_cs(ready=True, running={})])
    p["metadata"]["deletionTimestamp"] = CREATED
    assert pod.pod_status_text(p) == "Terminating"


def test_pod_row_with_restarts_and_wide_columns(reg):
    p = _status(phase="Running", podIP="10.0.0.5", podIPs=[{"ip": "10.0.0.5"}],
                containerStatuses=[{**_cs(ready=True, restarts=2, running={}),
                                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(20 * 60)}}}])
    p["spec"]["nodeName"] = "node-1"
    row = res(reg, "pods").row(p)
    assert row[0:2] == ["1/1", "Running"]
    assert row[2] == "2 (20m ago)"
    assert row[3] == "3d"
    assert row[4:] == ["10.0.0.5", "node-1", "<none>", "<none>"]
    assert [c.name for c in res(reg, "pods").columns] == [
        "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]
    assert [c.priority for c in res(reg, "pods").columns] == [0, 0, 0, 0, 1, 1, 1, 1]


# ---------------------------------------------------------------------------------------------
# Service


def svc(**spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


def test_service_defaults(reg):
    s, errs = create(reg, "services", svc())
    assert errs == []
    spec = s["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster" and "externalTrafficPolicy" not in spec
    assert s["status"] == {"loadBalancer": {}}
    s, errs = create(reg, "services", svc(type="NodePort"))
    assert errs == [] and s["spec"]["externalTrafficPolicy"] == "Cluster"
    s, errs = create(reg, "services", svc(type="LoadBalancer"))
    assert errs == [] and s["spec"]["allocateLoadBalancerNodePorts"] is True


def test_service_validation_messages(reg):
    _, errs = create(reg, "services", {"metadata": {"name": "1web"}, "spec": {"selector": {"app": "web"}}})
    assert errs[0].startswith('metadata.name: Invalid value: "1web": a DNS-1035 label')
    assert "spec.ports: Required value" in errs
    _, errs = create(reg, "services", svc(type="Magic", ports=[{"port": 80}, {"port": 80, "name": "b"}]))
    assert "spec.ports[0].name: Required value" in errs
    assert 'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"' in errs
    assert ('spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
            'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}') in errs
    _, errs = create(reg, "services", svc(ports=[{"port": 80, "nodePort": 30080}]))
    assert errs == ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]


def test_service_name_error_text_exact():
    errs = common.validate_object_meta({"metadata": {"name": "1web", "namespace": "d"}}, True, "dns1035")
    assert str(errs[0]) == (
        'metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters '
        "or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
        "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def test_cluster_ip_is_immutable_and_kept_when_omitted(reg):
    old, _ = create(reg, "services", svc())
    old["spec"]["clusterIP"], old["spec"]["clusterIPs"] = "10.96.0.10", ["10.96.0.10"]
    applied, errs = update(reg, "services", old, svc())
    assert errs == [] and applied["spec"]["clusterIP"] == "10.96.0.10" and applied["spec"]["clusterIPs"] == ["10.96.0.10"]
    changed = copy.deepcopy(old)
    changed["spec"]["clusterIP"] = "10.96.0.11"
    _, errs = update(reg, "services", old, changed)
    assert errs == ['spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set']


def test_node_port_kept_when_omitted(reg):
    old, _ = create(reg, "services", svc(type="NodePort"))
    old["spec"]["ports"][0]["nodePort"] = 31000
    new, errs = update(reg, "services", old, svc(type="NodePort"))
    assert errs == [] and new["spec"]["ports"][0]["nodePort"] == 31000


def test_service_rows(reg):
    r = res(reg, "services")
    s, _ = create(reg, "services", svc())
    s["spec"]["clusterIPs"] = ["10.96.0.10"]
    assert r.row(s) == ["ClusterIP", "10.96.0.10", "<none>", "80/TCP", "3d", "app=web"]
    s, _ = create(reg, "services", svc(type="NodePort", ports=[{"port": 80, "nodePort": 30080}, {"port": 443, "name": "https", "protocol": "TCP"}]))
    s["spec"]["ports"][0]["name"] = "http"
    assert r.row(s)[2:4] == ["<none>", "80:30080/TCP,443/TCP"]
    s, _ = create(reg, "services", svc(type="LoadBalancer"))
    assert r.row(s)[1:3] == ["<none>", "<pending>"]
    s["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}
    assert r.row(s)[2] == "192.0.2.10"
    s, errs = create(reg, "services", {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "example.com"}})
    assert errs == [] and r.row(s)[0:4] == ["ExternalName", "<none>", "example.com", "<none>"]
    assert [c.name for c in r.columns] == ["Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]


def test_endpoints_row(reg):
    ep = {"metadata": {"name": "web"}, "subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 6)],
                                                   "ports": [{"port": 80}]}]}
    ep, errs = create(reg, "endpoints", ep)
    assert errs == [] and ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert res(reg, "endpoints").row(ep) == ["10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...", "3d"]
    assert res(reg, "endpoints").row({"metadata": {"name": "x"}})[0] == "<none>"


# ---------------------------------------------------------------------------------------------
# Namespace, ConfigMap, Secret, ServiceAccount


def test_namespace_create(reg):
    ns, errs = create(reg, "namespaces", {"metadata": {"name": "dev"}})
    assert errs == []
    assert ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "dev"}
    assert res(reg, "namespaces").row(ns) == ["Active", "3d"]
    _, errs = create(reg, "namespaces", {"metadata": {"name": "Dev_1"}})
    assert errs[0].startswith('metadata.name: Invalid value: "Dev_1": a lowercase RFC 1123 label must consist of')


def test_configmap_immutable(reg):
    old, errs = create(reg, "configmaps", {"metadata": {"name": "cfg"}, "data": {"a": "1"}, "immutable": True})
    assert errs == [] and res(reg, "configmaps").row(old) == [1, "3d"]
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    _, errs = update(reg, "configmaps", old, new)
    assert errs == ["data: Forbidden: field is immutable when `immutable` is set"]
    _, errs = create(reg, "configmaps", {"metadata": {"name": "cfg"}, "data": {"bad key": "1"}})
    assert errs == ['data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric '
                    "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                    "validation is '[-._a-zA-Z0-9]+')"]


def test_secret_string_data_is_folded_into_data(reg):
    s, errs = create(reg, "secrets", {"metadata": {"name": "db"}, "data": {"user": "YWRtaW4="},
                                      "stringData": {"password": "s3cret"}})
    assert errs == []
    assert s["type"] == "Opaque" and "stringData" not in s
    assert s["data"] == {"user": "YWRtaW4=", "password": "czNjcmV0"}
    assert res(reg, "secrets").row(s) == ["Opaque", 2, "3d"]


def test_secret_with_bad_base64_is_a_bad_request(reg):
    with pytest.raises(errors.StatusError) as e:
        create(reg, "secrets", {"metadata": {"name": "db"}, "data": {"user": "adm!n"}})
    assert e.value.code == 400
    assert e.value.message == 'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'


def test_tls_secret_requires_its_keys_and_type_is_immutable(reg):
    _, errs = create(reg, "secrets", {"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {}})
    assert errs == ["data[tls.crt]: Required value", "data[tls.key]: Required value"]
    old, _ = create(reg, "secrets", {"metadata": {"name": "s"}, "data": {"a": "YQ=="}})
    new = copy.deepcopy(old)
    new["type"] = "kubernetes.io/basic-auth"
    _, errs = update(reg, "secrets", old, new)
    assert errs[0] == 'type: Invalid value: "kubernetes.io/basic-auth": field is immutable'


def test_service_account_row(reg):
    sa, errs = create(reg, "serviceaccounts", {"metadata": {"name": "builder"}})
    assert errs == [] and res(reg, "serviceaccounts").row(sa) == [0, "3d"]


# ---------------------------------------------------------------------------------------------
# Node, Event


def test_node_row(reg):
    n = {"metadata": {"name": "node-1", "creationTimestamp": ago(3 * 86400),
                      "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/hostname": "node-1"}},
         "spec": {"unschedulable": True},
         "status": {"conditions": [{"type": "Ready", "status": "True"}],
                    "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "node-1"}],
                    "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                 "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.6.20"}}}
    assert res(reg, "nodes").row(n) == ["Ready,SchedulingDisabled", "control-plane", "3d", "v1.32.0", "192.168.1.10",
                                        "<none>", "Debian GNU/Linux 12 (bookworm)", "6.1.0", "containerd://1.6.20"]
    n["status"]["conditions"] = []
    n["spec"] = {}
    assert res(reg, "nodes").row(n)[0:2] == ["Unknown", "control-plane"]
    n["metadata"]["labels"] = {}
    assert res(reg, "nodes").row(n)[1] == "<none>"


def test_node_taint_errors(reg):
    _, errs = create(reg, "nodes", {"metadata": {"name": "n1"}, "spec": {"taints": [
        {"key": "dedicated", "value": "gpu", "effect": "Sometimes"}, {"key": "a", "effect": "NoSchedule"},
        {"key": "a", "effect": "NoSchedule"}]}})
    assert errs[0] == 'metadata.taints[0].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'
    assert errs[1].startswith("metadata.taints[2]: Duplicate value:") and errs[1].endswith("taints must be unique by key and effect pair")


def test_event_columns_and_row(reg):
    r = res(reg, "events")
    assert r.name_in_row is True
    assert [c.name for c in r.columns if c.priority == 0] == ["Last Seen", "Type", "Reason", "Object", "Message"]
    assert [c.name for c in r.columns][-1] == "Name"
    ev = {"metadata": {"name": "web.17a", "namespace": "default"},
          "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "fieldPath": "spec.containers{nginx}"},
          "reason": "Pulled", "message": "Container image \"nginx\" already present on machine\n", "type": "Normal",
          "source": {"component": "kubelet", "host": "node-1"}, "count": 3,
          "firstTimestamp": ago(2 * 86400), "lastTimestamp": ago(20 * 60)}
    _, errs = create(reg, "events", ev)
    assert errs == []
    assert r.row(ev) == ["20m", "Normal", "Pulled", "pod/web", "spec.containers{nginx}", "kubelet, node-1",
                         'Container image "nginx" already present on machine', "2d", 3, "web.17a"]
    bad = copy.deepcopy(ev)
    bad["involvedObject"]["namespace"] = "other"
    _, errs = create(reg, "events", bad)
    assert errs == ['involvedObject.namespace: Invalid value: "other": does not match event.namespace']


# ---------------------------------------------------------------------------------------------
# Storage, quota, limits, replication controllers


def test_pv_and_pvc(reg):
    pv, errs = create(reg, "persistentvolumes", {"metadata": {"name": "pv1"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"},
        "storageClassName": "manual"}})
    assert errs == []
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and pv["spec"]["volumeMode"] == "Filesystem"
    assert res(reg, "persistentvolumes").row(pv) == ["1Gi", "RWO", "Retain", "Pending", "", "manual", "<unset>", "",
                                                     "3d", "Filesystem"]
    pvc, errs = create(reg, "persistentvolumeclaims", {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "manual"}})
    assert errs == [] and pvc["status"] == {"phase": "Pending"}
    assert res(reg, "persistentvolumeclaims").row(pvc) == ["Pending", "", "", "", "manual", "<unset>", "3d", "Filesystem"]
    pvc["spec"]["volumeName"] = "pv1"
    pvc["status"] = {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}
    assert res(reg, "persistentvolumeclaims").row(pvc)[0:4] == ["Bound", "pv1", "1Gi", "RWO"]
    _, errs = create(reg, "persistentvolumeclaims", {"metadata": {"name": "x"}, "spec": {}})
    assert errs == ["spec.accessModes: Required value: at least 1 access mode is required",
                    "spec.resources[storage]: Required value"]


def test_resource_quota_row(reg):
    q, errs = create(reg, "resourcequotas", {"metadata": {"name": "q"}, "spec": {"hard": {
        "pods": "10", "requests.cpu": "1", "limits.memory": "2Gi"}}})
    assert errs == [] and q["status"] == {}
    q["status"] = {"hard": {"pods": "10", "requests.cpu": "1", "limits.memory": "2Gi"}, "used": {"pods": "2", "requests.cpu": "500m"}}
    assert res(reg, "resourcequotas").row(q) == ["pods: 2/10, requests.cpu: 500m/1", "limits.memory: 0/2Gi", "3d"]
    _, errs = create(reg, "resourcequotas", {"metadata": {"name": "q"}, "spec": {"hard": {"gpus": "1"}}})
    assert errs == ['spec.hard[gpus]: Invalid value: "gpus": must be a standard resource type or fully qualified',
                    'spec.hard[gpus]: Invalid value: "gpus": must be a standard resource for quota']


def test_limit_range_defaults_and_checks(reg):
    lr, errs = create(reg, "limitranges", {"metadata": {"name": "lr"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "100m"}}]}})
    assert errs == []
    item = lr["spec"]["limits"][0]
    assert item["default"] == {"cpu": "1"} and item["defaultRequest"] == {"cpu": "1"}
    assert res(reg, "limitranges").columns == ()
    _, errs = create(reg, "limitranges", {"metadata": {"name": "lr"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "100m"}, "min": {"cpu": "1"}, "default": {"cpu": "100m"},
         "defaultRequest": {"cpu": "100m"}}]}})
    assert errs[0] == 'spec.limits[0].min[cpu]: Invalid value: "1": min value 1 is greater than max value 100m'


def test_replication_controller(reg):
    rc = {"metadata": {"name": "web"}, "spec": {"template": {
        "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}
    obj, errs = create(reg, "replicationcontrollers", rc)
    assert errs == []
    assert obj["spec"]["replicas"] == 1 and obj["spec"]["selector"] == {"app": "web"}
    assert obj["metadata"]["labels"] == {"app": "web"} and obj["status"] == {"replicas": 0}
    r = res(reg, "replicationcontrollers")
    assert r.tracks_generation and r.scale is not None and r.scale.selector(obj) == "app=web"
    assert r.row(obj) == [1, 0, 0, "3d", "nginx", "nginx", "app=web"]
    bad = copy.deepcopy(rc)
    bad["spec"]["selector"] = {"app": "other"}
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    _, errs = create(reg, "replicationcontrollers", bad)
    assert errs == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`',
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']


def test_discovery_names_match_upstream(reg):
    expected = {
        "pods": (("po",), ("all",)), "services": (("svc",), ("all",)), "namespaces": (("ns",), ()),
        "nodes": (("no",), ()), "configmaps": (("cm",), ()), "endpoints": (("ep",), ()), "events": (("ev",), ()),
        "serviceaccounts": (("sa",), ()), "persistentvolumeclaims": (("pvc",), ()), "persistentvolumes": (("pv",), ()),
        "resourcequotas": (("quota",), ()), "limitranges": (("limits",), ()),
        "replicationcontrollers": (("rc",), ("all",)), "secrets": ((), ()), "podtemplates": ((), ()),
    }
    for plural, (short, cats) in expected.items():
        r = res(reg, plural)
        assert (r.short_names, r.categories) == (short, cats), plural
        assert r.definition == f"io.k8s.api.core.v1.{r.kind}"
    assert not res(reg, "nodes").namespaced and not res(reg, "namespaces").namespaced
    assert not res(reg, "persistentvolumes").namespaced
