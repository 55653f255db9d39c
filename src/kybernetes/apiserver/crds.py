"""Custom resources: serving what CustomResourceDefinitions declare, the moment they exist.

Creating a CRD registers one ResourceType per served version (discovery and OpenAPI
are rebuilt); custom objects go through the same generic store with a strategy that
defaults, prunes and validates against the version's structural schema. Deleting a CRD
first deletes its objects (the `customresourcecleanup` finalizer), then the CRD.
"""

from __future__ import annotations

import asyncio
import copy
import logging

from ..api import celrules, crschema
from ..api import crd as crd_api
from ..api.errors import FieldError, invalid
from ..api.meta import rfc3339
from ..api.resources import ResourceType
from .store import DeleteOptions, WriteContext
from .strategy import Strategy

log = logging.getLogger("kybernetes.crds")

CRD_GROUP = "apiextensions.k8s.io"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
CRD_PREFIX = "/registry/apiextensions.k8s.io/customresourcedefinitions/"


def _condition(type_: str, status: str, reason: str, message: str) -> dict:
    return {"type": type_, "status": status, "lastTransitionTime": rfc3339(), "reason": reason, "message": message}


class CRDStrategy(Strategy):
    def __init__(self, rt: ResourceType, owner: CustomResources):
        super().__init__(rt)
        self.owner = owner

    def default(self, obj: dict) -> None:
        crd_api.default_crd(obj)

    def prepare_for_create(self, obj: dict) -> None:
        obj["metadata"]["generation"] = 1
        finalizers = obj["metadata"].setdefault("finalizers", [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)
        others = [e.obj for e in self.owner.crd_entries() if e.obj["metadata"]["name"] != obj["metadata"]["name"]]
        obj["status"] = crd_api.crd_status_after_create(obj, others)

    def prepare_for_update(self, new: dict, old: dict) -> None:
        super().prepare_for_update(new, old)
        status = new.setdefault("status", {})
        stored = list(status.get("storedVersions") or [])
        for v in (new.get("spec") or {}).get("versions") or ():
            if v.get("storage") and v.get("name") not in stored:
                stored.append(v["name"])
        status["storedVersions"] = stored
        if status.get("conditions") and new["metadata"].get("deletionTimestamp"):
            conds = [c for c in status["conditions"] if c.get("type") != "Terminating"]
            conds.append(_condition("Terminating", "True", "InstanceDeletionInProgress",
                                    "CustomResource deletion is in progress"))
            status["conditions"] = conds

    def validate(self, obj: dict) -> list[FieldError]:
        return self.validate_meta(obj) + crd_api.validate_crd(obj)

    def validate_update(self, new: dict, old: dict) -> list[FieldError]:
        from ..api.validation.meta import validate_object_meta_update

        return (validate_object_meta_update(new["metadata"], old["metadata"]) + self.validate_meta(new)
                + crd_api.validate_crd_update(new, old))

    def validate_meta(self, obj: dict) -> list[FieldError]:
        from ..api.validation.meta import validate_object_meta

        return validate_object_meta(obj["metadata"], False, lambda name, prefix: [], kube_finalizers=False)


def _rule_errors(errs: list[FieldError], obj: dict, schema: dict, old: dict | None = None) -> list[FieldError]:
    """The CEL rules' errors; none of them on an object of the wrong types or values (upstream's
    hasBlockingErr), but the note that they were not checked."""
    if any(e.type == "not_supported" or (e.type == "invalid" and "must be of type" in e.detail) for e in errs):
        return [invalid("<nil>", "null", "some validation rules were not checked because the object was invalid; "
                                       "correct the existing errors to complete validation")]
    return celrules.check(obj, schema, old)


class CustomResourceStrategy(Strategy):
    def __init__(self, rt: ResourceType, crd: dict):
        super().__init__(rt)
        self.crd = crd
        self.schema = crd_api.schema_for(crd, rt.version)
        self.rules = bool(self.schema) and celrules.has_rules(self.schema)  # x-kubernetes-validations

    def default(self, obj: dict) -> None:
        if self.schema:
            crschema.apply_defaults(obj, self.schema)

    def validate(self, obj: dict) -> list[FieldError]:
        errs = self.validate_meta(obj)
        if self.schema:
            errs += crschema.validate(obj, self.schema)
        if self.rules:
            errs += _rule_errors(errs, obj, self.schema)
        return errs

    def validate_update(self, new: dict, old: dict) -> list[FieldError]:
        from ..api.validation.meta import validate_object_meta_update

        errs = validate_object_meta_update(new["metadata"], old["metadata"]) + self.validate_meta(new)
        if self.schema:
            errs += crschema.validate(new, self.schema)
        if self.rules:
            errs += _rule_errors(errs, new, self.schema, old)
        return errs

    def validate_meta(self, obj: dict) -> list[FieldError]:
        from ..api.validation.meta import is_dns1123_subdomain, validate_object_meta

        return validate_object_meta(obj["metadata"], self.rt.namespaced, is_dns1123_subdomain, kube_finalizers=False)


class CustomResources:
    def __init__(self, server):
        self.server = server
        self.by_type: dict[tuple[str, str, str], tuple[ResourceType, dict]] = {}
        self._tasks: set[asyncio.Task] = set()

    def crd_entries(self):
        return list(self.server.cache.bucket(CRD_PREFIX).store.values())

    async def load(self) -> None:
        for entry in self.crd_entries():
            self._register(entry.obj)
        self.server.on_resources_changed()

    def _served(self, crd: dict) -> bool:
        conds = {c.get("type"): c.get("status") for c in (crd.get("status") or {}).get("conditions") or ()}
        return conds.get("Established") == "True"

    def _register(self, crd: dict) -> None:
        self._unregister(crd["metadata"]["name"])
        if not self._served(crd):
            return
        for rt in crd_api.resource_types_for(crd):
            self.by_type[(rt.group, rt.version, rt.plural)] = (rt, crd)
            self.server.index.add(rt)
            self.server.forget_strategy(rt)

    def _unregister(self, crd_name: str) -> None:
        for key, (rt, crd) in list(self.by_type.items()):
            if crd["metadata"]["name"] == crd_name:
                del self.by_type[key]
                self.server.index.remove(rt.group, rt.version, rt.plural)
                self.server.forget_strategy(rt)

    def lookup(self, rt: ResourceType) -> dict | None:
        hit = self.by_type.get((rt.group, rt.version, rt.plural))
        return hit[1] if hit else None

    def strategy_for(self, rt: ResourceType) -> Strategy | None:
        if rt.group == CRD_GROUP and rt.plural == "customresourcedefinitions":
            return CRDStrategy(rt, self)
        crd = self.lookup(rt)
        return CustomResourceStrategy(rt, crd) if crd else None

    def storage_version(self, rt: ResourceType) -> str | None:
        crd = self.lookup(rt)
        if not crd:
            return None
        for v in crd["spec"].get("versions") or ():
            if v.get("storage"):
                return v["name"]
        return None

    def scale_paths(self, rt: ResourceType) -> tuple[str, str, str | None] | None:
        crd = self.lookup(rt)
        if not crd:
            return None
        for v in crd["spec"].get("versions") or ():
            if v.get("name") == rt.version:
                scale = (v.get("subresources") or {}).get("scale")
                if scale:
                    return scale["specReplicasPath"], scale["statusReplicasPath"], scale.get("labelSelectorPath")
        return None

    def selectable_fields(self, rt: ResourceType) -> list[str]:
        crd = self.lookup(rt)
        if not crd:
            return []
        for v in crd["spec"].get("versions") or ():
            if v.get("name") == rt.version:
                return [f["jsonPath"].lstrip(".") for f in v.get("selectableFields") or ()]
        return []

    def printer_columns(self, rt: ResourceType) -> list[dict] | None:
        crd = self.lookup(rt)
        return crd_api.printer_columns(crd, rt.version) if crd else None

    def schema(self, rt: ResourceType) -> dict | None:
        crd = self.lookup(rt)
        return crd_api.schema_for(crd, rt.version) if crd else None

    async def crd_changed(self, verb: str, crd: dict) -> None:
        name = crd["metadata"]["name"]
        if verb == "delete":
            self._unregister(name)
        elif crd["metadata"].get("deletionTimestamp"):
            self._spawn(self._cleanup(copy.deepcopy(crd)))
            return
        else:
            self._register(crd)
        self.server.on_resources_changed()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cleanup(self, crd: dict) -> None:
        """Delete every instance, then drop the cleanup finalizer so the CRD goes."""
        store = self.server.store
        ctx = WriteContext(user="system:apiextensions", field_manager="kube-apiserver")
        try:
            types = crd_api.resource_types_for(crd)
            if types:
                rt = types[0]
                entries, _ = await store.list_entries(rt, None)
                for e in entries:
                    meta = e.obj["metadata"]
                    try:
                        await store.delete(rt, meta.get("namespace", ""), meta["name"], DeleteOptions(), ctx)
                    except Exception as err:  # keep going; the finalizer stays if any remain
                        log.warning("deleting %s/%s: %s", meta.get("namespace", ""), meta["name"], err)
            crd_rt = self.server.index.get(CRD_GROUP, "v1", "customresourcedefinitions")

            async def drop_finalizer(current: dict | None) -> dict:
                if current is None:
                    raise LookupError
                current["metadata"]["finalizers"] = [
                    f for f in current["metadata"].get("finalizers") or () if f != CLEANUP_FINALIZER]
                return current

            result, _ = await store.patch(crd_rt, "", crd["metadata"]["name"], drop_finalizer, ctx)
            self._unregister(crd["metadata"]["name"])
            self.server.on_resources_changed()
        except LookupError:
            pass
        except Exception:
            log.exception("cleaning up CRD %s", crd["metadata"]["name"])
