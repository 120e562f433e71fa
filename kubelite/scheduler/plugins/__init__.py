"""The in-tree plugins of the default profile, in upstream's order for each extension point."""

from __future__ import annotations

from kubelite.scheduler.framework import Handle, Plugin
from kubelite.scheduler.plugins.defaultbinder import DefaultBinder
from kubelite.scheduler.plugins.defaultpreemption import DefaultPreemption
from kubelite.scheduler.plugins.interpodaffinity import InterPodAffinity
from kubelite.scheduler.plugins.nodeaffinity import NodeAffinity
from kubelite.scheduler.plugins.nodename import NodeName
from kubelite.scheduler.plugins.nodeports import NodePorts
from kubelite.scheduler.plugins.noderesources import NodeResourcesBalancedAllocation, NodeResourcesFit
from kubelite.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from kubelite.scheduler.plugins.podtopologyspread import PodTopologySpread
from kubelite.scheduler.plugins.selectorspread import SelectorSpread
from kubelite.scheduler.plugins.tainttoleration import TaintToleration
from kubelite.scheduler.plugins.volumebinding import VolumeBinding

DEFAULT_PLUGINS: list[type[Plugin]] = [
    NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, VolumeBinding,
    PodTopologySpread, InterPodAffinity, NodeResourcesBalancedAllocation, SelectorSpread,
    DefaultPreemption, DefaultBinder,
]


def default_plugins(handle: Handle) -> list[Plugin]:
    return [cls(handle) for cls in DEFAULT_PLUGINS]
