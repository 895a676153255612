"""One release of a model: its S3 layout, the job specs of its steps and its execution id.

Layout (execution id E): datasets under ``s3://{bucket}/{model}/data/`` (``current/`` is the training
dataset), everything release E produces under ``s3://{bucket}/{model}/{E}/``: ``preprocess/training/``,
``preprocess/testing/``, ``preprocess/report/``, ``model/`` and ``evaluation/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_core.aws import Clients
from mlops_core.codepipeline import pipeline_execution_id
from mlops_core.errors import AwsResourceError, ConfigError
from mlops_core.logs import get_logger
from mlops_core.naming import job_name, new_execution_id
from mlops_core.project.names import EVALUATE, PREPROCESS, TRAIN
from mlops_core.s3 import s3_uri
from mlops_core.sagemaker.jobs import (
    TRAINING,
    Channel,
    ProcessingInput,
    ProcessingJobSpec,
    ProcessingOutput,
    TrainingJobSpec,
    latest_attempt,
)

log = get_logger("release")
PROCESSING_ROOT = "/opt/ml/processing"


@dataclass(frozen=True)
class ReleaseImages:
    """The images of one release: ``training`` runs the processing and training jobs, ``inference`` the endpoint."""

    training: str
    inference: str


def release_images(image_uri: str, execution_id: str) -> ReleaseImages:
    """The release's images from IMAGE_URI. A repository URI gets the release's own tags, ``:{execution_id}``
    (training) and ``:{execution_id}-serve`` (inference; the ContainerBuild action pushes both to a
    repository with immutable tags); an image with a tag or digest serves both. ``:latest`` is refused: a
    version in the registry must always mean the same bytes."""
    if image_tag(image_uri) is not None:
        return ReleaseImages(image_uri, image_uri)
    return ReleaseImages(f"{image_uri}:{execution_id}", f"{image_uri}:{execution_id}-serve")


def image_tag(image_uri: str) -> str | None:
    """The tag or digest of an image URI (None for a repository); ConfigError for the mutable ``:latest``."""
    if "@" in image_uri:
        return image_uri.split("@", 1)[1]
    name = image_uri.rsplit("/", 1)[-1]
    tag = name.split(":", 1)[1] if ":" in name else None
    if tag == "latest":
        raise ConfigError(f"IMAGE_URI={image_uri!r} names the mutable tag latest: give the repository URI (the "
                          "release's own tags are used) or an immutable tag or a digest")
    return tag


def data_capture_uri(bucket: str, model: str) -> str:
    """Where the model's endpoint writes its data capture."""
    return s3_uri(bucket, model, "data-capture")


@dataclass(frozen=True)
class Compute:
    """Instances of one job."""

    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    volume_size_gb: int = 30
    max_runtime_s: int = 3600


