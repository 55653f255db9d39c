"""LimitRanger admission (upstream plugin/pkg/admission/limitranger): a namespace's LimitRanges.

On a pod's create, each container and init container takes the `default` limits and
`defaultRequest` requests of the namespace's Container limit ranges for the resources it does not
set, and the pod is annotated `kubernetes.io/limit-ranger: LimitRanger plugin set: cpu, memory
request for container c; ...`, as upstream does. Then `min`, `max` and `maxLimitRequestRatio`
are enforced per Container and per Pod, and `min` and `max` of a new PersistentVolumeClaim's
storage request: a violation is 403 Forbidden, worded as upstream's.

Not done: upstream also checks a claim's request on update (a resize).
"""

from __future__ import annotations

import re
from fractions import Fraction

from ..api import errors
from ..api.quantity import parse_quantity
from ..api.quota import format_quantity, pod_resources
from ..api.resources import ResourceType
from .watchcache import WatchCache

LIMIT_RANGES = "/registry/core/limitranges/"
ANNOTATION = "kubernetes.io/limit-ranger"


_CANONICAL = re.compile(r"0|[1-9][0-9]*(?:Ki|Mi|Gi|Ti|Pi|Ei|[kMGTPE])?")


def _value(quantity) -> Fraction | None:
    if quantity is None or isinstance(quantity, Fraction):
        return quantity
    try:
        return parse_quantity(quantity)
    except ValueError:
        return None  # validation reports it


def _show(quantity, like: str = "") -> str:
    """A quantity as upstream's Quantity.String() prints it (canonical: 1000m is 1, 0.5 is 500m); a
    pod's sum in the binary suffixes of `like` when that has them, as a sum keeps its first term's."""
    if isinstance(quantity, str) and _CANONICAL.fullmatch(quantity):
        return quantity
    value = _value(quantity)
    return str(quantity) if value is None else format_quantity(value, like if isinstance(quantity, Fraction)
                                                                else str(quantity))


def _merge_defaults(container: dict, limits: dict, requests: dict, kind: str, notes: list[str]) -> None:
    resources = container.get("resources")
    if resources is None:
        resources = container["resources"] = {}
    if not isinstance(resources, dict):
        return
    own_limits, own_requests = resources.get("limits") or {}, resources.get("requests") or {}
    set_limits = sorted(name for name in limits if name not in own_limits)
    set_requests = sorted(name for name in requests if name not in own_requests)
    if set_limits:
        resources["limits"] = {**own_limits, **{name: limits[name] for name in set_limits}}
    if set_requests:
        resources["requests"] = {**own_requests, **{name: requests[name] for name in set_requests}}
    name = container.get("name", "")
    if set_requests:
        notes.append(f"{', '.join(set_requests)} request for {kind} {name}")
    if set_limits:
        notes.append(f"{', '.join(set_limits)} limit for {kind} {name}")


def _constraints(item: dict, scope: str, requests: dict, limits: dict) -> list[str]:
    """Upstream's minConstraint, maxConstraint and limitRequestRatioConstraint for one range item."""
    out = []
    for name, enforced in (item.get("min") or {}).items():
        req, lim, bound = _value(requests.get(name)), _value(limits.get(name)), _value(enforced)
        if bound is None:
            continue
        if name not in requests:
            out.append(f"minimum {name} usage per {scope} is {_show(enforced)}.  No request is specified")
        elif req is not None and req < bound:
            out.append(f"minimum {name} usage per {scope} is {_show(enforced)}, but request is {_show(requests[name], str(enforced))}")
        elif name in limits and lim is not None and lim < bound:
            out.append(f"minimum {name} usage per {scope} is {_show(enforced)}, but limit is {_show(limits[name], str(enforced))}")
    for name, enforced in (item.get("max") or {}).items():
        req, lim, bound = _value(requests.get(name)), _value(limits.get(name)), _value(enforced)
        if bound is None:
            continue
        if name not in limits:
            out.append(f"maximum {name} usage per {scope} is {_show(enforced)}.  No limit is specified")
        elif lim is not None and lim > bound:
            out.append(f"maximum {name} usage per {scope} is {_show(enforced)}, but limit is {_show(limits[name], str(enforced))}")
        elif name in requests and req is not None and req > bound:
            out.append(f"maximum {name} usage per {scope} is {_show(enforced)}, but request is {_show(requests[name], str(enforced))}")
    for name, enforced in (item.get("maxLimitRequestRatio") or {}).items():
        req, lim, bound = _value(requests.get(name)), _value(limits.get(name)), _value(enforced)
        if bound is None:
            continue
        if not req:
            out.append(f"{name} max limit to request ratio per {scope} is {_show(enforced)}, "
                       "but no request is specified or request is 0")
        elif not lim:
            out.append(f"{name} max limit to request ratio per {scope} is {_show(enforced)}, "
                       "but no limit is specified or limit is 0")
        elif lim / req > bound:
            out.append(f"{name} max limit to request ratio per {scope} is {_show(enforced)}, "
                       f"but provided ratio is {float(lim / req):f}")
    return out


