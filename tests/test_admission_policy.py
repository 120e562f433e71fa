"""ValidatingAdmissionPolicy end to end through the official client and kubectl.

Given a policy with CEL validations and a binding scoped to a labelled namespace, when Deployments and
ReplicaSets are written there, then the policy's expressions (with variables, messageExpression,
params) decide, with upstream's denial text; the policy and binding kinds serve the whole REST API.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from conftest import Cluster
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    c = cluster.api_client()
    yield c
    c.close()


@pytest.fixture
def vap_ns(api: client.ApiClient) -> Iterator[str]:
    """A namespace labelled `<its name>: "true"`, as upstream's labelNamespace does."""
    core = client.CoreV1Api(api)
    name = "vap-" + uuid.uuid4().hex[:6]
    core.create_namespace({"metadata": {"name": name, "labels": {name: "true"}}})
    yield name
    core.delete_namespace(name)


def deployment(name: str, replicas: int) -> dict:
    labels = {"app": "nginx"}
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}}}}


def policy(name: str, ns_label: str, validations: list[dict], **spec) -> dict:
    return {"metadata": {"name": name},
            "spec": {"matchConstraints": {
                "namespaceSelector": {"matchLabels": {ns_label: "true"}},
                "resourceRules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"],
                                   "resources": ["deployments"]}]},
                "validations": validations, **spec}}


def binding(name: str, ns_label: str, policy_name: str, actions: list[str] | None = None, **spec) -> dict:
    return {"metadata": {"name": name},
            "spec": {"policyName": policy_name, "validationActions": actions or ["Deny"],
                     "matchResources": {"namespaceSelector": {"matchLabels": {ns_label: "true"}}}, **spec}}


def create_deployment(api: client.ApiClient, ns: str, name: str, replicas: int) -> ApiException | None:
    """Create then delete; the error when admission refused it."""
    apps = client.AppsV1Api(api)
    try:
        apps.create_namespaced_deployment(ns, deployment(name, replicas))
    except ApiException as e:
        return e
    apps.delete_namespaced_deployment(name, ns)
    return None


@pytest.mark.conformance("ValidatingAdmissionPolicy")
def test_policy_validates_deployments(api: client.ApiClient, vap_ns: str) -> None:
    """should validate against a Deployment: replicas > 1 with a messageExpression; a ReplicaSet passes."""
    adm = client.AdmissionregistrationV1Api(api)
    pname, bname = f"{vap_ns}.policy.example.com", f"{vap_ns}.binding.example.com"
    adm.create_validating_admission_policy(policy(pname, vap_ns, [
        {"expression": "object.spec.replicas > 1",
         "messageExpression": "'wants replicas > 1, got ' + string(object.spec.replicas)"},
        {"expression": f"namespaceObject.metadata.name == '{vap_ns}'",
         "message": "Internal error! Other namespace should not be allowed."}]))
    adm.create_validating_admission_policy_binding(binding(bname, vap_ns, pname))
    try:
        err = create_deployment(api, vap_ns, "marker-deployment", 1)
        assert err is not None and err.status == 422, err
        status = json.loads(err.body)
        assert status["reason"] == "Invalid"
        assert status["message"] == (f'deployments.apps "marker-deployment" is forbidden: ValidatingAdmissionPolicy '
                                     f"'{pname}' with binding '{bname}' denied request: wants replicas > 1, got 1")
        assert create_deployment(api, vap_ns, "replicated", 2) is None
        rs = deployment("non-replicated", 1)
        client.AppsV1Api(api).create_namespaced_replica_set(vap_ns, rs)
        # an update is validated too, and kubectl shows the same denial
        client.AppsV1Api(api).create_namespaced_deployment(vap_ns, deployment("scaled", 3))
        r = client.AppsV1Api(api).patch_namespaced_deployment("scaled", vap_ns, {"spec": {"replicas": 2}})
        assert r.spec.replicas == 2
        with pytest.raises(ApiException) as e:
            client.AppsV1Api(api).patch_namespaced_deployment("scaled", vap_ns, {"spec": {"replicas": 0}})
        assert "wants replicas > 1, got 0" in json.loads(e.value.body)["message"]
    finally:
        adm.delete_validating_admission_policy_binding(bname)
        adm.delete_validating_admission_policy(pname)
    # with the binding gone the same Deployment is admitted
    assert create_deployment(api, vap_ns, "marker-deployment", 1) is None


