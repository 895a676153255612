"""The local stand-in for AWS's Model Monitor analyzer (mlops_core.local.analyzer) on the real abalone data:
baseline statistics and suggested constraints, the training data captured as endpoint traffic against its
own baseline, small samples (Deequ's robust correction), drift, data-quality violations, model quality,
the ground-truth merge, and ``main`` end to end through its environment."""

from __future__ import annotations

import base64
import bisect
import csv
import json
import math
import random
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mlops_core.local import analyzer

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "workflows" / "abalone.data"
FEATURES = ["sex", "length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight",
            "shell_weight"]
NUMERIC = FEATURES[1:]


@pytest.fixture(scope="module")
def rows() -> list[list[str]]:
    """The 8 feature columns of the UCI abalone data (rings dropped)."""
    with open(DATA, newline="") as text:
        return [r[:8] for r in csv.reader(text) if r]


@pytest.fixture(scope="module")
def baseline(rows):
    stats = analyzer.dataset_statistics(rows, FEATURES)
    return stats, analyzer.suggest_constraints(stats)


def by_name(document: dict) -> dict:
    return {f["name"]: f for f in document["features"]}


def write_capture(folder: Path, rows: list[list[str]], *, per_request: int = 1, endpoint: str = "abalone",
                  outputs: list[str] | None = None, ids: list[str] | None = None) -> Path:
    """SageMaker's data capture of requests of ``per_request`` CSV rows: JSON lines under
    ``{endpoint}/AllTraffic/yyyy/mm/dd/hh/``, every other request base64-encoded as SageMaker does."""
    hour = folder / endpoint / "AllTraffic" / "2026" / "12" / "02" / "13"
    hour.mkdir(parents=True, exist_ok=True)
    lines = []
    for n, start in enumerate(range(0, len(rows), per_request)):
        body = "\n".join(",".join(r) for r in rows[start:start + per_request])
        encoded = n % 2 == 1
        payload = {"observedContentType": "text/csv", "mode": "INPUT", "encoding": "BASE64" if encoded else "CSV",
                   "data": base64.b64encode(body.encode()).decode() if encoded else body}
        output = outputs[n] if outputs else "9.5"
        inference_id = ids[n] if ids else f"id-{n}"
        lines.append(json.dumps({
            "captureData": {"endpointInput": payload, "endpointOutput": {
                "observedContentType": "text/csv", "mode": "OUTPUT", "data": output, "encoding": "CSV"}},
            "eventMetadata": {"eventId": f"event-{n}", "inferenceId": inference_id,
                              "inferenceTime": "2026-12-02T13:00:00Z"},
            "eventVersion": "0"}))
    half = len(lines) // 2
    (hour / "part-1.jsonl").write_text("\n".join(lines[:half]) + "\n")
    (hour / "part-2.jsonl").write_text("\n".join(lines[half:]) + "\n")
    return folder


def checks(found: list[dict]) -> set[tuple[str, str]]:
    return {(v["feature_name"], v["constraint_check_type"]) for v in found}