def _resources_of(container: dict, kind: str) -> dict:
    resources = container.get("resources") if isinstance(container, dict) else None
    value = resources.get(kind) if isinstance(resources, dict) else None
    return value if isinstance(value, dict) else {}


class LimitRanger:
    def __init__(self, cache: WatchCache):
        self.cache = cache

    def _items(self, namespace: str, limit_type: str) -> list[dict]:
        ranges = sorted((e.obj for e in self.cache.bucket(LIMIT_RANGES).items(f"{LIMIT_RANGES}{namespace}/")),
                        key=lambda r: r["metadata"]["name"])
        return [item for r in ranges for item in ((r.get("spec") or {}).get("limits") or ())
                if isinstance(item, dict) and item.get("type") == limit_type]

    def mutate_create(self, rt: ResourceType, obj: dict) -> None:
        """The defaults of Container ranges, on a new pod."""
        spec = obj.get("spec")
        if (rt.group, rt.plural) != ("", "pods") or not isinstance(spec, dict):
            return
        items = self._items(obj["metadata"].get("namespace") or "", "Container")
        if not items:
            return
        limits: dict = {}
        requests: dict = {}
        for item in items:  # a later range's default wins, as upstream's loop overwrites
            limits.update(item.get("default") or {})
            requests.update(item.get("defaultRequest") or {})
        notes: list[str] = []
        for field, kind in (("containers", "container"), ("initContainers", "init container")):
            for container in spec.get(field) or ():
                if isinstance(container, dict):
                    _merge_defaults(container, limits, requests, kind, notes)
        if notes:
            meta = obj["metadata"]
            meta["annotations"] = {**(meta.get("annotations") or {}),
                                   ANNOTATION: "LimitRanger plugin set: " + "; ".join(notes)}

    def validate_create(self, rt: ResourceType, obj: dict) -> None:
        """min, max and ratios: 403 Forbidden for a pod or claim outside its namespace's ranges."""
        if not rt.namespaced or (rt.group, rt.plural) not in (("", "pods"), ("", "persistentvolumeclaims")):
            return
        namespace = obj["metadata"].get("namespace") or ""
        spec = obj.get("spec") or {}
        problems: list[str] = []
        if rt.plural == "pods":
            for item in self._items(namespace, "Container"):
                for field in ("containers", "initContainers"):
                    for c in spec.get(field) or ():
                        problems += _constraints(item, "Container", _resources_of(c, "requests"),
                                                 _resources_of(c, "limits"))
            for item in self._items(namespace, "Pod"):
                problems += _constraints(item, "Pod", pod_resources(obj, "requests"), pod_resources(obj, "limits"))
        else:
            requests = _resources_of(spec, "requests")
            for item in self._items(namespace, "PersistentVolumeClaim"):
                problems += _constraints({"min": item.get("min") or {}}, "PersistentVolumeClaim", requests, {})
                for name, enforced in (item.get("max") or {}).items():  # upstream's maxRequestConstraint
                    req, bound = _value(requests.get(name)), _value(enforced)
                    if bound is None:
                        continue
                    if name not in requests:
                        problems.append(f"maximum {name} usage per PersistentVolumeClaim is {_show(enforced)}.  "
                                        "No request is specified")
                    elif req is not None and req > bound:
                        problems.append(f"maximum {name} usage per PersistentVolumeClaim is {_show(enforced)}, "
                                        f"but request is {_show(requests[name], str(enforced))}")
        if problems:
            name = obj["metadata"].get("name") or ""
            detail = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
            raise errors.forbidden_error(f'{rt.plural} "{name}" is forbidden: {detail}', rt.plural, name)
