"""mlops_core: the ML release cycle on AWS in plain boto3.

Submodules are imported on first use, so ``import mlops_core`` stays as light as boto3 itself.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Clients": "mlops_core.aws",
    "Config": "mlops_core.config",
    "load_config": "mlops_core.config",
    "ConfigError": "mlops_core.errors",
    "MlopsError": "mlops_core.errors",
    "ResourceFailed": "mlops_core.errors",
    "JobFailed": "mlops_core.errors",
    "WaitTimeout": "mlops_core.errors",
    "DeploymentRolledBack": "mlops_core.errors",
    "WaitPolicy": "mlops_core.polling",
    "wait_for": "mlops_core.polling",
    "resource_name": "mlops_core.naming",
    "job_name": "mlops_core.naming",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlops_core' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
