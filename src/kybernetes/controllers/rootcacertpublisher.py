"""Root CA publisher (upstream pkg/controller/certificates/rootcacertpublisher): every active namespace
has a ConfigMap `kube-root-ca.crt` whose `ca.crt` is the cluster's CA bundle, which pods mount through
their kube-api-access volume.

The CA is the controller manager's `--root-ca-file` (option `root_ca_file`) or, as upstream
falls back to, the CA of the kubeconfig the controller manager runs with.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import yaml

from ..client.rest import ApiError
from .base import Controller

log = logging.getLogger("kybernetes.rootca")

NAME = "kube-root-ca.crt"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


def kubeconfig_ca(path: str) -> str:
    doc = yaml.safe_load(Path(path).read_text()) or {}
    current = next((c.get("context") or {} for c in doc.get("contexts") or ()
                    if c.get("name") == doc.get("current-context")), {})
    for cluster in doc.get("clusters") or ():
        if cluster.get("name") == current.get("cluster"):
            c = cluster.get("cluster") or {}
            if c.get("certificate-authority-data"):
                return base64.b64decode(c["certificate-authority-data"]).decode()
            if c.get("certificate-authority"):
                return (Path(path).parent / c["certificate-authority"]).read_text()
    return ""


class RootCACertPublisher(Controller):
    name = "root-ca-cert-publisher"

    def __init__(self, ctx):
        super().__init__(ctx)
        options = getattr(ctx, "options", None) or {}
        self.ca = ""
        try:
            if options.get("root_ca_file"):
                self.ca = Path(options["root_ca_file"]).read_text()
            elif options.get("kubeconfig"):
                self.ca = kubeconfig_ca(options["kubeconfig"])
        except (OSError, ValueError, yaml.YAMLError) as e:
            log.warning("no root CA to publish: %s", e)
        self.namespaces = self.watch("", "v1", "namespaces")
        self.configmaps = self.watch("", "v1", "configmaps", self._cm_keys)

    @staticmethod
    def _cm_keys(cm: dict) -> list[str]:
        meta = cm["metadata"]
        return [meta.get("namespace", "")] if meta.get("name") == NAME else []

    async def reconcile(self, namespace: str) -> None:
        if not self.ca:
            return
        ns = self.namespaces.get(namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == "Terminating":
            return
        data = {"ca.crt": self.ca}
        cm = self.configmaps.get(f"{namespace}/{NAME}")
        try:
            if cm is None:
                body = {"apiVersion": "v1", "kind": "ConfigMap", "data": data,
                        "metadata": {"name": NAME, "namespace": namespace,
                                     "annotations": {"kubernetes.io/description": DESCRIPTION}}}
                await self.client.create("", "v1", "configmaps", body, namespace)
            elif cm.get("data") != data:
                annotations = {**(cm["metadata"].get("annotations") or {}), "kubernetes.io/description": DESCRIPTION}
                await self.client.patch("", "v1", "configmaps", NAME,
                                        {"metadata": {"annotations": annotations}, "data": data}, namespace)
        except ApiError as e:
            if e.code in (404, 409) or (e.code == 403 and "being terminated" in str(e)):
                return
            raise
