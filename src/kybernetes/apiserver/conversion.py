"""Conversion between served versions and the version kept in storage.

Storage holds one version per resource: autoscaling/v2 for HorizontalPodAutoscalers,
core/v1 for Events (also served as events.k8s.io/v1), a CRD's storage version for custom
resources (whose versions differ only in apiVersion: conversion strategy None).
"""

from __future__ import annotations

from ..api.resources import ResourceType

_EVENT_FIELDS = (  # events.k8s.io/v1 name -> core/v1 name
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
)


def _rename(obj: dict, pairs, reverse: bool) -> dict:
    out = dict(obj)
    for new, old in pairs:
        src, dst = (new, old) if not reverse else (old, new)
        if src in out:
            out[dst] = out.pop(src)
    return out


def hpa_v1_to_v2(obj: dict) -> dict:
    out = dict(obj, apiVersion="autoscaling/v2")
    spec = dict(obj.get("spec") or {})
    target = spec.pop("targetCPUUtilizationPercentage", None)
    if target is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]
    out["spec"] = spec
    status = dict(obj.get("status") or {})
    current = status.pop("currentCPUUtilizationPercentage", None)
    if current is not None:
        status["currentMetrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": current}}}]
    if status:
        out["status"] = status
    return out


def hpa_v2_to_v1(obj: dict) -> dict:
    out = dict(obj, apiVersion="autoscaling/v1")
    spec = dict(obj.get("spec") or {})
    metrics = spec.pop("metrics", None) or []
    spec.pop("behavior", None)
    for m in metrics:
        res = m.get("resource") or {}
        if m.get("type") == "Resource" and res.get("name") == "cpu":
            util = (res.get("target") or {}).get("averageUtilization")
            if util is not None:
                spec["targetCPUUtilizationPercentage"] = util
    out["spec"] = spec
    status = dict(obj.get("status") or {})
    current_metrics = status.pop("currentMetrics", None) or []
    status.pop("conditions", None)
    for m in current_metrics:
        res = m.get("resource") or {}
        if m.get("type") == "Resource" and res.get("name") == "cpu":
            util = (res.get("current") or {}).get("averageUtilization")
            if util is not None:
                status["currentCPUUtilizationPercentage"] = util
    out["status"] = status
    return out


class Conversion:
    def __init__(self, server):
        self.server = server

    def needed(self, rt: ResourceType) -> bool:
        if (rt.group, rt.plural) == ("autoscaling", "horizontalpodautoscalers"):
            return rt.version != "v2"
        if (rt.group, rt.plural) == ("events.k8s.io", "events"):
            return True
        return self.server.crds.storage_version(rt) not in (None, rt.version)

    def to_storage(self, rt: ResourceType, obj: dict) -> dict:
        if not self.needed(rt):
            return obj
        if rt.group == "autoscaling":
            return hpa_v1_to_v2(obj)
        if rt.group == "events.k8s.io":
            return dict(_rename(obj, _EVENT_FIELDS, False), apiVersion="v1", kind="Event")
        version = self.server.crds.storage_version(rt)
        return dict(obj, apiVersion=f"{rt.group}/{version}")

    def from_storage(self, rt: ResourceType, obj: dict) -> dict:
        if not self.needed(rt):
            return obj
        if rt.group == "autoscaling":
            return hpa_v2_to_v1(obj)
        if rt.group == "events.k8s.io":
            return dict(_rename(obj, _EVENT_FIELDS, True), apiVersion=rt.api_version, kind="Event")
        return dict(obj, apiVersion=rt.api_version)
