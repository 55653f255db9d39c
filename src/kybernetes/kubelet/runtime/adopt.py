"""Adoption after an agent restart: find a pod's sandbox and containers in CRI and take them over.

Upstream's kubelet keeps no state of its own; it reads the runtime (sandboxes and
containers carry the pod uid, container name and attempt) and carries on. `adopt` matches
the newest ready sandbox labelled with the pod's uid, regenerates its config from the pod
(needed for CreateContainer), and loads every container of it into the runtime's cache.
`remove_orphans` removes sandboxes of pods that are no longer bound to this node, and what
the node kept for them (volumes, log directories, cgroups).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from ..cgroups import remove_orphaned_pod_cgroups
from ..cri.client import CRIError, pb
from . import ContainerStatus, PodSandbox
from .cri_config import CONTAINER_NAME, POD_UID, sandbox_config

log = logging.getLogger("kybernetes.kubelet.adopt")


async def adopt(rt, pod: dict) -> tuple[PodSandbox | None, list[ContainerStatus]]:
    from .cri import _fill, _seconds

    meta = pod["metadata"]
    if rt.adoptable is not None and meta["uid"] not in rt.adoptable:
        return None, []
    ready = [s for s in await rt.cri.list_pod_sandboxes({POD_UID: meta["uid"]}) if s.state == pb.SANDBOX_READY]
    if not ready:
        return None, []
    sb_pb = max(ready, key=lambda s: s.created_at)
    st = await rt.cri.pod_sandbox_status(sb_pb.id)
    ip = rt.host_ip if (pod.get("spec") or {}).get("hostNetwork") else st.network.ip
    sb = PodSandbox(sb_pb.id, meta["uid"], meta.get("namespace", ""), meta["name"], ip, _seconds(st.created_at))
    log_dir = rt.log_dir(pod)
    await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
    rt.sandboxes[sb.id] = sb
    rt.sandbox_configs[sb.id] = sandbox_config(pod, log_dir, rt.cgroup_root, rt.cluster_dns, rt.cluster_domain,
                                               attempt=sb_pb.metadata.attempt, resolv_conf=rt.resolv_conf)
    out = []
    for c in await rt.cri.list_containers(sandbox_id=sb.id):
        name = c.labels.get(CONTAINER_NAME) or c.metadata.name
        status = ContainerStatus(c.id, sb.id, name, c.metadata.attempt, c.image.image, c.image_ref,
                                 labels=dict(c.labels))
        try:
            _fill(status, await rt.cri.container_status(c.id))
        except CRIError as e:
            log.warning("status of container %s: %s", c.id[:12], e)
            continue
        rt.containers[c.id] = status
        out.append(status)
    log.info("adopted pod %s/%s: sandbox %s, %d containers", sb.namespace, sb.name, sb.id[:12], len(out))
    return sb, out


async def remove_orphans(rt, keep_uids: set[str]) -> int:
    """Stop and remove sandboxes whose pod is not one of `keep_uids` (deleted while the agent was away)."""
    n = 0
    for sb in await rt.cri.list_pod_sandboxes():
        if sb.id in rt.sandboxes or sb.labels.get(POD_UID) in keep_uids:
            continue
        try:
            await rt.cri.stop_pod_sandbox(sb.id)
            await rt.cri.remove_pod_sandbox(sb.id)
            n += 1
        except CRIError as e:
            log.warning("removing orphaned sandbox %s failed: %s", sb.id[:12], e)
    gone = await remove_orphaned_pod_state(rt, keep_uids)
    if gone:
        log.info("removed the volumes and logs of %d pods no longer on this node", len(gone))
    return n


def _subdirs(root: Path) -> list[Path]:
    try:
        return [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    except OSError:
        return []


async def remove_orphaned_pod_state(rt, keep_uids: set[str]) -> list[str]:
    """The volumes, log directories and cgroups of pods neither kept nor running here, left when
    their pod went while the agent was away (upstream's housekeeping: cleanupOrphanedPodDirs, the
    container GC's log removal, cleanupOrphanedPodCgroups). A cgroup that still holds a process
    stays."""
    keep = keep_uids | {sb.pod_uid for sb in rt.sandboxes.values()}
    gone = []
    for d in await asyncio.to_thread(_subdirs, rt.volume_root):
        if d.name not in keep:
            await rt.volumes.remove(d.name)  # unmounts first
            gone.append(d.name)
    for d in await asyncio.to_thread(_subdirs, rt.log_root):  # <namespace>_<name>_<uid>
        if d.name.rpartition("_")[2] not in keep:
            await asyncio.to_thread(shutil.rmtree, d, True)
    await asyncio.to_thread(remove_orphaned_pod_cgroups, rt.cgroup_root, keep)
    return gone
