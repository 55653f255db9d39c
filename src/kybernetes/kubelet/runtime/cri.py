"""`cri`: the Runtime over a CRI runtime service (containerd), as upstream's kuberuntime manager.

The agent core reads sandboxes and containers synchronously, so this runtime keeps a cache
of `ContainerStatus` objects and updates them in place: after every start and stop, and
from a relist loop (upstream's PLEG) that compares `ListContainers` with the cache every
second and, for each container whose state changed, reads its full status and reports
an event for its pod. Stops run in the background (StopContainer blocks for the grace
period) and report when done, so a pod worker never waits for a container to die.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from ...api.protobuf import go_duration
from ..cgroups import remove_pod_cgroup
from ..cri.client import CRIClient, CRIError, pb
from ..envvars import EnvError, container_env
from ..objects import ObjectSource
from ..volume_sources import VolumeError
from ..volumes import VolumeManager
from . import CREATED, EXITED, RUNNING, ContainerStartError, ContainerStatus, PodSandbox
from .cri_config import POD_UID, container_config, pod_log_dir, sandbox_config

log = logging.getLogger("kybernetes.kubelet.cri")

STATES = {pb.CONTAINER_CREATED: CREATED, pb.CONTAINER_RUNNING: RUNNING, pb.CONTAINER_EXITED: EXITED,
          pb.CONTAINER_UNKNOWN: EXITED}


def _seconds(ns: int) -> float:
    return ns / 1e9 if ns else 0.0


def _fill(c: ContainerStatus, s: pb.ContainerStatus) -> ContainerStatus:
    c.state = STATES.get(s.state, EXITED)
    c.created_at, c.started_at, c.finished_at = _seconds(s.created_at), _seconds(s.started_at), _seconds(s.finished_at)
    c.exit_code, c.message = s.exit_code, s.message
    c.image_ref = s.image_ref or c.image_ref
    c.reason = s.reason
    if c.state == EXITED and not c.reason:
        c.reason = "Completed" if c.exit_code == 0 else "Error"
    return c


def default_pull_policy(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    tag = name.split(":", 1)[1] if ":" in name else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def registry_of(image: str) -> str:
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def auth_for(image: str, secrets: list[dict]) -> pb.AuthConfig | None:
    """Credentials for the image's registry from kubernetes.io/dockerconfigjson (or dockercfg) secrets."""
    registry = registry_of(image)
    aliases = {registry, f"https://{registry}", f"http://{registry}"}
    if registry == "docker.io":
        aliases |= {"index.docker.io", "https://index.docker.io/v1/", "registry-1.docker.io"}
    for secret in secrets:
        data = secret.get("data") or {}
        raw = data.get(".dockerconfigjson") or data.get(".dockercfg")
        if not raw:
            continue
        try:
            doc = json.loads(base64.b64decode(raw))
        except (ValueError, TypeError):
            continue
        for server, entry in (doc.get("auths", doc) or {}).items():
            if server.rstrip("/") in aliases or server in aliases:
                user, password = entry.get("username", ""), entry.get("password", "")
                if not user and entry.get("auth"):
                    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                return pb.AuthConfig(username=user, password=password, server_address=registry,
                                     identity_token=entry.get("identitytoken", ""))
    return None


SecretGetter = Callable[[str, str], Awaitable[dict | None]]  # (namespace, name) -> Secret or None


