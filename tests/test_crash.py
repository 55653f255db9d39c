"""`kill -9` of a running `kyb server` in a write burst loses no acknowledged write."""

from __future__ import annotations

import json
import signal
import subprocess
import threading

from .cluster import Cluster, free_port, wait_until


def test_kill_9_mid_burst_keeps_every_acknowledged_create(tmp_path):
    cluster = Cluster(tmp_path, free_port())
    cluster.start()
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            name = f"cm-{n}-{i}"
            try:
                status, _ = cluster.request("POST", "/api/v1/namespaces/default/configmaps",
                                            {"metadata": {"name": name}, "data": {"k": "v" * 200}}, timeout=5)
            except OSError:
                return  # the server is gone
            if status == 201:
                with lock:
                    acknowledged.append(name)
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        deadline_hits = 0
        while len(acknowledged) < 200 and deadline_hits < 600:
            stop.wait(0.05)
            deadline_hits += 1
        assert len(acknowledged) >= 200, cluster.log()
        cluster.stop(signal.SIGKILL)
        # the server's children (controller manager, scheduler, dns) die with it: no orphans
        wait_until(lambda: not subprocess.run(["pgrep", "-f", f"--kubeconfig {cluster.kubeconfig}"],
                                              capture_output=True, text=True).stdout.strip(),
                   timeout=10, what="the killed server's child processes to exit")
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    cluster.start()
    try:
        status, body = cluster.request("GET", "/api/v1/namespaces/default/configmaps")
        assert status == 200
        names = {item["metadata"]["name"] for item in body["items"]}
        missing = set(acknowledged) - names
        assert not missing, f"{len(missing)} acknowledged creates lost: {sorted(missing)[:5]}"
        assert all(item["data"] == {"k": "v" * 200} for item in body["items"] if item["metadata"]["name"] in names
                   and item["metadata"]["name"].startswith("cm-"))
        revs = [int(item["metadata"]["resourceVersion"]) for item in body["items"]]
        assert len(set(revs)) == len(revs)
        # the restarted server keeps writing after the crash
        status, created = cluster.request("POST", "/api/v1/namespaces/default/configmaps",
                                          {"metadata": {"name": "after-crash"}})
        assert status == 201, json.dumps(created)
        assert int(created["metadata"]["resourceVersion"]) > max(revs)
    finally:
        cluster.stop()
