"""What the kubelet reads from the API for a pod's environment and volumes.

Upstream's kubelet reaches ConfigMaps, Secrets, Services, claims and volumes through
caching managers; here a thin reader over the REST client does (`None` for objects that do
not exist), plus TokenRequest for projected service account tokens.
"""

from __future__ import annotations

from ..client.rest import ApiError, RESTClient


class ObjectSource:
    def __init__(self, client: RESTClient):
        self.client = client

    async def _get(self, group: str, version: str, plural: str, name: str, namespace: str = "") -> dict | None:
        try:
            return await self.client.get(group, version, plural, name, namespace)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    async def configmap(self, namespace: str, name: str) -> dict | None:
        return await self._get("", "v1", "configmaps", name, namespace)

    async def secret(self, namespace: str, name: str) -> dict | None:
        return await self._get("", "v1", "secrets", name, namespace)

    async def claim(self, namespace: str, name: str) -> dict | None:
        return await self._get("", "v1", "persistentvolumeclaims", name, namespace)

    async def volume(self, name: str) -> dict | None:
        return await self._get("", "v1", "persistentvolumes", name)

    async def services(self, namespace: str) -> list[dict]:
        """The Services of `namespace` and of `default` (which holds the `kubernetes` Service)."""
        out = (await self.client.list("", "v1", "services", namespace)).get("items") or []
        if namespace != "default":
            out += (await self.client.list("", "v1", "services", "default")).get("items") or []
        return out

    async def token(self, namespace: str, account: str, spec: dict) -> dict:
        """TokenRequest: `status` with `token` and `expirationTimestamp`."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        out = await self.client.create("", "v1", "serviceaccounts", body, namespace, subresource="token", name=account)
        return out.get("status") or {}
