"""Node-local volumes of a pod and the mounts of each container (the kubelet's volume manager).

Layout as upstream's: DATA_DIR/agent/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>.
- emptyDir: a directory; `medium: Memory` a tmpfs (size = sizeLimit when given).
- hostPath: the path, created for DirectoryOrCreate / FileOrCreate.
- configMap, secret, downwardAPI, projected: files written by the AtomicWriter (secret and
  projected on a tmpfs, as upstream), always mounted read-only, and rewritten by `resync`
  so that changes of their sources reach running pods; tokens are refreshed as they age.
- persistentVolumeClaim: the bound PersistentVolume's hostPath or local path (created when
  missing, as the local-path provisioner's DirectoryOrCreate asks).
`subPath` mounts a path inside the volume; the managed /etc/hosts and the container's
termination-message file are added.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .atomic_writer import write_payload
from .mounts import mount_tmpfs, mounts_under, unmount
from .objects import ObjectSource
from .volume_sources import TokenManager, VolumeError, volume_payload

log = logging.getLogger("kybernetes.kubelet.volumes")

PLUGINS = {"emptyDir": "empty-dir", "configMap": "configmap", "secret": "secret", "downwardAPI": "downward-api",
           "projected": "projected"}
MEMORY_BACKED = ("secret", "projected")
READ_ONLY = ("configMap", "secret", "downwardAPI", "projected")
RESYNC_PERIOD = 10.0  # seconds between rewrites of configMap, secret, downwardAPI and projected volumes


@dataclass
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False


def pod_dir(root: Path, uid: str) -> Path:
    return Path(root) / uid


def _kind(volume: dict) -> str:
    return next((k for k in PLUGINS if volume.get(k) is not None), "")


def _size(limit: str | None) -> str | None:
    if not limit:
        return None
    from ..api.quantity import int_value

    return str(int_value(limit))


def etc_hosts_text(pod: dict, pod_ip: str, domain: str = "cluster.local") -> str:
    """The pod's /etc/hosts as the kubelet writes it (the FQDN line with a subdomain; hostAliases)."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    hostname = (spec.get("hostname") or meta["name"])[:63].rstrip("-.")
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if pod_ip:
        if spec.get("subdomain"):
            fqdn = f"{hostname}.{spec['subdomain']}.{meta.get('namespace', '')}.svc.{domain}"
            lines.append(f"{pod_ip}\t{fqdn}\t{hostname}")
        else:
            lines.append(f"{pod_ip}\t{hostname}")
    if spec.get("hostAliases"):
        lines.append("")
        lines.append("# Entries added by HostAliases.")
    for alias in spec.get("hostAliases") or ():
        lines.append(f"{alias.get('ip', '')}\t" + "\t".join(alias.get("hostnames") or []))
    return "\n".join(lines) + "\n"


# --- the blocking parts, run in threads: a mkdir waits for the filesystem's journal, which under a
# burst of container starts takes milliseconds, and on the event loop that wait held up every pod

