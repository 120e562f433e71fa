"""kube-scheduler for kubelite: a plugin framework (framework.py), its in-tree plugins (plugins/),
the cache of nodes and assumed pods, the scheduling queue, and the component that runs them."""

from kubelite.scheduler.scheduler import DEFAULT_SCHEDULER_NAME, Scheduler, num_feasible_nodes_to_find

__all__ = ["Scheduler", "DEFAULT_SCHEDULER_NAME", "num_feasible_nodes_to_find"]
