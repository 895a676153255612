"""The local SageMaker runtime behind the gateway: the SageMaker calls that run something, done here.

Processing and training jobs run the model container's entry point as detached processes with SageMaker's
``/opt/ml`` layout; endpoints are the container's ``serve`` mode on a free loopback port; ``invoke_endpoint``
calls it and writes data capture records in SageMaker's JSON-lines format. Job and endpoint state lives in
a state folder, so it survives the process that started it. Each class wraps a client of the moto side
(``upstream``): creates are validated and recorded there first, describes merge moto's metadata with the
local run's status.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from mlops_core.logs import get_logger
from mlops_core.sagemaker.capture import write_capture

CONTAINER_ENV = "MLOPS_LOCAL_CONTAINER"
ENGINE_ENV = "MLOPS_LOCAL_ENGINE"  # "process" (default): app.py as a process; "container": the job's image
STATE_LABEL = "mlops.local.state"  # every container carries the state folder it belongs to
JOB_KINDS = {"processing": ("ProcessingJobName", "ProcessingJobStatus"),
             "training": ("TrainingJobName", "TrainingJobStatus")}


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def container_entry_point() -> Path:
    """The container's app.py run for every job and endpoint: $MLOPS_LOCAL_CONTAINER, else model_container's.

    The process engine runs the program, it does not import it: the image URI of a job is not used locally.
    """
    configured = os.environ.get(CONTAINER_ENV)
    if configured:
        return Path(configured)
    spec = importlib.util.find_spec("model_container")
    if spec is None or not spec.origin:
        raise FileNotFoundError(f"no container to run: set {CONTAINER_ENV} to the path of its app.py")
    return Path(spec.origin).parent / "app.py"


def container_engine() -> str | None:
    """The container engine's command (Podman, else Docker), or None."""
    return shutil.which("podman") or shutil.which("docker")


def image_exists(image: str) -> bool:
    """True when the local container engine holds ``image``."""
    engine = container_engine()
    return bool(engine) and subprocess.run([engine, "image", "inspect", image], capture_output=True).returncode == 0


def sagemaker_error(code: str, message: str, operation: str, status: int = 400, **extra: Any) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message, **extra},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a finished child that nobody reaped is a zombie: not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def kill_group(pid: int | None) -> None:
    """Stop a detached process and its children (they share its process group)."""
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)


class LocalState:
    """JSON records of local jobs and endpoints under one folder; writes are atomic."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, kind: str, name: str) -> Path:
        return self.root / kind / f"{name}.json"

    def workdir(self, kind: str, name: str) -> Path:
        return self.root / "work" / kind / name

    def read(self, kind: str, name: str) -> dict | None:
        try:
            return json.loads(self.path(kind, name).read_text())
        except FileNotFoundError:
            return None

    def write(self, kind: str, name: str, record: dict) -> dict:
        target = self.path(kind, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(record, indent=2, default=str))
        os.replace(temporary, target)
        return record

    def update(self, kind: str, name: str, **fields: Any) -> dict:
        return self.write(kind, name, {**(self.read(kind, name) or {}), **fields})

    def delete(self, kind: str, name: str) -> None:
        self.path(kind, name).unlink(missing_ok=True)


def spawn_runner(state: LocalState, env: dict[str, str], *args: str) -> int:
    """Start ``python -m mlops_core.local.runner ARGS`` detached from this process, with ``env`` added to
    this process's environment (the AWS endpoint, region and credentials it uses); returns its pid."""
    env = {**os.environ, **env}
    log = state.root / "runner.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops_core.local.runner", "--state", str(state.root), *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True)
    return process.pid