@pytest.mark.conformance("ValidatingAdmissionPolicy")
def test_policy_variables(api: client.ApiClient, vap_ns: str) -> None:
    """should allow expressions to refer variables: variables name each other; both checks hold or deny."""
    adm = client.AdmissionregistrationV1Api(api)
    pname, bname = f"{vap_ns}.vars.example.com", f"{vap_ns}.vars-binding.example.com"
    adm.create_validating_admission_policy(policy(pname, vap_ns, [
        {"expression": "variables.replicas > 1"}, {"expression": "variables.oddReplicas"}],
        variables=[{"name": "replicas", "expression": "object.spec.replicas"},
                   {"name": "oddReplicas", "expression": "variables.replicas % 2 == 1"}]))
    adm.create_validating_admission_policy_binding(binding(bname, vap_ns, pname))
    try:
        err = create_deployment(api, vap_ns, "marker-deployment", 1)
        assert err is not None and err.status == 422
        assert "denied request: failed expression: variables.replicas > 1" in json.loads(err.body)["message"]
        err = create_deployment(api, vap_ns, "even", 2)
        assert err is not None and "failed expression: variables.oddReplicas" in json.loads(err.body)["message"]
        assert create_deployment(api, vap_ns, "replicated", 3) is None
        client.AppsV1Api(api).create_namespaced_replica_set(vap_ns, deployment("non-replicated", 1))
    finally:
        adm.delete_validating_admission_policy_binding(bname)
        adm.delete_validating_admission_policy(pname)


def test_policy_actions_params_and_compile_errors(cluster: Cluster, api: client.ApiClient, vap_ns: str) -> None:
    """Warn answers with a warning instead of denying; params come from the binding's paramRef; a policy
    whose expression does not compile is refused on write."""
    adm = client.AdmissionregistrationV1Api(api)
    pname, bname = f"{vap_ns}.params.example.com", f"{vap_ns}.params-binding.example.com"
    client.CoreV1Api(api).create_namespaced_config_map(vap_ns, {"metadata": {"name": "limits"},
                                                                "data": {"maxReplicas": "3"}})
    adm.create_validating_admission_policy(policy(pname, vap_ns, [
        {"expression": "object.spec.replicas <= int(params.data.maxReplicas)",
         "messageExpression": "'at most ' + params.data.maxReplicas + ' replicas'", "reason": "Forbidden"}],
        paramKind={"apiVersion": "v1", "kind": "ConfigMap"}))
    adm.create_validating_admission_policy_binding(binding(bname, vap_ns, pname, ["Warn"],
                                                           paramRef={"name": "limits",
                                                                     "parameterNotFoundAction": "Deny"}))
    try:
        dep = dict(deployment("big", 5), apiVersion="apps/v1", kind="Deployment")
        r = cluster.kubectl("create", "-n", vap_ns, "-f", "-", input=json.dumps(dep))
        assert (f"Warning: Validation failed for ValidatingAdmissionPolicy '{pname}' with binding '{bname}': "
                "at most 3 replicas") in r.stderr
        adm.patch_validating_admission_policy_binding(bname, {"spec": {"validationActions": ["Deny"]}})
        err = create_deployment(api, vap_ns, "bigger", 4)
        assert err is not None and err.status == 403 and json.loads(err.body)["reason"] == "Forbidden"
        assert create_deployment(api, vap_ns, "small", 2) is None
        # a missing param object denies under parameterNotFoundAction Deny
        client.CoreV1Api(api).delete_namespaced_config_map("limits", vap_ns)
        err = create_deployment(api, vap_ns, "small", 2)
        assert err is not None and "no params found for policy binding with `Deny` parameterNotFoundAction" \
            in json.loads(err.body)["message"]
    finally:
        adm.delete_validating_admission_policy_binding(bname)
        adm.delete_validating_admission_policy(pname)
    bad = policy(f"{vap_ns}.bad.example.com", vap_ns, [{"expression": "object.spec.replicas >"}])
    with pytest.raises(ApiException) as e:
        adm.create_validating_admission_policy(bad)
    assert e.value.status == 422
    assert 'spec.validations[0].expression: Invalid value: "object.spec.replicas >": compilation failed: ' \
           in json.loads(e.value.body)["message"]


