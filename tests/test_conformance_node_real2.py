"""More upstream conformance behaviours on a real node: given a kubelite with `--kubelet` (containerd via
CRI, CNI bridge), when users add ephemeral containers, read logs (kubectl and a WebSocket), go through
the pods/services/nodes proxy subresources, set sysctls, run probes, mount projected tokens and
ConfigMap/Secret volumes, or serve from ReplicaSet/ReplicationController replicas, then what they
observe is what upstream's e2e tests demand. agnhost is replaced by busybox doing the same (an `nc`
echo server for `porter --json-response`, httpd for serve-hostname and the liveness endpoint)."""

from __future__ import annotations

import base64
import json
import os
import ssl
import time
from datetime import datetime
from urllib.parse import urlparse

import pytest

from tests.conftest import Cluster
from tests.images import BUSYBOX, node_namespace, real_node
from tests.test_kubelet_pods import get_pod, wait_pod

pytestmark = [pytest.mark.root, pytest.mark.containerd]

# agnhost porter --json-response: answers any method on any path with {"Method": M, "Body": $SERVE_BODY}
PORTER = r"""read -r method path proto
len=0
while read -r line; do
  line=$(printf '%s' "$line" | tr -d '\r')
  [ -z "$line" ] && break
  case "$line" in [Cc]ontent-[Ll]ength:*) len=${line#*: };; esac
done
[ "$len" -gt 0 ] 2>/dev/null && head -c "$len" >/dev/null
body="{\"Method\":\"$method\",\"Body\":\"$SERVE_BODY\"}"
printf 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n' \
  "${#body}"
[ "$method" = HEAD ] || printf '%s' "$body"
"""

# agnhost serve-hostname: its pod's name on every path of port 9376
SERVE_HOSTNAME = ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 9376 -h /www"]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    with real_node(tmp_path_factory) as c:
        yield c


@pytest.fixture
def ns(node: Cluster):
    with node_namespace(node, "n2-") as name:
        yield name


@pytest.fixture(scope="module")
def api(node: Cluster):
    return node.api_client()


def apply(node: Cluster, ns: str, obj: dict) -> None:
    node.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


def pod(name: str, containers: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **spec.pop("metadata", {})},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": containers, **spec}}


def ctr(name: str, script: str, **kw) -> dict:
    return {"name": name, "image": BUSYBOX, "command": ["sh", "-c", script], **kw}


def running(p: dict) -> bool:
    return (p.get("status") or {}).get("phase") == "Running" and all(
        "running" in (s.get("state") or {}) for s in p["status"].get("containerStatuses") or [{}])


def wait_running(node: Cluster, ns: str, name: str, timeout: float = 90) -> dict:
    return wait_pod(node, ns, name, running, timeout, "running")


def wait_for(fn, timeout: float = 60, what: str = ""):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(0.3)
    raise AssertionError(f"{what} never happened; last: {last!r}")


def raw_request(node: Cluster, method: str, path: str, body: bytes | None = None) -> tuple[int, dict, bytes]:
    """One HTTPS request with the kubeconfig's client certificate, redirects not followed (as the e2e's
    http.Client with ErrUseLastResponse)."""
    import http.client

    from kubernetes import client as k8s

    cfg = node.api_client().configuration
    assert isinstance(cfg, k8s.Configuration)
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    u = urlparse(cfg.host)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


# ---- ephemeral containers ---------------------------------------------------------------------------

def _target_pod(node: Cluster, ns: str) -> None:
    apply(node, ns, pod("ephemeral-containers-target-pod",
                        [{"name": "test-container-1", "image": BUSYBOX, "command": ["/bin/sleep"], "args": ["10000"]}]))
    wait_running(node, ns, "ephemeral-containers-target-pod")


def _ephemeral_status(node: Cluster, ns: str, name: str) -> dict:
    p = get_pod(node, ns, "ephemeral-containers-target-pod")
    return next((s for s in p["status"].get("ephemeralContainerStatuses") or [] if s["name"] == name), {})


