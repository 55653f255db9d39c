"""kube-proxy: Service virtual IPs, NodePorts and load balancer addresses (iptables or userspace mode)."""
