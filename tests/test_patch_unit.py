"""Pure-function checks of PATCH handling and server-side apply against upstream's documented behaviour.

Cases follow the "Update API Objects in Place Using kubectl patch" task page, apimachinery's
strategicpatch semantics, evanphx/json-patch, and structured-merge-diff's apply/conflict rules.
"""

from __future__ import annotations

import copy

import orjson
import pytest

from kubelite.api.errors import StatusError
from kubelite.apiserver import apply as A
from kubelite.apiserver import patch as P

DEPLOY = "io.k8s.api.apps.v1.Deployment"
POD = "io.k8s.api.core.v1.Pod"
PDB = "io.k8s.api.policy.v1.PodDisruptionBudget"


def deployment(**spec_over) -> dict:
    d = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "patch-demo", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{"name": "patch-demo-ctr", "image": "nginx",
                                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                    "env": [{"name": "A", "value": "1"}]}],
                    "tolerations": [{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    }
    d["spec"].update(spec_over)
    return d


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


# ---------------------------------------------------------------------------------------------
# Strategic merge patch

SMP_CASES = [
    pytest.param(  # docs: containers merge by name; the new one comes first
        {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}}},
        lambda o: [c["name"] for c in pod_spec(o)["containers"]] == ["patch-demo-ctr-2", "patch-demo-ctr"],
        id="containers-merged-by-name"),
    pytest.param(  # kubectl set image: existing container updated in place, other fields kept
        {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "patch-demo-ctr"}],
                                        "containers": [{"name": "patch-demo-ctr", "image": "nginx:1.25"}]}}}},
        lambda o: pod_spec(o)["containers"][0]["image"] == "nginx:1.25" and pod_spec(o)["containers"][0]["ports"],
        id="set-image"),
    pytest.param(  # docs: tolerations have no patch strategy, so the list is replaced
        {"spec": {"template": {"spec": {"tolerations": [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]}}}},
        lambda o: pod_spec(o)["tolerations"] == [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}],
        id="tolerations-replaced"),
    pytest.param(
        {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr", "$patch": "delete"}]}}}},
        lambda o: pod_spec(o)["containers"] == [],
        id="patch-delete-list-item"),
    pytest.param(
        {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "busybox"}]}}}},
        lambda o: pod_spec(o)["containers"] == [{"name": "only", "image": "busybox"}],
        id="patch-replace-list"),
    pytest.param(
        {"spec": {"selector": {"$patch": "replace", "matchLabels": {"x": "y"}}}},
        lambda o: o["spec"]["selector"] == {"matchLabels": {"x": "y"}},
        id="patch-replace-map"),
    pytest.param(
        {"spec": {"strategy": {"$patch": "delete"}}},
        lambda o: o["spec"]["strategy"] == {},
        id="patch-delete-map"),
    pytest.param(  # docs: $retainKeys clears rollingUpdate when switching to Recreate
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        lambda o: o["spec"]["strategy"] == {"type": "Recreate"},
        id="retain-keys"),
    pytest.param(  # without $retainKeys the map merges (rollingUpdate stays)
        {"spec": {"strategy": {"type": "Recreate"}}},
        lambda o: o["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"},
        id="strategy-merges"),
    pytest.param(
        {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr", "env": [{"name": "B", "value": "2"}]}]}}}},
        lambda o: [e["name"] for e in pod_spec(o)["containers"][0]["env"]] == ["B", "A"],
        id="env-merged-by-name"),
    pytest.param(
        {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr", "ports": [{"containerPort": 80, "name": "http"}]}]}}}},
        lambda o: pod_spec(o)["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP", "name": "http"}],
        id="ports-merged-by-containerPort"),
    pytest.param(  # kubectl label --overwrite / null deletes
        {"metadata": {"labels": {"app": None, "tier": "web"}}},
        lambda o: o["metadata"]["labels"] == {"tier": "web"},
        id="null-deletes-map-key"),
    pytest.param(  # kubectl rollout restart
        {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}}},
        lambda o: o["spec"]["template"]["metadata"]["annotations"] == {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}
        and o["spec"]["template"]["metadata"]["labels"] == {"app": "nginx"},
        id="rollout-restart"),
    pytest.param(  # kubectl scale (also sent as a patch)
        {"spec": {"replicas": 5}},
        lambda o: o["spec"]["replicas"] == 5,
        id="scale"),
    pytest.param(  # volumes: merge,retainKeys — an item's source switched with $retainKeys
        {"spec": {"template": {"spec": {"volumes": [{"name": "data", "$retainKeys": ["name", "hostPath"],
                                                     "hostPath": {"path": "/tmp"}}]}}}},
        lambda o: pod_spec(o)["volumes"] == [{"name": "data", "hostPath": {"path": "/tmp"}}],
        id="volume-retain-keys"),
    pytest.param(  # $setElementOrder reorders merged lists
        {"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "patch-demo-ctr"}],
            "containers": [{"name": "b", "image": "busybox"}]}}}},
        lambda o: [c["name"] for c in pod_spec(o)["containers"]] == ["b", "patch-demo-ctr"],
        id="set-element-order"),
    pytest.param(
        {"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "patch-demo-ctr"}, {"name": "b"}],
            "containers": [{"name": "b", "image": "busybox"}]}}}},
        lambda o: [c["name"] for c in pod_spec(o)["containers"]] == ["patch-demo-ctr", "b"],
        id="set-element-order-append"),
]


