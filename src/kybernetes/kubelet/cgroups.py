"""The pod-level cgroup: removed by the kubelet when the pod's last sandbox goes.

The runtime creates `CGROUP_ROOT/pod<uid>` as the parent of the pod's containers and removes
only the containers' own cgroups, so the pod's would stay behind for every pod ever run, as
upstream's kubelet (pod container manager) does not let it. Both layouts: cgroup v1 (one
directory per mounted controller) and v2 (one unified tree).
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("kybernetes.kubelet.cgroups")

CGROUP_FS = Path("/sys/fs/cgroup")


def pod_cgroup_dirs(cgroup_root: str, pod_uid: str, fs: Path = CGROUP_FS) -> list[Path]:
    """Where the pod's cgroup is, in every hierarchy that has it."""
    rel = f"{cgroup_root.strip('/')}/pod{pod_uid}".lstrip("/")
    if (fs / "cgroup.controllers").exists():  # v2
        return [d for d in (fs / rel,) if d.is_dir()]
    try:
        hierarchies = sorted(fs.iterdir())
    except OSError:
        return []
    return [h / rel for h in hierarchies if not h.is_symlink() and (h / rel).is_dir()]


def remove_pod_cgroup(cgroup_root: str, pod_uid: str, fs: Path = CGROUP_FS) -> None:
    """rmdir the pod's cgroup, deepest first; one still holding a process stays (and is logged)."""
    for top in pod_cgroup_dirs(cgroup_root, pod_uid, fs):
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for d in [*dirs, top]:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warning("cgroup %s of pod %s not removed: %s", d, pod_uid, e.strerror)
