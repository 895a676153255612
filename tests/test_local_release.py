"""bin/ scripts on the local runtime: failures surface, a killed driver re-attaches, nothing is left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_core.aws import Clients
from mlops_core.local.runtime import LocalState, pid_alive
from tests.fakes import IMAGE_URI, ROLE_ARN

REPO = Path(__file__).resolve().parents[1]
FAKE_CONTAINER = REPO / "tests" / "fake_container.py"
BUCKET = "release-bucket"
EXECUTION_ID = "e-local-1"


@pytest.fixture
def script_env(server_env, tmp_path):
    """Environment for bin/ scripts: moto's server, the local runtime with the fake container, settings."""
    env = {**os.environ, **server_env, "MLOPS_LOCAL_RUNTIME": str(tmp_path / "runtime"),
           "MLOPS_LOCAL_CONTAINER": str(FAKE_CONTAINER), "MODEL_NAME": "abalone", "BUCKET_NAME": BUCKET,
           "ROLE_ARN": ROLE_ARN, "IMAGE_URI": IMAGE_URI, "EXECUTION_ID": EXECUTION_ID}
    clients = Clients()
    clients.s3.create_bucket(Bucket=BUCKET)
    clients.s3.put_object(Bucket=BUCKET, Key="abalone/data/current/abalone.csv", Body=b"M,0.4,0.3,0.1,1,1,1,1,9\n")
    yield env
    state = LocalState(tmp_path / "runtime")
    pids = [(state.read(kind, p.stem) or {}).get(key) for kind in ("processing", "training")
            for p in (tmp_path / "runtime" / kind).glob("*.json") for key in ("runner_pid", "container_pid")]
    deadline = time.monotonic() + 15
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if pid_alive(p)], "a local job process outlived its test"


def build(step: str, env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "bin/build.py", step], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_a_job_failing_in_the_container_fails_the_step_with_its_reason(script_env):
    result = build("preprocess", {**script_env, "FAIL": "preprocess"})
    assert result.returncode == 1, result.stderr
    assert "preprocess failed on purpose" in result.stderr
    local = Clients(local_runtime=script_env["MLOPS_LOCAL_RUNTIME"])
    described = local.sagemaker.describe_processing_job(ProcessingJobName=f"abalone-Preprocess-{EXECUTION_ID}")
    assert described["ProcessingJobStatus"] == "Failed"
    assert "AlgorithmError: preprocess failed on purpose" in described["FailureReason"]


def test_killing_the_driver_and_re_running_attaches_to_the_same_job(script_env, tmp_path):
    assert build("preprocess", script_env).returncode == 0
    slow = {**script_env, "FAKE_TRAIN_SECONDS": "6"}
    driver = subprocess.Popen([sys.executable, "bin/build.py", "train"], cwd=REPO, env=slow,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    job = f"abalone-Train-{EXECUTION_ID}"
    state = LocalState(tmp_path / "runtime")
    deadline = time.monotonic() + 60
    while (state.read("training", job) or {}).get("secondary") != "Training" and time.monotonic() < deadline:
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    first_runner = state.read("training", job)["runner_pid"]
    assert pid_alive(first_runner), "the job must outlive the driver that started it"

    rerun = build("train", slow)
    assert rerun.returncode == 0, rerun.stderr
    assert "attach" in rerun.stderr.lower()
    jobs = Clients().sagemaker.list_training_jobs()["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in jobs] == [job]
    record = state.read("training", job)
    assert record["status"] == "Completed" and record["runner_pid"] == first_runner
