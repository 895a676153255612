"""The shared test plumbing itself: recorder counts calls, the embedded server answers."""

import boto3

from mlops_core.aws import Clients, is_not_found
from mlops_core.s3 import list_keys, parse_s3_uri, read_json, s3_uri, write_json


def test_recorder_separates_reads_from_mutations(aws, recorder):
    aws.s3.create_bucket(Bucket="bkt")
    aws.s3.list_buckets()
    assert recorder.calls == [("s3", "CreateBucket"), ("s3", "ListBuckets")]
    assert recorder.mutating == [("s3", "CreateBucket")]


def test_s3_helpers_round_trip(aws):
    aws.s3.create_bucket(Bucket="bkt")
    write_json(s3_uri("bkt", "abalone", "e1", "evaluation.json"), {"rmse": 2.0}, clients=aws)
    assert read_json("s3://bkt/abalone/e1/evaluation.json", clients=aws) == {"rmse": 2.0}
    assert [o["Key"] for o in list_keys("s3://bkt/abalone/", clients=aws)] == ["abalone/e1/evaluation.json"]
    assert parse_s3_uri("s3://bkt/a/b.csv") == ("bkt", "a/b.csv")


def test_not_found_detection(aws):
    try:
        aws.sagemaker.describe_training_job(TrainingJobName="missing")
    except Exception as exc:  # noqa: BLE001
        assert is_not_found(exc)
    else:
        raise AssertionError("describe of a missing job should fail")


def test_embedded_server_serves_boto3_and_resets(local_env, local_aws):
    s3 = Clients(boto3.Session()).s3
    assert s3.meta.endpoint_url == local_aws.endpoint_url
    s3.create_bucket(Bucket="kept")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["kept"]
    local_aws.reset()
    assert s3.list_buckets()["Buckets"] == []
