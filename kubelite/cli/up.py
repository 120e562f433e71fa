"""`kubelite up`: start `kubelite server` detached (own session, log in DIR/kubelite.log), wait for /readyz,
write the admin kubeconfig. Idempotent: on a data dir that already runs it only refreshes the kubeconfig."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from kubelite.cli import flags, kubeconfig, state


def run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    config = flags.config_from_args(args)
    if not config.kubelet and args.simulated_nodes is None:
        _choose_node(config)
    os.makedirs(config.data_dir, mode=0o700, exist_ok=True)
    with state.locked(config.data_dir):
        inst = state.read_instance(config.data_dir)
        if state.running(inst):
            assert inst is not None
            print(f"kubelite is already running on {config.data_dir} (pid {inst.pid}, {inst.url})")
            if inst.port != config.port or inst.bind != config.bind:
                print("note: it keeps its address; run `kubelite down` first to change flags", file=sys.stderr)
            _wait_ready(inst, None, args.timeout)
        else:
            if inst is not None:
                state.clear_instance(config.data_dir)  # stale: the process is gone
            inst, proc = _spawn(config, args.verbose)
            _wait_ready(inst, proc, args.timeout)
            print(f"kubelite is running (pid {inst.pid}) at {inst.url}, ready in {time.monotonic() - t0:.2f}s")
        _write_kubeconfig(inst, args)
    return 0


def _choose_node(config) -> None:
    """No node flag given: a real node when this host can run one, else one simulated node, so that
    `kubectl get nodes` always answers with a node."""
    from kubelite.runtime.requirements import missing_requirements

    missing = missing_requirements(config.cni_bin_dir, need_containerd=not config.container_runtime_endpoint)
    if not missing:
        config.kubelet = True
        return
    config.simulated_nodes = 1
    print("no real node on this host (" + "; ".join(missing) + "): running one simulated node instead, "
          "whose pods run no containers", file=sys.stderr)


def _spawn(config, verbose: bool) -> tuple[state.Instance, subprocess.Popen]:
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    log_path = os.path.join(config.data_dir, state.LOG_FILE)
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        log.write(f"{state.LOG_MARK}{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubelite", *flags.server_argv(config, verbose)],
            stdin=devnull, stdout=log, stderr=subprocess.STDOUT, cwd="/", env=env,
            start_new_session=True, close_fds=True,
        )
    inst = state.Instance(config.data_dir, proc.pid, config.bind, config.port, time.time())
    state.write_instance(inst)
    return inst, proc


def _wait_ready(inst: state.Instance, proc: subprocess.Popen | None, timeout: float) -> None:
    """Poll /readyz until ok; if the server exits first or `timeout` passes, show its log and fail."""
    probe = state.ReadyzProbe(inst.data_dir, inst.url)
    deadline = time.monotonic() + timeout
    delay = 0.01
    why = ""
    while True:
        exited = proc.poll() is not None if proc is not None else not state.process_alive(inst.pid)
        if exited:
            state.clear_instance(inst.data_dir, inst.pid)
            code = f" with code {proc.returncode}" if proc is not None else ""
            _fail(inst, f"kubelite server exited{code} during start-up")
        ready, why = probe.check(timeout=2.0)
        if ready:
            return
        if time.monotonic() >= deadline:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                state.clear_instance(inst.data_dir, inst.pid)
                _fail(inst, f"kubelite server not ready after {timeout:g}s ({why}); stopped it")
            _fail(inst, f"kubelite (pid {inst.pid}) not ready after {timeout:g}s ({why})")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


def _fail(inst: state.Instance, message: str) -> None:
    tail = state.log_tail(inst.log_file)
    if tail:
        print(f"---- last lines of {inst.log_file}:\n{tail}\n----", file=sys.stderr)
    raise flags.CLIError(message)


def _write_kubeconfig(inst: state.Instance, args: argparse.Namespace) -> None:
    config = kubeconfig.admin_kubeconfig(inst.data_dir, inst.url, args.context)
    if args.kubeconfig:
        path = os.path.abspath(os.path.expanduser(args.kubeconfig))
        kubeconfig.write_standalone(path, config)
        print(f"wrote kubeconfig {path}\n\nnext: kubectl --kubeconfig {path} get nodes")
    else:
        path = kubeconfig.default_path()
        kubeconfig.merge(path, config)
        print(f'merged context "{args.context}" into {path} and made it current\n\nnext: kubectl get nodes')