@pytest.mark.conformance("Ephemeral Container Creation")
def test_ephemeral_container_starts_in_an_existing_pod(node: Cluster, ns: str, api):
    from kubernetes import client as k8s

    _target_pod(node, ns)
    core = k8s.CoreV1Api(api)
    # AddEphemeralContainerSync: a strategic merge patch of the ephemeralcontainers subresource
    patch = {"spec": {"ephemeralContainers": [{
        "name": "debugger", "image": BUSYBOX, "command": ["/bin/sh", "-c", "while true; do echo polo; sleep 2; done"],
        "stdin": True, "tty": True}]}}
    core.patch_namespaced_pod_ephemeralcontainers("ephemeral-containers-target-pod", ns, patch,
                                                  _content_type="application/strategic-merge-patch+json")
    wait_for(lambda: "running" in _ephemeral_status(node, ns, "debugger").get("state", {}), 60,
             "the ephemeral container running")
    out = node.kubectl("exec", "-n", ns, "ephemeral-containers-target-pod", "-c", "debugger", "--",
                       "/bin/echo", "marco").stdout
    assert "marco" in out
    wait_for(lambda: "polo" in core.read_namespaced_pod_log("ephemeral-containers-target-pod", ns,
                                                            container="debugger"), 30, "polo in the logs")
    # existing ones cannot be removed
    p = core.read_namespaced_pod("ephemeral-containers-target-pod", ns)
    p.spec.ephemeral_containers = []
    with pytest.raises(k8s.ApiException) as e:
        core.replace_namespaced_pod_ephemeralcontainers("ephemeral-containers-target-pod", ns, p)
    assert e.value.status == 422 and 'existing ephemeral containers \\"debugger\\" may not be removed' in e.value.body


@pytest.mark.conformance("Ephemeral Container, update ephemeral containers")
def test_ephemeral_containers_update_and_kubectl_debug(node: Cluster, ns: str, api):
    from kubernetes import client as k8s

    _target_pod(node, ns)
    core = k8s.CoreV1Api(api)
    # kubectl debug adds one through the same subresource, sharing the target's process namespace
    r = node.kubectl("debug", "-n", ns, "ephemeral-containers-target-pod", f"--image={BUSYBOX}", "-c", "debugger",
                     "--target=test-container-1", "--", "sh", "-c", "while true; do echo polo; sleep 2; done")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "running" in _ephemeral_status(node, ns, "debugger").get("state", {}), 60,
             "the debugger running")
    ps = node.kubectl("exec", "-n", ns, "ephemeral-containers-target-pod", "-c", "debugger", "--", "ps").stdout
    assert "sleep 10000" in ps, ps  # the target container's process is visible
    got = core.read_namespaced_pod_ephemeralcontainers("ephemeral-containers-target-pod", ns)
    assert [c.name for c in got.spec.ephemeral_containers] == ["debugger"]
    # UpdateEphemeralContainers: a PUT of the whole pod with one more
    p = core.read_namespaced_pod("ephemeral-containers-target-pod", ns)
    p.spec.ephemeral_containers.append(k8s.V1EphemeralContainer(
        name="debugger2", image=BUSYBOX, image_pull_policy="IfNotPresent", termination_message_policy="File",
        command=["sleep", "1000"]))
    core.replace_namespaced_pod_ephemeralcontainers("ephemeral-containers-target-pod", ns, p)
    got = core.read_namespaced_pod_ephemeralcontainers("ephemeral-containers-target-pod", ns)
    assert [c.name for c in got.spec.ephemeral_containers] == ["debugger", "debugger2"]
    wait_for(lambda: "running" in _ephemeral_status(node, ns, "debugger2").get("state", {}), 60,
             "debugger2 running")
    # fields an ephemeral container may not have are refused
    p = core.read_namespaced_pod("ephemeral-containers-target-pod", ns)
    p.spec.ephemeral_containers.append(k8s.V1EphemeralContainer(
        name="debugger3", image=BUSYBOX, ports=[k8s.V1ContainerPort(container_port=80)]))
    with pytest.raises(k8s.ApiException) as e:
        core.replace_namespaced_pod_ephemeralcontainers("ephemeral-containers-target-pod", ns, p)
    assert e.value.status == 422
    assert "spec.ephemeralContainers[2].ports: Forbidden: cannot be set for an Ephemeral Container" in e.value.body


