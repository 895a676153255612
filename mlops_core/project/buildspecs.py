"""The project's CodeBuild projects and their buildspecs, kept as Python data.

Each pipeline task has a buildspec dict, serialised as JSON (valid buildspec YAML). The Build stage is
either the separate SageMaker jobs (``BUILD_STAGES["jobs"]``, the default: ``TASKS``) or one ``Workflow``
action running the Step Functions ML workflow (``BUILD_STAGES["workflow"]``, see ``bin/run_workflow.py``).
Settings reach the build as ``env.variables`` (plain values) and ``env.parameter-store`` (SSM names
``/{project}/{key}``); the execution id comes from the pipeline action as ``EXECUTION_ID`` (see
``ACTION_ENVIRONMENT``). ``action_environment`` lists all of them per task so a local runner can
reproduce a build's environment (``resolve_action_environment``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath

from mlops_core.aws import Clients
from mlops_core.errors import ConfigError
from mlops_core.project.names import TASKS, Project
from mlops_core.ssm import get_parameters

EXECUTION_ID_VARIABLE = "#{codepipeline.PipelineExecutionId}"
ACTION_ENVIRONMENT = {"EXECUTION_ID": EXECUTION_ID_VARIABLE}
SUMMARY_FILE = "evaluation-summary.txt"
SUMMARY_VARIABLE = "EVALUATION_SUMMARY"
EXPORT_SUMMARY = f'export {SUMMARY_VARIABLE}="$(cat {SUMMARY_FILE})"'
COMMANDS = {
    # IMAGE_URI is the repository (immutable tags): the release's training image :EXECUTION_ID and inference
    # image :EXECUTION_ID-serve; a retried action finds an image already pushed and leaves it alone
    "ContainerBuild": [
        'aws ecr get-login-password | docker login --username AWS --password-stdin "${IMAGE_URI%%/*}"',
        *(f'if aws ecr describe-images --repository-name "${{IMAGE_URI#*/}}" --image-ids imageTag={tag} >/dev/null '
          f'2>&1; then echo "$IMAGE_URI:{tag} is already pushed"; else docker build -f "$DOCKERFILE" --target '
          f'{target} -t "$IMAGE_URI:{tag}" "$DOCKER_CONTEXT" && docker push "$IMAGE_URI:{tag}"; fi'
          for target, tag in (("train", "$EXECUTION_ID"), ("serve", "$EXECUTION_ID-serve"))),
    ],
    "Preprocess": ["python bin/build.py preprocess"],
    "Train": ["python bin/build.py train"],
    "Evaluate": [f"python bin/build.py evaluate --fail-on-gate --summary-file {SUMMARY_FILE}", EXPORT_SUMMARY],
    "Workflow": [f"python bin/run_workflow.py --summary-file {SUMMARY_FILE}", EXPORT_SUMMARY],
    "Deploy": ["python bin/deploy.py --autoscaling"],
}
EXPORTS = {"Evaluate": [SUMMARY_VARIABLE], "Workflow": [SUMMARY_VARIABLE]}  # task -> variables it exports
EXPORTED = {task: EXPORTS[task] for task in TASKS if task in EXPORTS}  # those of the default ("jobs") tasks
TIMEOUT_MINUTES = {"ContainerBuild": 60, "Preprocess": 120, "Train": 480, "Evaluate": 120, "Deploy": 120}
TIMEOUT_MINUTES["Workflow"] = sum(TIMEOUT_MINUTES[task] for task in ("Preprocess", "Train", "Evaluate"))
PYTHON_VERSION = "3.11"


def buildspec(project: Project, task: str) -> dict:
    """The buildspec of one pipeline task (a setting reaches only the tasks that use it)."""
    p = project
    if task == "ContainerBuild":
        env: dict = {"variables": {"DOCKERFILE": p.dockerfile, "DOCKER_CONTEXT": str(PurePosixPath(p.dockerfile).parent)},
                     "parameter-store": {"IMAGE_URI": p.parameter("image-uri")}}
        phases: dict = {}
    else:
        train = {"EPOCHS": str(p.epochs), "BATCH_SIZE": str(p.batch_size)}
        gate = {"THRESHOLD": str(p.threshold)} if p.threshold is not None else {}  # the default gate needs none
        retry = {"RETRY_FAILED": str(p.retry_failed).lower()}
        task_variables = {"Preprocess": retry, "Train": {**train, **retry}, "Evaluate": {**gate, **retry},
                          "Workflow": {**train, **gate}, "Deploy": gate}
        env = {"variables": {"PROJECT_NAME": p.name, **task_variables.get(task, {})},
               "parameter-store": {"MODEL_NAME": p.parameter("model-name"), "BUCKET_NAME": p.parameter("bucket-name"),
                                   "ROLE_ARN": p.parameter("sagemaker-role-arn"),
                                   "IMAGE_URI": p.parameter("image-uri"),
                                   "MODEL_PACKAGE_GROUP": p.parameter("model-package-group"),
                                   "PIPELINE_NAME": p.parameter("pipeline-name")}}
        phases = {"install": {"runtime-versions": {"python": PYTHON_VERSION}, "commands": ["pip install -e ."]}}
    if task in EXPORTS:
        env["exported-variables"] = EXPORTS[task]
    return {"version": 0.2, "env": {"shell": "bash", **env},
            "phases": {**phases, "build": {"commands": COMMANDS[task]}}}


def buildspecs(project: Project) -> dict[str, dict]:
    """task -> buildspec dict, for every task of the project's pipeline."""
    return {task: buildspec(project, task) for task in project.tasks}


