"""An asyncio client of a CRI runtime (containerd, CRI-O) on a unix socket.

One channel carries both services. Every method takes and returns the generated protobuf
messages of `api_pb2` (imported here as `pb`), so callers build requests with upstream's
field names: `await cri.runtime.Exec(pb.ExecRequest(container_id=..., cmd=[...], stdout=True))`.
The thin helpers below cover what the agent calls most; the raw stubs stay available as
`runtime` and `images` for everything else (Exec, Attach, PortForward, ReopenContainerLog
return the URL of the runtime's streaming server, which the kubelet's own server proxies).
"""

from __future__ import annotations

import asyncio

import grpc

from . import api_pb2 as pb
from . import api_pb2_grpc as pb_grpc

__all__ = ["CRIClient", "CRIError", "pb"]

MAX_MESSAGE = 16 * 1024 * 1024  # upstream kubelet's maxMsgSize


class CRIError(Exception):
    def __init__(self, code: grpc.StatusCode, details: str, method: str = ""):
        self.code, self.details, self.method = code, details, method
        super().__init__(f"{method}: {code.name}: {details}" if method else f"{code.name}: {details}")

    @property
    def not_found(self) -> bool:
        return self.code == grpc.StatusCode.NOT_FOUND


class _Calls:
    """Wrap a stub so every RPC has a deadline and raises CRIError instead of grpc's AioRpcError."""

    def __init__(self, stub, timeout: float):
        self._stub, self._timeout = stub, timeout

    def __getattr__(self, method: str):
        rpc = getattr(self._stub, method)

        async def call(request, timeout: float | None = None):
            try:
                return await rpc(request, timeout=timeout or self._timeout)
            except grpc.aio.AioRpcError as e:
                raise CRIError(e.code(), e.details() or "", method) from None

        call.__name__ = method
        return call


class CRIClient:
    def __init__(self, endpoint: str, timeout: float = 120.0):
        self.endpoint = endpoint if "://" in endpoint else f"unix://{endpoint}"
        self.timeout = timeout
        self.channel = grpc.aio.insecure_channel(
            self.endpoint, options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                    ("grpc.max_send_message_length", MAX_MESSAGE)])
        self.runtime = _Calls(pb_grpc.RuntimeServiceStub(self.channel), timeout)
        self.images = _Calls(pb_grpc.ImageServiceStub(self.channel), timeout)

    async def close(self) -> None:
        await self.channel.close()

    async def wait_ready(self, deadline: float = 30.0) -> pb.VersionResponse:
        """Wait until the runtime answers Version (it may still be starting)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        while True:
            try:
                return await self.version(timeout=2.0)
            except CRIError:
                if loop.time() > end:
                    raise
                await asyncio.sleep(0.2)

    # --- runtime service ----------------------------------------------------------------------
    async def version(self, timeout: float | None = None) -> pb.VersionResponse:
        return await self.runtime.Version(pb.VersionRequest(version="v1"), timeout=timeout)

    async def status(self) -> pb.StatusResponse:
        return await self.runtime.Status(pb.StatusRequest(), timeout=10.0)

    async def update_runtime_config(self, pod_cidr: str) -> None:
        config = pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr=pod_cidr))
        await self.runtime.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(runtime_config=config))

    async def run_pod_sandbox(self, config: pb.PodSandboxConfig, runtime_handler: str = "") -> str:
        resp = await self.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler))
        return resp.pod_sandbox_id

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        await self.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await self.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))

    async def pod_sandbox_status(self, sandbox_id: str) -> pb.PodSandboxStatus:
        return (await self.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))).status

    async def list_pod_sandboxes(self, labels: dict | None = None) -> list[pb.PodSandbox]:
        flt = pb.PodSandboxFilter(label_selector=labels or {})
        return list((await self.runtime.ListPodSandbox(pb.ListPodSandboxRequest(filter=flt))).items)

    async def create_container(self, sandbox_id: str, config: pb.ContainerConfig,
                               sandbox_config: pb.PodSandboxConfig) -> str:
        req = pb.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config)
        return (await self.runtime.CreateContainer(req)).container_id

    async def start_container(self, container_id: str) -> None:
        await self.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))

    async def stop_container(self, container_id: str, timeout: int) -> None:
        await self.runtime.StopContainer(pb.StopContainerRequest(container_id=container_id, timeout=timeout),
                                         timeout=self.timeout + timeout)

    async def remove_container(self, container_id: str) -> None:
        await self.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container_id))

    async def container_status(self, container_id: str) -> pb.ContainerStatus:
        return (await self.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=container_id))).status

    async def list_containers(self, sandbox_id: str = "", labels: dict | None = None) -> list[pb.Container]:
        flt = pb.ContainerFilter(pod_sandbox_id=sandbox_id, label_selector=labels or {})
        return list((await self.runtime.ListContainers(pb.ListContainersRequest(filter=flt))).containers)

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: int = 0) -> pb.ExecSyncResponse:
        req = pb.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=timeout)
        return await self.runtime.ExecSync(req, timeout=(timeout or 3600) + 10)

    async def exec_url(self, container_id: str, cmd: list[str], tty=False, stdin=False, stdout=True,
                       stderr=True) -> str:
        req = pb.ExecRequest(container_id=container_id, cmd=cmd, tty=tty, stdin=stdin, stdout=stdout,
                             stderr=stderr and not tty)
        return (await self.runtime.Exec(req)).url

    async def attach_url(self, container_id: str, tty=False, stdin=False, stdout=True, stderr=True) -> str:
        req = pb.AttachRequest(container_id=container_id, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr and not tty)
        return (await self.runtime.Attach(req)).url

    async def port_forward_url(self, sandbox_id: str, ports: list[int]) -> str:
        return (await self.runtime.PortForward(pb.PortForwardRequest(pod_sandbox_id=sandbox_id, port=ports))).url

    async def reopen_container_log(self, container_id: str) -> None:
        await self.runtime.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=container_id))

    # --- image service ------------------------------------------------------------------------
    async def image_status(self, image: str) -> pb.Image | None:
        resp = await self.images.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=image)))
        return resp.image if resp.HasField("image") else None

    async def pull_image(self, image: str, auth: pb.AuthConfig | None = None,
                         sandbox_config: pb.PodSandboxConfig | None = None) -> str:
        req = pb.PullImageRequest(image=pb.ImageSpec(image=image), auth=auth, sandbox_config=sandbox_config)
        return (await self.images.PullImage(req, timeout=600.0)).image_ref

    async def list_images(self) -> list[pb.Image]:
        return list((await self.images.ListImages(pb.ListImagesRequest())).images)

    async def remove_image(self, image: str) -> None:
        await self.images.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=image)))
