"""The Deployment controller (upstream pkg/controller/deployment), one module per concern."""

from kubelite.controllers.deployment.controller import DeploymentController

__all__ = ["DeploymentController"]
