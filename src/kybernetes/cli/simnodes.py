"""`kyb sim-nodes`: simulated nodes (the `sim` runtime) as a client of a cluster."""

from __future__ import annotations

import asyncio


def run_sim_nodes_command(args):
    from ..client.rest import RESTClient
    from ..kubelet.agent import SimNodes

    async def run(stop: asyncio.Event) -> int:
        client = RESTClient.from_kubeconfig(args.kubeconfig, "kyb-sim-nodes")
        try:
            await SimNodes(client, args.count, args.name_prefix, args.first_index).run(stop)
        finally:
            await client.close()
        return 0

    return run
