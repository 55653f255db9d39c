"""Printers for apps/*, batch/* and autoscaling/* kinds."""

from __future__ import annotations

import datetime

from .common import (
    CONTAINERS_DESC,
    IMAGES_DESC,
    NONE,
    UNSET,
    age,
    age_col,
    between,
    bool_ptr,
    col,
    container_cells,
    format_label_selector,
    format_labels,
    get,
    name_col,
    name_of,
    parse_time,
    selector_string,
)


def _wide(selector_desc: str = "A label query over pods that should match the replica count.") -> list[dict]:
    return [
        col("Containers", priority=1, description=CONTAINERS_DESC),
        col("Images", priority=1, description=IMAGES_DESC),
        col("Selector", priority=1, description=selector_desc),
    ]


def _replicas(spec: dict) -> int:
    r = spec.get("replicas")
    return 1 if r is None else int(r)


DEPLOYMENT_COLUMNS = [
    name_col(),
    col("Ready", description="Number of the pod with ready state"),
    col(
        "Up-to-date",
        "integer",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "integer",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    age_col(),
    *_wide("Label selector for pods."),
]


def print_deployment(obj: dict, now: datetime.datetime) -> list:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    names, images = container_cells(get(spec, "template", "spec"))
    return [
        name_of(obj),
        f"{int(status.get('readyReplicas') or 0)}/{_replicas(spec)}",
        int(status.get("updatedReplicas") or 0),
        int(status.get("availableReplicas") or 0),
        age(obj, now),
        names,
        images,
        selector_string(spec.get("selector")),
    ]


REPLICASET_COLUMNS = [
    name_col(),
    col("Desired", "integer", "Replicas is the number of desired replicas."),
    col("Current", "integer", "Replicas is the most recently observed number of replicas."),
    col("Ready", "integer", "The number of ready replicas for this replica set."),
    age_col(),
    *_wide(),
]


def print_replicaset(obj: dict, now: datetime.datetime) -> list:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    names, images = container_cells(get(spec, "template", "spec"))
    return [
        name_of(obj),
        _replicas(spec),
        int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0),
        age(obj, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


STATEFULSET_COLUMNS = [
    name_col(),
    col("Ready", description="Number of the pod with ready state"),
    age_col(),
    col("Containers", priority=1, description=CONTAINERS_DESC),
    col("Images", priority=1, description=IMAGES_DESC),
]


def print_statefulset(obj: dict, now: datetime.datetime) -> list:
    spec = obj.get("spec") or {}
    names, images = container_cells(get(spec, "template", "spec"))
    ready = int(get(obj, "status", "readyReplicas", default=0))
    return [name_of(obj), f"{ready}/{_replicas(spec)}", age(obj, now), names, images]


DAEMONSET_COLUMNS = [
    name_col(),
    col("Desired", "integer", "The total number of nodes that should be running the daemon pod."),
    col("Current", "integer", "The number of nodes that are running at least 1 daemon pod."),
    col(
        "Ready",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of "
        "the daemon pod running and ready.",
    ),
    col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
    col(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more "
        "of the daemon pod running and available.",
    ),
    col("Node Selector", description="NodeSelector is a selector which must be true for the pod to fit on a node."),
    age_col(),
    *_wide("A label query over pods that are managed by the daemon set."),
]


def print_daemonset(obj: dict, now: datetime.datetime) -> list:
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    pod_spec = get(spec, "template", "spec", default={})
    names, images = container_cells(pod_spec)
    return [
        name_of(obj),
        int(st.get("desiredNumberScheduled") or 0),
        int(st.get("currentNumberScheduled") or 0),
        int(st.get("numberReady") or 0),
        int(st.get("updatedNumberScheduled") or 0),
        int(st.get("numberAvailable") or 0),
        format_labels(pod_spec.get("nodeSelector")),
        age(obj, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


CONTROLLERREVISION_COLUMNS = [
    name_col(),
    col("Controller", description="Controller of the object"),
    col("Revision", "integer", "Revision indicates the revision of the state represented by Data."),
    age_col(),
]


def print_controllerrevision(obj: dict, now: datetime.datetime) -> list:
    controller = NONE
    for ref in get(obj, "metadata", "ownerReferences", default=[]):
        if ref.get("controller"):
            api_version = ref.get("apiVersion") or ""
            group = api_version.split("/")[0] if "/" in api_version else ""
            kind = ref.get("kind") or ""
            gk = f"{kind}.{group}" if group else kind
            controller = f"{gk.lower()}/{ref.get('name', '')}" if gk else ref.get("name", "")
            break
    return [name_of(obj), controller, int(obj.get("revision") or 0), age(obj, now)]


JOB_COLUMNS = [
    name_col(),
    col("Status", description="Status of the job."),
    col("Completions", description="The completion status of the job."),
    col("Duration", description="Time required to complete the job."),
    age_col(),
    *_wide("A label query over pods that should match the pod count."),
]


def _has_condition(conds: list, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in conds or [])


def job_status(obj: dict) -> str:
    conds = get(obj, "status", "conditions", default=[])
    if _has_condition(conds, "Complete"):
        return "Complete"
    if _has_condition(conds, "Failed"):
        return "Failed"
    if get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    for ctype in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _has_condition(conds, ctype):
            return ctype
    return "Running"


def print_job(obj: dict, now: datetime.datetime) -> list:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    succeeded = int(status.get("succeeded") or 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    else:
        par = int(spec.get("parallelism") or 0)
        completions = f"{succeeded}/1 of {par}" if par > 1 else f"{succeeded}/1"
    duration = ""
    if parse_time(status.get("startTime")) is not None:
        if status.get("completionTime"):
            duration = between(status["startTime"], status["completionTime"])
        else:
            duration = between(status["startTime"], now.isoformat())
    names, images = container_cells(get(spec, "template", "spec"))
    return [
        name_of(obj),
        job_status(obj),
        completions,
        duration,
        age(obj, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


CRONJOB_COLUMNS = [
    name_col(),
    col("Schedule", description="The schedule in Cron format."),
    col("Timezone", description="The time zone name for the given schedule."),
    col("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions."),
    col("Active", "integer", "A list of pointers to currently running jobs."),
    col("Last Schedule", description="Information when was the last time the job was successfully scheduled."),
    age_col(),
    *_wide("A label query over pods that should match the pod count."),
]


def print_cronjob(obj: dict, now: datetime.datetime) -> list:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    last = NONE
    if status.get("lastScheduleTime"):
        last = age({"metadata": {"creationTimestamp": status["lastScheduleTime"]}}, now)
    job_spec = get(spec, "jobTemplate", "spec", default={})
    names, images = container_cells(get(job_spec, "template", "spec"))
    return [
        name_of(obj),
        spec.get("schedule", ""),
        spec.get("timeZone") or NONE,
        bool_ptr(spec.get("suspend")),
        len(status.get("active") or []),
        last,
        age(obj, now),
        names,
        images,
        format_label_selector(job_spec.get("selector")),
    ]


HPA_COLUMNS = [
    name_col(),
    col("Reference", description="reference to scaled resource"),
    col("Targets", description="the target utilization and current utilization"),
    col("MinPods", description="lower limit for the number of pods that can be set by the autoscaler"),
    col("MaxPods", "integer", "upper limit for the number of pods that can be set by the autoscaler"),
    col("Replicas", "integer", "current number of replicas of pods managed by this autoscaler"),
    age_col(),
]


def _metric_target(spec: dict, current: dict | None, key: str) -> str:
    target = spec.get("target") or {}
    cur = (current or {}).get("current") or {}
    if target.get("averageValue") is not None:
        suffix = " (avg)" if key in ("external", "object") else ""
        return f"{cur.get('averageValue', '<unknown>')}/{target['averageValue']}{suffix}"
    if target.get("value") is not None:
        return f"{cur.get('value', '<unknown>')}/{target['value']}"
    c = f"{cur['averageUtilization']}%" if cur.get("averageUtilization") is not None else "<unknown>"
    t = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
    return f"{c}/{t}"


def hpa_targets(obj: dict) -> str:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    metrics = spec.get("metrics")
    if metrics is None and spec.get("targetCPUUtilizationPercentage") is not None:  # autoscaling/v1 shape
        metrics = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"averageUtilization": spec["targetCPUUtilizationPercentage"]}},
            }
        ]
        cur = status.get("currentCPUUtilizationPercentage")
        statuses = [{"resource": {"current": {"averageUtilization": cur}}}] if cur is not None else []
    else:
        statuses = status.get("currentMetrics") or []
    if not metrics:
        return NONE
    out = []
    for i, m in enumerate(metrics):
        mtype = m.get("type") or ""
        key = mtype[:1].lower() + mtype[1:]
        body = m.get(key) or {}
        cur = statuses[i].get(key) if i < len(statuses) and isinstance(statuses[i], dict) else None
        if key not in ("resource", "containerResource", "pods", "object", "external"):
            out.append("<unknown type>")
            continue
        text = _metric_target(body, cur, key)
        if key in ("resource", "containerResource") and body.get("name"):
            text = f"{body['name']}: {text}"
        out.append(text)
    if len(out) > 2:
        return ", ".join(out[:2]) + f" + {len(out) - 2} more..."
    return ", ".join(out)


def print_hpa(obj: dict, now: datetime.datetime) -> list:
    spec = obj.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    min_pods = UNSET if spec.get("minReplicas") is None else str(spec["minReplicas"])
    return [
        name_of(obj),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        hpa_targets(obj),
        min_pods,
        int(spec.get("maxReplicas") or 0),
        int(get(obj, "status", "currentReplicas", default=0)),
        age(obj, now),
    ]


PRINTERS = {
    ("apps", "Deployment"): (DEPLOYMENT_COLUMNS, print_deployment),
    ("apps", "ReplicaSet"): (REPLICASET_COLUMNS, print_replicaset),
    ("apps", "StatefulSet"): (STATEFULSET_COLUMNS, print_statefulset),
    ("apps", "DaemonSet"): (DAEMONSET_COLUMNS, print_daemonset),
    ("apps", "ControllerRevision"): (CONTROLLERREVISION_COLUMNS, print_controllerrevision),
    ("batch", "Job"): (JOB_COLUMNS, print_job),
    ("batch", "CronJob"): (CRONJOB_COLUMNS, print_cronjob),
    ("autoscaling", "HorizontalPodAutoscaler"): (HPA_COLUMNS, print_hpa),
}
