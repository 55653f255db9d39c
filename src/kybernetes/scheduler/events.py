"""What the scheduler writes besides bindings: core/v1 Events and the PodScheduled condition."""

from __future__ import annotations

import datetime
import time


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_body(obj: dict, event_type: str, reason: str, message: str, component: str) -> dict:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    now = now_rfc3339()
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta.get('name', '')}.{time.time_ns():x}", "namespace": ns},
        "involvedObject": {"apiVersion": obj.get("apiVersion") or "v1", "kind": obj.get("kind") or "Pod",
                           "name": meta.get("name", ""), "namespace": ns, "uid": meta.get("uid", ""),
                           "resourceVersion": meta.get("resourceVersion", "")},
        "reason": reason, "message": message[:1024], "type": event_type,
        "source": {"component": component}, "reportingComponent": component, "reportingInstance": component,
        "count": 1, "firstTimestamp": now, "lastTimestamp": now,
    }


def pod_scheduled_patch(pod: dict, reason: str, message: str, nominated: str | None) -> dict | None:
    """The status patch for a failed attempt, or None when the pod already says exactly this
    (upstream's UpdatePodCondition: lastTransitionTime kept while the status stays False)."""
    status = pod.get("status") or {}
    old = next((c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"), None)
    cur_nominated = status.get("nominatedNodeName") or ""
    nominated_changes = nominated is not None and nominated != cur_nominated
    if old and old.get("status") == "False" and old.get("reason") == reason and old.get("message") == message \
            and not nominated_changes:
        return None
    transition = old.get("lastTransitionTime") if old and old.get("status") == "False" else None
    cond = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
            "lastProbeTime": None, "lastTransitionTime": transition or now_rfc3339()}
    body: dict = {"status": {"conditions": [cond]}}
    if nominated_changes:
        body["status"]["nominatedNodeName"] = nominated or None
    return body
