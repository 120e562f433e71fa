"""The `kubelite` command: given a data dir, when a user runs `kubelite up|status|down|kubeconfig` and then
the real kubectl, then they observe a reachable, authenticated cluster and sensible lifecycle messages."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KUBECTL = os.environ.get("KUBECTL", "kubectl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Env:
    """A private HOME and data dir; runs `python -m kubelite` and kubectl inside them."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.data_dir = tmp_path / "data"
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        self.env["HOME"] = str(self.home)
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)

    def kubelite(self, *args: str, check: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "kubelite", *args], capture_output=True, text=True,
                              env=env or self.env, cwd=REPO, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubelite {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def up(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`kubelite up` with one simulated node unless a node flag is given (no containerd started here)."""
        if "--kubelet" not in args and "--simulated-nodes" not in args:
            args = (*args, "--simulated-nodes", "1")
        return self.kubelite("up", "--data-dir", str(self.data_dir), "--port", str(self.port), *args, check=check)

    def kubectl(self, *args: str, kubeconfig=None, env: dict | None = None) -> subprocess.CompletedProcess:
        pre = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
        return subprocess.run([KUBECTL, *pre, *args], capture_output=True, text=True, env=env or self.env,
                              stdin=subprocess.DEVNULL, timeout=60)

    def pid(self) -> int | None:
        try:
            return int((self.data_dir / "kubelite.pid").read_text())
        except FileNotFoundError:
            return None

    def ca_only_kubeconfig(self) -> str:
        """A kubeconfig that trusts the cluster CA but carries no credentials."""
        ca = base64.b64encode((self.data_dir / "tls" / "ca.crt").read_bytes()).decode()
        path = self.tmp / "anonymous.kubeconfig"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "anon",
            "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{self.port}",
                                                   "certificate-authority-data": ca}}],
            "users": [{"name": "anon", "user": {}}],
            "contexts": [{"name": "anon", "context": {"cluster": "c", "user": "anon"}}],
        }))
        return str(path)

    def https_get(self, path: str, headers: dict | None = None) -> tuple[int, str]:
        """GET without a client certificate, trusting the cluster CA."""
        ctx = ssl.create_default_context(cafile=str(self.data_dir / "tls" / "ca.crt"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def cleanup(self) -> None:
        pid = self.pid()
        self.kubelite("down", "--data-dir", str(self.data_dir), "--timeout", "5")
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.cleanup()


def whoami(env: Env, *args: str, kubeconfig=None) -> dict | None:
    """`kubectl auth whoami -o json`, or None when the server does not serve SelfSubjectReview yet."""
    r = env.kubectl("auth", "whoami", "-o", "json", *args, kubeconfig=kubeconfig)
    if r.returncode != 0 and ("not found" in r.stderr.lower() or "not enabled" in r.stderr.lower()):
        return None
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["status"]["userInfo"]


def test_up_writes_standalone_kubeconfig_that_kubectl_uses(env):
    kc = env.tmp / "kc"
    r = env.up("--kubeconfig", str(kc))
    assert "kubectl --kubeconfig" in r.stdout and "get nodes" in r.stdout

    assert stat.S_IMODE(os.stat(kc).st_mode) == 0o600
    config = yaml.safe_load(kc.read_text())
    assert config["current-context"] == "kubelite"
    assert config["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{env.port}"
    assert set(config["users"][0]["user"]) == {"client-certificate-data", "client-key-data"}
    assert not (env.home / ".kube").exists(), "a standalone kubeconfig must leave ~/.kube alone"

    r = env.kubectl("get", "--raw", "/readyz", kubeconfig=kc)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    user = whoami(env, kubeconfig=kc)
    if user is not None:
        assert user["username"] == "admin"
        assert "system:masters" in user["groups"] and "system:authenticated" in user["groups"]

    for key in ("ca.key", "server.key", "admin.key"):
        assert stat.S_IMODE(os.stat(env.data_dir / "tls" / key).st_mode) == 0o600


def test_request_without_credentials_is_unauthorized_except_health(env):
    env.up("--kubeconfig", str(env.tmp / "kc"))
    anon = env.ca_only_kubeconfig()

    # kubectl always sends some credentials (it prompts for a password without any): ask over plain HTTPS
    code, body = env.https_get("/api")
    assert code == 401
    assert json.loads(body) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": "Unauthorized", "reason": "Unauthorized", "code": 401}

    # upstream's system:public-info-viewer paths stay open to anonymous clients (load balancers, probes)
    for path in ("/readyz", "/livez", "/healthz"):
        assert env.https_get(path) == (200, "ok")

    # but a wrong token is refused even there
    r = env.kubectl("--token", "not-a-token", "get", "--raw", "/readyz", kubeconfig=anon)
    assert r.returncode != 0
    assert "error: You must be logged in to the server (Unauthorized)" in r.stderr
    assert env.https_get("/readyz", headers={"Authorization": "Bearer not-a-token"})[0] == 401


def test_bearer_token_from_token_file(env):
    tokens = env.tmp / "tokens.csv"
    tokens.write_text('secret-token-1,alice,uid-alice,"dev,qa"\nsecret-token-2,bob,uid-bob\n')
    env.up("--kubeconfig", str(env.tmp / "kc"), "--token-auth-file", str(tokens))
    anon = env.ca_only_kubeconfig()

    r = env.kubectl("--token", "secret-token-1", "get", "--raw", "/api", kubeconfig=anon)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["kind"] == "APIVersions"

    user = whoami(env, "--token", "secret-token-1", kubeconfig=anon)
    if user is not None:
        assert user["username"] == "alice"
        assert user["uid"] == "uid-alice"
        assert user["groups"] == ["dev", "qa", "system:authenticated"]

    r = env.kubectl("--token", "secret-token-3", "get", "--raw", "/api", kubeconfig=anon)
    assert r.returncode != 0 and "Unauthorized" in r.stderr


def test_up_merges_into_home_kubeconfig_keeping_other_contexts(env):
    kube = env.home / ".kube"
    kube.mkdir()
    existing = {
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "other", "cluster": {"server": "https://other.example:6443"}}],
        "users": [{"name": "other", "user": {"token": "t"}}],
        "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other", "namespace": "x"}}],
    }
    (kube / "config").write_text(yaml.safe_dump(existing))
    os.chmod(kube / "config", 0o600)

    r = env.up()
    assert str(kube / "config") in r.stdout

    config = yaml.safe_load((kube / "config").read_text())
    assert config["current-context"] == "kubelite"
    assert {c["name"] for c in config["contexts"]} == {"other", "kubelite"}
    assert next(c for c in config["contexts"] if c["name"] == "other")["context"]["namespace"] == "x"
    assert stat.S_IMODE(os.stat(kube / "config").st_mode) == 0o600

    r = env.kubectl("config", "get-contexts", "-o", "name")
    assert sorted(r.stdout.split()) == ["kubelite", "other"]
    r = env.kubectl("get", "--raw", "/readyz")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr

    # a second up replaces our entries instead of adding duplicates
    env.up()
    config = yaml.safe_load((kube / "config").read_text())
    assert [c["name"] for c in config["contexts"]] == ["other", "kubelite"]


def test_up_creates_kubeconfig_named_by_KUBECONFIG(env):
    first, second = env.tmp / "first.yaml", env.tmp / "second.yaml"
    e = dict(env.env, KUBECONFIG=f"{first}{os.pathsep}{second}")
    r = env.kubelite("up", "--data-dir", str(env.data_dir), "--port", str(env.port), "--simulated-nodes", "0",
                     env=e, check=True)
    assert str(first) in r.stdout
    assert stat.S_IMODE(os.stat(first).st_mode) == 0o600
    assert not second.exists() and not (env.home / ".kube").exists()
    r = env.kubectl("get", "--raw", "/readyz", env=e)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_status_and_down(env):
    data = str(env.data_dir)
    r = env.kubelite("status", "--data-dir", data)
    assert r.returncode == 3 and "not running" in r.stdout

    env.up("--kubeconfig", str(env.tmp / "kc"))
    pid = env.pid()
    r = env.kubelite("status", "--data-dir", data)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"pid:      {pid}" in r.stdout
    assert f"https://127.0.0.1:{env.port}" in r.stdout
    assert "readyz:   ok" in r.stdout

    r = env.kubelite("down", "--data-dir", data)
    assert r.returncode == 0 and f"stopped (pid {pid})" in r.stdout
    assert env.pid() is None
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z"

    r = env.kubelite("status", "--data-dir", data)
    assert r.returncode == 3 and "not running" in r.stdout
    r = env.kubelite("down", "--data-dir", data)
    assert r.returncode == 0 and "not running" in r.stdout


def test_second_up_on_same_data_dir_is_harmless(env):
    kc = env.tmp / "kc"
    env.up("--kubeconfig", str(kc))
    pid = env.pid()
    kc.unlink()

    r = env.up("--kubeconfig", str(kc))
    assert "already running" in r.stdout and str(pid) in r.stdout
    assert env.pid() == pid
    r = env.kubectl("get", "--raw", "/readyz", kubeconfig=kc)  # the kubeconfig was written again
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_up_reports_a_server_that_dies_during_start(env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", env.port))
        busy.listen()
        r = env.up("--kubeconfig", str(env.tmp / "kc"), check=False)
    assert r.returncode != 0
    assert "exited" in r.stderr and "address already in use" in r.stderr
    assert env.pid() is None
    assert not (env.tmp / "kc").exists()


def test_pki_is_reused_on_restart_and_serving_cert_follows_tls_sans(env):
    tls = env.data_dir / "tls"
    env.up("--kubeconfig", str(env.tmp / "kc"))
    ca, server, admin = ((tls / n).read_bytes() for n in ("ca.crt", "server.crt", "admin.crt"))
    env.kubelite("down", "--data-dir", str(env.data_dir), check=True)

    env.up("--kubeconfig", str(env.tmp / "kc"))
    assert (tls / "ca.crt").read_bytes() == ca
    assert (tls / "server.crt").read_bytes() == server
    assert (tls / "admin.crt").read_bytes() == admin
    env.kubelite("down", "--data-dir", str(env.data_dir), check=True)

    env.up("--kubeconfig", str(env.tmp / "kc"), "--tls-san", "api.kubelite.test")
    assert (tls / "ca.crt").read_bytes() == ca
    assert (tls / "server.crt").read_bytes() != server
    san = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(tls / "server.crt")],
                         capture_output=True, text=True)
    if san.returncode == 0:
        for name in ("DNS:api.kubelite.test", "DNS:kubernetes.default.svc.cluster.local", "IP Address:10.43.0.1"):
            assert name in san.stdout
    r = env.kubectl("get", "--raw", "/readyz", kubeconfig=env.tmp / "kc")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_kubeconfig_command_prints_admin_kubeconfig(env):
    env.up("--kubeconfig", str(env.tmp / "kc"))
    r = env.kubelite("kubeconfig", "--data-dir", str(env.data_dir), check=True)
    printed = env.tmp / "printed"
    printed.write_text(r.stdout)
    r = env.kubectl("get", "--raw", "/readyz", kubeconfig=printed)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr



def test_up_without_node_flags_gives_a_node(env):
    """`kubelite up` then `kubectl get nodes` shows a Ready node: the real one when this host can run it
    (root, containerd, runc, CNI plugins), else one simulated node, and up says why."""
    import time

    from kubelite.runtime.requirements import missing_requirements

    real = os.geteuid() == 0 and not missing_requirements("/usr/lib/cni")
    bridge = "kla" + str(env.port)
    r = env.kubelite("up", "--data-dir", str(env.data_dir), "--port", str(env.port), "--kubeconfig",
                     str(env.tmp / "kc"), "--kubelet-port", "0", "--cni-bridge", bridge,
                     "--cluster-cidr", "10.251.0.0/16", "--node-name", "auto-node", check=True)
    try:
        if not real:
            assert "running one simulated node instead" in r.stderr, r.stderr
        deadline = time.time() + 120
        while True:
            out = env.kubectl("get", "nodes", "--no-headers", kubeconfig=env.tmp / "kc").stdout.split()
            if len(out) >= 2 and out[1] == "Ready":
                break
            assert time.time() < deadline, (out, (env.data_dir / "kubelite.log").read_text()[-3000:])
            time.sleep(0.3)
        if real:
            assert out[0] == "auto-node", out
    finally:
        if real:
            from tests.images import teardown_node

            class _Stopper:
                data_dir = str(env.data_dir)

                def kubectl(self, *args, **kw):
                    return env.kubectl(*args, kubeconfig=env.tmp / "kc")

                def stop(self):
                    env.kubelite("down", "--data-dir", str(env.data_dir))

            teardown_node(_Stopper(), bridge)
