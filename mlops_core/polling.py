"""The one polling engine: wait on any describe call until the resource reaches a terminal state.

Delays grow exponentially from ``initial_delay`` but never exceed ``max(min_delay, elapsed_fraction *
elapsed)`` nor ``max_delay``: a job that has run for ``t`` seconds is noticed at most
``max(2 s, 10 % of t)`` after it ends. The engine is the only retry layer of its describe calls (the
``wait_*`` functions describe through ``Clients.poller``, whose botocore retries are off): a transient
error (throttling, 5xx, connection) is a poll without news, and polling goes on, backing off, until the
deadline, which is never overshot. A status the spec does not know is warned about once and fails after
``unknown_status_timeout``. One log event per status change, never one per poll.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from mlops_core.errors import JobFailed, ResourceFailed, UnknownStatus, WaitTimeout
from mlops_core.logs import get_logger

THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "RequestThrottled", "SlowDown", "LimitExceededException", "PriorRequestNotComplete",
    "ServiceUnavailable", "InternalFailure", "InternalError", "InternalServerError",
})


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: throttling, 5xx and connection failures."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error.get("Code") in THROTTLING_CODES or status >= 500
    return isinstance(exc, (BotoConnectionError, HTTPClientError))


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)


@dataclass(frozen=True)
class WaitPolicy:
    """How often to poll and for how long (seconds)."""

    initial_delay: float = 1.0
    multiplier: float = 1.5
    min_delay: float = 2.0
    elapsed_fraction: float = 0.1
    max_delay: float = 60.0
    jitter: float = 0.2
    timeout: float | None = 6 * 3600.0
    unknown_status_timeout: float = 600.0
    progress_every: float = 30.0  # a "progress" event at most this often while the status stays the same

    def delay(self, attempt: int, elapsed: float, rand: float) -> float:
        """Delay before poll ``attempt + 1``; ``rand`` in [0, 1) spreads it over the jitter band."""
        ceiling = max(self.min_delay, self.elapsed_fraction * elapsed)
        base = min(self.initial_delay * self.multiplier ** attempt, ceiling, self.max_delay)
        return base * (1.0 - self.jitter * rand)


DEFAULT_POLICY = WaitPolicy()


def _get(*path: Any) -> Callable[[dict], Any]:
    def read(description: dict) -> Any:
        value: Any = description
        for key in path:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                return None
        return value
    return read


def _none(_description: dict) -> None:
    return None


@dataclass(frozen=True)
class StatusSpec:
    """How to read one kind of resource's description: status, terminal states, reason, logs."""

    kind: str
    status: Callable[[dict], str | None]
    succeeded: frozenset[str]
    failed: frozenset[str]
    stopped: frozenset[str] = frozenset()
    running: frozenset[str] = frozenset()  # the statuses on the way; any other is unknown
    secondary: Callable[[dict], str | None] = _none
    progress: Callable[[dict], str | None] = _none  # what the resource says of its progress, if anything
    reason: Callable[[dict], str | None] = _none
    logs: Callable[[str, dict], str | None] = field(default=lambda _name, _d: None)
    error: type[ResourceFailed] = ResourceFailed


def _sagemaker_logs(group: str) -> Callable[[str, dict], str]:
    return lambda name, _d: f"CloudWatch log group {group}, log streams starting with {name}/"


def _codebuild_reason(description: dict) -> str | None:
    phases = _get("builds", 0, "phases")(description) or []
    for phase in reversed(phases):
        contexts = [c.get("message") for c in phase.get("contexts", []) if c.get("message")]
        if phase.get("phaseStatus") not in (None, "SUCCEEDED") and contexts:
            return f"{phase.get('phaseType')}: {'; '.join(contexts)}"
    return None


def _sfn_reason(description: dict) -> str | None:
    error, cause = description.get("error"), description.get("cause")
    return ": ".join(p for p in (error, cause) if p) or None


TRAINING_JOB = StatusSpec(
    "training job", _get("TrainingJobStatus"), frozenset({"Completed"}), frozenset({"Failed"}),
    frozenset({"Stopped"}), frozenset({"InProgress", "Stopping"}), secondary=_get("SecondaryStatus"),
    progress=_get("SecondaryStatusTransitions", -1, "StatusMessage"), reason=_get("FailureReason"),
    logs=_sagemaker_logs("/aws/sagemaker/TrainingJobs"), error=JobFailed)
PROCESSING_JOB = StatusSpec(
    "processing job", _get("ProcessingJobStatus"), frozenset({"Completed"}), frozenset({"Failed"}),
    frozenset({"Stopped"}), frozenset({"InProgress", "Stopping"}), reason=lambda d: d.get("FailureReason") or d.get("ExitMessage"),
    logs=_sagemaker_logs("/aws/sagemaker/ProcessingJobs"), error=JobFailed)
