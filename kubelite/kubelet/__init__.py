"""The node agent: runs pods bound to this node as containers through CRI (containerd), with a
CNI bridge network, and serves logs/exec to the API server."""

from kubelite.kubelet.config import KubeletConfig
from kubelite.kubelet.kubelet import Kubelet, NodeUnavailable

__all__ = ["Kubelet", "KubeletConfig", "NodeUnavailable"]
