import datetime as dt

import boto3
from botocore.stub import Stubber

from mlops_core.aws import Clients
from mlops_core.ensure import Action
from mlops_core.sagemaker.registry import (
    APPROVED,
    PENDING,
    REJECTED,
    approve_version,
    ensure_model_package_group,
    evaluation_uri_of,
    find_version,
    latest_approved_version,
    register_version,
    reject_version,
    serving_container,
)
from tests.fakes import IMAGE_URI, NOW

GROUP = "abalone"


def model_data(execution_id):
    return f"s3://abalone-bucket/abalone/{execution_id}/model/abalone-Train-{execution_id}/output/model.tar.gz"


def register(aws, execution_id, approval=PENDING):
    return register_version(GROUP, IMAGE_URI, model_data(execution_id), execution_id=execution_id,
                            evaluation_uri=f"s3://abalone-bucket/abalone/{execution_id}/evaluation/evaluation.json",
                            approval=approval, clients=aws)


def test_ensure_group_creates_then_leaves_alone(aws, recorder):
    assert ensure_model_package_group(GROUP, description="abalone models", clients=aws).action is Action.CREATED
    recorder.clear()
    again = ensure_model_package_group(GROUP, clients=aws)
    assert again.action is Action.UNCHANGED and again.arn and recorder.mutating == []


def test_register_creates_once_per_release(aws, recorder):
    ensure_model_package_group(GROUP, clients=aws)
    first = register(aws, "e1")
    assert first.action is Action.CREATED
    recorder.clear()
    again = register(aws, "e1")
    assert (again.action, again.name) == (Action.UNCHANGED, first.name) and recorder.mutating == []
    version = aws.sagemaker.describe_model_package(ModelPackageName=first.arn)
    assert serving_container(version) == (IMAGE_URI, model_data("e1"))
    assert evaluation_uri_of(version) == "s3://abalone-bucket/abalone/e1/evaluation/evaluation.json"
    assert version["CustomerMetadataProperties"] == {"ExecutionId": "e1"}
    assert version["ModelApprovalStatus"] == PENDING


def test_release_ids_that_are_prefixes_of_each_other_are_told_apart(aws):
    ensure_model_package_group(GROUP, clients=aws)
    ten = register(aws, "e10")
    one = register(aws, "e1")
    assert one.action is Action.CREATED and one.name != ten.name
    assert find_version(GROUP, "e1", clients=aws)["ModelPackageArn"] == one.arn


def test_register_again_sets_a_decided_approval_but_never_resets_one(aws, recorder):
    ensure_model_package_group(GROUP, clients=aws)
    created = register(aws, "e1")
    approved = register(aws, "e1", APPROVED)
    assert approved.action is Action.UPDATED and approved.details["approval"] == APPROVED
    recorder.clear()
    assert register(aws, "e1", PENDING).action is Action.UNCHANGED and recorder.mutating == []
    status = aws.sagemaker.describe_model_package(ModelPackageName=created.arn)["ModelApprovalStatus"]
    assert status == APPROVED


def test_approve_and_reject_change_only_what_differs(aws, recorder):
    ensure_model_package_group(GROUP, clients=aws)
    arn = register(aws, "e1").arn
    assert approve_version(arn, description="reviewed", clients=aws).action is Action.UPDATED
    recorder.clear()
    assert approve_version(arn, clients=aws).action is Action.UNCHANGED and recorder.mutating == []
    assert reject_version(arn, clients=aws).action is Action.UPDATED
    assert latest_approved_version(GROUP, clients=aws) is None


def test_latest_approved_is_the_newest_across_more_than_one_page(aws, recorder):
    ensure_model_package_group(GROUP, clients=aws)
    for number in range(1, 106):  # 104 approved versions: more than one 100-item page; the newest is rejected
        aws.sagemaker.create_model_package(
            ModelPackageGroupName=GROUP, ModelApprovalStatus=APPROVED if number < 105 else REJECTED,
            CustomerMetadataProperties={"ExecutionId": f"e{number}"},
            InferenceSpecification={"Containers": [{"Image": IMAGE_URI, "ModelDataUrl": model_data(number)}],
                                    "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]})
    recorder.clear()
    latest = latest_approved_version(GROUP, clients=aws)
    assert latest["ModelPackageVersion"] == 104 and latest["CustomerMetadataProperties"] == {"ExecutionId": "e104"}
    assert [op for _, op in recorder.calls].count("ListModelPackages") == 2  # both pages were read
    ensure_model_package_group("empty", clients=aws)
    assert latest_approved_version("empty", clients=aws) is None


def test_latest_approved_reads_every_page_even_when_the_service_order_is_off():
    client = boto3.client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")

    def summary(version):
        return {"ModelPackageGroupName": GROUP, "ModelPackageVersion": version, "ModelPackageStatus": "Completed",
                "ModelPackageArn": f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/abalone/{version}",
                "CreationTime": NOW + dt.timedelta(minutes=version), "ModelApprovalStatus": APPROVED}

    query = {"ModelPackageGroupName": GROUP, "SortBy": "CreationTime", "SortOrder": "Descending",
             "ModelApprovalStatus": APPROVED}
    with Stubber(client) as stubber:
        stubber.add_response("list_model_packages", {"ModelPackageSummaryList": [summary(2), summary(1)],
                                                     "NextToken": "page-2"}, query)
        stubber.add_response("list_model_packages", {"ModelPackageSummaryList": [summary(7), summary(5)]},
                             {**query, "NextToken": "page-2"})
        newest = summary(7)
        stubber.add_response("describe_model_package",
                             {"ModelPackageName": GROUP, "ModelPackageArn": newest["ModelPackageArn"],
                              "CreationTime": newest["CreationTime"], "ModelPackageStatus": "Completed",
                              "ModelPackageVersion": 7, "ModelPackageStatusDetails": {"ValidationStatuses": []}},
                             {"ModelPackageName": newest["ModelPackageArn"]})
        latest = latest_approved_version(GROUP, clients=Clients(region="eu-west-1", sagemaker=client))
        stubber.assert_no_pending_responses()
    assert latest["ModelPackageVersion"] == 7
