"""The node agent: registers Nodes, heartbeats their Leases, runs the pods bound to them."""
