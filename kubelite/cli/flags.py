"""Flags shared by `kubelite server` and `kubelite up`, and their translation to a ServerConfig."""

from __future__ import annotations

import argparse
import os

from kubelite.apiserver.config import ServerConfig


class CLIError(Exception):
    """A failure reported as one line on stderr, with an exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="state, certificates, pid and log (default: /var/lib/kubelite as root, "
                        "else ~/.local/share/kubelite)")


def add_server_flags(p: argparse.ArgumentParser) -> None:
    add_data_dir(p)
    d = ServerConfig.__dataclass_fields__
    p.add_argument("--bind", metavar="ADDR", help=f"address to listen on (default: {d['bind'].default})")
    p.add_argument("--port", type=int, metavar="PORT", help=f"HTTPS port (default: {d['port'].default})")
    p.add_argument("--tls-san", action="append", default=[], metavar="NAME",
                   help="extra host name or IP in the serving certificate (repeatable)")
    p.add_argument("--token-auth-file", metavar="FILE",
                   help='static bearer tokens, CSV lines token,user,uid,"group1,group2"')
    p.add_argument("--service-cidr", metavar="CIDR",
                   help=f"ClusterIP range (default: {d['service_cidr'].default})")
    p.add_argument("--cluster-cidr", metavar="CIDR", help=f"pod IP range (default: {d['cluster_cidr'].default})")
    p.add_argument("--simulated-nodes", type=int, metavar="N", help="register N simulated nodes (default: 0)")
    p.add_argument("--default-watch-cache-size", type=int, metavar="N",
                   help="events kept for resuming watches (default: 10000); older versions get 410 Gone")
    p.add_argument("--dns-listen", metavar="ADDR:PORT",
                   help="where cluster DNS listens (default: 127.0.0.1:0, a free port; empty disables it)")
    p.add_argument("--disable-scheduler", action="store_true", help="do not run the scheduler")
    p.add_argument("--disable-controller-manager", action="store_true", help="do not run the controllers")
    p.add_argument("--kubelet", action="store_true",
                   help="run a node on this host: pods as containers via containerd's CRI, CNI bridge network "
                        "(root; apt-get install containerd runc containernetworking-plugins iptables)")
    p.add_argument("--node-name", metavar="NAME", help="the node's name (default: the host name)")
    p.add_argument("--node-ip", metavar="ADDR", help="the node's InternalIP (default: the default route's)")
    p.add_argument("--container-runtime-endpoint", metavar="ENDPOINT",
                   help="an existing CRI socket (unix:///run/containerd/containerd.sock); default: start a "
                        "private containerd under DATA_DIR/containerd")
    p.add_argument("--pause-image", metavar="IMAGE", help=f"sandbox image (default: {d['pause_image'].default})")
    p.add_argument("--kubelet-port", type=int, metavar="PORT",
                   help=f"kubelet HTTPS port, 0 for any free one (default: {d['kubelet_port'].default})")
    p.add_argument("--cni-bridge", metavar="NAME", help=f"pod network bridge (default: {d['cni_bridge'].default})")
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="a registry the node pulls from over plain HTTP (repeatable; written to the private "
                        "containerd's hosts.toml under DATA_DIR/containerd/certs.d, as k3s does for registries.yaml)")
    p.add_argument("--disable-kube-proxy", action="store_true", help="do not run the service proxy beside the kubelet")
    p.add_argument("--proxy-chain-prefix", metavar="NAME",
                   help="prefix of the service proxy's iptables chains (default: KUBE; 4 characters keep "
                        "chain names within iptables' limit)")
    p.add_argument("--proxy-mode", choices=("iptables", "nftables"),
                   help="how the service proxy programs the kernel, as kube-proxy's --proxy-mode (default: "
                        "iptables; nftables: one `nft -f` transaction, far faster with many services)")
    p.add_argument("--metric-resolution", type=_duration, metavar="DURATION",
                   help="how often the metrics server scrapes kubelets, as metrics-server's (default: 15s)")
    p.add_argument("--horizontal-pod-autoscaler-sync-period", type=_duration, metavar="DURATION",
                   help="how often HorizontalPodAutoscalers are reconciled (default: 15s)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _duration(value: str) -> float:
    """A Go duration ("15s", "500ms", "1m30s") or plain seconds, as a positive number of seconds."""
    import re

    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    try:
        seconds = float(value)
    except ValueError:
        parts = re.findall(r"([0-9]*\.?[0-9]+)(ms|s|m|h)", value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise argparse.ArgumentTypeError(f"invalid duration {value!r}") from None
        seconds = sum(float(n) * units[u] for n, u in parts)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration {value!r}: must be positive")
    return seconds


def data_dir(args: argparse.Namespace) -> str:
    from kubelite.apiserver.config import default_data_dir

    return os.path.abspath(os.path.expanduser(args.data_dir or default_data_dir()))


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """A ServerConfig with every path absolute (the background server does not share our cwd)."""
    config = ServerConfig(data_dir=data_dir(args))
    if args.bind:
        config.bind = args.bind
    if args.port is not None:
        if not 0 < args.port < 65536:
            raise CLIError(f"invalid --port {args.port}", 2)
        config.port = args.port
    config.tls_sans = list(args.tls_san)
    if args.token_auth_file:
        path = os.path.abspath(os.path.expanduser(args.token_auth_file))
        if not os.path.isfile(path):
            raise CLIError(f"--token-auth-file {args.token_auth_file}: no such file", 2)
        config.token_file = path
    if args.service_cidr:
        config.service_cidr = args.service_cidr
        config.cluster_dns = _cluster_dns(config.service_cidr, config.cluster_dns)
    if args.cluster_cidr:
        config.cluster_cidr = args.cluster_cidr
    if args.simulated_nodes is not None:
        config.simulated_nodes = args.simulated_nodes
    if args.dns_listen is not None:
        config.dns_listen = args.dns_listen
    if args.default_watch_cache_size is not None:
        config.watch_history = args.default_watch_cache_size
    config.scheduler = not args.disable_scheduler
    config.controllers = not args.disable_controller_manager
    config.kubelet = bool(getattr(args, "kubelet", False))
    for attr in ("node_name", "node_ip", "container_runtime_endpoint", "pause_image", "cni_bridge"):
        if getattr(args, attr, None):
            setattr(config, attr, getattr(args, attr))
    if getattr(args, "kubelet_port", None) is not None:
        config.kubelet_port = args.kubelet_port
    config.insecure_registries = list(getattr(args, "insecure_registry", None) or [])
    for reg in config.insecure_registries:
        if not reg or "/" in reg or reg.strip() != reg:
            raise CLIError(f"invalid --insecure-registry {reg!r}: want HOST[:PORT]", 2)
    config.kube_proxy = not getattr(args, "disable_kube_proxy", False)
    if getattr(args, "proxy_chain_prefix", None):
        config.proxy_chain_prefix = args.proxy_chain_prefix
    if getattr(args, "proxy_mode", None):
        config.proxy_mode = args.proxy_mode
    if getattr(args, "metric_resolution", None):
        config.metric_resolution = args.metric_resolution
    if getattr(args, "horizontal_pod_autoscaler_sync_period", None):
        config.hpa_sync_period = args.horizontal_pod_autoscaler_sync_period
    _check_cidrs(config)
    return config


def server_argv(config: ServerConfig, verbose: bool = False) -> list[str]:
    """The `kubelite server` arguments that reproduce `config`."""
    argv = ["server", "--data-dir", config.data_dir, "--bind", config.bind, "--port", str(config.port),
            "--service-cidr", config.service_cidr, "--cluster-cidr", config.cluster_cidr,
            "--simulated-nodes", str(config.simulated_nodes),
            "--default-watch-cache-size", str(config.watch_history), "--dns-listen", config.dns_listen,
            "--metric-resolution", f"{config.metric_resolution:g}s",
            "--horizontal-pod-autoscaler-sync-period", f"{config.hpa_sync_period:g}s"]
    for san in config.tls_sans:
        argv += ["--tls-san", san]
    if config.token_file:
        argv += ["--token-auth-file", config.token_file]
    if not config.scheduler:
        argv.append("--disable-scheduler")
    if not config.controllers:
        argv.append("--disable-controller-manager")
    if config.kubelet:
        argv += ["--kubelet", "--pause-image", config.pause_image, "--kubelet-port", str(config.kubelet_port),
                 "--cni-bridge", config.cni_bridge]
        argv += ["--proxy-chain-prefix", config.proxy_chain_prefix, "--proxy-mode", config.proxy_mode]
        if not config.kube_proxy:
            argv.append("--disable-kube-proxy")
        for reg in config.insecure_registries:
            argv += ["--insecure-registry", reg]
        for flag, value in (("--node-name", config.node_name), ("--node-ip", config.node_ip),
                            ("--container-runtime-endpoint", config.container_runtime_endpoint)):
            if value:
                argv += [flag, value]
    if verbose:
        argv.append("--verbose")
    return argv


def _cluster_dns(service_cidr: str, current: str) -> str:
    """As k3s: the DNS service IP is the 10th address of the service CIDR unless it already lies in it."""
    import ipaddress

    try:
        net = ipaddress.ip_network(service_cidr, strict=False)
        return current if ipaddress.ip_address(current) in net else str(net[10])
    except (ValueError, IndexError):
        return current


def _check_cidrs(config: ServerConfig) -> None:
    import ipaddress

    for flag, value in (("--service-cidr", config.service_cidr), ("--cluster-cidr", config.cluster_cidr)):
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise CLIError(f"invalid {flag} {value!r}", 2) from None
