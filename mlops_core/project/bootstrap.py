"""Bootstrap and teardown of one project: every resource the plan names, in dependency order.

``bootstrap`` creates or updates them (``dry_run=True`` only plans); ``teardown`` deletes them, tolerating
what is already gone. The Step Functions definition of the ``workflow`` build stage comes from the caller
(``workflows.ml_workflow.definition``): the plan names the state machine, the workflow defines it.
"""

from __future__ import annotations

import argparse

from mlops_core import (
    cloudwatch,
    codebuild,
    codecommit,
    codepipeline,
    ecr,
    events,
    iam,
    s3,
    ssm,
    stepfunctions,
)
from mlops_core.aws import Clients, resolve
from mlops_core.config import Config, add_config_arguments, config_from_args
from mlops_core.ensure import Action, Ensured
from mlops_core.errors import ConfigError
from mlops_core.logs import get_logger
from mlops_core.project import monitoring
from mlops_core.project.buildspecs import build_project
from mlops_core.project.names import ALL_TASKS, BUILD_STAGES, ROLE_KINDS, Project
from mlops_core.project.pipeline import pipeline_definition
from mlops_core.project.policies import project_roles
from mlops_core.project.webapp import delete_webapp, webapp_steps
from mlops_core.sagemaker import monitoring as sagemaker_monitoring


def bootstrap(project: Project, *, workflow_definition: dict | None = None, dry_run: bool = False,
              clients: Clients | None = None) -> list[Ensured]:
    """Create or update every resource of the project, in dependency order; ``dry_run`` only plans.

    With the ``workflow`` build stage, ``workflow_definition`` is the state machine's ASL (e.g.
    ``workflows.ml_workflow.definition(project.role_arn("sagemaker"))``); ConfigError before any call without it.
    """
    if project.build_stage == "workflow" and workflow_definition is None:
        raise ConfigError(f"project {project.name} runs its Build stage as the Step Functions workflow "
                          f"{project.state_machine}: pass its definition (workflow_definition=...)")
    clients = resolve(clients)
    p, tags, common = project, project.tags, {"dry_run": dry_run, "clients": clients}
    alarms = monitoring.alarms(p, clients=clients)  # reads the baselined RMSE limit once
    log = get_logger("bootstrap").bind(project=p.name, dry_run=dry_run)
    steps = [
        lambda: s3.ensure_bucket(p.bucket, kms_key_arn=p.kms_key_arn, tags=tags, tls_only=p.tls_only, **common),
        lambda: ecr.ensure_repository(p.ecr_repository, keep_images=p.keep_images, tags=tags, **common),
        *[lambda spec=spec: iam.ensure_role_spec(spec, tags=tags, **common) for spec in project_roles(p)],
        lambda: codecommit.ensure_repository(p.code_repository, description=f"Pipeline and model code of project "
                                             f"{p.name}", tags=tags, **common),
        *([lambda: codecommit.seed_branches(p.code_repository, [p.code_branch, p.model_branch],
                                            {"README.md": codecommit.readme(p.code_repository, p.code_branch,
                                                                            p.model_branch)}, **common)]
          if p.seed_branches else []),
        *[lambda name=name, value=value: ssm.ensure_parameter(name, value, tags=tags, **common)
          for name, value in p.parameters().items()],
        *([lambda: stepfunctions.ensure_state_machine(p.state_machine, workflow_definition,
                                                      p.role_arn("stepfunctions"), tags={"model": p.model, **tags},
                                                      **common)] if p.build_stage == "workflow" else []),
        *[lambda task=task: codebuild.ensure_project(build_project(p, task), **common)
          for task in p.tasks],
        lambda: codepipeline.ensure_pipeline(pipeline_definition(p), tags=tags, **common),
        *[lambda alarm=alarm: cloudwatch.ensure_alarm(alarm, **common) for alarm in alarms],
        lambda: events.ensure_rule(monitoring.retrain_rule(p), **common),
        *(webapp_steps(p, **common) if p.webapp else []),
    ]
    results = []
    for step in steps:
        ensured = step()
        log.info("ensured", kind=ensured.kind, name=ensured.name, action=ensured.action.value,
                 changes=ensured.details.get("changes"))
        results.append(ensured)
    return results


