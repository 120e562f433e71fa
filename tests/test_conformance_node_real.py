"""Upstream conformance behaviours that need a real node: given a kubelite with `--kubelet`
(containerd via CRI, CNI bridge), when pods mount ConfigMap/Secret/projected/downward API/emptyDir
volumes, read the downward API and expanded variables from their environment, run init containers,
exit, fail or run with a security context, then what the container sees (read back with
`kubectl logs`/`kubectl exec`) and the status kubectl reports are those upstream's e2e tests demand."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.conftest import Cluster
from tests.images import BUSYBOX, node_namespace, real_node
from tests.test_kubelet_pods import get_pod, wait_pod

pytestmark = [pytest.mark.root, pytest.mark.containerd]

ENTRY_IMAGE = "localhost/entrypoint:1"  # ENTRYPOINT ["/bin/echo", "entry"], CMD ["default-arg"]


def _entry_image(image_dir: str) -> list[str]:
    """An image whose entrypoint and command differ, for the Containers command/args behaviours."""
    from kubelite.runtime import images

    entry = f"{image_dir}/entry.tar"
    with open(entry, "wb") as f:
        f.write(images.docker_archive([ENTRY_IMAGE], images.busybox_layer(), ["default-arg"],
                                      entrypoint=["/bin/echo", "entry"]))
    return [entry]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    with real_node(tmp_path_factory, _entry_image) as c:
        yield c


@pytest.fixture
def ns(node: Cluster):
    with node_namespace(node, "c-") as name:
        yield name


# ---- helpers ---------------------------------------------------------------------------------------

def ctr(name: str, script: str, **kw) -> dict:
    return {"name": name, "image": BUSYBOX, "command": ["sh", "-c", script], **kw}


def apply(node: Cluster, ns: str, obj: dict) -> None:
    node.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


def create_pod(node: Cluster, ns: str, name: str, containers: list[dict], restart: str = "Never", **spec) -> None:
    apply(node, ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **spec.pop("metadata", {})},
                     "spec": {"terminationGracePeriodSeconds": 1, "restartPolicy": restart,
                              "containers": containers, **spec}})


def phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def finished(node: Cluster, ns: str, name: str, want: str = "Succeeded", timeout: float = 60) -> dict:
    pod = wait_pod(node, ns, name, lambda p: phase(p) in ("Succeeded", "Failed"), timeout, "finished")
    assert phase(pod) == want, json.dumps(pod["status"], indent=1) + logs(node, ns, name, None)
    return pod


def logs(node: Cluster, ns: str, name: str, container: str | None = "main") -> str:
    args = ["logs", "-n", ns, name] + (["-c", container] if container else ["--all-containers"])
    return node.kubectl(*args, check=False).stdout


def running(pod: dict) -> bool:
    return phase(pod) == "Running" and all(
        "running" in (s.get("state") or {}) for s in pod["status"].get("containerStatuses") or [{}])


def cstatus(pod: dict, name: str = "main", init: bool = False) -> dict:
    key = "initContainerStatuses" if init else "containerStatuses"
    return next((s for s in (pod.get("status") or {}).get(key) or [] if s["name"] == name), {})


def kv(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


def show(label: str, path: str) -> str:
    """A shell line printing `label=<content>|<mode>` of a (symlinked) volume file."""
    return f'echo "{label}=$(cat {path})|$(stat -L -c %A {path})"'


def wait_exec(node: Cluster, ns: str, pod: str, container: str, cmd: str, want, timeout: float = 90) -> str:
    deadline = time.time() + timeout
    out = ""
    while time.time() < deadline:
        r = node.kubectl("exec", "-n", ns, pod, "-c", container, "--", "sh", "-c", cmd, check=False)
        out = r.stdout
        if want(out):
            return out
        time.sleep(0.5)
    raise AssertionError(f"`{cmd}` in {pod}/{container} never matched; last output {out!r}")


def node_allocatable(node: Cluster) -> dict:
    return json.loads(node.kubectl("get", "node", node.node_name, "-o", "json").stdout)["status"]["allocatable"]


def quantity(q: str) -> float:
    from kubelite.api.kinds.common import parse_quantity

    return float(parse_quantity(q))


# ---- ConfigMap volumes ------------------------------------------------------------------------------

@pytest.mark.conformance("ConfigMap Volume, without mapping")
@pytest.mark.conformance("ConfigMap Volume, without mapping, volume mode set")
@pytest.mark.conformance("ConfigMap Volume, without mapping, non-root user")
@pytest.mark.conformance("ConfigMap Volume, with mapping")
@pytest.mark.conformance("ConfigMap Volume, with mapping, volume mode set")
@pytest.mark.conformance("ConfigMap Volume, with mapping, non-root user")
@pytest.mark.conformance("ConfigMap Volume, multiple volume maps")
@pytest.mark.conformance("ConfigMap Volume, text data, binary data")
def test_configmap_volumes(node: Cluster, ns: str):
    binary = bytes([0xDE, 0xCA, 0xFE, 0xBA, 0xD0, 0xFE, 0xCA, 0xFE])
    apply(node, ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
                     "data": {"data-1": "value-1", "data-2": "value-2"},
                     "binaryData": {"dump.bin": base64.b64encode(binary).decode()}})
    mapped = [{"key": "data-2", "path": "path/to/data-2"}]
    vols = [{"name": "plain", "configMap": {"name": "cm"}},
            {"name": "mode", "configMap": {"name": "cm", "defaultMode": 0o400}},
            {"name": "map", "configMap": {"name": "cm", "items": mapped}},
            {"name": "map2", "configMap": {"name": "cm", "items": mapped}},
            {"name": "mapmode", "configMap": {"name": "cm", "items": [{**mapped[0], "mode": 0o400}]}},
            {"name": "bin", "configMap": {"name": "cm", "items": [{"key": "dump.bin", "path": "bin/dump.bin"},
                                                                  {"key": "data-1", "path": "text/data-1"}]}}]
    mounts = [{"name": v["name"], "mountPath": f"/etc/{v['name']}"} for v in vols]
    script = "; ".join([show("plain", "/etc/plain/data-1"), show("mode", "/etc/mode/data-1"),
                        show("map", "/etc/map/path/to/data-2"), show("map2", "/etc/map2/path/to/data-2"),
                        show("mapmode", "/etc/mapmode/path/to/data-2"), show("text", "/etc/bin/text/data-1"),
                        'echo "bin=$(od -An -tx1 /etc/bin/bin/dump.bin | tr -d " \\n")"',
                        'echo "unmapped=$(ls /etc/map/data-1 2>&1 >/dev/null | wc -l)"'])
    nr_script = "; ".join(['echo "uid=$(id -u)"', show("plain", "/etc/plain/data-1"),
                           show("map", "/etc/map/path/to/data-2")])
    create_pod(node, ns, "cmvol", [ctr("main", script, volumeMounts=mounts),
                                   ctr("nonroot", nr_script, volumeMounts=mounts,
                                       securityContext={"runAsUser": 1000})], volumes=vols)
    finished(node, ns, "cmvol")
    out = kv(logs(node, ns, "cmvol"))
    assert out["plain"] == "value-1|-rw-r--r--"
    assert out["mode"] == "value-1|-r--------"
    assert out["map"] == out["map2"] == "value-2|-rw-r--r--"
    assert out["mapmode"] == "value-2|-r--------"
    assert out["unmapped"] == "1"  # only the mapped key is in a volume with items
    assert out["text"] == "value-1|-rw-r--r--" and out["bin"] == binary.hex()
    nr = kv(logs(node, ns, "cmvol", "nonroot"))
    assert nr == {"uid": "1000", "plain": "value-1|-rw-r--r--", "map": "value-2|-rw-r--r--"}


# ---- Secret volumes ---------------------------------------------------------------------------------

@pytest.mark.conformance("Secrets Volume, default")
@pytest.mark.conformance("Secrets Volume, volume mode 0400")
@pytest.mark.conformance("Secrets Volume, mapping")
@pytest.mark.conformance("Secrets Volume, mapping, volume mode 0400")
@pytest.mark.conformance("Secrets Volume, mapping multiple volume paths")
@pytest.mark.conformance("Secrets Volume, volume mode default, secret with same name in different namespace")
def test_secret_volumes(node: Cluster, ns: str):
    other = ns + "-other"
    node.kubectl("create", "namespace", other)
    node.kubectl("create", "secret", "generic", "sec", "-n", other, "--from-literal=data-1=other-value")
    node.kubectl("create", "secret", "generic", "sec", "-n", ns, "--from-literal=data-1=value-1",
                 "--from-literal=data-2=value-2")
    mapped = [{"key": "data-1", "path": "new-path-data-1"}]
    vols = [{"name": "plain", "secret": {"secretName": "sec"}},
            {"name": "mode", "secret": {"secretName": "sec", "defaultMode": 0o400}},
            {"name": "map", "secret": {"secretName": "sec", "items": mapped}},
            {"name": "map2", "secret": {"secretName": "sec", "items": mapped}},
            {"name": "mapmode", "secret": {"secretName": "sec", "items": [{**mapped[0], "mode": 0o400}]}}]
    mounts = [{"name": v["name"], "mountPath": f"/etc/{v['name']}", "readOnly": True} for v in vols]
    script = "; ".join([show("plain", "/etc/plain/data-1"), show("plain2", "/etc/plain/data-2"),
                        show("mode", "/etc/mode/data-1"), show("map", "/etc/map/new-path-data-1"),
                        show("map2", "/etc/map2/new-path-data-1"), show("mapmode", "/etc/mapmode/new-path-data-1"),
                        'echo "files=$(ls /etc/map | tr "\\n" " ")"'])
    create_pod(node, ns, "secvol", [ctr("main", script, volumeMounts=mounts)], volumes=vols)
    finished(node, ns, "secvol")
    out = kv(logs(node, ns, "secvol"))
    assert out["plain"] == "value-1|-rw-r--r--" and out["plain2"] == "value-2|-rw-r--r--"  # this namespace's
    assert out["mode"] == "value-1|-r--------"
    assert out["map"] == out["map2"] == "value-1|-rw-r--r--"
    assert out["mapmode"] == "value-1|-r--------"
    assert out["files"].split() == ["new-path-data-1"]
    node.kubectl("delete", "namespace", other, "--wait=false")


# ---- projected volumes ------------------------------------------------------------------------------

@pytest.mark.conformance("Projected Volume, ConfigMap, volume mode default")
@pytest.mark.conformance("Projected Volume, ConfigMap, non-root user")
@pytest.mark.conformance("Projected Volume, ConfigMap, volume mode 0400")
@pytest.mark.conformance("Projected Volume, ConfigMap, mapped")
@pytest.mark.conformance("Projected Volume, ConfigMap, mapped, volume mode 0400")
@pytest.mark.conformance("Projected Volume, ConfigMap, mapped, non-root user")
@pytest.mark.conformance("Projected Volume, ConfigMap, multiple volume paths")
@pytest.mark.conformance("Projected Volume, Secrets, volume mode default")
@pytest.mark.conformance("Projected Volume, Secrets, volume mode 0400")
@pytest.mark.conformance("Projected Volume, Secrets, mapped")
@pytest.mark.conformance("Projected Volume, Secrets, mapped, volume mode 0400")
@pytest.mark.conformance("Projected Volume, Secrets, mapped, multiple paths")
@pytest.mark.conformance("Projected Volume, multiple projections")
def test_projected_volumes(node: Cluster, ns: str):
    node.kubectl("create", "configmap", "cm", "-n", ns, "--from-literal=data-1=value-1",
                 "--from-literal=data-2=value-2")
    node.kubectl("create", "secret", "generic", "sec", "-n", ns, "--from-literal=data-1=secret-1")

    def proj(name: str, sources: list[dict], **kw) -> dict:
        return {"name": name, "projected": {"sources": sources, **kw}}

    cm_map = {"name": "cm", "items": [{"key": "data-2", "path": "path/to/data-2"}]}
    sec_map = {"name": "sec", "items": [{"key": "data-1", "path": "new-path-data-1"}]}
    vols = [proj("cm", [{"configMap": {"name": "cm"}}]),
            proj("cmmode", [{"configMap": {"name": "cm"}}], defaultMode=0o400),
            proj("cmmap", [{"configMap": cm_map}]),
            proj("cmmap2", [{"configMap": cm_map}]),
            proj("cmmapmode", [{"configMap": {**cm_map, "items": [{**cm_map["items"][0], "mode": 0o400}]}}]),
            proj("sec", [{"secret": {"name": "sec"}}]),
            proj("secmode", [{"secret": {"name": "sec"}}], defaultMode=0o400),
            proj("secmap", [{"secret": sec_map}]),
            proj("secmap2", [{"secret": sec_map}]),
            proj("secmapmode", [{"secret": {**sec_map, "items": [{**sec_map["items"][0], "mode": 0o400}]}}]),
            proj("all", [{"secret": {"name": "sec", "items": [{"key": "data-1", "path": "secret-data"}]}},
                         {"configMap": {"name": "cm", "items": [{"key": "data-1", "path": "cm-data"}]}},
                         {"downwardAPI": {"items": [
                             {"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}},
                             {"path": "cpu_limit", "resourceFieldRef": {"containerName": "main",
                                                                         "resource": "limits.cpu",
                                                                         "divisor": "1m"}},
                             {"path": "memory_request", "resourceFieldRef": {"containerName": "main",
                                                                              "resource": "requests.memory"}}]}}])]
    mounts = [{"name": v["name"], "mountPath": f"/etc/{v['name']}"} for v in vols]
    script = "; ".join([show("cm", "/etc/cm/data-1"), show("cmmode", "/etc/cmmode/data-1"),
                        show("cmmap", "/etc/cmmap/path/to/data-2"), show("cmmap2", "/etc/cmmap2/path/to/data-2"),
                        show("cmmapmode", "/etc/cmmapmode/path/to/data-2"), show("sec", "/etc/sec/data-1"),
                        show("secmode", "/etc/secmode/data-1"), show("secmap", "/etc/secmap/new-path-data-1"),
                        show("secmap2", "/etc/secmap2/new-path-data-1"),
                        show("secmapmode", "/etc/secmapmode/new-path-data-1"),
                        show("all_secret", "/etc/all/secret-data"), show("all_cm", "/etc/all/cm-data"),
                        show("all_pod", "/etc/all/podname"), show("all_cpu", "/etc/all/cpu_limit"),
                        show("all_mem", "/etc/all/memory_request")])
    nr_script = "; ".join(['echo "uid=$(id -u)"', show("cm", "/etc/cm/data-1"),
                           show("cmmap", "/etc/cmmap/path/to/data-2")])
    res = {"requests": {"cpu": "250m", "memory": "32Mi"}, "limits": {"cpu": "1250m", "memory": "64Mi"}}
    create_pod(node, ns, "projected", [ctr("main", script, volumeMounts=mounts, resources=res),
                                       ctr("nonroot", nr_script, volumeMounts=mounts,
                                           securityContext={"runAsUser": 1000})], volumes=vols)
    finished(node, ns, "projected")
    out = kv(logs(node, ns, "projected"))
    assert out["cm"] == "value-1|-rw-r--r--"
    assert out["cmmode"] == "value-1|-r--------"
    assert out["cmmap"] == out["cmmap2"] == "value-2|-rw-r--r--"
    assert out["cmmapmode"] == "value-2|-r--------"
    assert out["sec"] == "secret-1|-rw-r--r--"
    assert out["secmode"] == "secret-1|-r--------"
    assert out["secmap"] == out["secmap2"] == "secret-1|-rw-r--r--"
    assert out["secmapmode"] == "secret-1|-r--------"
    assert out["all_secret"] == "secret-1|-rw-r--r--" and out["all_cm"] == "value-1|-rw-r--r--"
    assert out["all_pod"].split("|")[0] == "projected"
    assert out["all_cpu"].split("|")[0] == "1250"
    assert out["all_mem"].split("|")[0] == str(32 * 1024 * 1024)
    nr = kv(logs(node, ns, "projected", "nonroot"))
    assert nr == {"uid": "1000", "cm": "value-1|-rw-r--r--", "cmmap": "value-2|-rw-r--r--"}


# ---- downward API volumes ---------------------------------------------------------------------------

DOWNWARD_ITEMS = [
    {"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}},
    {"path": "podname_ro", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400},
    {"path": "cpu_limit", "resourceFieldRef": {"containerName": "main", "resource": "limits.cpu", "divisor": "1m"}},
    {"path": "cpu_request", "resourceFieldRef": {"containerName": "main", "resource": "requests.cpu",
                                                 "divisor": "1m"}},
    {"path": "memory_limit", "resourceFieldRef": {"containerName": "main", "resource": "limits.memory"}},
    {"path": "memory_request", "resourceFieldRef": {"containerName": "main", "resource": "requests.memory"}},
    {"path": "default_cpu_limit", "resourceFieldRef": {"containerName": "nolimits", "resource": "limits.cpu",
                                                       "divisor": "1m"}},
    {"path": "default_memory_limit", "resourceFieldRef": {"containerName": "nolimits",
                                                          "resource": "limits.memory"}},
]


@pytest.mark.conformance("DownwardAPI volume, pod name")
@pytest.mark.conformance("DownwardAPI volume, file mode 0400")
@pytest.mark.conformance("DownwardAPI volume, volume mode 0400")
@pytest.mark.conformance("DownwardAPI volume, CPU limits")
@pytest.mark.conformance("DownwardAPI volume, CPU request")
@pytest.mark.conformance("DownwardAPI volume, memory limits")
@pytest.mark.conformance("DownwardAPI volume, memory request")
@pytest.mark.conformance("DownwardAPI volume, CPU limit, default node allocatable")
@pytest.mark.conformance("DownwardAPI volume, memory limit, default node allocatable")
@pytest.mark.conformance("Projected Volume, DownwardAPI, pod name")
@pytest.mark.conformance("Projected Volume, DownwardAPI, volume mode 0400")
@pytest.mark.conformance("Projected Volume, DownwardAPI, CPU limits")
@pytest.mark.conformance("Projected Volume, DownwardAPI, CPU request")
@pytest.mark.conformance("Projected Volume, DownwardAPI, memory limits")
@pytest.mark.conformance("Projected Volume, DownwardAPI, memory request")
@pytest.mark.conformance("Projected Volume, DownwardAPI, CPU limit, node allocatable")
@pytest.mark.conformance("Projected Volume, DownwardAPI, memory limit, node allocatable")
def test_downward_api_volumes(node: Cluster, ns: str):
    vols = [{"name": "dapi", "downwardAPI": {"items": DOWNWARD_ITEMS}},
            {"name": "dapimode", "downwardAPI": {"items": DOWNWARD_ITEMS[:1], "defaultMode": 0o400}},
            {"name": "proj", "projected": {"sources": [{"downwardAPI": {"items": DOWNWARD_ITEMS}}]}},
            {"name": "projmode", "projected": {"sources": [{"downwardAPI": {"items": DOWNWARD_ITEMS[:1]}}],
                                               "defaultMode": 0o400}}]
    mounts = [{"name": v["name"], "mountPath": f"/etc/{v['name']}"} for v in vols]
    lines = [show(f"{v}.{it['path']}", f"/etc/{v}/{it['path']}") for v in ("dapi", "proj") for it in DOWNWARD_ITEMS]
    lines += [show("dapimode.podname", "/etc/dapimode/podname"), show("projmode.podname", "/etc/projmode/podname")]
    res = {"requests": {"cpu": "250m", "memory": "32Mi"}, "limits": {"cpu": "1250m", "memory": "64Mi"}}
    create_pod(node, ns, "downward", [ctr("main", "; ".join(lines), volumeMounts=mounts, resources=res),
                                      ctr("nolimits", "true")], volumes=vols)
    finished(node, ns, "downward")
    out = kv(logs(node, ns, "downward"))
    alloc = node_allocatable(node)
    for v in ("dapi", "proj"):
        assert out[f"{v}.podname"] == "downward|-rw-r--r--"
        assert out[f"{v}.podname_ro"] == "downward|-r--------"
        assert out[f"{v}.cpu_limit"].split("|")[0] == "1250"
        assert out[f"{v}.cpu_request"].split("|")[0] == "250"
        assert out[f"{v}.memory_limit"].split("|")[0] == str(64 * 1024 * 1024)
        assert out[f"{v}.memory_request"].split("|")[0] == str(32 * 1024 * 1024)
        assert int(out[f"{v}.default_cpu_limit"].split("|")[0]) == int(quantity(alloc["cpu"]) * 1000)
        assert int(out[f"{v}.default_memory_limit"].split("|")[0]) == int(quantity(alloc["memory"]))
    assert out["dapimode.podname"] == out["projmode.podname"] == "downward|-r--------"


# ---- updates of mounted objects ---------------------------------------------------------------------

@pytest.mark.conformance("ConfigMap Volume, update")
@pytest.mark.conformance("Projected Volume, ConfigMap, update")
@pytest.mark.conformance("DownwardAPI volume, update label")
@pytest.mark.conformance("DownwardAPI volume, update annotations")
@pytest.mark.conformance("Projected Volume, DownwardAPI, update labels")
@pytest.mark.conformance("Projected Volume, DownwardAPI, update annotation")
@pytest.mark.conformance("ConfigMap Volume, create, update and delete")
@pytest.mark.conformance("Secrets Volume, create, update and delete")
@pytest.mark.conformance("Projected Volume, ConfigMap, create, update and delete")
@pytest.mark.conformance("Projected Volume, Secrets, create, update delete")
def test_mounted_objects_follow_updates(node: Cluster, ns: str):
    node.kubectl("create", "configmap", "upd", "-n", ns, "--from-literal=data-1=value-1")
    node.kubectl("create", "configmap", "del-cm", "-n", ns, "--from-literal=data-1=value-1")
    node.kubectl("create", "secret", "generic", "upd-sec", "-n", ns, "--from-literal=data-1=value-1")
    node.kubectl("create", "secret", "generic", "del-sec", "-n", ns, "--from-literal=data-1=value-1")
    labels = [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
              {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]
    opt = {"optional": True}
    vols = [{"name": "cm", "configMap": {"name": "upd"}},
            {"name": "pcm", "projected": {"sources": [{"configMap": {"name": "upd"}}]}},
            {"name": "dapi", "downwardAPI": {"items": labels}},
            {"name": "pdapi", "projected": {"sources": [{"downwardAPI": {"items": labels}}]}},
            {"name": "cm-create", "configMap": {"name": "new-cm", **opt}},
            {"name": "cm-delete", "configMap": {"name": "del-cm", **opt}},
            {"name": "sec-create", "secret": {"secretName": "new-sec", **opt}},
            {"name": "sec-update", "secret": {"secretName": "upd-sec", **opt}},
            {"name": "sec-delete", "secret": {"secretName": "del-sec", **opt}},
            {"name": "pcm-create", "projected": {"sources": [{"configMap": {"name": "new-cm", **opt}}]}},
            {"name": "pcm-delete", "projected": {"sources": [{"configMap": {"name": "del-cm", **opt}}]}},
            {"name": "psec-create", "projected": {"sources": [{"secret": {"name": "new-sec", **opt}}]}},
            {"name": "psec-update", "projected": {"sources": [{"secret": {"name": "upd-sec", **opt}}]}},
            {"name": "psec-delete", "projected": {"sources": [{"secret": {"name": "del-sec", **opt}}]}}]
    mounts = [{"name": v["name"], "mountPath": f"/etc/{v['name']}"} for v in vols]
    create_pod(node, ns, "updates", [ctr("main", "sleep 3600", volumeMounts=mounts)], restart="Always",
               volumes=vols, metadata={"labels": {"key1": "value1"}, "annotations": {"builder": "bar"}})
    wait_pod(node, ns, "updates", running, what="Running")

    def cat_all() -> dict[str, str]:
        script = "; ".join(f'echo "{v["name"]}=$(cat /etc/{v["name"]}/data-1 2>/dev/null)"'
                           for v in vols if "dapi" not in v["name"])
        return kv(node.kubectl("exec", "-n", ns, "updates", "--", "sh", "-c", script).stdout)

    first = node.kubectl("exec", "-n", ns, "updates", "--", "sh", "-c",
                         "cat /etc/dapi/labels; echo; cat /etc/pdapi/annotations").stdout
    assert 'key1="value1"' in first and 'builder="bar"' in first
    before = cat_all()
    assert before["cm"] == before["pcm"] == "value-1"
    assert before["cm-create"] == before["sec-create"] == before["pcm-create"] == before["psec-create"] == ""
    assert before["cm-delete"] == before["sec-delete"] == before["psec-delete"] == "value-1"
    assert before["sec-update"] == before["psec-update"] == "value-1"

    node.kubectl("patch", "configmap", "upd", "-n", ns, "-p", '{"data":{"data-1":"value-2"}}')
    node.kubectl("patch", "secret", "upd-sec", "-n", ns, "-p",
                 json.dumps({"data": {"data-1": base64.b64encode(b"value-3").decode()}}))
    node.kubectl("create", "configmap", "new-cm", "-n", ns, "--from-literal=data-1=value-1")
    node.kubectl("create", "secret", "generic", "new-sec", "-n", ns, "--from-literal=data-1=value-1")
    node.kubectl("delete", "configmap", "del-cm", "-n", ns)
    node.kubectl("delete", "secret", "del-sec", "-n", ns)
    node.kubectl("label", "pod", "updates", "-n", ns, "key3=value3", "--overwrite")
    node.kubectl("annotate", "pod", "updates", "-n", ns, "builder=foo", "--overwrite")

    want = {"cm": "value-2", "pcm": "value-2", "cm-create": "value-1", "sec-create": "value-1",
            "pcm-create": "value-1", "psec-create": "value-1", "cm-delete": "", "sec-delete": "",
            "pcm-delete": "", "psec-delete": "", "sec-update": "value-3", "psec-update": "value-3"}
    deadline = time.time() + 120
    now: dict[str, str] = {}
    while time.time() < deadline:
        now = cat_all()
        if all(now.get(k) == v for k, v in want.items()):
            break
        time.sleep(1)
    assert {k: now.get(k) for k in want} == want
    wait_exec(node, ns, "updates", "main", "cat /etc/dapi/labels; echo; cat /etc/pdapi/labels",
              lambda o: o.count('key3="value3"') == 2)
    wait_exec(node, ns, "updates", "main", "cat /etc/dapi/annotations; echo; cat /etc/pdapi/annotations",
              lambda o: o.count('builder="foo"') == 2)


# ---- environment ------------------------------------------------------------------------------------

@pytest.mark.conformance("DownwardAPI, environment for name, namespace and ip")
@pytest.mark.conformance("DownwardAPI, environment for host ip")
@pytest.mark.conformance("DownwardAPI, environment for Pod UID")
@pytest.mark.conformance("DownwardAPI, environment for CPU and memory limits and requests")
@pytest.mark.conformance("DownwardAPI, environment for default CPU and memory limits and requests")
@pytest.mark.conformance("ConfigMap, from environment field")
@pytest.mark.conformance("ConfigMap, from environment variables")
@pytest.mark.conformance("Secrets, pod environment field")
@pytest.mark.conformance("Secrets, pod environment from source")
@pytest.mark.conformance("Environment variables, expansion")
@pytest.mark.conformance("Environment variables, command expansion")
@pytest.mark.conformance("Environment variables, command argument expansion")
def test_container_environment(node: Cluster, ns: str):
    node.kubectl("create", "configmap", "cm", "-n", ns, "--from-literal=data-1=value-1",
                 "--from-literal=data-2=value-2")
    node.kubectl("create", "secret", "generic", "sec", "-n", ns, "--from-literal=data-1=secret-1",
                 "--from-literal=data-2=secret-2")

    def field(path: str) -> dict:
        return {"valueFrom": {"fieldRef": {"fieldPath": path}}}

    def res(c: str, r: str) -> dict:
        return {"valueFrom": {"resourceFieldRef": {"containerName": c, "resource": r}}}

    env = [{"name": "POD_NAME", **field("metadata.name")}, {"name": "POD_NAMESPACE", **field("metadata.namespace")},
           {"name": "POD_IP", **field("status.podIP")}, {"name": "HOST_IP", **field("status.hostIP")},
           {"name": "POD_UID", **field("metadata.uid")},
           {"name": "CPU_LIMIT", **res("main", "limits.cpu")}, {"name": "MEMORY_LIMIT", **res("main", "limits.memory")},
           {"name": "CPU_REQUEST", **res("main", "requests.cpu")},
           {"name": "MEMORY_REQUEST", **res("main", "requests.memory")},
           {"name": "DEFAULT_CPU_LIMIT", **res("", "limits.cpu")},
           {"name": "DEFAULT_MEMORY_LIMIT", **res("", "limits.memory")},
           {"name": "CM_VALUE", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "data-1"}}},
           {"name": "SECRET_DATA", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "data-1"}}},
           {"name": "FOO", "value": "foo-value"}, {"name": "BAR", "value": "bar-value"},
           {"name": "FOOBAR", "value": "$(FOO);;$(BAR)"}, {"name": "ESCAPED", "value": "$$(FOO)"},
           {"name": "UNKNOWN", "value": "$(NOPE)"}, {"name": "TEST_VAR", "value": "test-value"}]
    res_main = {"requests": {"cpu": "250m", "memory": "32Mi"}, "limits": {"cpu": "1250m", "memory": "64Mi"}}
    # `env` runs directly: busybox sh would drop the variables whose names are not shell identifiers
    main = {"name": "main", "image": BUSYBOX, "command": ["env"],
            "env": env, "resources": res_main,
            "envFrom": [{"configMapRef": {"name": "cm"}}, {"secretRef": {"name": "sec"}, "prefix": "p_"}]}
    dflt = {"name": "defaults", "image": BUSYBOX, "command": ["sh", "-c"], "args": ["echo ARG=$(TEST_VAR); env"],
            "env": [{"name": "TEST_VAR", "value": "test-value"}, {"name": "DEFAULT_CPU_LIMIT", **res("", "limits.cpu")},
                    {"name": "DEFAULT_MEMORY_LIMIT", **res("", "limits.memory")},
                    {"name": "DEFAULT_CPU_REQUEST", **res("", "requests.cpu")},
                    {"name": "DEFAULT_MEMORY_REQUEST", **res("", "requests.memory")}]}
    cmd = {"name": "cmd", "image": BUSYBOX, "command": ["/bin/echo", "CMD=$(TEST_VAR)"],
           "env": [{"name": "TEST_VAR", "value": "test-value"}]}
    create_pod(node, ns, "envpod", [main, dflt, cmd])
    pod = finished(node, ns, "envpod")
    out = kv(logs(node, ns, "envpod"))
    st = pod["status"]
    assert out["POD_NAME"] == "envpod" and out["POD_NAMESPACE"] == ns
    assert out["POD_IP"] == st["podIP"] and out["HOST_IP"] == st["hostIP"] and st["hostIP"]
    assert out["POD_UID"] == pod["metadata"]["uid"]
    assert (out["CPU_LIMIT"], out["MEMORY_LIMIT"]) == ("2", str(64 * 1024 * 1024))  # 1250m rounds up
    assert (out["CPU_REQUEST"], out["MEMORY_REQUEST"]) == ("1", str(32 * 1024 * 1024))
    assert out["CM_VALUE"] == "value-1" and out["data-1"] == "value-1" and out["data-2"] == "value-2"
    assert out["SECRET_DATA"] == "secret-1" and out["p_data-1"] == "secret-1" and out["p_data-2"] == "secret-2"
    assert out["FOOBAR"] == "foo-value;;bar-value" and out["ESCAPED"] == "$(FOO)" and out["UNKNOWN"] == "$(NOPE)"
    assert kv(logs(node, ns, "envpod", "cmd")) == {"CMD": "test-value"}
    alloc = node_allocatable(node)
    d = kv(logs(node, ns, "envpod", "defaults"))
    assert d["ARG"] == "test-value"
    assert int(d["DEFAULT_CPU_LIMIT"]) == int(quantity(alloc["cpu"]) + 0.999)
    assert int(d["DEFAULT_MEMORY_LIMIT"]) == int(quantity(alloc["memory"]))
    assert d["DEFAULT_CPU_REQUEST"] == "0" and d["DEFAULT_MEMORY_REQUEST"] == "0"


@pytest.mark.conformance("Pods, service environment variables")
def test_service_environment_variables(node: Cluster, ns: str):
    create_pod(node, ns, "server", [ctr("main", "sleep 3600", ports=[{"containerPort": 8080}])],
               restart="Always", metadata={"labels": {"name": "fooservice"}})
    apply(node, ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fooservice"},
                     "spec": {"selector": {"name": "fooservice"},
                              "ports": [{"port": 8765, "targetPort": 8080}]}})
    ip = json.loads(node.kubectl("get", "svc", "fooservice", "-n", ns, "-o", "json").stdout)["spec"]["clusterIP"]
    create_pod(node, ns, "client", [ctr("main", "env")])
    finished(node, ns, "client")
    out = kv(logs(node, ns, "client"))
    assert {k: out.get(k) for k in ("FOOSERVICE_SERVICE_HOST", "FOOSERVICE_SERVICE_PORT", "FOOSERVICE_PORT",
                                    "FOOSERVICE_PORT_8765_TCP_PORT", "FOOSERVICE_PORT_8765_TCP_PROTO",
                                    "FOOSERVICE_PORT_8765_TCP", "FOOSERVICE_PORT_8765_TCP_ADDR")} == {
        "FOOSERVICE_SERVICE_HOST": ip, "FOOSERVICE_SERVICE_PORT": "8765", "FOOSERVICE_PORT": f"tcp://{ip}:8765",
        "FOOSERVICE_PORT_8765_TCP_PORT": "8765", "FOOSERVICE_PORT_8765_TCP_PROTO": "tcp",
        "FOOSERVICE_PORT_8765_TCP": f"tcp://{ip}:8765", "FOOSERVICE_PORT_8765_TCP_ADDR": ip}


# ---- command and args -------------------------------------------------------------------------------

@pytest.mark.conformance("Containers, without command and arguments")
@pytest.mark.conformance("Containers, with arguments")
@pytest.mark.conformance("Containers, with command")
@pytest.mark.conformance("Containers, with command and arguments")
def test_image_entrypoint_versus_pod_command(node: Cluster, ns: str):
    cases = {"neither": {}, "args": {"args": ["override", "arguments"]},
             "command": {"command": ["/bin/echo", "cmd"]},
             "both": {"command": ["/bin/echo", "cmd"], "args": ["override", "arguments"]}}
    for name, extra in cases.items():
        create_pod(node, ns, name, [{"name": "main", "image": ENTRY_IMAGE, "imagePullPolicy": "Never", **extra}])
    want = {"neither": "entry default-arg", "args": "entry override arguments", "command": "cmd",
            "both": "cmd override arguments"}
    for name, text in want.items():
        finished(node, ns, name)
        assert logs(node, ns, name).strip() == text


# ---- emptyDir and hostPath --------------------------------------------------------------------------

EMPTYDIR_CASES = [(medium, mode, user) for medium in ("", "Memory") for mode in ("0644", "0666", "0777")
                  for user in (0, 1001)]


@pytest.mark.conformance("EmptyDir, medium default, volume mode 0644")
@pytest.mark.conformance("EmptyDir, medium default, volume mode 0666")
@pytest.mark.conformance("EmptyDir, medium default, volume mode 0777")
@pytest.mark.conformance("EmptyDir, medium memory, volume mode 0644")
@pytest.mark.conformance("EmptyDir, medium memory, volume mode 0666")
@pytest.mark.conformance("EmptyDir, medium memory, volume mode 0777")
@pytest.mark.conformance("EmptyDir, medium memory, volume mode 0644, non-root user")
@pytest.mark.conformance("EmptyDir, medium memory, volume mode 0666,, non-root user")
@pytest.mark.conformance("EmptyDir, medium memory, volume mode 0777, non-root user")
@pytest.mark.conformance("EmptyDir, medium default, volume mode default")
@pytest.mark.conformance("EmptyDir, medium memory, volume mode default")
@pytest.mark.conformance("EmptyDir, Shared volumes between containers")
def test_emptydir_modes_media_and_sharing(node: Cluster, ns: str):
    vols = [{"name": "disk", "emptyDir": {}}, {"name": "mem", "emptyDir": {"medium": "Memory"}}]
    containers = []
    for i, (medium, mode, user) in enumerate(EMPTYDIR_CASES):
        d = "/mem" if medium else "/disk"
        f = f"{d}/file-{i}"
        script = (f'echo "content-{i}" > {f} && chmod {mode} {f} && echo "mode=$(stat -c %A {f})" && '
                  f'echo "content=$(cat {f})" && echo "fstype=$(stat -f -c %T {d})" && '
                  f'echo "dirmode=$(stat -c %A {d})" && echo "uid=$(id -u)"')
        containers.append(ctr(f"c{i}", script, volumeMounts=[{"name": "mem" if medium else "disk", "mountPath": d}],
                              securityContext={"runAsUser": user}))
    containers.append(ctr("writer", "echo shared-data > /shared/file"))
    containers.append(ctr("reader", "while [ ! -s /data/file ]; do sleep 0.2; done; cat /data/file"))
    containers[-2]["volumeMounts"] = [{"name": "disk", "mountPath": "/shared"}]
    containers[-1]["volumeMounts"] = [{"name": "disk", "mountPath": "/data"}]
    create_pod(node, ns, "emptydir", containers, volumes=vols)
    finished(node, ns, "emptydir", timeout=90)
    perm = {"0644": "-rw-r--r--", "0666": "-rw-rw-rw-", "0777": "-rwxrwxrwx"}
    for i, (medium, mode, user) in enumerate(EMPTYDIR_CASES):
        out = kv(logs(node, ns, "emptydir", f"c{i}"))
        assert out["uid"] == str(user) and out["content"] == f"content-{i}"
        assert out["mode"] == perm[mode], (medium, mode, user, out)
        assert out["dirmode"] == "drwxrwxrwx"
        assert (out["fstype"] == "tmpfs") == bool(medium), out
    assert logs(node, ns, "emptydir", "reader").strip() == "shared-data"


# ---- termination messages, restarts, init containers -------------------------------------------------

@pytest.mark.conformance("Container Runtime, TerminationMessage, from log output of succeeding container")
@pytest.mark.conformance("Container Runtime, TerminationMessage, from file of succeeding container")
@pytest.mark.conformance("Container Runtime, TerminationMessage, from container's log output of failing container")
@pytest.mark.conformance("Container Runtime, TerminationMessagePath, non-root user and non-default path")
def test_termination_messages(node: Cluster, ns: str):
    create_pod(node, ns, "log-ok", [ctr("main", "echo OK", terminationMessagePolicy="FallbackToLogsOnError")])
    create_pod(node, ns, "file-ok", [ctr("main", "echo -n OK > /dev/termination-log; echo from-log",
                                         terminationMessagePolicy="FallbackToLogsOnError")])
    create_pod(node, ns, "log-fail", [ctr("main", "echo DONE; exit 1",
                                          terminationMessagePolicy="FallbackToLogsOnError")])
    create_pod(node, ns, "custom", [ctr("main", "echo -n DONE > /dev/termination-custom-log",
                                        terminationMessagePath="/dev/termination-custom-log",
                                        securityContext={"runAsUser": 1000})])
    for name, want_phase, msg in (("log-ok", "Succeeded", None), ("file-ok", "Succeeded", "OK"),
                                  ("log-fail", "Failed", "DONE\n"), ("custom", "Succeeded", "DONE")):
        pod = finished(node, ns, name, want_phase)
        term = cstatus(pod)["state"]["terminated"]
        assert term.get("message") == msg, (name, term)


@pytest.mark.conformance("Container Runtime, Restart Policy, Pod Phases")
def test_restart_policies(node: Cluster, ns: str):
    create_pod(node, ns, "always", [ctr("main", "exit 0")], restart="Always")
    create_pod(node, ns, "onfailure-fail", [ctr("main", "exit 1")], restart="OnFailure")
    create_pod(node, ns, "onfailure-ok", [ctr("main", "exit 0")], restart="OnFailure")
    create_pod(node, ns, "never", [ctr("main", "exit 1")], restart="Never")
    pod = finished(node, ns, "onfailure-ok")
    assert cstatus(pod)["restartCount"] == 0
    pod = finished(node, ns, "never", "Failed")
    assert cstatus(pod)["restartCount"] == 0 and cstatus(pod)["state"]["terminated"]["exitCode"] == 1
    for name in ("always", "onfailure-fail"):
        pod = wait_pod(node, ns, name, lambda p: cstatus(p).get("restartCount", 0) >= 1, 60, "restarted")
        assert phase(pod) == "Running"
    for name in ("onfailure-ok", "never"):  # still not restarted
        assert cstatus(get_pod(node, ns, name))["restartCount"] == 0


@pytest.mark.conformance("init-container-starts-app-restartnever-pod")
@pytest.mark.conformance("init-container-starts-app-restartalways-pod")
@pytest.mark.conformance("init-container-fails-stops-app-restartnever-pod")
@pytest.mark.conformance("init-container-fails-stops-app-restartalways-pod")
def test_init_containers(node: Cluster, ns: str):
    inits = [ctr("init1", "true"), ctr("init2", "true")]
    create_pod(node, ns, "never-ok", [ctr("main", "true")], initContainers=inits)
    create_pod(node, ns, "always-ok", [ctr("main", "sleep 3600")], restart="Always", initContainers=inits)
    create_pod(node, ns, "never-fail", [ctr("main", "true")], initContainers=[ctr("init1", "false"), inits[1]])
    create_pod(node, ns, "always-fail", [ctr("main", "sleep 3600")], restart="Always",
               initContainers=[ctr("init1", "false"), inits[1]])

    pod = finished(node, ns, "never-ok")
    for c in ("init1", "init2"):
        t = cstatus(pod, c, init=True)["state"]["terminated"]
        assert t["exitCode"] == 0 and t["reason"] == "Completed"
    assert cstatus(pod)["state"]["terminated"]["exitCode"] == 0 and cstatus(pod)["restartCount"] == 0
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Initialized"] == "True"

    pod = wait_pod(node, ns, "always-ok", running, what="Running")
    assert all(cstatus(pod, c, init=True)["state"]["terminated"]["exitCode"] == 0 for c in ("init1", "init2"))

    pod = finished(node, ns, "never-fail", "Failed")
    assert cstatus(pod, "init1", init=True)["state"]["terminated"]["exitCode"] == 1
    assert "waiting" in cstatus(pod, "init2", init=True)["state"] and "waiting" in cstatus(pod)["state"]
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Initialized"] == "False"

    pod = wait_pod(node, ns, "always-fail", lambda p: cstatus(p, "init1", init=True).get("restartCount", 0) >= 2,
                   90, "restarted init1 twice")
    assert phase(pod) == "Pending" and "waiting" in cstatus(pod)["state"]
    assert cstatus(pod)["restartCount"] == 0 and "waiting" in cstatus(pod, "init2", init=True)["state"]
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Initialized"] == "False"


# ---- kubelet behaviours -----------------------------------------------------------------------------

@pytest.mark.conformance("Kubelet, log output, default")
@pytest.mark.conformance("Kubelet, failed pod, terminated reason")
@pytest.mark.conformance("Kubelet, failed pod, delete")
@pytest.mark.conformance("Kubelet, pod with read only root file system")
@pytest.mark.conformance("Kubelet, hostAliases")
def test_kubelet_basics(node: Cluster, ns: str):
    create_pod(node, ns, "logger", [ctr("main", "echo 'Hello World'; echo to-stderr >&2")])
    create_pod(node, ns, "failing", [ctr("main", "/bin/false")])
    create_pod(node, ns, "readonly", [ctr("main", "echo test > /file; echo rc=$?; sleep 1",
                                          securityContext={"readOnlyRootFilesystem": True})])
    create_pod(node, ns, "aliases", [ctr("main", "cat /etc/hosts")],
               hostAliases=[{"ip": "123.45.67.89", "hostnames": ["foo", "bar"]}])
    finished(node, ns, "logger")
    # stdout and stderr are two pipes: their relative order in the log is not defined
    assert sorted(logs(node, ns, "logger").splitlines()) == ["Hello World", "to-stderr"]
    pod = finished(node, ns, "failing", "Failed")
    assert len(pod["spec"]["containers"]) == 1
    term = cstatus(pod)["state"]["terminated"]
    assert term["reason"] == "Error" and term["exitCode"] == 1
    node.kubectl("delete", "pod", "failing", "-n", ns, "--wait=true", "--timeout=60s")
    assert node.kubectl("get", "pod", "failing", "-n", ns, check=False).returncode != 0
    finished(node, ns, "readonly")
    out = logs(node, ns, "readonly")
    assert "Read-only file system" in out and "rc=1" in out
    finished(node, ns, "aliases")
    assert any(line.split() == ["123.45.67.89", "foo", "bar"] for line in logs(node, ns, "aliases").splitlines())


@pytest.mark.conformance("Kubelet, managed etc hosts")
def test_managed_etc_hosts(node: Cluster, ns: str):
    managed = "# Kubernetes-managed hosts file."
    show_hosts = "cat /etc/hosts; echo; echo ---; sleep 3600"
    create_pod(node, ns, "test-pod", [ctr("busybox-1", show_hosts), ctr("busybox-2", show_hosts),
                                      ctr("busybox-3", show_hosts, volumeMounts=[{"name": "host-etc-hosts",
                                                                                  "mountPath": "/etc/hosts"}])],
               restart="Always", volumes=[{"name": "host-etc-hosts",
                                           "hostPath": {"path": "/etc/hosts", "type": "File"}}])
    create_pod(node, ns, "test-host-network-pod", [ctr("busybox-1", show_hosts), ctr("busybox-2", show_hosts)],
               restart="Always", hostNetwork=True)
    wait_pod(node, ns, "test-pod", running, what="Running")
    wait_pod(node, ns, "test-host-network-pod", running, what="Running")

    def hosts(pod: str, c: str) -> str:
        return node.kubectl("exec", "-n", ns, pod, "-c", c, "--", "cat", "/etc/hosts").stdout

    with open("/etc/hosts") as f:
        host_hosts = f.read()
    for c in ("busybox-1", "busybox-2"):
        assert hosts("test-pod", c).startswith(managed)
        assert not hosts("test-host-network-pod", c).startswith(managed)
    assert hosts("test-pod", "busybox-3") == host_hosts


# ---- security context -------------------------------------------------------------------------------

@pytest.mark.conformance("Security Context, runAsUser=65534")
@pytest.mark.conformance("Security Context, test RunAsGroup at container level")
@pytest.mark.conformance("Security Context, test RunAsGroup at pod level")
@pytest.mark.conformance("Security Context, privileged=false.")
@pytest.mark.conformance("Security Context, readOnlyRootFilesystem=false.")
def test_security_contexts(node: Cluster, ns: str):
    ids = 'echo "uid=$(id -u) gid=$(id -g)"'
    create_pod(node, ns, "user", [ctr("main", ids, securityContext={"runAsUser": 65534})])
    create_pod(node, ns, "group-ctr", [ctr("main", ids, securityContext={"runAsUser": 1001, "runAsGroup": 2002})])
    create_pod(node, ns, "group-pod", [ctr("main", ids)], securityContext={"runAsUser": 1001, "runAsGroup": 2002})
    create_pod(node, ns, "unprivileged", [ctr("main", "ip link add dummy0 type dummy || echo refused",
                                              securityContext={"privileged": False})])
    create_pod(node, ns, "writable", [ctr("main", "echo data > /file && cat /file",
                                          securityContext={"readOnlyRootFilesystem": False})])
    for name, want in (("user", "uid=65534 gid=65534"), ("group-ctr", "uid=1001 gid=2002"),
                       ("group-pod", "uid=1001 gid=2002"), ("writable", "data")):
        finished(node, ns, name)
        assert logs(node, ns, name).strip() == want, name
    finished(node, ns, "unprivileged")
    assert "refused" in logs(node, ns, "unprivileged")


# ---- subPath and subPathExpr ------------------------------------------------------------------------

@pytest.mark.conformance("SubPath: Reading content from a configmap volume.")
@pytest.mark.conformance("SubPath: Reading content from a secret volume.")
@pytest.mark.conformance("SubPath: Reading content from a downwardAPI volume.")
@pytest.mark.conformance("SubPath: Reading content from a projected volume.")
def test_subpath_of_atomic_writer_volumes(node: Cluster, ns: str):
    node.kubectl("create", "configmap", "my-configmap", "-n", ns, "--from-literal=configmap-key=configmap-value")
    node.kubectl("create", "secret", "generic", "my-secret", "-n", ns, "--from-literal=secret-key=secret-value")
    vols = [{"name": "cm", "configMap": {"name": "my-configmap"}},
            {"name": "sec", "secret": {"secretName": "my-secret"}},
            {"name": "dapi", "downwardAPI": {"items": [{"path": "downward/podname",
                                                        "fieldRef": {"fieldPath": "metadata.name"}}]}},
            {"name": "proj", "projected": {"sources": [{"secret": {"name": "my-secret"}}]}}]
    mounts = [{"name": "cm", "mountPath": "/test-volume", "subPath": "configmap-key"},
              {"name": "cm", "mountPath": "/etc/cm-file", "subPath": "configmap-key"},  # a file path as mountPath
              {"name": "sec", "mountPath": "/test-secret", "subPath": "secret-key"},
              {"name": "dapi", "mountPath": "/test-downward", "subPath": "downward"},
              {"name": "proj", "mountPath": "/test-projected", "subPath": "secret-key"}]
    script = ('echo "cm=$(cat /test-volume)"; echo "cmfile=$(cat /etc/cm-file)"; echo "sec=$(cat /test-secret)"; '
              'echo "dapi=$(cat /test-downward/podname)"; echo "proj=$(cat /test-projected)"')
    create_pod(node, ns, "subpaths", [ctr("main", script, volumeMounts=mounts)], volumes=vols)
    finished(node, ns, "subpaths")
    assert kv(logs(node, ns, "subpaths")) == {"cm": "configmap-value", "cmfile": "configmap-value",
                                              "sec": "secret-value", "dapi": "subpaths", "proj": "secret-value"}


def _expansion_pod(node: Cluster, ns: str, name: str, script: str, env: list[dict], **kw) -> None:
    mounts = [{"name": "workdir1", "mountPath": "/logscontainer", "subPathExpr": "$(POD_NAME)"},
              {"name": "workdir1", "mountPath": "/testcontainer"}]
    create_pod(node, ns, name, [ctr("main", script, env=env, volumeMounts=mounts)],
               volumes=[{"name": "workdir1", "emptyDir": {}}], **kw)


def config_error(pod: dict) -> bool:
    return (cstatus(pod).get("state") or {}).get("waiting", {}).get("reason") == "CreateContainerConfigError"


@pytest.mark.conformance("VolumeSubpathEnvExpansion, subpath expansion")
@pytest.mark.conformance("VolumeSubpathEnvExpansion, subpath with absolute path")
@pytest.mark.conformance("VolumeSubpathEnvExpansion, subpath with backticks")
def test_subpath_expr_expansion(node: Cluster, ns: str):
    pod_name = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    _expansion_pod(node, ns, "expand", "touch /logscontainer/test.log && ls /testcontainer/expand", pod_name)
    _expansion_pod(node, ns, "absolute", "true", [{"name": "POD_NAME", "value": "/tmp"}])
    _expansion_pod(node, ns, "backticks", "true", [{"name": "POD_NAME", "value": ".."}])
    finished(node, ns, "expand")
    assert logs(node, ns, "expand").split() == ["test.log"]
    for name in ("absolute", "backticks"):
        pod = wait_pod(node, ns, name, config_error, what="CreateContainerConfigError")
        assert phase(pod) == "Pending" and not cstatus(pod).get("ready")


@pytest.mark.conformance("VolumeSubpathEnvExpansion, subpath test writes")
@pytest.mark.conformance("VolumeSubpathEnvExpansion, subpath ready from failed state")
def test_subpath_expr_writes_and_recovery(node: Cluster, ns: str):
    annotation = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['mysubpath']"}}}]
    _expansion_pod(node, ns, "writes", "sleep 3600", annotation, restart="Always",
                   metadata={"annotations": {"mysubpath": "mypath/foo"}})
    _expansion_pod(node, ns, "recovers", "sleep 3600", annotation, restart="Always",
                   metadata={"annotations": {"notmysubpath": "mypath"}})
    wait_pod(node, ns, "writes", running, what="Running")
    node.kubectl("exec", "-n", ns, "writes", "--", "touch", "/logscontainer/test.log")
    node.kubectl("exec", "-n", ns, "writes", "--", "test", "-f", "/testcontainer/mypath/foo/test.log")
    node.kubectl("exec", "-n", ns, "writes", "--", "sh", "-c", "echo hi > /testcontainer/mypath/foo/other.log")
    assert node.kubectl("exec", "-n", ns, "writes", "--", "cat", "/logscontainer/other.log").stdout == "hi\n"
    # a failing expansion (the annotation is missing) keeps the container out; adding it lets it start
    wait_pod(node, ns, "recovers", config_error, what="CreateContainerConfigError")
    node.kubectl("annotate", "pod", "recovers", "-n", ns, "mysubpath=mypath")
    wait_pod(node, ns, "recovers", running, 90, what="Running after the annotation was added")
    node.kubectl("delete", "pod", "writes", "recovers", "-n", ns, "--wait=true", "--timeout=60s")


@pytest.mark.conformance("Secrets Volume, volume mode 0440, fsGroup 1001 and uid 1000")
@pytest.mark.conformance("Project Volume, Secrets, non-root, custom fsGroup")
def test_secret_volumes_with_fsgroup(node: Cluster, ns: str):
    node.kubectl("create", "secret", "generic", "sec", "-n", ns, "--from-literal=data-1=value-1")
    vols = [{"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o440}},
            {"name": "proj", "projected": {"sources": [{"secret": {"name": "sec"}}], "defaultMode": 0o440}}]
    mounts = [{"name": "sec", "mountPath": "/etc/sec"}, {"name": "proj", "mountPath": "/etc/proj"}]
    script = "; ".join(['echo "ids=$(id -u) $(id -G)"', show("sec", "/etc/sec/data-1"), show("proj", "/etc/proj/data-1"),
                        'echo "gid=$(stat -L -c %g /etc/sec/data-1) $(stat -L -c %g /etc/proj/data-1)"'])
    create_pod(node, ns, "fsgroup", [ctr("main", script, volumeMounts=mounts)], volumes=vols,
               securityContext={"runAsUser": 1000, "fsGroup": 1001})
    finished(node, ns, "fsgroup")
    out = kv(logs(node, ns, "fsgroup"))
    uid, *groups = out["ids"].split()
    assert uid == "1000" and "1001" in groups
    assert out["sec"] == out["proj"] == "value-1|-r--r-----"
    assert out["gid"] == "1001 1001"


@pytest.mark.conformance("Pods, remote command execution over websocket")
def test_exec_over_websocket(node: Cluster, ns: str):
    from kubernetes import client
    from kubernetes.stream import stream

    create_pod(node, ns, "ws-exec", [ctr("main", "sleep 3600")], restart="Always")
    wait_pod(node, ns, "ws-exec", running, what="Running")
    core = client.CoreV1Api(node.api_client())
    out = stream(core.connect_get_namespaced_pod_exec, "ws-exec", ns, command=["echo", "remote execution test"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "remote execution test\n"


# ---- probes and lifecycle hooks ---------------------------------------------------------------------

def _probe(kind: str, **kw) -> dict:
    handler = {"exec": {"exec": {"command": ["cat", "/tmp/health"]}},
               "tcp": {"tcpSocket": {"port": 8080}},
               "http": {"httpGet": {"path": "/healthz", "port": 8080}},
               "http-root": {"httpGet": {"path": "/", "port": 8080}}}[kind]
    return {**handler, "initialDelaySeconds": 1, "periodSeconds": 1, "failureThreshold": 1, **kw}


HTTPD = "mkdir -p /www && echo ok > /www/healthz && echo ok > /www/index.html && "


@pytest.mark.conformance("Pod liveness probe, using local file, restart")
@pytest.mark.conformance("Pod liveness probe, using local file, no restart")
@pytest.mark.conformance("Pod liveness probe, using tcp socket, no restart")
@pytest.mark.conformance("Pod liveness probe, using http endpoint, restart")
@pytest.mark.conformance("Pod liveness probe, using http endpoint, failure")
@pytest.mark.conformance("Pod readiness probe, with initial delay")
@pytest.mark.conformance("Pod readiness probe, failure")
def test_probes(node: Cluster, ns: str):
    pods = {
        "file-restart": ctr("main", "touch /tmp/health; sleep 3; rm -f /tmp/health; sleep 600",
                            livenessProbe=_probe("exec")),
        "file-ok": ctr("main", "touch /tmp/health; sleep 600", livenessProbe=_probe("exec")),
        "tcp-ok": ctr("main", HTTPD + "rm /www/healthz; httpd -f -p 8080 -h /www", livenessProbe=_probe("tcp")),
        "http-restart": ctr("main", HTTPD + "(sleep 3; rm /www/healthz) & httpd -f -p 8080 -h /www",
                            livenessProbe=_probe("http")),
        "http-ok": ctr("main", HTTPD + "httpd -f -p 8080 -h /www", livenessProbe=_probe("http-root")),
        "ready-delay": ctr("main", "sleep 600", readinessProbe={"exec": {"command": ["true"]},
                                                               "initialDelaySeconds": 5, "periodSeconds": 1}),
        "ready-fail": ctr("main", "sleep 600", readinessProbe={"exec": {"command": ["false"]}, "periodSeconds": 1}),
    }
    for name, c in pods.items():
        create_pod(node, ns, name, [c], restart="Always")
    for name in ("file-restart", "http-restart"):
        pod = wait_pod(node, ns, name, lambda p: cstatus(p).get("restartCount", 0) >= 1, 60, "restarted")
        assert "terminated" in cstatus(pod)["lastState"], pod["status"]
    pod = wait_pod(node, ns, "ready-delay", lambda p: cstatus(p).get("ready") is True, 60, "Ready")
    started = cstatus(pod)["state"]["running"]["startedAt"]
    became_ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")["lastTransitionTime"]
    from datetime import datetime

    def ts(s: str) -> float:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

    assert ts(became_ready) - ts(started) >= 5, (started, became_ready)
    assert cstatus(pod)["restartCount"] == 0
    # the pods whose probes succeed (or only gate readiness) ran as long, through many probe periods
    for name in ("file-ok", "tcp-ok", "http-ok", "ready-fail"):
        pod = get_pod(node, ns, name)
        assert cstatus(pod)["restartCount"] == 0, (name, pod["status"])
        assert cstatus(pod)["ready"] is (name != "ready-fail"), name
    conds = {c["type"]: c["status"] for c in get_pod(node, ns, "ready-fail")["status"]["conditions"]}
    assert conds["Ready"] == "False" and conds["ContainersReady"] == "False"


@pytest.mark.conformance("Pod Lifecycle, post start exec hook")
@pytest.mark.conformance("Pod Lifecycle, post start http hook")
@pytest.mark.conformance("Pod Lifecycle, prestop exec hook")
@pytest.mark.conformance("Pod Lifecycle, prestop http hook")
@pytest.mark.conformance("Pods, prestop hook")
def test_lifecycle_hooks(node: Cluster, ns: str):
    pages = "for f in poststart-exec poststart-http prestop-exec prestop-http; do echo ok > /www/$f; done; "
    create_pod(node, ns, "handler", [ctr("main", HTTPD + pages + "httpd -f -vv -p 8080 -h /www")],
               restart="Always")
    ip = wait_pod(node, ns, "handler", running, what="Running")["status"]["podIP"]

    def exec_hook(msg: str) -> dict:
        return {"exec": {"command": ["sh", "-c", f"wget -qO- http://{ip}:8080/{msg}"]}}

    def http_hook(msg: str) -> dict:
        return {"httpGet": {"host": ip, "port": 8080, "path": f"/{msg}"}}

    create_pod(node, ns, "hook-exec", [ctr("main", "sleep 600", lifecycle={
        "postStart": exec_hook("poststart-exec"), "preStop": exec_hook("prestop-exec")})], restart="Always")
    create_pod(node, ns, "hook-http", [ctr("main", "sleep 600", lifecycle={
        "postStart": http_hook("poststart-http"), "preStop": http_hook("prestop-http")})], restart="Always")

    def seen(msg: str) -> None:
        deadline = time.time() + 30
        while msg not in logs(node, ns, "handler"):
            assert time.time() < deadline, f"{msg} never reached the handler:\n{logs(node, ns, 'handler')}"
            time.sleep(0.5)

    for name in ("hook-exec", "hook-http"):
        wait_pod(node, ns, name, running, what="Running")
    seen("url:/poststart-exec")
    seen("url:/poststart-http")
    assert "prestop" not in logs(node, ns, "handler")
    node.kubectl("delete", "pod", "hook-exec", "hook-http", "-n", ns, "--wait=true", "--timeout=60s")
    seen("url:/prestop-exec")
    seen("url:/prestop-http")
