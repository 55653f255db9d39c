"""DefaultTolerationSeconds admission (upstream plugin/pkg/admission/defaulttolerationseconds).

A pod that does not tolerate the not-ready and unreachable NoExecute taints gets a toleration
of each for 300 s: when its node stops reporting, it stays bound there five minutes before
the node lifecycle controller evicts it. Applied on create and update, as upstream.
"""

from __future__ import annotations

from ..api.resources import ResourceType

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_SECONDS = 300


def _tolerates(tolerations: list, key: str) -> bool:
    """Upstream's test: the key matches (or is empty) and the effect is NoExecute (or empty)."""
    return any(isinstance(t, dict) and t.get("key", "") in (key, "") and t.get("effect", "") in ("NoExecute", "")
               for t in tolerations)


def add_default_tolerations(spec: dict) -> None:
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = []
    if not isinstance(tolerations, list):
        return  # validation refuses it
    added = [{"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": DEFAULT_SECONDS}
             for key in (NOT_READY, UNREACHABLE) if not _tolerates(tolerations, key)]
    if added:
        spec["tolerations"] = [*tolerations, *added]


def default_toleration_seconds(rt: ResourceType, obj: dict) -> None:
    """The create half, as a mutating admission step (the update half is in the pod strategy)."""
    spec = obj.get("spec")
    if (rt.group, rt.plural) == ("", "pods") and isinstance(spec, dict):
        add_default_tolerations(spec)