@pytest.mark.parametrize("body,check", SMP_CASES)
def test_strategic_merge_patch(body, check):
    before = deployment()
    snapshot = copy.deepcopy(before)
    out = P.apply_strategic_merge_patch(before, copy.deepcopy(body), DEPLOY)
    assert check(out), out
    assert before == snapshot, "the input object must not be mutated"


def test_smp_primitive_merge_list_is_a_set_and_delete_from_primitive_list():
    obj = deployment()
    obj["metadata"]["finalizers"] = ["a", "b"]
    out = P.apply_strategic_merge_patch(obj, {"metadata": {"finalizers": ["c", "a"]}}, DEPLOY)
    assert out["metadata"]["finalizers"] == ["c", "a", "b"]
    out = P.apply_strategic_merge_patch(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, DEPLOY)
    assert out["metadata"]["finalizers"] == ["b"]
    # client-side apply's shape for finalizers [a,b] -> [a,c]
    body = {"metadata": {"$setElementOrder/finalizers": ["a", "c"], "$deleteFromPrimitiveList/finalizers": ["b"],
                         "finalizers": ["c"]}}
    assert P.apply_strategic_merge_patch(obj, body, DEPLOY)["metadata"]["finalizers"] == ["a", "c"]


def test_smp_replace_strategy_on_pdb_selector():
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
           "spec": {"minAvailable": 1, "selector": {"matchLabels": {"a": "1", "b": "2"}}}}
    out = P.apply_strategic_merge_patch(pdb, {"spec": {"selector": {"matchLabels": {"c": "3"}}}}, PDB)
    assert out["spec"]["selector"] == {"matchLabels": {"c": "3"}}


def test_smp_without_schema_is_merge_patch():
    obj = {"apiVersion": "x/v1", "kind": "Thing", "spec": {"items": [{"name": "a"}], "m": {"a": 1}}}
    out = P.apply_strategic_merge_patch(obj, {"spec": {"items": [{"name": "b"}], "m": {"b": 2}}}, "")
    assert out["spec"] == {"items": [{"name": "b"}], "m": {"a": 1, "b": 2}}


@pytest.mark.parametrize("body,code,text", [
    ({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}, 500,
     "map: map[image:x] does not contain declared merge key: name"),
    ({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}, 400, "invalid patch format of retainKeys"),
    ({"spec": {"strategy": {"$retainKeys": "type"}}}, 400, "invalid patch format of retainKeys"),
    ({"spec": {"strategy": {"$patch": "merge"}}}, 500, "unknown patch type: merge in map: map[$patch:merge]"),
])
def test_smp_errors(body, code, text):
    with pytest.raises(StatusError) as e:
        P.apply_strategic_merge_patch(deployment(), body, DEPLOY)
    assert e.value.code == code
    assert e.value.message == text


# ---------------------------------------------------------------------------------------------
# JSON patch and merge patch

