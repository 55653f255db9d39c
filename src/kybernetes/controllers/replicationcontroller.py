"""The ReplicationController manager: the ReplicaSet core over core/v1 (upstream `pkg/controller/replication`).

A ReplicationController's selector is a plain label map rather than a LabelSelector,
and an empty one means the template's labels (the API server defaults it so).
"""

from __future__ import annotations

from .replicaset import ReplicaSetController


class ReplicationManager(ReplicaSetController):
    name = "replicationcontroller"
    group, version, plural, kind = "", "v1", "replicationcontrollers", "ReplicationController"
    component = "replication-controller"

    def selector(self, owner: dict) -> dict:
        spec = owner.get("spec") or {}
        labels = spec.get("selector") or ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        return {"matchLabels": dict(labels)}
