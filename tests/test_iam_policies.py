"""Every generated IAM policy is least-privilege: no "*" actions, no service-wide actions, no "*"
resources outside the few actions AWS only grants on "*"."""

from __future__ import annotations

import json

import pytest

from mlops_core.iam import SERVICES, WILDCARD_ONLY, trust_policy
from mlops_core.project import Project
from mlops_core.project.policies import project_roles
from mlops_core.project.webapp import WebappNames, site_bucket_statement, webapp_role
from workflows.ml_workflow import workflow_role_policy

# The actions allowed on "Resource": "*", each with the reason AWS gives no narrower resource.
ALLOWED_ON_STAR = {
    "ecr:GetAuthorizationToken": "registry-wide login token, no resource-level permission",
    "sagemaker:ListModelPackages": "SageMaker List* calls have no resource type",
    "sagemaker:ListEndpoints": "SageMaker List* calls have no resource type (deploy cleans up superseded configs)",
    "sagemaker:ListEndpointConfigs": "SageMaker List* calls have no resource type",
    "sagemaker:ListModels": "SageMaker List* calls have no resource type",
    "cloudwatch:PutMetricData": "metrics have no ARN; narrowed by the cloudwatch:namespace condition",
    "application-autoscaling:DescribeScalableTargets": "Describe* calls have no resource type",
    "application-autoscaling:DescribeScalingPolicies": "Describe* calls have no resource type",
}

