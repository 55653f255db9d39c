"""Strategies of core/v1 kinds with rules beyond the default: pods, namespaces, secrets."""

from __future__ import annotations

import base64

from ...api import errors
from ..strategy import Strategy
from ..tolerations import add_default_tolerations


def qos_class(pod: dict) -> str:
    """Guaranteed, Burstable or BestEffort, from requests and limits as upstream computes it."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in lim:
                guaranteed = False
            elif name in req and str(req[name]) != str(lim[name]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class PodStrategy(Strategy):
    tracks_generation = False

    def prepare_for_create(self, obj: dict) -> None:
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj)}

    def prepare_for_update(self, new: dict, old: dict) -> None:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
        spec, old_spec = new.get("spec"), old.get("spec") or {}
        if isinstance(spec, dict):
            # what admission set on create stays when a replace leaves it out (upstream's Priority
            # and DefaultTolerationSeconds plugins on update)
            for key in ("priority", "preemptionPolicy"):
                if spec.get(key) is None and old_spec.get(key) is not None:
                    spec[key] = old_spec[key]
            add_default_tolerations(spec)

    def grace_period(self, obj: dict, requested: int | None) -> int:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0  # never started anywhere: nothing to stop
        if requested is not None:
            return max(0, requested)
        grace = spec.get("terminationGracePeriodSeconds")
        return 30 if grace is None else max(0, int(grace))


class NamespaceStrategy(Strategy):
    tracks_generation = False

    def default(self, obj: dict) -> None:
        """The name label is a default (upstream SetDefaults_Namespace): the creator owns it."""
        super().default(obj)
        meta = obj["metadata"]
        if meta.get("name"):
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]

    def prepare_for_create(self, obj: dict) -> None:  # the name label came with the defaults
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}

    def prepare_for_update(self, new: dict, old: dict) -> None:
        new["spec"] = old.get("spec") or {}
        new["status"] = old.get("status") or {}
        new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = new["metadata"]["name"]

    def finalizers_pending(self, obj: dict) -> bool:
        return bool(obj["metadata"].get("finalizers")) or bool((obj.get("spec") or {}).get("finalizers"))

    def prepare_for_delete(self, obj: dict) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"


class SecretStrategy(Strategy):
    tracks_generation = False

    def default(self, obj: dict) -> None:
        super().default(obj)
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.get("data") or {}
            for k, v in string_data.items():
                if not isinstance(v, str):
                    raise errors.bad_request(f"stringData.{k}: value must be a string")
                data[k] = base64.b64encode(v.encode()).decode()
            obj["data"] = data
        obj.setdefault("type", "Opaque")


class NoGenerationStrategy(Strategy):
    tracks_generation = False
