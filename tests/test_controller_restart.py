"""Level-triggered controllers survive a crash: kill the controller manager mid-rollout.

`kyb server --sim-nodes 3` runs pods for real (simulated kubelets); the test SIGKILLs the
controller-manager child in the middle of a rolling update. The supervisor restarts it,
the new process waits out the dead leader's Lease and carries on from whatever it finds,
and the rollout must end exactly: the new template on every replica, no extra pods, the
old ReplicaSet at zero.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from .cluster import Cluster, free_port, manifest, wait_until

REPLICAS = 6


def _deployment(image: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": REPLICAS, "minReadySeconds": 1, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


def _controller_manager_pid(c: Cluster) -> int | None:
    out = subprocess.run(["pgrep", "-f", f"controller-manager --kubeconfig {c.kubeconfig}"],
                         capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def _complete(c: Cluster, image: str) -> bool:
    d = c.kubectl_json("get", "deploy", "web")
    st = d.get("status") or {}
    if d["metadata"]["generation"] != st.get("observedGeneration"):
        return False
    if (st.get("updatedReplicas"), st.get("availableReplicas"), st.get("replicas")) != (REPLICAS,) * 3:
        return False
    pods = [p for p in c.kubectl_json("get", "pods", "-l", "app=web")["items"]
            if not p["metadata"].get("deletionTimestamp")]
    return len(pods) == REPLICAS and all(p["spec"]["containers"][0]["image"] == image for p in pods)


@pytest.mark.timeout(240)
def test_rollout_completes_exactly_after_controller_manager_is_killed(tmp_path):
    c = Cluster(tmp_path, free_port(), extra_args=["--sim-nodes", "3"])
    c.start()
    try:
        c.kubectl("apply", "-f", "-", input=manifest(_deployment("busybox:1.0")))
        wait_until(lambda: _complete(c, "busybox:1.0"), timeout=60, interval=0.5, what="first rollout")
        c.kubectl("set", "image", "deployment/web", "web=busybox:2.0")
        # wait until the rollout is under way: a new ReplicaSet with at least one pod
        wait_until(lambda: any(p["spec"]["containers"][0]["image"] == "busybox:2.0"
                               for p in c.kubectl_json("get", "pods", "-l", "app=web")["items"]),
                   timeout=30, interval=0.2, what="the rollout to start")
        old_pid = _controller_manager_pid(c)
        assert old_pid, "no controller-manager child process"
        os.kill(old_pid, signal.SIGKILL)
        wait_until(lambda: (_controller_manager_pid(c) or old_pid) != old_pid, timeout=30,
                   what="the supervisor to restart the controller manager")
        wait_until(lambda: _complete(c, "busybox:2.0"), timeout=120, interval=0.5,
                   what="the rollout to finish after the restart")
        rs = c.kubectl_json("get", "rs", "-l", "app=web")["items"]
        assert sorted((r["spec"]["replicas"], r["spec"]["template"]["spec"]["containers"][0]["image"])
                      for r in rs) == [(0, "busybox:1.0"), (REPLICAS, "busybox:2.0")]
        assert c.kubectl("rollout", "status", "deployment/web", "--timeout=30s").returncode == 0
        lease = c.kubectl_json("get", "lease", "kube-controller-manager", "-n", "kube-system")
        assert lease["spec"]["leaseTransitions"] >= 1
    finally:
        c.stop()
