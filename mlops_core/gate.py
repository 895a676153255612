"""The quality gate: a model passes when its RMSE is at most the threshold and, optionally, when it
beats the RMSE of the latest approved version in the model registry.

``evaluation.json`` is SageMaker's model-quality format:
``{"regression_metrics": {"rmse": {"value": 2.01, "standard_deviation": ...}, "mse": ..., ...}}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, is_not_found, resolve
from mlops_core.errors import QualityGateFailed
from mlops_core.logs import get_logger
from mlops_core.s3 import read_json
from mlops_core.sagemaker.registry import evaluation_uri_of, latest_approved_version

log = get_logger("gate")


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict, the numbers it compared and a one-line summary for people."""

    passed: bool
    rmse: float
    threshold: float
    evaluation_uri: str
    baseline_rmse: float | None = None
    baseline_version: str | None = None

    @property
    def summary(self) -> str:
        """e.g. ``RMSE 2.012 <= threshold 2.100: PASS`` (plus the comparison with the latest approved)."""
        text = f"RMSE {self.rmse:.3f} {'<=' if self.rmse <= self.threshold else '>'} threshold {self.threshold:.3f}"
        if self.baseline_rmse is not None:
            relation = "<" if self.rmse < self.baseline_rmse else ">="
            text += f", {relation} latest approved {self.baseline_rmse:.3f}"
        return f"{text}: {'PASS' if self.passed else 'FAIL'}"


def read_rmse(evaluation_uri: str, *, clients: Clients | None = None) -> float:
    """``regression_metrics.rmse.value`` of an evaluation.json; QualityGateFailed when missing or malformed."""
    try:
        report = read_json(evaluation_uri, clients=clients)
        value = float(report["regression_metrics"]["rmse"]["value"])
    except ClientError as exc:
        if not is_not_found(exc):
            raise
        raise QualityGateFailed(f"no evaluation report at {evaluation_uri}: did the evaluate step of this "
                                "release complete? Run `bin/build.py evaluate` first") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise QualityGateFailed(f"evaluation report {evaluation_uri} is malformed ({type(exc).__name__}: {exc}): "
                                'expected {"regression_metrics": {"rmse": {"value": <number>}}}') from exc
    if value != value or value < 0:
        raise QualityGateFailed(f"evaluation report {evaluation_uri} has an invalid RMSE {value}")
    return value


def evaluate_gate(evaluation_uri: str, threshold: float, *, compare_to_latest_approved: bool = False,
                  model_package_group: str | None = None, clients: Clients | None = None) -> GateResult:
    """Judge one evaluation: RMSE <= threshold and, when asked, RMSE < the latest approved version's."""
    if compare_to_latest_approved and not model_package_group:
        raise ValueError("compare_to_latest_approved needs model_package_group")
    clients = resolve(clients)
    rmse = read_rmse(evaluation_uri, clients=clients)
    passed = rmse <= threshold
    baseline_rmse = baseline_version = None
    if compare_to_latest_approved:
        latest = latest_approved_version(model_package_group, clients=clients)
        baseline_uri = evaluation_uri_of(latest) if latest else None
        if baseline_uri and baseline_uri != evaluation_uri:  # the same release registered earlier is no baseline
            baseline_rmse = read_rmse(baseline_uri, clients=clients)
            baseline_version = latest["ModelPackageArn"]
            passed = passed and rmse < baseline_rmse
        elif latest and not baseline_uri:
            log.warning("baseline_without_metrics", model_package=latest["ModelPackageArn"])
    result = GateResult(passed, rmse, threshold, evaluation_uri, baseline_rmse, baseline_version)
    log.info("quality_gate", passed=passed, summary=result.summary)
    return result
