"""Pod volumes as host directories the runtime bind-mounts into containers (CRI Mounts).

emptyDir and the files of configMap/secret/downwardAPI/projected volumes live under the pod's
directory; they are written with upstream's AtomicWriter layout (a timestamped directory, a
`..data` symlink swapped atomically, one symlink per file) so updates appear all at once.
hostPath mounts the host path itself.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import time
from typing import Any

from kubelite.api.kinds.common import parse_time
from kubelite.kubelet.env import ContainerConfigError, ObjectSource, field_ref, resource_field_ref
from kubelite.runtime.cri import pb

log = logging.getLogger(__name__)

DEFAULT_MODE = 0o644
MAX_TOKEN_AGE = 24 * 3600.0  # upstream's token manager refreshes any token older than this


def _write_atomic(target: str, files: dict[str, tuple[bytes, int]], fs_group: int | None = None) -> None:
    """AtomicWriter: skip when nothing changed; otherwise a new `..<ts>` dir and a swapped `..data`.
    With a pod fsGroup the files belong to that group and are group-readable (SetVolumeOwnership)."""
    if fs_group is not None:
        files = {rel: (content, mode | 0o440) for rel, (content, mode) in files.items()}
    os.makedirs(target, exist_ok=True)
    data_link = os.path.join(target, "..data")
    current = os.path.join(target, os.readlink(data_link)) if os.path.islink(data_link) else None
    if current and os.path.isdir(current):
        same = True
        existing = set()
        for root, _dirs, names in os.walk(current):
            for n in names:
                existing.add(os.path.relpath(os.path.join(root, n), current))
        if existing != set(files):
            same = False
        else:
            for rel, (content, mode) in files.items():
                p = os.path.join(current, rel)
                try:
                    with open(p, "rb") as f:
                        st = os.stat(p)
                        if f.read() != content or (st.st_mode & 0o7777) != mode or (
                                fs_group is not None and st.st_gid != fs_group):
                            same = False
                            break
                except OSError:
                    same = False
                    break
        if same:
            return
    ts = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + str(time.time_ns() % 10**9)
    new_dir = os.path.join(target, ts)
    os.makedirs(new_dir)
    for rel, (content, mode) in files.items():
        p = os.path.join(new_dir, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(content)
        if fs_group is not None:
            os.chown(p, -1, fs_group)
        os.chmod(p, mode)
    os.chmod(new_dir, 0o755)
    tmp_link = os.path.join(target, "..data_tmp")
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(ts, tmp_link)
    os.replace(tmp_link, data_link)
    tops = {rel.split("/")[0] for rel in files}
    for top in tops:
        link = os.path.join(target, top)
        if not os.path.lexists(link):
            os.symlink(os.path.join("..data", top), link)
    for name in os.listdir(target):  # files no longer in the volume, and old generations
        p = os.path.join(target, name)
        if name.startswith(".."):
            if name not in ("..data", ts) and os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
        elif name not in tops and os.path.islink(p):
            os.unlink(p)


def _mode(item_mode: Any, default_mode: Any) -> int:
    if isinstance(item_mode, int):
        return item_mode
    if isinstance(default_mode, int):
        return default_mode
    return DEFAULT_MODE


async def _keyed_files(src: dict, kind: str, namespace: str, objects: ObjectSource,
                       default_mode: Any) -> dict[str, tuple[bytes, int]] | None:
    name = src.get("name") or src.get("secretName") or ""
    data = await objects.data(kind, namespace, name)
    if data is None:
        if src.get("optional"):
            return {}
        raise ContainerConfigError(f'{kind.lower()} "{name}" not found')
    files: dict[str, tuple[bytes, int]] = {}
    items = src.get("items")
    if items:
        for it in items:
            key = it.get("key", "")
            if key not in data:
                if src.get("optional"):
                    continue
                raise ContainerConfigError(f"configmap references non-existent config key: {key}"
                                           if kind == "ConfigMap" else f"references non-existent secret key: {key}")
            files[it.get("path") or key] = (data[key], _mode(it.get("mode"), src.get("defaultMode", default_mode)))
    else:
        for key, value in data.items():
            files[key] = (value, _mode(None, src.get("defaultMode", default_mode)))
    return files


def _downward_files(items: list[dict], pod: dict, host_ip: str, pod_ips: list[str],
                    allocatable: dict[str, str], default_mode: Any) -> dict[str, tuple[bytes, int]]:
    files: dict[str, tuple[bytes, int]] = {}
    for it in items or []:
        if it.get("fieldRef"):
            value = field_ref(pod, it["fieldRef"].get("fieldPath", ""), host_ip, pod_ips)
        elif it.get("resourceFieldRef"):
            value = resource_field_ref(pod, it["resourceFieldRef"].get("containerName", ""), it["resourceFieldRef"],
                                       allocatable)
        else:
            continue
        files[it.get("path", "")] = (value.encode(), _mode(it.get("mode"), default_mode))
    return files


class VolumeManager:
    def __init__(self, client: Any, pods_dir: str, cluster_domain: str = "cluster.local"):
        self.client = client
        self.pods_dir = pods_dir
        self.cluster_domain = cluster_domain
        # (pod uid, service account, audiences, expirationSeconds) -> (token, refresh at): upstream's
        # token manager, so a sync neither requests nor rewrites a token that is still fresh
        self._tokens: dict[tuple[str, str, tuple[str, ...], int], tuple[bytes, float]] = {}

    def pod_dir(self, uid: str) -> str:
        return os.path.join(self.pods_dir, uid)

    async def setup(self, pod: dict, objects: ObjectSource, *, host_ip: str, pod_ips: list[str],
                    allocatable: dict[str, str]) -> dict[str, str]:
        """Make every volume of the pod exist on the host; returns volume name -> host path."""
        meta = pod.get("metadata") or {}
        uid, ns = meta.get("uid", ""), meta.get("namespace", "default")
        base = os.path.join(self.pod_dir(uid), "volumes")
        fs_group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
        paths: dict[str, str] = {}
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            name = vol.get("name", "")
            if "hostPath" in vol:
                hp = vol["hostPath"] or {}
                path = hp.get("path", "")
                t = hp.get("type") or ""
                if t == "DirectoryOrCreate":
                    os.makedirs(path, mode=0o755, exist_ok=True)
                elif t == "FileOrCreate" and not os.path.exists(path):
                    os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
                    open(path, "a").close()
                elif t in ("Directory", "File", "Socket", "CharDevice", "BlockDevice") and not os.path.exists(path):
                    raise ContainerConfigError(f"hostPath type check failed: {path} is not a {t.lower()}")
                paths[name] = path
            elif "emptyDir" in vol:
                p = os.path.join(base, "kubernetes.io~empty-dir", name)
                os.makedirs(p, mode=0o777, exist_ok=True)
                if fs_group is not None:  # SetVolumeOwnership: the group's, setgid
                    os.chown(p, -1, fs_group)
                os.chmod(p, 0o2777 if fs_group is not None else 0o777)
                if (vol["emptyDir"] or {}).get("medium") == "Memory" and not os.path.ismount(p):
                    _mount_tmpfs(p, _tmpfs_size(pod, vol["emptyDir"] or {}, allocatable))
                paths[name] = p
            elif "configMap" in vol or "secret" in vol:
                kind = "ConfigMap" if "configMap" in vol else "Secret"
                src = vol.get("configMap") or vol.get("secret") or {}
                p = os.path.join(base, "kubernetes.io~" + ("configmap" if kind == "ConfigMap" else "secret"), name)
                files = await _keyed_files(src, kind, ns, objects, DEFAULT_MODE)
                await asyncio.to_thread(_write_atomic, p, files or {}, fs_group)
                paths[name] = p
            elif "downwardAPI" in vol:
                src = vol["downwardAPI"] or {}
                p = os.path.join(base, "kubernetes.io~downward-api", name)
                await asyncio.to_thread(_write_atomic, p, _downward_files(
                    src.get("items") or [], pod, host_ip, pod_ips, allocatable, src.get("defaultMode", DEFAULT_MODE)),
                    fs_group)
                paths[name] = p
            elif "projected" in vol:
                src = vol["projected"] or {}
                default_mode = src.get("defaultMode", DEFAULT_MODE)
                files: dict[str, tuple[bytes, int]] = {}
                for s in src.get("sources") or []:
                    if s.get("configMap"):
                        files.update(await _keyed_files(s["configMap"], "ConfigMap", ns, objects, default_mode) or {})
                    elif s.get("secret"):
                        files.update(await _keyed_files(s["secret"], "Secret", ns, objects, default_mode) or {})
                    elif s.get("downwardAPI"):
                        files.update(_downward_files(s["downwardAPI"].get("items") or [], pod, host_ip, pod_ips,
                                                     allocatable, default_mode))
                    elif s.get("serviceAccountToken"):
                        tok = s["serviceAccountToken"]
                        files[tok.get("path", "token")] = (await self._token(pod, tok), default_mode)
                p = os.path.join(base, "kubernetes.io~projected", name)
                await asyncio.to_thread(_write_atomic, p, files, fs_group)
                paths[name] = p
            elif "persistentVolumeClaim" in vol:
                paths[name] = await self._claim_path(ns, (vol["persistentVolumeClaim"] or {}).get("claimName", ""))
            else:
                # unsupported sources (csi, ...) get an empty directory for now
                p = os.path.join(base, "kubernetes.io~unsupported", name)
                os.makedirs(p, exist_ok=True)
                paths[name] = p
        return paths

    async def _claim_path(self, ns: str, claim: str) -> str:
        """The host path of the volume bound to a claim (hostPath or local PersistentVolumes, as the
        local-path provisioner makes); the pod waits while the claim is not bound."""
        from kubelite.api.errors import StatusError

        try:
            pvc = await self.client.persistentvolumeclaims.get(claim, namespace=ns)
        except StatusError as e:
            raise ContainerConfigError(f'persistentvolumeclaim "{claim}" not found' if e.code == 404 else e.message) from e
        phase, volume = (pvc.get("status") or {}).get("phase") or "", (pvc.get("spec") or {}).get("volumeName") or ""
        if phase != "Bound" or not volume:
            raise ContainerConfigError(f'PVC {ns}/{claim} has non-bound phase ("{phase}") or empty '
                                       f'pvc.Spec.VolumeName ("{volume}")')
        try:
            pv = await self.client.persistentvolumes.get(volume)
        except StatusError as e:
            raise ContainerConfigError(f'persistentvolume "{volume}" not found' if e.code == 404 else e.message) from e
        spec = pv.get("spec") or {}
        source = spec.get("hostPath") or spec.get("local")
        if not isinstance(source, dict) or not source.get("path"):
            raise ContainerConfigError(f'persistentvolume "{volume}" has no hostPath or local source this node can mount')
        path = source["path"]
        if "hostPath" in spec and (source.get("type") or "") == "DirectoryOrCreate" and not os.path.exists(path):
            os.makedirs(path, mode=0o777, exist_ok=True)
            os.chmod(path, 0o777)
        elif not os.path.exists(path):
            raise ContainerConfigError(f"path {path} of persistentvolume \"{volume}\" does not exist")
        return path

    async def _token(self, pod: dict, tok: dict) -> bytes:
        """A bound service account token from the TokenRequest API (empty if the server has none),
        reused until 80% of its lifetime (or 24 h) has passed, as upstream's token manager does."""
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        sa = spec.get("serviceAccountName") or "default"
        audiences = [tok["audience"]] if tok.get("audience") else []
        seconds = int(tok.get("expirationSeconds") or 3607)
        key = (meta.get("uid", ""), sa, tuple(audiences), seconds)
        cached = self._tokens.get(key)
        now = time.time()
        if cached is not None and now < cached[1]:
            return cached[0]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {"name": sa},
                "spec": {"audiences": audiences, "expirationSeconds": seconds,
                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta.get("name"),
                                            "uid": meta.get("uid")}}}
        try:
            resp = await self.client.serviceaccounts.create_subresource(sa, "token", body, meta.get("namespace"))
        except Exception as e:  # no TokenRequest support yet: the file exists, empty
            log.debug("token request for %s/%s failed: %s", meta.get("namespace"), sa, e)
            return b""
        status = resp.get("status") or {}
        token = (status.get("token") or "").encode()
        expires = parse_time(status.get("expirationTimestamp")) or now + seconds
        if token:
            self._tokens[key] = (token, now + min(0.8 * max(expires - now, 0.0), MAX_TOKEN_AGE))
        return token

    def mounts(self, pod: dict, container: dict, volume_paths: dict[str, str],
               env: list[tuple[str, str]] | None = None) -> list[pb.Mount]:
        out = []
        for vm in container.get("volumeMounts") or []:
            host = volume_paths.get(vm.get("name", ""))
            if host is None:
                raise ContainerConfigError(f"cannot find volume \"{vm.get('name')}\" to mount into container "
                                           f"\"{container.get('name')}\"")
            sub = vm.get("subPath") or ""
            if vm.get("subPathExpr"):
                sub = _expand_subpath(vm["subPathExpr"], dict(env or []))
            if sub:
                if os.path.isabs(sub):
                    raise ContainerConfigError(f"error SubPath `{sub}` must not be an absolute path")
                if ".." in sub.split("/"):
                    raise ContainerConfigError(f"unable to provision SubPath `{sub}`: must not contain '..'")
                host = os.path.join(host, sub)
                if not os.path.exists(host):
                    os.makedirs(host, mode=0o755, exist_ok=True)
            prop = {"HostToContainer": pb.PROPAGATION_HOST_TO_CONTAINER,
                    "Bidirectional": pb.PROPAGATION_BIDIRECTIONAL}.get(vm.get("mountPropagation") or "",
                                                                      pb.PROPAGATION_PRIVATE)
            out.append(pb.Mount(container_path=vm.get("mountPath", ""), host_path=host,
                                readonly=bool(vm.get("readOnly")), propagation=prop))
        return out

    def etc_hosts(self, pod: dict, pod_ip: str) -> str:
        """The kubelet-managed /etc/hosts (localhost entries, the pod's own name, hostAliases)."""
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        hostname = spec.get("hostname") or meta.get("name", "")
        lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
                 "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes",
                 "fe00::2\tip6-allrouters"]
        if pod_ip:
            if spec.get("subdomain"):
                fqdn = f"{hostname}.{spec['subdomain']}.{meta.get('namespace')}.svc.{self.cluster_domain}"
                lines.append(f"{pod_ip}\t{fqdn}\t{hostname}")
            else:
                lines.append(f"{pod_ip}\t{hostname}")
        aliases = spec.get("hostAliases") or []
        if aliases:
            lines.append("\n# Entries added by HostAliases.")
            for a in aliases:
                lines.append(f"{a.get('ip')}\t" + "\t".join(a.get("hostnames") or []))
        path = os.path.join(self.pod_dir(meta.get("uid", "")), "etc-hosts")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def termination_log(self, uid: str, container: str, attempt: int) -> str:
        d = os.path.join(self.pod_dir(uid), "containers", container)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"{attempt}-termination-log")
        open(path, "a").close()
        os.chmod(path, 0o666)
        return path

    async def cleanup(self, uid: str) -> None:
        """Forget the pod's tokens (on the event loop, where they are used), then remove its
        directory in a thread: unmounting and rmtree are file system work."""
        for key in [k for k in self._tokens if k[0] == uid]:
            del self._tokens[key]
        await asyncio.to_thread(self._remove_pod_dir, uid)

    def _remove_pod_dir(self, uid: str) -> None:
        empty = os.path.join(self.pod_dir(uid), "volumes", "kubernetes.io~empty-dir")
        for name in os.listdir(empty) if os.path.isdir(empty) else []:
            if os.path.ismount(os.path.join(empty, name)):  # medium: Memory
                _umount(os.path.join(empty, name))
        shutil.rmtree(self.pod_dir(uid), ignore_errors=True)


