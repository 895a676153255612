"""IAM: service roles with trust policies and inline least-privilege policies.

``project_roles(project)`` gives the four roles of a project (CodePipeline, CodeBuild, SageMaker
execution, Step Functions), each scoped to the project's bucket, repositories, CodeBuild projects,
SageMaker jobs by name prefix, roles and (with the ``workflow`` build stage) state machine.
``stepfunctions_policy`` is the one policy of the ML workflow's role, for a project or a bare ``Scope``. ``WILDCARD_ONLY`` lists the few actions AWS only grants on
``"Resource": "*"``. SageMaker ARNs hold names in lower case, so job prefixes are lower-cased.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from mlops_core.aws import Clients, error_code, is_not_found, resolve
from mlops_core.ensure import Action, Ensured, normalize_document, result

if TYPE_CHECKING:
    from mlops_core.project import Project

KIND = "iam role"
POLICY_NAME = "least-privilege"
SERVICES = {"codepipeline": "codepipeline.amazonaws.com", "codebuild": "codebuild.amazonaws.com",
            "sagemaker": "sagemaker.amazonaws.com", "stepfunctions": "states.amazonaws.com"}

# Actions that have no resource-level permissions: AWS only grants them on "*".
WILDCARD_ONLY = {
    "ecr:GetAuthorizationToken": "the registry login token is account-wide; ECR has no resource for it",
    "sagemaker:ListModelPackages": "List* calls of SageMaker have no resource type",
    "sagemaker:ListEndpoints": "List* calls of SageMaker have no resource type",
    "sagemaker:ListEndpointConfigs": "List* calls of SageMaker have no resource type",
    "sagemaker:ListModels": "List* calls of SageMaker have no resource type",
    "cloudwatch:PutMetricData": "CloudWatch metrics have no ARN (restricted by the cloudwatch:namespace "
                                "condition instead)",
    "application-autoscaling:DescribeScalableTargets": "Describe* calls of Application Auto Scaling have "
                                                       "no resource type",
    "application-autoscaling:DescribeScalingPolicies": "Describe* calls of Application Auto Scaling have "
                                                       "no resource type",
}


@dataclass(frozen=True)
class RoleSpec:
    """A role to ensure: name, the service that assumes it, its inline policy."""

    name: str
    service: str
    policy: dict
    description: str = ""


def trust_policy(service: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}


def _allow(sid: str, actions: list[str], resources: list[str] | str, condition: dict | None = None) -> dict:
    statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions),
                 "Resource": resources if isinstance(resources, str) else list(resources)}
    if condition:
        statement["Condition"] = condition
    return statement


def _document(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


@dataclass(frozen=True)
class Scope:
    """What a release's SageMaker work is confined to: one bucket, jobs named after one model, one model
    package group, one SageMaker execution role to pass, optionally one KMS key."""

    partition: str
    region: str
    account: str
    bucket: str
    model: str
    model_package_group: str
    sagemaker_role_arn: str
    kms_key_arn: str | None = None

    @classmethod
    def of(cls, project: Project) -> Scope:
        p = project
        return cls(p.partition, p.region, p.account_id, p.bucket, p.model, p.model_package_group,
                   p.role_arn("sagemaker"), p.kms_key_arn)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    @property
    def objects(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}/*"


class _ReleaseStatements(NamedTuple):
    jobs: dict
    register: dict
    pass_sagemaker_role: dict
    kms: list[dict]


def _release_statements(scope: Scope) -> _ReleaseStatements:
    """The statements of every role that runs a release's jobs (CodeBuild and Step Functions)."""
    s, prefix, group = scope, scope.model.lower(), scope.model_package_group.lower()
    jobs = _allow("SageMakerJobs", [f"sagemaker:{verb}{kind}" for verb in ("Create", "Describe", "Stop")
                                    for kind in ("ProcessingJob", "TrainingJob")] + ["sagemaker:AddTags"],
                  [s.arn("sagemaker", f"{kind}/{prefix}-*") for kind in ("processing-job", "training-job")])
    register = _allow("ModelPackages", ["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage",
                                        "sagemaker:UpdateModelPackage", "sagemaker:CreateModelPackageGroup",
                                        "sagemaker:DescribeModelPackageGroup", "sagemaker:AddTags"],
                      [s.arn("sagemaker", f"model-package-group/{group}"),
                       s.arn("sagemaker", f"model-package/{group}/*")])
    pass_sagemaker_role = _allow("PassSageMakerRole", ["iam:PassRole"], [s.sagemaker_role_arn],
                                 {"StringEquals": {"iam:PassedToService": SERVICES["sagemaker"]}})
    kms = ([_allow("KmsKey", ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
                   [s.kms_key_arn])] if s.kms_key_arn else [])
    return _ReleaseStatements(jobs, register, pass_sagemaker_role, kms)


