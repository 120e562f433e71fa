"""Settings of one kubelet, derived from the server's config (k3s-style: the server runs the agent)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from kubelite.runtime.images import PAUSE_IMAGE


@dataclass
class KubeletConfig:
    node_name: str
    root_dir: str  # DATA_DIR/agent: pod volumes, container logs, CNI config
    containerd_dir: str  # DATA_DIR/containerd (the private containerd, when no endpoint is given)
    tls_dir: str  # the cluster CA, to issue the kubelet's serving certificate
    cluster_cidr: str = "10.42.0.0/16"
    cluster_dns: str = "10.43.0.10"
    cluster_domain: str = "cluster.local"
    container_runtime_endpoint: str = ""
    pause_image: str = PAUSE_IMAGE
    port: int = 10250  # 0 picks a free port (tests); the node advertises the one it got
    bind: str = "0.0.0.0"
    node_ip: str = ""
    cni_bin_dir: str = "/usr/lib/cni"
    cni_bridge: str = "kubelite0"
    insecure_registries: tuple[str, ...] = ()  # pulled from over plain HTTP by the private containerd
    max_pods: int = 110
    node_status_update_frequency: float = 10.0
    lease_duration_seconds: int = 40
    pleg_relist_period: float = 1.0

    @classmethod
    def from_server_config(cls, cfg) -> KubeletConfig:
        return cls(
            node_name=(getattr(cfg, "node_name", "") or socket.gethostname()).lower(),
            root_dir=os.path.join(cfg.data_dir, "agent"),
            containerd_dir=os.path.join(cfg.data_dir, "containerd"),
            tls_dir=cfg.tls_dir,
            cluster_cidr=cfg.cluster_cidr,
            cluster_dns=cfg.cluster_dns,
            cluster_domain=cfg.cluster_domain,
            container_runtime_endpoint=getattr(cfg, "container_runtime_endpoint", ""),
            pause_image=getattr(cfg, "pause_image", "") or PAUSE_IMAGE,
            port=getattr(cfg, "kubelet_port", 10250),
            node_ip=getattr(cfg, "node_ip", ""),
            cni_bin_dir=getattr(cfg, "cni_bin_dir", "") or "/usr/lib/cni",
            cni_bridge=getattr(cfg, "cni_bridge", "") or "kubelite0",
            insecure_registries=tuple(getattr(cfg, "insecure_registries", ()) or ()),
        )

    @property
    def pods_dir(self) -> str:
        return os.path.join(self.root_dir, "pods")

    @property
    def logs_dir(self) -> str:
        return os.path.join(self.root_dir, "logs", "pods")

    @property
    def cni_conf_dir(self) -> str:
        return os.path.join(self.root_dir, "cni", "net.d")

    @property
    def cni_ipam_dir(self) -> str:
        return os.path.join(self.root_dir, "cni", "ipam")

    def pod_dir(self, uid: str) -> str:
        return os.path.join(self.pods_dir, uid)

    def pod_log_dir(self, namespace: str, name: str, uid: str) -> str:
        """Upstream's /var/log/pods/<namespace>_<name>_<uid>."""
        return os.path.join(self.logs_dir, f"{namespace}_{name}_{uid}")