def _api_lifecycle(api: client.ApiClient, kind: str, template: dict, patch: dict, update) -> None:
    """upstream's API-operations e2e: discovery, create x3, get, list, watch, patch, update, delete,
    deletecollection (and /status for the policy)."""
    adm = client.AdmissionregistrationV1Api(api)
    suffix = "validating_admission_policy" + ("_binding" if kind == "binding" else "")
    groups = client.ApisApi(api).get_api_versions()
    group = next(g for g in groups.groups if g.name == "admissionregistration.k8s.io")
    assert "v1" in [v.version for v in group.versions]
    resources = {r.name for r in client.AdmissionregistrationV1Api(api).get_api_resources().resources}
    plural = "validatingadmissionpolicies" if kind == "policy" else "validatingadmissionpolicybindings"
    assert plural in resources
    if kind == "policy":
        assert "validatingadmissionpolicies/status" in resources
    label = "e2e-vap-" + uuid.uuid4().hex[:8]
    template["metadata"] = {"generateName": "e2e-example-vap-", "labels": {"example-e2e-vap-label": label}}
    selector = f"example-e2e-vap-label={label}"
    create, read = getattr(adm, f"create_{suffix}"), getattr(adm, f"read_{suffix}")
    list_, patch_ = getattr(adm, f"list_{suffix}"), getattr(adm, f"patch_{suffix}")
    replace, delete = getattr(adm, f"replace_{suffix}"), getattr(adm, f"delete_{suffix}")
    created = [create(template) for _ in range(3)]
    name = created[-1].metadata.name
    assert read(name).metadata.uid == created[-1].metadata.uid
    listed = list_(label_selector=selector)
    assert len(listed.items) == 3
    w = watch.Watch()
    stream = w.stream(list_, label_selector=selector, resource_version=listed.metadata.resource_version,
                      timeout_seconds=30)
    patched = patch_(name, patch)
    assert patched.metadata.annotations["patched"] == "true"
    got = read(name)
    got.metadata.annotations["updated"] = "true"
    update(got)
    updated = replace(name, got)
    assert updated.metadata.annotations["updated"] == "true"
    for event in stream:
        assert event["type"] == "MODIFIED"
        if (event["object"].metadata.annotations or {}).get("patched") == "true":
            w.stop()
            break
    else:
        pytest.fail("no MODIFIED event with the patched annotation")
    if kind == "policy":
        status = adm.read_validating_admission_policy_status(name)
        assert status.metadata.uid == created[-1].metadata.uid and status.kind == "ValidatingAdmissionPolicy"
        cond = {"type": "PatchStatusFailed", "status": "False", "reason": "e2e", "message": "Set from an e2e test",
                "lastTransitionTime": "2024-01-01T00:00:00Z"}
        got = adm.patch_validating_admission_policy_status(name, {"status": {"conditions": [cond]}})
        assert [c.type for c in got.status.conditions] == ["PatchStatusFailed"]
        got.status.conditions.append(client.V1Condition(type="StatusUpdateFailed", status="False", reason="E2E",
                                                        message="Set from an e2e test",
                                                        last_transition_time="2024-01-01T00:00:01Z"))
        got = adm.replace_validating_admission_policy_status(name, got)
        assert {c.type for c in got.status.conditions} == {"PatchStatusFailed", "StatusUpdateFailed"}
    delete(name)
    with pytest.raises(ApiException) as e:
        read(name)
    assert e.value.status == 404
    assert len(list_(label_selector=selector).items) == 2
    getattr(adm, f"delete_collection_{suffix}")(label_selector=selector)
    assert list_(label_selector=selector).items == []


@pytest.mark.conformance("ValidatingAdmissionPolicy API")
def test_policy_api_operations(api: client.ApiClient) -> None:
    def update(p):
        p.spec.failure_policy = "Fail"

    template = {"spec": {"validations": [{"expression": "object.spec.replicas <= 100"}],
                         "matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": ["apps"],
                                                                 "apiVersions": ["v1"],
                                                                 "resources": ["deployments"]}]}}}
    _api_lifecycle(api, "policy", template,
                   {"metadata": {"annotations": {"patched": "true"}}, "spec": {"failurePolicy": "Ignore"}}, update)


@pytest.mark.conformance("ValidatingAdmissionPolicyBinding API")
def test_binding_api_operations(api: client.ApiClient) -> None:
    def update(b):
        b.spec.validation_actions = ["Deny"]

    template = {"spec": {"policyName": "replicalimit-policy.example.com", "validationActions": ["Deny"],
                         "paramRef": {"name": "replica-limit-test.example.com", "namespace": "default",
                                      "parameterNotFoundAction": "Deny"}}}
    _api_lifecycle(api, "binding", template,
                   {"metadata": {"annotations": {"patched": "true"}}, "spec": {"validationActions": ["Warn"]}}, update)
