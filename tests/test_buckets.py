"""Buckets: every bucket created is versioned, encrypted, private and TLS-only; drift is repaired in place;
emptying removes every version."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from mlops_core.aws import Clients
from mlops_core.ensure import Action
from mlops_core.errors import AwsResourceError
from mlops_core.project import Project, bootstrap
from mlops_core.s3 import PUBLIC_ACCESS_BLOCK, delete_bucket, empty_bucket, ensure_bucket

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def assert_secure(s3, bucket: str, kms_key: str | None = None) -> None:
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    default = rule["ApplyServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == ("aws:kms" if kms_key else "AES256")
    assert default.get("KMSMasterKeyID") == kms_key
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == PUBLIC_ACCESS_BLOCK
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}]
    assert deny and deny[0]["Principal"] == "*" and deny[0]["Action"] == "s3:*"
    assert set(deny[0]["Resource"]) == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}


def test_every_bucket_bootstrap_creates_is_secure(aws):
    for project in (Project(name="abalone", account_id="123456789012", region="us-east-1"),
                    Project(name="shop", account_id="123456789012", region="us-east-1", kms_key_arn=KEY)):
        bootstrap(project, clients=aws)
    buckets = [b["Name"] for b in aws.s3.list_buckets()["Buckets"]]
    assert sorted(buckets) == ["abalone-123456789012-us-east-1", "shop-123456789012-us-east-1"]
    assert_secure(aws.s3, "abalone-123456789012-us-east-1")
    assert_secure(aws.s3, "shop-123456789012-us-east-1", KEY)
    for bucket in buckets:
        assert aws.s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "project", "Value": bucket.split("-")[0]}]


def test_bucket_outside_us_east_1_gets_its_location():
    from moto import mock_aws

    with mock_aws():
        clients = Clients(boto3.Session(region_name="eu-west-1"))
        assert ensure_bucket("eu-bucket", clients=clients).action is Action.CREATED
        assert clients.s3.get_bucket_location(Bucket="eu-bucket")["LocationConstraint"] == "eu-west-1"
        assert_secure(clients.s3, "eu-bucket")


def test_drift_is_repaired_with_only_the_calls_needed(aws, recorder):
    ensure_bucket("data", tags={"project": "abalone"}, clients=aws)
    aws.s3.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Suspended"})
    aws.s3.delete_bucket_policy(Bucket="data")
    aws.s3.put_bucket_tagging(Bucket="data", Tagging={"TagSet": [{"Key": "owner", "Value": "ops"}]})
    recorder.clear()
    ensured = ensure_bucket("data", tags={"project": "abalone"}, clients=aws)
    assert ensured.action is Action.UPDATED and ensured.details["changes"] == ["versioning", "policy", "tags"]
    assert recorder.mutating == [("s3", "PutBucketVersioning"), ("s3", "PutBucketPolicy"), ("s3", "PutBucketTagging")]
    assert_secure(aws.s3, "data")
    tags = {t["Key"]: t["Value"] for t in aws.s3.get_bucket_tagging(Bucket="data")["TagSet"]}
    assert tags == {"owner": "ops", "project": "abalone"}, "other tags are kept"
    recorder.clear()
    assert ensure_bucket("data", tags={"project": "abalone"}, clients=aws).action is Action.UNCHANGED
    assert recorder.mutating == []


def test_switching_to_kms_updates_only_the_encryption(aws, recorder):
    ensure_bucket("data", clients=aws)
    recorder.clear()
    ensured = ensure_bucket("data", kms_key_arn=KEY, clients=aws)
    assert ensured.details["changes"] == ["encryption"]
    assert recorder.mutating == [("s3", "PutBucketEncryption")]
    assert_secure(aws.s3, "data", KEY)


def test_dry_run_reports_without_changing(aws, recorder):
    assert ensure_bucket("data", dry_run=True, clients=aws).action is Action.CREATED
    assert recorder.mutating == []
    assert aws.s3.list_buckets()["Buckets"] == []


def test_moto_ignores_the_tls_condition_so_tls_only_can_be_switched_off(aws):
    # moto's bucket policy check ignores conditions: the TLS-only deny denies every object request.
    ensure_bucket("strict", clients=aws)
    with pytest.raises(ClientError, match="403"):
        aws.s3.put_object(Bucket="strict", Key="k", Body=b"")
    ensure_bucket("relaxed", tls_only=False, clients=aws)
    aws.s3.put_object(Bucket="relaxed", Key="k", Body=b"")
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        aws.s3.get_bucket_policy(Bucket="relaxed")


def test_delete_empties_every_version_and_delete_marker(aws):
    ensure_bucket("data", tls_only=False, clients=aws)
    for body in (b"1", b"2", b"3"):
        aws.s3.put_object(Bucket="data", Key="abalone/data/current/a.csv", Body=body)
    aws.s3.delete_object(Bucket="data", Key="abalone/data/current/a.csv")  # a delete marker
    aws.s3.put_object(Bucket="data", Key="other.json", Body=b"{}")
    ensure_bucket("data", clients=aws)  # the TLS-only policy does not stop the (bucket-level) deletes
    ensured = delete_bucket("data", delete_objects=True, clients=aws)
    assert ensured.action is Action.DELETED and ensured.details["objects_deleted"] == 5
    assert aws.s3.list_buckets()["Buckets"] == []
    assert delete_bucket("data", delete_objects=True, clients=aws).action is Action.ABSENT


def test_empty_bucket_goes_on_until_nothing_is_left(aws, recorder):
    ensure_bucket("data", tls_only=False, clients=aws)
    for i in range(7):
        aws.s3.put_object(Bucket="data", Key=f"k{i}", Body=b"")
    recorder.clear()
    assert empty_bucket("data", batch=3, clients=aws) == 7
    assert recorder.mutating == [("s3", "DeleteObjects")] * 3
    assert aws.s3.list_object_versions(Bucket="data").get("Versions") is None


def test_a_bucket_name_owned_by_another_account_is_a_clear_error():
    s3 = boto3.Session(region_name="us-east-1").client("s3")
    with Stubber(s3) as stub:
        stub.add_client_error("head_bucket", "403", "Forbidden", 403)
        with pytest.raises(AwsResourceError, match="taken-bucket.*another account.*BUCKET_NAME"):
            ensure_bucket("taken-bucket", clients=Clients(s3=s3, region="us-east-1"))


def test_ensure_bucket_merges_its_statement_into_a_policy_others_wrote(aws, recorder):
    ensure_bucket("shared", clients=aws)
    policy = json.loads(aws.s3.get_bucket_policy(Bucket="shared")["Policy"])
    theirs = {"Sid": "AuditorRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
              "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared/*"}
    policy["Statement"].insert(0, theirs)
    aws.s3.put_bucket_policy(Bucket="shared", Policy=json.dumps(policy))
    recorder.clear()
    assert ensure_bucket("shared", clients=aws).action is Action.UNCHANGED
    assert recorder.mutating == []
    policy["Statement"][1]["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}  # our statement drifted
    aws.s3.put_bucket_policy(Bucket="shared", Policy=json.dumps(policy))
    assert ensure_bucket("shared", clients=aws).details["changes"] == ["policy"]
    statements = json.loads(aws.s3.get_bucket_policy(Bucket="shared")["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["AuditorRead", "DenyInsecureTransport"]
    assert statements[0] == theirs and statements[1]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
