import json

import pytest

from mlops_core.errors import QualityGateFailed
from mlops_core.gate import evaluate_gate, read_rmse
from mlops_core.s3 import write_json
from mlops_core.sagemaker.registry import APPROVED, PENDING, ensure_model_package_group, register_version
from tests.fakes import IMAGE_URI, evaluation_document

BUCKET = "abalone-bucket"


def evaluation(rmse, **kwargs):
    return evaluation_document(rmse, **kwargs)


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


@pytest.mark.parametrize("rmse, threshold, passed, summary", [
    (2.012, None, True, "RMSE 2.012 < linear baseline 2.400, < training mean 3.300: PASS"),
    (2.4, None, False, "RMSE 2.400 >= linear baseline 2.400, < training mean 3.300: FAIL"),
    (2.012, 2.1, True, "RMSE 2.012 < linear baseline 2.400, < training mean 3.300, <= threshold 2.100: PASS"),
    (2.3, 2.1, False, "RMSE 2.300 < linear baseline 2.400, < training mean 3.300, > threshold 2.100: FAIL"),
])
def test_the_baselines_decide_and_a_threshold_is_an_option(bucket, rmse, threshold, passed, summary):
    result = evaluate_gate(put(bucket, "e1", evaluation(rmse)), threshold=threshold, clients=bucket)
    assert (result.passed, result.rmse, result.summary) == (passed, rmse, summary)


def test_a_model_worse_than_the_training_mean_fails_even_when_it_beats_a_bad_linear_baseline(bucket):
    result = evaluate_gate(put(bucket, "e1", evaluation(3.4, linear=3.6, mean=3.3)), clients=bucket)
    assert not result.passed and ">= training mean 3.300" in result.summary


def test_the_latest_approved_version_allows_its_successor_limit(bucket):
    approve(bucket, "e0", 1.9)  # successor limit 1.95
    approve(bucket, "e-pending", 1.5, approval=PENDING)  # not approved: no baseline
    within = evaluate_gate(put(bucket, "e1", evaluation(1.94)), compare_to_latest_approved=True,
                           model_package_group="abalone", clients=bucket)
    assert within.passed and within.approved.rmse == 1.9 and within.approved_version.endswith("/1")
    assert within.summary.endswith("<= 1.950 allowed by the latest approved 1.900: PASS")
    worse = evaluate_gate(put(bucket, "e2", evaluation(2.0)), compare_to_latest_approved=True,
                          model_package_group="abalone", clients=bucket)
    assert not worse.passed
    assert worse.summary == ("RMSE 2.000 < linear baseline 2.400, < training mean 3.300, > 1.950 allowed by the "
                             "latest approved 1.900: FAIL")


def test_without_any_approved_version_the_baselines_decide(bucket):
    ensure_model_package_group("abalone", clients=bucket)
    result = evaluate_gate(put(bucket, "e1", evaluation(2.0)), compare_to_latest_approved=True,
                           model_package_group="abalone", clients=bucket)
    assert result.passed and result.approved is None


def test_the_release_itself_is_no_baseline_on_a_rerun(bucket):
    approve(bucket, "e1", 2.0)
    result = evaluate_gate(f"s3://{BUCKET}/abalone/e1/evaluation/evaluation.json",
                           compare_to_latest_approved=True, model_package_group="abalone", clients=bucket)
    assert result.passed and result.approved is None


def test_an_evaluation_without_baselines_needs_a_threshold(bucket):
    old = {"regression_metrics": {"rmse": {"value": 2.0}}}
    with pytest.raises(QualityGateFailed, match="has no baselines.*re-run the evaluate step.*THRESHOLD"):
        evaluate_gate(put(bucket, "e1", old), clients=bucket)
    assert evaluate_gate(put(bucket, "e1", old), threshold=2.1, clients=bucket).passed


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
        evaluate_gate("s3://b/k", compare_to_latest_approved=True, clients=aws)
    assert recorder.calls == []
