"""Pod status as the kubelet computes it: phase, conditions and container statuses.

Pure functions over the pod spec and what the runtime reports (upstream
`kubelet_pods.go` generateAPIPodStatus/getPhase and `status/generate.go`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from ..api.meta import rfc3339
from .runtime import EXITED, RUNNING, ContainerStatus


@dataclass
class ContainerView:
    """What the agent knows of one container of a pod: its latest runtime container,
    the one before it (lastState), how often it restarted and why it is waiting."""
    name: str
    current: ContainerStatus | None = None
    last: ContainerStatus | None = None
    restarts: int = 0
    waiting_reason: str = ""
    waiting_message: str = ""
    ready: bool = False
    started: bool | None = None  # from the startup probe; None: started once running


def ts(seconds: float) -> str:
    return rfc3339(datetime.datetime.fromtimestamp(seconds, datetime.UTC))


def _terminated(c: ContainerStatus, runtime: str) -> dict:
    return {"terminated": {"exitCode": c.exit_code, "reason": c.reason or ("Completed" if c.exit_code == 0 else "Error"),
                           "startedAt": ts(c.started_at) if c.started_at else None, "finishedAt": ts(c.finished_at),
                           "containerID": f"{runtime}://{c.id}"}}


def container_status(spec: dict, view: ContainerView, runtime: str) -> dict:
    out = {"name": spec["name"], "image": spec.get("image", ""), "imageID": "", "ready": False,
           "restartCount": view.restarts, "started": False, "state": {}, "lastState": {}}
    cur = view.current
    if view.last is not None:
        out["lastState"] = _terminated(view.last, runtime)
    if view.waiting_reason or cur is None:
        out["state"] = {"waiting": {"reason": view.waiting_reason or "ContainerCreating"}}
        if view.waiting_message:
            out["state"]["waiting"]["message"] = view.waiting_message
    elif cur.state == RUNNING:
        out["state"] = {"running": {"startedAt": ts(cur.started_at)}}
        out["started"] = view.started is not False
        out["ready"] = view.ready
    elif cur.state == EXITED:
        out["state"] = _terminated(cur, runtime)
    else:
        out["state"] = {"waiting": {"reason": "ContainerCreating"}}
    if cur is not None:
        out["containerID"] = f"{runtime}://{cur.id}"
        out["imageID"] = cur.image_ref
    return out


def _counts(statuses: list[dict]) -> dict:
    n = {"running": 0, "waiting": 0, "stopped": 0, "succeeded": 0}
    for s in statuses:
        state = s["state"]
        if "running" in state:
            n["running"] += 1
        elif "terminated" in state:
            n["stopped"] += 1
            n["succeeded"] += state["terminated"]["exitCode"] == 0
        elif "terminated" in (s.get("lastState") or {}):
            n["stopped"] += 1
        else:
            n["waiting"] += 1
    return n


def pod_phase(pod: dict, statuses: list[dict], initialized: bool, terminal: bool) -> str:
    """upstream getPhase: Pending until started, then by the containers' states and the restart policy."""
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    n = _counts(statuses)
    if not initialized and not terminal:
        return "Pending"
    if n["waiting"] > 0 and not terminal:
        return "Pending"
    if n["running"] > 0:
        return "Running"
    if n["stopped"] > 0 or terminal:
        if terminal:
            return "Succeeded" if n["stopped"] == n["succeeded"] and n["waiting"] == 0 else "Failed"
        if policy == "Always":
            return "Running"
        if n["stopped"] == n["succeeded"]:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> dict:
    c = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None}
    if not ok and reason:
        c["reason"] = reason
    if not ok and message:
        c["message"] = message
    return c


def pod_conditions(pod: dict, phase: str, sandbox_ready: bool, init_statuses: list[dict],
                   statuses: list[dict]) -> list[dict]:
    unready = [s["name"] for s in statuses if not s["ready"]]
    uninit = [s["name"] for s in init_statuses if "terminated" not in s["state"]
              or s["state"]["terminated"]["exitCode"] != 0]
    initialized = not uninit or phase == "Succeeded"
    done = phase in ("Succeeded", "Failed")
    conds = [
        _condition("PodReadyToStartContainers", sandbox_ready and not done),
        _condition("Initialized", initialized, "ContainersNotInitialized", f"containers with incomplete status: [{' '.join(uninit)}]"),
    ]
    if done:
        conds += [_condition("Ready", False, "PodCompleted"), _condition("ContainersReady", False, "PodCompleted")]
    else:
        msg = f"containers with unready status: [{' '.join(unready)}]"
        conds += [_condition("Ready", not unready, "ContainersNotReady", msg),
                  _condition("ContainersReady", not unready, "ContainersNotReady", msg)]
    conds.append(_condition("PodScheduled", True))
    return conds


def with_transition_times(conditions: list[dict], old: list[dict] | None, now: str) -> list[dict]:
    """Keep lastTransitionTime of conditions whose status did not change."""
    previous = {c.get("type"): c for c in old or ()}
    out = []
    for c in conditions:
        prev = previous.get(c["type"])
        if prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime"):
            c["lastTransitionTime"] = prev["lastTransitionTime"]
        else:
            c["lastTransitionTime"] = now
        out.append(c)
    # conditions other writers own (e.g. DisruptionTarget) stay
    mine = {c["type"] for c in conditions}
    out += [c for c in old or () if c.get("type") not in mine]
    return out
