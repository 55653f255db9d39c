"""Regenerate the CRI gRPC stubs from src/kybernetes/kubelet/cri/api.proto (needs grpcio-tools).

    .venv/bin/pip install grpcio-tools && .venv/bin/python tools/gen_cri.py

The generated api_pb2.py / api_pb2_grpc.py are committed, so running kybernetes needs only
grpcio and protobuf.
"""

from __future__ import annotations

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def main() -> int:
    from grpc_tools import protoc

    proto = "kybernetes/kubelet/cri/api.proto"
    return protoc.main(["protoc", f"-I{SRC}", f"--python_out={SRC}", f"--grpc_python_out={SRC}", str(SRC / proto)])


if __name__ == "__main__":
    sys.exit(main())
