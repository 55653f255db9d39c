"""Atomic updates of a volume's files, as upstream's AtomicWriter (pkg/volume/util/atomic_writer.go).

The files live in a timestamped directory `..2006_01_02_15_04_05.NNNN`; `..data` is a
symlink to the current one and each top-level name the user sees is a symlink through
`..data`. An update writes a new timestamped directory, points `..data_tmp` at it and
renames that over `..data` (one atomic step for readers), then adds and removes the
user-visible links and deletes the old directory. Nothing is written when the payload
has not changed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DATA = "..data"
DATA_TMP = "..data_tmp"


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int = 0o644


def _check_path(path: str) -> None:
    if not path or os.path.isabs(path) or ".." in path.split("/") or path.startswith(".."):
        raise ValueError(f"invalid path {path!r} in volume payload")


def _current(target: Path) -> dict[str, FileProjection] | None:
    link = target / DATA
    if not link.is_symlink():
        return None
    base = target / os.readlink(link)
    out: dict[str, FileProjection] = {}
    for dirpath, _dirs, files in os.walk(base):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(base))] = FileProjection(p.read_bytes(), p.stat().st_mode & 0o7777)
    return out


def write_payload(target: Path, payload: dict[str, FileProjection]) -> bool:
    """Make `target` hold exactly `payload`; returns whether anything was written."""
    for path in payload:
        _check_path(path)
    target.mkdir(parents=True, exist_ok=True)
    old = _current(target)
    if old == payload:
        return False
    old_dir = os.readlink(target / DATA) if (target / DATA).is_symlink() else None
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    ts_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    os.chmod(ts_dir, 0o755)
    for path, proj in payload.items():
        dest = ts_dir / path
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        dest.write_bytes(proj.data)
        os.chmod(dest, proj.mode)
    tmp = target / DATA_TMP
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(ts_dir.name, tmp)
    os.rename(tmp, target / DATA)
    tops = {p.split("/", 1)[0] for p in payload}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            os.symlink(f"{DATA}/{top}", link)
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops and entry.is_symlink():
            entry.unlink()
    if old_dir and old_dir != ts_dir.name:
        shutil.rmtree(target / old_dir, ignore_errors=True)
    return True
