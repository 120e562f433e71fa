"""`kubelite status`: whether the data dir's server runs; exit 0 if it does, 3 if not (as systemctl)."""

from __future__ import annotations

import argparse
import time

from kubelite.cli import flags, state

NOT_RUNNING = 3


def run(args: argparse.Namespace) -> int:
    data_dir = flags.data_dir(args)
    inst = state.read_instance(data_dir)
    if not state.running(inst):
        stale = f" (stale pid file: pid {inst.pid} is gone)" if inst is not None else ""
        print(f"kubelite is not running on {data_dir}{stale}")
        return NOT_RUNNING
    assert inst is not None
    ready, why = state.ReadyzProbe(data_dir, inst.url).check(timeout=2.0)
    uptime = state.format_duration(time.time() - inst.started_at) if inst.started_at else "unknown"
    print(f"kubelite is running on {data_dir}\n"
          f"  pid:      {inst.pid}\n"
          f"  address:  {inst.url}\n"
          f"  uptime:   {uptime}\n"
          f"  readyz:   {why if not ready else 'ok'}\n"
          f"  log:      {inst.log_file}")
    return 0
