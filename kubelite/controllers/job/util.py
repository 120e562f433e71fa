"""Job helpers from upstream pkg/controller/job: completion indexes, pod failure policy, backoff."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kubelite.api.meta import parse_time

Obj = dict[str, Any]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
DEFAULT_POD_FAILURE_BACKOFF = 10.0
MAX_POD_FAILURE_BACKOFF = 600.0  # MaxJobPodFailureBackOff = 10 * time.Minute
MAX_UNCOUNTED_PODS = 500
MAX_POD_CREATE_DELETE_PER_SYNC = 500


# ---------------------------------------------------------------------------- conditions
def find_condition(job: Obj, ctype: str) -> Obj | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype and c.get("status") == "True":
            return c
    return None


def is_finished(job: Obj) -> bool:
    """IsJobFinished: a Complete or Failed condition is True."""
    return find_condition(job, "Complete") is not None or find_condition(job, "Failed") is not None


def new_condition(ctype: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {"type": ctype, "status": status, "lastProbeTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def ensure_condition(conditions: list[Obj], ctype: str, status: str, reason: str, message: str,
                     now: str) -> tuple[list[Obj], bool]:
    """ensureJobConditionStatus: update in place or append (never append a False condition)."""
    for i, c in enumerate(conditions):
        if c.get("type") == ctype:
            if c.get("status") == status and c.get("reason") == reason and c.get("message") == message:
                return conditions, False
            nc = dict(c, status=status, reason=reason, message=message, lastProbeTime=now)
            if c.get("status") != status:
                nc["lastTransitionTime"] = now
            out = list(conditions)
            out[i] = nc
            return out, True
    if status == "False":
        return conditions, False
    return [*conditions, new_condition(ctype, status, reason, message, now)], True


# ---------------------------------------------------------------------------- indexes
def completion_index(pod: Obj) -> int:
    """getCompletionIndex: the annotation (or label) value, -1 when absent or invalid."""
    m = pod.get("metadata") or {}
    v = (m.get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION)
    if v is None:
        v = (m.get("labels") or {}).get(COMPLETION_INDEX_ANNOTATION)
    if v is None:
        return -1
    try:
        i = int(v)
    except ValueError:
        return -1
    return i if i >= 0 else -1


def parse_indexes(s: str | None, completions: int) -> set[int]:
    """parseIndexesFromString: "1,3-5,7" -> {1,3,4,5,7}, ignoring indexes >= completions."""
    out: set[int] = set()
    for part in (s or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if hi else a
        except ValueError:
            continue
        for i in range(a, min(b, completions - 1) + 1):
            out.add(i)
    return out


def format_indexes(indexes: set[int]) -> str:
    """orderedIntervals.String: sorted, consecutive runs joined as `a-b`."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