# ---- logs ---------------------------------------------------------------------------------------------

@pytest.mark.conformance("Pods, logs from websockets")
def test_logs_over_a_websocket(node: Cluster, ns: str, api):
    import websocket  # websocket-client, which the official client depends on

    apply(node, ns, pod("pod-logs-websocket", [ctr("main", "echo container is alive; sleep 10000")]))
    wait_running(node, ns, "pod-logs-websocket")
    cfg = api.configuration
    url = cfg.host.replace("https://", "wss://") + \
        f"/api/v1/namespaces/{ns}/pods/pod-logs-websocket/log?container=main"
    sslopt = {"ca_certs": cfg.ssl_ca_cert, "certfile": cfg.cert_file, "keyfile": cfg.key_file}
    for protocol, decode in (("binary.k8s.io", bytes), ("base64.binary.k8s.io", base64.b64decode)):
        ws = websocket.create_connection(url, sslopt=sslopt, subprotocols=[protocol], timeout=30)
        buf = b""
        try:
            while True:
                try:
                    msg = ws.recv()
                except websocket.WebSocketConnectionClosedException:
                    break
                if not msg:
                    break
                buf += decode(msg if isinstance(msg, bytes) else msg.encode())
        finally:
            ws.close()
        assert buf == b"container is alive\n", (protocol, buf)


@pytest.mark.conformance("Kubectl, logs")
def test_kubectl_logs_filters(node: Cluster, ns: str):
    # logs-generator: numbered lines over a few seconds, then idle
    gen = "i=0; while [ $i -lt 30 ]; do echo \"$i GET /api/v1/namespaces/kube-system line\"; i=$((i+1)); " \
          "sleep 0.1; done; sleep 10000"
    node.kubectl("run", "logs-generator", "-n", ns, f"--image={BUSYBOX}", "--restart=Never", "--", "sh", "-c", gen)
    wait_running(node, ns, "logs-generator")
    wait_for(lambda: "/api/v1/namespaces/kube-system" in node.kubectl("logs", "-n", ns, "logs-generator",
                                                                      "logs-generator").stdout, 60, "a log line")
    wait_for(lambda: "29 GET" in node.kubectl("logs", "-n", ns, "logs-generator").stdout, 30, "all lines")

    def lines(out: str) -> list[str]:
        return out.rstrip("\n").split("\n")

    out = node.kubectl("logs", "-n", ns, "logs-generator", "logs-generator", "--tail=1").stdout
    assert lines(out) == ["29 GET /api/v1/namespaces/kube-system line"]
    out = node.kubectl("logs", "-n", ns, "logs-generator", "logs-generator", "--limit-bytes=1").stdout
    assert out == "0"
    out = node.kubectl("logs", "-n", ns, "logs-generator", "logs-generator", "--tail=1", "--timestamps").stdout
    words = lines(out)[0].split(" ")
    assert len(lines(out)) == 1 and len(words) > 1
    datetime.fromisoformat(words[0].replace("Z", "+00:00")[:26] + "+00:00")  # RFC 3339
    time.sleep(2.5)  # the lines are now older than one second
    recent = node.kubectl("logs", "-n", ns, "logs-generator", "logs-generator", "--since=1s").stdout
    older = node.kubectl("logs", "-n", ns, "logs-generator", "logs-generator", "--since=24h").stdout
    assert len(recent.split("\n")) < len(older.split("\n")) == 31
    # container selection: a wrong name is refused, -c picks the container
    r = node.kubectl("logs", "-n", ns, "logs-generator", "-c", "nope", check=False)
    assert r.returncode != 0 and "container nope is not valid for pod logs-generator" in r.stderr


# ---- proxy ----------------------------------------------------------------------------------------------

