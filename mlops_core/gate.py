"""The quality gate on an evaluation.json, the same on every path (pipeline, Step Functions, local demo).

A model passes when its RMSE beats both baselines the evaluate job computed on the same test rows (the
training mean and a least-squares linear model) and, when asked (the scripts' default), when it is not worse
than the latest approved version's ``successor_limit`` (that version's RMSE plus the tolerance its evaluate
job recorded). An absolute threshold is an option, not the default.

``evaluation.json`` is SageMaker's model-quality format plus the gate's fields:
``{"regression_metrics": {"rmse": {"value": 2.01, ...}, ...}, "baselines": {"training_mean": {"rmse": 3.3},
"linear": {"rmse": 2.4}}, "successor_limit": {"rmse": 2.06, "tolerance": 0.05}}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, is_not_found, resolve
from mlops_core.errors import QualityGateFailed
from mlops_core.logs import get_logger
from mlops_core.s3 import read_json
from mlops_core.sagemaker.registry import evaluation_uri_of, latest_approved_version

log = get_logger("gate")
DEFAULT_TOLERANCE = 0.05  # when an approved version's evaluation records no successor limit of its own


@dataclass(frozen=True)
class Evaluation:
    """What the gate reads of one evaluation.json."""

    uri: str
    rmse: float
    linear_rmse: float | None = None
    mean_rmse: float | None = None
    successor_limit: float | None = None

    @property
    def limit_for_successor(self) -> float:
        """The RMSE a later release may reach: its recorded limit, else its RMSE plus the default tolerance."""
        return self.successor_limit or self.rmse + DEFAULT_TOLERANCE


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict, the numbers it compared and a one-line summary for people."""

    passed: bool
    evaluation: Evaluation
    threshold: float | None = None
    approved: Evaluation | None = None
    approved_version: str | None = None

    @property
    def rmse(self) -> float:
        return self.evaluation.rmse

    @property
    def evaluation_uri(self) -> str:
        return self.evaluation.uri

    @property
    def approved_limit(self) -> float | None:
        return self.approved.limit_for_successor if self.approved else None

    @property
    def summary(self) -> str:
        """e.g. ``RMSE 2.245 < linear 2.360, < training mean 3.351, <= 2.290 of the approved 2.240: PASS``."""
        e = self.evaluation
        parts = []
        if e.linear_rmse is not None and e.mean_rmse is not None:
            parts += [f"{'<' if e.rmse < e.linear_rmse else '>='} linear baseline {e.linear_rmse:.3f}",
                      f"{'<' if e.rmse < e.mean_rmse else '>='} training mean {e.mean_rmse:.3f}"]
        if self.threshold is not None:
            parts.append(f"{'<=' if e.rmse <= self.threshold else '>'} threshold {self.threshold:.3f}")
        if self.approved is not None:
            limit = self.approved_limit
            parts.append(f"{'<=' if e.rmse <= limit else '>'} {limit:.3f} allowed by the latest approved "
                         f"{self.approved.rmse:.3f}")
        return f"RMSE {e.rmse:.3f} {', '.join(parts)}: {'PASS' if self.passed else 'FAIL'}"


def _number(document: dict, *path: str) -> float | None:
    value: Any = document
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    number = float(value)
    if math.isnan(number) or number < 0:
        raise ValueError(f"{'.'.join(path)} is {value!r}")
    return number


def evaluation_of(evaluation_uri: str, document: Any) -> Evaluation:
    """The gate's numbers of an evaluation.json document (ValueError, KeyError, TypeError when malformed)."""
    rmse = _number(document, "regression_metrics", "rmse", "value")
    if rmse is None:
        raise KeyError("regression_metrics.rmse.value")
    return Evaluation(evaluation_uri, rmse, _number(document, "baselines", "linear", "rmse"),
                      _number(document, "baselines", "training_mean", "rmse"),
                      _number(document, "successor_limit", "rmse"))


def read_evaluation(evaluation_uri: str, *, clients: Clients | None = None) -> Evaluation:
    """The gate's numbers of an evaluation.json; QualityGateFailed when it is missing or malformed."""
    try:
        return evaluation_of(evaluation_uri, read_json(evaluation_uri, clients=clients))
    except ClientError as exc:
        if not is_not_found(exc):
            raise
        raise QualityGateFailed(f"no evaluation report at {evaluation_uri}: did the evaluate step of this "
                                "release complete? Run `bin/build.py evaluate` first") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise QualityGateFailed(f"evaluation report {evaluation_uri} is malformed ({type(exc).__name__}: {exc}): "
                                'expected {"regression_metrics": {"rmse": {"value": <number>}}, "baselines": ...}'
                                ) from exc


def read_rmse(evaluation_uri: str, *, clients: Clients | None = None) -> float:
    """``regression_metrics.rmse.value`` of an evaluation.json."""
    return read_evaluation(evaluation_uri, clients=clients).rmse


def evaluate_gate(evaluation_uri: str, *, threshold: float | None = None, compare_to_latest_approved: bool = False,
                  model_package_group: str | None = None, clients: Clients | None = None) -> GateResult:
    """Judge one evaluation: beat the baselines (and ``threshold`` when given), and with
    ``compare_to_latest_approved`` stay within the latest approved version's successor limit."""
    if compare_to_latest_approved and not model_package_group:
        raise ValueError("compare_to_latest_approved needs model_package_group")
    clients = resolve(clients)
    evaluation = read_evaluation(evaluation_uri, clients=clients)
    approved = approved_version = None
    if compare_to_latest_approved:
        latest = latest_approved_version(model_package_group, clients=clients)
        approved_uri = evaluation_uri_of(latest) if latest else None
        if approved_uri and approved_uri != evaluation_uri:  # the same release registered earlier is no baseline
            approved, approved_version = read_evaluation(approved_uri, clients=clients), latest["ModelPackageArn"]
        elif latest and not approved_uri:
            log.warning("approved_version_without_metrics", model_package=latest["ModelPackageArn"])
    result = judge(evaluation, threshold=threshold, approved=approved, approved_version=approved_version)
    log.info("quality_gate", passed=result.passed, summary=result.summary)
    return result


def judge(evaluation: Evaluation, *, threshold: float | None = None, approved: Evaluation | None = None,
          approved_version: str | None = None) -> GateResult:
    """The verdict on numbers already read: beat both baselines, stay within ``threshold`` (when given) and
    within ``approved``'s successor limit (when given)."""
    has_baselines = evaluation.linear_rmse is not None and evaluation.mean_rmse is not None
    if not has_baselines and threshold is None:
        raise QualityGateFailed(f"evaluation report {evaluation.uri} has no baselines (an older evaluate wrote "
                                "it): re-run the evaluate step with this image, or give an absolute THRESHOLD")
    rmse = evaluation.rmse
    passed = not has_baselines or (rmse < evaluation.linear_rmse and rmse < evaluation.mean_rmse)
    passed = passed and (threshold is None or rmse <= threshold)
    passed = passed and (approved is None or rmse <= approved.limit_for_successor)
    return GateResult(passed, evaluation, threshold, approved, approved_version)
