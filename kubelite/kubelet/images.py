"""Image pulls per imagePullPolicy with per-image backoff: ErrImagePull, then ImagePullBackOff."""

from __future__ import annotations

import time
from typing import Any

from kubelite.kubelet.backoff import Backoff
from kubelite.runtime.cri import CRIError, RuntimeClient, pb


class ImagePullError(Exception):
    """`reason` is the container's waiting reason (ErrImagePull, ImagePullBackOff, ErrImageNeverPull)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def pull_policy(container: dict) -> str:
    policy = container.get("imagePullPolicy")
    if policy:
        return policy
    image = container.get("image", "")
    tag = image.rsplit("/", 1)[-1]
    return "Always" if "@" not in image and (":" not in tag or tag.endswith(":latest")) else "IfNotPresent"


class ImageManager:
    def __init__(self, runtime: RuntimeClient, recorder: Any):
        self.runtime = runtime
        self.recorder = recorder
        self.backoff = Backoff(10.0, 300.0)
        self._failed_at: dict[str, float] = {}

    async def ensure(self, pod: dict, container: dict, ref_obj: dict, sandbox_config: pb.PodSandboxConfig) -> str:
        """The image ID to create the container from, pulling if the policy says so."""
        image = container.get("image", "")
        policy = pull_policy(container)
        present = await self.runtime.image_status(image)
        if policy == "Never" or (policy == "IfNotPresent" and present is not None):
            if present is None:
                msg = f'Container image "{image}" is not present with pull policy of Never'
                self.recorder.event(ref_obj, "Warning", "ErrImageNeverPull", msg)
                raise ImagePullError("ErrImageNeverPull", msg)
            self.recorder.event(ref_obj, "Normal", "Pulled", f'Container image "{image}" already present on machine')
            return present.id
        key = f"{(pod.get('metadata') or {}).get('uid')}/{image}"
        failed_at = self._failed_at.get(key)
        if failed_at is not None and self.backoff.in_backoff_since(key, failed_at):
            msg = f'Back-off pulling image "{image}"'
            self.recorder.event(ref_obj, "Normal", "BackOff", msg)
            self.recorder.event(ref_obj, "Warning", "Failed", "Error: ImagePullBackOff")
            raise ImagePullError("ImagePullBackOff", msg)
        self.recorder.event(ref_obj, "Normal", "Pulling", f'Pulling image "{image}"')
        t0 = time.monotonic()
        try:
            ref = await self.runtime.pull_image(image, sandbox_config)
        except CRIError as e:
            self.backoff.next(key)
            self._failed_at[key] = time.time()
            self.recorder.event(ref_obj, "Warning", "Failed", f'Failed to pull image "{image}": {e}')
            self.recorder.event(ref_obj, "Warning", "Failed", "Error: ErrImagePull")
            raise ImagePullError("ErrImagePull", str(e)) from None
        self.backoff.reset(key)
        self._failed_at.pop(key, None)
        took = time.monotonic() - t0
        size = ""
        st = await self.runtime.image_status(ref or image)
        if st is not None:
            size = f" Image size: {st.size} bytes."
        self.recorder.event(ref_obj, "Normal", "Pulled",
                            f'Successfully pulled image "{image}" in {took:.3f}s ({took:.3f}s including waiting).{size}')
        return ref

    def forget_pod(self, uid: str) -> None:
        self.backoff.forget_prefix(uid + "/")
        for k in [k for k in self._failed_at if k.startswith(uid + "/")]:
            del self._failed_at[k]