JSON_PATCH_CASES = [
    ([{"op": "add", "path": "/metadata/labels/tier", "value": "web"}], lambda o: o["metadata"]["labels"]["tier"] == "web"),
    ([{"op": "replace", "path": "/spec/replicas", "value": 3}], lambda o: o["spec"]["replicas"] == 3),
    ([{"op": "remove", "path": "/metadata/labels/app"}], lambda o: o["metadata"]["labels"] == {}),
    ([{"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "b", "image": "busybox"}}],
     lambda o: [c["name"] for c in pod_spec(o)["containers"]] == ["patch-demo-ctr", "b"]),
    ([{"op": "add", "path": "/spec/template/spec/containers/0", "value": {"name": "b", "image": "busybox"}}],
     lambda o: [c["name"] for c in pod_spec(o)["containers"]] == ["b", "patch-demo-ctr"]),
    ([{"op": "add", "path": "/metadata/annotations", "value": {}},
      {"op": "add", "path": "/metadata/annotations/example.com~1a~0b", "value": "x"}],
     lambda o: o["metadata"]["annotations"] == {"example.com/a~b": "x"}),
    ([{"op": "test", "path": "/spec/replicas", "value": 2}, {"op": "replace", "path": "/spec/replicas", "value": 4}],
     lambda o: o["spec"]["replicas"] == 4),
    ([{"op": "move", "from": "/metadata/labels", "path": "/metadata/annotations"}],
     lambda o: "labels" not in o["metadata"] and o["metadata"]["annotations"] == {"app": "nginx"}),
    ([{"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/copy"}],
     lambda o: o["metadata"]["labels"] == {"app": "nginx", "copy": "nginx"}),
]


@pytest.mark.parametrize("ops,check", JSON_PATCH_CASES)
def test_json_patch(ops, check):
    before = deployment()
    out = P.apply_json_patch(before, ops)
    assert check(out), out
    assert before == deployment()


@pytest.mark.parametrize("ops,detail", [
    ([{"op": "test", "path": "/spec/replicas", "value": 9}], "testing value /spec/replicas failed: test failed"),
    ([{"op": "add", "path": "/spec/nothing/x", "value": 1}],
     'add operation does not apply: doc is missing path: "/spec/nothing/x": missing value'),
    ([{"op": "remove", "path": "/metadata/labels/nope"}],
     "error in remove for path: '/metadata/labels/nope': Unable to remove nonexistent key: nope: missing value"),
    ([{"op": "replace", "path": "/spec/template/spec/containers/5", "value": {}}],
     "replace operation does not apply: doc is missing key: /spec/template/spec/containers/5: missing value"),
    ([{"op": "add", "path": "/spec/template/spec/containers/7", "value": {}}],
     "error in add for path: '/spec/template/spec/containers/7': Unable to access invalid index: 7: invalid index referenced"),
    ([{"op": "frobnicate", "path": "/spec"}], "Unexpected kind: frobnicate"),
])
def test_json_patch_failures_are_422_as_upstream(ops, detail):
    with pytest.raises(StatusError) as e:
        P.apply_json_patch(deployment(), ops)
    assert (e.value.code, e.value.reason) == (422, "Invalid")
    assert e.value.message == "the server rejected our request due to an error in our request"
    assert e.value.detail == detail


def test_merge_patch_null_deletes_and_lists_replace():
    out = P.apply_merge_patch(deployment(), {"metadata": {"labels": None},
                                             "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    assert "labels" not in out["metadata"]
    assert pod_spec(out)["containers"] == [{"name": "c", "image": "i"}]
    assert pod_spec(out)["tolerations"]


def test_patch_dispatch_by_content_type():
    d = deployment()
    assert P.patch(d, b'{"spec":{"replicas":7}}', "application/merge-patch+json", DEPLOY)["spec"]["replicas"] == 7
    assert P.patch(d, b'[{"op":"replace","path":"/spec/replicas","value":8}]', "application/json-patch+json",
                   DEPLOY)["spec"]["replicas"] == 8
    out = P.patch(d, b'{"spec":{"template":{"spec":{"containers":[{"name":"z","image":"z"}]}}}}',
                  "application/strategic-merge-patch+json; charset=utf-8", DEPLOY)
    assert len(pod_spec(out)["containers"]) == 2


@pytest.mark.parametrize("body,ctype,code,message", [
    (b"{not json", "application/strategic-merge-patch+json", 400,
     "invalid character 'n' looking for beginning of object key string"),
    (b"", "application/merge-patch+json", 400, "error decoding patch: unexpected end of JSON input"),
    (b'{"op":"add"}', "application/json-patch+json", 400,
     "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"),
    (b"{}", "text/plain", 415, None),
])
def test_patch_bad_bodies(body, ctype, code, message):
    with pytest.raises(StatusError) as e:
        P.patch(deployment(), body, ctype, DEPLOY)
    assert e.value.code == code
    if message:
        assert e.value.message == message


def test_patch_cannot_change_kind():
    with pytest.raises(StatusError) as e:
        P.patch(deployment(), b'[{"op":"replace","path":"/kind","value":"ReplicaSet"}]', "application/json-patch+json", DEPLOY)
    assert e.value.code == 422
    assert e.value.message.startswith(' "" is invalid: patch: Invalid value: ')
    assert "unable to decode apps/v1, Kind=ReplicaSet into *apps.Deployment" in e.value.message
    # a strategic merge patch decodes into the original type: kind changes are dropped
    out = P.patch(deployment(), b'{"kind":"ReplicaSet"}', "application/strategic-merge-patch+json", DEPLOY)
    assert out["kind"] == "Deployment"


# ---------------------------------------------------------------------------------------------
# Server-side apply and managedFields

T0, T1, T2, T3 = (f"2024-01-01T00:00:0{i}Z" for i in range(4))


def applied_config(replicas=2, labels=None, image="nginx") -> dict:
    meta: dict = {"name": "web"}
    if labels is not None:
        meta["labels"] = labels
    cfg = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": image,
                                                       "ports": [{"containerPort": 80}]}]}}},
    }
    if replicas is not None:
        cfg["spec"]["replicas"] = replicas
    return cfg


