"""`kubelite nodes add|remove|kill|revive|list`: manage the simulated nodes of a running cluster.

The CLI never talks to the simulator directly: it edits the desired state the simulator watches,
the ConfigMap kube-system/kubelite-simulated-nodes (one data key per node, see
kubelite/runtime/simulated.py), through the API server. `kill` keeps the Node but stops its
heartbeats, so the node lifecycle controller marks it NotReady/Unknown; `revive` resumes them;
`remove` deletes the Node and its Lease.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import tempfile

from kubelite.cli import flags

CONFIGMAP_NAMESPACE = "kube-system"
CONFIGMAP_NAME = "kubelite-simulated-nodes"
SETTINGS_KEY = "_settings"


def add_parser(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser("nodes", help=help_text, description=help_text)
    flags.add_data_dir(p)
    p.add_argument("--kubeconfig", metavar="PATH",
                   help="kubeconfig to use (default: the admin kubeconfig of the data dir's running server, "
                        "else $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", metavar="NAME", help="kubeconfig context")
    ops = p.add_subparsers(dest="op", metavar="OPERATION")
    ops.required = True
    a = ops.add_parser("add", help="add N simulated nodes")
    a.add_argument("count", type=int, metavar="N")
    a.add_argument("--name-prefix", default="sim-node-", metavar="PREFIX", help="node names (default: sim-node-)")
    a.add_argument("--cpu", help="cpu capacity (default: the simulator's, 32)")
    a.add_argument("--memory", help="memory capacity (default: 256Gi)")
    a.add_argument("--pods", help="pod capacity (default: 110)")
    a.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="extra node label (repeatable)")
    for op, text in (("remove", "delete simulated nodes"),
                     ("kill", "stop the heartbeats of simulated nodes (they become NotReady)"),
                     ("revive", "resume the heartbeats of killed simulated nodes")):
        o = ops.add_parser(op, help=text)
        o.add_argument("names", nargs="+", metavar="NAME")
    ops.add_parser("list", help="list the simulated nodes and their desired state")


def run(args: argparse.Namespace) -> int:
    with _kubeconfig(args) as path:
        return asyncio.run(_run(args, path))


@contextlib.contextmanager
def _kubeconfig(args: argparse.Namespace):
    if args.kubeconfig:
        yield args.kubeconfig
        return
    from kubelite.cli import kubeconfig, state

    data_dir = flags.data_dir(args)
    inst = state.read_instance(data_dir)
    if inst is None or not state.running(inst):
        if args.data_dir:
            raise flags.CLIError(f"kubelite is not running on {data_dir}")
        yield None  # the default kubeconfig
        return
    fd, path = tempfile.mkstemp(prefix="kubelite-kubeconfig-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(kubeconfig.render(kubeconfig.admin_kubeconfig(data_dir, inst.url)))
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _natural(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


async def _run(args: argparse.Namespace, kubeconfig_path: str | None) -> int:
    from kubelite.api.errors import StatusError
    from kubelite.client import Client

    try:
        client = Client.from_kubeconfig(kubeconfig_path, args.context)
    except Exception as e:  # noqa: BLE001 - a bad kubeconfig is one line for the user
        raise flags.CLIError(str(e)) from None
    try:
        cms = client.configmaps
        try:
            cm = await cms.get(CONFIGMAP_NAME, namespace=CONFIGMAP_NAMESPACE)
        except StatusError as e:
            if e.code != 404:
                raise flags.CLIError(e.message) from None
            cm = None
        data = dict((cm or {}).get("data") or {})
        nodes = {k: v for k, v in data.items() if k != SETTINGS_KEY}
        if args.op == "list":
            print(f"{'NAME':<24} STATE")
            for name in sorted(nodes, key=_natural):
                try:
                    spec = json.loads(nodes[name] or "{}")
                except ValueError:
                    spec = {}
                print(f"{name:<24} {spec.get('state') or 'Running'}")
            return 0
        patch: dict[str, str | None] = {}
        if args.op == "add":
            if args.count < 1:
                raise flags.CLIError("N must be at least 1", 2)
            spec: dict = {}
            for k in ("cpu", "memory", "pods"):
                if getattr(args, k):
                    spec[k] = getattr(args, k)
            labels = {}
            for lbl in args.label:
                k, sep, v = lbl.partition("=")
                if not sep or not k:
                    raise flags.CLIError(f"invalid --label {lbl!r}: want KEY=VALUE", 2)
                labels[k] = v
            if labels:
                spec["labels"] = labels
            i = 0
            while len(patch) < args.count:
                name = f"{args.name_prefix}{i}"
                if name not in nodes:
                    patch[name] = json.dumps(spec, separators=(",", ":"))
                i += 1
        else:
            missing = [n for n in args.names if n not in nodes]
            if missing:
                raise flags.CLIError(f'simulated node "{missing[0]}" not found')
            for name in args.names:
                if args.op == "remove":
                    patch[name] = None
                else:
                    try:
                        spec = json.loads(nodes[name] or "{}")
                    except ValueError:
                        spec = {}
                    spec["state"] = "Killed" if args.op == "kill" else "Running"
                    patch[name] = json.dumps(spec, separators=(",", ":"))
        if cm is None:
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": CONFIGMAP_NAME, "namespace": CONFIGMAP_NAMESPACE},
                    "data": {k: v for k, v in patch.items() if v is not None}}
            await cms.create(body, namespace=CONFIGMAP_NAMESPACE)
        else:
            await cms.patch(CONFIGMAP_NAME, {"data": patch}, "merge", namespace=CONFIGMAP_NAMESPACE)
        verb = {"add": "added", "remove": "removed", "kill": "killed", "revive": "revived"}[args.op]
        for name in sorted(patch, key=_natural):
            print(f"node/{name} {verb}")
        return 0
    except StatusError as e:
        print(f"Error from server ({e.reason}): {e.message}", file=sys.stderr)
        return 1
    finally:
        await client.close()