def teardown(project: Project, *, delete_data: bool = False, clients: Clients | None = None) -> list[Ensured]:
    """Delete every resource of the project (the ECR repository with its images); safe to repeat.

    The bucket is deleted only when the project created it (tag ``project=<name>``; else AwsResourceError
    before anything is deleted) and, when it holds data, only with ``delete_data`` (every object version);
    otherwise it is kept and reported so. What only the other build stage has (CodeBuild projects, the
    state machine) is deleted too, and reported only when it was there.
    """
    clients = resolve(clients)
    p = project
    log = get_logger("teardown").bind(project=p.name)
    s3.require_bucket_tags(p.bucket, p.tags, clients=clients)  # refuse someone else's bucket up front
    schedules = [sagemaker_monitoring.delete_monitoring_schedule(monitoring.schedule_name(p, kind), clients=clients)
                 for kind in monitoring.SCHEDULE_SUFFIX]  # made by bin/monitor.py: reported when they were there
    results = [ensured for ensured in schedules if ensured.action is Action.DELETED]
    results.append(events.delete_rule(p.retrain_rule, clients=clients))
    results += [cloudwatch.delete_alarm(name, clients=clients) for name in monitoring.alarm_names(p)]
    results.append(codepipeline.delete_pipeline(p.pipeline, clients=clients))
    owned = [(task in p.tasks, codebuild.delete_project(p.codebuild_project(task), clients=clients))
             for task in ALL_TASKS]
    owned.append((p.build_stage == "workflow", stepfunctions.delete_state_machine(p.state_machine, clients=clients)))
    results += [ensured for own, ensured in owned if own or ensured.action is Action.DELETED]
    results += codebuild.delete_build_logs(f"{p.name}-", clients=clients)
    results += [ensured for ensured in delete_webapp(p, clients=clients) if p.webapp or ensured.changed]
    results.append(codecommit.delete_repository(p.code_repository, clients=clients))
    results += [ssm.delete_parameter(name, clients=clients) for name in p.parameters()]
    results.append(ecr.delete_repository(p.ecr_repository, clients=clients))
    results += [iam.delete_role(p.role_name(kind), clients=clients) for kind in ROLE_KINDS]
    results.append(s3.delete_bucket(p.bucket, required_tags=p.tags, delete_objects=delete_data, clients=clients))
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
        notes = ensured.details.get("changes") or [ensured.details.get("kept")] * bool(ensured.details.get("kept"))
        lines.append(f"{verb:<18} {ensured.kind} {ensured.name}" + (f" ({', '.join(notes)})" if notes else ""))
    return lines


NAMING_SETTINGS = ("project_name", "model_name", "pipeline_name", "bucket_name", "aws_region")
PIPELINE_SETTINGS = ("threshold", "epochs", "batch_size")
BOOTSTRAP_OPTIONS = ("kms_key_arn", "keep_images", "data_trigger_key", "seed_branches", "tls_only", "build_stage",
                     "webapp")


def add_project_arguments(parser: argparse.ArgumentParser, *, bootstrap: bool = True) -> None:
    """Flags of bin/bootstrap.py (``bootstrap``) or bin/teardown.py: the settings that name the project's
    resources, plus for bootstrap the pipeline's settings and the resources' options."""
    parser.add_argument("--project", dest="project_name", metavar="PROJECT_NAME",
                        help="the project that owns the resources (same as --project-name)")
    add_config_arguments(parser, [*NAMING_SETTINGS, *(PIPELINE_SETTINGS if bootstrap else ())])
    if not bootstrap:
        return
    parser.add_argument("--kms-key-arn", help="KMS key for the bucket, pipeline artifacts and builds (default SSE-S3)")
    parser.add_argument("--keep-images", type=int, help="images the ECR lifecycle policy keeps (default 10)")
    parser.add_argument("--data-trigger-key", help="S3 key in the bucket whose new versions start a release")
    parser.add_argument("--seed-branches", action="store_true", default=None,
                        help="create the main and model branches with a README on an empty repository")
    parser.add_argument("--build-stage", choices=tuple(BUILD_STAGES),
                        help="the pipeline's Build stage: 'jobs' (default), separate Preprocess, Train and Evaluate "
                             "actions; 'workflow', one action running the Step Functions ML workflow")
    parser.add_argument("--webapp", action="store_true", default=None,
                        help="also the Age Calculator: its page on CloudFront and its API Gateway API on the endpoint")
    parser.add_argument("--no-tls-policy", dest="tls_only", action="store_false", default=None,
                        help="skip the bucket's TLS-only policy (only for moto's server, which ignores its condition)")


def project_config(args: argparse.Namespace) -> Config:
    """The validated settings of the flags and environment: every problem at once, before any AWS call."""
    return config_from_args(args, required=["project_name", "aws_region"])


def project_from_args(args: argparse.Namespace, *, config: Config | None = None,
                      clients: Clients | None = None) -> Project:
    """The Project named by the flags and environment, in the clients' account and region."""
    config = config or project_config(args)
    clients = clients if clients is not None else Clients(region=config.aws_region)
    options = {name: getattr(args, name, None) for name in BOOTSTRAP_OPTIONS}
    return Project.from_config(config, account_id=clients.account_id(), region=clients.region, **options)