def _porter(node: Cluster, ns: str, labels: dict) -> None:
    node.kubectl("create", "configmap", "porter", "-n", ns, "--from-literal=porter.sh=" + PORTER)
    apply(node, ns, pod("agnhost", [{"name": "agnhost", "image": BUSYBOX,
                                     "command": ["sh", "-c", "SERVE_BODY=foo exec nc -ll -p 80 -e sh /p/porter.sh"],
                                     "volumeMounts": [{"name": "p", "mountPath": "/p"}]}],
                        volumes=[{"name": "p", "configMap": {"name": "porter"}}], restartPolicy="Never",
                        metadata={"labels": labels}))
    wait_running(node, ns, "agnhost")


def _service(node: Cluster, ns: str, name: str, selector: dict, port_name: str = "") -> None:
    port = {"name": port_name} if port_name else {}
    apply(node, ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": selector},
                     "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP",
                                                               **port}]}})


def _verb_ok(node: Cluster, path: str, verb: str) -> bool:
    status, _, body = raw_request(node, verb, path, b"x" if verb in ("POST", "PUT", "PATCH") else None)
    if status != 200:
        return False
    if verb == "HEAD":
        return body == b""
    jr = json.loads(body)
    return jr == {"Method": verb, "Body": "foo"}


@pytest.mark.conformance("Proxy, validate ProxyWithPath responses")
def test_proxy_with_path_all_methods(node: Cluster, ns: str):
    _porter(node, ns, {"test": "response"})
    _service(node, ns, "test-service", {"test": "response"})
    for verb in ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"):
        for kind in ("pods/agnhost", "services/test-service"):
            path = f"/api/v1/namespaces/{ns}/{kind}/proxy/some/path/with/{verb}"
            wait_for(lambda path=path, verb=verb: _verb_ok(node, path, verb), 60, f"{verb} {path}")


@pytest.mark.conformance("Proxy, validate Proxy responses")
def test_proxy_all_methods_and_redirects(node: Cluster, ns: str):
    _porter(node, ns, {"e2e-test": "proxy-endpoints"})
    _service(node, ns, "e2e-proxy-test-service", {"e2e-test": "proxy-endpoints"})
    for kind in ("pods/agnhost", "services/e2e-proxy-test-service"):
        for verb in ("DELETE", "OPTIONS", "PATCH", "POST", "PUT"):
            path = f"/api/v1/namespaces/{ns}/{kind}/proxy?method={verb}"
            wait_for(lambda path=path, verb=verb: _verb_ok(node, path, verb), 60, f"{verb} {path}")
        for verb in ("GET", "HEAD"):  # no path: redirected below .../proxy/
            status, headers, _ = raw_request(node, verb, f"/api/v1/namespaces/{ns}/{kind}/proxy?method={verb}")
            assert status == 301, (verb, kind, status)
            assert headers["Location"] == f"/api/v1/namespaces/{ns}/{kind}/proxy/?method={verb}"
    # name:port and scheme:name:port forms, and a service port by name
    _service(node, ns, "named", {"e2e-test": "proxy-endpoints"}, port_name="portname1")
    for path in (f"/api/v1/namespaces/{ns}/pods/agnhost:80/proxy/", f"/api/v1/namespaces/{ns}/pods/http:agnhost:80/proxy/",
                 f"/api/v1/namespaces/{ns}/services/named:portname1/proxy/",
                 f"/api/v1/namespaces/{ns}/services/http:named:portname1/proxy/"):
        wait_for(lambda path=path: _verb_ok(node, path, "GET"), 60, path)
    out = node.kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/services/named:portname1/proxy/x").stdout
    assert json.loads(out) == {"Method": "GET", "Body": "foo"}


@pytest.mark.conformance("Proxy, logs service endpoint")
def test_node_proxy_logs(node: Cluster):
    for _ in range(5):
        status, _, body = raw_request(node, "GET", f"/api/v1/nodes/{node.node_name}/proxy/logs/")
        assert status == 200 and body.startswith(b"<pre>"), (status, body[:200])
    out = node.kubectl("get", "--raw", f"/api/v1/nodes/{node.node_name}/proxy/logs/").stdout
    some = sorted(os.listdir("/var/log"))[0]
    assert f'<a href="{some}' in out


# ---- sysctls ------------------------------------------------------------------------------------------

