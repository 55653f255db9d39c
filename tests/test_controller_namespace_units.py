"""Namespace controller, habit 3: the namespace cache seeded, `reconcile(name)` called directly,
writes checked against a real API server.

Upstream reference: pkg/controller/namespace/deletion/namespaced_resources_deleter_test.go
(TestFinalizeNamespaceFunc, testSyncNamespaceThatIsTerminating).
"""

from __future__ import annotations

from kybernetes.controllers.namespace import NamespaceController

from .controller_units import CONTAINER, Harness, run, server_fixture

server = server_fixture()


async def _terminate(h: Harness, ctrl: NamespaceController) -> dict:
    """A user deletes the test's namespace; the cache then shows it terminating."""
    h.client.recording = False
    try:
        await h.client.delete("", "v1", "namespaces", h.ns)
        ns = await h.client.get("", "v1", "namespaces", h.ns)
    finally:
        h.client.recording = True
    h.seed(ctrl.namespaces, ns)
    return ns


async def _names(h: Harness, group: str, version: str, plural: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in (await h.client.list(group, version, plural, h.ns))["items"])


def test_an_active_namespace_is_left_alone(server):
    async def go():
        async with Harness(server) as h:
            ctrl = h.controller(NamespaceController)
            await h.setup("", "v1", "configmaps", {"metadata": {"name": "keep"}})
            h.seed(ctrl.namespaces, await h.client.get("", "v1", "namespaces", h.ns))
            assert await h.reconcile(ctrl, h.ns, raw=True) is None
            assert h.writes() == []
            assert await _names(h, "", "v1", "configmaps") == ["keep"]
    run(go())


def test_a_terminating_namespace_is_emptied_then_finalized(server):
    async def go():
        async with Harness(server) as h:
            ctrl = h.controller(NamespaceController)
            await h.setup("", "v1", "configmaps", {"metadata": {"name": "cm"}})
            await h.setup("", "v1", "pods", {"metadata": {"name": "pod"}, "spec": {"containers": [CONTAINER]}})
            await h.setup("apps", "v1", "deployments", {"metadata": {"name": "web"}, "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [CONTAINER]}}}})
            ns = await _terminate(h, ctrl)
            assert ns["spec"]["finalizers"] == ["kubernetes"] and ns["status"]["phase"] == "Terminating"

            after = await h.reconcile(ctrl, h.ns, raw=True)
            assert after is not None  # something was left: look again later
            deleted = {(a.plural, a.name): a.body for a in h.writes(verb="delete")}
            assert deleted == {("configmaps", "cm"): {"propagationPolicy": "Background"},
                               ("pods", "pod"): {"propagationPolicy": "Background"},
                               ("deployments", "web"): {"propagationPolicy": "Background"}}
            assert h.writes(subresource="finalize") == []

            assert await h.reconcile(ctrl, h.ns, raw=True) is None
            [finalize] = h.writes(subresource="finalize")
            assert finalize.body["spec"]["finalizers"] == []
            try:
                await h.client.get("", "v1", "namespaces", h.ns)
            except Exception as e:  # noqa: BLE001
                assert getattr(e, "code", None) == 404
            else:
                raise AssertionError("the finalized namespace is still there")
    run(go())


def test_an_object_with_a_finalizer_holds_the_namespace(server):
    async def go():
        async with Harness(server) as h:
            ctrl = h.controller(NamespaceController)
            await h.setup("", "v1", "configmaps", {"metadata": {"name": "held", "finalizers": ["example.com/x"]}})
            await _terminate(h, ctrl)
            assert await h.reconcile(ctrl, h.ns, raw=True) is not None
            assert [a.name for a in h.writes(verb="delete")] == ["held"]
            # still there (deleting): not deleted again, and the namespace is not finalized
            assert await h.reconcile(ctrl, h.ns, raw=True) is not None
            assert h.writes() == []
            h.client.recording = False
            await h.client.patch("", "v1", "configmaps", "held", {"metadata": {"finalizers": None}}, h.ns)
            h.client.recording = True
            assert await h.reconcile(ctrl, h.ns, raw=True) is None
            assert len(h.writes(subresource="finalize")) == 1
    run(go())
