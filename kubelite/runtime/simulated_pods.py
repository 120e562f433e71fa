"""What a simulated kubelet reports for a pod at a given moment, kwok-style but a little richer.

A pod's life is a pure function of its spec and the time since the simulator first saw it bound:

  0              ContainerCreating (Pending, hostIP, startTime)
  start_delay    sandbox ready (pod IP); init containers run one after another; images that cannot
                 be pulled stay Waiting: ErrImagePull, then ImagePullBackOff (10 s doubling to 300 s)
  + init time    containers Running, started; Ready after ready_delay (+ readinessProbe's
                 initialDelaySeconds when there is one)
  + run time     a container meant to exit does so: exit code 0 -> Completed, else Error; the pod
                 goes Succeeded/Failed (restartPolicy Never/OnFailure) or restarts with
                 CrashLoopBackOff back-off (Always, OnFailure after a failure)

A container is meant to exit when its command looks finite (see `container_behaviour`). An image
cannot be pulled when its reference contains `does-not-exist`, its tag is `broken`, or it is listed
in the settings' `unpullableImages` (a trailing `*` matches a prefix). Being pure, the status can be
recomputed after a restart of the simulator and needs no task per pod.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

# images the course uses as "a version that does not exist"
DEFAULT_UNPULLABLE = ("dockercoins/worker:v0.3",)
IMAGE_BACKOFF_INITIAL, IMAGE_BACKOFF_MAX = 10.0, 300.0
CRASH_BACKOFF_INITIAL, CRASH_BACKOFF_MAX = 10.0, 300.0
ERR_IMAGE_PULL_SHOWN = 2.0  # seconds ErrImagePull shows before the back-off starts

_SHELLS = {"sh", "bash", "ash", "dash", "zsh", "busybox"}
_FINITE_COMMANDS = {"true", "false", "echo", "printf", "date", "env", "printenv", "ls", "cat", "whoami", "id",
                    "hostname", "uname", "exit", "perl", "python", "python3", "nslookup", "dig", "wget", "curl",
                    "expr", "test", "pwd", "df", "du", "touch", "mkdir", "cp", "mv", "rm"}
_INFINITE_HINTS = re.compile(r"\bwhile\b|\buntil\b|sleep\s+inf|tail\s+-f|\bhttpd\b|\bnginx\b|nc\s+-l|\byes\b|"
                             r"\bping\b|\bwatch\b|\bfor\s*\(\(\s*;\s*;|\bcat\s*$|\bredis-server\b|\bsleep\s+\d{7,}")
_SLEEP = re.compile(r"\bsleep\s+(\d+(?:\.\d+)?)([smhd]?)\b")
_EXIT = re.compile(r"\bexit\s+(\S+)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_FINITE_IMAGES = ("hello-world",)


@dataclass
class Settings:
    """Knobs of the simulation; overridable through the desired-state ConfigMap's `_settings` key."""

    start_delay: float = 0.2        # ContainerCreating -> containers started
    ready_delay: float = 0.2        # started -> Ready
    stop_delay: float = 0.2         # deletion requested -> containers stopped and pod deleted (max)
    sleep_scale: float = 1.0        # `sleep N` lasts N * sleep_scale seconds
    cpu: str = "32"
    memory: str = "256Gi"
    pods: str = "110"
    ephemeral_storage: str = "100Gi"
    unpullable_images: list[str] = field(default_factory=lambda: list(DEFAULT_UNPULLABLE))

    @classmethod
    def from_dict(cls, d: dict) -> Settings:
        s = cls()
        names = {"startDelay": "start_delay", "readyDelay": "ready_delay", "stopDelay": "stop_delay",
                 "sleepScale": "sleep_scale", "cpu": "cpu", "memory": "memory", "pods": "pods",
                 "ephemeralStorage": "ephemeral_storage", "unpullableImages": "unpullable_images"}
        for k, attr in names.items():
            if k in d and d[k] is not None:
                v = d[k]
                if attr in ("start_delay", "ready_delay", "stop_delay", "sleep_scale"):
                    v = float(v)
                elif attr == "unpullable_images":
                    v = list(DEFAULT_UNPULLABLE) + [str(x) for x in v]
                else:
                    v = str(v)
                setattr(s, attr, v)
        return s


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_image(image: str) -> str:
    """docker.io/library/nginx:latest from nginx, as the CRI reports status.image."""
    name, tag = image, ""
    if "@" in name:
        return name if "/" in name.split("@")[0] else "docker.io/library/" + name
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    return f"{name}:{tag or 'latest'}"


