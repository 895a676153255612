"""A local stand-in for AWS's ``sagemaker-model-monitor-analyzer`` image (standard library only).

The embedded runtime runs ``python -m mlops_core.local.analyzer`` for a processing job that names the
analyzer image. It reads the container contract AWS documents ("Container Contract Inputs" in the SageMaker
Developer Guide; the environment the SageMaker Python SDK sets) and writes AWS's documented formats, so the
readers work the same on AWS and locally.

Environment (paths are local files and folders):

- ``dataset_format``: JSON; ``{"csv": {"header": true, "output_columns_position": "START"}}`` (a baseline
  over CSV), ``{"sagemakerCaptureJson": {"captureIndexNames": [...]}}`` (an endpoint's data capture), or
  ``{"json": {"lines": true}}`` / ``{"sagemakerMergeJson": {...}}`` (model quality's merged records);
- ``dataset_source``: a file or a folder (read recursively; capture files ``{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl``);
- ``output_path``: the folder the results are written to;
- ``baseline_constraints``, ``baseline_statistics``: present in monitoring executions (check against them),
  absent when baselining (then constraints are suggested);
- ``publish_cloudwatch_metrics`` (Enabled|Disabled), ``sagemaker_endpoint_name``,
  ``sagemaker_monitoring_schedule_name``, ``start_time``, ``end_time``;
- model quality: ``analysis_type=MODEL_QUALITY``, ``problem_type=Regression``, ``inference_attribute``,
  ``ground_truth_attribute`` (the SDK's names); ``ground_truth_source`` (a folder of SageMaker ground-truth
  JSON lines, merged here with the capture by inference id: on AWS a separate merge step does that);
- ``failure_path`` (else ``$OPT_ML_ROOT/output/failure``, else ``/opt/ml/output/failure`` when that folder
  exists): where the reason of a failure is written, as SageMaker containers do.

Output (``output_path``): ``statistics.json``; ``constraints.json`` (baselining) or
``constraint_violations.json`` (monitoring); and, when ``publish_cloudwatch_metrics=Enabled``, our local
addition ``cloudwatch_metrics.json`` ``{"Namespace": ..., "MetricData": [...]}``: the metrics AWS's
analyzer would have put to CloudWatch, in ``PutMetricData``'s shape, for the runtime to put.

Drift distance (Deequ, ``com.amazon.deequ.analyzers.Distance``): the L-infinity distance between the
empirical CDFs, ``linf = max |F1(x) - F2(x)|`` over the values of both samples (``F(x)`` = weight of items
``<= x`` / total weight, as ``QuantileNonSample.getRank``); with ``comparison_method=Robust`` Deequ's
two-sample Kolmogorov-Smirnov correction ``max(0, linf - 1.8 * sqrt((n + m) / (n * m)))`` (1.8 is its
default c(alpha)). Categorical features: L-infinity of the relative frequencies, same correction.
The distribution sketch here is exact (every value at level 0 of the ``kll`` shape) up to
``SKETCH_LEVEL_ITEMS`` values, compacted KLL-style beyond; items of ``data[h]`` weigh ``2**h``.
"""

from __future__ import annotations

import base64
import bisect
import csv
import datetime as dt
import io
import json
import math
import os
import random
import re
import statistics as stats
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

VERSION = 0.0
KLL_PARAMETERS = {"c": 0.64, "k": 2048.0}  # Deequ's KLL defaults (shrinking factor, sketch size)
BUCKETS = 10  # AWS: "we materialize the distribution in 10 buckets"
SKETCH_LEVEL_ITEMS = 20_000  # exact up to this many values per feature
DEFAULT_C_ALPHA = 1.8  # Deequ's Distance.defaultCAlpha
DOMAIN_MAX_VALUES = 20  # a String feature with at most this many distinct values gets a domain constraint
STD_MIN_SAMPLES = 200  # AWS: metric standard deviations only from 200 samples
# AWS's analyzer publishes here (mlops_core.sagemaker.monitoring's *_METRICS_NAMESPACE; this stand-in of a separate
# image imports nothing beyond the standard library)
DATA_NAMESPACE = "/aws/sagemaker/Endpoints/data-metric"
MODEL_NAMESPACE = "/aws/sagemaker/Endpoints/model-metrics"
STATISTICS, CONSTRAINTS, VIOLATIONS = "statistics.json", "constraints.json", "constraint_violations.json"
METRICS_FILE = "cloudwatch_metrics.json"
INTEGRAL, FRACTIONAL, STRING, UNKNOWN = "Integral", "Fractional", "String", "Unknown"
DEFAULT_MONITORING_CONFIG: dict[str, Any] = {
    "evaluate_constraints": "Enabled", "emit_metrics": "Enabled", "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {"perform_comparison": "Enabled", "comparison_threshold": 0.1,
                                 "comparison_method": "Robust", "categorical_comparison_threshold": 0.1,
                                 "categorical_drift_method": "LInfinity"}}
REGRESSION_OPERATORS = {"mae": "GreaterThanThreshold", "mse": "GreaterThanThreshold",
                        "rmse": "GreaterThanThreshold", "r2": "LessThanThreshold"}
OPERATORS = {"GreaterThanThreshold": lambda v, t: v > t, "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
             "LessThanThreshold": lambda v, t: v < t, "LessThanOrEqualToThreshold": lambda v, t: v <= t}