@pytest.mark.conformance("Sysctls, reject invalid sysctls")
def test_invalid_sysctls_are_rejected(node: Cluster, ns: str):
    p = pod("sysctl-invalid", [ctr("test-container", "true")], restartPolicy="Never",
            securityContext={"sysctls": [{"name": "foo-", "value": "bar"}, {"name": "kernel.shmmax", "value": "100000000"},
                                         {"name": "safe-and-unsafe", "value": "100000000"}, {"name": "bar..", "value": "42"}]})
    r = node.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(p), check=False)
    assert r.returncode != 0
    assert 'Invalid value: "foo-"' in r.stderr and 'Invalid value: "bar.."' in r.stderr, r.stderr
    assert "safe-and-unsafe" not in r.stderr and "kernel.shmmax" not in r.stderr
    assert "spec.securityContext.sysctls[0].name: Invalid value: \"foo-\": must have at most 253 characters and " \
           "match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$" in r.stderr
    assert node.kubectl("get", "pod", "sysctl-invalid", "-n", ns, check=False).returncode != 0


@pytest.mark.conformance("Sysctl, test sysctls")
def test_safe_sysctls_set_unsafe_forbidden(node: Cluster, ns: str):
    apply(node, ns, pod("sysctl-safe", [ctr("test-container", "sysctl kernel.shm_rmid_forced")], restartPolicy="Never",
                        securityContext={"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}]}))
    p = wait_pod(node, ns, "sysctl-safe", lambda p: p["status"].get("phase") in ("Succeeded", "Failed"), 60, "done")
    assert p["status"]["phase"] == "Succeeded"
    assert "kernel.shm_rmid_forced = 1" in node.kubectl("logs", "-n", ns, "sysctl-safe").stdout
    # not allowlisted: the kubelet rejects the pod before anything runs
    apply(node, ns, pod("sysctl-unsafe", [ctr("test-container", "true")], restartPolicy="Never",
                        securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "10000000000"}]}))
    p = wait_pod(node, ns, "sysctl-unsafe", lambda p: p["status"].get("phase") == "Failed", 60, "rejected")
    assert p["status"]["reason"] == "SysctlForbidden"
    assert p["status"]["message"] == 'Pod was rejected: forbidden sysctl: "kernel.msgmax" not allowlisted'


# ---- security context, probes, volumes -------------------------------------------------------------------

@pytest.mark.conformance("Security Context, allowPrivilegeEscalation=false.")
def test_no_privilege_escalation(node: Cluster, ns: str):
    # busybox has no setuid binary: the kernel's own NoNewPrivs flag says whether escalation is off
    for ape, want in ((False, "1"), (True, "0")):
        name = f"alpine-nnp-{str(ape).lower()}"
        apply(node, ns, pod(name, [ctr("main", "id -u; grep NoNewPrivs /proc/self/status",
                                       securityContext={"runAsUser": 1000, "allowPrivilegeEscalation": ape})],
                            restartPolicy="Never"))
        wait_pod(node, ns, name, lambda p: p["status"].get("phase") == "Succeeded", 60, "succeeded")
        out = node.kubectl("logs", "-n", ns, name).stdout.split()
        assert out[0] == "1000" and out[-1] == want, out


@pytest.mark.slow
@pytest.mark.conformance("Pod liveness probe, using http endpoint, multiple restarts (slow)")
def test_liveness_http_restart_count_increases(node: Cluster, ns: str):
    # agnhost liveness: /healthz is fine for a few seconds after start, then fails
    script = "mkdir -p /www && echo ok > /www/healthz && (sleep 3; rm /www/healthz) & exec httpd -f -p 8080 -h /www"
    apply(node, ns, pod("liveness-http", [ctr("agnhost-container", script, livenessProbe={
        "httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 1, "periodSeconds": 1,
        "failureThreshold": 1})]))
    seen, last = [], 0
    deadline = time.time() + 120
    while time.time() < deadline and last < 2:
        st = get_pod(node, ns, "liveness-http")["status"].get("containerStatuses") or [{}]
        count = st[0].get("restartCount", 0)
        assert count >= last, f"restart count went from {last} to {count}"
        if count != last:
            seen.append(count)
        last = count
        time.sleep(0.5)
    assert last >= 2, seen
    def events() -> str:  # the kubelet writes events in the background: they may trail the restart count
        out = node.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=liveness-http").stdout
        return out if "Liveness probe failed" in out and "Container agnhost-container failed liveness probe" in out \
            else ""

    deadline = time.time() + 30
    while not events() and time.time() < deadline:
        time.sleep(0.5)
    assert events(), node.kubectl("get", "events", "-n", ns).stdout


