"""One project's CI/CD resources: names derived from the project name, the bootstrap plan, teardown.

Everything is named after ``Project.name`` (and tagged ``project=<name>``): bucket
``{name}-{account}-{region}``, ECR and CodeCommit repositories ``{name}``, roles ``{name}-{kind}``,
CodeBuild projects ``{name}-{task}``, SSM parameters ``/{name}/{key}``, pipeline ``{name}``; with the
``workflow`` build stage also the Step Functions state machine ``{model}-ml-workflow`` that the pipeline's
``Workflow`` action runs instead of the separate Preprocess / Train / Evaluate actions.
``bootstrap`` creates or updates them in dependency order (``dry_run=True`` only plans);
``teardown`` deletes them, tolerating what is already gone.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, replace
from typing import Any

from mlops_core import codebuild, codecommit, codepipeline, ecr, iam, s3, ssm, stepfunctions
from mlops_core.aws import Clients, partition_of, resolve
from mlops_core.codebuild import ALL_TASKS, BUILD_STAGES, TASKS_OF
from mlops_core.codebuild import TASKS as TASKS  # the default build stage's tasks, re-exported
from mlops_core.config import DEFAULTS as CONFIG_DEFAULTS
from mlops_core.config import add_config_arguments, config_from_args
from mlops_core.ensure import Action, Ensured
from mlops_core.logs import get_logger
from workflows.ml_workflow import ensure_ml_workflow, state_machine_name

ROLE_KINDS = tuple(iam.SERVICES)  # codepipeline, codebuild, sagemaker, stepfunctions
PARAMETER_KEYS = ("bucket-name", "sagemaker-role-arn", "image-uri", "model-name", "model-package-group",
                  "pipeline-name")
TAG_KEY = "project"


def _kebab(task: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", task).lower()


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
    threshold: float = CONFIG_DEFAULTS["threshold"]
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

    @property
    def image_uri(self) -> str:
        return f"{self.image_repository_uri}:latest"

    def parameters(self) -> dict[str, str]:
        """The SSM parameters handing values between components: name -> value."""
        values = {"bucket-name": self.bucket, "sagemaker-role-arn": self.role_arn("sagemaker"),
                  "image-uri": self.image_uri, "model-name": self.model,
                  "model-package-group": self.model_package_group, "pipeline-name": self.pipeline}
        return {self.parameter(key): values[key] for key in PARAMETER_KEYS}


def bootstrap(project: Project, *, dry_run: bool = False, clients: Clients | None = None) -> list[Ensured]:
    """Create or update every resource of the project, in dependency order; ``dry_run`` only plans."""
    clients = resolve(clients)
    p, tags, common = project, project.tags, {"dry_run": dry_run, "clients": clients}
    log = get_logger("bootstrap").bind(project=p.name, dry_run=dry_run)
    steps = [
        lambda: s3.ensure_bucket(p.bucket, kms_key_arn=p.kms_key_arn, tags=tags, tls_only=p.tls_only, **common),
        lambda: ecr.ensure_repository(p.ecr_repository, keep_images=p.keep_images, tags=tags, **common),
        *[lambda spec=spec: iam.ensure_project_role(spec, tags=tags, **common) for spec in iam.project_roles(p)],
        lambda: codecommit.ensure_repository(p.code_repository, description=f"Pipeline and model code of project "
                                             f"{p.name}", tags=tags, **common),
        *([lambda: codecommit.seed_branches(p.code_repository, [p.code_branch, p.model_branch],
                                            {"README.md": codecommit.readme(p.code_repository, p.code_branch,
                                                                            p.model_branch)}, **common)]
          if p.seed_branches else []),
        *[lambda name=name, value=value: ssm.ensure_parameter(name, value, tags=tags, **common)
          for name, value in p.parameters().items()],
        *([lambda: ensure_ml_workflow(p.model, p.role_arn("sagemaker"), p.role_arn("stepfunctions"),
                                      tags=tags, **common)] if p.build_stage == "workflow" else []),
        *[lambda task=task: codebuild.ensure_project(codebuild.project_definition(p, task), **common)
          for task in p.tasks],
        lambda: codepipeline.ensure_pipeline(codepipeline.pipeline_definition(p), tags=tags, **common),
    ]
    results = []
    for step in steps:
        ensured = step()
        log.info("ensured", kind=ensured.kind, name=ensured.name, action=ensured.action.value,
                 changes=ensured.details.get("changes"))
        results.append(ensured)
    return results


def teardown(project: Project, *, clients: Clients | None = None) -> list[Ensured]:
    """Delete every resource of the project (bucket and ECR repository emptied first); safe to repeat.

    What only the other build stage has (CodeBuild projects, the state machine) is deleted too, and
    reported only when it was there: a project switched between build stages leaves nothing behind.
    """
    clients = resolve(clients)
    p = project
    log = get_logger("teardown").bind(project=p.name)
    results = [codepipeline.delete_pipeline(p.pipeline, clients=clients)]
    owned = [(task in p.tasks, codebuild.delete_project(p.codebuild_project(task), clients=clients))
             for task in ALL_TASKS]
    owned.append((p.build_stage == "workflow", stepfunctions.delete_state_machine(p.state_machine, clients=clients)))
    results += [ensured for own, ensured in owned if own or ensured.action is Action.DELETED]
    results += codebuild.delete_build_logs(f"{p.name}-", clients=clients)
    results.append(codecommit.delete_repository(p.code_repository, clients=clients))
    results += [ssm.delete_parameter(name, clients=clients) for name in p.parameters()]
    results.append(ecr.delete_repository(p.ecr_repository, clients=clients))
    results += [iam.delete_role(p.role_name(kind), clients=clients) for kind in ROLE_KINDS]
    results.append(s3.delete_bucket(p.bucket, clients=clients))
    for ensured in results:
        log.info("deleted", kind=ensured.kind, name=ensured.name, action=ensured.action.value)
    return results


VERBS = {Action.CREATED: "create", Action.UPDATED: "update", Action.UNCHANGED: "leave alone",
         Action.DELETED: "delete", Action.ABSENT: "already gone"}


def describe_results(results: list[Ensured]) -> list[str]:
    """One line per resource: what was (or, in a dry run, would be) done, and what changed."""
    lines = []
    for ensured in results:
        verb = VERBS[ensured.action]
        if ensured.details.get("dry_run") and ensured.action in (Action.CREATED, Action.UPDATED):
            verb = f"would {verb}"
        changes = ensured.details.get("changes")
        lines.append(f"{verb:<18} {ensured.kind} {ensured.name}" + (f" ({', '.join(changes)})" if changes else ""))
    return lines


def add_project_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of bin/bootstrap.py and bin/teardown.py (``--project`` or PROJECT_NAME names the project)."""
    parser.add_argument("--project", dest="project_name", metavar="PROJECT_NAME", help="same as --project-name")
    add_config_arguments(parser, ["project_name", "model_name", "pipeline_name", "bucket_name", "threshold",
                                  "epochs", "batch_size"])
    parser.add_argument("--kms-key-arn", help="KMS key for the bucket, pipeline artifacts and builds (default SSE-S3)")
    parser.add_argument("--keep-images", type=int, help="images the ECR lifecycle policy keeps (default 10)")
    parser.add_argument("--data-trigger-key", help="S3 key in the bucket whose new versions start a release")
    parser.add_argument("--seed-branches", action="store_true", default=None,
                        help="create the main and model branches with a README on an empty repository")
    parser.add_argument("--build-stage", choices=tuple(BUILD_STAGES),
                        help="the pipeline's Build stage: 'jobs' (default), separate Preprocess, Train and Evaluate "
                             "actions; 'workflow', one action running the Step Functions ML workflow")
    parser.add_argument("--no-tls-policy", dest="tls_only", action="store_false", default=None,
                        help="skip the bucket's TLS-only policy (only for moto's server, which ignores its condition)")


def project_from_args(args: argparse.Namespace, *, clients: Clients | None = None) -> Project:
    """The Project named by the flags and environment, in the clients' account and region."""
    config = config_from_args(args, required=["project_name"])
    clients = resolve(clients)
    return Project.from_config(config, account_id=clients.account_id(), region=clients.region,
                               kms_key_arn=args.kms_key_arn, keep_images=args.keep_images,
                               data_trigger_key=args.data_trigger_key, seed_branches=args.seed_branches,
                               tls_only=args.tls_only, build_stage=args.build_stage)