MONITORING_EXECUTION = StatusSpec(
    "monitoring execution", _get("MonitoringExecutionStatus"), frozenset({"Completed", "CompletedWithViolations"}),
    frozenset({"Failed"}), frozenset({"Stopped"}), frozenset({"Pending", "InProgress", "Stopping"}),
    reason=_get("FailureReason"), logs=_sagemaker_logs("/aws/sagemaker/ProcessingJobs"), error=JobFailed)
ENDPOINT = StatusSpec(
    "endpoint", _get("EndpointStatus"), frozenset({"InService"}),
    frozenset({"Failed", "OutOfService", "UpdateRollbackFailed"}),
    running=frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}), reason=_get("FailureReason"),
    logs=lambda name, _d: f"CloudWatch log group /aws/sagemaker/Endpoints/{name}")
CODEBUILD_BUILD = StatusSpec(
    "build", _get("builds", 0, "buildStatus"), frozenset({"SUCCEEDED"}),
    frozenset({"FAILED", "FAULT", "TIMED_OUT"}), frozenset({"STOPPED"}), frozenset({"IN_PROGRESS"}),
    secondary=_get("builds", 0, "currentPhase"), reason=_codebuild_reason,
    logs=lambda _name, d: _get("builds", 0, "logs", "deepLink")(d), error=JobFailed)
PIPELINE_EXECUTION = StatusSpec(
    "pipeline execution", _get("pipelineExecution", "status"), frozenset({"Succeeded"}),
    frozenset({"Failed"}), frozenset({"Stopped", "Superseded", "Cancelled"}), frozenset({"InProgress", "Stopping"}),
    reason=_get("pipelineExecution", "statusSummary"))
SFN_EXECUTION = StatusSpec(
    "state machine execution", _get("status"), frozenset({"SUCCEEDED"}),
    frozenset({"FAILED", "TIMED_OUT", "PENDING_REDRIVE"}), frozenset({"ABORTED"}), frozenset({"RUNNING"}),
    reason=_sfn_reason)


def wait_for(describe: Callable[[], dict], spec: StatusSpec, resource: str, *,
             policy: WaitPolicy = DEFAULT_POLICY, accept_stopped: bool = False,
             clock: Clock | None = None, rng: random.Random | None = None) -> dict:
    """Poll ``describe()`` until ``spec`` calls its answer terminal; return the last description.

    Raises ``spec.error`` (a ResourceFailed) on a failed state or a stopped one (unless ``accept_stopped``),
    UnknownStatus when a status ``spec`` does not know lasts ``policy.unknown_status_timeout``, and
    WaitTimeout naming ``resource`` (and the last transient error, if any) at ``policy.timeout``.
    """
    clock = clock or SystemClock()
    rng = rng or random.Random()
    log = get_logger("polling").bind(resource=resource, kind=spec.kind)
    known = spec.succeeded | spec.failed | spec.stopped | spec.running
    start = clock.monotonic()
    seen: tuple[str | None, str | None] | None = None
    status: str | None = None
    last_event, last_progress = 0.0, None
    unknown_since: float | None = None
    last_error: BaseException | None = None
    attempt = 0
    while True:
        try:
            description = describe()
        except Exception as exc:
            if not is_transient(exc):
                raise
            last_error = exc
            log.warning("describe_retry", attempt=attempt + 1, error=str(exc))
        else:
            last_error = None
            status, secondary = spec.status(description), spec.secondary(description)
            elapsed = clock.monotonic() - start
            progress = spec.progress(description)
            if (status, secondary) != seen:
                log.info("status_changed", status=status, secondary_status=secondary, elapsed_s=round(elapsed, 1))
                seen, last_event, last_progress = (status, secondary), elapsed, progress
            elif elapsed - last_event >= policy.progress_every and (
                    progress != last_progress or elapsed - last_event >= 4 * policy.progress_every):
                log.info("progress", status=status, secondary_status=secondary, message=progress,
                         elapsed_s=round(elapsed, 1))
                last_event, last_progress = elapsed, progress
            if status in spec.succeeded or (accept_stopped and status in spec.stopped):
                return description
            if status in spec.failed or status in spec.stopped:
                raise spec.error(resource, status, spec.reason(description), spec.logs(resource, description),
                                 description)
            if status in known:
                unknown_since = None
            elif unknown_since is None:
                unknown_since = elapsed
                log.warning("unknown_status", status=status, known=sorted(known),
                            hint=f"polling on for at most {policy.unknown_status_timeout:.0f} s")
            elif elapsed - unknown_since >= policy.unknown_status_timeout:
                raise UnknownStatus(resource, spec.kind, status, sorted(known), elapsed - unknown_since)
        elapsed = clock.monotonic() - start
        delay = policy.delay(attempt, elapsed, rng.random())
        if policy.timeout is not None:
            if elapsed >= policy.timeout:
                raise WaitTimeout(resource, status, elapsed, last_error)
            delay = min(delay, policy.timeout - elapsed)
        clock.sleep(delay)
        attempt += 1
