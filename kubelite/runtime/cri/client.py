"""Async CRI v1 client: the kubelet's only way to touch containers, images and sandboxes.

Thin on purpose: one method per RPC, protobuf messages in and out, so the kubelet reads like
upstream's kuberuntime manager. gRPC failures become `CRIError` carrying the status code and the
runtime's own message (which the kubelet shows users, e.g. in ErrImagePull).
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from kubelite.runtime.cri import api_pb2 as pb
from kubelite.runtime.cri import api_pb2_grpc as rpc

CRI_API_VERSION = "v1"
DEFAULT_TIMEOUT = 120.0  # upstream's runtime-request-timeout is 2 minutes
MAX_MESSAGE = 16 * 1024 * 1024


class CRIError(Exception):
    """A failed CRI call; `code` is the gRPC status code (grpc.StatusCode)."""

    def __init__(self, method: str, code: grpc.StatusCode | None, details: str):
        super().__init__(f"rpc error: code = {_code_name(code)} desc = {details}")
        self.method = method
        self.code = code
        self.details = details

    @property
    def not_found(self) -> bool:
        return self.code == grpc.StatusCode.NOT_FOUND


def _code_name(code: grpc.StatusCode | None) -> str:
    if code is None:
        return "Unknown"
    return "".join(w.capitalize() for w in code.name.split("_")) if code.name != "OK" else "OK"


def endpoint_target(endpoint: str) -> str:
    """`unix:///run/x.sock`, `/run/x.sock` -> the gRPC target for a unix socket."""
    if endpoint.startswith("unix://"):
        return "unix:" + endpoint[len("unix://"):] if not endpoint.startswith("unix:///") else endpoint
    if endpoint.startswith("/"):
        return "unix://" + endpoint
    return endpoint


class RuntimeClient:
    """RuntimeService + ImageService on one channel; `await close()` when done."""

    def __init__(self, endpoint: str, timeout: float = DEFAULT_TIMEOUT):
        self.endpoint = endpoint
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(
            endpoint_target(endpoint),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                     ("grpc.max_send_message_length", MAX_MESSAGE)])
        self._runtime = rpc.RuntimeServiceStub(self._channel)
        self._images = rpc.ImageServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, stub, method: str, request, timeout: float | None = None):
        try:
            return await getattr(stub, method)(request, timeout=timeout or self.timeout)
        except grpc.aio.AioRpcError as e:
            raise CRIError(method, e.code(), e.details() or "") from None

    # ---- RuntimeService ---------------------------------------------------------------------

    async def version(self, timeout: float | None = None) -> pb.VersionResponse:
        return await self._call(self._runtime, "Version", pb.VersionRequest(version=CRI_API_VERSION), timeout)

    async def status(self) -> pb.StatusResponse:
        return await self._call(self._runtime, "Status", pb.StatusRequest())

    async def run_pod_sandbox(self, config: pb.PodSandboxConfig, runtime_handler: str = "") -> str:
        resp = await self._call(self._runtime, "RunPodSandbox",
                                pb.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler))
        return resp.pod_sandbox_id

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        await self._call(self._runtime, "StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await self._call(self._runtime, "RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))

    async def pod_sandbox_status(self, sandbox_id: str) -> pb.PodSandboxStatus:
        resp = await self._call(self._runtime, "PodSandboxStatus",
                                pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))
        return resp.status

    async def pod_sandbox_status_verbose(self, sandbox_id: str) -> tuple[pb.PodSandboxStatus, dict[str, str]]:
        """Status plus the runtime's verbose `info` (containerd: JSON with the netns path and pid)."""
        resp = await self._call(self._runtime, "PodSandboxStatus",
                                pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=True))
        return resp.status, dict(resp.info)

    async def list_pod_sandbox(self, labels: Mapping[str, str] | None = None,
                               state: int | None = None) -> list[pb.PodSandbox]:
        f = pb.PodSandboxFilter(label_selector=dict(labels or {}))
        if state is not None:
            f.state.state = state
        resp = await self._call(self._runtime, "ListPodSandbox", pb.ListPodSandboxRequest(filter=f))
        return list(resp.items)

    async def create_container(self, sandbox_id: str, config: pb.ContainerConfig,
                               sandbox_config: pb.PodSandboxConfig) -> str:
        resp = await self._call(self._runtime, "CreateContainer", pb.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config))
        return resp.container_id

    async def start_container(self, container_id: str) -> None:
        await self._call(self._runtime, "StartContainer", pb.StartContainerRequest(container_id=container_id))

    async def stop_container(self, container_id: str, timeout: int) -> None:
        """SIGTERM (or the image's STOPSIGNAL), then SIGKILL after `timeout` seconds, by the runtime."""
        await self._call(self._runtime, "StopContainer",
                         pb.StopContainerRequest(container_id=container_id, timeout=timeout),
                         timeout=self.timeout + max(timeout, 0))

    async def remove_container(self, container_id: str) -> None:
        await self._call(self._runtime, "RemoveContainer", pb.RemoveContainerRequest(container_id=container_id))

    async def list_containers(self, labels: Mapping[str, str] | None = None, sandbox_id: str = "",
                              state: int | None = None) -> list[pb.Container]:
        f = pb.ContainerFilter(pod_sandbox_id=sandbox_id, label_selector=dict(labels or {}))
        if state is not None:
            f.state.state = state
        resp = await self._call(self._runtime, "ListContainers", pb.ListContainersRequest(filter=f))
        return list(resp.containers)

    async def container_status(self, container_id: str) -> pb.ContainerStatus:
        resp = await self._call(self._runtime, "ContainerStatus",
                                pb.ContainerStatusRequest(container_id=container_id))
        return resp.status

    async def container_status_verbose(self, container_id: str) -> tuple[pb.ContainerStatus, dict[str, str]]:
        """Status plus the runtime's verbose `info` (containerd: JSON with the pid and the runtime spec)."""
        resp = await self._call(self._runtime, "ContainerStatus",
                                pb.ContainerStatusRequest(container_id=container_id, verbose=True))
        return resp.status, dict(resp.info)

    async def update_container_resources(self, container_id: str, linux: pb.LinuxContainerResources) -> None:
        await self._call(self._runtime, "UpdateContainerResources",
                         pb.UpdateContainerResourcesRequest(container_id=container_id, linux=linux))

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: int = 0) -> pb.ExecSyncResponse:
        """Run `cmd` in the container and wait; `timeout` 0 means none (the runtime's, not gRPC's)."""
        return await self._call(self._runtime, "ExecSync",
                                pb.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=timeout),
                                timeout=(timeout + 5) if timeout else 3600)

    async def exec(self, container_id: str, cmd: list[str], *, tty: bool = False, stdin: bool = False,
                   stdout: bool = True, stderr: bool = True) -> str:
        """The runtime's streaming URL for an interactive exec (speaks channel.k8s.io over WebSocket)."""
        resp = await self._call(self._runtime, "Exec", pb.ExecRequest(
            container_id=container_id, cmd=cmd, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr and not tty))
        return resp.url

    async def attach(self, container_id: str, *, tty: bool = False, stdin: bool = False, stdout: bool = True,
                     stderr: bool = True) -> str:
        resp = await self._call(self._runtime, "Attach", pb.AttachRequest(
            container_id=container_id, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr and not tty))
        return resp.url

    async def port_forward(self, sandbox_id: str, ports: list[int]) -> str:
        resp = await self._call(self._runtime, "PortForward",
                                pb.PortForwardRequest(pod_sandbox_id=sandbox_id, port=ports))
        return resp.url

    # ---- ImageService -----------------------------------------------------------------------

    async def list_images(self) -> list[pb.Image]:
        resp = await self._call(self._images, "ListImages", pb.ListImagesRequest())
        return list(resp.images)

    async def image_status(self, image: str) -> pb.Image | None:
        """The image if present on the node, else None."""
        resp = await self._call(self._images, "ImageStatus", pb.ImageStatusRequest(image=pb.ImageSpec(image=image)))
        return resp.image if resp.HasField("image") and resp.image.id else None

    async def pull_image(self, image: str, sandbox_config: pb.PodSandboxConfig | None = None,
                         auth: pb.AuthConfig | None = None) -> str:
        """Pull `image`; `auth` carries registry credentials (the kubelet's from imagePullSecrets)."""
        req = pb.PullImageRequest(image=pb.ImageSpec(image=image))
        if auth is not None:
            req.auth.CopyFrom(auth)
        if sandbox_config is not None:
            req.sandbox_config.CopyFrom(sandbox_config)
        resp = await self._call(self._images, "PullImage", req, timeout=600)
        return resp.image_ref

    async def remove_image(self, image: str) -> None:
        await self._call(self._images, "RemoveImage", pb.RemoveImageRequest(image=pb.ImageSpec(image=image)))

    async def image_fs_info(self) -> pb.ImageFsInfoResponse:
        return await self._call(self._images, "ImageFsInfo", pb.ImageFsInfoRequest())