def _make_dir(path: Path, tmpfs: bool, size: str | None = None, mode: int | None = None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if tmpfs:
        mount_tmpfs(path, size=size)
    if mode is not None:
        os.chmod(path, mode)


def _sub_path(sub: Path) -> str:
    if not sub.exists() and not sub.is_symlink():
        sub.mkdir(parents=True, exist_ok=True)
    return os.path.realpath(sub)


def _pod_files(base: Path, hosts: str | None, term_file: Path | None) -> str | None:
    """Write the pod's /etc/hosts (when given) and make the container's termination-message file."""
    hosts_file = None
    if hosts is not None:
        base.mkdir(parents=True, exist_ok=True)
        hosts_file = base / "etc-hosts"
        hosts_file.write_text(hosts)
    if term_file is not None:
        term_file.parent.mkdir(parents=True, exist_ok=True)
        term_file.touch()
    return None if hosts_file is None else str(hosts_file)


class VolumeManager:
    def __init__(self, root: Path, source: ObjectSource | None = None,
                 allocatable: Callable[[], dict] | None = None, domain: str = "cluster.local"):
        self.root = Path(root)
        self.source = source
        self.tokens = TokenManager(source) if source is not None else None
        self.allocatable = allocatable or dict
        self.domain = domain
        self.pods: dict[str, dict] = {}  # uid -> the pod whose volumes were set up
        self.pod_lookup: Callable[[str, str], dict | None] | None = None  # (ns, name) -> current pod
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}  # (pod uid, volume) -> held while its files are written
        self._setups: dict[tuple[str, str], asyncio.Task] = {}  # (pod uid, volume) -> its set-up

    def prepare(self, pod: dict) -> None:
        """Start setting up the volumes the pod's containers mount, so that they are ready by the time
        its sandbox is (upstream mounts them before the sandbox; side by side costs the pod nothing)."""
        spec = pod.get("spec") or {}
        volumes = {v["name"]: v for v in spec.get("volumes") or ()}
        self.pods[pod["metadata"]["uid"]] = pod
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            for vm in c.get("volumeMounts") or ():
                if vm.get("name") in volumes:
                    self._setup(pod, volumes[vm["name"]])

    def _setup(self, pod: dict, volume: dict) -> asyncio.Task:
        """The volume's set-up, done once per pod; one that failed is tried again."""
        key = (pod["metadata"]["uid"], volume["name"])
        task = self._setups.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._setups[key] = asyncio.get_running_loop().create_task(self._volume_path(pod, volume))
            task.add_done_callback(_retrieve)
        return task

    def _dir(self, uid: str, volume: dict) -> Path:
        return pod_dir(self.root, uid) / "volumes" / f"kubernetes.io~{PLUGINS[_kind(volume)]}" / volume["name"]

    async def _volume_path(self, pod: dict, volume: dict) -> tuple[str, bool] | None:
        """(host path, must mount read-only) of one volume, set up on first use."""
        uid, ns = pod["metadata"]["uid"], pod["metadata"].get("namespace", "")
        kind = _kind(volume)
        if kind == "emptyDir":
            path = self._dir(uid, volume)
            memory = (volume["emptyDir"] or {}).get("medium") == "Memory"
            size = _size((volume["emptyDir"] or {}).get("sizeLimit")) if memory else None
            await asyncio.to_thread(_make_dir, path, memory, size, 0o777)
            return str(path), False
        if kind:
            path = self._dir(uid, volume)
            await asyncio.to_thread(_make_dir, path, kind in MEMORY_BACKED)
            await self._write(pod, volume, path)
            return str(path), True
        host = volume.get("hostPath")
        if host:
            return await asyncio.to_thread(_host_path, host.get("path", ""), host.get("type") or ""), False
        claim = volume.get("persistentVolumeClaim")
        if claim:
            return await self._claim_path(ns, claim), bool(claim.get("readOnly"))
        return None

    async def _write(self, pod: dict, volume: dict, path: Path) -> bool:
        if self.source is None:
            raise VolumeError("no API access for this volume")
        payload = await volume_payload(self.source, self.tokens, pod, volume, self.allocatable())
        # a resync and a container's start may meet on one volume
        async with self._locks.setdefault((pod["metadata"]["uid"], volume["name"]), asyncio.Lock()):
            return await asyncio.to_thread(write_payload, path, payload or {})

    async def _claim_path(self, ns: str, ref: dict) -> str:
        name = ref.get("claimName", "")
        claim = await self.source.claim(ns, name) if self.source else None
        if claim is None:
            raise VolumeError(f'persistentvolumeclaim "{name}" not found')
        pv_name = (claim.get("spec") or {}).get("volumeName")
        if not pv_name or (claim.get("status") or {}).get("phase") != "Bound":
            raise VolumeError(f'PersistentVolumeClaim "{name}" is not bound')
        pv = await self.source.volume(pv_name)
        if pv is None:
            raise VolumeError(f'persistentvolume "{pv_name}" not found')
        spec = pv.get("spec") or {}
        if spec.get("hostPath"):
            return await asyncio.to_thread(_host_path, spec["hostPath"].get("path", ""),
                                           spec["hostPath"].get("type") or "")
        if spec.get("local"):
            return await asyncio.to_thread(_host_path, spec["local"].get("path", ""), "DirectoryOrCreate")
        raise VolumeError(f"persistentvolume {pv_name} is neither hostPath nor local")

    async def container_mounts(self, pod: dict, container: dict, attempt: int, pod_ip: str) -> list[Mount]:
        spec, uid = pod.get("spec") or {}, pod["metadata"]["uid"]
        volumes = {v["name"]: v for v in spec.get("volumes") or ()}
        self.pods[uid] = pod
        mounts: list[Mount] = []
        for vm in container.get("volumeMounts") or ():
            vol = volumes.get(vm.get("name"))
            try:
                found = await self._setup(pod, vol) if vol else None
            except (VolumeError, OSError) as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{vm.get("name")}" : {e}') from None
            if found is None:
                continue
            host, forced_ro = found
            if vm.get("subPath"):
                host = await asyncio.to_thread(_sub_path, Path(host) / vm["subPath"])
            mounts.append(Mount(vm["mountPath"], host, bool(vm.get("readOnly")) or forced_ro))
        targets = {m.container_path for m in mounts}
        hosts = None
        if not spec.get("hostNetwork") and "/etc/hosts" not in targets:
            hosts = etc_hosts_text(pod, pod_ip, self.domain)
        term = container.get("terminationMessagePath") or "/dev/termination-log"
        term_file = None
        if term not in targets:
            term_file = pod_dir(self.root, uid) / "containers" / container["name"] / f"termination-{attempt}"
        hosts_file = await asyncio.to_thread(_pod_files, pod_dir(self.root, uid), hosts, term_file)
        if hosts_file is not None:
            mounts.append(Mount("/etc/hosts", hosts_file))
        if term_file is not None:
            mounts.append(Mount(term, str(term_file)))
        return mounts

    # --- keeping volumes current ---------------------------------------------------------------
    async def resync(self) -> int:
        """Rewrite every AtomicWriter volume of the pods set up here; returns how many changed."""
        changed = 0
        for uid, pod in list(self.pods.items()):
            meta = pod["metadata"]
            if self.pod_lookup is not None:
                current = self.pod_lookup(meta.get("namespace", ""), meta["name"])
                if current is not None and current["metadata"].get("uid") == uid:
                    pod = self.pods[uid] = current
            for vol in (pod.get("spec") or {}).get("volumes") or ():
                path = self._dir(uid, vol) if _kind(vol) in READ_ONLY else None
                if path is None or not path.exists() or uid not in self.pods:
                    continue
                try:
                    changed += await self._write(pod, vol, path)
                except (VolumeError, OSError) as e:
                    log.warning("updating volume %s of pod %s/%s: %s", vol["name"], meta.get("namespace"),
                                meta["name"], e)
        return changed

    async def run(self, stop: asyncio.Event, period: float = RESYNC_PERIOD) -> None:
        while not stop.is_set():
            try:
                await self.resync()
            except Exception as e:  # noqa: BLE001 - the API may be away; next round
                log.warning("volume resync failed: %s", e)
            try:
                await asyncio.wait_for(stop.wait(), period)
            except TimeoutError:
                pass

    async def remove(self, uid: str) -> None:
        setups = [self._setups.pop(k) for k in [k for k in self._setups if k[0] == uid]]
        if setups:  # let them finish: a tmpfs mounted after the unmounts below would stay behind
            _done, pending = await asyncio.wait(setups, timeout=10.0)
            for task in pending:
                task.cancel()
        self.pods.pop(uid, None)
        if self.tokens is not None:
            self.tokens.forget(uid)
        for key in [k for k in self._locks if k[0] == uid]:
            del self._locks[key]
        await asyncio.to_thread(remove_pod_dir, self.root, uid)


def _retrieve(task: asyncio.Task) -> None:
    """A set-up that failed is reported by the container start that awaits it, or by none."""
    if not task.cancelled():
        task.exception()


def _host_path(path: str, kind: str) -> str:
    p = Path(path)
    if kind == "DirectoryOrCreate":
        p.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate" and not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()
    return str(p)


def remove_pod_dir(root: Path, uid: str) -> None:
    base = pod_dir(root, uid)
    for point in mounts_under(base):
        try:
            unmount(point)
        except OSError as e:
            log.warning("%s", e)
    shutil.rmtree(base, ignore_errors=True)
