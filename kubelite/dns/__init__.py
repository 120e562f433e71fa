"""Cluster DNS in the manner of CoreDNS's kubernetes plugin: watch-fed answers for the cluster zone,
everything else forwarded upstream. `ClusterDNS` is the component `kubelite server` starts."""

from kubelite.dns.component import ClusterDNS
from kubelite.dns.resolver import KubernetesResolver
from kubelite.dns.server import DNSServer

__all__ = ["ClusterDNS", "DNSServer", "KubernetesResolver"]
