"""Exceptions raised by mlops_core. Every message says what failed and what to do next."""

from __future__ import annotations


class MlopsError(Exception):
    """Base class of every error raised by mlops_core."""


class ConfigError(MlopsError):
    """Configuration is missing or malformed; raised before any AWS call.

    ``problems`` holds one line per bad setting, naming the variable and the expected form.
    """

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class AwsResourceError(MlopsError):
    """An AWS call on a named resource failed in a way retries cannot fix."""

    def __init__(self, resource: str, action: str, reason: str, hint: str = ""):
        self.resource, self.action, self.reason = resource, action, reason
        message = f"{action} {resource} failed: {reason}"
        super().__init__(f"{message}. {hint}" if hint else message)


class ResourceFailed(MlopsError):
    """A job, build, execution or endpoint reached a failed (or unaccepted stopped) state."""

    def __init__(self, resource: str, status: str, reason: str | None = None, logs: str | None = None,
                 description: dict | None = None):
        self.resource, self.status, self.reason, self.logs = resource, status, reason, logs
        self.description = description or {}
        parts = [f"{resource} ended {status}"]
        parts.append(f"reason: {reason}" if reason else "no failure reason was reported")
        if logs:
            parts.append(f"logs: {logs}")
        super().__init__("; ".join(parts))


class JobFailed(ResourceFailed):
    """A SageMaker processing or training job (or a CodeBuild build) failed or was stopped."""


class WaitTimeout(MlopsError):
    """The overall deadline of a wait passed before the resource reached a terminal state."""

    def __init__(self, resource: str, last_status: str | None, waited: float, last_error: BaseException | None = None):
        self.resource, self.last_status, self.waited, self.last_error = resource, last_status, waited, last_error
        error = f"; the last describe failed: {last_error}" if last_error else ""
        super().__init__(
            f"gave up waiting for {resource} after {waited:.0f} s (last status: {last_status}{error}); "
            "it may still be running: check it in the console, then re-run to attach to it or raise the timeout"
        )


class UnknownStatus(MlopsError):
    """A resource kept reporting a status the poller does not know (or none at all)."""

    def __init__(self, resource: str, kind: str, status: str | None, known: list[str], waited: float):
        self.resource, self.status = resource, status
        super().__init__(
            f"{kind} {resource} reports status {status!r}, which is none of {', '.join(known)}; gave up after "
            f"{waited:.0f} s of it: check the resource in the console (a new AWS status needs an update of "
            "mlops_core.polling)"
        )


class DeploymentRolledBack(ResourceFailed):
    """An endpoint update failed and SageMaker went back to the previous endpoint config."""

    def __init__(self, endpoint: str, wanted_config: str, running_config: str, reason: str | None):
        self.wanted_config, self.running_config = wanted_config, running_config
        super().__init__(
            endpoint,
            "rolled back",
            f"wanted config {wanted_config}, endpoint still runs {running_config}"
            + (f": {reason}" if reason else ""),
            logs=f"CloudWatch log group /aws/sagemaker/Endpoints/{endpoint}",
        )


class QualityGateFailed(MlopsError):
    """A model's evaluation did not pass the quality gate."""


class WorkflowFailed(ResourceFailed):
    """A Step Functions execution failed; ``state`` names the state whose failure ended it."""

    def __init__(self, resource: str, status: str, state: str | None, reason: str | None,
                 logs: str | None = None, description: dict | None = None):
        self.state = state
        super().__init__(resource, status, reason, logs, description)