_INTEGRAL = re.compile(r"^[+-]?\d+$")
_FRACTIONAL = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")

Sample = list[tuple[float, float]]  # (value, weight)


class AnalyzerError(Exception):
    """A problem with the job's inputs: its message names the file, record or feature."""


# values and types ---------------------------------------------------------------------------------
def value_type(text: str | None) -> str | None:
    """Deequ's data type of one value: Integral, Fractional or String; None for a missing (empty) value."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    if _INTEGRAL.match(text):
        return INTEGRAL
    return FRACTIONAL if _FRACTIONAL.match(text) else STRING


def _matches(kind: str | None, expected: str) -> bool:
    if expected == INTEGRAL:
        return kind == INTEGRAL
    if expected == FRACTIONAL:
        return kind in (INTEGRAL, FRACTIONAL)
    return True


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() and abs(value) < 2 ** 53 else value


# statistics ---------------------------------------------------------------------------------------
def kll_sketch(values: Sequence[float]) -> dict:
    """The ``kll.sketch`` of ``values``: every value at level 0 (weight 1) up to ``SKETCH_LEVEL_ITEMS``;
    beyond, KLL's compaction (every other item of a sorted level moves up one level, weight doubled)."""
    levels = [sorted(values)]
    while len(levels[-1]) > SKETCH_LEVEL_ITEMS:
        top = levels[-1]
        kept = top[-1:] if len(top) % 2 else []
        paired = top[:-1] if len(top) % 2 else top
        levels[-1] = kept
        levels.append(paired[1::2])
    return {"parameters": dict(KLL_PARAMETERS), "data": levels}


def sketch_sample(sketch: Mapping[str, Any]) -> Sample:
    """(value, weight) pairs of a ``kll.sketch`` (items of ``data[h]`` weigh ``2**h``)."""
    return [(float(v), float(2 ** level)) for level, items in enumerate(sketch.get("data", [])) for v in items]


def _buckets(sample: Sample, low: float, high: float) -> list[dict]:
    if not sample:
        return []
    if high <= low:
        return [{"lower_bound": low, "upper_bound": high, "count": sum(w for _, w in sample)}]
    width = (high - low) / BUCKETS
    counts = [0.0] * BUCKETS
    for value, weight in sample:
        counts[min(BUCKETS - 1, max(0, int((value - low) / width)))] += weight
    return [{"lower_bound": low + i * width, "upper_bound": high if i == BUCKETS - 1 else low + (i + 1) * width,
             "count": count} for i, count in enumerate(counts)]


def infer_type(kinds: Iterable[str | None]) -> str:
    """A column's type from its values' types: Integral if all are, Fractional if all are numbers,
    String otherwise; Unknown for a column without values."""
    present = {k for k in kinds if k is not None}
    if not present:
        return UNKNOWN
    if present == {INTEGRAL}:
        return INTEGRAL
    return FRACTIONAL if present <= {INTEGRAL, FRACTIONAL} else STRING


def feature_statistics(name: str, column: Sequence[str | None]) -> dict:
    """The ``statistics.json`` entry of one feature (numerical or string statistics by its inferred type)."""
    kinds = [value_type(v) for v in column]
    present = [v.strip() for v, k in zip(column, kinds, strict=True) if k is not None]
    common = {"num_present": len(present), "num_missing": len(column) - len(present)}
    inferred = infer_type(kinds)
    if inferred in (INTEGRAL, FRACTIONAL):
        values = [float(v) for v in present]
        total = math.fsum(values)
        sketch = kll_sketch(values)
        low, high = min(values), max(values)
        return {"name": name, "inferred_type": inferred, "numerical_statistics": {
            "common": common, "mean": total / len(values), "sum": total, "std_dev": stats.pstdev(values),
            "min": low, "max": high,
            "distribution": {"kll": {"buckets": _buckets(sketch_sample(sketch), low, high), "sketch": sketch}}}}
    counts = Counter(present)
    return {"name": name, "inferred_type": inferred, "string_statistics": {
        "common": common, "distinct_count": len(counts),
        "distribution": {"categorical": {"buckets": [{"value": v, "count": c} for v, c in counts.most_common()]}}}}


def dataset_statistics(rows: Sequence[Sequence[str]], names: Sequence[str]) -> dict:
    """``statistics.json`` of ``rows`` (lists of strings; a short row's missing cells count as missing values):
    one feature per column, named by ``names`` and ``_c{i}`` beyond them (as AWS names headerless columns)."""
    width = max((len(r) for r in rows), default=len(names))
    columns = [[row[i] if i < len(row) else None for row in rows] for i in range(width)]
    features = [feature_statistics(names[i] if i < len(names) else f"_c{i}", column)
                for i, column in enumerate(columns)]
    return {"version": VERSION, "dataset": {"item_count": len(rows)}, "features": features}


def _common(feature: Mapping[str, Any]) -> dict:
    body = feature.get("numerical_statistics") or feature.get("string_statistics") or {}
    return body.get("common", {"num_present": 0, "num_missing": 0})


def completeness(feature: Mapping[str, Any]) -> float:
    """The share of non-missing values of a feature of ``statistics.json`` (1.0 for an empty dataset)."""
    common = _common(feature)
    total = common["num_present"] + common["num_missing"]
    return common["num_present"] / total if total else 1.0


