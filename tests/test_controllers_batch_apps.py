"""StatefulSet, DaemonSet, Job and CronJob controllers against a real `kyb server`.

No kubelet runs here: the tests play it, patching pod status to Running and Ready, or
to Succeeded / Failed with a terminated container.
"""

from __future__ import annotations

import json

from .cluster import manifest, wait_until

CONTAINER = {"name": "c", "image": "busybox"}


def _pods(c, selector: str, ns: str = "default") -> list[dict]:
    return c.kubectl_json("get", "pods", "-n", ns, "-l", selector)["items"]


def _names(c, selector: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in _pods(c, selector) if not p["metadata"].get("deletionTimestamp"))


def _set_status(c, pod: str, status: dict, ns: str = "default") -> None:
    code, body = c.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{pod}/status", {"status": status},
                           content_type="application/merge-patch+json")
    assert code == 200, body


def _ready(c, pod: str) -> None:
    _set_status(c, pod, {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]})


def _finish(c, pod: str, code: int) -> None:
    _set_status(c, pod, {"phase": "Succeeded" if code == 0 else "Failed", "containerStatuses": [
        {"name": "c", "image": "busybox", "imageID": "", "ready": False, "restartCount": 0,
         "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                  "startedAt": "2024-01-01T00:00:00Z", "finishedAt": "2024-01-01T00:00:01Z"}}}]})


def _events(c, name: str) -> list[dict]:
    return c.kubectl_json("get", "events", "--field-selector", f"involvedObject.name={name}")["items"]


# --- StatefulSet ----------------------------------------------------------------------------------
def _statefulset(replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"serviceName": "nginx", "replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [CONTAINER]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}


def test_statefulset_ordered_create_scale_down_and_claims(cluster):
    c = cluster
    c.kubectl("apply", "-f", "-", input=manifest(_statefulset(3)))
    for i in range(3):
        wait_until(lambda i=i: _names(c, "app=web") == [f"web-{j}" for j in range(i + 1)], timeout=20,
                   what=f"web-0..web-{i} and no more")
        pod = c.kubectl_json("get", "pod", f"web-{i}")
        labels = pod["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == f"web-{i}"
        assert labels["apps.kubernetes.io/pod-index"] == str(i)
        assert labels["controller-revision-hash"].startswith("web-")
        assert pod["spec"]["hostname"] == f"web-{i}" and pod["spec"]["subdomain"] == "nginx"
        assert {"name": "data", "persistentVolumeClaim": {"claimName": f"data-web-{i}"}} in pod["spec"]["volumes"]
        _ready(c, f"web-{i}")
    claims = c.kubectl_json("get", "pvc", "-l", "app=web")["items"]
    assert sorted(x["metadata"]["name"] for x in claims) == ["data-web-0", "data-web-1", "data-web-2"]
    sts = wait_until(lambda: (s := c.kubectl_json("get", "sts", "web")).get("status", {}).get("readyReplicas") == 3
                     and s, timeout=20, what="3 ready replicas")
    status = sts["status"]
    assert status["replicas"] == 3 and status["currentReplicas"] == 3 and status["updatedReplicas"] == 3
    assert status["currentRevision"] == status["updateRevision"]
    revs = c.kubectl_json("get", "controllerrevisions")["items"]
    assert [r["revision"] for r in revs if r["metadata"]["name"] == status["updateRevision"]] == [1]
    assert any(e["reason"] == "SuccessfulCreate" and e["message"] == "create Pod web-0 in StatefulSet web successful"
               for e in _events(c, "web"))

    c.kubectl("scale", "sts", "web", "--replicas=1")
    wait_until(lambda: _names(c, "app=web") == ["web-0"], timeout=20, what="scale down to web-0")
    deletes = sorted((e for e in _events(c, "web") if e["reason"] == "SuccessfulDelete"),
                     key=lambda e: int(e["metadata"]["resourceVersion"]))
    assert [e["message"] for e in deletes] == [f"delete Pod web-{i} in StatefulSet web successful" for i in (2, 1)]
    assert len(c.kubectl_json("get", "pvc", "-l", "app=web")["items"]) == 3  # whenScaled: Retain

    # a template change rolls the remaining pod to a new revision
    c.kubectl("patch", "sts", "web", "--type=merge", "-p",
              json.dumps({"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}}))

    def rolled():
        pods = _pods(c, "app=web")
        return len(pods) == 1 and (pods[0]["metadata"].get("annotations") or {}).get("v") == "2" and pods[0]

    pod = wait_until(rolled, timeout=20, what="web-0 recreated from the new revision")
    _ready(c, pod["metadata"]["name"])
    sts = wait_until(lambda: (s := c.kubectl_json("get", "sts", "web"))["status"].get("currentRevision")
                     == s["status"].get("updateRevision") and s, timeout=20, what="rollout to complete")
    assert sts["status"]["updatedReplicas"] == 1
    assert pod["metadata"]["labels"]["controller-revision-hash"] == sts["status"]["updateRevision"]


# --- Job ------------------------------------------------------------------------------------------
def _job(name: str, **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": {"spec": {"containers": [CONTAINER], "restartPolicy": "Never"}}, **spec}}


def _active(c, job: str) -> list[dict]:
    return [p for p in _pods(c, f"batch.kubernetes.io/job-name={job}")
            if p["status"].get("phase") not in ("Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp")]


def _condition(job: dict, type_: str) -> dict | None:
    return next((x for x in job.get("status", {}).get("conditions") or () if x["type"] == type_
                 and x["status"] == "True"), None)


def test_job_runs_completions_with_parallelism(cluster):
    c = cluster
    c.kubectl("apply", "-f", "-", input=manifest(_job("pi", completions=3, parallelism=2)))
    job = c.kubectl_json("get", "job", "pi")
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    first = wait_until(lambda: len(p := _active(c, "pi")) == 2 and p, timeout=20, what="2 active pods")
    for pod in first:
        labels = pod["metadata"]["labels"]
        assert labels["batch.kubernetes.io/job-name"] == labels["job-name"] == "pi"
        assert labels["controller-uid"] == uid
        assert pod["metadata"]["finalizers"] == ["batch.kubernetes.io/job-tracking"]
        _finish(c, pod["metadata"]["name"], 0)
    last = wait_until(lambda: len(p := _active(c, "pi")) == 1 and p, timeout=20, what="the third pod")
    assert wait_until(lambda: c.kubectl_json("get", "job", "pi")["status"].get("succeeded") == 2, timeout=20,
                      what="2 counted successes")
    _finish(c, last[0]["metadata"]["name"], 0)
    job = wait_until(lambda: _condition(j := c.kubectl_json("get", "job", "pi"), "Complete") and j, timeout=20,
                     what="job to complete")
    st = job["status"]
    assert st["succeeded"] == 3 and not st.get("failed") and st.get("completionTime") and not st.get("active")
    assert _condition(job, "SuccessCriteriaMet")["reason"] == "CompletionsReached"
    assert not st.get("uncountedTerminatedPods")
    assert all(not p["metadata"].get("finalizers") for p in _pods(c, "job-name=pi"))
    assert any(e["reason"] == "Completed" and e["message"] == "Job completed" for e in _events(c, "pi"))
    assert sum(e["reason"] == "SuccessfulCreate" for e in _events(c, "pi")) == 3


def test_job_fails_after_backoff_limit(cluster):
    c = cluster
    c.kubectl("apply", "-f", "-", input=manifest(_job("flaky", backoffLimit=1)))
    for attempt in range(2):
        pod = wait_until(lambda: len(p := _active(c, "flaky")) == 1 and p[0], timeout=30,
                         what=f"attempt {attempt + 1}")
        _finish(c, pod["metadata"]["name"], 1)
    job = wait_until(lambda: _condition(j := c.kubectl_json("get", "job", "flaky"), "Failed") and j, timeout=20,
                     what="job to fail")
    assert _condition(job, "Failed")["reason"] == "BackoffLimitExceeded"
    assert _condition(job, "FailureTarget")["message"] == "Job has reached the specified backoff limit"
    assert job["status"]["failed"] == 2 and not _active(c, "flaky")
    assert any(e["reason"] == "BackoffLimitExceeded" and e["type"] == "Warning" for e in _events(c, "flaky"))


def test_indexed_job_pods_carry_their_index_and_ttl_deletes_it(cluster):
    c = cluster
    c.kubectl("apply", "-f", "-", input=manifest(_job("idx", completions=3, parallelism=3, completionMode="Indexed",
                                                      ttlSecondsAfterFinished=1)))
    pods = wait_until(lambda: len(p := _active(c, "idx")) == 3 and p, timeout=20, what="3 indexed pods")
    by_index = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p for p in pods}
    assert sorted(by_index) == ["0", "1", "2"]
    for index, pod in by_index.items():
        assert pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == index
        assert pod["metadata"]["generateName"] == f"idx-{index}-" and pod["spec"]["hostname"] == f"idx-{index}"
        env = pod["spec"]["containers"][0]["env"]
        assert env == [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}]
    _finish(c, by_index["2"]["metadata"]["name"], 0)
    wait_until(lambda: c.kubectl_json("get", "job", "idx")["status"].get("completedIndexes") == "2", timeout=20,
               what="index 2 completed")
    for index in ("0", "1"):
        _finish(c, by_index[index]["metadata"]["name"], 0)
    wait_until(lambda: c.kubectl("get", "job", "idx", check=False).returncode != 0, timeout=30,
               what="the finished job to be deleted by its ttl")


# --- CronJob: reconcile driven directly, with a fake clock, against a server without controllers -----
def _wait_cache(informer, pred, what: str, timeout: float = 10.0):
    import asyncio

    async def poll():
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if pred(informer):
                return
            await asyncio.sleep(0.02)
        raise TimeoutError(f"cache never showed {what}")

    return poll()


def test_cronjob_schedules_with_forbid_and_history_limits(tmp_path):
    import asyncio
    import datetime

    from kybernetes.client.factory import InformerFactory
    from kybernetes.client.rest import RESTClient
    from kybernetes.controllers.base import ControllerContext, Requeue
    from kybernetes.controllers.cronjob import CronJobController

    from .cluster import Cluster, free_port

    c = Cluster(tmp_path, free_port(), extra_args=["--disable-controller-manager"])
    c.start()
    try:
        cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick", "namespace": "default"},
              "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 1,
                       "jobTemplate": {"metadata": {"labels": {"app": "tick"}}, "spec": {"template": {"spec": {
                           "containers": [CONTAINER], "restartPolicy": "Never"}}}}}}
        c.kubectl("apply", "-f", "-", input=manifest(cj))
        created = datetime.datetime.fromisoformat(
            c.kubectl_json("get", "cronjob", "tick")["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        first = created.replace(second=0) + datetime.timedelta(minutes=5 - created.minute % 5)
        clock = [created]

        def complete(name: str) -> None:
            code, body = c.request("PATCH", f"/apis/batch/v1/namespaces/default/jobs/{name}/status", {"status": {
                "startTime": "2024-01-01T00:00:00Z", "completionTime": "2024-01-01T00:00:01Z", "succeeded": 1,
                "conditions": [{"type": "Complete", "status": "True"}]}},
                content_type="application/merge-patch+json")
            assert code == 200, body

        async def run():
            client = RESTClient.from_kubeconfig(c.kubeconfig)
            factory = InformerFactory(client)
            ctrl = CronJobController(ControllerContext(client, factory), clock=lambda: clock[0])
            stop = asyncio.Event()
            factory.start(stop)
            await factory.wait_synced()

            async def tick(at: datetime.datetime) -> float | None:
                clock[0] = at
                try:
                    await ctrl.reconcile("default/tick")
                except Requeue as r:
                    return r.after
                return None

            def jobs() -> list[str]:
                return sorted(j["metadata"]["name"] for j in ctrl.jobs.list()
                              if not j["metadata"].get("deletionTimestamp"))

            async def fresh_status(pred):
                await _wait_cache(ctrl.cronjobs, lambda i: pred(i.get("default/tick").get("status") or {}), "status")

            try:
                wait = await tick(created + datetime.timedelta(seconds=1))
                assert jobs() == [] and abs(wait - (first - clock[0]).total_seconds()) < 1
                names = [f"tick-{int((first + datetime.timedelta(minutes=5 * i)).timestamp()) // 60}" for i in range(3)]
                await tick(first + datetime.timedelta(seconds=10))
                await _wait_cache(ctrl.jobs, lambda i: i.get(f"default/{names[0]}"), "the first job")
                job = ctrl.jobs.get(f"default/{names[0]}")
                assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
                    first.strftime("%Y-%m-%dT%H:%M:%SZ")
                assert job["metadata"]["labels"]["app"] == "tick"
                await fresh_status(lambda s: s.get("active"))
                status = ctrl.cronjobs.get("default/tick")["status"]
                assert [a["name"] for a in status["active"]] == [names[0]]
                assert status["lastScheduleTime"] == first.strftime("%Y-%m-%dT%H:%M:%SZ")

                # Forbid: the next time is due but the first job still runs
                await tick(first + datetime.timedelta(minutes=5, seconds=10))
                assert jobs() == [names[0]]

                complete(names[0])
                await _wait_cache(ctrl.jobs, lambda i: i.get(f"default/{names[0]}").get("status"), "completion")
                await tick(first + datetime.timedelta(minutes=5, seconds=20))
                await _wait_cache(ctrl.jobs, lambda i: i.get(f"default/{names[1]}"), "the second job")
                await fresh_status(lambda s: [a["name"] for a in s.get("active") or ()] == [names[1]])
                assert ctrl.cronjobs.get("default/tick")["status"]["lastSuccessfulTime"] == "2024-01-01T00:00:01Z"

                # history: with two successful jobs and a limit of 1, the older one goes
                complete(names[1])
                await _wait_cache(ctrl.jobs, lambda i: i.get(f"default/{names[1]}").get("status"), "completion")
                await tick(first + datetime.timedelta(minutes=10, seconds=5))
                await _wait_cache(ctrl.jobs, lambda i: i.get(f"default/{names[0]}") is None and
                                  i.get(f"default/{names[2]}"), "the oldest job deleted, the third created")
                await ctrl.recorder.flush()
            finally:
                stop.set()
                await factory.join()
                await client.close()

        asyncio.run(run())
        events = {(e["reason"], e["message"]) for e in _events(c, "tick")}
        assert ("SuccessfulCreate", f"Created job tick-{int(first.timestamp()) // 60}") in events
        assert ("SawCompletedJob", f"Saw completed job: tick-{int(first.timestamp()) // 60}, condition: Complete") \
            in events
        assert ("SuccessfulDelete", f"Deleted job tick-{int(first.timestamp()) // 60}") in events
    finally:
        c.stop()


# --- DaemonSet: simulated nodes run the pods ---------------------------------------------------------
def test_daemonset_one_pod_per_eligible_node_and_rolling_update(tmp_path):
    from .cluster import Cluster, free_port

    c = Cluster(tmp_path, free_port(), extra_args=["--sim-nodes", "3"])
    c.start()
    try:
        wait_until(lambda: len(c.kubectl_json("get", "nodes")["items"]) == 3, timeout=30, interval=0.3,
                   what="3 sim nodes")
        c.kubectl("taint", "node", "sim-node-2", "dedicated=infra:NoSchedule")
        ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "default"},
              "spec": {"selector": {"matchLabels": {"app": "agent"}},
                       "template": {"metadata": {"labels": {"app": "agent"}},
                                    "spec": {"containers": [{"name": "c", "image": "registry.example/agent:1"}]}}}}
        c.kubectl("apply", "-f", "-", input=manifest(ds))

        def placed():
            pods = [p for p in _pods(c, "app=agent") if not p["metadata"].get("deletionTimestamp")]
            return sorted(p["spec"].get("nodeName") or "" for p in pods) == ["sim-node-0", "sim-node-1"] and pods

        pods = wait_until(placed, timeout=30, interval=0.3, what="one bound pod on each untainted node")
        for pod in pods:
            terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            assert terms == {"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [pod["spec"]["nodeName"]]}]}]}
            keys = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
            assert ("node.kubernetes.io/unreachable", "NoExecute") in keys
            assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys
        status = wait_until(lambda: (s := c.kubectl_json("get", "ds", "agent").get("status", {}))
                            .get("numberReady") == 2 and s, timeout=30, interval=0.3, what="2 ready daemon pods")
        assert status["desiredNumberScheduled"] == 2 and status["currentNumberScheduled"] == 2
        assert status["updatedNumberScheduled"] == 2 and not status.get("numberMisscheduled")

        c.kubectl("patch", "ds", "agent", "--type=merge", "-p",
                  json.dumps({"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}}))
        old = {p["metadata"]["name"] for p in pods}

        def rolled():
            s = c.kubectl_json("get", "ds", "agent")["status"]
            live = [p for p in _pods(c, "app=agent") if not p["metadata"].get("deletionTimestamp")]
            return (s.get("updatedNumberScheduled") == 2 and s.get("numberReady") == 2 and len(live) == 2
                    and not old & {p["metadata"]["name"] for p in live})

        wait_until(rolled, timeout=45, interval=0.3, what="both pods replaced from the new revision")
        assert len(c.kubectl_json("get", "controllerrevisions", "-l", "app=agent")["items"]) == 2

        c.kubectl("taint", "node", "sim-node-2", "dedicated=infra:NoSchedule-")
        wait_until(lambda: len([p for p in _pods(c, "app=agent") if not p["metadata"].get("deletionTimestamp")]) == 3,
                   timeout=20, interval=0.3, what="a pod on the untainted node")
    finally:
        c.stop()
