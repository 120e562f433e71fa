"""The `kubelite` command: argument parsing only; each subcommand lives in its own module, imported on use
so that `kubelite up|down|status` stay fast (no aiohttp, no cryptography on their path)."""

from __future__ import annotations

import argparse
import importlib
import sys

from kubelite.cli import flags

# subcommand -> (module under kubelite.cli, help)
COMMANDS = {
    "server": ("server", "run the control plane in the foreground"),
    "up": ("up", "start the control plane in the background and write a kubeconfig"),
    "down": ("down", "stop the control plane started by `kubelite up`"),
    "status": ("status", "tell whether the control plane runs (exit 0) or not (exit 3)"),
    "kubeconfig": ("kubeconfig", "print the admin kubeconfig"),
    "images": ("images", "import and list the node's container images"),
    "nodes": ("nodes", "add, remove or kill simulated nodes of a running cluster"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubelite", description="A Kubernetes-compatible orchestrator.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("server", help=COMMANDS["server"][1], description=COMMANDS["server"][1])
    flags.add_server_flags(p)

    p = sub.add_parser("up", help=COMMANDS["up"][1], description=COMMANDS["up"][1])
    flags.add_server_flags(p)
    p.add_argument("--kubeconfig", metavar="PATH",
                   help="write a standalone kubeconfig to PATH instead of merging into "
                        "$KUBECONFIG's first file or ~/.kube/config")
    p.add_argument("--context", default="kubelite", metavar="NAME",
                   help="name of the cluster, user and context written to the kubeconfig (default: kubelite)")
    p.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                   help="how long to wait for /readyz (default: 120)")

    p = sub.add_parser("down", help=COMMANDS["down"][1], description=COMMANDS["down"][1])
    flags.add_data_dir(p)
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait after SIGTERM before SIGKILL (default: 30)")

    p = sub.add_parser("status", help=COMMANDS["status"][1], description=COMMANDS["status"][1])
    flags.add_data_dir(p)

    p = sub.add_parser("kubeconfig", help=COMMANDS["kubeconfig"][1], description=COMMANDS["kubeconfig"][1])
    flags.add_data_dir(p)
    p.add_argument("--context", default="kubelite", metavar="NAME",
                   help="name of the cluster, user and context (default: kubelite)")
    importlib.import_module("kubelite.cli.images").add_parser(sub)
    importlib.import_module("kubelite.cli.nodes").add_parser(sub, COMMANDS["nodes"][1])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"kubelite.cli.{COMMANDS[args.command][0]}")
    try:
        return module.run(args)
    except KeyboardInterrupt:
        return 130
    except flags.CLIError as e:
        print(f"kubelite {args.command}: {e}", file=sys.stderr)
        return e.exit_code
