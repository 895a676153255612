"""SageMaker's container paths, rooted at ``/opt/ml`` or at ``$OPT_ML_ROOT`` when set."""

from __future__ import annotations

import os
from pathlib import Path


def root() -> Path:
    return Path(os.environ.get("OPT_ML_ROOT") or "/opt/ml")


def processing_input(*parts: str) -> Path:
    return root().joinpath("processing", "input", *parts)


def processing_output(*parts: str) -> Path:
    return root().joinpath("processing", "output", *parts)


def training_channel(name: str = "training") -> Path:
    return root() / "input" / "data" / name


def hyperparameters_file() -> Path:
    return root() / "input" / "config" / "hyperparameters.json"


def model_dir() -> Path:
    return root() / "model"


def failure_file() -> Path:
    return root() / "output" / "failure"
