"""The service proxy's iptables programming at scale: given a ruleset of more than a thousand chains
(100 services x 10 endpoints, rules as the proxier builds them), when `IPTables.restore` applies it
with the host's iptables (on iptables-nft it adds a whole-table listing to avoid iptables-nft's
per-chain bookkeeping, see kubelite/proxy/iptables.py), then the kernel holds exactly the tables a
plain `iptables-restore --noflush` of the same input gives, and a full resync that drops a service
leaves exactly the chains still needed. Each run uses private network namespaces.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from kubelite.proxy import rules
from kubelite.proxy.iptables import WHOLE_TABLE_FROM, IPTables
from kubelite.proxy.servicemap import build_service_map

pytestmark = [pytest.mark.root]


def _objects(n_services: int, n_endpoints: int) -> tuple[list[dict], list[dict]]:
    services, slices = [], []
    for i in range(n_services):
        name = f"svc-{i}"
        services.append({"metadata": {"name": name, "namespace": "large"},
                         "spec": {"type": "NodePort" if i % 10 == 0 else "ClusterIP",
                                  "clusterIP": f"10.43.7.{i + 1}",
                                  "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                             "nodePort": 31000 + i if i % 10 == 0 else None}]}})
        slices.append({"metadata": {"name": f"{name}-x", "namespace": "large",
                                    "labels": {"kubernetes.io/service-name": name}},
                       "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                       "endpoints": [{"addresses": [f"10.42.{i}.{j + 1}"], "nodeName": "n1",
                                      "conditions": {"ready": True}} for j in range(n_endpoints)]})
    return services, slices


def _save(netns: str) -> str:
    out = subprocess.run(["ip", "netns", "exec", netns, "iptables-save"], capture_output=True, text=True,
                         check=True).stdout
    return "".join(line for line in out.splitlines(True) if not line.startswith("#"))


@pytest.fixture
def namespaces() -> Iterator[list[str]]:
    if os.geteuid() != 0 or not shutil.which("iptables-restore"):
        pytest.skip("needs root and iptables")
    names = [f"kltest-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for n in names:
        subprocess.run(["ip", "netns", "add", n], check=True)
    try:
        yield names
    finally:
        for n in names:
            subprocess.run(["ip", "netns", "delete", n], capture_output=True)


def test_large_ruleset_programs_the_same_tables_as_a_plain_restore(namespaces: list[str]) -> None:
    ours, plain = namespaces
    services, slices = _objects(100, 10)
    ctx = rules.NodeContext("n1", "10.42.0.0/16", "10.43.0.0/16")
    first = rules.build(build_service_map(services, slices), ctx)
    assert first.text.count("\n:") >= WHOLE_TABLE_FROM  # the path under test

    ipt = IPTables(ours)
    asyncio.run(ipt.restore(first.text))
    subprocess.run(["ip", "netns", "exec", plain, "iptables-restore", "-w", "5", "--noflush"],
                   input=first.text, text=True, check=True)
    saved = _save(ours)
    assert saved == _save(plain)
    assert saved.count("\n-A ") == first.rule_count
    assert saved.count(":KUBE-SEP-") == 1000

    # a full resync without svc-5: its chains are deleted, the others rewritten in place
    del services[5], slices[5]
    second = rules.build(build_service_map(services, slices), ctx, first.nat_chains, first.filter_chains)
    asyncio.run(ipt.restore(second.text))
    saved = _save(ours)
    assert saved.count(":KUBE-SEP-") == 990
    assert saved.count("\n-A ") == second.rule_count
    gone = rules.Names().svc(next(sp for sp in build_service_map(*_objects(6, 1)) if sp.name == "svc-5"))
    assert gone not in saved
    assert "10.43.7.6/32" not in saved and "10.43.7.7/32" in saved