def entries(obj: dict) -> list[tuple[str, str, str]]:
    return [(e["manager"], e["operation"], e.get("subresource", "")) for e in obj["metadata"].get("managedFields", [])]


def fields_of(obj: dict, manager: str) -> dict:
    for e in obj["metadata"]["managedFields"]:
        if e["manager"] == manager:
            return e["fieldsV1"]
    raise KeyError(manager)


def test_apply_creates_and_records_fieldsv1():
    obj = A.server_side_apply(None, applied_config(labels={"tier": "web"}), "kubectl", False, DEPLOY, "apps/v1", T0)
    assert obj["spec"]["replicas"] == 2
    (entry,) = obj["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl" and entry["operation"] == "Apply" and entry["time"] == T0
    assert entry["fieldsType"] == "FieldsV1"
    f = entry["fieldsV1"]
    assert "f:name" not in f["f:metadata"] and f["f:metadata"]["f:labels"] == {"f:tier": {}}
    assert f["f:spec"]["f:selector"] == {}  # LabelSelector is an atomic map
    ctr = f["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert ctr[".".strip()] == {} and ctr["f:image"] == {}
    assert ctr["f:ports"] == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}


def test_apply_conflict_and_force():
    obj = A.server_side_apply(None, applied_config(), "kubectl", False, DEPLOY, "apps/v1", T0)
    scaled = copy.deepcopy(obj)
    scaled["spec"]["replicas"] = 5
    A.update_managed_fields(obj, scaled, "kubectl-client-side-apply", "Update", DEPLOY, "apps/v1", T1)
    with pytest.raises(StatusError) as e:
        A.server_side_apply(scaled, applied_config(), "my-manager", False, DEPLOY, "apps/v1", T2)
    assert (e.value.code, e.value.reason) == (409, "Conflict")
    assert e.value.message == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" '
                               "using apps/v1: .spec.replicas")
    assert e.value.details == {"causes": [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                           "message": 'conflict with "kubectl-client-side-apply" using apps/v1'}]}
    forced = A.server_side_apply(scaled, applied_config(), "my-manager", True, DEPLOY, "apps/v1", T2)
    assert forced["spec"]["replicas"] == 2
    assert ("kubectl-client-side-apply", "Update", "") not in entries(forced)  # lost its only field
    assert fields_of(forced, "my-manager")["f:spec"]["f:replicas"] == {}


def test_apply_same_value_is_shared_not_a_conflict():
    obj = A.server_side_apply(None, applied_config(), "a", False, DEPLOY, "apps/v1", T0)
    obj = A.server_side_apply(obj, applied_config(), "b", False, DEPLOY, "apps/v1", T1)
    assert {m for m, _, _ in entries(obj)} == {"a", "b"}
    assert fields_of(obj, "a")["f:spec"]["f:replicas"] == {} == fields_of(obj, "b")["f:spec"]["f:replicas"]


