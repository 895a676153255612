"""bin/ scripts on the local runtime: failures surface, a killed driver re-attaches, nothing is left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_core.aws import Clients
from mlops_core.local.runtime import pid_alive
from tests.fakes import IMAGE_URI, ROLE_ARN

REPO = Path(__file__).resolve().parents[1]
FAKE_CONTAINER = REPO / "tests" / "fake_container.py"
BUCKET = "release-bucket"
EXECUTION_ID = "e-local-1"


@pytest.fixture
def script_env(local_env, local_aws):
    """Environment for bin/ scripts: the embedded AWS running the fake container, and the release settings."""
    local_aws.gateway.container = str(FAKE_CONTAINER)
    env = {**os.environ, **local_env, "MODEL_NAME": "abalone", "BUCKET_NAME": BUCKET, "ROLE_ARN": ROLE_ARN,
           "IMAGE_URI": IMAGE_URI, "EXECUTION_ID": EXECUTION_ID}
    clients = Clients()
    clients.s3.create_bucket(Bucket=BUCKET)
    clients.s3.put_object(Bucket=BUCKET, Key="abalone/data/current/abalone.csv", Body=b"M,0.4,0.3,0.1,1,1,1,1,9\n")
    yield env
    pids = local_aws.processes()
    deadline = time.monotonic() + 15
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if pid_alive(p)], "a local job process outlived its test"


def build(step: str, env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "bin/build.py", step], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_a_job_failing_in_the_container_fails_the_step_with_its_reason(script_env, local_aws):
    local_aws.gateway.container_env = {"FAIL": "preprocess"}
    result = build("preprocess", script_env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("AlgorithmError: preprocess failed on purpose") == 1, "said once"
    assert "last log lines" in result.stderr and "] preprocess failed on purpose" in result.stderr  # CloudWatch
    described = Clients().sagemaker.describe_processing_job(ProcessingJobName=f"abalone-Preprocess-{EXECUTION_ID}")
    assert described["ProcessingJobStatus"] == "Failed"
    assert "AlgorithmError: preprocess failed on purpose" in described["FailureReason"]


def test_killing_the_driver_and_re_running_attaches_to_the_same_job(script_env, local_aws):
    assert build("preprocess", script_env).returncode == 0
    local_aws.gateway.container_env = {"FAKE_TRAIN_SECONDS": "6"}
    driver = subprocess.Popen([sys.executable, "bin/build.py", "train"], cwd=REPO, env=script_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    job = f"abalone-Train-{EXECUTION_ID}"
    state = local_aws.runtime
    deadline = time.monotonic() + 60
    while (state.read("training", job) or {}).get("secondary") != "Training" and time.monotonic() < deadline:
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    first_runner = state.read("training", job)["runner_pid"]
    assert pid_alive(first_runner), "the job must outlive the driver that started it"

    rerun = build("train", script_env)
    assert rerun.returncode == 0, rerun.stderr
    assert "attach" in rerun.stderr.lower()
    jobs = Clients().sagemaker.list_training_jobs()["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in jobs] == [job]
    record = state.read("training", job)
    assert record["status"] == "Completed" and record["runner_pid"] == first_runner


def small_abalone(path: Path, rows: int = 400) -> Path:
    """Abalone-shaped rows whose rings grow with the log of the shell weight: a short training beats the linear
    baseline of the default gate on them (it cannot bend)."""
    import math
    import random

    rng = random.Random(7)
    lines = []
    for _ in range(rows):
        sex = rng.choice("MFI")
        length = rng.uniform(0.2, 0.7)
        shell = length ** 3 * rng.uniform(0.8, 1.2)
        whole = shell * 3.5
        rings = max(1, round(3 + 6 * math.log(1 + 60 * shell) + rng.gauss(0, 0.5)))
        lines.append(f"{sex},{length:.3f},{length * 0.8:.3f},{length * 0.25:.3f},{whole:.4f},{whole * 0.4:.4f},"
                     f"{whole * 0.2:.4f},{shell:.4f},{rings}")
    path.write_text("\n".join(lines) + "\n")
    return path


def demo_args(tmp_path: Path, *extra: str):
    from workflows.local_release import parser

    return parser().parse_args(["--data", str(small_abalone(tmp_path / "abalone.data")), "--out",
                                str(tmp_path / "out"), "--epochs", "20", "--samples", "3",
                                *extra])


def test_the_local_release_runs_end_to_end_and_a_kept_project_releases_again(tmp_path, monkeypatch):
    from workflows.local_release import run_release

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    lines: list[str] = []
    args = demo_args(tmp_path, "--state", str(tmp_path / "state"))
    summary = run_release(args, echo=lines.append)
    assert summary["ok"], "\n".join(lines)
    assert [s["stage"] for s in summary["stages"]] == ["Preprocess", "Train", "Evaluate", "Deploy"]
    assert all(s["exit_code"] == 0 for s in summary["stages"])
    first = summary["releases"][0]
    assert first["outcome"] == "deployed" and first["registered_version"]["approval"] == "Approved"
    assert first["rows"]["rows"] == 400 and first["gate"].endswith("PASS") and "linear baseline" in first["gate"]
    assert summary["endpoint"]["status"] == "InService"
    assert summary["data_capture"] == {"requests_sent": 3, "records": 3}
    assert all(p["prediction"]["predictions"][0]["age"] == pytest.approx(p["prediction"]["predictions"][0]["rings"] + 1.5)
               for p in summary["predictions"])
    assert (tmp_path / "out" / "summary.json").exists()
    evaluation = tmp_path / "out" / "evaluation" / first["execution_id"]
    assert {p.name for p in evaluation.iterdir()} == {"evaluation.json", "predictions.csv", "prediction-vs-actual.png"}
    assert f"evaluation outputs (evaluation.json, prediction-vs-actual.png, predictions.csv) in {evaluation}" in lines
    assert "RELEASE OK" in lines
    assert "" not in lines[:lines.index("=== release summary ===") - 1], "no blank progress lines"
    endpoints = json.loads((tmp_path / "out" / "summary.json").read_text())["endpoint"]
    assert endpoints["name"] == "abalone"
    assert not list((tmp_path / "state" / "runtime" / "endpoints").glob("*.json")), "the endpoint must be deleted"

    again = run_release(demo_args(tmp_path, "--state", str(tmp_path / "state"), "--survey-rows", "60"),
                        echo=lines.append)
    assert again["ok"], "\n".join(lines)
    second, retrained = again["releases"]
    assert second["execution_id"] != first["execution_id"]
    assert second["registered_version"]["version"] == 2, "the kept project's registry must carry over"
    # continuous training: the survey file's good rows merged, its 2 bad rows quarantined, a release started
    ingest = again["continuous_training"]
    assert ingest["dataset_version"] == 1 and ingest["rows"] == 460
    assert [(f["added"], f["rejected"]) for f in ingest["files"]] == [(60, 2)]
    assert retrained["execution_id"] == ingest["release"] and retrained["rows"]["rows"] == 460
    assert "latest approved" in retrained["gate"], "the retrained release is compared with the previous one"
    assert retrained["outcome"] in ("deployed", "rejected")


def test_the_demo_monitoring_round_names_the_drifted_features_and_the_alarm_retrains(tmp_path, monkeypatch):
    from workflows.local_release import run_release

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    lines: list[str] = []
    summary = run_release(demo_args(tmp_path, "--monitor", "--monitor-rows", "200"), echo=lines.append)
    assert summary["ok"], "\n".join(lines)
    normal, drifted = summary["monitoring"]["rounds"]
    assert normal["data_quality"] == {"status": "Completed", "violations": []}
    assert normal["model_quality"]["status"] == "Completed" and 0 < normal["model_quality"]["rmse"] < 4
    assert normal["alarms"] == {"abalone-feature-drift": "OK", "abalone-model-quality-rmse": "OK"}
    assert drifted["data_quality"]["status"] == "CompletedWithViolations"
    assert {v["feature"] for v in drifted["data_quality"]["violations"]} == {"length", "diameter"}
    assert drifted["alarms"]["abalone-feature-drift"] == "ALARM"
    retraining = summary["monitoring"]["retraining"]
    assert retraining and summary["releases"][-1]["execution_id"] == retraining
    assert summary["releases"][-1]["outcome"] in ("deployed", "rejected")
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())["monitoring"]
    assert saved["rounds"][1]["data_quality"]["violations"][0]["check"] == "baseline_drift_check"
    assert any(line.startswith("  violation length: baseline_drift_check") for line in lines)
    assert any(line.startswith("monitoring drifted: data quality CompletedWithViolations (diameter, length)")
               for line in lines)
