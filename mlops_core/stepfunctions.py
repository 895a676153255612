"""Step Functions: ensure a state machine, start an execution idempotently, wait and explain failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, error_code, partition_of, resolve
from mlops_core.ensure import Action, Ensured, result, retry_until_role_usable
from mlops_core.errors import ConfigError, ResourceFailed, WorkflowFailed
from mlops_core.logs import get_logger
from mlops_core.naming import resource_name
from mlops_core.polling import DEFAULT_POLICY, SFN_EXECUTION, Clock, WaitPolicy, wait_for

MAX_EXECUTION_NAME = 80
_log = get_logger("stepfunctions")


def _json(value: dict | str) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2)


def _same_json(a: str, b: str) -> bool:
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return a == b


def state_machine_arn(name: str, *, clients: Clients | None = None) -> str:
    """The ARN the state machine called ``name`` has (or would have) in the clients' account and region."""
    clients = resolve(clients)
    return f"arn:{partition_of(clients.region)}:states:{clients.region}:{clients.account_id()}:stateMachine:{name}"


def find_state_machine(name: str, *, clients: Clients | None = None) -> str | None:
    """The ARN of the state machine called ``name``, or None.

    Describes that one ARN rather than listing: a caller allowed only on its own state machine finds it.
    """
    clients = resolve(clients)
    arn = state_machine_arn(name, clients=clients)
    try:
        clients.stepfunctions.describe_state_machine(stateMachineArn=arn)
    except ClientError as exc:
        if error_code(exc) == "StateMachineDoesNotExist":
            return None
        raise
    return arn


def ensure_state_machine(name: str, definition: dict | str, role_arn: str | None = None, *,
                         clients: Clients | None = None, tags: dict[str, str] | None = None,
                         dry_run: bool = False) -> Ensured:
    """Create the state machine, or update it when its definition or role differs, else leave it alone.

    ``role_arn`` may be None for an existing machine (its role is kept); a new one needs it. ``dry_run``
    only says what would be done.
    """
    clients = resolve(clients)
    sfn = clients.stepfunctions
    body = _json(definition)
    arn = find_state_machine(name, clients=clients)
    if arn is None:
        if not role_arn:
            raise ConfigError(f"state machine {name} does not exist yet: creating it needs the ARN of a role "
                              "that Step Functions can assume (states.amazonaws.com)")
        if dry_run:
            return result("state machine", name, created=True, dry_run=True)
        arn = retry_until_role_usable(lambda: sfn.create_state_machine(  # a new role takes seconds to work
            name=name, definition=body, roleArn=role_arn, type="STANDARD",
            tags=[{"key": k, "value": v} for k, v in (tags or {}).items()]))["stateMachineArn"]
        _log.info("state_machine_created", name=name, arn=arn)
        return result("state machine", name, created=True, arn=arn)
    current = sfn.describe_state_machine(stateMachineArn=arn)
    changes = [] if _same_json(current["definition"], body) else ["definition"]
    if role_arn and current["roleArn"] != role_arn:
        changes.append("role")
    if changes and not dry_run:
        retry_until_role_usable(lambda: sfn.update_state_machine(
            stateMachineArn=arn, definition=body, **({"roleArn": role_arn} if role_arn else {})))
        _log.info("state_machine_updated", name=name, changes=changes)
    return result("state machine", name, changes=changes, arn=arn, dry_run=dry_run)


