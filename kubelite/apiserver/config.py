"""Settings of one kubelite control plane, filled from the command line by `kubelite server|up`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def default_data_dir() -> str:
    if os.geteuid() == 0:
        return "/var/lib/kubelite"
    return os.path.join(os.path.expanduser("~"), ".local", "share", "kubelite")


@dataclass
class ServerConfig:
    data_dir: str = field(default_factory=default_data_dir)
    bind: str = "127.0.0.1"
    port: int = 6443
    tls_sans: list[str] = field(default_factory=list)
    token_file: str | None = None  # static bearer tokens: token,user,uid,"group1,group2"
    service_cidr: str = "10.43.0.0/16"
    cluster_cidr: str = "10.42.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)
    cluster_dns: str = "10.43.0.10"
    cluster_domain: str = "cluster.local"
    # cluster DNS server address (udp+tcp); port 0 picks a free one, recorded in <data_dir>/dns.addr;
    # "" disables it. Root deployments set e.g. "10.0.0.5:53" (kube-dns Endpoints then point there).
    dns_listen: str = "127.0.0.1:0"
    simulated_nodes: int = 0
    watch_history: int = 10000  # store events kept for watch resumption
    # which in-process components run beside the API server (k3s-style assembly)
    controllers: bool = True
    scheduler: bool = True
    # the node (kubelite.kubelet): off unless --kubelet; needs root, containerd, runc and CNI plugins
    kubelet: bool = False
    node_name: str = ""  # default: the host name
    node_ip: str = ""  # default: the address of the default route
    container_runtime_endpoint: str = ""  # "" starts a private containerd under <data_dir>/containerd
    pause_image: str = "localhost/kubelite/pause:1"
    kubelet_port: int = 10250  # 0 picks a free port
    cni_bridge: str = "kubelite0"
    cni_bin_dir: str = "/usr/lib/cni"
    # registries the node's containerd reaches over plain HTTP (docker's --insecure-registry), HOST[:PORT]
    insecure_registries: list[str] = field(default_factory=list)
    # the service proxy (kubelite.proxy) runs beside the kubelet unless disabled (k3s: --disable-kube-proxy)
    kube_proxy: bool = True
    # its iptables chains are <prefix>-SERVICES, <prefix>-SVC-...; clusters sharing one host (tests) differ
    proxy_chain_prefix: str = "KUBE"
    proxy_mode: str = "iptables"  # kube-proxy's --proxy-mode: iptables (upstream's default) or nftables
    # the metrics server's scrape interval (metrics-server --metric-resolution) and the HPA controller's
    # period (--horizontal-pod-autoscaler-sync-period), in seconds; tests shorten both
    metric_resolution: float = 15.0
    hpa_sync_period: float = 15.0

    @property
    def db_path(self) -> str:
        return os.path.join(self.data_dir, "db", "state.db")

    @property
    def tls_dir(self) -> str:
        return os.path.join(self.data_dir, "tls")

    @property
    def pid_file(self) -> str:
        return os.path.join(self.data_dir, "kubelite.pid")

    @property
    def log_file(self) -> str:
        return os.path.join(self.data_dir, "kubelite.log")
