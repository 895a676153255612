"""bin/build.py, bin/deploy.py and examples/release.py as subprocesses against moto's server.

moto marks jobs Completed at once and runs no container, so the tests write evaluation.json where the
evaluate job would; a failed job is made by marking it Failed in moto's backend, which the threaded
server shares with this process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto.backends import get_backend

from tests.fakes import evaluation_document

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BUCKET, MODEL, EXECUTION = "abalone-bucket", "abalone", "e1"
SETTINGS = {"MODEL_NAME": MODEL, "BUCKET_NAME": BUCKET, "EXECUTION_ID": EXECUTION,
            "ROLE_ARN": "arn:aws:iam::123456789012:role/abalone-sagemaker",
            "IMAGE_URI": "123456789012.dkr.ecr.us-east-1.amazonaws.com/abalone", "EPOCHS": "3"}


@pytest.fixture
def env(server_env):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"{MODEL}/data/current/abalone.csv",
                  Body=b"M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\n")
    return {**os.environ, **server_env, **SETTINGS, "LOG_LEVEL": "INFO"}


def run(script, *args, env, **overrides):
    environment = {k: v for k, v in {**env, **overrides}.items() if v is not None}
    return subprocess.run([sys.executable, f"{script}", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=120)


def backend():
    return get_backend("sagemaker")["123456789012"]["us-east-1"]


def write_evaluation(rmse, execution_id=EXECUTION):
    report = evaluation_document(rmse)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"{MODEL}/{execution_id}/evaluation/evaluation.json",
                                  Body=json.dumps(report).encode())


@pytest.mark.parametrize("script, expected", [("bin/build.py", "--retry-failed"), ("bin/deploy.py", "--latest-approved")])
def test_help(script, expected):
    result = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and expected in result.stdout and "EXECUTION_ID" in result.stdout


@pytest.mark.parametrize("script, args, overrides, message", [
    ("bin/build.py", ["train"], {"BUCKET_NAME": None}, "BUCKET_NAME is not set"),
    ("bin/build.py", ["train"], {"THRESHOLD": "-2"}, "THRESHOLD='-2' is malformed"),
    ("bin/build.py", ["train", "--image-uri", "not an image"], {}, "IMAGE_URI='not an image' is malformed"),
    ("bin/build.py", ["train"], {"EXECUTION_ID": None}, "EXECUTION_ID is not set"),
    ("bin/deploy.py", [], {"ROLE_ARN": "role"}, "ROLE_ARN='role' is malformed"),
])
def test_configuration_errors_exit_2(env, script, args, overrides, message):
    result = run(script, *args, env=env, **overrides)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not backend().training_jobs  # nothing was started


def test_steps_run_and_a_second_run_starts_no_new_job(env, tmp_path):
    assert run("bin/build.py", "preprocess", env=env).returncode == 0
    job = backend().processing_jobs["abalone-Preprocess-e1"]
    again = run("bin/build.py", "preprocess", env=env)
    assert again.returncode == 0 and "job_reused" in again.stderr
    assert backend().processing_jobs["abalone-Preprocess-e1"] is job  # moto replaces the job on every create

    assert run("bin/build.py", "train", env=env).returncode == 0
    training = backend().training_jobs["abalone-Train-e1"]
    assert training.hyper_parameters == {"epochs": "3", "batch_size": "64"}
    assert run("bin/build.py", "train", env=env).returncode == 0
    assert backend().training_jobs["abalone-Train-e1"] is training

    write_evaluation(2.012)
    summary = tmp_path / "summary.txt"
    result = run("bin/build.py", "evaluate", "--summary-file", str(summary), env=env)
    assert result.returncode == 0, result.stderr
    assert summary.read_text() == "RMSE 2.012 < linear baseline 2.400, < training mean 3.300: PASS\n"
    evaluate = backend().processing_jobs["abalone-Evaluate-e1"]
    model_input = evaluate.processing_inputs[0]["S3Input"]
    assert model_input["S3Uri"] == f"s3://{BUCKET}/{MODEL}/e1/model/abalone-Train-e1/output/model.tar.gz"


def test_failed_job_exits_1_and_retry_failed_starts_a_fresh_attempt(env):
    assert run("bin/build.py", "train", env=env).returncode == 0
    job = backend().training_jobs["abalone-Train-e1"]
    job.training_job_status, job.failure_reason = "Failed", "AlgorithmError: loss is NaN"
    failed = run("bin/build.py", "train", env=env)
    assert failed.returncode == 1
    assert "AlgorithmError: loss is NaN" in failed.stderr and "--retry-failed" in failed.stderr
    assert set(backend().training_jobs) == {"abalone-Train-e1"}
    retried = run("bin/build.py", "train", "--retry-failed", env=env)
    assert retried.returncode == 0, retried.stderr
    assert set(backend().training_jobs) == {"abalone-Train-e1", "abalone-Train-e1-r2"}
    job = backend().training_jobs["abalone-Train-e1-r2"]
    job.training_job_status, job.failure_reason = "Failed", "AlgorithmError: loss is NaN"
    pipeline_retry = run("bin/build.py", "train", env=env, RETRY_FAILED="true")  # as the buildspecs set it
    assert pipeline_retry.returncode == 0, pipeline_retry.stderr
    assert set(backend().training_jobs) == {"abalone-Train-e1", "abalone-Train-e1-r2", "abalone-Train-e1-r3"}
    write_evaluation(1.9)
    assert run("bin/build.py", "evaluate", env=env).returncode == 0
    model_input = backend().processing_jobs["abalone-Evaluate-e1"].processing_inputs[0]["S3Input"]
    assert "abalone-Train-e1-r3/output/model.tar.gz" in model_input["S3Uri"]  # the newest attempt's model


def test_preprocess_without_data_exits_1(env):
    boto3.client("s3").delete_object(Bucket=BUCKET, Key=f"{MODEL}/data/current/abalone.csv")
    result = run("bin/build.py", "preprocess", env=env)
    assert result.returncode == 1 and f"s3://{BUCKET}/{MODEL}/data/current/" in result.stderr


def test_preprocess_without_execution_id_starts_a_new_release(env):
    result = run("bin/build.py", "preprocess", env=env, EXECUTION_ID=None)
    assert result.returncode == 0 and "export EXECUTION_ID=" in result.stderr
    (name,) = backend().processing_jobs
    assert name.startswith("abalone-Preprocess-") and name != "abalone-Preprocess-e1"


def test_evaluate_before_train_exits_1(env):
    result = run("bin/build.py", "evaluate", env=env)
    assert result.returncode == 1 and "bin/build.py train" in result.stderr


def test_deploy_registers_deploys_with_capture_and_is_idempotent(env):
    assert run("bin/build.py", "train", env=env).returncode == 0
    write_evaluation(1.95)
    result = run("bin/deploy.py", env=env)
    assert result.returncode == 0, result.stderr
    sagemaker = backend()
    (package,) = sagemaker.model_packages.values()
    assert package.model_approval_status == "Approved"
    endpoint = sagemaker.endpoints["abalone"]
    capture = endpoint.data_capture_config
    assert capture["InitialSamplingPercentage"] == 100
    assert capture["DestinationS3Uri"] == f"s3://{BUCKET}/{MODEL}/data-capture"
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    assert endpoint.production_variants[0]["CurrentInstanceCount"] == 2

    again = run("bin/deploy.py", env=env)
    assert again.returncode == 0, again.stderr
    assert "endpoint abalone: unchanged" in again.stdout
    assert backend().endpoints["abalone"] is endpoint and len(backend().model_packages) == 1


def test_deploy_with_a_failing_gate_exits_1_and_rejects(env):
    assert run("bin/build.py", "train", env=env).returncode == 0
    write_evaluation(2.5)
    result = run("bin/deploy.py", env=env)
    assert result.returncode == 1 and "RMSE 2.500 >= linear baseline 2.400, < training mean 3.300: FAIL" in result.stderr
    (package,) = backend().model_packages.values()
    assert package.model_approval_status == "Rejected" and not backend().endpoints
    nothing = run("bin/deploy.py", "--latest-approved", env=env)
    assert nothing.returncode == 1 and "no approved version" in nothing.stderr


def test_example_release_runs_end_to_end(env):
    write_evaluation(1.8)
    result = run("examples/release.py", env=env)
    assert result.returncode == 0, result.stderr
    assert "RMSE 1.800 < linear baseline 2.400, < training mean 3.300: PASS" in result.stdout
    assert "abalone" in backend().endpoints
    assert set(backend().processing_jobs) == {"abalone-Preprocess-e1", "abalone-Evaluate-e1"}
