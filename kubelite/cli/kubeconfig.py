"""Admin kubeconfigs: build one from the data dir's PKI, write it standalone, or merge it as kubectl would.

Merging goes to the file kubectl itself writes new entries to: the first entry of $KUBECONFIG when set,
else ~/.kube/config (created 0600, with ~/.kube 0755, as kubectl does). Entries of other names are kept;
those named like ours are replaced; current-context becomes ours.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import sys
import tempfile

from kubelite.cli import flags, state


def admin_kubeconfig(data_dir: str, server: str, name: str = "kubelite") -> dict:
    tls = os.path.join(data_dir, "tls")

    def b64(file: str) -> str:
        try:
            with open(os.path.join(tls, file), "rb") as f:
                return base64.b64encode(f.read()).decode()
        except FileNotFoundError:
            raise flags.CLIError(f"no cluster certificates in {tls} (has `kubelite up` run on this data dir?)") \
                from None

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")}}],
        "users": [{"name": name, "user": {"client-certificate-data": b64("admin.crt"),
                                          "client-key-data": b64("admin.key")}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }


def render(config: dict) -> str:
    import yaml

    return yaml.dump(config, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), default_flow_style=False,
                     sort_keys=False)


def default_path() -> str:
    """Where kubectl writes new entries: $KUBECONFIG's first file, else ~/.kube/config."""
    for entry in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if entry:
            return os.path.expanduser(entry)
    return os.path.join(os.path.expanduser("~"), ".kube", "config")


def write_standalone(path: str, config: dict) -> None:
    _write_private(path, render(config))


def merge(path: str, config: dict) -> None:
    """Put `config`'s cluster, user and context into the kubeconfig at `path` and make its context current."""
    import yaml

    path = os.path.realpath(path)
    existing: dict = {}
    try:
        with open(path) as f:
            existing = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except FileNotFoundError:
        pass
    if not isinstance(existing, dict):
        raise flags.CLIError(f"{path} is not a kubeconfig (not a mapping); use --kubeconfig PATH")
    merged = dict(existing)
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    merged.setdefault("preferences", {})
    for section in ("clusters", "users", "contexts"):
        ours = config[section][0]
        entries = [e for e in (merged.get(section) or []) if not (isinstance(e, dict) and e.get("name") == ours["name"])]
        entries.append(ours)
        merged[section] = entries
    merged["current-context"] = config["current-context"]
    _write_private(path, render(merged))


def _write_private(path: str, text: str) -> None:
    """Replace `path` atomically; a new file is 0600, an existing one keeps its mode."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, mode=0o755, exist_ok=True)
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".kubeconfig-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def run(args: argparse.Namespace) -> int:
    """`kubelite kubeconfig`: print the admin kubeconfig of the data dir."""
    data_dir = flags.data_dir(args)
    inst = state.read_instance(data_dir)
    if inst is None:
        from kubelite.apiserver.config import ServerConfig

        defaults = ServerConfig(data_dir=data_dir)
        inst = state.Instance(data_dir, 0, defaults.bind, defaults.port, 0.0)
    sys.stdout.write(render(admin_kubeconfig(data_dir, inst.url, args.context)))
    return 0
