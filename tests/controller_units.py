"""Harness for controller unit tests in the style of DESIGN.md habit 3.

A real API server on a temporary SQLite file runs with no controllers, scheduler or DNS.
Each test builds one controller on a client that records its writes, creates the objects
it needs through the API (so deletes, patches and status writes hit real objects), seeds
the controller's informer caches with what the server returned (no watch: the informers
are never started), calls `reconcile(key)` directly and checks the writes it made.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

import pytest

from kybernetes.client.factory import InformerFactory
from kybernetes.client.rest import ApiError, RESTClient
from kybernetes.controllers.base import ControllerContext, Requeue

from .cluster import Cluster, free_port

_namespaces = itertools.count()


def server_fixture():
    """A module's API server with nothing else running: `server = server_fixture()` in the test module."""

    @pytest.fixture(scope="module")
    def server(tmp_path_factory):
        c = Cluster(tmp_path_factory.mktemp("kyb"), free_port(),
                    extra_args=["--disable-controller-manager", "--disable-scheduler", "--disable-dns"])
        c.start()
        yield c
        c.stop()

    return server


@dataclass
class Action:
    verb: str  # create | update | patch | delete
    plural: str
    namespace: str
    name: str
    subresource: str
    body: dict | None
    result: dict | None = None


class RecordingClient(RESTClient):
    """A real client that also keeps the writes made through it, in order."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.actions: list[Action] = []
        self.recording = True

    def _record(self, action: Action) -> Action:
        if self.recording:
            self.actions.append(action)
        return action

    async def create(self, group, version, plural, body, namespace="", subresource="", name="", **params):
        act = self._record(Action("create", plural, namespace, name or body["metadata"].get("name", ""),
                                  subresource, body))
        act.result = await super().create(group, version, plural, body, namespace, subresource, name, **params)
        if not act.name:
            act.name = act.result["metadata"].get("name", "")
        return act.result

    async def update(self, group, version, plural, body, namespace="", subresource="", **params):
        act = self._record(Action("update", plural, namespace, body["metadata"]["name"], subresource, body))
        act.result = await super().update(group, version, plural, body, namespace, subresource, **params)
        return act.result

    async def patch(self, group, version, plural, name, body, namespace="", subresource="", **kw):
        act = self._record(Action("patch", plural, namespace, name, subresource, body))
        act.result = await super().patch(group, version, plural, name, body, namespace, subresource, **kw)
        return act.result

    async def delete(self, group, version, plural, name, namespace="", body=None, **params):
        act = self._record(Action("delete", plural, namespace, name, "", body))
        act.result = await super().delete(group, version, plural, name, namespace, body, **params)
        return act.result


@dataclass
class Harness:
    cluster: Cluster
    client: RecordingClient = None
    factory: InformerFactory = None
    ns: str = ""
    _controllers: list = field(default_factory=list)

    async def __aenter__(self) -> Harness:
        self.client = RecordingClient.from_kubeconfig(self.cluster.kubeconfig)
        self.factory = InformerFactory(self.client)
        self.ns = f"t{next(_namespaces)}"
        await self.setup("", "v1", "namespaces", {"metadata": {"name": self.ns}}, namespaced=False)
        return self

    async def __aexit__(self, *exc) -> None:
        for ctrl in self._controllers:
            recorder = getattr(ctrl, "recorder", None)
            if recorder is not None:
                await recorder.flush()
        await self.client.close()

    @property
    def ctx(self) -> ControllerContext:
        return ControllerContext(self.client, self.factory)

    def controller(self, cls, *args, **kw):
        ctrl = cls(self.ctx, *args, **kw)
        self._controllers.append(ctrl)
        return ctrl

    # --- objects: created through the API, not recorded ---------------------------------------------
    async def setup(self, group: str, version: str, plural: str, obj: dict, namespaced: bool = True,
                    status: dict | None = None) -> dict:
        """Create `obj` (and write `status` through /status) without recording; return the server's copy."""
        self.client.recording = False
        try:
            ns = self.ns if namespaced else ""
            if namespaced:
                obj = {**obj, "metadata": {**obj["metadata"], "namespace": ns}}
            created = await self.client.create(group, version, plural, obj, ns)
            if status is not None:
                created = await self.client.update(group, version, plural, {**created, "status": status}, ns,
                                                   subresource="status")
        finally:
            self.client.recording = True
        created.setdefault("apiVersion", f"{group}/{version}" if group else version)
        return created

    async def set_status(self, group: str, version: str, plural: str, obj: dict, status: dict) -> dict:
        self.client.recording = False
        try:
            out = await self.client.update(group, version, plural, {**obj, "status": status},
                                           obj["metadata"].get("namespace", ""), subresource="status")
        finally:
            self.client.recording = True
        return out

    async def get(self, group: str, version: str, plural: str, name: str, namespaced: bool = True) -> dict:
        return await self.client.get(group, version, plural, name, self.ns if namespaced else "")

    @staticmethod
    def seed(informer, *objs: dict) -> None:
        """Put objects in an informer's cache as a watch would (indexes and handlers included)."""
        for obj in objs:
            informer._put(obj)

    @staticmethod
    def unseed(informer, *objs: dict) -> None:
        for obj in objs:
            informer._remove(obj)

    async def observe(self, informer, plural: str) -> None:
        """Let `informer` see the writes of the last reconcile to `plural`, as its watch would. For a
        deleted or deleting object the server is asked: one it still holds (finalizers, graceful
        deletion) stays as it is now, one it has dropped leaves the cache."""
        for a in self.client.actions:
            if a.plural != plural or a.result is None:
                continue
            if a.verb == "delete" or (a.result.get("metadata") or {}).get("deletionTimestamp"):
                key = f"{a.namespace}/{a.name}" if a.namespace else a.name
                obj = informer.get(key)
                group, version = _group_version(obj or a.result)
                self.client.recording = False
                try:
                    live = await self.client.get(group, version, plural, a.name, a.namespace)
                except ApiError as e:
                    if e.code != 404:
                        raise
                    live = None
                finally:
                    self.client.recording = True
                if live is not None:
                    informer._put(live)
                elif obj is not None:
                    informer._remove(obj)
            else:
                informer._put(a.result)

    # --- driving and looking -------------------------------------------------------------------------
    async def reconcile(self, ctrl, name: str, raw: bool = False) -> float | None:
        """One `reconcile` of `ns/name` (of `name` itself when `raw`: cluster-scoped names, uids); the
        requeue delay it asked for, if any. Clears the record first."""
        self.client.actions.clear()
        try:
            await ctrl.reconcile(name if raw or "/" in name else f"{self.ns}/{name}")
        except Requeue as r:
            return r.after
        finally:
            recorder = getattr(ctrl, "recorder", None)
            if recorder is not None:
                await recorder.flush()
        return None

    def writes(self, plural: str | None = None, verb: str | None = None, subresource: str | None = None) -> list[Action]:
        """The recorded writes (events excluded unless asked for), filtered."""
        return [a for a in self.client.actions
                if (a.plural == plural if plural else a.plural != "events")
                and (verb is None or a.verb == verb) and (subresource is None or a.subresource == subresource)]

    def events(self) -> list[tuple[str, str]]:
        return [(a.body.get("reason"), a.body.get("message")) for a in self.client.actions
                if a.plural == "events" and a.verb == "create"]


def _group_version(obj: dict) -> tuple[str, str]:
    api_version = obj.get("apiVersion") or "v1"
    return tuple(api_version.split("/", 1)) if "/" in api_version else ("", api_version)


def run(coro) -> None:
    asyncio.run(coro)


def ready_status(ready: bool = True, phase: str = "Running",
                 since: str = "2024-01-01T00:00:00Z") -> dict:
    return {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                             "lastTransitionTime": since}]}


CONTAINER = {"name": "c", "image": "busybox"}
