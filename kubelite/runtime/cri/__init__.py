"""A CRI v1 client (runtime.v1 RuntimeService and ImageService) over gRPC on a unix socket,
and the private containerd kubelite starts when no runtime endpoint is given (as k3s does)."""

from kubelite.runtime.cri import api_pb2 as pb
from kubelite.runtime.cri.client import CRIError, RuntimeClient

__all__ = ["pb", "RuntimeClient", "CRIError"]