def suggest_constraints(statistics: Mapping[str, Any]) -> dict:
    """``constraints.json`` suggested from a baseline's ``statistics.json``: type, completeness,
    non-negativity, a domain for String features of few values, and the default ``monitoring_config``."""
    features = []
    for feature in statistics["features"]:
        entry: dict[str, Any] = {"name": feature["name"], "inferred_type": feature["inferred_type"],
                                 "completeness": completeness(feature)}
        if "numerical_statistics" in feature:
            entry["num_constraints"] = {"is_non_negative": feature["numerical_statistics"]["min"] >= 0}
        elif feature["inferred_type"] == STRING:
            body = feature["string_statistics"]
            if body["distinct_count"] <= DOMAIN_MAX_VALUES:
                entry["string_constraints"] = {"domains": [b["value"] for b in
                                                           body["distribution"]["categorical"]["buckets"]]}
        features.append(entry)
    return {"version": VERSION, "features": features, "monitoring_config": json.loads(json.dumps(
        DEFAULT_MONITORING_CONFIG))}


# distances (Deequ's Distance) ---------------------------------------------------------------------
def _correct(linf: float, n: float, m: float, robust: bool, alpha: float | None) -> float:
    if not robust:
        return linf
    c_alpha = math.sqrt(-math.log(alpha / 2) / 2) if alpha else DEFAULT_C_ALPHA
    return max(0.0, linf - c_alpha * math.sqrt((n + m) / (n * m)))


def _cdf(sample: Sample) -> tuple[list[float], list[float], float]:
    ordered = sorted(sample)
    values, cumulative, running = [], [], 0.0
    for value, weight in ordered:
        running += weight
        if values and values[-1] == value:
            cumulative[-1] = running
        else:
            values.append(value)
            cumulative.append(running)
    return values, cumulative, running


def numerical_distance(sample1: Sample, sample2: Sample, *, robust: bool = True,
                       alpha: float | None = None) -> float:
    """Deequ's ``Distance.numericalDistance`` of two weighted samples: the largest difference of their
    empirical CDFs over both samples' values; ``robust`` subtracts the two-sample KS allowance
    ``c(alpha) * sqrt((n + m) / (n * m))`` (floored at 0)."""
    v1, c1, n = _cdf(sample1)
    v2, c2, m = _cdf(sample2)
    if not n or not m:
        return 0.0
    linf = 0.0
    for key in set(v1) | set(v2):
        i, j = bisect.bisect_right(v1, key), bisect.bisect_right(v2, key)
        cdf1 = c1[i - 1] / n if i else 0.0
        cdf2 = c2[j - 1] / m if j else 0.0
        linf = max(linf, abs(cdf1 - cdf2))
    return _correct(linf, n, m, robust, alpha)


def categorical_distance(counts1: Mapping[str, float], counts2: Mapping[str, float], *, robust: bool = True,
                         alpha: float | None = None) -> float:
    """Deequ's L-infinity categorical distance: the largest difference of the categories' frequencies
    (with the same small-sample correction when ``robust``)."""
    n, m = float(sum(counts1.values())), float(sum(counts2.values()))
    if not n or not m:
        return 0.0
    linf = max(abs(counts1.get(k, 0) / n - counts2.get(k, 0) / m) for k in set(counts1) | set(counts2))
    return _correct(linf, n, m, robust, alpha)


def numeric_sample(feature: Mapping[str, Any]) -> Sample:
    """The numerical values of a feature of ``statistics.json`` with their weights: its KLL sketch, or the
    numeric values among a string feature's categories."""
    if "numerical_statistics" in feature:
        return sketch_sample(feature["numerical_statistics"]["distribution"]["kll"]["sketch"])
    buckets = feature.get("string_statistics", {}).get("distribution", {}).get("categorical", {}).get("buckets", [])
    return [(float(b["value"]), float(b["count"])) for b in buckets if value_type(str(b["value"])) in
            (INTEGRAL, FRACTIONAL)]


def category_counts(feature: Mapping[str, Any]) -> dict[str, float]:
    """Category -> count of a feature of ``statistics.json`` (a numerical feature: its values as strings)."""
    if "string_statistics" in feature:
        buckets = feature["string_statistics"].get("distribution", {}).get("categorical", {}).get("buckets", [])
        return {str(b["value"]): float(b["count"]) for b in buckets}
    counts: dict[str, float] = {}
    for value, weight in numeric_sample(feature):
        key = str(_number(value))
        counts[key] = counts.get(key, 0.0) + weight
    return counts


def _feature_config(config: Mapping[str, Any], constraint: Mapping[str, Any]) -> dict:
    """The monitoring config of one feature: the file's, with the feature's ``monitoringConfigOverrides``."""
    merged = json.loads(json.dumps(dict(DEFAULT_MONITORING_CONFIG)))
    for source in (config, constraint.get("monitoringConfigOverrides") or {}):
        for key, value in source.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key].update(value)
            else:
                merged[key] = value
    return merged


def drift_distance(current: Mapping[str, Any], baseline: Mapping[str, Any], inferred_type: str,
                   config: Mapping[str, Any]) -> float:
    """The baseline drift distance of one feature (numerical for Integral/Fractional, categorical for String)."""
    distribution = config.get("distribution_constraints", {})
    robust = str(distribution.get("comparison_method", "Robust")).lower() == "robust"
    if inferred_type in (INTEGRAL, FRACTIONAL):
        return numerical_distance(numeric_sample(current), numeric_sample(baseline), robust=robust)
    method = str(distribution.get("categorical_drift_method", "LInfinity"))
    if method.lower() not in ("linfinity", "linf"):
        raise AnalyzerError(f"categorical_drift_method {method} is not supported locally (only LInfinity)")
    return categorical_distance(category_counts(current), category_counts(baseline), robust=robust)


