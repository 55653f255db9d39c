"""`kyb sim-nodes`: simulated nodes (the `sim` runtime) as a client of a cluster."""

from __future__ import annotations

import asyncio
import base64
import shutil
import tempfile
from pathlib import Path

import yaml


def cluster_ca(kubeconfig: Path) -> bytes | None:
    """The CA of the kubeconfig's current cluster: it also signs the API server's kubelet-client cert."""
    cfg = yaml.safe_load(Path(kubeconfig).read_text()) or {}
    ctx_name = cfg.get("current-context")
    ctx = next((c["context"] for c in cfg.get("contexts") or () if c.get("name") == ctx_name), {})
    cluster = next((c["cluster"] for c in cfg.get("clusters") or () if c.get("name") == ctx.get("cluster")), {})
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"])
    if cluster.get("certificate-authority"):
        return (Path(kubeconfig).parent / cluster["certificate-authority"]).read_bytes()
    return None


def run_sim_nodes_command(args):
    from ..client.rest import RESTClient
    from ..kubelet.agent import SimNodes

    async def run(stop: asyncio.Event) -> int:
        client = RESTClient.from_kubeconfig(args.kubeconfig, "kyb-sim-nodes")
        own_dir = not args.log_dir  # a directory of our own making goes with the process
        log_dir = str(args.log_dir) if args.log_dir else tempfile.mkdtemp(prefix="kyb-sim-logs-")
        try:
            await SimNodes(client, args.count, args.name_prefix, args.first_index, log_dir=log_dir,
                           client_ca=cluster_ca(args.kubeconfig), kubelet_address=args.kubelet_address,
                           kubelet_port=args.kubelet_port).run(stop)
        finally:
            await client.close()
            if own_dir:
                shutil.rmtree(log_dir, ignore_errors=True)
        return 0

    return run