class CRIRuntime:
    name = "containerd"
    version = ""

    def __init__(self, client: CRIClient, host_ip: str, log_root: Path, volume_root: Path,
                 cgroup_root: str = "/kubepods", cluster_dns: list[str] | None = None,
                 get_secret: SecretGetter | None = None, on_pod_cidr: Callable[[str], None] | None = None,
                 source: ObjectSource | None = None, allocatable: Callable[[], dict] | None = None,
                 cluster_domain: str = "cluster.local", resolv_conf: str = "/etc/resolv.conf"):
        self.cri = client
        self.host_ip = host_ip
        self.log_root, self.volume_root = Path(log_root), Path(volume_root)
        self.cgroup_root = cgroup_root
        self.cluster_dns = cluster_dns or []
        self.get_secret = get_secret
        self.on_pod_cidr = on_pod_cidr
        self.source, self.allocatable = source, allocatable or dict
        self.cluster_domain, self.resolv_conf = cluster_domain, resolv_conf
        self.volumes = VolumeManager(self.volume_root, source, self.allocatable, cluster_domain)
        self.pod_cidr: ipaddress.IPv4Network | None = None
        self.sandboxes: dict[str, PodSandbox] = {}
        self.sandbox_configs: dict[str, pb.PodSandboxConfig] = {}
        self.containers: dict[str, ContainerStatus] = {}
        self.on_event: Callable[[str], None] = lambda pod_uid: None
        self.adoptable: set[str] | None = None  # None: not known, look for every pod
        # (pod, container, type, reason, message): the Events of the image manager (Pulled, Pulling, ...)
        self.on_container_event: Callable[[dict, dict, str, str, str], None] = lambda *event: None
        self._tasks: set[asyncio.Task] = set()

    async def init(self) -> None:
        v = await self.cri.wait_ready()
        self.name, self.version = v.runtime_name or "containerd", v.runtime_version
        # the pods that had sandboxes before this agent started: the only ones adoption looks for
        # (asking the runtime for every new pod cost containerd a ListPodSandbox per pod)
        self.adoptable = {s.labels[POD_UID] for s in await self.cri.list_pod_sandboxes() if POD_UID in s.labels}

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- runtime config and sandboxes ----------------------------------------------------------
    def update_runtime_config(self, pod_cidr: str) -> None:
        self.pod_cidr = ipaddress.ip_network(pod_cidr, strict=False) if pod_cidr else None
        if pod_cidr and self.on_pod_cidr is not None:
            self.on_pod_cidr(pod_cidr)  # writes the CNI network for it
        if pod_cidr:
            self._spawn(self._update_runtime_config(pod_cidr))

    async def _update_runtime_config(self, pod_cidr: str) -> None:
        try:
            await self.cri.update_runtime_config(pod_cidr)
        except CRIError as e:
            log.warning("UpdateRuntimeConfig failed: %s", e)

    def log_dir(self, pod: dict) -> Path:
        return pod_log_dir(self.log_root, pod)

    async def run_pod_sandbox(self, pod: dict) -> PodSandbox:
        meta = pod["metadata"]
        log_dir = self.log_dir(pod)
        await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)  # a journal wait: off the loop
        cfg = sandbox_config(pod, log_dir, self.cgroup_root, self.cluster_dns, self.cluster_domain,
                             resolv_conf=self.resolv_conf)
        self.volumes.prepare(pod)
        try:
            sid = await self.cri.run_pod_sandbox(cfg)
        except CRIError:
            await self._remove_failed_sandboxes(meta["uid"])  # containerd keeps the name of a failed one reserved
            await self.volumes.remove(meta["uid"])  # nothing of a pod without a sandbox stays behind
            raise
        st = await self.cri.pod_sandbox_status(sid)
        ip = self.host_ip if (pod.get("spec") or {}).get("hostNetwork") else st.network.ip
        sb = PodSandbox(sid, meta["uid"], meta.get("namespace", ""), meta["name"], ip, _seconds(st.created_at),
                        ready=st.state == pb.SANDBOX_READY)
        self.sandboxes[sid], self.sandbox_configs[sid] = sb, cfg
        return sb

    async def _remove_failed_sandboxes(self, pod_uid: str) -> None:
        for sb in await self.cri.list_pod_sandboxes({POD_UID: pod_uid}):
            if sb.id not in self.sandboxes:
                try:
                    await self.cri.stop_pod_sandbox(sb.id)
                    await self.cri.remove_pod_sandbox(sb.id)
                except CRIError as e:
                    log.warning("removing failed sandbox %s: %s", sb.id[:12], e)

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        await self.cri.stop_pod_sandbox(sandbox_id)
        sb = self.sandboxes.get(sandbox_id)
        if sb is not None:
            sb.ready = False
        for c in self.list_containers(sandbox_id):
            await self._refresh(c)

    async def release_pod_volumes(self, pod_uid: str) -> None:
        await self.volumes.remove(pod_uid)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        try:
            await self.cri.remove_pod_sandbox(sandbox_id)
        except CRIError as e:
            if not e.not_found:
                raise
        sb = self.sandboxes.pop(sandbox_id, None)
        self.sandbox_configs.pop(sandbox_id, None)
        for cid in [c.id for c in self.containers.values() if c.sandbox_id == sandbox_id]:
            self.containers.pop(cid, None)
        if sb is not None and not any(s.pod_uid == sb.pod_uid for s in self.sandboxes.values()):
            await self.volumes.remove(sb.pod_uid)
            await asyncio.to_thread(shutil.rmtree, self.log_root / f"{sb.namespace}_{sb.name}_{sb.pod_uid}",
                                    ignore_errors=True)
            await asyncio.to_thread(remove_pod_cgroup, self.cgroup_root, sb.pod_uid)

    def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[PodSandbox]:
        return [s for s in self.sandboxes.values() if pod_uid is None or s.pod_uid == pod_uid]

    # --- images --------------------------------------------------------------------------------
    async def ensure_image(self, pod: dict, container: dict, sandbox_cfg: pb.PodSandboxConfig | None) -> str:
        """The image's id, pulled first when the policy asks; with upstream's image manager's Events."""
        image = container.get("image") or ""
        if not image:
            raise ContainerStartError("InvalidImageName", "container has no image")
        policy = container.get("imagePullPolicy") or default_pull_policy(image)
        if policy != "Always":
            present = await self.cri.image_status(image)
            if present is not None:
                self.on_container_event(pod, container, "Normal", "Pulled",
                                        f'Container image "{image}" already present on machine')
                return present.id
            if policy == "Never":
                message = f'Container image "{image}" is not present with pull policy of Never'
                self.on_container_event(pod, container, "Warning", "ErrImageNeverPull", message)
                raise ContainerStartError("ErrImageNeverPull", message)
        auth = await self._pull_auth(pod, image)
        self.on_container_event(pod, container, "Normal", "Pulling", f'Pulling image "{image}"')
        started = time.monotonic()
        try:
            ref = await self.cri.pull_image(image, auth, sandbox_cfg)
        except CRIError as e:
            self.on_container_event(pod, container, "Warning", "Failed", f'Failed to pull image "{image}": {e.details}')
            raise ContainerStartError("ErrImagePull", str(e.details)) from None
        took = go_duration(round((time.monotonic() - started) * 1e9))
        pulled = await self.cri.image_status(ref)
        self.on_container_event(pod, container, "Normal", "Pulled",
                                f'Successfully pulled image "{image}" in {took} ({took} including waiting). '
                                f"Image size: {pulled.size if pulled is not None else 0} bytes.")
        return ref

    async def _pull_auth(self, pod: dict, image: str) -> pb.AuthConfig | None:
        refs = (pod.get("spec") or {}).get("imagePullSecrets") or []
        if not refs or self.get_secret is None:
            return None
        ns = pod["metadata"].get("namespace", "")
        secrets = [s for s in [await self.get_secret(ns, r.get("name", "")) for r in refs] if s]
        return auth_for(image, secrets)

    # --- containers ----------------------------------------------------------------------------
    async def create_container(self, sandbox_id: str, pod: dict, container: dict, attempt: int) -> str:
        sb, sandbox_cfg = self.sandboxes.get(sandbox_id), self.sandbox_configs.get(sandbox_id)
        if sb is None or sandbox_cfg is None:
            raise KeyError(f"no pod sandbox {sandbox_id}")
        image_ref = await self.ensure_image(pod, container, sandbox_cfg)
        await asyncio.to_thread((self.log_dir(pod) / container["name"]).mkdir, parents=True, exist_ok=True)
        for delay in (0.5, 1.0, None):  # a new namespace's account and kube-root-ca.crt come a moment later
            try:
                mounts = [pb.Mount(container_path=m.container_path, host_path=m.host_path, readonly=m.readonly)
                          for m in await self.volumes.container_mounts(pod, container, attempt, sb.ip)]
                break
            except VolumeError as e:
                if delay is None:
                    raise ContainerStartError("ContainerCreating", str(e)) from None
                await asyncio.sleep(delay)
        try:
            env = await container_env(pod, container, self.source, [sb.ip] if sb.ip else [], [self.host_ip],
                                      self.allocatable())
        except EnvError as e:
            raise ContainerStartError("CreateContainerConfigError", str(e)) from None
        cfg = container_config(pod, container, attempt, sandbox_cfg, image_ref, mounts, env)
        try:
            cid = await self.cri.create_container(sandbox_id, cfg, sandbox_cfg)
        except CRIError as e:
            raise ContainerStartError("CreateContainerError", e.details) from None
        self.containers[cid] = ContainerStatus(cid, sandbox_id, container["name"], attempt, container.get("image", ""),
                                               image_ref, CREATED, labels=dict(cfg.labels))
        return cid

    async def start_container(self, container_id: str) -> None:
        try:
            await self.cri.start_container(container_id)
        except CRIError as e:
            c = self.containers.get(container_id)
            if c is not None:
                await self._refresh(c)
            raise ContainerStartError("RunContainerError", e.details) from None
        c = self.containers.get(container_id)
        if c is not None:
            await self._refresh(c)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        c = self.containers.get(container_id)
        if c is None or c.state == EXITED:
            return
        self._spawn(self._stop(c, int(max(0, timeout))))

    async def _stop(self, c: ContainerStatus, timeout: int) -> None:
        try:
            await self.cri.stop_container(c.id, timeout)
        except CRIError as e:
            if not e.not_found:
                log.warning("stopping container %s failed: %s", c.id[:12], e)
        await self._refresh(c, notify=True)

    async def remove_container(self, container_id: str) -> None:
        try:
            await self.cri.remove_container(container_id)
        except CRIError as e:
            if not e.not_found:
                raise
        self.containers.pop(container_id, None)

    def container_status(self, container_id: str) -> ContainerStatus | None:
        return self.containers.get(container_id)

    def list_containers(self, sandbox_id: str) -> list[ContainerStatus]:
        return [c for c in self.containers.values() if c.sandbox_id == sandbox_id]

    # --- relist (PLEG) -------------------------------------------------------------------------
    async def _refresh(self, c: ContainerStatus, notify: bool = False) -> None:
        before = (c.state, c.finished_at)
        try:
            _fill(c, await self.cri.container_status(c.id))
        except CRIError as e:
            if not e.not_found:
                raise
            if c.state != EXITED:  # gone behind our back: report it as exited
                c.state, c.exit_code, c.reason = EXITED, 137, "ContainerStatusUnknown"
        if notify and (c.state, c.finished_at) != before:
            sb = self.sandboxes.get(c.sandbox_id)
            if sb is not None:
                self.on_event(sb.pod_uid)

    async def relist(self) -> None:
        listed = {c.id: STATES.get(c.state, EXITED) for c in await self.cri.list_containers()}
        for c in list(self.containers.values()):
            state = listed.get(c.id)
            if state != c.state:
                await self._refresh(c, notify=True)

    async def run(self, stop: asyncio.Event, period: float = 1.0) -> None:
        self._spawn(self.volumes.run(stop))
        while not stop.is_set():
            try:
                await self.relist()
            except Exception as e:  # noqa: BLE001 - the runtime may be restarting
                log.warning("relist failed: %s", e)
            try:
                await asyncio.wait_for(stop.wait(), period)
            except TimeoutError:
                pass
        for t in list(self._tasks):
            t.cancel()

    async def remove_stale(self) -> int:
        """Stop and remove sandboxes left by an earlier agent (this agent does not adopt them yet)."""
        n = 0
        for sb in await self.cri.list_pod_sandboxes():
            if sb.id in self.sandboxes:
                continue
            try:
                await self.cri.stop_pod_sandbox(sb.id)
                await self.cri.remove_pod_sandbox(sb.id)
                n += 1
            except CRIError as e:
                log.warning("removing stale sandbox %s failed: %s", sb.id[:12], e)
                continue
            if not any(s.pod_uid == sb.metadata.uid for s in self.sandboxes.values()):
                await asyncio.to_thread(remove_pod_cgroup, self.cgroup_root, sb.metadata.uid)
        return n