def drift_distances(statistics: Mapping[str, Any], baseline_statistics: Mapping[str, Any],
                    baseline_constraints: Mapping[str, Any]) -> dict[str, float]:
    """Feature -> drift distance, for the baseline's features present in both statistics."""
    current = {f["name"]: f for f in statistics.get("features", [])}
    baseline = {f["name"]: f for f in baseline_statistics.get("features", [])}
    config = baseline_constraints.get("monitoring_config", {})
    distances = {}
    for constraint in baseline_constraints.get("features", []):
        name = constraint["name"]
        if name in current and name in baseline and _common(current[name])["num_present"]:
            distances[name] = drift_distance(current[name], baseline[name], constraint.get("inferred_type", STRING),
                                             _feature_config(config, constraint))
    return distances


# violations ---------------------------------------------------------------------------------------
def _percent(share: float) -> str:
    return f"{round(share * 100, 4)}%"


def _type_match(feature: Mapping[str, Any], expected: str) -> float:
    """The share of a feature's present values that are of ``expected`` type (from its statistics)."""
    present = _common(feature)["num_present"]
    if not present or expected not in (INTEGRAL, FRACTIONAL):
        return 1.0
    if "numerical_statistics" in feature:
        if expected == FRACTIONAL or feature["inferred_type"] == INTEGRAL:
            return 1.0
        sample = numeric_sample(feature)
        return sum(w for v, w in sample if float(v).is_integer()) / present
    buckets = feature["string_statistics"]["distribution"]["categorical"]["buckets"]
    return sum(b["count"] for b in buckets if _matches(value_type(str(b["value"])), expected)) / present


def violations(statistics: Mapping[str, Any], baseline_statistics: Mapping[str, Any] | None,
               baseline_constraints: Mapping[str, Any]) -> list[dict]:
    """The entries of ``constraint_violations.json``: the current ``statistics`` checked against the
    baseline's constraints (type, completeness, domain, columns) and, with baseline statistics, drift."""
    found: list[dict] = []
    constraints = baseline_constraints.get("features", [])
    config = baseline_constraints.get("monitoring_config", {})
    current = {f["name"]: f for f in statistics.get("features", [])}
    expected_names = [c["name"] for c in constraints]
    width = len(statistics.get("features", []))

    def add(feature: str, check: str, description: str) -> None:
        found.append({"feature_name": feature, "constraint_check_type": check, "description": description})

    for name in expected_names:
        if name not in current:
            add(name, "missing_column_check", "There are missing columns in current dataset. Number of columns "
                f"in current dataset: {width}, Number of columns in baseline constraints: {len(expected_names)}")
    for name in current:
        if name not in expected_names:
            add(name, "extra_column_check", "There are extra columns in current dataset. Number of columns "
                f"in current dataset: {width}, Number of columns in baseline constraints: {len(expected_names)}")
    distances = drift_distances(statistics, baseline_statistics, baseline_constraints) if baseline_statistics else {}
    for constraint in constraints:
        name = constraint["name"]
        if name not in current:
            continue
        feature, feature_config = current[name], _feature_config(config, constraint)
        expected = constraint.get("inferred_type", STRING)
        if str(feature_config.get("evaluate_constraints", "Enabled")) == "Enabled":
            threshold = float(feature_config.get("datatype_check_threshold", 1.0))
            match = _type_match(feature, expected)
            if match < threshold - 1e-12:
                add(name, "data_type_check", f"Data type match requirement is not met. Expected data type: "
                    f"{expected}, Expected match: {_percent(threshold)}. Observed: Only {_percent(match)} of data "
                    f"is {expected}.")
            if "completeness" in constraint:
                required, observed = float(constraint["completeness"]), completeness(feature)
                if observed < required - 1e-12:
                    add(name, "completeness_check", f"Data completeness requirement is not met. Expected: "
                        f"{_percent(required)}. Observed: Only {_percent(observed)} of data is non-null.")
            domain = (constraint.get("string_constraints") or {}).get("domains")
            if domain is not None and _common(feature)["num_present"]:
                threshold = float(feature_config.get("domain_content_threshold", 1.0))
                counts = category_counts(feature)
                within = sum(c for v, c in counts.items() if v in set(map(str, domain))) / sum(counts.values())
                if within < threshold - 1e-12:
                    add(name, "categorical_values_check", f"Data does not meet the domain content requirement. "
                        f"Expected: {_percent(threshold)}. Observed: Only {_percent(within)} of data is within "
                        f"the known domain {sorted(map(str, domain))}.")
        distribution = feature_config.get("distribution_constraints", {})
        if name in distances and str(distribution.get("perform_comparison", "Enabled")) == "Enabled":
            key = "comparison_threshold" if expected in (INTEGRAL, FRACTIONAL) else "categorical_comparison_threshold"
            threshold = float(distribution.get(key, distribution.get("comparison_threshold", 0.1)))
            if distances[name] > threshold:
                add(name, "baseline_drift_check",
                    f"Baseline drift distance: {distances[name]} exceeds threshold: {threshold}")
    return found


