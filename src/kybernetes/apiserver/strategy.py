"""Resource strategies: the per-kind steps of every write, in the generic store's order.

As in upstream's `pkg/registry/*/strategy.go`: the store fills system metadata, then calls
`prepare_for_create` / `prepare_for_update`, then `validate` / `validate_update`, then
`canonicalize`, then writes. A status strategy changes only `status`; kinds with special
rules (pods, services, namespaces, CRDs, ...) subclass and override one or two steps.
"""

from __future__ import annotations

import copy

import orjson

from ..api import defaults as api_defaults
from ..api import validation as api_validation
from ..api.errors import FieldError
from ..api.naming import name_validator
from ..api.resources import ResourceType
from ..api.validation.meta import validate_object_meta, validate_object_meta_update

SYSTEM_META = ("uid", "creationTimestamp", "resourceVersion", "generation", "selfLink", "managedFields",
               "deletionTimestamp", "deletionGracePeriodSeconds")


def _without(obj: dict, *keys: str) -> dict:
    return {k: v for k, v in obj.items() if k not in keys}



def stored_copy(value):
    """A deep copy of (part of) an object read from storage: JSON types only, so a JSON round trip copies it
    exactly and many times faster than copy.deepcopy (which stays the fallback for anything else)."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError:
        return copy.deepcopy(value)

class Strategy:
    """Default behaviour for a built-in kind; `rt` is the served resource it belongs to."""

    # kinds whose metadata.generation tracks spec changes
    tracks_generation = True

    def __init__(self, rt: ResourceType):
        self.rt = rt
        self.has_status = rt.subresource("status") is not None

    # --- defaulting and preparation -------------------------------------------------
    def default(self, obj: dict) -> None:
        api_defaults.apply_defaults(self.rt.group, self.rt.version, self.rt.kind, obj)

    def prepare_for_create(self, obj: dict) -> None:
        if self.has_status:
            obj.pop("status", None)
        if self.tracks_generation:
            obj["metadata"]["generation"] = 1

    def prepare_for_update(self, new: dict, old: dict) -> None:
        if self.has_status:
            if "status" in old:
                new["status"] = stored_copy(old["status"])
            else:
                new.pop("status", None)
        if self.tracks_generation:
            generation = old["metadata"].get("generation", 1)
            if self.spec_changed(new, old):
                generation += 1
            new["metadata"]["generation"] = generation

    def spec_changed(self, new: dict, old: dict) -> bool:
        """Anything but metadata and status counts as spec (upstream bumps on those)."""
        return _without(new, "metadata", "status", "kind", "apiVersion") != _without(
            old, "metadata", "status", "kind", "apiVersion"
        )

    # --- validation -------------------------------------------------------------------
    def validate_meta(self, obj: dict) -> list[FieldError]:
        return validate_object_meta(obj["metadata"], self.rt.namespaced, name_validator(self.rt.group, self.rt.plural))

    def validate(self, obj: dict) -> list[FieldError]:
        return self.validate_meta(obj) + api_validation.validate(self.rt.group, self.rt.kind, obj)

    def validate_update(self, new: dict, old: dict) -> list[FieldError]:
        errs = validate_object_meta_update(new["metadata"], old["metadata"])
        errs += self.validate_meta(new)
        errs += api_validation.validate_update(self.rt.group, self.rt.kind, new, old)
        return errs

    def canonicalize(self, obj: dict) -> None:
        pass

    def allocate(self, obj: dict) -> None:
        """Reserve cluster resources (addresses, ports) for a validated new object."""

    def release(self, obj: dict) -> None:
        """Give back what `allocate` reserved (failed create, or delete)."""

    # --- deletion -------------------------------------------------------------------------
    def grace_period(self, obj: dict, requested: int | None) -> int:
        """Seconds of graceful deletion; 0 deletes at once (only pods are graceful)."""
        return 0

    def finalizers_pending(self, obj: dict) -> bool:
        """Whether something must still happen before the object may leave storage."""
        return bool(obj["metadata"].get("finalizers"))

    def prepare_for_delete(self, obj: dict) -> None:
        """A graceful or finalizer-pending delete is about to be recorded (namespaces: Terminating)."""

    def after_delete(self, obj: dict) -> None:
        self.release(obj)


class StatusStrategy(Strategy):
    """Writes through `/status`: only status changes; everything else is kept from old."""

    def prepare_for_create(self, obj: dict) -> None:  # pragma: no cover - status has no create
        raise NotImplementedError

    def prepare_for_update(self, new: dict, old: dict) -> None:
        status = new.get("status")
        meta = new["metadata"]
        new.clear()
        # everything but status from old, without copying it: `old` is the store's private decode of
        # the stored object, only read from here on, so new may share its parts (a deep copy of a
        # pod was a tenth of a status write); metadata gets a dict of its own, as the store sets in it
        new.update(old)
        # status writers may still move labels/annotations? upstream resets them; keep old.
        new["metadata"] = dict(old["metadata"], resourceVersion=meta.get("resourceVersion", ""))
        if status is None:
            new.pop("status", None)
        else:
            new["status"] = status

    def validate(self, obj: dict) -> list[FieldError]:
        return []

    def validate_update(self, new: dict, old: dict) -> list[FieldError]:
        check = getattr(api_validation, "validate_status_update", None)
        return check(self.rt.group, self.rt.kind, new, old) if check else []


class RawStrategy(Strategy):
    """Writes through subresources that set exactly what they build (binding, finalize)."""

    tracks_generation = False

    def prepare_for_update(self, new: dict, old: dict) -> None:
        pass

    def validate_update(self, new: dict, old: dict) -> list[FieldError]:
        return []
