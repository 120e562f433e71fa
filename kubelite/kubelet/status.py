"""Pod status from what the runtime reports, in upstream's words (kubelet_pods.go/getPhase,
status/generate.go): phase, conditions, init and app containerStatuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from kubelite.runtime.cri import pb

KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


def rfc3339(ns: int) -> str | None:
    if not ns:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Observed:
    """What one sync saw: instances per container name (newest first), the sandbox, and the
    reasons the kubelet itself has for a container waiting (image pull, backoff, config errors)."""

    instances: dict[str, list[pb.ContainerStatus]] = field(default_factory=dict)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    sandbox_ready: bool = False
    pod_ips: list[str] = field(default_factory=list)
    host_ip: str = ""
    runtime_name: str = "containerd"
    terminal: bool = False  # the pod is being torn down: containers will not restart


def _terminated(cs: pb.ContainerStatus, runtime: str) -> dict:
    reason = cs.reason or ("Completed" if cs.exit_code == 0 else "Error")
    t = {"exitCode": cs.exit_code, "reason": reason, "startedAt": rfc3339(cs.started_at),
         "finishedAt": rfc3339(cs.finished_at), "containerID": f"{runtime}://{cs.id}"}
    if cs.message:
        t["message"] = cs.message
    return t


def container_status(spec: dict, instances: list[pb.ContainerStatus], waiting: tuple[str, str] | None,
                     obs: Observed, *, init: bool, has_init_containers: bool, ready: bool, started: bool) -> dict:
    latest = instances[0] if instances else None
    prev = instances[1] if len(instances) > 1 else None
    rt = obs.runtime_name
    st: dict = {"name": spec["name"], "state": {}, "lastState": {}, "ready": False,
                "restartCount": latest.metadata.attempt if latest else 0, "image": spec.get("image", ""),
                "imageID": "", "started": False}
    if latest is not None:
        st["image"] = latest.image.image or spec.get("image", "")
        st["imageID"] = latest.image_ref
        st["containerID"] = f"{rt}://{latest.id}"
    running = latest is not None and latest.state == pb.CONTAINER_RUNNING
    if running:
        st["state"] = {"running": {"startedAt": rfc3339(latest.started_at)}}
        if prev is not None and prev.state == pb.CONTAINER_EXITED:
            st["lastState"] = {"terminated": _terminated(prev, rt)}
        st["ready"] = ready
        st["started"] = started
    elif waiting is not None and not obs.terminal:
        st["state"] = {"waiting": {"reason": waiting[0], **({"message": waiting[1]} if waiting[1] else {})}}
        if latest is not None and latest.state == pb.CONTAINER_EXITED:
            st["lastState"] = {"terminated": _terminated(latest, rt)}
    elif latest is not None and latest.state == pb.CONTAINER_EXITED:
        st["state"] = {"terminated": _terminated(latest, rt)}
        if prev is not None and prev.state == pb.CONTAINER_EXITED:
            st["lastState"] = {"terminated": _terminated(prev, rt)}
        if init and latest.exit_code == 0:
            st["ready"] = True
    else:
        # upstream's default waiting reason: PodInitializing for every container of a pod that has init
        # containers (so `kubectl get pods` shows PodInitializing between Init:N/N and Running)
        reason = "PodInitializing" if has_init_containers else "ContainerCreating"
        st["state"] = {"waiting": {"reason": reason}}
        if latest is not None and prev is not None and prev.state == pb.CONTAINER_EXITED:
            st["lastState"] = {"terminated": _terminated(prev, rt)}
    return st


def pod_phase(spec: dict, init_statuses: list[dict], statuses: list[dict], terminal: bool) -> str:
    """getPhase, as upstream's kubelet computes it (restartable init containers not supported)."""
    pending_init = failed_init = 0
    for s in init_statuses:
        state, last = s.get("state") or {}, s.get("lastState") or {}
        if "running" in state:
            pending_init += 1
        elif "terminated" in state:
            if state["terminated"].get("exitCode") != 0:
                failed_init += 1
        elif "waiting" in state:
            if "terminated" in last and last["terminated"].get("exitCode") != 0:
                failed_init += 1
            else:
                pending_init += 1
        else:
            pending_init += 1
    policy = spec.get("restartPolicy") or "Always"
    if failed_init and policy == "Never":
        return "Failed"
    running = waiting = stopped = succeeded = 0
    for s in statuses:
        state, last = s.get("state") or {}, s.get("lastState") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "waiting" in state:
            if "terminated" in last:
                stopped += 1
            else:
                waiting += 1
    if pending_init or failed_init:
        return "Pending"
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _cond(ctype: str, ok: bool, reason: str = "", message: str = "") -> dict:
    c = {"type": ctype, "status": "True" if ok else "False", "lastProbeTime": None}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def conditions(pod: dict, phase: str, init_statuses: list[dict], statuses: list[dict], sandbox_ready: bool) -> list[dict]:
    old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
    out = [dict(c) for t, c in old.items() if t not in KUBELET_CONDITIONS]
    terminal = phase in ("Succeeded", "Failed")
    pending_init = [s["name"] for s in init_statuses if not s.get("ready")]
    out.append(_cond("PodReadyToStartContainers", sandbox_ready))
    # upstream's GeneratePodInitializedCondition: a failed pod whose init containers never completed
    # (and no app container ever started) stays uninitialized
    app_started = any(("running" in (s.get("state") or {})) or ("terminated" in (s.get("state") or {}))
                      for s in statuses)
    if pending_init and phase != "Succeeded" and not app_started:
        out.append(_cond("Initialized", False, "ContainersNotInitialized",
                         f"containers with incomplete status: [{' '.join(pending_init)}]"))
    else:
        out.append(_cond("Initialized", True, "PodCompleted" if phase == "Succeeded" and init_statuses else ""))
    unready = [s["name"] for s in statuses if not s.get("ready")]
    if terminal:
        ready = _cond("Ready", False, "PodCompleted")
        containers_ready = _cond("ContainersReady", False, "PodCompleted")
    elif unready or pending_init:
        names = unready if not pending_init else [s["name"] for s in statuses]
        msg = f"containers with unready status: [{' '.join(names)}]"
        ready = _cond("Ready", False, "ContainersNotReady", msg)
        containers_ready = _cond("ContainersReady", False, "ContainersNotReady", msg)
    else:
        ready = _cond("Ready", True)
        containers_ready = _cond("ContainersReady", True)
        gates = [g.get("conditionType") for g in (pod.get("spec") or {}).get("readinessGates") or []]
        missing = [g for g in gates if (old.get(g) or {}).get("status") != "True"]
        if missing:
            ready = _cond("Ready", False, "ReadinessGatesNotReady",
                          f"corresponding condition of pod readiness gate \"{missing[0]}\" does not exist.")
    out += [ready, containers_ready, _cond("PodScheduled", True)]
    now = now_rfc3339()
    for c in out:
        prev = old.get(c["type"])
        if prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime"):
            c["lastTransitionTime"] = prev["lastTransitionTime"]
        else:
            c.setdefault("lastTransitionTime", now)
    return out


