"""Pulling from a private registry: given a local registry (Debian's docker-registry on the node's
address, plain HTTP, htpasswd basic auth) holding the busybox image and a node started with `--insecure-registry`,
a pod whose imagePullSecrets name a `kubectl create secret docker-registry` Secret pulls and runs the
image, while the same pod without the secret, or with credentials for another registry, gets
ErrImagePull then ImagePullBackOff worded as upstream's kubelet."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.conftest import Cluster
from tests.images import node_namespace, real_node
from tests.test_kubelet_pods import cstatus, get_pod, pod_manifest, running, wait_pod

pytestmark = [pytest.mark.root, pytest.mark.containerd]

USER, PASSWORD = "puller", "s3cret-pw"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """docker-registry serving ADDRESS:PORT with basic auth; `push_busybox` uploads an image."""

    def __init__(self, directory: str, address: str = "127.0.0.1"):
        self.dir = directory
        self.address = address
        self.port = _free_port()
        self.host = f"{address}:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        htpasswd = os.path.join(self.dir, "htpasswd")
        r = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True)
        with open(htpasswd, "w") as f:
            f.write(r.stdout)
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                    f"    rootdirectory: {self.dir}/data\nhttp:\n  addr: {self.host}\n  secret: kubelite-test\n"
                    f"auth:\n  htpasswd:\n    realm: kubelite-test\n    path: {htpasswd}\n")
        self.log = open(os.path.join(self.dir, "registry.log"), "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", config], stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while True:
            try:
                with socket.create_connection((self.address, self.port), 0.5):
                    return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"docker-registry did not start: {self.log_text()}") from None
                time.sleep(0.1)

    def log_text(self) -> str:
        with open(os.path.join(self.dir, "registry.log"), errors="replace") as f:
            return f.read()[-3000:]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()

    def _request(self, method: str, url: str, data: bytes | None = None,
                 content_type: str = "application/octet-stream") -> urllib.request.http.client.HTTPResponse:
        if not url.startswith("http"):
            url = f"http://{self.host}{url}"
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
        if data is not None:
            req.add_header("Content-Type", content_type)
        return urllib.request.urlopen(req, timeout=30)

    def _push_blob(self, repo: str, blob: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        with self._request("POST", f"/v2/{repo}/blobs/uploads/", b"") as resp:
            location = resp.headers["Location"]
        sep = "&" if "?" in location else "?"
        with self._request("PUT", f"{location}{sep}digest={digest}", blob) as resp:
            assert resp.status == 201, resp.status
        return digest

    def push_busybox(self, repo: str, tag: str) -> None:
        """The tests' busybox image as a Docker v2 schema 2 manifest with one gzipped layer."""
        from kubelite.runtime import images

        layer = images.busybox_layer()
        config = images.image_config(layer, ["/bin/sh"])
        layer_gz = gzip.compress(layer, mtime=0)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                       "digest": self._push_blob(repo, config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer_gz),
                        "digest": self._push_blob(repo, layer_gz)}],
        }
        with self._request("PUT", f"/v2/{repo}/manifests/{tag}", json.dumps(manifest).encode(),
                           manifest["mediaType"]) as resp:
            assert resp.status == 201, resp.status


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    for binary, package in (("docker-registry", "docker-registry"), ("htpasswd", "apache2-utils")):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} not found (apt-get install {package})")
    from kubelite.apiserver.pki import primary_ip

    # on the node's own address rather than loopback: containerd already speaks plain HTTP to
    # localhost registries, so only a non-loopback one shows that --insecure-registry is honoured
    reg = Registry(str(tmp_path_factory.mktemp("registry")), primary_ip() or "127.0.0.1")
    reg.start()
    try:
        reg.push_busybox("kubelite/busybox", "1")
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, registry: Registry):
    with real_node(tmp_path_factory, extra_args=["--insecure-registry", registry.host]) as c:
        yield c


@pytest.fixture
def ns(node: Cluster):
    with node_namespace(node, "reg-") as name:
        yield name


def test_registry_refuses_anonymous_pulls(registry: Registry):
    """The premise: without credentials the registry answers 401, so a pull that works used the secret."""
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://{registry.host}/v2/kubelite/busybox/manifests/1", timeout=10)
    assert e.value.code == 401