def _expand_subpath(expr: str, env: dict[str, str]) -> str:
    """kubecontainer.ExpandContainerVolumeMounts: $(VAR) from the container's env; a reference to a
    missing or empty variable fails the container (CreateContainerConfigError)."""
    from kubelite.kubelet.env import _VAR

    missing: set[str] = set()

    def repl(m) -> str:
        if m.group(0) == "$$":
            return "$"
        value = env.get(m.group(1), "")
        if not value:
            missing.add(m.group(1))
        return value

    out = _VAR.sub(repl, expr)
    if missing:
        raise ContainerConfigError(f"missing value for {', '.join(sorted(missing))}")
    return out


def _tmpfs_size(pod: dict, src: dict, allocatable: dict[str, str]) -> int:
    """Upstream (SizeMemoryBackedVolumes): sizeLimit, else the pod's memory limit, else node allocatable."""
    from kubelite.api.kinds.common import parse_quantity

    candidates = []
    if src.get("sizeLimit"):
        candidates.append(int(parse_quantity(str(src["sizeLimit"]))))
    limits = [(c.get("resources") or {}).get("limits", {}).get("memory") for c in (pod.get("spec") or {}).get(
        "containers") or []]
    if limits and all(limits):
        candidates.append(sum(int(parse_quantity(str(m))) for m in limits))
    if allocatable.get("memory"):
        candidates.append(int(parse_quantity(str(allocatable["memory"]))))
    return min(candidates) if candidates else 0


def _libc():
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _mount_tmpfs(path: str, size: int) -> None:
    import ctypes

    opts = "mode=0777" + (f",size={size}" if size else "")
    if _libc().mount(b"tmpfs", path.encode(), b"tmpfs", 0, opts.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs on {path}: {os.strerror(err)}")


def _umount(path: str) -> None:
    if _libc().umount2(path.encode(), 2) != 0:  # MNT_DETACH
        log.warning("unmounting %s failed", path)


def decode_secret_value(v: str) -> bytes:
    return base64.b64decode(v or "")
