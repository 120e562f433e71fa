"""metrics.k8s.io/v1beta1 NodeMetrics and PodMetrics: read-only, computed by the metrics server.

Upstream serves this group from metrics-server through the aggregator; kubelite serves it in process
(kubelite.metrics.server binds itself as the entries' `backend` when it starts). Only get and list,
as metrics-server; the table columns are metrics-server's (CPU, memory, window).
"""

from __future__ import annotations

from decimal import Decimal

from kubelite.api import errors
from kubelite.api.kinds.common import format_quantity, parse_quantity
from kubelite.api.registry import Column, Obj, Registry, Resource

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"


class Unavailable:
    """The backend until the metrics server runs: what the aggregator answers for an unavailable APIService."""

    def __init__(self, plural: str):
        self.plural = plural

    def _error(self, verb: str) -> errors.StatusError:
        return errors.StatusError(503, "ServiceUnavailable", "the server is currently unable to handle the request "
                                                             f"({verb} {self.plural}.{GROUP})")

    async def get(self, namespace: str | None, name: str) -> Obj:
        raise self._error("get")

    async def list(self, namespace: str | None, label_selector: str = "", field_selector: str = "") -> Obj:
        raise self._error("get")


def _sum(usages: list[dict], name: str) -> str:
    total = Decimal(0)
    for u in usages:
        try:
            total += parse_quantity(u.get(name, "0"))
        except ValueError:
            pass
    return format_quantity(total, "BinarySI" if name == "memory" else "DecimalSI")


def node_metrics_row(obj: Obj) -> list:
    usage = obj.get("usage") or {}
    return [usage.get("cpu", ""), usage.get("memory", ""), obj.get("window", "")]


def pod_metrics_row(obj: Obj) -> list:
    usages = [c.get("usage") or {} for c in obj.get("containers") or []]
    return [_sum(usages, "cpu"), _sum(usages, "memory"), obj.get("window", "")]


# metrics-server's ConvertToTable: the resource names (sorted) as quantity columns, then the window
COLUMNS = (Column("cpu", "string", format="quantity"), Column("memory", "string", format="quantity"),
           Column("Window", "string", format="duration"))


def register(reg: Registry) -> None:
    for kind, plural, namespaced, row in (("NodeMetrics", "nodes", False, node_metrics_row),
                                          ("PodMetrics", "pods", True, pod_metrics_row)):
        reg.register(Resource(group=GROUP, version=VERSION, kind=kind, plural=plural, namespaced=namespaced,
                              verbs=("get", "list"), columns=COLUMNS, row=row, backend=Unavailable(plural),
                              singular_name=""))  # metrics-server's GetSingularName() returns ""
