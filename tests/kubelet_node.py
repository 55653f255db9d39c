"""Test helper: one real CRI node (`NodeAgent`) with its kubelet server, as a process.

    python -m tests.kubelet_node KUBECONFIG DATA_DIR NODE_NAME NODE_IP [KUBELET_PORT [CGROUP_ROOT]]

Used until `kyb agent` starts the kubelet server itself.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path


async def main(kubeconfig: str, data_dir: str, name: str, ip: str, port: int, cgroup_root: str = "/kubepods") -> None:
    from kybernetes.cli.simnodes import cluster_ca
    from kybernetes.client.rest import RESTClient
    from kybernetes.kubelet.node_agent import NodeAgent
    from kybernetes.kubelet.server import serve_node_agent

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = RESTClient.from_kubeconfig(kubeconfig, "kyb-test-node")
    agent = NodeAgent(client, name, ip, Path(data_dir), cgroup_root=cgroup_root)
    try:
        await asyncio.gather(agent.run(stop), serve_node_agent(agent, cluster_ca(Path(kubeconfig)), stop, ip, port))
    finally:
        await client.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    a = sys.argv[1:]
    asyncio.run(main(a[0], a[1], a[2], a[3], int(a[4]) if len(a) > 4 else 10250, *a[5:6]))
