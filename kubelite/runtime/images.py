"""Node images: build small busybox images locally, import tarballs into containerd, list them.

No registry is needed: `build_busybox_image` writes a docker-archive tarball (manifest.json, the
image config, one layer) from the host's static busybox, deterministic so that the same inputs
give the same image ID; `import_image` loads a docker-archive or OCI tarball into the `k8s.io`
namespace, where containerd's CRI plugin (and so the kubelet) sees it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Sequence

K8S_NAMESPACE = "k8s.io"
PAUSE_IMAGE = "localhost/kubelite/pause:1"
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
DEFAULT_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


class ImageError(Exception):
    pass


def find_busybox() -> str:
    """A statically linked busybox on the host (Debian: busybox-static)."""
    for p in BUSYBOX_PATHS:
        if os.access(p, os.X_OK):
            return p
    raise ImageError("no busybox found: apt-get install busybox-static")


def _applets(busybox: str) -> list[str]:
    try:
        out = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout
        return [a.strip() for a in out.splitlines() if a.strip()]
    except (OSError, subprocess.CalledProcessError):
        out = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout
        return ["bin/" + a.strip() for a in out.splitlines() if a.strip()]


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, 0
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def busybox_layer(busybox: str | None = None) -> bytes:
    """A root filesystem tar: /bin/busybox, a symlink per applet, and the usual empty directories."""
    busybox = busybox or find_busybox()
    with open(busybox, "rb") as f:
        binary = f.read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "var", "var/log", "proc", "sys",
                  "dev", "home", "run"):
            _add_dir(tar, d, 0o700 if d == "root" else 0o755)
        _add_dir(tar, "tmp", 0o1777)
        _add_dir(tar, "var/tmp", 0o1777)
        _add_file(tar, "bin/busybox", binary, 0o755)
        _add_file(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
        _add_file(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        _add_file(tar, "etc/nsswitch.conf", b"hosts: files dns\n")
        seen = {"bin/busybox"}
        for path in _applets(busybox):
            path = path.lstrip("/")
            if path in seen or "/" not in path:
                continue
            seen.add(path)
            info = tarfile.TarInfo(path)
            info.type, info.linkname, info.mtime, info.mode = tarfile.SYMTYPE, "/bin/busybox", 0, 0o777
            tar.addfile(info)
    return buf.getvalue()


def image_config(layer: bytes, cmd: Sequence[str], env: Sequence[str] = (),
                 entrypoint: Sequence[str] | None = None, workdir: str = "") -> bytes:
    """The image config JSON of a one-layer image (shared by tarballs and registry pushes, so the
    same inputs give the same image ID both ways)."""
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": _arch(),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": list(env or DEFAULT_ENV), "Cmd": list(cmd), "WorkingDir": workdir},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "kubelite busybox image"}],
    }
    if entrypoint is not None:
        config["config"]["Entrypoint"] = list(entrypoint)
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def docker_archive(tags: Sequence[str], layer: bytes, cmd: Sequence[str], env: Sequence[str] = (),
                   entrypoint: Sequence[str] | None = None, workdir: str = "") -> bytes:
    """A `docker save` style tarball holding one single-layer image known by `tags`."""
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config_bytes = image_config(layer, cmd, env, entrypoint, workdir)
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id.split(":", 1)[1] + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": list(tags), "Layers": [layer_name]}]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add_dir(tar, layer_name.split("/")[0])
        _add_file(tar, layer_name, layer)
        _add_file(tar, config_name, config_bytes)
        _add_file(tar, "manifest.json", json.dumps(manifest).encode())
    return buf.getvalue()


def _arch() -> str:
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(m, m)


def build_busybox_image(path: str, tag: str, cmd: Sequence[str] = ("/bin/sh",), *, layer: bytes | None = None) -> str:
    """Write a busybox image tarball to `path`; returns `path`."""
    data = docker_archive([tag], layer if layer is not None else busybox_layer(), cmd)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def build_pause_image(path: str, tag: str = PAUSE_IMAGE) -> str:
    """The sandbox image: busybox sleeping forever (containerd stops sandboxes with SIGKILL)."""
    return build_busybox_image(path, tag, ["/bin/sleep", "2147483647"])


def ctr_binary() -> str:
    ctr = shutil.which("ctr")
    if ctr is None:
        raise ImageError("ctr not found (apt-get install containerd)")
    return ctr


def import_image(socket: str, tarball: str, namespace: str = K8S_NAMESPACE) -> str:
    """`ctr -a SOCKET -n k8s.io images import FILE` (docker-archive or OCI layout tarball); ctr's output."""
    r = subprocess.run([ctr_binary(), "-a", socket, "-n", namespace, "images", "import", tarball],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise ImageError(f"importing {tarball}: {(r.stderr or r.stdout).strip()}")
    return r.stdout


async def import_image_async(socket: str, tarball: str, namespace: str = K8S_NAMESPACE) -> str:
    proc = await asyncio.create_subprocess_exec(ctr_binary(), "-a", socket, "-n", namespace, "images", "import",
                                                tarball, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise ImageError(f"importing {tarball}: {(err or out).decode(errors='replace').strip()}")
    return out.decode(errors="replace")


def socket_path(endpoint: str) -> str:
    return endpoint[len("unix://"):] if endpoint.startswith("unix://") else endpoint
