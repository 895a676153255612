"""ECR, IAM roles, SSM parameters and CodeCommit: create, leave alone, repair drift with only the calls
needed, delete tolerating absence. CodeCommit commits and description updates (missing in moto) use Stubber."""

from __future__ import annotations

import json
from urllib.parse import quote

import boto3
import pytest
from botocore.stub import Stubber

from mlops_core import codecommit, ecr, iam, ssm
from mlops_core.aws import Clients
from mlops_core.ensure import Action, contains, normalize_document
from mlops_core.project import Project
from mlops_core.project.policies import project_roles

PROJECT = Project(name="abalone", account_id="123456789012", region="us-east-1")


def test_contains_compares_only_what_is_desired():
    current = {"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}, "extra": True}
    assert contains(current, {"a": 1, "b": {"c": [1, {"d": 2}]}})
    assert not contains(current, {"b": {"c": [1]}}), "list lengths must match"
    assert not contains(current, {"a": 2})
    assert not contains(current, {"missing": None})


def test_policy_documents_compare_equal_however_they_are_encoded():
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "x"}]}
    encoded = quote(json.dumps(document))
    assert normalize_document(encoded) == normalize_document(json.dumps(document, indent=4)) == normalize_document(
        document)


def test_ecr_repository_scan_on_push_and_lifecycle_drift(aws, recorder):
    assert ecr.ensure_repository("abalone", keep_images=3, tags=PROJECT.tags, clients=aws).action is Action.CREATED
    aws.ecr.put_image_scanning_configuration(repositoryName="abalone", imageScanningConfiguration={"scanOnPush": False})
    aws.ecr.delete_lifecycle_policy(repositoryName="abalone")
    recorder.clear()
    ensured = ecr.ensure_repository("abalone", keep_images=3, clients=aws)
    assert ensured.details["changes"] == ["scan on push", "lifecycle policy"]
    assert recorder.mutating == [("ecr", "PutImageScanningConfiguration"), ("ecr", "PutLifecyclePolicy")]
    assert ensured.details["uri"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/abalone"
    recorder.clear()
    assert ecr.ensure_repository("abalone", keep_images=3, clients=aws).action is Action.UNCHANGED
    assert recorder.mutating == []
    assert ecr.delete_repository("abalone", clients=aws).action is Action.DELETED
    assert ecr.delete_repository("abalone", clients=aws).action is Action.ABSENT


def test_role_drift_is_repaired_policy_by_policy(aws, recorder):
    spec = next(r for r in project_roles(PROJECT) if r.name == "abalone-sagemaker")
    assert iam.ensure_role_spec(spec, tags=PROJECT.tags, clients=aws).action is Action.CREATED
    aws.iam.put_role_policy(RoleName=spec.name, PolicyName="added-by-hand",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    aws.iam.update_assume_role_policy(RoleName=spec.name, PolicyDocument=json.dumps(iam.trust_policy(
        "ec2.amazonaws.com")))
    recorder.clear()
    ensured = iam.ensure_role_spec(spec, tags=PROJECT.tags, clients=aws)
    assert ensured.details["changes"] == ["trust policy", "remove policy added-by-hand"]
    assert recorder.mutating == [("iam", "UpdateAssumeRolePolicy"), ("iam", "DeleteRolePolicy")]
    assert aws.iam.list_role_policies(RoleName=spec.name)["PolicyNames"] == ["least-privilege"]
    recorder.clear()
    assert iam.ensure_role_spec(spec, tags=PROJECT.tags, clients=aws).action is Action.UNCHANGED
    assert recorder.mutating == []


def test_a_changed_policy_is_one_put_and_missing_tags_one_tag_call(aws, recorder):
    spec = next(r for r in project_roles(PROJECT) if r.name == "abalone-codebuild")
    iam.ensure_role_spec(spec, clients=aws)
    kms = next(r for r in project_roles(PROJECT.with_settings(kms_key_arn="arn:aws:kms:us-east-1:1:key/k"))
               if r.name == "abalone-codebuild")
    recorder.clear()
    ensured = iam.ensure_role_spec(kms, tags=PROJECT.tags, clients=aws)
    assert ensured.details["changes"] == ["policy least-privilege", "tags"]
    assert recorder.mutating == [("iam", "PutRolePolicy"), ("iam", "TagRole")]


def test_delete_role_removes_inline_and_attached_policies(aws):
    spec = project_roles(PROJECT)[0]
    iam.ensure_role_spec(spec, clients=aws)
    policy = aws.iam.create_policy(PolicyName="extra", PolicyDocument=json.dumps(spec.policy))["Policy"]["Arn"]
    aws.iam.attach_role_policy(RoleName=spec.name, PolicyArn=policy)
    assert iam.delete_role(spec.name, clients=aws).action is Action.DELETED
    assert aws.iam.list_roles()["Roles"] == []
    assert iam.delete_role(spec.name, clients=aws).action is Action.ABSENT


def test_parameters_are_created_overwritten_only_when_different_and_deleted(aws, recorder):
    assert ssm.ensure_parameter("/abalone/bucket-name", "b1", tags=PROJECT.tags, clients=aws).action is Action.CREATED
    recorder.clear()
    assert ssm.ensure_parameter("/abalone/bucket-name", "b1", clients=aws).action is Action.UNCHANGED
    assert recorder.mutating == []
    assert ssm.ensure_parameter("/abalone/bucket-name", "b2", clients=aws).details["changes"] == ["value"]
    assert recorder.mutating == [("ssm", "PutParameter")]
    assert ssm.get_parameters(["/abalone/bucket-name", "/abalone/none"], clients=aws) == {"/abalone/bucket-name": "b2"}
    tags = aws.ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/abalone/bucket-name")["TagList"]
    assert tags == [{"Key": "project", "Value": "abalone"}]
    assert ssm.delete_parameter("/abalone/bucket-name", clients=aws).action is Action.DELETED
    assert ssm.delete_parameter("/abalone/bucket-name", clients=aws).action is Action.ABSENT


def test_codecommit_repository_on_moto(aws, recorder):
    ensured = codecommit.ensure_repository("abalone", description="code", tags=PROJECT.tags, clients=aws)
    assert ensured.action is Action.CREATED
    assert ensured.details["clone_url_http"] == PROJECT.clone_url
    recorder.clear()
    assert codecommit.ensure_repository("abalone", description="code", clients=aws).action is Action.UNCHANGED
    assert recorder.mutating == []
    assert codecommit.delete_repository("abalone", clients=aws).action is Action.DELETED
    assert codecommit.delete_repository("abalone", clients=aws).action is Action.ABSENT


def _stubbed():
    client = boto3.Session(region_name="us-east-1").client("codecommit")
    return Stubber(client), Clients(codecommit=client, region="us-east-1")


def test_codecommit_description_update_with_stubber():
    stub, clients = _stubbed()
    stub.add_response("get_repository", {"repositoryMetadata": {"repositoryName": "abalone",
                                                                "repositoryDescription": "old"}},
                      {"repositoryName": "abalone"})
    stub.add_response("update_repository_description", {}, {"repositoryName": "abalone", "repositoryDescription": "new"})
    with stub:
        ensured = codecommit.ensure_repository("abalone", description="new", clients=clients)
        stub.assert_no_pending_responses()
    assert ensured.details["changes"] == ["description"]


def test_codecommit_repository_is_created_with_the_project_tag():
    stub, clients = _stubbed()
    stub.add_client_error("get_repository", "RepositoryDoesNotExistException")
    stub.add_response("create_repository", {"repositoryMetadata": {"repositoryName": "abalone"}}, {
        "repositoryName": "abalone", "repositoryDescription": "code", "tags": {"project": "abalone"}})
    with stub:
        assert codecommit.ensure_repository("abalone", description="code", tags=PROJECT.tags,
                                            clients=clients).action is Action.CREATED
        stub.assert_no_pending_responses()


def test_seeding_an_empty_repository_commits_the_readme_and_branches_from_it():
    stub, clients = _stubbed()
    readme = codecommit.readme("abalone")
    stub.add_client_error("get_branch", "BranchDoesNotExistException", expected_params={
        "repositoryName": "abalone", "branchName": "main"})
    stub.add_response("create_commit", {"commitId": "c0ffee"}, {
        "repositoryName": "abalone", "branchName": "main", "commitMessage": "Initial commit: branch layout",
        "putFiles": [{"filePath": "README.md", "fileContent": readme.encode()}]})
    stub.add_client_error("get_branch", "BranchDoesNotExistException", expected_params={
        "repositoryName": "abalone", "branchName": "model"})
    stub.add_response("create_branch", {}, {"repositoryName": "abalone", "branchName": "model", "commitId": "c0ffee"})
    with stub:
        ensured = codecommit.seed_branches("abalone", ["main", "model"], {"README.md": readme}, clients=clients)
        stub.assert_no_pending_responses()
    assert ensured.action is Action.UPDATED and ensured.details["created"] == ["main", "model"]
    assert "`main`: pipeline code" in readme and "`model`: model code" in readme


def test_seeding_leaves_existing_branches_alone():
    stub, clients = _stubbed()
    for branch in ("main", "model"):
        stub.add_response("get_branch", {"branch": {"branchName": branch, "commitId": "abc"}},
                          {"repositoryName": "abalone", "branchName": branch})
    with stub:
        ensured = codecommit.seed_branches("abalone", ["main", "model"], {"README.md": "x"}, clients=clients)
        stub.assert_no_pending_responses()
    assert ensured.action is Action.UNCHANGED


def test_seeding_a_missing_repository_is_an_error_not_a_silent_skip():
    stub, clients = _stubbed()
    stub.add_client_error("get_branch", "RepositoryDoesNotExistException")
    with stub, pytest.raises(Exception, match="RepositoryDoesNotExistException"):
        codecommit.seed_branches("abalone", ["main"], {"README.md": "x"}, clients=clients)


def test_errors_other_than_not_found_propagate():
    stub_client = boto3.Session(region_name="us-east-1").client("ssm")
    with Stubber(stub_client) as stub:
        stub.add_client_error("get_parameter", "AccessDeniedException", http_status_code=400)
        with pytest.raises(Exception, match="AccessDenied"):
            ssm.ensure_parameter("/abalone/x", "v", clients=Clients(ssm=stub_client, region="us-east-1"))
