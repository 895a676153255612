"""Typed configuration from environment variables, overridden by command-line flags.

Everything is validated before any AWS call; each bad or missing setting gives one line naming the
variable and the form expected, all of them together in one ConfigError.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from mlops_core.errors import ConfigError


def _matching(pattern: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def parse(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(value)
        return value
    return parse


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(value)
    return lowered in ("true", "1", "yes")


def _non_negative(value: str) -> float:
    number = float(value)
    if not (number >= 0 and math.isfinite(number)):
        raise ValueError(value)
    return number


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        number = kind(value)
        if not (number > 0 and math.isfinite(number)):
            raise ValueError(value)
        return number
    return parse


@dataclass(frozen=True)
class Setting:
    """One setting: its environment variable, parser, the form it expects and a help text."""

    env: str
    parse: Callable[[str], Any]
    expected: str
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.env.lower().replace("_", "-")

    @property
    def attr(self) -> str:
        return self.env.lower()


SETTINGS: tuple[Setting, ...] = (
    Setting("PROJECT_NAME", _matching(r"[a-z0-9](?:[a-z0-9-]{0,28}[a-z0-9])?"),
            "1-30 lowercase letters, digits or hyphens, e.g. abalone", "project that owns the resources"),
    Setting("MODEL_NAME", _matching(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?"),
            "1-32 letters, digits or hyphens, e.g. abalone", "model name, prefix of job names"),
    Setting("PIPELINE_NAME", _matching(r"[A-Za-z0-9.@_-]{1,100}"),
            "1-100 of A-Z a-z 0-9 . @ _ -", "CodePipeline pipeline name"),
    Setting("BUCKET_NAME", _matching(r"(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
            "an S3 bucket name: 3-63 lowercase letters, digits, dots or hyphens", "S3 bucket for data and artifacts"),
    Setting("ROLE_ARN", _matching(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}"),
            "an IAM role ARN like arn:aws:iam::123456789012:role/NAME", "SageMaker execution role"),
    Setting("IMAGE_URI", _matching(r"[a-z0-9.-]+(?::\d+)?/[a-z0-9._/-]+(?::[\w.-]{1,128}|@sha256:[0-9a-f]{64})?"),
            "an ECR repository URI like 123456789012.dkr.ecr.eu-west-1.amazonaws.com/abalone (or an image with "
            "an immutable tag or a digest)",
            "model container images: the repository, whose :{EXECUTION_ID} and :{EXECUTION_ID}-serve tags the "
            "release uses"),
    Setting("EXECUTION_ID", _matching(r"[A-Za-z0-9-]{1,64}"),
            "1-64 letters, digits or hyphens (a CodePipeline execution id)", "id of this release"),
    Setting("THRESHOLD", _positive(float), "a positive number, e.g. 2.1",
            "an absolute maximum RMSE, on top of the default gate (beat the evaluation's baselines)"),
    Setting("EPOCHS", _positive(int), "a positive whole number, e.g. 100", "training epochs"),
    Setting("BATCH_SIZE", _positive(int), "a positive whole number, e.g. 64", "training batch size"),
    Setting("AWS_REGION", _matching(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}"), "an AWS region like eu-west-1",
            "AWS region"),
    Setting("MODEL_PACKAGE_GROUP", _matching(r"[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62}"),
            "1-63 letters, digits or hyphens, e.g. abalone", "model registry group (default: the model name)"),
    Setting("ENDPOINT_NAME", _matching(r"[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62}"),
            "1-63 letters, digits or hyphens, e.g. abalone", "SageMaker endpoint (default: the model name)"),
    Setting("INSTANCE_TYPE", _matching(r"ml\.[a-z0-9]+\.[a-z0-9]+"), "a SageMaker instance type like ml.m5.large",
            "instance type of the jobs or of the endpoint"),
    Setting("COMPARE_TO_LATEST_APPROVED", _boolean, "true or false",
            "the gate also requires the RMSE to stay within the latest approved version's successor limit "
            "(its RMSE plus GATE_TOLERANCE)"),
    Setting("GATE_TOLERANCE", _non_negative, "a number of rings >= 0, e.g. 0.05",
            "how much worse than this model a later release may be and still pass (written by evaluate)"),
    Setting("RETRY_FAILED", _boolean, "true or false",
            "when this step's job already failed or stopped, start a fresh attempt (-r2, ...) instead of failing"),
)
BY_ATTR = {s.attr: s for s in SETTINGS}


@dataclass(frozen=True)
class Config:
    """Validated settings; a setting not given and without default is None."""

    project_name: str | None = None
    model_name: str | None = None
    pipeline_name: str | None = None
    bucket_name: str | None = None
    role_arn: str | None = None
    image_uri: str | None = None
    execution_id: str | None = None
    threshold: float | None = None
    epochs: int = 100
    batch_size: int = 64  # the container's tuned default (model_container/training.py)
    aws_region: str | None = None
    model_package_group: str | None = None
    endpoint_name: str | None = None
    instance_type: str = "ml.m5.large"
    compare_to_latest_approved: bool = True
    gate_tolerance: float | None = None
    retry_failed: bool = False


DEFAULTS = {f.name: f.default for f in fields(Config)}


def load_config(required: Iterable[str] = (), overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Build a Config from ``env`` (default ``os.environ``) and ``overrides`` (e.g. parsed flags).

    ``required`` names settings (attribute or variable names) that must be present. Raises
    ConfigError listing every missing or malformed setting.
    """
    env = os.environ if env is None else env
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    needed = {name.lower() for name in required}
    unknown = needed - set(BY_ATTR)
    if unknown:
        raise ValueError(f"unknown settings required: {sorted(unknown)}")
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        raw = overrides.get(setting.attr, env.get(setting.env))
        if setting.attr == "aws_region" and raw is None:
            raw = env.get("AWS_DEFAULT_REGION") or (_profile_region(env, problems) if "aws_region" in needed else None)
        if raw is None or str(raw).strip() == "":
            if setting.attr in needed:
                where = " or set region in ~/.aws/config" if setting.attr == "aws_region" else ""
                problems.append(f"{setting.env} is not set: expected {setting.expected} "
                                f"(export {setting.env}=... or pass {setting.flag}{where})")
            continue
        try:
            values[setting.attr] = setting.parse(str(raw).strip())
        except ValueError:
            problems.append(f"{setting.env}={raw!r} is malformed: expected {setting.expected}")
    if problems:
        raise ConfigError(problems)
    return Config(**values)


