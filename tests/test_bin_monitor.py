"""bin/monitor.py on the test kit: configuration errors before any call, ground truth uploaded, schedules
created once, status listing violations with exit 1 when the newest execution has any."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from mlops_core.errors import AwsResourceError, ConfigError
from mlops_core.project import Project
from mlops_core.project import monitoring as plan
from mlops_core.s3 import ensure_bucket, write_json
from mlops_core.sagemaker.monitoring import DATA_QUALITY, MODEL_QUALITY, BaselineSpec, start_job

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--project", "abalone", "--aws-region", "us-east-1"]


@pytest.fixture
def monitor():
    spec = importlib.util.spec_from_file_location("monitor", ROOT / "bin" / "monitor.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def project(aws) -> Project:
    project = Project(name="abalone", account_id="123456789012", region="us-east-1", tls_only=False)
    ensure_bucket(project.bucket, tls_only=False, clients=aws)
    return project


def write_baselines(project: Project, aws) -> None:
    for kind in (DATA_QUALITY, MODEL_QUALITY):
        for name in ("constraints.json", "statistics.json"):
            write_json(f"{plan.baseline_uri(project, kind)}/{name}", {}, clients=aws)


def test_bad_input_is_refused_before_any_call(monitor, aws, recorder, tmp_path, monkeypatch):
    monkeypatch.delenv("EXECUTION_ID", raising=False)
    with pytest.raises(ConfigError, match="--execution-id"):
        monitor.main([*ARGS, "baseline"], clients=aws)
    labels = tmp_path / "labels.csv"
    labels.write_text("inference_id,rings\nnormal-1,9\nnormal-2,nine\n")
    with pytest.raises(ConfigError, match="line 3: expected 'inference_id,rings'"):
        monitor.main([*ARGS, "ground-truth", "--labels", str(labels)], clients=aws)
    with pytest.raises(ConfigError, match="no such file"):
        monitor.main([*ARGS, "ground-truth", "--labels", str(tmp_path / "missing.csv")], clients=aws)
    assert recorder.calls == []


def test_ground_truth_is_uploaded_keyed_by_inference_id(monitor, aws, project, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("inference_id,rings\nnormal-1,9\nnormal-2,11\n")
    assert monitor.main([*ARGS, "ground-truth", "--labels", str(labels)], clients=aws) == 0
    assert "2 ground-truth labels -> s3://abalone-123456789012-us-east-1/abalone/monitoring/ground-truth/" in (
        capsys.readouterr().out)
    (key,) = [o["Key"] for o in aws.s3.list_objects_v2(Bucket=project.bucket, Prefix="abalone/monitoring/")["Contents"]]
    records = [json.loads(line) for line in aws.s3.get_object(Bucket=project.bucket, Key=key)["Body"].read().splitlines()]
    assert [(r["eventMetadata"]["eventId"], r["groundTruthData"]["data"]) for r in records] == [
        ("normal-1", "9"), ("normal-2", "11")]


def test_schedules_need_their_baselines_then_are_created_once(monitor, aws, project, recorder, capsys,
                                                              monitoring_schedules):
    with pytest.raises(AwsResourceError, match="bin/monitor.py baseline"):
        monitor.main([*ARGS, "schedule"], clients=aws)
    write_baselines(project, aws)
    assert monitor.main([*ARGS, "schedule"], clients=aws) == 0
    assert capsys.readouterr().out.splitlines() == ["create             monitoring schedule abalone-data-quality",
                                                    "create             monitoring schedule abalone-model-quality"]
    recorder.clear()
    assert monitor.main([*ARGS, "schedule", "--cron", "cron(0 * ? * * *)"], clients=aws) == 0
    assert recorder.names() == []
    assert set(monitoring_schedules.schedules) == {"abalone-data-quality", "abalone-model-quality"}


def test_status_lists_violations_and_fails_when_the_newest_execution_has_them(monitor, aws, project, capsys,
                                                                              monitoring_schedules, monkeypatch):
    write_baselines(project, aws)
    monitor.main([*ARGS, "schedule"], clients=aws)
    monitoring_schedules.add_execution("abalone-model-quality", "Completed")
    monitoring_schedules.add_execution("abalone-data-quality", "Completed")
    assert monitor.main([*ARGS, "status"], clients=aws) == 0
    report = f"s3://{project.bucket}/abalone/monitoring/reports/abalone/abalone-data-quality/2026/12/02/14"
    job = BaselineSpec(name="abalone-data-quality-20261202140000", role_arn=project.role_arn("sagemaker"),
                       region="us-east-1", dataset_s3_uri="s3://x/in", output_s3_uri=report).job()
    write_json(f"{report}/constraint_violations.json", {"violations": [
        {"feature_name": "length", "constraint_check_type": "baseline_drift_check",
         "description": "Baseline drift distance: 0.33 exceeds threshold: 0.1"}]}, clients=aws)
    monitoring_schedules.add_execution("abalone-data-quality", "CompletedWithViolations",
                                       processing_job_arn=start_job(job, clients=aws).arn)
    capsys.readouterr()
    assert monitor.main([*ARGS, "status"], clients=aws) == 1
    out = capsys.readouterr().out
    assert "abalone-data-quality: 2 recent execution(s)" in out
    assert "    length: baseline_drift_check: Baseline drift distance: 0.33 exceeds threshold: 0.1" in out
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(ConfigError, match="--run-now needs the embedded AWS"):
        monitor.main([*ARGS, "status", "--run-now"], clients=aws)