@dataclass(frozen=True)
class EnvVar:
    """One environment variable of a build: a plain value, an SSM parameter name or a pipeline variable."""

    value: str
    source: str  # "variables" | "parameter-store" | "pipeline"


def action_environment(project: Project, task: str) -> dict[str, EnvVar]:
    """Every variable the task's build sees (besides CodeBuild's own), with where its value comes from."""
    env = buildspec(project, task)["env"]
    found = {name: EnvVar(value, "variables") for name, value in env.get("variables", {}).items()}
    found.update({name: EnvVar(value, "parameter-store") for name, value in env.get("parameter-store", {}).items()})
    found.update({name: EnvVar(value, "pipeline") for name, value in ACTION_ENVIRONMENT.items()})
    return found


def resolve_action_environment(project: Project, task: str, execution_id: str, *,
                               clients: Clients | None = None) -> dict[str, str]:
    """The task's environment as CodeBuild would set it: SSM values read, the execution id filled in."""
    variables = action_environment(project, task)
    names = [v.value for v in variables.values() if v.source == "parameter-store"]
    stored = get_parameters(names, clients=clients)
    missing = sorted(set(names) - set(stored))
    if missing:
        raise ConfigError(f"SSM parameters {', '.join(missing)} do not exist: run bin/bootstrap.py "
                          f"--project {project.name} first")
    return {name: (stored[v.value] if v.source == "parameter-store"
                   else v.value.replace(EXECUTION_ID_VARIABLE, execution_id))
            for name, v in variables.items()}


def build_project(project: Project, task: str) -> dict:
    """The CreateProject/UpdateProject arguments of one task's build project."""
    p = project
    name = p.codebuild_project(task)
    definition = {
        "name": name,
        "description": f"{task} of project {p.name}",
        # CodePipeline ignores "location" of CODEPIPELINE sources and artifacts; moto requires one.
        "source": {"type": "CODEPIPELINE", "location": p.pipeline,
                   "buildspec": json.dumps(buildspec(p, task), indent=2)},
        "artifacts": {"type": "CODEPIPELINE", "location": p.pipeline},
        "environment": {"type": "LINUX_CONTAINER", "image": p.build_image, "computeType": "BUILD_GENERAL1_SMALL",
                        "privilegedMode": task == "ContainerBuild"},
        "serviceRole": p.role_arn("codebuild"),
        "timeoutInMinutes": TIMEOUT_MINUTES[task],
        "tags": [{"key": k, "value": v} for k, v in p.tags.items()],
    }
    if p.kms_key_arn:
        definition["encryptionKey"] = p.kms_key_arn
    return definition