def _profile_region(env: Mapping[str, str], problems: list[str]) -> str | None:
    """The region of the AWS config file's profile (AWS_PROFILE, else ``default``), read without any AWS call."""
    import botocore.session

    profiles = botocore.session.Session().full_config.get("profiles", {})
    name = env.get("AWS_PROFILE") or "default"
    if env.get("AWS_PROFILE") and name not in profiles:
        problems.append(f"AWS_PROFILE={name!r} names no profile of the AWS config file (~/.aws/config): "
                        "fix AWS_PROFILE or run `aws configure --profile NAME`")
    return profiles.get(name, {}).get("region")


def add_config_arguments(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """Add a flag for each named setting (``--model-name`` for MODEL_NAME, ...), overriding its variable."""
    for name in names:
        setting = BY_ATTR[name.lower()]
        value = DEFAULTS[setting.attr]
        default = f" (default {value})" if value is not None else ""
        parser.add_argument(setting.flag, dest=setting.attr, default=None, metavar=setting.env,
                            help=f"{setting.help}; env {setting.env}{default}")


def config_from_args(args: argparse.Namespace, required: Iterable[str] = (),
                     env: Mapping[str, str] | None = None) -> Config:
    """load_config with the flags added by ``add_config_arguments`` as overrides."""
    overrides = {attr: getattr(args, attr) for attr in BY_ATTR if hasattr(args, attr)}
    return load_config(required, overrides, env)
