"""Job controller, habit 3: seeded caches, `reconcile` called directly, writes checked.

The controller's clock is injected, so pod-failure backoff takes no wall time; the test
plays the kubelet by writing pod phases. Upstream reference: pkg/controller/job/
job_controller_test.go (TestControllerSyncJob: "WQ job", "too many active pods",
"indexed job", "job failed after backoff limit", "activeDeadlineSeconds", ...).
"""

from __future__ import annotations

from kybernetes.controllers.job import COMPLETION_INDEX, TRACKING_FINALIZER, JobController, condition, pod_index

from .controller_units import CONTAINER, Harness, ready_status, run, server_fixture

server = server_fixture()


def _job(name: str, restart: str = "Never", **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [CONTAINER], "restartPolicy": restart}}, **spec}}


class World:
    def __init__(self, h: Harness):
        self.h = h
        self.now = [1000.0]
        self.ctrl = h.controller(JobController, clock=lambda: self.now[0])

    async def create(self, job: dict) -> dict:
        job = await self.h.setup("batch", "v1", "jobs", job)
        self.h.seed(self.ctrl.jobs, job)
        return job

    async def sync(self, name: str = "job") -> float | None:
        after = await self.h.reconcile(self.ctrl, name)
        await self.h.observe(self.ctrl.jobs, "jobs")
        await self.h.observe(self.ctrl.pods, "pods")
        return after

    def job(self, name: str = "job") -> dict:
        return self.ctrl.jobs.get(f"{self.h.ns}/{name}")

    def pods(self) -> list[dict]:
        return sorted((p for p in self.ctrl.pods.list() if p["metadata"]["namespace"] == self.h.ns),
                      key=lambda p: p["metadata"]["name"])

    def running(self) -> list[dict]:
        return [p for p in self.pods() if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                and not p["metadata"].get("deletionTimestamp")]

    async def finish(self, pod: dict, phase: str) -> None:
        """The kubelet reports the pod's end."""
        status = {"phase": phase, "containerStatuses": [{"name": "c", "ready": False, "restartCount": 0, "image": "x",
                                                         "imageID": "", "state": {"terminated": {
                                                             "exitCode": 0 if phase == "Succeeded" else 1}}}]}
        self.h.seed(self.ctrl.pods, await self.h.set_status("", "v1", "pods", pod, status))

    def created(self) -> list[dict]:
        return [a.result for a in self.h.writes("pods", "create")]