@pytest.mark.conformance("TokenRequestProjection should mount a projected volume with token using TokenRequest API.")
def test_projected_service_account_token(node: Cluster, ns: str, api):
    from kubernetes import client as k8s

    wait_for(lambda: node.kubectl("get", "sa", "default", "-n", ns, check=False).returncode == 0, 30, "default SA")
    apply(node, ns, pod("pod-service-account-token", [ctr("main", "cat /var/run/secrets/tokens/sa-token; echo; sleep 3600",
                                                          volumeMounts=[{"name": "t", "mountPath": "/var/run/secrets/tokens"}])],
                        volumes=[{"name": "t", "projected": {"sources": [{"serviceAccountToken": {
                            "path": "sa-token", "expirationSeconds": 3600, "audience": "kubelite-test"}}]}}]))
    wait_running(node, ns, "pod-service-account-token")
    token = wait_for(lambda: node.kubectl("logs", "-n", ns, "pod-service-account-token").stdout.strip(), 30, "token")
    assert token.count(".") == 2
    review = k8s.AuthenticationV1Api(api).create_token_review(k8s.V1TokenReview(
        spec=k8s.V1TokenReviewSpec(token=token, audiences=["kubelite-test"])))
    assert review.status.authenticated, review.status
    assert review.status.user.username == f"system:serviceaccount:{ns}:default"
    assert review.status.user.extra["authentication.kubernetes.io/pod-name"] == ["pod-service-account-token"]


def _immutability(node: Cluster, ns: str, api, kind: str) -> None:
    from kubernetes import client as k8s

    core = k8s.CoreV1Api(api)
    body = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "immutable"}, "data": {"k": "djE="}}
    create, read, patch, delete = (
        (core.create_namespaced_config_map, core.read_namespaced_config_map, core.patch_namespaced_config_map,
         core.delete_namespaced_config_map) if kind == "ConfigMap" else
        (core.create_namespaced_secret, core.read_namespaced_secret, core.patch_namespaced_secret,
         core.delete_namespaced_secret))
    if kind == "ConfigMap":
        body["data"] = {"k": "v1"}
    create(ns, body)
    new = "djI=" if kind == "Secret" else "v2"
    patch("immutable", ns, {"data": {"k": new}})
    patch("immutable", ns, {"immutable": True})
    with pytest.raises(k8s.ApiException) as e:
        patch("immutable", ns, {"data": {"k": "djM=" if kind == "Secret" else "v3"}})
    assert e.value.status == 422 and "field is immutable when `immutable` is set" in e.value.body
    with pytest.raises(k8s.ApiException) as e:
        patch("immutable", ns, {"immutable": False})
    assert e.value.status == 422
    patch("immutable", ns, {"metadata": {"labels": {"label1": "value1"}}})
    assert read("immutable", ns).metadata.labels == {"label1": "value1"}
    delete("immutable", ns)
    assert node.kubectl("get", kind.lower(), "immutable", "-n", ns, check=False).returncode != 0


@pytest.mark.conformance("ConfigMap Volume, immutability")
def test_configmap_immutability(node: Cluster, ns: str, api):
    _immutability(node, ns, api, "ConfigMap")


@pytest.mark.conformance("Secrets Volume, immutability")
def test_secret_immutability(node: Cluster, ns: str, api):
    _immutability(node, ns, api, "Secret")


