"""SSM parameters that hand values between components (``/{project}/{key}``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from botocore.exceptions import ClientError

from mlops_core.aws import Clients, is_not_found, resolve
from mlops_core.ensure import Action, Ensured, result

KIND = "ssm parameter"


def get_parameter(name: str, *, clients: Clients | None = None) -> str | None:
    """The parameter's value, or None when it does not exist."""
    try:
        return resolve(clients).ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def get_parameters(names: Iterable[str], *, clients: Clients | None = None) -> dict[str, str]:
    """name -> value for every named parameter that exists (GetParameters takes 10 names per call)."""
    names = list(names)
    found: dict[str, str] = {}
    for start in range(0, len(names), 10):
        answer = resolve(clients).ssm.get_parameters(Names=names[start:start + 10])
        found.update({p["Name"]: p["Value"] for p in answer["Parameters"]})
    return found


def ensure_parameter(name: str, value: str, *, description: str = "", tags: Mapping[str, str] | None = None,
                     dry_run: bool = False, clients: Clients | None = None) -> Ensured:
    """Create the String parameter or overwrite it when its value differs."""
    ssm = resolve(clients).ssm
    current = get_parameter(name, clients=clients)
    if current == value:
        return result(KIND, name, dry_run=dry_run)
    if not dry_run:
        if current is None:
            ssm.put_parameter(Name=name, Value=value, Type="String",
                              **({"Description": description} if description else {}),
                              Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
        else:
            ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
    return result(KIND, name, created=current is None, changes=None if current is None else ["value"],
                  dry_run=dry_run)


def delete_parameter(name: str, *, clients: Clients | None = None) -> Ensured:
    try:
        resolve(clients).ssm.delete_parameter(Name=name)
    except ClientError as exc:
        if is_not_found(exc):
            return Ensured(Action.ABSENT, KIND, name)
        raise
    return Ensured(Action.DELETED, KIND, name)
