"""Priority admission (upstream plugin/pkg/admission/priority): a pod's priority comes from its class.

On create, a pod naming a PriorityClass gets the class's value and preemptionPolicy. A pod
naming none gets the global default class's, and that class's name; with no default class it
gets priority 0 and PreemptLowerPriority (with several, the lowest-valued one wins, as
upstream picks after a race). A class that does not exist, or a priority or preemptionPolicy
in the pod that differs from what the class gives, is refused with 403, as upstream does.
"""

from __future__ import annotations

from ..api import errors
from ..api.resources import ResourceType
from .watchcache import WatchCache

PRIORITY_CLASSES = "/registry/scheduling.k8s.io/priorityclasses/"
DEFAULT_PRIORITY = 0  # scheduling.DefaultPriorityWhenNoDefaultClassExists
DEFAULT_PREEMPTION = "PreemptLowerPriority"


class PriorityAdmission:
    def __init__(self, cache: WatchCache):
        self.cache = cache

    def mutate_create(self, rt: ResourceType, obj: dict) -> None:
        if (rt.group, rt.plural) != ("", "pods"):
            return
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return  # validation refuses it
        name = (obj.get("metadata") or {}).get("name") or ""
        value, policy = self._class_of(spec, name)
        given = spec.get("priority")
        if given is not None and (isinstance(given, bool) or not isinstance(given, int)):
            return  # not an integer: validation refuses it
        for key, computed, wording in (("priority", value, "integer value of priority"),
                                       ("preemptionPolicy", policy, "string value of PreemptionPolicy")):
            given = spec.get(key)
            if given is not None and given != computed:
                raise errors.forbidden_error(
                    f'pods "{name}" is forbidden: the {wording} ({given}) must not be provided in pod spec; '
                    f"priority admission controller computed {computed} from the given PriorityClass name",
                    "pods", name)
            spec[key] = computed

    def _class_of(self, spec: dict, pod_name: str) -> tuple[int, str]:
        """(value, preemptionPolicy) for the pod; names the default class in `spec` when it takes it."""
        classes = self.cache.bucket(PRIORITY_CLASSES).store
        name = spec.get("priorityClassName")
        if name:
            entry = classes.get(PRIORITY_CLASSES + str(name))
            if entry is None:
                raise errors.forbidden_error(
                    f'pods "{pod_name}" is forbidden: no PriorityClass with name {name} was found',
                    "pods", pod_name)
            pc = entry.obj
        else:
            defaults = [e.obj for e in classes.values() if e.obj.get("globalDefault")]
            if not defaults:
                return DEFAULT_PRIORITY, DEFAULT_PREEMPTION
            pc = min(defaults, key=lambda c: c.get("value") or 0)
            spec["priorityClassName"] = pc["metadata"]["name"]
        return pc.get("value") or 0, pc.get("preemptionPolicy") or DEFAULT_PREEMPTION
