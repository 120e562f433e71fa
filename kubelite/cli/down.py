"""`kubelite down`: SIGTERM the server of a data dir, SIGKILL it if it has not exited in time."""

from __future__ import annotations

import argparse
import os
import signal

from kubelite.cli import flags, state


def run(args: argparse.Namespace) -> int:
    data_dir = flags.data_dir(args)
    if not os.path.isdir(data_dir):
        print(f"kubelite is not running (no data dir {data_dir})")
        return 0
    with state.locked(data_dir):
        inst = state.read_instance(data_dir)
        if not state.running(inst):
            if inst is not None:
                state.clear_instance(data_dir)
                print(f"kubelite is not running on {data_dir} (removed a stale pid file of pid {inst.pid})")
            else:
                print(f"kubelite is not running on {data_dir}")
            return 0
        assert inst is not None
        _signal(inst.pid, signal.SIGTERM)
        if state.wait_exit(inst.pid, args.timeout):
            how = "stopped"
        else:
            _signal(inst.pid, signal.SIGKILL)
            if not state.wait_exit(inst.pid, 10):
                raise flags.CLIError(f"pid {inst.pid} survived SIGKILL")
            how = f"killed (no exit {args.timeout:g}s after SIGTERM)"
        state.clear_instance(data_dir)
    print(f"kubelite {how} (pid {inst.pid})")
    return 0


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        raise flags.CLIError(f"not permitted to signal pid {pid} (started by another user?)") from None
