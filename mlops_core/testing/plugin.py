"""The pytest fixtures of the test kit (``pip install mlops-core-aws[testing]``; loaded through the
``pytest11`` entry point): ``aws_clients``, ``job_statuses``, ``fast_polling``, ``endpoint_responder`` and
``mutating_calls`` and ``monitoring_schedules``. See ``mlops_core.testing``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mlops_core.testing import CallLog, JobStatuses, Kit, Responder, VirtualClock, new_session

REGION = "us-east-1"
DUMMY_ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_SESSION_TOKEN": "testing", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}


@pytest.fixture
def mlops_kit(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    """A fresh moto account in-process with the kit's hooks on its session (what the other fixtures use)."""
    from moto import mock_aws

    for key, value in DUMMY_ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path_factory.getbasetemp() / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path_factory.getbasetemp() / "no-aws-credentials"))
    with mock_aws():
        kit = Kit(new_session(REGION))
        yield kit
    problems = kit.statuses.problems()
    if problems:
        pytest.fail("job_statuses: " + "\n".join(problems), pytrace=False)


@pytest.fixture
def aws_clients(mlops_kit: Kit) -> Any:
    """A ``mlops_core.aws.Clients`` on a fresh moto account (dummy credentials, a region, nothing reaches AWS)."""
    from mlops_core.aws import Clients

    return Clients(mlops_kit.session)


@pytest.fixture
def job_statuses(mlops_kit: Kit) -> JobStatuses:
    """Script what SageMaker reports: ``job_statuses.training(name_or_prefix, [statuses], failure_reason=...)``,
    ``.processing(...)``, ``.endpoint(name, [statuses], rolled_back=True)``. The last status repeats; an unplayed
    script fails the test at its end, naming what the code under test called."""
    return mlops_kit.statuses


@pytest.fixture
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """``wait_for`` on a virtual clock: no real sleeps; ``fast_polling.sleeps`` holds the delays it would have slept."""
    clock = VirtualClock()
    monkeypatch.setattr("mlops_core.polling.SystemClock", lambda: clock)
    return clock


@pytest.fixture
def endpoint_responder(mlops_kit: Kit) -> Callable[[str, Responder], None]:
    """``endpoint_responder("abalone", fn)``: ``invoke_endpoint`` on that endpoint answers ``fn(body, content_type)``
    and writes data capture records when the endpoint's config asks for them."""
    def register(endpoint: str, respond: Responder) -> None:
        mlops_kit.responders[endpoint] = respond
    return register


@pytest.fixture
def monitoring_schedules(mlops_kit: Kit) -> Any:
    """The kit's monitoring schedules (moto has none): ``monitoring_schedules.schedules`` by name, and
    ``add_execution(schedule, status, processing_job_arn=..., failure_reason=...)`` for what a run reports."""
    return mlops_kit.monitoring


@pytest.fixture
def mutating_calls(mlops_kit: Kit) -> CallLog:
    """The calls made through ``aws_clients``: ``mutating_calls.names()`` lists the Create/Update/Put/Delete/
    Start/Stop/... ones (``[]`` when a re-run changed nothing); ``clear()`` starts again."""
    return mlops_kit.calls