def test_completions_with_parallelism_never_run_more_than_parallelism(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            job = await w.create(_job("job", completions=5, parallelism=2))
            await w.sync()
            created = w.created()
            assert len(created) == 2
            for pod in created:
                meta = pod["metadata"]
                assert meta["generateName"] == "job-" and TRACKING_FINALIZER in meta["finalizers"]
                assert meta["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
                assert meta["labels"]["app"] == "job" and meta["labels"]["batch.kubernetes.io/job-name"] == "job"
            assert w.job()["status"]["startTime"]

            total, rounds = 2, 0
            while not condition(w.job(), "Complete"):
                rounds += 1
                assert rounds < 12, w.job()["status"]
                running = w.running()
                assert len(running) <= 2
                if running:
                    await w.finish(running[0], "Succeeded")
                await w.sync()
                total += len(w.created())
            assert total == 5
            status = w.job()["status"]
            assert status["succeeded"] == 5 and status["active"] == 0 and not status.get("failed")
            assert condition(w.job(), "SuccessCriteriaMet")["reason"] == "CompletionsReached"
            assert status["completionTime"]
            assert status["uncountedTerminatedPods"] == {}
            # every finished pod had its tracking finalizer removed
            assert all(TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or ()) for p in w.pods())
            assert ("Completed", "Job completed") in h.events()
    run(go())


def test_finished_pods_go_through_uncounted_then_counted(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_job("job", completions=2, parallelism=2))
            await w.sync()
            first, _ = w.running()
            await w.finish(first, "Succeeded")
            await w.sync()
            status_writes = [a.body["status"] for a in h.writes("jobs", "update", "status")]
            # 1. the pod is recorded as uncounted, 2. its finalizer goes, 3. it is counted
            assert status_writes[0]["uncountedTerminatedPods"] == {"succeeded": [first["metadata"]["uid"]]}
            [patch] = h.writes("pods", "patch")
            assert patch.name == first["metadata"]["name"]
            assert patch.body["metadata"]["finalizers"] is None
            assert status_writes[1]["succeeded"] == 1 and status_writes[1]["uncountedTerminatedPods"] == {}
            order = [(a.plural, a.verb) for a in h.writes() if a.plural in ("jobs", "pods")]
            assert order == [("jobs", "update"), ("pods", "patch"), ("jobs", "update")]
    run(go())


def test_backoff_limit_fails_the_job_after_delayed_retries(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_job("job", completions=1, backoffLimit=1))
            await w.sync()
            [pod] = w.running()
            await w.finish(pod, "Failed")
            after = await w.sync()
            assert w.created() == []  # backoff: 10s after the first failure
            assert after is not None and 9 < after < 11
            assert w.job()["status"]["failed"] == 1 and not condition(w.job(), "FailureTarget")
            w.now[0] += 5
            after = await w.sync()
            assert w.created() == [] and 4 < after < 6
            w.now[0] += 6
            await w.sync()
            [pod] = w.created()

            await w.finish(w.running()[0], "Failed")
            await w.sync()
            assert w.created() == []
            job = w.job()
            assert job["status"]["failed"] == 2
            assert condition(job, "FailureTarget")["reason"] == "BackoffLimitExceeded"
            failed = condition(job, "Failed")
            assert failed["reason"] == "BackoffLimitExceeded"
            assert failed["message"] == "Job has reached the specified backoff limit"
            assert not job["status"].get("completionTime")
            assert ("BackoffLimitExceeded", "Job has reached the specified backoff limit") in h.events()
            w.now[0] += 1000
            await w.sync()  # finished: nothing more
            assert h.writes("pods", "create") == [] and h.writes("jobs") == []
    run(go())


def test_backoff_limit_exceeded_deletes_the_other_running_pods_before_failing(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_job("job", completions=4, parallelism=2, backoffLimit=0))
            await w.sync()
            bad, other = w.running()
            await w.finish(bad, "Failed")
            await w.sync()
            assert [a.name for a in h.writes("pods", "delete")] == [other["metadata"]["name"]]
            job = w.job()
            assert condition(job, "FailureTarget") and not condition(job, "Failed")  # the other pod still holds
            await w.sync()  # the deleted pod is counted as failed, its finalizer goes, the job fails
            job = w.job()
            assert condition(job, "Failed")["reason"] == "BackoffLimitExceeded"
            assert job["status"]["failed"] == 2 and job["status"]["active"] == 0
            assert w.pods() == [] or all(p["metadata"].get("deletionTimestamp") is None for p in w.pods())
    run(go())


def test_restart_policy_on_failure_counts_container_restarts_against_the_backoff_limit(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_job("job", restart="OnFailure", completions=1, backoffLimit=2))
            await w.sync()
            [pod] = w.running()
            status = {**ready_status(False), "containerStatuses": [
                {"name": "c", "ready": False, "restartCount": 1, "image": "x", "imageID": "",
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
            pod = await h.set_status("", "v1", "pods", pod, status)
            h.seed(w.ctrl.pods, pod)
            await w.sync()
            assert not condition(w.job(), "FailureTarget")
            status["containerStatuses"][0]["restartCount"] = 2
            h.seed(w.ctrl.pods, await h.set_status("", "v1", "pods", pod, status))
            await w.sync()
            # upstream pastBackoffLimitOnFailure: 2 restarts >= backoffLimit 2
            assert condition(w.job(), "FailureTarget")["reason"] == "BackoffLimitExceeded"
            assert [a.name for a in h.writes("pods", "delete")] == [pod["metadata"]["name"]]
            await w.sync()
            assert condition(w.job(), "Failed")["reason"] == "BackoffLimitExceeded"
    run(go())


def test_indexed_job_runs_each_index_once_and_records_completed_indexes(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_job("job", completions=3, parallelism=2, completionMode="Indexed"))
            await w.sync()
            created = w.created()
            assert sorted(pod_index(p) for p in created) == [0, 1]
            for pod in created:
                i = pod_index(pod)
                meta = pod["metadata"]
                assert meta["generateName"] == f"job-{i}-"
                assert meta["labels"][COMPLETION_INDEX] == meta["annotations"][COMPLETION_INDEX] == str(i)
                assert pod["spec"]["hostname"] == f"job-{i}"
                env = pod["spec"]["containers"][0]["env"]
                assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                    "apiVersion": "v1", "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}} in env
            by_index = {pod_index(p): p for p in w.running()}

            await w.finish(by_index[1], "Succeeded")
            await w.sync()
            assert [pod_index(p) for p in w.created()] == [2]
            assert w.job()["status"]["completedIndexes"] == "1"

            await w.finish(by_index[0], "Failed")  # index 0 is retried, after the backoff
            await w.sync()
            assert w.created() == []
            w.now[0] += 11
            await w.sync()
            assert [pod_index(p) for p in w.created()] == [0]

            for pod in w.running():
                await w.finish(pod, "Succeeded")
            await w.sync()
            job = w.job()
            assert job["status"]["completedIndexes"] == "0-2"
            assert (job["status"]["succeeded"], job["status"]["failed"]) == (3, 1)
            assert condition(job, "Complete")
    run(go())


def test_active_deadline_fails_the_job_and_removes_its_pods(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_job("job", parallelism=2, completions=2, activeDeadlineSeconds=30))
            after = await w.sync()
            assert len(w.created()) == 2 and 25 < after < 31
            job = w.job()
            # the job started long ago
            h.seed(w.ctrl.jobs, await h.set_status("batch", "v1", "jobs", job,
                                                   {**job["status"], "startTime": "2024-01-01T00:00:00Z"}))
            await w.sync()
            assert len(h.writes("pods", "delete")) == 2
            assert condition(w.job(), "FailureTarget")["reason"] == "DeadlineExceeded"
            await w.sync()
            job = w.job()
            assert condition(job, "Failed")["reason"] == "DeadlineExceeded"
            assert job["status"]["failed"] == 2
    run(go())


def test_suspended_job_creates_nothing_and_resuming_starts_it(server):
    async def go():
        async with Harness(server) as h:
            w = World(h)
            await w.create(_job("job", completions=1, suspend=True))
            await w.sync()
            assert w.created() == []
            cond = next(c for c in w.job()["status"]["conditions"] if c["type"] == "Suspended")
            assert (cond["status"], cond["reason"]) == ("True", "JobSuspended")
            assert not w.job()["status"].get("startTime")
            h.client.recording = False
            job = await h.client.patch("batch", "v1", "jobs", "job", {"spec": {"suspend": False}}, h.ns)
            h.client.recording = True
            h.seed(w.ctrl.jobs, job)
            await w.sync()
            assert len(w.created()) == 1
            cond = next(c for c in w.job()["status"]["conditions"] if c["type"] == "Suspended")
            assert (cond["status"], cond["reason"]) == ("False", "JobResumed")
            assert w.job()["status"]["startTime"]
    run(go())


def test_job_with_a_manual_selector_adopts_matching_orphans_with_its_tracking_finalizer(server):
    """Upstream getPodsForJob: ClaimPods adopts orphans the selector matches, adding the
    tracking finalizer in the same patch; other controllers' pods are left alone."""
    async def go():
        async with Harness(server) as h:
            w = World(h)
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"app": "adopt"}},
                   "spec": {"containers": [CONTAINER], "restartPolicy": "Never"}}
            orphan = await h.setup("", "v1", "pods", {**pod, "metadata": {**pod["metadata"], "name": "orphan"}})
            owned_elsewhere = await h.setup("", "v1", "pods", {**pod, "metadata": {
                **pod["metadata"], "name": "theirs", "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "0000-rs",
                    "controller": True}]}})
            h.seed(w.ctrl.pods, orphan, owned_elsewhere)
            job = _job("job", completions=2, parallelism=2, manualSelector=True,
                       selector={"matchLabels": {"app": "adopt"}})
            job["spec"]["template"]["metadata"]["labels"] = {"app": "adopt"}
            job = await w.create(job)
            # an orphan's arrival wakes the Jobs whose selector matches it
            assert w.ctrl._orphan_keys(orphan) == [f"{h.ns}/job"]
            assert w.ctrl._orphan_keys(owned_elsewhere) == []
            await w.sync()
            [adopt] = [a for a in h.writes("pods", "patch") if a.name == "orphan"]
            meta = adopt.result["metadata"]
            assert [r["uid"] for r in meta["ownerReferences"]] == [job["metadata"]["uid"]]
            assert meta["ownerReferences"][0]["controller"] is True
            assert TRACKING_FINALIZER in meta["finalizers"]
            assert not [a for a in h.writes("pods", "patch") if a.name == "theirs"]
            # the adopted pod is one of the two that may run: one more is created, not two
            assert len(w.created()) == 1
            assert w.job()["status"]["active"] == 2
    run(go())