def test_pull_with_image_pull_secret_runs_the_pod(node: Cluster, ns: str, registry: Registry):
    r = node.kubectl("create", "secret", "docker-registry", "regcred", "-n", ns, f"--docker-server={registry.host}",
                     f"--docker-username={USER}", f"--docker-password={PASSWORD}")
    assert r.stdout.strip() == "secret/regcred created"
    image = f"{registry.host}/kubelite/busybox:1"
    c = [{"name": "main", "image": image, "imagePullPolicy": "Always", "command": ["sleep", "3600"]}]
    node.kubectl("apply", "-n", ns, "-f", "-",
                 input=pod_manifest("private", [], containers=c, imagePullSecrets=[{"name": "regcred"}]))
    pod = wait_pod(node, ns, "private", running, timeout=90, what="Running")
    cs = cstatus(pod)
    assert cs["image"] == image and cs["imageID"].startswith(f"{registry.host}/kubelite/busybox@sha256:")
    events = node.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=private").stdout
    assert f'Successfully pulled image "{image}"' in events
    assert node.kubectl("exec", "-n", ns, "private", "--", "echo", "hi").stdout == "hi\n"


def _wait_pull_failures(node: Cluster, ns: str, name: str) -> dict[str, str]:
    """reason -> message of the container's waiting states seen until both pull failures showed."""
    seen: dict[str, str] = {}
    deadline = time.time() + 60
    while time.time() < deadline and set(seen) != {"ErrImagePull", "ImagePullBackOff"}:
        pod = get_pod(node, ns, name)
        w = (cstatus(pod).get("state") or {}).get("waiting") or {}
        if w.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
            seen[w["reason"]] = w.get("message", "")
        time.sleep(0.2)
    assert set(seen) == {"ErrImagePull", "ImagePullBackOff"}, seen
    assert get_pod(node, ns, name)["status"]["phase"] == "Pending"
    return seen


@pytest.mark.parametrize("secret_server", [None, "127.0.0.1:1"], ids=["no-secret", "secret-for-another-registry"])
def test_pull_without_matching_credentials_fails(node: Cluster, ns: str, registry: Registry,
                                                 secret_server: str | None):
    image = f"{registry.host}/kubelite/busybox:1"
    spec: dict = {}
    if secret_server:
        node.kubectl("create", "secret", "docker-registry", "othercred", "-n", ns, f"--docker-server={secret_server}",
                     f"--docker-username={USER}", f"--docker-password={PASSWORD}")
        spec["imagePullSecrets"] = [{"name": "othercred"}]
    c = [{"name": "main", "image": image, "imagePullPolicy": "Always", "command": ["sleep", "3600"]}]
    node.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("denied", [], containers=c, **spec))
    seen = _wait_pull_failures(node, ns, "denied")
    # containerd's words after upstream's "rpc error: code = ... desc = "; the back-off repeats them
    assert seen["ErrImagePull"].startswith("rpc error: code = Unknown desc = failed to pull and unpack image "
                                           f'"{image}"'), seen
    assert "401 Unauthorized" in seen["ErrImagePull"], seen
    assert seen["ImagePullBackOff"] == f'Back-off pulling image "{image}": ErrImagePull: {seen["ErrImagePull"]}'
    row = node.kubectl("get", "pod", "denied", "-n", ns, "--no-headers").stdout.split()
    assert row[1] == "0/1" and row[2] in ("ErrImagePull", "ImagePullBackOff")
    events = node.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=denied").stdout
    assert f'Failed to pull image "{image}": rpc error: code = Unknown desc = failed to pull and unpack' in events
    assert "Error: ErrImagePull" in events and "Error: ImagePullBackOff" in events


def test_missing_pull_secret_is_reported_and_pull_attempted(node: Cluster, ns: str, registry: Registry):
    image = f"{registry.host}/kubelite/busybox:1"
    c = [{"name": "main", "image": image, "imagePullPolicy": "Always", "command": ["sleep", "3600"]}]
    node.kubectl("apply", "-n", ns, "-f", "-",
                 input=pod_manifest("nosecret", [], containers=c, imagePullSecrets=[{"name": "absent"}]))
    _wait_pull_failures(node, ns, "nosecret")
    events = node.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=nosecret").stdout
    assert ("Unable to retrieve some image pull secrets (absent); attempting to pull the image may not succeed."
            in events)
