"""The DaemonSet controller (upstream pkg/controller/daemon)."""

from kubelite.controllers.daemonset.controller import DaemonSetController

__all__ = ["DaemonSetController"]
