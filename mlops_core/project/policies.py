"""The project's IAM roles: five service roles, each scoped to the project's own resources.

``project_roles(project)`` gives the roles of a project (CodePipeline, CodeBuild, SageMaker execution,
Step Functions), each scoped to the project's bucket, repositories, CodeBuild projects, SageMaker jobs by
name prefix, roles and (with the ``workflow`` build stage) state machine. ``stepfunctions_policy`` is the
one policy of the ML workflow's role, for a project or a bare ``Scope``. SageMaker ARNs hold names in lower
case, so job prefixes are lower-cased.

Every pattern is delimited: an exact name, or a name followed by a fixed word and ``-`` (jobs
``{model}-train-*``, endpoint configs ``{endpoint}-config-*``), so the resources of another project such as
``abalone2`` never match. Trust policies carry ``aws:SourceAccount`` and, where the service sends it,
``aws:SourceArn`` (the confused-deputy conditions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from mlops_core.iam import SERVICES, RoleSpec, policy_document, statement
from mlops_core.project.names import EVALUATE, PREPROCESS, TRAIN, Project


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
    job_arns = [s.arn("sagemaker", f"{kind}/{prefix}-{step.lower()}-*")
                for kind, step in (("processing-job", PREPROCESS), ("training-job", TRAIN), ("processing-job", EVALUATE))]
    jobs = statement("SageMakerJobs", [f"sagemaker:{verb}{kind}" for verb in ("Create", "Describe", "Stop")
                                       for kind in ("ProcessingJob", "TrainingJob")]
                     + ["sagemaker:AddTags", "sagemaker:ListTags"], job_arns)
    register = statement("ModelPackages", ["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage",
                                        "sagemaker:UpdateModelPackage", "sagemaker:CreateModelPackageGroup",
                                        "sagemaker:DescribeModelPackageGroup", "sagemaker:AddTags"],
                      [s.arn("sagemaker", f"model-package-group/{group}"),
                       s.arn("sagemaker", f"model-package/{group}/*")])
    pass_sagemaker_role = statement("PassSageMakerRole", ["iam:PassRole"], [s.sagemaker_role_arn],
                                 {"StringEquals": {"iam:PassedToService": SERVICES["sagemaker"]}})
    kms = ([statement("KmsKey", ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
                   [s.kms_key_arn])] if s.kms_key_arn else [])
    return _ReleaseStatements(jobs, register, pass_sagemaker_role, kms)


def stepfunctions_policy(scope: Scope) -> dict:
    """The policy of the role the ML workflow's state machine runs as (``workflows.ml_workflow``): its
    SageMaker ``.sync`` jobs and their EventBridge rules, reading evaluation.json, registering the model."""
    r = _release_statements(scope)
    return policy_document(
        r.jobs, r.register, statement("ListModelPackages", ["sagemaker:ListModelPackages"], "*"),
        statement("SyncIntegrationRules", ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
               [scope.arn("events", "rule/StepFunctionsGetEventsForSageMaker*Rule")]),
        statement("Evaluation", ["s3:GetObject"], [scope.objects]),
        r.pass_sagemaker_role, *r.kms)


def _workflow_statements(project: Project) -> list[dict]:
    """With the ``workflow`` build stage, CodeBuild runs (and watches) the project's state machine only."""
    if project.build_stage != "workflow":
        return []
    machine = project.state_machine
    return [statement("Workflow", ["states:DescribeStateMachine", "states:StartExecution"],
                   [project.arn("states", f"stateMachine:{machine}")]),
            statement("WorkflowExecutions", ["states:DescribeExecution", "states:GetExecutionHistory"],
                   [project.arn("states", f"execution:{machine}:*")])]


