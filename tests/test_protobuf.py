"""kubectl's protobuf request bodies (application/vnd.kubernetes.protobuf).

kubectl 1.32's typed-client commands (`create <generator>`, `autoscale`, `create job --from`,
`auth can-i|whoami`, `drain --disable-eviction`) send Kubernetes protobuf (`run`, `expose` and
drain's Eviction send JSON). Two oracles from kubectl itself:

- `--dry-run=client -o json` renders, locally, the object kubectl means to send; the body it
  sends (`--dry-run=server -v=9` dumps it in hex) must decode to exactly that dict;
- the object the server stores must contain every field of that rendering.
"""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import urllib.error
import urllib.request

import pytest

from kubelite.api import protobuf
from kubelite.api.protobuf import decode_k8s_protobuf

_DUMP = re.compile(r'"Request Body" body=<\n(.*?)\n >', re.S)


def _dry_client(cluster, args: list[str]) -> dict:
    return json.loads(cluster.kubectl(args[0], "--dry-run=client", "-o", "json", *args[1:]).stdout)


def _sent_body(cluster, args: list[str]) -> bytes:
    """The request body kubectl sends for a command (server dry run, hex dump of -v=9)."""
    r = cluster.kubectl(args[0], "--dry-run=server", "-v=9", *args[1:], check=False)
    m = _DUMP.search(r.stderr)
    assert m, f"no request body logged for {args}:\n{r.stderr[-2000:]}"
    dump = m.group(1)
    assert "[truncated" not in dump
    if dump.lstrip().startswith("{"):
        return dump.strip().encode()
    out = bytearray()
    for line in dump.splitlines():
        out += bytes.fromhex(line.strip()[10:58].replace(" ", ""))
    return bytes(out)


def _contains(expected, actual, path: str = "") -> list[str]:
    """Fields of `expected` missing from or different in `actual` (nulls and empties count as absent)."""
    if expected is None or expected == {} or expected == []:
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: want {expected!r}, got {actual!r}"]
        return [d for k, v in expected.items() for d in _contains(v, actual.get(k), f"{path}.{k}")]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: want {expected!r}, got {actual!r}"]
        return [d for i, (x, y) in enumerate(zip(expected, actual, strict=True)) for d in _contains(x, y, f"{path}[{i}]")]
    return [] if expected == actual else [f"{path}: want {expected!r}, got {actual!r}"]