PROJECTS = [
    Project(name="abalone", account_id="123456789012", region="eu-west-1"),
    Project(name="shop", account_id="123456789012", region="us-east-1", model_name="Demand-Model",
            bucket_name="my-data-bucket", kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/abcd"),
]
PROJECTS += [p.with_settings(build_stage="workflow") for p in PROJECTS]  # the Build stage as one workflow action


def _listify(value) -> list:
    return value if isinstance(value, list) else [value]


def violations(document: dict, scope: tuple[str, ...]) -> list[str]:
    """Why ``document`` is not least-privilege (empty when it is); ``scope`` holds names a resource must use."""
    found = []
    for statement in document["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        if "NotAction" in statement or "NotResource" in statement:
            found.append(f"{statement.get('Sid')}: NotAction/NotResource grant too much")
        actions, resources = _listify(statement.get("Action", [])), _listify(statement.get("Resource", []))
        for action in actions:
            if action == "*" or action.endswith(":*"):
                found.append(f"{statement.get('Sid')}: service-wide action {action}")
        for resource in resources:
            if resource == "*":
                found += [f"{statement.get('Sid')}: {a} on *" for a in actions if a not in ALLOWED_ON_STAR]
            elif not any(name in resource for name in scope):
                found.append(f"{statement.get('Sid')}: {resource} is outside the project")
    return found


def _scope(project: Project) -> tuple[str, ...]:
    return (project.name, project.bucket, project.model.lower(), project.model_package_group.lower(),
            "StepFunctionsGetEventsForSageMaker", "aws-service-role/sagemaker.application-autoscaling",
            "/aws/sagemaker/", "scalable-target/", project.state_machine,  # case kept: Step Functions ARNs
            *([project.kms_key_arn] if project.kms_key_arn else []))


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name + ("" if p.build_stage == "jobs" else
                                                                      f"-{p.build_stage}"))
def test_every_generated_policy_is_least_privilege(project):
    roles = project_roles(project)
    assert {r.name for r in roles} == {project.role_name(k) for k in SERVICES}
    for role in roles:
        assert violations(role.policy, _scope(project)) == [], role.name
        assert len(json.dumps(role.policy)) < 10240, "inline role policies are limited to 10,240 characters"


def test_the_allow_list_matches_the_library_and_each_entry_has_a_reason():
    assert set(ALLOWED_ON_STAR) == set(WILDCARD_ONLY)
    assert all(reason for reason in {**ALLOWED_ON_STAR, **WILDCARD_ONLY}.values())


@pytest.mark.parametrize("bad", [
    {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::abalone-bucket"},
    {"Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::abalone-bucket"},
    {"Effect": "Allow", "Action": ["sagemaker:*"], "Resource": "arn:aws:sagemaker:*:*:training-job/abalone-*"},
    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"},
    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::someone-elses-bucket/*"},
    {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "arn:aws:s3:::abalone-bucket"},
])
def test_the_checker_catches_broad_statements(bad):
    assert violations({"Statement": [bad]}, ("abalone",))


def test_pass_role_only_for_the_sagemaker_role_to_sagemaker():
    project = PROJECTS[0]
    for role in project_roles(project):
        for statement in role.policy["Statement"]:
            if "iam:PassRole" in _listify(statement["Action"]):
                assert statement["Action"] == ["iam:PassRole"]
                assert statement["Resource"] == [project.role_arn("sagemaker")]
                assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    passers = {r.name for r in project_roles(project)
               if any("iam:PassRole" in _listify(s["Action"]) for s in r.policy["Statement"])}
    assert passers == {project.role_name("codebuild"), project.role_name("stepfunctions")}


def test_roles_are_scoped_to_project_resources():
    project = PROJECTS[1]
    policies = {r.name: json.dumps(r.policy) for r in project_roles(project)}
    codebuild = policies[project.role_name("codebuild")]
    assert "arn:aws:sagemaker:us-east-1:123456789012:training-job/demand-model-train-*" in codebuild  # lower case
    assert "arn:aws:codebuild" not in codebuild
    assert "arn:aws:codebuild:us-east-1:123456789012:project/shop-train" in policies[project.role_name("codepipeline")]
    events = policies.pop(project.role_name("events"))  # starts the pipeline only: touches no data, so no key
    assert all(project.kms_key_arn in p for p in policies.values()) and project.kms_key_arn not in events
    stepfunctions = policies[project.role_name("stepfunctions")]
    assert "arn:aws:events:us-east-1:123456789012:rule/StepFunctionsGetEventsForSageMaker*Rule" in stepfunctions
    assert "s3:PutObject" not in stepfunctions


def test_trust_policies_name_one_service_each_for_this_account_and_its_resources():
    project = PROJECTS[0]
    for role in project_roles(project):
        [trust] = trust_policy(role.service, role.source_account, role.source_arns)["Statement"]
        assert trust["Principal"] == {"Service": role.service} and role.service.endswith(".amazonaws.com")
        assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    arns = {r.name: r.source_arns for r in project_roles(project)}
    assert arns[project.role_name("codepipeline")] == ("arn:aws:codepipeline:eu-west-1:123456789012:abalone",)
    assert "arn:aws:codebuild:eu-west-1:123456789012:project/abalone-train" in arns[project.role_name("codebuild")]
    assert arns[project.role_name("stepfunctions")] == (
        "arn:aws:states:eu-west-1:123456789012:stateMachine:abalone-ml-workflow",)


@pytest.mark.parametrize("project", PROJECTS[2:], ids=lambda p: p.name)
def test_with_the_workflow_stage_codebuild_may_only_run_and_watch_the_project_state_machine(project):
    jobs, workflow = ({r.name: r.policy for r in project_roles(p)} for p in (project.with_settings(build_stage="jobs"),
                                                                            project))
    codebuild = project.role_name("codebuild")
    added = [s for s in workflow[codebuild]["Statement"]
             if s not in jobs[codebuild]["Statement"] and s["Sid"].startswith("Workflow")]
    machine = f"arn:aws:states:{project.region}:{project.account_id}:stateMachine:{project.model}-ml-workflow"
    execution = f"arn:aws:states:{project.region}:{project.account_id}:execution:{project.model}-ml-workflow:*"
    assert [(s["Action"], s["Resource"]) for s in added] == [
        (["states:DescribeStateMachine", "states:StartExecution"], [machine]),
        (["states:DescribeExecution", "states:GetExecutionHistory"], [execution])]
    changed = {(name, s["Sid"]) for name in jobs for s in workflow[name]["Statement"]
               if s not in jobs[name]["Statement"]}
    assert changed == {(codebuild, "Workflow"), (codebuild, "WorkflowExecutions"), (codebuild, "BuildLogs"),
                       (project.role_name("codepipeline"), "Builds")}  # the build projects of the stage's tasks
    assert "states:" not in json.dumps(jobs[codebuild])


@pytest.mark.parametrize("project", PROJECTS[:2], ids=lambda p: p.name)
def test_the_step_functions_role_policy_is_the_workflows_own(project):
    """One source of truth: the policy bootstrap gives the role is ``workflow_role_policy``'s."""
    [role] = [r for r in project_roles(project) if r.name == project.role_name("stepfunctions")]
    assert role.policy == workflow_role_policy(
        bucket=project.bucket, model=project.model, sagemaker_role_arn=project.role_arn("sagemaker"),
        region=project.region, account=project.account_id, partition=project.partition,
        model_package_group=project.model_package_group, kms_key_arn=project.kms_key_arn)


READ_ONLY_PREFIXES = ("Describe", "List", "Get", "BatchGet")


def other_projects_arns(region: str, account: str) -> list[str]:
    """ARNs of the resources of projects whose names start like ``abalone``'s: they must stay out of reach."""
    arns = []
    for name in ("abalone2", "abalone-2", "abalonex"):
        other = Project(name=name, account_id=account, region=region, build_stage="workflow")
        model = other.model.lower()
        arns += [f"arn:aws:s3:::{other.bucket}", f"arn:aws:s3:::{other.bucket}/k", other.role_arn("sagemaker"),
                 other.arn("ecr", f"repository/{other.ecr_repository}"), other.arn("codecommit", other.code_repository),
                 other.arn("ssm", f"parameter/{name}/bucket-name"), other.arn("codepipeline", other.pipeline),
                 *(other.arn("codebuild", f"project/{other.codebuild_project(t)}") for t in other.tasks),
                 *(other.arn("logs", f"log-group:/aws/codebuild/{other.codebuild_project(t)}:*") for t in other.tasks),
                 other.arn("logs", f"log-group:/aws/sagemaker/TrainingJobs:log-stream:{other.model}-Train-e1/algo-1"),
                 other.arn("sagemaker", f"training-job/{model}-train-e1"),
                 other.arn("sagemaker", f"processing-job/{model}-preprocess-e1"),
                 other.arn("sagemaker", f"model/{model}-model-12345678"),
                 other.arn("sagemaker", f"endpoint-config/{model}-config-12345678"),
                 other.arn("sagemaker", f"endpoint/{model}"),
                 other.arn("sagemaker", f"model-package-group/{model}"), other.arn("sagemaker", f"model-package/{model}/1"),
                 other.arn("states", f"stateMachine:{other.state_machine}"),
                 other.arn("states", f"execution:{other.state_machine}:e1")]
    return arns


@pytest.mark.parametrize("project", [PROJECTS[0].with_settings(build_stage="workflow")], ids=["abalone"])
def test_no_resource_pattern_reaches_a_project_whose_name_starts_the_same(project):
    """Delimited names: abalone's roles reach nothing of abalone2 or abalonex, and change nothing of abalone-2
    (they may describe its endpoint: the read-only ShadowEndpoints pattern endpoint/abalone-*)."""
    from fnmatch import fnmatchcase

    theirs = other_projects_arns(project.region, project.account_id)
    for role in project_roles(project):
        for statement in role.policy["Statement"]:
            read_only = all(a.split(":")[1].startswith(READ_ONLY_PREFIXES) for a in _listify(statement["Action"]))
            for pattern in _listify(statement["Resource"]):
                if pattern == "*":
                    continue
                reached = [arn for arn in theirs if fnmatchcase(arn, pattern)
                           and not (read_only and ":endpoint/abalone-2" in arn)]
                assert reached == [], f"{role.name} {statement['Sid']}: {pattern} reaches {reached}"


# Findings of the IAM linter that do not apply or are needed, each with the reason.
LINTER_SUPPRESSIONS = {
    ("CREDENTIALS_EXPOSURE", "ecr:getauthorizationtoken"):
        "pulling or pushing an ECR image needs the registry login token (ECR has no resource for it)",
    ("PERMISSIONS_MANAGEMENT_ACTIONS", "iam:passrole"):
        "CodeBuild and Step Functions pass the project's SageMaker role to SageMaker only (iam:PassedToService)",
    ("PERMISSIONS_MANAGEMENT_ACTIONS", "iam:createservicelinkedrole"):
        "endpoint auto-scaling needs its own service-linked role, only that one (iam:AWSServiceName)",
    ("MALFORMED", "Statement contains neither Resource nor NotResource"):
        "a trust policy names a Principal; it has no Resource by design",
    ("RESOURCE_MISMATCH", "states:DescribeExecution"):
        "parliament's data lists only the express-execution ARN form for DescribeExecution; standard workflows "
        "take arn:...:execution:{machine}:{name}, which the statement uses",
}


def generated_documents() -> list[tuple[str, dict]]:
    """Every IAM document the library writes: role policies and trust policies of every project variant,
    the bucket policy, the workflow role's policy."""
    from mlops_core.s3 import tls_only_policy

    documents = []
    for project in PROJECTS:
        for role in project_roles(project):
            documents.append((f"{project.name}/{project.build_stage}/{role.name}", role.policy))
            documents.append((f"{project.name}/{role.name} trust",
                              trust_policy(role.service, role.source_account, role.source_arns)))
        documents.append((f"{project.bucket} policy", tls_only_policy(project.bucket, project.partition)))
        role, names = webapp_role(project), WebappNames(project)  # the Age Calculator's API role and page bucket
        documents += [(f"{project.name}/{role.name}", role.policy),
                      (f"{project.name}/{role.name} trust", trust_policy(role.service, role.source_account,
                                                                         role.source_arns)),
                      (f"{names.bucket} policy", {"Version": "2012-10-17", "Statement": [site_bucket_statement(
                          project, names.bucket, project.arn("cloudfront", "distribution/E123", region=False))]})]
    documents.append(("workflow role", workflow_role_policy(
        bucket="b-bucket", model="abalone", sagemaker_role_arn=PROJECTS[0].role_arn("sagemaker"), region="eu-west-1",
        account="123456789012")))
    return documents


def linter_keys(finding) -> list[tuple[str, str]]:
    """(issue, action) for each action a finding names, else (issue, detail)."""
    detail, actions = finding.detail, (finding.location or {}).get("actions")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict) and "action" in detail[0]:
        return [(finding.issue, d["action"]) for d in detail]
    if actions:
        return [(finding.issue, action) for action in actions]
    return [(finding.issue, str(detail))]


@pytest.mark.parametrize("name, document", generated_documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_an_iam_linter_written_by_others_finds_nothing_unexplained(name, document):
    from parliament import analyze_policy_string

    findings = analyze_policy_string(json.dumps(document), include_community_auditors=True).findings
    unexplained = [key for f in findings for key in linter_keys(f) if key not in LINTER_SUPPRESSIONS]
    assert unexplained == [], name


def test_every_suppressed_linter_finding_still_occurs():
    """A suppression that no longer matches anything is removed, not kept as a blanket excuse."""
    from parliament import analyze_policy_string

    seen = {key for _, document in generated_documents()
            for f in analyze_policy_string(json.dumps(document), include_community_auditors=True).findings
            for key in linter_keys(f)}
    assert set(LINTER_SUPPRESSIONS) <= seen



@pytest.mark.parametrize("project", PROJECTS[:2], ids=lambda p: p.name)
def test_the_age_calculator_api_may_only_invoke_the_project_endpoint(project):
    role = webapp_role(project)
    assert role.policy["Statement"] == [{
        "Sid": "InvokeEndpoint", "Effect": "Allow", "Action": ["sagemaker:InvokeEndpoint"],
        "Resource": [f"arn:aws:sagemaker:{project.region}:123456789012:endpoint/{project.model.lower()}"]}]
    trust = trust_policy(role.service, role.source_account, role.source_arns)["Statement"][0]
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"},
                                  "ArnLike": {"aws:SourceArn": [f"arn:aws:execute-api:{project.region}:123456789012:*"]}}
