"""CRI v1 (runtime.v1) over gRPC: the protocol subset the kubelet speaks (`api.proto`) and a client."""