def data_quality_metrics(statistics: Mapping[str, Any], distances: Mapping[str, float],
                         dimensions: Sequence[Mapping[str, str]]) -> list[dict]:
    """The metrics AWS's analyzer emits per feature, as ``MetricData`` entries: ``feature_non_null_{f}``
    (completeness) and ``feature_baseline_drift_{f}`` (the drift distance)."""
    data = []
    for feature in statistics.get("features", []):
        name = feature["name"]
        data.append({"MetricName": f"feature_non_null_{name}", "Value": completeness(feature), "Unit": "None",
                     "Dimensions": [dict(d) for d in dimensions]})
        if name in distances:
            data.append({"MetricName": f"feature_baseline_drift_{name}", "Value": distances[name], "Unit": "None",
                         "Dimensions": [dict(d) for d in dimensions]})
    return data


# model quality ------------------------------------------------------------------------------------
def _regression_values(predictions: Sequence[float], labels: Sequence[float]) -> dict[str, float]:
    n = len(labels)
    errors = [p - y for p, y in zip(predictions, labels, strict=True)]
    mse = math.fsum(e * e for e in errors) / n
    mean = math.fsum(labels) / n
    total = math.fsum((y - mean) ** 2 for y in labels)
    r2 = 1.0 - mse * n / total if total else (1.0 if mse == 0 else float("nan"))
    return {"mae": math.fsum(abs(e) for e in errors) / n, "mse": mse, "rmse": math.sqrt(mse), "r2": r2}


def regression_metrics(predictions: Sequence[float], labels: Sequence[float], *, seed: int = 0) -> dict:
    """``regression_metrics`` of ``statistics.json``: mae, mse, rmse, r2, each ``{"value", "standard_deviation"}``;
    the deviation as AWS computes it (the metric over 5 random 80% samples) from 200 samples, else "NaN"."""
    if len(predictions) != len(labels):
        raise AnalyzerError(f"{len(predictions)} predictions but {len(labels)} labels")
    if not labels:
        raise AnalyzerError("no predictions with labels to compute regression metrics on")
    values = _regression_values(predictions, labels)
    deviations: dict[str, Any] = dict.fromkeys(values, "NaN")
    if len(labels) >= STD_MIN_SAMPLES:
        rng, size, runs = random.Random(seed), int(len(labels) * 0.8), []
        for _ in range(5):
            index = rng.sample(range(len(labels)), size)
            runs.append(_regression_values([predictions[i] for i in index], [labels[i] for i in index]))
        deviations = {k: stats.stdev(r[k] for r in runs) for k in values}
    return {k: {"value": v, "standard_deviation": deviations[k]} for k, v in values.items()}


def model_quality_statistics(predictions: Sequence[float], labels: Sequence[float]) -> dict:
    """The model-quality ``statistics.json`` of a regression problem."""
    return {"version": VERSION, "dataset": {"item_count": len(labels), "evaluation_time": _now()},
            "regression_metrics": regression_metrics(predictions, labels)}


def suggest_regression_constraints(statistics: Mapping[str, Any]) -> dict:
    """The model-quality ``constraints.json``: each metric's baseline value as its threshold, errors
    ``GreaterThanThreshold``, r2 ``LessThanThreshold``."""
    metrics = statistics["regression_metrics"]
    return {"version": VERSION, "regression_constraints": {
        name: {"threshold": metrics[name]["value"], "comparison_operator": op}
        for name, op in REGRESSION_OPERATORS.items() if name in metrics}}


def model_quality_violations(statistics: Mapping[str, Any], constraints: Mapping[str, Any]) -> list[dict]:
    """Violations of the model-quality constraints: ``{"constraint_check_type": <operator>, "description":
    "Metric rmse with 2.1 +/- 0.01 was GreaterThanThreshold '1.9'", "metric_name": "rmse"}``."""
    metrics = statistics.get("regression_metrics", {})
    found = []
    for name, constraint in (constraints.get("regression_constraints") or {}).items():
        operator = constraint.get("comparison_operator", "")
        if name not in metrics:
            continue
        if operator not in OPERATORS:
            raise AnalyzerError(f"constraint of metric {name}: unknown comparison_operator {operator!r}")
        value, threshold = metrics[name]["value"], float(constraint["threshold"])
        if OPERATORS[operator](value, threshold):
            found.append({"constraint_check_type": operator, "description": f"Metric {name} with {value} +/- "
                          f"{metrics[name]['standard_deviation']} was {operator} '{threshold}'", "metric_name": name})
    return found


# reading datasets ---------------------------------------------------------------------------------
def dataset_files(source: str | os.PathLike, suffixes: tuple[str, ...] = ()) -> list[Path]:
    """The files of ``source`` (itself when a file; else its files, recursively, sorted, hidden ones not)."""
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise AnalyzerError(f"dataset_source {path} does not exist")
    files = sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                                                                            p.relative_to(path).parts))
    return [p for p in files if not suffixes or p.name.endswith(suffixes)]