@dataclass(frozen=True)
class Release:
    """Names and S3 locations of release ``execution_id`` of ``model``."""

    bucket: str
    model: str
    execution_id: str

    def uri(self, *parts: str) -> str:
        return s3_uri(self.bucket, self.model, self.execution_id, *parts)

    def job(self, step: str) -> str:
        return job_name(self.model, step, self.execution_id)

    @property
    def current_data(self) -> str:
        return s3_uri(self.bucket, self.model, "data", "current") + "/"

    @property
    def data_capture(self) -> str:
        return data_capture_uri(self.bucket, self.model)

    @property
    def evaluation(self) -> str:
        return self.uri("evaluation", "evaluation.json")

    @property
    def tags(self) -> dict[str, str]:
        return {"mlops:model": self.model, "mlops:execution-id": self.execution_id}

    def _common(self, step: str, image_uri: str, role_arn: str, compute: Compute) -> dict[str, Any]:
        return {"name": self.job(step), "image_uri": image_uri, "role_arn": role_arn, "tags": self.tags,
                "instance_type": compute.instance_type, "instance_count": compute.instance_count,
                "volume_size_gb": compute.volume_size_gb, "max_runtime_s": compute.max_runtime_s}

    def preprocess_spec(self, image_uri: str, role_arn: str, compute: Compute = Compute()) -> ProcessingJobSpec:
        """Every file under ``data/current/`` -> training/validation, testing and a report."""
        outputs = tuple(ProcessingOutput(name, self.uri("preprocess", name) + "/", f"{PROCESSING_ROOT}/output/{name}")
                        for name in ("training", "testing", "report"))
        return ProcessingJobSpec(
            **self._common(PREPROCESS, image_uri, role_arn, compute), arguments=("preprocess",),
            inputs=(ProcessingInput("data", self.current_data, f"{PROCESSING_ROOT}/input/data"),), outputs=outputs)

    def train_spec(self, image_uri: str, role_arn: str, compute: Compute = Compute(), *,
                   hyperparameters: Mapping[str, Any] | None = None) -> TrainingJobSpec:
        """Channel ``training`` (training.csv + validation.csv) -> ``model/{job}/output/model.tar.gz``."""
        return TrainingJobSpec(
            **self._common(TRAIN, image_uri, role_arn, compute), hyperparameters=dict(hyperparameters or {}),
            channels=(Channel("training", self.uri("preprocess", "training") + "/", "text/csv"),),
            output_s3_uri=self.uri("model"))

    def evaluate_spec(self, image_uri: str, role_arn: str, model_data_url: str, compute: Compute = Compute(), *,
                      tolerance: float | None = None) -> ProcessingJobSpec:
        """model.tar.gz + testing data (+ training data, for the gate's baselines) -> ``evaluation/evaluation.json``
        and ``predictions.csv``."""
        return ProcessingJobSpec(
            **self._common(EVALUATE, image_uri, role_arn, compute), arguments=("evaluate",),
            environment={"GATE_TOLERANCE": str(tolerance)} if tolerance is not None else {},
            inputs=(ProcessingInput("model", model_data_url, f"{PROCESSING_ROOT}/input/model"),
                    ProcessingInput("testing", self.uri("preprocess", "testing") + "/",
                                    f"{PROCESSING_ROOT}/input/testing"),
                    ProcessingInput("training", self.uri("preprocess", "training") + "/",
                                    f"{PROCESSING_ROOT}/input/training")),
            outputs=(ProcessingOutput("evaluation", self.uri("evaluation") + "/",
                                      f"{PROCESSING_ROOT}/output/evaluation"),))

    def trained_model(self, *, clients: Clients | None = None) -> str:
        """S3 URI of the model.tar.gz of this release's completed training job (its newest attempt)."""
        name = self.job(TRAIN)
        job = latest_attempt(TRAINING, name, clients=clients)
        if job is None:
            raise AwsResourceError(name, "find the trained model of", "no training job of this release exists",
                                   f"run `bin/build.py train` with EXECUTION_ID={self.execution_id} first")
        status = job["TrainingJobStatus"]
        if status != "Completed":
            raise AwsResourceError(job["TrainingJobName"], "find the trained model of", f"the job is {status}",
                                   f"re-run `bin/build.py train` with EXECUTION_ID={self.execution_id} "
                                   "to wait for it (or --retry-failed to train again)")
        return job["ModelArtifacts"]["S3ModelArtifacts"]


def in_pipeline_build(env: Mapping[str, str] | None = None) -> bool:
    """True inside a CodeBuild build started by CodePipeline (the execution id can then be looked up)."""
    return (os.environ if env is None else env).get("CODEBUILD_INITIATOR", "").startswith("codepipeline/")


def execution_id_settings(*, generate: bool, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``("execution_id",)`` when EXECUTION_ID must be given (add it to a script's required settings, so a
    missing one is reported with every other problem), else ``()``."""
    return () if generate or in_pipeline_build(env) else ("execution_id",)


def resolve_execution_id(configured: str | None, *, generate: bool = False, clients: Clients | None = None,
                         env: Mapping[str, str] | None = None) -> str:
    """``configured`` (EXECUTION_ID), else the running CodePipeline execution, else (``generate``) a new id."""
    if configured:
        return configured
    env = os.environ if env is None else env
    if in_pipeline_build(env):
        initiator = env["CODEBUILD_INITIATOR"]
        return pipeline_execution_id(initiator.split("/", 1)[1], env.get("CODEBUILD_BUILD_ID"), clients=clients)
    if not generate:
        raise ConfigError("EXECUTION_ID is not set: export the id printed by `bin/build.py preprocess` "
                          "(export EXECUTION_ID=... or pass --execution-id)")
    execution_id = new_execution_id()
    log.warning("new_release", execution_id=execution_id,
                hint=f"export EXECUTION_ID={execution_id} to run the next steps of this release or to resume it")
    return execution_id
