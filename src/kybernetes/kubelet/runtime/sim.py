"""`sim`: a container runtime whose sandboxes and containers are simulated, like kwok's.

Nothing is executed. A sandbox gets an address from the node's pod CIDR (as the
host-local CNI plugin would hand out), a container "runs" from `start_container` until
it is stopped or, when the pod carries the annotations below, until its run time is up:

    sim.kybernetes.io/run-seconds: "2"   every container exits after 2 s
    sim.kybernetes.io/exit-code: "1"     ... with this exit code (default 0)

Container state changes are reported to the event handler (CRI's container events),
so the agent needs no polling. One instance serves one node.

With a `log_dir`, every container gets a real CRI-format log file at
`LOG_DIR/<namespace>_<pod>_<uid>/<container>/<attempt>.log` (upstream's layout), with one
line when it starts (`sim: container NAME started`) and one when it exits
(`sim: container NAME exited with code N`), so `kubectl logs` works on simulated nodes. The
file is written when the log is first asked for (entries wait in memory until then): a
directory and a file per container cost the sim-nodes process about a third of its CPU.
Exec, attach and port-forward have nothing to run in; the kubelet server refuses them.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import itertools
import os
import secrets
import shutil
import time
from collections.abc import Callable

from ..logs import append as append_log
from . import CREATED, EXITED, RUNNING, ContainerStatus, PodSandbox

RUN_SECONDS = "sim.kybernetes.io/run-seconds"
EXIT_CODE = "sim.kybernetes.io/exit-code"


def _annotation_number(pod: dict, key: str, kind=float):
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        return kind(value) if value is not None else None
    except ValueError:
        return None


def _is_init(pod: dict, name: str) -> bool:
    for c in (pod.get("spec") or {}).get("initContainers") or ():
        if c.get("name") == name:
            return c.get("restartPolicy") != "Always"  # sidecars keep running
    return False


class SimRuntime:
    name = "sim"
    version = "1.0"
    # sandboxes and containers start in no time, so the pod workers go straight on to the
    # containers and write one status (Running), as kwok does, not ContainerCreating first
    starts_at_once = True

    def __init__(self, host_ip: str, clock: Callable[[], float] = time.time, log_dir: str | None = None):
        self.host_ip = host_ip
        self.log_dir = log_dir
        self.log_paths: dict[str, str] = {}  # container id -> its log file
        # entries not yet written: a container's file is written when its log is first asked for, so
        # thousands of simulated pods nobody reads cost no directories and files
        self._unwritten: dict[str, list[tuple[str, float]]] = {}
        self.clock = clock
        self.pod_cidr: ipaddress.IPv4Network | None = None
        self.sandboxes: dict[str, PodSandbox] = {}
        self.containers: dict[str, ContainerStatus] = {}
        self._used_ips: set[str] = set()
        self._exit_plan: dict[str, tuple[float, int]] = {}  # container id -> (run seconds, exit code)
        self._timers: dict[str, tuple[asyncio.TimerHandle, float]] = {}
        self.on_event: Callable[[str], None] = lambda pod_uid: None

    # --- runtime config and sandboxes ----------------------------------------------------------
    def update_runtime_config(self, pod_cidr: str) -> None:
        self.pod_cidr = ipaddress.ip_network(pod_cidr, strict=False) if pod_cidr else None

    def _allocate_ip(self) -> str:
        if self.pod_cidr is None:
            raise RuntimeError("no pod CIDR configured for this node yet")
        hosts = itertools.islice(self.pod_cidr.hosts(), 1, None)  # .1 is the bridge's gateway
        for ip in hosts:
            s = str(ip)
            if s not in self._used_ips:
                self._used_ips.add(s)
                return s
        raise RuntimeError(f"pod CIDR {self.pod_cidr} is exhausted")

    async def run_pod_sandbox(self, pod: dict) -> PodSandbox:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        ip = self.host_ip if spec.get("hostNetwork") else self._allocate_ip()
        sb = PodSandbox(secrets.token_hex(32), meta["uid"], meta.get("namespace", ""), meta["name"], ip, self.clock())
        self.sandboxes[sb.id] = sb
        return sb

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sb = self.sandboxes.get(sandbox_id)
        if sb is None:
            return
        for c in self.list_containers(sandbox_id):
            await self.stop_container(c.id, 0)
        sb.ready = False
        if sb.ip != self.host_ip:  # the network is torn down with the sandbox (CNI DEL)
            self._used_ips.discard(sb.ip)

    async def release_pod_volumes(self, pod_uid: str) -> None:
        """Simulated pods have no volumes on the node."""

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sb = self.sandboxes.pop(sandbox_id, None)
        if sb is None:
            return
        for c in [c for c in self.containers.values() if c.sandbox_id == sandbox_id]:
            await self.remove_container(c.id)
        if sb.ip != self.host_ip:
            self._used_ips.discard(sb.ip)
        if self.log_dir:
            shutil.rmtree(self._pod_log_dir(sb), ignore_errors=True)

    def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[PodSandbox]:
        return [s for s in self.sandboxes.values() if pod_uid is None or s.pod_uid == pod_uid]

    # --- containers ----------------------------------------------------------------------------
    async def create_container(self, sandbox_id: str, pod: dict, container: dict, attempt: int) -> str:
        if sandbox_id not in self.sandboxes:
            raise KeyError(f"no pod sandbox {sandbox_id}")
        image = container.get("image") or ""
        digest = hashlib.sha256(image.encode()).hexdigest()
        cid = secrets.token_hex(32)
        self.containers[cid] = ContainerStatus(cid, sandbox_id, container["name"], attempt, image,
                                               f"sim://sha256:{digest}", CREATED, created_at=self.clock())
        if self.log_dir:
            sb = self.sandboxes[sandbox_id]
            self.log_paths[cid] = os.path.join(self._pod_log_dir(sb), container["name"], f"{attempt}.log")
            self._unwritten[cid] = []
        run = _annotation_number(pod, RUN_SECONDS)
        if run is not None and run >= 0:
            self._exit_plan[cid] = (run, _annotation_number(pod, EXIT_CODE, int) or 0)
        elif _is_init(pod, container["name"]):
            self._exit_plan[cid] = (0.0, 0)  # an init container's work is done at once
        return cid

    async def start_container(self, container_id: str) -> None:
        c = self.containers[container_id]
        c.state, c.started_at = RUNNING, self.clock()
        self._log(c, f"sim: container {c.name} started")
        plan = self._exit_plan.get(container_id)
        if plan is not None:
            self._schedule_exit(c, plan[0], plan[1], "Completed" if plan[1] == 0 else "Error")

    async def stop_container(self, container_id: str, timeout: float) -> None:
        """Stop gracefully: a simulated process takes min(timeout, 1 s) to exit after SIGTERM."""
        c = self.containers.get(container_id)
        if c is None or c.state != RUNNING:
            if c is not None and c.state == CREATED:
                self._exit(c, 0, "Completed")
            return
        delay = max(0.0, min(float(timeout), 1.0))
        if delay == 0:
            self._exit(c, 0, "Completed")
        else:
            self._schedule_exit(c, delay, 0, "Completed", since=self.clock())

    async def remove_container(self, container_id: str) -> None:
        self._cancel(container_id)
        self._exit_plan.pop(container_id, None)
        self.containers.pop(container_id, None)
        self._unwritten.pop(container_id, None)
        path = self.log_paths.pop(container_id, None)
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass

    def container_log_path(self, container_id: str) -> str:
        """Where the container's CRI log file is ("" without a log dir), written out on first use."""
        path = self.log_paths.get(container_id, "")
        pending = self._unwritten.pop(container_id, None)
        if path and pending is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "ab"):  # a container that has logged nothing yet still has its file
                pass
            for text, t in pending:
                self._append(path, text, t)
        return path

    def _pod_log_dir(self, sb: PodSandbox) -> str:
        return os.path.join(self.log_dir or "", f"{sb.namespace}_{sb.name}_{sb.pod_uid}")

    def _log(self, c: ContainerStatus, text: str) -> None:
        path = self.log_paths.get(c.id)
        if not path:
            return
        pending = self._unwritten.get(c.id)
        if pending is not None:
            pending.append((text, self.clock()))
        else:
            self._append(path, text, self.clock())

    @staticmethod
    def _append(path: str, text: str, t: float) -> None:
        try:
            append_log(path, "stdout", text, t)
        except OSError:
            pass

    def container_status(self, container_id: str) -> ContainerStatus | None:
        return self.containers.get(container_id)

    def list_containers(self, sandbox_id: str) -> list[ContainerStatus]:
        return [c for c in self.containers.values() if c.sandbox_id == sandbox_id]

    # --- simulated processes -------------------------------------------------------------------
    def _schedule_exit(self, c: ContainerStatus, after: float, code: int, reason: str, since: float | None = None):
        start = c.started_at if since is None else since
        due = start + after
        current = self._timers.get(c.id)
        if current is not None and current[1] <= due:
            return  # an earlier exit is already planned
        self._cancel(c.id)
        loop = asyncio.get_running_loop()
        handle = loop.call_later(max(0.0, due - self.clock()), self._exit, c, code, reason)
        self._timers[c.id] = (handle, due)

    def _cancel(self, container_id: str) -> None:
        entry = self._timers.pop(container_id, None)
        if entry is not None:
            entry[0].cancel()

    def _exit(self, c: ContainerStatus, code: int, reason: str) -> None:
        self._cancel(c.id)
        if c.state == EXITED or c.id not in self.containers:
            return
        c.state, c.finished_at, c.exit_code, c.reason = EXITED, self.clock(), code, reason
        self._log(c, f"sim: container {c.name} exited with code {code}")
        sb = self.sandboxes.get(c.sandbox_id)
        if sb is not None:
            self.on_event(sb.pod_uid)