def pod_status(pod: dict, obs: Observed, ready_of, started_of) -> dict:
    """The whole status the kubelet owns; `ready_of(name, cs)`/`started_of(name, cs)` give probe verdicts."""
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    init_specs = spec.get("initContainers") or []
    init_statuses = []
    for c in init_specs:
        inst = obs.instances.get(c["name"], [])
        init_statuses.append(container_status(c, inst, obs.waiting.get(c["name"]), obs, init=True,
                                              has_init_containers=True, ready=False, started=False))
    statuses = []
    for c in spec.get("containers") or []:
        inst = obs.instances.get(c["name"], [])
        latest = inst[0] if inst else None
        running = latest is not None and latest.state == pb.CONTAINER_RUNNING
        started = running and started_of(c, latest)
        ready = running and started and ready_of(c, latest)
        statuses.append(container_status(c, inst, obs.waiting.get(c["name"]), obs, init=False,
                                         has_init_containers=bool(init_specs), ready=ready, started=started))
    phase = old.get("phase") if old.get("phase") in ("Succeeded", "Failed") else \
        pod_phase(spec, init_statuses, statuses, obs.terminal)
    status: dict = {"phase": phase}
    status["conditions"] = conditions(pod, phase, init_statuses, statuses, obs.sandbox_ready)
    if obs.host_ip:
        status["hostIP"] = obs.host_ip
        status["hostIPs"] = [{"ip": obs.host_ip}]
    ips = obs.pod_ips or [ip["ip"] for ip in old.get("podIPs") or [] if ip.get("ip")]
    if ips:
        status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": ip} for ip in ips]
    status["startTime"] = old.get("startTime") or now_rfc3339()
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = statuses
    ephemeral = []
    for c in spec.get("ephemeralContainers") or []:
        # never ready, never restarted: upstream reports only their state
        st = container_status(c, obs.instances.get(c["name"], []), obs.waiting.get(c["name"]), obs, init=False,
                              has_init_containers=False, ready=False, started=False)
        st.pop("started", None)
        ephemeral.append(st)
    if ephemeral:
        status["ephemeralContainerStatuses"] = ephemeral
    status["qosClass"] = old.get("qosClass") or _qos(spec)
    return status


def _qos(spec: dict) -> str:
    from kubelite.api.kinds.pod import compute_qos

    return compute_qos(spec)