@pytest.mark.conformance("EmptyDir Wrapper Volume, Secret and ConfigMap volumes, no conflict")
def test_secret_and_configmap_volumes_do_not_conflict(node: Cluster, ns: str):
    node.kubectl("create", "secret", "generic", "wrapped-volume-race-secret", "-n", ns, "--from-literal=data-1=value-1")
    node.kubectl("create", "configmap", "wrapped-volume-race-cm", "-n", ns, "--from-literal=data-1=value-1")
    apply(node, ns, pod("pod-secrets", [ctr("secret-test", "cat /etc/secret-volume/data-1 /etc/configmap-volume/data-1; "
                                                           "echo; sleep 3600",
                                            volumeMounts=[{"name": "secret-volume", "mountPath": "/etc/secret-volume"},
                                                          {"name": "configmap-volume",
                                                           "mountPath": "/etc/configmap-volume"}])],
                        volumes=[{"name": "secret-volume", "secret": {"secretName": "wrapped-volume-race-secret"}},
                                 {"name": "configmap-volume", "configMap": {"name": "wrapped-volume-race-cm"}}]))
    wait_running(node, ns, "pod-secrets")
    # (containerd writes a log line once it ends: the echo ends it)
    wait_for(lambda: node.kubectl("logs", "-n", ns, "pod-secrets").stdout == "value-1value-1\n", 30, "both volumes")


@pytest.mark.conformance("EmptyDir Wrapper Volume, ConfigMap volumes, no race")
def test_many_configmap_volumes_no_race(node: Cluster, ns: str):
    # upstream: 50 ConfigMaps in 5 replicas; scaled down to 10 in 3 to stay cheap
    n = 10
    for i in range(n):
        node.kubectl("create", "configmap", f"racey-configmap-{i}", "-n", ns, f"--from-literal=data-1=value-{i}")
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "wrapped-volume-race"},
          "spec": {"replicas": 3, "selector": {"name": "wrapped-volume-race"}, "template": {
              "metadata": {"labels": {"name": "wrapped-volume-race"}},
              "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                  "name": "test-container", "image": BUSYBOX, "command": ["sleep", "10000"],
                  "volumeMounts": [{"name": f"racey-configmap-{i}", "mountPath": f"/etc/config-{i}"} for i in range(n)]}],
                  "volumes": [{"name": f"racey-configmap-{i}", "configMap": {"name": f"racey-configmap-{i}"}}
                              for i in range(n)]}}}}
    apply(node, ns, rc)

    def all_running() -> bool:
        items = json.loads(node.kubectl("get", "pods", "-n", ns, "-l", "name=wrapped-volume-race", "-o",
                                        "json").stdout)["items"]
        return len(items) == 3 and all(running(p) for p in items)

    wait_for(all_running, 120, "3 replicas running")
    events = node.kubectl("get", "events", "-n", ns).stdout
    assert "FailedMount" not in events


def _serve_basic_image(node: Cluster, ns: str, api, kind: str) -> None:
    from kubernetes import client as k8s

    name = f"my-hostname-basic-{kind.lower()[:2]}"
    template = {"metadata": {"labels": {"name": name}}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": name, "image": BUSYBOX, "command": SERVE_HOSTNAME,
                        "ports": [{"containerPort": 9376}]}]}}
    if kind == "ReplicaSet":
        obj = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"name": name}}, "template": template}}
    else:
        obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name},
               "spec": {"replicas": 1, "selector": {"name": name}, "template": template}}
    apply(node, ns, obj)
    core = k8s.CoreV1Api(api)

    def pods() -> list:
        items = core.list_namespaced_pod(ns, label_selector=f"name={name}").items
        return items if len(items) == 1 and all(p.status.phase == "Running" for p in items) else []

    for p in wait_for(pods, 90, "the replica running"):
        # PodProxyResponseChecker: GET pods/<name>/proxy answers the pod's own name
        body = wait_for(lambda p=p: core.connect_get_namespaced_pod_proxy(p.metadata.name, ns), 60, "an answer")
        assert body.strip() == p.metadata.name


@pytest.mark.conformance("Replica Set, run basic image")
def test_replicaset_serves_basic_image(node: Cluster, ns: str, api):
    _serve_basic_image(node, ns, api, "ReplicaSet")


@pytest.mark.conformance("Replication Controller, run basic image")
def test_replication_controller_serves_basic_image(node: Cluster, ns: str, api):
    _serve_basic_image(node, ns, api, "ReplicationController")