class LocalSageMaker:
    """SageMaker's job and endpoint calls, run locally on top of ``client`` (moto's SageMaker)."""

    def __init__(self, client: Any, state: LocalState, runner_env: dict[str, str]):
        self._client = client
        self._state = state
        self._runner_env = runner_env
        self._log = get_logger("local.sagemaker")

    # jobs ---------------------------------------------------------------------------------------
    def _create_job(self, kind: str, operation: str, request: dict) -> dict:
        name_key, _ = JOB_KINDS[kind]
        name = request[name_key]
        if self._state.read(kind, name) is not None:
            raise sagemaker_error("ResourceInUse", f"{kind.capitalize()} job names must be unique within an "
                                  f"AWS account and region, and a job named {name} already exists", operation)
        response = getattr(self._client, operation)(**request)  # validates and records it in moto
        self._state.write(kind, name, {"status": "InProgress", "secondary": "Starting", "request": request,
                                       "created": now_iso()})
        pid = spawn_runner(self._state, self._runner_env, "job", kind, name)
        self._state.update(kind, name, runner_pid=pid)
        self._log.info("local_job_started", job=name, kind=kind, pid=pid)
        return response

    def create_processing_job(self, **request: Any) -> dict:
        return self._create_job("processing", "create_processing_job", request)

    def create_training_job(self, **request: Any) -> dict:
        return self._create_job("training", "create_training_job", request)

    def _describe_job(self, kind: str, operation: str, name: str) -> dict:
        record = self._state.read(kind, name)
        description = getattr(self._client, operation)(**{JOB_KINDS[kind][0]: name})
        if record is None:
            return description
        if record["status"] in ("InProgress", "Stopping") and not pid_alive(record.get("runner_pid")):
            record = self._state.update(kind, name, status="Failed", secondary="Failed", ended=now_iso(),
                                        failure_reason="InternalServerError: the local job process exited "
                                                       f"unexpectedly; see {self._state.root / 'runner.log'}")
        return merge_job_record(kind, description, record)

    def describe_processing_job(self, ProcessingJobName: str) -> dict:  # noqa: N803 (boto3 casing)
        return self._describe_job("processing", "describe_processing_job", ProcessingJobName)

    def describe_training_job(self, TrainingJobName: str) -> dict:  # noqa: N803
        return self._describe_job("training", "describe_training_job", TrainingJobName)

    def _stop_job(self, kind: str, operation: str, name: str) -> dict:
        record = self._state.read(kind, name)
        if record is None or record["status"] != "InProgress":
            return getattr(self._client, operation)(**{JOB_KINDS[kind][0]: name})
        self._state.update(kind, name, status="Stopping", secondary="Stopping")
        kill_group(record.get("container_pid"))
        return {}

    def stop_processing_job(self, ProcessingJobName: str) -> dict:  # noqa: N803
        return self._stop_job("processing", "stop_processing_job", ProcessingJobName)

    def stop_training_job(self, TrainingJobName: str) -> dict:  # noqa: N803
        return self._stop_job("training", "stop_training_job", TrainingJobName)

    # endpoints ----------------------------------------------------------------------------------
    def create_endpoint(self, EndpointName: str, EndpointConfigName: str, **rest: Any) -> dict:  # noqa: N803
        if self._state.read("endpoints", EndpointName) is not None:
            raise sagemaker_error("ValidationException", f"Cannot create already existing endpoint "
                                  f"\"{EndpointName}\".", "CreateEndpoint")
        response = self._client.create_endpoint(EndpointName=EndpointName, EndpointConfigName=EndpointConfigName,
                                                **rest)
        self._start_deployment(EndpointName, EndpointConfigName, "Creating")
        return response

    def update_endpoint(self, EndpointName: str, EndpointConfigName: str, **_rest: Any) -> dict:  # noqa: N803
        record = self._state.read("endpoints", EndpointName)
        if record is None:
            raise sagemaker_error("ValidationException", f"Could not find endpoint \"{EndpointName}\".",
                                  "UpdateEndpoint")
        if record["status"] not in ("InService", "Failed"):
            raise sagemaker_error("ValidationException", f"Cannot update in-progress endpoint "
                                  f"\"{EndpointName}\".", "UpdateEndpoint")
        self._client.describe_endpoint_config(EndpointConfigName=EndpointConfigName)  # must exist
        self._start_deployment(EndpointName, EndpointConfigName, "Updating")
        return {"EndpointArn": self._client.describe_endpoint(EndpointName=EndpointName)["EndpointArn"]}

    def _start_deployment(self, name: str, config_name: str, status: str) -> None:
        self._state.update("endpoints", name, status=status, pending_config=config_name, failure_reason=None,
                           last_modified=now_iso())
        pid = spawn_runner(self._state, self._runner_env, "endpoint", name, config_name)
        self._state.update("endpoints", name, runner_pid=pid)
        self._log.info("local_endpoint_deploying", endpoint=name, config=config_name, status=status)

    def describe_endpoint(self, EndpointName: str) -> dict:  # noqa: N803
        description = self._client.describe_endpoint(EndpointName=EndpointName)
        record = self._state.read("endpoints", EndpointName)
        if record is None:
            return description
        if record["status"] in ("Creating", "Updating") and not pid_alive(record.get("runner_pid")):
            record = self._state.update(
                "endpoints", EndpointName, status="InService" if record.get("config") else "Failed",
                failure_reason="the local deployment process exited unexpectedly; "
                               f"see {self._state.root / 'runner.log'}")
        description = {**description, "EndpointStatus": record["status"],
                       "LastModifiedTime": dt.datetime.fromisoformat(record["last_modified"])}
        if record.get("config"):
            description["EndpointConfigName"] = record["config"]
        if record.get("failure_reason"):
            description["FailureReason"] = record["failure_reason"]
        else:
            description.pop("FailureReason", None)
        return description

    def delete_endpoint(self, EndpointName: str) -> dict:  # noqa: N803
        record = self._state.read("endpoints", EndpointName)
        if record is not None:
            kill_group(record.get("runner_pid"))
            kill_group(record.get("server_pid"))
            self._state.delete("endpoints", EndpointName)
        return self._client.delete_endpoint(EndpointName=EndpointName)


