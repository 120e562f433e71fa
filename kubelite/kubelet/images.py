"""Image pulls per imagePullPolicy with per-image backoff: ErrImagePull, then ImagePullBackOff."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from kubelite.kubelet.backoff import Backoff
from kubelite.kubelet.credentials import AuthConfig, keyring_from_secrets
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


class PullErrors(CRIError):
    """Every credential failed: printed as upstream's error aggregate, "[err1, err2]"."""

    def __init__(self, errors: list[CRIError]):
        super().__init__(errors[-1].method, errors[-1].code, errors[-1].details)
        self.args = ("[" + ", ".join(str(e) for e in errors) + "]",)

    def __str__(self) -> str:
        return self.args[0]


class ImageManager:
    def __init__(self, runtime: RuntimeClient, recorder: Any):
        self.runtime = runtime
        self.recorder = recorder
        self.backoff = Backoff(10.0, 300.0)
        self._failed_at: dict[str, float] = {}
        self._prev_pull_err: dict[str, str] = {}  # upstream's prevPullErrMsg, shown during the back-off

    async def ensure(self, pod: dict, container: dict, ref_obj: dict, sandbox_config: pb.PodSandboxConfig,
                     pull_secrets: Sequence[dict] = ()) -> str:
        """The image ID to create the container from, pulling if the policy says so (with the
        credentials of `pull_secrets` that match the image's registry, each in turn, as upstream)."""
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
            prev = self._prev_pull_err.get(key)
            raise ImagePullError("ImagePullBackOff", f"{msg}: {prev}" if prev else msg)
        self._prev_pull_err.pop(key, None)
        self.recorder.event(ref_obj, "Normal", "Pulling", f'Pulling image "{image}"')
        t0 = time.monotonic()
        try:
            ref = await self._pull(image, sandbox_config, keyring_from_secrets(list(pull_secrets)).lookup(image))
        except CRIError as e:
            self.backoff.next(key)
            self._failed_at[key] = time.time()
            self.recorder.event(ref_obj, "Warning", "Failed", f'Failed to pull image "{image}": {e}')
            self.recorder.event(ref_obj, "Warning", "Failed", "Error: ErrImagePull")
            self._prev_pull_err[key] = f"ErrImagePull: {e}"
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

    async def _pull(self, image: str, sandbox_config: pb.PodSandboxConfig, creds: list[AuthConfig]) -> str:
        """Anonymously without matching credentials; else each in turn until one works (upstream's
        kuberuntime PullImage), failing with all the errors when none does."""
        if not creds:
            return await self.runtime.pull_image(image, sandbox_config)
        errors: list[CRIError] = []
        for cred in creds:
            auth = pb.AuthConfig(username=cred.username, password=cred.password)
            try:
                return await self.runtime.pull_image(image, sandbox_config, auth)
            except CRIError as e:
                errors.append(e)
        if len(errors) == 1:
            raise errors[0]
        raise PullErrors(errors)

    def forget_pod(self, uid: str) -> None:
        self.backoff.forget_prefix(uid + "/")
        for k in [k for k in self._failed_at if k.startswith(uid + "/")]:
            del self._failed_at[k]
        for k in [k for k in self._prev_pull_err if k.startswith(uid + "/")]:
            del self._prev_pull_err[k]
