"""`kubelite images import|ls`: put image tarballs on the node (no registry needed) and list them.

import loads docker-archive or OCI tarballs into containerd's `k8s.io` namespace, where the CRI
plugin, and so the kubelet, finds them; ls lists what the CRI image service reports, as
`crictl images` does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from kubelite.cli import flags


def add_parser(sub) -> None:
    p = sub.add_parser("images", help="import and list the node's container images",
                       description="import and list the node's container images")
    isub = p.add_subparsers(dest="images_command", metavar="SUBCOMMAND")
    isub.required = True
    for name, help_ in (("import", "load image tarballs (docker save / OCI) into the node's containerd"),
                        ("ls", "list the images on the node")):
        q = isub.add_parser(name, help=help_, description=help_)
        flags.add_data_dir(q)
        q.add_argument("--container-runtime-endpoint", metavar="ENDPOINT",
                       help="the containerd socket (default: the private one under DATA_DIR/containerd)")
        if name == "import":
            q.add_argument("files", nargs="+", metavar="FILE.tar")


def _endpoint(args: argparse.Namespace) -> str:
    if args.container_runtime_endpoint:
        return args.container_runtime_endpoint
    from kubelite.runtime.cri.containerd import ContainerdPaths

    sock = ContainerdPaths(os.path.join(flags.data_dir(args), "containerd")).socket
    if not os.path.exists(sock):
        raise flags.CLIError(f"no containerd socket at {sock}: is `kubelite server --kubelet` running?")
    return "unix://" + sock


def run(args: argparse.Namespace) -> int:
    from kubelite.runtime import images

    endpoint = _endpoint(args)
    if args.images_command == "import":
        for f in args.files:
            if not os.path.isfile(f):
                raise flags.CLIError(f"{f}: no such file", 2)
            try:
                out = images.import_image(images.socket_path(endpoint), f)
            except images.ImageError as e:
                raise flags.CLIError(str(e)) from None
            sys.stdout.write(out)
        return 0
    return asyncio.run(_ls(endpoint))


async def _ls(endpoint: str) -> int:
    from kubelite.runtime.cri import CRIError, RuntimeClient

    rt = RuntimeClient(endpoint, timeout=10)
    try:
        imgs = await rt.list_images()
    except CRIError as e:
        raise flags.CLIError(str(e)) from None
    finally:
        await rt.close()
    rows = [("IMAGE", "TAG", "IMAGE ID", "SIZE")]
    for i in imgs:
        tags = list(i.repo_tags) or ["<none>:<none>"]
        for t in tags:
            repo, _, tag = t.rpartition(":")
            rows.append((repo, tag, i.id.removeprefix("sha256:")[:13], _size(i.size)))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for r in rows:
        print("   ".join(v.ljust(widths[c]) for c, v in enumerate(r)).rstrip())
    return 0


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000
    return str(n)