def stepfunctions_policy(scope: Scope) -> dict:
    """The policy of the role the ML workflow's state machine runs as (``workflows.ml_workflow``): its
    SageMaker ``.sync`` jobs and their EventBridge rules, reading evaluation.json, registering the model."""
    r = _release_statements(scope)
    return _document(
        r.jobs, r.register, _allow("ListModelPackages", ["sagemaker:ListModelPackages"], "*"),
        _allow("SyncIntegrationRules", ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
               [scope.arn("events", "rule/StepFunctionsGetEventsForSageMaker*Rule")]),
        _allow("Evaluation", ["s3:GetObject"], [scope.objects]),
        r.pass_sagemaker_role, *r.kms)


def _workflow_statements(project: Project) -> list[dict]:
    """With the ``workflow`` build stage, CodeBuild runs (and watches) the project's state machine only."""
    if project.build_stage != "workflow":
        return []
    machine = project.state_machine
    return [_allow("Workflow", ["states:DescribeStateMachine", "states:StartExecution"],
                   [project.arn("states", f"stateMachine:{machine}")]),
            _allow("WorkflowExecutions", ["states:DescribeExecution", "states:GetExecutionHistory"],
                   [project.arn("states", f"execution:{machine}:*")])]


def project_roles(project: Project) -> list[RoleSpec]:
    """The four roles of a project with their least-privilege inline policies."""
    p = project
    scope = Scope.of(p)
    jobs, register, pass_sagemaker_role, kms = _release_statements(scope)
    bucket = f"arn:{p.partition}:s3:::{p.bucket}"
    objects = scope.objects
    repository = p.arn("ecr", f"repository/{p.ecr_repository}")
    prefix = p.model.lower()
    hosting = [p.arn("sagemaker", f"{kind}/{prefix}*") for kind in ("model", "endpoint-config", "endpoint")]
    codebuild_logs = p.arn("logs", f"log-group:/aws/codebuild/{p.name}-*")
    sagemaker_logs = p.arn("logs", "log-group:/aws/sagemaker/*")
    ecr_pull = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    ecr_login = _allow("EcrLogin", ["ecr:GetAuthorizationToken"], "*")
    return [
        RoleSpec(p.role_name("codepipeline"), SERVICES["codepipeline"], _document(
            _allow("ArtifactBucket", ["s3:GetBucketVersioning", "s3:GetBucketLocation"], [bucket]),
            _allow("ArtifactObjects", ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"], [objects]),
            _allow("SourceRepository", ["codecommit:GetBranch", "codecommit:GetCommit",
                                        "codecommit:GetRepository", "codecommit:UploadArchive",
                                        "codecommit:GetUploadArchiveStatus", "codecommit:CancelUploadArchive"],
                   [p.arn("codecommit", p.code_repository)]),
            _allow("Builds", ["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild"],
                   [p.arn("codebuild", f"project/{p.name}-*")]),
            *kms), f"CodePipeline of project {p.name}"),
        RoleSpec(p.role_name("codebuild"), SERVICES["codebuild"], _document(
            _allow("BuildLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                   [codebuild_logs, f"{codebuild_logs}:*"]),
            _allow("JobLogs", ["logs:DescribeLogStreams", "logs:GetLogEvents"],
                   [sagemaker_logs, f"{sagemaker_logs}:*"]),
            _allow("Bucket", ["s3:ListBucket", "s3:GetBucketLocation"], [bucket]),
            _allow("Objects", ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"], [objects]),
            ecr_login,
            _allow("ImagePush", ecr_pull + ["ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                                            "ecr:CompleteLayerUpload", "ecr:PutImage"], [repository]),
            _allow("Parameters", ["ssm:GetParameter", "ssm:GetParameters"],
                   [p.arn("ssm", f"parameter/{p.name}/*")]),
            jobs, register,
            _allow("SageMakerLists", ["sagemaker:ListModelPackages", "sagemaker:ListEndpoints",
                                      "sagemaker:ListEndpointConfigs", "sagemaker:ListModels"], "*"),
            _allow("Hosting", [f"sagemaker:{verb}{kind}" for verb in ("Create", "Describe", "Delete")
                               for kind in ("Model", "EndpointConfig", "Endpoint")]
                   + ["sagemaker:UpdateEndpoint", "sagemaker:AddTags", "sagemaker:ListTags"], hosting),
            _allow("EndpointScaling", ["application-autoscaling:RegisterScalableTarget",
                                       "application-autoscaling:PutScalingPolicy"],
                   p.arn("application-autoscaling", "scalable-target/*")),
            _allow("DescribeScaling", ["application-autoscaling:DescribeScalableTargets",
                                       "application-autoscaling:DescribeScalingPolicies"], "*"),
            _allow("ScalingServiceRole", ["iam:CreateServiceLinkedRole"],
                   [p.arn("iam", "role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                          "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint", region=False)],
                   {"StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}}),
            *_workflow_statements(p), pass_sagemaker_role, *kms), f"CodeBuild projects of project {p.name}"),
        RoleSpec(p.role_name("sagemaker"), SERVICES["sagemaker"], _document(
            _allow("Bucket", ["s3:ListBucket", "s3:GetBucketLocation"], [bucket]),
            _allow("Objects", ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"], [objects]),
            ecr_login,
            _allow("ImagePull", ecr_pull, [repository]),
            _allow("Logs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                            "logs:DescribeLogStreams"], [sagemaker_logs, f"{sagemaker_logs}:*"]),
            _allow("Metrics", ["cloudwatch:PutMetricData"], "*",
                   {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}}),
            *kms), f"SageMaker jobs and endpoints of project {p.name}"),
        RoleSpec(p.role_name("stepfunctions"), SERVICES["stepfunctions"], stepfunctions_policy(scope),
                 f"Step Functions workflows of project {p.name}"),
    ]


def _role(iam, name: str) -> dict | None:
    try:
        return iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def ensure_role(name: str, *, service: str, policies: Mapping[str, dict], description: str = "",
                tags: Mapping[str, str] | None = None, dry_run: bool = False,
                clients: Clients | None = None) -> Ensured:
    """Create the role or bring its trust policy, inline ``policies`` (name -> document) and tags in line.

    Inline policies not in ``policies`` are deleted: the role belongs to the caller.
    """
    iam = resolve(clients).iam
    trust = trust_policy(service)
    tag_list = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
    current = _role(iam, name)
    changes: list[str] = []
    if current is None:
        if not dry_run:
            current = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                                      Description=description, Tags=tag_list)["Role"]
            for policy_name, document in policies.items():
                iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
        return result(KIND, name, created=True, arn=(current or {}).get("Arn"), dry_run=dry_run)
    if normalize_document(current["AssumeRolePolicyDocument"]) != normalize_document(trust):
        changes.append("trust policy")
        if not dry_run:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
    existing = set(iam.list_role_policies(RoleName=name)["PolicyNames"])
    for policy_name, document in policies.items():
        if policy_name not in existing or normalize_document(iam.get_role_policy(
                RoleName=name, PolicyName=policy_name)["PolicyDocument"]) != normalize_document(document):
            changes.append(f"policy {policy_name}")
            if not dry_run:
                iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
    for policy_name in sorted(existing - set(policies)):
        changes.append(f"remove policy {policy_name}")
        if not dry_run:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    current_tags = {t["Key"]: t["Value"] for t in current.get("Tags", [])}
    if any(current_tags.get(k) != v for k, v in (tags or {}).items()):
        changes.append("tags")
        if not dry_run:
            iam.tag_role(RoleName=name, Tags=tag_list)
    return result(KIND, name, changes=changes, arn=current["Arn"], dry_run=dry_run)


def ensure_project_role(spec: RoleSpec, *, tags: Mapping[str, str] | None = None, dry_run: bool = False,
                        clients: Clients | None = None) -> Ensured:
    return ensure_role(spec.name, service=spec.service, policies={POLICY_NAME: spec.policy},
                       description=spec.description, tags=tags, dry_run=dry_run, clients=clients)


def delete_role(name: str, *, clients: Clients | None = None) -> Ensured:
    """Delete the role after its inline and attached policies; ABSENT when it is already gone."""
    iam = resolve(clients).iam
    try:
        for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=name)
    except ClientError as exc:
        if is_not_found(exc):
            return Ensured(Action.ABSENT, KIND, name)
        raise
    return Ensured(Action.DELETED, KIND, name)


T = TypeVar("T")


ROLE_NOT_READY_CODES = ("InvalidInputException", "InvalidStructureException")  # CodeBuild, CodePipeline
# Step Functions: AccessDeniedException "Neither the global service principal states.amazonaws.com, nor the
# regional one is authorized to assume the provided role." (the caller's own denial says "to perform").
STATES_ROLE_NOT_READY = "authorized to assume the provided role"


def _is_role_not_ready(exc: BaseException) -> bool:
    """A service's "cannot assume the role" answer (a new role), not the caller's own AccessDenied."""
    code, text = error_code(exc), str(exc)
    return ((code in ROLE_NOT_READY_CODES and "AssumeRole" in text)
            or (code == "AccessDeniedException" and STATES_ROLE_NOT_READY in text))


def retry_until_role_usable(call: Callable[[], T], *, timeout: float = 90.0,
                            sleep: Callable[[float], Any] = time.sleep) -> T:
    """``call()``, retried while a service says it cannot assume a role yet (new IAM roles take seconds)."""
    return Retrying(retry=retry_if_exception(_is_role_not_ready), stop=stop_after_delay(timeout),
                    wait=wait_exponential(multiplier=1, max=10), sleep=sleep, reraise=True)(call)
