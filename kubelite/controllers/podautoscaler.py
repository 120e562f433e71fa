"""HorizontalPodAutoscaler controller (upstream pkg/controller/podautoscaler), without a metrics source.

Every 15 s (upstream's --horizontal-pod-autoscaler-sync-period) each HPA reads its target's scale
subresource, brings a replica count outside [minReplicas, maxReplicas] back inside it, and otherwise
asks the resource metrics API for its metrics. kubelite serves no metrics.k8s.io (there is no
metrics-server), so that ask fails exactly as it does on an upstream cluster without one: the
ScalingActive condition turns False with reason FailedGetResourceMetric, and the same Warning
events appear, so `kubectl get/describe hpa` read as they do there (`cpu: <unknown>/50%`).
"""

from __future__ import annotations

import logging
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory, meta_namespace_key, split_meta_namespace_key

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SYNC_PERIOD = 15.0
COMPONENT = "horizontal-pod-autoscaler"


def set_condition(status: Obj, ctype: str, value: str, reason: str, message: str, now: str) -> None:
    """setCondition: lastTransitionTime moves only when the status flips."""
    metautil.set_status_condition(status.setdefault("conditions", []), {
        "type": ctype, "status": value, "lastTransitionTime": now, "reason": reason, "message": message})


class HorizontalPodAutoscalerController:
    def __init__(self, client: Any, factory: SharedInformerFactory, registry: Any, workers: int = 2):
        self.client = client
        self.registry = registry
        self.hpas = client.resource("autoscaling", "v2", "horizontalpodautoscalers")
        self.informer = factory.informer("autoscaling", "v2", "horizontalpodautoscalers")
        self.recorder = EventRecorder(client, COMPONENT)
        self.controller = Controller("horizontal-pod-autoscaler", self.sync, workers=workers)
        # a new HPA is looked at at once; changes wait for the next period, as upstream's queue does
        self.informer.add_handler(
            on_add=lambda obj: self.controller.enqueue(obj),
            on_update=lambda _old, new: self.controller.enqueue_after(meta_namespace_key(new), SYNC_PERIOD))

    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        hpa = self.informer.store.get(ns, name)
        if hpa is None or (hpa.get("metadata") or {}).get("deletionTimestamp"):
            return None
        before = metautil.deep_copy(hpa.get("status") or {})
        status = metautil.deep_copy(before)
        await self._reconcile(hpa, status)
        if status != before:
            try:
                await self.hpas.update_status({**hpa, "status": status}, namespace=ns)
            except StatusError as e:
                if e.code not in (404, 409):
                    raise
        return SYNC_PERIOD

    async def _reconcile(self, hpa: Obj, status: Obj) -> None:
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        ns = hpa["metadata"]["namespace"]
        now = metautil.now_rfc3339()
        reference = f"{ref.get('kind')}/{ref.get('name')}"
        try:
            target = self._scale_resource(ref)
            scale = await target.get_subresource(ref.get("name", ""), "scale", namespace=ns)
        except (StatusError, LookupError) as e:
            message = e.message if isinstance(e, StatusError) else str(e)
            self.recorder.event(hpa, "Warning", "FailedGetScale", message)
            set_condition(status, "AbleToScale", "False", "FailedGetScale",
                          f"the HPA controller was unable to get the target's current scale: {message}", now)
            return
        set_condition(status, "AbleToScale", "True", "SucceededGetScale",
                      "the HPA controller was able to get the target's current scale", now)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        min_replicas = int(spec.get("minReplicas") or 1)
        max_replicas = int(spec.get("maxReplicas") or 0)
        status["currentReplicas"] = current
        if current == 0 and min_replicas != 0:
            status["desiredReplicas"] = 0
            set_condition(status, "ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero", now)
            return
        if current > max_replicas:
            desired, reason = max_replicas, "Current number of replicas above Spec.MaxReplicas"
        elif current < min_replicas:
            desired, reason = min_replicas, "Current number of replicas below Spec.MinReplicas"
        else:
            await self._metrics_replicas(hpa, status, now)
            status.setdefault("desiredReplicas", 0)
            return
        scale["spec"] = {**(scale.get("spec") or {}), "replicas": desired}
        try:
            await target.update_subresource(ref.get("name", ""), "scale", scale, namespace=ns)
        except StatusError as e:
            self.recorder.event(hpa, "Warning", "FailedRescale", f"New size: {desired}; reason: {reason}; "
                                                                 f"error: {e.message}")
            set_condition(status, "AbleToScale", "False", "FailedUpdateScale",
                          f"the HPA controller was unable to update the target scale: {e.message}", now)
            return
        log.info("%s: scaled %s to %d (%s)", meta_namespace_key(hpa), reference, desired, reason)
        set_condition(status, "AbleToScale", "True", "SucceededRescale",
                      f"the HPA controller was able to update the target scale to {desired}", now)
        self.recorder.event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
        status["desiredReplicas"] = desired
        status["lastScaleTime"] = now

    def _scale_resource(self, ref: Obj) -> Any:
        """The client of the target's resource (upstream's RESTMapper), when it has a scale subresource."""
        api_version = ref.get("apiVersion") or ""
        group, _, version = api_version.rpartition("/")
        res = self.registry.by_kind(group, version, ref.get("kind") or "")
        if res is None or "scale" not in res.subresources:
            raise LookupError(f'no matches for kind "{ref.get("kind")}" in group "{group}"')
        return self.client.resource(res.group, res.version, res.plural)

    async def _metrics_replicas(self, hpa: Obj, status: Obj, now: str) -> None:
        """computeReplicasForMetrics: every metric fails for want of a metrics API (see the module doc)."""
        metrics = (hpa.get("spec") or {}).get("metrics") or []
        errors: list[str] = []
        for metric in metrics:
            reason, err = self._failure_reason(metric), self._unavailable(metric)
            self.recorder.event(hpa, "Warning", reason, err)
            set_condition(status, "ScalingActive", "False", reason,
                          f"the HPA was unable to compute the replica count: {err}", now)
            errors.append(f"failed to get {self._metric_name(metric)} value: {err}")
        if errors:
            self.recorder.event(hpa, "Warning", "FailedComputeMetricsReplicas",
                                f"invalid metrics ({len(errors)} invalid out of {len(metrics)}), "
                                f"first error is: {errors[0]}")

    @staticmethod
    def _metric_name(metric: Obj) -> str:
        mtype = metric.get("type", "")
        if mtype in ("Resource", "ContainerResource"):
            src = metric.get("resource" if mtype == "Resource" else "containerResource") or {}
            return f"{src.get('name', '')} resource metric"
        return {"Pods": "pods metric", "Object": "object metric", "External": "external metric"}.get(
            mtype, f"{mtype} metric")

    @staticmethod
    def _failure_reason(metric: Obj) -> str:
        return {"Resource": "FailedGetResourceMetric", "ContainerResource": "FailedGetContainerResourceMetric",
                "Pods": "FailedGetPodsMetric", "Object": "FailedGetObjectMetric",
                "External": "FailedGetExternalMetric"}.get(metric.get("type", ""), "InvalidMetricSourceType")

    @staticmethod
    def _unavailable(metric: Obj) -> str:
        mtype = metric.get("type", "")
        if mtype in ("Resource", "ContainerResource"):
            src = metric.get("resource" if mtype == "Resource" else "containerResource") or {}
            name = src.get("name", "")
            what = "utilization" if (src.get("target") or {}).get("type") == "Utilization" else "usage"
            return (f"failed to get {name} {what}: unable to get metrics for resource {name}: unable to fetch "
                    "metrics from resource metrics API: the server could not find the requested resource "
                    "(get pods.metrics.k8s.io)")
        api = "external.metrics.k8s.io" if mtype == "External" else "custom.metrics.k8s.io"
        return (f"unable to get metric: unable to fetch metrics from {'external' if mtype == 'External' else 'custom'}"
                f" metrics API: the server could not find the requested resource ({api})")

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.recorder.stop()
