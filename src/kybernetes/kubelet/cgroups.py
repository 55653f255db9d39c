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


def _hierarchies(fs: Path) -> list[Path]:
    """The unified tree (v2), or one directory per mounted controller (v1, co-mounted names skipped)."""
    if (fs / "cgroup.controllers").exists():
        return [fs]
    try:
        return [h for h in sorted(fs.iterdir()) if not h.is_symlink()]
    except OSError:
        return []


def pod_cgroup_dirs(cgroup_root: str, pod_uid: str, fs: Path = CGROUP_FS) -> list[Path]:
    """Where the pod's cgroup is, in every hierarchy that has it."""
    rel = f"{cgroup_root.strip('/')}/pod{pod_uid}".lstrip("/")
    return [h / rel for h in _hierarchies(fs) if (h / rel).is_dir()]


def remove_pod_cgroup(cgroup_root: str, pod_uid: str, fs: Path = CGROUP_FS, quiet: bool = False) -> bool:
    """rmdir the pod's cgroup, deepest first; one still holding a process stays (and is logged unless `quiet`)."""
    removed = True
    for top in pod_cgroup_dirs(cgroup_root, pod_uid, fs):
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for d in [*dirs, top]:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError as e:
                removed = False
                if not quiet:
                    log.warning("cgroup %s of pod %s not removed: %s", d, pod_uid, e.strerror)
    return removed


def pod_uids_with_cgroups(cgroup_root: str, fs: Path = CGROUP_FS) -> set[str]:
    """Every pod uid that has a `pod<uid>` cgroup under the root, in any hierarchy."""
    uids = set()
    for h in _hierarchies(fs):
        try:
            uids.update(d.name[3:] for d in (h / cgroup_root.strip("/")).iterdir()
                        if d.name.startswith("pod") and d.is_dir())
        except OSError:
            pass
    return uids


def remove_orphaned_pod_cgroups(cgroup_root: str, known: set[str], fs: Path = CGROUP_FS) -> int:
    """At agent start (`runtime.adopt.remove_orphans`): the cgroups of pods not `known` (an agent killed
    before it removed them), as upstream's kubelet cleans up orphaned pod cgroups. Only empty ones go:
    a cgroup with a process in it is another agent's sharing the root, or still dying, and stays."""
    return sum(remove_pod_cgroup(cgroup_root, uid, fs, quiet=True)
               for uid in sorted(pod_uids_with_cgroups(cgroup_root, fs) - known))
