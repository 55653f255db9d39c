"""`kyb agent`: one real node. Its pods run as containers on containerd through CRI.

Start order (k3s's agent): our own containerd (unless given an endpoint), wait for CRI,
import the image archives of DATA_DIR/agent/images, register the Node with the machine's
capacity and the runtime's version, then the pod workers and heartbeats. When the IPAM
controller gives the Node a spec.podCIDR, the CNI network for it is written and pods may
start. Ready follows the runtime: a containerd that does not answer `Status` makes the
node NotReady.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import platform
import time
from pathlib import Path

from ..client.events import EventRecorder
from ..client.informer import Informer, meta_key
from ..client.rest import ApiError, RESTClient, wait_for_server
from .containerd import Containerd, Layout, ensure_masquerade, import_images, route_to_loopback, write_cni_config
from .cri.client import CRIClient
from .heartbeat import Heartbeats
from .node import NodeHandle, node_labels, node_status, register_node
from .objects import ObjectSource
from .pods import PodWorkers
from .runtime.adopt import remove_orphans
from .runtime.cri import CRIRuntime

log = logging.getLogger("kybernetes.kubelet.agent")

STATUS_INTERVAL = 10.0
MAX_PODS = 110  # upstream's default --max-pods
DEFAULT_CLUSTER_DNS = ("10.43.0.10",)  # the kube-dns Service of `kyb server`


def parallel_pod_starts() -> int:
    """New pods started at once: four per core. Thirty at once on two cores thrash (30 shims, runc and CNI
    processes competing) and every pod of the burst becomes Running last; a few at a time finish sooner."""
    return 4 * (os.cpu_count() or 1)


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def machine_capacity(data_dir: Path) -> dict:
    mem_kib = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    st = os.statvfs(data_dir)
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{mem_kib}Ki", "pods": str(MAX_PODS),
            "ephemeral-storage": str(st.f_blocks * st.f_frsize)}


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def machine_info(name: str) -> dict:
    machine = _read("/etc/machine-id") or hashlib.md5(name.encode()).hexdigest()  # noqa: S324 - an identifier
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {"machineID": machine, "systemUUID": _read("/sys/class/dmi/id/product_uuid", machine),
            "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": platform.release(),
            "osImage": os_image(), "architecture": arch}


def real_node_status(h: NodeHandle, runtime, info: dict, ready_problem: str) -> dict:
    status = node_status(h, runtime.name, runtime.version)
    status["nodeInfo"].update(info)
    if ready_problem:
        for c in status["conditions"]:
            if c["type"] == "Ready":
                prev = {x.get("type"): x for x in ((h.api_node or {}).get("status") or {}).get("conditions") or ()}
                since = (prev.get("Ready") or {}).get("lastTransitionTime") if (prev.get("Ready") or {}).get(
                    "status") == "False" else None
                c.update(status="False", reason="KubeletNotReady", message=ready_problem,
                         lastTransitionTime=since or c["lastHeartbeatTime"])
    return status


class NodeHeartbeats(Heartbeats):
    """Heartbeats of one real node: the Lease, and the status with machine info and runtime readiness."""

    def __init__(self, agent: NodeAgent, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.agent = agent

    async def beat(self, h: NodeHandle) -> None:
        from .heartbeat import renew_lease

        async with self.sem:
            try:
                await renew_lease(self.client, h)
                await self.agent.post_status()
                self.beats += 1
            except Exception as e:  # noqa: BLE001 - retried at the next beat
                log.warning("heartbeat of node %s failed: %s", h.name, e)


class NodeAgent:
    def __init__(self, client: RESTClient, node_name: str, node_ip: str, data_dir: Path,
                 runtime_endpoint: str = "", cgroup_root: str = "/kubepods", loopback_routes: list[str] | None = None,
                 cluster_dns: list[str] | None = None, workers: int = MAX_PODS, cluster_cidr: str = "10.42.0.0/16"):
        self.client = client
        self.name, self.ip = node_name, node_ip
        self.layout = Layout(Path(data_dir))
        self.runtime_endpoint = runtime_endpoint
        self.cgroup_root = cgroup_root
        self.loopback_routes = loopback_routes or []
        self.cluster_dns = cluster_dns or list(DEFAULT_CLUSTER_DNS)
        self.cluster_cidr = cluster_cidr
        # upstream's kubelet gives every pod its own worker goroutine: with a few shared workers, a pod
        # pulling an image or waiting on a volume held up the syncs of pods already running. How many new
        # pods start at once is bounded separately (`parallel_pod_starts`).
        self.workers_count = workers
        self.containerd: Containerd | None = None
        self.cri: CRIClient | None = None
        self.runtime: CRIRuntime | None = None
        self.handle: NodeHandle | None = None
        self.info = machine_info(node_name)
        self.ready_problem = "container runtime is starting"
        self.ready = asyncio.Event()
        self._last_status: dict | None = None

    # --- status ----------------------------------------------------------------------------------
    async def post_status(self, force: bool = False) -> None:
        h = self.handle
        status = real_node_status(h, self.runtime, self.info, self.ready_problem)
        comparable = {k: v for k, v in status.items() if k != "conditions"}
        comparable["conditions"] = [(c["type"], c["status"], c["reason"]) for c in status["conditions"]]
        now = time.monotonic()
        if not force and comparable == self._last_status and now - h.last_status_post < 60:
            return  # unchanged: the Lease is the heartbeat
        node = await self.client.patch("", "v1", "nodes", h.name, {"status": status}, subresource="status")
        h.api_node, h.last_status_post, self._last_status = node, now, comparable

    async def _watch_runtime(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            problem = ""
            try:
                st = await self.cri.status()
                bad = [c for c in st.status.conditions if not c.status and c.type == "RuntimeReady"]
                if bad:
                    problem = f"container runtime not ready: {bad[0].reason} {bad[0].message}".strip()
            except Exception as e:  # noqa: BLE001 - any failure means not ready
                problem = f"container runtime is down: {e}"
            if problem != self.ready_problem:
                self.ready_problem = problem
                log.info("runtime %s", "ready" if not problem else problem)
                try:
                    await self.post_status(force=True)
                except Exception as e:  # noqa: BLE001
                    log.warning("posting node status failed: %s", e)
            try:
                await asyncio.wait_for(stop.wait(), STATUS_INTERVAL)
            except TimeoutError:
                pass

    # --- informer handlers -----------------------------------------------------------------------
    def _node_changed(self, node: dict) -> None:
        h = self.handle
        h.api_node, h.uid = node, node["metadata"]["uid"]
        cidr = (node.get("spec") or {}).get("podCIDR") or ""
        if cidr and str(self.runtime.pod_cidr or "") != cidr:
            log.info("pod CIDR %s", cidr)
            self.runtime.update_runtime_config(cidr)
            for pod in self.pod_informer.list():
                self.workers.enqueue(meta_key(pod))

    def _pod_changed(self, pod: dict) -> None:
        self.workers.enqueue(meta_key(pod))

    def _allocatable(self) -> dict:
        status = ((self.handle.api_node if self.handle else None) or {}).get("status") or {}
        return status.get("allocatable") or (self.handle.capacity if self.handle else {}) or {}

    async def _secret(self, namespace: str, name: str) -> dict | None:
        try:
            return await self.client.get("", "v1", "secrets", name, namespace)
        except ApiError:
            return None

    # --- running ---------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        tasks: list[asyncio.Task] = []
        endpoint = self.runtime_endpoint
        if not endpoint:
            self.containerd = Containerd(self.layout)
            tasks.append(asyncio.create_task(self.containerd.run(stop)))
            await self.containerd.started.wait()
            endpoint = str(self.layout.socket)
        try:
            await self._run(stop, endpoint, tasks)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.cri is not None:
                await self.cri.close()

    async def _run(self, stop: asyncio.Event, endpoint: str, tasks: list[asyncio.Task]) -> None:
        self.cri = CRIClient(endpoint)
        version = await self.cri.wait_ready(60.0)
        log.info("container runtime %s %s (CRI %s) on %s", version.runtime_name, version.runtime_version,
                 version.runtime_api_version, endpoint)
        if self.loopback_routes:
            await route_to_loopback(self.loopback_routes)
        await ensure_masquerade(self.cluster_cidr)  # the CNI bridge does not masquerade (see cni_conflist)
        self.layout.images.mkdir(parents=True, exist_ok=True)
        socket = endpoint.removeprefix("unix://")
        await import_images(Path(socket), self.layout.images)
        rt = CRIRuntime(self.cri, self.ip, self.layout.pod_logs, self.layout.volumes, self.cgroup_root,
                        self.cluster_dns, self._secret, lambda cidr: write_cni_config(self.layout, cidr),
                        source=ObjectSource(self.client, stop), allocatable=self._allocatable)
        await rt.init()
        self.runtime = rt
        h = NodeHandle(self.name, self.ip, rt, labels=node_labels(self.name),
                       capacity=machine_capacity(self.layout.agent), os_image=self.info["osImage"])
        self.handle = h
        nodes = {self.name: h}
        self.node_informer = Informer(self.client, "", "v1", "nodes", field_selector=f"metadata.name={self.name}")
        self.pod_informer = Informer(self.client, "", "v1", "pods", field_selector=f"spec.nodeName={self.name}")
        rt.volumes.pod_lookup = lambda ns, name: self.pod_informer.get(f"{ns}/{name}")
        self.workers = PodWorkers(self.client, self.pod_informer, nodes, self.workers_count,
                                  recorder=EventRecorder(self.client, "kubelet", self.name),
                                  parallel_starts=parallel_pod_starts())
        rt.on_event = self.workers.runtime_event
        rt.on_container_event = self.workers.container_event
        self.heartbeats = NodeHeartbeats(self, self.client, nodes)
        self.node_informer.add_handler(self._node_changed, lambda old, new: self._node_changed(new), lambda n: None)
        self.pod_informer.add_handler(self._pod_changed, lambda old, new: self._pod_changed(new), self._pod_changed)
        await wait_for_server(self.client, 120.0)
        await self._register()
        tasks += [asyncio.create_task(self.node_informer.run(stop)), asyncio.create_task(self.pod_informer.run(stop)),
                  asyncio.create_task(rt.run(stop)), asyncio.create_task(self._watch_runtime(stop))]
        await asyncio.gather(self.node_informer.synced.wait(), self.pod_informer.synced.wait())
        # containers of an earlier run are adopted by the pod workers; sandboxes of pods gone meanwhile go
        orphans = await remove_orphans(rt, {p["metadata"]["uid"] for p in self.pod_informer.list()})
        if orphans:
            log.info("removed %d pod sandboxes of pods no longer on this node", orphans)
        tasks += [asyncio.create_task(self.workers.run(stop)), asyncio.create_task(self.heartbeats.run(stop))]
        self.heartbeats.schedule(self.name, 0.0)
        self.ready.set()
        log.info("node %s (%s) is running", self.name, self.ip)
        await stop.wait()

    async def _register(self) -> None:
        for attempt in range(30):
            try:
                await register_node(self.client, self.handle)
                self.ready_problem = ""
                await self.post_status(force=True)
                return
            except Exception as e:  # noqa: BLE001 - keep trying like the kubelet does
                log.warning("registering node %s failed: %s", self.name, e)
                await asyncio.sleep(min(2 ** attempt * 0.2, 5))
        raise RuntimeError(f"could not register node {self.name}")
