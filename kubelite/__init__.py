"""kubelite: a Kubernetes-compatible container orchestrator."""

import os

# The node forks helpers (iptables-restore, nft, mount) that exec at once; gRPC's fork handlers
# only get in their way ("Other threads are currently calling into gRPC, skipping fork() handlers").
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
