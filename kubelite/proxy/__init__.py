"""The service proxy (kube-proxy, iptables mode): one per real node, started beside the kubelet.

`servicemap` turns Services and EndpointSlices into service ports, `rules` turns those into an
iptables-restore text (pure), `iptables` applies it, and `proxier` is the control loop; `nftables` is the
`--proxy-mode nftables` alternative to `rules` + `iptables` (one `nft -f` transaction per sync)."""

from kubelite.proxy.proxier import Proxier, ProxyConfig

__all__ = ["Proxier", "ProxyConfig"]