# (id, kubectl args, kubectl get args); {ns} is the test's namespace, {u} a unique suffix
CASES = [
    ("namespace", ["create", "namespace", "pb-{u}"], ["namespace", "pb-{u}"]),
    ("configmap", ["create", "configmap", "cm", "-n", "{ns}", "--from-literal=a=1", "--from-literal=b=two words"],
     ["-n", "{ns}", "configmap", "cm"]),
    ("secret", ["create", "secret", "generic", "s", "-n", "{ns}", "--from-literal=user=admin",
                "--from-literal=pw=p@ss wörd!"], ["-n", "{ns}", "secret", "s"]),
    ("secret-docker", ["create", "secret", "docker-registry", "reg", "-n", "{ns}", "--docker-server=r.example",
                       "--docker-username=u", "--docker-password=p"], ["-n", "{ns}", "secret", "reg"]),
    ("deployment", ["create", "deployment", "web", "-n", "{ns}", "--image=nginx", "--replicas=3", "--port=80"],
     ["-n", "{ns}", "deployment", "web"]),
    ("deployment-zero", ["create", "deployment", "zero", "-n", "{ns}", "--image=nginx", "--replicas=0"],
     ["-n", "{ns}", "deployment", "zero"]),
    ("service", ["create", "service", "clusterip", "x", "-n", "{ns}", "--tcp=80:8080", "--tcp=443:https"],
     ["-n", "{ns}", "service", "x"]),
    ("service-external", ["create", "service", "externalname", "ext", "-n", "{ns}", "--external-name=a.example"],
     ["-n", "{ns}", "service", "ext"]),
    ("job", ["create", "job", "j", "-n", "{ns}", "--image=busybox", "--", "echo", "hi"], ["-n", "{ns}", "job", "j"]),
    ("cronjob", ["create", "cronjob", "cj", "-n", "{ns}", "--image=busybox", "--schedule=*/5 * * * *",
                 "--restart=OnFailure", "--", "date"], ["-n", "{ns}", "cronjob", "cj"]),
    ("role", ["create", "role", "r", "-n", "{ns}", "--verb=get,list", "--resource=pods,deployments.apps",
              "--resource-name=x"], ["-n", "{ns}", "role", "r"]),
    ("rolebinding", ["create", "rolebinding", "rb", "-n", "{ns}", "--role=r", "--user=alice",
                     "--serviceaccount={ns}:default", "--group=g"], ["-n", "{ns}", "rolebinding", "rb"]),
    ("clusterrole", ["create", "clusterrole", "pb-{u}", "--verb=get", "--resource=nodes",
                     "--non-resource-url=/logs/*"], ["clusterrole", "pb-{u}"]),
    ("clusterrole-aggregated", ["create", "clusterrole", "pb-agg-{u}", "--aggregation-rule=pb-{u}=true"],
     ["clusterrole", "pb-agg-{u}"]),
    ("clusterrolebinding", ["create", "clusterrolebinding", "pb-{u}", "--clusterrole=view", "--group=devs"],
     ["clusterrolebinding", "pb-{u}"]),
    ("serviceaccount", ["create", "serviceaccount", "sa", "-n", "{ns}"], ["-n", "{ns}", "serviceaccount", "sa"]),
    ("quota", ["create", "quota", "q", "-n", "{ns}", "--hard=cpu=1,memory=1G,pods=2", "--scopes=NotBestEffort"],
     ["-n", "{ns}", "resourcequota", "q"]),
    ("priorityclass", ["create", "priorityclass", "pb-{u}", "--value=-5", "--description=low",
                       "--preemption-policy=Never"], ["priorityclass", "pb-{u}"]),
    ("pdb-int", ["create", "pdb", "pdb", "-n", "{ns}", "--selector=app=web", "--min-available=1"],
     ["-n", "{ns}", "pdb", "pdb"]),
    ("pdb-percent", ["create", "pdb", "pdb2", "-n", "{ns}", "--selector=app=web", "--max-unavailable=50%"],
     ["-n", "{ns}", "pdb", "pdb2"]),
    ("ingress", ["create", "ingress", "ing", "-n", "{ns}", "--rule=foo.example/bar*=svc1:8080,tls=my-cert",
                 "--rule=x.example/=svc2:http", "--class=nginx", "--annotation=a=b", "--default-backend=defsvc:80"],
     ["-n", "{ns}", "ingress", "ing"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_kubectl_typed_create_sends_protobuf_and_server_stores_it(cluster, ns, case):
    _id, args, get = case
    u = ns.removeprefix("t-")
    args = [a.format(ns=ns, u=u) for a in args]
    get = [a.format(ns=ns, u=u) for a in get]
    want = _dry_client(cluster, args)

    body = _sent_body(cluster, args)
    assert body.startswith(protobuf.MAGIC), "kubectl no longer sends protobuf for this command"
    unknown: list[str] = []
    assert decode_k8s_protobuf(body, unknown) == want
    assert unknown == []

    cluster.kubectl(*args)
    got = json.loads(cluster.kubectl("get", "-o", "json", *get).stdout)
    want.pop("status", None)  # filled in by controllers
    assert _contains(want, got) == []


def test_secret_and_binary_configmap_data_round_trip(cluster, ns, tmp_path):
    blob = bytes(range(256)) * 3
    (tmp_path / "blob.bin").write_bytes(blob)
    cluster.kubectl("create", "configmap", "bin", "-n", ns, f"--from-file={tmp_path / 'blob.bin'}",
                    "--from-literal=txt=hello")
    cm = json.loads(cluster.kubectl("get", "configmap", "bin", "-n", ns, "-o", "json").stdout)
    assert base64.b64decode(cm["binaryData"]["blob.bin"]) == blob
    assert cm["data"] == {"txt": "hello"}

    cluster.kubectl("create", "secret", "generic", "s", "-n", ns, "--from-literal=pw=p@ss wörd!",
                    f"--from-file=blob={tmp_path / 'blob.bin'}")
    s = json.loads(cluster.kubectl("get", "secret", "s", "-n", ns, "-o", "json").stdout)
    assert base64.b64decode(s["data"]["pw"]).decode() == "p@ss wörd!"
    assert base64.b64decode(s["data"]["blob"]) == blob
    assert s["type"] == "Opaque"


def test_tls_secret(cluster, ns):
    tls = os.path.join(cluster.data_dir, "tls")
    cluster.kubectl("create", "secret", "tls", "t", "-n", ns, f"--cert={tls}/admin.crt", f"--key={tls}/admin.key")
    s = json.loads(cluster.kubectl("get", "secret", "t", "-n", ns, "-o", "json").stdout)
    assert s["type"] == "kubernetes.io/tls"
    with open(f"{tls}/admin.crt", "rb") as f:
        assert base64.b64decode(s["data"]["tls.crt"]) == f.read()


def test_autoscale_and_job_from_cronjob(cluster, ns):
    cluster.kubectl("create", "deployment", "web", "-n", ns, "--image=nginx")
    args = ["autoscale", "deployment", "web", "-n", ns, "--min=2", "--max=5", "--cpu-percent=60"]
    want = _dry_client(cluster, args)
    assert _sent_body(cluster, args).startswith(protobuf.MAGIC)
    cluster.kubectl(*args)
    got = json.loads(cluster.kubectl(
        "get", "--raw", f"/apis/autoscaling/v1/namespaces/{ns}/horizontalpodautoscalers/web").stdout)
    want.pop("status", None)
    assert _contains(want, got) == []
    assert got["spec"]["targetCPUUtilizationPercentage"] == 60

    cluster.kubectl("create", "cronjob", "cj", "-n", ns, "--image=busybox", "--schedule=0 0 * * *", "--", "date")
    args = ["create", "job", "manual", "-n", ns, "--from=cronjob/cj"]
    want = _dry_client(cluster, args)
    assert decode_k8s_protobuf(_sent_body(cluster, args)) == want
    cluster.kubectl(*args)
    got = json.loads(cluster.kubectl("get", "job", "manual", "-n", ns, "-o", "json").stdout)
    want.pop("status", None)
    assert _contains(want, got) == []
    assert got["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"


def test_run_and_expose(cluster, ns):
    # `run` and `expose` send JSON in 1.32; they must keep working next to the protobuf commands
    args = ["run", "p", "-n", ns, "--image=busybox", "--labels=app=x,tier=y", "--env=A=1", "--port=8080",
            "--command", "--", "sleep", "3600"]
    want = _dry_client(cluster, args)
    cluster.kubectl(*args)
    got = json.loads(cluster.kubectl("get", "pod", "p", "-n", ns, "-o", "json").stdout)
    want.pop("status", None)
    assert _contains(want, got) == []
    cluster.kubectl("create", "deployment", "web", "-n", ns, "--image=nginx", "--port=80")
    args = ["expose", "deployment", "web", "-n", ns, "--port=80", "--target-port=8080"]
    want = _dry_client(cluster, args)
    cluster.kubectl(*args)
    got = json.loads(cluster.kubectl("get", "service", "web", "-n", ns, "-o", "json").stdout)
    want.pop("status", None)
    assert _contains(want, got) == []


@pytest.mark.parametrize("disable_eviction", [False, True], ids=["eviction", "delete"])
def test_drain_evicts_with_protobuf_bodies(cluster, disable_eviction):
    # drain POSTs a policy/v1 Eviction, or with --disable-eviction DELETEs with protobuf DeleteOptions
    node = "pb-node-evict" if not disable_eviction else "pb-node-delete"
    ns = node + "-ns"
    cluster.kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}))
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "victim", "namespace": ns},
         "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}))
    args = ["drain", node, "--force", "--grace-period=0", "--timeout=30s"]
    if disable_eviction:
        args.append("--disable-eviction")
    r = cluster.kubectl(*args, "-v=8")
    if disable_eviction:  # kubectl 1.32 sends the Eviction itself as JSON, DeleteOptions as protobuf
        assert "Content-Type: application/vnd.kubernetes.protobuf" in r.stderr
    assert "pod/victim " + ("deleted" if disable_eviction else "evicted") in r.stdout + r.stderr
    assert cluster.kubectl("get", "pod", "victim", "-n", ns, check=False).returncode != 0
    assert json.loads(cluster.kubectl("get", "node", node, "-o", "json").stdout)["spec"]["unschedulable"] is True


