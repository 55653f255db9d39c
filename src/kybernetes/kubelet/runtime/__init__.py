"""The container runtime seam of the node agent, shaped after CRI's RuntimeService.

The agent core (`kubelet.pods`) only calls these methods; `sim` implements them with
simulated sandboxes and containers (like kwok), a CRI client will implement them over
gRPC. Times are wall-clock seconds (`time.time()`), as CRI reports nanoseconds since
the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

CREATED, RUNNING, EXITED = "CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED"


class ContainerStartError(Exception):
    """A container could not be created or started; `reason` is the waiting reason the pod shows
    (ErrImagePull, ErrImageNeverPull, CreateContainerError, RunContainerError, ...)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass
class PodSandbox:
    id: str
    pod_uid: str
    namespace: str
    name: str
    ip: str
    created_at: float
    ready: bool = True


@dataclass
class ContainerStatus:
    id: str
    sandbox_id: str
    name: str
    attempt: int
    image: str
    image_ref: str
    state: str = CREATED
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    labels: dict = field(default_factory=dict)


class Runtime(Protocol):
    name: str
    version: str

    def update_runtime_config(self, pod_cidr: str) -> None: ...

    async def run_pod_sandbox(self, pod: dict) -> PodSandbox: ...

    async def stop_pod_sandbox(self, sandbox_id: str) -> None: ...

    async def remove_pod_sandbox(self, sandbox_id: str) -> None: ...

    async def release_pod_volumes(self, pod_uid: str) -> None:
        """Unmount and remove the pod's volumes (its containers have stopped): done before the
        kubelet lets the pod object go, as upstream's PodResourcesAreReclaimed asks."""

    def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[PodSandbox]: ...

    async def create_container(self, sandbox_id: str, pod: dict, container: dict, attempt: int) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, timeout: float) -> None: ...

    async def remove_container(self, container_id: str) -> None: ...

    def container_status(self, container_id: str) -> ContainerStatus | None: ...

    def list_containers(self, sandbox_id: str) -> list[ContainerStatus]: ...
