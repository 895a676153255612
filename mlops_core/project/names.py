"""Every name of one project, derived from the project name: the plan's single source of names.

Everything is named after ``Project.name`` (and tagged ``project=<name>``): bucket
``{name}-{account}-{region}``, ECR and CodeCommit repositories ``{name}``, roles ``{name}-{kind}``,
CodeBuild projects ``{name}-{task}``, SSM parameters ``/{name}/{key}``, pipeline ``{name}``; with the
``workflow`` build stage also the Step Functions state machine ``{model}-ml-workflow`` that the pipeline's
``Workflow`` action runs instead of the separate Preprocess / Train / Evaluate actions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from mlops_core.aws import partition_of
from mlops_core.config import DEFAULTS as CONFIG_DEFAULTS
from mlops_core.naming import resource_name

# The pipeline's Build stage: separate SageMaker job actions ("jobs", the default) or one action running the
# Step Functions ML workflow ("workflow", see bin/run_workflow.py). Deploy follows either.
BUILD_STAGES = {"jobs": ("ContainerBuild", "Preprocess", "Train", "Evaluate"),
                "workflow": ("ContainerBuild", "Workflow")}
TASKS_OF = {stage: (*build, "Deploy") for stage, build in BUILD_STAGES.items()}  # build stage -> its tasks
TASKS = TASKS_OF["jobs"]
ALL_TASKS = tuple(dict.fromkeys(task for tasks in TASKS_OF.values() for task in tasks))
ROLE_KINDS = ("codepipeline", "codebuild", "sagemaker", "stepfunctions", "events")
PARAMETER_KEYS = ("bucket-name", "sagemaker-role-arn", "image-uri", "model-name", "model-package-group",
                  "pipeline-name")
TAG_KEY = "project"
PREPROCESS, TRAIN, EVALUATE = "Preprocess", "Train", "Evaluate"  # a release's steps: jobs {model}-{step}-{id}


def _kebab(task: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", task).lower()


def state_machine_name(model: str) -> str:
    """The ML workflow's state machine of ``model``: ``{model}-ml-workflow``."""
    return resource_name(model, "ml-workflow", max_length=80)


@dataclass(frozen=True)
class Project:
    """A project's settings and every resource name derived from them."""

    name: str
    account_id: str
    region: str
    model_name: str | None = None
    bucket_name: str | None = None
    pipeline_name: str | None = None
    kms_key_arn: str | None = None
    keep_images: int = 10
    threshold: float | None = CONFIG_DEFAULTS["threshold"]  # an absolute maximum RMSE on top of the default gate
    epochs: int = CONFIG_DEFAULTS["epochs"]
    batch_size: int = CONFIG_DEFAULTS["batch_size"]
    code_branch: str = "main"
    model_branch: str = "model"
    data_trigger_key: str | None = None
    build_image: str = "aws/codebuild/standard:7.0"
    dockerfile: str = "model_container/Dockerfile"
    seed_branches: bool = False
    tls_only: bool = True  # False only on moto (see mlops_core.s3.ensure_bucket)
    build_stage: str = "jobs"  # "jobs": Preprocess/Train/Evaluate actions; "workflow": one Step Functions action
    retry_failed: bool = True  # a Retry of a failed step in CodePipeline starts a fresh attempt of its job
    webapp: bool = False  # the Age Calculator too: its page behind CloudFront, its API in front of the endpoint

    def __post_init__(self) -> None:
        if self.build_stage not in BUILD_STAGES:
            raise ValueError(f"unknown build stage {self.build_stage!r}; expected one of {tuple(BUILD_STAGES)}")

    @classmethod
    def from_config(cls, config: Any, *, account_id: str, region: str, **settings: Any) -> Project:
        """A Project from a validated ``mlops_core.config.Config`` plus project-only settings."""
        return cls(name=config.project_name, account_id=account_id, region=region,
                   model_name=config.model_name, bucket_name=config.bucket_name,
                   pipeline_name=config.pipeline_name, threshold=config.threshold, epochs=config.epochs,
                   batch_size=config.batch_size, **{k: v for k, v in settings.items() if v is not None})

    def with_settings(self, **changes: Any) -> Project:
        return replace(self, **changes)

    @property
    def partition(self) -> str:
        return partition_of(self.region)

    @property
    def model(self) -> str:
        return self.model_name or self.name

    @property
    def bucket(self) -> str:
        return self.bucket_name or f"{self.name}-{self.account_id}-{self.region}"

    @property
    def pipeline(self) -> str:
        return self.pipeline_name or self.name

    @property
    def ecr_repository(self) -> str:
        return self.name

    @property
    def code_repository(self) -> str:
        return self.name

    @property
    def model_package_group(self) -> str:
        return self.model

    @property
    def tags(self) -> dict[str, str]:
        return {TAG_KEY: self.name}

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if region else ''}:"
                f"{self.account_id if account else ''}:{resource}")

    def role_name(self, kind: str) -> str:
        if kind not in ROLE_KINDS:
            raise ValueError(f"unknown role kind {kind!r}; expected one of {ROLE_KINDS}")
        return f"{self.name}-{kind}"

    def role_arn(self, kind: str) -> str:
        return self.arn("iam", f"role/{self.role_name(kind)}", region=False)

    @property
    def tasks(self) -> tuple[str, ...]:
        """The pipeline's CodeBuild tasks with this build stage."""
        return TASKS_OF[self.build_stage]

    @property
    def retrain_rule(self) -> str:
        """The EventBridge rule that starts the pipeline when a monitoring alarm fires (``project.monitoring``)."""
        return resource_name(self.model, "retrain-on-alarm")

    @property
    def state_machine(self) -> str:
        """The ML workflow's state machine (``workflows.ml_workflow``), run by the ``workflow`` build stage."""
        return state_machine_name(self.model)

    def codebuild_project(self, task: str) -> str:
        if task not in ALL_TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {ALL_TASKS}")
        return f"{self.name}-{_kebab(task)}"

    def parameter(self, key: str) -> str:
        return f"/{self.name}/{key}"

    @property
    def image_repository_uri(self) -> str:
        suffix = ".cn" if self.partition == "aws-cn" else ""
        return f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com{suffix}/{self.ecr_repository}"

    @property
    def clone_url(self) -> str:
        return f"https://git-codecommit.{self.region}.amazonaws.com/v1/repos/{self.code_repository}"


    def parameters(self) -> dict[str, str]:
        """The SSM parameters handing values between components: name -> value."""
        values = {"bucket-name": self.bucket, "sagemaker-role-arn": self.role_arn("sagemaker"),
                  "image-uri": self.image_repository_uri, "model-name": self.model,
                  "model-package-group": self.model_package_group, "pipeline-name": self.pipeline}
        return {self.parameter(key): values[key] for key in PARAMETER_KEYS}