def image_unpullable(image: str, settings: Settings) -> bool:
    if "does-not-exist" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    if ":" in last and last.rsplit(":", 1)[1] == "broken":
        return True
    for pattern in settings.unpullable_images:
        if pattern.endswith("*"):
            if image.startswith(pattern[:-1]):
                return True
        elif image == pattern or normalize_image(image) == normalize_image(pattern):
            return True
    return False


@dataclass
class Behaviour:
    """How a container's process behaves: runs forever, or exits after `duration` with `exit_code`."""

    finite: bool
    duration: float = 0.0
    exit_code: int = 0


def container_behaviour(c: dict, sleep_scale: float = 1.0) -> Behaviour:
    """Guess from command and args whether the container's process ends (Job-style) or serves forever."""
    argv = [str(x) for x in (c.get("command") or []) + (c.get("args") or [])]
    if not argv:
        image = (c.get("image") or "").rsplit("/", 1)[-1].split(":")[0]
        return Behaviour(True, 0.0, 0) if image in _FINITE_IMAGES else Behaviour(False)
    prog = argv[0].rsplit("/", 1)[-1]
    script = None
    if prog in _SHELLS:
        rest = argv[1:]
        if prog == "busybox" and rest and rest[0] in _SHELLS:
            rest = rest[1:]
        if "-c" in rest:
            i = rest.index("-c")
            script = " ".join(rest[i + 1:])
        elif not rest:
            return Behaviour(True, 0.0, 0)  # a shell without a terminal exits at once
        else:
            script = " ".join(rest)
    elif prog == "sleep":
        arg = argv[1] if len(argv) > 1 else ""
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", arg)
        if not m:
            return Behaviour(False)  # sleep infinity
        secs = float(m.group(1)) * _UNIT[m.group(2)]
        return Behaviour(True, secs * sleep_scale, 0)
    elif prog in _FINITE_COMMANDS:
        if prog == "false":
            return Behaviour(True, 0.0, 1)
        if prog == "exit":
            return Behaviour(True, 0.0, _exit_code(argv[1] if len(argv) > 1 else "0"))
        return Behaviour(True, 0.0, 0)
    else:
        return Behaviour(False)
    if _INFINITE_HINTS.search(script):
        return Behaviour(False)
    secs = sum(float(n) * _UNIT[u] for n, u in _SLEEP.findall(script))
    exits = _EXIT.findall(script)
    code = _exit_code(exits[-1]) if exits else 0
    if re.search(r"(^|[;&|\s])false\s*$", script.strip()) and not exits:
        code = 1
    return Behaviour(True, secs * sleep_scale, code)


def _exit_code(tok: str) -> int:
    tok = tok.strip("\"';)")
    try:
        return int(tok) & 0xFF
    except ValueError:
        return 1


