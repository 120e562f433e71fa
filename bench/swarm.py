"""Docker Engine in swarm mode beside kubelite, for `bench/pods.py --vs-swarm`.

A private dockerd (its own data root, exec root, pid file and socket, its own managed containerd),
swarm initialised on 127.0.0.1, the same busybox root filesystem `docker import`ed; on exit it
leaves the swarm, stops dockerd, and removes the bridges and DOCKER iptables chains it made.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator

IMAGE = "localhost/busybox:1"
DOCKER_CHAINS = {"filter": ("DOCKER", "DOCKER-USER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2",
                            "DOCKER-INGRESS"),
                 "nat": ("DOCKER", "DOCKER-INGRESS")}
DOCKER_BRIDGES = ("docker0", "docker_gwbridge")


class Swarm:
    def __init__(self, base: str):
        self.base = base
        self.sock = os.path.join(base, "docker.sock")
        self.proc: subprocess.Popen | None = None

    def docker(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(["docker", "-H", "unix://" + self.sock, *args], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def running_tasks(self, service: str) -> int:
        out = self.docker("service", "ps", service, "--filter", "desired-state=running", "--format",
                          "{{.CurrentState}}", check=False)
        return sum(1 for line in out.splitlines() if line.startswith("Running"))

    def wait_running(self, service: str, count: int, timeout: float = 600, poll: float = 0.25) -> None:
        deadline = time.time() + timeout
        while self.running_tasks(service) < count:
            if time.time() > deadline:
                raise TimeoutError(f"swarm service {service}: fewer than {count} tasks running after {timeout}s")
            time.sleep(poll)

    def wait_updated(self, service: str, timeout: float = 900, poll: float = 0.25) -> None:
        deadline = time.time() + timeout
        while True:
            state = self.docker("service", "inspect", service, "--format",
                                "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", check=False).strip()
            if state == "completed":
                return
            if state in ("paused", "rollback_completed") or time.time() > deadline:
                raise RuntimeError(f"swarm update of {service} ended {state or 'nowhere'}")
            time.sleep(poll)

    def rss_kib(self) -> int:
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration, AttributeError):
            return 0


def _cleanup_network() -> None:
    for table, chains in DOCKER_CHAINS.items():
        for chain in chains:  # unhook from the built-in chains, then flush and delete
            rules = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True).stdout
            for rule in rules.splitlines():
                parts = rule.split()
                if parts[:1] == ["-A"] and "-j" in parts and parts[parts.index("-j") + 1] == chain \
                        and not parts[1].startswith("DOCKER"):
                    subprocess.run(["iptables", "-t", table, "-D", *parts[1:]], capture_output=True)
            subprocess.run(["iptables", "-t", table, "-F", chain], capture_output=True)
        for chain in chains:
            subprocess.run(["iptables", "-t", table, "-X", chain], capture_output=True)
    # the FORWARD and MASQUERADE rules dockerd adds for its bridges
    for table, chain in (("filter", "FORWARD"), ("nat", "POSTROUTING")):
        rules = subprocess.run(["iptables", "-t", table, "-S", chain], capture_output=True, text=True).stdout
        for rule in rules.splitlines():
            if rule.startswith("-A") and any(b in rule.split() for b in DOCKER_BRIDGES):
                subprocess.run(["iptables", "-t", table, "-D", *rule.split()[1:]], capture_output=True)
    for bridge in DOCKER_BRIDGES:
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True)


@contextlib.contextmanager
def swarm(rootfs_tar: str) -> Iterator[Swarm]:
    """A started single-node swarm with `rootfs_tar` imported as IMAGE."""
    if shutil.which("dockerd") is None:
        raise RuntimeError("dockerd not found (apt-get install docker.io)")
    for bridge in DOCKER_BRIDGES:
        if os.path.exists(f"/sys/class/net/{bridge}"):
            raise RuntimeError(f"{bridge} exists: another Docker Engine runs here; stop it first")
    base = tempfile.mkdtemp(prefix="kubelite-swarm-")
    s = Swarm(base)
    log = open(os.path.join(base, "dockerd.log"), "ab")
    s.proc = subprocess.Popen(["dockerd", "--data-root", os.path.join(base, "data"), "--exec-root",
                               os.path.join(base, "exec"), "--pidfile", os.path.join(base, "docker.pid"),
                               "--host", "unix://" + s.sock, "--storage-driver=overlay2"],
                              stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.time() + 60
        while subprocess.run(["docker", "-H", "unix://" + s.sock, "info"], capture_output=True).returncode != 0:
            if s.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"dockerd did not start; see {base}/dockerd.log")
            time.sleep(0.3)
        s.docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")
        s.docker("import", "--change", "CMD [\"/bin/sh\"]", rootfs_tar, IMAGE)
        yield s
    finally:
        with contextlib.suppress(Exception):
            for name in s.docker("service", "ls", "-q", check=False).split():
                s.docker("service", "rm", name, check=False)
            s.docker("swarm", "leave", "--force", check=False)
        if s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
            try:
                s.proc.wait(60)
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait()
        log.close()
        _cleanup_network()
        # dockerd's leftovers: netns mounts under the exec root, overlay mounts under the data root
        with open("/proc/self/mounts") as f:
            mounts = [line.split()[1] for line in f if base in line.split()[1]]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
