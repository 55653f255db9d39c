"""Mounts the kubelet makes itself: tmpfs for memory-backed volumes and for the runtime's state.

mount(2) and umount2(2) are called straight from this process (no `mount` child to fork);
the mount table is read from /proc/self/mountinfo, so a private mount namespace (tests,
benchmarks) sees only its own.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

MNT_DETACH = 2  # umount2 flag: detach now, finish when the mount is no longer busy

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str, data: str) -> None:
    _check(_c().mount(source.encode(), target.encode(), fstype.encode(), 0, data.encode()),
           f"mount -t {fstype} -o {data} {source} {target}")


def unmount(target: str, lazy: bool = True) -> None:
    _check(_c().umount2(target.encode(), MNT_DETACH if lazy else 0), f"umount {target}")


def _table() -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount, in mount order."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                dash = fields.index("-")
                out.append((fields[4].replace("\\040", " "), fields[dash + 1]))
    except (OSError, ValueError):
        pass
    return out


def mounts_under(path: Path) -> list[str]:
    """Mount points below `path`, deepest first (the order to unmount them in)."""
    prefix = str(path).rstrip("/") + "/"
    return sorted((point for point, _ in _table() if point.startswith(prefix)), key=len, reverse=True)


def fstype(path: Path) -> str:
    """Type of the filesystem mounted exactly at `path`, or "" when `path` is no mount point."""
    point = os.path.realpath(path)
    return next((kind for p, kind in reversed(_table()) if p == point), "")


def mount_tmpfs(path: Path, mode: str = "0777", size: str | None = None) -> bool:
    """A tmpfs at `path` unless something is mounted there already; True when this call mounted it.

    Whether it is a mount point is two stats (a tmpfs is a device of its own), not a read of the
    mount table, which grows with every running container."""
    if os.path.ismount(path):
        return False
    mount("tmpfs", str(path), "tmpfs", f"mode={mode}" + (f",size={size}" if size else ""))
    return True
