"""HorizontalPodAutoscaler controller (upstream pkg/controller/podautoscaler) on the resource metrics API.

Every sync period (upstream's --horizontal-pod-autoscaler-sync-period, 15 s) each HPA reads its
target's scale subresource; a replica count outside [minReplicas, maxReplicas] is brought back
inside, otherwise every metric proposes a replica count and the largest wins. Resource and
ContainerResource metrics come from metrics.k8s.io PodMetrics (kubelite.metrics) and go through
upstream's replica calculator (kubelite.controllers.hpa_replicas): utilization of requests or an
average value, a 0.1 tolerance, missing, unready and initializing pods handled as upstream does. The
proposal is then stabilized and rate-limited, by the default rules (scale up at most to max(2x, 4);
scale down to the highest recommendation of the last 5 minutes) or by spec.behavior. Pods, Object and
External metrics need a custom or external metrics API, which kubelite does not serve: they fail as
on a cluster without one.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.api.kinds.common import format_quantity, parse_quantity
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory, meta_namespace_key, split_meta_namespace_key
from kubelite.controllers import hpa_replicas
from kubelite.controllers.hpa_replicas import MetricsError

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SYNC_PERIOD = 15.0
COMPONENT = "horizontal-pod-autoscaler"
DOWNSCALE_STABILIZATION_WINDOW = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4
METRICS_GROUP, METRICS_VERSION = "metrics.k8s.io", "v1beta1"


def set_condition(status: Obj, ctype: str, value: str, reason: str, message: str, now: str) -> None:
    """setCondition: lastTransitionTime moves only when the status flips."""
    metautil.set_status_condition(status.setdefault("conditions", []), {
        "type": ctype, "status": value, "lastTransitionTime": now, "reason": reason, "message": message})


@dataclass
class _ScaleEvent:
    change: int
    at: float


class HorizontalPodAutoscalerController:
    def __init__(self, client: Any, factory: SharedInformerFactory, registry: Any, workers: int = 2,
                 sync_period: float = SYNC_PERIOD):
        self.client = client
        self.registry = registry
        self.sync_period = sync_period
        self.hpas = client.resource("autoscaling", "v2", "horizontalpodautoscalers")
        self.pod_metrics = client.resource(METRICS_GROUP, METRICS_VERSION, "pods")
        self.informer = factory.informer("autoscaling", "v2", "horizontalpodautoscalers")
        self.pods = factory.informer("", "v1", "pods")
        self.recorder = EventRecorder(client, COMPONENT)
        self.controller = Controller("horizontal-pod-autoscaler", self.sync, workers=workers)
        # per HPA key: the recent recommendations and scale events (upstream keeps them in memory too)
        self.recommendations: dict[str, list[tuple[int, float]]] = {}
        self.scale_up_events: dict[str, list[_ScaleEvent]] = {}
        self.scale_down_events: dict[str, list[_ScaleEvent]] = {}
        # a new HPA is looked at at once; changes wait for the next period, as upstream's queue does
        self.informer.add_handler(
            on_add=lambda obj: self.controller.enqueue(obj),
            on_update=lambda _old, new: self.controller.enqueue_after(meta_namespace_key(new), self.sync_period))

    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        hpa = self.informer.store.get(ns, name)
        if hpa is None or (hpa.get("metadata") or {}).get("deletionTimestamp"):
            for state in (self.recommendations, self.scale_up_events, self.scale_down_events):
                state.pop(key, None)
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
        return self.sync_period

    async def _reconcile(self, hpa: Obj, status: Obj) -> None:
        """reconcileAutoscaler."""
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        ns = hpa["metadata"]["namespace"]
        key = meta_namespace_key(hpa)
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
        metric_statuses: list[Obj] | None = None
        rescale = True
        reason = ""
        if current == 0 and min_replicas != 0:
            desired, rescale = 0, False
            set_condition(status, "ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero", now)
        elif current > max_replicas:
            desired, reason = max_replicas, "Current number of replicas above Spec.MaxReplicas"
        elif current < min_replicas:
            desired, reason = min_replicas, "Current number of replicas below Spec.MinReplicas"
        else:
            proposal, metric_name, metric_statuses, err = await self._replicas_for_metrics(hpa, scale, status, now)
            if err is not None and proposal == -1:
                self._set_status(status, current, None, metric_statuses, False, now)
                self.recorder.event(hpa, "Warning", "FailedComputeMetricsReplicas", err)
                return
            desired, rescale_metric = 0, ""
            if proposal > desired:
                desired, rescale_metric = proposal, metric_name
            if desired > current:
                reason = f"{rescale_metric} above target"
            if desired < current:
                reason = "All metrics below target"
            if spec.get("behavior") is None:
                desired = self._normalize(key, status, current, desired, min_replicas, max_replicas, now)
            else:
                desired = self._normalize_with_behaviors(key, spec["behavior"], status, current, desired,
                                                         min_replicas, max_replicas, now)
            rescale = desired != current
        if rescale:
            scale["spec"] = {**(scale.get("spec") or {}), "replicas": desired}
            try:
                await target.update_subresource(ref.get("name", ""), "scale", scale, namespace=ns)
            except StatusError as e:
                self.recorder.event(hpa, "Warning", "FailedRescale",
                                    f"New size: {desired}; reason: {reason}; error: {e.message}")
                set_condition(status, "AbleToScale", "False", "FailedUpdateScale",
                              f"the HPA controller was unable to update the target scale: {e.message}", now)
                self._set_status(status, current, None, metric_statuses, False, now)
                return
            log.info("%s: scaled %s from %d to %d (%s)", key, reference, current, desired, reason)
            set_condition(status, "AbleToScale", "True", "SucceededRescale",
                          f"the HPA controller was able to update the target scale to {desired}", now)
            self.recorder.event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            self._store_scale_event(key, spec.get("behavior"), current, desired)
        else:
            desired = current
        self._set_status(status, current, desired, metric_statuses, rescale, now)

    @staticmethod
    def _set_status(status: Obj, current: int, desired: int | None, metric_statuses: list[Obj] | None,
                    rescaled: bool, now: str) -> None:
        """setStatus / setCurrentReplicasAndMetricsInStatus: conditions and lastScaleTime are kept."""
        status["currentReplicas"] = current
        if desired is not None:
            status["desiredReplicas"] = desired
        else:
            status.setdefault("desiredReplicas", 0)
        if metric_statuses:
            status["currentMetrics"] = metric_statuses
        else:
            status.pop("currentMetrics", None)
        if rescaled:
            status["lastScaleTime"] = now

    def _scale_resource(self, ref: Obj) -> Any:
        """The client of the target's resource (upstream's RESTMapper), when it has a scale subresource."""
        api_version = ref.get("apiVersion") or ""
        group, _, version = api_version.rpartition("/")
        res = self.registry.by_kind(group, version, ref.get("kind") or "")
        if res is None or "scale" not in res.subresources:
            raise LookupError(f'no matches for kind "{ref.get("kind")}" in group "{group}"')
        return self.client.resource(res.group, res.version, res.plural)

    # --- metrics: computeReplicasForMetrics ---

    async def _replicas_for_metrics(self, hpa: Obj, scale: Obj, status: Obj, now: str
                                    ) -> tuple[int, str, list[Obj], str | None]:
        """(replicas or -1, the metric that proposed them, statuses, error text)."""
        metrics = (hpa.get("spec") or {}).get("metrics") or []
        selector = (scale.get("status") or {}).get("selector") or ""
        if not selector:
            err = "selector is required"
            self.recorder.event(hpa, "Warning", "SelectorRequired", err)
            set_condition(status, "ScalingActive", "False", "InvalidSelector",
                          "the HPA target's scale is missing a selector", now)
            return -1, "", [], err
        spec_replicas = int((scale.get("spec") or {}).get("replicas") or 0)
        statuses: list[Obj] = []
        replicas, metric = 0, ""
        invalid = 0
        first_error: str | None = None
        first_condition: tuple[str, str] | None = None
        for spec in metrics:
            try:
                proposal, name, metric_status = await self._replicas_for_metric(hpa, spec, spec_replicas, selector)
            except MetricsError as e:
                reason = self._failure_reason(spec)
                self.recorder.event(hpa, "Warning", reason, e.detail)
                if invalid == 0:
                    first_error = f"failed to get {self._metric_name(spec)} value: {e.detail}"
                    first_condition = (reason, f"the HPA was unable to compute the replica count: {e.detail}")
                invalid += 1
                statuses.append({"type": ""})
                continue
            statuses.append(metric_status)
            if replicas == 0 or proposal > replicas:
                replicas, metric = proposal, name
        error = None
        if first_error is not None:
            error = f"invalid metrics ({invalid} invalid out of {len(metrics)}), first error is: {first_error}"
        if invalid >= len(metrics) or (invalid > 0 and replicas < spec_replicas):
            if first_condition is not None:
                set_condition(status, "ScalingActive", "False", first_condition[0], first_condition[1], now)
            return -1, "", statuses, error or "no metrics"
        set_condition(status, "ScalingActive", "True", "ValidMetricFound",
                      f"the HPA was able to successfully calculate a replica count from {metric}", now)
        return replicas, metric, statuses, error

    async def _replicas_for_metric(self, hpa: Obj, spec: Obj, current: int, selector: str
                                   ) -> tuple[int, str, Obj]:
        mtype = spec.get("type", "")
        if mtype not in ("Resource", "ContainerResource"):
            raise MetricsError(self._unavailable(spec))
        key = "resource" if mtype == "Resource" else "containerResource"
        src = spec.get(key) or {}
        resource, container = src.get("name", ""), src.get("container", "") if mtype == "ContainerResource" else ""
        target = src.get("target") or {}
        ns = hpa["metadata"]["namespace"]
        if target.get("averageValue") is not None:
            try:
                usage_target = int(math.ceil(parse_quantity(target["averageValue"]) * 1000))
                metrics = await self._resource_metric(resource, ns, selector, container)
                replicas, usage = hpa_replicas.raw_resource_replicas(
                    current, usage_target, resource, metrics, self._pods(ns, selector))
            except MetricsError as e:
                raise MetricsError(f"failed to get {resource} usage: {e.detail}") from None
            return replicas, f"{resource} resource", {"type": mtype, key: {
                "name": resource, **({"container": container} if container else {}),
                "current": {"averageValue": _milli_quantity(usage)}}}
        if target.get("averageUtilization") is None:
            raise MetricsError("invalid resource metric source: neither an average utilization target nor an "
                               "average value (usage) target was set")
        try:
            metrics = await self._resource_metric(resource, ns, selector, container)
            replicas, utilization, raw = hpa_replicas.resource_replicas(
                current, int(target["averageUtilization"]), resource, metrics, self._pods(ns, selector), container)
        except MetricsError as e:
            raise MetricsError(f"failed to get {resource} utilization: {e.detail}") from None
        what = "container resource" if container else "resource"
        return replicas, f"{resource} {what} utilization (percentage of request)", {"type": mtype, key: {
            "name": resource, **({"container": container} if container else {}),
            "current": {"averageUtilization": utilization, "averageValue": _milli_quantity(raw)}}}

    def _pods(self, namespace: str, selector: str) -> list[Obj]:
        from kubelite.api.selectors import parse_label_selector

        return self.pods.store.list(namespace, selector=parse_label_selector(selector))

    async def _resource_metric(self, resource: str, namespace: str, selector: str, container: str
                               ) -> dict[str, hpa_replicas.PodMetric]:
        """GetResourceMetric: PodMetrics of the selected pods, summed over (the named) containers, in milli."""
        try:
            listed = await self.pod_metrics.list(namespace, label_selector=selector)
        except StatusError as e:
            message = e.message
            if e.code == 404:
                message = "the server could not find the requested resource (get pods.metrics.k8s.io)"
            raise MetricsError(f"unable to get metrics for resource {resource}: unable to fetch metrics from "
                               f"resource metrics API: {message}") from None
        items = listed.get("items") or []
        if not items:
            raise MetricsError(f"unable to get metrics for resource {resource}: no metrics returned from resource "
                               "metrics API")
        return hpa_replicas.pod_metrics(items, resource, container)

    # --- normalization: stabilization and rate limits ---

    def _normalize(self, key: str, status: Obj, current: int, desired: int, min_replicas: int,
                   max_replicas: int, now: str) -> int:
        """normalizeDesiredReplicas: the default rules when spec.behavior is not set."""
        stabilized = self._stabilize(key, desired)
        if stabilized != desired:
            set_condition(status, "AbleToScale", "True", "ScaleDownStabilized",
                          "recent recommendations were higher than current one, applying the highest recent "
                          "recommendation", now)
        else:
            set_condition(status, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size",
                          now)
        scale_up_limit = max(int(SCALE_UP_LIMIT_FACTOR * current), SCALE_UP_LIMIT_MINIMUM)
        if max_replicas > scale_up_limit:
            maximum, cond, msg = scale_up_limit, "ScaleUpLimit", \
                "the desired replica count is increasing faster than the maximum scale rate"
        else:
            maximum, cond, msg = max_replicas, "TooManyReplicas", \
                "the desired replica count is more than the maximum replica count"
        if stabilized < min_replicas:
            result, cond, msg = min_replicas, "TooFewReplicas", \
                "the desired replica count is less than the minimum replica count"
        elif stabilized > maximum:
            result = maximum
        else:
            result, cond, msg = stabilized, "DesiredWithinRange", "the desired count is within the acceptable range"
        set_condition(status, "ScalingLimited", "False" if result == stabilized else "True", cond, msg, now)
        return result

    def _stabilize(self, key: str, desired: int) -> int:
        """stabilizeRecommendation: the highest recommendation of the downscale stabilization window."""
        now = time.time()
        cutoff = now - DOWNSCALE_STABILIZATION_WINDOW
        recs = self.recommendations.setdefault(key, [])
        highest = desired
        old = -1
        for i, (rec, at) in enumerate(recs):
            if at < cutoff:
                old = i
            elif rec > highest:
                highest = rec
        if old >= 0:
            recs[old] = (desired, now)
        else:
            recs.append((desired, now))
        return highest

    def _normalize_with_behaviors(self, key: str, behavior: Obj, status: Obj, current: int, desired: int,
                                  min_replicas: int, max_replicas: int, now: str) -> int:
        """normalizeDesiredReplicasWithBehaviors."""
        up = behavior.get("scaleUp") or {}
        down = behavior.get("scaleDown") or {}
        up_window = up.get("stabilizationWindowSeconds") or 0
        down_window = down.get("stabilizationWindowSeconds")
        if down_window is None:
            down_window = DOWNSCALE_STABILIZATION_WINDOW
        stabilized, reason, message = self._stabilize_with_behaviors(key, current, desired, up_window, down_window)
        if stabilized != desired:
            set_condition(status, "AbleToScale", "True", reason, message, now)
        else:
            set_condition(status, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size",
                          now)
        result, reason, message = self._rate_limited(key, up, down, current, stabilized, min_replicas, max_replicas)
        set_condition(status, "ScalingLimited", "False" if result == stabilized else "True", reason, message, now)
        return result

    def _stabilize_with_behaviors(self, key: str, current: int, desired: int, up_window: float,
                                  down_window: float) -> tuple[int, str, str]:
        now = time.time()
        up_cutoff, down_cutoff = now - up_window, now - down_window
        up_rec = down_rec = desired
        recs = self.recommendations.setdefault(key, [])
        old = -1
        for i, (rec, at) in enumerate(recs):
            if at > up_cutoff:
                up_rec = min(rec, up_rec)
            if at > down_cutoff:
                down_rec = max(rec, down_rec)
            if at < up_cutoff and at < down_cutoff:
                old = i
        recommendation = current
        if recommendation < up_rec:
            recommendation = up_rec
        if recommendation > down_rec:
            recommendation = down_rec
        if old >= 0:
            recs[old] = (desired, now)
        else:
            recs.append((desired, now))
        if desired >= current:
            return recommendation, "ScaleUpStabilized", ("recent recommendations were lower than current one, "
                                                         "applying the lowest recent recommendation")
        return recommendation, "ScaleDownStabilized", ("recent recommendations were higher than current one, "
                                                       "applying the highest recent recommendation")

    def _rate_limited(self, key: str, up: Obj, down: Obj, current: int, desired: int, min_replicas: int,
                      max_replicas: int) -> tuple[int, str, str]:
        """convertDesiredReplicasWithBehaviorRate."""
        ups, downs = self.scale_up_events.get(key, []), self.scale_down_events.get(key, [])
        if desired > current:
            limit = max(_scale_up_limit(current, ups, downs, up), current)
            if max_replicas > limit:
                maximum, reason, message = limit, "ScaleUpLimit", \
                    "the desired replica count is increasing faster than the maximum scale rate"
            else:
                maximum, reason, message = max_replicas, "TooManyReplicas", \
                    "the desired replica count is more than the maximum replica count"
            if desired > maximum:
                return maximum, reason, message
        elif desired < current:
            limit = min(_scale_down_limit(current, ups, downs, down), current)
            if min_replicas < limit:
                minimum, reason, message = limit, "ScaleDownLimit", \
                    "the desired replica count is decreasing faster than the maximum scale rate"
            else:
                minimum, reason, message = min_replicas, "TooFewReplicas", \
                    "the desired replica count is less than the minimum replica count"
            if desired < minimum:
                return minimum, reason, message
        return desired, "DesiredWithinRange", "the desired count is within the acceptable range"

    def _store_scale_event(self, key: str, behavior: Obj | None, previous: int, new: int) -> None:
        """storeScaleEvent: remembered for the rate limits of spec.behavior, pruned to the longest period."""
        if behavior is None:
            return
        now = time.time()
        if new > previous:
            events, rules = self.scale_up_events.setdefault(key, []), behavior.get("scaleUp") or {}
        else:
            events, rules = self.scale_down_events.setdefault(key, []), behavior.get("scaleDown") or {}
        longest = max((p.get("periodSeconds") or 0 for p in rules.get("policies") or []), default=0)
        events[:] = [e for e in events if e.at >= now - longest]
        events.append(_ScaleEvent(abs(new - previous), now))

    # --- what failures say ---

    @staticmethod
    def _metric_name(metric: Obj) -> str:
        mtype = metric.get("type", "")
        if mtype in ("Resource", "ContainerResource"):
            src = metric.get("resource" if mtype == "Resource" else "containerResource") or {}
            return f"{src.get('name', '')} {'resource' if mtype == 'Resource' else 'container resource'} metric"
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
        api = "external.metrics.k8s.io" if mtype == "External" else "custom.metrics.k8s.io"
        return (f"unable to get metric: unable to fetch metrics from {'external' if mtype == 'External' else 'custom'}"
                f" metrics API: the server could not find the requested resource ({api})")

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.recorder.stop()


def _milli_quantity(milli: int) -> str:
    """resource.NewMilliQuantity(v, DecimalSI).String()."""
    return format_quantity(Decimal(milli).scaleb(-3), "DecimalSI")


def _change_in_period(period: float, events: list[_ScaleEvent]) -> int:
    cutoff = time.time() - period
    return sum(e.change for e in events if e.at > cutoff)


def _scale_up_limit(current: int, ups: list[_ScaleEvent], downs: list[_ScaleEvent], rules: Obj) -> int:
    """calculateScaleUpLimitWithScalingRules."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    pick = min if select == "Min" else max
    result: int | None = None
    for p in rules.get("policies") or []:
        period = p.get("periodSeconds") or 0
        start = current - _change_in_period(period, ups) + _change_in_period(period, downs)
        if p.get("type") == "Pods":
            proposed = start + int(p.get("value") or 0)
        else:
            proposed = int(math.ceil(start * (1 + (p.get("value") or 0) / 100)))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def _scale_down_limit(current: int, ups: list[_ScaleEvent], downs: list[_ScaleEvent], rules: Obj) -> int:
    """calculateScaleDownLimitWithBehaviors."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    pick = max if select == "Min" else min
    result: int | None = None
    for p in rules.get("policies") or []:
        period = p.get("periodSeconds") or 0
        start = current - _change_in_period(period, ups) + _change_in_period(period, downs)
        if p.get("type") == "Pods":
            proposed = start - int(p.get("value") or 0)
        else:
            proposed = int(start * (1 - (p.get("value") or 0) / 100))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result