def read_csv_dataset(source: str | os.PathLike, header: bool = True) -> tuple[list[str], list[list[str]]]:
    """(column names, rows) of the CSV files under ``source``: names from the header (each file's header
    row is skipped) or ``_c0, _c1, ...``; blank lines are skipped."""
    names: list[str] = []
    rows: list[list[str]] = []
    files = dataset_files(source)
    if not files:
        raise AnalyzerError(f"dataset_source {source} holds no files")
    for path in files:
        with open(path, newline="", encoding="utf-8") as text:
            reader = [r for r in csv.reader(text) if any(cell.strip() for cell in r)]
        if header and reader:
            file_names = [n.strip() for n in reader[0]]
            if names and file_names != names:
                raise AnalyzerError(f"{path}: header {file_names} differs from the first file's {names}")
            names, reader = file_names, reader[1:]
        rows.extend(reader)
    if not header:
        names = [f"_c{i}" for i in range(max((len(r) for r in rows), default=0))]
    return names, rows


def _decode(payload: Mapping[str, Any]) -> str:
    data = payload.get("data", "")
    if str(payload.get("encoding", "")).upper() == "BASE64":
        return base64.b64decode(data).decode("utf-8")
    return data


def _is_json(payload: Mapping[str, Any]) -> bool:
    return (str(payload.get("encoding", "")).upper() == "JSON"
            or "json" in str(payload.get("observedContentType", "")).lower())


def capture_records(folder: str | os.PathLike) -> Iterator[tuple[Path, int, dict]]:
    """(file, line number, record) of the capture JSON-lines files under ``folder``."""
    for path in dataset_files(folder, (".jsonl", ".json")):
        with open(path, encoding="utf-8") as text:
            for number, line in enumerate(text, 1):
                if line.strip():
                    try:
                        yield path, number, json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise AnalyzerError(f"{path} line {number}: not JSON ({exc.msg})") from None


