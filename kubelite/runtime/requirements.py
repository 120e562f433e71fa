"""Whether this host can run a real node, checked without loading the CRI client (grpc), so that
`kubelite up` decides between a real and a simulated node at once."""

from __future__ import annotations

import os
import shutil

CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")


def missing_requirements(cni_bin_dir: str, need_containerd: bool = True) -> list[str]:
    """What keeps this host from running a node, worded for the operator (empty when all is there)."""
    out: list[str] = []
    if os.geteuid() != 0:
        out.append("the kubelet needs root")
    if need_containerd:
        for binary in ("containerd", "ctr"):
            if shutil.which(binary) is None:
                out.append(f"{binary} not found (apt-get install containerd)")
        if shutil.which("containerd-shim-runc-v2") is None and shutil.which("containerd") is not None:
            out.append("containerd-shim-runc-v2 not found (apt-get install containerd)")
    if shutil.which("runc") is None:
        out.append("runc not found (apt-get install runc)")
    for plugin in CNI_PLUGINS:
        if not os.access(os.path.join(cni_bin_dir, plugin), os.X_OK):
            out.append(f"CNI plugin {plugin} not found in {cni_bin_dir} (apt-get install containernetworking-plugins)")
            break
    if shutil.which("iptables") is None:
        out.append("iptables not found (apt-get install iptables)")
    return out