# baseline -----------------------------------------------------------------------------------------
def test_baseline_statistics_match_an_independent_computation(rows, baseline):
    stats, _ = baseline
    features = by_name(stats)
    assert stats["version"] == 0.0 and stats["dataset"]["item_count"] == 4177 == len(rows)
    assert [f["name"] for f in stats["features"]] == FEATURES
    for index, name in enumerate(FEATURES[1:], 1):
        values = [float(r[index]) for r in rows]
        numerical = features[name]["numerical_statistics"]
        assert features[name]["inferred_type"] == "Fractional"
        assert numerical["common"] == {"num_present": 4177, "num_missing": 0}
        assert numerical["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
        assert numerical["sum"] == pytest.approx(math.fsum(values), rel=1e-12)
        assert numerical["std_dev"] == pytest.approx(statistics.pstdev(values), rel=1e-9)
        assert (numerical["min"], numerical["max"]) == (min(values), max(values))
        kll = numerical["distribution"]["kll"]
        assert len(kll["buckets"]) == 10 and sum(b["count"] for b in kll["buckets"]) == 4177
        assert kll["buckets"][0]["lower_bound"] == min(values) and kll["buckets"][-1]["upper_bound"] == max(values)
        assert kll["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0}
        assert sorted(v for level in kll["sketch"]["data"] for v in level) == sorted(values)
    length = features["length"]["numerical_statistics"]
    assert (length["min"], length["max"]) == (0.075, 0.815) and length["mean"] == pytest.approx(0.5239920995)
    sex = features["sex"]
    assert sex["inferred_type"] == "String"
    assert sex["string_statistics"]["distinct_count"] == 3
    counted = {b["value"]: b["count"] for b in sex["string_statistics"]["distribution"]["categorical"]["buckets"]}
    assert counted == Counter(r[0] for r in rows) == {"M": 1528, "I": 1342, "F": 1307}


def test_suggested_constraints_have_the_types_completeness_and_monitoring_config(baseline):
    _, constraints = baseline
    features = by_name(constraints)
    assert {n: f["inferred_type"] for n, f in features.items()} == {"sex": "String",
                                                                   **dict.fromkeys(NUMERIC, "Fractional")}
    assert all(f["completeness"] == 1.0 for f in features.values())
    assert all(features[n]["num_constraints"] == {"is_non_negative": True} for n in NUMERIC)
    assert sorted(features["sex"]["string_constraints"]["domains"]) == ["F", "I", "M"]
    assert constraints["monitoring_config"] == {
        "evaluate_constraints": "Enabled", "emit_metrics": "Enabled", "datatype_check_threshold": 1.0,
        "domain_content_threshold": 1.0,
        "distribution_constraints": {"perform_comparison": "Enabled", "comparison_threshold": 0.1,
                                     "comparison_method": "Robust", "categorical_comparison_threshold": 0.1,
                                     "categorical_drift_method": "LInfinity"}}


def test_headerless_csv_columns_are_named_like_aws(tmp_path):
    (tmp_path / "data.csv").write_text("M,1,0.5\nF,2,0.25\n")
    names, rows = analyzer.read_csv_dataset(tmp_path, header=False)
    stats = analyzer.dataset_statistics(rows, names)
    assert [(f["name"], f["inferred_type"]) for f in stats["features"]] == [
        ("_c0", "String"), ("_c1", "Integral"), ("_c2", "Fractional")]
    assert analyzer.suggest_constraints(stats)["features"][1]["inferred_type"] == "Integral"


# monitoring: data quality -------------------------------------------------------------------------
def test_training_data_captured_as_traffic_has_no_violations(tmp_path, rows, baseline):
    stats, constraints = baseline
    write_capture(tmp_path, rows[:3000], per_request=1)
    write_capture(tmp_path / "more", rows[3000:], per_request=7)  # some requests of several rows
    captured = analyzer.read_capture_rows(tmp_path, FEATURES)
    assert sorted(captured) == sorted(rows)
    current = analyzer.dataset_statistics(captured, FEATURES)
    assert analyzer.violations(current, stats, constraints) == []
    assert set(analyzer.drift_distances(current, stats, constraints).values()) == {0.0}


@pytest.mark.parametrize("seed", range(5))
def test_a_random_sample_of_100_rows_does_not_drift(rows, baseline, seed):
    stats, constraints = baseline
    sample = random.Random(seed).sample(rows, 100)
    current = analyzer.dataset_statistics(sample, FEATURES)
    assert analyzer.violations(current, stats, constraints) == []
    allowance = 1.8 * math.sqrt((4177 + 100) / (4177 * 100))  # Deequ's robust correction, c(alpha)=1.8
    for name in NUMERIC:
        column = FEATURES.index(name)
        simple = ks_statistic([float(r[column]) for r in sample], [float(r[column]) for r in rows])
        robust = analyzer.drift_distances(current, stats, constraints)[name]
        assert robust == pytest.approx(max(0.0, simple - allowance), abs=1e-12)


def ks_statistic(a: list[float], b: list[float]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic, computed plainly (an independent check)."""
    a, b = sorted(a), sorted(b)
    return max(abs(bisect.bisect_right(a, t) / len(a) - bisect.bisect_right(b, t) / len(b)) for t in set(a) | set(b))


def test_without_the_robust_correction_small_samples_would_drift(rows, baseline):
    """Why Robust: among a few 100-row samples, the plain L-infinity distance exceeds 0.1 for some feature."""
    stats, constraints = baseline
    simple = json.loads(json.dumps(constraints))
    simple["monitoring_config"]["distribution_constraints"]["comparison_method"] = "Simple"
    drifting = set()
    for seed in range(5):
        current = analyzer.dataset_statistics(random.Random(seed).sample(rows, 100), FEATURES)
        drifting |= {v["feature_name"] for v in analyzer.violations(current, stats, simple)}
    assert drifting


def test_a_drifted_batch_violates_drift_on_exactly_the_drifted_features(rows, baseline):
    stats, constraints = baseline
    batch = []
    for row in random.Random(7).sample(rows, 300):
        row = list(row)
        for column in (1, 2):  # length, diameter
            row[column] = str(round(float(row[column]) * 1.3, 4))
        batch.append(row)
    current = analyzer.dataset_statistics(batch, FEATURES)
    found = analyzer.violations(current, stats, constraints)
    assert checks(found) == {("length", "baseline_drift_check"), ("diameter", "baseline_drift_check")}
    distances = analyzer.drift_distances(current, stats, constraints)
    assert distances["length"] > 0.3 and distances["diameter"] > 0.3
    assert all(distances[n] == 0.0 for n in FEATURES if n not in ("length", "diameter"))
    assert all(v["description"].startswith("Baseline drift distance: ") and v["description"].endswith(
        "exceeds threshold: 0.1") for v in found)


def test_missing_and_non_numeric_values_are_named_by_feature(rows, baseline):
    stats, constraints = baseline
    batch = [list(r) for r in rows[:200]]
    for row in batch[:10]:
        row[3] = ""  # height missing
    batch[5][4] = "heavy"  # whole_weight not a number
    batch[6][0] = "X"  # sex outside the domain
    found = analyzer.violations(analyzer.dataset_statistics(batch, FEATURES), stats, constraints)
    assert checks(found) == {("height", "completeness_check"), ("whole_weight", "data_type_check"),
                             ("sex", "categorical_values_check")}
    described = {v["feature_name"]: v["description"] for v in found}
    assert described["height"] == ("Data completeness requirement is not met. Expected: 100.0%. "
                                   "Observed: Only 95.0% of data is non-null.")
    assert described["whole_weight"] == ("Data type match requirement is not met. Expected data type: "
                                         "Fractional, Expected match: 100.0%. Observed: Only 99.5% of data "
                                         "is Fractional.")


def test_missing_and_extra_columns(rows, baseline):
    stats, constraints = baseline
    short = analyzer.dataset_statistics([r[:7] for r in rows[:300]], FEATURES)
    assert checks(analyzer.violations(short, stats, constraints)) == {("shell_weight", "missing_column_check")}
    wide = analyzer.dataset_statistics([[*r, "1"] for r in rows[:300]], FEATURES)
    assert checks(analyzer.violations(wide, stats, constraints)) == {("_c8", "extra_column_check")}


def test_distance_follows_deequ():
    """Deequ's numericalDistance: max |F1 - F2| over both samples' values (F = weight <= x / total), the
    robust one minus 1.8 * sqrt((n + m) / (n * m)), floored at 0; items at sketch level h weigh 2**h."""
    a = [(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]
    b = [(2.0, 1.0), (3.0, 1.0), (4.0, 1.0)]
    assert analyzer.numerical_distance(a, b, robust=False) == pytest.approx(1 / 3)
    assert analyzer.numerical_distance(a, b) == 0.0
    far = [(float(i), 1.0) for i in range(1000)]
    near = [(float(i) + 500, 1.0) for i in range(1000)]
    assert analyzer.numerical_distance(far, near) == pytest.approx(0.5 - 1.8 * math.sqrt(2000 / 1e6))
    sketch = {"data": [[1.0, 2.0], [3.0]]}  # 3.0 weighs 2
    assert analyzer.sketch_sample(sketch) == [(1.0, 1.0), (2.0, 1.0), (3.0, 2.0)]
    assert analyzer.numerical_distance(analyzer.sketch_sample(sketch), a, robust=False) == pytest.approx(2 / 3 - 2 / 4)
    assert analyzer.categorical_distance({"M": 50, "F": 50}, {"M": 80, "F": 20}, robust=False) == pytest.approx(0.3)
    compacted = analyzer.kll_sketch([float(i) for i in range(50_001)])
    assert sum(w for _, w in analyzer.sketch_sample(compacted)) == 50_001 and len(compacted["data"]) > 1


# model quality ------------------------------------------------------------------------------------
def test_regression_metrics_match_an_independent_computation():
    rng = random.Random(3)
    labels = [float(rng.randint(3, 20)) for _ in range(300)]
    predictions = [y + rng.gauss(0, 2) for y in labels]
    metrics = analyzer.regression_metrics(predictions, labels)
    errors = [p - y for p, y in zip(predictions, labels, strict=True)]
    mse = sum(e * e for e in errors) / len(errors)
    mean = sum(labels) / len(labels)
    r2 = 1 - sum(e * e for e in errors) / sum((y - mean) ** 2 for y in labels)
    assert metrics["mae"]["value"] == pytest.approx(sum(abs(e) for e in errors) / len(errors))
    assert metrics["mse"]["value"] == pytest.approx(mse)
    assert metrics["rmse"]["value"] == pytest.approx(math.sqrt(mse))
    assert metrics["r2"]["value"] == pytest.approx(r2)
    assert all(0 < m["standard_deviation"] < 1 for m in metrics.values())
    few = analyzer.regression_metrics(predictions[:50], labels[:50])
    assert few["rmse"]["standard_deviation"] == "NaN"  # AWS: deviations only from 200 samples


def test_an_rmse_above_the_baselined_threshold_is_a_violation():
    labels = [float(i % 17 + 3) for i in range(400)]
    good = analyzer.model_quality_statistics([y + (0.5 if i % 2 else -0.5) for i, y in enumerate(labels)], labels)
    constraints = analyzer.suggest_regression_constraints(good)
    assert constraints["regression_constraints"]["rmse"] == {"threshold": pytest.approx(0.5),
                                                             "comparison_operator": "GreaterThanThreshold"}
    assert constraints["regression_constraints"]["r2"]["comparison_operator"] == "LessThanThreshold"
    assert analyzer.model_quality_violations(good, constraints) == []
    worse = analyzer.model_quality_statistics([y + (2.0 if i % 2 else -2.0) for i, y in enumerate(labels)], labels)
    found = analyzer.model_quality_violations(worse, constraints)
    by_metric = {v["metric_name"]: v for v in found}
    assert set(by_metric) == {"mae", "mse", "rmse", "r2"}
    rmse = by_metric["rmse"]
    assert rmse["constraint_check_type"] == "GreaterThanThreshold"
    assert rmse["description"].startswith("Metric rmse with 2.0 +/- ")
    assert rmse["description"].endswith("was GreaterThanThreshold '0.5'")


def test_merge_joins_capture_and_ground_truth_by_inference_id():
    def capture(event_id: str, inference_id: str | None, output: str, content_type: str = "application/json") -> str:
        metadata = {"eventId": event_id, **({"inferenceId": inference_id} if inference_id else {})}
        return json.dumps({"captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "M,0.5,0.4,0.1,0.5,0.2,0.1,0.15",
                              "encoding": "CSV"},
            "endpointOutput": {"observedContentType": content_type, "mode": "OUTPUT",
                               "data": base64.b64encode(output.encode()).decode(), "encoding": "BASE64"}},
            "eventMetadata": metadata, "eventVersion": "0"})

    def truth(event_id: str, label: str) -> str:
        return json.dumps({"groundTruthData": {"data": label, "encoding": "CSV"},
                           "eventMetadata": {"eventId": event_id}, "eventVersion": "0"})

    captures = [capture("e1", "inf-1", '{"predictions": [{"rings": 9.5, "age": 11.0}]}'),
                capture("e2", "inf-2", '{"predictions": [{"rings": 7.25, "age": 8.75}]}'),
                capture("e3", None, '{"predictions": [{"rings": 12.0, "age": 13.5}]}'),  # falls back to eventId
                capture("e4", "inf-4", '{"predictions": [{"rings": 3.0, "age": 4.5}]}')]  # no ground truth
    truths = [truth("inf-2", "8"), truth("e3", "11"), truth("inf-1", "9"), truth("e2", "99")]
    assert analyzer.merge_ground_truth(captures, truths, "predictions[0].rings") == [(9.5, 9.0), (7.25, 8.0),
                                                                                     (12.0, 11.0)]
    csv_capture = [capture("e9", "inf-9", "10.5", "text/csv")]
    assert analyzer.merge_ground_truth(csv_capture, [truth("inf-9", "10")], "0") == [(10.5, 10.0)]


# main ---------------------------------------------------------------------------------------------
def test_main_baselines_then_monitors_data_quality(tmp_path, rows):
    dataset = tmp_path / "baseline_dataset_input"
    dataset.mkdir()
    (dataset / "train.csv").write_text(",".join(FEATURES) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    baseline_out = tmp_path / "baseline"
    env = {"dataset_format": json.dumps({"csv": {"header": True, "output_columns_position": "START"}}),
           "dataset_source": str(dataset), "output_path": str(baseline_out), "publish_cloudwatch_metrics": "Disabled"}
    assert analyzer.main(env) == 0
    written = {p.name for p in baseline_out.iterdir()}
    assert written == {"statistics.json", "constraints.json"}
    constraints = json.loads((baseline_out / "constraints.json").read_text())
    assert [f["name"] for f in constraints["features"]] == FEATURES

    drifted = [list(r) for r in random.Random(11).sample(rows, 400)]
    for row in drifted:
        row[1] = str(round(float(row[1]) * 1.3, 4))
    capture = write_capture(tmp_path / "endpoint", drifted)
    report = tmp_path / "report"
    env = {"dataset_format": json.dumps({"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput",
                                                                                        "endpointOutput"]}}),
           "dataset_source": str(capture), "output_path": str(report), "publish_cloudwatch_metrics": "Enabled",
           "baseline_constraints": str(baseline_out / "constraints.json"),
           "baseline_statistics": str(baseline_out / "statistics.json"),
           "sagemaker_endpoint_name": "abalone", "sagemaker_monitoring_schedule_name": "abalone-data-quality",
           "start_time": "2026-12-02T12:00:00Z", "end_time": "2026-12-02T13:00:00Z"}
    assert analyzer.main(env) == 0
    assert {p.name for p in report.iterdir()} == {"statistics.json", "constraint_violations.json",
                                                  "cloudwatch_metrics.json"}
    statistics_ = json.loads((report / "statistics.json").read_text())
    assert statistics_["dataset"]["item_count"] == 400 and [f["name"] for f in statistics_["features"]] == FEATURES
    found = json.loads((report / "constraint_violations.json").read_text())["violations"]
    assert checks(found) == {("length", "baseline_drift_check")}
    metrics = json.loads((report / "cloudwatch_metrics.json").read_text())
    assert metrics["Namespace"] == "/aws/sagemaker/Endpoints/data-metric"
    values = {m["MetricName"]: m for m in metrics["MetricData"]}
    assert values["feature_baseline_drift_length"]["Value"] > 0.1
    assert values["feature_baseline_drift_height"]["Value"] == 0.0
    assert values["feature_non_null_sex"]["Value"] == 1.0
    assert values["feature_baseline_drift_length"]["Dimensions"] == [
        {"Name": "Endpoint", "Value": "abalone"}, {"Name": "MonitoringSchedule", "Value": "abalone-data-quality"}]


def test_main_baselines_then_monitors_model_quality(tmp_path):
    rng = random.Random(5)
    labels = [rng.randint(3, 20) for _ in range(300)]
    dataset = tmp_path / "baseline_dataset_input"
    dataset.mkdir()
    (dataset / "predictions.csv").write_text("prediction,label\n" + "".join(
        f"{y + rng.choice((-1, 1)) * 0.5},{y}\n" for y in labels))
    baseline_out = tmp_path / "baseline"
    env = {"dataset_format": json.dumps({"csv": {"header": True}}), "dataset_source": str(dataset),
           "output_path": str(baseline_out), "analysis_type": "MODEL_QUALITY", "problem_type": "Regression",
           "inference_attribute": "prediction", "ground_truth_attribute": "label"}
    assert analyzer.main(env) == 0
    stats = json.loads((baseline_out / "statistics.json").read_text())
    assert stats["regression_metrics"]["rmse"]["value"] == pytest.approx(0.5)
    assert stats["dataset"]["item_count"] == 300

    predictions = [json.dumps({"predictions": [{"rings": y + 3.0, "age": y + 4.5}]}) for y in labels[:250]]
    capture = tmp_path / "endpoint" / "abalone" / "AllTraffic" / "2026" / "12" / "02" / "13"
    capture.mkdir(parents=True)
    (capture / "capture.jsonl").write_text("".join(json.dumps({
        "captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "encoding": "CSV",
                                          "data": "M,0.5,0.4,0.1,0.5,0.2,0.1,0.15"},
                        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                           "encoding": "JSON", "data": body}},
        "eventMetadata": {"eventId": f"event-{i}", "inferenceId": f"inf-{i}", "inferenceTime": "2026-12-02T13:00:00Z"},
        "eventVersion": "0"}) + "\n" for i, body in enumerate(predictions)))
    truth = tmp_path / "groundtruth" / "2026" / "12" / "02" / "13"
    truth.mkdir(parents=True)
    (truth / "labels.jsonl").write_text("".join(json.dumps({
        "groundTruthData": {"data": str(y), "encoding": "CSV"}, "eventMetadata": {"eventId": f"inf-{i}"},
        "eventVersion": "0"}) + "\n" for i, y in enumerate(labels[:200])))
    report = tmp_path / "report"
    env = {"dataset_format": json.dumps({"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput",
                                                                                        "endpointOutput"]}}),
           "dataset_source": str(tmp_path / "endpoint"), "output_path": str(report),
           "analysis_type": "MODEL_QUALITY", "problem_type": "Regression", "inference_attribute": "predictions[0].rings",
           "ground_truth_source": str(tmp_path / "groundtruth"), "publish_cloudwatch_metrics": "Enabled",
           "baseline_constraints": str(baseline_out / "constraints.json"), "sagemaker_endpoint_name": "abalone",
           "sagemaker_monitoring_schedule_name": "abalone-model-quality"}
    assert analyzer.main(env) == 0
    current = json.loads((report / "statistics.json").read_text())
    assert current["dataset"]["item_count"] == 200  # the inferences with ground truth
    assert current["regression_metrics"]["rmse"]["value"] == pytest.approx(3.0)
    found = json.loads((report / "constraint_violations.json").read_text())["violations"]
    assert {"constraint_check_type": "GreaterThanThreshold", "metric_name": "rmse"}.items() <= next(
        v for v in found if v["metric_name"] == "rmse").items()
    metrics = json.loads((report / "cloudwatch_metrics.json").read_text())
    assert metrics["Namespace"] == "/aws/sagemaker/Endpoints/model-metrics"
    assert {m["MetricName"]: m["Value"] for m in metrics["MetricData"]}["rmse"] == pytest.approx(3.0)


def test_main_fails_with_a_reason_naming_the_file(tmp_path, capsys):
    failure = tmp_path / "failure"
    env = {"dataset_format": json.dumps({"csv": {"header": True}}), "dataset_source": str(tmp_path / "nowhere"),
           "output_path": str(tmp_path / "out"), "failure_path": str(failure)}
    assert analyzer.main(env) == 1
    assert "nowhere does not exist" in capsys.readouterr().err
    assert "nowhere does not exist" in failure.read_text()
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    env.update(dataset_source=str(tmp_path / "data.csv"), baseline_constraints=str(tmp_path / "constraints.json"))
    assert analyzer.main(env) == 1
    assert "baseline_constraints file" in failure.read_text() and "constraints.json" in failure.read_text()


def test_runs_as_a_module_with_the_failure_under_opt_ml_root(tmp_path):
    (tmp_path / "data.csv").write_text("length,sex\n0.5,M\n0.6,F\n")
    env = {"dataset_format": json.dumps({"csv": {"header": True}}), "dataset_source": str(tmp_path / "data.csv"),
           "output_path": str(tmp_path / "out"), "OPT_ML_ROOT": str(tmp_path / "ml"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "mlops_core.local.analyzer"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "constraints.json").read_text())["features"][0]["name"] == "length"
    env["dataset_format"] = "{not json"
    done = subprocess.run([sys.executable, "-m", "mlops_core.local.analyzer"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "dataset_format is not JSON" in done.stderr
    assert "dataset_format is not JSON" in (tmp_path / "ml" / "output" / "failure").read_text()


def test_json_payloads_and_output_columns_at_start(tmp_path):
    names = ["prediction", "sex", "length"]
    rows = analyzer.payload_rows({"observedContentType": "application/json", "encoding": "JSON",
                                  "data": json.dumps({"instances": [["M", 0.5], {"length": 0.4, "sex": "F"}]})},
                                 names[1:])
    assert rows == [["M", "0.5"], ["F", "0.4"]]
    write_capture(tmp_path, [["M", "0.5"], ["F", "0.4"]], outputs=["9.5", "7"])
    start = analyzer._capture_dataset(str(tmp_path), ["endpointInput", "endpointOutput"], names, "START")
    assert start == [["9.5", "M", "0.5"], ["7", "F", "0.4"]]  # the baseline has a column for the output
    assert analyzer._capture_dataset(str(tmp_path), ["endpointInput", "endpointOutput"], names[1:], "START") == [
        ["M", "0.5"], ["F", "0.4"]]  # it has not: the inputs alone
