"""Cluster DNS: `svc.ns.svc.cluster.local` and friends from Services and EndpointSlices.

Behaves as CoreDNS's kubernetes plugin does for the names it serves (A and SRV records,
headless Services, StatefulSet hostnames, ExternalName CNAMEs, `pods insecure` pod
records, NXDOMAIN and NODATA) and forwards everything else to upstream resolvers.
"""
