"""The part of a CoreDNS Corefile kubelite's DNS server honours, read from ConfigMap kube-system/coredns.

As in k3s and kubeadm clusters, users change DNS behaviour by editing that ConfigMap; the server
reloads on change (CoreDNS's reload plugin). Understood: `kubernetes ZONE... { pods MODE; ttl N }`
and `forward . TARGET...`. Everything else is accepted and ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DEFAULT_COREFILE = """\
.:53 {
    errors
    health
    ready
    kubernetes %(domain)s in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
"""


@dataclass
class CorefileSettings:
    pods_mode: str = "insecure"
    ttl: int = 5
    forward: list[str] = field(default_factory=lambda: ["/etc/resolv.conf"])


def default_corefile(cluster_domain: str) -> str:
    return DEFAULT_COREFILE % {"domain": cluster_domain}


def parse_corefile(text: str) -> CorefileSettings:
    s = CorefileSettings()
    lines = [re.sub(r"#.*", "", line).strip() for line in text.splitlines()]
    in_kubernetes = False
    depth = 0
    for line in lines:
        if not line:
            continue
        words = line.replace("{", " { ").replace("}", " } ").split()
        head = words[0]
        if depth == 1 and head == "kubernetes":
            in_kubernetes = "{" in words
        elif depth == 1 and head == "forward" and len(words) >= 3:
            s.forward = [w for w in words[2:] if w not in ("{", "}")]
        elif in_kubernetes and depth == 2 and head == "pods" and len(words) >= 2:
            if words[1] in ("insecure", "verified", "disabled"):
                s.pods_mode = words[1]
        elif in_kubernetes and depth == 2 and head == "ttl" and len(words) >= 2 and words[1].isdigit():
            s.ttl = min(int(words[1]), 3600)
        depth += words.count("{") - words.count("}")
        if depth <= 1:
            in_kubernetes = False
    return s
