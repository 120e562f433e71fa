"""The kubelet's container events for simulated pods, read off the change between two statuses.

A simulated pod's status is a pure function of time (simulated_pods), so the events a real kubelet
would have sent while getting there are derived from what changed between the status the server has
and the one being written: a container that (re)started gets upstream's image, Created and Started
events; an image that cannot be pulled, ErrImagePull / ImagePullBackOff events; a crash loop, BackOff.
Texts are the kubelet's (pkg/kubelet/images and kuberuntime), except that a simulated pull has no
image size to report.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
Event = tuple[str, str, str]  # type, reason, message


def _state(st: Obj | None) -> tuple[str, str]:
    """(state kind, waiting reason or container id): what identifies one moment of a container."""
    if not st:
        return "", ""
    state = st.get("state") or {}
    if "waiting" in state:
        return "waiting", (state["waiting"] or {}).get("reason", "")
    if "running" in state:
        return "running", st.get("containerID", "")
    if "terminated" in state:
        return "terminated", st.get("containerID", "")
    return "", ""


def _pull_events(c: Obj, node_images: set[str]) -> list[Event]:
    image = c.get("image") or ""
    policy = c.get("imagePullPolicy") or "IfNotPresent"
    if policy == "Never" or (policy == "IfNotPresent" and image in node_images):
        return [("Normal", "Pulled", f'Container image "{image}" already present on machine')]
    node_images.add(image)
    return [("Normal", "Pulling", f'Pulling image "{image}"'),
            ("Normal", "Pulled", f'Successfully pulled image "{image}" in 200ms (200ms including waiting).')]


def container_events(pod: Obj, old: Obj, new: Obj, node_images: set[str]) -> list[Event]:
    """The events of the containers whose state differs between the `old` and `new` pod status.

    `node_images` is the node's set of images already pulled; pulls add to it."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    events: list[Event] = []
    for specs_key, status_key in (("initContainers", "initContainerStatuses"),
                                  ("containers", "containerStatuses")):
        before = {s.get("name"): s for s in old.get(status_key) or []}
        after = {s.get("name"): s for s in new.get(status_key) or []}
        for c in spec.get(specs_key) or []:
            name = c.get("name", "")
            was, now = _state(before.get(name)), _state(after.get(name))
            if now == was or not now[0]:
                continue
            image = c.get("image") or ""
            if now == ("waiting", "ErrImagePull"):
                message = ((after[name].get("state") or {}).get("waiting") or {}).get("message", "")
                events += [("Normal", "Pulling", f'Pulling image "{image}"'),
                           ("Warning", "Failed", f'Failed to pull image "{image}": {message}'),
                           ("Warning", "Failed", "Error: ErrImagePull")]
            elif now == ("waiting", "ImagePullBackOff"):
                events += [("Normal", "BackOff", f'Back-off pulling image "{image}"'),
                           ("Warning", "Failed", "Error: ImagePullBackOff")]
            elif now == ("waiting", "CrashLoopBackOff"):
                events.append(("Warning", "BackOff", f"Back-off restarting failed container {name} in pod "
                                                     f"{meta.get('name', '')}_{meta.get('namespace', '')}"
                                                     f"({meta.get('uid', '')})"))
            elif now[0] in ("running", "terminated") and now[1] != was[1]:
                events += _pull_events(c, node_images)
                events += [("Normal", "Created", f"Created container: {name}"),
                           ("Normal", "Started", f"Started container {name}")]
    return events


def killing_events(pod: Obj) -> list[Event]:
    """What the kubelet says when it stops a deleted pod's running containers."""
    status = pod.get("status") or {}
    return [("Normal", "Killing", f"Stopping container {s.get('name', '')}")
            for key in ("initContainerStatuses", "containerStatuses")
            for s in status.get(key) or [] if "running" in (s.get("state") or {})]

