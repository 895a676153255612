"""The project's release pipeline: its CodePipeline structure.

Stages: Source (CodeCommit ``main`` = pipeline code, ``model`` = model code, optionally an S3 object
whose new versions start a release) -> Build (ContainerBuild, Preprocess, Train, Evaluate; or, with the
``workflow`` build stage, ContainerBuild, Workflow) -> Approval (manual, showing the summary the gate's
action exports: ``#{Evaluate.EVALUATION_SUMMARY}`` or ``#{Workflow.EVALUATION_SUMMARY}``) -> Deploy. Every
CodeBuild action gets ``EXECUTION_ID=#{codepipeline.PipelineExecutionId}``.
"""

from __future__ import annotations

import json

from mlops_core.codepipeline import action
from mlops_core.project.buildspecs import ACTION_ENVIRONMENT, EXPORTS, SUMMARY_VARIABLE
from mlops_core.project.names import BUILD_STAGES, Project

PIPELINE_CODE, MODEL_CODE, DATA = "PipelineCode", "ModelCode", "Data"
BUILD_TASKS = BUILD_STAGES["jobs"]


def _build_action(project: Project, task: str, run_order: int) -> dict:
    environment = [{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in ACTION_ENVIRONMENT.items()]
    return action(task, "Build", "CodeBuild",
                  {"ProjectName": project.codebuild_project(task), "EnvironmentVariables": json.dumps(environment)},
                  run_order=run_order, inputs=(MODEL_CODE if task == "ContainerBuild" else PIPELINE_CODE,),
                  namespace=task if task in EXPORTS else None)


def pipeline_definition(project: Project) -> dict:
    """The CreatePipeline/UpdatePipeline ``pipeline`` structure of the project's release pipeline."""
    p = project
    sources = [action(output, "Source", "CodeCommit",
                      {"RepositoryName": p.code_repository, "BranchName": branch, "PollForSourceChanges": "true"},
                      outputs=(output,))
               for output, branch in ((PIPELINE_CODE, p.code_branch), (MODEL_CODE, p.model_branch))]
    if p.data_trigger_key:
        sources.append(action(DATA, "Source", "S3", {"S3Bucket": p.bucket, "S3ObjectKey": p.data_trigger_key,
                                                     "PollForSourceChanges": "true"}, outputs=(DATA,)))
    store: dict = {"type": "S3", "location": p.bucket}
    if p.kms_key_arn:
        store["encryptionKey"] = {"id": p.kms_key_arn, "type": "KMS"}
    build = BUILD_STAGES[p.build_stage]
    gate = next(task for task in build if task in EXPORTS)
    approval = action("ApproveRelease", "Approval", "Manual", {
        "CustomData": f"Release #{{codepipeline.PipelineExecutionId}}: #{{{gate}.{SUMMARY_VARIABLE}}}"})
    return {
        "name": p.pipeline,
        "roleArn": p.role_arn("codepipeline"),
        "artifactStore": store,
        "stages": [
            {"name": "Source", "actions": sources},
            {"name": "Build", "actions": [_build_action(p, t, i) for i, t in enumerate(build, start=1)]},
            {"name": "Approval", "actions": [approval]},
            {"name": "Deploy", "actions": [_build_action(p, "Deploy", 1)]},
        ],
    }
