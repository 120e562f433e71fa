"""The Job controller (upstream pkg/controller/job)."""

from kubelite.controllers.job.controller import JobController

__all__ = ["JobController"]
