"""A client no one here wrote drives the embedded AWS: the AWS CLI (the ``awscli`` package), pointed at the
gateway by AWS_ENDPOINT_URL alone, runs the container's preprocess as a processing job, trains, deploys and
invokes an endpoint whose data capture lands in S3."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_core.aws import Clients
from mlops_core.local.runtime import pid_alive
from mlops_core.project.release import Compute, Release
from tests.fakes import IMAGE_URI, ROLE_ARN
from workflows.data import SHIPPED

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "cli-bucket"
AWS_CLI = shutil.which("aws", path=str(Path(sys.executable).parent))


@pytest.fixture
def cli(local_env, tmp_path):
    """Runs ``aws ARGS`` against the embedded AWS; returns parsed JSON output (or the text)."""
    assert AWS_CLI, "the awscli package (dev extra) must be installed in this virtualenv"
    env = {**os.environ, **local_env, "AWS_PAGER": "", "AWS_CONFIG_FILE": str(tmp_path / "no-config")}

    def run(*args: str) -> object:
        result = subprocess.run([AWS_CLI, *args, "--output", "json"], env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, f"aws {' '.join(args)}: {result.stderr}"
        try:
            return json.loads(result.stdout) if result.stdout.strip() else None
        except ValueError:  # the high-level s3 commands print text
            return result.stdout

    return run


def wait_status(cli, command: str, name_flag: str, name: str, field: str, done: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        described = cli("sagemaker", command, name_flag, name)
        if described[field] == done:
            return described
        assert described[field] in ("InProgress", "Creating", "Updating"), described
        assert time.monotonic() < deadline, f"{name} still {described[field]} after {timeout} s"
        time.sleep(1)


def request_file(tmp_path: Path, name: str, request: dict) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(request))
    return f"file://{path}"


def test_the_aws_cli_runs_the_container_and_invokes_a_local_endpoint(cli, tmp_path):
    data = SHIPPED  # the real UCI data, shipped with the package
    cli("s3api", "create-bucket", "--bucket", BUCKET)
    cli("s3", "cp", str(data), f"s3://{BUCKET}/abalone/data/current/abalone.csv")

    release = Release(BUCKET, "abalone", "cli")
    preprocess = release.preprocess_spec(IMAGE_URI, ROLE_ARN, Compute()).request()
    cli("sagemaker", "create-processing-job", "--cli-input-json", request_file(tmp_path, "preprocess", preprocess))
    done = wait_status(cli, "describe-processing-job", "--processing-job-name", preprocess["ProcessingJobName"],
                       "ProcessingJobStatus", "Completed")
    assert done["ProcessingEndTime"] >= done["ProcessingStartTime"]
    listed = cli("s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix", "abalone/cli/preprocess/")
    keys = {item["Key"].removeprefix("abalone/cli/preprocess/") for item in listed["Contents"]}
    assert {"training/training.csv", "training/validation.csv", "testing/testing.csv"} <= keys

    train = release.train_spec(IMAGE_URI, ROLE_ARN, Compute(),
                               hyperparameters={"epochs": 2, "networks": 1}).request()
    cli("sagemaker", "create-training-job", "--cli-input-json", request_file(tmp_path, "train", train))
    trained = wait_status(cli, "describe-training-job", "--training-job-name", train["TrainingJobName"],
                          "TrainingJobStatus", "Completed")
    model_data = trained["ModelArtifacts"]["S3ModelArtifacts"]

    cli("sagemaker", "create-model", "--model-name", "abalone-cli", "--execution-role-arn", ROLE_ARN,
        "--primary-container", json.dumps({"Image": IMAGE_URI, "ModelDataUrl": model_data}))
    capture = {"EnableCapture": True, "InitialSamplingPercentage": 100,
               "DestinationS3Uri": f"s3://{BUCKET}/abalone/data-capture",
               "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
               "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]}}
    cli("sagemaker", "create-endpoint-config", "--endpoint-config-name", "abalone-cli",
        "--production-variants", json.dumps([{"VariantName": "AllTraffic", "ModelName": "abalone-cli",
                                              "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]),
        "--data-capture-config", json.dumps(capture))
    cli("sagemaker", "create-endpoint", "--endpoint-name", "abalone-cli", "--endpoint-config-name", "abalone-cli")
    wait_status(cli, "describe-endpoint", "--endpoint-name", "abalone-cli", "EndpointStatus", "InService")

    row = tmp_path / "row.csv"
    row.write_text("M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15")
    answer = tmp_path / "answer.json"
    invoked = cli("sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "abalone-cli", "--content-type",
                  "text/csv", "--accept", "application/json", "--body", f"fileb://{row}", str(answer))
    assert invoked["InvokedProductionVariant"] == "AllTraffic"
    prediction = json.loads(answer.read_text())["predictions"][0]
    assert 1 <= prediction["rings"] <= 30 and prediction["age"] == pytest.approx(prediction["rings"] + 1.5)
    captured = cli("s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix", "abalone/data-capture/abalone-cli/")
    assert [item["Key"].endswith(".jsonl") for item in captured["Contents"]] == [True]
    cli("sagemaker", "delete-endpoint", "--endpoint-name", "abalone-cli")


def test_bin_local_aws_prints_its_endpoint_first_and_ctrl_c_stops_everything_it_started(tmp_path):
    from tests.test_local_runtime import FAKE_CONTAINER, training_request

    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    server = subprocess.Popen([str(ROOT / "bin" / "local-aws"), "--container", str(FAKE_CONTAINER), "--state",
                               str(tmp_path / "state")], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        first = server.stdout.readline().strip()
        assert first.startswith("AWS_ENDPOINT_URL=http://127.0.0.1:"), first
        clients = Clients(endpoint_url=first.split("=", 1)[1])
        clients.s3.create_bucket(Bucket="local-bucket")
        clients.s3.put_object(Bucket="local-bucket", Key="abalone/e1/preprocess/training/training.csv", Body=b"x\n")
        clients.sagemaker.create_training_job(**training_request("abalone-Train-long", sleep="60"))
        deadline = time.monotonic() + 60
        while clients.sagemaker.describe_training_job(TrainingJobName="abalone-Train-long")["SecondaryStatus"] \
                != "Training":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.2)
        record = json.loads((tmp_path / "state" / "runtime" / "training" / "abalone-Train-long.json").read_text())
        pids = [record["runner_pid"], record["container_pid"]]
        assert all(pid_alive(pid) for pid in pids)
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0, server.stderr.read()
    assert not [pid for pid in pids if pid_alive(pid)], "Ctrl-C must stop the job it started"
