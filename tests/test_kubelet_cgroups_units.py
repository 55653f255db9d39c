"""The pod-level cgroup goes with the pod: v1 (a tree per controller) and v2 (one tree).

These run on a directory laid out as cgroupfs is (rmdir of an empty directory is what
cgroupfs answers too); the real cgroupfs is covered by test_agent_cri's pod deletion."""

from pathlib import Path

from kybernetes.kubelet.cgroups import (
    pod_cgroup_dirs,
    pod_uids_with_cgroups,
    remove_orphaned_pod_cgroups,
    remove_pod_cgroup,
)


def _v1(fs: Path, uid: str) -> list[Path]:
    made = []
    for ctrl in ("cpu", "memory", "pids"):
        d = fs / ctrl / "kubepods" / f"pod{uid}" / "c0ffee"
        d.mkdir(parents=True)
        made.append(d.parent)
    if not (fs / "cpu,cpuacct").is_symlink():
        (fs / "cpu,cpuacct").symlink_to(fs / "cpu")  # v1 mounts co-mounted controllers under two names
    return made


def test_v1_every_controller_loses_the_pod_and_keeps_the_others(tmp_path):
    made = _v1(tmp_path, "u1")
    (tmp_path / "memory" / "kubepods" / "podu2").mkdir()
    assert sorted(pod_cgroup_dirs("/kubepods", "u1", tmp_path)) == sorted(made)
    remove_pod_cgroup("/kubepods", "u1", tmp_path)
    assert not any(d.exists() for d in made)
    assert (tmp_path / "memory" / "kubepods" / "podu2").is_dir()
    assert (tmp_path / "cpu" / "kubepods").is_dir()
    assert pod_cgroup_dirs("/kubepods", "u1", tmp_path) == []


def test_v2_unified_tree(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    d = tmp_path / "kyb" / "pods" / "podu1"
    (d / "sandbox").mkdir(parents=True)
    assert pod_cgroup_dirs("kyb/pods/", "u1", tmp_path) == [d]
    remove_pod_cgroup("kyb/pods/", "u1", tmp_path)
    assert not d.exists() and (tmp_path / "kyb" / "pods").is_dir()


def test_a_cgroup_that_cannot_go_is_left_and_logged(tmp_path, caplog):
    made = _v1(tmp_path, "u1")
    (made[0] / "c0ffee" / "cgroup.procs").write_text("1\n")  # a file: rmdir fails as for a busy cgroup
    remove_pod_cgroup("/kubepods", "u1", tmp_path)
    assert made[0].is_dir() and not made[1].exists()
    assert "not removed" in caplog.text


def test_orphaned_pod_cgroups_go_at_agent_start_but_known_and_busy_ones_stay(tmp_path, caplog):
    gone, known, busy = _v1(tmp_path, "gone"), _v1(tmp_path, "known"), _v1(tmp_path, "busy")
    (busy[2] / "c0ffee" / "cgroup.procs").write_text("1\n")  # another agent's pod sharing the root
    assert pod_uids_with_cgroups("/kubepods", tmp_path) == {"gone", "known", "busy"}
    assert remove_orphaned_pod_cgroups("/kubepods", {"known"}, tmp_path) == 1
    assert not any(d.exists() for d in gone)
    assert all(d.is_dir() for d in known) and busy[2].is_dir()
    assert "not removed" not in caplog.text  # a busy orphan is expected, not a warning
    assert pod_uids_with_cgroups("/kubepods", tmp_path) == {"known", "busy"}
    assert pod_uids_with_cgroups("/elsewhere", tmp_path) == set()
