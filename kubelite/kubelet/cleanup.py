"""Tear a node down to nothing: every sandbox stopped and removed (CNI DEL releases IPs and
iptables rules), then the bridge. For tests and for decommissioning a node."""

from __future__ import annotations

import asyncio
import contextlib

from kubelite.kubelet import cni
from kubelite.runtime.cri import CRIError, RuntimeClient


async def remove_all_pods(endpoint: str) -> int:
    """Stop and remove every container and sandbox the runtime has in the k8s.io namespace."""
    rt = RuntimeClient(endpoint, timeout=60)
    try:
        async def container(cid: str) -> None:
            with contextlib.suppress(CRIError):
                await rt.stop_container(cid, 0)
                await rt.remove_container(cid)

        async def sandbox(sid: str) -> None:
            with contextlib.suppress(CRIError):
                await rt.stop_pod_sandbox(sid)
                await rt.remove_pod_sandbox(sid)

        await asyncio.gather(*(container(c.id) for c in await rt.list_containers()))
        sandboxes = await rt.list_pod_sandbox()
        await asyncio.gather(*(sandbox(s.id) for s in sandboxes))
        return len(sandboxes)
    finally:
        await rt.close()


def delete_bridge(bridge: str) -> None:
    cni.delete_bridge(bridge)
