"""`kubelite server`: run the control plane in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from kubelite.cli import flags, state


def run(args: argparse.Namespace) -> int:
    config = flags.config_from_args(args)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("kubelite")
    os.makedirs(config.data_dir, mode=0o700, exist_ok=True)

    me = os.getpid()
    other = state.read_instance(config.data_dir)
    if other is not None and other.pid != me and state.running(other):
        raise flags.CLIError(f"another kubelite (pid {other.pid}) already serves {config.data_dir}")
    inst = state.Instance(config.data_dir, me, config.bind, config.port, time.time())
    state.write_instance(inst)
    log.info("kubelite server (pid %d) starting: data dir %s, https://%s:%d", me, config.data_dir,
             config.bind, config.port)
    try:
        from kubelite.apiserver import server

        server.run(config)
    except OSError as e:  # address in use, permission denied: one line says it all
        log.debug("kubelite server failed", exc_info=True)
        log.error("kubelite server failed: %s", e)
        return 1
    except Exception:
        log.exception("kubelite server failed")
        return 1
    finally:
        state.clear_instance(config.data_dir, me)
    log.info("kubelite server stopped")
    return 0
