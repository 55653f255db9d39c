"""DefaultBinder: POST pods/{name}/binding."""

from __future__ import annotations

from ..framework import OK, CycleState, Plugin, Status


def binding_body(pod: dict, node_name: str) -> dict:
    meta = pod["metadata"]
    body = {"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace", "default")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
    if meta.get("uid"):
        body["metadata"]["uid"] = meta["uid"]
    return body


class DefaultBinder(Plugin):
    async def bind(self, state: CycleState, pod: dict, node_name: str) -> Status:
        meta = pod["metadata"]
        try:
            await self.handle.client.create("", "v1", "pods", binding_body(pod, node_name),
                                            namespace=meta.get("namespace", "default"), name=meta["name"],
                                            subresource="binding")
        except Exception as e:  # ApiError or a broken connection: the cycle fails, the pod is retried
            return Status.error(f"binding pod: {e}")
        return OK
