"""ServiceAccounts: every active namespace has a `default` ServiceAccount (upstream serviceaccounts_controller.go)."""

from __future__ import annotations

from ..client.rest import ApiError
from .base import Controller

DEFAULT = "default"


class ServiceAccountsController(Controller):
    name = "serviceaccount"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.namespaces = self.watch("", "v1", "namespaces")
        self.accounts = self.watch("", "v1", "serviceaccounts", self._sa_keys)

    @staticmethod
    def _sa_keys(sa: dict) -> list[str]:
        meta = sa["metadata"]
        return [meta.get("namespace", "")] if meta.get("name") == DEFAULT else []

    async def reconcile(self, namespace: str) -> None:
        ns = self.namespaces.get(namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == "Terminating":
            return
        if self.accounts.get(f"{namespace}/{DEFAULT}") is not None:
            return
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT, "namespace": namespace}}
        try:
            await self.client.create("", "v1", "serviceaccounts", body, namespace)
        except ApiError as e:
            if e.code == 409:  # exists (cache behind) or namespace terminating
                return
            if e.code == 403 and "being terminated" in str(e):
                return
            raise
