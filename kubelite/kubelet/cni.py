"""The node's pod network: one CNI conflist (bridge + host-local + portmap) that containerd's CRI
plugin runs for every sandbox, so RunPodSandbox returns a namespace with an IP from the node's
podCIDR. containerd also brings up each sandbox's loopback itself (go-cni's loopback network, with
the `loopback` plugin from the same bin dir)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess

CONFLIST_NAME = "10-kubelite.conflist"


def conflist(*, bridge: str, subnet: str, ipam_dir: str, mtu: int = 1500) -> dict:
    net = ipaddress.ip_network(subnet, strict=False)
    gateway = str(next(net.hosts()))
    return {
        "cniVersion": "0.4.0",
        "name": "kubelite",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "isDefaultGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "mtu": mtu,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(net), "gateway": gateway}]],
                    "dataDir": ipam_dir,
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


def write_conflist(conf_dir: str, *, bridge: str, subnet: str, ipam_dir: str) -> str:
    """Write (atomically) the conflist; returns its path. Stale *.conf(list) files are removed so that
    containerd, which loads the first file in name order, sees only ours."""
    os.makedirs(conf_dir, exist_ok=True)
    os.makedirs(ipam_dir, exist_ok=True)
    path = os.path.join(conf_dir, CONFLIST_NAME)
    for name in os.listdir(conf_dir):
        if name != CONFLIST_NAME and name.endswith((".conf", ".conflist", ".json")):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(conf_dir, name))
    data = json.dumps(conflist(bridge=bridge, subnet=subnet, ipam_dir=ipam_dir), indent=2)
    try:
        with open(path) as f:
            if f.read() == data:
                return path
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def enable_forwarding() -> None:
    """Pods reach each other and the outside through the host: IPv4 forwarding and, for service
    traffic crossing the bridge, br_netfilter (best effort: not every kernel lets us)."""
    with contextlib.suppress(OSError), open("/proc/sys/net/ipv4/ip_forward", "w") as f:
        f.write("1")
    with contextlib.suppress(OSError, FileNotFoundError):
        subprocess.run(["modprobe", "br_netfilter"], capture_output=True, timeout=5)


def delete_bridge(bridge: str) -> None:
    """Remove the node's bridge (used by tests and `kubelite` cleanup; pods must be gone)."""
    subprocess.run(["ip", "link", "delete", bridge], capture_output=True)
