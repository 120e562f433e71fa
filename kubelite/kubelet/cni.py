"""The node's pod network: one CNI conflist (bridge + host-local + portmap) that containerd's CRI
plugin runs for every sandbox, so RunPodSandbox returns a namespace with an IP from the node's
podCIDR. containerd also brings up each sandbox's loopback itself (go-cni's loopback network, with
the `loopback` plugin from the same bin dir).

Pod traffic leaving the pod network is masqueraded by one rule set for the whole podCIDR, written
once when the kubelet starts (as flannel and kindnet do), not by the bridge plugin's `ipMasq`: that
option makes every CNI ADD and DEL create or delete a chain of its own with about a dozen iptables
runs, a large part of a sandbox's start and stop on a small node."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shlex
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
                "ipMasq": False,  # masquerade_rules: one rule set for the podCIDR instead of one per pod
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


MULTICAST = "224.0.0.0/4"


def masquerade_chain(bridge: str) -> str:
    """The nat chain of one node's masquerade rules (bridge names are at most 15 characters, chain
    names 28)."""
    return f"KUBELITE-MASQ-{bridge}"[:28]


def _iptables(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", "5", "-t", "nat", *args], capture_output=True, text=True)


def _jumps(chain: str) -> list[list[str]]:
    """The POSTROUTING rules (as `-A POSTROUTING ...` argument lists) that jump to `chain`."""
    out = _iptables("-S", "POSTROUTING").stdout
    rules = [shlex.split(r) for r in out.splitlines() if r.startswith("-A ")]
    return [r for r in rules if r[-2:] == ["-j", chain]]


def ensure_masquerade(bridge: str, subnet: str) -> None:
    """What the bridge plugin's ipMasq did per pod, for the whole podCIDR: traffic from a pod to
    anything outside the pod network (multicast aside) leaves with the node's address. Idempotent;
    appended to POSTROUTING, so the service proxy's jump (inserted first) still comes before it."""
    chain = masquerade_chain(bridge)
    comment = ["-m", "comment", "--comment", f"kubelite pod network {bridge}"]
    _iptables("-N", chain)  # fails harmlessly when it exists
    want = [["-A", chain, "-d", subnet, *comment, "-j", "ACCEPT"],
            ["-A", chain, "!", "-d", MULTICAST, *comment, "-j", "MASQUERADE"]]
    have = [shlex.split(r) for r in _iptables("-S", chain).stdout.splitlines() if r.startswith("-A ")]
    if have != want:
        _iptables("-F", chain)
        for rule in want:
            r = _iptables(*rule)
            if r.returncode != 0:
                raise OSError(f"iptables {' '.join(rule)}: {r.stderr.strip()}")
    jump = ["-s", subnet, *comment, "-j", chain]
    for rule in _jumps(chain):  # a podCIDR that changed since the last start
        if rule[2:] != jump:
            _iptables("-D", *rule[1:])
    if _iptables("-C", "POSTROUTING", *jump).returncode != 0:
        r = _iptables("-A", "POSTROUTING", *jump)
        if r.returncode != 0:
            raise OSError(f"iptables -A POSTROUTING {' '.join(jump)}: {r.stderr.strip()}")


def delete_masquerade(bridge: str) -> None:
    chain = masquerade_chain(bridge)
    for rule in _jumps(chain):
        _iptables("-D", *rule[1:])
    _iptables("-F", chain)
    _iptables("-X", chain)


def delete_bridge(bridge: str) -> None:
    """Remove the node's bridge and its masquerade rules (used by tests and `kubelite` cleanup; pods
    must be gone)."""
    subprocess.run(["ip", "link", "delete", bridge], capture_output=True)
    delete_masquerade(bridge)