def merge_job_record(kind: str, description: dict, record: dict) -> dict:
    """moto's description of a job with the status, times and outcome of its local run."""
    _, status_key = JOB_KINDS[kind]
    merged = {**description, status_key: record["status"]}
    for key, value in (("ProcessingStartTime" if kind == "processing" else "TrainingStartTime", record.get("started")),
                       ("ProcessingEndTime" if kind == "processing" else "TrainingEndTime", record.get("ended"))):
        if value:
            merged[key] = dt.datetime.fromisoformat(value)
        else:
            merged.pop(key, None)
    if record.get("failure_reason"):
        merged["FailureReason"] = record["failure_reason"]
    else:
        merged.pop("FailureReason", None)
    if kind == "processing" and record.get("exit_message"):
        merged["ExitMessage"] = record["exit_message"]
    if kind == "training":
        merged["SecondaryStatus"] = record.get("secondary", record["status"])
        if record.get("status_message") and record.get("started"):
            merged["SecondaryStatusTransitions"] = [{
                "Status": merged["SecondaryStatus"], "StartTime": dt.datetime.fromisoformat(record["started"]),
                "StatusMessage": record["status_message"]}]
        if record.get("model_artifacts"):
            merged["ModelArtifacts"] = {"S3ModelArtifacts": record["model_artifacts"]}
    return merged


class LocalSageMakerRuntime:
    """``invoke_endpoint`` against locally served endpoints, with SageMaker's data capture written by ``s3``."""

    def __init__(self, state: LocalState, s3: Any):
        self._state = state
        self._s3 = s3

    def invoke_endpoint(self, EndpointName: str, Body: bytes | str | io.IOBase,  # noqa: N803
                        ContentType: str = "application/octet-stream", Accept: str | None = None,  # noqa: N803
                        InferenceId: str | None = None, **_rest: Any) -> dict:  # noqa: N803
        record = self._state.read("endpoints", EndpointName)
        if record is None or not record.get("port"):
            raise sagemaker_error("ValidationError", f"Endpoint {EndpointName} of account local not found.",
                                  "InvokeEndpoint")
        data = Body.read() if hasattr(Body, "read") else Body
        data = data.encode() if isinstance(data, str) else data
        headers = {"Content-Type": ContentType, **({"Accept": Accept} if Accept else {})}
        request = urllib.request.Request(f"http://127.0.0.1:{record['port']}/invocations", data=data,
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer, answer_type = response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            message = error.read().decode(errors="replace")
            raise sagemaker_error("ModelError", f"Received client error ({error.code}) from primary with message "
                                  f"\"{message}\".", "InvokeEndpoint", 424, OriginalStatusCode=error.code,
                                  OriginalMessage=message) from None
        except urllib.error.URLError as error:
            raise sagemaker_error("ServiceUnavailable", f"endpoint {EndpointName} is not answering: {error.reason}",
                                  "InvokeEndpoint", 503) from None
        variant = record.get("variant", "AllTraffic")
        write_capture(self._s3, EndpointName, variant, record.get("data_capture"), data, ContentType, answer,
                      answer_type, InferenceId)
        return {"Body": StreamingBody(io.BytesIO(answer), len(answer)), "ContentType": answer_type,
                "InvokedProductionVariant": variant, "ResponseMetadata": {"HTTPStatusCode": 200}}