def payload_rows(payload: Mapping[str, Any], names: Sequence[str] = ()) -> list[list[str]]:
    """The rows of one captured payload: CSV lines, or JSON (``{"instances": [...]}``, a list of rows, or one
    row; a row is a list of values or an object keyed by ``names``)."""
    text = _decode(payload)
    if not _is_json(payload):
        return [[c.strip() for c in r] for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    document = json.loads(text)
    if isinstance(document, Mapping):
        document = document.get("instances", document.get("features", [document]))
    if not isinstance(document, list):
        document = [document]
    if document and not isinstance(document[0], (list, Mapping)):
        document = [document]
    rows = []
    for row in document:
        if isinstance(row, Mapping):
            keys = list(names) or list(row)
            rows.append(["" if row.get(k) is None else str(row.get(k)) for k in keys])
        else:
            rows.append(["" if v is None else str(v) for v in row])
    return rows


def read_capture_rows(folder: str | os.PathLike, names: Sequence[str] = (),
                      index: str = "endpointInput") -> list[list[str]]:
    """The data rows captured under ``folder`` (SageMaker's capture files ``{endpoint}/{variant}/yyyy/mm/dd/hh/
    *.jsonl``) from ``index`` (``endpointInput`` or ``endpointOutput``); a header row equal to ``names`` is
    dropped."""
    rows: list[list[str]] = []
    header = [n.strip() for n in names]
    for path, number, record in capture_records(folder):
        payload = (record.get("captureData") or {}).get(index)
        if payload is None:
            continue
        try:
            found = payload_rows(payload, names)
        except (ValueError, TypeError) as exc:
            raise AnalyzerError(f"{path} line {number}: {index} data cannot be read ({exc})") from None
        rows.extend(r for r in found if not header or r != header)
    return rows


def _capture_dataset(folder: str, indexes: Sequence[str], names: Sequence[str], position: str) -> list[list[str]]:
    """Rows of the input capture; the output's columns are put before (START) or after (END) them when
    ``captureIndexNames`` asks for them and the baseline has room for them (its column count is the sum)."""
    inputs = read_capture_rows(folder, names, "endpointInput") if "endpointInput" in indexes else []
    if "endpointOutput" not in indexes:
        return inputs
    if not inputs:
        return read_capture_rows(folder, (), "endpointOutput")
    if not names or all(len(row) >= len(names) for row in inputs):
        return inputs  # the baseline has no room for output columns: the inputs alone are compared
    try:
        outputs = read_capture_rows(folder, (), "endpointOutput")
    except AnalyzerError:
        return inputs
    if len(outputs) == len(inputs) and all(len(i) + len(o) == len(names)
                                           for i, o in zip(inputs, outputs, strict=True)):
        return [o + i if position.upper() == "START" else i + o for i, o in zip(inputs, outputs, strict=True)]
    return inputs


def _attribute(document: Any, path: str) -> Any:
    """The value at a JSONPath-like ``path`` (``predictions[0].rings``, ``$.score``, ``0``) in ``document``."""
    value = document
    for key, index in re.findall(r"([^.\[\]$]+)|\[(\d+)\]", path):
        if index:
            value = value[int(index)]
        elif isinstance(value, list) and key.isdigit():
            value = value[int(key)]
        else:
            value = value[key]
    return value


def payload_value(payload: Mapping[str, Any], attribute: str | None) -> float:
    """One number of a captured payload: at ``attribute`` (a JSONPath for JSON, a column index for CSV;
    default the first value)."""
    text = _decode(payload)
    if _is_json(payload):
        document = json.loads(text)
        if attribute:
            value = _attribute(document, attribute)
        else:
            while isinstance(document, list):
                document = document[0]
            value = document
    else:
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
        column = int(attribute) if attribute and attribute.strip().isdigit() else 0
        value = rows[0][column]
    return float(value)


def _record_id(record: Mapping[str, Any]) -> str | None:
    metadata = record.get("eventMetadata") or {}
    return metadata.get("inferenceId") or metadata.get("eventId")


def merge_ground_truth(capture_lines: Iterable[str], ground_truth_lines: Iterable[str],
                       inference_attribute: str | None = None) -> list[tuple[float, float]]:
    """(prediction, label) of each captured inference that has ground truth, in capture order: joined on
    the capture's ``eventMetadata.inferenceId`` (else its ``eventId``) = the ground truth's
    ``eventMetadata.eventId``; the prediction read from ``endpointOutput`` at ``inference_attribute``."""
    labels: dict[str, float] = {}
    for number, line in enumerate(ground_truth_lines, 1):
        if not line.strip():
            continue
        record = json.loads(line)
        key = _record_id(record)
        truth = record.get("groundTruthData")
        if key is None or truth is None:
            raise AnalyzerError(f"ground truth line {number}: no eventMetadata.eventId or groundTruthData")
        try:
            labels[key] = payload_value(truth, None)
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            raise AnalyzerError(f"ground truth {key}: label {truth.get('data')!r} is not a number ({exc})") from None
    merged = []
    for number, line in enumerate(capture_lines, 1):
        if not line.strip():
            continue
        record = json.loads(line)
        key = _record_id(record)
        output = (record.get("captureData") or {}).get("endpointOutput")
        if key is None or key not in labels or output is None:
            continue
        try:
            merged.append((payload_value(output, inference_attribute), labels[key]))
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            raise AnalyzerError(f"capture line {number} ({key}): no prediction at inference_attribute "
                                f"{inference_attribute!r} ({exc!r})") from None
    return merged


def _lines(source: str | os.PathLike) -> list[str]:
    return [line for path in dataset_files(source, (".jsonl", ".json"))
            for line in path.read_text(encoding="utf-8").splitlines()]


def read_merged_records(source: str | os.PathLike, inference_attribute: str | None,
                        ground_truth_attribute: str | None) -> list[tuple[float, float]]:
    """(prediction, label) from merged JSON lines: capture records carrying ``groundTruthData``, or flat
    objects holding ``inference_attribute`` and ``ground_truth_attribute``."""
    pairs = []
    for number, line in enumerate(_lines(source), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        try:
            if "groundTruthData" in record:
                output = (record.get("captureData") or {})["endpointOutput"]
                pairs.append((payload_value(output, inference_attribute), payload_value(record["groundTruthData"], None)))
            else:
                pairs.append((float(_attribute(record, inference_attribute or "prediction")),
                              float(_attribute(record, ground_truth_attribute or "label"))))
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            raise AnalyzerError(f"merged record {number}: no prediction/label ({exc!r})") from None
    return pairs


def _column_values(names: Sequence[str], rows: Sequence[Sequence[str]], attribute: str, what: str) -> list[float]:
    if attribute in names:
        index = names.index(attribute)
    elif attribute.strip().isdigit() and int(attribute) < len(names):
        index = int(attribute)
    else:
        raise AnalyzerError(f"{what} {attribute!r} is not a column of the dataset (columns: {', '.join(names)})")
    values = []
    for number, row in enumerate(rows, 1):
        try:
            values.append(float(row[index]))
        except (ValueError, IndexError):
            raise AnalyzerError(f"row {number}: {what} {names[index]} is {row[index] if index < len(row) else None!r},"
                                " not a number") from None
    return values


# main ---------------------------------------------------------------------------------------------
def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(document), indent=2) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnalyzerError(f"{what} file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise AnalyzerError(f"{what} file {path} is not JSON ({exc})") from None


def _dataset_format(env: Mapping[str, str]) -> dict:
    text = env.get("dataset_format") or '{"csv": {"header": true}}'
    try:
        fmt = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnalyzerError(f"dataset_format is not JSON: {text!r} ({exc})") from None
    if not isinstance(fmt, Mapping) or not fmt:
        raise AnalyzerError(f"dataset_format {text!r} names no format")
    return {str(k).lower(): v or {} for k, v in fmt.items()}


def _dimensions(env: Mapping[str, str]) -> list[dict]:
    return [{"Name": name, "Value": env[key]} for name, key in
            (("Endpoint", "sagemaker_endpoint_name"), ("MonitoringSchedule", "sagemaker_monitoring_schedule_name"))
            if env.get(key)]


def _publish(env: Mapping[str, str]) -> bool:
    return str(env.get("publish_cloudwatch_metrics", "Disabled")).lower() == "enabled"


def _data_quality(env: Mapping[str, str], fmt: Mapping[str, Any], output: Path) -> dict:
    source = env["dataset_source"]
    constraints_path = env.get("baseline_constraints")
    constraints = read_json(constraints_path, "baseline_constraints") if constraints_path else None
    baseline_names = [f["name"] for f in constraints["features"]] if constraints else []
    if "csv" in fmt:
        header = bool(fmt["csv"].get("header", False))
        names, rows = read_csv_dataset(source, header)
        if constraints and not header:
            names = baseline_names
    elif "sagemakercapturejson" in fmt:
        indexes = fmt["sagemakercapturejson"].get("captureIndexNames") or ["endpointInput"]
        rows = _capture_dataset(source, indexes, baseline_names, str(env.get("output_columns_position", "START")))
        names = baseline_names
    else:
        raise AnalyzerError(f"dataset_format {sorted(fmt)} is not supported locally for data quality "
                            "(csv, sagemakerCaptureJson)")
    if not rows:
        raise AnalyzerError(f"dataset_source {source} holds no data rows")
    statistics = dataset_statistics(rows, names)
    write_json(output / STATISTICS, statistics)
    if constraints is None:
        write_json(output / CONSTRAINTS, suggest_constraints(statistics))
        return {"mode": "baseline", "rows": len(rows)}
    baseline = read_json(env["baseline_statistics"], "baseline_statistics") if env.get("baseline_statistics") else None
    found = violations(statistics, baseline, constraints)
    write_json(output / VIOLATIONS, {"violations": found})
    config = constraints.get("monitoring_config", {})
    if _publish(env) and str(config.get("emit_metrics", "Enabled")) == "Enabled":
        distances = drift_distances(statistics, baseline, constraints) if baseline else {}
        write_json(output / METRICS_FILE, {"Namespace": DATA_NAMESPACE, "MetricData": data_quality_metrics(
            statistics, distances, _dimensions(env))})
    return {"mode": "monitoring", "rows": len(rows), "violations": len(found)}


def _model_quality(env: Mapping[str, str], fmt: Mapping[str, Any], output: Path) -> dict:
    problem = env.get("problem_type", "Regression")
    if problem != "Regression":
        raise AnalyzerError(f"problem_type {problem!r} is not supported locally (only Regression)")
    source = env["dataset_source"]
    inference, truth = env.get("inference_attribute") or None, env.get("ground_truth_attribute") or None
    if "csv" in fmt:
        names, rows = read_csv_dataset(source, bool(fmt["csv"].get("header", False)))
        if not inference or not truth:
            raise AnalyzerError("model quality over CSV needs inference_attribute and ground_truth_attribute")
        pairs = list(zip(_column_values(names, rows, inference, "inference_attribute"),
                         _column_values(names, rows, truth, "ground_truth_attribute"), strict=True))
    elif "sagemakercapturejson" in fmt and env.get("ground_truth_source"):
        pairs = merge_ground_truth(_lines(source), _lines(env["ground_truth_source"]), inference)
    elif "json" in fmt or "sagemakermergejson" in fmt or "sagemakercapturejson" in fmt:
        pairs = read_merged_records(source, inference, truth)
    else:
        raise AnalyzerError(f"dataset_format {sorted(fmt)} is not supported locally for model quality")
    if not pairs:
        raise AnalyzerError(f"no inference with ground truth under {source}"
                            + (f" and {env['ground_truth_source']}" if env.get("ground_truth_source") else ""))
    predictions, labels = [p for p, _ in pairs], [y for _, y in pairs]
    statistics = model_quality_statistics(predictions, labels)
    write_json(output / STATISTICS, statistics)
    if not env.get("baseline_constraints"):
        write_json(output / CONSTRAINTS, suggest_regression_constraints(statistics))
        return {"mode": "baseline", "rows": len(pairs)}
    found = model_quality_violations(statistics, read_json(env["baseline_constraints"], "baseline_constraints"))
    write_json(output / VIOLATIONS, {"violations": found})
    if _publish(env):
        write_json(output / METRICS_FILE, {"Namespace": MODEL_NAMESPACE, "MetricData": [
            {"MetricName": name, "Value": metric["value"], "Unit": "None", "Dimensions": _dimensions(env)}
            for name, metric in statistics["regression_metrics"].items() if math.isfinite(metric["value"])]})
    return {"mode": "monitoring", "rows": len(pairs), "violations": len(found)}


def analyze(env: Mapping[str, str]) -> dict:
    """Run the analysis ``env`` describes (see the module's docstring); a summary of what was done."""
    for key in ("dataset_source", "output_path"):
        if not env.get(key):
            raise AnalyzerError(f"environment variable {key} is not set")
    output = Path(env["output_path"])
    output.mkdir(parents=True, exist_ok=True)
    fmt = _dataset_format(env)
    if str(env.get("analysis_type", "")).upper() == "MODEL_QUALITY":
        return _model_quality(env, fmt, output)
    return _data_quality(env, fmt, output)


def _failure_path(env: Mapping[str, str]) -> Path | None:
    if env.get("failure_path"):
        return Path(env["failure_path"])
    if env.get("OPT_ML_ROOT"):
        return Path(env["OPT_ML_ROOT"]) / "output" / "failure"
    return Path("/opt/ml/output/failure") if Path("/opt/ml/output").is_dir() else None


def main(env: Mapping[str, str] | None = None) -> int:
    """The container's entry point: 0 when the analysis ran, 1 (its reason on stderr and in the failure
    file) when it could not."""
    env = os.environ if env is None else env
    try:
        summary = analyze(env)
    except Exception as exc:  # a container reports every failure the same way
        reason = str(exc) if isinstance(exc, AnalyzerError) else f"{type(exc).__name__}: {exc}"
        message = f"ClientError: {reason}" if isinstance(exc, AnalyzerError) else f"AlgorithmError: {reason}"
        print(message, file=sys.stderr)
        failure = _failure_path(env)
        if failure is not None:
            try:
                failure.parent.mkdir(parents=True, exist_ok=True)
                failure.write_text(message + "\n", encoding="utf-8")
            except OSError:
                pass
        return 1
    print(f"analyzer: {json.dumps(summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