def project_roles(project: Project) -> list[RoleSpec]:
    """The five roles of a project with their least-privilege inline policies."""
    p = project
    scope = Scope.of(p)
    jobs, register, pass_sagemaker_role, kms = _release_statements(scope)
    bucket = f"arn:{p.partition}:s3:::{p.bucket}"
    objects = scope.objects
    repository = p.arn("ecr", f"repository/{p.ecr_repository}")
    endpoint = p.model.lower()  # bin/deploy.py's default endpoint; deploy_model names its model and config after it
    hosting = [p.arn("sagemaker", name) for name in (
        f"model/{endpoint}-model-*", f"endpoint-config/{endpoint}-config-*", f"endpoint/{endpoint}")]
    builds = [p.arn("codebuild", f"project/{p.codebuild_project(task)}") for task in p.tasks]
    codebuild_logs = [p.arn("logs", f"log-group:/aws/codebuild/{p.codebuild_project(task)}{stream}")
                      for task in p.tasks for stream in ("", ":*")]
    job_streams = [p.arn("logs", f"log-group:/aws/sagemaker/{group}:log-stream:{p.model}-{step}-*")
                   for group, step in (("ProcessingJobs", PREPROCESS), ("TrainingJobs", TRAIN),
                                       ("ProcessingJobs", EVALUATE), ("ProcessingJobs", "baseline"))]
    # the processing jobs SageMaker starts for the monitoring schedules are named model-monitoring-{time}-{id}:
    # a name of SageMaker's choosing, the only one their log streams can be scoped to
    monitoring_streams = [p.arn("logs", "log-group:/aws/sagemaker/ProcessingJobs:log-stream:model-monitoring-*")]
    job_groups = [p.arn("logs", f"log-group:/aws/sagemaker/{group}") for group in ("ProcessingJobs", "TrainingJobs")]
    sagemaker_logs = [*job_groups, *(p.arn("logs", f"log-group:/aws/sagemaker/Endpoints/{p.model}{stream}")
                                     for stream in ("", ":*"))]
    ecr_pull = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    ecr_login = statement("EcrLogin", ["ecr:GetAuthorizationToken"], "*")
    return [
        RoleSpec(p.role_name("codepipeline"), SERVICES["codepipeline"], policy_document(
            statement("ArtifactBucket", ["s3:GetBucketVersioning", "s3:GetBucketLocation"], [bucket]),
            statement("ArtifactObjects", ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"], [objects]),
            statement("SourceRepository", ["codecommit:GetBranch", "codecommit:GetCommit",
                                        "codecommit:GetRepository", "codecommit:UploadArchive",
                                        "codecommit:GetUploadArchiveStatus", "codecommit:CancelUploadArchive"],
                   [p.arn("codecommit", p.code_repository)]),
            statement("Builds", ["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild"], builds),
            *kms), f"CodePipeline of project {p.name}", source_account=p.account_id,
            source_arns=(p.arn("codepipeline", p.pipeline),)),
        RoleSpec(p.role_name("codebuild"), SERVICES["codebuild"], policy_document(
            statement("BuildLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                      codebuild_logs),
            statement("JobLogs", ["logs:DescribeLogStreams", "logs:GetLogEvents"], [*job_groups, *job_streams]),
            statement("Bucket", ["s3:ListBucket", "s3:GetBucketLocation"], [bucket]),
            statement("Objects", ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"], [objects]),
            ecr_login,
            statement("ImagePush", ecr_pull + ["ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                                               "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:DescribeImages"],
                      [repository]),
            statement("Parameters", ["ssm:GetParameter", "ssm:GetParameters"],
                   [p.arn("ssm", f"parameter/{p.name}/*")]),
            jobs, register,
            statement("SageMakerLists", ["sagemaker:ListModelPackages", "sagemaker:ListEndpoints",
                                      "sagemaker:ListEndpointConfigs", "sagemaker:ListModels"], "*"),
            statement("Hosting", [f"sagemaker:{verb}{kind}" for verb in ("Create", "Describe", "Delete")
                                  for kind in ("Model", "EndpointConfig", "Endpoint")]
                      + ["sagemaker:UpdateEndpoint", "sagemaker:AddTags", "sagemaker:ListTags"], hosting),
            # read only: the clean-up after a deploy keeps the configs that endpoints {endpoint}-* still run
            statement("ShadowEndpoints", ["sagemaker:DescribeEndpoint"], [p.arn("sagemaker", f"endpoint/{endpoint}-*")]),
            statement("EndpointScaling", ["application-autoscaling:RegisterScalableTarget",
                                       "application-autoscaling:PutScalingPolicy"],
                   p.arn("application-autoscaling", "scalable-target/*")),
            statement("DescribeScaling", ["application-autoscaling:DescribeScalableTargets",
                                       "application-autoscaling:DescribeScalingPolicies"], "*"),
            statement("ScalingServiceRole", ["iam:CreateServiceLinkedRole"],
                   [p.arn("iam", "role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                          "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint", region=False)],
                   {"StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}}),
            *_workflow_statements(p), pass_sagemaker_role, *kms), f"CodeBuild projects of project {p.name}",
            source_account=p.account_id, source_arns=tuple(builds)),
        RoleSpec(p.role_name("sagemaker"), SERVICES["sagemaker"], policy_document(
            statement("Bucket", ["s3:ListBucket", "s3:GetBucketLocation"], [bucket]),
            statement("Objects", ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"], [objects]),
            ecr_login,
            statement("ImagePull", ecr_pull, [repository]),
            statement("Logs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                               "logs:DescribeLogStreams"], [*sagemaker_logs, *job_streams, *monitoring_streams]),
            statement("Metrics", ["cloudwatch:PutMetricData"], "*",
                   {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}}),
            *kms), f"SageMaker jobs and endpoints of project {p.name}", source_account=p.account_id),
        RoleSpec(p.role_name("stepfunctions"), SERVICES["stepfunctions"], stepfunctions_policy(scope),
                 f"Step Functions workflows of project {p.name}", source_account=p.account_id,
                 source_arns=(p.arn("states", f"stateMachine:{p.state_machine}"),)),
        RoleSpec(p.role_name("events"), SERVICES["events"], policy_document(
            statement("StartPipeline", ["codepipeline:StartPipelineExecution"], [p.arn("codepipeline", p.pipeline)])),
            f"EventBridge rule {p.retrain_rule}: monitoring alarms start pipeline {p.pipeline}",
            source_account=p.account_id, source_arns=(p.arn("events", f"rule/{p.retrain_rule}"),)),
    ]
