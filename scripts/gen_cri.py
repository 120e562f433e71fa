#!/usr/bin/env python3
"""Regenerate kubelite/runtime/cri/api_pb2.py and api_pb2_grpc.py from api.proto.

Needs grpcio-tools at build time only (`pip install grpcio-tools`); the generated files are committed.
protoc writes `import api_pb2` in the gRPC module: rewrite it as a package-relative import.
"""

from __future__ import annotations

import os
import re
import sys

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kubelite", "runtime", "cri")


def main() -> int:
    from grpc_tools import protoc

    here = os.path.normpath(HERE)
    rc = protoc.main(["grpc_tools.protoc", f"-I{here}", f"--python_out={here}", f"--grpc_python_out={here}",
                      os.path.join(here, "api.proto")])
    if rc != 0:
        return rc
    path = os.path.join(here, "api_pb2_grpc.py")
    with open(path) as f:
        text = f.read()
    text = re.sub(r"^import api_pb2 as api__pb2$", "from . import api_pb2 as api__pb2", text, flags=re.M)
    with open(path, "w") as f:
        f.write(text)
    print("generated", os.path.join(here, "api_pb2.py"), path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
