"""A private containerd for the node, started as a child process as k3s does.

Own root, state and socket under DATA_DIR/containerd, the CRI plugin told where the CNI
configuration lives and which sandbox (pause) image to use. Stopping containerd leaves the
containers' shims running: a restarted containerd (and kubelet) picks them up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
from dataclasses import dataclass

log = logging.getLogger(__name__)

@dataclass
class ContainerdPaths:
    base: str  # DATA_DIR/containerd

    @property
    def config(self) -> str:
        return os.path.join(self.base, "config.toml")

    @property
    def root(self) -> str:
        return os.path.join(self.base, "root")

    @property
    def state(self) -> str:
        return os.path.join(self.base, "state")

    @property
    def socket(self) -> str:
        """Under the data dir, unless that is too long for a unix socket (104 bytes here, with
        containerd's ".ttrpc" suffix): then under /run/kubelite, named by a hash of the data dir."""
        path = os.path.join(self.base, "containerd.sock")
        if len(path) + len(".ttrpc") <= 100:
            return path
        return f"/run/kubelite/{hashlib.sha256(self.base.encode()).hexdigest()[:16]}/containerd.sock"

    @property
    def log(self) -> str:
        return os.path.join(self.base, "containerd.log")

    @property
    def certs_dir(self) -> str:
        """containerd's registry `config_path`: one HOST[:PORT]/hosts.toml per configured registry."""
        return os.path.join(self.base, "certs.d")


def render_hosts_toml(registry: str) -> str:
    """containerd's hosts.toml for a registry served over plain HTTP (k3s writes the same for a
    registries.yaml mirror whose endpoint is http://): resolve and pull from http://HOST[:PORT]."""
    return f"""# written by kubelite for --insecure-registry {registry}; regenerated on every start
server = "http://{registry}"

[host."http://{registry}"]
  capabilities = ["pull", "resolve"]
"""


def write_registry_hosts(paths: ContainerdPaths, registries: list[str] | tuple[str, ...]) -> None:
    """certs.d/HOST[:PORT]/hosts.toml for exactly `registries` (stale ones from earlier starts removed)."""
    os.makedirs(paths.certs_dir, mode=0o755, exist_ok=True)
    want = set(registries)
    for name in os.listdir(paths.certs_dir):
        if name not in want:
            shutil.rmtree(os.path.join(paths.certs_dir, name), ignore_errors=True)
    for reg in registries:
        d = os.path.join(paths.certs_dir, reg)
        os.makedirs(d, mode=0o755, exist_ok=True)
        with open(os.path.join(d, "hosts.toml"), "w") as f:
            f.write(render_hosts_toml(reg))


def render_config(paths: ContainerdPaths, *, sandbox_image: str, cni_bin_dir: str, cni_conf_dir: str) -> str:
    """containerd 1.6+ (config version 2) with the CRI plugin on runc and overlayfs, cgroupfs driver."""
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""# written by kubelite; regenerated on every start
version = 2
root = {q(paths.root)}
state = {q(paths.state)}

[grpc]
  address = {q(paths.socket)}

[ttrpc]
  address = {q(paths.socket + ".ttrpc")}

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = {q(os.path.join(paths.root, "opt"))}

[{cri}]
  sandbox_image = {q(sandbox_image)}
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true  # never below containerd's own (unprivileged hosts refuse lower)
  max_container_log_line_size = 16384

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
  discard_unpacked_layers = false

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = {q(cni_bin_dir)}
  conf_dir = {q(cni_conf_dir)}
  max_conf_num = 1

[{cri}.registry]
  config_path = {q(paths.certs_dir)}
"""


class Containerd:
    """The child containerd: `await start()` returns once its CRI answers; `await stop()`."""

    def __init__(self, base_dir: str, *, sandbox_image: str, cni_bin_dir: str, cni_conf_dir: str,
                 insecure_registries: tuple[str, ...] = ()):
        self.paths = ContainerdPaths(base_dir)
        self.insecure_registries = insecure_registries
        self.sandbox_image = sandbox_image
        self.cni_bin_dir = cni_bin_dir
        self.cni_conf_dir = cni_conf_dir
        self.proc: asyncio.subprocess.Process | None = None
        self._log = None

    @property
    def endpoint(self) -> str:
        return "unix://" + self.paths.socket

    async def start(self, timeout: float = 30.0) -> None:
        from kubelite.runtime.cri.client import CRIError, RuntimeClient

        p = self.paths
        for d in (p.base, p.root, p.state, self.cni_conf_dir, os.path.dirname(p.socket)):
            os.makedirs(d, mode=0o711, exist_ok=True)
        write_registry_hosts(p, self.insecure_registries)
        with open(p.config, "w") as f:
            f.write(render_config(p, sandbox_image=self.sandbox_image, cni_bin_dir=self.cni_bin_dir,
                                  cni_conf_dir=self.cni_conf_dir))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p.socket)
        self._log = open(p.log, "ab")
        self.proc = await asyncio.create_subprocess_exec(
            shutil.which("containerd") or "containerd", "--config", p.config,
            stdin=asyncio.subprocess.DEVNULL, stdout=self._log, stderr=self._log, start_new_session=True)
        log.info("started containerd (pid %d), socket %s, log %s", self.proc.pid, p.socket, p.log)
        client = RuntimeClient(self.endpoint)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"containerd exited with {self.proc.returncode}: {self.log_tail()}")
                if os.path.exists(p.socket):
                    try:
                        await client.version(timeout=2)
                        return
                    except CRIError:
                        pass
                if loop.time() > deadline:
                    raise RuntimeError(f"containerd did not answer within {timeout:.0f}s: {self.log_tail()}")
                await asyncio.sleep(0.05)
        finally:
            await client.close()

    def log_tail(self, n: int = 5) -> str:
        try:
            with open(self.paths.log, errors="replace") as f:
                return " | ".join(line.strip() for line in f.readlines()[-n:])
        except OSError:
            return ""

    async def stop(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        sock_dir = os.path.dirname(self.paths.socket)
        if sock_dir != self.paths.base:  # the short-path socket directory under /run/kubelite
            for name in ("containerd.sock", "containerd.sock.ttrpc"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(sock_dir, name))
            with contextlib.suppress(OSError):
                os.rmdir(sock_dir)
