"""The gateway: one WSGI application that plays AWS on 127.0.0.1 for any client.

The SageMaker and SageMaker Runtime calls that run something (create, describe and stop processing and
training jobs; create, update, describe and delete endpoints; ``InvokeEndpoint`` with data capture) are
answered by the local runtime (``mlops_core.local.runtime``); every other request goes, unchanged, to moto's
application in this process. The runtime itself records what it creates in moto through clients of this
same gateway that mark their requests as pass-through, so moto keeps the metadata (ARNs, configs, tags,
listings) and the runtime adds what runs.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError, ParamValidationError

from mlops_core.local.monitoring import LocalMonitoring
from mlops_core.local.runtime import (
    CONTAINER_ENV,
    ENGINE_ENV,
    LocalSageMaker,
    LocalSageMakerRuntime,
    LocalState,
)

LOCAL_OPERATIONS = {
    "CreateProcessingJob": "create_processing_job", "DescribeProcessingJob": "describe_processing_job",
    "StopProcessingJob": "stop_processing_job", "CreateTrainingJob": "create_training_job",
    "DescribeTrainingJob": "describe_training_job", "StopTrainingJob": "stop_training_job",
    "CreateEndpoint": "create_endpoint", "UpdateEndpoint": "update_endpoint",
    "DescribeEndpoint": "describe_endpoint", "DeleteEndpoint": "delete_endpoint",
}
MONITORING_OPERATIONS = {
    "CreateMonitoringSchedule": "create_monitoring_schedule", "DescribeMonitoringSchedule": "describe_monitoring_schedule",
    "UpdateMonitoringSchedule": "update_monitoring_schedule", "DeleteMonitoringSchedule": "delete_monitoring_schedule",
    "ListMonitoringSchedules": "list_monitoring_schedules", "ListMonitoringExecutions": "list_monitoring_executions",
}
# The embedded AWS's own call (AWS runs schedules on the clock): POST /_local/monitoring-schedules/NAME/executions
RUN_SCHEDULE_PATH = re.compile(r"/_local/monitoring-schedules/(?P<name>[^/]+)/executions")
PASSTHROUGH_HEADER = "X-Mlops-Local-Passthrough"
PASSTHROUGH_ENVIRON = "HTTP_" + PASSTHROUGH_HEADER.upper().replace("-", "_")
INVOKE_PATH = re.compile(r"/endpoints/(?P<name>[^/]+)/invocations")
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/(?P<region>[a-z0-9-]+)/")
JSON_11 = "application/x-amz-json-1.1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_SESSION_TOKEN": "testing"}

StartResponse = Callable[..., Any]


def to_wire(value: Any) -> Any:
    """A boto3 response as the JSON protocol sends it: timestamps as epoch seconds."""
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return value


def _respond(start_response: StartResponse, status: int, body: bytes, headers: dict[str, str]) -> Iterable[bytes]:
    from werkzeug.http import HTTP_STATUS_CODES

    start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}",
                   [*headers.items(), ("Content-Length", str(len(body)))])
    return [body]


def _error_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)


class Gateway:
    """The WSGI application: routes each request to the local runtime or to ``moto_app``.

    ``endpoint_url`` (set once the server listens) is where the runtime's own pass-through clients and the
    detached job processes send their calls. ``container`` (path of an app.py) and ``container_env`` are
    handed to every job and endpoint started afterwards.
    """

    def __init__(self, moto_app: Callable[..., Any], state: LocalState, region: str):
        self.moto_app = moto_app
        self.state = state
        self.region = region
        self.endpoint_url = ""
        self.container: str | None = None
        self.container_env: dict[str, str] = {}
        self.engine = "process"  # or "container": jobs and endpoints run their images under Podman / Docker
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def passthrough_client(self, service: str, region: str) -> Any:
        """A boto3 client of this gateway whose calls go straight to moto (built once per service and region)."""
        with self._lock:
            client = self._clients.get((service, region))
            if client is None:
                import boto3
                from botocore.config import Config

                session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                                region_name=region)
                client = session.client(service, endpoint_url=self.endpoint_url,
                                        config=Config(retries={"mode": "standard", "max_attempts": 3}))
                client.meta.events.register("before-sign", _mark_passthrough)
                self._clients[(service, region)] = client
            return client

    def runner_env(self, region: str) -> dict[str, str]:
        """What a detached job or endpoint process needs: this gateway, the region, the container."""
        env = {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url, "AWS_REGION": region,
               "AWS_DEFAULT_REGION": region, ENGINE_ENV: self.engine, **self.container_env}
        if self.container:
            env[CONTAINER_ENV] = self.container
        return env

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get(PASSTHROUGH_ENVIRON):
            return self.moto_app(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        service, _, operation = target.partition(".")
        if service == "SageMaker" and (operation in LOCAL_OPERATIONS or operation in MONITORING_OPERATIONS):
            return self._sagemaker(operation, environ, start_response)
        run = RUN_SCHEDULE_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if run and environ.get("REQUEST_METHOD") == "POST":
            return self._sagemaker("RunMonitoringSchedule", environ, start_response, unquote(run["name"]))
        invoke = INVOKE_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if invoke and environ.get("REQUEST_METHOD") == "POST":
            return self._invoke(unquote(invoke["name"]), environ, start_response)
        return self.moto_app(environ, start_response)

    def _region(self, environ: dict) -> str:
        found = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        return found["region"] if found else self.region

    def _sagemaker(self, operation: str, environ: dict, start_response: StartResponse,
                   schedule: str | None = None) -> Iterable[bytes]:
        from werkzeug.wrappers import Request

        region = self._region(environ)
        local = LocalSageMaker(self.passthrough_client("sagemaker", region), self.state, self.runner_env(region))
        monitoring = LocalMonitoring(local, lambda service: self.passthrough_client(service, region), self.state)
        try:
            params = json.loads(Request(environ).get_data() or b"{}")
            if schedule is not None:
                answer = monitoring.run_now(schedule)
            elif operation in MONITORING_OPERATIONS:
                answer = getattr(monitoring, MONITORING_OPERATIONS[operation])(**params)
            else:
                answer = getattr(local, LOCAL_OPERATIONS[operation])(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            body = {"__type": error.get("Code", "InternalFailure"), "message": error.get("Message", "")}
            return _respond(start_response, _error_status(exc), json.dumps(body).encode(), {"Content-Type": JSON_11})
        except (ParamValidationError, TypeError, ValueError) as exc:
            body = {"__type": "ValidationException", "message": str(exc)}
            return _respond(start_response, 400, json.dumps(body).encode(), {"Content-Type": JSON_11})
        return _respond(start_response, 200, json.dumps(to_wire(answer)).encode(), {"Content-Type": JSON_11})

    def _invoke(self, endpoint: str, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        from werkzeug.wrappers import Request

        request = Request(environ)
        runtime = LocalSageMakerRuntime(self.state, self.passthrough_client("s3", self._region(environ)))
        try:
            answer = runtime.invoke_endpoint(
                EndpointName=endpoint, Body=request.get_data(),
                ContentType=request.headers.get("Content-Type", "application/octet-stream"),
                Accept=request.headers.get("Accept"),
                InferenceId=request.headers.get("X-Amzn-SageMaker-Inference-Id"))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            body = {"message": error.get("Message", ""), "Message": error.get("Message", ""),
                    **{k: v for k, v in error.items() if k not in ("Code", "Message")}}
            return _respond(start_response, _error_status(exc), json.dumps(body).encode(),
                            {"Content-Type": "application/json", "x-amzn-ErrorType": error.get("Code", "")})
        return _respond(start_response, 200, answer["Body"].read(),
                        {"Content-Type": answer["ContentType"] or "application/octet-stream",
                         "x-Amzn-Invoked-Production-Variant": answer["InvokedProductionVariant"]})


def _mark_passthrough(request: Any, **_kwargs: Any) -> None:
    request.headers[PASSTHROUGH_HEADER] = "1"