def execution_name(*parts: str) -> str:
    """A deterministic execution name (at most 80 of ``[A-Za-z0-9-]``) for one release."""
    return resource_name(*parts, max_length=MAX_EXECUTION_NAME)


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN an execution called ``name`` of ``state_machine_arn`` has."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def start_execution(state_machine_arn: str, name: str, input: dict | str, *,
                    clients: Clients | None = None) -> str:
    """Start execution ``name`` and return its ARN; if it already exists, attach to it instead.

    A re-run of the same release therefore never starts a second execution: a running one is waited
    on, a finished one is reused (its status decides the outcome of the wait).
    """
    sfn = resolve(clients).stepfunctions
    try:
        arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=_json(input))["executionArn"]
        _log.info("execution_started", execution=name, arn=arn)
        return arn
    except sfn.exceptions.ExecutionAlreadyExists:
        arn = execution_arn(state_machine_arn, name)
        existing = sfn.describe_execution(executionArn=arn)
        _log.info("execution_attached", execution=name, arn=arn, status=existing["status"])
        if not _same_json(existing.get("input") or "{}", _json(input)):
            _log.warning("execution_input_differs", execution=name,
                         hint="the existing execution keeps its input; start a new release to use the new one")
        return arn


@dataclass(frozen=True)
class ExecutionFailure:
    """Where and why an execution failed: the state whose failure ended it, and the execution's error."""

    state: str | None
    error: str | None
    cause: str | None

    def __str__(self) -> str:
        where = f"state {self.state} failed" if self.state else "failed"
        return ": ".join(p for p in (where, self.error, self.cause) if p)


def _history(arn: str, clients: Clients | None) -> Iterator[dict]:
    paginator = resolve(clients).stepfunctions.get_paginator("get_execution_history")
    for page in paginator.paginate(executionArn=arn, includeExecutionData=True):
        yield from page["events"]


def _details(event: dict) -> dict:
    return next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})


def execution_failure(arn: str, *, clients: Clients | None = None) -> ExecutionFailure:
    """From the execution history: the state whose failure ended the run, and the execution's error and cause.

    A task failure that a retry later overcame does not count; a failure caught and routed to a Fail
    state is reported under the task's state, with the Fail state's error and cause.
    """
    state = None
    failed: tuple[str | None, str | None, str | None] | None = None
    error = cause = None
    for event in _history(arn, clients):
        details, kind = _details(event), event["type"]
        if kind.endswith("StateEntered"):
            state = details.get("name")
        elif kind.startswith("Execution"):
            error, cause = details.get("error") or error, details.get("cause") or cause
        elif kind.endswith("Succeeded"):
            failed = None
        elif kind.endswith(("Failed", "TimedOut")):
            failed = (state, details.get("error"), details.get("cause"))
    if failed is None:
        return ExecutionFailure(state, error, cause)
    return ExecutionFailure(failed[0], error or failed[1], cause or failed[2])


def console_url(arn: str) -> str:
    region = arn.split(":")[3]
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{arn}"


def wait_execution(arn: str, *, clients: Clients | None = None, policy: WaitPolicy = DEFAULT_POLICY,
                   clock: Clock | None = None) -> dict:
    """Wait until the execution ends; return its description, or raise WorkflowFailed naming the failed state."""
    sfn = resolve(clients).poller("stepfunctions")
    name = arn.rsplit(":", 1)[-1]
    try:
        return wait_for(lambda: sfn.describe_execution(executionArn=arn), SFN_EXECUTION,
                        f"execution {name}", policy=policy, clock=clock)
    except ResourceFailed as exc:
        failure = execution_failure(arn, clients=clients)
        raise WorkflowFailed(exc.resource, exc.status, failure.state, str(failure), console_url(arn),
                             exc.description) from exc


def execution_output(description: dict) -> Any:
    """The parsed output of a finished execution's description (None if it has none)."""
    output = description.get("output")
    return json.loads(output) if output else None


def delete_state_machine(name: str, *, clients: Clients | None = None) -> Ensured:
    """Delete the state machine called ``name``; ABSENT if there is none."""
    arn = find_state_machine(name, clients=clients)
    if arn is None:
        return Ensured(Action.ABSENT, "state machine", name)
    try:
        resolve(clients).stepfunctions.delete_state_machine(stateMachineArn=arn)
    except ClientError as exc:
        if error_code(exc) != "StateMachineDoesNotExist":
            raise
    return Ensured(Action.DELETED, "state machine", name, arn)