def _hexid(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


@dataclass
class PodClock:
    """What the simulator remembers about a pod: when it first saw it bound, its IP, and the
    resourceVersion its last status patch was computed from (until the informer shows a newer one,
    the patch is not visible yet)."""

    seen_at: float
    ip: str = ""
    key: str = ""
    node: str = ""
    patched_from_rv: str = ""
    patched_at: float = 0.0  # monotonic time of that patch


def _backoff_phase(elapsed: float, shown: float, initial: float, maximum: float) -> tuple[bool, int, float]:
    """(in back-off?, retries so far, seconds to the next change) for ErrImagePull-style cycles."""
    t, k, backoff = 0.0, 0, initial
    while True:
        if elapsed < t + shown:
            return False, k, t + shown - elapsed
        t += shown
        if elapsed < t + backoff:
            return True, k, t + backoff - elapsed
        t += backoff
        k += 1
        backoff = min(backoff * 2, maximum)


def _container_timeline(c: dict, beh: Behaviour, restart_policy: str, run_at: float, now: float,
                        ready_delay: float) -> tuple[dict, float | None, str | None]:
    """A regular container's status fields at `now` (seconds since seen), the delay to its next change,
    and its final outcome ("Succeeded"/"Failed") when it will not run again."""
    probe = c.get("readinessProbe")
    ready_after = ready_delay + (float((probe or {}).get("initialDelaySeconds") or 0) if probe else 0.0)
    if not beh.finite:
        started = run_at
        ready = now >= started + ready_after
        nxt = None if ready else started + ready_after - now
        return {"state": "running", "started": started, "ready": ready, "restarts": 0}, nxt, None
    t, restarts, backoff = run_at, 0, CRASH_BACKOFF_INITIAL
    duration = max(beh.duration, 0.05)
    last: dict | None = None
    while True:
        if now < t + duration:
            ready = now >= t + ready_after and t + ready_after < t + duration
            nxt = min(t + duration, t + ready_after) - now if not ready else t + duration - now
            return ({"state": "running", "started": t, "ready": ready, "restarts": restarts, "last": last},
                    max(nxt, 0.01), None)
        finished = t + duration
        term = {"exit": beh.exit_code, "started": t, "finished": finished}
        restart = restart_policy == "Always" or (restart_policy == "OnFailure" and beh.exit_code != 0)
        if not restart:
            outcome = "Succeeded" if beh.exit_code == 0 else "Failed"
            return {"state": "terminated", "term": term, "restarts": restarts, "last": last}, None, outcome
        if now < finished + backoff:
            return ({"state": "crashloop", "term": term, "restarts": restarts + 1, "backoff": backoff,
                     "last": term}, finished + backoff - now, None)
        t = finished + backoff
        restarts += 1
        last = term
        backoff = min(backoff * 2, CRASH_BACKOFF_MAX)


def desired_status(pod: Obj, clock: PodClock, now_wall: float, host_ip: str, settings: Settings
                   ) -> tuple[dict, float | None]:
    """The pod's status at `now_wall`, and in how many seconds it next changes (None: never)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    old = pod.get("status") or {}
    uid, pod_name, ns = meta.get("uid", ""), meta.get("name", ""), meta.get("namespace", "")
    t0 = clock.seen_at
    now = now_wall - t0
    restart_policy = spec.get("restartPolicy") or "Always"
    containers = spec.get("containers") or []
    inits = spec.get("initContainers") or []
    nexts: list[float] = []
    start_at = settings.start_delay

    def at(offset: float) -> str:
        return rfc3339(t0 + offset)

    def ids(c: dict, restarts: int) -> dict:
        image = c.get("image") or ""
        return {"image": normalize_image(image),
                "imageID": normalize_image(image).rsplit(":", 1)[0] + "@sha256:" + _hexid("image", image),
                "containerID": "containerd://" + _hexid(uid, c.get("name", ""), str(restarts))}

    def waiting(c: dict, reason: str, message: str = "", restarts: int = 0, last: dict | None = None) -> dict:
        st: dict = {"name": c.get("name", ""), "state": {"waiting": {"reason": reason}}, "ready": False,
                    "restartCount": restarts, "image": normalize_image(c.get("image") or ""), "imageID": "",
                    "started": False, "lastState": {}}
        if message:
            st["state"]["waiting"]["message"] = message
        if last:
            st["lastState"] = {"terminated": _terminated(last, c)}
            st.update({k: v for k, v in ids(c, restarts - 1).items() if k != "image"})
        return st

    def _terminated(term: dict, c: dict) -> dict:
        code = term["exit"]
        return {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": at(term["started"]), "finishedAt": at(term["finished"]),
                "containerID": ids(c, 0)["containerID"]}

    # -- images --------------------------------------------------------------------------------
    all_containers = list(inits) + list(containers)
    bad = [c for c in all_containers if image_unpullable(c.get("image") or "", settings)]
    image_state: dict[str, tuple[str, str]] = {}
    if now >= start_at:
        for c in bad:
            in_backoff, _, nxt = _backoff_phase(now - start_at, ERR_IMAGE_PULL_SHOWN, IMAGE_BACKOFF_INITIAL,
                                                IMAGE_BACKOFF_MAX)
            image = c.get("image") or ""
            if in_backoff:
                image_state[c.get("name", "")] = ("ImagePullBackOff", f'Back-off pulling image "{image}"')
            else:
                image_state[c.get("name", "")] = (
                    "ErrImagePull",
                    f'failed to pull and unpack image "{normalize_image(image)}": failed to resolve reference '
                    f'"{normalize_image(image)}": {normalize_image(image)}: not found')
            nexts.append(nxt)

    # -- init containers, one after another ----------------------------------------------------
    init_statuses = []
    t = start_at
    inits_done = now >= start_at
    blocked = False
    for c in inits:
        name = c.get("name", "")
        sidecar = c.get("restartPolicy") == "Always"
        if not inits_done or blocked:
            init_statuses.append(waiting(c, "PodInitializing"))
            blocked = True
            continue
        if name in image_state:
            init_statuses.append(waiting(c, *image_state[name]))
            blocked = True
            continue
        if sidecar:
            st = {"name": name, "state": {"running": {"startedAt": at(t)}}, "ready": True, "restartCount": 0,
                  "started": True, "lastState": {}, **ids(c, 0)}
            init_statuses.append(st)
            continue
        beh = container_behaviour(c, settings.sleep_scale)
        duration = max(beh.duration if beh.finite else float("inf"), 0.05)
        if now < t + duration:
            init_statuses.append({"name": name, "state": {"running": {"startedAt": at(t)}}, "ready": False,
                                  "restartCount": 0, "started": True, "lastState": {}, **ids(c, 0)})
            if beh.finite:
                nexts.append(t + duration - now)
            blocked = True
            continue
        term = {"exit": beh.exit_code, "started": t, "finished": t + duration}
        init_statuses.append({"name": name, "state": {"terminated": _terminated(term, c)}, "ready": False,
                              "restartCount": 0, "started": False, "lastState": {}, **ids(c, 0)})
        t += duration
        if beh.exit_code != 0:
            blocked = True  # simplification: a failed init container fails the pod (as restartPolicy Never)
            init_failed = True
            break
    else:
        init_failed = False
    initialized = inits_done and not blocked
    run_at = t

    # -- regular containers -------------------------------------------------------------------
    statuses = []
    outcomes: list[str | None] = []
    for c in containers:
        name = c.get("name", "")
        if not initialized or now < start_at:
            reason = "PodInitializing" if inits and now >= start_at else "ContainerCreating"
            statuses.append(waiting(c, reason))
            outcomes.append(None)
            continue
        if name in image_state:
            statuses.append(waiting(c, *image_state[name]))
            outcomes.append(None)
            continue
        beh = container_behaviour(c, settings.sleep_scale)
        tl, nxt, outcome = _container_timeline(c, beh, restart_policy, run_at, now, settings.ready_delay)
        if nxt is not None:
            nexts.append(nxt)
        outcomes.append(outcome)
        last = tl.get("last")
        if tl["state"] == "running":
            st = {"name": name, "state": {"running": {"startedAt": at(tl["started"])}}, "ready": tl["ready"],
                  "restartCount": tl["restarts"], "started": True, "lastState": {}, **ids(c, tl["restarts"])}
            if last:
                st["lastState"] = {"terminated": _terminated(last, c)}
        elif tl["state"] == "terminated":
            st = {"name": name, "state": {"terminated": _terminated(tl["term"], c)}, "ready": False,
                  "restartCount": tl["restarts"], "started": False, "lastState": {}, **ids(c, tl["restarts"])}
            if last:
                st["lastState"] = {"terminated": _terminated(last, c)}
        else:  # crash loop back-off
            st = waiting(c, "CrashLoopBackOff",
                         f"back-off {int(tl['backoff'])}s restarting failed container={name} "
                         f"pod={pod_name}_{ns}({uid})", tl["restarts"], tl["last"])
        statuses.append(st)

    # -- phase and conditions -----------------------------------------------------------------
    sandbox = now >= start_at
    if init_failed:
        phase = "Failed"
    elif containers and all(o is not None for o in outcomes):
        phase = "Failed" if "Failed" in outcomes else "Succeeded"
    elif initialized and any(s["state"].get("running") or s["state"].get("terminated") or s["restartCount"]
                             for s in statuses):
        phase = "Running"
    else:
        phase = "Pending"
    not_ready = [s["name"] for s in statuses if not s["ready"]]
    ready = not not_ready and phase == "Running"
    old_conds = {c.get("type"): c for c in old.get("conditions") or []}

    def cond(ctype: str, ok: bool, reason: str = "", message: str = "") -> dict:
        prev = old_conds.get(ctype)
        status = "True" if ok else "False"
        if prev is not None and prev.get("status") == status:
            ltt = prev.get("lastTransitionTime")
        else:
            ltt = rfc3339(now_wall)
        c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": ltt}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        return c

    terminal = phase in ("Succeeded", "Failed")
    unready_msg = f"containers with unready status: [{' '.join(not_ready)}]"
    incomplete = [s["name"] for s in init_statuses if not s["state"].get("terminated")
                  and not s.get("started")]
    conditions = [
        cond("PodReadyToStartContainers", sandbox and not terminal),
        cond("Initialized", initialized or terminal, "" if initialized or terminal else "ContainersNotInitialized",
             "" if initialized or terminal else f"containers with incomplete status: [{' '.join(incomplete)}]"),
        cond("Ready", ready, "" if ready else ("PodCompleted" if terminal else "ContainersNotReady"),
             "" if ready or terminal else unready_msg),
        cond("ContainersReady", ready, "" if ready else ("PodCompleted" if terminal else "ContainersNotReady"),
             "" if ready or terminal else unready_msg),
    ]
    for c in old.get("conditions") or []:  # keep what others own: PodScheduled, DisruptionTarget...
        if c.get("type") not in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"):
            conditions.append(c)
    status: dict = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": rfc3339(t0),
        "containerStatuses": statuses,
        "qosClass": old.get("qosClass"),
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    if sandbox and clock.ip:
        status["podIP"] = clock.ip
        status["podIPs"] = [{"ip": clock.ip}]
    if not sandbox:
        nexts.append(start_at - now)
    for k in ("nominatedNodeName",):
        if old.get(k):
            status[k] = old[k]
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not isinstance(deadline, bool) and not terminal:
        if now >= deadline:
            status, terminal = deadline_exceeded_status(status, now_wall), True
        else:
            nexts.append(deadline - now)
    status = {k: v for k, v in status.items() if v is not None}
    return status, (min(nexts) if nexts and not terminal else None)


def deadline_exceeded_status(status: dict, now_wall: float) -> dict:
    """The kubelet's answer to a pod active longer than spec.activeDeadlineSeconds (counted from
    startTime): its containers are killed and it fails with reason DeadlineExceeded."""
    statuses = []
    for s in status.get("containerStatuses") or []:
        s = dict(s)
        running = (s.get("state") or {}).get("running")
        if running:
            s["state"] = {"terminated": {"exitCode": 137, "reason": "Error", "startedAt": running.get("startedAt"),
                                         "finishedAt": rfc3339(now_wall), "containerID": s.get("containerID", "")}}
        elif (s.get("state") or {}).get("waiting"):
            s["state"] = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown",
                                         "finishedAt": rfc3339(now_wall)}}
        s["ready"], s["started"] = False, False
        statuses.append(s)
    conditions = []
    for c in status.get("conditions") or []:
        if c.get("type") in ("Ready", "ContainersReady", "PodReadyToStartContainers") and c.get("status") != "False":
            c = {**c, "status": "False", "lastTransitionTime": rfc3339(now_wall)}
        if c.get("type") in ("Ready", "ContainersReady"):
            c = {**c, "reason": "PodFailed"}
            c.pop("message", None)
        conditions.append(c)
    return {**status, "phase": "Failed", "reason": "DeadlineExceeded",
            "message": "Pod was active on the node longer than the specified deadline",
            "containerStatuses": statuses, "conditions": conditions}


def stopped_status(pod: Obj, now_wall: float) -> dict:
    """Containers stopped for a graceful deletion: terminated, exit code 0 (the app honoured SIGTERM)."""
    old = pod.get("status") or {}
    statuses = []
    for s in old.get("containerStatuses") or []:
        s = dict(s)
        running = (s.get("state") or {}).get("running")
        if running:
            s["state"] = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": running.get("startedAt"),
                                         "finishedAt": rfc3339(now_wall), "containerID": s.get("containerID", "")}}
            s["ready"] = False
            s["started"] = False
        statuses.append(s)
    status = dict(old)
    status["containerStatuses"] = statuses
    return status