def test_apply_multiple_conflicts_message():
    obj = A.server_side_apply(None, applied_config(), "a", False, DEPLOY, "apps/v1", T0)
    with pytest.raises(StatusError) as e:
        A.server_side_apply(obj, applied_config(replicas=3, image="httpd"), "b", False, DEPLOY, "apps/v1", T1)
    assert e.value.message == ('Apply failed with 2 conflicts: conflicts with "a":\n'
                               "- .spec.replicas\n"
                               '- .spec.template.spec.containers[name="web"].image')
    assert [c["field"] for c in e.value.details["causes"]] == [
        ".spec.replicas", '.spec.template.spec.containers[name="web"].image']


def test_apply_removing_a_field_removes_it_unless_someone_else_owns_it():
    obj = A.server_side_apply(None, applied_config(labels={"a": "1", "b": "2"}), "kubectl", False, DEPLOY, "apps/v1", T0)
    obj = A.server_side_apply(obj, applied_config(replicas=None, labels={"a": "1"}), "kubectl", False, DEPLOY,
                              "apps/v1", T1)
    assert obj["metadata"]["labels"] == {"a": "1"}
    assert "replicas" not in obj["spec"]
    # a label also owned by another manager survives its removal from the applied configuration
    labelled = copy.deepcopy(obj)
    labelled["metadata"]["labels"]["c"] = "3"
    A.update_managed_fields(obj, labelled, "kubectl-label", "Update", DEPLOY, "apps/v1", T2)
    out = A.server_side_apply(labelled, applied_config(replicas=None), "kubectl", False, DEPLOY, "apps/v1", T3)
    assert out["metadata"]["labels"] == {"c": "3"}


def test_apply_keeps_list_items_of_other_managers():
    obj = A.server_side_apply(None, applied_config(), "a", False, DEPLOY, "apps/v1", T0)
    cfg_b = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
             "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}}
    obj = A.server_side_apply(obj, cfg_b, "b", False, DEPLOY, "apps/v1", T1)
    assert [c["name"] for c in pod_spec(obj)["containers"]] == ["web", "sidecar"]
    obj = A.server_side_apply(obj, applied_config(image="nginx:2"), "a", False, DEPLOY, "apps/v1", T2)
    assert [(c["name"], c["image"]) for c in pod_spec(obj)["containers"]] == [("web", "nginx:2"), ("sidecar", "busybox")]


def test_apply_upgrades_from_client_side_apply_for_kubectl():
    """kubectl apply --server-side over a client-side applied object: no conflict on unchanged fields."""
    cfg = applied_config()
    live = copy.deepcopy(cfg)
    live["metadata"]["annotations"] = {A.LAST_APPLIED: orjson.dumps(cfg).decode()}
    A.update_managed_fields(None, live, "kubectl-client-side-apply", "Update", DEPLOY, "apps/v1", T0)
    live["metadata"]["uid"] = "u1"
    out = A.server_side_apply(live, applied_config(replicas=3), "kubectl", False, DEPLOY, "apps/v1", T1)
    assert out["spec"]["replicas"] == 3
    assert orjson.loads(out["metadata"]["annotations"][A.LAST_APPLIED])["spec"]["replicas"] == 3
    with pytest.raises(StatusError):  # another manager name gets the conflict
        A.server_side_apply(live, applied_config(replicas=3), "other", False, DEPLOY, "apps/v1", T1)


@pytest.mark.parametrize("cfg,message", [
    ({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"}}, "invalid object type: apps/v1, Kind=ReplicaSet"),
    ({"apiVersion": "v1", "kind": "Deployment", "metadata": {"name": "web"}}, "invalid object type: /v1, Kind=Deployment"),
    ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "managedFields": []}},
     "metadata.managedFields must be nil"),
])
def test_apply_bad_requests(cfg, message):
    with pytest.raises(StatusError) as e:
        A.server_side_apply(None, cfg, "kubectl", False, DEPLOY, "apps/v1", T0)
    assert (e.value.code, e.value.message) == (400, message)


