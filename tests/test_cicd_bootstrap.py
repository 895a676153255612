"""Bootstrap and teardown of a project's CI/CD resources on moto: create everything, re-run with zero
mutating calls, change one setting -> update exactly one resource, teardown leaves nothing and runs twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.stub import Stubber

from mlops_core.aws import Clients
from mlops_core.ensure import Action
from mlops_core.errors import AwsResourceError, ConfigError
from mlops_core.project import ROLE_KINDS, TASKS, Project, bootstrap, teardown
from mlops_core.project.buildspecs import build_project

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"
EXPECTED = [("s3 bucket", "abalone-123456789012-us-east-1"), ("ecr repository", "abalone"),
            *[("iam role", f"abalone-{k}") for k in ROLE_KINDS], ("codecommit repository", "abalone"),
            *[("ssm parameter", f"/abalone/{k}") for k in ("bucket-name", "sagemaker-role-arn", "image-uri",
                                                           "model-name", "model-package-group", "pipeline-name")],
            *[("codebuild project", f"abalone-{t}") for t in ("container-build", "preprocess", "train",
                                                             "evaluate", "deploy")],
            ("codepipeline pipeline", "abalone"), ("cloudwatch alarm", "abalone-feature-drift"),
            ("cloudwatch alarm", "abalone-model-quality-rmse"), ("eventbridge rule", "abalone-retrain-on-alarm")]


def project(**settings) -> Project:
    return Project(name="abalone", account_id=ACCOUNT, region="us-east-1", **settings)


def test_bootstrap_on_an_empty_account_creates_everything(aws):
    results = bootstrap(project(), clients=aws)
    assert [(r.kind, r.name) for r in results] == EXPECTED
    assert {r.action for r in results} == {Action.CREATED}

    repository = aws.ecr.describe_repositories(repositoryNames=["abalone"])["repositories"][0]
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["imageTagMutability"] == "IMMUTABLE"
    lifecycle = json.loads(aws.ecr.get_lifecycle_policy(repositoryName="abalone")["lifecyclePolicyText"])
    assert lifecycle["rules"][0]["selection"]["countNumber"] == 10
    assert aws.ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"] == [
        {"Key": "project", "Value": "abalone"}]
    for kind in ROLE_KINDS:
        role = aws.iam.get_role(RoleName=f"abalone-{kind}")["Role"]
        assert role["Tags"] == [{"Key": "project", "Value": "abalone"}]
        assert aws.iam.list_role_policies(RoleName=f"abalone-{kind}")["PolicyNames"] == ["least-privilege"]
    assert aws.codecommit.get_repository(repositoryName="abalone")["repositoryMetadata"]["cloneUrlHttp"] == (
        "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/abalone")
    parameters = {p["Name"]: p["Value"] for p in aws.ssm.get_parameters_by_path(Path="/abalone")["Parameters"]}
    assert parameters == {
        "/abalone/bucket-name": "abalone-123456789012-us-east-1",
        "/abalone/sagemaker-role-arn": f"arn:aws:iam::{ACCOUNT}:role/abalone-sagemaker",
        "/abalone/image-uri": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/abalone",  # the release adds its tags
        "/abalone/model-name": "abalone", "/abalone/model-package-group": "abalone",
        "/abalone/pipeline-name": "abalone"}
    projects = aws.codebuild.batch_get_projects(names=[f"abalone-{t}" for t in ("container-build", "train")])
    privileged = {p["name"]: p["environment"]["privilegedMode"] for p in projects["projects"]}
    assert privileged == {"abalone-container-build": True, "abalone-train": False}
    assert all(p["tags"] == [{"key": "project", "value": "abalone"}] for p in projects["projects"])
    pipeline = aws.codepipeline.get_pipeline(name="abalone")
    assert [s["name"] for s in pipeline["pipeline"]["stages"]] == ["Source", "Build", "Approval", "Deploy"]
    tags = aws.codepipeline.list_tags_for_resource(resourceArn=pipeline["metadata"]["pipelineArn"])["tags"]
    assert tags == [{"key": "project", "value": "abalone"}]


def test_a_second_bootstrap_makes_zero_mutating_calls(aws, recorder):
    bootstrap(project(), clients=aws)
    first = len(recorder.mutating)
    recorder.clear()
    results = bootstrap(project(), clients=aws)
    assert recorder.mutating == []
    assert {r.action for r in results} == {Action.UNCHANGED}
    assert first >= len(EXPECTED)


def test_dry_run_on_an_empty_account_plans_everything_and_changes_nothing(aws, recorder):
    results = bootstrap(project(), dry_run=True, clients=aws)
    assert recorder.mutating == []
    assert [(r.kind, r.name) for r in results] == EXPECTED
    assert all(r.action is Action.CREATED and r.details["dry_run"] for r in results)
    assert aws.s3.list_buckets()["Buckets"] == [] and aws.iam.list_roles()["Roles"] == []


@pytest.mark.parametrize(("settings", "kind", "calls"), [
    ({"keep_images": 5}, "ecr repository", [("ecr", "PutLifecyclePolicy")]),
    ({"data_trigger_key": "abalone/data/trigger.zip"}, "codepipeline pipeline", [("codepipeline", "UpdatePipeline")]),
    ({"code_branch": "trunk"}, "codepipeline pipeline", [("codepipeline", "UpdatePipeline")]),
    ({"kms_key_arn": None, "tls_only": True}, None, []),
])
def test_changing_one_setting_updates_exactly_that_resource(aws, recorder, settings, kind, calls):
    bootstrap(project(), clients=aws)
    planned = bootstrap(project(**settings), dry_run=True, clients=aws)
    assert [r.kind for r in planned if r.action is Action.UPDATED] == ([kind] if kind else [])
    recorder.clear()
    results = bootstrap(project(**settings), clients=aws)
    assert recorder.mutating == calls
    assert [r.kind for r in results if r.changed] == ([kind] if kind else [])
    recorder.clear()
    bootstrap(project(**settings), clients=aws)
    assert recorder.mutating == []


def _moto_answers_codebuild(aws: Clients, recorder_session, changed: Project, tasks: list[str]):
    """A CodeBuild client answering with moto's projects (moto has no UpdateProject), expecting an update of
    each of ``tasks``."""
    client = recorder_session.client("codebuild", region_name="us-east-1")
    stub = Stubber(client)
    for each in TASKS:
        name = changed.codebuild_project(each)
        answer = aws.codebuild.batch_get_projects(names=[name])
        answer.pop("ResponseMetadata")
        answer["projects"][0]["queuedTimeoutInMinutes"] = 480  # moto answers 0, below AWS's minimum of 5
        stub.add_response("batch_get_projects", answer, {"names": [name]})
        if each in tasks:
            stub.add_response("update_project", {"project": answer["projects"][0]},
                              build_project(changed, each))
    return client, stub


def test_a_setting_every_build_uses_plans_an_update_of_each_project(aws, recorder):
    bootstrap(project(), clients=aws)
    recorder.clear()
    planned = bootstrap(project(build_image="aws/codebuild/standard:8.0"), dry_run=True, clients=aws)
    assert [(r.name, r.details["changes"]) for r in planned if r.action is Action.UPDATED] == [
        (project().codebuild_project(t), ["environment"]) for t in TASKS]
    assert recorder.mutating == []


@pytest.mark.parametrize(("settings", "tasks"), [({"epochs": 5}, ["Train"]), ({"batch_size": 16}, ["Train"]),
                                                 ({"threshold": 1.9}, ["Evaluate", "Deploy"])])
def test_a_build_setting_updates_only_the_projects_that_use_it(aws, recorder, settings, tasks):
    bootstrap(project(), clients=aws)
    changed = project(**settings)
    codebuild, stub = _moto_answers_codebuild(aws, aws.session, changed, tasks)
    recorder.clear()
    with stub:
        results = bootstrap(changed, clients=Clients(aws.session, codebuild=codebuild))
        stub.assert_no_pending_responses()  # the expected UpdateProject calls (any other call would raise)
    assert recorder.names() == ["codebuild:UpdateProject"] * len(tasks)  # the stubbed ones: nothing else changed
    updated = [r for r in results if r.changed]
    assert [(r.name, r.details["changes"]) for r in updated] == [(changed.codebuild_project(t), ["source"])
                                                                 for t in tasks]


def _fill(aws: Clients) -> None:
    """Objects with several versions, an image and a CodeBuild log group, as a release leaves them."""
    bucket = "abalone-123456789012-us-east-1"
    for body in (b"a", b"b"):
        aws.s3.put_object(Bucket=bucket, Key="abalone/data/current/abalone.csv", Body=body)
    aws.s3.delete_object(Bucket=bucket, Key="abalone/data/current/abalone.csv")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"digest": "sha256:" + "1" * 64, "size": 1,
                                      "mediaType": "application/vnd.docker.container.image.v1+json"},
                           "layers": []})
    aws.ecr.put_image(repositoryName="abalone", imageManifest=manifest, imageTag="e1")
    aws.logs.create_log_group(logGroupName="/aws/codebuild/abalone-train")


def assert_nothing_left(aws: Clients) -> None:
    assert aws.s3.list_buckets()["Buckets"] == []
    assert aws.ecr.describe_repositories()["repositories"] == []
    assert aws.iam.list_roles()["Roles"] == []
    assert aws.ssm.get_parameters_by_path(Path="/abalone", Recursive=True)["Parameters"] == []
    assert aws.codebuild.list_projects()["projects"] == []
    assert aws.codepipeline.list_pipelines()["pipelines"] == []
    assert aws.logs.describe_log_groups(logGroupNamePrefix="/aws/codebuild/abalone")["logGroups"] == []
    with pytest.raises(aws.codecommit.exceptions.RepositoryDoesNotExistException):
        aws.codecommit.get_repository(repositoryName="abalone")


def test_teardown_leaves_nothing_behind_and_can_run_twice(aws):
    bootstrap(project(tls_only=False), clients=aws)  # moto would deny the object writes under the TLS policy
    _fill(aws)
    bootstrap(project(), clients=aws)
    results = teardown(project(), delete_data=True, clients=aws)
    assert {r.action for r in results} == {Action.DELETED}
    assert [r.details.get("objects_deleted") for r in results if r.kind == "s3 bucket"] == [3]
    assert_nothing_left(aws)
    again = teardown(project(), delete_data=True, clients=aws)
    assert {r.action for r in again} == {Action.ABSENT}
    assert_nothing_left(aws)


def test_teardown_leaves_other_projects_alone(aws, recorder):
    other = Project(name="other", account_id=ACCOUNT, region="us-east-1")
    bootstrap(project(), clients=aws)
    bootstrap(other, clients=aws)
    teardown(project(), clients=aws)
    recorder.clear()
    assert {r.action for r in bootstrap(other, clients=aws)} == {Action.UNCHANGED}
    assert recorder.mutating == []


def _script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "bin" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bootstrap_script_prints_plan_and_summary(aws, capsys):
    bootstrap_script = _script("bootstrap")
    assert bootstrap_script.main(["--project", "abalone", "--dry-run"], clients=aws) == 0
    plan = capsys.readouterr().out
    assert "would create       codepipeline pipeline abalone" in plan
    assert aws.codepipeline.list_pipelines()["pipelines"] == []
    assert bootstrap_script.main(["--project", "abalone", "--epochs", "7"], clients=aws) == 0
    out = capsys.readouterr().out
    assert "clone URL: https://git-codecommit.us-east-1.amazonaws.com/v1/repos/abalone" in out
    assert "pipeline:  abalone" in out and "bucket:    s3://abalone-123456789012-us-east-1" in out
    spec = json.loads(aws.codebuild.batch_get_projects(names=["abalone-train"])["projects"][0]["source"]["buildspec"])
    assert spec["env"]["variables"]["EPOCHS"] == "7"


def test_teardown_script_needs_confirmation(aws):
    bootstrap(project(), clients=aws)
    with pytest.raises(ConfigError, match="--yes"):
        _script("teardown").main(["--project", "abalone"], clients=aws)
    assert aws.codepipeline.list_pipelines()["pipelines"] != []
    assert _script("teardown").main(["--project", "abalone", "--yes"], clients=aws) == 0
    assert_nothing_left(aws)


def test_scripts_against_the_embedded_aws(local_env, tmp_path):
    """The real command lines (exit codes included) against the embedded AWS (moto's server plus what moto lacks,
    such as monitoring schedules) in child processes."""
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=ROOT, env={**local_env, "PATH": "/usr/bin:/bin",
                                                                      "PROJECT_NAME": "abalone"},
                              capture_output=True, text=True, timeout=120)

    created = run("bin/bootstrap.py", "--no-tls-policy")
    assert created.returncode == 0, created.stderr
    assert "create             codepipeline pipeline abalone" in created.stdout
    refused = run("bin/teardown.py")
    assert refused.returncode == 2 and "pass --yes" in refused.stderr
    bad = run("bin/bootstrap.py", "--project", "Not_Valid")
    assert bad.returncode == 2 and "PROJECT_NAME" in bad.stderr
    deleted = run("bin/teardown.py", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert "delete             s3 bucket" in deleted.stdout


def test_teardown_refuses_a_bucket_the_project_did_not_create_before_deleting_anything(aws):
    aws.s3.create_bucket(Bucket="someone-elses-data")
    aws.s3.put_object(Bucket="someone-elses-data", Key="precious.csv", Body=b"1")
    bootstrap(project(), clients=aws)
    with pytest.raises(AwsResourceError, match="someone-elses-data.*no tag project=abalone"):
        teardown(project(bucket_name="someone-elses-data"), delete_data=True, clients=aws)
    assert aws.s3.get_object(Bucket="someone-elses-data", Key="precious.csv")["Body"].read() == b"1"
    assert aws.codepipeline.list_pipelines()["pipelines"] != [], "nothing may be deleted"


def test_teardown_keeps_a_bucket_holding_data_unless_asked_to_delete_it(aws, capsys):
    bootstrap(project(tls_only=False), clients=aws)
    _fill(aws)
    assert _script("teardown").main(["--project", "abalone", "--yes"], clients=aws) == 0
    out = capsys.readouterr().out
    assert "leave alone        s3 bucket abalone-123456789012-us-east-1 (it holds data" in out
    assert [b["Name"] for b in aws.s3.list_buckets()["Buckets"]] == ["abalone-123456789012-us-east-1"]
    assert aws.codepipeline.list_pipelines()["pipelines"] == []
    assert _script("teardown").main(["--project", "abalone", "--yes", "--delete-data"], clients=aws) == 0
    assert_nothing_left(aws)