def test_auth_reviews_sent_as_protobuf(cluster):
    # SelfSubjectAccessReview, SelfSubjectRulesReview and SelfSubjectReview bodies are protobuf too
    r = cluster.kubectl("auth", "can-i", "create", "pods", "-n", "default", "-v=8")
    assert "Content-Type: application/vnd.kubernetes.protobuf" in r.stderr
    assert r.stdout.strip() == "yes"
    assert cluster.kubectl("auth", "can-i", "get", "secrets", "--subresource=status", "-n", "kube-system",
                           check=False).stdout.strip() == "yes"
    assert "admin" in cluster.kubectl("auth", "whoami").stdout
    assert "[*]" in cluster.kubectl("auth", "can-i", "--list", "-n", "default").stdout


def _post(cluster, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
    tls = os.path.join(cluster.data_dir, "tls")
    ctx = ssl.create_default_context(cafile=f"{tls}/ca.crt")
    ctx.load_cert_chain(f"{tls}/admin.crt", f"{tls}/admin.key")
    req = urllib.request.Request(cluster.url + path, data=body, method="POST",
                                 headers={"Content-Type": content_type, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_malformed_protobuf_body_is_a_bad_request(cluster, ns):
    for body in (b"not protobuf", protobuf.MAGIC + b"\x0a\x05\x0a\x02v1", protobuf.MAGIC + _ld(1, _ld(1, b"v1") +
                 _ld(2, b"NoSuchKind")) + _ld(2, b"")):
        code, status = _post(cluster, f"/api/v1/namespaces/{ns}/configmaps", body, protobuf.CONTENT_TYPE)
        assert code == 400 and status["reason"] == "BadRequest", status
    items = json.loads(cluster.kubectl("get", "configmaps", "-n", ns, "-o", "json").stdout)["items"]
    assert {i["metadata"]["name"] for i in items} <= {"kube-root-ca.crt"}
    # a well-formed body made here (not by kubectl) goes through the same path
    cm = _ld(1, _ld(1, b"hand") + _ld(8, b"")) + _ld(2, _ld(1, b"k") + _ld(2, b"v"))
    code, obj = _post(cluster, f"/api/v1/namespaces/{ns}/configmaps", _envelope("v1", "ConfigMap", cm),
                      protobuf.CONTENT_TYPE)
    assert code == 201, obj
    assert obj["data"] == {"k": "v"} and obj["metadata"]["name"] == "hand"


# ---------------------------------------------------------------------------------------------
# decoder details on hand-made messages (field numbers from upstream's generated.proto)

def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _vi(num: int, v: int) -> bytes:
    return _varint(num << 3) + _varint(v)


def _ld(num: int, b: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(b)) + b


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return protobuf.MAGIC + _ld(1, _ld(1, api_version.encode()) + _ld(2, kind.encode())) + _ld(2, raw)


def test_decoder_scalars_times_and_unknown_fields():
    meta = (_ld(1, b"p") + _ld(3, b"") + _vi(7, 0) + _ld(8, _vi(1, 1700000000)) + _vi(10, 0)
            + _ld(11, _ld(1, b"app") + _ld(2, b"x"))
            + _ld(17, _ld(1, b"kubectl") + _ld(4, _vi(1, 1700000001) + _vi(2, 5))
                  + _ld(7, _ld(1, b'{"f:spec":{}}'))))
    port = _ld(1, b"") + _vi(2, 0) + _vi(3, 8080)
    container = _ld(1, b"c") + _ld(2, b"img") + _ld(6, port) + _vi(16, 0)
    spec = (_ld(2, container) + _vi(5, -1) + _vi(25, -7) + _vi(21, 0) + _vi(11, 0)
            + _ld(999, b"future field"))
    obj = decode_k8s_protobuf(_envelope("v1", "Pod", _ld(1, meta) + _ld(2, spec) + _ld(3, b"")), unknown := [])
    assert obj == {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "p", "creationTimestamp": "2023-11-14T22:13:20Z", "deletionGracePeriodSeconds": 0,
                     "labels": {"app": "x"},
                     "managedFields": [{"manager": "kubectl", "time": "2023-11-14T22:13:21Z",
                                        "fieldsV1": {"f:spec": {}}}]},
        "spec": {"containers": [{"name": "c", "image": "img", "ports": [{"containerPort": 8080}]}],
                 "activeDeadlineSeconds": -1, "automountServiceAccountToken": False, "priority": -7},
        "status": {},
    }
    assert unknown == ["spec#999"]


def test_decoder_special_types():
    # Event.eventTime is a MicroTime, ControllerRevision.data a RawExtension, Service ports IntOrString
    ev = decode_k8s_protobuf(_envelope("v1", "Event", _ld(1, _ld(1, b"e")) + _ld(10, _vi(1, 0) + _vi(2, 123456789))
                                       + _ld(11, _vi(1, 3) + _ld(2, b""))))
    assert ev["eventTime"] == "1970-01-01T00:00:00.123456Z"
    assert ev["series"] == {"count": 3, "lastObservedTime": None}
    cr = decode_k8s_protobuf(_envelope("apps/v1", "ControllerRevision",
                                       _ld(2, _ld(1, b'{"spec":{"a":[1,2]}}')) + _vi(3, 4)))
    assert cr["data"] == {"spec": {"a": [1, 2]}} and cr["revision"] == 4
    port = _ld(1, b"http") + _vi(3, 80) + _ld(4, _vi(1, 1) + _vi(2, 0) + _ld(3, b"web"))
    port2 = _vi(3, 81) + _ld(4, _vi(1, 0) + _vi(2, 8081) + _ld(3, b""))
    svc = decode_k8s_protobuf(_envelope("v1", "Service", _ld(2, _ld(1, port) + _ld(1, port2))))
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "web"},
                                    {"port": 81, "targetPort": 8081}]
    rq = decode_k8s_protobuf(_envelope("v1", "ResourceQuota", _ld(2, _ld(1, _ld(1, b"cpu") + _ld(2, _ld(1, b"500m"))))))
    assert rq["spec"] == {"hard": {"cpu": "500m"}}
    opts = decode_k8s_protobuf(_envelope("v1", "DeleteOptions", _vi(1, 0) + _ld(4, b"Background") + _ld(5, b"All")))
    assert opts == {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                    "propagationPolicy": "Background", "dryRun": ["All"]}
    assert protobuf.go_duration(0) == "0s" and protobuf.go_duration(3_723_500_000_000) == "1h2m3.5s"
    assert protobuf.go_duration(1_500) == "1.5µs" and protobuf.go_duration(60_000_000_000) == "1m0s"


def test_decoder_rejects_malformed_input():
    for bad in (b"{}", protobuf.MAGIC + b"\x0a\x10abc", protobuf.MAGIC + b"\x0b",
                _envelope("v1", "NoSuchKind", b""), _envelope("v1", "Pod", b"\x0a\x05ab")):
        with pytest.raises(protobuf.ProtobufError):
            decode_k8s_protobuf(bad)