def test_update_managed_fields_on_create_and_update():
    obj = deployment()
    A.update_managed_fields(None, obj, "kubectl-create", "Update", DEPLOY, "apps/v1", T0)
    f = fields_of(obj, "kubectl-create")
    assert f["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}
    assert "." not in f["f:spec"]["f:template"]["f:spec"]["f:containers"]  # required field: null, not absent
    assert f["f:spec"]["f:strategy"]["f:rollingUpdate"][".".strip()] == {}
    assert "f:name" not in f["f:metadata"] and "f:apiVersion" not in f
    obj["metadata"]["uid"] = "u1"

    edited = copy.deepcopy(obj)
    pod_spec(edited)["containers"][0]["image"] = "nginx:2"
    A.update_managed_fields(obj, edited, "kubectl-edit", "Update", DEPLOY, "apps/v1", T1)
    assert entries(edited) == [("kubectl-create", "Update", ""), ("kubectl-edit", "Update", "")]
    ctr = 'k:{"name":"patch-demo-ctr"}'
    assert "f:image" not in fields_of(edited, "kubectl-create")["f:spec"]["f:template"]["f:spec"]["f:containers"][ctr]
    assert fields_of(edited, "kubectl-edit") == {
        "f:spec": {"f:template": {"f:spec": {"f:containers": {ctr: {"f:image": {}}}}}}}

    noop = copy.deepcopy(edited)
    A.update_managed_fields(edited, noop, "kubectl-edit", "Update", DEPLOY, "apps/v1", T2)
    assert [e["time"] for e in noop["metadata"]["managedFields"]] == [T0, T1]

    removed = copy.deepcopy(edited)
    del removed["metadata"]["labels"]
    A.update_managed_fields(edited, removed, "kubectl-edit", "Update", DEPLOY, "apps/v1", T3)
    assert "f:metadata" not in fields_of(removed, "kubectl-create")  # it owned only the labels


def test_update_ignores_status_and_tracks_status_subresource():
    obj = deployment()
    A.update_managed_fields(None, obj, "kubectl-create", "Update", DEPLOY, "apps/v1", T0)
    obj["metadata"]["uid"] = "u1"
    with_status = copy.deepcopy(obj)
    with_status["status"] = {"replicas": 2}
    A.update_managed_fields(obj, with_status, "kube-controller-manager", "Update", DEPLOY, "apps/v1", T1,
                            subresource="status")
    assert ("kube-controller-manager", "Update", "status") in entries(with_status)
    assert fields_of(with_status, "kube-controller-manager") == {"f:status": {"f:replicas": {}}}
    again = copy.deepcopy(with_status)
    again["status"]["replicas"] = 3
    A.update_managed_fields(with_status, again, "someone", "Update", DEPLOY, "apps/v1", T2)
    assert "someone" not in {m for m, _, _ in entries(again)}


def test_update_untracked_existing_object_and_reset():
    old = deployment()
    old["metadata"]["uid"] = "u1"
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 9
    A.update_managed_fields(old, new, "x", "Update", DEPLOY, "apps/v1", T0)
    assert "managedFields" not in new["metadata"]
    tracked = deployment()
    A.update_managed_fields(None, tracked, "kubectl-create", "Update", DEPLOY, "apps/v1", T0)
    reset = copy.deepcopy(tracked)
    reset["metadata"]["managedFields"] = []
    A.update_managed_fields(tracked, reset, "x", "Update", DEPLOY, "apps/v1", T1)
    assert "managedFields" not in reset["metadata"]


def test_apply_to_untracked_object_creates_before_first_apply():
    live = copy.deepcopy(applied_config())
    live["metadata"]["uid"] = "u1"
    with pytest.raises(StatusError) as e:
        A.server_side_apply(live, applied_config(replicas=4), "mgr", False, DEPLOY, "apps/v1", T1)
    assert 'conflict with "before-first-apply" using apps/v1: .spec.replicas' in e.value.message


@pytest.mark.parametrize("ua,manager", [
    ("kubectl/v1.32.4 (linux/amd64) kubernetes/abc", "kubectl"),
    ("OpenAPI-Generator/30.1.0/python", "OpenAPI-Generator"),
    ("kube-controller-manager/v1.32.0", "kube-controller-manager"),
    ("bad\x01name/1", "badname"),
    ("", ""),
    ("x" * 200, "x" * 128),
])
def test_manager_from_user_agent(ua, manager):
    assert A.manager_from_user_agent(ua) == manager
