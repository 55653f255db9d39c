"""Pod printer: READY, STATUS (kubectl's reason logic), RESTARTS, AGE and wide columns."""

from __future__ import annotations

import datetime

from .common import NONE, age, age_col, col, get, name_col, name_of, parse_time, since

POD_COLUMNS = [
    name_col(),
    col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    col("Status", description="The aggregate status of the containers in this pod."),
    col(
        "Restarts",
        description="The number of times the containers in this pod have been restarted and when the last "
        "container in this pod has restarted.",
    ),
    age_col(),
    col("IP", priority=1, description="podIP address allocated to the pod. Routable at least within the cluster."),
    col("Node", priority=1, description="NodeName indicates in which node this pod is scheduled."),
    col("Nominated Node", priority=1, description="nominatedNodeName is set when this pod preempts other pods."),
    col("Readiness Gates", priority=1, description="If specified, all readiness gates will be evaluated."),
]

_SUCCEEDED = [
    {"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}
]
_FAILED = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]


def _condition_true(status: dict, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in status.get("conditions") or [])


def _later(current: datetime.datetime | None, cs: dict) -> datetime.datetime | None:
    t = parse_time(get(cs, "lastState", "terminated", "finishedAt"))
    if t is not None and (current is None or t > current):
        return t
    return current


def pod_status(pod: dict) -> tuple[str, int, int, int, datetime.datetime | None]:
    """Return (reason, ready, total, restarts, lastRestart) following kubectl's printPod."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    restartable = {n for n, c in init_specs.items() if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or []) + len(restartable)
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: datetime.datetime | None = None
    last_sidecar_restart: datetime.datetime | None = None

    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for c in status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    n_init = len(spec.get("initContainers") or [])
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        count = int(cs.get("restartCount") or 0)
        restarts += count
        last_restart = _later(last_restart, cs)
        is_sidecar = cs.get("name") in restartable
        if is_sidecar:
            sidecar_restarts += count
            last_sidecar_restart = _later(last_sidecar_restart, cs)
        state = cs.get("state") or {}
        term = state.get("terminated")
        waiting = state.get("waiting")
        if term is not None and int(term.get("exitCode") or 0) == 0:
            continue
        if is_sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                if term.get("signal"):
                    reason = f"Init:Signal:{term['signal']}"
                else:
                    reason = f"Init:ExitCode:{term.get('exitCode', 0)}"
            else:
                reason = "Init:" + term["reason"]
        elif waiting is not None and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    if not initializing or _condition_true(status, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _later(last_restart, cs)
            state = cs.get("state") or {}
            waiting = state.get("waiting")
            term = state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                if term.get("signal"):
                    reason = f"Signal:{term['signal']}"
                else:
                    reason = f"ExitCode:{term.get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"

    deleting = get(pod, "metadata", "deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return reason, ready, total, restarts, last_restart


def print_pod(pod: dict, now: datetime.datetime):
    reason, ready, total, restarts, last_restart = pod_status(pod)
    restarts_str = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_str = f"{restarts} ({since(last_restart.isoformat(), now)} ago)"
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    pod_ip = get(status, "podIPs", 0, "ip") or status.get("podIP") or NONE
    gates = spec.get("readinessGates") or []
    gates_str = NONE
    if gates:
        conds = status.get("conditions") or []
        true_count = 0
        for g in gates:
            for c in conds:
                if c.get("type") == g.get("conditionType"):
                    if c.get("status") == "True":
                        true_count += 1
                    break
        gates_str = f"{true_count}/{len(gates)}"
    cells = [
        name_of(pod),
        f"{ready}/{total}",
        reason,
        restarts_str,
        age(pod, now),
        pod_ip,
        spec.get("nodeName") or NONE,
        status.get("nominatedNodeName") or NONE,
        gates_str,
    ]
    phase = status.get("phase")
    conditions = _SUCCEEDED if phase == "Succeeded" else _FAILED if phase == "Failed" else None
    return cells, conditions


PRINTERS = {("", "Pod"): (POD_COLUMNS, print_pod)}
