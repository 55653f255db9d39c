"""containerd's state on a tmpfs: mounted once, never over an older agent's running tasks,
released when containerd stops with no task left; and the mount helpers behind it.

Real mounts, so each case runs in a child process in a private mount namespace of its own
(`unshare --mount --propagation private`): whatever it mounts goes away with it."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="needs root and unshare(1) for a private mount namespace")


def in_private_mounts(body: str, data: Path) -> dict:
    """Run `body` (which sets `out`) with `layout` for `data`; returns `out`."""
    script = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        from kybernetes.kubelet.containerd import Layout, release_state, state_on_tmpfs, containerd_config
        from kybernetes.kubelet.mounts import fstype, mount_tmpfs, mounts_under, unmount
        layout = Layout(Path(sys.argv[1]))
        layout.state.mkdir(parents=True, exist_ok=True)
        out = {}
    """) + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", script, str(data)],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_state_goes_on_a_tmpfs_once_and_is_released_when_no_task_is_left(tmp_path):
    out = in_private_mounts("""
        out["first"] = state_on_tmpfs(layout)
        out["type"] = fstype(layout.state)
        out["second"] = state_on_tmpfs(layout)
        out["mounts"] = sum(1 for p in mounts_under(layout.state.parent) if p == str(layout.state))
        bundle = layout.state / "io.containerd.runtime.v2.task" / "k8s.io" / "c0ffee"
        bundle.mkdir(parents=True)
        release_state(layout)  # a running task's bundle: its shim needs the state
        out["kept_with_a_task"] = fstype(layout.state)
        bundle.rmdir()
        release_state(layout)
        out["after_release"] = fstype(layout.state)
        out["runc_root_in_config"] = f'Root = "{layout.runc_root}"' in containerd_config(layout)
    """, tmp_path)
    assert out == {"first": True, "type": "tmpfs", "second": True, "mounts": 1, "kept_with_a_task": "tmpfs",
                   "after_release": "", "runc_root_in_config": True}


def test_state_on_disk_with_running_tasks_stays_on_disk(tmp_path):
    out = in_private_mounts("""
        (layout.state / "io.containerd.runtime.v2.task" / "k8s.io" / "c0ffee").mkdir(parents=True)
        out["mounted"] = state_on_tmpfs(layout)
        out["type"] = fstype(layout.state)
        out["bundle_visible"] = (layout.state / "io.containerd.runtime.v2.task" / "k8s.io" / "c0ffee").is_dir()
    """, tmp_path)
    assert out == {"mounted": False, "type": "", "bundle_visible": True}


def test_mounts_under_lists_the_deepest_first_and_unmount_detaches(tmp_path):
    out = in_private_mounts("""
        a = layout.agent / "a"; b = a / "b"
        a.mkdir(parents=True)
        out["mounted"] = mount_tmpfs(a)
        b.mkdir()
        mount_tmpfs(b, mode="0700", size="1048576")
        out["again"] = mount_tmpfs(b)
        out["under"] = [p[len(str(layout.agent)):] for p in mounts_under(layout.agent)]
        out["mode"] = oct(b.stat().st_mode & 0o777)
        for p in mounts_under(layout.agent):
            unmount(p)
        out["left"] = mounts_under(layout.agent)
        try:
            unmount(str(a))
        except OSError as e:
            out["error"] = str(e)
    """, tmp_path)
    assert out["mounted"] is True and out["again"] is False
    assert out["under"] == ["/a/b", "/a"]
    assert out["mode"] == "0o700"
    assert out["left"] == []
    assert out["error"] == f"[Errno 22] umount {tmp_path}/agent/a: Invalid argument"  # no longer a mount point