def add_completion_index_env(spec: Obj) -> None:
    """addCompletionIndexEnvVariables: JOB_COMPLETION_INDEX from the downward API annotation."""
    env_var = {"name": COMPLETION_INDEX_ENV, "valueFrom": {"fieldRef": {
        "fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}}
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            env = c.setdefault("env", [])
            if not any(e.get("name") == COMPLETION_INDEX_ENV for e in env):
                env.append(dict(env_var))


# ---------------------------------------------------------------------------- pod failure policy
def _container_statuses(pod: Obj, on_container: str | None) -> list[Obj]:
    st = pod.get("status") or {}
    out = list(st.get("initContainerStatuses") or []) + list(st.get("containerStatuses") or [])
    if on_container:
        out = [c for c in out if c.get("name") == on_container]
    return out


def _exit_codes_match(rule: Obj, pod: Obj) -> bool:
    req = rule.get("onExitCodes")
    if not req:
        return False
    op = req.get("operator")
    values = set(req.get("values") or [])
    for cs in _container_statuses(pod, req.get("containerName")):
        term = (cs.get("state") or {}).get("terminated")
        if term is None:
            continue
        code = term.get("exitCode", 0)
        if code == 0:
            continue
        if (op == "In" and code in values) or (op == "NotIn" and code not in values):
            return True
    return False


def _conditions_match(rule: Obj, pod: Obj) -> bool:
    patterns = rule.get("onPodConditions") or []
    if not patterns:
        return False
    for c in (pod.get("status") or {}).get("conditions") or []:
        for pat in patterns:
            if c.get("type") == pat.get("type") and c.get("status") == (pat.get("status") or "True"):
                return True
    return False


def match_pod_failure_policy(job: Obj, pod: Obj) -> tuple[str | None, bool, str | None]:
    """matchPodFailurePolicy: (FailJob message or None, count the failure?, the action that matched)."""
    policy = (job.get("spec") or {}).get("podFailurePolicy")
    if not policy:
        return None, True, None
    for i, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        if _exit_codes_match(rule, pod):
            if action == "FailJob":
                container, code = _failing_container(rule, pod)
                msg = (f"Container {container} for pod {pod['metadata']['namespace']}/{pod['metadata']['name']} "
                       f"failed with exit code {code} matching {action} rule at index {i}")
                return msg, True, action
            if action == "Ignore":
                return None, False, action
            if action == "Count":
                return None, True, action
            if action == "FailIndex":
                return None, True, action
        elif _conditions_match(rule, pod):
            if action == "FailJob":
                ctype = next((c.get("type") for c in (pod.get("status") or {}).get("conditions") or []
                              for p in rule.get("onPodConditions") or [] if c.get("type") == p.get("type")), "")
                msg = (f"Pod {pod['metadata']['namespace']}/{pod['metadata']['name']} has condition {ctype} "
                       f"matching {action} rule at index {i}")
                return msg, True, action
            if action == "Ignore":
                return None, False, action
            return None, True, action
    return None, True, None


def _failing_container(rule: Obj, pod: Obj) -> tuple[str, int]:
    req = rule.get("onExitCodes") or {}
    values = set(req.get("values") or [])
    for cs in _container_statuses(pod, req.get("containerName")):
        code = ((cs.get("state") or {}).get("terminated") or {}).get("exitCode", 0)
        if code and ((req.get("operator") == "In" and code in values) or
                     (req.get("operator") == "NotIn" and code not in values)):
            return cs.get("name", ""), code
    return "", 0


# ---------------------------------------------------------------------------- backoff
def finished_time(pod: Obj) -> float:
    """getFinishedTime: the latest container termination, else the Ready=False transition, else the
    deletion timestamp, else now."""
    latest = None
    for cs in _container_statuses(pod, None):
        t = parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if t is not None and (latest is None or t > latest):
            latest = t
    if latest is not None:
        return latest
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "False":
            t = parse_time(c.get("lastTransitionTime"))
            if t is not None:
                return t
    t = parse_time((pod.get("metadata") or {}).get("deletionTimestamp"))
    return t if t is not None else time.time()


@dataclass
class BackoffRecord:
    failures_after_last_success: int = 0
    last_failure_time: float | None = None

    def remaining(self, now: float | None = None) -> float:
        """getRemainingTime: 10s doubling per failure since the last success, capped, minus time elapsed."""
        if self.failures_after_last_success == 0 or self.last_failure_time is None:
            return 0.0
        delay = DEFAULT_POD_FAILURE_BACKOFF
        for _ in range(1, self.failures_after_last_success):
            delay *= 2
            if delay > MAX_POD_FAILURE_BACKOFF:
                delay = MAX_POD_FAILURE_BACKOFF
                break
        elapsed = (time.time() if now is None else now) - self.last_failure_time
        return max(delay - elapsed, 0.0)


def new_backoff_record(prev: BackoffRecord | None, succeeded: list[Obj], failed: list[Obj]) -> BackoffRecord:
    """newBackoffRecord: failures after the last success among newly finished pods extend the streak."""
    rec = BackoffRecord(prev.failures_after_last_success, prev.last_failure_time) if prev else BackoffRecord()
    failed_times = sorted(finished_time(p) for p in failed)
    if not succeeded:
        if failed_times:
            rec.failures_after_last_success += len(failed_times)
            rec.last_failure_time = failed_times[-1]
        return rec
    rec = BackoffRecord()
    last_success = max(finished_time(p) for p in succeeded)
    for t in reversed(failed_times):
        if t <= last_success:
            break
        if rec.last_failure_time is None:
            rec.last_failure_time = t
        rec.failures_after_last_success += 1
    return rec
