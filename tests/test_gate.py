import json

import pytest

from mlops_core.errors import QualityGateFailed
from mlops_core.gate import evaluate_gate, read_rmse
from mlops_core.s3 import write_json
from mlops_core.sagemaker.registry import APPROVED, PENDING, ensure_model_package_group, register_version
from tests.fakes import IMAGE_URI

BUCKET = "abalone-bucket"


def evaluation(rmse, std=0.1):
    return {"regression_metrics": {"rmse": {"value": rmse, "standard_deviation": std},
                                   "mse": {"value": rmse ** 2, "standard_deviation": std},
                                   "mae": {"value": rmse * 0.7, "standard_deviation": std},
                                   "r2": {"value": 0.5, "standard_deviation": std}}}


@pytest.fixture
def bucket(aws):
    aws.s3.create_bucket(Bucket=BUCKET)
    return aws


def put(aws, execution_id, report):
    uri = f"s3://{BUCKET}/abalone/{execution_id}/evaluation/evaluation.json"
    write_json(uri, report, clients=aws)
    return uri


def approve(aws, execution_id, rmse, approval=APPROVED):
    ensure_model_package_group("abalone", clients=aws)
    register_version("abalone", IMAGE_URI, f"s3://{BUCKET}/abalone/{execution_id}/model.tar.gz",
                     execution_id=execution_id, evaluation_uri=put(aws, execution_id, evaluation(rmse)),
                     approval=approval, clients=aws)


@pytest.mark.parametrize("rmse, passed, summary", [
    (2.012, True, "RMSE 2.012 <= threshold 2.100: PASS"),
    (2.1, True, "RMSE 2.100 <= threshold 2.100: PASS"),
    (2.3, False, "RMSE 2.300 > threshold 2.100: FAIL"),
])
def test_threshold(bucket, rmse, passed, summary):
    result = evaluate_gate(put(bucket, "e1", evaluation(rmse)), 2.1, clients=bucket)
    assert (result.passed, result.rmse, result.summary) == (passed, rmse, summary)


def test_must_beat_the_latest_approved_version(bucket):
    approve(bucket, "e0", 1.9)
    approve(bucket, "e-pending", 1.5, approval=PENDING)  # not approved: no baseline
    worse = evaluate_gate(put(bucket, "e1", evaluation(2.0)), 2.1, compare_to_latest_approved=True,
                          model_package_group="abalone", clients=bucket)
    assert not worse.passed and worse.baseline_rmse == 1.9 and worse.baseline_version.endswith("/1")
    assert worse.summary == "RMSE 2.000 <= threshold 2.100, >= latest approved 1.900: FAIL"
    better = evaluate_gate(put(bucket, "e2", evaluation(1.8)), 2.1, compare_to_latest_approved=True,
                           model_package_group="abalone", clients=bucket)
    assert better.passed and better.summary.endswith("< latest approved 1.900: PASS")


def test_without_any_approved_version_the_threshold_decides(bucket):
    ensure_model_package_group("abalone", clients=bucket)
    result = evaluate_gate(put(bucket, "e1", evaluation(2.0)), 2.1, compare_to_latest_approved=True,
                           model_package_group="abalone", clients=bucket)
    assert result.passed and result.baseline_rmse is None


def test_the_release_itself_is_no_baseline_on_a_rerun(bucket):
    approve(bucket, "e1", 2.0)
    result = evaluate_gate(f"s3://{BUCKET}/abalone/e1/evaluation/evaluation.json", 2.1,
                           compare_to_latest_approved=True, model_package_group="abalone", clients=bucket)
    assert result.passed and result.baseline_rmse is None


def test_missing_report_says_which_step_to_run(bucket):
    with pytest.raises(QualityGateFailed, match="no evaluation report at s3://abalone-bucket/abalone/e9.*evaluate"):
        read_rmse(f"s3://{BUCKET}/abalone/e9/evaluation/evaluation.json", clients=bucket)


@pytest.mark.parametrize("body", [b"not json", json.dumps({"metrics": {}}).encode(),
                                  json.dumps({"regression_metrics": {"rmse": {"value": "abc"}}}).encode(),
                                  json.dumps({"regression_metrics": {"rmse": {"value": -1}}}).encode()])
def test_malformed_report_fails_the_gate_with_the_expected_form(bucket, body):
    bucket.s3.put_object(Bucket=BUCKET, Key="bad/evaluation.json", Body=body)
    with pytest.raises(QualityGateFailed, match="s3://abalone-bucket/bad/evaluation.json"):
        read_rmse(f"s3://{BUCKET}/bad/evaluation.json", clients=bucket)


def test_compare_needs_a_group_and_says_so_before_any_call(aws, recorder):
    with pytest.raises(ValueError, match="model_package_group"):
        evaluate_gate("s3://b/k", 2.0, compare_to_latest_approved=True, clients=aws)
    assert recorder.calls == []
